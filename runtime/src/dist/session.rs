//! Driving one connection: the handshake over the socket, then a reader and
//! a batched writer until the connection ends.
//!
//! # Cost
//! The writer drains every frame queued for the peer into one buffer (up to
//! 256 KiB) before it writes, so a burst of small frames costs one
//! `write()` per batch rather than one per frame. Payloads of 64 KiB and
//! more (a large message, or a [`Payload`](crate::Payload) sent out of
//! band) are not copied into the batch: they are written from their own
//! buffers, with vectored writes. The reader decodes each frame from the
//! read buffer without copying it, and hands out-of-band payloads of
//! 64 KiB and more to the message as slices of the frame. The buffers of
//! frames handed out this way are kept (at most 4, 16 MiB in all, per
//! connection) and taken back once their payloads are dropped, so a
//! stream of large messages reuses memory that is already faulted in.
//!
//! # Disconnection
//! The reader decides when a connection ends (EOF, I/O error, malformed
//! frame, silence past the tick time, or cancellation); it cancels the
//! writer and reports the reason to the connection table.

use super::ConnectError;
use super::codec::{self, DecodeError};
use super::frame::{Frame, MsgKind, RefuseReason, Target};
use super::handshake::{Handshake, HandshakeError, PeerInfo, Step};
use super::mesh::Mesh;
use super::peer::{Peer, control_weight, frame_weight};
use super::remote;
use crate::node::Node;
use crate::transport::NodeDownReason;
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::codec::{FramedRead, LengthDelimitedCodec};

/// Frames read off a connection, length-delimited.
pub(crate) type Reader<R> = FramedRead<R, LengthDelimitedCodec>;

const BATCH_BYTES: usize = 256 * 1024;

/// Where an established connection's frames go: the layer's one routing
/// point. A session answers heartbeats and delivers messages itself (the
/// hot path, without a call through here); every other frame goes to
/// [`Router::route`], and the connection's end to [`Router::closed`].
pub(crate) trait Router: Send + Sync + 'static {
    /// The connection table the session reports to.
    fn mesh(&self) -> &Mesh;

    /// Hands one authenticated frame from `peer` to the subsystem that
    /// owns its kind. An error is a frame `peer` may not send: the
    /// connection closes as a protocol error.
    fn route(
        self: &Arc<Self>,
        node: &Node,
        peer: &Arc<Peer>,
        frame: Frame,
    ) -> Result<(), DecodeError>;

    /// `peer`'s connection has entered the table and its session runs:
    /// what a newly connected node must learn is sent now.
    fn established(&self, node: &Node, peer: &Arc<Peer>);

    /// `peer`'s connection has ended, its writer stopped, for `reason`.
    fn closed(&self, node: &Node, peer: &Arc<Peer>, reason: NodeDownReason);
}

/// The admission decision the acceptor consults on `Hello`.
pub(crate) type Admit<'a> = &'a (dyn Fn(&PeerInfo) -> Result<(), RefuseReason> + Sync);

/// How a handshake is paced and watched: each message must arrive within
/// `step` of the last, and `progressed` is told of each valid one.
pub(crate) struct Pace<'a> {
    pub(crate) step: std::time::Duration,
    pub(crate) progressed: &'a (dyn Fn() + Sync),
}

