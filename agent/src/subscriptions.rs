//! Log subscriptions, both ends of them.
//!
//! - **Feeds** (every node): for each subscription any entry node made
//!   here, a cursor into this node's log ring and the entry node's relay.
//!   Every 100 ms the pusher sends each feed its new matching records.
//! - **Client subscriptions** (the entry node): for each subscription a
//!   client made, the client and the drop counts each node reported. The
//!   relay process forwards every node's batches to the client.
//!
//! # Bad input and slow readers
//! A destination that is behind — its node link has more than
//! `log_backlog` bytes queued, or its mailbox more than `log_backlog /
//! 1024` batches — gets no batch: the records are dropped and counted, and
//! the count reaches the client with its next records. A feed sends at
//! most `log_batch` records per push.

use crate::logs::LogRing;
use clustertop_proto::{AgentReply, LogFilter, LogRecord, Response};
use clustertop_runtime::{Message, Node, Pid};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Log records from one node for one subscription, on their way to the
/// entry node's relay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct LogBatch {
    subscription: u64,
    node: String,
    records: Vec<LogRecord>,
    /// Records this node dropped for the subscription (monotonic).
    dropped_total: u64,
    /// Whether these are the node's backlog (see [`Response::Logs`]).
    backlog: bool,
}

/// A subscription this node feeds.
#[derive(Debug)]
struct Feed {
    id: u64,
    filter: LogFilter,
    relay: Pid<LogBatch>,
    cursor: u64,
    dropped: u64,
}

/// A client's subscription, kept by its entry node.
#[derive(Debug)]
struct ClientSub {
    client: Pid<AgentReply>,
    filter: LogFilter,
    /// The drop count each node last reported.
    dropped: HashMap<String, u64>,
    /// Records the relay dropped because the client was behind.
    relay_dropped: u64,
}

/// Limits of one push (from the agent's configuration).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PushLimits {
    /// Records per feed per push.
    pub(crate) batch: usize,
    /// Bytes queued (or `backlog / 1024` batches) past which a destination
    /// is behind.
    pub(crate) backlog: usize,
}

/// Both ends of this node's log subscriptions.
#[derive(Debug)]
pub(crate) struct Subscriptions {
    ring: Arc<LogRing>,
    feeds: Mutex<Vec<Feed>>,
    clients: Mutex<HashMap<u64, ClientSub>>,
    relay: Mutex<Option<Pid<LogBatch>>>,
    next_id: AtomicU64,
}

impl Subscriptions {
    pub(crate) fn new(ring: Arc<LogRing>) -> Self {
        Subscriptions {
            ring,
            feeds: Mutex::new(Vec::new()),
            clients: Mutex::new(HashMap::new()),
            relay: Mutex::new(None),
            next_id: AtomicU64::new(1),
        }
    }

    /// This node's log ring.
    pub(crate) fn ring(&self) -> &LogRing {
        &self.ring
    }

    /// The relay process of this node, once it runs.
    pub(crate) fn relay(&self) -> Option<Pid<LogBatch>> {
        self.relay.lock().clone()
    }

    pub(crate) fn set_relay(&self, relay: Pid<LogBatch>) {
        *self.relay.lock() = Some(relay);
    }

    /// Subscriptions this node feeds.
    pub(crate) fn feeds(&self) -> usize {
        self.feeds.lock().len()
    }

    // ---- the entry node's side ----

    /// A client subscribes: returns the subscription's id.
    pub(crate) fn open(&self, client: Pid<AgentReply>, filter: LogFilter) -> u64 {
        let id = self.next_id.fetch_add(1, Relaxed);
        self.clients.lock().insert(
            id,
            ClientSub {
                client,
                filter,
                dropped: HashMap::new(),
                relay_dropped: 0,
            },
        );
        id
    }

    /// Ends a client's subscription; `false` if there was none.
    pub(crate) fn close(&self, id: u64) -> bool {
        self.clients.lock().remove(&id).is_some()
    }

    /// Every client subscription's id and filter (to extend them to a node
    /// that joins).
    pub(crate) fn client_filters(&self) -> Vec<(u64, LogFilter)> {
        self.clients
            .lock()
            .iter()
            .map(|(id, s)| (*id, s.filter.clone()))
            .collect()
    }

