//! The log ring: a tracing layer that keeps each node's most recent log
//! records, bounded in bytes, for log subscriptions.
//!
//! [`log_layer`] is installed once per OS process (through
//! `clustertop_otel::TelemetryConfig::extra_layer`, or directly on a
//! `tracing_subscriber::Registry`). Each agent registers its node's ring
//! with the layer when it starts. A record logged inside a process goes to
//! the ring of that process's node; a record logged outside any process
//! goes to the ring of the node named by its `node` field, else to the ring
//! registered first (in production there is one node per OS process).
//!
//! # Guarantees and cost
//! - A ring holds at most its configured bytes (each record is charged
//!   its strings' lengths plus a fixed overhead); the oldest records are
//!   evicted first, and evictions are counted.
//! - Every record gets a sequence number; readers keep a cursor, so a
//!   reader that falls behind learns how many records it missed.
//! - Capturing a record formats its fields into strings and takes the
//!   ring's lock for a push: a few microseconds. Only records at or above
//!   the layer's level are captured (its filter keeps finer callsites
//!   disabled).

use clustertop_proto::{LogFilter, LogLevel, LogRecord, PidRef};
use parking_lot::{Mutex, RwLock};
use std::collections::VecDeque;
use std::sync::Arc;
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::LevelFilter;
use tracing_subscriber::layer::Context;

/// Bytes charged per record on top of its strings.
const RECORD_OVERHEAD: usize = std::mem::size_of::<LogRecord>() + 48;

/// One node's ring.
#[derive(Debug)]
pub(crate) struct LogRing {
    node: String,
    inner: Mutex<RingInner>,
    /// The node itself, once its agent runs: to name the node of a pid
    /// written in a record (`<1.8.40253>`: index 1 of its node table).
    resolver: parking_lot::RwLock<Option<clustertop_runtime::Node>>,
}

#[derive(Debug)]
struct RingInner {
    records: VecDeque<(u64, Arc<LogRecord>, usize)>,
    bytes: usize,
    capacity: usize,
    next_seq: u64,
    evicted: u64,
}

/// What a reader got: the records past its cursor that match its filter,
/// its new cursor, and how many records it missed because they were
/// evicted before it read them.
#[derive(Debug)]
pub(crate) struct Read {
    pub(crate) records: Vec<LogRecord>,
    pub(crate) cursor: u64,
    pub(crate) missed: u64,
}

impl LogRing {
    fn new(node: String, capacity: usize) -> Self {
        LogRing {
            node,
            resolver: parking_lot::RwLock::new(None),
            inner: Mutex::new(RingInner {
                records: VecDeque::new(),
                bytes: 0,
                capacity,
                next_seq: 0,
                evicted: 0,
            }),
        }
    }

    fn push(&self, record: LogRecord) {
        let size = charge(&record);
        let mut r = self.inner.lock();
        if size > r.capacity {
            r.evicted += 1;
            r.next_seq += 1;
            return;
        }
        while r.bytes + size > r.capacity {
            match r.records.pop_front() {
                Some((_, _, s)) => {
                    r.bytes -= s;
                    r.evicted += 1;
                }
                None => break,
            }
        }
        let seq = r.next_seq;
        r.next_seq += 1;
        r.bytes += size;
        r.records.push_back((seq, Arc::new(record), size));
    }

    /// The last `n` records that match `filter`, oldest first, and the
    /// cursor just past the newest record: what a subscription's backlog
    /// holds and where its new records start, read under one lock so that
    /// no record is in both or in neither.
    pub(crate) fn tail(&self, filter: &LogFilter, n: usize) -> (Vec<LogRecord>, u64) {
        let r = self.inner.lock();
        let mut records: Vec<LogRecord> = r
            .records
            .iter()
            .rev()
            .filter(|(_, rec, _)| filter.matches(rec))
            .take(n)
            .map(|(_, rec, _)| LogRecord::clone(rec))
            .collect();
        records.reverse();
        (records, r.next_seq)
    }

    /// Up to `max` records from `cursor` on that match `filter`.
    pub(crate) fn read(&self, cursor: u64, filter: &LogFilter, max: usize) -> Read {
        let r = self.inner.lock();
        let oldest = r.records.front().map_or(r.next_seq, |e| e.0);
        let missed = oldest.saturating_sub(cursor);
        let start = cursor.max(oldest);
        let skip = (start - oldest) as usize;
        let mut records = Vec::new();
        let mut cursor = start;
        for (seq, rec, _) in r.records.iter().skip(skip) {
            if records.len() >= max {
                break;
            }
            cursor = seq + 1;
            if filter.matches(rec) {
                records.push(LogRecord::clone(rec));
            }
        }
        if records.len() < max {
            cursor = r.next_seq;
        }
        Read {
            records,
            cursor,
            missed,
        }
    }

