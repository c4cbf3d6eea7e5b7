#![doc = include_str!("../README.md")]

mod exports;
pub mod http;
mod json;
mod metrics_endpoint;
mod otlp;
pub mod series;
pub mod telemetry;
mod throttle;
mod traces;

pub use exports::{Exports, exports};
pub use otlp::OtlpConfig;

pub use otlp::OtlpProtocol;
pub use traces::TraceConfig;
/// Where log lines are written ([`TelemetryConfig::log_writer`]).
pub use tracing_subscriber::fmt::writer::BoxMakeWriter as LogWriter;

use std::net::SocketAddr;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
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
    /// Where to serve Prometheus metrics (`/metrics`); `None` for no
    /// endpoint. Port 0 takes any free port: the guard says which
    /// ([`TelemetryGuard::prometheus_addr`]).
    pub prometheus: Option<SocketAddr>,
    /// When the `prometheus` address is in use, serve on any free port of
    /// the same IP instead of failing (default: fail).
    pub prometheus_fallback: bool,
    /// Span export over OTLP; `None` for no traces.
    pub traces: Option<TraceConfig>,
    /// Metrics pushed over OTLP (beside the Prometheus endpoint); `None`
    /// for none. Temporality as `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`
    /// says, cumulative by default (the OTLP exporter's default in the
    /// specification); the interval is `OTEL_METRIC_EXPORT_INTERVAL`
    /// (default 60 s).
    pub metrics_otlp: Option<OtlpConfig>,
    /// Log records sent over OTLP (as well as printed); `None` for none.
    /// Each carries the node, the process (pid and name) and, inside an
    /// exported span, its trace and span ids.
    pub logs_otlp: Option<OtlpConfig>,
    /// Which records go over OTLP, as a `RUST_LOG`-style filter (default:
    /// the log filter).
    pub otlp_log_filter: Option<String>,
    /// Which spans are exported, as a `RUST_LOG`-style filter (default:
    /// `info` plus the runtime's per-message spans).
    pub trace_filter: Option<String>,
    /// One more layer to install with the others, with its own filter
    /// (for example the agent's log ring).
    pub extra_layer: Option<ExtraLayer>,
}

/// A layer added to the subscriber [`init`] installs.
pub type ExtraLayer = Box<dyn Layer<tracing_subscriber::Registry> + Send + Sync + 'static>;

/// The trace and span ids of the current span, as lowercase hex, when it
/// belongs to an exported (OpenTelemetry) trace.
pub fn current_trace_ids() -> Option<(String, String)> {
    traces::current_ids()
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
            prometheus_fallback: false,
            traces: None,
            metrics_otlp: None,
            logs_otlp: None,
            otlp_log_filter: None,
            trace_filter: None,
            extra_layer: None,
        }
    }

    /// Sets the exports the standard variables ask for, the way the demo
    /// and the example nodes do. With a collector (`otlp`, else
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; or a signal's own
    /// `OTEL_EXPORTER_OTLP_{TRACES,METRICS,LOGS}_ENDPOINT`), traces,
    /// metrics and logs go to it, each unless its `OTEL_*_EXPORTER`
    /// variable is `none`. Without one, nothing goes over OTLP.
    /// `OTEL_METRICS_EXPORTER` also switches the Prometheus endpoint: set,
    /// it is kept only when the list names `prometheus`.
    pub fn exports_from_env(&mut self, otlp: Option<&str>) {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let wants = |exporter: &str, signal: &str| {
            let listed = var(exporter).is_none_or(|v| v.split(',').any(|e| e.trim() == "otlp"));
            let endpoint = otlp.is_some()
                || var("OTEL_EXPORTER_OTLP_ENDPOINT").is_some()
                || var(&format!("OTEL_EXPORTER_OTLP_{signal}_ENDPOINT")).is_some();
            listed && endpoint
        };
        let endpoint = otlp.map(str::to_owned);
        if wants("OTEL_TRACES_EXPORTER", "TRACES") {
            let mut traces = self.traces.take().unwrap_or_default();
            traces.endpoint = traces.endpoint.or_else(|| endpoint.clone());
            self.traces = Some(traces);
        }
        if wants("OTEL_METRICS_EXPORTER", "METRICS") {
            self.metrics_otlp = Some(OtlpConfig {
                endpoint: endpoint.clone(),
                protocol: None,
            });
        }
        if wants("OTEL_LOGS_EXPORTER", "LOGS") {
            self.logs_otlp = Some(OtlpConfig {
                endpoint,
                protocol: None,
            });
        }
        if let Some(list) = var("OTEL_METRICS_EXPORTER")
            && !list.split(',').any(|e| e.trim() == "prometheus")
        {
            self.prometheus = None;
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
    /// The span exporter could not be built.
    #[error("trace exporter: {0}")]
    Traces(String),
    /// The OTLP metrics or log exporter could not be built.
    #[error("OTLP exporter: {0}")]
    Otlp(String),
}

/// Keeps telemetry running; flushes and shuts the exporters down on drop.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
    meters: Option<opentelemetry_sdk::metrics::SdkMeterProvider>,
    loggers: Option<opentelemetry_sdk::logs::SdkLoggerProvider>,
    prometheus: Option<SocketAddr>,
}

impl TelemetryGuard {
    /// Where the Prometheus endpoint listens (the port it got, when asked
    /// for port 0 or when it fell back).
    pub fn prometheus_addr(&self) -> Option<SocketAddr> {
        self.prometheus
    }

