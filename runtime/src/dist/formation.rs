//! Cluster formation (libcluster's strategies): how a node finds the other
//! members and connects to them, over and over, so that a restarted or
//! partitioned member comes back without an operator.
//!
//! - [`Static`]: a fixed list of addresses, checked every 500 ms while
//!   connected and retried with exponential backoff (100 ms doubling to
//!   30 s, each wait jittered by ±25 % so that nodes cut off together do
//!   not retry in step) while unreachable, for as long as the node runs:
//!   a member that was partitioned or paused past the tick time is
//!   connected again as soon as it answers.
//! - [`Gossip`]: UDP multicast heartbeats (every interval, jittered)
//!   carrying the node's name and listen address, authenticated with an
//!   HMAC keyed by a hash of the cookie; a node connects to every member
//!   it hears and is not connected to, so a member that comes back is
//!   connected again at its next heartbeat. Works on loopback with
//!   `interface = 127.0.0.1`.
//! - [`Dns`]: resolve a name (say a headless service) to addresses and
//!   connect to each address on the given ports, polling (jittered); an
//!   unreachable address backs off as in `Static`.
//!
//! Every strategy runs as a task started by [`Distribution::start_cluster`](super::Distribution::start_cluster); the
//! TCP handshake still authenticates every connection it makes.

use super::handshake::LocalInfo;
use crate::node::Node;
use futures_util::future::BoxFuture;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use std::collections::HashMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::Duration;
use subtle::ConstantTimeEq;
use tokio::task::AbortHandle;

/// A way to find cluster members: libcluster's strategies (`Static`,
/// `Gossip`, `Dns`); named apart from the supervisor's restart
/// [`Strategy`](crate::supervisor::Strategy).
pub trait Formation: Send + 'static {
    /// Runs for the node's lifetime, connecting to members it finds.
    fn run(self: Box<Self>, node: Node) -> BoxFuture<'static, ()>;
}

/// A running strategy; stops when [`ClusterHandle::stop`] is called.
#[derive(Debug)]
pub struct ClusterHandle {
    task: AbortHandle,
}

impl ClusterHandle {
    /// Stops the strategy (connections it made stay up).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl super::Distribution<'_> {
    /// Starts a cluster formation strategy on this node.
    pub fn start_cluster(&self, strategy: impl Formation) -> ClusterHandle {
        let fut = Box::new(strategy).run(self.node.clone());
        ClusterHandle {
            task: self.node.handle().spawn(fut).abort_handle(),
        }
    }
}

/// Connects to a fixed list of addresses, with backoff.
#[derive(Debug, Clone)]
pub struct Static {
    addrs: Vec<String>,
    check_every: Duration,
}

impl Static {
    /// Members at these `host:port` addresses.
    pub fn new(addrs: impl IntoIterator<Item = impl Into<String>>) -> Self {
        Static {
            addrs: addrs.into_iter().map(Into::into).collect(),
            check_every: Duration::from_millis(500),
        }
    }
}

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// `d` ±25 %, at random.
fn jittered(d: Duration) -> Duration {
    let mut b = [0u8; 2];
    if getrandom::fill(&mut b).is_err() {
        return d;
    }
    // 0.75 + [0, 0.5): a factor in [0.75, 1.25).
    let factor = 0.75 + f64::from(u16::from_le_bytes(b)) / f64::from(u16::MAX) / 2.0;
    d.mul_f64(factor)
}

/// How often a member that refuses this node (a wrong cookie, another
/// protocol version) is reported while it keeps refusing.
const REFUSAL_REPORT_EVERY: Duration = Duration::from_secs(60);

/// When to try each known member next: soon after a success, and with
/// jittered exponential backoff while it fails; and when a refusal by it
/// was last reported.
#[derive(Debug, Default)]
struct Retries {
    next: HashMap<String, (tokio::time::Instant, Duration)>,
    reported: HashMap<String, tokio::time::Instant>,
}

