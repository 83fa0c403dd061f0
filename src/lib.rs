//! cohorts: group integration for psychedelic-assisted therapy programs.
//!
//! Layers, each importing only those below it: the entry (`main`, `cli`, `startup`,
//! `seed`) → the web layer (`api`, `pages`, `web` with the patient links) and `worker` →
//! `service` → `outbox`, `db`, `domain`, `email` → `error`, `types`, `settings`,
//! `telemetry`.

pub mod api;
pub mod cli;
pub mod db;
pub mod domain;
pub mod email;
pub mod error;
pub mod outbox;
pub mod pages;
pub mod seed;
pub mod service;
pub mod settings;
pub mod startup;
pub mod telemetry;
pub mod types;
pub mod web;
pub mod worker;
