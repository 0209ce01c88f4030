//! The command line: one binary with subcommands for serving, migrating, configuration and
//! accounts.
//!
//! Every subcommand takes `--config FILE`; settings then come from that file, `APP_…`
//! environment variables and flags (see [`crate::config`]). Commands print results on standard
//! output and logs on standard error. Passwords are read from a prompt, or from standard input
//! when it is not a terminal, never from arguments (which other users can read from `ps`).

mod accounts;
mod check;
mod common;
mod cron;
mod crypto;
mod import;
mod integration;
mod plugin;
mod plugin_build;
mod plugin_call;
mod plugin_new;
mod roles;
mod server;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub use accounts::{AdminCommand, CustomerCommand, TokenCommand};
pub use common::ListArgs;
pub use cron::CronCommand;
pub use crypto::CryptoCommand;
pub use import::ImportCommand;
pub use integration::IntegrationCommand;
pub use plugin::PluginCommand;
pub use server::{ConfigCommand, ServeArgs};

use crate::config::{self, KeySpec};
use crate::domain::AccountKind;
use common::runtime;

/// integration-host: OAuth 1.0a integrations and access tokens for a Web API, compatible with
/// Magento 2's Integration module.
#[derive(Debug, Parser)]
#[command(name = "integration-host", version, propagate_version = true)]
pub struct Cli {
    /// Configuration file (TOML). Environment variables APP_<SECTION>__<KEY> override it.
    #[arg(
        long,
        global = true,
        value_name = "FILE",
        env = "INTEGRATION_HOST_CONFIG"
    )]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server: migrate the database, create the first admin if there is none, serve.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate,
    /// Write a consistent copy of the SQLite database to a new file (mode 0600), safe while
    /// servers run. Back the keys up with it. On PostgreSQL, use pg_dump.
    Backup {
        /// The file to write; it must not exist.
        file: PathBuf,
    },
    /// Check or print the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage admin users.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Manage admin roles: what each admin user may reach.
    #[command(subcommand)]
    Role(roles::RoleCommand),
    /// Manage customers.
    #[command(subcommand)]
    Customer(CustomerCommand),
    /// Manage integrations.
    #[command(subcommand)]
    Integration(IntegrationCommand),
    /// Revoke admin or customer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Run the scheduled cleanup jobs by hand, or list them.
    #[command(subcommand)]
    Cron(CronCommand),
    /// See which keys sealed the stored secrets, and seal them again under the newest key.
    #[command(subcommand)]
    Crypto(CryptoCommand),
    /// Inspect WebAssembly plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
    /// Import from another system (a Magento 2.4 store).
    #[command(subcommand)]
    Import(ImportCommand),
}

/// Runs the command line and returns the process exit code.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Runs one parsed command.
pub fn run(cli: Cli) -> anyhow::Result<()> {
    let mut flags = Vec::new();
    if let Command::Serve(ServeArgs {
        listen: Some(listen),
    }) = &cli.command
    {
        flags.push((
            "server.listen",
            "--listen",
            toml::Value::String(listen.clone()),
        ));
    }
    match &cli.command {
        Command::Config(ConfigCommand::PrintDefault) => {
            print!("{}", config::TEMPLATE);
            return Ok(());
        }
        Command::Config(ConfigCommand::GenerateKey { id }) => {
            let key = KeySpec::generate(id);
            KeySpec::parse(&key.expose()).map_err(anyhow::Error::msg)?;
            println!("{}", key.expose());
            return Ok(());
        }
        _ => {}
    }
    let settings = config::load(cli.config.as_deref(), flags)?;
    // `plugin call` prints the plugin's log lines itself.
    let silenced: &[&str] = match &cli.command {
        Command::Plugin(plugin::PluginCommand::Call { .. }) => &["integration_host::plugin"],
        _ => &[],
    };
    let _log = crate::telemetry::init_except(&settings.log, silenced);
    match cli.command {
        Command::Serve(_) => runtime()?.block_on(server::serve(settings)),
        Command::Migrate => runtime()?.block_on(server::migrate(settings)),
        Command::Backup { file } => runtime()?.block_on(server::backup(settings, &file)),
        Command::Config(ConfigCommand::Check { offline }) => {
            runtime()?.block_on(check::check(&settings, offline))
        }
        Command::Config(_) => unreachable!("handled before loading the configuration"),
        Command::Admin(cmd) => {
            runtime()?.block_on(accounts::account(settings, AccountKind::Admin, cmd))
        }
        Command::Role(cmd) => runtime()?.block_on(roles::role(settings, cmd)),
        Command::Customer(cmd) => {
            runtime()?.block_on(accounts::account(settings, AccountKind::Customer, cmd))
        }
        Command::Integration(cmd) => runtime()?.block_on(integration::integration(settings, cmd)),
        Command::Token(cmd) => runtime()?.block_on(accounts::token(settings, cmd)),
        Command::Cron(cmd) => runtime()?.block_on(cron::cron(settings, cmd)),
        Command::Crypto(cmd) => runtime()?.block_on(crypto::crypto(settings, cmd)),
        Command::Plugin(cmd) => runtime()?.block_on(plugin::plugin(settings, cmd)),
        Command::Import(cmd) => runtime()?.block_on(import::import(settings, cmd)),
    }
}
