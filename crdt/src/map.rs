//! The add-wins map with last-writer-wins values.

use serde::{Deserialize, Serialize};

use crate::id::{Dot, ReplicaId};
use crate::kernel::DotKernel;
use crate::{Value, kernel_crdt};

/// A value and the writer's timestamp.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct Timestamped<V> {
    /// The value.
    pub value: V,
    /// The writer's timestamp (any monotonic unit; microseconds since the
    /// epoch by convention).
    pub ts: u64,
}

/// A map where a put concurrent with a remove of the same key wins, and
/// concurrent puts of one key resolve to the value with the highest
/// timestamp (then the highest dot). The concurrent values are kept until a
/// later put or remove supersedes them, so the choice is the same on every
/// replica.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(bound(
    serialize = "K: Serialize, V: Serialize",
    deserialize = "K: Ord + Clone + serde::de::DeserializeOwned, V: Clone + serde::de::DeserializeOwned"
))]
pub struct AWLWWMap<K, V> {
    kernel: DotKernel<K, Timestamped<V>>,
}

impl<K, V> Default for AWLWWMap<K, V> {
    fn default() -> Self {
        Self {
            kernel: DotKernel::default(),
        }
    }
}

impl<K: Ord + Clone, V: Clone> AWLWWMap<K, V> {
    /// Puts `value` under `key` as an event of `replica` at time `ts`.
    /// Returns the delta.
    pub fn put(&mut self, replica: &ReplicaId, key: K, value: V, ts: u64) -> Self {
        Self {
            kernel: self.kernel.add(replica, key, Timestamped { value, ts }),
        }
    }

    /// Removes `key`. Returns the delta.
    pub fn remove(&mut self, key: &K) -> Self {
        Self {
            kernel: self.kernel.remove(key),
        }
    }

    /// The value under `key`.
    pub fn get(&self, key: &K) -> Option<&V> {
        self.kernel.get(key).map(|dots| &winner(dots).1.value)
    }

    /// The value under `key` with the dot that wrote it.
    pub fn get_with_dot(&self, key: &K) -> Option<(&Dot, &Timestamped<V>)> {
        self.kernel.get(key).map(winner)
    }

    /// Whether `key` is present.
    pub fn contains_key(&self, key: &K) -> bool {
        self.kernel.get(key).is_some()
    }

    /// The entries, in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&K, &V)> {
        self.kernel
            .entries()
            .map(|(k, dots)| (k, &winner(dots).1.value))
    }

    /// The entries with the dot that wrote each value.
    pub fn iter_with_dots(&self) -> impl Iterator<Item = (&K, &Dot, &Timestamped<V>)> {
        self.kernel.entries().map(|(k, dots)| {
            let (dot, v) = winner(dots);
            (k, dot, v)
        })
    }

    /// The number of keys.
    pub fn len(&self) -> usize {
        self.kernel.len()
    }

    /// Whether the map has no keys (it may still carry context).
    pub fn is_empty(&self) -> bool {
        self.kernel.is_empty()
    }

    /// The dot store underneath.
    pub fn kernel(&self) -> &DotKernel<K, Timestamped<V>> {
        &self.kernel
    }

    /// See [`DotKernel::purge_replica`].
    pub fn purge_replica(&mut self, replica: &ReplicaId) {
        self.kernel.purge_replica(replica);
    }

    /// See [`DotKernel::retain_replicas`].
    pub fn retain_replicas(&mut self, keep: impl FnMut(&ReplicaId) -> bool) {
        self.kernel.retain_replicas(keep);
    }
}

fn winner<V>(dots: &std::collections::BTreeMap<Dot, Timestamped<V>>) -> (&Dot, &Timestamped<V>) {
    dots.iter()
        .max_by(|a, b| (a.1.ts, a.0).cmp(&(b.1.ts, b.0)))
        .expect("a live key has at least one dot")
}

kernel_crdt!(impl<K, V> for AWLWWMap<K, V> where K: Ord + Value, V: PartialEq + Value);
