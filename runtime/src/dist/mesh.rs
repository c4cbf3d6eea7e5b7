//! The mesh: the table of this node's connections, and what every
//! subsystem of the layer asks of it. Admission and tie-breaking, the
//! table's side of establishing and closing a connection, sending to a
//! node by name or by index, node events and their watchers, the calls
//! waiting for replies, counters. It names no subsystem: links, global
//! names, groups and remote spawn each take the mesh as an argument.
//!
//! Connections form a full mesh: when two visible nodes connect, each sends
//! the other its visible peers, and each connects to the ones it lacks.
//! When two nodes connect to each other at once, both keep the connection
//! initiated by the node whose name sorts first and close the other, so
//! exactly one survives.
//!
//! A connection from a node this node holds a connection with is settled
//! after the cookie is proved, never on the claim of an unauthenticated
//! `Hello` (so a stranger learns nothing of who is connected). The held
//! connection is asked for a heartbeat: if anything arrives on it within a
//! quarter of the handshake timeout, it is alive and the usual rules hold
//! (the same incarnation: the tie-break; another incarnation: refused as
//! `NameInUse`). If nothing does, the peer has closed its end without this
//! side seeing it (a half-open socket, a FIN still in flight, a restarted
//! node): the old connection is closed as [`NodeDownReason::Stale`], its
//! down processing (`noconnection` exits, `DOWN` messages, failed calls,
//! the `Down` event) runs to the end, and then the new one is admitted.

use super::admission::Admission;
use super::faults::Blocked;
use super::frame::{Frame, PeerAddr, RefuseReason, WirePid};
use super::handshake::{LocalInfo, PeerInfo};
use super::node_table::NodeTable;
use super::peer::{Peer, PeerStats};
use super::replies::PendingReplies;
use super::{ConnectError, DistConfig};
use crate::node::Node;
use crate::pid::ProcessId;
use crate::signal::SystemMsg;
use crate::transport::{NodeDownReason, NodeEvent, Unreachable};
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use tokio::net::TcpListener;
use tokio::sync::broadcast;

/// Counters of a node's distribution layer (monotonic).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DistStats {
    /// Connections accepted by the listener.
    pub accepted: u64,
    /// Accepted connections closed at once because too many handshakes
    /// were in progress (in all, or from that address).
    pub turned_away: u64,
    /// Handshakes in progress now (a gauge).
    pub handshakes: u64,
    /// Connections this node initiated.
    pub initiated: u64,
    /// Handshakes that ended in a connection.
    pub established: u64,
    /// Handshakes refused or failed because of a wrong cookie.
    pub bad_cookie: u64,
    /// Handshakes that failed for any other reason.
    pub handshake_failures: u64,
    /// Connections closed for a malformed or oversized frame.
    pub decode_errors: u64,
    /// Calls to other nodes waiting for a reply now (a gauge).
    pub pending_calls: u64,
    /// Connections closed as stale: their peer connected again and they
    /// did not answer a heartbeat.
    pub stale_closed: u64,
}

#[derive(Default)]
pub(super) struct Counters {
    pub(super) accepted: AtomicU64,
    /// Connections closed at once: too many handshakes in progress.
    pub(super) turned_away: AtomicU64,
    pub(super) initiated: AtomicU64,
    established: AtomicU64,
    bad_cookie: AtomicU64,
    handshake_failures: AtomicU64,
    decode_errors: AtomicU64,
    stale: AtomicU64,
}

/// A node's connections, and what the layer's subsystems share.
pub(crate) struct Mesh {
    pub(crate) local: LocalInfo,
    pub(crate) config: DistConfig,
    listen_addr: Option<SocketAddr>,
    peers: Mutex<HashMap<String, Arc<Peer>>>,
    connecting: Mutex<HashSet<String>>,
    blocked: Blocked,
    events: broadcast::Sender<NodeEvent>,
    watchers: Mutex<Vec<ProcessId>>,
    pub(super) counters: Counters,
    /// Handshakes in progress.
    pub(super) admission: Arc<Admission>,
    node_table: NodeTable,
    /// Calls to other nodes waiting for their reply.
    replies: PendingReplies,
}

