//! Delta-state replication of a CRDT across the cluster (DeltaCrdt's
//! model): one replica process per node per CRDT, registered under the
//! CRDT's name.
//!
//! - A mutation changes the local state at once and joins its delta into a
//!   buffer; every `sync_interval` the buffer goes to every connected node's
//!   replica of the same name, as one or more messages of at most
//!   `max_message_bytes` (a join decomposition, so a lost or reordered part
//!   is harmless).
//! - Anti-entropy: every `anti_entropy_interval` a replica sends each
//!   neighbour a 32-byte digest of its state; a neighbour whose state
//!   differs answers with its whole state, in parts. A node that connects
//!   gets the whole state at once. So replicas converge after lost
//!   messages, partitions and restarts.
//! - Replica identity is the node name and its creation: a restarted node
//!   is a new replica and never reuses the dots or counts of its past life.
//!
//! # Cost
//! A mutation: a write lock, the mutator, and a join of the delta into the
//! buffer. Each sync interval with changes: one encoding of the buffered
//! delta and one message per neighbour. Each anti-entropy interval: one
//! digest (an encoding of the state and SHA-256 over it, cached until the
//! state changes) and one 80-byte message per neighbour; the whole state
//! only to a neighbour that differs. Reads take a read lock.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use clustertop_crdt::{Crdt, ReplicaId, decode_chunk, digest, encode_chunks};
use parking_lot::{Mutex, RwLock};
use serde::{Deserialize, Serialize};

use crate::dist::NodeEvent;
use crate::{Context, Node, Received, SpawnOptions};

/// Settings of a replicated CRDT.
#[derive(Debug, Clone)]
pub struct ReplicaConfig {
    /// How often buffered deltas are shipped (default 50 ms).
    pub sync_interval: Duration,
    /// How often digests are compared with each neighbour (default 2 s).
    pub anti_entropy_interval: Duration,
    /// The largest message a replica sends (default 256 KiB; at most the
    /// distribution frame limit).
    pub max_message_bytes: usize,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        Self {
            sync_interval: Duration::from_millis(50),
            anti_entropy_interval: Duration::from_secs(2),
            max_message_bytes: 256 * 1024,
        }
    }
}

/// Why a replica could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplicaError {
    /// The name is held by another process on this node.
    #[error("cannot register replica {name:?}: {reason}")]
    Register {
        /// The CRDT's name.
        name: String,
        /// What the registry said.
        reason: crate::RegistryError,
    },
    /// A setting is out of range.
    #[error("replica {name:?}: {reason}")]
    Config {
        /// The CRDT's name.
        name: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// What replicas of one CRDT send each other.
#[derive(Debug, Serialize, Deserialize)]
pub enum SyncMsg<L = ()> {
    /// A part of a delta (`whole: false`) or of a whole state.
    Chunk {
        /// The sending node.
        from: String,
        /// Whether this is part of a whole state (anti-entropy).
        whole: bool,
        /// The part, encoded.
        #[serde(with = "serde_bytes")]
        bytes: Vec<u8>,
    },
    /// The sender's state digest.
    Digest {
        /// The sending node.
        from: String,
        /// SHA-256 of the sender's encoded state.
        digest: [u8; 32],
    },
    /// A request of the owner's own (never crosses nodes).
    #[serde(skip)]
    Local(L),
}

/// Counters of a replica (monotonic).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReplicaStats {
    /// Delta messages sent.
    pub deltas_out: u64,
    /// Whole-state messages sent (anti-entropy and new neighbours).
    pub states_out: u64,
    /// Bytes sent in deltas and states.
    pub bytes_out: u64,
    /// Parts received and joined.
    pub chunks_in: u64,
    /// Parts that failed to decode (dropped).
    pub decode_errors: u64,
    /// Digests that differed from ours.
    pub digest_mismatches: u64,
}

#[derive(Default)]
struct Counters {
    deltas_out: AtomicU64,
    states_out: AtomicU64,
    bytes_out: AtomicU64,
    chunks_in: AtomicU64,
    decode_errors: AtomicU64,
    digest_mismatches: AtomicU64,
}

struct Shared<T> {
    state: T,
    pending: T,
    /// Bumped on every change of `state`.
    version: u64,
    digest: Option<(u64, [u8; 32])>,
}