    /// Exports every finished span, metric and log record now.
    pub fn flush(&self) {
        if let Some(p) = &self.provider {
            let _ = p.force_flush();
        }
        if let Some(p) = &self.meters {
            let _ = p.force_flush();
        }
        if let Some(p) = &self.loggers {
            let _ = p.force_flush();
        }
    }
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
        if let Some(p) = self.meters.take() {
            let _ = p.shutdown();
        }
        if let Some(p) = self.loggers.take() {
            let _ = p.shutdown();
        }
    }
}

/// The default span filter: everything at `info`, plus the runtime's
/// per-message `call` and `handle_*` spans and the application layer's
/// (`pubsub.deliver`: a broadcast relayed on another node) and remote
/// tasks (`task_on` on the caller, `task` where it runs).
pub const DEFAULT_TRACE_FILTER: &str = "info,clustertop_runtime::gen_server=debug,clustertop_runtime::app=debug,clustertop_runtime::dist::spawn=debug";

/// Sets up logs, metrics and the panic hook for this OS process.
///
/// # Errors
/// [`TelemetryError`] if a subscriber or recorder is already installed,
/// the filter is malformed, or the metrics endpoint cannot start (it needs
/// a tokio runtime).
pub fn init(config: TelemetryConfig) -> Result<TelemetryGuard, TelemetryError> {
    // Bound first: a taken port fails before anything is installed.
    let listener = match config.prometheus {
        None => None,
        Some(addr) => Some(metrics_endpoint::bind(addr, config.prometheus_fallback)?),
    };
    let filter_text = config
        .log_filter
        .clone()
        .or_else(|| {
            std::env::var("RUST_LOG")
                .ok()
                .filter(|f| !f.trim().is_empty())
        })
        .unwrap_or_else(|| "info".to_owned());
    let filter =
        EnvFilter::try_new(&filter_text).map_err(|e| TelemetryError::Filter(e.to_string()))?;
    // Colour only on a terminal: a pipe or a file gets plain text.
    let ansi = config.log_writer.is_none() && std::io::IsTerminal::is_terminal(&std::io::stderr());
    let writer = config
        .log_writer
        .unwrap_or_else(|| BoxMakeWriter::new(std::io::stderr));
    let log_layer = match config.log_format {
        LogFormat::Human => tracing_subscriber::fmt::layer()
            .with_writer(writer)
            .with_ansi(ansi)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => json::JsonLayer::new(config.node.clone(), writer)
            .with_filter(filter)
            .boxed(),
    };
    let (provider, trace_layer) = match &config.traces {
        None => (None, None),
        Some(tc) => {
            let provider = traces::provider(tc, &config.node).map_err(TelemetryError::Traces)?;
            let filter_text = config
                .trace_filter
                .as_deref()
                .unwrap_or(DEFAULT_TRACE_FILTER);
            let trace_filter = || {
                EnvFilter::try_new(filter_text).map_err(|e| TelemetryError::Filter(e.to_string()))
            };
            let layer = tracing_opentelemetry::layer()
                .with_tracer(traces::tracer(&provider))
                .with_filter(trace_filter()?)
                .and_then(traces::SpanDepth.with_filter(trace_filter()?));
            (Some(provider), Some(layer))
        }
    };
    let resource = otlp::resource(
        &config.node,
        config
            .traces
            .as_ref()
            .and_then(|t| t.service_name.as_deref()),
    );
    let (loggers, otlp_log_layer) = match &config.logs_otlp {
        None => (None, None),
        Some(lc) => {
            let provider = otlp::logger_provider(lc, resource.clone(), &config.node)
                .map_err(TelemetryError::Otlp)?;
            // The exporters' own records stay out: sending them would
            // make more of them.
            let wanted = config.otlp_log_filter.as_deref().unwrap_or(&filter_text);
            let filter = EnvFilter::try_new(format!("{wanted},{}", otlp::SELF_SILENCED))
                .map_err(|e| TelemetryError::Filter(e.to_string()))?;
            let layer =
                opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(&provider)
                    .with_filter(filter);
            (Some(provider), Some(layer))
        }
    };
    let meters = match &config.metrics_otlp {
        None => None,
        Some(mc) => Some(otlp::meter_provider(mc, resource).map_err(TelemetryError::Otlp)?),
    };
    // The throttle decides for every layer, wherever it sits: an event
    // it holds reaches none of them.
    let throttle = throttle::Throttle::new(throttle::WINDOW);
    throttle.flush_every_window();
    tracing_subscriber::registry()
        .with(config.extra_layer)
        .with(throttle)
        .with(log_layer)
        .with(trace_layer)
        .with(otlp_log_layer)
        .try_init()
        .map_err(|e| TelemetryError::AlreadyInitialised(e.to_string()))?;
    if provider.is_some() {
        let ratio = config
            .traces
            .as_ref()
            .and_then(traces::head_ratio)
            .unwrap_or(1.0);
        let _ = clustertop_runtime::trace::set_trace_propagator(Box::new(traces::OtelPropagator {
            ratio,
        }));
    }
    clustertop_runtime::install_panic_hook();
    let prometheus =
        metrics_endpoint::install(listener, meters.as_ref().map(otlp::OtelRecorder::new))?;
    let otlp_endpoint = |c: &OtlpConfig, signal| {
        otlp::endpoint(c.endpoint.as_deref(), otlp::protocol(c.protocol), signal)
    };
    exports::set(Exports {
        prometheus,
        otlp_traces: config.traces.as_ref().map(traces::endpoint),
        otlp_metrics: config
            .metrics_otlp
            .as_ref()
            .map(|c| otlp_endpoint(c, "metrics")),
        otlp_logs: config.logs_otlp.as_ref().map(|c| otlp_endpoint(c, "logs")),
    });
    Ok(TelemetryGuard {
        provider,
        meters,
        loggers,
        prometheus,
    })
}