/// Runs `hs` to its end over the connection. An acceptor passes its
/// connection table as `settle`: an authenticated peer is settled against
/// a connection held with it ([`Mesh::settle`]) before `Established` is
/// sent, and refused with the reason if the held one stays.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn handshake<R, W>(
    hs: &mut Handshake,
    first: Option<Frame>,
    reader: &mut Reader<R>,
    writer: &mut W,
    max_frame: usize,
    admit: Admit<'_>,
    settle: Option<&Mesh>,
    pace: Pace<'_>,
) -> Result<PeerInfo, ConnectError>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    if let Some(frame) = first {
        write_frames(writer, &[frame], max_frame).await?;
    }
    loop {
        let next = tokio::time::timeout(pace.step, reader.next())
            .await
            .map_err(|_| ConnectError::Timeout)?;
        let body = match next {
            None => return Err(ConnectError::Closed),
            Some(Err(e)) if is_oversized(&e) => {
                return Err(ConnectError::Decode(DecodeError::Oversized));
            }
            Some(Err(e)) => return Err(ConnectError::Io(e)),
            Some(Ok(body)) => body,
        };
        let frame = codec::decode(&body)?;
        let step = hs.next(frame, admit);
        if !matches!(step, Step::Failed { .. }) {
            (pace.progressed)();
        }
        match step {
            Step::Continue(send) => write_frames(writer, &send, max_frame).await?,
            Step::Established { send, peer } => {
                if let Some(mesh) = settle
                    && let Err(reason) = mesh.settle(&peer).await
                {
                    let refused = Frame::Refused {
                        reason: reason.clone(),
                    };
                    let _ = write_frames(writer, &[refused], max_frame).await;
                    return Err(ConnectError::Handshake(HandshakeError::Refused(reason)));
                }
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
pub(crate) async fn run<D, R, W>(
    node: Node,
    dist: Arc<D>,
    peer: Arc<Peer>,
    mut reader: Reader<R>,
    writer: W,
    rx: mpsc::UnboundedReceiver<Frame>,
) where
    D: Router,
    R: AsyncRead + Unpin + Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let config = &dist.mesh().config;
    let writer_task = tokio::spawn(write_loop(
        Limits {
            max_frame: config.max_frame,
            tick: config.tick_time,
            busy_limit: config.busy_limit,
        },
        peer.clone(),
        writer,
        rx,
    ));
    let reason = read_loop(&node, &dist, &peer, &mut reader).await;
    peer.cancel.cancel();
    let _ = writer_task.await;
    dist.closed(&node, &peer, reason);
    peer.gone.cancel();
}

/// What the writer needs of the layer's configuration.
#[derive(Debug, Clone, Copy)]
struct Limits {
    max_frame: usize,
    tick: std::time::Duration,
    busy_limit: usize,
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

async fn read_loop<D: Router, R: AsyncRead + Unpin>(
    node: &Node,
    dist: &Arc<D>,
    peer: &Arc<Peer>,
    reader: &mut Reader<R>,
) -> NodeDownReason {
    let mesh = dist.mesh();
    let mut silence = Silence::new(mesh.config.tick_time);
    let mut buffers = ReadBuffers::default();
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
                return protocol_error(mesh, peer, &e);
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
                let codec::MessageRef {
                    to,
                    from,
                    kind,
                    tag,
                    trace,
                    payload,
                } = m;
                let inline = match inline_len(&kind, payload.len()) {
                    Ok(n) => n,
                    Err(e) => return protocol_error(mesh, peer, &e),
                };
                if inline == payload.len() {
                    let input = (payload, None);
                    deliver_message(node, mesh, peer, to, &kind, from, tag, trace, input);
                    continue;
                }
                // Out-of-band payloads: slices of the frame, when the frame
                // is mostly them and owns its buffer.
                let start = payload.as_ptr() as usize - body.as_ptr() as usize;
                let (len, body) = (payload.len(), body.freeze());
                let slice = len - inline >= body.len() / 2 && buffers.detach(reader, body.len());
                let rest = body.slice(start + inline..start + len);
                let input = (&body[start..start + inline], Some((rest, slice)));
                deliver_message(node, mesh, peer, to, &kind, from, tag, trace, input);
                continue;
            }
            Some(Err(e)) => {
                return protocol_error(mesh, peer, &e);
            }
            None => {}
        }
        let frame = match codec::decode(&body) {
            Ok(frame) => frame,
            Err(e) => {
                return protocol_error(mesh, peer, &e);
            }
        };
        match frame {
            Frame::Heartbeat { seq, reply: false } => {
                let _ = peer.send(Frame::Heartbeat { seq, reply: true });
            }
            Frame::Heartbeat { seq, reply: true } => peer.pong(seq),
            Frame::Message {
                to,
                from,
                kind,
                tag,
                trace,
                mut payload,
                out_of_band: _,
            } => {
                let inline = match inline_len(&kind, payload.len()) {
                    Ok(n) => n,
                    Err(e) => return protocol_error(mesh, peer, &e),
                };
                let rest = bytes::Bytes::from(payload.split_off(inline));
                let oob = (!rest.is_empty()).then_some((rest, false));
                let input = (payload.as_slice(), oob);
                deliver_message(node, mesh, peer, to, &kind, from, tag, trace, input);
            }
            frame => {
                if let Err(e) = dist.route(node, peer, frame) {
                    return protocol_error(mesh, peer, &e);
                }
            }
        }
    }
}

/// How many bytes of a received message's payload are inline; the rest
/// are its out-of-band payloads.
fn inline_len(kind: &MsgKind, payload_len: usize) -> Result<usize, DecodeError> {
    let out_of_band = kind.out_of_band();
    usize::try_from(out_of_band)
        .ok()
        .and_then(|n| payload_len.checked_sub(n))
        .ok_or_else(|| {
            DecodeError::Malformed(format!(
                "{out_of_band} out-of-band bytes in a payload of {payload_len}"
            ))
        })
}

