//! Latency histograms.

use serde::{Deserialize, Serialize};

/// What a histogram measures, and for which behaviour on which node.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HistogramKey {
    /// Time handling one message, per behaviour.
    HandlingTime {
        /// The node.
        node: String,
        /// The behaviour or type name.
        behaviour: String,
    },
    /// Time a message waited in a mailbox, per behaviour.
    QueueWait {
        /// The node.
        node: String,
        /// The behaviour or type name.
        behaviour: String,
    },
    /// GenServer call round trip seen by callers, per server behaviour.
    CallRtt {
        /// The calling node.
        node: String,
        /// The server's behaviour.
        behaviour: String,
    },
}

/// Percentiles over a window, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Samples in the window.
    pub count: u64,
    /// Median, µs.
    pub p50_us: u64,
    /// 90th percentile, µs.
    pub p90_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Maximum, µs.
    pub max_us: u64,
}

/// One histogram over the last 10 seconds and the last minute.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histogram {
    /// What it measures.
    pub key: HistogramKey,
    /// Over the last 10 s.
    pub last_10s: Percentiles,
    /// Over the last 60 s.
    pub last_60s: Percentiles,
    /// Bucket upper bounds in µs and their counts over the last 60 s, for
    /// drawing the distribution: four ranges per power of two, from the
    /// first with a count to the last, empty ones between included.
    pub buckets: Vec<(u64, u64)>,
}

/// Histograms at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricsSnapshot {
    /// When taken, in milliseconds since the Unix epoch.
    pub sampled_at_unix_ms: u64,
    /// The histograms.
    pub histograms: Vec<Histogram>,
}
