//! Outbound HTTP for plugins: the host's side of the standard `wasi:http/outgoing-handler`
//! (wasmtime-wasi-http), deny by default.
//!
//! This module owns what a plugin may reach ([`HttpGrant`]: a request must match both a rule
//! its manifest asks for and a rule the operator grants), the check of every request before a
//! connection is made (scheme, host and port; then the addresses the host name resolves to, so
//! a name cannot lead to a loopback, private or otherwise non-public address unless a granted
//! rule names that address itself), the client that sends it (to exactly the address checked,
//! so a second lookup cannot change it), the limits (connect and total time, never beyond the
//! plugin call's own deadline; the answer's size; requests under way per plugin), and the
//! count of each outcome per plugin ([`HttpStats`], in `/metrics`). Redirects are the plugin's
//! client's to follow, and each one is a new request checked the same way. Logs name the
//! scheme, host and port only: a path or query may hold a secret.

use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body::Frame;
use http_body_util::BodyExt as _;
use serde::Serialize;
use wasmtime_wasi_http::{Error as HttpError, RequestOptions, WasiBody, WasiHttpHooks};

use crate::config::{OutboundRule, PluginHttpSettings};

/// Where a plugin may send requests: what it asked for, within what it was granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpGrant {
    pub asked: Vec<OutboundRule>,
    pub granted: Vec<OutboundRule>,
}

impl Serialize for HttpGrant {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.granted.serialize(s)
    }
}

impl HttpGrant {
    /// Whether a request to `host:port` over that scheme is allowed.
    pub fn permits(&self, https: bool, host: &str, port: u16) -> bool {
        let hit = |rules: &[OutboundRule]| rules.iter().any(|r| r.matches(https, host, port));
        hit(&self.asked) && hit(&self.granted)
    }

    /// Whether a granted rule names this address itself: what lets a request reach a
    /// non-public address (the manifest's rule only has to match the host it asked for).
    fn names_address(&self, https: bool, ip: IpAddr, port: u16) -> bool {
        self.granted
            .iter()
            .any(|r| r.names_address(https, ip, port))
    }

    /// The granted rules, in words.
    pub fn describe(&self) -> String {
        let rules: Vec<String> = self.granted.iter().map(ToString::to_string).collect();
        format!("outbound_http: {}", rules.join(", "))
    }
}

/// How an outbound request ended, as `/metrics` counts it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// An answer was received (whatever its status).
    Answered,
    /// Outside the grant; no connection was made.
    Denied,
    /// The connection or the exchange failed.
    Failed,
    /// A time limit passed.
    TimedOut,
    /// The answer was larger than `plugins.http.max_response_kib`.
    TooLarge,
    /// The plugin had `plugins.http.max_concurrent` requests under way already.
    Busy,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Answered,
        Outcome::Denied,
        Outcome::Failed,
        Outcome::TimedOut,
        Outcome::TooLarge,
        Outcome::Busy,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Denied => "denied",
            Outcome::Failed => "failed",
            Outcome::TimedOut => "timed_out",
            Outcome::TooLarge => "too_large",
            Outcome::Busy => "busy",
        }
    }
}

/// A plugin's outbound requests: the ones under way and each outcome's count (kept across
/// reloads of the plugin, with its health).
#[derive(Debug)]
pub struct HttpStats {
    slots: Arc<tokio::sync::Semaphore>,
    counts: [AtomicU64; Outcome::ALL.len()],
}

impl HttpStats {
    pub fn new(max_concurrent: usize) -> Self {
        Self {
            slots: Arc::new(tokio::sync::Semaphore::new(max_concurrent.max(1))),
            counts: Default::default(),
        }
    }

