//! Pure rules of the service: no I/O, no HTTP, no SQL.
//!
//! Everything here is plain data in and plain data out, which is what lets the
//! formation and staffing algorithms be checked against brute force and benchmarked.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A closed set of values stored and serialized as text: `ALL`, `as_str`, `Display`,
/// `FromStr` (naming the allowed values), serde in and out, and the diesel derives that
/// let it be a column value (its `FromSql`/`ToSql` live in `db::enums`).
macro_rules! text_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[derive(diesel::AsExpression, diesel::FromSqlRow)]
        #[diesel(sql_type = diesel::sql_types::Text)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "must be one of {} (got {other:?})",
                        [$($text),+].join(", ")
                    )),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                let text = String::deserialize(deserializer)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

pub mod attendance;
pub mod formation;
pub mod ids;
pub mod patient;
pub mod program;
pub mod schedule;
pub mod staffing;
pub mod status;

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
