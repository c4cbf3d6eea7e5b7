//! Reading the process table without stopping the node.
//!
//! Every figure here comes from relaxed atomic loads or from a lock held for
//! a few instructions (a process's relations, a mailbox's head), so an
//! observer never pauses the processes it reads. A walk over all processes
//! visits the table shard by shard (see [`crate::table`]); a scan of every
//! process's counters ([`Introspect::scan`]) reads the node's dense counter
//! slabs instead, about 128 sequential bytes per process.
//!
//! Counters are monotonic; derive rates from two snapshots.

use crate::counters::ProcessCounters;
use crate::latency::BehaviourLatency;
use crate::node::Node;
use crate::pid::ProcessId;
use crate::process::{ProcessDyn, ProcessKind, ProcessStatus, status_from};
use crate::supervisor::SupervisorStats;
use crate::supervisor::stats::Supervisors;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;

/// Everything the runtime knows about one process at one instant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessInfo {
    /// The process id.
    pub id: ProcessId,
    /// Its registered name.
    pub name: Option<String>,
    /// Behaviour or type name (a GenServer's type, or the message type).
    pub behaviour: &'static str,
    /// Running, waiting or exiting.
    pub status: ProcessStatus,
    /// Worker or supervisor.
    pub kind: ProcessKind,
    /// A system process (left out of rankings by default).
    pub system: bool,
    /// Messages queued now.
    pub mailbox_len: u64,
    /// How long the oldest queued message has waited.
    pub oldest_message_age: Option<Duration>,
    /// Messages accepted into the mailbox since spawn (monotonic).
    pub received: u64,
    /// Messages taken out of the mailbox since spawn (monotonic).
    pub handled: u64,
    /// Messages sent by this process since spawn (monotonic).
    pub sent: u64,
    /// Cumulative time spent being polled: on a scheduler thread, running
    /// its code (monotonic). Its rate is the process's CPU share.
    pub busy: Duration,
    /// Cumulative time spent running or suspended inside a handler — from
    /// taking a message until next finding the mailbox empty — awaits
    /// included (monotonic, at least `busy`). Its rate is the process's
    /// utilisation: near 100 % means it cannot keep up.
    pub utilised: Duration,
    /// Polls since spawn (monotonic): each is one turn on a scheduler
    /// thread, the runtime's measure of work done (the BEAM's reductions
    /// play this part there).
    pub polls: u64,
    /// Bytes the runtime holds for it: its record, its body's state (the
    /// task's future) and its queued messages at their in-memory size,
    /// plus the heap data the queued messages own when the process was
    /// spawned with a sizer ([`SpawnOptions::message_heap`],
    /// [`ServerOptions::message_heap`]). Heap data its state points to is
    /// not counted.
    ///
    /// [`SpawnOptions::message_heap`]: crate::SpawnOptions::message_heap
    /// [`ServerOptions::message_heap`]: crate::ServerOptions::message_heap
    pub memory: u64,
    /// When it was spawned, as time since the node started.
    pub spawned_at: Duration,
    /// Time since it last ran.
    pub idle_for: Duration,
    /// How long its current handler (a GenServer callback) has been
    /// running, awaits included; `None` between handlers.
    pub handling_for: Option<Duration>,
    /// Whether it is inside a handler in the sense its utilisation counts:
    /// it took a message and has not yet asked for another and found none
    /// (for a GenServer, inside a callback or between two queued ones).
    pub in_handler: bool,
    /// The process that spawned it.
    pub parent: Option<ProcessId>,
    /// Its supervisor, if it was started by one.
    pub supervisor: Option<ProcessId>,
    /// Number of links.
    pub links: usize,
    /// Number of monitors it holds or is watched by.
    pub monitors: usize,
    /// Whether it traps exits.
    pub trap_exit: bool,
}

