//! docs/plugins.md's "The roles, one by one" as a plugin author follows it: each role's
//! `plugin.toml` and `src/lib.rs` written into a plugin folder (with a `Cargo.toml` as
//! `plugin new` writes it), built for wasm32-wasip2, its unit tests run natively against the
//! SDK's test double, and its `plugin call` run and compared, line by line, with the output the
//! guide shows (the time taken aside). "Calling a plugin from the command line"'s example is run
//! on the sample it names the same way.
//!
//! The folders are kept under `target/doc-role-plugins` (one Cargo workspace), so a second run
//! builds only what changed.

use std::path::{Path, PathBuf};
use std::process::Command;

use integration_host_tests::{binary, code_blocks, plugin_cache_dir, plugin_component, show};

fn workspace() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap()
}

/// The part of `doc` from the heading `title` to the next heading of the same level.
fn section<'a>(doc: &'a str, title: &str) -> &'a str {
    let start = doc
        .find(&format!("\n{title}\n"))
        .unwrap_or_else(|| panic!("docs/plugins.md has no `{title}`"));
    let level = title.split(' ').next().unwrap();
    let rest = &doc[start + 1..];
    let end = rest[1..]
        .find(&format!("\n{level} "))
        .map_or(rest.len(), |i| i + 1);
    &rest[..end]
}

