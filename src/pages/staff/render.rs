//! Templates (embedded, HTML-escaping, strict) and the pages' error type.

use crate::error::AppError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use handlebars::Handlebars;
use serde_json::{json, Value};
use std::sync::LazyLock;

/// Name → source, embedded in the binary. `layout` and `partials/*` are partials.
const PARTIALS: &[(&str, &str)] = &[
    (
        "layout",
        include_str!("../../../templates/pages/layout.hbs"),
    ),
    (
        "partials/bar_chart",
        include_str!("../../../templates/pages/partials/bar_chart.hbs"),
    ),
    (
        "partials/timeline",
        include_str!("../../../templates/pages/partials/timeline.hbs"),
    ),
    (
        "partials/notice",
        include_str!("../../../templates/pages/partials/notice.hbs"),
    ),
];

const PAGES: &[(&str, &str)] = &[
    (
        "staff/login",
        include_str!("../../../templates/pages/staff/login.hbs"),
    ),
    (
        "staff/error",
        include_str!("../../../templates/pages/staff/error.hbs"),
    ),
    (
        "staff/programs",
        include_str!("../../../templates/pages/staff/programs.hbs"),
    ),
    (
        "staff/dashboard",
        include_str!("../../../templates/pages/staff/dashboard.hbs"),
    ),
    (
        "staff/formation",
        include_str!("../../../templates/pages/staff/formation.hbs"),
    ),
    (
        "staff/cohort",
        include_str!("../../../templates/pages/staff/cohort.hbs"),
    ),
    (
        "staff/report",
        include_str!("../../../templates/pages/staff/report.hbs"),
    ),
    (
        "staff/workload",
        include_str!("../../../templates/pages/staff/workload.hbs"),
    ),
    (
        "staff/groups",
        include_str!("../../../templates/pages/staff/groups.hbs"),
    ),
    (
        "staff/attendance",
        include_str!("../../../templates/pages/staff/attendance.hbs"),
    ),
    (
        "staff/follow_ups",
        include_str!("../../../templates/pages/staff/follow_ups.hbs"),
    ),
];

pub const STYLESHEET: &str = include_str!("../../../assets/pages.css");

static REGISTRY: LazyLock<Result<Handlebars<'static>, String>> = LazyLock::new(build_registry);

fn build_registry() -> Result<Handlebars<'static>, String> {
    let mut registry = Handlebars::new();
    registry.set_strict_mode(true);
    registry.set_dev_mode(false);
    handlebars::handlebars_helper!(len: |list: Json| list.as_array().map_or(0, Vec::len));
    registry.register_helper("len", Box::new(len));
    for (name, source) in PARTIALS {
        registry
            .register_partial(name, *source)
            .map_err(|error| format!("template {name}: {error}"))?;
    }
    for (name, source) in PAGES {
        registry
            .register_template_string(name, *source)
            .map_err(|error| format!("template {name}: {error}"))?;
    }
    Ok(registry)
}

/// Renders one page template to HTML.
pub fn render(name: &str, context: &Value) -> Result<String, AppError> {
    let registry = REGISTRY
        .as_ref()
        .map_err(|error| anyhow::anyhow!("page templates: {error}"))?;
    registry
        .render(name, context)
        .map_err(|error| anyhow::anyhow!("rendering {name}: {error}").into())
}

/// Headers every page carries: no scripts at all, no framing, nothing cached.
pub fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; \
             frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(body)
}

pub fn redirect(to: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, to.to_string()))
        .finish()
}

#[derive(Debug, thiserror::Error)]
pub enum PageError {
    #[error("sign in required")]
    Login { next: String },
    #[error("the form was missing its security token")]
    Csrf,
    #[error(transparent)]
    App(#[from] AppError),
}

impl PageError {
    fn message_and_fields(&self) -> (String, Vec<Value>) {
        match self {
            PageError::Csrf => (
                "This form has expired or did not come from this site. Go back, reload the page and try again.".into(),
                vec![],
            ),
            PageError::Login { .. } => ("Please sign in.".into(), vec![]),
            PageError::App(AppError::Validation(fields)) => (
                "Some of what was entered cannot be accepted.".into(),
                fields
                    .iter()
                    .map(|(field, message)| json!({"field": field, "message": message}))
                    .collect(),
            ),
            PageError::App(AppError::RuleViolations { violations, .. }) => (
                "This breaks the program's rules.".into(),
                violations
                    .iter()
                    .map(|v| json!({"field": "", "message": v}))
                    .collect(),
            ),
            PageError::App(AppError::Internal(cause)) => {
                tracing::error!(error = format!("{cause:#}"), "internal error on a page");
                (
                    "Something went wrong on our side; it has been logged.".into(),
                    vec![],
                )
            }
            PageError::App(AppError::Forbidden(message)) => (
                format!("You do not have access to this page ({message})."),
                vec![],
            ),
            PageError::App(AppError::NotFound) => ("This page does not exist.".into(), vec![]),
            PageError::App(other) => (other.to_string(), vec![]),
        }
    }
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::Login { .. } => StatusCode::SEE_OTHER,
            PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::App(error) => error.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let PageError::Login { next } = self {
            let query = if next == "/staff" {
                String::new()
            } else {
                format!("?next={}", percent_encode(next))
            };
            return redirect(&format!("/staff/login{query}"));
        }
        let (message, fields) = self.message_and_fields();
        let status = self.status_code();
        let context = json!({
            "title": status.canonical_reason().unwrap_or("Error"),
            "user": null,
            "csrf": "",
            "status": status.as_u16(),
            "message": message,
            "fields": fields,
        });
        match render("staff/error", &context) {
            Ok(body) => html(status, body),
            Err(_) => HttpResponse::build(status)
                .content_type("text/plain; charset=utf-8")
                .body(message),
        }
    }
}

/// Encodes a path for a query value (RFC 3986 unreserved and `/` kept).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                out.push(byte as char)
            }
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_compiles() {
        if let Err(error) = REGISTRY.as_ref() {
            panic!("{error}");
        }
    }

    #[test]
    fn the_error_page_escapes_what_it_shows() {
        let html = render(
            "staff/error",
            &json!({"title": "x", "user": null, "csrf": "", "status": 422,
                    "message": "<script>alert(1)</script>", "fields": []}),
        )
        .expect("renders");
        assert!(!html.contains("<script>alert"));
        assert!(html.contains("&lt;script&gt;"));
    }
}
