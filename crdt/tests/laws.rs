//! Property tests: the join laws, the split decomposition and convergence
//! under any delivery order with duplication and loss followed by
//! anti-entropy, for every CRDT of the crate.
//!
//! Cases per property: 1,000 by default, `PROPTEST_CASES` to change (the
//! crate README records a 10,000-case run).

use clustertop_crdt::{
    AWLWWMap, Crdt, GCounter, LWWRegister, ORSet, PNCounter, ReplicaId, decode_chunk, encode_chunks,
};
use proptest::prelude::*;
use proptest::test_runner::Config;

const REPLICAS: usize = 3;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000)
}

fn config() -> Config {
    Config {
        cases: cases(),
        ..Config::default()
    }
}

fn replica(i: usize) -> ReplicaId {
    ReplicaId::new(format!("n{i}@host"), 1)
}

/// A CRDT with the operations the tests drive it with.
trait Model: Crdt {
    type Op: std::fmt::Debug + Clone;
    fn op() -> BoxedStrategy<Self::Op>;
    /// Applies `op` at `replica`; returns the delta.
    fn apply(&mut self, replica: &ReplicaId, op: &Self::Op) -> Self;
}

impl Model for GCounter {
    type Op = u64;
    fn op() -> BoxedStrategy<u64> {
        (0u64..100).boxed()
    }
    fn apply(&mut self, r: &ReplicaId, by: &u64) -> Self {
        self.increment(r, *by)
    }
}

impl Model for PNCounter {
    type Op = i64;
    fn op() -> BoxedStrategy<i64> {
        (-100i64..100).boxed()
    }
    fn apply(&mut self, r: &ReplicaId, by: &i64) -> Self {
        self.add(r, *by)
    }
}

#[derive(Debug, Clone)]
enum SetOp {
    Add(u8),
    Remove(u8),
}

impl Model for ORSet<u8> {
    type Op = SetOp;
    fn op() -> BoxedStrategy<SetOp> {
        prop_oneof![
            (0u8..6).prop_map(SetOp::Add),
            (0u8..6).prop_map(SetOp::Remove)
        ]
        .boxed()
    }
    fn apply(&mut self, r: &ReplicaId, op: &SetOp) -> Self {
        match op {
            SetOp::Add(e) => self.add(r, *e),
            SetOp::Remove(e) => self.remove(e),
        }
    }
}

impl Model for LWWRegister<u8> {
    type Op = (u8, u64);
    fn op() -> BoxedStrategy<(u8, u64)> {
        // Few distinct timestamps, so ties between replicas are common.
        (any::<u8>(), 0u64..4).boxed()
    }
    fn apply(&mut self, r: &ReplicaId, (v, ts): &(u8, u64)) -> Self {
        self.set(r, *v, *ts)
    }
}

#[derive(Debug, Clone)]
enum MapOp {
    Put(u8, u8, u64),
    Remove(u8),
}

impl Model for AWLWWMap<u8, u8> {
    type Op = MapOp;
    fn op() -> BoxedStrategy<MapOp> {
        prop_oneof![
            3 => (0u8..5, any::<u8>(), 0u64..4).prop_map(|(k, v, ts)| MapOp::Put(k, v, ts)),
            1 => (0u8..5).prop_map(MapOp::Remove),
        ]
        .boxed()
    }
    fn apply(&mut self, r: &ReplicaId, op: &MapOp) -> Self {
        match op {
            MapOp::Put(k, v, ts) => self.put(r, *k, *v, *ts),
            MapOp::Remove(k) => self.remove(k),
        }
    }
}

/// One step of a random execution.
#[derive(Debug, Clone)]
enum Event<O> {
    /// A replica applies an operation; its delta goes to the pool, one
    /// message per other replica.
    Op(usize, O),
    /// A pending message is delivered; `keep` leaves a copy in the pool
    /// (a duplicate delivered later).
    Deliver { pick: usize, keep: bool },
    /// A pending message is lost.
    Lose(usize),
    /// One replica joins another's whole state (a past anti-entropy).
    Sync { from: usize, to: usize },
}

