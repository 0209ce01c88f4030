//! Requests built to confuse: deciding headers sent twice are refused (a proxy in front may have
//! acted on the other copy), and every way a request fails to decode (its Content-Encoding, its
//! UTF-8, its JSON, its form, its size) is answered in the protocol's own shape, the REST error
//! shape under `/rest` and `/forward-auth`, OAuth's `oauth_problem` under `/oauth`, with a
//! message a client developer understands. Nothing changes.

use std::io::Write as _;
use std::time::{Duration, Instant};

use integration_host::domain::AccountKind;
use integration_host_tests::{ServerProcess, TestApp, send_json, spawn_app, spawn_app_with};
use serde_json::json;

/// Sends `raw` (a whole request) on a fresh connection; the status and body of the answer.
async fn raw(app: &TestApp, raw: Vec<u8>) -> (u16, String) {
    let address = app.address.trim_start_matches("http://").to_owned();
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let mut s = std::net::TcpStream::connect(address).unwrap();
        s.set_read_timeout(Some(std::time::Duration::from_secs(10)))
            .unwrap();
        s.write_all(&raw).unwrap();
        let mut out = Vec::new();
        let _ = s.read_to_end(&mut out);
        let text = String::from_utf8_lossy(&out).into_owned();
        let status = text
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
        (status, body)
    })
    .await
    .unwrap()
}

/// A REST answer: its status, its body as JSON, its content type.
async fn rest(req: reqwest::RequestBuilder) -> (u16, serde_json::Value, String) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let text = res.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text)),
        ct,
    )
}

/// An OAuth endpoint's answer: its status and its `oauth_problem`.
async fn oauth(req: reqwest::RequestBuilder) -> (u16, String) {
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let ct = res
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    assert!(
        ct.starts_with("application/x-www-form-urlencoded"),
        "{status} {ct}"
    );
    let text = res.text().await.unwrap();
    let problem = form_urlencoded::parse(text.as_bytes())
        .find(|(k, _)| k == "oauth_problem")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no oauth_problem: {text}"));
    (status, problem)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(bytes).unwrap();
    e.finish().unwrap()
}

