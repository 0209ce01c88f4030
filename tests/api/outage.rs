//! The database goes away and comes back (a PostgreSQL restart): while it is down, requests
//! that need it answer 503 in their protocol's shape at once, not after the pool's acquire
//! timeout, and forward-auth answers 503 so that a proxy can fail over; once it is back, the
//! first request succeeds (no connection the restart killed is handed to it).

use std::time::{Duration, Instant};

use integration_host::config::DatabaseUrl;
use integration_host::domain::AccountKind;
use integration_host_tests::{
    PrivatePostgres, TestDb, admin_ui_session, oauth_header, send_json, spawn_on, test_settings,
    unix_now,
};
use serde_json::json;

/// Polls `/readyz` until it answers `status`.
async fn readyz_becomes(client: &reqwest::Client, base: &str, status: u16, limit: Duration) {
    let started = Instant::now();
    loop {
        let seen = client
            .get(format!("{base}/readyz"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0);
        if seen == status {
            return;
        }
        assert!(started.elapsed() < limit, "/readyz still {seen}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_database_restart_gives_fast_503s_and_no_failed_request_after() {
    let pg = PrivatePostgres::start();
    let db = TestDb {
        url: DatabaseUrl::parse(&pg.url()).unwrap(),
        postgres: None,
        dir: tempfile::tempdir().unwrap(),
    };
    let routes = db.dir.path().join("routes.toml");
    std::fs::write(
        &routes,
        "[[route]]\nmethod = \"GET\"\npath = \"/shop/admin\"\nresources = [\"Magento_Integration::integrations\"]\n",
    )
    .unwrap();
    let mut settings = test_settings(&db);
    settings.webapi.routes_files = vec![routes];
    let app = spawn_on(db, settings).await;
    let caller = app
        .minted_integration("Outage", &["Magento_Backend::all"])
        .await;
    app.account(AccountKind::Admin, "jane", "secret123").await;
    let (status, jwt) = app
        .post_json(
            "/rest/V1/integration/admin/token",
            &json!({"username": "jane", "password": "secret123"}),
        )
        .await;
    assert_eq!(status, 200);
    let jwt = jwt.as_str().unwrap().to_owned();
    let forward_auth = || {
        app.client
            .get(app.url("/forward-auth"))
            .header("X-Original-Method", "GET")
            .header("X-Original-URI", "/shop/admin")
            .bearer_auth(&jwt)
    };
    let request_token = || {
        let url = app.url("/oauth/token/request");
        let header = oauth_header(
            "POST",
            &url,
            &caller.key,
            &caller.secret,
            "",
            &[],
            &[],
            &integration_host::crypto::random_string(24),
            unix_now(),
        );
        app.client.post(url).header("Authorization", header)
    };
    let (status, body) = send_json(caller.request("GET", "/rest/V1/integrations/me")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(forward_auth().send().await.unwrap().status(), 200);
    let session = admin_ui_session(&app.client, &app.address, "jane", "secret123").await;
    let grid = || {
        app.client
            .get(app.url("/admin/integration/"))
            .header("Cookie", &session)
    };
    assert_eq!(grid().send().await.unwrap().status(), 200);
    // An activated integration asks for a request token out of turn: Magento's refusal.
    let res = request_token().send().await.unwrap();
    let refusal = (res.status(), res.text().await.unwrap());
    assert_eq!(refusal.0, 401, "{}", refusal.1);

    pg.down();
    readyz_becomes(&app.client, &app.address, 503, Duration::from_secs(10)).await;

    // Known to be down: each answer comes at once, in its protocol's shape.
    let started = Instant::now();
    let (status, body) = send_json(caller.request("GET", "/rest/V1/integrations/me")).await;
    let took = started.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(
        body["message"],
        "The service is temporarily unavailable. Try again shortly."
    );
    assert!(took < Duration::from_millis(300), "REST took {took:?}");
    eprintln!("while the database is down: REST 503 in {took:?}");

    let started = Instant::now();
    let res = forward_auth().send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(res.status(), 503);
    assert_eq!(res.headers()["retry-after"], "1");
    assert!(
        took < Duration::from_millis(300),
        "forward-auth took {took:?}"
    );
    eprintln!("while the database is down: forward-auth 503 in {took:?}");

    let started = Instant::now();
    let res = request_token().send().await.unwrap();
    let took = started.elapsed();
    assert_eq!(res.status(), 503);
    assert!(
        res.text()
            .await
            .unwrap()
            .starts_with("oauth_problem=temporarily_unavailable"),
    );
    assert!(took < Duration::from_millis(300), "OAuth took {took:?}");
    eprintln!("while the database is down: OAuth 503 in {took:?}");

    let started = Instant::now();
    let (status, body) = app
        .post_json(
            "/rest/V1/integration/admin/token",
            &json!({"username": "jane", "password": "secret123"}),
        )
        .await;
    assert_eq!(status, 503, "{body}");
    assert!(started.elapsed() < Duration::from_millis(300));
    let res = grid().send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert!(
        res.text()
            .await
            .unwrap()
            .contains("The database cannot be reached right now")
    );

    // Back: the very first requests succeed.
    pg.up();
    readyz_becomes(&app.client, &app.address, 200, Duration::from_secs(20)).await;
    let (status, body) = send_json(caller.request("GET", "/rest/V1/integrations/me")).await;
    assert_eq!(
        status, 200,
        "the first signed request after the restart: {body}"
    );
    assert_eq!(forward_auth().send().await.unwrap().status(), 200);
    let res = request_token().send().await.unwrap();
    assert_eq!((res.status(), res.text().await.unwrap()), refusal);
    assert_eq!(grid().send().await.unwrap().status(), 200);
}
