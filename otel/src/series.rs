//! The `metrics` series this OS process records, held where the node's
//! agent can read them.
//!
//! [`init`](crate::init) installs one recorder that feeds both the
//! Prometheus endpoint and this store (a fan-out of the two), so a
//! `metrics::counter!("orders_total").increment(1)` in user code is one
//! call that Prometheus scrapes and `clustertop` shows: the same figures,
//! not a second bookkeeping. The agent reads [`store`] at each sample.
//!
//! # Bounds
//! At most [`MAX_SERIES`] series are held (of which at most
//! [`MAX_HISTOGRAMS`] histograms). A series registered beyond that is not
//! held here (Prometheus still gets it) and is counted in
//! [`SeriesStore::dropped`]. Memory: about 100 bytes per counter or gauge
//! plus its name and labels, and [`BUCKETS`] × 8 bytes (4.1 KiB) per
//! histogram: at most about 1.2 MiB when every slot is a histogram.
//!
//! # Cost
//! `metrics` looks a series up on every macro call; here that is one read
//! lock of this store and a hash lookup with the key's precomputed hash
//! (the fan-out does the same in the Prometheus recorder). Recording on a
//! held handle is one relaxed atomic add (counter), store (gauge), or for
//! a histogram: a bucket index from the value's exponent bits and three
//! relaxed atomics (bucket, count, sum). Reading copies every value, at
//! the agent's interval only.
//!
//! # Histograms
//! Log-linear buckets: [`SUB_BUCKETS`] per power of two from 2⁻³⁰ (about
//! 1 ns when the unit is seconds) to 2³⁴, plus one bucket for values at or
//! below 2⁻³⁰ (zero and negatives) and the last for everything above. A
//! quantile read from them is within one bucket: at most 12.5 % of the
//! value ([`bucket_bounds`]).

use metrics::{
    Counter, Gauge, GaugeFn, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder,
    SharedString, Unit,
};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The most series held per OS process.
pub const MAX_SERIES: usize = 1_000;
/// The most histograms among them.
pub const MAX_HISTOGRAMS: usize = 256;
/// Linear sub-buckets per power of two.
pub const SUB_BUCKETS: usize = 8;
/// The lowest power of two with buckets of its own.
const MIN_EXP: i32 = -30;
/// One past the highest power of two with buckets of its own.
const MAX_EXP: i32 = 34;
/// Buckets per histogram: the low bucket, then `SUB_BUCKETS` per power
/// of two.
pub const BUCKETS: usize = 1 + (MAX_EXP - MIN_EXP) as usize * SUB_BUCKETS;

/// The bucket a value falls in.
pub fn bucket_of(value: f64) -> usize {
    if value.is_nan() || value < f64::from_bits(((MIN_EXP + 1023) as u64) << 52) {
        return 0;
    }
    if value.is_infinite() {
        return BUCKETS - 1;
    }
    let bits = value.to_bits();
    let exp = ((bits >> 52) & 0x7ff) as i32 - 1023;
    let sub = ((bits >> (52 - SUB_BUCKETS.trailing_zeros())) as usize) & (SUB_BUCKETS - 1);
    let i = (exp - MIN_EXP) as usize * SUB_BUCKETS + sub + 1;
    i.min(BUCKETS - 1)
}

/// The values bucket `i` holds: at least the first, below the second (the
/// low bucket's lower bound is `-inf`, the last's upper bound `+inf`).
pub fn bucket_bounds(i: usize) -> (f64, f64) {
    let edge = |j: usize| {
        let exp = MIN_EXP + (j / SUB_BUCKETS) as i32;
        let sub = (j % SUB_BUCKETS) as f64;
        2f64.powi(exp) * (1.0 + sub / SUB_BUCKETS as f64)
    };
    match i {
        0 => (f64::NEG_INFINITY, edge(0)),
        i if i >= BUCKETS - 1 => (edge(BUCKETS - 2), f64::INFINITY),
        i => (edge(i - 1), edge(i)),
    }
}

/// What kind a series is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SeriesKind {
    /// Only goes up.
    Counter,
    /// Goes up and down.
    Gauge,
    /// A distribution of values.
    Histogram,
}

