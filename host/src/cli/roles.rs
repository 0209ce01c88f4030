//! Admin roles: `role create|list|show|update|delete`. A role grants every resource
//! (`--all-resources`) or the resources named with `--resource` (ancestors implied); admins get
//! one with `admin create --role` or `admin set-role`.

use std::sync::Arc;

use clap::{Args, Subcommand};

use super::common::{ListArgs, open_store};
use crate::acl::{Grants, ResourceTree};
use crate::config::Settings;
use crate::services::accounts::AccountService;
use crate::services::roles::{Role, RoleInput, RoleService};
use crate::store::Store;

#[derive(Debug, Subcommand)]
pub enum RoleCommand {
    /// Create a role.
    Create {
        name: String,
        #[command(flatten)]
        grants: GrantArgs,
    },
    /// List the roles, with what each grants and how many admin users hold it.
    List(ListArgs),
    /// Show a role: what it grants and who holds it.
    Show {
        name: String,
        /// Print JSON instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Replace what a role grants (and rename it with --name); it applies to its admin users
    /// at their next request.
    Update {
        name: String,
        #[command(flatten)]
        grants: GrantArgs,
        /// A new name.
        #[arg(long = "name", value_name = "NEW_NAME")]
        rename: Option<String>,
    },
    /// Delete a role no admin user holds.
    Delete { name: String },
}

/// What a role grants: every resource, or those named.
#[derive(Debug, Args)]
#[group(required = true, multiple = false)]
pub struct GrantArgs {
    /// An ACL resource id (repeatable); its ancestors are granted with it.
    #[arg(long = "resource", value_name = "ID")]
    resources: Vec<String>,
    /// Grant every resource (Magento_Backend::all).
    #[arg(long)]
    all_resources: bool,
}

/// The role service on the configured ACL tree.
pub(super) fn service(settings: &Settings, store: Store) -> anyhow::Result<RoleService> {
    let tree = match &settings.acl.resources_file {
        Some(path) => ResourceTree::load(path)?,
        None => ResourceTree::builtin(),
    };
    Ok(RoleService::new(store, Arc::new(tree)))
}

pub(super) async fn role(settings: Settings, cmd: RoleCommand) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let roles = service(&settings, store.clone())?;
    match cmd {
        RoleCommand::Create { name, grants } => {
            let role = roles.create(&input(name, grants)).await?;
            println!(
                "created role {} (id {}): {}",
                role.name,
                role.id,
                summary(&role)
            );
        }
        RoleCommand::List(args) => {
            let list = roles.list().await?;
            if args.json {
                for r in &list {
                    println!("{}", json(r, None));
                }
            } else {
                println!("{:<6} {:<32} {:<6} RESOURCES", "ID", "NAME", "ADMINS");
                for r in &list {
                    println!("{:<6} {:<32} {:<6} {}", r.id, r.name, r.admins, summary(r));
                }
            }
        }
        RoleCommand::Show {
            name,
            json: as_json,
        } => {
            let role = roles.by_name(&name).await?;
            let names = roles.names_by_admin().await?;
            let accounts = AccountService::new(store);
            let mut holders: Vec<String> = Vec::new();
            for a in accounts.list(crate::domain::AccountKind::Admin).await? {
                if names.get(&a.id).is_some_and(|n| n == &role.name) {
                    holders.push(a.login);
                }
            }
            if as_json {
                println!("{}", json(&role, Some(&holders)));
            } else {
                println!("role {} (id {})", role.name, role.id);
                println!("grants: {}", summary(&role));
                if let Grants::Some(set) = &role.grants {
                    for r in set {
                        let title = roles
                            .tree()
                            .get(r.as_str())
                            .map(|n| n.title.as_str())
                            .unwrap_or("");
                        println!("  {r}  {title}");
                    }
                }
                if holders.is_empty() {
                    println!("admin users: none");
                } else {
                    println!("admin users: {}", holders.join(", "));
                }
            }
        }
        RoleCommand::Update {
            name,
            grants,
            rename,
        } => {
            let current = roles.by_name(&name).await?;
            let role = roles
                .update(current.id, &input(rename.unwrap_or(current.name), grants))
                .await?;
            println!(
                "role {} (id {}) now grants {}; it applies to its {} admin user{} at once",
                role.name,
                role.id,
                summary(&role),
                role.admins,
                if role.admins == 1 { "" } else { "s" }
            );
        }
        RoleCommand::Delete { name } => {
            let current = roles.by_name(&name).await?;
            let role = roles.delete(current.id).await?;
            println!("role {} (id {}) deleted", role.name, role.id);
        }
    }
    Ok(())
}

fn input(name: String, grants: GrantArgs) -> RoleInput {
    RoleInput {
        name,
        all_resources: grants.all_resources,
        resources: grants.resources,
    }
}

/// What a role grants, in a few words.
fn summary(role: &Role) -> String {
    match &role.grants {
        Grants::All => "all resources".into(),
        Grants::Some(set) => format!(
            "{} resource{}",
            set.len(),
            if set.len() == 1 { "" } else { "s" }
        ),
    }
}

fn json(role: &Role, holders: Option<&[String]>) -> serde_json::Value {
    let mut v = serde_json::json!({
        "id": role.id,
        "name": role.name,
        "all_resources": role.grants == Grants::All,
        "resources": match &role.grants {
            Grants::All => Vec::new(),
            Grants::Some(_) => role.grants.to_rules(),
        },
        "admins": role.admins,
    });
    if let Some(h) = holders {
        v["admin_users"] = serde_json::json!(h);
    }
    v
}
