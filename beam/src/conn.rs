//! One connection to one BEAM node, as a hidden node: the node's port from
//! EPMD, the distribution handshake (`erl_dist`), then frames read and
//! written here on tokio, and calls through the node's `rex` server.
//!
//! A call is `rpc:call/4` as an old node makes it: a `gen_server` call to
//! the registered process `rex` with `{call, M, F, Args, user}`. `rex`
//! runs it in a fresh process that replies and exits, so nothing outlives
//! the request. No module is loaded: a module other than `erlang` is
//! called only after the node answered `erlang:module_loaded/1` with
//! `true` for it.
//!
//! # Bounds (what a peer can make this side hold)
//! - Before the peer has proved the cookie: EPMD's answer (a name and an
//!   extra field of at most 64 KiB each) and the handshake messages, each
//!   at most 64 KiB (their lengths are 16 bits), all within the connect
//!   timeout. Nothing a peer sends then is logged or printed beyond the
//!   one-line error (wrong cookie, no such node, timed out).
//! - After: one frame at a time, of at most [`MAX_FRAME`] bytes; a longer
//!   one closes the connection (logged, counted in
//!   [`ConnStats::bad_frames`]). Before it is decoded, every length and
//!   count its terms claim is checked against its bytes and its nesting
//!   against [`crate::frame::MAX_DEPTH`] ([`crate::frame`]): a frame that
//!   fails, or does not decode, closes the connection too. Messages that answer no open call are counted and dropped.
//! - Open calls: those the caller waits on; each is timed out and
//!   forgotten.
//! - A peer silent for [`SILENCE`] (four of its ticks) is taken as gone.
//!
//! # Cost
//! One reader and one writer task per connection. A call costs one frame
//! each way; the reply is decoded on a blocking thread when it is larger
//! than 1 MiB, so a big process table does not stall the runtime's
//! workers.

use crate::BeamError;
use crate::term::{self, Term, atom, list, tuple};
use eetf::{Atom, Pid, Reference};
use erl_dist::handshake::{ClientSideHandshake, HandshakeError, HandshakeStatus};
use erl_dist::message::Message;
use erl_dist::node::{Creation, LocalNode, NodeName};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};
use tokio_util::compat::TokioAsyncReadCompatExt;

/// The largest frame read from a peer: a process table of a million
/// processes read with built-in functions alone is about 150 MB.
pub const MAX_FRAME: usize = 256 << 20;

/// A peer that sends nothing for this long is taken as gone. The BEAM
/// ticks every 15 s with its default `net_ticktime` of 60 s.
pub const SILENCE: Duration = Duration::from_secs(60);

/// How often this side ticks, and answers the peer's ticks at once.
const TICK: Duration = Duration::from_secs(15);

/// The pass-through tag of a distribution frame without an atom cache.
const PASS_THROUGH: u8 = 112;

/// Frames waiting to be written.
const OUT_QUEUE: usize = 256;

/// What a connection has carried, for the node detail's link figures.
#[derive(Debug, Default)]
pub struct ConnStats {
    /// Bytes received, framing included.
    pub bytes_in: AtomicU64,
    /// Bytes sent, framing included.
    pub bytes_out: AtomicU64,
    /// Frames received (ticks included).
    pub frames_in: AtomicU64,
    /// Frames sent (ticks included).
    pub frames_out: AtomicU64,
    /// Messages that answered no open call (dropped).
    pub stray: AtomicU64,
    /// Frames that closed the connection: too long, or not decodable.
    pub bad_frames: AtomicU64,
}

/// A connection to one node. Cheap to clone; closed (its socket too) when
/// the last clone is dropped or [`Conn::close`] is called.
#[derive(Debug, Clone)]
pub struct Conn {
    inner: Arc<Inner>,
    /// Closes the connection when the last clone goes (the reader task
    /// holds `inner`, not this).
    _owner: Arc<Owner>,
}

#[derive(Debug)]
struct Owner(Arc<Inner>);

impl Drop for Owner {
    fn drop(&mut self) {
        self.0.close("dropped by this side");
    }
}

