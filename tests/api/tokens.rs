//! Admin and customer tokens: Magento's scenarios (sign-in, input errors, wrong credentials,
//! throttling, inactive accounts, revocation), the JWT checks, opaque tokens, the ACL of the
//! server's own routes, and the `customer_login` event.

use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64URL;
use integration_host::config::{JwtAlgorithm, KeySpec, TokenFormat};
use integration_host::crypto::{Claims, JwtKeys};
use integration_host::domain::AccountKind;
use integration_host::events::{Event, Mode, Observer};
use integration_host_tests::{
    TestApp, raw_contains, raw_execute, raw_scalar_i64, send_json, spawn_app, spawn_app_with,
    unix_now,
};
use serde_json::{Value, json};

const FAILED: &str = "The account sign-in was incorrect or your account is disabled temporarily. Please wait and try again later.";
const ADMIN_TOKEN: &str = "/rest/V1/integration/admin/token";
const CUSTOMER_TOKEN: &str = "/rest/V1/integration/customer/token";
const REVOKE_SELF: &str = "/rest/V1/integration/customer/revoke-customer-token";
const PROTECTED: &str = "/rest/V1/integrations";

async fn sign_in(app: &TestApp, path: &str, username: &str, password: &str) -> (u16, Value) {
    app.post_json(path, &json!({"username": username, "password": password}))
        .await
}

async fn token(app: &TestApp, path: &str, username: &str, password: &str) -> String {
    let (status, body) = sign_in(app, path, username, password).await;
    assert_eq!(status, 200, "{body}");
    body.as_str()
        .expect("the token is a JSON string")
        .to_owned()
}

fn claims(token: &str) -> (Value, Value) {
    let mut parts = token.split('.');
    let header = B64URL.decode(parts.next().unwrap()).unwrap();
    let payload = B64URL.decode(parts.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&header).unwrap(),
        serde_json::from_slice(&payload).unwrap(),
    )
}

async fn status_with(app: &TestApp, method: &str, path: &str, token: &str) -> (u16, Value) {
    send_json(app.bearer(method, path, token)).await
}

#[tokio::test]
async fn admin_and_customer_sign_in_for_jwts_that_reach_their_routes() {
    let app = spawn_app().await;
    let admin_id = app.account(AccountKind::Admin, "jane", "secret123").await;
    let customer_id = app
        .account(AccountKind::Customer, "jo@example.com", "secret456")
        .await;

    let admin = token(&app, ADMIN_TOKEN, "jane", "secret123").await;
    let (header, payload) = claims(&admin);
    assert_eq!(header["alg"], "HS256");
    assert_eq!(header["kid"], "t1");
    assert_eq!(payload["uid"], admin_id);
    assert_eq!(payload["utypid"], 2);
    let iat = payload["iat"].as_i64().unwrap();
    assert!((iat - unix_now()).abs() <= 2);
    assert_eq!(payload["exp"].as_i64().unwrap() - iat, 3600);

    // Also under a store code, with the username in another case.
    let customer = token(
        &app,
        "/rest/default/V1/integration/customer/token",
        "Jo@Example.com",
        "secret456",
    )
    .await;
    let (_, payload) = claims(&customer);
    assert_eq!(payload["uid"], customer_id);
    assert_eq!(payload["utypid"], 3);

    // An admin holds every resource; a customer only `self`; a guest only `anonymous`.
    let (s, _) = status_with(&app, "GET", PROTECTED, &admin).await;
    assert_eq!(s, 200);
    let (s, body) = status_with(&app, "GET", PROTECTED, &customer).await;
    assert_eq!(s, 401);
    assert_eq!(
        body,
        json!({"message": "The consumer isn't authorized to access %resources.",
               "parameters": {"resources": "Magento_Integration::integrations"}})
    );
    let (s, _) = send_json(app.client.get(app.url(PROTECTED))).await;
    assert_eq!(s, 401);
    // `self` is a customer's alone: an admin and a guest are refused.
    let (s, body) = status_with(&app, "POST", REVOKE_SELF, &admin).await;
    assert_eq!(s, 401, "{body}");
    assert_eq!(body["parameters"]["resources"], "self");
    let (s, _) = send_json(app.client.post(app.url(REVOKE_SELF))).await;
    assert_eq!(s, 401);
    // A bearer token that names no one is a guest.
    let (s, _) = status_with(&app, "GET", PROTECTED, "not-a-token").await;
    assert_eq!(s, 401);
    let (s, _) = status_with(&app, "POST", ADMIN_TOKEN, "not-a-token").await;
    assert_eq!(s, 400, "an anonymous route still runs for a guest");
}

