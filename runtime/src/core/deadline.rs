//! Deadlines for waits that almost always end early (a call's reply), at
//! the cost of a lock and a slot, not a timer.
//!
//! # Why not a tokio timer per wait
//! Registering a tokio timer earlier than the time driver's next wake
//! wakes the thread parked on the driver, and a driver with no timers
//! left has no next wake. A call that arms a timer and cancels it a
//! microsecond later therefore wakes an idle worker thread on nearly
//! every call: on 2 threads that doubled the call round trip (p50 3.4 →
//! 1.0–1.4 µs once removed) and let the woken worker steal the caller.
//!
//! # Design
//! A node keeps its pending deadlines in 16 shards (picked per thread),
//! each a slab of `(deadline, waker)` slots under a short lock. One task,
//! the *ticker*, sleeps until the earliest deadline it knows of, wakes the
//! waits whose deadline has passed, and sleeps again; it exits when no
//! deadline is pending and is started again by the next one. A new
//! deadline wakes the ticker only when it is earlier than the one the
//! ticker sleeps for, so a stream of calls with the same timeout wakes it
//! about once per timeout period, whatever the call rate.
//!
//! # Guarantees
//! - A wait ends with [`Elapsed`] no earlier than its deadline, on the
//!   node clock, and typically within a millisecond after it (tokio's
//!   timer resolution).
//! - A wait whose future finishes first is never reported elapsed.
//! - Memory: one 40-byte slot per pending wait, reused; a shard whose
//!   slab grew past 4,096 slots is shrunk once it empties.
//!
//! # Cost
//! Per wait that ends before its deadline: a thread-local read, two uncontended lock round trips, a waker clone and drop, an
//! atomic load. Nothing when the future is ready on its first poll.

use crate::clock::Clock;
use parking_lot::Mutex;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::sync::Notify;

const SHARDS: usize = 16;
const SHRINK_ABOVE: usize = 4096;
/// `armed`: no ticker runs.
const IDLE: u64 = u64::MAX;
/// `armed`: the ticker is working out what to sleep for; any new deadline
/// must wake it.
const COMPUTING: u64 = 0;

/// The deadline of a wait passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Elapsed;

/// The pending deadlines of one node.
pub(crate) struct Deadlines {
    shards: [Mutex<Shard>; SHARDS],
    /// What the ticker sleeps until (node ns), or [`IDLE`]/[`COMPUTING`].
    armed: AtomicU64,
    notify: Notify,
    clock: Clock,
    handle: tokio::runtime::Handle,
}

#[derive(Default)]
struct Shard {
    slots: Vec<Slot>,
    free: Vec<u32>,
    live: usize,
}

struct Slot {
    generation: u32,
    deadline: u64,
    waker: Option<Waker>,
}

/// Where a registered wait's slot is.
#[derive(Debug, Clone, Copy)]
struct Key {
    shard: u8,
    index: u32,
    generation: u32,
    deadline: u64,
}

thread_local! {
    static SHARD: u8 = {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        (NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % SHARDS as u64) as u8
    };
}

impl Deadlines {
    pub(crate) fn new(clock: Clock, handle: tokio::runtime::Handle) -> Arc<Self> {
        Arc::new(Deadlines {
            shards: std::array::from_fn(|_| Mutex::new(Shard::default())),
            armed: AtomicU64::new(IDLE),
            notify: Notify::new(),
            clock,
            handle,
        })
    }

    /// Runs `fut` until it finishes or `timeout` passes.
    #[cfg(test)]
    pub(crate) fn within<F: Future>(self: &Arc<Self>, timeout: Duration, fut: F) -> Within<F> {
        self.until(self.deadline_in(timeout), fut)
    }

    /// The node-clock time `timeout` from now.
    pub(crate) fn deadline_in(&self, timeout: Duration) -> u64 {
        self.clock.now_ns().saturating_add(saturating_ns(timeout))
    }

    /// Runs `fut` until it finishes or the node clock reaches `deadline`
    /// (ns, as [`Clock::now_ns`] reads it).
    pub(crate) fn until<F: Future>(self: &Arc<Self>, deadline: u64, fut: F) -> Within<F> {
        Within {
            fut,
            deadlines: self.clone(),
            deadline,
            key: None,
            waker: None,
        }
    }

    /// Sleeps until the node clock reaches `deadline`.
    pub(crate) async fn sleep_until(&self, deadline: u64) {
        let left = deadline.saturating_sub(self.clock.now_ns());
        tokio::time::sleep(Duration::from_nanos(left)).await;
    }