    /// Bytes held now, and records evicted since start.
    pub(crate) fn usage(&self) -> (usize, usize, u64) {
        let r = self.inner.lock();
        (r.bytes, r.records.len(), r.evicted)
    }
}

fn charge(r: &LogRecord) -> usize {
    RECORD_OVERHEAD
        + r.node.len()
        + r.target.len()
        + r.message.len()
        + r.process.as_ref().map_or(0, String::len)
        + r.pid.as_ref().map_or(0, |p| p.node.len())
        + r.trace_id.as_ref().map_or(0, String::len)
        + r.fields
            .iter()
            .map(|(k, v)| k.len() + v.len() + 48)
            .sum::<usize>()
}

/// The rings of every agent of this OS process.
static RINGS: RwLock<Vec<Arc<LogRing>>> = RwLock::new(Vec::new());

/// Registers (or finds) the ring of `node`, with `capacity` bytes.
pub(crate) fn ring_for(node: &str, capacity: usize) -> Arc<LogRing> {
    let mut rings = RINGS.write();
    if let Some(r) = rings.iter().find(|r| r.node == node) {
        r.inner.lock().capacity = capacity;
        return r.clone();
    }
    let ring = Arc::new(LogRing::new(node.to_owned(), capacity));
    rings.push(ring.clone());
    ring
}

/// Lets the ring of `node` name the nodes of the pids its records carry.
pub(crate) fn resolve_pids_with(node: &clustertop_runtime::Node) {
    if let Some(r) = RINGS.read().iter().find(|r| r.node == node.name()) {
        *r.resolver.write() = Some(node.clone());
    }
}

