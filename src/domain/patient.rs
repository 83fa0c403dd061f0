//! A patient's journey: awaiting_dosing → awaiting_cohort → in_cohort → completed |
//! withdrawn → peer_support. Transitions that make no sense are refused.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "snake_case")]
pub enum PatientStatus {
    AwaitingDosing,
    AwaitingCohort,
    InCohort,
    Completed,
    Withdrawn,
    PeerSupport,
}

impl PatientStatus {
    pub const ALL: [PatientStatus; 6] = [
        PatientStatus::AwaitingDosing,
        PatientStatus::AwaitingCohort,
        PatientStatus::InCohort,
        PatientStatus::Completed,
        PatientStatus::Withdrawn,
        PatientStatus::PeerSupport,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            PatientStatus::AwaitingDosing => "awaiting_dosing",
            PatientStatus::AwaitingCohort => "awaiting_cohort",
            PatientStatus::InCohort => "in_cohort",
            PatientStatus::Completed => "completed",
            PatientStatus::Withdrawn => "withdrawn",
            PatientStatus::PeerSupport => "peer_support",
        }
    }

    /// A new dosing puts the patient (back) on the waitlist, except while they are in a
    /// group: they must leave it first.
    pub fn after_dosing(self) -> Result<PatientStatus, TransitionRefused> {
        match self {
            PatientStatus::InCohort | PatientStatus::PeerSupport => Err(TransitionRefused {
                from: self,
                action: "record a dosing",
                hint: "withdraw the patient from their group first",
            }),
            _ => Ok(PatientStatus::AwaitingCohort),
        }
    }

    /// The changes a lead may make by hand; the others follow from cohort events
    /// (formation, completion, withdrawal from a cohort).
    pub fn set_by_hand(self, to: PatientStatus) -> Result<PatientStatus, TransitionRefused> {
        use PatientStatus::*;
        let allowed = matches!(
            (self, to),
            (AwaitingDosing | AwaitingCohort, Withdrawn) | (Withdrawn, AwaitingDosing)
        ) || self == to;
        if allowed {
            Ok(to)
        } else {
            Err(TransitionRefused {
                from: self,
                action: match to {
                    Withdrawn => "withdraw the patient here",
                    _ => "set this status by hand",
                },
                hint: match (self, to) {
                    (InCohort | PeerSupport, Withdrawn) => {
                        "withdraw them from their cohort (DELETE /api/v1/cohorts/{id}/members/{patient_id})"
                    }
                    (_, AwaitingCohort) => "record a dosing to put the patient on the waitlist",
                    _ => "this status follows from cohort events",
                },
            })
        }
    }
}

impl fmt::Display for PatientStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PatientStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PatientStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "must be one of awaiting_dosing, awaiting_cohort, in_cohort, completed, withdrawn, peer_support (got {s:?})"
                )
            })
    }
}

/// Why a status change was refused, for a 409 that tells the lead what to do instead.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransitionRefused {
    pub from: PatientStatus,
    pub action: &'static str,
    pub hint: &'static str,
}

impl fmt::Display for TransitionRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cannot {} while the patient is {}: {}",
            self.action, self.from, self.hint
        )
    }
}

#[cfg(test)]
mod tests {
    use super::PatientStatus::*;

    #[test]
    fn a_dosing_puts_the_patient_on_the_waitlist() {
        for from in [AwaitingDosing, AwaitingCohort, Completed, Withdrawn] {
            assert_eq!(from.after_dosing(), Ok(AwaitingCohort), "{from}");
        }
    }

    #[test]
    fn a_dosing_is_refused_while_in_a_group() {
        assert!(InCohort.after_dosing().is_err());
        assert!(PeerSupport.after_dosing().is_err());
    }

    #[test]
    fn only_sensible_statuses_can_be_set_by_hand() {
        assert_eq!(AwaitingCohort.set_by_hand(Withdrawn), Ok(Withdrawn));
        assert_eq!(Withdrawn.set_by_hand(AwaitingDosing), Ok(AwaitingDosing));
        assert!(InCohort.set_by_hand(Withdrawn).is_err());
        assert!(AwaitingDosing.set_by_hand(InCohort).is_err());
        assert!(AwaitingDosing.set_by_hand(AwaitingCohort).is_err());
        assert!(Completed.set_by_hand(PeerSupport).is_err());
    }
}
