//! The distribution layer's handle, [`Dist`]: it holds the mesh and each
//! subsystem (links and monitors, global names, groups, remote spawn, flow
//! control), each owning its state and its frames. It is the one routing
//! point: a session hands every authenticated frame here, and one line per
//! frame kind passes it to its owner. It also runs a node's down
//! processing across the subsystems, and implements the core's
//! [`Transport`](crate::transport::Transport) seam.
//!
//! Subsystems import downward (the mesh, a connection, the frame schema),
//! never this file nor each other.

use super::codec::DecodeError;
use super::flow::FlowControl;
use super::frame::{Frame, PeerAddr};
use super::global::GlobalNames;
use super::groups::RemoteGroups;
use super::handshake::LocalInfo;
use super::links::Relations;
use super::mesh::Mesh;
use super::peer::Peer;
use super::remote;
use super::session::Router;
use super::spawn::Spawnables;
use super::{ConnectError, DistConfig, connect};
use crate::node::{Node, WeakNode};
use crate::pid::ProcessId;
use crate::transport::{NodeDownReason, NodeEvent, RemoteSignal, Transport, Unreachable};
use std::net::SocketAddr;
use std::sync::Arc;
use std::task::Poll;
use tokio::net::TcpListener;

/// A node's distribution layer: the mesh and the subsystems over it.
#[derive(Debug)]
pub(crate) struct Dist {
    /// The connections, and what every subsystem shares.
    pub(crate) mesh: Arc<Mesh>,
    /// Links and monitors with processes of other nodes.
    pub(crate) relations: Relations,
    /// The global registry's replica and locks.
    pub(crate) global: GlobalNames,
    /// Other nodes' group members.
    pub(crate) groups: RemoteGroups,
    /// What this node starts for other nodes.
    pub(crate) spawns: Spawnables,
    /// Processes suspended on a busy link.
    pub(crate) flow: FlowControl,
    /// The node that holds this layer, set once it is assembled; weak, as
    /// the node holds the layer.
    node: std::sync::OnceLock<WeakNode>,
}

impl Dist {
    /// Binds the listener (if any) and builds the layer.
    pub(crate) fn bind(
        local: LocalInfo,
        config: DistConfig,
    ) -> std::io::Result<(Arc<Dist>, Option<TcpListener>)> {
        let (mesh, listener) = Mesh::bind(local, config)?;
        let dist = Arc::new(Dist {
            mesh: Arc::new(mesh),
            relations: Relations::default(),
            global: GlobalNames::default(),
            groups: RemoteGroups::default(),
            spawns: Spawnables::default(),
            flow: FlowControl::default(),
            node: std::sync::OnceLock::new(),
        });
        Ok((dist, listener))
    }

    /// Tells the layer which node holds it (once, when the node is
    /// assembled).
    pub(crate) fn attach(&self, node: &Node) {
        let _ = self.node.set(node.downgrade());
    }

    /// The node that holds this layer, while it runs.
    fn node(&self) -> Option<Node> {
        self.node.get().and_then(WeakNode::upgrade)
    }

    /// Accepts connections until the node's runtime stops.
    pub(crate) async fn accept_loop(node: Node, dist: Arc<Dist>, listener: TcpListener) {
        connect::accept_loop(node, dist, listener).await;
    }

    /// Connects to the node listening at `addr`; returns its name.
    pub(crate) async fn connect(
        node: &Node,
        dist: &Arc<Dist>,
        addr: SocketAddr,
    ) -> Result<String, ConnectError> {
        connect::connect(node, dist, addr).await
    }

    /// Connects to every visible node `peers` names that is not connected.
    fn learn_peers(self: &Arc<Self>, node: &Node, peers: Vec<PeerAddr>) {
        for (name, addr) in self.mesh.to_connect(peers) {
            let (node, dist) = (node.clone(), self.clone());
            tokio::spawn(async move {
                if let Err(e) = connect::connect(&node, &dist, addr).await {
                    tracing::debug!(peer = %name, %addr, error = %e, "mesh connect failed");
                }
                dist.mesh.connect_done(&name);
            });
        }
    }

    /// After a send on `peer`: suspends the calling process at its next
    /// `recv` if the link is busy.
    pub(crate) fn check_busy(&self, peer: &Arc<Peer>) {
        self.flow.check_busy(peer, self.mesh.config.busy_limit);
    }
}

impl Router for Dist {
    fn mesh(&self) -> &Mesh {
        &self.mesh
    }

    fn route(
        self: &Arc<Self>,
        node: &Node,
        peer: &Arc<Peer>,
        frame: Frame,
    ) -> Result<(), DecodeError> {
        if peer.info.hidden && shapes_the_cluster(&frame) {
            // A hidden node (a client) is promised to be read-only: it may
            // not steer the mesh or the cluster-wide registries.
            return Err(DecodeError::Malformed(format!(
                "{} frame from a hidden node",
                super::handshake::frame_kind(&frame)
            )));
        }
        let mesh = &self.mesh;
        match frame {
            Frame::Peers { peers } => self.learn_peers(node, peers),
            frame @ (Frame::Link { .. }
            | Frame::Unlink { .. }
            | Frame::Exit { .. }
            | Frame::Monitor { .. }
            | Frame::Demonitor { .. }
            | Frame::Down { .. }) => self.relations.on_frame(node, mesh, peer, frame),
            frame @ (Frame::GlobalLock { .. }
            | Frame::GlobalLockReply { .. }
            | Frame::GlobalUnlock { .. }
            | Frame::GlobalRegister { .. }
            | Frame::GlobalUnregister { .. }
            | Frame::GlobalSync { .. }) => self.global.on_frame(node, mesh, peer, frame),
            frame @ (Frame::GroupJoin { .. }
            | Frame::GroupLeave { .. }
            | Frame::GroupSync { .. }) => self.groups.on_frame(frame),
            frame @ Frame::Spawn { .. } => self.spawns.on_frame(node, mesh, peer, frame),
            Frame::Reply { id, result } => {
                let _guard = remote::DecodingGuard::new(node, None);
                let result = result.as_ref().map(|b| b.as_slice()).map_err(Clone::clone);
                mesh.replies().complete(id, result);
            }
            other => {
                return Err(DecodeError::Malformed(format!(
                    "{} frame after the handshake",
                    super::handshake::frame_kind(&other)
                )));
            }
        }
        Ok(())
    }

