use crate::helpers::{error_body, spawn_app};
use chrono::{DateTime, Datelike, Duration, Utc, Weekday};
use serde_json::{json, Value};

async fn body(response: reqwest::Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    response.json().await.expect("json")
}

async fn patient_status(app: &crate::helpers::TestApp, token: &str, id: i64) -> String {
    let patient: Value = app
        .get(&format!("/api/v1/patients/{id}"), token)
        .await
        .json()
        .await
        .expect("json");
    patient["status"].as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn a_dry_run_changes_nothing_and_a_commit_forms_the_same_plan() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let ids = app.waitlist(&lead, program, 5, 3).await;
    let preview = body(app.form(&lead, program, true).await, 200).await;
    assert_eq!(preview["cohorts"].as_array().map(Vec::len), Some(1));
    assert!(preview["cohorts"][0].get("id").is_none());
    assert_eq!(patient_status(&app, &lead, ids[0]).await, "awaiting_cohort");
    let listed = body(
        app.get(&format!("/api/v1/cohorts?program_id={program}"), &lead)
            .await,
        200,
    )
    .await;
    assert_eq!(listed["cohorts"], json!([]), "dry run wrote nothing");

    let committed = body(app.form(&lead, program, false).await, 201).await;
    let cohort = &committed["cohorts"][0];
    assert_eq!(cohort["members"], preview["cohorts"][0]["members"]);
    assert_eq!(
        cohort["first_session_at"],
        preview["cohorts"][0]["first_session_at"]
    );
    assert_eq!(
        cohort["dosing_window"],
        preview["cohorts"][0]["dosing_window"]
    );
    let id = cohort["id"].as_i64().expect("committed cohort has an id");
    for patient in &ids {
        assert_eq!(patient_status(&app, &lead, *patient).await, "in_cohort");
    }
    let stored = body(app.get(&format!("/api/v1/cohorts/{id}"), &lead).await, 200).await;
    assert_eq!(stored["status"], "forming");
    assert_eq!(stored["sessions"].as_array().map(Vec::len), Some(12));
    assert_eq!(stored["members"].as_array().map(Vec::len), Some(5));
    // Without facilitators on file the cohort is still formed, with its gaps listed.
    assert_eq!(stored["staffing"]["complete"], false);
    assert!(!stored["staffing"]["gaps"]
        .as_array()
        .expect("gaps")
        .is_empty());
}

#[tokio::test]
async fn the_first_session_respects_notice_days_and_the_weekly_slot() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    app.patch(
        &format!("/api/v1/programs/{program}"),
        &app.admin_token,
        &json!({"schedule": {"notice_days": 6}, "cohort": {"max_wait_days": 30}}),
    )
    .await;
    app.waitlist(&lead, program, 4, 1).await;
    let plan = body(app.form(&lead, program, true).await, 200).await;
    let first: DateTime<Utc> = plan["cohorts"][0]["first_session_at"]
        .as_str()
        .expect("time")
        .parse()
        .expect("rfc3339");
    let local = first.with_timezone(&chrono_tz::America::Vancouver);
    assert_eq!(local.weekday(), Weekday::Tue);
    assert_eq!(local.format("%H:%M").to_string(), "18:00");
    let today = Utc::now()
        .with_timezone(&chrono_tz::America::Vancouver)
        .date_naive();
    assert!(
        local.date_naive() >= today + Duration::days(6),
        "{local} vs {today}"
    );
    assert!(local.date_naive() < today + Duration::days(13));
}

