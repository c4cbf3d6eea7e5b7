//! Processes: spawning, the per-process record, the poll wrapper that times
//! and guards every poll, and the exit path that fires links and monitors.
//!
//! # Guarantees
//! - A panic in a process body becomes its exit reason
//!   ([`ExitReason::Panic`]); it never unwinds into the runtime.
//! - On exit, in order: the exit reason is set, the mailbox is closed (queued
//!   messages are dropped), the process leaves the table, its name and
//!   groups, then links get exit signals and monitors get `DOWN`.
//! - A kill (an untrapped exit signal) takes effect at the process's next
//!   poll: the body's future is dropped, running its destructors. A body
//!   that never yields cannot be killed, as with any cooperative scheduler.
//!
//! # Cost per poll
//! Two clock reads (about 10 ns each with the default clock; 30 in some
//! virtual machines) to account busy time — one when the poll follows
//! another process's on the same driver turn, whose end it starts from —
//! a thread-local store to publish the current process, a relaxed load of
//! the kill flag, and a few relaxed stores to owner-only counters.
//!
//! # Time in handlers
//! A process is *in a handler* from the moment it takes a message out of
//! its mailbox until it next asks for one and finds none (a `recv` that
//! would wait, or an empty `try_recv`). The context sets one owner-only
//! flag at those two points; the poll wrapper adds the time between two
//! polls to `awaited_ns` when the flag was set as the first poll ended. So
//! `busy_ns + awaited_ns` is the time the process was running or
//! suspended inside a handler — its utilisation, awaits included — at no
//! extra clock read.

mod context;
mod exit_signal;
mod relations;

pub use context::Context;
pub(crate) use exit_signal::deliver_exit;
pub(crate) use relations::{Relation, Relations, exit_waiter};

use crate::counters::Counts;
pub use crate::counters::ProcessStatus;
use crate::exit_reason::{ExitReason, IntoExitReason, panic_message};
use crate::mailbox::{Mailbox, MailboxConfig};
use crate::node::Node;
use crate::pid::{Message, Pid, ProcessId};
use crate::signal::SystemMsg;
use crate::transport::{Decoder, DeliveryError, Incoming};
use parking_lot::Mutex;
use std::any::Any;
use std::cell::Cell;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::task::Poll;

/// What kind of process this is, for the supervision tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ProcessKind {
    /// An ordinary process.
    #[default]
    Worker,
    /// A supervisor: its children appear under it in the supervision tree.
    Supervisor,
}

/// Options for [`Node::spawn_opts`].
#[derive(Debug, Clone, Default)]
pub struct SpawnOptions {
    pub(crate) link: bool,
    pub(crate) link_to: Option<ProcessId>,
    pub(crate) mailbox: MailboxConfig,
    pub(crate) behaviour: Option<&'static str>,
    pub(crate) system: bool,
    pub(crate) kind: ProcessKind,
    pub(crate) heap: Option<MessageHeap>,
}

/// A message sizer, its message type erased until spawn.
#[derive(Clone)]
pub(crate) struct MessageHeap(Arc<dyn Any + Send + Sync>);

impl MessageHeap {
    pub(crate) fn new<M: Message>(size: fn(&M) -> usize) -> Self {
        MessageHeap(Arc::new(size))
    }

    /// The sizer, if it is for `M`.
    pub(crate) fn of<M: Message>(&self) -> Option<fn(&M) -> usize> {
        let size = self.0.downcast_ref::<fn(&M) -> usize>().copied();
        debug_assert!(size.is_some(), "a message sizer for another message type");
        size
    }
}

impl std::fmt::Debug for MessageHeap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MessageHeap")
    }
}

impl SpawnOptions {
    /// Default options: unlinked, unbounded mailbox.
    pub fn new() -> Self {
        Self::default()
    }

    /// Link the new process to the calling process (when called from inside
    /// one) before it first runs.
    pub fn link(mut self) -> Self {
        self.link = true;
        self
    }