    fn established(&self, node: &Node, peer: &Arc<Peer>) {
        if self.mesh.local.hidden || peer.info.hidden {
            return;
        }
        let _ = peer.send(Frame::Peers {
            peers: self.mesh.visible_peers_except(&peer.info.name),
        });
        self.global.sync_to(&self.mesh, peer);
        self.groups.sync_to(node, &self.mesh, peer);
    }

    fn closed(&self, node: &Node, peer: &Arc<Peer>, reason: NodeDownReason) {
        if !self.mesh.remove(peer) {
            return;
        }
        let name = &peer.info.name;
        self.global.node_down(name);
        self.groups.node_down(name);
        self.relations
            .node_down(node, &self.mesh, name, peer.info.creation);
        self.mesh.node_down(node, peer, reason);
    }
}

/// Frames that form the mesh or change what every node agrees on (global
/// names, process groups): only full members may send them.
fn shapes_the_cluster(frame: &Frame) -> bool {
    matches!(
        frame,
        Frame::Peers { .. }
            | Frame::GlobalLock { .. }
            | Frame::GlobalLockReply { .. }
            | Frame::GlobalUnlock { .. }
            | Frame::GlobalRegister { .. }
            | Frame::GlobalUnregister { .. }
            | Frame::GlobalSync { .. }
            | Frame::GroupJoin { .. }
            | Frame::GroupLeave { .. }
            | Frame::GroupSync { .. }
    )
}

impl Transport for Dist {
    fn signal(&self, signal: RemoteSignal) -> Result<(), Unreachable> {
        let (to, frame) = match signal {
            RemoteSignal::Link { from, to } => {
                self.relations.track(to.node_index(), from);
                let frame = Frame::Link {
                    from,
                    to: to.serial(),
                    to_creation: to.creation(),
                };
                (to, frame)
            }
            RemoteSignal::Unlink { from, to } => (
                to,
                Frame::Unlink {
                    from,
                    to: to.serial(),
                },
            ),
            RemoteSignal::Monitor { from, to, mref } => {
                self.relations.track(to.node_index(), from);
                let frame = Frame::Monitor {
                    from,
                    to: to.serial(),
                    to_creation: to.creation(),
                    mref: mref.0,
                };
                (to, frame)
            }
            RemoteSignal::Demonitor { from, to, mref } => (
                to,
                Frame::Demonitor {
                    from,
                    to: to.serial(),
                    mref: mref.0,
                },
            ),
            RemoteSignal::Exit {
                from,
                to,
                reason,
                link,
            } => (
                to,
                Frame::Exit {
                    from,
                    to: to.serial(),
                    to_creation: to.creation(),
                    reason,
                    link,
                },
            ),
            RemoteSignal::Down {
                from,
                to,
                mref,
                reason,
            } => (
                to,
                Frame::Down {
                    to: to.serial(),
                    mref: mref.0,
                    from,
                    reason,
                },
            ),
        };
        self.mesh.send_to_index(to.node_index(), frame)
    }

    fn announce_group(&self, group: &str, member: ProcessId, joined: bool) {
        self.groups
            .announce(&self.mesh, group, self.mesh.local_wire(member), joined);
    }

    fn remote_group_members(&self, group: &str) -> Vec<ProcessId> {
        self.groups
            .members(group)
            .iter()
            .map(|w| self.mesh.process_id(w))
            .collect()
    }

    fn remote_groups(&self) -> Vec<String> {
        self.groups.groups()
    }

    fn release_global(&self, name: &str, holder: ProcessId) {
        self.global
            .release(&self.mesh, name, self.mesh.local_wire(holder));
    }

    fn poll_resume(&self, serial: u64, cx: &mut std::task::Context<'_>) -> Poll<()> {
        self.flow
            .poll_resume(serial, self.mesh.config.busy_limit, cx)
    }

    fn watch(&self, pid: ProcessId, on: bool) {
        self.mesh.watch(pid, on);
    }

    fn events(&self) -> tokio::sync::broadcast::Receiver<NodeEvent> {
        self.mesh.subscribe()
    }

    fn is_connected(&self, node: &str) -> bool {
        self.mesh.peer(node).is_some()
    }

    fn cancel_reply(&self, id: u64) {
        self.mesh.replies().cancel(id);
    }

    fn register_global(
        &self,
        name: String,
        pid: ProcessId,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), crate::GlobalNameError>> + Send>,
    > {
        use super::GlobalError;
        use crate::GlobalNameError;
        let node = self.node();
        Box::pin(async move {
            let node = node.ok_or(GlobalNameError::NotDistributed)?;
            match node.lookup(pid) {
                Some(p) if !p.accepts_remote() => return Err(GlobalNameError::NotRemote),
                _ => {}
            }
            node.global()
                .register_id(&name, pid)
                .await
                .map_err(|e| match e {
                    GlobalError::Taken(_) => GlobalNameError::Taken,
                    GlobalError::NotDistributed => GlobalNameError::NotDistributed,
                    other => GlobalNameError::Failed(other.to_string()),
                })
        })
    }
}
