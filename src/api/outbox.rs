//! The outbox as leads see it: what is queued, sent, failed (with the last error), and a
//! retry for failures. Rows carry ids, never bodies. Plus template previews on sample data.

use crate::domain::status::OutboxStatus;
use crate::email::Mailer;
use crate::email::{self, KINDS};
use crate::error::{AppError, AppResult};
use crate::outbox;
use crate::service::mail::retry_failed;
use crate::web::CurrentUser;
use crate::web::{db, AppState};
use actix_web::{web, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/outbox", web::get().to(list))
        .route("/outbox/{id}/retry", web::post().to(retry))
        .route("/email-templates/{kind}/preview", web::get().to(preview));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    status: Option<String>,
    limit: Option<i64>,
}

fn view(row: &outbox::OutboxRow) -> Value {
    json!({
        "id": row.id,
        "kind": row.kind,
        "status": row.status,
        "program_id": row.program_id,
        "entity": {"type": row.entity_type, "id": row.entity_id},
        "recipient": {"type": row.recipient_type, "id": row.recipient_id},
        "offset_hours": row.offset_hours,
        "due_at": row.due_at.and_utc(),
        "attempts": row.attempts,
        "next_attempt_at": row.next_attempt_at.and_utc(),
        "last_error": row.last_error,
        "sent_at": row.sent_at.map(|at| at.and_utc()),
        "created_at": row.created_at.and_utc(),
    })
}

async fn list(
    state: web::Data<AppState>,
    actor: CurrentUser,
    params: web::Query<ListParams>,
) -> AppResult<HttpResponse> {
    actor.require_lead_or_admin()?;
    let params = params.into_inner();
    let status = match params.status.as_deref() {
        None => None,
        Some(text) => Some(text.parse::<OutboxStatus>().map_err(|_| {
            let allowed: Vec<&str> = OutboxStatus::ALL.iter().map(|s| s.as_str()).collect();
            AppError::field("status", format!("must be one of {}", allowed.join(", ")))
        })?),
    };
    let limit = params.limit.unwrap_or(200);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::field("limit", "must be between 1 and 1000"));
    }
    let rows = db(&state, move |conn| {
        Ok(outbox::list(
            conn,
            actor.program_scope().as_deref(),
            status,
            limit,
        )?)
    })
    .await?;
    let items: Vec<Value> = rows.iter().map(view).collect();
    Ok(HttpResponse::Ok().json(json!({ "outbox": items })))
}

async fn retry(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let row = db(&state, move |conn| retry_failed(conn, &actor, id)).await?;
    Ok(HttpResponse::Ok().json(view(&row)))
}

async fn preview(
    actor: CurrentUser,
    mailer: web::Data<Mailer>,
    path: web::Path<String>,
) -> AppResult<HttpResponse> {
    actor.require_lead_or_admin()?;
    let kind = path.into_inner();
    if !KINDS.contains(&kind.as_str()) {
        return Err(AppError::NotFound);
    }
    let context = email::templates::sample_context(&kind, &mailer.public_url);
    let rendered = mailer.templates.render(&kind, &context)?;
    Ok(HttpResponse::Ok().json(json!({
        "kind": kind,
        "patient_email": email::is_patient_kind(&kind),
        "subject": rendered.subject,
        "text": rendered.text,
        "html": rendered.html,
    })))
}