impl std::fmt::Debug for Mesh {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mesh")
            .field("name", &self.local.name)
            .field("listen", &self.listen_addr)
            .field("peers", &self.peers.lock().len())
            .finish()
    }
}

impl Mesh {
    /// Binds the listener (if any) and builds the table.
    pub(crate) fn bind(
        local: LocalInfo,
        config: DistConfig,
    ) -> std::io::Result<(Mesh, Option<TcpListener>)> {
        let listener = match config.listen {
            Some(addr) => {
                let std_listener = std::net::TcpListener::bind(addr)?;
                std_listener.set_nonblocking(true)?;
                Some(TcpListener::from_std(std_listener)?)
            }
            None => None,
        };
        let listen_addr = listener.as_ref().map(|l| l.local_addr()).transpose()?;
        let mut local = local;
        local.listen = listen_addr.map(|a| a.to_string());
        let mesh = Mesh {
            local,
            config,
            listen_addr,
            peers: Mutex::new(HashMap::new()),
            connecting: Mutex::new(HashSet::new()),
            blocked: Blocked::default(),
            events: broadcast::channel(1024).0,
            watchers: Mutex::new(Vec::new()),
            counters: Counters::default(),
            admission: Arc::default(),
            node_table: NodeTable::default(),
            replies: PendingReplies::default(),
        };
        Ok((mesh, listener))
    }

    pub(crate) fn listen_addr(&self) -> Option<SocketAddr> {
        self.listen_addr
    }

    pub(crate) fn node_table(&self) -> &NodeTable {
        &self.node_table
    }

    pub(crate) fn replies(&self) -> &PendingReplies {
        &self.replies
    }

    /// The connection to `name`, if it is up.
    pub(crate) fn peer(&self, name: &str) -> Option<Arc<Peer>> {
        self.peers.lock().get(name).cloned()
    }

    /// Queues `frame` for the connection to `name`, through `cache`.
    /// Returns `false` if that node is not connected.
    pub(crate) fn send_frame(&self, cache: &super::PeerCache, name: &str, frame: Frame) -> bool {
        if let Some(p) = cache.read().as_ref() {
            if !p.cancel.is_cancelled() {
                return p.send(frame);
            }
        }
        let peer = self.peers.lock().get(name).cloned();
        *cache.write() = peer.clone();
        match peer {
            Some(p) => p.send(frame),
            None => false,
        }
    }

    /// Whether to go on with a handshake from `peer` (on its `Hello`, before
    /// it has proved the cookie): only a blocked name is refused here; a
    /// conflict with a held connection is settled once the peer is
    /// authenticated ([`Dist::settle`]).
    pub(super) fn admit(&self, peer: &PeerInfo) -> Result<(), RefuseReason> {
        if self.blocked.contains(&peer.name) {
            return Err(RefuseReason::Blocked);
        }
        Ok(())
    }

    /// Settles an authenticated connection from `peer` against the one held
    /// with the same name, if any (see the module docs): `Ok` to take it.
    pub(super) async fn settle(&self, peer: &PeerInfo) -> Result<(), RefuseReason> {
        self.admit(peer)?;
        let (verdict, held) = {
            let peers = self.peers.lock();
            let Some(held) = peers.get(&peer.name).cloned() else {
                return Ok(());
            };
            (self.admit_locked(&peers, peer, false), held)
        };
        // Even a connection the new one would replace is asked: replaced
        // alive, it hands over without a down (two nodes that connected to
        // each other at once); stale, the peer has already run its down
        // processing, and this side must too.
        if held.answers(self.config.handshake_timeout / 4).await {
            return verdict;
        }
        self.counters.stale.fetch_add(1, Relaxed);
        tracing::warn!(
            peer = %peer.name,
            addr = %held.addr,
            "the peer connected again and its old connection did not answer: closing it as stale"
        );
        held.close(NodeDownReason::Stale);
        held.gone.cancelled().await;
        self.admit(peer)?;
        self.admit_locked(&self.peers.lock(), peer, false)
    }

