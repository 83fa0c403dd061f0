//! Configuration: embedded config/default.toml, then config/default.toml and
//! config/$COHORTS_ENV.toml from the working directory, then COHORTS_* variables.

use anyhow::Context;
use rand::RngCore;
use serde::Deserialize;
use std::path::{Path, PathBuf};

const EMBEDDED_DEFAULTS: &str = include_str!("../config/default.toml");

#[derive(Debug, Clone, Deserialize)]
pub struct Settings {
    pub database_url: String,
    pub bind: String,
    pub public_url: String,
    #[serde(default)]
    pub smtp_url: Option<String>,
    pub mail_from: String,
    #[serde(default)]
    pub secret_key: Option<String>,
    pub worker_poll_secs: u64,
    pub data_dir: PathBuf,
    pub token_ttl_hours: i64,
    pub db_pool_size: u32,
    /// How long a resolved bearer token or session is reused without asking the database
    /// (0: never). Revocation on another instance takes effect within this time.
    pub auth_cache_millis: u64,
    /// Worker tuning (tests, benchmarks); unset means the defaults of `worker::WorkerConfig`.
    #[serde(default)]
    pub worker_poll_millis: Option<u64>,
    #[serde(default)]
    pub worker_lease_secs: Option<u64>,
    #[serde(default)]
    pub mail_retry_base_millis: Option<u64>,
    #[serde(default)]
    pub mail_max_attempts: Option<u32>,
    /// `false` runs `serve` without the mail worker (a separate `cohorts worker` sends).
    #[serde(default)]
    pub worker_enabled: Option<bool>,
    /// A folder laid out like templates/ whose files override the embedded templates.
    #[serde(default)]
    pub templates_dir: Option<PathBuf>,
    /// Failed logins one client address may make per 10 minutes, per instance (0: no
    /// limit); unset means `DEFAULT_LOGIN_ATTEMPTS_PER_ADDRESS`.
    #[serde(default)]
    pub login_attempts_per_address: Option<u32>,
    /// When set, `/metrics` answers only `Authorization: Bearer <this>`, from any address;
    /// unset, it answers loopback callers only.
    #[serde(default)]
    pub metrics_token: Option<String>,
}

pub const DEFAULT_LOGIN_ATTEMPTS_PER_ADDRESS: u32 = 20;

impl Settings {
    /// Reads the layered configuration of DESIGN.md.
    pub fn load() -> anyhow::Result<Settings> {
        let env = std::env::var("COHORTS_ENV").unwrap_or_else(|_| "development".into());
        let built = config::Config::builder()
            .add_source(config::File::from_str(
                EMBEDDED_DEFAULTS,
                config::FileFormat::Toml,
            ))
            .add_source(config::File::with_name("config/default").required(false))
            .add_source(config::File::with_name(&format!("config/{env}")).required(false))
            .add_source(config::Environment::with_prefix("COHORTS").try_parsing(true))
            .build()
            .context("reading configuration")?;
        let mut settings: Settings = built
            .try_deserialize()
            .context("configuration has an invalid value")?;
        // An empty variable means "unset", as people write `COHORTS_SMTP_URL=` to clear it.
        settings.smtp_url = settings.smtp_url.filter(|url| !url.trim().is_empty());
        settings.secret_key = settings.secret_key.filter(|key| !key.trim().is_empty());
        settings.metrics_token = settings.metrics_token.filter(|t| !t.trim().is_empty());
        Ok(settings)
    }

    /// Settings for tests and tools: the embedded defaults, no files, no environment.
    pub fn defaults() -> anyhow::Result<Settings> {
        config::Config::builder()
            .add_source(config::File::from_str(
                EMBEDDED_DEFAULTS,
                config::FileFormat::Toml,
            ))
            .build()?
            .try_deserialize()
            .context("embedded defaults are invalid")
    }

    /// The key that signs links and cookies: configured, or generated once into data/.
    pub fn secret_key_bytes(&self) -> anyhow::Result<Vec<u8>> {
        if let Some(key) = &self.secret_key {
            anyhow::ensure!(
                key.len() >= 32,
                "COHORTS_SECRET_KEY must be at least 32 characters"
            );
            return Ok(key.as_bytes().to_vec());
        }
        load_or_create_key(&self.data_dir.join("secret_key"))
    }
}

fn load_or_create_key(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(existing) = std::fs::read_to_string(path) {
        let decoded = hex::decode(existing.trim())
            .with_context(|| format!("{} is not a hex key", path.display()))?;
        anyhow::ensure!(decoded.len() >= 32, "{} is too short", path.display());
        return Ok(decoded);
    }
    if let Some(dir) = path.parent() {
        create_private_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut key = vec![0u8; 32];
    rand::thread_rng().fill_bytes(&mut key);
    write_private(path, hex::encode(&key).as_bytes())
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(key)
}

/// Creates a directory (and missing parents) readable only by the service's user
/// (0700): it holds the key, the SQLite database and mail written as files. A directory
/// that exists already keeps its mode: the operator chose it.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}

/// Makes an existing file readable and writable by the service's user only (0600).
pub fn make_private(path: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(unix)]
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents)
}

#[cfg(not(unix))]
pub fn write_private(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_match_the_design_table() {
        let settings = Settings::defaults().expect("defaults parse");
        assert_eq!(settings.database_url, "sqlite://data/cohorts.db");
        assert_eq!(settings.bind, "127.0.0.1:8080");
        assert_eq!(settings.public_url, "http://127.0.0.1:8080");
        assert_eq!(settings.smtp_url, None);
        assert_eq!(settings.mail_from, "Care Team <care@localhost>");
        assert_eq!(settings.worker_poll_secs, 10);
    }

    #[test]
    fn generated_secret_key_is_kept_across_starts() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = Settings::defaults().expect("defaults parse");
        settings.data_dir = dir.path().join("data");
        let first = settings.secret_key_bytes().expect("generated");
        let second = settings.secret_key_bytes().expect("read back");
        assert_eq!(first, second);
        assert_eq!(first.len(), 32);
    }
}
