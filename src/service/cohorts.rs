//! Cohorts as use cases: who may read them, the cohort view every reader sees (loaded in
//! a fixed number of queries however many cohorts), and every change a lead makes —
//! creating one by hand, members in and out, its team, its sessions.

use super::auth::Actor;
use super::formation::{self, create_cohort_of_kind, FormationOutcome};
use super::staffing as staffing_io;
use super::{patients::refused, ProgramContext};
use crate::db::audit::AuditEvent;
use crate::db::models::cohort::{self as cohorts, CohortRow};
use crate::db::models::patient as patients;
use crate::db::models::program;
use crate::db::models::user::Role;
use crate::db::{self as database, write_transaction, DbConnection};
use crate::domain::ids::{CohortId, PatientId, ProgramId, SessionId};
use crate::domain::patient::{PatientStatus, TransitionRefused};
use crate::domain::schedule;
use crate::domain::staffing::{self as staffing, Assignment, Role as TeamRole};
use crate::domain::status::{CohortKind, CohortStatus, MemberStatus, RsvpResponse, SessionStatus};
use crate::domain::Modality;
use crate::error::{AppError, AppResult};
use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::{BTreeSet, HashMap};

pub fn program_context(
    conn: &mut DbConnection,
    program_id: ProgramId,
) -> AppResult<ProgramContext> {
    ProgramContext::try_from(&program::find(conn, program_id.get())?)
}

