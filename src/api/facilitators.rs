//! Facilitators: who can hold which groups, and when.

use crate::db::audit::{self, AuditEvent};
use crate::db::models::facilitator::{self as facilitators, FacilitatorFields, FacilitatorRow};
use crate::db::models::user::Role;
use crate::db::{self as database, write_transaction};
use crate::domain::program::{parse_timezone, LocalTime, WeekdayName};
use crate::domain::{Credential, Modality};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::types::{required_text, EmailAddress};
use crate::web::patch::merged;
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
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl TryFrom<FacilitatorRow> for FacilitatorView {
    type Error = AppError;

    fn try_from(row: FacilitatorRow) -> AppResult<Self> {
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
        }
    }
}

fn facilitator_audit(
    actor: &CurrentUser,
    action: &'static str,
    id: i64,
    fields: Vec<String>,
) -> AuditEvent<'static> {
    AuditEvent {
        actor_user_id: Some(actor.id),
        action,
        entity: "facilitator",
        entity_id: id,
        program_id: None,
        changed_fields: fields,
        detail: None,
    }
}

async fn create(
    state: web::Data<AppState>,
    actor: CurrentUser,
    body: Json<FacilitatorInput>,
) -> AppResult<HttpResponse> {
    actor.require_lead_or_admin()?;
    let fields = body.0.validate()?;
    let view = db(&state, move |conn| {
        write_transaction(conn, |conn| {
            if facilitators::email_taken(conn, &fields.email, None)? {
                return Err(AppError::conflict(
                    "a facilitator with this email already exists",
                ));
            }
            let id = facilitators::insert(conn, &fields, database::now())?;
            audit::record(
                conn,
                facilitator_audit(&actor, "create", id, vec!["*".into()]),
            )?;
            FacilitatorView::try_from(facilitators::find(conn, id)?)
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
        facilitators::list(conn, active)?
            .into_iter()
            .map(|row| {
                let id = row.id;
                let mut view = serde_json::to_value(FacilitatorView::try_from(row)?)
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
    if actor.role == Role::Facilitator && actor.facilitator_id != Some(id) {
        return Err(AppError::Forbidden(
            "a facilitator sees only their own record".into(),
        ));
    }
    let view = db(&state, move |conn| {
        FacilitatorView::try_from(facilitators::find(conn, id)?)
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
            let current = FacilitatorView::try_from(facilitators::find(conn, id)?)?;
            let before = serde_json::to_value(current.as_input())
                .map_err(|error| anyhow::anyhow!("serialising a facilitator: {error}"))?;
            let (input, changed): (FacilitatorInput, _) = merged(&before, &patch)?;
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
                audit::record(conn, facilitator_audit(&actor, "update", id, changed))?;
                uncovered = crate::service::staffing::reassess_cohorts_of(conn, id, now)?;
            }
            let mut view =
                serde_json::to_value(FacilitatorView::try_from(facilitators::find(conn, id)?)?)
                    .map_err(|e| anyhow::anyhow!("serialising a facilitator: {e}"))?;
            // Cohorts whose team no longer meets the rules after this change.
            view["cohorts_losing_coverage"] = json!(uncovered);
            Ok(view)
        })
    })
    .await?;
    Ok(HttpResponse::Ok().json(view))
}
