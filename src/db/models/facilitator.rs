//! Facilitators: credentials, training, licence and weekly availability.

use crate::db::schema::{facilitator_programs, facilitators};
use crate::db::DbConnection;
use crate::per_backend;
use chrono::{NaiveDate, NaiveDateTime};
use diesel::prelude::*;
use std::collections::HashMap;

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

/// Facilitators by id; `programs: Some(ids)` keeps those serving one of these programs
/// (a lead's pool), `None` is the whole pool (an admin's).
pub fn list(
    conn: &mut DbConnection,
    active: Option<bool>,
    programs: Option<&[i64]>,
) -> QueryResult<Vec<FacilitatorRow>> {
    let mut query = facilitators::table.order(facilitators::id).into_boxed();
    if let Some(active) = active {
        query = query.filter(facilitators::active.eq(active));
    }
    if let Some(programs) = programs {
        query = query.filter(
            facilitators::id.eq_any(
                facilitator_programs::table
                    .filter(facilitator_programs::program_id.eq_any(programs.to_vec()))
                    .select(facilitator_programs::facilitator_id),
            ),
        );
    }
    query.load(conn)
}

/// The programs each of `ids` serves, in id order (a facilitator serving none has no
/// entry). One query.
pub fn programs_of(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<HashMap<i64, Vec<i64>>> {
    let mut out: HashMap<i64, Vec<i64>> = HashMap::new();
    for chunk in ids.chunks(500) {
        let rows: Vec<(i64, i64)> = facilitator_programs::table
            .filter(facilitator_programs::facilitator_id.eq_any(chunk.to_vec()))
            .select((
                facilitator_programs::facilitator_id,
                facilitator_programs::program_id,
            ))
            .order((
                facilitator_programs::facilitator_id,
                facilitator_programs::program_id,
            ))
            .load(conn)?;
        for (facilitator_id, program_id) in rows {
            out.entry(facilitator_id).or_default().push(program_id);
        }
    }
    Ok(out)
}

/// The programs one facilitator serves, in id order.
pub fn programs_of_one(conn: &mut DbConnection, id: i64) -> QueryResult<Vec<i64>> {
    facilitator_programs::table
        .filter(facilitator_programs::facilitator_id.eq(id))
        .select(facilitator_programs::program_id)
        .order(facilitator_programs::program_id)
        .load(conn)
}

/// Replaces the programs a facilitator serves.
pub fn set_programs(conn: &mut DbConnection, id: i64, programs: &[i64]) -> QueryResult<()> {
    diesel::delete(facilitator_programs::table.filter(facilitator_programs::facilitator_id.eq(id)))
        .execute(conn)?;
    let rows: Vec<_> = programs
        .iter()
        .map(|program| {
            (
                facilitator_programs::facilitator_id.eq(id),
                facilitator_programs::program_id.eq(*program),
            )
        })
        .collect();
    if !rows.is_empty() {
        per_backend!(conn, |c| diesel::insert_into(facilitator_programs::table)
            .values(&rows)
            .execute(c))?;
    }
    Ok(())
}
