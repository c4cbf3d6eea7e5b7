//! Traces: spans exported over OTLP, and the runtime's trace-context hook
//! implemented with OpenTelemetry, so one request that crosses processes
//! and nodes is one trace.

use crate::otlp::{OtlpProtocol, current_span_context};
use clustertop_runtime::trace::{TraceContext, TracePropagator};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_opentelemetry::OpenTelemetrySpanExt;

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

/// The collector spans go to, as the exporter will resolve it.
pub(crate) fn endpoint(config: &TraceConfig) -> String {
    crate::otlp::endpoint(
        config.endpoint.as_deref(),
        crate::otlp::protocol(config.protocol),
        "traces",
    )
}

pub(crate) fn provider(config: &TraceConfig, node: &str) -> Result<SdkTracerProvider, String> {
    let exporter = crate::otlp::otlp_exporter!(
        SpanExporter,
        "traces",
        config.endpoint.as_deref(),
        config.protocol
    )?;
    let resource = crate::otlp::resource(node, config.service_name.as_deref());
    let mut builder = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource);
    if let Some(ratio) = head_ratio(config) {
        builder = builder.with_sampler(Sampler::ParentBased(Box::new(RootSampler { ratio })));
    }
    Ok(builder.build())
}

/// The fraction of root traces kept: the config's, else the one the
/// standard variables ask for (`OTEL_TRACES_SAMPLER` =
/// `traceidratio`/`parentbased_traceidratio` with `OTEL_TRACES_SAMPLER_ARG`,
/// or the `always_on`/`always_off` forms). `None` leaves the choice to the
/// SDK (for example a remote sampler).
pub(crate) fn head_ratio(config: &TraceConfig) -> Option<f64> {
    if let Some(r) = config.sample_ratio {
        return Some(r.clamp(0.0, 1.0));
    }
    let arg = || {
        std::env::var("OTEL_TRACES_SAMPLER_ARG")
            .ok()
            .and_then(|a| a.trim().parse::<f64>().ok())
            .map_or(1.0, |r| r.clamp(0.0, 1.0))
    };
    match std::env::var("OTEL_TRACES_SAMPLER").as_deref() {
        Ok("traceidratio" | "parentbased_traceidratio") => Some(arg()),
        Ok("always_off" | "parentbased_always_off") => Some(0.0),
        Ok("always_on" | "parentbased_always_on") | Err(_) => Some(1.0),
        Ok(_) => None,
    }
}

/// Span names of the runtime's per-message spans (which carry a
/// `behaviour` attribute); its remote-task span, `task_on`, carries `task`.
const RUNTIME_SPANS: [&str; 4] = ["call", "handle_call", "handle_cast", "handle_info"];

/// Decides for root spans. The runtime creates a root span for a call or a
/// message only when [`OtelPropagator::trace_root`] has already kept it
/// (head sampling, so dropped work costs no span): those are sampled.
/// Any other root is kept with probability `ratio`, by trace id.
#[derive(Debug, Clone)]
struct RootSampler {
    ratio: f64,
}

impl opentelemetry_sdk::trace::ShouldSample for RootSampler {
    fn should_sample(
        &self,
        parent_context: Option<&opentelemetry::Context>,
        trace_id: TraceId,
        name: &str,
        span_kind: &opentelemetry::trace::SpanKind,
        attributes: &[opentelemetry::KeyValue],
        links: &[opentelemetry::trace::Link],
    ) -> opentelemetry_sdk::trace::SamplingResult {
        let has = |key: &str| attributes.iter().any(|kv| kv.key.as_str() == key);
        let runtime = (RUNTIME_SPANS.contains(&name) && has("behaviour"))
            || (name == "task_on" && has("task"));
        if runtime {
            return opentelemetry_sdk::trace::SamplingResult {
                decision: opentelemetry_sdk::trace::SamplingDecision::RecordAndSample,
                attributes: Vec::new(),
                trace_state: TraceState::default(),
            };
        }
        Sampler::TraceIdRatioBased(self.ratio).should_sample(
            parent_context,
            trace_id,
            name,
            span_kind,
            attributes,
            links,
        )
    }
}

