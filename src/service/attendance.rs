//! Attendance: recording it after a group, the follow-ups its absence streaks open (and
//! their escalation), and the cohort and program reports.

use super::auth::Actor;
use super::cohorts::{cohort_for_reader, program_context};
use super::ProgramContext;
use crate::db::audit::{self, AuditEvent};
use crate::db::models::attendance::{self as records, MemberTally};
use crate::db::models::cohort::{self as cohorts, CohortRow};
use crate::db::models::user::Role;
use crate::db::{self as database, write_transaction, DbConnection};
use crate::domain::attendance::{
    attendance_rate, completed, current_streak, AttendanceStatus, Streak,
};
use crate::domain::ids::{CohortId, ProgramId, SessionId};
use crate::domain::status::{
    CohortKind, FollowUpKind, FollowUpStatus, MemberStatus, SessionStatus,
};
use crate::error::{AppError, AppResult, FieldErrors};
use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A follow-up not acknowledged within this long goes to the program's leads.
pub const ESCALATE_AFTER: Duration = Duration::hours(72);

/// Each member's marks over the cohort's held sessions, in time order.
pub struct CohortMarks {
    pub held: Vec<cohorts::SessionRow>,
    pub marks: HashMap<(i64, i64), AttendanceStatus>,
}

impl CohortMarks {
    pub fn load(conn: &mut DbConnection, cohort_id: i64) -> AppResult<CohortMarks> {
        let mut held: Vec<cohorts::SessionRow> = cohorts::sessions_of(conn, &[cohort_id])?
            .into_iter()
            .filter(|s| s.status == SessionStatus::Held)
            .collect();
        held.sort_by_key(|s| (s.starts_at, s.seq));
        let ids: Vec<i64> = held.iter().map(|s| s.id).collect();
        let marks = records::of_sessions(conn, &ids)?
            .into_iter()
            .map(|row| ((row.session_id, row.patient_id), row.status))
            .collect();
        Ok(CohortMarks { held, marks })
    }

    pub fn streak(&self, patient_id: i64) -> Streak {
        current_streak(
            self.held
                .iter()
                .map(|s| (s.id, self.marks.get(&(s.id, patient_id)).copied())),
        )
    }
}

/// Opens the follow-ups the members' current streaks call for. Outreach waits for a
/// facilitator; at-risk goes to the leads at once. Returns the ids opened now.
pub fn open_follow_ups(
    conn: &mut DbConnection,
    program: &ProgramContext,
    cohort: &cohorts::CohortRow,
    patient_ids: &[i64],
    now: NaiveDateTime,
) -> AppResult<Vec<i64>> {
    let rules = &program.rules.attendance;
    // Peer circles are voluntary: no outreach for missing one, unless the program asks.
    if cohort.kind == CohortKind::PeerSupport && !program.rules.peer_support.follow_ups {
        return Ok(vec![]);
    }
    let marks = CohortMarks::load(conn, cohort.id)?;
    let team: Vec<i64> = cohorts::teams_of(conn, &[cohort.id])?
        .into_iter()
        .map(|(_, facilitator_id)| facilitator_id)
        .collect();
    let mut opened = Vec::new();
    for patient_id in patient_ids {
        let streak = marks.streak(*patient_id);
        let Some(start) = streak.started_at_session else {
            continue;
        };
        let absences = streak.absences as i32;
        for (kind, threshold, escalated) in [
            (FollowUpKind::Outreach, rules.outreach_after, None),
            (FollowUpKind::AtRisk, rules.at_risk_after, Some(now)),
        ] {
            if streak.absences >= threshold {
                let new = records::NewFollowUp {
                    cohort_id: cohort.id,
                    patient_id: *patient_id,
                    kind,
                    status: FollowUpStatus::Open,
                    streak_start_session_id: start,
                    consecutive_absences: absences,
                    opened_at: now,
                    escalated_at: escalated,
                };
                if let Some(id) = records::open_once(conn, &new)? {
                    crate::outbox::enqueue_follow_up(
                        conn,
                        id,
                        cohort.id,
                        *patient_id,
                        streak.absences,
                        &team,
                        now,
                    )?;
                    if escalated.is_some() {
                        crate::outbox::enqueue_escalation(conn, id, cohort.id, now)?;
                    }
                    opened.push(id);
                }
            }
        }
    }
    Ok(opened)
}

