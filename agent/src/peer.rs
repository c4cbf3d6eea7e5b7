//! The agent-to-agent service: what the entry node's agent asks every
//! other agent for its part of a cluster-wide answer, and how it asks (all
//! nodes at once, each within the per-node timeout).
//!
//! Private to the agent: a GenServer registered as `clustertop_agent_peer`
//! on every node, whose calls are typed — each request names its reply
//! ([`PeerAsk`]), so the one place a reply of the wrong kind can appear is
//! [`ask`], which reports it as [`Miss::Bad`].

use crate::local;
use crate::registry;
use crate::state::State;
use crate::subscriptions::LogBatch;
use clustertop_proto::{
    Histogram, LogFilter, NodeDetail, NodeRegistry, NodeSummary, NodeTelemetry, PidRef,
    ProcessDetail, ProcessPage, ProcessQuery, ProcessRegistry, ProcessRow, ProtoError,
    SupervisionTree, Warning,
};
use clustertop_runtime::gen_server::ServerMsg;
use clustertop_runtime::{CallError, CallResult, ExitReason, GenServer, Pid, ServerContext};
use serde::{Deserialize, Serialize};
use std::sync::Arc;

/// The registered name of the service other agents call.
pub(crate) const PEER_NAME: &str = "clustertop_agent_peer";

/// A request from one agent to another that names its reply.
pub(crate) trait PeerAsk: Into<PeerCall> {
    /// What the other agent answers.
    type Reply;
    /// The answer of this node's agent.
    fn answer(self, state: &State) -> Self::Reply;
    /// The answer as it travels.
    fn wrap(reply: Self::Reply) -> PeerReply;
    /// The answer out of what arrived; `None` for a reply of another kind.
    fn take(reply: PeerReply) -> Option<Self::Reply>;
}

/// A node's summary, warnings and top processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Summary {
    pub(crate) top_k: u32,
}

/// The answer to [`Summary`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct NodeReport {
    pub(crate) summary: NodeSummary,
    pub(crate) warnings: Vec<Warning>,
    pub(crate) top: Vec<ProcessRow>,
}

/// The node in depth.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Detail;

/// One process of the node.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Process(pub(crate) PidRef);

/// The node's supervision trees.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Tree;

/// The node's histograms.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Metrics;

/// The node's active warnings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Warnings;

/// The node's registries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Registries;

/// One process's registries.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProcessRegistries(pub(crate) PidRef);

/// The node's telemetry.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Telemetry;

/// One process's traced handlings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ProcessTraces(pub(crate) PidRef);

/// Push matching records to `relay` from now on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Feed {
    /// The entry node's subscription id.
    pub(crate) id: u64,
    pub(crate) filter: LogFilter,
    /// The entry node's relay.
    pub(crate) relay: Pid<LogBatch>,
    /// Recent matching records to send first.
    pub(crate) backlog: u32,
}

/// Stop pushing for subscription `id` of `relay_node`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct Unfeed {
    pub(crate) id: u64,
    pub(crate) relay_node: String,
}

/// What one agent asks another, as it travels.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum PeerCall {
    Summary(Summary),
    Detail(Detail),
    Processes(ProcessQuery),
    Process(Process),
    Tree(Tree),
    Metrics(Metrics),
    Warnings(Warnings),
    Feed(Feed),
    Unfeed(Unfeed),
    Registries(Registries),
    ProcessRegistries(ProcessRegistries),
    Telemetry(Telemetry),
    ProcessTraces(ProcessTraces),
}

/// What an agent answers another, as it travels: the variant of its
/// call, with the call's reply.
// Built once, sent and dropped (see `clustertop_proto::Response`).
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum PeerReply {
    Summary(NodeReport),
    Detail(NodeDetail),
    Processes(ProcessPage),
    Process(Result<ProcessDetail, ProtoError>),
    Tree(SupervisionTree),
    Metrics(Vec<Histogram>),
    Warnings(Vec<Warning>),
    Feed(()),
    Unfeed(()),
    Registries(NodeRegistry),
    ProcessRegistries(Option<ProcessRegistry>),
    Telemetry(NodeTelemetry),
    ProcessTraces(Option<clustertop_proto::ProcessTraces>),
}

/// For each request: its variant in [`PeerCall`] and [`PeerReply`], its
/// reply type, and this node's answer.
macro_rules! peer_asks {
    ($($request:ty => $variant:ident($reply:ty), |$req:pat_param, $state:ident| $answer:expr;)*) => {$(
        impl From<$request> for PeerCall {
            fn from(r: $request) -> PeerCall {
                PeerCall::$variant(r)
            }
        }

        impl PeerAsk for $request {
            type Reply = $reply;

            fn answer(self, $state: &State) -> $reply {
                let $req = self;
                $answer
            }

            fn wrap(reply: $reply) -> PeerReply {
                PeerReply::$variant(reply)
            }

            fn take(reply: PeerReply) -> Option<$reply> {
                match reply {
                    PeerReply::$variant(r) => Some(r),
                    _ => None,
                }
            }
        }
    )*};
}