/// Read buffers whose frames were handed out as payload slices, kept so
/// that each is taken back once every payload sliced from it is dropped.
/// A stream of large messages then cycles through a few allocations that
/// are already faulted in, instead of allocating, faulting in and freeing
/// one per frame.
///
/// # Bound
/// At most [`SPARES`] buffers, and at most [`SPARE_BYTES`] in all (a
/// buffer's size is taken as its frame's): what a connection holds once
/// the payloads it delivered are gone. Only an authenticated peer's frames
/// reach it.
#[derive(Default)]
struct ReadBuffers {
    /// Buffers (emptied) with the size each can be taken back at.
    spare: std::collections::VecDeque<(BytesMut, usize)>,
    bytes: usize,
    /// Buffers allocated because none could be taken back.
    allocated: u64,
}

/// Most read buffers a connection keeps for reuse.
const SPARES: usize = 4;
/// Most bytes of read buffers a connection keeps for reuse.
const SPARE_BYTES: usize = 16 << 20;
/// The read buffer's size between large frames: what a read fills.
const READ_AHEAD_MAX: usize = 64 * 1024;

impl ReadBuffers {
    /// Gives the read buffer another allocation (copying the few bytes read
    /// past the frame just split off), so that the frame is left alone in
    /// its buffer and a payload sliced from it pins nothing else. Returns
    /// whether the frame may be sliced: not when its buffer is much larger
    /// than it (what is left of that buffer past the frame, its remaining
    /// capacity, is over the frame's size), nor when more than a read's
    /// worth is buffered.
    ///
    /// The new allocation is a kept buffer whose payloads are all gone,
    /// else a new one sized for a frame like this one; the old buffer is
    /// kept when the frame is alone in it.
    fn detach<R>(&mut self, reader: &mut Reader<R>, frame_len: usize) -> bool {
        let buffered = reader.read_buffer_mut();
        if buffered.len() > READ_AHEAD_MAX {
            return false;
        }
        let size = frame_len.max(READ_AHEAD_MAX);
        let alone = buffered.capacity() <= size;
        let mut fresh = self.take_back().unwrap_or_else(|| {
            self.allocated += 1;
            // Room for the next frame if it is like this one, up to what
            // would be kept: a larger frame grows the buffer as it comes.
            BytesMut::with_capacity(size.min(SPARE_BYTES) + READ_AHEAD_MAX)
        });
        fresh.extend_from_slice(buffered);
        let mut old = std::mem::replace(buffered, fresh);
        if alone && size <= SPARE_BYTES {
            old.clear();
            self.keep(old, size);
        }
        alone
    }

    /// A kept buffer that no payload uses any more, at its whole size.
    fn take_back(&mut self) -> Option<BytesMut> {
        // Its remaining capacity is at most `size` (it was alone), so
        // asking for one byte more either takes the whole allocation back
        // (only when this is its last handle) or fails without allocating.
        let i = self
            .spare
            .iter_mut()
            .position(|(buf, size)| buf.try_reclaim(*size + 1))?;
        let (buf, size) = self.spare.remove(i)?;
        self.bytes -= size;
        Some(buf)
    }

    fn keep(&mut self, buf: BytesMut, size: usize) {
        while self.spare.len() >= SPARES || self.bytes + size > SPARE_BYTES {
            let Some((_, dropped)) = self.spare.pop_front() else {
                break;
            };
            self.bytes -= dropped;
        }
        self.bytes += size;
        self.spare.push_back((buf, size));
    }
}

/// A received message: its inline bytes, and its out-of-band bytes with
/// whether payloads may be slices of them.
type MessageInput<'a> = (&'a [u8], Option<(bytes::Bytes, bool)>);

