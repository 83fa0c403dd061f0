//! Builds the application: database, migrations, the HTTP server (and, as areas land,
//! the background worker beside it).

use crate::api::{self, AppState};
use crate::db::{self, models::user as users, DbPool};
use crate::settings::Settings;
use crate::telemetry::{self, Metrics};
use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpServer};
use anyhow::Context;
use std::net::TcpListener;
use std::sync::Arc;

/// The account created on first start when there are no users at all.
pub const INITIAL_ADMIN_EMAIL: &str = "admin@localhost";

pub struct Application {
    port: u16,
    server: Server,
    pool: DbPool,
    worker: Option<crate::jobs::worker::Handle>,
    /// Email and one-time password of the admin created on this start, if one was.
    pub initial_admin: Option<(String, String)>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let pool = prepare_database(&settings)?;
        let initial_admin = {
            let pool = pool.clone();
            web::block(move || ensure_initial_admin(&pool))
                .await
                .context("creating the first admin")??
        };
        let secret_key = settings.secret_key_bytes()?;
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("binding {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let metrics = Arc::new(Metrics::default());
        let mailer = web::Data::new(crate::jobs::Mailer::from_settings(
            &settings,
            secret_key.clone(),
        )?);
        let worker = crate::jobs::worker::start_beside_server(&settings, &pool, &mailer, &metrics);
        let tokens = api::auth::TokenCache::new(std::time::Duration::from_millis(
            settings.auth_cache_millis,
        ));
        let state = web::Data::new(AppState {
            pool: pool.clone(),
            settings: Arc::new(settings),
            metrics,
            secret_key: Arc::new(secret_key),
            tokens,
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(mailer.clone())
                .configure(api::extractor_errors)
                .wrap(from_fn(telemetry::observe))
                .configure(api::config)
                .configure(crate::pages::config)
                .default_service(web::to(api::not_found))
        })
        .shutdown_timeout(10)
        .listen(listener)?
        .run();
        Ok(Application {
            port,
            server,
            pool,
            worker,
            initial_admin,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn pool(&self) -> &DbPool {
        &self.pool
    }

    /// Serves until SIGINT/SIGTERM, then finishes in-flight requests.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let served = self.server.await;
        if let Some(worker) = self.worker {
            worker.stop().await;
        }
        served
    }
}

/// Opens the pool and applies pending migrations.
pub fn prepare_database(settings: &Settings) -> anyhow::Result<DbPool> {
    let pool = db::connect(&settings.database_url, settings.db_pool_size)?;
    let mut conn = pool.get().context("getting a connection for migrations")?;
    db::migrate(&mut conn)?;
    Ok(pool)
}

/// On a database with no users, creates an admin with a random password so the first
/// start leads straight to a working login.
fn ensure_initial_admin(pool: &DbPool) -> anyhow::Result<Option<(String, String)>> {
    let mut conn = pool.get()?;
    if users::count(&mut conn)? > 0 {
        return Ok(None);
    }
    let password = crate::api::auth::new_token()
        .trim_start_matches("coh_")
        .chars()
        .take(20)
        .collect::<String>();
    let user = crate::api::users::ValidUser {
        email: crate::types::EmailAddress::parse(INITIAL_ADMIN_EMAIL)
            .map_err(|error| anyhow::anyhow!(error))?,
        name: "Administrator".into(),
        role: users::Role::Admin,
        password: password.clone(),
        program_ids: vec![],
        facilitator_id: None,
    };
    let hash = crate::api::auth::hash_password(&password)?;
    match crate::api::users::create_user(&mut conn, None, &user, &hash) {
        Ok(_) => Ok(Some((INITIAL_ADMIN_EMAIL.to_string(), password))),
        // Another instance created it first.
        Err(crate::error::AppError::Conflict { .. }) => Ok(None),
        Err(error) => Err(anyhow::anyhow!("creating the first admin: {error}")),
    }
}
