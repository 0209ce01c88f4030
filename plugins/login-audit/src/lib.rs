//! A `customer_login` observer: logs every customer sign-in with the client's address and
//! user agent, and refuses sign-ins of email domains the operator blocks in the manifest's
//! `[config]` (`blocked_domains`). It runs sync, so its veto stops the token from being issued.
//!
//! When the operator grants it a collector (the variable `collector_url` and outbound HTTP to
//! it, both optional in the manifest), it also POSTs each sign-in there as JSON, a SIEM's
//! input: `{"event": "customer_login", "outcome": "accepted" | "refused", …}`. A collector that
//! fails is logged; it never holds up or refuses a sign-in.

use integration_host_sdk::http;
use integration_host_sdk::prelude::*;
use serde::Deserialize;
use serde_json::json;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Email domains whose customers may not sign in for a token.
    #[serde(default)]
    blocked_domains: Vec<String>,
}

/// The blocked domains, lower case, and the collector, when granted one.
struct LoginAudit {
    blocked: Vec<String>,
    collector: Option<String>,
}

impl LoginAudit {
    /// Sends the sign-in to the collector, if there is one; a failure is only logged.
    fn forward(&self, login: &CustomerLogin, outcome: &str) {
        let Some(url) = &self.collector else {
            return;
        };
        let body = json!({
            "event": "customer_login",
            "outcome": outcome,
            "customer_id": login.customer_id,
            "email": login.email,
            "client_address": login.client_address,
            "user_agent": login.user_agent,
            "at": login.at,
        })
        .to_string();
        match http::Request::post(url, body)
            .header("content-type", "application/json")
            .send()
        {
            Ok(answer) if (200..300).contains(&answer.status) => {}
            Ok(answer) => warn!(
                "the collector refused a sign-in record",
                status = answer.status
            ),
            Err(e) => warn!("the collector cannot be reached", error = e.to_string()),
        }
    }
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
            collector: variable("collector_url"),
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
            self.forward(&login, "refused");
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
        self.forward(&login, "accepted");
        Ok(Outcome::Proceed)
    }
}

register!(LoginAudit: observer);
