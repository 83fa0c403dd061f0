//! The registry a program lead keeps: patients, their consent and dosings, and who may
//! read them.

use crate::db::audit::AuditEvent;
use crate::db::models::patient::{self as patients, NewDosing, PatientRow};
use crate::db::models::program;
use crate::db::DbConnection;
use crate::domain::patient::TransitionRefused;
use crate::domain::program::parse_timezone;
use crate::domain::Modality;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::service::auth::Actor;
use crate::types::{required_text, EmailAddress};
use chrono::{DateTime, FixedOffset, NaiveDateTime, Offset, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// How far in the future a dosing time may lie, for clocks that disagree a little.
const CLOCK_SKEW_MINUTES: i64 = 5;

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

pub fn with_offset(utc: NaiveDateTime, offset_minutes: i32) -> DateTime<FixedOffset> {
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
    pub fn new(row: PatientRow, latest_dosing: Option<DosingView>) -> Self {
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
pub fn patient_document(
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
pub fn exclusion_view(row: &patients::ExclusionRow, patient_id: i64, show_note: bool) -> Value {
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
pub fn patient_for_lead(conn: &mut DbConnection, actor: &Actor, id: i64) -> AppResult<PatientRow> {
    let row = patients::find(conn, id)?;
    actor.require_lead_of(row.program_id)?;
    Ok(row)
}

/// Loads a patient for anyone allowed to read it: a lead of its program, or a
/// facilitator of a cohort the patient is or was in.
pub fn patient_for_reader(
    conn: &mut DbConnection,
    actor: &Actor,
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

pub fn patient_audit(
    actor: &Actor,
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
