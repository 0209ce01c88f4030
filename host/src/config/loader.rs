//! Where settings come from: the layers (defaults, a TOML file, `APP_…` environment variables,
//! flags) merged into one table and typed into [`Settings`], values read from files
//! (`{ file = "…" }`, `APP_…_FILE`), and errors that name the key and its origin.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{ENV_PREFIX, Settings, TEMPLATE};

/// Where a setting's value came from, to name it in errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    File(PathBuf),
    Env(String),
    /// A file named by an `APP_…_FILE` variable.
    EnvFile {
        var: String,
        path: PathBuf,
    },
    Flag(&'static str),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File(p) => write!(f, "in {}", p.display()),
            Origin::Env(v) => write!(f, "from environment variable {v}"),
            Origin::EnvFile { var, path } => {
                write!(f, "from file {} named by {var}", path.display())
            }
            Origin::Flag(flag) => write!(f, "from flag {flag}"),
        }
    }
}

/// A configuration that cannot be used, naming the offending key.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration file {path} is not valid TOML: {message}")]
    Syntax { path: PathBuf, message: String },
    #[error("configuration key `{key}` ({origin}): {message}")]
    Key {
        key: String,
        origin: String,
        message: String,
    },
}

/// Builds [`Settings`] from the layers, lowest first: defaults, file, environment, flags.
#[derive(Debug, Default)]
pub struct Loader {
    table: toml::Table,
    origins: BTreeMap<String, Origin>,
    /// A value file that could not be read, reported by [`Loader::load`].
    unreadable: Option<ConfigError>,
}

/// Every setting's key (`section.key`), as the template names them (checked against the
/// settings by a unit test).
fn known_keys() -> Vec<String> {
    let mut named = Vec::new();
    let mut section = String::new();
    for line in TEMPLATE.lines() {
        // `#|` lines are examples, not settings.
        if line.starts_with("#|") {
            continue;
        }
        let line = line.trim_start_matches('#').trim();
        if line.starts_with('[') && line.ends_with(']') {
            section = line[1..line.len() - 1].to_owned();
        } else if let Some((k, _)) = line.split_once(" = ")
            && k.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            named.push(if section.is_empty() {
                k.to_owned()
            } else {
                format!("{section}.{k}")
            });
        }
    }
    named.sort();
    named.dedup();
    named
}

/// A setting's value read from the file at `path`, typed as the setting's default is: a list
/// takes one entry per line (blank lines and `#` comments skipped), a number or a boolean is
/// parsed, anything else is the text without its trailing line breaks.
fn value_from_file(key: &str, path: &Path) -> Result<toml::Value, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the value file {}: {e}", path.display()))?;
    let defaults = toml::Table::try_from(Settings::default()).expect("the defaults serialize");
    let default = key
        .split('.')
        .try_fold(None::<&toml::Value>, |at, part| match at {
            None => defaults.get(part).map(Some),
            Some(toml::Value::Table(t)) => Some(t.get(part)),
            Some(_) => None,
        })
        .flatten();
    let text = text.trim_end_matches(['\n', '\r']);
    Ok(match default {
        Some(toml::Value::Array(_)) => toml::Value::Array(
            text.lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.starts_with('#'))
                .map(|l| toml::Value::String(l.to_owned()))
                .collect(),
        ),
        Some(toml::Value::Integer(_)) => text
            .trim()
            .parse()
            .map(toml::Value::Integer)
            .unwrap_or_else(|_| toml::Value::String(text.to_owned())),
        Some(toml::Value::Boolean(_)) => text
            .trim()
            .parse()
            .map(toml::Value::Boolean)
            .unwrap_or_else(|_| toml::Value::String(text.to_owned())),
        _ => toml::Value::String(text.to_owned()),
    })
}

/// The path of a `{ file = "PATH" }` value.
fn file_reference(value: &toml::Value) -> Option<&str> {
    match value {
        toml::Value::Table(t) if t.len() == 1 => t.get("file")?.as_str(),
        _ => None,
    }
}

/// Settings that name files or folders: a relative one written in a configuration file is
/// relative to that file's folder (as it is from the environment or a flag to the working
/// folder), so the server, and a `plugin` command run from a plugin's folder, find the same ones.
const PATH_KEYS: &[&str] = &[
    "data_dir",
    "acl.resources_file",
    "integrations.directories",
    "webapi.routes_files",
    "plugins.directories",
    "plugins.cache_dir",
    "plugins.toolchains_dir",
    "bootstrap.password_file",
];

/// `path` against `base` when it is relative.
fn against(base: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_relative() {
        base.join(path)
    } else {
        path.to_owned()
    }
}

