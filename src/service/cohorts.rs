//! Cohorts: who may read them, and the cohort document every reader sees.

use super::auth::Actor;
use super::ProgramContext;
use crate::db::models::cohort::{self as cohorts, CohortRow};
use crate::db::models::program;
use crate::db::DbConnection;
use crate::domain::status::SessionStatus;
use crate::error::AppResult;
use serde_json::{json, Value};

pub fn program_context(conn: &mut DbConnection, program_id: i64) -> AppResult<ProgramContext> {
    ProgramContext::try_from(&program::find(conn, program_id)?)
}

/// Who may read a cohort: a lead of its program, or a facilitator on its team.
pub fn cohort_for_reader(conn: &mut DbConnection, actor: &Actor, id: i64) -> AppResult<CohortRow> {
    let cohort = cohorts::find(conn, id)?;
    actor.require_reader(
        cohort.program_id,
        |facilitator_id| {
            Ok(cohorts::team(conn, id)?
                .iter()
                .any(|(row, _)| row.facilitator_id == facilitator_id))
        },
        "a facilitator sees only their own cohorts",
    )?;
    Ok(cohort)
}

pub fn cohort_for_lead(conn: &mut DbConnection, actor: &Actor, id: i64) -> AppResult<CohortRow> {
    let cohort = cohorts::find(conn, id)?;
    actor.require_lead_of(cohort.program_id)?;
    Ok(cohort)
}

/// The cohort with members, team, staffing and sessions.
pub fn cohort_document(
    conn: &mut DbConnection,
    cohort: &CohortRow,
    show_reasons: bool,
) -> AppResult<Value> {
    let program = program_context(conn, cohort.program_id)?;
    let members: Vec<Value> = cohorts::members_with_names(conn, cohort.id)?
        .into_iter()
        .map(|(member, name)| {
            let mut view = json!({
                "patient_id": member.patient_id,
                "name": name,
                "status": member.status,
                "joined_at": member.joined_at.and_utc(),
                "left_at": member.left_at.map(|at| at.and_utc()),
            });
            if show_reasons {
                view["leave_reason"] = json!(member.leave_reason);
            }
            view
        })
        .collect();
    let team: Vec<Value> = cohorts::team(conn, cohort.id)?
        .into_iter()
        .map(|(row, name)| json!({"facilitator_id": row.facilitator_id, "name": name, "role": row.role}))
        .collect();
    let sessions = cohorts::sessions_of(conn, &[cohort.id])?;
    let rsvps = crate::service::rsvps_of(conn, &sessions.iter().map(|s| s.id).collect::<Vec<_>>())?;
    let session_views: Vec<Value> = sessions
        .iter()
        .map(|s| {
            let starts = s.starts_at.and_utc();
            json!({
                "id": s.id,
                "seq": s.seq,
                "starts_at": starts,
                "ends_at": starts + chrono::Duration::minutes(i64::from(s.duration_minutes)),
                "local_start": starts.with_timezone(&program.tz).format("%a %Y-%m-%d %H:%M %Z").to_string(),
                "status": s.status,
                "rsvp": crate::service::rsvp_counts(&rsvps, s.id),
            })
        })
        .collect();
    let gaps: Vec<String> = serde_json::from_str(&cohort.staffing_gaps).unwrap_or_default();
    let live: Vec<_> = sessions
        .iter()
        .filter(|s| s.status != SessionStatus::Cancelled)
        .collect();
    Ok(json!({
        "id": cohort.id,
        "program_id": cohort.program_id,
        "kind": cohort.kind,
        "modality": cohort.modality,
        "status": cohort.status,
        "venue": cohort.venue.clone().or(program.venue.clone()),
        "join_url": cohort.join_url.clone().or(program.join_url.clone()),
        "first_session_at": live.first().map(|s| s.starts_at.and_utc()),
        "last_session_at": live.last().map(|s| s.starts_at.and_utc()),
        "members": members,
        "facilitators": team,
        "staffing": {"complete": gaps.is_empty(), "gaps": gaps, "override_reason": cohort.override_reason},
        "sessions": session_views,
        "created_at": cohort.created_at.and_utc(),
    }))
}

/// The document as a lead sees it, freshly read.
pub fn lead_view(conn: &mut DbConnection, id: i64) -> AppResult<Value> {
    let cohort = cohorts::find(conn, id)?;
    cohort_document(conn, &cohort, true)
}
