//! The sampler: reads the node's process table at an interval and turns
//! the runtime's monotonic counters into rates and rankings.
//!
//! # Cost
//! One scan of the node's dense counter slabs
//! ([`Introspect::scan`](clustertop_runtime::Introspect::scan): 128
//! sequential bytes per process, and a mailbox head peek only for
//! non-empty mailboxes) into a compact row of 60 bytes per process, in
//! slot order, and a merge with the previous sample, slot by slot, to take
//! differences: no sort. Names (a lock per process) are read only for the
//! rows a request returns. At one million processes that is 61 MiB for a
//! sample (60-byte rows, with a sixteenth more room for processes spawned
//! meanwhile; twice that for the moment the new one is built beside the
//! old); see bench/README.md for the measured time.
//!
//! Node-wide message totals are the sums of per-process differences, so
//! they only grow; what a process receives after the last sample before it
//! exits is not counted.
//!
//! # One home for a row
//! [`Sample::process_row`] is the only place a wire [`ProcessRow`] is
//! built: every figure in it comes from the sample, so a row never mixes
//! sample-time rates with later readings. Queries filter (name, mailbox,
//! growth, system) and order ([`clustertop_proto::SortKey::compare`]) rows here, at the
//! source.

use clustertop_proto::{
    PidRef, ProcessFigures, ProcessFilter, ProcessQuery, ProcessRow, ProcessStatus, SortFields,
};
use clustertop_runtime::{Node, ProcessId};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// `tag` layout of a [`Row`]: the behaviour's index in the low 12 bits,
/// then whether its rates are known, the system flag, and the status in
/// the top two bits.
const BEHAVIOUR_MASK: u16 = 0x0fff;
/// The index of a behaviour the sample has no name for (past the 4,095
/// kept: a node with that many behaviours is not one we expect).
const UNKNOWN_BEHAVIOUR: u16 = BEHAVIOUR_MASK;
/// Set when the row's rates come from two readings (this sample's and the
/// previous one's); a process first seen at this sample has none yet.
const RATED: u16 = 1 << 12;
const SYSTEM: u16 = 1 << 13;
const STATUS_SHIFT: u16 = 14;
const STATUS_MASK: u16 = 0b11 << STATUS_SHIFT;
/// Shares (utilisation, CPU) are kept in quarters of a per mille's 4: one
/// byte for 0–1000 at 0.4 % resolution.
const SHARE_UNIT: u16 = 4;
const NO_OLDEST: u32 = u32::MAX;
/// The unit a [`Row`] keeps memory in, bytes.
const MEMORY_UNIT: u64 = 16;

fn memory_units(bytes: u64) -> u32 {
    bytes.div_ceil(MEMORY_UNIT).min(u64::from(u32::MAX)) as u32
}

/// One process in one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Row {
    /// The serial, in two halves: a row of 4-byte fields packs to 60
    /// bytes, not 64.
    serial: [u32; 2],
    /// Where its counters live (see `ProcessCounters::slot`): samples are
    /// in slot order.
    slot: u32,
    recv_lo: u32,
    sent_lo: u32,
    busy_us_lo: u32,
    util_us_lo: u32,
    polls_lo: u32,
    pub(crate) mailbox: u32,
    /// Messages per second, negative when draining.
    pub(crate) growth: i32,
    /// Messages handled per second.
    pub(crate) rate: u32,
    /// Polls per second.
    polls_per_s: u32,
    oldest_ms: u32,
    /// Bytes held (see `ProcessInfo::memory`), in 16-byte units rounded
    /// up (so up to 64 GiB in 4 bytes).
    memory: u32,
    /// Behaviour, system flag and status (see `BEHAVIOUR_MASK`).
    tag: u16,
    /// Utilisation, per mille / `SHARE_UNIT`.
    util: u8,
    /// CPU (poll-time) share, per mille / `SHARE_UNIT`.
    cpu: u8,
}

const _: () = assert!(std::mem::size_of::<Row>() == 60);

fn halves(serial: u64) -> [u32; 2] {
    [serial as u32, (serial >> 32) as u32]
}