/// Makes the relative paths of a configuration file's [`PATH_KEYS`] (and of a `sqlite:` database
/// URL) relative to `base`, the file's folder.
fn resolve_relative_paths(table: &mut toml::Table, base: &Path) {
    let fix = |v: &mut toml::Value| {
        if let toml::Value::String(s) = v {
            *s = against(base, s).display().to_string();
        }
    };
    for key in PATH_KEYS {
        let (section, name) = match key.split_once('.') {
            Some((section, name)) => (Some(section), name),
            None => (None, *key),
        };
        let holder = match section {
            Some(section) => match table.get_mut(section) {
                Some(toml::Value::Table(t)) => t,
                _ => continue,
            },
            None => &mut *table,
        };
        match holder.get_mut(name) {
            Some(toml::Value::Array(items)) => items.iter_mut().for_each(fix),
            Some(v) => fix(v),
            None => {}
        }
    }
    if let Some(toml::Value::Table(db)) = table.get_mut("database")
        && let Some(toml::Value::String(url)) = db.get_mut("url")
        && let Some(rest) = url.strip_prefix("sqlite:")
    {
        let (slashes, path) = match rest.strip_prefix("//") {
            Some(path) => ("//", path),
            None => ("", rest),
        };
        if Path::new(path).is_relative() && !path.starts_with(":memory:") {
            *url = format!("sqlite:{slashes}{}", against(base, path).display());
        }
    }
}

/// Replaces every `{ file = "PATH" }` value in `table` (and in its lists) by the file's
/// contents, a relative `PATH` being relative to `base`; the first unreadable file is an error
/// naming its key.
fn resolve_file_references(
    table: &mut toml::Table,
    prefix: &str,
    origin: &Origin,
    base: &Path,
) -> Result<(), ConfigError> {
    for (k, v) in table.iter_mut() {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        let error = |message| ConfigError::Key {
            key: key.clone(),
            origin: origin.to_string(),
            message,
        };
        if let Some(path) = file_reference(v) {
            *v = value_from_file(&key, &against(base, path)).map_err(error)?;
            continue;
        }
        match v {
            toml::Value::Table(t) => resolve_file_references(t, &key, origin, base)?,
            toml::Value::Array(items) => {
                for item in items.iter_mut() {
                    if let Some(path) = file_reference(item) {
                        let path = against(base, path);
                        let text = std::fs::read_to_string(&path).map_err(|e| {
                            error(format!(
                                "cannot read the value file {}: {e}",
                                path.display()
                            ))
                        })?;
                        *item = toml::Value::String(text.trim_end_matches(['\n', '\r']).to_owned());
                    }
                }
            }
            _ => {}
        }
    }
    Ok(())
}

impl Loader {
    pub fn new() -> Self {
        Self::default()
    }

    /// Layers a TOML file on top.
    pub fn file(mut self, path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        let mut table: toml::Table = toml::from_str(&text).map_err(|e| ConfigError::Syntax {
            path: path.to_owned(),
            message: e.to_string(),
        })?;
        let base = std::path::absolute(path)
            .ok()
            .and_then(|p| p.parent().map(Path::to_owned))
            .unwrap_or_default();
        resolve_relative_paths(&mut table, &base);
        resolve_file_references(&mut table, "", &Origin::File(path.to_owned()), &base)?;
        let mut leaves = Vec::new();
        collect_leaves(&table, "", &mut leaves);
        for key in leaves {
            self.origins.insert(key, Origin::File(path.to_owned()));
        }
        merge(&mut self.table, table);
        Ok(self)
    }

    /// Layers `APP_…` variables from the given environment on top.
    ///
    /// A value is read as a TOML value when it parses as one (`8`, `true`, `["a"]`) and as a
    /// plain string otherwise, so `APP_SERVER__LISTEN=0.0.0.0:80` needs no quotes.
    /// `APP_<SECTION>__<KEY>_FILE=PATH` reads the value of `section.key` from the file at
    /// `PATH` (unless `section.key_file` is itself a setting, as `acl.resources_file` is).
    pub fn env<I: IntoIterator<Item = (String, String)>>(mut self, vars: I) -> Self {
        let mut vars: Vec<_> = vars
            .into_iter()
            .filter(|(k, _)| k.starts_with(ENV_PREFIX) && k.len() > ENV_PREFIX.len())
            .collect();
        vars.sort();
        let known = known_keys();
        for (name, raw) in vars {
            let mut path: Vec<String> = name[ENV_PREFIX.len()..]
                .split("__")
                .map(|s| s.to_ascii_lowercase())
                .collect();
            let key = path.join(".");
            let from_file = key
                .strip_suffix("_file")
                .filter(|k| known.iter().any(|n| n == k) && !known.contains(&key))
                .map(str::to_owned);
            let value = match from_file {
                Some(target) => {
                    let last = path.last_mut().expect("non-empty");
                    last.truncate(last.len() - "_file".len());
                    match value_from_file(&target, Path::new(&raw)) {
                        Ok(v) => {
                            self.origins.insert(
                                target,
                                Origin::EnvFile {
                                    var: name,
                                    path: PathBuf::from(&raw),
                                },
                            );
                            v
                        }
                        Err(message) => {
                            self.unreadable.get_or_insert(ConfigError::Key {
                                key: target,
                                origin: Origin::Env(name).to_string(),
                                message,
                            });
                            continue;
                        }
                    }
                }
                None => {
                    self.origins.insert(key, Origin::Env(name));
                    parse_env_value(&raw)
                }
            };
            set_path(&mut self.table, &path, value);
        }
        self
    }

