//! A node: the process table, registry, clock and counters that processes
//! share, and the entry points to spawn, look up and signal processes.
//!
//! A node runs its processes on the tokio runtime it was started in, on
//! its scheduler's drivers (one tokio task per worker; see `sched`).
//! `Node` is a cheap handle (one `Arc`); clone it freely.
//!
//! # Metrics
//! Node-wide series are registered with the `metrics` recorder current at
//! [`Node::start`]; per-behaviour call histograms with the recorder current
//! at a behaviour's first call. Install the global recorder before starting
//! nodes. The node reports `clustertop_processes_spawned_total`,
//! `clustertop_processes_exited_total{reason}`,
//! `clustertop_dead_letters_total`, the gauge `clustertop_processes` and,
//! per GenServer behaviour, `clustertop_call_duration_seconds`. Every label
//! set is bounded: node name, behaviour type, exit-reason class; never a pid.

use crate::clock::{Clock, ClockSource};
use crate::error::LookupError;
use crate::exit_reason::{ExitReason, IntoExitReason};
use crate::latency::Behaviours;
use crate::pid::{Message, Pid, ProcessId};
use crate::process::{self, Context, ProcessDyn, ProcessShared, SpawnOptions};
use crate::registry::store::Registry;
use crate::signal::MonitorRef;
use crate::table::ProcessTable;
use crate::transport::{Layer, RemoteSignal, Transport};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

/// Node-wide counters (monotonic; relaxed atomics, touched on spawn, exit
/// and dead letters, never per delivered message).
#[derive(Debug, Default)]
struct NodeCounters {
    spawned: AtomicU64,
    exited: AtomicU64,
    crashed: AtomicU64,
    dead_letters: AtomicU64,
}

/// A snapshot of node-wide counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NodeStats {
    /// Processes alive now.
    pub processes: usize,
    /// Processes spawned since start.
    pub spawned: u64,
    /// Processes exited since start.
    pub exited: u64,
    /// Processes exited with a reason other than `normal` or `shutdown`.
    pub crashed: u64,
    /// Messages dropped because the target was dead or its bounded mailbox full.
    pub dead_letters: u64,
}

struct Instruments {
    spawned: metrics::Counter,
    exited: [metrics::Counter; 5],
    dead_letters: metrics::Counter,
    processes: metrics::Gauge,
    behaviours: Arc<Behaviours>,
    traced: crate::trace::TracedLog,
    exits: crate::exit_log::ExitLog,
}

impl Instruments {
    fn new(node: &Arc<str>) -> Self {
        let exited = |reason: &'static str| metrics::counter!("clustertop_processes_exited_total", "node" => node.to_string(), "reason" => reason);
        Instruments {
            spawned: metrics::counter!("clustertop_processes_spawned_total", "node" => node.to_string()),
            exited: [
                exited("normal"),
                exited("shutdown"),
                exited("killed"),
                exited("panic"),
                exited("error"),
            ],
            dead_letters: metrics::counter!("clustertop_dead_letters_total", "node" => node.to_string()),
            processes: metrics::gauge!("clustertop_processes", "node" => node.to_string()),
            behaviours: Arc::default(),
            traced: crate::trace::TracedLog::default(),
            exits: crate::exit_log::ExitLog::default(),
        }
    }
}

struct NodeInner {
    name: Arc<str>,
    creation: u32,
    clock: Clock,
    handle: tokio::runtime::Handle,
    /// The drivers that poll the node's processes.
    scheduler: crate::sched::Scheduler,
    /// Deadlines of calls waiting for their replies.
    deadlines: Arc<crate::deadline::Deadlines>,
    started_at: SystemTime,
    next_serial: AtomicU64,
    next_ref: AtomicU64,
    table: ProcessTable<dyn ProcessDyn>,
    registry: Registry<dyn ProcessDyn>,
    counters: NodeCounters,
    instruments: Instruments,
    layer: Option<Layer>,
    extensions: parking_lot::Mutex<Vec<Arc<dyn std::any::Any + Send + Sync>>>,
}

