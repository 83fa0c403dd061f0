//! The worker: every poll it plans reminders and rosters, then claims due rows, renders
//! and sends them, and records the outcome of each at once (so a crash can resend only
//! the messages in flight between the SMTP server's acceptance and that update, with the
//! same Message-ID). Failures back off exponentially; after `max_attempts` a row is
//! `failed` with its last error, for a lead to see and retry.

use super::compose::{self, Composed};
use super::planner;
use crate::db::DbPool;
use crate::email;
use crate::email::Mailer;
use crate::outbox::{self, OutboxRow};
use crate::telemetry::{Counter, Metrics};
use chrono::{NaiveDateTime, Utc};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Semaphore};

/// The default lease: after a crash, its rows go out again within this (plus a poll).
pub const DEFAULT_LEASE_SECS: u64 = 30;

#[derive(Debug, Clone)]
pub struct WorkerConfig {
    pub poll: Duration,
    /// A row claimed longer ago than this by a worker that never finished is taken over.
    /// A live worker renews the claims it holds every third of this (its heartbeat), so
    /// only a dead worker's rows wait for it.
    pub lease: Duration,
    pub retry_base: Duration,
    pub max_attempts: i32,
    /// Rows claimed at once.
    pub batch: i64,
    /// Messages in flight at once.
    pub concurrency: usize,
    /// How far ahead the planner puts reminders into the outbox.
    pub lookahead: Duration,
}

impl Default for WorkerConfig {
    fn default() -> Self {
        WorkerConfig {
            poll: Duration::from_secs(10),
            lease: Duration::from_secs(DEFAULT_LEASE_SECS),
            retry_base: Duration::from_secs(30),
            max_attempts: 8,
            batch: 64,
            concurrency: email::transport::SMTP_POOL_SIZE as usize,
            lookahead: Duration::from_secs(600),
        }
    }
}

/// What one pass did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    pub planned: usize,
    pub sent: usize,
    pub failed: usize,
    pub cancelled: usize,
}

#[derive(Clone)]
pub struct Worker {
    pool: DbPool,
    mailer: Arc<Mailer>,
    metrics: Arc<Metrics>,
    config: WorkerConfig,
    id: String,
    /// Serialises this worker's own writes on SQLite, which has one writer at a time:
    /// waiting here is cheaper than SQLite's sleeping busy handler.
    writes: Arc<std::sync::Mutex<()>>,
}

enum Outcome {
    Sent,
    Retry,
    Failed,
    Cancelled,
}

