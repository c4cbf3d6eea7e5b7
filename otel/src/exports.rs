//! Where this OS process exports its telemetry, for the agent to report
//! (the Nodes view and `snapshot --json` show it).

use parking_lot::RwLock;
use std::net::SocketAddr;

/// Where telemetry goes, as [`init`](crate::init) set it up.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Exports {
    /// The Prometheus endpoint's address (scrape `http://ADDR/metrics`).
    pub prometheus: Option<SocketAddr>,
    /// The OTLP collector that spans go to.
    pub otlp_traces: Option<String>,
    /// The OTLP collector that metrics are pushed to.
    pub otlp_metrics: Option<String>,
    /// The OTLP collector that log records go to.
    pub otlp_logs: Option<String>,
}

static EXPORTS: RwLock<Exports> = RwLock::new(Exports {
    prometheus: None,
    otlp_traces: None,
    otlp_metrics: None,
    otlp_logs: None,
});

/// Where this OS process exports (all `None` before [`init`](crate::init)).
pub fn exports() -> Exports {
    EXPORTS.read().clone()
}

pub(crate) fn set(exports: Exports) {
    *EXPORTS.write() = exports;
}
