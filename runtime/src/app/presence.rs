//! Presence (Phoenix.Presence and its Tracker): which processes are present
//! on which topics, under which keys, with what metadata, cluster-wide.
//!
//! Built on a replicated [`crate::app::crdt::AWLWWMap`] (one
//! replica per node, see [`replica`](crate::app::replica)) whose entries
//! are owned by the node that tracked them: only that node adds, updates or
//! removes them.
//!
//! # Semantics
//! - `track(pid, topic, key, meta)` / `untrack` / `update` act on local
//!   processes; `list(topic)` groups the metas of every present process by
//!   key.
//! - A process that exits is untracked (the replica process monitors it).
//! - A node that goes down: its entries leave every other node's lists as
//!   soon as the connection is declared down (within the heartbeat tick),
//!   and are forgotten after `permdown` if the node does not come back.
//!   The same incarnation coming back (a healed partition) brings them back;
//!   a new incarnation (a restart) makes the old one's entries go for good,
//!   and its own entries merge without duplicates.
//! - Every change is announced on PubSub to the topic's local subscribers
//!   of type [`PresenceDiff<M>`] on every node (each node computes its own
//!   diffs, as Phoenix does), in at most one sync interval.
//!
//! # Cost
//! Tracking is a replica mutation (a write lock, an `O(log n)` map update)
//! plus, for a process's first entry, one message to monitor it. Each sync
//! interval in which the state changed, the replica process recomputes the
//! visible entries and diffs them against the last ones: `O(n log n)` for n
//! entries, off the callers' paths.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::app::crdt::{AWLWWMap, ReplicaId};
use crate::app::pubsub::PubSub;
use crate::app::replica::{Engine, Owner, ReplicaConfig, ReplicaError, SyncMsg, spawn_owner};
use crate::{Context, MonitorRef, Node, ProcessId};

/// What a presence's metadata must be.
pub trait Meta:
    Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
}
impl<T> Meta for T where
    T: Clone + PartialEq + std::fmt::Debug + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

/// Settings of a Presence instance.
#[derive(Debug, Clone)]
pub struct PresenceConfig {
    /// Replication settings.
    pub replica: ReplicaConfig,
    /// How long the entries of a node that went down are kept, in case it
    /// comes back as the same incarnation (default 30 s).
    pub permdown: Duration,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        Self {
            replica: ReplicaConfig::default(),
            permdown: Duration::from_secs(30),
        }
    }
}

/// Why a Presence call failed.
#[derive(Debug, thiserror::Error)]
pub enum PresenceError {
    /// The instance could not start.
    #[error(transparent)]
    Start(#[from] ReplicaError),
    /// Only processes of this node can be tracked here.
    #[error("{0} is not a process of this node")]
    NotLocal(ProcessId),
    /// `update` of an entry that is not tracked.
    #[error("{pid} is not tracked on {topic:?} under {key:?}")]
    NotTracked {
        /// The process.
        pid: ProcessId,
        /// The topic.
        topic: String,
        /// The key.
        key: String,
    },
}

/// The identity of one presence: a process of a node on a topic under a
/// key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct EntryKey {
    /// The topic.
    pub topic: String,
    /// The key (a user id, say) that groups presences.
    pub key: String,
    /// The node of the process.
    pub node: String,
    /// The process's serial on that node.
    pub serial: u64,
}

/// The joins and leaves of one topic, as broadcast to its subscribers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "M: DeserializeOwned"))]
pub struct PresenceDiff<M> {
    /// The topic.
    pub topic: String,
    /// Metas that arrived (or changed: the new meta), by key.
    pub joins: BTreeMap<String, Vec<M>>,
    /// Metas that left (or changed: the old meta), by key.
    pub leaves: BTreeMap<String, Vec<M>>,
}

/// One topic's figures, for observers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PresenceTopic {
    /// The topic.
    pub topic: String,
    /// Present processes, cluster-wide, as this node sees them.
    pub tracked: usize,
    /// Distinct keys among them.
    pub keys: usize,
    /// Of `tracked`, the processes of this node.
    pub local: usize,
}

type State<M> = AWLWWMap<EntryKey, M>;

/// The owner's requests to its process.
#[derive(Debug)]
pub enum Request {
    /// Monitor a newly tracked process.
    Watch(ProcessId),
}

struct Inner<M: Meta> {
    name: Arc<str>,
    engine: Arc<Engine<State<M>>>,
    pubsub: PubSub,
    /// Each local process's entries: what its exit removes.
    by_pid: Mutex<HashMap<ProcessId, Vec<EntryKey>>>,
    /// The entries visible now (live replicas only), as last diffed.
    visible: Mutex<BTreeMap<EntryKey, M>>,
}

