//! Patients, their consent history, dosings and exclusions.

use crate::db::schema::{
    cohort_facilitators, cohort_members, consent_events, dosings, exclusions, patients,
};
use crate::db::DbConnection;
use crate::per_backend;
use chrono::NaiveDateTime;
use diesel::prelude::*;

#[derive(Debug, Clone, Queryable)]
pub struct PatientRow {
    pub id: i64,
    pub program_id: i64,
    pub name: String,
    pub email: String,
    pub timezone: Option<String>,
    pub email_consent: bool,
    pub consent_changed_at: Option<NaiveDateTime>,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = patients)]
pub struct NewPatient {
    pub program_id: i64,
    pub name: String,
    pub email: String,
    pub timezone: Option<String>,
    pub email_consent: bool,
    pub consent_changed_at: Option<NaiveDateTime>,
    pub status: String,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = patients, treat_none_as_null = true)]
pub struct PatientChanges {
    pub name: String,
    pub email: String,
    pub timezone: Option<String>,
    pub email_consent: bool,
    pub consent_changed_at: Option<NaiveDateTime>,
    pub status: String,
    pub updated_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable)]
pub struct DosingRow {
    pub id: i64,
    pub patient_id: i64,
    pub dosed_at: NaiveDateTime,
    pub utc_offset_minutes: i32,
    pub modality: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = dosings)]
pub struct NewDosing {
    pub patient_id: i64,
    pub dosed_at: NaiveDateTime,
    pub utc_offset_minutes: i32,
    pub modality: String,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable)]
pub struct ConsentEventRow {
    pub id: i64,
    pub patient_id: i64,
    pub email_consent: bool,
    pub source: String,
    pub at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = consent_events)]
pub struct NewConsentEvent<'a> {
    pub patient_id: i64,
    pub email_consent: bool,
    pub source: &'a str,
    pub at: NaiveDateTime,
}

#[derive(Debug, Clone, Queryable)]
pub struct ExclusionRow {
    pub id: i64,
    pub program_id: i64,
    pub patient_id: i64,
    pub other_patient_id: Option<i64>,
    pub facilitator_id: Option<i64>,
    pub note: Option<String>,
    pub created_at: NaiveDateTime,
}

#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = exclusions)]
pub struct NewExclusion {
    pub program_id: i64,
    pub patient_id: i64,
    pub other_patient_id: Option<i64>,
    pub facilitator_id: Option<i64>,
    pub note: Option<String>,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, patient: &NewPatient) -> QueryResult<i64> {
    per_backend!(conn, |c| diesel::insert_into(patients::table)
        .values(patient)
        .returning(patients::id)
        .get_result(c))
}

/// Rows per multi-row INSERT: well under SQLite's bound-parameter limit.
const BATCH_ROWS: usize = 500;

