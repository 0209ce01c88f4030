//! `plugin build`: runs a plugin folder's build recipe (`[build] command` in its manifest) with
//! the plugin toolchains on hand, then checks the result as `plugin check` does.
//!
//! The toolchains live in `plugins.toolchains_dir` (`target/plugin-toolchains`, installed by
//! `scripts/plugin-toolchains`): `js/` holds npm's `@bytecodealliance/componentize-js` and
//! `jco`, `python/` a venv with `componentize-py`. A recipe sees them as any command would:
//! `componentize-py` and `jco` on its `PATH`, and `COMPONENTIZE_JS` naming componentize-js's
//! module for a `build.mjs` to import. A recipe that needs a toolchain that is not installed is
//! refused before it runs, with the command that installs it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::SystemTime;

use crate::config::Settings;
use crate::plugins::manifest;

/// The toolchains a plugin build may use.
#[derive(Debug, Clone)]
pub(super) struct Toolchains {
    dir: PathBuf,
}

/// How to install the toolchains.
const INSTALL: &str = "install them with scripts/plugin-toolchains (from the integration-host checkout), or set plugins.toolchains_dir to where they are";

impl Toolchains {
    /// The configured folder; a relative one not found from the working folder is looked for
    /// in the checkout the binary was built in (so the commands work from anywhere there).
    pub(super) fn of(settings: &Settings) -> Self {
        let dir = &settings.plugins.toolchains_dir;
        let dir = match crate::config::checkout_of_binary() {
            Some(root) if dir.is_relative() && !dir.is_dir() && root.join(dir).is_dir() => {
                root.join(dir)
            }
            _ => dir.clone(),
        };
        Self {
            // Absolute: commands run in the plugin's folder.
            dir: std::path::absolute(&dir).unwrap_or(dir),
        }
    }

    fn js(&self) -> PathBuf {
        self.dir.join("js/node_modules")
    }

    fn python_bin(&self) -> PathBuf {
        self.dir.join("python/bin")
    }

    /// componentize-js's module, which a `build.mjs` imports.
    pub(super) fn componentize_js(&self) -> PathBuf {
        self.js()
            .join("@bytecodealliance/componentize-js/src/componentize.js")
    }

    /// `jco`, which writes TypeScript declarations of the WIT.
    pub(super) fn jco(&self) -> PathBuf {
        self.js().join(".bin/jco")
    }

    pub(super) fn componentize_py(&self) -> PathBuf {
        self.python_bin().join("componentize-py")
    }

    /// Fails, saying how to install it, when `tool` is not there.
    pub(super) fn require(&self, language: &str, tool: &Path) -> anyhow::Result<()> {
        if tool.exists() {
            return Ok(());
        }
        anyhow::bail!(
            "the {language} plugin toolchain is not installed ({} is missing): {INSTALL}",
            tool.display()
        )
    }

    /// Checks that what `command` runs is installed.
    fn require_for(&self, command: &str) -> anyhow::Result<()> {
        let words: Vec<&str> = command.split_whitespace().collect();
        if words.contains(&"componentize-py") {
            self.require("Python", &self.componentize_py())?;
        }
        if words.iter().any(|w| *w == "node" || w.ends_with(".mjs")) {
            self.require("JavaScript", &self.componentize_js())?;
            if which("node").is_none() {
                anyhow::bail!("the JavaScript plugin toolchain needs node, which is not on PATH");
            }
        }
        if words.contains(&"cargo") && which("cargo").is_none() {
            anyhow::bail!(
                "a Rust plugin needs cargo and the wasm32-wasip2 target: install Rust with rustup, then `rustup target add wasm32-wasip2`"
            );
        }
        Ok(())
    }

    /// A command run in `dir` with the toolchains on hand.
    pub(super) fn command(&self, program: &str, dir: &Path) -> Command {
        let mut cmd = Command::new(program);
        let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
        let mut path = vec![
            absolute(self.python_bin()),
            absolute(self.js().join(".bin")),
        ];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        cmd.current_dir(dir)
            .env(
                "PATH",
                std::env::join_paths(path).unwrap_or_else(|_| "/usr/bin:/bin".into()),
            )
            .env("COMPONENTIZE_JS", self.componentize_js());
        cmd
    }
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A plugin folder from a path to it or to its manifest.
pub(super) fn folder_of(path: PathBuf) -> PathBuf {
    if path.file_name().is_some_and(|f| f == manifest::FILE) {
        path.parent().map(Path::to_path_buf).unwrap_or_default()
    } else {
        path
    }
}

/// What one build did.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Built {
    Built,
    /// `--if-changed`, and the component is newer than every source file.
    UpToDate,
}

/// Runs the build recipe of the plugin in `dir`. With `if_changed`, skips it when the
/// component is newer than every file of the folder (outputs and dependencies aside).
pub(super) fn build(tools: &Toolchains, dir: &Path, if_changed: bool) -> anyhow::Result<Built> {
    let manifest_path = dir.join(manifest::FILE);
    let text = std::fs::read_to_string(&manifest_path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", manifest_path.display()))?;
    let command =
        manifest::build_command(&text).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    if if_changed && up_to_date(dir, &text) {
        return Ok(Built::UpToDate);
    }
    tools.require_for(&command)?;
    let status = tools
        .command("sh", dir)
        .arg("-c")
        .arg(&command)
        .status()
        .map_err(|e| anyhow::anyhow!("cannot run the build command `{command}`: {e}"))?;
    if !status.success() {
        anyhow::bail!(
            "the build command `{command}` of {} failed ({status})",
            dir.display()
        );
    }
    Ok(Built::Built)
}

/// Folders and files a build reads from but does not own, or writes.
const NOT_SOURCES: &[&str] = &[
    "node_modules",
    "target",
    "types",
    "bindings",
    "__pycache__",
    ".git",
];

/// Whether the component the manifest names is newer than every source file of the folder.
fn up_to_date(dir: &Path, manifest_text: &str) -> bool {
    #[derive(serde::Deserialize)]
    struct OnlyComponent {
        component: PathBuf,
    }
    let Ok(only) = toml::from_str::<OnlyComponent>(manifest_text) else {
        return false;
    };
    let component = dir.join(only.component);
    let Some(built) = modified(&component) else {
        return false;
    };
    newest_source(dir, &component).is_some_and(|newest| newest <= built)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

fn newest_source(dir: &Path, component: &Path) -> Option<SystemTime> {
    let mut newest = modified(dir)?;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if NOT_SOURCES.contains(&name.as_ref()) || name.ends_with(".wasm") || path == component {
            continue;
        }
        let t = if path.is_dir() {
            newest_source(&path, component)?
        } else {
            modified(&path)?
        };
        newest = newest.max(t);
    }
    Some(newest)
}

/// The plugin folders of the configuration that have a `[build]` recipe.
pub(super) fn buildable_folders(settings: &Settings) -> anyhow::Result<Vec<PathBuf>> {
    if settings.plugins.directories.is_empty() {
        anyhow::bail!("no plugin folders: set plugins.directories (or APP_PLUGINS__DIRECTORIES)");
    }
    let mut out = Vec::new();
    for parent in &settings.plugins.directories {
        let entries = std::fs::read_dir(parent)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", parent.display()))?;
        let mut dirs: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
        dirs.sort();
        for dir in dirs {
            let manifest_path = dir.join(manifest::FILE);
            let Ok(text) = std::fs::read_to_string(&manifest_path) else {
                continue;
            };
            if manifest::build_command(&text).is_ok() {
                out.push(dir);
            }
        }
    }
    Ok(out)
}
