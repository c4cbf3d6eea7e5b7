//! Dense per-process counters: the figures an observer reads of every
//! process, kept in slabs of 128-byte blocks instead of inside each
//! process's own allocation.
//!
//! # Why
//! An observer samples every process of the node at an interval (the
//! agent, once a second). Were the counters inside each process's record,
//! a walk over a million processes would take a cache and a TLB miss per
//! process (the records are a million scattered allocations). In slabs it
//! is a sequential read of 128 bytes per process, in slot order: the
//! order of [`Slab::scan`], stable for a process's life, so two samples
//! are matched slot by slot without sorting either.
//!
//! # Guarantees
//! - A block belongs to one process from its spawn until its record is
//!   dropped (a handle may keep the record after the exit); it is reused
//!   only after that, so a process never writes into another's block.
//! - [`Slab::scan`] visits the blocks of processes that are in the
//!   process table: a process is retired from the scan when it is removed
//!   from the table.
//! - A block is read and written only through atomics: a scan that races
//!   a spawn or an exit reads values, never torn memory. The block's
//!   serial is re-read after its figures; a block reused during the read
//!   is skipped.
//! - Blocks never move and are freed only with the node: the slabs hold
//!   the node's peak process count × 128 bytes, plus 4 bytes per free
//!   slot.
//!
//! # Cost
//! Spawn: one lock of one of [`SHARDS`] slab shards (uncontended unless
//! two threads spawn serials of one shard at once) to take a slot, and a
//! thread-local lookup of the behaviour's index. Dropping a record: the
//! same lock to give the slot back. The message path writes the same
//! counters as it would inside the record, with relaxed stores: the
//! owner's on the block's first cache line, the senders' (the enqueue
//! count) on the second, so senders and the owner do not share a line.

use crate::id::ProcessId;
use parking_lot::{Mutex, RwLock};
use std::collections::HashMap;
use std::ptr::NonNull;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU32, AtomicU64, fence};
use std::time::Duration;

/// Slab shards: a spawn takes the lock of `serial % SHARDS`.
pub(crate) const SHARDS: usize = 16;
/// Blocks per chunk (128 KiB).
const CHUNK: usize = 1024;
/// What a process is doing right now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProcessStatus {
    /// Not being polled: waiting for a message, a timer or a reply.
    Waiting,
    /// Being polled on a scheduler thread.
    Running,
    /// Exiting: its exit path is running.
    Exiting,
}

/// A slot is `shard << SLOT_BITS | index`.
const SLOT_BITS: u32 = 26;

pub(crate) const STATUS_WAITING: u8 = 0;
pub(crate) const STATUS_RUNNING: u8 = 1;
pub(crate) const STATUS_EXITING: u8 = 2;

pub(crate) fn status_from(v: u8) -> ProcessStatus {
    match v {
        STATUS_RUNNING => ProcessStatus::Running,
        STATUS_EXITING => ProcessStatus::Exiting,
        _ => ProcessStatus::Waiting,
    }
}

