//! Mail to staff as they receive it: facilitators told when they join or leave a
//! cohort's team.

use crate::helpers::{facilitator_body, spawn_app, spawn_app_with, TestApp};
use crate::mail::{manual_worker, of_kind, quick, scenario, vevents, wait_kind, Seen};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

const ASSIGNMENT: &str = "facilitator_assignment";
const UNASSIGNED: &str = "facilitator_unassigned";

const PEOPLE: [(&str, Option<&str>, bool); 3] = [
    ("Ana Quill", None, true),
    ("Ben Rowan", Some("Europe/Berlin"), true),
    ("Cleo Sparrow", None, true),
];

async fn email_of(app: &TestApp, token: &str, facilitator: i64) -> String {
    let body: Value = app
        .get(&format!("/api/v1/facilitators/{facilitator}"), token)
        .await
        .json()
        .await
        .expect("facilitator");
    body["email"].as_str().expect("email").to_string()
}

fn to(mails: &[Seen], email: &str) -> usize {
    mails
        .iter()
        .filter(|m| m.envelope_to == vec![email.to_string()])
        .count()
}

/// Lets the worker poll a few more times, so a message that should not come has had
/// every chance to.
async fn settle() {
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
}

fn local(starts_at: &Value, zone: &str) -> String {
    let at: DateTime<Utc> = starts_at.as_str().expect("time").parse().expect("rfc3339");
    let tz: chrono_tz::Tz = zone.parse().expect("zone");
    format!(
        "{} ({zone})",
        at.with_timezone(&tz).format("%A %-d %B %Y, %H:%M %Z")
    )
}

async fn put_team(app: &TestApp, token: &str, cohort: i64, team: Value) {
    let response = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/cohorts/{cohort}/facilitators"),
            Some(token),
            Some(&json!({"facilitators": team, "override_reason": "testing the team mail"})),
        )
        .await;
    assert_eq!(response.status(), 200, "team set");
}

#[tokio::test]
async fn facilitators_are_mailed_when_assigned_by_hand() {
    let app = spawn_app().await;
    let s = scenario(&app, Duration::days(3), &PEOPLE).await;
    let therapist = email_of(&app, &s.lead, s.facilitators[0]).await;
    let nurse = email_of(&app, &s.lead, s.facilitators[1]).await;
    let mails = wait_kind(&app.mail, ASSIGNMENT, 2).await;
    assert_eq!(mails.len(), 2, "one per facilitator of the new cohort");
    assert_eq!((to(&mails, &therapist), to(&mails, &nurse)), (1, 1));
    let group = format!("Group {}", s.cohort);
    for mail in &mails {
        assert_eq!(mail.envelope_to.len(), 1, "one recipient per message");
        assert_eq!(mail.to, mail.envelope_to);
        assert_eq!(mail.kind, ASSIGNMENT, "X-Cohorts-Kind");
        assert!(mail.subject.contains(&group), "{}", mail.subject);
        assert!(mail.list_unsubscribe.is_none(), "staff mail, not a list");
        let first = local(&s.sessions[0]["starts_at"], "America/Vancouver");
        let last = local(&s.sessions[11]["starts_at"], "America/Vancouver");
        for part in [&mail.text, &mail.html] {
            assert!(part.contains(&first), "first session: {part}");
            assert!(part.contains(&last), "last session: {part}");
            assert!(part.contains("Members: 3"), "{part}");
            assert!(part.contains("https://meet.example.org/harbour-room"));
            assert!(part.contains(&format!("/staff/cohorts/{}", s.cohort)));
        }
        assert!(mail.text.contains("Weekly on "), "the slot: {}", mail.text);
        let ics = mail.ics.as_ref().expect("a calendar file");
        assert!(ics.contains("METHOD:REQUEST"));
        let events = vevents(ics);
        assert_eq!(events.len(), 12, "every session ahead");
        assert_eq!(
            events[0]["UID"],
            format!("session-{}@cohorts", s.sessions[0]["id"])
        );
    }
    let lead_mail = mails
        .iter()
        .find(|m| m.envelope_to == vec![therapist.clone()])
        .expect("the lead's mail");
    assert!(lead_mail.text.contains("as lead facilitator"));
    let co_mail = mails
        .iter()
        .find(|m| m.envelope_to == vec![nurse.clone()])
        .expect("the co-facilitator's mail");
    assert!(co_mail.text.contains("as co-facilitator"));

    // A third facilitator added by hand is told; the two who stay are not told again.
    let mut third = facilitator_body("third@example.org");
    third["name"] = json!("Kim Third");
    let third_id = app.create_facilitator(&third).await;
    put_team(
        &app,
        &s.lead,
        s.cohort,
        json!([{"facilitator_id": s.facilitators[0], "role": "lead"},
               {"facilitator_id": s.facilitators[1], "role": "co_facilitator"},
               {"facilitator_id": third_id, "role": "co_facilitator"}]),
    )
    .await;
    let mails = wait_kind(&app.mail, ASSIGNMENT, 3).await;
    settle().await;
    let mails_after = of_kind(&app.mail, ASSIGNMENT);
    assert_eq!(mails.len(), 3);
    assert_eq!(mails_after.len(), 3, "nobody who stayed is told again");
    assert_eq!(to(&mails_after, "third@example.org"), 1);
    assert!(of_kind(&app.mail, UNASSIGNED).is_empty());
}

