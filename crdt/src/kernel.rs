//! The dot kernel: a causal dot store shared by [`ORSet`](crate::ORSet) and
//! [`AWLWWMap`](crate::AWLWWMap).
//!
//! Every live entry `key → payload` is tagged with the dot of the event that
//! added it; the causal context holds every dot the state has seen. A dot
//! that is in the context but not live was removed. Joining two states keeps
//! a dot when both have it, or when one has it and the other has never seen
//! it: that is what makes an add that is concurrent with a remove win.
//!
//! Costs: `add`/`remove` and joining a delta cost O(d · log n) for a delta of
//! d dots into a state of n; joining a whole state costs O(n + m). A reverse
//! index dot → key (not serialized, rebuilt on decode) makes removals found
//! by the context cheap; it costs one dot and one key clone per entry.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::context::CausalContext;
use crate::id::{Dot, ReplicaId};

/// A causal dot store: keys with dot-tagged payloads, and a causal context.
#[derive(Clone)]
pub struct DotKernel<K, P> {
    entries: BTreeMap<K, BTreeMap<Dot, P>>,
    context: CausalContext,
    index: BTreeMap<Dot, K>,
}

impl<K, P> Default for DotKernel<K, P> {
    fn default() -> Self {
        Self {
            entries: BTreeMap::new(),
            context: CausalContext::default(),
            index: BTreeMap::new(),
        }
    }
}

impl<K: PartialEq, P: PartialEq> PartialEq for DotKernel<K, P> {
    fn eq(&self, other: &Self) -> bool {
        self.entries == other.entries && self.context == other.context
    }
}

impl<K: std::fmt::Debug, P: std::fmt::Debug> std::fmt::Debug for DotKernel<K, P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DotKernel")
            .field("entries", &self.entries)
            .field("context", &self.context)
            .finish()
    }
}

