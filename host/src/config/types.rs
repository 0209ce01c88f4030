//! Setting values that can only exist once parsed: listen addresses, URLs, keys, levels.

use std::fmt;
use std::path::PathBuf;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde::{Deserialize, Serialize};

/// A setting's value that cannot be used, and why (in the words `config check` prints).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidValue(pub String);

impl From<String> for InvalidValue {
    fn from(s: String) -> Self {
        Self(s)
    }
}

impl From<&str> for InvalidValue {
    fn from(s: &str) -> Self {
        Self(s.to_owned())
    }
}

/// `HOST:PORT` to listen on; port 0 asks the system for a free port.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ListenAddr {
    host: String,
    port: u16,
}

impl ListenAddr {
    /// Parses `HOST:PORT` (`[v6]:PORT` for IPv6 literals).
    ///
    /// ```
    /// use integration_host::config::ListenAddr;
    /// assert_eq!(ListenAddr::parse("0.0.0.0:0").unwrap().port(), 0);
    /// assert!(ListenAddr::parse("localhost").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let (host, port) = s
            .rsplit_once(':')
            .ok_or_else(|| format!("`{s}` is not HOST:PORT"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| format!("`{port}` is not a port number (0-65535)"))?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() || host.contains(char::is_whitespace) {
            return Err(InvalidValue::from(format!("`{s}` has no host")));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }
}

impl TryFrom<String> for ListenAddr {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(&s)
    }
}

impl From<ListenAddr> for String {
    fn from(a: ListenAddr) -> String {
        a.to_string()
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Debug for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// An absolute `http:` or `https:` URL ending in `/`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PublicUrl(url::Url);

impl PublicUrl {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let mut url = url::Url::parse(s).map_err(|e| format!("`{s}` is not a URL: {e}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(InvalidValue::from(format!(
                "`{s}` must be an http: or https: URL"
            )));
        }
        if url.host_str().is_none() {
            return Err(InvalidValue::from(format!("`{s}` has no host")));
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err(InvalidValue::from(format!(
                "`{s}` must not have a query or fragment"
            )));
        }
        if !url.path().ends_with('/') {
            let path = format!("{}/", url.path());
            url.set_path(&path);
        }
        Ok(Self(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }
}

impl TryFrom<String> for PublicUrl {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(&s)
    }
}

impl From<PublicUrl> for String {
    fn from(u: PublicUrl) -> String {
        u.0.into()
    }
}

impl fmt::Debug for PublicUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

/// The database to use: an SQLite file or a PostgreSQL server.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub enum DatabaseUrl {
    /// `sqlite://PATH` or `sqlite:PATH` (relative paths are relative to the working folder).
    Sqlite(PathBuf),
    /// `postgres://…` or `postgresql://…`, passed to the driver as given.
    Postgres(String),
}

impl DatabaseUrl {
    /// Parses a database URL.
    ///
    /// ```
    /// use integration_host::config::DatabaseUrl;
    /// assert!(matches!(DatabaseUrl::parse("sqlite://data/x.db"), Ok(DatabaseUrl::Sqlite(_))));
    /// assert!(DatabaseUrl::parse("mysql://localhost/x").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if let Some(path) = s.strip_prefix("sqlite:") {
            let path = path.strip_prefix("//").unwrap_or(path);
            let path = path.split('?').next().unwrap_or_default();
            if path.is_empty() {
                return Err(InvalidValue::from(format!("`{s}` names no database file")));
            }
            if path == ":memory:" {
                return Err(InvalidValue::from(
                    "an in-memory SQLite database loses everything on restart; name a file",
                ));
            }
            return Ok(Self::Sqlite(PathBuf::from(path)));
        }
        match url::Url::parse(s) {
            Ok(url) if matches!(url.scheme(), "postgres" | "postgresql") => {
                if url.host_str().is_none_or(str::is_empty) && !s.contains("host=") {
                    return Err(InvalidValue::from("the PostgreSQL URL names no host"));
                }
                Ok(Self::Postgres(s.to_owned()))
            }
            Ok(url) => Err(InvalidValue::from(format!(
                "unsupported database scheme `{}:` (expected sqlite: or postgres:)",
                url.scheme()
            ))),
            Err(e) => Err(InvalidValue::from(format!("not a database URL: {e}"))),
        }
    }

    pub fn is_sqlite(&self) -> bool {
        matches!(self, Self::Sqlite(_))
    }
}

impl TryFrom<String> for DatabaseUrl {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(&s)
    }
}

