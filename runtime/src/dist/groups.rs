//! Process groups across nodes (Erlang's `pg`).
//!
//! A node owns the memberships of its own processes (kept by the local
//! registry) and tells every visible peer about joins and leaves; each node
//! keeps a replica of the other nodes' members. On connect the two sides
//! exchange their memberships; when a node goes down its members vanish
//! from every replica.

use super::frame::{Frame, WirePid};
use super::mesh::Mesh;
use super::peer::Peer;
use crate::node::Node;
use crate::pid::Pid;
use crate::registry::Groups;
use parking_lot::Mutex;
use std::collections::HashMap;

/// Process groups across nodes (Erlang's `pg`), this node's side: its
/// replica of the members that live on other nodes, by group, and the
/// frames that keep it and the other nodes' replicas in step.
#[derive(Debug, Default)]
pub(crate) struct RemoteGroups {
    members: Mutex<HashMap<String, Vec<WirePid>>>,
}

impl RemoteGroups {
    fn add(&self, group: String, pid: WirePid) {
        let mut m = self.members.lock();
        let list = m.entry(group).or_default();
        if !list.contains(&pid) {
            list.push(pid);
        }
    }

    fn remove(&self, group: &str, pid: &WirePid) {
        let mut m = self.members.lock();
        if let Some(list) = m.get_mut(group) {
            list.retain(|p| p != pid);
            if list.is_empty() {
                m.remove(group);
            }
        }
    }

    pub(crate) fn members(&self, group: &str) -> Vec<WirePid> {
        self.members.lock().get(group).cloned().unwrap_or_default()
    }

    pub(crate) fn groups(&self) -> Vec<String> {
        self.members.lock().keys().cloned().collect()
    }

    /// Forgets the members of a node that went down.
    pub(crate) fn node_down(&self, node: &str) {
        let mut m = self.members.lock();
        m.retain(|_, list| {
            list.retain(|p| p.node != node);
            !list.is_empty()
        });
    }

    /// Tells the cluster a local process joined (`joined`) or left `group`.
    pub(crate) fn announce(&self, mesh: &Mesh, group: &str, pid: WirePid, joined: bool) {
        if mesh.local.hidden {
            // Full members only: a hidden node's groups stay its own.
            return;
        }
        let frame = if joined {
            Frame::GroupJoin {
                group: group.to_owned(),
                pid,
            }
        } else {
            Frame::GroupLeave {
                group: group.to_owned(),
                pid,
            }
        };
        mesh.broadcast_visible(&frame);
    }

    /// Handles a group frame from `peer`.
    pub(crate) fn on_frame(&self, frame: Frame) {
        match frame {
            Frame::GroupJoin { group, pid } => self.add(group, pid),
            Frame::GroupLeave { group, pid } => self.remove(&group, &pid),
            Frame::GroupSync { members } => {
                for (group, pid) in members {
                    self.add(group, pid);
                }
            }
            _ => {}
        }
    }

    /// Sends a newly connected visible peer every local membership.
    pub(crate) fn sync_to(&self, node: &Node, mesh: &Mesh, peer: &Peer) {
        let members: Vec<(String, WirePid)> = node
            .local_memberships()
            .into_iter()
            .map(|(group, id)| {
                (
                    group,
                    WirePid {
                        node: mesh.local.name.clone(),
                        creation: id.creation(),
                        serial: id.serial(),
                    },
                )
            })
            .collect();
        if !members.is_empty() {
            let _ = peer.send(Frame::GroupSync { members });
        }
    }
}

impl Groups<'_> {
    /// Typed handles to the members of `group` on every connected node
    /// (local members of another message type are left out).
    pub fn member_pids<M: super::RemoteMessage>(&self, group: &str) -> Vec<Pid<M>> {
        let mut all: Vec<Pid<M>> = self
            .local_members(group)
            .into_iter()
            .filter_map(|id| self.node.pid::<M>(id).ok())
            .collect();
        if let Some(dist) = self.node.dist_layer() {
            all.extend(
                dist.groups
                    .members(group)
                    .into_iter()
                    .map(|w| self.node.pid_from_wire::<M>(dist, w)),
            );
        }
        all
    }
}
