//! Failed mail on the lead's dashboard: messages of the program the worker gave up on,
//! newest first (retry them with `POST /api/v1/outbox/{id}/retry`).

use crate::db::DbConnection;
use crate::domain::status::OutboxStatus;
use crate::error::AppResult;
use serde::Serialize;

/// One message the worker gave up on, as the dashboard shows it.
#[derive(Debug, Serialize)]
pub struct FailedMail {
    pub id: i64,
    pub kind: String,
    /// Who it was for as type and id (`patient 12`): no name or address on the page.
    pub recipient: String,
    pub attempts: i32,
    pub last_error: String,
    /// When it last failed, in UTC, formatted for display.
    pub failed_at: String,
}

/// The program's failed outbox messages, at most 50.
pub fn failed_mail(conn: &mut DbConnection, program_id: i64) -> AppResult<Vec<FailedMail>> {
    use crate::outbox;
    Ok(
        outbox::list(conn, Some(&[program_id]), Some(OutboxStatus::Failed), 50)?
            .into_iter()
            .map(|row| FailedMail {
                id: row.id,
                kind: row.kind.as_str().to_string(),
                recipient: format!("{} {}", row.recipient_type, row.recipient_id),
                attempts: row.attempts,
                last_error: row.last_error.unwrap_or_default(),
                failed_at: row.updated_at.format("%Y-%m-%d %H:%M UTC").to_string(),
            })
            .collect(),
    )
}
