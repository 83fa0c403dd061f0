//! Builds the application: database, migrations, the HTTP server (and, as areas land,
//! the background worker beside it).

use crate::api;
use crate::db::{self, DbPool};
use crate::settings::Settings;
use crate::telemetry::Metrics;
use crate::web::{self as web_layer, AppState};
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
    worker: Option<crate::worker::runner::Handle>,
    /// Email and one-time password of the admin created on this start, if one was.
    pub initial_admin: Option<(String, String)>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let pool = db::prepare_database(&settings)?;
        let initial_admin = {
            let pool = pool.clone();
            web::block(move || -> anyhow::Result<_> {
                let mut conn = pool.get()?;
                crate::service::users::ensure_initial_admin(&mut conn, INITIAL_ADMIN_EMAIL)
            })
            .await
            .context("creating the first admin")??
        };
        let secret_key = settings.secret_key_bytes()?;
        let listener = TcpListener::bind(&settings.bind)
            .with_context(|| format!("binding {}", settings.bind))?;
        let port = listener.local_addr()?.port();
        let metrics = Arc::new(Metrics::default());
        let mailer = web::Data::new(crate::email::Mailer::from_settings(
            &settings,
            secret_key.clone(),
        )?);
        let worker =
            crate::worker::runner::start_beside_server(&settings, &pool, &mailer, &metrics);
        let metrics = web::Data::from(metrics);
        let tokens = web_layer::auth::TokenCache::new(std::time::Duration::from_millis(
            settings.auth_cache_millis,
        ));
        let logins = web_layer::throttle::LoginThrottle::new(
            settings
                .login_attempts_per_address
                .unwrap_or(crate::settings::DEFAULT_LOGIN_ATTEMPTS_PER_ADDRESS)
                as usize,
        );
        let state = web::Data::new(AppState {
            logins,
            pool: pool.clone(),
            settings: Arc::new(settings),
            secret_key: Arc::new(secret_key),
            tokens,
        });
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .app_data(mailer.clone())
                .app_data(metrics.clone())
                .configure(web_layer::extractor_errors)
                .wrap(from_fn(web_layer::refuse_nul_in_query))
                .wrap(from_fn(web_layer::observe::observe))
                .configure(api::health::config)
                .configure(web_layer::patient_links::config)
                .configure(api::config)
                .configure(crate::pages::config)
                .service(web_layer::fallback())
                .default_service(web::to(web_layer::not_found))
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
