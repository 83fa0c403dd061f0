use crate::helpers::{assert_field_error, error_body, spawn_app, TestApp};
use chrono::{Duration, Utc};
use serde_json::{json, Value};

/// A cohort whose first six weekly sessions have started; returns (cohort, members,
/// session ids in order, facilitator token).
async fn running_cohort(
    app: &TestApp,
    program: i64,
    lead: &str,
) -> (i64, Vec<i64>, Vec<i64>, String) {
    let (therapist, nurse) = app.staff_pair().await;
    let members = app.waitlist(lead, program, 4, 40).await;
    let first = (Utc::now() - Duration::days(36)).to_rfc3339();
    let response = app
        .post(
            "/api/v1/cohorts",
            lead,
            &json!({"program_id": program, "members": members, "first_session_at": first,
                    "facilitators": [{"facilitator_id": therapist, "role": "lead"}, {"facilitator_id": nurse, "role": "co_facilitator"}],
                    "override_reason": "imported from the paper register"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let cohort: Value = response.json().await.expect("json");
    let sessions = cohort["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter_map(|s| s["id"].as_i64())
        .collect();
    let token = app.facilitator_user(program, therapist).await;
    (cohort["id"].as_i64().expect("id"), members, sessions, token)
}

async fn put(app: &TestApp, token: &str, session: i64, body: Value) -> reqwest::Response {
    app.request(
        reqwest::Method::PUT,
        &format!("/api/v1/sessions/{session}/attendance"),
        Some(token),
        Some(&body),
    )
    .await
}

async fn mark(app: &TestApp, token: &str, session: i64, records: &[(i64, &str)]) {
    let records: Vec<Value> = records
        .iter()
        .map(|(p, s)| json!({"patient_id": p, "status": s}))
        .collect();
    let response = put(app, token, session, json!({ "records": records })).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

async fn follow_ups(app: &TestApp, token: &str) -> Vec<Value> {
    let body: Value = app.get_json("/api/v1/follow-ups?status=all", token).await;
    body["follow_ups"].as_array().cloned().expect("follow_ups")
}

#[tokio::test]
async fn a_facilitator_of_the_cohort_records_attendance_in_one_request() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (_, members, sessions, facilitator) = running_cohort(&app, program, &lead).await;
    let response = put(
        &app,
        &facilitator,
        sessions[0],
        json!({"records": [
            {"patient_id": members[0], "status": "present"},
            {"patient_id": members[1], "status": "late", "note": "bus delayed"},
            {"patient_id": members[2], "status": "absent"}
        ]}),
    )
    .await;
    assert_eq!(response.status(), 200);
    let view: Value = response.json().await.expect("json");
    assert_eq!(view["session"]["status"], "held");
    assert_eq!(view["missing"], json!([members[3]]));
    let again: Value = app
        .get_json(
            &format!("/api/v1/sessions/{}/attendance", sessions[0]),
            &lead,
        )
        .await;
    let late = again["records"]
        .as_array()
        .expect("records")
        .iter()
        .find(|r| r["patient_id"] == members[1])
        .cloned()
        .expect("record");
    assert_eq!(late["status"], "late");
    assert_eq!(late["note"], "bus delayed");
}

#[tokio::test]
async fn attendance_is_refused_to_other_facilitators_for_non_members_and_for_future_sessions() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (_, members, sessions, facilitator) = running_cohort(&app, program, &lead).await;
    let stranger_id = app
        .create_facilitator(&crate::helpers::facilitator_body("stranger@example.org"))
        .await;
    let stranger = app.facilitator_user(program, stranger_id).await;
    let record = json!({"records": [{"patient_id": members[0], "status": "present"}]});
    error_body(put(&app, &stranger, sessions[0], record.clone()).await, 403).await;
    let (_, other_lead) = app.program_with_lead().await;
    error_body(
        put(&app, &other_lead, sessions[0], record.clone()).await,
        403,
    )
    .await;

    let outsider = app.waitlist(&lead, program, 1, 3).await[0];
    assert_field_error(
        put(
            &app,
            &facilitator,
            sessions[0],
            json!({"records": [{"patient_id": outsider, "status": "present"}]}),
        )
        .await,
        "records[0].patient_id",
    )
    .await;
    assert_field_error(
        put(
            &app,
            &facilitator,
            sessions[0],
            json!({"records": [{"patient_id": members[0], "status": "asleep"}]}),
        )
        .await,
        "records[0].status",
    )
    .await;
    let future = sessions[8];
    let body = error_body(put(&app, &facilitator, future, record).await, 409).await;
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .contains("started"));
    let untouched: Value = app
        .get_json(
            &format!("/api/v1/sessions/{}/attendance", sessions[0]),
            &lead,
        )
        .await;
    assert_eq!(
        untouched["missing"].as_array().map(Vec::len),
        Some(4),
        "nothing was written"
    );
}

#[tokio::test]
async fn recording_the_same_attendance_twice_changes_nothing() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (_, members, sessions, facilitator) = running_cohort(&app, program, &lead).await;
    mark(&app, &facilitator, sessions[0], &[(members[0], "present")]).await;
    mark(&app, &facilitator, sessions[0], &[(members[0], "present")]).await;
    let log: Value = app
        .get_json(
            &format!("/api/v1/audit?entity=session&id={}", sessions[0]),
            &lead,
        )
        .await;
    assert_eq!(log["entries"].as_array().map(Vec::len), Some(1));
}

#[tokio::test]
async fn a_record_older_than_48_hours_changes_only_with_a_reason_kept_in_the_audit() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (_, members, sessions, facilitator) = running_cohort(&app, program, &lead).await;
    mark(&app, &facilitator, sessions[0], &[(members[0], "absent")]).await;
    {
        use cohorts::db::schema::attendance;
        use diesel::prelude::*;
        diesel::update(attendance::table)
            .set(attendance::recorded_at.eq((Utc::now() - Duration::hours(49)).naive_utc()))
            .execute(&mut app.conn())
            .expect("age the record");
    }
    let change = json!({"records": [{"patient_id": members[0], "status": "present"}]});
    assert_field_error(
        put(&app, &facilitator, sessions[0], change.clone()).await,
        "amend_reason",
    )
    .await;
    let mut with_reason = change;
    with_reason["amend_reason"] = json!("register was misread");
    assert_eq!(
        put(&app, &facilitator, sessions[0], with_reason)
            .await
            .status(),
        200
    );
    let log: Value = app
        .get_json(
            &format!("/api/v1/audit?entity=session&id={}", sessions[0]),
            &lead,
        )
        .await;
    let latest = &log["entries"][0];
    assert_eq!(latest["action"], "amend_attendance");
    let detail = latest["detail"].as_str().unwrap_or_default();
    assert!(
        detail.contains("absent -> present") && detail.contains("register was misread"),
        "{detail}"
    );
}