/// A Presence instance: this node's handle. Cheap to clone.
pub struct Presence<M: Meta> {
    inner: Arc<Inner<M>>,
}

impl<M: Meta> Clone for Presence<M> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<M: Meta> std::fmt::Debug for Presence<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Presence")
            .field("name", &self.inner.name)
            .finish()
    }
}

/// What observers read of any instance, whatever its meta type.
pub trait PresenceView: Send + Sync {
    /// The instance name.
    fn name(&self) -> &str;
    /// Topics with present processes.
    fn topics(&self) -> Vec<PresenceTopic>;
    /// The topics and keys under which `pid` (a local process) is tracked.
    fn tracked_by(&self, pid: ProcessId) -> Vec<(String, String)>;
}

#[derive(Default)]
struct Directory {
    instances: Mutex<Vec<Arc<dyn PresenceView>>>,
}

impl<M: Meta> Presence<M> {
    /// Starts this node's Presence instance `name` (a replica registered
    /// under that name), announcing diffs on `pubsub`. Every node of the
    /// cluster starts it under the same name.
    ///
    /// # Errors
    /// [`PresenceError::Start`]: the name is taken, or a setting is out of
    /// range.
    pub fn start(
        node: &Node,
        name: &str,
        pubsub: &PubSub,
        config: PresenceConfig,
    ) -> Result<Self, PresenceError> {
        let engine = Arc::new(Engine::<State<M>>::new(node, name, config.replica)?);
        let inner = Arc::new(Inner {
            name: name.into(),
            engine: engine.clone(),
            pubsub: pubsub.clone(),
            by_pid: Mutex::new(HashMap::new()),
            visible: Mutex::new(BTreeMap::new()),
        });
        let owner = Tracker {
            inner: inner.clone(),
            monitors: HashMap::new(),
            down_since: HashMap::new(),
            dead: HashSet::new(),
            permdown: config.permdown,
            diffed_version: 0,
        };
        spawn_owner(node, name, "presence", engine, owner)?;
        let presence = Presence { inner };
        node.extension::<Directory>()
            .instances
            .lock()
            .push(Arc::new(presence.clone()));
        Ok(presence)
    }

    /// The instance name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Tracks the local process `pid` on `topic` under `key` with `meta`.
    /// Tracking the same (pid, topic, key) again replaces its meta.
    ///
    /// # Errors
    /// [`PresenceError::NotLocal`] for a process of another node.
    pub fn track(
        &self,
        pid: ProcessId,
        topic: &str,
        key: &str,
        meta: M,
    ) -> Result<(), PresenceError> {
        let entry = self.entry_key(pid, topic, key)?;
        let first = {
            let mut by_pid = self.inner.by_pid.lock();
            let keys = by_pid.entry(pid).or_default();
            if !keys.contains(&entry) {
                keys.push(entry.clone());
            }
            keys.len() == 1
        };
        let ts = crate::clock::unix_us();
        self.inner
            .engine
            .mutate(|state, me| (state.put(me, entry, meta, ts), ()));
        if first {
            let me = self.inner.engine.node().name().to_owned();
            let _ = self.inner.engine.node().dist().send_named_on(
                &me,
                &self.inner.name,
                SyncMsg::<Request>::Local(Request::Watch(pid)),
            );
        }
        Ok(())
    }

    /// Replaces the meta of a tracked entry.
    ///
    /// # Errors
    /// [`PresenceError::NotTracked`] when the entry is not tracked,
    /// [`PresenceError::NotLocal`] for a process of another node.
    pub fn update(
        &self,
        pid: ProcessId,
        topic: &str,
        key: &str,
        meta: M,
    ) -> Result<(), PresenceError> {
        let entry = self.entry_key(pid, topic, key)?;
        let tracked = self
            .inner
            .by_pid
            .lock()
            .get(&pid)
            .is_some_and(|keys| keys.contains(&entry));
        if !tracked {
            return Err(PresenceError::NotTracked {
                pid,
                topic: topic.to_owned(),
                key: key.to_owned(),
            });
        }
        self.track(pid, topic, key, meta)
    }

    /// Stops tracking `pid` on `topic` under `key`.
    pub fn untrack(&self, pid: ProcessId, topic: &str, key: &str) {
        let Ok(entry) = self.entry_key(pid, topic, key) else {
            return;
        };
        {
            let mut by_pid = self.inner.by_pid.lock();
            if let Some(keys) = by_pid.get_mut(&pid) {
                keys.retain(|k| k != &entry);
                if keys.is_empty() {
                    by_pid.remove(&pid);
                }
            }
        }
        self.inner
            .engine
            .mutate(|state, _| (state.remove(&entry), ()));
    }

