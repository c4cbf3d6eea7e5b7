//! Lock-free latency histograms per behaviour: how long GenServer handlers
//! run, how long their messages wait in the mailbox, and how long callers
//! wait for a reply.
//!
//! The runtime only counts; an observer (the agent) reads the cumulative
//! bucket counts at an interval, takes differences and builds windows and
//! percentiles from them. Counts are monotonic, so a missed read loses
//! nothing.
//!
//! # Buckets
//! Log-linear over nanoseconds: exact below 32 ns, then 16 buckets per
//! power of two, so a bucket's width is at most 1/16 of its lower bound
//! (a value is known within 6.25 %). Values above 2^40 ns (about 18
//! minutes) land in the last bucket. 608 buckets, 4.75 KiB per histogram.
//!
//! # Cost
//! Recording is one relaxed `fetch_add` on a bucket (a few nanoseconds;
//! servers of one behaviour on different cores can share a cache line).
//! Each GenServer looks its behaviour's histograms up once, at start; a
//! completed call finds them in a small per-thread cache, or else in a
//! read-locked map ([`Behaviours::record_call`]).

use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::Duration;

const SUB_BITS: u32 = 4;
const SUB: usize = 1 << SUB_BITS;
const LINEAR: usize = 32;
const MAX_EXP: u32 = 40;
/// Number of buckets of a [`LatencyHistogram`].
pub const LATENCY_BUCKETS: usize = LINEAR + (MAX_EXP as usize - 5 + 1) * SUB;

/// Counts of durations in log-linear buckets (see the module docs).
pub struct LatencyHistogram {
    counts: Box<[AtomicU64]>,
}

impl std::fmt::Debug for LatencyHistogram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LatencyHistogram")
            .field("count", &self.counts().iter().sum::<u64>())
            .finish()
    }
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: (0..LATENCY_BUCKETS).map(|_| AtomicU64::new(0)).collect(),
        }
    }
}

impl LatencyHistogram {
    /// Counts one duration of `ns` nanoseconds.
    #[inline]
    pub fn record(&self, ns: u64) {
        self.counts[bucket_of(ns)].fetch_add(1, Relaxed);
    }

    /// The cumulative count of every bucket (monotonic).
    pub fn counts(&self) -> Vec<u64> {
        self.counts.iter().map(|c| c.load(Relaxed)).collect()
    }

    /// The smallest and largest value, in nanoseconds, that bucket `index`
    /// holds.
    pub fn bucket_range(index: usize) -> (u64, u64) {
        if index < LINEAR {
            return (index as u64, index as u64);
        }
        let e = ((index - LINEAR) / SUB) as u32 + 5;
        let sub = ((index - LINEAR) % SUB) as u64;
        let width = 1u64 << (e - SUB_BITS);
        let low = (SUB as u64 + sub) * width;
        if index == LATENCY_BUCKETS - 1 {
            (low, u64::MAX)
        } else {
            (low, low + width - 1)
        }
    }
}

/// The bucket a value of `ns` falls in.
#[inline]
fn bucket_of(ns: u64) -> usize {
    if ns < LINEAR as u64 {
        return ns as usize;
    }
    let e = 63 - ns.leading_zeros();
    if e > MAX_EXP {
        return LATENCY_BUCKETS - 1;
    }
    let sub = ((ns >> (e - SUB_BITS)) as usize) & (SUB - 1);
    LINEAR + (e as usize - 5) * SUB + sub
}

/// What a histogram measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LatencyKind {
    /// Time a GenServer callback took, from taking the message to returning.
    Handling,
    /// Time a message waited in a GenServer's mailbox.
    QueueWait,
    /// Time a caller waited for a GenServer's reply (local or remote).
    CallRtt,
}

/// The histograms of one behaviour (a GenServer type) on one node.
#[derive(Debug)]
pub struct BehaviourLatency {
    /// The behaviour's short type name.
    pub behaviour: &'static str,
    /// Handler durations.
    pub handling: LatencyHistogram,
    /// Mailbox waits.
    pub queue_wait: LatencyHistogram,
    /// Call round trips seen by callers on this node.
    pub call_rtt: LatencyHistogram,
}

impl BehaviourLatency {
    pub(crate) fn new(behaviour: &'static str) -> Arc<Self> {
        Arc::new(BehaviourLatency {
            behaviour,
            handling: LatencyHistogram::default(),
            queue_wait: LatencyHistogram::default(),
            call_rtt: LatencyHistogram::default(),
        })
    }

