//! Prometheus metrics (`/metrics`), through `prometheus-client`. One struct of named series that
//! the rest of the server bumps; nothing here knows about sockets or documents.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

pub struct Metrics {
    registry: Registry,
    pub connections: Gauge,
    pub documents_loaded: Gauge,
    pub updates_in: Counter,
    pub updates_out: Counter,
    pub bytes_in: Counter,
    pub bytes_out: Counter,
    pub store_write_seconds: Histogram,
    pub store_errors: Counter,
    pub refused_updates: Counter,
    pub slow_clients_closed: Counter,
    /// Shared log (Redis): how far behind the log's newest entry this node applied the last
    /// entry another node wrote, in seconds (entry id time to apply time).
    pub log_lag_seconds: Histogram,
    /// Shared log: appends refused because another node appended first (re-judged, retried).
    pub log_moved: Counter,
    /// Shared log: entries written by other nodes applied here.
    pub log_followed: Counter,
}

impl Metrics {
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("tafel");
        let connections = Gauge::default();
        let documents_loaded = Gauge::default();
        let updates_in = Counter::default();
        let updates_out = Counter::default();
        let bytes_in = Counter::default();
        let bytes_out = Counter::default();
        // 50 µs .. ~1.6 s, doubling.
        let store_write_seconds = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.00005, 2.0, 16),
        );
        let store_errors = Counter::default();
        let refused_updates = Counter::default();
        let slow_clients_closed = Counter::default();
        // 1 ms .. ~16 s, doubling.
        let log_lag_seconds = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.001, 2.0, 15),
        );
        let log_moved = Counter::default();
        let log_followed = Counter::default();
        registry.register(
            "log_lag_seconds",
            "Shared log: delay between another node appending an entry and this node applying it",
            log_lag_seconds.clone(),
        );
        registry.register(
            "log_moved",
            "Shared log: appends that found the log moved and were judged again",
            log_moved.clone(),
        );
        registry.register(
            "log_followed",
            "Shared log: entries from other nodes applied by this node",
            log_followed.clone(),
        );
        registry.register(
            "connections",
            "Open WebSocket connections",
            connections.clone(),
        );
        registry.register(
            "documents_loaded",
            "Documents held in memory",
            documents_loaded.clone(),
        );
        registry.register(
            "updates_in",
            "Document updates received and accepted",
            updates_in.clone(),
        );
        registry.register(
            "updates_out",
            "Update frames sent to clients",
            updates_out.clone(),
        );
        registry.register(
            "bytes_in",
            "WebSocket payload bytes received",
            bytes_in.clone(),
        );
        registry.register(
            "bytes_out",
            "WebSocket payload bytes queued for sending",
            bytes_out.clone(),
        );
        registry.register(
            "store_write_seconds",
            "Time to make a batch of updates durable in the store",
            store_write_seconds.clone(),
        );
        registry.register(
            "store_errors",
            "Failed store operations",
            store_errors.clone(),
        );
        registry.register(
            "refused_updates",
            "Updates refused for lack of permission",
            refused_updates.clone(),
        );
        registry.register(
            "slow_clients_closed",
            "Connections closed because their outgoing queue was full or pings went unanswered",
            slow_clients_closed.clone(),
        );
        Metrics {
            registry,
            connections,
            documents_loaded,
            updates_in,
            updates_out,
            bytes_in,
            bytes_out,
            store_write_seconds,
            store_errors,
            refused_updates,
            slow_clients_closed,
            log_lag_seconds,
            log_moved,
            log_followed,
        }
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
