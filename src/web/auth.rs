//! The bearer-token extractor and the per-instance cache of resolved tokens.

use super::{db, AppState};
use crate::db::models::user as users;
use crate::db::{self as database};
use crate::error::{AppError, AppResult};
use crate::service::auth::{hash_token, Actor};
use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use futures_util::future::LocalBoxFuture;
use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration as StdDuration, Instant};

/// Who is calling, resolved from `Authorization: Bearer …` (or the pages' signed session
/// cookie) on every request.
#[derive(Debug, Clone)]
pub struct CurrentUser {
    pub actor: Actor,
    pub(crate) token_hash: String,
}

impl std::ops::Deref for CurrentUser {
    type Target = Actor;

    fn deref(&self) -> &Actor {
        &self.actor
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
                actor: Actor {
                    id: user.id,
                    role: user.role(),
                    email: user.email,
                    name: user.name,
                    program_ids,
                    facilitator_id: user.facilitator_id,
                },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn someone(token_hash: &str) -> CurrentUser {
        CurrentUser {
            actor: Actor {
                id: 7,
                email: "lead@example.org".into(),
                name: "Lead".into(),
                role: crate::db::models::user::Role::ProgramLead,
                program_ids: vec![1],
                facilitator_id: None,
            },
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
}
