//! Capabilities the operator grants (deny by default): key-value state kept in the database
//! (within a quota, isolated between plugins, across reloads and restarts, shared by two
//! server processes, read and cleared with `plugin kv`), variables (only the ones asked for and
//! granted, their values never shown), and asked and granted side by side.

use integration_host::config::{PluginGrant, Settings, VariableValue};
use integration_host::domain::AccountKind;
use integration_host::startup::Application;
use integration_host_tests::{
    PluginFolder, TestApp, run_binary, send_json, show, spawn_app_with, with_plugins,
};
use serde_json::{Value, json};

const SECRET_GREETING: &str = "hello-from-the-operator-7f3a";
const UNASKED: &str = "never-asked-for-9c1d";

/// A misbehave plugin that keeps state on every admin sign-in.
fn keeper(caps: &str) -> String {
    format!(
        "roles = [\"observer\"]\n{caps}\n[observer]\nevents = [\"admin_login\"]\nmode = \"sync\"\n[config]\nbehaviour = \"state\"\n"
    )
}

fn grant(quota_kib: u64, greeting: &str) -> PluginGrant {
    let mut g = PluginGrant {
        key_value_quota_kib: Some(quota_kib),
        ..Default::default()
    };
    g.variables
        .insert("greeting".into(), VariableValue::new(greeting));
    g.variables
        .insert("unasked".into(), VariableValue::new(UNASKED));
    g
}

fn grants(s: &mut Settings) {
    s.plugins
        .grants
        .insert("keeper".into(), grant(32, SECRET_GREETING));
    s.plugins
        .grants
        .insert("other".into(), grant(32, "the other plugin's greeting"));
}

