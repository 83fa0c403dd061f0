//! The JSON API of DESIGN.md: one `config` per area, small handlers, diesel inside
//! `web::block` so a query never stalls the event loop.

use crate::db::{DbConnection, DbPool};
use crate::error::{AppError, AppResult};
use crate::settings::Settings;
use crate::telemetry::Metrics;
use actix_web::web;
use std::sync::Arc;

pub mod attendance;
pub mod audit;
pub mod auth;
pub mod cohorts;
pub mod facilitators;
pub mod health;
pub mod import;
pub mod json;
pub mod outbox;
pub mod patch;
pub mod patients;
pub mod programs;
pub mod users;

pub use auth::CurrentUser;
pub use json::Json;

/// What every handler can reach. Cheap to clone; instances hold no session state.
pub struct AppState {
    pub pool: DbPool,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    pub secret_key: Arc<Vec<u8>>,
    pub tokens: auth::TokenCache,
}

/// Runs `work` with a pooled connection on the blocking thread pool.
pub async fn db<T, F>(state: &web::Data<AppState>, work: F) -> AppResult<T>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> AppResult<T> + Send + 'static,
{
    let pool = state.pool.clone();
    web::block(move || {
        let mut conn = pool.get()?;
        work(&mut conn)
    })
    .await?
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.configure(health::config)
        .configure(crate::pages::patient_links::config)
        .service(
            web::scope("/api/v1")
                .configure(auth::config)
                .configure(users::config)
                .configure(programs::config)
                .configure(patients::config)
                .configure(facilitators::config)
                .configure(cohorts::config)
                .configure(attendance::config)
                .configure(audit::config)
                .configure(outbox::config)
                .default_service(web::to(not_found)),
        );
}

pub async fn not_found() -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::NotFound)
}

/// Path and query extraction errors in the API's error shape.
pub fn extractor_errors(cfg: &mut web::ServiceConfig) {
    cfg.app_data(web::PathConfig::default().error_handler(|_, _| AppError::NotFound.into()))
        .app_data(web::QueryConfig::default().error_handler(|error, _| {
            let message = error.to_string();
            let field = message.split('`').nth(1).unwrap_or("query").to_string();
            AppError::field(field, message).into()
        }));
}
