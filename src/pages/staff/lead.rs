//! A program lead's pages: dashboard, formation preview and commit, attendance report,
//! facilitator workload.

use super::charts::{self, BarInput, TimelineInput};
use super::failed_mail::failed_mail;
use super::render::PageError;
use super::session::Staff;
use super::{page, CsrfForm, PageResult};
use crate::db::models::attendance as records;
use crate::db::models::cohort as cohorts;
use crate::db::models::facilitator as facilitators;
use crate::db::models::patient as patients;
use crate::db::models::program;
use crate::db::write_transaction;
use crate::domain::attendance::attendance_rate;
use crate::domain::status::{CohortStatus, FollowUpKind, FollowUpStatus, SessionStatus};
use crate::service::attendance::{
    self as attendance_service, cohort_summary, parse_date, report_bounds, report_csv as csv_of,
    CohortSummary,
};
use crate::service::cohorts::program_context;
use crate::service::formation::{self, Mode};
use crate::service::ProgramContext;
use crate::web::{db, AppState};
use actix_web::http::header;
use actix_web::{web, HttpResponse};
use chrono::{NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap};

/// Days before max_wait at which a waiting patient is flagged as near it.
const NEAR_MAX_WAIT_DAYS: i64 = 7;
/// Cohorts listed per status on the dashboard (the rest are counted).
const COHORTS_PER_STATUS: usize = 25;

pub fn names_of(
    conn: &mut crate::db::DbConnection,
    ids: &[i64],
) -> crate::error::AppResult<HashMap<i64, String>> {
    let mut names = HashMap::new();
    for chunk in ids.chunks(500) {
        for row in patients::find_many(conn, chunk)? {
            names.insert(row.id, row.name);
        }
    }
    Ok(names)
}

fn local(program: &ProgramContext, at: NaiveDateTime) -> String {
    at.and_utc()
        .with_timezone(&program.tz)
        .format("%a %Y-%m-%d %H:%M")
        .to_string()
}

pub fn follow_up_why(row: &records::FollowUpRow) -> String {
    match row.kind {
        FollowUpKind::AtRisk => format!("At risk: {} absences in a row", row.consecutive_absences),
        FollowUpKind::Outreach => format!("{} absences in a row", row.consecutive_absences),
    }
}

#[derive(Deserialize)]
pub struct DashboardQuery {
    formed: Option<String>,
}

