//! Migrations: apply, re-apply, and several servers migrating one database at once.

use integration_host::config::DatabaseSettings;
use integration_host::domain::AccountKind;
use integration_host::startup::Application;
use integration_host::store::Store;
use integration_host_tests::{CliEnv, TestDb, raw_scalar_i64, show, spawn_on, test_settings};

const TABLES: &[&str] = &[
    "admin_user",
    "customer",
    "oauth_consumer",
    "oauth_token",
    "oauth_nonce",
    "integration",
    "oauth_token_request_log",
    "jwt_auth_revoked",
    "authorization_role",
    "authorization_rule",
];

#[tokio::test]
async fn migrations_apply_then_reapply_as_a_no_op() {
    let db = TestDb::new().await;
    let store = Store::connect(&db.url, &DatabaseSettings::default())
        .await
        .unwrap();

    let first = store.migrate().await.unwrap();
    assert!(!first.applied.is_empty());
    assert_eq!(first.applied.len(), first.total);

    let second = store.migrate().await.unwrap();
    assert!(second.applied.is_empty(), "{second:?}");
    assert_eq!(second.total, first.total);

    for table in TABLES {
        raw_scalar_i64(&db, &format!("SELECT COUNT(*) FROM {table}"))
            .await
            .unwrap_or_else(|e| panic!("table {table} missing: {e}"));
    }
}

#[tokio::test]
async fn two_servers_migrating_one_database_at_once_both_start_and_one_admin_is_created() {
    let db = TestDb::new().await;
    let settings = test_settings(&db);
    let (a, b) = tokio::join!(
        Application::build(settings.clone()),
        Application::build(settings.clone())
    );
    let (mut a, mut b) = (a.expect("first server"), b.expect("second server"));
    let created = [a.take_bootstrap_admin(), b.take_bootstrap_admin()]
        .into_iter()
        .flatten()
        .count();
    assert_eq!(
        created, 1,
        "exactly one of the two servers creates the admin"
    );
    let admins = a.store().list_accounts(AccountKind::Admin).await.unwrap();
    assert_eq!(admins.len(), 1);
    // Both applied or saw the same schema, and both serve.
    assert_eq!(a.migrations().total, b.migrations().total);
    let app = spawn_on(db, settings).await;
    assert_eq!(app.get("/readyz").await.status(), 200);
}

#[tokio::test]
async fn migrate_command_applies_then_reports_up_to_date() {
    let env = CliEnv::new().await;
    let out = env.run(&["migrate"], "");
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("applied 1 initial"), "{stdout}");

    let out = env.run(&["migrate"], "");
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("database is up to date"), "{stdout}");
}

#[tokio::test]
async fn two_migrate_processes_at_once_both_succeed_and_one_applies() {
    let env = CliEnv::new().await;
    let spawn = || {
        std::process::Command::new(integration_host_tests::binary())
            .arg("--config")
            .arg(&env.config)
            .arg("migrate")
            .output()
    };
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(spawn);
        let b = s.spawn(spawn);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert!(a.status.success(), "{}", show(&a));
    assert!(b.status.success(), "{}", show(&b));
    let outputs = [
        String::from_utf8_lossy(&a.stdout).into_owned(),
        String::from_utf8_lossy(&b.stdout).into_owned(),
    ];
    // One applied the migrations; the other waited for the lock and found nothing to do.
    assert_eq!(
        outputs
            .iter()
            .filter(|o| o.contains("applied 1 initial"))
            .count(),
        1,
        "{outputs:?}"
    );
    assert_eq!(
        outputs.iter().filter(|o| o.contains("up to date")).count(),
        1,
        "{outputs:?}"
    );
}
