use crate::helpers::{assert_field_error, error_body, spawn_app};
use serde_json::{json, Value};

fn program_body() -> Value {
    json!({
        "name": "Ketamine integration",
        "site": "Nanaimo",
        "timezone": "America/Vancouver",
        "modality": "ketamine",
        "venue": "Room 4, 1 Main St",
    })
}

#[tokio::test]
async fn an_admin_creates_a_program_with_every_default() {
    let app = spawn_app().await;
    let response = app
        .post("/api/v1/programs", &app.admin_token, &program_body())
        .await;
    assert_eq!(response.status(), 201);
    let program: Value = response.json().await.expect("json");
    assert_eq!(
        program["cohort"],
        json!({"min_size": 4, "max_size": 12, "dosing_window_days": 14, "max_wait_days": 21})
    );
    assert_eq!(
        program["schedule"],
        json!({"weekday": "tue", "local_time": "18:00", "duration_minutes": 120, "sessions": 12, "min_days_after_dosing": 1, "notice_days": 2})
    );
    assert_eq!(
        program["staffing"],
        json!({"members_per_facilitator": 4, "required_credentials": ["therapist", "nurse"]})
    );
    assert_eq!(
        program["attendance"],
        json!({"completion_threshold": 0.75, "outreach_after": 2, "at_risk_after": 4})
    );
    assert_eq!(
        program["peer_support"],
        json!({"interval_weeks": 4, "sessions": 6, "max_size": 12, "facilitators": 1, "follow_ups": false, "auto_complete_after_days": 7})
    );
    assert_eq!(program["reminders"], json!({"hours_before": [48, 2]}));
    let id = program["id"].as_i64().expect("id");
    let fetched: Value = app
        .get(&format!("/api/v1/programs/{id}"), &app.admin_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(fetched, program);
}

#[tokio::test]
async fn every_program_rule_is_validated_with_its_field_named() {
    let app = spawn_app().await;
    let cases: Vec<(Value, &str)> = vec![
        (json!({"name": ""}), "name"),
        (json!({"site": " "}), "site"),
        (json!({"timezone": "Mars/Olympus"}), "timezone"),
        (json!({"modality": "lsd"}), "modality"),
        (json!({"join_url": "ftp://example.org"}), "join_url"),
        (json!({"cohort": {"min_size": 0}}), "cohort.min_size"),
        (json!({"cohort": {"min_size": 13}}), "cohort.min_size"),
        (
            json!({"cohort": {"max_size": 41, "min_size": 4}}),
            "cohort.max_size",
        ),
        (
            json!({"cohort": {"dosing_window_days": -1}}),
            "cohort.dosing_window_days",
        ),
        (
            json!({"cohort": {"max_wait_days": 0}}),
            "cohort.max_wait_days",
        ),
        (json!({"cohort": {"min_sise": 3}}), "cohort.min_sise"),
        (
            json!({"schedule": {"weekday": "someday"}}),
            "schedule.weekday",
        ),
        (
            json!({"schedule": {"local_time": "6pm"}}),
            "schedule.local_time",
        ),
        (
            json!({"schedule": {"local_time": "24:00"}}),
            "schedule.local_time",
        ),
        (
            json!({"schedule": {"duration_minutes": 0}}),
            "schedule.duration_minutes",
        ),
        (json!({"schedule": {"sessions": 0}}), "schedule.sessions"),
        (
            json!({"schedule": {"notice_days": "two"}}),
            "schedule.notice_days",
        ),
        (
            json!({"staffing": {"members_per_facilitator": 0}}),
            "staffing.members_per_facilitator",
        ),
        (
            json!({"staffing": {"required_credentials": ["wizard"]}}),
            "staffing.required_credentials[0]",
        ),
        (
            json!({"staffing": {"required_credentials": ["nurse", "nurse"]}}),
            "staffing.required_credentials",
        ),
        (
            json!({"attendance": {"completion_threshold": 1.5}}),
            "attendance.completion_threshold",
        ),
        (
            json!({"attendance": {"completion_threshold": 0}}),
            "attendance.completion_threshold",
        ),
        (
            json!({"attendance": {"outreach_after": 0}}),
            "attendance.outreach_after",
        ),
        (
            json!({"attendance": {"outreach_after": 3, "at_risk_after": 2}}),
            "attendance.at_risk_after",
        ),
        (
            json!({"peer_support": {"interval_weeks": 0}}),
            "peer_support.interval_weeks",
        ),
        (
            json!({"peer_support": {"sessions": 0}}),
            "peer_support.sessions",
        ),
        (
            json!({"peer_support": {"max_size": 41}}),
            "peer_support.max_size",
        ),
        (
            json!({"peer_support": {"facilitators": 0}}),
            "peer_support.facilitators",
        ),
        (
            json!({"peer_support": {"follow_ups": "sometimes"}}),
            "peer_support.follow_ups",
        ),
        (
            json!({"reminders": {"hours_before": [2, 48]}}),
            "reminders.hours_before",
        ),
        (
            json!({"reminders": {"hours_before": [48, 48]}}),
            "reminders.hours_before",
        ),
        (
            json!({"reminders": {"hours_before": [48, 0]}}),
            "reminders.hours_before",
        ),
        (json!({"colour": "blue"}), "colour"),
    ];
    for (change, field) in cases {
        let mut body = program_body();
        for (key, value) in change.as_object().expect("object") {
            body[key] = value.clone();
        }
        let response = app.post("/api/v1/programs", &app.admin_token, &body).await;
        assert_field_error(response, field).await;
    }
    let listed: Value = app
        .get("/api/v1/programs", &app.admin_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["programs"], json!([]), "nothing was created");
}

#[tokio::test]
async fn several_broken_rules_are_all_named_at_once() {
    let app = spawn_app().await;
    let mut body = program_body();
    body["timezone"] = json!("Nowhere/Else");
    body["cohort"] = json!({"min_size": 20});
    body["reminders"] = json!({"hours_before": [1, 2]});
    let response = app.post("/api/v1/programs", &app.admin_token, &body).await;
    let error = assert_field_error(response, "timezone").await;
    let fields = error["error"]["fields"].as_object().expect("fields");
    assert!(fields.contains_key("cohort.min_size"));
    assert!(fields.contains_key("reminders.hours_before"));
}

#[tokio::test]
async fn malformed_json_is_a_400_and_an_oversized_body_a_413() {
    let app = spawn_app().await;
    let malformed = app
        .client
        .post(app.url("/api/v1/programs"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .expect("sent");
    let body = error_body(malformed, 400).await;
    assert_eq!(body["error"]["code"], "malformed");

    let huge = format!("{{\"name\": \"{}\"}}", "x".repeat(1024 * 1024 + 10));
    let oversized = app
        .client
        .post(app.url("/api/v1/programs"))
        .bearer_auth(&app.admin_token)
        .header("content-type", "application/json")
        .body(huge)
        .send()
        .await
        .expect("sent");
    let body = error_body(oversized, 413).await;
    assert_eq!(body["error"]["code"], "payload_too_large");
}

#[tokio::test]
async fn patch_changes_only_what_it_names_and_validates_the_result() {
    let app = spawn_app().await;
    let id = app.create_program("Evening group").await;
    let path = format!("/api/v1/programs/{id}");
    let response = app
        .patch(
            &path,
            &app.admin_token,
            &json!({"schedule": {"weekday": "thursday", "local_time": "17:30"}, "venue": null}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let program: Value = response.json().await.expect("json");
    assert_eq!(program["schedule"]["weekday"], "thu");
    assert_eq!(program["schedule"]["local_time"], "17:30");
    assert_eq!(program["schedule"]["sessions"], 12, "untouched rule kept");
    assert_eq!(program["venue"], Value::Null);

    let refused = app
        .patch(&path, &app.admin_token, &json!({"cohort": {"max_size": 2}}))
        .await;
    assert_field_error(refused, "cohort.min_size").await;
    let typo = app
        .patch(&path, &app.admin_token, &json!({"cohort": {"max_sise": 2}}))
        .await;
    assert_field_error(typo, "cohort.max_sise").await;
    let unchanged: Value = app
        .get(&path, &app.admin_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(unchanged["cohort"]["max_size"], 12);

    let missing = app
        .patch(
            "/api/v1/programs/9999",
            &app.admin_token,
            &json!({"name": "x"}),
        )
        .await;
    error_body(missing, 404).await;
}

#[tokio::test]
async fn a_lead_reads_only_their_programs_and_cannot_change_them() {
    let app = spawn_app().await;
    let mine = app.create_program("Mine").await;
    let theirs = app.create_program("Theirs").await;
    let (_, lead) = app.create_user("program_lead", &[mine]).await;

    assert_eq!(
        app.get(&format!("/api/v1/programs/{mine}"), &lead)
            .await
            .status(),
        200
    );
    let refused = app.get(&format!("/api/v1/programs/{theirs}"), &lead).await;
    error_body(refused, 403).await;
    let listed: Value = app
        .get("/api/v1/programs", &lead)
        .await
        .json()
        .await
        .expect("json");
    let ids: Vec<i64> = listed["programs"]
        .as_array()
        .expect("programs")
        .iter()
        .filter_map(|p| p["id"].as_i64())
        .collect();
    assert_eq!(ids, vec![mine]);
    let patch = app
        .patch(
            &format!("/api/v1/programs/{mine}"),
            &lead,
            &json!({"name": "x"}),
        )
        .await;
    error_body(patch, 403).await;
}

#[tokio::test]
async fn a_facilitator_cannot_create_a_program() {
    let app = spawn_app().await;
    let program = app.create_program("Evening group").await;
    let (_, facilitator) = app.create_user("facilitator", &[program]).await;
    let response = app
        .post("/api/v1/programs", &facilitator, &program_body())
        .await;
    error_body(response, 403).await;
    let listed: Value = app
        .get("/api/v1/programs", &app.admin_token)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(listed["programs"].as_array().map(Vec::len), Some(1));
}
