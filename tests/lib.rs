//! Test support: the real server on port 0 with a fresh database per test, and the built binary.
//!
//! The backend comes from the environment: with `TEST_DATABASE_URL` set to a PostgreSQL URL
//! (an account allowed to create databases), every test gets a database of its own on that
//! server; without it, every test gets an SQLite file in a temporary folder. The test script
//! runs the whole suite once each way.

pub mod browser;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use integration_host::config::{DatabaseUrl, KeySpec, ListenAddr, Settings};
use integration_host::services::accounts::BootstrapAdmin;
use integration_host::startup::Application;
use integration_host::store::Store;
use sqlx::Connection as _;

/// The PostgreSQL server URL to create test databases on, if the suite runs on PostgreSQL.
pub fn postgres_server() -> Option<String> {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A fresh database for one test, dropped with it (PostgreSQL) or with its folder (SQLite).
#[derive(Debug)]
pub struct TestDb {
    pub url: DatabaseUrl,
    /// PostgreSQL: the server URL and the database name.
    pub postgres: Option<(String, String)>,
    pub dir: tempfile::TempDir,
}

impl TestDb {
    pub async fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary folder");
        match postgres_server() {
            Some(server) => {
                let name = format!("ih_test_{}", uuid::Uuid::new_v4().simple());
                let mut conn = sqlx::PgConnection::connect(&server)
                    .await
                    .expect("connect to the test PostgreSQL server");
                sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
                    .execute(&mut conn)
                    .await
                    .expect("create test database");
                conn.close().await.ok();
                let url = database_on(&server, &name);
                TestDb {
                    url: DatabaseUrl::parse(&url).expect("valid URL"),
                    postgres: Some((server, name)),
                    dir,
                }
            }
            None => TestDb {
                url: DatabaseUrl::Sqlite(dir.path().join("data/integration-host.sqlite")),
                postgres: None,
                dir,
            },
        }
    }

    /// The URL as a string, for configuration files.
    pub fn url_string(&self) -> String {
        self.url.clone().into()
    }

    /// Makes the database unreachable: drops it (PostgreSQL, closing every connection) or
    /// deletes the file (SQLite).
    pub async fn destroy(&self) {
        match &self.postgres {
            Some((server, name)) => {
                let mut conn = sqlx::PgConnection::connect(server).await.expect("connect");
                sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await
                .expect("drop test database");
            }
            None => {
                if let DatabaseUrl::Sqlite(path) = &self.url {
                    std::fs::remove_file(path).expect("delete database file");
                }
            }
        }
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((server, name)) = self.postgres.take() {
            // Best effort, off the test's runtime, which may be shutting down.
            let _ = std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .ok()?;
                rt.block_on(async {
                    let mut conn = sqlx::PgConnection::connect(&server).await.ok()?;
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&mut conn)
                    .await
                    .ok()
                })
            })
            .join();
        }
    }
}

fn database_on(server: &str, name: &str) -> String {
    let mut url = url::Url::parse(server).expect("TEST_DATABASE_URL is a URL");
    url.set_path(&format!("/{name}"));
    url.into()
}

/// Settings for a test server on `db`: port 0, keys set (PostgreSQL requires them), quiet.
pub fn test_settings(db: &TestDb) -> Settings {
    let mut s = Settings::default();
    s.data_dir = db.dir.path().join("data");
    s.server.listen = ListenAddr::parse("127.0.0.1:0").unwrap();
    s.server.workers = 2;
    s.database.url = Some(db.url.clone());
    s.database.pool_size = 4;
    s.crypto.secret_keys = vec![KeySpec::generate("k1")];
    s.crypto.lookup_key = Some(KeySpec::generate("lookup"));
    s.tokens.signing_keys = vec![KeySpec::generate("t1")];
    s
}

/// A running server for one test.
#[derive(Debug)]
pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub store: Store,
    pub integrations: integration_host::services::integration::IntegrationService,
    pub oauth: integration_host::services::oauth::OauthService,
    pub tokens: integration_host::services::tokens::TokenService,
    pub events: integration_host::events::Dispatcher,
    pub plugins: integration_host::plugins::PluginHost,
    pub bootstrap_admin: Option<BootstrapAdmin>,
    pub settings: Settings,
    pub db: TestDb,
}

/// Starts the server on a fresh database with the test settings.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the server on a fresh database after `adjust` changed the test settings.
pub async fn spawn_app_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let db = TestDb::new().await;
    let mut settings = test_settings(&db);
    adjust(&mut settings);
    spawn_on(db, settings).await
}

