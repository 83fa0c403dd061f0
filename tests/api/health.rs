use crate::helpers::{error_body, spawn_app};
use serde_json::Value;

#[tokio::test]
async fn healthz_answers_ok_when_the_database_answers() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.expect("json");
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    app.client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("sent");
    let _ = app.get("/api/v1/programs/999", &app.admin_token).await;
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    assert!(
        text.contains(
            r#"cohorts_http_requests_total{method="GET",route="/healthz",status="200"} 1"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"route="/api/v1/programs/{id}",status="404""#),
        "{text}"
    );
    assert!(
        text.contains("cohorts_http_request_duration_seconds_bucket"),
        "{text}"
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let response = app
        .client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("sent");
    assert!(response.headers().get("x-request-id").is_some());
}

#[tokio::test]
async fn unknown_route_is_a_json_404() {
    let app = spawn_app().await;
    let response = app.get("/api/v1/no-such-thing", &app.admin_token).await;
    let body = error_body(response, 404).await;
    assert_eq!(body["error"]["code"], "not_found");
}

/// The families README.md documents, with their Prometheus type.
const FAMILIES: [(&str, &str); 8] = [
    ("cohorts_http_requests_total", "counter"),
    ("cohorts_http_request_duration_seconds", "histogram"),
    ("cohorts_mail_sent_total", "counter"),
    ("cohorts_mail_failed_total", "counter"),
    ("cohorts_mail_retries_total", "counter"),
    ("cohorts_db_pool_connections", "gauge"),
    ("cohorts_db_pool_idle", "gauge"),
    ("cohorts_outbox_depth", "gauge"),
];

#[tokio::test]
async fn a_fresh_instance_exposes_every_family_with_help_and_type_at_zero() {
    let app = spawn_app().await;
    app.client
        .get(app.url("/healthz"))
        .send()
        .await
        .expect("sent");
    let text = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .expect("sent")
        .text()
        .await
        .expect("text");
    let mut help = Vec::new();
    let mut types: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["#", "HELP", name, ..] => help.push(name.to_string()),
            ["#", "TYPE", name, kind] => types.push((name.to_string(), kind.to_string())),
            [sample, _value] => {
                // Every sample belongs to a family announced above it (a scraper's rule).
                let name = sample.split('{').next().expect("name");
                let family = ["_bucket", "_sum", "_count"]
                    .iter()
                    .find_map(|suffix| {
                        name.strip_suffix(suffix)
                            .filter(|f| types.iter().any(|(t, k)| t == f && k == "histogram"))
                    })
                    .unwrap_or(name);
                assert!(
                    types.iter().any(|(t, _)| t == family),
                    "{sample} without a TYPE before it:\n{text}"
                );
            }
            _ => panic!("not Prometheus text: {line:?}\n{text}"),
        }
    }
    for (family, kind) in FAMILIES {
        assert_eq!(
            help.iter().filter(|h| *h == family).count(),
            1,
            "one HELP for {family}:\n{text}"
        );
        assert!(
            types.contains(&(family.to_string(), kind.to_string())),
            "TYPE {family} {kind}:\n{text}"
        );
    }
    // Present before anything failed, so an alert on them works from the start.
    for counter in ["cohorts_mail_failed_total", "cohorts_mail_retries_total"] {
        assert!(
            text.lines().any(|l| l == format!("{counter} 0")),
            "{counter} at zero:\n{text}"
        );
    }
}

#[tokio::test]
async fn a_wrong_method_on_a_known_path_is_a_405_that_lists_the_methods() {
    let app = spawn_app().await;
    for (method, path, allowed) in [
        (
            reqwest::Method::DELETE,
            "/api/v1/cohorts",
            &["GET", "POST"][..],
        ),
        (reqwest::Method::POST, "/api/v1/cohorts/1", &["GET"][..]),
        (
            reqwest::Method::GET,
            "/api/v1/cohorts/1/facilitators",
            &["PUT"][..],
        ),
        (reqwest::Method::POST, "/healthz", &["GET"][..]),
    ] {
        let response = app
            .request(method.clone(), path, Some(&app.admin_token), None)
            .await;
        assert_eq!(response.status(), 405, "{method} {path}");
        let allow = response
            .headers()
            .get("allow")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let mut listed: Vec<&str> = allow.split(',').map(str::trim).collect();
        listed.sort_unstable();
        assert_eq!(listed, allowed, "{method} {path}: Allow {allow:?}");
        let body = error_body(response, 405).await;
        assert_eq!(body["error"]["code"], "method_not_allowed");
    }
    // A path that does not exist stays a 404, whatever the method.
    let response = app
        .request(
            reqwest::Method::DELETE,
            "/api/v1/no-such-thing",
            Some(&app.admin_token),
            None,
        )
        .await;
    assert!(response.headers().get("allow").is_none());
    error_body(response, 404).await;
}
