//! The agent's processes, and what starts and stops them.
//!
//! Every node runs these system processes:
//! - `clustertop_agent` (the attach service): takes
//!   [`AgentCall`]s from clients (hidden nodes) and answers each from a
//!   task of its own, so a slow fan-out never holds up other requests;
//! - `clustertop_agent_peer`: the GenServer other nodes' agents call for
//!   this node's part of a cluster-wide answer;
//! - the sampler, which also follows node up/down events;
//! - the log pusher, which sends each fed subscription its new records
//!   every 100 ms, and the relay, which forwards records from every node
//!   to the subscribed clients of this (entry) node.

use crate::error::AgentError;
use crate::peer::{PEER_NAME, PeerServer};
use crate::service;
use crate::state::State;
use crate::subscriptions::LogBatch;
use clustertop_proto::time::unix_ms;
use clustertop_proto::{AGENT_NAME, AgentCall, AgentReply};
use clustertop_runtime::dist::NodeEvent;
use clustertop_runtime::gen_server;
use clustertop_runtime::{
    Context, ExitReason, Node, Pid, ProcessId, Received, ServerOptions, SpawnOptions,
};
use std::sync::Arc;
use std::time::Duration;

const RELAY_NAME: &str = "clustertop_agent_relay";
/// How often the pusher sends new log records.
const PUSH_EVERY: Duration = Duration::from_millis(100);

/// Node up and down: membership, link flaps, and subscriptions and
/// sessions that die with a node. The bookkeeping is done here, in event
/// order; the calls to other agents it causes run as tasks of their own,
/// so a slow node never holds up the sampler.
fn on_node_event(state: &Arc<State>, event: NodeEvent) {
    match event {
        NodeEvent::Up { node, hidden } => {
            if hidden {
                return;
            }
            state.membership.seen_up(&node, unix_ms());
            if state.logs.client_filters().is_empty() {
                return;
            }
            let s = state.clone();
            state.node.handle().spawn(async move {
                service::extend_subscriptions(&s, &node).await;
            });
        }
        NodeEvent::Down { node, .. } => {
            state.membership.went_down(&node, unix_ms());
            state.logs.unfeed_node(&node);
            let gone = state.logs.clients_on(&node);
            if !gone.is_empty() {
                let s = state.clone();
                state.node.handle().spawn(async move {
                    for id in gone {
                        service::unsubscribe(&s, id).await;
                    }
                });
            }
            let n = &state.node;
            state
                .sessions
                .close_where(|id| n.dist().node_of(id).is_some_and(|name| name == node));
        }
    }
}

fn system(behaviour: &'static str) -> SpawnOptions {
    SpawnOptions::new().system(true).behaviour(behaviour)
}

/// Starts the agent's processes.
pub(crate) async fn start(state: &Arc<State>) -> Result<(), AgentError> {
    let node = state.node.clone();
    let peer = gen_server::start::<PeerServer>(
        &node,
        state.clone(),
        ServerOptions::new().name(PEER_NAME).system(true),
    )
    .await
    .map_err(|source| AgentError::Start {
        server: PEER_NAME,
        source,
    })?;
    let mut pids = vec![peer.id()];

    let s = state.clone();
    let attach = node.spawn_opts(
        system("clustertop_agent.attach"),
        move |mut ctx: Context<AgentCall<Pid<AgentReply>>>| async move {
            ctx.enable_remote();
            loop {
                if let Received::Msg(call) = ctx.recv().await {
                    let s = s.clone();
                    s.node.handle().clone().spawn(async move {
                        let response = service::answer(&s, &call.reply_to, call.request).await;
                        call.reply_to.send(AgentReply {
                            id: call.id,
                            response,
                        });
                    });
                }
            }
        },
    );
    pids.push(attach.id());
    register(&node, AGENT_NAME, attach.id(), &pids)?;

    let s = state.clone();
    let relay = node.spawn_opts(
        system("clustertop_agent.relay"),
        move |mut ctx: Context<LogBatch>| async move {
            ctx.enable_remote();
            loop {
                if let Received::Msg(batch) = ctx.recv().await {
                    s.logs.relay_batch(&s.node, batch, s.push_limits());
                }
            }
        },
    );
    relay.enable_remote();
    pids.push(relay.id());
    register(&node, RELAY_NAME, relay.id(), &pids)?;
    state.logs.set_relay(relay);

    let s = state.clone();
    let pusher = node.spawn_opts(
        system("clustertop_agent.logs"),
        move |mut ctx: Context<()>| async move {
            loop {
                let _ = ctx.recv_timeout(PUSH_EVERY).await;
                s.logs.push(&s.node, s.push_limits());
            }
        },
    );
    pids.push(pusher.id());

    let s = state.clone();
    let sampler = node.spawn_opts(
        system("clustertop_agent.sampler"),
        move |mut ctx: Context<()>| async move {
            ctx.monitor_nodes(true);
            s.sample().await;
            let mut next = tokio::time::Instant::now() + s.config.interval;
            loop {
                let wait = next.saturating_duration_since(tokio::time::Instant::now());
                match ctx.recv_timeout(wait).await {
                    Some(Received::Node(event)) => on_node_event(&s, event),
                    Some(_) => {}
                    None => {
                        s.sample().await;
                        next += s.config.interval;
                        let now = tokio::time::Instant::now();
                        if next < now {
                            next = now + s.config.interval;
                        }
                    }
                }
            }
        },
    );
    pids.push(sampler.id());
    for n in node.nodes() {
        state.membership.seen_up(&n, unix_ms());
    }
    *state.pids.lock() = pids;
    Ok(())
}

fn register(
    node: &Node,
    name: &'static str,
    id: ProcessId,
    pids: &[ProcessId],
) -> Result<(), AgentError> {
    node.register(name, id).map_err(|source| {
        for p in pids {
            node.exit(*p, ExitReason::Shutdown);
        }
        AgentError::Name { name, source }
    })
}

/// Stops the agent's processes and forgets its log ring.
pub(crate) fn stop(state: &State) {
    for pid in state.pids.lock().drain(..) {
        state.node.exit(pid, ExitReason::Shutdown);
    }
    state.logs.clear();
    crate::logs::remove_ring(state.node.name());
}
