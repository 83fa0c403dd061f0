//! Cohorts, their members, facilitators and sessions.

use crate::db::schema::{
    cohort_facilitators, cohort_members, cohorts, dosings, facilitators, patients, programs,
    sessions,
};
use crate::db::DbConnection;
use crate::domain::status::{CohortKind, CohortStatus, MemberStatus, RsvpResponse, SessionStatus};
use crate::per_backend;
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable)]
pub struct CohortRow {
    pub id: i64,
    pub program_id: i64,
    pub kind: CohortKind,
    pub modality: String,
    pub status: CohortStatus,
    pub venue: Option<String>,
    pub join_url: Option<String>,
    /// JSON array of gap texts; empty when fully staffed.
    pub staffing_gaps: String,
    pub override_reason: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = cohorts)]
pub struct NewCohort {
    pub program_id: i64,
    pub kind: CohortKind,
    pub modality: String,
    pub status: CohortStatus,
    pub venue: Option<String>,
    pub join_url: Option<String>,
    pub staffing_gaps: String,
    pub override_reason: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable)]
pub struct MemberRow {
    pub id: i64,
    pub cohort_id: i64,
    pub patient_id: i64,
    pub status: MemberStatus,
    pub joined_at: NaiveDateTime,
    pub left_at: Option<NaiveDateTime>,
    pub leave_reason: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = cohort_members)]
pub struct NewMember {
    pub cohort_id: i64,
    pub patient_id: i64,
    pub status: MemberStatus,
    pub joined_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable, Insertable)]
#[diesel(table_name = cohort_facilitators)]
pub struct TeamRow {
    pub cohort_id: i64,
    pub facilitator_id: i64,
    pub role: crate::domain::staffing::Role,
    pub assigned_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable)]
pub struct SessionRow {
    pub id: i64,
    pub cohort_id: i64,
    pub seq: i32,
    pub starts_at: NaiveDateTime,
    pub duration_minutes: i32,
    pub status: SessionStatus,
    pub ics_sequence: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = sessions)]