    fn admit_locked(
        &self,
        peers: &HashMap<String, Arc<Peer>>,
        peer: &PeerInfo,
        initiated_here: bool,
    ) -> Result<(), RefuseReason> {
        let Some(existing) = peers.get(&peer.name) else {
            return Ok(());
        };
        if existing.info.creation != peer.creation {
            return Err(RefuseReason::NameInUse);
        }
        // Two connections to one incarnation: keep the one initiated by the
        // smaller name, on both sides.
        let initiator = if initiated_here {
            self.local.name.as_str()
        } else {
            peer.name.as_str()
        };
        let keeper = self.local.name.as_str().min(peer.name.as_str());
        if initiator == keeper && existing.initiated_here != initiated_here {
            Ok(())
        } else {
            Err(RefuseReason::Duplicate)
        }
    }

    /// Enters an authenticated connection in the table, unless a held one
    /// wins the tie-break or the name is blocked. Returns the connection it
    /// replaced (already closed), if any.
    pub(super) fn insert(&self, peer: &Arc<Peer>) -> Result<Option<Arc<Peer>>, RefuseReason> {
        let replaced = {
            if self.blocked.contains(&peer.info.name) {
                return Err(RefuseReason::Blocked);
            }
            let mut peers = self.peers.lock();
            self.admit_locked(&peers, &peer.info, peer.initiated_here)?;
            peers.insert(peer.info.name.clone(), peer.clone())
        };
        self.counters.established.fetch_add(1, Relaxed);
        if let Some(old) = &replaced {
            old.close(NodeDownReason::Disconnected);
        }
        Ok(replaced)
    }

    /// Logs a new node and tells the watchers.
    pub(super) fn node_up(&self, node: &Node, peer: &Peer) {
        // Hidden nodes are tools (clustertop, a remote shell) that come
        // and go: a script polling every few seconds must not flood the
        // log, so they are logged at debug.
        let addr = peer.addr;
        if peer.info.hidden {
            tracing::debug!(peer = %peer.info.name, %addr, hidden = true, "node up");
        } else {
            tracing::info!(peer = %peer.info.name, %addr, hidden = false, "node up");
        }
        self.emit(
            node,
            NodeEvent::Up {
                node: peer.info.name.clone(),
                hidden: peer.info.hidden,
            },
        );
    }

    /// Takes an ended connection out of the table, if it is still the one
    /// held for its node, and fails the calls waiting on that node.
    /// Returns whether it was: then the node is down, and the caller runs
    /// the subsystems' down processing and [`Mesh::node_down`].
    pub(crate) fn remove(&self, peer: &Arc<Peer>) -> bool {
        let removed = {
            let mut peers = self.peers.lock();
            match peers.get(&peer.info.name) {
                Some(current) if Arc::ptr_eq(current, peer) => {
                    peers.remove(&peer.info.name);
                    true
                }
                _ => false,
            }
        };
        if removed {
            self.replies.fail_node(&peer.info.name);
        }
        removed
    }

    /// Logs a node that went down and tells the watchers.
    pub(crate) fn node_down(&self, node: &Node, peer: &Peer, reason: NodeDownReason) {
        if peer.info.hidden {
            // A client (such as clustertop) going away is routine.
            tracing::debug!(peer = %peer.info.name, addr = %peer.addr, %reason, "hidden node down");
        } else {
            tracing::warn!(peer = %peer.info.name, addr = %peer.addr, %reason, "node down");
        }
        self.emit(
            node,
            NodeEvent::Down {
                node: peer.info.name.clone(),
                reason,
            },
        );
    }

