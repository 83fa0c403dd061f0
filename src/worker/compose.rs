//! Turns an outbox row into the message its recipient will read, from the data as it is
//! at send time: a patient who revoked consent, left the cohort, or a session that moved
//! since the row was queued gets nothing (the row is cancelled with the reason).

use crate::db::models::attendance as records;
use crate::db::models::cohort::{self as cohorts, SessionRow};
use crate::db::models::facilitator as facilitators;
use crate::db::models::patient as patients;
use crate::db::models::program::{self as programs, ProgramRow};
use crate::db::models::user::{self as users, Role};
use crate::db::schema::rsvps;
use crate::db::DbConnection;
use crate::domain::staffing::Role as TeamRole;
use crate::domain::status::{
    CohortKind, FollowUpKind, FollowUpStatus, MailKind, MemberStatus, RecipientType, SessionStatus,
};
use crate::email::ics::{self, Attendee, Event, Method};
use crate::email::links::{LinkClaims, Purpose};
use crate::email::Mailer;
use crate::email::{self, CalendarFile, Outgoing};
use crate::outbox::OutboxRow;
use anyhow::Context;
use chrono::{DateTime, Duration, Utc};
use chrono_tz::Tz;
use diesel::prelude::*;
use serde_json::{json, Value};

/// What to do with a claimed row.
#[derive(Debug)]
pub enum Composed {
    Send(Box<Outgoing>),
    /// Nothing to send any more; the reason is kept on the row (no patient data in it).
    Cancel(String),
}

/// Links stay valid this long after the session they are about (or after sending).
const LINK_DAYS: i64 = 90;

pub fn compose(
    conn: &mut DbConnection,
    mailer: &Mailer,
    row: &OutboxRow,
    now: DateTime<Utc>,
) -> anyhow::Result<Composed> {
    let program = programs::find(conn, row.program_id).context("reading the program")?;
    match row.recipient_type {
        RecipientType::Patient => compose_patient(conn, mailer, row, &program, now),
        RecipientType::Facilitator => compose_facilitator(conn, mailer, row, &program, now),
        RecipientType::User => compose_user(conn, mailer, row, &program),
    }
}

fn starts(session: &SessionRow) -> DateTime<Utc> {
    session.starts_at.and_utc()
}

/// The VEVENT of a session; `offset` (from `outbox::calendar_offset`) keeps SEQUENCE
/// rising across the recipient's own changes as well as the session's.
fn event(
    session: &SessionRow,
    venue: &Option<String>,
    join_url: &Option<String>,
    cancelled: bool,
    offset: i32,
) -> Event {
    Event {
        session_id: session.id,
        sequence: session.ics_sequence.saturating_add(offset),
        starts_at: starts(session),
        duration_minutes: session.duration_minutes,
        summary: "Group meeting".into(),
        location: venue.clone(),
        url: join_url.clone(),
        description: match join_url {
            Some(url) => format!("Your group meets. Join online: {url}"),
            None => "Your group meets.".into(),
        },
        cancelled,
    }
}