impl<K, P> DotKernel<K, P>
where
    K: Ord + Clone,
    P: Clone,
{
    /// The live entries: each key with its dots and payloads.
    pub fn entries(&self) -> impl Iterator<Item = (&K, &BTreeMap<Dot, P>)> {
        self.entries.iter()
    }

    /// The dots and payloads of one key.
    pub fn get(&self, key: &K) -> Option<&BTreeMap<Dot, P>> {
        self.entries.get(key)
    }

    /// The causal context.
    pub fn context(&self) -> &CausalContext {
        &self.context
    }

    /// The number of live keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// The number of live dots (at least the number of keys).
    pub fn dot_count(&self) -> usize {
        self.index.len()
    }

    /// Whether no key is live (the context may still hold removals).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Whether the store has neither entries nor context (the bottom state).
    pub fn is_bottom(&self) -> bool {
        self.entries.is_empty() && self.context.is_empty()
    }

    /// Adds `payload` under `key` as a new event of `replica`, replacing
    /// what this state had under `key`. Returns the delta.
    pub fn add(&mut self, replica: &ReplicaId, key: K, payload: P) -> Self {
        let dot = self.context.next_dot(replica);
        let mut delta = self.remove_delta(&key);
        delta.context.insert(&dot);
        delta.index.insert(dot.clone(), key.clone());
        delta.entries.entry(key).or_default().insert(dot, payload);
        let _ = self.join(&delta);
        delta
    }

    /// Removes `key` (every dot this state has for it). Returns the delta,
    /// which is empty when the key was absent.
    pub fn remove(&mut self, key: &K) -> Self {
        let delta = self.remove_delta(key);
        let _ = self.join(&delta);
        delta
    }

    fn remove_delta(&self, key: &K) -> Self {
        let mut delta = Self::default();
        if let Some(dots) = self.entries.get(key) {
            for dot in dots.keys() {
                delta.context.insert(dot);
            }
        }
        delta
    }

    /// Joins `other` into this state: the least upper bound of the two.
    /// Returns whether this state changed.
    pub fn join(&mut self, other: &Self) -> bool {
        // Removals: our dots that `other` has seen but does not hold.
        let mut gone = Vec::new();
        for (replica, ranges) in other.context.ranges() {
            for &(lo, hi) in ranges {
                let from = Dot::new(replica.clone(), lo);
                let to = Dot::new(replica.clone(), hi);
                for (dot, key) in self.index.range(from..=to) {
                    let held = other.entries.get(key).is_some_and(|d| d.contains_key(dot));
                    if !held {
                        gone.push(dot.clone());
                    }
                }
            }
        }
        let mut changed = !gone.is_empty();
        for dot in gone {
            self.drop_dot(&dot);
        }
        // Additions: their dots that we have never seen.
        for (key, dots) in &other.entries {
            for (dot, payload) in dots {
                if self.context.contains(dot) {
                    continue;
                }
                changed = true;
                self.entries
                    .entry(key.clone())
                    .or_default()
                    .insert(dot.clone(), payload.clone());
                self.index.insert(dot.clone(), key.clone());
            }
        }
        self.context.union(&other.context) | changed
    }

    fn drop_dot(&mut self, dot: &Dot) {
        if let Some(key) = self.index.remove(dot) {
            if let Some(dots) = self.entries.get_mut(&key) {
                dots.remove(dot);
                if dots.is_empty() {
                    self.entries.remove(&key);
                }
            }
        }
    }

    /// Splits the state into parts that each hold at most `max_items` live
    /// dots or context ranges. Every part is below this state (joining it in
    /// changes nothing here) and the join of all parts is this state, so the
    /// parts may be shipped, lost, duplicated and reordered independently.
    pub fn split(&self, max_items: usize) -> Vec<Self> {
        let max_items = max_items.max(1);
        let mut parts = Vec::new();
        let mut current = Self::default();
        let mut in_current = 0;
        for (key, dots) in &self.entries {
            for (dot, payload) in dots {
                current
                    .entries
                    .entry(key.clone())
                    .or_default()
                    .insert(dot.clone(), payload.clone());
                current.context.insert(dot);
                current.index.insert(dot.clone(), key.clone());
                in_current += 1;
                if in_current == max_items {
                    parts.push(std::mem::take(&mut current));
                    in_current = 0;
                }
            }
        }
        if in_current > 0 {
            parts.push(current);
        }
        // The removed dots: the context minus the live dots.
        let removed = self.context.minus_sorted(self.index.keys());
        for context in removed.split(max_items) {
            parts.push(Self {
                context,
                ..Self::default()
            });
        }
        parts
    }

    /// Forgets every dot of `replica`, live or seen, as if it had never
    /// existed. Not a CRDT operation: a membership decision (the replica is
    /// gone for good) that every replica must take for itself.
    pub fn purge_replica(&mut self, replica: &ReplicaId) {
        let from = Dot::new(replica.clone(), 0);
        let to = Dot::new(replica.clone(), u64::MAX);
        let dots: Vec<Dot> = self
            .index
            .range(from..=to)
            .map(|(d, _)| d.clone())
            .collect();
        for dot in dots {
            self.drop_dot(&dot);
        }
        self.context.remove_replica(replica);
    }

    /// Purges every replica that `keep` rejects (see
    /// [`purge_replica`](Self::purge_replica)); used on an incoming state,
    /// before joining it, to refuse dots of replicas known to be gone.
    pub fn retain_replicas(&mut self, mut keep: impl FnMut(&ReplicaId) -> bool) {
        let gone: Vec<ReplicaId> = self
            .context
            .replicas()
            .filter(|r| !keep(r))
            .cloned()
            .collect();
        for replica in gone {
            self.purge_replica(&replica);
        }
    }

    fn from_parts(entries: BTreeMap<K, BTreeMap<Dot, P>>, mut context: CausalContext) -> Self {
        let mut index = BTreeMap::new();
        let mut kept = BTreeMap::new();
        for (key, dots) in entries {
            if dots.is_empty() {
                continue;
            }
            for dot in dots.keys() {
                // A live dot is always seen: restore the invariant for
                // input that lacks it rather than trust it.
                context.insert(dot);
                index.insert(dot.clone(), key.clone());
            }
            kept.insert(key, dots);
        }
        Self {
            entries: kept,
            context,
            index,
        }
    }
}

#[derive(Serialize)]
struct WireRef<'a, K, P> {
    entries: &'a BTreeMap<K, BTreeMap<Dot, P>>,
    context: &'a CausalContext,
}

#[derive(Deserialize)]
#[serde(bound(deserialize = "K: Ord + DeserializeOwned, P: DeserializeOwned"))]
struct Wire<K, P> {
    entries: BTreeMap<K, BTreeMap<Dot, P>>,
    context: CausalContext,
}

impl<K: Serialize, P: Serialize> Serialize for DotKernel<K, P> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        WireRef {
            entries: &self.entries,
            context: &self.context,
        }
        .serialize(serializer)
    }
}

impl<'de, K, P> Deserialize<'de> for DotKernel<K, P>
where
    K: Ord + Clone + DeserializeOwned,
    P: Clone + DeserializeOwned,
{
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let wire = Wire::<K, P>::deserialize(deserializer)?;
        Ok(Self::from_parts(wire.entries, wire.context))
    }
}
