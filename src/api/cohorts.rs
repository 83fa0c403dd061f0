//! Cohorts: formation, creation by hand, members, staffing and sessions.

use crate::db::audit::{self, AuditEvent};
use crate::db::models::cohort::{self as cohorts};
use crate::db::models::patient as patients;
use crate::db::models::user::Role;
use crate::db::{self as database, write_transaction, DbConnection};
use crate::domain::patient::PatientStatus;
use crate::domain::schedule;
use crate::domain::staffing::{self as staffing, Assignment, Role as TeamRole};
use crate::domain::status::{CohortKind, CohortStatus, SessionStatus};
use crate::domain::Modality;
use crate::error::{AppError, AppResult};
use crate::service::cohorts::{
    cohort_document, cohort_for_lead, cohort_for_reader, lead_view, program_context,
};
use crate::service::formation::{self, create_cohort_of_kind};
use crate::service::patients::refused;
use crate::service::staffing as staffing_io;
use crate::service::ProgramContext;
use crate::web::CurrentUser;
use crate::web::{db, AppState, Json};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/programs/{id}/cohort-formations",
        web::post().to(form_cohorts),
    )
    .route("/cohorts", web::post().to(create))
    .route("/cohorts", web::get().to(list))
    .route("/cohorts/{id}", web::get().to(get))
    .route("/cohorts/{id}/members", web::post().to(add_member))
    .route(
        "/cohorts/{id}/members/{patient_id}",
        web::delete().to(withdraw_member),
    )
    .route("/cohorts/{id}/facilitators", web::put().to(set_team))
    .route("/cohorts/{id}/staffing", web::post().to(auto_staff))
    .route("/sessions/{id}", web::patch().to(patch_session))
    .route("/cohorts/{id}/completion", web::post().to(complete))
    .route("/programs/{id}/peer-circles", web::get().to(peer_circles));
}

