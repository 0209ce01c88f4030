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

/// A node's configuration: its own data folder, the shared database and keys.
fn node_config(
    dir: &std::path::Path,
    n: usize,
    url: &str,
    keys: &[String; 3],
) -> std::path::PathBuf {
    let path = dir.join(format!("node{n}.toml"));
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\ndrain_seconds = 0\n[database]\nurl = {url:?}\npool_size = 4\n[crypto]\nsecret_keys = [{:?}]\nlookup_key = {:?}\n[tokens]\nsigning_keys = [{:?}]\n[cron]\nenabled = false\n",
            dir.join(format!("data{n}")).display().to_string(),
            keys[0],
            keys[1],
            keys[2],
        ),
    )
    .unwrap();
    path
}

/// Statuses of GETs sent through `url` until `stop` is set: (status, how many).
fn load(
    client: reqwest::Client,
    url: String,
    token: String,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<std::collections::BTreeMap<u16, u32>> {
    tokio::spawn(async move {
        let mut seen = std::collections::BTreeMap::new();
        while !stop.load(std::sync::atomic::Ordering::SeqCst) {
            let status = match client.get(&url).bearer_auth(&token).send().await {
                Ok(r) => r.status().as_u16(),
                Err(_) => 0,
            };
            *seen.entry(status).or_insert(0) += 1;
        }
        seen
    })
}

#[tokio::test]
async fn three_nodes_behind_nginx_survive_a_killed_node_and_a_database_restart() {
    use integration_host::config::KeySpec;
    use integration_host_tests::{Nginx, PrivatePostgres, ServerProcess};
    let pg = PrivatePostgres::start();
    let dir = tempfile::tempdir().unwrap();
    let keys = [
        KeySpec::generate("k1").expose(),
        KeySpec::generate("lookup").expose(),
        KeySpec::generate("t1").expose(),
    ];
    // The first node migrates; then the others.
    let mut nodes = vec![ServerProcess::start(
        &node_config(dir.path(), 0, &pg.url(), &keys),
        &[],
        &[],
    )];
    for n in 1..3 {
        nodes.push(ServerProcess::start(
            &node_config(dir.path(), n, &pg.url(), &keys),
            &[],
            &[],
        ));
    }
    let ports: Vec<u16> = nodes.iter().map(|n| n.port).collect();
    let nginx = Nginx::start(|port| {
        let servers: String = ports
            .iter()
            .map(|p| format!("        server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n"))
            .collect();
        format!(
            r#"
    upstream nodes {{
{servers}        keepalive 16;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://nodes;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries 3;
            proxy_connect_timeout 1s;
        }}
    }}
"#
        )
    });
    // An admin, and a token issued by each node.
    let store = integration_host::store::Store::connect(
        &integration_host::config::DatabaseUrl::Postgres(pg.url()),
        &Default::default(),
    )
    .await
    .unwrap();
    {
        use integration_host::services::accounts::{
            AccountInput, AccountService, Email, Password, Username,
        };
        AccountService::new(store.clone())
            .create(
                AccountKind::Admin,
                AccountInput {
                    username: Some(Username::parse("jane").unwrap()),
                    email: Email::parse("jane@example.com").unwrap(),
                    firstname: "Jo".into(),
                    lastname: "Doe".into(),
                    password: Password::parse("secret123").unwrap(),
                },
            )
            .await
            .unwrap();
    }
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let mut tokens = Vec::new();
    for node in &nodes {
        let res = client
            .post(node.url("/rest/V1/integration/admin/token"))
            .json(&json!({"username": "jane", "password": "secret123"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        tokens.push(res.json::<String>().await.unwrap());
    }
    let list = nginx.url("/rest/V1/integrations");

    // One node killed under load: no GET sees a 5xx (nginx retries it on another node).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let loads: Vec<_> = (0..4)
        .map(|i| {
            load(
                client.clone(),
                list.clone(),
                tokens[i % 3].clone(),
                stop.clone(),
            )
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let dead = nodes.pop().unwrap();
    drop(dead); // SIGKILL
    tokio::time::sleep(Duration::from_millis(1500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let mut seen = std::collections::BTreeMap::new();
    for l in loads {
        for (status, n) in l.await.unwrap() {
            *seen.entry(status).or_insert(0) += n;
        }
    }
    assert_eq!(
        seen.keys().copied().collect::<Vec<_>>(),
        [200],
        "{seen:?}\n{}",
        nginx.error_log()
    );
    assert!(seen[&200] > 50, "{seen:?}");
    // The dead node's token works on the others.
    for node in &nodes {
        let res = client
            .get(node.url("/rest/V1/integrations"))
            .bearer_auth(&tokens[2])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }

    // The database restarted under load: every node answers /readyz 503 while it is down, and
    // serves again after, without a restart.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let background = load(
        client.clone(),
        list.clone(),
        tokens[0].clone(),
        stop.clone(),
    );
    pg.down();
    for node in &nodes {
        let started = Instant::now();
        loop {
            let status = client
                .get(node.url("/readyz"))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0);
            if status == 503 {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "/readyz still {status}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    pg.up();
    for node in &nodes {
        let started = Instant::now();
        loop {
            let ready = client
                .get(node.url("/readyz"))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            let serves = client
                .get(node.url("/rest/V1/integrations"))
                .bearer_auth(&tokens[1])
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            if ready && serves {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "a node did not come back: {}",
                node.stderr()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    // Through nginx too, once it tries the nodes again (they answered 503 while the database
    // was down: nginx set them aside for fail_timeout).
    let started = Instant::now();
    while !client
        .get(&list)
        .bearer_auth(&tokens[0])
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "nginx does not serve again"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let after = background.await.unwrap();
    assert!(after.contains_key(&200), "{after:?}");
    // While it was down, the nodes said so (503, and nginx 502 once every node had): never a
    // 500, never a hang.
    assert!(
        after.keys().all(|s| matches!(s, 200 | 502 | 503)),
        "{after:?}"
    );
    store.close().await;
}