    fn count(&self, outcome: Outcome) {
        self.counts[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Each outcome with its count.
    pub fn counts(&self) -> impl Iterator<Item = (Outcome, u64)> + '_ {
        Outcome::ALL
            .into_iter()
            .map(|o| (o, self.counts[o as usize].load(Ordering::Relaxed)))
    }
}

/// What one plugin's requests are checked against and counted in, built when it loads.
#[derive(Debug)]
pub struct Outbound {
    /// The plugin's id.
    pub id: String,
    /// `None`: the plugin may send no request.
    pub grant: Option<HttpGrant>,
    pub limits: PluginHttpSettings,
    /// Kept with the plugin's health, across reloads.
    pub stats: Arc<HttpStats>,
}

/// The hooks of one instance's store: its plugin's [`Outbound`] and the deadline of the call
/// under way.
#[derive(Debug)]
pub struct Hooks {
    pub(super) outbound: Arc<Outbound>,
    pub(super) deadline: Instant,
}

impl WasiHttpHooks for Hooks {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _body_written: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        let plugin = self.outbound.clone();
        let deadline = self.deadline;
        Box::new(async move {
            let target = Target::of(request.uri());
            let stats = &plugin.stats;
            match send(&plugin, deadline, request, options, target.as_ref()).await {
                Ok(response) => Ok((
                    response,
                    Box::new(async { Ok(()) }) as Box<dyn Future<Output = _> + Send>,
                )),
                Err((outcome, error)) => {
                    stats.count(outcome);
                    tracing::info!(
                        target: "integration_host::plugin",
                        plugin = %plugin.id,
                        to = %target.map(|t| t.to_string()).unwrap_or_default(),
                        outcome = outcome.as_str(),
                        error = %error.1,
                        "a plugin's HTTP request did not get an answer"
                    );
                    Err(error.0)
                }
            }
        })
    }
}

/// Where a request goes, as checked: never its path or query.
#[derive(Debug, Clone)]
struct Target {
    https: bool,
    /// Lowercased; an IPv6 address without brackets.
    host: String,
    port: u16,
}

impl Target {
    fn of(uri: &http::Uri) -> Option<Self> {
        let https = match uri.scheme_str() {
            Some("https") => true,
            Some("http") => false,
            _ => return None,
        };
        let host = uri.host()?.to_ascii_lowercase();
        let host = host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .map(str::to_owned)
            .unwrap_or(host);
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        Some(Self { https, host, port })
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let scheme = if self.https { "https" } else { "http" };
        if self.host.contains(':') {
            write!(f, "{scheme}://[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{scheme}://{}:{}", self.host, self.port)
        }
    }
}

/// The error the plugin sees, and what the log says.
type Refused = (Outcome, (HttpError, String));

fn refused(outcome: Outcome, error: HttpError, why: impl Into<String>) -> Refused {
    (outcome, (error, why.into()))
}