/// A running node. Cheap to clone.
#[derive(Clone)]
pub struct Node {
    inner: Arc<NodeInner>,
}

/// A handle to a node that does not keep it alive: for what the node
/// holds and that must reach the node back (its distribution layer).
#[derive(Clone)]
pub(crate) struct WeakNode(Weak<NodeInner>);

impl WeakNode {
    /// The node, while it is alive.
    pub(crate) fn upgrade(&self) -> Option<Node> {
        self.0.upgrade().map(|inner| Node { inner })
    }
}

impl fmt::Debug for WeakNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WeakNode")
    }
}

impl Node {
    /// Puts a node together: called once by [`Node::start`], with the
    /// distribution layer when the node is distributed.
    pub(crate) fn assemble(
        name: Arc<str>,
        creation: u32,
        clock: ClockSource,
        handle: tokio::runtime::Handle,
        started_at: SystemTime,
        layer: Option<Layer>,
    ) -> Node {
        let clock = Clock::new(clock);
        Node {
            inner: Arc::new(NodeInner {
                instruments: Instruments::new(&name),
                name,
                creation,
                clock,
                deadlines: crate::deadline::Deadlines::new(clock, handle.clone()),
                scheduler: crate::sched::Scheduler::start(&handle),
                handle,
                started_at,
                next_serial: AtomicU64::new(1),
                next_ref: AtomicU64::new(1),
                table: ProcessTable::new(),
                registry: Registry::default(),
                counters: NodeCounters::default(),
                layer,
                extensions: parking_lot::Mutex::new(Vec::new()),
            }),
        }
    }

    /// The node's name, `name@host`.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The creation number of this node incarnation.
    pub fn creation(&self) -> u32 {
        self.inner.creation
    }

    /// Wall-clock time the node started.
    pub(crate) fn started_at(&self) -> SystemTime {
        self.inner.started_at
    }

    /// Time since the node started, on the node clock.
    pub(crate) fn uptime(&self) -> Duration {
        Duration::from_nanos(self.inner.clock.now_ns())
    }

