//! `integration-host plugin new` for each language and role, then `plugin build`, then the
//! twelve plugins loaded by a running server and exercised end to end: the observers refuse
//! sign-ins, the resolvers deny requests, the providers declare integrations, the interceptors
//! refuse new integrations. A missing toolchain is a clear error, never a stack trace.
//!
//! Builds are cached under `target/plugin-new-builds`, keyed by the generated folder's content:
//! `plugin new` runs every time and must write the same files for a cached build to be used.

use std::path::{Path, PathBuf};

use integration_host::domain::AccountKind;
use integration_host_tests::{command, send_json, show, spawn_app_with};
use serde_json::json;
use sha2::Digest as _;

const LANGS: [(&str, &str); 3] = [("rust", "Rust"), ("js", "JS"), ("python", "Py")];
const ROLES: [&str; 4] = ["observer", "resolver", "provider", "interceptor"];

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// `integration-host ARGS` in `dir`, with the checkout's toolchains and no configuration.
fn cli(dir: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = command();
    cmd.current_dir(dir)
        .args(args)
        .env(
            "APP_PLUGINS__TOOLCHAINS_DIR",
            workspace().join("target/plugin-toolchains"),
        )
        .env(
            "APP_PLUGINS__CACHE_DIR",
            integration_host_tests::plugin_cache_dir(),
        )
        .env("APP_DATA_DIR", dir.join("data"))
        .output()
        .expect("run integration-host")
}

/// The files of a generated folder that decide its build, hashed (outputs aside).
fn content_hash(dir: &Path) -> String {
    fn walk(dir: &Path, root: &Path, h: &mut sha2::Sha256) {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.path())
            .collect();
        entries.sort();
        for p in entries {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            if ["target", "types", "bindings", "data"].contains(&name.as_str())
                || name.ends_with(".wasm")
                || name == "Cargo.lock"
            {
                continue;
            }
            if p.is_dir() {
                walk(&p, root, h);
            } else {
                h.update(p.strip_prefix(root).unwrap().to_string_lossy().as_bytes());
                h.update(std::fs::read(&p).unwrap());
            }
        }
    }
    let mut h = sha2::Sha256::new();
    walk(dir, dir, &mut h);
    format!("{:x}", h.finalize())
}

/// The component a plugin folder's manifest names.
fn component_of(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(dir.join("plugin.toml")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("component = "))
        .unwrap();
    dir.join(line.trim_start_matches("component = ").trim_matches('"'))
}

