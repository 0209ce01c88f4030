//! Graceful shutdown: SIGTERM turns readiness to 503 while draining, then the process exits 0.

use std::time::{Duration, Instant};

use integration_host_tests::{CliEnv, ServerProcess};

#[tokio::test]
async fn sigterm_drains_then_exits_cleanly() {
    let env = CliEnv::new().await;
    let mut server = ServerProcess::start(&env.config, &[], &[("APP_SERVER__DRAIN_SECONDS", "3")]);
    let client = reqwest::Client::new();
    assert_eq!(
        client
            .get(server.url("/readyz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let asked = Instant::now();
    server.terminate();
    // While draining: not ready, still alive.
    let mut saw_draining = false;
    while asked.elapsed() < Duration::from_secs(2) {
        if let Ok(res) = client.get(server.url("/readyz")).send().await
            && res.status() == 503
        {
            let body: serde_json::Value = res.json().await.unwrap();
            assert_eq!(body["status"], "draining");
            saw_draining = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(saw_draining, "readiness never turned 503 after SIGTERM");
    assert_eq!(
        client
            .get(server.url("/livez"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let status = server.wait_exit(Duration::from_secs(30));
    assert!(status.success(), "exit status {status}");
    assert!(
        asked.elapsed() >= Duration::from_secs(3),
        "stopped before the drain period"
    );
    assert!(
        server.stderr().contains("\"stopped\""),
        "{}",
        server.stderr()
    );
}
