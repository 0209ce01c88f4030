//! The command line: one binary with subcommands for serving, migrating, configuration and
//! accounts.
//!
//! Every subcommand takes `--config FILE`; settings then come from that file, `APP_…`
//! environment variables and flags (see [`crate::config`]). Commands print results on standard
//! output and logs on standard error. Passwords are read from a prompt, or from standard input
//! when it is not a terminal, never from arguments (which other users can read from `ps`).

use std::io::{BufRead as _, IsTerminal as _};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::acl::Grants;
use crate::clock::iso8601;
use crate::config::{self, KeySpec, Settings};
use crate::domain::SetupType;
use crate::domain::{AccountKind, RevocationReason};
use crate::services::accounts::{AccountInput, AccountService, Email, Password, Username};
use crate::services::integration::{
    Activation, Integration, IntegrationForm, IntegrationInput, IntegrationService,
};
use crate::services::oauth::OauthService;
use crate::startup::Application;
use crate::store::{AccountRow, Store};

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
    /// Check or print the configuration.
    #[command(subcommand)]
    Config(ConfigCommand),
    /// Manage admin users.
    #[command(subcommand)]
    Admin(AdminCommand),
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
    /// Inspect WebAssembly plugins.
    #[command(subcommand)]
    Plugin(PluginCommand),
}

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
    /// Measure calls into a permission-resolver plugin: time per call through the host
    /// (taking a warm instance, the deadline, the call, giving it back), the plugin's own work
    /// included.
    Bench {
        /// The plugin folder.
        path: PathBuf,
        /// How many calls to time.
        #[arg(long, default_value_t = 100_000)]
        calls: u32,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Revoke every token of one admin user or customer: stored tokens are deleted and bearer
    /// tokens issued until now are refused.
    Revoke {
        /// The admin user's username.
        #[arg(
            long,
            conflicts_with = "customer",
            required_unless_present = "customer"
        )]
        admin: Option<String>,
        /// The customer's email.
        #[arg(long)]
        customer: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum CronCommand {
    /// Run one job now, or every job when none is named.
    Run {
        /// outdated_authentication_failures_cleanup, expired_tokens_cleanup, nonce_cleanup or
        /// stale_tokens_cleanup.
        job: Option<String>,
    },
    /// List the jobs with their schedules and recent runs.
    List,
}