#[tokio::test]
async fn missing_and_empty_input_answers_magentos_input_shape() {
    let app = spawn_app().await;
    let both = json!({
        "message": "One or more input exceptions have occurred.",
        "errors": [
            {"message": "\"%fieldName\" is required. Enter and try again.", "parameters": {"fieldName": "username"}},
            {"message": "\"%fieldName\" is required. Enter and try again.", "parameters": {"fieldName": "password"}}
        ]
    });
    for path in [ADMIN_TOKEN, CUSTOMER_TOKEN] {
        for body in [
            json!({}),
            json!({"username": "", "password": ""}),
            json!({"username": null, "password": null}),
            json!({"username": 5, "password": []}),
        ] {
            let (s, answer) = app.post_json(path, &body).await;
            assert_eq!((s, &answer), (400, &both), "{path} {body}");
        }
        // No body at all.
        let (s, answer) = send_json(app.client.post(app.url(path))).await;
        assert_eq!((s, &answer), (400, &both));
        let (s, answer) = app.post_json(path, &json!({"username": "jane"})).await;
        assert_eq!(s, 400);
        assert_eq!(
            answer,
            json!({"message": "\"%fieldName\" is required. Enter and try again.", "parameters": {"fieldName": "password"}})
        );
        let (s, answer) = send_json(
            app.client
                .post(app.url(path))
                .header("Content-Type", "application/json")
                .body("{not json"),
        )
        .await;
        assert_eq!(s, 400);
        assert!(
            answer["message"]
                .as_str()
                .unwrap()
                .contains("could not be read")
        );
    }
}

#[tokio::test]
async fn wrong_password_and_unknown_user_answer_the_same_401() {
    let app = spawn_app().await;
    app.account(AccountKind::Admin, "jane", "secret123").await;
    app.account(AccountKind::Customer, "jo@example.com", "secret456")
        .await;
    for (path, user) in [(ADMIN_TOKEN, "jane"), (CUSTOMER_TOKEN, "jo@example.com")] {
        for (u, p) in [(user, "wrong123"), ("nobody", "wrong123")] {
            let (s, body) = sign_in(&app, path, u, p).await;
            assert_eq!((s, body), (401, json!({"message": FAILED})));
        }
    }
    // An admin's credentials do not sign a customer in, nor the reverse.
    assert_eq!(
        sign_in(&app, CUSTOMER_TOKEN, "jane", "secret123").await.0,
        401
    );
    assert_eq!(
        sign_in(&app, ADMIN_TOKEN, "jo@example.com", "secret456")
            .await
            .0,
        401
    );
}

