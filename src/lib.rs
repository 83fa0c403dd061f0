//! cohorts: group integration for psychedelic-assisted therapy programs.
//!
//! Data flows one way: HTTP → `api` → `domain` + `db` → outbox → `jobs` → SMTP.

pub mod api;
pub mod cli;
pub mod db;
pub mod domain;
pub mod email;
pub mod error;
pub mod jobs;
pub mod pages;
pub mod planning;
pub mod seed;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub mod types;