#[tokio::test]
async fn patients_who_waited_too_long_are_reported_as_max_wait_exceeded() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let late = app.waitlist(&lead, program, 4, 25).await;
    let recent = app.waitlist(&lead, program, 2, 2).await;
    let plan = body(app.form(&lead, program, true).await, 200).await;
    assert_eq!(plan["cohorts"], json!([]));
    let reasons: Vec<(i64, String)> = plan["waiting"]
        .as_array()
        .expect("waiting")
        .iter()
        .map(|w| {
            (
                w["patient_id"].as_i64().unwrap_or_default(),
                w["reason"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    for id in late {
        assert!(
            reasons.contains(&(id, "max_wait_exceeded".into())),
            "{reasons:?}"
        );
    }
    for id in recent {
        assert!(
            reasons.contains(&(id, "too_few_in_window".into())),
            "{reasons:?}"
        );
    }
}

#[tokio::test]
async fn rolling_admission_joins_a_forming_cohort_and_never_an_active_one() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    app.waitlist(&lead, program, 4, 3).await;
    let formed = body(app.form(&lead, program, false).await, 201).await;
    let forming = formed["cohorts"][0]["id"].as_i64().expect("id");

    // An active cohort (first session already held) with seats free.
    let earlier = app.waitlist(&lead, program, 4, 2).await;
    let past = (Utc::now() - Duration::days(7)).to_rfc3339();
    let active = body(
        app.post(
            "/api/v1/cohorts",
            &lead,
            &json!({"program_id": program, "members": earlier, "first_session_at": past}),
        )
        .await,
        201,
    )
    .await;
    assert_eq!(active["status"], "active");

    let newcomer = app.waitlist(&lead, program, 1, 2).await[0];
    let plan = body(app.form(&lead, program, false).await, 201).await;
    assert_eq!(
        plan["joined"],
        json!([{"cohort_id": forming, "patient_id": newcomer}])
    );
    let cohort = body(
        app.get(&format!("/api/v1/cohorts/{forming}"), &lead).await,
        200,
    )
    .await;
    assert!(cohort["members"]
        .as_array()
        .expect("members")
        .iter()
        .any(|m| m["patient_id"] == newcomer));
}

#[tokio::test]
async fn two_formations_racing_never_place_a_patient_twice() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let ids = app.waitlist(&lead, program, 8, 3).await;
    let (first, second) = tokio::join!(
        app.form(&lead, program, false),
        app.form(&lead, program, false)
    );
    assert_eq!(first.status(), 201);
    assert_eq!(second.status(), 201);
    let cohorts = body(
        app.get(&format!("/api/v1/cohorts?program_id={program}"), &lead)
            .await,
        200,
    )
    .await;
    let mut placed: Vec<i64> = cohorts["cohorts"]
        .as_array()
        .expect("cohorts")
        .iter()
        .flat_map(|c| c["members"].as_array().cloned().unwrap_or_default())
        .filter_map(|m| m["patient_id"].as_i64())
        .collect();
    placed.sort_unstable();
    let before = placed.len();
    placed.dedup();
    assert_eq!(before, placed.len(), "a patient was placed twice");
    assert_eq!(placed, ids);
}

#[tokio::test]
async fn a_withdrawn_member_keeps_history_and_leaves_the_group() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let ids = app.waitlist(&lead, program, 4, 3).await;
    let formed = body(app.form(&lead, program, false).await, 201).await;
    let cohort = formed["cohorts"][0]["id"].as_i64().expect("id");
    let path = format!("/api/v1/cohorts/{cohort}/members/{}", ids[0]);
    let missing_reason = app
        .request(
            reqwest::Method::DELETE,
            &path,
            Some(&lead),
            Some(&json!({})),
        )
        .await;
    crate::helpers::assert_field_error(missing_reason, "reason").await;
    let withdrawn = body(
        app.request(
            reqwest::Method::DELETE,
            &path,
            Some(&lead),
            Some(&json!({"reason": "moved away"})),
        )
        .await,
        200,
    )
    .await;
    let member = withdrawn["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|m| m["patient_id"] == ids[0])
        .cloned()
        .expect("history kept");
    assert_eq!(member["status"], "withdrawn");
    assert_eq!(member["leave_reason"], "moved away");
    assert!(member["left_at"].is_string());
    assert_eq!(patient_status(&app, &lead, ids[0]).await, "withdrawn");
    let again = app
        .request(
            reqwest::Method::DELETE,
            &path,
            Some(&lead),
            Some(&json!({"reason": "again"})),
        )
        .await;
    error_body(again, 404).await;
}

#[tokio::test]
async fn a_tuesday_cohort_keeps_1800_local_across_the_november_dst_change() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let members = app.waitlist(&lead, program, 4, 2).await;
    // Before the 2026-11-01 change, in Vancouver's daylight time.
    let created = body(
        app.post(
            "/api/v1/cohorts",
            &lead,
            &json!({"program_id": program, "members": members, "first_session_at": "2026-10-20T18:00:00-07:00"}),
        )
        .await,
        201,
    )
    .await;
    let sessions = created["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 12);
    for session in sessions {
        let local = session["local_start"].as_str().unwrap_or_default();
        assert!(
            local.starts_with("Tue ") && local.contains(" 18:00 "),
            "{local}"
        );
    }
    assert_eq!(sessions[1]["starts_at"], "2026-10-28T01:00:00Z");
    assert_eq!(sessions[2]["starts_at"], "2026-11-04T02:00:00Z");
}

#[tokio::test]
async fn formation_staffs_new_cohorts_with_a_therapist_and_a_nurse() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (therapist, nurse) = app.staff_pair().await;
    app.waitlist(&lead, program, 5, 3).await;
    let formed = body(app.form(&lead, program, false).await, 201).await;
    let cohort = &formed["cohorts"][0];
    assert_eq!(cohort["staffing"]["complete"], true, "{cohort}");
    let mut team: Vec<i64> = cohort["facilitators"]
        .as_array()
        .expect("team")
        .iter()
        .filter_map(|a| a["facilitator_id"].as_i64())
        .collect();
    team.sort_unstable();
    assert_eq!(team, vec![therapist, nurse]);
    let lead_role = cohort["facilitators"]
        .as_array()
        .expect("team")
        .iter()
        .find(|a| a["role"] == "lead")
        .cloned()
        .expect("a lead");
    assert_eq!(lead_role["facilitator_id"], therapist);
}