    /// Stops tracking `pid` everywhere.
    pub fn untrack_all(&self, pid: ProcessId) {
        self.inner.untrack_all(pid);
    }

    /// The present processes of `topic`: each key with the metas of its
    /// processes (one per process), keys in order. Entries of nodes that are
    /// down are left out.
    pub fn list(&self, topic: &str) -> Vec<(String, Vec<M>)> {
        let visible = self.inner.visible_now();
        let mut out: Vec<(String, Vec<M>)> = Vec::new();
        for (entry, meta) in visible.range(topic_range(topic)) {
            match out.last_mut() {
                Some((key, metas)) if *key == entry.key => metas.push(meta.clone()),
                _ => out.push((entry.key.clone(), vec![meta.clone()])),
            }
        }
        out
    }

    /// The replication counters.
    pub fn replica_stats(&self) -> crate::app::replica::ReplicaStats {
        self.inner.engine.stats()
    }

    fn entry_key(&self, pid: ProcessId, topic: &str, key: &str) -> Result<EntryKey, PresenceError> {
        if pid.node_index() != 0 {
            return Err(PresenceError::NotLocal(pid));
        }
        Ok(EntryKey {
            topic: topic.to_owned(),
            key: key.to_owned(),
            node: self.inner.engine.node().name().to_owned(),
            serial: pid.serial(),
        })
    }
}

/// Every Presence instance on `node`, whatever its meta type.
pub fn instances(node: &Node) -> Vec<Arc<dyn PresenceView>> {
    node.extension::<Directory>().instances.lock().clone()
}

fn topic_range(topic: &str) -> std::ops::RangeInclusive<EntryKey> {
    let lo = EntryKey {
        topic: topic.to_owned(),
        key: String::new(),
        node: String::new(),
        serial: 0,
    };
    let hi = EntryKey {
        topic: topic.to_owned(),
        key: char::MAX.to_string().repeat(64),
        node: String::new(),
        serial: u64::MAX,
    };
    lo..=hi
}

impl<M: Meta> PresenceView for Presence<M> {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn topics(&self) -> Vec<PresenceTopic> {
        let me = self.inner.engine.node().name();
        let visible = self.inner.visible_now();
        let mut out: Vec<PresenceTopic> = Vec::new();
        let mut last_key: Option<(&str, &str)> = None;
        for entry in visible.keys() {
            if out.last().is_none_or(|t| t.topic != entry.topic) {
                out.push(PresenceTopic {
                    topic: entry.topic.clone(),
                    tracked: 0,
                    keys: 0,
                    local: 0,
                });
                last_key = None;
            }
            let t = out.last_mut().expect("pushed above");
            t.tracked += 1;
            if entry.node == me {
                t.local += 1;
            }
            if last_key != Some((&entry.topic, &entry.key)) {
                t.keys += 1;
                last_key = Some((&entry.topic, &entry.key));
            }
        }
        out
    }