#[tokio::test]
async fn throttling_five_failures_then_success_six_then_locked_until_expiry() {
    let app = spawn_app().await;
    app.account(AccountKind::Customer, "jo@example.com", "secret456")
        .await;
    app.account(AccountKind::Admin, "jane", "secret123").await;

    // Five failures, then the right password still works and clears the count.
    for _ in 0..5 {
        assert_eq!(
            sign_in(&app, CUSTOMER_TOKEN, "jo@example.com", "bad1234")
                .await
                .0,
            401
        );
    }
    token(&app, CUSTOMER_TOKEN, "jo@example.com", "secret456").await;
    for _ in 0..5 {
        assert_eq!(
            sign_in(&app, CUSTOMER_TOKEN, "jo@example.com", "bad1234")
                .await
                .0,
            401
        );
    }
    token(&app, CUSTOMER_TOKEN, "jo@example.com", "secret456").await;

    // Six failures (a change of case counts for the same name): the right password is refused.
    for (path, user, password) in [
        (CUSTOMER_TOKEN, "jo@example.com", "secret456"),
        (ADMIN_TOKEN, "jane", "secret123"),
    ] {
        for i in 0..6 {
            let name = if i % 2 == 0 {
                user.to_uppercase()
            } else {
                user.to_owned()
            };
            assert_eq!(sign_in(&app, path, &name, "bad1234").await.0, 401);
        }
        let (s, body) = sign_in(&app, path, user, password).await;
        assert_eq!(
            (s, body),
            (401, json!({"message": FAILED})),
            "{path} locked"
        );
    }
    // Magento's log: user types 2 customer, 3 admin; the lock runs 1800 s from the last failure.
    let count = raw_scalar_i64(
        &app.db,
        "SELECT failures_count FROM oauth_token_request_log WHERE user_name = 'jo@example.com' AND user_type = 2",
    )
    .await
    .unwrap();
    assert_eq!(count, 6);
    let lock = raw_scalar_i64(
        &app.db,
        "SELECT lock_expires_at FROM oauth_token_request_log WHERE user_name = 'jane' AND user_type = 3",
    )
    .await
    .unwrap();
    assert!((lock - unix_now() - 1800).abs() <= 3, "{lock}");

    // When the lock expires the right password works again; a failure then starts from one.
    raw_execute(
        &app.db,
        "UPDATE oauth_token_request_log SET lock_expires_at = 1",
    )
    .await
    .unwrap();
    token(&app, CUSTOMER_TOKEN, "jo@example.com", "secret456").await;
    assert_eq!(sign_in(&app, ADMIN_TOKEN, "jane", "bad1234").await.0, 401);
    let count = raw_scalar_i64(
        &app.db,
        "SELECT failures_count FROM oauth_token_request_log WHERE user_name = 'jane'",
    )
    .await
    .unwrap();
    assert_eq!(count, 1);
    token(&app, ADMIN_TOKEN, "jane", "secret123").await;
}

/// A counter of `/metrics` by its full series text, e.g.
/// `integration_host_sign_in_attempts_total{kind="customer",outcome="failure"}`.
async fn metric(app: &TestApp, series: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} not in:\n{text}"))
}

#[tokio::test]
async fn parallel_wrong_passwords_get_at_most_the_lockout_s_checks() {
    let app = spawn_app().await;
    app.account(AccountKind::Customer, "jo@example.com", "secret456")
        .await;
    let path = "/rest/V1/integration/customer/token";
    let all = (0..40).map(|i| {
        let app = &app;
        async move {
            sign_in(app, path, "jo@example.com", &format!("wrong-{i}"))
                .await
                .0
        }
    });
    let statuses = futures_util::future::join_all(all).await;
    assert!(statuses.iter().all(|s| *s == 401), "{statuses:?}");
    let series = |outcome: &str| {
        format!(
            "integration_host_sign_in_attempts_total{{kind=\"customer\",outcome=\"{outcome}\"}}"
        )
    };
    let failures = metric(&app, &series("failure")).await;
    let locked = metric(&app, &series("locked")).await;
    assert!(failures <= 6, "{failures} passwords were checked");
    assert_eq!(failures + locked, 40);
    // Locked now: even the right password is not checked.
    assert_eq!(
        sign_in(&app, path, "jo@example.com", "secret456").await.0,
        401
    );
    assert_eq!(metric(&app, &series("locked")).await, locked + 1);
    assert_eq!(metric(&app, &series("success")).await, 0);
}

