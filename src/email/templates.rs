//! Handlebars templates, embedded in the binary and overridable file by file from a
//! folder laid out like `templates/`. Two registries: one escapes HTML (HTML mail and
//! pages), one does not (subjects and text parts, where `Tom & Jerry` must stay as is).

use anyhow::Context;
use chrono::{Duration, Utc};
use handlebars::Handlebars;
use serde_json::{json, Value};
use std::path::Path;

/// Every kind of email of DESIGN.md.
pub const KINDS: [&str; 11] = [
    "welcome",
    "reminder",
    "session_changed",
    "session_cancelled",
    "peer_invitation",
    "facilitator_roster",
    "attendance_missing",
    "follow_up",
    "facilitator_assignment",
    "facilitator_unassigned",
    "follow_up_escalated",
];

/// Kinds whose recipient is a patient: discreet, consent-gated, with an unsubscribe link.
pub const PATIENT_KINDS: [&str; 5] = [
    "welcome",
    "reminder",
    "session_changed",
    "session_cancelled",
    "peer_invitation",
];

pub fn is_patient_kind(kind: &str) -> bool {
    PATIENT_KINDS.contains(&kind)
}

macro_rules! embedded {
    ($($path:literal),* $(,)?) => {
        &[$(($path, include_str!(concat!("../../templates/", $path)))),*]
    };
}

/// (path under templates/, contents) of every template file.
const FILES: &[(&str, &str)] = embedded!(
    "email/welcome/subject.hbs",
    "email/welcome/body.txt.hbs",
    "email/welcome/body.html.hbs",
    "email/reminder/subject.hbs",
    "email/reminder/body.txt.hbs",
    "email/reminder/body.html.hbs",
    "email/session_changed/subject.hbs",
    "email/session_changed/body.txt.hbs",
    "email/session_changed/body.html.hbs",
    "email/session_cancelled/subject.hbs",
    "email/session_cancelled/body.txt.hbs",
    "email/session_cancelled/body.html.hbs",
    "email/peer_invitation/subject.hbs",
    "email/peer_invitation/body.txt.hbs",
    "email/peer_invitation/body.html.hbs",
    "email/facilitator_roster/subject.hbs",
    "email/facilitator_roster/body.txt.hbs",
    "email/facilitator_roster/body.html.hbs",
    "email/attendance_missing/subject.hbs",
    "email/attendance_missing/body.txt.hbs",
    "email/attendance_missing/body.html.hbs",
    "email/follow_up/subject.hbs",
    "email/follow_up/body.txt.hbs",
    "email/follow_up/body.html.hbs",
    "email/facilitator_assignment/subject.hbs",
    "email/facilitator_assignment/body.txt.hbs",
    "email/facilitator_assignment/body.html.hbs",
    "email/facilitator_unassigned/subject.hbs",
    "email/facilitator_unassigned/body.txt.hbs",
    "email/facilitator_unassigned/body.html.hbs",
    "email/follow_up_escalated/subject.hbs",
    "email/follow_up_escalated/body.txt.hbs",
    "email/follow_up_escalated/body.html.hbs",
    "email/partials/layout.html.hbs",
    "email/partials/answer.txt.hbs",
    "email/partials/answer.html.hbs",
    "email/partials/footer.txt.hbs",
    "email/partials/footer.html.hbs",
    "email/partials/place.txt.hbs",
    "email/partials/place.html.hbs",
    "email/partials/staff_footer.txt.hbs",
    "email/partials/staff_footer.html.hbs",
    "pages/base.html.hbs",
    "pages/session.html.hbs",
    "pages/unsubscribe.html.hbs",
    "pages/message.html.hbs",
    "pages/peer_invitation.html.hbs",
);

/// Partial name for a file under templates/email/partials or pages/base.
fn partial_name(path: &str) -> Option<String> {
    if path == "pages/base.html.hbs" {
        return Some("base".into());
    }
    let file = path.strip_prefix("email/partials/")?;
    let stem = file.strip_suffix(".hbs")?;
    Some(match stem.split_once('.') {
        Some((name, "txt")) => format!("{name}_text"),
        Some((name, ext)) => format!("{name}_{ext}"),
        None => stem.to_string(),
    })
}

/// Template name: the path without `.hbs` (`email/welcome/body.txt`).
fn template_name(path: &str) -> &str {
    path.strip_suffix(".hbs").unwrap_or(path)
}

/// A rendered email: subject, text part and HTML part.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub text: String,
    pub html: String,
}

pub struct Templates {
    html: Handlebars<'static>,
    text: Handlebars<'static>,
}

impl Templates {
    /// The embedded templates, with any file present under `override_dir` taking over.
    pub fn load(override_dir: Option<&Path>) -> anyhow::Result<Templates> {
        let mut html = Handlebars::new();
        html.set_strict_mode(true);
        let mut text = Handlebars::new();
        text.set_strict_mode(true);
        text.register_escape_fn(handlebars::no_escape);
        for (path, embedded) in FILES {
            let source = match override_dir.map(|dir| dir.join(path)) {
                Some(file) if file.is_file() => std::fs::read_to_string(&file)
                    .with_context(|| format!("reading template {}", file.display()))?,
                _ => (*embedded).to_string(),
            };
            let is_html = path.ends_with(".html.hbs");
            let registry = if is_html { &mut html } else { &mut text };
            match partial_name(path) {
                Some(name) => registry
                    .register_partial(&name, source)
                    .with_context(|| format!("template {path}"))?,
                None => registry
                    .register_template_string(template_name(path), source)
                    .with_context(|| format!("template {path}"))?,
            }
        }
        Ok(Templates { html, text })
    }

