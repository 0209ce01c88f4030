//! The first admin account: created on the first start, its password printed once and working.

use integration_host::domain::AccountKind;
use integration_host::services::accounts::AccountService;
use integration_host_tests::{CliEnv, ServerProcess, spawn_app};

fn printed_password(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("password: "))
        .map(str::to_owned)
}

#[tokio::test]
async fn first_start_prints_a_working_password_once() {
    let env = CliEnv::new().await;

    let server = ServerProcess::start(&env.config, &[], &[]);
    let stdout = server.wait_stdout("password: ", std::time::Duration::from_secs(10));
    let password = printed_password(&stdout).expect("the password is printed on first start");
    assert!(stdout.contains("username: admin"), "{stdout}");
    assert!(password.len() >= 16);
    assert!(
        !server.stderr().contains(&password),
        "the password must not reach the log"
    );
    assert!(server.stop().success());

    let accounts = AccountService::new(env.store().await);
    let admin = accounts
        .verify(AccountKind::Admin, "admin", &password)
        .await
        .unwrap()
        .expect("the printed password signs in");
    assert_eq!(admin.login, "admin");
    assert!(
        accounts
            .verify(AccountKind::Admin, "admin", "wrong-password1")
            .await
            .unwrap()
            .is_none()
    );

    let server = ServerProcess::start(&env.config, &[], &[]);
    let stdout = server.stdout();
    assert!(
        printed_password(&stdout).is_none(),
        "printed again on the second start: {stdout}"
    );
    assert!(server.stop().success());
}

#[tokio::test]
async fn the_in_process_server_bootstraps_too() {
    let app = spawn_app().await;
    let admin = app.bootstrap_admin.as_ref().expect("admin created");
    let accounts = AccountService::new(app.store.clone());
    assert!(
        accounts
            .verify(AccountKind::Admin, &admin.username, admin.password.expose())
            .await
            .unwrap()
            .is_some()
    );
}
