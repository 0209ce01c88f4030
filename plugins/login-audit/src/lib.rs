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

/// The logic, tested natively (`cargo test -p login-audit` in plugins/) with the SDK's test
/// double for the host.
#[cfg(test)]
mod tests {
    use super::*;
    use integration_host_sdk::testing;

    fn audit() -> LoginAudit {
        testing::plugin(r#"{"blocked_domains": ["Blocked.example"]}"#).unwrap()
    }

    #[test]
    fn a_blocked_domain_is_refused_and_logged() {
        let outcome = audit()
            .on_event(testing::customer_login("jo@blocked.EXAMPLE"))
            .unwrap();
        assert!(matches!(outcome, Outcome::Veto(ref m) if m.contains("disabled")));
        let logs = testing::logs();
        assert_eq!(logs.len(), 1);
        assert_eq!(
            logs[0].message,
            "customer sign-in refused: blocked email domain"
        );
        assert_eq!(logs[0].field("email"), Some("jo@blocked.EXAMPLE"));
    }

    #[test]
    fn other_sign_ins_and_events_proceed() {
        let audit = audit();
        let outcome = audit
            .on_event(testing::customer_login("jo@example.com"))
            .unwrap();
        assert!(matches!(outcome, Outcome::Proceed));
        assert_eq!(testing::logs()[0].message, "customer signed in");
        let other = Event::IntegrationDeleted(IntegrationRef {
            id: 1,
            name: "Shop".into(),
        });
        assert!(matches!(audit.on_event(other).unwrap(), Outcome::Proceed));
    }

    #[test]
    fn a_configuration_that_does_not_fit_is_refused() {
        let e = testing::plugin::<LoginAudit>(r#"{"blocked_domain": ["x"]}"#)
            .err()
            .unwrap();
        assert!(matches!(e, PluginError::BadConfig(ref m) if m.contains("blocked_domain")));
    }

    #[test]
    fn the_collector_gets_each_sign_in_and_its_failure_is_only_logged() {
        testing::set_variable("collector_url", "https://siem.example/ingest");
        let sent = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let seen = sent.clone();
        testing::answer_http(move |request| {
            seen.borrow_mut()
                .push(String::from_utf8_lossy(request.body_bytes()).into_owned());
            Ok(http::Response {
                status: 503,
                headers: Vec::new(),
                body: Vec::new(),
            })
        });
        let outcome = audit()
            .on_event(testing::customer_login("jo@example.com"))
            .unwrap();
        assert!(matches!(outcome, Outcome::Proceed));
        let sent: serde_json::Value = serde_json::from_str(&sent.borrow()[0]).unwrap();
        assert_eq!(sent["outcome"], "accepted");
        assert_eq!(sent["email"], "jo@example.com");
        let logs = testing::logs();
        assert_eq!(logs[1].message, "the collector refused a sign-in record");
        assert_eq!(logs[1].field("status"), Some("503"));
    }
}
