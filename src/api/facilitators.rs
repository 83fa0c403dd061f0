//! Facilitators: who can hold which groups, and when.

use crate::db::audit::{self, AuditEvent};
use crate::db::models::facilitator::{self as facilitators, FacilitatorFields, FacilitatorRow};
use crate::db::models::user::Role;
use crate::db::{self as database, write_transaction, DbConnection};
use crate::domain::program::{parse_timezone, LocalTime, WeekdayName};
use crate::domain::{Credential, Modality};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::service::auth::Actor;
use crate::service::patch::merged;
use crate::types::{required_text, EmailAddress};
use crate::web::CurrentUser;
use crate::web::{db, AppState, Json};
use actix_web::{web, HttpResponse};
use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/facilitators", web::post().to(create))
        .route("/facilitators", web::get().to(list))
        .route("/facilitators/{id}", web::get().to(get))
        .route("/facilitators/{id}", web::patch().to(patch));
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AvailabilityWindow {
    pub weekday: String,
    pub start: String,
    /// `00:00` as an end means midnight, for a window that runs to the end of the day.
    pub end: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FacilitatorInput {
    pub name: String,
    pub email: String,
    pub timezone: String,
    pub credentials: Vec<String>,
    pub modalities: Vec<String>,
    #[serde(default)]
    pub licence_expires_on: Option<String>,
    #[serde(default)]
    pub availability: Vec<AvailabilityWindow>,
    pub max_active_cohorts: i64,
    #[serde(default = "active_by_default")]
    pub active: bool,
    /// The programs this facilitator serves: required from a program lead (only their
    /// own programs), any existing programs from an admin.
    #[serde(default)]
    pub program_ids: Option<Vec<i64>>,
}

fn active_by_default() -> bool {
    true
}

/// Minutes since midnight; an end of 00:00 counts as 24:00.
fn minutes(time: NaiveTime, is_end: bool) -> u32 {
    use chrono::Timelike;
    let m = time.hour() * 60 + time.minute();
    if is_end && m == 0 {
        24 * 60
    } else {
        m
    }
}

impl FacilitatorInput {
    pub fn validate(&self) -> AppResult<FacilitatorFields> {
        let mut errors = FieldErrors::new();
        let name = required_text(&self.name, 200)
            .map_err(|e| errors.insert("name".into(), e))
            .ok();
        let email = EmailAddress::parse(&self.email)
            .map_err(|e| errors.insert("email".into(), e))
            .ok();
        let timezone = parse_timezone(self.timezone.trim())
            .map_err(|e| errors.insert("timezone".into(), e))
            .ok();

        let mut credentials = Vec::new();
        for (index, text) in self.credentials.iter().enumerate() {
            match text.parse::<Credential>() {
                Ok(c) if credentials.contains(&c) => {
                    errors.insert(format!("credentials[{index}]"), "is repeated".into());
                }
                Ok(c) => credentials.push(c),
                Err(e) => {
                    errors.insert(format!("credentials[{index}]"), e);
                }
            }
        }
        if self.credentials.is_empty() {
            errors.insert(
                "credentials".into(),
                "must list at least one credential".into(),
            );
        }
        let mut modalities = Vec::new();
        for (index, text) in self.modalities.iter().enumerate() {
            match text.parse::<Modality>() {
                Ok(m) if modalities.contains(&m) => {
                    errors.insert(format!("modalities[{index}]"), "is repeated".into());
                }
                Ok(m) => modalities.push(m),
                Err(e) => {
                    errors.insert(format!("modalities[{index}]"), e);
                }
            }
        }
        if self.modalities.is_empty() {
            errors.insert(
                "modalities".into(),
                "must list at least one modality".into(),
            );
        }
        let licence_expires_on = match self.licence_expires_on.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map_err(|_| {
                    errors.insert(
                        "licence_expires_on".into(),
                        format!("must be a date YYYY-MM-DD (got {text:?})"),
                    )
                })
                .ok(),
        };

        let mut windows: Vec<(WeekdayName, u32, u32, usize)> = Vec::new();
        for (index, window) in self.availability.iter().enumerate() {
            let field = |part: &str| format!("availability[{index}].{part}");
            let weekday = WeekdayName::parse(window.weekday.trim())
                .map_err(|e| errors.insert(field("weekday"), e))
                .ok();
            let start = LocalTime::parse(window.start.trim())
                .map_err(|e| errors.insert(field("start"), e))
                .ok();
            let end = LocalTime::parse(window.end.trim())
                .map_err(|e| errors.insert(field("end"), e))
                .ok();
            if let (Some(weekday), Some(start), Some(end)) = (weekday, start, end) {
                let (start, end) = (minutes(start.0, false), minutes(end.0, true));
                if start >= end {
                    errors.insert(field("end"), "must be after start".into());
                } else if let Some(other) = windows
                    .iter()
                    .find(|(d, s, e, _)| *d == weekday && start < *e && *s < end)
                {
                    errors.insert(
                        field("start"),
                        format!("overlaps availability[{}]", other.3),
                    );
                } else {
                    windows.push((weekday, start, end, index));
                }
            }
        }
        if !(1..=100).contains(&self.max_active_cohorts) {
            errors.insert(
                "max_active_cohorts".into(),
                "must be between 1 and 100".into(),
            );
        }
        AppError::check(errors)?;
        let (Some(name), Some(email), Some(timezone)) = (name, email, timezone) else {
            return Err(anyhow::anyhow!("facilitator validation lost an error").into());
        };
        let normalized: Vec<AvailabilityWindow> = self
            .availability
            .iter()
            .map(|w| AvailabilityWindow {
                weekday: WeekdayName::parse(w.weekday.trim())
                    .map(|d| d.short().to_string())
                    .unwrap_or_default(),
                start: w.start.trim().to_string(),
                end: w.end.trim().to_string(),
            })
            .collect();
        Ok(FacilitatorFields {
            name,
            email: email.to_string(),
            timezone: timezone.name().to_string(),
            credentials: to_json(&credentials)?,
            modalities: to_json(&modalities)?,
            licence_expires_on,
            availability: to_json(&normalized)?,
            max_active_cohorts: self.max_active_cohorts as i32,
            active: self.active,
        })
    }
}

