//! Calendar files per RFC 5545: one VEVENT per session with a stable UID
//! (`session-<id>@cohorts`), SEQUENCE from the session's `ics_sequence`, times with the
//! TZID of the venue's zone (and a VTIMEZONE that defines it), and no ATTENDEE but the
//! recipient. Lines end in CRLF and are folded at 75 octets.

use chrono::{DateTime, Datelike, Duration, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;
use std::fmt::Write;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// Add or update events.
    Request,
    /// Remove events.
    Cancel,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Request => "REQUEST",
            Method::Cancel => "CANCEL",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Event {
    pub session_id: i64,
    pub sequence: i32,
    pub starts_at: DateTime<Utc>,
    pub duration_minutes: i32,
    pub summary: String,
    pub location: Option<String>,
    pub url: Option<String>,
    pub description: String,
    pub cancelled: bool,
}

/// The recipient, the only attendee a file ever names.
#[derive(Debug, Clone)]
pub struct Attendee<'a> {
    pub name: &'a str,
    pub email: &'a str,
}

pub fn uid(session_id: i64) -> String {
    format!("session-{session_id}@cohorts")
}

/// A whole VCALENDAR.
pub fn calendar(
    method: Method,
    tz: Tz,
    organizer_email: &str,
    attendee: &Attendee<'_>,
    events: &[Event],
    stamp: DateTime<Utc>,
) -> String {
    let mut lines: Vec<String> = vec![
        "BEGIN:VCALENDAR".into(),
        "VERSION:2.0".into(),
        "PRODID:-//cohorts//group sessions//EN".into(),
        "CALSCALE:GREGORIAN".into(),
        format!("METHOD:{}", method.as_str()),
    ];
    if let (Some(first), Some(last)) = (
        events.iter().map(|e| e.starts_at).min(),
        events.iter().map(|e| e.starts_at).max(),
    ) {
        lines.extend(vtimezone(tz, first, last));
    }
    for event in events {
        let local_start = event.starts_at.with_timezone(&tz).naive_local();
        let local_end = (event.starts_at + Duration::minutes(i64::from(event.duration_minutes)))
            .with_timezone(&tz)
            .naive_local();
        lines.push("BEGIN:VEVENT".into());
        lines.push(format!("UID:{}", uid(event.session_id)));
        lines.push(format!("SEQUENCE:{}", event.sequence));
        lines.push(format!("DTSTAMP:{}", stamp.format("%Y%m%dT%H%M%SZ")));
        lines.push(format!("DTSTART;TZID={}:{}", tz.name(), local(local_start)));
        lines.push(format!("DTEND;TZID={}:{}", tz.name(), local(local_end)));
        lines.push(format!("SUMMARY:{}", escape(&event.summary)));
        if let Some(location) = event.location.as_deref().or(event.url.as_deref()) {
            lines.push(format!("LOCATION:{}", escape(location)));
        }
        if let Some(url) = &event.url {
            lines.push(format!("URL:{}", url.replace(['\r', '\n'], "")));
        }
        lines.push(format!("DESCRIPTION:{}", escape(&event.description)));
        lines.push(format!(
            "ORGANIZER:mailto:{}",
            organizer_email.replace(['\r', '\n'], "")
        ));
        lines.push(format!(
            "ATTENDEE;CN={};ROLE=REQ-PARTICIPANT;RSVP=FALSE:mailto:{}",
            quote_param(attendee.name),
            attendee.email.replace(['\r', '\n'], "")
        ));
        let status = if event.cancelled || method == Method::Cancel {
            "CANCELLED"
        } else {
            "CONFIRMED"
        };
        lines.push(format!("STATUS:{status}"));
        lines.push("END:VEVENT".into());
    }
    lines.push("END:VCALENDAR".into());
    let mut out = String::new();
    for line in lines {
        out.push_str(&fold(&line));
    }
    out
}

fn local(at: NaiveDateTime) -> String {
    at.format("%Y%m%dT%H%M%S").to_string()
}

/// TEXT value escaping (RFC 5545 3.3.11).
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            ';' => out.push_str("\\;"),
            ',' => out.push_str("\\,"),
            '\n' => out.push_str("\\n"),
            '\r' => {}
            other => out.push(other),
        }
    }
    out
}

/// A parameter value: quoted, without the characters a parameter cannot hold.
fn quote_param(text: &str) -> String {
    let clean: String = text
        .chars()
        .filter(|c| !matches!(c, '"' | '\r' | '\n') && !c.is_control())
        .collect();
    format!("\"{clean}\"")
}

/// Folds a content line at 75 octets (never inside a UTF-8 character) and ends it in CRLF.
pub fn fold(line: &str) -> String {
    let mut out = String::with_capacity(line.len() + 8);
    let mut width = 0;
    for c in line.chars() {
        let len = c.len_utf8();
        if width + len > 75 {
            out.push_str("\r\n ");
            width = 1;
        }
        out.push(c);
        width += len;
    }
    out.push_str("\r\n");
    out
}