#[tokio::test]
async fn two_absences_in_a_row_open_outreach_and_excused_neither_counts_nor_breaks() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (_, m, s, facilitator) = running_cohort(&app, program, &lead).await;
    mark(
        &app,
        &facilitator,
        s[0],
        &[(m[0], "absent"), (m[1], "absent")],
    )
    .await;
    mark(
        &app,
        &facilitator,
        s[1],
        &[(m[0], "excused"), (m[1], "present")],
    )
    .await;
    assert!(
        follow_ups(&app, &facilitator).await.is_empty(),
        "one absence, then excused or present"
    );
    mark(
        &app,
        &facilitator,
        s[2],
        &[(m[0], "absent"), (m[1], "absent")],
    )
    .await;
    let open = follow_ups(&app, &facilitator).await;
    assert_eq!(open.len(), 1, "{open:?}");
    assert_eq!(open[0]["patient_id"], m[0]);
    assert_eq!(open[0]["kind"], "outreach");
    assert_eq!(open[0]["consecutive_absences"], 2);
    assert!(open[0]["escalated_at"].is_null());
    // Recording the same session again does not open a second task for the same streak.
    mark(&app, &facilitator, s[2], &[(m[0], "absent")]).await;
    assert_eq!(follow_ups(&app, &facilitator).await.len(), 1);
}

