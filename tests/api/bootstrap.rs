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

#[tokio::test]
async fn the_password_can_go_to_a_private_file_written_by_the_creating_node_only() {
    use std::os::unix::fs::PermissionsExt as _;
    let env = CliEnv::new().await;
    let dir = tempfile::tempdir().unwrap();
    let files = [dir.path().join("a-password"), dir.path().join("b-password")];
    // Two nodes start together on one empty database, each told to write the password.
    let servers: Vec<ServerProcess> = std::thread::scope(|s| {
        let started: Vec<_> = files
            .iter()
            .map(|f| {
                let config = env.config.clone();
                s.spawn(move || {
                    ServerProcess::start(
                        &config,
                        &[],
                        &[("APP_BOOTSTRAP__PASSWORD_FILE", f.to_str().unwrap())],
                    )
                })
            })
            .collect();
        started.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let written: Vec<_> = files.iter().filter(|f| f.exists()).collect();
    assert_eq!(written.len(), 1, "exactly one node created the admin");
    let file = written[0];
    let mode = std::fs::metadata(file).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let password = std::fs::read_to_string(file).unwrap().trim().to_owned();
    for server in &servers {
        let out = server.stdout() + &server.stderr();
        assert!(!out.contains(&password), "the password was printed: {out}");
        assert!(printed_password(&server.stdout()).is_none());
    }
    let creator = servers
        .iter()
        .find(|s| s.stdout().contains("its password is in"))
        .expect("the creating node says where the password is");
    assert!(
        creator.stdout().contains(&file.display().to_string()),
        "{}",
        creator.stdout()
    );
    for server in servers {
        assert!(server.stop().success());
    }
    let accounts = AccountService::new(env.store().await);
    assert!(
        accounts
            .verify(AccountKind::Admin, "admin", &password)
            .await
            .unwrap()
            .is_some(),
        "the written password signs in"
    );
}

#[tokio::test]
async fn a_password_file_in_a_missing_folder_stops_the_start_before_any_admin_exists() {
    let env = CliEnv::new().await;
    let out = integration_host_tests::run_binary(
        &env.config,
        &["serve"],
        "",
        &[("APP_BOOTSTRAP__PASSWORD_FILE", "/nonexistent/folder/pw")],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bootstrap.password_file") && err.contains("/nonexistent/folder"),
        "{err}"
    );
    let accounts = AccountService::new(env.store().await);
    assert!(accounts.list(AccountKind::Admin).await.unwrap().is_empty());
}
