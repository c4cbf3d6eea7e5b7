//! The Prometheus endpoint: one recorder that feeds both the Prometheus
//! exposition and the [`series`](crate::series) store the agent reads, and
//! an HTTP listener this crate binds itself, so it knows (and reports) the
//! port it got.
//!
//! Cost: a scrape renders every series (the exporter's `render`); an
//! upkeep task drains histogram buckets every 5 s.
//!
//! Exposure: the endpoint has no cookie (Prometheus scrapes it as is), so
//! bind it where only the scraper reaches (the default is 127.0.0.1). It
//! serves `GET /metrics` and answers 404 to anything else; what a caller
//! can make it hold is one rendering of the series per request (the series
//! themselves are bounded by the code that records them) and hyper's
//! bounded request buffers per connection.

use crate::TelemetryError;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::net::SocketAddr;
use std::time::Duration;

/// Binds the endpoint's listener: `addr`, or with `fallback` any free port
/// of its IP when `addr` is taken.
pub(crate) fn bind(
    addr: SocketAddr,
    fallback: bool,
) -> Result<std::net::TcpListener, TelemetryError> {
    let listener = match std::net::TcpListener::bind(addr) {
        Ok(l) => l,
        Err(e) if fallback && e.kind() == std::io::ErrorKind::AddrInUse => {
            std::net::TcpListener::bind(SocketAddr::new(addr.ip(), 0))
                .map_err(|e| TelemetryError::Metrics(format!("{}: {e}", addr.ip())))?
        }
        Err(e) => return Err(TelemetryError::Metrics(format!("{addr}: {e}"))),
    };
    listener
        .set_nonblocking(true)
        .map_err(|e| TelemetryError::Metrics(e.to_string()))?;
    Ok(listener)
}

/// Installs the global recorder (Prometheus and the series store) and, with
/// a listener, serves `/metrics` on it. Returns the address served.
///
/// With `otlp`, the same series also feed OpenTelemetry instruments (the
/// OTLP metrics push).
pub(crate) fn install(
    listener: Option<std::net::TcpListener>,
    otlp: Option<crate::otlp::OtelRecorder>,
) -> Result<Option<SocketAddr>, TelemetryError> {
    let mut fanout =
        metrics_util::layers::FanoutBuilder::default().add_recorder(crate::series::StoreRecorder);
    if let Some(otlp) = otlp {
        fanout = fanout.add_recorder(otlp);
    }
    // No endpoint: no Prometheus recorder (one nobody scrapes would only
    // accumulate).
    let prometheus = listener
        .as_ref()
        .map(|_| PrometheusBuilder::new().build_recorder());
    let handle = prometheus.as_ref().map(|p| p.handle());
    if let Some(p) = prometheus {
        fanout = fanout.add_recorder(p);
    }
    metrics::set_global_recorder(fanout.build())
        .map_err(|e| TelemetryError::AlreadyInitialised(e.to_string()))?;
    let (Some(listener), Some(handle)) = (listener, handle) else {
        return Ok(None);
    };
    let runtime = tokio::runtime::Handle::try_current()
        .map_err(|_| TelemetryError::Metrics("the endpoint needs a tokio runtime".into()))?;
    let addr = listener
        .local_addr()
        .map_err(|e| TelemetryError::Metrics(e.to_string()))?;
    let _enter = runtime.enter();
    let listener = tokio::net::TcpListener::from_std(listener)
        .map_err(|e| TelemetryError::Metrics(e.to_string()))?;
    runtime.spawn(upkeep(handle.clone()));
    runtime.spawn(serve(listener, handle));
    Ok(Some(addr))
}

async fn upkeep(handle: PrometheusHandle) {
    let mut tick = tokio::time::interval(Duration::from_secs(5));
    loop {
        tick.tick().await;
        handle.run_upkeep();
    }
}

async fn serve(listener: tokio::net::TcpListener, handle: PrometheusHandle) {
    let app = axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let handle = handle.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "text/plain; version=0.0.4",
                    )],
                    handle.render(),
                )
            }
        }),
    );
    crate::http::serve(listener, app, crate::http::HttpLimits::default(), "metrics").await;
}
