//! Links and monitors between processes on different nodes.
//!
//! Each side keeps its half in the process's relations, with the remote
//! pid's node index; the frames `Link`, `Unlink`, `Exit`, `Monitor`,
//! `Demonitor` and `Down` keep the halves in step. The layer also tracks,
//! per remote node, which local processes hold relations with it, so that
//! when the connection is lost every link fires an exit signal and every
//! monitor a `DOWN`, both with reason `noconnection`, without walking the
//! whole process table.

use super::frame::Frame;
use super::mesh::Mesh;
use super::peer::Peer;
use crate::exit_reason::ExitReason;
use crate::node::Node;
use crate::pid::ProcessId;
use crate::signal::MonitorRef;
use crate::transport::inbound;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};

/// Links and monitors across nodes: which local processes hold relations
/// with each remote node index, and the handling of the relation frames.
#[derive(Debug, Default)]
pub(crate) struct Relations {
    by_node: Mutex<HashMap<u32, HashSet<u64>>>,
}

impl Relations {
    /// `local_serial` holds a link or monitor with a process of
    /// `node_index`.
    pub(crate) fn track(&self, node_index: u32, local_serial: u64) {
        self.by_node
            .lock()
            .entry(node_index)
            .or_default()
            .insert(local_serial);
    }

    fn take(&self, node_index: u32) -> HashSet<u64> {
        self.by_node.lock().remove(&node_index).unwrap_or_default()
    }

    /// Handles a link, monitor or exit frame from `peer`.
    pub(crate) fn on_frame(&self, node: &Node, mesh: &Mesh, peer: &Peer, frame: Frame) {
        let local = |serial: u64, creation: u32| {
            node.lookup(ProcessId {
                node: 0,
                serial,
                creation,
            })
        };
        let any_local = |serial: u64| local(serial, node.creation());
        match frame {
            Frame::Link {
                from,
                to,
                to_creation,
            } => {
                let remote = mesh.peer_pid(peer, from);
                let linked = local(to, to_creation).is_some_and(|p| inbound::link(&*p, remote));
                if linked {
                    self.track(remote.node, to);
                } else {
                    let _ = peer.send(Frame::Exit {
                        from: to,
                        to: from,
                        to_creation: peer.info.creation,
                        reason: ExitReason::NoProc,
                        link: true,
                    });
                }
            }
            Frame::Unlink { from, to } => {
                if let Some(p) = any_local(to) {
                    inbound::unlink(&*p, mesh.peer_pid(peer, from));
                }
            }
            Frame::Exit {
                from,
                to,
                to_creation,
                reason,
                link,
            } => {
                if let Some(p) = local(to, to_creation) {
                    inbound::exit(&*p, mesh.peer_pid(peer, from), reason, link);
                }
            }
            Frame::Monitor {
                from,
                to,
                to_creation,
                mref,
            } => {
                let watcher = mesh.peer_pid(peer, from);
                let added = local(to, to_creation)
                    .is_some_and(|p| inbound::monitor(&*p, MonitorRef(mref), watcher));
                if added {
                    self.track(watcher.node, to);
                } else {
                    let _ = peer.send(Frame::Down {
                        to: from,
                        mref,
                        from: to,
                        reason: ExitReason::NoProc,
                    });
                }
            }
            Frame::Demonitor { from, to, mref } => {
                if let Some(p) = any_local(to) {
                    let watcher = mesh.peer_pid(peer, from);
                    inbound::demonitor(&*p, MonitorRef(mref), watcher);
                }
            }
            Frame::Down {
                to,
                mref,
                from,
                reason,
            } => {
                if let Some(p) = any_local(to) {
                    inbound::down(&*p, MonitorRef(mref), mesh.peer_pid(peer, from), reason);
                }
            }
            _ => {}
        }
    }

    /// Fires every link and monitor with a process of the lost node, with
    /// reason `noconnection`.
    pub(crate) fn node_down(&self, node: &Node, mesh: &Mesh, name: &str, creation: u32) {
        let index = mesh.node_table().intern(name, creation);
        for serial in self.take(index) {
            let Some(p) = node.lookup(ProcessId {
                node: 0,
                serial,
                creation: node.creation(),
            }) else {
                continue;
            };
            inbound::node_lost(&*p, index);
        }
    }
}
