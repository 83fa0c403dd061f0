//! Mail to staff as they receive it: facilitators told when they join or leave a
//! cohort's team; program leads told when a follow-up escalates.

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

const ESCALATED: &str = "follow_up_escalated";

async fn email_of_user(app: &TestApp, token: &str) -> String {
    let me: Value = app.get("/api/v1/me", token).await.json().await.expect("me");
    me["email"].as_str().expect("email").to_string()
}

/// A program with two leads and a cohort of four whose first six weekly sessions have
/// started, plus a lead of another program.
struct Running {
    lead_emails: Vec<String>,
    facilitator_emails: Vec<String>,
    cohort: i64,
    members: Vec<i64>,
    sessions: Vec<i64>,
    facilitator: String,
}

async fn running_cohort(app: &TestApp) -> Running {
    let (program, lead) = app.program_with_lead().await;
    let (_, second_lead) = app.create_user("program_lead", &[program]).await;
    let (therapist, nurse) = app.staff_pair().await;
    let members = app.waitlist(&lead, program, 4, 40).await;
    let first = (Utc::now() - Duration::days(36)).to_rfc3339();
    let response = app
        .post(
            "/api/v1/cohorts",
            &lead,
            &json!({"program_id": program, "members": members, "first_session_at": first,
                    "facilitators": [{"facilitator_id": therapist, "role": "lead"},
                                     {"facilitator_id": nurse, "role": "co_facilitator"}],
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
    // A lead of another program, who must hear nothing of this one.
    let (_, other_lead) = app.program_with_lead().await;
    assert!(!email_of_user(app, &other_lead).await.is_empty());
    Running {
        lead_emails: vec![
            email_of_user(app, &lead).await,
            email_of_user(app, &second_lead).await,
        ],
        facilitator_emails: vec![
            email_of(app, &lead, therapist).await,
            email_of(app, &lead, nurse).await,
        ],
        facilitator: app.facilitator_user(program, therapist).await,
        cohort: cohort["id"].as_i64().expect("id"),
        members,
        sessions,
    }
}

async fn absent(app: &TestApp, token: &str, session: i64, patients: &[i64]) {
    let records: Vec<Value> = patients
        .iter()
        .map(|p| json!({"patient_id": p, "status": "absent"}))
        .collect();
    let response = app
        .request(
            reqwest::Method::PUT,
            &format!("/api/v1/sessions/{session}/attendance"),
            Some(token),
            Some(&json!({ "records": records })),
        )
        .await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
}

/// Each lead of the program got exactly one escalation, and nobody else any.
fn assert_one_per_lead(mails: &[Seen], r: &Running) {
    assert_eq!(mails.len(), r.lead_emails.len(), "one message per lead");
    for email in &r.lead_emails {
        assert_eq!(to(mails, email), 1, "{email}");
    }
    for email in &r.facilitator_emails {
        assert_eq!(
            to(mails, email),
            0,
            "facilitators do not get the escalation"
        );
    }
}

#[tokio::test]
async fn an_overdue_follow_up_reaches_each_program_lead_once() {
    use cohorts::db::schema::follow_ups;
    use diesel::prelude::*;
    let app = spawn_app().await;
    let r = running_cohort(&app).await;
    absent(&app, &r.facilitator, r.sessions[0], &r.members[..2]).await;
    absent(&app, &r.facilitator, r.sessions[1], &r.members[..2]).await;
    // Facilitators hear of the two follow-ups at once; leads not yet.
    wait_kind(&app.mail, "follow_up", 4).await;
    let open: Value = app
        .get("/api/v1/follow-ups?status=open", &r.facilitator)
        .await
        .json()
        .await
        .expect("follow-ups");
    let open = open["follow_ups"].as_array().expect("list").clone();
    assert_eq!(open.len(), 2);
    let acknowledged = open
        .iter()
        .find(|f| f["patient_id"] == r.members[1])
        .expect("follow-up");
    let response = app
        .post(
            &format!("/api/v1/follow-ups/{}/acknowledge", acknowledged["id"]),
            &r.facilitator,
            &json!({"note": "called"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    settle().await;
    assert!(
        of_kind(&app.mail, ESCALATED).is_empty(),
        "not before 72 hours"
    );

    // 73 hours pass: the worker's housekeeping escalates the unacknowledged one.
    let back = Utc::now().naive_utc() - Duration::hours(73);
    diesel::update(follow_ups::table)
        .set(follow_ups::opened_at.eq(back))
        .execute(&mut *app.conn())
        .expect("backdated");
    let mails = wait_kind(&app.mail, ESCALATED, 2).await;
    // Housekeeping again, by hand as well as by the worker: nothing more.
    cohorts::service::housekeeping(&mut app.conn(), Utc::now().naive_utc()).expect("housekeeping");
    settle().await;
    let mails_after = of_kind(&app.mail, ESCALATED);
    assert_eq!(mails.len(), 2);
    assert_one_per_lead(&mails_after, &r);
    let group = format!("Group {}", r.cohort);
    for mail in &mails_after {
        assert_eq!(mail.envelope_to.len(), 1, "one recipient per message");
        assert!(mail.subject.contains(&group), "{}", mail.subject);
        assert!(
            mail.text.contains("2 consecutive absences"),
            "{}",
            mail.text
        );
        assert!(mail.text.contains("not acknowledged within 72 hours"));
        assert!(mail.text.contains("(America/Vancouver)"), "the zone named");
        assert!(mail.text.contains("/staff/follow-ups"), "{}", mail.text);
        assert!(mail.html.contains("/staff/follow-ups"));
        assert!(mail.ics.is_none());
        // No member in it: not a name (the waitlist's are "Waiting n"), not an address.
        assert!(!mail.visible().contains("Waiting"), "{}", mail.visible());
        assert!(!mail.raw.contains("w40-"), "no member's address");
        assert!(!mail.visible().contains("called"), "no note");
    }
}

#[tokio::test]
async fn an_at_risk_member_is_escalated_to_the_leads_at_once() {
    let app = spawn_app().await;
    let r = running_cohort(&app).await;
    for session in &r.sessions[..4] {
        absent(&app, &r.facilitator, *session, &r.members[..1]).await;
    }
    let mails = wait_kind(&app.mail, ESCALATED, 2).await;
    cohorts::service::housekeeping(&mut app.conn(), Utc::now().naive_utc()).expect("housekeeping");
    settle().await;
    let mails_after = of_kind(&app.mail, ESCALATED);
    assert_eq!(mails.len(), 2);
    assert_one_per_lead(&mails_after, &r);
    for mail in &mails_after {
        assert!(mail.subject.contains("at risk"), "{}", mail.subject);
        assert!(
            mail.text.contains("4 consecutive absences"),
            "{}",
            mail.text
        );
        assert!(!mail.visible().contains("Waiting"));
    }
    // The facilitators still get their follow-up tasks (outreach at 2, at risk at 4).
    let tasks = of_kind(&app.mail, "follow_up");
    assert!(tasks
        .iter()
        .all(|m| r.facilitator_emails.contains(&m.envelope_to[0])));
}

#[tokio::test]
async fn every_calendar_message_about_a_session_carries_a_higher_sequence_than_the_last() {
    let app = spawn_app().await;
    let s = scenario(&app, Duration::days(3), &PEOPLE).await;
    let (therapist, nurse) = (s.facilitators[0], s.facilitators[1]);
    let therapist_email = email_of(&app, &s.lead, therapist).await;
    wait_kind(&app.mail, ASSIGNMENT, 2).await;
    // The second session moves: a REQUEST to the team.
    let second = s.sessions[1]["id"].as_i64().expect("id");
    let moved_to = (Utc::now() + Duration::days(12)).to_rfc3339();
    let response = app
        .patch(
            &format!("/api/v1/sessions/{second}"),
            &s.lead,
            &json!({"starts_at": moved_to}),
        )
        .await;
    assert_eq!(response.status(), 200);
    wait_kind(&app.mail, "session_changed", 2).await;
    // The therapist leaves (CANCEL of every session ahead), then comes back (REQUEST).
    put_team(
        &app,
        &s.lead,
        s.cohort,
        json!([{"facilitator_id": nurse, "role": "lead"}]),
    )
    .await;
    wait_kind(&app.mail, UNASSIGNED, 1).await;
    put_team(
        &app,
        &s.lead,
        s.cohort,
        json!([{"facilitator_id": nurse, "role": "lead"},
               {"facilitator_id": therapist, "role": "co_facilitator"}]),
    )
    .await;
    wait_kind(&app.mail, ASSIGNMENT, 3).await;
    settle().await;

    // What the therapist's calendar received, in order: (kind, METHOD, UID → SEQUENCE).
    type Sequences = Vec<(String, i64)>;
    let received: Vec<(String, String, Sequences)> = app
        .mail
        .messages()
        .iter()
        .map(crate::mail::seen)
        .filter(|m| m.envelope_to == vec![therapist_email.clone()])
        .filter_map(|m| {
            let ics = m.ics.clone()?;
            let method = if ics.contains("METHOD:CANCEL") {
                "CANCEL"
            } else {
                "REQUEST"
            };
            let events = vevents(&ics)
                .iter()
                .map(|e| {
                    let sequence = e["SEQUENCE"].parse().expect("a number");
                    (e["UID"].clone(), sequence)
                })
                .collect();
            Some((m.kind.clone(), method.to_string(), events))
        })
        .collect();
    let kinds: Vec<(&str, &str)> = received
        .iter()
        .map(|(kind, method, _)| (kind.as_str(), method.as_str()))
        .collect();
    assert_eq!(
        kinds,
        [
            (ASSIGNMENT, "REQUEST"),
            ("session_changed", "REQUEST"),
            (UNASSIGNED, "CANCEL"),
            (ASSIGNMENT, "REQUEST"),
        ]
    );
    let mut last: std::collections::HashMap<String, (i64, &str)> = Default::default();
    for (kind, _, events) in &received {
        for (uid, sequence) in events {
            if let Some((before, earlier)) = last.get(uid) {
                assert!(
                    sequence > before,
                    "{uid}: SEQUENCE {sequence} in {kind} after {before} in {earlier}: {received:?}"
                );
            }
            last.insert(uid.clone(), (*sequence, kind.as_str()));
        }
    }
    let first = format!("session-{}@cohorts", s.sessions[0]["id"]);
    let of_first: Vec<i64> = received
        .iter()
        .filter_map(|(_, _, events)| events.iter().find(|(uid, _)| *uid == first))
        .map(|(_, sequence)| *sequence)
        .collect();
    assert_eq!(of_first.len(), 3, "assigned, removed, back: {received:?}");
}