#[tokio::test]
async fn a_facilitator_sees_only_their_cohorts_and_those_patients() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (therapist, _) = app.staff_pair().await;
    let members = app.waitlist(&lead, program, 4, 3).await;
    let outsider = app.waitlist(&lead, program, 1, 40).await[0];
    let formed = body(app.form(&lead, program, false).await, 201).await;
    let cohort = formed["cohorts"][0]["id"].as_i64().expect("id");

    let mine = app.facilitator_user(program, therapist).await;
    let listed = body(app.get("/api/v1/cohorts", &mine).await, 200).await;
    assert_eq!(listed["cohorts"].as_array().map(Vec::len), Some(1));
    assert_eq!(
        body(
            app.get(&format!("/api/v1/cohorts/{cohort}"), &mine).await,
            200
        )
        .await["id"],
        cohort
    );
    assert_eq!(
        app.get(&format!("/api/v1/patients/{}", members[0]), &mine)
            .await
            .status(),
        200
    );
    error_body(
        app.get(&format!("/api/v1/patients/{outsider}"), &mine)
            .await,
        403,
    )
    .await;

    let stranger = app
        .create_facilitator(&crate::helpers::facilitator_body("stranger@example.org"))
        .await;
    let theirs = app.facilitator_user(program, stranger).await;
    assert_eq!(
        body(app.get("/api/v1/cohorts", &theirs).await, 200).await["cohorts"],
        json!([])
    );
    error_body(
        app.get(&format!("/api/v1/cohorts/{cohort}"), &theirs).await,
        403,
    )
    .await;
    error_body(
        app.get(&format!("/api/v1/patients/{}", members[0]), &theirs)
            .await,
        403,
    )
    .await;
}

#[tokio::test]
async fn a_hand_set_team_must_be_valid_unless_a_reason_is_given() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (therapist, nurse) = app.staff_pair().await;
    app.waitlist(&lead, program, 4, 3).await;
    let formed = body(app.form(&lead, program, false).await, 201).await;
    let cohort = formed["cohorts"][0]["id"].as_i64().expect("id");
    let path = format!("/api/v1/cohorts/{cohort}/facilitators");
    let only_therapist = json!([{"facilitator_id": therapist, "role": "lead"}]);
    let refused = app
        .request(
            reqwest::Method::PUT,
            &path,
            Some(&lead),
            Some(&only_therapist),
        )
        .await;
    let error = error_body(refused, 422).await;
    let violations = error["error"]["violations"].as_array().expect("violations");
    assert!(
        violations
            .iter()
            .any(|v| v.as_str().unwrap_or_default().contains("nurse")),
        "{violations:?}"
    );

    let overridden = app
        .request(
            reqwest::Method::PUT,
            &path,
            Some(&lead),
            Some(&json!({"facilitators": [{"facilitator_id": therapist, "role": "lead"}], "override_reason": "nurse on call by phone"})),
        )
        .await;
    let cohort_view = body(overridden, 200).await;
    assert_eq!(
        cohort_view["staffing"]["override_reason"],
        "nurse on call by phone"
    );
    let log = body(
        app.get(&format!("/api/v1/audit?entity=cohort&id={cohort}"), &lead)
            .await,
        200,
    )
    .await;
    assert_eq!(log["entries"][0]["action"], "override_staffing");
    assert_eq!(log["entries"][0]["detail"], "nurse on call by phone");

    let valid = json!([{"facilitator_id": therapist, "role": "lead"}, {"facilitator_id": nurse, "role": "co_facilitator"}]);
    let accepted = body(
        app.request(reqwest::Method::PUT, &path, Some(&lead), Some(&valid))
            .await,
        200,
    )
    .await;
    assert_eq!(accepted["staffing"]["complete"], true);
}

