//! A `customer_login` observer: logs every customer sign-in with the client's address and
//! user agent, and refuses sign-ins of email domains the operator blocks in the manifest's
//! `[config]` (`blocked_domains`). It runs sync, so its veto stops the token from being issued.

use std::sync::OnceLock;

use integration_host_sdk::{CustomerLogin, Observer, Outcome, PluginError, log, register};
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Email domains whose customers may not sign in for a token.
    #[serde(default)]
    blocked_domains: Vec<String>,
}

/// The configuration, read once per instance (it cannot change until the plugin reloads).
fn config() -> Result<&'static Config, PluginError> {
    static CONFIG: OnceLock<Config> = OnceLock::new();
    if let Some(c) = CONFIG.get() {
        return Ok(c);
    }
    let parsed: Config = integration_host_sdk::config()?;
    Ok(CONFIG.get_or_init(|| parsed))
}

struct LoginAudit;

impl Observer for LoginAudit {
    fn on_customer_login(login: CustomerLogin) -> Result<Outcome, PluginError> {
        let id = login.customer_id.to_string();
        let address = login.client_address.as_deref().unwrap_or("unknown");
        let agent = login.user_agent.as_deref().unwrap_or("");
        let domain = login
            .email
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase());
        let blocked = domain.as_deref().is_some_and(|d| {
            config()
                .map(|c| c.blocked_domains.iter().any(|b| b.eq_ignore_ascii_case(d)))
                .unwrap_or(false)
        });
        if blocked {
            log::warn(
                "customer sign-in refused: blocked email domain",
                &[
                    ("customer_id", &id),
                    ("email", &login.email),
                    ("client_address", address),
                ],
            );
            return Ok(Outcome::Veto(
                "Sign-in for customers of this email domain is disabled.".into(),
            ));
        }
        log::info(
            "customer signed in",
            &[
                ("customer_id", &id),
                ("email", &login.email),
                ("name", &format!("{} {}", login.firstname, login.lastname)),
                ("client_address", address),
                ("user_agent", agent),
                ("at", &login.at.to_string()),
            ],
        );
        Ok(Outcome::Proceed)
    }
}

register!(observer: LoginAudit);