    /// Link the new process to `pid` before it first runs. If `pid` is dead,
    /// the new process receives an exit signal with reason `noproc`.
    pub fn link_to(mut self, pid: ProcessId) -> Self {
        self.link_to = Some(pid);
        self
    }

    /// The mailbox size policy.
    pub fn mailbox(mut self, mailbox: MailboxConfig) -> Self {
        self.mailbox = mailbox;
        self
    }

    /// Count the heap each queued message owns in the process's memory:
    /// `size` says how many bytes a message's heap data takes (its
    /// strings, vectors and boxes; not the message itself, which is
    /// counted already). Without it a process's memory counts its queued
    /// messages at their in-memory size only.
    ///
    /// Cost: a call of `size` and an atomic add when a message is queued,
    /// and again when it is taken. Heap is rounded up to 32 bytes per
    /// message, as an allocator rounds an allocation up. `M` must be the
    /// spawned process's message type (otherwise the sizer is ignored).
    pub fn message_heap<M: Message>(mut self, size: fn(&M) -> usize) -> Self {
        self.heap = Some(MessageHeap::new(size));
        self
    }

    /// The behaviour or type name shown by introspection (default: the
    /// message type's name).
    pub fn behaviour(mut self, name: &'static str) -> Self {
        self.behaviour = Some(name);
        self
    }

    /// Mark as a system process (for example the observability agent's),
    /// which rankings and views may leave out.
    pub fn system(mut self, system: bool) -> Self {
        self.system = system;
        self
    }

    /// The process kind.
    pub fn kind(mut self, kind: ProcessKind) -> Self {
        self.kind = kind;
        self
    }
}

pub(crate) use crate::counters::{
    STATUS_EXITING, STATUS_RUNNING, STATUS_WAITING, bump, status_from,
};

/// The untyped part of a process, shared by its handles, the table and the
/// exit path.
#[derive(Debug)]
pub(crate) struct ProcessCore {
    /// Its serial: with the node's creation, its id (see [`Self::id`]).
    pub(crate) serial: u64,
    pub(crate) node: Node,
    pub(crate) system: bool,
    pub(crate) kind: ProcessKind,
    /// Set when the parent was a supervisor.
    pub(crate) supervised: bool,
    /// Its counters (status, mailbox counts, busy time…), in the node's
    /// dense slab where observers read them (see [`crate::counters`]).
    pub(crate) counts: Counts,
    pub(crate) trap_exit: AtomicBool,
    pub(crate) killed: AtomicBool,
    /// Set when a send found a link over its busy limit: the process is
    /// not polled again until the link drains.
    pub(crate) suspended: AtomicBool,
    /// Set, under the `rel` lock, once the exit has been announced: no
    /// relation or name may be added after. (Here rather than in
    /// [`Relations`], where it would take a padded word of its own.)
    pub(crate) closed: AtomicBool,
    pub(crate) rel: Mutex<Relations>,
}

impl ProcessCore {
    /// Whether the exit path has started.
    pub(crate) fn has_exited(&self) -> bool {
        self.counts.status.load(Relaxed) == STATUS_EXITING
    }

    /// The exit reason, once the process has exited.
    pub(crate) fn exit_reason(&self) -> Option<ExitReason> {
        let rel = self.rel.lock();
        if self.closed.load(Relaxed) {
            rel.reason.clone()
        } else {
            None
        }
    }

    /// The process id.
    #[inline]
    pub(crate) fn id(&self) -> ProcessId {
        ProcessId {
            node: 0,
            serial: self.serial,
            creation: self.node.creation(),
        }
    }

    /// Its behaviour or type name (kept in its counter block).
    pub(crate) fn behaviour(&self) -> &'static str {
        self.counts.behaviour()
    }

    /// The process that spawned this one.
    pub(crate) fn parent(&self) -> Option<ProcessId> {
        match self.counts.parent.load(Relaxed) {
            0 => None,
            serial => Some(ProcessId {
                serial,
                ..self.id()
            }),
        }
    }
}

