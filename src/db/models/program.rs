//! Programs: one site's group program and its rules (stored as JSON text).

use crate::db::schema::programs;
use crate::db::DbConnection;
use crate::domain::program::ProgramRules;
use crate::per_backend;
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable)]
pub struct ProgramRow {
    pub id: i64,
    pub name: String,
    pub site: String,
    pub timezone: String,
    pub modality: String,
    pub venue: Option<String>,
    pub join_url: Option<String>,
    pub rules: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

impl ProgramRow {
    /// Rules were validated before they were stored; an unreadable value means the row
    /// was edited by hand, which is an internal error, not the user's.
    pub fn rules(&self) -> anyhow::Result<ProgramRules> {
        serde_json::from_str(&self.rules)
            .map_err(|error| anyhow::anyhow!("program {} has unreadable rules: {error}", self.id))
    }
}

#[derive(Insertable, AsChangeset)]
#[diesel(table_name = programs, treat_none_as_null = true)]
pub struct ProgramFields {
    pub name: String,
    pub site: String,
    pub timezone: String,
    pub modality: String,
    pub venue: Option<String>,
    pub join_url: Option<String>,
    pub rules: String,
}

pub fn insert(
    conn: &mut DbConnection,
    fields: &ProgramFields,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    per_backend!(conn, |c| diesel::insert_into(programs::table)
        .values((
            fields,
            programs::created_at.eq(now),
            programs::updated_at.eq(now),
        ))
        .returning(programs::id)
        .get_result(c))
}

pub fn update(
    conn: &mut DbConnection,
    id: i64,
    fields: &ProgramFields,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(programs::table.find(id))
        .set((fields, programs::updated_at.eq(now)))
        .execute(conn)
        .map(|_| ())
}

/// The programs with these ids, in one query.
pub fn find_many(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<Vec<ProgramRow>> {
    programs::table
        .filter(programs::id.eq_any(ids.to_vec()))
        .load(conn)
}

pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<ProgramRow> {
    programs::table.find(id).first(conn)
}

/// `None` lists every program (admin); `Some(ids)` only those.
pub fn list(conn: &mut DbConnection, only: Option<&[i64]>) -> QueryResult<Vec<ProgramRow>> {
    let mut query = programs::table.order(programs::id).into_boxed();
    if let Some(ids) = only {
        query = query.filter(programs::id.eq_any(ids.to_vec()));
    }
    query.load(conn)
}

pub fn existing_ids(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<Vec<i64>> {
    programs::table
        .filter(programs::id.eq_any(ids.to_vec()))
        .select(programs::id)
        .load(conn)
}
