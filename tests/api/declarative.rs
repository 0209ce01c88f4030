//! Declarative integrations: sync at start and by `integration sync`, its four cases, broken
//! files, name clashes, the shipped samples, and read-only config integrations.

use std::path::{Path, PathBuf};

use integration_host::domain::{IntegrationStatus, SetupType};
use integration_host_tests::{
    TestApp, raw_scalar_i64, run_binary, send_json, show, spawn_app_with,
};
use serde_json::json;

fn folder(app_dir: &Path) -> PathBuf {
    let dir = app_dir.join("integrations");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn app_on(dir: &Path) -> TestApp {
    let dir = dir.to_owned();
    spawn_app_with(move |s| s.integrations.directories = vec![dir]).await
}

fn sync(app: &TestApp) -> std::process::Output {
    run_binary(&app.config_file(), &["integration", "sync"], "", &[])
}

const FIRST: &str = r#"
[[integration]]
name = "Alpha"
resources = ["Magento_Sales::sales"]

[[integration]]
name = "Beta"
email = "beta@partner.example"
resources = ["Magento_Catalog::products"]

[[integration]]
name = "Gamma"
all_resources = true
"#;

async fn count(app: &TestApp, sql: &str) -> i64 {
    raw_scalar_i64(&app.db, sql).await.unwrap()
}

#[tokio::test]
async fn sync_creates_keeps_resets_and_removes() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = folder(tmp.path());
    std::fs::write(dir.join("partners.toml"), FIRST).unwrap();
    let app = app_on(&dir).await;

    // Created at start: inactive, config, with their resources.
    let all = app.integrations.list().await.unwrap();
    assert_eq!(all.len(), 3);
    assert!(
        all.iter()
            .all(|i| i.setup_type == SetupType::Config && i.status == IntegrationStatus::Inactive)
    );
    let alpha = app
        .integrations
        .find_by_name("alpha")
        .await
        .unwrap()
        .unwrap();
    let beta = app
        .integrations
        .find_by_name("Beta")
        .await
        .unwrap()
        .unwrap();
    let gamma = app
        .integrations
        .find_by_name("Gamma")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        app.integrations
            .selected_resources(alpha.id)
            .await
            .unwrap()
            .to_rules(),
        vec!["Magento_Backend::admin", "Magento_Sales::sales"]
    );
    // Beta and Gamma get approved (tokens minted).
    for i in [&beta, &gamma] {
        app.integrations.activate(i.id, false).await.unwrap();
    }
    let beta_key = app.oauth.load_consumer(beta.consumer_id).await.unwrap().key;
    let gamma_before = app.integrations.get(gamma.id).await.unwrap();

    // Alpha removed, Beta changed, Gamma unchanged, Delta new.
    std::fs::write(
        dir.join("partners.toml"),
        r#"
[[integration]]
name = "Beta"
email = "beta-ops@partner.example"
resources = ["Magento_Catalog::products"]

[[integration]]
name = "Gamma"
all_resources = true
"#,
    )
    .unwrap();
    std::fs::write(
        dir.join("more.toml"),
        "[[integration]]\nname = \"Delta\"\nendpoint_url = \"https://delta.example/a\"\n",
    )
    .unwrap();
    let out = sync(&app);
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("created: Delta"), "{stdout}");
    assert!(stdout.contains("updated and reset: Beta"), "{stdout}");
    assert!(stdout.contains("removed: Alpha"), "{stdout}");
    assert!(stdout.contains("unchanged: Gamma"), "{stdout}");
    assert!(stdout.contains("1 created, 1 updated and reset, 1 unchanged, 1 removed"));

    // Removed: nothing left behind.
    assert!(
        app.integrations
            .find_by_name("Alpha")
            .await
            .unwrap()
            .is_none()
    );
    for sql in [
        format!(
            "SELECT COUNT(*) FROM oauth_consumer WHERE id = {}",
            alpha.consumer_id
        ),
        format!(
            "SELECT COUNT(*) FROM oauth_token WHERE consumer_id = {}",
            alpha.consumer_id
        ),
        format!(
            "SELECT COUNT(*) FROM authorization_role WHERE user_type = 1 AND user_id = {}",
            alpha.id
        ),
    ] {
        assert_eq!(count(&app, &sql).await, 0, "{sql}");
    }
    // Changed: same consumer, tokens revoked, status reset (2), new email.
    let beta_after = app.integrations.get(beta.id).await.unwrap();
    assert_eq!(beta_after.status, IntegrationStatus::Reset);
    assert_eq!(beta_after.email, "beta-ops@partner.example");
    assert_eq!(beta_after.consumer_id, beta.consumer_id);
    assert_eq!(
        app.oauth.load_consumer(beta.consumer_id).await.unwrap().key,
        beta_key
    );
    assert!(
        app.oauth
            .get_access_token(beta.consumer_id)
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(
        count(
            &app,
            &format!(
                "SELECT COUNT(*) FROM oauth_token WHERE consumer_id = {}",
                beta.consumer_id
            )
        )
        .await,
        0
    );
    // Unchanged: untouched, still active with its token.
    let gamma_after = app.integrations.get(gamma.id).await.unwrap();
    assert_eq!(gamma_after, gamma_before);
    assert!(
        app.oauth
            .get_access_token(gamma.consumer_id)
            .await
            .unwrap()
            .is_some()
    );
    // New.
    let delta = app
        .integrations
        .find_by_name("Delta")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (delta.status, delta.setup_type),
        (IntegrationStatus::Inactive, SetupType::Config)
    );

    // A second sync changes nothing.
    let out = sync(&app);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("0 created, 0 updated and reset, 3 unchanged, 0 removed"),
        "{}",
        show(&out)
    );
    app.db.destroy().await;
}