async fn sign_in(base: &str, client: &reqwest::Client) -> String {
    let (status, body) = send_json(
        client
            .post(format!("{base}/rest/V1/integration/admin/token"))
            .json(&json!({"username": "jane", "password": "secret123"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body.as_str().unwrap().to_owned()
}

fn kv(app: &TestApp, args: &[&str]) -> std::process::Output {
    let config = app.config_file();
    // The operator's configuration names the quota, which `plugin kv list` shows.
    let mut text = std::fs::read_to_string(&config).unwrap();
    text.push_str("[plugins.grants.keeper]\nkey_value_quota_kib = 32\n");
    std::fs::write(&config, text).unwrap();
    let mut all = vec!["plugin", "kv"];
    all.extend_from_slice(args);
    run_binary(&config, &all, "", &[])
}

fn value(app: &TestApp, plugin: &str, key: &str) -> String {
    let out = kv(app, &["get", plugin, key]);
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

#[tokio::test]
async fn key_value_state_and_variables_as_granted() {
    let folder = PluginFolder::new();
    let caps = "[capabilities]\nkey_value = true\nvariables = [\"greeting\"]";
    folder.write("keeper", "misbehave", &keeper(caps));
    folder.write("other", "misbehave", &keeper(caps));
    let app = spawn_app_with(|s| {
        with_plugins(&folder)(s);
        grants(s);
    })
    .await;
    assert!(
        app.plugins.problems().is_empty(),
        "{:?}",
        app.plugins.problems()
    );
    app.account(AccountKind::Admin, "jane", "secret123").await;
    sign_in(&app.address, &integration_host_tests::fresh_client()).await;
    sign_in(&app.address, &integration_host_tests::fresh_client()).await;

    assert_eq!(value(&app, "keeper", "count/admin_login"), "2");
    // The variable it asked for, and not the one it did not, though the grant sets both.
    assert_eq!(value(&app, "keeper", "variable/greeting"), SECRET_GREETING);
    assert_eq!(value(&app, "keeper", "variable/unasked"), "(none)");
    assert_eq!(
        value(&app, "keeper", "answer/too-large"),
        "the value is larger than 65536 bytes"
    );
    assert_eq!(
        value(&app, "keeper", "answer/over-quota"),
        "the key-value quota of 32768 bytes is used up"
    );
    assert_eq!(value(&app, "keeper", "answer/list"), "count/admin_login");
    // Another plugin's namespace, with its own variable.
    assert_eq!(
        value(&app, "other", "variable/greeting"),
        "the other plugin's greeting"
    );
    let out = kv(&app, &["list", "keeper"]);
    assert!(out.status.success(), "{}", show(&out));
    let listed = String::from_utf8_lossy(&out.stdout);
    assert!(
        listed.contains("count/admin_login\t")
            && listed.contains("keeper: 6 keys")
            && listed.contains("of a 32 KiB quota"),
        "{listed}"
    );

    // Asked and granted, side by side, without a value.
    let admin = sign_in(&app.address, &integration_host_tests::fresh_client()).await;
    let (status, view) = send_json(
        integration_host_tests::fresh_client()
            .get(app.url("/rest/V1/plugins"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, 200);
    let keeper_view = view["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "keeper")
        .unwrap();
    assert_eq!(
        keeper_view["asked"],
        json!(["key_value", "variables: greeting"])
    );
    assert_eq!(
        keeper_view["granted"],
        json!(["key_value (32 KiB)", "variables: greeting"])
    );
    let text = view.to_string();
    assert!(!text.contains(SECRET_GREETING) && !text.contains(UNASKED));
    // The admin plugins page shows them too, and no value.
    let session = integration_host_tests::admin_ui_session(
        &integration_host_tests::fresh_client(),
        &app.address,
        "jane",
        "secret123",
    )
    .await;
    let page = integration_host_tests::fresh_client()
        .get(app.url("/admin/plugins"))
        .header("Cookie", &session)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        page.contains("<dd class=\"asked\">key_value; variables: greeting</dd>")
            && page.contains("<dd class=\"granted\">key_value (32 KiB); variables: greeting</dd>"),
        "{page}"
    );
    assert!(!page.contains(SECRET_GREETING) && !page.contains(UNASKED));
    let config = app.config_file();
    let listed = run_binary(&config, &["plugin", "list"], "", &[]);
    let listed_text = show(&listed);
    assert!(!listed_text.contains(SECRET_GREETING), "{listed_text}");

    // A reload keeps the state.
    let (status, _) = send_json(
        integration_host_tests::fresh_client()
            .post(app.url("/rest/V1/plugins/reload"))
            .bearer_auth(&admin),
    )
    .await;
    assert_eq!(status, 200);
    // (The admin UI's sign-in above was a fourth.)
    sign_in(&app.address, &integration_host_tests::fresh_client()).await;
    assert_eq!(value(&app, "keeper", "count/admin_login"), "5");

    // A second server process on the database shares it (and a restart is one).
    let second = Application::build(app.settings.clone()).await.unwrap();
    let base = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped());
    sign_in(&base, &integration_host_tests::fresh_client()).await;
    assert_eq!(value(&app, "keeper", "count/admin_login"), "6");

    // The operator deletes one key, then everything.
    let out = kv(&app, &["delete", "keeper", "count/admin_login"]);
    assert!(out.status.success(), "{}", show(&out));
    let out = kv(&app, &["get", "keeper", "count/admin_login"]);
    assert!(!out.status.success());
    assert!(show(&out).contains("plugin `keeper` has no key `count/admin_login`"));
    let out = kv(&app, &["delete", "keeper", "--all"]);
    assert!(
        show(&out).contains("deleted 5 keys of keeper"),
        "{}",
        show(&out)
    );
    assert_eq!(value(&app, "other", "count/admin_login"), "6");
}

#[tokio::test]
async fn a_plugin_built_against_capabilities_1_0_keeps_working() {
    let folder = PluginFolder::new();
    folder.write(
        "counter",
        "kv_1_0",
        "roles = [\"observer\"]\n[capabilities]\nkey_value = true\n[observer]\nevents = [\"admin_login\"]\nmode = \"sync\"\n",
    );
    let app = spawn_app_with(|s| {
        with_plugins(&folder)(s);
        s.plugins.grants.insert(
            "counter".into(),
            PluginGrant {
                key_value_quota_kib: Some(4),
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
    app.account(AccountKind::Admin, "jane", "secret123").await;
    sign_in(&app.address, &integration_host_tests::fresh_client()).await;
    sign_in(&app.address, &integration_host_tests::fresh_client()).await;
    let config = app.config_file();
    let out = run_binary(
        &config,
        &["plugin", "kv", "get", "counter", "count"],
        "",
        &[],
    );
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "2");
}

#[tokio::test]
async fn asking_for_more_than_the_grant_keeps_a_plugin_out_and_names_the_key() {
    let folder = PluginFolder::new();
    folder.write(
        "greedy",
        "misbehave",
        &keeper("[capabilities]\nkey_value = true"),
    );
    folder.write(
        "curious",
        "misbehave",
        &keeper("[capabilities]\nvariables = [\"webhook_secret\"]"),
    );
    // Granted a state it never asked for: it still has none.
    folder.write("modest", "misbehave", &keeper(""));
    let app = spawn_app_with(|s| {
        with_plugins(&folder)(s);
        s.plugins.grants.insert("modest".into(), grant(8, "hi"));
    })
    .await;
    let problems: Vec<String> = app
        .plugins
        .problems()
        .iter()
        .map(ToString::to_string)
        .collect();
    let text = problems.join("\n");
    assert!(
        text.contains("plugins.grants.greedy.key_value_quota_kib"),
        "{text}"
    );
    assert!(
        text.contains("plugins.grants.curious.variables.webhook_secret"),
        "{text}"
    );
    assert_eq!(problems.len(), 2, "{text}");
    // modest loaded; its calls find key-value state not granted (the event goes on: a failed
    // sync observer is counted, not fatal).
    app.account(AccountKind::Admin, "jane", "secret123").await;
    sign_in(&app.address, &integration_host_tests::fresh_client()).await;
    let out = kv(&app, &["list", "modest"]);
    assert!(show(&out).contains("modest: 0 keys"), "{}", show(&out));
    let health: Value = serde_json::to_value(
        app.plugins
            .list()
            .into_iter()
            .find(|p| p.id == "modest")
            .unwrap()
            .health,
    )
    .unwrap();
    assert!(
        health
            .to_string()
            .contains("key-value state is not granted"),
        "{health}"
    );
}

#[tokio::test]
async fn a_secret_variable_reaches_the_plugin_and_no_log_line() {
    use integration_host_tests::{CliEnv, ServerProcess, plugin_cache_dir};
    const SECRET: &str = "Sup3r-secret-webhook-key-5e8b";
    let env = CliEnv::new().await;
    let folder = PluginFolder::new();
    folder.write(
        "keeper",
        "misbehave",
        &keeper("[capabilities]\nkey_value = true\nvariables = [\"greeting\"]"),
    );
    let mut text = std::fs::read_to_string(&env.config).unwrap();
    text = text.replace("level = \"info\"", "level = \"debug\"");
    text.push_str(&format!(
        "[plugins]\ndirectories = [{:?}]\ncache_dir = {:?}\n[plugins.grants.keeper]\nkey_value_quota_kib = 32\n[plugins.grants.keeper.variables]\ngreeting = {{ env = \"KEEPER_GREETING\" }}\n",
        folder.path().display().to_string(),
        plugin_cache_dir().display().to_string(),
    ));
    std::fs::write(&env.config, text).unwrap();
    let vars = [("KEEPER_GREETING", SECRET)];
    // Without the variable's source, the configuration does not load, and says why.
    let out = env.run(&["config", "check"], "");
    assert!(
        show(&out).contains("environment variable KEEPER_GREETING is not set"),
        "{}",
        show(&out)
    );
    let out = run_binary(
        &env.config,
        &[
            "admin",
            "create",
            "--username",
            "jane",
            "--email",
            "jane@example.com",
        ],
        "secret123\n",
        &vars,
    );
    assert!(out.status.success(), "{}", show(&out));
    let server = ServerProcess::start(&env.config, &[], &vars);
    let base = server.url("");
    let token = sign_in(&base, &integration_host_tests::fresh_client()).await;
    sign_in(&base, &integration_host_tests::fresh_client()).await;
    let (status, view) = send_json(
        integration_host_tests::fresh_client()
            .get(format!("{base}/rest/V1/plugins"))
            .bearer_auth(&token),
    )
    .await;
    assert_eq!(status, 200);
    // The plugin read it (and chose to keep it in its own state).
    let got = run_binary(
        &env.config,
        &["plugin", "kv", "get", "keeper", "variable/greeting"],
        "",
        &vars,
    );
    assert_eq!(String::from_utf8_lossy(&got.stdout).trim(), SECRET);
    let listed = run_binary(&env.config, &["plugin", "list"], "", &vars);
    let checked = run_binary(&env.config, &["config", "check"], "", &vars);
    let logs = format!("{}{}", server.stdout(), server.stderr());
    assert!(server.stop().success());
    let secret = SECRET.as_bytes();
    for (what, bytes) in [
        ("the server's log", logs.as_bytes().to_vec()),
        ("the plugins API", view.to_string().into_bytes()),
        ("plugin list", [listed.stdout, listed.stderr].concat()),
        ("config check", [checked.stdout, checked.stderr].concat()),
    ] {
        assert!(
            !bytes.windows(secret.len()).any(|w| w == secret),
            "the secret variable appears in {what}"
        );
    }
    assert!(logs.contains("request answered"), "the log was captured");
}

#[tokio::test]
async fn writes_at_once_never_take_a_plugin_past_its_quota() {
    use integration_host::services::plugin_state::{KvError, PluginState};
    let app = integration_host_tests::spawn_app().await;
    let kv = PluginState::new(app.store.clone());
    // 20 writers at once, 1,003 bytes each (a key of 3 and a value of 1,000), into 5,000 bytes.
    let writes = (0..20).map(|i| {
        let kv = kv.clone();
        tokio::spawn(async move {
            kv.set("racer", &format!("k{i:02}"), &[b'v'; 1000], 5000)
                .await
        })
    });
    let mut written = 0;
    for w in writes {
        match w.await.unwrap() {
            Ok(()) => written += 1,
            Err(KvError::QuotaExceeded(5000)) => {}
            Err(e) => panic!("a write failed otherwise: {e}"),
        }
    }
    assert_eq!(written, 4);
    let (keys, bytes) = kv.usage("racer").await.unwrap();
    assert_eq!((keys, bytes), (4, 4012));
    // Replacing a value counts it at its new size, not twice.
    let first = kv.keys("racer", "").await.unwrap().remove(0);
    kv.set("racer", &first, &[b'w'; 1000], 5000).await.unwrap();
    assert_eq!(kv.usage("racer").await.unwrap(), (4, 4012));
}
