//! The causal context: which dots a replica has seen.
//!
//! Kept per replica as a sorted list of disjoint, non-adjacent inclusive
//! counter ranges, so the common case (every event of a replica seen, up
//! to some counter) is one range, and any set of dots (the removed dots
//! of a state, shipped in parts) has an exact, compact form. `contains` is
//! a binary search; `union` is a merge of sorted lists.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::id::{Dot, ReplicaId};

/// A set of dots.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CausalContext {
    ranges: BTreeMap<ReplicaId, Vec<(u64, u64)>>,
}

impl std::fmt::Debug for CausalContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.ranges.iter()).finish()
    }
}

impl CausalContext {
    /// Whether no dot is in the set.
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Whether `dot` is in the set.
    pub fn contains(&self, dot: &Dot) -> bool {
        self.ranges
            .get(&dot.replica)
            .is_some_and(|r| range_index(r, dot.counter).is_ok())
    }

    /// The highest counter of `replica` in the set (0 when none).
    pub fn max(&self, replica: &ReplicaId) -> u64 {
        self.ranges
            .get(replica)
            .and_then(|r| r.last())
            .map_or(0, |&(_, hi)| hi)
    }

    /// A fresh dot for `replica`: one past the highest counter seen. The
    /// dot is not added; the caller adds it with the event it names.
    pub fn next_dot(&self, replica: &ReplicaId) -> Dot {
        Dot::new(replica.clone(), self.max(replica) + 1)
    }

    /// Adds one dot.
    pub fn insert(&mut self, dot: &Dot) {
        self.insert_range(&dot.replica, dot.counter, dot.counter);
    }

    /// Adds the counters `lo..=hi` of `replica`.
    pub fn insert_range(&mut self, replica: &ReplicaId, lo: u64, hi: u64) {
        debug_assert!(lo <= hi);
        let ranges = self.ranges.entry(replica.clone()).or_default();
        merge_into(ranges, &[(lo, hi)]);
    }

    /// Adds every dot of `other`; returns whether a dot was new.
    pub fn union(&mut self, other: &CausalContext) -> bool {
        let mut changed = false;
        for (replica, theirs) in &other.ranges {
            match self.ranges.get_mut(replica) {
                Some(mine) => changed |= merge_into(mine, theirs),
                None => {
                    self.ranges.insert(replica.clone(), theirs.clone());
                    changed = true;
                }
            }
        }
        changed
    }

    /// The ranges of each replica, in order.
    pub fn ranges(&self) -> impl Iterator<Item = (&ReplicaId, &[(u64, u64)])> {
        self.ranges.iter().map(|(r, v)| (r, v.as_slice()))
    }

    /// How many ranges the set holds (its size on the wire, roughly).
    pub fn range_count(&self) -> usize {
        self.ranges.values().map(Vec::len).sum()
    }

    /// Drops every dot of `replica`.
    pub fn remove_replica(&mut self, replica: &ReplicaId) {
        self.ranges.remove(replica);
    }

    /// The replicas that have a dot in the set.
    pub fn replicas(&self) -> impl Iterator<Item = &ReplicaId> {
        self.ranges.keys()
    }

    /// This set minus the dots yielded by `live`, which must come in
    /// ascending order per replica and be members of this set. Used to
    /// find the removed dots of a state: its context minus its live dots.
    pub(crate) fn minus_sorted<'a>(&self, live: impl IntoIterator<Item = &'a Dot>) -> Self {
        let mut by_replica: BTreeMap<&ReplicaId, Vec<u64>> = BTreeMap::new();
        for dot in live {
            by_replica
                .entry(&dot.replica)
                .or_default()
                .push(dot.counter);
        }
        let mut out = CausalContext::default();
        for (replica, ranges) in &self.ranges {
            let mut holes = by_replica.get(replica).map(|v| v.as_slice()).unwrap_or(&[]);
            let mut kept = Vec::new();
            for &(lo, hi) in ranges {
                let mut start = lo;
                while let Some((&c, rest)) = holes.split_first() {
                    if c > hi {
                        break;
                    }
                    holes = rest;
                    if c < start {
                        continue;
                    }
                    if c > start {
                        kept.push((start, c - 1));
                    }
                    start = c + 1;
                }
                if start <= hi {
                    kept.push((start, hi));
                }
            }
            if !kept.is_empty() {
                out.ranges.insert(replica.clone(), kept);
            }
        }
        out
    }

    /// Splits the set into parts of at most `max_ranges` ranges each; their
    /// union is this set.
    pub(crate) fn split(&self, max_ranges: usize) -> Vec<CausalContext> {
        let max_ranges = max_ranges.max(1);
        let mut parts = Vec::new();
        let mut current = CausalContext::default();
        let mut in_current = 0;
        for (replica, ranges) in &self.ranges {
            for &range in ranges {
                current
                    .ranges
                    .entry(replica.clone())
                    .or_default()
                    .push(range);
                in_current += 1;
                if in_current == max_ranges {
                    parts.push(std::mem::take(&mut current));
                    in_current = 0;
                }
            }
        }
        if in_current > 0 {
            parts.push(current);
        }
        parts
    }
}