/// Starts the server on an existing test database.
pub async fn spawn_on(db: TestDb, settings: Settings) -> TestApp {
    let mut app = Application::build(settings.clone())
        .await
        .expect("the server builds");
    let port = app.port();
    let store = app.store().clone();
    let integrations = app.integrations().clone();
    let oauth = app.oauth().clone();
    let tokens = app.tokens().clone();
    let events = app.events().clone();
    let plugins = app.plugins().clone();
    let bootstrap_admin = app.take_bootstrap_admin();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap(),
        store,
        integrations,
        oauth,
        tokens,
        events,
        plugins,
        bootstrap_admin,
        settings,
        db,
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    /// Creates an integration granted `resources` (`Magento_Backend::all` for everything),
    /// activates it with minted tokens, and returns its credentials.
    pub async fn minted_integration(&self, name: &str, resources: &[&str]) -> Caller {
        use integration_host::domain::SetupType;
        use integration_host::services::integration::{IntegrationForm, IntegrationInput};
        let form = IntegrationForm {
            name: name.into(),
            resources: resources.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        };
        let created = self
            .integrations
            .create(IntegrationInput::parse(&form, SetupType::Manual).unwrap())
            .await
            .expect("integration created");
        self.integrations
            .activate(created.id, false)
            .await
            .expect("integration activated");
        let consumer = self.oauth.load_consumer(created.consumer_id).await.unwrap();
        let token = self
            .oauth
            .get_access_token(created.consumer_id)
            .await
            .unwrap()
            .expect("minted token");
        Caller {
            integration_id: created.id,
            consumer_id: created.consumer_id,
            key: consumer.key,
            secret: consumer.secret,
            token: token.token,
            token_secret: token.secret,
            base: self.address.clone(),
            client: self.client.clone(),
        }
    }

    /// Writes a configuration file for running the binary against this server's database,
    /// with the same keys and declarative folders; answers its path.
    pub fn config_file(&self) -> PathBuf {
        let s = &self.settings;
        let keys = |ks: &[KeySpec]| {
            ks.iter()
                .map(|k| format!("{:?}", k.expose()))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let dirs = s
            .integrations
            .directories
            .iter()
            .map(|d| format!("{:?}", d.display().to_string()))
            .collect::<Vec<_>>()
            .join(", ");
        let text = format!(
            "data_dir = {:?}\n[database]\nurl = {:?}\npool_size = 2\n[crypto]\nsecret_keys = [{}]\nlookup_key = {:?}\n[tokens]\nsigning_keys = [{}]\n[integrations]\ndirectories = [{dirs}]\n[log]\nformat = \"json\"\n",
            s.data_dir.display().to_string(),
            self.db.url_string(),
            keys(&s.crypto.secret_keys),
            s.crypto.lookup_key.as_ref().unwrap().expose(),
            keys(&s.tokens.signing_keys),
        );
        let path = self.db.dir.path().join("app-config.toml");
        std::fs::write(&path, text).expect("write config");
        path
    }

    /// Creates an active admin user (`kind` Admin, `login` the username) or customer (`login`
    /// the email) with `password`; answers its id.
    pub async fn account(
        &self,
        kind: integration_host::domain::AccountKind,
        login: &str,
        password: &str,
    ) -> i64 {
        use integration_host::domain::AccountKind;
        use integration_host::services::accounts::{AccountInput, Email, Password, Username};
        let email = match kind {
            AccountKind::Admin => format!("{login}@example.com"),
            AccountKind::Customer => login.to_owned(),
        };
        self.tokens
            .accounts()
            .create(
                kind,
                AccountInput {
                    username: Some(Username::parse(login).unwrap()),
                    email: Email::parse(&email).unwrap(),
                    firstname: "Jo".into(),
                    lastname: "Doe".into(),
                    password: Password::parse(password).unwrap(),
                },
            )
            .await
            .expect("account created")
    }

    /// POST JSON to a path; the status and the body as JSON.
    pub async fn post_json(
        &self,
        path: &str,
        body: &serde_json::Value,
    ) -> (u16, serde_json::Value) {
        send_json(self.client.post(self.url(path)).json(body)).await
    }

    /// A request with `Authorization: Bearer <token>`.
    pub fn bearer(&self, method: &str, path: &str, token: &str) -> reqwest::RequestBuilder {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.client
            .request(m, self.url(path))
            .header("Authorization", format!("Bearer {token}"))
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .send()
            .await
            .expect("request sent")
    }
}

/// An integration's credentials, to send signed Web API requests.
#[derive(Debug, Clone)]
pub struct Caller {
    pub integration_id: i64,
    pub consumer_id: i64,
    pub key: String,
    pub secret: String,
    pub token: String,
    pub token_secret: String,
    pub base: String,
    pub client: reqwest::Client,
}

impl Caller {
    /// The `Authorization` header of a request (fresh nonce, current time); `form` are the
    /// pairs of an `application/x-www-form-urlencoded` body, which are signed too.
    pub fn header(&self, method: &str, path_and_query: &str, form: &[(&str, &str)]) -> String {
        oauth_header(
            method,
            &format!("{}{}", self.base, path_and_query),
            &self.key,
            &self.secret,
            &self.token_secret,
            &[("oauth_token", &self.token)],
            form,
            &integration_host::crypto::random_string(24),
            unix_now(),
        )
    }

    /// A signed request without a body.
    pub fn request(&self, method: &str, path_and_query: &str) -> reqwest::RequestBuilder {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        self.client
            .request(m, format!("{}{}", self.base, path_and_query))
            .header("Authorization", self.header(method, path_and_query, &[]))
    }

    /// A signed request with a JSON body (not part of the signature, as RFC 5849 says).
    pub fn json(
        &self,
        method: &str,
        path_and_query: &str,
        body: &serde_json::Value,
    ) -> reqwest::RequestBuilder {
        self.request(method, path_and_query).json(body)
    }

    /// A signed request with a form body, whose pairs are signed.
    pub fn form(
        &self,
        method: &str,
        path_and_query: &str,
        form: &[(&str, &str)],
    ) -> reqwest::RequestBuilder {
        let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        self.client
            .request(m, format!("{}{}", self.base, path_and_query))
            .header("Authorization", self.header(method, path_and_query, form))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
    }
}

/// Sends a request and returns the status with the body as JSON (or `null` when it is not).
pub async fn send_json(req: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let text = res.text().await.expect("body read");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// The `integration-host` binary of this build, built on first use. A missing binary fails the
/// test; it never skips it.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps/<test>")
            .to_owned();
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace).args([
            "build",
            "--quiet",
            "-p",
            "integration-host",
            "--bin",
            "integration-host",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(
            status.success(),
            "building the integration-host binary failed"
        );
        let bin = profile_dir.join("integration-host");
        assert!(bin.exists(), "{} is missing after the build", bin.display());
        bin
    })
}

