//! Plugin API 1.1 through the real server: the before-interceptor, after-interceptor and
//! credential-verifier samples doing their jobs through REST, forward-auth and sign-in, and
//! interceptors that fail or answer garbage contained by their manifest's `on_error`. Every
//! component is built from source for wasm32-wasip2; a missing one fails the test.

use base64::Engine as _;
use integration_host::domain::AccountKind;
use integration_host_tests::{
    PluginFolder, TestApp, sample_manifest, send_json, spawn_app_with, with_plugins,
};
use serde_json::{Value, json};

const ADMIN_TOKEN: &str = "/rest/V1/integration/admin/token";
const CUSTOMER_TOKEN: &str = "/rest/V1/integration/customer/token";
const INTEGRATIONS: &str = "/rest/V1/integrations";

/// An admin's bearer token through the REST route (which the interceptors see).
async fn admin(app: &TestApp) -> String {
    app.account(AccountKind::Admin, "jane", "secret123").await;
    let (status, body) = app
        .post_json(
            ADMIN_TOKEN,
            &json!({"username": "jane", "password": "secret123"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    body.as_str().unwrap().to_owned()
}

/// The claims of a JWT, unverified.
fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

/// Creates an integration through REST; the status and the answer.
async fn create(app: &TestApp, token: &str, body: Value) -> (u16, Value) {
    send_json(app.bearer("POST", INTEGRATIONS, token).json(&body)).await
}

/// The names of the integrations the API lists.
async fn names(app: &TestApp, token: &str) -> Vec<String> {
    let (status, body) = send_json(app.bearer("GET", INTEGRATIONS, token)).await;
    assert_eq!(status, 200, "{body}");
    body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn the_endpoint_policy_refuses_plain_http_and_saves_nothing() {
    let folder = PluginFolder::new();
    folder.write_raw("endpoint-policy", &sample_manifest("endpoint-policy"));
    let app = spawn_app_with(with_plugins(&folder)).await;
    let token = admin(&app).await;

    let (status, body) = create(
        &app,
        &token,
        json!({"name": "Plain", "endpoint": "http://partner.example/cb"}),
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("The endpoint must use https"))
    );
    let (status, body) = create(
        &app,
        &token,
        json!({"name": "Plain", "endpoint": "https://partner.example/cb",
               "identity_link_url": "http://partner.example/link"}),
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("The identity link must use https"))
    );
    assert!(!names(&app, &token).await.contains(&"Plain".to_owned()));

    // https, loopback http and no endpoint at all pass.
    for (name, endpoint) in [
        ("Secure", "https://partner.example/cb"),
        ("Local", "http://127.0.0.1:9000/cb"),
        ("Local6", "http://[::1]:9000/cb"),
    ] {
        let (status, body) =
            create(&app, &token, json!({"name": name, "endpoint": endpoint})).await;
        assert_eq!(status, 200, "{name}: {body}");
    }
    let (status, body) = create(&app, &token, json!({"name": "No endpoint"})).await;
    assert_eq!(status, 200, "{body}");

    // A change to plain http is refused too, and the integration stays as it was.
    let (_, secure) = send_json(app.bearer("GET", INTEGRATIONS, &token)).await;
    let id = secure["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "Secure")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let path = format!("{INTEGRATIONS}/{id}");
    let (status, body) = send_json(
        app.bearer("PUT", &path, &token)
            .json(&json!({"name": "Secure", "endpoint": "http://partner.example/cb"})),
    )
    .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("The endpoint must use https"))
    );
    let (_, now) = send_json(app.bearer("GET", &path, &token)).await;
    assert_eq!(now["endpoint"], "https://partner.example/cb");
}

#[tokio::test]
async fn tenant_claims_go_into_admin_tokens_and_allowed_forward_auth_answers() {
    let folder = PluginFolder::new();
    folder.write_raw("tenant-claims", &sample_manifest("tenant-claims"));
    let dir = tempfile::tempdir().unwrap();
    let routes = dir.path().join("routes.toml");
    std::fs::write(
        &routes,
        "[[route]]\nmethod = \"GET\"\npath = \"/shop/orders/:id\"\nresources = [\"Magento_Sales::actions_view\"]\n",
    )
    .unwrap();
    let app = spawn_app_with(|s| {
        with_plugins(&folder)(s);
        s.webapi.routes_files = vec![routes];
    })
    .await;
    let token = admin(&app).await;
    let c = claims(&token);
    assert_eq!(c["tenant"], "main-store", "{c}");
    assert_eq!(c["utypid"], 2, "the server's own claims stand: {c}");

    // Customers' tokens are not the manifest's results: no tenant.
    app.account(AccountKind::Customer, "jo@shop.example", "secret456")
        .await;
    let (status, customer) = app
        .post_json(
            CUSTOMER_TOKEN,
            &json!({"username": "jo@shop.example", "password": "secret456"}),
        )
        .await;
    assert_eq!(status, 200, "{customer}");
    assert!(claims(customer.as_str().unwrap()).get("tenant").is_none());

    // An allowed forward-auth answer carries X-Auth-Tenant next to the identity headers; a
    // refused one does not.
    let ask = async |authorization: Option<String>| {
        let mut req = app
            .client
            .get(app.url("/forward-auth"))
            .header("X-Original-Method", "GET")
            .header("X-Original-URI", "/shop/orders/7");
        if let Some(a) = authorization {
            req = req.header("Authorization", a);
        }
        let res = req.send().await.unwrap();
        let h = |n: &str| res.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
        (
            res.status().as_u16(),
            h("x-auth-tenant"),
            h("x-auth-user-type"),
        )
    };
    assert_eq!(
        ask(Some(format!("Bearer {token}"))).await,
        (200, Some("main-store".into()), Some("admin".into()))
    );
    assert_eq!(ask(None).await, (401, None, None));
}

#[tokio::test]
async fn legacy_passwords_sign_in_listed_customers_and_abstain_for_the_others() {
    let folder = PluginFolder::new();
    folder.write_raw("legacy-passwords", &sample_manifest("legacy-passwords"));
    let app = spawn_app_with(with_plugins(&folder)).await;
    // Listed in the sample manifest with sha256("s4lt-1" + "old-secret-1").
    let legacy = app
        .account(
            AccountKind::Customer,
            "legacy@example.com",
            "new-password-9",
        )
        .await;
    app.account(AccountKind::Customer, "jo@shop.example", "secret456")
        .await;
    let sign_in = async |user: &str, password: &str| {
        app.post_json(
            CUSTOMER_TOKEN,
            &json!({"username": user, "password": password}),
        )
        .await
    };

    let (status, token) = sign_in("Legacy@Example.com", "old-secret-1").await;
    assert_eq!(status, 200, "{token}");
    let c = claims(token.as_str().unwrap());
    assert_eq!(
        (c["uid"].as_i64(), c["utypid"].as_i64()),
        (Some(legacy), Some(3))
    );
    // While listed, the plugin decides: the account's own password is refused.
    let (status, body) = sign_in("legacy@example.com", "new-password-9").await;
    assert_eq!(status, 401, "{body}");
    // Everyone else: the server's own check.
    assert_eq!(sign_in("jo@shop.example", "secret456").await.0, 200);
    assert_eq!(sign_in("jo@shop.example", "old-secret-1").await.0, 401);

    // The lockout counts the plugin's refusals: six in all lock the account.
    for _ in 0..5 {
        assert_eq!(sign_in("legacy@example.com", "wrong-one").await.0, 401);
    }
    let (status, _) = sign_in("legacy@example.com", "old-secret-1").await;
    assert_eq!(status, 401, "locked after the failures");
}

/// A plugin folder for the misbehaving test plugin in the role its table names
/// (`[before_interceptor]` and the like), with a behaviour and a label.
fn misbehaving(folder: &PluginFolder, id: &str, table: &str, behaviour: &str, label: &str) {
    let role = table
        .trim_start_matches('[')
        .split(']')
        .next()
        .unwrap()
        .replace('_', "-");
    folder.write(
        id,
        "misbehave",
        &format!(
            "roles = [\"{role}\"]\n[limits]\ntimeout_ms = 50\n{table}\n[config]\nbehaviour = \"{behaviour}\"\nlabel = \"{label}\"\n"
        ),
    );
}

#[tokio::test]
async fn failing_and_garbage_interceptors_are_contained_by_their_policy() {
    let folder = PluginFolder::new();
    // Fail open: a looping before-interceptor and one answering a rewrite of another operation
    // change nothing; after-interceptors adding a reserved claim or JSON that is not are
    // ignored, and a good one's claim arrives.
    let before = "[before_interceptor]\noperations = [\"*\"]\non_error = \"continue\"";
    misbehaving(&folder, "a-loop", before, "loop", "");
    misbehaving(&folder, "b-garbage", before, "rewrite-other", "");
    let after = "[after_interceptor]\nresults = [\"admin_token\"]\non_error = \"continue\"";
    misbehaving(&folder, "c-reserved", after, "reserved-claim", "");
    misbehaving(&folder, "d-bad-json", after, "bad-json", "");
    misbehaving(&folder, "e-claim", after, "claim", "region");
    let app = spawn_app_with(with_plugins(&folder)).await;
    let token = admin(&app).await;
    let c = claims(&token);
    assert_eq!(c["region"], "added", "{c}");
    assert!(c.get("note").is_none(), "{c}");
    assert_ne!(
        c["uid"], 1,
        "a reserved claim never overrides the server's: {c}"
    );
    let (status, body) = create(&app, &token, json!({"name": "Still works"})).await;
    assert_eq!(status, 200, "{body}");
    let (_, view) = send_json(app.bearer("GET", "/rest/V1/plugins", &token)).await;
    let failures = |id: &str| {
        view["plugins"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("{id}: {view:#}"))["health"]["failures"]
            .as_u64()
            .unwrap()
    };
    assert!(failures("a-loop") >= 1);
    assert!(failures("b-garbage") >= 1);
    assert!(failures("c-reserved") >= 1);
    assert!(failures("d-bad-json") >= 1);
    assert_eq!(failures("e-claim"), 0);

    // Fail closed: a before-interceptor that fails refuses the operation, naming itself.
    misbehaving(
        &folder,
        "f-closed",
        "[before_interceptor]\noperations = [\"integration_create\"]\non_error = \"refuse\"",
        "panic",
        "",
    );
    send_json(app.bearer("POST", "/rest/V1/plugins/reload", &token)).await;
    let (status, body) = create(&app, &token, json!({"name": "Refused"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["message"],
        "The request was refused because the plugin `f-closed` failed."
    );
    assert!(!names(&app, &token).await.contains(&"Refused".to_owned()));
}

#[tokio::test]
async fn a_rewrite_is_checked_like_any_input_and_a_refusal_changes_nothing() {
    let folder = PluginFolder::new();
    let before = "[before_interceptor]\noperations = [\"integration_create\"]";
    // The label becomes the new integration's name.
    misbehaving(&folder, "renamer", before, "rename", "Renamed by plugin");
    let app = spawn_app_with(with_plugins(&folder)).await;
    let token = admin(&app).await;
    let (status, body) = create(&app, &token, json!({"name": "Typed"})).await;
    assert_eq!(
        (status, body["name"].as_str()),
        (200, Some("Renamed by plugin")),
        "{body}"
    );

    // A rewrite into an invalid name is refused as the name field would be.
    misbehaving(&folder, "renamer", before, "rename", "");
    send_json(app.bearer("POST", "/rest/V1/plugins/reload", &token)).await;
    let (status, body) = create(&app, &token, json!({"name": "Typed again"})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["parameters"]["fieldName"], "name", "{body}");

    // A refusal: the plugin's words, nothing saved, for deletion and activation too.
    misbehaving(
        &folder,
        "renamer",
        "[before_interceptor]\noperations = [\"integration_create\", \"integration_delete\", \"integration_activate\", \"admin_sign_in\"]",
        "refuse",
        "policy",
    );
    send_json(app.bearer("POST", "/rest/V1/plugins/reload", &token)).await;
    let (status, body) = create(&app, &token, json!({"name": "Never"})).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("refused by policy"))
    );
    let (_, list) = send_json(app.bearer("GET", INTEGRATIONS, &token)).await;
    let id = list["items"][0]["id"].as_i64().unwrap();
    let path = format!("{INTEGRATIONS}/{id}");
    let (status, body) = send_json(app.bearer("DELETE", &path, &token)).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("refused by policy"))
    );
    let (status, body) = send_json(app.bearer("POST", &format!("{path}/activate"), &token)).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("refused by policy")),
        "{body}"
    );
    assert_eq!(send_json(app.bearer("GET", &path, &token)).await.0, 200);
    // A refused sign-in is a bad request, not a failed sign-in.
    let (status, body) = app
        .post_json(
            ADMIN_TOKEN,
            &json!({"username": "jane", "password": "secret123"}),
        )
        .await;
    assert_eq!(
        (status, body["message"].as_str()),
        (400, Some("refused by policy"))
    );
}

