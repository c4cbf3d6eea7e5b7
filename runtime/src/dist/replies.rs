//! Calls waiting for a reply from another node.
//!
//! When a call's reply handle is encoded for another node, the caller's
//! completion is parked here under a fresh id; a `Reply` frame with that id
//! completes it. If the connection to that node is lost, every call parked
//! for it fails with `NoConnection`; a call that times out removes its entry.

use super::frame::ReplyFailure;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Finishes one call with the encoded reply or a failure.
pub(crate) type Completion = Box<dyn FnOnce(Result<&[u8], ReplyFailure>) + Send>;

#[derive(Default)]
pub(crate) struct PendingReplies {
    next: AtomicU64,
    map: Mutex<HashMap<u64, (String, Completion)>>,
}

impl std::fmt::Debug for PendingReplies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingReplies")
            .field("pending", &self.map.lock().len())
            .finish()
    }
}

impl PendingReplies {
    /// Parks `completion` for a call to `node`; returns its id.
    pub(crate) fn register(&self, node: String, completion: Completion) -> u64 {
        let id = self.next.fetch_add(1, Relaxed) + 1;
        self.map.lock().insert(id, (node, completion));
        id
    }

    /// Completes call `id`, if it is still waiting.
    pub(crate) fn complete(&self, id: u64, result: Result<&[u8], ReplyFailure>) {
        let entry = self.map.lock().remove(&id);
        if let Some((_, completion)) = entry {
            completion(result);
        }
    }

    /// Forgets call `id` (its caller gave up).
    pub(crate) fn cancel(&self, id: u64) {
        self.map.lock().remove(&id);
    }

    /// Fails every call waiting on `node`.
    pub(crate) fn fail_node(&self, node: &str) {
        let failed: Vec<Completion> = {
            let mut map = self.map.lock();
            let ids: Vec<u64> = map
                .iter()
                .filter(|(_, (n, _))| n == node)
                .map(|(id, _)| *id)
                .collect();
            ids.into_iter()
                .filter_map(|id| map.remove(&id).map(|(_, c)| c))
                .collect()
        };
        for completion in failed {
            completion(Err(ReplyFailure::NoConnection));
        }
    }

    /// Calls waiting now.
    pub(crate) fn len(&self) -> usize {
        self.map.lock().len()
    }
}
