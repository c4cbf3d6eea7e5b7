//! Attach to a clustertop cluster: a hidden, read-only node that connects
//! to one entry node and speaks the attach protocol with its agent.
//!
//! ```no_run
//! use clustertop_client::{Client, ClientConfig};
//!
//! # async fn run() -> Result<(), clustertop_client::ClientError> {
//! let client = Client::connect(ClientConfig::new("127.0.0.1:4370")).await?;
//! let overview = client.overview().await?;
//! for node in &overview.nodes {
//!     println!("{} {:?} {} processes", node.name, node.status, node.processes);
//! }
//! # Ok(()) }
//! ```
//!
//! The client joins no mesh (its node is hidden) and asks only the entry
//! node; that node's agent gathers cluster-wide answers. Requests carry an
//! id; the answer is matched to it, so any number may be in flight.
//! [`Client::ask`] takes any request of the protocol and returns the type
//! its [`Call::Reply`] names; the other methods are shorthands for it.

use clustertop_proto::{
    AGENT_NAME, AgentCall, AgentReply, Call, ClusterOverview, GetMetrics, GetNode, GetOverview,
    GetProcess, GetTree, GetWarnings, Hello, HelloReply, LogFilter, LogRecord, MetricsSnapshot,
    NodeDetail, PidRef, ProcessDetail, ProcessPage, ProcessQuery, ProtoError, Request, Response,
    SubscribeLogs, SupervisionTree, Unsubscribe, Warning,
};
use clustertop_runtime::dist::RefuseReason;
/// The cookie's environment variable, and a fresh random cookie (for a
/// front end that starts a cluster of its own, as `clustertop demo` does).
pub use clustertop_runtime::dist::{COOKIE_ENV, CookieError, random_cookie};
use clustertop_runtime::dist::{ConnectError, DistConfig, HandshakeError};
use clustertop_runtime::{Node, NodeConfig, NodeError, Pid, Received};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};

/// Where and how to attach.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The entry node's address, `host:port`.
    pub addr: String,
    /// The cluster's cookie; `None` reads `CLUSTERTOP_COOKIE`, then
    /// `~/.clustertop.cookie`.
    pub cookie: Option<String>,
    /// This client's node name (default `clustertop-<os pid>-<n>@localhost`).
    pub name: Option<String>,
    /// Limit for connecting and for each request (default 5 s).
    pub timeout: Duration,
    /// Who is asking, for the agent's logs.
    pub client: String,
    /// The protocol version to offer (default: this crate's,
    /// [`clustertop_proto::VERSION`]).
    pub version: u32,
}

impl ClientConfig {
    /// Attach to the node at `addr` with the default cookie.
    pub fn new(addr: impl Into<String>) -> Self {
        ClientConfig {
            addr: addr.into(),
            cookie: None,
            name: None,
            timeout: Duration::from_secs(5),
            client: format!("clustertop-client {}", env!("CARGO_PKG_VERSION")),
            version: clustertop_proto::VERSION,
        }
    }

    /// Uses `cookie`.
    pub fn cookie(mut self, cookie: impl Into<String>) -> Self {
        self.cookie = Some(cookie.into());
        self
    }

    /// Sets the request timeout.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }
}

