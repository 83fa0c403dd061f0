//! Who is acting, and how they prove it: passwords, bearer tokens and the lockout rule.

use crate::db::models::user::{self as users, Role, UserRow};
use crate::db::{self as database, write_transaction, DbConnection};
use crate::error::{AppError, AppResult};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use base64::Engine;
use chrono::{Duration, NaiveDateTime};
use rand::RngCore;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Failed logins allowed before the account is locked for a while.
const FREE_ATTEMPTS: i32 = 5;
const MAX_LOCK_SECS: i64 = 15 * 60;

pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|error| anyhow::anyhow!("hashing a password: {error}"))
}

pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false)
}

/// A new opaque bearer token; only its SHA-256 is stored.
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    format!(
        "coh_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// Tokens are 256 random bits, so a fast hash is enough (no need for a slow KDF).
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A signed-in user, as every use case sees them: who they are and what they may reach.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub program_ids: Vec<i64>,
    pub facilitator_id: Option<i64>,
}

impl Actor {
    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    pub fn require_admin(&self) -> AppResult<()> {
        if self.is_admin() {
            Ok(())
        } else {
            Err(AppError::Forbidden("only an admin can do this".into()))
        }
    }

    pub fn require_lead_or_admin(&self) -> AppResult<()> {
        match self.role {
            Role::Admin | Role::ProgramLead => Ok(()),
            Role::Facilitator => Err(AppError::Forbidden(
                "only a program lead or an admin can do this".into(),
            )),
        }
    }

    /// Admins reach every program; everyone else only the programs they are scoped to.
    pub fn can_read_program(&self, program_id: i64) -> bool {
        self.is_admin() || self.program_ids.contains(&program_id)
    }

    pub fn require_program(&self, program_id: i64) -> AppResult<()> {
        if self.can_read_program(program_id) {
            Ok(())
        } else {
            Err(AppError::Forbidden(format!(
                "you do not have access to program {program_id}"
            )))
        }
    }

    /// A lead of this program (or an admin): may change what happens in it.
    pub fn require_lead_of(&self, program_id: i64) -> AppResult<()> {
        self.require_lead_or_admin()?;
        self.require_program(program_id)
    }

    /// Read access shared by cohorts and patients: a facilitator passes when `holds`
    /// says their facilitator record holds the thing; anyone else must lead `program_id`.
    pub fn require_reader(
        &self,
        program_id: i64,
        holds: impl FnOnce(i64) -> AppResult<bool>,
        refusal: &str,
    ) -> AppResult<()> {
        if self.role != Role::Facilitator {
            return self.require_lead_of(program_id);
        }
        let allowed = match self.facilitator_id {
            Some(facilitator_id) => holds(facilitator_id)?,
            None => false,
        };
        if allowed {
            Ok(())
        } else {
            Err(AppError::Forbidden(refusal.into()))
        }
    }

    /// `None` = all programs.
    pub fn program_scope(&self) -> Option<Vec<i64>> {
        (!self.is_admin()).then(|| self.program_ids.clone())
    }
}

#[derive(Debug, Serialize)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub program_ids: Vec<i64>,
    pub facilitator_id: Option<i64>,
}

impl UserView {
    pub fn new(user: &UserRow, program_ids: Vec<i64>) -> UserView {
        UserView {
            id: user.id,
            email: user.email.clone(),
            name: user.name.clone(),
            role: user.role(),
            program_ids,
            facilitator_id: user.facilitator_id,
        }
    }
}

/// Checks a password with the lockout rules and issues a token: (token, expiry, user).
/// Shared by the API login and the pages' login form.
///
/// Argon2 runs outside any transaction, so a flood of logins never holds SQLite's write
/// lock: the user is read, the attempt counted (one conditional UPDATE), the password
/// verified, and only a success writes again, briefly.
pub fn authenticate(
    conn: &mut DbConnection,
    email: &str,
    password: &str,
    token_ttl_hours: i64,
) -> AppResult<(String, NaiveDateTime, UserView)> {
    let email = email.trim().to_lowercase();
    // No account has such an address (and PostgreSQL cannot compare text with a NUL).
    let lookup = if email.chars().any(|c| c.is_ascii_control()) {
        None
    } else {
        users::find_by_email(conn, &email)?
    };
    let Some(user) = lookup else {
        // Same work as a real check, so response time does not reveal which
        // addresses have accounts.
        let _ = verify_password(password, &DUMMY_HASH);
        return Err(AppError::Unauthorized);
    };
    reserve_attempt(conn, user.clone())?;
    if !verify_password(password, &user.password_hash) {
        // Counted already, before the check.
        return Err(AppError::Unauthorized);
    }
    let token = new_token();
    let token_hash = hash_token(&token);
    let ttl = Duration::hours(token_ttl_hours.max(1));
    let expires_at = database::now() + ttl;
    let view = write_transaction(conn, |conn| -> AppResult<UserView> {
        users::clear_failed_logins(conn, user.id)?;
        users::insert_token(conn, user.id, &token_hash, database::now(), expires_at)?;
        let programs = users::program_ids(conn, user.id)?;
        Ok(UserView::new(&user, programs))
    })?;
    Ok((token, expires_at, view))
}

/// Counts this attempt as a failure before the password is checked (a success resets
/// the count), and sets the lock the count brings at once: of any number of parallel
/// attempts, at most `FREE_ATTEMPTS` are checked before the account is locked.
fn reserve_attempt(conn: &mut DbConnection, mut user: UserRow) -> AppResult<()> {
    // Each lost race means another attempt counted; the lock comes within
    // FREE_ATTEMPTS of them, so this bound is never reached in practice.
    for _ in 0..(4 * FREE_ATTEMPTS) {
        let now = database::now();
        if let Some(until) = user.locked_until.filter(|until| *until > now) {
            return Err(AppError::TooManyRequests {
                retry_after_secs: (until - now).num_seconds().max(1),
            });
        }
        let failures = user.failed_logins + 1;
        let lock = lock_until(failures, now).or(user.locked_until);
        if users::reserve_login_attempt(conn, user.id, user.failed_logins, lock, now)? {
            return Ok(());
        }
        user = users::find(conn, user.id)?;
    }
    Err(AppError::TooManyRequests {
        retry_after_secs: 1,
    })
}

/// After the free attempts, each further failure doubles the lock, up to 15 minutes.
fn lock_until(failures: i32, now: NaiveDateTime) -> Option<NaiveDateTime> {
    if failures < FREE_ATTEMPTS {
        return None;
    }
    let doublings = (failures - FREE_ATTEMPTS).min(10) as u32;
    let seconds = (30_i64 << doublings).min(MAX_LOCK_SECS);
    Some(now + Duration::seconds(seconds))
}

/// A real Argon2id hash of a random password, computed once, for unknown addresses.
static DUMMY_HASH: std::sync::LazyLock<String> =
    std::sync::LazyLock::new(|| hash_password(&new_token()).unwrap_or_default());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip() {
        let hash = hash_password("correct horse battery").expect("hash");
        assert!(verify_password("correct horse battery", &hash));
        assert!(!verify_password("wrong", &hash));
        assert!(!verify_password("anything", "not a hash"));
    }

    #[test]
    fn lock_grows_and_is_capped() {
        let now = database::now();
        assert_eq!(lock_until(4, now), None);
        assert_eq!(lock_until(5, now), Some(now + Duration::seconds(30)));
        assert_eq!(lock_until(6, now), Some(now + Duration::seconds(60)));
        assert_eq!(
            lock_until(40, now),
            Some(now + Duration::seconds(MAX_LOCK_SECS))
        );
    }
}
