//! A before-interceptor: refuses an integration whose endpoint or identity link does not use
//! `https:` when an admin or the Web API creates or changes it (loopback addresses excepted,
//! for integrators testing on their own machine, unless the manifest's `[config]` says
//! `allow_loopback = false`). The refusal is the caller's answer: a 400 in the Web API's shape,
//! a form error in the admin UI; nothing is saved.

use std::net::IpAddr;

use integration_host_sdk::prelude::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Whether `http:` to a loopback address (localhost, 127.0.0.0/8, ::1) is let through.
    #[serde(default = "yes")]
    allow_loopback: bool,
}

fn yes() -> bool {
    true
}

struct EndpointPolicy {
    allow_loopback: bool,
}

impl Plugin for EndpointPolicy {
    type Config = Config;

    fn new(config: Config) -> Result<Self, PluginError> {
        Ok(Self {
            allow_loopback: config.allow_loopback,
        })
    }
}

/// The host of a URL (`http://[::1]:8080/x` gives `::1`), lower case.
fn host(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split(['/', '?', '#']).next()?;
    let authority = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next()?,
        None => authority.split(':').next()?,
    };
    Some(host.to_ascii_lowercase())
}

fn is_loopback(url: &str) -> bool {
    match host(url) {
        Some(h) if h == "localhost" || h.ends_with(".localhost") => true,
        Some(h) => h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback()),
        None => false,
    }
}

impl EndpointPolicy {
    /// Whether a URL may be used: empty, `https:`, or loopback when allowed.
    fn acceptable(&self, url: Option<&str>) -> bool {
        let Some(url) = url.map(str::trim).filter(|u| !u.is_empty()) else {
            return true;
        };
        let scheme = url.split(':').next().unwrap_or("").to_ascii_lowercase();
        scheme == "https" || (self.allow_loopback && is_loopback(url))
    }

    fn check(&self, input: &IntegrationInput) -> Answer {
        if !self.acceptable(input.endpoint_url.as_deref()) {
            warn!("refused: endpoint not https", integration = input.name);
            return Answer::Refuse("The endpoint must use https".into());
        }
        if !self.acceptable(input.identity_link_url.as_deref()) {
            warn!("refused: identity link not https", integration = input.name);
            return Answer::Refuse("The identity link must use https".into());
        }
        Answer::Pass
    }
}

impl BeforeInterceptor for EndpointPolicy {
    fn before(&self, operation: Operation) -> Result<Answer, PluginError> {
        Ok(match &operation {
            Operation::IntegrationCreate(input) => self.check(input),
            Operation::IntegrationUpdate(update) => self.check(&update.input),
            _ => Answer::Pass,
        })
    }
}

register!(EndpointPolicy: before_interceptor);
