use crate::helpers::{assert_field_error, error_body, facilitator_body, spawn_app};
use chrono::{Duration, Utc};
use serde_json::{json, Value};

#[tokio::test]
async fn a_lead_registers_a_patient_awaiting_dosing_with_consent_recorded() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let response = app
        .post(
            &format!("/api/v1/programs/{program}/patients"),
            &lead,
            &json!({"name": "Ana Lima", "email": "Ana@Example.org", "timezone": "America/Toronto", "email_consent": true}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let patient: Value = response.json().await.expect("json");
    assert_eq!(patient["status"], "awaiting_dosing");
    assert_eq!(patient["email"], "ana@example.org");
    assert_eq!(patient["timezone"], "America/Toronto");
    assert_eq!(patient["consent_history"].as_array().map(Vec::len), Some(1));
    assert_eq!(patient["consent_history"][0]["email_consent"], true);
    assert!(patient["consent_changed_at"].is_string());
}

#[tokio::test]
async fn patient_fields_are_validated_with_the_field_named() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let path = format!("/api/v1/programs/{program}/patients");
    let cases = [
        (
            json!({"name": "", "email": "a@example.org", "email_consent": true}),
            "name",
        ),
        (
            json!({"name": "A", "email": "nope", "email_consent": true}),
            "email",
        ),
        (
            json!({"name": "A", "email": "a@example.org", "timezone": "Moon/Base", "email_consent": true}),
            "timezone",
        ),
        (
            json!({"name": "A", "email": "a@example.org", "email_consent": "yes please"}),
            "email_consent",
        ),
        (
            json!({"name": "A", "email": "a@example.org"}),
            "email_consent",
        ),
        (
            json!({"name": "A", "email": "a@example.org", "email_consent": true, "diagnosis": "x"}),
            "diagnosis",
        ),
    ];
    for (body, field) in cases {
        assert_field_error(app.post(&path, &lead, &body).await, field).await;
    }
    let listed: Value = app.get(&path, &lead).await.json().await.expect("json");
    assert_eq!(listed["patients"], json!([]));
}

#[tokio::test]
async fn an_email_is_unique_within_a_program_only() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    app.create_patient(&lead, program, "Ana", "ana@example.org")
        .await;
    let again = app
        .post(
            &format!("/api/v1/programs/{program}/patients"),
            &lead,
            &json!({"name": "Ana Again", "email": "ANA@example.org", "email_consent": true}),
        )
        .await;
    error_body(again, 409).await;
    let other = app.create_program("Other").await;
    app.create_patient(&app.admin_token, other, "Ana", "ana@example.org")
        .await;
}