pub async fn dashboard(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    query: web::Query<DashboardQuery>,
) -> PageResult {
    let program_id = path.into_inner();
    let actor = staff.user.clone();
    let formed: Vec<i64> = query
        .formed
        .as_deref()
        .unwrap_or("")
        .split(',')
        .filter_map(|id| id.trim().parse().ok())
        .collect();
    let context = db(&state, move |conn| {
        let row = program::find(conn, program_id)?;
        actor.require_lead_of(program_id)?;
        let program = ProgramContext::try_from(&row)?;
        let now = crate::db::now();
        let today = program.today(Utc::now());
        let max_wait = i64::from(program.rules.cohort.max_wait_days);

        let waiting = cohorts::waitlist(conn, program_id)?;
        let names = names_of(conn, &waiting.iter().map(|w| w.0).collect::<Vec<_>>())?;
        let mut waitlist: Vec<(i64, Value)> = waiting
            .iter()
            .map(|(id, dosed_at, _)| {
                let dosed_on = program.local_date(*dosed_at);
                let days = (today - dosed_on).num_days();
                let (state, label) = if days >= max_wait {
                    ("over", "past max wait")
                } else if days >= max_wait - NEAR_MAX_WAIT_DAYS {
                    ("near", "near max wait")
                } else {
                    ("ok", "within")
                };
                (
                    -days,
                    json!({"patient_id": id, "name": names.get(id).cloned().unwrap_or_default(),
                           "dosed_on": dosed_on.to_string(), "days_waiting": days,
                           "state": state, "state_label": label}),
                )
            })
            .collect();
        waitlist.sort_by_key(|(key, _)| *key);

        let mut rows = cohorts::list(conn, Some(program_id), None, None)?;
        let statuses = crate::service::cohorts::statuses_as_of(conn, &rows, now)?;
        for row in &mut rows {
            row.status = statuses.get(&row.id).copied().unwrap_or(row.status);
        }
        let mut by_status: BTreeMap<usize, Vec<&cohorts::CohortRow>> = BTreeMap::new();
        for row in &rows {
            let rank = CohortStatus::ALL
                .iter()
                .position(|s| *s == row.status)
                .unwrap_or(CohortStatus::ALL.len());
            by_status.entry(rank).or_default().push(row);
        }
        let mut status_groups = Vec::new();
        for (rank, group) in by_status {
            let shown: Vec<&cohorts::CohortRow> =
                group.iter().rev().take(COHORTS_PER_STATUS).copied().collect();
            let ids: Vec<i64> = shown.iter().map(|c| c.id).collect();
            let mut members: HashMap<i64, usize> = HashMap::new();
            for (cohort_id, _) in cohorts::active_members_of(conn, &ids)? {
                *members.entry(cohort_id).or_default() += 1;
            }
            let mut firsts: HashMap<i64, NaiveDateTime> = HashMap::new();
            for s in cohorts::sessions_of(conn, &ids)? {
                if s.status != SessionStatus::Cancelled {
                    firsts.entry(s.cohort_id).or_insert(s.starts_at);
                }
            }
            let list: Vec<Value> = shown
                .iter()
                .map(|c| {
                    let gaps: Vec<String> = serde_json::from_str(&c.staffing_gaps).unwrap_or_default();
                    json!({"id": c.id, "kind": c.kind.as_str().replace('_', " "),
                           "members": members.get(&c.id).copied().unwrap_or(0),
                           "first_session": firsts.get(&c.id).map(|at| local(&program, *at)).unwrap_or_default(),
                           "gaps": gaps.len()})
                })
                .collect();
            let status = group.first().map(|c| c.status.as_str()).unwrap_or_default();
            status_groups.push(json!({
                "status": status,
                "label": CohortStatus::ALL.get(rank).map_or(status, |s| s.as_str()).replace('_', " "),
                "count": group.len(),
                "cohorts": list,
                "more": group.len().saturating_sub(COHORTS_PER_STATUS),
            }));
        }

        let open = records::list(conn, Some(FollowUpStatus::Open), Some(&[program_id]), None)?;
        let fu_names = names_of(conn, &open.iter().map(|f| f.patient_id).collect::<Vec<_>>())?;
        let follow_ups: Vec<Value> = open
            .iter()
            .map(|f| {
                json!({"id": f.id, "cohort_id": f.cohort_id,
                       "patient": fu_names.get(&f.patient_id).cloned().unwrap_or_default(),
                       "why": follow_up_why(f), "opened": local(&program, f.opened_at),
                       "overdue": f.escalated_at.is_some()})
            })
            .collect();
        let failed = failed_mail(conn, program_id)?;
        Ok(json!({
            "program": {"id": row.id, "name": row.name, "site": row.site,
                        "modality": row.modality, "timezone": row.timezone},
            "formed": formed,
            "max_wait_days": max_wait,
            "waitlist": waitlist.into_iter().map(|(_, v)| v).collect::<Vec<_>>(),
            "status_groups": status_groups,
            "follow_ups": follow_ups,
            "failed_mail": failed,
        }))
    })
    .await?;
    let title = context["program"]["name"]
        .as_str()
        .unwrap_or("Program")
        .to_string();
    page(&staff, "staff/dashboard", &title, context)
}

