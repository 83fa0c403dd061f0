//! Background work: the durable outbox, the planner that fills it from the schedule, and
//! the worker that sends what is due.

pub mod compose;
pub mod outbox;
pub mod planner;
pub mod worker;

use crate::email::links::{self, LinkClaims};
use crate::email::{Templates, Transport};
use crate::settings::Settings;
use anyhow::Context;
use lettre::message::Mailbox;
use std::time::Duration;

pub use outbox::{
    cancel_for_patient, cancel_for_session, enqueue_attendance_missing, enqueue_escalation,
    enqueue_follow_up, enqueue_peer_invitation, enqueue_session_notice, enqueue_team_change,
    enqueue_welcome, SessionNotice,
};
pub use worker::{Worker, WorkerConfig};

/// What composing and sending mail needs: templates, the transport, the sender, and
/// what signs and roots the links.
pub struct Mailer {
    pub templates: Templates,
    pub transport: Transport,
    pub from: Mailbox,
    pub public_url: String,
    pub secret_key: Vec<u8>,
}

impl Mailer {
    pub fn from_settings(settings: &Settings, secret_key: Vec<u8>) -> anyhow::Result<Mailer> {
        let transport = Transport::from_settings(settings.smtp_url.as_deref(), &settings.data_dir)?;
        Mailer::with_transport(settings, secret_key, transport)
    }

    pub fn with_transport(
        settings: &Settings,
        secret_key: Vec<u8>,
        transport: Transport,
    ) -> anyhow::Result<Mailer> {
        Ok(Mailer {
            templates: Templates::load(settings.templates_dir.as_deref())?,
            transport,
            from: settings.mail_from.parse().context(
                "COHORTS_MAIL_FROM is not a mailbox like `Care Team <care@example.org>`",
            )?,
            public_url: settings.public_url.trim_end_matches('/').to_string(),
            secret_key,
        })
    }

    /// `<public url>/p/<signed token>`.
    pub fn link(&self, claims: &LinkClaims) -> String {
        format!(
            "{}/p/{}",
            self.public_url,
            links::sign(&self.secret_key, claims)
        )
    }
}

impl WorkerConfig {
    pub fn from_settings(settings: &Settings) -> WorkerConfig {
        let poll = match settings.worker_poll_millis {
            Some(millis) => Duration::from_millis(millis.max(10)),
            None => Duration::from_secs(settings.worker_poll_secs.max(1)),
        };
        WorkerConfig {
            poll,
            lease: Duration::from_secs(settings.worker_lease_secs.unwrap_or(300)),
            retry_base: Duration::from_millis(settings.mail_retry_base_millis.unwrap_or(30_000)),
            max_attempts: settings.mail_max_attempts.unwrap_or(8).max(1) as i32,
            ..WorkerConfig::default()
        }
    }
}

/// (session id, response) of every answer to the given sessions.
pub fn rsvps_of(
    conn: &mut crate::db::DbConnection,
    session_ids: &[i64],
) -> diesel::QueryResult<Vec<(i64, String)>> {
    use crate::db::schema::rsvps;
    use diesel::prelude::*;
    rsvps::table
        .filter(rsvps::session_id.eq_any(session_ids.to_vec()))
        .select((rsvps::session_id, rsvps::response))
        .load(conn)
}

/// `{"yes": n, "no": m}` for one session, for the facilitators' view of a cohort.
pub fn rsvp_counts(answers: &[(i64, String)], session_id: i64) -> serde_json::Value {
    let count = |response: &str| {
        answers
            .iter()
            .filter(|(id, r)| *id == session_id && r == response)
            .count()
    };
    serde_json::json!({"yes": count("yes"), "no": count("no")})
}