#[derive(Debug)]
struct Inner {
    peer: String,
    addr: String,
    me: Pid,
    creation: u32,
    out: mpsc::Sender<Vec<u8>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Term>>>,
    /// Modules the node answered it has loaded.
    loaded: Mutex<std::collections::HashSet<String>>,
    /// Terms kept for the life of the connection (a parsed expression).
    memo: Mutex<HashMap<&'static str, Term>>,
    next_ref: AtomicU64,
    up: AtomicBool,
    /// Told when this side closes the connection.
    closed: tokio::sync::Notify,
    since: Instant,
    stats: ConnStats,
}

/// Where a node is: the host of its name and its port in EPMD.
pub(crate) async fn lookup(node: &str, timeout: Duration) -> Result<(String, u16), BeamError> {
    let (name, host) = split_name(node)?;
    let epmd_port = std::env::var("ERL_EPMD_PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(erl_dist::epmd::DEFAULT_EPMD_PORT);
    let ask = async {
        let stream = TcpStream::connect((host, epmd_port)).await?;
        erl_dist::epmd::EpmdClient::new(stream.compat())
            .get_node(name)
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))
    };
    match tokio::time::timeout(timeout, ask).await {
        Err(_) => Err(BeamError::Epmd {
            host: host.to_owned(),
            reason: format!("no answer within {timeout:?}"),
        }),
        Ok(Err(e)) => Err(BeamError::Epmd {
            host: host.to_owned(),
            reason: e.to_string(),
        }),
        Ok(Ok(None)) => Err(BeamError::NotRegistered {
            node: node.to_owned(),
        }),
        Ok(Ok(Some(entry))) => Ok((host.to_owned(), entry.port)),
    }
}

/// `name@host` split, or why it is not a node name.
pub(crate) fn split_name(node: &str) -> Result<(&str, &str), BeamError> {
    match node.split_once('@') {
        Some((name, host)) if !name.is_empty() && !host.is_empty() => Ok((name, host)),
        _ => Err(BeamError::BadName(node.to_owned())),
    }
}

impl Conn {
    /// Connects to `node` (`name@host`) as the hidden node `me`, whose
    /// host part must be of the same kind as the target's (short or
    /// fully qualified), with `cookie`.
    ///
    /// # Errors
    /// [`BeamError::Epmd`], [`BeamError::NotRegistered`],
    /// [`BeamError::Connect`], [`BeamError::BadCookie`],
    /// [`BeamError::Handshake`] or [`BeamError::Timeout`].
    pub async fn connect(
        node: &str,
        me: &str,
        cookie: &str,
        timeout: Duration,
    ) -> Result<Conn, BeamError> {
        let started = Instant::now();
        let (host, port) = lookup(node, timeout).await?;
        let left = timeout.saturating_sub(started.elapsed());
        let name: NodeName = me
            .parse()
            .map_err(|e| BeamError::BadName(format!("{me}: {e}")))?;
        let creation = Creation::random();
        let local = LocalNode::new(name, creation);
        let handshake = async {
            let stream = TcpStream::connect((host.as_str(), port))
                .await
                .map_err(|e| BeamError::Connect {
                    node: node.to_owned(),
                    reason: e.to_string(),
                })?;
            let _ = stream.set_nodelay(true);
            let mut hs = ClientSideHandshake::new(stream.compat(), local.clone(), cookie);
            let status = hs
                .execute_send_name(erl_dist::LOWEST_DISTRIBUTION_PROTOCOL_VERSION)
                .await
                .map_err(|e| handshake_error(node, e, false))?;
            if matches!(status, HandshakeStatus::Named { .. }) {
                return Err(BeamError::Handshake {
                    node: node.to_owned(),
                    reason: "the node offered to name this node; give a full name".into(),
                });
            }
            let (stream, _peer) = hs
                .execute_rest(true)
                .await
                .map_err(|e| handshake_error(node, e, true))?;
            Ok::<_, BeamError>(stream.into_inner())
        };
        let stream =
            tokio::time::timeout(left, handshake)
                .await
                .map_err(|_| BeamError::Timeout {
                    node: node.to_owned(),
                    after: timeout,
                })??;
        let (rd, wr) = stream.into_split();
        let (out, out_rx) = mpsc::channel(OUT_QUEUE);
        let inner = Arc::new(Inner {
            peer: node.to_owned(),
            addr: format!("{host}:{port}"),
            me: Pid::new(me, 1, 0, creation.get()),
            creation: creation.get(),
            out,
            pending: Mutex::default(),
            loaded: Mutex::default(),
            memo: Mutex::default(),
            next_ref: AtomicU64::new(1),
            up: AtomicBool::new(true),
            closed: tokio::sync::Notify::new(),
            since: Instant::now(),
            stats: ConnStats::default(),
        });
        tokio::spawn(write_loop(Arc::downgrade(&inner), wr, out_rx));
        let reader = inner.clone();
        tokio::spawn(async move {
            let why = read_loop(&reader, rd).await;
            reader.down(&why);
        });
        Ok(Conn {
            _owner: Arc::new(Owner(inner.clone())),
            inner,
        })
    }

