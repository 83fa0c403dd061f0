//! Plans reminders and facilitator rosters from the schedule, a little ahead of time.
//!
//! A reminder is planned when its time is near (within `lookahead`). One whose time
//! passed before it could be planned (the session was created or moved late, or no
//! worker ran) is skipped, unless it is the latest offset still ahead of the session:
//! a member never gets a burst, and a session 90 minutes away yields exactly one
//! reminder (the 2-hour one, at once).

use crate::db::models::cohort as cohorts;
use crate::db::models::program::{self as programs};
use crate::db::schema::{cohorts as cohort_table, sessions};
use crate::db::DbConnection;
use crate::domain::status::{CohortStatus, MailKind, RecipientType, SessionStatus};
use crate::outbox::{self, Mail};
use chrono::{Duration, NaiveDateTime};
use diesel::prelude::*;
use serde_json::json;
use std::collections::HashMap;

/// Rosters go out this long before a session.
pub const ROSTER_HOURS: i32 = 24;

/// Which of `offsets` (hours before a session starting in `until_start`) to plan now,
/// with their due times relative to now (zero = at once). Pure, so it is tested alone.
pub fn reminders_to_plan(
    offsets: &[u32],
    until_start: Duration,
    lookahead: Duration,
) -> Vec<(u32, Duration)> {
    if until_start <= Duration::zero() {
        return vec![];
    }
    let future_exists = offsets
        .iter()
        .any(|h| until_start - Duration::hours(i64::from(*h)) > Duration::zero());
    let smallest_passed = offsets
        .iter()
        .filter(|h| until_start - Duration::hours(i64::from(**h)) <= Duration::zero())
        .min()
        .copied();
    let mut planned = Vec::new();
    for hours in offsets {
        let due_in = until_start - Duration::hours(i64::from(*hours));
        if due_in > Duration::zero() {
            if due_in <= lookahead {
                planned.push((*hours, due_in));
            }
        } else if !future_exists && smallest_passed == Some(*hours) {
            planned.push((*hours, Duration::zero()));
        }
    }
    planned
}

/// Plans what is due within `lookahead` of `now`; returns how many rows were new.
pub fn plan(
    conn: &mut DbConnection,
    now: NaiveDateTime,
    lookahead: Duration,
) -> QueryResult<usize> {
    let mut offsets_by_program: HashMap<i64, Vec<u32>> = HashMap::new();
    let mut horizon_hours = i64::from(ROSTER_HOURS);
    for program in programs::list(conn, None)? {
        let offsets = program
            .rules()
            .map(|rules| rules.reminders.hours_before)
            .unwrap_or_default();
        horizon_hours =
            horizon_hours.max(offsets.iter().copied().max().map(i64::from).unwrap_or(0));
        offsets_by_program.insert(program.id, offsets);
    }
    let horizon = now + Duration::hours(horizon_hours) + lookahead;
    let upcoming: Vec<(i64, i64, NaiveDateTime, i32, i64)> = sessions::table
        .inner_join(cohort_table::table)
        .filter(sessions::status.eq(SessionStatus::Scheduled))
        .filter(sessions::starts_at.gt(now))
        .filter(sessions::starts_at.le(horizon))
        .filter(cohort_table::status.eq_any([CohortStatus::Forming, CohortStatus::Active]))
        .select((
            sessions::id,
            sessions::cohort_id,
            sessions::starts_at,
            sessions::ics_sequence,
            cohort_table::program_id,
        ))
        .load(conn)?;
    if upcoming.is_empty() {
        return Ok(0);
    }
    let mut cohort_ids: Vec<i64> = upcoming.iter().map(|s| s.1).collect();
    cohort_ids.sort_unstable();
    cohort_ids.dedup();
    let group = |pairs: Vec<(i64, i64)>| {
        let mut by_cohort: HashMap<i64, Vec<i64>> = HashMap::new();
        for (cohort_id, person_id) in pairs {
            by_cohort.entry(cohort_id).or_default().push(person_id);
        }
        by_cohort
    };
    let members = group(cohorts::active_members_of(conn, &cohort_ids)?);
    let teams = group(cohorts::teams_of(conn, &cohort_ids)?);
    let mut mails = Vec::new();
    for (session_id, cohort_id, starts_at, revision, program_id) in upcoming {
        let until_start = starts_at - now;
        let offsets = offsets_by_program
            .get(&program_id)
            .cloned()
            .unwrap_or_default();
        for (hours, due_in) in reminders_to_plan(&offsets, until_start, lookahead) {
            for patient_id in members.get(&cohort_id).map(Vec::as_slice).unwrap_or(&[]) {
                mails.push(Mail {
                    kind: MailKind::Reminder,
                    entity_type: "session",
                    entity_id: session_id,
                    recipient_type: RecipientType::Patient,
                    recipient_id: *patient_id,
                    offset_hours: hours as i32,
                    revision,
                    program_id,
                    payload: json!({}),
                    due_at: now + due_in,
                });
            }
        }
        let roster_in = until_start - Duration::hours(i64::from(ROSTER_HOURS));
        if roster_in <= lookahead {
            for facilitator_id in teams.get(&cohort_id).map(Vec::as_slice).unwrap_or(&[]) {
                mails.push(Mail {
                    kind: MailKind::FacilitatorRoster,
                    entity_type: "session",
                    entity_id: session_id,
                    recipient_type: RecipientType::Facilitator,
                    recipient_id: *facilitator_id,
                    offset_hours: ROSTER_HOURS,
                    revision,
                    program_id,
                    payload: json!({}),
                    due_at: now + roster_in.max(Duration::zero()),
                });
            }
        }
    }
    outbox::enqueue(conn, &mails, now)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_at(until_start_minutes: i64) -> Vec<u32> {
        reminders_to_plan(
            &[48, 2],
            Duration::minutes(until_start_minutes),
            Duration::minutes(5),
        )
        .into_iter()
        .map(|(hours, _)| hours)
        .collect()
    }

    #[test]
    fn a_session_90_minutes_away_gets_one_reminder_at_once() {
        let planned = reminders_to_plan(&[48, 2], Duration::minutes(90), Duration::minutes(5));
        assert_eq!(planned, vec![(2, Duration::zero())]);
    }

    #[test]
    fn a_passed_offset_is_skipped_while_a_later_one_is_ahead() {
        // 30 hours away: the 48-hour reminder's time has passed, the 2-hour one is ahead.
        assert_eq!(plan_at(30 * 60), Vec::<u32>::new());
        assert_eq!(plan_at(2 * 60 + 3), vec![2]);
    }

    #[test]
    fn each_offset_is_planned_just_before_it_is_due() {
        assert_eq!(plan_at(48 * 60 + 4), vec![48]);
        assert_eq!(plan_at(48 * 60 + 6), Vec::<u32>::new());
    }

    #[test]
    fn nothing_for_a_session_that_started() {
        assert!(plan_at(0).is_empty());
        assert!(plan_at(-10).is_empty());
    }
}
