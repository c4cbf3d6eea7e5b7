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
//!
//! The answers come from a [`Source`]: [`AgentSource`] for a clustertop
//! cluster, another implementation for another kind of cluster (see
//! `clustertop-beam`), opened with [`Client::open`]. Everything above the
//! client sees only the protocol.

mod agent;
pub mod source;

pub use agent::AgentSource;
use clustertop_proto::{
    Call, ClusterOverview, GetMetrics, GetNode, GetOverview, GetProcess, GetTree, GetWarnings,
    Hello, HelloReply, LogFilter, LogRecord, MetricsSnapshot, NodeDetail, PidRef, ProcessDetail,
    ProcessPage, ProcessQuery, ProtoError, Response, SubscribeLogs, SupervisionTree, Unsubscribe,
    Warning,
};
/// The cookie's environment variable, and a fresh random cookie (for a
/// front end that starts a cluster of its own, as `clustertop demo` does).
pub use clustertop_runtime::dist::{COOKIE_ENV, CookieError, random_cookie};
pub use source::{LogSink, Source};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::mpsc;

/// Where and how to attach.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// The entry node: `host:port` of a clustertop node, or `name@host`
    /// of a BEAM node (`clustertop-beam`).
    pub entry: String,
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
    /// Attach to the node `entry` with the default cookie.
    pub fn new(entry: impl Into<String>) -> Self {
        ClientConfig {
            entry: entry.into(),
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
    /// Something listens at the address, but it does not speak the
    /// clustertop protocol (a metrics or web port, another service).
    #[error(
        "{0} does not speak the clustertop protocol (is it a node's metrics or web port? give the address its distribution listens on)"
    )]
    NotClustertop(String),
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

/// Records pushed for a log subscription.
#[derive(Debug, Clone, PartialEq)]
pub struct LogChunk {
    /// The node the records come from.
    pub node: String,
    /// The records, in the order the node logged them.
    pub records: Vec<LogRecord>,
    /// Matching records lost since the subscription began, because this
    /// client or the ring fell behind.
    pub dropped_total: u64,
    /// Whether these are the node's backlog: its last matching records
    /// from before the subscription. Each node sends one such chunk first,
    /// even when empty; every other chunk holds records logged after it.
    pub backlog: bool,
}

/// An attached client. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    source: Arc<dyn Source>,
    hello: HelloReply,
}

impl Client {
    /// Starts a hidden node, connects to the entry node and opens a
    /// session with its agent ([`AgentSource`]). Must be called inside a
    /// tokio runtime.
    ///
    /// # Errors
    /// [`ClientError::NoNode`], [`ClientError::BadCookie`],
    /// [`ClientError::Timeout`] or an unsupported protocol version
    /// ([`ClientError::Agent`]).
    pub async fn connect(config: ClientConfig) -> Result<Client, ClientError> {
        let source = AgentSource::connect(&config).await?;
        Client::open(Arc::new(source), &config.client, config.version).await
    }

    /// Opens a session over `source`: offers protocol `version` in Hello,
    /// and falls back to an older one the source names if this crate
    /// speaks it too.
    ///
    /// # Errors
    /// As [`Client::ask`]; an unsupported version is
    /// [`ClientError::Agent`].
    pub async fn open(
        source: Arc<dyn Source>,
        client: &str,
        version: u32,
    ) -> Result<Client, ClientError> {
        let mut this = Client {
            source,
            hello: HelloReply {
                version: 0,
                node: String::new(),
                agent_version: String::new(),
            },
        };
        let mut offer = version;
        this.hello = loop {
            let hello = Hello {
                version: offer,
                client: client.to_owned(),
            };
            match this.ask(hello).await {
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
        Ok(this)
    }

    /// The entry node's name.
    pub fn entry(&self) -> &str {
        self.source.entry()
    }

    /// The agent's answer to Hello: the session's version, the agent's.
    pub fn hello(&self) -> &HelloReply {
        &self.hello
    }

    /// Where the answers come from.
    pub fn source(&self) -> &Arc<dyn Source> {
        &self.source
    }

    /// Whether the connection to the entry node is up.
    pub fn is_connected(&self) -> bool {
        self.source.is_connected()
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
                node: self.entry().to_owned(),
                request: C::NAME,
                needs: C::SINCE,
                session: self.hello.version,
            });
        }
        match C::reply(self.source.request(request.into()).await?) {
            Ok(reply) => Ok(reply),
            Err(Response::Error(e)) => Err(ClientError::Agent(e)),
            Err(other) => Err(unexpected(&other)),
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
        self.source.logs().open(subscription, tx);
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
        self.source.logs().remove(subscription);
        self.ask(Unsubscribe { subscription }).await.map(drop)
    }

    /// Closes the connection.
    pub fn close(&self) {
        self.source.close();
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

fn unexpected(r: &Response) -> ClientError {
    let text = format!("{r:?}");
    ClientError::Unexpected(text.chars().take(120).collect())
}
