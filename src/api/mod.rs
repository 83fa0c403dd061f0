//! The JSON API of DESIGN.md: one `config` per area, small handlers that parse, call one
//! `service` function on the blocking pool, and answer.

use actix_web::web;

pub mod attendance;
pub mod audit;
pub mod auth;
pub mod cohorts;
pub mod facilitators;
pub mod health;
pub mod import;
pub mod outbox;
pub mod patients;
pub mod programs;
pub mod users;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1")
            .configure(auth::config)
            .configure(users::config)
            .configure(programs::config)
            .configure(patients::config)
            .configure(import::config)
            .configure(facilitators::config)
            .configure(cohorts::config)
            .configure(attendance::config)
            .configure(audit::config)
            .configure(outbox::config)
            .service(crate::web::fallback())
            .default_service(web::to(crate::web::not_found)),
    );
}
