//! The web layer: what the JSON API, the staff pages and the patient links share — the
//! application state, the blocking-pool helpers, the extractors and the request
//! middleware. Rules live in `service`; handlers here only parse, call and render.

use crate::db::{DbConnection, DbPool};
use crate::error::{AppError, AppResult};
use crate::settings::Settings;
use actix_web::web;
use std::sync::Arc;

pub mod auth;
pub mod json;
pub mod observe;
pub mod patch;
pub mod patient_links;
pub mod throttle;

pub use auth::CurrentUser;
pub use json::Json;

/// What every handler can reach. Cheap to clone; instances hold no session state.
pub struct AppState {
    pub pool: DbPool,
    pub settings: Arc<Settings>,
    pub secret_key: Arc<Vec<u8>>,
    pub tokens: auth::TokenCache,
    /// Login attempts per client address (this instance's count).
    pub logins: throttle::LoginThrottle,
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

/// Runs `work` in one write transaction on the blocking pool: the shape of every use
/// case that changes something.
pub async fn write<T, F>(state: &web::Data<AppState>, work: F) -> AppResult<T>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> AppResult<T> + Send + 'static,
{
    db(state, move |conn| crate::db::write_transaction(conn, work)).await
}

pub async fn not_found() -> Result<actix_web::HttpResponse, AppError> {
    Err(AppError::NotFound)
}

/// Refuses a query string with a NUL byte (`?entity=%00`) with a 422 naming the
/// parameter, before any handler runs: PostgreSQL cannot store or compare such text
/// and would answer a 500.
pub async fn refuse_nul_in_query(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let query = req.query_string();
    if query.contains("%00") || query.contains('\0') {
        let pairs = web::Query::<Vec<(String, String)>>::from_query(query)
            .map(|q| q.into_inner())
            .unwrap_or_default();
        let field = pairs
            .iter()
            .find(|(key, value)| key.contains('\0') || value.contains('\0'))
            .map(|(key, _)| key.replace('\0', ""))
            .unwrap_or_else(|| "query".into());
        let error = AppError::field(field, "must not contain a NUL character");
        return Ok(req.error_response(error));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
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