/// Details for one process: its info plus relations and the head of its
/// mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessDetail {
    /// The summary figures.
    pub info: ProcessInfo,
    /// Linked processes.
    pub links: Vec<ProcessId>,
    /// Processes monitoring this one.
    pub monitored_by: Vec<ProcessId>,
    /// Processes this one monitors.
    pub monitoring: Vec<ProcessId>,
    /// The first queued messages, rendered with `Debug`, oldest first.
    pub mailbox_head: Vec<String>,
    /// The message type the process takes.
    pub message_type: &'static str,
}

/// A borrowed view of one process during [`Introspect::for_each_process`]. Each
/// accessor is a relaxed load; [`ProcessRef::info`] gathers them all.
#[derive(Clone, Copy)]
pub struct ProcessRef<'a> {
    p: &'a dyn ProcessDyn,
    node: &'a Node,
}

impl std::fmt::Debug for ProcessRef<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ProcessRef").field(&self.id()).finish()
    }
}

impl ProcessRef<'_> {
    /// The process id.
    pub fn id(&self) -> ProcessId {
        self.p.core().id()
    }
    /// Messages queued now.
    pub fn mailbox_len(&self) -> u64 {
        self.p.mailbox_len()
    }
    /// Messages accepted since spawn.
    pub fn received(&self) -> u64 {
        self.p.received()
    }
    /// Messages taken out since spawn.
    pub fn handled(&self) -> u64 {
        self.p.handled()
    }
    /// Whether it is a system process.
    pub fn is_system(&self) -> bool {
        self.p.core().system
    }
    /// Behaviour or type name.
    pub fn behaviour(&self) -> &'static str {
        self.p.core().behaviour()
    }
    /// Messages sent since spawn.
    pub fn sent(&self) -> u64 {
        self.p.core().counts.sent.load(Relaxed)
    }
    /// How long the oldest queued message has waited (peeks the mailbox
    /// head only when the mailbox is not empty).
    pub fn oldest_message_age(&self) -> Option<Duration> {
        if self.p.mailbox_len() == 0 {
            return None;
        }
        self.p.oldest_at().map(|at| self.node.clock().since(at))
    }
    /// How long its current handler has been running; `None` between
    /// handlers.
    pub fn handling_for(&self) -> Option<Duration> {
        match self.p.core().counts.handling_since.load(Relaxed) {
            0 => None,
            since => Some(self.node.clock().since(since)),
        }
    }
    /// Cumulative time being polled (see [`ProcessInfo::busy`]).
    pub fn busy(&self) -> Duration {
        busy_and_utilised(self.p, self.node).0
    }
    /// Cumulative time running or suspended inside a handler (see
    /// [`ProcessInfo::utilised`]).
    pub fn utilised(&self) -> Duration {
        busy_and_utilised(self.p, self.node).1
    }
    /// [`busy`](Self::busy) and [`utilised`](Self::utilised) from one
    /// reading of the clock.
    pub fn busy_and_utilised(&self) -> (Duration, Duration) {
        busy_and_utilised(self.p, self.node)
    }
    /// When it was spawned, as time since the node started (no clock
    /// read).
    pub fn spawned_at(&self) -> Duration {
        Duration::from_nanos(self.p.core().counts.spawned_at())
    }
    /// Polls since spawn (see [`ProcessInfo::polls`]).
    pub fn polls(&self) -> u64 {
        self.p.core().counts.polls.load(Relaxed)
    }
    /// Bytes the runtime holds for it (see [`ProcessInfo::memory`]).
    pub fn memory(&self) -> u64 {
        memory(self.p)
    }
    /// Running, waiting or exiting.
    pub fn status(&self) -> ProcessStatus {
        status_from(self.p.core().counts.status.load(Relaxed))
    }
    /// All figures.
    pub fn info(&self) -> ProcessInfo {
        info(self.p, self.node)
    }
}

fn busy_and_utilised(p: &dyn ProcessDyn, node: &Node) -> (Duration, Duration) {
    p.core().counts.busy_and_utilised(node.clock().now_ns())
}

fn memory(p: &dyn ProcessDyn) -> u64 {
    p.core().counts.memory()
}

fn name_of(node: &Node, id: ProcessId) -> Option<String> {
    node.lookup(id)
        .and_then(|p| p.core().rel.lock().name.as_ref().map(|n| n.to_string()))
}

