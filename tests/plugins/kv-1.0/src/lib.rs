//! Counts admin sign-ins through the key-value interface of capabilities 1.0.

use integration_host_sdk::prelude::*;

mod v1_0 {
    wit_bindgen::generate!({
        world: "capabilities",
        path: "../../../wit/capabilities@1.0.0",
        generate_all,
    });
}

use v1_0::integration_host::capabilities::key_value;

#[derive(serde::Deserialize)]
struct Config {}

struct Counter;

impl Plugin for Counter {
    type Config = Config;

    fn new(_: Config) -> Result<Self, PluginError> {
        Ok(Self)
    }
}

impl Observer for Counter {
    fn on_event(&self, _event: Event) -> Result<Outcome, PluginError> {
        let failed = |e: key_value::KvError| PluginError::Failed(format!("{e:?}"));
        let n: u64 = key_value::get("count")
            .map_err(failed)?
            .and_then(|v| String::from_utf8(v).ok())
            .and_then(|t| t.parse().ok())
            .unwrap_or(0);
        key_value::set("count", (n + 1).to_string().as_bytes()).map_err(failed)?;
        Ok(Outcome::Proceed)
    }
}

register!(Counter: observer);
