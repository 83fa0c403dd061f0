//! Accounts: admins create them (the API, `cohorts user add`, the first start), and
//! their tokens can be revoked.

use crate::db::audit::{self, AuditEvent};
use crate::db::models::{program, user as users};
use crate::db::{self as database, write_transaction, DbConnection};
use crate::error::{AppError, AppResult, FieldErrors};
use crate::service::auth::{hash_password, new_token, Actor, UserView};
use crate::types::{required_text, EmailAddress};
use serde::Deserialize;

pub const MIN_PASSWORD_CHARS: usize = 12;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserRequest {
    pub email: String,
    pub name: String,
    pub role: String,
    pub password: String,
    #[serde(default)]
    pub program_ids: Vec<i64>,
    #[serde(default)]
    pub facilitator_id: Option<i64>,
}

/// A user request after every field has been checked.
pub struct ValidUser {
    pub email: EmailAddress,
    pub name: String,
    pub role: users::Role,
    pub password: String,
    pub program_ids: Vec<i64>,
    pub facilitator_id: Option<i64>,
}

impl TryFrom<NewUserRequest> for ValidUser {
    type Error = AppError;

    fn try_from(request: NewUserRequest) -> AppResult<ValidUser> {
        let mut errors = FieldErrors::new();
        let email = EmailAddress::parse(&request.email)
            .map_err(|e| errors.insert("email".into(), e))
            .ok();
        let name = required_text(&request.name, 200)
            .map_err(|e| errors.insert("name".into(), e))
            .ok();
        let role = request
            .role
            .parse::<users::Role>()
            .map_err(|e| errors.insert("role".into(), e))
            .ok();
        if request.password.chars().count() < MIN_PASSWORD_CHARS {
            errors.insert(
                "password".into(),
                format!("must be at least {MIN_PASSWORD_CHARS} characters"),
            );
        }
        if role == Some(users::Role::ProgramLead) && request.program_ids.is_empty() {
            errors.insert(
                "program_ids".into(),
                "a program lead needs at least one program".into(),
            );
        }
        if request.facilitator_id.is_some() && role != Some(users::Role::Facilitator) {
            errors.insert(
                "facilitator_id".into(),
                "only a user with role facilitator links to a facilitator".into(),
            );
        }
        AppError::check(errors)?;
        let mut program_ids = request.program_ids;
        program_ids.sort_unstable();
        program_ids.dedup();
        match (email, name, role) {
            (Some(email), Some(name), Some(role)) => Ok(ValidUser {
                email,
                name,
                role,
                password: request.password,
                program_ids,
                facilitator_id: request.facilitator_id,
            }),
            _ => Err(anyhow::anyhow!("user validation lost an error").into()),
        }
    }
}

/// Creates a user in one transaction; shared by the API and `cohorts user add`.
pub fn create_user(
    conn: &mut DbConnection,
    actor: Option<i64>,
    user: &ValidUser,
    password_hash: &str,
) -> AppResult<UserView> {
    write_transaction(conn, |conn| {
        let existing = program::existing_ids(conn, &user.program_ids)?;
        if existing.len() != user.program_ids.len() {
            let missing: Vec<String> = user
                .program_ids
                .iter()
                .filter(|id| !existing.contains(id))
                .map(i64::to_string)
                .collect();
            return Err(AppError::field(
                "program_ids",
                format!("no such program: {}", missing.join(", ")),
            ));
        }
        if let Some(facilitator_id) = user.facilitator_id {
            if !crate::db::models::facilitator::exists(conn, facilitator_id)? {
                return Err(AppError::field("facilitator_id", "no such facilitator"));
            }
        }
        if users::find_by_email(conn, user.email.as_str())?.is_some() {
            return Err(AppError::conflict("a user with this email already exists"));
        }
        let id = users::insert(
            conn,
            &users::NewUser {
                email: user.email.as_str(),
                name: &user.name,
                role: user.role.as_str(),
                password_hash,
                facilitator_id: user.facilitator_id,
                failed_logins: 0,
                created_at: database::now(),
            },
        )?;
        users::add_programs(conn, id, &user.program_ids)?;
        audit::record(
            conn,
            AuditEvent {
                actor_user_id: actor,
                action: "create",
                entity: "user",
                entity_id: id,
                program_id: None,
                changed_fields: [
                    "email",
                    "name",
                    "role",
                    "password",
                    "program_ids",
                    "facilitator_id",
                ]
                .map(String::from)
                .to_vec(),
                detail: None,
            },
        )?;
        let row = users::find(conn, id)?;
        Ok(UserView::new(&row, user.program_ids.clone()))
    })
}

/// Every user with their programs, for an admin.
pub fn list(conn: &mut DbConnection, actor: &Actor) -> AppResult<Vec<UserView>> {
    actor.require_admin()?;
    let rows = users::list(conn)?;
    rows.iter()
        .map(|row| Ok(UserView::new(row, users::program_ids(conn, row.id)?)))
        .collect()
}

/// Revokes every token of a user; returns how many were live.
pub fn revoke_tokens(conn: &mut DbConnection, actor: &Actor, user_id: i64) -> AppResult<usize> {
    actor.require_admin()?;
    write_transaction(conn, |conn| {
        users::find(conn, user_id)?;
        let revoked = users::revoke_all_tokens(conn, user_id, database::now())?;
        audit::record(
            conn,
            AuditEvent {
                actor_user_id: Some(actor.id),
                action: "revoke_tokens",
                entity: "user",
                entity_id: user_id,
                program_id: None,
                changed_fields: vec!["tokens".into()],
                detail: None,
            },
        )?;
        Ok(revoked)
    })
}

/// On a database with no users, creates an admin with a random password so the first
/// start leads straight to a working login: (email, one-time password).
pub fn ensure_initial_admin(
    conn: &mut DbConnection,
    email: &str,
) -> anyhow::Result<Option<(String, String)>> {
    if users::count(conn)? > 0 {
        return Ok(None);
    }
    let password = new_token()
        .trim_start_matches("coh_")
        .chars()
        .take(20)
        .collect::<String>();
    let user = ValidUser {
        email: EmailAddress::parse(email).map_err(|error| anyhow::anyhow!(error))?,
        name: "Administrator".into(),
        role: users::Role::Admin,
        password: password.clone(),
        program_ids: vec![],
        facilitator_id: None,
    };
    let hash = hash_password(&password)?;
    match create_user(conn, None, &user, &hash) {
        Ok(_) => Ok(Some((email.to_string(), password))),
        // Another instance created it first.
        Err(AppError::Conflict { .. }) => Ok(None),
        Err(error) => Err(anyhow::anyhow!("creating the first admin: {error}")),
    }
}