#[tokio::test]
async fn a_broken_file_is_named_and_nothing_applies() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = folder(tmp.path());
    std::fs::write(dir.join("partners.toml"), FIRST).unwrap();
    let app = app_on(&dir).await;
    let before = app.integrations.list().await.unwrap();

    // Alpha removed from the good file, a new valid file, and one broken file: nothing applies.
    std::fs::write(
        dir.join("partners.toml"),
        FIRST.replace("name = \"Alpha\"", "name = \"Alpha 2\""),
    )
    .unwrap();
    std::fs::write(
        dir.join("new.toml"),
        "[[integration]]\nname = \"Epsilon\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("broken.toml"),
        "[[integration]]\nname = \"Zeta\"\n\n[[integration]]\nname = \"Eta\"\nendpoint_url = \"ftp://eta.example\"\n",
    )
    .unwrap();
    let out = sync(&app);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("broken.toml"), "{stderr}");
    assert!(stderr.contains("integration[1].endpoint_url"), "{stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert_eq!(app.integrations.list().await.unwrap(), before);

    // Other kinds of bad files, each named with its key.
    let cases = [
        (
            "[[integration]]\nname = \"Zeta\"\nresources = [\"Magento_Sales::sales\", \"Magento_Nope::x\"]\n",
            "integration[0].resources[1]",
        ),
        (
            "[[integration]]\nname = \"Zeta\"\nendpoint = \"https://x.example\"\n",
            "integration[0]",
        ),
        ("[[integration]]\nname = \"BETA\"\n", "is already declared"),
        ("[[integration]\nname = \"Zeta\"\n", "line 1"),
    ];
    for (text, key) in cases {
        std::fs::write(dir.join("broken.toml"), text).unwrap();
        let out = sync(&app);
        assert!(!out.status.success(), "{text}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("broken.toml") && stderr.contains(key),
            "{text}: {stderr}"
        );
        assert_eq!(app.integrations.list().await.unwrap(), before);
    }
    std::fs::remove_file(dir.join("broken.toml")).unwrap();

    // A name taken by an admin-made integration is refused.
    app.minted_integration("Handmade", &[]).await;
    std::fs::write(
        dir.join("broken.toml"),
        "[[integration]]\nname = \"handmade\"\n",
    )
    .unwrap();
    let out = sync(&app);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("created by an admin"), "{stderr}");

    // A missing folder is an error, not an empty source that would delete everything.
    std::fs::remove_file(dir.join("broken.toml")).unwrap();
    std::fs::remove_file(dir.join("new.toml")).unwrap();
    std::fs::remove_file(dir.join("partners.toml")).unwrap();
    std::fs::remove_dir(&dir).unwrap();
    let out = sync(&app);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the folder"));
    assert_eq!(app.integrations.list().await.unwrap().len(), 4);
    app.db.destroy().await;
}

#[tokio::test]
async fn a_server_starts_with_a_broken_file_and_changes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = folder(tmp.path());
    std::fs::write(
        dir.join("broken.toml"),
        "[[integration]]\nemail = \"x@y.example\"\n",
    )
    .unwrap();
    let app = app_on(&dir).await;
    assert!(app.integrations.list().await.unwrap().is_empty());
    assert_eq!(app.get("/livez").await.status().as_u16(), 200);
    app.db.destroy().await;
}

