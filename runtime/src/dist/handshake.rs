//! The connection handshake as a pure state machine: frames in, frames out,
//! no I/O, no clock, no randomness (nonces are passed in).
//!
//! ```text
//! initiator                                   acceptor
//!   Hello{name, creation, flags, nonce_i}  ──►
//!                                          ◄──  Challenge{name, creation, flags, nonce_a,
//!                                                          proof_a = MAC("acceptor" ‖ transcript)}
//!   Proof{proof_i = MAC("initiator" ‖ transcript)} ──►
//!                                          ◄──  Established
//! ```
//!
//! The MAC is HMAC-SHA256 keyed with the cookie over both fresh nonces, both
//! names and both creations, so the cookie never crosses the wire and a
//! recorded handshake cannot be replayed (the other side's nonce differs).
//! Each side checks the other's proof in constant time. With a wrong cookie
//! both sides refuse: the initiator sends its own proof anyway before it
//! refuses, so the acceptor can reach the same verdict and log it.
//!
//! Any frame out of order moves the machine to `Closed`, refusing the
//! connection.

use super::cookie::Cookie;
use super::frame::{Bytes32, FLAG_HIDDEN, Frame, PROTOCOL_VERSION, RefuseReason};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// What this node says about itself.
#[derive(Debug, Clone)]
pub(crate) struct LocalInfo {
    pub(crate) name: String,
    pub(crate) creation: u32,
    pub(crate) hidden: bool,
    pub(crate) listen: Option<String>,
    pub(crate) cookie: Cookie,
}

/// What the handshake learned about the peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct PeerInfo {
    pub(crate) name: String,
    pub(crate) creation: u32,
    pub(crate) hidden: bool,
    pub(crate) listen: Option<String>,
}

/// Why a handshake ended without a connection.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HandshakeError {
    /// This side refused the peer.
    #[error("refused: {0}")]
    Refused(RefuseReason),
    /// The peer refused this side.
    #[error("peer refused: {0}")]
    PeerRefused(RefuseReason),
    /// A frame arrived out of order.
    #[error("unexpected {0} frame during the handshake")]
    Unexpected(&'static str),
}

/// The result of feeding one frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Send these frames and wait for the next one.
    Continue(Vec<Frame>),
    /// Send these frames; the connection is established with `peer`.
    Established { send: Vec<Frame>, peer: PeerInfo },
    /// Send these frames, then close.
    Failed {
        send: Vec<Frame>,
        error: HandshakeError,
    },
}

#[derive(Debug)]
enum State {
    InitiatorAwaitChallenge,
    InitiatorAwaitEstablished { peer: PeerInfo },
    AcceptorAwaitHello,
    AcceptorAwaitProof { peer: PeerInfo, peer_nonce: Bytes32 },
    Done,
    Closed,
}

/// One side of a handshake.
#[derive(Debug)]
pub(crate) struct Handshake {
    local: LocalInfo,
    nonce: Bytes32,
    state: State,
    /// The name the peer claimed, once known (for log lines).
    claimed: Option<String>,
}

impl Handshake {
    /// Starts as the connecting side; returns the `Hello` to send.
    pub(crate) fn initiator(local: LocalInfo, nonce: Bytes32) -> (Self, Frame) {
        let hello = Frame::Hello {
            version: PROTOCOL_VERSION,
            name: local.name.clone(),
            creation: local.creation,
            flags: local_flags(&local),
            listen: local.listen.clone(),
            nonce,
        };
        let hs = Handshake {
            local,
            nonce,
            state: State::InitiatorAwaitChallenge,
            claimed: None,
        };
        (hs, hello)
    }

    /// Starts as the listening side.
    pub(crate) fn acceptor(local: LocalInfo, nonce: Bytes32) -> Self {
        Handshake {
            local,
            nonce,
            state: State::AcceptorAwaitHello,
            claimed: None,
        }
    }

    /// The name the peer claimed, if it got that far and the name is
    /// well-formed (not yet proved: the peer has not shown the cookie).
    pub(crate) fn claimed_name(&self) -> Option<&str> {
        self.claimed.as_deref()
    }

