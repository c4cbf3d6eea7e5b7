//! The agent-to-agent service: what the entry node's agent asks every
//! other agent for its part of a cluster-wide answer, and how it asks
//! (all nodes at once, each within the per-node timeout).

use super::subscriptions::LogBatch;
use crate::state::{PushSub, Shared};
use clustertop_proto::{
    Histogram, LogFilter, NodeDetail, NodeSummary, PidRef, ProcessDetail, ProcessPage,
    ProcessQuery, ProcessRow, SupervisionTree, Warning,
};
use clustertop_runtime::gen_server::ServerMsg;
use clustertop_runtime::{CallError, CallResult, ExitReason, GenServer, Pid, ServerContext};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The registered name of the service other agents call.
pub(crate) const PEER_NAME: &str = "clustertop_agent_peer";

/// What one agent asks another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PeerCall {
    /// Summary, warnings and top processes.
    Summary {
        /// Top processes wanted.
        top_k: u32,
    },
    /// Node detail.
    Detail,
    /// A page of processes.
    Processes(ProcessQuery),
    /// One process.
    Process(PidRef),
    /// Supervision trees.
    Tree,
    /// Histograms.
    Metrics,
    /// Warnings.
    Warnings,
    /// Push matching records to `relay` from now on.
    Subscribe {
        /// The entry node's subscription id.
        id: u64,
        /// Which records.
        filter: LogFilter,
        /// The entry node's relay.
        relay: Pid<LogBatch>,
        /// Recent matching records to send first.
        backlog: u32,
    },
    /// Stop pushing for subscription `id` of `relay_node`.
    Unsubscribe {
        /// The subscription.
        id: u64,
        /// The entry node.
        relay_node: String,
    },
}

/// What an agent answers another.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum PeerReply {
    /// To [`PeerCall::Summary`].
    Summary {
        /// The node.
        summary: NodeSummary,
        /// Its warnings.
        warnings: Vec<Warning>,
        /// Its top processes.
        top: Vec<ProcessRow>,
    },
    /// To [`PeerCall::Detail`].
    Detail(NodeDetail),
    /// To [`PeerCall::Processes`].
    Processes(ProcessPage),
    /// To [`PeerCall::Process`].
    Process(Option<Box<ProcessDetail>>),
    /// To [`PeerCall::Tree`].
    Tree(SupervisionTree),
    /// To [`PeerCall::Metrics`].
    Metrics(Vec<Histogram>),
    /// To [`PeerCall::Warnings`].
    Warnings(Vec<Warning>),
    /// Done.
    Ok,
}

/// The service other agents call.
#[derive(Debug)]
pub struct PeerServer {
    shared: Arc<Shared>,
}

/// Carries the agent's state into [`PeerServer::init`].
#[derive(Debug, Clone)]
pub struct PeerArgs(pub(crate) Arc<Shared>);

impl GenServer for PeerServer {
    type Args = PeerArgs;
    type Call = PeerCall;
    type Reply = PeerReply;
    type Cast = ();
    type Info = ();

    async fn init(args: PeerArgs, ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        ctx.enable_remote();
        Ok(PeerServer { shared: args.0 })
    }

    async fn handle_call(
        &mut self,
        request: PeerCall,
        _ctx: &mut ServerContext<Self>,
    ) -> CallResult<PeerReply> {
        CallResult::Reply(answer_local(&self.shared, request))
    }
}

/// This node's answer to a peer call.
pub(crate) fn answer_local(shared: &Shared, call: PeerCall) -> PeerReply {
    match call {
        PeerCall::Summary { top_k } => PeerReply::Summary {
            summary: shared.summary(),
            warnings: shared.warnings(),
            top: shared.top(top_k),
        },
        PeerCall::Detail => PeerReply::Detail(shared.detail()),
        PeerCall::Processes(q) => PeerReply::Processes(shared.processes(&q)),
        PeerCall::Process(pid) => PeerReply::Process(shared.process(&pid).map(Box::new)),
        PeerCall::Tree => PeerReply::Tree(shared.tree()),
        PeerCall::Metrics => PeerReply::Metrics(shared.metrics()),
        PeerCall::Warnings => PeerReply::Warnings(shared.warnings()),
        PeerCall::Subscribe {
            id,
            filter,
            relay,
            backlog,
        } => {
            let cursor = shared.ring.cursor_before(&filter, backlog as usize);
            let mut pushes = shared.pushes.lock();
            pushes.retain(|p| !(p.id == id && p.relay.node_name() == relay.node_name()));
            pushes.push(PushSub {
                id,
                filter,
                relay,
                cursor,
                dropped: 0,
            });
            PeerReply::Ok
        }
        PeerCall::Unsubscribe { id, relay_node } => {
            shared
                .pushes
                .lock()
                .retain(|p| !(p.id == id && p.relay.node_name() == relay_node));
            PeerReply::Ok
        }
    }
}

/// Why a node gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    Slow,
    Down,
}

/// Asks `node`'s agent (this one directly).
pub(crate) async fn ask(shared: &Shared, node: &str, call: PeerCall) -> Result<PeerReply, Miss> {
    if node == shared.node.name() {
        return Ok(answer_local(shared, call));
    }
    if !shared.node.nodes().iter().any(|n| n == node) {
        return Err(Miss::Down);
    }
    let Ok(peer) = shared
        .node
        .named_on::<ServerMsg<PeerServer>>(node, PEER_NAME)
    else {
        return Err(Miss::Down);
    };
    match peer.call(call, shared.config.peer_timeout).await {
        Ok(reply) => Ok(reply),
        Err(CallError::Timeout) => Err(Miss::Slow),
        Err(e) => {
            tracing::debug!(peer = node, error = %e, "agent peer call failed");
            Err(Miss::Down)
        }
    }
}

/// This node and every connected visible node.
pub(crate) fn cluster(shared: &Shared) -> Vec<String> {
    let mut nodes = vec![shared.node.name().to_owned()];
    nodes.extend(shared.node.nodes());
    nodes
}

/// Asks every connected node at once.
pub(crate) async fn ask_all(
    shared: &Shared,
    call: &PeerCall,
) -> Vec<(String, Result<PeerReply, Miss>)> {
    let nodes = cluster(shared);
    let answers =
        futures_util::future::join_all(nodes.iter().map(|n| ask(shared, n, call.clone()))).await;
    nodes.into_iter().zip(answers).collect()
}
