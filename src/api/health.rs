//! Liveness with a real database round-trip, and Prometheus metrics: for the holder of
//! the metrics token when one is set (`COHORTS_METRICS_TOKEN`), else for loopback callers.

use crate::error::AppError;
use crate::telemetry::Metrics;
use crate::web::{db, AppState};
use actix_web::{web, HttpRequest, HttpResponse};
use diesel::connection::SimpleConnection;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/healthz", web::get().to(healthz))
        .route("/metrics", web::get().to(metrics));
}

async fn healthz(state: web::Data<AppState>) -> HttpResponse {
    let answered = db(&state, |conn| Ok(conn.batch_execute("SELECT 1")?)).await;
    match answered {
        Ok(()) => HttpResponse::Ok().json(serde_json::json!({ "status": "ok" })),
        Err(error) => {
            tracing::warn!(error = %error, "health check failed");
            HttpResponse::ServiceUnavailable().json(serde_json::json!({ "status": "unavailable" }))
        }
    }
}

async fn metrics(
    req: HttpRequest,
    state: web::Data<AppState>,
    metrics: web::Data<Metrics>,
) -> Result<HttpResponse, AppError> {
    allowed_to_scrape(&req, state.settings.metrics_token.as_deref())?;
    let depth = db(&state, |conn| Ok(crate::outbox::depth(conn)?)).await?;
    let pool = state.pool.state();
    let mut gauges = vec![
        (
            "cohorts_db_pool_connections".to_string(),
            f64::from(pool.connections),
        ),
        (
            "cohorts_db_pool_idle".to_string(),
            f64::from(pool.idle_connections),
        ),
    ];
    gauges.extend(crate::outbox::depth_gauges(&depth));
    Ok(HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(metrics.render(&gauges)))
}

/// With a metrics token, only `Authorization: Bearer <token>` may scrape, from anywhere:
/// behind a reverse proxy on the same host every caller looks like loopback. Without
/// one, loopback callers only.
fn allowed_to_scrape(req: &HttpRequest, token: Option<&str>) -> Result<(), AppError> {
    use sha2::{Digest, Sha256};
    let Some(token) = token else {
        let loopback = req
            .peer_addr()
            .is_some_and(|address| address.ip().is_loopback());
        return if loopback {
            Ok(())
        } else {
            Err(AppError::Forbidden(
                "metrics are served to loopback only".into(),
            ))
        };
    };
    let presented = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .map(str::trim);
    // Digests compared, so the time taken says nothing about the token's characters.
    let matches = presented
        .is_some_and(|given| Sha256::digest(given.as_bytes()) == Sha256::digest(token.as_bytes()));
    if matches {
        Ok(())
    } else {
        Err(AppError::Unauthorized)
    }
}
