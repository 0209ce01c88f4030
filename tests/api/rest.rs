//! The integrations REST API through signed requests: CRUD, activation, the ACL, refusals of
//! the signed-request checks, bearer tokens, store codes, and the OpenAPI document.

use integration_host_tests::{
    Caller, Recorder, TestApp, oauth_header, raw_scalar_i64, send_json, spawn_app, spawn_app_with,
    unix_now,
};
use serde_json::{Value, json};

const INTEGRATIONS: &str = "Magento_Integration::integrations";

async fn admin_caller(app: &TestApp) -> Caller {
    app.minted_integration("Manager", &[INTEGRATIONS]).await
}

fn refusal(resources: &str) -> Value {
    json!({
        "message": "The consumer isn't authorized to access %resources.",
        "parameters": {"resources": resources}
    })
}

#[tokio::test]
async fn a_signed_caller_manages_integrations() {
    let app = spawn_app().await;
    let caller = admin_caller(&app).await;

    // Create with JSON; resources come back with their ancestors.
    let (status, created) = send_json(caller.json(
        "POST",
        "/rest/V1/integrations",
        &json!({
            "name": "Shop Sync",
            "email": "ops@partner.example",
            "endpoint": "https://partner.example/activate",
            "identity_link_url": "https://partner.example/login",
            "resources": ["Magento_Sales::cancel"],
        }),
    ))
    .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["name"], "Shop Sync");
    assert_eq!(created["status"], 0);
    assert_eq!(created["setup_type"], "manual");
    assert_eq!(created["not_secure"], false);
    assert_eq!(
        created["resources"],
        json!([
            "Magento_Backend::admin",
            "Magento_Sales::actions",
            "Magento_Sales::cancel",
            "Magento_Sales::sales",
            "Magento_Sales::sales_operation",
            "Magento_Sales::sales_order",
        ])
    );
    let id = created["id"].as_i64().unwrap();

    // Get, and list with filters (repeated status names).
    let (status, got) =
        send_json(caller.request("GET", &format!("/rest/V1/integrations/{id}"))).await;
    assert_eq!(status, 200);
    assert_eq!(got, created);
    let (status, list) =
        send_json(caller.request("GET", "/rest/V1/integrations?status=0&status=2")).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["total_count"], 1);
    assert_eq!(list["items"][0]["name"], "Shop Sync");
    let (_, list) = send_json(caller.request("GET", "/rest/V1/integrations?name=manager")).await;
    assert_eq!(list["items"][0]["name"], "Manager");
    assert_eq!(list["items"][0]["status"], 1);

    // Update with a form body (signed, repeated names), to an http: endpoint.
    let (status, changed) = send_json(caller.form(
        "PUT",
        &format!("/rest/V1/integrations/{id}"),
        &[
            ("name", "Shop Sync 2"),
            ("endpoint", "http://partner.example/activate"),
            ("resources", "Magento_Catalog::products"),
            ("resources[]", "Magento_Customer::manage"),
        ],
    ))
    .await;
    assert_eq!(status, 200, "{changed}");
    assert_eq!(changed["name"], "Shop Sync 2");
    assert_eq!(changed["email"], "");
    assert_eq!(changed["not_secure"], true);
    assert_eq!(
        changed["resources"],
        json!([
            "Magento_Backend::admin",
            "Magento_Catalog::catalog",
            "Magento_Catalog::catalog_inventory",
            "Magento_Catalog::products",
            "Magento_Customer::customer",
            "Magento_Customer::manage",
        ])
    );

    // All resources.
    let (status, all) = send_json(caller.json(
        "PUT",
        &format!("/rest/V1/integrations/{id}"),
        &json!({"name": "Shop Sync 2", "all_resources": true}),
    ))
    .await;
    assert_eq!(status, 200, "{all}");
    assert_eq!(all["all_resources"], true);
    assert_eq!(all["resources"], json!([]));

    // Delete leaves nothing behind.
    let consumer = changed["consumer_id"].as_i64().unwrap();
    let (status, deleted) =
        send_json(caller.request("DELETE", &format!("/rest/V1/integrations/{id}"))).await;
    assert_eq!(status, 200, "{deleted}");
    for sql in [
        format!("SELECT COUNT(*) FROM integration WHERE id = {id}"),
        format!("SELECT COUNT(*) FROM oauth_consumer WHERE id = {consumer}"),
        format!("SELECT COUNT(*) FROM oauth_token WHERE consumer_id = {consumer}"),
        format!("SELECT COUNT(*) FROM authorization_role WHERE user_type = 1 AND user_id = {id}"),
    ] {
        assert_eq!(raw_scalar_i64(&app.db, &sql).await.unwrap(), 0, "{sql}");
    }
    let (status, body) =
        send_json(caller.request("GET", &format!("/rest/V1/integrations/{id}"))).await;
    assert_eq!(status, 404);
    assert_eq!(
        body["message"],
        format!("The integration with ID \"{id}\" doesn't exist.")
    );
    app.db.destroy().await;
}