    /// The node's value of type `T`, created with `T::default()` on first
    /// use: a node-scoped slot for libraries built on the runtime (the
    /// application layer keeps its directory of PubSub and Presence
    /// instances here, so an observer finds them). Costs a short lock and a
    /// scan of the few slots; not for hot paths.
    pub fn extension<T: Default + Send + Sync + 'static>(&self) -> Arc<T> {
        let mut slots = self.inner.extensions.lock();
        for slot in slots.iter() {
            if let Ok(found) = slot.clone().downcast::<T>() {
                return found;
            }
        }
        let fresh = Arc::new(T::default());
        slots.push(fresh.clone());
        fresh
    }

    /// Spawns a process running `body`, with default options.
    pub fn spawn<M, F, Fut>(&self, body: F) -> Pid<M>
    where
        M: Message,
        F: FnOnce(Context<M>) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExitReason,
    {
        process::spawn(self, SpawnOptions::default(), body)
    }

    /// Spawns a process and links it to the calling process (when called
    /// from inside one) before it first runs.
    pub fn spawn_link<M, F, Fut>(&self, body: F) -> Pid<M>
    where
        M: Message,
        F: FnOnce(Context<M>) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExitReason,
    {
        process::spawn(self, SpawnOptions::new().link(), body)
    }

    /// Spawns a process with explicit options.
    pub fn spawn_opts<M, F, Fut>(&self, opts: SpawnOptions, body: F) -> Pid<M>
    where
        M: Message,
        F: FnOnce(Context<M>) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExitReason,
    {
        process::spawn(self, opts, body)
    }

    /// Sends an exit signal to `pid`, as OTP's `exit/2`: `kill` cannot be
    /// trapped; a trapping process gets an `EXIT` message; otherwise any
    /// reason but `normal` ends the process. A dead `pid` is ignored.
    pub fn exit(&self, pid: ProcessId, reason: ExitReason) {
        if pid.node != 0 {
            if let Some(transport) = self.transport() {
                let from = process::current_id()
                    .filter(|id| id.node == 0)
                    .map_or(0, |id| id.serial);
                let _ = transport.signal(RemoteSignal::Exit {
                    from,
                    to: pid,
                    reason,
                    link: false,
                });
            }
            return;
        }
        if let Some(p) = self.lookup(pid) {
            let from = process::current_id().unwrap_or(ProcessId {
                node: 0,
                serial: 0,
                creation: self.inner.creation,
            });
            process::deliver_exit(&*p, from, reason);
        }
    }

    /// Waits until `pid` exits and returns its exit reason (at once if it
    /// is not alive: `noproc`, or its reason if it has just exited).
    pub async fn wait_exit(&self, pid: ProcessId) -> ExitReason {
        let Some(p) = self.lookup(pid) else {
            return ExitReason::NoProc;
        };
        let rx = crate::process::exit_waiter(p.core());
        drop(p);
        rx.await.unwrap_or(ExitReason::NoProc)
    }

    /// Whether `pid` is a live process of this node.
    pub fn is_alive(&self, pid: ProcessId) -> bool {
        self.lookup(pid).is_some()
    }

    /// A typed handle to the live process `pid`.
    ///
    /// # Errors
    /// [`LookupError::NoProcess`] if it is not alive;
    /// [`LookupError::WrongType`] if it takes another message type.
    pub fn pid<M: Message>(&self, pid: ProcessId) -> Result<Pid<M>, LookupError> {
        let p = self.lookup(pid).ok_or(LookupError::NoProcess)?;
        downcast(p)
    }

    /// Counters of the node.
    pub fn stats(&self) -> NodeStats {
        let c = &self.inner.counters;
        NodeStats {
            processes: self.inner.table.len(),
            spawned: c.spawned.load(Relaxed),
            exited: c.exited.load(Relaxed),
            crashed: c.crashed.load(Relaxed),
            dead_letters: c.dead_letters.load(Relaxed),
        }
    }

    // ---- crate-internal ----

    /// The distribution layer, on a distributed node.
    pub(crate) fn layer(&self) -> Option<&Layer> {
        self.inner.layer.as_ref()
    }

    /// What the core may ask of the distribution layer.
    pub(crate) fn transport(&self) -> Option<&Arc<dyn Transport>> {
        self.inner.layer.as_ref().map(Layer::transport)
    }

    /// A handle that does not keep the node alive.
    pub(crate) fn downgrade(&self) -> WeakNode {
        WeakNode(Arc::downgrade(&self.inner))
    }

    /// Whether `other` is a handle to this same node.
    #[inline]
    pub(crate) fn is(&self, other: &Node) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }

    pub(crate) fn clock(&self) -> &Clock {
        &self.inner.clock
    }

    /// Deadlines for waits that almost always end early (call replies).
    pub(crate) fn deadlines(&self) -> &Arc<crate::deadline::Deadlines> {
        &self.inner.deadlines
    }

    /// The tokio runtime the node's processes run on.
    pub fn handle(&self) -> &tokio::runtime::Handle {
        &self.inner.handle
    }

    pub(crate) fn scheduler(&self) -> &crate::sched::Scheduler {
        &self.inner.scheduler
    }

    pub(crate) fn table(&self) -> &ProcessTable<dyn ProcessDyn> {
        &self.inner.table
    }

    pub(crate) fn registry(&self) -> &Registry<dyn ProcessDyn> {
        &self.inner.registry
    }

    pub(crate) fn next_process_id(&self) -> ProcessId {
        ProcessId {
            node: 0,
            serial: self.inner.next_serial.fetch_add(1, Relaxed),
            creation: self.inner.creation,
        }
    }

    pub(crate) fn next_ref(&self) -> MonitorRef {
        MonitorRef(self.inner.next_ref.fetch_add(1, Relaxed))
    }

    pub(crate) fn lookup(&self, pid: ProcessId) -> Option<Arc<dyn ProcessDyn>> {
        if pid.node != 0 || pid.creation != self.inner.creation {
            return None;
        }
        self.inner.table.get(pid.serial)
    }

    pub(crate) fn count_spawn(&self) {
        self.inner.counters.spawned.fetch_add(1, Relaxed);
        self.inner.instruments.spawned.increment(1);
        self.inner.instruments.processes.increment(1.0);
    }

    pub(crate) fn count_exit(&self, reason: &ExitReason) {
        let c = &self.inner.counters;
        c.exited.fetch_add(1, Relaxed);
        let class = match reason {
            ExitReason::Normal => 0,
            ExitReason::Shutdown => 1,
            ExitReason::Kill | ExitReason::Killed => 2,
            ExitReason::Panic(_) => 3,
            _ => 4,
        };
        if class >= 2 {
            c.crashed.fetch_add(1, Relaxed);
        }
        self.inner.instruments.exited[class].increment(1);
        self.inner.instruments.processes.decrement(1.0);
    }

    pub(crate) fn count_dead_letter(&self) {
        self.inner.counters.dead_letters.fetch_add(1, Relaxed);
        self.inner.instruments.dead_letters.increment(1);
    }

    /// The node's per-behaviour figures (latency histograms and call
    /// durations).
    pub(crate) fn behaviours(&self) -> &Arc<Behaviours> {
        &self.inner.instruments.behaviours
    }
}

