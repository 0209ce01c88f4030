//! Key rotation as docs/operations.md describes it: announced keys (phase one), promoted keys
//! (phase two), `crypto rewrap`, and the old keys removed, on two server processes under load
//! without a failed request; and what a removed key leaves behind.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use integration_host::config::KeySpec;
use integration_host::startup::Application;
use integration_host_tests::{
    CliEnv, ServerProcess, TestDb, run_binary, send_json, show, spawn_app,
};
use serde_json::json;

fn ok(out: &std::process::Output) -> String {
    assert!(out.status.success(), "{}", show(out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn rewrap_reseals_every_secret_so_the_old_key_can_go() {
    let app = spawn_app().await;
    let caller = app
        .minted_integration("Before rotation", &["Magento_Backend::all"])
        .await;
    app.account(
        integration_host::domain::AccountKind::Admin,
        "jane",
        "secret123",
    )
    .await;
    let (status, old_jwt) = app
        .post_json(
            "/rest/V1/integration/admin/token",
            &json!({"username": "jane", "password": "secret123"}),
        )
        .await;
    assert_eq!(status, 200);
    let old_jwt = old_jwt.as_str().unwrap().to_owned();

    // Promoted: k2 seals, k1 still opens.
    let mut rotated = app.settings.clone();
    let k2 = KeySpec::generate("k2");
    let t2 = KeySpec::generate("t2");
    rotated.crypto.secret_keys.insert(0, k2.clone());
    rotated.tokens.signing_keys.insert(0, t2.clone());
    let config = app.config_file_for(&rotated, "rotated.toml");
    let run = |config: std::path::PathBuf, args: &'static [&'static str]| async move {
        tokio::task::spawn_blocking(move || run_binary(&config, args, "", &[]))
            .await
            .unwrap()
    };
    let status = ok(&run(config.clone(), &["crypto", "status"]).await);
    assert!(
        status.contains("new secrets are sealed with key `k2`"),
        "{status}"
    );
    for column in [
        "oauth_consumer.secret",
        "oauth_token.token",
        "oauth_token.secret",
    ] {
        let line = status
            .lines()
            .find(|l| l.starts_with(column))
            .unwrap_or_else(|| panic!("no {column} line:\n{status}"));
        assert!(line.contains("k1"), "{line}");
    }
    assert!(
        status.contains("run `integration-host crypto rewrap`"),
        "{status}"
    );

    // One row per batch: the progress shows every batch.
    let out = ok(&run(config.clone(), &["crypto", "rewrap", "--batch-size", "1"]).await);
    assert!(
        out.contains("oauth_consumer.secret: 1 checked, 1 resealed"),
        "{out}"
    );
    assert!(
        out.contains("every stored secret is sealed with `k2`"),
        "{out}"
    );
    // Run again (as after an interruption): nothing left to do.
    let again = ok(&run(config.clone(), &["crypto", "rewrap"]).await);
    assert!(
        again.contains("done oauth_token.secret: 1 values, 0 resealed"),
        "{again}"
    );
    let status = ok(&run(config.clone(), &["crypto", "status"]).await);
    assert!(
        status.contains("every stored secret is sealed with `k2`"),
        "{status}"
    );
    assert!(
        status.contains("keys no stored secret needs (they may be removed once every server seals with `k2`): k1"),
        "{status}"
    );

    // The old keys removed: everything stored still works; tokens signed with t1 do not.
    let mut after = app.settings.clone();
    after.crypto.secret_keys = vec![k2];
    after.tokens.signing_keys = vec![t2];
    let server = Application::build(after.clone()).await.expect("builds");
    let base = format!("http://127.0.0.1:{}", server.port());
    tokio::spawn(server.run_until_stopped());
    let mut caller = caller;
    caller.base = base.clone();
    let (status, body) = send_json(caller.request("GET", "/rest/V1/integrations/me")).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = send_json(
        app.client
            .get(format!("{base}/rest/V1/integrations"))
            .bearer_auth(&old_jwt),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, jwt) = send_json(
        app.client
            .post(format!("{base}/rest/V1/integration/admin/token"))
            .json(&json!({"username": "jane", "password": "secret123"})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = send_json(
        app.client
            .get(format!("{base}/rest/V1/integrations"))
            .bearer_auth(jwt.as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 200);
    let only_new = app.config_file_for(&after, "after.toml");
    let status = ok(&run(only_new, &["crypto", "status"]).await);
    assert!(!status.contains("not configured"), "{status}");
}

#[tokio::test]
async fn a_value_no_configured_key_opens_is_named_and_left_alone() {
    let app = spawn_app().await;
    app.minted_integration("Lost key", &["Magento_Backend::all"])
        .await;
    // A configuration that lost k1 altogether.
    let mut lost = app.settings.clone();
    lost.crypto.secret_keys = vec![KeySpec::generate("k2")];
    let config = app.config_file_for(&lost, "lost.toml");
    let out =
        tokio::task::spawn_blocking(move || run_binary(&config, &["crypto", "rewrap"], "", &[]))
            .await
            .unwrap();
    assert!(!out.status.success(), "{}", show(&out));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot reseal oauth_consumer.secret of row")
            && err.contains("sealed with key `k1`, which is not configured"),
        "{err}"
    );
    assert!(
        err.contains("3 stored secret(s) could not be opened"),
        "{err}"
    );
    // Nothing was changed: the server with k1 still reads it.
    let caller = app
        .minted_integration("Still readable", &["Magento_Backend::all"])
        .await;
    let (status, _) = send_json(caller.request("GET", "/rest/V1/integrations/me")).await;
    assert_eq!(status, 200);
}

/// The keys a node runs with in one phase of a rotation.
#[derive(Clone)]
struct Phase {
    secret: Vec<KeySpec>,
    next_secret: Vec<KeySpec>,
    signing: Vec<KeySpec>,
    next_signing: Vec<KeySpec>,
}

fn node_config(
    dir: &std::path::Path,
    n: usize,
    db: &TestDb,
    lookup: &KeySpec,
    phase: &Phase,
) -> std::path::PathBuf {
    let list = |ks: &[KeySpec]| {
        ks.iter()
            .map(|k| format!("{:?}", k.expose()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let path = dir.join(format!("node{n}.toml"));
    std::fs::write(
        &path,
        format!(
            "data_dir = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n[database]\nurl = {:?}\npool_size = 4\n[crypto]\nsecret_keys = [{}]\nnext_secret_keys = [{}]\nlookup_key = {:?}\n[tokens]\nsigning_keys = [{}]\nnext_signing_keys = [{}]\n[cron]\nenabled = false\n[log]\nformat = \"json\"\n",
            dir.join(format!("data{n}")).display().to_string(),
            db.url_string(),
            list(&phase.secret),
            list(&phase.next_secret),
            lookup.expose(),
            list(&phase.signing),
            list(&phase.next_signing),
        ),
    )
    .unwrap();
    path
}

/// What the load saw: requests answered as expected, and every other answer.
#[derive(Default, Debug)]
struct Seen {
    ok: u64,
    failed: Vec<String>,
}

/// One round of work across two nodes: sign in on `a`, create and activate an integration on
/// `b` with that token, read it back on `a`, and call the API with its new OAuth credentials on
/// both. Every stored secret and signed token crosses from one node to the other.
async fn round(client: &reqwest::Client, a: &str, b: &str, n: u64, seen: &Mutex<Seen>) {
    let check = |what: &str, status: u16, body: &serde_json::Value| {
        let mut s = seen.lock().unwrap();
        if status == 200 {
            s.ok += 1;
            true
        } else {
            s.failed.push(format!("{what}: {status} {body}"));
            false
        }
    };
    let (status, jwt) = send_json(
        client
            .post(format!("{a}/rest/V1/integration/admin/token"))
            .json(&json!({"username": "jane", "password": "secret123"})),
    )
    .await;
    if !check(&format!("sign in on {a}"), status, &jwt) {
        return;
    }
    let jwt = jwt.as_str().unwrap().to_owned();
    let (status, created) = send_json(
        client
            .post(format!("{b}/rest/V1/integrations"))
            .bearer_auth(&jwt)
            .json(&json!({"name": format!("Load {n} {}", rand_suffix()), "all_resources": true})),
    )
    .await;
    if !check(
        &format!("create on {b} with a token of {a}"),
        status,
        &created,
    ) {
        return;
    }
    let id = created["id"].as_i64().unwrap();
    let (status, activated) = send_json(
        client
            .post(format!("{b}/rest/V1/integrations/{id}/activate"))
            .bearer_auth(&jwt),
    )
    .await;
    if !check(&format!("activate on {b}"), status, &activated) {
        return;
    }
    let (status, body) = send_json(
        client
            .get(format!("{a}/rest/V1/integrations/{id}"))
            .bearer_auth(&jwt),
    )
    .await;
    check(&format!("read on {a}"), status, &body);
    let c = &activated["credentials"];
    for base in [a, b] {
        let caller = integration_host_tests::Caller {
            integration_id: id,
            consumer_id: 0,
            key: c["consumer_key"].as_str().unwrap().to_owned(),
            secret: c["consumer_secret"].as_str().unwrap().to_owned(),
            token: c["access_token"].as_str().unwrap().to_owned(),
            token_secret: c["access_token_secret"].as_str().unwrap().to_owned(),
            base: base.to_owned(),
            client: client.clone(),
        };
        let (status, body) = send_json(caller.request("GET", "/rest/V1/integrations/me")).await;
        check(&format!("signed call on {base}"), status, &body);
    }
}

fn rand_suffix() -> String {
    integration_host::crypto::random_string(8)
}

#[tokio::test]
async fn a_two_phase_rotation_on_two_processes_under_load_fails_no_request() {
    let env = CliEnv::new().await;
    ok(&env.run(
        &[
            "admin",
            "create",
            "--username",
            "jane",
            "--email",
            "jane@example.com",
        ],
        "secret123\n",
    ));
    let dir = tempfile::tempdir().unwrap();
    let lookup = KeySpec::generate("lookup");
    let (k1, k2) = (KeySpec::generate("k1"), KeySpec::generate("k2"));
    let (t1, t2) = (KeySpec::generate("t1"), KeySpec::generate("t2"));
    let phases = [
        // Where every node starts.
        Phase {
            secret: vec![k1.clone()],
            next_secret: vec![],
            signing: vec![t1.clone()],
            next_signing: vec![],
        },
        // Phase one: the new keys announced everywhere.
        Phase {
            secret: vec![k1.clone()],
            next_secret: vec![k2.clone()],
            signing: vec![t1.clone()],
            next_signing: vec![t2.clone()],
        },
        // Phase two: promoted everywhere.
        Phase {
            secret: vec![k2.clone(), k1.clone()],
            next_secret: vec![],
            signing: vec![t2.clone(), t1.clone()],
            next_signing: vec![],
        },
        // After `crypto rewrap`: the old keys removed.
        Phase {
            secret: vec![k2.clone()],
            next_secret: vec![],
            signing: vec![t2.clone()],
            next_signing: vec![],
        },
    ];
    let mut nodes: Vec<ServerProcess> = (0..2)
        .map(|n| {
            let config = node_config(dir.path(), n, &env.db, &lookup, &phases[0]);
            ServerProcess::start(&config, &[], &[])
        })
        .collect();
    // The nodes a load balancer sends to: a node leaves before it stops and returns once it
    // listens, as with /readyz and a drain.
    let up: Arc<Mutex<Vec<String>>> =
        Arc::new(Mutex::new(nodes.iter().map(|n| n.url("")).collect()));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let load = {
        let (up, seen, stop, client) = (up.clone(), seen.clone(), stop.clone(), client.clone());
        tokio::spawn(async move {
            let mut n = 0u64;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                n += 1;
                let pair = {
                    let up = up.lock().unwrap();
                    let i = (n as usize) % up.len();
                    (up[i].clone(), up[(i + 1) % up.len()].clone())
                };
                round(&client, &pair.0, &pair.1, n, &seen).await;
            }
        })
    };
    let wait_for_rounds = |rounds: u64| {
        let seen = seen.clone();
        async move {
            let start = seen.lock().unwrap().ok;
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while seen.lock().unwrap().ok < start + rounds * 6 {
                assert!(std::time::Instant::now() < deadline, "the load stalled");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    wait_for_rounds(2).await;
    for (p, phase) in phases.iter().enumerate().skip(1) {
        if p == 3 {
            // Every node seals with k2: re-seal what k1 sealed, while the load runs.
            let config = node_config(dir.path(), 9, &env.db, &lookup, &phases[2]);
            let out = tokio::task::spawn_blocking(move || {
                run_binary(&config, &["crypto", "rewrap"], "", &[])
            })
            .await
            .unwrap();
            let out = ok(&out);
            assert!(
                out.contains("every stored secret is sealed with `k2`"),
                "{out}"
            );
        }
        for (i, node) in nodes.iter_mut().enumerate() {
            // Out of the balancer, then stopped (in-flight requests finish), then restarted
            // with the phase's keys and back in.
            let leaving = node.url("");
            up.lock().unwrap().retain(|u| *u != leaving);
            tokio::time::sleep(Duration::from_millis(500)).await;
            let config = node_config(dir.path(), i, &env.db, &lookup, phase);
            let old = std::mem::replace(node, ServerProcess::start(&config, &[], &[]));
            let status = tokio::task::spawn_blocking(move || old.stop())
                .await
                .unwrap();
            assert!(status.success());
            up.lock().unwrap().push(node.url(""));
            wait_for_rounds(2).await;
        }
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    load.await.unwrap();
    let config = node_config(dir.path(), 9, &env.db, &lookup, &phases[3]);
    let status = ok(&tokio::task::spawn_blocking(move || {
        run_binary(&config, &["crypto", "status"], "", &[])
    })
    .await
    .unwrap());
    assert!(
        status.contains("every stored secret is sealed with `k2`"),
        "{status}"
    );
    let seen = seen.lock().unwrap();
    assert!(
        seen.failed.is_empty(),
        "{} of {} requests failed during the rotation: {:#?}",
        seen.failed.len(),
        seen.ok + seen.failed.len() as u64,
        seen.failed
    );
    assert!(seen.ok > 100, "{seen:?}");
}
