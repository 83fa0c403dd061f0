//! From integration cohort to peer circle: completion, invitations, circle placement.

use super::formation::{add_member, create_cohort_of_kind};
use super::staffing as staffing_io;
use super::ProgramContext;
use crate::db::audit::{self, AuditEvent};
use crate::db::models::attendance as records;
use crate::db::models::cohort::{self as cohorts, CohortRow};
use crate::db::models::patient::{self as patients, NewConsentEvent};
use crate::db::schema::{cohort_members, patients as patient_table, peer_invitations};
use crate::db::DbConnection;
use crate::domain::attendance::completed;
use crate::domain::patient::PatientStatus;
use crate::domain::schedule;
use crate::domain::status::{
    CohortKind, CohortStatus, InvitationStatus, MemberStatus, SessionStatus,
};
use crate::error::{AppError, AppResult};
use crate::per_backend;
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde::Serialize;
use serde_json::json;
use std::collections::HashSet;

#[derive(Debug, Serialize)]
pub struct MemberCompletion {
    pub patient_id: i64,
    pub attended: i64,
    pub held: i64,
    pub completed: bool,
    /// Why someone did not complete, for the lead.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CompletionOutcome {
    pub cohort_id: i64,
    pub status: &'static str,
    pub members: Vec<MemberCompletion>,
    /// Invitation ids created for completers who consent to email.
    pub invitations: Vec<i64>,
}

/// Refuses completion while sessions are ahead or attendance is missing, saying which.
pub fn check_ready(
    conn: &mut DbConnection,
    cohort: &CohortRow,
    now: NaiveDateTime,
) -> AppResult<()> {
    let sessions = cohorts::sessions_of(conn, &[cohort.id])?;
    let ahead: Vec<i64> = sessions
        .iter()
        .filter(|s| s.status == SessionStatus::Scheduled && s.starts_at > now)
        .map(|s| s.id)
        .collect();
    if !ahead.is_empty() {
        return Err(AppError::Conflict {
            message: format!("{} session(s) are still ahead", ahead.len()),
            details: Some(json!({"sessions_ahead": ahead})),
        });
    }
    let unrecorded: Vec<i64> = sessions
        .iter()
        .filter(|s| s.status == SessionStatus::Scheduled)
        .map(|s| s.id)
        .collect();
    let held: Vec<i64> = sessions
        .iter()
        .filter(|s| s.status == SessionStatus::Held)
        .map(|s| s.id)
        .collect();
    let members = cohorts::active_member_ids(conn, cohort.id)?;
    let recorded: HashSet<(i64, i64)> = records::of_sessions(conn, &held)?
        .into_iter()
        .map(|r| (r.session_id, r.patient_id))
        .collect();
    let missing: Vec<serde_json::Value> = held
        .iter()
        .flat_map(|s| members.iter().map(move |p| (*s, *p)))
        .filter(|pair| !recorded.contains(pair))
        .map(|(session_id, patient_id)| json!({"session_id": session_id, "patient_id": patient_id}))
        .collect();
    if !unrecorded.is_empty() || !missing.is_empty() {
        return Err(AppError::Conflict {
            message: "attendance is missing".into(),
            details: Some(
                json!({"sessions_without_attendance": unrecorded, "missing_records": missing}),
            ),
        });
    }
    Ok(())
}

