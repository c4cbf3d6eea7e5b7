//! Timers that deliver messages: `send_after` and `send_interval`.
//!
//! Each timer is a small tokio task (a few hundred bytes) sleeping on
//! tokio's timer wheel, so timers follow tokio's paused clock in tests.
//! Dropping a [`TimerRef`] does not cancel the timer, as on the BEAM; call
//! [`TimerRef::cancel`]. An interval timer stops by itself once its target
//! has exited.

use crate::pid::{Message, Pid};
use std::time::Duration;
use tokio::task::AbortHandle;

/// A handle to a running timer.
#[derive(Debug)]
pub struct TimerRef {
    handle: AbortHandle,
}

impl TimerRef {
    /// Cancels the timer. A message already sent stays in the mailbox.
    pub fn cancel(&self) {
        self.handle.abort();
    }

    /// Whether the timer has fired (one-shot) or stopped.
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}

/// Sends `msg` to `pid` after `after`.
pub fn send_after<M: Message>(pid: &Pid<M>, msg: M, after: Duration) -> TimerRef {
    let rt = pid.node().handle().clone();
    let pid = pid.clone();
    let handle = rt.spawn(async move {
        tokio::time::sleep(after).await;
        pid.send(msg);
    });
    TimerRef {
        handle: handle.abort_handle(),
    }
}

/// Sends a clone of `msg` to `pid` every `period`, the first after one
/// period, until cancelled or until `pid` exits.
pub fn send_interval<M: Message + Clone>(pid: &Pid<M>, msg: M, period: Duration) -> TimerRef {
    send_interval_with(pid, period, move || msg.clone())
}

/// Sends `make()` to `pid` every `period`, the first after one period,
/// until cancelled or until `pid` exits.
pub(crate) fn send_interval_with<M: Message>(
    pid: &Pid<M>,
    period: Duration,
    make: impl Fn() -> M + Send + 'static,
) -> TimerRef {
    let rt = pid.node().handle().clone();
    let pid = pid.clone();
    let handle = rt.spawn(async move {
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            if !pid.is_alive() {
                break;
            }
            pid.send(make());
        }
    });
    TimerRef {
        handle: handle.abort_handle(),
    }
}