#[tokio::test]
async fn inactive_accounts_are_refused_and_deactivation_revokes_their_tokens() {
    let app = spawn_app().await;
    app.account(AccountKind::Admin, "jane", "secret123").await;
    app.account(AccountKind::Customer, "jo@example.com", "secret456")
        .await;
    let admin = token(&app, ADMIN_TOKEN, "jane", "secret123").await;
    let customer = token(&app, CUSTOMER_TOKEN, "jo@example.com", "secret456").await;
    assert_eq!(status_with(&app, "GET", PROTECTED, &admin).await.0, 200);

    let accounts = app.tokens.accounts();
    accounts
        .set_active(AccountKind::Admin, "jane", false)
        .await
        .unwrap();
    accounts
        .set_active(AccountKind::Customer, "jo@example.com", false)
        .await
        .unwrap();
    // Refused at once (this process), and the sign-in is refused with Magento's text.
    assert_eq!(status_with(&app, "GET", PROTECTED, &admin).await.0, 401);
    assert_eq!(
        status_with(&app, "POST", REVOKE_SELF, &customer).await.0,
        401
    );
    assert_eq!(
        sign_in(&app, ADMIN_TOKEN, "jane", "secret123").await,
        (401, json!({"message": FAILED}))
    );
    assert_eq!(
        sign_in(&app, CUSTOMER_TOKEN, "jo@example.com", "secret456")
            .await
            .0,
        401
    );

    // Reactivated: old tokens stay revoked; a new sign-in (even in the same second) works.
    accounts
        .set_active(AccountKind::Admin, "jane", true)
        .await
        .unwrap();
    assert_eq!(status_with(&app, "GET", PROTECTED, &admin).await.0, 401);
    let fresh = token(&app, ADMIN_TOKEN, "jane", "secret123").await;
    assert_eq!(status_with(&app, "GET", PROTECTED, &fresh).await.0, 200);

    // Deleting an account refuses its tokens too.
    accounts.delete(AccountKind::Admin, "jane").await.unwrap();
    assert_eq!(status_with(&app, "GET", PROTECTED, &fresh).await.0, 401);
}

