//! Failed mail on the lead's dashboard.
//!
//! STUB: the outbox table arrives with the email branch. Wire `failed_mail` to it
//! (messages of this program with status `failed`, newest first) when the branches
//! merge; until then it returns an empty list and the dashboard says "No failed mail".

use crate::db::DbConnection;
use crate::error::AppResult;
use serde::Serialize;

/// One message the worker gave up on, as the dashboard shows it.
#[derive(Debug, Serialize)]
pub struct FailedMail {
    pub id: i64,
    pub kind: String,
    /// Who it was for, as staff may see it (a name or an address).
    pub recipient: String,
    pub attempts: i32,
    pub last_error: String,
    /// Program-local, formatted for display.
    pub failed_at: String,
}

/// Failed outbox messages of a program. Returns nothing until the outbox exists.
pub fn failed_mail(_conn: &mut DbConnection, _program_id: i64) -> AppResult<Vec<FailedMail>> {
    Ok(Vec::new())
}