    fn register(self: &Arc<Self>, deadline: u64, waker: &Waker) -> Key {
        let shard = SHARD.with(|s| *s);
        let (index, generation) = {
            let mut s = self.shards[shard as usize].lock();
            s.live += 1;
            match s.free.pop() {
                Some(i) => {
                    let slot = &mut s.slots[i as usize];
                    slot.deadline = deadline;
                    slot.waker = Some(waker.clone());
                    (i, slot.generation)
                }
                None => {
                    s.slots.push(Slot {
                        generation: 0,
                        deadline,
                        waker: Some(waker.clone()),
                    });
                    ((s.slots.len() - 1) as u32, 0)
                }
            }
        };
        let armed = self.armed.load(SeqCst);
        if armed == IDLE {
            if self
                .armed
                .compare_exchange(IDLE, COMPUTING, SeqCst, SeqCst)
                .is_ok()
            {
                self.handle.spawn(ticker(self.clone()));
            } else {
                self.notify.notify_one();
            }
        } else if armed == COMPUTING || deadline < armed {
            self.notify.notify_one();
        }
        Key {
            shard,
            index,
            generation,
            deadline,
        }
    }

    /// Replaces the waker of a registered wait (it moved to another task).
    fn rewake(&self, key: Key, waker: &Waker) {
        let mut s = self.shards[key.shard as usize].lock();
        if let Some(slot) = s.slots.get_mut(key.index as usize)
            && slot.generation == key.generation
            && slot.waker.is_some()
        {
            slot.waker = Some(waker.clone());
        }
    }

    /// Frees a wait's slot, unless the ticker has fired it already.
    fn remove(&self, key: Key) {
        let waker = {
            let mut s = self.shards[key.shard as usize].lock();
            let Some(slot) = s.slots.get_mut(key.index as usize) else {
                return;
            };
            if slot.generation != key.generation || slot.waker.is_none() {
                return;
            }
            let waker = vacate(slot);
            s.free.push(key.index);
            s.live -= 1;
            if s.live == 0 && s.slots.len() > SHRINK_ABOVE {
                s.slots = Vec::new();
                s.free = Vec::new();
            }
            waker
        };
        // Dropped outside the lock: a waker's drop may run arbitrary code.
        drop(waker);
    }

    /// Wakes every wait due at `now`; the earliest deadline still pending.
    fn fire(&self, now: u64) -> Option<u64> {
        let mut due = Vec::new();
        let mut earliest: Option<u64> = None;
        for shard in &self.shards {
            let mut s = shard.lock();
            let Shard { slots, free, live } = &mut *s;
            for (i, slot) in slots.iter_mut().enumerate() {
                if slot.waker.is_none() {
                    continue;
                }
                if slot.deadline <= now {
                    due.extend(vacate(slot));
                    free.push(i as u32);
                    *live -= 1;
                } else {
                    earliest = Some(earliest.map_or(slot.deadline, |e| e.min(slot.deadline)));
                }
            }
        }
        for w in due {
            w.wake();
        }
        earliest
    }

    fn any_pending(&self) -> bool {
        self.shards.iter().any(|s| s.lock().live > 0)
    }
}

/// `d` in nanoseconds, saturating at `u64::MAX` (585 years).
pub(crate) fn saturating_ns(d: Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

/// Empties a slot and moves it to its next generation.
fn vacate(slot: &mut Slot) -> Option<Waker> {
    slot.generation = slot.generation.wrapping_add(1);
    slot.waker.take()
}

/// Sleeps until the earliest pending deadline, wakes what is due, and
/// exits when nothing is pending.
async fn ticker(d: Arc<Deadlines>) {
    loop {
        d.armed.store(COMPUTING, SeqCst);
        let now = d.clock.now_ns();
        let Some(next) = d.fire(now) else {
            d.armed.store(IDLE, SeqCst);
            // A deadline registered while this ticker was computing may
            // have seen COMPUTING and only notified: take it over.
            if d.any_pending()
                && d.armed
                    .compare_exchange(IDLE, COMPUTING, SeqCst, SeqCst)
                    .is_ok()
            {
                continue;
            }
            return;
        };
        d.armed.store(next, SeqCst);
        let sleep = tokio::time::sleep(Duration::from_nanos(next.saturating_sub(now)));
        tokio::select! {
            () = sleep => {}
            () = d.notify.notified() => {}
        }
    }
}

impl std::fmt::Debug for Deadlines {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deadlines")
            .field("armed", &self.armed.load(SeqCst))
            .finish_non_exhaustive()
    }
}

