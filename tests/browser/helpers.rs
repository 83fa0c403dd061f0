//! A real browser against the real app: Debian's chromium driven through chromedriver
//! (WebDriver). Without chromium/chromedriver the tests skip, except with CI=true,
//! where a missing browser fails the run.

use cohorts::seed::SeedReport;
use cohorts::settings::Settings;
use cohorts::startup::Application;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use fantoccini::{Client, ClientBuilder, Locator};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub const DESKTOP: (u32, u32) = (1280, 900);
pub const PHONE: (u32, u32) = (360, 740);

pub struct TestApp {
    pub address: String,
    pub pool: cohorts::db::DbPool,
    pub seed: SeedReport,
    _dir: tempfile::TempDir,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// (email, password) of the seeded account with this role.
    pub fn account(&self, role: &str) -> (String, String) {
        let account = self
            .seed
            .accounts
            .iter()
            .find(|a| a.role == role)
            .expect("seeded account");
        (account.email.clone(), account.password.clone())
    }
}

/// The app on port 0 with its own database, filled by `seed-demo`.
pub async fn spawn_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::defaults().expect("default settings");
    settings.bind = "127.0.0.1:0".into();
    settings.data_dir = dir.path().join("data");
    settings.secret_key = Some("browser-test-secret-key-long-enough-0123456789".into());
    settings.db_pool_size = 4;
    settings.database_url = match std::env::var("TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => fresh_postgres_database(&base),
        _ => format!("sqlite://{}", dir.path().join("cohorts.db").display()),
    };
    let app = Application::build(settings)
        .await
        .expect("application builds");
    let port = app.port();
    let pool = app.pool().clone();
    tokio::spawn(app.run_until_stopped());
    let seed = {
        let pool = pool.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = pool.get().expect("connection");
            cohorts::seed::seed(&mut conn, false).map_err(|e| e.to_string())
        })
        .await
        .expect("seed task")
        .expect("seed-demo fills the database")
    };
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        pool,
        seed,
        _dir: dir,
    }
}

fn fresh_postgres_database(base_url: &str) -> String {
    let name = format!("cohorts_test_{}", uuid::Uuid::new_v4().simple());
    let mut admin = diesel::PgConnection::establish(base_url)
        .unwrap_or_else(|error| panic!("TEST_DATABASE_URL is set but unreachable: {error}"));
    admin
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .expect("create test database");
    let (without_query, query) = match base_url.split_once('?') {
        Some((url, query)) => (url, format!("?{query}")),
        None => (base_url, String::new()),
    };
    let (server, _) = without_query
        .rsplit_once('/')
        .expect("TEST_DATABASE_URL names a database");
    format!("{server}/{name}{query}")
}

fn find_program(names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    for dir in std::env::split_paths(&path) {
        for name in names {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return Some(candidate);
            }
        }
    }
    None
}

/// A browser session: chromedriver (ours, killed on drop) and a client.
pub struct Browser {
    pub client: Client,
    driver: Child,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// Starts chromium, or returns `None` (skip) when it is not installed outside CI.
pub async fn browser() -> Option<Browser> {
    let chromium = find_program(&["chromium", "chromium-browser", "google-chrome"]);
    let driver = find_program(&["chromedriver"]);
    let (Some(chromium), Some(driver)) = (chromium, driver) else {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("chromium and chromedriver are required in CI (apt-get install chromium chromium-driver)");
        }
        eprintln!("skipping browser test: chromium or chromedriver not installed");
        return None;
    };
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let driver = Command::new(driver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().expect("profile dir");
    let caps = serde_json::json!({
        "goog:chromeOptions": {
            "binary": chromium.to_string_lossy(),
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", "--hide-scrollbars",
                format!("--user-data-dir={}", profile.path().display()),
                format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
            ]
        }
    });
    let caps = match caps {
        serde_json::Value::Object(map) => map,
        _ => unreachable!("capabilities are an object"),
    };
    let url = format!("http://127.0.0.1:{port}");
    let mut last_error = String::new();
    for _ in 0..100 {
        // Plain HTTP to our own chromedriver on loopback: no TLS needed.
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        match ClientBuilder::new(connector)
            .capabilities(caps.clone())
            .connect(&url)
            .await
        {
            Ok(client) => {
                return Some(Browser {
                    client,
                    driver,
                    _profile: profile,
                })
            }
            Err(error) => {
                last_error = error.to_string();
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    panic!("could not start a browser session: {last_error}");
}

/// Where screenshots go: $COHORTS_SCREENSHOTS, else target/screenshots.
pub fn screenshot_dir() -> PathBuf {
    std::env::var_os("COHORTS_SCREENSHOTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/screenshots"))
}

impl Browser {
    pub async fn size(&self, (width, height): (u32, u32)) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("window size");
    }

    pub async fn go(&self, url: &str) {
        self.client.goto(url).await.expect("navigate");
    }

    pub async fn text(&self) -> String {
        self.client
            .find(Locator::Css("body"))
            .await
            .expect("body")
            .text()
            .await
            .expect("text")
    }

    pub async fn title(&self) -> String {
        self.client.title().await.expect("title")
    }

    pub async fn path(&self) -> String {
        self.client
            .current_url()
            .await
            .expect("url")
            .path()
            .to_string()
    }

    pub async fn click(&self, css: &str) {
        let before = self.url().await;
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("{css}: {e}"))
            .click()
            .await
            .unwrap_or_else(|e| panic!("click {css}: {e}"));
        self.settle(&before).await;
    }

    pub async fn click_link(&self, text: &str) {
        let before = self.url().await;
        self.client
            .find(Locator::LinkText(text))
            .await
            .unwrap_or_else(|e| panic!("link {text}: {e}"))
            .click()
            .await
            .expect("click link");
        self.settle(&before).await;
    }

    async fn url(&self) -> String {
        self.client
            .current_url()
            .await
            .map(|url| url.to_string())
            .unwrap_or_default()
    }

    /// A click or submit returns before the browser has navigated; wait (up to 5 s)
    /// until the address changes and the new page is there. Buttons that stay on the
    /// same address just wait out the limit.
    async fn settle(&self, before: &str) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < deadline {
            if self.url().await != before && self.client.find(Locator::Css("body")).await.is_ok() {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    pub async fn login(&self, app: &TestApp, role: &str) {
        let (email, password) = app.account(role);
        self.go(&app.url("/staff/login")).await;
        let form = self
            .client
            .form(Locator::Css("form[action='/staff/login']"))
            .await
            .expect("login form");
        form.set_by_name("email", &email).await.expect("email");
        form.set_by_name("password", &password)
            .await
            .expect("password");
        let before = self.url().await;
        form.submit().await.expect("submit");
        self.settle(&before).await;
        assert!(
            !self.path().await.ends_with("/login"),
            "signed in as {role}"
        );
    }

    pub async fn logout(&self) {
        self.click("form.logout button").await;
        assert_eq!(self.path().await, "/staff/login");
    }

    /// Saves a PNG of the current page as `<name>-<width>.png`.
    pub async fn shot(&self, name: &str, (width, _): (u32, u32)) {
        let png = self.client.screenshot().await.expect("screenshot");
        let dir = screenshot_dir();
        std::fs::create_dir_all(&dir).expect("screenshot dir");
        std::fs::write(dir.join(format!("{name}-{width}.png")), png).expect("write screenshot");
    }

    pub async fn close(self) {
        let Browser { client, .. } = &self;
        let _ = client.clone().close().await;
    }
}
