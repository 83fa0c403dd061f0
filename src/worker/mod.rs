//! Background work, beside the web layer: the planner that fills the outbox from the
//! schedule, compose, the send loop and the housekeeping tick.

pub mod compose;
pub mod planner;
pub mod runner;

use crate::settings::Settings;
use std::time::Duration;

pub use runner::{Worker, WorkerConfig};

impl WorkerConfig {
    pub fn from_settings(settings: &Settings) -> WorkerConfig {
        let poll = match settings.worker_poll_millis {
            Some(millis) => Duration::from_millis(millis.max(10)),
            None => Duration::from_secs(settings.worker_poll_secs.max(1)),
        };
        WorkerConfig {
            poll,
            lease: Duration::from_secs(
                settings
                    .worker_lease_secs
                    .unwrap_or(runner::DEFAULT_LEASE_SECS)
                    .max(1),
            ),
            retry_base: Duration::from_millis(settings.mail_retry_base_millis.unwrap_or(30_000)),
            max_attempts: settings.mail_max_attempts.unwrap_or(8).max(1) as i32,
            ..WorkerConfig::default()
        }
    }
}
