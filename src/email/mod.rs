//! Email: templates, calendar files, signed links, message assembly and transports.
//! Nothing here touches the database; the worker gathers the data and calls in.

pub mod ics;
pub mod links;
pub mod templates;
pub mod transport;

use crate::settings::Settings;
use anyhow::Context;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use lettre::message::header::{ContentType, Header, HeaderName, HeaderValue};
use lettre::message::{Attachment, Mailbox, MultiPart};
use lettre::Message;
use links::LinkClaims;

pub use templates::{is_patient_kind, Rendered, Templates, KINDS};
pub use transport::Transport;

/// Words a patient's email must never contain (DESIGN.md: discreet). The program's own
/// name is checked as well, at send time.
pub const FORBIDDEN_WORDS: [&str; 5] = ["psilocybin", "ketamine", "mdma", "psychedelic", "dosing"];

/// `X-Cohorts-Kind: <kind>` on every message.
#[derive(Debug, Clone)]
pub struct CohortsKind(pub String);

impl Header for CohortsKind {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("X-Cohorts-Kind")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(CohortsKind(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// `List-Unsubscribe: <https://…>` (RFC 2369).
#[derive(Debug, Clone)]
pub struct ListUnsubscribe(pub String);

impl Header for ListUnsubscribe {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribe(s.trim_matches(['<', '>']).to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), format!("<{}>", self.0))
    }
}

/// `List-Unsubscribe-Post: List-Unsubscribe=One-Click` (RFC 8058).
#[derive(Debug, Clone)]
pub struct ListUnsubscribePost;

impl Header for ListUnsubscribePost {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Unsubscribe-Post")
    }
    fn parse(_: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListUnsubscribePost)
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), "List-Unsubscribe=One-Click".into())
    }
}

/// `List-Id: Group meetings <group-meetings.example.org>` (RFC 2919), beside
/// List-Unsubscribe: a list header without it reads as a spammer's to filters.
#[derive(Debug, Clone)]
pub struct ListId(pub String);

impl ListId {
    /// The patients' list of the sender's domain; its description reveals no treatment.
    pub fn for_sender(from: &Mailbox) -> ListId {
        ListId(format!(
            "Group meetings <group-meetings.{}>",
            from.email.domain()
        ))
    }
}

impl Header for ListId {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("List-Id")
    }
    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(ListId(s.to_string()))
    }
    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// A calendar file to attach.
#[derive(Debug, Clone)]
pub struct CalendarFile {
    pub method: ics::Method,
    pub content: String,
}

/// Everything one message needs, already rendered.
#[derive(Debug, Clone)]
pub struct Outgoing {
    pub kind: String,
    pub to_name: String,
    pub to_email: String,
    pub message_id: String,
    pub rendered: Rendered,
    pub calendar: Option<CalendarFile>,
    pub unsubscribe_url: Option<String>,
}

/// Assembles the MIME message: multipart/alternative text + HTML, inside
/// multipart/mixed with the .ics when there is one.
pub fn build_message(from: &Mailbox, mail: &Outgoing) -> anyhow::Result<Message> {
    // lettre panics on a line break in a display name, and would fold one in a subject
    // into a header of its own: refuse both, naming the part but not its text.
    let control = |text: &str| text.chars().any(|c| c.is_ascii_control());
    if control(&mail.to_name) {
        anyhow::bail!("the recipient's name contains a control character");
    }
    if control(&mail.rendered.subject) {
        anyhow::bail!("the subject contains a control character");
    }
    let to = Mailbox::new(
        Some(mail.to_name.clone()),
        mail.to_email
            .parse()
            .context("the recipient's address is not valid")?,
    );
    let mut builder = Message::builder()
        .from(from.clone())
        .to(to)
        .subject(mail.rendered.subject.clone())
        .message_id(Some(mail.message_id.clone()))
        .date_now()
        .header(CohortsKind(mail.kind.clone()));
    if let Some(url) = &mail.unsubscribe_url {
        builder = builder
            .header(ListId::for_sender(from))
            .header(ListUnsubscribe(url.clone()))
            .header(ListUnsubscribePost);
    }
    let alternative =
        MultiPart::alternative_plain_html(mail.rendered.text.clone(), mail.rendered.html.clone());
    let message = match &mail.calendar {
        None => builder.multipart(alternative),
        Some(calendar) => {
            let content_type = ContentType::parse(&format!(
                "text/calendar; charset=utf-8; method={}",
                calendar.method.as_str()
            ))
            .context("calendar content type")?;
            let attachment = Attachment::new("group-meetings.ics".into())
                .body(calendar.content.clone(), content_type);
            builder.multipart(
                MultiPart::mixed()
                    .multipart(alternative)
                    .singlepart(attachment),
            )
        }
    }
    .context("assembling the message")?;
    Ok(message)
}

