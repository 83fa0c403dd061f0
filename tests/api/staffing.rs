use crate::helpers::{facilitator_body, spawn_app};
use chrono::{Duration, Utc};
use serde_json::{json, Value};

async fn staffed_cohort(app: &crate::helpers::TestApp) -> (i64, String, i64, i64, i64) {
    let (program, lead) = app.program_with_lead().await;
    let (therapist, nurse) = app.staff_pair().await;
    app.waitlist(&lead, program, 5, 3).await;
    let formed: Value = app
        .form(&lead, program, false)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(formed["cohorts"][0]["staffing"]["complete"], true);
    (
        program,
        lead,
        formed["cohorts"][0]["id"].as_i64().expect("id"),
        therapist,
        nurse,
    )
}

#[tokio::test]
async fn deactivating_a_facilitator_flags_the_cohorts_that_lose_coverage() {
    let app = spawn_app().await;
    let (_, lead, cohort, therapist, _) = staffed_cohort(&app).await;
    let updated: Value = app
        .patch(
            &format!("/api/v1/facilitators/{therapist}"),
            &lead,
            &json!({"active": false}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(updated["cohorts_losing_coverage"], json!([cohort]));
    let view: Value = app
        .get(&format!("/api/v1/cohorts/{cohort}"), &lead)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["staffing"]["complete"], false);
    let gaps = view["staffing"]["gaps"].to_string();
    assert!(gaps.contains(&therapist.to_string()), "{gaps}");
}

#[tokio::test]
async fn a_licence_expiring_before_the_last_session_flags_the_cohort() {
    let app = spawn_app().await;
    let (_, lead, cohort, _, nurse) = staffed_cohort(&app).await;
    let soon = (Utc::now() + Duration::days(20)).date_naive().to_string();
    let updated: Value = app
        .patch(
            &format!("/api/v1/facilitators/{nurse}"),
            &lead,
            &json!({"licence_expires_on": soon}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(updated["cohorts_losing_coverage"], json!([cohort]));
    let view: Value = app
        .get(&format!("/api/v1/cohorts/{cohort}"), &lead)
        .await
        .json()
        .await
        .expect("json");
    assert!(
        view["staffing"]["gaps"].to_string().contains("licence"),
        "{}",
        view["staffing"]
    );
}

#[tokio::test]
async fn automatic_staffing_replaces_a_facilitator_who_left() {
    let app = spawn_app().await;
    let (_, lead, cohort, therapist, nurse) = staffed_cohort(&app).await;
    app.patch(
        &format!("/api/v1/facilitators/{therapist}"),
        &lead,
        &json!({"active": false}),
    )
    .await;
    let mut replacement = facilitator_body("replacement@example.org");
    replacement["availability"] = json!([{"weekday": "tue", "start": "17:00", "end": "21:00"}]);
    let new_therapist = app.create_facilitator(&replacement).await;
    let restaffed: Value = app
        .post(
            &format!("/api/v1/cohorts/{cohort}/staffing"),
            &lead,
            &json!({}),
        )
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        restaffed["staffing"]["complete"], true,
        "{}",
        restaffed["staffing"]
    );
    let mut team: Vec<i64> = restaffed["facilitators"]
        .as_array()
        .expect("team")
        .iter()
        .filter_map(|f| f["facilitator_id"].as_i64())
        .collect();
    team.sort_unstable();
    let mut expected = vec![new_therapist, nurse];
    expected.sort_unstable();
    assert_eq!(team, expected, "continuity keeps the nurse");
}

#[tokio::test]
async fn the_workload_view_shows_active_cohorts_and_sessions_per_week() {
    let app = spawn_app().await;
    let (_, lead, cohort, therapist, _) = staffed_cohort(&app).await;
    let idle = app
        .create_facilitator(&facilitator_body("idle@example.org"))
        .await;
    let listed: Value = app
        .get("/api/v1/facilitators?with_load=true", &lead)
        .await
        .json()
        .await
        .expect("json");
    let find = |id: i64| {
        listed["facilitators"]
            .as_array()
            .expect("list")
            .iter()
            .find(|f| f["id"] == id)
            .cloned()
            .expect("facilitator")
    };
    assert_eq!(find(therapist)["load"]["active_cohorts"], json!([cohort]));
    assert_eq!(find(idle)["load"]["active_cohorts"], json!([]));
    assert_eq!(find(idle)["load"]["sessions_next_7_days"], 0);
    let without: Value = app
        .get("/api/v1/facilitators", &lead)
        .await
        .json()
        .await
        .expect("json");
    assert!(without["facilitators"][0].get("load").is_none());
}

#[tokio::test]
async fn an_unknown_role_names_the_field_and_the_roles_there_are() {
    let app = spawn_app().await;
    let (_, lead, cohort, therapist, nurse) = staffed_cohort(&app).await;
    let path = format!("/api/v1/cohorts/{cohort}/facilitators");
    for (body, field) in [
        (
            json!([{"facilitator_id": therapist, "role": "lead"},
                   {"facilitator_id": nurse, "role": "captain"}]),
            "[1].role",
        ),
        (
            json!({"facilitators": [{"facilitator_id": therapist, "role": "captain"}],
                   "override_reason": "testing"}),
            "facilitators[0].role",
        ),
    ] {
        let response = app
            .request(reqwest::Method::PUT, &path, Some(&lead), Some(&body))
            .await;
        let error = crate::helpers::assert_field_error(response, field).await;
        let message = error["error"]["fields"][field].as_str().expect("message");
        assert!(
            message.contains("lead") && message.contains("co_facilitator"),
            "the roles there are: {error}"
        );
        assert!(message.contains("captain"), "what was sent: {error}");
    }
    // Nothing changed.
    let view: Value = app
        .get(&format!("/api/v1/cohorts/{cohort}"), &lead)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["facilitators"].as_array().map(Vec::len), Some(2));
}
