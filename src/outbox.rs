//! The durable outbox: one row per email, enqueued in the caller's transaction under a
//! unique key (kind, entity, recipient, offset, revision) so nothing is enqueued twice.
//!
//! Public entry points for the rest of the service take `&mut DbConnection` and the
//! current time, and never send anything themselves: the worker does.

use crate::db::models::cohort as cohorts;
use crate::db::models::patient as patients;
use crate::db::models::user as users;
use crate::db::schema::{cohort_members, outbox};
use crate::db::DbConnection;
use crate::domain::staffing::Role as TeamRole;
use crate::domain::status::{MailKind, OutboxStatus, RecipientType};
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde_json::json;

#[derive(Debug, Clone, Queryable, QueryableByName, Selectable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: i64,
    pub kind: MailKind,
    pub entity_type: String,
    pub entity_id: i64,
    pub recipient_type: RecipientType,
    pub recipient_id: i64,
    pub offset_hours: i32,
    pub revision: i32,
    pub program_id: i64,
    pub payload: String,
    pub status: OutboxStatus,
    pub due_at: NaiveDateTime,
    pub next_attempt_at: NaiveDateTime,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub message_id: String,
    pub claimed_by: Option<String>,
    pub claimed_at: Option<NaiveDateTime>,
    pub sent_at: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = outbox)]
pub struct NewOutbox {
    pub kind: MailKind,
    pub entity_type: String,
    pub entity_id: i64,
    pub recipient_type: RecipientType,
    pub recipient_id: i64,
    pub offset_hours: i32,
    pub revision: i32,
    pub program_id: i64,
    pub payload: String,
    pub status: OutboxStatus,
    pub due_at: NaiveDateTime,
    pub next_attempt_at: NaiveDateTime,
    pub attempts: i32,
    pub message_id: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

/// What an email is about and who gets it; everything else has a default.
#[derive(Debug, Clone)]
pub struct Mail<'a> {
    pub kind: MailKind,
    pub entity_type: &'a str,
    pub entity_id: i64,
    pub recipient_type: RecipientType,
    pub recipient_id: i64,
    pub offset_hours: i32,
    pub revision: i32,
    pub program_id: i64,
    pub payload: serde_json::Value,
    pub due_at: NaiveDateTime,
}

impl Mail<'_> {
    pub fn row(&self, now: NaiveDateTime) -> NewOutbox {
        NewOutbox {
            kind: self.kind,
            entity_type: self.entity_type.into(),
            entity_id: self.entity_id,
            recipient_type: self.recipient_type,
            recipient_id: self.recipient_id,
            offset_hours: self.offset_hours,
            revision: self.revision,
            program_id: self.program_id,
            payload: self.payload.to_string(),
            status: OutboxStatus::Pending,
            due_at: self.due_at,
            next_attempt_at: self.due_at,
            attempts: 0,
            // Fixed at enqueue and reused on every attempt, so a resend after a crash
            // is recognisable as the same message.
            message_id: format!("<{}@cohorts>", uuid::Uuid::new_v4().simple()),
            created_at: now,
            updated_at: now,
        }
    }
}

const BATCH_ROWS: usize = 200;

