//! Facilitators: credentials, training, licence and weekly availability.

use crate::db::schema::facilitators;
use crate::db::DbConnection;
use crate::per_backend;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable)]
pub struct FacilitatorRow {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub timezone: String,
    /// JSON array of credential names.
    pub credentials: String,
    /// JSON array of modality names.
    pub modalities: String,
    pub licence_expires_on: Option<NaiveDate>,
    /// JSON array of `{weekday, start, end}`.
    pub availability: String,
    pub max_active_cohorts: i32,
    pub active: bool,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable, AsChangeset)]
#[diesel(table_name = facilitators, treat_none_as_null = true)]
pub struct FacilitatorFields {
    pub name: String,
    pub email: String,
    pub timezone: String,
    pub credentials: String,
    pub modalities: String,
    pub licence_expires_on: Option<NaiveDate>,
    pub availability: String,
    pub max_active_cohorts: i32,
    pub active: bool,
}

pub fn insert(
    conn: &mut DbConnection,
    fields: &FacilitatorFields,
    now: NaiveDateTime,
) -> QueryResult<i64> {
    per_backend!(conn, |c| diesel::insert_into(facilitators::table)
        .values((
            fields,
            facilitators::created_at.eq(now),
            facilitators::updated_at.eq(now),
        ))
        .returning(facilitators::id)
        .get_result(c))
}

pub fn update(
    conn: &mut DbConnection,
    id: i64,
    fields: &FacilitatorFields,
    now: NaiveDateTime,
) -> QueryResult<()> {
    diesel::update(facilitators::table.find(id))
        .set((fields, facilitators::updated_at.eq(now)))
        .execute(conn)
        .map(|_| ())
}

pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<FacilitatorRow> {
    facilitators::table.find(id).first(conn)
}

pub fn exists(conn: &mut DbConnection, id: i64) -> QueryResult<bool> {
    facilitators::table
        .find(id)
        .select(facilitators::id)
        .first::<i64>(conn)
        .optional()
        .map(|found| found.is_some())
}

pub fn email_taken(conn: &mut DbConnection, email: &str, except: Option<i64>) -> QueryResult<bool> {
    let mut query = facilitators::table
        .filter(facilitators::email.eq(email))
        .select(facilitators::id)
        .into_boxed();
    if let Some(id) = except {
        query = query.filter(facilitators::id.ne(id));
    }
    query
        .first::<i64>(conn)
        .optional()
        .map(|found| found.is_some())
}

pub fn list(conn: &mut DbConnection, active: Option<bool>) -> QueryResult<Vec<FacilitatorRow>> {
    let mut query = facilitators::table.order(facilitators::id).into_boxed();
    if let Some(active) = active {
        query = query.filter(facilitators::active.eq(active));
    }
    query.load(conn)
}