async fn formed_cohort(app: &TestApp) -> (String, i64, i64, i64) {
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
    let cohort = formed["cohorts"][0]["id"].as_i64().expect("id");
    (lead, cohort, therapist, nurse)
}

#[tokio::test]
async fn automatic_staffing_mails_only_newly_assigned_facilitators() {
    let app = spawn_app().await;
    let (lead, cohort, therapist, nurse) = formed_cohort(&app).await;
    let therapist_email = email_of(&app, &lead, therapist).await;
    let nurse_email = email_of(&app, &lead, nurse).await;
    // Formation tells both.
    let formed = wait_kind(&app.mail, ASSIGNMENT, 2).await;
    assert_eq!(
        (to(&formed, &therapist_email), to(&formed, &nurse_email)),
        (1, 1)
    );

    // The therapist leaves; automatic staffing brings in a replacement.
    let response = app
        .patch(
            &format!("/api/v1/facilitators/{therapist}"),
            &lead,
            &json!({"active": false}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let replacement = app
        .create_facilitator(&facilitator_body("replacement@example.org"))
        .await;
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
    let team: Vec<i64> = restaffed["facilitators"]
        .as_array()
        .expect("team")
        .iter()
        .filter_map(|f| f["facilitator_id"].as_i64())
        .collect();
    assert!(
        team.contains(&replacement) && team.contains(&nurse),
        "{team:?}"
    );

    let assigned = wait_kind(&app.mail, ASSIGNMENT, 3).await;
    let removed = wait_kind(&app.mail, UNASSIGNED, 1).await;
    settle().await;
    let assigned_after = of_kind(&app.mail, ASSIGNMENT);
    assert_eq!(assigned.len(), 3);
    assert_eq!(assigned_after.len(), 3, "nothing more");
    assert_eq!(to(&assigned_after, "replacement@example.org"), 1);
    assert_eq!(to(&assigned_after, &nurse_email), 1, "the nurse stayed");
    assert_eq!(to(&assigned_after, &therapist_email), 1);

    // The therapist is told, and the sessions leave their calendar.
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].envelope_to, vec![therapist_email]);
    assert!(removed[0].text.contains(&format!("Group {cohort}")));
    let ics = removed[0].ics.as_ref().expect("a cancellation");
    assert!(ics.contains("METHOD:CANCEL"));
    assert!(vevents(ics).iter().all(|e| e["STATUS"] == "CANCELLED"));
}

#[tokio::test]
async fn assignment_mail_shows_times_in_the_facilitators_zone() {
    let app = spawn_app().await;
    let s = scenario(&app, Duration::days(3), &PEOPLE).await;
    let mut abroad = facilitator_body("abroad@example.org");
    abroad["name"] = json!("Lou Abroad");
    abroad["timezone"] = json!("Europe/Berlin");
    let abroad_id = app.create_facilitator(&abroad).await;
    put_team(
        &app,
        &s.lead,
        s.cohort,
        json!([{"facilitator_id": s.facilitators[0], "role": "lead"},
               {"facilitator_id": abroad_id, "role": "co_facilitator"}]),
    )
    .await;
    let mails = wait_kind(&app.mail, ASSIGNMENT, 3).await;
    let mine: Vec<&Seen> = mails
        .iter()
        .filter(|m| m.envelope_to == vec!["abroad@example.org".to_string()])
        .collect();
    assert_eq!(mine.len(), 1);
    let mail = mine[0];
    for session in &s.sessions {
        let berlin = local(&session["starts_at"], "Europe/Berlin");
        assert!(mail.text.contains(&berlin), "{berlin} in {}", mail.text);
    }
    assert!(mail
        .html
        .contains(&local(&s.sessions[0]["starts_at"], "Europe/Berlin")));
    assert!(
        !mail.text.contains("(America/Vancouver)"),
        "only the facilitator's zone: {}",
        mail.text
    );
    assert!(mail.text.contains("in your time zone, Europe/Berlin"));
}

#[tokio::test]
async fn assignment_mail_names_no_patient() {
    let app = spawn_app().await;
    let s = scenario(&app, Duration::days(3), &PEOPLE).await;
    let mails = wait_kind(&app.mail, ASSIGNMENT, 2).await;
    assert_eq!(mails.len(), 2);
    for mail in &mails {
        for member in &s.members {
            assert!(!mail.raw.contains(&member.email), "a member's address");
            assert!(!mail.visible().contains(&member.name), "{}", member.name);
            let first_name = member.name.split(' ').next().expect("first name");
            assert!(!mail.visible().contains(first_name), "{first_name}");
        }
        let ics = mail.ics.as_ref().expect("ics");
        let unfolded = ics.replace("\r\n ", "");
        let attendees: Vec<&str> = unfolded
            .lines()
            .filter(|l| l.starts_with("ATTENDEE"))
            .collect();
        assert!(attendees
            .iter()
            .all(|a| a.ends_with(&format!("mailto:{}", mail.envelope_to[0]))));
    }
}