fn compose_patient(
    conn: &mut DbConnection,
    mailer: &Mailer,
    row: &OutboxRow,
    program: &ProgramRow,
    now: DateTime<Utc>,
) -> anyhow::Result<Composed> {
    let Some(patient) = patients::find(conn, row.recipient_id).optional()? else {
        return Ok(Composed::Cancel("the patient no longer exists".into()));
    };
    if !patient.email_consent {
        return Ok(Composed::Cancel("no email consent".into()));
    }
    let tz = crate::service::zone(patient.timezone.as_deref(), &program.timezone);
    let preferences = mailer.link(&LinkClaims {
        purpose: Purpose::Preferences,
        patient_id: patient.id,
        session_id: None,
        expires_at: (now + Duration::days(365)).timestamp(),
    });
    let unsubscribe_url = format!("{preferences}/unsubscribe");
    let session_link = |session: &SessionRow| {
        mailer.link(&LinkClaims {
            purpose: Purpose::Session,
            patient_id: patient.id,
            session_id: Some(session.id),
            expires_at: (starts(session) + Duration::days(LINK_DAYS)).timestamp(),
        })
    };
    let attendee = Attendee {
        name: &patient.name,
        email: &patient.email,
    };
    let organizer = mailer.from.email.to_string();
    let mut context = json!({
        "name": patient.name,
        "unsubscribe_url": unsubscribe_url,
        "zone": tz.name(),
    });
    let mut calendar = None;
    match row.kind {
        MailKind::Welcome => {
            let cohort = cohorts::find(conn, row.entity_id)?;
            if !cohorts::is_active_member(conn, cohort.id, patient.id)? {
                return Ok(Composed::Cancel("no longer a member".into()));
            }
            let upcoming: Vec<SessionRow> = cohorts::sessions_of(conn, &[cohort.id])?
                .into_iter()
                .filter(|s| s.status == SessionStatus::Scheduled && starts(s) > now)
                .collect();
            let Some(first) = upcoming.first() else {
                return Ok(Composed::Cancel("no session ahead".into()));
            };
            let (venue, join_url) = crate::service::place(program, Some(&cohort));
            // The zone is named once, above the list: each time carries only its
            // own abbreviation (PST in winter, PDT in summer).
            let sessions: Vec<Value> = upcoming
                .iter()
                .map(|s| json!({"when": email::format_local(starts(s), tz)}))
                .collect();
            context["sessions"] = json!(sessions);
            context["next_when"] = json!(email::format_local(starts(first), tz));
            context["zone"] = json!(tz.name());
            context["rsvp_url"] = json!(session_link(first));
            context["venue"] = json!(venue);
            context["join_url"] = json!(join_url);
            let offset = crate::outbox::calendar_offset(conn, row, cohort.id)?;
            let events: Vec<Event> = upcoming
                .iter()
                .map(|s| event(s, &venue, &join_url, false, offset))
                .collect();
            calendar = Some(calendar_file(
                program, &organizer, &attendee, false, &events, now,
            ));
        }
        MailKind::Reminder | MailKind::SessionChanged | MailKind::SessionCancelled => {
            let session = cohorts::find_session(conn, row.entity_id)?;
            let cohort = cohorts::find(conn, session.cohort_id)?;
            if !cohorts::is_active_member(conn, cohort.id, patient.id)? {
                return Ok(Composed::Cancel("no longer a member".into()));
            }
            if session.ics_sequence != row.revision {
                return Ok(Composed::Cancel("the session changed again since".into()));
            }
            if starts(&session) <= now {
                return Ok(Composed::Cancel("the session has started".into()));
            }
            let cancelled = row.kind == MailKind::SessionCancelled;
            if !cancelled && session.status != SessionStatus::Scheduled {
                return Ok(Composed::Cancel(format!(
                    "the session is {}",
                    session.status
                )));
            }
            let (venue, join_url) = crate::service::place(program, Some(&cohort));
            context["when"] = json!(email::format_when(starts(&session), tz));
            context["when_short"] = json!(email::format_short(starts(&session), tz));
            context["rsvp_url"] = json!(session_link(&session));
            context["venue"] = json!(venue);
            context["join_url"] = json!(join_url);
            if row.kind == MailKind::SessionChanged {
                let old = serde_json::from_str::<Value>(&row.payload)
                    .ok()
                    .and_then(|p| p["old_starts_at"].as_str().map(str::to_string))
                    .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                    // The new time below names the zone.
                    .map(|t| email::format_local(t.with_timezone(&Utc), tz))
                    .unwrap_or_else(|| "its earlier time".into());
                context["old_when"] = json!(old);
            }
            if row.kind != MailKind::Reminder {
                let offset = crate::outbox::calendar_offset(conn, row, cohort.id)?;
                let events = [event(&session, &venue, &join_url, cancelled, offset)];
                calendar = Some(calendar_file(
                    program, &organizer, &attendee, cancelled, &events, now,
                ));
            }
        }
        MailKind::PeerInvitation => {
            let payload: Value =
                serde_json::from_str(&row.payload).context("peer invitation payload")?;
            let invitation_id = payload["invitation_id"]
                .as_i64()
                .ok_or_else(|| anyhow::anyhow!("peer invitation without its id"))?;
            context["invitation_url"] = json!(mailer.link(&LinkClaims {
                purpose: Purpose::PeerInvitation,
                patient_id: patient.id,
                session_id: Some(invitation_id),
                expires_at: (now + Duration::days(60)).timestamp(),
            }));
        }
        MailKind::FacilitatorRoster
        | MailKind::AttendanceMissing
        | MailKind::FollowUp
        | MailKind::FacilitatorAssignment
        | MailKind::FacilitatorUnassigned
        | MailKind::FollowUpEscalated => {
            anyhow::bail!("{} is not a patient email", row.kind)
        }
    }
    let rendered = mailer.templates.render(row.kind.as_str(), &context)?;
    let ics_text = calendar.as_ref().map(|c| c.content.as_str()).unwrap_or("");
    for part in [
        &rendered.subject,
        &rendered.text,
        &rendered.html,
        &ics_text.to_string(),
    ] {
        if let Some(what) = email::reveals_treatment(part, &program.name) {
            anyhow::bail!(
                "refusing to send: the {} email would reveal {what}",
                row.kind
            );
        }
    }
    Ok(Composed::Send(Box::new(Outgoing {
        kind: row.kind.as_str().to_string(),
        to_name: patient.name,
        to_email: patient.email,
        message_id: row.message_id.clone(),
        rendered,
        calendar,
        unsubscribe_url: Some(unsubscribe_url),
    })))
}