peer_asks! {
    Summary => Summary(NodeReport), |r, state| NodeReport {
        summary: local::summary(state),
        warnings: state.active_warnings(),
        top: local::top(state, r.top_k),
    };
    Detail => Detail(NodeDetail), |_, state| local::detail(state);
    ProcessQuery => Processes(ProcessPage), |q, state| local::processes(state, &q);
    Process => Process(Result<ProcessDetail, ProtoError>), |p, state| local::process(state, &p.0);
    Tree => Tree(SupervisionTree), |_, state| local::tree(state);
    Metrics => Metrics(Vec<Histogram>), |_, state| local::metrics(state);
    Warnings => Warnings(Vec<Warning>), |_, state| state.active_warnings();
    Feed => Feed(()), |f, state| state.logs.feed(&state.node, f.id, f.filter, f.relay, f.backlog);
    Unfeed => Unfeed(()), |u, state| state.logs.unfeed(u.id, &u.relay_node);
    Registries => Registries(NodeRegistry), |_, state| registry::node_registry(state);
    ProcessRegistries => ProcessRegistries(Option<ProcessRegistry>),
        |p, state| registry::process_registry(state, &p.0);
    Telemetry => Telemetry(NodeTelemetry), |_, state| state.telemetry.lock().answer(state.node.name());
    ProcessTraces => ProcessTraces(Option<clustertop_proto::ProcessTraces>),
        |p, state| crate::telemetry::process_traces(&state.node, &p.0);
}

fn serve<R: PeerAsk>(request: R, state: &State) -> PeerReply {
    R::wrap(request.answer(state))
}

/// This node's answer to a call from another agent.
fn answer(state: &State, call: PeerCall) -> PeerReply {
    match call {
        PeerCall::Summary(r) => serve(r, state),
        PeerCall::Detail(r) => serve(r, state),
        PeerCall::Processes(r) => serve(r, state),
        PeerCall::Process(r) => serve(r, state),
        PeerCall::Tree(r) => serve(r, state),
        PeerCall::Metrics(r) => serve(r, state),
        PeerCall::Warnings(r) => serve(r, state),
        PeerCall::Feed(r) => serve(r, state),
        PeerCall::Unfeed(r) => serve(r, state),
        PeerCall::Registries(r) => serve(r, state),
        PeerCall::ProcessRegistries(r) => serve(r, state),
        PeerCall::Telemetry(r) => serve(r, state),
        PeerCall::ProcessTraces(r) => serve(r, state),
    }
}

/// The service other agents call.
#[derive(Debug)]
pub(crate) struct PeerServer {
    state: Arc<State>,
}

impl GenServer for PeerServer {
    type Args = Arc<State>;
    type Call = PeerCall;
    type Reply = PeerReply;
    type Cast = ();
    type Info = ();

    async fn init(state: Arc<State>, ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        ctx.enable_remote();
        Ok(PeerServer { state })
    }

    async fn handle_call(
        &mut self,
        request: PeerCall,
        _ctx: &mut ServerContext<Self>,
    ) -> CallResult<PeerReply> {
        CallResult::Reply(answer(&self.state, request))
    }
}

/// Why a node gave no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Miss {
    /// It did not answer within the per-node timeout.
    Slow,
    /// It is not connected (or its agent is gone).
    Down,
    /// Its agent answered with a reply of another kind (another version).
    Bad,
}

/// Asks `node`'s agent (this one directly, without a call).
pub(crate) async fn ask<R: PeerAsk>(
    state: &State,
    node: &str,
    request: R,
) -> Result<R::Reply, Miss> {
    if node == state.node.name() {
        return Ok(request.answer(state));
    }
    if !state.node.nodes().iter().any(|n| n == node) {
        return Err(Miss::Down);
    }
    let Ok(peer) = state
        .node
        .dist()
        .named_on::<ServerMsg<PeerServer>>(node, PEER_NAME)
    else {
        return Err(Miss::Down);
    };
    match peer.call(request.into(), state.config.peer_timeout).await {
        Ok(reply) => R::take(reply).ok_or_else(|| {
            tracing::warn!(
                peer = node,
                "an agent answered with a reply of another kind"
            );
            Miss::Bad
        }),
        Err(CallError::Timeout) => Err(Miss::Slow),
        Err(e) => {
            tracing::debug!(peer = node, error = %e, "agent peer call failed");
            Err(Miss::Down)
        }
    }
}

/// This node and every connected visible node.
pub(crate) fn cluster(state: &State) -> Vec<String> {
    let mut nodes = vec![state.node.name().to_owned()];
    nodes.extend(state.node.nodes());
    nodes
}

/// Asks every connected node at once.
pub(crate) async fn ask_all<R: PeerAsk + Clone>(
    state: &State,
    request: &R,
) -> Vec<(String, Result<R::Reply, Miss>)> {
    let nodes = cluster(state);
    let answers =
        futures_util::future::join_all(nodes.iter().map(|n| ask(state, n, request.clone()))).await;
    nodes.into_iter().zip(answers).collect()
}
