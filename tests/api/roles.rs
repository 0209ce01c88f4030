//! Admin roles as operators and admins use them: an admin token reaches what the admin's role
//! grants, read when the request is made (a change applies without signing in again); an
//! admin without a role cannot sign in; roles managed through the REST API (every refusal in
//! Magento's shape) and the command line against a running server; the admin pages hidden and
//! refused for a role that lacks them.

use std::time::{Duration, Instant};

use integration_host::domain::AccountKind;
use integration_host_tests::{
    TestApp, admin_ui_session, fresh_client, run_binary, send_json, show, spawn_app,
};
use serde_json::{Value, json};

const NO_ROLE: &str = "More permissions are needed to access this.";
const NOT_AUTHORIZED: &str = "The consumer isn't authorized to access %resources.";

async fn sign_in(app: &TestApp, user: &str, password: &str) -> (u16, Value) {
    send_json(
        fresh_client()
            .post(app.url("/rest/V1/integration/admin/token"))
            .json(&json!({"username": user, "password": password})),
    )
    .await
}

async fn token(app: &TestApp, user: &str, password: &str) -> String {
    let (status, body) = sign_in(app, user, password).await;
    assert_eq!(status, 200, "{body}");
    body.as_str().unwrap().to_owned()
}

async fn call(
    app: &TestApp,
    method: &str,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = app.bearer(method, path, token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    send_json(req).await
}

/// Waits (up to `limit`) until `probe` answers `want`; answers the last status.
async fn until_status<F, Fut>(want: u16, limit: Duration, probe: F) -> u16
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = u16>,
{
    let started = Instant::now();
    loop {
        let status = probe().await;
        if status == want || started.elapsed() > limit {
            return status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn an_admin_token_reaches_what_the_role_grants_now() {
    let app = spawn_app().await;
    let root = app.admin_token().await; // jane, Administrators
    let clerk_id = app
        .account(AccountKind::Admin, "clerk", "clerk-pass1")
        .await;

    // A role of orders only: its ancestors come with it.
    let (status, role) = call(
        &app,
        "POST",
        "/rest/V1/roles",
        &root,
        Some(json!({"name": "Order clerks", "resources": ["Magento_Sales::sales_order"]})),
    )
    .await;
    assert_eq!(status, 200, "{role}");
    let role_id = role["id"].as_i64().unwrap();
    assert_eq!(role["all_resources"], false);
    let resources: Vec<&str> = role["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.as_str().unwrap())
        .collect();
    assert!(
        resources.contains(&"Magento_Sales::sales_order")
            && resources.contains(&"Magento_Sales::sales"),
        "{role}"
    );
    assert!(!resources.contains(&"Magento_Integration::integrations"));

    // The clerk signs in while still an Administrator, then gets the role.
    let clerk = token(&app, "clerk", "clerk-pass1").await;
    assert_eq!(
        call(&app, "GET", "/rest/V1/integrations", &clerk, None)
            .await
            .0,
        200
    );
    let (status, body) = call(
        &app,
        "PUT",
        &format!("/rest/V1/admin-users/{clerk_id}/role"),
        &root,
        Some(json!({"role_id": role_id})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["username"], "clerk");
    assert_eq!(body["role"]["name"], "Order clerks");
    assert_eq!(body["role"]["admin_users"], 1);

    // The same token is refused at once, in Magento's words, on the integrations and roles.
    let (status, body) = call(&app, "GET", "/rest/V1/integrations", &clerk, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["message"], NOT_AUTHORIZED);
    assert_eq!(
        body["parameters"]["resources"],
        "Magento_Integration::integrations"
    );
    let (status, body) = call(&app, "GET", "/rest/V1/roles", &clerk, None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["parameters"]["resources"], "Magento_User::acl_roles");

    // The role gains the resource: allowed, without signing in again.
    let (status, body) = call(
        &app,
        "PUT",
        &format!("/rest/V1/roles/{role_id}"),
        &root,
        Some(json!({"resources": ["Magento_Sales::sales_order", "Magento_Integration::integrations"]})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Order clerks", "a missing name keeps it");
    assert_eq!(
        call(&app, "GET", "/rest/V1/integrations", &clerk, None)
            .await
            .0,
        200
    );
    assert_eq!(
        call(&app, "GET", "/rest/V1/roles", &clerk, None).await.0,
        401
    );

    // Read back, listed with its holder count; the built-in role is marked.
    let (status, one) = call(
        &app,
        "GET",
        &format!("/rest/V1/roles/{role_id}"),
        &root,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(one["admin_users"], 1);
    let (_, list) = call(&app, "GET", "/rest/V1/roles", &root, None).await;
    let admins = list
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["name"] == "Administrators")
        .expect("the built-in role is listed");
    assert_eq!(admins["built_in"], true);
    assert_eq!(admins["all_resources"], true);
    let (status, mine) = call(
        &app,
        "GET",
        &format!("/rest/V1/admin-users/{clerk_id}/role"),
        &root,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(mine["role"]["id"], role_id);

    // The role taken away: the token reaches nothing, and signing in is refused.
    let (status, body) = call(
        &app,
        "PUT",
        &format!("/rest/V1/admin-users/{clerk_id}/role"),
        &root,
        Some(json!({"role_id": null})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["role"], Value::Null);
    assert_eq!(
        call(&app, "GET", "/rest/V1/integrations", &clerk, None)
            .await
            .0,
        401
    );
    let (status, body) = sign_in(&app, "clerk", "clerk-pass1").await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["message"], NO_ROLE);
    // The right password with no role is no failed attempt: a wrong one still says Magento's
    // usual text.
    let (status, body) = sign_in(&app, "clerk", "wrong-pass1").await;
    assert_eq!(status, 401);
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("The account sign-in was incorrect")
    );

    // Nobody holds it now: it can be deleted, and is gone.
    let (status, body) = call(
        &app,
        "DELETE",
        &format!("/rest/V1/roles/{role_id}"),
        &root,
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], "Order clerks");
    assert_eq!(
        call(
            &app,
            "GET",
            &format!("/rest/V1/roles/{role_id}"),
            &root,
            None
        )
        .await
        .0,
        404
    );

    // The OpenAPI document describes the role operations.
    let (_, doc) = send_json(fresh_client().get(app.url("/rest/schema"))).await;
    for path in [
        "/rest/V1/roles",
        "/rest/V1/roles/{id}",
        "/rest/V1/admin-users/{id}/role",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
}

#[tokio::test]
async fn role_refusals_are_clear_and_change_nothing() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let jane = app
        .tokens
        .accounts()
        .get(AccountKind::Admin, "jane")
        .await
        .unwrap()
        .id;
    let (_, list) = call(&app, "GET", "/rest/V1/roles", &root, None).await;
    let administrators = list[0]["id"].as_i64().unwrap();
    let post = |body: Value| call(&app, "POST", "/rest/V1/roles", &root, Some(body));

    let (status, body) = post(json!({"resources": []})).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (
            400,
            Some("\"%fieldName\" is required. Enter and try again.")
        ),
        "{body}"
    );
    assert_eq!(body["parameters"]["fieldName"], "name");
    let (status, body) = post(json!({"name": "X", "resources": ["Nope::nothing"]})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["parameters"]["value"], "Nope::nothing");
    assert_eq!(body["parameters"]["fieldName"], "resources");
    let (status, body) = post(json!({"name": "x".repeat(51)})).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = post(json!({"name": "administrators", "all_resources": true})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"].as_str().unwrap().contains("already exists"),
        "{body}"
    );
    let (status, body) = post(json!({"name": "Y", "colour": "red"})).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("The request body could not be read")
    );
    let (status, _) = send_json(
        app.bearer("POST", "/rest/V1/roles", &root)
            .header("Content-Type", "text/plain")
            .body("name=Y"),
    )
    .await;
    assert_eq!(status, 400);

    // The built-in role cannot change or go.
    for (method, body) in [
        ("PUT", Some(json!({"resources": ["Magento_Sales::sales"]}))),
        (
            "PUT",
            Some(json!({"name": "Admins", "all_resources": true})),
        ),
        ("DELETE", None),
    ] {
        let (status, answer) = call(
            &app,
            method,
            &format!("/rest/V1/roles/{administrators}"),
            &root,
            body,
        )
        .await;
        assert_eq!(status, 400, "{answer}");
        assert!(
            answer["message"].as_str().unwrap().contains("built in"),
            "{answer}"
        );
    }

    // A held role cannot be deleted; names stay unique on rename.
    let (_, a) = post(json!({"name": "A", "all_resources": true})).await;
    let (_, b) = post(json!({"name": "B", "resources": ["Magento_Sales::sales"]})).await;
    let held_by = app.account(AccountKind::Admin, "sam", "sam-pass12").await;
    let set = |admin: i64, body: Value| {
        let (app, root) = (&app, &root);
        async move {
            let path = format!("/rest/V1/admin-users/{admin}/role");
            call(app, "PUT", &path, root, Some(body)).await
        }
    };
    assert_eq!(set(held_by, json!({"role_id": a["id"]})).await.0, 200);
    let (status, body) = call(
        &app,
        "DELETE",
        &format!("/rest/V1/roles/{}", a["id"]),
        &root,
        None,
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("1 admin user holds it"),
        "{body}"
    );
    let (status, body) = call(
        &app,
        "PUT",
        &format!("/rest/V1/roles/{}", b["id"]),
        &root,
        Some(json!({"name": "a", "all_resources": true})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("already exists"));

    // An admin's role: a missing field, an unknown admin or role, their own.
    let (status, body) = set(held_by, json!({})).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["parameters"]["fieldName"], "role_id");
    assert_eq!(set(9999, json!({"role_id": a["id"]})).await.0, 404);
    assert_eq!(set(held_by, json!({"role_id": 9999})).await.0, 404);
    let (status, body) = set(jane, json!({"role_id": b["id"]})).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("your own role"));
    assert_eq!(
        call(&app, "GET", "/rest/V1/roles/9999", &root, None)
            .await
            .0,
        404
    );
    assert_eq!(
        call(&app, "GET", "/rest/V1/roles/abc", &root, None).await.0,
        400
    );

    // Nothing above changed a role or who holds it.
    let (_, after) = call(&app, "GET", "/rest/V1/roles", &root, None).await;
    let names: Vec<(&str, i64)> = after
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["name"].as_str().unwrap(),
                r["admin_users"].as_i64().unwrap(),
            )
        })
        .collect();
    // Administrators: the bootstrap admin and jane.
    assert_eq!(names, vec![("A", 1), ("Administrators", 2), ("B", 0)]);
}

#[tokio::test]
async fn the_admin_pages_follow_the_role_of_the_signed_in_admin() {
    let app = spawn_app().await;
    let root = app.admin_token().await;
    let sam = app.account(AccountKind::Admin, "sam", "sam-pass12").await;
    let (_, role) = call(
        &app,
        "POST",
        "/rest/V1/roles",
        &root,
        Some(json!({"name": "Plugin keepers", "resources": ["IntegrationHost_Plugins::manage"]})),
    )
    .await;
    let (status, _) = call(
        &app,
        "PUT",
        &format!("/rest/V1/admin-users/{sam}/role"),
        &root,
        Some(json!({"role_id": role["id"]})),
    )
    .await;
    assert_eq!(status, 200);

    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let cookie = admin_ui_session(&client, &app.address, "sam", "sam-pass12").await;
    let get = |path: &str| {
        client
            .get(app.url(path))
            .header("Cookie", cookie.clone())
            .send()
    };
    // Home leads to the one section the role reaches; the others are refused and not shown.
    let home = get("/admin/").await.unwrap();
    assert_eq!(home.headers()["location"], "/admin/plugins");
    let plugins = get("/admin/plugins").await.unwrap();
    assert_eq!(plugins.status(), 200);
    let html = plugins.text().await.unwrap();
    assert!(
        !html.contains("href=\"/admin/integration/\">Integrations"),
        "the menu hides what the role lacks"
    );
    assert!(!html.contains("href=\"/admin/roles\""));
    for path in [
        "/admin/integration/",
        "/admin/integration/new",
        "/admin/roles",
        "/admin/accounts",
    ] {
        let res = get(path).await.unwrap();
        assert_eq!(res.status(), 403, "{path}");
        assert!(
            res.text()
                .await
                .unwrap()
                .contains("Sorry, you need permissions to view this content."),
            "{path}"
        );
    }
    // A POST is refused the same way (before its form key is even read).
    let res = client
        .post(app.url("/admin/integration/save"))
        .header("Cookie", cookie.clone())
        .form(&[("name", "Sneaky"), ("form_key", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let (_, list) = call(&app, "GET", "/rest/V1/integrations", &root, None).await;
    assert_eq!(list["total_count"], 0, "nothing was saved");

    // The role gains the integrations: the same session reaches the grid now.
    let (status, _) = call(
        &app,
        "PUT",
        &format!("/rest/V1/roles/{}", role["id"]),
        &root,
        Some(json!({"resources": ["IntegrationHost_Plugins::manage", "Magento_Integration::integrations"]})),
    )
    .await;
    assert_eq!(status, 200);
    let grid = get("/admin/integration/").await.unwrap();
    assert_eq!(grid.status(), 200);
    let html = grid.text().await.unwrap();
    assert!(html.contains("href=\"/admin/integration/\" aria-current=\"page\">Integrations"));
    assert_eq!(get("/admin/roles").await.unwrap().status(), 403);

    // Without a role, the session is refused everywhere, and signing in again too.
    let (status, _) = call(
        &app,
        "PUT",
        &format!("/rest/V1/admin-users/{sam}/role"),
        &root,
        Some(json!({"role_id": null})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(get("/admin/integration/").await.unwrap().status(), 403);
    let page = client.get(app.url("/admin/login")).send().await.unwrap();
    let jar: Vec<String> = page
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned())
        .collect();
    let html = page.text().await.unwrap();
    let form_key = html
        .split("name=\"form_key\" value=\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap();
    let res = client
        .post(app.url("/admin/login"))
        .header("Cookie", jar.join("; "))
        .form(&[
            ("username", "sam"),
            ("password", "sam-pass12"),
            ("form_key", form_key),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "the sign-in form again");
    assert!(res.text().await.unwrap().contains(NO_ROLE));
}

#[tokio::test]
async fn role_commands_manage_roles_and_a_running_server_follows_them() {
    let app = spawn_app().await;
    app.account(AccountKind::Admin, "jane", "secret123").await;
    let config = app.config_file();
    // Off the test's runtime, as an operator's shell would run them.
    let cli = |args: &[&str], stdin: &str| {
        let config = config.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let stdin = stdin.to_owned();
        tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            run_binary(&config, &args, &stdin, &[])
        })
    };
    let ok = |out: std::process::Output| {
        assert!(out.status.success(), "{}", show(&out));
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let fails = |out: std::process::Output| {
        assert!(!out.status.success(), "expected a failure: {}", show(&out));
        String::from_utf8_lossy(&out.stderr).into_owned()
    };

    let out = ok(cli(
        &[
            "role",
            "create",
            "Support",
            "--resource",
            "Magento_Customer::manage",
        ],
        "",
    )
    .await
    .unwrap());
    assert!(
        out.contains("created role Support") && out.contains("3 resources"),
        "{out}"
    );
    let out = ok(cli(
        &[
            "admin",
            "create",
            "--username",
            "sam",
            "--email",
            "sam@example.com",
            "--role",
            "support",
        ],
        "sam-pass12\n",
    )
    .await
    .unwrap());
    assert!(
        out.contains("created admin user sam") && out.contains("Support"),
        "{out}"
    );

    let sam = token(&app, "sam", "sam-pass12").await;
    assert_eq!(
        call(&app, "GET", "/rest/V1/integrations", &sam, None)
            .await
            .0,
        401
    );
    // Another process changes the role: the server follows within its change watch.
    let out = ok(cli(
        &[
            "role",
            "update",
            "Support",
            "--resource",
            "Magento_Customer::manage",
            "--resource",
            "Magento_Integration::integrations",
        ],
        "",
    )
    .await
    .unwrap());
    assert!(out.contains("applies to its 1 admin user at once"), "{out}");
    let status = until_status(200, Duration::from_secs(5), || async {
        call(&app, "GET", "/rest/V1/integrations", &sam, None)
            .await
            .0
    })
    .await;
    assert_eq!(status, 200, "the role change reached the running server");

    let list = ok(cli(&["role", "list"], "").await.unwrap());
    assert!(
        list.lines()
            .any(|l| l.contains("Support") && l.contains("resources")),
        "{list}"
    );
    let json_lines = ok(cli(&["role", "list", "--json"], "").await.unwrap());
    let support: Value = json_lines
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .find(|v| v["name"] == "Support")
        .unwrap();
    assert_eq!(support["admins"], 1);
    assert!(
        support["resources"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "Magento_Integration::integrations")
    );
    let shown = ok(cli(&["role", "show", "Support"], "").await.unwrap());
    assert!(
        shown.contains("admin users: sam") && shown.contains("Magento_Customer::manage"),
        "{shown}"
    );
    let admins = ok(cli(&["admin", "list"], "").await.unwrap());
    assert!(
        admins
            .lines()
            .any(|l| l.contains("sam") && l.trim_end().ends_with("Support")),
        "{admins}"
    );

    // Refusals: held, built in, unknown resource, unknown role, no grant named.
    let err = fails(cli(&["role", "delete", "Support"], "").await.unwrap());
    assert!(err.contains("1 admin user holds it"), "{err}");
    let err = fails(
        cli(
            &[
                "role",
                "update",
                "Administrators",
                "--resource",
                "Magento_Sales::sales",
            ],
            "",
        )
        .await
        .unwrap(),
    );
    assert!(err.contains("built in"), "{err}");
    let err = fails(
        cli(&["role", "create", "Odd", "--resource", "Nope::x"], "")
            .await
            .unwrap(),
    );
    assert!(err.contains("`Nope::x` is not an ACL resource"), "{err}");
    let err = fails(cli(&["role", "create", "Odd"], "").await.unwrap());
    assert!(
        err.contains("--resource") || err.contains("--all-resources"),
        "{err}"
    );
    let err = fails(
        cli(
            &[
                "admin",
                "create",
                "--username",
                "ghost",
                "--email",
                "ghost@example.com",
                "--role",
                "Missing",
            ],
            "ghost-pass1\n",
        )
        .await
        .unwrap(),
    );
    assert!(err.contains("The role \"Missing\" doesn't exist."), "{err}");
    assert!(
        app.tokens
            .accounts()
            .get(AccountKind::Admin, "ghost")
            .await
            .is_err(),
        "no admin is created without the role asked for"
    );

    // The role taken away: signing in is refused with Magento's text; then the role can go.
    let out = ok(cli(&["admin", "set-role", "sam", "--none"], "")
        .await
        .unwrap());
    assert!(out.contains("no role"), "{out}");
    let status = until_status(401, Duration::from_secs(5), || async {
        call(&app, "GET", "/rest/V1/integrations", &sam, None)
            .await
            .0
    })
    .await;
    assert_eq!(status, 401);
    let (status, body) = sign_in(&app, "sam", "sam-pass12").await;
    assert_eq!((status, body["message"].as_str()), (401, Some(NO_ROLE)));
    let admins = ok(cli(&["admin", "list", "--json"], "").await.unwrap());
    assert!(
        admins
            .lines()
            .any(|l| l.contains("\"sam\"") && l.contains("\"role\":null")),
        "{admins}"
    );
    ok(cli(&["role", "delete", "Support"], "").await.unwrap());
    let err = fails(
        cli(&["admin", "set-role", "sam", "Support"], "")
            .await
            .unwrap(),
    );
    assert!(err.contains("doesn't exist"), "{err}");
    let out = ok(cli(&["admin", "set-role", "sam", "Administrators"], "")
        .await
        .unwrap());
    assert!(out.contains("now has the role Administrators"), "{out}");
    token(&app, "sam", "sam-pass12").await;
}
