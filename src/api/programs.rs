//! Programs: created and changed by admins, read by the leads and facilitators in them.

use crate::domain::ids::ProgramId;
use crate::error::AppResult;
use crate::service::programs::{self, ProgramInput};
use crate::web::{db, AppState, CurrentUser, Json};
use actix_web::{web, HttpResponse};
use serde_json::Value;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/programs", web::post().to(create))
        .route("/programs", web::get().to(list))
        .route("/programs/{id}", web::get().to(get))
        .route("/programs/{id}", web::patch().to(patch));
}

async fn create(
    state: web::Data<AppState>,
    actor: CurrentUser,
    body: Json<ProgramInput>,
) -> AppResult<HttpResponse> {
    let view = db(&state, move |conn| programs::create(conn, &actor, body.0)).await?;
    Ok(HttpResponse::Created().json(view))
}

async fn list(state: web::Data<AppState>, actor: CurrentUser) -> AppResult<HttpResponse> {
    let views = db(&state, move |conn| programs::list(conn, &actor)).await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "programs": views })))
}

async fn get(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<ProgramId>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let view = db(&state, move |conn| programs::get(conn, &actor, id)).await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn patch(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<ProgramId>,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let view = db(&state, move |conn| {
        programs::update(conn, &actor, id, &body.0)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
