//! The global registry: cluster-wide names (Erlang's `:global`).
//!
//! Every visible node keeps a replica of all names. Registering takes a
//! cluster-wide lock on the name first (granted by every connected visible
//! node), so in a connected cluster a name is held at most once and a
//! second registration gets [`GlobalError::Taken`]. A name is released when
//! its process exits or its node goes down.
//!
//! When a partition heals, the two sides exchange their names; where two
//! processes hold one name, every node applies the same resolver and keeps
//! the same one. The loser's node ends it with the exit reason
//! `global_name_conflict`. The default resolver keeps the process whose
//! node name (then serial) sorts first; [`DistConfig::global_resolver`]
//! plugs in another, as `:global`'s resolve functions do.
//!
//! [`DistConfig::global_resolver`]: super::DistConfig

use super::frame::{Frame, WirePid};
use super::mesh::Mesh;
use super::peer::Peer;
use crate::exit_reason::ExitReason;
use crate::node::Node;
use crate::pid::{Pid, ProcessId};
use crate::transport::inbound;
use parking_lot::Mutex;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::sync::mpsc;

/// The exit reason of a process that lost a global name conflict.
pub const NAME_CONFLICT: &str = "global_name_conflict";

/// Which of two holders of one name to keep after a partition heals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// The first argument.
    First,
    /// The second argument.
    Second,
}

/// The function behind a [`GlobalResolver`]: name, current holder, other.
pub type ResolveFn = dyn Fn(&str, &WirePid, &WirePid) -> Keep + Send + Sync;

/// Decides name conflicts; must give the same answer on every node.
#[derive(Clone)]
pub struct GlobalResolver(pub Arc<ResolveFn>);

impl fmt::Debug for GlobalResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("GlobalResolver(..)")
    }
}

impl Default for GlobalResolver {
    fn default() -> Self {
        GlobalResolver(Arc::new(|_, a, b| {
            if (&a.node, a.serial) <= (&b.node, b.serial) {
                Keep::First
            } else {
                Keep::Second
            }
        }))
    }
}

/// A global registry operation failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GlobalError {
    /// The name is held somewhere in the cluster.
    #[error("global name {0:?} is taken")]
    Taken(String),
    /// The process is not alive on this node.
    #[error("no such local process")]
    NoProcess,
    /// The node is not distributed.
    #[error("this node is not distributed")]
    NotDistributed,
    /// The name's cluster lock could not be had after many tries.
    #[error("could not lock the name {0:?} across the cluster")]
    LockContention(String),
    /// No process holds the name.
    #[error("global name {0:?} is not registered")]
    NotRegistered(String),
    /// A hidden node takes no part in the cluster-wide registry.
    #[error("a hidden node cannot register global names")]
    Hidden,
}

/// This node's replica of the global names, the name locks it holds or
/// granted, and its lock requests waiting for answers.
#[derive(Default)]
pub(crate) struct GlobalNames {
    names: Mutex<HashMap<String, WirePid>>,
    locks: Mutex<HashMap<String, String>>,
    waiting: Mutex<HashMap<u64, mpsc::UnboundedSender<bool>>>,
    next_id: AtomicU64,
}

impl fmt::Debug for GlobalNames {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalNames")
            .field("names", &self.names.lock().len())
            .finish()
    }
}

const LOCK_TRIES: u32 = 100;

/// How long a contender waits before trying a contended lock again: a
/// random share of a window that doubles up to 64 ms. Random, because two
/// nodes that back off by the same rule would collide again every time
/// (a deterministic backoff livelocked two nodes racing for one name).
fn backoff(attempt: u32, salt: u64) -> Duration {
    let window = 1u64 << attempt.min(6);
    let random = getrandom::u64().unwrap_or_else(|_| {
        // No randomness: the time and the caller still tell contenders apart.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        u64::from(nanos) ^ salt.wrapping_mul(0x9E37_79B9_7F4A_7C15)
    });
    Duration::from_micros(500 + random % (window * 1000))
}
const LOCK_WAIT: Duration = Duration::from_secs(5);