#[tokio::test]
async fn activation_through_the_api_mints_or_posts_to_the_endpoint() {
    let app = spawn_app().await;
    let caller = admin_caller(&app).await;
    let (_, minted) = send_json(caller.json(
        "POST",
        "/rest/V1/integrations",
        &json!({"name": "Minted", "all_resources": true}),
    ))
    .await;
    let id = minted["id"].as_i64().unwrap();
    let (status, answer) =
        send_json(caller.request("POST", &format!("/rest/V1/integrations/{id}/activate"))).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["activation"], "minted");
    assert_eq!(answer["integration"]["status"], 1);
    let creds = &answer["credentials"];
    for k in [
        "consumer_key",
        "consumer_secret",
        "access_token",
        "access_token_secret",
    ] {
        assert_eq!(creds[k].as_str().unwrap().len(), 32, "{k}");
    }
    // The minted credentials work at once, and see everything.
    let minted_caller = Caller {
        integration_id: id,
        consumer_id: answer["integration"]["consumer_id"].as_i64().unwrap(),
        key: creds["consumer_key"].as_str().unwrap().into(),
        secret: creds["consumer_secret"].as_str().unwrap().into(),
        token: creds["access_token"].as_str().unwrap().into(),
        token_secret: creds["access_token_secret"].as_str().unwrap().into(),
        ..caller.clone()
    };
    let (status, _) = send_json(minted_caller.request("GET", "/rest/V1/integrations")).await;
    assert_eq!(status, 200);
    // Activating an active one is refused; reauthorizing replaces the token.
    let (status, body) =
        send_json(caller.request("POST", &format!("/rest/V1/integrations/{id}/activate"))).await;
    assert_eq!(status, 400, "{body}");
    let (status, again) =
        send_json(caller.request("POST", &format!("/rest/V1/integrations/{id}/reauthorize"))).await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["credentials"]["consumer_key"], creds["consumer_key"]);
    assert_ne!(again["credentials"]["access_token"], creds["access_token"]);
    let (status, body) = send_json(minted_caller.request("GET", "/rest/V1/integrations")).await;
    assert_eq!(status, 401, "the old token is gone: {body}");
    assert_eq!(body["message"], "Specified token does not exist");

    // With an endpoint and identity link: the credentials go to the endpoint.
    let recorder = Recorder::start(200).await;
    let (_, linked) = send_json(caller.json(
        "POST",
        "/rest/V1/integrations",
        &json!({"name": "Linked", "endpoint": recorder.url, "identity_link_url": "https://partner.example/login"}),
    ))
    .await;
    let (status, answer) = send_json(caller.request(
        "POST",
        &format!("/rest/V1/integrations/{}/activate", linked["id"]),
    ))
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["activation"], "identity_link");
    assert!(answer.get("credentials").is_none());
    let key = recorder.field("oauth_consumer_key").unwrap();
    assert!(
        answer["identity_link_url"]
            .as_str()
            .unwrap()
            .contains(&format!("oauth_consumer_key={key}"))
    );
    // An endpoint that refuses gives 502 with a clear text.
    let refusing = Recorder::start(500).await;
    let (_, bad) = send_json(caller.json(
        "POST",
        "/rest/V1/integrations",
        &json!({"name": "Refused", "endpoint": refusing.url, "identity_link_url": "https://partner.example/login"}),
    ))
    .await;
    let (status, body) = send_json(caller.request(
        "POST",
        &format!("/rest/V1/integrations/{}/activate", bad["id"]),
    ))
    .await;
    assert_eq!(status, 502, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("answered HTTP 500")
    );
    app.db.destroy().await;
}

