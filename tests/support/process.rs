//! The built binary: run as a command, or as a server process read from its log.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use integration_host::config::KeySpec;
use integration_host::store::Store;

use super::*;

/// The `integration-host` binary of this build, built on first use. A missing binary fails the
/// test; it never skips it.
pub fn binary() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>/deps/<test>")
            .to_owned();
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut cmd = Command::new(cargo);
        cmd.current_dir(workspace).args([
            "build",
            "--quiet",
            "-p",
            "integration-host",
            "--bin",
            "integration-host",
        ]);
        if profile_dir.file_name().is_some_and(|n| n == "release") {
            cmd.arg("--release");
        }
        let status = cmd.status().expect("run cargo build");
        assert!(
            status.success(),
            "building the integration-host binary failed"
        );
        let bin = profile_dir.join("integration-host");
        assert!(bin.exists(), "{} is missing after the build", bin.display());
        bin
    })
}

/// A configuration folder for running the binary against one test database.
#[derive(Debug)]
pub struct CliEnv {
    pub db: TestDb,
    pub config: PathBuf,
}

impl CliEnv {
    /// A fresh database and a configuration file pointing at it. With PostgreSQL the file
    /// carries keys, as production must.
    pub async fn new() -> Self {
        let db = TestDb::new().await;
        Self::on(db)
    }

    pub fn on(db: TestDb) -> Self {
        let config = db.dir.path().join("config.toml");
        let data_dir = db.dir.path().join("data");
        let mut text = format!(
            "data_dir = {:?}\n[server]\nlisten = \"127.0.0.1:0\"\nworkers = 2\n[database]\nurl = {:?}\npool_size = 4\n[log]\nlevel = \"info\"\nformat = \"json\"\n",
            data_dir.display().to_string(),
            db.url_string()
        );
        if db.postgres.is_some() {
            text.push_str(&format!(
                "[crypto]\nsecret_keys = [{:?}]\nlookup_key = {:?}\n[tokens]\nsigning_keys = [{:?}]\n",
                KeySpec::generate("k1").expose(),
                KeySpec::generate("lookup").expose(),
                KeySpec::generate("t1").expose()
            ));
        }
        std::fs::write(&config, text).expect("write config");
        Self { db, config }
    }

    /// Runs the binary with `--config` and `args`, feeding `stdin`; waits for it to exit.
    pub fn run(&self, args: &[&str], stdin: &str) -> Output {
        run_binary(&self.config, args, stdin, &[])
    }

    /// Opens the test database as the server would.
    pub async fn store(&self) -> Store {
        let s = integration_host::config::DatabaseSettings::default();
        Store::connect(&self.db.url, &s).await.expect("open store")
    }
}

/// Runs the binary with a configuration file, extra environment, and standard input.
/// The built binary as an operator runs it: none of the test process's `APP_*` settings or
/// `INTEGRATION_HOST_CONFIG` leak into it.
pub fn command() -> Command {
    let mut cmd = Command::new(binary());
    cmd.env_remove("INTEGRATION_HOST_CONFIG");
    for (k, _) in std::env::vars() {
        if k.starts_with("APP_") {
            cmd.env_remove(k);
        }
    }
    cmd
}

pub fn run_binary(config: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    use std::io::Write as _;
    let mut cmd = command();
    cmd.arg("--config").arg(config).args(args);
    cmd.envs(env.iter().copied());
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start integration-host");
    child.stdin.take().unwrap().write_all(stdin.as_bytes()).ok();
    child.wait_with_output().expect("wait for integration-host")
}

/// Text of standard output and error, for assertion messages.
pub fn show(out: &Output) -> String {
    format!(
        "status: {}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The binary running `serve`, with its output captured.
#[derive(Debug)]
pub struct ServerProcess {
    child: std::process::Child,
    pub port: u16,
    stdout: std::sync::Arc<std::sync::Mutex<String>>,
    stderr: std::sync::Arc<std::sync::Mutex<String>>,
}

impl ServerProcess {
    /// Starts `integration-host --config CONFIG serve ARGS` and waits until it listens.
    pub fn start(config: &Path, args: &[&str], env: &[(&str, &str)]) -> Self {
        use std::io::BufRead as _;
        use std::sync::{Arc, Mutex};
        let mut cmd = command();
        cmd.arg("--config").arg(config).arg("serve").args(args);
        cmd.envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start integration-host serve");
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        for (pipe, buf) in [
            (
                Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
                stdout.clone(),
            ),
            (Box::new(child.stderr.take().unwrap()), stderr.clone()),
        ] {
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(pipe).lines() {
                    let Ok(line) = line else { break };
                    let mut b = buf.lock().unwrap();
                    b.push_str(&line);
                    b.push('\n');
                }
            });
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        let port = loop {
            if let Some(port) = find_port(&stderr.lock().unwrap()) {
                break port;
            }
            if let Ok(Some(status)) = child.try_wait() {
                std::thread::sleep(Duration::from_millis(200));
                panic!(
                    "integration-host serve exited with {status} before listening:\n{}\n{}",
                    stdout.lock().unwrap(),
                    stderr.lock().unwrap()
                );
            }
            assert!(
                std::time::Instant::now() < deadline,
                "integration-host serve did not listen within 60 s:\n{}",
                stderr.lock().unwrap()
            );
            std::thread::sleep(Duration::from_millis(50));
        };
        Self {
            child,
            port,
            stdout,
            stderr,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Standard output once it contains `needle` (the server prints after it logs that it
    /// listens, and the two pipes are read apart); panics after `limit`.
    pub fn wait_stdout(&self, needle: &str, limit: Duration) -> String {
        let deadline = std::time::Instant::now() + limit;
        loop {
            let out = self.stdout();
            if out.contains(needle) {
                return out;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "`{needle}` not printed within {limit:?}; stdout:\n{out}\nstderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stdout(&self) -> String {
        self.stdout.lock().unwrap().clone()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        use nix::sys::signal::{Signal, kill};
        use nix::unistd::Pid;
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).expect("send SIGTERM");
    }

    /// Waits up to `limit` for the process to exit; returns its status.
    pub fn wait_exit(&mut self, limit: Duration) -> std::process::ExitStatus {
        let deadline = std::time::Instant::now() + limit;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the server did not exit within {limit:?}:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (SIGTERM) and waits for it.
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.terminate();
        self.wait_exit(Duration::from_secs(30))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The port from the server's "listening" log line (JSON or text).
fn find_port(log: &str) -> Option<u16> {
    log.lines()
        .filter(|l| l.contains("listening on http://"))
        .find_map(|l| {
            let rest = &l[l.find("listening on http://")? + "listening on http://".len()..];
            let addr: String = rest
                .chars()
                .take_while(|c| !c.is_whitespace() && *c != '"')
                .collect();
            addr.rsplit(':').next()?.parse().ok()
        })
}
