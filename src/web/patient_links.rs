//! Pages behind the signed links in patients' emails (no account): see a session in
//! one's own time zone and answer "I'll be there" / "I can't make it", and stop emails.
//! A tampered or expired link gets a friendly page and changes nothing.

use crate::db::models::cohort as cohorts;
use crate::db::models::patient::{self as patients, NewConsentEvent, PatientRow};
use crate::db::models::program as programs;
use crate::db::schema::{patients as patient_table, rsvps};
use crate::db::{write_transaction, DbConnection};
use crate::domain::status::{CohortKind, InvitationStatus, RsvpResponse, SessionStatus};
use crate::email::links::{self, LinkClaims, LinkError, Purpose};
use crate::email::Mailer;
use crate::email::{self};
use crate::web::AppState;
use actix_web::http::StatusCode;
use actix_web::{web, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use serde_json::{json, Value};

/// On every answer under /p/: no script, no framing (clickjacking an RSVP), forms only
/// to this site, no Referer (the token is in the URL), no content sniffing. Styles are
/// inline in the page template.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self' 'unsafe-inline'; \
     img-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

pub fn config(cfg: &mut web::ServiceConfig) {
    let headers = actix_web::middleware::DefaultHeaders::new()
        .add(("Content-Security-Policy", CONTENT_SECURITY_POLICY))
        .add(("Referrer-Policy", "no-referrer"))
        .add(("X-Content-Type-Options", "nosniff"))
        .add(("X-Frame-Options", "DENY"));
    cfg.service(
        web::scope("/p")
            .wrap(headers)
            .route("/{token}", web::get().to(show))
            .route("/{token}/peer", web::post().to(answer_invitation))
            .route("/{token}/leave", web::post().to(leave_circle))
            .route("/{token}/rsvp", web::post().to(rsvp))
            .route("/{token}/unsubscribe", web::get().to(unsubscribe_form))
            .route("/{token}/unsubscribe", web::post().to(unsubscribe)),
    );
}

/// A page, or the reason there is none.
enum PageError {
    Link(LinkError),
    Gone(&'static str),
    /// The link's patient is no longer an active member of the session's group
    /// (withdrawn, completed, or left): they see that, and nothing else.
    FormerMember,
    Internal(anyhow::Error),
}

impl From<anyhow::Error> for PageError {
    fn from(error: anyhow::Error) -> Self {
        PageError::Internal(error)
    }
}

impl From<diesel::result::Error> for PageError {
    fn from(error: diesel::result::Error) -> Self {
        match error {
            // A token for a record that is gone reads like any other bad link.
            diesel::result::Error::NotFound => PageError::Link(LinkError::Invalid),
            other => PageError::Internal(other.into()),
        }
    }
}

fn page(mailer: &Mailer, status: StatusCode, name: &str, context: &Value) -> HttpResponse {
    match mailer.templates.page(name, context) {
        Ok(html) => HttpResponse::build(status)
            .content_type("text/html; charset=utf-8")
            .insert_header(("Cache-Control", "no-store"))
            .insert_header(("Referrer-Policy", "no-referrer"))
            .body(html),
        Err(error) => {
            tracing::error!(error = format!("{error:#}"), "rendering a page");
            HttpResponse::InternalServerError()
                .content_type("text/plain; charset=utf-8")
                .body("Something went wrong on our side. Please try again later.")
        }
    }
}

fn message(mailer: &Mailer, status: StatusCode, heading: &str, text: &str) -> HttpResponse {
    page(
        mailer,
        status,
        "message",
        &json!({"title": heading, "heading": heading, "message": text}),
    )
}

fn error_page(mailer: &Mailer, error: PageError) -> HttpResponse {
    match error {
        PageError::Link(LinkError::Invalid) => message(
            mailer,
            StatusCode::BAD_REQUEST,
            "This link does not work",
            "The link may have been cut short or changed. Please use the link from your most recent email, or contact your care team.",
        ),
        PageError::Link(LinkError::Expired) => message(
            mailer,
            StatusCode::GONE,
            "This link has expired",
            "Links in our emails work for a limited time. Please use the link from your most recent email, or contact your care team.",
        ),
        PageError::Gone(text) => message(mailer, StatusCode::CONFLICT, "This can no longer be changed", text),
        PageError::FormerMember => message(
            mailer,
            StatusCode::CONFLICT,
            "You are no longer part of this group",
            "This link was for a group you are no longer part of, so it shows no meetings and takes no answers. If you think this is a mistake, please contact your care team.",
        ),
        PageError::Internal(error) => {
            tracing::error!(error = format!("{error:#}"), "patient link failed");
            message(
                mailer,
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong",
                "Something went wrong on our side. Nothing was changed; please try again later.",
            )
        }
    }
}

async fn blocking<T, F>(state: &web::Data<AppState>, work: F) -> Result<T, PageError>
where
    T: Send + 'static,
    F: FnOnce(&mut DbConnection) -> Result<T, PageError> + Send + 'static,
{
    let pool = state.pool.clone();
    web::block(move || {
        let mut conn = pool.get().map_err(|e| PageError::Internal(e.into()))?;
        work(&mut conn)
    })
    .await
    .map_err(|e| PageError::Internal(anyhow::anyhow!("blocking task: {e}")))?
}

fn verify(state: &AppState, token: &str) -> Result<LinkClaims, PageError> {
    links::verify(&state.secret_key, token, Utc::now()).map_err(PageError::Link)
}

/// The `{token}` of a patient link with its verified claims. A tampered, expired or
/// wrong-purpose link never reaches a handler: it is answered with the friendly page.
struct SignedLink {
    token: String,
    claims: LinkClaims,
}

/// A link of any purpose.
struct AnyLink(SignedLink);
/// A link about one session.
struct SessionLink(SignedLink);
/// A link answering a peer-circle invitation.
struct InvitationLink(SignedLink);

impl SignedLink {
    fn extract(
        req: &actix_web::HttpRequest,
        purpose: Option<Purpose>,
    ) -> Result<SignedLink, actix_web::Error> {
        let (Some(state), Some(mailer)) = (
            req.app_data::<web::Data<AppState>>(),
            req.app_data::<web::Data<Mailer>>(),
        ) else {
            return Err(actix_web::error::ErrorInternalServerError(
                "application state missing",
            ));
        };
        let token = req
            .match_info()
            .get("token")
            .unwrap_or_default()
            .to_string();
        let refused = |error| {
            actix_web::error::InternalError::from_response(
                "a refused patient link",
                error_page(mailer, error),
            )
            .into()
        };
        match verify(state, &token) {
            Ok(claims) if purpose.is_none_or(|purpose| claims.purpose == purpose) => {
                Ok(SignedLink { token, claims })
            }
            Ok(_) => Err(refused(PageError::Link(LinkError::Invalid))),
            Err(error) => Err(refused(error)),
        }
    }
}

macro_rules! link_extractor {
    ($name:ident, $purpose:expr) => {
        impl actix_web::FromRequest for $name {
            type Error = actix_web::Error;
            type Future = std::future::Ready<Result<Self, Self::Error>>;

            fn from_request(
                req: &actix_web::HttpRequest,
                _: &mut actix_web::dev::Payload,
            ) -> Self::Future {
                std::future::ready(SignedLink::extract(req, $purpose).map($name))
            }
        }
    };
}

link_extractor!(AnyLink, None);
link_extractor!(SessionLink, Some(Purpose::Session));
link_extractor!(InvitationLink, Some(Purpose::PeerInvitation));

/// The session page's data, as the patient reads it, and the cohort it belongs to.
struct SessionPage {
    context: Value,
    cohort_id: i64,
    program_id: i64,
}

fn response_label(response: RsvpResponse) -> &'static str {
    match response {
        RsvpResponse::Yes => "I'll be there",
        RsvpResponse::No => "I can't make it",
    }
}

fn session_context(
    conn: &mut DbConnection,
    claims: &LinkClaims,
    token: &str,
) -> Result<SessionPage, PageError> {
    let session_id = claims
        .session_id
        .ok_or(PageError::Link(LinkError::Invalid))?;
    let patient = patients::find(conn, claims.patient_id)?;
    let session = cohorts::find_session(conn, session_id)?;
    let cohort = cohorts::find(conn, session.cohort_id)?;
    if cohort.program_id != patient.program_id {
        return Err(PageError::Link(LinkError::Invalid));
    }
    // The link was signed when the patient was a member; what counts is today.
    if !cohorts::is_active_member(conn, cohort.id, patient.id)? {
        return Err(PageError::FormerMember);
    }
    let program = programs::find(conn, cohort.program_id)?;
    let tz = crate::service::zone(patient.timezone.as_deref(), &program.timezone);
    let (venue, join_url) = crate::service::place(&program, Some(&cohort));
    let response: Option<RsvpResponse> = rsvps::table
        .filter(rsvps::session_id.eq(session_id))
        .filter(rsvps::patient_id.eq(patient.id))
        .select(rsvps::response)
        .first(conn)
        .optional()?;
    let starts: DateTime<Utc> = session.starts_at.and_utc();
    let open = session.status == SessionStatus::Scheduled && starts > Utc::now();
    // A peer circle is voluntary: its members can leave from any meeting link.
    let in_circle = cohort.kind == CohortKind::PeerSupport;
    Ok(SessionPage {
        context: json!({
            "title": "Your group meeting",
            "when": email::format_when(starts, tz),
            "venue": venue,
            "join_url": join_url,
            "cancelled": session.status == SessionStatus::Cancelled,
            "open": open,
            "response": response.map(response_label),
            "rsvp_action": format!("/p/{token}/rsvp"),
            "leave_action": in_circle.then(|| format!("/p/{token}/leave")),
            "unsubscribe_url": format!("/p/{token}/unsubscribe"),
        }),
        cohort_id: cohort.id,
        program_id: cohort.program_id,
    })
}

/// `?answer=yes|no` from a button in the email: the page opens with that answer ready to
/// confirm. Only the form's POST records it (mail scanners follow links).
fn chosen_answer(query: &str) -> Option<RsvpResponse> {
    query.split('&').find_map(|pair| match pair {
        "answer=yes" => Some(RsvpResponse::Yes),
        "answer=no" => Some(RsvpResponse::No),
        _ => None,
    })
}

async fn show(
    req: actix_web::HttpRequest,
    state: web::Data<AppState>,
    mailer: web::Data<Mailer>,
    link: AnyLink,
) -> HttpResponse {
    let chosen = chosen_answer(req.query_string());
    let SignedLink { token, claims } = link.0;
    if claims.purpose == Purpose::Preferences {
        return unsubscribe_form(state, mailer, AnyLink(SignedLink { token, claims })).await;
    }
    if claims.purpose == Purpose::PeerInvitation {
        let result = blocking(&state, move |conn| {
            invitation_context(conn, &claims, &token)
        })
        .await;
        return match result {
            Ok(context) => page(&mailer, StatusCode::OK, "peer_invitation", &context),
            Err(error) => error_page(&mailer, error),
        };
    }
    let result = blocking(&state, move |conn| {
        session_context(conn, &claims, &token).map(|page| page.context)
    })
    .await;
    match result {
        Ok(mut context) => {
            if let Some(answer) = chosen.filter(|_| context["open"] == json!(true)) {
                context["chosen"] = json!(response_label(answer));
                context["chosen_yes"] = json!(answer == RsvpResponse::Yes);
            }
            page(&mailer, StatusCode::OK, "session", &context)
        }
        Err(error) => error_page(&mailer, error),
    }
}

/// The answer from the form body: `response=yes` or `response=no`.
fn parse_response(body: &[u8]) -> Option<RsvpResponse> {
    let text = std::str::from_utf8(body).ok()?;
    text.split('&').find_map(|pair| match pair {
        "response=yes" => Some(RsvpResponse::Yes),
        "response=no" => Some(RsvpResponse::No),
        _ => None,
    })
}

async fn rsvp(
    state: web::Data<AppState>,
    mailer: web::Data<Mailer>,
    link: SessionLink,
    body: web::Bytes,
) -> HttpResponse {
    let SignedLink { token, claims } = link.0;
    let Some(response) = parse_response(&body) else {
        return message(
            &mailer,
            StatusCode::BAD_REQUEST,
            "Please choose an answer",
            "Use one of the two buttons on the meeting page.",
        );
    };
    let result = blocking(&state, move |conn| {
        write_transaction(conn, |conn| {
            // Validates the link against the data before anything is written.
            let mut context = session_context(conn, &claims, &token)?.context;
            if context["open"] != json!(true) {
                return Err(PageError::Gone(
                    "This meeting has already started or was cancelled, so the answer cannot be changed.",
                ));
            }
            let session_id = claims.session_id.ok_or(PageError::Link(LinkError::Invalid))?;
            let now = crate::db::now();
            crate::per_backend!(conn, |c| diesel::insert_into(rsvps::table)
                .values((
                    rsvps::session_id.eq(session_id),
                    rsvps::patient_id.eq(claims.patient_id),
                    rsvps::response.eq(response),
                    rsvps::at.eq(now),
                ))
                .on_conflict((rsvps::session_id, rsvps::patient_id))
                .do_update()
                .set((rsvps::response.eq(response), rsvps::at.eq(now)))
                .execute(c))?;
            context["response"] = json!(response_label(response));
            Ok(context)
        })
    })
    .await;
    match result {
        Ok(context) => page(&mailer, StatusCode::OK, "session", &context),
        Err(error) => error_page(&mailer, error),
    }
}

/// Leaving a peer circle by link: history is kept, queued mail for it is cancelled.
async fn leave_circle(
    state: web::Data<AppState>,
    mailer: web::Data<Mailer>,
    link: SessionLink,
) -> HttpResponse {
    let SignedLink { token, claims } = link.0;
    let result = blocking(&state, move |conn| {
        write_transaction(conn, |conn| {
            let SessionPage {
                context,
                cohort_id,
                program_id,
            } = session_context(conn, &claims, &token)?;
            if context["leave_action"].is_null() {
                return Err(PageError::Gone(
                    "You are not a member of this circle any more.",
                ));
            }
            let now = crate::db::now();
            cohorts::withdraw_member(conn, cohort_id, claims.patient_id, "left by link", now)?;
            patients::set_status(conn, &[claims.patient_id], "completed", now)?;
            crate::outbox::cancel_for_patient(conn, claims.patient_id, "left the circle", now)?;
            crate::db::audit::record(
                conn,
                crate::db::audit::AuditEvent {
                    actor_user_id: None,
                    action: "leave_by_link",
                    entity: "cohort",
                    entity_id: cohort_id,
                    program_id: Some(program_id),
                    changed_fields: vec!["members".into()],
                    detail: Some(format!("patient {}", claims.patient_id)),
                },
            )?;
            Ok(())
        })
    })
    .await;
    match result {
        Ok(()) => message(
            &mailer,
            StatusCode::OK,
            "You have left the circle",
            "You will not receive more messages about it. Your care team is there if you want to come back.",
        ),
        Err(error) => error_page(&mailer, error),
    }
}

/// The invitation page's data; the link must name this patient's own invitation.
fn invitation_context(
    conn: &mut DbConnection,
    claims: &LinkClaims,
    token: &str,
) -> Result<Value, PageError> {
    let invitation_id = claims
        .session_id
        .ok_or(PageError::Link(LinkError::Invalid))?;
    let invitation = crate::service::peer::find_invitation(conn, invitation_id)
        .map_err(|_| PageError::Link(LinkError::Invalid))?;
    if invitation.patient_id != claims.patient_id {
        return Err(PageError::Link(LinkError::Invalid));
    }
    Ok(json!({
        "title": "A peer circle",
        "status": invitation.status,
        "accepted": invitation.status == InvitationStatus::Accepted,
        "declined": invitation.status == InvitationStatus::Declined,
        "answer_action": format!("/p/{token}/peer"),
    }))
}

/// Accepting (fresh consent, recorded with its time) or declining by link.
async fn answer_invitation(
    state: web::Data<AppState>,
    mailer: web::Data<Mailer>,
    link: InvitationLink,
    body: web::Bytes,
) -> HttpResponse {
    let SignedLink { token, claims } = link.0;
    let accept = match std::str::from_utf8(&body).unwrap_or("") {
        "answer=accept" => true,
        "answer=decline" => false,
        _ => {
            return message(
                &mailer,
                StatusCode::BAD_REQUEST,
                "Please choose an answer",
                "Use one of the two buttons on the invitation page.",
            )
        }
    };
    let result = blocking(&state, move |conn| {
        write_transaction(conn, |conn| {
            // Checks the link against the data before anything is written.
            invitation_context(conn, &claims, &token)?;
            let invitation_id = claims.session_id.ok_or(PageError::Link(LinkError::Invalid))?;
            let now = crate::db::now();
            let outcome = if accept {
                crate::service::peer::accept(conn, invitation_id, now).map(|_| ())
            } else {
                crate::service::peer::decline(conn, invitation_id, now)
            };
            outcome.map_err(|error| match error {
                crate::error::AppError::Conflict { .. } => PageError::Gone(
                    "This invitation was already answered, so the answer cannot be changed here. Your care team can help.",
                ),
                other => PageError::Internal(anyhow::anyhow!("answering an invitation: {other}")),
            })?;
            invitation_context(conn, &claims, &token)
        })
    })
    .await;
    match result {
        Ok(context) => page(&mailer, StatusCode::OK, "peer_invitation", &context),
        Err(error) => error_page(&mailer, error),
    }
}

fn patient_of(conn: &mut DbConnection, claims: &LinkClaims) -> Result<PatientRow, PageError> {
    Ok(patients::find(conn, claims.patient_id)?)
}

async fn unsubscribe_form(
    state: web::Data<AppState>,
    mailer: web::Data<Mailer>,
    link: AnyLink,
) -> HttpResponse {
    let SignedLink { token, claims } = link.0;
    let result = blocking(&state, move |conn| patient_of(conn, &claims)).await;
    match result {
        Ok(patient) => page(
            &mailer,
            StatusCode::OK,
            "unsubscribe",
            &json!({
                "title": "Email preferences",
                "subscribed": patient.email_consent,
                "action": format!("/p/{token}/unsubscribe"),
            }),
        ),
        Err(error) => error_page(&mailer, error),
    }
}

/// One click (RFC 8058 POSTs `List-Unsubscribe=One-Click`; the page's button posts
/// nothing): consent withdrawn, recorded as from the link, queued mail cancelled.
async fn unsubscribe(
    state: web::Data<AppState>,
    mailer: web::Data<Mailer>,
    link: AnyLink,
) -> HttpResponse {
    let claims = link.0.claims;
    let result = blocking(&state, move |conn| {
        write_transaction(conn, |conn| {
            let patient = patient_of(conn, &claims)?;
            if patient.email_consent {
                let now = crate::db::now();
                patients::insert_consent_events(
                    conn,
                    &[NewConsentEvent {
                        patient_id: patient.id,
                        email_consent: false,
                        source: "link",
                        at: now,
                    }],
                )?;
                diesel::update(patient_table::table.find(patient.id))
                    .set((
                        patient_table::email_consent.eq(false),
                        patient_table::consent_changed_at.eq(now),
                        patient_table::updated_at.eq(now),
                    ))
                    .execute(conn)?;
                crate::outbox::cancel_for_patient(conn, patient.id, "consent withdrawn", now)?;
            }
            Ok(())
        })
    })
    .await;
    match result {
        Ok(()) => page(
            &mailer,
            StatusCode::OK,
            "unsubscribe",
            &json!({"title": "Email preferences", "subscribed": false, "action": ""}),
        ),
        Err(error) => error_page(&mailer, error),
    }
}

#[cfg(test)]
mod tests {
    use super::{parse_response, RsvpResponse};

    #[test]
    fn the_answer_is_read_from_the_form() {
        assert_eq!(parse_response(b"response=yes"), Some(RsvpResponse::Yes));
        assert_eq!(parse_response(b"x=1&response=no"), Some(RsvpResponse::No));
        assert_eq!(parse_response(b"response=maybe"), None);
    }
}
