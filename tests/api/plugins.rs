//! WebAssembly plugins through the real server: the sample plugins doing their jobs, plugins
//! that misbehave on purpose (contained, reported with their id, the server answering
//! meanwhile), broken plugin folders, observer order and vetoes, the async queue, quarantine,
//! and reloading while requests run. Every component is built from source for wasm32-wasip2
//! (`plugin_component`); a missing one fails the test.

use std::time::{Duration, Instant};

use integration_host::domain::AccountKind;
use integration_host_tests::{
    Api, PluginFolder, TestApp, TestDb, plugin_cache_dir as cache_dir, plugin_component,
    run_binary, sample_manifest, sample_manifest_at, send_json, show, spawn_app_with,
    test_settings, with_plugins,
};
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "/rest/V1/integration/admin/token";
const CUSTOMER_TOKEN: &str = "/rest/V1/integration/customer/token";

/// An admin token, from the token service itself: a sign-in through the REST route would be
/// a request the tests' resolvers answer too.
async fn admin_token(app: &TestApp) -> String {
    app.account(AccountKind::Admin, "jane", "secret123").await;
    app.tokens
        .create_admin_access_token(
            Some("jane"),
            Some("secret123"),
            integration_host::services::tokens::ClientInfo {
                address: None,
                user_agent: None,
            },
        )
        .await
        .expect("admin token")
}

async fn plugins_view(app: &TestApp, token: &str) -> Value {
    let (status, body) = send_json(app.bearer("GET", "/rest/V1/plugins", token)).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn plugin<'a>(view: &'a Value, id: &str) -> &'a Value {
    view["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == id)
        .unwrap_or_else(|| panic!("plugin {id} not loaded: {view:#}"))
}

fn logs(view: &Value, id: &str) -> Vec<Value> {
    plugin(view, id)["health"]["recent_logs"]
        .as_array()
        .unwrap()
        .clone()
}

fn field<'a>(record: &'a Value, name: &str) -> Option<&'a str> {
    record["fields"]
        .as_array()?
        .iter()
        .find(|f| f[0] == name)
        .and_then(|f| f[1].as_str())
}