    /// Feeds one received frame. `admit` decides whether this node accepts
    /// the peer (it is consulted once, by the acceptor, on `Hello`).
    pub(crate) fn next(
        &mut self,
        frame: Frame,
        admit: &dyn Fn(&PeerInfo) -> Result<(), RefuseReason>,
    ) -> Step {
        let state = std::mem::replace(&mut self.state, State::Closed);
        match (state, frame) {
            (_, Frame::Refused { reason }) => fail(vec![], HandshakeError::PeerRefused(reason)),
            (
                State::AcceptorAwaitHello,
                Frame::Hello {
                    version,
                    name,
                    creation,
                    flags,
                    listen,
                    nonce,
                },
            ) => {
                let peer = match self.check_peer(version, name, creation, flags, listen) {
                    Ok(peer) => peer,
                    Err(step) => return step,
                };
                if let Err(reason) = admit(&peer) {
                    return refuse(reason);
                }
                let proof = mac(
                    &self.local.cookie,
                    b"acceptor",
                    &Transcript::new(&peer, &nonce, &self.local, &self.nonce),
                );
                let challenge = Frame::Challenge {
                    version: PROTOCOL_VERSION,
                    name: self.local.name.clone(),
                    creation: self.local.creation,
                    flags: local_flags(&self.local),
                    listen: self.local.listen.clone(),
                    nonce: self.nonce,
                    proof,
                };
                self.state = State::AcceptorAwaitProof {
                    peer,
                    peer_nonce: nonce,
                };
                Step::Continue(vec![challenge])
            }
            (
                State::InitiatorAwaitChallenge,
                Frame::Challenge {
                    version,
                    name,
                    creation,
                    flags,
                    listen,
                    nonce,
                    proof,
                },
            ) => {
                let peer = match self.check_peer(version, name, creation, flags, listen) {
                    Ok(peer) => peer,
                    Err(step) => return step,
                };
                let transcript = Transcript::new(&self.local, &self.nonce, &peer, &nonce);
                let expected = mac(&self.local.cookie, b"acceptor", &transcript);
                let ours = Frame::Proof {
                    proof: mac(&self.local.cookie, b"initiator", &transcript),
                };
                if !bool::from(expected.ct_eq(&proof)) {
                    // Send our proof anyway so the acceptor refuses too.
                    return fail(
                        vec![
                            ours,
                            Frame::Refused {
                                reason: RefuseReason::BadCookie,
                            },
                        ],
                        HandshakeError::Refused(RefuseReason::BadCookie),
                    );
                }
                self.state = State::InitiatorAwaitEstablished { peer };
                Step::Continue(vec![ours])
            }
            (State::AcceptorAwaitProof { peer, peer_nonce }, Frame::Proof { proof }) => {
                let transcript = Transcript::new(&peer, &peer_nonce, &self.local, &self.nonce);
                let expected = mac(&self.local.cookie, b"initiator", &transcript);
                if !bool::from(expected.ct_eq(&proof)) {
                    return refuse(RefuseReason::BadCookie);
                }
                self.state = State::Done;
                Step::Established {
                    send: vec![Frame::Established],
                    peer,
                }
            }
            (State::InitiatorAwaitEstablished { peer }, Frame::Established) => {
                self.state = State::Done;
                Step::Established { send: vec![], peer }
            }
            (_, other) => fail(vec![], HandshakeError::Unexpected(frame_kind(&other))),
        }
    }
}

impl Handshake {
    /// Checks the version and the name the peer announces.
    fn check_peer(
        &mut self,
        version: u16,
        name: String,
        creation: u32,
        flags: u32,
        listen: Option<String>,
    ) -> Result<PeerInfo, Step> {
        if version != PROTOCOL_VERSION {
            return Err(refuse(RefuseReason::VersionMismatch {
                ours: PROTOCOL_VERSION,
                theirs: version,
            }));
        }
        // Nothing the peer claims is kept before it passes the name rule
        // (no control characters, at most 255 bytes).
        if !crate::node::valid_node_name(&name) || name == self.local.name {
            return Err(refuse(RefuseReason::BadName));
        }
        let peer = peer_info(name, creation, flags, listen);
        self.claimed = Some(peer.name.clone());
        Ok(peer)
    }
}

