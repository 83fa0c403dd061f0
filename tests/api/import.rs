use crate::helpers::{error_body, spawn_app, TestApp};
use serde_json::{json, Value};

async fn import(app: &TestApp, token: &str, program: i64, csv: &str) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/programs/{program}/patients/import")))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv.to_string())
        .send()
        .await
        .expect("sent")
}

async fn patients(app: &TestApp, token: &str, program: i64) -> Vec<Value> {
    let body: Value = app
        .get(
            &format!("/api/v1/programs/{program}/patients?limit=1000"),
            token,
        )
        .await
        .json()
        .await
        .expect("json");
    body["patients"].as_array().cloned().expect("patients")
}

#[tokio::test]
async fn a_good_file_of_three_rows_imports_all_three() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let csv = "name,email,timezone,email_consent,dosed_at\n\
               Ana Lima,ana@example.org,America/Toronto,true,2026-11-20T10:00:00-08:00\n\
               Bo Chen,bo@example.org,,yes,2026-11-21T09:00:00-08:00\n\
               Cy Dube,cy@example.org,,false,\n";
    let response = import(&app, &lead, program, csv).await;
    assert_eq!(response.status(), 201);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body["imported"], 3);
    let listed = patients(&app, &lead, program).await;
    let summary: Vec<(String, String, bool)> = listed
        .iter()
        .map(|p| {
            (
                p["email"].as_str().unwrap_or_default().to_string(),
                p["status"].as_str().unwrap_or_default().to_string(),
                p["email_consent"].as_bool().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        vec![
            ("ana@example.org".into(), "awaiting_cohort".into(), true),
            ("bo@example.org".into(), "awaiting_cohort".into(), true),
            ("cy@example.org".into(), "awaiting_dosing".into(), false),
        ]
    );
    assert_eq!(listed[0]["timezone"], "America/Toronto");
    assert_eq!(
        listed[0]["latest_dosing"]["dosed_at"],
        "2026-11-20T10:00:00-08:00"
    );
}

#[tokio::test]
async fn one_bad_line_creates_nothing_and_names_the_line_and_reason() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let csv = "name,email,timezone,email_consent,dosed_at\n\
               Ana Lima,ana@example.org,,true,2026-11-20T10:00:00-08:00\n\
               Bo Chen,not-an-email,,true,\n\
               Cy Dube,cy@example.org,Mars/Base,maybe,\n";
    let response = import(&app, &lead, program, csv).await;
    let body = error_body(response, 422).await;
    let lines = body["error"]["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[0]["line"], 3);
    assert!(
        lines[0]["message"]
            .as_str()
            .unwrap_or_default()
            .starts_with("email:"),
        "{lines:?}"
    );
    assert_eq!(lines[1]["line"], 4);
    let message = lines[1]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("timezone") && message.contains("email_consent"),
        "{message}"
    );
    assert!(
        patients(&app, &lead, program).await.is_empty(),
        "all rows or none"
    );
}

#[tokio::test]
async fn quoted_commas_and_a_byte_order_mark_are_read_correctly() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let csv = "\u{feff}name,email,timezone,email_consent,dosed_at\r\n\
               \"Lima, Ana\",ana@example.org,,true,\r\n\
               \"Chen, \"\"Bo\"\"\",bo@example.org,,true,\r\n";
    let response = import(&app, &lead, program, csv).await;
    assert_eq!(response.status(), 201);
    let names: Vec<String> = patients(&app, &lead, program)
        .await
        .iter()
        .filter_map(|p| p["name"].as_str().map(String::from))
        .collect();
    assert_eq!(
        names,
        vec!["Lima, Ana".to_string(), "Chen, \"Bo\"".to_string()]
    );
}

#[tokio::test]
async fn duplicate_emails_in_the_file_or_the_program_are_errors() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let csv = "name,email,timezone,email_consent,dosed_at\n\
               Ana,ana@example.org,,true,\n\
               Ana Again,ANA@example.org,,true,\n";
    let body = error_body(import(&app, &lead, program, csv).await, 422).await;
    assert_eq!(body["error"]["lines"][0]["line"], 3);
    assert!(body["error"]["lines"][0]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("line 2"));

    app.create_patient(&lead, program, "Bo", "bo@example.org")
        .await;
    let csv = "name,email,timezone,email_consent,dosed_at\nBo,bo@example.org,,true,\n";
    let body = error_body(import(&app, &lead, program, csv).await, 422).await;
    assert_eq!(
        body["error"]["lines"][0],
        json!({"line": 2, "message": "email: already a patient of this program"})
    );
}

#[tokio::test]
async fn a_wrong_header_or_an_empty_file_is_refused() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let body = error_body(
        import(&app, &lead, program, "name,mail\nAna,ana@example.org\n").await,
        422,
    )
    .await;
    assert_eq!(body["error"]["lines"][0]["line"], 1);
    error_body(
        import(
            &app,
            &lead,
            program,
            "name,email,timezone,email_consent,dosed_at\n",
        )
        .await,
        422,
    )
    .await;
    let (_, other_lead) = app.program_with_lead().await;
    let csv = "name,email,timezone,email_consent,dosed_at\nAna,ana@example.org,,true,\n";
    error_body(import(&app, &other_lead, program, csv).await, 403).await;
}