impl Row {
    pub(crate) fn serial(&self) -> u64 {
        u64::from(self.serial[0]) | u64::from(self.serial[1]) << 32
    }
    pub(crate) fn cpu_permille(&self) -> u16 {
        u16::from(self.cpu) * SHARE_UNIT
    }
    pub(crate) fn util_permille(&self) -> u16 {
        u16::from(self.util) * SHARE_UNIT
    }
    /// The index of its behaviour in [`Sample::behaviours`].
    pub(crate) fn behaviour_index(&self) -> usize {
        usize::from(self.tag & BEHAVIOUR_MASK)
    }
    pub(crate) fn memory_bytes(&self) -> u64 {
        u64::from(self.memory) * MEMORY_UNIT
    }
    pub(crate) fn system(&self) -> bool {
        self.tag & SYSTEM != 0
    }
    /// Whether its rates and shares were measured between two samples.
    pub(crate) fn rated(&self) -> bool {
        self.tag & RATED != 0
    }
    pub(crate) fn oldest_ms(&self) -> Option<u32> {
        (self.oldest_ms != NO_OLDEST).then_some(self.oldest_ms)
    }
    pub(crate) fn status(&self) -> ProcessStatus {
        match (self.tag & STATUS_MASK) >> STATUS_SHIFT {
            1 => ProcessStatus::Running,
            2 => ProcessStatus::Exiting,
            _ => ProcessStatus::Waiting,
        }
    }
    fn oldest_us(&self) -> Option<u64> {
        self.oldest_ms().map(|ms| u64::from(ms) * 1_000)
    }

    /// A row for a process the last sample did not see (spawned since):
    /// its figures now, with no rates yet.
    pub(crate) fn unsampled(info: &clustertop_runtime::ProcessInfo) -> Row {
        Row::from_figures(
            &Figures {
                serial: info.id.serial(),
                received: info.received,
                sent: info.sent,
                busy: info.busy,
                utilised: info.utilised,
                polls: info.polls,
                mailbox_len: info.mailbox_len,
                memory: info.memory,
                oldest: info.oldest_message_age,
                status: info.status,
                system: info.system,
            },
            u32::MAX,
            UNKNOWN_BEHAVIOUR,
        )
    }

    /// A row of `f`'s figures at `slot`, its behaviour `behaviour`, with no
    /// rates yet.
    #[inline]
    fn from_figures(f: &Figures, slot: u32, behaviour: u16) -> Row {
        Row {
            serial: halves(f.serial),
            slot,
            recv_lo: f.received as u32,
            sent_lo: f.sent as u32,
            busy_us_lo: f.busy.as_micros() as u32,
            util_us_lo: f.utilised.as_micros() as u32,
            polls_lo: f.polls as u32,
            mailbox: f.mailbox_len.min(u64::from(u32::MAX)) as u32,
            growth: 0,
            rate: 0,
            polls_per_s: 0,
            memory: memory_units(f.memory),
            util: 0,
            cpu: 0,
            oldest_ms: f.oldest.map_or(NO_OLDEST, |a| {
                a.as_millis().min(u128::from(NO_OLDEST - 1)) as u32
            }),
            tag: behaviour | status_bits(f.status) | if f.system { SYSTEM } else { 0 },
        }
    }
}

/// The figures of one process a row is built from, as the runtime's full
/// info and its counter scan both give them.
struct Figures {
    serial: u64,
    received: u64,
    sent: u64,
    busy: Duration,
    utilised: Duration,
    polls: u64,
    mailbox_len: u64,
    memory: u64,
    oldest: Option<Duration>,
    status: clustertop_runtime::ProcessStatus,
    system: bool,
}

fn status_bits(s: clustertop_runtime::ProcessStatus) -> u16 {
    let code = match status(s) {
        ProcessStatus::Waiting => 0,
        ProcessStatus::Running => 1,
        ProcessStatus::Exiting => 2,
    };
    code << STATUS_SHIFT
}

/// What a row needs besides the sample to go on the wire.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RowContext<'a> {
    /// This node's name and creation.
    pub(crate) node: &'a str,
    pub(crate) creation: u32,
    /// Registered names by serial.
    pub(crate) names: &'a HashMap<u64, String>,
    /// Active warnings by serial.
    pub(crate) warnings: &'a HashMap<u64, u32>,
}