impl Drop for ProcessCore {
    fn drop(&mut self) {
        // No handle to the process is left: its block may serve another.
        self.node.table().counters().release(self.counts);
    }
}

/// A process's shared state: the untyped core and the typed mailbox, in one
/// allocation.
#[derive(Debug)]
pub(crate) struct ProcessShared<M> {
    pub(crate) core: ProcessCore,
    pub(crate) mailbox: Mailbox<M>,
}

impl<M> ProcessShared<M> {
    /// Installs the process's decoder for messages from other nodes unless
    /// one is installed already. One word, in the process's counter block
    /// (the record's size is a product promise), pointing to a static.
    pub(crate) fn set_remote(&self, decoder: &'static Decoder<M>) {
        let ptr = std::ptr::from_ref(decoder).cast_mut().cast::<()>();
        let _ = self.core.counts.decoder.compare_exchange(
            std::ptr::null_mut(),
            ptr,
            std::sync::atomic::Ordering::Release,
            std::sync::atomic::Ordering::Relaxed,
        );
    }

    /// The decoder, once the process is reachable from other nodes.
    pub(crate) fn remote(&self) -> Option<Decoder<M>> {
        let ptr = self
            .core
            .counts
            .decoder
            .load(std::sync::atomic::Ordering::Acquire);
        // SAFETY: only `set_remote` stores a non-null pointer (the block is
        // reset to null before it serves a process), and it stores a
        // `&'static Decoder<M>` for this process's own `M`: the pointee
        // lives forever and is never written.
        (!ptr.is_null()).then(|| unsafe { *ptr.cast::<Decoder<M>>() })
    }
}

/// The object-safe view of a process of any message type, held by the
/// process table.
pub(crate) trait ProcessDyn: Send + Sync + 'static {
    fn core(&self) -> &ProcessCore;
    fn mailbox_len(&self) -> u64;
    fn received(&self) -> u64;
    /// Messages taken out of the mailbox since spawn.
    fn handled(&self) -> u64;
    fn oldest_at(&self) -> Option<u64>;
    fn peek(&self, n: usize, max_chars: usize) -> Vec<String>;
    fn peek_senders(&self, n: usize) -> Vec<ProcessId>;
    fn push_system(&self, msg: SystemMsg) -> bool;
    fn deliver_remote(
        &self,
        input: &Incoming<'_>,
        from: ProcessId,
        trace: Option<crate::trace::TraceContext>,
    ) -> Result<(), DeliveryError>;
    fn close_mailbox(&self);
    fn message_type(&self) -> &'static str;
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync>;
    /// Whether the process takes messages from other nodes.
    fn accepts_remote(&self) -> bool;
}

