//! Admin users and customers: one implementation of create, password, disable, enable,
//! delete and list for both kinds (the two command groups differ only in the login they name),
//! an admin's role, and revoking an account's tokens.

use clap::Subcommand;

use super::common::{ListArgs, open_store, read_new_password};
use crate::clock::iso8601;
use crate::config::Settings;
use crate::domain::{AccountKind, RevocationReason};
use crate::services::accounts::{AccountInput, AccountService, Email, Username};
use crate::store::AccountRow;

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
        /// The role they hold (see `role list`).
        #[arg(long, default_value = crate::store::ADMINISTRATORS)]
        role: String,
    },
    /// Give an admin user a role (it applies at their next request), or take it away with
    /// --none (they can no longer sign in, and their tokens reach nothing).
    SetRole {
        username: String,
        #[arg(required_unless_present = "none")]
        role: Option<String>,
        #[arg(long, conflicts_with = "role")]
        none: bool,
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
    /// Set a customer's password (prompted for, or read from standard input).
    Passwd { email: String },
    /// Deactivate a customer and revoke their tokens.
    Disable { email: String },
    /// Reactivate a customer.
    Enable { email: String },
    /// Delete a customer; their tokens are revoked.
    Delete { email: String },
    /// List customers.
    List(ListArgs),
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

/// What an account command does, whichever kind of account it names.
#[derive(Debug)]
pub(super) enum Action {
    Create {
        username: Option<String>,
        email: String,
        firstname: String,
        lastname: String,
        role: Option<String>,
    },
    SetRole {
        username: String,
        role: Option<String>,
    },
    Passwd(String),
    Disable(String),
    Enable(String),
    Delete(String),
    List(ListArgs),
}

impl From<AdminCommand> for Action {
    fn from(cmd: AdminCommand) -> Self {
        match cmd {
            AdminCommand::Create {
                username,
                email,
                firstname,
                lastname,
                role,
            } => Action::Create {
                username: Some(username),
                email,
                firstname,
                lastname,
                role: Some(role),
            },
            AdminCommand::SetRole { username, role, .. } => Action::SetRole { username, role },
            AdminCommand::Passwd { username } => Action::Passwd(username),
            AdminCommand::Disable { username } => Action::Disable(username),
            AdminCommand::Enable { username } => Action::Enable(username),
            AdminCommand::Delete { username } => Action::Delete(username),
            AdminCommand::List(args) => Action::List(args),
        }
    }
}

impl From<CustomerCommand> for Action {
    fn from(cmd: CustomerCommand) -> Self {
        match cmd {
            CustomerCommand::Create {
                email,
                firstname,
                lastname,
            } => Action::Create {
                username: None,
                email,
                firstname,
                lastname,
                role: None,
            },
            CustomerCommand::Passwd { email } => Action::Passwd(email),
            CustomerCommand::Disable { email } => Action::Disable(email),
            CustomerCommand::Enable { email } => Action::Enable(email),
            CustomerCommand::Delete { email } => Action::Delete(email),
            CustomerCommand::List(args) => Action::List(args),
        }
    }
}

/// `admin user` or `customer`, as the commands' messages name an account.
fn noun(kind: AccountKind) -> &'static str {
    match kind {
        AccountKind::Admin => "admin user",
        AccountKind::Customer => "customer",
    }
}

