//! Attendance consequences: absence streaks open follow-ups; overdue ones escalate.

use super::ProgramContext;
use crate::db::models::attendance as records;
use crate::db::models::cohort as cohorts;
use crate::db::DbConnection;
use crate::domain::attendance::{current_streak, AttendanceStatus, Streak};
use crate::error::AppResult;
use chrono::{Duration, NaiveDateTime};
use std::collections::HashMap;

/// A follow-up not acknowledged within this long goes to the program's leads.
pub const ESCALATE_AFTER: Duration = Duration::hours(72);

pub const KIND_OUTREACH: &str = "outreach";
pub const KIND_AT_RISK: &str = "at_risk";

/// Each member's marks over the cohort's held sessions, in time order.
pub struct CohortMarks {
    pub held: Vec<cohorts::SessionRow>,
    pub marks: HashMap<(i64, i64), AttendanceStatus>,
}

impl CohortMarks {
    pub fn load(conn: &mut DbConnection, cohort_id: i64) -> AppResult<CohortMarks> {
        let mut held: Vec<cohorts::SessionRow> = cohorts::sessions_of(conn, &[cohort_id])?
            .into_iter()
            .filter(|s| s.status == "held")
            .collect();
        held.sort_by_key(|s| (s.starts_at, s.seq));
        let ids: Vec<i64> = held.iter().map(|s| s.id).collect();
        let marks = records::of_sessions(conn, &ids)?
            .into_iter()
            .filter_map(|row| {
                let status = row.status.parse().ok()?;
                Some(((row.session_id, row.patient_id), status))
            })
            .collect();
        Ok(CohortMarks { held, marks })
    }

    pub fn streak(&self, patient_id: i64) -> Streak {
        current_streak(
            self.held
                .iter()
                .map(|s| (s.id, self.marks.get(&(s.id, patient_id)).copied())),
        )
    }
}

/// Opens the follow-ups the members' current streaks call for. Outreach waits for a
/// facilitator; at-risk goes to the leads at once. Returns the ids opened now.
pub fn open_follow_ups(
    conn: &mut DbConnection,
    program: &ProgramContext,
    cohort: &cohorts::CohortRow,
    patient_ids: &[i64],
    now: NaiveDateTime,
) -> AppResult<Vec<i64>> {
    let rules = &program.rules.attendance;
    // Peer circles are voluntary: no outreach for missing one, unless the program asks.
    if cohort.kind == cohorts::KIND_PEER_SUPPORT && !program.rules.peer_support.follow_ups {
        return Ok(vec![]);
    }
    let marks = CohortMarks::load(conn, cohort.id)?;
    let team: Vec<i64> = cohorts::teams_of(conn, &[cohort.id])?
        .into_iter()
        .map(|(_, facilitator_id)| facilitator_id)
        .collect();
    let mut opened = Vec::new();
    for patient_id in patient_ids {
        let streak = marks.streak(*patient_id);
        let Some(start) = streak.started_at_session else {
            continue;
        };
        let absences = streak.absences as i32;
        for (kind, threshold, escalated) in [
            (KIND_OUTREACH, rules.outreach_after, None),
            (KIND_AT_RISK, rules.at_risk_after, Some(now)),
        ] {
            if streak.absences >= threshold {
                let new = records::NewFollowUp {
                    cohort_id: cohort.id,
                    patient_id: *patient_id,
                    kind,
                    status: "open",
                    streak_start_session_id: start,
                    consecutive_absences: absences,
                    opened_at: now,
                    escalated_at: escalated,
                };
                if let Some(id) = records::open_once(conn, &new)? {
                    crate::jobs::enqueue_follow_up(
                        conn,
                        id,
                        cohort.id,
                        *patient_id,
                        streak.absences,
                        &team,
                        now,
                    )?;
                    if escalated.is_some() {
                        crate::jobs::enqueue_escalation(conn, id, cohort.id, now)?;
                    }
                    opened.push(id);
                }
            }
        }
    }
    Ok(opened)
}

/// Escalates follow-ups left unacknowledged for 72 hours and mails the program's leads;
/// run by the worker. Returns the ids escalated.
pub fn escalate_overdue(conn: &mut DbConnection, now: NaiveDateTime) -> AppResult<Vec<i64>> {
    let mut escalated = Vec::new();
    for follow_up in records::overdue(conn, now - ESCALATE_AFTER)? {
        if records::mark_escalated(conn, follow_up.id, now)? > 0 {
            crate::jobs::enqueue_escalation(conn, follow_up.id, follow_up.cohort_id, now)?;
            escalated.push(follow_up.id);
        }
    }
    Ok(escalated)
}
