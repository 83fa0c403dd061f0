//! Programs: created and changed by admins, read by the leads and facilitators in them.
//! A PATCH is merged onto the stored program and validated as a whole, like a POST.

use crate::db::audit::AuditEvent;
use crate::db::models::program::{self, ProgramFields, ProgramRow};
use crate::db::{self as database, write_transaction, DbConnection};
use crate::domain::ids::ProgramId;
use crate::domain::program::{
    parse_timezone, AttendanceRules, CohortRules, PeerSupportRules, ProgramRules, ReminderRules,
    ScheduleRules, StaffingRules,
};
use crate::domain::Modality;
use crate::error::{AppError, AppResult, FieldErrors};
use crate::service::auth::Actor;
use crate::service::patch::merged;
use crate::types::{http_url, optional_text, required_text};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The body of POST, and the whole document a PATCH is merged into.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgramInput {
    pub name: String,
    pub site: String,
    pub timezone: String,
    pub modality: String,
    #[serde(default)]
    pub venue: Option<String>,
    #[serde(default)]
    pub join_url: Option<String>,
    #[serde(default)]
    pub cohort: CohortRules,
    #[serde(default)]
    pub schedule: ScheduleRules,
    #[serde(default)]
    pub staffing: StaffingRules,
    #[serde(default)]
    pub attendance: AttendanceRules,
    #[serde(default)]
    pub peer_support: PeerSupportRules,
    #[serde(default)]
    pub reminders: ReminderRules,
}

impl ProgramInput {
    fn rules(&self) -> ProgramRules {
        ProgramRules {
            cohort: self.cohort.clone(),
            schedule: self.schedule.clone(),
            staffing: self.staffing.clone(),
            attendance: self.attendance.clone(),
            peer_support: self.peer_support.clone(),
            reminders: self.reminders.clone(),
        }
    }

    /// Every rule checked, every broken one named.
    fn validate(&self) -> AppResult<ProgramFields> {
        let mut errors: FieldErrors = self.rules().validate();
        let mut take = |field: &str, result: Result<Option<String>, String>| match result {
            Ok(value) => value,
            Err(message) => {
                errors.insert(field.into(), message);
                None
            }
        };
        let name = take("name", required_text(&self.name, 200).map(Some));
        let site = take("site", required_text(&self.site, 200).map(Some));
        let timezone = take(
            "timezone",
            parse_timezone(self.timezone.trim()).map(|tz| Some(tz.name().to_string())),
        );
        let modality = take(
            "modality",
            self.modality
                .trim()
                .parse::<Modality>()
                .map(|m| Some(m.as_str().to_string())),
        );
        let venue = take("venue", optional_text(self.venue.as_deref(), 500));
        let join_url = take(
            "join_url",
            match optional_text(self.join_url.as_deref(), 500) {
                Ok(Some(url)) => http_url(&url).map(Some),
                other => other,
            },
        );
        AppError::check(errors)?;
        let rules = serde_json::to_string(&self.rules())
            .map_err(|error| anyhow::anyhow!("serialising rules: {error}"))?;
        match (name, site, timezone, modality) {
            (Some(name), Some(site), Some(timezone), Some(modality)) => Ok(ProgramFields {
                name,
                site,
                timezone,
                modality,
                venue,
                join_url,
                rules,
            }),
            _ => Err(anyhow::anyhow!("program validation lost an error").into()),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct ProgramView {
    pub id: i64,
    pub name: String,
    pub site: String,
    pub timezone: String,
    pub modality: String,
    pub venue: Option<String>,
    pub join_url: Option<String>,
    #[serde(flatten)]
    pub rules: ProgramRules,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub updated_at: chrono::DateTime<chrono::Utc>,
}

impl TryFrom<ProgramRow> for ProgramView {
    type Error = AppError;

    fn try_from(row: ProgramRow) -> AppResult<ProgramView> {
        Ok(ProgramView {
            rules: row.rules()?,
            id: row.id,
            name: row.name,
            site: row.site,
            timezone: row.timezone,
            modality: row.modality,
            venue: row.venue,
            join_url: row.join_url,
            created_at: row.created_at.and_utc(),
            updated_at: row.updated_at.and_utc(),
        })
    }
}

impl ProgramView {
    /// The editable document, in the shape of a POST body.
    fn as_input_value(&self) -> AppResult<Value> {
        let mut value = serde_json::to_value(self)
            .map_err(|error| anyhow::anyhow!("serialising program: {error}"))?;
        if let Some(object) = value.as_object_mut() {
            for read_only in ["id", "created_at", "updated_at"] {
                object.remove(read_only);
            }
        }
        Ok(value)
    }
}

pub fn create(
    conn: &mut DbConnection,
    actor: &Actor,
    input: ProgramInput,
) -> AppResult<ProgramView> {
    actor.require_admin()?;
    let fields = input.validate()?;
    write_transaction(conn, |conn| {
        let id = program::insert(conn, &fields, database::now())?;
        AuditEvent::new("create", "program", id)
            .by(actor.id)
            .in_program(id)
            .fields(&["*"])
            .record(conn)?;
        ProgramView::try_from(program::find(conn, id)?)
    })
}

/// The programs a caller may read: all for an admin, else their own.
pub fn list(conn: &mut DbConnection, actor: &Actor) -> AppResult<Vec<ProgramView>> {
    program::list(conn, actor.program_scope().as_deref())?
        .into_iter()
        .map(ProgramView::try_from)
        .collect()
}

pub fn get(conn: &mut DbConnection, actor: &Actor, id: ProgramId) -> AppResult<ProgramView> {
    let row = program::find(conn, id.get())?;
    actor.require_program(id.get())?;
    ProgramView::try_from(row)
}

/// JSON merge patch (RFC 7396) onto the stored program, then the same validation as a
/// POST, so a PATCH can never store what a POST would refuse.
pub fn update(
    conn: &mut DbConnection,
    actor: &Actor,
    id: ProgramId,
    patch: &Value,
) -> AppResult<ProgramView> {
    actor.require_admin()?;
    if !patch.is_object() {
        return Err(AppError::field("body", "must be a JSON object"));
    }
    let id = id.get();
    write_transaction(conn, |conn| {
        let current = ProgramView::try_from(program::find(conn, id)?)?;
        let before = current.as_input_value()?;
        let (input, changed): (ProgramInput, _) = merged(&before, patch)?;
        let fields = input.validate()?;
        if !changed.is_empty() {
            program::update(conn, id, &fields, database::now())?;
            let mut event = AuditEvent::new("update", "program", id)
                .by(actor.id)
                .in_program(id);
            event.changed_fields = changed;
            event.record(conn)?;
        }
        ProgramView::try_from(program::find(conn, id)?)
    })
}