    /// Of the visible nodes `peers` names, those to connect to now: not
    /// this node, not connected, not blocked, not being connected to
    /// (each is marked so until [`Mesh::connect_done`]). None on a hidden
    /// node, which joins no mesh.
    pub(crate) fn to_connect(&self, peers: Vec<PeerAddr>) -> Vec<(String, SocketAddr)> {
        if self.local.hidden {
            return Vec::new();
        }
        let mut out = Vec::new();
        for p in peers {
            if p.name == self.local.name || !crate::node::valid_node_name(&p.name) {
                continue;
            }
            let Ok(addr) = p.listen.parse::<SocketAddr>() else {
                continue;
            };
            if self.peers.lock().contains_key(&p.name)
                || self.blocked.contains(&p.name)
                || !self.connecting.lock().insert(p.name.clone())
            {
                continue;
            }
            out.push((p.name, addr));
        }
        out
    }

    /// A connect that [`Mesh::to_connect`] handed out has ended.
    pub(crate) fn connect_done(&self, name: &str) {
        self.connecting.lock().remove(name);
    }

    /// Queues `frame` for every connected visible node.
    pub(crate) fn broadcast_visible(&self, frame: &Frame) {
        let peers: Vec<Arc<Peer>> = self
            .peers
            .lock()
            .values()
            .filter(|p| !p.info.hidden)
            .cloned()
            .collect();
        for p in peers {
            let _ = p.send(frame.clone());
        }
    }

    /// Queues `frame` for the node incarnation `node_index` stands for.
    pub(crate) fn send_to_index(&self, node_index: u32, frame: Frame) -> Result<(), Unreachable> {
        let (name, creation) = self
            .node_table
            .get(node_index)
            .ok_or(Unreachable::NoConnection)?;
        match self.peer(&name) {
            Some(p) if p.info.creation == creation || creation == 0 => {
                if p.send(frame) {
                    Ok(())
                } else {
                    Err(Unreachable::NoConnection)
                }
            }
            Some(_) => Err(Unreachable::NoProc),
            None => Err(Unreachable::NoConnection),
        }
    }

    /// The id of process `serial` on `peer`'s node.
    pub(crate) fn peer_pid(&self, peer: &Peer, serial: u64) -> ProcessId {
        ProcessId {
            node: self.node_table.intern(&peer.info.name, peer.info.creation),
            serial,
            creation: peer.info.creation,
        }
    }

    /// The wire form of a local process id.
    pub(crate) fn local_wire(&self, id: ProcessId) -> WirePid {
        WirePid {
            node: self.local.name.clone(),
            creation: id.creation(),
            serial: id.serial(),
        }
    }

    /// Whether `w` names a process of this node incarnation.
    pub(crate) fn is_local_wire(&self, w: &WirePid) -> bool {
        w.node == self.local.name && w.creation == self.local.creation
    }

    /// The local form of a wire process id (index 0 for this node's own).
    pub(crate) fn process_id(&self, wire: &WirePid) -> ProcessId {
        let node = if self.is_local_wire(wire) {
            0
        } else {
            self.node_table.intern(&wire.node, wire.creation)
        };
        ProcessId {
            node,
            serial: wire.serial,
            creation: wire.creation,
        }
    }

    /// The visible nodes connected, but `except`, with where they listen.
    pub(crate) fn visible_peers_except(&self, except: &str) -> Vec<PeerAddr> {
        self.peers
            .lock()
            .values()
            .filter(|p| !p.info.hidden && p.info.name != except)
            .filter_map(|p| {
                p.info.listen.as_ref().map(|l| PeerAddr {
                    name: p.info.name.clone(),
                    listen: l.clone(),
                })
            })
            .collect()
    }

    pub(super) fn peer_listening_at(&self, addr: SocketAddr) -> Option<String> {
        let addr = addr.to_string();
        self.peers
            .lock()
            .values()
            .find(|p| p.info.listen.as_deref() == Some(addr.as_str()))
            .map(|p| p.info.name.clone())
    }

    fn emit(&self, node: &Node, event: NodeEvent) {
        let _ = self.events.send(event.clone());
        let mut watchers = self.watchers.lock();
        watchers.retain(|pid| match node.lookup(*pid) {
            Some(p) => p.push_system(SystemMsg::Node(Box::new(event.clone()))),
            None => false,
        });
    }