/// Why attaching or a request failed. Each displays as one line a user
/// can act on.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens at the address, or it does not resolve.
    #[error("no clustertop node at {addr}: {reason}")]
    NoNode {
        /// The address.
        addr: String,
        /// What failed.
        reason: String,
    },
    /// The node refused the cookie.
    #[error("the node at {0} refused the cookie (set --cookie or CLUSTERTOP_COOKIE)")]
    BadCookie(String),
    /// No cookie to attach with (none given, and no cookie file: a client
    /// never creates one).
    #[error(transparent)]
    Cookie(clustertop_runtime::dist::CookieError),
    /// The client could not start its own node.
    #[error("cannot start the client node: {0}")]
    Local(String),
    /// The node answered nothing in time (is its agent running?).
    #[error("the node did not answer within {0:?} (is its agent running?)")]
    Timeout(Duration),
    /// The connection to the entry node is gone.
    #[error("the connection to {0} is closed")]
    Disconnected(String),
    /// The agent answered with an error (for example an unsupported
    /// protocol version).
    #[error("{0}")]
    Agent(#[from] ProtoError),
    /// The agent answered something else than the request calls for.
    #[error("unexpected answer from the agent: {0}")]
    Unexpected(String),
    /// The request is newer than the protocol version of this session:
    /// the entry node's agent is older than this client.
    #[error(
        "the agent of {node} speaks attach protocol {session}; {request} needs {needs} (upgrade the node's clustertop-agent)"
    )]
    Unsupported {
        /// The entry node.
        node: String,
        /// The request's name.
        request: &'static str,
        /// The version that has it.
        needs: u32,
        /// The session's version.
        session: u32,
    },
}

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Response>>>>;
type Streams = Arc<Mutex<StreamTable>>;

/// Chunks kept for a subscription whose id is not known yet: an agent may
/// push the first records (the backlog) before its answer to the
/// subscription arrives.
const EARLY_CHUNKS: usize = 64;

/// The open log streams, and the chunks that came before their stream.
#[derive(Debug, Default)]
struct StreamTable {
    open: HashMap<u64, mpsc::Sender<LogChunk>>,
    early: std::collections::VecDeque<(u64, LogChunk)>,
}

impl StreamTable {
    /// Opens the stream of `subscription`, with the chunks that came first.
    fn open(&mut self, subscription: u64, tx: mpsc::Sender<LogChunk>) {
        let early = std::mem::take(&mut self.early);
        for (id, chunk) in early {
            if id == subscription {
                let _ = tx.try_send(chunk);
            } else {
                self.early.push_back((id, chunk));
            }
        }
        self.open.insert(subscription, tx);
    }

    /// A pushed chunk: to its stream, else kept (a bounded few) for a
    /// stream about to open.
    fn deliver(&mut self, subscription: u64, chunk: LogChunk) {
        match self.open.get(&subscription) {
            // A full stream drops the chunk rather than queue without
            // bound.
            Some(tx) => {
                let _ = tx.try_send(chunk);
            }
            None => {
                if self.early.len() >= EARLY_CHUNKS {
                    self.early.pop_front();
                }
                self.early.push_back((subscription, chunk));
            }
        }
    }
}

/// Records pushed for a log subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct LogChunk {
    /// The records, in the order each node logged them.
    pub records: Vec<LogRecord>,
    /// Matching records lost since the subscription began, because this
    /// client or the ring fell behind.
    pub dropped_total: u64,
}

/// An attached client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    node: Node,
    entry: String,
    agent: Pid<AgentCall<Pid<AgentReply>>>,
    inbox: Pid<AgentReply>,
    pending: Pending,
    streams: Streams,
    next_id: Arc<AtomicU64>,
    timeout: Duration,
    hello: HelloReply,
}

