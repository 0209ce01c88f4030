//! `integration-host import magento` against a real MariaDB holding Magento 2.4's tables
//! (`tests/magento/tables.sql`), with secrets and password hashes made in Magento's formats by
//! an implementation of their own (`tests/clients/python/magento_crypto.py`: Python's
//! `cryptography` and `argon2-cffi`); then integrators' old credentials sign requests through
//! requests-oauthlib, and imported accounts sign in with their old passwords.

use std::path::{Path, PathBuf};

use integration_host::domain::{AccountKind, SetupType};
use integration_host::services::integration::{IntegrationForm, IntegrationInput};
use integration_host_tests::{
    MariaDb, TestApp, fresh_client, run_binary, send_json, show, spawn_app,
};
use serde_json::{Value, json};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn python() -> std::process::Command {
    let python = workspace().join("target/test-clients/venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: run scripts/test, which installs tests/clients/python/requirements.txt into it",
        python.display()
    );
    std::process::Command::new(python)
}

/// Magento's crypt/key: an old key (version 0) and the current one, written `base64…`.
const OLD_KEY: &str = "0ld-k3y-0ld-k3y-0ld-k3y-0ld-k3y!";
const NEW_KEY: &str = "base64AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
/// A key the store does not have: values encrypted with it do not decrypt.
const FOREIGN_KEY: &str = "f0reign-key-f0reign-key-f0reign!";

const ERP_KEY: &str = "erpkey0123456789abcdef0123456789";
const ERP_SECRET: &str = "erpsecret0123456789abcdef0123456";
const ERP_TOKEN: &str = "erptoken0123456789abcdef01234567";
const ERP_TOKEN_SECRET: &str = "erptokensecret0123456789abcdef01";
const ALL_KEY: &str = "allkey0123456789abcdef0123456789";
const ALL_SECRET: &str = "allsecret0123456789abcdef0123456";
const ALL_TOKEN: &str = "alltoken0123456789abcdef01234567";
const ALL_TOKEN_SECRET: &str = "alltokensecret0123456789abcdef01";