impl GlobalNames {
    /// Takes the lock on `name` for this node across the cluster.
    async fn lock(&self, mesh: &Mesh, name: &str) -> bool {
        {
            let mut locks = self.locks.lock();
            match locks.get(name) {
                Some(holder) if *holder != mesh.local.name => return false,
                _ => {
                    locks.insert(name.to_owned(), mesh.local.name.clone());
                }
            }
        }
        let peers = mesh.nodes(false);
        if peers.is_empty() {
            return true;
        }
        let id = self.next_id.fetch_add(1, Relaxed);
        let (tx, mut rx) = mpsc::unbounded_channel();
        self.waiting.lock().insert(id, tx);
        let mut asked = 0;
        for p in &peers {
            if let Some(peer) = mesh.peer(p) {
                if peer.send(Frame::GlobalLock {
                    name: name.to_owned(),
                    id,
                }) {
                    asked += 1;
                }
            }
        }
        let mut granted = 0;
        let all = tokio::time::timeout(LOCK_WAIT, async {
            while granted < asked {
                match rx.recv().await {
                    Some(true) => granted += 1,
                    _ => return false,
                }
            }
            true
        })
        .await
        .unwrap_or(false);
        self.waiting.lock().remove(&id);
        if !all {
            self.unlock(mesh, name);
        }
        all
    }

    fn unlock(&self, mesh: &Mesh, name: &str) {
        {
            let mut locks = self.locks.lock();
            if locks.get(name) == Some(&mesh.local.name) {
                locks.remove(name);
            }
        }
        mesh.broadcast_visible(&Frame::GlobalUnlock {
            name: name.to_owned(),
        });
    }

    /// Handles a global registry frame from `peer`.
    pub(crate) fn on_frame(&self, node: &Node, mesh: &Mesh, peer: &Peer, frame: Frame) {
        match frame {
            Frame::GlobalLock { name, id } => {
                // A name this node knows to be held is not free to lock: the
                // asker may not have our names yet (it just connected).
                let held = self.names.lock().contains_key(&name);
                let granted = !held && {
                    let mut locks = self.locks.lock();
                    match locks.get(&name) {
                        Some(holder) if *holder != peer.info.name => false,
                        _ => {
                            locks.insert(name, peer.info.name.clone());
                            true
                        }
                    }
                };
                let _ = peer.send(Frame::GlobalLockReply { id, granted });
            }
            Frame::GlobalLockReply { id, granted } => {
                if let Some(tx) = self.waiting.lock().get(&id) {
                    let _ = tx.send(granted);
                }
            }
            Frame::GlobalUnlock { name } => {
                let mut locks = self.locks.lock();
                if locks.get(&name) == Some(&peer.info.name) {
                    locks.remove(&name);
                }
            }
            Frame::GlobalRegister { name, pid } => self.learn_name(node, mesh, name, pid),
            Frame::GlobalUnregister { name, pid } => {
                let mut names = self.names.lock();
                if names.get(&name) == Some(&pid) {
                    names.remove(&name);
                }
            }
            Frame::GlobalSync { names } => {
                for (name, pid) in names {
                    self.learn_name(node, mesh, name, pid);
                }
            }
            _ => {}
        }
    }

    /// Records that `pid` holds `name`, resolving a conflict if another
    /// process holds it too.
    fn learn_name(&self, node: &Node, mesh: &Mesh, name: String, pid: WirePid) {
        let loser = {
            let mut names = self.names.lock();
            match names.get(&name) {
                None => {
                    names.insert(name.clone(), pid);
                    None
                }
                Some(existing) if *existing == pid => None,
                Some(existing) => {
                    let existing = existing.clone();
                    let keep = (mesh.config.global_resolver.0)(&name, &existing, &pid);
                    let (winner, loser) = match keep {
                        Keep::First => (existing, pid),
                        Keep::Second => (pid, existing),
                    };
                    names.insert(name.clone(), winner);
                    Some(loser)
                }
            }
        };
        if let Some(loser) = loser {
            tracing::warn!(%name, loser = ?loser, "global name conflict after a partition");
            if mesh.is_local_wire(&loser) {
                let id = node.process_id(&loser);
                if let Some(p) = node.lookup(id) {
                    inbound::lost_global(&*p, &name, ExitReason::custom(NAME_CONFLICT));
                }
            }
        }
    }