#[tokio::test]
async fn the_acl_decides_what_a_caller_reaches() {
    let app = spawn_app().await;
    // A guest.
    let res = app.get("/rest/V1/integrations").await;
    assert_eq!(res.status().as_u16(), 401);
    assert_eq!(res.json::<Value>().await.unwrap(), refusal(INTEGRATIONS));
    // A sibling resource does not reach the route; nor does the parent of the resource.
    for granted in ["Magento_User::acl", "Magento_Integration::extensions"] {
        let other = app.minted_integration(granted, &[granted]).await;
        let (status, body) = send_json(other.request("GET", "/rest/V1/integrations")).await;
        assert_eq!(status, 401, "{granted}");
        assert_eq!(body, refusal(INTEGRATIONS));
    }
    // All resources reach it.
    let all = app
        .minted_integration("All", &["Magento_Backend::all"])
        .await;
    let (status, _) = send_json(all.request("GET", "/rest/V1/integrations")).await;
    assert_eq!(status, 200);
    // An integration that is no longer active is refused like a guest, as Magento does.
    app.store
        .set_integration_status(
            all.integration_id,
            integration_host::domain::IntegrationStatus::Inactive,
            None,
        )
        .await
        .unwrap();
    let (status, body) = send_json(all.request("GET", "/rest/V1/integrations")).await;
    assert_eq!(status, 401);
    assert_eq!(body, refusal(INTEGRATIONS));
    app.db.destroy().await;
}

