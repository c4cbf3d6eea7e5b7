//! The process table: every live process of the node, by serial number.
//!
//! A sharded concurrent hash map (dashmap, 64 shards, a multiplicative
//! hasher over the serial). Spawn and exit take one shard's write lock for
//! an insert or a remove; a lookup takes a read lock. Iteration visits one
//! shard at a time under its read lock, so an observer walking a million
//! processes never pauses the whole node: at worst it delays spawns and
//! exits that hash to the shard it is reading.
//!
//! Beside the map, the table keeps every process's counters in dense slabs
//! ([`crate::counters`]): an observer that wants the figures of every
//! process scans those instead of walking the map.

use crate::counters::Slab;
use dashmap::DashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;

const SHARDS: usize = 64;

/// Hashes a serial number with the splitmix64 finalizer. Serials are
/// sequential; a plain multiplicative hash leaves their low bits (which pick
/// the bucket) structured, and insert/remove churn then fills probe groups
/// with tombstones. A full avalanche (two multiplies) keeps probes short.
#[derive(Default)]
pub(crate) struct SerialHasher(u64);

impl Hasher for SerialHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(*b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }
    fn write_u64(&mut self, n: u64) {
        let mut z = n.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        self.0 = z ^ (z >> 31);
    }
}

/// The table, over the processes' type-erased record `P` (the node's is
/// `dyn ProcessDyn`): the table stores and hands out records and never
/// looks inside one, so it stands below the process module.
pub(crate) struct ProcessTable<P: ?Sized> {
    map: DashMap<u64, Arc<P>, BuildHasherDefault<SerialHasher>>,
    counters: Slab,
}

impl<P: ?Sized + Send + Sync> ProcessTable<P> {
    pub(crate) fn new() -> Self {
        ProcessTable {
            map: DashMap::with_hasher_and_shard_amount(Default::default(), SHARDS),
            counters: Slab::default(),
        }
    }

    /// The processes' counter blocks.
    pub(crate) fn counters(&self) -> &Slab {
        &self.counters
    }

    pub(crate) fn insert(&self, serial: u64, p: Arc<P>) {
        self.map.insert(serial, p);
    }

    pub(crate) fn remove(&self, serial: u64) {
        self.map.remove(&serial);
    }

    pub(crate) fn get(&self, serial: u64) -> Option<Arc<P>> {
        self.map.get(&serial).map(|e| e.value().clone())
    }

    pub(crate) fn len(&self) -> usize {
        self.map.len()
    }

    /// Visits every process, one shard at a time. `f` runs under the shard's
    /// read lock: keep it short and never touch the table from it.
    ///
    /// Reading a million processes is bound by memory latency (each one is
    /// its own allocation), so the walk runs `LOOKAHEAD` entries ahead of
    /// `f` and prefetches the cache lines an observer reads.
    pub(crate) fn for_each(&self, mut f: impl FnMut(&P)) {
        const LOOKAHEAD: usize = 64;
        let mut ahead = std::collections::VecDeque::with_capacity(LOOKAHEAD + 1);
        for entry in self.map.iter() {
            prefetch(Arc::as_ptr(entry.value()).cast::<u8>());
            ahead.push_back(entry);
            if ahead.len() > LOOKAHEAD {
                if let Some(e) = ahead.pop_front() {
                    f(&**e.value());
                }
            }
        }
        for e in ahead {
            f(&**e.value());
        }
    }
}

/// Hints the CPU to load the first cache lines of a process's allocation.
#[inline]
fn prefetch(ptr: *const u8) {
    #[cfg(target_arch = "x86_64")]
    for line in 0..PREFETCH_LINES {
        // SAFETY: prefetching is a hint; it never faults, whatever the
        // address.
        unsafe {
            std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                ptr.wrapping_add(line * 64).cast(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = ptr;
}

/// Cache lines of a process read by an observer's walk (its id,
/// behaviour, flags and relations lock, in the record's first lines).
const PREFETCH_LINES: usize = 4;

impl<P: ?Sized + Send + Sync> std::fmt::Debug for ProcessTable<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessTable")
            .field("len", &self.len())
            .finish()
    }
}
