//! What the commands share: the runtime, the database opened and migrated, a new password
//! read safely, and the list flag.

use std::io::{BufRead as _, IsTerminal as _};

use clap::Args;

use crate::config::Settings;
use crate::services::accounts::Password;
use crate::store::Store;

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
}

/// The runtime of the command. HTTP requests run on actix's own worker threads; this one
/// only carries background work (the nonce writer, database pool upkeep, activation POSTs), for
/// which one thread is plenty and idle siblings would only spin looking for work.
pub(super) fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?)
}

/// Opens the configured database and applies pending migrations.
pub(super) async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let url = settings.database_url();
    let store = Store::connect(&url, &settings.database)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", url.redacted()))?;
    store.migrate().await?;
    Ok(store)
}

/// Reads a new password: prompted twice on a terminal, one line of standard input otherwise.
pub(super) fn read_new_password() -> anyhow::Result<Password> {
    let raw = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("New password: ")?;
        let second = rpassword::prompt_password("Repeat the password: ")?;
        if first != second {
            anyhow::bail!("the passwords differ");
        }
        first
    } else {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    };
    if raw.is_empty() {
        anyhow::bail!("no password given (type it at the prompt or pipe it on standard input)");
    }
    Ok(Password::parse(&raw)?)
}