    pub(super) fn handshake_failed(
        &self,
        addr: SocketAddr,
        claimed: Option<&str>,
        e: &ConnectError,
    ) {
        let kind = e.kind();
        // An unauthenticated peer is logged by address; the name it claimed
        // passed the name rule, but is marked as unproved.
        let claimed = claimed.unwrap_or("-");
        if let ConnectError::Handshake(
            super::HandshakeError::Refused(RefuseReason::Duplicate)
            | super::HandshakeError::PeerRefused(RefuseReason::Duplicate),
        ) = e
        {
            // The other connection between the same two nodes wins.
            tracing::debug!(%claimed, %addr, "duplicate connection refused");
            return;
        }
        if kind == "bad_cookie" {
            self.counters.bad_cookie.fetch_add(1, Relaxed);
            tracing::warn!(%addr, %claimed, "connection refused: wrong cookie");
        } else {
            self.counters.handshake_failures.fetch_add(1, Relaxed);
            tracing::warn!(%addr, %claimed, error = %e, "handshake failed");
        }
        if matches!(e, ConnectError::Decode(_)) {
            self.counters.decode_errors.fetch_add(1, Relaxed);
        }
        metrics::counter!(
            "clustertop_dist_handshake_failures_total",
            "node" => self.local.name.clone(),
            "reason" => kind
        )
        .increment(1);
    }

    pub(crate) fn count_decode_error(&self, peer: &str, addr: SocketAddr, error: &str) {
        self.counters.decode_errors.fetch_add(1, Relaxed);
        metrics::counter!("clustertop_dist_decode_errors_total", "node" => self.local.name.clone())
            .increment(1);
        tracing::warn!(%peer, %addr, %error, "closing connection: malformed frame");
    }

    // ---- queries and controls used by `Node` ----

    pub(crate) fn nodes(&self, hidden: bool) -> Vec<String> {
        let mut names: Vec<String> = self
            .peers
            .lock()
            .values()
            .filter(|p| p.info.hidden == hidden)
            .map(|p| p.info.name.clone())
            .collect();
        names.sort();
        names
    }

    pub(crate) fn disconnect(&self, name: &str) -> bool {
        match self.peers.lock().get(name) {
            Some(p) => {
                p.close(NodeDownReason::Disconnected);
                true
            }
            None => false,
        }
    }

    pub(crate) fn subscribe(&self) -> broadcast::Receiver<NodeEvent> {
        self.events.subscribe()
    }

    pub(crate) fn watch(&self, pid: ProcessId, on: bool) {
        let mut w = self.watchers.lock();
        w.retain(|p| *p != pid);
        if on {
            w.push(pid);
        }
    }

    pub(crate) fn peer_stats(&self) -> Vec<PeerStats> {
        let mut out: Vec<PeerStats> = self.peers.lock().values().map(|p| p.stats()).collect();
        out.sort_by(|a, b| a.node.cmp(&b.node));
        out
    }

    pub(crate) fn stats(&self) -> DistStats {
        let c = &self.counters;
        DistStats {
            accepted: c.accepted.load(Relaxed),
            turned_away: c.turned_away.load(Relaxed),
            handshakes: self.admission.in_progress() as u64,
            initiated: c.initiated.load(Relaxed),
            established: c.established.load(Relaxed),
            bad_cookie: c.bad_cookie.load(Relaxed),
            handshake_failures: c.handshake_failures.load(Relaxed),
            decode_errors: c.decode_errors.load(Relaxed),
            stale_closed: c.stale.load(Relaxed),
            pending_calls: self.replies.len() as u64,
        }
    }

    #[cfg(feature = "testing")]
    pub(crate) fn block(&self, name: &str, blocked: bool) {
        self.blocked.set(name, blocked);
        if let Some(p) = self.peers.lock().get(name) {
            p.cut(blocked);
        }
    }
}
