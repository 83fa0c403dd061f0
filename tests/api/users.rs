use crate::helpers::{assert_field_error, error_body, spawn_app};
use serde_json::{json, Value};

fn user(email: &str, role: &str) -> Value {
    json!({"email": email, "name": "Ana Staff", "role": role, "password": "a long enough password"})
}

#[tokio::test]
async fn only_an_admin_creates_users() {
    let app = spawn_app().await;
    let program = app.create_program("Evening group").await;
    let (_, lead) = app.create_user("program_lead", &[program]).await;
    let (_, facilitator) = app.create_user("facilitator", &[program]).await;
    for token in [&lead, &facilitator] {
        let response = app
            .post("/api/v1/users", token, &user("new@example.org", "admin"))
            .await;
        let body = error_body(response, 403).await;
        assert_eq!(body["error"]["code"], "forbidden");
    }
    let listed: Value = app
        .get("/api/v1/users", &app.admin_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed["users"].as_array().map(Vec::len),
        Some(3),
        "no user was added"
    );
}

#[tokio::test]
async fn user_fields_are_validated_and_named() {
    let app = spawn_app().await;
    let cases = [
        (json!({"email": "not-an-email"}), "email"),
        (json!({"role": "superuser"}), "role"),
        (json!({"password": "short"}), "password"),
        (json!({"name": "   "}), "name"),
        (
            json!({"role": "program_lead", "program_ids": []}),
            "program_ids",
        ),
        (
            json!({"role": "program_lead", "program_ids": [999]}),
            "program_ids",
        ),
        (
            json!({"role": "admin", "facilitator_id": 1}),
            "facilitator_id",
        ),
        (json!({"nickname": "x"}), "nickname"),
    ];
    for (change, field) in cases {
        let mut body = user("ok@example.org", "facilitator");
        for (key, value) in change.as_object().expect("object") {
            body[key] = value.clone();
        }
        let response = app.post("/api/v1/users", &app.admin_token, &body).await;
        assert_field_error(response, field).await;
    }
}

#[tokio::test]
async fn a_second_user_with_the_same_email_is_a_conflict() {
    let app = spawn_app().await;
    let first = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            &user("ana@example.org", "admin"),
        )
        .await;
    assert_eq!(first.status(), 201);
    let second = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            &user("ANA@example.org", "admin"),
        )
        .await;
    error_body(second, 409).await;
}