#[tokio::test]
async fn signed_request_checks_refuse_with_magento_texts() {
    // Tokens are changed behind the server's back below: read them on every request.
    let app = spawn_app_with(|s| s.oauth.credential_cache_seconds = 0).await;
    let caller = admin_caller(&app).await;
    let other = app.minted_integration("Other", &[INTEGRATIONS]).await;
    let path = "/rest/V1/integrations";
    let url = app.url(path);
    let send = |header: String| {
        let req = app.client.get(&url).header("Authorization", header);
        send_json(req)
    };
    let sign = |token: &str, token_secret: &str, nonce: &str, ts: i64| {
        oauth_header(
            "GET",
            &url,
            &caller.key,
            &caller.secret,
            token_secret,
            &[("oauth_token", token)],
            &[],
            nonce,
            ts,
        )
    };

    // Replay: the same header twice.
    let header = caller.header("GET", path, &[]);
    assert_eq!(send(header.clone()).await.0, 200);
    let (status, body) = send(header).await;
    assert_eq!(status, 401);
    assert_eq!(
        body,
        json!({
            "message": "The nonce is already being used by the consumer with ID %1",
            "parameters": [caller.consumer_id.to_string()],
        })
    );
    // A nonce is used for its consumer whatever the timestamp, while that use is within the
    // window (and a margin of 60 s)...
    let now = unix_now();
    let reuse = |ts| sign(&caller.token, &caller.token_secret, "nonce-reuse-1", ts);
    assert_eq!(send(reuse(now)).await.0, 200);
    let (status, body) = send(reuse(now - 5)).await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("The nonce is already being used"),
        "{body}"
    );
    // ...and not once that use is out of it: no request with that timestamp could pass.
    integration_host_tests::raw_execute(
        &app.db,
        &format!(
            "INSERT INTO oauth_nonce (nonce, timestamp, consumer_id) VALUES ('nonce-old-1', {}, {})",
            now - 600 - 61,
            caller.consumer_id
        ),
    )
    .await
    .unwrap();
    let old = sign(&caller.token, &caller.token_secret, "nonce-old-1", now);
    assert_eq!(send(old.clone()).await.0, 200);
    assert_eq!(send(old).await.0, 401);
    // A timestamp outside the window, either way (5 s past its edge: a request signed at the
    // end of a second may be read in the next one).
    for ts in [unix_now() - 605, unix_now() + 605] {
        let (status, body) =
            send(sign(&caller.token, &caller.token_secret, "nonce-ts-1", ts)).await;
        assert_eq!(status, 401);
        assert_eq!(
            body,
            json!({
                "message": "The oauth_timestamp is not within %1 seconds of the server time",
                "parameters": ["600"],
            })
        );
    }
    // A wrong token secret: the signature fails, and the nonce stays unused.
    let (status, body) = send(sign(&caller.token, "wrong", "nonce-sig-1", unix_now())).await;
    assert_eq!(status, 401);
    assert_eq!(
        body["message"],
        "The signature is invalid. Verify and try again."
    );
    assert_eq!(
        send(sign(
            &caller.token,
            &caller.token_secret,
            "nonce-sig-1",
            unix_now()
        ))
        .await
        .0,
        200
    );
    // Another consumer's token.
    let (status, body) = send(sign(
        &other.token,
        &other.token_secret,
        "nonce-o-1",
        unix_now(),
    ))
    .await;
    assert_eq!(status, 401);
    assert_eq!(
        body["message"],
        "Token is not associated with the specified consumer"
    );
    // Unknown token, bad token length, missing token.
    let (status, body) = send(sign(&"x".repeat(32), "", "nonce-u-1", unix_now())).await;
    assert_eq!(
        (status, body["message"].as_str().unwrap()),
        (401, "Specified token does not exist")
    );
    // Several missing parameters: Magento's aggregate, one entry each.
    let (status, body) = send(format!("OAuth oauth_consumer_key=\"{}\"", caller.key)).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(
        body["message"],
        "One or more input exceptions have occurred."
    );
    let missing: Vec<&str> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            assert_eq!(
                e["message"],
                "\"%fieldName\" is required. Enter and try again."
            );
            e["parameters"]["fieldName"].as_str().unwrap()
        })
        .collect();
    assert_eq!(
        missing,
        [
            "oauth_signature",
            "oauth_signature_method",
            "oauth_nonce",
            "oauth_timestamp",
            "oauth_token"
        ]
    );
    let (status, body) = send(sign("short", "", "nonce-l-1", unix_now())).await;
    assert_eq!(
        (status, body["message"].as_str().unwrap()),
        (
            400,
            "The token length is invalid. Check the length and try again."
        )
    );
    let header = oauth_header(
        "GET",
        &url,
        &caller.key,
        &caller.secret,
        "",
        &[],
        &[],
        "nonce-m-1",
        unix_now(),
    );
    let (status, body) = send(header).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({
            "message": "\"%fieldName\" is required. Enter and try again.",
            "parameters": {"fieldName": "oauth_token"},
        })
    );
    // A revoked token.
    sqlx_update(
        &app,
        &format!(
            "UPDATE oauth_token SET revoked = TRUE WHERE consumer_id = {}",
            caller.consumer_id
        ),
    )
    .await;
    let (status, body) = send(sign(
        &caller.token,
        &caller.token_secret,
        "nonce-r-1",
        unix_now(),
    ))
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "Access token has been revoked");
    // A token that is not an access token.
    sqlx_update(
        &app,
        &format!(
            "UPDATE oauth_token SET revoked = FALSE, type = 'request' WHERE consumer_id = {}",
            caller.consumer_id
        ),
    )
    .await;
    let (status, body) = send(sign(
        &caller.token,
        &caller.token_secret,
        "nonce-t-1",
        unix_now(),
    ))
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["message"], "Token is not an access token");
    // A SHA1 signature is refused unless configured.
    let sha1 = caller
        .header("GET", path, &[])
        .replace("HMAC-SHA256", "HMAC-SHA1");
    let (status, body) = send(sha1).await;
    assert_eq!(status, 400);
    assert_eq!(
        body,
        json!({"message": "Signature method %1 is not supported", "parameters": ["HMAC-SHA1"]})
    );
    app.db.destroy().await;
}

async fn sqlx_update(app: &TestApp, sql: &str) {
    integration_host_tests::raw_execute(&app.db, sql)
        .await
        .expect("update runs");
}

#[tokio::test]
async fn integration_bearer_tokens_work_only_when_enabled() {
    for enabled in [false, true] {
        let app = spawn_app_with(|s| s.oauth.allow_integration_bearer = enabled).await;
        let caller = admin_caller(&app).await;
        let res = app
            .client
            .get(app.url("/rest/V1/integrations"))
            .header("Authorization", format!("Bearer {}", caller.token))
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        if enabled {
            assert_eq!(status, 200, "{body}");
        } else {
            assert_eq!((status, body), (401, refusal(INTEGRATIONS)));
        }
        app.db.destroy().await;
    }
}

