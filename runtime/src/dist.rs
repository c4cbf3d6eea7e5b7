//! Distribution: named nodes that authenticate with a shared cookie, form a
//! full mesh over TCP, and detect dead peers with heartbeats.
//!
//! Layers, each in its own module: `frame` (the frame schema), `codec`
//! (bytes ⇄ frames, pure), `handshake` (the authentication state machine,
//! pure), `peer` (one connection's queue and counters), `mesh` (the table
//! of connections, admission, node events, calls awaiting replies),
//! `session` (driving a connection: handshake, reader, batched writer,
//! heartbeats) and `connect` (accepting and making connections).
//!
//! Over the mesh, each subsystem owns its state and its frames: `links`
//! (links and monitors), `global` (`:global`), `groups` (`pg`), `spawn`
//! (remote spawn and tasks), `flow` (busy links). `layer` holds them in
//! `Dist`, the one routing point every session hands its frames to.
//!
//! The layer builds on the process core and plugs into it through
//! `crate::transport`: `layer` implements the core's `Transport` (signals
//! of links and monitors, group announcements, node events, flow control)
//! and `route` its `RemoteRoute` (a remote pid's send, and the wire form of
//! a pid). Every frame and wire pid is built here; the core never names
//! this module.
//!
//! # Liveness
//! Every connection sends a heartbeat every `tick_time / 4`; a peer from
//! which nothing arrives for `tick_time` is declared down, so a silent peer
//! is down within 1.25 ticks at most. A peer that connects again while
//! its old connection is still held here (half-open) does not wait for
//! that: the old one is probed and, if silent, closed first (see `peers`).
//!
//! # Bad input
//! A frame that fails to decode, an oversized length prefix or a handshake
//! that stalls closes that one connection with a log line and a counter;
//! the node goes on serving its other connections.

mod admission;
mod call;
#[cfg(feature = "testing")]
pub mod codec;
#[cfg(not(feature = "testing"))]
#[allow(unreachable_pub)] // public with the `testing` feature
pub(crate) mod codec;
mod connect;
pub(crate) mod cookie;
mod faults;
mod fd_limit;
mod flow;
mod formation;
#[cfg(feature = "testing")]
pub mod frame;
#[cfg(not(feature = "testing"))]
#[allow(unreachable_pub)] // public with the `testing` feature
pub(crate) mod frame;
mod global;
mod groups;
pub(crate) mod handshake;
mod layer;
mod links;
mod mesh;
mod node_table;
pub(crate) mod payload;
mod peer;
pub(crate) mod remote;
pub(crate) mod replies;
mod route;
mod session;
mod spawn;
mod tls;

pub use crate::transport::{NodeDownReason, NodeEvent, RemoteMessage};
pub use codec::{DEFAULT_MAX_FRAME, DecodeError};
pub use cookie::{COOKIE_ENV, COOKIE_FILE, CookieError, random_cookie};
pub(crate) use fd_limit::raise_open_files_limit;
pub use formation::{ClusterHandle, Dns, Formation, Gossip, Static};
pub use frame::RefuseReason;
pub use global::{
    Global, GlobalError, GlobalHolder, GlobalResolver, Keep, NAME_CONFLICT, ResolveFn,
};
pub use handshake::HandshakeError;
pub(crate) use layer::Dist;
pub use mesh::DistStats;
pub use peer::PeerStats;
pub use spawn::{RemoteSpawnError, TASK_SUPERVISOR};
pub use tls::{TlsConfig, TlsError};

/// A route's cached handle to the connection it sends through.
pub(crate) type PeerCache = parking_lot::RwLock<Option<std::sync::Arc<peer::Peer>>>;

use std::net::SocketAddr;
use std::time::Duration;