/// A series' name and labels, as held.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeriesInfo {
    /// The series name.
    pub name: String,
    /// Its labels, in the order they were given.
    pub labels: Vec<(String, String)>,
    /// Counter, gauge or histogram.
    pub kind: SeriesKind,
}

/// One series' value when read.
#[derive(Debug, Clone, PartialEq)]
pub enum Reading {
    /// A counter's total.
    Counter(u64),
    /// A gauge's value.
    Gauge(f64),
    /// A histogram's totals since start.
    Histogram {
        /// Values recorded.
        count: u64,
        /// Their sum.
        sum: f64,
        /// Non-empty buckets, as (index, count), index ascending.
        buckets: Vec<(u16, u64)>,
    },
}

/// A histogram's atomic buckets.
#[derive(Debug)]
struct LogHistogram {
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    sum: AtomicU64,
}

impl LogHistogram {
    fn new() -> Self {
        LogHistogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum: AtomicU64::new(0f64.to_bits()),
        }
    }

    fn read(&self) -> Reading {
        let buckets = self
            .buckets
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let n = b.load(Relaxed);
                (n > 0).then_some((i as u16, n))
            })
            .collect();
        Reading::Histogram {
            count: self.count.load(Relaxed),
            sum: f64::from_bits(self.sum.load(Relaxed)),
            buckets,
        }
    }
}

impl HistogramFn for LogHistogram {
    fn record(&self, value: f64) {
        self.record_many(value, 1);
    }

    fn record_many(&self, value: f64, count: usize) {
        let n = count as u64;
        self.buckets[bucket_of(value)].fetch_add(n, Relaxed);
        self.count.fetch_add(n, Relaxed);
        if value.is_finite() {
            let add = value * count as f64;
            let _ = self.sum.fetch_update(Relaxed, Relaxed, |s| {
                Some((f64::from_bits(s) + add).to_bits())
            });
        }
    }
}

/// A gauge: an `f64` in an atomic.
#[derive(Debug)]
struct AtomicGauge(AtomicU64);

impl GaugeFn for AtomicGauge {
    fn increment(&self, value: f64) {
        let _ = self.0.fetch_update(Relaxed, Relaxed, |s| {
            Some((f64::from_bits(s) + value).to_bits())
        });
    }
    fn decrement(&self, value: f64) {
        self.increment(-value);
    }
    fn set(&self, value: f64) {
        self.0.store(value.to_bits(), Relaxed);
    }
}

#[derive(Debug, Clone)]
enum Handle {
    Counter(Arc<AtomicU64>),
    Gauge(Arc<AtomicGauge>),
    Histogram(Arc<LogHistogram>),
}

#[derive(Debug)]
struct Entry {
    info: SeriesInfo,
    handle: Handle,
}

/// Series by key, hashed with the key's precomputed hash.
type KeyMap = HashMap<Key, usize, BuildHasherDefault<metrics_util::KeyHasher>>;

#[derive(Debug, Default)]
struct Inner {
    /// One map per kind: a counter and a gauge may share a name.
    index: [KeyMap; 3],
    entries: Vec<Entry>,
    histograms: usize,
}

/// The series of this OS process (see the module docs for bounds and
/// cost). Series are only added, never removed, so an index into
/// [`SeriesStore::describe`] stays valid.
#[derive(Debug, Default)]
pub struct SeriesStore {
    inner: RwLock<Inner>,
    dropped: AtomicU64,
}

static STORE: std::sync::LazyLock<SeriesStore> = std::sync::LazyLock::new(SeriesStore::default);

/// The process-wide store that [`init`](crate::init)'s recorder feeds.
pub fn store() -> &'static SeriesStore {
    &STORE
}

impl SeriesStore {
    /// Series registered but not held, because the store was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    /// How many series are held.
    pub fn len(&self) -> usize {
        self.inner.read().entries.len()
    }

    /// Whether no series is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Names, labels and kinds of the series from index `from` on.
    pub fn describe(&self, from: usize) -> Vec<SeriesInfo> {
        let inner = self.inner.read();
        inner
            .entries
            .get(from..)
            .unwrap_or_default()
            .iter()
            .map(|e| e.info.clone())
            .collect()
    }

