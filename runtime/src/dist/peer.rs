//! One established connection: its writer's queue and the bounds on it,
//! processes waiting for it to drain, its counters, heartbeat round trip,
//! liveness probe and close.
//!
//! Costs: a send is one relaxed atomic add (two for a control frame) and
//! a channel push; the reader pays two relaxed adds and one load per
//! frame. Nothing here locks on the message path; a sender parked on a
//! full queue registers its waker under a lock.

use super::faults::Cut;
use super::frame::Frame;
use super::handshake::PeerInfo;
use crate::transport::NodeDownReason;
use parking_lot::Mutex;
use std::net::SocketAddr;
use std::sync::atomic::{
    AtomicU64, AtomicUsize,
    Ordering::{AcqRel, Acquire, Relaxed},
};
use std::task::Poll;
use std::time::{Duration, Instant};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Counters of one connection (monotonic).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerStats {
    /// The peer's name.
    pub node: String,
    /// The peer's creation: which incarnation of the node is connected.
    pub creation: u32,
    /// The peer's socket address.
    pub addr: SocketAddr,
    /// Whether the peer is hidden.
    pub hidden: bool,
    /// Frames received.
    pub frames_in: u64,
    /// Frames sent.
    pub frames_out: u64,
    /// Bytes received, with length prefixes.
    pub bytes_in: u64,
    /// Bytes sent, with length prefixes.
    pub bytes_out: u64,
    /// Bytes waiting to be written now (a gauge).
    pub queued_bytes: u64,
    /// Round trip of the last answered heartbeat.
    pub heartbeat_rtt: Option<Duration>,
    /// How long the connection has been up.
    pub up_for: Duration,
}

/// One established connection.
pub(crate) struct Peer {
    pub(crate) info: PeerInfo,
    pub(crate) addr: SocketAddr,
    pub(crate) initiated_here: bool,
    tx: mpsc::UnboundedSender<Frame>,
    /// Bytes queued for the writer (an estimate per frame).
    queued: AtomicUsize,
    /// The part of `queued` that is control frames.
    control: AtomicUsize,
    /// Processes suspended until `queued` falls below the low-water mark
    /// (or the connection closes).
    waiters: Mutex<Vec<std::task::Waker>>,
    pub(crate) cancel: CancellationToken,
    close_reason: Mutex<Option<NodeDownReason>>,
    cut: Cut,
    frames_in: AtomicU64,
    frames_out: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    rtt_ns: AtomicU64,
    ping: Mutex<(u64, Option<Instant>)>,
    up_at: Instant,
    /// Liveness probes waiting for a frame (see [`Peer::answers`]); the
    /// reader checks it once per frame, one load.
    probing: AtomicUsize,
    heard: tokio::sync::Notify,
    /// Cancelled once the connection's down processing has run.
    pub(crate) gone: CancellationToken,
}

/// The sequence number of a liveness probe's heartbeat: apart from the
/// writer's own, which count up from 1.
const PROBE_SEQ: u64 = u64::MAX;

/// What a frame is taken to weigh in the link's queue.
pub(crate) fn frame_weight(frame: &Frame) -> usize {
    match frame {
        Frame::Message {
            payload,
            out_of_band,
            ..
        } => payload.len() + out_of_band.iter().map(bytes::Bytes::len).sum::<usize>() + 48,
        _ => 64,
    }
}

/// The weight of `frame` if it is a control frame (anything but a process
/// message: heartbeats, replies, registry and link traffic).
pub(crate) fn control_weight(frame: &Frame) -> usize {
    match frame {
        Frame::Message { .. } => 0,
        _ => frame_weight(frame),
    }
}

/// Control frames queued for one connection at most, by weight (16,384
/// frames). Processes' messages are bounded by the busy limit instead.
pub(crate) const MAX_CONTROL_QUEUE: usize = 1 << 20;

impl Peer {
    /// A connection just established with `info` at `addr`, its writer fed
    /// through `tx`.
    pub(super) fn new(
        info: PeerInfo,
        addr: SocketAddr,
        initiated_here: bool,
        tx: mpsc::UnboundedSender<Frame>,
    ) -> Peer {
        Peer {
            info,
            addr,
            initiated_here,
            tx,
            queued: AtomicUsize::new(0),
            control: AtomicUsize::new(0),
            waiters: Mutex::new(Vec::new()),
            cancel: CancellationToken::new(),
            close_reason: Mutex::new(None),
            cut: Cut::default(),
            frames_in: AtomicU64::new(0),
            frames_out: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            bytes_out: AtomicU64::new(0),
            rtt_ns: AtomicU64::new(0),
            ping: Mutex::new((0, None)),
            up_at: Instant::now(),
            probing: AtomicUsize::new(0),
            heard: tokio::sync::Notify::new(),
            gone: CancellationToken::new(),
        }
    }

