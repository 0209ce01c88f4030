//! `plugin call`: one call into a plugin folder, as the server would make it, with the input
//! given as JSON in the plugin API's shape ([`crate::plugins::wit_json`]); prints the plugin's
//! log lines, its answer (checked as the server checks it) and the time the call took.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::config::Settings;
use crate::plugins::manifest::{self, Role};
use crate::plugins::wit_json::Shape;
use crate::plugins::{BeforeStep, CallError, Plugin, PluginHost, v1_1};

/// An example input per role, shown when the input is missing.
fn example(role: Role) -> &'static str {
    match role {
        Role::Observer => {
            r#"'{"customer-login": {"customer-id": 1, "email": "jo@example.com", "firstname": "Jo", "lastname": "Doe"}}'"#
        }
        Role::PermissionResolver => {
            r#"'{"principal": {"integration": {"id": 1, "name": "ERP Connector"}}, "resources": ["Magento_Catalog::products"], "acl-allows": true, "method": "GET", "path": "/rest/V1/products", "client-address": "203.0.113.9"}'"#
        }
        Role::ConfigProvider => "(none: a config provider takes no input)",
        Role::BeforeInterceptor => {
            r#"'{"integration-create": {"name": "Shop", "endpoint-url": "http://shop.example/hook", "all-resources": false}}'"#
        }
        Role::AfterInterceptor => r#"'{"admin-token": {"id": 1, "name": "jane"}}'"#,
        Role::CredentialVerifier => {
            r#"'{"user-type": "customer", "username": "jo@example.com", "password": "secret"}'"#
        }
    }
}

/// The input's text: the argument itself, `@FILE` for a file's, `-` for standard input's.
fn input_text(input: &str) -> anyhow::Result<String> {
    if input == "-" {
        let mut text = String::new();
        std::io::stdin().read_to_string(&mut text)?;
        Ok(text)
    } else if let Some(path) = input.strip_prefix('@') {
        std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read the input file {path}: {e}"))
    } else {
        Ok(input.to_owned())
    }
}

/// The role to call: the one asked for, or the plugin's only one.
fn role_of(plugin: &Plugin, asked: Option<&str>) -> anyhow::Result<Role> {
    let plays: Vec<&str> = plugin.manifest.roles.iter().map(|r| r.as_str()).collect();
    match asked {
        Some(name) => {
            let role = Role::from_interface(name).ok_or_else(|| {
                anyhow::anyhow!(
                    "--role {name}: not a role (observer, permission-resolver, config-provider, before-interceptor, after-interceptor or credential-verifier)"
                )
            })?;
            if !plugin.manifest.has(role) {
                anyhow::bail!(
                    "`{}` does not play the {name} role (it plays {})",
                    plugin.id(),
                    plays.join(", ")
                );
            }
            Ok(role)
        }
        None => match plugin.manifest.roles.as_slice() {
            [role] => Ok(*role),
            _ => anyhow::bail!(
                "`{}` plays several roles ({}): choose one with --role",
                plugin.id(),
                plays.join(", ")
            ),
        },
    }
}

/// What the server does when a call in `role` fails, under the manifest's policy.
fn on_failure(plugin: &Plugin, role: Role) -> String {
    let policy = plugin
        .manifest
        .on_error()
        .into_iter()
        .find(|(r, _)| *r == role)
        .map(|(_, p)| p);
    let what = match (role, policy) {
        (Role::ConfigProvider, _) => "the sync keeps the integrations it declared before",
        (Role::Observer, Some("veto")) => "the operation that emitted the event is refused",
        (Role::Observer, _) => "the operation goes on",
        (Role::PermissionResolver, Some("deny")) => "the request is denied",
        (Role::PermissionResolver, _) => "the other resolvers and the ACL decide",
        (Role::BeforeInterceptor | Role::AfterInterceptor, Some("refuse")) => {
            "the operation is refused"
        }
        (Role::BeforeInterceptor, _) => "the operation goes on as it was passed",
        (Role::AfterInterceptor, _) => "the operation goes on without its additions",
        (Role::CredentialVerifier, Some("refuse")) => "the sign-in is refused",
        (Role::CredentialVerifier, _) => "the server's own password check decides",
    };
    match policy {
        Some(p) => format!("{what} (on_error = \"{p}\")"),
        None => what.to_owned(),
    }
}

/// Whether the manifest has the server call this role with `name` (an event, operation or
/// result): a call with anything else is still made, with a note.
fn subscribed(plugin: &Plugin, role: Role, name: &str) -> bool {
    let m = &plugin.manifest;
    match role {
        Role::Observer => m
            .observer
            .as_ref()
            .is_some_and(|o| o.events.iter().any(|e| e == "*" || e == name)),
        Role::BeforeInterceptor => m.before.as_ref().is_some_and(|b| b.wants(name)),
        Role::AfterInterceptor => m.after.as_ref().is_some_and(|a| a.wants(name)),
        _ => true,
    }
}

