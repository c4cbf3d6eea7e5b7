//! The node's recent exits: which process exited, why and when, so an
//! observer can still say what became of a process it was watching.
//!
//! # Bounds and cost
//! At most [`EXITS_KEEP`] exits are kept (the newest), in 16 rings of 64
//! chosen by serial, about 100 bytes each: 100 KiB at most. Recording an
//! exit takes one clock read (the node clock, ~10 ns) and one lock of its
//! ring, which only exits on the same ring and observers share; the name
//! is moved in, the reason is an `Arc` clone.

use crate::exit_reason::ExitReason;
use crate::id::ProcessId;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::time::Duration;

/// Exits a node keeps, for all its processes together.
pub const EXITS_KEEP: usize = SHARDS * PER_SHARD;
const SHARDS: usize = 16;
const PER_SHARD: usize = 64;

/// One process that exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessExit {
    /// The process.
    pub id: ProcessId,
    /// Its registered name when it exited.
    pub name: Option<std::sync::Arc<str>>,
    /// Its behaviour or type name.
    pub behaviour: &'static str,
    /// Why it exited.
    pub reason: ExitReason,
    /// When, as time since the node started.
    pub at: Duration,
}

/// The rings of a node's recent exits.
#[derive(Debug, Default)]
pub(crate) struct ExitLog {
    shards: [Mutex<VecDeque<ProcessExit>>; SHARDS],
}

impl ExitLog {
    pub(crate) fn record(&self, exit: ProcessExit) {
        let mut ring = self.shards[exit.id.serial as usize % SHARDS].lock();
        if ring.len() >= PER_SHARD {
            ring.pop_front();
        }
        ring.push_back(exit);
    }

    /// `pid`'s exit, if it is among the kept ones.
    pub(crate) fn of(&self, pid: ProcessId) -> Option<ProcessExit> {
        self.shards[pid.serial as usize % SHARDS]
            .lock()
            .iter()
            .rev()
            .find(|e| e.id == pid)
            .cloned()
    }

    /// The kept exits, newest first (by time).
    pub(crate) fn all(&self) -> Vec<ProcessExit> {
        let mut out: Vec<ProcessExit> = self
            .shards
            .iter()
            .flat_map(|s| s.lock().iter().cloned().collect::<Vec<_>>())
            .collect();
        out.sort_by_key(|e| std::cmp::Reverse(e.at));
        out
    }
}
