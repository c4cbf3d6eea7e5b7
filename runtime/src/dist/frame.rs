//! The schema of the distribution protocol: one versioned enum of frames.
//!
//! Every frame travels as `[u32 length, big-endian][u8 wire version][postcard
//! body]` (see [`super::codec`]). Handshake frames come first, then session
//! frames; a frame out of place closes the connection.

use serde::{Deserialize, Serialize};

/// The distribution protocol version carried in the handshake.
///
/// 2: a `Spawn` carries the caller's trace context. 3: a message may carry
/// out-of-band payloads ([`MsgKind::Bulk`]). 4: a call says so in its
/// kind ([`MsgKind::Call`], [`MsgKind::BulkCall`]), so a node can answer
/// a call to a process it does not have at once. Nodes of different
/// versions refuse each other at the handshake, with both versions named.
pub const PROTOCOL_VERSION: u16 = 4;

/// Flag bit: the node is hidden (not listed, not meshed).
pub const FLAG_HIDDEN: u32 = 1;

/// A nonce or a proof: 32 bytes.
pub type Bytes32 = [u8; 32];

/// Why a handshake was refused, as sent to the peer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum RefuseReason {
    /// The peers speak different protocol versions.
    VersionMismatch {
        /// The refusing side's version.
        ours: u16,
        /// The version the peer offered.
        theirs: u16,
    },
    /// The cookie proof did not match.
    BadCookie,
    /// Another node incarnation with that name is connected.
    NameInUse,
    /// A connection to the same node already exists and wins the tie-break.
    Duplicate,
    /// The name is blocked on this node (fault injection).
    Blocked,
    /// The name is not of the form `name@host`, or is this node's own.
    BadName,
}

impl std::fmt::Display for RefuseReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RefuseReason::VersionMismatch { ours, theirs } => {
                write!(
                    f,
                    "protocol version mismatch (ours {ours}, theirs {theirs})"
                )
            }
            RefuseReason::BadCookie => f.write_str("wrong cookie"),
            RefuseReason::NameInUse => f.write_str("a node with that name is already connected"),
            RefuseReason::Duplicate => f.write_str("already connected"),
            RefuseReason::Blocked => f.write_str("blocked"),
            RefuseReason::BadName => f.write_str("bad node name"),
        }
    }
}

/// A visible peer and where it listens, for mesh propagation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerAddr {
    /// The peer's node name.
    pub name: String,
    /// Its listen address, `ip:port`.
    pub listen: String,
}

/// A process id as it crosses the wire: node name, creation, serial.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct WirePid {
    /// The node the process lives on.
    pub node: String,
    /// That node's creation.
    pub creation: u32,
    /// The process's serial on that node.
    pub serial: u64,
}

/// Where on the receiving node a message goes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Target {
    /// A process of the receiving node, by serial; `creation` must match
    /// the receiver's, so ids from an earlier incarnation are dead.
    Pid {
        /// The serial.
        serial: u64,
        /// The receiver incarnation the id belongs to.
        creation: u32,
    },
    /// A process registered under this name on the receiving node.
    Name(String),
}

/// What kind of message a [`Frame::Message`] carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MsgKind {
    /// A plain message (`send`; a GenServer's info).
    Send,
    /// A plain message with out-of-band payloads
    /// ([`Payload`](crate::Payload)s): the frame's `payload` ends with
    /// `out_of_band` bytes, the payloads in the order the message encodes
    /// them.
    Bulk {
        /// How many of the payload's bytes are out of band, at its end.
        out_of_band: u64,
    },
    /// A GenServer call: as `Send`, and the caller waits for the reply
    /// with this id (also inside the payload), which the receiving node
    /// answers with a failure if it cannot deliver the message.
    Call {
        /// The pending reply's id on the calling node.
        reply: u64,
    },
    /// A call with out-of-band payloads (see `Bulk` and `Call`).
    BulkCall {
        /// How many of the payload's bytes are out of band, at its end.
        out_of_band: u64,
        /// The pending reply's id on the calling node.
        reply: u64,
    },
}

