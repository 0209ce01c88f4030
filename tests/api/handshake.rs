//! The OAuth 1.0a activation handshake against the real server: the activation POST to a local
//! endpoint, request token, access token, Magento's error texts and codes, replay refusal, and
//! what the database stores.

use integration_host::domain::{IntegrationStatus, SetupType};
use integration_host::services::integration::{
    Activation, EndpointUrl, IntegrationInput, IntegrationName,
};
use integration_host_tests::{
    Recorder, TestApp, oauth_header, raw_contains, raw_scalar_i64, spawn_app, spawn_app_with,
    unix_now,
};

fn input(name: &str, endpoint: Option<&str>, link: Option<&str>) -> IntegrationInput {
    IntegrationInput {
        name: IntegrationName::parse(name).unwrap(),
        email: None,
        endpoint: endpoint.map(|u| EndpointUrl::parse(u).unwrap()),
        identity_link_url: link.map(|u| EndpointUrl::parse(u).unwrap()),
        setup_type: SetupType::Manual,
        all_resources: false,
        resources: vec!["Magento_Integration::integrations".into()],
        config_hash: String::new(),
    }
}

fn parse_form(body: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(body.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn get<'a>(form: &'a [(String, String)], name: &str) -> &'a str {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or_else(|| panic!("{name} missing from {form:?}"))
}

/// What the integrator holds after the activation POST.
struct Credentials {
    key: String,
    secret: String,
    verifier: String,
    integration_id: i64,
}

async fn activate(app: &TestApp, recorder: &Recorder) -> Credentials {
    activate_named(app, recorder, "Partner").await
}

async fn activate_named(app: &TestApp, recorder: &Recorder, name: &str) -> Credentials {
    let created = app
        .integrations
        .create(input(
            name,
            Some(&recorder.url),
            Some("https://partner.example/login"),
        ))
        .await
        .unwrap();
    let outcome = app.integrations.activate(created.id, false).await.unwrap();
    let Activation::IdentityLink(link) = outcome else {
        panic!("expected the identity-link flow, got {outcome:?}");
    };
    let key = recorder.field("oauth_consumer_key").expect("key posted");
    assert!(link.starts_with("https://partner.example/login?oauth_consumer_key="));
    assert!(
        link.contains(&key) && link.contains("success_call_back="),
        "{link}"
    );
    assert_eq!(
        recorder.field("store_base_url").as_deref(),
        Some(app.settings.server.base_url.as_str())
    );
    Credentials {
        key,
        secret: recorder.field("oauth_consumer_secret").unwrap(),
        verifier: recorder.field("oauth_verifier").unwrap(),
        integration_id: created.id,
    }
}

async fn post_signed(app: &TestApp, path: &str, header: String) -> (u16, String) {
    let res = app
        .client
        .post(app.url(path))
        .header("Authorization", header)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.text().await.unwrap())
}

fn nonce() -> String {
    integration_host::crypto::random_string(16)
}

/// A correctly signed request-token header with a fresh nonce and the current time.
fn fresh_request_header(url: &str, c: &Credentials) -> String {
    oauth_header(
        "POST",
        url,
        &c.key,
        &c.secret,
        "",
        &[],
        &[],
        &nonce(),
        unix_now(),
    )
}

async fn request_token(app: &TestApp, c: &Credentials) -> (String, String) {
    let url = app.url("/oauth/token/request");
    let header = fresh_request_header(&url, c);
    let (status, body) = post_signed(app, "/oauth/token/request", header).await;
    assert_eq!(status, 200, "{body}");
    let form = parse_form(&body);
    assert_eq!(get(&form, "oauth_callback_confirmed"), "true");
    (
        get(&form, "oauth_token").to_owned(),
        get(&form, "oauth_token_secret").to_owned(),
    )
}

fn access_header(
    app: &TestApp,
    c: &Credentials,
    token: &str,
    secret: &str,
    verifier: &str,
) -> String {
    oauth_header(
        "POST",
        &app.url("/oauth/token/access"),
        &c.key,
        &c.secret,
        secret,
        &[("oauth_token", token), ("oauth_verifier", verifier)],
        &[],
        &nonce(),
        unix_now(),
    )
}

