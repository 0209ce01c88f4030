//! Imports from another system: `import magento` reads a Magento 2.4 database and brings its
//! integrations (and with `--with-accounts` its admin users and customers) over with their
//! working credentials, then prints what it did.

use std::path::PathBuf;

use clap::Subcommand;

use crate::config::Settings;
use crate::crypto::MagentoKeys;
use crate::services::Services;
use crate::services::magento_env::parse_env_php;
use crate::services::magento_import::{Counts, Declared, Import, ImportOptions, ImportReport};
use crate::store::magento::{MagentoSource, TablePrefix};

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Import a Magento 2.4 store's integrations (consumers, access tokens, permissions) from
    /// its MySQL or MariaDB database, so that integrators' credentials keep working. Safe to run
    /// again: what changed is updated, nothing is duplicated.
    Magento {
        /// The Magento database: mysql://USER:PASSWORD@HOST:PORT/DB
        #[arg(
            long,
            value_name = "URL",
            env = "MAGENTO_DATABASE_URL",
            hide_env_values = true
        )]
        database_url: String,
        /// Magento's crypt/key (several keys separated by whitespace, oldest first).
        #[arg(
            long,
            value_name = "KEY",
            env = "MAGENTO_CRYPT_KEY",
            hide_env_values = true,
            required_unless_present = "env_php",
            conflicts_with = "env_php"
        )]
        crypt_key: Option<String>,
        /// Magento's app/etc/env.php, to read crypt/key and db/table_prefix from.
        #[arg(long, value_name = "PATH")]
        env_php: Option<PathBuf>,
        /// Magento's table prefix (db/table_prefix); read from --env-php when given there.
        #[arg(long, value_name = "PREFIX")]
        table_prefix: Option<String>,
        /// Also import admin users and customers, keeping their Magento password hashes until
        /// each one's first sign-in here.
        #[arg(long)]
        with_accounts: bool,
        /// Report what would be imported; change nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

pub(super) async fn import(settings: Settings, cmd: ImportCommand) -> anyhow::Result<()> {
    let ImportCommand::Magento {
        database_url,
        crypt_key,
        env_php,
        table_prefix,
        with_accounts,
        dry_run,
    } = cmd;
    let (crypt_key, env_prefix) = match (crypt_key, env_php) {
        (Some(key), _) => (key, String::new()),
        (None, Some(path)) => {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
            let env =
                parse_env_php(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
            (env.crypt_key, env.table_prefix)
        }
        (None, None) => anyhow::bail!("give --crypt-key or --env-php"),
    };
    let keys = MagentoKeys::parse(&crypt_key)?;
    let prefix = TablePrefix::parse(table_prefix.as_deref().unwrap_or(&env_prefix))?;
    let source = MagentoSource::connect(&database_url, prefix)
        .await
        .map_err(|e| anyhow::anyhow!("cannot read the Magento database: {e}"))?;

    let store = super::common::open_store(&settings).await?;
    let material = std::sync::Arc::new(crate::crypto::resolve_keys(&settings)?);
    let services = Services::build(store.clone(), material, &settings)?;
    let tree = services.tree.clone();
    let check = |resource: &str| tree.grant([resource]).map(|_| ());
    let declared: Vec<Declared> = crate::declarative::load(&settings.integrations.directories, Vec::new(), &check)
        .map_err(|errors| {
            let all: Vec<String> = errors.iter().map(ToString::to_string).collect();
            anyhow::anyhow!(
                "the integration definition files are not valid (fix them first; the import reads them to keep config integrations config):\n  {}",
                all.join("\n  ")
            )
        })?
        .into_iter()
        .map(|d| Declared {
            name: d.input.name.as_str().to_owned(),
            config_hash: d.input.config_hash,
        })
        .collect();
    let report = Import {
        store: &store,
        oauth: &services.oauth,
        tree: &tree,
        declared: &declared,
        source: &source,
        keys: &keys,
    }
    .run(ImportOptions {
        dry_run,
        with_accounts,
    })
    .await
    .map_err(|e| anyhow::anyhow!("the import failed and changed nothing: {e}"))?;
    source.close().await;
    print_report(&report, with_accounts);
    Ok(())
}

fn print_report(report: &ImportReport, with_accounts: bool) {
    for line in &report.notes {
        println!("note: {line}");
    }
    for line in &report.skipped {
        println!("skipped: {line}");
    }
    let row = |what: &str, c: &Counts| {
        println!(
            "{what:<13} {:>6} imported {:>6} updated {:>6} unchanged {:>6} skipped",
            c.imported, c.updated, c.unchanged, c.skipped
        );
    };
    row("integrations", &report.integrations);
    if with_accounts {
        row("admin users", &report.admins);
        row("customers", &report.customers);
    }
    if report.dry_run {
        println!("dry run: nothing was changed");
    }
}
