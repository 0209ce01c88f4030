//! At-least-once delivery to async observers through the durable outbox: every event of a
//! change is delivered with a stable id, a failed delivery is tried again with backoff (and
//! given up after the configured attempts, shown as such), changes made by the CLI and while
//! the server was down are delivered, and the sample `webhook-notifier` posts every event,
//! signed, once its receiver is back, even across a server restart.

use std::time::{Duration, Instant};

use integration_host::config::{PluginGrant, Settings};
use integration_host::domain::AccountKind;
use integration_host_tests::{
    Answer, CliEnv, PluginFolder, Receiver, ServerProcess, TestApp, plugin_cache_dir, run_binary,
    sample_manifest, send_json, show, spawn_app_with, with_plugins,
};
use serde_json::{Value, json};

/// A misbehave plugin that records every delivery of the integration events in its key-value
/// state (`event/<id>` = `<name> <attempt>;` per attempt) and fails the first `fail` attempts.
fn recorder(fail: u32) -> String {
    format!(
        "roles = [\"observer\"]\n[capabilities]\nkey_value = true\n[observer]\nevents = [\"integration_saved\", \"integration_deleted\"]\nmode = \"async\"\n[limits]\ntimeout_ms = 1000\n[config]\nbehaviour = \"record\"\nfail_attempts = {fail}\n"
    )
}

fn quick_retries(s: &mut Settings) {
    s.events.retry_initial_ms = 100;
    s.events.retry_max_seconds = 1;
    s.events.poll_ms = 50;
    s.plugins.grants.insert(
        "rec".into(),
        PluginGrant {
            key_value_quota_kib: Some(64),
            ..Default::default()
        },
    );
}

/// The recorder's entries: event id → what it recorded.
async fn recorded(app: &TestApp) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (key, _) in app.store.kv_keys("rec", "event/", 1000).await.unwrap() {
        let value = app.store.kv_get("rec", &key).await.unwrap().unwrap();
        out.push((
            key.trim_start_matches("event/").to_owned(),
            String::from_utf8(value).unwrap(),
        ));
    }
    out
}