impl<M: Message> ProcessDyn for ProcessShared<M> {
    fn core(&self) -> &ProcessCore {
        &self.core
    }
    fn accepts_remote(&self) -> bool {
        self.remote().is_some()
    }
    fn mailbox_len(&self) -> u64 {
        self.core.counts.mailbox_len()
    }
    fn received(&self) -> u64 {
        self.core.counts.enqueued.load(Relaxed)
    }
    fn handled(&self) -> u64 {
        self.core.counts.dequeued.load(Relaxed)
    }
    fn oldest_at(&self) -> Option<u64> {
        self.mailbox.oldest_at()
    }
    fn peek(&self, n: usize, max_chars: usize) -> Vec<String> {
        let mut out = Vec::with_capacity(n.min(64));
        self.mailbox.peek_with(n, |env| {
            let mut s = format!("{:?}", env.item);
            if s.len() > max_chars {
                let mut cut = max_chars;
                while !s.is_char_boundary(cut) {
                    cut -= 1;
                }
                s.truncate(cut);
                s.push('…');
            }
            out.push(s);
        });
        out
    }
    fn peek_senders(&self, n: usize) -> Vec<ProcessId> {
        let mut out = Vec::with_capacity(n.min(1024));
        self.mailbox.peek_with(n, |env| out.push(env.from));
        out
    }
    fn push_system(&self, msg: SystemMsg) -> bool {
        let env = crate::mailbox::Envelope {
            item: msg.into_item(),
            from: current_id().unwrap_or(ProcessId::NONE),
            at: self.core.node.clock().now_ns(),
            trace: None,
        };
        self.mailbox.push(env, false, &self.core.counts).is_ok()
    }
    fn deliver_remote(
        &self,
        input: &Incoming<'_>,
        from: ProcessId,
        trace: Option<crate::trace::TraceContext>,
    ) -> Result<(), DeliveryError> {
        let decode = self.remote().ok_or(DeliveryError::NotRemote)?;
        let msg = decode(input)?;
        let env = crate::mailbox::Envelope {
            item: crate::signal::Item::Msg(msg),
            from,
            at: self.core.node.clock().now_ns(),
            trace: trace.map(Box::new),
        };
        match self.mailbox.push(env, true, &self.core.counts) {
            Ok(()) => Ok(()),
            Err(crate::mailbox::PushError::Full(_)) => Err(DeliveryError::Full),
            Err(crate::mailbox::PushError::Closed(_)) => Err(DeliveryError::NoProcess),
        }
    }
    fn close_mailbox(&self) {
        self.mailbox.close(&self.core.counts)
    }
    fn message_type(&self) -> &'static str {
        std::any::type_name::<M>()
    }
    fn into_any(self: Arc<Self>) -> Arc<dyn Any + Send + Sync> {
        self
    }
}

thread_local! {
    /// The process being polled on this thread; null outside a process poll.
    static CURRENT: Cell<*const ProcessCore> = const { Cell::new(std::ptr::null()) };
}

/// Runs `f` with the process currently being polled on this thread.
pub(crate) fn with_current<R>(f: impl FnOnce(&ProcessCore) -> R) -> Option<R> {
    CURRENT.with(|c| {
        let ptr = c.get();
        // SAFETY: CURRENT is non-null only while `Runner::poll` runs, and the
        // runner holds an `Arc` to the core for that whole time.
        (!ptr.is_null()).then(|| f(unsafe { &*ptr }))
    })
}

/// The process running on this thread, as log layers and exporters see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrentProcess {
    /// Its id.
    pub id: ProcessId,
    /// Its registered name, if any.
    pub name: Option<String>,
    /// Its behaviour or type name.
    pub behaviour: &'static str,
    /// Whether it is a system process.
    pub system: bool,
    /// The name of its node.
    pub node: String,
}

/// The process being run on this thread, if the caller is inside one (for
/// example a log layer adding the pid to each record). Takes the process's
/// relations lock briefly for its name.
pub fn current_process() -> Option<CurrentProcess> {
    with_current(|c| CurrentProcess {
        id: c.id(),
        name: c.rel.lock().name.as_ref().map(|n| n.to_string()),
        behaviour: c.behaviour(),
        system: c.system,
        node: c.node.name().to_owned(),
    })
}

/// The id of the process being polled on this thread, if any.
pub(crate) fn current_id() -> Option<ProcessId> {
    with_current(|c| c.id())
}

/// Counts a send by the current process and returns its id.
#[inline]
pub(crate) fn note_send() -> Option<ProcessId> {
    with_current(|c| {
        bump(&c.counts.sent, 1);
        c.id()
    })
}

/// Counts a send by the current process to a process of `node`, and
/// returns the sender's id and the time that stands for the send: when
/// the sender's current poll began, if it runs on `node` (the same clock)
/// and that is stamped (not 0). A send stamped so costs no clock read;
/// its stamp is early by at most what the sender's poll has run so far.
#[inline]
pub(crate) fn note_send_to(node: &Node) -> Option<(ProcessId, Option<u64>)> {
    with_current(|c| {
        bump(&c.counts.sent, 1);
        let at = c
            .node
            .is(node)
            .then(|| c.counts.last_active.load(Relaxed))
            .filter(|&t| t != 0);
        (c.id(), at)
    })
}