/// `plugin build`, or the cached result of building the same files before.
fn build(dir: &Path) {
    let cache = workspace()
        .join("target/plugin-new-builds")
        .join(format!("{}.wasm", content_hash(dir)));
    let component = component_of(dir);
    if cache.is_file() {
        std::fs::create_dir_all(component.parent().unwrap()).unwrap();
        std::fs::copy(&cache, &component).unwrap();
        // Checked as `plugin build` checks what it built.
        let out = cli(dir, &["plugin", "check", "."]);
        assert!(out.status.success(), "{}", show(&out));
        return;
    }
    let out = cli(dir, &["plugin", "build", "."]);
    assert!(out.status.success(), "{}: {}", dir.display(), show(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok: built; the plugin loads and starts"),
        "{}",
        show(&out)
    );
    std::fs::create_dir_all(cache.parent().unwrap()).unwrap();
    std::fs::copy(&component, &cache).unwrap();
}

/// Gives each generated plugin a setting of its own, naming its language.
fn configure(dir: &Path, role: &str, tag: &str) {
    let path = dir.join("plugin.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let lower = tag.to_lowercase();
    let text = match role {
        "observer" => text.replace(
            "blocked_domains = [\"blocked.example\"]",
            &format!("blocked_domains = [\"{lower}.example\"]"),
        ),
        "resolver" => text.replace(
            "denied_integrations = [\"Blocked Shop\"]",
            &format!("denied_integrations = [\"{tag} Shop\"]"),
        ),
        "provider" => text.replace(
            "integration_name = \"Provided Integration\"",
            &format!("integration_name = \"Provided by {tag}\""),
        ),
        _ => text.replace(
            "refused_prefix = \"Test \"",
            &format!("refused_prefix = \"{tag} test\""),
        ),
    };
    std::fs::write(&path, text).unwrap();
}

#[tokio::test]
async fn new_plugins_of_every_language_and_role_build_load_and_work() {
    let work = tempfile::tempdir().unwrap();
    let plugins = work.path().join("plugins");
    std::fs::create_dir_all(&plugins).unwrap();
    let sdk = workspace().join("plugins/sdk");
    for (lang, tag) in LANGS {
        for role in ROLES {
            let name = format!("{lang}-{role}");
            let out = cli(
                work.path(),
                &[
                    "plugin",
                    "new",
                    &name,
                    "--lang",
                    lang,
                    "--role",
                    role,
                    "--dir",
                    "plugins",
                    "--sdk",
                    &sdk.to_string_lossy(),
                ],
            );
            assert!(out.status.success(), "{}", show(&out));
            let dir = plugins.join(&name);
            for file in ["plugin.toml", "README.md"] {
                assert!(dir.join(file).is_file(), "{name}: no {file}");
            }
            match lang {
                "js" => assert!(dir.join("types/interfaces").is_dir(), "{name}: no types"),
                "python" => assert!(
                    dir.join("bindings/wit_world").is_dir(),
                    "{name}: no bindings"
                ),
                _ => assert!(dir.join("src/lib.rs").is_file()),
            }
            configure(&dir, role, tag);
            build(&dir);
        }
    }
    // A name taken, and a name that cannot be an id, are refused.
    let again = cli(
        work.path(),
        &[
            "plugin",
            "new",
            "js-observer",
            "--lang",
            "js",
            "--role",
            "observer",
            "--dir",
            "plugins",
        ],
    );
    assert!(!again.status.success());
    assert!(show(&again).contains("exists already"), "{}", show(&again));
    let bad = cli(
        work.path(),
        &[
            "plugin", "new", "Bad Name", "--lang", "js", "--role", "observer", "--dir", "plugins",
        ],
    );
    assert!(
        show(&bad).contains("cannot be a plugin id"),
        "{}",
        show(&bad)
    );

    let app = spawn_app_with(|s| {
        s.plugins.directories = vec![plugins.clone()];
        s.plugins.cache_dir = Some(integration_host_tests::plugin_cache_dir());
    })
    .await;
    assert!(
        app.plugins.problems().is_empty(),
        "{:?}",
        app.plugins.problems()
    );
    assert_eq!(app.plugins.list().len(), 12);
    app.account(AccountKind::Admin, "jane", "secret123").await;
    let (_, admin) = app
        .post_json(
            "/rest/V1/integration/admin/token",
            &json!({"username": "jane", "password": "secret123"}),
        )
        .await;
    let admin = admin.as_str().unwrap().to_owned();
    let (_, listed) = send_json(app.bearer("GET", "/rest/V1/integrations", &admin)).await;
    let names: Vec<&str> = listed["items"]
        .as_array()
        .or(listed.as_array())
        .unwrap()
        .iter()
        .filter_map(|i| i["name"].as_str())
        .collect();
    for (_, tag) in LANGS {
        let lower = tag.to_lowercase();
        // The observer refuses its domain's customers.
        let email = format!("jo@{lower}.example");
        app.account(AccountKind::Customer, &email, "secret123")
            .await;
        let (status, body) = app
            .post_json(
                "/rest/V1/integration/customer/token",
                &json!({"username": email, "password": "secret123"}),
            )
            .await;
        assert_eq!(status, 401, "{tag}: {body}");
        assert_eq!(body["message"], "Sign-in refused: blocked email domain.");
        // The resolver denies its integration.
        let shop = app
            .minted_integration(
                &format!("{tag} Shop"),
                &["Magento_Integration::integrations"],
            )
            .await;
        let (status, _) = send_json(shop.request("GET", "/rest/V1/integrations")).await;
        assert_eq!(status, 401, "{tag} resolver");
        // The provider's integration is there.
        let provided = format!("Provided by {tag}");
        assert!(names.contains(&provided.as_str()), "{provided}: {names:?}");
        // The interceptor refuses what it was told to.
        let (status, body) = send_json(
            app.bearer("POST", "/rest/V1/integrations", &admin)
                .json(&json!({"name": format!("{tag} test one")})),
        )
        .await;
        assert_eq!(status, 400, "{tag}: {body}");
        assert!(
            body["message"].as_str().unwrap().contains("are refused"),
            "{body}"
        );
    }
    // Everything else goes through: a customer of no blocked domain, an ordinary integration.
    app.account(AccountKind::Customer, "jo@example.com", "secret123")
        .await;
    let (status, _) = app
        .post_json(
            "/rest/V1/integration/customer/token",
            &json!({"username": "jo@example.com", "password": "secret123"}),
        )
        .await;
    assert_eq!(status, 200);
    let ordinary = app
        .minted_integration("Ordinary Shop", &["Magento_Integration::integrations"])
        .await;
    assert_eq!(
        send_json(ordinary.request("GET", "/rest/V1/integrations"))
            .await
            .0,
        200
    );
}

#[tokio::test]
async fn a_missing_toolchain_is_a_clear_error() {
    let work = tempfile::tempdir().unwrap();
    let out = command()
        .current_dir(work.path())
        .args([
            "plugin", "new", "hello", "--lang", "python", "--role", "observer",
        ])
        .env("APP_PLUGINS__TOOLCHAINS_DIR", work.path().join("nowhere"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let text = show(&out);
    assert!(
        text.contains("the Python plugin toolchain is not installed")
            && text.contains("scripts/plugin-toolchains"),
        "{text}"
    );
    assert!(
        !text.contains("panicked") && !text.contains("RUST_BACKTRACE"),
        "{text}"
    );
    assert!(
        !work.path().join("plugins/hello").exists(),
        "nothing written"
    );
}
