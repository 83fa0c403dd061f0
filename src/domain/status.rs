//! The statuses and kinds of stored things, as closed sets: a `match` on one is
//! exhaustive, and a typo is a compile error instead of a silently false comparison.
//! Each is stored as its `snake_case` text (see `db::enums` for the SQL side) and
//! serialized the same way, so the API shows exactly the stored words.

text_enum! {
    /// Where a cohort is in its life.
    CohortStatus {
        Forming = "forming",
        Active = "active",
        Completed = "completed",
        Cancelled = "cancelled",
    }
}

impl CohortStatus {
    /// The status as of now: a forming cohort is active from the start of its first
    /// session that is not cancelled. The worker writes this down on its next pass;
    /// readers see it at once without writing.
    pub fn as_of(self, first_session_started: bool) -> CohortStatus {
        match self {
            CohortStatus::Forming if first_session_started => CohortStatus::Active,
            other => other,
        }
    }
}

text_enum! {
    /// What a cohort is for: an integration group, or a peer-support circle after it.
    CohortKind {
        Integration = "integration",
        PeerSupport = "peer_support",
    }
}

text_enum! {
    /// A patient's place in one cohort.
    MemberStatus {
        Active = "active",
        Withdrawn = "withdrawn",
        Completed = "completed",
    }
}

text_enum! {
    /// Whether a session took place.
    SessionStatus {
        Scheduled = "scheduled",
        Held = "held",
        Cancelled = "cancelled",
        DidNotTakePlace = "did_not_take_place",
    }
}

text_enum! {
    /// Why the facilitators are asked to reach out to a member.
    FollowUpKind {
        Outreach = "outreach",
        AtRisk = "at_risk",
    }
}

text_enum! {
    FollowUpStatus {
        Open = "open",
        Acknowledged = "acknowledged",
    }
}

text_enum! {
    /// An outbox row's delivery state.
    OutboxStatus {
        Pending = "pending",
        Sending = "sending",
        Sent = "sent",
        Failed = "failed",
        Cancelled = "cancelled",
    }
}

text_enum! {
    /// Who an outbox row is addressed to.
    RecipientType {
        Patient = "patient",
        Facilitator = "facilitator",
        /// A staff user (program leads); mail goes to the user's own address.
        User = "user",
    }
}

text_enum! {
    /// Every kind of email the service sends (DESIGN.md, Email).
    MailKind {
        Welcome = "welcome",
        Reminder = "reminder",
        SessionChanged = "session_changed",
        SessionCancelled = "session_cancelled",
        PeerInvitation = "peer_invitation",
        FacilitatorRoster = "facilitator_roster",
        AttendanceMissing = "attendance_missing",
        FollowUp = "follow_up",
        FacilitatorAssignment = "facilitator_assignment",
        FacilitatorUnassigned = "facilitator_unassigned",
        FollowUpEscalated = "follow_up_escalated",
    }
}

text_enum! {
    /// A patient's answer to a peer-support invitation.
    InvitationStatus {
        Pending = "pending",
        Accepted = "accepted",
        Declined = "declined",
    }
}

text_enum! {
    /// A patient's answer to "will you be there?".
    RsvpResponse {
        Yes = "yes",
        No = "no",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_round_trips_through_its_text_and_json() {
        for &kind in MailKind::ALL {
            assert_eq!(kind.as_str().parse::<MailKind>(), Ok(kind));
            assert_eq!(
                serde_json::to_value(kind).ok(),
                Some(serde_json::json!(kind.as_str()))
            );
        }
        assert_eq!(
            "did_not_take_place".parse::<SessionStatus>(),
            Ok(SessionStatus::DidNotTakePlace)
        );
        let refused = "captain".parse::<CohortStatus>().unwrap_err();
        assert!(
            refused.contains("forming, active, completed, cancelled"),
            "{refused}"
        );
    }
}
