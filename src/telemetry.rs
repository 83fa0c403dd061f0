//! Logs, request ids and Prometheus metrics.
//!
//! Logs name routes by their pattern (`/api/v1/patients/{id}`), never the query string
//! or body, so no patient data can reach them through here.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Instant;
use tracing::Instrument;

pub fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("COHORTS_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // A second call (tests start many apps in one process) is harmless.
    let _ = tracing_subscriber::fmt().with_env_filter(filter).try_init();
}

/// Upper bounds of the latency histogram, in seconds.
const LATENCY_BUCKETS: [f64; 10] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0];

#[derive(Default)]
struct RouteLatency {
    buckets: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

/// Counters shared by every worker thread of one instance.
#[derive(Default)]
pub struct Metrics {
    requests: Mutex<BTreeMap<(String, String, u16), u64>>,
    latency: Mutex<BTreeMap<String, RouteLatency>>,
    counters: Mutex<BTreeMap<String, u64>>,
}

impl Metrics {
    pub fn observe_request(&self, method: &str, route: &str, status: u16, seconds: f64) {
        if let Ok(mut requests) = self.requests.lock() {
            *requests
                .entry((method.to_string(), route.to_string(), status))
                .or_default() += 1;
        }
        if let Ok(mut latency) = self.latency.lock() {
            let entry = latency.entry(route.to_string()).or_default();
            for (bucket, bound) in entry.buckets.iter_mut().zip(LATENCY_BUCKETS) {
                if seconds <= bound {
                    *bucket += 1;
                }
            }
            entry.count += 1;
            entry.sum += seconds;
        }
    }

    /// Adds to a named counter, e.g. `cohorts_mail_sent_total`.
    pub fn increment(&self, name: &str, by: u64) {
        if let Ok(mut counters) = self.counters.lock() {
            *counters.entry(name.to_string()).or_default() += by;
        }
    }

    /// Prometheus text exposition format; `gauges` are sampled by the caller.
    pub fn render(&self, gauges: &[(String, f64)]) -> String {
        let mut out = String::new();
        out.push_str("# HELP cohorts_http_requests_total HTTP requests by route and status.\n");
        out.push_str("# TYPE cohorts_http_requests_total counter\n");
        if let Ok(requests) = self.requests.lock() {
            for ((method, route, status), count) in requests.iter() {
                let _ = writeln!(
                    out,
                    "cohorts_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {count}",
                    escape(route)
                );
            }
        }
        out.push_str("# HELP cohorts_http_request_duration_seconds Request latency by route.\n");
        out.push_str("# TYPE cohorts_http_request_duration_seconds histogram\n");
        if let Ok(latency) = self.latency.lock() {
            for (route, entry) in latency.iter() {
                let route = escape(route);
                for (count, bound) in entry.buckets.iter().zip(LATENCY_BUCKETS) {
                    let _ = writeln!(
                        out,
                        "cohorts_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {count}"
                    );
                }
                let _ = writeln!(
                    out,
                    "cohorts_http_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {}",
                    entry.count
                );
                let _ = writeln!(
                    out,
                    "cohorts_http_request_duration_seconds_sum{{route=\"{route}\"}} {}",
                    entry.sum
                );
                let _ = writeln!(
                    out,
                    "cohorts_http_request_duration_seconds_count{{route=\"{route}\"}} {}",
                    entry.count
                );
            }
        }
        if let Ok(counters) = self.counters.lock() {
            for (name, value) in counters.iter() {
                let _ = writeln!(out, "# TYPE {name} counter\n{name} {value}");
            }
        }
        for (name, value) in gauges {
            let _ = writeln!(out, "{name} {value}");
        }
        out
    }
}

fn escape(label: &str) -> String {
    label.replace('\\', "\\\\").replace('"', "\\\"")
}

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
        .unwrap_or_else(|| "unmatched".to_string());
    let metrics = req
        .app_data::<actix_web::web::Data<crate::api::AppState>>()
        .map(|state| state.metrics.clone());
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
