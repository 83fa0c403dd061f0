//! A program's rules, with the defaults of DESIGN.md, and their validation.

use super::Credential;
use chrono::{NaiveTime, Weekday};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::collections::{BTreeMap, BTreeSet};

/// Dotted field name → what is wrong with it.
pub type FieldErrors = BTreeMap<String, String>;

/// The hard upper bound on cohort and circle size.
pub const MAX_GROUP_SIZE: u32 = 40;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ProgramRules {
    pub cohort: CohortRules,
    pub schedule: ScheduleRules,
    pub staffing: StaffingRules,
    pub attendance: AttendanceRules,
    pub peer_support: PeerSupportRules,
    pub reminders: ReminderRules,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CohortRules {
    pub min_size: u32,
    pub max_size: u32,
    pub dosing_window_days: u32,
    pub max_wait_days: u32,
}

impl Default for CohortRules {
    fn default() -> Self {
        CohortRules {
            min_size: 4,
            max_size: 12,
            dosing_window_days: 14,
            max_wait_days: 21,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScheduleRules {
    pub weekday: WeekdayName,
    pub local_time: LocalTime,
    pub duration_minutes: u32,
    pub sessions: u32,
    pub min_days_after_dosing: u32,
    pub notice_days: u32,
}

impl Default for ScheduleRules {
    fn default() -> Self {
        ScheduleRules {
            weekday: WeekdayName(Weekday::Tue),
            local_time: LocalTime(NaiveTime::from_hms_opt(18, 0, 0).unwrap_or(NaiveTime::MIN)),
            duration_minutes: 120,
            sessions: 12,
            min_days_after_dosing: 1,
            notice_days: 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StaffingRules {
    pub members_per_facilitator: u32,
    pub required_credentials: Vec<Credential>,
}

impl Default for StaffingRules {
    fn default() -> Self {
        StaffingRules {
            members_per_facilitator: 4,
            required_credentials: vec![Credential::Therapist, Credential::Nurse],
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AttendanceRules {
    pub completion_threshold: f64,
    pub outreach_after: u32,
    pub at_risk_after: u32,
}

impl Default for AttendanceRules {
    fn default() -> Self {
        AttendanceRules {
            completion_threshold: 0.75,
            outreach_after: 2,
            at_risk_after: 4,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PeerSupportRules {
    pub interval_weeks: u32,
    pub sessions: u32,
    pub max_size: u32,
    /// Peer facilitators per circle.
    pub facilitators: u32,
    /// Attendance is voluntary in a circle: no follow-ups unless the program wants them.
    pub follow_ups: bool,
    /// Days after an integration cohort's last session when the worker completes it on
    /// its own, once attendance is complete; 0 leaves completion to a lead.
    pub auto_complete_after_days: u32,
}

impl Default for PeerSupportRules {
    fn default() -> Self {
        PeerSupportRules {
            interval_weeks: 4,
            sessions: 6,
            max_size: 12,
            facilitators: 1,
            follow_ups: false,
            auto_complete_after_days: 7,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReminderRules {
    pub hours_before: Vec<u32>,
}

impl Default for ReminderRules {
    fn default() -> Self {
        ReminderRules {
            hours_before: vec![48, 2],
        }
    }
}

impl ProgramRules {
    /// Relations between fields that types alone cannot express. Every broken rule is
    /// reported under its dotted field name.
    pub fn validate(&self) -> FieldErrors {
        let mut errors = FieldErrors::new();
        let mut fail = |field: &str, message: String| {
            errors.entry(field.to_string()).or_insert(message);
        };

        let cohort = &self.cohort;
        if cohort.min_size < 1 {
            fail("cohort.min_size", "must be at least 1".into());
        }
        if cohort.max_size > MAX_GROUP_SIZE {
            fail(
                "cohort.max_size",
                format!("must be at most {MAX_GROUP_SIZE}"),
            );
        }
        if cohort.min_size > cohort.max_size {
            fail(
                "cohort.min_size",
                format!("must not exceed cohort.max_size ({})", cohort.max_size),
            );
        }
        if cohort.max_wait_days < 1 {
            fail("cohort.max_wait_days", "must be at least 1".into());
        }

        let schedule = &self.schedule;
        if !(1..=24 * 60).contains(&schedule.duration_minutes) {
            fail(
                "schedule.duration_minutes",
                "must be between 1 and 1440".into(),
            );
        }
        if !(1..=104).contains(&schedule.sessions) {
            fail("schedule.sessions", "must be between 1 and 104".into());
        }

        let staffing = &self.staffing;
        if staffing.members_per_facilitator < 1 {
            fail(
                "staffing.members_per_facilitator",
                "must be at least 1".into(),
            );
        }
        let unique: BTreeSet<_> = staffing.required_credentials.iter().collect();
        if unique.len() != staffing.required_credentials.len() {
            fail(
                "staffing.required_credentials",
                "must not repeat a credential".into(),
            );
        }

        let attendance = &self.attendance;
        if !(attendance.completion_threshold > 0.0 && attendance.completion_threshold <= 1.0) {
            fail(
                "attendance.completion_threshold",
                "must be greater than 0 and at most 1".into(),
            );
        }
        if attendance.outreach_after < 1 {
            fail("attendance.outreach_after", "must be at least 1".into());
        }
        if attendance.at_risk_after < attendance.outreach_after {
            fail(
                "attendance.at_risk_after",
                "must be at least attendance.outreach_after".into(),
            );
        }

        let peer = &self.peer_support;
        if peer.interval_weeks < 1 {
            fail("peer_support.interval_weeks", "must be at least 1".into());
        }
        if !(1..=104).contains(&peer.sessions) {
            fail("peer_support.sessions", "must be between 1 and 104".into());
        }
        if !(1..=4).contains(&peer.facilitators) {
            fail(
                "peer_support.facilitators",
                "must be between 1 and 4".into(),
            );
        }
        if peer.auto_complete_after_days > 365 {
            fail(
                "peer_support.auto_complete_after_days",
                "must be at most 365".into(),
            );
        }
        if !(1..=MAX_GROUP_SIZE).contains(&peer.max_size) {
            fail(
                "peer_support.max_size",
                format!("must be between 1 and {MAX_GROUP_SIZE}"),
            );
        }

        let offsets = &self.reminders.hours_before;
        if offsets.contains(&0) {
            fail(
                "reminders.hours_before",
                "offsets must be positive hours".into(),
            );
        } else if offsets.windows(2).any(|pair| pair[0] <= pair[1]) {
            fail(
                "reminders.hours_before",
                "offsets must be unique and sorted from earliest to latest reminder, e.g. [48, 2]"
                    .into(),
            );
        } else if offsets.iter().any(|hours| *hours > 24 * 30) {
            fail(
                "reminders.hours_before",
                "offsets must be at most 720 hours".into(),
            );
        }
        errors
    }
}

/// A weekday written `mon` … `sun` (full names are accepted on input).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekdayName(pub Weekday);

impl WeekdayName {
    pub fn short(self) -> &'static str {
        match self.0 {
            Weekday::Mon => "mon",
            Weekday::Tue => "tue",
            Weekday::Wed => "wed",
            Weekday::Thu => "thu",
            Weekday::Fri => "fri",
            Weekday::Sat => "sat",
            Weekday::Sun => "sun",
        }
    }

    pub fn parse(text: &str) -> Result<WeekdayName, String> {
        text.parse::<Weekday>()
            .map(WeekdayName)
            .map_err(|_| format!("must be a weekday such as mon, tue, … sun (got {text:?})"))
    }
}

impl Serialize for WeekdayName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.short())
    }
}

impl<'de> Deserialize<'de> for WeekdayName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        WeekdayName::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// A wall-clock time written `HH:MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime(pub NaiveTime);

impl LocalTime {
    pub fn parse(text: &str) -> Result<LocalTime, String> {
        let well_formed = text.len() == 5 && text.as_bytes()[2] == b':';
        well_formed
            .then(|| NaiveTime::parse_from_str(text, "%H:%M").ok())
            .flatten()
            .map(LocalTime)
            .ok_or_else(|| format!("must be a time HH:MM between 00:00 and 23:59 (got {text:?})"))
    }
}

impl Serialize for LocalTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.format("%H:%M").to_string())
    }
}

impl<'de> Deserialize<'de> for LocalTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        LocalTime::parse(&text).map_err(serde::de::Error::custom)
    }
}

/// An IANA time zone name such as `America/Vancouver`.
pub fn parse_timezone(text: &str) -> Result<chrono_tz::Tz, String> {
    text.parse::<chrono_tz::Tz>()
        .map_err(|_| format!("must be an IANA time zone such as America/Vancouver (got {text:?})"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_those_of_the_design() {
        let rules = ProgramRules::default();
        assert_eq!(rules.cohort.min_size, 4);
        assert_eq!(rules.cohort.max_size, 12);
        assert_eq!(rules.schedule.weekday.short(), "tue");
        assert_eq!(rules.reminders.hours_before, vec![48, 2]);
        assert!(rules.validate().is_empty());
    }

    #[test]
    fn local_time_must_be_hh_mm() {
        assert!(LocalTime::parse("18:00").is_ok());
        for bad in ["6pm", "24:00", "18:60", "1800", "8:00", "18:00:00"] {
            assert!(LocalTime::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn reminder_offsets_must_be_sorted_and_unique() {
        let mut rules = ProgramRules::default();
        for bad in [vec![2, 48], vec![48, 48], vec![48, 0]] {
            rules.reminders.hours_before = bad.clone();
            assert!(
                rules.validate().contains_key("reminders.hours_before"),
                "{bad:?}"
            );
        }
    }
}
