//! Misbehaves on purpose, as its configuration says, in every role; `probe` logs what the
//! sandbox lets it see.

use integration_host_sdk::{
    ConfigProvider, Event, IntegrationDefinition, Observer, Outcome, PermissionResolver,
    PluginError, Request, Verdict, log, register,
};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Config {
    behaviour: String,
    #[serde(default)]
    label: String,
}

fn config() -> Config {
    integration_host_sdk::config().unwrap_or(Config {
        behaviour: "abstain".into(),
        label: String::new(),
    })
}

#[inline(never)]
fn recurse(n: u64) -> u64 {
    let pad = std::hint::black_box([n; 64]);
    if n == u64::MAX {
        return 0;
    }
    recurse(n + 1).wrapping_add(pad[7])
}

/// Does the harmful part of a behaviour; returns for the harmless ones.
fn misbehave(behaviour: &str) -> Result<(), PluginError> {
    match behaviour {
        "loop" => loop {
            std::hint::black_box(());
        },
        "memory" => {
            let mut hoard: Vec<Vec<u8>> = Vec::new();
            loop {
                hoard.push(vec![1u8; 1 << 20]);
                std::hint::black_box(&hoard);
            }
        }
        "panic" => panic!("misbehave was told to panic"),
        "recursion" => {
            std::hint::black_box(recurse(0));
            Ok(())
        }
        "error" => Err(PluginError::Failed("misbehave was told to fail".into())),
        _ => Ok(()),
    }
}

/// Logs what the sandbox lets it see: the clock, the filesystem, the environment.
fn probe() {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let fs = match std::fs::read_dir("/") {
        Ok(_) => "readable".to_owned(),
        Err(e) => format!("refused: {e}"),
    };
    let env = std::env::vars().count();
    log::info(
        "probe",
        &[
            ("now", &now.to_string()),
            ("fs", &fs),
            ("env", &env.to_string()),
        ],
    );
}

fn huge() -> String {
    "x".repeat(4 << 20)
}

struct Misbehave;

impl Observer for Misbehave {
    fn on_event(event: Event) -> Result<Outcome, PluginError> {
        let c = config();
        let name = match &event {
            Event::CustomerLogin(_) => "customer_login",
            Event::AdminLogin(_) => "admin_login",
            Event::IntegrationSaved(_) => "integration_saved",
            Event::IntegrationActivated(_) => "integration_activated",
            Event::IntegrationReset(_) => "integration_reset",
            Event::IntegrationDeleted(_) => "integration_deleted",
            Event::TokensRevoked(_) => "tokens_revoked",
            Event::Other(o) => o.name.as_str(),
        };
        log::info("observed", &[("event", name), ("label", &c.label)]);
        if c.behaviour == "probe" {
            probe();
        }
        misbehave(&c.behaviour)?;
        Ok(match c.behaviour.as_str() {
            "veto" => Outcome::Veto(format!("vetoed by {}", c.label)),
            "huge" => Outcome::Veto(huge()),
            _ => Outcome::Proceed,
        })
    }
}

impl PermissionResolver for Misbehave {
    fn resolve(request: Request) -> Result<Verdict, PluginError> {
        let c = config();
        misbehave(&c.behaviour)?;
        Ok(match c.behaviour.as_str() {
            "allow" => Verdict::Allow,
            "deny" => Verdict::Deny(format!("denied {} by {}", request.path, c.label)),
            "huge" => Verdict::Deny(huge()),
            _ => Verdict::Abstain,
        })
    }
}

impl ConfigProvider for Misbehave {
    fn integrations() -> Result<Vec<IntegrationDefinition>, PluginError> {
        let c = config();
        misbehave(&c.behaviour)?;
        Ok(Vec::new())
    }
}

register!(observer: Misbehave, permission_resolver: Misbehave, config_provider: Misbehave);