/// Inserts what is not there yet (`ON CONFLICT DO NOTHING`); returns how many were new.
pub fn enqueue(
    conn: &mut DbConnection,
    mails: &[Mail<'_>],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let rows: Vec<NewOutbox> = mails.iter().map(|mail| mail.row(now)).collect();
    let mut inserted = 0;
    for chunk in rows.chunks(BATCH_ROWS) {
        inserted += match conn {
            DbConnection::Postgres(pg) => diesel::insert_into(outbox::table)
                .values(chunk)
                .on_conflict_do_nothing()
                .execute(pg)?,
            DbConnection::Sqlite(sqlite) => {
                let mut count = 0;
                for row in chunk {
                    count += diesel::insert_into(outbox::table)
                        .values(row)
                        .on_conflict_do_nothing()
                        .execute(sqlite)?;
                }
                count
            }
        };
    }
    Ok(inserted)
}

/// The welcome of a patient who joins a cohort: the schedule and one .ics of every
/// upcoming session. Nothing when the cohort has no session ahead (an imported past one).
pub fn enqueue_welcome(
    conn: &mut DbConnection,
    cohort_id: i64,
    patient_id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    if !cohorts::has_session_ahead(conn, cohort_id, now)? {
        return Ok(0);
    }
    let cohort = cohorts::find(conn, cohort_id)?;
    // A patient who re-joins the same cohort is welcomed once per membership.
    let memberships: i64 = cohort_members::table
        .filter(cohort_members::cohort_id.eq(cohort_id))
        .filter(cohort_members::patient_id.eq(patient_id))
        .count()
        .get_result(conn)?;
    enqueue(
        conn,
        &[Mail {
            kind: MailKind::Welcome,
            entity_type: "cohort",
            entity_id: cohort_id,
            recipient_type: RecipientType::Patient,
            recipient_id: patient_id,
            offset_hours: 0,
            revision: memberships.saturating_sub(1) as i32,
            program_id: cohort.program_id,
            payload: json!({}),
            due_at: now,
        }],
        now,
    )
}

/// What happened to a session, for the notices of `enqueue_session_notice`.
#[derive(Debug, Clone, Copy)]
pub enum SessionNotice {
    Changed { old_starts_at: NaiveDateTime },
    Cancelled,
}

/// Notices to every active member and facilitator after a session was rescheduled or
/// cancelled (call after the session row was updated, in the same transaction).
/// Reminders and rosters queued for the old time are cancelled; the planner plans new
/// ones for a new time.
pub fn enqueue_session_notice(
    conn: &mut DbConnection,
    session_id: i64,
    notice: SessionNotice,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let session = cohorts::find_session(conn, session_id)?;
    let cohort = cohorts::find(conn, session.cohort_id)?;
    cancel_for_session(conn, session_id, now)?;
    if session.starts_at <= now {
        return Ok(0);
    }
    let (kind, payload) = match notice {
        SessionNotice::Changed { old_starts_at } => (
            MailKind::SessionChanged,
            json!({"old_starts_at": old_starts_at.and_utc().to_rfc3339()}),
        ),
        SessionNotice::Cancelled => (MailKind::SessionCancelled, json!({})),
    };
    let members = cohorts::active_member_ids(conn, cohort.id)?;
    let team: Vec<i64> = cohorts::team(conn, cohort.id)?
        .into_iter()
        .map(|(row, _)| row.facilitator_id)
        .collect();
    let mut mails = Vec::with_capacity(members.len() + team.len());
    for (recipient_type, ids) in [
        (RecipientType::Patient, &members),
        (RecipientType::Facilitator, &team),
    ] {
        for id in ids {
            mails.push(Mail {
                kind,
                entity_type: "session",
                entity_id: session_id,
                recipient_type,
                recipient_id: *id,
                offset_hours: 0,
                revision: session.ics_sequence,
                program_id: cohort.program_id,
                payload: payload.clone(),
                due_at: now,
            });
        }
    }
    enqueue(conn, &mails, now)
}

/// To the cohort's facilitators: a session ended and nobody recorded attendance.
pub fn enqueue_attendance_missing(
    conn: &mut DbConnection,
    session_id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let session = cohorts::find_session(conn, session_id)?;
    let cohort = cohorts::find(conn, session.cohort_id)?;
    let mails: Vec<Mail> = cohorts::team(conn, cohort.id)?
        .into_iter()
        .map(|(row, _)| Mail {
            kind: MailKind::AttendanceMissing,
            entity_type: "session",
            entity_id: session_id,
            recipient_type: RecipientType::Facilitator,
            recipient_id: row.facilitator_id,
            offset_hours: 0,
            revision: 0,
            program_id: cohort.program_id,
            payload: json!({}),
            due_at: now,
        })
        .collect();
    enqueue(conn, &mails, now)
}

/// To the given facilitators: follow-up task `follow_up_id` was opened for a member of
/// `cohort_id` after `consecutive_absences` absences in a row.
pub fn enqueue_follow_up(
    conn: &mut DbConnection,
    follow_up_id: i64,
    cohort_id: i64,
    patient_id: i64,
    consecutive_absences: u32,
    facilitator_ids: &[i64],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let cohort = cohorts::find(conn, cohort_id)?;
    let payload = json!({
        "cohort_id": cohort_id,
        "patient_id": patient_id,
        "consecutive_absences": consecutive_absences,
    });
    let mails: Vec<Mail> = facilitator_ids
        .iter()
        .map(|id| Mail {
            kind: MailKind::FollowUp,
            entity_type: "follow_up",
            entity_id: follow_up_id,
            recipient_type: RecipientType::Facilitator,
            recipient_id: *id,
            offset_hours: 0,
            revision: 0,
            program_id: cohort.program_id,
            payload: payload.clone(),
            due_at: now,
        })
        .collect();
    enqueue(conn, &mails, now)
}

/// To each program lead of the cohort's program: follow-up `follow_up_id` escalated
/// (left unacknowledged, or a member flagged at risk). Call in the transaction that
/// marks the escalation; a follow-up escalates once, so its leads hear of it once.
pub fn enqueue_escalation(
    conn: &mut DbConnection,
    follow_up_id: i64,
    cohort_id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let cohort = cohorts::find(conn, cohort_id)?;
    let mails: Vec<Mail> = users::leads_of(conn, cohort.program_id)?
        .into_iter()
        .map(|lead| Mail {
            kind: MailKind::FollowUpEscalated,
            entity_type: "follow_up",
            entity_id: follow_up_id,
            recipient_type: RecipientType::User,
            recipient_id: lead,
            offset_hours: 0,
            revision: 0,
            program_id: cohort.program_id,
            payload: json!({}),
            due_at: now,
        })
        .collect();
    enqueue(conn, &mails, now)
}

/// A facilitator's place on a team: (facilitator id, role).
pub type TeamPlace = (i64, TeamRole);

/// Every assignment and unassignment mail of one facilitator about one cohort (a macro:
/// it serves both a select and an update, whose query types differ).
macro_rules! team_mail {
    ($cohort_id:expr, $facilitator_id:expr) => {
        outbox::table
            .filter(outbox::kind.eq_any([
                MailKind::FacilitatorAssignment,
                MailKind::FacilitatorUnassigned,
            ]))
            .filter(outbox::entity_type.eq("cohort"))
            .filter(outbox::entity_id.eq($cohort_id))
            .filter(outbox::recipient_type.eq(RecipientType::Facilitator))
            .filter(outbox::recipient_id.eq($facilitator_id))
    };
}

/// Tells facilitators what a change to a cohort's team means for them (call in the
/// transaction that wrote the team): `facilitator_assignment` to each one newly on it or
/// whose role changed, `facilitator_unassigned` to each one taken off who had been told
/// they were on it. Someone who stays in the same role hears nothing. Nothing at all
/// when the cohort has no session ahead (an imported past one).
pub fn enqueue_team_change(
    conn: &mut DbConnection,
    cohort_id: i64,
    before: &[TeamPlace],
    after: &[TeamPlace],
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let role_in =
        |team: &[TeamPlace], id: i64| team.iter().find(|(f, _)| *f == id).map(|(_, role)| *role);
    let changed: Vec<(i64, TeamRole, Option<TeamRole>)> = after
        .iter()
        .filter_map(|(id, role)| match role_in(before, *id) {
            Some(old) if old == *role => None,
            old => Some((*id, *role, old)),
        })
        .collect();
    let removed: Vec<i64> = before
        .iter()
        .filter(|(id, _)| role_in(after, *id).is_none())
        .map(|(id, _)| *id)
        .collect();
    if changed.is_empty() && removed.is_empty() {
        return Ok(0);
    }
    if !cohorts::has_session_ahead(conn, cohort_id, now)? {
        return Ok(0);
    }
    let cohort = cohorts::find(conn, cohort_id)?;
    let mut queued = 0;
    for (facilitator_id, role, previous_role) in changed {
        // Only the latest news about this team stands.
        supersede_team_mail(conn, cohort_id, facilitator_id, now)?;
        let payload = json!({"role": role, "previous_role": previous_role});
        queued += enqueue_team_mail(
            conn,
            &cohort,
            MailKind::FacilitatorAssignment,
            facilitator_id,
            payload,
            now,
        )?;
    }
    for facilitator_id in removed {
        let told = told_on_team(conn, cohort_id, facilitator_id)?;
        supersede_team_mail(conn, cohort_id, facilitator_id, now)?;
        if told {
            queued += enqueue_team_mail(
                conn,
                &cohort,
                MailKind::FacilitatorUnassigned,
                facilitator_id,
                json!({}),
                now,
            )?;
        }
    }
    Ok(queued)
}

/// What to add to a session's `ics_sequence` in the calendar file of outbox row `row`
/// about a session of `cohort_id`. SEQUENCE must rise with every message about a UID
/// that its recipient can receive; besides changes to the session (which bump
/// `ics_sequence`), the recipient's own place changes: a facilitator told they are on
/// the team, off it, on it again (each such mail up to this row counts), a patient who
/// re-joins the cohort (each earlier membership counts).
pub fn calendar_offset(
    conn: &mut DbConnection,
    row: &OutboxRow,
    cohort_id: i64,
) -> QueryResult<i32> {
    let count: i64 = match row.recipient_type {
        RecipientType::Facilitator => team_mail!(cohort_id, row.recipient_id)
            .filter(outbox::id.le(row.id))
            .count()
            .get_result(conn)?,
        RecipientType::Patient => {
            let memberships: i64 = cohort_members::table
                .filter(cohort_members::cohort_id.eq(cohort_id))
                .filter(cohort_members::patient_id.eq(row.recipient_id))
                .count()
                .get_result(conn)?;
            memberships.saturating_sub(1)
        }
        RecipientType::User => 0,
    };
    Ok(i32::try_from(count).unwrap_or(i32::MAX))
}

/// Whether a facilitator last heard they were on a cohort's team: their latest delivered
/// team mail is an assignment, or there is none at all (a team written before these
/// mails existed). Someone whose assignment never went out is not told of the removal.
fn told_on_team(conn: &mut DbConnection, cohort_id: i64, facilitator_id: i64) -> QueryResult<bool> {
    let rows: Vec<(MailKind, OutboxStatus)> = team_mail!(cohort_id, facilitator_id)
        .order(outbox::id.desc())
        .select((outbox::kind, outbox::status))
        .load(conn)?;
    if rows.is_empty() {
        return Ok(true);
    }
    Ok(rows
        .iter()
        .find(|(_, status)| matches!(status, OutboxStatus::Sent | OutboxStatus::Sending))
        .is_some_and(|(kind, _)| *kind == MailKind::FacilitatorAssignment))
}

/// Cancels team mail still queued for a facilitator about a cohort: newer news replaces it.
fn supersede_team_mail(
    conn: &mut DbConnection,
    cohort_id: i64,
    facilitator_id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        team_mail!(cohort_id, facilitator_id).filter(outbox::status.eq(OutboxStatus::Pending)),
    )
    .set((
        outbox::status.eq(OutboxStatus::Cancelled),
        outbox::last_error.eq("the team changed again"),
        outbox::updated_at.eq(now),
    ))
    .execute(conn)
}

