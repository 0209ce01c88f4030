//! docs/operations.md as an operator follows it: every `sh` block run in order, in one shell,
//! on a scratch root (absolute paths under /etc, /var and /usr/local moved into a temporary
//! folder, the example ports replaced by free ones), every file shown with its absolute path
//! (`# /etc/...` on its first line) written as shown, `systemctl` starting the unit's
//! `ExecStart` as its `User` with its `UMask` and stopping it with its `KillSignal`, and
//! `journalctl` reading what the unit wrote. A PostgreSQL server of the test's own stands in for
//! `DATABASE_URL` and `RESTORE_URL`. And every `integration-host …` command the page names in
//! passing is one the binary knows.

use std::path::Path;
use std::time::Duration;

use integration_host_tests::{
    PrivatePostgres, binary, code_blocks, free_port, run_binary, run_guide, show,
};
use sqlx::Connection as _;

/// Moves absolute paths under /etc, /var and /usr/local below `root`, wherever a path starts
/// (after a space, a quote, `=`, or at the start of a line).
fn rooted(text: &str, root: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut prev: Option<char> = None;
    let mut i = 0;
    while i < text.len() {
        let rest = &text[i..];
        let at_start = prev.is_none_or(|c| c.is_whitespace() || matches!(c, '"' | '\'' | '='));
        if at_start
            && ["/etc", "/var", "/usr/local"].iter().any(|p| {
                rest.starts_with(p)
                    && rest[p.len()..]
                        .chars()
                        .next()
                        .is_none_or(|c| c == '/' || c.is_whitespace() || c == '"')
            })
        {
            out.push_str(root);
        }
        let c = rest.chars().next().unwrap();
        out.push(c);
        prev = Some(c);
        i += c.len_utf8();
    }
    out
}

