//! Plugins in JavaScript (componentize-js) and Python (componentize-py), built with
//! `integration-host plugin build`: the samples decide as their Rust counterparts do, and plugins
//! that throw, loop or allocate without bound are contained like Rust ones.

use std::time::Duration;

use integration_host::domain::AccountKind;
use integration_host_tests::{
    PluginFolder, TestApp, sample_manifest, send_json, spawn_app_with, with_plugins,
};
use serde_json::{Value, json};

const CUSTOMER_TOKEN: &str = "/rest/V1/integration/customer/token";

/// A request as the admin, on a fresh connection.
fn as_admin(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    admin: &str,
) -> reqwest::RequestBuilder {
    integration_host_tests::fresh_client()
        .request(method, app.url(path))
        .bearer_auth(admin)
}

async fn admin_token(app: &TestApp) -> String {
    app.admin_token().await
}

async fn plugin_view(app: &TestApp, admin: &str, id: &str) -> Value {
    let (status, view) = send_json(as_admin(
        app,
        reqwest::Method::GET,
        "/rest/V1/plugins",
        admin,
    ))
    .await;
    assert_eq!(status, 200);
    view["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("no {id} in {view:#}"))
        .clone()
}

async fn sign_in(app: &TestApp, email: &str) -> (u16, Value) {
    send_json(
        integration_host_tests::fresh_client()
            .post(app.url(CUSTOMER_TOKEN))
            .json(&json!({"username": email, "password": "secret123"})),
    )
    .await
}

#[tokio::test]
async fn the_javascript_and_python_samples_decide_as_the_rust_ones_do() {
    let folder = PluginFolder::new();
    folder.write_raw("login-audit-js", &sample_manifest("login-audit-js"));
    // The Python access policy, told to allow Shop A only from 10.9.0.0/16.
    folder.write(
        "access-policy-py",
        "access_policy_py",
        "roles = [\"permission-resolver\"]\n[permission_resolver]\non_error = \"deny\"\n[limits]\nmemory_mib = 64\n[config.integrations.\"Shop A\"]\naddresses = [\"10.9.0.0/16\"]\n",
    );
    let app = spawn_app_with(with_plugins(&folder)).await;
    assert!(
        app.plugins.problems().is_empty(),
        "{:?}",
        app.plugins.problems()
    );
    let admin = admin_token(&app).await;

    // JavaScript: the same veto as the Rust login-audit, and a log record per sign-in.
    app.account(AccountKind::Customer, "jo@example.com", "secret123")
        .await;
    app.account(AccountKind::Customer, "eve@blocked.example", "secret123")
        .await;
    assert_eq!(sign_in(&app, "jo@example.com").await.0, 200);
    let (status, body) = sign_in(&app, "eve@blocked.example").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["message"],
        "Sign-in for customers of this email domain is disabled."
    );
    let js = plugin_view(&app, &admin, "login-audit-js").await;
    assert_eq!(js["api_version"], "1.1");
    let logs = js["health"]["recent_logs"].as_array().unwrap();
    assert!(
        logs.iter().any(|r| r["message"] == "customer signed in"
            && r["fields"].to_string().contains("jo@example.com")),
        "{js:#}"
    );

    // Python: denied from 127.0.0.1 although the ACL allows it; another integration is not
    // concerned.
    let shop_a = app
        .minted_integration("Shop A", &["Magento_Integration::integrations"])
        .await;
    let shop_b = app
        .minted_integration("Shop B", &["Magento_Integration::integrations"])
        .await;
    let (status, body) = send_json(shop_a.request("GET", "/rest/V1/integrations")).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        send_json(shop_b.request("GET", "/rest/V1/integrations"))
            .await
            .0,
        200
    );
    let py = plugin_view(&app, &admin, "access-policy-py").await;
    assert!(
        py["health"]["recent_logs"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["message"] == "denied: client address not allowed"),
        "{py:#}"
    );
}

