//! Attendance records and safety follow-ups.

use crate::db::schema::{attendance, cohort_facilitators, cohorts, follow_ups, sessions};
use crate::db::DbConnection;
use crate::per_backend;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Timestamp};

#[derive(Debug, Clone, Queryable)]
pub struct AttendanceRow {
    pub id: i64,
    pub session_id: i64,
    pub patient_id: i64,
    pub status: String,
    pub note: Option<String>,
    pub recorded_by: i64,
    pub recorded_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn of_sessions(
    conn: &mut DbConnection,
    session_ids: &[i64],
) -> QueryResult<Vec<AttendanceRow>> {
    attendance::table
        .filter(attendance::session_id.eq_any(session_ids.to_vec()))
        .order((attendance::session_id, attendance::patient_id))
        .load(conn)
}

pub fn insert(
    conn: &mut DbConnection,
    session_id: i64,
    patient_id: i64,
    status: &str,
    note: Option<&str>,
    recorded_by: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(attendance::table)
        .values((
            attendance::session_id.eq(session_id),
            attendance::patient_id.eq(patient_id),
            attendance::status.eq(status),
            attendance::note.eq(note),
            attendance::recorded_by.eq(recorded_by),
            attendance::recorded_at.eq(now),
            attendance::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn update(
    conn: &mut DbConnection,
    id: i64,
    status: &str,
    note: Option<&str>,
    recorded_by: i64,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(attendance::table.find(id))
        .set((
            attendance::status.eq(status),
            attendance::note.eq(note),
            attendance::recorded_by.eq(recorded_by),
            attendance::updated_at.eq(now),
        ))
        .execute(conn)
        .map(|_| ())
}

#[derive(Debug, Clone, Queryable)]
pub struct FollowUpRow {
    pub id: i64,
    pub cohort_id: i64,
    pub patient_id: i64,
    pub kind: String,
    pub status: String,
    pub streak_start_session_id: i64,
    pub consecutive_absences: i32,
    pub opened_at: NaiveDateTime,
    pub escalated_at: Option<NaiveDateTime>,
    pub acknowledged_at: Option<NaiveDateTime>,
    pub acknowledged_by: Option<i64>,
    pub note: Option<String>,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = follow_ups)]
pub struct NewFollowUp<'a> {
    pub cohort_id: i64,
    pub patient_id: i64,
    pub kind: &'a str,
    pub status: &'a str,
    pub streak_start_session_id: i64,
    pub consecutive_absences: i32,
    pub opened_at: NaiveDateTime,
    pub escalated_at: Option<NaiveDateTime>,
}

/// Opens a follow-up for a streak unless that streak already opened one of this kind.
/// Returns the new id, or `None` when it existed.
pub fn open_once(conn: &mut DbConnection, new: &NewFollowUp<'_>) -> QueryResult<Option<i64>> {
    let existing = follow_ups::table
        .filter(follow_ups::cohort_id.eq(new.cohort_id))
        .filter(follow_ups::patient_id.eq(new.patient_id))
        .filter(follow_ups::kind.eq(new.kind))
        .filter(follow_ups::streak_start_session_id.eq(new.streak_start_session_id))
        .select(follow_ups::id)
        .first::<i64>(conn)
        .optional()?;
    if existing.is_some() {
        return Ok(None);
    }
    per_backend!(conn, |c| diesel::insert_into(follow_ups::table)
        .values(new)
        .returning(follow_ups::id)
        .get_result(c))
    .map(Some)
}

pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<FollowUpRow> {
    follow_ups::table.find(id).first(conn)
}

/// Follow-ups visible to a caller: of cohorts in `programs` (`None`: all), or of cohorts a
/// facilitator holds.
pub fn list(
    conn: &mut DbConnection,
    status: Option<&str>,
    programs: Option<&[i64]>,
    facilitator_id: Option<i64>,
) -> QueryResult<Vec<FollowUpRow>> {
    let mut query = follow_ups::table.order(follow_ups::id).into_boxed();
    if let Some(status) = status {
        query = query.filter(follow_ups::status.eq(status.to_string()));
    }
    if let Some(programs) = programs {
        let in_programs = cohorts::table
            .filter(cohorts::program_id.eq_any(programs.to_vec()))
            .select(cohorts::id);
        query = query.filter(follow_ups::cohort_id.eq_any(in_programs));
    }
    if let Some(facilitator_id) = facilitator_id {
        let held = cohort_facilitators::table
            .filter(cohort_facilitators::facilitator_id.eq(facilitator_id))
            .select(cohort_facilitators::cohort_id);
        query = query.filter(follow_ups::cohort_id.eq_any(held));
    }
    query.load(conn)
}

pub fn acknowledge(
    conn: &mut DbConnection,
    id: i64,
    by: i64,
    note: Option<&str>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        follow_ups::table
            .find(id)
            .filter(follow_ups::status.eq("open")),
    )
    .set((
        follow_ups::status.eq("acknowledged"),
        follow_ups::acknowledged_at.eq(now),
        follow_ups::acknowledged_by.eq(by),
        follow_ups::note.eq(note),
    ))
    .execute(conn)
}

/// Open, unescalated follow-ups opened at or before `cutoff`.
pub fn overdue(conn: &mut DbConnection, cutoff: NaiveDateTime) -> QueryResult<Vec<FollowUpRow>> {
    follow_ups::table
        .filter(follow_ups::status.eq("open"))
        .filter(follow_ups::escalated_at.is_null())
        .filter(follow_ups::opened_at.le(cutoff))
        .order(follow_ups::id)
        .load(conn)
}

pub fn mark_escalated(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        follow_ups::table
            .find(id)
            .filter(follow_ups::escalated_at.is_null()),
    )
    .set(follow_ups::escalated_at.eq(now))
    .execute(conn)
}

