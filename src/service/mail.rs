//! Mail as a use case: a lead puts a failed message back in the queue.

use crate::db::audit::{self, AuditEvent};
use crate::db::{self as database, write_transaction, DbConnection};
use crate::domain::status::OutboxStatus;
use crate::error::{AppError, AppResult};
use crate::outbox::{self, OutboxRow};
use crate::service::auth::Actor;
use serde_json::json;

/// Puts a failed message back in the queue; shared with the lead's dashboard.
pub fn retry_failed(conn: &mut DbConnection, actor: &Actor, id: i64) -> AppResult<OutboxRow> {
    write_transaction(conn, |conn| {
        let row = outbox::find(conn, id)?;
        actor.require_lead_of(row.program_id)?;
        if row.status != OutboxStatus::Failed {
            return Err(AppError::Conflict {
                message: "only a failed message can be retried".into(),
                details: Some(json!({"current_status": row.status})),
            });
        }
        outbox::retry(conn, id, database::now())?;
        audit::record(
            conn,
            AuditEvent {
                actor_user_id: Some(actor.id),
                action: "retry",
                entity: "outbox",
                entity_id: id,
                program_id: Some(row.program_id),
                changed_fields: vec!["status".into()],
                detail: None,
            },
        )?;
        Ok(outbox::find(conn, id)?)
    })
}