/// The replication machinery shared by [`Replica`] and Presence: the state,
/// the delta buffer, and the messages to neighbours. Not a process: its
/// owner's process calls it.
pub(crate) struct Engine<T: Crdt> {
    name: Arc<str>,
    node: Node,
    id: ReplicaId,
    config: ReplicaConfig,
    shared: RwLock<Shared<T>>,
    counters: Counters,
    changed: tokio::sync::watch::Sender<u64>,
}

impl<T: Crdt> Engine<T> {
    pub(crate) fn new(
        node: &Node,
        name: &str,
        config: ReplicaConfig,
    ) -> Result<Self, ReplicaError> {
        if config.sync_interval.is_zero() || config.anti_entropy_interval.is_zero() {
            return Err(ReplicaError::Config {
                name: name.to_owned(),
                reason: "intervals must be above zero",
            });
        }
        if config.max_message_bytes < 1024 {
            return Err(ReplicaError::Config {
                name: name.to_owned(),
                reason: "max_message_bytes must be at least 1024",
            });
        }
        Ok(Self {
            name: name.into(),
            node: node.clone(),
            id: ReplicaId::new(node.name(), node.creation()),
            config,
            shared: RwLock::new(Shared {
                state: T::default(),
                pending: T::default(),
                version: 0,
                digest: None,
            }),
            counters: Counters::default(),
            changed: tokio::sync::watch::channel(0).0,
        })
    }

    pub(crate) fn id(&self) -> &ReplicaId {
        &self.id
    }

    pub(crate) fn node(&self) -> &Node {
        &self.node
    }

    /// Applies a local mutation: `f` changes the state and returns the delta.
    pub(crate) fn mutate<R>(&self, f: impl FnOnce(&mut T, &ReplicaId) -> (T, R)) -> R {
        let (out, version) = {
            let mut shared = self.shared.write();
            let (delta, out) = f(&mut shared.state, &self.id);
            if delta.is_bottom() {
                return out;
            }
            shared.pending.join(&delta);
            shared.version += 1;
            (out, shared.version)
        };
        self.changed.send_replace(version);
        out
    }

