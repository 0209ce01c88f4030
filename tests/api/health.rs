//! Liveness, readiness, metrics, request ids, limits and the REST error shape.

use integration_host_tests::{spawn_app, spawn_app_with};
use serde_json::{Value, json};

#[tokio::test]
async fn livez_answers_ok() {
    let app = spawn_app().await;
    let res = app.get("/livez").await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap(), json!({"status": "ok"}));
}

#[tokio::test]
async fn readyz_is_ready_with_a_database() {
    let app = spawn_app().await;
    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"status": "ready"})
    );
}

#[tokio::test]
async fn readyz_answers_503_when_the_database_is_gone_and_livez_stays_up() {
    let app = spawn_app().await;
    assert_eq!(app.get("/readyz").await.status(), 200);

    app.db.destroy().await;

    let res = app.get("/readyz").await;
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["status"], "unavailable");
    assert_eq!(body["checks"]["database"], "unreachable");
    assert_eq!(app.get("/livez").await.status(), 200);
}

#[tokio::test]
async fn unknown_route_answers_the_rest_error_shape() {
    let app = spawn_app().await;
    let res = app.get("/rest/V1/nothing-here").await;
    assert_eq!(res.status(), 404);
    assert_eq!(
        res.json::<Value>().await.unwrap(),
        json!({"message": "Request does not match any route."})
    );
}

#[tokio::test]
async fn wrong_method_answers_405_in_the_rest_shape() {
    let app = spawn_app().await;
    let res = app.client.delete(app.url("/livez")).send().await.unwrap();
    assert_eq!(res.status(), 405);
    let body: Value = res.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("not allowed"));
}

#[tokio::test]
async fn every_answer_carries_a_request_id_and_a_sane_incoming_one_is_kept() {
    let app = spawn_app().await;
    let res = app.get("/livez").await;
    let generated = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(generated.len() >= 16, "{generated}");

    let res = app
        .client
        .get(app.url("/livez"))
        .header("X-Request-Id", "trace-abc.123")
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers()["x-request-id"], "trace-abc.123");

    // An id that could forge log lines is replaced.
    let res = app
        .client
        .get(app.url("/livez"))
        .header("X-Request-Id", "a b\"c")
        .send()
        .await
        .unwrap();
    assert_ne!(res.headers()["x-request-id"], "a b\"c");
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let app = spawn_app().await;
    for _ in 0..3 {
        app.get("/livez").await;
    }
    app.get("/missing").await;
    let res = app.get("/metrics").await;
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["content-type"]
            .to_str()
            .unwrap()
            .contains("openmetrics-text")
    );
    let text = res.text().await.unwrap();
    assert!(
        text.contains(
            r#"integration_host_http_requests_total{method="GET",route="/livez",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(
            r#"integration_host_http_requests_total{method="GET",route="<unmatched>",status="404"} 1"#
        ),
        "{text}"
    );
    assert!(text.contains(
        r#"integration_host_http_request_duration_seconds_count{method="GET",route="/livez",status="200"} 3"#
    ));
}

#[tokio::test]
async fn oversized_headers_get_431_in_the_rest_shape() {
    let app = spawn_app_with(|s| s.server.max_header_bytes = 4096).await;
    let res = app
        .client
        .get(app.url("/livez"))
        .header("X-Filler", "a".repeat(5000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 431);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"message": "The request headers are larger than %limit bytes.", "parameters": {"limit": "4096"}})
    );
    // Just under the limit is fine.
    let res = app
        .client
        .get(app.url("/livez"))
        .header("X-Filler", "a".repeat(3000))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn oversized_bodies_get_413_in_the_rest_shape() {
    let app = spawn_app_with(|s| s.server.max_body_bytes = 1024).await;
    let res = app
        .client
        .post(app.url("/rest/V1/anything"))
        .body(vec![b'x'; 2048])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"message": "The request body is larger than %limit bytes.", "parameters": {"limit": "1024"}})
    );
}
