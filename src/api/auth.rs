//! Login, logout, the current user, and the bearer-token extractor.

use super::{db, AppState, Json};
use crate::db::models::user::{self as users, Role, UserRow};
use crate::db::{self as database, write_transaction};
use crate::error::{AppError, AppResult};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, SaltString};
use argon2::{Argon2, PasswordVerifier};
use base64::Engine;
use chrono::{Duration, NaiveDateTime};
use futures_util::future::LocalBoxFuture;
use rand::RngCore;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration as StdDuration, Instant};

/// Failed logins allowed before the account is locked for a while.
const FREE_ATTEMPTS: i32 = 5;
const MAX_LOCK_SECS: i64 = 15 * 60;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/auth/login", web::post().to(login))
        .route("/auth/logout", web::post().to(logout))
        .route("/me", web::get().to(me));
}

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

/// Who is calling, resolved from `Authorization: Bearer …` on every request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub id: i64,
    pub email: String,
    pub name: String,
    pub role: Role,
    pub program_ids: Vec<i64>,
    pub facilitator_id: Option<i64>,
    token_hash: String,
}

impl CurrentUser {
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

impl FromRequest for CurrentUser {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(|token| token.trim().to_string());
        Box::pin(async move {
            let state = state.ok_or_else(|| anyhow::anyhow!("application state missing"))?;
            CurrentUser::from_token(&state, &token.ok_or(AppError::Unauthorized)?).await
        })
    }
}

impl CurrentUser {
    /// Resolves a token (from the header, or the pages' signed session cookie).
    pub async fn from_token(state: &web::Data<AppState>, token: &str) -> AppResult<CurrentUser> {
        let token_hash = hash_token(token);
        let now = Instant::now();
        if let Some(user) = state.tokens.get(&token_hash, now) {
            return Ok(user);
        }
        let generation = state.tokens.generation();
        let (user, valid_for) = db(state, move |conn| {
            let (user, program_ids, expires_at) =
                users::find_by_token(conn, &token_hash, database::now())?
                    .ok_or(AppError::Unauthorized)?;
            let user = CurrentUser {
                id: user.id,
                role: user.role(),
                email: user.email,
                name: user.name,
                program_ids,
                facilitator_id: user.facilitator_id,
                token_hash,
            };
            // Measured on the precise clock (`database::now` is truncated to the second),
            // so a cached entry never outlives its token.
            let valid_for = expires_at - chrono::Utc::now().naive_utc();
            Ok((user, valid_for.to_std().unwrap_or_default()))
        })
        .await?;
        state.tokens.keep(&user, valid_for, generation, now);
        Ok(user)
    }
}

/// Tokens resolved a moment ago, so an authenticated request makes one trip to the
/// blocking pool (the handler's) instead of two. Revoking on this instance forgets at
/// once; another instance sharing the database (PostgreSQL) stops honouring a revoked
/// token within `ttl`. A zero `ttl` turns the cache off.
pub struct TokenCache {
    ttl: StdDuration,
    state: Mutex<CacheState>,
}

#[derive(Default)]
struct CacheState {
    /// Bumped by every revocation: a lookup that began before it is not cached.
    generation: u64,
    entries: HashMap<String, (CurrentUser, Instant)>,
}

/// Entries at most; beyond this, expired ones go, then all.
const TOKEN_CACHE_MAX: usize = 10_000;