pub async fn formation_preview(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
) -> PageResult {
    let program_id = path.into_inner();
    let actor = staff.user.clone();
    let context = db(&state, move |conn| {
        let row = program::find(conn, program_id)?;
        actor.require_lead_of(program_id)?;
        let program = program_context(conn, crate::domain::ids::ProgramId(program_id))?;
        let now = Utc::now();
        let outcome = formation::form(conn, &program, now, Mode::DryRun)?;
        let mut ids: Vec<i64> = outcome.cohorts.iter().flat_map(|c| c.members.clone()).collect();
        ids.extend(outcome.joined.iter().map(|j| j.patient_id));
        ids.extend(outcome.waiting.iter().map(|w| w.patient_id));
        let names = names_of(conn, &ids)?;
        let name = |id: &i64| names.get(id).cloned().unwrap_or_else(|| format!("patient {id}"));
        let staff_names: HashMap<i64, String> = facilitators::list(conn, None, Some(&[program_id]))?
            .into_iter()
            .map(|f| (f.id, f.name))
            .collect();
        let planned: Vec<Value> = outcome
            .cohorts
            .iter()
            .enumerate()
            .map(|(index, c)| {
                json!({
                    "label": format!("New {}", index + 1),
                    "modality": c.modality,
                    "members": c.members.iter().map(name).collect::<Vec<_>>(),
                    "window": format!("{} – {}", c.dosing_window.from, c.dosing_window.to),
                    "first_session": c.first_session_at.with_timezone(&program.tz).format("%a %Y-%m-%d %H:%M").to_string(),
                    "facilitators": c.facilitators.iter().map(|a| format!("{} ({})",
                        staff_names.get(&a.facilitator_id).cloned().unwrap_or_default(),
                        crate::service::staffing::role_name(a.role).replace('_', "-"))).collect::<Vec<_>>(),
                    "gaps": c.staffing.gaps,
                })
            })
            .collect();
        let inputs: Vec<TimelineInput> = outcome
            .cohorts
            .iter()
            .enumerate()
            .map(|(index, c)| TimelineInput {
                label: format!("New {}", index + 1),
                from: c.dosing_window.from,
                to: c.dosing_window.to,
                first: c.first_session_at.with_timezone(&program.tz).date_naive(),
            })
            .collect();
        let timeline = charts::timeline("timeline", &inputs, program.today(now));
        Ok(json!({
            "program": {"id": row.id, "name": row.name, "timezone": row.timezone},
            "cohorts": planned,
            "timeline": timeline,
            "joined": outcome.joined.iter().map(|j| json!({"cohort_id": j.cohort_id, "patient": name(&j.patient_id)})).collect::<Vec<_>>(),
            "waiting": outcome.waiting.iter().map(|w| json!({"patient": name(&w.patient_id),
                "reason": serde_json::to_value(w.reason).ok().and_then(|v| v.as_str().map(|s| s.replace('_', " "))).unwrap_or_default()})).collect::<Vec<_>>(),
            "can_commit": !outcome.cohorts.is_empty() || !outcome.joined.is_empty(),
        }))
    })
    .await?;
    page(&staff, "staff/formation", "Formation preview", context)
}