impl Client {
    /// Starts a hidden node, connects to the entry node and opens a
    /// session with its agent. Must be called inside a tokio runtime.
    ///
    /// # Errors
    /// [`ClientError::NoNode`], [`ClientError::BadCookie`],
    /// [`ClientError::Timeout`] or an unsupported protocol version
    /// ([`ClientError::Agent`]).
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let name = config.name.clone().unwrap_or_else(|| {
            static NEXT: AtomicU64 = AtomicU64::new(1);
            let n = NEXT.fetch_add(1, Relaxed);
            format!("clustertop-{}-{n}@localhost", std::process::id())
        });
        let mut dist = DistConfig::default()
            .hidden(true)
            .handshake_timeout(config.timeout);
        dist.connect_timeout = config.timeout;
        if let Some(c) = &config.cookie {
            dist = dist.cookie(c.clone());
        }
        let node = Node::start(NodeConfig::new(name).dist(dist)).map_err(|e| match e {
            NodeError::Cookie(c) => ClientError::Cookie(c),
            other => ClientError::Local(other.to_string()),
        })?;
        let entry = node
            .connect(&config.addr)
            .await
            .map_err(|e| connect_error(&config.addr, e))?;
        let agent = node
            .named_on::<AgentCall<Pid<AgentReply>>>(&entry, AGENT_NAME)
            .map_err(|e| ClientError::Local(e.to_string()))?;
        let pending: Pending = Arc::default();
        let streams: Streams = Arc::default();
        let inbox = spawn_inbox(&node, pending.clone(), streams.clone());
        fail_fast_when_down(&node, &entry, pending.clone(), streams.clone());
        let mut client = Client {
            node,
            entry,
            agent,
            inbox,
            pending,
            streams,
            next_id: Arc::new(AtomicU64::new(1)),
            timeout: config.timeout,
            hello: HelloReply {
                version: 0,
                node: String::new(),
                agent_version: String::new(),
            },
        };
        let mut offer = config.version;
        client.hello = loop {
            let hello = Hello {
                version: offer,
                client: config.client.clone(),
            };
            match client.ask(hello).await {
                Ok(reply) => break reply,
                // An older agent: speak its newest version if this client
                // speaks it too.
                Err(ClientError::Agent(e)) => match clustertop_proto::fallback(offer, &e) {
                    Some(older) => offer = older,
                    None => return Err(ClientError::Agent(e)),
                },
                Err(e) => return Err(e),
            }
        };
        Ok(client)
    }

    /// The entry node's name.
    pub fn entry(&self) -> &str {
        &self.entry
    }

    /// The agent's answer to Hello: the session's version, the agent's.
    pub fn hello(&self) -> &HelloReply {
        &self.hello
    }

    /// The client's own (hidden) node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    /// Whether the connection to the entry node is up.
    pub fn is_connected(&self) -> bool {
        self.node.hidden_nodes().contains(&self.entry) || self.node.nodes().contains(&self.entry)
    }

    /// Asks the entry node's agent and waits for the answer, of the type
    /// the request names.
    ///
    /// # Errors
    /// [`ClientError::Timeout`], [`ClientError::Disconnected`], the
    /// agent's error ([`ClientError::Agent`]), or
    /// [`ClientError::Unexpected`] for an answer of another kind, or
    /// [`ClientError::Unsupported`] for a request newer than the session's
    /// protocol version.
    pub async fn ask<C: Call>(&self, request: C) -> Result<C::Reply, ClientError> {
        // Before Hello answers, the session's version is 0 and only Hello
        // goes out.
        if self.hello.version != 0 && C::SINCE > self.hello.version {
            return Err(ClientError::Unsupported {
                node: self.entry.clone(),
                request: C::NAME,
                needs: C::SINCE,
                session: self.hello.version,
            });
        }
        match C::reply(self.request(request.into()).await?) {
            Ok(reply) => Ok(reply),
            Err(Response::Error(e)) => Err(ClientError::Agent(e)),
            Err(other) => Err(unexpected(&other)),
        }
    }

    /// Sends `request` and waits for whatever answers it.
    async fn request(&self, request: Request) -> Result<Response, ClientError> {
        if !self.is_connected() {
            return Err(ClientError::Disconnected(self.entry.clone()));
        }
        let id = self.next_id.fetch_add(1, Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        self.agent.send(AgentCall {
            id,
            reply_to: self.inbox.clone(),
            request,
        });
        let answer = tokio::time::timeout(self.timeout, rx).await;
        self.pending.lock().remove(&id);
        match answer {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(_)) => Err(ClientError::Disconnected(self.entry.clone())),
            Err(_) if !self.is_connected() => Err(ClientError::Disconnected(self.entry.clone())),
            Err(_) => Err(ClientError::Timeout(self.timeout)),
        }
    }

    /// Every node of the cluster, its warnings and top processes.
    ///
    /// # Errors
    /// As [`Client::ask`].
    pub async fn overview(&self) -> Result<ClusterOverview, ClientError> {
        self.ask(GetOverview).await
    }

    /// One node in depth.
    ///
    /// # Errors
    /// As [`Client::ask`].
    pub async fn node_detail(&self, node: &str) -> Result<NodeDetail, ClientError> {
        self.ask(GetNode {
            node: node.to_owned(),
        })
        .await
    }

    /// A page of processes.
    ///
    /// # Errors
    /// As [`Client::ask`].
    pub async fn processes(&self, query: ProcessQuery) -> Result<ProcessPage, ClientError> {
        self.ask(query).await
    }

    /// One process in depth.
    ///
    /// # Errors
    /// As [`Client::ask`].
    pub async fn process(&self, pid: PidRef) -> Result<ProcessDetail, ClientError> {
        self.ask(GetProcess { pid }).await
    }

    /// The supervision trees of `node`.
    ///
    /// # Errors
    /// As [`Client::ask`].
    pub async fn tree(&self, node: &str) -> Result<SupervisionTree, ClientError> {
        self.ask(GetTree {
            node: node.to_owned(),
        })
        .await
    }

    /// Latency histograms of `node`, or of every node.
    ///
    /// # Errors
    /// As [`Client::ask`].
    pub async fn metrics(&self, node: Option<&str>) -> Result<MetricsSnapshot, ClientError> {
        self.ask(GetMetrics {
            node: node.map(str::to_owned),
        })
        .await
    }

    /// Active warnings across the cluster.
    ///
    /// # Errors
    /// As [`Client::ask`].
    pub async fn warnings(&self) -> Result<Vec<Warning>, ClientError> {
        self.ask(GetWarnings).await
    }

    /// Subscribes to the log records of every node that match `filter`.
    /// The stream holds up to `buffer` chunks; when the caller falls
    /// further behind, chunks are dropped (and counted in the next one's
    /// `dropped_total` by the agent only when the agent sees the backlog).
    ///
    /// # Errors
    /// As [`Client::ask`].
    pub async fn subscribe_logs(
        &self,
        filter: LogFilter,
        buffer: usize,
    ) -> Result<LogStream, ClientError> {
        self.subscribe_logs_with_backlog(filter, 0, buffer).await
    }

    /// Like [`Client::subscribe_logs`], first receiving up to `backlog`
    /// recent matching records of each node.
    ///
    /// # Errors
    /// As [`Client::ask`].
    pub async fn subscribe_logs_with_backlog(
        &self,
        filter: LogFilter,
        backlog: u32,
        buffer: usize,
    ) -> Result<LogStream, ClientError> {
        let subscription = self.ask(SubscribeLogs { filter, backlog }).await?;
        let (tx, rx) = mpsc::channel(buffer.max(1));
        self.streams.lock().open(subscription, tx);
        Ok(LogStream {
            subscription,
            rx,
            client: self.clone(),
        })
    }

    /// Ends a log subscription.
    ///
    /// # Errors
    /// As [`Client::ask`].
    pub async fn unsubscribe(&self, subscription: u64) -> Result<(), ClientError> {
        self.streams.lock().open.remove(&subscription);
        self.ask(Unsubscribe { subscription }).await.map(drop)
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.node.disconnect(&self.entry);
    }
}

