//! Request ids, one log line per request, and request metrics.
//!
//! Logs name routes by their pattern (`/api/v1/patients/{id}`), never the query string
//! or body, so no patient data can reach them through here.

use crate::telemetry::Metrics;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use std::time::Instant;
use tracing::Instrument;

const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives every request an id (kept from the caller when it looks like one), logs one
/// line per request with its route pattern, and records metrics.
pub async fn observe(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|value| value.to_str().ok())
        .filter(|id| id.len() <= 64 && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_string)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = req.method().to_string();
    let route = req
        .match_pattern()
        .filter(|pattern| !pattern.ends_with(super::FALLBACK_PATTERN))
        .unwrap_or_else(|| "unmatched".to_string());
    let metrics = req
        .app_data::<actix_web::web::Data<Metrics>>()
        .map(|metrics| metrics.clone().into_inner());
    let span = tracing::info_span!("request", id = %request_id, %method, %route);

    let mut response = next.call(req).instrument(span.clone()).await?;
    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID, value);
    }
    if let Some(metrics) = metrics {
        metrics.observe_request(&method, &route, status, seconds);
    }
    span.in_scope(|| {
        tracing::info!(status, ms = (seconds * 1000.0).round() as u64, "handled");
    });
    Ok(response)
}