pub struct NewSession {
    pub cohort_id: i64,
    pub seq: i32,
    pub starts_at: NaiveDateTime,
    pub duration_minutes: i32,
    pub status: SessionStatus,
    pub ics_sequence: i32,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

const BATCH_ROWS: usize = 500;

pub fn insert(conn: &mut DbConnection, cohort: &NewCohort) -> QueryResult<i64> {
    per_backend!(conn, |c| diesel::insert_into(cohorts::table)
        .values(cohort)
        .returning(cohorts::id)
        .get_result(c))
}

pub fn insert_members(conn: &mut DbConnection, rows: &[NewMember]) -> QueryResult<()> {
    for chunk in rows.chunks(BATCH_ROWS) {
        per_backend!(conn, |c| diesel::insert_into(cohort_members::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

pub fn insert_sessions(conn: &mut DbConnection, rows: &[NewSession]) -> QueryResult<()> {
    for chunk in rows.chunks(BATCH_ROWS) {
        per_backend!(conn, |c| diesel::insert_into(sessions::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

/// Replaces a cohort's team.
pub fn set_team(conn: &mut DbConnection, cohort_id: i64, team: &[TeamRow]) -> QueryResult<()> {
    diesel::delete(cohort_facilitators::table.filter(cohort_facilitators::cohort_id.eq(cohort_id)))
        .execute(conn)?;
    if !team.is_empty() {
        per_backend!(conn, |c| diesel::insert_into(cohort_facilitators::table)
            .values(team)
            .execute(c))?;
    }
    Ok(())
}

pub fn set_staffing_gaps(
    conn: &mut DbConnection,
    cohort_id: i64,
    gaps: &str,
    override_reason: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(cohorts::table.find(cohort_id))
        .set((
            cohorts::staffing_gaps.eq(gaps),
            cohorts::override_reason.eq(override_reason),
            cohorts::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<CohortRow> {
    cohorts::table.find(id).first(conn)
}

pub fn list(
    conn: &mut DbConnection,
    program_id: Option<i64>,
    programs_in_scope: Option<&[i64]>,
    facilitator_id: Option<i64>,
) -> QueryResult<Vec<CohortRow>> {
    let mut query = cohorts::table.order(cohorts::id).into_boxed();
    if let Some(program_id) = program_id {
        query = query.filter(cohorts::program_id.eq(program_id));
    }
    if let Some(ids) = programs_in_scope {
        query = query.filter(cohorts::program_id.eq_any(ids.to_vec()));
    }
    if let Some(facilitator_id) = facilitator_id {
        let held = cohort_facilitators::table
            .filter(cohort_facilitators::facilitator_id.eq(facilitator_id))
            .select(cohort_facilitators::cohort_id);
        query = query.filter(cohorts::id.eq_any(held));
    }
    query.load(conn)
}

pub fn members(conn: &mut DbConnection, cohort_id: i64) -> QueryResult<Vec<MemberRow>> {
    cohort_members::table
        .filter(cohort_members::cohort_id.eq(cohort_id))
        .order(cohort_members::id)
        .load(conn)
}

/// Members with their names, for the people who run the group.
pub fn members_with_names(
    conn: &mut DbConnection,
    cohort_id: i64,
) -> QueryResult<Vec<(MemberRow, String)>> {
    cohort_members::table
        .inner_join(patients::table)
        .filter(cohort_members::cohort_id.eq(cohort_id))
        .order(cohort_members::id)
        .select((cohort_members::all_columns, patients::name))
        .load(conn)
}

/// Every membership of these cohorts with the member's name, in join order.
pub fn members_with_names_of(
    conn: &mut DbConnection,
    cohort_ids: &[i64],
) -> QueryResult<Vec<(MemberRow, String)>> {
    cohort_members::table
        .inner_join(patients::table)
        .filter(cohort_members::cohort_id.eq_any(cohort_ids.to_vec()))
        .order(cohort_members::id)
        .select((cohort_members::all_columns, patients::name))
        .load(conn)
}

/// The teams of these cohorts with the facilitators' names, lead first.
pub fn teams_with_names(
    conn: &mut DbConnection,
    cohort_ids: &[i64],
) -> QueryResult<Vec<(TeamRow, String)>> {
    cohort_facilitators::table
        .inner_join(facilitators::table)
        .filter(cohort_facilitators::cohort_id.eq_any(cohort_ids.to_vec()))
        .order((
            cohort_facilitators::cohort_id,
            cohort_facilitators::role.desc(),
            cohort_facilitators::facilitator_id,
        ))
        .select((cohort_facilitators::all_columns, facilitators::name))
        .load(conn)
}

/// (session, answer, how many) for every session of these cohorts that has answers.
pub fn rsvp_counts_of(
    conn: &mut DbConnection,
    cohort_ids: &[i64],
) -> QueryResult<Vec<(i64, RsvpResponse, i64)>> {
    use crate::db::schema::rsvps;
    let of_cohorts = sessions::table
        .filter(sessions::cohort_id.eq_any(cohort_ids.to_vec()))
        .select(sessions::id);
    rsvps::table
        .filter(rsvps::session_id.eq_any(of_cohorts))
        .group_by((rsvps::session_id, rsvps::response))
        .select((
            rsvps::session_id,
            rsvps::response,
            diesel::dsl::count_star(),
        ))
        .load(conn)
}

/// Each cohort's earliest session that is not cancelled: when a forming cohort becomes
/// active.
pub fn first_live_starts(
    conn: &mut DbConnection,
    cohort_ids: &[i64],
) -> QueryResult<Vec<(i64, Option<NaiveDateTime>)>> {
    sessions::table
        .filter(sessions::cohort_id.eq_any(cohort_ids.to_vec()))
        .filter(sessions::status.ne(SessionStatus::Cancelled))
        .group_by(sessions::cohort_id)
        .select((sessions::cohort_id, diesel::dsl::min(sessions::starts_at)))
        .load(conn)
}

pub fn active_member_ids(conn: &mut DbConnection, cohort_id: i64) -> QueryResult<Vec<i64>> {
    cohort_members::table
        .filter(cohort_members::cohort_id.eq(cohort_id))
        .filter(cohort_members::status.eq(MemberStatus::Active))
        .select(cohort_members::patient_id)
        .order(cohort_members::patient_id)
        .load(conn)
}

pub fn withdraw_member(
    conn: &mut DbConnection,
    cohort_id: i64,
    patient_id: i64,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        cohort_members::table
            .filter(cohort_members::cohort_id.eq(cohort_id))
            .filter(cohort_members::patient_id.eq(patient_id))
            .filter(cohort_members::status.eq(MemberStatus::Active)),
    )
    .set((
        cohort_members::status.eq(MemberStatus::Withdrawn),
        cohort_members::left_at.eq(now),
        cohort_members::leave_reason.eq(reason),
    ))
    .execute(conn)
}

pub fn team(conn: &mut DbConnection, cohort_id: i64) -> QueryResult<Vec<(TeamRow, String)>> {
    cohort_facilitators::table
        .inner_join(facilitators::table)
        .filter(cohort_facilitators::cohort_id.eq(cohort_id))
        .order((
            cohort_facilitators::role.desc(),
            cohort_facilitators::facilitator_id,
        ))
        .select((cohort_facilitators::all_columns, facilitators::name))
        .load(conn)
}

pub fn sessions_of(conn: &mut DbConnection, cohort_ids: &[i64]) -> QueryResult<Vec<SessionRow>> {
    sessions::table
        .filter(sessions::cohort_id.eq_any(cohort_ids.to_vec()))
        .order((sessions::cohort_id, sessions::seq))
        .load(conn)
}

/// Whether a cohort still has a scheduled session ahead of `now` (mail about a cohort
/// that has none would announce nothing).
pub fn has_session_ahead(
    conn: &mut DbConnection,
    cohort_id: i64,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::select(diesel::dsl::exists(
        sessions::table
            .filter(sessions::cohort_id.eq(cohort_id))
            .filter(sessions::status.eq(SessionStatus::Scheduled))
            .filter(sessions::starts_at.gt(now)),
    ))
    .get_result(conn)
}

pub fn find_session(conn: &mut DbConnection, id: i64) -> QueryResult<SessionRow> {
    sessions::table.find(id).first(conn)
}

pub fn reschedule_session(
    conn: &mut DbConnection,
    id: i64,
    starts_at: NaiveDateTime,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(sessions::table.find(id))
        .set((
            sessions::starts_at.eq(starts_at),
            sessions::ics_sequence.eq(sessions::ics_sequence + 1),
            sessions::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn set_session_status(
    conn: &mut DbConnection,
    id: i64,
    status: SessionStatus,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(sessions::table.find(id))
        .set((
            sessions::status.eq(status),
            sessions::ics_sequence.eq(sessions::ics_sequence + 1),
            sessions::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

/// A forming cohort becomes active once its first session has started. Run before
/// anything that reads cohort status, so status never lags the clock by more than that.
pub fn activate_started(conn: &mut DbConnection, now: NaiveDateTime) -> QueryResult<usize> {
    let started = sessions::table
        .filter(sessions::starts_at.le(now))
        .filter(sessions::status.ne(SessionStatus::Cancelled))
        .select(sessions::cohort_id);
    diesel::update(
        cohorts::table
            .filter(cohorts::status.eq(CohortStatus::Forming))
            .filter(cohorts::id.eq_any(started)),
    )
    .set((
        cohorts::status.eq(CohortStatus::Active),
        cohorts::updated_at.eq(now),
    ))
    .execute(conn)
}

/// Serialises formations and team changes of one program. SQLite's write transaction
/// already excludes every other writer; PostgreSQL needs the row lock.
pub fn lock_program(conn: &mut DbConnection, program_id: i64) -> QueryResult<()> {
    match conn {
        DbConnection::Postgres(pg) => programs::table
            .find(program_id)
            .select(programs::id)
            .for_update()
            .first::<i64>(pg)
            .map(|_| ()),
        DbConnection::Sqlite(_) => Ok(()),
    }
}

/// (patient id, latest dosing time, its modality) for a program's waitlist.
pub fn waitlist(
    conn: &mut DbConnection,
    program_id: i64,
) -> QueryResult<Vec<(i64, NaiveDateTime, String)>> {
    let rows: Vec<(i64, NaiveDateTime, String)> = patients::table
        .inner_join(dosings::table)
        .filter(patients::program_id.eq(program_id))
        .filter(patients::status.eq(crate::domain::patient::PatientStatus::AwaitingCohort))
        .order((patients::id, dosings::dosed_at.desc(), dosings::id.desc()))
        .select((patients::id, dosings::dosed_at, dosings::modality))
        .load(conn)?;
    // Ordered newest first per patient: keep the first row of each.
    let mut latest: Vec<(i64, NaiveDateTime, String)> = Vec::with_capacity(rows.len());
    for row in rows {
        if latest.last().map(|last| last.0) != Some(row.0) {
            latest.push(row);
        }
    }
    Ok(latest)
}

/// Latest dosing time of each given patient (members of open cohorts).
pub fn latest_dosings(
    conn: &mut DbConnection,
    patient_ids: &[i64],
) -> QueryResult<Vec<(i64, NaiveDateTime)>> {
    let mut out: Vec<(i64, NaiveDateTime)> = Vec::new();
    for chunk in patient_ids.chunks(BATCH_ROWS) {
        let rows: Vec<(i64, NaiveDateTime)> = dosings::table
            .filter(dosings::patient_id.eq_any(chunk.to_vec()))
            .order((dosings::patient_id, dosings::dosed_at.desc()))
            .select((dosings::patient_id, dosings::dosed_at))
            .load(conn)?;
        for row in rows {
            if out.last().map(|last| last.0) != Some(row.0) {
                out.push(row);
            }
        }
    }
    Ok(out)
}

/// Cohorts of a program with the given kind and status.
pub fn of_program(
    conn: &mut DbConnection,
    program_id: i64,
    kind: CohortKind,
    status: Option<CohortStatus>,
) -> QueryResult<Vec<CohortRow>> {
    let mut query = cohorts::table
        .filter(cohorts::program_id.eq(program_id))
        .filter(cohorts::kind.eq(kind))
        .order(cohorts::id)
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(cohorts::status.eq(status));
    }
    query.load(conn)
}

/// (cohort_id, patient_id) of active members of the given cohorts.
pub fn active_members_of(
    conn: &mut DbConnection,
    cohort_ids: &[i64],
) -> QueryResult<Vec<(i64, i64)>> {
    cohort_members::table
        .filter(cohort_members::cohort_id.eq_any(cohort_ids.to_vec()))
        .filter(cohort_members::status.eq(MemberStatus::Active))
        .order((cohort_members::cohort_id, cohort_members::patient_id))
        .select((cohort_members::cohort_id, cohort_members::patient_id))
        .load(conn)
}

/// (cohort id, facilitator id) of the teams of several cohorts, in `team`'s order.
pub fn teams_of(conn: &mut DbConnection, cohort_ids: &[i64]) -> QueryResult<Vec<(i64, i64)>> {
    cohort_facilitators::table
        .filter(cohort_facilitators::cohort_id.eq_any(cohort_ids.to_vec()))
        .order((
            cohort_facilitators::cohort_id,
            cohort_facilitators::role.desc(),
            cohort_facilitators::facilitator_id,
        ))
        .select((
            cohort_facilitators::cohort_id,
            cohort_facilitators::facilitator_id,
        ))
        .load(conn)
}

/// (facilitator, cohort, first session start, last session start).
pub type CommitmentRow = (i64, i64, Option<NaiveDateTime>, Option<NaiveDateTime>);

/// Every commitment to a cohort not yet over, for load and cap during staffing.
pub fn live_commitments(conn: &mut DbConnection) -> QueryResult<Vec<CommitmentRow>> {
    use diesel::dsl::{max, min};
    cohort_facilitators::table
        .inner_join(cohorts::table)
        .inner_join(sessions::table.on(sessions::cohort_id.eq(cohort_facilitators::cohort_id)))
        .filter(cohorts::status.eq_any([CohortStatus::Forming, CohortStatus::Active]))
        .group_by((
            cohort_facilitators::facilitator_id,
            cohort_facilitators::cohort_id,
        ))
        .select((
            cohort_facilitators::facilitator_id,
            cohort_facilitators::cohort_id,
            min(sessions::starts_at),
            max(sessions::starts_at),
        ))
        .load(conn)
}

/// Every membership of a patient with the cohort's kind and status, oldest first.
pub fn memberships_of(
    conn: &mut DbConnection,
    patient_id: i64,
) -> QueryResult<Vec<(MemberRow, String, String)>> {
    cohort_members::table
        .inner_join(cohorts::table)
        .filter(cohort_members::patient_id.eq(patient_id))
        .order(cohort_members::id)
        .select((cohort_members::all_columns, cohorts::kind, cohorts::status))
        .load(conn)
}

/// Whether the patient is an active member of the cohort now.
pub fn is_active_member(
    conn: &mut DbConnection,
    cohort_id: i64,
    patient_id: i64,
) -> QueryResult<bool> {
    cohort_members::table
        .filter(cohort_members::cohort_id.eq(cohort_id))
        .filter(cohort_members::patient_id.eq(patient_id))
        .filter(cohort_members::status.eq(MemberStatus::Active))
        .select(cohort_members::id)
        .first::<i64>(conn)
        .optional()
        .map(|found| found.is_some())
}