    /// Reads the state.
    pub(crate) fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        f(&self.shared.read().state)
    }

    /// Changes the state outside replication (a membership purge): nothing
    /// is shipped.
    pub(crate) fn edit_local(&self, f: impl FnOnce(&mut T)) {
        let version = {
            let mut shared = self.shared.write();
            f(&mut shared.state);
            shared.version += 1;
            shared.version
        };
        self.changed.send_replace(version);
    }

    /// The state's version: bumped on every change.
    pub(crate) fn version(&self) -> u64 {
        self.shared.read().version
    }

    pub(crate) fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    pub(crate) fn stats(&self) -> ReplicaStats {
        let c = &self.counters;
        ReplicaStats {
            deltas_out: c.deltas_out.load(Ordering::Relaxed),
            states_out: c.states_out.load(Ordering::Relaxed),
            bytes_out: c.bytes_out.load(Ordering::Relaxed),
            chunks_in: c.chunks_in.load(Ordering::Relaxed),
            decode_errors: c.decode_errors.load(Ordering::Relaxed),
            digest_mismatches: c.digest_mismatches.load(Ordering::Relaxed),
        }
    }

    /// Ships the buffered delta to every neighbour.
    pub(crate) fn flush<L: Send + std::fmt::Debug + 'static>(&self) {
        let pending = {
            let mut shared = self.shared.write();
            if shared.pending.is_bottom() {
                return;
            }
            std::mem::take(&mut shared.pending)
        };
        let neighbours = self.node.nodes();
        if neighbours.is_empty() {
            return;
        }
        self.send_parts::<L>(&neighbours, &pending, false);
    }

    /// Sends every neighbour our digest.
    pub(crate) fn anti_entropy<L: Send + std::fmt::Debug + 'static>(&self) {
        let neighbours = self.node.nodes();
        if neighbours.is_empty() {
            return;
        }
        let digest = self.digest();
        for node in neighbours {
            let msg = SyncMsg::<L>::Digest {
                from: self.node.name().to_owned(),
                digest,
            };
            let _ = self.node.dist().send_named_on(&node, &self.name, msg);
        }
    }

    /// Sends our whole state to `node`.
    pub(crate) fn send_state<L: Send + std::fmt::Debug + 'static>(&self, node: &str) {
        let state = self.shared.read().state.clone();
        self.send_parts::<L>(&[node.to_owned()], &state, true);
    }

    fn digest(&self) -> [u8; 32] {
        let shared = self.shared.upgradable_read();
        if let Some((version, d)) = shared.digest {
            if version == shared.version {
                return d;
            }
        }
        let d = digest(&shared.state);
        let mut shared = parking_lot::RwLockUpgradableReadGuard::upgrade(shared);
        shared.digest = Some((shared.version, d));
        d
    }

    fn send_parts<L: Send + std::fmt::Debug + 'static>(
        &self,
        nodes: &[String],
        state: &T,
        whole: bool,
    ) {
        let parts = match encode_chunks(state, self.config.max_message_bytes) {
            Ok(parts) => parts,
            Err(e) => {
                tracing::error!(crdt = %self.name, error = %e, "a CRDT state cannot be shipped");
                return;
            }
        };
        for node in nodes {
            for bytes in &parts {
                let len = bytes.len() as u64;
                let msg = SyncMsg::<L>::Chunk {
                    from: self.node.name().to_owned(),
                    whole,
                    bytes: bytes.clone(),
                };
                if self
                    .node
                    .dist()
                    .send_named_on(node, &self.name, msg)
                    .is_ok()
                {
                    let counter = if whole {
                        &self.counters.states_out
                    } else {
                        &self.counters.deltas_out
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                    self.counters.bytes_out.fetch_add(len, Ordering::Relaxed);
                }
            }
        }
    }

    /// Handles a message from another replica; `admit` may trim an
    /// incoming part before it is joined. Returns whether the state changed.
    pub(crate) fn receive<L: Send + std::fmt::Debug + 'static>(
        &self,
        msg: SyncMsg<L>,
        admit: impl FnOnce(&mut T),
    ) -> bool {
        match msg {
            SyncMsg::Chunk { from, bytes, .. } => {
                let mut part = match decode_chunk::<T>(&bytes) {
                    Ok(part) => part,
                    Err(e) => {
                        self.counters.decode_errors.fetch_add(1, Ordering::Relaxed);
                        tracing::warn!(crdt = %self.name, from = %from, error = %e, "dropped a CRDT part that does not decode");
                        return false;
                    }
                };
                self.counters.chunks_in.fetch_add(1, Ordering::Relaxed);
                admit(&mut part);
                let version = {
                    let mut shared = self.shared.write();
                    if !shared.state.join_changed(&part) {
                        return false;
                    }
                    shared.version += 1;
                    shared.version
                };
                self.changed.send_replace(version);
                true
            }
            SyncMsg::Digest { from, digest } => {
                if digest != self.digest() {
                    self.counters
                        .digest_mismatches
                        .fetch_add(1, Ordering::Relaxed);
                    self.send_state::<L>(&from);
                }
                false
            }
            SyncMsg::Local(_) => false,
        }
    }
}

/// Runs the engine's timers and messages in the owner's process; `local`
/// handles the owner's own requests and node events, and `on_change` runs
/// after the state changed.
pub(crate) async fn run<T: Crdt, L: Send + std::fmt::Debug + 'static>(
    mut ctx: Context<SyncMsg<L>>,
    engine: Arc<Engine<T>>,
    mut owner: impl Owner<T, L>,
) {
    ctx.monitor_nodes(true);
    let mut sync = tokio::time::interval(engine.config.sync_interval);
    let mut anti_entropy = tokio::time::interval(engine.config.anti_entropy_interval);
    sync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    anti_entropy.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            received = ctx.recv() => match received {
                Received::Msg(SyncMsg::Local(request)) => owner.local(&ctx, &engine, request),
                Received::Msg(msg) => {
                    if engine.receive(msg, |part| owner.admit(part)) {
                        owner.changed(&engine);
                    }
                }
                Received::Node(NodeEvent::Up { node, hidden: false }) => {
                    engine.send_state::<L>(&node);
                    owner.node_up(&engine, &node);
                }
                Received::Node(NodeEvent::Down { node, .. }) => owner.node_down(&engine, &node),
                Received::Down(down) => owner.process_down(&engine, down.pid),
                Received::Node(_) | Received::Exit(_) => {}
            },
            _ = sync.tick() => {
                engine.flush::<L>();
                owner.tick(&engine);
            }
            _ = anti_entropy.tick() => engine.anti_entropy::<L>(),
        }
    }
}

/// What the process owning an [`Engine`] adds to it.
pub(crate) trait Owner<T: Crdt, L>: Send {
    fn local(&mut self, ctx: &Context<SyncMsg<L>>, engine: &Engine<T>, request: L);
    fn admit(&mut self, _part: &mut T) {}
    fn changed(&mut self, _engine: &Engine<T>) {}
    fn node_up(&mut self, _engine: &Engine<T>, _node: &str) {}
    fn node_down(&mut self, _engine: &Engine<T>, _node: &str) {}
    fn process_down(&mut self, _engine: &Engine<T>, _pid: crate::ProcessId) {}
    fn tick(&mut self, _engine: &Engine<T>) {}
}