/// The stand-ins for what a real machine has: systemd and its journal.
const PRELUDE: &str = r#"
# The folders every Debian machine has.
mkdir -p -m 0755 "$ROOT/etc/systemd/system" "$ROOT/var/lib" "$ROOT/var/backups" "$ROOT/usr/local/bin"
UNITS="$ROOT/etc/systemd/system"
JOURNAL="$ROOT/journal.log"
_unit() { sed -n "s/^$2=//p" "$UNITS/$1.service" | tail -n 1; }
_unit_start() {
  local exec user group mask
  exec=$(_unit "$1" ExecStart); user=$(_unit "$1" User); group=$(_unit "$1" Group)
  mask=$(_unit "$1" UMask)
  ( umask "${mask:-0022}"; exec setpriv --reuid="$user" --regid="${group:-$user}" --init-groups -- $exec >>"$JOURNAL" 2>&1 ) &
  echo $! > "$ROOT/$1.pid"
}
_unit_stop() {
  local pid signal
  pid=$(cat "$ROOT/$1.pid"); signal=$(_unit "$1" KillSignal)
  kill -s "${signal#SIG}" "$pid" 2>/dev/null || return 0
  for _ in $(seq 600); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  echo "$1 did not stop" >&2; return 1
}
systemctl() {
  local cmd=$1; shift
  case "$cmd" in
    daemon-reload) ls "$UNITS"/*.service >/dev/null ;;
    enable)
      if [ "$1" = --now ]; then shift; test -f "$UNITS/$1.service"; _unit_start "$1";
      else test -f "$UNITS/$1.service"; fi ;;
    start) _unit_start "$1" ;;
    stop) _unit_stop "$1" ;;
    restart) _unit_stop "$1"; _unit_start "$1" ;;
    *) echo "systemctl $cmd is not stood in for" >&2; return 1 ;;
  esac
}
journalctl() { cat "$JOURNAL"; }
trap 'for p in "$ROOT"/*.pid; do if [ -f "$p" ]; then kill -9 "$(cat "$p")" 2>/dev/null || true; fi; done' EXIT
"#;

#[tokio::test]
async fn every_command_of_the_operations_guide_runs_as_written() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let doc = std::fs::read_to_string(workspace.join("docs/operations.md")).unwrap();
    let scratch = tempfile::tempdir().unwrap();
    {
        use std::os::unix::fs::PermissionsExt as _;
        // The service's user must reach its folders under the scratch root.
        std::fs::set_permissions(scratch.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let root = scratch.path().display().to_string();
    let (api, metrics) = (free_port(), free_port());
    let adapt = |text: &str| {
        rooted(text, &root)
            .replace(
                "target/release/integration-host",
                &binary().display().to_string(),
            )
            .replace("127.0.0.1:8080", &format!("127.0.0.1:{api}"))
            .replace("127.0.0.1:9100", &format!("127.0.0.1:{metrics}"))
    };

    let mut script = format!("ROOT={root:?}\n{PRELUDE}\n");
    let (mut commands, mut files) = (0, 0);
    for (lang, text) in code_blocks(&doc) {
        let path = text
            .lines()
            .next()
            .and_then(|l| l.strip_prefix("# /"))
            .filter(|_| matches!(lang.as_str(), "toml" | "ini"));
        if let Some(path) = path {
            let target = adapt(&format!("/{path}"));
            script.push_str(&format!(
                "mkdir -p \"$(dirname {target:?})\"\ncat > {target:?} <<'DOC_FILE_END'\n{}DOC_FILE_END\n",
                adapt(&text)
            ));
            files += 1;
        } else if lang == "sh" {
            commands += text.lines().filter(|l| !l.trim().is_empty()).count();
            script.push_str(&adapt(&text));
        }
    }
    script.push_str("systemctl stop integration-host\n");
    assert!(
        commands >= 30 && files >= 2,
        "{commands} commands, {files} files"
    );

    // PostgreSQL for the backup section: a migrated database, and an empty one to restore to.
    let pg = PrivatePostgres::start();
    let url = pg.url();
    let config = scratch.path().join("pg.toml");
    std::fs::write(&config, "").unwrap();
    let out = run_binary(&config, &["migrate"], "", &[("APP_DATABASE__URL", &url)]);
    assert!(out.status.success(), "{}", show(&out));
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE DATABASE restored")
        .execute(&mut conn)
        .await
        .unwrap();
    let restore_url = format!("{}/restored", url.strip_suffix("/postgres").unwrap());
    let pg_bin = std::fs::read_dir("/usr/lib/postgresql")
        .unwrap()
        .flatten()
        .map(|e| e.path().join("bin"))
        .find(|b| b.join("pg_dump").exists())
        .expect("pg_dump is installed");

    let script_path = scratch.path().join("guide.sh");
    std::fs::write(&script_path, &script).unwrap();
    let path = format!(
        "{root}/usr/local/bin:{}:{}",
        pg_bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = run_guide(
        &script_path,
        move |cmd| {
            cmd.env("PATH", path)
                .env("DATABASE_URL", &url)
                .env("RESTORE_URL", &restore_url);
        },
        Duration::from_secs(300),
    )
    .await;
    let journal = std::fs::read_to_string(scratch.path().join("journal.log")).unwrap_or_default();
    assert!(out.status.success(), "{}\njournal:\n{journal}", show(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("\"status\":\"ready\""), "{stdout}");

    // What the guide promised holds.
    use std::os::unix::fs::PermissionsExt as _;
    let mode = |p: &str| {
        std::fs::metadata(scratch.path().join(p))
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    };
    assert_eq!(mode("etc/integration-host"), 0o750);
    assert_eq!(mode("etc/integration-host/secret-key"), 0o640);
    assert_eq!(mode("etc/integration-host/config.toml"), 0o640);
    assert_eq!(mode("var/lib/integration-host"), 0o700);
    assert_eq!(
        mode("var/lib/integration-host/integration-host.sqlite"),
        0o600
    );
    assert_eq!(mode("var/lib/integration-host/first-admin-password"), 0o600);
    let password = std::fs::read_to_string(
        scratch
            .path()
            .join("var/lib/integration-host/first-admin-password"),
    )
    .unwrap();
    assert!(
        stdout.contains(password.trim()),
        "the guide shows the password once"
    );
    assert!(
        !journal.contains(password.trim()),
        "the password reached the journal"
    );
    // The restored PostgreSQL database holds the schema.
    let mut restored = sqlx::PgConnection::connect(&format!(
        "{}/restored",
        pg.url().strip_suffix("/postgres").unwrap()
    ))
    .await
    .unwrap();
    let tables: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM information_schema.tables WHERE table_name IN ('oauth_consumer', 'oauth_token', 'admin_user')",
    )
    .fetch_one(&mut restored)
    .await
    .unwrap();
    assert_eq!(tables, 3);
}

#[test]
fn every_command_the_guides_name_exists() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut checked = std::collections::BTreeSet::new();
    for doc in ["docs/operations.md", "docs/plugins.md", "README.md"] {
        let text = std::fs::read_to_string(workspace.join(doc)).unwrap();
        for span in text.split('`').skip(1).step_by(2) {
            let Some(rest) = span.strip_prefix("integration-host ") else {
                continue;
            };
            let words: Vec<&str> = rest
                .split_whitespace()
                .filter(|w| !w.starts_with('-'))
                .take_while(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '-'))
                .take(2)
                .collect();
            if words.is_empty() || !checked.insert(words.join(" ")) {
                continue;
            }
            let mut args = words.clone();
            args.push("--help");
            let out = std::process::Command::new(binary())
                .args(&args)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{doc} names `integration-host {}`, which the binary does not know:\n{}",
                words.join(" "),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    assert!(checked.len() >= 10, "{checked:?}");
}
