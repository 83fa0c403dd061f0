//! Forming cohorts from a program's waitlist: the dry run and the commit share one path,
//! so the plan a lead previews is the plan that is written.

use super::staffing as staffing_io;
use super::ProgramContext;
use crate::db::audit::{self, AuditEvent};
use crate::db::models::cohort::{self as cohorts, NewCohort, NewMember, NewSession};
use crate::db::models::patient as patients;
use crate::db::DbConnection;
use crate::domain::formation::{
    self, Exclusions, FormationRules, Joined, OpenCohort, Waiting, WaitingPatient,
};
use crate::domain::staffing::{self as staffing, Assignment, CohortNeed};
use crate::domain::status::{CohortKind, CohortStatus, MemberStatus, SessionStatus};
use crate::domain::Modality;
use crate::error::AppResult;
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use serde::Serialize;
use std::collections::HashMap;

#[derive(Debug, Serialize)]
pub struct DosingWindow {
    pub from: NaiveDate,
    pub to: NaiveDate,
}

#[derive(Debug, Serialize)]
pub struct StaffingSummary {
    pub complete: bool,
    pub gaps: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct FormedCohort {
    /// Absent in a dry run.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<i64>,
    pub modality: Modality,
    pub members: Vec<i64>,
    pub dosing_window: DosingWindow,
    pub first_session_at: DateTime<Utc>,
    pub last_session_at: DateTime<Utc>,
    pub sessions: usize,
    pub facilitators: Vec<Assignment>,
    pub staffing: StaffingSummary,
}

#[derive(Debug, Serialize)]
pub struct FormationOutcome {
    pub dry_run: bool,
    pub cohorts: Vec<FormedCohort>,
    pub joined: Vec<Joined>,
    pub waiting: Vec<Waiting>,
}

impl FormationRules {
    pub fn of(program: &ProgramContext) -> FormationRules {
        let rules = &program.rules;
        FormationRules {
            min_size: rules.cohort.min_size as usize,
            max_size: rules.cohort.max_size as usize,
            dosing_window_days: i64::from(rules.cohort.dosing_window_days),
            max_wait_days: i64::from(rules.cohort.max_wait_days),
            min_days_after_dosing: i64::from(rules.schedule.min_days_after_dosing),
            notice_days: i64::from(rules.schedule.notice_days),
            weekday: rules.schedule.weekday.0,
            mixed: program.modality == Modality::Mixed,
        }
    }
}

/// Whether a formation writes, and who it is attributed to (`None`: the command line).
#[derive(Debug, Clone, Copy)]
pub enum Mode {
    DryRun,
    Commit { actor: Option<i64> },
}

/// Plans a formation and, in `Mode::Commit`, writes it. The caller holds the write
/// transaction (and, on PostgreSQL, the program lock) for a commit.
pub fn form(
    conn: &mut DbConnection,
    program: &ProgramContext,
    now: DateTime<Utc>,
    mode: Mode,
) -> AppResult<FormationOutcome> {
    let commit_by = match mode {
        Mode::DryRun => None,
        Mode::Commit { actor } => Some(actor),
    };
    let stored_now = now.naive_utc();
    if commit_by.is_some() {
        cohorts::activate_started(conn, stored_now)?;
    }
    let waiting: Vec<WaitingPatient> = cohorts::waitlist(conn, program.id)?
        .into_iter()
        .map(|(id, dosed_at, modality)| {
            Ok(WaitingPatient {
                id,
                dosed_on: program.local_date(dosed_at),
                modality: modality
                    .parse()
                    .map_err(|e: String| anyhow::anyhow!("dosing of patient {id}: {e}"))?,
            })
        })
        .collect::<anyhow::Result<_>>()?;
    let open = open_cohorts(conn, program, stored_now)?;
    let exclusions: Exclusions = patients::exclusions_in_program(conn, program.id)?
        .into_iter()
        .filter_map(|e| e.other_patient_id.map(|other| (e.patient_id, other)))
        .collect();
    let rules = FormationRules::of(program);
    let plan = formation::plan(&rules, program.today(now), &open, &waiting, &exclusions);

    // Staff the new cohorts together, so each assignment counts towards the next.
    let needs: Vec<CohortNeed> = plan
        .cohorts
        .iter()
        .enumerate()
        .map(|(index, planned)| CohortNeed {
            id: -(index as i64) - 1,
            modality: planned.modality,
            members: planned.members.clone(),
            session_starts: program.integration_sessions(planned.first_session_on),
            duration_minutes: program.duration_minutes(),
            previous_team: vec![],
            timezone: program.tz,
        })
        .collect();
    let profiles = staffing_io::load_profiles(conn, program.id, &[])?;
    let teams = staffing::staff(
        &staffing_io::rules_for(program, CohortKind::Integration),
        &needs,
        &profiles,
    );

    let mut formed = Vec::with_capacity(plan.cohorts.len());
    for ((planned, need), team) in plan.cohorts.iter().zip(&needs).zip(&teams) {
        let (Some(first), Some(last)) = (need.session_starts.first(), need.session_starts.last())
        else {
            return Err(anyhow::anyhow!("a planned cohort has no sessions").into());
        };
        let gaps = staffing_io::gap_texts(team);
        let id = match commit_by {
            Some(actor) => Some(create_cohort(
                conn,
                program,
                planned.modality,
                &planned.members,
                &need.session_starts,
                actor,
                stored_now,
            )?),
            None => None,
        };
        if let Some(id) = id {
            staffing_io::apply(conn, id, &team.team, &gaps, None, stored_now)?;
        }
        formed.push(FormedCohort {
            id,
            modality: planned.modality,
            members: planned.members.clone(),
            dosing_window: DosingWindow {
                from: planned.window_from,
                to: planned.window_to,
            },
            first_session_at: *first,
            last_session_at: *last,
            sessions: need.session_starts.len(),
            facilitators: team.team.clone(),
            staffing: StaffingSummary {
                complete: team.complete,
                gaps,
            },
        });
    }

    if let Some(actor) = commit_by {
        for joined in &plan.joined {
            add_member(
                conn,
                program.id,
                joined.cohort_id,
                joined.patient_id,
                actor,
                stored_now,
            )?;
        }
        audit::record(
            conn,
            AuditEvent {
                actor_user_id: actor,
                action: "form_cohorts",
                entity: "program",
                entity_id: program.id,
                program_id: Some(program.id),
                changed_fields: vec!["cohorts".into()],
                detail: Some(format!(
                    "{} cohort(s) formed, {} joined, {} waiting",
                    formed.len(),
                    plan.joined.len(),
                    plan.waiting.len()
                )),
            },
        )?;
    }

    Ok(FormationOutcome {
        dry_run: commit_by.is_none(),
        cohorts: formed,
        joined: plan.joined,
        waiting: plan.waiting,
    })
}

/// Integration cohorts still forming, with their members' dosing dates.
/// A cohort whose first session has started is no longer open, whatever its stored
/// status says (a dry run does not refresh statuses).
fn open_cohorts(
    conn: &mut DbConnection,
    program: &ProgramContext,
    now: NaiveDateTime,
) -> AppResult<Vec<OpenCohort>> {
    let forming = cohorts::of_program(
        conn,
        program.id,
        CohortKind::Integration,
        Some(CohortStatus::Forming),
    )?;
    if forming.is_empty() {
        return Ok(vec![]);
    }
    let ids: Vec<i64> = forming.iter().map(|c| c.id).collect();
    let members = cohorts::active_members_of(conn, &ids)?;
    let member_ids: Vec<i64> = members.iter().map(|(_, patient)| *patient).collect();
    let dosed: HashMap<i64, NaiveDateTime> = cohorts::latest_dosings(conn, &member_ids)?
        .into_iter()
        .collect();
    let mut first_start: HashMap<i64, NaiveDateTime> = HashMap::new();
    for session in cohorts::sessions_of(conn, &ids)? {
        if session.status != SessionStatus::Cancelled {
            first_start
                .entry(session.cohort_id)
                .or_insert(session.starts_at);
        }
    }
    let mut open = Vec::new();
    for cohort in forming {
        let Some(first) = first_start.get(&cohort.id).filter(|first| **first > now) else {
            continue;
        };
        let mine: Vec<i64> = members
            .iter()
            .filter(|(cohort_id, _)| *cohort_id == cohort.id)
            .map(|(_, patient)| *patient)
            .collect();
        open.push(OpenCohort {
            id: cohort.id,
            modality: cohort
                .modality
                .parse()
                .map_err(|e: String| anyhow::anyhow!("cohort {}: {e}", cohort.id))?,
            first_session_on: program.local_date(*first),
            // Members without a dosing on file (cohorts made by hand) do not narrow the window.
            member_dosed_on: mine
                .iter()
                .filter_map(|patient| dosed.get(patient).map(|at| program.local_date(*at)))
                .collect(),
            member_ids: mine,
            max_size: program.rules.cohort.max_size as usize,
        });
    }
    Ok(open)
}

/// Writes a new cohort (status `forming`), its members and its sessions.
pub fn create_cohort(
    conn: &mut DbConnection,
    program: &ProgramContext,
    modality: Modality,
    members: &[i64],
    session_starts: &[DateTime<Utc>],
    actor: Option<i64>,
    now: NaiveDateTime,
) -> AppResult<i64> {
    create_cohort_of_kind(
        conn,
        program,
        CohortKind::Integration,
        modality,
        members,
        session_starts,
        program.duration_minutes(),
        actor,
        now,
    )
}

#[allow(clippy::too_many_arguments)]
pub fn create_cohort_of_kind(
    conn: &mut DbConnection,
    program: &ProgramContext,
    kind: CohortKind,
    modality: Modality,
    members: &[i64],
    session_starts: &[DateTime<Utc>],
    duration_minutes: u32,
    actor: Option<i64>,
    now: NaiveDateTime,
) -> AppResult<i64> {
    let id = cohorts::insert(
        conn,
        &NewCohort {
            program_id: program.id,
            kind,
            modality: modality.as_str().into(),
            status: CohortStatus::Forming,
            venue: None,
            join_url: None,
            staffing_gaps: "[]".into(),
            override_reason: None,
            created_at: now,
            updated_at: now,
        },
    )?;
    let sessions: Vec<NewSession> = session_starts
        .iter()
        .enumerate()
        .map(|(index, starts_at)| NewSession {
            cohort_id: id,
            seq: index as i32 + 1,
            starts_at: starts_at.naive_utc(),
            duration_minutes: duration_minutes as i32,
            status: SessionStatus::Scheduled,
            ics_sequence: 0,
            created_at: now,
            updated_at: now,
        })
        .collect();
    cohorts::insert_sessions(conn, &sessions)?;
    audit::record(
        conn,
        AuditEvent {
            actor_user_id: actor,
            action: "create",
            entity: "cohort",
            entity_id: id,
            program_id: Some(program.id),
            changed_fields: vec!["members".into(), "sessions".into()],
            detail: None,
        },
    )?;
    for patient in members {
        add_member(conn, program.id, id, *patient, actor, now)?;
    }
    Ok(id)
}

/// Adds one member and moves the patient to `in_cohort`. The database refuses a second
/// active membership, so a racing formation cannot place anyone twice.
pub fn add_member(
    conn: &mut DbConnection,
    program_id: i64,
    cohort_id: i64,
    patient_id: i64,
    actor: Option<i64>,
    now: NaiveDateTime,
) -> AppResult<()> {
    cohorts::insert_members(
        conn,
        &[NewMember {
            cohort_id,
            patient_id,
            status: MemberStatus::Active,
            joined_at: now,
        }],
    )
    .map_err(|error| match crate::error::AppError::from(error) {
        crate::error::AppError::Conflict { .. } => {
            crate::error::AppError::conflict(format!("patient {patient_id} is already in a cohort"))
        }
        other => other,
    })?;
    patients::set_status(conn, &[patient_id], "in_cohort", now)?;
    crate::outbox::enqueue_welcome(conn, cohort_id, patient_id, now)?;
    audit::record(
        conn,
        AuditEvent {
            actor_user_id: actor,
            action: "add_member",
            entity: "cohort",
            entity_id: cohort_id,
            program_id: Some(program_id),
            changed_fields: vec!["members".into()],
            detail: Some(format!("patient {patient_id}")),
        },
    )?;
    Ok(())
}

/// The plan as a table for a terminal: one line per cohort, then who joined and who waits.
pub fn render_table(outcome: &FormationOutcome, tz: chrono_tz::Tz) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let verb = if outcome.dry_run {
        "would form"
    } else {
        "formed"
    };
    let _ = writeln!(out, "{verb} {} cohort(s)", outcome.cohorts.len());
    if !outcome.cohorts.is_empty() {
        let _ = writeln!(
            out,
            "{:<8} {:<11} {:>7}  {:<23}  {:<26}  {:<9}  facilitators (* lead)",
            "cohort", "modality", "members", "dosing window", "first session", "staffed"
        );
        for (index, cohort) in outcome.cohorts.iter().enumerate() {
            let label = cohort
                .id
                .map_or_else(|| format!("new {}", index + 1), |id| format!("#{id}"));
            let first = cohort
                .first_session_at
                .with_timezone(&tz)
                .format("%a %Y-%m-%d %H:%M %Z")
                .to_string();
            let team: Vec<String> = cohort
                .facilitators
                .iter()
                .map(|a| {
                    format!(
                        "{}{}",
                        a.facilitator_id,
                        if a.role == crate::domain::staffing::Role::Lead {
                            "*"
                        } else {
                            ""
                        }
                    )
                })
                .collect();
            let _ = writeln!(
                out,
                "{:<8} {:<11} {:>7}  {} – {}  {:<26}  {:<9}  {}",
                label,
                cohort.modality.as_str(),
                cohort.members.len(),
                cohort.dosing_window.from,
                cohort.dosing_window.to,
                first,
                if cohort.staffing.complete {
                    "yes"
                } else {
                    "GAPS"
                },
                team.join(", ")
            );
            for gap in &cohort.staffing.gaps {
                let _ = writeln!(out, "{:>10} gap: {gap}", "");
            }
        }
    }
    for joined in &outcome.joined {
        let _ = writeln!(
            out,
            "patient {} joins cohort #{}",
            joined.patient_id, joined.cohort_id
        );
    }
    if !outcome.waiting.is_empty() {
        let _ = writeln!(out, "{} still waiting:", outcome.waiting.len());
        for waiting in &outcome.waiting {
            let _ = writeln!(
                out,
                "  patient {:<8} {}",
                waiting.patient_id,
                waiting.reason.as_str()
            );
        }
    }
    out
}
