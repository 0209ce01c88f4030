//! docs/plugins.md's "From nothing to a loaded plugin" as a developer follows it: every `sh`
//! block of the section run in order, in one shell, in the checkout (where the guide says to
//! run them), and the file it shows written as shown. What the guide names `my-…` (its plugin
//! folder, data, configuration and log) is moved into a temporary folder, its port replaced by a
//! free one, and `target/release` (where the README's first command builds the binary) by the
//! folder of the binary under test (and the guide's two-second pause for a reload by a wait for
//! the server's log to say it reloaded: the rest of the suite keeps the machine busy). A Rust, a
//! JavaScript and a Python plugin are written, built, loaded by the server and seen refusing
//! sign-ins; the JavaScript one is changed, rebuilt and reloaded.

use std::path::Path;
use std::time::Duration;

use integration_host_tests::{binary, code_blocks, free_port, run_guide, show};

#[tokio::test]
async fn the_plugin_guide_takes_each_language_from_nothing_to_a_loaded_plugin() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let doc = std::fs::read_to_string(workspace.join("docs/plugins.md")).unwrap();
    let start = doc
        .find("\n## From nothing to a loaded plugin")
        .expect("the guide's section");
    let section = &doc[start + 1..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    let scratch = tempfile::tempdir().unwrap();
    let root = scratch.path().display().to_string();
    let port = free_port();
    let bin_dir = binary().parent().unwrap().display().to_string();
    let adapt = |text: &str| {
        text.replace("$PWD/target/release", &bin_dir)
            .replace("$PWD/my-", "my-")
            .replace("my-", &format!("{root}/my-"))
            .replace("127.0.0.1:8090", &format!("127.0.0.1:{port}"))
            .replace("localhost:8090", &format!("localhost:{port}"))
            // The pause for the reload of a changed plugin, as long as the reload takes: on a
            // machine busy with the rest of the suite the server may see the new component
            // before `plugin build` has cached it compiled, and compile it itself (seconds).
            .replace(
                "\nsleep 2\n",
                &format!(
                    "\nfor _ in $(seq 900); do [ \"$(grep -c 'plugin loaded\",\"plugin\":\"hello-js' {root}/my-server.log)\" -ge 2 ] && break; sleep 0.2; done\n"
                ),
            )
    };

    // The server the guide starts in the background stops with the script, whatever happens.
    let mut script = String::from("trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    let (mut commands, mut files) = (0, 0);
    for (lang, text) in code_blocks(section) {
        let file = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# "))
            .filter(|_| lang == "toml");
        if let Some(file) = file {
            script.push_str(&format!(
                "cat > {:?} <<'DOC_FILE_END'\n{}DOC_FILE_END\n",
                adapt(file),
                adapt(&text)
            ));
            files += 1;
        } else if lang == "sh" {
            commands += text
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .count();
            script.push_str(&adapt(&text));
        }
    }
    assert!(
        script.contains("\nfor _ in $(seq 900); do [ \"$(grep -c 'plugin loaded"),
        "the guide waits for the reload"
    );
    assert!(
        commands >= 20 && files == 1,
        "{commands} commands, {files} files"
    );
    for lang in ["rust", "js", "python"] {
        assert!(
            script.contains(&format!("plugin new hello-{lang} --lang {lang}"))
                && script.contains(&format!("plugin build {root}/my-plugins/hello-{lang}")),
            "the guide writes and builds a plugin in {lang}"
        );
    }

    let script_path = scratch.path().join("guide.sh");
    std::fs::write(&script_path, &script).unwrap();
    let out = run_guide(
        &script_path,
        move |cmd| {
            cmd.current_dir(workspace).env_remove("CARGO_TARGET_DIR");
        },
        Duration::from_secs(600),
    )
    .await;
    let log = std::fs::read_to_string(scratch.path().join("my-server.log")).unwrap_or_default();
    assert!(out.status.success(), "{}\nserver log:\n{log}", show(&out));

    // What the guide says each command shows.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        stdout
            .matches("ok: built; the plugin loads and starts")
            .count(),
        4,
        "{stdout}"
    );
    assert!(stdout.contains("{\"status\":\"ready\"}"), "{stdout}");
    assert_eq!(
        stdout
            .matches("{\"message\":\"Sign-in refused: blocked email domain.\"}")
            .count(),
        3,
        "{stdout}"
    );
    assert!(
        stdout.contains("{\"message\":\"No sign-ins from this domain.\"}"),
        "{stdout}"
    );
    for lang in ["rust", "js", "python"] {
        assert!(
            log.lines().any(|l| l.contains("sign-in refused")
                && l.contains(&format!("\"plugin\":\"hello-{lang}\""))
                && l.contains(&format!("jo@{lang}.example"))),
            "hello-{lang} refused its sign-in:\n{log}"
        );
    }
    // Built once by `plugin build`, compiled once into the cache it shares with the server.
    assert!(!log.contains("plugin loading"), "{log}");
}