impl TokenCache {
    pub fn new(ttl: StdDuration) -> TokenCache {
        TokenCache {
            ttl,
            state: Mutex::new(CacheState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, CacheState> {
        // A panic while holding the lock cannot leave a half-written entry behind.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn get(&self, token_hash: &str, now: Instant) -> Option<CurrentUser> {
        let state = self.lock();
        let (user, until) = state.entries.get(token_hash)?;
        (now < *until).then(|| user.clone())
    }

    pub fn generation(&self) -> u64 {
        self.lock().generation
    }

    /// Keeps a resolved user for `ttl`, never past the token's own expiry, unless a
    /// revocation happened since the lookup began (`generation`).
    pub fn keep(&self, user: &CurrentUser, valid_for: StdDuration, generation: u64, now: Instant) {
        if self.ttl.is_zero() {
            return;
        }
        let mut state = self.lock();
        if state.generation != generation {
            return;
        }
        if state.entries.len() >= TOKEN_CACHE_MAX {
            state.entries.retain(|_, (_, until)| now < *until);
            if state.entries.len() >= TOKEN_CACHE_MAX {
                state.entries.clear();
            }
        }
        let until = now + self.ttl.min(valid_for);
        state
            .entries
            .insert(user.token_hash.clone(), (user.clone(), until));
    }

    /// After tokens were revoked (and committed): nothing cached survives.
    pub fn forget_all(&self) {
        let mut state = self.lock();
        state.generation += 1;
        state.entries.clear();
    }
}

/// Logs a token out: revoked in the database, forgotten by this instance's cache.
pub async fn revoke(state: &web::Data<AppState>, token_hash: String) -> AppResult<()> {
    db(state, move |conn| {
        users::revoke_token(conn, &token_hash, database::now())?;
        Ok(())
    })
    .await?;
    state.tokens.forget_all();
    Ok(())
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

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LoginRequest {
    email: String,
    password: String,
}

#[derive(Serialize)]
struct LoginResponse {
    token: String,
    expires_at: chrono::DateTime<chrono::Utc>,
    user: UserView,
}

enum LoginOutcome {
    Success(UserView),
    WrongCredentials,
    Locked { retry_after_secs: i64 },
}

async fn login(state: web::Data<AppState>, body: Json<LoginRequest>) -> AppResult<HttpResponse> {
    let LoginRequest { email, password } = body.0;
    let (token, expires_at, user) = authenticate(&state, email, password).await?;
    Ok(HttpResponse::Ok().json(LoginResponse {
        token,
        expires_at: expires_at.and_utc(),
        user,
    }))
}

/// Checks a password with the lockout rules and issues a token: (token, expiry, user).
/// Shared by the API login and the pages' login form.
pub async fn authenticate(
    state: &web::Data<AppState>,
    email: String,
    password: String,
) -> AppResult<(String, NaiveDateTime, UserView)> {
    let email = email.trim().to_lowercase();
    let token = new_token();
    let token_hash = hash_token(&token);
    let ttl = Duration::hours(state.settings.token_ttl_hours.max(1));
    let expires_at = database::now() + ttl;

    let outcome = db(state, move |conn| {
        write_transaction(conn, |conn| -> AppResult<LoginOutcome> {
            let now = database::now();
            let Some(user) = users::find_by_email(conn, &email)? else {
                // Same work as a real check, so response time does not reveal which
                // addresses have accounts.
                let _ = verify_password(&password, &DUMMY_HASH);
                return Ok(LoginOutcome::WrongCredentials);
            };
            if let Some(until) = user.locked_until.filter(|until| *until > now) {
                return Ok(LoginOutcome::Locked {
                    retry_after_secs: (until - now).num_seconds().max(1),
                });
            }
            if !verify_password(&password, &user.password_hash) {
                let failures = user.failed_logins + 1;
                users::record_failed_login(conn, user.id, failures, lock_until(failures, now))?;
                return Ok(LoginOutcome::WrongCredentials);
            }
            users::clear_failed_logins(conn, user.id)?;
            users::insert_token(conn, user.id, &token_hash, now, expires_at)?;
            let programs = users::program_ids(conn, user.id)?;
            Ok(LoginOutcome::Success(UserView::new(&user, programs)))
        })
    })
    .await?;

    match outcome {
        LoginOutcome::Success(user) => Ok((token, expires_at, user)),
        LoginOutcome::WrongCredentials => Err(AppError::Unauthorized),
        LoginOutcome::Locked { retry_after_secs } => {
            Err(AppError::TooManyRequests { retry_after_secs })
        }
    }
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

async fn logout(state: web::Data<AppState>, user: CurrentUser) -> AppResult<HttpResponse> {
    revoke(&state, user.token_hash).await?;
    Ok(HttpResponse::NoContent().finish())
}

async fn me(user: CurrentUser) -> HttpResponse {
    HttpResponse::Ok().json(UserView {
        id: user.id,
        email: user.email,
        name: user.name,
        role: user.role,
        program_ids: user.program_ids,
        facilitator_id: user.facilitator_id,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn someone(token_hash: &str) -> CurrentUser {
        CurrentUser {
            id: 7,
            email: "lead@example.org".into(),
            name: "Lead".into(),
            role: Role::ProgramLead,
            program_ids: vec![1],
            facilitator_id: None,
            token_hash: token_hash.into(),
        }
    }

    #[test]
    fn a_cached_token_lasts_the_ttl_and_never_past_its_expiry() {
        let cache = TokenCache::new(StdDuration::from_secs(2));
        let start = Instant::now();
        let generation = cache.generation();
        cache.keep(
            &someone("a"),
            StdDuration::from_secs(3600),
            generation,
            start,
        );
        cache.keep(
            &someone("b"),
            StdDuration::from_millis(500),
            generation,
            start,
        );
        let at = |millis| start + StdDuration::from_millis(millis);
        assert_eq!(cache.get("a", at(1_999)).map(|u| u.id), Some(7));
        assert!(cache.get("a", at(2_000)).is_none());
        assert!(cache.get("b", at(499)).is_some());
        assert!(
            cache.get("b", at(500)).is_none(),
            "the token itself expired"
        );
        assert!(cache.get("c", at(0)).is_none());
    }

    #[test]
    fn a_revocation_forgets_everything_and_outdates_lookups_in_flight() {
        let cache = TokenCache::new(StdDuration::from_secs(2));
        let now = Instant::now();
        let before = cache.generation();
        cache.keep(&someone("a"), StdDuration::from_secs(60), before, now);
        cache.forget_all();
        assert!(cache.get("a", now).is_none());
        // A lookup that read the database before the revocation must not cache it.
        cache.keep(&someone("a"), StdDuration::from_secs(60), before, now);
        assert!(cache.get("a", now).is_none());
        cache.keep(
            &someone("a"),
            StdDuration::from_secs(60),
            cache.generation(),
            now,
        );
        assert!(cache.get("a", now).is_some());
    }

    #[test]
    fn a_zero_ttl_caches_nothing() {
        let cache = TokenCache::new(StdDuration::ZERO);
        let now = Instant::now();
        cache.keep(
            &someone("a"),
            StdDuration::from_secs(60),
            cache.generation(),
            now,
        );
        assert!(cache.get("a", now).is_none());
    }

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
