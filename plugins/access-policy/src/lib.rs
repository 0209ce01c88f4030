//! A permission resolver: per integration, an allowlist of client addresses (CIDR blocks) and
//! a window of UTC hours, from the manifest's `[config.integrations."<name>"]` tables. A
//! request of a listed integration from elsewhere, or outside its hours, is denied; everything
//! else is left to the ACL (the resolver abstains, it never widens access).
//!
//! When the operator grants it a policy service (the variable `policy_url`, outbound HTTP to
//! it and key-value state, all optional in the manifest), a request the local rules let
//! through is also put to the service: a POST of
//! `{"integration", "method", "path", "client_address", "resources"}` answered with
//! `{"allow": bool, "reason": "…", "ttl_seconds": n}`. A refusal denies the request; an
//! allowance leaves it to the ACL. Answers are cached in the plugin's key-value state for
//! `ttl_seconds` (60 when not said), shared by every server process. A service that cannot be
//! reached fails the call, and the manifest's `on_error = "deny"` refuses the request.

use std::collections::BTreeMap;
use std::net::IpAddr;

use integration_host_sdk::http;
use integration_host_sdk::prelude::*;
use serde::Deserialize;
use serde_json::{Value, json};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// Rules by integration name.
    #[serde(default)]
    integrations: BTreeMap<String, RuleText>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleText {
    /// CIDR blocks (`10.0.0.0/8`, `::1/128`) or single addresses.
    #[serde(default)]
    addresses: Option<Vec<String>>,
    /// `[from, to]`: hours of the day (UTC) when calls are allowed, `from` inclusive, `to`
    /// exclusive; `[22, 6]` wraps past midnight.
    #[serde(default)]
    hours_utc: Option<[u8; 2]>,
}

struct Rule {
    blocks: Option<Vec<(IpAddr, u8)>>,
    hours: Option<(u8, u8)>,
}

fn parse_block(text: &str) -> Result<(IpAddr, u8), String> {
    let (addr, bits) = match text.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (text, None),
    };
    let addr: IpAddr = addr
        .trim()
        .parse()
        .map_err(|_| format!("`{text}` is not an address"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        Some(b) => b
            .trim()
            .parse::<u8>()
            .ok()
            .filter(|b| *b <= max)
            .ok_or_else(|| format!("`{text}`: bad prefix length"))?,
        None => max,
    };
    Ok((addr, bits))
}

fn contains((net, bits): (IpAddr, u8), ip: IpAddr) -> bool {
    let (net, ip, width) = match (net, ip) {
        (IpAddr::V4(n), IpAddr::V4(i)) => (u128::from(u32::from(n)), u128::from(u32::from(i)), 32),
        (IpAddr::V6(n), IpAddr::V6(i)) => (u128::from(n), u128::from(i), 128),
        (IpAddr::V6(n), IpAddr::V4(i)) => (u128::from(n), u128::from(i.to_ipv6_mapped()), 128),
        (IpAddr::V4(n), IpAddr::V6(i)) => match i.to_ipv4_mapped() {
            Some(i) => (u128::from(u32::from(n)), u128::from(u32::from(i)), 32),
            None => return false,
        },
    };
    if bits == 0 {
        return true;
    }
    let shift = width - u32::from(bits);
    (net >> shift) == (ip >> shift)
}

/// The rules by integration name, parsed from the configuration once per instance, and the
/// policy service, when granted one.
struct AccessPolicy {
    rules: BTreeMap<String, Rule>,
    service: Option<String>,
}

/// Seconds a policy answer is kept when the service does not say.
const DEFAULT_TTL: i64 = 60;

