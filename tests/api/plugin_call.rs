//! `integration-host plugin call`: each role of the sample plugins called once from the command
//! line with its input as JSON, the answer checked as the server checks it, errors that point at
//! the input's field, a failing call that says what the server would do, key-value state kept
//! in the server's database, and the compile cache under the server's data folder whatever the
//! working folder.

use std::path::Path;

use integration_host_tests::{
    CliEnv, PluginFolder, command, plugin_cache_dir, run_binary, sample_manifest, show,
};
use serde_json::json;

/// `plugin call` with the configuration `config`; stdout, stderr and the exit status.
fn call(config: &Path, args: &[&str], stdin: &str) -> (String, String, bool) {
    let mut all = vec!["plugin", "call"];
    all.extend_from_slice(args);
    let out = run_binary(config, &all, stdin, &[]);
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        out.status.success(),
    )
}

/// A call that succeeds: the answer it printed, as JSON, and everything it printed.
fn answer(config: &Path, dir: &str, input: &str) -> (serde_json::Value, String) {
    let args: Vec<&str> = if input.is_empty() {
        vec![dir]
    } else {
        vec![dir, input]
    };
    let (out, err, ok) = call(config, &args, "");
    assert!(ok, "{out}{err}");
    let text = out
        .split("answer: ")
        .nth(1)
        .and_then(|a| a.split("\ntime: ").next())
        .unwrap_or_else(|| panic!("no answer: {out}"));
    (serde_json::from_str(text).unwrap(), out)
}

/// A configuration with the shared compile cache.
async fn env_with_cache() -> CliEnv {
    let env = CliEnv::new().await;
    let mut text = std::fs::read_to_string(&env.config).unwrap();
    text.push_str(&format!(
        "[plugins]\ncache_dir = {:?}\n",
        plugin_cache_dir().display().to_string()
    ));
    std::fs::write(&env.config, text).unwrap();
    env
}

