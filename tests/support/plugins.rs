//! Plugin folders for tests, from components built from source (a missing one fails the test).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The plugin components built from `plugins/` (the samples and the test plugins of
/// `tests/plugins/`) for `wasm32-wasip2`, built once per test run. A component that is missing
/// after the build fails the test; it never skips it.
pub fn plugin_component(name: &str) -> PathBuf {
    if let Some((_, folder)) = SCRIPTED.iter().find(|(n, _)| *n == name) {
        return scripted_component(name, folder);
    }
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let dir = BUILT.get_or_init(|| {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
        let plugins = workspace.join("plugins");
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let out = Command::new(cargo)
            .current_dir(&plugins)
            .args(["build", "--quiet", "--locked", "--release", "--target", "wasm32-wasip2"])
            // The test binary's own build settings must not leak into the guest build.
            .env_remove("RUSTFLAGS")
            .env_remove("CARGO_TARGET_DIR")
            .output()
            .expect("cargo runs to build the plugins");
        assert!(
            out.status.success(),
            "building the plugins for wasm32-wasip2 failed (run `rustup target add wasm32-wasip2`):\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        plugins.join("target/wasm32-wasip2/release")
    });
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "plugin component {} is missing",
        path.display()
    );
    path
}

/// Components of JavaScript and Python plugins, by name, and the folder each is built in.
const SCRIPTED: &[(&str, &str)] = &[
    ("login_audit_js", "plugins/login-audit-js"),
    ("access_policy_py", "plugins/access-policy-py"),
    ("misbehave_js", "tests/plugins/misbehave-js"),
    ("misbehave_py", "tests/plugins/misbehave-py"),
];

/// A JavaScript or Python plugin's component, built as a developer builds it:
/// `integration-host plugin build --if-changed FOLDER` with the toolchains of
/// `target/plugin-toolchains` (scripts/plugin-toolchains installs them). Built at most once per
/// test run, and only when its sources changed since the last build.
fn scripted_component(name: &str, folder: &str) -> PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let path = workspace
        .join("plugins/target/components")
        .join(format!("{name}.wasm"));
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !built.iter().any(|b| b == name) {
        let data = tempfile::tempdir().unwrap();
        let out = super::command()
            .args(["plugin", "build", "--if-changed"])
            .arg(workspace.join(folder))
            .env(
                "APP_PLUGINS__TOOLCHAINS_DIR",
                workspace.join("target/plugin-toolchains"),
            )
            .env("APP_PLUGINS__CACHE_DIR", plugin_cache_dir())
            .env("APP_DATA_DIR", data.path())
            .output()
            .expect("run integration-host plugin build");
        assert!(
            out.status.success(),
            "building {folder} failed (scripts/plugin-toolchains installs the JavaScript and Python toolchains):\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        built.push(name.to_owned());
    }
    assert!(
        path.is_file(),
        "plugin component {} is missing",
        path.display()
    );
    path
}

/// Compiled components are shared by every test of the run (keyed by content and engine).
pub fn plugin_cache_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-plugin-cache")
}

/// Settings that load the plugin folders of `folder` (polled every 100 ms for changes).
pub fn with_plugins(
    folder: &PluginFolder,
) -> impl FnOnce(&mut integration_host::config::Settings) + use<> {
    let dir = folder.path();
    move |s: &mut integration_host::config::Settings| {
        s.plugins.directories = vec![dir];
        s.plugins.cache_dir = Some(plugin_cache_dir());
        s.plugins.reload_poll_ms = 100;
    }
}

/// A folder of plugin folders for `plugins.directories`, written by the test.
#[derive(Debug)]
pub struct PluginFolder {
    pub dir: tempfile::TempDir,
}

impl Default for PluginFolder {
    fn default() -> Self {
        Self::new()
    }
}

impl PluginFolder {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    pub fn path(&self) -> PathBuf {
        self.dir.path().to_owned()
    }

    /// Writes `<id>/plugin.toml`: `id`, `version = "0.1.0"`, the component (built from `component`, e.g. `misbehave`), then `rest` verbatim. Written to a
    /// temporary file and renamed, as a deployment would.
    pub fn write(&self, id: &str, component: &str, rest: &str) -> PathBuf {
        self.write_raw(
            id,
            &format!(
                "id = {id:?}\nversion = \"0.1.0\"\ncomponent = {:?}\n{rest}",
                plugin_component(component).display().to_string()
            ),
        )
    }

    /// Writes `<folder>/plugin.toml` with exactly `text`.
    pub fn write_raw(&self, folder: &str, text: &str) -> PathBuf {
        let dir = self.dir.path().join(folder);
        std::fs::create_dir_all(&dir).expect("plugin folder");
        let tmp = dir.join(".plugin.toml.tmp");
        std::fs::write(&tmp, text).expect("write manifest");
        std::fs::rename(&tmp, dir.join("plugin.toml")).expect("rename manifest");
        dir
    }

    /// Removes a plugin folder.
    pub fn remove(&self, folder: &str) {
        std::fs::remove_dir_all(self.dir.path().join(folder)).expect("remove plugin folder");
    }
}

/// A sample plugin's manifest from `plugins/<name>/plugin.toml`, with its component path made
/// absolute so that it can be copied into a test's plugin folder.
pub fn sample_manifest(name: &str) -> String {
    sample_manifest_at(name, Api::V1_1)
}

/// Which build of a sample plugin: the one in `plugins/` (API 1.1), or the one released with
/// API 1.0, built from its 1.0 source against the frozen 1.0 WIT (`tests/plugins/v1.0/`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    V1_0,
    V1_1,
}

impl Api {
    /// The component name of a sample (`access_policy`) in this build.
    pub fn component(self, name: &str) -> String {
        match self {
            Api::V1_0 => format!("{name}_v1_0"),
            Api::V1_1 => name.to_owned(),
        }
    }

    /// As `plugin list` shows it.
    pub fn text(self) -> &'static str {
        match self {
            Api::V1_0 => "1.0",
            Api::V1_1 => "1.1",
        }
    }
}

/// A sample's manifest in the given build, its component path made absolute.
pub fn sample_manifest_at(name: &str, api: Api) -> String {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let folder = match api {
        Api::V1_0 => workspace.join("tests/plugins/v1.0"),
        Api::V1_1 => workspace.join("plugins"),
    };
    let text =
        std::fs::read_to_string(folder.join(name).join("plugin.toml")).expect("sample manifest");
    let component = plugin_component(&api.component(&name.replace('-', "_")));
    text.lines()
        .map(|l| {
            if l.starts_with("component = ") {
                format!("component = {:?}", component.display().to_string())
            } else if let Some(file) = l.strip_prefix("config_schema = ") {
                // Read where the sample keeps it.
                let file = folder.join(name).join(file.trim_matches('"'));
                format!("config_schema = {:?}", file.display().to_string())
            } else {
                l.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}
