//! `plugin new`: writes a plugin folder that builds and loads as it is, in Rust, JavaScript or
//! Python, for one role: the manifest (with its `[build]` recipe), the source with the role's
//! method and a comment on each part, a README, the plugin API's WIT, and for JavaScript and
//! Python the editor declarations (`jco types`, `componentize-py bindings`).
//!
//! Every generated plugin does one small, testable thing its configuration steers: the observer
//! refuses customer sign-ins of `blocked_domains`, the resolver denies `denied_integrations`,
//! the provider declares `integration_name`, the interceptor refuses new integrations whose name
//! starts with `refused_prefix`.

use std::path::{Path, PathBuf};

use clap::ValueEnum;

use super::plugin_build::Toolchains;

/// The language of a new plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Language {
    Rust,
    Js,
    Python,
}

/// The role of a new plugin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NewRole {
    /// An event observer (sync, `customer_login`).
    Observer,
    /// A permission resolver.
    Resolver,
    /// A config provider (declares integrations).
    Provider,
    /// A before-interceptor (`integration_create`).
    Interceptor,
}

/// The plugin API's WIT, written into JavaScript and Python plugin folders.
const WIT: &str = include_str!("../../../wit/plugin@1.1.0/plugin.wit");

impl NewRole {
    /// The manifest's role name.
    fn role(self) -> &'static str {
        match self {
            NewRole::Observer => "observer",
            NewRole::Resolver => "permission-resolver",
            NewRole::Provider => "config-provider",
            NewRole::Interceptor => "before-interceptor",
        }
    }

    /// The WIT world a component of this role targets.
    fn world(self) -> String {
        format!("{}-plugin", self.role())
    }

    /// The JSON Schema of the `[config]` of [`NewRole::sections`]: what `plugin check`, `plugin
    /// list` and loading hold the configuration to.
    fn config_schema(self) -> String {
        let properties = match self {
            NewRole::Observer => serde_json::json!({
                "blocked_domains": {
                    "description": "Customers of these email domains may not sign in for a token.",
                    "type": "array", "items": {"type": "string", "minLength": 1}
                }
            }),
            NewRole::Resolver => serde_json::json!({
                "denied_integrations": {
                    "description": "Integrations (by name) whose requests are denied.",
                    "type": "array", "items": {"type": "string", "minLength": 1}
                }
            }),
            NewRole::Provider => serde_json::json!({
                "integration_name": {
                    "description": "The integration it declares.",
                    "type": "string", "minLength": 1
                },
                "resources": {
                    "description": "What that integration may use.",
                    "type": "array", "items": {"type": "string", "minLength": 1}
                }
            }),
            NewRole::Interceptor => serde_json::json!({
                "refused_prefix": {
                    "description": "New integrations whose name starts with this are refused.",
                    "type": "string"
                }
            }),
        };
        let schema = serde_json::json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "title": "[config] of the plugin",
            "type": "object",
            "properties": properties,
            "additionalProperties": false
        });
        serde_json::to_string_pretty(&schema).unwrap_or_default() + "\n"
    }

    /// The manifest's role section and `[config]`.
    fn sections(self) -> &'static str {
        match self {
            NewRole::Observer => {
                "[observer]\n# The events it receives, and when: sync runs before the answer and may veto.\nevents = [\"customer_login\"]\nmode = \"sync\"\n# If the plugin fails, the sign-in goes on.\non_error = \"continue\"\n\n[config]\n# Customers of these email domains may not sign in for a token.\nblocked_domains = [\"blocked.example\"]\n"
            }
            NewRole::Resolver => {
                "[permission_resolver]\n# If the plugin fails, the request is denied (fail closed).\non_error = \"deny\"\n\n[config]\n# Integrations (by name) whose requests are denied.\ndenied_integrations = [\"Blocked Shop\"]\n"
            }
            NewRole::Provider => {
                "[config]\n# The integration it declares, and what that integration may use.\nintegration_name = \"Provided Integration\"\nresources = [\"Magento_Sales::sales\"]\n"
            }
            NewRole::Interceptor => {
                "[before_interceptor]\n# The operations it sees before they run.\noperations = [\"integration_create\"]\n# If the plugin fails, the operation goes on.\non_error = \"continue\"\n\n[config]\n# New integrations whose name starts with this are refused.\nrefused_prefix = \"Test \"\n"
            }
        }
    }
}

