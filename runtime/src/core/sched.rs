//! The process scheduler: a node's processes run on a few *drivers*, tokio
//! tasks that each poll many processes, rather than one tokio task per
//! process.
//!
//! # Why
//! A message to a waiting process should usually be handled on the
//! sender's core, right after the sender yields: that is what makes a
//! chain of processes (a ring, a call and its reply) cheap. tokio's
//! work-stealing scheduler runs a woken task next on the waker's worker
//! only three times in a row; the fourth goes to the shared run queue and
//! wakes an idle worker, which steals it, so a chain of messages moves
//! between cores every few hops, each move a futex wake and cold caches.
//! A driver keeps such a chain to itself: a process woken by a process of
//! the same driver runs next on that driver (up to [`NEXT_IN_A_ROW`] times
//! in a row, then behind what is queued), and idle drivers take only work
//! that waits in a queue.
//!
//! # How
//! - One driver per tokio worker (one under a current-thread runtime, so
//!   tokio's paused clock still sees every process as a task of its own
//!   runtime). A driver is an ordinary tokio task: timers, I/O and
//!   `tokio::spawn` inside a process work as before.
//! - A process is an [`async_task`] task; its waker schedules it:
//!   - from a process of the same node on a driver: into that driver's
//!     *next* slot (the one it displaces goes to the back of the driver's
//!     queue), or to the back of the queue when the process woke itself;
//!   - from anywhere else (a timer, a link reader, another thread): into
//!     the node's shared injection queue, waking an idle driver if any.
//! - A driver looking for work takes its next slot, its own queue (the
//!   injection queue first every [`INJECT_EVERY`] polls), the injection
//!   queue, then steals half of another driver's queue; with none, it
//!   parks (returns `Pending`) until a push wakes it.
//! - A driver whose queue holds waiting work while another driver is idle
//!   wakes that one, which then steals, and ends its turn after the
//!   current poll. (tokio runs a task woken from a worker next on that
//!   worker, in a slot no other worker may steal from: the woken driver
//!   would wait for the waker's turn to end. Ending the turn puts the
//!   waker in tokio's run queue, where the idle worker takes it, so both
//!   drivers run.)
//! - A driver yields to tokio after [`TURN_NS`] of polling processes (or
//!   [`POLLS_PER_TURN`] polls), when tokio's cooperative budget (shared by
//!   the processes of one turn) runs out, or soon after a process woke a
//!   tokio task of the runtime's own that waits for this worker (a
//!   connection's writer, see [`end_turn_soon`]), so tokio's tasks, I/O
//!   and timers keep being served. Each yield costs a wake of tokio's idle
//!   worker (tokio notifies one whenever a task is requeued); at 256 polls
//!   a turn, that made a hop of a 1,000-process ring a third dearer than
//!   with long turns.
//!
//! # Guarantees
//! - A scheduled process is polled once, by one driver; a process woken
//!   while it runs is polled again after the current poll.
//! - A panic that escapes a process's own guard (see [`crate::process`])
//!   is caught by its task, never unwinds into a driver.
//! - No process waits while a driver is idle: a push into the injection
//!   queue, or into a queue whose driver is busy, wakes an idle driver
//!   (a sequentially consistent handshake between the pusher and a driver
//!   going idle).
//!
//! # Cost
//! A wake from a process of the same driver: the task's state CAS, a
//! thread-local read and a slot swap; a poll: two CAS of the task's state
//! and the driver's loop (no lock, no atomic shared with another core). A
//! wake from elsewhere: a lock-free push and a load; waking an idle driver
//! takes a short lock. Per process: the task header (about 48 bytes) and
//! the scheduler handle (8 bytes) beside its future.

use crossbeam_deque::{Injector, Steal, Stealer, Worker};
use parking_lot::Mutex;
use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

/// A scheduled process.
type Runnable = async_task::Runnable<()>;

/// Process polls per driver turn at most before it yields to tokio.
pub(crate) const POLLS_PER_TURN: u32 = 4096;
/// Time a driver's turn lasts at most before it yields to tokio, ns, as
/// the processes' own poll stamps tell it (checked after each poll).
pub(crate) const TURN_NS: u64 = 200_000;
/// Times in a row a driver runs the process in its next slot before the
/// queued ones get a turn.
pub(crate) const NEXT_IN_A_ROW: u32 = 32;
/// Every this many polls a driver takes from the injection queue before
/// its own, so injected work is not starved by a busy local chain.
pub(crate) const INJECT_EVERY: u32 = 61;