#[tokio::test]
async fn the_whole_handshake_activates_the_integration() {
    let app = spawn_app().await;
    let recorder = Recorder::start(200).await;
    let c = activate(&app, &recorder).await;
    assert_eq!(
        app.integrations.get(c.integration_id).await.unwrap().status,
        IntegrationStatus::Inactive
    );

    let (token, secret) = request_token(&app, &c).await;
    assert_eq!(token.len(), 32);
    let header = access_header(&app, &c, &token, &secret, &c.verifier);
    let (status, body) = post_signed(&app, "/oauth/token/access", header).await;
    assert_eq!(status, 200, "{body}");
    let form = parse_form(&body);
    let access = get(&form, "oauth_token");
    assert_eq!(access.len(), 32);
    assert_eq!(get(&form, "oauth_token_secret").len(), 32);
    assert_ne!(access, token);
    assert_eq!(
        app.integrations.get(c.integration_id).await.unwrap().status,
        IntegrationStatus::Active
    );

    // The request token cannot be exchanged twice.
    let header = access_header(&app, &c, &token, &secret, &c.verifier);
    let (status, body) = post_signed(&app, "/oauth/token/access", header).await;
    assert_eq!(
        (status, body.as_str()),
        (401, "oauth_problem=Specified+token+does+not+exist")
    );
}

#[tokio::test]
async fn nothing_secret_is_stored_in_plaintext() {
    let app = spawn_app().await;
    let recorder = Recorder::start(200).await;
    let c = activate(&app, &recorder).await;
    let (token, secret) = request_token(&app, &c).await;
    for (what, value) in [
        ("consumer secret", &c.secret),
        ("verifier", &c.verifier),
        ("request token", &token),
        ("request token secret", &secret),
    ] {
        for (table, column) in [
            ("oauth_consumer", "secret"),
            ("oauth_token", "token"),
            ("oauth_token", "secret"),
            ("oauth_token", "verifier"),
            ("oauth_token", "token_hash"),
        ] {
            // Search the stored bytes for the value's bytes, anywhere in the column.
            assert!(
                !raw_contains(&app.db, table, column, value).await,
                "{what} found in plaintext in {table}.{column}"
            );
        }
    }
    // The consumer key is public and stored as is: the same search finds it (a control that
    // the search above can fail).
    let sql = if app.db.postgres.is_some() {
        format!(
            "SELECT COUNT(*) FROM oauth_consumer WHERE position(convert_to('{}', 'UTF8') IN convert_to(\"key\", 'UTF8')) > 0",
            c.key
        )
    } else {
        format!(
            "SELECT COUNT(*) FROM oauth_consumer WHERE instr(CAST(\"key\" AS BLOB), CAST('{}' AS BLOB)) > 0",
            c.key
        )
    };
    assert_eq!(raw_scalar_i64(&app.db, &sql).await.unwrap(), 1);
}

