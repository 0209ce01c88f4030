//! Outbound HTTP from plugins through standard `wasi:http`: only to what the manifest asks for
//! and the operator grants (no connection is made otherwise), never to a loopback address
//! behind a name unless that address is granted, within the time, size and concurrency limits,
//! every outcome counted in `/metrics`.

use integration_host::config::{PluginGrant, Settings};
use integration_host::domain::AccountKind;
use integration_host_tests::{
    Answer, PluginFolder, Receiver, TestApp, send_json, spawn_app_with, with_plugins,
};
use serde_json::json;

const CUSTOMER_TOKEN: &str = "/rest/V1/integration/customer/token";

/// A misbehave plugin that GETs `url` on every customer sign-in and vetoes it with what
/// happened (`fetched <status> <body>` or `fetch failed: <error>`).
fn fetcher(asks: &[&str], url: &str, timeout_ms: u64) -> String {
    let asks: Vec<String> = asks.iter().map(|a| format!("{a:?}")).collect();
    format!(
        "roles = [\"observer\"]\n[capabilities]\noutbound_http = [{}]\n[limits]\ntimeout_ms = {timeout_ms}\n[observer]\nevents = [\"customer_login\"]\nmode = \"sync\"\n[config]\nbehaviour = \"fetch\"\nurl = \"{url}\"\n",
        asks.join(", ")
    )
}

fn grant(s: &mut Settings, id: &str, rules: &[String]) {
    s.plugins.grants.insert(
        id.into(),
        PluginGrant {
            outbound_http: Some(rules.iter().map(|r| r.parse().unwrap()).collect()),
            ..Default::default()
        },
    );
}

/// Grants `id` outbound HTTP to `receiver_port` on loopback and sets its variable `name`.
fn grant_with_variable(s: &mut Settings, id: &str, receiver_port: u16, name: &str, value: &str) {
    grant(s, id, &[format!("http://127.0.0.1:{receiver_port}")]);
    let g = s.plugins.grants.get_mut(id).unwrap();
    g.variables.insert(
        name.into(),
        integration_host::config::VariableValue::new(value),
    );
}

async fn app_with(folder: &PluginFolder, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let app = spawn_app_with(|s| {
        with_plugins(folder)(s);
        adjust(s);
    })
    .await;
    app.account(AccountKind::Customer, "c@example.com", "secret123")
        .await;
    app.account(AccountKind::Admin, "jane", "secret123").await;
    app
}