fn events<T: Model>(max: usize) -> impl Strategy<Value = Vec<Event<T::Op>>> {
    let event = prop_oneof![
        4 => (0..REPLICAS, T::op()).prop_map(|(r, o)| Event::Op(r, o)),
        4 => (any::<usize>(), any::<bool>()).prop_map(|(pick, keep)| Event::Deliver { pick, keep }),
        1 => any::<usize>().prop_map(Event::Lose),
        1 => (0..REPLICAS, 0..REPLICAS).prop_map(|(from, to)| Event::Sync { from, to }),
    ];
    proptest::collection::vec(event, 0..max)
}

struct Run<T> {
    replicas: Vec<T>,
    pool: Vec<(usize, T)>,
    lost: usize,
}

fn run<T: Model>(events: &[Event<T::Op>]) -> Run<T> {
    let mut replicas = vec![T::default(); REPLICAS];
    let mut pool: Vec<(usize, T)> = Vec::new();
    let mut lost = 0;
    for event in events {
        match event {
            Event::Op(r, op) => {
                let delta = replicas[*r].apply(&replica(*r), op);
                for to in (0..REPLICAS).filter(|to| to != r) {
                    pool.push((to, delta.clone()));
                }
            }
            Event::Deliver { pick, keep } => {
                if pool.is_empty() {
                    continue;
                }
                let i = pick % pool.len();
                let (to, delta) = if *keep {
                    pool[i].clone()
                } else {
                    pool.swap_remove(i)
                };
                replicas[to].join(&delta);
            }
            Event::Lose(pick) => {
                if !pool.is_empty() {
                    let i = pick % pool.len();
                    pool.swap_remove(i);
                    lost += 1;
                }
            }
            Event::Sync { from, to } => {
                let state = replicas[*from].clone();
                replicas[*to].join(&state);
            }
        }
    }
    Run {
        replicas,
        pool,
        lost,
    }
}

/// Three states reachable by one execution.
fn states<T: Model>() -> impl Strategy<Value = (T, T, T)> {
    events::<T>(40).prop_map(|events| {
        let mut r = run::<T>(&events).replicas.into_iter();
        (r.next().unwrap(), r.next().unwrap(), r.next().unwrap())
    })
}

fn joined<T: Crdt>(a: &T, b: &T) -> T {
    let mut out = a.clone();
    out.join(b);
    out
}

fn check_laws<T: Model>((a, b, c): (T, T, T)) -> Result<(), TestCaseError> {
    let mut x = a.clone();
    let changed = x.join_changed(&b);
    prop_assert_eq!(
        changed,
        x != a,
        "join_changed tells whether the state changed"
    );
    prop_assert_eq!(joined(&a, &b), joined(&b, &a), "commutative");
    prop_assert_eq!(
        joined(&joined(&a, &b), &c),
        joined(&a, &joined(&b, &c)),
        "associative"
    );
    prop_assert_eq!(joined(&a, &a), a.clone(), "idempotent");
    prop_assert_eq!(joined(&a, &T::default()), a, "bottom is the identity");
    Ok(())
}

fn check_split<T: Model>(
    state: T,
    max_items: usize,
    max_bytes: usize,
) -> Result<(), TestCaseError> {
    let parts = state.split(max_items);
    let mut back = T::default();
    for part in &parts {
        prop_assert_eq!(&joined(&state, part), &state, "a part is below the state");
        back.join(part);
    }
    prop_assert_eq!(&back, &state, "the parts join to the state");
    match encode_chunks(&state, max_bytes) {
        Ok(chunks) => {
            let mut back = T::default();
            for chunk in &chunks {
                prop_assert!(chunk.len() <= max_bytes, "{} > {max_bytes}", chunk.len());
                back.join(&decode_chunk::<T>(chunk).unwrap());
            }
            prop_assert_eq!(&back, &state, "the chunks decode and join to the state");
        }
        Err(clustertop_crdt::ChunkError::ItemTooLarge { size, limit }) => {
            prop_assert!(size > limit);
        }
        Err(e) => prop_assert!(false, "{e}"),
    }
    Ok(())
}