fn enqueue_team_mail(
    conn: &mut DbConnection,
    cohort: &cohorts::CohortRow,
    kind: MailKind,
    facilitator_id: i64,
    payload: serde_json::Value,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    // One revision per message of this kind, so someone removed and added again later
    // is told again.
    let earlier: i64 = team_mail!(cohort.id, facilitator_id)
        .filter(outbox::kind.eq(kind))
        .count()
        .get_result(conn)?;
    enqueue(
        conn,
        &[Mail {
            kind,
            entity_type: "cohort",
            entity_id: cohort.id,
            recipient_type: RecipientType::Facilitator,
            recipient_id: facilitator_id,
            offset_hours: 0,
            revision: i32::try_from(earlier).unwrap_or(i32::MAX),
            program_id: cohort.program_id,
            payload,
            due_at: now,
        }],
        now,
    )
}

/// Invitation `invitation_id` to a peer circle, for a patient who completed `cohort_id`.
pub fn enqueue_peer_invitation(
    conn: &mut DbConnection,
    patient_id: i64,
    cohort_id: i64,
    invitation_id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let patient = patients::find(conn, patient_id)?;
    enqueue(
        conn,
        &[Mail {
            kind: MailKind::PeerInvitation,
            entity_type: "cohort",
            entity_id: cohort_id,
            recipient_type: RecipientType::Patient,
            recipient_id: patient_id,
            offset_hours: 0,
            revision: 0,
            program_id: patient.program_id,
            payload: json!({ "invitation_id": invitation_id }),
            due_at: now,
        }],
        now,
    )
}

