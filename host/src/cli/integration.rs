//! Integrations from the command line: list, show, create, activate, reauthorize, delete,
//! sync the definition files, and print the resource tree.

use clap::Subcommand;

use super::common::{ListArgs, open_store};
use crate::acl::Grants;
use crate::clock::iso8601;
use crate::config::Settings;
use crate::domain::{IntegrationStatus, SetupType};
use crate::services::integration::{
    Activation, Integration, IntegrationForm, IntegrationInput, IntegrationService,
};
use crate::services::oauth::OauthService;
use crate::services::search::{Filter, FilterGroup, SearchCriteria, like_containing};

/// Which integrations `integration list` shows, and which page of them.
#[derive(Debug, clap::Args)]
pub struct IntegrationListArgs {
    #[command(flatten)]
    pub list: ListArgs,
    /// Only names containing this text (case-insensitive).
    #[arg(long)]
    pub name: Option<String>,
    /// Only these statuses (active, inactive, reset or 0, 1, 2); repeat or separate with commas.
    #[arg(long, value_delimiter = ',', value_parser = parse_status)]
    pub status: Vec<IntegrationStatus>,
    /// The page to show, from 1.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub page: u32,
    /// Integrations per page ([webapi] default_page_size when not given; at most
    /// maximum_page_size).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub page_size: Option<u32>,
    /// Every page, one after the other (`--page` is where it starts).
    #[arg(long)]
    pub all: bool,
}

/// A status by label (any case) or code.
fn parse_status(text: &str) -> Result<IntegrationStatus, String> {
    let text = text.trim();
    text.parse::<i64>()
        .ok()
        .and_then(IntegrationStatus::from_code)
        .or_else(|| {
            IntegrationStatus::ALL
                .into_iter()
                .find(|s| s.label().eq_ignore_ascii_case(text))
        })
        .ok_or_else(|| "a status is active, inactive, reset, 0, 1 or 2".to_owned())
}

impl IntegrationListArgs {
    /// The search criteria of these flags, for page `page`.
    fn criteria(&self, page: u32) -> SearchCriteria {
        let mut groups = Vec::new();
        if let Some(name) = &self.name {
            // The text itself, not a pattern: its wildcards escaped.
            let pattern = like_containing(name);
            groups.push(FilterGroup {
                filters: vec![Filter {
                    field: "name".into(),
                    value: pattern,
                    condition_type: "like".into(),
                }],
            });
        }
        if !self.status.is_empty() {
            groups.push(FilterGroup {
                filters: vec![Filter {
                    field: "status".into(),
                    value: self
                        .status
                        .iter()
                        .map(|s| s.code().to_string())
                        .collect::<Vec<_>>()
                        .join(","),
                    condition_type: "in".into(),
                }],
            });
        }
        SearchCriteria {
            filter_groups: groups,
            sort_orders: Vec::new(),
            page_size: self.page_size,
            current_page: Some(page),
        }
    }
}

#[derive(Debug, Subcommand)]
pub enum IntegrationCommand {
    /// List integrations, a page at a time (by name; `--all` for every page).
    List(IntegrationListArgs),
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

/// A page of integrations: JSON lines, or table rows (under a header when `header`).
fn print_integrations(items: &[(Integration, Grants)], json: bool, header: bool) {
    if header {
        println!(
            "{:<6} {:<32} {:<9} {:<7} ENDPOINT",
            "ID", "NAME", "STATUS", "SETUP"
        );
    }
    for (i, _) in items {
        if json {
            println!(
                "{}",
                serde_json::json!({
                    "id": i.id, "name": i.name, "email": i.email, "endpoint": i.endpoint,
                    "identity_link_url": i.identity_link_url, "status": i.status.label(),
                    "setup_type": i.setup_type.as_str(),
                })
            );
        } else {
            println!(
                "{:<6} {:<32} {:<9} {:<7} {}",
                i.id,
                i.name,
                i.status.label(),
                i.setup_type.as_str(),
                i.endpoint
            );
        }
    }
}

pub(super) async fn integration(settings: Settings, cmd: IntegrationCommand) -> anyhow::Result<()> {
    let (service, oauth) = integration_services(&settings).await?;
    match cmd {
        IntegrationCommand::List(args) => {
            let mut page = args.page;
            let mut header = !args.list.json;
            loop {
                let found = service.search(&args.criteria(page)).await?;
                print_integrations(&found.items, args.list.json, header);
                header = false;
                let size = u64::from(found.search_criteria.page_size.unwrap_or(1));
                let pages = found.total_count.div_ceil(size).max(1);
                if args.all && u64::from(page) < pages {
                    page += 1;
                    continue;
                }
                // Where the list stands goes to standard error: standard output stays the list.
                if !args.all || args.page > 1 {
                    eprintln!(
                        "page {page} of {pages} ({} integration{} in all){}",
                        found.total_count,
                        if found.total_count == 1 { "" } else { "s" },
                        if u64::from(page) < pages {
                            format!("; the next with --page {}", page + 1)
                        } else {
                            String::new()
                        }
                    );
                }
                break;
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