/// One process's counters. Each is written by one writer at a time (the
/// owner task, or a sender under the mailbox's inbox lock), so updates are
/// relaxed load + store, never a locked read-modify-write.
/// Aligned to 128: a block is one pair of cache lines, which the CPU's
/// adjacent-line prefetcher fetches together.
#[repr(C, align(128))]
pub(crate) struct Counters {
    // First cache line: written by the owner.
    /// Messages taken out of the mailbox.
    pub(crate) dequeued: AtomicU64,
    /// Messages sent.
    pub(crate) sent: AtomicU64,
    /// Time spent being polled, ns.
    pub(crate) busy_ns: AtomicU64,
    /// Time spent between polls while inside a handler (awaiting), ns.
    pub(crate) awaited_ns: AtomicU64,
    /// Polls since spawn: the runtime's measure of work done.
    pub(crate) polls: AtomicU64,
    /// When the current poll began (while running), or when the last one
    /// ended (while not), ns on the node clock.
    pub(crate) last_active: AtomicU64,
    /// When the current handler (a GenServer callback) began, ns on the
    /// node clock; 0 between handlers.
    pub(crate) handling_since: AtomicU64,
    /// Waiting, running or exiting.
    pub(crate) status: AtomicU8,
    /// Between taking a message and next finding the mailbox empty.
    pub(crate) in_handler: AtomicBool,
    /// Messages in the mailbox's owner-side batch (see `mailbox`): read
    /// and written by the owner only.
    pub(crate) batch: AtomicU32,
    // Second cache line: the senders' count, and what is set at spawn.
    /// Messages accepted into the mailbox (written under its inbox lock).
    pub(crate) enqueued: AtomicU64,
    /// The process's serial; 0 while the block holds no live process.
    serial: AtomicU64,
    /// When spawned, ns on the node clock.
    spawned_at: AtomicU64,
    /// Index of the behaviour's name (see [`behaviour_index`]).
    behaviour: AtomicU32,
    /// Bytes held besides the queued messages (record, task, this block).
    base_bytes: AtomicU32,
    /// Bytes per queued message.
    envelope_bytes: AtomicU32,
    /// Whether it is a system process.
    system: AtomicBool,
    /// The serial of the process that spawned it (on this node), or 0.
    pub(crate) parent: AtomicU64,
    /// The process's decoder for messages from other nodes: a pointer to
    /// a static `Decoder<M>` of its message type, or null (see
    /// `RemoteDecoder`).
    pub(crate) decoder: std::sync::atomic::AtomicPtr<()>,
    /// The block's place in the scan order (set with its chunk).
    slot: u32,
    /// Heap owned by the queued messages, in [`HEAP_GRANULE`]s, for a
    /// process spawned with a message sizer (0 otherwise). Written by
    /// senders (under the inbox lock) and the owner, so updated with
    /// read-modify-writes; only by processes that have a sizer.
    pub(crate) queued_heap: AtomicU32,
}

/// The unit of [`Counters::queued_heap`]: bytes are rounded up to it, as
/// an allocator rounds a request up to its size class (so a u32 counts up
/// to 128 GiB).
pub(crate) const HEAP_GRANULE: usize = 32;

/// `bytes` of heap in granules, rounded up.
#[inline]
pub(crate) fn heap_granules(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(HEAP_GRANULE)).unwrap_or(u32::MAX)
}

const _: () = assert!(std::mem::size_of::<Counters>() == 128);
const _: () = assert!(std::mem::offset_of!(Counters, enqueued) == 64);

impl Counters {
    /// A block outside any slab, for unit tests of its users.
    #[cfg(test)]
    pub(crate) fn detached() -> Self {
        Counters::new(0)
    }

    const fn new(slot: u32) -> Self {
        Counters {
            dequeued: AtomicU64::new(0),
            sent: AtomicU64::new(0),
            busy_ns: AtomicU64::new(0),
            awaited_ns: AtomicU64::new(0),
            polls: AtomicU64::new(0),
            last_active: AtomicU64::new(0),
            handling_since: AtomicU64::new(0),
            status: AtomicU8::new(STATUS_WAITING),
            in_handler: AtomicBool::new(false),
            batch: AtomicU32::new(0),
            enqueued: AtomicU64::new(0),
            serial: AtomicU64::new(0),
            spawned_at: AtomicU64::new(0),
            behaviour: AtomicU32::new(0),
            base_bytes: AtomicU32::new(0),
            envelope_bytes: AtomicU32::new(0),
            system: AtomicBool::new(false),
            parent: AtomicU64::new(0),
            decoder: std::sync::atomic::AtomicPtr::new(std::ptr::null_mut()),
            slot,
            queued_heap: AtomicU32::new(0),
        }
    }

