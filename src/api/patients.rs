//! The registry a program lead keeps: patients, consent, dosings and exclusions.

use crate::db::audit::{self, AuditEvent};
use crate::db::models::patient::{
    self as patients, NewConsentEvent, NewExclusion, NewPatient, PatientChanges,
};
use crate::db::models::user::Role;
use crate::db::models::{facilitator, program};
use crate::db::{self as database, write_transaction};
use crate::domain::patient::PatientStatus;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::service::patch::merged;
use crate::service::patients::*;
use crate::web::CurrentUser;
use crate::web::{db, write, AppState, Json};
use actix_web::{web, HttpResponse};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/programs/{id}/patients", web::post().to(create))
        .route("/programs/{id}/patients", web::get().to(list))
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
    let document = write(&state, move |conn| {
        let row = patient_for_lead(conn, &actor, id)?;
        let before = serde_json::to_value(PatientDocument {
            name: row.name.clone(),
            email: row.email.clone(),
            timezone: row.timezone.clone(),
            email_consent: row.email_consent,
            status: row.status.clone(),
        })
        .map_err(|error| anyhow::anyhow!("serialising a patient: {error}"))?;
        let (merged, changed): (PatientDocument, _) = merged(&before, &patch)?;
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

async fn add_dosing(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
    body: Json<DosingRequest>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let request = body.0;
    let document = write(&state, move |conn| {
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
    let view = write(&state, move |conn| {
        let row = patient_for_lead(conn, &actor, id)?;
        let (other_patient_id, facilitator_id) = match (request.patient_id, request.facilitator_id)
        {
            (Some(other), None) => {
                if other == id {
                    return Err(AppError::field(
                        "patient_id",
                        "a patient cannot be excluded from themself",
                    ));
                }
                let other_row = patients::find(conn, other).map_err(|error| match error {
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
                // Only facilitators serving the patient's program; any other reads as
                // absent, so an id says nothing about another program's pool.
                if !facilitator::programs_of_one(conn, facilitator_id)?.contains(&row.program_id) {
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