/// Polls `check` every 50 ms for up to `limit`.
async fn eventually<F: AsyncFn() -> bool>(limit: Duration, what: &str, check: F) {
    let start = Instant::now();
    while start.elapsed() < limit {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("not within {limit:?}: {what}");
}

#[tokio::test]
async fn the_login_observer_sees_each_customer_login_and_vetoes_blocked_domains() {
    login_observer(Api::V1_1).await
}

#[tokio::test]
async fn the_login_observer_as_released_with_api_1_0_works_the_same() {
    login_observer(Api::V1_0).await
}

async fn login_observer(api: Api) {
    let folder = PluginFolder::new();
    folder.write_raw("login-audit", &sample_manifest_at("login-audit", api));
    let app = spawn_app_with(with_plugins(&folder)).await;
    let admin = admin_token(&app).await;
    let id = app
        .account(AccountKind::Customer, "jo@shop.example", "secret456")
        .await;
    app.account(AccountKind::Customer, "max@blocked.example", "secret456")
        .await;

    let res = app
        .client
        .post(app.url(CUSTOMER_TOKEN))
        .header("User-Agent", "shop-app/2.0")
        .json(&json!({"username": "jo@shop.example", "password": "secret456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let view = plugins_view(&app, &admin).await;
    let seen = logs(&view, "login-audit");
    let login = seen
        .iter()
        .find(|r| r["message"] == "customer signed in")
        .unwrap_or_else(|| panic!("{seen:#?}"));
    assert_eq!(login["level"], "info");
    assert_eq!(field(login, "customer_id"), Some(id.to_string().as_str()));
    assert_eq!(field(login, "email"), Some("jo@shop.example"));
    assert_eq!(field(login, "name"), Some("Jo Doe"));
    assert_eq!(field(login, "client_address"), Some("127.0.0.1"));
    assert_eq!(field(login, "user_agent"), Some("shop-app/2.0"));
    let at: i64 = field(login, "at").unwrap().parse().unwrap();
    assert!((at - integration_host_tests::unix_now()).abs() <= 5);

    // The manifest blocks blocked.example: the sync observer vetoes, no token is issued.
    let (status, body) = app
        .post_json(
            CUSTOMER_TOKEN,
            &json!({"username": "max@blocked.example", "password": "secret456"}),
        )
        .await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["message"],
        "Sign-in for customers of this email domain is disabled."
    );
    let view = plugins_view(&app, &admin).await;
    assert!(logs(&view, "login-audit").iter().any(|r| r["message"]
        == "customer sign-in refused: blocked email domain"
        && field(r, "email") == Some("max@blocked.example")));
    assert_eq!(plugin(&view, "login-audit")["health"]["failures"], 0);
}

#[tokio::test]
async fn plugins_of_api_1_0_and_1_1_load_side_by_side_and_both_observe() {
    let folder = PluginFolder::new();
    folder.write_raw("login-audit", &sample_manifest_at("login-audit", Api::V1_1));
    folder.write_raw(
        "login-audit-old",
        &sample_manifest_at("login-audit", Api::V1_0)
            .replace("id = \"login-audit\"", "id = \"login-audit-old\""),
    );
    let app = spawn_app_with(with_plugins(&folder)).await;
    let admin = admin_token(&app).await;
    app.account(AccountKind::Customer, "jo@shop.example", "secret456")
        .await;
    let (status, body) = app
        .post_json(
            CUSTOMER_TOKEN,
            &json!({"username": "jo@shop.example", "password": "secret456"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    let view = plugins_view(&app, &admin).await;
    for (id, api) in [("login-audit", "1.1"), ("login-audit-old", "1.0")] {
        assert_eq!(plugin(&view, id)["api_version"], api, "{view:#}");
        assert!(
            logs(&view, id)
                .iter()
                .any(|r| r["message"] == "customer signed in"
                    && field(r, "email") == Some("jo@shop.example")),
            "{id}: {view:#}"
        );
    }
    // A 1.0 manifest names its version; one that disagrees with the component names both.
    folder.write_raw(
        "login-audit-old",
        &sample_manifest_at("login-audit", Api::V1_0)
            .replace("id = \"login-audit\"", "id = \"login-audit-old\"")
            .replace("api_version = \"1.0\"", "api_version = \"1.1\""),
    );
    let (_, body) = send_json(app.bearer("POST", "/rest/V1/plugins/reload", &admin)).await;
    let failed = body["reload"]["problems"].to_string();
    assert!(
        failed.contains("the manifest says 1.1 but the component was built against API 1.0"),
        "{body:#}"
    );
}

#[tokio::test]
async fn the_access_policy_denies_and_allows_integrations_as_configured() {
    access_policy(Api::V1_1).await
}

#[tokio::test]
async fn the_access_policy_as_released_with_api_1_0_works_the_same() {
    access_policy(Api::V1_0).await
}

async fn access_policy(api: Api) {
    let folder = PluginFolder::new();
    let component = api.component("access_policy");
    let manifest = |rule: &str| {
        format!(
            "roles = [\"permission-resolver\"]\n[permission_resolver]\non_error = \"deny\"\n[config.integrations.\"Shop A\"]\n{rule}\n"
        )
    };
    folder.write(
        "access-policy",
        &component,
        &manifest("addresses = [\"10.9.0.0/16\"]"),
    );
    // Reloaded by the requests below only (the poller could take a change first).
    let plugins = with_plugins(&folder);
    let app = spawn_app_with(|s| {
        plugins(s);
        s.plugins.reload_poll_ms = 0;
    })
    .await;
    let admin = admin_token(&app).await;
    let shop_a = app
        .minted_integration("Shop A", &["Magento_Integration::integrations"])
        .await;
    let shop_b = app
        .minted_integration("Shop B", &["Magento_Integration::integrations"])
        .await;

    // From 127.0.0.1, which is not in 10.9.0.0/16: denied although the ACL allows it.
    let (status, body) = send_json(shop_a.request("GET", "/rest/V1/integrations")).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(
        body["message"],
        "The consumer isn't authorized to access %resources."
    );
    // Another integration, and admins, are not concerned.
    assert_eq!(
        send_json(shop_b.request("GET", "/rest/V1/integrations"))
            .await
            .0,
        200
    );
    assert_eq!(
        send_json(app.bearer("GET", "/rest/V1/integrations", &admin))
            .await
            .0,
        200
    );
    let view = plugins_view(&app, &admin).await;
    assert!(
        logs(&view, "access-policy")
            .iter()
            .any(|r| r["message"] == "denied: client address not allowed"
                && field(r, "integration") == Some("Shop A")
                && field(r, "client_address") == Some("127.0.0.1")),
        "{view:#}"
    );

    // The loopback block allows it; the resolver abstains and the ACL decides.
    folder.write(
        "access-policy",
        &component,
        &manifest("addresses = [\"127.0.0.0/8\"]"),
    );
    let (status, body) = send_json(app.bearer("POST", "/rest/V1/plugins/reload", &admin)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["reload"]["reloaded"], json!(["access-policy"]));
    // The component did not change: the reload read it compiled from the cache.
    let view = plugins_view(&app, &admin).await;
    assert_eq!(plugin(&view, "access-policy")["compiled"], "cached");
    assert!(
        std::fs::read_dir(cache_dir()).unwrap().any(|e| e
            .unwrap()
            .path()
            .extension()
            .is_some_and(|x| x == "cwasm"))
    );
    assert_eq!(
        send_json(shop_a.request("GET", "/rest/V1/integrations"))
            .await
            .0,
        200
    );
    // The resolver never widens access: a route the ACL refuses stays refused.
    let (status, _) = send_json(shop_a.request("GET", "/rest/V1/plugins")).await;
    assert_eq!(status, 401);

    // An hour window that excludes the current hour denies.
    let hour = (integration_host_tests::unix_now().rem_euclid(86_400) / 3600) as u8;
    let (from, to) = ((hour + 1) % 24, (hour + 2) % 24);
    folder.write(
        "access-policy",
        &component,
        &manifest(&format!("hours_utc = [{from}, {to}]")),
    );
    send_json(app.bearer("POST", "/rest/V1/plugins/reload", &admin)).await;
    assert_eq!(
        send_json(shop_a.request("GET", "/rest/V1/integrations"))
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn a_provided_integration_appears_changes_and_goes_with_its_provider() {
    provided_integrations(Api::V1_1).await
}

#[tokio::test]
async fn the_config_provider_as_released_with_api_1_0_works_the_same() {
    provided_integrations(Api::V1_0).await
}

async fn provided_integrations(api: Api) {
    let folder = PluginFolder::new();
    folder.write_raw(
        "partner-catalog",
        &sample_manifest_at("partner-catalog", api),
    );
    let app = spawn_app_with(with_plugins(&folder)).await;
    let admin = admin_token(&app).await;
    let found = app
        .integrations
        .find_by_name("Partner: Acme Feeds")
        .await
        .unwrap()
        .expect("the provided integration was created at start");
    assert!(found.is_config());
    assert_eq!(found.email, "feeds@acme.example");
    let resources = app.integrations.selected_resources(found.id).await.unwrap();
    assert!(
        resources.allows(["Magento_Catalog::products"])
            && !resources.allows(["Magento_Sales::sales"]),
        "{resources:?}"
    );
    // Provided integrations are read-only through the API, like definition files'.
    let (status, _) = send_json(app.bearer(
        "DELETE",
        &format!("/rest/V1/integrations/{}", found.id),
        &admin,
    ))
    .await;
    assert_eq!(status, 400);

    // A new tier changes it (reset); the poller reloads by itself.
    let text =
        sample_manifest_at("partner-catalog", api).replace("tier = \"catalog\"", "tier = \"full\"");
    folder.write_raw("partner-catalog", &text);
    eventually(
        Duration::from_secs(10),
        "the provided integration changed",
        async || {
            app.integrations
                .get(found.id)
                .await
                .ok()
                .is_some_and(|i| i.config_hash != found.config_hash)
        },
    )
    .await;
    let now = app.integrations.get(found.id).await.unwrap();
    assert_eq!(now.consumer_id, found.consumer_id, "same consumer, reset");
    assert!(
        app.integrations
            .selected_resources(found.id)
            .await
            .unwrap()
            .allows(["Magento_Sales::sales"]),
        "the full tier grants everything"
    );

    // A broken provider (unknown tier) applies nothing. The sample of API 1.1 ships a config
    // schema, which refuses the tier before the plugin loads (the previous version keeps
    // serving); the one released with 1.0 has none, and fails when it is called.
    folder.write_raw(
        "partner-catalog",
        &text.replace("tier = \"full\"", "tier = \"gold\""),
    );
    let (status, body) = send_json(app.bearer("POST", "/rest/V1/plugins/reload", &admin)).await;
    assert_eq!(status, 200);
    if text.contains("config_schema = ") {
        let problem = &body["reload"]["problems"][0];
        assert!(
            problem["error"]
                .as_str()
                .unwrap()
                .contains("key `config.partners[0].tier`: \"gold\" is not one of"),
            "{body:#}"
        );
        assert_eq!(problem["still_serving"], true, "{body:#}");
        assert_eq!(body["sync"], Value::Null, "{body:#}");
    } else {
        let sync = body["sync"].as_str().unwrap();
        assert!(
            sync.contains("not synced")
                && sync.contains("plugin:partner-catalog")
                && sync.contains("unknown tier `gold`"),
            "{sync}"
        );
    }
    assert!(app.integrations.get(found.id).await.is_ok());

    // Gone from the list: removed.
    folder.write_raw(
        "partner-catalog",
        text.split("[[config.partners]]").next().unwrap(),
    );
    let (_, body) = send_json(app.bearer("POST", "/rest/V1/plugins/reload", &admin)).await;
    // The reload by request, or the poller just before it, synced the removal.
    if !body["sync"].is_null() {
        assert_eq!(
            body["sync"],
            "0 created, 0 updated and reset, 0 unchanged, 1 removed"
        );
    }
    eventually(
        Duration::from_secs(10),
        "the provided integration removed",
        async || {
            app.integrations
                .find_by_name("Partner: Acme Feeds")
                .await
                .is_ok_and(|found| found.is_none())
        },
    )
    .await;
}

/// A configuration file for the command line: the folder's plugins, the tests' compile cache.
fn cli_config(folder: &PluginFolder) -> std::path::PathBuf {
    let config = folder.dir.path().join("config.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[plugins]\ndirectories = [{:?}]\ncache_dir = {:?}\n",
            folder.dir.path().join("data").display().to_string(),
            folder.path().display().to_string(),
            cache_dir().display().to_string()
        ),
    )
    .unwrap();
    config
}

/// Sends requests to /livez while `during` runs and answers the slowest one.
async fn slowest_livez_during<F: Future>(app: &TestApp, during: F) -> (F::Output, Duration) {
    let client = app.client.clone();
    let url = app.url("/livez");
    let done = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = done.clone();
    let probe = tokio::spawn(async move {
        let mut slowest = Duration::ZERO;
        let mut count = 0;
        while !flag.load(std::sync::atomic::Ordering::Relaxed) || count < 5 {
            let t = Instant::now();
            let res = client.get(&url).send().await.expect("livez answers");
            assert_eq!(res.status(), 200);
            slowest = slowest.max(t.elapsed());
            count += 1;
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        (slowest, count)
    });
    let out = during.await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let (slowest, count) = probe.await.unwrap();
    assert!(count >= 5);
    (out, slowest)
}

#[tokio::test]
async fn misbehaving_plugins_are_contained_reported_and_the_server_keeps_answering() {
    let folder = PluginFolder::new();
    let cases = [
        ("loop", "timed out after 100 ms"),
        ("memory", "exceeded its memory limit of 16 MiB"),
        ("panic", "panicked or aborted"),
        ("recursion", "stack overflowed"),
        (
            "huge",
            "answered a deny reason of 4194304 bytes (at most 1024)",
        ),
        ("error", "failed: misbehave was told to fail"),
    ];
    for (behaviour, _) in cases {
        folder.write(
            &format!("bad-{behaviour}"),
            "misbehave",
            &format!(
                "roles = [\"permission-resolver\"]\n[permission_resolver]\non_error = \"abstain\"\n[limits]\nmemory_mib = 16\ntimeout_ms = 100\n[config]\nbehaviour = \"{behaviour}\"\n"
            ),
        );
    }
    let app = spawn_app_with(with_plugins(&folder)).await;
    let admin = admin_token(&app).await;
    assert!(
        app.plugins.problems().is_empty(),
        "{:?}",
        app.plugins.problems()
    );

    // Every request runs every resolver; all fail, abstaining by their policy (they fail open
    // by choice: a resolver fails closed unless its manifest says), so the ACL answers. Meanwhile /livez keeps answering quickly.
    let (statuses, slowest) = slowest_livez_during(&app, async {
        let mut statuses = Vec::new();
        for _ in 0..3 {
            let (s, _) = send_json(app.bearer("GET", "/rest/V1/integrations", &admin)).await;
            statuses.push(s);
        }
        statuses
    })
    .await;
    assert_eq!(statuses, [200, 200, 200]);
    assert!(
        slowest < Duration::from_millis(500),
        "/livez took {slowest:?} while plugins looped"
    );

    let view = plugins_view(&app, &admin).await;
    for (behaviour, error) in cases {
        let p = plugin(&view, &format!("bad-{behaviour}"));
        let failures = p["health"]["recent_failures"].as_array().unwrap();
        // The three requests, and the one that read this view.
        assert_eq!(failures.len(), 4, "{behaviour}: {p:#}");
        let text = failures[0]["error"].as_str().unwrap();
        assert!(text.contains(error), "{behaviour}: {text}");
        assert_eq!(failures[0]["role"], "permission-resolver");
    }
    // The panic message itself is kept.
    let panic = &plugin(&view, "bad-panic")["health"]["recent_failures"][0]["error"];
    assert!(
        panic
            .as_str()
            .unwrap()
            .contains("misbehave was told to panic"),
        "{panic}"
    );
}

#[tokio::test]
async fn a_failing_plugin_is_quarantined_and_a_fail_closed_one_denies() {
    let folder = PluginFolder::new();
    folder.write(
        "flaky",
        "misbehave",
        "roles = [\"permission-resolver\"]\n[permission_resolver]\non_error = \"deny\"\n[config]\nbehaviour = \"error\"\n",
    );
    let app = spawn_app_with(|s| {
        with_plugins(&folder)(s);
        s.plugins.quarantine_failures = 3;
        s.plugins.quarantine_seconds = 300;
    })
    .await;
    let admin = admin_token(&app).await;
    for _ in 0..5 {
        let (status, _) = send_json(app.bearer("GET", "/rest/V1/integrations", &admin)).await;
        assert_eq!(status, 401, "fail closed: a failing resolver denies");
    }
    // Fail closed, the plugin view itself is denied now: read the host directly.
    let health = app.plugins.get("flaky").unwrap().info().health;
    assert_eq!(
        health.failures, 3,
        "calls stop at the quarantine: {health:#?}"
    );
    assert!(health.quarantined_for_seconds.unwrap() > 200);
}

#[tokio::test]
async fn broken_plugin_folders_are_reported_and_the_server_starts_without_them() {
    let folder = PluginFolder::new();
    folder.write_raw("broken-manifest", "id = \"broken\"\nversion = [\n");
    folder.write(
        "wrong-exports",
        "access_policy",
        "roles = [\"observer\"]\n[observer]\nevents = [\"customer_login\"]\n",
    );
    folder.write(
        "old-api",
        "old_api",
        "roles = [\"observer\"]\n[observer]\nevents = [\"customer_login\"]\n",
    );
    folder.write_raw(
        "future-api",
        &format!(
            "id = \"future\"\nversion = \"1\"\napi_version = \"2.0\"\ncomponent = {:?}\nroles = [\"permission-resolver\"]\n",
            plugin_component("misbehave").display().to_string()
        ),
    );
    folder.write_raw(
        "no-component",
        "id = \"ghost\"\nversion = \"1\"\napi_version = \"1.0\"\ncomponent = \"missing.wasm\"\nroles = [\"permission-resolver\"]\n",
    );
    folder.write(
        "good",
        "misbehave",
        "roles = [\"permission-resolver\"]\n[config]\nbehaviour = \"abstain\"\n",
    );
    let app = spawn_app_with(with_plugins(&folder)).await;
    let admin = admin_token(&app).await;
    let view = plugins_view(&app, &admin).await;
    assert_eq!(view["plugins"].as_array().unwrap().len(), 1);
    plugin(&view, "good");
    let problems = view["problems"].as_array().unwrap();
    let find = |dir: &str| {
        problems
            .iter()
            .find(|p| p["dir"].as_str().unwrap().ends_with(dir))
            .unwrap_or_else(|| panic!("{dir} not reported: {problems:#?}"))
    };
    let p = find("broken-manifest");
    assert!(p["error"].as_str().unwrap().contains("line 2"), "{p}");
    let p = find("wrong-exports");
    assert_eq!(p["id"], "wrong-exports");
    assert!(
        p["error"].as_str().unwrap().contains(
            "key `roles`: the manifest lists observer but the component plays permission-resolver (it exports `integration-host:plugin/permission-resolver@1.1.0`)"
        ),
        "{p}"
    );
    let p = find("old-api");
    assert!(
        p["error"].as_str().unwrap().contains(
            "the component was built against API version 0.9, which this server does not support (supported: 1.0, 1.1): it exports `integration-host:plugin/observer@0.9.0`"
        ),
        "{p}"
    );
    let p = find("future-api");
    assert!(
        p["error"].as_str().unwrap().contains(
            "key `api_version`: API version 2.0 is not supported by this server (supported: 1.0, 1.1)"
        ),
        "{p}"
    );
    let p = find("no-component");
    assert_eq!(p["id"], "ghost");
    assert!(
        p["error"]
            .as_str()
            .unwrap()
            .contains("cannot read the component"),
        "{p}"
    );

    // Strict mode refuses to start, naming each.
    let db = TestDb::new().await;
    let mut settings = test_settings(&db);
    with_plugins(&folder)(&mut settings);
    settings.plugins.strict = true;
    let err = integration_host::startup::Application::build(settings)
        .await
        .expect_err("strict mode refuses bad plugins")
        .to_string();
    assert!(
        err.contains("plugins.strict") && err.contains("wrong-exports") && err.contains("ghost"),
        "{err}"
    );
}

#[tokio::test]
async fn observers_run_by_sort_order_then_id_and_a_sync_veto_stops_the_rest() {
    let folder = PluginFolder::new();
    let observer = |order: i32, behaviour: &str, label: &str| {
        format!(
            "roles = [\"observer\"]\nsort_order = {order}\n[observer]\nevents = [\"admin_login\"]\nmode = \"sync\"\n[config]\nbehaviour = \"{behaviour}\"\nlabel = \"{label}\"\n"
        )
    };
    folder.write("obs-b", "misbehave", &observer(10, "proceed", "b"));
    folder.write("obs-a", "misbehave", &observer(10, "proceed", "a"));
    folder.write("obs-c", "misbehave", &observer(5, "proceed", "c"));
    let app = spawn_app_with(with_plugins(&folder)).await;
    let admin = admin_token(&app).await;
    let view = plugins_view(&app, &admin).await;
    let mut seen: Vec<(u64, String)> = ["obs-a", "obs-b", "obs-c"]
        .iter()
        .flat_map(|id| logs(&view, id))
        .map(|r| {
            (
                r["seq"].as_u64().unwrap(),
                field(&r, "label").unwrap().to_owned(),
            )
        })
        .collect();
    seen.sort();
    let order: Vec<&str> = seen.iter().map(|(_, l)| l.as_str()).collect();
    assert_eq!(order, ["c", "a", "b"]);

    // A vetoing observer between them: sign-in refused with its reason, later ones skipped.
    folder.write("obs-veto", "misbehave", &observer(7, "veto", "v"));
    send_json(app.bearer("POST", "/rest/V1/plugins/reload", &admin)).await;
    let (status, body) = app
        .post_json(
            ADMIN_TOKEN,
            &json!({"username": "jane", "password": "secret123"}),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "vetoed by v");
    let view = plugins_view(&app, &admin).await;
    assert_eq!(logs(&view, "obs-c").len(), 2, "before the veto: ran");
    assert_eq!(logs(&view, "obs-a").len(), 1, "after the veto: skipped");

    // A fail-closed observer that fails vetoes too; a fail-open one does not.
    folder.write(
        "obs-veto",
        "misbehave",
        &observer(7, "panic", "p")
            .replace("mode = \"sync\"", "mode = \"sync\"\non_error = \"veto\""),
    );
    send_json(app.bearer("POST", "/rest/V1/plugins/reload", &admin)).await;
    let (status, body) = app
        .post_json(
            ADMIN_TOKEN,
            &json!({"username": "jane", "password": "secret123"}),
        )
        .await;
    assert_eq!(status, 401);
    assert_eq!(
        body["message"],
        "The request was refused because the plugin `obs-veto` failed."
    );
    folder.write("obs-veto", "misbehave", &observer(7, "panic", "p"));
    send_json(app.bearer("POST", "/rest/V1/plugins/reload", &admin)).await;
    let (status, _) = app
        .post_json(
            ADMIN_TOKEN,
            &json!({"username": "jane", "password": "secret123"}),
        )
        .await;
    assert_eq!(status, 200, "fail open: the failure is only reported");
}

#[tokio::test]
async fn replacing_a_plugin_while_requests_run_fails_none() {
    let folder = PluginFolder::new();
    folder.write(
        "policy",
        "misbehave",
        "roles = [\"permission-resolver\"]\n[config]\nbehaviour = \"abstain\"\n",
    );
    let app = spawn_app_with(with_plugins(&folder)).await;
    let admin = admin_token(&app).await;
    let load = {
        let (client, url, admin) = (
            app.client.clone(),
            app.url("/rest/V1/integrations"),
            admin.clone(),
        );
        tokio::spawn(async move {
            let mut statuses = Vec::new();
            let until = Instant::now() + Duration::from_secs(3);
            while Instant::now() < until {
                let batch: Vec<_> = (0..8)
                    .map(|_| {
                        client
                            .get(&url)
                            .header("Authorization", format!("Bearer {admin}"))
                            .send()
                    })
                    .collect();
                for r in futures_util::future::join_all(batch).await {
                    statuses.push(r.map(|r| r.status().as_u16()).unwrap_or(0));
                }
            }
            statuses
        })
    };
    // Version 2 is another component (the sample access policy, which abstains for admins);
    // the poller picks it up within 100 ms.
    tokio::time::sleep(Duration::from_millis(500)).await;
    folder.write_raw(
        "policy",
        &format!(
            "id = \"policy\"\nversion = \"0.2.0\"\napi_version = \"1.1\"\ncomponent = {:?}\nroles = [\"permission-resolver\"]\n",
            plugin_component("access_policy").display().to_string()
        ),
    );
    eventually(Duration::from_secs(5), "version 0.2.0 loaded", async || {
        app.plugins
            .get("policy")
            .is_some_and(|p| p.manifest.version == "0.2.0")
    })
    .await;
    let statuses = load.await.unwrap();
    assert!(statuses.len() > 50, "only {} requests", statuses.len());
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    let view = plugins_view(&app, &admin).await;
    assert_eq!(plugin(&view, "policy")["version"], "0.2.0");
    // Removing the folder unloads it.
    folder.remove("policy");
    eventually(Duration::from_secs(5), "the plugin removed", async || {
        app.plugins.get("policy").is_none()
    })
    .await;
    assert!(!app.plugins.has_resolvers());
}

#[tokio::test]
async fn plugin_check_and_list_from_the_command_line() {
    let folder = PluginFolder::new();
    let good = folder.write_raw("login-audit", &sample_manifest("login-audit"));
    let bad = folder.write(
        "wrong",
        "partner_catalog",
        "roles = [\"permission-resolver\"]\n",
    );
    let config = cli_config(&folder);
    let out = run_binary(
        &config,
        &["plugin", "check", good.to_str().unwrap()],
        "",
        &[],
    );
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("login-audit 0.1.0 (API 1.1) roles: observer"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ok: the plugin loads and starts"),
        "{stdout}"
    );

    let out = run_binary(
        &config,
        &["plugin", "check", bad.to_str().unwrap()],
        "",
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("plugin `wrong`"),
        "{}",
        show(&out)
    );

    let out = run_binary(&config, &["plugin", "list"], "", &[]);
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stdout.contains("login-audit 0.1.0"), "{stdout}");
    assert!(
        stdout.contains("observes (sync): customer_login"),
        "{stdout}"
    );
    assert!(stderr.contains("not loaded: plugin `wrong`"), "{stderr}");

    // An interceptor shows what it intercepts.
    let before = folder.write_raw("endpoint-policy", &sample_manifest("endpoint-policy"));
    let out = run_binary(
        &config,
        &["plugin", "check", before.to_str().unwrap()],
        "",
        &[],
    );
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("endpoint-policy 0.1.0 (API 1.1) roles: before-interceptor")
            && stdout.contains("intercepts before: integration_create, integration_update"),
        "{stdout}"
    );
}

#[tokio::test]
async fn the_sandbox_hides_files_environment_and_clock_unless_granted() {
    let folder = PluginFolder::new();
    let probe = |caps: &str| {
        format!(
            "roles = [\"observer\"]\n{caps}\n[observer]\nevents = [\"admin_login\"]\nmode = \"sync\"\n[config]\nbehaviour = \"probe\"\n"
        )
    };
    folder.write("sealed", "misbehave", &probe(""));
    folder.write("timed", "misbehave", &probe("capabilities = [\"clock\"]"));
    let app = spawn_app_with(|s| {
        with_plugins(&folder)(s);
        s.plugins.grants.insert(
            "timed".into(),
            integration_host::config::PluginGrant {
                clock: true,
                ..Default::default()
            },
        );
    })
    .await;
    assert!(
        app.plugins.problems().is_empty(),
        "{:?}",
        app.plugins.problems()
    );
    let admin = admin_token(&app).await;
    let view = plugins_view(&app, &admin).await;
    let probe_of = |id: &str| {
        logs(&view, id)
            .into_iter()
            .find(|r| r["message"] == "probe")
            .unwrap_or_else(|| panic!("{id} did not probe: {view:#}"))
    };
    let sealed = probe_of("sealed");
    assert_eq!(
        field(&sealed, "now"),
        Some("0"),
        "no clock without the grant"
    );
    assert!(
        field(&sealed, "fs").unwrap().starts_with("refused"),
        "{sealed}"
    );
    assert_eq!(field(&sealed, "env"), Some("0"));
    let timed = probe_of("timed");
    let now: i64 = field(&timed, "now").unwrap().parse().unwrap();
    assert!(
        (now - integration_host_tests::unix_now()).abs() <= 5,
        "{timed}"
    );
    assert!(field(&timed, "fs").unwrap().starts_with("refused"));

    // Asking for a capability the operator did not grant keeps the plugin out.
    folder.write("greedy", "misbehave", &probe("capabilities = [\"clock\"]"));
    let (_, body) = send_json(app.bearer("POST", "/rest/V1/plugins/reload", &admin)).await;
    let problem = body["reload"]["problems"][0]["error"].as_str().unwrap();
    assert!(
        problem.contains("asks for the clock, which plugins.grants.greedy.clock does not grant"),
        "{problem}"
    );
}

#[tokio::test]
async fn an_instance_is_replaced_after_ten_thousand_calls_by_one_started_in_the_background() {
    use integration_host::services::authorization::{
        Decision, PermissionResolvers as _, Principal, RequestFacts,
    };
    let folder = PluginFolder::new();
    folder.write(
        "counter",
        "misbehave",
        "roles = [\"permission-resolver\"]\n[config]\nbehaviour = \"count\"\n",
    );
    let app = spawn_app_with(with_plugins(&folder)).await;
    assert!(
        app.plugins.problems().is_empty(),
        "{:?}",
        app.plugins.problems()
    );
    // One call after another: each finds the same warm instance, which counts its calls.
    let mut seen = Vec::new();
    for _ in 0..12_000 {
        let decision = app
            .plugins
            .decide(
                &Principal::Guest,
                &["anonymous".to_owned()],
                true,
                RequestFacts {
                    method: "GET",
                    path: "/rest/V1/anything",
                    client_address: None,
                },
            )
            .await;
        let Decision::Deny { reason, .. } = decision else {
            panic!("{decision:?}");
        };
        let n: u32 = reason
            .strip_prefix("call ")
            .and_then(|r| r.strip_suffix(" of this instance"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{reason}"));
        seen.push(n);
        if seen.len() == 10_000 {
            // The replacement starts off the request path; the old instance serves meanwhile.
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
    }
    assert_eq!(seen[..10_000], (1..=10_000).collect::<Vec<u32>>()[..]);
    // After its 10,000th call the instance is replaced by a fresh one (its first call is 1),
    // with no call failing in between.
    assert_eq!(seen[10_000], 1, "{:?}", &seen[9_995..10_005]);
    assert_eq!(seen[11_999], 2_000);
    let health = app.plugins.get("counter").unwrap().health().report();
    assert_eq!(health.failures, 0, "{health:?}");
}

#[tokio::test]
async fn a_failing_resolver_denies_by_default_and_recent_denials_are_listed() {
    let folder = PluginFolder::new();
    // No on_error: a permission resolver fails closed.
    folder.write(
        "looping",
        "misbehave",
        "roles = [\"permission-resolver\"]\n[limits]\ntimeout_ms = 100\n[config]\nbehaviour = \"loop\"\n",
    );
    let app = spawn_app_with(with_plugins(&folder)).await;
    let admin = admin_token(&app).await;
    // The ACL allows the admin everything; the resolver fails, so the request is denied.
    let (status, body) = send_json(app.bearer(
        "GET",
        "/rest/V1/integrations?searchCriteria[pageSize]=5",
        &admin,
    ))
    .await;
    assert_eq!(status, 401, "{body}");

    // The effective policy and the denial, as `GET /rest/V1/plugins` shows them (that route
    // is denied too while the resolver fails: read from the host).
    let view = serde_json::to_value(app.plugins.list()).unwrap();
    let looping = &view[0];
    assert_eq!(
        looping["on_error"],
        json!({"permission-resolver": "deny"}),
        "{looping:#}"
    );
    let denials = looping["health"]["recent_denials"].as_array().unwrap();
    assert_eq!(denials.len(), 1, "{looping:#}");
    assert_eq!(denials[0]["method"], "GET");
    // The path without its query; who asked, by name, never a credential.
    assert_eq!(denials[0]["path"], "/rest/V1/integrations");
    let principal = denials[0]["principal"].as_str().unwrap();
    assert!(
        principal.starts_with("admin ") && principal.ends_with(" (jane)"),
        "{principal}"
    );
    assert_eq!(denials[0]["reason"], "failed: timed out after 100 ms");
    assert!(!view.to_string().contains(&admin));

    // `plugin list` shows the policy too.
    let config = cli_config(&folder);
    let out = run_binary(&config, &["plugin", "list"], "", &[]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("  on error: permission-resolver deny"),
        "{}",
        show(&out)
    );

    // A plugin that denies on purpose is listed with its reason as well, through the API.
    folder.write(
        "looping",
        "misbehave",
        "roles = [\"permission-resolver\"]\n[config]\nbehaviour = \"deny\"\nlabel = \"the policy\"\n",
    );
    app.plugins.reload().await;
    let (status, _) = send_json(app.bearer("GET", "/rest/V1/integrations", &admin)).await;
    assert_eq!(status, 401);
    let view = serde_json::to_value(app.plugins.list()).unwrap();
    let denials = view[0]["health"]["recent_denials"].as_array().unwrap();
    assert_eq!(
        denials.last().unwrap()["reason"],
        "denied /rest/V1/integrations by the policy"
    );
}

#[tokio::test]
async fn a_configuration_that_breaks_the_plugins_schema_is_named_by_its_key() {
    let folder = PluginFolder::new();
    // The sample ships config.schema.json: blocked_domains is a list of names.
    let text = sample_manifest("login-audit").replace(
        "blocked_domains = [\"blocked.example\"]",
        "blocked_domains = \"blocked.example\"",
    );
    assert!(text.contains("config_schema = "), "{text}");
    let dir = folder.write_raw("login-audit", &text);
    let config = cli_config(&folder);
    let out = run_binary(
        &config,
        &["plugin", "check", dir.to_str().unwrap()],
        "",
        &[],
    );
    assert_eq!(out.status.code(), Some(1), "{}", show(&out));
    let stderr = String::from_utf8_lossy(&out.stderr);
    // (The test's copy of the manifest names the sample's schema by its full path.)
    assert!(
        stderr.contains(
            "key `config.blocked_domains`: \"blocked.example\" is not of type \"array\" (config_schema "
        ) && stderr.contains("plugins/login-audit/config.schema.json)"),
        "{stderr}"
    );
    // The server leaves it out, saying the same.
    let app = spawn_app_with(with_plugins(&folder)).await;
    let problems = app.plugins.problems();
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].error.contains("key `config.blocked_domains`"),
        "{problems:?}"
    );
    assert!(app.plugins.list().is_empty());
}
