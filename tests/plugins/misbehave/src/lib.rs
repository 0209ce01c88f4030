//! Misbehaves on purpose, as its configuration says, in every role; `probe` logs what the
//! sandbox lets it see.

use integration_host_sdk::prelude::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Config {
    #[serde(default = "abstain")]
    behaviour: String,
    #[serde(default)]
    label: String,
    /// Where `fetch` sends its request.
    #[serde(default)]
    url: String,
    /// `record` fails the attempts up to this one.
    #[serde(default)]
    fail_attempts: u32,
}

fn abstain() -> String {
    "abstain".into()
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
    info!("probe", now = now, fs = fs, env = env);
}

/// Counts the events it sees by name in its key-value state, records what its variables say
/// and what the capabilities answer when misused, for the tests to read with `plugin kv`.
fn keep_state(event: &str) -> Result<(), PluginError> {
    let key = format!("count/{event}");
    let n: u64 = kv::get_text(&key)?.map_or(Ok(0), |t| t.parse())?;
    kv::set(&key, (n + 1).to_string())?;
    let greeting = variable("greeting").unwrap_or_else(|| "(none)".into());
    kv::set("variable/greeting", greeting)?;
    let unasked = variable("unasked").unwrap_or_else(|| "(none)".into());
    kv::set("variable/unasked", unasked)?;
    let too_large = match kv::set("too-large", vec![0u8; 64 * 1024 + 1]) {
        Ok(()) => "accepted".to_owned(),
        Err(e) => kv::describe(&e),
    };
    kv::set("answer/too-large", too_large)?;
    let over_quota = match kv::set("over-quota", vec![b'x'; 60 * 1024]) {
        Ok(()) => "accepted".to_owned(),
        Err(e) => kv::describe(&e),
    };
    kv::set("answer/over-quota", over_quota)?;
    let listed = kv::list_keys("count/")?.join(",");
    kv::set("answer/list", listed)?;
    Ok(())
}

/// Sends a GET to `url` and answers what happened, for a veto to show the caller.
fn fetch(url: &str) -> String {
    match integration_host_sdk::http::Request::get(url)
        .header("x-from", "misbehave")
        .send()
    {
        Ok(r) => format!("fetched {} {}", r.status, r.text()),
        Err(e) => format!("fetch failed: {e}"),
    }
}

/// Records each delivery in the key-value state (`event/<id>` = `<name> <attempt>`, appended
/// to on every attempt) and fails attempts up to `fail_attempts`.
fn record(event: &str, fail_attempts: u32) -> Result<(), PluginError> {
    let Some(d) = delivery() else {
        kv::set("no-delivery", event)?;
        return Ok(());
    };
    let key = format!("event/{}", d.event_id);
    let before = kv::get_text(&key)?.unwrap_or_default();
    kv::set(&key, format!("{before}{event} {};", d.attempt))?;
    if d.attempt <= fail_attempts {
        return Err(PluginError::Failed(format!(
            "failing attempt {}",
            d.attempt
        )));
    }
    Ok(())
}

fn huge() -> String {
    "x".repeat(4 << 20)
}

/// Its configuration, read once per instance.
struct Misbehave {
    behaviour: String,
    label: String,
    url: String,
    fail_attempts: u32,
}

impl Plugin for Misbehave {
    type Config = Config;

    fn new(config: Config) -> Result<Self, PluginError> {
        Ok(Self {
            behaviour: config.behaviour,
            label: config.label,
            url: config.url,
            fail_attempts: config.fail_attempts,
        })
    }
}

impl Observer for Misbehave {
    fn on_event(&self, event: Event) -> Result<Outcome, PluginError> {
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
        info!("observed", event = name, label = self.label);
        if self.behaviour == "probe" {
            probe();
        }
        if self.behaviour == "state" {
            keep_state(name)?;
        }
        if self.behaviour == "record" {
            record(name, self.fail_attempts)?;
        }
        misbehave(&self.behaviour)?;
        Ok(match self.behaviour.as_str() {
            "veto" => Outcome::Veto(format!("vetoed by {}", self.label)),
            "huge" => Outcome::Veto(huge()),
            "fetch" => Outcome::Veto(fetch(&self.url)),
            _ => Outcome::Proceed,
        })
    }
}

/// Calls this instance has answered (the behaviour `count`).
static CALLS: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);

impl PermissionResolver for Misbehave {
    fn resolve(&self, request: Request) -> Result<Verdict, PluginError> {
        misbehave(&self.behaviour)?;
        if self.behaviour == "count" {
            let n = CALLS.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            return Ok(Verdict::Deny(format!("call {n} of this instance")));
        }
        Ok(match self.behaviour.as_str() {
            "allow" => Verdict::Allow,
            "deny" => Verdict::Deny(format!("denied {} by {}", request.path, self.label)),
            "huge" => Verdict::Deny(huge()),
            _ => Verdict::Abstain,
        })
    }
}

impl ConfigProvider for Misbehave {
    fn integrations(&self) -> Result<Vec<IntegrationDefinition>, PluginError> {
        misbehave(&self.behaviour)?;
        Ok(Vec::new())
    }
}

impl BeforeInterceptor for Misbehave {
    fn before(&self, operation: Operation) -> Result<Answer, PluginError> {
        info!("before", label = self.label);
        misbehave(&self.behaviour)?;
        Ok(match (self.behaviour.as_str(), operation) {
            ("refuse", _) => Answer::Refuse(format!("refused by {}", self.label)),
            ("huge", _) => Answer::Refuse(huge()),
            // Another operation than the one asked about: garbage the host refuses to use.
            ("rewrite-other", _) => Answer::Rewrite(Operation::IntegrationDelete(IntegrationRef {
                id: 0,
                name: "nothing".into(),
            })),
            // The label becomes the integration's name (checked like any input).
            ("rename", Operation::IntegrationCreate(mut input)) => {
                input.name = self.label.clone();
                Answer::Rewrite(Operation::IntegrationCreate(input))
            }
            _ => Answer::Pass,
        })
    }
}

impl AfterInterceptor for Misbehave {
    fn after(&self, _produced: Produced) -> Result<Additions, PluginError> {
        misbehave(&self.behaviour)?;
        let one = |name: &str, value: &str| vec![(name.to_owned(), value.to_owned())];
        Ok(match self.behaviour.as_str() {
            "claim" => Additions {
                claims: one(&self.label, "\"added\""),
                headers: Vec::new(),
            },
            "reserved-claim" => Additions {
                claims: one("uid", "1"),
                headers: Vec::new(),
            },
            "bad-json" => Additions {
                claims: one("note", "{not json"),
                headers: Vec::new(),
            },
            "header" => Additions {
                claims: Vec::new(),
                headers: one(&self.label, "added"),
            },
            "identity-header" => Additions {
                claims: Vec::new(),
                headers: one("X-Auth-User-Id", "1"),
            },
            _ => Additions {
                claims: Vec::new(),
                headers: Vec::new(),
            },
        })
    }
}

impl CredentialVerifier for Misbehave {
    fn verify(&self, _credentials: Credentials) -> Result<Verification, PluginError> {
        misbehave(&self.behaviour)?;
        Ok(match self.behaviour.as_str() {
            "accept" => Verification::Accept(self.label.clone()),
            "refuse" => Verification::Refuse(format!("refused by {}", self.label)),
            _ => Verification::Abstain,
        })
    }
}

register!(
    Misbehave: observer,
    permission_resolver,
    config_provider,
    before_interceptor,
    after_interceptor,
    credential_verifier,
);