pin_project_lite::pin_project! {
    /// A future with a deadline; see [`Deadlines::within`].
    pub(crate) struct Within<F> {
        #[pin]
        fut: F,
        deadlines: Arc<Deadlines>,
        deadline: u64,
        key: Option<Key>,
        waker: Option<Waker>,
    }

    impl<F> PinnedDrop for Within<F> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(key) = this.key.take() {
                this.deadlines.remove(key);
            }
        }
    }
}

impl<F: Future> Future for Within<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            if let Some(key) = this.key.take() {
                this.deadlines.remove(key);
            }
            return Poll::Ready(Ok(v));
        }
        let d = &*this.deadlines;
        match *this.key {
            None => {
                *this.key = Some(this.deadlines.register(*this.deadline, cx.waker()));
                *this.waker = Some(cx.waker().clone());
            }
            Some(key) => {
                if d.clock.now_ns() >= key.deadline {
                    this.key.take();
                    d.remove(key);
                    return Poll::Ready(Err(Elapsed));
                }
                if !this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                    d.rewake(key, cx.waker());
                    *this.waker = Some(cx.waker().clone());
                }
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ClockSource;

    fn deadlines() -> Arc<Deadlines> {
        Deadlines::new(
            Clock::new(ClockSource::Tokio),
            tokio::runtime::Handle::current(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_that_finishes_first_is_not_elapsed_and_frees_its_slot() {
        let d = deadlines();
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let wait = tokio::spawn({
            let d = d.clone();
            async move { d.within(Duration::from_secs(5), rx).await }
        });
        tokio::task::yield_now().await;
        assert!(d.any_pending());
        tx.send(7).unwrap();
        assert_eq!(wait.await.unwrap(), Ok(Ok(7)));
        assert!(!d.any_pending());
    }

    #[tokio::test(start_paused = true)]
    async fn a_wait_ends_elapsed_at_its_deadline_not_before() {
        let d = deadlines();
        let start = tokio::time::Instant::now();
        let (_tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let r = d.within(Duration::from_millis(250), rx).await;
        assert_eq!(r, Err(Elapsed));
        let took = start.elapsed();
        assert!(took >= Duration::from_millis(250), "{took:?}");
        assert!(took <= Duration::from_millis(252), "{took:?}");
        assert!(!d.any_pending());
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_wakes_a_ticker_sleeping_for_a_later_one() {
        let d = deadlines();
        let (_a, long) = tokio::sync::oneshot::channel::<u32>();
        let long = tokio::spawn({
            let d = d.clone();
            async move { d.within(Duration::from_secs(60), long).await }
        });
        tokio::task::yield_now().await;
        let start = tokio::time::Instant::now();
        let (_b, short) = tokio::sync::oneshot::channel::<u32>();
        assert_eq!(
            d.within(Duration::from_millis(100), short).await,
            Err(Elapsed)
        );
        assert!(start.elapsed() < Duration::from_secs(1));
        assert!(!long.is_finished());
        long.abort();
    }

    #[tokio::test(start_paused = true)]
    async fn the_ticker_exits_when_idle_and_starts_again_for_the_next_deadline() {
        let d = deadlines();
        for round in 0..3 {
            let (_tx, rx) = tokio::sync::oneshot::channel::<u32>();
            assert_eq!(
                d.within(Duration::from_millis(10), rx).await,
                Err(Elapsed),
                "round {round}"
            );
            // Let the ticker see that nothing is pending and exit.
            tokio::time::sleep(Duration::from_millis(5)).await;
            assert_eq!(d.armed.load(SeqCst), IDLE, "round {round}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_concurrent_waits_each_end_once() {
        let d = Deadlines::new(
            Clock::new(ClockSource::Fast),
            tokio::runtime::Handle::current(),
        );
        let mut tasks = Vec::new();
        for i in 0..2_000u64 {
            let d = d.clone();
            tasks.push(tokio::spawn(async move {
                let (tx, rx) = tokio::sync::oneshot::channel::<u64>();
                if i % 2 == 0 {
                    tx.send(i).unwrap();
                    d.within(Duration::from_secs(30), rx)
                        .await
                        .map(|r| r.unwrap())
                } else {
                    let r = d.within(Duration::from_millis(20 + i % 7), rx).await;
                    drop(tx);
                    r.map(|_| unreachable!("the sender is kept until the wait ends"))
                }
            }));
        }
        for (i, t) in tasks.into_iter().enumerate() {
            let r = t.await.unwrap();
            if i % 2 == 0 {
                assert_eq!(r, Ok(i as u64));
            } else {
                assert_eq!(r, Err(Elapsed));
            }
        }
        assert!(!d.any_pending());
    }
}
