//! What `GET /metrics` tells an operator, in the Prometheus (OpenMetrics) text format:
//! requests by route and status, latency and batch-size histograms, the queue, what was
//! refused and why, and which model answers.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// The content type of [`Metrics::render`]'s text.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// A request's route (the pattern matched, never the raw path, so clients cannot grow the
/// label set) and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `/api/classify`, ..., or `unmatched`.
    pub route: String,
    /// The HTTP status answered.
    pub status: u16,
}

/// A route alone.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// As in [`RequestLabels`].
    pub route: String,
}

/// Why a request was refused before it was served.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RejectLabels {
    /// `busy`, `timeout`, `too_many_pixels` or `host`.
    pub reason: &'static str,
}

/// How a reload ended.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReloadLabels {
    /// `ok` or `failed`.
    pub result: &'static str,
}

/// Which model answers.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    /// Where the model came from, without any path.
    pub label: String,
    /// The SHA-256 of its weights' file.
    pub sha256: String,
}

/// Every metric the server keeps, and the registry that names them.
pub struct Metrics {
    registry: Registry,
    /// Requests answered, by route and status.
    pub requests: Family<RequestLabels, Counter>,
    /// Seconds from a request's arrival to its answer, by route.
    pub latency: Family<RouteLabels, Histogram>,
    /// Images per forward pass.
    pub batch_size: Histogram,
    /// Images waiting for the network.
    pub queue_depth: Gauge,
    /// Requests being served now.
    pub in_flight: Gauge,
    /// Requests refused before they were served, by reason.
    pub rejected: Family<RejectLabels, Counter>,
    /// Always 1, labelled with the model that answers.
    pub model: Family<ModelLabels, Gauge>,
    /// Reloads, by how they ended.
    pub reloads: Family<ReloadLabels, Counter>,
}

impl Metrics {
    /// Every metric at zero, the model's labels set.
    pub fn new(label: &str, sha256: &str) -> Self {
        let mut registry = Registry::default();
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register("http_requests", "Requests answered", requests.clone());
        let latency = Family::<RouteLabels, Histogram>::new_with_constructor(|| {
            // 0.25 ms to 4 s.
            Histogram::new(exponential_buckets(0.000_25, 2.0, 15))
        });
        registry.register(
            "http_request_duration_seconds",
            "Seconds from a request's arrival to its answer",
            latency.clone(),
        );
        let batch_size = Histogram::new(exponential_buckets(1.0, 2.0, 9));
        registry.register(
            "classify_batch_size",
            "Images per forward pass",
            batch_size.clone(),
        );
        let queue_depth = Gauge::default();
        registry.register(
            "classify_queue_depth",
            "Images waiting for the network",
            queue_depth.clone(),
        );
        let in_flight = Gauge::default();
        registry.register(
            "http_requests_in_flight",
            "Requests being served now",
            in_flight.clone(),
        );
        let rejected = Family::<RejectLabels, Counter>::default();
        registry.register(
            "http_requests_rejected",
            "Requests refused before they were served, by reason",
            rejected.clone(),
        );
        let model = Family::<ModelLabels, Gauge>::default();
        registry.register("model_info", "The model that answers", model.clone());
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "model_reloads",
            "Reloads of the model (SIGHUP), by result",
            reloads.clone(),
        );
        let metrics = Self {
            registry,
            requests,
            latency,
            batch_size,
            queue_depth,
            in_flight,
            rejected,
            model,
            reloads,
        };
        metrics.serving(label, sha256);
        metrics
    }

    /// Labels `model_info` with the model that answers from now on.
    pub fn serving(&self, label: &str, sha256: &str) {
        self.model.clear();
        self.model
            .get_or_create(&ModelLabels {
                label: label.to_string(),
                sha256: sha256.to_string(),
            })
            .set(1);
    }

    /// Counts a reload that ended with `result` (`ok` or `failed`).
    pub fn reloaded(&self, result: &'static str) {
        self.reloads.get_or_create(&ReloadLabels { result }).inc();
    }

    /// Counts one refusal.
    pub fn reject(&self, reason: &'static str) {
        self.rejected.get_or_create(&RejectLabels { reason }).inc();
    }

    /// The text `/metrics` answers.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &self.registry);
        text
    }
}
