//! An after-interceptor: adds the claim `tenant` (the manifest's `[config] tenant`) to the JWTs
//! issued to admins, and the header `X-Auth-Tenant` to the requests forward-auth and the proxy
//! allow, so that the services behind them know which tenant this server speaks for.

use integration_host_sdk::prelude::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    /// The tenant's name.
    tenant: String,
}

struct TenantClaims {
    tenant: String,
    /// The claim's value as JSON (a string).
    claim: String,
}

impl Plugin for TenantClaims {
    type Config = Config;

    fn new(config: Config) -> Result<Self, PluginError> {
        if config.tenant.trim().is_empty() {
            return Err(PluginError::BadConfig("tenant: must not be empty".into()));
        }
        Ok(Self {
            claim: serde_json::to_string(&config.tenant)?,
            tenant: config.tenant,
        })
    }
}

impl AfterInterceptor for TenantClaims {
    fn after(&self, produced: Produced) -> Result<Additions, PluginError> {
        let mut added = Additions {
            claims: Vec::new(),
            headers: Vec::new(),
        };
        match produced {
            Produced::AdminToken(_) => added.claims.push(("tenant".into(), self.claim.clone())),
            Produced::RequestAllowed(_) => added
                .headers
                .push(("X-Auth-Tenant".into(), self.tenant.clone())),
            Produced::CustomerToken(_) => {}
        }
        Ok(added)
    }
}

register!(TenantClaims: after_interceptor);
