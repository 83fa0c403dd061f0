//! Pages for program leads and facilitators: server-rendered HTML, one stylesheet, no
//! scripts. Handlers reuse the API's functions (access rules included) and render them.

use crate::db::models::program;
use crate::db::models::user::Role;
use crate::web::{db, AppState};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

pub mod charts;
pub mod cohort;
pub mod facilitator;
pub mod failed_mail;
pub mod lead;
pub mod queries;
pub mod render;
pub mod session;

use render::{html, redirect, render, PageError};
use session::{Staff, LOGIN_COOKIE};

pub type PageResult = Result<HttpResponse, PageError>;

pub fn config(cfg: &mut web::ServiceConfig) {
    cfg.route("/", web::get().to(root))
        .route("/assets/pages.css", web::get().to(stylesheet))
        .service(
            web::scope("/staff")
                // A post that is not a form at all cannot carry the CSRF token: refused.
                .app_data(web::FormConfig::default().error_handler(|_, _| PageError::Csrf.into()))
                .route("", web::get().to(home))
                .route("/login", web::get().to(login_form))
                .route("/login", web::post().to(login))
                .route("/logout", web::post().to(logout))
                .route("/programs/{id}", web::get().to(lead::dashboard))
                .route(
                    "/programs/{id}/formation",
                    web::get().to(lead::formation_preview),
                )
                .route(
                    "/programs/{id}/formation",
                    web::post().to(lead::formation_commit),
                )
                .route("/programs/{id}/report", web::get().to(lead::report))
                .route("/programs/{id}/report.csv", web::get().to(lead::report_csv))
                .route("/workload", web::get().to(lead::workload))
                .route("/outbox/{id}/retry", web::post().to(lead::retry_mail))
                .route("/cohorts/{id}", web::get().to(cohort::cohort_page))
                .route(
                    "/sessions/{id}/attendance",
                    web::get().to(cohort::attendance_form),
                )
                .route(
                    "/sessions/{id}/attendance",
                    web::post().to(cohort::save_attendance),
                )
                .route("/groups", web::get().to(facilitator::groups))
                .route("/follow-ups", web::get().to(facilitator::follow_ups))
                .route(
                    "/follow-ups/{id}/acknowledge",
                    web::post().to(facilitator::acknowledge),
                ),
        );
}

/// Renders a page for a signed-in user: adds the user, the CSRF token and the title.
pub fn page(staff: &Staff, template: &str, title: &str, mut context: Value) -> PageResult {
    context["title"] = json!(title);
    context["csrf"] = json!(staff.csrf);
    context["user"] = json!({
        "name": staff.user.name,
        "is_lead": staff.user.role != Role::Facilitator,
        "is_facilitator": staff.user.role == Role::Facilitator,
    });
    if context.get("notice").is_none() {
        context["notice"] = Value::Null;
    }
    Ok(html(StatusCode::OK, render(template, &context)?))
}

async fn root() -> HttpResponse {
    redirect("/staff")
}

async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(render::STYLESHEET)
}

/// Facilitators start at their groups; leads at their program (or the list of them).
async fn home(state: web::Data<AppState>, staff: Staff) -> PageResult {
    if staff.user.role == Role::Facilitator {
        return Ok(redirect("/staff/groups"));
    }
    let scope = staff.user.program_scope();
    let programs = db(&state, move |conn| {
        Ok(program::list(conn, scope.as_deref())?)
    })
    .await?;
    if let [only] = programs.as_slice() {
        return Ok(redirect(&format!("/staff/programs/{}", only.id)));
    }
    let programs: Vec<Value> = programs
        .iter()
        .map(|p| json!({"id": p.id, "name": p.name, "site": p.site, "modality": p.modality, "timezone": p.timezone}))
        .collect();
    page(
        &staff,
        "staff/programs",
        "Programs",
        json!({ "programs": programs }),
    )
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

fn login_page(
    state: &AppState,
    status: StatusCode,
    next: &str,
    email: &str,
    error: Option<&str>,
) -> PageResult {
    let nonce = session::random_nonce();
    let context = json!({
        "title": "Sign in",
        "user": null,
        "csrf": "",
        "login_csrf": session::sign(&state.secret_key, "login", &nonce),
        "next": next,
        "email": email,
        "error": error,
    });
    let mut response = html(status, render("staff/login", &context)?);
    response
        .add_cookie(&session::login_cookie(state, &nonce))
        .map_err(|e| PageError::App(anyhow::anyhow!("setting a cookie: {e}").into()))?;
    Ok(response)
}

async fn login_form(state: web::Data<AppState>, query: web::Query<NextQuery>) -> PageResult {
    login_page(
        &state,
        StatusCode::OK,
        &session::local_path(query.next.as_deref()),
        "",
        None,
    )
}

#[derive(Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    next: String,
}

async fn login(
    state: web::Data<AppState>,
    req: HttpRequest,
    form: web::Form<LoginForm>,
) -> PageResult {
    let form = form.into_inner();
    let nonce = req.cookie(LOGIN_COOKIE).map(|c| c.value().to_string());
    let genuine =
        nonce.is_some_and(|nonce| session::verify(&state.secret_key, "login", &nonce, &form.csrf));
    if !genuine {
        return Err(PageError::Csrf);
    }
    let next = session::local_path(Some(&form.next));
    let ttl_hours = state.settings.token_ttl_hours;
    let (email, password) = (form.email.clone(), form.password);
    let outcome = match state.logins.begin(req.peer_addr().map(|a| a.ip())) {
        Ok(attempt) => db(&state, move |conn| {
            crate::service::auth::authenticate(conn, &email, &password, ttl_hours)
        })
        .await
        .inspect(|_| attempt.succeeded()),
        Err(refused) => Err(refused),
    };
    match outcome {
        Ok((token, _, _)) => {
            let mut response = redirect(&next);
            response
                .add_cookie(&session::session_cookie(&state, &token))
                .and_then(|_| response.add_cookie(&session::removal(LOGIN_COOKIE, "/staff/login")))
                .map_err(|e| PageError::App(anyhow::anyhow!("setting a cookie: {e}").into()))?;
            Ok(response)
        }
        Err(crate::error::AppError::Unauthorized) => login_page(
            &state,
            StatusCode::UNAUTHORIZED,
            &next,
            &form.email,
            Some("That email and password do not match an account."),
        ),
        Err(crate::error::AppError::TooManyRequests { retry_after_secs }) => login_page(
            &state,
            StatusCode::TOO_MANY_REQUESTS,
            &next,
            &form.email,
            Some(&format!(
                "Too many failed attempts. Try again in {retry_after_secs} seconds."
            )),
        ),
        Err(other) => Err(other.into()),
    }
}

#[derive(Deserialize)]
pub struct CsrfForm {
    #[serde(default)]
    pub csrf: String,
}

async fn logout(state: web::Data<AppState>, staff: Staff, form: web::Form<CsrfForm>) -> PageResult {
    staff.check_csrf(&state.secret_key, &form.csrf)?;
    crate::web::auth::revoke(&state, crate::service::auth::hash_token(&staff.token)).await?;
    let mut response = redirect("/staff/login");
    response
        .add_cookie(&session::removal(session::SESSION_COOKIE, "/"))
        .map_err(|e| PageError::App(anyhow::anyhow!("setting a cookie: {e}").into()))?;
    Ok(response)
}