    /// Queues `frame` for the writer. `false` if the connection is gone,
    /// or is closed now because its peer does not read: past
    /// [`MAX_CONTROL_QUEUE`] of control frames waiting.
    pub(crate) fn send(&self, frame: Frame) -> bool {
        let control = control_weight(&frame);
        if control > 0 && self.control.fetch_add(control, Relaxed) + control > MAX_CONTROL_QUEUE {
            self.close(NodeDownReason::NotReading);
            return false;
        }
        if self.queued.fetch_add(frame_weight(&frame), Relaxed) == 0 {
            // The writer has written all it had: this send wakes it, and a
            // driver's turn is not what it should wait for.
            crate::sched::end_turn_soon();
        }
        self.tx.send(frame).is_ok()
    }

    /// Bytes queued for the writer now.
    pub(crate) fn queued(&self) -> usize {
        self.queued.load(Relaxed)
    }

    /// The writer has written frames weighing `weight`, `control` of it
    /// control frames.
    pub(crate) fn written(&self, weight: usize, control: usize, low_water: usize) {
        self.control.fetch_sub(control, Relaxed);
        let before = self.queued.fetch_sub(weight, Relaxed);
        if before >= low_water && before - weight < low_water {
            self.wake_waiters();
        }
    }

    fn wake_waiters(&self) {
        let waiters = std::mem::take(&mut *self.waiters.lock());
        for w in waiters {
            w.wake();
        }
    }

    /// Ready once the queue is under `low_water` or the connection is gone.
    pub(crate) fn poll_drained(
        &self,
        low_water: usize,
        cx: &mut std::task::Context<'_>,
    ) -> Poll<()> {
        let drained = || self.queued() < low_water || self.cancel.is_cancelled();
        if drained() {
            return Poll::Ready(());
        }
        self.waiters.lock().push(cx.waker().clone());
        if drained() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }

    #[inline(always)]
    pub(crate) fn is_cut(&self) -> bool {
        self.cut.is_set()
    }

    /// Cuts or restores this connection (fault injection); `true`.
    #[cfg(feature = "testing")]
    pub(crate) fn cut(&self, on: bool) -> bool {
        self.cut.set(on);
        true
    }

    pub(crate) fn close_reason(&self) -> NodeDownReason {
        self.close_reason
            .lock()
            .clone()
            .unwrap_or(NodeDownReason::Disconnected)
    }

    pub(crate) fn close(&self, reason: NodeDownReason) {
        self.close_reason.lock().get_or_insert(reason);
        self.cancel.cancel();
        self.wake_waiters();
    }

    pub(crate) fn count_in(&self, bytes: usize) {
        self.frames_in.fetch_add(1, Relaxed);
        self.bytes_in.fetch_add(bytes as u64, Relaxed);
        if self.probing.load(Acquire) != 0 {
            self.heard.notify_waiters();
        }
    }

    /// Whether the peer answers on this connection within `timeout`: a
    /// heartbeat is sent, and any frame that arrives after it counts.
    /// `false` at once if the connection closes meanwhile.
    pub(crate) async fn answers(&self, timeout: Duration) -> bool {
        let heard = self.heard.notified();
        tokio::pin!(heard);
        heard.as_mut().enable();
        self.probing.fetch_add(1, AcqRel);
        let sent = self.send(Frame::Heartbeat {
            seq: PROBE_SEQ,
            reply: false,
        });
        let answered = sent
            && tokio::select! {
                () = heard => true,
                () = self.cancel.cancelled() => false,
                () = tokio::time::sleep(timeout) => false,
            };
        self.probing.fetch_sub(1, AcqRel);
        answered
    }

    pub(crate) fn count_out(&self, frames: u64, bytes: usize) {
        self.frames_out.fetch_add(frames, Relaxed);
        self.bytes_out.fetch_add(bytes as u64, Relaxed);
    }

    pub(crate) fn ping(&self, seq: u64) {
        *self.ping.lock() = (seq, Some(Instant::now()));
    }

    pub(crate) fn pong(&self, seq: u64) {
        let (sent_seq, at) = *self.ping.lock();
        if let (true, Some(at)) = (sent_seq == seq, at) {
            self.rtt_ns.store(at.elapsed().as_nanos() as u64, Relaxed);
        }
    }

    pub(super) fn stats(&self) -> PeerStats {
        let rtt = self.rtt_ns.load(Relaxed);
        PeerStats {
            node: self.info.name.clone(),
            creation: self.info.creation,
            addr: self.addr,
            hidden: self.info.hidden,
            frames_in: self.frames_in.load(Relaxed),
            frames_out: self.frames_out.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            queued_bytes: self.queued() as u64,
            heartbeat_rtt: (rtt > 0).then(|| Duration::from_nanos(rtt)),
            up_for: self.up_at.elapsed(),
        }
    }
}