impl From<DatabaseUrl> for String {
    fn from(u: DatabaseUrl) -> String {
        match u {
            DatabaseUrl::Sqlite(p) => format!("sqlite://{}", p.display()),
            DatabaseUrl::Postgres(s) => s,
        }
    }
}

impl fmt::Debug for DatabaseUrl {
    // The PostgreSQL URL may carry a password: never print it.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl DatabaseUrl {
    /// The URL with any password replaced, fit for logs.
    pub fn redacted(&self) -> String {
        match self {
            Self::Sqlite(p) => format!("sqlite://{}", p.display()),
            Self::Postgres(s) => match url::Url::parse(s) {
                Ok(mut u) => {
                    if u.password().is_some() {
                        let _ = u.set_password(Some("********"));
                    }
                    u.into()
                }
                Err(_) => "postgres://…".into(),
            },
        }
    }
}

/// A named key: `ID:BASE64`, at least 32 bytes of key material.
///
/// Its `Debug` and serialised forms never show the key material.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct KeySpec {
    id: String,
    material: Vec<u8>,
}

impl KeySpec {
    /// Parses `ID:BASE64`; the id is 1-32 characters of `[A-Za-z0-9._-]`.
    ///
    /// ```
    /// use integration_host::config::KeySpec;
    /// let k = KeySpec::parse("k1:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=").unwrap();
    /// assert_eq!(k.id(), "k1");
    /// assert!(KeySpec::parse("k1:c2hvcnQ=").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let (id, b64) = s
            .split_once(':')
            .ok_or_else(|| "a key is written ID:BASE64".to_owned())?;
        if id.is_empty()
            || id.len() > 32
            || !id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        {
            return Err(InvalidValue::from(
                "a key id is 1-32 characters of A-Z a-z 0-9 . _ -",
            ));
        }
        let material = B64
            .decode(b64.trim())
            .map_err(|_| format!("key `{id}` is not valid base64"))?;
        if material.len() < 32 {
            return Err(InvalidValue::from(format!(
                "key `{id}` has {} bytes; at least 32 are needed",
                material.len()
            )));
        }
        Ok(Self {
            id: id.to_owned(),
            material,
        })
    }

    /// A new random 32-byte key with the given id.
    pub fn generate(id: &str) -> Self {
        use rand::TryRngCore as _;
        let mut material = vec![0u8; 32];
        rand::rngs::OsRng
            .try_fill_bytes(&mut material)
            .expect("the operating system's random source works");
        Self {
            id: id.to_owned(),
            material,
        }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn material(&self) -> &[u8] {
        &self.material
    }

    /// The `ID:BASE64` form, for writing a generated key file only.
    pub fn expose(&self) -> String {
        format!("{}:{}", self.id, B64.encode(&self.material))
    }
}

impl TryFrom<String> for KeySpec {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(&s)
    }
}

impl Serialize for KeySpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{}:<redacted>", self.id))
    }
}

impl fmt::Debug for KeySpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KeySpec({}:<redacted>)", self.id)
    }
}

/// A secret string setting (a bearer token): never shown by `Debug` or when serialised.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct SecretString(String);

impl SecretString {
    /// At least 16 characters, no surrounding whitespace.
    ///
    /// ```
    /// use integration_host::config::SecretString;
    /// assert!(SecretString::parse("correct-horse-battery").is_ok());
    /// assert!(SecretString::parse("short").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        if s.trim() != s {
            return Err(InvalidValue::from("the value has surrounding whitespace"));
        }
        if s.chars().count() < 16 {
            return Err(InvalidValue::from("a secret needs at least 16 characters"));
        }
        Ok(Self(s.to_owned()))
    }

    /// The secret itself, to compare with what a client sent.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for SecretString {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(&s)
    }
}

impl Serialize for SecretString {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str("<redacted>")
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretString(<redacted>)")
    }
}

/// Signature algorithm of bearer tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum JwtAlgorithm {
    #[serde(rename = "HS256")]
    Hs256,
    #[serde(rename = "HS384")]
    Hs384,
    #[serde(rename = "HS512")]
    Hs512,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// JSON when standard error is not a terminal, readable text when it is.
    Auto,
    Json,
    Pretty,
}

/// A `tracing` filter such as `info` or `integration_host=debug,sqlx=warn`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LogLevel(String);