/// Completes a cohort: completers become `completed` (and are invited to a peer circle
/// when they consent to email); the others stay `in_cohort` with the reason.
pub fn complete(
    conn: &mut DbConnection,
    program: &ProgramContext,
    cohort: &CohortRow,
    actor: Option<i64>,
    now: NaiveDateTime,
) -> AppResult<CompletionOutcome> {
    if !matches!(cohort.status, CohortStatus::Forming | CohortStatus::Active) {
        return Err(AppError::Conflict {
            message: format!("the cohort is {}", cohort.status),
            details: Some(json!({"current_status": cohort.status})),
        });
    }
    check_ready(conn, cohort, now)?;
    let threshold = program.rules.attendance.completion_threshold;
    let active: HashSet<i64> = cohorts::active_member_ids(conn, cohort.id)?
        .into_iter()
        .collect();
    let mut members = Vec::new();
    let mut invitations = Vec::new();
    for tally in records::cohort_tallies(conn, cohort.id)? {
        if !active.contains(&tally.patient_id) {
            continue;
        }
        let done = completed(tally.attended as u32, tally.held as u32, threshold);
        let reason = (!done).then(|| {
            format!(
                "attended {} of {} held sessions; completion needs {:.0} %",
                tally.attended,
                tally.held,
                threshold * 100.0
            )
        });
        if done {
            diesel::update(
                cohort_members::table
                    .filter(cohort_members::cohort_id.eq(cohort.id))
                    .filter(cohort_members::patient_id.eq(tally.patient_id))
                    .filter(cohort_members::status.eq(MemberStatus::Active)),
            )
            .set((
                cohort_members::status.eq(MemberStatus::Completed),
                cohort_members::left_at.eq(now),
            ))
            .execute(conn)?;
            patients::set_status(
                conn,
                &[tally.patient_id],
                PatientStatus::Completed.as_str(),
                now,
            )?;
            let patient = patients::find(conn, tally.patient_id)?;
            if cohort.kind == CohortKind::Integration && patient.email_consent {
                let invitation = invite(conn, tally.patient_id, cohort.id, now)?;
                crate::outbox::enqueue_peer_invitation(
                    conn,
                    tally.patient_id,
                    cohort.id,
                    invitation,
                    now,
                )?;
                invitations.push(invitation);
            }
        }
        members.push(MemberCompletion {
            patient_id: tally.patient_id,
            attended: tally.attended,
            held: tally.held,
            completed: done,
            reason,
        });
    }
    diesel::update(crate::db::schema::cohorts::table.find(cohort.id))
        .set((
            crate::db::schema::cohorts::status.eq(CohortStatus::Completed),
            crate::db::schema::cohorts::updated_at.eq(now),
        ))
        .execute(conn)?;
    audit::record(
        conn,
        AuditEvent {
            actor_user_id: actor,
            action: "complete",
            entity: "cohort",
            entity_id: cohort.id,
            program_id: Some(program.id),
            changed_fields: vec!["status".into(), "members".into()],
            detail: Some(format!(
                "{} of {} completed",
                members.iter().filter(|m| m.completed).count(),
                members.len()
            )),
        },
    )?;
    Ok(CompletionOutcome {
        cohort_id: cohort.id,
        status: "completed",
        members,
        invitations,
    })
}

fn invite(
    conn: &mut DbConnection,
    patient_id: i64,
    cohort_id: i64,
    now: NaiveDateTime,
) -> AppResult<i64> {
    let id = per_backend!(conn, |c| diesel::insert_into(peer_invitations::table)
        .values((
            peer_invitations::patient_id.eq(patient_id),
            peer_invitations::cohort_id.eq(cohort_id),
            peer_invitations::status.eq(InvitationStatus::Pending),
            peer_invitations::created_at.eq(now),
        ))
        .returning(peer_invitations::id)
        .get_result::<i64>(c))?;
    Ok(id)
}

#[derive(Debug, Clone, Queryable, Serialize)]
pub struct Invitation {
    pub id: i64,
    pub patient_id: i64,
    pub cohort_id: i64,
    pub status: InvitationStatus,
    pub circle_id: Option<i64>,
    pub created_at: NaiveDateTime,
    pub responded_at: Option<NaiveDateTime>,
}

pub fn find_invitation(conn: &mut DbConnection, id: i64) -> AppResult<Invitation> {
    Ok(peer_invitations::table.find(id).first(conn)?)
}

pub fn invitations_of(conn: &mut DbConnection, patient_id: i64) -> AppResult<Vec<Invitation>> {
    Ok(peer_invitations::table
        .filter(peer_invitations::patient_id.eq(patient_id))
        .order(peer_invitations::id)
        .load(conn)?)
}

/// Accepting is fresh consent: recorded with its time, then a seat in an open circle
/// (a new circle when every one is full). Answering twice gives the same circle.
pub fn accept(conn: &mut DbConnection, invitation_id: i64, now: NaiveDateTime) -> AppResult<i64> {
    let invitation = find_invitation(conn, invitation_id)?;
    if let (Some(circle), InvitationStatus::Accepted) = (invitation.circle_id, invitation.status) {
        return Ok(circle);
    }
    let patient = patients::find(conn, invitation.patient_id)?;
    if patient.status != PatientStatus::Completed.as_str() {
        return Err(AppError::Conflict {
            message: "this invitation can no longer be accepted".into(),
            details: Some(json!({"current_status": patient.status})),
        });
    }
    let program =
        ProgramContext::try_from(&crate::db::models::program::find(conn, patient.program_id)?)?;
    record_consent(conn, patient.id, true, now)?;
    let circle = match open_circle(conn, &program, now)? {
        Some(circle) => circle,
        None => create_circle(conn, &program, now)?,
    };
    add_member(conn, program.id, circle, patient.id, None, now)?;
    patients::set_status(
        conn,
        &[patient.id],
        PatientStatus::PeerSupport.as_str(),
        now,
    )?;
    diesel::update(peer_invitations::table.find(invitation_id))
        .set((
            peer_invitations::status.eq(InvitationStatus::Accepted),
            peer_invitations::circle_id.eq(circle),
            peer_invitations::responded_at.eq(now),
        ))
        .execute(conn)?;
    Ok(circle)
}