    /// Layers one command-line flag on top.
    pub fn flag(mut self, key: &str, flag: &'static str, value: toml::Value) -> Self {
        let path: Vec<String> = key.split('.').map(str::to_owned).collect();
        self.origins.insert(key.to_owned(), Origin::Flag(flag));
        set_path(&mut self.table, &path, value);
        self
    }

    /// Checks and types the merged layers.
    pub fn load(self) -> Result<Settings, ConfigError> {
        if let Some(e) = self.unreadable {
            return Err(e);
        }
        let de = toml::Value::Table(self.table);
        serde_path_to_error::deserialize::<_, Settings>(de).map_err(|err| {
            let key = err.path().to_string();
            let inner = err.into_inner();
            let message = inner.message().to_owned();
            // A table's error (a plugin's grant) comes from where its keys were set.
            let below = format!("{key}.");
            let origin = self
                .origins
                .get(&key)
                .or_else(|| {
                    self.origins
                        .iter()
                        .find(|(k, _)| k.starts_with(&below))
                        .map(|(_, o)| o)
                })
                .map(ToString::to_string)
                .unwrap_or_else(|| "default".to_owned());
            ConfigError::Key {
                key,
                origin,
                message,
            }
        })
    }
}

/// Loads settings as the CLI does: optional file, then the process environment, then flags.
pub fn load(
    file: Option<&Path>,
    flags: Vec<(&str, &'static str, toml::Value)>,
) -> Result<Settings, ConfigError> {
    let mut loader = Loader::new();
    if let Some(path) = file {
        loader = loader.file(path)?;
    }
    loader = loader.env(
        std::env::vars_os()
            .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
    );
    for (key, flag, value) in flags {
        loader = loader.flag(key, flag, value);
    }
    // Unset, the data folder of a binary run from its checkout is the checkout's `data`,
    // whatever the working folder (where `scripts/run` keeps it).
    if !loader.origins.contains_key("data_dir")
        && let Some(root) = super::checkout_of_binary()
    {
        loader.table.insert(
            "data_dir".into(),
            toml::Value::String(root.join("data").display().to_string()),
        );
    }
    loader.load()
}

/// Parses a TOML document into `T`; an error names the offending key (`a.b[2].c`, empty for a
/// syntax error) and says what is wrong with it. Used by every TOML file the server reads.
pub fn parse_toml_at_key<T: serde::de::DeserializeOwned>(
    text: &str,
) -> Result<T, (String, String)> {
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let at = e
            .span()
            .map(|s| {
                let line = text[..s.start.min(text.len())].matches('\n').count() + 1;
                format!("line {line}: ")
            })
            .unwrap_or_default();
        (String::new(), format!("{at}{}", e.message()))
    })?;
    serde_path_to_error::deserialize(toml::Value::Table(table)).map_err(|e| {
        let mut key = e.path().to_string();
        let message = e.into_inner().message().to_owned();
        // A missing field is reported at its table; name the field itself.
        if let Some(field) = message
            .strip_prefix("missing field `")
            .and_then(|r| r.strip_suffix('`'))
        {
            key = if key == "." || key.is_empty() {
                field.to_owned()
            } else {
                format!("{key}.{field}")
            };
        }
        (key, message)
    })
}