/// The recipient's .ics: `events` as a request, or withdrawn as a cancellation.
fn calendar_file(
    program: &ProgramRow,
    organizer: &str,
    attendee: &Attendee<'_>,
    cancelled: bool,
    events: &[Event],
    now: DateTime<Utc>,
) -> CalendarFile {
    let method = if cancelled {
        Method::Cancel
    } else {
        Method::Request
    };
    CalendarFile {
        method,
        content: ics::calendar(
            method,
            program_tz(program),
            organizer,
            attendee,
            events,
            now,
        ),
    }
}

fn program_tz(program: &ProgramRow) -> Tz {
    program.timezone.parse().unwrap_or(chrono_tz::UTC)
}

fn compose_facilitator(
    conn: &mut DbConnection,
    mailer: &Mailer,
    row: &OutboxRow,
    program: &ProgramRow,
    now: DateTime<Utc>,
) -> anyhow::Result<Composed> {
    let Some(facilitator) = facilitators::find(conn, row.recipient_id).optional()? else {
        return Ok(Composed::Cancel("the facilitator no longer exists".into()));
    };
    let tz = crate::service::zone(Some(&facilitator.timezone), &program.timezone);
    let attendee = Attendee {
        name: &facilitator.name,
        email: &facilitator.email,
    };
    let mut context = json!({"name": facilitator.name});
    let mut calendar = None;
    if matches!(
        row.kind,
        MailKind::FacilitatorRoster
            | MailKind::AttendanceMissing
            | MailKind::SessionChanged
            | MailKind::SessionCancelled
    ) {
        let session = cohorts::find_session(conn, row.entity_id)?;
        let cohort = cohorts::find(conn, session.cohort_id)?;
        let on_team = cohorts::team(conn, cohort.id)?
            .iter()
            .any(|(team, _)| team.facilitator_id == facilitator.id);
        if !on_team {
            return Ok(Composed::Cancel("no longer on the cohort's team".into()));
        }
        let (venue, join_url) = crate::service::place(program, Some(&cohort));
        context["group"] = json!(format!("Group {}", cohort.id));
        context["when"] = json!(email::format_when(starts(&session), tz));
        context["when_short"] = json!(email::format_short(starts(&session), tz));
        context["venue"] = json!(venue);
        context["join_url"] = json!(join_url);
        context["unsubscribe_url"] = json!(null);
        match row.kind {
            MailKind::FacilitatorRoster => {
                if session.status != SessionStatus::Scheduled
                    || session.ics_sequence != row.revision
                    || starts(&session) <= now
                {
                    return Ok(Composed::Cancel("the session changed since".into()));
                }
                let answers: Vec<(i64, String)> = rsvps::table
                    .filter(rsvps::session_id.eq(session.id))
                    .select((rsvps::patient_id, rsvps::response))
                    .load(conn)?;
                let members: Vec<Value> = cohorts::members_with_names(conn, cohort.id)?
                    .into_iter()
                    .filter(|(m, _)| m.status == MemberStatus::Active)
                    .map(|(m, name)| {
                        let answer = answers.iter().find(|(p, _)| *p == m.patient_id).map(|(_, r)| r.as_str());
                        json!({"name": name, "declined": answer == Some("no"), "confirmed": answer == Some("yes")})
                    })
                    .collect();
                let declined = members
                    .iter()
                    .filter(|m| m["declined"] == json!(true))
                    .count();
                context["member_count"] = json!(members.len());
                context["members"] = json!(members);
                context["declined_count"] = json!(declined);
            }
            MailKind::SessionChanged | MailKind::SessionCancelled => {
                if session.ics_sequence != row.revision {
                    return Ok(Composed::Cancel("the session changed again since".into()));
                }
                let cancelled = row.kind == MailKind::SessionCancelled;
                let old = serde_json::from_str::<Value>(&row.payload)
                    .ok()
                    .and_then(|p| p["old_starts_at"].as_str().map(str::to_string))
                    .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                    .map(|t| email::format_when(t.with_timezone(&Utc), tz))
                    .unwrap_or_else(|| "its earlier time".into());
                context["old_when"] = json!(old);
                // Staff get the group's page instead of a patient's RSVP and unsubscribe links.
                context["cohort_url"] =
                    json!(format!("{}/staff/cohorts/{}", mailer.public_url, cohort.id));
                let offset = crate::outbox::calendar_offset(conn, row, cohort.id)?;
                let events = [event(&session, &venue, &join_url, cancelled, offset)];
                calendar = Some(calendar_file(
                    program,
                    mailer.from.email.as_ref(),
                    &attendee,
                    cancelled,
                    &events,
                    now,
                ));
            }
            _ => {}
        }
    } else if matches!(
        row.kind,
        MailKind::FacilitatorAssignment | MailKind::FacilitatorUnassigned
    ) {
        let cohort = cohorts::find(conn, row.entity_id)?;
        let role = cohorts::team(conn, cohort.id)?
            .into_iter()
            .find(|(team, _)| team.facilitator_id == facilitator.id)
            .map(|(team, _)| team.role);
        let payload: Value = serde_json::from_str(&row.payload).context("team mail payload")?;
        let assigned = row.kind == MailKind::FacilitatorAssignment;
        // Sent only while it is still true: a later change queued its own message.
        match (&role, assigned) {
            (None, true) => return Ok(Composed::Cancel("no longer on the cohort's team".into())),
            (Some(now_role), true) if payload["role"].as_str() != Some(now_role.as_str()) => {
                return Ok(Composed::Cancel("the role changed again since".into()))
            }
            (Some(_), false) => return Ok(Composed::Cancel("back on the cohort's team".into())),
            _ => {}
        }
        let upcoming: Vec<SessionRow> = cohorts::sessions_of(conn, &[cohort.id])?
            .into_iter()
            .filter(|s| s.status == SessionStatus::Scheduled && starts(s) > now)
            .collect();
        let (Some(first), Some(last)) = (upcoming.first(), upcoming.last()) else {
            return Ok(Composed::Cancel("no session ahead".into()));
        };
        let (venue, join_url) = crate::service::place(program, Some(&cohort));
        context["group"] = json!(format!("Group {}", cohort.id));
        context["peer_circle"] = json!(cohort.kind == CohortKind::PeerSupport);
        context["role"] = json!(role.map(role_label));
        context["previous_role"] = json!(payload["previous_role"]
            .as_str()
            .and_then(|text| text.parse().ok())
            .map(role_label));
        context["zone"] = json!(tz.name());
        context["slot"] = json!(slot(&upcoming, tz));
        context["first_when"] = json!(email::format_when(starts(first), tz));
        context["first_short"] = json!(email::format_short(starts(first), tz));
        context["last_when"] = json!(email::format_when(starts(last), tz));
        context["session_count"] = json!(upcoming.len());
        context["sessions"] = json!(upcoming
            .iter()
            .map(|s| json!({"when": email::format_when(starts(s), tz)}))
            .collect::<Vec<_>>());
        // A count only: members' names stay on the staff page, behind a sign-in.
        context["member_count"] = json!(cohorts::active_member_ids(conn, cohort.id)?.len());
        context["cohort_url"] = json!(format!("{}/staff/cohorts/{}", mailer.public_url, cohort.id));
        context["venue"] = json!(venue);
        context["join_url"] = json!(join_url);
        context["unsubscribe_url"] = json!(null);
        // The sessions go into the facilitator's calendar, or come out of it.
        let offset = crate::outbox::calendar_offset(conn, row, cohort.id)?;
        let events: Vec<Event> = upcoming
            .iter()
            .map(|s| event(s, &venue, &join_url, !assigned, offset))
            .collect();
        calendar = Some(calendar_file(
            program,
            mailer.from.email.as_ref(),
            &attendee,
            !assigned,
            &events,
            now,
        ));
    } else if row.kind == MailKind::FollowUp {
        let payload: Value = serde_json::from_str(&row.payload).context("follow-up payload")?;
        let patient_id = payload["patient_id"]
            .as_i64()
            .context("follow-up payload: patient_id")?;
        let cohort_id = payload["cohort_id"]
            .as_i64()
            .context("follow-up payload: cohort_id")?;
        let patient = patients::find(conn, patient_id)?;
        context["group"] = json!(format!("Group {cohort_id}"));
        context["patient_name"] = json!(patient.name);
        context["consecutive_absences"] = payload["consecutive_absences"].clone();
        context["follow_up_id"] = json!(row.entity_id);
    } else {
        anyhow::bail!("{} is not a facilitator email", row.kind);
    }
    let rendered = mailer.templates.render(row.kind.as_str(), &context)?;
    Ok(Composed::Send(Box::new(Outgoing {
        kind: row.kind.as_str().to_string(),
        to_name: facilitator.name,
        to_email: facilitator.email,
        message_id: row.message_id.clone(),
        rendered,
        calendar,
        unsubscribe_url: None,
    })))
}