    /// Sends a newly connected visible peer every name held here.
    pub(crate) fn sync_to(&self, mesh: &Mesh, peer: &Peer) {
        let mine: Vec<(String, WirePid)> = self
            .names
            .lock()
            .iter()
            .filter(|(_, w)| mesh.is_local_wire(w))
            .map(|(n, w)| (n.clone(), w.clone()))
            .collect();
        if !mine.is_empty() {
            let _ = peer.send(Frame::GlobalSync { names: mine });
        }
    }

    /// Forgets the names and locks of a node that went down.
    pub(crate) fn node_down(&self, name: &str) {
        self.names.lock().retain(|_, w| w.node != name);
        self.locks.lock().retain(|_, holder| holder != name);
    }

    /// A local process holding `name` exited.
    pub(crate) fn release(&self, mesh: &Mesh, name: &str, wire: WirePid) {
        {
            let mut names = self.names.lock();
            if names.get(name) == Some(&wire) {
                names.remove(name);
            }
        }
        mesh.broadcast_visible(&Frame::GlobalUnregister {
            name: name.to_owned(),
            pid: wire,
        });
    }
}

impl Node {
    /// The cluster-wide registry (Erlang's `:global`): a name that every
    /// node resolves to one process.
    pub fn global(&self) -> Global<'_> {
        Global { node: self }
    }
}

/// The cluster-wide registry as this node sees it, from [`Node::global`]
/// (a copy of a reference: its methods take it by value, so a
/// registration's future holds no borrow of a temporary).
/// A name is released when its holder exits or its node goes down; after
/// a partition heals, the configured resolver keeps one holder.
#[derive(Debug, Clone, Copy)]
pub struct Global<'a> {
    node: &'a Node,
}