/// `Ok(i)` when `counter` lies in `ranges[i]`, else `Err(insertion point)`.
fn range_index(ranges: &[(u64, u64)], counter: u64) -> Result<usize, usize> {
    ranges.binary_search_by(|&(lo, hi)| {
        if hi < counter {
            std::cmp::Ordering::Less
        } else if lo > counter {
            std::cmp::Ordering::Greater
        } else {
            std::cmp::Ordering::Equal
        }
    })
}

/// Merges sorted disjoint `theirs` into sorted disjoint `mine`, joining
/// ranges that overlap or touch; returns whether `mine` changed.
fn merge_into(mine: &mut Vec<(u64, u64)>, theirs: &[(u64, u64)]) -> bool {
    if theirs.is_empty() {
        return false;
    }
    // The common cases first: one range extending the last, or a
    // contained one, without reallocating.
    if let [(lo, hi)] = theirs {
        if let Some(last) = mine.last_mut() {
            if *lo >= last.0 && *lo <= last.1.saturating_add(1) {
                let grew = *hi > last.1;
                last.1 = last.1.max(*hi);
                return grew;
            }
        }
        if let Ok(i) = range_index(mine, *lo) {
            if mine[i].1 >= *hi {
                return false;
            }
        }
    }
    let mut all: Vec<(u64, u64)> = Vec::with_capacity(mine.len() + theirs.len());
    let (mut i, mut j) = (0, 0);
    while i < mine.len() || j < theirs.len() {
        let next = if j == theirs.len() || (i < mine.len() && mine[i].0 <= theirs[j].0) {
            i += 1;
            mine[i - 1]
        } else {
            j += 1;
            theirs[j - 1]
        };
        match all.last_mut() {
            Some((_, hi)) if next.0 <= hi.saturating_add(1) => *hi = (*hi).max(next.1),
            _ => all.push(next),
        }
    }
    let changed = *mine != all;
    *mine = all;
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(n: &str) -> ReplicaId {
        ReplicaId::new(n, 1)
    }

    #[test]
    fn ranges_merge_when_they_touch_or_overlap() {
        let mut c = CausalContext::default();
        for n in [1, 2, 3, 7, 5, 6, 10] {
            c.insert(&Dot::new(r("a"), n));
        }
        assert_eq!(c.ranges[&r("a")], vec![(1, 3), (5, 7), (10, 10)]);
        c.insert(&Dot::new(r("a"), 4));
        assert_eq!(c.ranges[&r("a")], vec![(1, 7), (10, 10)]);
        assert!(c.contains(&Dot::new(r("a"), 6)));
        assert!(!c.contains(&Dot::new(r("a"), 8)));
        assert!(!c.contains(&Dot::new(r("b"), 1)));
        assert_eq!(c.max(&r("a")), 10);
        assert_eq!(c.next_dot(&r("b")).counter, 1);
    }

    #[test]
    fn minus_cuts_holes_and_split_covers_the_set() {
        let mut c = CausalContext::default();
        c.insert_range(&r("a"), 1, 10);
        c.insert_range(&r("b"), 1, 3);
        let live = [
            Dot::new(r("a"), 1),
            Dot::new(r("a"), 5),
            Dot::new(r("a"), 10),
        ];
        let removed = c.minus_sorted(live.iter());
        assert_eq!(removed.ranges[&r("a")], vec![(2, 4), (6, 9)]);
        assert_eq!(removed.ranges[&r("b")], vec![(1, 3)]);
        let parts = removed.split(2);
        assert_eq!(parts.len(), 2);
        let mut back = CausalContext::default();
        for p in &parts {
            assert!(p.range_count() <= 2);
            back.union(p);
        }
        assert_eq!(back, removed);
    }
}