/// The allocation header of an `Arc`, and what a process's task keeps
/// beside its future (the task header: state, awaiter, vtable and panic
/// flag, 40 bytes, and the scheduler handle, 8; async-task 4.7, 64-bit
/// targets): counted in a process's memory.
const ARC_HEADER: usize = 16;
const TASK_OVERHEAD: usize = 48;

/// Spawns a process on `node`.
pub(crate) fn spawn<M, F, Fut>(node: &Node, opts: SpawnOptions, body: F) -> Pid<M>
where
    M: Message,
    F: FnOnce(Context<M>) -> Fut,
    Fut: Future + Send + 'static,
    Fut::Output: IntoExitReason,
{
    let id = node.next_process_id();
    let now = node.clock().now_ns();
    let (parent, parent_kind) =
        with_current(|c| (Some(c.id()), c.kind)).unwrap_or((None, ProcessKind::Worker));
    let mut rel = Relations::default();
    if opts.link {
        if let Some(p) = parent {
            rel.push(Relation::Link(p));
        }
    }
    let behaviour = opts.behaviour.unwrap_or_else(std::any::type_name::<M>);
    let counts = node.table().counters().alloc(&crate::counters::Spawned {
        serial: id.serial,
        behaviour,
        system: opts.system,
        spawned_at: now,
        parent: parent.map_or(0, |p| {
            debug_assert!(p.node == 0 && p.creation == id.creation);
            p.serial
        }),
        base_bytes: ARC_HEADER
            + std::mem::size_of::<ProcessShared<M>>()
            + TASK_OVERHEAD
            + std::mem::size_of::<Runner<M, Fut>>(),
        envelope_bytes: std::mem::size_of::<crate::mailbox::Envelope<M>>(),
    });
    let shared = Arc::new(ProcessShared {
        core: ProcessCore {
            serial: id.serial,
            node: node.clone(),
            system: opts.system,
            kind: opts.kind,
            supervised: parent_kind == ProcessKind::Supervisor,
            counts,
            trap_exit: AtomicBool::new(false),
            killed: AtomicBool::new(false),
            suspended: AtomicBool::new(false),
            closed: AtomicBool::new(false),
            rel: Mutex::new(rel),
        },
        mailbox: Mailbox::new(
            opts.mailbox,
            opts.heap.as_ref().and_then(MessageHeap::of::<M>),
        ),
    });
    let dynamic: Arc<dyn ProcessDyn> = shared.clone();
    node.table().insert(id.serial, dynamic.clone());
    node.count_spawn();
    if opts.link && parent.is_some() {
        with_current(|c| c.rel.lock().push(Relation::Link(id)));
    }
    if let Some(target) = opts.link_to {
        if let Err(crate::error::NoProcess) = relations::link(node, &*dynamic, target) {
            deliver_exit(&*dynamic, target, ExitReason::NoProc);
        }
    }
    drop(dynamic);
    let fut = body(Context::new(shared.clone()));
    let runner = Runner {
        shared: shared.clone(),
        waker_stored: false,
        fut: Some(fut),
    };
    // The runner is the whole task: no wrapper future around it.
    node.scheduler().spawn(runner);
    Pid::local(shared)
}

pin_project_lite::pin_project! {
    /// Wraps a process body: publishes the current process, times each poll,
    /// honours kills and turns panics into exit reasons.
    struct Runner<M, F> {
        shared: Arc<ProcessShared<M>>,
        waker_stored: bool,
        // Dropped as soon as it finishes (or the process is killed), before
        // the exit is announced: what the body held is released by the
        // time links and monitors fire.
        #[pin]
        fut: Option<F>,
    }
}

