//! The keys that seal stored secrets: which key sealed how many values, and re-sealing them all
//! under the newest key so that older keys can be removed.

use clap::Subcommand;

use super::common::open_store;
use crate::config::Settings;
use crate::services::sealing;

#[derive(Debug, Subcommand)]
pub enum CryptoCommand {
    /// Count the stored secrets by the key that sealed them, and say which keys are still
    /// needed.
    Status,
    /// Seal every stored secret again under the newest key of crypto.secret_keys, in batches.
    /// Safe while servers run; run it again to continue after an interruption. Afterwards
    /// every older key can be removed from the configuration.
    Rewrap {
        /// Rows per transaction.
        #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(i64).range(1..=100_000))]
        batch_size: i64,
    },
}

pub(super) async fn crypto(settings: Settings, cmd: CryptoCommand) -> anyhow::Result<()> {
    let keys = crate::crypto::resolve_keys(&settings)?;
    let secrets = &keys.secret_box;
    let store = open_store(&settings).await?;
    let newest = secrets.sealing_key_id().to_owned();
    let configured: Vec<&str> = secrets.key_ids().collect();
    match cmd {
        CryptoCommand::Status => {
            let census = sealing::census(&store, 1000).await?;
            println!("new secrets are sealed with key `{newest}`");
            println!("{:<24} {:<16} VALUES", "COLUMN", "KEY");
            let mut needed = std::collections::BTreeSet::new();
            for c in &census {
                for (key, n) in &c.by_key {
                    let note = if configured.contains(&key.as_str()) {
                        ""
                    } else {
                        "  (not configured: these cannot be read)"
                    };
                    println!("{:<24} {key:<16} {n}{note}", c.column.name());
                    needed.insert(key.clone());
                }
            }
            let removable: Vec<&str> = configured
                .iter()
                .copied()
                .filter(|k| *k != newest && !needed.contains(*k))
                .collect();
            if needed.iter().all(|k| *k == newest) {
                println!("every stored secret is sealed with `{newest}`");
            } else {
                println!("secrets under older keys remain: run `integration-host crypto rewrap`");
            }
            if !removable.is_empty() {
                println!(
                    "keys no stored secret needs (they may be removed once every server seals with `{newest}`): {}",
                    removable.join(", ")
                );
            }
        }
        CryptoCommand::Rewrap { batch_size } => {
            println!("sealing every stored secret with key `{newest}`");
            let report = sealing::rewrap(&store, secrets, batch_size, |column, p| {
                println!(
                    "{}: {} checked, {} resealed, {} unreadable",
                    column.name(),
                    p.checked,
                    p.resealed,
                    p.unreadable
                );
            })
            .await?;
            let mut unreadable = 0;
            let mut skipped = 0;
            for (column, p) in &report.columns {
                println!(
                    "done {}: {} values, {} resealed, {} changed by another process meanwhile, {} unreadable",
                    column.name(),
                    p.checked,
                    p.resealed,
                    p.skipped,
                    p.unreadable
                );
                unreadable += p.unreadable;
                skipped += p.skipped;
            }
            for u in &report.unreadable {
                eprintln!(
                    "cannot reseal {} of row {}: {}",
                    u.column.name(),
                    u.id,
                    u.error
                );
            }
            if unreadable > 0 {
                anyhow::bail!(
                    "{unreadable} stored secret(s) could not be opened with the configured keys and were left as they are"
                );
            }
            if skipped > 0 {
                println!(
                    "{skipped} value(s) changed while this ran: run the command again once every server seals with `{newest}`"
                );
            } else {
                println!(
                    "every stored secret is sealed with `{newest}`; once every server seals with it, older keys may be removed"
                );
            }
        }
    }
    store.close().await;
    Ok(())
}