    /// The peer's name.
    pub fn peer(&self) -> &str {
        &self.inner.peer
    }

    /// The address connected to, `host:port`.
    pub fn addr(&self) -> &str {
        &self.inner.addr
    }

    /// Whether the connection is up.
    pub fn is_up(&self) -> bool {
        self.inner.up.load(Relaxed)
    }

    /// How long it has been up.
    pub fn up_for(&self) -> Duration {
        self.inner.since.elapsed()
    }

    /// A term kept under `key` for the life of the connection.
    pub(crate) fn memo(&self, key: &'static str) -> Option<Term> {
        self.inner.memo.lock().get(key).cloned()
    }

    /// Keeps `value` under `key` for the life of the connection.
    pub(crate) fn set_memo(&self, key: &'static str, value: Term) {
        self.inner.memo.lock().insert(key, value);
    }

    /// What it has carried.
    pub fn stats(&self) -> &ConnStats {
        &self.inner.stats
    }

    /// Closes the connection: calls waiting on it fail at once.
    pub fn close(&self) {
        self.inner.close("closed by this side");
    }

    /// Calls `m:f(args...)` on the node through `rex` and waits at most
    /// `timeout` for the value.
    ///
    /// Calling a function of a module the node has not loaded would load
    /// it: unless `m` is `erlang` (built in), the node is first asked
    /// `erlang:module_loaded(m)` (once per module while it answers
    /// `true`), and a module it has not loaded is never called.
    ///
    /// # Errors
    /// [`BeamError::NotLoaded`], [`BeamError::Disconnected`],
    /// [`BeamError::Timeout`], or [`BeamError::BadRpc`] when the call
    /// raised (`{badrpc, Reason}`).
    pub async fn call(
        &self,
        m: &str,
        f: &str,
        args: Vec<Term>,
        timeout: Duration,
    ) -> Result<Term, BeamError> {
        if m != "erlang" && !self.inner.loaded.lock().contains(m) {
            let answer = self
                .raw_call("erlang", "module_loaded", vec![atom(m)], timeout)
                .await?;
            if term::as_atom(&answer) != Some("true") {
                return Err(BeamError::NotLoaded {
                    node: self.inner.peer.clone(),
                    module: m.to_owned(),
                });
            }
            self.inner.loaded.lock().insert(m.to_owned());
        }
        self.raw_call(m, f, args, timeout).await
    }

