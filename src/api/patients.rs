//! The registry a program lead keeps: patients, consent, dosings and exclusions.

use crate::db::audit::{self, AuditEvent};
use crate::db::models::patient::{
    self as patients, NewConsentEvent, NewDosing, NewExclusion, NewPatient, PatientChanges,
    PatientRow,
};
use crate::db::models::user::Role;
use crate::db::models::{facilitator, program};
use crate::db::{self as database, write_transaction, DbConnection};
use crate::domain::patient::{PatientStatus, TransitionRefused};
use crate::domain::program::parse_timezone;
use crate::domain::Modality;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::types::{required_text, EmailAddress};
use crate::web::patch::{changed_paths, merge_patch};
use crate::web::CurrentUser;
use crate::web::{db, AppState, Json};
use actix_web::{web, HttpResponse};
use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// How far in the future a dosing time may lie, for clocks that disagree a little.
const CLOCK_SKEW_MINUTES: i64 = 5;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/programs/{id}/patients", web::post().to(create))
        .route("/programs/{id}/patients", web::get().to(list))
        .route(
            "/programs/{id}/patients/import",
            web::post().to(super::import::import_patients),
        )
        .route("/patients/{id}", web::get().to(get))
        .route("/patients/{id}", web::patch().to(patch))
        .route("/patients/{id}/dosings", web::post().to(add_dosing))
        .route("/patients/{id}/exclusions", web::post().to(add_exclusion))
        .route("/patients/{id}/exclusions", web::get().to(list_exclusions))
        .route(
            "/patients/{id}/exclusions/{exclusion_id}",
            web::delete().to(delete_exclusion),
        );
}

/// The fields a lead writes about a patient (POST body; also one CSV row).
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PatientInput {
    pub name: String,
    pub email: String,
    #[serde(default)]
    pub timezone: Option<String>,
    pub email_consent: bool,
}

#[derive(Debug, Clone)]
pub struct ValidPatient {
    pub name: String,
    pub email: EmailAddress,
    pub timezone: Option<String>,
    pub email_consent: bool,
}

