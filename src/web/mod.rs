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

/// The pattern of [`fallback`], which request metrics label `unmatched`.
pub const FALLBACK_PATTERN: &str = "/{unmatched:.*}";

/// What no route answered, registered after every route of the app and of each scope:
/// 405 with `Allow` when the path exists for other methods, else 404, in the API's
/// error shape. A resource without routes answers with actix's own default, a 405
/// whose `Allow` lists the methods the router tried on this path (none: no such path).
pub fn fallback() -> actix_web::Resource<
    impl actix_web::dev::ServiceFactory<
        actix_web::dev::ServiceRequest,
        Config = (),
        Response = actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    web::resource(FALLBACK_PATTERN).wrap(actix_web::middleware::from_fn(method_or_not_found))
}

async fn method_or_not_found(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse, actix_web::Error> {
    use actix_web::http::header::ALLOW;
    let response = next.call(req).await?;
    let error = match response
        .headers()
        .get(ALLOW)
        .and_then(|value| value.to_str().ok())
        .filter(|allow| !allow.is_empty())
    {
        Some(allow) => AppError::MethodNotAllowed {
            allow: allow.to_string(),
        },
        None => AppError::NotFound,
    };
    let (req, _) = response.into_parts();
    Ok(actix_web::dev::ServiceResponse::new(
        req,
        actix_web::ResponseError::error_response(&error),
    ))
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