#[tokio::test]
async fn input_errors_are_clear_and_change_nothing() {
    let app = spawn_app().await;
    let caller = admin_caller(&app).await;
    let cases = [
        (
            json!({"email": "a@b.example"}),
            400,
            "\"%fieldName\" is required. Enter and try again.",
            "name",
        ),
        (
            json!({"name": "X", "endpoint": "ftp://x"}),
            400,
            "Invalid value of \"%value\" provided for the %fieldName field.",
            "endpoint",
        ),
        (
            json!({"name": "X", "email": "nope"}),
            400,
            "Invalid value of \"%value\" provided for the %fieldName field.",
            "email",
        ),
        (
            json!({"name": "X", "resources": ["Magento_Nope::x"]}),
            400,
            "Invalid value of \"%value\" provided for the %fieldName field.",
            "resources",
        ),
    ];
    for (body, status, message, field) in cases {
        let (got, answer) = send_json(caller.json("POST", "/rest/V1/integrations", &body)).await;
        assert_eq!(got, status, "{body}: {answer}");
        assert_eq!(answer["message"], message);
        assert_eq!(answer["parameters"]["fieldName"], field);
    }
    let (status, answer) =
        send_json(caller.json("POST", "/rest/V1/integrations", &json!({"name": "manager"}))).await;
    assert_eq!(status, 400);
    assert_eq!(answer["message"], "Integration with name 'manager' exists.");
    let (status, answer) = send_json(caller.json(
        "POST",
        "/rest/V1/integrations",
        &json!({"name": "X", "colour": "red"}),
    ))
    .await;
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["parameters"]["reason"]
            .as_str()
            .unwrap()
            .contains("colour")
    );
    let (status, _) = send_json(
        caller
            .request("POST", "/rest/V1/integrations")
            .header("Content-Type", "text/plain")
            .body("name=X"),
    )
    .await;
    assert_eq!(status, 415);
    let (status, answer) = send_json(caller.request("GET", "/rest/V1/integrations/abc")).await;
    assert_eq!(status, 400, "{answer}");
    let (status, _) = send_json(caller.request("PATCH", "/rest/V1/integrations")).await;
    assert_eq!(status, 405);
    assert_eq!(
        raw_scalar_i64(&app.db, "SELECT COUNT(*) FROM integration")
            .await
            .unwrap(),
        1,
        "only the caller's own integration exists"
    );
    app.db.destroy().await;
}

#[tokio::test]
async fn store_codes_in_the_path() {
    let app = spawn_app().await;
    let caller = admin_caller(&app).await;
    for (path, status) in [
        ("/rest/default/V1/integrations", 200),
        ("/rest/all/V1/integrations", 200),
        ("/rest/elsewhere/V1/integrations", 400),
    ] {
        let (got, body) = send_json(caller.request("GET", path)).await;
        assert_eq!(got, status, "{path}: {body}");
    }
    app.db.destroy().await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let app = spawn_app().await;
    let doc: Value = app.get("/rest/schema").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    for p in [
        "/rest/V1/integrations",
        "/rest/V1/integrations/{id}",
        "/rest/V1/integrations/{id}/activate",
        "/rest/V1/integrations/{id}/reauthorize",
    ] {
        assert!(paths.contains_key(p), "{p} missing");
    }
    assert!(doc["paths"]["/rest/V1/integrations/{id}"]["delete"].is_object());
    // Every route of the built-in route table is described, with its method.
    let tree = integration_host::acl::ResourceTree::builtin();
    let table = integration_host::webapi::RouteTable::load(&[], &tree).unwrap();
    for route in table.own() {
        let path = format!("/rest{}", route.actix_pattern());
        let method = route.method.to_lowercase();
        assert!(
            doc["paths"][&path][&method].is_object(),
            "{} {path} is not in the OpenAPI document",
            route.method
        );
    }
    assert!(doc["paths"]["/rest/V1/integration/admin/token"]["post"]["security"].is_null());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());
    assert!(doc["components"]["schemas"]["IntegrationView"].is_object());
    assert!(doc["components"]["securitySchemes"]["oauth1"].is_object());
    // The list's search criteria: its query parameters and the echo in the answer.
    let params: Vec<&str> = doc["paths"]["/rest/V1/integrations"]["get"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    for name in [
        "searchCriteria[filter_groups][0][filters][0][field]",
        "searchCriteria[filter_groups][0][filters][0][value]",
        "searchCriteria[filter_groups][0][filters][0][condition_type]",
        "searchCriteria[sort_orders][0][field]",
        "searchCriteria[sort_orders][0][direction]",
        "searchCriteria[pageSize]",
        "searchCriteria[currentPage]",
    ] {
        assert!(params.contains(&name), "{name} missing: {params:?}");
    }
    let list = &doc["components"]["schemas"]["IntegrationList"]["properties"];
    assert!(list["search_criteria"].is_object(), "{list}");
    let filter = &doc["components"]["schemas"]["Filter"]["properties"];
    assert!(filter["condition_type"].is_object(), "{filter}");
    // The body schema is the type the handlers decode: its fields, only the name required.
    let body = &doc["components"]["schemas"]["IntegrationBody"];
    assert_eq!(body["required"], serde_json::json!(["name"]), "{body}");
    for field in [
        "name",
        "email",
        "endpoint",
        "identity_link_url",
        "all_resources",
        "resources",
    ] {
        assert!(
            body["properties"][field].is_object(),
            "{field} missing: {body}"
        );
    }
    app.db.destroy().await;
}

