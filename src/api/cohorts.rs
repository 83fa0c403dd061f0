//! Cohorts: formation, creation by hand, members, staffing and sessions.

use crate::domain::ids::{CohortId, PatientId, ProgramId, SessionId};
use crate::error::AppResult;
use crate::service::cohorts::{self, NewCohortRequest, SessionChange, SessionPatch, TeamMember};
use crate::web::{db, AppState, CurrentUser, Json};
use actix_web::{web, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::json;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/programs/{id}/cohort-formations",
        web::post().to(form_cohorts),
    )
    .route("/cohorts", web::post().to(create))
    .route("/cohorts", web::get().to(list))
    .route("/cohorts/{id}", web::get().to(get))
    .route("/cohorts/{id}/members", web::post().to(add_member))
    .route(
        "/cohorts/{id}/members/{patient_id}",
        web::delete().to(withdraw_member),
    )
    .route("/cohorts/{id}/facilitators", web::put().to(set_team))
    .route("/cohorts/{id}/staffing", web::post().to(auto_staff))
    .route("/sessions/{id}", web::patch().to(patch_session))
    .route("/cohorts/{id}/completion", web::post().to(complete))
    .route("/programs/{id}/peer-circles", web::get().to(peer_circles));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FormationRequest {
    dry_run: bool,
}

async fn form_cohorts(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<ProgramId>,
    body: Json<FormationRequest>,
) -> AppResult<HttpResponse> {
    let program_id = path.into_inner();
    let dry_run = body.0.dry_run;
    let outcome = db(&state, move |conn| {
        cohorts::form(conn, &actor, program_id, dry_run)
    })
    .await?;
    Ok(if dry_run {
        HttpResponse::Ok().json(outcome)
    } else {
        HttpResponse::Created().json(outcome)
    })
}

#[derive(Serialize)]
struct CohortList {
    cohorts: Vec<cohorts::CohortView>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    program_id: Option<ProgramId>,
}

async fn list(
    state: web::Data<AppState>,
    actor: CurrentUser,
    params: web::Query<ListParams>,
) -> AppResult<HttpResponse> {
    let program_id = params.program_id;
    let cohorts = db(&state, move |conn| cohorts::list(conn, &actor, program_id)).await?;
    // Serialized straight from the views: a `json!` tree of 1,000 cohorts costs more
    // than the queries that loaded them.
    Ok(HttpResponse::Ok().json(CohortList { cohorts }))
}

async fn get(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<CohortId>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let view = db(&state, move |conn| cohorts::get(conn, &actor, id)).await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn create(
    state: web::Data<AppState>,
    actor: CurrentUser,
    body: Json<NewCohortRequest>,
) -> AppResult<HttpResponse> {
    let view = db(&state, move |conn| cohorts::create(conn, &actor, body.0)).await?;
    Ok(HttpResponse::Created().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMemberRequest {
    patient_id: PatientId,
    #[serde(default)]
    override_reason: Option<String>,
}

async fn add_member(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<CohortId>,
    body: Json<AddMemberRequest>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let AddMemberRequest {
        patient_id,
        override_reason,
    } = body.0;
    let view = db(&state, move |conn| {
        cohorts::add_member(conn, &actor, id, patient_id, override_reason.as_deref())
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WithdrawRequest {
    reason: String,
}

async fn withdraw_member(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<(CohortId, PatientId)>,
    body: Json<WithdrawRequest>,
) -> AppResult<HttpResponse> {
    let (id, patient_id) = path.into_inner();
    let view = db(&state, move |conn| {
        cohorts::withdraw_member(conn, &actor, id, patient_id, &body.0.reason)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `[{facilitator_id, role}]`, or `{facilitators: [...], override_reason?}`.
type TeamRequest = crate::web::json::ListOrObject<TeamMember, TeamWithReason>;

#[derive(Deserialize)]
struct TeamWithReason {
    facilitators: Vec<TeamMember>,
    #[serde(default)]
    override_reason: Option<String>,
}

async fn set_team(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<CohortId>,
    body: Json<TeamRequest>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let (team, reason) = match body.0 {
        TeamRequest::List(team) => (team, None),
        TeamRequest::Object(TeamWithReason {
            facilitators,
            override_reason,
        }) => (facilitators, override_reason),
    };
    let view = db(&state, move |conn| {
        cohorts::set_team(conn, &actor, id, team, reason.as_deref())
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn auto_staff(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<CohortId>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let view = db(&state, move |conn| cohorts::auto_staff(conn, &actor, id)).await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn patch_session(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<SessionId>,
    body: Json<SessionPatch>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let change = SessionChange::try_from(body.0)?;
    let view = db(&state, move |conn| {
        cohorts::change_session(conn, &actor, id, change)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn complete(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<CohortId>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let outcome = db(&state, move |conn| cohorts::complete(conn, &actor, id)).await?;
    Ok(HttpResponse::Ok().json(outcome))
}

async fn peer_circles(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<ProgramId>,
) -> AppResult<HttpResponse> {
    let program_id = path.into_inner();
    let circles = db(&state, move |conn| {
        cohorts::peer_circles(conn, &actor, program_id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "circles": circles })))
}
