//! Pids of processes on other nodes: the route a remote `Pid<M>` sends
//! through, and the wire form of a pid inside a message.
//!
//! A route holds the distribution layer and a cached handle to the
//! connection, so a send looks nothing up: it encodes the message once,
//! queues one `Message` frame and checks the link's busy limit.
//!
//! A local pid that is serialized (sent to another node inside a message)
//! makes its process accept remote messages from then on; a decoded pid
//! names the live local process if it is ours and of the right type, and
//! a route to its node otherwise.

use super::frame::{Frame, MsgKind, Target, WirePid};
use super::remote::{self, RemoteMessage};
use super::{Dist, PeerCache};
use crate::node::Node;
use crate::pid::{Pid, ProcessId, Route};
use crate::process::{self, Context};
use crate::trace;
use crate::transport::{ParkedReply, RemoteRoute};
use serde::{Deserialize, Serialize};
use std::any::Any;
use std::sync::Arc;

/// How to reach a process on another node.
pub(crate) struct DistRoute<M> {
    id: ProcessId,
    /// The node it lives on.
    node: String,
    /// The process there: by serial or by registered name.
    target: Target,
    dist: Arc<Dist>,
    tag: u64,
    encode: fn(&M) -> Result<Vec<u8>, postcard::Error>,
    peer: PeerCache,
}

impl<M: RemoteMessage> RemoteRoute<M> for DistRoute<M> {
    fn id(&self) -> ProcessId {
        self.id
    }

    fn node_name(&self) -> &str {
        &self.node
    }

    fn send(&self, msg: &M) -> Result<Option<ParkedReply>, ()> {
        let dist = &self.dist;
        let (payload, encoded) =
            remote::encoding_for(&dist.mesh, &self.node, || (self.encode)(msg));
        let parked = encoded
            .reply_id
            .map(|id| ParkedReply::new(dist.clone(), id));
        let payload = match payload {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(to = %self.id, node = %self.node, error = %e, "cannot encode a remote message");
                return Err(());
            }
        };
        let from = process::note_send()
            .filter(|id| id.node_index() == 0)
            .map(|id| id.serial());
        let out_of_band = encoded.out_of_band;
        let kind = MsgKind::of(
            out_of_band.iter().map(|b| b.len() as u64).sum(),
            encoded.reply_id,
        );
        let frame = Frame::Message {
            to: self.target.clone(),
            from,
            kind,
            tag: self.tag,
            trace: trace::current_context(),
            payload,
            out_of_band,
        };
        if dist.mesh.send_frame(&self.peer, &self.node, frame) {
            if let Some(p) = self.peer.read().as_ref() {
                dist.check_busy(p);
            }
            Ok(parked)
        } else {
            Err(())
        }
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl<M: RemoteMessage> Context<M> {
    /// Lets this process take messages from other nodes (sent to its pid or
    /// to its registered name). Sending its pid to another node does this
    /// too.
    pub fn enable_remote(&self) {
        self.shared.enable_remote();
    }
}

impl<M: RemoteMessage> Pid<M> {
    /// Lets this (local) process take messages from other nodes, from now
    /// on: call it right after spawning, before its pid or name is known
    /// elsewhere. A no-op for a remote pid. Sending the pid to another node
    /// does this too.
    pub fn enable_remote(&self) {
        if let Route::Local(shared) = &self.route {
            shared.enable_remote();
        }
    }

    /// A route through `via`'s connection to `target` on `node`.
    pub(crate) fn remote(
        via: &Node,
        dist: &Arc<Dist>,
        id: ProcessId,
        node: String,
        target: Target,
    ) -> Self {
        Pid {
            route: Route::Remote {
                via: via.clone(),
                route: Arc::new(DistRoute {
                    id,
                    node,
                    target,
                    dist: dist.clone(),
                    tag: remote::type_tag::<M>(),
                    encode: remote::encode::<M>,
                    peer: PeerCache::default(),
                }),
            },
        }
    }
}

impl<M: RemoteMessage> Serialize for Pid<M> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match &self.route {
            Route::Local(shared) => {
                // The pid is leaving the node: its process must now accept
                // remote messages.
                shared.enable_remote();
                WirePid {
                    node: shared.core.node.name().to_owned(),
                    creation: shared.core.id().creation(),
                    serial: shared.core.id().serial(),
                }
                .serialize(s)
            }
            Route::Remote { route, .. } => {
                let r = route
                    .as_any()
                    .downcast_ref::<DistRoute<M>>()
                    .expect("remote routes are made by the distribution layer");
                match &r.target {
                    Target::Pid { serial, creation } => WirePid {
                        node: r.node.clone(),
                        creation: *creation,
                        serial: *serial,
                    }
                    .serialize(s),
                    Target::Name(name) => Err(serde::ser::Error::custom(format!(
                        "the name-routed pid {{{name}, {}}} cannot be sent in a message",
                        r.node
                    ))),
                }
            }
        }
    }
}

impl<'de, M: RemoteMessage> Deserialize<'de> for Pid<M> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire = WirePid::deserialize(d)?;
        let node = remote::decoding_node().ok_or_else(|| {
            serde::de::Error::custom("a Pid can only be decoded by a node receiving a message")
        })?;
        let dist = node.dist_layer().ok_or_else(|| {
            serde::de::Error::custom("a Pid can only be decoded by a distributed node")
        })?;
        Ok(node.pid_from_wire(dist, wire))
    }
}

impl Node {
    /// A handle to the process `wire` names: the live local process if it
    /// is ours and of type `M`, otherwise a route through the connection
    /// to its node (which counts sends as dead letters if the process or
    /// the connection is gone).
    pub(crate) fn pid_from_wire<M: RemoteMessage>(
        &self,
        dist: &Arc<Dist>,
        wire: WirePid,
    ) -> Pid<M> {
        let id = dist.mesh.process_id(&wire);
        if id.node_index() == 0 {
            if let Ok(pid) = self.pid::<M>(id) {
                return pid;
            }
        }
        let target = Target::Pid {
            serial: wire.serial,
            creation: wire.creation,
        };
        Pid::remote(self, dist, id, wire.node, target)
    }
}