/// Runs an `admin` or `customer` command.
pub(super) async fn account(
    settings: Settings,
    kind: AccountKind,
    action: impl Into<Action>,
) -> anyhow::Result<()> {
    let store = open_store(&settings).await?;
    let service = AccountService::new(store.clone());
    let roles = || super::roles::service(&settings, store.clone());
    let noun = noun(kind);
    match action.into() {
        Action::Create {
            username,
            email,
            firstname,
            lastname,
            role,
        } => {
            let input = AccountInput {
                username: username.as_deref().map(Username::parse).transpose()?,
                email: Email::parse(&email)?,
                firstname,
                lastname,
                password: read_new_password()?,
            };
            // The role's own spelling, for the message (and a clear error before anything
            // is written when it does not exist).
            let role = match (kind, role) {
                (AccountKind::Admin, Some(name)) => roles()?.by_name(&name).await?.name,
                _ => crate::store::ADMINISTRATORS.to_owned(),
            };
            let id = service.create_with_role(kind, input, &role).await?;
            match kind {
                AccountKind::Admin => println!(
                    "created {noun} {} (id {id}) with the role {role}",
                    username.unwrap_or(email)
                ),
                AccountKind::Customer => {
                    println!("created {noun} {} (id {id})", username.unwrap_or(email))
                }
            }
        }
        Action::SetRole { username, role } => {
            let roles = roles()?;
            let account = service.get(kind, &username).await?;
            let role = match role {
                Some(name) => Some(roles.by_name(&name).await?),
                None => None,
            };
            roles
                .assign(account.id, role.as_ref().map(|r| r.id))
                .await?;
            match role {
                Some(r) => println!("admin user {username} now has the role {}", r.name),
                None => println!("admin user {username} has no role: they cannot sign in"),
            }
        }
        Action::Passwd(login) => {
            service.get(kind, &login).await?;
            service
                .set_password(kind, &login, read_new_password()?)
                .await?;
            println!("password of {noun} {login} changed");
        }
        Action::Disable(login) => {
            let account = service.get(kind, &login).await?;
            service.set_active(kind, &login, false).await?;
            revoked(kind, account.id, RevocationReason::Deactivated).await;
            println!("{noun} {login} disabled; their tokens are revoked");
        }
        Action::Enable(login) => {
            service.set_active(kind, &login, true).await?;
            println!("{noun} {login} enabled");
        }
        Action::Delete(login) => {
            let a = service.delete(kind, &login).await?;
            revoked(kind, a.id, RevocationReason::Deleted).await;
            println!(
                "{noun} {} (id {}) deleted; their tokens are revoked",
                a.login, a.id
            );
        }
        Action::List(args) => {
            let header = match kind {
                AccountKind::Admin => "USERNAME",
                AccountKind::Customer => "EMAIL",
            };
            let held = match kind {
                AccountKind::Admin => Some(roles()?.names_by_admin().await?),
                AccountKind::Customer => None,
            };
            print_accounts(&service.list(kind).await?, held.as_ref(), &args, header);
        }
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

pub(super) async fn token(settings: Settings, cmd: TokenCommand) -> anyhow::Result<()> {
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

/// The accounts as a table or JSON lines; admins with their role (`roles`, by admin id).
fn print_accounts(
    rows: &[AccountRow],
    roles: Option<&std::collections::HashMap<i64, String>>,
    args: &ListArgs,
    login_header: &str,
) {
    let role_of = |id: i64| roles.and_then(|r| r.get(&id)).map(String::as_str);
    if args.json {
        for r in rows {
            let mut line = serde_json::json!({
                "id": r.id, "login": r.login, "email": r.email, "firstname": r.firstname,
                "lastname": r.lastname, "active": r.is_active, "created_at": r.created_at,
            });
            if roles.is_some() {
                line["role"] = serde_json::json!(role_of(r.id));
            }
            println!("{line}");
        }
        return;
    }
    let role_header = if roles.is_some() { "ROLE" } else { "" };
    let header = format!(
        "{:<6} {:<32} {:<32} {:<8} {:<20} {role_header}",
        "ID", login_header, "NAME", "ACTIVE", "CREATED"
    );
    println!("{}", header.trim_end());
    for r in rows {
        let name = format!("{} {}", r.firstname, r.lastname);
        let role = match roles {
            Some(_) => role_of(r.id).unwrap_or("(none)"),
            None => "",
        };
        let line = format!(
            "{:<6} {:<32} {:<32} {:<8} {:<20} {role}",
            r.id,
            r.login,
            name.trim(),
            if r.is_active { "yes" } else { "no" },
            iso8601(r.created_at)
        );
        println!("{}", line.trim_end());
    }
}