impl Retries {
    /// Whether `addr` is due for a try.
    fn due(&self, addr: &str) -> bool {
        self.next
            .get(addr)
            .is_none_or(|(at, _)| *at <= tokio::time::Instant::now())
    }

    /// Connects to `addr` and schedules the next try.
    async fn attempt(&mut self, node: &Node, addr: &str, check_every: Duration) {
        let now = tokio::time::Instant::now();
        let backoff = self.next.get(addr).map_or(BACKOFF_MIN, |(_, b)| *b);
        match node.connect(addr).await {
            Ok(_) => {
                self.next
                    .insert(addr.to_owned(), (now + check_every, BACKOFF_MIN));
                self.reported.remove(addr);
            }
            Err(e) => {
                // A member that answers and refuses splits the cluster
                // until someone acts: say so, at most once a minute.
                if e.is_refusal() {
                    let due = self
                        .reported
                        .get(addr)
                        .is_none_or(|at| now.duration_since(*at) >= REFUSAL_REPORT_EVERY);
                    if due {
                        tracing::warn!(%addr, error = %e, "a cluster member refuses this node; it stays out of that member's cluster until this is fixed (said again each minute while it lasts)");
                        self.reported.insert(addr.to_owned(), now);
                    }
                } else {
                    tracing::debug!(%addr, error = %e, "cluster member unreachable");
                }
                let next = (backoff * 2).min(BACKOFF_MAX);
                self.next
                    .insert(addr.to_owned(), (now + jittered(backoff), next));
            }
        }
    }
}

impl Formation for Static {
    fn run(self: Box<Self>, node: Node) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut retries = Retries::default();
            loop {
                for addr in &self.addrs {
                    if retries.due(addr) {
                        retries.attempt(&node, addr, self.check_every).await;
                    }
                }
                tokio::time::sleep(self.check_every.min(BACKOFF_MIN)).await;
            }
        })
    }
}

/// Finds members by authenticated UDP multicast heartbeats.
#[derive(Debug, Clone)]
pub struct Gossip {
    /// Multicast group (default 233.252.1.32, as libcluster's).
    pub group: Ipv4Addr,
    /// UDP port (default 45892).
    pub port: u16,
    /// Interface to send and join on (default 0.0.0.0; 127.0.0.1 on one host).
    pub interface: Ipv4Addr,
    /// Heartbeat period (default 1 s).
    pub interval: Duration,
}

impl Default for Gossip {
    fn default() -> Self {
        Gossip {
            group: Ipv4Addr::new(233, 252, 1, 32),
            port: 45892,
            interface: Ipv4Addr::UNSPECIFIED,
            interval: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct Heartbeat {
    name: String,
    creation: u32,
    listen: String,
}

const GOSSIP_MAGIC: &[u8; 4] = b"ctg1";

fn gossip_key(local: &LocalInfo) -> [u8; 32] {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(local.cookie.as_bytes())
        .expect("HMAC takes keys of any length");
    m.update(b"clustertop-gossip-v1");
    m.finalize().into_bytes().into()
}

fn seal(key: &[u8; 32], body: &[u8]) -> Vec<u8> {
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    m.update(body);
    let tag: [u8; 32] = m.finalize().into_bytes().into();
    let mut out = Vec::with_capacity(4 + body.len() + 32);
    out.extend_from_slice(GOSSIP_MAGIC);
    out.extend_from_slice(body);
    out.extend_from_slice(&tag);
    out
}

fn open(key: &[u8; 32], packet: &[u8]) -> Option<Heartbeat> {
    let rest = packet.strip_prefix(GOSSIP_MAGIC)?;
    let (body, tag) = rest.split_at_checked(rest.len().checked_sub(32)?)?;
    let mut m = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("any key length");
    m.update(body);
    let expected: [u8; 32] = m.finalize().into_bytes().into();
    if !bool::from(expected.ct_eq(tag)) {
        return None;
    }
    postcard::from_bytes(body).ok()
}

fn gossip_socket(g: &Gossip) -> std::io::Result<tokio::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let s = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    #[cfg(unix)]
    s.set_reuse_port(true)?;
    s.set_nonblocking(true)?;
    s.bind(&SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::UNSPECIFIED, g.port)).into())?;
    s.join_multicast_v4(&g.group, &g.interface)?;
    s.set_multicast_if_v4(&g.interface)?;
    s.set_multicast_loop_v4(true)?;
    s.set_multicast_ttl_v4(1)?;
    tokio::net::UdpSocket::from_std(s.into())
}

