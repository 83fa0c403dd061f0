//! Rows and the queries that read and write them, one file per aggregate.

pub mod attendance;
pub mod cohort;
pub mod facilitator;
pub mod patient;
pub mod program;
pub mod user;