impl LogLevel {
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        tracing_subscriber::EnvFilter::builder()
            .parse(s)
            .map_err(|e| format!("`{s}` is not a log filter: {e}"))?;
        Ok(Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for LogLevel {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(&s)
    }
}

impl From<LogLevel> for String {
    fn from(l: LogLevel) -> String {
        l.0
    }
}

impl fmt::Debug for LogLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn database_urls() {
        assert_eq!(
            DatabaseUrl::parse("sqlite:x.db").unwrap(),
            DatabaseUrl::Sqlite("x.db".into())
        );
        assert_eq!(
            DatabaseUrl::parse("sqlite:///abs/x.db").unwrap(),
            DatabaseUrl::Sqlite("/abs/x.db".into())
        );
        assert!(DatabaseUrl::parse("postgres://u:p@h:5/db").is_ok());
        assert!(DatabaseUrl::parse("postgresql://h/db").is_ok());
        assert!(DatabaseUrl::parse("mysql://h/db").is_err());
        assert!(DatabaseUrl::parse("not a url").is_err());
        assert!(DatabaseUrl::parse("sqlite::memory:").is_err());
    }

    #[test]
    fn redacted_database_url_hides_the_password() {
        let u = DatabaseUrl::parse("postgres://user:hunter2@db:5432/ih").unwrap();
        assert!(!format!("{u:?}").contains("hunter2"));
        assert!(u.redacted().contains("user:********@db"));
    }

    #[test]
    fn keys_never_print_their_material() {
        let k = KeySpec::generate("k9");
        let shown = format!("{k:?} {}", serde_json::to_string(&k).unwrap());
        assert!(!shown.contains(&B64.encode(k.material())));
        assert_eq!(KeySpec::parse(&k.expose()).unwrap(), k);
    }

    #[test]
    fn public_url_gets_a_trailing_slash() {
        assert_eq!(
            PublicUrl::parse("https://shop.example/m2")
                .unwrap()
                .as_str(),
            "https://shop.example/m2/"
        );
        assert!(PublicUrl::parse("ftp://x/").is_err());
    }

    #[test]
    fn listen_addresses() {
        assert_eq!(
            ListenAddr::parse("[::1]:80").unwrap().to_string(),
            "[::1]:80"
        );
        assert!(ListenAddr::parse(":80").is_err());
        assert!(ListenAddr::parse("h:99999").is_err());
    }
}

/// A cron expression (five fields: minute, hour, day of month, month, day of week; UTC), as
/// Magento's `crontab.xml` schedules are written.
#[derive(Clone, Deserialize)]
#[serde(try_from = "String")]
pub struct CronSchedule {
    pattern: String,
    cron: croner::Cron,
}

impl CronSchedule {
    /// ```
    /// use integration_host::config::CronSchedule;
    /// let s = CronSchedule::parse("*/5 * * * *").unwrap();
    /// assert_eq!(s.next_after(1_000_000_000), 1_000_000_200);
    /// assert!(CronSchedule::parse("61 * * * *").is_err());
    /// assert!(CronSchedule::parse("every minute").is_err());
    /// ```
    pub fn parse(s: &str) -> Result<Self, InvalidValue> {
        let pattern = s.trim();
        if pattern.split_whitespace().count() != 5 {
            return Err(InvalidValue::from(format!(
                "`{pattern}` is not a cron expression of five fields (minute hour day month weekday)"
            )));
        }
        let cron = <croner::Cron as std::str::FromStr>::from_str(pattern)
            .map_err(|e| format!("`{pattern}` is not a valid cron expression: {e}"))?;
        Ok(Self {
            pattern: pattern.to_owned(),
            cron,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.pattern
    }

    /// The first scheduled second strictly after `unix` (UTC).
    pub fn next_after(&self, unix: i64) -> i64 {
        let from = chrono::DateTime::from_timestamp(unix, 0).unwrap_or_default();
        self.cron
            .find_next_occurrence(&from, false)
            .map(|t| t.timestamp())
            // A pattern that never matches again (such as 30 February) runs never.
            .unwrap_or(i64::MAX)
    }
}

impl TryFrom<String> for CronSchedule {
    type Error = InvalidValue;
    fn try_from(s: String) -> Result<Self, InvalidValue> {
        Self::parse(&s)
    }
}

impl Serialize for CronSchedule {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.pattern)
    }
}

impl PartialEq for CronSchedule {
    fn eq(&self, other: &Self) -> bool {
        self.pattern == other.pattern
    }
}

impl fmt::Debug for CronSchedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CronSchedule({})", self.pattern)
    }
}
