//! Running the server, migrating its database, and checking its configuration.

use clap::{Args, Subcommand};

use crate::config::Settings;
use crate::startup::Application;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, HOST:PORT (port 0 picks a free port). Overrides server.listen.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Check the configuration and everything it names as `serve` would before listening:
    /// keys, ACL tree, route tables, definition files, plugins, and that the database answers.
    /// Every problem is printed with its file and key; exit status 1 on any.
    Check {
        /// Do not connect to the database.
        #[arg(long)]
        offline: bool,
    },
    /// Print a commented template of every setting with its default.
    PrintDefault,
    /// Print a new random key, ID:BASE64, for crypto.secret_keys, crypto.lookup_key or
    /// tokens.signing_keys.
    GenerateKey {
        /// Key id, 1-32 characters of A-Z a-z 0-9 . _ -
        id: String,
    },
}

pub(super) async fn serve(settings: Settings) -> anyhow::Result<()> {
    let mut app = Application::build(settings).await?;
    let written_to = app.bootstrap_password_file().map(ToOwned::to_owned);
    let admin = app.take_bootstrap_admin();
    if let (Some(admin), Some(path)) = (&admin, written_to) {
        println!(
            "Created the first admin account `{}`; its password is in {} (readable by this user \
             only). Change it with `integration-host admin passwd {}` and delete the file.",
            admin.username,
            path.display(),
            admin.username
        );
    } else if let Some(admin) = admin {
        println!(
            "\n================================================================\n\
             Created the first admin account.\n  username: {}\n  password: {}\n\
             This password is shown only once. Change it with:\n  integration-host admin passwd {}\n\
             ================================================================\n",
            admin.username,
            admin.password.expose(),
            admin.username
        );
    }
    app.run_until_stopped().await?;
    Ok(())
}

pub(super) async fn backup(settings: Settings, file: &std::path::Path) -> anyhow::Result<()> {
    let url = settings.database_url();
    if !url.is_sqlite() {
        anyhow::bail!(
            "the database is PostgreSQL: back it up with its own tools (pg_dump --format=custom), \
             together with the keys (see docs/operations.md, \"Backup and restore\")"
        );
    }
    let store = Store::connect(&url, &settings.database)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", url.redacted()))?;
    let result = store.backup_to(file).await.expect("SQLite backs up");
    store.close().await;
    result.map_err(|e| anyhow::anyhow!("cannot write the backup {}: {e}", file.display()))?;
    let size = std::fs::metadata(file).map(|m| m.len()).unwrap_or(0);
    println!(
        "wrote {} ({size} bytes); back up the keys with it: without them its stored secrets cannot be read",
        file.display()
    );
    Ok(())
}

pub(super) async fn migrate(settings: Settings) -> anyhow::Result<()> {
    let url = settings.database_url();
    let store = Store::connect(&url, &settings.database)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", url.redacted()))?;
    let report = store.migrate().await?;
    if report.applied.is_empty() {
        println!("database is up to date ({} migrations)", report.total);
    } else {
        for (version, description) in &report.applied {
            println!("applied {version} {description}");
        }
        println!(
            "applied {} migration(s); the database has {} in all",
            report.applied.len(),
            report.total
        );
    }
    store.close().await;
    Ok(())
}
