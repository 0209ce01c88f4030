//! `config check`: every check `serve` makes before it listens, without serving: the settings,
//! the keys, the ACL tree, the route tables, the definition files, the plugins (manifests,
//! grants, components), the bootstrap password file's folder and, unless `--offline`, the
//! database. Every problem is printed with its file and key; any problem exits with status 1.

use crate::config::Settings;
use crate::store::Store;

/// One problem: where (a file, or a configuration key) and what.
struct Problem {
    at: String,
    message: String,
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.at, self.message)
    }
}

fn key(name: &str, message: impl std::fmt::Display) -> Problem {
    Problem {
        at: format!("configuration key `{name}`"),
        message: message.to_string(),
    }
}

pub(super) async fn check(settings: &Settings, offline: bool) -> anyhow::Result<()> {
    let mut problems = Vec::new();
    let url = settings.database_url();

    // The keys, as the server resolves them (without generating a key file).
    let missing = crate::crypto::missing_keys(settings);
    let keys = if missing.is_empty() {
        if let Err(e) = crate::crypto::resolve_keys(settings) {
            problems.push(key("crypto", e));
        }
        "from the configuration".to_owned()
    } else if url.is_sqlite() {
        format!(
            "{} from {} (generated on first start if missing)",
            missing.join(", "),
            settings.data_dir.join("keys.toml").display()
        )
    } else {
        for name in &missing {
            problems.push(key(
                name,
                "not set: with PostgreSQL every server process must share the same keys; create \
                 them with `integration-host config generate-key ID`",
            ));
        }
        "missing".to_owned()
    };

    // The ACL tree, the route tables checked against it, the definition files.
    let tree = match &settings.acl.resources_file {
        Some(path) => match crate::acl::ResourceTree::load(path) {
            Ok(t) => Some(t),
            Err(e) => {
                problems.push(Problem {
                    at: path.display().to_string(),
                    message: e.to_string(),
                });
                None
            }
        },
        None => Some(crate::acl::ResourceTree::builtin()),
    };
    if let Some(tree) = &tree {
        let mut each_loads = true;
        for file in &settings.webapi.routes_files {
            if let Err(e) = crate::webapi::RouteTable::load(std::slice::from_ref(file), tree) {
                each_loads = false;
                problems.push(Problem {
                    at: "webapi.routes_files".into(),
                    message: e.to_string(),
                });
            }
        }
        // Together: a route declared in two files.
        if each_loads
            && let Err(e) = crate::webapi::RouteTable::load(&settings.webapi.routes_files, tree)
        {
            problems.push(Problem {
                at: "webapi.routes_files".into(),
                message: e.to_string(),
            });
        }
        let check = |resource: &str| tree.grant([resource]).map(|_| ());
        if let Err(errors) =
            crate::declarative::load(&settings.integrations.directories, Vec::new(), &check)
        {
            for e in errors {
                problems.push(Problem {
                    at: "integrations.directories".into(),
                    message: e.to_string(),
                });
            }
        }
    }

    // The plugins, loaded as the server loads them.
    let mut plugins = 0;
    if !settings.plugins.directories.is_empty() {
        match crate::plugins::PluginHost::new(
            &settings.plugins,
            &settings.data_dir,
            crate::events::Dispatcher::new(),
        ) {
            Ok(host) => {
                let report = host.reload().await;
                plugins = host.list().len();
                for p in report.problems {
                    problems.push(Problem {
                        at: "plugins.directories".into(),
                        message: p.to_string(),
                    });
                }
            }
            Err(e) => problems.push(key("plugins", e)),
        }
    }

    if let Some(problem) = settings.bootstrap.password_folder_problem() {
        problems.push(key("bootstrap.password_file", problem));
    }

    // The database answers (an SQLite file not yet there is created on first start).
    let database = if offline {
        "not checked (--offline)".to_owned()
    } else {
        match &url {
            crate::config::DatabaseUrl::Sqlite(path) if !path.exists() => {
                "created on first start".to_owned()
            }
            _ => match Store::connect(&url, &settings.database).await {
                Ok(store) => {
                    let answered = store.ping(std::time::Duration::from_secs(5)).await;
                    store.close().await;
                    match answered {
                        Ok(()) => "answers".to_owned(),
                        Err(e) => {
                            problems.push(key("database.url", format!("{}: {e}", url.redacted())));
                            "unreachable".to_owned()
                        }
                    }
                }
                Err(e) => {
                    problems.push(key(
                        "database.url",
                        format!("cannot open {}: {e}", url.redacted()),
                    ));
                    "unreachable".to_owned()
                }
            },
        }
    };

    if !problems.is_empty() {
        for p in &problems {
            eprintln!("{p}");
        }
        anyhow::bail!(
            "the configuration has {} problem(s); `serve` would refuse to start or skip what is named",
            problems.len()
        );
    }
    println!("configuration OK");
    println!("  listen:   {}", settings.server.listen);
    if let Some(m) = &settings.metrics.listen {
        println!("  metrics:  {m}");
    }
    println!("  base URL: {}", settings.server.base_url.as_str());
    println!("  database: {} ({database})", url.redacted());
    println!("  data dir: {}", settings.data_dir.display());
    println!("  keys:     {keys}");
    println!(
        "  routes:   {} file(s); definitions: {} folder(s); plugins: {plugins} loaded",
        settings.webapi.routes_files.len(),
        settings.integrations.directories.len()
    );
    Ok(())
}
