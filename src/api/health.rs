//! Liveness with a real database round-trip, and Prometheus metrics for loopback callers.

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
    let loopback = req
        .peer_addr()
        .is_some_and(|address| address.ip().is_loopback());
    if !loopback {
        return Err(AppError::Forbidden(
            "metrics are served to loopback only".into(),
        ));
    }
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