fn fail(send: Vec<Frame>, error: HandshakeError) -> Step {
    Step::Failed { send, error }
}

fn refuse(reason: RefuseReason) -> Step {
    fail(
        vec![Frame::Refused {
            reason: reason.clone(),
        }],
        HandshakeError::Refused(reason),
    )
}

fn local_flags(local: &LocalInfo) -> u32 {
    if local.hidden { FLAG_HIDDEN } else { 0 }
}

fn peer_info(name: String, creation: u32, flags: u32, listen: Option<String>) -> PeerInfo {
    PeerInfo {
        name,
        creation,
        hidden: flags & FLAG_HIDDEN != 0,
        listen,
    }
}

pub(crate) fn frame_kind(frame: &Frame) -> &'static str {
    match frame {
        Frame::Hello { .. } => "Hello",
        Frame::Challenge { .. } => "Challenge",
        Frame::Proof { .. } => "Proof",
        Frame::Established => "Established",
        Frame::Refused { .. } => "Refused",
        Frame::Heartbeat { .. } => "Heartbeat",
        Frame::Peers { .. } => "Peers",
        Frame::Message { .. } => "Message",
        Frame::Reply { .. } => "Reply",
        Frame::Link { .. } => "Link",
        Frame::Unlink { .. } => "Unlink",
        Frame::Exit { .. } => "Exit",
        Frame::Monitor { .. } => "Monitor",
        Frame::Demonitor { .. } => "Demonitor",
        Frame::Down { .. } => "Down",
        Frame::GlobalLock { .. } => "GlobalLock",
        Frame::GlobalLockReply { .. } => "GlobalLockReply",
        Frame::GlobalUnlock { .. } => "GlobalUnlock",
        Frame::GlobalRegister { .. } => "GlobalRegister",
        Frame::GlobalUnregister { .. } => "GlobalUnregister",
        Frame::GlobalSync { .. } => "GlobalSync",
        Frame::GroupJoin { .. } => "GroupJoin",
        Frame::GroupLeave { .. } => "GroupLeave",
        Frame::GroupSync { .. } => "GroupSync",
        Frame::Spawn { .. } => "Spawn",
    }
}

/// What both proofs cover, in initiator-then-acceptor order.
struct Transcript<'a> {
    init_name: &'a str,
    init_creation: u32,
    init_nonce: &'a Bytes32,
    acc_name: &'a str,
    acc_creation: u32,
    acc_nonce: &'a Bytes32,
}

trait Named {
    fn name(&self) -> &str;
    fn creation(&self) -> u32;
}
impl Named for LocalInfo {
    fn name(&self) -> &str {
        &self.name
    }
    fn creation(&self) -> u32 {
        self.creation
    }
}
impl Named for PeerInfo {
    fn name(&self) -> &str {
        &self.name
    }
    fn creation(&self) -> u32 {
        self.creation
    }
}

impl<'a> Transcript<'a> {
    fn new(
        init: &'a dyn Named,
        init_nonce: &'a Bytes32,
        acc: &'a dyn Named,
        acc_nonce: &'a Bytes32,
    ) -> Self {
        Transcript {
            init_name: init.name(),
            init_creation: init.creation(),
            init_nonce,
            acc_name: acc.name(),
            acc_creation: acc.creation(),
            acc_nonce,
        }
    }
}

fn mac(cookie: &Cookie, label: &[u8], t: &Transcript<'_>) -> Bytes32 {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(cookie.as_bytes())
        .expect("HMAC takes keys of any length");
    m.update(b"clustertop-handshake-v1\0");
    m.update(label);
    for name in [t.init_name, t.acc_name] {
        m.update(&(name.len() as u32).to_be_bytes());
        m.update(name.as_bytes());
    }
    m.update(&t.init_creation.to_be_bytes());
    m.update(&t.acc_creation.to_be_bytes());
    m.update(t.init_nonce);
    m.update(t.acc_nonce);
    m.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests;
