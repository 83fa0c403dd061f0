//! Storage: one code path over SQLite (embedded default) and PostgreSQL (deployments).
//!
//! The backend is chosen from the URL scheme here, never by trial: diesel's
//! `MultiConnection::establish` would try each variant in turn, and SQLite accepts any
//! string as a file name, which turns a mistyped PostgreSQL URL into a stray file.

use anyhow::Context;
use diesel::connection::{SimpleConnection, TransactionManager};
use diesel::prelude::*;
use diesel::{PgConnection, SqliteConnection};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use std::path::PathBuf;
use std::time::Duration;

pub mod audit;
pub mod enums;
pub mod models;
pub mod schema;

pub const SQLITE_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/sqlite");
pub const POSTGRES_MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations/postgres");

/// How long a request waits for a free connection, and a PostgreSQL server to answer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// SQLite waits this long for another writer instead of failing with "database is locked".
const SQLITE_BUSY_TIMEOUT_MS: u32 = 5_000;

#[derive(diesel::MultiConnection)]
pub enum DbConnection {
    Postgres(PgConnection),
    Sqlite(SqliteConnection),
}

pub type DbPool = r2d2::Pool<ConnectionManager>;
pub type PooledConnection = r2d2::PooledConnection<ConnectionManager>;

/// Where the data lives, parsed from `COHORTS_DATABASE_URL`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseTarget {
    Sqlite(PathBuf),
    Postgres(String),
}

impl DatabaseTarget {
    pub fn parse(url: &str) -> anyhow::Result<DatabaseTarget> {
        if let Some(path) = url.strip_prefix("sqlite://") {
            anyhow::ensure!(
                !path.is_empty() && path != ":memory:",
                "COHORTS_DATABASE_URL: sqlite:// needs a file path, e.g. sqlite://data/cohorts.db"
            );
            return Ok(DatabaseTarget::Sqlite(PathBuf::from(path)));
        }
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            return Ok(DatabaseTarget::Postgres(with_connect_timeout(url)));
        }
        let scheme = url.split("://").next().unwrap_or(url);
        anyhow::bail!(
            "COHORTS_DATABASE_URL has scheme {scheme:?}; expected sqlite://path or postgres://…"
        )
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, DatabaseTarget::Sqlite(_))
    }
}

/// libpq otherwise waits for the OS TCP timeout on an unreachable host.
fn with_connect_timeout(url: &str) -> String {
    if url.contains("connect_timeout=") {
        return url.to_string();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!(
        "{url}{separator}connect_timeout={}",
        CONNECT_TIMEOUT.as_secs()
    )
}

/// An r2d2 manager that opens exactly the backend the URL names and keeps its real error.
#[derive(Debug)]
pub struct ConnectionManager {
    target: DatabaseTarget,
}

impl ConnectionManager {
    pub fn new(target: DatabaseTarget) -> Self {
        ConnectionManager { target }
    }

    pub fn establish(&self) -> Result<DbConnection, diesel::r2d2::Error> {
        match &self.target {
            DatabaseTarget::Postgres(url) => PgConnection::establish(url)
                .map(DbConnection::Postgres)
                .map_err(diesel::r2d2::Error::ConnectionError),
            DatabaseTarget::Sqlite(path) => {
                let mut conn = SqliteConnection::establish(&path.to_string_lossy())
                    .map_err(diesel::r2d2::Error::ConnectionError)?;
                conn.batch_execute(&format!(
                    "PRAGMA foreign_keys = ON; PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}; \
                     PRAGMA synchronous = NORMAL;"
                ))
                .map_err(diesel::r2d2::Error::QueryError)?;
                Ok(DbConnection::Sqlite(conn))
            }
        }
    }
}

impl r2d2::ManageConnection for ConnectionManager {
    type Connection = DbConnection;
    type Error = diesel::r2d2::Error;

    fn connect(&self) -> Result<DbConnection, Self::Error> {
        self.establish()
    }

    fn is_valid(&self, conn: &mut DbConnection) -> Result<(), Self::Error> {
        conn.batch_execute("SELECT 1")
            .map_err(diesel::r2d2::Error::QueryError)
    }

    /// A connection whose last query failed at the protocol level (PostgreSQL restarted,
    /// network cut) is dropped instead of going back to the pool.
    fn has_broken(&self, conn: &mut DbConnection) -> bool {
        use diesel::r2d2::R2D2Connection;
        match conn {
            DbConnection::Postgres(pg) => pg.is_broken(),
            DbConnection::Sqlite(sqlite) => sqlite.is_broken(),
        }
    }
}

/// Opens the pool, after one direct connection so a wrong URL or a stopped server
/// surfaces at once with the driver's own message.
pub fn connect(database_url: &str, pool_size: u32) -> anyhow::Result<DbPool> {
    let target = DatabaseTarget::parse(database_url)?;
    if let DatabaseTarget::Sqlite(path) = &target {
        if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
            crate::settings::create_private_dir(dir)
                .with_context(|| format!("creating database directory {}", dir.display()))?;
        }
        private_sqlite_files(path)
            .with_context(|| format!("restricting {} to this user", path.display()))?;
    }
    let manager = ConnectionManager::new(target);
    manager
        .establish()
        .map_err(|error| anyhow::anyhow!("cannot open the database: {error}"))?;
    r2d2::Pool::builder()
        .max_size(pool_size.max(1))
        .connection_timeout(CONNECT_TIMEOUT)
        // A `SELECT 1` before every checkout doubled the round trips of a simple read;
        // broken connections are caught by `has_broken` instead.
        .test_on_check_out(false)
        .build(manager)
        .context("building the database pool")
}

