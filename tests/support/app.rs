//! The server in-process on port 0 with test settings, and what tests do with it: accounts, integrations, signed callers.

use std::path::PathBuf;
use std::time::Duration;

use integration_host::config::{KeySpec, ListenAddr, Settings};
use integration_host::services::accounts::BootstrapAdmin;
use integration_host::startup::Application;
use integration_host::store::Store;

use super::*;

/// Settings for a test server on `db`: port 0, keys set (PostgreSQL requires them), quiet.
pub fn test_settings(db: &TestDb) -> Settings {
    let mut s = Settings::default();
    s.data_dir = db.dir.path().join("data");
    s.server.listen = ListenAddr::parse("127.0.0.1:0").unwrap();
    s.server.workers = 2;
    s.database.url = Some(db.url.clone());
    s.database.pool_size = 4;
    // The suite runs dozens of servers and plugin builds at once on two cores: opening a fresh
    // database (its migrations) took more than the default 5 s to hand out a connection twice
    // in `roles::role_refusals_are_clear_and_change_nothing`. A server that truly cannot get
    // one still fails, later.
    s.database.acquire_timeout_seconds = 30;
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

/// Starts the server on an existing test database, and waits until no plugin is loading (a
/// component not in the compile cache compiles in the background after the server listens).
pub async fn spawn_on(db: TestDb, settings: Settings) -> TestApp {
    let app = spawn_unsettled(db, settings).await;
    app.plugins.settled().await;
    app
}

/// Starts the server on an existing test database, returning as soon as it listens (plugins
/// not compiled yet still loading).
pub async fn spawn_unsettled(db: TestDb, settings: Settings) -> TestApp {
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
        self.config_file_for(&self.settings, "app-config.toml")
    }

    /// Writes a configuration file named `name` for running the binary against this server's
    /// database with the keys and declarative folders of `s`; answers its path.
    pub fn config_file_for(&self, s: &Settings, name: &str) -> PathBuf {
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
            "data_dir = {:?}\n[database]\nurl = {:?}\npool_size = 2\n[crypto]\nsecret_keys = [{}]\nnext_secret_keys = [{}]\nlookup_key = {:?}\n[tokens]\nsigning_keys = [{}]\nnext_signing_keys = [{}]\n[integrations]\ndirectories = [{dirs}]\n[log]\nformat = \"json\"\n",
            s.data_dir.display().to_string(),
            self.db.url_string(),
            keys(&s.crypto.secret_keys),
            keys(&s.crypto.next_secret_keys),
            s.crypto.lookup_key.as_ref().unwrap().expose(),
            keys(&s.tokens.signing_keys),
            keys(&s.tokens.next_signing_keys),
        );
        let path = self.db.dir.path().join(name);
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

    /// Creates the admin `jane` (password `secret123`) and signs her in through the REST token
    /// route; answers her token.
    pub async fn admin_token(&self) -> String {
        self.account(
            integration_host::domain::AccountKind::Admin,
            "jane",
            "secret123",
        )
        .await;
        let (status, token) = send_json(
            fresh_client()
                .post(self.url("/rest/V1/integration/admin/token"))
                .json(&serde_json::json!({"username": "jane", "password": "secret123"})),
        )
        .await;
        assert_eq!(status, 200, "{token}");
        token.as_str().unwrap().to_owned()
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
/// A client that keeps no idle connection and follows no redirect: for tests that run slow
/// plugins or CLI commands between requests, where a kept connection may have been closed by
/// the server's keep-alive in the meantime (and for the admin UI's sign-in).
pub fn fresh_client() -> reqwest::Client {
    reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

pub async fn send_json(req: reqwest::RequestBuilder) -> (u16, serde_json::Value) {
    let res = req.send().await.expect("request sent");
    let status = res.status().as_u16();
    let text = res.text().await.expect("body read");
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

/// The `name=value` pairs a response sets, as one `Cookie` header value.
fn cookies(res: &reqwest::Response) -> Vec<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_owned))
        .collect()
}

/// Signs in to the admin UI as a browser would; answers the session's `Cookie` header.
pub async fn admin_ui_session(
    client: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> String {
    let page = client
        .get(format!("{base}/admin/login"))
        .send()
        .await
        .unwrap();
    let mut jar = cookies(&page);
    let html = page.text().await.unwrap();
    let form_key = html
        .split("name=\"form_key\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .expect("the sign-in form has a form key")
        .to_owned();
    let res = client
        .post(format!("{base}/admin/login"))
        .header("Cookie", jar.join("; "))
        .form(&[
            ("username", user),
            ("password", password),
            ("form_key", &form_key),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    jar.extend(cookies(&res));
    jar.join("; ")
}
