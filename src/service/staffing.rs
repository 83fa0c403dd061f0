//! Staffing against stored facilitators: building the domain's inputs, applying teams.

use super::ProgramContext;
use crate::db::models::cohort::{self as cohorts, TeamRow};
use crate::db::models::facilitator::{self as facilitators, FacilitatorRow};
use crate::db::models::patient as patients;
use crate::db::DbConnection;
use crate::domain::staffing::{
    Assignment, Availability, CohortNeed, Commitment, FacilitatorProfile, Role, Staffing,
    StaffingRules,
};
use crate::domain::status::{CohortKind, CohortStatus, SessionStatus};
use crate::domain::{Credential, Modality};
use crate::error::{AppError, AppResult, FieldErrors};
use chrono::{NaiveDateTime, NaiveTime};
use std::collections::HashMap;

pub fn rules_for(program: &ProgramContext, kind: CohortKind) -> StaffingRules {
    let staffing = &program.rules.staffing;
    if kind == CohortKind::PeerSupport {
        // Peer circles are held by lay peer facilitators, one by default.
        StaffingRules {
            members_per_facilitator: 0,
            required_credentials: vec![Credential::Peer],
            min_team: program.rules.peer_support.facilitators.max(1) as usize,
        }
    } else {
        StaffingRules {
            members_per_facilitator: staffing.members_per_facilitator as usize,
            required_credentials: staffing.required_credentials.clone(),
            min_team: 2,
        }
    }
}

/// Every facilitator serving the program as staffing sees them: profile, exclusions,
/// and current load (in every program). Staffing never looks beyond this pool, so an
/// outside facilitator is unknown to it. `except_cohorts` are being (re)staffed, so
/// their current teams do not count as load.
pub fn load_profiles(
    conn: &mut DbConnection,
    program_id: i64,
    except_cohorts: &[i64],
) -> AppResult<Vec<FacilitatorProfile>> {
    let rows = facilitators::list(conn, None, Some(&[program_id]))?;
    let mut excluded: HashMap<i64, Vec<i64>> = HashMap::new();
    for exclusion in patients::exclusions_in_program(conn, program_id)? {
        if let Some(facilitator_id) = exclusion.facilitator_id {
            excluded
                .entry(facilitator_id)
                .or_default()
                .push(exclusion.patient_id);
        }
    }
    let mut commitments: HashMap<i64, Vec<Commitment>> = HashMap::new();
    for (facilitator_id, cohort_id, first, last) in cohorts::live_commitments(conn)? {
        if except_cohorts.contains(&cohort_id) {
            continue;
        }
        if let (Some(first), Some(last)) = (first, last) {
            commitments
                .entry(facilitator_id)
                .or_default()
                .push(Commitment {
                    cohort_id,
                    first_on: first.date(),
                    last_on: last.date(),
                });
        }
    }
    rows.into_iter()
        .map(|row| {
            let id = row.id;
            profile(
                row,
                excluded.remove(&id).unwrap_or_default(),
                commitments.remove(&id).unwrap_or_default(),
            )
        })
        .collect()
}

/// A team set by hand names only facilitators who serve the cohort's program; unlike a
/// rule of staffing, no override reason lifts this. The field names the place in the
/// team (`facilitators[i].facilitator_id`).
pub fn require_pool(
    conn: &mut DbConnection,
    program_id: i64,
    team: &[Assignment],
) -> AppResult<()> {
    let pool: Vec<i64> = facilitators::list(conn, None, Some(&[program_id]))?
        .into_iter()
        .map(|row| row.id)
        .collect();
    let mut errors = FieldErrors::new();
    for (index, assignment) in team.iter().enumerate() {
        if !pool.contains(&assignment.facilitator_id) {
            errors.insert(
                format!("facilitators[{index}].facilitator_id"),
                format!(
                    "facilitator {} does not serve this program",
                    assignment.facilitator_id
                ),
            );
        }
    }
    AppError::check(errors)
}

#[derive(serde::Deserialize)]
struct StoredWindow {
    weekday: String,
    start: String,
    end: String,
}