/// Log records pushed for one subscription.
#[derive(Debug)]
pub struct LogStream {
    subscription: u64,
    rx: mpsc::Receiver<LogChunk>,
    client: Client,
}

impl LogStream {
    /// The subscription's id.
    pub fn id(&self) -> u64 {
        self.subscription
    }

    /// The next chunk; `None` once the subscription or the connection
    /// ended.
    pub async fn next(&mut self) -> Option<LogChunk> {
        self.rx.recv().await
    }

    /// Ends the subscription.
    ///
    /// # Errors
    /// As [`Client::ask`].
    pub async fn close(self) -> Result<(), ClientError> {
        self.client.unsubscribe(self.subscription).await
    }
}

/// When the connection to the entry node goes down, every request
/// waiting on it fails at once (as [`ClientError::Disconnected`]) and
/// every log stream ends, rather than each waiting out its timeout.
fn fail_fast_when_down(node: &Node, entry: &str, pending: Pending, streams: Streams) {
    let Some(mut events) = node.node_events() else {
        return;
    };
    // A connection that went down between the connect and the
    // subscription: checked once the subscription exists.
    let connected = node
        .nodes()
        .iter()
        .chain(&node.hidden_nodes())
        .any(|n| n == entry);
    let entry = entry.to_owned();
    tokio::spawn(async move {
        if connected {
            loop {
                match events.recv().await {
                    Ok(clustertop_runtime::dist::NodeEvent::Down { node, .. }) if node == entry => {
                        break;
                    }
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                }
            }
        }
        // Dropping the senders fails the waiting requests and ends the
        // streams.
        pending.lock().clear();
        let mut table = streams.lock();
        table.open.clear();
        table.early.clear();
    });
}