#[tokio::test]
async fn role_changes_removals_and_returns_are_each_told_once() {
    let app = spawn_app().await;
    let s = scenario(&app, Duration::days(3), &PEOPLE).await;
    let (therapist, nurse) = (s.facilitators[0], s.facilitators[1]);
    let therapist_email = email_of(&app, &s.lead, therapist).await;
    let nurse_email = email_of(&app, &s.lead, nurse).await;
    wait_kind(&app.mail, ASSIGNMENT, 2).await;

    // The roles swap: both are told their new role.
    put_team(
        &app,
        &s.lead,
        s.cohort,
        json!([{"facilitator_id": nurse, "role": "lead"},
               {"facilitator_id": therapist, "role": "co_facilitator"}]),
    )
    .await;
    let mails = wait_kind(&app.mail, ASSIGNMENT, 4).await;
    assert_eq!(mails.len(), 4);
    let to_nurse: Vec<&Seen> = mails
        .iter()
        .filter(|m| m.envelope_to == vec![nurse_email.clone()])
        .collect();
    assert_eq!(to_nurse.len(), 2);
    assert!(
        to_nurse
            .iter()
            .any(|m| m.subject.contains("is now lead facilitator")
                && m.text.contains("from co-facilitator to lead facilitator")),
        "{to_nurse:?}"
    );

    // The therapist leaves, then comes back: told each time.
    put_team(
        &app,
        &s.lead,
        s.cohort,
        json!([{"facilitator_id": nurse, "role": "lead"}]),
    )
    .await;
    let removed = wait_kind(&app.mail, UNASSIGNED, 1).await;
    assert_eq!(removed.len(), 1);
    assert_eq!(removed[0].envelope_to, vec![therapist_email.clone()]);
    put_team(
        &app,
        &s.lead,
        s.cohort,
        json!([{"facilitator_id": nurse, "role": "lead"},
               {"facilitator_id": therapist, "role": "co_facilitator"}]),
    )
    .await;
    let mails = wait_kind(&app.mail, ASSIGNMENT, 5).await;
    settle().await;
    assert_eq!(mails.len(), 5);
    assert_eq!(of_kind(&app.mail, ASSIGNMENT).len(), 5, "nothing more");
    assert_eq!(of_kind(&app.mail, UNASSIGNED).len(), 1);
    assert_eq!(
        to(&mails, &therapist_email),
        3,
        "assigned, role, back again"
    );
    assert_eq!(
        to(&mails, &nurse_email),
        2,
        "assigned, role; not the return"
    );
}

#[tokio::test]
async fn a_facilitator_removed_before_being_told_hears_nothing() {
    let app = spawn_app_with(|s| s.worker_enabled = Some(false)).await;
    let s = scenario(&app, Duration::days(3), &PEOPLE).await;
    let (therapist, nurse) = (s.facilitators[0], s.facilitators[1]);
    let nurse_email = email_of(&app, &s.lead, nurse).await;
    put_team(
        &app,
        &s.lead,
        s.cohort,
        json!([{"facilitator_id": therapist, "role": "lead"}]),
    )
    .await;
    let worker = manual_worker(&app, quick());
    worker.pass().await.expect("pass");
    let assigned = of_kind(&app.mail, ASSIGNMENT);
    assert_eq!(assigned.len(), 1, "only the one still on the team");
    assert_eq!(to(&assigned, &nurse_email), 0);
    assert!(of_kind(&app.mail, UNASSIGNED).is_empty());
}

#[tokio::test]
async fn an_imported_past_cohort_tells_no_facilitator() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let (therapist, nurse) = app.staff_pair().await;
    let mut members = Vec::new();
    for n in 0..4 {
        members.push(
            app.create_patient(
                &lead,
                program,
                &format!("Past {n}"),
                &format!("past{n}@example.org"),
            )
            .await,
        );
    }
    let first = (Utc::now() - Duration::days(200)).to_rfc3339();
    let response = app
        .post(
            "/api/v1/cohorts",
            &lead,
            &json!({"program_id": program, "members": members, "first_session_at": first,
                    "facilitators": [{"facilitator_id": therapist, "role": "lead"},
                                     {"facilitator_id": nurse, "role": "co_facilitator"}],
                    "override_reason": "imported"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    settle().await;
    assert!(of_kind(&app.mail, ASSIGNMENT).is_empty());
}

#[tokio::test]
async fn leads_preview_team_mail_as_staff_mail() {
    let app = spawn_app().await;
    let (_, lead) = app.program_with_lead().await;
    for kind in [ASSIGNMENT, UNASSIGNED] {
        let body: Value = app
            .get(&format!("/api/v1/email-templates/{kind}/preview"), &lead)
            .await
            .json()
            .await
            .expect("preview");
        assert_eq!(body["patient_email"], false, "{kind}");
        assert!(body["text"].as_str().expect("text").contains("Group 1"));
    }
}