    /// Every held series' value, in index order, into `out` (cleared
    /// first).
    pub fn read(&self, out: &mut Vec<Reading>) {
        out.clear();
        let inner = self.inner.read();
        out.extend(inner.entries.iter().map(|e| match &e.handle {
            Handle::Counter(c) => Reading::Counter(c.load(Relaxed)),
            Handle::Gauge(g) => Reading::Gauge(f64::from_bits(g.0.load(Relaxed))),
            Handle::Histogram(h) => h.read(),
        }));
    }

    /// The handle of `key`'s series of `kind`, made on first use; `None`
    /// when the store is full.
    fn handle(&self, kind: SeriesKind, key: &Key) -> Option<Handle> {
        let k = kind as usize;
        {
            let inner = self.inner.read();
            if let Some(&i) = inner.index[k].get(key) {
                return Some(inner.entries[i].handle.clone());
            }
        }
        let mut inner = self.inner.write();
        if let Some(&i) = inner.index[k].get(key) {
            return Some(inner.entries[i].handle.clone());
        }
        let full = inner.entries.len() >= MAX_SERIES
            || (kind == SeriesKind::Histogram && inner.histograms >= MAX_HISTOGRAMS);
        if full {
            self.dropped.fetch_add(1, Relaxed);
            return None;
        }
        let handle = match kind {
            SeriesKind::Counter => Handle::Counter(Arc::new(AtomicU64::new(0))),
            SeriesKind::Gauge => Handle::Gauge(Arc::new(AtomicGauge(AtomicU64::new(0)))),
            SeriesKind::Histogram => {
                inner.histograms += 1;
                Handle::Histogram(Arc::new(LogHistogram::new()))
            }
        };
        let made = handle.clone();
        let info = SeriesInfo {
            name: key.name().to_owned(),
            labels: key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect(),
            kind,
        };
        let i = inner.entries.len();
        inner.entries.push(Entry { info, handle });
        inner.index[k].insert(key.clone(), i);
        Some(made)
    }
}

/// The recorder feeding [`store`]; [`init`](crate::init) installs it
/// beside the Prometheus recorder.
#[derive(Debug, Clone, Copy, Default)]
pub struct StoreRecorder;

impl Recorder for StoreRecorder {
    fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
    fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}

    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        match store().handle(SeriesKind::Counter, key) {
            Some(Handle::Counter(c)) => Counter::from_arc(c),
            _ => Counter::noop(),
        }
    }

    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        match store().handle(SeriesKind::Gauge, key) {
            Some(Handle::Gauge(g)) => Gauge::from_arc(g),
            _ => Gauge::noop(),
        }
    }

    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        match store().handle(SeriesKind::Histogram, key) {
            Some(Handle::Histogram(h)) => Histogram::from_arc(h),
            _ => Histogram::noop(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_is_inside_its_bucket() {
        for v in [
            1e-12,
            9.31e-10,
            1e-9,
            1.0 / 1024.0 / 1024.0 / 1024.0,
            1.125,
            1e-6,
            0.001,
            0.0215,
            0.5,
            1.0,
            1.1,
            3.0,
            1e3,
            1e9,
            1.7e10,
        ] {
            let i = bucket_of(v);
            let (lo, hi) = bucket_bounds(i);
            assert!(lo <= v && v < hi, "{v}: {i} {lo}..{hi}");
            if i > 0 && i < BUCKETS - 1 {
                assert!((hi - lo) / hi <= 1.0 / SUB_BUCKETS as f64 + 1e-12, "{v}");
            }
        }
        assert_eq!(bucket_of(0.0), 0);
        assert_eq!(bucket_of(-5.0), 0);
        assert_eq!(bucket_of(f64::NAN), 0);
        assert_eq!(bucket_of(1e300), BUCKETS - 1);
        assert_eq!(bucket_of(f64::INFINITY), BUCKETS - 1);
    }

    #[test]
    fn buckets_tile_the_line() {
        for i in 1..BUCKETS {
            assert_eq!(bucket_bounds(i - 1).1, bucket_bounds(i).0, "{i}");
        }
    }
}
