//! Attendance records and safety follow-ups.

use crate::db::schema::{attendance, cohort_facilitators, cohorts, follow_ups, sessions};
use crate::db::DbConnection;
use crate::domain::attendance::AttendanceStatus;
use crate::domain::status::{FollowUpKind, FollowUpStatus};
use crate::per_backend;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text, Timestamp};
use std::collections::HashMap;

#[derive(Debug, Clone, Queryable)]
pub struct AttendanceRow {
    pub id: i64,
    pub session_id: i64,
    pub patient_id: i64,
    pub status: AttendanceStatus,
    pub note: Option<String>,
    pub recorded_by: i64,
    pub recorded_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub cohort_id: i64,
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

/// A new record; `cohort_id` must be the session's own cohort (a composite foreign key
/// checks it).
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = attendance)]
pub struct NewRecord<'a> {
    pub cohort_id: i64,
    pub session_id: i64,
    pub patient_id: i64,
    pub status: AttendanceStatus,
    pub note: Option<&'a str>,
    pub recorded_by: i64,
    pub recorded_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// Inserts records in batches (a bound-parameter limit applies per statement).
pub fn insert(conn: &mut DbConnection, records: &[NewRecord<'_>]) -> QueryResult<usize> {
    let mut written = 0;
    for chunk in records.chunks(1_000) {
        written += per_backend!(conn, |c| diesel::insert_into(attendance::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(written)
}

pub fn update(
    conn: &mut DbConnection,
    id: i64,
    status: AttendanceStatus,
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
    pub kind: FollowUpKind,
    pub status: FollowUpStatus,
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
pub struct NewFollowUp {
    pub cohort_id: i64,
    pub patient_id: i64,
    pub kind: FollowUpKind,
    pub status: FollowUpStatus,
    pub streak_start_session_id: i64,
    pub consecutive_absences: i32,
    pub opened_at: NaiveDateTime,
    pub escalated_at: Option<NaiveDateTime>,
}

/// Opens a follow-up for a streak unless that streak already opened one of this kind.
/// Returns the new id, or `None` when it existed.
pub fn open_once(conn: &mut DbConnection, new: &NewFollowUp) -> QueryResult<Option<i64>> {
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
    status: Option<FollowUpStatus>,
    programs: Option<&[i64]>,
    facilitator_id: Option<i64>,
) -> QueryResult<Vec<FollowUpRow>> {
    let mut query = follow_ups::table.order(follow_ups::id).into_boxed();
    if let Some(status) = status {
        query = query.filter(follow_ups::status.eq(status));
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
            .filter(follow_ups::status.eq(FollowUpStatus::Open)),
    )
    .set((
        follow_ups::status.eq(FollowUpStatus::Acknowledged),
        follow_ups::acknowledged_at.eq(now),
        follow_ups::acknowledged_by.eq(by),
        follow_ups::note.eq(note),
    ))
    .execute(conn)
}

/// Open, unescalated follow-ups opened at or before `cutoff`.
pub fn overdue(conn: &mut DbConnection, cutoff: NaiveDateTime) -> QueryResult<Vec<FollowUpRow>> {
    follow_ups::table
        .filter(follow_ups::status.eq(FollowUpStatus::Open))
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
#[derive(Debug, Clone)]
pub struct MemberTally {
    pub cohort_id: i64,
    pub patient_id: i64,
    pub name: String,
    pub held: i64,
    pub attended: i64,
    pub excused: i64,
    pub absent: i64,
    pub unrecorded: i64,
}

/// Each member of the cohorts in scope, with the number of the cohort's sessions in
/// range that were held. Someone who left and rejoined has two rows; `tallies` keeps one
/// (cheaper in Rust than a GROUP BY over names in SQL).
const MEMBERS_SQL: &str = "
SELECT m.cohort_id, m.patient_id, p.name, per_cohort.held
FROM (SELECT s.cohort_id, COUNT(*) FILTER (WHERE s.status = 'held') AS held
      FROM sessions s
      WHERE s.cohort_id __SCOPE__ __RANGE__
      GROUP BY s.cohort_id) per_cohort
JOIN cohort_members m ON m.cohort_id = per_cohort.cohort_id
JOIN patients p ON p.id = m.patient_id";

/// Every record per member, by status. `attendance.cohort_id` lets this read one index
/// in (cohort, member) order, with no join and no sort.
const RECORDED_SQL: &str = "
SELECT a.cohort_id, a.patient_id,
       COUNT(*) AS recorded,
       COUNT(*) FILTER (WHERE a.status = 'excused') AS excused,
       COUNT(*) FILTER (WHERE a.status = 'absent') AS absent
FROM attendance a
WHERE a.cohort_id __SCOPE__
GROUP BY a.cohort_id, a.patient_id";

/// Records per member of the sessions that count (held, in range), reached through the
/// sessions; `__COUNT__` may be `NOT` to get the records that do not count instead.
const SESSION_RECORDS_SQL: &str = "
SELECT a.cohort_id, a.patient_id,
       COUNT(*) AS recorded,
       COUNT(*) FILTER (WHERE a.status = 'excused') AS excused,
       COUNT(*) FILTER (WHERE a.status = 'absent') AS absent
FROM sessions s JOIN attendance a ON a.session_id = s.id
WHERE s.cohort_id __SCOPE__ AND __COUNT__ (s.status = 'held' __RANGE__)
GROUP BY a.cohort_id, a.patient_id";

#[derive(QueryableByName)]
struct MemberHeld {
    #[diesel(sql_type = BigInt)]
    cohort_id: i64,
    #[diesel(sql_type = BigInt)]
    patient_id: i64,
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = BigInt)]
    held: i64,
}

#[derive(QueryableByName)]
struct MemberRecorded {
    #[diesel(sql_type = BigInt)]
    cohort_id: i64,
    #[diesel(sql_type = BigInt)]
    patient_id: i64,
    #[diesel(sql_type = BigInt)]
    recorded: i64,
    #[diesel(sql_type = BigInt)]
    excused: i64,
    #[diesel(sql_type = BigInt)]
    absent: i64,
}

/// Per member per cohort of a program, over sessions starting in `[from, to)` (either
/// bound open when `None`), ordered by cohort and member.
pub fn program_tallies(
    conn: &mut DbConnection,
    program_id: i64,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
) -> QueryResult<Vec<MemberTally>> {
    let scope = "IN (SELECT id FROM cohorts WHERE program_id = $1)";
    tallies(conn, scope, program_id, from, to)
}

/// Per member of one cohort, over all its sessions.
pub fn cohort_tallies(conn: &mut DbConnection, cohort_id: i64) -> QueryResult<Vec<MemberTally>> {
    tallies(conn, "= $1", cohort_id, None, None)
}

fn tallies(
    conn: &mut DbConnection,
    scope: &str,
    id: i64,
    from: Option<NaiveDateTime>,
    to: Option<NaiveDateTime>,
) -> QueryResult<Vec<MemberTally>> {
    // Only the bounds given become predicates: an open report compares no timestamps.
    let mut range = String::new();
    let mut bounds = Vec::new();
    for (bound, op) in [(from, ">="), (to, "<")] {
        if let Some(at) = bound {
            bounds.push(at);
            range.push_str(&format!(" AND s.starts_at {op} ${}", bounds.len() + 1));
        }
    }
    let sql = |template: &str| {
        template
            .replace("__SCOPE__", scope)
            .replace("__RANGE__", &range)
    };
    let members: Vec<MemberHeld> = load_by_name(conn, &sql(MEMBERS_SQL), id, &bounds)?;
    let by_member = |rows: Vec<MemberRecorded>| -> HashMap<(i64, i64), MemberRecorded> {
        rows.into_iter()
            .map(|r| ((r.cohort_id, r.patient_id), r))
            .collect()
    };
    let counted = if bounds.is_empty() {
        // Everything counts but the records of sessions that did not take place: few, so
        // all records less those is far cheaper than joining every record to its session.
        let mut all = by_member(load_by_name(conn, &sql(RECORDED_SQL), id, &[])?);
        let not_counted = sql(SESSION_RECORDS_SQL).replace("__COUNT__", "NOT");
        for out in load_by_name::<MemberRecorded>(conn, &not_counted, id, &[])? {
            if let Some(member) = all.get_mut(&(out.cohort_id, out.patient_id)) {
                member.recorded -= out.recorded;
                member.excused -= out.excused;
                member.absent -= out.absent;
            }
        }
        all
    } else {
        // A date range: reach only the records of the sessions in it.
        let in_range = sql(SESSION_RECORDS_SQL).replace("__COUNT__", "");
        by_member(load_by_name(conn, &in_range, id, &bounds)?)
    };
    let mut tallies: Vec<MemberTally> = members
        .into_iter()
        .map(|m| {
            let (done, excused, absent) = counted
                .get(&(m.cohort_id, m.patient_id))
                .map_or((0, 0, 0), |r| (r.recorded, r.excused, r.absent));
            MemberTally {
                cohort_id: m.cohort_id,
                patient_id: m.patient_id,
                name: m.name,
                held: m.held,
                // Five statuses exist (a CHECK constraint): whatever is neither excused
                // nor absent is present, late or left early.
                attended: done - excused - absent,
                excused,
                absent,
                unrecorded: m.held - done,
            }
        })
        .collect();
    tallies.sort_unstable_by_key(|t| (t.cohort_id, t.patient_id));
    tallies.dedup_by_key(|t| (t.cohort_id, t.patient_id));
    Ok(tallies)
}

/// Runs a raw query with the scope id as `$1` and then each bound as a timestamp.
fn load_by_name<T>(
    conn: &mut DbConnection,
    sql: &str,
    id: i64,
    bounds: &[NaiveDateTime],
) -> QueryResult<Vec<T>>
where
    T: QueryableByName<diesel::sqlite::Sqlite> + QueryableByName<diesel::pg::Pg> + 'static,
{
    match conn {
        // SQLite numbers parameters the same way, but spells them ?NNN.
        DbConnection::Sqlite(c) => {
            let mut query = diesel::sql_query(sql.replace('$', "?"))
                .into_boxed::<diesel::sqlite::Sqlite>()
                .bind::<BigInt, _>(id);
            for at in bounds {
                query = query.bind::<Timestamp, _>(*at);
            }
            query.load(c)
        }
        DbConnection::Postgres(c) => {
            let mut query = diesel::sql_query(sql)
                .into_boxed::<diesel::pg::Pg>()
                .bind::<BigInt, _>(id);
            for at in bounds {
                query = query.bind::<Timestamp, _>(*at);
            }
            query.load(c)
        }
    }
}

/// Per session of a cohort: how many of each status.
pub fn session_counts(
    conn: &mut DbConnection,
    cohort_id: i64,
) -> QueryResult<Vec<(i64, AttendanceStatus, i64)>> {
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