/// How a node takes part in a cluster.
#[derive(Debug, Clone)]
pub struct DistConfig {
    /// Where to listen for other nodes; `None` for a node that only
    /// connects out (a client such as the TUI). Port 0 picks a free port.
    pub listen: Option<SocketAddr>,
    /// The cookie; `None` reads `CLUSTERTOP_COOKIE`, then `~/.clustertop.cookie`.
    pub cookie: Option<String>,
    /// A hidden node is not listed by `nodes()` and joins no mesh.
    pub hidden: bool,
    /// Liveness period: heartbeats every quarter, down after a silent tick
    /// (default 60 s, like Erlang's `net_ticktime`).
    pub tick_time: Duration,
    /// Limit for a handshake to finish (default 10 s).
    pub handshake_timeout: Duration,
    /// Limit between two handshake messages (default 2 s): a peer that
    /// proves its cookie does it in milliseconds, so a stranger stalling
    /// a handshake holds its slot for at most this long.
    pub handshake_step_timeout: Duration,
    /// Limit for a TCP connect (default 10 s).
    pub connect_timeout: Duration,
    /// Largest frame accepted or sent (default 16 MiB).
    pub max_frame: usize,
    /// Decides which process keeps a global name held twice after a
    /// partition heals (default: the one whose node name sorts first).
    pub global_resolver: GlobalResolver,
    /// TLS for node links; `None` for plain TCP.
    pub tls: Option<TlsConfig>,
    /// Bytes queued on one link above which a process that sends on it is
    /// suspended at its next `recv` until the queue drains to half (the
    /// BEAM's `dist_buf_busy_limit`; default 8 MiB).
    pub busy_limit: usize,
    /// Handshakes in progress at once (default 64). A connection accepted
    /// past this takes the place of the stalest handshake, which is closed
    /// (see the `admission` module: strangers cannot shut anyone out).
    pub max_handshakes: usize,
    /// Handshakes in progress at once from one remote IP address
    /// (default 8), with the same rule.
    pub max_handshakes_per_ip: usize,
}

impl Default for DistConfig {
    fn default() -> Self {
        DistConfig {
            listen: None,
            cookie: None,
            hidden: false,
            tick_time: Duration::from_secs(60),
            handshake_timeout: Duration::from_secs(10),
            handshake_step_timeout: Duration::from_secs(2),
            connect_timeout: Duration::from_secs(10),
            max_frame: DEFAULT_MAX_FRAME,
            global_resolver: GlobalResolver::default(),
            tls: None,
            busy_limit: 8 * 1024 * 1024,
            max_handshakes: 64,
            max_handshakes_per_ip: 8,
        }
    }
}

impl DistConfig {
    /// A visible node listening on `addr`.
    pub fn listen(addr: SocketAddr) -> Self {
        DistConfig {
            listen: Some(addr),
            ..Default::default()
        }
    }

    /// Sets the cookie.
    pub fn cookie(mut self, cookie: impl Into<String>) -> Self {
        self.cookie = Some(cookie.into());
        self
    }

    /// Makes the node hidden.
    pub fn hidden(mut self, hidden: bool) -> Self {
        self.hidden = hidden;
        self
    }

    /// Sets the tick time.
    pub fn tick_time(mut self, tick: Duration) -> Self {
        self.tick_time = tick;
        self
    }

    /// Sets the handshake timeout.
    pub fn handshake_timeout(mut self, timeout: Duration) -> Self {
        self.handshake_timeout = timeout;
        self
    }

    /// Uses TLS for every link.
    pub fn tls(mut self, tls: TlsConfig) -> Self {
        self.tls = Some(tls);
        self
    }

    /// Sets the frame size limit.
    pub fn max_frame(mut self, bytes: usize) -> Self {
        self.max_frame = bytes;
        self
    }

    /// Checks every duration and size, so a node refuses to start with a
    /// setting that cannot work rather than fail on every connection.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first setting out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let positive = |setting: &'static str, d: Duration| {
            if d.is_zero() {
                Err(ConfigError {
                    setting,
                    problem: "must be longer than zero",
                })
            } else {
                Ok(())
            }
        };
        positive("tick_time", self.tick_time)?;
        positive("handshake_timeout", self.handshake_timeout)?;
        positive("handshake_step_timeout", self.handshake_step_timeout)?;
        positive("connect_timeout", self.connect_timeout)?;
        if self.tick_time < MIN_TICK {
            return Err(ConfigError {
                setting: "tick_time",
                problem: "must be at least 4 ms (heartbeats go every quarter of it)",
            });
        }
        if self.max_frame < MIN_MAX_FRAME {
            return Err(ConfigError {
                setting: "max_frame",
                problem: "must be at least 4 KiB",
            });
        }
        if self.max_handshakes == 0 || self.max_handshakes_per_ip == 0 {
            return Err(ConfigError {
                setting: "max_handshakes",
                problem: "must allow at least one handshake (also per IP)",
            });
        }
        if self.busy_limit == 0 {
            return Err(ConfigError {
                setting: "busy_limit",
                problem: "must be at least one byte",
            });
        }
        Ok(())
    }
}

/// The shortest tick time: heartbeats go every quarter of it.
const MIN_TICK: Duration = Duration::from_millis(4);
/// The smallest frame limit a node accepts.
const MIN_MAX_FRAME: usize = 4 * 1024;