impl AccessPolicy {
    /// The policy service's verdict on a request (cached), when there is a service.
    fn ask_service(&self, integration: &str, request: &Request) -> Result<Verdict, PluginError> {
        let Some(url) = &self.service else {
            return Ok(Verdict::Abstain);
        };
        let key = format!("decision/{integration}/{} {}", request.method, request.path);
        let key: String = key.chars().take(256).collect();
        // Without key-value state granted, every request asks the service.
        if let Ok(Some(cached)) = kv::get(&key) {
            let v: Value = serde_json::from_slice(&cached).unwrap_or(Value::Null);
            if v["until"].as_i64().is_some_and(|until| until > request.now) {
                return Ok(verdict(&v));
            }
        }
        let body = json!({
            "integration": integration,
            "method": request.method,
            "path": request.path,
            "client_address": request.client_address,
            "resources": request.resources,
        })
        .to_string();
        let answer = http::Request::post(url, body)
            .header("content-type", "application/json")
            .send()?;
        if answer.status != 200 {
            return Err(PluginError::Failed(format!(
                "the policy service answered {}",
                answer.status
            )));
        }
        let mut v: Value = serde_json::from_slice(&answer.body)
            .map_err(|e| PluginError::Failed(format!("the policy service's answer: {e}")))?;
        if !v["allow"].is_boolean() {
            return Err(PluginError::Failed(
                "the policy service's answer has no boolean `allow`".into(),
            ));
        }
        let ttl = v["ttl_seconds"].as_i64().unwrap_or(DEFAULT_TTL);
        v["until"] = json!(request.now + ttl);
        // A cache that cannot be written only costs another question next time.
        match kv::set(&key, v.to_string()) {
            Ok(()) | Err(kv::KvError::NotGranted) => {}
            Err(e) => warn!("cannot cache a policy answer", error = kv::describe(&e)),
        }
        Ok(verdict(&v))
    }
}

/// A policy answer as a verdict: a refusal denies, an allowance leaves it to the ACL.
fn verdict(answer: &Value) -> Verdict {
    if answer["allow"].as_bool() == Some(true) {
        Verdict::Abstain
    } else {
        Verdict::Deny(format!(
            "the policy service refused: {}",
            answer["reason"].as_str().unwrap_or("no reason given")
        ))
    }
}

impl Plugin for AccessPolicy {
    type Config = Config;

    fn new(config: Config) -> Result<Self, PluginError> {
        let mut rules = BTreeMap::new();
        for (name, text) in config.integrations {
            let blocks = match text.addresses {
                Some(list) => Some(
                    list.iter()
                        .map(|a| parse_block(a))
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| {
                            PluginError::BadConfig(format!("integrations.{name}.addresses: {e}"))
                        })?,
                ),
                None => None,
            };
            let hours = match text.hours_utc {
                Some([from, to]) if from < 24 && to <= 24 => Some((from, to)),
                Some(_) => {
                    return Err(PluginError::BadConfig(format!(
                        "integrations.{name}.hours_utc: hours are 0-24"
                    )));
                }
                None => None,
            };
            rules.insert(name, Rule { blocks, hours });
        }
        Ok(Self {
            rules,
            service: variable("policy_url"),
        })
    }
}

impl PermissionResolver for AccessPolicy {
    fn resolve(&self, request: Request) -> Result<Verdict, PluginError> {
        let Principal::Integration(integration) = &request.principal else {
            return Ok(Verdict::Abstain);
        };
        let Some(rule) = self.rules.get(&integration.name) else {
            return self.ask_service(&integration.name, &request);
        };
        if let Some(blocks) = &rule.blocks {
            let allowed = request
                .client_address
                .as_deref()
                .and_then(|a| a.parse::<IpAddr>().ok())
                .is_some_and(|ip| blocks.iter().any(|b| contains(*b, ip)));
            if !allowed {
                let address = request.client_address.as_deref().unwrap_or("unknown");
                warn!(
                    "denied: client address not allowed",
                    integration = integration.name,
                    client_address = address,
                    path = request.path,
                );
                return Ok(Verdict::Deny(format!(
                    "client address {address} is not allowed for integration {}",
                    integration.name
                )));
            }
        }
        if let Some((from, to)) = rule.hours {
            let hour = ((request.now.rem_euclid(86_400)) / 3600) as u8;
            let inside = if from <= to {
                hour >= from && hour < to
            } else {
                hour >= from || hour < to
            };
            if !inside {
                warn!(
                    "denied: outside the allowed hours",
                    integration = integration.name,
                    hour_utc = hour,
                );
                return Ok(Verdict::Deny(format!(
                    "integration {} may call between {from}:00 and {to}:00 UTC",
                    integration.name
                )));
            }
        }
        self.ask_service(&integration.name, &request)
    }
}

register!(AccessPolicy: permission_resolver);
