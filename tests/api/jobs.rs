//! The scheduled cleanup jobs: each deletes exactly what it should and nothing else, in
//! batches; a scheduled run is claimed by one process only; `cron run` and `cron list`.

use integration_host::config::TokenFormat;
use integration_host::domain::AccountKind;
use integration_host::domain::SetupType;
use integration_host::jobs::Job;
use integration_host::services::integration::{IntegrationForm, IntegrationInput};
use integration_host::store::{CLEANUP_BATCH, Store};
use integration_host_tests::{
    Recorder, TestApp, raw_execute, raw_scalar_i64, run_binary, show, spawn_app_with, unix_now,
};
use serde_json::json;

async fn count(app: &TestApp, sql: &str) -> i64 {
    raw_scalar_i64(&app.db, sql).await.unwrap()
}

async fn run(app: &TestApp, job: Job) -> u64 {
    job.run(&app.store, &app.settings).await.unwrap()
}

#[tokio::test]
async fn each_cleanup_job_deletes_exactly_what_it_should() {
    let app = spawn_app_with(|s| s.tokens.format = TokenFormat::Opaque).await;
    let t = unix_now();

    // Sign-in failures: two expired locks, one running.
    raw_execute(
        &app.db,
        &format!(
        "INSERT INTO oauth_token_request_log (user_name, user_type, failures_count, lock_expires_at)
         VALUES ('a', 2, 3, {}), ('b', 3, 6, {}), ('c', 2, 1, {})", t - 10, t - 1, t + 600
    ),
    )
    .await
    .unwrap();
    assert_eq!(run(&app, Job::OutdatedAuthenticationFailures).await, 2);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM oauth_token_request_log WHERE user_name = 'c'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM oauth_token_request_log").await,
        1
    );

    // Nonces: older than the retention (120 min) go, recent ones stay.
    let caller = app
        .minted_integration("Nightly", &["Magento_Integration::integrations"])
        .await;
    let c = caller.consumer_id;
    raw_execute(
        &app.db,
        &format!(
            "INSERT INTO oauth_nonce (nonce, timestamp, consumer_id) VALUES
         ('old1', {}, {c}), ('old2', {}, {c}), ('recent', {}, {c}), ('edge', {}, {c})",
            t - 3 * 86_400,
            t - 7_201,
            t - 60,
            t - 7_100
        ),
    )
    .await
    .unwrap();
    assert_eq!(run(&app, Job::Nonces).await, 2);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM oauth_nonce WHERE nonce IN ('recent', 'edge')"
        )
        .await,
        2
    );
    assert_eq!(count(&app, "SELECT COUNT(*) FROM oauth_nonce").await, 2);

    // Opaque tokens past their lifetime (admin 4 h, customer 1 h) and old revocation entries
    // go; live tokens, and the integration's access token however old, stay.
    app.account(AccountKind::Admin, "jane", "secret123").await;
    let jo = app
        .account(AccountKind::Customer, "jo@example.com", "secret456")
        .await;
    let sign_in = |path: &'static str, user: &'static str, pw: &'static str| {
        let app = &app;
        async move {
            let (s, body) = app
                .post_json(path, &json!({"username": user, "password": pw}))
                .await;
            assert_eq!(s, 200, "{body}");
        }
    };
    for _ in 0..2 {
        sign_in("/rest/V1/integration/admin/token", "jane", "secret123").await;
        sign_in(
            "/rest/V1/integration/customer/token",
            "jo@example.com",
            "secret456",
        )
        .await;
    }
    let admin_rows = "SELECT id FROM oauth_token WHERE user_type = 2";
    let customer_rows = "SELECT id FROM oauth_token WHERE user_type = 3";
    raw_execute(&app.db, &format!("UPDATE oauth_token SET created_at = {} WHERE id = (SELECT MIN(id) FROM ({admin_rows}) a)", t - 4 * 3600 - 5)).await.unwrap();
    raw_execute(&app.db, &format!("UPDATE oauth_token SET created_at = {} WHERE id = (SELECT MIN(id) FROM ({customer_rows}) c)", t - 3600 - 5)).await.unwrap();
    // The customer's second token is 50 minutes old: alive.
    raw_execute(&app.db, &format!("UPDATE oauth_token SET created_at = {} WHERE id = (SELECT MAX(id) FROM ({customer_rows}) c)", t - 3000)).await.unwrap();
    raw_execute(
        &app.db,
        &format!(
            "UPDATE oauth_token SET created_at = {} WHERE user_type = 1",
            t - 30 * 86_400
        ),
    )
    .await
    .unwrap();
    raw_execute(&app.db, &format!(
        "INSERT INTO jwt_auth_revoked (user_type, user_id, revoke_before) VALUES (3, {jo}, {}), (2, 999, {})",
        t - 2 * 86_400, t - 600
    )).await.unwrap();
    assert_eq!(run(&app, Job::ExpiredTokens).await, 3);
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM oauth_token WHERE user_type = 2").await,
        1
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM oauth_token WHERE user_type = 3").await,
        1
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM oauth_token WHERE user_type = 1").await,
        1
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM jwt_auth_revoked").await,
        1
    );
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM jwt_auth_revoked WHERE user_id = 999"
        )
        .await,
        1
    );

    // Handshake tokens never exchanged: a verifier older than the retention goes; the minted
    // access token stays.
    let recorder = Recorder::start(200).await;
    let form = IntegrationForm {
        name: "Partner".into(),
        endpoint: Some(recorder.url.clone()),
        identity_link_url: Some("https://partner.example/login".into()),
        ..Default::default()
    };
    let partner = app
        .integrations
        .create(IntegrationInput::parse(&form, SetupType::Manual).unwrap())
        .await
        .unwrap();
    app.integrations.activate(partner.id, false).await.unwrap();
    let verifier = format!(
        "SELECT COUNT(*) FROM oauth_token WHERE consumer_id = {} AND type = 'verifier'",
        partner.consumer_id
    );
    assert_eq!(count(&app, &verifier).await, 1);
    assert_eq!(
        run(&app, Job::StaleTokens).await,
        0,
        "a fresh verifier stays"
    );
    raw_execute(
        &app.db,
        &format!(
            "UPDATE oauth_token SET created_at = {} WHERE consumer_id = {}",
            t - 7_300,
            partner.consumer_id
        ),
    )
    .await
    .unwrap();
    assert_eq!(run(&app, Job::StaleTokens).await, 1);
    assert_eq!(count(&app, &verifier).await, 0);
    assert_eq!(
        count(
            &app,
            "SELECT COUNT(*) FROM oauth_token WHERE user_type = 1 AND type = 'access'"
        )
        .await,
        1
    );
    assert_eq!(
        count(&app, "SELECT COUNT(*) FROM integration").await,
        2,
        "integrations are never touched"
    );
}