    /// The subscriptions of clients on `node`.
    pub(crate) fn clients_on(&self, node: &str) -> Vec<u64> {
        self.clients
            .lock()
            .iter()
            .filter(|(_, s)| s.client.node_name() == node)
            .map(|(id, _)| *id)
            .collect()
    }

    /// Forwards a node's batch to its client.
    pub(crate) fn relay_batch(&self, node: &Node, batch: LogBatch, limits: PushLimits) {
        let mut clients = self.clients.lock();
        let Some(sub) = clients.get_mut(&batch.subscription) else {
            return;
        };
        sub.dropped.insert(batch.node.clone(), batch.dropped_total);
        if backed_up(node, &sub.client, limits.backlog) {
            sub.relay_dropped += batch.records.len() as u64;
            return;
        }
        let dropped_total = sub.relay_dropped + sub.dropped.values().sum::<u64>();
        sub.client.send(AgentReply {
            id: 0,
            response: Response::Logs {
                subscription: batch.subscription,
                node: batch.node,
                records: batch.records,
                dropped_total,
                backlog: batch.backlog,
            },
        });
    }

    // ---- every node's side ----

    /// Starts feeding subscription `id` of `relay`'s node: at once its
    /// backlog (up to `backlog` recent matching records, in one batch sent
    /// even when empty, so the client knows this node's backlog is whole),
    /// then, every push, what was logged after it.
    pub(crate) fn feed(
        &self,
        node: &Node,
        id: u64,
        filter: LogFilter,
        relay: Pid<LogBatch>,
        backlog: u32,
    ) {
        let (records, cursor) = self.ring.tail(&filter, backlog as usize);
        relay.send(LogBatch {
            subscription: id,
            node: node.name().to_owned(),
            records,
            dropped_total: 0,
            backlog: true,
        });
        let mut feeds = self.feeds.lock();
        feeds.retain(|f| !(f.id == id && f.relay.node_name() == relay.node_name()));
        feeds.push(Feed {
            id,
            filter,
            relay,
            cursor,
            dropped: 0,
        });
    }

    /// Stops feeding subscription `id` of `relay_node`.
    pub(crate) fn unfeed(&self, id: u64, relay_node: &str) {
        self.feeds
            .lock()
            .retain(|f| !(f.id == id && f.relay.node_name() == relay_node));
    }

    /// Stops feeding the relays of `node`.
    pub(crate) fn unfeed_node(&self, node: &str) {
        self.feeds.lock().retain(|f| f.relay.node_name() != node);
    }

    /// Sends each feed its new records.
    pub(crate) fn push(&self, node: &Node, limits: PushLimits) {
        let mut feeds = self.feeds.lock();
        for feed in feeds.iter_mut() {
            let read = self.ring.read(feed.cursor, &feed.filter, limits.batch);
            feed.cursor = read.cursor;
            feed.dropped += read.missed;
            if read.records.is_empty() && read.missed == 0 {
                continue;
            }
            if backed_up(node, &feed.relay, limits.backlog) {
                feed.dropped += read.records.len() as u64;
                continue;
            }
            feed.relay.send(LogBatch {
                subscription: feed.id,
                node: node.name().to_owned(),
                records: read.records,
                dropped_total: feed.dropped,
                backlog: false,
            });
        }
    }

    /// Forgets every subscription (the agent stops).
    pub(crate) fn clear(&self) {
        self.feeds.lock().clear();
        self.clients.lock().clear();
    }
}

/// Whether `pid` is behind: its node link or its mailbox holds more than
/// `backlog`.
fn backed_up<M: Message>(node: &Node, pid: &Pid<M>, backlog: usize) -> bool {
    if pid.is_local() {
        node.introspect()
            .process_info(pid.id())
            .is_some_and(|i| i.mailbox_len > (backlog / 1024).max(16) as u64)
    } else {
        node.dist()
            .peer_stats()
            .iter()
            .find(|p| p.node == pid.node_name())
            .is_some_and(|p| p.queued_bytes > backlog as u64)
    }
}
