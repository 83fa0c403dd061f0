//! Reading the audit log: admins see everything, leads their programs.

use crate::db::audit::{self, AuditQuery};
use crate::error::AppResult;
use crate::web::{db, AppState, CurrentUser};
use actix_web::{web, HttpResponse};
use serde::Deserialize;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/audit", web::get().to(list));
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuditParams {
    entity: Option<String>,
    id: Option<i64>,
    before: Option<i64>,
    limit: Option<i64>,
}

async fn list(
    state: web::Data<AppState>,
    actor: CurrentUser,
    params: web::Query<AuditParams>,
) -> AppResult<HttpResponse> {
    actor.require_lead_or_admin()?;
    let params = params.into_inner();
    let query = AuditQuery {
        entity: params.entity,
        entity_id: params.id,
        programs: actor.program_scope(),
        before_id: params.before,
        limit: params.limit.unwrap_or(100).clamp(1, 1000),
    };
    let entries = db(&state, move |conn| Ok(audit::list(conn, &query)?)).await?;
    let entries: Vec<serde_json::Value> = entries
        .into_iter()
        .map(|entry| {
            serde_json::json!({
                "id": entry.id,
                "at": entry.at.and_utc(),
                "actor_user_id": entry.actor_user_id,
                "action": entry.action,
                "entity": entry.entity,
                "entity_id": entry.entity_id,
                "program_id": entry.program_id,
                "changed_fields": serde_json::from_str::<serde_json::Value>(&entry.changed_fields)
                    .unwrap_or_default(),
                "detail": entry.detail,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(serde_json::json!({ "entries": entries })))
}