#[tokio::test]
async fn credential_changes_apply_at_once_here_and_within_the_cache_time_elsewhere() {
    let app = spawn_app_with(|s| s.oauth.credential_cache_seconds = 1).await;
    let caller = admin_caller(&app).await;
    let path = "/rest/V1/integrations/me";
    assert_eq!(send_json(caller.request("GET", path)).await.0, 200);
    // Through this process: a deactivation applies to the next request.
    app.store
        .set_integration_status(
            caller.integration_id,
            integration_host::domain::IntegrationStatus::Inactive,
            None,
        )
        .await
        .unwrap();
    assert_eq!(send_json(caller.request("GET", path)).await.0, 401);
    app.store
        .set_integration_status(
            caller.integration_id,
            integration_host::domain::IntegrationStatus::Active,
            None,
        )
        .await
        .unwrap();
    assert_eq!(send_json(caller.request("GET", path)).await.0, 200);
    // Behind its back (another process): seen within credential_cache_seconds.
    integration_host_tests::raw_execute(
        &app.db,
        &format!(
            "UPDATE oauth_token SET revoked = TRUE WHERE consumer_id = {}",
            caller.consumer_id
        ),
    )
    .await
    .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let (status, body) = send_json(caller.request("GET", path)).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["message"], "Access token has been revoked");
    app.db.destroy().await;
}