#[tokio::test]
async fn the_samples_sync_and_config_integrations_are_read_only() {
    let samples = Path::new(env!("CARGO_MANIFEST_DIR")).join("../sample-integrations");
    let app = app_on(&samples).await;
    let all = app.integrations.list().await.unwrap();
    let config: Vec<_> = all
        .iter()
        .filter(|i| i.setup_type == SetupType::Config)
        .collect();
    assert!(config.len() >= 2, "{all:?}");
    let erp = app
        .integrations
        .find_by_name("ERP Connector")
        .await
        .unwrap()
        .unwrap();
    assert!(erp.endpoint.starts_with("https://"));

    let caller = app
        .minted_integration("Manager", &["Magento_Integration::integrations"])
        .await;
    let path = format!("/rest/V1/integrations/{}", erp.id);
    let (status, body) = send_json(caller.json("PUT", &path, &json!({"name": "Renamed"}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .contains("configuration file"),
        "{body}"
    );
    let (status, body) = send_json(caller.request("DELETE", &path)).await;
    assert_eq!(status, 400, "{body}");
    let (status, view) = send_json(caller.request("GET", &path)).await;
    assert_eq!(status, 200);
    assert_eq!(view["setup_type"], "config");
    assert_eq!(view["name"], "ERP Connector");
    // Activation of a config integration is the merchant's to do, as in Magento.
    let reports = app
        .integrations
        .find_by_name("Nightly Reports")
        .await
        .unwrap()
        .unwrap();
    let (status, answer) = send_json(caller.request(
        "POST",
        &format!("/rest/V1/integrations/{}/activate", reports.id),
    ))
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["activation"], "minted");
    app.db.destroy().await;
}

/// Waits until `check` holds, for at most the 2 s the product promises.
async fn within_2s(what: &str, check: impl AsyncFn() -> bool) {
    let started = std::time::Instant::now();
    while !check().await {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(2),
            "not within 2 s: {what}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn edited_definition_files_are_synced_by_running_servers_once() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = folder(tmp.path());
    let watch = |s: &mut integration_host::config::Settings, dir: &Path| {
        s.integrations.directories = vec![dir.to_owned()];
        s.integrations.watch_poll_ms = 100;
    };
    let d = dir.clone();
    let app = spawn_app_with(move |s| watch(s, &d)).await;
    // A second server on the same database, watching the same folder.
    let second = integration_host::startup::Application::build(app.settings.clone())
        .await
        .unwrap();
    let second_events = second.events().clone();
    tokio::spawn(second.run_until_stopped());
    let created = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    struct Count(std::sync::Arc<std::sync::atomic::AtomicUsize>);
    impl integration_host::events::Observer for Count {
        fn name(&self) -> &str {
            "count-created"
        }
        fn observe<'a>(
            &'a self,
            event: &'a integration_host::events::Event,
        ) -> futures_util::future::BoxFuture<'a, Result<(), integration_host::events::ObserveError>>
        {
            if matches!(
                event,
                integration_host::events::Event::IntegrationSaved { created: true, .. }
            ) {
                self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            Box::pin(async { Ok(()) })
        }
    }
    for events in [&app.events, &second_events] {
        events
            .subscribe(
                &["integration_saved"],
                integration_host::events::Mode::Sync,
                std::sync::Arc::new(Count(created.clone())),
            )
            .unwrap();
    }

    // Added: created once, by one of the two.
    std::fs::write(dir.join("partners.toml"), FIRST).unwrap();
    within_2s("the new file synced", async || {
        app.integrations.list().await.unwrap().len() == 3
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(created.load(std::sync::atomic::Ordering::SeqCst), 3);

    // Changed: Alpha gains a resource and is reset.
    std::fs::write(
        dir.join("partners.toml"),
        FIRST.replace(
            "resources = [\"Magento_Sales::sales\"]",
            "resources = [\"Magento_Sales::sales\", \"Magento_Catalog::products\"]",
        ),
    )
    .unwrap();
    within_2s("the change synced", async || {
        let alpha = app
            .integrations
            .find_by_name("Alpha")
            .await
            .unwrap()
            .unwrap();
        alpha.status == IntegrationStatus::Reset
    })
    .await;

    // Broken: nothing changes (the others stay); removing the file then deletes them.
    std::fs::write(dir.join("partners.toml"), "[[integration]]\nname = 7\n").unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert_eq!(app.integrations.list().await.unwrap().len(), 3);
    std::fs::remove_file(dir.join("partners.toml")).unwrap();
    within_2s("the removal synced", async || {
        app.integrations.list().await.unwrap().is_empty()
    })
    .await;
}