/// `Tuesday 1 December 2026, 18:00 PST (America/Vancouver)`: the recipient's zone, named.
pub fn format_when(at: DateTime<Utc>, tz: Tz) -> String {
    let local = at.with_timezone(&tz);
    format!("{} ({})", local.format("%A %-d %B %Y, %H:%M %Z"), tz.name())
}

/// `Tuesday 1 December 2026, 18:00 PST`: for a list under a line that names the zone
/// once (the abbreviation is each date's own, PST or PDT).
pub fn format_local(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%A %-d %B %Y, %H:%M %Z")
        .to_string()
}

/// `Tue 1 Dec, 18:00 PST` for subjects.
pub fn format_short(at: DateTime<Utc>, tz: Tz) -> String {
    at.with_timezone(&tz)
        .format("%a %-d %b, %H:%M %Z")
        .to_string()
}

/// Whether a patient's text reveals treatment: a forbidden word or the program's name.
pub fn reveals_treatment(text: &str, program_name: &str) -> Option<String> {
    let lower = text.to_lowercase();
    for word in FORBIDDEN_WORDS {
        if lower.contains(word) {
            return Some(word.to_string());
        }
    }
    let name = program_name.trim().to_lowercase();
    (!name.is_empty() && lower.contains(&name)).then_some("the program's name".into())
}

/// What composing and sending mail needs: templates, the transport, the sender, and
/// what signs and roots the links.
pub struct Mailer {
    pub templates: Templates,
    pub transport: Transport,
    pub from: Mailbox,
    pub public_url: String,
    pub secret_key: Vec<u8>,
}

impl Mailer {
    pub fn from_settings(settings: &Settings, secret_key: Vec<u8>) -> anyhow::Result<Mailer> {
        let transport = Transport::from_settings(settings.smtp_url.as_deref(), &settings.data_dir)?;
        Mailer::with_transport(settings, secret_key, transport)
    }

    pub fn with_transport(
        settings: &Settings,
        secret_key: Vec<u8>,
        transport: Transport,
    ) -> anyhow::Result<Mailer> {
        Ok(Mailer {
            templates: Templates::load(settings.templates_dir.as_deref())?,
            transport,
            from: settings.mail_from.parse().context(
                "COHORTS_MAIL_FROM is not a mailbox like `Care Team <care@example.org>`",
            )?,
            public_url: settings.public_url.trim_end_matches('/').to_string(),
            secret_key,
        })
    }

    /// `<public url>/p/<signed token>`.
    pub fn link(&self, claims: &LinkClaims) -> String {
        format!(
            "{}/p/{}",
            self.public_url,
            links::sign(&self.secret_key, claims)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_name_the_zone() {
        let at = DateTime::parse_from_rfc3339("2026-12-02T02:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        assert_eq!(
            format_when(at, chrono_tz::America::Vancouver),
            "Tuesday 1 December 2026, 18:00 PST (America/Vancouver)"
        );
    }

    #[test]
    fn a_message_has_the_kind_header_and_one_click_unsubscribe() {
        let from: Mailbox = "Care Team <care@localhost>".parse().expect("from");
        let message = build_message(
            &from,
            &Outgoing {
                kind: "reminder".into(),
                to_name: "Ana".into(),
                to_email: "ana@example.org".into(),
                message_id: "<abc@cohorts>".into(),
                rendered: Rendered {
                    subject: "Hi".into(),
                    text: "text".into(),
                    html: "<p>html</p>".into(),
                },
                calendar: None,
                unsubscribe_url: Some("http://127.0.0.1/p/t/unsubscribe".into()),
            },
        )
        .expect("builds");
        let raw = String::from_utf8(message.formatted()).expect("utf8");
        assert!(raw.contains("X-Cohorts-Kind: reminder\r\n"), "{raw}");
        assert!(raw.contains("List-Unsubscribe: <http://127.0.0.1/p/t/unsubscribe>\r\n"));
        assert!(raw.contains("List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"));
        assert!(raw.contains("List-Id: Group meetings <group-meetings.localhost>\r\n"));
        assert!(raw.contains("Message-ID: <abc@cohorts>\r\n"));
        assert!(raw.contains("multipart/alternative"));
    }

    #[test]
    fn treatment_words_are_caught() {
        assert!(reveals_treatment("Your Ketamine group", "Evening").is_some());
        assert!(reveals_treatment("Evening group", "evening group").is_some());
        assert!(reveals_treatment("Your group meets", "Evening program").is_none());
    }
}