impl Worker {
    pub fn new(
        pool: DbPool,
        mailer: Arc<Mailer>,
        metrics: Arc<Metrics>,
        config: WorkerConfig,
    ) -> Worker {
        let id = format!(
            "{}-{}",
            std::process::id(),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        Worker {
            pool,
            mailer,
            metrics,
            config,
            id,
            writes: Arc::default(),
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    /// Runs until `stop` turns true; a pass in progress finishes its messages first.
    pub async fn run(self, mut stop: watch::Receiver<bool>) {
        tracing::info!(worker = %self.id, "mail worker started");
        loop {
            if *stop.borrow() {
                break;
            }
            match self.pass().await {
                Ok(pass) if pass != Pass::default() => {
                    tracing::info!(
                        planned = pass.planned,
                        sent = pass.sent,
                        failed = pass.failed,
                        cancelled = pass.cancelled,
                        "mail pass"
                    );
                }
                Ok(_) => {}
                Err(error) => tracing::warn!(error = format!("{error:#}"), "mail pass failed"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.config.poll) => {}
                _ = stop.changed() => {}
            }
        }
        tracing::info!(worker = %self.id, "mail worker stopped");
    }

    /// Plans, then sends batches until nothing is due.
    pub async fn pass(&self) -> anyhow::Result<Pass> {
        let mut pass = Pass::default();
        let lookahead = chrono::Duration::from_std(self.config.lookahead)?;
        if let Err(error) = self
            .blocking(move |conn| Ok(crate::service::housekeeping(conn, now())?))
            .await
        {
            // Clinical housekeeping must not hold up mail that is due.
            tracing::error!(error = format!("{error:#}"), "housekeeping failed");
        }
        pass.planned = self
            .blocking(move |conn| {
                Ok(crate::db::write_transaction(conn, |conn| {
                    planner::plan(conn, now(), lookahead)
                })?)
            })
            .await?;
        // While this pass holds claims, their leases are renewed; dropped at the end.
        let _heartbeat = self.heartbeat();
        // A pipeline: claim the next rows while the previous ones are still being sent,
        // so the SMTP connections never wait for the slowest message of a batch.
        let semaphore = Arc::new(Semaphore::new(self.config.concurrency.max(1)));
        let mut tasks = tokio::task::JoinSet::new();
        let mut exhausted = false;
        loop {
            if !exhausted && tasks.len() < self.config.concurrency.max(1) {
                let batch = self.claim().await?;
                exhausted = (batch.len() as i64) < self.config.batch;
                for row in batch {
                    let worker = self.clone();
                    let semaphore = semaphore.clone();
                    tasks.spawn(async move {
                        let _permit = semaphore.acquire_owned().await.ok();
                        worker.deliver(row).await
                    });
                }
                continue;
            }
            match tasks.join_next().await {
                None => break,
                Some(Ok(Outcome::Sent)) => pass.sent += 1,
                Some(Ok(Outcome::Failed)) => pass.failed += 1,
                Some(Ok(Outcome::Cancelled)) => pass.cancelled += 1,
                Some(Ok(Outcome::Retry)) => {}
                Some(Err(error)) => tracing::error!(error = %error, "mail task panicked"),
            }
        }
        Ok(pass)
    }

    /// Renews this worker's claims every third of the lease until the guard is dropped.
    fn heartbeat(&self) -> Heartbeat {
        let worker = self.clone();
        let every = (self.config.lease / 3).max(Duration::from_millis(100));
        Heartbeat(tokio::spawn(async move {
            loop {
                tokio::time::sleep(every).await;
                let id = worker.id.clone();
                let renewed = worker
                    .record(move |conn| outbox::renew_claims(conn, &id, now()))
                    .await;
                if let Err(error) = renewed {
                    tracing::warn!(error = format!("{error:#}"), "could not renew mail claims");
                }
            }
        }))
    }

    async fn claim(&self) -> anyhow::Result<Vec<OutboxRow>> {
        let id = self.id.clone();
        let lease = chrono::Duration::from_std(self.config.lease)?;
        let limit = self.config.batch;
        self.blocking(move |conn| {
            let now = now();
            Ok(outbox::claim(conn, &id, now, now - lease, limit)?)
        })
        .await
    }

    async fn deliver(&self, row: OutboxRow) -> Outcome {
        let id = row.id;
        let attempts = row.attempts;
        let mailer = self.mailer.clone();
        let prepared = self
            .blocking(move |conn| Ok(prepare(conn, &mailer, &row, Utc::now())))
            .await
            .unwrap_or_else(|error| Prepared::Transient(format!("{error:#}")));
        let (result, broken): (Result<(), String>, bool) = match prepared {
            Prepared::Cancel(reason) => {
                let recorded = self
                    .record(move |conn| outbox::mark_cancelled(conn, id, &reason, now()))
                    .await;
                if let Err(error) = recorded {
                    tracing::warn!(
                        outbox_id = id,
                        error = format!("{error:#}"),
                        "could not cancel"
                    );
                }
                return Outcome::Cancelled;
            }
            Prepared::Ready { message, kind } => {
                let raw = message.formatted();
                let stem = format!("{id}-{kind}");
                let sent = self
                    .mailer
                    .transport
                    .send(message.envelope(), &raw, &stem)
                    .await;
                (sent, false)
            }
            Prepared::Broken(reason) => (Err(reason), true),
            Prepared::Transient(error) => (Err(error), false),
        };
        match result {
            Ok(()) => {
                let recorded = self
                    .record(move |conn| outbox::mark_sent(conn, id, now()))
                    .await;
                if let Err(error) = recorded {
                    // Sent but not recorded: the lease will resend it (same Message-ID).
                    tracing::error!(
                        outbox_id = id,
                        error = format!("{error:#}"),
                        "sent but not recorded"
                    );
                }
                self.metrics.increment(Counter::MailSent, 1);
                Outcome::Sent
            }
            Err(error) => {
                // Servers quote the recipient in their replies; the text is logged, kept
                // and shown to leads.
                let error = outbox::redact_addresses(&error);
                // A message that cannot be built fails at once: retrying cannot help
                // until someone fixes the data, and then retries it.
                let give_up = broken || attempts >= self.config.max_attempts;
                let retry_at = (!give_up).then(|| now() + self.backoff(attempts));
                tracing::warn!(outbox_id = id, attempts, give_up, error = %error, "mail attempt failed");
                let recorded = self
                    .record(move |conn| outbox::mark_failed(conn, id, &error, retry_at, now()))
                    .await;
                if let Err(error) = recorded {
                    tracing::error!(
                        outbox_id = id,
                        error = format!("{error:#}"),
                        "could not record a failure"
                    );
                }
                if give_up {
                    self.metrics.increment(Counter::MailFailed, 1);
                    Outcome::Failed
                } else {
                    self.metrics.increment(Counter::MailRetries, 1);
                    Outcome::Retry
                }
            }
        }
    }

    /// Runs a write, one at a time per worker on SQLite.
    async fn record<F>(&self, work: F) -> anyhow::Result<usize>
    where
        F: FnOnce(&mut crate::db::DbConnection) -> diesel::QueryResult<usize> + Send + 'static,
    {
        let writes = self.writes.clone();
        self.blocking(move |conn| {
            let _guard = matches!(conn, crate::db::DbConnection::Sqlite(_)).then(|| {
                writes
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
            });
            Ok(work(conn)?)
        })
        .await
    }

    /// base × 2^(attempts−1), at most an hour.
    fn backoff(&self, attempts: i32) -> chrono::Duration {
        let exponent = attempts.clamp(1, 20) as u32 - 1;
        let delay = self
            .config
            .retry_base
            .saturating_mul(2u32.saturating_pow(exponent));
        chrono::Duration::from_std(delay.min(Duration::from_secs(3600)))
            .unwrap_or_else(|_| chrono::Duration::hours(1))
    }

    async fn blocking<T, F>(&self, work: F) -> anyhow::Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut crate::db::DbConnection) -> anyhow::Result<T> + Send + 'static,
    {
        let pool = self.pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get()?;
            work(&mut conn)
        })
        .await?
    }
}