/// Random delivery with loss and duplicates, then anti-entropy (every
/// replica ships its whole state in byte-bounded chunks to every other):
/// all replicas are equal. Without loss, delivering what is pending is
/// enough.
fn check_convergence<T: Model>(
    events: Vec<Event<T::Op>>,
    max_bytes: usize,
) -> Result<(), TestCaseError> {
    let Run {
        mut replicas,
        pool,
        lost,
    } = run::<T>(&events);
    if lost == 0 {
        let mut delivered = replicas.clone();
        for (to, delta) in &pool {
            delivered[*to].join(delta);
        }
        for r in &delivered[1..] {
            prop_assert_eq!(r, &delivered[0], "deltas alone converge when none is lost");
        }
    }
    let snapshots: Vec<Vec<Vec<u8>>> = replicas
        .iter()
        .map(|s| encode_chunks(s, max_bytes).expect("items fit"))
        .collect();
    for (from, chunks) in snapshots.iter().enumerate() {
        for (to, target) in replicas.iter_mut().enumerate() {
            if from != to {
                for chunk in chunks.iter().rev() {
                    target.join(&decode_chunk::<T>(chunk).unwrap());
                }
            }
        }
    }
    for r in &replicas[1..] {
        prop_assert_eq!(r, &replicas[0], "replicas converge after anti-entropy");
    }
    Ok(())
}

macro_rules! properties {
    ($module:ident, $ty:ty) => {
        mod $module {
            use super::*;
            proptest! {
                #![proptest_config(config())]
                #[test]
                fn join_laws(s in states::<$ty>()) {
                    check_laws(s)?;
                }

                #[test]
                fn split_decomposes(s in states::<$ty>(), items in 1usize..5, bytes in 96usize..400) {
                    check_split(s.0, items, bytes)?;
                }

                #[test]
                fn converges(events in events::<$ty>(60), bytes in 128usize..512) {
                    check_convergence::<$ty>(events, bytes)?;
                }
            }
        }
    };
}

properties!(gcounter, GCounter);
properties!(pncounter, PNCounter);
properties!(orset, ORSet<u8>);
properties!(lww_register, LWWRegister<u8>);
properties!(awlww_map, AWLWWMap<u8, u8>);

proptest! {
    #![proptest_config(config())]

    /// Counters count: after convergence the value is the sum of every
    /// operation, whatever the delivery order.
    #[test]
    fn pncounter_counts_every_op(events in events::<PNCounter>(60)) {
        let expected: i64 = events.iter().map(|e| match e { Event::Op(_, by) => *by, _ => 0 }).sum();
        let Run { mut replicas, .. } = run::<PNCounter>(&events);
        let all = replicas.iter().fold(PNCounter::default(), |acc, r| joined(&acc, r));
        for r in &mut replicas {
            r.join(&all);
            prop_assert_eq!(r.value(), expected);
        }
    }
}

#[test]
fn an_add_concurrent_with_a_remove_wins() {
    let (a, b) = (replica(0), replica(1));
    let e = "e".to_owned();
    let mut x = ORSet::default();
    x.add(&a, e.clone());
    let mut y = x.clone();
    let remove = y.remove(&e);
    let add = x.add(&b, e.clone());
    x.join(&remove);
    y.join(&add);
    assert!(x.contains(&e) && y.contains(&e));
    assert_eq!(x, y);
    // A remove that has seen the add takes it away everywhere.
    let remove = y.remove(&e);
    x.join(&remove);
    assert!(!x.contains(&e));
}

#[test]
fn concurrent_puts_resolve_to_the_latest_timestamp_on_every_replica() {
    let (a, b) = (replica(0), replica(1));
    let mut x = AWLWWMap::default();
    let mut y = AWLWWMap::default();
    let k = "k".to_owned();
    let dx = x.put(&a, k.clone(), "from a".to_owned(), 20);
    let dy = y.put(&b, k.clone(), "from b".to_owned(), 10);
    x.join(&dy);
    y.join(&dx);
    assert_eq!(x.get(&k).map(String::as_str), Some("from a"));
    assert_eq!(x, y);
    // A later put replaces both concurrent values.
    let d = y.put(&b, k.clone(), "later".to_owned(), 5);
    x.join(&d);
    assert_eq!(x.get(&k).map(String::as_str), Some("later"));
    assert_eq!(x.kernel().get(&k).unwrap().len(), 1);
}

#[test]
fn a_register_write_beats_what_its_writer_has_seen_even_with_a_lagging_clock() {
    let (a, b) = (replica(0), replica(1));
    let mut x = LWWRegister::<u8>::default();
    let mut y = LWWRegister::<u8>::default();
    let d = x.set(&a, 1, 1_000);
    y.join(&d);
    let d = y.set(&b, 2, 10); // b's clock lags
    x.join(&d);
    assert_eq!(x.get(), Some(&2));
    assert_eq!(y.get(), Some(&2));
}