/// One member of one cohort over sessions in a time range, counted by the database.
#[derive(Debug, Clone, QueryableByName)]
pub struct MemberTally {
    #[diesel(sql_type = BigInt)]
    pub cohort_id: i64,
    #[diesel(sql_type = BigInt)]
    pub patient_id: i64,
    #[diesel(sql_type = BigInt)]
    pub held: i64,
    #[diesel(sql_type = BigInt)]
    pub attended: i64,
    #[diesel(sql_type = BigInt)]
    pub excused: i64,
    #[diesel(sql_type = BigInt)]
    pub absent: i64,
    #[diesel(sql_type = BigInt)]
    pub unrecorded: i64,
}

const TALLY_SQL: &str = "
SELECT c.id AS cohort_id, m.patient_id AS patient_id,
       SUM(CASE WHEN s.status = 'held' THEN 1 ELSE 0 END) AS held,
       SUM(CASE WHEN s.status = 'held' AND a.status IN ('present', 'late', 'left_early') THEN 1 ELSE 0 END) AS attended,
       SUM(CASE WHEN s.status = 'held' AND a.status = 'excused' THEN 1 ELSE 0 END) AS excused,
       SUM(CASE WHEN s.status = 'held' AND a.status = 'absent' THEN 1 ELSE 0 END) AS absent,
       SUM(CASE WHEN s.status = 'held' AND a.status IS NULL THEN 1 ELSE 0 END) AS unrecorded
FROM cohorts c
JOIN cohort_members m ON m.cohort_id = c.id
JOIN sessions s ON s.cohort_id = c.id
LEFT JOIN attendance a ON a.session_id = s.id AND a.patient_id = m.patient_id
WHERE __SCOPE__ AND s.starts_at >= $2 AND s.starts_at < $3
GROUP BY c.id, m.patient_id
ORDER BY c.id, m.patient_id";

/// Per member per cohort of a program, sessions starting in `[from, to)`.
pub fn program_tallies(
    conn: &mut DbConnection,
    program_id: i64,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<MemberTally>> {
    tallies(conn, "c.program_id = $1", program_id, from, to)
}

/// Per member of one cohort, over all its sessions.
pub fn cohort_tallies(conn: &mut DbConnection, cohort_id: i64) -> QueryResult<Vec<MemberTally>> {
    // Bounds both backends store and compare as timestamps (SQLite compares text).
    let (from, to) = (
        chrono::NaiveDate::from_ymd_opt(1900, 1, 1),
        chrono::NaiveDate::from_ymd_opt(9999, 12, 31),
    );
    let (Some(from), Some(to)) = (from, to) else {
        return Ok(vec![]);
    };
    tallies(conn, "c.id = $1", cohort_id, from.into(), to.into())
}

fn tallies(
    conn: &mut DbConnection,
    scope: &str,
    id: i64,
    from: NaiveDateTime,
    to: NaiveDateTime,
) -> QueryResult<Vec<MemberTally>> {
    let sql = TALLY_SQL.replace("__SCOPE__", scope);
    match conn {
        // SQLite numbers parameters the same way, but spells them ?NNN.
        DbConnection::Sqlite(c) => diesel::sql_query(sql.replace('$', "?"))
            .bind::<BigInt, _>(id)
            .bind::<Timestamp, _>(from)
            .bind::<Timestamp, _>(to)
            .load(c),
        DbConnection::Postgres(c) => diesel::sql_query(sql)
            .bind::<BigInt, _>(id)
            .bind::<Timestamp, _>(from)
            .bind::<Timestamp, _>(to)
            .load(c),
    }
}

/// Per session of a cohort: how many of each status.
pub fn session_counts(
    conn: &mut DbConnection,
    cohort_id: i64,
) -> QueryResult<Vec<(i64, String, i64)>> {
    attendance::table
        .inner_join(sessions::table)
        .filter(sessions::cohort_id.eq(cohort_id))
        .group_by((attendance::session_id, attendance::status))
        .select((
            attendance::session_id,
            attendance::status,
            diesel::dsl::count_star(),
        ))
        .load(conn)
}