/// Where the plugin goes and in what.
#[derive(Debug)]
pub(super) struct NewPlugin {
    pub name: String,
    pub language: Language,
    pub role: NewRole,
    /// The folder it is written in (`<parent>/<name>`).
    pub dir: PathBuf,
    /// The Rust SDK (`plugins/sdk` of the checkout), for Rust plugins.
    pub sdk: Option<PathBuf>,
}

/// A plugin id: 1-64 of a-z 0-9 - _.
fn valid_id(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

/// The Rust SDK: `--sdk`, else `plugins/sdk` under the current folder or near the binary.
pub(super) fn find_sdk(given: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    if let Some(p) = given {
        return if p.join("Cargo.toml").is_file() {
            Ok(std::path::absolute(&p)?)
        } else {
            anyhow::bail!("{} is not the SDK (no Cargo.toml there)", p.display())
        };
    }
    let mut candidates = vec![PathBuf::from("plugins/sdk")];
    candidates.extend(crate::config::checkout_of_binary().map(|root| root.join("plugins/sdk")));
    candidates
        .into_iter()
        .find(|c| c.join("Cargo.toml").is_file())
        .map(|c| std::path::absolute(&c).unwrap_or(c))
        .ok_or_else(|| {
            anyhow::anyhow!(
                "a Rust plugin depends on the SDK in plugins/sdk of the integration-host checkout: run this from the checkout, or pass --sdk PATH"
            )
        })
}

/// Writes the plugin folder; answers the files written.
pub(super) fn write(new: &NewPlugin, tools: &Toolchains) -> anyhow::Result<Vec<PathBuf>> {
    if !valid_id(&new.name) {
        anyhow::bail!(
            "`{}` cannot be a plugin id: use 1 to 64 of a-z, 0-9, - and _",
            new.name
        );
    }
    if new.dir.exists() {
        anyhow::bail!(
            "{} exists already; choose another name or folder",
            new.dir.display()
        );
    }
    // A missing toolchain is said before anything is written.
    match new.language {
        Language::Js => tools.require("JavaScript", &tools.jco())?,
        Language::Python => tools.require("Python", &tools.componentize_py())?,
        Language::Rust => {}
    }
    let crate_name = new.name.replace('-', "_");
    let (component, command) = match new.language {
        Language::Rust => (
            format!("target/wasm32-wasip2/release/{crate_name}.wasm"),
            // Its own target folder, whatever CARGO_TARGET_DIR says: the manifest names it.
            "cargo build --release --target wasm32-wasip2 --target-dir target".to_owned(),
        ),
        Language::Js => (format!("{crate_name}.wasm"), "node build.mjs".to_owned()),
        Language::Python => (
            format!("{crate_name}.wasm"),
            format!(
                "componentize-py -d wit -w {} componentize app -o {crate_name}.wasm",
                new.role.world()
            ),
        ),
    };
    let memory = if new.language == Language::Rust {
        16
    } else {
        64
    };
    let manifest = format!(
        "# The manifest of plugin {name} (see README.md and docs/plugins.md).\nid = \"{name}\"\nversion = \"0.1.0\"\ndescription = \"{Role} plugin in {lang}\"\n# What `integration-host plugin build` writes.\ncomponent = \"{component}\"\n# What [config] may hold: checked by `plugin check`, `plugin list` and at load.\nconfig_schema = \"config.schema.json\"\nroles = [\"{role}\"]\n\n# How it is built: `integration-host plugin build` runs this in this folder.\n[build]\ncommand = \"{command}\"\n\n[limits]\n# Linear memory and time per call.\nmemory_mib = {memory}\ntimeout_ms = 100\n\n{sections}",
        name = new.name,
        role = new.role.role(),
        Role = capitalized(new.role.role()),
        lang = language_name(new.language),
        sections = new.role.sections(),
    );
    let mut files: Vec<(PathBuf, String)> = vec![
        ("plugin.toml".into(), manifest),
        ("config.schema.json".into(), new.role.config_schema()),
        ("README.md".into(), readme(new, &command)),
    ];
    match new.language {
        Language::Rust => {
            let sdk = new
                .sdk
                .as_ref()
                .ok_or_else(|| anyhow::anyhow!("a Rust plugin needs the SDK's folder"))?;
            files.push((
                "Cargo.toml".into(),
                format!(
                    "[package]\nname = \"{crate_name}\"\nversion = \"0.1.0\"\nedition = \"2024\"\npublish = false\n\n[lib]\n# A component is a C-like dynamic library of wasm32-wasip2.\ncrate-type = [\"cdylib\"]\n\n[dependencies]\n# The SDK wraps the plugin API's bindings; one feature per role.\nintegration-host-sdk = {{ path = {sdk:?}, features = [\"{feature}\"] }}\nserde = {{ version = \"1\", features = [\"derive\"] }}\n\n# A workspace of its own, wherever the folder is.\n[workspace]\n\n[profile.release]\nopt-level = \"s\"\nlto = true\nstrip = true\n",
                    sdk = sdk.display().to_string(),
                    feature = rust_feature(new.role),
                ),
            ));
            files.push(("src/lib.rs".into(), rust_source(new.role)));
        }
        Language::Js => {
            files.push(("wit/plugin.wit".into(), WIT.to_owned()));
            files.push(("plugin.js".into(), js_source(new.role)));
            files.push((
                "build.mjs".into(),
                format!(
                    "// Builds {crate_name}.wasm from plugin.js with componentize-js, which\n// `integration-host plugin build` hands over in COMPONENTIZE_JS.\nimport {{ readFile, writeFile }} from 'node:fs/promises';\n\nconst {{ componentize }} = await import(\n  process.env.COMPONENTIZE_JS ?? '@bytecodealliance/componentize-js'\n);\nconst {{ component }} = await componentize(await readFile('plugin.js', 'utf8'), {{\n  witPath: 'wit',\n  worldName: '{world}',\n  // The plugin imports only the host interface: no randomness, stdio, clocks or HTTP.\n  disableFeatures: ['random', 'stdio', 'clocks', 'http', 'fetch-event'],\n}});\nawait writeFile('{crate_name}.wasm', component);\n",
                    world = new.role.world(),
                ),
            ));
        }
        Language::Python => {
            files.push(("wit/plugin.wit".into(), WIT.to_owned()));
            files.push(("app.py".into(), python_source(new.role)));
        }
    }
    let mut written = Vec::new();
    for (rel, text) in &files {
        let path = new.dir.join(rel);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&path, text)?;
        written.push(path);
    }
    editor_support(new, tools)?;
    Ok(written)
}