/// What the fetcher answered on a customer sign-in.
async fn fetched(app: &TestApp) -> String {
    let (status, body) = app
        .post_json(
            CUSTOMER_TOKEN,
            &json!({"username": "c@example.com", "password": "secret123"}),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    body["message"].as_str().unwrap().to_owned()
}

/// The `/metrics` count of a plugin's requests with that outcome.
async fn counted(app: &TestApp, plugin: &str, outcome: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    let series = format!(
        "integration_host_plugin_http_requests_total{{plugin=\"{plugin}\",outcome=\"{outcome}\"}} "
    );
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

async fn reload(app: &TestApp) {
    let (status, admin) = app
        .post_json(
            "/rest/V1/integration/admin/token",
            &json!({"username": "jane", "password": "secret123"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) =
        send_json(app.bearer("POST", "/rest/V1/plugins/reload", admin.as_str().unwrap())).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn a_plugin_reaches_what_is_asked_and_granted_and_nothing_else() {
    let inside = Receiver::start(Answer::Status(200, "hello".into())).await;
    let outside = Receiver::start(Answer::Status(200, "you should not see this".into())).await;
    let folder = PluginFolder::new();
    let asks = ["https://hooks.example.com", "http://127.0.0.1:*"];
    folder.write(
        "fetcher",
        "misbehave",
        &fetcher(&asks, &inside.url("/ping?token=t0k3n"), 2000),
    );
    folder.write(
        "ungranted",
        "misbehave",
        &fetcher(&asks, &inside.url("/"), 2000),
    );
    let inside_rule = format!("http://127.0.0.1:{}", inside.port);
    let app = app_with(&folder, |s| {
        grant(s, "fetcher", std::slice::from_ref(&inside_rule))
    })
    .await;

    // Asked for and not granted: not loaded, the reason names the key.
    let problems = app.plugins.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(problems[0].dir.ends_with("ungranted"), "{problems:?}");
    assert!(
        problems[0]
            .error
            .contains("plugins.grants.ungranted.outbound_http"),
        "{problems:?}"
    );

    assert_eq!(fetched(&app).await, "fetched 200 hello");
    let seen = inside.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path, "/ping?token=t0k3n");
    assert_eq!(seen[0].header("x-from"), Some("misbehave"));
    assert_eq!(
        seen[0].header("host"),
        Some(format!("127.0.0.1:{}", inside.port).as_str())
    );
    assert_eq!(counted(&app, "fetcher", "answered").await, 1);

    // A redirect elsewhere is the plugin's to follow: the host does not.
    inside.answer_with(Answer::Redirect(outside.url("/steal")));
    assert_eq!(fetched(&app).await, "fetched 302 moved");

    // Another port of the same host: asked for (127.0.0.1:*) but not granted.
    folder.write(
        "fetcher",
        "misbehave",
        &fetcher(&asks, &outside.url("/steal"), 2000),
    );
    reload(&app).await;
    let message = fetched(&app).await;
    assert!(
        message.starts_with("fetch failed: HTTP-request-denied"),
        "{message}"
    );
    // Granted nowhere, asked for: the same.
    folder.write(
        "fetcher",
        "misbehave",
        &fetcher(&asks, "https://hooks.example.com/x", 2000),
    );
    reload(&app).await;
    let message = fetched(&app).await;
    assert!(
        message.starts_with("fetch failed: HTTP-request-denied"),
        "{message}"
    );
    assert_eq!(outside.connections(), 0, "no connection reached it");
    assert_eq!(counted(&app, "fetcher", "denied").await, 2);

    // Asked and granted, side by side.
    let (_, admin) = app
        .post_json(
            "/rest/V1/integration/admin/token",
            &json!({"username": "jane", "password": "secret123"}),
        )
        .await;
    let (_, view) = send_json(app.bearer("GET", "/rest/V1/plugins", admin.as_str().unwrap())).await;
    let shown = view["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "fetcher")
        .unwrap()
        .clone();
    assert_eq!(
        shown["asked"],
        json!(["outbound_http: https://hooks.example.com, http://127.0.0.1:*"])
    );
    assert_eq!(
        shown["granted"],
        json!([format!("outbound_http: {inside_rule}")])
    );
}

#[tokio::test]
async fn a_name_resolving_to_loopback_needs_the_address_granted() {
    let receiver = Receiver::start(Answer::Status(200, "local".into())).await;
    let folder = PluginFolder::new();
    let by_name = format!("http://localhost:{}/", receiver.port);
    let asks = ["http://localhost:*", "http://127.0.0.1:*"];
    folder.write("fetcher", "misbehave", &fetcher(&asks, &by_name, 2000));

    // The name is granted, the loopback address it resolves to is not.
    let app = app_with(&folder, |s| {
        grant(s, "fetcher", &["http://localhost:*".to_owned()])
    })
    .await;
    let message = fetched(&app).await;
    assert!(
        message.starts_with("fetch failed: destination-IP-prohibited"),
        "{message}"
    );
    assert_eq!(receiver.connections(), 0);
    assert_eq!(counted(&app, "fetcher", "denied").await, 1);
    drop(app);

    // With the address granted too, the name reaches it.
    let app = app_with(&folder, |s| {
        grant(
            s,
            "fetcher",
            &[
                "http://localhost:*".to_owned(),
                "http://127.0.0.1:*".to_owned(),
            ],
        )
    })
    .await;
    assert_eq!(fetched(&app).await, "fetched 200 local");
    assert_eq!(receiver.connections(), 1);
}

#[tokio::test]
async fn requests_stay_within_the_time_size_and_concurrency_limits() {
    let hanging = Receiver::start(Answer::Hang).await;
    let large = Receiver::start(Answer::Status(200, "x".repeat(4096))).await;
    let folder = PluginFolder::new();
    let asks = ["http://127.0.0.1:*"];
    folder.write(
        "slow",
        "misbehave",
        &fetcher(&asks, &hanging.url("/"), 1500),
    );
    let app = app_with(&folder, |s| {
        grant(s, "slow", &["http://127.0.0.1:*".to_owned()]);
        s.plugins.http.timeout_ms = 400;
        s.plugins.http.max_response_kib = 1;
        s.plugins.http.max_concurrent = 1;
    })
    .await;

    // No answer: the request ends at plugins.http.timeout_ms, well within the call's time.
    let started = std::time::Instant::now();
    let message = fetched(&app).await;
    let took = started.elapsed();
    assert!(message.starts_with("fetch failed: "), "{message}");
    assert!(message.contains("Timeout"), "{message}");
    assert!(
        took >= std::time::Duration::from_millis(350)
            && took < std::time::Duration::from_millis(1400),
        "{took:?}"
    );
    assert_eq!(counted(&app, "slow", "timed_out").await, 1);

    // Two at once with room for one: the second fails at once.
    let (a, b) = tokio::join!(fetched(&app), fetched(&app));
    let mut both = [a, b];
    both.sort();
    assert!(both[0].contains("ConnectionLimitReached"), "{both:?}");
    assert!(both[1].contains("Timeout"), "{both:?}");
    assert_eq!(counted(&app, "slow", "busy").await, 1);

    // A larger answer than plugins.http.max_response_kib fails while it is read.
    folder.write("slow", "misbehave", &fetcher(&asks, &large.url("/"), 1500));
    reload(&app).await;
    let message = fetched(&app).await;
    assert!(
        message.starts_with("fetch failed: reading the answer failed"),
        "{message}"
    );
    assert_eq!(counted(&app, "slow", "too_large").await, 1);
}

#[tokio::test]
async fn a_request_ends_by_the_calls_own_deadline() {
    let hanging = Receiver::start(Answer::Hang).await;
    let folder = PluginFolder::new();
    folder.write(
        "slow",
        "misbehave",
        &fetcher(&["http://127.0.0.1:*"], &hanging.url("/"), 300),
    );
    let app = app_with(&folder, |s| {
        grant(s, "slow", &["http://127.0.0.1:*".to_owned()]);
        s.plugins.http.timeout_ms = 10_000;
    })
    .await;
    // The call times out (a failing sync observer lets the sign-in through); the host ended
    // the request itself at the call's deadline, counted as timed out.
    let started = std::time::Instant::now();
    let (status, body) = app
        .post_json(
            CUSTOMER_TOKEN,
            &json!({"username": "c@example.com", "password": "secret123"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert!(started.elapsed() < std::time::Duration::from_millis(2000));
    assert_eq!(counted(&app, "slow", "timed_out").await, 1);
    assert_eq!(hanging.connections(), 1);
}

#[tokio::test]
async fn login_audit_forwards_each_sign_in_to_the_collector_it_is_granted() {
    let collector = Receiver::start(Answer::Status(202, String::new())).await;
    let folder = PluginFolder::new();
    folder.write_raw(
        "login-audit",
        &integration_host_tests::sample_manifest("login-audit"),
    );
    let url = collector.url("/ingest");
    let app = app_with(&folder, |s| {
        grant_with_variable(s, "login-audit", collector.port, "collector_url", &url)
    })
    .await;
    assert!(
        app.plugins.problems().is_empty(),
        "{:?}",
        app.plugins.problems()
    );
    app.account(AccountKind::Customer, "eve@blocked.example", "secret123")
        .await;
    let (status, _) = app
        .post_json(
            CUSTOMER_TOKEN,
            &json!({"username": "c@example.com", "password": "secret123"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = app
        .post_json(
            CUSTOMER_TOKEN,
            &json!({"username": "eve@blocked.example", "password": "secret123"}),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    let got: Vec<serde_json::Value> = collector.requests().iter().map(|r| r.json()).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(
        (&got[0]["event"], &got[0]["outcome"], &got[0]["email"]),
        (
            &json!("customer_login"),
            &json!("accepted"),
            &json!("c@example.com")
        )
    );
    assert_eq!(
        (&got[1]["outcome"], &got[1]["email"]),
        (&json!("refused"), &json!("eve@blocked.example"))
    );

    // A collector that is down is logged and holds nothing up.
    collector.down();
    let (status, _) = app
        .post_json(
            CUSTOMER_TOKEN,
            &json!({"username": "c@example.com", "password": "secret123"}),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn access_policy_asks_its_policy_service_and_keeps_the_answers() {
    let service = Receiver::start(Answer::Status(
        200,
        json!({"allow": true, "ttl_seconds": 300}).to_string(),
    ))
    .await;
    let folder = PluginFolder::new();
    folder.write_raw(
        "access-policy",
        &integration_host_tests::sample_manifest("access-policy"),
    );
    let url = service.url("/decide");
    let app = app_with(&folder, |s| {
        grant_with_variable(s, "access-policy", service.port, "policy_url", &url);
        s.plugins
            .grants
            .get_mut("access-policy")
            .unwrap()
            .key_value_quota_kib = Some(64);
    })
    .await;
    assert!(
        app.plugins.problems().is_empty(),
        "{:?}",
        app.plugins.problems()
    );
    let allowed = app
        .minted_integration("Shop A", &["Magento_Integration::integrations"])
        .await;
    let refused = app
        .minted_integration("Shop B", &["Magento_Integration::integrations"])
        .await;

    // Allowed, and the answer kept: the second request asks nothing.
    for _ in 0..2 {
        let (status, body) = send_json(allowed.request("GET", "/rest/V1/integrations")).await;
        assert_eq!(status, 200, "{body}");
    }
    let asked = service.requests();
    assert_eq!(asked.len(), 1);
    let question = asked[0].json();
    assert_eq!(question["integration"], "Shop A");
    assert_eq!(question["method"], "GET");
    assert_eq!(question["path"], "/rest/V1/integrations");
    let kept = app
        .store
        .kv_keys("access-policy", "decision/", 10)
        .await
        .unwrap();
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert!(kept[0].0.starts_with("decision/Shop A/GET"), "{kept:?}");

    // Refused by the service: denied although the ACL allows it.
    service.answer_with(Answer::Status(
        200,
        json!({"allow": false, "reason": "not today"}).to_string(),
    ));
    let (status, body) = send_json(refused.request("GET", "/rest/V1/integrations")).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(service.requests().len(), 2);

    // A service that cannot be reached fails closed for what it has not answered yet; what it
    // answered is still kept.
    service.down();
    let (status, _) = send_json(refused.request("GET", "/rest/V1/integrations/me")).await;
    assert_eq!(status, 401);
    assert_eq!(
        send_json(allowed.request("GET", "/rest/V1/integrations"))
            .await
            .0,
        200
    );
}