fn info(p: &dyn ProcessDyn, node: &Node) -> ProcessInfo {
    let core = p.core();
    let s = &core.counts;
    let (name, (links, monitors)) = {
        let rel = core.rel.lock();
        (rel.name.as_ref().map(|n| n.to_string()), rel.count())
    };
    let clock = node.clock();
    let (busy, utilised) = busy_and_utilised(p, node);
    ProcessInfo {
        id: core.id(),
        name,
        behaviour: core.behaviour(),
        status: status_from(s.status.load(Relaxed)),
        kind: core.kind,
        system: core.system,
        mailbox_len: p.mailbox_len(),
        oldest_message_age: p.oldest_at().map(|at| clock.since(at)),
        received: p.received(),
        handled: p.handled(),
        sent: s.sent.load(Relaxed),
        busy,
        utilised,
        polls: s.polls.load(Relaxed),
        memory: memory(p),
        spawned_at: Duration::from_nanos(s.spawned_at()),
        idle_for: clock.since(s.last_active.load(Relaxed)),
        handling_for: match s.handling_since.load(Relaxed) {
            0 => None,
            since => Some(clock.since(since)),
        },
        in_handler: s.in_handler.load(Relaxed),
        parent: core.parent(),
        supervisor: if core.supervised { core.parent() } else { None },
        links,
        monitors,
        trap_exit: core.trap_exit.load(Relaxed),
    }
}

/// One node of the supervision tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SupervisionNode {
    /// The process.
    pub id: ProcessId,
    /// Its registered name.
    pub name: Option<String>,
    /// Behaviour or type name.
    pub behaviour: &'static str,
    /// Worker or supervisor.
    pub kind: ProcessKind,
    /// A supervisor's strategy.
    pub strategy: Option<crate::supervisor::Strategy>,
    /// A supervisor's restarts within its period, its limit and the
    /// period: `restarts 3/5 in 5s`.
    pub restarts: Option<(u32, u32, Duration)>,
    /// A supervisor's restarts since it started.
    pub restarts_total: Option<u64>,
    /// As its supervisor knows it: the child's id and how the previous
    /// child in its place exited.
    pub child: Option<crate::supervisor::ChildSlot>,
    /// Its children, in spawn order.
    pub children: Vec<SupervisionNode>,
}

impl Node {
    /// What an observer reads: the process table, supervision trees,
    /// restart and latency figures (see [`Introspect`]).
    pub fn introspect(&self) -> Introspect<'_> {
        Introspect { node: self }
    }
}

/// Reading a node's processes without pausing them, from
/// [`Node::introspect`]: what the agent, tests and tools observe.
#[derive(Debug, Clone, Copy)]
pub struct Introspect<'a> {
    node: &'a Node,
}

impl<'a> Introspect<'a> {
    /// Wall-clock time the node started.
    pub fn started_at(&self) -> std::time::SystemTime {
        self.node.started_at()
    }

    /// Time since the node started, on the node clock (the origin of
    /// every process's spawn and exit times).
    pub fn uptime(&self) -> std::time::Duration {
        self.node.uptime()
    }

    /// Names registered on this node, with their holders (Erlang's
    /// `registered()`).
    pub fn registered(&self) -> Vec<(String, ProcessId)> {
        self.node.registry().names()
    }

    /// Restart figures of every live supervisor, sorted by id.
    pub fn supervisors(&self) -> Vec<Arc<SupervisorStats>> {
        let mut all = self.node.extension::<Supervisors>().live();
        all.sort_by_key(|s| s.id);
        all
    }

    /// The latency histograms of every behaviour that has run a GenServer
    /// or been called on this node, sorted by behaviour (see
    /// [`crate::latency`]).
    pub fn latencies(&self) -> Vec<Arc<BehaviourLatency>> {
        let mut all = self.node.behaviours().all();
        all.sort_by_key(|l| l.behaviour);
        all
    }