impl<M, F> Future for Runner<M, F>
where
    M: Message,
    F: Future,
    F::Output: IntoExitReason,
{
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        let mut this = self.project();
        let shared = this.shared;
        let core = &shared.core;
        // Taken first, so that whatever this poll does instead of running
        // the body (a kill's exit path) is not counted in the next one.
        let prev_end = crate::sched::take_poll_end();
        let Some(fut) = this.fut.as_mut().as_pin_mut() else {
            // Finished already (a task is not polled after that).
            return Poll::Ready(());
        };
        if !*this.waker_stored {
            core.rel.lock().waker = Some(cx.waker().clone());
            *this.waker_stored = true;
        }
        if core.killed.load(Relaxed) {
            let reason = take_kill_reason(core);
            return finish(shared, this.fut, reason);
        }
        if core.suspended.load(Relaxed) {
            // A send found a link over its busy limit: stay off the
            // scheduler until it drains, as the BEAM suspends a process
            // sending on a busy distribution port.
            if let Some(transport) = core.node.transport() {
                if transport.poll_resume(core.id().serial, cx).is_pending() {
                    return Poll::Pending;
                }
            }
            core.suspended.store(false, Relaxed);
        }
        let clock = core.node.clock();
        let t0 = match prev_end {
            0 => clock.now_ns(),
            t => t,
        };
        let s = &core.counts;
        if s.in_handler.load(Relaxed) {
            // Suspended inside a handler since the last poll ended.
            bump(
                &s.awaited_ns,
                t0.saturating_sub(s.last_active.load(Relaxed)),
            );
        }
        s.status.store(STATUS_RUNNING, Relaxed);
        s.last_active.store(t0, Relaxed);
        let prev = CURRENT.with(|c| c.replace(core as *const ProcessCore));
        let result = catch_unwind(AssertUnwindSafe(|| fut.poll(cx)));
        CURRENT.with(|c| c.set(prev));
        let t1 = clock.now_ns();
        bump(&s.busy_ns, t1.saturating_sub(t0));
        bump(&s.polls, 1);
        s.last_active.store(t1, Relaxed);
        s.status.store(STATUS_WAITING, Relaxed);
        let reason = match result {
            Ok(Poll::Pending) => {
                crate::sched::poll_end(t1);
                return Poll::Pending;
            }
            Ok(Poll::Ready(out)) => out.into_exit_reason(),
            Err(payload) => ExitReason::Panic(panic_message(&*payload)),
        };
        finish(shared, this.fut, reason)
    }
}

/// Ends a process: drops its body (a panic in a drop becomes the exit
/// reason, if the body had none of its own), then announces the exit.
fn finish<M: Message, F>(
    shared: &Arc<ProcessShared<M>>,
    fut: Pin<&mut Option<F>>,
    reason: ExitReason,
) -> Poll<()> {
    let dropped = catch_unwind(AssertUnwindSafe(|| {
        let mut fut = fut;
        fut.set(None);
    }));
    let reason = match (dropped, reason) {
        (Err(payload), ExitReason::Normal | ExitReason::Shutdown) => {
            ExitReason::Panic(panic_message(&*payload))
        }
        (_, reason) => reason,
    };
    exit_signal::finish(shared.clone(), reason);
    Poll::Ready(())
}

fn take_kill_reason(core: &ProcessCore) -> ExitReason {
    core.rel.lock().reason.take().unwrap_or(ExitReason::Killed)
}

/// Asks the process to exit with `reason` at its next poll.
pub(crate) fn kill(core: &ProcessCore, reason: ExitReason) {
    let waker = {
        let mut rel = core.rel.lock();
        if core.closed.load(Relaxed) || core.killed.load(Relaxed) {
            return;
        }
        rel.reason = Some(reason);
        core.killed.store(true, Relaxed);
        rel.waker.clone()
    };
    if let Some(w) = waker {
        w.wake();
    }
}

// Memory per process is a product promise (see bench/README.md): the shared
// record is at most 216 bytes, so that with its `Arc` counts it is one
// 240-byte malloc chunk; a small body's task is one more (144 bytes), and
// its counters live in the node's slab, 128 bytes more (see `counters`).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<ProcessShared<u64>>() <= 216);
