//! Login, logout and the current user.

use crate::error::AppResult;
use crate::service::auth::{self, UserView};
use crate::web::{auth::revoke, db, AppState, CurrentUser, Json};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::post().to(login))
        .route("/auth/logout", web::post().to(logout))
        .route("/me", web::get().to(me));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Serialize)]
struct LoginResponse {
    token: String,
    expires_at: chrono::DateTime<chrono::Utc>,
    user: UserView,
}

async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: Json<LoginRequest>,
) -> AppResult<HttpResponse> {
    let LoginRequest { email, password } = body.0;
    let ttl_hours = state.settings.token_ttl_hours;
    let attempt = state.logins.begin(req.peer_addr().map(|a| a.ip()))?;
    let (token, expires_at, user) = db(&state, move |conn| {
        auth::authenticate(conn, &email, &password, ttl_hours)
    })
    .await?;
    attempt.succeeded();
    Ok(HttpResponse::Ok().json(LoginResponse {
        token,
        expires_at: expires_at.and_utc(),
        user,
    }))
}

async fn logout(state: web::Data<AppState>, user: CurrentUser) -> AppResult<HttpResponse> {
    revoke(&state, user.token_hash).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn me(user: CurrentUser) -> HttpResponse {
    let user = user.actor;
    HttpResponse::Ok().json(UserView {
        id: user.id,
        email: user.email,
        name: user.name,
        role: user.role,
        program_ids: user.program_ids,
        facilitator_id: user.facilitator_id,
    })
}