#[tokio::test]
async fn a_lead_reschedules_or_cancels_a_session_but_not_one_that_started() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    app.waitlist(&lead, program, 4, 3).await;
    let formed = body(app.form(&lead, program, false).await, 201).await;
    let cohort = body(
        app.get(
            &format!("/api/v1/cohorts/{}", formed["cohorts"][0]["id"]),
            &lead,
        )
        .await,
        200,
    )
    .await;
    let second = cohort["sessions"][1]["id"].as_i64().expect("session id");
    let third = cohort["sessions"][2]["id"].as_i64().expect("session id");
    let new_time = (Utc::now() + Duration::days(30))
        .format("%Y-%m-%dT18:30:00Z")
        .to_string();
    let moved = body(
        app.patch(
            &format!("/api/v1/sessions/{second}"),
            &lead,
            &json!({"starts_at": new_time}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(moved["sessions"][1]["starts_at"], json!(new_time));
    let cancelled = body(
        app.patch(
            &format!("/api/v1/sessions/{third}"),
            &lead,
            &json!({"status": "cancelled"}),
        )
        .await,
        200,
    )
    .await;
    assert_eq!(cancelled["sessions"][2]["status"], "cancelled");
    error_body(
        app.patch(
            &format!("/api/v1/sessions/{third}"),
            &lead,
            &json!({"status": "cancelled"}),
        )
        .await,
        409,
    )
    .await;
    crate::helpers::assert_field_error(
        app.patch(
            &format!("/api/v1/sessions/{second}"),
            &lead,
            &json!({"starts_at": "2020-01-01T00:00:00Z"}),
        )
        .await,
        "starts_at",
    )
    .await;
}

/// Counts the statements a connection starts.
struct QueryCounter(std::sync::Arc<std::sync::atomic::AtomicUsize>);

impl diesel::connection::Instrumentation for QueryCounter {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        if matches!(
            event,
            diesel::connection::InstrumentationEvent::StartQuery { .. }
        ) {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    }
}

/// How many statements `service::cohorts::list` runs for a program, and how many
/// cohorts it lists.
fn queries_to_list(app: &crate::helpers::TestApp, program: i64) -> (usize, usize) {
    use diesel::Connection;
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    // A connection of its own, so the counter leaves with it instead of going back to
    // the app's pool.
    let pool = cohorts::db::connect(&app.settings.database_url, 1).expect("a pool");
    let mut conn = pool.get().expect("a connection");
    conn.set_instrumentation(QueryCounter(count.clone()));
    let admin = cohorts::service::auth::Actor {
        id: 1,
        email: "admin@localhost".into(),
        name: "Administrator".into(),
        role: cohorts::db::models::user::Role::Admin,
        program_ids: vec![],
        facilitator_id: None,
    };
    let listed = cohorts::service::cohorts::list(&mut conn, &admin, Some(program.into()))
        .expect("cohorts listed");
    (
        count.load(std::sync::atomic::Ordering::SeqCst),
        listed.len(),
    )
}

#[tokio::test]
async fn listing_cohorts_takes_as_many_queries_for_100_cohorts_as_for_10() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (therapist, nurse) = app.staff_pair().await;
    let mut created = 0;
    let mut counts = Vec::new();
    for target in [10, 100] {
        while created < target {
            let mut members = Vec::new();
            for part in ["a", "b"] {
                let name = format!("Member {created}{part}");
                let email = format!("m{created}{part}@example.org");
                members.push(app.create_patient(&lead, program, &name, &email).await);
            }
            let request = json!({
                "program_id": program,
                "members": members,
                "first_session_at": "2030-01-08T18:00:00-08:00",
                "facilitators": [
                    {"facilitator_id": therapist, "role": "lead"},
                    {"facilitator_id": nurse, "role": "co_facilitator"}
                ],
                "override_reason": "a small group for the query count",
            });
            body(app.post("/api/v1/cohorts", &lead, &request).await, 201).await;
            created += 1;
        }
        let (queries, listed) = queries_to_list(&app, program);
        assert_eq!(listed, target, "every cohort is listed");
        counts.push((target, queries));
    }
    assert_eq!(
        counts[0].1, counts[1].1,
        "the query count grew with the cohorts: {counts:?}"
    );
}

#[tokio::test]
async fn a_cohort_below_the_minimum_size_is_refused_in_plain_english() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let alone = app
        .create_patient(&lead, program, "Only One", "one@example.org")
        .await;
    let request = json!({
        "program_id": program,
        "members": [alone],
        "first_session_at": "2030-01-08T18:00:00-08:00",
    });
    let refused = body(app.post("/api/v1/cohorts", &lead, &request).await, 422).await;
    let text = refused["error"].to_string();
    assert!(
        text.contains("1 member is fewer than the minimum of 4"),
        "{text}"
    );
}
