//! Plugins from the command line: list, check one folder, measure calls.

use std::path::PathBuf;

use clap::Subcommand;

use crate::config::Settings;

#[derive(Debug, Subcommand)]
pub enum PluginCommand {
    /// Load every plugin of plugins.directories as the server would and list them; folders
    /// that fail are listed with the reason (exit status 1).
    List,
    /// Check one plugin folder: its manifest, its component's exports and API version, and
    /// that it starts. Exit status 1 with the reason when it would not load.
    Check {
        /// The plugin folder (holding plugin.toml), or its plugin.toml.
        path: PathBuf,
    },
    /// Write a new plugin folder that builds and loads as it is: the manifest with its build
    /// recipe, the source with the role's method, a README, the WIT and (JavaScript, Python)
    /// the editor declarations of the role's types.
    New {
        /// The plugin's id, also its folder's name.
        name: String,
        #[arg(long, value_enum)]
        lang: super::plugin_new::Language,
        #[arg(long, value_enum)]
        role: super::plugin_new::NewRole,
        /// The folder to write it in (default: the first of plugins.directories, or plugins).
        #[arg(long)]
        dir: Option<PathBuf>,
        /// The Rust SDK's folder (default: plugins/sdk of the checkout).
        #[arg(long)]
        sdk: Option<PathBuf>,
    },
    /// Build a plugin folder with its manifest's `[build] command` (run in the folder, with the
    /// JavaScript and Python toolchains of plugins.toolchains_dir on hand), then check it as
    /// `plugin check` does.
    Build {
        /// The plugin folder (holding plugin.toml), or its plugin.toml.
        #[arg(required_unless_present = "all")]
        path: Option<PathBuf>,
        /// Build every plugin folder of plugins.directories that has a [build] command.
        #[arg(long, conflicts_with = "path")]
        all: bool,
        /// Skip a build whose component is newer than every source file of its folder.
        #[arg(long)]
        if_changed: bool,
    },
    /// Call a plugin once, as the server would, and print its log lines, its answer (checked
    /// as the server checks it) and the time taken. The input is JSON in the shape of the plugin
    /// API's types (docs/plugins.md has one per role): an event for an observer, a request for
    /// a permission resolver, an operation for a before-interceptor, what was produced for an
    /// after-interceptor, credentials for a credential verifier, nothing for a config provider.
    /// Exit status 1 when the call fails, saying what the server would then do.
    Call {
        /// The plugin folder (holding plugin.toml), or its plugin.toml.
        path: PathBuf,
        /// The input: JSON, `@FILE` to read it from a file, or `-` from standard input.
        input: Option<String>,
        /// The role to call, for a plugin that plays several (e.g. permission-resolver).
        #[arg(long)]
        role: Option<String>,
    },
    /// Read or clear plugins' key-value state (the key_value capability).
    #[command(subcommand)]
    Kv(KvCommand),
    /// Measure calls into a permission-resolver, before-interceptor or observer plugin
    /// (whichever it plays, in that order; an observer sees a customer_login): time per call
    /// through the host (taking a warm instance, the deadline, the call, giving it back), the
    /// plugin's own work included.
    Bench {
        /// The plugin folder.
        path: PathBuf,
        /// How many calls to time.
        #[arg(long, default_value_t = 100_000)]
        calls: u32,
    },
}

/// Plugins' key-value state, by plugin id.
#[derive(Debug, Subcommand)]
pub enum KvCommand {
    /// List a plugin's keys, each with the bytes its key and value take, and the total.
    List {
        plugin: String,
        /// Only keys starting with this.
        #[arg(long, default_value = "")]
        prefix: String,
    },
    /// Print the value of one key: as text when it is UTF-8, otherwise as hex.
    Get { plugin: String, key: String },
    /// Delete one key, or every key of the plugin with --all.
    Delete {
        plugin: String,
        key: Option<String>,
        #[arg(long, conflicts_with = "key")]
        all: bool,
    },
}

async fn kv(settings: &Settings, cmd: KvCommand) -> anyhow::Result<()> {
    let store = super::common::open_store(settings).await?;
    let kv = crate::services::plugin_state::PluginState::new(store.clone());
    match cmd {
        KvCommand::List { plugin, prefix } => {
            let (count, bytes) = kv.usage(&plugin).await?;
            for (key, size) in kv.entries(&plugin, &prefix, i64::MAX).await? {
                println!("{key}\t{size} bytes");
            }
            let quota = settings
                .grants_quota(&plugin)
                .map(|q| format!(" of a {q} KiB quota"))
                .unwrap_or_default();
            println!("{plugin}: {count} keys, {bytes} bytes{quota}");
        }
        KvCommand::Get { plugin, key } => match kv.value(&plugin, &key).await? {
            Some(value) => match String::from_utf8(value) {
                Ok(text) => println!("{text}"),
                Err(e) => {
                    let hex: String = e.as_bytes().iter().map(|b| format!("{b:02x}")).collect();
                    println!("{hex}");
                }
            },
            None => anyhow::bail!("plugin `{plugin}` has no key `{key}`"),
        },
        KvCommand::Delete { plugin, key, all } => match (key, all) {
            (Some(key), _) => {
                if !kv.remove(&plugin, &key).await? {
                    anyhow::bail!("plugin `{plugin}` has no key `{key}`");
                }
                println!("deleted {key} of {plugin}");
            }
            (None, true) => {
                let n = kv.clear(&plugin).await?;
                println!("deleted {n} keys of {plugin}");
            }
            (None, false) => anyhow::bail!("name a key to delete, or --all for every key"),
        },
    }
    store.close().await;
    Ok(())
}

