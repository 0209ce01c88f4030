//! Protecting other services: the forward-auth endpoint (called directly as nginx, Traefik
//! and Envoy call it, and behind a real nginx with `auth_request`), and the reverse proxy.

use std::time::Duration;

use integration_host::domain::AccountKind;
use integration_host_tests::{
    Caller, Nginx, TestApp, Upstream, oauth_header, oauth_params, send_json, spawn_app_with,
    unix_now,
};
use serde_json::{Value, json};

/// Routes of a shop service: orders need their Sales resources (siblings under
/// Magento_Sales::actions), the catalogue is public, `/shop/me` is a customer's own.
fn shop_routes(upstream: Option<&str>) -> String {
    let up = upstream
        .map(|u| format!("upstream = \"{u}\"\n"))
        .unwrap_or_default();
    format!(
        r#"
[[route]]
method = "GET"
path = "/shop/orders/:id"
resources = ["Magento_Sales::actions_view"]
{up}
[[route]]
method = "POST"
path = "/shop/orders/:id/cancel"
resources = ["Magento_Sales::cancel"]
{up}
[[route]]
method = "*"
path = "/shop/catalog/*"
resources = ["anonymous"]
{up}
[[route]]
method = "GET"
path = "/shop/me"
resources = ["self"]
{up}
"#
    )
}

async fn app_with_routes(table: String) -> TestApp {
    let dir = tempfile::tempdir().unwrap().keep();
    let file = dir.join("shop-routes.toml");
    std::fs::write(&file, table).unwrap();
    spawn_app_with(|s| s.webapi.routes_files = vec![file]).await
}

async fn bearer_of(app: &TestApp, kind: AccountKind, login: &str) -> String {
    app.account(kind, login, "secret123").await;
    let path = match kind {
        AccountKind::Admin => "/rest/V1/integration/admin/token",
        AccountKind::Customer => "/rest/V1/integration/customer/token",
    };
    let (s, body) = app
        .post_json(path, &json!({"username": login, "password": "secret123"}))
        .await;
    assert_eq!(s, 200, "{body}");
    body.as_str().unwrap().to_owned()
}

/// Asks `/forward-auth` about a request as nginx would (X-Original-*); answers the status,
/// the identity headers and the body.
async fn ask(
    app: &TestApp,
    method: &str,
    uri: &str,
    authorization: Option<&str>,
) -> (u16, Option<String>, Option<String>, Option<String>, Value) {
    let mut req = app
        .client
        .get(app.url("/forward-auth"))
        .header("X-Original-Method", method)
        .header("X-Original-URI", uri)
        .header("X-Forwarded-Host", "shop.example")
        .header("X-Forwarded-Proto", "https");
    if let Some(a) = authorization {
        req = req.header("Authorization", a);
    }
    let res = req.send().await.unwrap();
    let h = |n: &str| res.headers().get(n).map(|v| v.to_str().unwrap().to_owned());
    let (t, i, n) = (
        h("x-auth-user-type"),
        h("x-auth-user-id"),
        h("x-auth-user-name"),
    );
    let status = res.status().as_u16();
    let body = serde_json::from_str(&res.text().await.unwrap()).unwrap_or(Value::Null);
    (status, t, i, n, body)
}

/// The `Authorization` header an integration sends for a request to the shop at `url`.
fn signed_for(caller: &Caller, method: &str, url: &str) -> String {
    oauth_header(
        method,
        url,
        &caller.key,
        &caller.secret,
        &caller.token_secret,
        &[("oauth_token", &caller.token)],
        &[],
        &integration_host::crypto::random_string(24),
        unix_now(),
    )
}

