//! The distribution layer's side of [`crate::transport`]: the process
//! core's signals, group announcements and questions, turned into frames
//! and lookups of the connection table.

use super::peers::Dist;
use super::proto::{Frame, WirePid};
use crate::pid::ProcessId;
use crate::transport::{NodeEvent, RemoteSignal, Transport, Unreachable};
use std::task::Poll;

impl Dist {
    /// The wire form of a local process id.
    fn local_wire(&self, id: ProcessId) -> WirePid {
        WirePid {
            node: self.local.name.clone(),
            creation: id.creation(),
            serial: id.serial(),
        }
    }

    /// The local form of a wire process id (index 0 for this node's own).
    pub(crate) fn process_id(&self, wire: &WirePid) -> ProcessId {
        let node = if wire.node == self.local.name && wire.creation == self.local.creation {
            0
        } else {
            self.node_table().intern(&wire.node, wire.creation)
        };
        ProcessId {
            node,
            serial: wire.serial,
            creation: wire.creation,
        }
    }
}

impl Transport for Dist {
    fn signal(&self, signal: RemoteSignal) -> Result<(), Unreachable> {
        let (to, frame) = match signal {
            RemoteSignal::Link { from, to } => {
                self.remote_relations().track(to.node_index(), from);
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
                self.remote_relations().track(to.node_index(), from);
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
        self.send_to_index(to.node_index(), frame)
    }

    fn announce_group(&self, group: &str, member: ProcessId, joined: bool) {
        self.announce_group_wire(group, self.local_wire(member), joined);
    }

    fn remote_group_members(&self, group: &str) -> Vec<ProcessId> {
        self.remote_groups()
            .members(group)
            .iter()
            .map(|w| self.process_id(w))
            .collect()
    }

    fn remote_groups(&self) -> Vec<String> {
        self.remote_groups().groups()
    }

    fn release_global(&self, name: &str, holder: ProcessId) {
        self.release_global_wire(name, self.local_wire(holder));
    }

    fn poll_resume(&self, serial: u64, cx: &mut std::task::Context<'_>) -> Poll<()> {
        Dist::poll_resume(self, serial, cx)
    }

    fn watch(&self, pid: ProcessId, on: bool) {
        Dist::watch(self, pid, on);
    }

    fn events(&self) -> tokio::sync::broadcast::Receiver<NodeEvent> {
        self.subscribe()
    }

    fn is_connected(&self, node: &str) -> bool {
        self.peer(node).is_some()
    }

    fn cancel_reply(&self, id: u64) {
        self.replies().cancel(id);
    }

    fn register_global(
        &self,
        node: crate::Node,
        name: String,
        pid: ProcessId,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<(), crate::GlobalNameError>> + Send>,
    > {
        use super::GlobalError;
        use crate::GlobalNameError;
        Box::pin(async move {
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
