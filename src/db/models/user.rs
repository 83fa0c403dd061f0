//! Users, their program scope and their API tokens.

use crate::db::schema::{api_tokens, user_programs, users};
use crate::db::DbConnection;
use crate::per_backend;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Admin,
    ProgramLead,
    Facilitator,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::ProgramLead => "program_lead",
            Role::Facilitator => "facilitator",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "admin" => Ok(Role::Admin),
            "program_lead" => Ok(Role::ProgramLead),
            "facilitator" => Ok(Role::Facilitator),
            other => Err(format!(
                "must be one of admin, program_lead, facilitator (got {other:?})"
            )),
        }
    }
}

#[derive(Debug, Clone, Queryable)]
pub struct UserRow {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: String,
    pub password_hash: String,
    pub facilitator_id: Option<i64>,
    pub failed_logins: i32,
    pub locked_until: Option<NaiveDateTime>,
    pub created_at: NaiveDateTime,
}

impl UserRow {
    pub fn role(&self) -> Role {
        // The column has a CHECK constraint; anything else is a corrupted row, which we
        // treat as the least privileged role rather than failing every request.
        self.role.parse().unwrap_or(Role::Facilitator)
    }
}

#[derive(Insertable)]
#[diesel(table_name = users)]
pub struct NewUser<'a> {
    pub email: &'a str,
    pub name: &'a str,
    pub role: &'a str,
    pub password_hash: &'a str,
    pub facilitator_id: Option<i64>,
    pub failed_logins: i32,
    pub created_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConnection, user: &NewUser<'_>) -> QueryResult<i64> {
    per_backend!(conn, |c| diesel::insert_into(users::table)
        .values(user)
        .returning(users::id)
        .get_result(c))
}

pub fn find(conn: &mut DbConnection, id: i64) -> QueryResult<UserRow> {
    users::table.find(id).first(conn)
}

pub fn find_by_email(conn: &mut DbConnection, email: &str) -> QueryResult<Option<UserRow>> {
    users::table
        .filter(users::email.eq(email))
        .first(conn)
        .optional()
}

pub fn list(conn: &mut DbConnection) -> QueryResult<Vec<UserRow>> {
    users::table.order(users::id).load(conn)
}

pub fn count(conn: &mut DbConnection) -> QueryResult<i64> {
    users::table.count().get_result(conn)
}

pub fn program_ids(conn: &mut DbConnection, user_id: i64) -> QueryResult<Vec<i64>> {
    user_programs::table
        .filter(user_programs::user_id.eq(user_id))
        .select(user_programs::program_id)
        .order(user_programs::program_id)
        .load(conn)
}

/// The program leads of a program (ids, in order): whom escalations reach.
pub fn leads_of(conn: &mut DbConnection, program_id: i64) -> QueryResult<Vec<i64>> {
    users::table
        .inner_join(user_programs::table)
        .filter(user_programs::program_id.eq(program_id))
        .filter(users::role.eq(Role::ProgramLead.as_str()))
        .select(users::id)
        .order(users::id)
        .load(conn)
}

pub fn add_programs(conn: &mut DbConnection, user_id: i64, programs: &[i64]) -> QueryResult<()> {
    for program_id in programs {
        diesel::insert_into(user_programs::table)
            .values((
                user_programs::user_id.eq(user_id),
                user_programs::program_id.eq(program_id),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// Counts one login attempt against an account that is not locked, if no other attempt
/// counted since its count was read as `seen_failures` (a compare-and-set: of parallel
/// attempts, exactly one wins each count). `locked_until` is the lock this count brings.
/// Returns whether this attempt was counted.
pub fn reserve_login_attempt(
    conn: &mut DbConnection,
    user_id: i64,
    seen_failures: i32,
    locked_until: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> QueryResult<bool> {
    diesel::update(
        users::table
            .find(user_id)
            .filter(users::failed_logins.eq(seen_failures))
            .filter(
                users::locked_until
                    .is_null()
                    .or(users::locked_until.le(now)),
            ),
    )
    .set((
        users::failed_logins.eq(seen_failures + 1),
        users::locked_until.eq(locked_until),
    ))
    .execute(conn)
    .map(|rows| rows == 1)
}

pub fn clear_failed_logins(conn: &mut DbConnection, user_id: i64) -> QueryResult<()> {
    diesel::update(users::table.find(user_id))
        .set((
            users::failed_logins.eq(0),
            users::locked_until.eq(None::<NaiveDateTime>),
        ))
        .execute(conn)
        .map(|_| ())
}

pub fn insert_token(
    conn: &mut DbConnection,
    user_id: i64,
    token_hash: &str,
    created_at: NaiveDateTime,
    expires_at: NaiveDateTime,
) -> QueryResult<()> {
    diesel::insert_into(api_tokens::table)
        .values((
            api_tokens::user_id.eq(user_id),
            api_tokens::token_hash.eq(token_hash),
            api_tokens::created_at.eq(created_at),
            api_tokens::expires_at.eq(expires_at),
        ))
        .execute(conn)
        .map(|_| ())
}

/// The user holding a live token (not expired, not revoked), their program ids, and when
/// the token expires, in one query: this runs whenever a token is not in the cache.
pub fn find_by_token(
    conn: &mut DbConnection,
    token_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<Option<(UserRow, Vec<i64>, NaiveDateTime)>> {
    let rows: Vec<(UserRow, Option<i64>, NaiveDateTime)> = api_tokens::table
        .inner_join(users::table.left_join(user_programs::table))
        .filter(api_tokens::token_hash.eq(token_hash))
        .filter(api_tokens::expires_at.gt(now))
        .filter(api_tokens::revoked_at.is_null())
        .select((
            users::all_columns,
            user_programs::program_id.nullable(),
            api_tokens::expires_at,
        ))
        .order(user_programs::program_id)
        .load(conn)?;
    let mut rows = rows.into_iter();
    let Some((user, first_program, expires_at)) = rows.next() else {
        return Ok(None);
    };
    let programs = first_program
        .into_iter()
        .chain(rows.filter_map(|(_, program, _)| program))
        .collect();
    Ok(Some((user, programs, expires_at)))
}

pub fn revoke_token(
    conn: &mut DbConnection,
    token_hash: &str,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        api_tokens::table
            .filter(api_tokens::token_hash.eq(token_hash))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(now))
    .execute(conn)
}

pub fn revoke_all_tokens(
    conn: &mut DbConnection,
    user_id: i64,
    now: NaiveDateTime,
) -> QueryResult<usize> {
    diesel::update(
        api_tokens::table
            .filter(api_tokens::user_id.eq(user_id))
            .filter(api_tokens::revoked_at.is_null()),
    )
    .set(api_tokens::revoked_at.eq(now))
    .execute(conn)
}
