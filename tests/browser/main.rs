//! Browser tests of the staff pages (chromium via chromedriver). Screenshots of each
//! main page at desktop and phone size land in $COHORTS_SCREENSHOTS or target/screenshots.

mod helpers;

use cohorts::db::models::cohort as cohort_rows;
use fantoccini::Locator;
use helpers::{browser, spawn_app, DESKTOP, PHONE};

#[tokio::test]
async fn a_lead_previews_and_commits_a_formation_and_sees_the_cohort() {
    let Some(browser) = browser().await else {
        return;
    };
    let app = spawn_app().await;
    browser.size(DESKTOP).await;
    browser.go(&app.url("/staff/login")).await;
    browser.shot("login", DESKTOP).await;
    browser.login(&app, "program lead").await;
    let dashboard = browser.path().await;
    assert!(dashboard.starts_with("/staff/programs/"), "{dashboard}");
    let text = browser.text().await;
    assert!(
        text.contains("Waitlist") && text.contains("near max wait"),
        "{text}"
    );
    browser.shot("dashboard", DESKTOP).await;

    browser.click_link("Preview cohort formation").await;
    assert!(browser.path().await.ends_with("/formation"));
    let text = browser.text().await;
    assert!(text.contains("New 1"), "a cohort is planned: {text}");
    let svg = browser
        .client
        .find(Locator::Css("svg[role=img] title"))
        .await
        .expect("the timeline has a title");
    assert_eq!(
        svg.html(true).await.expect("title text"),
        "Dosing windows and first sessions"
    );
    browser.shot("formation", DESKTOP).await;

    browser.click("form.commit button[type=submit]").await;
    let text = browser.text().await;
    assert!(text.contains("Formed 1 cohort(s)"), "{text}");
    let link = browser
        .client
        .find(Locator::Css("p.notice a"))
        .await
        .expect("a link to the new cohort");
    let label = link.text().await.expect("link text");
    link.click().await.expect("open the cohort");
    assert!(
        browser.text().await.contains(&label),
        "cohort page of {label}"
    );
    assert!(browser.text().await.contains("Members"));

    // The other main pages, for the reviewer.
    let program = dashboard.clone();
    for (name, path) in [
        ("cohort-active", "/staff/cohorts/2".to_string()),
        ("report", format!("{program}/report")),
        ("workload", "/staff/workload".to_string()),
        ("dashboard-after", program.clone()),
    ] {
        for size in [DESKTOP, PHONE] {
            browser.size(size).await;
            browser.go(&app.url(&path)).await;
            assert!(!browser.title().await.starts_with("Internal"), "{path}");
            browser.shot(name, size).await;
        }
    }
    browser.size(PHONE).await;
    browser.go(&app.url(&dashboard)).await;
    browser.shot("dashboard", PHONE).await;
    browser.close().await;
}

#[tokio::test]
async fn a_facilitator_records_attendance_on_a_phone_and_the_report_shows_it() {
    let Some(browser) = browser().await else {
        return;
    };
    let app = spawn_app().await;
    browser.size(PHONE).await;
    browser.go(&app.url("/staff/login")).await;
    browser.shot("login", PHONE).await;
    browser.login(&app, "facilitator").await;
    assert_eq!(browser.path().await, "/staff/groups");
    browser.shot("groups", PHONE).await;
    browser.size(DESKTOP).await;
    browser.shot("groups", DESKTOP).await;
    browser.size(PHONE).await;

    let take = browser
        .client
        .find(Locator::Css("a.button.primary[href$='/attendance']"))
        .await
        .expect("a session waiting for attendance");
    take.click().await.expect("open the attendance form");
    browser.shot("attendance", PHONE).await;
    let presents = browser
        .client
        .find_all(Locator::Css("label.choice-present"))
        .await
        .expect("one Present button per member");
    assert!(presents.len() >= 4, "{} members", presents.len());
    for label in &presents {
        label.click().await.expect("one tap");
    }
    // One member was late.
    browser
        .click("fieldset.member:last-of-type label.choice-late")
        .await;
    browser.shot("attendance-filled", PHONE).await;
    browser.click("form.attendance button[type=submit]").await;
    let text = browser.text().await;
    assert!(text.contains("Attendance saved for session"), "{text}");
    let cohort_path = browser.path().await;
    browser.shot("cohort", PHONE).await;
    browser.size(DESKTOP).await;
    browser.shot("cohort", DESKTOP).await;
    browser.go(&app.url("/staff/sessions/1/attendance")).await;
    browser.size(DESKTOP).await;
    browser.go(&app.url("/staff/follow-ups")).await;
    browser.shot("follow-ups", DESKTOP).await;
    browser.size(PHONE).await;
    browser.shot("follow-ups", PHONE).await;
    browser.logout().await;

    // The lead's report counts the session as held, with everyone there.
    browser.login(&app, "program lead").await;
    let program = browser.path().await;
    browser.go(&app.url(&format!("{program}/report"))).await;
    let cohort_id = cohort_path.trim_start_matches("/staff/cohorts/");
    let row = browser
        .client
        .find(Locator::XPath(&format!(
            "//tr[td/a[@href='/staff/cohorts/{cohort_id}']]"
        )))
        .await
        .expect("the cohort's report row");
    let cells = row.text().await.expect("row text");
    // 6 members, 3 sessions held now (was 2), one absence in session 2.
    assert!(cells.contains(" 6 3 "), "report row: {cells}");
    assert!(cells.contains("94%"), "report row: {cells}");
    browser.close().await;
}

