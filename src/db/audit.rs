//! The append-only audit log: who did what to which entity, and which fields changed.
//! Values of patient fields are never written here, only their names.

use super::schema::audit_log;
use super::DbConnection;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::Serialize;

/// One write to remember. `changed_fields` names fields, never their values.
pub struct AuditEvent<'a> {
    pub actor_user_id: Option<i64>,
    pub action: &'a str,
    pub entity: &'a str,
    pub entity_id: i64,
    pub program_id: Option<i64>,
    pub changed_fields: Vec<String>,
    /// Free text that is not patient data (an override reason, an amendment reason).
    pub detail: Option<String>,
}

impl<'a> AuditEvent<'a> {
    /// `action` on `entity` `entity_id`, by nobody yet, in no program, naming no field.
    pub fn new(action: &'a str, entity: &'a str, entity_id: i64) -> AuditEvent<'a> {
        AuditEvent {
            actor_user_id: None,
            action,
            entity,
            entity_id,
            program_id: None,
            changed_fields: Vec::new(),
            detail: None,
        }
    }

    pub fn by(mut self, actor_user_id: impl Into<Option<i64>>) -> Self {
        self.actor_user_id = actor_user_id.into();
        self
    }

    pub fn in_program(mut self, program_id: i64) -> Self {
        self.program_id = Some(program_id);
        self
    }

    pub fn fields(mut self, fields: &[&str]) -> Self {
        self.changed_fields = fields.iter().map(|f| f.to_string()).collect();
        self
    }

    pub fn detail(mut self, detail: impl Into<Option<String>>) -> Self {
        self.detail = detail.into();
        self
    }

    pub fn record(self, conn: &mut DbConnection) -> QueryResult<()> {
        record(conn, self)
    }
}

#[derive(Insertable)]
#[diesel(table_name = audit_log)]
struct NewAuditRow<'a> {
    at: NaiveDateTime,
    actor_user_id: Option<i64>,
    action: &'a str,
    entity: &'a str,
    entity_id: i64,
    program_id: Option<i64>,
    changed_fields: String,
    detail: Option<String>,
}

#[derive(Debug, Queryable, Serialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: NaiveDateTime,
    pub actor_user_id: Option<i64>,
    pub action: String,
    pub entity: String,
    pub entity_id: i64,
    pub program_id: Option<i64>,
    pub changed_fields: String,
    pub detail: Option<String>,
}

pub fn record(conn: &mut DbConnection, event: AuditEvent<'_>) -> QueryResult<()> {
    record_many(conn, vec![event])
}

/// Many entries in few statements (bulk imports write one per created record).
pub fn record_many(conn: &mut DbConnection, events: Vec<AuditEvent<'_>>) -> QueryResult<()> {
    let at = super::now();
    let rows: Vec<NewAuditRow<'_>> = events.into_iter().map(|event| row(event, at)).collect();
    for chunk in rows.chunks(500) {
        crate::per_backend!(conn, |c| diesel::insert_into(audit_log::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

fn row(event: AuditEvent<'_>, at: NaiveDateTime) -> NewAuditRow<'_> {
    NewAuditRow {
        at,
        actor_user_id: event.actor_user_id,
        action: event.action,
        entity: event.entity,
        entity_id: event.entity_id,
        program_id: event.program_id,
        changed_fields: serde_json::to_string(&event.changed_fields)
            .unwrap_or_else(|_| "[]".into()),
        detail: event.detail,
    }
}

/// Filters for `GET /api/v1/audit`.
#[derive(Default)]
pub struct AuditQuery {
    pub entity: Option<String>,
    pub entity_id: Option<i64>,
    /// `None` = every program (admin); `Some(ids)` = only entries tied to these programs.
    pub programs: Option<Vec<i64>>,
    pub before_id: Option<i64>,
    pub limit: i64,
}

pub fn list(conn: &mut DbConnection, query: &AuditQuery) -> QueryResult<Vec<AuditEntry>> {
    let mut select = audit_log::table.into_boxed();
    if let Some(entity) = &query.entity {
        select = select.filter(audit_log::entity.eq(entity.clone()));
    }
    if let Some(id) = query.entity_id {
        select = select.filter(audit_log::entity_id.eq(id));
    }
    if let Some(programs) = &query.programs {
        select = select.filter(audit_log::program_id.eq_any(programs.clone()));
    }
    if let Some(before) = query.before_id {
        select = select.filter(audit_log::id.lt(before));
    }
    select
        .order(audit_log::id.desc())
        .limit(query.limit)
        .load(conn)
}
