//! Attendance rules: what counts as attending, absence streaks, completion.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

// Declared in the alphabetical order of their texts, so maps keyed by status list them
// as the stored words sort.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    Serialize,
    Deserialize,
    diesel::AsExpression,
    diesel::FromSqlRow,
)]
#[diesel(sql_type = diesel::sql_types::Text)]
#[serde(rename_all = "snake_case")]
pub enum AttendanceStatus {
    Absent,
    Excused,
    Late,
    LeftEarly,
    Present,
}

impl AttendanceStatus {
    pub const ALL: [AttendanceStatus; 5] = [
        AttendanceStatus::Present,
        AttendanceStatus::Late,
        AttendanceStatus::LeftEarly,
        AttendanceStatus::Absent,
        AttendanceStatus::Excused,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AttendanceStatus::Present => "present",
            AttendanceStatus::Late => "late",
            AttendanceStatus::LeftEarly => "left_early",
            AttendanceStatus::Absent => "absent",
            AttendanceStatus::Excused => "excused",
        }
    }

    /// Present, late or left early: the member was in the group.
    pub fn attended(self) -> bool {
        matches!(
            self,
            AttendanceStatus::Present | AttendanceStatus::Late | AttendanceStatus::LeftEarly
        )
    }
}

impl fmt::Display for AttendanceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AttendanceStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AttendanceStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| {
                format!("must be one of present, late, left_early, absent, excused (got {s:?})")
            })
    }
}

/// The run of consecutive absences at the end of a member's record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
pub struct Streak {
    pub absences: u32,
    /// The first absent session of the run; identifies the streak.
    pub started_at_session: Option<i64>,
}

/// Walks held sessions in time order. An absence extends the streak; attending ends it;
/// an excused session (or one with no record yet) neither counts nor breaks it.
pub fn current_streak<'a>(
    marks: impl IntoIterator<Item = (i64, Option<AttendanceStatus>)> + 'a,
) -> Streak {
    let mut streak = Streak::default();
    for (session_id, status) in marks {
        match status {
            Some(AttendanceStatus::Absent) => {
                if streak.absences == 0 {
                    streak.started_at_session = Some(session_id);
                }
                streak.absences += 1;
            }
            Some(status) if status.attended() => streak = Streak::default(),
            _ => {}
        }
    }
    streak
}

/// Share of held sessions attended; `None` before any session was held.
pub fn attendance_rate(attended: u32, held: u32) -> Option<f64> {
    (held > 0).then(|| f64::from(attended) / f64::from(held))
}

/// Completion by the program's threshold, exact at the boundary (9 of 12 at 0.75
/// completes), which a float comparison of the rate could get wrong.
pub fn completed(attended: u32, held: u32, threshold: f64) -> bool {
    held > 0 && f64::from(attended) >= threshold * f64::from(held) - 1e-9
}

#[cfg(test)]
mod tests {
    use super::AttendanceStatus::*;
    use super::*;

    fn streak(marks: &[Option<AttendanceStatus>]) -> Streak {
        current_streak(marks.iter().enumerate().map(|(i, m)| (i as i64 + 1, *m)))
    }

    #[test]
    fn consecutive_absences_at_the_end_make_the_streak() {
        let s = streak(&[Some(Absent), Some(Present), Some(Absent), Some(Absent)]);
        assert_eq!(s.absences, 2);
        assert_eq!(s.started_at_session, Some(3));
    }

    #[test]
    fn excused_in_the_middle_neither_counts_nor_breaks() {
        let s = streak(&[Some(Absent), Some(Excused), Some(Absent)]);
        assert_eq!(s.absences, 2);
        assert_eq!(s.started_at_session, Some(1));
    }

    #[test]
    fn attending_in_any_way_resets_the_streak() {
        for attended in [Present, Late, LeftEarly] {
            assert_eq!(
                streak(&[Some(Absent), Some(Absent), Some(attended)]).absences,
                0
            );
        }
    }

    #[test]
    fn completion_is_exact_at_the_threshold() {
        assert!(completed(9, 12, 0.75));
        assert!(!completed(8, 12, 0.75));
        assert!(completed(3, 4, 0.75));
        assert!(!completed(0, 0, 0.75));
        assert_eq!(attendance_rate(0, 0), None);
    }
}