/// Pids written in `text` by the runtime (`<I.S.C>`: node index, serial,
/// creation, as in the BEAM's `<0.84.0>`) in their full form,
/// `<name@host.S.C>`, which names the node wherever the record is read.
/// Index 0 is `node`; others are named by `node_at` (the node's table).
/// Text with no `<` is returned as it is, without a copy.
pub(crate) fn full_pids<'a>(
    text: &'a str,
    node: &str,
    node_at: impl Fn(u32) -> Option<String>,
) -> std::borrow::Cow<'a, str> {
    if !text.contains('<') {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    let mut rest = text;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let replaced = after.find('>').and_then(|close| {
            let mut parts = after[..close].split('.');
            let index: u32 = parts.next()?.parse().ok()?;
            let serial: u64 = parts.next()?.parse().ok()?;
            let creation: u32 = parts.next()?.parse().ok()?;
            if parts.next().is_some() {
                return None;
            }
            let node = match index {
                0 => node.to_owned(),
                _ => node_at(index)?,
            };
            Some((format!("<{node}.{serial}.{creation}>"), close))
        });
        match replaced {
            Some((full, close)) => {
                out.push_str(&full);
                rest = &after[close + 1..];
            }
            None => {
                out.push('<');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    std::borrow::Cow::Owned(out)
}

/// Forgets the ring of `node` (its agent stopped).
pub(crate) fn remove_ring(node: &str) {
    RINGS.write().retain(|r| r.node != node);
}

/// The tracing layer that feeds the rings, capturing records at `level`
/// and above. Install it once per OS process, for example as
/// `clustertop_otel::TelemetryConfig::extra_layer`.
pub fn log_layer(level: LogLevel) -> clustertop_otel::ExtraLayer {
    let filter = match level {
        LogLevel::Trace => LevelFilter::TRACE,
        LogLevel::Debug => LevelFilter::DEBUG,
        LogLevel::Info => LevelFilter::INFO,
        LogLevel::Warn => LevelFilter::WARN,
        LogLevel::Error => LevelFilter::ERROR,
    };
    Box::new(RingLayer.with_filter(filter))
}

/// Captures events into the rings.
struct RingLayer;

#[derive(Default)]
struct Fields {
    message: Option<String>,
    node: Option<String>,
    fields: Vec<(String, String)>,
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, format!("{value:?}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, value.to_owned());
    }
}

impl Fields {
    fn put(&mut self, field: &Field, text: String) {
        match field.name() {
            "message" => self.message = Some(text),
            "node" => {
                self.node = Some(text.clone());
                self.fields.push(("node".to_owned(), text));
            }
            name => self.fields.push((name.to_owned(), text)),
        }
    }
}

fn level_of(level: &tracing::Level) -> LogLevel {
    match *level {
        tracing::Level::TRACE => LogLevel::Trace,
        tracing::Level::DEBUG => LogLevel::Debug,
        tracing::Level::INFO => LogLevel::Info,
        tracing::Level::WARN => LogLevel::Warn,
        tracing::Level::ERROR => LogLevel::Error,
    }
}

impl<S: Subscriber> Layer<S> for RingLayer {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let ring = {
            let rings = RINGS.read();
            if rings.is_empty() {
                return;
            }
            let current = clustertop_runtime::current_process();
            let mut fields = Fields::default();
            event.record(&mut fields);
            let wanted = current
                .as_ref()
                .map(|c| c.node.as_str())
                .or(fields.node.as_deref());
            let ring = wanted
                .and_then(|n| rings.iter().find(|r| r.node == n))
                .unwrap_or(&rings[0])
                .clone();
            let meta = event.metadata();
            let (pid, process) = match current {
                Some(c) => (
                    Some(PidRef {
                        node: c.node,
                        serial: c.id.serial(),
                        creation: c.id.creation(),
                    }),
                    Some(c.name.unwrap_or_else(|| c.behaviour.to_owned())),
                ),
                None => (None, None),
            };
            let message = fields.message.unwrap_or_default();
            let full = |text: &str| -> Option<String> {
                match full_pids(text, &ring.node, |i| {
                    ring.resolver
                        .read()
                        .as_ref()
                        .and_then(|n| n.dist().node_at(i))
                }) {
                    std::borrow::Cow::Borrowed(_) => None,
                    std::borrow::Cow::Owned(full) => Some(full),
                }
            };
            let record = LogRecord {
                at_unix_us: clustertop_proto::time::unix_us(),
                node: ring.node.clone(),
                level: level_of(meta.level()),
                target: meta.target().to_owned(),
                pid,
                process,
                message: full(&message).unwrap_or(message),
                fields: fields
                    .fields
                    .into_iter()
                    .map(|(k, v)| {
                        let v = full(&v).unwrap_or(v);
                        (k, v)
                    })
                    .collect(),
                trace_id: clustertop_otel::current_trace_ids().map(|(t, _)| t),
            };
            (ring, record)
        };
        ring.0.push(ring.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(i: usize) -> LogRecord {
        LogRecord {
            at_unix_us: i as u64,
            node: "a@h".into(),
            level: if i % 2 == 0 {
                LogLevel::Info
            } else {
                LogLevel::Warn
            },
            target: "t".into(),
            pid: None,
            process: None,
            message: format!("record {i}"),
            fields: vec![],
            trace_id: None,
        }
    }

    #[test]
    fn stays_within_its_bytes_and_counts_evictions() {
        let ring = LogRing::new("a@h".into(), 10_000);
        for i in 0..1_000 {
            ring.push(record(i));
        }
        let (bytes, len, evicted) = ring.usage();
        assert!(bytes <= 10_000, "{bytes}");
        assert_eq!(len as u64 + evicted, 1_000);
        assert!(len > 10, "{len} records kept");
    }

    #[test]
    fn pids_in_a_record_take_their_full_form() {
        let table = |i: u32| (i == 2).then(|| "b@h".to_owned());
        assert_eq!(
            full_pids("exited pid=<0.6.25336> <x> <1.2> <2.9.7>", "a@h", table),
            "exited pid=<a@h.6.25336> <x> <1.2> <b@h.9.7>"
        );
        // An index the node table does not name: kept as written.
        assert_eq!(full_pids("<3.4.5>", "a@h", table), "<3.4.5>");
        assert!(matches!(
            full_pids("no pid", "a@h", table),
            std::borrow::Cow::Borrowed(_)
        ));
    }

    #[test]
    fn a_reader_gets_what_follows_its_cursor_and_learns_what_it_missed() {
        let ring = LogRing::new("a@h".into(), 1 << 20);
        for i in 0..10 {
            ring.push(record(i));
        }
        let warn = LogFilter {
            min_level: LogLevel::Warn,
            ..LogFilter::default()
        };
        let read = ring.read(4, &warn, 100);
        let got: Vec<_> = read.records.iter().map(|r| r.at_unix_us).collect();
        assert_eq!(got, [5, 7, 9]);
        assert_eq!((read.cursor, read.missed), (10, 0));
        // A bounded read resumes where it stopped.
        let first = ring.read(0, &LogFilter::default(), 3);
        assert_eq!(first.records.len(), 3);
        let rest = ring.read(first.cursor, &LogFilter::default(), 100);
        assert_eq!(rest.records.len(), 7);

        // A backlog: the last two warnings, and the cursor of what follows.
        let (back, next) = ring.tail(&warn, 2);
        let got: Vec<_> = back.iter().map(|r| r.at_unix_us).collect();
        assert_eq!((got, next), (vec![7, 9], 10));
        assert!(ring.tail(&warn, 0).0.is_empty());
        assert_eq!(ring.tail(&warn, 50).0.len(), 5);
        ring.push(record(11));
        assert!(ring.read(next, &warn, 100).records.len() == 1);

        let small = LogRing::new("a@h".into(), 2 * charge(&record(0)) + 8);
        for i in 0..10 {
            small.push(record(i));
        }
        let read = small.read(0, &LogFilter::default(), 100);
        assert_eq!(read.missed, 8);
        assert_eq!(read.records.len(), 2);
    }
}