    async fn raw_call(
        &self,
        m: &str,
        f: &str,
        args: Vec<Term>,
        timeout: Duration,
    ) -> Result<Term, BeamError> {
        let inner = &self.inner;
        if !self.is_up() {
            return Err(BeamError::Disconnected(inner.peer.clone()));
        }
        let id = inner.next_ref.fetch_add(1, Relaxed);
        let reference = Reference {
            node: Atom::from(inner.me.node.name.as_str()),
            id: vec![id as u32 & 0x3_ffff, (id >> 18) as u32, (id >> 50) as u32],
            creation: inner.creation,
        };
        let request = tuple(vec![
            atom("$gen_call"),
            tuple(vec![
                Term::Pid(inner.me.clone()),
                Term::Reference(Box::new(reference)),
            ]),
            tuple(vec![
                atom("call"),
                atom(m),
                atom(f),
                list(args),
                atom("user"),
            ]),
        ]);
        let message = Message::reg_send(inner.me.clone(), Atom::from("rex"), request);
        let mut frame = vec![0; 5];
        frame[4] = PASS_THROUGH;
        message
            .write_into(&mut frame)
            .map_err(|e| BeamError::Protocol {
                node: inner.peer.clone(),
                reason: format!("cannot encode a call: {e}"),
            })?;
        let len = u32::try_from(frame.len() - 4).map_err(|_| BeamError::Protocol {
            node: inner.peer.clone(),
            reason: "a call's arguments exceed 4 GiB".into(),
        })?;
        frame[..4].copy_from_slice(&len.to_be_bytes());
        let (tx, rx) = oneshot::channel();
        inner.pending.lock().insert(id, tx);
        if inner.out.send(frame).await.is_err() {
            inner.pending.lock().remove(&id);
            return Err(BeamError::Disconnected(inner.peer.clone()));
        }
        let answer = tokio::time::timeout(timeout, rx).await;
        inner.pending.lock().remove(&id);
        match answer {
            Ok(Ok(value)) => match term::tagged(&value, "badrpc") {
                Some([reason]) => Err(BeamError::BadRpc {
                    node: inner.peer.clone(),
                    call: format!("{m}:{f}"),
                    reason: term::show(reason, 300),
                }),
                _ => Ok(value),
            },
            Ok(Err(_)) => Err(BeamError::Disconnected(inner.peer.clone())),
            Err(_) if !self.is_up() => Err(BeamError::Disconnected(inner.peer.clone())),
            Err(_) => Err(BeamError::Timeout {
                node: inner.peer.clone(),
                after: timeout,
            }),
        }
    }
}

impl Inner {
    /// Marks the connection down and ends its reader (whose end drops the
    /// socket).
    fn close(&self, why: &str) {
        self.down(why);
        self.closed.notify_one();
    }

    fn down(&self, why: &str) {
        if self.up.swap(false, Relaxed) {
            tracing::info!(node = %self.peer, reason = why, "BEAM node connection closed");
        }
        // Dropping the senders fails every waiting call at once.
        self.pending.lock().clear();
    }

    /// A message to this side: the answer to an open call, or a stray.
    fn deliver(&self, message: Term) {
        if let Some([Term::Reference(r), _]) = term::as_tuple(&message) {
            if r.node.name == self.me.node.name && r.id.len() >= 3 {
                let id = u64::from(r.id[0]) | u64::from(r.id[1]) << 18 | u64::from(r.id[2]) << 50;
                if let Some(tx) = self.pending.lock().remove(&id) {
                    let Term::Tuple(mut t) = message else {
                        unreachable!("matched as a tuple above")
                    };
                    let _ = tx.send(t.elements.pop().expect("two elements"));
                    return;
                }
            }
        }
        self.stats.stray.fetch_add(1, Relaxed);
    }
}