/// Writes `text` to `path` unless it holds it already (so cargo sees nothing changed).
fn write_if_changed(path: &Path, text: &str) {
    if std::fs::read_to_string(path).is_ok_and(|old| old == text) {
        return;
    }
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// Runs a guide's shell command in `dir`, with the binary under test on the PATH and the
/// server's data in `data`, as a reader's shell would (no configuration of the test's own).
fn run_shell(dir: &Path, command: &str, data: &Path) -> std::process::Output {
    let bin_dir = binary().parent().unwrap();
    let mut cmd = Command::new("bash");
    cmd.arg("-euo")
        .arg("pipefail")
        .arg("-c")
        .arg(command)
        .current_dir(dir)
        .env(
            "PATH",
            format!(
                "{}:{}",
                bin_dir.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        )
        .env_remove("INTEGRATION_HOST_CONFIG");
    for (k, _) in std::env::vars() {
        if k.starts_with("APP_") {
            cmd.env_remove(k);
        }
    }
    cmd.env("APP_DATA_DIR", data)
        .env("APP_PLUGINS__CACHE_DIR", plugin_cache_dir())
        .output()
        .expect("run bash")
}

/// What a `plugin call` printed, without the line of the time it took (which varies).
fn without_time(stdout: &[u8]) -> String {
    String::from_utf8_lossy(stdout)
        .lines()
        .filter(|l| !l.starts_with("time: "))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Cargo as a plugin author runs it in `dir`: none of this test build's own settings.
fn cargo(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .current_dir(dir)
        .args(args)
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_TARGET_DIR")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .expect("run cargo")
}

/// One role's example: its plugin's name, manifest, source, call and the output shown.
struct Example {
    role: String,
    name: String,
    manifest: String,
    source: String,
    call: String,
    shown: String,
}

fn examples(doc: &str) -> Vec<Example> {
    let roles = section(doc, "## The roles, one by one");
    let mut out = Vec::new();
    for part in roles.split("\n### ").skip(1) {
        let role = part.lines().next().unwrap().to_owned();
        let blocks = code_blocks(part);
        let find = |lang: &str| {
            blocks
                .iter()
                .find(|(l, _)| l == lang)
                .map(|(_, t)| t.clone())
                .unwrap_or_else(|| panic!("{role}: no `{lang}` block"))
        };
        let manifest = find("toml");
        let name = manifest
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# my-plugins/"))
            .and_then(|l| l.strip_suffix("/plugin.toml"))
            .unwrap_or_else(|| panic!("{role}: the manifest's first line names its file"))
            .to_owned();
        let source = find("rust");
        assert_eq!(
            source.lines().next(),
            Some(format!("// my-plugins/{name}/src/lib.rs").as_str()),
            "{role}: the source's first line names its file"
        );
        let (call, shown) = (find("sh"), find("text"));
        out.push(Example {
            role,
            name,
            manifest,
            source,
            call,
            shown,
        });
    }
    out
}

/// The SDK feature of a role, as `plugin new` enables it.
fn feature(role: &str) -> &'static str {
    match role {
        "Observer" => "observer",
        "Permission resolver" => "permission-resolver",
        "Config provider" => "config-provider",
        "Before-interceptor" => "before-interceptor",
        "After-interceptor" => "after-interceptor",
        "Credential verifier" => "credential-verifier",
        other => panic!("a role section the test does not know: {other}"),
    }
}

#[tokio::test]
async fn every_roles_example_builds_passes_its_unit_tests_and_answers_as_shown() {
    let doc = std::fs::read_to_string(workspace().join("docs/plugins.md")).unwrap();
    let examples = examples(&doc);
    let names: Vec<&str> = examples.iter().map(|e| e.role.as_str()).collect();
    assert_eq!(
        names,
        [
            "Observer",
            "Permission resolver",
            "Config provider",
            "Before-interceptor",
            "After-interceptor",
            "Credential verifier"
        ]
    );
    let root = workspace().join("target/doc-role-plugins");
    let sdk = workspace().join("plugins/sdk");
    let members: Vec<String> = examples
        .iter()
        .map(|e| format!("\"my-plugins/{}\"", e.name))
        .collect();
    write_if_changed(
        &root.join("Cargo.toml"),
        &format!(
            "[workspace]\nresolver = \"3\"\nmembers = [{}]\n\n[profile.release]\nopt-level = \"s\"\nlto = true\nstrip = true\n",
            members.join(", ")
        ),
    );
    for e in &examples {
        let dir = root.join("my-plugins").join(&e.name);
        let krate = e.name.replace('-', "_");
        write_if_changed(
            &dir.join("Cargo.toml"),
            &format!(
                "[package]\nname = \"{}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n[lib]\ncrate-type = [\"cdylib\"]\n\n[dependencies]\nintegration-host-sdk = {{ path = {:?}, features = [\"{}\"] }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\nserde_json = \"1\"\n",
                e.name,
                sdk.display().to_string(),
                feature(&e.role)
            ),
        );
        write_if_changed(&dir.join("src/lib.rs"), &e.source);
        // The component where this workspace builds it.
        let component = root
            .join("target/wasm32-wasip2/release")
            .join(format!("{krate}.wasm"));
        let manifest: String = e
            .manifest
            .lines()
            .map(|l| {
                if l.starts_with("component = ") {
                    format!("component = {:?}\n", component.display().to_string())
                } else {
                    format!("{l}\n")
                }
            })
            .collect();
        assert_ne!(manifest, e.manifest, "{}: no component line", e.role);
        write_if_changed(&dir.join("plugin.toml"), &manifest);
    }

    let built = cargo(&root, &["build", "--release", "--target", "wasm32-wasip2"]);
    assert!(built.status.success(), "{}", show(&built));
    let tested = cargo(&root, &["test"]);
    assert!(tested.status.success(), "{}", show(&tested));
    let passed: usize = String::from_utf8_lossy(&tested.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("test result: ok. "))
        .filter_map(|l| l.split(' ').next()?.parse::<usize>().ok())
        .sum();
    assert!(
        passed >= examples.len(),
        "every example has unit tests: {passed} passed\n{}",
        show(&tested)
    );

    let data = tempfile::tempdir().unwrap();
    for e in &examples {
        let out = run_shell(&root, e.call.trim(), data.path());
        assert!(out.status.success(), "{}: {}", e.role, show(&out));
        assert_eq!(
            without_time(&out.stdout),
            e.shown,
            "{}: {}",
            e.role,
            show(&out)
        );
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("\ntime: "),
            "{}",
            show(&out)
        );
    }
}

#[tokio::test]
async fn the_calling_sections_example_prints_what_it_shows() {
    let doc = std::fs::read_to_string(workspace().join("docs/plugins.md")).unwrap();
    let part = section(&doc, "## Calling a plugin from the command line");
    let (_, block) = code_blocks(part)
        .into_iter()
        .find(|(lang, _)| lang == "sh")
        .expect("an sh block");
    let mut lines = block.lines();
    let command = lines.next().unwrap();
    let shown: String = lines
        .filter_map(|l| l.strip_prefix("# "))
        .filter(|l| !l.starts_with("time: "))
        .map(|l| format!("{l}\n"))
        .collect();
    // The sample's component, as scripts/test builds it.
    let _: PathBuf = plugin_component("login_audit");
    let data = tempfile::tempdir().unwrap();
    let out = run_shell(workspace(), command, data.path());
    assert!(out.status.success(), "{}", show(&out));
    assert_eq!(without_time(&out.stdout), shown, "{}", show(&out));
}