impl Node {
    /// Keeps one message handled inside a sampled trace.
    pub(crate) fn record_traced(&self, h: crate::trace::TracedHandling) {
        self.inner.instruments.traced.record(h);
    }

    /// Keeps one exit in the node's recent exits.
    pub(crate) fn record_exit(&self, exit: crate::exit_log::ProcessExit) {
        self.inner.instruments.exits.record(exit);
    }

    /// `pid`'s exit, if it is among the recent ones.
    pub(crate) fn exit_of(&self, pid: ProcessId) -> Option<crate::exit_log::ProcessExit> {
        self.inner.instruments.exits.of(pid)
    }

    /// The recent exits, newest first.
    pub(crate) fn exits(&self) -> Vec<crate::exit_log::ProcessExit> {
        self.inner.instruments.exits.all()
    }

    /// The last `n` traced handlings of `pid`, newest first.
    pub(crate) fn traced_of(&self, pid: ProcessId, n: usize) -> Vec<crate::trace::TracedHandling> {
        self.inner.instruments.traced.of(pid, n)
    }
}

/// The longest node name, in bytes.
pub(crate) const MAX_NODE_NAME: usize = 255;

/// `name@host`: the names nodes start with and the names peers may claim.
/// The name is 1–64 of `A-Z a-z 0-9 _ - .`; the host 1–190 of those and
/// `: [ ]` (a host name, an IPv4 or a bracketed IPv6 address). Nothing a
/// peer claims can then carry a control character into a log line.
pub(crate) fn valid_node_name(name: &str) -> bool {
    fn word(c: char) -> bool {
        c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')
    }
    name.len() <= MAX_NODE_NAME
        && name.split_once('@').is_some_and(|(n, h)| {
            (1..=64).contains(&n.len())
                && (1..=190).contains(&h.len())
                && n.chars().all(word)
                && h.chars().all(|c| word(c) || matches!(c, ':' | '[' | ']'))
        })
}

pub(crate) fn downcast<M: Message>(p: Arc<dyn ProcessDyn>) -> Result<Pid<M>, LookupError> {
    let actual = p.message_type();
    p.into_any()
        .downcast::<ProcessShared<M>>()
        .map(Pid::local)
        .map_err(|_| LookupError::WrongType {
            expected: std::any::type_name::<M>(),
            actual,
        })
}

impl fmt::Debug for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.inner.name)
            .field("creation", &self.inner.creation)
            .field("processes", &self.inner.table.len())
            .finish()
    }
}
