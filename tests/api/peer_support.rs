use crate::helpers::{error_body, facilitator_body, spawn_app, TestApp};
use chrono::{Duration, Utc};
use serde_json::{json, Value};

/// A program whose cohorts have 5 weekly sessions, and its lead.
async fn short_program(app: &TestApp) -> (i64, String) {
    let (program, lead) = app.program_with_lead().await;
    let response = app
        .patch(
            &format!("/api/v1/programs/{program}"),
            &app.admin_token,
            &json!({"schedule": {"sessions": 5}, "peer_support": {"max_size": 2, "auto_complete_after_days": 0}}),
        )
        .await;
    assert_eq!(response.status(), 200);
    (program, lead)
}

/// A cohort whose five sessions are all behind it, with `marks[member][session]`
/// recorded (`dntp` marks the session as not having taken place).
async fn finished_cohort(
    app: &TestApp,
    program: i64,
    lead: &str,
    marks: &[[&str; 5]],
) -> (i64, Vec<i64>) {
    let members = app.waitlist(lead, program, marks.len(), 60).await;
    let first = (Utc::now() - Duration::days(36)).to_rfc3339();
    let created: Value = app
        .post("/api/v1/cohorts", lead, &json!({"program_id": program, "members": members, "first_session_at": first, "override_reason": "past cohort"}))
        .await
        .json()
        .await
        .expect("json");
    let cohort = created["id"].as_i64().expect("id");
    let sessions: Vec<i64> = created["sessions"]
        .as_array()
        .expect("sessions")
        .iter()
        .filter_map(|s| s["id"].as_i64())
        .collect();
    for (index, session) in sessions.iter().enumerate() {
        if marks.iter().all(|m| m[index] == "dntp") {
            let response = app
                .patch(
                    &format!("/api/v1/sessions/{session}"),
                    lead,
                    &json!({"status": "did_not_take_place"}),
                )
                .await;
            assert_eq!(response.status(), 200);
            continue;
        }
        let records: Vec<Value> = members
            .iter()
            .zip(marks)
            .map(|(p, m)| json!({"patient_id": p, "status": m[index]}))
            .collect();
        let response = app
            .request(
                reqwest::Method::PUT,
                &format!("/api/v1/sessions/{session}/attendance"),
                Some(lead),
                Some(&json!({"records": records})),
            )
            .await;
        assert_eq!(response.status(), 200, "{:?}", response.text().await);
    }
    (cohort, members)
}

async fn complete(app: &TestApp, lead: &str, cohort: i64) -> reqwest::Response {
    app.post(
        &format!("/api/v1/cohorts/{cohort}/completion"),
        lead,
        &json!({}),
    )
    .await
}

fn accept(app: &TestApp, invitation: i64) -> i64 {
    let mut conn = app.conn();
    cohorts::service::peer::accept(&mut conn, invitation, Utc::now().naive_utc()).expect("accepted")
}

#[tokio::test]
async fn completion_counts_held_sessions_exactly_at_the_threshold() {
    let app = spawn_app().await;
    let (program, lead) = short_program(&app).await;
    let marks = [
        ["present", "present", "present", "absent", "dntp"], // 3 of 4: exactly 0.75
        ["present", "absent", "absent", "present", "dntp"],  // 2 of 4
        ["present", "present", "present", "excused", "dntp"], // excused is not attended: 3 of 4
        ["late", "left_early", "present", "present", "dntp"], // 4 of 4
    ];
    let (cohort, m) = finished_cohort(&app, program, &lead, &marks).await;
    let response = complete(&app, &lead, cohort).await;
    assert_eq!(response.status(), 200);
    let outcome: Value = response.json().await.expect("json");
    let result = |id: i64| {
        outcome["members"]
            .as_array()
            .expect("members")
            .iter()
            .find(|x| x["patient_id"] == id)
            .cloned()
            .expect("member")
    };
    assert_eq!(result(m[0])["completed"], true);
    assert_eq!(
        result(m[0])["held"],
        4,
        "the session that did not take place is not counted"
    );
    assert_eq!(result(m[1])["completed"], false);
    assert!(result(m[1])["reason"]
        .as_str()
        .unwrap_or_default()
        .contains("2 of 4"));
    assert_eq!(result(m[2])["completed"], true);
    assert_eq!(result(m[3])["completed"], true);

    let patient: Value = app
        .get(&format!("/api/v1/patients/{}", m[1]), &lead)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(patient["status"], "in_cohort");
    let patient: Value = app
        .get(&format!("/api/v1/patients/{}", m[0]), &lead)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(patient["status"], "completed");
    assert_eq!(patient["journey"][0]["member_status"], "completed");
    let view: Value = app
        .get(&format!("/api/v1/cohorts/{cohort}"), &lead)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(view["status"], "completed");
    error_body(complete(&app, &lead, cohort).await, 409).await;
}

