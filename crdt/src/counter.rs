//! Grow-only and positive-negative counters.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::Crdt;
use crate::id::ReplicaId;

/// A grow-only counter: one monotonic count per replica; the value is
/// their sum, and a join takes the maximum per replica.
#[derive(Clone, Default, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct GCounter {
    counts: BTreeMap<ReplicaId, u64>,
}

impl GCounter {
    /// Adds `by` to `replica`'s count. Returns the delta: that replica's
    /// new count alone.
    pub fn increment(&mut self, replica: &ReplicaId, by: u64) -> Self {
        let count = self.counts.entry(replica.clone()).or_default();
        *count = count.saturating_add(by);
        let mut delta = Self::default();
        delta.counts.insert(replica.clone(), *count);
        delta
    }

    /// The counter's value: the sum over replicas (saturating).
    pub fn value(&self) -> u64 {
        self.counts.values().fold(0u64, |a, &b| a.saturating_add(b))
    }

    /// Each replica's own count.
    pub fn counts(&self) -> impl Iterator<Item = (&ReplicaId, u64)> {
        self.counts.iter().map(|(r, &c)| (r, c))
    }
}

impl Crdt for GCounter {
    fn join_changed(&mut self, other: &Self) -> bool {
        let mut changed = false;
        for (replica, &theirs) in &other.counts {
            match self.counts.get_mut(replica) {
                Some(mine) if *mine >= theirs => {}
                Some(mine) => {
                    *mine = theirs;
                    changed = true;
                }
                None => {
                    self.counts.insert(replica.clone(), theirs);
                    changed = true;
                }
            }
        }
        changed
    }

    fn split(&self, max_items: usize) -> Vec<Self> {
        let entries: Vec<_> = self.counts.iter().collect();
        entries
            .chunks(max_items.max(1))
            .map(|chunk| Self {
                counts: chunk.iter().map(|(r, c)| ((*r).clone(), **c)).collect(),
            })
            .collect()
    }

    fn is_bottom(&self) -> bool {
        self.counts.is_empty()
    }
}

/// A counter that goes up and down: two grow-only counters, one for
/// increments and one for decrements.
#[derive(Clone, Default, PartialEq, Eq, Debug, Serialize, Deserialize)]
pub struct PNCounter {
    up: GCounter,
    down: GCounter,
}

impl PNCounter {
    /// Adds `by` (which may be negative) as an event of `replica`. Returns
    /// the delta.
    pub fn add(&mut self, replica: &ReplicaId, by: i64) -> Self {
        let mut delta = Self::default();
        if by >= 0 {
            delta.up = self.up.increment(replica, by.unsigned_abs());
        } else {
            delta.down = self.down.increment(replica, by.unsigned_abs());
        }
        delta
    }

    /// The value: increments minus decrements (saturating at the `i64`
    /// range).
    pub fn value(&self) -> i64 {
        let v = i128::from(self.up.value()) - i128::from(self.down.value());
        v.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
    }
}

impl Crdt for PNCounter {
    fn join_changed(&mut self, other: &Self) -> bool {
        self.up.join_changed(&other.up) | self.down.join_changed(&other.down)
    }

    fn split(&self, max_items: usize) -> Vec<Self> {
        let ups = self.up.split(max_items).into_iter().map(|up| Self {
            up,
            down: GCounter::default(),
        });
        let downs = self.down.split(max_items).into_iter().map(|down| Self {
            up: GCounter::default(),
            down,
        });
        ups.chain(downs).collect()
    }

    fn is_bottom(&self) -> bool {
        self.up.is_bottom() && self.down.is_bottom()
    }
}
