//! One integration-test binary for the HTTP API. Each test gets its own app on port 0
//! and its own database: a fresh SQLite file, or, when TEST_DATABASE_URL is set, a fresh
//! PostgreSQL database.

mod attendance;
mod audit;
mod auth;
mod cohorts;
mod facilitators;
mod hardening;
mod health;
mod helpers;
mod import;
mod layers;
mod mail;
mod patient_links;
mod patients;
mod peer_support;
mod programs;
mod staff_mail;
mod staffing;
mod users;

#[path = "../support/smtp_sink.rs"]
mod smtp_sink;