pub fn decline(conn: &mut DbConnection, invitation_id: i64, now: NaiveDateTime) -> AppResult<()> {
    let invitation = find_invitation(conn, invitation_id)?;
    if invitation.status == InvitationStatus::Accepted {
        return Err(AppError::Conflict {
            message: "this invitation was accepted; leave the circle instead".into(),
            details: Some(json!({"current_status": invitation.status})),
        });
    }
    diesel::update(peer_invitations::table.find(invitation_id))
        .set((
            peer_invitations::status.eq(InvitationStatus::Declined),
            peer_invitations::responded_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

fn record_consent(
    conn: &mut DbConnection,
    patient_id: i64,
    consent: bool,
    now: NaiveDateTime,
) -> AppResult<()> {
    patients::insert_consent_events(
        conn,
        &[NewConsentEvent {
            patient_id,
            email_consent: consent,
            source: "peer_invitation",
            at: now,
        }],
    )?;
    diesel::update(patient_table::table.find(patient_id))
        .set((
            patient_table::email_consent.eq(consent),
            patient_table::consent_changed_at.eq(now),
        ))
        .execute(conn)?;
    Ok(())
}

/// The oldest circle of the program that still meets in future and has a free seat.
pub fn open_circle(
    conn: &mut DbConnection,
    program: &ProgramContext,
    now: NaiveDateTime,
) -> AppResult<Option<i64>> {
    let capacity = program.rules.peer_support.max_size as usize;
    for status in [CohortStatus::Forming, CohortStatus::Active] {
        for circle in cohorts::of_program(conn, program.id, CohortKind::PeerSupport, Some(status))?
        {
            let meets_again = cohorts::sessions_of(conn, &[circle.id])?
                .iter()
                .any(|s| s.status == SessionStatus::Scheduled && s.starts_at > now);
            if meets_again && cohorts::active_member_ids(conn, circle.id)?.len() < capacity {
                return Ok(Some(circle.id));
            }
        }
    }
    Ok(None)
}

/// A new circle in the program's weekly slot, every `interval_weeks`, staffed by peers.
pub fn create_circle(
    conn: &mut DbConnection,
    program: &ProgramContext,
    now: NaiveDateTime,
) -> AppResult<i64> {
    let rules = &program.rules;
    let today = program.local_date(now);
    let first = schedule::next_on_weekday(
        today + Duration::days(i64::from(rules.schedule.notice_days)),
        rules.schedule.weekday.0,
    );
    let starts = schedule::weekly_sessions(
        program.tz,
        first,
        rules.schedule.local_time.0,
        rules.peer_support.sessions,
        rules.peer_support.interval_weeks,
    );
    let id = create_cohort_of_kind(
        conn,
        program,
        CohortKind::PeerSupport,
        program.modality,
        &[],
        &starts,
        program.duration_minutes(),
        None,
        now,
    )?;
    let circle = cohorts::find(conn, id)?;
    staffing_io::auto_staff(conn, program, &circle, None, now)?;
    Ok(id)
}

/// Integration cohorts whose last session is `auto_complete_after_days` behind and whose
/// attendance is complete; the worker completes them.
pub fn auto_complete_due(
    conn: &mut DbConnection,
    now: NaiveDateTime,
) -> AppResult<Vec<CompletionOutcome>> {
    let mut done = Vec::new();
    for program_row in crate::db::models::program::list(conn, None)? {
        let program = ProgramContext::try_from(&program_row)?;
        let days = program.rules.peer_support.auto_complete_after_days;
        if days == 0 {
            continue;
        }
        for cohort in cohorts::of_program(
            conn,
            program.id,
            CohortKind::Integration,
            Some(CohortStatus::Active),
        )? {
            let sessions = cohorts::sessions_of(conn, &[cohort.id])?;
            let Some(last) = sessions
                .iter()
                .filter(|s| s.status != SessionStatus::Cancelled)
                .map(|s| s.starts_at)
                .max()
            else {
                continue;
            };
            if last + Duration::days(i64::from(days)) > now
                || check_ready(conn, &cohort, now).is_err()
            {
                continue;
            }
            done.push(complete(conn, &program, &cohort, None, now)?);
        }
    }
    Ok(done)
}

/// The integration cohorts a circle's members came from (circles mix cohorts).
pub fn origins(
    conn: &mut DbConnection,
    circle_id: i64,
) -> AppResult<std::collections::BTreeSet<i64>> {
    Ok(peer_invitations::table
        .filter(peer_invitations::circle_id.eq(circle_id))
        .select(peer_invitations::cohort_id)
        .load::<i64>(conn)?
        .into_iter()
        .collect())
}