fn parse_env_value(raw: &str) -> toml::Value {
    #[derive(Deserialize)]
    struct Wrapper {
        v: toml::Value,
    }
    match toml::from_str::<Wrapper>(&format!("v = {raw}")) {
        Ok(w) => w.v,
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

fn set_path(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let (last, parents) = path.split_last().expect("non-empty path");
    let mut cur = table;
    for part in parents {
        let entry = cur
            .entry(part.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if !entry.is_table() {
            *entry = toml::Value::Table(toml::Table::new());
        }
        cur = entry.as_table_mut().expect("table");
    }
    cur.insert(last.clone(), value);
}

fn merge(base: &mut toml::Table, top: toml::Table) {
    for (k, v) in top {
        match (base.get_mut(&k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(t)) => merge(b, t),
            (_, v) => {
                base.insert(k, v);
            }
        }
    }
}

fn collect_leaves(table: &toml::Table, prefix: &str, out: &mut Vec<String>) {
    for (k, v) in table {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            toml::Value::Table(t) => collect_leaves(t, &key, out),
            _ => out.push(key),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{DatabaseUrl, KeySpec};

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn key_error(err: ConfigError) -> (String, String, String) {
        match err {
            ConfigError::Key {
                key,
                origin,
                message,
            } => (key, origin, message),
            other => panic!("expected a key error, got {other}"),
        }
    }

    #[test]
    fn template_parses_to_the_defaults() {
        let parsed: Settings = toml::from_str(TEMPLATE).expect("template parses");
        assert_eq!(parsed, Settings::default());
    }

    #[test]
    fn template_names_every_setting() {
        // Every key of the defaults, plus the optional ones, appears in the template, active or
        // commented out; and the template names no key that does not exist.
        let mut expected = Vec::new();
        let defaults = toml::Table::try_from(Settings::default()).unwrap();
        collect_leaves(&defaults, "", &mut expected);
        expected.extend([
            "database.url".into(),
            "crypto.lookup_key".into(),
            "acl.resources_file".into(),
            "plugins.cache_dir".into(),
            "metrics.listen".into(),
            "metrics.bearer_token".into(),
            "bootstrap.password_file".into(),
        ]);
        expected.sort();
        let named = known_keys();
        assert_eq!(named, expected);
    }

    #[test]
    fn env_overrides_nest_with_double_underscore() {
        let s = Loader::new()
            .env(env(&[
                ("APP_SERVER__LISTEN", "0.0.0.0:9000"),
                ("APP_DATABASE__POOL_SIZE", "3"),
                ("APP_DATA_DIR", "/var/lib/ih"),
                ("OTHER", "ignored"),
            ]))
            .load()
            .unwrap();
        assert_eq!(s.server.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(s.database.pool_size, 3);
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/ih"));
    }

    #[test]
    fn unknown_env_key_is_named_with_its_variable() {
        let err = Loader::new()
            .env(env(&[("APP_SERVER__LISTN", "x")]))
            .load()
            .unwrap_err();
        let (key, origin, message) = key_error(err);
        assert_eq!(key, "server.listn");
        assert!(origin.contains("APP_SERVER__LISTN"), "{origin}");
        assert!(message.contains("unknown field"), "{message}");
    }

    #[test]
    fn unknown_top_level_key_is_named() {
        let dir = tempdir();
        let path = dir.join("c.toml");
        std::fs::write(&path, "colour = \"blue\"\n").unwrap();
        let (key, origin, _) = key_error(Loader::new().file(&path).unwrap().load().unwrap_err());
        assert_eq!(key, "colour");
        assert!(origin.contains("c.toml"));
    }

    #[test]
    fn bad_type_is_named() {
        let dir = tempdir();
        let path = dir.join("c.toml");
        std::fs::write(&path, "[database]\npool_size = \"many\"\n").unwrap();
        let (key, _, message) = key_error(Loader::new().file(&path).unwrap().load().unwrap_err());
        assert_eq!(key, "database.pool_size");
        assert!(message.contains("invalid type"), "{message}");
    }

    #[test]
    fn flags_win_over_env() {
        let s = Loader::new()
            .env(env(&[("APP_SERVER__LISTEN", "0.0.0.0:9000")]))
            .flag(
                "server.listen",
                "--listen",
                toml::Value::String("127.0.0.1:0".into()),
            )
            .load()
            .unwrap();
        assert_eq!(s.server.listen.port(), 0);
    }

    #[test]
    fn values_are_read_from_files_named_in_toml_or_by_file_variables() {
        let dir = tempdir();
        let url = dir.join("db-url");
        std::fs::write(&url, "postgres://u:hunter2@db/ih\n").unwrap();
        let keys = dir.join("keys");
        let (k2, k1) = (KeySpec::generate("k2"), KeySpec::generate("k1"));
        std::fs::write(
            &keys,
            format!("{}\n# older\n{}\n", k2.expose(), k1.expose()),
        )
        .unwrap();
        let lookup = dir.join("lookup");
        std::fs::write(&lookup, KeySpec::generate("lookup").expose()).unwrap();
        let next = dir.join("next");
        std::fs::write(&next, KeySpec::generate("k3").expose()).unwrap();
        let pool = dir.join("pool");
        std::fs::write(&pool, "7\n").unwrap();
        let config = dir.join("c.toml");
        std::fs::write(
            &config,
            format!(
                "[database]\nurl = {{ file = {:?} }}\n[crypto]\nlookup_key = {{ file = {:?} }}\nnext_secret_keys = [{{ file = {:?} }}]\n",
                url.display().to_string(),
                lookup.display().to_string(),
                next.display().to_string(),
            ),
        )
        .unwrap();
        let s = Loader::new()
            .file(&config)
            .unwrap()
            .env(env(&[
                ("APP_CRYPTO__SECRET_KEYS_FILE", keys.to_str().unwrap()),
                ("APP_DATABASE__POOL_SIZE_FILE", pool.to_str().unwrap()),
                // A setting whose own name ends in _file is that setting.
                ("APP_ACL__RESOURCES_FILE", "acl.toml"),
            ]))
            .load()
            .unwrap();
        assert_eq!(
            s.database.url,
            Some(DatabaseUrl::parse("postgres://u:hunter2@db/ih").unwrap())
        );
        assert_eq!(s.crypto.secret_keys, vec![k2, k1]);
        assert_eq!(s.crypto.next_secret_keys[0].id(), "k3");
        assert_eq!(s.crypto.lookup_key.unwrap().id(), "lookup");
        assert_eq!(s.database.pool_size, 7);
        assert_eq!(s.acl.resources_file, Some(PathBuf::from("acl.toml")));
    }

    #[test]
    fn an_unreadable_value_file_is_named_with_its_key() {
        let dir = tempdir();
        let err = Loader::new()
            .env(env(&[(
                "APP_METRICS__BEARER_TOKEN_FILE",
                "/nonexistent/token",
            )]))
            .load()
            .unwrap_err();
        let (key, origin, message) = key_error(err);
        assert_eq!(key, "metrics.bearer_token");
        assert!(
            origin.contains("APP_METRICS__BEARER_TOKEN_FILE"),
            "{origin}"
        );
        assert!(message.contains("/nonexistent/token"), "{message}");
        let config = dir.join("c.toml");
        std::fs::write(
            &config,
            "[database]\nurl = { file = \"/nonexistent/url\" }\n",
        )
        .unwrap();
        let (key, origin, _) = key_error(Loader::new().file(&config).unwrap_err());
        assert_eq!(key, "database.url");
        assert!(origin.contains("c.toml"), "{origin}");
        // A secret read from a file is checked like any value, and never shown.
        let token = dir.join("token");
        std::fs::write(&token, "short\n").unwrap();
        let (key, _, message) = key_error(
            Loader::new()
                .env(env(&[(
                    "APP_METRICS__BEARER_TOKEN_FILE",
                    token.to_str().unwrap(),
                )]))
                .load()
                .unwrap_err(),
        );
        assert_eq!(key, "metrics.bearer_token");
        assert!(message.contains("at least 16"), "{message}");
    }

    #[test]
    fn relative_paths_in_a_file_are_relative_to_its_folder() {
        let dir = tempdir();
        std::fs::create_dir_all(dir.join("etc")).unwrap();
        std::fs::write(dir.join("etc/token"), "0123456789abcdef0123\n").unwrap();
        let config = dir.join("etc/server.toml");
        std::fs::write(
            &config,
            "data_dir = \"state\"\n[database]\nurl = \"sqlite:state/db.sqlite\"\n[plugins]\ndirectories = [\"plugins\", \"/opt/plugins\"]\n[metrics]\nbearer_token = { file = \"token\" }\n",
        )
        .unwrap();
        let s = Loader::new()
            .file(&config)
            .unwrap()
            .env(env(&[("APP_PLUGINS__CACHE_DIR", "cache")]))
            .load()
            .unwrap();
        let etc = dir.join("etc");
        assert_eq!(s.data_dir, etc.join("state"));
        assert_eq!(
            s.database.url,
            Some(DatabaseUrl::Sqlite(etc.join("state/db.sqlite")))
        );
        assert_eq!(
            s.plugins.directories,
            vec![etc.join("plugins"), PathBuf::from("/opt/plugins")]
        );
        assert!(s.metrics.bearer_token.is_some());
        // From the environment (or a flag), relative to the working folder as a shell has it.
        assert_eq!(s.plugins.cache_dir, Some(PathBuf::from("cache")));
    }

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "ih-config-{}-{}",
            std::process::id(),
            rand::random::<u64>()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }
}