#[tokio::test]
async fn forward_auth_allows_and_refuses_by_the_route_table() {
    let app = app_with_routes(shop_routes(None)).await;
    let viewer = app
        .minted_integration("Order viewer ✓", &["Magento_Sales::actions_view"])
        .await;
    let admin = bearer_of(&app, AccountKind::Admin, "jane").await;
    let customer = bearer_of(&app, AccountKind::Customer, "jo@example.com").await;

    // A guest reaches public routes only; refused with 401 in Magento's shape.
    let (s, t, i, _, _) = ask(&app, "GET", "/shop/catalog/shoes?size=9", None).await;
    assert_eq!((s, t.as_deref(), i), (200, Some("guest"), None));
    let (s, _, _, _, body) = ask(&app, "GET", "/shop/orders/5", None).await;
    assert_eq!(s, 401);
    assert_eq!(
        body,
        json!({"message": "The consumer isn't authorized to access %resources.",
               "parameters": {"resources": "Magento_Sales::actions_view"}})
    );

    // An integration signs the URL the client used (https://shop.example/...), as received
    // by the proxy; it reaches its resource and not the sibling (403: identified, not allowed).
    let url = "https://shop.example/shop/orders/5?expand=items";
    let (s, t, i, n, _) = ask(
        &app,
        "GET",
        "/shop/orders/5?expand=items",
        Some(&signed_for(&viewer, "GET", url)),
    )
    .await;
    assert_eq!(s, 200);
    assert_eq!(t.as_deref(), Some("integration"));
    assert_eq!(i, Some(viewer.integration_id.to_string()));
    assert_eq!(n.as_deref(), Some("Order%20viewer%20%E2%9C%93"));
    let cancel = "https://shop.example/shop/orders/5/cancel";
    let (s, _, _, _, body) = ask(
        &app,
        "POST",
        "/shop/orders/5/cancel",
        Some(&signed_for(&viewer, "POST", cancel)),
    )
    .await;
    assert_eq!(s, 403);
    assert_eq!(body["parameters"]["resources"], "Magento_Sales::cancel");
    // A signature over another URL, and a replayed nonce, are refused with the OAuth problem.
    let header = signed_for(&viewer, "GET", "https://shop.example/shop/orders/6");
    let (s, _, _, _, body) = ask(&app, "GET", "/shop/orders/5", Some(&header)).await;
    assert_eq!(s, 401);
    assert_eq!(
        body["message"],
        "The signature is invalid. Verify and try again."
    );
    let header = signed_for(&viewer, "GET", "https://shop.example/shop/orders/6");
    assert_eq!(
        ask(&app, "GET", "/shop/orders/6", Some(&header)).await.0,
        200
    );
    let (s, _, _, _, body) = ask(&app, "GET", "/shop/orders/6", Some(&header)).await;
    assert_eq!(s, 401);
    assert!(
        body["message"].as_str().unwrap().contains("nonce"),
        "{body}"
    );

    // An admin (all resources) reaches both; a customer only its own route.
    let bearer = |t: &str| format!("Bearer {t}");
    assert_eq!(
        ask(&app, "POST", "/shop/orders/5/cancel", Some(&bearer(&admin)))
            .await
            .1
            .as_deref(),
        Some("admin")
    );
    let (s, t, _, n, _) = ask(&app, "GET", "/shop/me", Some(&bearer(&customer))).await;
    assert_eq!(
        (s, t.as_deref(), n.as_deref()),
        (200, Some("customer"), Some("jo%40example.com"))
    );
    assert_eq!(
        ask(&app, "GET", "/shop/orders/5", Some(&bearer(&customer)))
            .await
            .0,
        403
    );
    assert_eq!(
        ask(&app, "GET", "/shop/me", Some(&bearer(&admin))).await.0,
        403
    );
    assert_eq!(
        ask(&app, "GET", "/shop/me", Some("Bearer forged")).await.0,
        401
    );

    // Deny by default; a request that is not described is a clear 400.
    let (s, _, _, _, body) = ask(&app, "GET", "/elsewhere", Some(&bearer(&admin))).await;
    assert_eq!(
        (s, body["message"].as_str()),
        (403, Some("Request does not match any route."))
    );
    let (s, _, _, _, body) = ask(&app, "DELETE", "/shop/orders/5", Some(&bearer(&admin))).await;
    assert_eq!(
        (s, body["message"].as_str()),
        (403, Some("Request does not match any route."))
    );
    let (s, body) = send_json(app.client.get(app.url("/forward-auth"))).await;
    assert_eq!(s, 400, "{body}");
    assert_eq!(ask(&app, "GET", "shop/orders/5", None).await.0, 400);

    // Traefik's headers, and Envoy's path prefix.
    let res = app
        .client
        .get(app.url("/forward-auth"))
        .header("X-Forwarded-Method", "GET")
        .header("X-Forwarded-Uri", "/shop/orders/9")
        .header("X-Forwarded-Host", "shop.example")
        .header("Authorization", bearer(&admin))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = app
        .client
        .post(app.url("/forward-auth/envoy/shop/orders/9/cancel"))
        .header("Authorization", bearer(&customer))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let res = app
        .client
        .get(app.url("/forward-auth/envoy/shop/catalog/hats?color=red"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn a_broken_route_table_stops_the_start_with_its_file_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "[[route]]\nmethod = \"GET\"\npath = \"/x\"\nresources = [\"Nope::nothing\"]\n",
    )
    .unwrap();
    let db = integration_host_tests::TestDb::new().await;
    let mut settings = integration_host_tests::test_settings(&db);
    settings.webapi.routes_files = vec![file.clone()];
    let err = integration_host::startup::Application::build(settings)
        .await
        .expect_err("a bad route table is refused");
    let text = err.to_string();
    assert!(
        text.contains("bad.toml")
            && text.contains("route[0].resources")
            && text.contains("Nope::nothing"),
        "{text}"
    );
}

#[tokio::test]
async fn the_proxy_authenticates_forwards_with_identity_and_drops_hop_headers() {
    let upstream = Upstream::start().await;
    let app = app_with_routes(shop_routes(Some(&upstream.url("/base")))).await;
    let canceller = app
        .minted_integration("Canceller", &["Magento_Sales::cancel"])
        .await;

    // A signed form POST whose OAuth parameters travel in the body, as some clients send them.
    let url = app.url("/shop/orders/7/cancel?reason=late");
    let form = [("note", "late delivery é+~"), ("notify", "1")];
    let header = oauth_header(
        "POST",
        &url,
        &canceller.key,
        &canceller.secret,
        &canceller.token_secret,
        &[("oauth_token", &canceller.token)],
        &form,
        &integration_host::crypto::random_string(24),
        unix_now(),
    );
    let mut pairs: Vec<(String, String)> = form
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    pairs.extend(oauth_params(&header));
    let body = form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let res = app
        .client
        .post(&url)
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("Connection", "keep-alive, X-Hop-Secret")
        .header("X-Hop-Secret", "do not forward")
        .header("X-Auth-User-Type", "admin")
        .header("X-Auth-User-Id", "1")
        .body(body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers().get("x-upstream").unwrap(), "echo");
    let seen: Value = res.json().await.unwrap();
    assert_eq!(seen["method"], "POST");
    assert_eq!(seen["path"], "/base/shop/orders/7/cancel?reason=late");
    assert_eq!(seen["body"], body);
    let h = &seen["headers"];
    assert_eq!(
        h["x-auth-user-type"], "integration",
        "the client's copy was removed: {h}"
    );
    assert_eq!(h["x-auth-user-id"], canceller.integration_id.to_string());
    assert_eq!(h["x-auth-user-name"], "Canceller");
    assert_eq!(h["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(h["x-forwarded-for"], "127.0.0.1");
    assert_eq!(h["x-forwarded-host"], format!("127.0.0.1:{}", app.port));
    assert!(h.get("x-hop-secret").is_none(), "{h}");
    assert_ne!(
        h.get("connection").and_then(Value::as_str),
        Some("keep-alive, X-Hop-Secret")
    );

    // Refused requests never reach the upstream.
    let (s, body) = send_json(app.client.post(app.url("/shop/orders/7/cancel"))).await;
    assert_eq!(s, 401);
    assert_eq!(body["parameters"]["resources"], "Magento_Sales::cancel");
    let (s, _) = send_json(canceller.request("GET", "/shop/orders/7")).await;
    assert_eq!(s, 403);
    // Public routes pass for guests; unknown paths are 404 in the REST shape.
    let res = app
        .client
        .get(app.url("/shop/catalog/a/b?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen: Value = res.json().await.unwrap();
    assert_eq!(seen["path"], "/base/shop/catalog/a/b?x=1");
    assert_eq!(seen["headers"]["x-auth-user-type"], "guest");
    let (s, body) = send_json(app.client.get(app.url("/nowhere"))).await;
    assert_eq!(
        (s, body),
        (404, json!({"message": "Request does not match any route."}))
    );

    // An upstream that is down answers 502.
    drop(upstream);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (s, body) = send_json(app.client.get(app.url("/shop/catalog/x"))).await;
    assert_eq!(s, 502, "{body}");
}

/// nginx in front of `upstream_port`, asking the server on `app_port` about each request
/// with `auth_request`.
fn auth_request_nginx(app_port: u16, upstream_port: u16) -> Nginx {
    Nginx::start(|port| {
        format!(
            r#"
    server {{
        listen 127.0.0.1:{port};
        location / {{
            auth_request /_auth;
            auth_request_set $auth_type $upstream_http_x_auth_user_type;
            auth_request_set $auth_id $upstream_http_x_auth_user_id;
            proxy_set_header X-Auth-User-Type $auth_type;
            proxy_set_header X-Auth-User-Id $auth_id;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass http://127.0.0.1:{upstream_port};
        }}
        location = /_auth {{
            internal;
            proxy_pass http://127.0.0.1:{app_port}/forward-auth;
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
            proxy_set_header X-Original-Method $request_method;
            proxy_set_header X-Forwarded-Host $http_host;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
"#
        )
    })
}

#[tokio::test]
async fn nginx_auth_request_in_front_of_a_service() {
    let upstream = Upstream::start().await;
    let app = app_with_routes(shop_routes(None)).await;
    let nginx = auth_request_nginx(app.port, upstream.port);
    let viewer = app
        .minted_integration("Viewer", &["Magento_Sales::actions_view"])
        .await;
    let admin = bearer_of(&app, AccountKind::Admin, "jane").await;
    let client = &app.client;

    // A guest: the public catalogue passes with the guest identity; orders are refused by nginx
    // with the 401 forward-auth answered, and never reach the service.
    let res = client
        .get(nginx.url("/shop/catalog/shoes"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.text().await);
    let seen: Value = res.json().await.unwrap();
    assert_eq!(seen["headers"]["x-auth-user-type"], "guest");
    let res = client
        .get(nginx.url("/shop/orders/3"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);

    // An OAuth-signed request, signed for the URL the client used (nginx's address).
    let url = nginx.url("/shop/orders/3?with=lines%20and%20notes");
    let res = client
        .get(&url)
        .header("Authorization", signed_for(&viewer, "GET", &url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen: Value = res.json().await.unwrap();
    assert_eq!(seen["path"], "/shop/orders/3?with=lines%20and%20notes");
    assert_eq!(seen["headers"]["x-auth-user-type"], "integration");
    assert_eq!(
        seen["headers"]["x-auth-user-id"],
        viewer.integration_id.to_string()
    );
    // The sibling resource: identified, not allowed (403).
    let url = nginx.url("/shop/orders/3/cancel");
    let res = client
        .post(&url)
        .header("Authorization", signed_for(&viewer, "POST", &url))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Bearer tokens: an admin passes, a forged token is refused.
    let res = client
        .post(nginx.url("/shop/orders/3/cancel"))
        .header("Authorization", format!("Bearer {admin}"))
        .send()
        .await
        .unwrap();
    let status = res.status();
    let seen: Value = res.json().await.unwrap_or_default();
    assert_eq!(status, 200, "{seen} {}", nginx.error_log());
    assert_eq!(seen["headers"]["x-auth-user-type"], "admin");
    let res = client
        .get(nginx.url("/shop/orders/3"))
        .header("Authorization", "Bearer forged.token.value")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}
