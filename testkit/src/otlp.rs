//! An OTLP receiver for tests: the official OpenTelemetry protobuf
//! services (traces, metrics, logs) served with tonic on 127.0.0.1,
//! keeping everything it gets.

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{
    LogsService, LogsServiceServer,
};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::logs::v1::ResourceLogs;
use opentelemetry_proto::tonic::metrics::v1::ResourceMetrics;
use opentelemetry_proto::tonic::trace::v1::ResourceSpans;
use std::sync::{Arc, Mutex};

/// What the receiver got, signal by signal, as sent.
#[derive(Debug, Default)]
pub struct Received {
    /// Span batches.
    pub spans: Vec<ResourceSpans>,
    /// Metric batches.
    pub metrics: Vec<ResourceMetrics>,
    /// Log batches.
    pub logs: Vec<ResourceLogs>,
}

/// A running receiver (it serves until the test's runtime ends).
#[derive(Debug, Clone, Default)]
pub struct Receiver(Arc<Mutex<Received>>);

impl Receiver {
    /// Serves the three services on a free port of 127.0.0.1, on the
    /// current tokio runtime; returns the receiver and its port.
    pub fn start() -> (Receiver, u16) {
        let receiver = Receiver::default();
        let port = crate::free_port();
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(receiver.clone()))
                .add_service(MetricsServiceServer::new(receiver.clone()))
                .add_service(LogsServiceServer::new(receiver.clone()))
                .serve(([127, 0, 0, 1], port).into()),
        );
        (receiver, port)
    }

    /// Reads what arrived so far.
    pub fn with<T>(&self, f: impl FnOnce(&Received) -> T) -> T {
        f(&self.0.lock().expect("not poisoned"))
    }
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut got = self.0.lock().expect("not poisoned");
        got.spans.extend(request.into_inner().resource_spans);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let mut got = self.0.lock().expect("not poisoned");
        got.metrics.extend(request.into_inner().resource_metrics);
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl LogsService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        let mut got = self.0.lock().expect("not poisoned");
        got.logs.extend(request.into_inner().resource_logs);
        Ok(tonic::Response::new(ExportLogsServiceResponse {
            partial_success: None,
        }))
    }
}

/// A string attribute's value.
pub fn attr(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            Value::StringValue(s) => Some(s.clone()),
            Value::IntValue(i) => Some(i.to_string()),
            _ => None,
        }
    })
}

/// Attributes as sorted `key=value` text, for comparing two resources.
pub fn attributes_text(attributes: &[KeyValue]) -> Vec<String> {
    let mut out: Vec<String> = attributes
        .iter()
        .map(|kv| format!("{}={:?}", kv.key, kv.value))
        .collect();
    out.sort();
    out
}