#[tokio::test]
async fn a_customer_revokes_their_own_tokens_and_admins_revoke_anyones() {
    let app = spawn_app().await;
    let jo = app
        .account(AccountKind::Customer, "jo@example.com", "secret456")
        .await;
    let al = app
        .account(AccountKind::Customer, "al@example.com", "secret789")
        .await;
    let root = app.account(AccountKind::Admin, "root", "secret000").await;
    let t1 = token(&app, CUSTOMER_TOKEN, "jo@example.com", "secret456").await;
    let t2 = token(&app, CUSTOMER_TOKEN, "jo@example.com", "secret456").await;
    let other = token(&app, CUSTOMER_TOKEN, "al@example.com", "secret789").await;

    let (s, body) = status_with(&app, "POST", REVOKE_SELF, &t1).await;
    assert_eq!((s, body), (200, json!(true)));
    // Every token of that customer is refused; the other customer's still works.
    assert_eq!(status_with(&app, "POST", REVOKE_SELF, &t2).await.0, 401);
    let revoked_before = raw_scalar_i64(
        &app.db,
        &format!(
            "SELECT revoke_before FROM jwt_auth_revoked WHERE user_type = 3 AND user_id = {jo}"
        ),
    )
    .await
    .unwrap();
    assert!((revoked_before - unix_now()).abs() <= 2);
    // A new sign-in right after works.
    let t3 = token(&app, CUSTOMER_TOKEN, "jo@example.com", "secret456").await;

    // An admin (all resources) revokes another account's tokens through the REST API.
    let admin = token(&app, ADMIN_TOKEN, "root", "secret000").await;
    let (s, body) = status_with(
        &app,
        "POST",
        &format!("/rest/V1/integration/customer/{al}/revoke-tokens"),
        &admin,
    )
    .await;
    assert_eq!((s, body), (200, json!(true)));
    assert_eq!(status_with(&app, "POST", REVOKE_SELF, &other).await.0, 401);
    assert_eq!(
        status_with(&app, "POST", REVOKE_SELF, &t3).await,
        (200, json!(true))
    );
    let (s, body) = status_with(
        &app,
        "POST",
        "/rest/V1/integration/customer/999/revoke-tokens",
        &admin,
    )
    .await;
    assert_eq!(s, 404, "{body}");
    let (s, _) = status_with(
        &app,
        "POST",
        "/rest/V1/integration/customer/x/revoke-tokens",
        &admin,
    )
    .await;
    assert_eq!(s, 400);
    let (s, _) = status_with(
        &app,
        "POST",
        &format!("/rest/V1/integration/admin/{root}/revoke-tokens"),
        &admin,
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(
        status_with(&app, "GET", PROTECTED, &admin).await.0,
        401,
        "revoked its own"
    );
    // A customer may not revoke others.
    let t4 = token(&app, CUSTOMER_TOKEN, "al@example.com", "secret789").await;
    let (s, _) = status_with(
        &app,
        "POST",
        &format!("/rest/V1/integration/customer/{jo}/revoke-tokens"),
        &t4,
    )
    .await;
    assert_eq!(s, 401);
}

#[tokio::test]
async fn an_integration_with_a_child_resource_reaches_that_route_and_not_its_sibling() {
    let app = spawn_app().await;
    let customer = app
        .account(AccountKind::Customer, "jo@example.com", "secret456")
        .await;
    let admin = app.account(AccountKind::Admin, "jane", "secret123").await;
    // Magento_Customer::manage is a child of Magento_Customer::customer; Magento_User::acl_users
    // sits elsewhere in the tree.
    let caller = app
        .minted_integration("Support desk", &["Magento_Customer::manage"])
        .await;
    let (s, body) = send_json(caller.request(
        "POST",
        &format!("/rest/V1/integration/customer/{customer}/revoke-tokens"),
    ))
    .await;
    assert_eq!((s, body), (200, json!(true)));
    let (s, body) = send_json(caller.request(
        "POST",
        &format!("/rest/V1/integration/admin/{admin}/revoke-tokens"),
    ))
    .await;
    assert_eq!(s, 401);
    assert_eq!(body["parameters"]["resources"], "Magento_User::acl_users");
    let (s, _) = send_json(caller.request("GET", PROTECTED)).await;
    assert_eq!(s, 401);
    // `all` reaches everything but `self`.
    let all = app
        .minted_integration("Everything", &["Magento_Backend::all"])
        .await;
    let (s, _) = send_json(all.request(
        "POST",
        &format!("/rest/V1/integration/admin/{admin}/revoke-tokens"),
    ))
    .await;
    assert_eq!(s, 200);
    let (s, _) = send_json(all.request("POST", REVOKE_SELF)).await;
    assert_eq!(s, 401);
}

fn sign(keys: Vec<KeySpec>, algorithm: JwtAlgorithm, claims: &Claims) -> String {
    JwtKeys::new(algorithm, keys).sign(claims)
}

#[tokio::test]
async fn jwt_refusals_and_key_rotation() {
    let app = spawn_app().await;
    let id = app.account(AccountKind::Admin, "jane", "secret123").await;
    let keys = app.settings.tokens.signing_keys.clone();
    let t = unix_now();
    let good = Claims {
        uid: id,
        utypid: 2,
        iat: t,
        exp: t + 600,
    };
    let ok = |token: String| {
        let app = &app;
        async move { status_with(app, "GET", PROTECTED, &token).await.0 }
    };
    assert_eq!(
        ok(sign(keys.clone(), JwtAlgorithm::Hs256, &good)).await,
        200
    );
    // Expired.
    assert_eq!(
        ok(sign(
            keys.clone(),
            JwtAlgorithm::Hs256,
            &Claims {
                iat: t - 700,
                exp: t - 1,
                ..good.clone()
            }
        ))
        .await,
        401
    );
    // Wrong user type (customer 3 is a customer; 1 and 4 name no one).
    for utypid in [1, 4] {
        assert_eq!(
            ok(sign(
                keys.clone(),
                JwtAlgorithm::Hs256,
                &Claims {
                    utypid,
                    ..good.clone()
                }
            ))
            .await,
            401
        );
    }
    // Another key under the configured key id.
    let impostor = KeySpec::generate("t1");
    assert_eq!(
        ok(sign(vec![impostor], JwtAlgorithm::Hs256, &good)).await,
        401
    );
    // Another algorithm of the family, with the right key.
    assert_eq!(
        ok(sign(keys.clone(), JwtAlgorithm::Hs512, &good)).await,
        401
    );
    // A tampered payload.
    let signed = sign(keys.clone(), JwtAlgorithm::Hs256, &good);
    let mut parts: Vec<String> = signed.split('.').map(str::to_owned).collect();
    parts[1] = B64URL.encode(
        serde_json::to_vec(&Claims {
            uid: id + 1,
            ..good.clone()
        })
        .unwrap(),
    );
    assert_eq!(ok(parts.join(".")).await, 401);
    // alg none, unsigned.
    let none = format!(
        "{}.{}.",
        B64URL.encode(br#"{"alg":"none","typ":"JWT","kid":"t1"}"#),
        B64URL.encode(serde_json::to_vec(&good).unwrap())
    );
    assert_eq!(ok(none).await, 401);
    // Issued before revoke_before.
    let before = sign(
        keys.clone(),
        JwtAlgorithm::Hs256,
        &Claims {
            iat: t - 5,
            ..good.clone()
        },
    );
    assert_eq!(ok(before.clone()).await, 200);
    raw_execute(
        &app.db,
        &format!(
            "INSERT INTO jwt_auth_revoked (user_type, user_id, revoke_before) VALUES (2, {id}, {})",
            t - 3
        ),
    )
    .await
    .unwrap();
    // Another process's write: seen within the cache TTL (5 s).
    tokio::time::sleep(std::time::Duration::from_millis(5200)).await;
    assert_eq!(ok(before).await, 401);
    assert_eq!(
        ok(sign(keys.clone(), JwtAlgorithm::Hs256, &good)).await,
        200,
        "issued after it"
    );

    // Rotation: a server with a new key first still verifies tokens of the old key and signs
    // with the new one; HS384 by configuration.
    let old = keys[0].clone();
    let rotated = spawn_app_with(|s| {
        s.tokens.signing_keys = vec![KeySpec::generate("t2"), old.clone()];
    })
    .await;
    let id2 = rotated
        .account(AccountKind::Admin, "jane", "secret123")
        .await;
    let by_old = sign(
        vec![old.clone()],
        JwtAlgorithm::Hs256,
        &Claims {
            uid: id2,
            ..good.clone()
        },
    );
    assert_eq!(
        status_with(&rotated, "GET", PROTECTED, &by_old).await.0,
        200
    );
    let fresh = token(&rotated, ADMIN_TOKEN, "jane", "secret123").await;
    assert_eq!(claims(&fresh).0["kid"], "t2");
    let hs384 = spawn_app_with(|s| s.tokens.algorithm = JwtAlgorithm::Hs384).await;
    hs384
        .account(AccountKind::Customer, "jo@example.com", "secret456")
        .await;
    let t384 = token(&hs384, CUSTOMER_TOKEN, "jo@example.com", "secret456").await;
    assert_eq!(claims(&t384).0["alg"], "HS384");
    assert_eq!(status_with(&hs384, "POST", REVOKE_SELF, &t384).await.0, 200);
}

#[tokio::test]
async fn opaque_tokens_are_stored_sealed_expire_and_are_revoked() {
    let app = spawn_app_with(|s| s.tokens.format = TokenFormat::Opaque).await;
    let id = app
        .account(AccountKind::Customer, "jo@example.com", "secret456")
        .await;
    let t = token(&app, CUSTOMER_TOKEN, "jo@example.com", "secret456").await;
    assert_eq!(t.len(), 32);
    assert!(t.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(
        status_with(&app, "POST", REVOKE_SELF, &t).await,
        (200, json!(true))
    );
    assert_eq!(
        raw_scalar_i64(
            &app.db,
            &format!("SELECT COUNT(*) FROM oauth_token WHERE customer_id = {id}")
        )
        .await
        .unwrap(),
        0
    );
    assert_eq!(status_with(&app, "POST", REVOKE_SELF, &t).await.0, 401);

    // Stored sealed: the value is nowhere in the row in plaintext.
    let t2 = token(&app, CUSTOMER_TOKEN, "jo@example.com", "secret456").await;
    let hits = raw_scalar_i64(&app.db, &format!("SELECT COUNT(*) FROM oauth_token WHERE customer_id = {id} AND user_type = 3 AND type = 'access'")).await.unwrap();
    assert_eq!(hits, 1);
    for column in ["token", "secret", "token_hash"] {
        assert!(
            !raw_contains(&app.db, "oauth_token", column, &t2).await,
            "{column}"
        );
    }
    // Older than the lifetime (1 hour for customers): refused.
    assert_eq!(
        status_with(
            &app,
            "POST",
            "/rest/V1/integration/customer/revoke-customer-token",
            &t2
        )
        .await
        .0,
        200
    );
    let t3 = token(&app, CUSTOMER_TOKEN, "jo@example.com", "secret456").await;
    // (t3 was never presented, so no process holds it in a cache.)
    raw_execute(
        &app.db,
        &format!(
            "UPDATE oauth_token SET created_at = {} WHERE customer_id = {id}",
            unix_now() - 3601
        ),
    )
    .await
    .unwrap();
    assert_eq!(status_with(&app, "POST", REVOKE_SELF, &t3).await.0, 401);
}

struct Recorder(Mutex<Vec<Event>>);

impl Observer for Recorder {
    fn name(&self) -> &str {
        "test-recorder"
    }
    fn observe<'a>(
        &'a self,
        event: &'a Event,
    ) -> futures_util::future::BoxFuture<'a, Result<(), integration_host::events::ObserveError>>
    {
        Box::pin(async move {
            self.0.lock().unwrap().push(event.clone());
            Ok(())
        })
    }
}

#[tokio::test]
async fn customer_login_reaches_observers_with_the_customer_and_client() {
    let app = spawn_app().await;
    let sync = Arc::new(Recorder(Mutex::new(Vec::new())));
    let later = Arc::new(Recorder(Mutex::new(Vec::new())));
    app.events
        .subscribe(&["customer_login"], Mode::Sync, sync.clone())
        .unwrap();
    app.events
        .subscribe(&["*"], Mode::Async, later.clone())
        .unwrap();
    let id = app
        .account(AccountKind::Customer, "jo@example.com", "secret456")
        .await;
    app.account(AccountKind::Admin, "jane", "secret123").await;

    assert_eq!(
        sign_in(&app, CUSTOMER_TOKEN, "jo@example.com", "wrong12")
            .await
            .0,
        401
    );
    assert!(
        sync.0.lock().unwrap().is_empty(),
        "a failed sign-in is no login"
    );
    let res = app
        .client
        .post(app.url(CUSTOMER_TOKEN))
        .header("User-Agent", "shop-app/1.0")
        .json(&json!({"username": "jo@example.com", "password": "secret456"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = sync.0.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "the sync observer ran before the answer");
    let Event::CustomerLogin(login) = &seen[0] else {
        panic!("{seen:?}")
    };
    assert_eq!(login.customer_id, id);
    assert_eq!(login.email, "jo@example.com");
    assert_eq!(
        (login.firstname.as_str(), login.lastname.as_str()),
        ("Jo", "Doe")
    );
    assert_eq!(login.client_address.as_deref(), Some("127.0.0.1"));
    assert_eq!(login.user_agent.as_deref(), Some("shop-app/1.0"));
    assert!((login.at - unix_now()).abs() <= 2);

    token(&app, ADMIN_TOKEN, "jane", "secret123").await;
    let t = token(&app, CUSTOMER_TOKEN, "jo@example.com", "secret456").await;
    status_with(&app, "POST", REVOKE_SELF, &t).await;
    // Integration changes are events too.
    let caller = app
        .minted_integration("Evented", &["Magento_Sales::sales"])
        .await;
    app.integrations
        .delete(caller.integration_id)
        .await
        .unwrap();
    app.events.flush().await;
    let seen = later.0.lock().unwrap().clone();
    let names: Vec<&'static str> = seen.iter().map(Event::name).collect();
    assert_eq!(
        names,
        [
            "customer_login",
            "admin_login",
            "customer_login",
            "tokens_revoked",
            "integration_saved",
            "integration_activated",
            "integration_deleted"
        ]
    );
    assert!(
        matches!(&seen[4], Event::IntegrationSaved { integration, created: true } if integration.name == "Evented")
    );
}
