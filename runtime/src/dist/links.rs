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
use crate::process::{ProcessDyn, Relation, deliver_exit};
use crate::signal::{Down, MonitorRef, SystemMsg};
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
                let linked = local(to, to_creation).is_some_and(|p| {
                    let mut rel = p.core().rel.lock();
                    if p.core().closed.load(std::sync::atomic::Ordering::Relaxed) {
                        return false;
                    }
                    if !rel.has_link(remote) {
                        rel.push(Relation::Link(remote));
                    }
                    true
                });
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
                    p.core().rel.lock().remove_link(mesh.peer_pid(peer, from));
                }
            }
            Frame::Exit {
                from,
                to,
                to_creation,
                reason,
                link,
            } => {
                let Some(p) = local(to, to_creation) else {
                    return;
                };
                let remote = mesh.peer_pid(peer, from);
                if link {
                    let mut rel = p.core().rel.lock();
                    if !rel.has_link(remote) {
                        return; // unlinked meanwhile: the signal is void
                    }
                    rel.remove_link(remote);
                }
                deliver_exit(&*p, remote, reason);
            }
            Frame::Monitor {
                from,
                to,
                to_creation,
                mref,
            } => {
                let watcher = mesh.peer_pid(peer, from);
                let added = local(to, to_creation).is_some_and(|p| {
                    let mut rel = p.core().rel.lock();
                    if p.core().closed.load(std::sync::atomic::Ordering::Relaxed) {
                        return false;
                    }
                    rel.push(Relation::MonitoredBy(MonitorRef(mref), watcher));
                    true
                });
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
                    p.core().rel.lock().items.retain(|r| {
                        !matches!(r, Relation::MonitoredBy(m, w) if m.0 == mref && *w == watcher)
                    });
                }
            }
            Frame::Down {
                to,
                mref,
                from,
                reason,
            } => {
                if let Some(p) = any_local(to) {
                    monitor_fired(&*p, MonitorRef(mref), mesh.peer_pid(peer, from), reason);
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
            let lost: thin_vec::ThinVec<Relation> = {
                let mut rel = p.core().rel.lock();
                let (lost, kept) = std::mem::take(&mut rel.items)
                    .into_iter()
                    .partition(|r| relation_node(r) == Some(index));
                rel.items = kept;
                lost
            };
            for r in lost {
                match r {
                    Relation::Link(remote) => {
                        deliver_exit(&*p, remote, ExitReason::NoConnection);
                    }
                    Relation::Monitoring(mref, remote) => {
                        p.push_system(SystemMsg::Down(Box::new(Down {
                            monitor: mref,
                            pid: remote,
                            reason: ExitReason::NoConnection,
                        })));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// A `DOWN` from `dead`'s node for the monitor `mref` that `p` holds:
/// delivered if `p` still monitors it (a demonitor meanwhile voids it).
fn monitor_fired(p: &dyn ProcessDyn, mref: MonitorRef, dead: ProcessId, reason: ExitReason) {
    let was_monitoring = {
        let mut rel = p.core().rel.lock();
        let before = rel.items.len();
        rel.items
            .retain(|r| !matches!(r, Relation::Monitoring(m, t) if *m == mref && *t == dead));
        rel.items.len() != before
    };
    if was_monitoring {
        p.push_system(SystemMsg::Down(Box::new(Down {
            monitor: mref,
            pid: dead,
            reason,
        })));
    }
}

fn relation_node(r: &Relation) -> Option<u32> {
    match r {
        Relation::Link(p) | Relation::MonitoredBy(_, p) | Relation::Monitoring(_, p) => {
            (p.node != 0).then_some(p.node)
        }
        _ => None,
    }
}
