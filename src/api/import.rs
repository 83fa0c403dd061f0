//! CSV import of patients: every row or none.

use crate::db::audit::{self, AuditEvent};
use crate::db::models::patient::{self as patients, NewConsentEvent, NewPatient};
use crate::db::models::program;
use crate::db::{self as database, write_transaction};
use crate::domain::patient::PatientStatus;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::service::patients::{program_modality, validate_dosing, PatientInput};
use crate::web::CurrentUser;
use crate::web::{db, AppState};
use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::json;
use std::collections::HashMap;

/// Ten thousand rows are well under this.
const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;
const COLUMNS: [&str; 5] = ["name", "email", "timezone", "email_consent", "dosed_at"];

struct ImportRow {
    line: u64,
    patient: crate::service::patients::ValidPatient,
    dosing: Option<crate::service::patients::ValidDosing>,
}

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/programs/{id}/patients/import",
        web::post().to(import_patients),
    );
}

async fn import_patients(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
    req: HttpRequest,
    payload: web::Payload,
) -> AppResult<HttpResponse> {
    let program_id = path.into_inner();
    let body =
        crate::web::json::read_body(&req, &mut payload.into_inner(), MAX_IMPORT_BYTES).await?;
    let imported = db(&state, move |conn| {
        let program_row = program::find(conn, program_id)?;
        actor.require_lead_of(program_id)?;
        let modality = program_modality(&program_row)?;
        let rows = parse_csv(&body, modality)?;
        write_transaction(conn, |conn| {
            let emails: Vec<String> = rows.iter().map(|r| r.patient.email.to_string()).collect();
            let taken = patients::existing_emails(conn, program_id, &emails)?;
            if !taken.is_empty() {
                let lines = rows
                    .iter()
                    .filter(|r| taken.contains(&r.patient.email.to_string()))
                    .map(|r| json!({"line": r.line, "message": "email: already a patient of this program"}))
                    .collect();
                return Err(invalid_lines(lines));
            }
            let now = database::now();
            let new_rows: Vec<NewPatient> = rows
                .iter()
                .map(|r| NewPatient {
                    program_id,
                    name: r.patient.name.clone(),
                    email: r.patient.email.to_string(),
                    timezone: r.patient.timezone.clone(),
                    email_consent: r.patient.email_consent,
                    consent_changed_at: Some(now),
                    status: if r.dosing.is_some() {
                        PatientStatus::AwaitingCohort
                    } else {
                        PatientStatus::AwaitingDosing
                    }
                    .as_str()
                    .into(),
                    created_at: now,
                    updated_at: now,
                })
                .collect();
            patients::insert_many(conn, &new_rows)?;
            let ids: HashMap<String, i64> = patients::ids_by_email(conn, program_id, &emails)?
                .into_iter()
                .map(|(id, email)| (email, id))
                .collect();
            let id_of = |row: &ImportRow| {
                ids.get(row.patient.email.as_str())
                    .copied()
                    .ok_or_else(|| anyhow::anyhow!("imported patient on line {} vanished", row.line))
            };
            let mut consent = Vec::with_capacity(rows.len());
            let mut dosings = Vec::new();
            let mut events = Vec::with_capacity(rows.len());
            let mut patient_ids = Vec::with_capacity(rows.len());
            for row in &rows {
                let id = id_of(row)?;
                patient_ids.push(id);
                consent.push(NewConsentEvent {
                    patient_id: id,
                    email_consent: row.patient.email_consent,
                    source: "import",
                    at: now,
                });
                if let Some(dosing) = &row.dosing {
                    dosings.push(dosing.row(id, now));
                }
                events.push(AuditEvent {
                    actor_user_id: Some(actor.id),
                    action: "import",
                    entity: "patient",
                    entity_id: id,
                    program_id: Some(program_id),
                    changed_fields: COLUMNS.map(String::from).to_vec(),
                    detail: None,
                });
            }
            patients::insert_consent_events(conn, &consent)?;
            patients::insert_dosings(conn, &dosings)?;
            audit::record_many(conn, events)?;
            Ok(patient_ids)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(json!({
        "imported": imported.len(),
        "patient_ids": imported,
    })))
}

fn invalid_lines(lines: Vec<serde_json::Value>) -> AppError {
    AppError::InvalidLines {
        message: format!("{} line(s) have errors; nothing was imported", lines.len()),
        lines,
    }
}

/// Parses and checks every row; any problem anywhere refuses the whole file.
fn parse_csv(body: &[u8], modality: crate::domain::Modality) -> AppResult<Vec<ImportRow>> {
    let body = body.strip_prefix("\u{feff}".as_bytes()).unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .from_reader(body);
    let header: Vec<String> = reader
        .headers()
        .map_err(|error| {
            invalid_lines(vec![
                json!({"line": 1, "message": format!("unreadable header: {error}")}),
            ])
        })?
        .iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let with_modality = header.len() == 6 && header[5] == "modality";
    if header[..header.len().min(5)] != COLUMNS || !(header.len() == 5 || with_modality) {
        return Err(invalid_lines(vec![json!({
            "line": 1,
            "message": format!("header must be {} (optionally followed by modality)", COLUMNS.join(",")),
        })]));
    }

    let now = Utc::now();
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    let mut first_line_of_email: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(record) => record,
            Err(error) => {
                let line = error.position().map_or(0, |p| p.line());
                errors.push(json!({"line": line, "message": format!("unreadable row: {error}")}));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let field = |index: usize| record.get(index).unwrap_or("").to_string();
        let mut problems = FieldErrors::new();
        let consent =
            parse_consent(&field(3)).map_err(|e| problems.insert("email_consent".into(), e));
        let patient = PatientInput {
            name: field(0),
            email: field(1),
            timezone: Some(field(2)),
            email_consent: consent.unwrap_or(false),
        }
        .validate()
        .map_err(|e| problems.extend(e))
        .ok();
        let dosed_at = field(4);
        let dosing = if dosed_at.is_empty() {
            None
        } else {
            let given_modality = with_modality.then(|| field(5));
            validate_dosing(&dosed_at, given_modality.as_deref(), modality, now)
                .map_err(|e| problems.extend(e))
                .ok()
        };
        if let Some(patient) = &patient {
            if let Some(first) = first_line_of_email.get(patient.email.as_str()) {
                problems.insert("email".into(), format!("same email as line {first}"));
            } else {
                first_line_of_email.insert(patient.email.to_string(), line);
            }
        }
        match patient {
            Some(patient) if problems.is_empty() => rows.push(ImportRow {
                line,
                patient,
                dosing,
            }),
            _ => {
                let message = problems
                    .iter()
                    .map(|(field, problem)| format!("{field}: {problem}"))
                    .collect::<Vec<_>>()
                    .join("; ");
                errors.push(json!({"line": line, "message": message}));
            }
        }
    }
    if !errors.is_empty() {
        return Err(invalid_lines(errors));
    }
    if rows.is_empty() {
        return Err(invalid_lines(vec![
            json!({"line": 2, "message": "the file has no patient rows"}),
        ]));
    }
    Ok(rows)
}

fn parse_consent(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "y" | "1" => Ok(true),
        "false" | "no" | "n" | "0" => Ok(false),
        other => Err(format!("must be true or false (got {other:?})")),
    }
}