#[tokio::test]
async fn each_role_is_called_once_with_its_input_as_json() {
    let env = env_with_cache().await;
    let folder = PluginFolder::new();
    let samples = [
        "login-audit",
        "access-policy",
        "partner-catalog",
        "endpoint-policy",
        "tenant-claims",
        "legacy-passwords",
    ];
    for name in samples {
        folder.write_raw(name, &sample_manifest(name));
    }
    let dir = |name: &str| folder.path().join(name).display().to_string();
    let config = &env.config;

    // An observer: the event, its veto and its log line.
    let (out, err, ok) = call(
        config,
        &[
            &dir("login-audit"),
            r#"{"customer-login": {"customer-id": 4, "email": "jo@blocked.example", "firstname": "Jo", "lastname": "Doe", "client-address": "198.51.100.7"}}"#,
        ],
        "",
    );
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(
            "log warn: customer sign-in refused: blocked email domain customer_id=\"4\" email=\"jo@blocked.example\" client_address=\"198.51.100.7\""
        ),
        "{out}"
    );
    assert!(
        out.contains(
            "answer: {\n  \"veto\": \"Sign-in for customers of this email domain is disabled.\"\n}"
        ),
        "{out}"
    );
    assert!(out.contains("\ntime: "), "{out}");
    // The log line is printed once, not also as the server's own log record.
    assert!(!err.contains("customer sign-in refused"), "{err}");
    // An event the manifest does not subscribe to is still called, with a note.
    let (out, _, ok) = call(
        config,
        &[
            &dir("login-audit"),
            r#"{"admin-login": {"admin-id": 1, "username": "jane"}}"#,
        ],
        "",
    );
    assert!(ok, "{out}");
    assert!(out.contains("answer: \"proceed\""), "{out}");
    assert!(
        out.contains("note: the manifest does not name `admin_login` for the observer"),
        "{out}"
    );

    // A permission resolver, its request read from standard input.
    let request = r#"{"principal": {"integration": {"id": 2, "name": "ERP Connector"}}, "resources": ["Magento_Catalog::products"], "acl-allows": true, "method": "GET", "path": "/rest/V1/products", "client-address": "203.0.113.9"}"#;
    let (out, err, ok) = call(config, &[&dir("access-policy"), "-"], request);
    assert!(ok, "{out}{err}");
    assert!(
        out.contains(
            "answer: {\n  \"deny\": \"client address 203.0.113.9 is not allowed for integration ERP Connector\"\n}"
        ),
        "{out}"
    );
    // From an allowed address it abstains (the ACL decides); read from a file this time.
    let file = folder.path().join("request.json");
    std::fs::write(&file, request.replace("203.0.113.9", "127.0.0.1")).unwrap();
    let at_file = format!("@{}", file.display());
    let (out, err, ok) = call(config, &[&dir("access-policy"), &at_file], "");
    assert!(ok, "{out}{err}");
    assert!(out.contains("answer: \"abstain\""), "{out}");

    // A config provider takes no input and answers its integrations.
    let (declared, _) = answer(config, &dir("partner-catalog"), "");
    assert_eq!(declared[0]["name"], "Partner: Acme Feeds");
    assert_eq!(declared[0]["email"], "feeds@acme.example");
    let (_, err, ok) = call(config, &[&dir("partner-catalog"), "{}"], "");
    assert!(!ok);
    assert!(err.contains("a config provider takes no input"), "{err}");

    // A before-interceptor refuses an http endpoint, passes an https one.
    let create = |url: &str| {
        format!(
            r#"{{"integration-create": {{"name": "Shop", "endpoint-url": "{url}", "all-resources": false}}}}"#
        )
    };
    let (refused, _) = answer(
        config,
        &dir("endpoint-policy"),
        &create("http://shop.example/hook"),
    );
    assert_eq!(refused, json!({"refuse": "The endpoint must use https"}));
    let (passed, _) = answer(
        config,
        &dir("endpoint-policy"),
        &create("https://shop.example/hook"),
    );
    assert_eq!(passed, json!("pass"));

    // An after-interceptor adds its claim to an admin token.
    let (added, _) = answer(
        config,
        &dir("tenant-claims"),
        r#"{"admin-token": {"id": 1, "name": "jane"}}"#,
    );
    assert_eq!(
        added,
        json!({"claims": [["tenant", "\"main-store\""]], "headers": []})
    );

    // A credential verifier accepts the listed customer's old password, refuses a wrong one.
    let credentials = |password: &str| {
        format!(
            r#"{{"user-type": "customer", "username": "legacy@example.com", "password": "{password}"}}"#
        )
    };
    let (accepted, _) = answer(
        config,
        &dir("legacy-passwords"),
        &credentials("old-secret-1"),
    );
    assert_eq!(accepted, json!({"accept": "legacy@example.com"}));
    let (refused, out) = answer(
        config,
        &dir("legacy-passwords"),
        &credentials("not-the-1-password"),
    );
    assert!(refused["refuse"].is_string(), "{out}");
    // The password is the plugin's input; it is never printed back.
    assert!(!out.contains("not-the-1-password"), "{out}");
}