    /// Renders the subject, text and HTML of `kind` with `context`.
    pub fn render(&self, kind: &str, context: &Value) -> anyhow::Result<Rendered> {
        anyhow::ensure!(KINDS.contains(&kind), "unknown email kind {kind:?}");
        let subject = self
            .text
            .render(&format!("email/{kind}/subject"), context)
            .with_context(|| format!("rendering the {kind} subject"))?;
        let text = self
            .text
            .render(&format!("email/{kind}/body.txt"), context)
            .with_context(|| format!("rendering the {kind} text"))?;
        // A subject is one line, whatever a template or a value did.
        let subject = subject.split_whitespace().collect::<Vec<_>>().join(" ");
        // The HTML part is a whole document whose <title> is the subject.
        let mut html_context = context.clone();
        if let Some(fields) = html_context.as_object_mut() {
            fields.insert("subject".into(), Value::String(subject.clone()));
        }
        let html = self
            .html
            .render(&format!("email/{kind}/body.html"), &html_context)
            .with_context(|| format!("rendering the {kind} HTML"))?;
        Ok(Rendered {
            subject,
            text,
            html,
        })
    }

    /// Renders a page under templates/pages (`session`, `unsubscribe`, `message`).
    pub fn page(&self, name: &str, context: &Value) -> anyhow::Result<String> {
        self.html
            .render(&format!("pages/{name}.html"), context)
            .with_context(|| format!("rendering page {name}"))
    }
}

/// Sample data for the template preview: every value a template may use, none real.
pub fn sample_context(kind: &str, public_url: &str) -> Value {
    let tz = chrono_tz::America::Vancouver;
    let at = Utc::now() + Duration::days(2);
    let when = crate::email::format_when(at, tz);
    let link = format!("{public_url}/p/sample-token");
    let mut context = json!({
        "name": "Alex Sample",
        "unsubscribe_url": format!("{link}/unsubscribe"),
        "rsvp_url": link,
        "invitation_url": format!("{public_url}/p/sample-invitation"),
        "zone": tz.name(),
        "when": when,
        "next_when": crate::email::format_local(at, tz),
        "when_short": crate::email::format_short(at, tz),
        "old_when": crate::email::format_when(at - Duration::days(1), tz),
        "venue": "12 Example Street, Room 3",
        "join_url": "https://meet.example.org/sample",
        "sessions": [{"when": crate::email::format_local(at, tz)}, {"when": crate::email::format_local(at + Duration::weeks(1), tz)}],
        "group": "Group 1",
        "members": [
            {"name": "Sample Member One", "declined": false, "confirmed": true},
            {"name": "Sample Member Two", "declined": true, "confirmed": false}
        ],
        "declined_count": 1,
        "member_count": 2,
        "patient_name": "Sample Member Two",
        "consecutive_absences": 2,
        "follow_up_id": 1,
        "peer_circle": false,
        "role": "lead facilitator",
        "previous_role": null,
        "slot": format!("Weekly on {}s at {} ({})", at.with_timezone(&tz).format("%A"), at.with_timezone(&tz).format("%H:%M %Z"), tz.name()),
        "first_when": when,
        "first_short": crate::email::format_short(at, tz),
        "last_when": crate::email::format_when(at + Duration::weeks(11), tz),
        "session_count": 12,
        "cohort_url": format!("{public_url}/staff/cohorts/1"),
        "at_risk": false,
        "opened_when": crate::email::format_when(at - Duration::days(3), tz),
        "follow_ups_url": format!("{public_url}/staff/follow-ups"),
        "escalate_after_hours": 72,
    });
    if crate::email::is_patient_kind(kind) {
        // Kinds sent to patients and staff alike (session notices) preview as the
        // patient's version: the staff page link is what selects the staff one.
        if let Some(fields) = context.as_object_mut() {
            fields.remove("cohort_url");
        }
    } else {
        context["unsubscribe_url"] = json!(null);
    }
    context
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_parts_are_not_html_escaped_and_html_parts_are() {
        let templates = Templates::load(None).expect("templates load");
        let rendered = templates
            .render(
                "peer_invitation",
                &json!({"name": "Tom & Jerry", "unsubscribe_url": "https://x/u?a=1&b=2", "invitation_url": "https://x/p/i"}),
            )
            .expect("renders");
        assert!(
            rendered.text.contains("Hello Tom & Jerry,"),
            "{}",
            rendered.text
        );
        assert!(rendered.text.contains("https://x/u?a=1&b=2"));
        assert!(
            rendered.html.contains("Tom &amp; Jerry"),
            "{}",
            rendered.html
        );
    }

    #[test]
    fn strict_mode_refuses_a_missing_value() {
        let templates = Templates::load(None).expect("templates load");
        assert!(templates.render("peer_invitation", &json!({})).is_err());
    }

    #[test]
    fn a_file_in_the_override_folder_replaces_the_embedded_one() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("email/peer_invitation");
        std::fs::create_dir_all(&path).expect("mkdir");
        std::fs::write(path.join("subject.hbs"), "Custom for {{name}}").expect("write");
        let templates = Templates::load(Some(dir.path())).expect("templates load");
        let rendered = templates
            .render(
                "peer_invitation",
                &json!({"name": "Ana", "unsubscribe_url": "u", "invitation_url": "i"}),
            )
            .expect("renders");
        assert_eq!(rendered.subject, "Custom for Ana");
    }
}