#[tokio::test]
async fn a_form_post_without_the_csrf_token_is_refused() {
    let Some(browser) = browser().await else {
        return;
    };
    let app = spawn_app().await;
    browser.login(&app, "program lead").await;
    let dashboard = browser.path().await;
    browser
        .go(&app.url(&format!("{dashboard}/formation")))
        .await;
    browser
        .client
        .execute(
            "document.querySelector('form.commit input[name=csrf]').remove();",
            vec![],
        )
        .await
        .expect("drop the token");
    browser.click("form.commit button[type=submit]").await;
    assert_eq!(browser.title().await, "Forbidden · Cohorts");
    assert!(browser.text().await.contains("did not come from this site"));
    // Nothing was formed.
    let conn = &mut app.pool.get().expect("connection");
    let count = cohort_rows::list(conn, None, None, None)
        .expect("cohorts")
        .len();
    assert_eq!(count, 5, "only the seeded cohorts exist");
    browser.close().await;
}

#[tokio::test]
async fn a_facilitator_cannot_open_another_cohorts_page() {
    let Some(browser) = browser().await else {
        return;
    };
    let app = spawn_app().await;
    let (mine, other) = {
        let conn = &mut app.pool.get().expect("connection");
        let email = app.account("facilitator").0;
        let user = cohorts_user(conn, &email);
        let facilitator = user.facilitator_id.expect("linked facilitator");
        let mine: Vec<i64> = cohort_rows::list(conn, None, None, Some(facilitator))
            .expect("mine")
            .iter()
            .map(|c| c.id)
            .collect();
        let other = cohort_rows::list(conn, None, None, None)
            .expect("all")
            .iter()
            .map(|c| c.id)
            .find(|id| !mine.contains(id))
            .expect("a cohort the facilitator is not on");
        (mine, other)
    };
    browser.size(PHONE).await;
    browser.login(&app, "facilitator").await;
    browser
        .go(&app.url(&format!("/staff/cohorts/{}", mine[0])))
        .await;
    assert!(browser.title().await.starts_with("Cohort #"));
    browser
        .go(&app.url(&format!("/staff/cohorts/{other}")))
        .await;
    assert_eq!(browser.title().await, "Forbidden · Cohorts");
    assert!(browser.text().await.contains("do not have access"));
    browser.shot("forbidden", PHONE).await;
    browser.close().await;
}

fn cohorts_user(
    conn: &mut ::cohorts::db::DbConnection,
    email: &str,
) -> ::cohorts::db::models::user::UserRow {
    ::cohorts::db::models::user::find_by_email(conn, email)
        .expect("query")
        .expect("user")
}

/// Every patient email's HTML part as a mail client would show it, on a phone and on a
/// desktop: one column that fits, no text under 16 px, the answer buttons whole and on
/// screen. Screenshots: mail-<kind>-<width>.png.
#[tokio::test]
async fn each_patient_mail_fits_a_phone_and_a_desktop_with_readable_text() {
    use cohorts::email::templates::{sample_context, PATIENT_KINDS};
    let Some(browser) = browser().await else {
        return;
    };
    let templates = cohorts::email::Templates::load(None).expect("templates");
    let dir = tempfile::tempdir().expect("temp dir");
    for kind in PATIENT_KINDS {
        let context = sample_context(kind, "https://cohorts.example.org");
        let html = templates.render(kind, &context).expect("renders").html;
        let file = dir.path().join(format!("{kind}.html"));
        std::fs::write(&file, html).expect("write");
        for width in [375, 800] {
            browser.size((width, 900)).await;
            browser.go(&format!("file://{}", file.display())).await;
            let measured = browser
                .client
                .execute(
                    "const sizes = Array.from(document.querySelectorAll('p, li, a, strong'))
                         .filter(e => e.textContent.trim() !== '')
                         .map(e => parseFloat(getComputedStyle(e).fontSize));
                     const buttons = Array.from(document.querySelectorAll('a[href*=\"?answer=\"]'))
                         .map(e => e.getBoundingClientRect())
                         .map(r => [r.left, r.right, r.height]);
                     return [document.documentElement.scrollWidth, window.innerWidth,
                             Math.min(...sizes), buttons];",
                    vec![],
                )
                .await
                .expect("measured");
            let scroll_width = measured[0].as_f64().expect("scroll width");
            let viewport = measured[1].as_f64().expect("viewport");
            let smallest = measured[2].as_f64().expect("font size");
            assert!(
                scroll_width <= viewport,
                "{kind} at {width}: {scroll_width} px wide in {viewport}"
            );
            assert!(smallest >= 16.0, "{kind} at {width}: text of {smallest} px");
            let buttons = measured[3].as_array().expect("buttons");
            if ["welcome", "reminder", "session_changed"].contains(&kind) {
                assert_eq!(buttons.len(), 2, "{kind}: two answer buttons");
            }
            for button in buttons {
                let (left, right, height) = (
                    button[0].as_f64().unwrap_or(-1.0),
                    button[1].as_f64().unwrap_or(f64::MAX),
                    button[2].as_f64().unwrap_or(0.0),
                );
                assert!(
                    left >= 0.0 && right <= viewport,
                    "{kind} at {width}: {button}"
                );
                assert!(
                    height >= 40.0,
                    "{kind} at {width}: a button {height} px high"
                );
            }
            browser.shot(&format!("mail-{kind}"), (width, 900)).await;
        }
    }
    browser.close().await;
}