    fn tracked_by(&self, pid: ProcessId) -> Vec<(String, String)> {
        self.inner
            .by_pid
            .lock()
            .get(&pid)
            .map(|keys| {
                keys.iter()
                    .map(|k| (k.topic.clone(), k.key.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl<M: Meta> Inner<M> {
    fn untrack_all(&self, pid: ProcessId) {
        let Some(keys) = self.by_pid.lock().remove(&pid) else {
            return;
        };
        self.engine.mutate(|state, _| {
            let mut delta = State::<M>::default();
            for key in &keys {
                crate::app::crdt::Crdt::join(&mut delta, &state.remove(key));
            }
            (delta, ())
        });
    }

    /// The entries of live replicas, computed from the state now.
    fn visible_now(&self) -> BTreeMap<EntryKey, M> {
        let live = live_replicas(self.engine.node());
        let me = self.engine.id().clone();
        self.engine.read(|state| {
            state
                .iter_with_dots()
                .filter(|(_, dot, _)| {
                    dot.replica == me
                        || live.get(dot.replica.node()) == Some(&dot.replica.incarnation())
                })
                .map(|(k, _, v)| (k.clone(), v.value.clone()))
                .collect()
        })
    }
}

/// The incarnation of each connected visible node.
fn live_replicas(node: &Node) -> HashMap<String, u32> {
    node.dist()
        .peer_stats()
        .into_iter()
        .filter(|p| !p.hidden)
        .map(|p| (p.node, p.creation))
        .collect()
}

/// The Presence process: monitors tracked processes, retires replicas of
/// nodes that are gone, and announces diffs.
struct Tracker<M: Meta> {
    inner: Arc<Inner<M>>,
    monitors: HashMap<ProcessId, MonitorRef>,
    /// Replicas whose node is not connected, since when.
    down_since: HashMap<ReplicaId, Instant>,
    /// Replicas retired for good: their dots are refused.
    dead: HashSet<ReplicaId>,
    permdown: Duration,
    diffed_version: u64,
}

impl<M: Meta> Tracker<M> {
    /// Retires replicas that are gone for good and announces what changed
    /// since the last diff.
    fn refresh(&mut self) {
        let engine = &self.inner.engine;
        let me = engine.id().clone();
        let live = live_replicas(engine.node());
        let replicas: Vec<ReplicaId> =
            engine.read(|s| s.kernel().context().replicas().cloned().collect());
        let now = Instant::now();
        let mut retire = Vec::new();
        for r in replicas {
            if r == me {
                continue;
            }
            if r.node() == me.node() {
                // This node's past life.
                retire.push(r);
                continue;
            }
            match live.get(r.node()) {
                Some(&creation) if creation == r.incarnation() => {
                    self.down_since.remove(&r);
                }
                // The node is back as a new incarnation.
                Some(_) => retire.push(r),
                None => {
                    let since = *self.down_since.entry(r.clone()).or_insert(now);
                    if now.duration_since(since) >= self.permdown {
                        retire.push(r);
                    }
                }
            }
        }
        if !retire.is_empty() {
            engine.edit_local(|s| {
                for r in &retire {
                    s.purge_replica(r);
                }
            });
            for r in retire {
                self.down_since.remove(&r);
                self.dead.insert(r);
            }
        }
        self.announce();
    }

    fn announce(&mut self) {
        let version = self.inner.engine.version();
        let visible = self.inner.visible_now();
        let mut last = self.inner.visible.lock();
        if version == self.diffed_version && *last == visible {
            return;
        }
        self.diffed_version = version;
        let mut diffs: BTreeMap<&str, PresenceDiff<M>> = BTreeMap::new();
        let diff_of = |topic: &str| -> PresenceDiff<M> {
            PresenceDiff {
                topic: topic.to_owned(),
                joins: BTreeMap::new(),
                leaves: BTreeMap::new(),
            }
        };
        for (entry, meta) in &visible {
            if last.get(entry) != Some(meta) {
                let d = diffs
                    .entry(&entry.topic)
                    .or_insert_with(|| diff_of(&entry.topic));
                d.joins
                    .entry(entry.key.clone())
                    .or_default()
                    .push(meta.clone());
            }
        }
        for (entry, meta) in last.iter() {
            if visible.get(entry) != Some(meta) {
                let d = diffs
                    .entry(&entry.topic)
                    .or_insert_with(|| diff_of(&entry.topic));
                d.leaves
                    .entry(entry.key.clone())
                    .or_default()
                    .push(meta.clone());
            }
        }
        for (topic, diff) in diffs {
            self.inner.pubsub.local_broadcast(topic, diff);
        }
        *last = visible;
    }
}

impl<M: Meta> Owner<State<M>, Request> for Tracker<M> {
    fn local(&mut self, ctx: &Context<SyncMsg<Request>>, _: &Engine<State<M>>, request: Request) {
        match request {
            Request::Watch(pid) => {
                self.monitors.entry(pid).or_insert_with(|| ctx.monitor(pid));
            }
        }
    }

    fn admit(&mut self, part: &mut State<M>) {
        let me = self.inner.engine.id().clone();
        let dead = &self.dead;
        // Nobody but this node speaks for this node's entries.
        part.retain_replicas(|r| !dead.contains(r) && (r.node() != me.node() || *r == me));
    }

    fn node_up(&mut self, engine: &Engine<State<M>>, _: &str) {
        // A replica retired while its node was away, back as the same
        // incarnation (a long partition healed): take its entries again.
        let live = live_replicas(engine.node());
        self.dead
            .retain(|r| live.get(r.node()) != Some(&r.incarnation()));
        self.refresh();
    }

    fn node_down(&mut self, _: &Engine<State<M>>, _: &str) {
        self.refresh();
    }

    fn process_down(&mut self, _: &Engine<State<M>>, pid: ProcessId) {
        self.monitors.remove(&pid);
        self.inner.untrack_all(pid);
    }

    /// Diffs are computed here, at most once a sync interval, however many
    /// parts arrived in it.
    fn tick(&mut self, _: &Engine<State<M>>) {
        let expired = self
            .down_since
            .values()
            .any(|since| since.elapsed() >= self.permdown);
        if expired || self.inner.engine.version() != self.diffed_version {
            self.refresh();
        }
    }
}