/// The node's process scheduler. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Scheduler {
    shared: Arc<Shared>,
}

struct Shared {
    injector: Injector<Runnable>,
    stealers: Box<[Stealer<Runnable>]>,
    /// Drivers parked for want of work, with their wakers. `idle_count`
    /// mirrors its length for a lock-free check on the push path.
    idle: Mutex<Vec<(usize, Waker)>>,
    idle_count: AtomicUsize,
}

/// The state of one driver, reachable from its thread while it polls.
struct Local {
    shared: Arc<Shared>,
    index: usize,
    queue: Worker<Runnable>,
    next: Cell<Option<Runnable>>,
    next_in_a_row: Cell<u32>,
    ticks: Cell<u32>,
    /// Set when this driver woke an idle one: end the turn after the
    /// current poll (see [`Driver`]).
    yield_soon: Cell<bool>,
}

thread_local! {
    /// The driver polling on this thread, if any.
    static CURRENT: Cell<*const Local> = const { Cell::new(std::ptr::null()) };
    /// When the process polled just before on this driver's turn finished
    /// its poll, ns on its node's clock (0: none, or something else ran
    /// since).
    static LAST_POLL_END: Cell<u64> = const { Cell::new(0) };
}

/// When the process poll just before this one, in the same driver turn,
/// ended (if it ended normally), and forgets it; 0 if none. A poll that
/// starts right after uses it as its own start (the driver's step from one
/// to the next, tens of nanoseconds, counts as the new poll's), which
/// saves a clock read per poll in a chain of messages.
#[inline]
pub(crate) fn take_poll_end() -> u64 {
    LAST_POLL_END.with(|c| c.replace(0))
}

/// Records when a process poll ended, for [`take_poll_end`].
#[inline]
pub(crate) fn poll_end(t: u64) {
    LAST_POLL_END.with(|c| c.set(t));
}

/// Asks the driver polling on this thread, if any, to end its turn after
/// the current poll. For a process that has just woken a tokio task that
/// tokio will run on this worker (in the slot no other worker takes from)
/// only once the driver yields. Costs a thread-local read.
#[inline]
pub(crate) fn end_turn_soon() {
    let here = CURRENT.with(Cell::get);
    // SAFETY: as in `Shared::schedule`.
    if let Some(local) = unsafe { here.as_ref() } {
        local.yield_soon.set(true);
    }
}

impl Scheduler {
    /// A scheduler with one driver per worker of `handle`'s runtime, the
    /// drivers spawned on it.
    pub(crate) fn start(handle: &tokio::runtime::Handle) -> Scheduler {
        let drivers = handle.metrics().num_workers().max(1);
        let queues: Vec<Worker<Runnable>> = (0..drivers).map(|_| Worker::new_fifo()).collect();
        let shared = Arc::new(Shared {
            injector: Injector::new(),
            stealers: queues.iter().map(Worker::stealer).collect(),
            idle: Mutex::new(Vec::with_capacity(drivers)),
            idle_count: AtomicUsize::new(0),
        });
        for (index, queue) in queues.into_iter().enumerate() {
            let local = Box::new(Local {
                shared: shared.clone(),
                index,
                queue,
                next: Cell::new(None),
                next_in_a_row: Cell::new(0),
                ticks: Cell::new(0),
                yield_soon: Cell::new(false),
            });
            handle.spawn(Driver { local });
        }
        Scheduler { shared }
    }

    /// Starts `future` as a process task. It is scheduled like a woken
    /// process: next on the spawner's driver when spawned from one.
    pub(crate) fn spawn<F>(&self, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let shared = self.shared.clone();
        let (runnable, task) = async_task::Builder::new().propagate_panic(true).spawn(
            move |()| future,
            async_task::WithInfo(move |r: Runnable, info: async_task::ScheduleInfo| {
                shared.schedule(r, info.woken_while_running)
            }),
        );
        task.detach();
        runnable.schedule();
    }

    /// Processes waiting in the drivers' queues and the injection queue.
    pub(crate) fn queued(&self) -> usize {
        let s = &self.shared;
        s.injector.len() + s.stealers.iter().map(Stealer::len).sum::<usize>()
    }
}