/// The database file readable by the service's user only (0600), created so before
/// SQLite opens it (SQLite would make it 0644). SQLite gives the `-wal` and `-shm` files
/// the mode of the database file; ones left by an earlier version are tightened too.
fn private_sqlite_files(path: &std::path::Path) -> std::io::Result<()> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(false);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    drop(options.open(path)?);
    for suffix in ["", "-wal", "-shm", "-journal"] {
        let mut file = path.as_os_str().to_owned();
        file.push(suffix);
        let file = PathBuf::from(file);
        if file.exists() {
            crate::settings::make_private(&file)?;
        }
    }
    Ok(())
}

/// Applies pending migrations for whichever backend this is.
pub fn migrate(conn: &mut DbConnection) -> anyhow::Result<usize> {
    let applied = match conn {
        DbConnection::Sqlite(sqlite) => {
            // WAL lets readers proceed while one writer commits; it is a property of the
            // file, so setting it once here is enough.
            sqlite
                .batch_execute("PRAGMA journal_mode = WAL;")
                .context("enabling WAL")?;
            sqlite
                .run_pending_migrations(SQLITE_MIGRATIONS)
                .map_err(|error| anyhow::anyhow!("SQLite migration failed: {error}"))?
                .len()
        }
        DbConnection::Postgres(pg) => pg
            .run_pending_migrations(POSTGRES_MIGRATIONS)
            .map_err(|error| anyhow::anyhow!("PostgreSQL migration failed: {error}"))?
            .len(),
    };
    Ok(applied)
}

/// Runs `work` in a transaction that holds the write lock from its first statement.
///
/// On SQLite a deferred transaction that reads and then writes can fail with
/// SQLITE_BUSY when another writer got there first, without waiting for the busy
/// timeout; `BEGIN IMMEDIATE` queues writers instead. PostgreSQL needs nothing special.
pub fn write_transaction<T, E, F>(conn: &mut DbConnection, work: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConnection) -> Result<T, E>,
    E: From<diesel::result::Error>,
{
    if !matches!(conn, DbConnection::Sqlite(_)) {
        return conn.transaction(work);
    }
    with_sqlite(conn, |sqlite| {
        diesel::connection::AnsiTransactionManager::begin_transaction_sql(sqlite, "BEGIN IMMEDIATE")
    })?;
    let outcome = work(conn);
    match outcome {
        Ok(value) => {
            with_sqlite(conn, |sqlite| {
                diesel::connection::AnsiTransactionManager::commit_transaction(sqlite)
            })?;
            Ok(value)
        }
        Err(error) => {
            with_sqlite(conn, |sqlite| {
                diesel::connection::AnsiTransactionManager::rollback_transaction(sqlite)
            })?;
            Err(error)
        }
    }
}

fn with_sqlite<T>(
    conn: &mut DbConnection,
    f: impl FnOnce(&mut SqliteConnection) -> QueryResult<T>,
) -> QueryResult<T> {
    match conn {
        DbConnection::Sqlite(sqlite) => f(sqlite),
        DbConnection::Postgres(_) => Err(diesel::result::Error::BrokenTransactionManager),
    }
}

/// Runs one diesel expression against whichever backend `conn` holds. For the few
/// statements the two differ on or that `MultiConnection` cannot express
/// (`RETURNING`, multi-row inserts, `ON CONFLICT`).
#[macro_export]
macro_rules! per_backend {
    ($conn:expr, |$inner:ident| $body:expr) => {
        match $conn {
            $crate::db::DbConnection::Postgres($inner) => $body,
            $crate::db::DbConnection::Sqlite($inner) => $body,
        }
    };
}

/// Current time as stored: UTC, second precision keeps both backends' round-trips equal.
pub fn now() -> chrono::NaiveDateTime {
    let now = chrono::Utc::now().naive_utc();
    now.with_nanosecond_zeroed()
}

trait ZeroNanos {
    fn with_nanosecond_zeroed(self) -> Self;
}

impl ZeroNanos for chrono::NaiveDateTime {
    fn with_nanosecond_zeroed(self) -> Self {
        use chrono::Timelike;
        self.with_nanosecond(0).unwrap_or(self)
    }
}

/// Opens the pool and applies pending migrations.
pub fn prepare_database(settings: &crate::settings::Settings) -> anyhow::Result<DbPool> {
    use anyhow::Context;
    let pool = connect(&settings.database_url, settings.db_pool_size)?;
    let mut conn = pool.get().context("getting a connection for migrations")?;
    migrate(&mut conn)?;
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backend_is_chosen_by_scheme() {
        assert_eq!(
            DatabaseTarget::parse("sqlite://data/cohorts.db").expect("sqlite"),
            DatabaseTarget::Sqlite(PathBuf::from("data/cohorts.db"))
        );
        assert!(matches!(
            DatabaseTarget::parse("postgres://u@localhost/db").expect("pg"),
            DatabaseTarget::Postgres(url) if url.ends_with("?connect_timeout=5")
        ));
        let error = DatabaseTarget::parse("mysql://localhost/db").expect_err("refused");
        assert!(error.to_string().contains("\"mysql\""), "{error}");
    }
}
