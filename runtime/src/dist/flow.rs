//! Flow control: a process that sends on a link whose queue is over the
//! busy limit is suspended at its next `recv` until the link has drained
//! to half the limit (Erlang's busy distribution port).
//!
//! # Cost
//! One relaxed load per remote send (the link's queue against the limit);
//! a lock and a map entry only for a process that is suspended.

use super::peer::Peer;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;

/// Processes suspended on a busy link, by serial.
#[derive(Default)]
pub(crate) struct FlowControl {
    suspended: Mutex<HashMap<u64, Arc<Peer>>>,
}

impl std::fmt::Debug for FlowControl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FlowControl")
            .field("suspended", &self.suspended.lock().len())
            .finish()
    }
}

impl FlowControl {
    /// After a send on `peer`: suspends the calling process at its next
    /// `recv` if the link's queue is over `busy_limit`.
    pub(crate) fn check_busy(&self, peer: &Arc<Peer>, busy_limit: usize) {
        if peer.queued() <= busy_limit {
            return;
        }
        crate::process::with_current(|core| {
            self.suspended
                .lock()
                .insert(core.id().serial(), peer.clone());
            core.suspended.store(true, Relaxed);
        });
    }

    /// For a suspended process: ready once its link has drained to half
    /// of `busy_limit`.
    pub(crate) fn poll_resume(
        &self,
        serial: u64,
        busy_limit: usize,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<()> {
        let peer = self.suspended.lock().get(&serial).cloned();
        let Some(peer) = peer else {
            return Poll::Ready(());
        };
        match peer.poll_drained(busy_limit / 2, cx) {
            Poll::Ready(()) => {
                self.suspended.lock().remove(&serial);
                Poll::Ready(())
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