pub fn insert_many(conn: &mut DbConnection, rows: &[NewPatient]) -> QueryResult<()> {
    for chunk in rows.chunks(BATCH_ROWS) {
        per_backend!(conn, |c| diesel::insert_into(patients::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

pub fn insert_dosings(conn: &mut DbConnection, rows: &[NewDosing]) -> QueryResult<()> {
    for chunk in rows.chunks(BATCH_ROWS) {
        per_backend!(conn, |c| diesel::insert_into(dosings::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

pub fn insert_consent_events(
    conn: &mut DbConnection,
    rows: &[NewConsentEvent<'_>],
) -> QueryResult<()> {
    for chunk in rows.chunks(BATCH_ROWS) {
        per_backend!(conn, |c| diesel::insert_into(consent_events::table)
            .values(chunk)
            .execute(c))?;
    }
    Ok(())
}

pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<PatientRow> {
    patients::table.find(id).first(conn)
}

pub fn find_many(conn: &mut DbConnection, ids: &[i64]) -> QueryResult<Vec<PatientRow>> {
    patients::table
        .filter(patients::id.eq_any(ids.to_vec()))
        .order(patients::id)
        .load(conn)
}

pub fn email_taken(
    conn: &mut DbConnection,
    program_id: i64,
    email: &str,
    except: Option<i64>,
) -> QueryResult<bool> {
    let mut query = patients::table
        .filter(patients::program_id.eq(program_id))
        .filter(patients::email.eq(email))
        .select(patients::id)
        .into_boxed();
    if let Some(id) = except {
        query = query.filter(patients::id.ne(id));
    }
    query
        .first::<i64>(conn)
        .optional()
        .map(|found| found.is_some())
}

/// Emails already used in a program, among `emails`.
pub fn existing_emails(
    conn: &mut DbConnection,
    program_id: i64,
    emails: &[String],
) -> QueryResult<Vec<String>> {
    let mut found = Vec::new();
    for chunk in emails.chunks(BATCH_ROWS) {
        found.extend(
            patients::table
                .filter(patients::program_id.eq(program_id))
                .filter(patients::email.eq_any(chunk.to_vec()))
                .select(patients::email)
                .load::<String>(conn)?,
        );
    }
    Ok(found)
}

/// (id, email) of a program's patients whose email is among `emails`.
pub fn ids_by_email(
    conn: &mut DbConnection,
    program_id: i64,
    emails: &[String],
) -> QueryResult<Vec<(i64, String)>> {
    let mut found = Vec::new();
    for chunk in emails.chunks(BATCH_ROWS) {
        found.extend(
            patients::table
                .filter(patients::program_id.eq(program_id))
                .filter(patients::email.eq_any(chunk.to_vec()))
                .select((patients::id, patients::email))
                .load::<(i64, String)>(conn)?,
        );
    }
    Ok(found)
}

/// One page of a program's patients in id order (keyset pagination: stable under
/// inserts, and as fast on the last page as on the first).
pub fn page(
    conn: &mut DbConnection,
    program_id: i64,
    status: Option<&str>,
    after: Option<i64>,
    limit: i64,
) -> QueryResult<Vec<PatientRow>> {
    let mut query = patients::table
        .filter(patients::program_id.eq(program_id))
        .into_boxed();
    if let Some(status) = status {
        query = query.filter(patients::status.eq(status.to_string()));
    }
    if let Some(after) = after {
        query = query.filter(patients::id.gt(after));
    }
    query.order(patients::id).limit(limit).load(conn)
}

pub fn update(conn: &mut DbConnection, id: i64, changes: &PatientChanges) -> QueryResult<()> {
    diesel::update(patients::table.find(id))
        .set(changes)
        .execute(conn)
        .map(|_| ())
}

pub fn set_status(
    conn: &mut DbConnection,
    ids: &[i64],
    status: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(patients::table.filter(patients::id.eq_any(ids.to_vec())))
        .set((patients::status.eq(status), patients::updated_at.eq(now)))
        .execute(conn)
}

pub fn dosings_of(conn: &mut DbConnection, patient_ids: &[i64]) -> QueryResult<Vec<DosingRow>> {
    dosings::table
        .filter(dosings::patient_id.eq_any(patient_ids.to_vec()))
        .order((dosings::patient_id, dosings::dosed_at, dosings::id))
        .load(conn)
}

pub fn consent_history(
    conn: &mut DbConnection,
    patient_id: i64,
) -> QueryResult<Vec<ConsentEventRow>> {
    consent_events::table
        .filter(consent_events::patient_id.eq(patient_id))
        .order(consent_events::id)
        .load(conn)
}

pub fn insert_dosing(conn: &mut DbConnection, dosing: &NewDosing) -> QueryResult<i64> {
    per_backend!(conn, |c| diesel::insert_into(dosings::table)
        .values(dosing)
        .returning(dosings::id)
        .get_result(c))
}

pub fn insert_exclusion(conn: &mut DbConnection, exclusion: &NewExclusion) -> QueryResult<i64> {
    per_backend!(conn, |c| diesel::insert_into(exclusions::table)
        .values(exclusion)
        .returning(exclusions::id)
        .get_result(c))
}

/// Exclusions that involve a patient, from either side of a pair.
pub fn exclusions_of(conn: &mut DbConnection, patient_id: i64) -> QueryResult<Vec<ExclusionRow>> {
    exclusions::table
        .filter(
            exclusions::patient_id
                .eq(patient_id)
                .or(exclusions::other_patient_id.eq(patient_id)),
        )
        .order(exclusions::id)
        .load(conn)
}

pub fn exclusions_in_program(
    conn: &mut DbConnection,
    program_id: i64,
) -> QueryResult<Vec<ExclusionRow>> {
    exclusions::table
        .filter(exclusions::program_id.eq(program_id))
        .order(exclusions::id)
        .load(conn)
}

pub fn delete_exclusion(conn: &mut DbConnection, id: i64) -> QueryResult<usize> {
    diesel::delete(exclusions::table.find(id)).execute(conn)
}

/// Whether a facilitator holds (or held) any cohort this patient is or was in.
pub fn facilitated_by(
    conn: &mut DbConnection,
    patient_id: i64,
    facilitator_id: i64,
) -> QueryResult<bool> {
    cohort_members::table
        .inner_join(
            cohort_facilitators::table
                .on(cohort_facilitators::cohort_id.eq(cohort_members::cohort_id)),
        )
        .filter(cohort_members::patient_id.eq(patient_id))
        .filter(cohort_facilitators::facilitator_id.eq(facilitator_id))
        .select(cohort_members::id)
        .first::<i64>(conn)
        .optional()
        .map(|found| found.is_some())
}