#[tokio::test]
async fn errors_follow_magentos_catalogue() {
    let app = spawn_app().await;
    let recorder = Recorder::start(200).await;
    let c = activate(&app, &recorder).await;
    let url = app.url("/oauth/token/request");
    let now = unix_now();

    // Missing parameters: 400 with every missing name.
    let (status, body) = post_signed(
        &app,
        "/oauth/token/request",
        "OAuth oauth_version=\"1.0\"".into(),
    )
    .await;
    assert_eq!(status, 400);
    let problem = get(&parse_form(&body), "oauth_problem").to_owned();
    assert_eq!(
        problem,
        "\"oauth_consumer_key\" is required. Enter and try again, \"oauth_signature\" is required. Enter and try again, \"oauth_signature_method\" is required. Enter and try again, \"oauth_nonce\" is required. Enter and try again, \"oauth_timestamp\" is required. Enter and try again"
    );

    let cases: Vec<(String, u16, &str)> = vec![
        // One missing parameter keeps Magento's full stop (only a joined list drops them).
        (
            oauth_header("POST", &url, &c.key, &c.secret, "", &[], &[], &nonce(), now)
                .replace("oauth_nonce=", "oauth_nonce_not="),
            400,
            "\"oauth_nonce\" is required. Enter and try again.",
        ),
        // An empty consumer key skips the length check, as in Magento's token provider.
        (
            oauth_header("POST", &url, "", &c.secret, "", &[], &[], &nonce(), now),
            401,
            "A consumer having the specified key does not exist",
        ),
        (
            oauth_header(
                "POST",
                &url,
                &c.key,
                &c.secret,
                "",
                &[("oauth_version", "2.0")],
                &[],
                &nonce(),
                now,
            )
            .replace("oauth_version=\"1.0\", ", ""),
            400,
            "The \"2.0\" Oauth version isn't supported.",
        ),
        (
            oauth_header(
                "POST",
                &url,
                "short",
                &c.secret,
                "",
                &[],
                &[],
                &nonce(),
                now,
            ),
            401,
            "Consumer key is not the correct length",
        ),
        (
            oauth_header(
                "POST",
                &url,
                &"x".repeat(32),
                &c.secret,
                "",
                &[],
                &[],
                &nonce(),
                now,
            ),
            401,
            "A consumer having the specified key does not exist",
        ),
        (
            oauth_header(
                "POST",
                &url,
                &c.key,
                &c.secret,
                "",
                &[],
                &[],
                &nonce(),
                now - 3600,
            ),
            401,
            "The oauth_timestamp is not within 600 seconds of the server time",
        ),
        (
            oauth_header(
                "POST",
                &url,
                &c.key,
                &c.secret,
                "",
                &[],
                &[],
                &nonce(),
                now + 3600,
            ),
            401,
            "The oauth_timestamp is not within 600 seconds of the server time",
        ),
        (
            oauth_header(
                "POST",
                &url,
                &c.key,
                "wrong-secret",
                "",
                &[],
                &[],
                &nonce(),
                now,
            ),
            401,
            "The signature is invalid. Verify and try again.",
        ),
        (
            oauth_header("POST", &url, &c.key, &c.secret, "", &[], &[], &nonce(), now)
                .replace("HMAC-SHA256", "HMAC-SHA1"),
            400,
            "Signature method HMAC-SHA1 is not supported",
        ),
        (
            oauth_header(
                "POST",
                &url,
                &c.key,
                &c.secret,
                "",
                &[],
                &[],
                &"n".repeat(65),
                now,
            ),
            400,
            "The oauth_nonce must be 1 to 64 characters long",
        ),
    ];
    for (header, want_status, want_problem) in cases {
        let (status, body) = post_signed(&app, "/oauth/token/request", header).await;
        assert_eq!(
            (status, get(&parse_form(&body), "oauth_problem")),
            (want_status, want_problem)
        );
    }

    // After all these refusals the verifier token still works.
    let (token, secret) = request_token(&app, &c).await;
    let wrong = integration_host::crypto::random_token();
    let (status, body) = post_signed(
        &app,
        "/oauth/token/access",
        access_header(&app, &c, &token, &secret, &wrong),
    )
    .await;
    assert_eq!(
        (status, get(&parse_form(&body), "oauth_problem")),
        (401, "Token verifier and verifier token do not match")
    );
    let (status, body) = post_signed(
        &app,
        "/oauth/token/access",
        access_header(&app, &c, &token, &secret, "short"),
    )
    .await;
    assert_eq!(
        (status, get(&parse_form(&body), "oauth_problem")),
        (401, "Verifier is not the correct length")
    );
    // A second request token is refused: the verifier token was used.
    let header = fresh_request_header(&url, &c);
    let (status, body) = post_signed(&app, "/oauth/token/request", header).await;
    assert_eq!(
        (status, get(&parse_form(&body), "oauth_problem")),
        (
            401,
            "Cannot create request token because consumer token is not a verifier token"
        )
    );
}

