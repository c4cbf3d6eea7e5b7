//! Telemetry events in the spirit of Erlang's `:telemetry`: code emits
//! named events with measurements and metadata; handlers attached by id
//! receive them. [`span`] wraps a piece of work in `start` / `stop` (or
//! `exception`) events and a tracing span; [`attach_metrics`] turns events
//! into `metrics` series, which the Prometheus endpoint serves.
//!
//! ```
//! use clustertop_otel::telemetry;
//!
//! // The article's MetricsExample.
//! fn process_item(item_id: u64) -> &'static str {
//!     let id = item_id.to_string();
//!     telemetry::span(&["myapp", "item", "process"], &[("item_id", id.as_str())], || {
//!         "ok" // processing logic
//!     })
//! }
//! assert_eq!(process_item(7), "ok");
//! ```
//!
//! Every executed event is counted by name ([`event_counts`]), for the
//! agent to show: at most [`MAX_EVENT_NAMES`] names are counted, later
//! names only in the total of the names left out.
//!
//! # Cost
//! With no handler attached, `execute` takes two uncontended read locks
//! (handlers, then counts), hashes the name's segments, and adds one to a
//! relaxed atomic; the first event of a name takes the counts' write lock. Handlers run synchronously in the emitting
//! thread; a handler that panics is detached (with a log line), as
//! `:telemetry` does.

use parking_lot::RwLock;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::sync::Arc;
use std::sync::LazyLock;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

/// One event as handlers see it.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    /// The event name, by segments: `["myapp", "item", "process", "stop"]`.
    pub name: &'a [&'a str],
    /// Numeric measurements; durations are in seconds.
    pub measurements: &'a [(&'a str, f64)],
    /// Descriptive metadata.
    pub metadata: &'a [(&'a str, &'a str)],
}

type HandlerFn = dyn Fn(&Event<'_>) + Send + Sync;

struct Handler {
    id: String,
    events: Vec<Vec<String>>,
    f: Arc<HandlerFn>,
}

static HANDLERS: RwLock<Vec<Handler>> = RwLock::new(Vec::new());

/// A handler id is taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a telemetry handler with id {0:?} is attached already")]
pub struct AlreadyAttached(pub String);

/// Attaches `handler` under `id` to the events named in `events`.
///
/// # Errors
/// [`AlreadyAttached`] if `id` is in use.
pub fn attach(
    id: &str,
    events: &[&[&str]],
    handler: impl Fn(&Event<'_>) + Send + Sync + 'static,
) -> Result<(), AlreadyAttached> {
    let mut handlers = HANDLERS.write();
    if handlers.iter().any(|h| h.id == id) {
        return Err(AlreadyAttached(id.to_owned()));
    }
    handlers.push(Handler {
        id: id.to_owned(),
        events: events
            .iter()
            .map(|e| e.iter().map(|s| (*s).to_owned()).collect())
            .collect(),
        f: Arc::new(handler),
    });
    Ok(())
}

/// Detaches the handler `id`; `false` if there was none.
pub fn detach(id: &str) -> bool {
    let mut handlers = HANDLERS.write();
    let before = handlers.len();
    handlers.retain(|h| h.id != id);
    handlers.len() != before
}

fn same_name(a: &[String], b: &[&str]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x == y)
}

/// The most distinct event names [`event_counts`] holds.
pub const MAX_EVENT_NAMES: usize = 256;

/// A counted name: its segments and how often it was executed.
struct Counted {
    name: Vec<String>,
    count: AtomicU64,
}

#[derive(Default)]
struct Counts {
    /// Names by the hash of their segments.
    by_hash: HashMap<u64, Counted>,
    /// Executions of names beyond the bound (or of a name whose hash
    /// another name has).
    left_out: u64,
}

static COUNTS: LazyLock<RwLock<Counts>> = LazyLock::new(Default::default);

fn name_hash(name: &[&str]) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    for s in name {
        s.hash(&mut h);
    }
    h.finish()
}

