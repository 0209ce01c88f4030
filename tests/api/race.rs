//! Two server processes on one database, the same signed request sent to both at once: the
//! nonce is accepted exactly once, whichever process sees it first.

use futures_util::future::join_all;
use integration_host_tests::{CliEnv, ServerProcess, oauth_header, show, unix_now};

struct Creds {
    key: String,
    secret: String,
    token: String,
    token_secret: String,
}

fn field(stdout: &str, label: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix(label))
        .map(|v| v.trim().to_owned())
        .unwrap_or_else(|| panic!("`{label}` missing from:\n{stdout}"))
}

fn minted(env: &CliEnv) -> Creds {
    let out = env.run(
        &[
            "integration",
            "create",
            "--name",
            "Racer",
            "--resource",
            "Magento_Integration::integrations",
        ],
        "",
    );
    assert!(out.status.success(), "{}", show(&out));
    let out = env.run(&["integration", "activate", "Racer", "--show-secrets"], "");
    assert!(out.status.success(), "{}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    Creds {
        key: field(&stdout, "consumer key:"),
        secret: field(&stdout, "consumer secret:"),
        token: field(&stdout, "access token:"),
        token_secret: field(&stdout, "access token secret:"),
    }
}

#[tokio::test]
async fn two_processes_accept_a_nonce_exactly_once() {
    let env = CliEnv::new().await;
    let c = minted(&env);
    let a = ServerProcess::start(&env.config, &[], &[]);
    let b = ServerProcess::start(&env.config, &[], &[]);
    // Behind a load balancer both processes see the same Host; so do these requests.
    let host = format!("127.0.0.1:{}", a.port);
    let signed_url = format!("http://{host}/rest/V1/integrations");
    let client = reqwest::Client::new();
    let sign = |nonce: &str| {
        oauth_header(
            "GET",
            &signed_url,
            &c.key,
            &c.secret,
            &c.token_secret,
            &[("oauth_token", &c.token)],
            &[],
            nonce,
            unix_now(),
        )
    };
    let send = |server: &ServerProcess, header: String| {
        client
            .get(server.url("/rest/V1/integrations"))
            .header("Host", &host)
            .header("Authorization", header)
            .send()
    };

    // One request at a time to both processes at once, many times.
    for round in 0..60 {
        let header = sign(&format!("race-{round}-{}", unix_now()));
        let (ra, rb) = tokio::join!(send(&a, header.clone()), send(&b, header));
        let mut statuses = [ra.unwrap().status().as_u16(), rb.unwrap().status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [200, 401], "round {round}");
    }

    // A burst: 40 nonces, each sent to both processes, all 80 requests in flight together.
    let headers: Vec<String> = (0..40)
        .map(|i| sign(&format!("burst-{i}-{}", unix_now())))
        .collect();
    let requests = headers
        .iter()
        .flat_map(|h| [send(&a, h.clone()), send(&b, h.clone())]);
    let answers = join_all(requests).await;
    let mut accepted = 0;
    let mut refused = 0;
    for r in answers {
        let r = r.unwrap();
        match r.status().as_u16() {
            200 => accepted += 1,
            401 => {
                let body: serde_json::Value = r.json().await.unwrap();
                assert!(
                    body["message"]
                        .as_str()
                        .unwrap()
                        .starts_with("The nonce is already being used"),
                    "{body}"
                );
                refused += 1;
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!((accepted, refused), (40, 40));
    a.stop();
    b.stop();
    env.db.destroy().await;
}
