//! The observed-remove set, add-wins.

use serde::{Deserialize, Serialize};

use crate::id::ReplicaId;
use crate::kernel::DotKernel;
use crate::{Value, kernel_crdt};

/// A set where an add concurrent with a remove of the same element wins;
/// a remove takes away only the adds it has seen.
#[derive(Clone, PartialEq, Debug, Serialize, Deserialize)]
#[serde(bound(
    serialize = "T: Serialize",
    deserialize = "T: Ord + Clone + serde::de::DeserializeOwned"
))]
pub struct ORSet<T> {
    kernel: DotKernel<T, ()>,
}

impl<T> Default for ORSet<T> {
    fn default() -> Self {
        Self {
            kernel: DotKernel::default(),
        }
    }
}

impl<T: Ord + Clone> ORSet<T> {
    /// Adds `element` as an event of `replica`. Returns the delta.
    pub fn add(&mut self, replica: &ReplicaId, element: T) -> Self {
        Self {
            kernel: self.kernel.add(replica, element, ()),
        }
    }

    /// Removes `element` (the adds of it that this replica has seen).
    /// Returns the delta.
    pub fn remove(&mut self, element: &T) -> Self {
        Self {
            kernel: self.kernel.remove(element),
        }
    }

    /// Whether `element` is in the set.
    pub fn contains(&self, element: &T) -> bool {
        self.kernel.get(element).is_some()
    }

    /// The elements, in order.
    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.kernel.entries().map(|(k, _)| k)
    }

    /// The number of elements.
    pub fn len(&self) -> usize {
        self.kernel.len()
    }

    /// Whether the set has no elements.
    pub fn is_empty(&self) -> bool {
        self.kernel.is_empty()
    }

    /// The dot store underneath (for inspection and membership purges).
    pub fn kernel(&self) -> &DotKernel<T, ()> {
        &self.kernel
    }

    /// See [`DotKernel::purge_replica`].
    pub fn purge_replica(&mut self, replica: &ReplicaId) {
        self.kernel.purge_replica(replica);
    }
}

kernel_crdt!(impl<T> for ORSet<T> where T: Ord + Value);