#[derive(Debug, Subcommand)]
pub enum IntegrationCommand {
    /// List integrations.
    List(ListArgs),
    /// Show one integration (by name or id); secrets only with --show-secrets.
    Show {
        integration: String,
        /// Also print the consumer secret and the access token and its secret.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Create an integration.
    Create {
        #[arg(long)]
        name: String,
        #[arg(long)]
        email: Option<String>,
        /// Endpoint that receives the OAuth credentials on activation.
        #[arg(long)]
        endpoint: Option<String>,
        /// Page the admin is sent to after activation, to sign in to the integrator.
        #[arg(long)]
        identity_link: Option<String>,
        /// An ACL resource to grant (its ancestors come with it); repeat for several.
        #[arg(long = "resource", value_name = "RESOURCE_ID")]
        resources: Vec<String>,
        /// Grant every resource (Magento_Backend::all).
        #[arg(long, conflicts_with = "resources")]
        all_resources: bool,
    },
    /// Activate an integration: run the token exchange with its endpoint, or mint its tokens.
    Activate {
        integration: String,
        /// Print the minted access token and secrets.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Replace an integration's tokens (the consumer key and secret stay).
    Reauthorize {
        integration: String,
        /// Print the minted access token and secrets.
        #[arg(long)]
        show_secrets: bool,
    },
    /// Delete an integration with its consumer, tokens and permissions.
    Delete { integration: String },
    /// Sync the declarative integration files of `integrations.directories` now: create new
    /// ones, reset changed ones, delete removed ones. A bad file changes nothing.
    Sync,
    /// Print the ACL resource tree an integration can be granted.
    Resources,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, HOST:PORT (port 0 picks a free port). Overrides server.listen.
    #[arg(long, value_name = "HOST:PORT")]
    pub listen: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Load and validate the configuration; report the first error with its key.
    Check,
    /// Print a commented template of every setting with its default.
    PrintDefault,
    /// Print a new random key, ID:BASE64, for crypto.secret_keys, crypto.lookup_key or
    /// tokens.signing_keys.
    GenerateKey {
        /// Key id, 1-32 characters of A-Z a-z 0-9 . _ -
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create an admin user; the password is prompted for (or read from standard input).
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        firstname: String,
        #[arg(long, default_value = "")]
        lastname: String,
    },
    /// Set an admin user's password (prompted for, or read from standard input).
    Passwd { username: String },
    /// Deactivate an admin user and revoke their tokens.
    Disable { username: String },
    /// Reactivate an admin user.
    Enable { username: String },
    /// Delete an admin user; their tokens are revoked.
    Delete { username: String },
    /// List admin users.
    List(ListArgs),
}

#[derive(Debug, Subcommand)]
pub enum CustomerCommand {
    /// Create a customer; the password is prompted for (or read from standard input).
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "")]
        firstname: String,
        #[arg(long, default_value = "")]
        lastname: String,
    },
    /// Deactivate a customer and revoke their tokens.
    Disable { email: String },
    /// Reactivate a customer.
    Enable { email: String },
    /// Delete a customer; their tokens are revoked.
    Delete { email: String },
    /// List customers.
    List(ListArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Print JSON lines instead of a table.
    #[arg(long)]
    pub json: bool,
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

/// The runtime of the command. HTTP requests run on actix's own worker threads; this one
/// only carries background work (the nonce writer, database pool upkeep, activation POSTs), for
/// which one thread is plenty and idle siblings would only spin looking for work.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()?)
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
    crate::telemetry::init(&settings.log);
    match cli.command {
        Command::Serve(_) => runtime()?.block_on(serve(settings)),
        Command::Migrate => runtime()?.block_on(migrate(settings)),
        Command::Config(ConfigCommand::Check) => check(&settings),
        Command::Config(_) => unreachable!("handled before loading the configuration"),
        Command::Admin(cmd) => runtime()?.block_on(admin(settings, cmd)),
        Command::Customer(cmd) => runtime()?.block_on(customer(settings, cmd)),
        Command::Integration(cmd) => runtime()?.block_on(integration(settings, cmd)),
        Command::Token(cmd) => runtime()?.block_on(token(settings, cmd)),
        Command::Cron(cmd) => runtime()?.block_on(cron(settings, cmd)),
        Command::Plugin(cmd) => runtime()?.block_on(plugin(settings, cmd)),
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    let mut app = Application::build(settings).await?;
    if let Some(admin) = app.take_bootstrap_admin() {
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

async fn open_store(settings: &Settings) -> anyhow::Result<Store> {
    let url = settings.database_url();
    let store = Store::connect(&url, &settings.database)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open database {}: {e}", url.redacted()))?;
    store.migrate().await?;
    Ok(store)
}

async fn migrate(settings: Settings) -> anyhow::Result<()> {
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

fn check(settings: &Settings) -> anyhow::Result<()> {
    let url = settings.database_url();
    let missing = crate::crypto::missing_keys(settings);
    let keys = if missing.is_empty() {
        "from the configuration".to_owned()
    } else if url.is_sqlite() {
        format!(
            "{} from {} (generated on first start if missing)",
            missing.join(", "),
            settings.data_dir.join("keys.toml").display()
        )
    } else {
        anyhow::bail!(
            "configuration key `{}` is not set: with PostgreSQL every server process must share \
             the same keys; create them with `integration-host config generate-key ID`",
            missing.join("`, `")
        );
    };
    println!("configuration OK");
    println!("  listen:   {}", settings.server.listen);
    println!("  base URL: {}", settings.server.base_url.as_str());
    println!("  database: {}", url.redacted());
    println!("  data dir: {}", settings.data_dir.display());
    println!("  keys:     {keys}");
    Ok(())
}

/// Reads a new password: prompted twice on a terminal, one line of standard input otherwise.
fn read_new_password() -> anyhow::Result<Password> {
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

async fn admin(settings: Settings, cmd: AdminCommand) -> anyhow::Result<()> {
    let service = AccountService::new(open_store(&settings).await?);
    let kind = AccountKind::Admin;
    match cmd {
        AdminCommand::Create {
            username,
            email,
            firstname,
            lastname,
        } => {
            let input = AccountInput {
                username: Some(Username::parse(&username)?),
                email: Email::parse(&email)?,
                firstname,
                lastname,
                password: read_new_password()?,
            };
            let id = service.create(kind, input).await?;
            println!("created admin user {username} (id {id})");
        }
        AdminCommand::Passwd { username } => {
            service.get(kind, &username).await?;
            service
                .set_password(kind, &username, read_new_password()?)
                .await?;
            println!("password of admin user {username} changed");
        }
        AdminCommand::Disable { username } => {
            let account = service.get(kind, &username).await?;
            service.set_active(kind, &username, false).await?;
            revoked(kind, account.id, RevocationReason::Deactivated).await;
            println!("admin user {username} disabled; their tokens are revoked");
        }
        AdminCommand::Enable { username } => {
            service.set_active(kind, &username, true).await?;
            println!("admin user {username} enabled");
        }
        AdminCommand::Delete { username } => {
            let a = service.delete(kind, &username).await?;
            revoked(kind, a.id, RevocationReason::Deleted).await;
            println!(
                "admin user {} (id {}) deleted; their tokens are revoked",
                a.login, a.id
            );
        }
        AdminCommand::List(args) => print_accounts(&service.list(kind).await?, &args, "USERNAME"),
    }
    Ok(())
}

async fn customer(settings: Settings, cmd: CustomerCommand) -> anyhow::Result<()> {
    let service = AccountService::new(open_store(&settings).await?);
    let kind = AccountKind::Customer;
    match cmd {
        CustomerCommand::Create {
            email,
            firstname,
            lastname,
        } => {
            let input = AccountInput {
                username: None,
                email: Email::parse(&email)?,
                firstname,
                lastname,
                password: read_new_password()?,
            };
            let id = service.create(kind, input).await?;
            println!("created customer {email} (id {id})");
        }
        CustomerCommand::Disable { email } => {
            let account = service.get(kind, &email).await?;
            service.set_active(kind, &email, false).await?;
            revoked(kind, account.id, RevocationReason::Deactivated).await;
            println!("customer {email} disabled; their tokens are revoked");
        }
        CustomerCommand::Enable { email } => {
            service.set_active(kind, &email, true).await?;
            println!("customer {email} enabled");
        }
        CustomerCommand::Delete { email } => {
            let a = service.delete(kind, &email).await?;
            revoked(kind, a.id, RevocationReason::Deleted).await;
            println!(
                "customer {} (id {}) deleted; their tokens are revoked",
                a.login, a.id
            );
        }
        CustomerCommand::List(args) => print_accounts(&service.list(kind).await?, &args, "EMAIL"),
    }
    Ok(())
}

/// Reports a revocation made by an account command as the services report theirs: the
/// `tokens_revoked` event, written to the audit log.
async fn revoked(kind: AccountKind, user_id: i64, reason: RevocationReason) {
    use crate::events::{AuditLog, Dispatcher, Event, Mode, TokensRevoked};
    let events = Dispatcher::new();
    events
        .subscribe(&["*"], Mode::Sync, std::sync::Arc::new(AuditLog))
        .expect("every event name is known");
    events
        .notify(Event::TokensRevoked(TokensRevoked {
            account: kind,
            user_id,
            reason,
        }))
        .await;
}

async fn token(settings: Settings, cmd: TokenCommand) -> anyhow::Result<()> {
    let TokenCommand::Revoke { admin, customer } = cmd;
    let store = open_store(&settings).await?;
    let keys = std::sync::Arc::new(crate::crypto::resolve_keys(&settings)?);
    let services = crate::services::Services::build(store, keys, &settings)?;
    let (kind, login) = match (admin, customer) {
        (Some(a), _) => (AccountKind::Admin, a),
        (None, Some(c)) => (AccountKind::Customer, c),
        (None, None) => anyhow::bail!("name --admin USERNAME or --customer EMAIL"),
    };
    let account = services.tokens.accounts().get(kind, &login).await?;
    services
        .tokens
        .revoke(kind, account.id, RevocationReason::Admin)
        .await?;
    services.events.flush().await;
    println!("every token of {login} (id {}) is revoked", account.id);
    Ok(())
}

async fn cron(settings: Settings, cmd: CronCommand) -> anyhow::Result<()> {
    use crate::jobs::Job;
    let store = open_store(&settings).await?;
    match cmd {
        CronCommand::Run { job } => {
            let jobs = match job {
                None => Job::ALL.to_vec(),
                Some(name) => vec![Job::parse(&name).ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown job `{name}`; jobs are {}",
                        Job::ALL.map(Job::name).join(", ")
                    )
                })?],
            };
            for job in jobs {
                let n = job.run(&store, &settings).await?;
                println!("{}: deleted {n} rows", job.name());
            }
        }
        CronCommand::List => {
            println!("{:<42} {:<14} LAST RUN", "JOB", "SCHEDULE");
            for job in Job::ALL {
                let last = store
                    .job_runs(job.name())
                    .await?
                    .into_iter()
                    .next()
                    .map(|(at, status, n)| format!("{} {status}, {n} rows", iso8601(at)))
                    .unwrap_or_else(|| "never".into());
                println!(
                    "{:<42} {:<14} {last}",
                    job.name(),
                    job.schedule(&settings).as_str()
                );
            }
        }
    }
    Ok(())
}

async fn integration_services(
    settings: &Settings,
) -> anyhow::Result<(IntegrationService, OauthService)> {
    let store = open_store(settings).await?;
    let keys = std::sync::Arc::new(crate::crypto::resolve_keys(settings)?);
    let services = crate::services::Services::build(store, keys, settings)?;
    Ok((services.integrations, services.oauth))
}

async fn find_integration(
    service: &IntegrationService,
    which: &str,
) -> anyhow::Result<Integration> {
    if let Some(found) = service.find_by_name(which).await? {
        return Ok(found);
    }
    match which.parse::<i64>() {
        Ok(id) => Ok(service.get(id).await?),
        Err(_) => anyhow::bail!("integration `{which}` does not exist"),
    }
}

async fn print_secrets(oauth: &OauthService, integration: &Integration) -> anyhow::Result<()> {
    let consumer = oauth.load_consumer(integration.consumer_id).await?;
    println!("consumer key:        {}", consumer.key);
    println!("consumer secret:     {}", consumer.secret);
    match oauth.get_access_token(integration.consumer_id).await? {
        Some(pair) => {
            println!("access token:        {}", pair.token);
            println!("access token secret: {}", pair.secret);
        }
        None => println!("access token:        (none yet)"),
    }
    Ok(())
}

async fn integration(settings: Settings, cmd: IntegrationCommand) -> anyhow::Result<()> {
    let (service, oauth) = integration_services(&settings).await?;
    match cmd {
        IntegrationCommand::List(args) => {
            let all = service.list().await?;
            if args.json {
                for i in &all {
                    println!(
                        "{}",
                        serde_json::json!({
                            "id": i.id, "name": i.name, "email": i.email, "endpoint": i.endpoint,
                            "identity_link_url": i.identity_link_url, "status": i.status.label(),
                            "setup_type": if i.setup_type == SetupType::Config { "config" } else { "manual" },
                        })
                    );
                }
            } else {
                println!(
                    "{:<6} {:<32} {:<9} {:<7} ENDPOINT",
                    "ID", "NAME", "STATUS", "SETUP"
                );
                for i in &all {
                    println!(
                        "{:<6} {:<32} {:<9} {:<7} {}",
                        i.id,
                        i.name,
                        i.status.label(),
                        if i.setup_type == SetupType::Config {
                            "config"
                        } else {
                            "manual"
                        },
                        i.endpoint
                    );
                }
            }
        }
        IntegrationCommand::Show {
            integration,
            show_secrets,
        } => {
            let i = find_integration(&service, &integration).await?;
            let consumer = oauth.load_consumer(i.consumer_id).await?;
            println!("id:                  {}", i.id);
            println!("name:                {}", i.name);
            println!("email:               {}", i.email);
            println!("endpoint:            {}", i.endpoint);
            println!("identity link URL:   {}", i.identity_link_url);
            println!("status:              {}", i.status.label());
            println!(
                "setup:               {}",
                if i.is_config() {
                    "config (read-only)"
                } else {
                    "manual"
                }
            );
            let resources = match service.selected_resources(i.id).await? {
                Grants::All => "all".to_owned(),
                Grants::Some(set) if set.is_empty() => "(none)".to_owned(),
                Grants::Some(set) => set
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            println!("resources:           {resources}");
            println!("created:             {}", iso8601(i.created_at));
            if show_secrets {
                print_secrets(&oauth, &i).await?;
            } else {
                println!("consumer key:        {}", consumer.key);
                println!("(secrets hidden; add --show-secrets to print them)");
            }
        }
        IntegrationCommand::Create {
            name,
            email,
            endpoint,
            identity_link,
            resources,
            all_resources,
        } => {
            let form = IntegrationForm {
                name,
                email,
                endpoint,
                identity_link_url: identity_link,
                all_resources,
                resources,
            };
            let input = IntegrationInput::parse(&form, SetupType::Manual)
                .map_err(|e| anyhow::anyhow!("--{}: {e}", e.field.replace('_', "-")))?;
            let created = service.create(input).await?;
            println!("created integration {} (id {})", created.name, created.id);
        }
        IntegrationCommand::Sync => {
            // Config-provider plugins declare integrations too: load them as the server does.
            let plugins = crate::plugins::PluginHost::new(
                &settings.plugins,
                &settings.data_dir,
                crate::events::Dispatcher::new(),
            )?;
            plugins.reload().await;
            let report = crate::declarative::sync_integrations(
                &service,
                &settings.integrations.directories,
                &plugins,
                false,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}\nnothing was changed"))?
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "nothing to sync: set integrations.directories (or APP_INTEGRATIONS__DIRECTORIES) or plugins.directories"
                )
            })?;
            for (what, names) in [
                ("created", &report.created),
                ("updated and reset", &report.updated),
                ("removed", &report.removed),
                ("unchanged", &report.unchanged),
            ] {
                for n in names {
                    println!("{what}: {n}");
                }
            }
            println!("sync done: {report}");
        }
        IntegrationCommand::Resources => {
            for (depth, r) in service.authorization().tree().walk() {
                println!("{}{} ({})", "  ".repeat(depth), r.id, r.title);
            }
        }
        IntegrationCommand::Activate {
            integration,
            show_secrets,
        } => activate(&service, &oauth, &integration, false, show_secrets).await?,
        IntegrationCommand::Reauthorize {
            integration,
            show_secrets,
        } => activate(&service, &oauth, &integration, true, show_secrets).await?,
        IntegrationCommand::Delete { integration } => {
            let i = find_integration(&service, &integration).await?;
            service.delete(i.id).await?;
            println!("deleted integration {} (id {})", i.name, i.id);
        }
    }
    Ok(())
}