impl Global<'_> {
    /// Registers the local process `pid` under `name` across the cluster.
    ///
    /// # Errors
    /// [`GlobalError::Taken`] if any node's process holds the name,
    /// [`GlobalError::NoProcess`] if `pid` is not a live local process,
    /// [`GlobalError::LockContention`] if the name's cluster lock stays
    /// contended, [`GlobalError::NotDistributed`].
    pub async fn register<M: super::RemoteMessage>(
        self,
        name: &str,
        pid: &Pid<M>,
    ) -> Result<(), GlobalError> {
        let dist = self.node.dist_layer().ok_or(GlobalError::NotDistributed)?;
        if dist.mesh.local.hidden {
            return Err(GlobalError::Hidden);
        }
        let shared = pid.shared().ok_or(GlobalError::NoProcess)?;
        shared.enable_remote();
        self.register_core(name, pid.id(), &shared.core).await
    }

    /// Registers the local process `pid`, which must already take messages
    /// from other nodes (a GenServer's `global_name` start option).
    pub(crate) async fn register_id(self, name: &str, pid: ProcessId) -> Result<(), GlobalError> {
        let dist = self.node.dist_layer().ok_or(GlobalError::NotDistributed)?;
        if dist.mesh.local.hidden {
            return Err(GlobalError::Hidden);
        }
        let process = self.node.lookup(pid).ok_or(GlobalError::NoProcess)?;
        self.register_core(name, pid, process.core()).await
    }

    async fn register_core(
        self,
        name: &str,
        pid: ProcessId,
        core: &crate::process::ProcessCore,
    ) -> Result<(), GlobalError> {
        let dist = self.node.dist_layer().ok_or(GlobalError::NotDistributed)?;
        let wire = WirePid {
            node: self.node.name().to_owned(),
            creation: self.node.creation(),
            serial: pid.serial(),
        };
        for attempt in 0..LOCK_TRIES {
            if dist.global.names.lock().contains_key(name) {
                return Err(GlobalError::Taken(name.to_owned()));
            }
            if !dist.global.lock(&dist.mesh, name).await {
                tokio::time::sleep(backoff(attempt, pid.serial())).await;
                continue;
            }
            let result = {
                let mut names = dist.global.names.lock();
                if names.contains_key(name) {
                    Err(GlobalError::Taken(name.to_owned()))
                } else {
                    let held = inbound::hold_global(core, name, || {
                        names.insert(name.to_owned(), wire.clone());
                    });
                    if held {
                        Ok(())
                    } else {
                        Err(GlobalError::NoProcess)
                    }
                }
            };
            if result.is_ok() {
                dist.mesh.broadcast_visible(&Frame::GlobalRegister {
                    name: name.to_owned(),
                    pid: wire.clone(),
                });
            }
            dist.global.unlock(&dist.mesh, name);
            return result;
        }
        Err(GlobalError::LockContention(name.to_owned()))
    }

    /// Releases a global name held by a local process.
    ///
    /// # Errors
    /// [`GlobalError::NotRegistered`] if no local process holds it.
    pub fn unregister(self, name: &str) -> Result<(), GlobalError> {
        let dist = self.node.dist_layer().ok_or(GlobalError::NotDistributed)?;
        let wire = dist
            .global
            .names
            .lock()
            .get(name)
            .filter(|w| dist.mesh.is_local_wire(w))
            .cloned()
            .ok_or_else(|| GlobalError::NotRegistered(name.to_owned()))?;
        if let Some(p) = self.node.lookup(self.node.process_id(&wire)) {
            inbound::drop_global(&*p, name);
        }
        dist.global.release(&dist.mesh, name, wire);
        Ok(())
    }

    /// The process holding the global `name`, as a typed handle.
    pub fn whereis<M: super::RemoteMessage>(self, name: &str) -> Option<Pid<M>> {
        let dist = self.node.dist_layer()?;
        let wire = dist.global.names.lock().get(name).cloned()?;
        Some(self.node.pid_from_wire(dist, wire))
    }

    /// Sends `msg` to the process holding the global `name`.
    ///
    /// # Errors
    /// [`GlobalError::NotRegistered`] if no process holds it.
    pub fn send<M: super::RemoteMessage>(self, name: &str, msg: M) -> Result<(), GlobalError> {
        self.whereis::<M>(name)
            .ok_or_else(|| GlobalError::NotRegistered(name.to_owned()))?
            .send(msg);
        Ok(())
    }

    /// Every global name known to this node with its holder, sorted by
    /// name.
    pub fn holders(self) -> Vec<GlobalHolder> {
        let mut holders: Vec<GlobalHolder> = self
            .node
            .dist_layer()
            .map(|d| {
                d.global
                    .names
                    .lock()
                    .iter()
                    .map(|(name, wire)| GlobalHolder {
                        name: name.clone(),
                        node: wire.node.clone(),
                        serial: wire.serial,
                        creation: wire.creation,
                    })
                    .collect()
            })
            .unwrap_or_default();
        holders.sort_by(|a, b| a.name.cmp(&b.name));
        holders
    }

    /// Every global name known to this node, sorted.
    pub fn names(self) -> Vec<String> {
        let mut names: Vec<String> = self
            .node
            .dist_layer()
            .map(|d| d.global.names.lock().keys().cloned().collect())
            .unwrap_or_default();
        names.sort();
        names
    }
}

/// A global name and the process holding it, by its node and serial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GlobalHolder {
    /// The name.
    pub name: String,
    /// The holder's node.
    pub node: String,
    /// The holder's serial on that node.
    pub serial: u64,
    /// That node's creation.
    pub creation: u32,
}
