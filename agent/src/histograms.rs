//! Latency windows: the runtime's cumulative per-behaviour histograms
//! turned into percentiles over the last 10 seconds and the last minute.
//!
//! At every sample the agent reads each histogram's cumulative bucket
//! counts and keeps the difference from the previous read (sparse: only
//! buckets that moved) in a ring of 60 one-interval slices. A request sums
//! the slices of a window into an `hdrhistogram` (two significant digits,
//! values in nanoseconds, each bucket recorded at its midpoint) and reads
//! percentiles from it. Cost: proportional to the buckets that moved, not
//! to message counts; memory at most 60 slices × the moving buckets.

use clustertop_proto::{Histogram, HistogramKey, Percentiles};
use clustertop_runtime::Node;
use clustertop_runtime::latency::{LatencyHistogram, LatencyKind};
use hdrhistogram::Histogram as Hdr;
use std::collections::{HashMap, VecDeque};

/// Slices kept: one per sampling interval, a minute at the default 1 s.
const SLICES: usize = 60;
/// Slices in the short window.
const SHORT: usize = 10;

const KINDS: [LatencyKind; 3] = [
    LatencyKind::Handling,
    LatencyKind::QueueWait,
    LatencyKind::CallRtt,
];

#[derive(Debug, Default)]
struct Series {
    last: Vec<u64>,
    slices: VecDeque<Vec<(u16, u64)>>,
}

/// The windows of every behaviour of one node.
#[derive(Debug, Default)]
pub(crate) struct Windows {
    series: HashMap<(&'static str, LatencyKind), Series>,
}

impl Windows {
    /// Reads the node's histograms and pushes one slice per series.
    pub(crate) fn sample(&mut self, node: &Node) {
        for lat in node.introspect().latencies() {
            for kind in KINDS {
                let counts = lat.get(kind).counts();
                let s = self.series.entry((lat.behaviour, kind)).or_default();
                let slice: Vec<(u16, u64)> = counts
                    .iter()
                    .enumerate()
                    .filter_map(|(i, &c)| {
                        let before = s.last.get(i).copied().unwrap_or(0);
                        (c > before).then(|| (i as u16, c - before))
                    })
                    .collect();
                s.last = counts;
                if s.slices.len() == SLICES {
                    s.slices.pop_front();
                }
                s.slices.push_back(slice);
            }
        }
    }

    /// Every series with samples in the last minute, as wire histograms.
    pub(crate) fn snapshot(&self, node: &str) -> Vec<Histogram> {
        let mut out: Vec<Histogram> = self
            .series
            .iter()
            .filter_map(|((behaviour, kind), s)| {
                let long = merge(s.slices.iter());
                if long.is_empty() {
                    return None;
                }
                let short = merge(s.slices.iter().rev().take(SHORT));
                Some(Histogram {
                    key: key(node, behaviour, *kind),
                    last_10s: percentiles(&short),
                    last_60s: percentiles(&long),
                    buckets: drawn_buckets(&long),
                })
            })
            .collect();
        out.sort_by(|a, b| format!("{:?}", a.key).cmp(&format!("{:?}", b.key)));
        out
    }

    /// Handling-time percentiles of `behaviour` over the last minute.
    pub(crate) fn handling(&self, behaviour: &str) -> Option<Percentiles> {
        self.series
            .iter()
            .find(|((b, k), _)| *b == behaviour && *k == LatencyKind::Handling)
            .map(|(_, s)| percentiles(&merge(s.slices.iter())))
            .filter(|p| p.count > 0)
    }
}

fn key(node: &str, behaviour: &str, kind: LatencyKind) -> HistogramKey {
    let (node, behaviour) = (node.to_owned(), behaviour.to_owned());
    match kind {
        LatencyKind::Handling => HistogramKey::HandlingTime { node, behaviour },
        LatencyKind::QueueWait => HistogramKey::QueueWait { node, behaviour },
        LatencyKind::CallRtt => HistogramKey::CallRtt { node, behaviour },
    }
}

/// Sums slices into bucket counts.
fn merge<'a>(slices: impl Iterator<Item = &'a Vec<(u16, u64)>>) -> Vec<(u16, u64)> {
    let mut sum: HashMap<u16, u64> = HashMap::new();
    for slice in slices {
        for &(i, c) in slice {
            *sum.entry(i).or_default() += c;
        }
    }
    let mut v: Vec<_> = sum.into_iter().collect();
    v.sort_unstable();
    v
}