#[tokio::test]
async fn deciding_headers_sent_twice_are_refused() {
    let app = spawn_app().await;
    let token = app.admin_token().await;
    let bearer = format!("Bearer {token}");
    let client = reqwest::Client::new();
    // The same valid token twice is still ambiguous: a proxy may have checked another copy.
    for path in ["/rest/V1/integrations", "/forward-auth"] {
        let (status, body, ct) = rest(
            client
                .get(app.url(path))
                .header("Authorization", &bearer)
                .header("Authorization", "Bearer someone-else")
                .header("X-Original-URI", "/rest/V1/integrations")
                .header("X-Original-Method", "GET"),
        )
        .await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(ct.starts_with("application/json"), "{ct}");
        assert_eq!(
            body,
            json!({"message": "The request has more than one %header header.",
                "parameters": {"header": "Authorization"}})
        );
    }
    let (status, problem) = oauth(
        client
            .post(app.url("/oauth/token/request"))
            .header("Authorization", "OAuth oauth_consumer_key=\"a\"")
            .header("Authorization", "OAuth oauth_consumer_key=\"b\""),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(
        problem,
        "The request has more than one Authorization header."
    );
    // forward-auth's description of the original request.
    let (status, body, _) = rest(
        client
            .get(app.url("/forward-auth"))
            .header("Authorization", &bearer)
            .header("X-Original-URI", "/rest/V1/integrations")
            .header("X-Original-URI", "/rest/V1/other")
            .header("X-Original-Method", "GET"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["parameters"]["header"], "X-Original-URI");
    // Two bodies' types.
    let (status, body, _) = rest(
        client
            .post(app.url("/rest/V1/integrations"))
            .header("Authorization", &bearer)
            .header("Content-Type", "application/json")
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(r#"{"name": "Twice"}"#),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["parameters"]["header"], "Content-Type");
    // Two Host headers: refused by the HTTP parser itself, before any route.
    let (status, _) = raw(
        &app,
        b"GET /rest/V1/integrations HTTP/1.1\r\nHost: a\r\nHost: b\r\nConnection: close\r\n\r\n"
            .to_vec(),
    )
    .await;
    assert_eq!(status, 400);
    // Forwarding headers are ignored here (not trusted), so a second copy decides nothing.
    let (status, _, _) = rest(
        client
            .get(app.url("/rest/V1/integrations"))
            .header("Authorization", &bearer)
            .header("X-Forwarded-For", "10.0.0.1")
            .header("X-Forwarded-For", "10.0.0.2"),
    )
    .await;
    assert_eq!(status, 200);
    // Nothing was created by any of them.
    let (_, list) = send_json(app.bearer("GET", "/rest/V1/integrations", &token)).await;
    assert_eq!(list["total_count"], 0, "{list}");
}

#[tokio::test]
async fn trusted_forwarding_headers_sent_twice_are_refused() {
    let app = spawn_app_with(|s| s.oauth.trust_forwarded_headers = true).await;
    let client = reqwest::Client::new();
    for name in ["X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto"] {
        let (status, body, _) = rest(
            client
                .get(app.url("/rest/V1/directory/countries"))
                .header(name, "a")
                .header(name, "b"),
        )
        .await;
        assert_eq!(status, 400, "{name}: {body}");
        assert_eq!(body["parameters"]["header"], name);
    }
}

#[tokio::test]
async fn every_decoding_failure_answers_in_the_protocols_shape() {
    let app = spawn_app().await;
    app.account(AccountKind::Admin, "jane", "secret123").await;
    let client = reqwest::Client::new();
    let token_url = app.url("/rest/V1/integration/admin/token");
    let json_post = || {
        client
            .post(&token_url)
            .header("Content-Type", "application/json")
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, serde_json::Value)> = vec![
        (
            "a body that is not the gzip it says",
            json_post()
                .header("Content-Encoding", "gzip")
                .body("not gzip at all"),
            400,
            json!({"message": "The request body is not valid %encoding data.",
                "parameters": {"encoding": "gzip"}}),
        ),
        (
            "an encoding the server does not decode",
            json_post().header("Content-Encoding", "br").body("{}"),
            415,
            json!({"message": "The request's Content-Encoding %encoding is not supported: send gzip, deflate or none.",
                "parameters": {"encoding": "br"}}),
        ),
        (
            "JSON that is not UTF-8",
            json_post().body(b"{\"username\": \"\xff\xfe\", \"password\": \"x\"}".to_vec()),
            400,
            json!({"message": "The request body could not be read: %reason",
                "parameters": {"reason": "invalid unicode code point at line 1 column 15"}}),
        ),
        (
            "JSON cut short",
            json_post().body("{\"username\": "),
            400,
            json!({"message": "The request body could not be read: %reason",
                "parameters": {"reason": "EOF while parsing a value at line 1 column 13"}}),
        ),
        (
            "a gzip body that inflates past the limit",
            json_post()
                .header("Content-Encoding", "gzip")
                .body(gzip(&vec![b' '; 2 * 1024 * 1024])),
            413,
            json!({"message": "The request body is larger than %limit bytes.",
                "parameters": {"limit": "1048576"}}),
        ),
        (
            "a query that is not UTF-8",
            client.get(app.url("/rest/V1/integrations?searchCriteria=%FF%FE")),
            400,
            json!({"message": "The query string is not valid UTF-8 once percent-decoded."}),
        ),
        (
            "a body that is not JSON (the Web API reads every body as JSON)",
            client
                .post(&token_url)
                .header("Content-Type", "text/csv")
                .body("jane,secret123"),
            400,
            json!({"message": "The request body could not be read: %reason",
                "parameters": {"reason": "expected value at line 1 column 1"}}),
        ),
    ];
    for (what, req, status, expected) in cases {
        let (got, body, ct) = rest(req).await;
        assert_eq!((got, &body), (status, &expected), "{what}");
        assert!(ct.starts_with("application/json"), "{what}: {ct}");
    }
    // A gzip body that is what it says is read.
    let (status, body, _) = rest(
        json_post()
            .header("Content-Encoding", "gzip")
            .body(gzip(br#"{"username": "jane", "password": "secret123"}"#)),
    )
    .await;
    assert_eq!(status, 200, "{body}");

    // The OAuth endpoints answer in OAuth's shape.
    let oauth_url = app.url("/oauth/token/request");
    let form_post = || {
        client
            .post(&oauth_url)
            .header("Content-Type", "application/x-www-form-urlencoded")
    };
    let cases: Vec<(&str, reqwest::RequestBuilder, u16, &str)> = vec![
        (
            "a body that is not the gzip it says",
            form_post().header("Content-Encoding", "gzip").body("xx"),
            400,
            "The request body is not valid gzip data.",
        ),
        (
            "a query that is not UTF-8",
            client.post(app.url("/oauth/token/request?oauth_nonce=%FF")),
            400,
            "The query string is not valid UTF-8 once percent-decoded.",
        ),
        (
            "a form that is not UTF-8",
            form_post().body("oauth_consumer_key=%FF%FE&oauth_nonce=1"),
            400,
            "a parameter is not valid UTF-8 once decoded",
        ),
        (
            "an encoding the server does not decode",
            form_post().header("Content-Encoding", "zstd").body("a=b"),
            415,
            "The request's Content-Encoding zstd is not supported: send gzip, deflate or none.",
        ),
    ];
    for (what, req, status, expected) in cases {
        let (got, problem) = oauth(req).await;
        assert_eq!((got, problem.as_str()), (status, expected), "{what}");
    }
}

/// A server process with a header timeout of `header_ms`, short other timeouts for slow
/// clients, and a connection cap of `cap`.
async fn timed_server(
    cap: usize,
    header_ms: u64,
) -> (integration_host_tests::CliEnv, ServerProcess) {
    let env = integration_host_tests::CliEnv::new().await;
    let mut text = std::fs::read_to_string(&env.config).unwrap();
    text = text.replace(
        "[server]\n",
        &format!(
            "[server]\nheader_timeout_ms = {header_ms}\nbody_timeout_ms = 800\nkeep_alive_seconds = 1\nmax_connections = {cap}\n"
        ),
    );
    std::fs::write(&env.config, text).unwrap();
    let server = ServerProcess::start(&env.config, &[], &[]);
    (env, server)
}

/// Opens a connection and writes `bytes` on it, one every `every`, until the server answers
/// or closes it; what it answered and when, from the first byte.
fn trickle(port: u16, bytes: &[u8], every: Duration) -> (String, Duration) {
    use std::io::Read as _;
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_nonblocking(true).unwrap();
    let started = Instant::now();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    for b in bytes.iter().cycle() {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                break;
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
        if s.write_all(&[*b]).is_err() {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "never cut off");
        std::thread::sleep(every);
    }
    // Whatever else arrives before the server closes.
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let _ = s.read_to_end(&mut out);
    (
        String::from_utf8_lossy(&out).into_owned(),
        started.elapsed(),
    )
}

#[tokio::test]
async fn slow_clients_are_cut_off() {
    let (_env, server) = timed_server(10_000, 800).await;
    let port = server.port;
    // A head trickled a byte every 100 ms: cut off with 408 after the header timeout.
    let (answer, took) = tokio::task::spawn_blocking(move || {
        trickle(
            port,
            b"GET /rest/V1/directory/countries HTTP/1.1\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
            Duration::from_millis(100),
        )
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(took < Duration::from_secs(4), "{took:?}");
    // A body trickled forever: 408 after the body timeout, in the REST shape, and in OAuth's at
    // the OAuth endpoints.
    for (path, content_type, fill, shown) in [
        (
            "/rest/V1/integration/admin/token",
            "application/json",
            b' ',
            r#"{"message":"The request body did not arrive in time."}"#,
        ),
        (
            "/oauth/token/request",
            "application/x-www-form-urlencoded",
            b'a',
            "oauth_problem=The+request+body+did+not+arrive+in+time.",
        ),
    ] {
        let mut request = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: {content_type}\r\nContent-Length: 100000\r\n\r\n"
        )
        .into_bytes();
        request.extend_from_slice(&[fill; 512]);
        let (answer, took) =
            tokio::task::spawn_blocking(move || trickle(port, &request, Duration::from_millis(2)))
                .await
                .unwrap();
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
        assert!(answer.ends_with(shown), "{answer}");
        assert!(took < Duration::from_secs(4), "{took:?}");
    }
}

/// Opens `n` connections that send half a request head and then nothing.
fn idle_connections(port: u16, n: usize) -> Vec<std::net::TcpStream> {
    (0..n)
        .map(|_| {
            let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
            s.write_all(b"GET /livez HTTP/1.1\r\n").unwrap();
            s
        })
        .collect()
}

#[tokio::test]
async fn thousands_of_idle_connections_do_not_starve_active_ones() {
    // Idle connections kept as long as the test needs them.
    let (_env, server) = timed_server(10_000, 60_000).await;
    let port = server.port;
    let idle = tokio::task::spawn_blocking(move || idle_connections(port, 2000))
        .await
        .unwrap();
    let client = integration_host_tests::fresh_client();
    let mut slowest = Duration::ZERO;
    for _ in 0..50 {
        let t = Instant::now();
        let res = client
            .get(server.url("/rest/V1/integrations"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401);
        slowest = slowest.max(t.elapsed());
    }
    assert!(slowest < Duration::from_millis(700), "{slowest:?}");
    let metrics = client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let open: i64 = metrics
        .lines()
        .find_map(|l| l.strip_prefix("integration_host_open_connections "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no open connections gauge:\n{metrics}"));
    assert!(open >= 2000, "{open} open");
    drop(idle);
}

#[tokio::test]
async fn the_connection_cap_holds_new_connections_until_idle_ones_time_out() {
    let (_env, server) = timed_server(40, 800).await;
    let port = server.port;
    let idle = tokio::task::spawn_blocking(move || idle_connections(port, 120))
        .await
        .unwrap();
    // An active client waits behind them, and is served once the idle ones were cut off.
    let t = Instant::now();
    let res = integration_host_tests::fresh_client()
        .get(server.url("/livez"))
        .timeout(Duration::from_secs(20))
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success());
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    let log = server.stderr();
    assert!(
        log.contains(
            "connection cap reached: new connections wait to be accepted until open ones close"
        ),
        "{log}"
    );
    assert!(log.contains("\"max_connections\":40"), "{log}");
    drop(idle);
}

/// A tmpfs of `mib` MiB mounted on a new folder (the test suite runs as root), unmounted when
/// dropped.
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    fn mount(mib: u32) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let out = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={mib}m"), "tmpfs"])
            .arg(dir.path())
            .output()
            .expect("run mount");
        assert!(
            out.status.success(),
            "a small filesystem for the full-disk test (mount -t tmpfs, as root): {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Self { dir }
    }

    /// Fills what is left with a file; answers its path.
    fn fill(&self) -> std::path::PathBuf {
        let path = self.dir.path().join("filler");
        let mut f = std::fs::File::create(&path).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        while f.write_all(&chunk).is_ok() {}
        let _ = f.sync_all();
        path
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg(self.dir.path())
            .output();
    }
}

#[tokio::test]
async fn a_full_disk_refuses_writes_keeps_reads_and_recovers_by_itself() {
    let disk = SmallDisk::mount(8);
    let conf = tempfile::tempdir().unwrap();
    let config = conf.path().join("server.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\n[cron]\nenabled = false\n[log]\nformat = \"json\"\n",
            disk.dir.path().display().to_string()
        ),
    )
    .unwrap();
    let out = integration_host_tests::run_binary(
        &config,
        &[
            "admin",
            "create",
            "--username",
            "jane",
            "--email",
            "jane@example.com",
        ],
        "secret123\n",
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        integration_host_tests::show(&out)
    );
    let server = ServerProcess::start(&config, &[], &[]);
    let client = integration_host_tests::fresh_client();
    let (status, token) = send_json(
        client
            .post(server.url("/rest/V1/integration/admin/token"))
            .json(&json!({"username": "jane", "password": "secret123"})),
    )
    .await;
    assert_eq!(status, 200, "{token}");
    let bearer = format!("Bearer {}", token.as_str().unwrap());
    let create = |name: String| {
        client
            .post(server.url("/rest/V1/integrations"))
            .header("Authorization", &bearer)
            .json(&json!({
                "name": name,
                "email": "ops@example.com",
                "endpoint": format!("https://{}.example.com/{}", "e".repeat(40), "p".repeat(200)),
                "all_resources": true,
            }))
    };
    let (status, body) = send_json(create("Before".into())).await;
    assert_eq!(status, 200, "{body}");

    let filler = disk.fill();
    // Writes fail once SQLite needs space it cannot have (the write-ahead log may hold a few
    // more first): 503 in the REST shape, never 500, and none of them half-done.
    let mut created = vec!["Before".to_owned()];
    let mut refusal = None;
    for i in 0..500 {
        let name = format!("Full {i}");
        let (status, body) = send_json(create(name.clone())).await;
        match status {
            200 => created.push(name),
            503 => {
                refusal = Some(body);
                break;
            }
            other => panic!("{other}: {body}"),
        }
    }
    let refusal = refusal.expect("a write refused on the full disk");
    assert_eq!(
        refusal,
        json!({"message": "The service is temporarily unavailable. Try again shortly."})
    );
    // Reads go on.
    let (status, list) = send_json(
        client
            .get(server.url("/rest/V1/integrations"))
            .header("Authorization", &bearer),
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total_count"], created.len(), "{list}");
    // /readyz says why.
    let (status, ready) = send_json(client.get(server.url("/readyz"))).await;
    assert_eq!(status, 503, "{ready}");
    assert_eq!(
        ready["checks"]["database"],
        "cannot write: the disk is full"
    );
    assert!(
        server
            .stderr()
            .contains("the database cannot write: its disk is full"),
        "{}",
        server.stderr()
    );

    // Space returns: the server notices by itself, and writes work again.
    std::fs::remove_file(filler).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, ready) = send_json(client.get(server.url("/readyz"))).await;
        if status == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "never ready again: {ready}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body) = send_json(create("After".into())).await;
    assert_eq!(status, 200, "{body}\n{}", server.stderr());
    created.push("After".into());
    let (_, list) = send_json(
        client
            .get(server.url("/rest/V1/integrations"))
            .header("Authorization", &bearer),
    )
    .await;
    let mut names: Vec<String> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect();
    names.sort();
    created.sort();
    assert_eq!(names, created);
    drop(server);
    // Nothing is corrupted.
    let db = disk.dir.path().join("integration-host.sqlite");
    let mut conn = <sqlx::SqliteConnection as sqlx::Connection>::connect(&format!(
        "sqlite://{}",
        db.display()
    ))
    .await
    .unwrap();
    let (check,): (String,) = sqlx::query_as("PRAGMA integrity_check")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(check, "ok");
}