/// TypeScript declarations (`types/`) or Python bindings (`bindings/`) of the role's world, for
/// editors and type checkers.
fn editor_support(new: &NewPlugin, tools: &Toolchains) -> anyhow::Result<()> {
    let world = new.role.world();
    let mut cmd = match new.language {
        Language::Rust => return Ok(()),
        Language::Js => {
            let mut c = tools.command(&tools.jco().to_string_lossy(), &new.dir);
            c.args(["types", "wit", "--world-name", &world, "-o", "types"]);
            c
        }
        Language::Python => {
            let mut c = tools.command(&tools.componentize_py().to_string_lossy(), &new.dir);
            c.args(["-d", "wit", "-w", &world, "bindings", "bindings"]);
            c
        }
    };
    let out = cmd
        .output()
        .map_err(|e| anyhow::anyhow!("cannot run the toolchain for editor declarations: {e}"))?;
    if !out.status.success() {
        anyhow::bail!(
            "writing the editor declarations failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

fn language_name(l: Language) -> &'static str {
    match l {
        Language::Rust => "Rust",
        Language::Js => "JavaScript",
        Language::Python => "Python",
    }
}

fn rust_feature(role: NewRole) -> &'static str {
    match role {
        NewRole::Observer => "observer",
        NewRole::Resolver => "permission-resolver",
        NewRole::Provider => "config-provider",
        NewRole::Interceptor => "before-interceptor",
    }
}

fn readme(new: &NewPlugin, command: &str) -> String {
    let source = match new.language {
        Language::Rust => "src/lib.rs",
        Language::Js => "plugin.js",
        Language::Python => "app.py",
    };
    let editor = match new.language {
        Language::Rust => "",
        Language::Js => {
            "\n`types/` holds TypeScript declarations of the role's types (from `wit/`, by `jco types`) for\nyour editor.\n"
        }
        Language::Python => {
            "\n`bindings/` holds the Python bindings of the role's types (from `wit/`, by\n`componentize-py bindings`) for your editor and type checker.\n"
        }
    };
    format!(
        "# {name}\n\n{Role} plugin in {lang} for integration-host. Its code is in `{source}`; what it is and\nhow it is built is in `plugin.toml`.\n{editor}\n## Build, check, load\n\n```sh\nintegration-host plugin build {dir}   # runs `{command}`, then checks it\n```\n\nThe server loads it when its parent folder is in `plugins.directories`; a changed folder is\nreloaded within a second. See docs/plugins.md in the integration-host checkout.\n",
        name = new.name,
        Role = capitalized(new.role.role()),
        lang = language_name(new.language),
        dir = new.dir.display(),
    )
}

fn rust_source(role: NewRole) -> String {
    let (config, state, new_body, impl_block, register) = match role {
        NewRole::Observer => (
            "    /// Customers of these email domains may not sign in for a token.\n    #[serde(default)]\n    blocked_domains: Vec<String>,",
            "    blocked: Vec<String>,",
            "Ok(Self {\n            blocked: config.blocked_domains.iter().map(|d| d.to_ascii_lowercase()).collect(),\n        })",
            "impl Observer for MyPlugin {\n    /// Called for each event of the manifest's `[observer] events`; a veto refuses a sign-in.\n    fn on_event(&self, event: Event) -> Result<Outcome, PluginError> {\n        let Event::CustomerLogin(login) = event else {\n            return Ok(Outcome::Proceed);\n        };\n        let domain = login.email.rsplit('@').next().unwrap_or_default().to_ascii_lowercase();\n        if self.blocked.contains(&domain) {\n            warn!(\"sign-in refused\", email = login.email);\n            return Ok(Outcome::Veto(\"Sign-in refused: blocked email domain.\".into()));\n        }\n        Ok(Outcome::Proceed)\n    }\n}",
            "observer",
        ),
        NewRole::Resolver => (
            "    /// Integrations (by name) whose requests are denied.\n    #[serde(default)]\n    denied_integrations: Vec<String>,",
            "    denied: Vec<String>,",
            "Ok(Self {\n            denied: config.denied_integrations,\n        })",
            "impl PermissionResolver for MyPlugin {\n    /// Called for every authorization: deny, allow or abstain (leave it to the ACL).\n    fn resolve(&self, request: Request) -> Result<Verdict, PluginError> {\n        if let Principal::Integration(i) = &request.principal\n            && self.denied.contains(&i.name)\n        {\n            return Ok(Verdict::Deny(format!(\"integration {} is denied\", i.name)));\n        }\n        Ok(Verdict::Abstain)\n    }\n}",
            "permission_resolver",
        ),
        NewRole::Provider => (
            "    /// The integration it declares.\n    integration_name: String,\n    /// What that integration may use (ACL resource ids).\n    #[serde(default)]\n    resources: Vec<String>,",
            "    name: String,\n    resources: Vec<String>,",
            "Ok(Self {\n            name: config.integration_name,\n            resources: config.resources,\n        })",
            "impl ConfigProvider for MyPlugin {\n    /// Called at every declarative sync: the integrations this plugin declares.\n    fn integrations(&self) -> Result<Vec<IntegrationDefinition>, PluginError> {\n        Ok(vec![IntegrationDefinition {\n            name: self.name.clone(),\n            email: None,\n            endpoint_url: None,\n            identity_link_url: None,\n            resources: self.resources.clone(),\n            all_resources: false,\n        }])\n    }\n}",
            "config_provider",
        ),
        NewRole::Interceptor => (
            "    /// New integrations whose name starts with this are refused.\n    #[serde(default)]\n    refused_prefix: String,",
            "    prefix: String,",
            "Ok(Self {\n            prefix: config.refused_prefix,\n        })",
            "impl BeforeInterceptor for MyPlugin {\n    /// Called before each operation of the manifest's `operations`: pass, rewrite or refuse.\n    fn before(&self, operation: Operation) -> Result<Answer, PluginError> {\n        if let Operation::IntegrationCreate(input) = &operation\n            && !self.prefix.is_empty()\n            && input.name.starts_with(&self.prefix)\n        {\n            return Ok(Answer::Refuse(format!(\"Integrations named \\\"{}…\\\" are refused.\", self.prefix)));\n        }\n        Ok(Answer::Pass)\n    }\n}",
            "before_interceptor",
        ),
    };
    format!(
        "//! {Role} plugin. The host builds `MyPlugin` once per instance from the manifest's\n//! `[config]` (`Plugin::new`), then calls the role's method.\n\nuse integration_host_sdk::prelude::*;\n\n/// The manifest's `[config]` table.\n#[derive(Debug, serde::Deserialize)]\nstruct Config {{\n{config}\n}}\n\n/// What the plugin keeps between calls.\nstruct MyPlugin {{\n{state}\n}}\n\nimpl Plugin for MyPlugin {{\n    type Config = Config;\n\n    /// Built from the configuration before the first call; an error here fails every call.\n    fn new(config: Config) -> Result<Self, PluginError> {{\n        {new_body}\n    }}\n}}\n\n{impl_block}\n\n// Exports the role's interface to the host.\nregister!(MyPlugin: {register});\n",
        Role = capitalized(role.role()),
    )
}

fn js_source(role: NewRole) -> String {
    let body = match role {
        NewRole::Observer => {
            "// The observer interface: onEvent is called for each event of the manifest's\n// [observer] events. Return { tag: 'proceed' }, or { tag: 'veto', val: reason } to refuse a sign-in.\nexport const observer = {\n  onEvent(event) {\n    if (event.tag !== 'customer-login') {\n      return { tag: 'proceed' };\n    }\n    const login = event.val;\n    const domain = login.email.slice(login.email.lastIndexOf('@') + 1).toLowerCase();\n    const blocked = (settings().blocked_domains ?? []).map((d) => d.toLowerCase());\n    if (blocked.includes(domain)) {\n      log('warn', 'sign-in refused', [['email', login.email]]);\n      return { tag: 'veto', val: 'Sign-in refused: blocked email domain.' };\n    }\n    return { tag: 'proceed' };\n  },\n};\n"
        }
        NewRole::Resolver => {
            "// The permission-resolver interface: resolve is called for every authorization. Return\n// { tag: 'deny', val: reason }, { tag: 'allow' } or { tag: 'abstain' } (leave it to the ACL).\nexport const permissionResolver = {\n  resolve(request) {\n    const p = request.principal;\n    if (p.tag === 'integration' && (settings().denied_integrations ?? []).includes(p.val.name)) {\n      return { tag: 'deny', val: `integration ${p.val.name} is denied` };\n    }\n    return { tag: 'abstain' };\n  },\n};\n"
        }
        NewRole::Provider => {
            "// The config-provider interface: integrations is called at every declarative sync and\n// answers the integrations this plugin declares.\nexport const configProvider = {\n  integrations() {\n    const c = settings();\n    return [{\n      name: c.integration_name,\n      email: undefined,\n      endpointUrl: undefined,\n      identityLinkUrl: undefined,\n      resources: c.resources ?? [],\n      allResources: false,\n    }];\n  },\n};\n"
        }
        NewRole::Interceptor => {
            "// The before-interceptor interface: before is called before each operation of the\n// manifest's operations. Return { tag: 'pass' }, { tag: 'rewrite', val: operation } or\n// { tag: 'refuse', val: message }.\nexport const beforeInterceptor = {\n  before(operation) {\n    const prefix = settings().refused_prefix ?? '';\n    if (operation.tag === 'integration-create' && prefix && operation.val.name.startsWith(prefix)) {\n      return { tag: 'refuse', val: `Integrations named \"${prefix}…\" are refused.` };\n    }\n    return { tag: 'pass' };\n  },\n};\n"
        }
    };
    format!(
        "// {Role} plugin in JavaScript, built into a component by componentize-js (build.mjs).\n// The host's functions: log(level, message, fields) and config() (the manifest's [config] as JSON).\nimport {{ log, config }} from 'integration-host:plugin/host@1.1.0';\n\n// The configuration, read at the first call (the module's top level runs when the component\n// is built, without the host).\nlet cached = null;\nfunction settings() {{\n  cached ??= JSON.parse(config() || '{{}}');\n  return cached;\n}}\n\n{body}",
        Role = capitalized(role.role())
    )
}

fn python_source(role: NewRole) -> String {
    let (class, body) = match role {
        NewRole::Observer => (
            "Observer",
            "    def on_event(self, event: types.Event) -> observer.Outcome:\n        \"\"\"Called for each event of the manifest's [observer] events; a veto refuses a sign-in.\"\"\"\n        if not isinstance(event, types.Event_CustomerLogin):\n            return observer.Outcome_Proceed()\n        login = event.value\n        domain = login.email.rsplit(\"@\", 1)[-1].lower()\n        blocked = [d.lower() for d in settings().get(\"blocked_domains\", [])]\n        if domain in blocked:\n            host.log(host.Level.WARN, \"sign-in refused\", [(\"email\", login.email)])\n            return observer.Outcome_Veto(\"Sign-in refused: blocked email domain.\")\n        return observer.Outcome_Proceed()\n",
        ),
        NewRole::Resolver => (
            "PermissionResolver",
            "    def resolve(self, request: permission_resolver.Request) -> permission_resolver.Verdict:\n        \"\"\"Called for every authorization: deny, allow or abstain (leave it to the ACL).\"\"\"\n        p = request.principal\n        if isinstance(p, types.Principal_Integration) and p.value.name in settings().get(\"denied_integrations\", []):\n            return permission_resolver.Verdict_Deny(f\"integration {p.value.name} is denied\")\n        return permission_resolver.Verdict_Abstain()\n",
        ),
        NewRole::Provider => (
            "ConfigProvider",
            "    def integrations(self) -> List[config_provider.IntegrationDefinition]:\n        \"\"\"Called at every declarative sync: the integrations this plugin declares.\"\"\"\n        c = settings()\n        return [config_provider.IntegrationDefinition(\n            name=c[\"integration_name\"], email=None, endpoint_url=None, identity_link_url=None,\n            resources=c.get(\"resources\", []), all_resources=False)]\n",
        ),
        NewRole::Interceptor => (
            "BeforeInterceptor",
            "    def before(self, operation: before_interceptor.Operation) -> before_interceptor.Answer:\n        \"\"\"Called before each operation of the manifest's operations: pass, rewrite or refuse.\"\"\"\n        prefix = settings().get(\"refused_prefix\", \"\")\n        if isinstance(operation, before_interceptor.Operation_IntegrationCreate) and prefix and operation.value.name.startswith(prefix):\n            return before_interceptor.Answer_Refuse(f'Integrations named \"{prefix}…\" are refused.')\n        return before_interceptor.Answer_Pass()\n",
        ),
    };
    let module = match role {
        NewRole::Observer => "observer",
        NewRole::Resolver => "permission_resolver",
        NewRole::Provider => "config_provider",
        NewRole::Interceptor => "before_interceptor",
    };
    format!(
        "\"\"\"{Role} plugin in Python, built into a component by componentize-py.\n\nThe host's functions: host.log(level, message, fields) and host.config() (the manifest's\n[config] as JSON). bindings/ holds the types for your editor.\n\"\"\"\n\nimport json\nfrom typing import List\n\nfrom wit_world import exports\nfrom wit_world.exports import {module}\nfrom wit_world.imports import host, types\n\n_settings = None\n\n\ndef settings():\n    \"\"\"The configuration, read at the first call (the module runs at build time, without the host).\"\"\"\n    global _settings\n    if _settings is None:\n        _settings = json.loads(host.config() or \"{{}}\")\n    return _settings\n\n\nclass {class}(exports.{class}):\n{body}",
        Role = capitalized(role.role())
    )
}

/// The folder a new plugin goes in: `--dir`, else the first of `plugins.directories`, else
/// `plugins`.
pub(super) fn parent_dir(given: Option<PathBuf>, directories: &[PathBuf]) -> PathBuf {
    given
        .or_else(|| directories.first().cloned())
        .unwrap_or_else(|| Path::new("plugins").to_path_buf())
}

/// `observer` as `Observer`: a role's name opening a sentence.
fn capitalized(role: &str) -> String {
    let mut chars = role.chars();
    chars
        .next()
        .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
        .unwrap_or_default()
}