#[tokio::test]
async fn a_dosing_puts_the_patient_on_the_waitlist_and_is_listed() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let id = app
        .create_patient(&lead, program, "Ana", "ana@example.org")
        .await;
    let response = app
        .post(
            &format!("/api/v1/patients/{id}/dosings"),
            &lead,
            &json!({"dosed_at": "2026-11-20T10:30:00-08:00"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let patient: Value = response.json().await.expect("json");
    assert_eq!(patient["status"], "awaiting_cohort");
    assert_eq!(
        patient["dosings"][0]["dosed_at"],
        "2026-11-20T10:30:00-08:00"
    );
    assert_eq!(patient["dosings"][0]["modality"], "ketamine");

    let waitlist: Value = app
        .get(
            &format!("/api/v1/programs/{program}/patients?status=awaiting_cohort"),
            &lead,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(waitlist["patients"][0]["id"], id);
    assert_eq!(
        waitlist["patients"][0]["latest_dosing"]["dosed_at"],
        "2026-11-20T10:30:00-08:00"
    );
}

#[tokio::test]
async fn dosings_are_validated() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let id = app
        .create_patient(&lead, program, "Ana", "ana@example.org")
        .await;
    let path = format!("/api/v1/patients/{id}/dosings");
    let tomorrow = (Utc::now() + Duration::days(1)).to_rfc3339();
    let cases = [
        (json!({"dosed_at": tomorrow}), "dosed_at"),
        (json!({"dosed_at": "2026-11-20 10:30"}), "dosed_at"),
        (json!({"dosed_at": "2026-11-20T10:30:00"}), "dosed_at"),
        (
            json!({"dosed_at": "2026-11-20T10:30:00Z", "modality": "psilocybin"}),
            "modality",
        ),
        (
            json!({"dosed_at": "2026-11-20T10:30:00Z", "modality": "mixed"}),
            "modality",
        ),
    ];
    for (body, field) in cases {
        assert_field_error(app.post(&path, &lead, &body).await, field).await;
    }
    let patient: Value = app
        .get(&format!("/api/v1/patients/{id}"), &lead)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(patient["status"], "awaiting_dosing", "nothing changed");
    assert_eq!(patient["dosings"], json!([]));

    // A mixed program needs the substance named.
    let mixed = app
        .post(
            "/api/v1/programs",
            &app.admin_token,
            &json!({"name": "Mixed", "site": "Nanaimo", "timezone": "America/Vancouver", "modality": "mixed"}),
        )
        .await
        .json::<Value>()
        .await
        .expect("json")["id"]
        .as_i64()
        .expect("id");
    let patient = app
        .create_patient(&app.admin_token, mixed, "Bo", "bo@example.org")
        .await;
    let path = format!("/api/v1/patients/{patient}/dosings");
    assert_field_error(
        app.post(
            &path,
            &app.admin_token,
            &json!({"dosed_at": "2026-11-20T10:30:00Z"}),
        )
        .await,
        "modality",
    )
    .await;
    let ok = app
        .post(
            &path,
            &app.admin_token,
            &json!({"dosed_at": "2026-11-20T10:30:00Z", "modality": "mdma"}),
        )
        .await;
    assert_eq!(ok.status(), 201);
}

#[tokio::test]
async fn status_transitions_that_make_no_sense_are_409_with_the_current_status() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let id = app
        .create_patient(&lead, program, "Ana", "ana@example.org")
        .await;
    let path = format!("/api/v1/patients/{id}");

    let refused = app
        .patch(&path, &lead, &json!({"status": "in_cohort"}))
        .await;
    let body = error_body(refused, 409).await;
    assert_eq!(
        body["error"]["details"]["current_status"],
        "awaiting_dosing"
    );
    assert_field_error(
        app.patch(&path, &lead, &json!({"status": "asleep"})).await,
        "status",
    )
    .await;

    let withdrawn: Value = app
        .patch(&path, &lead, &json!({"status": "withdrawn"}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(withdrawn["status"], "withdrawn");
    let back: Value = app
        .patch(&path, &lead, &json!({"status": "awaiting_dosing"}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(back["status"], "awaiting_dosing");

    // In a cohort, a new dosing must wait until they leave it.
    {
        use cohorts::db::schema::patients;
        use diesel::prelude::*;
        diesel::update(patients::table.find(id))
            .set(patients::status.eq("in_cohort"))
            .execute(&mut app.conn())
            .expect("set status");
    }
    let dosing = app
        .post(
            &format!("{path}/dosings"),
            &lead,
            &json!({"dosed_at": "2026-11-20T10:30:00Z"}),
        )
        .await;
    let body = error_body(dosing, 409).await;
    assert_eq!(body["error"]["details"]["current_status"], "in_cohort");
    let withdraw = app
        .patch(&path, &lead, &json!({"status": "withdrawn"}))
        .await;
    assert_eq!(
        error_body(withdraw, 409).await["error"]["details"]["current_status"],
        "in_cohort"
    );
}

#[tokio::test]
async fn withdrawing_consent_is_recorded_with_its_time_not_just_flipped() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let id = app
        .create_patient(&lead, program, "Ana", "ana@example.org")
        .await;
    let path = format!("/api/v1/patients/{id}");
    let patient: Value = app
        .patch(&path, &lead, &json!({"email_consent": false}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(patient["email_consent"], false);
    let history = patient["consent_history"].as_array().expect("history");
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["email_consent"], true);
    assert_eq!(history[1]["email_consent"], false);
    assert_eq!(history[1]["source"], "lead");
    assert!(history[1]["at"].is_string());
    let again: Value = app
        .patch(&path, &lead, &json!({"email_consent": true}))
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(again["consent_history"].as_array().map(Vec::len), Some(3));
}

#[tokio::test]
async fn a_patient_exclusion_is_symmetric_and_stays_within_the_program() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let ana = app
        .create_patient(&lead, program, "Ana", "ana@example.org")
        .await;
    let bo = app
        .create_patient(&lead, program, "Bo", "bo@example.org")
        .await;
    let created = app
        .post(
            &format!("/api/v1/patients/{bo}/exclusions"),
            &lead,
            &json!({"patient_id": ana, "note": "siblings"}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let from_ana: Value = app
        .get(&format!("/api/v1/patients/{ana}/exclusions"), &lead)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(from_ana["exclusions"][0]["patient_id"], bo);
    let from_bo: Value = app
        .get(&format!("/api/v1/patients/{bo}/exclusions"), &lead)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(from_bo["exclusions"][0]["patient_id"], ana);

    let duplicate = app
        .post(
            &format!("/api/v1/patients/{ana}/exclusions"),
            &lead,
            &json!({"patient_id": bo}),
        )
        .await;
    error_body(duplicate, 409).await;
    assert_field_error(
        app.post(
            &format!("/api/v1/patients/{ana}/exclusions"),
            &lead,
            &json!({"patient_id": ana}),
        )
        .await,
        "patient_id",
    )
    .await;
    let other_program = app.create_program("Other").await;
    let stranger = app
        .create_patient(&app.admin_token, other_program, "Cy", "cy@example.org")
        .await;
    assert_field_error(
        app.post(
            &format!("/api/v1/patients/{ana}/exclusions"),
            &lead,
            &json!({"patient_id": stranger}),
        )
        .await,
        "patient_id",
    )
    .await;
    assert_field_error(
        app.post(
            &format!("/api/v1/patients/{ana}/exclusions"),
            &lead,
            &json!({}),
        )
        .await,
        "patient_id",
    )
    .await;

    let exclusion = from_ana["exclusions"][0]["id"].as_i64().expect("id");
    let deleted = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/patients/{ana}/exclusions/{exclusion}"),
            Some(&lead),
            None,
        )
        .await;
    assert_eq!(deleted.status(), 204);
    let after: Value = app
        .get(&format!("/api/v1/patients/{bo}/exclusions"), &lead)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(after["exclusions"], json!([]));
}

#[tokio::test]
async fn a_patient_can_be_excluded_from_a_facilitator() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let ana = app
        .create_patient(&lead, program, "Ana", "ana@example.org")
        .await;
    let facilitator = app
        .create_facilitator(&facilitator_body("robin@example.org"))
        .await;
    let created = app
        .post(
            &format!("/api/v1/patients/{ana}/exclusions"),
            &lead,
            &json!({"facilitator_id": facilitator}),
        )
        .await;
    assert_eq!(created.status(), 201);
    let patient: Value = app
        .get(&format!("/api/v1/patients/{ana}"), &lead)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(patient["exclusions"][0]["facilitator_id"], facilitator);
    assert_field_error(
        app.post(
            &format!("/api/v1/patients/{ana}/exclusions"),
            &lead,
            &json!({"facilitator_id": 999}),
        )
        .await,
        "facilitator_id",
    )
    .await;
}

#[tokio::test]
async fn patient_lists_paginate_in_a_stable_order_and_filter_by_status() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            app.create_patient(
                &lead,
                program,
                &format!("P{n}"),
                &format!("p{n}@example.org"),
            )
            .await,
        );
    }
    app.post(
        &format!("/api/v1/patients/{}/dosings", ids[3]),
        &lead,
        &json!({"dosed_at": "2026-11-20T10:00:00Z"}),
    )
    .await;
    let mut seen = Vec::new();
    let mut after: Option<i64> = None;
    loop {
        let query = match after {
            Some(after) => format!("?limit=2&after={after}"),
            None => "?limit=2".to_string(),
        };
        let page: Value = app
            .get(
                &format!("/api/v1/programs/{program}/patients{query}"),
                &lead,
            )
            .await
            .json()
            .await
            .expect("json");
        seen.extend(
            page["patients"]
                .as_array()
                .expect("patients")
                .iter()
                .filter_map(|p| p["id"].as_i64()),
        );
        match page["next_after"].as_i64() {
            Some(next) => after = Some(next),
            None => break,
        }
    }
    assert_eq!(seen, ids);
    let waiting: Value = app
        .get(
            &format!("/api/v1/programs/{program}/patients?status=awaiting_cohort"),
            &lead,
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(waiting["patients"].as_array().map(Vec::len), Some(1));
    assert_field_error(
        app.get(
            &format!("/api/v1/programs/{program}/patients?status=sleeping"),
            &lead,
        )
        .await,
        "status",
    )
    .await;
    assert_field_error(
        app.get(
            &format!("/api/v1/programs/{program}/patients?limit=0"),
            &lead,
        )
        .await,
        "limit",
    )
    .await;
}

#[tokio::test]
async fn patients_are_scoped_to_their_program_leads() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (_, other_lead) = app.program_with_lead().await;
    let id = app
        .create_patient(&lead, program, "Ana", "ana@example.org")
        .await;
    error_body(
        app.get(&format!("/api/v1/patients/{id}"), &other_lead)
            .await,
        403,
    )
    .await;
    error_body(
        app.get(&format!("/api/v1/programs/{program}/patients"), &other_lead)
            .await,
        403,
    )
    .await;
    error_body(
        app.post(
            &format!("/api/v1/programs/{program}/patients"),
            &other_lead,
            &json!({"name": "X", "email": "x@example.org", "email_consent": true}),
        )
        .await,
        403,
    )
    .await;
    error_body(
        app.patch(
            &format!("/api/v1/patients/{id}"),
            &other_lead,
            &json!({"name": "Y"}),
        )
        .await,
        403,
    )
    .await;
    // A facilitator who holds none of the patient's cohorts sees nothing.
    let (_, facilitator) = app.create_user("facilitator", &[program]).await;
    error_body(
        app.get(&format!("/api/v1/patients/{id}"), &facilitator)
            .await,
        403,
    )
    .await;
    error_body(
        app.get(
            &format!("/api/v1/programs/{program}/patients"),
            &facilitator,
        )
        .await,
        403,
    )
    .await;
}

#[tokio::test]
async fn patient_writes_are_audited_by_field_name_never_by_value() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let id = app
        .create_patient(&lead, program, "Ana", "ana@example.org")
        .await;
    app.patch(
        &format!("/api/v1/patients/{id}"),
        &lead,
        &json!({"name": "Ana Secret-Surname"}),
    )
    .await;
    app.post(
        &format!("/api/v1/patients/{id}/dosings"),
        &lead,
        &json!({"dosed_at": "2026-11-20T10:00:00Z"}),
    )
    .await;
    let log: Value = app
        .get(&format!("/api/v1/audit?entity=patient&id={id}"), &lead)
        .await
        .json()
        .await
        .expect("json");
    let entries = log["entries"].as_array().expect("entries");
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, vec!["record_dosing", "update", "create"]);
    assert_eq!(entries[1]["changed_fields"], json!(["name"]));
    let text = log.to_string();
    assert!(
        !text.contains("Secret-Surname") && !text.contains("ana@example.org"),
        "{text}"
    );
}
