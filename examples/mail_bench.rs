//! Mail throughput: N reminders planned and dispatched through the outbox by the worker
//! to a local SMTP server, against a raw lettre pooled send loop of comparable messages
//! to the same server, in the same run. Run by bench/mail.sh (release build).
//!
//! Environment: MESSAGES [5000], BENCH_DATABASE_URL [a fresh SQLite file].

#[path = "../tests/support/smtp_sink.rs"]
mod smtp_sink;

use chrono::{Duration, Utc};
use cohorts::db::models::cohort::{self as cohorts_db, NewCohort, NewMember, NewSession};
use cohorts::db::models::patient::{self, NewPatient};
use cohorts::db::models::program::{self, ProgramFields};
use cohorts::email::Mailer;
use cohorts::email::{self, transport, Outgoing, Rendered};
use cohorts::worker::{Worker, WorkerConfig};
use lettre::AsyncTransport;
use smtp_sink::SmtpSink;
use std::sync::Arc;
use std::time::Instant;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    cohorts::telemetry::init_tracing();
    let messages: usize = std::env::var("MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5000);
    let dir = tempfile::tempdir()?;
    let sink = SmtpSink::start().await;

    let mut settings = cohorts::settings::Settings::defaults()?;
    settings.database_url = std::env::var("BENCH_DATABASE_URL")
        .unwrap_or_else(|_| format!("sqlite://{}", dir.path().join("bench.db").display()));
    settings.data_dir = dir.path().join("data");
    settings.smtp_url = Some(sink.url());
    settings.secret_key = Some("bench-secret-key-that-is-long-enough-0123456789".into());
    settings.db_pool_size = 24;
    let pool = cohorts::db::prepare_database(&settings)?;
    seed(&pool, messages)?;

    // 1. Through the outbox: plan the reminders, claim, render, send, record.
    let mailer = Arc::new(Mailer::from_settings(
        &settings,
        settings.secret_key_bytes()?,
    )?);
    let worker = Worker::new(
        pool.clone(),
        mailer.clone(),
        Arc::new(cohorts::telemetry::Metrics::default()),
        WorkerConfig::default(),
    );
    let started = Instant::now();
    let mut sent = 0;
    let mut planned = 0;
    while sent < messages {
        let pass = worker.pass().await?;
        anyhow::ensure!(pass.failed == 0, "failures in the outbox run");
        planned += pass.planned;
        sent += pass.sent;
        if pass.sent == 0 && pass.planned == 0 {
            anyhow::ensure!(
                started.elapsed().as_secs() < 120,
                "stalled at {sent} of {messages}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let outbox_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        planned == messages,
        "planned {planned}, expected {messages}"
    );
    anyhow::ensure!(sink.count() == messages, "sink got {}", sink.count());

    // 2. Raw lettre: the same number of comparable messages, built beforehand, sent
    //    through a pool of the same size with the same concurrency.
    let from = mailer.from.clone();
    let built: Vec<lettre::Message> = (0..messages)
        .map(|n| {
            let context = serde_json::json!({
                "name": format!("Bench Patient {n}"),
                "when": "Tuesday 1 December 2026, 18:00 PST (America/Vancouver)",
                "when_short": "Tue 1 Dec, 18:00 PST",
                "rsvp_url": format!("http://127.0.0.1:8080/p/token-{n}"),
                "unsubscribe_url": format!("http://127.0.0.1:8080/p/token-{n}/unsubscribe"),
                "venue": null,
                "join_url": "https://meet.example.org/room",
                "zone": "America/Vancouver",
            });
            let rendered: Rendered = mailer.templates.render("reminder", &context)?;
            email::build_message(
                &from,
                &Outgoing {
                    kind: "reminder".into(),
                    to_name: format!("Bench Patient {n}"),
                    to_email: format!("raw{n}@example.org"),
                    message_id: format!("<raw-{n}@cohorts>"),
                    rendered,
                    calendar: None,
                    unsubscribe_url: Some(format!("http://127.0.0.1:8080/p/token-{n}/unsubscribe")),
                },
            )
        })
        .collect::<anyhow::Result<_>>()?;
    let smtp = transport::smtp(&sink.url())?;
    let semaphore = Arc::new(tokio::sync::Semaphore::new(
        transport::SMTP_POOL_SIZE as usize,
    ));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for message in built {
        let smtp = smtp.clone();
        let permit = semaphore.clone().acquire_owned().await?;
        tasks.spawn(async move {
            let result = smtp.send(message).await;
            drop(permit);
            result
        });
    }
    while let Some(done) = tasks.join_next().await {
        done??;
    }
    let raw_secs = started.elapsed().as_secs_f64();
    anyhow::ensure!(sink.count() == 2 * messages, "sink got {}", sink.count());

    let backend = if settings.database_url.starts_with("sqlite") {
        "sqlite"
    } else {
        "postgres"
    };
    let outbox_rate = messages as f64 / outbox_secs;
    let raw_rate = messages as f64 / raw_secs;
    println!(
        "backend={backend} messages={messages} outbox_secs={outbox_secs:.3} outbox_rate={outbox_rate:.0} raw_secs={raw_secs:.3} raw_rate={raw_rate:.0} ratio={:.2}",
        outbox_rate / raw_rate
    );
    Ok(())
}

/// A program, `count` consenting patients in one cohort, and one session 90 minutes
/// away: the planner owes each of them exactly one reminder (the 2-hour one, at once).
fn seed(pool: &cohorts::db::DbPool, count: usize) -> anyhow::Result<()> {
    let mut conn = pool.get()?;
    let now = cohorts::db::now();
    let program = program::insert(
        &mut conn,
        &ProgramFields {
            name: "Bench Program".into(),
            site: "Bench".into(),
            timezone: "America/Vancouver".into(),
            modality: "ketamine".into(),
            venue: None,
            join_url: Some("https://meet.example.org/room".into()),
            rules: serde_json::to_string(&cohorts::domain::program::ProgramRules::default())?,
        },
        now,
    )?;
    let patients: Vec<NewPatient> = (0..count)
        .map(|n| NewPatient {
            program_id: program,
            name: format!("Bench Patient {n}"),
            email: format!("bench{n}@example.org"),
            timezone: None,
            email_consent: true,
            consent_changed_at: Some(now),
            status: "in_cohort".into(),
            created_at: now,
            updated_at: now,
        })
        .collect();
    patient::insert_many(&mut conn, &patients)?;
    let emails: Vec<String> = patients.iter().map(|p| p.email.clone()).collect();
    let ids = patient::ids_by_email(&mut conn, program, &emails)?;
    let cohort = cohorts_db::insert(
        &mut conn,
        &NewCohort {
            program_id: program,
            kind: cohorts::domain::status::CohortKind::Integration,
            modality: "ketamine".into(),
            status: cohorts::domain::status::CohortStatus::Forming,
            venue: None,
            join_url: None,
            staffing_gaps: "[]".into(),
            override_reason: None,
            created_at: now,
            updated_at: now,
        },
    )?;
    cohorts_db::insert_sessions(
        &mut conn,
        &[NewSession {
            cohort_id: cohort,
            seq: 1,
            starts_at: (Utc::now() + Duration::minutes(90)).naive_utc(),
            duration_minutes: 120,
            status: cohorts::domain::status::SessionStatus::Scheduled,
            ics_sequence: 0,
            created_at: now,
            updated_at: now,
        }],
    )?;
    let members: Vec<NewMember> = ids
        .iter()
        .map(|(id, _)| NewMember {
            cohort_id: cohort,
            patient_id: *id,
            status: cohorts::domain::status::MemberStatus::Active,
            joined_at: now,
        })
        .collect();
    cohorts_db::insert_members(&mut conn, &members)?;
    Ok(())
}