pub(crate) fn tracer(provider: &SdkTracerProvider) -> opentelemetry_sdk::trace::Tracer {
    provider.tracer("clustertop")
}

/// The runtime's trace-context hook, backed by the current tracing span's
/// OpenTelemetry context. Keeps `ratio` of the traces the runtime would
/// start (head sampling).
#[derive(Debug)]
pub(crate) struct OtelPropagator {
    pub(crate) ratio: f64,
}

/// A uniform draw in [0, 1) from a per-thread xorshift generator: cheap
/// enough to ask once per call.
fn uniform() -> f64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new({
            let seed = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64);
            let here = &seed as *const u64 as u64;
            (seed ^ here.rotate_left(32)) | 1
        });
    }
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        (x >> 11) as f64 / (1u64 << 53) as f64
    })
}

thread_local! {
    /// Exported-kind spans entered on this thread and not yet exited.
    static DEPTH: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Counts, per thread, the entered spans that pass the trace filter, so a
/// send outside any of them skips the span lookup (the common case: a
/// plain send costs one thread-local read).
pub(crate) struct SpanDepth;

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanDepth {
    fn on_enter(&self, _id: &tracing::span::Id, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        DEPTH.with(|d| d.set(d.get() + 1));
    }
    fn on_exit(&self, _id: &tracing::span::Id, _ctx: tracing_subscriber::layer::Context<'_, S>) {
        DEPTH.with(|d| d.set(d.get().saturating_sub(1)));
    }
}

impl TracePropagator for OtelPropagator {
    /// Outside any counted span (nearly every send), one thread-local
    /// read and a return: the look-up lives in a function of its own so
    /// that this path does not pay its frame (six saved registers and
    /// 170 bytes of stack, which were 2 % of a send-heavy profile).
    fn current(&self) -> Option<TraceContext> {
        if DEPTH.with(std::cell::Cell::get) == 0 {
            return None;
        }
        context_in_span()
    }

    fn trace_root(&self) -> bool {
        self.ratio >= 1.0 || (self.ratio > 0.0 && uniform() < self.ratio)
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

/// The current span's context, for a send made inside a counted span.
#[inline(never)]
fn context_in_span() -> Option<TraceContext> {
    current_span_context().map(|sc| TraceContext {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        flags: sc.trace_flags().to_u8(),
    })
}

/// The trace and span ids of the current span, as lowercase hex.
pub(crate) fn current_ids() -> Option<(String, String)> {
    current_span_context().map(|sc| (sc.trace_id().to_string(), sc.span_id().to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_sdk::trace::{SamplingDecision, ShouldSample};

    fn decide(name: &str, attrs: &[opentelemetry::KeyValue]) -> SamplingDecision {
        RootSampler { ratio: 0.0 }
            .should_sample(
                None,
                TraceId::from_bytes([9; 16]),
                name,
                &opentelemetry::trace::SpanKind::Internal,
                attrs,
                &[],
            )
            .decision
    }

    #[test]
    fn runtime_roots_were_sampled_at_the_head_and_others_follow_the_ratio() {
        let behaviour = [opentelemetry::KeyValue::new("behaviour", "Echo")];
        assert_eq!(
            decide("handle_call", &behaviour),
            SamplingDecision::RecordAndSample
        );
        assert_eq!(
            decide("call", &behaviour),
            SamplingDecision::RecordAndSample
        );
        assert_eq!(decide("call", &[]), SamplingDecision::Drop);
        let task = [opentelemetry::KeyValue::new("task", "work")];
        assert_eq!(decide("task_on", &task), SamplingDecision::RecordAndSample);
        assert_eq!(decide("request", &behaviour), SamplingDecision::Drop);
    }

    #[test]
    fn the_head_keeps_about_its_ratio() {
        let p = OtelPropagator { ratio: 0.01 };
        let kept = (0..100_000).filter(|_| p.trace_root()).count();
        assert!((700..=1_300).contains(&kept), "{kept}");
        assert!((0..1_000).all(|_| OtelPropagator { ratio: 1.0 }.trace_root()));
        assert!(!(0..1_000).any(|_| OtelPropagator { ratio: 0.0 }.trace_root()));
    }
}