async fn activate(
    service: &IntegrationService,
    oauth: &OauthService,
    integration: &str,
    reauthorize: bool,
    show_secrets: bool,
) -> anyhow::Result<()> {
    let i = find_integration(service, integration).await?;
    match service.activate(i.id, reauthorize).await? {
        Activation::IdentityLink(link) => {
            println!(
                "credentials posted to {}; the integrator now exchanges its tokens.",
                i.endpoint
            );
            println!("identity link: {link}");
        }
        Activation::Minted => {
            println!("integration {} is active with a new access token", i.name);
            if show_secrets {
                print_secrets(oauth, &i).await?;
            } else {
                println!("(add --show-secrets to print the tokens)");
            }
        }
    }
    Ok(())
}

fn print_accounts(rows: &[AccountRow], args: &ListArgs, login_header: &str) {
    if args.json {
        for r in rows {
            println!(
                "{}",
                serde_json::json!({
                    "id": r.id, "login": r.login, "email": r.email, "firstname": r.firstname,
                    "lastname": r.lastname, "active": r.is_active, "created_at": r.created_at,
                })
            );
        }
        return;
    }
    println!(
        "{:<6} {:<32} {:<32} {:<8} CREATED",
        "ID", login_header, "NAME", "ACTIVE"
    );
    for r in rows {
        let name = format!("{} {}", r.firstname, r.lastname);
        println!(
            "{:<6} {:<32} {:<32} {:<8} {}",
            r.id,
            r.login,
            name.trim(),
            if r.is_active { "yes" } else { "no" },
            iso8601(r.created_at)
        );
    }
}