#[tokio::test]
async fn javascript_and_python_plugins_that_throw_loop_or_hoard_are_contained() {
    let folder = PluginFolder::new();
    let js = ["throw", "loop", "memory"];
    let py = ["raise", "loop", "memory"];
    for behaviour in js {
        folder.write(
            &format!("js-{behaviour}"),
            "misbehave_js",
            &format!(
                "roles = [\"observer\"]\n[observer]\nevents = [\"customer_login\"]\nmode = \"sync\"\n[limits]\nmemory_mib = 64\ntimeout_ms = 300\n[config]\nbehaviour = \"{behaviour}\"\n"
            ),
        );
    }
    for behaviour in py {
        // Each plugin's memory cap is its manifest's: 128 MiB for the one that hoards, above
        // the 64 the others ask for (the pooling allocator's slots fit plugins.max_memory_mib).
        // (Time enough to fill it on a loaded machine.)
        let (memory, timeout) = if behaviour == "memory" {
            (128, 2000)
        } else {
            (64, 300)
        };
        folder.write(
            &format!("py-{behaviour}"),
            "misbehave_py",
            &format!(
                "roles = [\"permission-resolver\"]\n[permission_resolver]\non_error = \"abstain\"\n[limits]\nmemory_mib = {memory}\ntimeout_ms = {timeout}\n[config]\nbehaviour = \"{behaviour}\"\n"
            ),
        );
    }
    let app = spawn_app_with(with_plugins(&folder)).await;
    assert!(
        app.plugins.problems().is_empty(),
        "{:?}",
        app.plugins.problems()
    );
    let admin = admin_token(&app).await;
    app.account(AccountKind::Customer, "jo@example.com", "secret123")
        .await;

    // Failing observers let the sign-in through (fail open); failing resolvers abstain (their
    // manifests say so), so the ACL answers. The server answers meanwhile.
    let started = std::time::Instant::now();
    assert_eq!(sign_in(&app, "jo@example.com").await.0, 200);
    assert_eq!(
        send_json(as_admin(
            &app,
            reqwest::Method::GET,
            "/rest/V1/integrations",
            &admin
        ))
        .await
        .0,
        200
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    let t = std::time::Instant::now();
    let livez = integration_host_tests::fresh_client()
        .get(app.url("/livez"))
        .send()
        .await
        .unwrap();
    assert_eq!(livez.status(), 200);
    assert!(t.elapsed() < Duration::from_millis(500));

    let expect = [
        // (Built without stdio, a JavaScript exception leaves no message: a trap.)
        ("js-throw", "panicked or aborted"),
        ("js-loop", "timed out after 300 ms"),
        // (SpiderMonkey collects garbage as it nears the cap: 300 ms may run out first.)
        ("js-memory", ""),
        ("py-raise", "misbehave-py was told to raise"),
        ("py-loop", "timed out after 300 ms"),
        ("py-memory", "exceeded its memory limit of 128 MiB"),
    ];
    for (id, error) in expect {
        let p = plugin_view(&app, &admin, id).await;
        let failures = p["health"]["recent_failures"].as_array().unwrap();
        assert!(!failures.is_empty(), "{id}: {p:#}");
        let text = failures[0]["error"].as_str().unwrap();
        assert!(text.contains(error), "{id}: {text}");
    }
    // Fail closed: a Python resolver that raises denies when its manifest says so.
    folder.write(
        "py-raise",
        "misbehave_py",
        "roles = [\"permission-resolver\"]\n[permission_resolver]\non_error = \"deny\"\n[limits]\nmemory_mib = 64\n[config]\nbehaviour = \"raise\"\n",
    );
    let (status, body) = send_json(as_admin(
        &app,
        reqwest::Method::POST,
        "/rest/V1/plugins/reload",
        &admin,
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        send_json(as_admin(
            &app,
            reqwest::Method::GET,
            "/rest/V1/integrations",
            &admin
        ))
        .await
        .0,
        401
    );
}

#[tokio::test]
async fn a_server_serves_while_large_plugins_compile_and_their_roles_follow_their_error_policies() {
    let folder = PluginFolder::new();
    // Both fail closed: while one compiles, its role refuses (the resolver denies every
    // request, the observer vetoes every sign-in).
    folder.write(
        "access-policy-py",
        "access_policy_py",
        "roles = [\"permission-resolver\"]\n[permission_resolver]\non_error = \"deny\"\n[limits]\nmemory_mib = 64\ntimeout_ms = 1000\n[config.integrations.\"Shop A\"]\naddresses = [\"10.9.0.0/16\"]\n",
    );
    folder.write(
        "login-audit-js",
        "login_audit_js",
        "roles = [\"observer\"]\n[observer]\nevents = [\"customer_login\"]\nmode = \"sync\"\non_error = \"veto\"\n[limits]\nmemory_mib = 64\ntimeout_ms = 1000\n[config]\nblocked_domains = [\"blocked.example\"]\n",
    );
    // An empty compile cache: both components compile (seconds each, one after the other, in
    // folder order) after the server listens.
    let cache = tempfile::tempdir().unwrap();
    let db = integration_host_tests::TestDb::new().await;
    let mut settings = integration_host_tests::test_settings(&db);
    with_plugins(&folder)(&mut settings);
    settings.plugins.cache_dir = Some(cache.path().to_owned());
    let app = integration_host_tests::spawn_unsettled(db, settings).await;
    let view = |id: &str| {
        serde_json::to_value(app.plugins.list())
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("no {id}"))
            .clone()
    };
    assert_eq!(
        app.plugins.loading(),
        ["access-policy-py", "login-audit-js"]
    );
    let js = view("login-audit-js");
    assert_eq!(
        (&js["status"], &js["compiled"], &js["roles"]),
        (&json!("loading"), &Value::Null, &json!(["observer"])),
        "{js:#}"
    );
    let (status, ready) =
        send_json(integration_host_tests::fresh_client().get(app.url("/readyz"))).await;
    assert_eq!(status, 200, "{ready}");
    assert_eq!(
        ready,
        json!({"status": "ready", "plugins_loading": ["access-policy-py", "login-audit-js"]})
    );

    // The resolver denies while it loads: even the sign-in's token request, which the ACL
    // lets anyone make.
    app.account(AccountKind::Customer, "jo@example.com", "secret123")
        .await;
    let (status, body) = sign_in(&app, "jo@example.com").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["parameters"]["resources"], "anonymous", "{body}");
    assert_eq!(
        app.plugins.loading().len(),
        2,
        "the Python component compiled before the test could see it loading"
    );

    // The Python resolver serves as soon as it is ready; the JavaScript observer, still
    // compiling, vetoes the sign-in.
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    while app.plugins.loading() != ["login-audit-js"] {
        assert!(
            std::time::Instant::now() < deadline && !app.plugins.loading().is_empty(),
            "{:?}",
            app.plugins.loading()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(view("access-policy-py")["status"], "ready");
    let (status, body) = sign_in(&app, "jo@example.com").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["message"],
        "The request was refused because the plugin `login-audit-js` is still loading."
    );
    assert_eq!(
        app.plugins.loading(),
        ["login-audit-js"],
        "the JavaScript component compiled before the test could see it loading"
    );
    // A call skipped while loading is no failure of the plugin.
    assert_eq!(view("login-audit-js")["health"]["failures"], 0);

    app.plugins.settled().await;
    assert!(
        app.plugins.problems().is_empty(),
        "{:?}",
        app.plugins.problems()
    );
    assert_eq!(sign_in(&app, "jo@example.com").await.0, 200);
    let admin = admin_token(&app).await;
    // Compiled in the background into the cache, and loaded from there.
    let js = plugin_view(&app, &admin, "login-audit-js").await;
    assert_eq!(
        (&js["status"], &js["compiled"]),
        (&json!("ready"), &json!("cached"))
    );
    let (_, ready) =
        send_json(integration_host_tests::fresh_client().get(app.url("/readyz"))).await;
    assert_eq!(ready, json!({"status": "ready"}));
    // Compiled once, into the cache: the next start loads them before it listens.
    assert_eq!(std::fs::read_dir(cache.path()).unwrap().count(), 2);
}