impl Shared {
    fn schedule(self: &Arc<Self>, runnable: Runnable, woke_itself: bool) {
        let here = CURRENT.with(Cell::get);
        // SAFETY: `CURRENT` points at the `Local` of the driver being
        // polled on this thread, which outlives the poll (it is boxed in
        // the driver and cleared before the poll returns).
        if let Some(local) = unsafe { here.as_ref() } {
            if Arc::ptr_eq(&local.shared, self) {
                local.push(runnable, woke_itself);
                return;
            }
        }
        self.injector.push(runnable);
        self.wake_idle();
    }

    /// Wakes one idle driver, if any; `true` if it did.
    fn wake_idle(&self) -> bool {
        // Pairs with the fence in `park`: either this load sees the parked
        // driver, or that driver's re-check sees the pushed work.
        std::sync::atomic::fence(Ordering::SeqCst);
        if self.idle_count.load(Ordering::SeqCst) == 0 {
            return false;
        }
        let woken = {
            let mut idle = self.idle.lock();
            let w = idle.pop();
            self.idle_count.store(idle.len(), Ordering::SeqCst);
            w
        };
        match woken {
            Some((_, waker)) => {
                waker.wake();
                true
            }
            None => false,
        }
    }

    /// Whether any queue holds work a driver could take.
    fn has_work(&self) -> bool {
        !self.injector.is_empty() || self.stealers.iter().any(|s| !s.is_empty())
    }
}

impl Local {
    fn push(&self, runnable: Runnable, woke_itself: bool) {
        if woke_itself {
            self.queue.push(runnable);
        } else if let Some(prev) = self.next.replace(Some(runnable)) {
            self.queue.push(prev);
        } else {
            return;
        }
        // Work waits in this driver's queue: an idle driver may take it.
        if self.shared.wake_idle() {
            self.yield_soon.set(true);
        }
    }

    fn find(&self) -> Option<Runnable> {
        let tick = self.ticks.get().wrapping_add(1);
        self.ticks.set(tick);
        if let Some(r) = self.next.take() {
            let n = self.next_in_a_row.get().saturating_add(1);
            if n <= NEXT_IN_A_ROW || self.queue.is_empty() {
                self.next_in_a_row.set(n);
                return Some(r);
            }
            // Its turn is up: behind what is queued.
            self.queue.push(r);
        }
        self.next_in_a_row.set(0);
        if tick % INJECT_EVERY == 0 {
            if let Some(r) = self.steal_injected() {
                return Some(r);
            }
        }
        self.queue
            .pop()
            .or_else(|| self.steal_injected())
            .or_else(|| self.steal_other())
    }

    fn steal_injected(&self) -> Option<Runnable> {
        loop {
            match self.shared.injector.steal_batch_and_pop(&self.queue) {
                Steal::Success(r) => return Some(r),
                Steal::Empty => return None,
                Steal::Retry => continue,
            }
        }
    }

    fn steal_other(&self) -> Option<Runnable> {
        let n = self.shared.stealers.len();
        for k in 1..n {
            let victim = &self.shared.stealers[(self.index + k) % n];
            loop {
                match victim.steal_batch_and_pop(&self.queue) {
                    Steal::Success(r) => return Some(r),
                    Steal::Empty => break,
                    Steal::Retry => continue,
                }
            }
        }
        None
    }

    /// Parks this driver unless work appeared meanwhile; `true` if parked.
    fn park(&self, waker: &Waker) -> bool {
        let shared = &self.shared;
        let mut idle = shared.idle.lock();
        idle.retain(|(i, _)| *i != self.index);
        idle.push((self.index, waker.clone()));
        shared.idle_count.store(idle.len(), Ordering::SeqCst);
        std::sync::atomic::fence(Ordering::SeqCst);
        if shared.has_work() {
            idle.retain(|(i, _)| *i != self.index);
            shared.idle_count.store(idle.len(), Ordering::SeqCst);
            return false;
        }
        true
    }
}

/// A driver's tokio task.
struct Driver {
    local: Box<Local>,
}

/// Clears `CURRENT` when a driver's turn ends, even by a panic.
struct Turn(*const Local);

impl Drop for Turn {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
        LAST_POLL_END.with(|c| c.set(0));
    }
}

