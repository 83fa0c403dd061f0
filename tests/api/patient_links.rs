//! The signed links in patients' emails: the session page in the patient's zone, the
//! answer recorded and shown to facilitators, one-click unsubscribe, and refusal of
//! tampered or expired links that changes nothing.

use crate::helpers::{spawn_app_with, TestApp};
use crate::mail::{manual_worker, of_kind, quick, scenario, Scenario};
use chrono::{Duration, Utc};
use cohorts::email::links::{self, LinkClaims, Purpose};
use serde_json::{json, Value};

async fn with_welcomes() -> (TestApp, Scenario) {
    let app = spawn_app_with(|s| s.worker_enabled = Some(false)).await;
    let s = scenario(
        &app,
        Duration::days(3),
        &[
            ("Ana Quill", None, true),
            ("Ben Rowan", Some("Europe/Berlin"), true),
        ],
    )
    .await;
    manual_worker(&app, quick()).pass().await.expect("pass");
    (app, s)
}

async fn form(app: &TestApp, path: &str, body: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .expect("post")
}

#[tokio::test]
async fn the_link_shows_the_session_in_the_patients_zone_and_records_the_answer_for_facilitators() {
    let (app, s) = with_welcomes().await;
    let ben = &s.members[1];
    let welcome = of_kind(&app.mail, "welcome")
        .into_iter()
        .find(|m| m.envelope_to == vec![ben.email.clone()])
        .expect("Ben's welcome");
    let path = welcome.link_path();
    let page = app.client.get(app.url(&path)).send().await.expect("page");
    assert_eq!(page.status(), 200);
    let html = page.text().await.expect("html");
    assert!(html.contains("(Europe/Berlin)"), "{html}");
    assert!(html.contains("I&#x27;ll be there") || html.contains("I'll be there"));
    assert!(html.contains("I can&#x27;t make it") || html.contains("I can't make it"));
    assert!(!html.contains("<script"));

    let answered = form(&app, &format!("{path}/rsvp"), "response=no").await;
    assert_eq!(answered.status(), 200);
    let cohort: Value = app
        .get(&format!("/api/v1/cohorts/{}", s.cohort), &s.lead)
        .await
        .json()
        .await
        .expect("cohort");
    assert_eq!(cohort["sessions"][0]["rsvp"], json!({"yes": 0, "no": 1}));
    // Changing one's mind replaces the answer.
    assert_eq!(
        form(&app, &format!("{path}/rsvp"), "response=yes")
            .await
            .status(),
        200
    );
    let cohort: Value = app
        .get(&format!("/api/v1/cohorts/{}", s.cohort), &s.lead)
        .await
        .json()
        .await
        .expect("cohort");
    assert_eq!(cohort["sessions"][0]["rsvp"], json!({"yes": 1, "no": 0}));
    assert_eq!(
        form(&app, &format!("{path}/rsvp"), "response=perhaps")
            .await
            .status(),
        400
    );
}

#[tokio::test]
async fn a_tampered_or_expired_link_gets_a_friendly_page_and_changes_nothing() {
    let (app, s) = with_welcomes().await;
    let ana = &s.members[0];
    let welcome = of_kind(&app.mail, "welcome")
        .into_iter()
        .find(|m| m.envelope_to == vec![ana.email.clone()])
        .expect("Ana's welcome");
    let path = welcome.link_path();
    // Flip one character of the signature.
    let mut tampered = path.clone().into_bytes();
    let last = tampered.len() - 1;
    // Another lower-case hex digit: a real change of the signature.
    tampered[last] = if tampered[last] == b'0' { b'1' } else { b'0' };
    let tampered = String::from_utf8(tampered).expect("ascii");
    for (method, suffix, body) in [
        ("GET", "", ""),
        ("POST", "/rsvp", "response=no"),
        ("POST", "/unsubscribe", ""),
    ] {
        let url = app.url(&format!("{tampered}{suffix}"));
        let response = if method == "GET" {
            app.client.get(url).send().await.expect("get")
        } else {
            app.client.post(url).body(body).send().await.expect("post")
        };
        assert_eq!(response.status(), 400, "{method} {suffix}");
        let html = response.text().await.expect("html");
        assert!(html.contains("This link does not work"));
    }
    let key = app.settings.secret_key_bytes().expect("key");
    let session = s.sessions[0]["id"].as_i64().expect("id");
    let expired = links::sign(
        &key,
        &LinkClaims {
            purpose: Purpose::Session,
            patient_id: ana.id,
            session_id: Some(session),
            expires_at: (Utc::now() - Duration::minutes(1)).timestamp(),
        },
    );
    let response = form(&app, &format!("/p/{expired}/unsubscribe"), "").await;
    assert_eq!(response.status(), 410);
    assert!(response.text().await.expect("html").contains("expired"));
    // Nothing changed: no answer, consent intact.
    let cohort: Value = app
        .get(&format!("/api/v1/cohorts/{}", s.cohort), &s.lead)
        .await
        .json()
        .await
        .expect("cohort");
    assert_eq!(cohort["sessions"][0]["rsvp"], json!({"yes": 0, "no": 0}));
    let patient: Value = app
        .get(&format!("/api/v1/patients/{}", ana.id), &s.lead)
        .await
        .json()
        .await
        .expect("patient");
    assert_eq!(patient["email_consent"], true);
}

#[tokio::test]
async fn one_click_unsubscribe_withdraws_consent_from_the_link_and_cancels_queued_mail() {
    let (app, s) = with_welcomes().await;
    let ana = &s.members[0];
    let welcome = of_kind(&app.mail, "welcome")
        .into_iter()
        .find(|m| m.envelope_to == vec![ana.email.clone()])
        .expect("Ana's welcome");
    let header = welcome.list_unsubscribe.clone().expect("List-Unsubscribe");
    let url = header.trim_matches(['<', '>']);
    let path = &url[url.find("/p/").expect("link")..];
    assert_eq!(
        app.client
            .get(app.url(path))
            .send()
            .await
            .expect("form")
            .status(),
        200
    );
    // Queue a notice for her, then unsubscribe (RFC 8058 one-click POST) before it goes out.
    let second = s.sessions[1]["id"].as_i64().expect("id");
    let response = app
        .patch(
            &format!("/api/v1/sessions/{second}"),
            &s.lead,
            &json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let response = form(&app, path, "List-Unsubscribe=One-Click").await;
    assert_eq!(response.status(), 200);
    let patient: Value = app
        .get(&format!("/api/v1/patients/{}", ana.id), &s.lead)
        .await
        .json()
        .await
        .expect("patient");
    assert_eq!(patient["email_consent"], false);
    let history = patient["consent_history"].as_array().expect("history");
    assert_eq!(history.last().expect("event")["source"], "link");
    manual_worker(&app, quick()).pass().await.expect("pass");
    let notices = of_kind(&app.mail, "session_cancelled");
    assert!(notices
        .iter()
        .all(|m| m.envelope_to != vec![ana.email.clone()]));
    assert!(notices
        .iter()
        .any(|m| m.envelope_to == vec![s.members[1].email.clone()]));
    // A second click is harmless.
    assert_eq!(
        form(&app, path, "List-Unsubscribe=One-Click")
            .await
            .status(),
        200
    );
}