#[tokio::test]
async fn one_credential_verifier_at_most_and_a_failing_one_follows_its_policy() {
    let folder = PluginFolder::new();
    misbehaving(
        &folder,
        "a-verifier",
        "[credential_verifier]\non_error = \"abstain\"",
        "panic",
        "",
    );
    misbehaving(
        &folder,
        "b-verifier",
        "[credential_verifier]",
        "accept",
        "jo@shop.example",
    );
    let app = spawn_app_with(with_plugins(&folder)).await;
    app.account(AccountKind::Customer, "jo@shop.example", "secret456")
        .await;
    let token = admin(&app).await;
    let (_, view) = send_json(app.bearer("GET", "/rest/V1/plugins", &token)).await;
    let problem = view["problems"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "b-verifier")
        .unwrap_or_else(|| panic!("{view:#}"));
    assert!(
        problem["error"]
            .as_str()
            .unwrap()
            .contains("plays the credential-verifier role, which `a-verifier` already plays: one plugin at most"),
        "{problem}"
    );
    // The failing verifier abstains by its policy: the password decides.
    let sign_in = async |password: &str| {
        app.post_json(
            CUSTOMER_TOKEN,
            &json!({"username": "jo@shop.example", "password": password}),
        )
        .await
        .0
    };
    assert_eq!(sign_in("secret456").await, 200);
    assert_eq!(sign_in("anything-else").await, 401);

    // Fail closed: every sign-in is refused while it fails.
    misbehaving(
        &folder,
        "a-verifier",
        "[credential_verifier]\non_error = \"refuse\"",
        "panic",
        "",
    );
    std::fs::remove_dir_all(folder.path().join("b-verifier")).unwrap();
    send_json(app.bearer("POST", "/rest/V1/plugins/reload", &token)).await;
    assert_eq!(sign_in("secret456").await, 401);
}
