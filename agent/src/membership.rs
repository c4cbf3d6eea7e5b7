//! Membership as this node's agent has seen it: every node it has known,
//! when each was last seen up, and each peer's recent link downs (for the
//! flapping-link warning).
//!
//! Kept from node events in the order they arrive, so a node that went
//! down and came back is up, and the overview can list nodes that are gone
//! (with when they were last seen) besides the connected ones.

use parking_lot::Mutex;
use std::collections::{HashMap, VecDeque};
use std::time::Duration;

/// The nodes this agent has seen and their link history.
#[derive(Debug, Default)]
pub(crate) struct Membership {
    /// Nodes seen, with when they were last seen up (ms since the epoch).
    known: Mutex<HashMap<String, Option<u64>>>,
    /// Link downs per peer, ms since the epoch.
    downs: Mutex<HashMap<String, VecDeque<u64>>>,
}

impl Membership {
    /// `node` is up (connected, or answered) at `now_ms`.
    pub(crate) fn seen_up(&self, node: &str, now_ms: u64) {
        self.known.lock().insert(node.to_owned(), Some(now_ms));
    }

    /// The link to `node` went down at `now_ms`.
    pub(crate) fn went_down(&self, node: &str, now_ms: u64) {
        if let Some(seen) = self.known.lock().get_mut(node) {
            *seen = Some(now_ms);
        }
        self.downs
            .lock()
            .entry(node.to_owned())
            .or_default()
            .push_back(now_ms);
    }

    /// When `node` was last seen up, if it is known.
    pub(crate) fn last_seen(&self, node: &str) -> Option<u64> {
        self.known.lock().get(node).copied().flatten()
    }

    /// Known nodes not in `up`, sorted, with when each was last seen.
    pub(crate) fn down(&self, up: &[String]) -> Vec<(String, Option<u64>)> {
        let mut down: Vec<_> = self
            .known
            .lock()
            .iter()
            .filter(|(n, _)| !up.contains(n))
            .map(|(n, t)| (n.clone(), *t))
            .collect();
        down.sort();
        down
    }

    /// Peers with link downs within `window` of `now_ms`, and how many;
    /// older downs are forgotten.
    pub(crate) fn flaps(&self, window: Duration, now_ms: u64) -> Vec<(String, u32)> {
        let window = window.as_millis() as u64;
        let mut downs = self.downs.lock();
        downs.retain(|_, d| {
            while d
                .front()
                .is_some_and(|t| now_ms.saturating_sub(*t) > window)
            {
                d.pop_front();
            }
            !d.is_empty()
        });
        let mut out: Vec<(String, u32)> = downs
            .iter()
            .map(|(peer, d)| (peer.clone(), d.len() as u32))
            .collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_node_that_went_down_is_listed_with_when_it_was_last_seen() {
        let m = Membership::default();
        m.seen_up("b@h", 1_000);
        m.seen_up("c@h", 1_000);
        m.went_down("c@h", 5_000);
        assert_eq!(
            m.down(&["b@h".to_owned()]),
            [("c@h".to_owned(), Some(5_000))]
        );
        assert_eq!(m.last_seen("c@h"), Some(5_000));
        m.seen_up("c@h", 6_000);
        assert!(m.down(&["b@h".to_owned(), "c@h".to_owned()]).is_empty());
    }

    #[test]
    fn link_downs_outside_the_window_are_forgotten() {
        let m = Membership::default();
        for t in [0, 10_000, 20_000] {
            m.went_down("b@h", t);
        }
        let w = Duration::from_secs(60);
        assert_eq!(m.flaps(w, 30_000), [("b@h".to_owned(), 3)]);
        assert_eq!(m.flaps(w, 75_000), [("b@h".to_owned(), 1)]);
        assert!(m.flaps(w, 200_000).is_empty());
    }
}
