//! Attendance: recording it after a group, the follow-ups it opens, and reports.

use crate::domain::ids::{CohortId, ProgramId, SessionId};
use crate::error::{AppError, AppResult};
use crate::service::attendance::{self, AttendanceRequest, MemberReport};
use crate::web::{db, AppState, CurrentUser, Json};
use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::json;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/sessions/{id}/attendance", web::put().to(record))
        .route("/sessions/{id}/attendance", web::get().to(session_view))
        .route("/cohorts/{id}/attendance", web::get().to(cohort_matrix))
        .route(
            "/programs/{id}/attendance-report",
            web::get().to(program_report),
        )
        .route("/follow-ups", web::get().to(list_follow_ups))
        .route("/follow-ups/{id}/acknowledge", web::post().to(acknowledge));
}

async fn record(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<SessionId>,
    body: Json<AttendanceRequest>,
) -> AppResult<HttpResponse> {
    let session_id = path.into_inner();
    let view = db(&state, move |conn| {
        attendance::record(conn, &actor, session_id, &body.0)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn session_view(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<SessionId>,
) -> AppResult<HttpResponse> {
    let session_id = path.into_inner();
    let view = db(&state, move |conn| {
        let (_, cohort) = attendance::session_for_staff(conn, &actor, session_id)?;
        attendance::attendance_document(conn, session_id.get(), &cohort)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn cohort_matrix(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<CohortId>,
) -> AppResult<HttpResponse> {
    let cohort_id = path.into_inner();
    let view = db(&state, move |conn| {
        attendance::cohort_matrix(conn, &actor, cohort_id)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReportParams {
    from: Option<String>,
    to: Option<String>,
    format: Option<String>,
}

async fn program_report(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<ProgramId>,
    params: web::Query<ReportParams>,
    req: HttpRequest,
) -> AppResult<HttpResponse> {
    let program_id = path.into_inner();
    let params = params.into_inner();
    let from = attendance::parse_date("from", params.from.as_deref())?;
    let to = attendance::parse_date("to", params.to.as_deref())?;
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(AppError::field("to", "must not be before from"));
        }
    }
    let wants_csv = match params.format.as_deref() {
        Some("csv") => true,
        Some("json") | None => req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/csv")),
        Some(_) => return Err(AppError::field("format", "must be json or csv")),
    };
    let members = db(&state, move |conn| {
        attendance::report(conn, &actor, program_id, from, to)
    })
    .await?;
    if wants_csv {
        return Ok(HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"attendance-program-{program_id}.csv\""),
            ))
            .body(attendance::report_csv(&members)?));
    }
    // Serialized straight from the rows: a `json!` tree of 10,000 members costs more than
    // the query that counted them.
    Ok(HttpResponse::Ok().json(ProgramReport {
        program_id,
        from,
        to,
        cohorts: attendance::cohort_summary(&members),
        members,
    }))
}

#[derive(Serialize)]
struct ProgramReport {
    program_id: ProgramId,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
    cohorts: Vec<attendance::CohortSummary>,
    members: Vec<MemberReport>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FollowUpParams {
    status: Option<String>,
}

async fn list_follow_ups(
    state: web::Data<AppState>,
    actor: CurrentUser,
    params: web::Query<FollowUpParams>,
) -> AppResult<HttpResponse> {
    let status = params.into_inner().status;
    let views = db(&state, move |conn| {
        attendance::list_follow_ups(conn, &actor, status.as_deref())
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "follow_ups": views })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AcknowledgeRequest {
    #[serde(default)]
    note: Option<String>,
}

async fn acknowledge(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
    body: Json<AcknowledgeRequest>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let view = db(&state, move |conn| {
        attendance::acknowledge(conn, &actor, id, body.0.note.as_deref())
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
