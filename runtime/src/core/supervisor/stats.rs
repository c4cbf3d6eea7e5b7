//! A supervisor's figures as observers read them: its strategy and
//! intensity, its restarts, and its running children with how each slot's
//! previous child exited. Produced by the supervisor, held by its node's
//! table of supervisors, read through
//! [`Introspect::supervisors`](crate::Introspect::supervisors).
//!
//! # Cost
//! A restart takes a relaxed increment and a short lock; publishing a
//! child one map insert, for at most [`PUBLISHED_CHILDREN`] of them.

use crate::exit_reason::ExitReason;
use crate::id::ProcessId;
use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// Which children restart when one exits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Strategy {
    /// Only the exited child.
    #[default]
    OneForOne,
    /// Every child.
    OneForAll,
    /// The exited child and those started after it.
    RestForOne,
}

/// How a child of a supervisor last exited.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildExit {
    /// Why.
    pub reason: ExitReason,
    /// When, as time since the node started.
    pub at: Duration,
}

/// A running child as its supervisor publishes it to observers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSlot {
    /// Its id in the supervisor.
    pub id: String,
    /// How the child in this slot exited before this one started.
    pub last_exit: Option<ChildExit>,
}

/// Children a supervisor publishes at most (a dynamic supervisor with more
/// running children publishes the first ones it started).
pub(crate) const PUBLISHED_CHILDREN: usize = 4_096;

/// Restart figures of a live supervisor, readable by observers through
/// [`Introspect::supervisors`](crate::Introspect::supervisors).
#[derive(Debug)]
pub struct SupervisorStats {
    /// The supervisor.
    pub id: ProcessId,
    /// Its restart intensity: at most this many restarts...
    pub max_restarts: u32,
    /// ...within this period.
    pub period: Duration,
    /// Which children restart when one exits.
    pub strategy: Strategy,
    restarts: AtomicU64,
    /// When each restart within the period happened (the intensity check
    /// reads it too).
    recent: Mutex<VecDeque<tokio::time::Instant>>,
    /// Running children by pid.
    slots: Mutex<HashMap<ProcessId, ChildSlot>>,
}

impl SupervisorStats {
    /// The figures of supervisor `id`, with no restart yet.
    pub(crate) fn new(
        id: ProcessId,
        max_restarts: u32,
        period: Duration,
        strategy: Strategy,
    ) -> Self {
        SupervisorStats {
            id,
            max_restarts,
            period,
            strategy,
            restarts: AtomicU64::new(0),
            recent: Mutex::new(VecDeque::new()),
            slots: Mutex::new(HashMap::new()),
        }
    }

    /// Records a restart now; `false` if that exceeds the intensity
    /// (more than `max_restarts` within `period`).
    pub(crate) fn note_restart(&self) -> bool {
        let now = tokio::time::Instant::now();
        self.restarts.fetch_add(1, Relaxed);
        let mut recent = self.recent.lock();
        recent.push_back(now);
        while recent
            .front()
            .is_some_and(|t| now.duration_since(*t) > self.period)
        {
            recent.pop_front();
        }
        recent.len() <= self.max_restarts as usize
    }

    /// Children restarted since the supervisor started (monotonic).
    pub fn restarts_total(&self) -> u64 {
        self.restarts.load(Relaxed)
    }

    /// Restarts within the last `period`: what the intensity limit
    /// (`max_restarts`) is checked against.
    pub fn restarts_in_period(&self) -> u32 {
        let now = tokio::time::Instant::now();
        self.recent
            .lock()
            .iter()
            .filter(|t| now.duration_since(**t) <= self.period)
            .count() as u32
    }

    /// The running child `pid`: its id and how its slot's previous child
    /// exited.
    pub fn child(&self, pid: ProcessId) -> Option<ChildSlot> {
        self.slots.lock().get(&pid).cloned()
    }

    /// Publishes the running child `pid`, whose id is `id` and whose
    /// slot's previous child exited as `last_exit` (the first
    /// [`PUBLISHED_CHILDREN`] running children only).
    pub(crate) fn publish(&self, pid: ProcessId, id: &str, last_exit: Option<ChildExit>) {
        let mut slots = self.slots.lock();
        if slots.len() < PUBLISHED_CHILDREN {
            slots.insert(
                pid,
                ChildSlot {
                    id: id.to_owned(),
                    last_exit,
                },
            );
        }
    }

    /// The child `pid` is no longer running.
    pub(crate) fn unpublish(&self, pid: ProcessId) {
        self.slots.lock().remove(&pid);
    }
}

/// The live supervisors of a node, by id: a node extension (see
/// [`Node::extension`](crate::Node::extension)) the supervisors add
/// themselves to at start and leave when their state is dropped.
#[derive(Debug, Default)]
pub(crate) struct Supervisors(Mutex<HashMap<ProcessId, std::sync::Arc<SupervisorStats>>>);

impl Supervisors {
    pub(crate) fn insert(&self, stats: std::sync::Arc<SupervisorStats>) {
        self.0.lock().insert(stats.id, stats);
    }

    pub(crate) fn remove(&self, id: ProcessId) {
        self.0.lock().remove(&id);
    }

    /// Every live supervisor's figures, in no order.
    pub(crate) fn live(&self) -> Vec<std::sync::Arc<SupervisorStats>> {
        self.0.lock().values().cloned().collect()
    }
}