fn count(name: &[&str]) {
    let hash = name_hash(name);
    {
        let counts = COUNTS.read();
        if let Some(c) = counts.by_hash.get(&hash)
            && same_name(&c.name, name)
        {
            c.count.fetch_add(1, Relaxed);
            return;
        }
    }
    let mut counts = COUNTS.write();
    match counts.by_hash.get(&hash) {
        Some(c) if same_name(&c.name, name) => {
            c.count.fetch_add(1, Relaxed);
        }
        None if counts.by_hash.len() < MAX_EVENT_NAMES => {
            let name = name.iter().map(|s| (*s).to_owned()).collect();
            counts.by_hash.insert(
                hash,
                Counted {
                    name,
                    count: AtomicU64::new(1),
                },
            );
        }
        _ => counts.left_out += 1,
    }
}

/// How often each event name was executed in this OS process, as
/// (`a.b.c`, count) sorted by name, and the executions of names left out
/// beyond [`MAX_EVENT_NAMES`].
pub fn event_counts() -> (Vec<(String, u64)>, u64) {
    let counts = COUNTS.read();
    let mut out: Vec<(String, u64)> = counts
        .by_hash
        .values()
        .map(|c| (c.name.join("."), c.count.load(Relaxed)))
        .collect();
    out.sort();
    (out, counts.left_out)
}

/// Emits an event to every handler attached to its name.
pub fn execute(name: &[&str], measurements: &[(&str, f64)], metadata: &[(&str, &str)]) {
    count(name);
    let targets: Vec<(String, Arc<HandlerFn>)> = HANDLERS
        .read()
        .iter()
        .filter(|h| h.events.iter().any(|e| same_name(e, name)))
        .map(|h| (h.id.clone(), h.f.clone()))
        .collect();
    let event = Event {
        name,
        measurements,
        metadata,
    };
    for (id, f) in targets {
        if catch_unwind(AssertUnwindSafe(|| f(&event))).is_err() {
            tracing::warn!(handler = %id, event = %name.join("."), "telemetry handler panicked; detached");
            detach(&id);
        }
    }
}

fn with_suffix<'a>(prefix: &[&'a str], suffix: &'a str) -> Vec<&'a str> {
    let mut name = prefix.to_vec();
    name.push(suffix);
    name
}

/// Runs `f` between `prefix ++ [start]` and `prefix ++ [stop]` events
/// (`exception` if it panics; the panic continues), inside a tracing span
/// named after the prefix. `start` carries `system_time` (seconds since
/// the Unix epoch), `stop` and `exception` carry `duration` (seconds).
pub fn span<R>(prefix: &[&str], metadata: &[(&str, &str)], f: impl FnOnce() -> R) -> R {
    let name = prefix.join(".");
    let tracing_span = tracing::info_span!("telemetry", name = %name);
    let _entered = tracing_span.enter();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    execute(
        &with_suffix(prefix, "start"),
        &[("system_time", now)],
        metadata,
    );
    let started = Instant::now();
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => {
            let d = started.elapsed().as_secs_f64();
            execute(&with_suffix(prefix, "stop"), &[("duration", d)], metadata);
            r
        }
        Err(payload) => {
            let d = started.elapsed().as_secs_f64();
            execute(
                &with_suffix(prefix, "exception"),
                &[("duration", d)],
                metadata,
            );
            resume_unwind(payload)
        }
    }
}

/// Feeds the events named in `events` to the `metrics` recorder: every
/// measurement `m` of event `a.b.c` is recorded in the histogram `a_b_c_m`
/// (a `duration` one is named `a_b_c_duration_seconds`), and every event
/// counts in `a_b_c_total`. Metadata is not used as labels: it may hold
/// unbounded values such as ids.
///
/// # Errors
/// [`AlreadyAttached`] if `id` is in use.
pub fn attach_metrics(id: &str, events: &[&[&str]]) -> Result<(), AlreadyAttached> {
    attach(id, events, |e| {
        let base = e.name.join("_");
        metrics::counter!(format!("{base}_total")).increment(1);
        for (m, v) in e.measurements {
            let series = if *m == "duration" {
                format!("{base}_duration_seconds")
            } else {
                format!("{base}_{m}")
            };
            metrics::histogram!(series).record(*v);
        }
    })
}