#[allow(clippy::too_many_arguments)]
fn deliver_message(
    node: &Node,
    mesh: &Mesh,
    peer: &Peer,
    to: Target,
    kind: &MsgKind,
    from: Option<u64>,
    tag: u64,
    trace: Option<crate::trace::TraceContext>,
    (payload, out_of_band): MessageInput<'_>,
) {
    let target = match &to {
        Target::Pid { serial, creation } if *creation == node.creation() => {
            node.table().get(*serial)
        }
        Target::Pid { .. } => None,
        Target::Name(name) => node.registered_process(name),
    };
    if let (None, Some(id)) = (&target, kind.reply()) {
        // A call to a process this node does not have: the caller is told
        // at once (Erlang's `noproc`), not left to its timeout.
        let _ = peer.send(Frame::Reply {
            id,
            result: Err(crate::error::ReplyFailure::Exited(
                crate::ExitReason::NoProc,
            )),
        });
    }
    let from = match from {
        Some(serial) => mesh.peer_pid(peer, serial),
        None => crate::ProcessId::NONE,
    };
    let input = crate::transport::Incoming { tag, payload };
    let _out_of_band = out_of_band.map(|(rest, slice)| remote::OutOfBandGuard::new(rest, slice));
    remote::deliver(node, target, input, from, trace, &|| match &to {
        Target::Pid { serial, creation } => format!("<0.{serial}.{creation}>"),
        Target::Name(name) => format!("{name:?}"),
    });
}

/// Counts and logs a frame that breaks the protocol; the reason to close.
fn protocol_error(mesh: &Mesh, peer: &Peer, e: &dyn std::fmt::Display) -> NodeDownReason {
    let e = e.to_string();
    mesh.count_decode_error(&peer.info.name, peer.addr, &e);
    NodeDownReason::ProtocolError(e)
}

