//! Pure rules of the service: no I/O, no HTTP, no SQL.
//!
//! Everything here is plain data in and plain data out, which is what lets the
//! formation and staffing algorithms be checked against brute force and benchmarked.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

pub mod attendance;
pub mod formation;
pub mod patient;
pub mod program;
pub mod schedule;
pub mod staffing;

/// What a patient was dosed with; a program is one of these or `mixed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Modality {
    Psilocybin,
    Ketamine,
    Mdma,
    Mixed,
}

impl Modality {
    pub const ALL: [Modality; 4] = [
        Modality::Psilocybin,
        Modality::Ketamine,
        Modality::Mdma,
        Modality::Mixed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Modality::Psilocybin => "psilocybin",
            Modality::Ketamine => "ketamine",
            Modality::Mdma => "mdma",
            Modality::Mixed => "mixed",
        }
    }
}

impl fmt::Display for Modality {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Modality {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Modality::ALL
            .into_iter()
            .find(|m| m.as_str() == s)
            .ok_or_else(|| format!("must be one of psilocybin, ketamine, mdma, mixed (got {s:?})"))
    }
}

/// A facilitator's professional credential.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Credential {
    Therapist,
    Nurse,
    Physician,
    Peer,
}

impl Credential {
    pub const ALL: [Credential; 4] = [
        Credential::Therapist,
        Credential::Nurse,
        Credential::Physician,
        Credential::Peer,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Credential::Therapist => "therapist",
            Credential::Nurse => "nurse",
            Credential::Physician => "physician",
            Credential::Peer => "peer",
        }
    }
}

impl fmt::Display for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Credential {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Credential::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("must be one of therapist, nurse, physician, peer (got {s:?})"))
    }
}
