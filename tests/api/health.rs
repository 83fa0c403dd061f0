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
