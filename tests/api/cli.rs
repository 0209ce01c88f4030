//! Account commands run as an operator runs them: the built binary, passwords on standard input.

use integration_host::domain::AccountKind;
use integration_host::services::accounts::AccountService;
use integration_host_tests::{CliEnv, show};

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", show(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn fails(out: &std::process::Output) -> String {
    assert!(!out.status.success(), "expected a failure: {}", show(out));
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn admin_create_list_passwd_disable_enable() {
    let env = CliEnv::new().await;
    let out = env.run(
        &[
            "admin",
            "create",
            "--username",
            "jane",
            "--email",
            "jane@example.com",
            "--firstname",
            "Jane",
            "--lastname",
            "Doe",
        ],
        "s3cret-pass\n",
    );
    assert!(ok(&out).contains("created admin user jane"));

    let accounts = AccountService::new(env.store().await);
    assert!(
        accounts
            .verify(AccountKind::Admin, "jane", "s3cret-pass")
            .await
            .unwrap()
            .is_some(),
        "the password from standard input works"
    );

    let list = ok(&env.run(&["admin", "list"], ""));
    assert!(list.contains("jane") && list.contains("Jane Doe"), "{list}");
    let json = ok(&env.run(&["admin", "list", "--json"], ""));
    let row: serde_json::Value = json
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|v| v["login"] == "jane")
        .expect("jane listed");
    assert_eq!(row["active"], true);
    assert!(
        row.get("password_hash").is_none(),
        "hashes are never listed"
    );

    ok(&env.run(&["admin", "passwd", "jane"], "n3w-password\n"));
    assert!(
        accounts
            .verify(AccountKind::Admin, "jane", "s3cret-pass")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        accounts
            .verify(AccountKind::Admin, "jane", "n3w-password")
            .await
            .unwrap()
            .is_some()
    );

    let out = ok(&env.run(&["admin", "disable", "jane"], ""));
    assert!(out.contains("disabled"));
    assert!(
        accounts
            .verify(AccountKind::Admin, "jane", "n3w-password")
            .await
            .unwrap()
            .is_none(),
        "a disabled admin cannot sign in"
    );
    let jane = accounts.get(AccountKind::Admin, "jane").await.unwrap();
    let store = env.store().await;
    assert!(
        store
            .revoked_before(AccountKind::Admin, jane.id)
            .await
            .unwrap()
            .is_some(),
        "disabling revokes the admin's tokens"
    );
    let json = ok(&env.run(&["admin", "list", "--json"], ""));
    assert!(json.contains(r#""active":false"#), "{json}");

    ok(&env.run(&["admin", "enable", "jane"], ""));
    assert!(
        accounts
            .verify(AccountKind::Admin, "jane", "n3w-password")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn admin_refusals_are_clear() {
    let env = CliEnv::new().await;
    let create = [
        "admin",
        "create",
        "--username",
        "sam",
        "--email",
        "sam@example.com",
    ];
    ok(&env.run(&create, "passw0rd!\n"));

    let err = fails(&env.run(&create, "passw0rd!\n"));
    assert!(err.contains("admin user `sam` already exists"), "{err}");
    // Usernames are unique regardless of case.
    let err = fails(&env.run(
        &[
            "admin",
            "create",
            "--username",
            "SAM",
            "--email",
            "other@example.com",
        ],
        "passw0rd!\n",
    ));
    assert!(err.contains("already exists"), "{err}");

    let err = fails(&env.run(
        &[
            "admin",
            "create",
            "--username",
            "weak",
            "--email",
            "w@example.com",
        ],
        "short\n",
    ));
    assert!(err.contains("at least 7 characters"), "{err}");

    let err = fails(&env.run(
        &[
            "admin",
            "create",
            "--username",
            "nomail",
            "--email",
            "not-an-email",
        ],
        "passw0rd!\n",
    ));
    assert!(err.contains("not a valid email"), "{err}");

    let err = fails(&env.run(
        &[
            "admin",
            "create",
            "--username",
            "empty",
            "--email",
            "e@example.com",
        ],
        "",
    ));
    assert!(err.contains("no password given"), "{err}");

    let err = fails(&env.run(&["admin", "passwd", "ghost"], "passw0rd!\n"));
    assert!(err.contains("admin user `ghost` does not exist"), "{err}");
    let err = fails(&env.run(&["admin", "disable", "ghost"], ""));
    assert!(err.contains("does not exist"), "{err}");

    // There is no way to pass a password as an argument.
    let err = fails(&env.run(
        &[
            "admin",
            "create",
            "--username",
            "x",
            "--email",
            "x@example.com",
            "--password",
            "passw0rd!",
        ],
        "",
    ));
    assert!(err.contains("unexpected argument '--password'"), "{err}");
}

#[tokio::test]
async fn customer_create_list_disable_enable() {
    let env = CliEnv::new().await;
    let out = ok(&env.run(
        &[
            "customer",
            "create",
            "--email",
            "Roni@Example.com",
            "--firstname",
            "Roni",
            "--lastname",
            "Cost",
        ],
        "roni-pass1\r\n",
    ));
    assert!(out.contains("created customer Roni@Example.com"), "{out}");

    let err = fails(&env.run(
        &["customer", "create", "--email", "roni@example.com"],
        "roni-pass1\n",
    ));
    assert!(
        err.contains("already exists"),
        "emails are unique regardless of case: {err}"
    );

    let accounts = AccountService::new(env.store().await);
    // Login by email, case-insensitive; the CRLF of the input is not part of the password.
    assert!(
        accounts
            .verify(AccountKind::Customer, "roni@example.com", "roni-pass1")
            .await
            .unwrap()
            .is_some()
    );

    let list = ok(&env.run(&["customer", "list"], ""));
    assert!(
        list.contains("Roni@Example.com") && list.contains("Roni Cost"),
        "{list}"
    );

    ok(&env.run(&["customer", "disable", "roni@example.com"], ""));
    assert!(
        accounts
            .verify(AccountKind::Customer, "roni@example.com", "roni-pass1")
            .await
            .unwrap()
            .is_none()
    );
    let roni = accounts
        .get(AccountKind::Customer, "roni@example.com")
        .await
        .unwrap();
    assert!(!roni.is_active);
    assert!(
        env.store()
            .await
            .revoked_before(AccountKind::Customer, roni.id)
            .await
            .unwrap()
            .is_some()
    );
    ok(&env.run(&["customer", "enable", "roni@example.com"], ""));
    assert!(
        accounts
            .verify(AccountKind::Customer, "roni@example.com", "roni-pass1")
            .await
            .unwrap()
            .is_some()
    );

    // The same password command as admins have.
    let out = ok(&env.run(
        &["customer", "passwd", "RONI@example.com"],
        "n3w-pass-roni\n",
    ));
    assert!(
        out.contains("password of customer RONI@example.com changed"),
        "{out}"
    );
    assert!(
        accounts
            .verify(AccountKind::Customer, "roni@example.com", "roni-pass1")
            .await
            .unwrap()
            .is_none()
    );
    assert!(
        accounts
            .verify(AccountKind::Customer, "roni@example.com", "n3w-pass-roni")
            .await
            .unwrap()
            .is_some()
    );
    let err = fails(&env.run(&["customer", "passwd", "ghost@example.com"], "passw0rd!\n"));
    assert!(
        err.contains("customer `ghost@example.com` does not exist"),
        "{err}"
    );
}

#[tokio::test]
async fn integration_create_show_activate_reauthorize_delete() {
    let env = CliEnv::new().await;
    let out = ok(&env.run(
        &[
            "integration",
            "create",
            "--name",
            "Shop Sync",
            "--email",
            "ops@partner.example",
        ],
        "",
    ));
    assert!(out.contains("created integration Shop Sync"), "{out}");
    let err = fails(&env.run(&["integration", "create", "--name", "shop sync"], ""));
    assert!(
        err.contains("Integration with name 'shop sync' exists."),
        "{err}"
    );
    let err = fails(&env.run(
        &[
            "integration",
            "create",
            "--name",
            "Bad",
            "--endpoint",
            "ftp://x/",
        ],
        "",
    ));
    assert!(err.contains("must be an http: or https: URL"), "{err}");

    let list = ok(&env.run(&["integration", "list"], ""));
    assert!(
        list.contains("Shop Sync") && list.contains("Inactive"),
        "{list}"
    );

    let out = ok(&env.run(&["integration", "activate", "Shop Sync"], ""));
    assert!(out.contains("is active"), "{out}");
    let err = fails(&env.run(&["integration", "activate", "Shop Sync"], ""));
    assert!(err.contains("already active"), "{err}");

    let shown = ok(&env.run(&["integration", "show", "shop sync"], ""));
    assert!(shown.contains("status:              Active"), "{shown}");
    assert!(shown.contains("consumer key:"), "{shown}");
    assert!(!shown.contains("consumer secret:") && !shown.contains("access token:"));
    let secrets = ok(&env.run(&["integration", "show", "Shop Sync", "--show-secrets"], ""));
    let line = |name: &str| {
        secrets
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().last())
            .unwrap_or_else(|| panic!("{name} missing: {secrets}"))
            .to_owned()
    };
    let first_token = line("access token:");
    assert_eq!(first_token.len(), 32);
    assert_eq!(line("consumer secret:").len(), 32);

    ok(&env.run(&["integration", "reauthorize", "Shop Sync"], ""));
    let again = ok(&env.run(&["integration", "show", "Shop Sync", "--show-secrets"], ""));
    assert!(
        !again.contains(&first_token),
        "reauthorize replaces the access token"
    );
    assert!(
        again.contains(&line("consumer secret:")),
        "reauthorize keeps the consumer secret"
    );

    ok(&env.run(&["integration", "delete", "Shop Sync"], ""));
    let err = fails(&env.run(&["integration", "show", "Shop Sync"], ""));
    assert!(err.contains("does not exist"), "{err}");
}

#[tokio::test]
async fn integration_list_pages_filters_and_goes_through_every_page() {
    let env = CliEnv::new().await;
    for name in ["Shop 1", "Shop 2", "Shop 3", "Market 100%", "Market 1000"] {
        ok(&env.run(&["integration", "create", "--name", name], ""));
    }
    ok(&env.run(&["integration", "activate", "Shop 2"], ""));
    let run = |args: &[&str]| {
        let out = env.run(&[&["integration", "list"], args].concat(), "");
        assert!(out.status.success(), "{}", show(&out));
        (
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let names = |table: &str| -> Vec<String> {
        table
            .lines()
            .skip(1)
            .map(|l| {
                l.split_whitespace()
                    .skip(1)
                    .take(2)
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .collect()
    };
    // By name, a page at a time; where the list stands on standard error.
    let (table, status) = run(&["--page-size", "2"]);
    assert_eq!(names(&table), ["Market 100%", "Market 1000"]);
    assert!(
        status.contains("page 1 of 3 (5 integrations in all); the next with --page 2"),
        "{status}"
    );
    let (table, status) = run(&["--page-size", "2", "--page", "3"]);
    assert_eq!(names(&table), ["Shop 3"]);
    assert!(
        status.contains("page 3 of 3 (5 integrations in all)") && !status.contains("next"),
        "{status}"
    );
    let (table, _) = run(&["--page-size", "2", "--page", "4"]);
    assert_eq!(names(&table), Vec::<String>::new());
    // Names containing a text, `%` taken literally; statuses by label or code.
    let (table, _) = run(&["--name", "100%"]);
    assert_eq!(names(&table), ["Market 100%"]);
    let (table, _) = run(&["--name", "shop", "--status", "inactive,2"]);
    assert_eq!(names(&table), ["Shop 1", "Shop 3"]);
    let (table, _) = run(&["--status", "1"]);
    assert_eq!(names(&table), ["Shop 2"]);
    // Every page, as JSON lines.
    let (lines, _) = run(&["--all", "--page-size", "2", "--json"]);
    let all: Vec<serde_json::Value> = lines
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(all.len(), 5);
    assert_eq!(all[2]["name"], "Shop 1");
    // Refusals: a page size over the maximum, a status that is none.
    let err = fails(&env.run(&["integration", "list", "--page-size", "301"], ""));
    assert!(
        err.contains("Maximum SearchCriteria pageSize is 300"),
        "{err}"
    );
    let err = fails(&env.run(&["integration", "list", "--status", "paused"], ""));
    assert!(
        err.contains("--status") && err.contains("active, inactive, reset"),
        "{err}"
    );
    let err = fails(&env.run(&["integration", "list", "--page", "0"], ""));
    assert!(err.contains("--page"), "{err}");
}

#[tokio::test]
async fn token_revoke_and_account_delete_reach_a_running_server_within_the_cache_bound() {
    use integration_host_tests::{run_binary, send_json, spawn_app};
    use serde_json::json;
    let app = spawn_app().await;
    app.account(AccountKind::Customer, "jo@example.com", "secret456")
        .await;
    app.account(AccountKind::Admin, "jane", "secret123").await;
    let sign_in = |path: &'static str, user: &'static str, pw: &'static str| {
        let app = &app;
        async move {
            let (s, body) = app
                .post_json(path, &json!({"username": user, "password": pw}))
                .await;
            assert_eq!(s, 200, "{body}");
            body.as_str().unwrap().to_owned()
        }
    };
    let customer = sign_in(
        "/rest/V1/integration/customer/token",
        "jo@example.com",
        "secret456",
    )
    .await;
    let admin = sign_in("/rest/V1/integration/admin/token", "jane", "secret123").await;
    let revoke_self = "/rest/V1/integration/customer/revoke-customer-token";
    // Checked once, so that the server holds the customer in its cache.
    let probe = send_json(app.bearer("GET", "/rest/V1/integrations", &admin)).await;
    assert_eq!(probe.0, 200);

    let config = app.config_file();
    // Off the test's runtime: a blocked runtime would let the server close the client's
    // pooled keep-alive connections unseen.
    let cli = |args: &[&str]| {
        let config = config.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_binary(&config, &args, "", &[])
        })
    };
    let out = ok(&cli(&["token", "revoke", "--customer", "Jo@Example.com"])
        .await
        .unwrap());
    assert!(out.contains("every token of Jo@Example.com"), "{out}");
    let deleted = cli(&["admin", "delete", "jane"]).await.unwrap();
    let out = ok(&deleted);
    assert!(
        out.contains("admin user jane") && out.contains("deleted"),
        "{out}"
    );
    // The revocation is in the audit log, as the server's own revocations are.
    let log = String::from_utf8_lossy(&deleted.stderr);
    assert!(
        log.contains("tokens_revoked") && log.contains("deleted"),
        "{log}"
    );

    // Another process wrote the revocation: the server sees it within
    // oauth.credential_cache_seconds (5).
    let started = std::time::Instant::now();
    loop {
        let c = send_json(app.bearer("POST", revoke_self, &customer))
            .await
            .0;
        let a = send_json(app.bearer("GET", "/rest/V1/integrations", &admin))
            .await
            .0;
        if c == 401 && a == 401 {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(6),
            "still accepted after the cache bound"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    // The customer signs in again; the deleted admin cannot.
    sign_in(
        "/rest/V1/integration/customer/token",
        "jo@example.com",
        "secret456",
    )
    .await;
    let (s, _) = app
        .post_json(
            "/rest/V1/integration/admin/token",
            &json!({"username": "jane", "password": "secret123"}),
        )
        .await;
    assert_eq!(s, 401);

    let err = fails(
        &cli(&["token", "revoke", "--customer", "nobody@example.com"])
            .await
            .unwrap(),
    );
    assert!(err.contains("does not exist"), "{err}");
    let err = fails(&cli(&["token", "revoke"]).await.unwrap());
    assert!(err.contains("--admin"), "{err}");
    let err = fails(
        &cli(&["customer", "delete", "nobody@example.com"])
            .await
            .unwrap(),
    );
    assert!(err.contains("does not exist"), "{err}");
}