    /// The name of the process's behaviour.
    pub(crate) fn behaviour(&self) -> &'static str {
        behaviour_name(self.behaviour.load(Relaxed))
    }

    /// The block's place in the scan order.
    pub(crate) fn slot(&self) -> u32 {
        self.slot
    }

    /// When the process was spawned, ns on the node clock.
    pub(crate) fn spawned_at(&self) -> u64 {
        self.spawned_at.load(Relaxed)
    }

    /// Messages queued now (exact: `enqueued` only grows, and `dequeued`
    /// is read first and never passes it).
    pub(crate) fn mailbox_len(&self) -> u64 {
        let d = self.dequeued.load(Relaxed);
        self.enqueued.load(Relaxed).saturating_sub(d)
    }

    /// Time polled, and time polled or suspended inside a handler, at
    /// `now` (ns on the node clock): an ongoing poll or wait counts up to
    /// `now`.
    pub(crate) fn busy_and_utilised(&self, now: u64) -> (Duration, Duration) {
        let mut busy = self.busy_ns.load(Relaxed);
        let mut awaited = self.awaited_ns.load(Relaxed);
        let running = self.status.load(Relaxed) == STATUS_RUNNING;
        if running || self.in_handler.load(Relaxed) {
            let since = now.saturating_sub(self.last_active.load(Relaxed));
            if running {
                busy += since;
            } else {
                awaited += since;
            }
        }
        (
            Duration::from_nanos(busy),
            Duration::from_nanos(busy + awaited),
        )
    }

    /// Bytes the runtime holds for the process (see
    /// [`ProcessInfo::memory`](crate::ProcessInfo::memory)).
    pub(crate) fn memory(&self) -> u64 {
        u64::from(self.base_bytes.load(Relaxed))
            + self
                .mailbox_len()
                .saturating_mul(u64::from(self.envelope_bytes.load(Relaxed)))
            + u64::from(self.queued_heap.load(Relaxed)) * HEAP_GRANULE as u64
    }
}

/// Adds `by` to a counter with one writer.
#[inline]
pub(crate) fn bump(counter: &AtomicU64, by: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(by), Relaxed);
}

/// What a process's block is set to at spawn.
pub(crate) struct Spawned {
    pub(crate) serial: u64,
    pub(crate) behaviour: &'static str,
    pub(crate) system: bool,
    pub(crate) spawned_at: u64,
    /// The spawning process's serial, or 0.
    pub(crate) parent: u64,
    /// Bytes held besides the queued messages, not counting the block.
    pub(crate) base_bytes: usize,
    pub(crate) envelope_bytes: usize,
}

/// A process's block, held by its record: one pointer.
#[derive(Clone, Copy)]
pub(crate) struct Counts {
    ptr: NonNull<Counters>,
}

// SAFETY: a `Counts` points into a chunk owned by a `Slab`; chunks are
// never moved or freed while the slab lives, and every holder of a
// `Counts` (a process's record) holds the node that owns the slab. The
// block itself is only atomics.
unsafe impl Send for Counts {}
// SAFETY: as above; shared access is through atomics only.
unsafe impl Sync for Counts {}

impl std::ops::Deref for Counts {
    type Target = Counters;
    #[inline]
    fn deref(&self) -> &Counters {
        // SAFETY: see the `Send` impl: the chunk outlives every `Counts`.
        unsafe { self.ptr.as_ref() }
    }
}

impl std::fmt::Debug for Counts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counts")
            .field("slot", &self.slot())
            .field("serial", &self.serial.load(Relaxed))
            .finish()
    }
}

impl Counts {
    /// Takes the process out of scans (it has left the process table).
    /// Its owner may still write the block until the record is dropped.
    pub(crate) fn retire(&self) {
        self.serial.store(0, Release);
    }
}

/// A chunk's blocks, as allocated.
struct Chunk(Box<[Counters]>);

impl Chunk {
    /// The chunk whose first block has slot `first`.
    fn new(first: u32) -> Chunk {
        Chunk(
            (0..CHUNK as u32)
                .map(|i| Counters::new(first + i))
                .collect(),
        )
    }
    fn base(&self) -> NonNull<Counters> {
        NonNull::from(&self.0[0])
    }
}

#[derive(Default)]
struct Shard {
    chunks: Vec<Chunk>,
    /// Slots handed out so far (the high-water mark); below it, those not
    /// in `free` are in use.
    used: u32,
    free: Vec<u32>,
}

/// A shard's lock on a cache line pair of its own.
#[derive(Default)]
#[repr(align(128))]
struct Padded(Mutex<Shard>);

impl std::ops::Deref for Padded {
    type Target = Mutex<Shard>;
    fn deref(&self) -> &Mutex<Shard> {
        &self.0
    }
}

/// The node's blocks, in [`SHARDS`] shards of 1,024-block chunks.
pub(crate) struct Slab {
    shards: [Padded; SHARDS],
}