impl MsgKind {
    /// The kind of a message with `out_of_band` bytes out of band, which
    /// is a call waiting for reply `reply` if there is one.
    pub(crate) fn of(out_of_band: u64, reply: Option<u64>) -> MsgKind {
        match (out_of_band, reply) {
            (0, None) => MsgKind::Send,
            (n, None) => MsgKind::Bulk { out_of_band: n },
            (0, Some(reply)) => MsgKind::Call { reply },
            (n, Some(reply)) => MsgKind::BulkCall {
                out_of_band: n,
                reply,
            },
        }
    }

    /// Bytes of the payload that are out of band.
    pub(crate) fn out_of_band(&self) -> u64 {
        match *self {
            MsgKind::Send | MsgKind::Call { .. } => 0,
            MsgKind::Bulk { out_of_band } | MsgKind::BulkCall { out_of_band, .. } => out_of_band,
        }
    }

    /// The reply a call waits for.
    pub(crate) fn reply(&self) -> Option<u64> {
        match *self {
            MsgKind::Call { reply } | MsgKind::BulkCall { reply, .. } => Some(reply),
            MsgKind::Send | MsgKind::Bulk { .. } => None,
        }
    }
}

/// Where a call's reply goes: the calling node and its pending-reply id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireReply {
    /// The calling node.
    pub node: String,
    /// Its creation.
    pub creation: u32,
    /// The pending reply's id on that node.
    pub id: u64,
    /// Serial of the calling process, if the call came from one.
    pub caller: Option<u64>,
}

/// What a [`Frame::Spawn`] starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SpawnKind {
    /// A process of a registered behaviour; the reply is its pid. `tag`
    /// is the caller's message type, checked against the behaviour's.
    Process {
        /// Type tag of the message type the caller expects.
        tag: u64,
    },
    /// A registered task; the reply is its result.
    Task,
}

pub use crate::error::ReplyFailure;

