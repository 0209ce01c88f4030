//! The admin UI in a real headless Chromium, driven as a merchant would: sign in, create an
//! integration (and the refusals: a wrong current password, invalid fields), activate it against
//! a local endpoint that records the POST and an identity link that sends the popup to the
//! success callback, see the tokens, reauthorize, view a config integration read-only, delete,
//! the plugins page, force sign-in, sign out; a missing form key refused; the same pages without
//! JavaScript on a narrow screen. Every page's screenshot is saved under `test-artifacts/`.

use std::time::Duration;

use integration_host::domain::AccountKind;
use integration_host_tests::browser::Browser;
use integration_host_tests::{
    Api, PluginFolder, Recorder, TestApp, sample_manifest, sample_manifest_at, send_json,
    spawn_app_with,
};
use serde_json::json;

const PASSWORD: &str = "secret123";
const WRONG_CURRENT: &str =
    "The password entered for the current user is invalid. Verify the password and try again.";

async fn sign_in(app: &TestApp, b: &Browser) {
    b.goto(&app.url("/admin/integration/")).await;
    assert!(b.url().await.ends_with("/admin/login"), "{}", b.url().await);
    b.fill("#username", "jane").await;
    b.fill("#password", PASSWORD).await;
    b.click("#login-form button[type=submit]").await;
    b.wait_for("#integrationGrid, p.empty", Duration::from_secs(10))
        .await;
}

/// The grid row of an integration, by name.
async fn row_id(b: &Browser, name: &str) -> String {
    let id = b
        .script(&format!(
            "for (const r of document.querySelectorAll('#integrationGrid tbody tr')) {{ if (r.querySelector('.name').textContent === {name:?}) return r.dataset.id; }} return null;"
        ))
        .await;
    id.as_str()
        .unwrap_or_else(|| panic!("no row for {name}"))
        .to_owned()
}

