//! Driving one connection: the handshake over the socket, then a reader and
//! a batched writer until the connection ends.
//!
//! # Cost
//! The writer drains every frame queued for the peer into one buffer (up to
//! 256 KiB) before it writes, so a burst of small frames costs one
//! `write()` per batch rather than one per frame. The reader decodes each
//! frame from the read buffer without copying it.
//!
//! # Disconnection
//! The reader decides when a connection ends (EOF, I/O error, malformed
//! frame, silence past the tick time, or cancellation); it cancels the
//! writer and reports the reason to the connection table.

use super::ConnectError;
use super::codec::{self, DecodeError};
use super::handshake::{Handshake, HandshakeError, PeerInfo, Step};
use super::peers::{Dist, Peer, control_weight, frame_weight};
use super::proto::{Frame, MsgKind, RefuseReason, Target};
use super::remote;
use crate::node::Node;
use crate::transport::NodeDownReason;
use bytes::BytesMut;
use futures_util::StreamExt;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

/// Frames read off a connection, length-delimited.
pub(crate) type Reader<R> = FramedRead<R, LengthDelimitedCodec>;

const BATCH_BYTES: usize = 256 * 1024;

/// The admission decision the acceptor consults on `Hello`.
pub(crate) type Admit<'a> = &'a (dyn Fn(&PeerInfo) -> Result<(), RefuseReason> + Sync);

/// Runs `hs` to its end over the connection.
pub(crate) async fn handshake<R, W>(
    hs: &mut Handshake,
    first: Option<Frame>,
    reader: &mut Reader<R>,
    writer: &mut W,
    max_frame: usize,
    admit: Admit<'_>,
) -> Result<PeerInfo, ConnectError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if let Some(frame) = first {
        write_frames(writer, &[frame], max_frame).await?;
    }
    loop {
        let body = match reader.next().await {
            None => return Err(ConnectError::Closed),
            Some(Err(e)) if is_oversized(&e) => {
                return Err(ConnectError::Decode(DecodeError::Oversized));
            }
            Some(Err(e)) => return Err(ConnectError::Io(e)),
            Some(Ok(body)) => body,
        };
        let frame = codec::decode(&body)?;
        match hs.next(frame, admit) {
            Step::Continue(send) => write_frames(writer, &send, max_frame).await?,
            Step::Established { send, peer } => {
                write_frames(writer, &send, max_frame).await?;
                return Ok(peer);
            }
            Step::Failed { send, error } => {
                // Best effort: the peer may already be gone.
                let _ = write_frames(writer, &send, max_frame).await;
                return Err(ConnectError::Handshake(error));
            }
        }
    }
}

/// Whether a read error is the length codec refusing an oversized frame
/// (rather than, say, a TLS alert, which is also `InvalidData`).
fn is_oversized(e: &std::io::Error) -> bool {
    e.get_ref()
        .is_some_and(|inner| inner.is::<tokio_util::codec::LengthDelimitedCodecError>())
}

async fn write_frames<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frames: &[Frame],
    max_frame: usize,
) -> std::io::Result<()> {
    let mut buf = BytesMut::new();
    for f in frames {
        codec::encode(f, &mut buf, max_frame)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    }
    writer.write_all(&buf).await?;
    writer.flush().await
}

/// Runs an established connection until it ends, then reports why.
pub(crate) async fn run<R, W>(
    node: Node,
    dist: Arc<Dist>,
    peer: Arc<Peer>,
    mut reader: Reader<R>,
    writer: W,
    rx: mpsc::UnboundedReceiver<Frame>,
) where
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let writer_task = tokio::spawn(write_loop(dist.clone(), peer.clone(), writer, rx));
    let reason = read_loop(&node, &dist, &peer, &mut reader).await;
    peer.cancel.cancel();
    let _ = writer_task.await;
    dist.connection_closed(&node, &peer, reason);
}

/// Silence checks per tick.
const CHECKS: u32 = 8;