impl std::fmt::Debug for Slab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Slab")
            .field("bytes", &self.bytes())
            .finish()
    }
}

impl Default for Slab {
    fn default() -> Self {
        Slab {
            shards: std::array::from_fn(|_| Default::default()),
        }
    }
}

impl Slab {
    /// A block for a process being spawned, set up from `s`.
    pub(crate) fn alloc(&self, s: &Spawned) -> Counts {
        let shard_index = (s.serial % SHARDS as u64) as usize;
        let (ptr, index) = {
            let mut shard = self.shards[shard_index].lock();
            let index = match shard.free.pop() {
                Some(i) => i,
                None => {
                    let i = shard.used;
                    assert!(
                        i < 1 << SLOT_BITS,
                        "more than {} processes in one counter shard",
                        1u64 << SLOT_BITS
                    );
                    if i as usize == shard.chunks.len() * CHUNK {
                        shard
                            .chunks
                            .push(Chunk::new((shard_index as u32) << SLOT_BITS | i));
                    }
                    shard.used += 1;
                    i
                }
            };
            let chunk = &shard.chunks[index as usize / CHUNK];
            (NonNull::from(&chunk.0[index as usize % CHUNK]), index)
        };
        let counts = Counts { ptr };
        debug_assert_eq!(counts.slot(), (shard_index as u32) << SLOT_BITS | index);
        // Reset before publishing the serial: a scan that sees the serial
        // sees these values or later ones.
        let c = &*counts;
        for counter in [
            &c.dequeued,
            &c.sent,
            &c.busy_ns,
            &c.awaited_ns,
            &c.polls,
            &c.handling_since,
            &c.enqueued,
        ] {
            counter.store(0, Relaxed);
        }
        c.last_active.store(s.spawned_at, Relaxed);
        c.spawned_at.store(s.spawned_at, Relaxed);
        c.status.store(STATUS_WAITING, Relaxed);
        c.in_handler.store(false, Relaxed);
        c.batch.store(0, Relaxed);
        c.behaviour.store(behaviour_index(s.behaviour), Relaxed);
        let base = s.base_bytes + std::mem::size_of::<Counters>();
        c.base_bytes
            .store(u32::try_from(base).unwrap_or(u32::MAX), Relaxed);
        c.envelope_bytes
            .store(u32::try_from(s.envelope_bytes).unwrap_or(u32::MAX), Relaxed);
        c.system.store(s.system, Relaxed);
        c.parent.store(s.parent, Relaxed);
        c.decoder.store(std::ptr::null_mut(), Relaxed);
        c.queued_heap.store(0, Relaxed);
        c.serial.store(s.serial, Release);
        counts
    }

    /// Gives a block back (its record is being dropped).
    pub(crate) fn release(&self, counts: Counts) {
        counts.retire();
        let slot = counts.slot();
        self.shards[(slot >> SLOT_BITS) as usize]
            .lock()
            .free
            .push(slot & ((1 << SLOT_BITS) - 1));
    }

    /// Bytes held by the blocks and the free lists.
    pub(crate) fn bytes(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                let s = s.lock();
                s.chunks.len() * CHUNK * std::mem::size_of::<Counters>() + s.free.capacity() * 4
            })
            .sum()
    }

    /// Visits the counters of every live process, in slot order, reading
    /// the clock never (`now` is the caller's; `id` makes a process id of
    /// a serial). Holds each shard's lock only to copy its chunk list, so
    /// spawns and exits go on meanwhile: a process spawned during the scan
    /// may be missed, one that exits during it may be seen or not.
    pub(crate) fn scan(
        &self,
        now: u64,
        id: impl Fn(u64) -> ProcessId,
        mut f: impl FnMut(&ProcessCounters),
    ) {
        let mut chunks = Vec::new();
        // The names known now; a name added during the scan is looked up.
        let names = BEHAVIOURS.read().names.clone();
        for (shard_index, shard) in self.shards.iter().enumerate() {
            let used = {
                let s = shard.lock();
                chunks.clear();
                chunks.extend(s.chunks.iter().map(Chunk::base));
                s.used as usize
            };
            for (chunk_index, base) in chunks.iter().enumerate() {
                let first = chunk_index * CHUNK;
                let n = used.saturating_sub(first).min(CHUNK);
                for i in 0..n {
                    // SAFETY: `i < CHUNK`, within the chunk's allocation,
                    // which lives as long as the slab (`self`).
                    let c = unsafe { base.add(i).as_ref() };
                    let serial = c.serial.load(Acquire);
                    if serial == 0 {
                        continue;
                    }
                    let scanned = ProcessCounters::read(
                        c,
                        id(serial),
                        (shard_index as u32) << SLOT_BITS | (first + i) as u32,
                        now,
                        &names,
                    );
                    // The figures were read after the serial; if the block
                    // was handed to another process meanwhile, skip it.
                    fence(Acquire);
                    if c.serial.load(Relaxed) == serial {
                        f(&scanned);
                    }
                }
            }
        }
    }
}

