//! Where the pure rules of `domain` meet the stored data of `db`: load what a rule
//! needs, run it, and write its outcome in one transaction. Shared by the API handlers
//! and the CLI.

pub mod attendance;
pub mod formation;
pub mod peer;
pub mod staffing;

use crate::db::models::program::ProgramRow;
use crate::domain::program::ProgramRules;
use crate::domain::schedule;
use crate::domain::Modality;
use crate::error::AppResult;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;

/// A program's row with its rules and zone parsed once.
#[derive(Debug, Clone)]
pub struct ProgramContext {
    pub id: i64,
    pub tz: Tz,
    pub modality: Modality,
    pub rules: ProgramRules,
    pub venue: Option<String>,
    pub join_url: Option<String>,
}

impl TryFrom<&ProgramRow> for ProgramContext {
    type Error = crate::error::AppError;

    fn try_from(row: &ProgramRow) -> AppResult<Self> {
        Ok(ProgramContext {
            id: row.id,
            tz: row
                .timezone
                .parse()
                .map_err(|_| anyhow::anyhow!("program {} has an unknown zone", row.id))?,
            modality: row
                .modality
                .parse()
                .map_err(|e: String| anyhow::anyhow!("program {}: {e}", row.id))?,
            rules: row.rules()?,
            venue: row.venue.clone(),
            join_url: row.join_url.clone(),
        })
    }
}

impl ProgramContext {
    /// The program-local calendar date of a stored UTC time.
    pub fn local_date(&self, utc: NaiveDateTime) -> NaiveDate {
        utc.and_utc().with_timezone(&self.tz).date_naive()
    }

    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.tz).date_naive()
    }

    /// The program's weekly sessions for an integration cohort starting on `first_date`.
    pub fn integration_sessions(&self, first_date: NaiveDate) -> Vec<DateTime<Utc>> {
        schedule::weekly_sessions(
            self.tz,
            first_date,
            self.rules.schedule.local_time.0,
            self.rules.schedule.sessions,
            1,
        )
    }

    pub fn duration_minutes(&self) -> u32 {
        self.rules.schedule.duration_minutes
    }
}

/// Time-driven work the worker does on every pass, before it sends mail: cohorts whose
/// first session started become active, sessions left without attendance tell their
/// facilitators, overdue follow-ups escalate, and finished cohorts complete on their own.
pub fn housekeeping(conn: &mut crate::db::DbConnection, now: NaiveDateTime) -> AppResult<()> {
    use crate::db::models::cohort as cohorts;
    use crate::db::schema::{cohorts as cohort_table, sessions};
    use diesel::prelude::*;

    crate::db::write_transaction(conn, |conn| {
        cohorts::activate_started(conn, now)?;
        // A session over for two hours with no attendance at all, within the last week.
        let ended: Vec<(i64, NaiveDateTime, i32)> = sessions::table
            .inner_join(cohort_table::table)
            .filter(sessions::status.eq("scheduled"))
            .filter(sessions::starts_at.le(now))
            .filter(sessions::starts_at.gt(now - chrono::Duration::days(7)))
            .filter(cohort_table::status.eq("active"))
            .select((
                sessions::id,
                sessions::starts_at,
                sessions::duration_minutes,
            ))
            .load(conn)?;
        for (session_id, starts_at, minutes) in ended {
            let overdue = starts_at + chrono::Duration::minutes(i64::from(minutes) + 120);
            if overdue <= now {
                crate::jobs::enqueue_attendance_missing(conn, session_id, now)?;
            }
        }
        attendance::escalate_overdue(conn, now)?;
        Ok::<_, crate::error::AppError>(())
    })?;
    crate::db::write_transaction(conn, |conn| peer::auto_complete_due(conn, now).map(|_| ()))
}
