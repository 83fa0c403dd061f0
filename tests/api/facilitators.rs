use crate::helpers::{assert_field_error, error_body, facilitator_body, spawn_app};
use serde_json::{json, Value};

#[tokio::test]
async fn a_lead_registers_a_facilitator_with_availability() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let mut body = facilitator_body("robin@example.org");
    body["program_ids"] = json!([program]);
    let response = app.post("/api/v1/facilitators", &lead, &body).await;
    assert_eq!(response.status(), 201);
    let created: Value = response.json().await.expect("json");
    assert_eq!(created["program_ids"], json!([program]));
    assert_eq!(created["credentials"], json!(["therapist"]));
    assert_eq!(
        created["availability"],
        json!([{"weekday": "tue", "start": "17:00", "end": "21:00"}])
    );
    assert_eq!(created["active"], true);
    assert_eq!(created["licence_expires_on"], "2030-01-01");
}

#[tokio::test]
async fn every_facilitator_rule_is_validated_with_its_field_named() {
    let app = spawn_app().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name": ""}), "name"),
        (json!({"email": "robin"}), "email"),
        (json!({"timezone": "Here/There"}), "timezone"),
        (json!({"credentials": []}), "credentials"),
        (json!({"credentials": ["shaman"]}), "credentials[0]"),
        (json!({"credentials": ["nurse", "nurse"]}), "credentials[1]"),
        (json!({"modalities": ["lsd"]}), "modalities[0]"),
        (json!({"modalities": []}), "modalities"),
        (
            json!({"licence_expires_on": "01/01/2030"}),
            "licence_expires_on",
        ),
        (
            json!({"availability": [{"weekday": "tue", "start": "21:00", "end": "17:00"}]}),
            "availability[0].end",
        ),
        (
            json!({"availability": [{"weekday": "funday", "start": "17:00", "end": "21:00"}]}),
            "availability[0].weekday",
        ),
        (
            json!({"availability": [{"weekday": "tue", "start": "5pm", "end": "21:00"}]}),
            "availability[0].start",
        ),
        (
            json!({"availability": [
                {"weekday": "tue", "start": "17:00", "end": "21:00"},
                {"weekday": "tue", "start": "20:00", "end": "22:00"}
            ]}),
            "availability[1].start",
        ),
        (json!({"max_active_cohorts": 0}), "max_active_cohorts"),
        (json!({"hourly_rate": 10}), "hourly_rate"),
    ];
    for (change, field) in cases {
        let mut body = facilitator_body("robin@example.org");
        for (key, value) in change.as_object().expect("object") {
            body[key] = value.clone();
        }
        assert_field_error(
            app.post("/api/v1/facilitators", &app.admin_token, &body)
                .await,
            field,
        )
        .await;
    }
    // Adjacent windows and a window to midnight are fine.
    let mut body = facilitator_body("robin@example.org");
    body["availability"] = json!([
        {"weekday": "tue", "start": "17:00", "end": "19:00"},
        {"weekday": "tue", "start": "19:00", "end": "00:00"}
    ]);
    assert_eq!(
        app.post("/api/v1/facilitators", &app.admin_token, &body)
            .await
            .status(),
        201
    );
}

#[tokio::test]
async fn patch_deactivates_and_revalidates() {
    let app = spawn_app().await;
    let id = app
        .create_facilitator(&facilitator_body("robin@example.org"))
        .await;
    let path = format!("/api/v1/facilitators/{id}");
    let updated: Value = app
        .patch(
            &path,
            &app.admin_token,
            &json!({"active": false, "credentials": ["therapist", "nurse"]}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(updated["active"], false);
    assert_eq!(updated["credentials"], json!(["therapist", "nurse"]));
    assert_field_error(
        app.patch(&path, &app.admin_token, &json!({"max_active_cohorts": -1}))
            .await,
        "max_active_cohorts",
    )
    .await;
    let second = app
        .create_facilitator(&facilitator_body("sam@example.org"))
        .await;
    error_body(
        app.patch(
            &format!("/api/v1/facilitators/{second}"),
            &app.admin_token,
            &json!({"email": "robin@example.org"}),
        )
        .await,
        409,
    )
    .await;
}

#[tokio::test]
async fn a_facilitator_user_reads_only_their_own_record() {
    let app = spawn_app().await;
    let program = app.create_program("Evening group").await;
    let mine = app
        .create_facilitator(&facilitator_body("robin@example.org"))
        .await;
    let other = app
        .create_facilitator(&facilitator_body("sam@example.org"))
        .await;
    let response = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            &json!({"email": "robin@example.org", "name": "Robin", "role": "facilitator",
                    "password": "a long enough password", "program_ids": [program], "facilitator_id": mine}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let token = app
        .login("robin@example.org", "a long enough password")
        .await;
    assert_eq!(
        app.get(&format!("/api/v1/facilitators/{mine}"), &token)
            .await
            .status(),
        200
    );
    error_body(
        app.get(&format!("/api/v1/facilitators/{other}"), &token)
            .await,
        403,
    )
    .await;
    error_body(app.get("/api/v1/facilitators", &token).await, 403).await;
    error_body(
        app.post(
            "/api/v1/facilitators",
            &token,
            &facilitator_body("x@example.org"),
        )
        .await,
        403,
    )
    .await;
    let me: Value = app
        .get("/api/v1/me", &token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(me["facilitator_id"], mine);
}

#[tokio::test]
async fn a_user_cannot_link_to_a_facilitator_that_does_not_exist() {
    let app = spawn_app().await;
    let response = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            &json!({"email": "robin@example.org", "name": "Robin", "role": "facilitator",
                    "password": "a long enough password", "facilitator_id": 42}),
        )
        .await;
    assert_field_error(response, "facilitator_id").await;
}
