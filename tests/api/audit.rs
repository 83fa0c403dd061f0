use crate::helpers::{error_body, spawn_app};
use serde_json::{json, Value};

async fn entries(app: &crate::helpers::TestApp, query: &str, token: &str) -> Vec<Value> {
    let response = app.get(&format!("/api/v1/audit{query}"), token).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    body["entries"].as_array().cloned().expect("entries")
}

#[tokio::test]
async fn every_write_is_audited_with_actor_and_changed_fields() {
    let app = spawn_app().await;
    let program = app.create_program("Evening group").await;
    let (lead_id, _) = app.create_user("program_lead", &[program]).await;
    app.patch(
        &format!("/api/v1/programs/{program}"),
        &app.admin_token,
        &json!({"cohort": {"max_size": 10}, "name": "Renamed"}),
    )
    .await;
    app.post(
        &format!("/api/v1/users/{lead_id}/revoke-tokens"),
        &app.admin_token,
        &json!({}),
    )
    .await;

    let program_log = entries(
        &app,
        &format!("?entity=program&id={program}"),
        &app.admin_token,
    )
    .await;
    let actions: Vec<&str> = program_log
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, vec!["update", "create"], "newest first");
    assert_eq!(
        program_log[0]["changed_fields"],
        json!(["cohort.max_size", "name"])
    );
    assert!(program_log[0]["actor_user_id"].is_i64());

    let user_log = entries(
        &app,
        &format!("?entity=user&id={lead_id}"),
        &app.admin_token,
    )
    .await;
    let actions: Vec<&str> = user_log
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, vec!["revoke_tokens", "create"]);
    let fields = user_log[1]["changed_fields"].to_string();
    assert!(
        !fields.contains("a long enough password"),
        "values are never logged"
    );
}

#[tokio::test]
async fn a_refused_write_leaves_no_audit_entry() {
    let app = spawn_app().await;
    let before = entries(&app, "", &app.admin_token).await.len();
    let response = app
        .post("/api/v1/programs", &app.admin_token, &json!({"name": "x"}))
        .await;
    assert_eq!(response.status(), 422);
    assert_eq!(entries(&app, "", &app.admin_token).await.len(), before);
}

#[tokio::test]
async fn a_lead_sees_the_audit_of_their_programs_only_and_a_facilitator_none() {
    let app = spawn_app().await;
    let mine = app.create_program("Mine").await;
    let theirs = app.create_program("Theirs").await;
    let (_, lead) = app.create_user("program_lead", &[mine]).await;
    let seen = entries(&app, "?entity=program", &lead).await;
    assert!(!seen.is_empty());
    assert!(
        seen.iter().all(|e| e["program_id"] == json!(mine)),
        "{seen:?}"
    );
    assert!(seen.iter().all(|e| e["entity_id"] != json!(theirs)));

    let (_, facilitator) = app.create_user("facilitator", &[mine]).await;
    error_body(app.get("/api/v1/audit", &facilitator).await, 403).await;
}