/// One frame of the distribution protocol.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Frame {
    /// Initiator → acceptor: who I am, and my fresh nonce.
    Hello {
        /// Protocol version ([`PROTOCOL_VERSION`]).
        version: u16,
        /// Node name, `name@host`.
        name: String,
        /// Creation of this node incarnation.
        creation: u32,
        /// Bit flags ([`FLAG_HIDDEN`]).
        flags: u32,
        /// Where this node listens, if it does.
        listen: Option<String>,
        /// A fresh random nonce.
        nonce: Bytes32,
    },
    /// Acceptor → initiator: who I am, my nonce, and my cookie proof.
    Challenge {
        /// Protocol version.
        version: u16,
        /// Node name.
        name: String,
        /// Creation.
        creation: u32,
        /// Bit flags.
        flags: u32,
        /// Listen address.
        listen: Option<String>,
        /// A fresh random nonce.
        nonce: Bytes32,
        /// HMAC-SHA256 proof of the cookie over the transcript.
        proof: Bytes32,
    },
    /// Initiator → acceptor: my cookie proof.
    Proof {
        /// HMAC-SHA256 proof of the cookie over the transcript.
        proof: Bytes32,
    },
    /// Acceptor → initiator: the connection is up.
    Established,
    /// Either side: the handshake failed.
    Refused {
        /// Why.
        reason: RefuseReason,
    },
    /// Liveness probe; `reply` marks the echo.
    Heartbeat {
        /// Sequence number, echoed in the reply.
        seq: u64,
        /// Whether this is the echo.
        reply: bool,
    },
    /// The sender's visible peers, to complete the mesh.
    Peers {
        /// Visible peers with their listen addresses.
        peers: Vec<PeerAddr>,
    },
    /// A message for a process of the receiving node.
    Message {
        /// The destination.
        to: Target,
        /// Serial of the sending process on the sending node, if any.
        from: Option<u64>,
        /// What the message is.
        kind: MsgKind,
        /// Hash of the payload's Rust type name, checked by the receiver.
        tag: u64,
        /// The sender's trace context.
        trace: Option<crate::trace::TraceContext>,
        /// The message, postcard-encoded; on the wire, and when decoded
        /// by [`super::codec::decode`], followed by its out-of-band bytes.
        #[serde(with = "serde_bytes")]
        payload: Vec<u8>,
        /// When sending: the out-of-band payloads that follow `payload` on
        /// the wire, which `kind` counts. Never decoded (empty).
        #[serde(skip)]
        out_of_band: Vec<bytes::Bytes>,
    },
    /// Link a process of the sender with one of the receiver.
    Link {
        /// Serial of the sender's process.
        from: u64,
        /// Serial of the receiver's process.
        to: u64,
        /// The receiver incarnation `to` belongs to.
        to_creation: u32,
    },
    /// Remove such a link.
    Unlink {
        /// Serial of the sender's process.
        from: u64,
        /// Serial of the receiver's process.
        to: u64,
    },
    /// An exit signal from a process of the sender.
    Exit {
        /// Serial of the sender's process (0: from outside any process).
        from: u64,
        /// Serial of the receiver's process.
        to: u64,
        /// The receiver incarnation `to` belongs to.
        to_creation: u32,
        /// The exit reason.
        reason: crate::ExitReason,
        /// Whether it travels over a link (else it is an `exit/2`).
        link: bool,
    },
    /// A process of the sender monitors one of the receiver.
    Monitor {
        /// Serial of the watching process.
        from: u64,
        /// Serial of the watched process.
        to: u64,
        /// The receiver incarnation `to` belongs to.
        to_creation: u32,
        /// The monitor's reference on the sender.
        mref: u64,
    },
    /// Remove such a monitor.
    Demonitor {
        /// Serial of the watching process.
        from: u64,
        /// Serial of the watched process.
        to: u64,
        /// The monitor's reference.
        mref: u64,
    },
    /// A process of the sender, monitored from the receiver, exited.
    Down {
        /// Serial of the watching process on the receiver.
        to: u64,
        /// The monitor's reference.
        mref: u64,
        /// Serial of the process that exited.
        from: u64,
        /// Its exit reason.
        reason: crate::ExitReason,
    },
    /// Ask for the cluster-wide lock on a global name.
    GlobalLock {
        /// The name.
        name: String,
        /// The request's id, echoed in the reply.
        id: u64,
    },
    /// Whether the lock was granted.
    GlobalLockReply {
        /// The request's id.
        id: u64,
        /// Granted or not.
        granted: bool,
    },
    /// Release the sender's lock on a global name.
    GlobalUnlock {
        /// The name.
        name: String,
    },
    /// A process of the sender now holds a global name.
    GlobalRegister {
        /// The name.
        name: String,
        /// The holder.
        pid: WirePid,
    },
    /// A process of the sender no longer holds a global name.
    GlobalUnregister {
        /// The name.
        name: String,
        /// The former holder.
        pid: WirePid,
    },
    /// Every global name a process of the sender holds (sent on connect).
    GlobalSync {
        /// Names and holders.
        names: Vec<(String, WirePid)>,
    },
    /// A process of the sender joined a process group.
    GroupJoin {
        /// The group.
        group: String,
        /// The member.
        pid: WirePid,
    },
    /// A process of the sender left a process group (or exited).
    GroupLeave {
        /// The group.
        group: String,
        /// The former member.
        pid: WirePid,
    },
    /// Every group membership of the sender's processes (sent on connect).
    GroupSync {
        /// Groups and members.
        members: Vec<(String, WirePid)>,
    },
    /// Spawn a registered behaviour, or run a registered task, on the
    /// receiver; the answer comes as a `Reply` with `reply`.
    Spawn {
        /// The registered name.
        name: String,
        /// What to start.
        what: SpawnKind,
        /// Encoded arguments.
        #[serde(with = "serde_bytes")]
        args: Vec<u8>,
        /// The pending-reply id on the sender.
        reply: u64,
        /// The caller's trace context: a remote task's span joins the
        /// caller's trace.
        trace: Option<crate::trace::TraceContext>,
    },
    /// The answer to a call made from the receiving node.
    Reply {
        /// The pending reply's id on the receiving node.
        id: u64,
        /// The encoded reply, or why there is none.
        result: Result<serde_bytes::ByteBuf, ReplyFailure>,
    },
}