async fn send(
    plugin: &Outbound,
    deadline: Instant,
    mut request: http::Request<WasiBody>,
    options: Option<RequestOptions>,
    target: Option<&Target>,
) -> Result<http::Response<WasiBody>, Refused> {
    let Some(target) = target else {
        return Err(refused(
            Outcome::Denied,
            HttpError::HttpRequestUriInvalid,
            "the URL has no http or https scheme and host",
        ));
    };
    let Some(grant) = &plugin.grant else {
        return Err(refused(
            Outcome::Denied,
            HttpError::HttpRequestDenied,
            format!(
                "the plugin has no outbound HTTP; its manifest asks for it with [capabilities] outbound_http and plugins.grants.{}.outbound_http grants it",
                plugin.id
            ),
        ));
    };
    if !grant.permits(target.https, &target.host, target.port) {
        return Err(refused(
            Outcome::Denied,
            HttpError::HttpRequestDenied,
            format!(
                "{target} is outside what the plugin asks for and plugins.grants.{}.outbound_http grants",
                plugin.id
            ),
        ));
    }
    let Ok(slot) = plugin.stats.slots.clone().try_acquire_owned() else {
        return Err(refused(
            Outcome::Busy,
            HttpError::ConnectionLimitReached,
            "the plugin has plugins.http.max_concurrent requests under way",
        ));
    };
    let limits = &plugin.limits;
    // The whole exchange ends by the configured timeout and by the call's own deadline.
    let ends = deadline.min(Instant::now() + Duration::from_millis(limits.timeout_ms));
    let left = || ends.saturating_duration_since(Instant::now());
    let timed_out = |what: &str| {
        refused(
            Outcome::TimedOut,
            HttpError::ConnectionTimeout,
            format!("{what} took longer than the time left (plugins.http and the call's timeout)"),
        )
    };

    let address = resolve(grant, target, left())
        .await
        .map_err(|e| e.unwrap_or_else(|| timed_out("resolving the host")))?;
    let connect_within = left()
        .min(Duration::from_millis(limits.connect_timeout_ms))
        .min(
            options
                .and_then(|o| o.connect_timeout)
                .unwrap_or(Duration::MAX),
        );
    let stream =
        match tokio::time::timeout(connect_within, tokio::net::TcpStream::connect(address)).await {
            Err(_) => return Err(timed_out("connecting")),
            Ok(Err(e)) => {
                return Err(refused(
                    Outcome::Failed,
                    HttpError::ConnectionRefused,
                    format!("cannot connect to {address}: {e}"),
                ));
            }
            Ok(Ok(s)) => s,
        };
    let _ = stream.set_nodelay(true);
    let handshake = async {
        if target.https {
            let name =
                rustls::pki_types::ServerName::try_from(target.host.clone()).map_err(|e| {
                    refused(Outcome::Failed, HttpError::TlsProtocolError, e.to_string())
                })?;
            let tls = tokio_rustls::TlsConnector::from(tls_config())
                .connect(name, stream)
                .await
                .map_err(|e| {
                    refused(
                        Outcome::Failed,
                        HttpError::TlsCertificateError,
                        format!("TLS with {target}: {e}"),
                    )
                })?;
            hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(tls))
                .await
                .map(|(sender, conn)| (sender, tokio::spawn(conn).abort_handle()))
        } else {
            hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream))
                .await
                .map(|(sender, conn)| (sender, tokio::spawn(conn).abort_handle()))
        }
        .map_err(|e| refused(Outcome::Failed, HttpError::HttpProtocolError, e.to_string()))
    };
    let (mut sender, connection) = tokio::time::timeout(left(), handshake)
        .await
        .map_err(|_| timed_out("connecting"))??;
    // Origin form on the wire: the scheme and host were checked and are in `Host`.
    *request.uri_mut() = request
        .uri()
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/")
        .parse()
        .map_err(|_| {
            refused(
                Outcome::Denied,
                HttpError::HttpRequestUriInvalid,
                "the path is invalid",
            )
        })?;
    let response = match tokio::time::timeout(left(), sender.send_request(request)).await {
        Err(_) => {
            connection.abort();
            return Err(timed_out("waiting for the answer"));
        }
        Ok(Err(e)) => {
            connection.abort();
            return Err(refused(
                Outcome::Failed,
                HttpError::HttpProtocolError,
                format!("the exchange with {target} failed: {e}"),
            ));
        }
        Ok(Ok(r)) => r,
    };
    let max = limits.max_response_kib.saturating_mul(1024);
    Ok(response.map(|incoming| {
        Limited {
            incoming,
            left: max,
            max,
            ends: Box::pin(tokio::time::sleep_until(ends.into())),
            stats: plugin.stats.clone(),
            counted: AtomicBool::new(false),
            _slot: slot,
            connection,
        }
        .boxed_unsync()
    }))
}

/// The address to connect to: the literal address of the URL, or the first address the name
/// resolves to that is public or named by a rule. `Err(None)` when the time ran out.
async fn resolve(
    grant: &HttpGrant,
    target: &Target,
    within: Duration,
) -> Result<SocketAddr, Option<Refused>> {
    if let Ok(ip) = target.host.parse::<IpAddr>() {
        // A literal address: public, or named by a rule (`*` matches it but names nothing).
        return if is_public(ip) || grant.names_address(target.https, ip, target.port) {
            Ok(SocketAddr::new(ip, target.port))
        } else {
            Err(Some(refused(
                Outcome::Denied,
                HttpError::DestinationIpProhibited,
                format!("{ip} is not public and no granted rule names it"),
            )))
        };
    }
    let found: Vec<SocketAddr> = tokio::time::timeout(
        within,
        tokio::net::lookup_host((target.host.as_str(), target.port)),
    )
    .await
    .map_err(|_| None)?
    .map_err(|e| {
        Some(refused(
            Outcome::Failed,
            HttpError::DnsError {
                rcode: Some(e.to_string()),
                info_code: None,
            },
            format!("cannot resolve {}: {e}", target.host),
        ))
    })?
    .collect();
    found
        .iter()
        .find(|a| is_public(a.ip()) || grant.names_address(target.https, a.ip(), target.port))
        .copied()
        .ok_or_else(|| {
            let shown: Vec<String> = found.iter().map(|a| a.ip().to_string()).collect();
            Some(refused(
                Outcome::Denied,
                HttpError::DestinationIpProhibited,
                format!(
                    "{} resolves to {}, which is not public and which no granted rule names (grant the address itself, e.g. \"{}://{}:*\")",
                    target.host,
                    shown.join(", "),
                    if target.https { "https" } else { "http" },
                    found
                        .first()
                        .map(|a| match a.ip() {
                            IpAddr::V6(ip) => format!("[{ip}]"),
                            IpAddr::V4(ip) => ip.to_string(),
                        })
                        .unwrap_or_default()
                ),
            ))
        })
}

