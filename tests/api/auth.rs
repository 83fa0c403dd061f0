use crate::helpers::{error_body, spawn_app, spawn_app_with};
use chrono::Utc;
use diesel::prelude::*;
use reqwest::Method;
use serde_json::{json, Value};

#[tokio::test]
async fn login_with_the_right_password_returns_a_token_and_the_user() {
    let app = spawn_app().await;
    let program = app.create_program("Evening group").await;
    let (id, token) = app.create_user("program_lead", &[program]).await;
    let me: Value = app
        .get("/api/v1/me", &token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["id"], id);
    assert_eq!(me["role"], "program_lead");
    assert_eq!(me["program_ids"], json!([program]));
}

#[tokio::test]
async fn login_with_a_wrong_password_or_unknown_email_is_refused() {
    let app = spawn_app().await;
    for (email, password) in [
        ("admin@localhost", "not the password"),
        ("nobody@example.org", "whatever it is"),
    ] {
        let response = app
            .request(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(&json!({"email": email, "password": password})),
            )
            .await;
        let body = error_body(response, 401).await;
        assert_eq!(body["error"]["code"], "unauthorized");
        assert!(body.get("token").is_none());
    }
}

#[tokio::test]
async fn api_calls_without_a_valid_token_are_refused() {
    let app = spawn_app().await;
    let anonymous = app.request(Method::GET, "/api/v1/me", None, None).await;
    assert_eq!(anonymous.status(), 401);
    assert_eq!(
        anonymous
            .headers()
            .get("www-authenticate")
            .map(|v| v.as_bytes()),
        Some(&b"Bearer"[..])
    );
    let forged = app.get("/api/v1/programs", "coh_forged-token").await;
    error_body(forged, 401).await;
}

#[tokio::test]
async fn an_expired_token_is_refused_even_just_after_it_was_accepted() {
    // A cache that would keep the token for a minute must still drop it when it expires.
    let app = spawn_app_with(|s| s.auth_cache_millis = 60_000).await;
    let program = app.create_program("Evening group").await;
    let (_, token) = app.create_user("program_lead", &[program]).await;

    use cohorts::db::schema::api_tokens;
    // Expiring in a moment: accepted now (and remembered by the token cache), refused
    // once the moment has passed, though the cache keeps entries for longer.
    let soon = Utc::now().naive_utc() + chrono::Duration::milliseconds(1_500);
    diesel::update(
        api_tokens::table
            .filter(api_tokens::token_hash.eq(cohorts::service::auth::hash_token(&token))),
    )
    .set(api_tokens::expires_at.eq(soon))
    .execute(&mut app.conn())
    .expect("expire token");
    assert_eq!(app.get("/api/v1/me", &token).await.status(), 200);
    // Stored times are compared to the second: wait until `soon` is surely past.
    let past_soon = soon + chrono::Duration::milliseconds(1_100) - Utc::now().naive_utc();
    tokio::time::sleep(past_soon.to_std().unwrap_or_default()).await;
    assert_eq!(app.get("/api/v1/me", &token).await.status(), 401);
}

#[tokio::test]
async fn logout_revokes_the_token() {
    let app = spawn_app().await;
    let program = app.create_program("Evening group").await;
    let (_, token) = app.create_user("program_lead", &[program]).await;
    assert_eq!(app.get("/api/v1/me", &token).await.status(), 200);
    let response = app.post("/api/v1/auth/logout", &token, &json!({})).await;
    assert_eq!(response.status(), 204);
    assert_eq!(app.get("/api/v1/me", &token).await.status(), 401);
}

#[tokio::test]
async fn an_admin_can_revoke_every_token_of_a_user() {
    let app = spawn_app().await;
    let program = app.create_program("Evening group").await;
    let (id, token) = app.create_user("program_lead", &[program]).await;
    assert_eq!(app.get("/api/v1/me", &token).await.status(), 200);
    let response = app
        .post(
            &format!("/api/v1/users/{id}/revoke-tokens"),
            &app.admin_token,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(app.get("/api/v1/me", &token).await.status(), 401);
    // A lead cannot do it.
    let (_, other) = app.create_user("program_lead", &[program]).await;
    let refused = app
        .post(
            &format!("/api/v1/users/{id}/revoke-tokens"),
            &other,
            &json!({}),
        )
        .await;
    assert_eq!(refused.status(), 403);
}

#[tokio::test]
async fn repeated_failed_logins_lock_the_account_with_429() {
    let app = spawn_app().await;
    for _ in 0..5 {
        assert_eq!(login_attempt(&app, "wrong password!").await.status(), 401);
    }
    // Now even the right password waits: the lock protects against guessing.
    let locked = login_attempt(&app, "wrong password!").await;
    assert_eq!(locked.status(), 429);
    let retry_after: i64 = locked
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After header");
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    // Other accounts are unaffected.
    let program = app.create_program("Evening group").await;
    app.create_user("program_lead", &[program]).await;
}

async fn login_attempt(app: &crate::helpers::TestApp, password: &str) -> reqwest::Response {
    app.request(
        Method::POST,
        "/api/v1/auth/login",
        None,
        Some(&json!({"email": "admin@localhost", "password": password})),
    )
    .await
}