/// Whether a peer has been silent for a whole tick, checked every eighth
/// of one: a peer is declared silent after 8 checks in a row without a
/// frame, between 1 and 1.125 ticks after its last frame (heartbeats come
/// every quarter). A frame costs a flag, not a clock read or a timer: a
/// timer armed per read would be registered and cancelled around almost
/// every message, and each registration with none pending wakes the
/// thread parked on tokio's time driver. The two ends of a link each
/// decide on their own, up to an eighth of a tick apart.
struct Silence {
    check: std::pin::Pin<Box<tokio::time::Sleep>>,
    every: std::time::Duration,
    heard: bool,
    silent: u32,
}

impl Silence {
    fn new(tick: std::time::Duration) -> Self {
        let every = tick / CHECKS;
        Silence {
            check: Box::pin(tokio::time::sleep(every)),
            every,
            heard: false,
            silent: 0,
        }
    }

    fn heard(&mut self) {
        self.heard = true;
    }

    /// Resolves once the peer has been silent for a tick of checks in a row.
    /// Cancel-safe: a check is counted and the next armed in one poll.
    async fn timed_out(&mut self) {
        loop {
            self.check.as_mut().await;
            if std::mem::take(&mut self.heard) {
                self.silent = 0;
            } else {
                self.silent += 1;
            }
            if self.silent >= CHECKS {
                return;
            }
            let next = Instant::now() + self.every;
            self.check.as_mut().reset(next);
        }
    }
}

