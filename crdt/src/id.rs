//! Replica identities and dots.

use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// One replica of a CRDT: a node name and the node's incarnation.
///
/// The incarnation matters: a node that restarts begins with empty state,
/// and if it reused its old identity its fresh increments and dots would
/// collide with the ones its previous life already shipped. The runtime's
/// node `creation` is a natural incarnation.
///
/// Cloning is a reference-count increment.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ReplicaId {
    node: Arc<str>,
    incarnation: u32,
}

impl ReplicaId {
    /// The replica of `node` in its `incarnation`.
    pub fn new(node: impl Into<Arc<str>>, incarnation: u32) -> Self {
        Self {
            node: node.into(),
            incarnation,
        }
    }

    /// The node name.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The node's incarnation.
    pub fn incarnation(&self) -> u32 {
        self.incarnation
    }
}

impl fmt::Debug for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.node, self.incarnation)
    }
}

impl fmt::Display for ReplicaId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

/// A unique event: the `counter`-th event created by `replica`
/// (counters start at 1).
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Dot {
    /// The replica that created the event.
    pub replica: ReplicaId,
    /// Its sequence number at that replica, from 1.
    pub counter: u64,
}

impl Dot {
    /// The dot `(replica, counter)`.
    pub fn new(replica: ReplicaId, counter: u64) -> Self {
        Self { replica, counter }
    }
}

impl fmt::Debug for Dot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "({:?},{})", self.replica, self.counter)
    }
}
