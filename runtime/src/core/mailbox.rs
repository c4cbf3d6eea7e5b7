//! A process's mailbox: an unbounded (or optionally bounded) FIFO queue that
//! an observer can inspect while the owner runs.
//!
//! # Design
//! Two queues, each behind its own short-held lock. Senders append to the
//! *inbox*. The owner pops from its *local* batch; when that is empty it
//! swaps the whole inbox into it in O(1). Senders therefore meet the owner
//! on the inbox lock once per batch, not once per message, and an observer
//! can still lock both (local first, then inbox, the owner's order) to read
//! the head of the queue or render the first N messages.
//!
//! # Guarantees
//! - FIFO per sender: a sender's messages are appended under one lock, in
//!   call order, and the owner consumes local before inbox.
//! - `len` is exact and O(1): two monotonic counters, `enqueued` (written
//!   under the inbox lock) and `dequeued` (written only by the owner). They
//!   live in the process's block of the node's counter slab (see
//!   [`crate::counters`]), which every method is handed.
//! - After `close`, pushes fail with `Closed` and the queued messages are
//!   dropped.
//!
//! # Cost
//! A push: one uncontended-in-practice lock, a `VecDeque` append, a plain
//! atomic store, and a wake only if the owner is parked. A pop: one lock
//! that only observers contend for, and a plain atomic store. No allocation
//! beyond the queue's own amortized growth; a drained queue that grew past
//! 4096 slots is shrunk so a burst does not pin memory.

use crate::counters::{Counters, bump, heap_granules};
use crate::pid::ProcessId;
use crate::signal::Item;
use crate::trace::TraceContext;
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll, Waker};
use tokio::sync::Notify;

const SHRINK_ABOVE: usize = 4096;
const SHRINK_TO: usize = 64;

/// How a process's mailbox is sized.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum MailboxConfig {
    /// No limit: `send` never blocks and never fails (the default, as on the BEAM).
    #[default]
    Unbounded,
    /// At most `capacity` queued messages. `send_wait` waits for room,
    /// `try_send` fails with [`SendError::Full`](crate::SendError::Full), and
    /// plain `send` drops the message and counts it as a dead letter.
    Bounded {
        /// Maximum number of queued messages.
        capacity: usize,
    },
}

/// One queued message with its metadata.
pub(crate) struct Envelope<M> {
    pub(crate) item: Item<M>,
    /// The sending process; [`ProcessId::NONE`] if sent from outside one.
    pub(crate) from: ProcessId,
    /// Enqueue time, ns on the node clock. A message sent from a process
    /// of the same node carries the start of the sender's poll instead
    /// (no clock read per send): early by at most what that poll had run.
    pub(crate) at: u64,
    /// Boxed so an untraced envelope pays 8 bytes, not 26; allocated only
    /// when a propagator is installed and the sender is inside a span.
    pub(crate) trace: Option<Box<TraceContext>>,
}

// An envelope adds 40 bytes to the message (a `u64` message: 48 bytes).
#[cfg(target_pointer_width = "64")]
const _: () = assert!(std::mem::size_of::<Envelope<u64>>() == 48);

pub(crate) enum PushError<M> {
    Closed(Envelope<M>),
    Full(Envelope<M>),
}

struct Inbox<M> {
    queue: VecDeque<Envelope<M>>,
    waker: Option<Waker>,
    closed: bool,
}

pub(crate) struct Mailbox<M> {
    inbox: Mutex<Inbox<M>>,
    local: Mutex<VecDeque<Envelope<M>>>,
    /// What only some mailboxes have: boxed, so the others pay a word.
    extra: Option<Box<Extra<M>>>,
}

struct Extra<M> {
    bounded: Option<Bounded>,
    /// Heap bytes a message owns, counted into `Counters::queued_heap`
    /// while it waits (see `SpawnOptions::message_heap`).
    sizer: Option<fn(&M) -> usize>,
}

struct Bounded {
    capacity: u64,
    space: Notify,
}