async fn read_loop<R: AsyncRead + Unpin>(
    node: &Node,
    dist: &Arc<Dist>,
    peer: &Arc<Peer>,
    reader: &mut Reader<R>,
) -> NodeDownReason {
    let mut silence = Silence::new(dist.config.tick_time);
    loop {
        let next = tokio::select! {
            biased;
            _ = peer.cancel.cancelled() => return peer.close_reason(),
            next = reader.next() => Ok(next),
            () = silence.timed_out() => Err(()),
        };
        if peer.cancel.is_cancelled() {
            // Closed from this side: that, not what the socket saw, is why.
            return peer.close_reason();
        }
        if peer.is_cut() && !matches!(next, Ok(Some(Ok(_)))) {
            // Fault injection: a partitioned link sees no close either, only
            // silence until the tick runs out.
            tokio::select! {
                _ = peer.cancel.cancelled() => return peer.close_reason(),
                () = silence.timed_out() => return NodeDownReason::HeartbeatTimeout,
            }
        }
        let body = match next {
            Err(()) => return NodeDownReason::HeartbeatTimeout,
            Ok(None) => return NodeDownReason::ConnectionClosed,
            Ok(Some(Err(e))) if is_oversized(&e) => {
                // The length prefix exceeds the frame limit.
                return protocol_error(dist, peer, &e);
            }
            Ok(Some(Err(e))) => return NodeDownReason::Io(e.to_string()),
            Ok(Some(Ok(body))) => body,
        };
        if peer.is_cut() {
            // Fault injection: as if the frame never arrived.
            continue;
        }
        silence.heard();
        peer.count_in(body.len() + 4);
        // The hot frame: decoded in place, its payload never copied.
        match codec::decode_message(&body) {
            Some(Ok(m)) => {
                deliver_message(
                    node, dist, peer, m.to, m.from, m.kind, m.tag, m.trace, m.payload,
                );
                continue;
            }
            Some(Err(e)) => {
                return protocol_error(dist, peer, &e);
            }
            None => {}
        }
        let frame = match codec::decode(&body) {
            Ok(frame) => frame,
            Err(e) => {
                return protocol_error(dist, peer, &e);
            }
        };
        if peer.info.hidden && shapes_the_cluster(&frame) {
            // A hidden node (a client) is promised to be read-only: it may
            // not steer the mesh or the cluster-wide registries.
            let e = DecodeError::Malformed(format!(
                "{} frame from a hidden node",
                super::handshake::frame_kind(&frame)
            ));
            return protocol_error(dist, peer, &e);
        }
        match frame {
            Frame::Heartbeat { seq, reply: false } => {
                let _ = peer.send(Frame::Heartbeat { seq, reply: true });
            }
            Frame::Heartbeat { seq, reply: true } => peer.pong(seq),
            Frame::Peers { peers } => dist.learn_peers(node, peers),
            Frame::Message {
                to,
                from,
                kind,
                tag,
                trace,
                payload,
            } => deliver_message(node, dist, peer, to, from, kind, tag, trace, &payload),
            frame @ (Frame::Link { .. }
            | Frame::Unlink { .. }
            | Frame::Exit { .. }
            | Frame::Monitor { .. }
            | Frame::Demonitor { .. }
            | Frame::Down { .. }) => dist.on_relation_frame(node, peer, frame),
            frame @ (Frame::GlobalLock { .. }
            | Frame::GlobalLockReply { .. }
            | Frame::GlobalUnlock { .. }
            | Frame::GlobalRegister { .. }
            | Frame::GlobalUnregister { .. }
            | Frame::GlobalSync { .. }) => dist.on_global_frame(node, peer, frame),
            frame @ (Frame::GroupJoin { .. }
            | Frame::GroupLeave { .. }
            | Frame::GroupSync { .. }) => dist.on_group_frame(frame),
            Frame::Spawn {
                name,
                what,
                args,
                reply,
                trace,
            } => dist.on_spawn(node, &peer.info.name, name, what, (args, trace), reply),
            Frame::Reply { id, result } => {
                let _guard = remote::DecodingGuard::new(node, None);
                dist.replies().complete(
                    id,
                    result.as_ref().map(|b| b.as_slice()).map_err(Clone::clone),
                );
            }
            other => {
                let e = DecodeError::Malformed(format!(
                    "{} frame after the handshake",
                    super::handshake::frame_kind(&other)
                ));
                return protocol_error(dist, peer, &e);
            }
        }
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

#[allow(clippy::too_many_arguments)]
fn deliver_message(
    node: &Node,
    dist: &Dist,
    peer: &Peer,
    to: Target,
    from: Option<u64>,
    kind: MsgKind,
    tag: u64,
    trace: Option<crate::trace::TraceContext>,
    payload: &[u8],
) {
    let target = match &to {
        Target::Pid { serial, creation } if *creation == node.creation() => {
            node.table().get(*serial)
        }
        Target::Pid { .. } => None,
        Target::Name(name) => node.registered_process(name),
    };
    let from = match from {
        Some(serial) => crate::ProcessId {
            node: dist
                .node_table()
                .intern(&peer.info.name, peer.info.creation),
            serial,
            creation: peer.info.creation,
        },
        None => crate::ProcessId::NONE,
    };
    // Plain sends are the only kind of message so far.
    let MsgKind::Send = kind;
    let input = crate::transport::Incoming { tag, payload };
    remote::deliver(node, target, input, from, trace, &|| match &to {
        Target::Pid { serial, creation } => format!("<0.{serial}.{creation}>"),
        Target::Name(name) => format!("{name:?}"),
    });
}

/// Counts and logs a frame that breaks the protocol; the reason to close.
fn protocol_error(dist: &Dist, peer: &Peer, e: &dyn std::fmt::Display) -> NodeDownReason {
    let e = e.to_string();
    dist.count_decode_error(&peer.info.name, peer.addr, &e);
    NodeDownReason::ProtocolError(e)
}

async fn write_loop<W: AsyncWrite + Unpin>(
    dist: Arc<Dist>,
    peer: Arc<Peer>,
    mut writer: W,
    mut rx: mpsc::UnboundedReceiver<Frame>,
) {
    let max_frame = dist.config.max_frame;
    let period = dist.config.tick_time / 4;
    let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut seq = 0u64;
    let mut frames = 0u64;
    // The payload of a large message, written after `buf` without copying.
    let mut tail: Option<Vec<u8>> = None;
    // What the frames taken off the queue weighed (see `Peer::send`), and
    // the control frames among them.
    let mut weight = 0usize;
    let mut control = 0usize;
    // A peer that reads nothing for a whole tick is not reading.
    let stall = dist.config.tick_time;
    let low_water = dist.config.busy_limit / 2;
    loop {
        tokio::select! {
            biased;
            _ = peer.cancel.cancelled() => break,
            frame = rx.recv() => {
                let Some(frame) = frame else { break };
                weight += frame_weight(&frame);
                control += control_weight(&frame);
                frames += encode_one(frame, &mut buf, &mut tail, max_frame, &peer);
                while buf.len() < BATCH_BYTES && tail.is_none() {
                    match rx.try_recv() {
                        Ok(frame) => {
                            weight += frame_weight(&frame);
                            control += control_weight(&frame);
                            frames += encode_one(frame, &mut buf, &mut tail, max_frame, &peer);
                        }
                        Err(_) => break,
                    }
                }
            }
            _ = ticks.tick() => {
                seq += 1;
                peer.ping(seq);
                let hb = Frame::Heartbeat { seq, reply: false };
                frames += encode_one(hb, &mut buf, &mut tail, max_frame, &peer);
            }
        }
        if peer.is_cut() {
            buf.clear();
            tail = None;
            frames = 0;
            peer.written(
                std::mem::take(&mut weight),
                std::mem::take(&mut control),
                low_water,
            );
            continue;
        }
        if buf.is_empty() {
            continue;
        }
        let mut bytes = buf.len();
        let payload = tail.take();
        let written = tokio::time::timeout(stall, async {
            writer.write_all(&buf).await?;
            if let Some(payload) = &payload {
                writer.write_all(payload).await?;
            }
            std::io::Result::Ok(())
        })
        .await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
            Err(_) => {
                tracing::warn!(peer = %peer.info.name, addr = %peer.addr, "closing connection: the peer has read nothing for a tick");
                peer.close(NodeDownReason::NotReading);
                break;
            }
        }
        bytes += payload.map_or(0, |p| p.len());
        peer.count_out(frames, bytes);
        peer.written(
            std::mem::take(&mut weight),
            std::mem::take(&mut control),
            low_water,
        );
        frames = 0;
        buf.clear();
        if buf.capacity() > 4 * BATCH_BYTES {
            buf = BytesMut::with_capacity(16 * 1024);
        }
    }
    let _ = writer.shutdown().await;
}

/// Message payloads at least this large are written from their own buffer
/// after the frame header, not copied into the batch.
const LARGE_PAYLOAD: usize = 64 * 1024;

fn encode_one(
    frame: Frame,
    buf: &mut BytesMut,
    tail: &mut Option<Vec<u8>>,
    max_frame: usize,
    peer: &Peer,
) -> u64 {
    let result = match frame {
        Frame::Message {
            to,
            from,
            kind,
            tag,
            trace,
            payload,
        } if payload.len() >= LARGE_PAYLOAD => {
            let header = (to, from, kind, tag, trace);
            let r = codec::encode_message_header(&header, payload.len(), buf, max_frame);
            if r.is_ok() {
                *tail = Some(payload);
            }
            r
        }
        frame => codec::encode(&frame, buf, max_frame),
    };
    match result {
        Ok(()) => 1,
        Err(e) => {
            tracing::warn!(peer = %peer.info.name, error = %e, "dropping a frame that cannot be sent");
            0
        }
    }
}

/// Reports a failed handshake: the error as the connect result, and a log
/// line and counter on this node.
pub(crate) fn handshake_error_kind(e: &ConnectError) -> &'static str {
    match e {
        ConnectError::Handshake(HandshakeError::Refused(RefuseReason::BadCookie))
        | ConnectError::Handshake(HandshakeError::PeerRefused(RefuseReason::BadCookie)) => {
            "bad_cookie"
        }
        ConnectError::Handshake(HandshakeError::Refused(RefuseReason::VersionMismatch {
            ..
        }))
        | ConnectError::Handshake(HandshakeError::PeerRefused(RefuseReason::VersionMismatch {
            ..
        })) => "version",
        ConnectError::Handshake(HandshakeError::Refused(_))
        | ConnectError::Handshake(HandshakeError::PeerRefused(_)) => "refused",
        ConnectError::Timeout => "timeout",
        ConnectError::Tls(_) => "tls",
        ConnectError::Decode(_) | ConnectError::Handshake(HandshakeError::Unexpected(_)) => {
            "protocol"
        }
        _ => "io",
    }
}