/// Encrypts `(key version, text)` pairs and hashes `(password, salt, versions)` triples in
/// Magento's formats, with Python.
fn magento_values(
    keys: &[&str],
    encrypt: &[(usize, &str)],
    hash: &[(&str, &str, &str)],
) -> (Vec<String>, Vec<String>) {
    use std::io::Write as _;
    let request = json!({
        "keys": keys,
        "encrypt": encrypt.iter().map(|(v, p)| json!({"version": v, "plain": p})).collect::<Vec<_>>(),
        "hash": hash.iter().map(|(p, s, v)| json!({"password": p, "salt": s, "versions": v})).collect::<Vec<_>>(),
    });
    let mut child = python()
        .arg(workspace().join("tests/clients/python/magento_crypto.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python runs");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(request.to_string().as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let strings = |k: &str| {
        v[k].as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_owned())
            .collect()
    };
    (strings("encrypted"), strings("hashes"))
}

/// Magento's tables (prefix `mg_`) with six integrations, one admin user and three customers.
fn magento_store() -> MariaDb {
    let db = MariaDb::start();
    let tables = std::fs::read_to_string(workspace().join("tests/magento/tables.sql")).unwrap();
    db.sql(&tables.replace("PREFIX_", "mg_"));
    let (enc, hashes) = magento_values(
        &[OLD_KEY, NEW_KEY, FOREIGN_KEY],
        &[
            (1, ERP_SECRET),
            (0, ERP_TOKEN_SECRET),
            (0, ALL_SECRET),
            (1, ALL_TOKEN_SECRET),
            (2, "wrongkeysecret0123456789abcdef01"),
            (1, "configsecret0123456789abcdef0123"),
            (1, "madeheresecret0123456789abcdef01"),
            (1, "revokedsecret0123456789abcdef012"),
        ],
        &[
            ("Admin-pass-1", "saltsaltsaltsaltEXTRA", "3_32_2_8388608"),
            ("Shopper-pass-1", "abc", "1"),
            ("Legacy-pass-1", "s4lt", "0:3_32_2_8388608"),
        ],
    );
    // Encrypted with a key the store does not hold, labelled as its key 0.
    let wrong_key = enc[4].replacen("2:3:", "0:3:", 1);
    db.sql(&format!(
        "INSERT INTO mg_oauth_consumer (entity_id, name, `key`, secret, callback_url, rejected_callback_url) VALUES
           (11, 'Integration1', '{ERP_KEY}', '{erp}', 'https://erp.example/endpoint', ''),
           (12, 'Integration2', '{ALL_KEY}', '{all}', NULL, ''),
           (13, 'Integration3', 'wrongkey0123456789abcdef01234567', '{wrong_key}', NULL, ''),
           (14, 'Integration4', 'oldcipher0123456789abcdef0123456', '0:2:c29tZSBtY3J5cHQgYnl0ZXM=', NULL, ''),
           (15, 'Integration5', 'madehere0123456789abcdef01234567', '{made}', NULL, ''),
           (16, 'Integration6', 'config0123456789abcdef0123456789', '{config}', NULL, '');
         INSERT INTO mg_integration (integration_id, name, email, endpoint, status, consumer_id, setup_type, identity_link_url) VALUES
           (1, 'ERP Connector', 'erp@example.com', 'https://erp.example/endpoint', 1, 11, 0, NULL),
           (2, 'All Access', 'all@example.com', NULL, 1, 12, 0, 'https://all.example/link'),
           (3, 'Wrong Key', 'w@example.com', NULL, 0, 13, 0, NULL),
           (4, 'Old Cipher', 'o@example.com', NULL, 0, 14, 0, NULL),
           (5, 'Made Here', 'm@example.com', NULL, 0, 15, 0, NULL),
           (6, 'Config One', 'c@example.com', NULL, 0, 16, 1, NULL);
         INSERT INTO mg_oauth_token (consumer_id, type, token, secret, callback_url, revoked, authorized, user_type) VALUES
           (11, 'access', 'erprevoked0123456789abcdef012345', '{revoked}', 'oob', 1, 1, 1),
           (11, 'access', '{ERP_TOKEN}', '{erp_token}', 'oob', 0, 1, 1),
           (12, 'access', '{ALL_TOKEN}', '{all_token}', 'oob', 0, 1, 1);
         INSERT INTO mg_authorization_role (role_id, parent_id, tree_level, role_type, user_id, user_type, role_name) VALUES
           (1, 0, 1, 'G', 0, '2', 'Administrators'),
           (21, 0, 1, 'U', 1, '1', '1'),
           (22, 0, 1, 'U', 2, '1', '2');
         INSERT INTO mg_authorization_rule (role_id, resource_id, privileges, permission) VALUES
           (21, 'Magento_Backend::admin', NULL, 'allow'),
           (21, 'Magento_Integration::extensions', NULL, 'allow'),
           (21, 'Magento_Integration::integrations', NULL, 'allow'),
           (21, 'Magento_Catalog::catalog', NULL, 'deny'),
           (21, 'Vendor_Legacy::feed', NULL, 'allow'),
           (22, 'Magento_Backend::all', NULL, 'allow');
         INSERT INTO mg_admin_user (user_id, firstname, lastname, email, username, password, is_active) VALUES
           (1, 'Olga', 'Admin', 'olga@example.com', 'olga', '{admin_hash}', 1);
         INSERT INTO mg_customer_entity (entity_id, website_id, email, firstname, lastname, password_hash, is_active) VALUES
           (1, 1, 'shopper@example.com', 'Sam', 'Shopper', '{shopper_hash}', 1),
           (2, 1, 'legacy@example.com', 'Lee', 'Gacy', '{legacy_hash}', 1),
           (3, 1, 'broken@example.com', 'Bro', 'Ken', 'not-a-magento-hash', 1);",
        erp = enc[0],
        erp_token = enc[1],
        all = enc[2],
        all_token = enc[3],
        config = enc[5],
        made = enc[6],
        revoked = enc[7],
        admin_hash = hashes[0],
        shopper_hash = hashes[1],
        legacy_hash = hashes[2],
    ));
    db
}

fn import(app: &TestApp, db: &MariaDb, env_php: &Path, more: &[&str]) -> String {
    let url = db.url();
    let env = env_php.to_str().unwrap();
    let mut args = vec![
        "import",
        "magento",
        "--database-url",
        &url,
        "--env-php",
        env,
        "--with-accounts",
    ];
    args.extend(more);
    let out = run_binary(&app.config_file(), &args, "", &[]);
    assert!(out.status.success(), "{}", show(&out));
    String::from_utf8(out.stdout).unwrap()
}

fn counts_line(stdout: &str, what: &str) -> String {
    stdout
        .lines()
        .find(|l| l.starts_with(what))
        .unwrap_or_else(|| panic!("no `{what}` line in:\n{stdout}"))
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// One signed GET with old credentials, through requests-oauthlib.
fn signed_get(app: &TestApp, path: &str, creds: [&str; 4]) -> Value {
    let out = python()
        .arg(workspace().join("tests/clients/python/signed_get.py"))
        .arg(app.url(path))
        .args(creds)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_magento_store_s_integrations_and_accounts_keep_their_credentials() {
    let app = spawn_app().await;
    let made_here = app
        .integrations
        .create(
            IntegrationInput::parse(
                &IntegrationForm {
                    name: "Made Here".into(),
                    ..Default::default()
                },
                SetupType::Manual,
            )
            .unwrap(),
        )
        .await
        .unwrap();
    let db = magento_store();
    let dir = tempfile::tempdir().unwrap();
    let env_php = dir.path().join("env.php");
    std::fs::write(
        &env_php,
        format!(
            "<?php\nreturn [\n    'crypt' => [\n        'key' => '{OLD_KEY}\n{NEW_KEY}'\n    ],\n    'db' => [\n        'table_prefix' => 'mg_',\n        'connection' => ['default' => ['host' => '127.0.0.1', 'dbname' => 'magento']]\n    ],\n];\n"
        ),
    )
    .unwrap();

    // A dry run reports and changes nothing.
    let dry = import(&app, &db, &env_php, &["--dry-run"]);
    assert_eq!(
        counts_line(&dry, "integrations"),
        "integrations 3 imported 0 updated 0 unchanged 3 skipped",
        "{dry}"
    );
    assert!(dry.contains("dry run: nothing was changed"), "{dry}");
    assert_eq!(app.integrations.list().await.unwrap().len(), 1);

    let first = import(&app, &db, &env_php, &[]);
    assert_eq!(
        counts_line(&first, "integrations"),
        "integrations 3 imported 0 updated 0 unchanged 3 skipped",
        "{first}"
    );
    assert_eq!(
        counts_line(&first, "admin users"),
        "admin users 1 imported 0 updated 0 unchanged 0 skipped"
    );
    assert_eq!(
        counts_line(&first, "customers"),
        "customers 2 imported 0 updated 0 unchanged 1 skipped"
    );
    for expected in [
        "note: integration 1 `ERP Connector`: resource `Vendor_Legacy::feed` is not in this server's ACL tree; dropped from its grants",
        "note: integration 6 `Config One`: a config integration in Magento, but no definition file here declares it; imported as a manual integration",
        "skipped: integration 3 `Wrong Key`: the consumer secret: the value does not decrypt with key version 0",
        "skipped: integration 4 `Old Cipher`: the consumer secret: the value is encrypted with cipher version 2 (mcrypt)",
        &format!(
            "skipped: integration 5 `Made Here`: an integration with this name was made here (id {})",
            made_here.id
        ),
        "skipped: customer 3 `broken@example.com`: the password hash is not `hash:salt:version`",
    ] {
        assert!(
            first.contains(expected),
            "missing {expected:?} in:\n{first}"
        );
    }
    // No secret is printed.
    for secret in [ERP_SECRET, ERP_TOKEN_SECRET, ALL_SECRET, ALL_TOKEN] {
        assert!(!first.contains(secret));
    }

    let erp = app
        .integrations
        .find_by_name("ERP Connector")
        .await
        .unwrap()
        .expect("imported");
    assert_eq!(erp.endpoint, "https://erp.example/endpoint");
    assert_eq!(erp.status.code(), 1);
    let mut rules = app.store.integration_rules(erp.id).await.unwrap();
    rules.sort();
    assert_eq!(
        rules,
        [
            "Magento_Backend::admin",
            "Magento_Backend::system",
            "Magento_Integration::extensions",
            "Magento_Integration::integrations"
        ],
        "the allowed resources this tree knows, with their ancestors here"
    );
    let config_one = app
        .integrations
        .find_by_name("Config One")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(config_one.setup_type, SetupType::Manual);

    // The integrators' old credentials sign requests that succeed, unchanged.
    let listed = signed_get(
        &app,
        "/rest/V1/integrations",
        [ERP_KEY, ERP_SECRET, ERP_TOKEN, ERP_TOKEN_SECRET],
    );
    assert_eq!(listed["status"], 200, "{listed}");
    let me = signed_get(
        &app,
        "/rest/V1/integrations/me",
        [ALL_KEY, ALL_SECRET, ALL_TOKEN, ALL_TOKEN_SECRET],
    );
    assert_eq!(me["status"], 200, "{me}");
    assert_eq!(me["body"]["name"], "All Access", "{me}");
    // A wrong secret is still refused.
    let forged = signed_get(
        &app,
        "/rest/V1/integrations/me",
        [ALL_KEY, ERP_SECRET, ALL_TOKEN, ALL_TOKEN_SECRET],
    );
    assert_eq!(forged["status"], 401, "{forged}");

    // A second run duplicates nothing; a change in Magento is carried over.
    let second = import(&app, &db, &env_php, &[]);
    assert_eq!(
        counts_line(&second, "integrations"),
        "integrations 0 imported 0 updated 3 unchanged 3 skipped",
        "{second}"
    );
    assert_eq!(
        counts_line(&second, "customers"),
        "customers 0 imported 0 updated 2 unchanged 1 skipped"
    );
    db.sql(
        "UPDATE mg_integration SET endpoint = 'https://all.example/v2' WHERE integration_id = 2;",
    );
    let third = import(&app, &db, &env_php, &[]);
    assert_eq!(
        counts_line(&third, "integrations"),
        "integrations 0 imported 1 updated 2 unchanged 3 skipped",
        "{third}"
    );
    assert_eq!(app.integrations.list().await.unwrap().len(), 4);
    let me = signed_get(
        &app,
        "/rest/V1/integrations/me",
        [ALL_KEY, ALL_SECRET, ALL_TOKEN, ALL_TOKEN_SECRET],
    );
    assert_eq!(me["status"], 200, "{me}");

    // Accounts sign in with their Magento passwords; the hash is replaced by this server's.
    for (route, login, password, kind) in [
        (
            "/rest/V1/integration/customer/token",
            "shopper@example.com",
            "Shopper-pass-1",
            AccountKind::Customer,
        ),
        (
            "/rest/V1/integration/customer/token",
            "legacy@example.com",
            "Legacy-pass-1",
            AccountKind::Customer,
        ),
        (
            "/rest/V1/integration/admin/token",
            "olga",
            "Admin-pass-1",
            AccountKind::Admin,
        ),
    ] {
        let (status, body) = send_json(
            fresh_client()
                .post(app.url(route))
                .json(&json!({"username": login, "password": format!("{password}x")})),
        )
        .await;
        assert_eq!(status, 401, "{login} with a wrong password: {body}");
        let (status, body) = send_json(
            fresh_client()
                .post(app.url(route))
                .json(&json!({"username": login, "password": password})),
        )
        .await;
        assert_eq!(status, 200, "{login}: {body}");
        let account = app.store.find_account(kind, login).await.unwrap().unwrap();
        assert!(
            account.password_hash.starts_with("$argon2id$"),
            "{login}: {}",
            account.password_hash
        );
    }
    // Signed in here since: a later import leaves them alone.
    let fourth = import(&app, &db, &env_php, &[]);
    assert_eq!(
        counts_line(&fourth, "customers"),
        "customers 0 imported 0 updated 0 unchanged 3 skipped",
        "{fourth}"
    );
}

/// A wrong crypt/key or table prefix is a clear error or a per-row report, and changes nothing.
#[tokio::test(flavor = "multi_thread")]
async fn a_wrong_key_or_prefix_changes_nothing_and_says_why() {
    let app = spawn_app().await;
    let db = magento_store();
    let url = db.url();
    let wrong = run_binary(
        &app.config_file(),
        &[
            "import",
            "magento",
            "--database-url",
            &url,
            "--crypt-key",
            "an0ther-key-an0ther-key-an0ther!",
            "--table-prefix",
            "mg_",
        ],
        "",
        &[],
    );
    assert!(wrong.status.success(), "{}", show(&wrong));
    let stdout = String::from_utf8_lossy(&wrong.stdout);
    assert_eq!(
        counts_line(&stdout, "integrations"),
        "integrations 0 imported 0 updated 0 unchanged 6 skipped",
        "{stdout}"
    );
    assert!(app.integrations.list().await.unwrap().is_empty());

    let no_tables = run_binary(
        &app.config_file(),
        &[
            "import",
            "magento",
            "--database-url",
            &url,
            "--crypt-key",
            OLD_KEY,
        ],
        "",
        &[],
    );
    assert!(!no_tables.status.success());
    let stderr = String::from_utf8_lossy(&no_tables.stderr);
    assert!(
        stderr.contains("magento.integration' doesn't exist"),
        "{stderr}"
    );

    let short = run_binary(
        &app.config_file(),
        &[
            "import",
            "magento",
            "--database-url",
            &url,
            "--crypt-key",
            "short",
        ],
        "",
        &[],
    );
    assert!(!short.status.success());
    assert!(
        String::from_utf8_lossy(&short.stderr)
            .contains("key 0 of crypt/key is 5 bytes long; ChaCha20-Poly1305 needs 32"),
        "{}",
        show(&short)
    );
}
