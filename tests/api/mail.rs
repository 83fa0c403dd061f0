//! Email as recipients see it: messages arrive at a real SMTP server on 127.0.0.1 (the
//! test's own), are parsed back, and checked for what the design promises.

use crate::helpers::{spawn_app, spawn_app_with, SmtpSink, TestApp};
use crate::smtp_sink::Received;
use chrono::{DateTime, Duration, Utc};
use cohorts::email::Mailer;
use cohorts::worker::{Worker, WorkerConfig};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub const PROGRAM_NAME: &str = "Harbour Light Program";
const FORBIDDEN: [&str; 5] = ["psilocybin", "ketamine", "mdma", "psychedelic", "dosing"];
const WAIT: std::time::Duration = std::time::Duration::from_secs(20);

#[derive(Debug, Clone)]
pub struct Member {
    pub id: i64,
    pub name: String,
    pub email: String,
    pub timezone: Option<String>,
    pub consent: bool,
}

pub struct Scenario {
    pub program: i64,
    pub lead: String,
    pub cohort: i64,
    pub members: Vec<Member>,
    pub sessions: Vec<Value>,
    pub facilitators: Vec<i64>,
}

/// A program, its lead, two facilitators and a cohort whose first session starts
/// `first_in` from now, with the given members (name, zone, consent).
pub async fn scenario(
    app: &TestApp,
    first_in: Duration,
    people: &[(&str, Option<&str>, bool)],
) -> Scenario {
    let response = app
        .post(
            "/api/v1/programs",
            &app.admin_token,
            &json!({"name": PROGRAM_NAME, "site": "Nanaimo", "timezone": "America/Vancouver",
                    "modality": "ketamine", "join_url": "https://meet.example.org/harbour-room"}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let program = response.json::<Value>().await.expect("program")["id"]
        .as_i64()
        .expect("id");
    let (_, lead) = app.create_user("program_lead", &[program]).await;
    let mut members = Vec::new();
    for (name, zone, consent) in people {
        let email = format!(
            "{}-{}@example.org",
            name.to_lowercase().replace(' ', "."),
            &uuid::Uuid::new_v4().simple().to_string()[..6]
        );
        let response = app
            .post(
                &format!("/api/v1/programs/{program}/patients"),
                &lead,
                &json!({"name": name, "email": email, "timezone": zone, "email_consent": consent}),
            )
            .await;
        assert_eq!(response.status(), 201, "patient");
        let id = response.json::<Value>().await.expect("patient")["id"]
            .as_i64()
            .expect("id");
        members.push(Member {
            id,
            name: name.to_string(),
            email,
            timezone: zone.map(str::to_string),
            consent: *consent,
        });
    }
    let (therapist, nurse) = app.staff_pair().await;
    let first = (Utc::now() + first_in).to_rfc3339();
    let response = app
        .post(
            "/api/v1/cohorts",
            &lead,
            &json!({"program_id": program, "members": members.iter().map(|m| m.id).collect::<Vec<_>>(),
                    "first_session_at": first,
                    "facilitators": [{"facilitator_id": therapist, "role": "lead"},
                                     {"facilitator_id": nurse, "role": "co_facilitator"}],
                    "override_reason": "test cohort"}),
        )
        .await;
    assert_eq!(response.status(), 201, "cohort");
    let cohort: Value = response.json().await.expect("cohort");
    Scenario {
        program,
        lead,
        cohort: cohort["id"].as_i64().expect("cohort id"),
        members,
        sessions: cohort["sessions"].as_array().expect("sessions").clone(),
        facilitators: vec![therapist, nurse],
    }
}

/// What one recipient sees.
#[derive(Debug)]
pub struct Seen {
    pub envelope_to: Vec<String>,
    pub to: Vec<String>,
    pub kind: String,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub ics: Option<String>,
    pub message_id: String,
    pub list_unsubscribe: Option<String>,
    pub list_unsubscribe_post: Option<String>,
    pub raw: String,
}

pub fn seen(received: &Received) -> Seen {
    let message = mail_parser::MessageParser::default()
        .parse(&received.data)
        .expect("a parseable message");
    let header = |name: &str| message.header_raw(name).map(|v| v.trim().to_string());
    let ics = message.attachments().find_map(|part| {
        use mail_parser::MimeHeaders;
        part.is_content_type("text", "calendar")
            .then(|| String::from_utf8_lossy(part.contents()).to_string())
    });
    Seen {
        envelope_to: received.to.clone(),
        to: message
            .to()
            .map(|to| {
                to.iter()
                    .filter_map(|a| a.address().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        kind: header("X-Cohorts-Kind").unwrap_or_default(),
        subject: message.subject().unwrap_or_default().to_string(),
        text: message
            .body_text(0)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        html: message
            .body_html(0)
            .map(|t| t.to_string())
            .unwrap_or_default(),
        ics,
        message_id: message.message_id().unwrap_or_default().to_string(),
        list_unsubscribe: header("List-Unsubscribe"),
        list_unsubscribe_post: header("List-Unsubscribe-Post"),
        raw: String::from_utf8_lossy(&received.data).to_string(),
    }
}

impl Seen {
    /// Everything a reader could see, decoded.
    pub fn visible(&self) -> String {
        // Decoded: the raw message holds base64 and random MIME boundaries, where a
        // short word can appear by chance without anyone seeing it.
        format!(
            "{}\n{}\n{}\n{}",
            self.subject,
            self.text,
            self.html,
            self.ics.clone().unwrap_or_default()
        )
    }

    /// The first patient link (`/p/...`) in the text part, as a path.
    pub fn link_path(&self) -> String {
        let start = self.text.find("/p/").expect("a patient link in the text");
        self.text[start..]
            .split_whitespace()
            .next()
            .expect("link")
            .to_string()
    }
}

/// The .ics VEVENTs, parsed with a real RFC 5545 parser.
pub fn vevents(ics: &str) -> Vec<HashMap<String, String>> {
    let unfolded = icalendar::parser::unfold(ics);
    let calendar = icalendar::parser::read_calendar(&unfolded).expect("the .ics parses");
    fn walk(
        components: &[icalendar::parser::Component<'_>],
        out: &mut Vec<HashMap<String, String>>,
    ) {
        for component in components {
            if component.name.as_str() == "VEVENT" {
                let mut props = HashMap::new();
                for prop in &component.properties {
                    let mut key = prop.name.as_str().to_string();
                    for param in &prop.params {
                        if let Some(val) = &param.val {
                            key.push_str(&format!(";{}={}", param.key.as_str(), val.as_str()));
                        }
                    }
                    props.insert(key, prop.val.as_str().to_string());
                }
                out.push(props);
            }
            walk(&component.components, out);
        }
    }
    let mut out = Vec::new();
    walk(&calendar.components, &mut out);
    out
}

pub fn of_kind(sink: &SmtpSink, kind: &str) -> Vec<Seen> {
    sink.messages()
        .iter()
        .map(seen)
        .filter(|s| s.kind == kind)
        .collect()
}

/// Waits until `n` messages of `kind` arrived.
pub async fn wait_kind(sink: &SmtpSink, kind: &str, n: usize) -> Vec<Seen> {
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let found = of_kind(sink, kind);
        if found.len() >= n || tokio::time::Instant::now() >= deadline {
            return found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// A patient's mail: to them alone, nothing of anyone else, nothing that reveals treatment.
pub fn assert_discreet(mail: &Seen, me: &Member, everyone: &[Member]) {
    assert_eq!(
        mail.envelope_to,
        vec![me.email.clone()],
        "one recipient per message"
    );
    assert_eq!(mail.to, vec![me.email.clone()]);
    let visible = mail.visible();
    for other in everyone.iter().filter(|o| o.id != me.id) {
        assert!(
            !mail.raw.contains(&other.email),
            "another address in the message"
        );
        assert!(
            !mail.raw.contains(&other.name),
            "another name in the message"
        );
        assert!(
            !visible.contains(&other.name),
            "{} sees {}'s name",
            me.name,
            other.name
        );
        assert!(
            !visible.contains(&other.email),
            "{} sees another address",
            me.name
        );
    }
    let lower = visible.to_lowercase();
    for word in FORBIDDEN {
        assert!(
            !lower.contains(word),
            "{:?} in a patient {} email",
            word,
            mail.kind
        );
    }
    assert!(
        !lower.contains(&PROGRAM_NAME.to_lowercase()),
        "program name in a patient email"
    );
    assert!(mail
        .list_unsubscribe
        .as_deref()
        .is_some_and(|v| v.starts_with("<http") && v.contains("/unsubscribe>")));
    assert_eq!(
        mail.list_unsubscribe_post.as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    if let Some(ics) = &mail.ics {
        let attendees = ics.replace("\r\n ", "").matches("ATTENDEE").count();
        assert!(
            attendees <= vevents(ics).len(),
            "only the recipient attends"
        );
        assert!(!ics.contains(&format!(
            "mailto:{}",
            everyone
                .iter()
                .find(|o| o.id != me.id)
                .map(|o| o.email.as_str())
                .unwrap_or("-")
        )));
    }
}

fn local(starts_at: &Value, zone: &str) -> String {
    let at: DateTime<Utc> = starts_at.as_str().expect("time").parse().expect("rfc3339");
    let tz: chrono_tz::Tz = zone.parse().expect("zone");
    at.with_timezone(&tz)
        .format("%A %-d %B %Y, %H:%M %Z")
        .to_string()
}

const PEOPLE: [(&str, Option<&str>, bool); 4] = [
    ("Ana Quill", None, true),
    ("Ben Rowan", Some("Europe/Berlin"), true),
    ("Cleo Sparrow", Some("America/Toronto"), true),
    ("Dev Thistle", None, false),
];

#[tokio::test]
async fn welcome_reaches_each_member_alone_discreetly_with_every_session_in_their_zone() {
    let app = spawn_app().await;
    let s = scenario(&app, Duration::days(3), &PEOPLE).await;
    let welcomes = wait_kind(&app.mail, "welcome", 3).await;
    assert_eq!(welcomes.len(), 3, "one welcome per consenting member");
    for member in s.members.iter().filter(|m| m.consent) {
        let mine: Vec<&Seen> = welcomes
            .iter()
            .filter(|w| w.envelope_to == vec![member.email.clone()])
            .collect();
        assert_eq!(mine.len(), 1, "{} gets one welcome", member.name);
        let mail = mine[0];
        assert_discreet(mail, member, &s.members);
        let zone = member
            .timezone
            .clone()
            .unwrap_or_else(|| "America/Vancouver".into());
        assert!(
            mail.text.contains(&format!("({zone})")),
            "zone named: {}",
            mail.text
        );
        assert!(
            mail.text
                .contains(&local(&s.sessions[0]["starts_at"], &zone)),
            "first session in the member's zone: {}",
            mail.text
        );
        assert!(mail
            .html
            .contains(&local(&s.sessions[0]["starts_at"], &zone)));
        assert!(mail.text.contains("https://meet.example.org/harbour-room"));
        let ics = mail.ics.as_ref().expect("a calendar file");
        let events = vevents(ics);
        assert_eq!(events.len(), s.sessions.len(), "one VEVENT per session");
        let uids: HashSet<&String> = events.iter().filter_map(|e| e.get("UID")).collect();
        assert_eq!(uids.len(), events.len());
        for (event, session) in events.iter().zip(&s.sessions) {
            assert_eq!(event["UID"], format!("session-{}@cohorts", session["id"]));
            assert_eq!(event["SEQUENCE"], "0");
        }
        assert!(ics.contains("METHOD:REQUEST"));
        assert!(ics.contains("TZID:America/Vancouver"));
    }
    // The member without consent got nothing; the row says why.
    let dev = &s.members[3];
    assert!(app
        .mail
        .messages()
        .iter()
        .all(|m| !m.to.contains(&dev.email)));
    let outbox: Value = app
        .get("/api/v1/outbox", &s.lead)
        .await
        .json()
        .await
        .expect("outbox");
    let dev_row = outbox["outbox"]
        .as_array()
        .expect("rows")
        .iter()
        .find(|r| r["recipient"]["id"] == json!(dev.id) && r["kind"] == "welcome")
        .expect("a row for the unconsented member");
    assert_eq!(dev_row["status"], "cancelled");
    assert_eq!(dev_row["last_error"], "no email consent");
}

#[tokio::test]
async fn a_session_90_minutes_away_yields_exactly_one_reminder_per_member() {
    let app = spawn_app().await;
    let s = scenario(&app, Duration::minutes(90), &PEOPLE[..3]).await;
    let reminders = wait_kind(&app.mail, "reminder", 3).await;
    // Let the worker poll a few more times: nothing more may come.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    let reminders_after = of_kind(&app.mail, "reminder");
    assert_eq!(reminders.len(), 3);
    assert_eq!(reminders_after.len(), 3, "no burst, no repeat");
    for member in &s.members {
        let mine: Vec<&Seen> = reminders_after
            .iter()
            .filter(|r| r.envelope_to == vec![member.email.clone()])
            .collect();
        assert_eq!(mine.len(), 1, "{} gets exactly one reminder", member.name);
        assert_discreet(mine[0], member, &s.members);
        let zone = member
            .timezone
            .clone()
            .unwrap_or_else(|| "America/Vancouver".into());
        assert!(
            mine[0]
                .text
                .contains(&local(&s.sessions[0]["starts_at"], &zone)),
            "{}",
            mine[0].text
        );
    }
    // Facilitators get the roster (the session is within a day), patients never do.
    let rosters = wait_kind(&app.mail, "facilitator_roster", 2).await;
    assert_eq!(rosters.len(), 2);
    assert!(rosters[0].text.contains("Ana Quill") && rosters[0].text.contains("Cleo Sparrow"));
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    assert!(
        metrics.contains("cohorts_outbox_depth{status=\"sent\"}"),
        "{metrics}"
    );
    assert!(metrics.contains("cohorts_mail_sent_total"));
}

/// A worker of the test's own, for tests that decide exactly when mail goes out.
pub fn manual_worker(app: &TestApp, config: WorkerConfig) -> Worker {
    let key = app.settings.secret_key_bytes().expect("key");
    let mailer = Mailer::from_settings(&app.settings, key).expect("mailer");
    Worker::new(
        app.pool.clone(),
        Arc::new(mailer),
        Arc::new(cohorts::telemetry::Metrics::default()),
        config,
    )
}

pub fn quick() -> WorkerConfig {
    WorkerConfig {
        retry_base: std::time::Duration::from_millis(100),
        ..WorkerConfig::default()
    }
}

#[tokio::test]
async fn withdrawn_unconsented_and_cancelled_get_nothing_more() {
    let app = spawn_app_with(|s| s.worker_enabled = Some(false)).await;
    let s = scenario(&app, Duration::days(3), &PEOPLE[..3]).await;
    let (ana, ben, cleo) = (&s.members[0], &s.members[1], &s.members[2]);
    // Before any mail goes out: Ben is withdrawn, Cleo revokes consent.
    let response = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/cohorts/{}/members/{}", s.cohort, ben.id),
            Some(&s.lead),
            Some(&json!({"reason": "moved away"})),
        )
        .await;
    assert_eq!(response.status(), 200);
    let response = app
        .patch(
            &format!("/api/v1/patients/{}", cleo.id),
            &s.lead,
            &json!({"email_consent": false}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let worker = manual_worker(&app, quick());
    worker.pass().await.expect("pass");
    let welcomes = of_kind(&app.mail, "welcome");
    assert_eq!(welcomes.len(), 1);
    assert_eq!(welcomes[0].envelope_to, vec![ana.email.clone()]);

    // Cancel the second session and move the third: notices with METHOD:CANCEL and a
    // bumped SEQUENCE, to Ana and the two facilitators only.
    let second = s.sessions[1]["id"].as_i64().expect("id");
    let third = s.sessions[2]["id"].as_i64().expect("id");
    let response = app
        .patch(
            &format!("/api/v1/sessions/{second}"),
            &s.lead,
            &json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let moved_to = (Utc::now() + Duration::days(20)).to_rfc3339();
    let response = app
        .patch(
            &format!("/api/v1/sessions/{third}"),
            &s.lead,
            &json!({"starts_at": moved_to}),
        )
        .await;
    assert_eq!(response.status(), 200);
    worker.pass().await.expect("pass");
    let cancelled = of_kind(&app.mail, "session_cancelled");
    assert_eq!(cancelled.len(), 3, "Ana and two facilitators");
    let to_ana: Vec<&Seen> = cancelled
        .iter()
        .filter(|m| m.envelope_to == vec![ana.email.clone()])
        .collect();
    assert_eq!(to_ana.len(), 1);
    assert_discreet(to_ana[0], ana, &s.members);
    let ics = to_ana[0].ics.as_ref().expect("ics");
    assert!(ics.contains("METHOD:CANCEL"));
    let events = vevents(ics);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["UID"], format!("session-{second}@cohorts"));
    assert_eq!(events[0]["SEQUENCE"], "1");
    let changed = of_kind(&app.mail, "session_changed");
    assert_eq!(changed.len(), 3);
    let to_ana: Vec<&Seen> = changed
        .iter()
        .filter(|m| m.envelope_to == vec![ana.email.clone()])
        .collect();
    assert_discreet(to_ana[0], ana, &s.members);
    let events = vevents(to_ana[0].ics.as_ref().expect("ics"));
    assert_eq!(events[0]["UID"], format!("session-{third}@cohorts"));
    assert_eq!(events[0]["SEQUENCE"], "1");
    for m in app.mail.messages() {
        assert!(!m.to.contains(&ben.email) && !m.to.contains(&cleo.email));
    }
    // Facilitators get the group's staff page, not a patient's RSVP or unsubscribe link.
    let group_page = format!("/staff/cohorts/{}", s.cohort);
    for notice in cancelled.iter().chain(&changed) {
        let to_staff = notice.envelope_to != vec![ana.email.clone()];
        assert_eq!(
            notice.text.contains(&group_page),
            to_staff,
            "{}",
            notice.text
        );
        assert_eq!(
            notice.html.contains(&group_page),
            to_staff,
            "{}",
            notice.html
        );
        assert_eq!(
            notice.text.contains("Unsubscribe: "),
            !to_staff,
            "{}",
            notice.text
        );
        assert!(!notice.text.contains("/api/v1/"), "{}", notice.text);
    }
    // A second pass sends nothing again.
    let before = app.mail.count();
    worker.pass().await.expect("pass");
    assert_eq!(app.mail.count(), before);
}

#[tokio::test]
async fn an_smtp_server_down_for_a_while_delays_mail_which_goes_out_once_it_returns() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").expect("probe");
        probe.local_addr().expect("addr").port()
    };
    let app = spawn_app_with(|s| {
        s.smtp_url = Some(format!("smtp://127.0.0.1:{port}"));
        s.mail_retry_base_millis = Some(100);
        s.mail_max_attempts = Some(20);
    })
    .await;
    let s = scenario(&app, Duration::days(3), &PEOPLE[..2]).await;
    // Attempts fail while nothing listens.
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        let rows: Value = app
            .get("/api/v1/outbox", &s.lead)
            .await
            .json()
            .await
            .expect("outbox");
        let rows = rows["outbox"].as_array().expect("rows").clone();
        if rows
            .iter()
            .filter(|r| r["kind"] == "welcome")
            .all(|r| r["attempts"].as_i64() >= Some(2) && r["status"] == "pending")
        {
            assert!(rows
                .iter()
                .all(|r| r["last_error"].as_str().is_some_and(|e| e.contains("SMTP"))));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "attempts never failed: {rows:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let sink = SmtpSink::start_on(port)
        .await
        .expect("the server comes back on its port");
    // Two welcomes and the two facilitators' assignments.
    let arrived = sink.wait_for(4, WAIT).await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(arrived.len(), 4);
    assert_eq!(sink.count(), 4, "each message exactly once");
    let ids: HashSet<String> = sink.messages().iter().map(|m| seen(m).message_id).collect();
    assert_eq!(ids.len(), 4);
}

#[tokio::test]
async fn rejected_attempts_are_retried_without_duplicates_then_fail_visibly_and_can_be_retried() {
    let app = spawn_app_with(|s| {
        s.worker_enabled = Some(false);
    })
    .await;
    let s = scenario(&app, Duration::days(3), &PEOPLE[..3]).await;
    let config = WorkerConfig {
        retry_base: std::time::Duration::from_millis(1),
        max_attempts: 2,
        ..WorkerConfig::default()
    };
    let worker = manual_worker(&app, config);
    // The first message (of three welcomes and two facilitator assignments) is refused
    // once, then accepted.
    app.mail.reject_next(1);
    worker.pass().await.expect("pass");
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    worker.pass().await.expect("pass");
    assert_eq!(app.mail.count(), 5);
    let recipients: HashSet<Vec<String>> =
        app.mail.messages().iter().map(|m| m.to.clone()).collect();
    assert_eq!(recipients.len(), 5, "nobody twice");

    // A session notice refused every time ends as failed, visible to the lead only.
    app.mail.reject_next(1000);
    let second = s.sessions[1]["id"].as_i64().expect("id");
    let response = app
        .patch(
            &format!("/api/v1/sessions/{second}"),
            &s.lead,
            &json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    for _ in 0..3 {
        worker.pass().await.expect("pass");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let failed: Value = app
        .get("/api/v1/outbox?status=failed", &s.lead)
        .await
        .json()
        .await
        .expect("failed");
    let failed = failed["outbox"].as_array().expect("rows").clone();
    assert_eq!(failed.len(), 5, "three members and two facilitators");
    assert!(
        failed
            .iter()
            .all(|r| r["attempts"] == 2
                && r["last_error"].as_str().is_some_and(|e| e.contains("451")))
    );
    assert!(failed
        .iter()
        .all(|r| r.get("text").is_none() && r.get("html").is_none()));
    let (other_program, other_lead) = app.program_with_lead().await;
    assert!(other_program > 0);
    let theirs: Value = app
        .get("/api/v1/outbox?status=failed", &other_lead)
        .await
        .json()
        .await
        .expect("theirs");
    assert_eq!(theirs["outbox"], json!([]));
    let facilitator = app.facilitator_user(s.program, s.facilitators[0]).await;
    assert_eq!(app.get("/api/v1/outbox", &facilitator).await.status(), 403);
    let id = failed[0]["id"].as_i64().expect("id");
    assert_eq!(
        app.post(
            &format!("/api/v1/outbox/{id}/retry"),
            &other_lead,
            &json!({})
        )
        .await
        .status(),
        403
    );
    let bad = app.get("/api/v1/outbox?status=lost", &s.lead).await;
    crate::helpers::assert_field_error(bad, "status").await;

    app.mail.reject_next(0);
    let response = app
        .post(&format!("/api/v1/outbox/{id}/retry"), &s.lead, &json!({}))
        .await;
    assert_eq!(response.status(), 200);
    let again = app
        .post(&format!("/api/v1/outbox/{id}/retry"), &s.lead, &json!({}))
        .await;
    assert_eq!(again.status(), 409);
    let before = app.mail.count();
    worker.pass().await.expect("pass");
    assert_eq!(app.mail.count(), before + 1, "the retried message, once");
}

#[tokio::test]
async fn leads_preview_every_template_with_sample_data() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    for kind in cohorts::email::KINDS {
        let response = app
            .get(&format!("/api/v1/email-templates/{kind}/preview"), &lead)
            .await;
        assert_eq!(response.status(), 200, "{kind}");
        let body: Value = response.json().await.expect("preview");
        assert!(!body["subject"].as_str().expect("subject").is_empty());
        assert!(body["html"].as_str().expect("html").contains("<p>"));
        // Patient kinds preview as the patient reads them: the unsubscribe line, no
        // staff page.
        if cohorts::email::is_patient_kind(kind) {
            let text = body["text"].as_str().expect("text");
            assert!(text.contains("Unsubscribe: "), "{kind}: {text}");
            assert!(!text.contains("/staff/"), "{kind}: {text}");
        }
    }
    assert_eq!(
        app.get("/api/v1/email-templates/nonsense/preview", &lead)
            .await
            .status(),
        404
    );
    let (therapist, _) = app.staff_pair().await;
    let facilitator = app.facilitator_user(program, therapist).await;
    assert_eq!(
        app.get("/api/v1/email-templates/reminder/preview", &facilitator)
            .await
            .status(),
        403
    );
}

/// Patients with consent and peer invitations queued for them, straight in the database.
pub fn queue_invitations(app: &TestApp, program: i64, count: usize) -> Vec<String> {
    use cohorts::db::models::patient::{self, NewPatient};
    let mut conn = app.conn();
    let now = cohorts::db::now();
    let rows: Vec<NewPatient> = (0..count)
        .map(|n| NewPatient {
            program_id: program,
            name: format!("Bulk Patient {n}"),
            email: format!("bulk{n}@example.org"),
            timezone: None,
            email_consent: true,
            consent_changed_at: Some(now),
            status: "completed".into(),
            created_at: now,
            updated_at: now,
        })
        .collect();
    patient::insert_many(&mut conn, &rows).expect("patients");
    let emails: Vec<String> = rows.iter().map(|r| r.email.clone()).collect();
    let ids = patient::ids_by_email(&mut conn, program, &emails).expect("ids");
    cohorts::db::write_transaction(&mut conn, |conn| {
        for (id, _) in &ids {
            cohorts::outbox::enqueue_peer_invitation(conn, *id, 1, *id, now)?;
        }
        Ok::<_, diesel::result::Error>(())
    })
    .expect("enqueued");
    emails
}

/// (messages received, distinct Message-IDs, duplicates).
pub fn tally(messages: &[Received]) -> (usize, usize, usize) {
    let ids: HashSet<String> = messages.iter().map(|m| seen(m).message_id).collect();
    (messages.len(), ids.len(), messages.len() - ids.len())
}

fn sent_count(app: &TestApp) -> i64 {
    use cohorts::db::schema::outbox;
    use diesel::prelude::*;
    outbox::table
        .filter(outbox::status.eq("sent"))
        .count()
        .get_result(&mut *app.conn())
        .expect("count")
}

#[tokio::test]
async fn a_worker_killed_mid_batch_loses_nothing_after_restart() {
    let app = spawn_app_with(|s| s.worker_enabled = Some(false)).await;
    let (program, _) = app.program_with_lead().await;
    let total = 300;
    queue_invitations(&app, program, total);
    app.mail.set_delay(std::time::Duration::from_millis(10));
    let start = || standalone_worker(&app, Some(1));
    let mut first = start();
    let deadline = tokio::time::Instant::now() + WAIT;
    while app.mail.count() < 60 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker never sent"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    first.kill().expect("SIGKILL");
    first.wait().expect("reaped");
    let at_kill = app.mail.count();
    assert!(at_kill < total, "killed mid-batch ({at_kill} of {total})");

    let mut second = start();
    let deadline = tokio::time::Instant::now() + WAIT;
    while sent_count(&app) < total as i64 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "not everything was delivered after restart"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    second.kill().expect("stop");
    second.wait().expect("reaped");
    let (received, distinct, duplicates) = tally(&app.mail.messages());
    eprintln!("crash: {received} received, {distinct} distinct, {duplicates} duplicates (killed after {at_kill})");
    assert_eq!(distinct, total, "every message delivered");
    // Only messages in flight at the kill (accepted, not yet recorded) may repeat.
    assert!(
        duplicates <= cohorts::email::transport::SMTP_POOL_SIZE as usize,
        "{duplicates} duplicates"
    );
}

#[tokio::test]
async fn two_workers_on_one_postgres_database_deliver_without_duplicates() {
    if std::env::var("TEST_DATABASE_URL")
        .map(|u| u.is_empty())
        .unwrap_or(true)
    {
        eprintln!("two_workers_on_one_postgres_database: runs with TEST_DATABASE_URL only");
        return;
    }
    let app = spawn_app_with(|s| s.worker_enabled = Some(false)).await;
    let (program, _) = app.program_with_lead().await;
    let total = 1000;
    queue_invitations(&app, program, total);
    let make = || {
        let pool = cohorts::db::connect(&app.settings.database_url, 8).expect("pool");
        let key = app.settings.secret_key_bytes().expect("key");
        let mailer = Mailer::from_settings(&app.settings, key).expect("mailer");
        Worker::new(
            pool,
            Arc::new(mailer),
            Arc::new(cohorts::telemetry::Metrics::default()),
            WorkerConfig {
                batch: 50,
                ..quick()
            },
        )
    };
    let (a, b) = (make(), make());
    let run = |worker: Worker| async move {
        let mut sent = 0;
        for _ in 0..200 {
            let pass = worker.pass().await.expect("pass");
            sent += pass.sent;
            if pass.sent == 0 {
                break;
            }
        }
        sent
    };
    let (sent_a, sent_b) = tokio::join!(run(a), run(b));
    assert_eq!(sent_a + sent_b, total);
    assert!(
        sent_a > 0 && sent_b > 0,
        "both workers took part ({sent_a} / {sent_b})"
    );
    let (received, distinct, duplicates) = tally(&app.mail.messages());
    assert_eq!((received, distinct, duplicates), (total, total, 0));
}

/// What every patient email's HTML part must be: a whole document (what the Nu validator
/// checks in CI), no text under 16 px, list headers a filter trusts, no "stop these
/// emails" wording (SpamAssassin's END_FUTURE_EMAILS).
fn assert_patient_html(mail: &Seen) {
    let html = mail.html.trim_start();
    assert!(
        html.to_lowercase().starts_with("<!doctype html>"),
        "{}: a whole document: {html}",
        mail.kind
    );
    assert!(html.contains("<html lang=\"en\">"), "{}: {html}", mail.kind);
    assert!(html.contains("<meta charset=\"utf-8\">"), "{}", mail.kind);
    assert!(
        html.contains(&format!("<title>{}</title>", mail.subject)),
        "{}: the subject as title",
        mail.kind
    );
    for size in html.split("font-size:").skip(1) {
        let px: u32 = size
            .split("px")
            .next()
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or_else(|| panic!("{}: font sizes in px: {size}", mail.kind));
        assert!(px >= 16, "{}: text of {px} px", mail.kind);
    }
    assert!(
        mail.raw
            .contains("\r\nList-Id: Group meetings <group-meetings."),
        "{}: List-Id beside List-Unsubscribe",
        mail.kind
    );
    let visible = mail.visible().to_lowercase();
    assert!(!visible.contains("stop these emails"), "{}", mail.kind);
    assert!(visible.contains("unsubscribe"), "{}", mail.kind);
}

/// The two answer buttons' links, as paths: (yes, no).
fn answer_buttons(mail: &Seen) -> (String, String) {
    let button = |label: &str, answer: &str| {
        let end = mail
            .html
            .find(&format!(">{label}</a>"))
            .unwrap_or_else(|| panic!("{}: a {label:?} button: {}", mail.kind, mail.html));
        let start = mail.html[..end].rfind("href=\"").expect("href") + 6;
        let href = &mail.html[start..end];
        let href = &href[..href.find('"').expect("end of href")];
        assert!(
            href.ends_with(&format!("?answer={answer}")),
            "{}: {href}",
            mail.kind
        );
        href[href.find("/p/").expect("a patient link")..].to_string()
    };
    (
        button("I'll be there", "yes"),
        button("I can't make it", "no"),
    )
}

#[tokio::test]
async fn patient_mail_is_a_whole_document_with_the_next_meeting_first_and_two_answer_buttons() {
    let app = spawn_app().await;
    let s = scenario(&app, Duration::minutes(90), &PEOPLE[..1]).await;
    let ana = &s.members[0];
    let mine = |kind: &str| {
        of_kind(&app.mail, kind)
            .into_iter()
            .find(|m| m.envelope_to == vec![ana.email.clone()])
    };
    wait_kind(&app.mail, "welcome", 1).await;
    wait_kind(&app.mail, "reminder", 1).await;
    let (second, third) = (
        s.sessions[1]["id"].as_i64().expect("id"),
        s.sessions[2]["id"].as_i64().expect("id"),
    );
    let moved_to = (Utc::now() + Duration::days(20)).to_rfc3339();
    let response = app
        .patch(
            &format!("/api/v1/sessions/{second}"),
            &s.lead,
            &json!({"starts_at": moved_to}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let response = app
        .patch(
            &format!("/api/v1/sessions/{third}"),
            &s.lead,
            &json!({"status": "cancelled"}),
        )
        .await;
    assert_eq!(response.status(), 200);
    let invited = queue_invitations(&app, s.program, 1);
    wait_kind(&app.mail, "session_changed", 3).await;
    wait_kind(&app.mail, "session_cancelled", 3).await;
    let invitations = wait_kind(&app.mail, "peer_invitation", 1).await;
    assert_eq!(invitations[0].envelope_to, invited);

    let zone = "America/Vancouver";
    let first = local(&s.sessions[0]["starts_at"], zone);
    let welcome = mine("welcome").expect("welcome");
    let reminder = mine("reminder").expect("reminder");
    let changed = mine("session_changed").expect("session_changed");
    let cancelled = mine("session_cancelled").expect("session_cancelled");
    for mail in [&welcome, &reminder, &changed, &cancelled, &invitations[0]] {
        assert_patient_html(mail);
    }
    // The meeting the mail is about comes first, in large type, with where to join.
    for (mail, when) in [
        (&welcome, first.clone()),
        (&reminder, first.clone()),
        (&changed, local(&json!(moved_to), zone)),
        (&cancelled, local(&s.sessions[2]["starts_at"], zone)),
    ] {
        let at = mail.html.find(&when).unwrap_or_else(|| panic!("{when}"));
        let hello = mail.html.find("Hello ").expect("greeting");
        assert!(at < hello, "{}: the meeting before the greeting", mail.kind);
        assert!(
            mail.html[..at].contains("font-size:22px"),
            "{}: prominent",
            mail.kind
        );
        if mail.kind != "session_cancelled" {
            let join = mail
                .html
                .find("https://meet.example.org/harbour-room")
                .expect("join link");
            assert!(join < hello, "{}: the join link with it", mail.kind);
        }
    }
    // The welcome names the zone once, with no abbreviation that holds for one season.
    for part in [&welcome.text, &welcome.html] {
        assert_eq!(part.matches(zone).count(), 1, "{part}");
        assert!(!part.contains(&format!("{zone} (")), "{part}");
    }
    // The buttons open the answer page with the choice ready; only confirming records it.
    for mail in [&welcome, &reminder, &changed] {
        let (yes, no) = answer_buttons(mail);
        let plain = yes.trim_end_matches("?answer=yes");
        assert_eq!(no.trim_end_matches("?answer=no"), plain);
        for (path, ready) in [
            (&yes, "Confirm: I'll be there"),
            (&no, "Confirm: I can't make it"),
        ] {
            let page = app.client.get(app.url(path)).send().await.expect("page");
            assert_eq!(page.status(), 200);
            let html = page.text().await.expect("html");
            let ready_escaped = ready.replace('\'', "&#x27;");
            assert!(
                html.contains(ready) || html.contains(&ready_escaped),
                "{path}: {html}"
            );
        }
    }
    let view: Value = app
        .get(&format!("/api/v1/cohorts/{}", s.cohort), &s.lead)
        .await
        .json()
        .await
        .expect("cohort");
    for session in view["sessions"].as_array().expect("sessions") {
        assert_eq!(
            session["rsvp"],
            json!({"yes": 0, "no": 0}),
            "a GET records nothing"
        );
    }
}

/// `cohorts worker` as its own process against the app's database and SMTP sink,
/// polling every 50 ms; `lease_secs` overrides the claim lease (`None`: the default).
pub fn standalone_worker(
    app: &crate::helpers::TestApp,
    lease_secs: Option<u64>,
) -> std::process::Child {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_cohorts"));
    command
        .arg("worker")
        .env("COHORTS_DATABASE_URL", &app.settings.database_url)
        .env("COHORTS_SMTP_URL", app.mail.url())
        .env(
            "COHORTS_SECRET_KEY",
            app.settings.secret_key.clone().expect("key"),
        )
        .env("COHORTS_DATA_DIR", &app.settings.data_dir)
        .env("COHORTS_WORKER_POLL_MILLIS", "50")
        .env("COHORTS_LOG", "warn")
        .stdout(std::process::Stdio::null());
    if let Some(lease) = lease_secs {
        command.env("COHORTS_WORKER_LEASE_SECS", lease.to_string());
    }
    command.spawn().expect("cohorts worker starts")
}
