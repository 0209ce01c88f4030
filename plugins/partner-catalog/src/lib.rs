//! A config provider: declares one integration per partner listed in the manifest's
//! `[config]` (`partners`), named `Partner: <name>`, with the resources of the partner's tier.
//! They are synced like the TOML definition files: created, reset when they change, removed
//! when the partner goes from the list.

use integration_host_sdk::prelude::*;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Config {
    #[serde(default)]
    partners: Vec<Partner>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Partner {
    name: String,
    email: Option<String>,
    /// Where activation posts the credentials.
    endpoint_url: Option<String>,
    /// `full`: every resource; `catalog`: the catalog; `orders`: sales orders.
    tier: String,
}

fn tier_resources(tier: &str) -> Result<(bool, Vec<String>), PluginError> {
    Ok(match tier {
        "full" => (true, Vec::new()),
        "catalog" => (
            false,
            vec![
                "Magento_Catalog::catalog".into(),
                "Magento_Catalog::products".into(),
            ],
        ),
        "orders" => (
            false,
            vec![
                "Magento_Sales::sales".into(),
                "Magento_Sales::sales_order".into(),
            ],
        ),
        other => {
            return Err(PluginError::BadConfig(format!(
                "unknown tier `{other}` (full, catalog, orders)"
            )));
        }
    })
}

/// The declared integrations, built from the configuration once per instance.
struct PartnerCatalog {
    declared: Vec<IntegrationDefinition>,
}

impl Plugin for PartnerCatalog {
    type Config = Config;

    fn new(config: Config) -> Result<Self, PluginError> {
        let declared = config
            .partners
            .into_iter()
            .map(|p| {
                let (all_resources, resources) = tier_resources(&p.tier)?;
                Ok(IntegrationDefinition {
                    name: format!("Partner: {}", p.name),
                    email: p.email,
                    endpoint_url: p.endpoint_url,
                    identity_link_url: None,
                    resources,
                    all_resources,
                })
            })
            .collect::<Result<_, PluginError>>()?;
        Ok(Self { declared })
    }
}

impl ConfigProvider for PartnerCatalog {
    fn integrations(&self) -> Result<Vec<IntegrationDefinition>, PluginError> {
        Ok(self.declared.clone())
    }
}

register!(PartnerCatalog: config_provider);