/// A VTIMEZONE for `tz` covering the years from `first` to `last`: one observance per
/// offset change found in that span (no RRULE needed), so any client can place the times.
fn vtimezone(tz: Tz, first: DateTime<Utc>, last: DateTime<Utc>) -> Vec<String> {
    let start = Utc
        .with_ymd_and_hms(first.year() - 1, 12, 1, 0, 0, 0)
        .single()
        .unwrap_or(first);
    let end = Utc
        .with_ymd_and_hms(last.year() + 1, 1, 31, 0, 0, 0)
        .single()
        .unwrap_or(last);
    let offset_at = |at: DateTime<Utc>| tz.offset_from_utc_datetime(&at.naive_utc()).fix();
    let mut lines = vec!["BEGIN:VTIMEZONE".into(), format!("TZID:{}", tz.name())];
    let mut current = offset_at(start);
    let mut observances = vec![(start, current, current)];
    let mut day = start;
    while day < end {
        let next = day + Duration::days(1);
        if offset_at(next) != current {
            // Find the hour (then the minute) of the change within the day.
            let mut at = day;
            while offset_at(at + Duration::hours(1)) == current {
                at += Duration::hours(1);
            }
            while offset_at(at) == current {
                at += Duration::minutes(1);
            }
            let to = offset_at(at);
            observances.push((at, current, to));
            current = to;
        }
        day = next;
    }
    for (at, from, to) in observances {
        let name = tz
            .from_utc_datetime(&at.naive_utc())
            .format("%Z")
            .to_string();
        let daylight = tz_is_daylight(tz, at, to.local_minus_utc());
        let kind = if daylight { "DAYLIGHT" } else { "STANDARD" };
        lines.push(format!("BEGIN:{kind}"));
        lines.push(format!(
            "DTSTART:{}",
            local(at.naive_utc() + Duration::seconds(i64::from(from.local_minus_utc())))
        ));
        lines.push(format!(
            "TZOFFSETFROM:{}",
            offset_text(from.local_minus_utc())
        ));
        lines.push(format!("TZOFFSETTO:{}", offset_text(to.local_minus_utc())));
        lines.push(format!("TZNAME:{}", escape(&name)));
        lines.push(format!("END:{kind}"));
    }
    lines.push("END:VTIMEZONE".into());
    lines
}

/// Daylight time is the larger of the year's offsets.
fn tz_is_daylight(tz: Tz, at: DateTime<Utc>, offset: i32) -> bool {
    let year = at.year();
    let (Some(jan), Some(jul)) = (
        Utc.with_ymd_and_hms(year, 1, 15, 0, 0, 0).single(),
        Utc.with_ymd_and_hms(year, 7, 15, 0, 0, 0).single(),
    ) else {
        return false;
    };
    let a = tz
        .offset_from_utc_datetime(&jan.naive_utc())
        .fix()
        .local_minus_utc();
    let b = tz
        .offset_from_utc_datetime(&jul.naive_utc())
        .fix()
        .local_minus_utc();
    a != b && offset == a.max(b)
}

fn offset_text(seconds: i32) -> String {
    let sign = if seconds < 0 { '-' } else { '+' };
    let abs = seconds.abs();
    let mut out = String::new();
    let _ = write!(out, "{sign}{:02}{:02}", abs / 3600, (abs % 3600) / 60);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64, at: DateTime<Utc>) -> Event {
        Event {
            session_id: id,
            sequence: 2,
            starts_at: at,
            duration_minutes: 120,
            summary: "Group meeting".into(),
            location: Some("12 Main St, Room 3; back door".into()),
            url: Some(
                "https://meet.example.org/a-very-long-link-that-needs-folding-because-it-is-long"
                    .into(),
            ),
            description: "Your group meets.".into(),
            cancelled: false,
        }
    }

    #[test]
    fn lines_are_crlf_and_folded_at_75_octets() {
        let at = Utc
            .with_ymd_and_hms(2026, 12, 2, 2, 0, 0)
            .single()
            .expect("time");
        let ics = calendar(
            Method::Request,
            chrono_tz::America::Vancouver,
            "care@localhost",
            &Attendee {
                name: "Ana Example",
                email: "ana@example.org",
            },
            &[event(7, at)],
            at,
        );
        for line in ics.split("\r\n") {
            assert!(line.len() <= 75, "{line}");
            assert!(!line.contains('\n'));
        }
        let unfolded = ics.replace("\r\n ", "");
        assert!(unfolded.contains("UID:session-7@cohorts\r\n"));
        assert!(unfolded.contains("SEQUENCE:2\r\n"));
        // 02:00 UTC on 2 Dec is 18:00 on 1 Dec in Vancouver (PST).
        assert!(unfolded.contains("DTSTART;TZID=America/Vancouver:20261201T180000\r\n"));
        assert!(unfolded.contains("LOCATION:12 Main St\\, Room 3\\; back door\r\n"));
        assert!(unfolded.contains("TZOFFSETTO:-0800"));
        assert_eq!(unfolded.matches("ATTENDEE").count(), 1);
    }

    #[test]
    fn cancel_marks_events_cancelled() {
        let at = Utc
            .with_ymd_and_hms(2026, 6, 2, 1, 0, 0)
            .single()
            .expect("time");
        let ics = calendar(
            Method::Cancel,
            chrono_tz::Europe::Berlin,
            "care@localhost",
            &Attendee {
                name: "A",
                email: "a@example.org",
            },
            &[event(1, at)],
            at,
        );
        assert!(ics.contains("METHOD:CANCEL\r\n"));
        assert!(ics.contains("STATUS:CANCELLED\r\n"));
        assert!(ics.contains("BEGIN:DAYLIGHT"));
    }
}