impl Formation for Gossip {
    fn run(self: Box<Self>, node: Node) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let Some(dist) = node.dist_layer().cloned() else {
                return;
            };
            let Some(listen) = node.dist().listen_addr() else {
                tracing::warn!("gossip needs a listening node");
                return;
            };
            let socket = match gossip_socket(&self) {
                Ok(s) => Arc::new(s),
                Err(e) => {
                    tracing::warn!(error = %e, "gossip socket failed");
                    return;
                }
            };
            let key = gossip_key(&dist.mesh.local);
            let hello = Heartbeat {
                name: node.name().to_owned(),
                creation: node.creation(),
                listen: listen.to_string(),
            };
            let packet = seal(&key, &postcard::to_allocvec(&hello).expect("encodes"));
            let target = SocketAddr::V4(SocketAddrV4::new(self.group, self.port));
            let sender = {
                let socket = socket.clone();
                let interval = self.interval;
                tokio::spawn(async move {
                    loop {
                        if let Err(e) = socket.send_to(&packet, target).await {
                            tracing::debug!(error = %e, "gossip send failed");
                        }
                        tokio::time::sleep(jittered(interval)).await;
                    }
                })
            };
            let _stop_sender = AbortOnDrop(sender.abort_handle());
            let mut buf = vec![0u8; 2048];
            loop {
                let Ok((n, from)) = socket.recv_from(&mut buf).await else {
                    continue;
                };
                let Some(beat) = open(&key, &buf[..n]) else {
                    tracing::debug!(%from, "ignored an unauthenticated gossip packet");
                    continue;
                };
                if beat.name == node.name() || node.nodes().contains(&beat.name) {
                    continue;
                }
                let node = node.clone();
                tokio::spawn(async move {
                    if let Err(e) = node.connect(&beat.listen).await {
                        tracing::debug!(peer = %beat.name, error = %e, "gossip connect failed");
                    }
                });
            }
        })
    }
}

struct AbortOnDrop(AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Finds members by resolving a DNS name.
#[derive(Debug, Clone)]
pub struct Dns {
    /// The name to resolve (for example a headless service).
    pub query: String,
    /// The ports members listen on, tried on every address.
    pub ports: Vec<u16>,
    /// Poll period (default 5 s).
    pub interval: Duration,
}

impl Dns {
    /// Members at every address of `query`, on `port`.
    pub fn new(query: impl Into<String>, port: u16) -> Self {
        Dns {
            query: query.into(),
            ports: vec![port],
            interval: Duration::from_secs(5),
        }
    }
}

impl Formation for Dns {
    fn run(self: Box<Self>, node: Node) -> BoxFuture<'static, ()> {
        Box::pin(async move {
            let mut retries = Retries::default();
            loop {
                match tokio::net::lookup_host((self.query.as_str(), 0)).await {
                    Ok(addrs) => {
                        let addrs: Vec<SocketAddr> = addrs.collect();
                        for ip in addrs.iter().map(SocketAddr::ip) {
                            for port in &self.ports {
                                let addr = SocketAddr::new(ip, *port);
                                if Some(addr) == node.dist().listen_addr() {
                                    continue;
                                }
                                let addr = addr.to_string();
                                if retries.due(&addr) {
                                    retries.attempt(&node, &addr, self.interval).await;
                                }
                            }
                        }
                    }
                    Err(e) => tracing::debug!(query = %self.query, error = %e, "dns lookup failed"),
                }
                tokio::time::sleep(jittered(self.interval)).await;
            }
        })
    }
}
