//! GenServer calls across nodes: the wire forms of a server's mailbox
//! message and of a call's reply handle.
//!
//! A `ServerMsg<S>` crosses the wire when all of `S`'s message types are
//! serde-encodable. Encoding a call's local reply handle parks the
//! caller's completion with the node's pending replies and sends its id;
//! the receiving node decodes it as a remote reply handle, whose `reply`
//! sends a `Reply` frame back. A remote handle dropped without a reply
//! (the server crashed or forgot) reports the server's exit reason, or
//! `NoReply` if it is still alive five seconds later.

use super::frame::{Frame, ReplyFailure, WirePid, WireReply};
use super::remote::{self, RemoteMessage};
use super::{PeerCache, replies::Completion};
use crate::exit_reason::ExitReason;
use crate::gen_server::{GenServer, Inner, ReplyInner, ReplyTo, ServerContext, ServerMsg};
use crate::node::Node;
use crate::process::{self, ProcessDyn};
use crate::transport::RemoteReplySink;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::any::Any;
use std::sync::Weak;
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

/// How long a dropped remote reply handle waits for its server's exit
/// reason before reporting `NoReply`.
const EXIT_REASON_WAIT: Duration = Duration::from_secs(5);

/// A reply handle for a call made on another node.
pub(crate) struct RemoteReply<R> {
    via: Node,
    node: String,
    creation: u32,
    id: u64,
    encode: fn(&R) -> Result<Vec<u8>, postcard::Error>,
    server: Option<Weak<dyn ProcessDyn>>,
    done: AtomicBool,
}

impl<R: RemoteMessage> RemoteReplySink<R> for RemoteReply<R> {
    fn reply(self: Box<Self>, reply: R) -> bool {
        self.done.store(true, Relaxed);
        let result = (self.encode)(&reply)
            .map(serde_bytes::ByteBuf::from)
            .map_err(|e| ReplyFailure::Malformed(e.to_string()));
        send_reply(&self.via, &self.node, self.id, result)
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl<S: GenServer> ServerContext<S> {
    /// Lets this server take calls, casts and info messages from other
    /// nodes (needs all its message types to be serde-encodable).
    pub fn enable_remote(&self)
    where
        ServerMsg<S>: RemoteMessage,
    {
        self.ctx.enable_remote()
    }
}

fn send_reply(
    via: &Node,
    node: &str,
    id: u64,
    result: Result<serde_bytes::ByteBuf, ReplyFailure>,
) -> bool {
    via.dist_layer().is_some_and(|d| {
        d.mesh
            .send_frame(&PeerCache::default(), node, Frame::Reply { id, result })
    })
}

impl<R> Drop for RemoteReply<R> {
    fn drop(&mut self) {
        if self.done.load(Relaxed) {
            return;
        }
        let waiter = self
            .server
            .as_ref()
            .and_then(Weak::upgrade)
            .map(|p| process::exit_waiter(p.core()));
        let (via, node, id) = (self.via.clone(), self.node.clone(), self.id);
        self.via.handle().spawn(async move {
            let failure = match waiter {
                Some(rx) => match tokio::time::timeout(EXIT_REASON_WAIT, rx).await {
                    Ok(Ok(reason)) => ReplyFailure::Exited(reason),
                    _ => ReplyFailure::NoReply,
                },
                None => ReplyFailure::Exited(ExitReason::NoProc),
            };
            send_reply(&via, &node, id, Err(failure));
        });
    }
}

impl<R: RemoteMessage> Serialize for ReplyTo<R> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::Error;
        let caller = self
            .caller
            .filter(|c| c.node_index() == 0)
            .map(|c| c.serial());
        if remote::sizing() {
            // Measuring only: a stand-in of about the same size.
            return WireReply {
                node: String::new(),
                creation: 0,
                id: 0,
                caller,
            }
            .serialize(s);
        }
        let wire = match &self.inner {
            ReplyInner::Local(slot) => {
                let tx = slot
                    .lock()
                    .take()
                    .ok_or_else(|| S::Error::custom("reply handle already used"))?;
                let completion: Completion = Box::new(move |result| {
                    let out = result.and_then(|bytes| {
                        postcard::from_bytes::<R>(bytes)
                            .map_err(|e| ReplyFailure::Malformed(e.to_string()))
                    });
                    let _ = tx.send(out);
                });
                let (id, mesh) = remote::park_reply(completion).ok_or_else(|| {
                    S::Error::custom("a reply handle can only be encoded for another node")
                })?;
                WireReply {
                    node: mesh.local.name.clone(),
                    creation: mesh.local.creation,
                    id,
                    caller,
                }
            }
            ReplyInner::Remote(r) => {
                let r = r
                    .as_any()
                    .downcast_ref::<RemoteReply<R>>()
                    .expect("remote reply handles are made by the distribution layer");
                // Forwarded: the reply now goes straight to the caller.
                r.done.store(true, Relaxed);
                WireReply {
                    node: r.node.clone(),
                    creation: r.creation,
                    id: r.id,
                    caller,
                }
            }
        };
        wire.serialize(s)
    }
}

