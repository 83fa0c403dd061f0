//! The staff pages' session: a signed, HttpOnly cookie holding the same kind of token
//! the API issues (so logout revokes it and expiry is the API's), and a CSRF token
//! derived from it for every form.

use super::render::PageError;
use crate::service::auth::hash_token;
use crate::web::AppState;
use crate::web::CurrentUser;
use actix_web::cookie::{time::Duration as CookieDuration, Cookie, SameSite};
use actix_web::dev::Payload;
use actix_web::{web, FromRequest, HttpRequest};
use base64::Engine;
use futures_util::future::LocalBoxFuture;
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;

pub const SESSION_COOKIE: &str = "cohorts_session";
/// Holds a nonce between showing the login form and posting it (login CSRF).
pub const LOGIN_COOKIE: &str = "cohorts_login";

fn mac(key: &[u8], purpose: &str, data: &str) -> Option<Hmac<Sha256>> {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).ok()?;
    mac.update(purpose.as_bytes());
    mac.update(b"\0");
    mac.update(data.as_bytes());
    Some(mac)
}

/// Base64url HMAC-SHA256 of `data`, bound to a purpose so one tag never stands for another.
pub fn sign(key: &[u8], purpose: &str, data: &str) -> String {
    mac(key, purpose, data)
        .map(|m| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(m.finalize().into_bytes()))
        .unwrap_or_default()
}

/// Constant-time check of a tag made by `sign`.
pub fn verify(key: &[u8], purpose: &str, data: &str, tag: &str) -> bool {
    let Ok(tag) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(tag.trim()) else {
        return false;
    };
    mac(key, purpose, data).is_some_and(|m| m.verify_slice(&tag).is_ok())
}

pub fn session_value(key: &[u8], token: &str) -> String {
    format!("{token}.{}", sign(key, "session", token))
}

/// The token inside a session cookie, if its signature holds.
pub fn token_from_cookie(key: &[u8], value: &str) -> Option<String> {
    let (token, tag) = value.rsplit_once('.')?;
    verify(key, "session", token, tag).then(|| token.to_string())
}

/// The CSRF token of a session: a MAC of the token's hash, so it is stable for the
/// session and useless without the secret key.
pub fn csrf_for(key: &[u8], token: &str) -> String {
    sign(key, "csrf", &hash_token(token))
}

pub fn random_nonce() -> String {
    let mut bytes = [0u8; 18];
    rand::thread_rng().fill_bytes(&mut bytes);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn secure(state: &AppState) -> bool {
    state.settings.public_url.starts_with("https://")
}

pub fn session_cookie(state: &AppState, token: &str) -> Cookie<'static> {
    Cookie::build(SESSION_COOKIE, session_value(&state.secret_key, token))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure(state))
        .max_age(CookieDuration::hours(state.settings.token_ttl_hours.max(1)))
        .finish()
}

pub fn login_cookie(state: &AppState, nonce: &str) -> Cookie<'static> {
    Cookie::build(LOGIN_COOKIE, nonce.to_string())
        .path("/staff/login")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure(state))
        .max_age(CookieDuration::hours(2))
        .finish()
}

/// An expired cookie of the given name and path, which the browser drops.
pub fn removal(name: &'static str, path: &'static str) -> Cookie<'static> {
    let mut cookie = Cookie::build(name, "").path(path).http_only(true).finish();
    cookie.make_removal();
    cookie
}

/// A signed-in member of staff: the user as the API knows them, plus the session's
/// CSRF token for the forms of the page.
pub struct Staff {
    pub user: CurrentUser,
    pub csrf: String,
    pub token: String,
}

impl Staff {
    /// Refuses a form post whose CSRF token is missing or wrong (403).
    pub fn check_csrf(&self, key: &[u8], submitted: &str) -> Result<(), PageError> {
        if !submitted.is_empty() && verify(key, "csrf", &hash_token(&self.token), submitted) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }
}

/// Where to come back after signing in: a local path only (no open redirect).
pub fn local_path(next: Option<&str>) -> String {
    match next {
        Some(path)
            if path.starts_with("/staff")
                && !path.starts_with("//")
                && !path.contains('\\')
                && !path.chars().any(|c| c.is_ascii_control()) =>
        {
            path.to_string()
        }
        _ => "/staff".to_string(),
    }
}

impl FromRequest for Staff {
    type Error = PageError;
    type Future = LocalBoxFuture<'static, Result<Self, PageError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let cookie = req.cookie(SESSION_COOKIE).map(|c| c.value().to_string());
        let next = if req.method() == actix_web::http::Method::GET {
            req.uri()
                .path_and_query()
                .map(|p| p.as_str().to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Box::pin(async move {
            let state = state.ok_or_else(|| {
                PageError::App(anyhow::anyhow!("application state missing").into())
            })?;
            let login = || PageError::Login {
                next: local_path(Some(&next)),
            };
            let token = cookie
                .and_then(|value| token_from_cookie(&state.secret_key, &value))
                .ok_or_else(login)?;
            let user =
                CurrentUser::from_token(&state, &token)
                    .await
                    .map_err(|error| match error {
                        crate::error::AppError::Unauthorized => login(),
                        other => PageError::App(other),
                    })?;
            Ok(Staff {
                csrf: csrf_for(&state.secret_key, &token),
                user,
                token,
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"a key that is long enough for the tests, 0123456789";

    #[test]
    fn a_session_cookie_round_trips_and_rejects_tampering() {
        let value = session_value(KEY, "coh_abc");
        assert_eq!(token_from_cookie(KEY, &value).as_deref(), Some("coh_abc"));
        let forged = value.replace("coh_abc", "coh_abd");
        assert_eq!(token_from_cookie(KEY, &forged), None);
        assert_eq!(
            token_from_cookie(b"another key entirely, 0123456789abcdef", &value),
            None
        );
        assert_eq!(token_from_cookie(KEY, "no-signature"), None);
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session_and_purpose() {
        let csrf = csrf_for(KEY, "coh_one");
        assert!(verify(KEY, "csrf", &hash_token("coh_one"), &csrf));
        assert!(!verify(KEY, "csrf", &hash_token("coh_two"), &csrf));
        assert!(!verify(KEY, "session", &hash_token("coh_one"), &csrf));
        assert!(!verify(KEY, "csrf", &hash_token("coh_one"), ""));
    }

    #[test]
    fn only_local_staff_paths_are_followed_after_login() {
        assert_eq!(local_path(Some("/staff/cohorts/3")), "/staff/cohorts/3");
        assert_eq!(local_path(Some("https://evil.example")), "/staff");
        assert_eq!(local_path(Some("//evil.example")), "/staff");
        assert_eq!(local_path(None), "/staff");
    }
}