/// One live process's figures as a scan of the node's counter slabs read
/// them (see [`Introspect::scan`](crate::Introspect::scan)): the same
/// figures as [`ProcessInfo`](crate::ProcessInfo) gives, less those that
/// need the process's own record (its name, relations and the age of its
/// oldest message).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcessCounters {
    /// Where the process's counters live: stable for its life, and the
    /// order scans visit. A later scan that finds the same id at the same
    /// slot found the same process, so two scans are matched slot by slot.
    pub slot: u32,
    /// The process id.
    pub id: ProcessId,
    /// Behaviour or type name.
    pub behaviour: &'static str,
    /// A system process.
    pub system: bool,
    /// Running, waiting or exiting.
    pub status: ProcessStatus,
    /// Messages queued now.
    pub mailbox_len: u64,
    /// Messages accepted into the mailbox since spawn (monotonic).
    pub received: u64,
    /// Messages sent since spawn (monotonic).
    pub sent: u64,
    /// Time polled (see [`ProcessInfo::busy`](crate::ProcessInfo::busy)).
    pub busy: Duration,
    /// Time running or suspended inside a handler (see
    /// [`ProcessInfo::utilised`](crate::ProcessInfo::utilised)).
    pub utilised: Duration,
    /// Polls since spawn (monotonic).
    pub polls: u64,
    /// When spawned, as time since the node started.
    pub spawned_at: Duration,
    /// Bytes the runtime holds for it (see
    /// [`ProcessInfo::memory`](crate::ProcessInfo::memory)).
    pub memory: u64,
    /// How long its current handler has been running; `None` between
    /// handlers.
    pub handling_for: Option<Duration>,
}

