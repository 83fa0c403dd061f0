//! A facilitator's pages: their groups with today's and upcoming sessions, and the
//! follow-ups to acknowledge (leads see their programs' follow-ups there too).

use super::lead::{follow_up_why, names_of};
use super::render::redirect;
use super::session::Staff;
use super::{page, PageResult};
use crate::db::models::attendance as records;
use crate::db::models::cohort as cohorts;
use crate::db::models::user::Role;
use crate::domain::status::{CohortStatus, FollowUpStatus, SessionStatus};
use crate::service::attendance as attendance_service;
use crate::service::cohorts::program_context;
use crate::service::ProgramContext;
use crate::web::{db, AppState};
use actix_web::web;
use chrono::Duration;
use serde::Deserialize;
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};

const UPCOMING_DAYS: i64 = 14;
const MISSING_LOOKBACK_DAYS: i64 = 7;

pub async fn groups(state: web::Data<AppState>, staff: Staff) -> PageResult {
    let Some(facilitator_id) = staff.user.facilitator_id else {
        return page(
            &staff,
            "staff/groups",
            "My groups",
            json!({"today": [], "missing": [], "upcoming": [], "cohorts": [],
                   "notice": "Your account is not linked to a facilitator record; ask an admin."}),
        );
    };
    let context = db(&state, move |conn| {
        let now = crate::db::now();
        let mine: Vec<cohorts::CohortRow> = cohorts::list(conn, None, None, Some(facilitator_id))?;
        let live: Vec<&cohorts::CohortRow> = mine
            .iter()
            .filter(|c| matches!(c.status, CohortStatus::Forming | CohortStatus::Active))
            .collect();
        let mut programs: HashMap<i64, ProgramContext> = HashMap::new();
        for cohort in &live {
            if let std::collections::hash_map::Entry::Vacant(slot) =
                programs.entry(cohort.program_id)
            {
                slot.insert(program_context(conn, crate::domain::ids::ProgramId(cohort.program_id))?);
            }
        }
        let ids: Vec<i64> = live.iter().map(|c| c.id).collect();
        let program_of: HashMap<i64, i64> = live.iter().map(|c| (c.id, c.program_id)).collect();
        let sessions = cohorts::sessions_of(conn, &ids)?;
        let started: Vec<i64> = sessions.iter().filter(|s| s.starts_at <= now).map(|s| s.id).collect();
        let recorded: HashSet<i64> = records::of_sessions(conn, &started)?
            .into_iter()
            .map(|r| r.session_id)
            .collect();
        let (mut today, mut missing, mut upcoming) = (Vec::new(), Vec::new(), Vec::new());
        for s in &sessions {
            let Some(program) = program_of.get(&s.cohort_id).and_then(|p| programs.get(p)) else {
                continue;
            };
            if matches!(s.status, SessionStatus::Cancelled | SessionStatus::DidNotTakePlace) {
                continue;
            }
            let local = s.starts_at.and_utc().with_timezone(&program.tz);
            let today_local = program.today(chrono::Utc::now());
            let view = json!({
                "id": s.id, "cohort_id": s.cohort_id, "seq": s.seq,
                "time": local.format("%H:%M %Z").to_string(),
                "when": local.format("%a %Y-%m-%d %H:%M %Z").to_string(),
                "can_record": s.starts_at <= now,
                "recorded": recorded.contains(&s.id),
            });
            if local.date_naive() == today_local {
                today.push(view);
            } else if s.starts_at < now
                && s.starts_at >= now - Duration::days(MISSING_LOOKBACK_DAYS)
                && !recorded.contains(&s.id)
            {
                missing.push(view);
            } else if s.starts_at > now && s.starts_at < now + Duration::days(UPCOMING_DAYS) {
                upcoming.push(view);
            }
        }
        let mut roles: HashMap<i64, String> = HashMap::new();
        for cohort in &mine {
            if let Some((row, _)) = cohorts::team(conn, cohort.id)?
                .into_iter()
                .find(|(row, _)| row.facilitator_id == facilitator_id)
            {
                roles.insert(cohort.id, row.role.as_str().replace('_', "-"));
            }
        }
        let cohort_views: Vec<Value> = mine
            .iter()
            .rev()
            .map(|c| json!({"id": c.id, "status": c.status, "role": roles.get(&c.id).cloned().unwrap_or_default()}))
            .collect();
        Ok(json!({"today": today, "missing": missing, "upcoming": upcoming, "cohorts": cohort_views}))
    })
    .await?;
    page(&staff, "staff/groups", "My groups", context)
}

#[derive(Deserialize)]
pub struct FollowUpQuery {
    done: Option<i64>,
}

pub async fn follow_ups(
    state: web::Data<AppState>,
    staff: Staff,
    query: web::Query<FollowUpQuery>,
) -> PageResult {
    let actor = staff.user.clone();
    let list = db(&state, move |conn| {
        let rows = match actor.role {
            Role::Facilitator => match actor.facilitator_id {
                Some(id) => records::list(conn, Some(FollowUpStatus::Open), None, Some(id))?,
                None => vec![],
            },
            _ => records::list(conn, Some(FollowUpStatus::Open), actor.program_scope().as_deref(), None)?,
        };
        let names = names_of(conn, &rows.iter().map(|f| f.patient_id).collect::<Vec<_>>())?;
        let mut zones: HashMap<i64, chrono_tz::Tz> = HashMap::new();
        let mut views = Vec::new();
        for f in &rows {
            let tz = match zones.get(&f.cohort_id) {
                Some(tz) => *tz,
                None => {
                    let cohort = cohorts::find(conn, f.cohort_id)?;
                    let tz = program_context(conn, crate::domain::ids::ProgramId(cohort.program_id))?.tz;
                    zones.insert(f.cohort_id, tz);
                    tz
                }
            };
            views.push(json!({
                "id": f.id, "cohort_id": f.cohort_id,
                "patient": names.get(&f.patient_id).cloned().unwrap_or_default(),
                "why": follow_up_why(f),
                "opened": f.opened_at.and_utc().with_timezone(&tz).format("%a %Y-%m-%d %H:%M").to_string(),
                "overdue": f.escalated_at.is_some(),
            }));
        }
        Ok(views)
    })
    .await?;
    let notice = query.done.map(|_| "Follow-up acknowledged.");
    page(
        &staff,
        "staff/follow_ups",
        "Follow-ups",
        json!({"follow_ups": list, "notice": notice}),
    )
}

#[derive(Deserialize)]
pub struct AcknowledgeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    note: Option<String>,
}

pub async fn acknowledge(
    state: web::Data<AppState>,
    staff: Staff,
    path: web::Path<i64>,
    form: web::Form<AcknowledgeForm>,
) -> PageResult {
    let form = form.into_inner();
    staff.check_csrf(&state.secret_key, &form.csrf)?;
    let id = path.into_inner();
    let actor = staff.user.clone();
    db(&state, move |conn| {
        attendance_service::acknowledge(conn, &actor, id, form.note.as_deref())
    })
    .await?;
    Ok(redirect(&format!("/staff/follow-ups?done={id}")))
}