/// The dashboard's "Retry" on a failed message.
pub async fn retry_mail(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> PageResult {
    staff.check_csrf(&state.secret_key, &form.csrf)?;
    let id = path.into_inner();
    let actor = staff.user.clone();
    let row = db(&state, move |conn| {
        crate::service::mail::retry_failed(conn, &actor, id)
    })
    .await?;
    Ok(super::render::redirect(&format!(
        "/staff/programs/{}?retried={id}",
        row.program_id
    )))
}

pub async fn formation_commit(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    form: web::Form<CsrfForm>,
) -> PageResult {
    staff.check_csrf(&state.secret_key, &form.csrf)?;
    let program_id = path.into_inner();
    let actor = staff.user.clone();
    let outcome = db(&state, move |conn| {
        let program = program_context(conn, crate::domain::ids::ProgramId(program_id))?;
        actor.require_lead_of(program_id)?;
        write_transaction(conn, |conn| {
            cohorts::lock_program(conn, program_id)?;
            formation::form(
                conn,
                &program,
                Utc::now(),
                Mode::Commit {
                    actor: Some(actor.id),
                },
            )
        })
    })
    .await?;
    let mut ids: Vec<i64> = outcome.cohorts.iter().filter_map(|c| c.id).collect();
    ids.extend(outcome.joined.iter().map(|j| j.cohort_id));
    ids.sort_unstable();
    ids.dedup();
    let formed: Vec<String> = ids.iter().map(ToString::to_string).collect();
    Ok(super::render::redirect(&format!(
        "/staff/programs/{program_id}?formed={}",
        formed.join(",")
    )))
}

#[derive(Deserialize)]
pub struct ReportQuery {
    from: Option<String>,
    to: Option<String>,
}

fn report_range(query: &ReportQuery) -> Result<(Option<NaiveDate>, Option<NaiveDate>), PageError> {
    let blank = |t: &Option<String>| t.clone().filter(|t| !t.trim().is_empty());
    let from = parse_date("from", blank(&query.from).as_deref())?;
    let to = parse_date("to", blank(&query.to).as_deref())?;
    Ok((from, to))
}

/// Most cohorts drawn in the per-cohort chart (newest first); the table shows more.
const CHART_COHORTS: usize = 30;
const TABLE_COHORTS: usize = 500;

pub async fn report(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    query: web::Query<ReportQuery>,
) -> PageResult {
    let program_id = path.into_inner();
    let (from, to) = report_range(&query)?;
    let actor = staff.user.clone();
    let members = db(&state, move |conn| {
        attendance_service::report(
            conn,
            &actor,
            crate::domain::ids::ProgramId(program_id),
            from,
            to,
        )
    })
    .await?;
    let summary = cohort_summary(&members);
    let (row, by_seq) = db(&state, move |conn| {
        let row = program::find(conn, program_id)?;
        let program = ProgramContext::try_from(&row)?;
        let (start, end) = report_bounds(program.tz, from, to);
        // Open sides as dates both backends store and compare (SQLite compares text).
        let far = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default().into();
        let start = start.unwrap_or_else(|| far(1900, 1, 1));
        let end = end.unwrap_or_else(|| far(9999, 12, 30));
        let by_seq = super::queries::rates_by_session_number(conn, program_id, start, end)?;
        Ok((row, by_seq))
    })
    .await?;
    let held: i64 = members.iter().map(|m| m.held).sum();
    let attended: i64 = members.iter().map(|m| m.attended).sum();
    let session_bars: Vec<BarInput> = by_seq
        .iter()
        .map(|s| {
            let rate = attendance_rate(s.attended as u32, s.held as u32);
            BarInput {
                label: format!("Session {}", s.seq),
                value: rate.unwrap_or(0.0),
                text: if s.held == 0 {
                    "not held yet".into()
                } else {
                    charts::percent(rate)
                },
                class: if s.held == 0 { "empty" } else { "" },
            }
        })
        .collect();
    let by_session = charts::bar_chart(
        "by-session",
        "Attendance rate by session number",
        "Share of members attending the 1st, 2nd, … session of their cohort, across the program's cohorts.",
        session_bars,
        1.0,
        |v| format!("{:.0}%", v * 100.0),
    );
    let cohort_rate = |c: &CohortSummary| c.attendance_rate;
    let newest: Vec<&CohortSummary> = summary.iter().rev().take(CHART_COHORTS).collect();
    let cohort_bars: Vec<BarInput> = newest
        .iter()
        .map(|c| BarInput {
            label: format!("Cohort #{}", c.cohort_id),
            value: cohort_rate(c).unwrap_or(0.0),
            text: match cohort_rate(c) {
                Some(_) => charts::percent(cohort_rate(c)),
                None => "not started".into(),
            },
            class: if cohort_rate(c).is_some_and(|r| r < 0.75) {
                "low"
            } else {
                ""
            },
        })
        .collect();
    let by_cohort = charts::bar_chart(
        "by-cohort",
        "Attendance rate by cohort",
        &format!(
            "Newest {} of {} cohorts. Bars under 75% are highlighted.",
            newest.len(),
            summary.len()
        ),
        cohort_bars,
        1.0,
        |v| format!("{:.0}%", v * 100.0),
    );
    let cohorts_table: Vec<Value> = summary
        .iter()
        .rev()
        .take(TABLE_COHORTS)
        .map(|c| {
            json!({"id": c.cohort_id, "members": c.members, "held": c.sessions_held,
                   "rate": charts::percent(cohort_rate(c)), "completed": c.completed_members})
        })
        .collect();
    let mut query_string = Vec::new();
    if let Some(from) = from {
        query_string.push(format!("from={from}"));
    }
    if let Some(to) = to {
        query_string.push(format!("to={to}"));
    }
    let context = json!({
        "program": {"id": row.id, "name": row.name, "timezone": row.timezone},
        "from": from.map(|d| d.to_string()).unwrap_or_default(),
        "to": to.map(|d| d.to_string()).unwrap_or_default(),
        "query": if query_string.is_empty() { String::new() } else { format!("?{}", query_string.join("&")) },
        "overall": charts::percent(attendance_rate(attended as u32, held as u32)),
        "member_count": members.len(),
        "cohort_count": summary.len(),
        "by_session": by_session,
        "by_cohort": by_cohort,
        "cohorts": cohorts_table,
        "cohorts_more": summary.len() > TABLE_COHORTS,
    });
    page(&staff, "staff/report", "Attendance report", context)
}

/// The API's CSV, for a browser session (the API route needs a bearer token).
pub async fn report_csv(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    query: web::Query<ReportQuery>,
) -> PageResult {
    let program_id = path.into_inner();
    let (from, to) = report_range(&query)?;
    let actor = staff.user.clone();
    let members = db(&state, move |conn| {
        attendance_service::report(
            conn,
            &actor,
            crate::domain::ids::ProgramId(program_id),
            from,
            to,
        )
    })
    .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"attendance-program-{program_id}.csv\""),
        ))
        .body(csv_of(&members)?))
}