async fn wait_for<T>(what: &str, mut probe: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn metric(app: &TestApp, series: &str) -> u64 {
    let text = integration_host_tests::fresh_client()
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{series} ")))
        .map(|n| n.trim().parse().unwrap())
        .unwrap_or(0)
}

async fn plugin_view(app: &TestApp, id: &str) -> Value {
    let (status, admin) = send_json(
        integration_host_tests::fresh_client()
            .post(app.url("/rest/V1/integration/admin/token"))
            .json(&json!({"username": "jane", "password": "secret123"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, view) = send_json(
        integration_host_tests::fresh_client()
            .get(app.url("/rest/V1/plugins"))
            .bearer_auth(admin.as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200);
    view["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("{view}"))
        .clone()
}

#[tokio::test]
async fn a_failed_delivery_is_tried_again_with_the_same_event_id() {
    let folder = PluginFolder::new();
    folder.write("rec", "misbehave", &recorder(1));
    let app = spawn_app_with(|s| {
        with_plugins(&folder)(s);
        quick_retries(s);
    })
    .await;
    assert!(
        app.plugins.problems().is_empty(),
        "{:?}",
        app.plugins.problems()
    );
    app.account(AccountKind::Admin, "jane", "secret123").await;
    let caller = app
        .minted_integration("Evented", &["Magento_Sales::sales"])
        .await;
    app.integrations
        .delete(caller.integration_id)
        .await
        .unwrap();

    let seen = wait_for(
        "both events delivered on their second attempt",
        async || {
            let r = recorded(&app).await;
            (r.len() == 2 && r.iter().all(|(_, v)| v.ends_with(" 2;"))).then_some(r)
        },
    )
    .await;
    let mut values: Vec<&str> = seen.iter().map(|(_, v)| v.as_str()).collect();
    values.sort();
    assert_eq!(
        values,
        [
            "integration_deleted 1;integration_deleted 2;",
            "integration_saved 1;integration_saved 2;"
        ]
    );
    // Stable ids: one per event, the same on both attempts.
    assert_ne!(seen[0].0, seen[1].0);
    assert!(seen.iter().all(|(id, _)| id.len() == 36), "{seen:?}");
    let series = |outcome: &str| {
        format!(
            "integration_host_event_deliveries_total{{observer=\"plugin:rec\",outcome=\"{outcome}\"}}"
        )
    };
    assert_eq!(metric(&app, &series("retried")).await, 2);
    assert_eq!(metric(&app, &series("delivered")).await, 2);
    let view = plugin_view(&app, "rec").await;
    assert_eq!(
        view["backlog"],
        json!({"pending": 0, "given_up": 0, "oldest_pending_at": null})
    );
    // Every observer has them: the cleanup deletes them.
    let deleted = integration_host::jobs::Job::EventOutbox
        .run(&app.store, &app.settings)
        .await
        .unwrap();
    assert!(deleted >= 3, "{deleted}");
    // (The admin sign-ins above are events too, taken by no one yet perhaps.)
    let left = integration_host_tests::raw_scalar_i64(
        &app.db,
        "SELECT COUNT(*) FROM event_outbox WHERE name LIKE 'integration%'",
    )
    .await
    .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_delivery_is_given_up_after_its_attempts_and_shown() {
    let folder = PluginFolder::new();
    folder.write("rec", "misbehave", &recorder(1000));
    let app = spawn_app_with(|s| {
        with_plugins(&folder)(s);
        quick_retries(s);
        s.events.max_attempts = 3;
        // Failures do not quarantine it here: every attempt runs.
        s.plugins.quarantine_failures = 0;
    })
    .await;
    app.account(AccountKind::Admin, "jane", "secret123").await;
    let started = Instant::now();
    app.minted_integration("Doomed", &["Magento_Sales::sales"])
        .await;
    let view = wait_for("the delivery given up", async || {
        let v = plugin_view(&app, "rec").await;
        (v["backlog"]["given_up"] == 1).then_some(v)
    })
    .await;
    // Three attempts, 100 ms and 200 ms apart at least.
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(view["backlog"]["pending"], 0);
    let seen = recorded(&app).await;
    assert_eq!(seen.len(), 1);
    assert_eq!(
        seen[0].1,
        "integration_saved 1;integration_saved 2;integration_saved 3;"
    );
    let given_up =
        "integration_host_event_deliveries_total{observer=\"plugin:rec\",outcome=\"given_up\"}";
    assert_eq!(metric(&app, given_up).await, 1);
    // The admin plugins page says so too.
    let browser = integration_host_tests::fresh_client();
    let session =
        integration_host_tests::admin_ui_session(&browser, &app.address, "jane", "secret123").await;
    let page = browser
        .get(app.url("/admin/plugins"))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<dd class=\"backlog\">0 pending; 1 given up</dd>"),
        "{page}"
    );
    // And `plugin list`.
    let plugins = format!("[{:?}]", folder.path().display().to_string());
    let cache = plugin_cache_dir().display().to_string();
    let out = run_binary(
        &app.config_file(),
        &["plugin", "list"],
        "",
        &[
            ("APP_PLUGINS__DIRECTORIES", &plugins),
            ("APP_PLUGINS__CACHE_DIR", &cache),
            ("APP_PLUGINS__GRANTS__REC__KEY_VALUE_QUOTA_KIB", "64"),
        ],
    );
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        integration_host_tests::show(&out)
    );
    assert!(
        listed.contains("  backlog: 0 pending; 1 given up"),
        "{listed}"
    );
}

#[tokio::test]
async fn a_slow_async_observer_never_holds_up_a_request_and_its_backlog_shows() {
    let folder = PluginFolder::new();
    folder.write(
        "slow",
        "misbehave",
        "roles = [\"observer\"]\n[observer]\nevents = [\"*\"]\nmode = \"async\"\n[limits]\ntimeout_ms = 3000\n[config]\nbehaviour = \"loop\"\n",
    );
    let app = spawn_app_with(|s| {
        with_plugins(&folder)(s);
        s.plugins.quarantine_failures = 0;
        s.plugins.max_timeout_ms = 3000;
        s.events.retry_initial_ms = 60_000;
    })
    .await;
    app.account(AccountKind::Admin, "jane", "secret123").await;
    let (_, admin) = app
        .post_json(
            "/rest/V1/integration/admin/token",
            &json!({"username": "jane", "password": "secret123"}),
        )
        .await;
    let admin = admin.as_str().unwrap().to_owned();
    // Each call of the observer loops for its full three seconds: had the changes waited for
    // it, ten would take thirty seconds. (The loop holds one of the machine's cores, so the
    // bound leaves room for a busy machine.)
    let t = Instant::now();
    for i in 0..10 {
        let (status, body) = send_json(
            app.bearer("POST", "/rest/V1/integrations", &admin)
                .json(&json!({"name": format!("Busy {i}")})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
    }
    assert!(
        t.elapsed() < Duration::from_secs(15),
        "the changes waited for the observer: {:?}",
        t.elapsed()
    );
    let view = wait_for("a backlog", async || {
        let v = plugin_view(&app, "slow").await;
        (v["backlog"]["pending"].as_i64().unwrap_or(0) >= 5).then_some(v)
    })
    .await;
    assert!(
        view["backlog"]["oldest_pending_at"].as_i64().is_some(),
        "{view}"
    );
    let t = Instant::now();
    assert_eq!(app.get("/livez").await.status(), 200);
    assert!(t.elapsed() < Duration::from_millis(1500));
}

fn signature(secret: &str, body: &[u8]) -> String {
    use hmac::Mac as _;
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

#[tokio::test]
async fn the_webhook_gets_every_event_signed_after_its_receiver_and_the_server_were_down() {
    const SECRET: &str = "whsec-7d1e0c5a9b3f";
    const URL_TOKEN: &str = "url-token-4c2a8e";
    let receiver = Receiver::start(Answer::Status(204, String::new())).await;
    receiver.down();
    let env = CliEnv::new().await;
    let folder = PluginFolder::new();
    folder.write_raw("webhook-notifier", &sample_manifest("webhook-notifier"));
    let mut text = std::fs::read_to_string(&env.config).unwrap();
    text.push_str(&format!(
        "[events]\nretry_initial_ms = 200\nretry_max_seconds = 1\npoll_ms = 100\n[plugins]\ndirectories = [{:?}]\ncache_dir = {:?}\n[plugins.grants.webhook-notifier]\noutbound_http = [\"http://127.0.0.1:{port}\"]\n[plugins.grants.webhook-notifier.variables]\nwebhook_url = \"http://127.0.0.1:{port}/hook?token={URL_TOKEN}\"\nwebhook_secret = {{ env = \"WEBHOOK_SECRET\" }}\n",
        folder.path().display().to_string(),
        plugin_cache_dir().display().to_string(),
        port = receiver.port,
    ));
    std::fs::write(&env.config, text).unwrap();
    let vars = [("WEBHOOK_SECRET", SECRET)];
    let cli = |args: &[&str]| {
        let out = run_binary(&env.config, args, "secret123\n", &vars);
        assert!(out.status.success(), "{}", show(&out));
        out
    };
    cli(&[
        "admin",
        "create",
        "--username",
        "jane",
        "--email",
        "jane@example.com",
    ]);

    let server = ServerProcess::start(&env.config, &[], &vars);
    let client = integration_host_tests::fresh_client();
    let (status, admin) = send_json(
        client
            .post(server.url("/rest/V1/integration/admin/token"))
            .json(&json!({"username": "jane", "password": "secret123"})),
    )
    .await;
    assert_eq!(status, 200, "{admin}");
    let admin = admin.as_str().unwrap().to_owned();
    let (status, created) = send_json(
        client
            .post(server.url("/rest/V1/integrations"))
            .bearer_auth(&admin)
            .json(&json!({"name": "Hooked", "resources": ["Magento_Sales::sales"]})),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_i64().unwrap();
    let (status, deleted) = send_json(
        client
            .delete(server.url(&format!("/rest/V1/integrations/{id}")))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(
        status,
        200,
        "{deleted} {}",
        server
            .stderr()
            .lines()
            .filter(|l| l.contains("ERROR"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    // A change another process makes while the server runs.
    cli(&["integration", "create", "--name", "From CLI"]);
    // The receiver is down: the deliveries wait, and the plugins page says so.
    let backlog = wait_for("a backlog of three", async || {
        let (_, view) = send_json(
            client
                .get(server.url("/rest/V1/plugins"))
                .bearer_auth(&admin),
        )
        .await;
        let hook = view["plugins"]
            .as_array()?
            .iter()
            .find(|p| p["id"] == "webhook-notifier")?
            .clone();
        (hook["backlog"]["pending"] == 3).then_some(view)
    })
    .await;
    assert_eq!(receiver.connections(), 0);
    let first_logs = format!("{}{}", server.stdout(), server.stderr());
    assert!(server.stop().success());

    // While the server is down, the CLI changes something more; then both come back.
    cli(&["integration", "delete", "From CLI"]);
    receiver.up().await;
    let server = ServerProcess::start(&env.config, &[], &vars);
    let bodies = wait_for("all four events at the receiver", async || {
        let got = receiver.requests();
        let mut ids: Vec<String> = got
            .iter()
            .filter_map(|r| r.json()["event_id"].as_str().map(str::to_owned))
            .collect();
        ids.sort();
        ids.dedup();
        (ids.len() == 4).then_some(got)
    })
    .await;
    let mut seen: Vec<(String, String)> = Vec::new();
    for r in &bodies {
        assert_eq!(r.method, "POST");
        assert_eq!(r.path, format!("/hook?token={URL_TOKEN}"));
        assert_eq!(r.header("content-type"), Some("application/json"));
        assert_eq!(
            r.header("x-signature"),
            Some(signature(SECRET, &r.body).as_str()),
            "signed with the secret"
        );
        let body = r.json();
        assert_eq!(r.header("x-event-id"), body["event_id"].as_str());
        seen.push((
            body["event"].as_str().unwrap().to_owned(),
            body["name"].as_str().unwrap().to_owned(),
        ));
    }
    seen.sort();
    seen.dedup();
    assert_eq!(
        seen,
        [
            ("integration_deleted".to_owned(), "From CLI".to_owned()),
            ("integration_deleted".to_owned(), "Hooked".to_owned()),
            ("integration_saved".to_owned(), "From CLI".to_owned()),
            ("integration_saved".to_owned(), "Hooked".to_owned()),
        ]
    );
    let logs = format!("{first_logs}{}{}", server.stdout(), server.stderr());
    assert!(server.stop().success());
    for (what, bytes) in [
        ("the server's log", logs.into_bytes()),
        ("the plugins API", backlog.to_string().into_bytes()),
    ] {
        for secret in [SECRET, URL_TOKEN] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} appears in {what}"
            );
        }
    }
}
