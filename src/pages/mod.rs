//! HTML for people. `staff`: the pages of program leads and facilitators.

use actix_web::web;

pub mod staff;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.configure(staff::config);
}
