//! Integrations from the command line: list, show, create, activate, reauthorize, delete,
//! sync the definition files, and print the resource tree.

use clap::Subcommand;

use super::common::{ListArgs, open_store};
use crate::acl::Grants;
use crate::clock::iso8601;
use crate::config::Settings;
use crate::domain::SetupType;
use crate::services::integration::{
    Activation, Integration, IntegrationForm, IntegrationInput, IntegrationService,
};
use crate::services::oauth::OauthService;

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

pub(super) async fn integration(settings: Settings, cmd: IntegrationCommand) -> anyhow::Result<()> {
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