impl<M> Mailbox<M> {
    pub(crate) fn new(config: MailboxConfig, sizer: Option<fn(&M) -> usize>) -> Self {
        let bounded = match config {
            MailboxConfig::Unbounded => None,
            MailboxConfig::Bounded { capacity } => Some(Bounded {
                capacity: capacity.max(1) as u64,
                space: Notify::new(),
            }),
        };
        let extra =
            (bounded.is_some() || sizer.is_some()).then(|| Box::new(Extra { bounded, sizer }));
        Mailbox {
            inbox: Mutex::new(Inbox {
                queue: VecDeque::new(),
                waker: None,
                closed: false,
            }),
            local: Mutex::new(VecDeque::new()),
            extra,
        }
    }

    #[inline]
    fn bounded(&self) -> Option<&Bounded> {
        self.extra.as_ref()?.bounded.as_ref()
    }

    /// The heap `env` owns, in granules, if the mailbox counts it.
    #[inline]
    fn heap_of(&self, env: &Envelope<M>) -> u32 {
        match (self.extra.as_ref().and_then(|e| e.sizer), &env.item) {
            (Some(size), Item::Msg(m)) => heap_granules(size(m)),
            _ => 0,
        }
    }

    /// Appends `env`; `respect_bound` is false for system messages, which a
    /// full mailbox must still accept.
    pub(crate) fn push(
        &self,
        env: Envelope<M>,
        respect_bound: bool,
        counts: &Counters,
    ) -> Result<(), PushError<M>> {
        let mut inbox = self.inbox.lock();
        if inbox.closed {
            return Err(PushError::Closed(env));
        }
        if respect_bound {
            if let Some(b) = self.bounded() {
                if counts.mailbox_len() >= b.capacity {
                    return Err(PushError::Full(env));
                }
            }
        }
        let heap = self.heap_of(&env);
        inbox.queue.push_back(env);
        // Only written under the inbox lock: a plain store suffices.
        bump(&counts.enqueued, 1);
        if heap > 0 {
            counts.queued_heap.fetch_add(heap, Relaxed);
        }
        let waker = inbox.waker.take();
        drop(inbox);
        if let Some(w) = waker {
            w.wake();
        }
        Ok(())
    }

    /// Appends `env`, waiting for room if the mailbox is bounded and full.
    pub(crate) async fn push_wait(
        &self,
        mut env: Envelope<M>,
        counts: &Counters,
    ) -> Result<(), PushError<M>> {
        let Some(b) = self.bounded() else {
            return self.push(env, true, counts);
        };
        loop {
            let notified = b.space.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.push(env, true, counts) {
                Err(PushError::Full(e)) => env = e,
                other => return other,
            }
            notified.await;
        }
    }

    /// Owner only: takes the next message or registers the waker.
    pub(crate) fn poll_pop(&self, cx: &mut Context<'_>, counts: &Counters) -> Poll<Envelope<M>> {
        match self.pop_or_register(Some(cx.waker()), counts) {
            Some(env) => Poll::Ready(env),
            None => Poll::Pending,
        }
    }

    /// Owner only: takes the next message if there is one.
    pub(crate) fn try_pop(&self, counts: &Counters) -> Option<Envelope<M>> {
        self.pop_or_register(None, counts)
    }

    fn pop_or_register(&self, waker: Option<&Waker>, counts: &Counters) -> Option<Envelope<M>> {
        // The owner knows its batch's length: an empty batch is not locked.
        let in_batch = counts.batch.load(Relaxed);
        let env = if in_batch > 0 {
            let env = self.local.lock().pop_front();
            counts.batch.store(in_batch - 1, Relaxed);
            env
        } else {
            let mut inbox = self.inbox.lock();
            match inbox.queue.len() {
                0 => {
                    if let Some(w) = waker {
                        match &inbox.waker {
                            Some(old) if old.will_wake(w) => {}
                            _ => inbox.waker = Some(w.clone()),
                        }
                    }
                    return None;
                }
                // One message: take it straight from the inbox (the batch
                // is empty, so it is the oldest).
                1 => inbox.queue.pop_front(),
                _ => {
                    // Take the whole inbox as the new batch, locking in the
                    // observers' order (batch, then inbox).
                    drop(inbox);
                    let mut local = self.local.lock();
                    let mut inbox = self.inbox.lock();
                    if local.capacity() > SHRINK_ABOVE {
                        local.shrink_to(SHRINK_TO);
                    }
                    std::mem::swap(&mut *local, &mut inbox.queue);
                    drop(inbox);
                    let env = local.pop_front();
                    // A batch holds fewer than 2^32 messages (that many
                    // envelopes would take 192 GiB).
                    counts.batch.store(local.len() as u32, Relaxed);
                    env
                }
            }
        };
        // Only the owner writes `dequeued`.
        bump(&counts.dequeued, 1);
        if let Some(taken) = &env {
            let heap = self.heap_of(taken);
            if heap > 0 {
                counts.queued_heap.fetch_sub(heap, Relaxed);
            }
        }
        if let Some(b) = self.bounded() {
            b.space.notify_one();
        }
        env
    }

