//! Links and monitors between processes on different nodes.
//!
//! Each side keeps its half in the process's relations, with the remote
//! pid's node index; the frames `Link`, `Unlink`, `Exit`, `Monitor`,
//! `Demonitor` and `Down` keep the halves in step. The layer also tracks,
//! per remote node, which local processes hold relations with it, so that
//! when the connection is lost every link fires an exit signal and every
//! monitor a `DOWN`, both with reason `noconnection`, without walking the
//! whole process table.

use super::peer::Peer;
use super::peers::Dist;
use super::proto::Frame;
use crate::exit::ExitReason;
use crate::node::Node;
use crate::pid::ProcessId;
use crate::process::{Relation, deliver_exit};
use crate::signal::{Down, MonitorRef, SystemMsg};
use crate::transport::Unreachable;
use parking_lot::Mutex;
use std::collections::{HashMap, HashSet};

/// Local serials holding relations with each remote node index.
#[derive(Debug, Default)]
pub(crate) struct RemoteRelations {
    by_node: Mutex<HashMap<u32, HashSet<u64>>>,
}

impl RemoteRelations {
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
}

impl Dist {
    /// Queues `frame` for the node incarnation `node_index` stands for.
    pub(crate) fn send_to_index(&self, node_index: u32, frame: Frame) -> Result<(), Unreachable> {
        let (name, creation) = self
            .node_table()
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

    fn peer_pid(&self, peer: &Peer, serial: u64) -> ProcessId {
        ProcessId {
            node: self
                .node_table()
                .intern(&peer.info.name, peer.info.creation),
            serial,
            creation: peer.info.creation,
        }
    }

    /// Handles a link, monitor or exit frame from `peer`.
    pub(crate) fn on_relation_frame(&self, node: &Node, peer: &Peer, frame: Frame) {
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
                let remote = self.peer_pid(peer, from);
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
                    self.remote_relations().track(remote.node, to);
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
                    p.core().rel.lock().remove_link(self.peer_pid(peer, from));
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
                let remote = self.peer_pid(peer, from);
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
                let watcher = self.peer_pid(peer, from);
                let added = local(to, to_creation).is_some_and(|p| {
                    let mut rel = p.core().rel.lock();
                    if p.core().closed.load(std::sync::atomic::Ordering::Relaxed) {
                        return false;
                    }
                    rel.push(Relation::MonitoredBy(MonitorRef(mref), watcher));
                    true
                });
                if added {
                    self.remote_relations().track(watcher.node, to);
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
                    let watcher = self.peer_pid(peer, from);
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
                let Some(p) = any_local(to) else { return };
                let dead = self.peer_pid(peer, from);
                let was_monitoring = {
                    let mut rel = p.core().rel.lock();
                    let before = rel.items.len();
                    rel.items.retain(
                        |r| !matches!(r, Relation::Monitoring(m, t) if m.0 == mref && *t == dead),
                    );
                    rel.items.len() != before
                };
                if was_monitoring {
                    p.push_system(SystemMsg::Down(Box::new(Down {
                        monitor: MonitorRef(mref),
                        pid: dead,
                        reason,
                    })));
                }
            }
            _ => {}
        }
    }

    /// Fires every link and monitor with a process of the lost node.
    pub(crate) fn fire_noconnection(&self, node: &Node, name: &str, creation: u32) {
        let index = self.node_table().intern(name, creation);
        for serial in self.remote_relations().take(index) {
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

fn relation_node(r: &Relation) -> Option<u32> {
    match r {
        Relation::Link(p) | Relation::MonitoredBy(_, p) | Relation::Monitoring(_, p) => {
            (p.node != 0).then_some(p.node)
        }
        _ => None,
    }
}