/// Cancels everything still queued for a patient (withdrawn, consent revoked).
pub fn cancel_for_patient(
    conn: &mut DbConnection,
    patient_id: i64,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        outbox::table
            .filter(outbox::recipient_type.eq(RecipientType::Patient))
            .filter(outbox::recipient_id.eq(patient_id))
            .filter(outbox::status.eq(OutboxStatus::Pending)),
    )
    .set((
        outbox::status.eq(OutboxStatus::Cancelled),
        outbox::last_error.eq(reason),
        outbox::updated_at.eq(now),
    ))
    .execute(conn)
}

/// Cancels reminders and rosters still queued for a session (rescheduled or cancelled).
pub fn cancel_for_session(
    conn: &mut DbConnection,
    session_id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        outbox::table
            .filter(outbox::entity_type.eq("session"))
            .filter(outbox::entity_id.eq(session_id))
            .filter(outbox::kind.eq_any([MailKind::Reminder, MailKind::FacilitatorRoster]))
            .filter(outbox::status.eq(OutboxStatus::Pending)),
    )
    .set((
        outbox::status.eq(OutboxStatus::Cancelled),
        outbox::last_error.eq("the session changed"),
        outbox::updated_at.eq(now),
    ))
    .execute(conn)
}

/// Takes up to `limit` due rows for `worker`: pending ones whose time has come, and
/// rows a crashed worker claimed longer than `lease_expired_before` ago. PostgreSQL
/// skips rows another worker is claiming (`FOR UPDATE SKIP LOCKED`); SQLite has one
/// writer at a time, so a single UPDATE … RETURNING is already exclusive.
pub fn claim(
    conn: &mut DbConnection,
    worker: &str,
    now: NaiveDateTime,
    lease_expired_before: NaiveDateTime,
    limit: i64,
) -> QueryResult<Vec<OutboxRow>> {
    use diesel::sql_types::{BigInt, Text, Timestamp};
    const SET: &str = "UPDATE outbox SET status = 'sending', claimed_by = {w}, claimed_at = {n}, \
                       attempts = attempts + 1, updated_at = {n} WHERE id IN (SELECT id FROM outbox \
                       WHERE (status = 'pending' AND next_attempt_at <= {n}) \
                       OR (status = 'sending' AND claimed_at <= {l}) \
                       ORDER BY next_attempt_at, id LIMIT {k}{lock}) RETURNING *";
    match conn {
        DbConnection::Postgres(pg) => {
            let sql = SET
                .replace("{w}", "$1")
                .replace("{n}", "$2")
                .replace("{l}", "$3")
                .replace("{k}", "$4")
                .replace("{lock}", " FOR UPDATE SKIP LOCKED");
            diesel::sql_query(sql)
                .bind::<Text, _>(worker)
                .bind::<Timestamp, _>(now)
                .bind::<Timestamp, _>(lease_expired_before)
                .bind::<BigInt, _>(limit)
                .load(pg)
        }
        DbConnection::Sqlite(sqlite) => {
            let sql = SET
                .replace("{w}", "?1")
                .replace("{n}", "?2")
                .replace("{l}", "?3")
                .replace("{k}", "?4")
                .replace("{lock}", "");
            diesel::sql_query(sql)
                .bind::<Text, _>(worker)
                .bind::<Timestamp, _>(now)
                .bind::<Timestamp, _>(lease_expired_before)
                .bind::<BigInt, _>(limit)
                .load(sqlite)
        }
    }
}

