//! The source of a clustertop cluster: a hidden node of our runtime that
//! connects to one entry node and asks its agent.
//!
//! Requests carry an id; the answer is matched to it, so any number may be
//! in flight. The agent pushes log records to the same inbox with id 0.

use crate::source::{Answer, LogSink, Source};
use crate::{ClientConfig, ClientError, LogChunk};
use clustertop_proto::{AGENT_NAME, AgentCall, AgentReply, Request, Response};
use clustertop_runtime::dist::{ConnectError, DistConfig, HandshakeError, RefuseReason};
use clustertop_runtime::{Node, NodeConfig, NodeError, Pid, Received};
use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;
use tokio::sync::oneshot;

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Response>>>>;

/// Asks the agent of a clustertop node, over the runtime's distribution.
#[derive(Debug)]
pub struct AgentSource {
    node: Node,
    entry: String,
    agent: Pid<AgentCall<Pid<AgentReply>>>,
    inbox: Pid<AgentReply>,
    pending: Pending,
    logs: LogSink,
    next_id: AtomicU64,
    timeout: Duration,
}

impl AgentSource {
    /// Starts a hidden node and connects to the entry node. Must be called
    /// inside a tokio runtime. The session opens with the client's Hello.
    ///
    /// # Errors
    /// [`ClientError::NoNode`] (nothing listens; reported before a missing
    /// cookie), [`ClientError::NotClustertop`], [`ClientError::BadCookie`],
    /// [`ClientError::Cookie`] or [`ClientError::Local`].
    pub async fn connect(config: &ClientConfig) -> Result<AgentSource, ClientError> {
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
        let node = match Node::start(NodeConfig::new(name).dist(dist)) {
            Ok(node) => node,
            // No cookie: but if nothing listens there, that is the news.
            Err(NodeError::Cookie(c)) => {
                let probe = tokio::net::TcpStream::connect(&config.entry);
                return Err(match tokio::time::timeout(config.timeout, probe).await {
                    Ok(Ok(_)) => ClientError::Cookie(c),
                    Ok(Err(e)) => ClientError::NoNode {
                        addr: config.entry.clone(),
                        reason: e.to_string(),
                    },
                    Err(_) => ClientError::NoNode {
                        addr: config.entry.clone(),
                        reason: "timed out".into(),
                    },
                });
            }
            Err(other) => return Err(ClientError::Local(other.to_string())),
        };
        let entry = node
            .connect(&config.entry)
            .await
            .map_err(|e| connect_error(&config.entry, e))?;
        let agent = node
            .dist()
            .named_on::<AgentCall<Pid<AgentReply>>>(&entry, AGENT_NAME)
            .map_err(|e| ClientError::Local(e.to_string()))?;
        let pending: Pending = Arc::default();
        let logs = LogSink::default();
        let inbox = spawn_inbox(&node, pending.clone(), logs.clone());
        fail_fast_when_down(&node, &entry, pending.clone(), logs.clone());
        Ok(AgentSource {
            node,
            entry,
            agent,
            inbox,
            pending,
            logs,
            next_id: AtomicU64::new(1),
            timeout: config.timeout,
        })
    }

    /// The client's own (hidden) node.
    pub fn node(&self) -> &Node {
        &self.node
    }

    async fn ask(&self, request: Request) -> Result<Response, ClientError> {
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
}

impl Source for AgentSource {
    fn entry(&self) -> &str {
        &self.entry
    }

    fn is_connected(&self) -> bool {
        self.node.dist().hidden_nodes().contains(&self.entry)
            || self.node.nodes().contains(&self.entry)
    }

    fn request(&self, request: Request) -> Answer<'_> {
        Box::pin(self.ask(request))
    }

    fn logs(&self) -> &LogSink {
        &self.logs
    }

    fn close(&self) {
        self.node.dist().disconnect(&self.entry);
    }
}

/// When the connection to the entry node goes down, every request
/// waiting on it fails at once (as [`ClientError::Disconnected`]) and
/// every log stream ends, rather than each waiting out its timeout.
fn fail_fast_when_down(node: &Node, entry: &str, pending: Pending, logs: LogSink) {
    let Some(mut events) = node.dist().node_events() else {
        return;
    };
    // A connection that went down between the connect and the
    // subscription: checked once the subscription exists.
    let connected = node
        .nodes()
        .iter()
        .chain(&node.dist().hidden_nodes())
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
        logs.end_all();
    });
}

fn spawn_inbox(node: &Node, pending: Pending, logs: LogSink) -> Pid<AgentReply> {
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
                node,
                records,
                dropped_total,
                backlog,
            } = reply.response
            {
                logs.deliver(
                    subscription,
                    LogChunk {
                        node,
                        records,
                        dropped_total,
                        backlog,
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
        // What answered is not a clustertop node: its first bytes are not
        // a frame of ours.
        ConnectError::Decode(_) | ConnectError::Handshake(HandshakeError::Unexpected(_)) => {
            ClientError::NotClustertop(addr.to_owned())
        }
        other => ClientError::NoNode {
            addr: addr.to_owned(),
            reason: other.to_string(),
        },
    }
}