impl PatientInput {
    pub fn validate(&self) -> Result<ValidPatient, FieldErrors> {
        let mut errors = FieldErrors::new();
        let name = required_text(&self.name, 200)
            .map_err(|e| errors.insert("name".into(), e))
            .ok();
        let email = EmailAddress::parse(&self.email)
            .map_err(|e| errors.insert("email".into(), e))
            .ok();
        let timezone = match self.timezone.as_deref().map(str::trim) {
            None | Some("") => Some(None),
            Some(zone) => parse_timezone(zone)
                .map(|tz| Some(tz.name().to_string()))
                .map_err(|e| errors.insert("timezone".into(), e))
                .ok(),
        };
        match (name, email, timezone) {
            (Some(name), Some(email), Some(timezone)) if errors.is_empty() => Ok(ValidPatient {
                name,
                email,
                timezone,
                email_consent: self.email_consent,
            }),
            _ => Err(errors),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct DosingView {
    pub id: i64,
    /// In the offset it was recorded with.
    pub dosed_at: DateTime<FixedOffset>,
    pub modality: String,
}

impl From<&patients::DosingRow> for DosingView {
    fn from(row: &patients::DosingRow) -> Self {
        DosingView {
            id: row.id,
            dosed_at: with_offset(row.dosed_at, row.utc_offset_minutes),
            modality: row.modality.clone(),
        }
    }
}

fn with_offset(utc: NaiveDateTime, offset_minutes: i32) -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(offset_minutes * 60).unwrap_or(Utc.fix());
    utc.and_utc().with_timezone(&offset)
}

#[derive(Debug, Serialize)]
pub struct PatientSummary {
    pub id: i64,
    pub program_id: i64,
    pub name: String,
    pub email: String,
    pub timezone: Option<String>,
    pub email_consent: bool,
    pub consent_changed_at: Option<DateTime<Utc>>,
    pub status: String,
    pub latest_dosing: Option<DosingView>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl PatientSummary {
    fn new(row: PatientRow, latest_dosing: Option<DosingView>) -> Self {
        PatientSummary {
            id: row.id,
            program_id: row.program_id,
            name: row.name,
            email: row.email,
            timezone: row.timezone,
            email_consent: row.email_consent,
            consent_changed_at: row.consent_changed_at.map(|at| at.and_utc()),
            status: row.status,
            latest_dosing,
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
        }
    }
}

/// The whole record: the summary plus every dosing, the consent history and exclusions.
fn patient_document(
    conn: &mut DbConnection,
    row: PatientRow,
    show_notes: bool,
) -> AppResult<Value> {
    let id = row.id;
    let dosings: Vec<DosingView> = patients::dosings_of(conn, &[id])?
        .iter()
        .map(DosingView::from)
        .collect();
    let consent: Vec<Value> = patients::consent_history(conn, id)?
        .into_iter()
        .map(|event| {
            json!({"email_consent": event.email_consent, "source": event.source, "at": event.at.and_utc()})
        })
        .collect();
    let exclusions: Vec<Value> = patients::exclusions_of(conn, id)?
        .iter()
        .map(|row| exclusion_view(row, id, show_notes))
        .collect();
    let mut document = serde_json::to_value(PatientSummary::new(row, None))
        .map_err(|error| anyhow::anyhow!("serialising a patient: {error}"))?;
    let journey: Vec<Value> = crate::db::models::cohort::memberships_of(conn, id)?
        .into_iter()
        .map(|(member, kind, cohort_status)| {
            json!({
                "cohort_id": member.cohort_id,
                "kind": kind,
                "cohort_status": cohort_status,
                "member_status": member.status,
                "joined_at": member.joined_at.and_utc(),
                "left_at": member.left_at.map(|at| at.and_utc()),
            })
        })
        .collect();
    let invitations: Vec<Value> = crate::service::peer::invitations_of(conn, id)?
        .into_iter()
        .map(|i| json!({"id": i.id, "cohort_id": i.cohort_id, "status": i.status, "circle_id": i.circle_id,
                        "created_at": i.created_at.and_utc(), "responded_at": i.responded_at.map(|t| t.and_utc())}))
        .collect();
    if let Some(object) = document.as_object_mut() {
        object.insert("journey".into(), json!(journey));
        object.insert("peer_invitations".into(), json!(invitations));
        object.remove("latest_dosing");
        object.insert("dosings".into(), json!(dosings));
        object.insert("consent_history".into(), json!(consent));
        object.insert("exclusions".into(), json!(exclusions));
    }
    Ok(document)
}

/// An exclusion seen from `patient_id`'s side.
fn exclusion_view(row: &patients::ExclusionRow, patient_id: i64, show_note: bool) -> Value {
    let other = match row.other_patient_id {
        Some(other) if other == patient_id => Some(row.patient_id),
        other => other,
    };
    let mut view = json!({
        "id": row.id,
        "patient_id": other,
        "facilitator_id": row.facilitator_id,
        "created_at": row.created_at.and_utc(),
    });
    if show_note {
        view["note"] = json!(row.note);
    }
    view
}

/// Loads a patient for a lead of its program (or an admin).
pub fn patient_for_lead(
    conn: &mut DbConnection,
    actor: &CurrentUser,
    id: i64,
) -> AppResult<PatientRow> {
    let row = patients::find(conn, id)?;
    actor.require_lead_of(row.program_id)?;
    Ok(row)
}

/// Loads a patient for anyone allowed to read it: a lead of its program, or a
/// facilitator of a cohort the patient is or was in.
pub fn patient_for_reader(
    conn: &mut DbConnection,
    actor: &CurrentUser,
    id: i64,
) -> AppResult<PatientRow> {
    let row = patients::find(conn, id)?;
    actor.require_reader(
        row.program_id,
        |facilitator_id| Ok(patients::facilitated_by(conn, id, facilitator_id)?),
        "a facilitator sees only the patients of their cohorts",
    )?;
    Ok(row)
}

pub fn refused(refusal: TransitionRefused) -> AppError {
    AppError::Conflict {
        message: refusal.to_string(),
        details: Some(json!({ "current_status": refusal.from })),
    }
}

fn patient_audit(
    actor: &CurrentUser,
    action: &'static str,
    row_id: i64,
    program_id: i64,
    fields: Vec<String>,
) -> AuditEvent<'static> {
    AuditEvent {
        actor_user_id: Some(actor.id),
        action,
        entity: "patient",
        entity_id: row_id,
        program_id: Some(program_id),
        changed_fields: fields,
        detail: None,
    }
}

async fn create(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
    body: Json<PatientInput>,
) -> AppResult<HttpResponse> {
    let program_id = path.into_inner();
    let patient = body.0.validate().map_err(AppError::Validation)?;
    let document = db(&state, move |conn| {
        program::find(conn, program_id)?;
        actor.require_lead_of(program_id)?;
        write_transaction(conn, |conn| {
            if patients::email_taken(conn, program_id, patient.email.as_str(), None)? {
                return Err(AppError::conflict(
                    "another patient of this program has this email",
                ));
            }
            let now = database::now();
            let id = patients::insert(
                conn,
                &NewPatient {
                    program_id,
                    name: patient.name.clone(),
                    email: patient.email.to_string(),
                    timezone: patient.timezone.clone(),
                    email_consent: patient.email_consent,
                    consent_changed_at: Some(now),
                    status: PatientStatus::AwaitingDosing.as_str().into(),
                    created_at: now,
                    updated_at: now,
                },
            )?;
            patients::insert_consent_events(
                conn,
                &[NewConsentEvent {
                    patient_id: id,
                    email_consent: patient.email_consent,
                    source: "created",
                    at: now,
                }],
            )?;
            let fields = ["name", "email", "timezone", "email_consent", "status"]
                .map(String::from)
                .to_vec();
            audit::record(
                conn,
                patient_audit(&actor, "create", id, program_id, fields),
            )?;
            let row = patients::find(conn, id)?;
            patient_document(conn, row, true)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(document))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    status: Option<String>,
    after: Option<i64>,
    limit: Option<i64>,
}

async fn list(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
    params: web::Query<ListParams>,
) -> AppResult<HttpResponse> {
    let program_id = path.into_inner();
    let params = params.into_inner();
    let status = params
        .status
        .as_deref()
        .map(str::parse::<PatientStatus>)
        .transpose()
        .map_err(|e| AppError::field("status", e))?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(AppError::field("limit", "must be between 1 and 1000"));
    }
    let (rows, latest) = db(&state, move |conn| {
        program::find(conn, program_id)?;
        actor.require_lead_of(program_id)?;
        let rows = patients::page(
            conn,
            program_id,
            status.map(PatientStatus::as_str),
            params.after,
            limit,
        )?;
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        let dosings = patients::dosings_of(conn, &ids)?;
        Ok((rows, dosings))
    })
    .await?;
    let next_after = (rows.len() as i64 == limit)
        .then(|| rows.last().map(|row| row.id))
        .flatten();
    // Dosings come ordered by (patient, time), so the last one seen per patient is the latest.
    let mut latest_by_patient = std::collections::HashMap::new();
    for dosing in &latest {
        latest_by_patient.insert(dosing.patient_id, dosing);
    }
    let summaries: Vec<PatientSummary> = rows
        .into_iter()
        .map(|row| {
            let latest = latest_by_patient.get(&row.id).map(|d| DosingView::from(*d));
            PatientSummary::new(row, latest)
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "patients": summaries, "next_after": next_after })))
}

async fn get(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let document = db(&state, move |conn| {
        let row = patient_for_reader(conn, &actor, id)?;
        patient_document(conn, row, actor.role != Role::Facilitator)
    })
    .await?;
    Ok(HttpResponse::Ok().json(document))
}

/// What a PATCH may change, validated as a whole after merging.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
struct PatientDocument {
    name: String,
    email: String,
    timezone: Option<String>,
    email_consent: bool,
    status: String,
}

async fn patch(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let patch = body.0;
    if !patch.is_object() {
        return Err(AppError::field("body", "must be a JSON object"));
    }
    let document = db(&state, move |conn| {
        write_transaction(conn, |conn| {
            let row = patient_for_lead(conn, &actor, id)?;
            let before = serde_json::to_value(PatientDocument {
                name: row.name.clone(),
                email: row.email.clone(),
                timezone: row.timezone.clone(),
                email_consent: row.email_consent,
                status: row.status.clone(),
            })
            .map_err(|error| anyhow::anyhow!("serialising a patient: {error}"))?;
            let mut after = before.clone();
            merge_patch(&mut after, &patch);
            let merged: PatientDocument =
                crate::web::json::parse_json(after.to_string().as_bytes())?;
            let mut errors = FieldErrors::new();
            let valid = PatientInput {
                name: merged.name,
                email: merged.email,
                timezone: merged.timezone,
                email_consent: merged.email_consent,
            }
            .validate()
            .map_err(|e| errors.extend(e))
            .ok();
            let target = merged
                .status
                .parse::<PatientStatus>()
                .map_err(|e| errors.insert("status".into(), e))
                .ok();
            AppError::check(errors)?;
            let (Some(valid), Some(target)) = (valid, target) else {
                return Err(anyhow::anyhow!("patient validation lost an error").into());
            };
            let current: PatientStatus = row
                .status
                .parse()
                .map_err(|e: String| anyhow::anyhow!("stored patient status: {e}"))?;
            let status = current.set_by_hand(target).map_err(refused)?;
            if valid.email.as_str() != row.email
                && patients::email_taken(conn, row.program_id, valid.email.as_str(), Some(id))?
            {
                return Err(AppError::conflict(
                    "another patient of this program has this email",
                ));
            }
            let changed = changed_paths(&before, &after);
            if changed.is_empty() {
                return patient_document(conn, row, true);
            }
            let now = database::now();
            let consent_changed = valid.email_consent != row.email_consent;
            if consent_changed && !valid.email_consent {
                crate::outbox::cancel_for_patient(conn, id, "consent withdrawn", now)?;
            }
            if consent_changed {
                patients::insert_consent_events(
                    conn,
                    &[NewConsentEvent {
                        patient_id: id,
                        email_consent: valid.email_consent,
                        source: "lead",
                        at: now,
                    }],
                )?;
            }
            patients::update(
                conn,
                id,
                &PatientChanges {
                    name: valid.name,
                    email: valid.email.to_string(),
                    timezone: valid.timezone,
                    email_consent: valid.email_consent,
                    consent_changed_at: if consent_changed {
                        Some(now)
                    } else {
                        row.consent_changed_at
                    },
                    status: status.as_str().into(),
                    updated_at: now,
                },
            )?;
            audit::record(
                conn,
                patient_audit(&actor, "update", id, row.program_id, changed),
            )?;
            let row = patients::find(conn, id)?;
            patient_document(conn, row, true)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(document))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DosingRequest {
    dosed_at: String,
    #[serde(default)]
    modality: Option<String>,
}

/// A dosing after its checks: when, with which offset, and what.
pub struct ValidDosing {
    pub dosed_at: DateTime<FixedOffset>,
    pub modality: Modality,
}

/// Parses and checks a dosing against the program's modality and the clock.
pub fn validate_dosing(
    dosed_at: &str,
    modality: Option<&str>,
    program_modality: Modality,
    now: DateTime<Utc>,
) -> Result<ValidDosing, FieldErrors> {
    let mut errors = FieldErrors::new();
    let when = DateTime::parse_from_rfc3339(dosed_at.trim())
        .map_err(|_| {
            errors.insert(
                "dosed_at".into(),
                "must be an RFC 3339 time with offset, e.g. 2026-11-20T10:00:00-08:00".into(),
            )
        })
        .ok();
    if let Some(when) = when {
        if when.with_timezone(&Utc) > now + chrono::Duration::minutes(CLOCK_SKEW_MINUTES) {
            errors.insert("dosed_at".into(), "must not be in the future".into());
        }
    }
    let modality = match modality.map(str::trim).filter(|m| !m.is_empty()) {
        None if program_modality == Modality::Mixed => {
            errors.insert(
                "modality".into(),
                "is required in a mixed program (psilocybin, ketamine or mdma)".into(),
            );
            None
        }
        None => Some(program_modality),
        Some(text) => match text.parse::<Modality>() {
            Ok(Modality::Mixed) => {
                errors.insert(
                    "modality".into(),
                    "must be the substance given: psilocybin, ketamine or mdma".into(),
                );
                None
            }
            Ok(given) if program_modality != Modality::Mixed && given != program_modality => {
                errors.insert(
                    "modality".into(),
                    format!("must match the program's modality ({program_modality})"),
                );
                None
            }
            Ok(given) => Some(given),
            Err(e) => {
                errors.insert("modality".into(), e);
                None
            }
        },
    };
    match (when, modality) {
        (Some(dosed_at), Some(modality)) if errors.is_empty() => {
            Ok(ValidDosing { dosed_at, modality })
        }
        _ => Err(errors),
    }
}

impl ValidDosing {
    pub fn row(&self, patient_id: i64, now: NaiveDateTime) -> NewDosing {
        NewDosing {
            patient_id,
            dosed_at: self.dosed_at.with_timezone(&Utc).naive_utc(),
            utc_offset_minutes: self.dosed_at.offset().local_minus_utc() / 60,
            modality: self.modality.as_str().into(),
            created_at: now,
        }
    }
}

pub fn program_modality(row: &program::ProgramRow) -> AppResult<Modality> {
    row.modality
        .parse()
        .map_err(|e: String| anyhow::anyhow!("program {} modality: {e}", row.id).into())
}

async fn add_dosing(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
    body: Json<DosingRequest>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let request = body.0;
    let document = db(&state, move |conn| {
        write_transaction(conn, |conn| {
            let row = patient_for_lead(conn, &actor, id)?;
            let program_row = program::find(conn, row.program_id)?;
            let dosing = validate_dosing(
                &request.dosed_at,
                request.modality.as_deref(),
                program_modality(&program_row)?,
                Utc::now(),
            )
            .map_err(AppError::Validation)?;
            let current: PatientStatus = row
                .status
                .parse()
                .map_err(|e: String| anyhow::anyhow!("stored patient status: {e}"))?;
            let next = current.after_dosing().map_err(refused)?;
            let now = database::now();
            let dosing_id = patients::insert_dosing(conn, &dosing.row(id, now))?;
            patients::set_status(conn, &[id], next.as_str(), now)?;
            audit::record(
                conn,
                AuditEvent {
                    actor_user_id: Some(actor.id),
                    action: "record_dosing",
                    entity: "patient",
                    entity_id: id,
                    program_id: Some(row.program_id),
                    changed_fields: vec!["dosings".into(), "status".into()],
                    detail: Some(format!("dosing {dosing_id}")),
                },
            )?;
            let row = patients::find(conn, id)?;
            patient_document(conn, row, true)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(document))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExclusionRequest {
    #[serde(default)]
    patient_id: Option<i64>,
    #[serde(default)]
    facilitator_id: Option<i64>,
    #[serde(default)]
    note: Option<String>,
}

async fn add_exclusion(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
    body: Json<ExclusionRequest>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let request = body.0;
    let note = crate::types::optional_note(request.note.as_deref(), 1000)
        .map_err(|e| AppError::field("note", e))?;
    let view = db(&state, move |conn| {
        write_transaction(conn, |conn| {
            let row = patient_for_lead(conn, &actor, id)?;
            let (other_patient_id, facilitator_id) =
                match (request.patient_id, request.facilitator_id) {
                    (Some(other), None) => {
                        if other == id {
                            return Err(AppError::field(
                                "patient_id",
                                "a patient cannot be excluded from themself",
                            ));
                        }
                        let other_row =
                            patients::find(conn, other).map_err(|error| match error {
                                diesel::result::Error::NotFound => {
                                    AppError::field("patient_id", "no such patient")
                                }
                                other => other.into(),
                            })?;
                        if other_row.program_id != row.program_id {
                            return Err(AppError::field(
                                "patient_id",
                                "must be a patient of the same program",
                            ));
                        }
                        (Some(other), None)
                    }
                    (None, Some(facilitator_id)) => {
                        if !facilitator::exists(conn, facilitator_id)? {
                            return Err(AppError::field("facilitator_id", "no such facilitator"));
                        }
                        (None, Some(facilitator_id))
                    }
                    _ => {
                        return Err(AppError::field(
                            "patient_id",
                            "give exactly one of patient_id or facilitator_id",
                        ))
                    }
                };
            // A pair is stored once, lower id first, which makes it symmetric by construction.
            let (owner, other) = match other_patient_id {
                Some(other) if other < id => (other, Some(id)),
                other => (id, other),
            };
            let exclusion_id = patients::insert_exclusion(
                conn,
                &NewExclusion {
                    program_id: row.program_id,
                    patient_id: owner,
                    other_patient_id: other,
                    facilitator_id,
                    note,
                    created_at: database::now(),
                },
            )
            .map_err(|error| match AppError::from(error) {
                AppError::Conflict { .. } => AppError::conflict("this exclusion already exists"),
                other => other,
            })?;
            audit::record(
                conn,
                AuditEvent {
                    actor_user_id: Some(actor.id),
                    action: "add_exclusion",
                    entity: "patient",
                    entity_id: id,
                    program_id: Some(row.program_id),
                    changed_fields: vec!["exclusions".into()],
                    detail: Some(format!("exclusion {exclusion_id}")),
                },
            )?;
            let stored = patients::exclusions_of(conn, id)?
                .into_iter()
                .find(|e| e.id == exclusion_id)
                .ok_or_else(|| anyhow::anyhow!("exclusion {exclusion_id} vanished"))?;
            Ok(exclusion_view(&stored, id, true))
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

async fn list_exclusions(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let views = db(&state, move |conn| {
        patient_for_lead(conn, &actor, id)?;
        Ok(patients::exclusions_of(conn, id)?
            .iter()
            .map(|row| exclusion_view(row, id, true))
            .collect::<Vec<_>>())
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "exclusions": views })))
}

async fn delete_exclusion(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<(i64, i64)>,
) -> AppResult<HttpResponse> {
    let (id, exclusion_id) = path.into_inner();
    db(&state, move |conn| {
        write_transaction(conn, |conn| {
            let row = patient_for_lead(conn, &actor, id)?;
            let owned = patients::exclusions_of(conn, id)?
                .iter()
                .any(|e| e.id == exclusion_id);
            if !owned {
                return Err(AppError::NotFound);
            }
            patients::delete_exclusion(conn, exclusion_id)?;
            audit::record(
                conn,
                AuditEvent {
                    actor_user_id: Some(actor.id),
                    action: "remove_exclusion",
                    entity: "patient",
                    entity_id: id,
                    program_id: Some(row.program_id),
                    changed_fields: vec!["exclusions".into()],
                    detail: Some(format!("exclusion {exclusion_id}")),
                },
            )?;
            Ok(())
        })
    })
    .await?;
    Ok(HttpResponse::NoContent().finish())
}