#[tokio::test]
async fn cleanups_delete_in_batches_until_done() {
    let app = spawn_app_with(|_| {}).await;
    let caller = app
        .minted_integration("Bulk", &["Magento_Integration::integrations"])
        .await;
    let n = CLEANUP_BATCH * 2 + 123;
    let old = unix_now() - 86_400;
    let sql = if app.db.postgres.is_some() {
        format!(
            "INSERT INTO oauth_nonce (nonce, timestamp, consumer_id)
                 SELECT 'n' || g, {old}, {} FROM generate_series(1, {n}) AS g",
            caller.consumer_id
        )
    } else {
        format!("WITH RECURSIVE g(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM g WHERE i < {n})
                 INSERT INTO oauth_nonce (nonce, timestamp, consumer_id) SELECT 'n' || i, {old}, {} FROM g", caller.consumer_id)
    };
    raw_execute(&app.db, &sql).await.unwrap();
    raw_execute(
        &app.db,
        &format!(
            "INSERT INTO oauth_nonce (nonce, timestamp, consumer_id) VALUES ('keep', {}, {})",
            unix_now(),
            caller.consumer_id
        ),
    )
    .await
    .unwrap();
    assert_eq!(run(&app, Job::Nonces).await, n as u64);
    assert_eq!(count(&app, "SELECT COUNT(*) FROM oauth_nonce").await, 1);
}

#[tokio::test]
async fn a_scheduled_run_is_claimed_by_one_process_and_recorded() {
    let app = spawn_app_with(|_| {}).await;
    let other = Store::connect(&app.db.url, &app.settings.database)
        .await
        .unwrap();
    let slot = unix_now() - unix_now() % 60;
    for round in 0..20 {
        let at = slot - round * 60;
        let (a, b) = tokio::join!(
            app.store.claim_job_run("nonce_cleanup", at, unix_now()),
            other.claim_job_run("nonce_cleanup", at, unix_now()),
        );
        assert!(
            a.unwrap() ^ b.unwrap(),
            "exactly one process claims round {round}"
        );
    }
    app.store
        .finish_job_run("nonce_cleanup", slot, unix_now(), Ok(7))
        .await
        .unwrap();
    let runs = app.store.job_runs("nonce_cleanup").await.unwrap();
    assert_eq!(runs.len(), 20);
    // (Listed newest start first: the rounds may straddle a second, so find the slot's run.)
    let finished = runs.iter().find(|r| r.scheduled_at == slot).unwrap();
    assert_eq!(
        (
            finished.scheduled_at,
            finished.status.as_str(),
            finished.deleted_rows,
            finished.manual
        ),
        (slot, "success", 7, false)
    );

    // The CLI runs jobs by hand and lists them.
    let config = app.config_file();
    let cli = |args: &[&str]| run_binary(&config, args, "", &[]);
    let out = cli(&["cron", "run", "nonce_cleanup"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "nonce_cleanup: deleted 0 rows"
    );
    let out = cli(&["cron", "run"]);
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 5);
    let out = cli(&["cron", "run", "nonces"]);
    assert!(!out.status.success());
    assert!(
        show(&out).contains("unknown job `nonces`"),
        "{}",
        show(&out)
    );
    let out = cli(&["cron", "list"]);
    assert!(out.status.success(), "{}", show(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    // The runs by hand are the newest, and say so.
    let nonce = text
        .lines()
        .find(|l| l.starts_with("nonce_cleanup"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        nonce.contains("*/5 * * * *") && nonce.ends_with("success, 0 rows (by hand)"),
        "{text}"
    );
    assert!(!text.contains("never"), "{text}");
    let runs = app.store.job_runs("nonce_cleanup").await.unwrap();
    assert_eq!(runs.iter().filter(|r| r.manual).count(), 2, "{runs:?}");
}

#[tokio::test]
async fn two_servers_on_one_database_run_each_scheduled_run_once() {
    use integration_host::config::CronSchedule;
    let every_minute = |s: &mut integration_host::config::Settings| {
        let m = CronSchedule::parse("* * * * *").unwrap();
        s.cron.outdated_authentication_failures_cleanup = m.clone();
        s.cron.expired_tokens_cleanup = m.clone();
        s.cron.nonce_cleanup = m.clone();
        s.cron.stale_tokens_cleanup = m.clone();
        s.cron.event_outbox_cleanup = m;
    };
    let first = spawn_app_with(every_minute).await;
    let mut settings = first.settings.clone();
    every_minute(&mut settings);
    let second = integration_host::startup::Application::build(settings)
        .await
        .unwrap();
    tokio::spawn(second.run_until_stopped());
    raw_execute(&first.db, &format!(
        "INSERT INTO oauth_token_request_log (user_name, user_type, failures_count, lock_expires_at) VALUES ('x', 2, 1, {})",
        unix_now() - 5
    )).await.unwrap();

    // Wait for the next minute's runs to finish.
    let next = unix_now() - unix_now() % 60 + 60;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(75);
    loop {
        let done = raw_scalar_i64(&first.db, &format!(
            "SELECT COUNT(*) FROM cron_schedule WHERE scheduled_at = {next} AND status = 'success'"
        )).await.unwrap();
        if done == 5 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the scheduled runs did not happen"
        );
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    let runs = raw_scalar_i64(
        &first.db,
        &format!("SELECT COUNT(*) FROM cron_schedule WHERE scheduled_at = {next}"),
    )
    .await
    .unwrap();
    assert_eq!(runs, 5, "one run per job for both servers");
    assert_eq!(
        count(&first, "SELECT COUNT(*) FROM oauth_token_request_log").await,
        0
    );
}
