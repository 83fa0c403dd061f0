//! Small parsed types shared across areas: parse at the boundary, then trust.

use serde::{Serialize, Serializer};
use std::fmt;

/// An email address, trimmed and lower-cased so that lookups and uniqueness agree.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct EmailAddress(String);

impl EmailAddress {
    pub fn parse(text: &str) -> Result<EmailAddress, String> {
        let normalized = text.trim().to_lowercase();
        if has_control(&normalized) {
            return Err(CONTROL_REFUSED.into());
        }
        if normalized.len() > 254 {
            return Err("must be at most 254 characters".into());
        }
        let valid = normalized.parse::<lettre::Address>().is_ok()
            && normalized
                .rsplit_once('@')
                .is_some_and(|(_, domain)| !domain.starts_with('.') && !domain.ends_with('.'));
        if valid {
            Ok(EmailAddress(normalized))
        } else {
            Err("must be an email address such as name@example.org".into())
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for EmailAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Serialize for EmailAddress {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

const CONTROL_REFUSED: &str = "must not contain control characters (such as a line break)";

/// C0 control characters (NUL, tab, line breaks, …) and DEL: nothing a name needs, and
/// what breaks a mail header, a file name or a PostgreSQL text (NUL).
fn has_control(text: &str) -> bool {
    text.chars().any(|c| c.is_ascii_control())
}

/// Trims a required one-line text field (a name, a place, a reason), bounds its length
/// and refuses control characters: such text may reach a mail header or a file name.
pub fn required_text(text: &str, max_chars: usize) -> Result<String, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        Err("must not be empty".into())
    } else if trimmed.chars().count() > max_chars {
        Err(format!("must be at most {max_chars} characters"))
    } else if has_control(trimmed) {
        Err(CONTROL_REFUSED.into())
    } else {
        Ok(trimmed.to_string())
    }
}

/// An optional free-text field: blank means absent.
pub fn optional_text(text: Option<&str>, max_chars: usize) -> Result<Option<String>, String> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) => required_text(t, max_chars).map(Some),
    }
}

/// An optional note of several lines: line breaks and tabs are kept, every other control
/// character (NUL included) is refused. Notes never reach a header or a file name.
pub fn optional_note(text: Option<&str>, max_chars: usize) -> Result<Option<String>, String> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => Ok(None),
        Some(t) if t.chars().count() > max_chars => {
            Err(format!("must be at most {max_chars} characters"))
        }
        Some(t)
            if t.chars()
                .any(|c| c.is_ascii_control() && !matches!(c, '\n' | '\r' | '\t')) =>
        {
            Err("must not contain control characters other than line breaks and tabs".into())
        }
        Some(t) => Ok(Some(t.to_string())),
    }
}

/// A text cell for a CSV export that a spreadsheet will not run as a formula: text
/// starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading `'`
/// (OWASP's advice on CSV injection). Only for text: numbers are written as numbers.
pub fn spreadsheet_text(text: &str) -> std::borrow::Cow<'_, str> {
    if text.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{text}").into()
    } else {
        text.into()
    }
}

/// An absolute http(s) URL, such as a video meeting link.
pub fn http_url(text: &str) -> Result<String, String> {
    let trimmed = text.trim();
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host_and_path)
            if !host_and_path.is_empty() && !trimmed.contains(char::is_whitespace) =>
        {
            Ok(trimmed.to_string())
        }
        _ => Err("must be an http:// or https:// URL".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn email_is_normalized_and_checked() {
        assert_eq!(
            EmailAddress::parse("  Ana@Example.ORG ").map(|e| e.to_string()),
            Ok("ana@example.org".to_string())
        );
        for bad in [
            "",
            "ana",
            "ana@",
            "@example.org",
            "ana@@example.org",
            "a b@example.org",
        ] {
            assert!(EmailAddress::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn control_characters_are_refused_in_one_line_text_and_addresses() {
        for bad in [
            "Ana\r\nBcc: x@evil.example",
            "Ana\u{0}",
            "A\u{7f}",
            "A\tB",
            "A\u{1b}[0m",
        ] {
            assert!(required_text(bad, 200).is_err(), "{bad:?}");
            assert!(optional_text(Some(bad), 200).is_err(), "{bad:?}");
        }
        assert_eq!(required_text("  Ana Lima ", 200), Ok("Ana Lima".into()));
        assert!(EmailAddress::parse("ana\u{0}@example.org").is_err());
        assert!(EmailAddress::parse("ana@example.org\r\nbcc: x@evil.example").is_err());
        assert_eq!(
            optional_note(Some("first line\nsecond\tline"), 100),
            Ok(Some("first line\nsecond\tline".into()))
        );
        assert!(optional_note(Some("a\u{0}b"), 100).is_err());
    }

    #[test]
    fn spreadsheet_text_cannot_start_a_formula() {
        for risky in ["=1+1", "+1", "-1", "@SUM(A1)", "\tx", "\rx"] {
            assert_eq!(spreadsheet_text(risky), format!("'{risky}"));
        }
        assert_eq!(spreadsheet_text("Ana Lima"), "Ana Lima");
        assert_eq!(spreadsheet_text("O'Neil"), "O'Neil");
        assert_eq!(spreadsheet_text(""), "");
    }

    #[test]
    fn urls_must_be_http() {
        assert!(http_url("https://meet.example.org/room").is_ok());
        assert!(http_url("javascript:alert(1)").is_err());
        assert!(http_url("https://").is_err());
    }
}
