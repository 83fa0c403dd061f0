//! The one error type of the HTTP API, rendered as
//! `{"error": {"code", "message", "fields"}}` (DESIGN.md).

use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};
use serde::de::DeserializeOwned;
use serde_json::json;
use std::collections::BTreeMap;

/// Field path (`cohort.min_size`, `records[2].status`) → what is wrong with it.
pub type FieldErrors = BTreeMap<String, String>;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The body is not JSON (or not the declared format) at all.
    #[error("{0}")]
    Malformed(String),
    /// Well-formed input that breaks a rule; every offending field is named.
    #[error("validation failed")]
    Validation(FieldErrors),
    /// Validation of tabular input (CSV) where the line is what the user needs.
    #[error("{message}")]
    InvalidLines {
        message: String,
        lines: Vec<serde_json::Value>,
    },
    /// A request that breaks domain rules (a staffing, a cohort's size), each listed.
    #[error("{field}: {} rule(s) broken", violations.len())]
    RuleViolations {
        field: String,
        violations: Vec<String>,
    },
    #[error("authentication required")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("not found")]
    NotFound,
    /// The path exists, for other methods: `allow` lists them (`GET, POST`).
    #[error("this path does not answer this method; it answers {allow}")]
    MethodNotAllowed { allow: String },
    /// The request is fine but the current state does not allow it.
    #[error("{message}")]
    Conflict {
        message: String,
        details: Option<serde_json::Value>,
    },
    #[error("request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("too many failed attempts; try again in {retry_after_secs} s")]
    TooManyRequests { retry_after_secs: i64 },
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> AppError {
        AppError::Validation(BTreeMap::from([(field.into(), message.into())]))
    }

    pub fn conflict(message: impl Into<String>) -> AppError {
        AppError::Conflict {
            message: message.into(),
            details: None,
        }
    }

    pub fn forbidden() -> AppError {
        AppError::Forbidden("you do not have access to this".into())
    }

    /// Turns collected field errors into `Ok(())` or a 422.
    pub fn check(fields: FieldErrors) -> Result<(), AppError> {
        if fields.is_empty() {
            Ok(())
        } else {
            Err(AppError::Validation(fields))
        }
    }

    fn code(&self) -> &'static str {
        match self {
            AppError::Malformed(_) => "malformed",
            AppError::Validation(_)
            | AppError::InvalidLines { .. }
            | AppError::RuleViolations { .. } => "validation_failed",
            AppError::Unauthorized => "unauthorized",
            AppError::Forbidden(_) => "forbidden",
            AppError::NotFound => "not_found",
            AppError::MethodNotAllowed { .. } => "method_not_allowed",
            AppError::Conflict { .. } => "conflict",
            AppError::PayloadTooLarge(_) => "payload_too_large",
            AppError::TooManyRequests { .. } => "too_many_requests",
            AppError::Internal(_) => "internal",
        }
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Malformed(_) => StatusCode::BAD_REQUEST,
            AppError::Validation(_)
            | AppError::InvalidLines { .. }
            | AppError::RuleViolations { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden(_) => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut error = json!({ "code": self.code(), "message": self.to_string(), "fields": {} });
        match self {
            AppError::Validation(fields) => {
                error["fields"] = json!(fields);
                error["message"] = json!(summary(fields));
            }
            AppError::InvalidLines { lines, .. } => error["lines"] = json!(lines),
            AppError::RuleViolations { field, violations } => {
                error["fields"] = json!({ field: violations.join("; ") });
                error["violations"] = json!(violations);
            }
            AppError::Conflict {
                details: Some(details),
                ..
            } => error["details"] = details.clone(),
            AppError::Internal(cause) => {
                // The chain goes to the log (it never holds patient data: handlers add
                // context naming operations, not people); the client gets no internals.
                tracing::error!(error = format!("{cause:#}"), "internal error");
                error["message"] = json!("internal error; it has been logged");
            }
            _ => {}
        }
        let mut response = HttpResponse::build(self.status_code());
        match self {
            AppError::Unauthorized => {
                response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
            }
            AppError::TooManyRequests { retry_after_secs } => {
                response.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            AppError::MethodNotAllowed { allow } => {
                response.insert_header((header::ALLOW, allow.as_str()));
            }
            _ => {}
        }
        response.json(json!({ "error": error }))
    }
}

fn summary(fields: &FieldErrors) -> String {
    let names: Vec<&str> = fields.keys().map(String::as_str).collect();
    format!("invalid field(s): {}", names.join(", "))
}

impl From<diesel::result::Error> for AppError {
    fn from(error: diesel::result::Error) -> Self {
        use diesel::result::{DatabaseErrorKind, Error};
        match error {
            Error::NotFound => AppError::NotFound,
            Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => {
                AppError::conflict("this already exists")
            }
            other => AppError::Internal(anyhow::Error::new(other).context("database query")),
        }
    }
}

impl From<r2d2::Error> for AppError {
    fn from(error: r2d2::Error) -> Self {
        AppError::Internal(anyhow::Error::new(error).context("database connection pool"))
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(error: actix_web::error::BlockingError) -> Self {
        AppError::Internal(anyhow::anyhow!("blocking task failed: {error}"))
    }
}

pub type AppResult<T> = Result<T, AppError>;

/// Parses a JSON body; a value of the wrong shape is a 422 naming its field, a syntax
/// error a 400. Shared by the body extractor and every PATCH's merged document.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut deserializer).map_err(|error| {
        let path = error.path().to_string();
        let inner = error.into_inner();
        match inner.classify() {
            serde_json::error::Category::Data => {
                let (field, message) = name_the_field(&path, &inner.to_string());
                AppError::field(field, message)
            }
            _ => AppError::Malformed(format!("request body is not valid JSON: {inner}")),
        }
    })
}

/// serde reports an unknown field at its parent's path; name the field itself.
fn name_the_field(path: &str, message: &str) -> (String, String) {
    let message = strip_position(message);
    let parent = if path == "." { "" } else { path };
    if let Some(rest) = message.strip_prefix("unknown field `") {
        if let Some((field, _)) = rest.split_once('`') {
            // The path already ends at the unknown key.
            let full = if parent.is_empty() {
                field.to_string()
            } else if parent == field || parent.ends_with(&format!(".{field}")) {
                parent.to_string()
            } else {
                format!("{parent}.{field}")
            };
            return (full, "unknown field".to_string());
        }
    }
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some((field, _)) = rest.split_once('`') {
            let full = if parent.is_empty() {
                field.to_string()
            } else {
                format!("{parent}.{field}")
            };
            return (full, "is required".to_string());
        }
    }
    let field = if parent.is_empty() { "body" } else { parent };
    (field.to_string(), message)
}

fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(index) => message[..index].to_string(),
        None => message.to_string(),
    }
}