fn profile(
    row: FacilitatorRow,
    excluded_patients: Vec<i64>,
    commitments: Vec<Commitment>,
) -> AppResult<FacilitatorProfile> {
    let corrupt = |what: &str| anyhow::anyhow!("facilitator {} has unreadable {what}", row.id);
    let credentials: Vec<Credential> =
        serde_json::from_str(&row.credentials).map_err(|_| corrupt("credentials"))?;
    let modalities: Vec<Modality> =
        serde_json::from_str(&row.modalities).map_err(|_| corrupt("modalities"))?;
    let windows: Vec<StoredWindow> =
        serde_json::from_str(&row.availability).map_err(|_| corrupt("availability"))?;
    let availability = windows
        .iter()
        .map(|w| {
            Ok(Availability {
                weekday: w.weekday.parse().map_err(|_| corrupt("availability"))?,
                start: NaiveTime::parse_from_str(&w.start, "%H:%M")
                    .map_err(|_| corrupt("availability"))?,
                end: NaiveTime::parse_from_str(&w.end, "%H:%M")
                    .map_err(|_| corrupt("availability"))?,
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    Ok(FacilitatorProfile {
        id: row.id,
        timezone: row.timezone.parse().map_err(|_| corrupt("timezone"))?,
        credentials,
        modalities,
        licence_expires_on: row.licence_expires_on,
        availability,
        max_active_cohorts: row.max_active_cohorts.max(0) as usize,
        active: row.active,
        excluded_patients,
        commitments,
    })
}

/// The need of a stored cohort: its active members and every session not cancelled.
pub fn need_of(
    conn: &mut DbConnection,
    program: &ProgramContext,
    cohort: &cohorts::CohortRow,
) -> AppResult<CohortNeed> {
    let members = cohorts::active_member_ids(conn, cohort.id)?;
    let sessions = cohorts::sessions_of(conn, &[cohort.id])?;
    let previous_team = cohorts::team(conn, cohort.id)?
        .into_iter()
        .map(|(row, _)| row.facilitator_id)
        .collect();
    Ok(CohortNeed {
        id: cohort.id,
        modality: cohort
            .modality
            .parse()
            .map_err(|e: String| anyhow::anyhow!("cohort {}: {e}", cohort.id))?,
        members,
        session_starts: sessions
            .iter()
            .filter(|s| s.status != SessionStatus::Cancelled)
            .map(|s| s.starts_at.and_utc())
            .collect(),
        duration_minutes: sessions.first().map_or(program.duration_minutes(), |s| {
            s.duration_minutes.max(1) as u32
        }),
        previous_team,
        timezone: program.tz,
    })
}

/// Writes a team and its gaps (as lead-readable text) for a cohort, and queues mail to
/// the facilitators it adds, moves to another role, or takes off. Every team is written
/// here, so every change is told.
pub fn apply(
    conn: &mut DbConnection,
    cohort_id: i64,
    team: &[Assignment],
    gaps: &[String],
    override_reason: Option<&str>,
    now: NaiveDateTime,
) -> AppResult<()> {
    // Two team writes racing on PostgreSQL would read the same old team and queue the
    // same mail revision; the program's row lock makes them take turns.
    let program_id = cohorts::find(conn, cohort_id)?.program_id;
    cohorts::lock_program(conn, program_id)?;
    let before: Vec<TeamRow> = cohorts::team(conn, cohort_id)?
        .into_iter()
        .map(|(row, _)| row)
        .collect();
    let rows: Vec<TeamRow> = team
        .iter()
        .map(|a| TeamRow {
            cohort_id,
            facilitator_id: a.facilitator_id,
            role: a.role,
            // Someone who stays on the team keeps the time they joined it.
            assigned_at: before
                .iter()
                .find(|b| b.facilitator_id == a.facilitator_id)
                .map_or(now, |b| b.assigned_at),
        })
        .collect();
    cohorts::set_team(conn, cohort_id, &rows)?;
    let places = |rows: &[TeamRow]| -> Vec<(i64, Role)> {
        rows.iter().map(|r| (r.facilitator_id, r.role)).collect()
    };
    crate::outbox::enqueue_team_change(conn, cohort_id, &places(&before), &places(&rows), now)?;
    let gaps = serde_json::to_string(gaps).map_err(|e| anyhow::anyhow!("gaps: {e}"))?;
    cohorts::set_staffing_gaps(conn, cohort_id, &gaps, override_reason, now)?;
    Ok(())
}

/// Staffs a cohort automatically and writes the team (with any gaps). `false` when the
/// planner returned nothing for it.
pub fn auto_staff(
    conn: &mut DbConnection,
    program: &ProgramContext,
    cohort: &cohorts::CohortRow,
    override_reason: Option<&str>,
    now: NaiveDateTime,
) -> AppResult<bool> {
    let rules = rules_for(program, cohort.kind);
    let need = need_of(conn, program, cohort)?;
    let profiles = load_profiles(conn, program.id, &[cohort.id])?;
    let Some(result) = crate::domain::staffing::staff(&rules, &[need], &profiles)
        .into_iter()
        .next()
    else {
        return Ok(false);
    };
    apply(
        conn,
        cohort.id,
        &result.team,
        &gap_texts(&result),
        override_reason,
        now,
    )?;
    Ok(true)
}

pub fn role_name(role: Role) -> &'static str {
    match role {
        Role::Lead => "lead",
        Role::CoFacilitator => "co_facilitator",
    }
}

pub fn gap_texts(staffing: &Staffing) -> Vec<String> {
    staffing.gaps.iter().map(|gap| gap.to_string()).collect()
}

/// Re-checks every live cohort a facilitator is on after their record changed
/// (deactivated, licence, availability…), storing what the team now lacks. Returns the
/// cohorts that have lost coverage.
pub fn reassess_cohorts_of(
    conn: &mut DbConnection,
    facilitator_id: i64,
    now: NaiveDateTime,
) -> AppResult<Vec<i64>> {
    let mut uncovered = Vec::new();
    for cohort in cohorts::list(conn, None, None, Some(facilitator_id))? {
        if !matches!(cohort.status, CohortStatus::Forming | CohortStatus::Active) {
            continue;
        }
        let program =
            ProgramContext::try_from(&crate::db::models::program::find(conn, cohort.program_id)?)?;
        let need = need_of(conn, &program, &cohort)?;
        let team: Vec<Assignment> = cohorts::team(conn, cohort.id)?
            .into_iter()
            .map(|(row, _)| Assignment {
                facilitator_id: row.facilitator_id,
                role: row.role,
            })
            .collect();
        let profiles = load_profiles(conn, program.id, &[cohort.id])?;
        let violations: Vec<String> = crate::domain::staffing::check_team(
            &rules_for(&program, cohort.kind),
            &need,
            &team,
            &profiles,
        )
        .iter()
        .map(ToString::to_string)
        .collect();
        let gaps = serde_json::to_string(&violations).map_err(|e| anyhow::anyhow!("gaps: {e}"))?;
        cohorts::set_staffing_gaps(
            conn,
            cohort.id,
            &gaps,
            cohort.override_reason.as_deref(),
            now,
        )?;
        if !violations.is_empty() {
            uncovered.push(cohort.id);
        }
    }
    Ok(uncovered)
}

/// A facilitator's live cohorts and how many of their sessions fall in the next week.
#[derive(Debug, Default, serde::Serialize)]
pub struct Load {
    pub active_cohorts: Vec<i64>,
    pub sessions_next_7_days: usize,
}

/// Every facilitator's load, in two queries: the live cohorts (forming or active) each
/// one is on, by cohort id, and their scheduled sessions in the next seven days. Someone
/// on no live cohort has no entry (`Load::default()`).
pub fn loads(conn: &mut DbConnection, now: NaiveDateTime) -> AppResult<HashMap<i64, Load>> {
    use crate::db::schema::{cohort_facilitators, cohorts as cohort_table};
    use diesel::prelude::*;
    let places: Vec<(i64, i64)> = cohort_facilitators::table
        .inner_join(cohort_table::table)
        .filter(cohort_table::status.eq_any([CohortStatus::Forming, CohortStatus::Active]))
        .select((
            cohort_facilitators::facilitator_id,
            cohort_facilitators::cohort_id,
        ))
        .order((
            cohort_facilitators::facilitator_id,
            cohort_facilitators::cohort_id,
        ))
        .load(conn)?;
    let mut live: Vec<i64> = places.iter().map(|(_, cohort)| *cohort).collect();
    live.sort_unstable();
    live.dedup();
    let week = now + chrono::Duration::days(7);
    let mut sessions_ahead: HashMap<i64, usize> = HashMap::new();
    for session in cohorts::sessions_of(conn, &live)? {
        if session.status == SessionStatus::Scheduled
            && session.starts_at >= now
            && session.starts_at < week
        {
            *sessions_ahead.entry(session.cohort_id).or_default() += 1;
        }
    }
    let mut loads: HashMap<i64, Load> = HashMap::new();
    for (facilitator_id, cohort_id) in places {
        let load = loads.entry(facilitator_id).or_default();
        load.active_cohorts.push(cohort_id);
        load.sessions_next_7_days += sessions_ahead.get(&cohort_id).copied().unwrap_or(0);
    }
    Ok(loads)
}