/// A [`DistConfig`] setting out of range.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid setting {setting}: {problem}")]
pub struct ConfigError {
    /// The setting, as the field of [`DistConfig`] is named.
    pub setting: &'static str,
    /// What is wrong with it.
    pub problem: &'static str,
}

/// A send by name to another node could not be made.
#[derive(Debug, thiserror::Error)]
pub enum SendNamedError {
    /// This node was started without distribution.
    #[error("this node is not distributed")]
    NotDistributed,
    /// The message could not be encoded.
    #[error("cannot encode the message: {0}")]
    Encode(String),
    /// The local send by name failed.
    #[error(transparent)]
    Local(crate::LookupError),
}

/// Connecting to another node failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    /// This node was started without distribution.
    #[error("this node is not distributed")]
    NotDistributed,
    /// The address did not resolve.
    #[error("cannot resolve {0}")]
    Resolve(String),
    /// TCP failed.
    #[error("connection failed: {0}")]
    Io(#[from] std::io::Error),
    /// The TCP connect or the handshake did not finish in time.
    #[error("timed out")]
    Timeout,
    /// The handshake failed (wrong cookie, refused, out-of-order frame).
    #[error(transparent)]
    Handshake(#[from] HandshakeError),
    /// The peer closed the connection during the handshake.
    #[error("the peer closed the connection during the handshake")]
    Closed,
    /// The peer sent a frame that does not decode.
    #[error(transparent)]
    Decode(#[from] DecodeError),
    /// The TLS handshake failed (no TLS, or a certificate not from the CA).
    #[error("tls: {0}")]
    Tls(#[source] std::io::Error),
}

impl ConnectError {
    /// Whether the other side answered and refused (a wrong cookie,
    /// another protocol version, a name already taken), as against not
    /// answering: trying again will not help until someone acts.
    pub fn is_refusal(&self) -> bool {
        matches!(
            self,
            ConnectError::Handshake(HandshakeError::Refused(_) | HandshakeError::PeerRefused(_))
        )
    }

    /// The kind of a failed handshake, as its counter's `reason` label
    /// says it: `bad_cookie`, `version`, `refused`, `timeout`, `tls`,
    /// `protocol` or `io`.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            ConnectError::Handshake(HandshakeError::Refused(RefuseReason::BadCookie))
            | ConnectError::Handshake(HandshakeError::PeerRefused(RefuseReason::BadCookie)) => {
                "bad_cookie"
            }
            ConnectError::Handshake(HandshakeError::Refused(RefuseReason::VersionMismatch {
                ..
            }))
            | ConnectError::Handshake(HandshakeError::PeerRefused(
                RefuseReason::VersionMismatch { .. },
            )) => "version",
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
}

impl crate::Node {
    /// The distribution layer, on a distributed node.
    pub(crate) fn dist_layer(&self) -> Option<&std::sync::Arc<Dist>> {
        self.layer()?.get::<Dist>()
    }

    /// Connects to the node listening at `addr` (`host:port`) and returns
    /// its name. Connecting to a node already connected returns at once.
    /// Other members of its cluster are connected to in the background.
    ///
    /// # Errors
    /// [`ConnectError`]: not distributed, unresolvable address, TCP failure,
    /// timeout, or a failed handshake (wrong cookie, name in use, version).
    pub async fn connect(&self, addr: &str) -> Result<String, ConnectError> {
        let dist = self.dist_layer().ok_or(ConnectError::NotDistributed)?;
        let resolved = tokio::net::lookup_host(addr)
            .await
            .map_err(|_| ConnectError::Resolve(addr.to_owned()))?
            .next()
            .ok_or_else(|| ConnectError::Resolve(addr.to_owned()))?;
        Dist::connect(self, dist, resolved).await
    }

    /// The connected visible nodes, sorted by name (Erlang's `nodes()`).
    pub fn nodes(&self) -> Vec<String> {
        self.dist_layer()
            .map(|d| d.mesh.nodes(false))
            .unwrap_or_default()
    }

    /// This node's distribution: connections, names on other nodes,
    /// remote spawn and tasks, cluster formation, node events and link
    /// figures (as [`Node::global`](crate::Node::global) is the global registry). On a node
    /// without distribution its queries answer empty and its actions fail
    /// with `NotDistributed`.
    pub fn dist(&self) -> Distribution<'_> {
        Distribution { node: self }
    }
}

/// A node's distribution, from [`Node::dist`](crate::Node::dist) (a copy
/// of a reference, as [`Global`] is).
#[derive(Debug, Clone, Copy)]
pub struct Distribution<'a> {
    node: &'a crate::Node,
}

impl Distribution<'_> {
    fn layer(&self) -> Option<&std::sync::Arc<Dist>> {
        self.node.dist_layer()
    }

    /// Closes the connection to `node`. Returns whether it was connected.
    pub fn disconnect(&self, node: &str) -> bool {
        self.layer().is_some_and(|d| d.mesh.disconnect(node))
    }

    /// Sends `msg` to the process registered as `name` on `node` (Erlang's
    /// `send({name, node}, msg)`); on this node's own name, a local send.
    /// Never blocks; a message that cannot be delivered is a dead letter.
    ///
    /// # Errors
    /// [`SendNamedError::NotDistributed`] on a node without distribution,
    /// or [`SendNamedError::Local`] for a local name that is free or of
    /// another type.
    pub fn send_named_on<M: RemoteMessage>(
        &self,
        node: &str,
        name: &str,
        msg: M,
    ) -> Result<(), SendNamedError> {
        if node == self.node.name() {
            return self
                .node
                .send_named(name, msg)
                .map_err(SendNamedError::Local);
        }
        self.named_on::<M>(node, name)?.send(msg);
        Ok(())
    }

    /// A handle to the process registered as `name` on another `node`
    /// (Erlang's `{name, node}`): messages and calls through it are
    /// delivered to whichever process holds the name when they arrive.
    /// Its [`Pid::id`](crate::Pid::id) has serial 0, and it cannot be sent
    /// inside a message.
    ///
    /// # Errors
    /// [`SendNamedError::NotDistributed`] on a node without distribution.
    pub fn named_on<M: RemoteMessage>(
        &self,
        node: &str,
        name: &str,
    ) -> Result<crate::Pid<M>, SendNamedError> {
        let dist = self.layer().ok_or(SendNamedError::NotDistributed)?;
        let index = dist.mesh.node_table().intern(node, 0);
        Ok(crate::pid::Pid::remote(
            self.node,
            dist,
            crate::ProcessId {
                node: index,
                serial: 0,
                creation: 0,
            },
            node.to_owned(),
            frame::Target::Name(name.to_owned()),
        ))
    }

    /// The connected hidden nodes (such as attached TUIs), sorted by name.
    pub fn hidden_nodes(&self) -> Vec<String> {
        self.layer().map(|d| d.mesh.nodes(true)).unwrap_or_default()
    }

    /// The address this node listens on, if it listens.
    pub fn listen_addr(&self) -> Option<SocketAddr> {
        self.layer().and_then(|d| d.mesh.listen_addr())
    }

    /// A stream of node up and down events, from now on. `None` on a node
    /// without distribution. A receiver that falls more than 1,024 events
    /// behind loses the oldest (and is told so by the channel).
    pub fn node_events(&self) -> Option<tokio::sync::broadcast::Receiver<NodeEvent>> {
        self.layer().map(|d| d.mesh.subscribe())
    }

    /// Counters of every current connection.
    pub fn peer_stats(&self) -> Vec<PeerStats> {
        self.layer()
            .map(|d| d.mesh.peer_stats())
            .unwrap_or_default()
    }

    /// Counters of the distribution layer.
    pub fn stats(&self) -> DistStats {
        self.layer().map(|d| d.mesh.stats()).unwrap_or_default()
    }

    /// Fault injection: queues `frame` as is on the connection to `node`
    /// (feature `testing`), to play a peer that breaks the protocol.
    /// Returns whether that node is connected.
    #[cfg(feature = "testing")]
    pub fn send_raw_frame(&self, node: &str, frame: frame::Frame) -> bool {
        self.layer()
            .and_then(|d| d.mesh.peer(node))
            .is_some_and(|p| p.send(frame))
    }

    /// Fault injection: while `blocked`, the connection to `node` carries
    /// nothing in either direction (so heartbeats lapse and both sides see
    /// it go down) and new connections with it are refused. For partition
    /// tests (feature `testing`); not for production use.
    #[cfg(feature = "testing")]
    pub fn set_partitioned(&self, node: &str, blocked: bool) {
        if let Some(d) = self.layer() {
            d.mesh.block(node, blocked);
        }
    }

    /// Fault injection: the connection to `node` held now carries nothing
    /// in either direction from here on, and this side sees no close of it
    /// either (a half-open socket); new connections with `node` are taken
    /// as usual. For tests (feature `testing`). Returns whether `node` was
    /// connected.
    #[cfg(feature = "testing")]
    pub fn cut_connection(&self, node: &str) -> bool {
        self.layer()
            .and_then(|d| d.mesh.peer(node))
            .is_some_and(|p| p.cut(true))
    }
}
