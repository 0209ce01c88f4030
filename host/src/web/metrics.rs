//! Request metrics in Prometheus text format, one registry per server, with the nonce writer's
//! group commits, sign-in attempts, plugins' outbound HTTP requests and event deliveries.
//!
//! No global recorder: two servers in one process (as the tests run them) keep separate counts.

use std::borrow::Cow;
use std::sync::{Arc, Mutex};

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::counter::{ConstCounter, Counter};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::domain::AccountKind;
use crate::plugins::PluginHost;
use crate::services::outbox::DeliveryCounts;
use crate::services::tokens::{Attempt, SignInAttempts};
use crate::store::NonceStats;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    /// Borrowed for the standard methods: a label set is built for every request, to look up.
    method: Cow<'static, str>,
    route: String,
    status: u16,
}

/// The standard methods as static text.
const METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "CONNECT", "TRACE",
];

/// Request count and latency by method, route pattern and status.
#[derive(Debug)]
pub struct Metrics {
    registry: Mutex<Registry>,
    requests: Family<RequestLabels, Counter>,
    latency: Family<RequestLabels, Histogram>,
}

/// The nonce writer's counters, read at each scrape.
#[derive(Debug)]
struct NonceCollector(Arc<NonceStats>);

impl Collector for NonceCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        for (name, help, value) in [
            (
                "oauth_nonce_batches",
                "Transactions the nonce writer committed, each holding every nonce waiting",
                self.0.batches(),
            ),
            (
                "oauth_nonces_written",
                "Nonces the nonce writer sent to the database",
                self.0.nonces(),
            ),
        ] {
            let counter = ConstCounter::new(value);
            counter.encode(encoder.encode_descriptor(
                name,
                help,
                None,
                counter.metric_type(),
            )?)?;
        }
        Ok(())
    }
}

/// Sign-in attempts by account kind and outcome, read at each scrape.
#[derive(Debug)]
struct SignInCollector(Arc<SignInAttempts>);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AttemptLabels {
    kind: &'static str,
    outcome: &'static str,
}

impl Collector for SignInCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let counts = [AccountKind::Admin, AccountKind::Customer]
            .into_iter()
            .flat_map(|kind| {
                Attempt::ALL.into_iter().map(move |outcome| {
                    let labels = AttemptLabels {
                        kind: kind.as_str(),
                        outcome: outcome.as_str(),
                    };
                    (labels, self.0.get(kind, outcome))
                })
            });
        encode_counters(
            &mut encoder,
            "sign_in_attempts",
            "Admin and customer sign-ins for a token or the admin UI, by outcome: success, failure (credentials checked and wrong), locked (refused unchecked)",
            counts,
        )
    }
}

/// Writes one counter family of `(labels, count)` pairs read at a scrape.
fn encode_counters<L: EncodeLabelSet + std::fmt::Debug>(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    counts: impl IntoIterator<Item = (L, u64)>,
) -> Result<(), std::fmt::Error> {
    let mut family = encoder.encode_descriptor(
        name,
        help,
        None,
        prometheus_client::metrics::MetricType::Counter,
    )?;
    for (labels, n) in counts {
        ConstCounter::new(n).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

/// Plugins' outbound HTTP requests by plugin and outcome, read at each scrape.
#[derive(Debug)]
struct PluginHttpCollector(PluginHost);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PluginOutcomeLabels {
    plugin: String,
    outcome: &'static str,
}

impl Collector for PluginHttpCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_counters(
            &mut encoder,
            "plugin_http_requests",
            "HTTP requests plugins sent, by plugin and outcome: answered, denied (outside the grant, no connection made), failed, timed_out, too_large, busy (too many under way)",
            self.0
                .http_counts()
                .into_iter()
                .map(|(plugin, outcome, n)| {
                    let outcome = outcome.as_str();
                    (PluginOutcomeLabels { plugin, outcome }, n)
                }),
        )
    }
}

/// Deliveries of events to async observers by observer and outcome, read at each scrape.
#[derive(Debug)]
struct DeliveryCollector(Arc<DeliveryCounts>);

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ObserverOutcomeLabels {
    observer: String,
    outcome: &'static str,
}

impl Collector for DeliveryCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        encode_counters(
            &mut encoder,
            "event_deliveries",
            "Deliveries of events from the outbox to async observers, by observer and outcome: delivered, retried (failed, tried again later), given_up (failed the last attempt)",
            self.0.snapshot().into_iter().map(|(observer, outcome, n)| {
                let outcome = outcome.as_str();
                (ObserverOutcomeLabels { observer, outcome }, n)
            }),
        )
    }
}

/// Open connections, read at each scrape.
#[derive(Debug)]
struct ConnectionCollector(Arc<super::connections::Connections>);

impl Collector for ConnectionCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let gauge = prometheus_client::metrics::gauge::ConstGauge::new(self.0.open() as i64);
        gauge.encode(encoder.encode_descriptor(
            "open_connections",
            "Client connections open now (server.max_connections caps them)",
            None,
            gauge.metric_type(),
        )?)
    }
}

impl Metrics {
    pub fn new(
        nonces: Arc<NonceStats>,
        attempts: Arc<SignInAttempts>,
        plugins: PluginHost,
        deliveries: Arc<DeliveryCounts>,
        connections: Arc<super::connections::Connections>,
    ) -> Self {
        let mut registry = Registry::with_prefix("integration_host");
        registry.register_collector(Box::new(ConnectionCollector(connections)));
        registry.register_collector(Box::new(NonceCollector(nonces)));
        registry.register_collector(Box::new(SignInCollector(attempts)));
        registry.register_collector(Box::new(PluginHttpCollector(plugins)));
        registry.register_collector(Box::new(DeliveryCollector(deliveries)));
        let requests = Family::<RequestLabels, Counter>::default();
        let latency = Family::<RequestLabels, Histogram>::new_with_constructor(|| {
            // 100 µs to about 3.3 s.
            Histogram::new(exponential_buckets(0.0001, 2.0, 16))
        });
        registry.register(
            "http_requests",
            "HTTP requests answered, by method, route pattern and status",
            requests.clone(),
        );
        registry.register(
            "http_request_duration_seconds",
            "Time to answer HTTP requests, by method, route pattern and status",
            latency.clone(),
        );
        Self {
            registry: Mutex::new(registry),
            requests,
            latency,
        }
    }

    /// Records one answered request. `route` is the matched pattern, never the raw path, so
    /// the number of series stays bounded.
    pub fn record(&self, method: &str, route: String, status: u16, seconds: f64) {
        let labels = RequestLabels {
            method: match METHODS.iter().find(|m| **m == method) {
                Some(m) => Cow::Borrowed(m),
                None => Cow::Owned(method.to_owned()),
            },
            route,
            status,
        };
        self.requests.get_or_create(&labels).inc();
        self.latency.get_or_create(&labels).observe(seconds);
    }

    /// The exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let registry = self.registry.lock().unwrap_or_else(|e| e.into_inner());
        prometheus_client::encoding::text::encode(&mut out, &registry)
            .expect("writing to a String does not fail");
        out
    }
}