/// The heartbeat of a live worker: renews the lease of every row it is still sending,
/// so a short lease reclaims only the rows of a worker that died.
pub fn renew_claims(
    conn: &mut DbConnection,
    worker: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        outbox::table
            .filter(outbox::status.eq(OutboxStatus::Sending))
            .filter(outbox::claimed_by.eq(worker)),
    )
    .set(outbox::claimed_at.eq(now))
    .execute(conn)
}

pub fn mark_sent(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::status.eq(OutboxStatus::Sent),
            outbox::sent_at.eq(now),
            outbox::last_error.eq(None::<String>),
            outbox::updated_at.eq(now),
        ))
        .execute(conn)
}

/// What stands for an email address in an error text.
pub const REDACTED_ADDRESS: &str = "[address]";

/// An error text with every email address in it replaced by `[address]`: SMTP servers
/// quote the recipient in their replies (`550 5.1.1 <ana@…>: Recipient address
/// rejected`), and such a text is logged, kept in `last_error` and shown to leads.
pub fn redact_addresses(text: &str) -> String {
    let local = |c: char| c.is_alphanumeric() || "!#$%&'*+/=?^_`{|}~.-\"".contains(c);
    let domain = |c: char| c.is_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':');
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at < chars.len() {
        if chars[at] != '@' {
            at += 1;
            continue;
        }
        let mut start = at;
        while start > copied && local(chars[start - 1]) {
            start -= 1;
        }
        let mut end = at + 1;
        while end < chars.len() && domain(chars[end]) {
            end += 1;
        }
        // A sentence's full stop after the address is not part of it.
        while end > at + 1 && matches!(chars[end - 1], '.' | ':') {
            end -= 1;
        }
        if start < at && end > at + 1 {
            out.extend(&chars[copied..start]);
            out.push_str(REDACTED_ADDRESS);
            copied = end;
            at = end;
        } else {
            at += 1;
        }
    }
    out.extend(&chars[copied..]);
    out
}