impl RowContext<'_> {
    fn warnings(&self, serial: u64) -> u32 {
        self.warnings.get(&serial).copied().unwrap_or(0)
    }

    /// The wire figures of a compact row: the only place they are built,
    /// for the rows sent and for ranking the rows that are not.
    fn figures(&self, r: &Row) -> ProcessFigures {
        ProcessFigures {
            mailbox_len: u64::from(r.mailbox),
            mailbox_growth_per_s: i64::from(r.growth),
            oldest_message_age_us: r.oldest_us(),
            handled_per_s: u64::from(r.rate),
            util_permille: r.util_permille(),
            cpu_permille: r.cpu_permille(),
            polls_per_s: u64::from(r.polls_per_s),
            memory_bytes: r.memory_bytes(),
            warnings: self.warnings(r.serial()),
            rates_known: r.rated(),
        }
    }

    fn sort_fields(&self, r: &Row) -> SortFields<'_> {
        SortFields {
            figures: self.figures(r),
            node: self.node,
            serial: r.serial(),
        }
    }
}

/// A process whose handler has been running for a while (a candidate for
/// the long-handler warning).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LongHandler {
    pub(crate) serial: u64,
    pub(crate) running: Duration,
}

/// One reading of the process table.
#[derive(Debug, Default)]
pub(crate) struct Sample {
    /// In slot order.
    pub(crate) rows: Vec<Row>,
    /// The node sampled, to find a process's row by its slot (a sample
    /// built by hand has none, and is searched row by row).
    pub(crate) node: Option<Node>,
    /// Behaviour names, indexed by `Row::behaviour`.
    pub(crate) behaviours: Vec<&'static str>,
    /// Handlers running longer than the configured limit.
    pub(crate) long_handlers: Vec<LongHandler>,
    /// Messages received by the node's processes (monotonic).
    pub(crate) messages_in_total: u64,
    /// Messages sent by the node's processes (monotonic).
    pub(crate) messages_out_total: u64,
    /// Messages received and sent per second since the sample before.
    pub(crate) messages_in_per_s: u64,
    pub(crate) messages_out_per_s: u64,
    /// The OS process's CPU time at the sample, µs (monotonic), and its
    /// share of all cores since the sample before, per mille.
    pub(crate) cpu_time_us: u64,
    pub(crate) cpu_permille: u16,
    /// The node's own figures, read as the sample began (with its time,
    /// so that a total and the time it was read travel together).
    pub(crate) figures: NodeFigures,
    /// When taken, ms since the Unix epoch.
    pub(crate) at_unix_ms: u64,
}

/// The node's figures read with a sample.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct NodeFigures {
    pub(crate) uptime_ms: u64,
    pub(crate) processes: u64,
    pub(crate) dead_letters_total: u64,
    pub(crate) crashes_total: u64,
    pub(crate) rss_bytes: u64,
}

impl NodeFigures {
    fn read(node: &Node) -> Self {
        let stats = node.stats();
        NodeFigures {
            uptime_ms: node.introspect().uptime().as_millis() as u64,
            processes: stats.processes as u64,
            dead_letters_total: stats.dead_letters,
            crashes_total: stats.crashed,
            rss_bytes: crate::os::rss_bytes(),
        }
    }
}

/// The latest sample, swapped whole by each new one (readers clone the
/// `Arc` under a short lock, never held across an await).
#[derive(Debug)]
pub(crate) struct Sampler {
    latest: Mutex<Arc<Sample>>,
    taken_at: Mutex<Instant>,
}

impl Default for Sampler {
    fn default() -> Self {
        Sampler {
            latest: Mutex::new(Arc::new(Sample::default())),
            taken_at: Mutex::new(Instant::now()),
        }
    }
}

impl Sampler {
    /// The latest sample.
    pub(crate) fn latest(&self) -> Arc<Sample> {
        self.latest.lock().clone()
    }

