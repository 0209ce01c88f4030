//! The whole handshake and signed REST calls driven by real third-party OAuth clients, as an
//! integrator would run them: Python `requests-oauthlib` and npm `oauth-1.0a`
//! (`tests/clients/`). Each client receives the activation POST on its own local listener.
//! The clients are installed by `scripts/test`; a missing client fails the test.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use integration_host::domain::{IntegrationStatus, SetupType};
use integration_host::services::integration::{Activation, IntegrationForm, IntegrationInput};
use integration_host_tests::spawn_app;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt as _, BufReader};

const NAME: &str = "Café Sync ~ A+B";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn python() -> tokio::process::Command {
    let python = std::env::var_os("TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/test-clients/venv/bin/python"));
    assert!(
        python.exists(),
        "{} is missing: run scripts/test, which installs tests/clients/python/requirements.txt into it",
        python.display()
    );
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg(workspace().join("tests/clients/python/client.py"));
    cmd
}

fn node() -> tokio::process::Command {
    let dir = workspace().join("tests/clients/node");
    assert!(
        dir.join("node_modules/oauth-1.0a").exists(),
        "{}/node_modules is missing: run scripts/test, which runs `npm ci` there",
        dir.display()
    );
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(dir.join("client.js"));
    cmd
}

/// Runs one client against a fresh server and checks everything it saw.
async fn drive(mut client: tokio::process::Command, label: &str) {
    let app = spawn_app().await;
    let mut child = client
        .arg(&app.address)
        .arg(NAME)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{label} client does not start: {e}"));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
        .await
        .expect("the client says where it listens")
        .unwrap()
        .expect("a first line");
    let port = serde_json::from_str::<Value>(&first).unwrap()["listening"]
        .as_u64()
        .unwrap_or_else(|| panic!("{label}: {first}"));

    let form = IntegrationForm {
        name: NAME.into(),
        endpoint: Some(format!("http://127.0.0.1:{port}/activate")),
        identity_link_url: Some("https://partner.example/login".into()),
        resources: vec!["Magento_Integration::integrations".into()],
        ..Default::default()
    };
    let created = app
        .integrations
        .create(IntegrationInput::parse(&form, SetupType::Manual).unwrap())
        .await
        .unwrap();
    let outcome = app.integrations.activate(created.id, false).await.unwrap();
    assert!(
        matches!(outcome, Activation::IdentityLink(_)),
        "{outcome:?}"
    );

    let last = tokio::time::timeout(Duration::from_secs(60), lines.next_line())
        .await
        .expect("the client finishes within 60 s")
        .unwrap();
    let status = child.wait().await.unwrap();
    let mut stderr = String::new();
    if let Some(mut e) = child.stderr.take() {
        use tokio::io::AsyncReadExt as _;
        e.read_to_string(&mut stderr).await.ok();
    }
    let last = last.unwrap_or_else(|| panic!("{label} printed no result; stderr:\n{stderr}"));
    assert!(status.success(), "{label} failed: {last}\n{stderr}");
    let report: Value = serde_json::from_str(&last).unwrap();

    // The activation POST and the handshake.
    let activation = &report["activation"];
    assert!(
        activation["content_type"]
            .as_str()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded"),
        "{activation}"
    );
    assert_eq!(
        activation["fields"],
        json!([
            "oauth_consumer_key",
            "oauth_consumer_secret",
            "oauth_verifier",
            "store_base_url"
        ])
    );
    assert_eq!(
        activation["store_base_url"],
        app.settings.server.base_url.as_str()
    );
    assert_eq!(report["request_token_length"], 32, "{report}");
    assert_eq!(report["callback_confirmed"], "true");
    assert_eq!(report["access_token_length"], 32, "{report}");
    assert_eq!(
        app.integrations.get(created.id).await.unwrap().status,
        IntegrationStatus::Active
    );

    // The signed calls.
    let steps: Vec<&Value> = report["steps"].as_array().unwrap().iter().collect();
    let step = |name: &str| -> &Value {
        steps
            .iter()
            .find(|s| s["step"] == name)
            .unwrap_or_else(|| panic!("{label}: no step {name} in {report}"))
    };
    let ok = |name: &str| -> &Value {
        let s = step(name);
        assert_eq!(s["status"], 200, "{label} {name}: {s}");
        &s["body"]
    };
    let list = ok("list");
    assert_eq!(list["total_count"], 1, "{label}: {list}");
    assert_eq!(list["items"][0]["name"], NAME);
    let made = ok("create");
    let made_name = format!(
        "Créé par {} + ~ test",
        if label == "python" { "Python" } else { "Node" }
    );
    assert_eq!(made["name"], made_name.as_str());
    assert_eq!(
        made["resources"],
        json!([
            "Magento_Backend::admin",
            "Magento_Catalog::catalog",
            "Magento_Catalog::catalog_inventory",
            "Magento_Catalog::products",
            "Magento_Sales::actions",
            "Magento_Sales::cancel",
            "Magento_Sales::sales",
            "Magento_Sales::sales_operation",
            "Magento_Sales::sales_order",
        ])
    );
    assert_eq!(ok("get")["id"], made["id"]);
    assert_eq!(ok("update")["all_resources"], true);
    assert_eq!(ok("delete")["id"], made["id"]);
    assert!(
        app.integrations
            .find_by_name(&made_name)
            .await
            .unwrap()
            .is_none()
    );
    // Magento's search criteria, signed by the client (oauth-1.0a's base string has the query
    // names as sent: `oauth.tolerate_undecoded_query_names`): a LIKE with a non-ASCII letter
    // ORed with an eq, ANDed with a status list, sorted, one page.
    let searched = ok("search_criteria");
    assert_eq!(searched["total_count"], 1, "{label}: {searched}");
    assert_eq!(searched["items"][0]["name"], NAME, "{label}: {searched}");
    assert_eq!(
        searched["search_criteria"],
        json!({
            "filter_groups": [
                {"filters": [
                    {"field": "name", "value": "café%", "condition_type": "like"},
                    {"field": "name", "value": "nobody", "condition_type": "eq"},
                ]},
                {"filters": [{"field": "status", "value": "1,2", "condition_type": "in"}]},
            ],
            "sort_orders": [{"field": "created_at", "direction": "DESC"}],
            "page_size": 10,
            "current_page": 1,
        }),
        "{label}"
    );
    ok("replay_first");
    let replay = step("replay_second");
    assert_eq!(replay["status"], 401, "{label}: {replay}");
    // Magento's REST shape: the template, and its values in `parameters`.
    assert_eq!(
        replay["body"],
        json!({
            "message": "The nonce is already being used by the consumer with ID %1",
            "parameters": [created.consumer_id.to_string()],
        })
    );
    app.db.destroy().await;
}