impl<'de, R: RemoteMessage> Deserialize<'de> for ReplyTo<R> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let wire = WireReply::deserialize(d)?;
        let via = remote::decoding_node().ok_or_else(|| {
            D::Error::custom("a reply handle can only be decoded by a node receiving a message")
        })?;
        let caller = wire.caller.map(|serial| {
            via.process_id(&WirePid {
                node: wire.node.clone(),
                creation: wire.creation,
                serial,
            })
        });
        Ok(ReplyTo {
            inner: ReplyInner::Remote(Box::new(RemoteReply {
                via,
                node: wire.node,
                creation: wire.creation,
                id: wire.id,
                encode: remote::encode::<R>,
                server: remote::decoding_target(),
                done: AtomicBool::new(false),
            })),
            caller,
        })
    }
}

#[derive(Serialize)]
#[serde(bound = "C: Serialize, ReplyTo<R>: Serialize, K: Serialize, I: Serialize")]
enum WireOut<'a, C, R, K, I> {
    Call(&'a C, &'a ReplyTo<R>),
    Cast(&'a K),
    Info(&'a I),
    Stop(&'a ExitReason),
}

#[derive(Deserialize)]
#[serde(
    bound = "C: Deserialize<'de>, ReplyTo<R>: Deserialize<'de>, K: Deserialize<'de>, \
                 I: Deserialize<'de>"
)]
enum WireIn<C, R, K, I> {
    Call(C, ReplyTo<R>),
    Cast(K),
    Info(I),
    Stop(ExitReason),
}

impl<S: GenServer> Serialize for ServerMsg<S>
where
    S::Call: Serialize,
    S::Reply: RemoteMessage,
    S::Cast: Serialize,
    S::Info: Serialize,
{
    fn serialize<Z: Serializer>(&self, s: Z) -> Result<Z::Ok, Z::Error> {
        let out: WireOut<'_, S::Call, S::Reply, S::Cast, S::Info> = match &self.0 {
            Inner::Call(req, reply) => WireOut::Call(req, reply),
            Inner::Cast(msg) => WireOut::Cast(msg),
            Inner::Info(msg) => WireOut::Info(msg),
            Inner::Stop(reason) => WireOut::Stop(reason),
        };
        out.serialize(s)
    }
}

impl<'de, S: GenServer> Deserialize<'de> for ServerMsg<S>
where
    S::Call: DeserializeOwned,
    S::Reply: RemoteMessage,
    S::Cast: DeserializeOwned,
    S::Info: DeserializeOwned,
{
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let wire: WireIn<S::Call, S::Reply, S::Cast, S::Info> = WireIn::deserialize(d)?;
        Ok(ServerMsg(match wire {
            WireIn::Call(req, reply) => Inner::Call(req, reply),
            WireIn::Cast(msg) => Inner::Cast(msg),
            WireIn::Info(msg) => Inner::Info(msg),
            WireIn::Stop(reason) => Inner::Stop(reason),
        }))
    }
}