/// Who may read a cohort: a lead of its program, or a facilitator on its team.
pub fn cohort_for_reader(
    conn: &mut DbConnection,
    actor: &Actor,
    id: CohortId,
) -> AppResult<CohortRow> {
    let id = id.get();
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

pub fn cohort_for_lead(
    conn: &mut DbConnection,
    actor: &Actor,
    id: CohortId,
) -> AppResult<CohortRow> {
    let cohort = cohorts::find(conn, id.get())?;
    actor.require_lead_of(cohort.program_id)?;
    Ok(cohort)
}

// Fields in alphabetical order, as the first stage's JSON objects serialized them.

/// A cohort with its members, team, staffing and sessions: the API's cohort object.
#[derive(Debug, Clone, Serialize)]
pub struct CohortView {
    pub created_at: DateTime<Utc>,
    pub facilitators: Vec<TeamMemberView>,
    pub first_session_at: Option<DateTime<Utc>>,
    pub id: i64,
    pub join_url: Option<String>,
    pub kind: CohortKind,
    pub last_session_at: Option<DateTime<Utc>>,
    pub members: Vec<MemberView>,
    pub modality: String,
    pub program_id: i64,
    pub sessions: Vec<SessionView>,
    pub staffing: StaffingView,
    pub status: CohortStatus,
    pub venue: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct MemberView {
    pub joined_at: DateTime<Utc>,
    pub left_at: Option<DateTime<Utc>>,
    /// Shown to leads only (`Some`); it may be clinical.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leave_reason: Option<Option<String>>,
    pub name: String,
    pub patient_id: i64,
    pub status: MemberStatus,
}

#[derive(Debug, Clone, Serialize)]
pub struct TeamMemberView {
    pub facilitator_id: i64,
    pub name: String,
    pub role: TeamRole,
}

#[derive(Debug, Clone, Serialize)]
pub struct SessionView {
    pub ends_at: DateTime<Utc>,
    pub id: i64,
    /// "Tue 2026-12-08 18:00 PST", in the program's zone.
    pub local_start: String,
    pub rsvp: RsvpCounts,
    pub seq: i32,
    pub starts_at: DateTime<Utc>,
    pub status: SessionStatus,
}

#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct RsvpCounts {
    pub no: i64,
    pub yes: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StaffingView {
    pub complete: bool,
    pub gaps: Vec<String>,
    pub override_reason: Option<String>,
}

/// What a reader sees of a cohort's members: leads see why someone left.
#[derive(Debug, Clone, Copy)]
pub enum Audience {
    Lead,
    Facilitator,
}

impl Audience {
    pub fn of(actor: &Actor) -> Audience {
        match actor.role {
            Role::Facilitator => Audience::Facilitator,
            Role::Admin | Role::ProgramLead => Audience::Lead,
        }
    }
}

impl CohortView {
    /// The views of `rows`, in their order, in six queries whatever their number.
    pub fn load_many(
        conn: &mut DbConnection,
        rows: &[CohortRow],
        audience: Audience,
        now: NaiveDateTime,
    ) -> AppResult<Vec<CohortView>> {
        if rows.is_empty() {
            return Ok(vec![]);
        }
        let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
        let mut program_ids: Vec<i64> = rows.iter().map(|c| c.program_id).collect();
        program_ids.sort_unstable();
        program_ids.dedup();
        let programs: HashMap<i64, ProgramContext> = program::find_many(conn, &program_ids)?
            .iter()
            .map(|row| Ok((row.id, ProgramContext::try_from(row)?)))
            .collect::<AppResult<_>>()?;
        let mut members: HashMap<i64, Vec<MemberView>> = HashMap::new();
        for (member, name) in cohorts::members_with_names_of(conn, &ids)? {
            members
                .entry(member.cohort_id)
                .or_default()
                .push(MemberView {
                    joined_at: member.joined_at.and_utc(),
                    left_at: member.left_at.map(|at| at.and_utc()),
                    leave_reason: matches!(audience, Audience::Lead).then_some(member.leave_reason),
                    name,
                    patient_id: member.patient_id,
                    status: member.status,
                });
        }
        let mut teams: HashMap<i64, Vec<TeamMemberView>> = HashMap::new();
        for (row, name) in cohorts::teams_with_names(conn, &ids)? {
            teams
                .entry(row.cohort_id)
                .or_default()
                .push(TeamMemberView {
                    facilitator_id: row.facilitator_id,
                    name,
                    role: row.role,
                });
        }
        let mut rsvps: HashMap<i64, RsvpCounts> = HashMap::new();
        for (session_id, response, count) in cohorts::rsvp_counts_of(conn, &ids)? {
            let counts = rsvps.entry(session_id).or_default();
            match response {
                RsvpResponse::Yes => counts.yes = count,
                RsvpResponse::No => counts.no = count,
            }
        }
        let mut sessions: HashMap<i64, Vec<cohorts::SessionRow>> = HashMap::new();
        for session in cohorts::sessions_of(conn, &ids)? {
            sessions.entry(session.cohort_id).or_default().push(session);
        }
        rows.iter()
            .map(|cohort| {
                let program = programs.get(&cohort.program_id).ok_or_else(|| {
                    anyhow::anyhow!("cohort {} has no program {}", cohort.id, cohort.program_id)
                })?;
                let sessions = sessions.remove(&cohort.id).unwrap_or_default();
                Ok(CohortView::assemble(
                    cohort,
                    program,
                    &sessions,
                    members.remove(&cohort.id).unwrap_or_default(),
                    teams.remove(&cohort.id).unwrap_or_default(),
                    &rsvps,
                    now,
                ))
            })
            .collect()
    }

    pub fn load(
        conn: &mut DbConnection,
        row: &CohortRow,
        audience: Audience,
        now: NaiveDateTime,
    ) -> AppResult<CohortView> {
        CohortView::load_many(conn, std::slice::from_ref(row), audience, now)?
            .pop()
            .ok_or_else(|| anyhow::anyhow!("cohort {} did not load", row.id).into())
    }

    fn assemble(
        cohort: &CohortRow,
        program: &ProgramContext,
        sessions: &[cohorts::SessionRow],
        members: Vec<MemberView>,
        facilitators: Vec<TeamMemberView>,
        rsvps: &HashMap<i64, RsvpCounts>,
        now: NaiveDateTime,
    ) -> CohortView {
        let live: Vec<&cohorts::SessionRow> = sessions
            .iter()
            .filter(|s| s.status != SessionStatus::Cancelled)
            .collect();
        let first = live.iter().map(|s| s.starts_at).min();
        let gaps: Vec<String> = serde_json::from_str(&cohort.staffing_gaps).unwrap_or_default();
        CohortView {
            created_at: cohort.created_at.and_utc(),
            facilitators,
            first_session_at: live.first().map(|s| s.starts_at.and_utc()),
            id: cohort.id,
            join_url: cohort.join_url.clone().or(program.join_url.clone()),
            kind: cohort.kind,
            last_session_at: live.last().map(|s| s.starts_at.and_utc()),
            members,
            modality: cohort.modality.clone(),
            program_id: cohort.program_id,
            sessions: sessions
                .iter()
                .map(|s| {
                    let starts = s.starts_at.and_utc();
                    SessionView {
                        ends_at: starts + chrono::Duration::minutes(i64::from(s.duration_minutes)),
                        id: s.id,
                        local_start: starts
                            .with_timezone(&program.tz)
                            .format("%a %Y-%m-%d %H:%M %Z")
                            .to_string(),
                        rsvp: rsvps.get(&s.id).copied().unwrap_or_default(),
                        seq: s.seq,
                        starts_at: starts,
                        status: s.status,
                    }
                })
                .collect(),
            staffing: StaffingView {
                complete: gaps.is_empty(),
                gaps,
                override_reason: cohort.override_reason.clone(),
            },
            status: cohort.status.as_of(first.is_some_and(|at| at <= now)),
            venue: cohort.venue.clone().or(program.venue.clone()),
        }
    }
}

/// Each cohort's status as of `now` (see `CohortStatus::as_of`), in one query.
pub fn statuses_as_of(
    conn: &mut DbConnection,
    rows: &[CohortRow],
    now: NaiveDateTime,
) -> AppResult<HashMap<i64, CohortStatus>> {
    let ids: Vec<i64> = rows.iter().map(|c| c.id).collect();
    let firsts: HashMap<i64, Option<NaiveDateTime>> = cohorts::first_live_starts(conn, &ids)?
        .into_iter()
        .collect();
    Ok(rows
        .iter()
        .map(|c| {
            let started = firsts
                .get(&c.id)
                .copied()
                .flatten()
                .is_some_and(|at| at <= now);
            (c.id, c.status.as_of(started))
        })
        .collect())
}

/// The cohorts a caller may read: a facilitator's own, a lead's programs' (one program
/// with `program_id`).
pub fn list(
    conn: &mut DbConnection,
    actor: &Actor,
    program_id: Option<ProgramId>,
) -> AppResult<Vec<CohortView>> {
    let program_id = program_id.map(ProgramId::get);
    let rows = match actor.role {
        Role::Facilitator => {
            let Some(facilitator_id) = actor.facilitator_id else {
                return Ok(vec![]);
            };
            cohorts::list(conn, program_id, None, Some(facilitator_id))?
        }
        Role::Admin | Role::ProgramLead => {
            if let Some(program_id) = program_id {
                actor.require_program(program_id)?;
            }
            cohorts::list(conn, program_id, actor.program_scope().as_deref(), None)?
        }
    };
    CohortView::load_many(conn, &rows, Audience::of(actor), database::now())
}

pub fn get(conn: &mut DbConnection, actor: &Actor, id: CohortId) -> AppResult<CohortView> {
    let cohort = cohort_for_reader(conn, actor, id)?;
    CohortView::load(conn, &cohort, Audience::of(actor), database::now())
}

/// The cohort as a lead sees it, freshly read after a change.
fn lead_view(conn: &mut DbConnection, id: i64) -> AppResult<CohortView> {
    let cohort = cohorts::find(conn, id)?;
    CohortView::load(conn, &cohort, Audience::Lead, database::now())
}

/// A program's formation, dry run or committed.
pub fn form(
    conn: &mut DbConnection,
    actor: &Actor,
    program_id: ProgramId,
    dry_run: bool,
) -> AppResult<FormationOutcome> {
    let program = program_context(conn, program_id)?;
    let program_id = program_id.get();
    actor.require_lead_of(program_id)?;
    if dry_run {
        return formation::form(conn, &program, Utc::now(), formation::Mode::DryRun);
    }
    write_transaction(conn, |conn| {
        cohorts::lock_program(conn, program_id)?;
        formation::form(
            conn,
            &program,
            Utc::now(),
            formation::Mode::Commit {
                actor: Some(actor.id),
            },
        )
    })
}

/// Rules a lead may knowingly bypass by giving a reason, which is audited.
fn bypassable(violations: Vec<String>, field: &str, reason: Option<&str>) -> AppResult<()> {
    if violations.is_empty() || reason.is_some() {
        Ok(())
    } else {
        Err(AppError::RuleViolations {
            field: field.into(),
            violations,
        })
    }
}

pub fn override_reason(text: Option<&str>) -> AppResult<Option<String>> {
    crate::types::optional_note(text, 1000).map_err(|e| AppError::field("override_reason", e))
}

/// The most members a cohort of this kind may have.
fn max_size(program: &ProgramContext, kind: CohortKind) -> u32 {
    match kind {
        CohortKind::PeerSupport => program.rules.peer_support.max_size,
        CohortKind::Integration => program.rules.cohort.max_size,
    }
}

/// "1 member is", "3 members are": the subject of a size rule, as English.
fn members_are(count: usize) -> String {
    match count {
        1 => "1 member is".into(),
        n => format!("{n} members are"),
    }
}

/// Whether a patient in this state may join a cohort.
fn may_join(status: PatientStatus) -> bool {
    matches!(
        status,
        PatientStatus::AwaitingCohort | PatientStatus::AwaitingDosing | PatientStatus::Completed
    )
}

/// "patients 3 and 7 are excluded from sharing a cohort" for each pair among `members`.
fn excluded_pairs(
    conn: &mut DbConnection,
    program_id: i64,
    members: &[i64],
) -> AppResult<Vec<String>> {
    Ok(patients::exclusions_in_program(conn, program_id)?
        .into_iter()
        .filter_map(|e| e.other_patient_id.map(|other| (e.patient_id, other)))
        .filter(|(a, b)| members.contains(a) && members.contains(b))
        .map(|(a, b)| format!("patients {a} and {b} are excluded from sharing a cohort"))
        .collect())
}

/// The members' modality: from their latest dosings (the program's if none has one).
fn cohort_modality(
    conn: &mut DbConnection,
    program: &ProgramContext,
    members: &[i64],
) -> AppResult<Modality> {
    if program.modality != Modality::Mixed {
        return Ok(program.modality);
    }
    let mut seen: Vec<Modality> = patients::dosings_of(conn, members)?
        .iter()
        .filter_map(|d| d.modality.parse().ok())
        .collect();
    seen.sort();
    seen.dedup();
    Ok(match seen.as_slice() {
        [only] => *only,
        _ => Modality::Mixed,
    })
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeamMember {
    pub facilitator_id: i64,
    pub role: TeamRole,
}

impl From<TeamMember> for Assignment {
    fn from(member: TeamMember) -> Assignment {
        Assignment {
            facilitator_id: member.facilitator_id,
            role: member.role,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewCohortRequest {
    pub program_id: i64,
    #[serde(default)]
    pub kind: Option<String>,
    pub members: Vec<i64>,
    pub first_session_at: String,
    #[serde(default)]
    pub facilitators: Option<Vec<TeamMember>>,
    #[serde(default)]
    pub override_reason: Option<String>,
}

/// A cohort made by hand (also a past one being imported): its members, weekly sessions
/// from `first_session_at`, and a team given or found. Size and exclusion rules, and a
/// given team's rules, may be bypassed only with an audited `override_reason`.
pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    request: NewCohortRequest,
) -> AppResult<CohortView> {
    let reason = override_reason(request.override_reason.as_deref())?;
    let kind = match request.kind.as_deref() {
        None => CohortKind::Integration,
        Some(text) => text
            .parse::<CohortKind>()
            .map_err(|_| AppError::field("kind", "must be integration or peer_support"))?,
    };
    let first_session_at = DateTime::parse_from_rfc3339(request.first_session_at.trim())
        .map_err(|_| AppError::field("first_session_at", "must be an RFC 3339 time with offset"))?
        .with_timezone(&Utc);
    let mut members = request.members.clone();
    members.sort_unstable();
    members.dedup();
    if members.is_empty() {
        return Err(AppError::field("members", "must name at least one patient"));
    }
    // Refused before any query: no cohort may be larger, whatever the reason given.
    let most = crate::domain::program::MAX_GROUP_SIZE;
    if members.len() > most as usize {
        let message = format!("a cohort holds at most {most} members");
        return Err(AppError::field("members", message));
    }
    let program =
        program_context(conn, ProgramId(request.program_id)).map_err(|error| match error {
            AppError::NotFound => AppError::field("program_id", "no such program"),
            other => other,
        })?;
    actor.require_lead_of(program.id)?;
    write_transaction(conn, |conn| {
        let rows = patients::find_many(conn, &members)?;
        for id in &members {
            let Some(row) = rows
                .iter()
                .find(|r| r.id == *id && r.program_id == program.id)
            else {
                return Err(AppError::field(
                    "members",
                    format!("patient {id} is not in this program"),
                ));
            };
            let status: PatientStatus =
                row.status.parse().map_err(|e: String| anyhow::anyhow!(e))?;
            if !may_join(status) {
                return Err(AppError::Conflict {
                    message: format!("patient {id} is {status} and cannot join a new cohort"),
                    details: Some(json!({"patient_id": id, "current_status": status})),
                });
            }
        }
        let max = max_size(&program, kind);
        let mut violations = Vec::new();
        let count = members.len();
        if count > max as usize {
            violations.push(format!(
                "{} more than the maximum of {max}",
                members_are(count)
            ));
        }
        let min = program.rules.cohort.min_size;
        if kind == CohortKind::Integration && count < min as usize {
            violations.push(format!(
                "{} fewer than the minimum of {min}",
                members_are(count)
            ));
        }
        violations.extend(excluded_pairs(conn, program.id, &members)?);
        bypassable(violations, "members", reason.as_deref())?;

        let (sessions, interval) = match kind {
            CohortKind::PeerSupport => (
                program.rules.peer_support.sessions,
                program.rules.peer_support.interval_weeks,
            ),
            CohortKind::Integration => (program.rules.schedule.sessions, 1),
        };
        // Weekly at the local wall time of the first session (which may be a past
        // cohort being imported, off the program's current slot).
        let local = first_session_at.with_timezone(&program.tz);
        let starts = schedule::weekly_sessions(
            program.tz,
            local.date_naive(),
            local.time(),
            sessions,
            interval,
        );
        let modality = cohort_modality(conn, &program, &members)?;
        let now = database::now();
        let id = create_cohort_of_kind(
            conn,
            &program,
            kind,
            modality,
            &members,
            &starts,
            program.duration_minutes(),
            Some(actor.id),
            now,
        )?;
        let cohort = cohorts::find(conn, id)?;
        match request.facilitators {
            Some(team) => {
                let team: Vec<Assignment> = team.into_iter().map(Assignment::from).collect();
                staffing_io::require_pool(conn, program.id, &team)?;
                let violations = team_violations(conn, &program, &cohort, &team)?;
                bypassable(violations.clone(), "facilitators", reason.as_deref())?;
                staffing_io::apply(conn, id, &team, &violations, reason.as_deref(), now)?;
            }
            None => {
                staffing_io::auto_staff(conn, &program, &cohort, reason.as_deref(), now)?;
            }
        }
        if let Some(reason) = &reason {
            AuditEvent::new("override", "cohort", id)
                .by(actor.id)
                .in_program(program.id)
                .fields(&["members", "facilitators"])
                .detail(reason.clone())
                .record(conn)?;
        }
        cohorts::activate_started(conn, now)?;
        lead_view(conn, id)
    })
}

/// What is wrong with `team` for this cohort, as the lead reads it (empty: nothing).
fn team_violations(
    conn: &mut DbConnection,
    program: &ProgramContext,
    cohort: &CohortRow,
    team: &[Assignment],
) -> AppResult<Vec<String>> {
    let rules = staffing_io::rules_for(program, cohort.kind);
    let need = staffing_io::need_of(conn, program, cohort)?;
    let profiles = staffing_io::load_profiles(conn, program.id, &[cohort.id])?;
    Ok(staffing::check_team(&rules, &need, team, &profiles)
        .iter()
        .map(ToString::to_string)
        .collect())
}

/// A cohort that still meets can take or lose members; a finished one cannot.
fn require_open(cohort: &CohortRow) -> AppResult<()> {
    if matches!(cohort.status, CohortStatus::Forming | CohortStatus::Active) {
        Ok(())
    } else {
        Err(AppError::Conflict {
            message: format!("the cohort is {}", cohort.status),
            details: Some(json!({"current_status": cohort.status})),
        })
    }
}

/// Adds a waiting patient to a cohort (a full cohort or an excluded pair only with an
/// audited `override_reason`); they are welcomed by mail.
pub fn add_member(
    conn: &mut DbConnection,
    actor: &Actor,
    cohort_id: CohortId,
    patient_id: PatientId,
    override_reason_text: Option<&str>,
) -> AppResult<CohortView> {
    let reason = override_reason(override_reason_text)?;
    write_transaction(conn, |conn| {
        let cohort = cohort_for_lead(conn, actor, cohort_id)?;
        let (cohort_id, patient_id) = (cohort_id.get(), patient_id.get());
        require_open(&cohort)?;
        let program = program_context(conn, ProgramId(cohort.program_id))?;
        let patient = patients::find(conn, patient_id).map_err(|error| match error {
            diesel::result::Error::NotFound => AppError::field("patient_id", "no such patient"),
            other => other.into(),
        })?;
        if patient.program_id != cohort.program_id {
            return Err(AppError::field(
                "patient_id",
                "must be a patient of the cohort's program",
            ));
        }
        let status: PatientStatus = patient
            .status
            .parse()
            .map_err(|e: String| anyhow::anyhow!(e))?;
        if !may_join(status) {
            return Err(refused(TransitionRefused {
                from: status,
                action: "add the patient to a cohort",
                hint: "they must be waiting for a cohort",
            }));
        }
        let mut members = cohorts::active_member_ids(conn, cohort_id)?;
        let max = max_size(&program, cohort.kind);
        let mut violations = Vec::new();
        if members.len() >= max as usize {
            violations.push(format!("the cohort is full ({max} members)"));
        }
        members.push(patient_id);
        violations.extend(excluded_pairs(conn, program.id, &members)?);
        bypassable(violations, "patient_id", reason.as_deref())?;
        formation::add_member(
            conn,
            program.id,
            cohort_id,
            patient_id,
            Some(actor.id),
            database::now(),
        )?;
        if let Some(reason) = &reason {
            AuditEvent::new("override", "cohort", cohort_id)
                .by(actor.id)
                .in_program(program.id)
                .fields(&["members"])
                .detail(reason.clone())
                .record(conn)?;
        }
        lead_view(conn, cohort_id)
    })
}

/// Withdraws a member, keeping the history; what is queued for them is cancelled.
pub fn withdraw_member(
    conn: &mut DbConnection,
    actor: &Actor,
    cohort_id: CohortId,
    patient_id: PatientId,
    reason: &str,
) -> AppResult<CohortView> {
    let reason = crate::types::optional_note(Some(reason), 1000)
        .and_then(|reason| reason.ok_or_else(|| "must not be empty".to_string()))
        .map_err(|e| AppError::field("reason", e))?;
    write_transaction(conn, |conn| {
        let cohort = cohort_for_lead(conn, actor, cohort_id)?;
        let (cohort_id, patient_id) = (cohort_id.get(), patient_id.get());
        let now = database::now();
        if cohorts::withdraw_member(conn, cohort_id, patient_id, &reason, now)? == 0 {
            return Err(AppError::NotFound);
        }
        // Leaving a peer circle returns the person to `completed`; leaving an
        // integration cohort withdraws them.
        let after = match cohort.kind {
            CohortKind::PeerSupport => PatientStatus::Completed,
            CohortKind::Integration => PatientStatus::Withdrawn,
        };
        patients::set_status(conn, &[patient_id], after.as_str(), now)?;
        crate::outbox::cancel_for_patient(conn, patient_id, "left the group", now)?;
        // The reason may be clinical: it stays on the membership, not in the log.
        AuditEvent::new("withdraw_member", "cohort", cohort_id)
            .by(actor.id)
            .in_program(cohort.program_id)
            .fields(&["members"])
            .detail(format!("patient {patient_id}"))
            .record(conn)?;
        lead_view(conn, cohort_id)
    })
}

/// Sets a cohort's team by hand: a team that breaks a rule needs an `override_reason`.
pub fn set_team(
    conn: &mut DbConnection,
    actor: &Actor,
    cohort_id: CohortId,
    team: Vec<TeamMember>,
    override_reason_text: Option<&str>,
) -> AppResult<CohortView> {
    let reason = override_reason(override_reason_text)?;
    let team: Vec<Assignment> = team.into_iter().map(Assignment::from).collect();
    write_transaction(conn, |conn| {
        let cohort = cohort_for_lead(conn, actor, cohort_id)?;
        let cohort_id = cohort_id.get();
        let program = program_context(conn, ProgramId(cohort.program_id))?;
        staffing_io::require_pool(conn, program.id, &team)?;
        let violations = team_violations(conn, &program, &cohort, &team)?;
        bypassable(violations.clone(), "facilitators", reason.as_deref())?;
        let now = database::now();
        staffing_io::apply(conn, cohort_id, &team, &violations, reason.as_deref(), now)?;
        let action = if reason.is_some() {
            "override_staffing"
        } else {
            "set_staffing"
        };
        AuditEvent::new(action, "cohort", cohort_id)
            .by(actor.id)
            .in_program(program.id)
            .fields(&["facilitators"])
            .detail(reason.clone())
            .record(conn)?;
        lead_view(conn, cohort_id)
    })
}

/// Staffs a cohort automatically (balanced load, continuity first).
pub fn auto_staff(
    conn: &mut DbConnection,
    actor: &Actor,
    cohort_id: CohortId,
) -> AppResult<CohortView> {
    write_transaction(conn, |conn| {
        let cohort = cohort_for_lead(conn, actor, cohort_id)?;
        let cohort_id = cohort_id.get();
        let program = program_context(conn, ProgramId(cohort.program_id))?;
        if !staffing_io::auto_staff(conn, &program, &cohort, None, database::now())? {
            return Err(anyhow::anyhow!("staffing returned nothing").into());
        }
        AuditEvent::new("auto_staff", "cohort", cohort_id)
            .by(actor.id)
            .in_program(program.id)
            .fields(&["facilitators"])
            .record(conn)?;
        lead_view(conn, cohort_id)
    })
}

/// A change to one session.
#[derive(Debug, Clone, Copy)]
pub enum SessionChange {
    /// To a new start, ahead of time; members and team are told.
    Reschedule(DateTime<Utc>),
    /// Ahead of time; members and team are told.
    Cancel,
    /// After its start, by the people in the room.
    DidNotTakePlace,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionPatch {
    #[serde(default)]
    pub starts_at: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
}

impl TryFrom<SessionPatch> for SessionChange {
    type Error = AppError;

    fn try_from(patch: SessionPatch) -> AppResult<SessionChange> {
        match (patch.starts_at, patch.status.as_deref()) {
            (Some(starts_at), None) => {
                let when = DateTime::parse_from_rfc3339(starts_at.trim())
                    .map_err(|_| {
                        AppError::field("starts_at", "must be an RFC 3339 time with offset")
                    })?
                    .with_timezone(&Utc);
                if when <= Utc::now() {
                    return Err(AppError::field("starts_at", "must be in the future"));
                }
                Ok(SessionChange::Reschedule(when))
            }
            (None, Some(status)) => match status.parse::<SessionStatus>() {
                Ok(SessionStatus::Cancelled) => Ok(SessionChange::Cancel),
                Ok(SessionStatus::DidNotTakePlace) => Ok(SessionChange::DidNotTakePlace),
                _ => Err(AppError::field(
                    "status",
                    "must be cancelled (ahead of time) or did_not_take_place (after the start); attendance marks a session held",
                )),
            },
            _ => Err(AppError::field(
                "starts_at",
                "give exactly one of starts_at or status",
            )),
        }
    }
}

/// Reschedules or cancels a session (with notices), or records that it did not take
/// place; returns the cohort as the caller sees it.
pub fn change_session(
    conn: &mut DbConnection,
    actor: &Actor,
    session_id: SessionId,
    change: SessionChange,
) -> AppResult<CohortView> {
    let session_id = session_id.get();
    write_transaction(conn, |conn| {
        let session = cohorts::find_session(conn, session_id)?;
        let cohort_id = CohortId(session.cohort_id);
        let now = database::now();
        let cohort = match change {
            // The people in the room know whether it happened.
            SessionChange::DidNotTakePlace => cohort_for_reader(conn, actor, cohort_id)?,
            SessionChange::Reschedule(_) | SessionChange::Cancel => {
                cohort_for_lead(conn, actor, cohort_id)?
            }
        };
        let started = session.starts_at <= now;
        let (allowed, refusal) = match change {
            SessionChange::DidNotTakePlace => (
                started
                    && matches!(
                        session.status,
                        SessionStatus::Scheduled | SessionStatus::Held
                    ),
                "only a session that has started can be marked did_not_take_place",
            ),
            SessionChange::Reschedule(_) | SessionChange::Cancel => (
                !started && session.status == SessionStatus::Scheduled,
                "only a scheduled session that has not started can be changed",
            ),
        };
        if !allowed {
            return Err(AppError::Conflict {
                message: refusal.into(),
                details: Some(json!({
                    "current_status": session.status,
                    "starts_at": session.starts_at.and_utc(),
                })),
            });
        }
        let (action, field) = match change {
            SessionChange::Reschedule(when) => {
                cohorts::reschedule_session(conn, session_id, when.naive_utc(), now)?;
                let notice = crate::outbox::SessionNotice::Changed {
                    old_starts_at: session.starts_at,
                };
                crate::outbox::enqueue_session_notice(conn, session_id, notice, now)?;
                ("reschedule", "starts_at")
            }
            SessionChange::Cancel => {
                cohorts::set_session_status(conn, session_id, SessionStatus::Cancelled, now)?;
                crate::outbox::enqueue_session_notice(
                    conn,
                    session_id,
                    crate::outbox::SessionNotice::Cancelled,
                    now,
                )?;
                ("cancel", "status")
            }
            SessionChange::DidNotTakePlace => {
                cohorts::set_session_status(conn, session_id, SessionStatus::DidNotTakePlace, now)?;
                ("did_not_take_place", "status")
            }
        };
        AuditEvent::new(action, "session", session_id)
            .by(actor.id)
            .in_program(cohort.program_id)
            .fields(&[field])
            .record(conn)?;
        CohortView::load(conn, &cohort, Audience::of(actor), now)
    })
}

/// Completes a cohort whose sessions are over; completers are invited to peer support.
pub fn complete(
    conn: &mut DbConnection,
    actor: &Actor,
    cohort_id: CohortId,
) -> AppResult<super::peer::CompletionOutcome> {
    write_transaction(conn, |conn| {
        let cohort = cohort_for_lead(conn, actor, cohort_id)?;
        let program = program_context(conn, ProgramId(cohort.program_id))?;
        super::peer::complete(conn, &program, &cohort, Some(actor.id), database::now())
    })
}

/// A peer-support circle as its program's lead sees it.
#[derive(Debug, Serialize)]
pub struct PeerCircleView {
    #[serde(flatten)]
    pub cohort: CohortView,
    pub capacity: u32,
    pub active_members: usize,
    pub next_session_at: Option<DateTime<Utc>>,
    pub from_cohorts: BTreeSet<i64>,
}

/// A program's peer-support circles: forming, active, then completed ones.
pub fn peer_circles(
    conn: &mut DbConnection,
    actor: &Actor,
    program_id: ProgramId,
) -> AppResult<Vec<PeerCircleView>> {
    let program = program_context(conn, program_id)?;
    let program_id = program_id.get();
    actor.require_lead_of(program_id)?;
    let now = database::now();
    let mut circles = cohorts::of_program(conn, program_id, CohortKind::PeerSupport, None)?;
    let statuses = statuses_as_of(conn, &circles, now)?;
    let rank = |status: CohortStatus| CohortStatus::ALL.iter().position(|s| *s == status);
    circles.retain(|c| statuses.get(&c.id) != Some(&CohortStatus::Cancelled));
    circles.sort_by_key(|c| (statuses.get(&c.id).copied().and_then(rank), c.id));
    let views = CohortView::load_many(conn, &circles, Audience::Lead, now)?;
    views
        .into_iter()
        .map(|view| {
            let from_cohorts = super::peer::origins(conn, view.id)?;
            Ok(PeerCircleView {
                capacity: program.rules.peer_support.max_size,
                active_members: view
                    .members
                    .iter()
                    .filter(|m| m.status == MemberStatus::Active)
                    .count(),
                next_session_at: view
                    .sessions
                    .iter()
                    .filter(|s| {
                        s.status == SessionStatus::Scheduled && s.starts_at.naive_utc() > now
                    })
                    .map(|s| s.starts_at)
                    .min(),
                from_cohorts,
                cohort: view,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::members_are;

    #[test]
    fn size_rules_read_as_english() {
        assert_eq!(members_are(1), "1 member is");
        assert_eq!(members_are(3), "3 members are");
    }
}