/// A failed attempt: back to pending for `retry_at`, or `failed` when attempts ran out.
pub fn mark_failed(
    conn: &mut DbConnection,
    id: i64,
    error: &str,
    retry_at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    let error: String = error.chars().take(500).collect();
    let target = outbox::table.find(id);
    match retry_at {
        Some(at) => diesel::update(target)
            .set((
                outbox::status.eq(OutboxStatus::Pending),
                outbox::next_attempt_at.eq(at),
                outbox::last_error.eq(error),
                outbox::claimed_by.eq(None::<String>),
                outbox::updated_at.eq(now),
            ))
            .execute(conn),
        None => diesel::update(target)
            .set((
                outbox::status.eq(OutboxStatus::Failed),
                outbox::last_error.eq(error),
                outbox::claimed_by.eq(None::<String>),
                outbox::updated_at.eq(now),
            ))
            .execute(conn),
    }
}

/// Nothing to send after all (no consent, member left, session moved): cancelled, with why.
pub fn mark_cancelled(
    conn: &mut DbConnection,
    id: i64,
    reason: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(outbox::table.find(id))
        .set((
            outbox::status.eq(OutboxStatus::Cancelled),
            outbox::last_error.eq(reason),
            outbox::claimed_by.eq(None::<String>),
            outbox::updated_at.eq(now),
        ))
        .execute(conn)
}

/// A failed row back to pending, due now, with a fresh set of attempts.
pub fn retry(conn: &mut DbConnection, id: i64, now: NaiveDateTime) -> QueryResult<usize> {
    diesel::update(
        outbox::table
            .find(id)
            .filter(outbox::status.eq(OutboxStatus::Failed)),
    )
    .set((
        outbox::status.eq(OutboxStatus::Pending),
        outbox::attempts.eq(0),
        outbox::next_attempt_at.eq(now),
        outbox::updated_at.eq(now),
    ))
    .execute(conn)
}

pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<OutboxRow> {
    outbox::table
        .find(id)
        .select(OutboxRow::as_select())
        .first(conn)
}

/// Rows of some programs (`None`: all), newest first.
pub fn list(
    conn: &mut DbConnection,
    programs: Option<&[i64]>,
    status: Option<OutboxStatus>,
    limit: i64,
) -> QueryResult<Vec<OutboxRow>> {
    let mut query = outbox::table
        .select(OutboxRow::as_select())
        .order(outbox::id.desc())
        .limit(limit)
        .into_boxed();
    if let Some(ids) = programs {
        query = query.filter(outbox::program_id.eq_any(ids.to_vec()));
    }
    if let Some(status) = status {
        query = query.filter(outbox::status.eq(status));
    }
    query.load(conn)
}

/// Rows per status, for the metrics.
pub fn depth(conn: &mut DbConnection) -> QueryResult<Vec<(OutboxStatus, i64)>> {
    outbox::table
        .group_by(outbox::status)
        .select((outbox::status, diesel::dsl::count_star()))
        .load(conn)
}

/// `cohorts_outbox_depth{status="…"}` for every status, zero included.
pub fn depth_gauges(depth: &[(OutboxStatus, i64)]) -> Vec<(String, f64)> {
    OutboxStatus::ALL
        .iter()
        .map(|status| {
            let count = depth
                .iter()
                .find(|(s, _)| s == status)
                .map(|(_, n)| *n)
                .unwrap_or(0);
            (
                format!("cohorts_outbox_depth{{status=\"{status}\"}}"),
                count as f64,
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::redact_addresses;

    #[test]
    fn addresses_are_redacted_from_error_texts() {
        assert_eq!(
            redact_addresses(
                "SMTP: permanent error (550): 5.1.1 <ana.quill+x@mail.example.org>: \
                 Recipient address rejected (ana.quill+x@mail.example.org)."
            ),
            "SMTP: permanent error (550): 5.1.1 <[address]>: Recipient address rejected ([address])."
        );
        assert_eq!(
            redact_addresses("to \"a b\"@x.org and jörg@bücher.de"),
            "to \"a [address] and [address]"
        );
        assert_eq!(
            redact_addresses("user@ at @host, a@b"),
            "user@ at @host, [address]"
        );
        assert_eq!(
            redact_addresses("451 try again later"),
            "451 try again later"
        );
    }
}