/// Escalates follow-ups left unacknowledged for 72 hours and mails the program's leads;
/// run by the worker. Returns the ids escalated.
pub fn escalate_overdue(conn: &mut DbConnection, now: NaiveDateTime) -> AppResult<Vec<i64>> {
    let mut escalated = Vec::new();
    for follow_up in records::overdue(conn, now - ESCALATE_AFTER)? {
        if records::mark_escalated(conn, follow_up.id, now)? > 0 {
            crate::outbox::enqueue_escalation(conn, follow_up.id, follow_up.cohort_id, now)?;
            escalated.push(follow_up.id);
        }
    }
    Ok(escalated)
}

/// Records older than this need a reason to change.
const AMEND_AFTER: Duration = Duration::hours(48);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecordInput {
    pub patient_id: i64,
    pub status: String,
    #[serde(default)]
    pub note: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttendanceRequest {
    pub records: Vec<RecordInput>,
    #[serde(default)]
    pub amend_reason: Option<String>,
}

struct ValidRecord {
    patient_id: i64,
    status: AttendanceStatus,
    note: Option<String>,
}

fn validate_records(request: &AttendanceRequest) -> AppResult<Vec<ValidRecord>> {
    let mut errors = FieldErrors::new();
    let mut seen = HashSet::new();
    let mut valid = Vec::new();
    if request.records.is_empty() {
        errors.insert("records".into(), "must list at least one member".into());
    }
    for (index, input) in request.records.iter().enumerate() {
        if !seen.insert(input.patient_id) {
            errors.insert(
                format!("records[{index}].patient_id"),
                "is listed twice".into(),
            );
        }
        let status = input
            .status
            .parse::<AttendanceStatus>()
            .map_err(|e| errors.insert(format!("records[{index}].status"), e))
            .ok();
        let note = crate::types::optional_note(input.note.as_deref(), 2000)
            .map_err(|e| errors.insert(format!("records[{index}].note"), e))
            .ok();
        if let (Some(status), Some(note)) = (status, note) {
            valid.push(ValidRecord {
                patient_id: input.patient_id,
                status,
                note,
            });
        }
    }
    AppError::check(errors)?;
    Ok(valid)
}

/// The session and the cohort it belongs to, if the caller may take its attendance.
pub fn session_for_staff(
    conn: &mut DbConnection,
    actor: &Actor,
    session_id: SessionId,
) -> AppResult<(cohorts::SessionRow, CohortRow)> {
    let session = cohorts::find_session(conn, session_id.get())?;
    let cohort = cohort_for_reader(conn, actor, CohortId(session.cohort_id))?;
    Ok((session, cohort))
}

/// Validates and writes one session's attendance (API and pages alike); returns the
/// session's attendance document.
pub fn record(
    conn: &mut DbConnection,
    actor: &Actor,
    session_id: SessionId,
    request: &AttendanceRequest,
) -> AppResult<SessionAttendance> {
    let records_in = validate_records(request)?;
    let amend_reason = crate::types::optional_note(request.amend_reason.as_deref(), 1000)
        .map_err(|e| AppError::field("amend_reason", e))?;
    write_transaction(conn, |conn| {
        let (session, cohort) = session_for_staff(conn, actor, session_id)?;
        let session_id = session_id.get();
        let now = database::now();
        if session.starts_at > now {
            return Err(AppError::Conflict {
                message: "attendance can be taken once the session has started".into(),
                details: Some(json!({"starts_at": session.starts_at.and_utc()})),
            });
        }
        if matches!(
            session.status,
            SessionStatus::Cancelled | SessionStatus::DidNotTakePlace
        ) {
            return Err(AppError::Conflict {
                message: format!("the session is {}", session.status),
                details: Some(json!({"current_status": session.status})),
            });
        }
        let members: HashSet<i64> = cohorts::active_member_ids(conn, cohort.id)?
            .into_iter()
            .collect();
        let mut errors = FieldErrors::new();
        for (index, input) in records_in.iter().enumerate() {
            if !members.contains(&input.patient_id) {
                errors.insert(
                    format!("records[{index}].patient_id"),
                    "is not a current member of this cohort".into(),
                );
            }
        }
        AppError::check(errors)?;

        let existing: HashMap<i64, records::AttendanceRow> =
            records::of_sessions(conn, &[session_id])?
                .into_iter()
                .map(|row| (row.patient_id, row))
                .collect();
        let mut written = 0;
        let mut amendments = Vec::new();
        let mut fresh = Vec::new();
        for input in &records_in {
            match existing.get(&input.patient_id) {
                None => fresh.push(records::NewRecord {
                    cohort_id: cohort.id,
                    session_id,
                    patient_id: input.patient_id,
                    status: input.status,
                    note: input.note.as_deref(),
                    recorded_by: actor.id,
                    recorded_at: now,
                    updated_at: now,
                }),
                Some(old) if old.status == input.status && old.note == input.note => {}
                Some(old) => {
                    if old.recorded_at + AMEND_AFTER < now {
                        let Some(reason) = &amend_reason else {
                            return Err(AppError::field(
                                    "amend_reason",
                                    format!("records older than 48 hours change only with a reason (patient {})", input.patient_id),
                                ));
                        };
                        amendments.push(format!(
                            "patient {}: {} -> {} (reason: {reason})",
                            input.patient_id, old.status, input.status
                        ));
                    }
                    records::update(
                        conn,
                        old.id,
                        input.status,
                        input.note.as_deref(),
                        actor.id,
                        now,
                    )?;
                    written += 1;
                }
            }
        }
        written += records::insert(conn, &fresh)?;
        if session.status == SessionStatus::Scheduled {
            cohorts::set_session_status(conn, session_id, SessionStatus::Held, now)?;
        }
        if written > 0 {
            audit::record(
                conn,
                AuditEvent {
                    actor_user_id: Some(actor.id),
                    action: if amendments.is_empty() {
                        "record_attendance"
                    } else {
                        "amend_attendance"
                    },
                    entity: "session",
                    entity_id: session_id,
                    program_id: Some(cohort.program_id),
                    changed_fields: vec!["attendance".into()],
                    detail: Some(if amendments.is_empty() {
                        format!("{written} record(s)")
                    } else {
                        amendments.join("; ")
                    }),
                },
            )?;
            let program = program_context(conn, ProgramId(cohort.program_id))?;
            let touched: Vec<i64> = records_in.iter().map(|r| r.patient_id).collect();
            open_follow_ups(conn, &program, &cohort, &touched, now)?;
        }
        attendance_document(conn, session_id, &cohort)
    })
}

/// One session's attendance as the people who take it see it.
#[derive(Debug, Serialize)]
pub struct SessionAttendance {
    /// Active members with no record yet.
    pub missing: Vec<i64>,
    pub records: Vec<RecordView>,
    pub session: SessionHeader,
}

#[derive(Debug, Serialize)]
pub struct RecordView {
    pub name: String,
    pub note: Option<String>,
    pub patient_id: i64,
    pub recorded_at: Option<DateTime<Utc>>,
    pub status: Option<AttendanceStatus>,
}

#[derive(Debug, Serialize)]
pub struct SessionHeader {
    pub cohort_id: i64,
    pub id: i64,
    pub seq: i32,
    pub starts_at: DateTime<Utc>,
    pub status: SessionStatus,
}

pub fn attendance_document(
    conn: &mut DbConnection,
    session_id: i64,
    cohort: &CohortRow,
) -> AppResult<SessionAttendance> {
    let session = cohorts::find_session(conn, session_id)?;
    let recorded: HashMap<i64, records::AttendanceRow> = records::of_sessions(conn, &[session_id])?
        .into_iter()
        .map(|row| (row.patient_id, row))
        .collect();
    let records: Vec<RecordView> = cohorts::members_with_names(conn, cohort.id)?
        .into_iter()
        .filter(|(member, _)| {
            member.status == MemberStatus::Active || recorded.contains_key(&member.patient_id)
        })
        .map(|(member, name)| {
            let record = recorded.get(&member.patient_id);
            RecordView {
                name,
                note: record.and_then(|r| r.note.clone()),
                patient_id: member.patient_id,
                recorded_at: record.map(|r| r.recorded_at.and_utc()),
                status: record.map(|r| r.status),
            }
        })
        .collect();
    Ok(SessionAttendance {
        missing: records
            .iter()
            .filter(|r| r.status.is_none())
            .map(|r| r.patient_id)
            .collect(),
        records,
        session: SessionHeader {
            cohort_id: session.cohort_id,
            id: session.id,
            seq: session.seq,
            starts_at: session.starts_at.and_utc(),
            status: session.status,
        },
    })
}

/// Members × sessions with rates, streaks and flags.
#[derive(Debug, Serialize)]
pub struct CohortMatrix {
    pub cohort_id: i64,
    pub members: Vec<MatrixMember>,
    pub sessions: Vec<MatrixSession>,
}

#[derive(Debug, Serialize)]
pub struct MatrixMember {
    pub attended: u32,
    pub completed: bool,
    pub consecutive_absences: u32,
    pub flags: Vec<FollowUpKind>,
    pub held: u32,
    /// One per session, in the order of `sessions`.
    pub marks: Vec<Option<AttendanceStatus>>,
    pub member_status: MemberStatus,
    pub name: String,
    pub patient_id: i64,
    pub rate: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct MatrixSession {
    pub counts: BTreeMap<AttendanceStatus, i64>,
    pub id: i64,
    pub seq: i32,
    pub starts_at: DateTime<Utc>,
    pub status: SessionStatus,
}

impl MatrixSession {
    /// Members marked present, late or left early.
    pub fn attended(&self) -> i64 {
        self.counts
            .iter()
            .filter(|(status, _)| status.attended())
            .map(|(_, n)| n)
            .sum()
    }
}

/// Members × sessions with rates, streaks and flags, for a reader of the cohort.
pub fn cohort_matrix(
    conn: &mut DbConnection,
    actor: &Actor,
    cohort_id: CohortId,
) -> AppResult<CohortMatrix> {
    let cohort = cohort_for_reader(conn, actor, cohort_id)?;
    let cohort_id = cohort_id.get();
    let program = program_context(conn, ProgramId(cohort.program_id))?;
    let sessions = cohorts::sessions_of(conn, &[cohort_id])?;
    let ids: Vec<i64> = sessions.iter().map(|s| s.id).collect();
    let marks: HashMap<(i64, i64), AttendanceStatus> = records::of_sessions(conn, &ids)?
        .into_iter()
        .map(|row| ((row.session_id, row.patient_id), row.status))
        .collect();
    let tallies: HashMap<i64, MemberTally> = records::cohort_tallies(conn, cohort_id)?
        .into_iter()
        .map(|t| (t.patient_id, t))
        .collect();
    let mut counts: HashMap<i64, BTreeMap<AttendanceStatus, i64>> = HashMap::new();
    for (session_id, status, count) in records::session_counts(conn, cohort_id)? {
        counts.entry(session_id).or_default().insert(status, count);
    }
    let open: Vec<records::FollowUpRow> =
        records::list(conn, Some(FollowUpStatus::Open), None, None)?
            .into_iter()
            .filter(|f| f.cohort_id == cohort_id)
            .collect();
    let streaks = CohortMarks::load(conn, cohort_id)?;
    let threshold = program.rules.attendance.completion_threshold;
    let at_risk_after = program.rules.attendance.at_risk_after;
    let members = cohorts::members_with_names(conn, cohort_id)?
        .into_iter()
        .map(|(member, name)| {
            let tally = tallies.get(&member.patient_id);
            let (attended, held) = tally.map_or((0, 0), |t| (t.attended as u32, t.held as u32));
            let streak = streaks.streak(member.patient_id);
            let mut flags: Vec<FollowUpKind> = open
                .iter()
                .filter(|f| f.patient_id == member.patient_id)
                .map(|f| f.kind)
                .collect();
            if streak.absences >= at_risk_after && !flags.contains(&FollowUpKind::AtRisk) {
                flags.push(FollowUpKind::AtRisk);
            }
            MatrixMember {
                attended,
                completed: completed(attended, held, threshold),
                consecutive_absences: streak.absences,
                flags,
                held,
                marks: sessions
                    .iter()
                    .map(|s| marks.get(&(s.id, member.patient_id)).copied())
                    .collect(),
                member_status: member.status,
                name,
                patient_id: member.patient_id,
                rate: attendance_rate(attended, held),
            }
        })
        .collect();
    let sessions = sessions
        .iter()
        .map(|s| MatrixSession {
            counts: counts.remove(&s.id).unwrap_or_default(),
            id: s.id,
            seq: s.seq,
            starts_at: s.starts_at.and_utc(),
            status: s.status,
        })
        .collect();
    Ok(CohortMatrix {
        cohort_id,
        members,
        sessions,
    })
}

#[derive(Serialize)]
pub struct MemberReport {
    pub cohort_id: i64,
    pub patient_id: i64,
    pub name: String,
    pub held: i64,
    pub attended: i64,
    pub excused: i64,
    pub absent: i64,
    pub unrecorded: i64,
    pub rate: Option<f64>,
    pub completed: bool,
}

pub fn parse_date(field: &str, text: Option<&str>) -> AppResult<Option<NaiveDate>> {
    text.map(|t| {
        NaiveDate::parse_from_str(t.trim(), "%Y-%m-%d")
            .map_err(|_| AppError::field(field, "must be a date YYYY-MM-DD"))
    })
    .transpose()
}

/// A report's range, program-local days with `to` inclusive, as UTC instants; `None`
/// leaves that side open.
pub fn report_bounds(
    tz: chrono_tz::Tz,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> (Option<NaiveDateTime>, Option<NaiveDateTime>) {
    let local_midnight = |date: NaiveDate| -> NaiveDateTime {
        crate::domain::schedule::local_to_utc(tz, date, chrono::NaiveTime::MIN).naive_utc()
    };
    (
        from.map(local_midnight),
        to.and_then(|d| d.succ_opt()).map(local_midnight),
    )
}

/// The program report for a lead, one row per member per cohort.
pub fn report(
    conn: &mut DbConnection,
    actor: &Actor,
    program_id: ProgramId,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> AppResult<Vec<MemberReport>> {
    let program = program_context(conn, program_id)?;
    let program_id = program_id.get();
    actor.require_lead_of(program_id)?;
    let (start, end) = report_bounds(program.tz, from, to);
    let threshold = program.rules.attendance.completion_threshold;
    Ok(records::program_tallies(conn, program_id, start, end)?
        .into_iter()
        .map(|t| MemberReport {
            cohort_id: t.cohort_id,
            patient_id: t.patient_id,
            name: t.name,
            held: t.held,
            attended: t.attended,
            excused: t.excused,
            absent: t.absent,
            unrecorded: t.unrecorded,
            rate: attendance_rate(t.attended as u32, t.held as u32),
            completed: completed(t.attended as u32, t.held as u32, threshold),
        })
        .collect())
}

/// Per cohort, from the members' rows: rate, sessions held, completion.
/// One cohort of the program report.
#[derive(Debug, Serialize)]
pub struct CohortSummary {
    pub attendance_rate: Option<f64>,
    pub cohort_id: i64,
    pub completed_members: usize,
    pub completion_rate: f64,
    pub members: usize,
    pub sessions_held: i64,
}

pub fn cohort_summary(members: &[MemberReport]) -> Vec<CohortSummary> {
    let mut by_cohort: BTreeMap<i64, Vec<&MemberReport>> = BTreeMap::new();
    for member in members {
        by_cohort.entry(member.cohort_id).or_default().push(member);
    }
    by_cohort
        .into_iter()
        .map(|(cohort_id, rows)| {
            let held: i64 = rows.iter().map(|r| r.held).sum();
            let attended: i64 = rows.iter().map(|r| r.attended).sum();
            let done = rows.iter().filter(|r| r.completed).count();
            CohortSummary {
                attendance_rate: attendance_rate(attended as u32, held as u32),
                cohort_id,
                completed_members: done,
                completion_rate: done as f64 / rows.len().max(1) as f64,
                members: rows.len(),
                sessions_held: rows.iter().map(|r| r.held).max().unwrap_or(0),
            }
        })
        .collect()
}

/// The per-member report as CSV (a header row even when empty); text cells cannot start
/// a spreadsheet formula.
pub fn report_csv(members: &[MemberReport]) -> AppResult<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    for member in members {
        let name = crate::types::spreadsheet_text(&member.name).into_owned();
        writer
            .serialize(MemberReport { name, ..*member })
            .map_err(|e| anyhow::anyhow!("writing csv: {e}"))?;
    }
    if members.is_empty() {
        writer
            .write_record([
                "cohort_id",
                "patient_id",
                "name",
                "held",
                "attended",
                "excused",
                "absent",
                "unrecorded",
                "rate",
                "completed",
            ])
            .map_err(|e| anyhow::anyhow!("writing csv: {e}"))?;
    }
    Ok(writer
        .into_inner()
        .map_err(|e| anyhow::anyhow!("writing csv: {e}"))?)
}

/// A follow-up as the API shows it (fields in alphabetical order, as before).
#[derive(Debug, Serialize)]
pub struct FollowUpView {
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<i64>,
    pub cohort_id: i64,
    pub consecutive_absences: i32,
    pub due_at: DateTime<Utc>,
    pub escalated_at: Option<DateTime<Utc>>,
    pub id: i64,
    pub kind: FollowUpKind,
    pub note: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub patient_id: i64,
    pub status: FollowUpStatus,
}

impl From<&records::FollowUpRow> for FollowUpView {
    fn from(row: &records::FollowUpRow) -> FollowUpView {
        FollowUpView {
            acknowledged_at: row.acknowledged_at.map(|t| t.and_utc()),
            acknowledged_by: row.acknowledged_by,
            cohort_id: row.cohort_id,
            consecutive_absences: row.consecutive_absences,
            due_at: (row.opened_at + ESCALATE_AFTER).and_utc(),
            escalated_at: row.escalated_at.map(|t| t.and_utc()),
            id: row.id,
            kind: row.kind,
            note: row.note.clone(),
            opened_at: row.opened_at.and_utc(),
            patient_id: row.patient_id,
            status: row.status,
        }
    }
}

/// The follow-ups a caller may see: a facilitator's own cohorts', a lead's programs'.
pub fn list_follow_ups(
    conn: &mut DbConnection,
    actor: &Actor,
    status: Option<&str>,
) -> AppResult<Vec<FollowUpView>> {
    let status = match status {
        None | Some("all") => None,
        Some(text) => Some(
            text.parse::<FollowUpStatus>()
                .map_err(|_| AppError::field("status", "must be open, acknowledged or all"))?,
        ),
    };
    let rows = match actor.role {
        Role::Facilitator => match actor.facilitator_id {
            Some(id) => records::list(conn, status, None, Some(id))?,
            None => vec![],
        },
        _ => records::list(conn, status, actor.program_scope().as_deref(), None)?,
    };
    Ok(rows.iter().map(FollowUpView::from).collect())
}

/// Acknowledges an open follow-up of a cohort the caller may read.
pub fn acknowledge(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
    note: Option<&str>,
) -> AppResult<FollowUpView> {
    let note = crate::types::optional_note(note, 2000).map_err(|e| AppError::field("note", e))?;
    write_transaction(conn, |conn| {
        let follow_up = records::find(conn, id)?;
        let cohort = cohort_for_reader(conn, actor, CohortId(follow_up.cohort_id))?;
        let now = database::now();
        if records::acknowledge(conn, id, actor.id, note.as_deref(), now)? == 0 {
            return Err(AppError::Conflict {
                message: "this follow-up is already acknowledged".into(),
                details: Some(json!({"current_status": follow_up.status})),
            });
        }
        audit::record(
            conn,
            AuditEvent {
                actor_user_id: Some(actor.id),
                action: "acknowledge",
                entity: "follow_up",
                entity_id: id,
                program_id: Some(cohort.program_id),
                changed_fields: vec!["status".into(), "note".into()],
                detail: None,
            },
        )?;
        Ok(FollowUpView::from(&records::find(conn, id)?))
    })
}
