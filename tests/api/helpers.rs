use cohorts::db::DbPool;
use cohorts::settings::Settings;
use cohorts::startup::Application;
use diesel::connection::SimpleConnection;
use diesel::Connection;
use reqwest::{Method, Response};
use serde_json::{json, Value};

pub use crate::smtp_sink::SmtpSink;

pub struct TestApp {
    pub address: String,
    /// The SMTP server this app's worker sends to.
    pub mail: SmtpSink,
    /// The settings the app was started with (to start a second process on the same data).
    pub settings: Settings,
    pub client: reqwest::Client,
    pub admin_token: String,
    pub pool: DbPool,
    _dir: tempfile::TempDir,
}

/// Starts the whole application on port 0 with a database of its own.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// As `spawn_app`, with a chance to change the settings first. Mail goes to an SMTP sink
/// of the test's own, polled every 100 ms.
pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mail = SmtpSink::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings::defaults().expect("default settings");
    settings.bind = "127.0.0.1:0".into();
    settings.data_dir = dir.path().join("data");
    settings.secret_key = Some("test-secret-key-that-is-long-enough-0123456789".into());
    settings.db_pool_size = 4;
    settings.smtp_url = Some(mail.url());
    settings.public_url = "http://127.0.0.1:0".into();
    settings.worker_poll_millis = Some(100);
    settings.mail_retry_base_millis = Some(200);
    settings.worker_lease_secs = Some(300);
    match std::env::var("TEST_DATABASE_URL") {
        Ok(base) if !base.is_empty() => {
            settings.database_url = fresh_postgres_database(&base);
        }
        _ => {
            settings.database_url = format!("sqlite://{}", dir.path().join("cohorts.db").display());
        }
    };
    configure(&mut settings);
    let app = Application::build(settings.clone())
        .await
        .expect("application builds");
    let port = app.port();
    let pool = app.pool().clone();
    let (email, password) = app
        .initial_admin
        .clone()
        .expect("first start creates an admin");
    tokio::spawn(app.run_until_stopped());

    let mut test_app = TestApp {
        address: format!("http://127.0.0.1:{port}"),
        mail,
        settings,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .expect("http client"),
        admin_token: String::new(),
        pool,
        _dir: dir,
    };
    test_app.admin_token = test_app.login(&email, &password).await;
    test_app
}

/// CREATE DATABASE per test: tests never share state and need no ordering.
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

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn request(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self.client.request(method, self.url(path));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        request.send().await.expect("request sent")
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.request(Method::GET, path, Some(token), None).await
    }

    /// GET that must answer 200 with JSON; returns the body.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        let response = self.get(path, token).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.expect("a JSON body")
    }

    pub async fn post(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::POST, path, Some(token), Some(body))
            .await
    }

    pub async fn patch(&self, path: &str, token: &str, body: &Value) -> Response {
        self.request(Method::PATCH, path, Some(token), Some(body))
            .await
    }

    pub async fn login(&self, email: &str, password: &str) -> String {
        let response = self
            .request(
                Method::POST,
                "/api/v1/auth/login",
                None,
                Some(&json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(response.status(), 200, "login of {email}");
        let body: Value = response.json().await.expect("login json");
        body["token"].as_str().expect("token").to_string()
    }

    /// A program with every rule at its default.
    pub async fn create_program(&self, name: &str) -> i64 {
        let response = self
            .post(
                "/api/v1/programs",
                &self.admin_token,
                &json!({
                    "name": name,
                    "site": "Nanaimo",
                    "timezone": "America/Vancouver",
                    "modality": "ketamine",
                    "join_url": "https://meet.example.org/integration"
                }),
            )
            .await;
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.expect("program json");
        body["id"].as_i64().expect("program id")
    }

    /// Creates a user with the given role and programs; returns (id, token).
    pub async fn create_user(&self, role: &str, program_ids: &[i64]) -> (i64, String) {
        let email = format!("{}-{}@example.org", role, uuid::Uuid::new_v4().simple());
        let password = "a long enough password";
        let response = self
            .post(
                "/api/v1/users",
                &self.admin_token,
                &json!({
                    "email": email,
                    "name": "Staff Member",
                    "role": role,
                    "password": password,
                    "program_ids": program_ids,
                }),
            )
            .await;
        assert_eq!(response.status(), 201, "create {role}");
        let body: Value = response.json().await.expect("user json");
        let id = body["id"].as_i64().expect("user id");
        (id, self.login(&email, password).await)
    }

    pub fn conn(&self) -> cohorts::db::PooledConnection {
        self.pool.get().expect("database connection")
    }
}

/// The body of an error response, asserting its status and shape.
pub async fn error_body(response: Response, status: u16) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("error json");
    assert!(body["error"]["code"].is_string(), "error shape: {body}");
    assert!(body["error"]["message"].is_string(), "error shape: {body}");
    assert!(body["error"]["fields"].is_object(), "error shape: {body}");
    body
}