/// Whether an address is on the public internet: not loopback, private, link-local,
/// carrier-grade NAT, unique-local, multicast, documentation, benchmarking or reserved.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, c, _] = v4.octets();
            !(v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.is_documentation()
                || a == 0
                || (a == 100 && (64..128).contains(&b))
                || (a == 192 && b == 0 && c == 0)
                || (a == 198 && (18..20).contains(&b))
                || a >= 240)
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00
                || (first & 0xffc0) == 0xfe80
                || (first == 0x2001 && v6.segments()[1] == 0x0db8)
                || (first == 0x64 && v6.segments()[1] == 0xff9b))
        }
    }
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.into(),
            };
            Arc::new(
                rustls::ClientConfig::builder_with_provider(Arc::new(
                    rustls::crypto::ring::default_provider(),
                ))
                .with_safe_default_protocol_versions()
                .expect("ring supports the default protocol versions")
                .with_root_certificates(roots)
                .with_no_client_auth(),
            )
        })
        .clone()
}

/// An answer's body as the plugin reads it: cut off past the size limit and the time limit;
/// holds the plugin's request slot until it is dropped, and counts the outcome once.
struct Limited {
    incoming: hyper::body::Incoming,
    left: u64,
    max: u64,
    ends: Pin<Box<tokio::time::Sleep>>,
    stats: Arc<HttpStats>,
    counted: AtomicBool,
    _slot: tokio::sync::OwnedSemaphorePermit,
    connection: tokio::task::AbortHandle,
}

impl Limited {
    fn finish(&self, outcome: Outcome) {
        if !self.counted.swap(true, Ordering::Relaxed) {
            self.stats.count(outcome);
        }
    }
}

impl Drop for Limited {
    fn drop(&mut self) {
        self.finish(Outcome::Answered);
        self.connection.abort();
    }
}

impl http_body::Body for Limited {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        if self.ends.as_mut().poll(cx).is_ready() {
            self.finish(Outcome::TimedOut);
            return Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout)));
        }
        match Pin::new(&mut self.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let size = frame.data_ref().map_or(0, |d| d.len() as u64);
                if size > self.left {
                    self.finish(Outcome::TooLarge);
                    let max = self.max;
                    return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(max)))));
                }
                self.left -= size;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                self.finish(Outcome::Failed);
                Poll::Ready(Some(Err(HttpError::from(e))))
            }
            Poll::Ready(None) => {
                self.finish(Outcome::Answered);
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.incoming.is_end_stream()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn public_addresses_are_told_from_the_others() {
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111", "::ffff:8.8.8.8"] {
            assert!(is_public(ip.parse().unwrap()), "{ip}");
        }
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "::1",
            "::",
            "fc00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "2001:db8::1",
            "64:ff9b::7f00:1",
        ] {
            assert!(!is_public(ip.parse().unwrap()), "{ip}");
        }
    }

    #[test]
    fn a_request_needs_a_rule_asked_and_a_rule_granted() {
        let rules = |list: &[&str]| -> Vec<OutboundRule> {
            list.iter().map(|r| r.parse().unwrap()).collect()
        };
        let grant = HttpGrant {
            asked: rules(&["https://hooks.example.com", "http://127.0.0.1:*"]),
            granted: rules(&["http://127.0.0.1:*"]),
        };
        assert!(grant.permits(false, "127.0.0.1", 9000));
        assert!(!grant.permits(true, "hooks.example.com", 443));
        assert!(!grant.permits(false, "localhost", 9000));
        assert!(grant.names_address(false, "127.0.0.1".parse().unwrap(), 1));
        assert_eq!(grant.describe(), "outbound_http: http://127.0.0.1:*");
    }
}