#[tokio::test]
async fn a_write_by_another_connection_shows_in_reads_and_credentials_at_once() {
    // A long cache time: only the store's watch (SQLite's data_version, PostgreSQL's change
    // notices) can explain freshness.
    let app = spawn_app_with(|s| s.oauth.credential_cache_seconds = 30).await;
    let caller = admin_caller(&app).await;
    let other = app.minted_integration("Other", &[INTEGRATIONS]).await;
    let path = format!("/rest/V1/integrations/{}", other.integration_id);
    let (status, body) = send_json(caller.request("GET", &path)).await;
    assert_eq!(
        (status, body["name"].as_str()),
        (200, Some("Other")),
        "{body}"
    );
    // Read twice, so the second answer came from whatever the server keeps.
    assert_eq!(
        send_json(caller.request("GET", &path)).await.1["name"],
        "Other"
    );
    // The product promises 100 ms; a loaded test machine gets some slack.
    let bound = integration_host::store::WATCH_INTERVAL * 10;
    integration_host_tests::raw_execute(
        &app.db,
        &format!(
            "UPDATE integration SET name = 'Renamed' WHERE id = {}",
            other.integration_id
        ),
    )
    .await
    .unwrap();
    let changed = std::time::Instant::now();
    loop {
        let (status, body) = send_json(caller.request("GET", &path)).await;
        assert_eq!(status, 200, "{body}");
        if body["name"] == "Renamed" {
            break;
        }
        assert!(
            changed.elapsed() < bound,
            "still the old name after {bound:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    {
        integration_host_tests::raw_execute(
            &app.db,
            &format!(
                "UPDATE oauth_token SET revoked = TRUE WHERE consumer_id = {}",
                caller.consumer_id
            ),
        )
        .await
        .unwrap();
        let revoked = std::time::Instant::now();
        loop {
            let (status, body) = send_json(caller.request("GET", &path)).await;
            if status == 401 {
                assert_eq!(body["message"], "Access token has been revoked");
                break;
            }
            assert!(revoked.elapsed() < bound, "still accepted after {bound:?}");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }
    app.db.destroy().await;
}

#[tokio::test]
async fn concurrent_copies_of_a_nonce_pass_once_and_fresh_neighbours_pass() {
    let app = spawn_app().await;
    let caller = admin_caller(&app).await;
    let path = "/rest/V1/integrations/me";
    let url = app.url(path);
    let replayed = caller.header("GET", path, &[]);
    let send = |h: String| {
        let req = app.client.get(&url).header("Authorization", h);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    // Rounds of 20 copies of one header mixed with 20 fresh ones, all in flight at once: the
    // copies share batches with each other and with fresh nonces.
    for round in 0..3 {
        let mut all = Vec::new();
        for _ in 0..20 {
            all.push(send(replayed.clone()));
            all.push(send(caller.header("GET", path, &[])));
        }
        let statuses = futures_util::future::join_all(all).await;
        let copies_ok = statuses.iter().step_by(2).filter(|s| **s == 200).count();
        let fresh_ok = statuses
            .iter()
            .skip(1)
            .step_by(2)
            .filter(|s| **s == 200)
            .count();
        assert_eq!(
            copies_ok,
            usize::from(round == 0),
            "round {round}: {statuses:?}"
        );
        assert_eq!(fresh_ok, 20, "round {round}: {statuses:?}");
    }
    app.db.destroy().await;
}

#[tokio::test]
async fn the_authorization_and_consumer_services() {
    let app = spawn_app().await;
    let caller = app.minted_integration("Granted", &[]).await;
    let id = caller.integration_id;
    let authz = app.integrations.authorization();
    use integration_host::acl::Grants;
    assert_eq!(authz.selected_resources(id).await.unwrap(), Grants::none());
    let (status, _) = send_json(caller.request("GET", "/rest/V1/integrations")).await;
    assert_eq!(status, 401);
    // Grant: ancestors come along, and the route opens at once.
    let grants = authz
        .grant_permissions(id, &[INTEGRATIONS.to_owned()])
        .await
        .unwrap();
    assert_eq!(grants.to_rules().len(), 4);
    assert_eq!(authz.selected_resources(id).await.unwrap(), grants);
    let (status, _) = send_json(caller.request("GET", "/rest/V1/integrations")).await;
    assert_eq!(status, 200);
    // An unknown resource changes nothing.
    assert!(
        authz
            .grant_permissions(id, &["Magento_Nope::x".to_owned()])
            .await
            .is_err()
    );
    assert_eq!(authz.selected_resources(id).await.unwrap(), grants);
    authz.grant_all_permissions(id).await.unwrap();
    assert_eq!(authz.selected_resources(id).await.unwrap(), Grants::All);
    authz.remove_permissions(id).await.unwrap();
    assert_eq!(authz.selected_resources(id).await.unwrap(), Grants::none());
    let (status, _) = send_json(caller.request("GET", "/rest/V1/integrations")).await;
    assert_eq!(status, 401);
    assert!(authz.grant_all_permissions(999_999).await.is_err());

    // Consumers on their own, and deleting an integration's consumer deletes the integration.
    let consumer = app.oauth.create_consumer("Standalone").await.unwrap();
    assert_eq!(consumer.key.len(), 32);
    let loaded = app
        .oauth
        .load_consumer_by_key(&consumer.key)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (loaded.id, loaded.secret.as_str()),
        (consumer.id, consumer.secret.as_str())
    );
    app.oauth.delete_consumer(consumer.id).await.unwrap();
    assert!(
        app.oauth
            .load_consumer_by_key(&consumer.key)
            .await
            .unwrap()
            .is_none()
    );
    app.oauth.delete_consumer(caller.consumer_id).await.unwrap();
    assert!(
        app.integrations
            .find_by_name("Granted")
            .await
            .unwrap()
            .is_none()
    );
    let (status, _) = send_json(caller.request("GET", "/rest/V1/integrations/me")).await;
    assert_eq!(status, 401);
    app.db.destroy().await;
}