/// Asserts a 422 that names `field`.
pub async fn assert_field_error(response: Response, field: &str) -> Value {
    let body = error_body(response, 422).await;
    assert!(
        body["error"]["fields"].get(field).is_some(),
        "expected {field} named in {body}"
    );
    body
}

impl TestApp {
    /// A patient of `program` awaiting dosing; returns its id.
    pub async fn create_patient(&self, token: &str, program: i64, name: &str, email: &str) -> i64 {
        let response = self
            .post(
                &format!("/api/v1/programs/{program}/patients"),
                token,
                &json!({"name": name, "email": email, "email_consent": true}),
            )
            .await;
        assert_eq!(response.status(), 201, "create patient");
        let body: Value = response.json().await.expect("patient json");
        body["id"].as_i64().expect("patient id")
    }

    /// A lead of a fresh program: (program id, lead token).
    pub async fn program_with_lead(&self) -> (i64, String) {
        let program = self.create_program("Evening group").await;
        let (_, lead) = self.create_user("program_lead", &[program]).await;
        (program, lead)
    }

    /// Registers a facilitator as the admin; without `program_ids` in `body`, they serve
    /// every program that exists now.
    pub async fn create_facilitator(&self, body: &Value) -> i64 {
        let mut body = body.clone();
        if body.get("program_ids").is_none() {
            let programs = self.get_json("/api/v1/programs", &self.admin_token).await;
            let ids: Vec<i64> = programs["programs"]
                .as_array()
                .expect("programs")
                .iter()
                .filter_map(|p| p["id"].as_i64())
                .collect();
            body["program_ids"] = json!(ids);
        }
        let response = self
            .post("/api/v1/facilitators", &self.admin_token, &body)
            .await;
        assert_eq!(response.status(), 201, "create facilitator");
        let created: Value = response.json().await.expect("facilitator json");
        created["id"].as_i64().expect("facilitator id")
    }
}

pub fn facilitator_body(email: &str) -> Value {
    json!({
        "name": "Robin Therapist",
        "email": email,
        "timezone": "America/Vancouver",
        "credentials": ["therapist"],
        "modalities": ["ketamine", "psilocybin"],
        "licence_expires_on": "2030-01-01",
        "availability": [{"weekday": "tue", "start": "17:00", "end": "21:00"}],
        "max_active_cohorts": 3
    })
}

impl TestApp {
    /// `count` patients dosed `days_ago` days ago (staggered by an hour), on the waitlist.
    pub async fn waitlist(
        &self,
        token: &str,
        program: i64,
        count: usize,
        days_ago: i64,
    ) -> Vec<i64> {
        let mut ids = Vec::with_capacity(count);
        for n in 0..count {
            let email = format!(
                "w{}-{}@example.org",
                days_ago,
                uuid::Uuid::new_v4().simple()
            );
            let id = self
                .create_patient(token, program, &format!("Waiting {n}"), &email)
                .await;
            let dosed_at = chrono::Utc::now()
                - chrono::Duration::days(days_ago)
                - chrono::Duration::hours(n as i64 % 5);
            let response = self
                .post(
                    &format!("/api/v1/patients/{id}/dosings"),
                    token,
                    &json!({"dosed_at": dosed_at.to_rfc3339()}),
                )
                .await;
            assert_eq!(response.status(), 201, "dosing");
            ids.push(id);
        }
        ids
    }

    pub async fn form(&self, token: &str, program: i64, dry_run: bool) -> reqwest::Response {
        self.post(
            &format!("/api/v1/programs/{program}/cohort-formations"),
            token,
            &json!({ "dry_run": dry_run }),
        )
        .await
    }

    /// A therapist and a nurse trained for ketamine, free on Tuesday evenings.
    pub async fn staff_pair(&self) -> (i64, i64) {
        let mut therapist =
            facilitator_body(&format!("t-{}@example.org", uuid::Uuid::new_v4().simple()));
        therapist["availability"] = json!([{"weekday": "tue", "start": "08:00", "end": "22:00"}]);
        let mut nurse = therapist.clone();
        nurse["email"] = json!(format!("n-{}@example.org", uuid::Uuid::new_v4().simple()));
        nurse["name"] = json!("Sam Nurse");
        nurse["credentials"] = json!(["nurse"]);
        (
            self.create_facilitator(&therapist).await,
            self.create_facilitator(&nurse).await,
        )
    }

    /// A facilitator account linked to facilitator record `facilitator_id`.
    pub async fn facilitator_user(&self, program: i64, facilitator_id: i64) -> String {
        let email = format!("fu-{}@example.org", uuid::Uuid::new_v4().simple());
        let response = self
            .post(
                "/api/v1/users",
                &self.admin_token,
                &json!({"email": email, "name": "Facilitator", "role": "facilitator",
                        "password": "a long enough password", "program_ids": [program],
                        "facilitator_id": facilitator_id}),
            )
            .await;
        assert_eq!(response.status(), 201);
        self.login(&email, "a long enough password").await
    }
}