impl ProcessCounters {
    fn read(c: &Counters, id: ProcessId, slot: u32, now: u64, names: &[&'static str]) -> Self {
        let (busy, utilised) = c.busy_and_utilised(now);
        let behaviour = c.behaviour.load(Relaxed);
        ProcessCounters {
            slot,
            id,
            behaviour: match names.get(behaviour as usize) {
                Some(name) => name,
                None => behaviour_name(behaviour),
            },
            system: c.system.load(Relaxed),
            status: status_from(c.status.load(Relaxed)),
            mailbox_len: c.mailbox_len(),
            received: c.enqueued.load(Relaxed),
            sent: c.sent.load(Relaxed),
            busy,
            utilised,
            polls: c.polls.load(Relaxed),
            spawned_at: Duration::from_nanos(c.spawned_at.load(Relaxed)),
            memory: c.memory(),
            handling_for: match c.handling_since.load(Relaxed) {
                0 => None,
                since => Some(Duration::from_nanos(now.saturating_sub(since))),
            },
        }
    }
}

/// The most behaviour names kept; a process of any further one is shown
/// as [`TOO_MANY_BEHAVIOURS`] by scans (its record keeps the real name).
const MAX_BEHAVIOURS: usize = 1 << 16;
/// The name scans give a behaviour past [`MAX_BEHAVIOURS`].
pub(crate) const TOO_MANY_BEHAVIOURS: &str = "(behaviour past the 65,536 kept)";

/// Behaviour names by index, for the whole OS process (names are
/// `'static`; a program has as many as it has process types).
struct Behaviours {
    names: Vec<&'static str>,
    index: HashMap<&'static str, u32>,
}

static BEHAVIOURS: std::sync::LazyLock<RwLock<Behaviours>> = std::sync::LazyLock::new(|| {
    RwLock::new(Behaviours {
        names: Vec::new(),
        index: HashMap::new(),
    })
});

thread_local! {
    /// The last name looked up on this thread: spawns in a row are mostly
    /// of one behaviour.
    static LAST: std::cell::Cell<(*const u8, usize, u32)> =
        const { std::cell::Cell::new((std::ptr::null(), 0, 0)) };
}

/// The index of `name` (added on first sight).
fn behaviour_index(name: &'static str) -> u32 {
    let (ptr, len, index) = LAST.with(std::cell::Cell::get);
    if ptr == name.as_ptr() && len == name.len() {
        return index;
    }
    let found = BEHAVIOURS.read().index.get(name).copied();
    let index = found.unwrap_or_else(|| {
        let mut b = BEHAVIOURS.write();
        if let Some(&i) = b.index.get(name) {
            return i;
        }
        if b.names.len() >= MAX_BEHAVIOURS {
            return u32::MAX;
        }
        let i = b.names.len() as u32;
        b.names.push(name);
        b.index.insert(name, i);
        i
    });
    LAST.with(|l| l.set((name.as_ptr(), name.len(), index)));
    index
}

/// The name of behaviour `index`.
fn behaviour_name(index: u32) -> &'static str {
    BEHAVIOURS
        .read()
        .names
        .get(index as usize)
        .copied()
        .unwrap_or(TOO_MANY_BEHAVIOURS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spawned(serial: u64) -> Spawned {
        Spawned {
            serial,
            behaviour: "test",
            system: false,
            spawned_at: 5,
            parent: 0,
            base_bytes: 100,
            envelope_bytes: 48,
        }
    }

    fn id(serial: u64) -> ProcessId {
        ProcessId {
            node: 0,
            serial,
            creation: 1,
        }
    }

    fn scan(slab: &Slab) -> Vec<(u32, u64)> {
        let mut out = Vec::new();
        slab.scan(0, id, |c| out.push((c.slot, c.id.serial)));
        out
    }

    #[test]
    fn scans_visit_live_blocks_in_slot_order_and_reuse_freed_ones() {
        let slab = Slab::default();
        let blocks: Vec<Counts> = (1..=3000).map(|s| slab.alloc(&spawned(s))).collect();
        let seen = scan(&slab);
        assert_eq!(seen.len(), 3000);
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "slot order");
        for b in &blocks {
            assert!(seen.contains(&(b.slot(), b.serial.load(Relaxed))));
        }
        // A retired block is out of scans; a released one is reused by the
        // next spawn of its shard, with fresh counters.
        let gone = blocks[16];
        bump(&gone.enqueued, 7);
        gone.retire();
        assert_eq!(scan(&slab).len(), 2999);
        slab.release(gone);
        let again = slab.alloc(&spawned(17 + 16 * 1000));
        assert_eq!(again.slot(), gone.slot());
        assert_eq!(again.mailbox_len(), 0);
        let seen = scan(&slab);
        assert_eq!(seen.len(), 3000);
        assert!(seen.contains(&(again.slot(), 17 + 16 * 1000)));
    }

    #[test]
    fn a_scan_reads_figures_and_names() {
        let slab = Slab::default();
        let c = slab.alloc(&Spawned {
            behaviour: "a_scan_reads_figures_and_names",
            system: true,
            ..spawned(9)
        });
        bump(&c.enqueued, 5);
        bump(&c.dequeued, 2);
        bump(&c.busy_ns, 1_000);
        c.status.store(STATUS_RUNNING, Relaxed);
        c.last_active.store(10_000, Relaxed);
        let mut got = None;
        slab.scan(10_500, id, |s| got = Some(*s));
        let s = got.unwrap();
        assert_eq!(s.behaviour, "a_scan_reads_figures_and_names");
        assert!(s.system);
        assert_eq!((s.mailbox_len, s.received), (3, 5));
        // The ongoing poll counts up to `now`.
        assert_eq!(s.busy, Duration::from_nanos(1_500));
        assert_eq!(s.spawned_at, Duration::from_nanos(5));
        assert_eq!(s.memory, 100 + 128 + 3 * 48);
        assert_eq!(s.status, ProcessStatus::Running);
    }
}
