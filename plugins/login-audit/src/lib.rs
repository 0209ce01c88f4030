//! A `customer_login` observer: logs every customer sign-in with the client's address and
//! user agent, and refuses sign-ins of email domains the operator blocks in the manifest's
//! `[config]` (`blocked_domains`). It runs sync, so its veto stops the token from being issued.

use integration_host_sdk::prelude::*;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Email domains whose customers may not sign in for a token.
    #[serde(default)]
    blocked_domains: Vec<String>,
}

/// The blocked domains, lower case.
struct LoginAudit {
    blocked: Vec<String>,
}

impl Plugin for LoginAudit {
    type Config = Config;

    fn new(config: Config) -> Result<Self, PluginError> {
        Ok(Self {
            blocked: config
                .blocked_domains
                .iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
        })
    }
}

impl Observer for LoginAudit {
    fn on_event(&self, event: Event) -> Result<Outcome, PluginError> {
        let Event::CustomerLogin(login) = event else {
            return Ok(Outcome::Proceed);
        };
        let address = login.client_address.as_deref().unwrap_or("unknown");
        let agent = login.user_agent.as_deref().unwrap_or("");
        let domain = login
            .email
            .rsplit_once('@')
            .map(|(_, d)| d.to_ascii_lowercase());
        if domain.is_some_and(|d| self.blocked.contains(&d)) {
            warn!(
                "customer sign-in refused: blocked email domain",
                customer_id = login.customer_id,
                email = login.email,
                client_address = address,
            );
            return Ok(Outcome::Veto(
                "Sign-in for customers of this email domain is disabled.".into(),
            ));
        }
        info!(
            "customer signed in",
            customer_id = login.customer_id,
            email = login.email,
            name = format!("{} {}", login.firstname, login.lastname),
            client_address = address,
            user_agent = agent,
            at = login.at,
        );
        Ok(Outcome::Proceed)
    }
}

register!(LoginAudit: observer);