fn midpoint(bucket: u16) -> u64 {
    let (lo, hi) = LatencyHistogram::bucket_range(bucket as usize);
    if hi == u64::MAX {
        lo
    } else {
        lo + (hi - lo) / 2
    }
}

fn percentiles(buckets: &[(u16, u64)]) -> Percentiles {
    let mut h = Hdr::<u64>::new_with_bounds(1, 1 << 42, 2).expect("valid bounds");
    for &(i, c) in buckets {
        h.saturating_record_n(midpoint(i).max(1), c);
    }
    let us = |ns: u64| ns.div_ceil(1_000);
    Percentiles {
        count: h.len(),
        p50_us: us(h.value_at_quantile(0.5)),
        p90_us: us(h.value_at_quantile(0.9)),
        p99_us: us(h.value_at_quantile(0.99)),
        max_us: us(h.max()),
    }
}

/// Ranges drawn per power of two.
const DRAWN_PER_OCTAVE: f64 = 4.0;

/// Counts in quarter-octave ranges, from the first range with a count to
/// the last, empty ones between included: `(upper bound µs, count)`.
/// Ranges whose bounds round to the same microsecond are one.
fn drawn_buckets(buckets: &[(u16, u64)]) -> Vec<(u64, u64)> {
    let bin = |ns: u64| ((ns.max(1) as f64).log2() * DRAWN_PER_OCTAVE).floor() as i64;
    let upper_us = |bin: i64| {
        let ns = 2f64.powf((bin + 1) as f64 / DRAWN_PER_OCTAVE);
        (ns / 1_000.0).ceil().max(1.0) as u64
    };
    let (Some(first), Some(last)) = (buckets.first(), buckets.last()) else {
        return Vec::new();
    };
    let (lo, hi) = (bin(midpoint(first.0)), bin(midpoint(last.0)));
    let mut out: Vec<(u64, u64)> = Vec::new();
    let mut counts = buckets.iter().peekable();
    for b in lo..=hi {
        let mut n = 0;
        while let Some(&&(i, c)) = counts.peek() {
            if bin(midpoint(i)) > b {
                break;
            }
            n += c;
            counts.next();
        }
        let upper = upper_us(b);
        match out.last_mut() {
            Some((u, count)) if *u == upper => *count += n,
            _ => out.push((upper, n)),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_come_from_the_recorded_buckets() {
        let h = LatencyHistogram::default();
        for _ in 0..90 {
            h.record(10_000); // 10 µs
        }
        for _ in 0..10 {
            h.record(5_000_000); // 5 ms
        }
        let counts = h.counts();
        let buckets: Vec<(u16, u64)> = counts
            .iter()
            .enumerate()
            .filter(|(_, c)| **c > 0)
            .map(|(i, c)| (i as u16, *c))
            .collect();
        let p = percentiles(&buckets);
        assert_eq!(p.count, 100);
        assert!((9..=11).contains(&p.p50_us), "{p:?}");
        assert!((4_600..=5_400).contains(&p.p99_us), "{p:?}");
        assert!(p.max_us >= p.p99_us);
        let drawn = drawn_buckets(&buckets);
        assert_eq!(drawn.iter().map(|b| b.1).sum::<u64>(), 100);
        // From 10 µs to 5 ms: about nine octaves of four ranges each, the
        // empty ones between kept so the gap shows.
        assert!((30..=40).contains(&drawn.len()), "{drawn:?}");
        assert!(drawn.windows(2).all(|w| w[0].0 < w[1].0), "{drawn:?}");
        assert_eq!(drawn.first().map(|b| b.1), Some(90));
        assert_eq!(drawn.last().map(|b| b.1), Some(10));
        assert!(drawn[1..drawn.len() - 1].iter().all(|b| b.1 == 0));
    }
}