/// The stored JSON columns are built from validated values.
fn to_json<T: Serialize>(value: &T) -> anyhow::Result<String> {
    serde_json::to_string(value).map_err(|error| anyhow::anyhow!("serialising: {error}"))
}

#[derive(Debug, Serialize)]
pub struct FacilitatorView {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub timezone: String,
    pub credentials: Vec<Credential>,
    pub modalities: Vec<Modality>,
    pub licence_expires_on: Option<NaiveDate>,
    pub availability: Vec<AvailabilityWindow>,
    pub max_active_cohorts: i32,
    pub active: bool,
    /// The programs served, as far as the reader may see (a lead: only their own).
    pub program_ids: Vec<i64>,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl TryFrom<(FacilitatorRow, Vec<i64>)> for FacilitatorView {
    type Error = AppError;

    fn try_from((row, program_ids): (FacilitatorRow, Vec<i64>)) -> AppResult<Self> {
        let parse = |what: &str, text: &str| -> anyhow::Result<Value> {
            serde_json::from_str(text)
                .map_err(|error| anyhow::anyhow!("facilitator {} {what}: {error}", row.id))
        };
        Ok(FacilitatorView {
            credentials: serde_json::from_value(parse("credentials", &row.credentials)?)
                .map_err(|error| anyhow::anyhow!("facilitator credentials: {error}"))?,
            modalities: serde_json::from_value(parse("modalities", &row.modalities)?)
                .map_err(|error| anyhow::anyhow!("facilitator modalities: {error}"))?,
            availability: serde_json::from_value(parse("availability", &row.availability)?)
                .map_err(|error| anyhow::anyhow!("facilitator availability: {error}"))?,
            id: row.id,
            name: row.name,
            email: row.email,
            timezone: row.timezone,
            licence_expires_on: row.licence_expires_on,
            max_active_cohorts: row.max_active_cohorts,
            active: row.active,
            program_ids,
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
        })
    }
}

impl FacilitatorView {
    fn as_input(&self) -> FacilitatorInput {
        FacilitatorInput {
            name: self.name.clone(),
            email: self.email.clone(),
            timezone: self.timezone.clone(),
            credentials: self.credentials.iter().map(|c| c.to_string()).collect(),
            modalities: self.modalities.iter().map(|m| m.to_string()).collect(),
            licence_expires_on: self.licence_expires_on.map(|d| d.to_string()),
            availability: self.availability.clone(),
            max_active_cohorts: i64::from(self.max_active_cohorts),
            active: self.active,
            program_ids: Some(self.program_ids.clone()),
        }
    }
}

/// What a reader may see of the programs a facilitator serves: a lead only their own.
fn visible(programs: &[i64], scope: &Option<Vec<i64>>) -> Vec<i64> {
    programs
        .iter()
        .copied()
        .filter(|p| scope.as_ref().is_none_or(|scope| scope.contains(p)))
        .collect()
}

/// A facilitator as `actor` may read them, with the programs they serve; a lead asking
/// for a facilitator of no program of theirs is told there is none (nothing leaks).
fn find_for(
    conn: &mut DbConnection,
    actor: &Actor,
    id: i64,
) -> AppResult<(FacilitatorRow, Vec<i64>)> {
    let row = facilitators::find(conn, id)?;
    let programs = facilitators::programs_of_one(conn, id)?;
    match actor.role {
        Role::Admin => {}
        Role::Facilitator if actor.facilitator_id == Some(id) => {}
        Role::Facilitator => {
            return Err(AppError::Forbidden(
                "a facilitator sees only their own record".into(),
            ))
        }
        Role::ProgramLead => {
            if !programs.iter().any(|p| actor.program_ids.contains(p)) {
                return Err(AppError::NotFound);
            }
        }
    }
    Ok((row, programs))
}

fn view_for(actor: &Actor, row: FacilitatorRow, programs: &[i64]) -> AppResult<FacilitatorView> {
    let scope = match actor.role {
        Role::ProgramLead => actor.program_scope(),
        Role::Admin | Role::Facilitator => None,
    };
    FacilitatorView::try_from((row, visible(programs, &scope)))
}

/// The programs a facilitator will serve after `requested` from `actor`, given those
/// served now (`current`; empty for a new one). A lead names only programs they lead,
/// and the programs they do not lead are kept as they are; an admin names any program
/// that exists.
fn served_programs(
    conn: &mut DbConnection,
    actor: &Actor,
    current: &[i64],
    requested: Option<Vec<i64>>,
    creating: bool,
) -> AppResult<Vec<i64>> {
    let Some(requested) = requested else {
        if creating && !actor.is_admin() {
            return Err(AppError::field(
                "program_ids",
                "must list the programs this facilitator serves",
            ));
        }
        return Ok(current.to_vec());
    };
    let mut errors = FieldErrors::new();
    let mut wanted: Vec<i64> = Vec::with_capacity(requested.len());
    for (index, program) in requested.iter().enumerate() {
        if wanted.contains(program) {
            errors.insert(format!("program_ids[{index}]"), "is repeated".into());
        } else {
            wanted.push(*program);
        }
    }
    AppError::check(errors)?;
    let mut next: Vec<i64> = if actor.is_admin() {
        let known: Vec<i64> = crate::db::models::program::find_many(conn, &wanted)?
            .into_iter()
            .map(|p| p.id)
            .collect();
        let mut errors = FieldErrors::new();
        for (index, program) in requested.iter().enumerate() {
            if !known.contains(program) {
                errors.insert(format!("program_ids[{index}]"), "no such program".into());
            }
        }
        AppError::check(errors)?;
        wanted
    } else {
        if let Some(foreign) = wanted.iter().find(|p| !actor.program_ids.contains(p)) {
            return Err(AppError::Forbidden(format!(
                "you do not lead program {foreign}"
            )));
        }
        if creating && wanted.is_empty() {
            return Err(AppError::field(
                "program_ids",
                "must list at least one of your programs",
            ));
        }
        // What the lead cannot see stays as it is.
        current
            .iter()
            .copied()
            .filter(|p| !actor.program_ids.contains(p))
            .chain(wanted)
            .collect()
    };
    next.sort_unstable();
    next.dedup();
    Ok(next)
}

/// One audit row per program the facilitator served before or serves after the change,
/// so each program's lead sees it in their log; one row without a program when they
/// serve none.
fn record_audit(
    conn: &mut DbConnection,
    actor: &Actor,
    action: &'static str,
    id: i64,
    fields: &[String],
    programs: &[i64],
) -> AppResult<()> {
    let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
    let event = || {
        AuditEvent::new(action, "facilitator", id)
            .by(actor.id)
            .fields(&fields)
    };
    let events: Vec<AuditEvent<'_>> = if programs.is_empty() {
        vec![event()]
    } else {
        programs.iter().map(|p| event().in_program(*p)).collect()
    };
    audit::record_many(conn, events)?;
    Ok(())
}