async fn complete(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let outcome = db(&state, move |conn| {
        write_transaction(conn, |conn| {
            let cohort = cohort_for_lead(conn, &actor, id)?;
            let program = program_context(conn, cohort.program_id)?;
            crate::service::peer::complete(conn, &program, &cohort, Some(actor.id), database::now())
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(outcome))
}

async fn peer_circles(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let program_id = path.into_inner();
    let views = db(&state, move |conn| {
        let program = program_context(conn, program_id)?;
        actor.require_lead_of(program_id)?;
        cohorts::activate_started(conn, database::now())?;
        let now = database::now();
        let mut views = Vec::new();
        for status in [
            CohortStatus::Forming,
            CohortStatus::Active,
            CohortStatus::Completed,
        ] {
            for circle in cohorts::of_program(conn, program_id, CohortKind::PeerSupport, status)? {
                let members = cohorts::active_member_ids(conn, circle.id)?;
                let next = cohorts::sessions_of(conn, &[circle.id])?
                    .into_iter()
                    .filter(|s| s.status == SessionStatus::Scheduled && s.starts_at > now)
                    .map(|s| s.starts_at.and_utc())
                    .min();
                let from_cohorts: std::collections::BTreeSet<i64> =
                    crate::service::peer::origins(conn, circle.id)?;
                let mut view = cohort_document(conn, &circle, true)?;
                view["capacity"] = json!(program.rules.peer_support.max_size);
                view["active_members"] = json!(members.len());
                view["next_session_at"] = json!(next);
                view["from_cohorts"] = json!(from_cohorts);
                views.push(view);
            }
        }
        Ok(views)
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "circles": views })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FormationRequest {
    dry_run: bool,
}

async fn form_cohorts(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
    body: Json<FormationRequest>,
) -> AppResult<HttpResponse> {
    let program_id = path.into_inner();
    let dry_run = body.0.dry_run;
    let outcome = db(&state, move |conn| {
        let program = program_context(conn, program_id)?;
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
    })
    .await?;
    let status = if dry_run { 200 } else { 201 };
    Ok(
        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap_or_default())
            .json(outcome),
    )
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    program_id: Option<i64>,
}

async fn list(
    state: web::Data<AppState>,
    actor: CurrentUser,
    params: web::Query<ListParams>,
) -> AppResult<HttpResponse> {
    let program_id = params.program_id;
    let views = db(&state, move |conn| {
        cohorts::activate_started(conn, database::now())?;
        let rows = match actor.role {
            Role::Facilitator => {
                let Some(facilitator_id) = actor.facilitator_id else {
                    return Ok(vec![]);
                };
                cohorts::list(conn, program_id, None, Some(facilitator_id))?
            }
            _ => {
                if let Some(program_id) = program_id {
                    actor.require_program(program_id)?;
                }
                cohorts::list(conn, program_id, actor.program_scope().as_deref(), None)?
            }
        };
        let show = actor.role != Role::Facilitator;
        rows.iter()
            .map(|row| cohort_document(conn, row, show))
            .collect::<AppResult<Vec<_>>>()
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "cohorts": views })))
}

async fn get(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let view = db(&state, move |conn| {
        cohorts::activate_started(conn, database::now())?;
        let cohort = cohort_for_reader(conn, &actor, id)?;
        cohort_document(conn, &cohort, actor.role != Role::Facilitator)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TeamMember {
    facilitator_id: i64,
    role: TeamRole,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewCohortRequest {
    program_id: i64,
    #[serde(default)]
    kind: Option<String>,
    members: Vec<i64>,
    first_session_at: String,
    #[serde(default)]
    facilitators: Option<Vec<TeamMember>>,
    #[serde(default)]
    override_reason: Option<String>,
}

/// Rules a lead may knowingly bypass by giving a reason, which is audited.
fn bypassable(violations: Vec<String>, field: &str, reason: &Option<String>) -> AppResult<()> {
    if violations.is_empty() || reason.is_some() {
        Ok(())
    } else {
        Err(AppError::RuleViolations {
            field: field.into(),
            violations,
        })
    }
}

fn override_reason(text: Option<&str>) -> AppResult<Option<String>> {
    crate::types::optional_text(text, 1000).map_err(|e| AppError::field("override_reason", e))
}

async fn create(
    state: web::Data<AppState>,
    actor: CurrentUser,
    body: Json<NewCohortRequest>,
) -> AppResult<HttpResponse> {
    let request = body.0;
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
    let view = db(&state, move |conn| {
        let program = program_context(conn, request.program_id).map_err(|error| match error {
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
                if !matches!(
                    status,
                    PatientStatus::AwaitingCohort
                        | PatientStatus::AwaitingDosing
                        | PatientStatus::Completed
                ) {
                    return Err(AppError::Conflict {
                        message: format!("patient {id} is {status} and cannot join a new cohort"),
                        details: Some(json!({"patient_id": id, "current_status": status})),
                    });
                }
            }
            let (max_size, sessions, interval) = if kind == CohortKind::PeerSupport {
                let peer = &program.rules.peer_support;
                (
                    peer.max_size,
                    program.rules.peer_support.sessions,
                    peer.interval_weeks,
                )
            } else {
                (
                    program.rules.cohort.max_size,
                    program.rules.schedule.sessions,
                    1,
                )
            };
            let mut violations = Vec::new();
            if members.len() > max_size as usize {
                violations.push(format!(
                    "{} members exceed the maximum of {max_size}",
                    members.len()
                ));
            }
            if kind == CohortKind::Integration
                && members.len() < program.rules.cohort.min_size as usize
            {
                violations.push(format!(
                    "{} members are fewer than the minimum of {}",
                    members.len(),
                    program.rules.cohort.min_size
                ));
            }
            violations.extend(excluded_pairs(conn, program.id, &members)?);
            bypassable(violations, "members", &reason)?;

            // Weekly at the local wall time of the first session (which may be a
            // past cohort being imported, off the program's current slot).
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
                    let rules = staffing_io::rules_for(&program, kind);
                    let need = staffing_io::need_of(conn, &program, &cohort)?;
                    let profiles = staffing_io::load_profiles(conn, program.id, &[id])?;
                    let team: Vec<Assignment> = team
                        .into_iter()
                        .map(|m| Assignment {
                            facilitator_id: m.facilitator_id,
                            role: m.role,
                        })
                        .collect();
                    let violations: Vec<String> =
                        staffing::check_team(&rules, &need, &team, &profiles)
                            .iter()
                            .map(ToString::to_string)
                            .collect();
                    bypassable(violations.clone(), "facilitators", &reason)?;
                    staffing_io::apply(conn, id, &team, &violations, reason.as_deref(), now)?;
                }
                None => {
                    staffing_io::auto_staff(conn, &program, &cohort, reason.as_deref(), now)?;
                }
            }
            if let Some(reason) = &reason {
                audit::record(
                    conn,
                    AuditEvent {
                        actor_user_id: Some(actor.id),
                        action: "override",
                        entity: "cohort",
                        entity_id: id,
                        program_id: Some(program.id),
                        changed_fields: vec!["members".into(), "facilitators".into()],
                        detail: Some(reason.clone()),
                    },
                )?;
            }
            cohorts::activate_started(conn, now)?;
            lead_view(conn, id)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

/// "patients 3 and 7 are excluded from each other" for each pair among `members`.
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AddMemberRequest {
    patient_id: i64,
    #[serde(default)]
    override_reason: Option<String>,
}

async fn add_member(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
    body: Json<AddMemberRequest>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let request = body.0;
    let reason = override_reason(request.override_reason.as_deref())?;
    let view = db(&state, move |conn| {
        write_transaction(conn, |conn| {
            let cohort = cohort_for_lead(conn, &actor, id)?;
            if !matches!(cohort.status, CohortStatus::Forming | CohortStatus::Active) {
                return Err(AppError::Conflict {
                    message: format!("the cohort is {}", cohort.status),
                    details: Some(json!({"current_status": cohort.status})),
                });
            }
            let program = program_context(conn, cohort.program_id)?;
            let patient =
                patients::find(conn, request.patient_id).map_err(|error| match error {
                    diesel::result::Error::NotFound => {
                        AppError::field("patient_id", "no such patient")
                    }
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
            if !matches!(
                status,
                PatientStatus::AwaitingCohort
                    | PatientStatus::AwaitingDosing
                    | PatientStatus::Completed
            ) {
                return Err(refused(crate::domain::patient::TransitionRefused {
                    from: status,
                    action: "add the patient to a cohort",
                    hint: "they must be waiting for a cohort",
                }));
            }
            let mut members = cohorts::active_member_ids(conn, id)?;
            let max = if cohort.kind == CohortKind::PeerSupport {
                program.rules.peer_support.max_size
            } else {
                program.rules.cohort.max_size
            };
            let mut violations = Vec::new();
            if members.len() >= max as usize {
                violations.push(format!("the cohort is full ({max} members)"));
            }
            members.push(request.patient_id);
            violations.extend(excluded_pairs(conn, program.id, &members)?);
            bypassable(violations, "patient_id", &reason)?;
            formation::add_member(
                conn,
                program.id,
                id,
                request.patient_id,
                Some(actor.id),
                database::now(),
            )?;
            if let Some(reason) = &reason {
                audit::record(
                    conn,
                    AuditEvent {
                        actor_user_id: Some(actor.id),
                        action: "override",
                        entity: "cohort",
                        entity_id: id,
                        program_id: Some(program.id),
                        changed_fields: vec!["members".into()],
                        detail: Some(reason.clone()),
                    },
                )?;
            }
            lead_view(conn, id)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WithdrawRequest {
    reason: String,
}

async fn withdraw_member(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<(i64, i64)>,
    body: Json<WithdrawRequest>,
) -> AppResult<HttpResponse> {
    let (id, patient_id) = path.into_inner();
    let reason = crate::types::required_text(&body.0.reason, 1000)
        .map_err(|e| AppError::field("reason", e))?;
    let view = db(&state, move |conn| {
        write_transaction(conn, |conn| {
            let cohort = cohort_for_lead(conn, &actor, id)?;
            let now = database::now();
            if cohorts::withdraw_member(conn, id, patient_id, &reason, now)? == 0 {
                return Err(AppError::NotFound);
            }
            // Leaving a peer circle returns the person to `completed`; leaving an
            // integration cohort withdraws them.
            let after = if cohort.kind == CohortKind::PeerSupport {
                PatientStatus::Completed
            } else {
                PatientStatus::Withdrawn
            };
            patients::set_status(conn, &[patient_id], after.as_str(), now)?;
            crate::outbox::cancel_for_patient(conn, patient_id, "left the group", now)?;
            audit::record(
                conn,
                AuditEvent {
                    actor_user_id: Some(actor.id),
                    action: "withdraw_member",
                    entity: "cohort",
                    entity_id: id,
                    program_id: Some(cohort.program_id),
                    changed_fields: vec!["members".into()],
                    // The reason may be clinical: it stays on the membership, not in the log.
                    detail: Some(format!("patient {patient_id}")),
                },
            )?;
            lead_view(conn, id)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

/// `[{facilitator_id, role}]`, or `{facilitators: [...], override_reason?}`.
type TeamRequest = crate::web::json::ListOrObject<TeamMember, TeamWithReason>;

#[derive(Deserialize)]
struct TeamWithReason {
    facilitators: Vec<TeamMember>,
    #[serde(default)]
    override_reason: Option<String>,
}

async fn set_team(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
    body: Json<TeamRequest>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let (team, reason) = match body.0 {
        TeamRequest::List(team) => (team, None),
        TeamRequest::Object(TeamWithReason {
            facilitators,
            override_reason: reason,
        }) => (facilitators, reason),
    };
    let reason = override_reason(reason.as_deref())?;
    let team: Vec<Assignment> = team
        .into_iter()
        .map(|m| Assignment {
            facilitator_id: m.facilitator_id,
            role: m.role,
        })
        .collect();
    let view = db(&state, move |conn| {
        write_transaction(conn, |conn| {
            let cohort = cohort_for_lead(conn, &actor, id)?;
            let program = program_context(conn, cohort.program_id)?;
            let rules = staffing_io::rules_for(&program, cohort.kind);
            let need = staffing_io::need_of(conn, &program, &cohort)?;
            let profiles = staffing_io::load_profiles(conn, program.id, &[id])?;
            let violations: Vec<String> = staffing::check_team(&rules, &need, &team, &profiles)
                .iter()
                .map(ToString::to_string)
                .collect();
            bypassable(violations.clone(), "facilitators", &reason)?;
            let now = database::now();
            staffing_io::apply(conn, id, &team, &violations, reason.as_deref(), now)?;
            audit::record(
                conn,
                AuditEvent {
                    actor_user_id: Some(actor.id),
                    action: if reason.is_some() {
                        "override_staffing"
                    } else {
                        "set_staffing"
                    },
                    entity: "cohort",
                    entity_id: id,
                    program_id: Some(program.id),
                    changed_fields: vec!["facilitators".into()],
                    detail: reason.clone(),
                },
            )?;
            lead_view(conn, id)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn auto_staff(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let view = db(&state, move |conn| {
        write_transaction(conn, |conn| {
            let cohort = cohort_for_lead(conn, &actor, id)?;
            let program = program_context(conn, cohort.program_id)?;
            if !staffing_io::auto_staff(conn, &program, &cohort, None, database::now())? {
                return Err(anyhow::anyhow!("staffing returned nothing").into());
            }
            audit::record(
                conn,
                AuditEvent {
                    actor_user_id: Some(actor.id),
                    action: "auto_staff",
                    entity: "cohort",
                    entity_id: id,
                    program_id: Some(program.id),
                    changed_fields: vec!["facilitators".into()],
                    detail: None,
                },
            )?;
            lead_view(conn, id)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SessionPatch {
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    status: Option<String>,
}

async fn patch_session(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
    body: Json<SessionPatch>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let request = body.0;
    let change = match (request.starts_at, request.status.as_deref()) {
        (Some(starts_at), None) => {
            let when = DateTime::parse_from_rfc3339(starts_at.trim())
                .map_err(|_| AppError::field("starts_at", "must be an RFC 3339 time with offset"))?
                .with_timezone(&Utc);
            if when <= Utc::now() {
                return Err(AppError::field("starts_at", "must be in the future"));
            }
            SessionChange::Reschedule(when)
        }
        (None, Some("cancelled")) => SessionChange::Cancel,
        (None, Some("did_not_take_place")) => SessionChange::DidNotTakePlace,
        (None, Some(_)) => {
            return Err(AppError::field(
                "status",
                "must be cancelled (ahead of time) or did_not_take_place (after the start); attendance marks a session held",
            ))
        }
        _ => return Err(AppError::field("starts_at", "give exactly one of starts_at or status")),
    };
    let view = db(&state, move |conn| {
        write_transaction(conn, |conn| {
            let session = cohorts::find_session(conn, id)?;
            let now = database::now();
            let cohort = match change {
                // The people in the room know whether it happened.
                SessionChange::DidNotTakePlace => cohort_for_reader(conn, &actor, session.cohort_id)?,
                _ => cohort_for_lead(conn, &actor, session.cohort_id)?,
            };
            let started = session.starts_at <= now;
            let allowed = match change {
                SessionChange::DidNotTakePlace => started && matches!(session.status, SessionStatus::Scheduled | SessionStatus::Held),
                _ => !started && session.status == SessionStatus::Scheduled,
            };
            if !allowed {
                return Err(AppError::Conflict {
                    message: match change {
                        SessionChange::DidNotTakePlace => "only a session that has started can be marked did_not_take_place",
                        _ => "only a scheduled session that has not started can be changed",
                    }
                    .into(),
                    details: Some(json!({"current_status": session.status, "starts_at": session.starts_at.and_utc()})),
                });
            }
            let (action, field) = match change {
                SessionChange::Reschedule(when) => {
                    cohorts::reschedule_session(conn, id, when.naive_utc(), now)?;
                    let notice = crate::outbox::SessionNotice::Changed { old_starts_at: session.starts_at };
                    crate::outbox::enqueue_session_notice(conn, id, notice, now)?;
                    ("reschedule", "starts_at")
                }
                SessionChange::Cancel => {
                    cohorts::set_session_status(conn, id, "cancelled", now)?;
                    crate::outbox::enqueue_session_notice(conn, id, crate::outbox::SessionNotice::Cancelled, now)?;
                    ("cancel", "status")
                }
                SessionChange::DidNotTakePlace => {
                    cohorts::set_session_status(conn, id, "did_not_take_place", now)?;
                    ("did_not_take_place", "status")
                }
            };
            audit::record(conn, AuditEvent {
                actor_user_id: Some(actor.id),
                action,
                entity: "session",
                entity_id: id,
                program_id: Some(cohort.program_id),
                changed_fields: vec![field.into()],
                detail: None,
            })?;
            cohort_document(conn, &cohort, actor.role != Role::Facilitator)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

#[derive(Clone, Copy)]
enum SessionChange {
    Reschedule(DateTime<Utc>),
    Cancel,
    DidNotTakePlace,
}