async fn write_loop<W: AsyncWrite + Unpin>(
    limits: Limits,
    peer: Arc<Peer>,
    mut writer: W,
    mut rx: mpsc::UnboundedReceiver<Frame>,
) {
    let max_frame = limits.max_frame;
    let period = limits.tick / 4;
    let mut ticks = tokio::time::interval_at(Instant::now() + period, period);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut seq = 0u64;
    let mut frames = 0u64;
    // What goes before `buf`: earlier parts of the batch and large payloads
    // written from their own buffers, in order.
    let mut chunks: Vec<Bytes> = Vec::new();
    // What the frames taken off the queue weighed (see `Peer::send`), and
    // the control frames among them.
    let mut weight = 0usize;
    let mut control = 0usize;
    // A peer that reads nothing for a whole tick is not reading.
    let stall = limits.tick;
    let low_water = limits.busy_limit / 2;
    loop {
        tokio::select! {
            biased;
            _ = peer.cancel.cancelled() => break,
            frame = rx.recv() => {
                let Some(frame) = frame else { break };
                weight += frame_weight(&frame);
                control += control_weight(&frame);
                frames += encode_one(frame, &mut buf, &mut chunks, max_frame, &peer);
                while buf.len() < BATCH_BYTES && chunks.is_empty() {
                    match rx.try_recv() {
                        Ok(frame) => {
                            weight += frame_weight(&frame);
                            control += control_weight(&frame);
                            frames += encode_one(frame, &mut buf, &mut chunks, max_frame, &peer);
                        }
                        Err(_) => break,
                    }
                }
            }
            _ = ticks.tick() => {
                seq += 1;
                peer.ping(seq);
                let hb = Frame::Heartbeat { seq, reply: false };
                frames += encode_one(hb, &mut buf, &mut chunks, max_frame, &peer);
            }
        }
        if peer.is_cut() {
            buf.clear();
            chunks.clear();
            frames = 0;
            peer.written(
                std::mem::take(&mut weight),
                std::mem::take(&mut control),
                low_water,
            );
            continue;
        }
        if buf.is_empty() && chunks.is_empty() {
            continue;
        }
        let bytes = buf.len() + chunks.iter().map(Bytes::len).sum::<usize>();
        let write = tokio::time::timeout(stall, async {
            if chunks.is_empty() {
                writer.write_all(&buf).await
            } else {
                if !buf.is_empty() {
                    chunks.push(buf.split().freeze());
                }
                write_chunks(&mut writer, &mut chunks).await
            }
        });
        // A write blocked on a peer that does not read ends with the
        // connection, not a tick later.
        let written = tokio::select! {
            written = write => written,
            () = peer.cancel.cancelled() => break,
        };
        match written {
            Ok(Ok(())) => {}
            Ok(Err(_)) => break,
            Err(_) => {
                tracing::warn!(peer = %peer.info.name, addr = %peer.addr, "closing connection: the peer has read nothing for a tick");
                peer.close(NodeDownReason::NotReading);
                break;
            }
        }
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

/// Message payloads (inline, or out of band) at least this large are
/// written from their own buffers, not copied into the batch.
const LARGE_PAYLOAD: usize = 64 * 1024;

fn encode_one(
    frame: Frame,
    buf: &mut BytesMut,
    chunks: &mut Vec<Bytes>,
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
            out_of_band,
        } if payload.len() >= LARGE_PAYLOAD
            || out_of_band.iter().any(|b| b.len() >= LARGE_PAYLOAD) =>
        {
            let header = (to, from, kind, tag, trace);
            let len = payload.len() + out_of_band.iter().map(Bytes::len).sum::<usize>();
            let r = codec::encode_message_header(&header, len, buf, max_frame);
            if r.is_ok() {
                for piece in std::iter::once(Bytes::from(payload)).chain(out_of_band) {
                    if piece.len() >= LARGE_PAYLOAD {
                        // Written from its own buffer, after what precedes it.
                        if !buf.is_empty() {
                            chunks.push(buf.split().freeze());
                        }
                        chunks.push(piece);
                    } else {
                        buf.extend_from_slice(&piece);
                    }
                }
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

/// Writes `chunks` in order, as few writes as the writer takes (vectored),
/// and empties the list.
async fn write_chunks<W: AsyncWrite + Unpin>(
    writer: &mut W,
    chunks: &mut Vec<Bytes>,
) -> std::io::Result<()> {
    use bytes::Buf;
    // At most this many buffers per write (well under IOV_MAX).
    const SLICES: usize = 64;
    let mut first = 0;
    while first < chunks.len() {
        let slices: Vec<std::io::IoSlice<'_>> = chunks[first..]
            .iter()
            .take(SLICES)
            .map(|c| std::io::IoSlice::new(c))
            .collect();
        let mut n = writer.write_vectored(&slices).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::WriteZero.into());
        }
        while n > 0 {
            let chunk = &mut chunks[first];
            if n >= chunk.len() {
                n -= chunk.len();
                first += 1;
            } else {
                chunk.advance(n);
                n = 0;
            }
        }
    }
    chunks.clear();
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// Frames of `len` bytes each, length-prefixed, as the peer writes them.
    fn frames(count: usize, len: usize) -> Vec<u8> {
        let mut out = Vec::new();
        for i in 0..count {
            out.extend_from_slice(&(len as u32).to_be_bytes());
            out.extend(std::iter::repeat_n(i as u8, len));
        }
        out
    }

    /// Reads `count` frames of `len`, detaching each as the reader does for
    /// a payload it slices; `hold` says how many payloads stay alive at
    /// once. Returns the buffers allocated, and the distinct allocations
    /// the payloads lived in.
    async fn read_stream(count: usize, len: usize, hold: usize) -> (u64, usize) {
        let (mut w, r) = tokio::io::duplex(256 * 1024);
        let writer = tokio::spawn(async move { w.write_all(&frames(count, len)).await });
        let mut reader = FramedRead::new(r, codec::length_codec(4 << 20));
        let mut buffers = ReadBuffers::default();
        let mut held = std::collections::VecDeque::new();
        let mut seen = std::collections::HashSet::new();
        for i in 0..count {
            let body = reader.next().await.unwrap().unwrap();
            assert_eq!(body.len(), len);
            let body = body.freeze();
            assert!(buffers.detach(&mut reader, len), "frame {i} alone");
            assert!(body.iter().all(|&b| b == i as u8), "frame {i} intact");
            seen.insert(body.as_ptr() as usize);
            held.push_back(body);
            if held.len() > hold {
                held.pop_front();
            }
        }
        writer.await.unwrap().unwrap();
        assert!(buffers.spare.len() <= SPARES && buffers.bytes <= SPARE_BYTES);
        (buffers.allocated, seen.len())
    }

    #[tokio::test]
    async fn large_frames_reuse_the_buffers_their_dropped_payloads_lived_in() {
        // One payload alive at a time: while frame k is read, payload k-1
        // lives and k-2's buffer is free, so three buffers serve the whole
        // stream (the reader's first buffer is too small to be taken back).
        let (allocated, distinct) = read_stream(64, 1 << 20, 1).await;
        assert_eq!(allocated, 3, "buffers allocated");
        assert!(distinct <= 4, "payloads in {distinct} allocations");
    }

    #[tokio::test]
    async fn a_buffer_is_not_reused_while_a_payload_still_lives_in_it() {
        // Every payload held to the end: each needs its own allocation,
        // and each still reads as it was sent (checked in read_stream).
        let (allocated, distinct) = read_stream(12, 256 * 1024, usize::MAX).await;
        assert_eq!((allocated, distinct), (12, 12));
    }
}