impl Future for Driver {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let local: &Local = &self.local;
        let _turn = Turn(CURRENT.with(|c| c.replace(local as *const Local)));
        LAST_POLL_END.with(|c| c.set(0));
        let mut polls = 0;
        // When the turn's first stamped poll ended: a turn is timed from
        // there, with no clock read of its own.
        let mut started = 0;
        loop {
            let Some(runnable) = local.find() else {
                LAST_POLL_END.with(|c| c.set(0));
                if local.park(cx.waker()) {
                    return Poll::Pending;
                }
                continue;
            };
            runnable.run();
            polls += 1;
            let ended = LAST_POLL_END.with(Cell::get);
            if started == 0 {
                started = ended;
            }
            if polls >= POLLS_PER_TURN
                || ended.saturating_sub(started) >= TURN_NS
                || local.yield_soon.replace(false)
                || !tokio::task::coop::has_budget_remaining()
            {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // The runtime is shutting down: drop what this driver holds, and
        // what waits in the injection queue, so their futures are dropped.
        let local = &self.local;
        drop(local.next.take());
        while local.queue.pop().is_some() {}
        while let Steal::Success(_) | Steal::Retry = local.shared.injector.steal() {}
        let mut idle = local.shared.idle.lock();
        idle.retain(|(i, _)| *i != local.index);
        local.shared.idle_count.store(idle.len(), Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicU64;

    /// Two tasks that hand a turn back and forth forever on one driver,
    /// each turn a hop; each poll stamps its end `stamp_ns` later than the
    /// last (a logical clock). At hop `at`, the first spawns a tokio task
    /// (which tokio runs on this worker only once the driver yields),
    /// calling [`end_turn_soon`] first if `hurry`. Returns the hop at which
    /// the tokio task ran.
    fn hops_until_a_tokio_task_runs(at: u64, hurry: bool, stamp_ns: u64) -> u64 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async move {
            let sched = Scheduler::start(&tokio::runtime::Handle::current());
            let hops = Arc::new(AtomicU64::new(0));
            let clock = Arc::new(AtomicU64::new(1));
            let ran_at = Arc::new(AtomicU64::new(0));
            let (tx, rx) = tokio::sync::oneshot::channel();
            let tx = Arc::new(Mutex::new(Some(tx)));
            let wakers: Arc<Mutex<[Option<Waker>; 2]>> = Arc::default();
            for me in 0..2u64 {
                let (hops, clock, ran_at, tx, wakers) = (
                    hops.clone(),
                    clock.clone(),
                    ran_at.clone(),
                    tx.clone(),
                    wakers.clone(),
                );
                sched.spawn(std::future::poll_fn(move |cx| {
                    // Even hops are task 0's, odd ones task 1's.
                    if hops.load(Ordering::SeqCst) % 2 == me {
                        let hop = hops.fetch_add(1, Ordering::SeqCst);
                        if me == 0 && hop == at {
                            if hurry {
                                end_turn_soon();
                            }
                            let (hops, ran_at, tx) = (hops.clone(), ran_at.clone(), tx.clone());
                            tokio::spawn(async move {
                                ran_at.store(hops.load(Ordering::SeqCst), Ordering::SeqCst);
                                let _ = tx.lock().take().map(|tx| tx.send(()));
                            });
                        }
                        if let Some(w) = wakers.lock()[(1 - me) as usize].take() {
                            w.wake();
                        }
                    }
                    wakers.lock()[me as usize] = Some(cx.waker().clone());
                    poll_end(clock.fetch_add(stamp_ns, Ordering::SeqCst));
                    Poll::<()>::Pending
                }));
            }
            rx.await.unwrap();
            ran_at.load(Ordering::SeqCst)
        })
    }

    #[test]
    fn a_turn_ends_after_its_time_slice() {
        // 10 µs a poll: the turn ends after about TURN_NS / 10 µs polls,
        // long before the cap on polls.
        let polls = TURN_NS / 10_000;
        let ran = hops_until_a_tokio_task_runs(0, false, 10_000);
        assert!(ran <= polls + 2, "ran at hop {ran}, slice is {polls} polls");
    }

    #[test]
    fn a_turn_ends_at_the_cap_on_polls_when_polls_are_not_stamped() {
        let ran = hops_until_a_tokio_task_runs(0, false, 0);
        assert!(
            (u64::from(POLLS_PER_TURN) / 2..=u64::from(POLLS_PER_TURN) + 2).contains(&ran),
            "ran at hop {ran}"
        );
    }

    #[test]
    fn a_woken_tokio_task_runs_after_the_poll_that_asked_to_end_the_turn() {
        let ran = hops_until_a_tokio_task_runs(100, true, 0);
        assert!(ran <= 102, "ran at hop {ran}");
    }
}
