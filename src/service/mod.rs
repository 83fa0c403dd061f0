//! The use cases: one function each, taking a connection and an `Actor`, holding the
//! rules (the pure ones come from `domain`), writing their outcome and its mail in one
//! transaction, and returning typed views. The API, the pages, the CLI, the seed and the
//! worker all call in here; nothing here knows of HTTP.

pub mod attendance;
pub mod auth;
pub mod cohorts;
pub mod formation;
pub mod mail;
pub mod patch;
pub mod patients;
pub mod peer;
pub mod programs;
pub mod staffing;
pub mod users;

use crate::db::models::program::ProgramRow;
use crate::domain::program::ProgramRules;
use crate::domain::schedule;
use crate::domain::status::{CohortStatus, SessionStatus};
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
            .filter(sessions::status.eq(SessionStatus::Scheduled))
            .filter(sessions::starts_at.le(now))
            .filter(sessions::starts_at.gt(now - chrono::Duration::days(7)))
            .filter(cohort_table::status.eq(CohortStatus::Active))
            .select((
                sessions::id,
                sessions::starts_at,
                sessions::duration_minutes,
            ))
            .load(conn)?;
        for (session_id, starts_at, minutes) in ended {
            let overdue = starts_at + chrono::Duration::minutes(i64::from(minutes) + 120);
            if overdue <= now {
                crate::outbox::enqueue_attendance_missing(conn, session_id, now)?;
            }
        }
        attendance::escalate_overdue(conn, now)?;
        Ok::<_, crate::error::AppError>(())
    })?;
    crate::db::write_transaction(conn, |conn| peer::auto_complete_due(conn, now).map(|_| ()))
}

/// (session id, response) of every answer to the given sessions.
pub fn rsvps_of(
    conn: &mut crate::db::DbConnection,
    session_ids: &[i64],
) -> diesel::QueryResult<Vec<(i64, String)>> {
    use crate::db::schema::rsvps;
    use diesel::prelude::*;
    rsvps::table
        .filter(rsvps::session_id.eq_any(session_ids.to_vec()))
        .select((rsvps::session_id, rsvps::response))
        .load(conn)
}

/// `{"yes": n, "no": m}` for one session, for the facilitators' view of a cohort.
pub fn rsvp_counts(answers: &[(i64, String)], session_id: i64) -> serde_json::Value {
    let count = |response: &str| {
        answers
            .iter()
            .filter(|(id, r)| *id == session_id && r == response)
            .count()
    };
    serde_json::json!({"yes": count("yes"), "no": count("no")})
}

/// The recipient's zone, else the fallback (the program's), else UTC.
pub fn zone(name: Option<&str>, fallback: &str) -> Tz {
    name.and_then(|z| z.parse().ok())
        .or_else(|| fallback.parse().ok())
        .unwrap_or(chrono_tz::UTC)
}

/// Where the group meets: the cohort's venue and join URL, else the program's.
pub fn place(
    program: &ProgramRow,
    cohort: Option<&crate::db::models::cohort::CohortRow>,
) -> (Option<String>, Option<String>) {
    (
        cohort
            .and_then(|c| c.venue.clone())
            .or_else(|| program.venue.clone()),
        cohort
            .and_then(|c| c.join_url.clone())
            .or_else(|| program.join_url.clone()),
    )
}