#[tokio::test]
async fn a_replayed_nonce_is_refused_and_a_forged_request_does_not_burn_it() {
    let app = spawn_app().await;
    let recorder = Recorder::start(200).await;
    let c = activate(&app, &recorder).await;
    let url = app.url("/oauth/token/request");
    let now = unix_now();
    let n = nonce();

    // A forged request with the nonce the client is about to use fails on the signature...
    let forged = oauth_header("POST", &url, &c.key, "guess", "", &[], &[], &n, now);
    let (status, _) = post_signed(&app, "/oauth/token/request", forged).await;
    assert_eq!(status, 401);
    // ...and the client's real request with that nonce still succeeds.
    let header = oauth_header("POST", &url, &c.key, &c.secret, "", &[], &[], &n, now);
    let (status, body) = post_signed(&app, "/oauth/token/request", header.clone()).await;
    assert_eq!(status, 200, "{body}");
    // Replaying it is refused.
    let (status, body) = post_signed(&app, "/oauth/token/request", header).await;
    let consumer = app
        .integrations
        .get(c.integration_id)
        .await
        .unwrap()
        .consumer_id;
    assert_eq!(
        (status, get(&parse_form(&body), "oauth_problem").to_owned()),
        (
            401,
            format!("The nonce is already being used by the consumer with ID {consumer}")
        )
    );
}

#[tokio::test]
async fn an_expired_exchange_window_is_refused() {
    let app = spawn_app_with(|s| s.oauth.consumer_exchange_window_seconds = 1).await;
    let recorder = Recorder::start(200).await;
    let c = activate(&app, &recorder).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let url = app.url("/oauth/token/request");
    let header = fresh_request_header(&url, &c);
    let (status, body) = post_signed(&app, "/oauth/token/request", header).await;
    assert_eq!(
        (status, get(&parse_form(&body), "oauth_problem")),
        (401, "Consumer key has expired")
    );
}

#[tokio::test]
async fn activation_reports_an_unreachable_or_refusing_endpoint() {
    let app = spawn_app().await;
    // A port nothing listens on.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let created = app
        .integrations
        .create(input(
            "Gone",
            Some(&format!("http://127.0.0.1:{closed}/x")),
            Some("https://partner.example/login"),
        ))
        .await
        .unwrap();
    let err = app
        .integrations
        .activate(created.id, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("could not be reached"), "{err}");
    assert!(!err.contains("secret"), "{err}");

    let refusing = Recorder::start(500).await;
    let created = app
        .integrations
        .create(input(
            "Refusing",
            Some(&refusing.url),
            Some("https://partner.example/login"),
        ))
        .await
        .unwrap();
    let err = app
        .integrations
        .activate(created.id, false)
        .await
        .unwrap_err()
        .to_string();
    assert!(err.contains("answered HTTP 500"), "{err}");
}

#[tokio::test]
async fn without_an_endpoint_activation_mints_the_tokens() {
    let app = spawn_app().await;
    let created = app
        .integrations
        .create(input("Local", None, None))
        .await
        .unwrap();
    let outcome = app.integrations.activate(created.id, false).await.unwrap();
    assert_eq!(outcome, Activation::Minted);
    let i = app.integrations.get(created.id).await.unwrap();
    assert_eq!(i.status, IntegrationStatus::Active);
    // Activating again is refused; reauthorizing replaces the tokens.
    assert!(app.integrations.activate(created.id, false).await.is_err());
    assert_eq!(
        app.integrations.activate(created.id, true).await.unwrap(),
        Activation::Minted
    );
}

#[tokio::test]
async fn names_are_unique_regardless_of_case_and_delete_leaves_nothing() {
    let app = spawn_app().await;
    let a = app
        .integrations
        .create(input("Shop Sync", None, None))
        .await
        .unwrap();
    let err = app
        .integrations
        .create(input("shop sync", None, None))
        .await
        .unwrap_err()
        .to_string();
    assert_eq!(err, "Integration with name 'shop sync' exists.");
    app.integrations.activate(a.id, false).await.unwrap();
    app.integrations.delete(a.id).await.unwrap();
    for table in [
        "integration",
        "oauth_consumer",
        "oauth_token",
        "oauth_nonce",
    ] {
        let n = raw_scalar_i64(&app.db, &format!("SELECT COUNT(*) FROM {table}"))
            .await
            .unwrap();
        assert_eq!(n, 0, "{table} still has rows");
    }
}