#[tokio::test]
async fn bad_input_names_the_field_and_a_failed_call_says_what_the_server_would_do() {
    let env = env_with_cache().await;
    let folder = PluginFolder::new();
    folder.write_raw("login-audit", &sample_manifest("login-audit"));
    let audit = folder.path().join("login-audit").display().to_string();
    let config = &env.config;

    let (_, err, ok) = call(
        config,
        &[&audit, r#"{"customer-login": {"customer-id": "four"}}"#],
        "",
    );
    assert!(!ok);
    assert!(
        err.contains(
            "the input at `customer-login.customer-id`: invalid type: string \"four\", expected i64"
        ),
        "{err}"
    );
    let (_, err, ok) = call(
        config,
        &[
            &audit,
            r#"{"customer-login": {"customer-id": 4, "firstname": "Jo", "lastname": "Doe"}}"#,
        ],
        "",
    );
    assert!(!ok);
    assert!(
        err.contains("the input at `customer-login.email`: missing field `email`"),
        "{err}"
    );
    let (_, err, ok) = call(
        config,
        &[&audit, r#"{"customer-login": {"customer_id": 4}}"#],
        "",
    );
    assert!(!ok);
    assert!(err.contains("unknown field `customer_id`"), "{err}");
    // No input: an example of the role's.
    let (_, err, ok) = call(config, &[&audit], "");
    assert!(!ok);
    assert!(
        err.contains("give the observer its input as JSON, for example:"),
        "{err}"
    );
    assert!(err.contains("\"customer-login\""), "{err}");
    // A role it does not play.
    let (_, err, ok) = call(config, &[&audit, "{}", "--role", "credential-verifier"], "");
    assert!(!ok);
    assert!(
        err.contains(
            "`login-audit` does not play the credential-verifier role (it plays observer)"
        ),
        "{err}"
    );

    // A resolver that loops: the call fails at its deadline, and the server would deny.
    folder.write(
        "looping",
        "misbehave",
        "roles = [\"permission-resolver\"]\n[limits]\ntimeout_ms = 50\n[config]\nbehaviour = \"loop\"\n",
    );
    let request = r#"{"principal": "guest", "resources": ["anonymous"], "acl-allows": true, "method": "GET", "path": "/rest/V1/directory/countries"}"#;
    let looping = folder.path().join("looping").display().to_string();
    let (out, err, ok) = call(config, &[&looping, request], "");
    assert!(!ok, "{out}");
    assert!(out.contains("failed: "), "{out}");
    assert!(out.contains("time: "), "{out}");
    assert!(
        err.contains("the call failed: in the server, the request is denied (on_error = \"deny\")"),
        "{err}"
    );
}

#[tokio::test]
async fn a_plugin_keeps_its_state_in_the_servers_database() {
    let env = env_with_cache().await;
    let mut text = std::fs::read_to_string(&env.config).unwrap();
    text.push_str("[plugins.grants.keeper]\nkey_value_quota_kib = 128\n[plugins.grants.keeper.variables]\ngreeting = \"hello from the operator\"\n");
    std::fs::write(&env.config, text).unwrap();
    let folder = PluginFolder::new();
    folder.write(
        "keeper",
        "misbehave",
        "roles = [\"observer\"]\n[capabilities]\nkey_value = true\nvariables = [\"greeting\"]\n[observer]\nevents = [\"admin_login\"]\nmode = \"sync\"\n[config]\nbehaviour = \"state\"\n",
    );
    let keeper = folder.path().join("keeper").display().to_string();
    let event = r#"{"admin-login": {"admin-id": 1, "username": "jane"}}"#;
    for _ in 0..2 {
        let (out, err, ok) = call(&env.config, &[&keeper, event], "");
        assert!(ok, "{out}{err}");
        assert!(out.contains("answer: \"proceed\""), "{out}");
    }
    let value = |key: &str| {
        let out = run_binary(
            &env.config,
            &["plugin", "kv", "get", "keeper", key],
            "",
            &[],
        );
        assert!(out.status.success(), "{}", show(&out));
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    };
    assert_eq!(value("count/admin_login"), "2");
    assert_eq!(value("variable/greeting"), "hello from the operator");
}

#[tokio::test]
async fn the_compile_cache_is_under_the_servers_data_folder_whatever_the_working_folder() {
    let root = tempfile::tempdir().unwrap();
    let folder = root.path().join("my-plugins");
    std::fs::create_dir_all(folder.join("login-audit")).unwrap();
    std::fs::write(
        folder.join("login-audit/plugin.toml"),
        sample_manifest("login-audit"),
    )
    .unwrap();
    // Relative paths in the configuration file are relative to its folder.
    let config = root.path().join("my-server.toml");
    std::fs::write(
        &config,
        "data_dir = \"my-data\"\n[plugins]\ndirectories = [\"my-plugins\"]\n",
    )
    .unwrap();
    let plugin = folder.join("login-audit");
    // Run from the plugin's own folder, the configuration named by the environment.
    let out = command()
        .current_dir(&plugin)
        .env("INTEGRATION_HOST_CONFIG", &config)
        .args(["plugin", "check", "."])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let cached = std::fs::read_dir(root.path().join("my-data/plugin-cache"))
        .map(|d| d.count())
        .unwrap_or(0);
    assert!(cached > 0, "nothing cached under my-data/plugin-cache");
    assert!(!plugin.join("data").exists());
    assert!(!plugin.join("my-data").exists());
    // `plugin list` from elsewhere finds the same plugin folder and the same cache.
    let out = command()
        .current_dir(&plugin)
        .arg("--config")
        .arg(&config)
        .args(["plugin", "list"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("login-audit 0.1.0"),
        "{}",
        show(&out)
    );
}
