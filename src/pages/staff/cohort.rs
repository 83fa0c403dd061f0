//! The cohort page (members, team and gaps, sessions, attendance heat-map) and the
//! one-screen attendance form. Facilitators reach only their own cohorts.

use super::render::redirect;
use super::session::Staff;
use super::{page, PageResult};
use crate::db::models::program;
use crate::domain::attendance::AttendanceStatus;
use crate::domain::status::{MemberStatus, SessionStatus};
use crate::error::{AppError, FieldErrors};
use crate::service::attendance::{
    self as attendance_service, attendance_document, session_for_staff, AttendanceRequest,
    RecordInput,
};
use crate::service::cohorts::{self as cohorts_service, program_context};
use crate::web::{db, AppState};
use actix_web::web;
use serde::Deserialize;
use serde_json::{json, Value};

fn mark_label(status: AttendanceStatus) -> &'static str {
    match status {
        AttendanceStatus::Present => "Present",
        AttendanceStatus::Late => "Late",
        AttendanceStatus::LeftEarly => "Left early",
        AttendanceStatus::Absent => "Absent",
        AttendanceStatus::Excused => "Excused",
    }
}

fn session_label(status: SessionStatus) -> &'static str {
    match status {
        SessionStatus::Scheduled => "Scheduled",
        SessionStatus::Held => "Held",
        SessionStatus::Cancelled => "Cancelled",
        SessionStatus::DidNotTakePlace => "Did not take place",
    }
}

fn mark_letter(status: AttendanceStatus) -> &'static str {
    match status {
        AttendanceStatus::Present => "P",
        AttendanceStatus::Late => "L",
        AttendanceStatus::LeftEarly => "E",
        AttendanceStatus::Absent => "A",
        AttendanceStatus::Excused => "X",
    }
}

#[derive(Deserialize)]
pub struct CohortQuery {
    saved: Option<i64>,
}

pub async fn cohort_page(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    query: web::Query<CohortQuery>,
) -> PageResult {
    let cohort_id = path.into_inner();
    let actor = staff.user.clone();
    let (view, program_name, tz) = db(&state, move |conn| {
        let view = cohorts_service::get(conn, &actor, crate::domain::ids::CohortId(cohort_id))?;
        let program = program_context(conn, crate::domain::ids::ProgramId(view.program_id))?;
        let name = program::find(conn, view.program_id)?.name;
        Ok((view, name, program.tz))
    })
    .await?;
    let actor = staff.user.clone();
    let matrix = db(&state, move |conn| {
        attendance_service::cohort_matrix(conn, &actor, crate::domain::ids::CohortId(cohort_id))
    })
    .await?;
    let now = chrono::Utc::now();
    let counted = |session_id: i64| matrix.sessions.iter().find(|s| s.id == session_id);
    let session_rows: Vec<Value> = view
        .sessions
        .iter()
        .map(|s| {
            let recorded = counted(s.id).filter(|m| !m.counts.is_empty());
            json!({
                "id": s.id, "seq": s.seq, "when": s.local_start,
                "status": s.status, "status_label": session_label(s.status),
                "attended": recorded.map_or(json!("–"), |m| json!(m.attended())),
                "recorded": recorded.is_some(),
                "can_record": s.starts_at <= now
                    && matches!(s.status, SessionStatus::Scheduled | SessionStatus::Held),
            })
        })
        .collect();
    let heat_sessions: Vec<Value> = matrix
        .sessions
        .iter()
        .map(|s| {
            let date = s
                .starts_at
                .with_timezone(&tz)
                .format("%Y-%m-%d")
                .to_string();
            json!({"seq": s.seq, "date": date})
        })
        .collect();
    let heat_rows: Vec<Value> = matrix
        .members
        .iter()
        .map(|m| {
            let cells: Vec<Value> = m
                .marks
                .iter()
                .zip(&matrix.sessions)
                .map(|(mark, session)| match mark {
                    Some(status) => json!({"class": status, "text": mark_letter(*status),
                        "label": format!("session {}: {}", session.seq, mark_label(*status))}),
                    None if session.starts_at <= now && session.status == SessionStatus::Held => {
                        json!({"class": "missing", "text": "?", "label": format!("session {}: not recorded", session.seq)})
                    }
                    None => json!({"class": "none", "text": "", "label": format!("session {}: no record", session.seq)}),
                })
                .collect();
            json!({
                "name": m.name, "cells": cells,
                "rate": super::charts::percent(m.rate),
                "flags": m.flags.iter().map(|f| f.as_str().replace('_', " ")).collect::<Vec<_>>(),
            })
        })
        .collect();
    let members: Vec<Value> = view
        .members
        .iter()
        .map(|m| json!({"name": m.name, "withdrawn": m.status != MemberStatus::Active}))
        .collect();
    let active = view
        .members
        .iter()
        .filter(|m| m.status == MemberStatus::Active)
        .count();
    let notice = query.saved.and_then(|saved| {
        view.sessions
            .iter()
            .find(|s| s.id == saved)
            .map(|s| format!("Attendance saved for session {}.", s.seq))
    });
    let context = json!({
        "notice": notice,
        "cohort": {
            "id": view.id, "status": view.status, "kind": view.kind,
            "modality": view.modality, "program_name": program_name,
            "venue": view.venue, "join_url": view.join_url,
        },
        "members": members,
        "active_members": active,
        "team": view.facilitators.iter()
            .map(|f| json!({"name": f.name, "role": f.role.as_str().replace('_', "-")}))
            .collect::<Vec<_>>(),
        "gaps": view.staffing.gaps,
        "override_reason": view.staffing.override_reason,
        "sessions": session_rows,
        "heat": {"sessions": heat_sessions, "rows": heat_rows},
    });
    page(
        &staff,
        "staff/cohort",
        &format!("Cohort #{cohort_id}"),
        context,
    )
}

