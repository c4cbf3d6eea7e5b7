//! Traces: spans exported over OTLP, and the runtime's trace-context hook
//! implemented with OpenTelemetry, so one request that crosses processes
//! and nodes is one trace.

use clustertop_runtime::trace::{TraceContext, TracePropagator};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The OTLP transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OtlpProtocol {
    /// gRPC, port 4317 by convention.
    #[default]
    Grpc,
    /// HTTP with protobuf bodies, port 4318 by convention.
    HttpProtobuf,
}

/// Where and how spans go. Unset fields fall back to the standard
/// `OTEL_EXPORTER_OTLP_*`, `OTEL_SERVICE_NAME` and `OTEL_TRACES_SAMPLER*`
/// variables, then to the exporter's defaults.
#[derive(Debug, Clone, Default)]
pub struct TraceConfig {
    /// The collector endpoint, for example `http://127.0.0.1:4317`.
    pub endpoint: Option<String>,
    /// gRPC or HTTP/protobuf (else `OTEL_EXPORTER_OTLP_PROTOCOL`, else gRPC).
    pub protocol: Option<OtlpProtocol>,
    /// The service name (else `OTEL_SERVICE_NAME`, else the node name).
    pub service_name: Option<String>,
    /// Fraction of root traces to sample, 0 to 1; child spans follow their
    /// parent. `None` keeps the SDK's choice (from `OTEL_TRACES_SAMPLER*`,
    /// else always on).
    pub sample_ratio: Option<f64>,
}

pub(crate) fn provider(config: &TraceConfig, node: &str) -> Result<SdkTracerProvider, String> {
    let protocol = config.protocol.unwrap_or_else(|| {
        match std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL").as_deref() {
            Ok("http/protobuf") => OtlpProtocol::HttpProtobuf,
            _ => OtlpProtocol::Grpc,
        }
    });
    let exporter = match protocol {
        OtlpProtocol::Grpc => {
            let mut b = opentelemetry_otlp::SpanExporter::builder().with_tonic();
            if let Some(e) = &config.endpoint {
                b = b.with_endpoint(e.clone());
            }
            b.build()
        }
        OtlpProtocol::HttpProtobuf => {
            let mut b = opentelemetry_otlp::SpanExporter::builder().with_http();
            if let Some(e) = &config.endpoint {
                b = b.with_endpoint(format!("{}/v1/traces", e.trim_end_matches('/')));
            }
            b.build()
        }
    }
    .map_err(|e| e.to_string())?;
    let service = config
        .service_name
        .clone()
        .or_else(|| std::env::var("OTEL_SERVICE_NAME").ok())
        .unwrap_or_else(|| node.to_owned());
    let resource = Resource::builder()
        .with_service_name(service)
        .with_attribute(opentelemetry::KeyValue::new(
            "clustertop.node",
            node.to_owned(),
        ))
        .with_attribute(opentelemetry::KeyValue::new(
            "service.version",
            env!("CARGO_PKG_VERSION"),
        ))
        .build();
    let mut builder = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource);
    if let Some(ratio) = config.sample_ratio {
        builder = builder.with_sampler(Sampler::ParentBased(Box::new(Sampler::TraceIdRatioBased(
            ratio,
        ))));
    }
    Ok(builder.build())
}

pub(crate) fn tracer(provider: &SdkTracerProvider) -> opentelemetry_sdk::trace::Tracer {
    provider.tracer("clustertop")
}

/// The runtime's trace-context hook, backed by the current tracing span's
/// OpenTelemetry context.
#[derive(Debug)]
pub(crate) struct OtelPropagator;

impl TracePropagator for OtelPropagator {
    fn current(&self) -> Option<TraceContext> {
        let span = tracing::Span::current();
        if span.is_none() {
            return None;
        }
        let cx = span.context();
        let sc = cx.span().span_context().clone();
        sc.is_valid().then(|| TraceContext {
            trace_id: sc.trace_id().to_bytes(),
            span_id: sc.span_id().to_bytes(),
            flags: sc.trace_flags().to_u8(),
        })
    }

    fn set_parent(&self, span: &tracing::Span, parent: &TraceContext) {
        let sc = SpanContext::new(
            TraceId::from_bytes(parent.trace_id),
            SpanId::from_bytes(parent.span_id),
            TraceFlags::new(parent.flags),
            true,
            TraceState::default(),
        );
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(sc));
    }
}

/// The trace and span ids of the current span, as lowercase hex.
pub(crate) fn current_ids() -> Option<(String, String)> {
    let span = tracing::Span::current();
    if span.is_none() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid()
        .then(|| (sc.trace_id().to_string(), sc.span_id().to_string()))
}