/// Mail to a staff user: today, a program lead told of an escalated follow-up. It names
/// the group and the numbers, never the member: details are on the staff page.
fn compose_user(
    conn: &mut DbConnection,
    mailer: &Mailer,
    row: &OutboxRow,
    program: &ProgramRow,
) -> anyhow::Result<Composed> {
    let Some(user) = users::find(conn, row.recipient_id).optional()? else {
        return Ok(Composed::Cancel("the user no longer exists".into()));
    };
    let leads_program = user.role() == Role::ProgramLead
        && users::program_ids(conn, user.id)?.contains(&program.id);
    if !leads_program {
        return Ok(Composed::Cancel("no longer a lead of the program".into()));
    }
    if row.kind != MailKind::FollowUpEscalated {
        anyhow::bail!("{} is not a staff user email", row.kind);
    }
    let follow_up = records::find(conn, row.entity_id)?;
    let at_risk = follow_up.kind == FollowUpKind::AtRisk;
    // An overdue outreach acknowledged since is in hand; an at-risk flag stands.
    if !at_risk && follow_up.status != FollowUpStatus::Open {
        return Ok(Composed::Cancel(
            "the follow-up was acknowledged since".into(),
        ));
    }
    // Leads have no zone of their own: the program's, named.
    let tz = program_tz(program);
    let opened = follow_up.opened_at.and_utc();
    let context = json!({
        "name": user.name,
        "group": format!("Group {}", follow_up.cohort_id),
        "at_risk": at_risk,
        "consecutive_absences": follow_up.consecutive_absences,
        "opened_when": email::format_when(opened, tz),
        "escalate_after_hours": crate::service::attendance::ESCALATE_AFTER.num_hours(),
        "follow_up_id": follow_up.id,
        "follow_ups_url": format!("{}/staff/follow-ups", mailer.public_url),
        "cohort_url": format!("{}/staff/cohorts/{}", mailer.public_url, follow_up.cohort_id),
        "unsubscribe_url": null,
    });
    let rendered = mailer.templates.render(row.kind.as_str(), &context)?;
    Ok(Composed::Send(Box::new(Outgoing {
        kind: row.kind.as_str().to_string(),
        to_name: user.name,
        to_email: user.email,
        message_id: row.message_id.clone(),
        rendered,
        calendar: None,
        unsubscribe_url: None,
    })))
}

/// `lead` → "lead facilitator", as a person reads it.
fn role_label(role: TeamRole) -> &'static str {
    match role {
        TeamRole::Lead => "lead facilitator",
        TeamRole::CoFacilitator => "co-facilitator",
    }
}

/// "Weekly on Tuesdays at 18:00 PST (America/Vancouver)": the cadence and the first session's local
/// weekday and time in the recipient's zone.
fn slot(sessions: &[SessionRow], tz: Tz) -> String {
    let Some(first) = sessions.first() else {
        return String::new();
    };
    let weeks = sessions
        .get(1)
        .map(|second| (second.starts_at - first.starts_at).num_days().max(7) / 7)
        .unwrap_or(1);
    let cadence = if weeks <= 1 {
        "Weekly".to_string()
    } else {
        format!("Every {weeks} weeks")
    };
    let local = starts(first).with_timezone(&tz);
    format!(
        "{cadence} on {}s at {} ({})",
        local.format("%A"),
        local.format("%H:%M %Z"),
        tz.name()
    )
}