async fn plugin(settings: Settings, cmd: PluginCommand) -> anyhow::Result<()> {
    use crate::plugins::{PluginHost, PluginInfo, v1};
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
        if !p.description.is_empty() {
            println!("  {}", p.description);
        }
    }
    match cmd {
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
            for p in host.list() {
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
            let dir = if path
                .file_name()
                .is_some_and(|f| f == crate::plugins::manifest::FILE)
            {
                path.parent()
                    .map(std::path::Path::to_path_buf)
                    .unwrap_or_default()
            } else {
                path
            };
            let host = PluginHost::standalone(&settings.plugins, &settings.data_dir)?;
            match host.load_folder(&dir).await {
                Ok(p) => {
                    show(&p.info());
                    println!("ok: the plugin loads and starts");
                }
                Err(problem) => anyhow::bail!("{problem}"),
            }
        }
        PluginCommand::Bench { path, calls } => {
            let host = PluginHost::standalone(&settings.plugins, &settings.data_dir)?;
            let plugin = host
                .load_folder(&path)
                .await
                .map_err(|p| anyhow::anyhow!("{p}"))?;
            let request = std::sync::Arc::new(v1::ResolverRequest {
                principal: v1::wit::Principal::Admin(v1::wit::Account {
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
            for _ in 0..1000 {
                plugin.resolve(&request).await.map_err(anyhow::Error::msg)?;
            }
            let calls = calls.max(1);
            let mut times = Vec::with_capacity(calls as usize);
            let all = std::time::Instant::now();
            for _ in 0..calls {
                let t = std::time::Instant::now();
                plugin.resolve(&request).await.map_err(anyhow::Error::msg)?;
                times.push(t.elapsed());
            }
            let total = all.elapsed();
            times.sort();
            let pct = |q: f64| times[((times.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
            println!(
                "plugin call ({}, permission resolver): {calls} calls, mean {:.2} µs, p50 {:.2} µs, p99 {:.2} µs",
                plugin.id(),
                total.as_secs_f64() * 1e6 / f64::from(calls),
                pct(0.5),
                pct(0.99)
            );
        }
    }
    Ok(())
}
