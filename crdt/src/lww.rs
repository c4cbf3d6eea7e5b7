//! The last-writer-wins register.

use serde::{Deserialize, Serialize};

use crate::id::ReplicaId;
use crate::{Crdt, Value};

/// When a value was written: a timestamp (the writer's clock, in any
/// monotonic unit the application picks, typically microseconds since the
/// epoch) and the writer, which breaks ties.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug, Serialize, Deserialize)]
pub struct Stamp {
    /// The writer's timestamp.
    pub ts: u64,
    /// The writer.
    pub replica: ReplicaId,
}

/// A register holding the value with the highest [`Stamp`].
///
/// A write never loses against what the writing replica has already seen:
/// its stamp is at least one past the current one, so a replica whose clock
/// lags still overwrites (the rule of a hybrid logical clock). Concurrent
/// writes on different replicas: the higher timestamp wins, then the higher
/// replica id.
#[derive(Clone, PartialEq, Eq, Debug, Serialize, Deserialize)]
#[serde(bound(
    serialize = "T: Serialize",
    deserialize = "T: serde::de::DeserializeOwned"
))]
pub struct LWWRegister<T> {
    slot: Option<(T, Stamp)>,
}

impl<T> Default for LWWRegister<T> {
    fn default() -> Self {
        Self { slot: None }
    }
}

impl<T: Clone> LWWRegister<T> {
    /// Writes `value` as `replica` at time `ts`. Returns the delta.
    pub fn set(&mut self, replica: &ReplicaId, value: T, ts: u64) -> Self {
        let floor = self
            .slot
            .as_ref()
            .map_or(0, |(_, s)| s.ts.saturating_add(1));
        let stamp = Stamp {
            ts: ts.max(floor),
            replica: replica.clone(),
        };
        let delta = Self {
            slot: Some((value, stamp)),
        };
        self.slot.clone_from(&delta.slot);
        delta
    }

    /// The current value, if any was written.
    pub fn get(&self) -> Option<&T> {
        self.slot.as_ref().map(|(v, _)| v)
    }

    /// The stamp of the current value.
    pub fn stamp(&self) -> Option<&Stamp> {
        self.slot.as_ref().map(|(_, s)| s)
    }
}

impl<T: PartialEq + Value> Crdt for LWWRegister<T> {
    fn join_changed(&mut self, other: &Self) -> bool {
        if let Some((_, theirs)) = &other.slot {
            let newer = self.slot.as_ref().is_none_or(|(_, mine)| theirs > mine);
            if newer {
                self.slot.clone_from(&other.slot);
                return true;
            }
        }
        false
    }

    fn split(&self, _max_items: usize) -> Vec<Self> {
        if self.slot.is_some() {
            vec![self.clone()]
        } else {
            Vec::new()
        }
    }

    fn is_bottom(&self) -> bool {
        self.slot.is_none()
    }
}