    /// The histogram of `kind`.
    pub fn get(&self, kind: LatencyKind) -> &LatencyHistogram {
        match kind {
            LatencyKind::Handling => &self.handling,
            LatencyKind::QueueWait => &self.queue_wait,
            LatencyKind::CallRtt => &self.call_rtt,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_lands_in_a_bucket_that_holds_it() {
        let mut v = 0u64;
        while v < (1 << 42) {
            let b = bucket_of(v);
            let (lo, hi) = LatencyHistogram::bucket_range(b);
            assert!(lo <= v && v <= hi, "{v} in bucket {b} = {lo}..={hi}");
            if b < LATENCY_BUCKETS - 1 {
                assert!(hi - lo <= lo / 16, "bucket {b} too wide: {lo}..={hi}");
            }
            v = v * 9 / 8 + 1;
        }
        assert_eq!(bucket_of(u64::MAX), LATENCY_BUCKETS - 1);
    }

    #[test]
    fn buckets_are_contiguous() {
        for i in 1..LATENCY_BUCKETS {
            let (_, prev_hi) = LatencyHistogram::bucket_range(i - 1);
            let (lo, _) = LatencyHistogram::bucket_range(i);
            assert_eq!(prev_hi + 1, lo, "gap before bucket {i}");
        }
    }
}

/// A behaviour's call-duration instruments: the metrics histogram and the
/// latency histograms an observer reads.
type CallInstruments = (metrics::Histogram, Arc<BehaviourLatency>);

/// A node's per-behaviour figures: each behaviour's latency histograms and
/// its `clustertop_call_duration_seconds` histogram (labelled with the node
/// and the behaviour), created on the behaviour's first use.
#[derive(Default)]
pub(crate) struct Behaviours {
    calls: RwLock<HashMap<&'static str, CallInstruments>>,
    latency: RwLock<HashMap<&'static str, Arc<BehaviourLatency>>>,
}

impl std::fmt::Debug for Behaviours {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Behaviours")
            .field("behaviours", &self.latency.read().len())
            .finish()
    }
}

impl Behaviours {
    /// The latency histograms of `behaviour`, created on first use.
    pub(crate) fn latency_for(&self, behaviour: &'static str) -> Arc<BehaviourLatency> {
        if let Some(l) = self.latency.read().get(behaviour) {
            return l.clone();
        }
        self.latency
            .write()
            .entry(behaviour)
            .or_insert_with(|| BehaviourLatency::new(behaviour))
            .clone()
    }

    /// Every behaviour's latency histograms, in no order.
    pub(crate) fn all(&self) -> Vec<Arc<BehaviourLatency>> {
        self.latency.read().values().cloned().collect()
    }

    /// Records a call's round trip to a server of type `S` on the node
    /// named `node` (whose figures these are).
    ///
    /// Cost: a lookup in a 4-entry per-thread cache of the behaviours'
    /// instruments (by these figures' address and the type); on a miss, one
    /// read-locked map lookup (both instruments created on the behaviour's
    /// first call). The cache holds a `Weak` of these figures, so their
    /// address is never reused while an entry names it.
    pub(crate) fn record_call<S: ?Sized>(self: &Arc<Self>, node: &str, elapsed: Duration) {
        type Entry = (Weak<Behaviours>, usize, CallInstruments);
        thread_local! {
            static CACHE: std::cell::RefCell<([Option<Entry>; 4], usize)> =
                const { std::cell::RefCell::new(([None, None, None, None], 0)) };
        }
        let record = |(h, l): &CallInstruments| {
            h.record(elapsed.as_secs_f64());
            l.call_rtt.record(elapsed.as_nanos() as u64);
        };
        let me = Arc::as_ptr(self);
        let ty = std::any::type_name::<S>().as_ptr() as usize;
        let hit = CACHE.with(|c| {
            let c = c.borrow();
            c.0.iter().flatten().find_map(|(w, t, both)| {
                (*t == ty && std::ptr::eq(w.as_ptr(), me)).then(|| record(both))
            })
        });
        if hit.is_some() {
            return;
        }
        let behaviour = crate::id::short_type_name::<S>();
        let found = self.calls.read().get(behaviour).cloned();
        let both = found.unwrap_or_else(|| {
            let h = metrics::histogram!(
                "clustertop_call_duration_seconds",
                "node" => node.to_owned(),
                "behaviour" => behaviour
            );
            let both = (h, self.latency_for(behaviour));
            self.calls.write().entry(behaviour).or_insert(both).clone()
        });
        record(&both);
        CACHE.with(|c| {
            let mut c = c.borrow_mut();
            let slot = c.1 % 4;
            c.1 = c.1.wrapping_add(1);
            c.0[slot] = Some((Arc::downgrade(self), ty, both));
        });
    }
}
