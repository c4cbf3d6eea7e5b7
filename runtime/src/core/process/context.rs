//! The handle a process body receives: its own pid, its mailbox, and the
//! operations only a process can do on itself (trap exits, link, monitor).

use super::relations;
use super::{ProcessShared, SpawnOptions};
use crate::error::NoProcess;
use crate::exit_reason::IntoExitReason;
use crate::node::Node;
use crate::pid::{Message, Pid, ProcessId};
use crate::signal::{MonitorRef, Received};
use crate::trace::TraceContext;
use std::fmt;
use std::future::{Future, poll_fn};
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;
use std::time::Duration;

/// Messages a process may take in a row before it yields to the scheduler,
/// so one busy process cannot starve the others on its thread.
const RECV_BUDGET: u32 = 128;

/// A process's view of itself, passed to its body.
pub struct Context<M> {
    pub(crate) shared: Arc<ProcessShared<M>>,
    streak: u32,
    last_trace: Option<Box<TraceContext>>,
    last_from: ProcessId,
    last_at: u64,
}

impl<M: Message> Context<M> {
    pub(crate) fn new(shared: Arc<ProcessShared<M>>) -> Self {
        Context {
            shared,
            streak: 0,
            last_trace: None,
            last_from: ProcessId::NONE,
            last_at: 0,
        }
    }

    /// This process's id.
    pub fn id(&self) -> ProcessId {
        self.shared.core.id()
    }

    /// A typed handle to this process.
    pub fn pid(&self) -> Pid<M> {
        Pid::local(self.shared.clone())
    }

    /// The node this process runs on.
    pub fn node(&self) -> &Node {
        &self.shared.core.node
    }

    /// When the current poll of this process began, ns on the node clock
    /// (a load, not a clock read).
    pub(crate) fn poll_started_ns(&self) -> u64 {
        self.shared.core.counts.last_active.load(Relaxed)
    }

    /// Marks the start (`since` > 0, ns on the node clock) or the end (0)
    /// of a handler, for observers that flag long-running handlers.
    pub(crate) fn set_handling_since(&self, since: u64) {
        self.shared.core.counts.handling_since.store(since, Relaxed);
    }

    pub(crate) fn behaviour(&self) -> &'static str {
        self.shared.core.behaviour()
    }

    /// The process that spawned this one, if it was spawned from a process.
    pub fn parent(&self) -> Option<ProcessId> {
        self.shared.core.parent()
    }

    /// Waits for the next message (FIFO per sender) or system message.
    ///
    /// # Cancel safety
    /// Cancel safe: a message is taken out of the mailbox only when this
    /// future completes.
    pub fn recv(&mut self) -> impl Future<Output = Received<M>> + Send + '_ {
        poll_fn(move |cx| {
            if self.streak >= RECV_BUDGET {
                self.streak = 0;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            match self.shared.mailbox.poll_pop(cx, &self.shared.core.counts) {
                Poll::Ready(env) => {
                    self.streak += 1;
                    Poll::Ready(self.take(env))
                }
                Poll::Pending => {
                    self.streak = 0;
                    self.shared.core.counts.in_handler.store(false, Relaxed);
                    Poll::Pending
                }
            }
        })
    }

    /// Like [`recv`](Self::recv), giving up after `timeout`.
    pub async fn recv_timeout(&mut self, timeout: Duration) -> Option<Received<M>> {
        let deadlines = self.node().deadlines().clone();
        let deadline = deadlines.deadline_in(timeout);
        deadlines.until(deadline, self.recv()).await.ok()
    }

    /// Takes the next message if one is queued.
    pub fn try_recv(&mut self) -> Option<Received<M>> {
        match self.shared.mailbox.try_pop(&self.shared.core.counts) {
            Some(env) => Some(self.take(env)),
            None => {
                self.shared.core.counts.in_handler.store(false, Relaxed);
                None
            }
        }
    }

    fn take(&mut self, env: crate::mailbox::Envelope<M>) -> Received<M> {
        self.shared.core.counts.in_handler.store(true, Relaxed);
        self.last_trace = env.trace;
        self.last_from = env.from;
        self.last_at = env.at;
        env.item.into_received()
    }

    /// The trace context that came with the last received message.
    pub fn trace_context(&self) -> Option<TraceContext> {
        self.last_trace.as_deref().copied()
    }

    /// When the last received message was enqueued, ns on the node clock.
    pub(crate) fn last_enqueued_at(&self) -> u64 {
        self.last_at
    }

    /// The process that sent the last received message, if it was sent
    /// from inside a process.
    pub fn last_sender(&self) -> Option<ProcessId> {
        (self.last_from != ProcessId::NONE).then_some(self.last_from)
    }

    /// Turns exit signals from linked processes into [`Received::Exit`]
    /// messages instead of exiting (except `kill`, which cannot be trapped).
    pub fn trap_exit(&self, trap: bool) {
        self.shared.core.trap_exit.store(trap, Relaxed);
    }

    /// Links this process with `pid`: when either exits abnormally, the
    /// other gets an exit signal.
    ///
    /// # Errors
    /// [`NoProcess`] if `pid` is not alive.
    pub fn link(&self, pid: ProcessId) -> Result<(), NoProcess> {
        relations::link(self.node(), &*self.shared, pid)
    }

    /// Removes a link; a no-op if there is none.
    pub fn unlink(&self, pid: ProcessId) {
        relations::unlink(self.node(), &self.shared.core, pid)
    }

    /// Monitors `pid`: one [`Received::Down`] arrives when it exits, at once
    /// with reason `noproc` if it is already dead.
    pub fn monitor(&self, pid: ProcessId) -> MonitorRef {
        relations::monitor(self.node(), &*self.shared, pid)
    }

    /// Removes a monitor. Returns `false` if it had fired or did not exist.
    pub fn demonitor(&self, monitor: MonitorRef) -> bool {
        relations::demonitor(self.node(), &self.shared.core, monitor)
    }

    /// Subscribes this process to node events: a [`Received::Node`] message
    /// for every node that connects or disconnects. A no-op on a node
    /// without distribution.
    pub fn monitor_nodes(&self, on: bool) {
        if let Some(t) = self.node().transport() {
            t.watch(self.id(), on);
        }
    }

    /// Spawns a process linked to this one.
    pub fn spawn_link<N, F, Fut>(&self, body: F) -> Pid<N>
    where
        N: Message,
        F: FnOnce(Context<N>) -> Fut,
        Fut: Future + Send + 'static,
        Fut::Output: IntoExitReason,
    {
        self.node()
            .spawn_opts(SpawnOptions::new().link_to(self.id()), body)
    }
}

impl<M> fmt::Debug for Context<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Context")
            .field("id", &self.shared.core.id())
            .finish_non_exhaustive()
    }
}
