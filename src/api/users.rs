//! Accounts: admins create them; tokens can be revoked.

use crate::error::AppResult;
use crate::service::auth::hash_password;
use crate::service::users::{self, NewUserRequest, ValidUser};
use crate::web::{db, AppState, CurrentUser, Json};
use actix_web::{web, HttpResponse};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::post().to(create))
        .route("/users", web::get().to(list))
        .route("/users/{id}/revoke-tokens", web::post().to(revoke_tokens));
}

async fn create(
    state: web::Data<AppState>,
    actor: CurrentUser,
    body: Json<NewUserRequest>,
) -> AppResult<HttpResponse> {
    actor.require_admin()?;
    let user = ValidUser::try_from(body.0)?;
    // Hash outside the transaction: Argon2 is slow on purpose and must not hold a lock.
    let password_hash = web::block({
        let password = user.password.clone();
        move || hash_password(&password)
    })
    .await??;
    let view = db(&state, move |conn| {
        users::create_user(conn, Some(actor.id), &user, &password_hash)
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

async fn list(state: web::Data<AppState>, actor: CurrentUser) -> AppResult<HttpResponse> {
    let views = db(&state, move |conn| users::list(conn, &actor)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "users": views })))
}

async fn revoke_tokens(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let user_id = path.into_inner();
    let revoked = db(&state, move |conn| {
        users::revoke_tokens(conn, &actor, user_id)
    })
    .await?;
    state.tokens.forget_all();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "revoked": revoked })))
}