pub async fn workload(state: web::Data<AppState>, staff: Staff) -> PageResult {
    staff.user.require_lead_or_admin()?;
    let scope = staff.user.program_scope();
    let rows = db(&state, move |conn| {
        let mut loads = crate::service::staffing::loads(conn, crate::db::now())?;
        Ok(facilitators::list(conn, Some(true), scope.as_deref())?
            .into_iter()
            .map(|f| {
                let load = loads.remove(&f.id).unwrap_or_default();
                (f, load)
            })
            .collect::<Vec<_>>())
    })
    .await?;
    let max = rows
        .iter()
        .map(|(f, l)| (l.active_cohorts.len() as f64).max(f64::from(f.max_active_cohorts)))
        .fold(1.0, f64::max);
    let bars: Vec<BarInput> = rows
        .iter()
        .map(|(f, l)| {
            let active = l.active_cohorts.len();
            BarInput {
                label: f.name.clone(),
                value: active as f64,
                text: format!("{active} of {}", f.max_active_cohorts),
                class: if active as i32 >= f.max_active_cohorts {
                    "low"
                } else {
                    ""
                },
            }
        })
        .collect();
    let chart = charts::bar_chart(
        "workload",
        "Active cohorts per facilitator",
        "Active and forming cohorts each facilitator holds, against their maximum.",
        bars,
        max,
        |v| format!("{v:.0}"),
    );
    let facilitators: Vec<Value> = rows
        .iter()
        .map(|(f, l)| {
            let credentials: Vec<String> = serde_json::from_str(&f.credentials).unwrap_or_default();
            json!({"name": f.name, "credentials": credentials.join(", "),
                   "active": l.active_cohorts.len(), "max": f.max_active_cohorts,
                   "full": l.active_cohorts.len() as i32 >= f.max_active_cohorts,
                   "next_week": l.sessions_next_7_days,
                   "licence": f.licence_expires_on.map(|d| d.to_string()).unwrap_or_else(|| "–".into())})
        })
        .collect();
    page(
        &staff,
        "staff/workload",
        "Facilitator workload",
        json!({"chart": chart, "facilitators": facilitators}),
    )
}