#[tokio::test]
async fn completion_is_refused_while_sessions_remain_or_attendance_is_missing() {
    let app = spawn_app().await;
    let (program, lead) = short_program(&app).await;
    app.waitlist(&lead, program, 4, 3).await;
    let formed: Value = app
        .form(&lead, program, false)
        .await
        .json()
        .await
        .expect("json");
    let upcoming = formed["cohorts"][0]["id"].as_i64().expect("id");
    let body = error_body(complete(&app, &lead, upcoming).await, 409).await;
    assert_eq!(
        body["error"]["details"]["sessions_ahead"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );

    let members = app.waitlist(&lead, program, 4, 60).await;
    let first = (Utc::now() - Duration::days(36)).to_rfc3339();
    let past: Value = app
        .post(
            "/api/v1/cohorts",
            &lead,
            &json!({"program_id": program, "members": members, "first_session_at": first}),
        )
        .await
        .json()
        .await
        .expect("json");
    let body = error_body(
        complete(&app, &lead, past["id"].as_i64().expect("id")).await,
        409,
    )
    .await;
    assert_eq!(body["error"]["message"], "attendance is missing");
    assert_eq!(
        body["error"]["details"]["sessions_without_attendance"]
            .as_array()
            .map(Vec::len),
        Some(5)
    );
}

#[tokio::test]
async fn only_completers_who_consent_are_invited() {
    let app = spawn_app().await;
    let (program, lead) = short_program(&app).await;
    let all_present = ["present"; 5];
    let (cohort, m) = finished_cohort(
        &app,
        program,
        &lead,
        &[all_present, all_present, ["absent"; 5]],
    )
    .await;
    app.patch(
        &format!("/api/v1/patients/{}", m[1]),
        &lead,
        &json!({"email_consent": false}),
    )
    .await;
    let outcome: Value = complete(&app, &lead, cohort)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(outcome["invitations"].as_array().map(Vec::len), Some(1));
    let invited: Value = app
        .get(&format!("/api/v1/patients/{}", m[0]), &lead)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(invited["peer_invitations"][0]["status"], "pending");
    for other in &m[1..] {
        let patient: Value = app
            .get(&format!("/api/v1/patients/{other}"), &lead)
            .await
            .json()
            .await
            .expect("json");
        assert_eq!(patient["peer_invitations"], json!([]));
    }
}

#[tokio::test]
async fn circles_mix_cohorts_roll_over_when_full_and_are_led_by_a_peer() {
    let app = spawn_app().await;
    let (program, lead) = short_program(&app).await;
    let mut peer = facilitator_body("peer@example.org");
    peer["credentials"] = json!(["peer"]);
    peer["licence_expires_on"] = Value::Null;
    peer["availability"] = json!([{"weekday": "tue", "start": "08:00", "end": "22:00"}]);
    let peer_id = app.create_facilitator(&peer).await;

    let present = ["present"; 5];
    let (first_cohort, _) = finished_cohort(&app, program, &lead, &[present, present]).await;
    let (second_cohort, _) = finished_cohort(&app, program, &lead, &[present]).await;
    let first: Value = complete(&app, &lead, first_cohort)
        .await
        .json()
        .await
        .expect("json");
    let second: Value = complete(&app, &lead, second_cohort)
        .await
        .json()
        .await
        .expect("json");
    let invitations: Vec<i64> = first["invitations"]
        .as_array()
        .into_iter()
        .flatten()
        .chain(second["invitations"].as_array().into_iter().flatten())
        .filter_map(Value::as_i64)
        .collect();
    assert_eq!(invitations.len(), 3);

    // Capacity 2: one from each cohort share the first circle; the third starts a new one.
    let a = accept(&app, invitations[0]);
    let b = accept(&app, invitations[2]);
    let c = accept(&app, invitations[1]);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(
        accept(&app, invitations[0]),
        a,
        "answering twice keeps the seat"
    );

    let circles: Value = app
        .get(&format!("/api/v1/programs/{program}/peer-circles"), &lead)
        .await
        .json()
        .await
        .expect("json");
    let circles = circles["circles"].as_array().expect("circles");
    assert_eq!(circles.len(), 2);
    let mixed = circles.iter().find(|x| x["id"] == a).expect("first circle");
    assert_eq!(mixed["from_cohorts"], json!([first_cohort, second_cohort]));
    assert_eq!(mixed["active_members"], 2);
    assert_eq!(mixed["kind"], "peer_support");
    assert_eq!(mixed["sessions"].as_array().map(Vec::len), Some(6));
    assert_eq!(mixed["staffing"]["complete"], true, "{}", mixed["staffing"]);
    assert_eq!(mixed["facilitators"][0]["facilitator_id"], peer_id);
    assert_eq!(mixed["facilitators"][0]["role"], "lead");
}

async fn form_post(app: &TestApp, path: &str, body: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .expect("post")
}

async fn patient(app: &TestApp, lead: &str, id: i64) -> Value {
    app.get(&format!("/api/v1/patients/{id}"), lead)
        .await
        .json()
        .await
        .expect("json")
}

#[tokio::test]
async fn an_invitation_is_answered_by_its_link_and_a_tampered_link_changes_nothing() {
    let app = spawn_app().await;
    let (program, lead) = short_program(&app).await;
    let present = ["present"; 5];
    let (cohort, m) = finished_cohort(&app, program, &lead, &[present, present]).await;
    assert_eq!(complete(&app, &lead, cohort).await.status(), 200);
    let mails = crate::mail::wait_kind(&app.mail, "peer_invitation", 2).await;
    assert_eq!(mails.len(), 2, "one invitation per completer");
    let link_of = |email: &str| {
        mails
            .iter()
            .find(|mail| mail.envelope_to == vec![email.to_string()])
            .map(|mail| mail.link_path())
            .expect("an invitation to this patient")
    };
    let first = patient(&app, &lead, m[0]).await;
    let second = patient(&app, &lead, m[1]).await;
    let accept_link = link_of(first["email"].as_str().expect("email"));
    let decline_link = link_of(second["email"].as_str().expect("email"));

    let mut tampered = accept_link.clone().into_bytes();
    let last = tampered.len() - 1;
    // Another lower-case hex digit: a real change of the signature.
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    assert_eq!(
        app.client
            .get(app.url(&tampered))
            .send()
            .await
            .expect("get")
            .status(),
        400
    );
    assert_eq!(
        form_post(&app, &format!("{tampered}/peer"), "answer=accept")
            .await
            .status(),
        400
    );
    assert_eq!(
        patient(&app, &lead, m[0]).await["status"],
        "completed",
        "nothing changed"
    );

    let page = app
        .client
        .get(app.url(&accept_link))
        .send()
        .await
        .expect("get");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(
        html.contains("peer circle") && html.contains("No, thank you"),
        "{html}"
    );

    assert_eq!(
        form_post(&app, &format!("{accept_link}/peer"), "answer=accept")
            .await
            .status(),
        200
    );
    let joined = patient(&app, &lead, m[0]).await;
    assert_eq!(joined["status"], "peer_support");
    assert_eq!(joined["peer_invitations"][0]["status"], "accepted");
    let circle = joined["journey"]
        .as_array()
        .expect("journey")
        .iter()
        .find(|j| j["kind"] == "peer_support")
        .cloned()
        .expect("a circle");
    assert_eq!(circle["member_status"], "active");
    let history = joined["consent_history"].as_array().expect("history");
    assert_eq!(
        history.last().expect("latest")["source"],
        "peer_invitation",
        "fresh consent recorded"
    );

    assert_eq!(
        form_post(&app, &format!("{decline_link}/peer"), "answer=decline")
            .await
            .status(),
        200
    );
    let declined = patient(&app, &lead, m[1]).await;
    assert_eq!(declined["status"], "completed");
    assert_eq!(declined["peer_invitations"][0]["status"], "declined");
}

#[tokio::test]
async fn the_worker_completes_a_finished_cohort_on_its_own_once_attendance_is_complete() {
    let app = spawn_app().await;
    let (program, lead) = short_program(&app).await;
    app.patch(
        &format!("/api/v1/programs/{program}"),
        &app.admin_token,
        &json!({"peer_support": {"auto_complete_after_days": 7}}),
    )
    .await;
    let present = ["present"; 5];
    // The last of the five weekly sessions was eight days ago.
    let (cohort, m) = finished_cohort(&app, program, &lead, &[present]).await;
    let mut status = Value::Null;
    for _ in 0..100 {
        let view: Value = app
            .get(&format!("/api/v1/cohorts/{cohort}"), &lead)
            .await
            .json()
            .await
            .expect("json");
        status = view["status"].clone();
        if status == "completed" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(status, "completed");
    assert_eq!(
        patient(&app, &lead, m[0]).await["peer_invitations"][0]["status"],
        "pending"
    );
}

#[tokio::test]
async fn a_circle_member_gets_reminders_and_can_leave_by_link() {
    let app = spawn_app().await;
    let (program, lead) = short_program(&app).await;
    let (cohort, m) = finished_cohort(&app, program, &lead, &[["present"; 5]]).await;
    let outcome: Value = complete(&app, &lead, cohort)
        .await
        .json()
        .await
        .expect("json");
    let invitation = outcome["invitations"][0].as_i64().expect("invitation");
    let circle = accept(&app, invitation);
    let view: Value = app
        .get(&format!("/api/v1/cohorts/{circle}"), &lead)
        .await
        .json()
        .await
        .expect("json");
    let first = view["sessions"][0]["id"].as_i64().expect("session");
    let soon = (Utc::now() + Duration::minutes(90)).to_rfc3339();
    let moved = app
        .patch(
            &format!("/api/v1/sessions/{first}"),
            &lead,
            &json!({"starts_at": soon}),
        )
        .await;
    assert_eq!(moved.status(), 200);
    let reminders = crate::mail::wait_kind(&app.mail, "reminder", 1).await;
    let email = patient(&app, &lead, m[0]).await["email"].clone();
    assert_eq!(
        reminders.len(),
        1,
        "one reminder for a session 90 minutes away"
    );
    assert_eq!(json!(reminders[0].envelope_to), json!([email]));

    // The reminder's link lets the member leave the circle; history is kept.
    let link = reminders[0].link_path();
    let page = app.client.get(app.url(&link)).send().await.expect("get");
    assert!(page
        .text()
        .await
        .expect("html")
        .contains("Leave this circle"));
    let left = form_post(&app, &format!("{link}/leave"), "").await;
    assert_eq!(left.status(), 200);
    let after = patient(&app, &lead, m[0]).await;
    assert_eq!(after["status"], "completed");
    let membership = after["journey"]
        .as_array()
        .expect("journey")
        .iter()
        .find(|j| j["cohort_id"] == circle)
        .cloned()
        .expect("circle membership kept");
    assert_eq!(membership["member_status"], "withdrawn");
    assert_eq!(
        form_post(&app, &format!("{link}/leave"), "").await.status(),
        409
    );
}