/// A configuration folder for running the binary against one test database.
#[derive(Debug)]
pub struct CliEnv {
    pub db: TestDb,
    pub config: PathBuf,
}

impl CliEnv {
    /// A fresh database and a configuration file pointing at it. With PostgreSQL the file
    /// carries keys, as production must.
    pub async fn new() -> Self {
        let db = TestDb::new().await;
        Self::on(db)
    }

    pub fn on(db: TestDb) -> Self {
        let config = db.dir.path().join("config.toml");
        let data_dir = db.dir.path().join("data");
        let mut text = format!(
            "data_dir = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n[database]\nurl = {:?}\npool_size = 4\n[log]\nlevel = \"info\"\nformat = \"json\"\n",
            data_dir.display().to_string(),
            db.url_string()
        );
        if db.postgres.is_some() {
            text.push_str(&format!(
                "[crypto]\nsecret_keys = [{:?}]\nlookup_key = {:?}\n[tokens]\nsigning_keys = [{:?}]\n",
                KeySpec::generate("k1").expose(),
                KeySpec::generate("lookup").expose(),
                KeySpec::generate("t1").expose()
            ));
        }
        std::fs::write(&config, text).expect("write config");
        Self { db, config }
    }

    /// Runs the binary with `--config` and `args`, feeding `stdin`; waits for it to exit.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        run_binary(&self.config, args, stdin, &[])
    }

    /// Opens the test database as the server would.
    pub async fn store(&self) -> Store {
        let s = integration_host::config::DatabaseSettings::default();
        Store::connect(&self.db.url, &s).await.expect("open store")
    }
}

/// Runs the binary with a configuration file, extra environment, and standard input.
pub fn run_binary(config: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    use std::io::Write as _;
    let mut cmd = Command::new(binary());
    cmd.arg("--config").arg(config).args(args);
    cmd.env_remove("INTEGRATION_HOST_CONFIG");
    for (k, _) in std::env::vars() {
        if k.starts_with("APP_") {
            cmd.env_remove(k);
        }
    }
    cmd.envs(env.iter().copied());
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start integration-host");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).ok();
    child.wait_with_output().expect("wait for integration-host")
}