struct Plain;

impl<T: Crdt> Owner<T, ()> for Plain {
    fn local(&mut self, _: &Context<SyncMsg<()>>, _: &Engine<T>, _: ()) {}
}

/// A CRDT replicated across the cluster: Elixir's `DeltaCrdt`
/// (`start_link`, `mutate`, `read`), this node's replica. Cheap to clone.
pub struct Replica<T: Crdt> {
    engine: Arc<Engine<T>>,
    process: crate::ProcessId,
}

impl<T: Crdt> Clone for Replica<T> {
    fn clone(&self) -> Self {
        Self {
            engine: self.engine.clone(),
            process: self.process,
        }
    }
}

impl<T: Crdt> std::fmt::Debug for Replica<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("name", &self.engine.name)
            .field("id", &self.engine.id)
            .finish()
    }
}

impl<T: Crdt> Replica<T> {
    /// Starts this node's replica of the CRDT `name`, registered under that
    /// name; every node that shares the CRDT starts one under the same name.
    ///
    /// # Errors
    /// [`ReplicaError::Register`] when the name is taken here,
    /// [`ReplicaError::Config`] for a setting out of range.
    pub fn start(node: &Node, name: &str, config: ReplicaConfig) -> Result<Self, ReplicaError> {
        let engine = Arc::new(Engine::<T>::new(node, name, config)?);
        let pid = spawn_owner(node, name, "crdt_replica", engine.clone(), Plain)?;
        Ok(Self {
            engine,
            process: pid,
        })
    }

    /// Changes the local state: `f` gets the state and this replica's id,
    /// and returns the delta of its change (what the type's mutators
    /// return). The change is visible here at once and shipped within a
    /// sync interval.
    ///
    /// ```text
    /// counter.mutate(|c, me| c.increment(me, 1));
    /// ```
    pub fn mutate(&self, f: impl FnOnce(&mut T, &ReplicaId) -> T) {
        self.engine.mutate(|state, id| (f(state, id), ()));
    }

    /// Reads the local state.
    pub fn read<R>(&self, f: impl FnOnce(&T) -> R) -> R {
        self.engine.read(f)
    }

    /// A copy of the local state.
    pub fn get(&self) -> T {
        self.read(T::clone)
    }

    /// This replica's identity (node and creation).
    pub fn id(&self) -> &ReplicaId {
        self.engine.id()
    }

    /// The replica process.
    pub fn process(&self) -> crate::ProcessId {
        self.process
    }

    /// Changes when the local state changes (locally or from a neighbour);
    /// the value is a version number.
    pub fn watch(&self) -> tokio::sync::watch::Receiver<u64> {
        self.engine.watch()
    }

    /// The replication counters.
    pub fn stats(&self) -> ReplicaStats {
        self.engine.stats()
    }
}

/// Spawns the process that owns `engine`, registered as `name`.
pub(crate) fn spawn_owner<T: Crdt, L: Send + std::fmt::Debug + 'static>(
    node: &Node,
    name: &str,
    behaviour: &'static str,
    engine: Arc<Engine<T>>,
    owner: impl Owner<T, L> + 'static,
) -> Result<crate::ProcessId, ReplicaError>
where
    SyncMsg<L>: Serialize + serde::de::DeserializeOwned,
{
    let slot = Arc::new(Mutex::new(Some((engine, owner))));
    let taken = slot.clone();
    let (go_tx, go_rx) = tokio::sync::oneshot::channel::<bool>();
    let pid = node.spawn_opts(
        SpawnOptions::new().behaviour(behaviour),
        move |ctx: Context<SyncMsg<L>>| async move {
            // Runs only once registered under its name.
            if go_rx.await != Ok(true) {
                return;
            }
            let Some((engine, owner)) = taken.lock().take() else {
                return;
            };
            run(ctx, engine, owner).await;
        },
    );
    pid.enable_remote();
    if let Err(reason) = node.register(name, pid.id()) {
        let _ = go_tx.send(false);
        return Err(ReplicaError::Register {
            name: name.to_owned(),
            reason,
        });
    }
    let _ = go_tx.send(true);
    Ok(pid.id())
}