/// A server failure answers 500 with Magento's `internal_error` problem, the whole text
/// form-encoded as Magento's `http_build_query` writes it.
#[tokio::test]
async fn a_server_failure_answers_magento_s_encoded_internal_error() {
    let app = spawn_app().await;
    let recorder = Recorder::start(200).await;
    let c = activate(&app, &recorder).await;
    // A consumer secret that no key opens: sealed for another column.
    integration_host_tests::raw_execute(
        &app.db,
        "UPDATE oauth_consumer SET secret = (SELECT token FROM oauth_token LIMIT 1)",
    )
    .await
    .unwrap();
    let url = app.url("/oauth/token/request");
    let header = oauth_header(
        "POST",
        &url,
        &c.key,
        &c.secret,
        "",
        &[],
        &[],
        &nonce(),
        unix_now(),
    );
    let (status, body) = post_signed(&app, "/oauth/token/request", header).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body,
        "oauth_problem=internal_error%26message%3DAn+internal+error+occurred"
    );
    assert_eq!(
        get(&parse_form(&body), "oauth_problem"),
        "internal_error&message=An internal error occurred"
    );
}

/// Every answer `docs/oauth-reference.md` gives as `<status> `<text>`` is what this server
/// answers: each is provoked here (templates match their rendered text, `%1` standing for any
/// value), and a text of the document no request here provokes fails the test.
#[tokio::test(flavor = "multi_thread")]
async fn every_answer_of_the_oauth_reference_is_the_server_s() {
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/oauth-reference.md"),
    )
    .unwrap();
    let documented = documented_answers(&doc);
    assert!(documented.len() >= 24, "{documented:?}");

    let mut seen: Vec<(u16, String)> = Vec::new();
    let app = spawn_app().await;
    let recorder = Recorder::start(200).await;
    let c = activate(&app, &recorder).await;
    let other_recorder = Recorder::start(200).await;
    let other = activate_named(&app, &other_recorder, "Other partner").await;
    let request_url = app.url("/oauth/token/request");
    let now = unix_now();
    let header = |key: &str, secret: &str, extra: &[(&str, &str)], ts: i64| {
        oauth_header(
            "POST",
            &request_url,
            key,
            secret,
            "",
            extra,
            &[],
            &nonce(),
            ts,
        )
    };

    // The request-token endpoint's checks, in order.
    for h in [
        header(&c.key, &c.secret, &[], now).replace("oauth_nonce=", "oauth_nonce_not="),
        header(&c.key, &c.secret, &[("oauth_version", "2.0")], now)
            .replace("oauth_version=\"1.0\", ", ""),
        header(&c.key, &c.secret, &[("oauth_token", "short")], now),
        header(&c.key, &c.secret, &[], now).replace("HMAC-SHA256", "HMAC-SHA1"),
        header("short", &c.secret, &[], now),
        header(&"x".repeat(32), &c.secret, &[], now),
        header(&c.key, &c.secret, &[], now - 3600),
        header(&c.key, "guess", &[], now),
    ] {
        let (status, body) = post_signed(&app, "/oauth/token/request", h).await;
        problem(&mut seen, status, &body);
    }
    let replayed = header(&c.key, &c.secret, &[], now);
    let (status, _) = post_signed(&app, "/oauth/token/request", replayed.clone()).await;
    assert_eq!(status, 200);
    let (status, body) = post_signed(&app, "/oauth/token/request", replayed).await;
    problem(&mut seen, status, &body);
    // The verifier token was used: a second request token is refused.
    let (status, body) = post_signed(
        &app,
        "/oauth/token/request",
        header(&c.key, &c.secret, &[], now),
    )
    .await;
    problem(&mut seen, status, &body);

    // The access-token endpoint's checks.
    let (token, secret) = request_token(&app, &other).await;
    for h in [
        access_header(
            &app,
            &c,
            &integration_host::crypto::random_token(),
            "",
            &c.verifier,
        ),
        access_header(&app, &c, &token, &secret, &c.verifier),
    ] {
        let (status, body) = post_signed(&app, "/oauth/token/access", h).await;
        problem(&mut seen, status, &body);
    }
    for verifier in ["short".to_owned(), integration_host::crypto::random_token()] {
        let (status, body) = post_signed(
            &app,
            "/oauth/token/access",
            access_header(&app, &other, &token, &secret, &verifier),
        )
        .await;
        problem(&mut seen, status, &body);
    }
    // Several exchanges of one request token at once: one wins; a loser that read the token
    // before the winner converted it fails the conversion, a later one finds it used.
    let mut raced = false;
    for round in 0..10 {
        let racer_recorder = Recorder::start(200).await;
        let racer = activate_named(&app, &racer_recorder, &format!("Racer {round}")).await;
        let (token, secret) = request_token(&app, &racer).await;
        let answers = futures_util::future::join_all((0..8).map(|_| {
            post_signed(
                &app,
                "/oauth/token/access",
                access_header(&app, &racer, &token, &secret, &racer.verifier),
            )
        }))
        .await;
        assert_eq!(
            answers.iter().filter(|(s, _)| *s == 200).count(),
            1,
            "{answers:?}"
        );
        for (status, body) in answers.iter().filter(|(s, _)| *s != 200) {
            problem(&mut seen, *status, body);
        }
        if round == 0 {
            // The winner's access token offered for an exchange: not a request token.
            let (_, won) = answers.iter().find(|(s, _)| *s == 200).unwrap();
            let won = parse_form(won);
            let (status, body) = post_signed(
                &app,
                "/oauth/token/access",
                access_header(
                    &app,
                    &racer,
                    get(&won, "oauth_token"),
                    get(&won, "oauth_token_secret"),
                    &racer.verifier,
                ),
            )
            .await;
            problem(&mut seen, status, &body);
        }
        if seen
            .iter()
            .any(|(_, t)| t.starts_with("Cannot get access token"))
        {
            raced = true;
            break;
        }
    }
    assert!(raced, "no exchange lost the race in ten rounds: {seen:?}");

    // A request token whose consumer has no token at all.
    integration_host_tests::raw_execute(
        &app.db,
        &format!(
            "DELETE FROM oauth_token WHERE consumer_id = (SELECT consumer_id FROM integration WHERE id = {})",
            c.integration_id
        ),
    )
    .await
    .unwrap();
    let (status, body) = post_signed(
        &app,
        "/oauth/token/request",
        header(&c.key, &c.secret, &[], now),
    )
    .await;
    problem(&mut seen, status, &body);

    // The exchange window, on a server that keeps it for a second.
    let brief = spawn_app_with(|s| s.oauth.consumer_exchange_window_seconds = 1).await;
    let brief_recorder = Recorder::start(200).await;
    let late = activate(&brief, &brief_recorder).await;
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let url = brief.url("/oauth/token/request");
    let (status, body) = post_signed(
        &brief,
        "/oauth/token/request",
        fresh_request_header(&url, &late),
    )
    .await;
    problem(&mut seen, status, &body);

    // Signed Web API requests, answered in the REST shape (templates).
    let caller = app
        .minted_integration("Caller", &["Magento_Integration::integrations"])
        .await;
    let second = app.minted_integration("Second", &[]).await;
    let rest = |token: &str, secret: &str| {
        let url = format!("{}/rest/V1/integrations", caller.base);
        let h = oauth_header(
            "GET",
            &url,
            &caller.key,
            &caller.secret,
            secret,
            &[("oauth_token", token)],
            &[],
            &nonce(),
            unix_now(),
        );
        caller.client.get(url).header("Authorization", h)
    };
    let mut rest_answers = vec![
        integration_host_tests::send_json(rest(&integration_host::crypto::random_token(), ""))
            .await,
        integration_host_tests::send_json(rest(&second.token, &second.token_secret)).await,
        integration_host_tests::send_json(second.request("GET", "/rest/V1/integrations")).await,
    ];
    // A request token on the Web API.
    let (request_token_value, request_secret) = {
        let r = Recorder::start(200).await;
        let fresh = activate_named(&app, &r, "Requester").await;
        let (t, s) = request_token(&app, &fresh).await;
        let url = format!("{}/rest/V1/integrations", caller.base);
        let h = oauth_header(
            "GET",
            &url,
            &fresh.key,
            &fresh.secret,
            &s,
            &[("oauth_token", &t)],
            &[],
            &nonce(),
            unix_now(),
        );
        rest_answers.push(
            integration_host_tests::send_json(caller.client.get(url).header("Authorization", h))
                .await,
        );
        (t, s)
    };
    let _ = (request_token_value, request_secret);
    integration_host_tests::raw_execute(
        &app.db,
        &format!(
            "UPDATE oauth_token SET revoked = TRUE WHERE consumer_id = {}",
            caller.consumer_id
        ),
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    rest_answers.push(
        integration_host_tests::send_json(caller.request("GET", "/rest/V1/integrations")).await,
    );
    for (status, body) in rest_answers {
        seen.push((
            status,
            body["message"].as_str().unwrap_or_default().to_owned(),
        ));
    }

    // A server failure.
    integration_host_tests::raw_execute(
        &app.db,
        "UPDATE oauth_consumer SET secret = (SELECT token FROM oauth_token LIMIT 1)",
    )
    .await
    .unwrap();
    let (status, body) = post_signed(
        &app,
        "/oauth/token/request",
        fresh_request_header(&request_url, &other),
    )
    .await;
    seen.push((status, body));

    let missing: Vec<&(u16, String)> = documented
        .iter()
        .filter(|(status, text)| {
            !seen
                .iter()
                .any(|(s, t)| s == status && (t == text || fills_template(text, t)))
        })
        .collect();
    assert!(
        missing.is_empty(),
        "answers of docs/oauth-reference.md no request here got: {missing:#?}\nseen: {seen:#?}"
    );
}