    /// Takes a sample of `node` and makes it the latest. Returns it, the
    /// time since the one before, and how long the table pass took. A
    /// large table is read off the scheduler threads.
    pub(crate) async fn sample(
        &self,
        node: &Node,
        long_handler: Duration,
        at_unix_ms: u64,
    ) -> (Arc<Sample>, Duration, Duration) {
        let prev = self.latest();
        let prev_totals = (
            prev.messages_in_total,
            prev.messages_out_total,
            prev.cpu_time_us,
        );
        let elapsed = {
            let mut at = self.taken_at.lock();
            let e = at.elapsed();
            *at = Instant::now();
            e
        };
        let started = Instant::now();
        // Read beside `at_unix_ms`: the figures whose totals a viewer turns
        // into rates must carry the time they were read.
        let cpu_time_us = crate::os::cpu_time_us();
        let figures = NodeFigures::read(node);
        let next = if prev.rows.len() > 10_000 {
            let node = node.clone();
            tokio::task::spawn_blocking(move || {
                take(&node, &prev, elapsed, long_handler, at_unix_ms)
            })
            .await
            .unwrap_or_default()
        } else {
            take(node, &prev, elapsed, long_handler, at_unix_ms)
        };
        let took = started.elapsed();
        let mut next = next;
        let secs = elapsed.as_secs_f64().max(1e-3);
        let per_s =
            |now: u64, before: u64| (now.saturating_sub(before) as f64 / secs).round() as u64;
        next.messages_in_per_s = per_s(next.messages_in_total, prev_totals.0);
        next.messages_out_per_s = per_s(next.messages_out_total, prev_totals.1);
        next.cpu_time_us = cpu_time_us;
        next.figures = figures;
        if prev_totals.2 > 0 {
            let cores = f64::from(crate::os::cpus().max(1));
            let share = next.cpu_time_us.saturating_sub(prev_totals.2) as f64 / 1e6 / secs / cores;
            next.cpu_permille = (share * 1000.0).round().min(1000.0) as u16;
        }
        let next = Arc::new(next);
        *self.latest.lock() = next.clone();
        (next, elapsed, took)
    }
}

/// `x` rounded half away from zero, as [`f64::round`] does, without its
/// library call (x86-64's baseline has no rounding instruction): five per
/// row of a million-process sample.
#[inline]
fn round(x: f64) -> i64 {
    (x + 0.5f64.copysign(x)) as i64
}

/// Behaviour names by the address of their text: one multiply, for keys
/// that are already well spread.
#[derive(Default)]
struct AddressHasher(u64);

