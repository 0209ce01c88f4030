//! What a component's exports say about it: the plugin API version it was built against and the
//! roles it plays.

use super::tables::Role;

/// API versions this host has bindings for, as `(major, minor)`: one module each
/// (`v1_0`, `v1_1`, whose `VERSION` a test matches against this list).
pub const SUPPORTED_API: &[(u32, u32)] = &[(1, 0), (1, 1)];

/// The WIT package the API versions belong to.
pub const PACKAGE: &str = "integration-host:plugin";

/// `"1.0"` (or `"1.0.0"`) as `(1, 0)`.
pub fn parse_api(text: &str) -> Option<(u32, u32)> {
    let mut parts = text.trim().split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    match parts.next() {
        None => {}
        Some(p) if p.parse::<u32>().is_ok() => {}
        Some(_) => return None,
    }
    parts.next().is_none().then_some((major, minor))
}

/// The names a component exports at its top level, read without compiling it (milliseconds,
/// whatever its size; compiling a JavaScript or Python component takes seconds).
pub fn component_exports(bytes: &[u8]) -> Result<Vec<String>, String> {
    use wasmparser::{Parser, Payload};
    let mut names = Vec::new();
    // Nested modules and components come inline, each closed by its own `End`.
    let mut depth = 0usize;
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| format!("not a WebAssembly component: {e}"))? {
            Payload::Version { encoding, .. } => {
                if depth == 0 && encoding != wasmparser::Encoding::Component {
                    return Err("not a WebAssembly component (a core module)".into());
                }
                depth += 1;
            }
            Payload::End(_) => depth = depth.saturating_sub(1),
            Payload::ComponentExportSection(exports) if depth == 1 => {
                for export in exports {
                    let export = export.map_err(|e| format!("not a WebAssembly component: {e}"))?;
                    names.push(export.name.name.to_owned());
                }
            }
            _ => {}
        }
    }
    Ok(names)
}

/// What a component's exports say about it: the API version it was built against and the roles
/// it plays (sorted), with the exports they were read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub api: (u32, u32),
    pub roles: Vec<Role>,
    /// The exports of the plugin API, as written (`integration-host:plugin/observer@1.0.0`).
    pub exports: Vec<String>,
}

impl Exported {
    pub(super) fn names(&self) -> String {
        self.exports
            .iter()
            .map(|e| format!("`{e}`"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Reads the API version and roles from a component's export names. Every export of the
    /// plugin API must name one supported version and a role of it; other exports are ignored.
    pub fn read<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Exported, String> {
        let all: Vec<&str> = names.into_iter().collect();
        let prefix = format!("{PACKAGE}/");
        let mut api = None;
        let mut roles = Vec::new();
        let mut exports = Vec::new();
        for name in all.iter().filter(|n| n.starts_with(&prefix)) {
            let (interface, version) = name[prefix.len()..]
                .split_once('@')
                .ok_or_else(|| format!("the component exports `{name}` without an API version"))?;
            let version = parse_api(version)
                .ok_or_else(|| format!("the component exports `{name}`: not an API version"))?;
            if !SUPPORTED_API.contains(&version) {
                return Err(format!(
                    "the component was built against API version {}.{}, which this server does not support (supported: {}): it exports `{name}`",
                    version.0,
                    version.1,
                    supported()
                ));
            }
            match api {
                Some(v) if v != version => {
                    return Err(format!(
                        "the component exports interfaces of two API versions: `{}` and `{name}`",
                        exports.first().map(String::as_str).unwrap_or_default()
                    ));
                }
                _ => api = Some(version),
            }
            let role = Role::from_interface(interface)
                .filter(|r| r.since() <= version)
                .ok_or_else(|| {
                    format!(
                        "the component exports `{name}`, which is not a role of API {}.{}",
                        version.0, version.1
                    )
                })?;
            roles.push(role);
            exports.push((*name).to_owned());
        }
        let Some(api) = api else {
            return Err(format!(
                "the component exports no role of the plugin API {PACKAGE} (it exports: {})",
                if all.is_empty() {
                    "nothing".to_owned()
                } else {
                    all.join(", ")
                }
            ));
        };
        roles.sort();
        roles.dedup();
        Ok(Exported {
            api,
            roles,
            exports,
        })
    }
}

pub(super) fn supported() -> String {
    SUPPORTED_API
        .iter()
        .map(|(a, b)| format!("{a}.{b}"))
        .collect::<Vec<_>>()
        .join(", ")
}
