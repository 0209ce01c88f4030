//! Liveness, readiness, metrics, request ids, limits and the REST error shape.

use integration_host_tests::{CliEnv, ServerProcess, spawn_app, spawn_app_with};
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

/// The server's JSON log, as an operator reads it: one access line per request with its request
/// id, method, path (never the query), route, status and latency, and the request id on every
/// other line the request logged (here the audit line of the sign-in).
#[tokio::test]
async fn the_json_log_carries_the_request_id_on_every_line_of_a_request() {
    let env = CliEnv::new().await;
    let server = ServerProcess::start(&env.config, &[], &[("APP_LOG__FORMAT", "json")]);
    let stdout = server.wait_stdout("password: ", std::time::Duration::from_secs(10));
    let password = stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .expect("the first admin's password is printed")
        .to_owned();
    let res = reqwest::Client::new()
        .post(server.url("/rest/V1/integration/admin/token?probe=secret-query"))
        .header("X-Request-Id", "probe-42")
        .json(&json!({"username": "admin", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    let started = std::time::Instant::now();
    let lines = loop {
        let lines: Vec<Value> = server
            .stderr()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["request_id"] == "probe-42")
            .collect();
        if lines.iter().any(|v| v["message"] == "request answered") {
            break lines;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "no access line for the request:\n{}",
            server.stderr()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let access = lines
        .iter()
        .find(|v| v["message"] == "request answered")
        .unwrap();
    assert_eq!(access["level"], "INFO");
    assert_eq!(access["method"], "POST");
    assert_eq!(access["path"], "/rest/V1/integration/admin/token");
    assert_eq!(access["route"], "/rest/V1/integration/admin/token");
    assert_eq!(access["status"], 200);
    assert!(access["latency_ms"].as_f64().unwrap() >= 0.0);
    assert!(access["timestamp"].as_str().unwrap().ends_with('Z'));
    let audit = lines
        .iter()
        .find(|v| v["target"] == "integration_host::audit")
        .unwrap_or_else(|| panic!("the sign-in's audit line carries the request id: {lines:?}"));
    assert_eq!(audit["event"], "admin_login");
    let log = server.stderr();
    assert!(!log.contains("secret-query"), "the query reached the log");
    assert!(!log.contains(&password), "the password reached the log");
    assert!(server.stop().success());
}

#[tokio::test]
async fn metrics_can_have_a_listener_of_their_own_and_a_bearer_token_read_from_a_file() {
    let env = CliEnv::new().await;
    let token_file = env.db.dir.path().join("metrics-token");
    std::fs::write(&token_file, "m3trics-t0ken-from-a-file\n").unwrap();
    let server = ServerProcess::start(
        &env.config,
        &[],
        &[
            ("APP_METRICS__LISTEN", "127.0.0.1:0"),
            (
                "APP_METRICS__BEARER_TOKEN_FILE",
                token_file.to_str().unwrap(),
            ),
        ],
    );
    let client = reqwest::Client::new();
    // Not on the API port any more.
    let res = client.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["message"], "Request does not match any route.");
    // On its own port, for the token only.
    let metrics_port: u16 = {
        let log = server.stderr();
        let line = log
            .lines()
            .find(|l| l.contains("metrics listening on http://"))
            .unwrap_or_else(|| panic!("no metrics listener in the log:\n{log}"));
        let rest = &line[line.find("metrics listening on http://").unwrap() + 28..];
        let addr: String = rest.chars().take_while(|c| *c != '/').collect();
        addr.rsplit(':').next().unwrap().parse().unwrap()
    };
    let url = format!("http://127.0.0.1:{metrics_port}/metrics");
    let res = client.get(&url).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        res.headers()["www-authenticate"],
        "Bearer realm=\"metrics\""
    );
    let res = client
        .get(&url)
        .bearer_auth("wrong-token-of-some-length")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let res = client
        .get(&url)
        .bearer_auth("m3trics-t0ken-from-a-file")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("integration_host_http_requests_total")
    );
    // Nothing else answers there.
    let res = client
        .get(format!("http://127.0.0.1:{metrics_port}/livez"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    // The token is in no log line.
    assert!(!server.stderr().contains("m3trics-t0ken"));
    assert!(server.stop().success());
}