#[tokio::test]
async fn python_requests_oauthlib_runs_the_handshake_and_signed_calls() {
    drive(python(), "python").await;
}

#[tokio::test]
async fn npm_oauth_1_0a_runs_the_handshake_and_signed_calls() {
    drive(node(), "node").await;
}

/// npm oauth-1.0a's base string (query names as the URL writes them, not decoded) is accepted
/// by default and refused with `oauth.tolerate_undecoded_query_names = false`; the standard base
/// string is accepted either way, and a name that needs no decoding gives no second candidate.
#[tokio::test]
async fn a_signature_over_undecoded_query_names_is_tolerated_unless_turned_off() {
    use integration_host_tests::{oauth_header_undecoded_query_names, send_json, spawn_app_with};
    for tolerate in [true, false] {
        let app = spawn_app_with(|s| s.oauth.tolerate_undecoded_query_names = tolerate).await;
        let caller = app
            .minted_integration("Lister", &["Magento_Integration::integrations"])
            .await;
        let path = "/rest/V1/integrations?searchCriteria%5BpageSize%5D=10&name=Lister";
        let url = format!("{}{path}", caller.base);
        let header = oauth_header_undecoded_query_names(
            "GET",
            &url,
            (&caller.key, &caller.secret, &caller.token_secret),
            &[("oauth_token", &caller.token)],
        );
        let (status, body) =
            send_json(caller.client.get(&url).header("Authorization", header)).await;
        if tolerate {
            assert_eq!(status, 200, "{body}");
            assert_eq!(body["total_count"], 1, "{body}");
        } else {
            assert_eq!(status, 401, "{body}");
            assert_eq!(
                body["message"],
                "The signature is invalid. Verify and try again."
            );
        }
        let (status, body) = send_json(caller.request("GET", path)).await;
        assert_eq!(status, 200, "the standard base string: {body}");
        app.db.destroy().await;
    }
}