/// Text of standard output and error, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The binary running `serve`, with its output captured.
#[derive(Debug)]
pub struct ServerProcess {
    child: std::process::Child,
    pub port: u16,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl ServerProcess {
    /// Starts `integration-host --config CONFIG serve ARGS` and waits until it listens.
    pub fn start(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        use std::io::BufRead as _;
        use std::sync::{Arc, Mutex};
        let mut cmd = Command::new(binary());
        cmd.arg("--config").arg(config).arg("serve").args(args);
        for (k, _) in std::env::vars() {
            if k.starts_with("APP_") {
                cmd.env_remove(k);
            }
        }
        cmd.envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start integration-host serve");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        for (pipe, buf) in [
            (
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
                stdout.clone(),
            ),
            (Box::new(child.stderr.take().unwrap()), stderr.clone()),
        ] {
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut b = buf.lock().unwrap();
                    b.push_str(&line);
                    b.push('\n');
                }
            });
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let Some(port) = find_port(&stderr.lock().unwrap()) {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "integration-host serve exited with {status} before listening:\n{}\n{}",
                    stdout.lock().unwrap(),
                    stderr.lock().unwrap()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "integration-host serve did not listen within 60 s:\n{}",
                stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Self {
            child,
            port,
            stdout,
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Standard output once it contains `needle` (the server prints after it logs that it
    /// listens, and the two pipes are read apart); panics after `limit`.
    pub fn wait_stdout(&self, needle: &str, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let out = self.stdout();
            if out.contains(needle) {
                return out;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "`{needle}` not printed within {limit:?}; stdout:\n{out}\nstderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).expect("send SIGTERM");
    }

    /// Waits up to `limit` for the process to exit; returns its status.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not exit within {limit:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM) and waits for it.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate();
        self.wait_exit(Duration::from_secs(30))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port from the server's "listening" log line (JSON or text).
fn find_port(log: &str) -> Option<u16> {
    log.lines()
        .filter(|l| l.contains("listening on http://"))
        .find_map(|l| {
            let rest = &l[l.find("listening on http://")? + "listening on http://".len()..];
            let addr: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '"')
                .collect();
            addr.rsplit(':').next()?.parse().ok()
        })
}

/// Runs a scalar `SELECT` directly on the test database, bypassing the server: for tests that
/// must read what is really stored.
pub async fn raw_scalar_i64(db: &TestDb, sql: &str) -> Result<i64, sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match &db.url {
        DatabaseUrl::Sqlite(path) => {
            let mut conn =
                sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
            let v: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await?;
            conn.close().await.ok();
            Ok(v)
        }
        DatabaseUrl::Postgres(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            let v: i64 = sqlx::query_scalar(sql).fetch_one(&mut conn).await?;
            conn.close().await.ok();
            Ok(v)
        }
    }
}

/// Runs one statement on the test database outside the server; answers the rows affected.
/// Whether any row's `column` of `table` holds `value`'s bytes anywhere (a search for
/// plaintext). `value` must not contain a quote.
pub async fn raw_contains(db: &TestDb, table: &str, column: &str, value: &str) -> bool {
    assert!(!value.contains('\''));
    let sql = if db.postgres.is_some() {
        format!(
            "SELECT COUNT(*) FROM {table} WHERE position(convert_to('{value}', 'UTF8') IN {column}) > 0"
        )
    } else {
        format!(
            "SELECT COUNT(*) FROM {table} WHERE instr(CAST({column} AS BLOB), CAST('{value}' AS BLOB)) > 0"
        )
    };
    raw_scalar_i64(db, &sql).await.expect("search runs") > 0
}

pub async fn raw_execute(db: &TestDb, sql: &str) -> Result<u64, sqlx::Error> {
    let sql = sqlx::AssertSqlSafe(sql.to_owned());
    match &db.url {
        DatabaseUrl::Sqlite(path) => {
            let mut conn =
                sqlx::SqliteConnection::connect(&format!("sqlite://{}", path.display())).await?;
            let n = sqlx::query(sql).execute(&mut conn).await?.rows_affected();
            conn.close().await.ok();
            Ok(n)
        }
        DatabaseUrl::Postgres(url) => {
            let mut conn = sqlx::PgConnection::connect(url).await?;
            let n = sqlx::query(sql).execute(&mut conn).await?.rows_affected();
            conn.close().await.ok();
            Ok(n)
        }
    }
}

/// Signs a request as an OAuth 1.0a client would and returns the `Authorization` header value.
/// `extra` holds protocol parameters beyond the standard ones (`oauth_token`, `oauth_verifier`,
/// `oauth_callback`); `form` the body parameters, which are signed too.
#[allow(clippy::too_many_arguments)]
pub fn oauth_header(
    method: &str,
    url: &str,
    consumer_key: &str,
    consumer_secret: &str,
    token_secret: &str,
    extra: &[(&str, &str)],
    form: &[(&str, &str)],
    nonce: &str,
    timestamp: i64,
) -> String {
    use integration_host::oauth;
    let mut protocol: Vec<(String, String)> = vec![
        ("oauth_consumer_key".into(), consumer_key.into()),
        ("oauth_nonce".into(), nonce.into()),
        ("oauth_signature_method".into(), "HMAC-SHA256".into()),
        ("oauth_timestamp".into(), timestamp.to_string()),
        ("oauth_version".into(), "1.0".into()),
    ];
    protocol.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let parsed = url::Url::parse(url).unwrap();
    let mut signed = protocol.clone();
    signed.extend(
        parsed
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned())),
    );
    signed.extend(form.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let base = oauth::base_string(method, &oauth::SignedUrl::from(&parsed), &signed);
    let signature = oauth::sign(
        oauth::SignatureMethod::HmacSha256,
        consumer_secret,
        token_secret,
        &base,
    );
    protocol.push(("oauth_signature".into(), signature));
    let fields: Vec<String> = protocol
        .iter()
        .map(|(k, v)| {
            format!(
                "{}=\"{}\"",
                oauth::percent_encode(k),
                oauth::percent_encode(v)
            )
        })
        .collect();
    format!("OAuth {}", fields.join(", "))
}

/// Current time, unix seconds.
pub fn unix_now() -> i64 {
    integration_host::clock::now()
}

/// The form posts a [`Recorder`] received, oldest first.
pub type Posts = std::sync::Arc<std::sync::Mutex<Vec<Vec<(String, String)>>>>;

/// A local HTTP endpoint that records the form posts it receives, as an integrator's
/// activation endpoint would; answers with `status`. Its identity link, `GET /identity`, sends
/// the browser on to the `success_call_back` it was given (and counts the visits).
#[derive(Debug)]
pub struct Recorder {
    pub url: String,
    /// The identity link's URL.
    pub identity: String,
    pub posts: Posts,
    pub identity_visits: std::sync::Arc<std::sync::atomic::AtomicU32>,
    handle: actix_web::dev::ServerHandle,
}

impl Recorder {
    pub async fn start(status: u16) -> Self {
        use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
        let posts: Posts = Default::default();
        let recorded = posts.clone();
        let identity_visits: std::sync::Arc<std::sync::atomic::AtomicU32> = Default::default();
        let visits = identity_visits.clone();
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(move || {
            let recorded = recorded.clone();
            let visits = visits.clone();
            App::new()
                .route(
                    "/identity",
                    web::get().to(move |req: HttpRequest| {
                        visits.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        let back = form_urlencoded::parse(req.query_string().as_bytes())
                            .find(|(k, _)| k == "success_call_back")
                            .map(|(_, v)| v.into_owned())
                            .unwrap_or_default();
                        async move {
                            HttpResponse::Found()
                                .insert_header(("Location", back))
                                .finish()
                        }
                    }),
                )
                .default_service(web::to(move |body: web::Bytes| {
                    let recorded = recorded.clone();
                    async move {
                        let form: Vec<(String, String)> = form_urlencoded::parse(&body)
                            .map(|(k, v)| (k.into_owned(), v.into_owned()))
                            .collect();
                        recorded.lock().unwrap().push(form);
                        HttpResponse::build(actix_web::http::StatusCode::from_u16(status).unwrap())
                            .finish()
                    }
                }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            url: format!("http://127.0.0.1:{port}/activate"),
            identity: format!("http://127.0.0.1:{port}/identity"),
            posts,
            identity_visits,
            handle,
        }
    }

    /// The last post's value of `name`.
    pub fn field(&self, name: &str) -> Option<String> {
        let posts = self.posts.lock().unwrap();
        posts
            .last()?
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        drop(handle.stop(false));
    }
}

/// A local upstream service that answers every request with what it received, as JSON:
/// `method`, `path` (with the query), `headers` (lower-case names, repeated values joined with
/// `, `) and `body` (as text).
#[derive(Debug)]
pub struct Upstream {
    pub port: u16,
    handle: actix_web::dev::ServerHandle,
}

impl Upstream {
    pub async fn start() -> Self {
        use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = HttpServer::new(|| {
            App::new().default_service(web::to(|req: HttpRequest, body: web::Bytes| async move {
                let mut headers = serde_json::Map::new();
                for (name, value) in req.headers() {
                    let v = String::from_utf8_lossy(value.as_bytes()).into_owned();
                    let entry = headers
                        .entry(name.as_str().to_owned())
                        .or_insert_with(|| serde_json::Value::String(String::new()));
                    let joined = match entry.as_str() {
                        Some("") | None => v,
                        Some(prior) => format!("{prior}, {v}"),
                    };
                    *entry = serde_json::Value::String(joined);
                }
                HttpResponse::Ok()
                    .insert_header(("X-Upstream", "echo"))
                    .json(serde_json::json!({
                        "method": req.method().as_str(),
                        "path": req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/"),
                        "headers": headers,
                        "body": String::from_utf8_lossy(&body),
                    }))
            }))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self { port, handle }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        drop(self.handle.stop(false));
    }
}

/// The protocol parameters of an `Authorization: OAuth …` value made by [`oauth_header`], to
/// send them in a form body or query instead.
pub fn oauth_params(header: &str) -> Vec<(String, String)> {
    integration_host::oauth::parse_authorization(header).expect("a header made by oauth_header")
}

/// The plugin components built from `plugins/` (the samples and the test plugins of
/// `tests/plugins/`) for `wasm32-wasip2`, built once per test run. A component that is missing
/// after the build fails the test; it never skips it.
pub fn plugin_component(name: &str) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let plugins = workspace.join("plugins");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(&plugins)
            .args(["build", "--quiet", "--locked", "--release", "--target", "wasm32-wasip2"])
            // The test binary's own build settings must not leak into the guest build.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .expect("cargo runs to build the plugins");
        assert!(
            out.status.success(),
            "building the plugins for wasm32-wasip2 failed (run `rustup target add wasm32-wasip2`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        plugins.join("target/wasm32-wasip2/release")
    });
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "plugin component {} is missing",
        path.display()
    );
    path
}

/// A folder of plugin folders for `plugins.directories`, written by the test.
#[derive(Debug)]
pub struct PluginFolder {
    pub dir: tempfile::TempDir,
}

impl Default for PluginFolder {
    fn default() -> Self {
        Self::new()
    }
}

impl PluginFolder {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Writes `<id>/plugin.toml`: `id`, `version = "0.1.0"`, `api_version = "1.0"`, the
    /// component (built from `component`, e.g. `misbehave`), then `rest` verbatim. Written to a
    /// temporary file and renamed, as a deployment would.
    pub fn write(&self, id: &str, component: &str, rest: &str) -> PathBuf {
        self.write_raw(
            id,
            &format!(
                "id = {id:?}\nversion = \"0.1.0\"\napi_version = \"1.0\"\ncomponent = {:?}\n{rest}",
                plugin_component(component).display().to_string()
            ),
        )
    }

    /// Writes `<folder>/plugin.toml` with exactly `text`.
    pub fn write_raw(&self, folder: &str, text: &str) -> PathBuf {
        let dir = self.dir.path().join(folder);
        std::fs::create_dir_all(&dir).expect("plugin folder");
        let tmp = dir.join(".plugin.toml.tmp");
        std::fs::write(&tmp, text).expect("write manifest");
        std::fs::rename(&tmp, dir.join("plugin.toml")).expect("rename manifest");
        dir
    }

    /// Removes a plugin folder.
    pub fn remove(&self, folder: &str) {
        std::fs::remove_dir_all(self.dir.path().join(folder)).expect("remove plugin folder");
    }
}

/// A sample plugin's manifest from `plugins/<name>/plugin.toml`, with its component path made
/// absolute so that it can be copied into a test's plugin folder.
pub fn sample_manifest(name: &str) -> String {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let text = std::fs::read_to_string(workspace.join("plugins").join(name).join("plugin.toml"))
        .expect("sample manifest");
    let component = plugin_component(&name.replace('-', "_"));
    text.lines()
        .map(|l| {
            if l.starts_with("component = ") {
                format!("component = {:?}", component.display().to_string())
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