/// Calls the plugin once in `role` with `input`; the answer as JSON in the API's shape, and
/// the name of what it was called with (an event, operation or result), if any.
async fn call_once(
    plugin: &Plugin,
    role: Role,
    input: Option<&str>,
) -> anyhow::Result<(
    Result<serde_json::Value, CallError>,
    Option<String>,
    Duration,
)> {
    let text = match (role, input) {
        (Role::ConfigProvider, Some(_)) => {
            anyhow::bail!("a config provider takes no input: leave it out")
        }
        (Role::ConfigProvider, None) => String::new(),
        (_, Some(input)) => input_text(input)?,
        (_, None) => anyhow::bail!(
            "give the {} its input as JSON, for example:\n  integration-host plugin call {} {}",
            role.as_str(),
            plugin.dir.display(),
            example(role)
        ),
    };
    let started = Instant::now();
    let (answer, name) = match role {
        Role::Observer => {
            let event = v1_1::wit::Event::read(&text)?;
            let name = v1_1::event_name(&event).to_owned();
            (
                plugin.observe(event, None).await.map(Shape::to_json),
                Some(name),
            )
        }
        Role::PermissionResolver => {
            let request = std::sync::Arc::new(v1_1::ResolverRequest::read(&text)?);
            (plugin.resolve(&request).await.map(Shape::to_json), None)
        }
        Role::ConfigProvider => (
            plugin.integrations().await.map(|list| {
                serde_json::Value::Array(list.into_iter().map(Shape::to_json).collect())
            }),
            None,
        ),
        Role::BeforeInterceptor => {
            let op = v1_1::operation_back(v1_1::Operation::read(&text)?).ok_or_else(|| {
                anyhow::anyhow!(
                    "the input at `user-type`: a sign-in's user type must be that of its case (`admin` for admin-sign-in, `customer` for customer-sign-in)"
                )
            })?;
            let answer = plugin.intercept_before(&op).await.map(|step| {
                match step {
                    BeforeStep::Pass => v1_1::Answer::Pass,
                    BeforeStep::Rewrite(new) => v1_1::Answer::Rewrite(v1_1::operation(&new)),
                    BeforeStep::Refuse(message) => v1_1::Answer::Refuse(message),
                }
                .to_json()
            });
            (answer, Some(op.name().to_owned()))
        }
        Role::AfterInterceptor => {
            let wit = v1_1::Produced::read(&text)?;
            let produced = v1_1::produced_back(wit.clone());
            let answer = plugin.intercept_after(&produced, &wit).await.map(|added| {
                v1_1::Additions {
                    claims: added
                        .claims
                        .into_iter()
                        .map(|(name, value)| (name, value.to_string()))
                        .collect(),
                    headers: added.headers,
                }
                .to_json()
            });
            (answer, Some(produced.name().to_owned()))
        }
        Role::CredentialVerifier => {
            let credentials = v1_1::Credentials::read(&text)?;
            (plugin.verify(&credentials).await.map(Shape::to_json), None)
        }
    };
    Ok((answer, name, started.elapsed()))
}

/// The plugin's manifest id, read before loading (to open its key-value store first).
fn manifest_id(settings: &Settings, dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join(manifest::FILE)).ok()?;
    manifest::parse(dir, &text, &settings.plugins)
        .ok()
        .map(|m| m.id)
}

pub(super) async fn call(
    settings: &Settings,
    dir: PathBuf,
    role: Option<String>,
    input: Option<String>,
) -> anyhow::Result<()> {
    let host = PluginHost::standalone(&settings.plugins, &settings.data_dir)?;
    // A plugin granted key-value state reads and writes the server's, as it would there.
    let store = match manifest_id(settings, &dir) {
        Some(id) if settings.grants_quota(&id).is_some() => {
            let store = super::common::open_store(settings).await?;
            host.keep_state_in(crate::services::plugin_state::PluginState::new(
                store.clone(),
            ));
            Some(store)
        }
        _ => None,
    };
    let plugin = host
        .load_folder(&dir)
        .await
        .map_err(|p| anyhow::anyhow!("{p}"))?;
    let role = role_of(&plugin, role.as_deref())?;
    let logged = plugin
        .health()
        .report()
        .recent_logs
        .last()
        .map_or(0, |l| l.seq);
    let (answer, name, took) = call_once(&plugin, role, input.as_deref()).await?;
    for line in plugin.health().report().recent_logs {
        if line.seq <= logged {
            continue;
        }
        let fields: Vec<String> = line
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        println!(
            "log {}: {}{}{}",
            line.level,
            line.message,
            if fields.is_empty() { "" } else { " " },
            fields.join(" ")
        );
    }
    if let Some(name) = &name
        && !subscribed(&plugin, role, name)
    {
        println!(
            "note: the manifest does not name `{name}` for the {}: the server would not call it with this",
            role.as_str()
        );
    }
    if role == Role::Observer
        && plugin
            .manifest
            .observer
            .as_ref()
            .is_some_and(|o| o.mode == manifest::ObserverMode::Async)
    {
        println!("note: the observer is async: the server logs a veto and refuses nothing");
    }
    let time = format!("{:.3} ms", took.as_secs_f64() * 1e3);
    if let Some(store) = store {
        store.close().await;
    }
    match answer {
        Ok(answer) => {
            println!(
                "answer: {}",
                serde_json::to_string_pretty(&answer).expect("JSON values print")
            );
            println!("time: {time}");
            Ok(())
        }
        Err(e) => {
            println!("failed: {e}");
            println!("time: {time}");
            anyhow::bail!(
                "the call failed: in the server, {}",
                on_failure(&plugin, role)
            )
        }
    }
}