fn spawn_inbox(node: &Node, pending: Pending, streams: Streams) -> Pid<AgentReply> {
    let pid = node.spawn::<AgentReply, _, _>(move |mut ctx| async move {
        loop {
            let Received::Msg(reply) = ctx.recv().await else {
                continue;
            };
            if reply.id != 0 {
                if let Some(tx) = pending.lock().remove(&reply.id) {
                    let _ = tx.send(reply.response);
                }
                continue;
            }
            if let Response::Logs {
                subscription,
                records,
                dropped_total,
            } = reply.response
            {
                streams.lock().deliver(
                    subscription,
                    LogChunk {
                        records,
                        dropped_total,
                    },
                );
            }
        }
    });
    pid.enable_remote();
    pid
}

fn connect_error(addr: &str, e: ConnectError) -> ClientError {
    match e {
        ConnectError::Handshake(
            HandshakeError::Refused(RefuseReason::BadCookie)
            | HandshakeError::PeerRefused(RefuseReason::BadCookie),
        ) => ClientError::BadCookie(addr.to_owned()),
        ConnectError::Timeout => ClientError::NoNode {
            addr: addr.to_owned(),
            reason: "timed out".into(),
        },
        other => ClientError::NoNode {
            addr: addr.to_owned(),
            reason: other.to_string(),
        },
    }
}

fn unexpected(r: &Response) -> ClientError {
    let text = format!("{r:?}");
    ClientError::Unexpected(text.chars().take(120).collect())
}

#[cfg(test)]
mod stream_tests {
    use super::*;

    fn chunk(n: u64) -> LogChunk {
        LogChunk {
            records: Vec::new(),
            dropped_total: n,
        }
    }

    #[test]
    fn chunks_pushed_before_the_subscription_is_known_reach_its_stream() {
        let mut table = StreamTable::default();
        table.deliver(7, chunk(1));
        table.deliver(8, chunk(2));
        table.deliver(7, chunk(3));
        let (tx, mut rx) = mpsc::channel(8);
        table.open(7, tx);
        table.deliver(7, chunk(4));
        let got: Vec<u64> = std::iter::from_fn(|| rx.try_recv().ok())
            .map(|c| c.dropped_total)
            .collect();
        assert_eq!(got, [1, 3, 4]);
        // Another subscription's early chunk waits for its own stream.
        assert_eq!(table.early.len(), 1);
        // The early ones are bounded.
        for i in 0..1_000 {
            table.deliver(99, chunk(i));
        }
        assert_eq!(table.early.len(), EARLY_CHUNKS);
    }
}