pub async fn attendance_form(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
) -> PageResult {
    let session_id = path.into_inner();
    let actor = staff.user.clone();
    let (document, session, tz) = db(&state, move |conn| {
        let (session, cohort) =
            session_for_staff(conn, &actor, crate::domain::ids::SessionId(session_id))?;
        let program = program_context(conn, crate::domain::ids::ProgramId(cohort.program_id))?;
        Ok((
            attendance_document(conn, session_id, &cohort)?,
            session,
            program.tz,
        ))
    })
    .await?;
    let now = crate::db::now();
    let blocked = if session.starts_at > now {
        Some("Attendance can be taken once the session has started.")
    } else if matches!(
        session.status,
        SessionStatus::Cancelled | SessionStatus::DidNotTakePlace
    ) {
        Some("This session did not take place, so it has no attendance.")
    } else {
        None
    };
    let mut needs_reason = false;
    let members: Vec<Value> = document
        .records
        .iter()
        .map(|m| {
            let old = m
                .recorded_at
                .is_some_and(|t| t.naive_utc() + chrono::Duration::hours(48) < now);
            needs_reason |= old;
            json!({
                "patient_id": m.patient_id,
                "name": m.name,
                "note": m.note.as_deref().unwrap_or(""),
                "choices": AttendanceStatus::ALL.iter().map(|s| json!({
                    "value": s.as_str(), "label": mark_label(*s),
                    "checked": m.status == Some(*s),
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let when = session
        .starts_at
        .and_utc()
        .with_timezone(&tz)
        .format("%a %Y-%m-%d %H:%M %Z")
        .to_string();
    let context = json!({
        "cohort_id": session.cohort_id,
        "session": {"id": session.id, "seq": session.seq, "when": when},
        "blocked": blocked,
        "members": members,
        "needs_reason": needs_reason,
    });
    page(&staff, "staff/attendance", "Attendance", context)
}

/// The form as posted: `csrf`, `status_<patient>`, `note_<patient>`, `amend_reason`.
fn attendance_request(fields: &[(String, String)]) -> Result<AttendanceRequest, AppError> {
    let mut errors = FieldErrors::new();
    let mut records: Vec<RecordInput> = Vec::new();
    let mut amend_reason = None;
    for (name, value) in fields {
        if let Some(id) = name.strip_prefix("status_") {
            match id.parse::<i64>() {
                Ok(patient_id) => records.push(RecordInput {
                    patient_id,
                    status: value.clone(),
                    note: None,
                }),
                Err(_) => {
                    errors.insert(name.clone(), "is not a member".into());
                }
            }
        } else if name == "amend_reason" {
            amend_reason = Some(value.clone()).filter(|v| !v.trim().is_empty());
        }
    }
    for record in &mut records {
        let key = format!("note_{}", record.patient_id);
        record.note = fields
            .iter()
            .find(|(name, _)| *name == key)
            .map(|(_, value)| value.clone())
            .filter(|v| !v.trim().is_empty());
    }
    if records.is_empty() && errors.is_empty() {
        errors.insert(
            "records".into(),
            "choose a status for at least one member".into(),
        );
    }
    AppError::check(errors)?;
    Ok(AttendanceRequest {
        records,
        amend_reason,
    })
}

pub async fn save_attendance(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    form: web::Form<Vec<(String, String)>>,
) -> PageResult {
    let fields = form.into_inner();
    let csrf = fields
        .iter()
        .find(|(name, _)| name == "csrf")
        .map(|(_, value)| value.as_str())
        .unwrap_or("");
    staff.check_csrf(&state.secret_key, csrf)?;
    let session_id = path.into_inner();
    let request = attendance_request(&fields)?;
    let actor = staff.user.clone();
    let view = db(&state, move |conn| {
        attendance_service::record(
            conn,
            &actor,
            crate::domain::ids::SessionId(session_id),
            &request,
        )
    })
    .await?;
    let cohort_id = view.session.cohort_id;
    Ok(redirect(&format!(
        "/staff/cohorts/{cohort_id}?saved={session_id}"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
        items
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn the_form_becomes_one_request_with_notes_kept() {
        let request = attendance_request(&pairs(&[
            ("csrf", "x"),
            ("status_3", "present"),
            ("note_3", "arrived early"),
            ("status_4", "absent"),
            ("note_4", " "),
            ("amend_reason", ""),
        ]))
        .expect("valid");
        assert_eq!(request.records.len(), 2);
        assert_eq!(request.records[0].note.as_deref(), Some("arrived early"));
        assert_eq!(request.records[1].note, None);
        assert_eq!(request.amend_reason, None);
    }

    #[test]
    fn an_empty_form_names_the_problem() {
        let Err(error) = attendance_request(&pairs(&[("csrf", "x")])) else {
            panic!("an empty form is refused");
        };
        assert!(matches!(error, AppError::Validation(fields) if fields.contains_key("records")));
        let Err(error) = attendance_request(&pairs(&[("status_x", "present")])) else {
            panic!("a bad member id is refused");
        };
        assert!(matches!(error, AppError::Validation(fields) if fields.contains_key("status_x")));
    }
}