#[tokio::test]
async fn a_merchant_manages_integrations_in_the_browser() {
    let integrator = Recorder::start(200).await;
    let plugins = PluginFolder::new();
    plugins.write_raw("login-audit", &sample_manifest("login-audit"));
    // The success callback is addressed through server.base_url: listen where it says.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let app = spawn_app_with(|s| {
        s.server.listen =
            integration_host::config::ListenAddr::parse(&format!("127.0.0.1:{port}")).unwrap();
        s.server.base_url =
            integration_host::config::PublicUrl::parse(&format!("http://127.0.0.1:{port}/"))
                .unwrap();
        s.integrations.directories =
            vec![std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-integrations")];
        s.plugins.directories = vec![plugins.path()];
        s.plugins.cache_dir = Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugin-cache"),
        );
    })
    .await;
    app.account(AccountKind::Admin, "jane", PASSWORD).await;
    let b = Browser::start("admin-ui", 1280, true).await;

    // Sign-in: a wrong password is refused with Magento's text, then the grid.
    b.goto(&app.url("/admin/integration/")).await;
    assert!(b.url().await.ends_with("/admin/login"));
    b.screenshot("login").await;
    b.fill("#username", "jane").await;
    b.fill("#password", "wrong-password1").await;
    b.click("#login-form button[type=submit]").await;
    b.wait_for(".message.error", Duration::from_secs(10)).await;
    assert!(
        b.text(".message.error")
            .await
            .contains("The account sign-in was incorrect"),
    );
    b.fill("#password", PASSWORD).await;
    b.click("#login-form button[type=submit]").await;
    b.wait_for("#integrationGrid", Duration::from_secs(10))
        .await;
    b.screenshot("grid").await;
    // Config integrations: View instead of Edit, Remove disabled.
    let erp = row_id(&b, "ERP Connector").await;
    assert_eq!(
        b.text(&format!("tr[data-id='{erp}'] .action.view")).await,
        "View"
    );
    assert!(
        b.try_find(&format!("tr[data-id='{erp}'] .action.disabled"))
            .await
            .is_some()
    );
    assert!(b.try_find("#insecure-notice").await.is_none());

    // New integration: a wrong current password and a bad email are shown next to the fields,
    // nothing is saved.
    b.click("#add-integration").await;
    b.wait_for("#edit_form", Duration::from_secs(5)).await;
    b.screenshot("new-form").await;
    let name = "Shop <b>&amp; Co";
    b.fill("#integration_name", name).await;
    b.fill("#integration_email", "not-an-email").await;
    b.fill("#integration_endpoint", &integrator.url).await;
    b.fill("#integration_identity_link_url", &integrator.identity)
        .await;
    b.click("input[value='Magento_Sales::sales_order']").await;
    b.fill("#current_password", "wrong-password1").await;
    b.click("#save").await;
    b.wait_for("#current_password-error", Duration::from_secs(5))
        .await;
    assert_eq!(b.text("#current_password-error").await, WRONG_CURRENT);
    assert!(b.try_find("#email-error").await.is_some());
    b.screenshot("form-errors").await;
    assert!(app.integrations.find_by_name(name).await.unwrap().is_none());
    // The form kept what was typed.
    assert_eq!(
        b.attribute("#integration_name", "value").await.as_deref(),
        Some(name)
    );
    b.fill("#integration_email", "shop@example.com").await;
    b.fill("#current_password", PASSWORD).await;
    b.click("#save").await;
    b.wait_for("#integrationGrid", Duration::from_secs(5)).await;
    assert_eq!(
        b.text(".message.success").await,
        format!("The integration '{name}' has been saved.")
    );
    let created = app
        .integrations
        .find_by_name(name)
        .await
        .unwrap()
        .expect("saved");
    let id = created.id.to_string();
    // The name is shown as text (escaped), with the "not secure" badge and notice.
    assert_eq!(b.text(&format!("tr[data-id='{id}'] .name")).await, name);
    assert!(
        b.try_find(&format!("tr[data-id='{id}'] .badge.insecure"))
            .await
            .is_some()
    );
    assert!(b.try_find("#insecure-notice").await.is_some());
    b.screenshot("grid-after-save").await;

    // Edit: the form holds what was saved; a change needs the password again.
    b.click(&format!("tr[data-id='{id}'] .action.edit")).await;
    b.wait_for("#edit_form", Duration::from_secs(5)).await;
    assert_eq!(
        b.attribute("#integration_email", "value").await.as_deref(),
        Some("shop@example.com")
    );
    let ticked = b
        .script("return [...document.querySelectorAll('#resource-tree input:checked')].map(i => i.value)")
        .await;
    assert!(
        ticked
            .as_array()
            .unwrap()
            .contains(&json!("Magento_Sales::sales_order")),
        "{ticked}"
    );
    b.screenshot("edit-form").await;
    b.fill("#integration_email", "orders@shop.example").await;
    b.fill("#current_password", PASSWORD).await;
    b.click("#save").await;
    b.wait_for("#integrationGrid", Duration::from_secs(5)).await;
    assert_eq!(
        app.integrations.get(created.id).await.unwrap().email,
        "orders@shop.example"
    );

    // Activation with an endpoint: permissions dialog, POST to the endpoint, identity-link
    // popup that the success callback closes.
    b.click(&format!("tr[data-id='{id}'] .action.activate"))
        .await;
    b.wait_for("#permissions-dialog", Duration::from_secs(5))
        .await;
    let dialog = b.text("#permissions-dialog").await;
    assert!(dialog.contains("Orders"), "{dialog}");
    b.screenshot("permissions-dialog").await;
    b.click("#allow").await;
    // The exchange page opens the popup at once; the popup may be done before we look.
    b.wait_for(
        "#tokens-exchange, #integrationGrid",
        Duration::from_secs(10),
    )
    .await;
    {
        let posts = integrator.posts.lock().unwrap();
        assert_eq!(posts.len(), 1);
        let fields: Vec<&str> = posts[0].iter().map(|(k, _)| k.as_str()).collect();
        for f in [
            "oauth_consumer_key",
            "oauth_consumer_secret",
            "store_base_url",
            "oauth_verifier",
        ] {
            assert!(fields.contains(&f), "{fields:?}");
        }
    }
    b.screenshot("tokens-exchange").await;
    let main = b.windows().await[0].clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    if b.windows().await.len() == 1 && b.try_find("#identity-link").await.is_some() {
        // The popup was blocked: the link opens it.
        b.click("#identity-link").await;
    }
    let start = std::time::Instant::now();
    loop {
        let n = b.windows().await.len();
        if n == 1
            && integrator
                .identity_visits
                .load(std::sync::atomic::Ordering::SeqCst)
                == 1
        {
            break;
        }
        if start.elapsed() > Duration::from_secs(15) {
            for w in b.windows().await {
                b.switch_to(&w).await;
                eprintln!("window {w}: {}", b.url().await);
                b.screenshot("popup-stuck").await;
            }
            panic!("the popup did not open and close (windows: {n})");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    b.switch_to(&main).await;
    // The callback sent the admin page back to the grid.
    b.wait_for("#integrationGrid", Duration::from_secs(10))
        .await;

    // Activation without an endpoint mints the token: the tokens dialog shows the
    // credentials, which work; reauthorize replaces the token.
    b.click("#add-integration").await;
    b.wait_for("#edit_form", Duration::from_secs(5)).await;
    b.fill("#integration_name", "Minted").await;
    b.select("#all_resources", "1").await;
    b.fill("#current_password", PASSWORD).await;
    b.click("#save").await;
    b.wait_for("#integrationGrid", Duration::from_secs(5)).await;
    let minted = row_id(&b, "Minted").await;
    b.click(&format!("tr[data-id='{minted}'] .action.activate"))
        .await;
    b.wait_for("#permissions-dialog", Duration::from_secs(5))
        .await;
    assert!(b.text(".resources-all").await.contains("All resources"));
    b.click("#allow").await;
    b.wait_for("#tokens-dialog", Duration::from_secs(10)).await;
    b.screenshot("tokens-dialog").await;
    let integration = app.integrations.get(minted.parse().unwrap()).await.unwrap();
    let consumer = app
        .oauth
        .load_consumer(integration.consumer_id)
        .await
        .unwrap();
    let token = app
        .oauth
        .get_access_token(integration.consumer_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(b.text("#consumer-key").await, consumer.key);
    assert_eq!(b.text("#consumer-secret").await, consumer.secret);
    assert_eq!(b.text("#access-token").await, token.token);
    assert_eq!(b.text("#access-token-secret").await, token.secret);
    b.click("#done").await;
    b.wait_for("#integrationGrid", Duration::from_secs(5)).await;
    assert_eq!(
        b.text(&format!("tr[data-id='{minted}'] .status")).await,
        "Active"
    );
    b.click(&format!("tr[data-id='{minted}'] .action.reauthorize"))
        .await;
    b.wait_for("#permissions-dialog", Duration::from_secs(5))
        .await;
    assert_eq!(b.text("#allow").await, "Reauthorize");
    b.click("#allow").await;
    b.wait_for("#tokens-dialog", Duration::from_secs(10)).await;
    let renewed = b.text("#access-token").await;
    assert_ne!(renewed, token.token, "reauthorize issues a new token");
    b.screenshot("reauthorized").await;

    // A config integration is read-only.
    b.goto(&app.url(&format!("/admin/integration/edit/{erp}")))
        .await;
    b.wait_for("#readonly-notice", Duration::from_secs(5)).await;
    assert!(b.try_find("#save").await.is_none());
    let disabled = b
        .script("return document.querySelector('#edit_form fieldset').disabled")
        .await;
    assert_eq!(disabled, json!(true));
    b.screenshot("config-view").await;

    // A state change without the form key is refused, from the signed-in browser itself.
    let answer = b
        .script(&format!(
            "const x = new XMLHttpRequest(); x.open('POST', '/admin/integration/delete/{minted}', false); x.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded'); x.send(''); return [x.responseURL, x.status, x.responseText.includes('Invalid Form Key. Please refresh the page.')];"
        ))
        .await;
    assert!(
        answer[0].as_str().unwrap().ends_with("/admin/integration/"),
        "{answer}"
    );
    assert_eq!(answer[1], 200);
    assert_eq!(answer[2], true, "the grid says why");
    assert!(app.integrations.get(minted.parse().unwrap()).await.is_ok());
    b.goto(&app.url("/admin/integration/")).await;
    // Saving a config integration by hand-made POST is refused too.
    let form_key = b.attribute("input[name=form_key]", "value").await.unwrap();
    b.script(&format!(
        "const x = new XMLHttpRequest(); x.open('POST', '/admin/integration/save', false); x.setRequestHeader('Content-Type', 'application/x-www-form-urlencoded'); x.send('form_key={form_key}&id={erp}&name=Hacked&current_password={PASSWORD}'); return x.status;"
    ))
    .await;
    assert_eq!(
        app.integrations
            .get(erp.parse().unwrap())
            .await
            .unwrap()
            .name,
        "ERP Connector"
    );

    // Delete with confirmation.
    b.goto(&app.url("/admin/integration/")).await;
    b.click(&format!("tr[data-id='{minted}'] .action.delete"))
        .await;
    b.wait_for("#delete-dialog", Duration::from_secs(5)).await;
    b.screenshot("delete-confirm").await;
    b.click("#confirm-delete").await;
    b.wait_for("#integrationGrid", Duration::from_secs(5)).await;
    assert_eq!(
        b.text(".message.success").await,
        "The integration 'Minted' has been deleted."
    );
    assert!(app.integrations.get(minted.parse().unwrap()).await.is_err());

    // The plugins page.
    b.click("nav a[href='/admin/plugins']").await;
    b.wait_for("#plugin-login-audit", Duration::from_secs(5))
        .await;
    assert!(
        b.text("#plugin-login-audit .roles")
            .await
            .contains("observer")
    );
    b.screenshot("plugins").await;
    b.click("#reload-plugins").await;
    b.wait_for(".message.success", Duration::from_secs(10))
        .await;

    // Force sign-in of a customer: their token is refused afterwards.
    app.account(AccountKind::Customer, "jo@example.com", "secret456")
        .await;
    let (status, token) = app
        .post_json(
            "/rest/V1/integration/customer/token",
            &json!({"username": "jo@example.com", "password": "secret456"}),
        )
        .await;
    assert_eq!(status, 200);
    let token = token.as_str().unwrap().to_owned();
    b.click("nav a[href='/admin/accounts']").await;
    b.wait_for("#customer-accounts", Duration::from_secs(5))
        .await;
    b.screenshot("accounts").await;
    b.click("#customer-accounts tr[data-login='jo@example.com'] button.revoke")
        .await;
    b.accept_alert().await;
    b.wait_for(".message.success", Duration::from_secs(10))
        .await;
    assert!(b.text(".message.success").await.contains("jo@example.com"));
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, _) = send_json(app.bearer(
        "POST",
        "/rest/V1/integration/customer/revoke-customer-token",
        &token,
    ))
    .await;
    assert_eq!(status, 401, "the customer's token is refused");

    // Sign out: the session is gone.
    b.click(".logout button").await;
    b.wait_for("#login-form", Duration::from_secs(5)).await;
    assert_eq!(b.text(".message.success").await, "You have signed out.");
    b.goto(&app.url("/admin/integration/")).await;
    assert!(b.url().await.ends_with("/admin/login"));
    b.close().await;
}

#[tokio::test]
async fn the_pages_work_without_javascript_on_a_narrow_screen() {
    let app = spawn_app_with(|_| {}).await;
    app.account(AccountKind::Admin, "jane", PASSWORD).await;
    let b = Browser::start("admin-ui-nojs-narrow", 390, false).await;
    sign_in(&app, &b).await;
    b.click("#add-integration").await;
    b.wait_for("#edit_form", Duration::from_secs(5)).await;
    b.fill("#integration_name", "Phone Shop").await;
    b.click("input[value='Magento_Sales::sales_order']").await;
    b.fill("#current_password", PASSWORD).await;
    b.screenshot("narrow-form").await;
    b.click("#save").await;
    b.wait_for("#integrationGrid", Duration::from_secs(5)).await;
    // Narrow: the grid's header row is not rendered, rows stack as cards.
    assert_eq!(b.css("#integrationGrid thead", "display").await, "none");
    assert_eq!(b.css("#integrationGrid tbody tr", "display").await, "block");
    b.screenshot("narrow-grid").await;
    let id = app
        .integrations
        .find_by_name("Phone Shop")
        .await
        .unwrap()
        .unwrap()
        .id;
    b.click(&format!("tr[data-id='{id}'] .action.activate"))
        .await;
    b.wait_for("#permissions-dialog", Duration::from_secs(5))
        .await;
    b.click("#allow").await;
    b.wait_for("#tokens-dialog", Duration::from_secs(10)).await;
    b.screenshot("narrow-tokens").await;
    assert!(!b.text("#access-token").await.is_empty());
    // Delete through the confirmation page, no script needed.
    b.goto(&app.url("/admin/integration/")).await;
    b.click(&format!("tr[data-id='{id}'] .action.delete")).await;
    b.click("#confirm-delete").await;
    b.wait_for("#integrationGrid, p.empty", Duration::from_secs(5))
        .await;
    assert!(app.integrations.get(id).await.is_err());
    b.close().await;
}

#[tokio::test]
async fn admin_pages_need_a_session_and_answer_safe_headers() {
    let app = spawn_app_with(|_| {}).await;
    for path in [
        "/admin/integration/",
        "/admin/integration/new",
        "/admin/plugins",
        "/admin/accounts",
    ] {
        let res = app.get(path).await;
        assert_eq!(res.status(), 303, "{path}");
        assert_eq!(res.headers()["location"], "/admin/login");
    }
    let res = app
        .client
        .post(app.url("/admin/integration/delete/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    // The sign-in form without its cookie is refused.
    let res = app
        .client
        .post(app.url("/admin/login"))
        .form(&[
            ("username", "jane"),
            ("password", PASSWORD),
            ("form_key", "x"),
        ])
        .send()
        .await
        .unwrap();
    let body = res.text().await.unwrap();
    assert!(body.contains("Invalid Form Key"), "{body}");
    let res = app.get("/admin/login").await;
    let h = res.headers();
    assert_eq!(h["x-frame-options"], "DENY");
    assert_eq!(h["cache-control"], "no-store");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let cookie = h["set-cookie"].to_str().unwrap();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    // The success callback changes nothing and needs no session.
    assert_eq!(
        app.get("/admin/integration/loginSuccessCallback?id=1")
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn notices_plugin_failures_and_signing_out_another_admin() {
    let defs = tempfile::tempdir().unwrap();
    let file = defs.path().join("shop.toml");
    std::fs::write(
        &file,
        "[[integration]]\nname = \"Declared Shop\"\nresources = [\"Magento_Sales::sales\"]\n",
    )
    .unwrap();
    let plugins = PluginFolder::new();
    plugins.write(
        "broken-policy",
        "misbehave",
        "roles = [\"permission-resolver\"]\n[config]\nbehaviour = \"panic\"\n",
    );
    let app = spawn_app_with(|s| {
        s.integrations.directories = vec![defs.path().to_owned()];
        s.plugins.directories = vec![plugins.path()];
        s.plugins.quarantine_failures = 2;
        s.plugins.cache_dir = Some(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugin-cache"),
        );
    })
    .await;
    app.account(AccountKind::Admin, "jane", PASSWORD).await;
    app.account(AccountKind::Admin, "max", PASSWORD).await;
    // The definition changes: the integration is reset and the grid says so.
    std::fs::write(
        &file,
        "[[integration]]\nname = \"Declared Shop\"\nresources = [\"Magento_Sales::sales_order\"]\n",
    )
    .unwrap();
    let report = integration_host::declarative::sync_directories(
        &app.integrations,
        &[defs.path().to_owned()],
    )
    .await
    .unwrap();
    assert_eq!(report.updated, ["Declared Shop"]);
    // Two REST calls make the panicking resolver fail twice: quarantined.
    for _ in 0..2 {
        app.get("/rest/V1/integrations").await;
    }

    let b = Browser::start("admin-ui-notices", 1280, true).await;
    sign_in(&app, &b).await;
    let notice = b.text("#reset-notice").await;
    assert!(notice.contains("Declared Shop"), "{notice}");
    let id = row_id(&b, "Declared Shop").await;
    assert_eq!(
        b.text(&format!("tr[data-id='{id}'] .status")).await,
        "Reset"
    );
    b.screenshot("reset-notice").await;

    // An endpoint that does not answer: the activation is refused with the reason and the
    // popup opened for the identity link is closed again.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let gone = app
        .integrations
        .create(
            integration_host::services::integration::IntegrationInput::parse(
                &integration_host::services::integration::IntegrationForm {
                    name: "Unreachable".into(),
                    endpoint: Some(format!("http://127.0.0.1:{closed}/activate")),
                    identity_link_url: Some(format!("http://127.0.0.1:{closed}/login")),
                    all_resources: true,
                    ..Default::default()
                },
                integration_host::domain::SetupType::Manual,
            )
            .unwrap(),
        )
        .await
        .unwrap();
    b.goto(&app.url(&format!("/admin/integration/permissionsDialog/{}", gone.id)))
        .await;
    b.click("#allow").await;
    b.wait_for("#integrationGrid", Duration::from_secs(15))
        .await;
    let error = b.text(".message.error").await;
    assert!(!error.is_empty());
    b.screenshot("activation-refused").await;
    let start = std::time::Instant::now();
    while b.windows().await.len() > 1 {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the waiting popup stayed open"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    b.click("nav a[href='/admin/plugins']").await;
    b.wait_for("#plugin-broken-policy", Duration::from_secs(5))
        .await;
    assert!(
        b.try_find("#plugin-broken-policy .quarantine")
            .await
            .is_some()
    );
    let failures = b.text("#plugin-broken-policy .failures-list").await;
    assert!(failures.contains("panicked"), "{failures}");
    b.screenshot("plugin-quarantined").await;

    // Force sign-in of another admin ends their admin session.
    let other = Browser::start("admin-ui-other-admin", 1280, true).await;
    other.goto(&app.url("/admin/login")).await;
    other.fill("#username", "max").await;
    other.fill("#password", PASSWORD).await;
    other.click("#login-form button[type=submit]").await;
    other
        .wait_for("#integrationGrid", Duration::from_secs(10))
        .await;
    b.click("nav a[href='/admin/accounts']").await;
    b.wait_for("#admin-accounts", Duration::from_secs(5)).await;
    b.click("#admin-accounts tr[data-login='max'] button.revoke")
        .await;
    b.accept_alert().await;
    b.wait_for(".message.success", Duration::from_secs(10))
        .await;
    other.goto(&app.url("/admin/integration/")).await;
    other.wait_for("#login-form", Duration::from_secs(5)).await;
    other.close().await;
    b.close().await;
}

#[tokio::test]
async fn a_plugin_refusal_shows_on_the_form_and_saves_nothing() {
    let plugins = PluginFolder::new();
    plugins.write_raw("endpoint-policy", &sample_manifest("endpoint-policy"));
    let app = spawn_app_with(integration_host_tests::with_plugins(&plugins)).await;
    app.account(AccountKind::Admin, "jane", PASSWORD).await;
    let b = Browser::start("admin-ui-refusal", 1280, true).await;
    sign_in(&app, &b).await;
    b.click("#add-integration").await;
    b.wait_for("#edit_form", Duration::from_secs(5)).await;
    b.fill("#integration_name", "Plain Partner").await;
    b.fill("#integration_endpoint", "http://partner.example/cb")
        .await;
    b.fill("#current_password", PASSWORD).await;
    b.click("#save").await;
    b.wait_for(".message.error", Duration::from_secs(5)).await;
    assert_eq!(
        b.text(".message.error").await,
        "The endpoint must use https"
    );
    // The form keeps what was typed; nothing was saved.
    assert_eq!(
        b.attribute("#integration_endpoint", "value")
            .await
            .as_deref(),
        Some("http://partner.example/cb")
    );
    b.screenshot("plugin-refusal").await;
    assert!(
        app.integrations
            .find_by_name("Plain Partner")
            .await
            .unwrap()
            .is_none()
    );
    // With https it saves.
    b.fill("#integration_endpoint", "https://partner.example/cb")
        .await;
    b.fill("#current_password", PASSWORD).await;
    b.click("#save").await;
    b.wait_for("#integrationGrid", Duration::from_secs(5)).await;
    assert!(
        app.integrations
            .find_by_name("Plain Partner")
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test]
async fn the_plugins_page_shows_every_sample_with_its_version_and_roles() {
    let plugins = PluginFolder::new();
    for name in [
        "login-audit",
        "access-policy",
        "partner-catalog",
        "endpoint-policy",
        "tenant-claims",
        "legacy-passwords",
    ] {
        plugins.write_raw(name, &sample_manifest(name));
    }
    plugins.write_raw(
        "login-audit-old",
        &sample_manifest_at("login-audit", Api::V1_0)
            .replace("id = \"login-audit\"", "id = \"login-audit-old\""),
    );
    let app = spawn_app_with(integration_host_tests::with_plugins(&plugins)).await;
    app.account(AccountKind::Admin, "jane", PASSWORD).await;
    let b = Browser::start("admin-ui-plugins", 1280, true).await;
    sign_in(&app, &b).await;
    b.goto(&app.url("/admin/plugins")).await;
    b.wait_for("#plugin-login-audit-old", Duration::from_secs(5))
        .await;
    b.screenshot("plugins-page").await;
    assert!(b.try_find(".message.error.problem").await.is_none());
    let text = async |selector: &str| b.text(selector).await;
    assert!(text("#plugin-login-audit-old h2").await.contains("API 1.0"));
    assert!(text("#plugin-login-audit h2").await.contains("API 1.1"));
    for (id, roles) in [
        ("login-audit", "observer"),
        ("access-policy", "permission-resolver"),
        ("partner-catalog", "config-provider"),
        ("endpoint-policy", "before-interceptor"),
        ("tenant-claims", "after-interceptor"),
        ("legacy-passwords", "credential-verifier"),
    ] {
        assert_eq!(text(&format!("#plugin-{id} .roles")).await, roles, "{id}");
    }
    assert_eq!(
        text("#plugin-endpoint-policy .operations").await,
        "integration_create, integration_update"
    );
    assert_eq!(
        text("#plugin-tenant-claims .results").await,
        "admin_token, request_allowed"
    );
}

/// The names of the grid's rows, in order.
async fn grid_names(b: &Browser) -> Vec<String> {
    let names = b
        .script("return [...document.querySelectorAll('#integrationGrid tbody .name')].map(n => n.textContent);")
        .await;
    names
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap().to_owned())
        .collect()
}

/// Waits until the browser's URL ends a navigation that `done` recognises (an element of the
/// page before may still be there a moment after a click).
async fn wait_for_url(b: &Browser, done: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let url = b.url().await;
        if done(&url) {
            return url;
        }
        assert!(std::time::Instant::now() < deadline, "still at {url}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Loads `count` integrations named `Bulk 00000`… with bulk statements (no consumer: the grid
/// does not need one), created a second apart, every seventh active.
async fn bulk_integrations(app: &TestApp, count: u32) {
    let sql = if app.db.url_string().starts_with("postgres") {
        format!(
            "INSERT INTO integration (name, email, status, setup_type, config_hash, created_at, updated_at)
             SELECT 'Bulk ' || lpad(x::text, 5, '0'), 'bulk@example.com', CASE WHEN x % 7 = 0 THEN 1 ELSE 0 END,
                    0, '', 1700000000 + x, 1700000000 + x
             FROM generate_series(0, {count} - 1) AS x"
        )
    } else {
        format!(
            "WITH RECURSIVE c(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM c WHERE x < {count} - 1)
             INSERT INTO integration (name, email, status, setup_type, config_hash, created_at, updated_at)
             SELECT 'Bulk ' || printf('%05d', x), 'bulk@example.com', CASE WHEN x % 7 = 0 THEN 1 ELSE 0 END,
                    0, '', 1700000000 + x, 1700000000 + x
             FROM c"
        )
    };
    integration_host_tests::raw_execute(&app.db, &sql)
        .await
        .unwrap();
}

#[tokio::test]
async fn the_grid_searches_filters_sorts_and_pages_with_its_state_in_the_url() {
    let app = spawn_app_with(|_| {}).await;
    app.account(AccountKind::Admin, "jane", PASSWORD).await;
    bulk_integrations(&app, 45).await;
    integration_host_tests::raw_execute(
        &app.db,
        "UPDATE integration SET name = 'Market ' || substr(name, 6), setup_type = 1 WHERE name >= 'Bulk 00030'",
    )
    .await
    .unwrap();
    let b = Browser::start("admin-grid", 1280, true).await;
    sign_in(&app, &b).await;
    // The first page of 20, by name, and where it stands.
    assert_eq!(b.text("#grid-count").await, "45 records found");
    assert_eq!(b.text("#grid-page").await, "Page 1 of 3");
    let names = grid_names(&b).await;
    assert_eq!((names.len(), names[0].as_str()), (20, "Bulk 00000"));
    b.screenshot("grid-page-1").await;

    // Search by name: the URL holds it.
    b.fill("#grid-name", "market").await;
    b.click("#grid-search").await;
    b.wait_for("#grid-reset", Duration::from_secs(5)).await;
    assert!(b.url().await.contains("name=market"), "{}", b.url().await);
    assert_eq!(b.text("#grid-count").await, "15 records found");
    assert!(grid_names(&b).await.iter().all(|n| n.starts_with("Market")));
    // Filters: type and status (Market 00035 and 00042 are active: every seventh).
    b.select("#grid-type", "config").await;
    b.select("#grid-status", "1").await;
    b.click("#grid-search").await;
    wait_for_url(&b, |u| u.contains("status=1") && u.contains("type=config")).await;
    b.wait_for("#grid-count", Duration::from_secs(5)).await;
    assert_eq!(grid_names(&b).await, ["Market 00035", "Market 00042"]);
    b.screenshot("grid-filtered").await;
    // Sorted by name, newest first by clicking twice on Created.
    b.click("#grid-reset").await;
    wait_for_url(&b, |u| u.ends_with("/admin/integration/")).await;
    b.wait_for("#integrationGrid", Duration::from_secs(5)).await;
    b.click("th:nth-child(4) a.sort").await;
    wait_for_url(&b, |u| u.contains("sort=created_at&dir=asc")).await;
    b.wait_for("th[aria-sort=ascending]", Duration::from_secs(5))
        .await;
    b.click("th:nth-child(4) a.sort").await;
    wait_for_url(&b, |u| u.contains("sort=created_at&dir=desc")).await;
    b.wait_for("th[aria-sort=descending]", Duration::from_secs(5))
        .await;
    assert!(
        b.url().await.contains("sort=created_at&dir=desc"),
        "{}",
        b.url().await
    );
    assert_eq!(grid_names(&b).await[0], "Market 00044");
    // Pages: next, then the back button returns to the page before, as the URL says.
    b.click("#grid-next").await;
    wait_for_url(&b, |u| u.contains("page=2")).await;
    b.wait_for("#grid-previous", Duration::from_secs(5)).await;
    assert_eq!(b.text("#grid-page").await, "Page 2 of 3");
    assert_eq!(grid_names(&b).await[0], "Bulk 00024");
    b.screenshot("grid-page-2").await;
    b.script("history.back(); return null;").await;
    wait_for_url(&b, |u| u.contains("dir=desc") && !u.contains("page=2")).await;
    b.wait_for("#grid-page", Duration::from_secs(5)).await;
    assert_eq!(b.text("#grid-page").await, "Page 1 of 3");
    assert_eq!(grid_names(&b).await[0], "Market 00044");
    // A shared link opens the same view.
    b.goto(&app.url("/admin/integration/?name=bulk&limit=50&sort=status&dir=desc"))
        .await;
    b.wait_for("#integrationGrid", Duration::from_secs(5)).await;
    assert_eq!(b.text("#grid-count").await, "30 records found");
    assert_eq!(b.text("#grid-page").await, "Page 1 of 1");
    assert_eq!(
        grid_names(&b).await[0],
        "Bulk 00000",
        "active first, then by id"
    );
    b.close().await;
    app.db.destroy().await;
}

/// 10,000 integrations: any page of the grid, searched, filtered and sorted, answers well
/// within 100 ms (the median of five, on the test's debug build).
#[tokio::test]
async fn the_grid_pages_ten_thousand_integrations_quickly() {
    let app = spawn_app_with(|_| {}).await;
    app.account(AccountKind::Admin, "jane", PASSWORD).await;
    bulk_integrations(&app, 10_000).await;
    let client = integration_host_tests::fresh_client();
    let cookie =
        integration_host_tests::admin_ui_session(&client, &app.address, "jane", PASSWORD).await;
    for path in [
        "/admin/integration/",
        "/admin/integration/?page=400",
        "/admin/integration/?sort=created_at&dir=desc&page=250&limit=20",
        "/admin/integration/?name=bulk+09&status=1&sort=status&limit=100",
    ] {
        let mut times = Vec::new();
        for _ in 0..6 {
            let started = std::time::Instant::now();
            let res = client
                .get(format!("{}{path}", app.address))
                .header("Cookie", &cookie)
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200, "{path}");
            let html = res.text().await.unwrap();
            times.push(started.elapsed());
            assert!(html.contains("records found"), "{path}");
        }
        // The first warms the statement caches.
        times.remove(0);
        times.sort();
        eprintln!(
            "{path}: median {:?} (debug build, with the HTTP round trip)",
            times[2]
        );
        assert!(
            times[2] < Duration::from_millis(100),
            "{path}: median {:?}",
            times[2]
        );
    }
    app.db.destroy().await;
}

/// Roles in the browser: Administrators creates a role with the resource tree editor, gives it
/// to another admin on the accounts page; that admin sees and reaches only what it grants, and
/// the grid once the role gains the integrations (without signing in again); a held role cannot
/// be deleted, a free one can.
#[tokio::test]
async fn roles_are_managed_in_the_browser_and_limit_what_an_admin_sees() {
    let app = integration_host_tests::spawn_app().await;
    app.account(AccountKind::Admin, "jane", PASSWORD).await;
    app.account(AccountKind::Admin, "sam", PASSWORD).await;
    let b = Browser::start("admin-ui-roles", 1280, true).await;
    sign_in(&app, &b).await;

    // The roles page: the built-in role, viewable but not deletable.
    b.click("nav a[href='/admin/roles']").await;
    b.wait_for("#rolesGrid", Duration::from_secs(5)).await;
    b.screenshot("roles").await;
    assert_eq!(
        b.text("#rolesGrid tr[data-name='Administrators'] .resources")
            .await,
        "All"
    );
    assert!(
        b.try_find("#rolesGrid tr[data-name='Administrators'] .action.disabled")
            .await
            .is_some()
    );

    // A new role: a wrong current password is refused next to the field, nothing saved.
    b.click("#add-role").await;
    b.wait_for("#role_form", Duration::from_secs(5)).await;
    b.fill("#role_name", "Catalog clerks").await;
    b.click("input[value='Magento_Catalog::products']").await;
    b.fill("#current_password", "wrong-password1").await;
    b.click("#save").await;
    b.wait_for("#current_password-error", Duration::from_secs(5))
        .await;
    assert_eq!(b.text("#current_password-error").await, WRONG_CURRENT);
    b.screenshot("role-form-refused").await;
    // The form kept what was typed and ticked.
    assert_eq!(
        b.script(
            "return document.querySelector(\"input[value='Magento_Catalog::products']\").checked;"
        )
        .await,
        json!(true)
    );
    b.fill("#current_password", PASSWORD).await;
    b.click("#save").await;
    b.wait_for(".message.success", Duration::from_secs(5)).await;
    assert!(b.text(".message.success").await.contains("Catalog clerks"));
    assert_eq!(
        b.text("#rolesGrid tr[data-name='Catalog clerks'] .resources")
            .await,
        "4 resources"
    );
    b.screenshot("role-saved").await;

    // Sam gets it on the accounts page.
    b.click("nav a[href='/admin/accounts']").await;
    b.wait_for("#admin-accounts", Duration::from_secs(5)).await;
    let sam_id = app
        .tokens
        .accounts()
        .get(AccountKind::Admin, "sam")
        .await
        .unwrap()
        .id;
    b.select(&format!("#role-{sam_id}"), "Catalog clerks").await;
    b.click("#admin-accounts tr[data-login='sam'] .save-role")
        .await;
    b.wait_for(".message.success", Duration::from_secs(5)).await;
    assert!(
        b.text(".message.success")
            .await
            .contains("sam now has the role Catalog clerks")
    );
    b.screenshot("accounts-with-roles").await;

    // Sam signs in: no section of the admin is his, so Magento's refusal, and no menu entries.
    let other = Browser::start("admin-ui-roles-limited", 1280, true).await;
    other.goto(&app.url("/admin/login")).await;
    other.fill("#username", "sam").await;
    other.fill("#password", PASSWORD).await;
    other.click("#login-form button[type=submit]").await;
    other
        .wait_for("#no-permission", Duration::from_secs(10))
        .await;
    assert!(other.find_all("header nav a").await.is_empty());
    other.goto(&app.url("/admin/integration/")).await;
    assert_eq!(
        other.text("#no-permission").await,
        "Sorry, you need permissions to view this content."
    );
    other.screenshot("refused").await;

    // Jane adds the integrations to the role: Sam's next page is the grid.
    b.click("nav a[href='/admin/roles']").await;
    b.wait_for("#rolesGrid", Duration::from_secs(5)).await;
    b.click("#rolesGrid tr[data-name='Catalog clerks'] .action.edit")
        .await;
    b.wait_for("#role_form", Duration::from_secs(5)).await;
    b.click("input[value='Magento_Integration::integrations']")
        .await;
    b.fill("#current_password", PASSWORD).await;
    b.screenshot("role-edit").await;
    b.click("#save").await;
    b.wait_for(".message.success", Duration::from_secs(5)).await;
    other.goto(&app.url("/admin/integration/")).await;
    other
        .wait_for("#integrationGrid, p.empty", Duration::from_secs(5))
        .await;
    let menu = other
        .script(
            "return [...document.querySelectorAll('header nav a')].map(a => a.textContent.trim());",
        )
        .await;
    assert_eq!(menu, json!(["Integrations"]));
    other.screenshot("grid-after-role-change").await;
    other.goto(&app.url("/admin/roles")).await;
    other
        .wait_for("#no-permission", Duration::from_secs(5))
        .await;
    other.close().await;

    // Held, the role cannot be deleted; once Sam is back to Administrators, it can.
    b.wait_for("#rolesGrid", Duration::from_secs(5)).await;
    assert!(
        b.try_find("#rolesGrid tr[data-name='Catalog clerks'] .delete-role")
            .await
            .is_none()
    );
    b.click("nav a[href='/admin/accounts']").await;
    b.wait_for("#admin-accounts", Duration::from_secs(5)).await;
    b.select(&format!("#role-{sam_id}"), "Administrators").await;
    b.click("#admin-accounts tr[data-login='sam'] .save-role")
        .await;
    b.wait_for(".message.success", Duration::from_secs(5)).await;
    b.click("nav a[href='/admin/roles']").await;
    b.wait_for("#rolesGrid", Duration::from_secs(5)).await;
    b.click("#rolesGrid tr[data-name='Catalog clerks'] .delete-role")
        .await;
    b.accept_alert().await;
    b.wait_for(".message.success", Duration::from_secs(5)).await;
    assert!(
        b.try_find("#rolesGrid tr[data-name='Catalog clerks']")
            .await
            .is_none()
    );
    b.screenshot("role-deleted").await;
    b.close().await;
}