impl std::hash::Hasher for AddressHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = (n as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

/// The sample's index of each behaviour name, by the name's address (the
/// runtime hands out one address per name).
struct BehaviourIndex {
    names: Vec<&'static str>,
    by_address: HashMap<usize, u16, std::hash::BuildHasherDefault<AddressHasher>>,
    last: (usize, u16),
}

impl BehaviourIndex {
    fn new(names: Vec<&'static str>) -> Self {
        let by_address = names
            .iter()
            .enumerate()
            .map(|(i, b)| (b.as_ptr() as usize, i as u16))
            .collect();
        BehaviourIndex {
            names,
            by_address,
            last: (0, UNKNOWN_BEHAVIOUR),
        }
    }

    fn of(&mut self, name: &'static str) -> u16 {
        let address = name.as_ptr() as usize;
        if self.last.0 == address {
            return self.last.1;
        }
        let names = &mut self.names;
        let index = *self.by_address.entry(address).or_insert_with(|| {
            if names.len() < usize::from(UNKNOWN_BEHAVIOUR) {
                names.push(name);
                (names.len() - 1) as u16
            } else {
                UNKNOWN_BEHAVIOUR
            }
        });
        self.last = (address, index);
        index
    }
}

/// Reads the process table. `interval` is the time since `prev` was taken
/// (for rates); `long_handler` the threshold for [`LongHandler`]s.
///
/// One pass: the scan visits processes in slot order, as `prev`'s rows
/// are, so each row is matched with its predecessor (same slot, same
/// serial) and its rates computed as it is read.
pub(crate) fn take(
    node: &Node,
    prev: &Sample,
    interval: Duration,
    long_handler: Duration,
    at_unix_ms: u64,
) -> Sample {
    let mut behaviours = BehaviourIndex::new(prev.behaviours.clone());
    let introspect = node.introspect();
    let count = introspect.process_count();
    let mut rows = Vec::with_capacity(count + count / 16 + 16);
    crate::os::prefer_huge_pages(&rows);
    let mut long_handlers = Vec::new();
    let secs = interval.as_secs_f64().max(1e-3);
    let per_interval = 1.0 / secs;
    let (mut msgs_in, mut msgs_out) = (prev.messages_in_total, prev.messages_out_total);
    let mut old = prev.rows.iter().peekable();
    introspect.scan(|p| {
        let serial = p.id.serial();
        if let Some(running) = p.handling_for {
            if running >= long_handler {
                long_handlers.push(LongHandler { serial, running });
            }
        }
        let oldest = match p.mailbox_len {
            0 => None,
            _ => introspect.oldest_message_age(p.id),
        };
        let mut row = Row::from_figures(
            &Figures {
                serial,
                received: p.received,
                sent: p.sent,
                busy: p.busy,
                utilised: p.utilised,
                polls: p.polls,
                mailbox_len: p.mailbox_len,
                memory: p.memory,
                oldest,
                status: p.status,
                system: p.system,
            },
            p.slot,
            behaviours.of(p.behaviour),
        );
        // The previous sample's row at this slot, if it was this process.
        while old.next_if(|o| o.slot < p.slot).is_some() {}
        let before = old
            .next_if(|o| o.slot == p.slot)
            .filter(|o| o.serial == row.serial);
        // Rates need two readings of the process: a process new since the
        // last sample has none yet (its totals still count for the node's).
        let Some(o) = before else {
            msgs_in += u64::from(row.recv_lo);
            msgs_out += u64::from(row.sent_lo);
            rows.push(row);
            return;
        };
        let recv = row.recv_lo.wrapping_sub(o.recv_lo);
        let sent = row.sent_lo.wrapping_sub(o.sent_lo);
        msgs_in += u64::from(recv);
        msgs_out += u64::from(sent);
        let growth = i64::from(row.mailbox) - i64::from(o.mailbox);
        let handled = (i64::from(recv) - growth).max(0);
        let per_s = per_interval;
        row.growth = round(growth as f64 * per_s) as i32;
        row.rate = round(handled as f64 * per_s) as u32;
        let share = |us: u32| {
            let permille = (f64::from(us) * per_s * 1e-3).min(1000.0);
            round(permille / f64::from(SHARE_UNIT)) as u8
        };
        row.cpu = share(row.busy_us_lo.wrapping_sub(o.busy_us_lo));
        row.util = share(row.util_us_lo.wrapping_sub(o.util_us_lo));
        row.polls_per_s = round(f64::from(row.polls_lo.wrapping_sub(o.polls_lo)) * per_s) as u32;
        row.tag |= RATED;
        rows.push(row);
    });
    Sample {
        rows,
        behaviours: behaviours.names,
        long_handlers,
        messages_in_total: msgs_in,
        messages_out_total: msgs_out,
        at_unix_ms,
        node: Some(node.clone()),
        ..Sample::default()
    }
}

impl Sample {
    /// Bytes held for the rows.
    pub(crate) fn bytes(&self) -> usize {
        self.rows.capacity() * std::mem::size_of::<Row>()
    }

    /// The row of `serial`, if it was alive at the sample and still is
    /// (found through its slot: a lookup in the process table and a
    /// binary search).
    pub(crate) fn row(&self, serial: u64) -> Option<&Row> {
        let Some(node) = &self.node else {
            return self.rows.iter().find(|r| r.serial() == serial);
        };
        let introspect = node.introspect();
        let slot = introspect.slot_of(introspect.local_process_id(serial))?;
        self.rows
            .binary_search_by_key(&slot, |r| r.slot)
            .ok()
            .map(|i| &self.rows[i])
            .filter(|r| r.serial() == serial)
    }

    /// The behaviour name of `r`.
    pub(crate) fn behaviour(&self, r: &Row) -> &'static str {
        self.behaviours
            .get(r.behaviour_index())
            .copied()
            .unwrap_or("?")
    }

    /// The wire row of `r`, a row of this sample.
    pub(crate) fn process_row(&self, r: &Row, ctx: &RowContext<'_>) -> ProcessRow {
        process_row(r, self.behaviour(r), ctx)
    }

    /// A page of wire rows for `query` (its node filter already applied
    /// by the caller), and the number of rows matching in all.
    pub(crate) fn query(
        &self,
        query: &ProcessQuery,
        ctx: &RowContext<'_>,
    ) -> (Vec<ProcessRow>, u64) {
        let f = &query.filter;
        let needle = f.name_contains.as_deref().map(str::to_lowercase);
        let behaviour_hits: Vec<bool> = self
            .behaviours
            .iter()
            .map(|b| {
                needle
                    .as_deref()
                    .is_none_or(|n| b.to_lowercase().contains(n))
            })
            .collect();
        let want = query.offset.saturating_add(u64::from(query.limit));
        let want = usize::try_from(want)
            .unwrap_or(usize::MAX)
            .min(self.rows.len());
        let cmp =
            |a: &SortFields<'_>, b: &SortFields<'_>| query.sort.compare_dir(query.descending, a, b);
        let by_fields = |a: &(&Row, SortFields<'_>), b: &(&Row, SortFields<'_>)| cmp(&a.1, &b.1);
        // The first `want` in order, in one pass: candidates gather in a
        // buffer of at most 2 × want, which is cut back to the best `want`
        // when full; after a cut, a row must beat the last one kept to
        // enter. Each row's figures are read once (one warnings lookup), and
        // most rows of a large node cost one comparison.
        let mut total = 0u64;
        let mut best: Vec<(&Row, SortFields<'_>)> =
            Vec::with_capacity(want.saturating_mul(2).min(1 << 16));
        let mut bar: Option<SortFields<'_>> = None;
        for r in &self.rows {
            if !matches(r, f, &behaviour_hits, needle.as_deref(), ctx.names) {
                continue;
            }
            total += 1;
            if want == 0 {
                continue;
            }
            let fields = ctx.sort_fields(r);
            if bar.is_some_and(|b| cmp(&fields, &b).is_ge()) {
                continue;
            }
            best.push((r, fields));
            if best.len() >= want.saturating_mul(2) {
                best.select_nth_unstable_by(want - 1, by_fields);
                best.truncate(want);
                bar = Some(best[want - 1].1);
            }
        }
        if best.len() > want {
            best.select_nth_unstable_by(want - 1, by_fields);
            best.truncate(want);
        }
        best.sort_unstable_by(by_fields);
        let page = best
            .into_iter()
            .skip(usize::try_from(query.offset).unwrap_or(usize::MAX))
            .map(|(r, _)| self.process_row(r, ctx))
            .collect();
        (page, total)
    }
}

fn matches(
    r: &Row,
    f: &ProcessFilter,
    behaviour_hits: &[bool],
    needle: Option<&str>,
    names: &HashMap<u64, String>,
) -> bool {
    (f.include_system || !r.system())
        && f.min_mailbox_len.is_none_or(|m| u64::from(r.mailbox) >= m)
        && f.min_growth_per_s.is_none_or(|g| i64::from(r.growth) > g)
        && (behaviour_hits
            .get(r.behaviour_index())
            .copied()
            .unwrap_or(false)
            || needle.is_some_and(|n| {
                names
                    .get(&r.serial())
                    .is_some_and(|name| name.to_lowercase().contains(n))
            }))
}

/// The wire form of a compact row: the only place a [`ProcessRow`] is
/// built.
pub(crate) fn process_row(r: &Row, behaviour: &str, ctx: &RowContext<'_>) -> ProcessRow {
    ProcessRow {
        pid: PidRef {
            node: ctx.node.to_owned(),
            serial: r.serial(),
            creation: ctx.creation,
        },
        name: ctx.names.get(&r.serial()).cloned(),
        behaviour: behaviour.to_owned(),
        system: r.system(),
        status: r.status(),
        figures: ctx.figures(r),
        beam: None,
    }
}

/// The wire form of a process id of `node`.
pub(crate) fn pid_ref(node: &Node, id: ProcessId) -> PidRef {
    PidRef {
        node: node
            .dist()
            .node_of(id)
            .unwrap_or_else(|| node.name().to_owned()),
        serial: id.serial(),
        creation: id.creation(),
    }
}

/// The wire form of a process status.
pub(crate) fn status(s: clustertop_runtime::ProcessStatus) -> ProcessStatus {
    match s {
        clustertop_runtime::ProcessStatus::Running => ProcessStatus::Running,
        clustertop_runtime::ProcessStatus::Exiting => ProcessStatus::Exiting,
        _ => ProcessStatus::Waiting,
    }
}

/// A row with the given figures, for tests of the rules built on samples.
#[cfg(test)]
pub(crate) fn test_row(serial: u64, mailbox: u32, growth: i32, rate: u32) -> Row {
    Row {
        serial: halves(serial),
        slot: serial as u32,
        recv_lo: 0,
        sent_lo: 0,
        busy_us_lo: 0,
        util_us_lo: 0,
        polls_lo: 0,
        mailbox,
        growth,
        rate,
        polls_per_s: 0,
        oldest_ms: NO_OLDEST,
        memory: 0,
        tag: 0,
        util: 0,
        cpu: 0,
    }
}

/// [`test_row`] with a utilisation, per mille.
#[cfg(test)]
pub(crate) fn test_row_util(serial: u64, mailbox: u32, growth: i32, util: u16) -> Row {
    Row {
        util: (util / SHARE_UNIT) as u8,
        ..test_row(serial, mailbox, growth, 0)
    }
}

#[cfg(test)]
mod tests;