    /// Enqueue time of the oldest queued message.
    pub(crate) fn oldest_at(&self) -> Option<u64> {
        let local = self.local.lock();
        if let Some(env) = local.front() {
            return Some(env.at);
        }
        let inbox = self.inbox.lock();
        inbox.queue.front().map(|e| e.at)
    }

    /// Visits up to `n` queued envelopes, oldest first, under both locks.
    pub(crate) fn peek_with(&self, n: usize, mut f: impl FnMut(&Envelope<M>)) {
        let local = self.local.lock();
        let inbox = self.inbox.lock();
        for env in local.iter().chain(inbox.queue.iter()).take(n) {
            f(env);
        }
    }

    /// Owner only: refuses further messages and drops what is queued.
    pub(crate) fn close(&self, counts: &Counters) {
        let (a, b) = {
            let mut local = self.local.lock();
            let mut inbox = self.inbox.lock();
            inbox.closed = true;
            inbox.waker = None;
            counts
                .dequeued
                .store(counts.enqueued.load(Relaxed), Relaxed);
            counts.batch.store(0, Relaxed);
            counts.queued_heap.store(0, Relaxed);
            (
                std::mem::take(&mut *local),
                std::mem::take(&mut inbox.queue),
            )
        };
        if let Some(b) = self.bounded() {
            b.space.notify_waiters();
        }
        // Dropped outside the locks: a message's drop may run arbitrary code.
        drop(a);
        drop(b);
    }
}

impl<M> fmt::Debug for Mailbox<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mailbox")
            .field("bounded", &self.bounded().map(|b| b.capacity))
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signal::Item;

    fn env(v: u64) -> Envelope<u64> {
        Envelope {
            item: Item::Msg(v),
            from: ProcessId::NONE,
            at: v,
            trace: None,
        }
    }

    fn take(m: &Mailbox<u64>, c: &Counters) -> Option<u64> {
        m.try_pop(c).map(|e| e.at)
    }

    fn peek(m: &Mailbox<u64>) -> Vec<u64> {
        let mut seen = Vec::new();
        m.peek_with(usize::MAX, |e| seen.push(e.at));
        seen
    }

    /// Each pop path — a lone message from the inbox, a swap of a longer
    /// inbox into the batch, the batch itself — keeps one order, which an
    /// observer sees too.
    #[test]
    fn every_pop_path_keeps_the_order() {
        let c = Counters::detached();
        let m = Mailbox::new(MailboxConfig::Unbounded, None);
        let push = |v| assert!(m.push(env(v), true, &c).is_ok());
        push(1);
        assert_eq!(take(&m, &c), Some(1));
        for v in 2..=4 {
            push(v);
        }
        assert_eq!(take(&m, &c), Some(2));
        assert_eq!(c.batch.load(Relaxed), 2);
        push(5);
        assert_eq!(peek(&m), [3, 4, 5]);
        assert_eq!(m.oldest_at(), Some(3));
        assert_eq!(take(&m, &c), Some(3));
        assert_eq!(take(&m, &c), Some(4));
        assert_eq!(c.batch.load(Relaxed), 0);
        assert_eq!(take(&m, &c), Some(5));
        assert_eq!(take(&m, &c), None);
        assert_eq!(c.mailbox_len(), 0);
        assert_eq!(c.dequeued.load(Relaxed), 5);
        // Closing with messages in both queues drops them all.
        for v in 6..=9 {
            push(v);
        }
        assert_eq!(take(&m, &c), Some(6));
        push(10);
        m.close(&c);
        assert_eq!(c.batch.load(Relaxed), 0);
        assert_eq!(c.mailbox_len(), 0);
        assert!(matches!(
            m.push(env(11), true, &c),
            Err(PushError::Closed(_))
        ));
        assert_eq!(take(&m, &c), None);
    }
}