/// The heartbeat task of a pass; stops when dropped.
struct Heartbeat(tokio::task::JoinHandle<()>);

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// A claimed row made ready to send, or what stands in the way.
enum Prepared {
    Ready {
        message: lettre::Message,
        kind: String,
    },
    Cancel(String),
    /// The message cannot be rendered or built from the data as it is (an error or a
    /// panic): failed at once, for a lead to retry after the data is fixed.
    Broken(String),
    /// The database did not answer this time: tried again after the backoff.
    Transient(String),
}

/// Composes and builds one message. A panic in either (a template helper, lettre on a
/// header it cannot write) ends as `Broken` instead of unwinding the worker's task,
/// which would leave the row `sending` to be reclaimed, and panic again, at every lease.
fn prepare(
    conn: &mut crate::db::DbConnection,
    mailer: &Mailer,
    row: &OutboxRow,
    now: chrono::DateTime<Utc>,
) -> Prepared {
    guarded(|| match compose::compose(conn, mailer, row, now) {
        Ok(Composed::Cancel(reason)) => Prepared::Cancel(reason),
        Ok(Composed::Send(mail)) => match email::build_message(&mailer.from, &mail) {
            Ok(message) => Prepared::Ready {
                message,
                kind: mail.kind.clone(),
            },
            Err(error) => Prepared::Broken(format!("the message could not be built: {error:#}")),
        },
        Err(error) if from_database(&error) => Prepared::Transient(format!("{error:#}")),
        Err(error) => Prepared::Broken(format!("the message could not be built: {error:#}")),
    })
}

/// Runs `work`, turning a panic into `Broken`. The panic's own text is not kept: it may
/// quote the data it choked on.
fn guarded(work: impl FnOnce() -> Prepared) -> Prepared {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(work)).unwrap_or_else(|_| {
        Prepared::Broken(
            "the message could not be built: rendering or assembling it failed \
             (check the recipient's name and address, and the template)"
                .into(),
        )
    })
}

fn from_database(error: &anyhow::Error) -> bool {
    error
        .chain()
        .any(|cause| cause.is::<diesel::result::Error>() || cause.is::<r2d2::Error>())
}

/// Stored times: UTC, to the microsecond (both backends keep that much).
fn now() -> NaiveDateTime {
    use chrono::Timelike;
    let now = Utc::now().naive_utc();
    now.with_nanosecond(now.nanosecond() / 1000 * 1000)
        .unwrap_or(now)
}

/// A running worker task and the switch that stops it.
pub struct Handle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Handle {
    pub fn spawn(worker: Worker) -> Handle {
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(worker.run(stopped));
        Handle { stop, task }
    }

    /// Lets the pass in progress finish, then returns.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

/// The worker `serve` runs beside the HTTP server, unless `worker_enabled = false`.
pub fn start_beside_server(
    settings: &crate::settings::Settings,
    pool: &DbPool,
    mailer: &actix_web::web::Data<Mailer>,
    metrics: &Arc<Metrics>,
) -> Option<Handle> {
    if settings.worker_enabled == Some(false) {
        return None;
    }
    let worker = Worker::new(
        pool.clone(),
        mailer.clone().into_inner(),
        metrics.clone(),
        WorkerConfig::from_settings(settings),
    );
    Some(Handle::spawn(worker))
}

/// `cohorts worker`: the worker alone, until SIGINT/SIGTERM.
pub async fn run_standalone(settings: crate::settings::Settings) -> anyhow::Result<()> {
    let pool = crate::db::prepare_database(&settings)?;
    let mailer = Arc::new(Mailer::from_settings(
        &settings,
        settings.secret_key_bytes()?,
    )?);
    let worker = Worker::new(
        pool,
        mailer,
        Arc::new(Metrics::default()),
        WorkerConfig::from_settings(&settings),
    );
    let handle = Handle::spawn(worker);
    shutdown_signal().await;
    handle.stop().await;
    Ok(())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_while_preparing_a_message_is_a_readable_failure() {
        let prepared = guarded(|| panic!("writing `Mailbox` for Ana returned an error"));
        match prepared {
            Prepared::Broken(reason) => {
                assert!(reason.contains("could not be built"), "{reason}");
                assert!(
                    !reason.contains("Ana"),
                    "the panic text is not kept: {reason}"
                );
            }
            _ => panic!("expected Broken"),
        }
    }
}