#[tokio::test]
async fn four_absences_flag_the_member_at_risk_and_escalate_at_once() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (cohort, m, s, facilitator) = running_cohort(&app, program, &lead).await;
    for session in &s[..4] {
        mark(&app, &facilitator, *session, &[(m[0], "absent")]).await;
    }
    let all = follow_ups(&app, &lead).await;
    let at_risk = all
        .iter()
        .find(|f| f["kind"] == "at_risk")
        .cloned()
        .expect("at-risk follow-up");
    assert!(at_risk["escalated_at"].is_string());
    let matrix: Value = app
        .get_json(&format!("/api/v1/cohorts/{cohort}/attendance"), &lead)
        .await;
    let member = matrix["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|x| x["patient_id"] == m[0])
        .cloned()
        .expect("member");
    assert_eq!(member["consecutive_absences"], 4);
    assert!(member["flags"]
        .as_array()
        .expect("flags")
        .contains(&json!("at_risk")));
    // Attending resets the streak.
    mark(&app, &facilitator, s[4], &[(m[0], "present")]).await;
    let matrix: Value = app
        .get_json(&format!("/api/v1/cohorts/{cohort}/attendance"), &lead)
        .await;
    let member = matrix["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|x| x["patient_id"] == m[0])
        .cloned()
        .expect("member");
    assert_eq!(member["consecutive_absences"], 0);
}

#[tokio::test]
async fn an_unacknowledged_follow_up_escalates_after_72_hours() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (_, m, s, facilitator) = running_cohort(&app, program, &lead).await;
    mark(
        &app,
        &facilitator,
        s[0],
        &[(m[0], "absent"), (m[1], "absent")],
    )
    .await;
    mark(
        &app,
        &facilitator,
        s[1],
        &[(m[0], "absent"), (m[1], "absent")],
    )
    .await;
    let open = follow_ups(&app, &facilitator).await;
    assert_eq!(open.len(), 2);
    let acknowledged = open
        .iter()
        .find(|f| f["patient_id"] == m[1])
        .cloned()
        .expect("follow-up");
    let response = app
        .post(
            &format!("/api/v1/follow-ups/{}/acknowledge", acknowledged["id"]),
            &facilitator,
            &json!({"note": "called, will come next week"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    error_body(
        app.post(
            &format!("/api/v1/follow-ups/{}/acknowledge", acknowledged["id"]),
            &facilitator,
            &json!({}),
        )
        .await,
        409,
    )
    .await;

    let mut conn = app.conn();
    let now = Utc::now().naive_utc();
    let early =
        cohorts::service::attendance::escalate_overdue(&mut conn, now + Duration::hours(71))
            .expect("escalate");
    assert!(early.is_empty(), "not yet 72 hours");
    let escalated =
        cohorts::service::attendance::escalate_overdue(&mut conn, now + Duration::hours(73))
            .expect("escalate");
    assert_eq!(escalated.len(), 1, "only the unacknowledged one");
    drop(conn);
    let after = follow_ups(&app, &lead).await;
    let unacknowledged = after
        .iter()
        .find(|f| f["patient_id"] == m[0])
        .cloned()
        .expect("follow-up");
    assert!(unacknowledged["escalated_at"].is_string());
    let done = after
        .iter()
        .find(|f| f["patient_id"] == m[1])
        .cloned()
        .expect("follow-up");
    assert!(done["escalated_at"].is_null());
    assert_eq!(done["status"], "acknowledged");
    assert_eq!(done["note"], "called, will come next week");
}

#[tokio::test]
async fn rates_match_a_hand_computed_example_and_the_csv_parses_back() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (cohort, m, s, facilitator) = running_cohort(&app, program, &lead).await;
    // Four held sessions and one that did not take place.
    mark(
        &app,
        &facilitator,
        s[0],
        &[(m[0], "present"), (m[1], "present")],
    )
    .await;
    mark(
        &app,
        &facilitator,
        s[1],
        &[(m[0], "late"), (m[1], "present")],
    )
    .await;
    mark(
        &app,
        &facilitator,
        s[2],
        &[(m[0], "absent"), (m[1], "left_early")],
    )
    .await;
    mark(
        &app,
        &facilitator,
        s[3],
        &[(m[0], "excused"), (m[1], "present")],
    )
    .await;
    // Recorded, then found not to have taken place: its records must not count.
    mark(
        &app,
        &facilitator,
        s[4],
        &[(m[0], "present"), (m[1], "absent")],
    )
    .await;
    let dntp = app
        .patch(
            &format!("/api/v1/sessions/{}", s[4]),
            &facilitator,
            &json!({"status": "did_not_take_place"}),
        )
        .await;
    assert_eq!(dntp.status(), 200);

    let report: Value = app
        .get_json(
            &format!("/api/v1/programs/{program}/attendance-report"),
            &lead,
        )
        .await;
    let member = |id: i64| report_row(&report, id);
    // m0: present + late of 4 held = 0.5; m1: 4 of 4 = 1.0.
    assert_eq!(member(m[0])["held"], 4);
    assert_eq!(member(m[0])["attended"], 2);
    assert_eq!(member(m[0])["rate"], 0.5);
    assert_eq!(member(m[0])["completed"], false);
    assert_eq!(member(m[1])["rate"], 1.0);
    assert_eq!(member(m[1])["completed"], true);
    let summary = &report["cohorts"][0];
    assert_eq!(summary["cohort_id"], cohort);
    assert_eq!(summary["sessions_held"], 4);
    // (2 + 4 + 0 + 0) attended of 16 member-sessions held; 1 of 4 members completed.
    assert_eq!(summary["attendance_rate"], 6.0 / 16.0);
    assert_eq!(summary["completion_rate"], 0.25);

    let csv = app
        .client
        .get(app.url(&format!("/api/v1/programs/{program}/attendance-report")))
        .bearer_auth(&lead)
        .header("accept", "text/csv")
        .send()
        .await
        .expect("sent");
    assert!(csv.headers()["content-type"]
        .to_str()
        .unwrap_or_default()
        .starts_with("text/csv"));
    let text = csv.text().await.expect("text");
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .expect("header")
        .iter()
        .map(String::from)
        .collect();
    assert_eq!(
        header,
        [
            "cohort_id",
            "patient_id",
            "name",
            "held",
            "attended",
            "excused",
            "absent",
            "unrecorded",
            "rate",
            "completed"
        ]
    );
    let rows: Vec<csv::StringRecord> = reader.records().collect::<Result<_, _>>().expect("rows");
    assert_eq!(rows.len(), 4);
    let first = rows
        .iter()
        .find(|r| r.get(1) == Some(&m[0].to_string()))
        .expect("row");
    assert_eq!(
        (
            first.get(3),
            first.get(4),
            first.get(5),
            first.get(6),
            first.get(8),
            first.get(9)
        ),
        (
            Some("4"),
            Some("2"),
            Some("1"),
            Some("1"),
            Some("0.5"),
            Some("false")
        )
    );

    // The session that did not take place is out of the range too when dates exclude it.
    assert_field_error(
        app.get(
            &format!("/api/v1/programs/{program}/attendance-report?from=2026-13-01"),
            &lead,
        )
        .await,
        "from",
    )
    .await;
}

#[tokio::test]
async fn the_report_counts_only_sessions_in_its_date_range() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (cohort, m, s, facilitator) = running_cohort(&app, program, &lead).await;
    mark(
        &app,
        &facilitator,
        s[0],
        &[(m[0], "present"), (m[1], "absent")],
    )
    .await;
    mark(
        &app,
        &facilitator,
        s[1],
        &[(m[0], "late"), (m[1], "excused")],
    )
    .await;
    mark(
        &app,
        &facilitator,
        s[2],
        &[(m[0], "absent"), (m[1], "present")],
    )
    .await;
    mark(
        &app,
        &facilitator,
        s[3],
        &[(m[0], "present"), (m[1], "present")],
    )
    .await;

    let view: Value = app
        .get_json(&format!("/api/v1/cohorts/{cohort}"), &lead)
        .await;
    let starts = |index: usize| {
        let at = view["sessions"][index]["starts_at"]
            .as_str()
            .expect("starts_at");
        chrono::DateTime::parse_from_rfc3339(at).expect("rfc 3339")
    };
    // Sessions are a week apart: three days either side take s[1] and s[2] only, in any
    // time zone.
    let from = (starts(1) - Duration::days(3)).date_naive();
    let to = (starts(2) + Duration::days(3)).date_naive();
    let report: Value = app
        .get_json(
            &format!("/api/v1/programs/{program}/attendance-report?from={from}&to={to}"),
            &lead,
        )
        .await;
    let member = |id: i64| report_row(&report, id);
    let counts = |id: i64| {
        let row = member(id);
        (
            row["held"].clone(),
            row["attended"].clone(),
            row["excused"].clone(),
            row["absent"].clone(),
            row["unrecorded"].clone(),
        )
    };
    assert_eq!(
        counts(m[0]),
        (json!(2), json!(1), json!(0), json!(1), json!(0))
    );
    assert_eq!(
        counts(m[1]),
        (json!(2), json!(1), json!(1), json!(0), json!(0))
    );
    assert_eq!(
        counts(m[2]),
        (json!(2), json!(0), json!(0), json!(0), json!(2))
    );
    assert_eq!(report["members"].as_array().map(Vec::len), Some(4));
    assert_eq!(report["cohorts"][0]["sessions_held"], 2);

    // A range before the cohort began lists nobody.
    let before = (starts(0) - Duration::days(30)).date_naive();
    let empty: Value = app
        .get_json(
            &format!("/api/v1/programs/{program}/attendance-report?to={before}"),
            &lead,
        )
        .await;
    assert_eq!(empty["members"], json!([]));
    assert_eq!(empty["cohorts"], json!([]));
}

/// Reverts migrations back through the one that gave attendance its cohort column, then
/// applies every pending migration again, on whichever backend the app uses.
fn migrate_attendance_cohort_down_and_up(app: &TestApp) {
    use cohorts::db::{DbConnection, POSTGRES_MIGRATIONS, SQLITE_MIGRATIONS};
    use diesel_migrations::MigrationHarness;
    let reverted_through_it =
        |version: String| version.replace('-', "").as_str() <= "20261128000006";
    let mut conn = app.pool.get().expect("connection");
    match &mut *conn {
        DbConnection::Sqlite(c) => {
            while !reverted_through_it(
                c.revert_last_migration(SQLITE_MIGRATIONS)
                    .expect("down")
                    .to_string(),
            ) {}
            c.run_pending_migrations(SQLITE_MIGRATIONS).expect("up");
        }
        DbConnection::Postgres(c) => {
            while !reverted_through_it(
                c.revert_last_migration(POSTGRES_MIGRATIONS)
                    .expect("down")
                    .to_string(),
            ) {}
            c.run_pending_migrations(POSTGRES_MIGRATIONS).expect("up");
        }
    }
}

#[tokio::test]
async fn attendance_recorded_before_the_cohort_column_migration_keeps_every_record() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (cohort, m, s, facilitator) = running_cohort(&app, program, &lead).await;
    mark(
        &app,
        &facilitator,
        s[0],
        &[(m[0], "present"), (m[1], "absent"), (m[2], "late")],
    )
    .await;
    mark(
        &app,
        &facilitator,
        s[1],
        &[(m[0], "excused"), (m[1], "absent")],
    )
    .await;
    let path = format!("/api/v1/programs/{program}/attendance-report");
    let report = || async {
        let body: Value = app.get(&path, &lead).await.json().await.expect("json");
        body["members"].clone()
    };
    let before = report().await;

    migrate_attendance_cohort_down_and_up(&app);

    assert_eq!(report().await, before);
    let matrix: Value = app
        .get_json(&format!("/api/v1/cohorts/{cohort}/attendance"), &lead)
        .await;
    let member_1 = matrix["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|x| x["patient_id"] == m[1])
        .cloned()
        .expect("member");
    assert_eq!(member_1["consecutive_absences"], 2);
    // Recording still works against the rebuilt table.
    mark(&app, &facilitator, s[2], &[(m[1], "present")]).await;
}

#[tokio::test]
async fn a_member_who_left_and_rejoined_is_reported_once() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (cohort, m, s, facilitator) = running_cohort(&app, program, &lead).await;
    mark(&app, &facilitator, s[0], &[(m[3], "present")]).await;
    let left = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/cohorts/{cohort}/members/{}", m[3]),
            Some(&lead),
            Some(&json!({"reason": "moved away for a month"})),
        )
        .await;
    assert_eq!(left.status(), 200, "{:?}", left.text().await);
    let dosed = app
        .post(
            &format!("/api/v1/patients/{}/dosings", m[3]),
            &lead,
            &json!({"dosed_at": (Utc::now() - Duration::days(3)).to_rfc3339()}),
        )
        .await;
    assert_eq!(dosed.status(), 201, "{:?}", dosed.text().await);
    let back = app
        .post(
            &format!("/api/v1/cohorts/{cohort}/members"),
            &lead,
            &json!({"patient_id": m[3]}),
        )
        .await;
    assert_eq!(back.status(), 201, "{:?}", back.text().await);
    mark(&app, &facilitator, s[1], &[(m[3], "late")]).await;

    let report: Value = app
        .get_json(
            &format!("/api/v1/programs/{program}/attendance-report"),
            &lead,
        )
        .await;
    let rows: Vec<&Value> = report["members"]
        .as_array()
        .expect("members")
        .iter()
        .filter(|x| x["patient_id"] == m[3])
        .collect();
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["held"], 2);
    assert_eq!(rows[0]["attended"], 2);
    assert_eq!(report["cohorts"][0]["members"], 4);
}

/// A member's row of a program report.
fn report_row(report: &Value, patient: i64) -> Value {
    report["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|row| row["patient_id"] == patient)
        .cloned()
        .expect("the member's row")
}
