//! OTLP for metrics (push) and logs, beside the traces of `traces`: where
//! they go, the one resource all three signals carry, the bridge from the
//! `metrics` facade to OpenTelemetry instruments, and the log processor
//! that adds the node, the process and the trace to each record.
//!
//! # Why a bridge of our own
//! The `metrics` → OpenTelemetry bridges on crates.io target older
//! OpenTelemetry releases than this crate's, and two OpenTelemetry
//! versions' meters do not mix. The bridge here is the small part that
//! must match: one OpenTelemetry instrument per series name and kind, one
//! attribute set per label set, cached.
//!
//! # Cost
//! With OTLP metrics on, each `metrics` record also goes to the
//! OpenTelemetry SDK (an attribute-set lookup and an atomic update in its
//! aggregation); the export runs on the SDK's own thread every
//! `OTEL_METRIC_EXPORT_INTERVAL` (default 60 s). Off, none of this is
//! installed. Log records go through the SDK's batch processor (a bounded
//! queue, `OTEL_BLRP_MAX_QUEUE_SIZE`, default 2,048: beyond it records are
//! dropped, never blocking the caller).

use metrics::{
    Counter, CounterFn, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use opentelemetry::KeyValue;
use opentelemetry::logs::LogRecord as _;
use opentelemetry::metrics::{Meter, MeterProvider as _};
use opentelemetry::trace::{SpanContext, TraceContextExt as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{LogProcessor, SdkLogRecord, SdkLoggerProvider};
use opentelemetry_sdk::metrics::SdkMeterProvider;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// The current span's OpenTelemetry span context, when it belongs to an
/// exported trace (what the log records and the
/// messages sent inside the span carry).
pub(crate) fn current_span_context() -> Option<SpanContext> {
    let span = tracing::Span::current();
    if span.is_none() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then_some(sc)
}

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtlpProtocol {
    /// gRPC, port 4317 by convention.
    #[default]
    Grpc,
    /// HTTP with protobuf bodies, port 4318 by convention.
    HttpProtobuf,
}

/// Targets whose records never go over OTLP: the exporters' own (sending
/// them would make more).
pub(crate) const SELF_SILENCED: &str = "opentelemetry=off,opentelemetry_sdk=off,opentelemetry_otlp=off,tonic=off,h2=off,hyper=off,hyper_util=off,tower=off,reqwest=off";

/// Where and how metrics or logs go over OTLP. Unset fields fall back to
/// the standard `OTEL_EXPORTER_OTLP_*` variables, then to the exporter's
/// defaults (gRPC to `localhost:4317`).
#[derive(Debug, Clone, Default)]
pub struct OtlpConfig {
    /// The collector endpoint, for example `http://127.0.0.1:4317`.
    pub endpoint: Option<String>,
    /// gRPC or HTTP/protobuf (else `OTEL_EXPORTER_OTLP_PROTOCOL`, else gRPC).
    pub protocol: Option<OtlpProtocol>,
}

/// The transport: the config's, else `OTEL_EXPORTER_OTLP_PROTOCOL`, else
/// gRPC.
pub(crate) fn protocol(configured: Option<OtlpProtocol>) -> OtlpProtocol {
    configured.unwrap_or_else(
        || match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
            Ok("http/protobuf") => OtlpProtocol::HttpProtobuf,
            _ => OtlpProtocol::Grpc,
        },
    )
}

/// The collector a signal goes to, as the exporter resolves it: the
/// config's endpoint, else `OTEL_EXPORTER_OTLP_{SIGNAL}_ENDPOINT`, else
/// `OTEL_EXPORTER_OTLP_ENDPOINT`, else the protocol's default.
pub(crate) fn endpoint(configured: Option<&str>, protocol: OtlpProtocol, signal: &str) -> String {
    configured
        .map(str::to_owned)
        .or_else(|| {
            std::env::var(format!(
                "OTEL_EXPORTER_OTLP_{}_ENDPOINT",
                signal.to_uppercase()
            ))
            .ok()
        })
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
        .unwrap_or_else(|| match protocol {
            OtlpProtocol::Grpc => "http://localhost:4317".to_owned(),
            OtlpProtocol::HttpProtobuf => "http://localhost:4318".to_owned(),
        })
}

/// Builds one signal's OTLP exporter: `$builder` is the exporter type
/// (`SpanExporter`, `MetricExporter`, `LogExporter`), `$signal` the path
/// segment of the HTTP endpoint.
macro_rules! otlp_exporter {
    ($builder:ident, $signal:literal, $endpoint:expr, $protocol:expr) => {{
        use opentelemetry_otlp::WithExportConfig;
        let endpoint: Option<&str> = $endpoint;
        match $crate::otlp::protocol($protocol) {
            $crate::OtlpProtocol::Grpc => {
                let mut b = opentelemetry_otlp::$builder::builder().with_tonic();
                if let Some(e) = endpoint {
                    b = b.with_endpoint(e.to_owned());
                }
                b.build()
            }
            $crate::OtlpProtocol::HttpProtobuf => {
                let mut b = opentelemetry_otlp::$builder::builder().with_http();
                if let Some(e) = endpoint {
                    b = b.with_endpoint(format!(
                        concat!("{}/v1/", $signal),
                        e.trim_end_matches('/')
                    ));
                }
                b.build()
            }
        }
        .map_err(|e| e.to_string())
    }};
}
pub(crate) use otlp_exporter;

/// The resource every signal of this OS process carries: the service name
/// (`service_name`, else `OTEL_SERVICE_NAME`, else the node name), the
/// node, and the software version.
pub(crate) fn resource(node: &str, service_name: Option<&str>) -> Resource {
    let service = service_name
        .map(str::to_owned)
        .or_else(|| std::env::var("OTEL_SERVICE_NAME").ok())
        .unwrap_or_else(|| node.to_owned());
    Resource::builder()
        .with_service_name(service)
        .with_attribute(KeyValue::new("clustertop.node", node.to_owned()))
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build()
}

/// A meter provider pushing to the collector `config` names.
pub(crate) fn meter_provider(
    config: &OtlpConfig,
    resource: Resource,
) -> Result<SdkMeterProvider, String> {
    let exporter = otlp_exporter!(
        MetricExporter,
        "metrics",
        config.endpoint.as_deref(),
        config.protocol
    )?;
    Ok(SdkMeterProvider::builder()
        .with_periodic_exporter(exporter)
        .with_resource(resource)
        .build())
}

/// A logger provider sending to the collector `config` names, each record
/// enriched by [`Enrich`].
pub(crate) fn logger_provider(
    config: &OtlpConfig,
    resource: Resource,
    node: &str,
) -> Result<SdkLoggerProvider, String> {
    let exporter = otlp_exporter!(
        LogExporter,
        "logs",
        config.endpoint.as_deref(),
        config.protocol
    )?;
    let batch = opentelemetry_sdk::logs::BatchLogProcessor::builder(exporter).build();
    Ok(SdkLoggerProvider::builder()
        .with_log_processor(Enrich {
            node: node.to_owned(),
            inner: batch,
        })
        .with_resource(resource)
        .build())
}

/// Adds to each log record, in the emitting thread: the node, the
/// runtime process that logged it (pid and name), and the trace and span
/// of the current span when it belongs to an exported trace.
#[derive(Debug)]
struct Enrich<P> {
    node: String,
    inner: P,
}

impl<P: LogProcessor> LogProcessor for Enrich<P> {
    fn emit(&self, record: &mut SdkLogRecord, scope: &opentelemetry::InstrumentationScope) {
        let has = |record: &SdkLogRecord, key: &str| {
            record.attributes_iter().any(|(k, _)| k.as_str() == key)
        };
        if !has(record, "node") {
            record.add_attribute("node", self.node.clone());
        }
        if let Some(p) = clustertop_runtime::current_process() {
            if !has(record, "pid") {
                record.add_attribute("pid", p.id.to_string());
            }
            if let Some(name) = p.name
                && !has(record, "process")
            {
                record.add_attribute("process", name.to_string());
            }
        }
        if record.trace_context().is_none()
            && let Some(sc) = current_span_context()
        {
            record.set_trace_context(sc.trace_id(), sc.span_id(), Some(sc.trace_flags()));
        }
        self.inner.emit(record, scope);
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(
        &self,
        timeout: std::time::Duration,
    ) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// Handles by series key, made once: `metrics` asks on every macro call.
struct Handles<T> {
    by_key: parking_lot::RwLock<HashMap<Key, Arc<T>, BuildHasherDefault<metrics_util::KeyHasher>>>,
}

impl<T> Default for Handles<T> {
    fn default() -> Self {
        Handles {
            by_key: parking_lot::RwLock::new(HashMap::default()),
        }
    }
}

impl<T> Handles<T> {
    fn get_or(&self, key: &Key, make: impl FnOnce() -> T) -> Arc<T> {
        if let Some(h) = self.by_key.read().get(key) {
            return h.clone();
        }
        self.by_key
            .write()
            .entry(key.clone())
            .or_insert_with(|| Arc::new(make()))
            .clone()
    }
}

/// Instruments by series name, one per kind.
#[derive(Default)]
struct Instruments {
    counters: HashMap<String, opentelemetry::metrics::Counter<u64>>,
    gauges: HashMap<String, opentelemetry::metrics::Gauge<f64>>,
    histograms: HashMap<String, opentelemetry::metrics::Histogram<f64>>,
}

/// The `metrics` recorder that feeds OpenTelemetry instruments (installed
/// in the fan-out when OTLP metrics are on). A series keeps its name, and
/// its labels become attributes.
#[derive(Clone)]
pub(crate) struct OtelRecorder {
    meter: Meter,
    instruments: Arc<Mutex<Instruments>>,
    counters: Arc<Handles<OtelCounter>>,
    gauges: Arc<Handles<OtelGauge>>,
    histograms: Arc<Handles<OtelHistogram>>,
}

impl std::fmt::Debug for OtelRecorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelRecorder").finish_non_exhaustive()
    }
}

impl OtelRecorder {
    pub(crate) fn new(provider: &SdkMeterProvider) -> Self {
        OtelRecorder {
            meter: provider.meter("clustertop"),
            instruments: Arc::default(),
            counters: Arc::default(),
            gauges: Arc::default(),
            histograms: Arc::default(),
        }
    }
}

fn attributes(key: &Key) -> Vec<KeyValue> {
    key.labels()
        .map(|l| KeyValue::new(l.key().to_owned(), l.value().to_owned()))
        .collect()
}

struct OtelCounter {
    counter: opentelemetry::metrics::Counter<u64>,
    attributes: Vec<KeyValue>,
    /// The total so far, for `absolute`.
    total: AtomicU64,
}

impl CounterFn for OtelCounter {
    fn increment(&self, value: u64) {
        self.total.fetch_add(value, Relaxed);
        self.counter.add(value, &self.attributes);
    }
    fn absolute(&self, value: u64) {
        let before = self.total.fetch_max(value, Relaxed);
        if value > before {
            self.counter.add(value - before, &self.attributes);
        }
    }
}

struct OtelGauge {
    gauge: opentelemetry::metrics::Gauge<f64>,
    attributes: Vec<KeyValue>,
    value: AtomicU64,
}

impl OtelGauge {
    fn update(&self, f: impl Fn(f64) -> f64) {
        let mut now = 0.0;
        let _ = self.value.fetch_update(Relaxed, Relaxed, |v| {
            now = f(f64::from_bits(v));
            Some(now.to_bits())
        });
        self.gauge.record(now, &self.attributes);
    }
}

impl GaugeFn for OtelGauge {
    fn increment(&self, value: f64) {
        self.update(|v| v + value);
    }
    fn decrement(&self, value: f64) {
        self.update(|v| v - value);
    }
    fn set(&self, value: f64) {
        self.update(|_| value);
    }
}

struct OtelHistogram {
    histogram: opentelemetry::metrics::Histogram<f64>,
    attributes: Vec<KeyValue>,
}

impl HistogramFn for OtelHistogram {
    fn record(&self, value: f64) {
        self.histogram.record(value, &self.attributes);
    }
}

impl Recorder for OtelRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        Counter::from_arc(self.counters.get_or(key, || {
            OtelCounter {
                counter: self
                    .instruments
                    .lock()
                    .counters
                    .entry(key.name().to_owned())
                    .or_insert_with(|| self.meter.u64_counter(key.name().to_owned()).build())
                    .clone(),
                attributes: attributes(key),
                total: AtomicU64::new(0),
            }
        }))
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        Gauge::from_arc(self.gauges.get_or(key, || {
            OtelGauge {
                gauge: self
                    .instruments
                    .lock()
                    .gauges
                    .entry(key.name().to_owned())
                    .or_insert_with(|| self.meter.f64_gauge(key.name().to_owned()).build())
                    .clone(),
                attributes: attributes(key),
                value: AtomicU64::new(0f64.to_bits()),
            }
        }))
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        Histogram::from_arc(self.histograms.get_or(key, || {
            OtelHistogram {
                histogram: self
                    .instruments
                    .lock()
                    .histograms
                    .entry(key.name().to_owned())
                    .or_insert_with(|| self.meter.f64_histogram(key.name().to_owned()).build())
                    .clone(),
                attributes: attributes(key),
            }
        }))
    }
}