fn union(a: &[i64], b: &[i64]) -> Vec<i64> {
    let mut all: Vec<i64> = a.iter().chain(b).copied().collect();
    all.sort_unstable();
    all.dedup();
    all
}

async fn create(
    state: web::Data<AppState>,
    actor: CurrentUser,
    body: Json<FacilitatorInput>,
) -> AppResult<HttpResponse> {
    actor.require_lead_or_admin()?;
    let requested = body.0.program_ids.clone();
    let fields = body.0.validate()?;
    let view = db(&state, move |conn| {
        write_transaction(conn, |conn| {
            let programs = served_programs(conn, &actor, &[], requested, true)?;
            if facilitators::email_taken(conn, &fields.email, None)? {
                return Err(AppError::conflict(
                    "a facilitator with this email already exists",
                ));
            }
            let id = facilitators::insert(conn, &fields, database::now())?;
            facilitators::set_programs(conn, id, &programs)?;
            record_audit(conn, &actor, "create", id, &["*".into()], &programs)?;
            view_for(&actor, facilitators::find(conn, id)?, &programs)
        })
    })
    .await?;
    Ok(HttpResponse::Created().json(view))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListParams {
    active: Option<bool>,
    with_load: Option<bool>,
}

/// A lead's pool is the facilitators of their programs; an admin's the whole pool.
async fn list(
    state: web::Data<AppState>,
    actor: CurrentUser,
    params: web::Query<ListParams>,
) -> AppResult<HttpResponse> {
    actor.require_lead_or_admin()?;
    let active = params.active;
    let with_load = params.with_load.unwrap_or(false);
    let views = db(&state, move |conn| {
        let mut loads = if with_load {
            crate::service::staffing::loads(conn, database::now())?
        } else {
            std::collections::HashMap::new()
        };
        let scope = actor.program_scope();
        let rows = facilitators::list(conn, active, scope.as_deref())?;
        let ids: Vec<i64> = rows.iter().map(|row| row.id).collect();
        let mut programs = facilitators::programs_of(conn, &ids)?;
        rows.into_iter()
            .map(|row| {
                let id = row.id;
                let served = programs.remove(&id).unwrap_or_default();
                let mut view = serde_json::to_value(view_for(&actor, row, &served)?)
                    .map_err(|e| anyhow::anyhow!("serialising a facilitator: {e}"))?;
                if with_load {
                    view["load"] = json!(loads.remove(&id).unwrap_or_default());
                }
                Ok(view)
            })
            .collect::<AppResult<Vec<_>>>()
    })
    .await?;
    Ok(HttpResponse::Ok().json(json!({ "facilitators": views })))
}

async fn get(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
) -> AppResult<HttpResponse> {
    let id = path.into_inner();
    let view = db(&state, move |conn| {
        let (row, programs) = find_for(conn, &actor, id)?;
        view_for(&actor, row, &programs)
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}

async fn patch(
    state: web::Data<AppState>,
    actor: CurrentUser,
    path: web::Path<i64>,
    body: Json<Value>,
) -> AppResult<HttpResponse> {
    actor.require_lead_or_admin()?;
    let id = path.into_inner();
    let patch = body.0;
    if !patch.is_object() {
        return Err(AppError::field("body", "must be a JSON object"));
    }
    let view = db(&state, move |conn| {
        write_transaction(conn, |conn| {
            let (row, served) = find_for(conn, &actor, id)?;
            let current = view_for(&actor, row, &served)?;
            let before = serde_json::to_value(current.as_input())
                .map_err(|error| anyhow::anyhow!("serialising a facilitator: {error}"))?;
            let (mut input, mut changed): (FacilitatorInput, Vec<String>) =
                merged(&before, &patch)?;
            let programs = served_programs(conn, &actor, &served, input.program_ids.take(), false)?;
            changed.retain(|field| field != "program_ids");
            if programs != served {
                changed.push("program_ids".into());
                changed.sort();
            }
            let fields = input.validate()?;
            if fields.email != current.email
                && facilitators::email_taken(conn, &fields.email, Some(id))?
            {
                return Err(AppError::conflict(
                    "a facilitator with this email already exists",
                ));
            }
            let mut uncovered = Vec::new();
            if !changed.is_empty() {
                let now = database::now();
                facilitators::update(conn, id, &fields, now)?;
                facilitators::set_programs(conn, id, &programs)?;
                record_audit(
                    conn,
                    &actor,
                    "update",
                    id,
                    &changed,
                    &union(&served, &programs),
                )?;
                uncovered = crate::service::staffing::reassess_cohorts_of(conn, id, now)?;
                // A lead hears only of their own programs' cohorts.
                if let Some(scope) = actor.program_scope() {
                    let mut mine = Vec::with_capacity(uncovered.len());
                    for cohort in uncovered {
                        let program = crate::db::models::cohort::find(conn, cohort)?.program_id;
                        if scope.contains(&program) {
                            mine.push(cohort);
                        }
                    }
                    uncovered = mine;
                }
            }
            let row = facilitators::find(conn, id)?;
            let mut view = serde_json::to_value(view_for(&actor, row, &programs)?)
                .map_err(|e| anyhow::anyhow!("serialising a facilitator: {e}"))?;
            // Cohorts whose team no longer meets the rules after this change.
            view["cohorts_losing_coverage"] = json!(uncovered);
            Ok(view)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