async fn read_loop(inner: &Arc<Inner>, mut rd: OwnedReadHalf) -> String {
    loop {
        let next = tokio::select! {
            next = tokio::time::timeout(SILENCE, rd.read_u32()) => next,
            () = inner.closed.notified() => return "closed by this side".into(),
        };
        let len = match next {
            Err(_) => return format!("silent for {SILENCE:?}"),
            Ok(Err(e)) => return e.to_string(),
            Ok(Ok(len)) => len as usize,
        };
        inner.stats.frames_in.fetch_add(1, Relaxed);
        inner.stats.bytes_in.fetch_add(4 + len as u64, Relaxed);
        if len == 0 {
            // Answer a tick with a tick; a full queue is ticking anyway.
            let _ = inner.out.try_send(Vec::new());
            continue;
        }
        if len > MAX_FRAME {
            inner.stats.bad_frames.fetch_add(1, Relaxed);
            tracing::warn!(node = %inner.peer, len, max = MAX_FRAME, "BEAM frame too long");
            return format!("a frame of {len} bytes (at most {MAX_FRAME})");
        }
        let mut buf = vec![0; len];
        if let Err(e) = rd.read_exact(&mut buf).await {
            return e.to_string();
        }
        let decoded = if len > 1 << 20 {
            tokio::task::spawn_blocking(move || decode(&buf))
                .await
                .unwrap_or_else(|e| Err(e.to_string()))
        } else {
            decode(&buf)
        };
        let message = match decoded {
            Ok(m) => m,
            Err(why) => {
                inner.stats.bad_frames.fetch_add(1, Relaxed);
                tracing::warn!(node = %inner.peer, reason = %why, "undecodable BEAM frame");
                return format!("an undecodable frame: {why}");
            }
        };
        match message {
            Message::Send(m) => inner.deliver(m.message),
            Message::SendSender(m) => inner.deliver(m.message),
            Message::AliasSend(m) => inner.deliver(m.message),
            Message::SendTt(m) => inner.deliver(m.message),
            Message::SendSenderTt(m) => inner.deliver(m.message),
            _ => {
                inner.stats.stray.fetch_add(1, Relaxed);
            }
        }
    }
}

/// One frame's message. The decoder panics on a few term tags it leaves
/// unimplemented (the atom cache, which this side never offers): such a
/// frame is an error like any other.
fn decode(buf: &[u8]) -> Result<Message, String> {
    let Some((&tag, body)) = buf.split_first() else {
        return Err("an empty frame".into());
    };
    if tag != PASS_THROUGH {
        return Err(format!("type tag {tag}, not {PASS_THROUGH}"));
    }
    crate::frame::check(body).map_err(|e| e.to_string())?;
    let mut reader = body;
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        Message::read_from(&mut reader)
    }))
    .map_err(|_| "the decoder gave up on a term".to_owned())?
    .map_err(|e| e.to_string())
}

async fn write_loop(
    inner: std::sync::Weak<Inner>,
    mut wr: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Vec<u8>>,
) {
    let mut tick = tokio::time::interval(TICK);
    tick.tick().await;
    loop {
        let frame = tokio::select! {
            f = rx.recv() => match f {
                Some(f) => f,
                None => return,
            },
            _ = tick.tick() => Vec::new(),
        };
        let result = if frame.is_empty() {
            wr.write_all(&[0; 4]).await
        } else {
            wr.write_all(&frame).await
        };
        let Some(inner) = inner.upgrade() else { return };
        if !inner.up.load(Relaxed) {
            return;
        }
        match result {
            Ok(()) => {
                inner.stats.frames_out.fetch_add(1, Relaxed);
                inner
                    .stats
                    .bytes_out
                    .fetch_add(frame.len().max(4) as u64, Relaxed);
            }
            Err(e) => {
                inner.down(&e.to_string());
                return;
            }
        }
    }
}

fn handshake_error(node: &str, e: HandshakeError, after_name: bool) -> BeamError {
    match e {
        HandshakeError::CookieMismatch => BeamError::BadCookie(node.to_owned()),
        // The BEAM closes the connection on a wrong challenge reply, and
        // logs why on its side.
        HandshakeError::Io(io) if after_name && io.kind() == std::io::ErrorKind::UnexpectedEof => {
            BeamError::BadCookie(node.to_owned())
        }
        HandshakeError::NotAllowed => BeamError::Handshake {
            node: node.to_owned(),
            reason: "the node does not allow this connection (is its host part short and this one long, or the reverse?)".into(),
        },
        // An unknown status is text the peer chose, before it proved the
        // cookie: printed cut short, without control characters.
        other => BeamError::Handshake {
            node: node.to_owned(),
            reason: printable(&other.to_string(), 200),
        },
    }
}

/// `text` without control characters, cut at `max` characters.
fn printable(text: &str, max: usize) -> String {
    text.chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .take(max)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_peers_text_in_an_error_is_bounded_and_printable() {
        let hostile = format!("\x1b]0;title\x07{}", "x".repeat(70_000));
        let shown = super::printable(&hostile, 200);
        assert_eq!(shown.chars().count(), 200);
        assert!(!shown.chars().any(char::is_control));
    }
}