pub(super) async fn plugin(settings: Settings, cmd: PluginCommand) -> anyhow::Result<()> {
    use crate::plugins::manifest::Role;
    use crate::plugins::{PluginHost, PluginInfo, v1_1};
    fn show(p: &PluginInfo) {
        let roles: Vec<&str> = p.roles.iter().map(|r| r.as_str()).collect();
        println!(
            "{} {} (API {}) roles: {}; sort order {}; {}",
            p.id,
            p.version,
            p.api_version,
            roles.join(", "),
            p.sort_order,
            p.dir
        );
        if !p.events.is_empty() {
            let mode = p
                .mode
                .map(|m| format!("{m:?}").to_lowercase())
                .unwrap_or_default();
            println!("  observes ({mode}): {}", p.events.join(", "));
        }
        if !p.operations.is_empty() {
            println!("  intercepts before: {}", p.operations.join(", "));
        }
        if !p.results.is_empty() {
            println!("  adds after: {}", p.results.join(", "));
        }
        if !p.on_error.is_empty() {
            let policies: Vec<String> = p
                .on_error
                .iter()
                .map(|(role, policy)| format!("{} {policy}", role.as_str()))
                .collect();
            println!("  on error: {}", policies.join(", "));
        }
        if !p.asked.is_empty() {
            println!("  asks for: {}", p.asked.join("; "));
            println!("  granted:  {}", p.granted.join("; "));
        }
        if let Some(b) = &p.backlog {
            let oldest = b
                .oldest_pending_at
                .map(|t| format!(", oldest written {}", crate::clock::iso8601(t)))
                .unwrap_or_default();
            println!(
                "  backlog: {} pending{oldest}; {} given up",
                b.pending, b.given_up
            );
        }
        if !p.description.is_empty() {
            println!("  {}", p.description);
        }
    }
    match cmd {
        PluginCommand::Kv(cmd) => kv(&settings, cmd).await?,
        PluginCommand::Call { path, input, role } => {
            let dir = super::plugin_build::folder_of(path);
            super::plugin_call::call(&settings, dir, role, input).await?;
        }
        PluginCommand::List => {
            if settings.plugins.directories.is_empty() {
                anyhow::bail!(
                    "no plugin folders: set plugins.directories (or APP_PLUGINS__DIRECTORIES)"
                );
            }
            let host = PluginHost::new(
                &settings.plugins,
                &settings.data_dir,
                crate::events::Dispatcher::new(),
            )?;
            let report = host.reload().await;
            // An async observer's backlog is in the database: shown when it can be read.
            let backlogs = match super::common::open_store(&settings).await {
                Ok(store) => crate::services::outbox::backlogs(&store)
                    .await
                    .map_err(anyhow::Error::from),
                Err(e) => Err(e),
            }
            .unwrap_or_else(|e| {
                eprintln!("backlogs unknown: {e:#}");
                Default::default()
            });
            for p in crate::plugins::with_backlogs(host.list(), &backlogs) {
                show(&p);
            }
            for p in &report.problems {
                eprintln!("not loaded: {p}");
            }
            if !report.problems.is_empty() {
                anyhow::bail!("{} plugin folder(s) failed to load", report.problems.len());
            }
        }
        PluginCommand::Check { path } => {
            let dir = super::plugin_build::folder_of(path);
            let host = PluginHost::standalone(&settings.plugins, &settings.data_dir)?;
            match host.load_folder(&dir).await {
                Ok(p) => {
                    show(&p.info());
                    println!("ok: the plugin loads and starts");
                }
                Err(problem) => anyhow::bail!("{problem}"),
            }
        }
        PluginCommand::New {
            name,
            lang,
            role,
            dir,
            sdk,
        } => {
            use super::plugin_new::{Language, NewPlugin, find_sdk, parent_dir, write};
            let tools = super::plugin_build::Toolchains::of(&settings);
            let parent = parent_dir(dir, &settings.plugins.directories);
            let new = NewPlugin {
                dir: parent.join(&name),
                sdk: if lang == Language::Rust {
                    Some(find_sdk(sdk)?)
                } else {
                    None
                },
                name,
                language: lang,
                role,
            };
            let written = write(&new, &tools)?;
            for path in &written {
                println!("wrote {}", path.display());
            }
            println!("next: integration-host plugin build {}", new.dir.display());
        }
        PluginCommand::Build {
            path,
            all,
            if_changed,
        } => {
            use super::plugin_build::{Built, Toolchains, build, buildable_folders, folder_of};
            let tools = Toolchains::of(&settings);
            let folders = match path {
                Some(p) if !all => vec![folder_of(p)],
                _ => buildable_folders(&settings)?,
            };
            let host = PluginHost::standalone(&settings.plugins, &settings.data_dir)?;
            let mut failed = 0;
            for dir in &folders {
                let outcome = match build(&tools, dir, if_changed) {
                    Ok(built) => host
                        .load_folder(dir)
                        .await
                        .map(|p| (built, p))
                        .map_err(|problem| anyhow::anyhow!("built, but {problem}")),
                    Err(e) => Err(e),
                };
                match outcome {
                    Ok((built, p)) => {
                        show(&p.info());
                        let how = if built == Built::UpToDate {
                            "up to date"
                        } else {
                            "built"
                        };
                        println!("ok: {how}; the plugin loads and starts");
                    }
                    Err(e) if folders.len() == 1 => return Err(e),
                    Err(e) => {
                        failed += 1;
                        eprintln!("{}: {e:#}", dir.display());
                    }
                }
            }
            if failed > 0 {
                anyhow::bail!("{failed} of {} plugin folder(s) failed", folders.len());
            }
        }
        PluginCommand::Bench { path, calls } => {
            let host = PluginHost::standalone(&settings.plugins, &settings.data_dir)?;
            let plugin = host
                .load_folder(&path)
                .await
                .map_err(|p| anyhow::anyhow!("{p}"))?;
            let request = std::sync::Arc::new(v1_1::ResolverRequest {
                principal: v1_1::wit::Principal::Admin(v1_1::wit::Account {
                    id: 1,
                    name: "admin".into(),
                }),
                resources: vec!["Magento_Integration::integrations".into()],
                acl_allows: true,
                method: "GET".into(),
                path: "/rest/V1/integrations".into(),
                client_address: Some("127.0.0.1".into()),
                now: 0,
            });
            // The operation of the token route, as the admin sign-in hands it over.
            let sign_in =
                v1_1::operation(&crate::events::Operation::SignIn(crate::events::SignIn {
                    kind: crate::domain::AccountKind::Admin,
                    username: "admin".into(),
                    client_address: Some("127.0.0.1".into()),
                }));
            // A customer's sign-in, as an observer of the token route sees it.
            let login = crate::events::Event::CustomerLogin(crate::events::CustomerLogin {
                customer_id: 1,
                email: "jo@example.com".into(),
                firstname: "Jo".into(),
                lastname: "Doe".into(),
                at: 0,
                client_address: Some("127.0.0.1".into()),
                user_agent: Some("bench/1.0".into()),
            });
            let role = if plugin.manifest.has(Role::PermissionResolver) {
                Role::PermissionResolver
            } else if plugin.manifest.has(Role::BeforeInterceptor) {
                Role::BeforeInterceptor
            } else if plugin.manifest.has(Role::Observer) {
                Role::Observer
            } else {
                anyhow::bail!(
                    "plugin bench measures permission resolvers, before-interceptors and observers; `{}` plays none of them",
                    plugin.id()
                );
            };
            let call = async || -> anyhow::Result<()> {
                match role {
                    Role::PermissionResolver => {
                        plugin.resolve(&request).await.map_err(anyhow::Error::msg)?;
                    }
                    Role::BeforeInterceptor => {
                        plugin.before(&sign_in).await.map_err(anyhow::Error::msg)?;
                    }
                    _ => {
                        plugin
                            .on_event(&login, None)
                            .await
                            .map_err(anyhow::Error::msg)?;
                    }
                }
                Ok(())
            };
            for _ in 0..1000 {
                call().await?;
            }
            let calls = calls.max(1);
            let mut times = Vec::with_capacity(calls as usize);
            let all = std::time::Instant::now();
            for _ in 0..calls {
                let t = std::time::Instant::now();
                call().await?;
                times.push(t.elapsed());
            }
            let total = all.elapsed();
            times.sort();
            let pct = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
            println!(
                "plugin call ({}, {}): {calls} calls, mean {:.2} µs, p50 {:.2} µs, p99 {:.2} µs",
                plugin.id(),
                role.as_str(),
                total.as_secs_f64() * 1e6 / f64::from(calls),
                pct(0.5),
                pct(0.99)
            );
        }
    }
    Ok(())
}
