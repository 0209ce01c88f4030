//! Configuration as an operator meets it: `config check`, `print-default`, environment
//! overrides, `--listen`, and errors that name the key.

use integration_host_tests::{CliEnv, ServerProcess, run_binary, show};

fn check_with(env: &CliEnv, extra: &str, vars: &[(&str, &str)]) -> std::process::Output {
    let mut text = std::fs::read_to_string(&env.config).unwrap();
    text.push_str(extra);
    let path = env.db.dir.path().join("check.toml");
    std::fs::write(&path, text).unwrap();
    run_binary(&path, &["config", "check"], "", vars)
}

fn stderr(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "expected a failure: {}", show(out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_valid_configuration_checks_ok() {
    let env = CliEnv::new().await;
    let out = check_with(&env, "", &[]);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("configuration OK"), "{stdout}");
    assert!(!stdout.contains("secret_keys = "), "keys are not printed");
}

#[tokio::test]
async fn unknown_key_is_named_with_the_file() {
    let env = CliEnv::new().await;
    let path = env.db.dir.path().join("typo.toml");
    std::fs::write(&path, "[server]\nlisten_adress = \"127.0.0.1:0\"\n").unwrap();
    let err = stderr(&run_binary(&path, &["config", "check"], "", &[]));
    assert!(
        err.contains("configuration key `server.listen_adress`"),
        "{err}"
    );
    assert!(err.contains("typo.toml"), "{err}");

    std::fs::write(&path, "colour = \"blue\"\n").unwrap();
    let err = stderr(&run_binary(&path, &["config", "check"], "", &[]));
    assert!(err.contains("configuration key `colour`"), "{err}");
    assert!(err.contains("unknown field"), "{err}");
    assert!(err.contains("typo.toml"), "{err}");
}

#[tokio::test]
async fn unknown_environment_key_is_named_with_its_variable() {
    let env = CliEnv::new().await;
    let err = stderr(&check_with(&env, "", &[("APP_SERVER__LISTN", "0.0.0.0:1")]));
    assert!(err.contains("configuration key `server.listn`"), "{err}");
    assert!(err.contains("APP_SERVER__LISTN"), "{err}");
}

#[tokio::test]
async fn bad_type_is_named() {
    let env = CliEnv::new().await;
    let err = stderr(&check_with(
        &env,
        "",
        &[("APP_DATABASE__POOL_SIZE", "many")],
    ));
    assert!(
        err.contains("configuration key `database.pool_size`"),
        "{err}"
    );
    assert!(err.contains("invalid type"), "{err}");
}

#[tokio::test]
async fn bad_urls_are_named() {
    let env = CliEnv::new().await;
    let err = stderr(&check_with(
        &env,
        "",
        &[("APP_DATABASE__URL", "mysql://db/shop")],
    ));
    assert!(err.contains("configuration key `database.url`"), "{err}");
    assert!(
        err.contains("unsupported database scheme `mysql:`"),
        "{err}"
    );

    let err = stderr(&check_with(
        &env,
        "",
        &[("APP_SERVER__BASE_URL", "shop.example")],
    ));
    assert!(err.contains("configuration key `server.base_url`"), "{err}");

    let err = stderr(&check_with(
        &env,
        "",
        &[("APP_SERVER__LISTEN", "localhost")],
    ));
    assert!(err.contains("configuration key `server.listen`"), "{err}");
}

#[tokio::test]
async fn bad_keys_and_log_levels_are_named_without_echoing_secrets() {
    let env = CliEnv::new().await;
    let err = stderr(&check_with(
        &env,
        "",
        &[("APP_CRYPTO__SECRET_KEYS", r#"["k1:c2hvcnQ="]"#)],
    ));
    assert!(err.contains("crypto.secret_keys"), "{err}");
    assert!(err.contains("at least 32 are needed"), "{err}");

    let err = stderr(&check_with(&env, "", &[("APP_LOG__LEVEL", "loud[")]));
    assert!(err.contains("configuration key `log.level`"), "{err}");
}

#[tokio::test]
async fn postgres_without_keys_is_refused_by_check() {
    let env = CliEnv::new().await;
    let path = env.db.dir.path().join("pg.toml");
    std::fs::write(&path, "[database]\nurl = \"postgres://127.0.0.1:1/ih\"\n").unwrap();
    let err = stderr(&run_binary(&path, &["config", "check"], "", &[]));
    assert!(err.contains("crypto.secret_keys"), "{err}");
    assert!(err.contains("generate-key"), "{err}");
}

#[tokio::test]
async fn print_default_is_a_valid_configuration_and_generate_key_is_usable() {
    let env = CliEnv::new().await;
    let out = run_binary(&env.config, &["config", "print-default"], "", &[]);
    assert!(out.status.success(), "{}", show(&out));
    let template = String::from_utf8(out.stdout).unwrap();
    assert!(template.contains("[database]") && template.contains("# url = "));
    let path = env.db.dir.path().join("default.toml");
    std::fs::write(&path, &template).unwrap();
    let out = run_binary(&path, &["config", "check"], "", &[]);
    assert!(out.status.success(), "{}", show(&out));

    let out = run_binary(&env.config, &["config", "generate-key", "k2"], "", &[]);
    assert!(out.status.success(), "{}", show(&out));
    let key = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(key.starts_with("k2:"));
    let out = check_with(
        &env,
        "",
        &[("APP_CRYPTO__SECRET_KEYS", &format!(r#"["{key}"]"#))],
    );
    assert!(out.status.success(), "{}", show(&out));
}

#[tokio::test]
async fn listen_flag_wins_over_environment_and_file() {
    let env = CliEnv::new().await;
    // The environment names a port that cannot be bound; the flag overrides it.
    let server = ServerProcess::start(
        &env.config,
        &["--listen", "127.0.0.1:0"],
        &[("APP_SERVER__LISTEN", "192.0.2.1:1")],
    );
    let res = reqwest::get(server.url("/livez")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(server.stop().success());
}

#[tokio::test]
async fn check_finds_every_broken_file_with_its_file_and_key() {
    use integration_host_tests::PluginFolder;
    let env = CliEnv::new().await;
    let dir = env.db.dir.path();
    // A route table that is not TOML, one naming an unknown resource, and a good one.
    let broken = dir.join("broken-routes.toml");
    std::fs::write(&broken, "[[route]\nmethod = \"GET\"\n").unwrap();
    let unknown = dir.join("unknown-routes.toml");
    std::fs::write(
        &unknown,
        "[[route]]\nmethod = \"GET\"\npath = \"/shop/x\"\nresources = [\"Magento_Nope::x\"]\n",
    )
    .unwrap();
    // A definition folder with an entry lacking its name.
    let defs = dir.join("integrations");
    std::fs::create_dir_all(&defs).unwrap();
    std::fs::write(
        defs.join("partner.toml"),
        "[[integration]]\nemail = \"ops@partner.example\"\n",
    )
    .unwrap();
    // A plugin asking for a capability it is not granted, and one whose manifest is broken.
    let plugins = PluginFolder::new();
    plugins.write(
        "greedy",
        "misbehave",
        "roles = [\"observer\"]\ncapabilities = [\"clock\"]\n[observer]\nevents = [\"admin_login\"]\nmode = \"sync\"\n",
    );
    plugins.write_raw("mangled", "id = \"mangled\"\nversion = \n");
    let extra = format!(
        "[webapi]\nroutes_files = [{:?}, {:?}]\n[integrations]\ndirectories = [{:?}]\n[plugins]\ndirectories = [{:?}]\n",
        broken.display().to_string(),
        unknown.display().to_string(),
        defs.display().to_string(),
        plugins.path().display().to_string(),
    );
    let err = stderr(&check_with(&env, &extra, &[]));
    assert!(
        err.contains("broken-routes.toml") && err.contains("line 1"),
        "the TOML error names its file and line:\n{err}"
    );
    assert!(
        err.contains("unknown-routes.toml")
            && err.contains("route[0].resources")
            && err.contains("Magento_Nope::x"),
        "the unknown resource is named with its file and key:\n{err}"
    );
    assert!(
        err.contains("partner.toml") && err.contains("integration[0].name"),
        "{err}"
    );
    assert!(
        err.contains("asks for the clock, which plugins.grants.greedy.clock does not grant"),
        "{err}"
    );
    assert!(err.contains("mangled"), "{err}");
    assert!(err.contains("the configuration has 5 problem(s)"), "{err}");

    // The same files fixed check OK, and the summary says what was checked.
    std::fs::write(
        &broken,
        "[[route]]\nmethod = \"GET\"\npath = \"/shop/y\"\nresources = [\"self\"]\n",
    )
    .unwrap();
    std::fs::write(
        &unknown,
        "[[route]]\nmethod = \"GET\"\npath = \"/shop/x\"\nresources = [\"Magento_Integration::integrations\"]\n",
    )
    .unwrap();
    std::fs::write(
        defs.join("partner.toml"),
        "[[integration]]\nname = \"Partner\"\nemail = \"ops@partner.example\"\n",
    )
    .unwrap();
    plugins.remove("mangled");
    let granted = format!("{extra}[plugins.grants]\ngreedy = [\"clock\"]\n");
    let out = check_with(&env, &granted, &[]);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("plugins: 1 loaded"), "{stdout}");
}

#[tokio::test]
async fn check_reaches_the_database_unless_offline() {
    let env = CliEnv::new().await;
    // An existing database answers.
    assert!(env.run(&["migrate"], "").status.success());
    let out = check_with(&env, "", &[]);
    assert!(out.status.success(), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("(answers)"));
    // A PostgreSQL server that is not there.
    let unreachable = [
        ("APP_DATABASE__URL", "postgres://ih@127.0.0.1:1/ih"),
        ("APP_DATABASE__ACQUIRE_TIMEOUT_SECONDS", "1"),
        (
            "APP_CRYPTO__SECRET_KEYS",
            r#"["k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]"#,
        ),
        (
            "APP_CRYPTO__LOOKUP_KEY",
            "lookup:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ),
        (
            "APP_TOKENS__SIGNING_KEYS",
            r#"["t1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="]"#,
        ),
    ];
    let err = stderr(&check_with(&env, "", &unreachable));
    assert!(
        err.contains("configuration key `database.url`") && err.contains("127.0.0.1:1"),
        "{err}"
    );
    let path = env.db.dir.path().join("check.toml");
    let out = run_binary(&path, &["config", "check", "--offline"], "", &unreachable);
    assert!(out.status.success(), "{}", show(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("not checked (--offline)"));
}
