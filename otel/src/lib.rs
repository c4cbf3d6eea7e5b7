#![doc = include_str!("../README.md")]

mod json;

use std::net::SocketAddr;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// How log records are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Human,
    /// One JSON object per line.
    Json,
}

/// What [`init`] sets up.
pub struct TelemetryConfig {
    /// The node name, added to every JSON log line.
    pub node: String,
    /// Human or JSON logs.
    pub log_format: LogFormat,
    /// A `RUST_LOG`-style filter; `None` reads `RUST_LOG`, else `info`.
    pub log_filter: Option<String>,
    /// Where log lines go (default: standard error).
    pub log_writer: Option<BoxMakeWriter>,
    /// Where to serve Prometheus metrics; `None` for no endpoint.
    pub prometheus: Option<SocketAddr>,
}

impl std::fmt::Debug for TelemetryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TelemetryConfig")
            .field("node", &self.node)
            .field("log_format", &self.log_format)
            .field("log_filter", &self.log_filter)
            .field("prometheus", &self.prometheus)
            .finish_non_exhaustive()
    }
}

/// The default metrics endpoint.
pub const DEFAULT_PROMETHEUS: &str = "127.0.0.1:9568";

impl TelemetryConfig {
    /// Human logs to standard error, metrics on [`DEFAULT_PROMETHEUS`].
    pub fn new(node: impl Into<String>) -> Self {
        TelemetryConfig {
            node: node.into(),
            log_format: LogFormat::Human,
            log_filter: None,
            log_writer: None,
            prometheus: Some(DEFAULT_PROMETHEUS.parse().expect("a valid address")),
        }
    }
}

/// Telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A global subscriber or recorder is installed already.
    #[error("telemetry is already initialised: {0}")]
    AlreadyInitialised(String),
    /// The log filter does not parse.
    #[error("bad log filter: {0}")]
    Filter(String),
    /// The metrics endpoint could not start.
    #[error("metrics endpoint: {0}")]
    Metrics(String),
}

/// Keeps telemetry running; flushes on drop.
#[derive(Debug)]
pub struct TelemetryGuard {
    _private: (),
}

/// Sets up logs, metrics and the panic hook for this OS process.
///
/// # Errors
/// [`TelemetryError`] if a subscriber or recorder is already installed,
/// the filter is malformed, or the metrics endpoint cannot start (it needs
/// a tokio runtime).
pub fn init(config: TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    let filter = match &config.log_filter {
        Some(f) => EnvFilter::try_new(f).map_err(|e| TelemetryError::Filter(e.to_string()))?,
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    let writer = config
        .log_writer
        .unwrap_or_else(|| BoxMakeWriter::new(std::io::stderr));
    let registry = tracing_subscriber::registry().with(filter);
    let installed = match config.log_format {
        LogFormat::Human => registry
            .with(tracing_subscriber::fmt::layer().with_writer(writer))
            .try_init(),
        LogFormat::Json => registry
            .with(json::JsonLayer::new(config.node.clone(), writer))
            .try_init(),
    };
    installed.map_err(|e| TelemetryError::AlreadyInitialised(e.to_string()))?;
    clustertop_runtime::install_panic_hook();
    if let Some(addr) = config.prometheus {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .with_http_listener(addr)
            .install()
            .map_err(|e| TelemetryError::Metrics(e.to_string()))?;
    }
    Ok(TelemetryGuard { _private: () })
}
