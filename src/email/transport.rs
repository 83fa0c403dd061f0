//! Where mail goes: an SMTP server through a pooled lettre transport, .eml files under
//! data/outbox when no server is configured.

use anyhow::Context;
use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::path::PathBuf;
use std::time::Duration;

/// Connections kept open to the SMTP server; the worker sends this many at once.
pub const SMTP_POOL_SIZE: u32 = 32;

#[derive(Clone)]
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(PathBuf),
}

impl Transport {
    /// SMTP when `smtp_url` is set (`smtp://host:port`, `smtps://…` for TLS,
    /// `smtp://…?tls=required` for STARTTLS), else files under `<data_dir>/outbox`.
    pub fn from_settings(
        smtp_url: Option<&str>,
        data_dir: &std::path::Path,
    ) -> anyhow::Result<Transport> {
        match smtp_url {
            Some(url) => Ok(Transport::Smtp(smtp(url)?)),
            None => Ok(Transport::File(data_dir.join("outbox"))),
        }
    }

    /// Hands one formatted message to the transport. An SMTP error text may quote the
    /// recipient's address: the worker redacts it before logging or storing it.
    pub async fn send(
        &self,
        envelope: &Envelope,
        raw: &[u8],
        file_stem: &str,
    ) -> Result<(), String> {
        match self {
            Transport::Smtp(smtp) => smtp
                .send_raw(envelope, raw)
                .await
                .map(|_| ())
                .map_err(|error| format!("SMTP: {error}")),
            Transport::File(dir) => {
                let dir = dir.clone();
                let stem: String = file_stem
                    .chars()
                    .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
                    .collect();
                let raw = raw.to_vec();
                tokio::task::spawn_blocking(move || -> std::io::Result<()> {
                    // Patients' mail: readable by the service's user only (0700 / 0600).
                    crate::settings::create_private_dir(&dir)?;
                    let final_path = dir.join(format!("{stem}.eml"));
                    let temp = dir.join(format!(".{stem}.eml.tmp"));
                    // A temporary file left by a crash is written afresh.
                    let _ = std::fs::remove_file(&temp);
                    crate::settings::write_private(&temp, &raw)?;
                    std::fs::rename(temp, final_path)
                })
                .await
                .map_err(|error| format!("file transport: {error}"))?
                .map_err(|error| format!("file transport: {error}"))
            }
        }
    }
}

/// A pooled async SMTP transport from a URL.
pub fn smtp(url: &str) -> anyhow::Result<AsyncSmtpTransport<Tokio1Executor>> {
    Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .context("COHORTS_SMTP_URL is not a valid smtp:// or smtps:// URL")?
        .timeout(Some(Duration::from_secs(30)))
        .pool_config(PoolConfig::new().max_size(SMTP_POOL_SIZE).min_idle(0))
        .build())
}
