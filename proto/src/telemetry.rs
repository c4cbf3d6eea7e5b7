//! What each node exports and records beyond the runtime's own figures:
//! its telemetry endpoints, the `metrics` series its code records, and
//! its telemetry events by name (protocol version 4).

use serde::{Deserialize, Serialize};

/// Every node's telemetry, gathered by the entry node's agent: endpoints,
/// user series and event counts. Answered with [`Telemetry`]. Since
/// protocol version 4.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct GetTelemetry {
    /// Only this node; `None` for every node.
    pub node: Option<String>,
}

/// Every node's telemetry, one entry per node that answered.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Telemetry {
    /// Each node's part, in node-name order.
    pub nodes: Vec<NodeTelemetry>,
    /// Nodes that did not answer (slow or down).
    pub missing: Vec<String>,
}

/// One node's telemetry.
///
/// Series and events are those of the node's OS process: the `metrics`
/// recorder is per OS process, so nodes sharing one report the same.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct NodeTelemetry {
    /// The node.
    pub node: String,
    /// When read, ms since the Unix epoch.
    pub sampled_at_unix_ms: u64,
    /// The window that rates and histogram windows cover, ms (0 until the
    /// agent has two readings).
    pub window_ms: u64,
    /// Where the node exports.
    pub endpoints: Vec<Endpoint>,
    /// The series, in the order they were first recorded.
    pub series: Vec<Series>,
    /// Series recorded but not held by the node (beyond its bound).
    pub series_dropped: u64,
    /// Telemetry events executed, by name.
    pub events: Vec<EventCount>,
    /// Executions of event names beyond the node's bound.
    pub events_left_out: u64,
}

/// What an endpoint serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum EndpointKind {
    /// A Prometheus scrape endpoint (pull).
    Prometheus,
    /// The OTLP collector that spans go to.
    OtlpTraces,
    /// The OTLP collector that metrics are pushed to.
    OtlpMetrics,
    /// The OTLP collector that log records go to.
    OtlpLogs,
}

/// One telemetry endpoint of a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoint {
    /// What it serves.
    pub kind: EndpointKind,
    /// Its URL.
    pub url: String,
}

/// One series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Series {
    /// The series name.
    pub name: String,
    /// Its labels.
    pub labels: Vec<(String, String)>,
    /// Its value.
    pub value: SeriesValue,
}

/// A series' value.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SeriesValue {
    /// A counter.
    Counter {
        /// Its total since the node started.
        total: u64,
        /// Its increase per second over the window.
        per_s: f64,
    },
    /// A gauge.
    Gauge {
        /// Its value.
        value: f64,
    },
    /// A histogram.
    Histogram {
        /// Values recorded since the node started.
        count: u64,
        /// Their sum.
        sum: f64,
        /// Values recorded in the window, by bucket (non-empty buckets
        /// only, ascending).
        window: Vec<Bucket>,
    },
}

/// Values of a histogram that fell between two bounds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Bucket {
    /// The lowest value it holds.
    pub lower: f64,
    /// The values it holds are below this.
    pub upper: f64,
    /// How many.
    pub count: u64,
}

/// How often one telemetry event was executed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventCount {
    /// The event name, segments joined by dots.
    pub name: String,
    /// Executions since the node started.
    pub total: u64,
    /// Executions per second over the window.
    pub per_s: f64,
}

/// The last messages one process handled inside sampled traces: which
/// requests fill its mailbox. Answered with [`ProcessTraces`]. Since
/// protocol version 4.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GetProcessTraces {
    /// The process.
    pub pid: crate::PidRef,
}

/// A process's traced handlings, newest first (at most
/// [`ProcessTraces::MAX`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessTraces {
    /// The handlings.
    pub traces: Vec<TraceRow>,
}

impl ProcessTraces {
    /// The most handlings an answer holds.
    pub const MAX: usize = 16;
}

/// One message handled inside a sampled trace.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceRow {
    /// The trace id, 32 lowercase hex digits (as Jaeger shows it).
    pub trace_id: String,
    /// The handler span's id, 16 lowercase hex digits.
    pub span_id: String,
    /// Time in the handler, awaits included, µs.
    pub handling_us: u64,
    /// The process that sent the message, when sent from inside one.
    pub from: Option<crate::PidRef>,
    /// When the handler finished, ms since the Unix epoch.
    pub at_unix_ms: u64,
}

/// Buckets of several histograms (several nodes' windows of one series)
/// merged: counts of equal bounds added, ascending.
pub fn merge_buckets<'a>(parts: impl IntoIterator<Item = &'a [Bucket]>) -> Vec<Bucket> {
    let mut all: Vec<Bucket> = parts.into_iter().flatten().copied().collect();
    all.sort_by(|a, b| {
        a.lower
            .total_cmp(&b.lower)
            .then(a.upper.total_cmp(&b.upper))
    });
    let mut out: Vec<Bucket> = Vec::with_capacity(all.len());
    for b in all {
        match out.last_mut() {
            Some(last) if last.lower == b.lower && last.upper == b.upper => last.count += b.count,
            _ => out.push(b),
        }
    }
    out
}

/// The `q` quantile (0 to 1) of bucketed values, interpolated linearly
/// inside its bucket (a bucket with an infinite bound gives its finite
/// one); `None` when there are none.
pub fn quantile(buckets: &[Bucket], q: f64) -> Option<f64> {
    let total: u64 = buckets.iter().map(|b| b.count).sum();
    if total == 0 {
        return None;
    }
    let rank = (q.clamp(0.0, 1.0) * total as f64).max(1.0);
    let mut seen = 0u64;
    for b in buckets {
        if (seen + b.count) as f64 >= rank {
            let within = (rank - seen as f64) / b.count as f64;
            return Some(match (b.lower.is_finite(), b.upper.is_finite()) {
                (true, true) => b.lower + (b.upper - b.lower) * within,
                (true, false) => b.lower,
                (false, _) => b.upper,
            });
        }
        seen += b.count;
    }
    buckets.last().map(|b| b.upper)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(lower: f64, upper: f64, count: u64) -> Bucket {
        Bucket {
            lower,
            upper,
            count,
        }
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket() {
        let buckets = [b(1.0, 2.0, 50), b(2.0, 4.0, 49), b(8.0, 9.0, 1)];
        assert_eq!(quantile(&buckets, 0.5), Some(2.0));
        assert_eq!(quantile(&buckets, 0.25), Some(1.5));
        let p99 = quantile(&buckets, 0.99).unwrap();
        assert!((3.9..=4.0).contains(&p99), "{p99}");
        assert_eq!(quantile(&buckets, 1.0), Some(9.0));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn merging_adds_equal_buckets() {
        let a = [b(1.0, 2.0, 3), b(4.0, 5.0, 1)];
        let c = [b(1.0, 2.0, 2), b(2.0, 3.0, 7)];
        assert_eq!(
            merge_buckets([&a[..], &c[..]]),
            [b(1.0, 2.0, 5), b(2.0, 3.0, 7), b(4.0, 5.0, 1)]
        );
    }
}