    /// The id of this node's process numbered `serial` (alive or not), for
    /// observers that keep serials.
    pub fn local_process_id(&self, serial: u64) -> ProcessId {
        ProcessId {
            node: 0,
            serial,
            creation: self.node.creation(),
        }
    }

    /// Processes ready to run and waiting for a driver (the node's
    /// scheduler queues; a process about to run next on a driver is not
    /// counted). A gauge: a high value means the scheduler threads are
    /// behind.
    pub fn runnable_processes(&self) -> usize {
        self.node.scheduler().queued()
    }

    /// Number of live processes (O(shards)).
    pub fn process_count(&self) -> usize {
        self.node.table().len()
    }

    /// Visits every live process. The callback runs under a shard's read
    /// lock: keep it short and do not spawn or look up processes from it.
    pub fn for_each_process(&self, mut f: impl FnMut(ProcessRef<'_>)) {
        self.node
            .table()
            .for_each(|p| f(ProcessRef { p, node: self.node }));
    }

    /// Visits the counters of every live process, in slot order (see
    /// [`ProcessCounters::slot`]). Reads the node's dense counter slabs,
    /// not the processes: about 128 sequential bytes per process, with no
    /// lock held while `f` runs, so `f` may look processes up. The cheap
    /// way to read every process's figures; use
    /// [`oldest_message_age`](Self::oldest_message_age) for the few whose
    /// mailboxes are not empty.
    pub fn scan(&self, f: impl FnMut(&ProcessCounters)) {
        let creation = self.node.creation();
        self.node.table().counters().scan(
            self.node.clock().now_ns(),
            |serial| ProcessId {
                node: 0,
                serial,
                creation,
            },
            f,
        );
    }

    /// The slot of a live process's counters (see
    /// [`ProcessCounters::slot`]).
    pub fn slot_of(&self, pid: ProcessId) -> Option<u32> {
        self.node.lookup(pid).map(|p| p.core().counts.slot())
    }

    /// How long the oldest queued message of `pid` has waited; `None` if
    /// its mailbox is empty or it is not alive. Takes its mailbox's locks
    /// for a moment.
    pub fn oldest_message_age(&self, pid: ProcessId) -> Option<Duration> {
        let p = self.node.lookup(pid)?;
        if p.mailbox_len() == 0 {
            return None;
        }
        p.oldest_at().map(|at| self.node.clock().since(at))
    }

    /// A snapshot of every live process, sorted by id.
    pub fn processes(&self) -> Vec<ProcessInfo> {
        let mut out = Vec::with_capacity(self.process_count());
        self.for_each_process(|p| out.push(p.info()));
        out.sort_by_key(|i| i.id);
        out
    }

    /// The figures of one process, if it is alive.
    pub fn process_info(&self, pid: ProcessId) -> Option<ProcessInfo> {
        self.node.lookup(pid).map(|p| info(&*p, self.node))
    }

    /// Full details of one process, with up to `peek` queued messages.
    pub fn process_detail(&self, pid: ProcessId, peek: usize) -> Option<ProcessDetail> {
        let p: Arc<dyn ProcessDyn> = self.node.lookup(pid)?;
        let (links, (monitored_by, monitoring)) = {
            let rel = p.core().rel.lock();
            (rel.links(), rel.monitors())
        };
        Some(ProcessDetail {
            info: info(&*p, self.node),
            links,
            monitored_by,
            monitoring,
            mailbox_head: p.peek(peek, 256),
            message_type: p.message_type(),
        })
    }

    /// The last `n` messages `pid` handled inside sampled traces, newest
    /// first (from the node's ring of the last
    /// [`TRACED_KEEP`](crate::trace::TRACED_KEEP)).
    pub fn traced_handlings(&self, pid: ProcessId, n: usize) -> Vec<crate::trace::TracedHandling> {
        self.node.traced_of(pid, n)
    }

    /// How `pid` exited, if it did recently (the node keeps its last
    /// [`EXITS_KEEP`](crate::EXITS_KEEP) exits).
    pub fn exit_of(&self, pid: ProcessId) -> Option<crate::ProcessExit> {
        self.node.exit_of(pid)
    }

    /// The node's recent exits, newest first.
    pub fn recent_exits(&self) -> Vec<crate::ProcessExit> {
        self.node.exits()
    }

    /// Who sent the first `n` queued messages of `pid`: each sender with
    /// its count, most first (messages sent from outside any process are
    /// left out). `None` if `pid` is not alive. Holds the mailbox's locks
    /// while it reads `n` envelopes, so keep `n` modest.
    pub fn mailbox_senders(&self, pid: ProcessId, n: usize) -> Option<Vec<(ProcessId, usize)>> {
        let p = self.node.lookup(pid)?;
        let mut counts: std::collections::HashMap<ProcessId, usize> =
            std::collections::HashMap::new();
        for from in p.peek_senders(n) {
            if from != ProcessId::NONE {
                *counts.entry(from).or_default() += 1;
            }
        }
        let mut out: Vec<_> = counts.into_iter().collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Some(out)
    }

    /// The supervision trees of this node: every supervisor that is not
    /// itself supervised, with its descendants.
    pub fn supervision_tree(&self) -> Vec<SupervisionNode> {
        let mut all = Vec::new();
        self.for_each_process(|p| {
            let core = p.p.core();
            if core.kind == ProcessKind::Supervisor || core.supervised {
                all.push((
                    core.id(),
                    if core.supervised { core.parent() } else { None },
                    core.behaviour(),
                    core.kind,
                ));
            }
        });
        all.sort_by_key(|a| a.0);
        let supervisors: std::collections::HashMap<ProcessId, Arc<SupervisorStats>> =
            self.supervisors().into_iter().map(|s| (s.id, s)).collect();
        fn build(
            node: &Node,
            sups: &std::collections::HashMap<ProcessId, Arc<SupervisorStats>>,
            all: &[(ProcessId, Option<ProcessId>, &'static str, ProcessKind)],
            (id, parent, behaviour, kind): (
                ProcessId,
                Option<ProcessId>,
                &'static str,
                ProcessKind,
            ),
        ) -> SupervisionNode {
            let own = sups.get(&id);
            SupervisionNode {
                id,
                name: name_of(node, id),
                behaviour,
                kind,
                strategy: own.map(|s| s.strategy),
                restarts: own.map(|s| (s.restarts_in_period(), s.max_restarts, s.period)),
                restarts_total: own.map(|s| s.restarts_total()),
                child: parent.and_then(|p| sups.get(&p)).and_then(|s| s.child(id)),
                children: all
                    .iter()
                    .filter(|c| c.1 == Some(id))
                    .map(|c| build(node, sups, all, *c))
                    .collect(),
            }
        }
        all.iter()
            .filter(|a| a.1.is_none() && a.3 == ProcessKind::Supervisor)
            .map(|a| build(self.node, &supervisors, &all, *a))
            .collect()
    }

    /// The processes outside every supervision tree (not supervised, not
    /// a supervisor, not a system process), the first `limit` by id, and
    /// how many there are in all.
    pub fn unsupervised(&self, limit: usize) -> (Vec<SupervisionNode>, usize) {
        // The `limit` lowest ids, in a max-heap: memory stays at `limit`
        // whatever the table holds.
        let mut lowest = std::collections::BinaryHeap::with_capacity(limit.min(4096) + 1);
        let mut total = 0;
        self.for_each_process(|p| {
            let core = p.p.core();
            if !core.supervised && core.kind != ProcessKind::Supervisor && !core.system {
                total += 1;
                lowest.push((core.id(), core.behaviour()));
                if lowest.len() > limit {
                    lowest.pop();
                }
            }
        });
        let ids = lowest.into_sorted_vec();
        let nodes = ids
            .into_iter()
            .map(|(id, behaviour)| SupervisionNode {
                id,
                name: name_of(self.node, id),
                behaviour,
                kind: ProcessKind::Worker,
                strategy: None,
                restarts: None,
                restarts_total: None,
                child: None,
                children: Vec::new(),
            })
            .collect();
        (nodes, total)
    }
}
