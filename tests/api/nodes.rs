//! Several server processes on one database: a change that affects who may do what, made
//! through one server or by the CLI, is enforced by another within 100 ms, on PostgreSQL through
//! its change notices and on a shared SQLite file through its `data_version`. Each server keeps
//! its credential cache (5 s by default): only the invalidation can explain the answers.

use std::time::{Duration, Instant};

use integration_host::domain::AccountKind;
use integration_host::startup::Application;
use integration_host_tests::{TestApp, run_binary, spawn_app_with};
use serde_json::json;

/// The bound the product promises.
const BOUND: Duration = Duration::from_millis(100);

/// A second server on the first one's database and settings; its base URL.
async fn second_server(app: &TestApp) -> String {
    let second = Application::build(app.settings.clone())
        .await
        .expect("the second server builds");
    let port = second.port();
    tokio::spawn(second.run_until_stopped());
    format!("http://127.0.0.1:{port}")
}

/// Asks a server's `/forward-auth` about `GET /shop/me` (resource `self`: customers) or
/// `GET /shop/admin` (an ACL resource: admins) with a bearer token: the status.
async fn ask(app: &TestApp, base: &str, token: &str) -> u16 {
    // A JWT says whose it is: admins (user type 2) ask for the admin route.
    let payload = token.split('.').nth(1).unwrap_or_default();
    let admin = base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .is_some_and(|c| c["utypid"] == 2);
    app.client
        .get(format!("{base}/forward-auth"))
        .header("X-Original-Method", "GET")
        .header(
            "X-Original-URI",
            if admin { "/shop/admin" } else { "/shop/me" },
        )
        .header("Authorization", format!("Bearer {token}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Polls `base` until the token is refused; the time from `since` to the start of the request
/// that saw the refusal.
async fn refused_after(app: &TestApp, base: &str, token: &str, since: Instant) -> Duration {
    loop {
        let asked = since.elapsed();
        if ask(app, base, token).await == 401 {
            return asked;
        }
        assert!(
            since.elapsed() < Duration::from_secs(6),
            "still accepted after the credential cache time"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn sign_in(app: &TestApp, path: &str, user: &str, password: &str) -> String {
    let (status, body) = app
        .post_json(path, &json!({"username": user, "password": password}))
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_revocation_through_one_server_or_the_cli_is_enforced_by_another_within_100_ms() {
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.toml");
    std::fs::write(
        &routes,
        "[[route]]\nmethod = \"GET\"\npath = \"/shop/me\"\nresources = [\"self\"]\n\n[[route]]\nmethod = \"GET\"\npath = \"/shop/admin\"\nresources = [\"Magento_Integration::integrations\"]\n",
    )
    .unwrap();
    let app = spawn_app_with(|s| s.webapi.routes_files = vec![routes]).await;
    assert_eq!(app.settings.oauth.credential_cache_seconds, 5);
    let other = second_server(&app).await;
    app.account(AccountKind::Customer, "jo@example.com", "secret456")
        .await;
    app.account(AccountKind::Admin, "jane", "secret123").await;

    // Through the first server: a customer revokes their own tokens.
    let customer = sign_in(
        &app,
        "/rest/V1/integration/customer/token",
        "jo@example.com",
        "secret456",
    )
    .await;
    assert_eq!(ask(&app, &other, &customer).await, 200, "cached there now");
    let (status, body) = integration_host_tests::send_json(app.bearer(
        "POST",
        "/rest/V1/integration/customer/revoke-customer-token",
        &customer,
    ))
    .await;
    assert_eq!(status, 200, "{body}");
    let revoked = Instant::now();
    let took = refused_after(&app, &other, &customer, revoked).await;
    assert!(took <= BOUND, "the other server accepted it for {took:?}");

    // By the CLI: an admin's tokens revoked.
    let admin = sign_in(
        &app,
        "/rest/V1/integration/admin/token",
        "jane",
        "secret123",
    )
    .await;
    assert_eq!(ask(&app, &other, &admin).await, 200);
    assert_eq!(ask(&app, &app.address, &admin).await, 200);
    let config = app.config_file();
    let out = tokio::task::spawn_blocking(move || {
        run_binary(&config, &["token", "revoke", "--admin", "jane"], "", &[])
    })
    .await
    .unwrap();
    assert!(
        out.status.success(),
        "{}",
        integration_host_tests::show(&out)
    );
    let revoked = Instant::now();
    for base in [other.as_str(), app.address.as_str()] {
        let took = refused_after(&app, base, &admin, revoked).await;
        assert!(took <= BOUND, "{base} accepted it for {took:?}");
    }
}
