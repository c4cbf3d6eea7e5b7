//! Log subscriptions: each node's pusher sends a subscription's new
//! records every 100 ms to the entry node's relay, which forwards them to
//! the client. A destination that is behind (its link queue or mailbox
//! past the backlog) gets no batch: the records are counted as dropped.

use super::peer::{PeerCall, ask_all};
use crate::state::Shared;
use clustertop_proto::{AgentReply, LogFilter, LogRecord, ProtoError, Response};
use clustertop_runtime::{Node, Pid};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// Log records from one node for one subscription, on their way to the
/// entry node's relay.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogBatch {
    subscription: u64,
    node: String,
    records: Vec<LogRecord>,
    /// Records this node dropped for the subscription (monotonic).
    dropped_total: u64,
}

/// A client's subscription, kept by the entry node.
#[derive(Debug)]
pub(crate) struct RelaySub {
    pub(crate) client: Pid<AgentReply>,
    pub(crate) filter: LogFilter,
    dropped: HashMap<String, u64>,
    relay_dropped: u64,
}

pub(crate) async fn subscribe(
    shared: &Shared,
    client: Pid<AgentReply>,
    filter: LogFilter,
    backlog: u32,
) -> Response {
    let Some(relay) = shared.relay.lock().clone() else {
        return Response::Error(ProtoError::Other("the log relay is not running".into()));
    };
    let id = shared
        .next_id
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    shared.relays.lock().insert(
        id,
        RelaySub {
            client,
            filter: filter.clone(),
            dropped: HashMap::new(),
            relay_dropped: 0,
        },
    );
    let call = PeerCall::Subscribe {
        id,
        filter,
        relay,
        backlog,
    };
    for (node, answer) in ask_all(shared, &call).await {
        if answer.is_err() {
            tracing::warn!(peer = %node, "could not subscribe to the logs of a node");
        }
    }
    Response::Subscribed { subscription: id }
}

pub(crate) async fn unsubscribe(shared: &Shared, id: u64) {
    if shared.relays.lock().remove(&id).is_none() {
        return;
    }
    let call = PeerCall::Unsubscribe {
        id,
        relay_node: shared.node.name().to_owned(),
    };
    ask_all(shared, &call).await;
}

/// Whether `pid` is behind: its node link or its mailbox holds more than
/// the configured backlog.
fn backed_up<M: clustertop_runtime::Message>(node: &Node, pid: &Pid<M>, backlog: usize) -> bool {
    if pid.is_local() {
        node.process_info(pid.id())
            .is_some_and(|i| i.mailbox_len > (backlog / 1024).max(16) as u64)
    } else {
        node.peer_stats()
            .iter()
            .find(|p| p.node == pid.node_name())
            .is_some_and(|p| p.queued_bytes > backlog as u64)
    }
}

/// Sends each subscription its new records.
pub(crate) fn push_logs(shared: &Shared) {
    let mut pushes = shared.pushes.lock();
    for sub in pushes.iter_mut() {
        let read = shared
            .ring
            .read(sub.cursor, &sub.filter, shared.config.log_batch);
        sub.cursor = read.cursor;
        sub.dropped += read.missed;
        if read.records.is_empty() && read.missed == 0 {
            continue;
        }
        if backed_up(&shared.node, &sub.relay, shared.config.log_backlog) {
            sub.dropped += read.records.len() as u64;
            continue;
        }
        sub.relay.send(LogBatch {
            subscription: sub.id,
            node: shared.node.name().to_owned(),
            records: read.records,
            dropped_total: sub.dropped,
        });
    }
}

/// Forwards a batch to its client.
pub(crate) fn relay(shared: &Shared, batch: LogBatch) {
    let mut relays = shared.relays.lock();
    let Some(sub) = relays.get_mut(&batch.subscription) else {
        return;
    };
    sub.dropped.insert(batch.node, batch.dropped_total);
    if backed_up(&shared.node, &sub.client, shared.config.log_backlog) {
        sub.relay_dropped += batch.records.len() as u64;
        return;
    }
    let dropped_total = sub.relay_dropped + sub.dropped.values().sum::<u64>();
    sub.client.send(AgentReply {
        id: 0,
        response: Response::Logs {
            subscription: batch.subscription,
            records: batch.records,
            dropped_total,
        },
    });
}