/// Records an `oauth_problem` answer.
fn problem(seen: &mut Vec<(u16, String)>, status: u16, body: &str) {
    seen.push((status, get(&parse_form(body), "oauth_problem").to_owned()));
}

/// Every `<status> `<text>`` of the reference (a status code, blanks, then a text in backticks).
fn documented_answers(doc: &str) -> Vec<(u16, String)> {
    let mut found = Vec::new();
    for status in ["400", "401", "403", "500", "503"] {
        for (at, _) in doc.match_indices(status) {
            let before = doc[..at].chars().next_back();
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '`') {
                continue;
            }
            let rest = doc[at + 3..].trim_start();
            if rest.len() == doc.len() - at - 3 {
                continue; // no blank after the code
            }
            if let Some(text) = rest.strip_prefix('`').and_then(|r| r.split_once('`')) {
                found.push((status.parse().unwrap(), text.0.to_owned()));
            }
        }
    }
    found
}

/// Whether `text` is `template` with each `%1` / `%name` standing for some non-empty value.
fn fills_template(template: &str, text: &str) -> bool {
    let mut literals = Vec::new();
    let mut rest = template;
    while let Some(at) = rest.find('%') {
        literals.push(&rest[..at]);
        let after = &rest[at + 1..];
        let name_len = after
            .find(|c: char| !c.is_ascii_alphanumeric())
            .unwrap_or(after.len());
        if name_len == 0 {
            return template == text;
        }
        rest = &after[name_len..];
    }
    literals.push(rest);
    if literals.len() == 1 {
        return template == text;
    }
    let Some(mut remaining) = text.strip_prefix(literals[0]) else {
        return false;
    };
    let last = literals.len() - 1;
    for literal in &literals[1..last] {
        match remaining.get(1..).and_then(|r| r.find(literal)) {
            Some(i) => remaining = &remaining[1 + i + literal.len()..],
            None => return false,
        }
    }
    remaining.len() > literals[last].len() && remaining.ends_with(literals[last])
}
