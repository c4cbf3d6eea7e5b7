//! The demo cluster's workload: the article's programs running together on
//! every node, each at a steady pace, so that every view of `clustertop`
//! has something to show.
//!
//! - **Chat** ([`crate::chat`]): on every node the chat system, and a bot
//!   that joins the lobby (Presence) and posts 50 messages a second through
//!   its node's message store. Every store keeps every node's messages, so
//!   each store takes 150 messages a second in a 3-node demo. On one node
//!   (`slow`) the store spends 20 ms on each: it handles 50 a second, and
//!   its mailbox grows by about 100 a second — the culprit `clustertop`
//!   should flag within seconds. A room member on every node subscribes to
//!   the lobby.
//! - **Work distributor** ([`crate::work_distributor`]): every node serves
//!   items; the first node processes a batch of 3 over the cluster, round
//!   robin, every 300 ms.
//! - **Global counter** ([`crate::counter`]): every node starts it, one
//!   wins; every node calls `increment` ten times a second.
//! - **A crashing worker**: under a one-for-one supervisor on every node, a
//!   worker that panics 4–10 s after it starts and is restarted.

use crate::chat::{ChatSystem, NewMessage, PresenceMeta, presence_topic, room_topic};
use crate::{counter, work_distributor};
use clustertop_runtime::supervisor::{ChildSpec, Strategy, Supervisor};
use clustertop_runtime::{
    ExitReason, Flow, GenServer, Info, Node, Received, ServerContext, SpawnOptions,
};
use std::time::Duration;

/// The demo's chat room.
pub const ROOM: &str = "lobby";

/// What runs on a node; dropping it changes nothing (the processes run
/// until the node stops).
#[derive(Debug)]
pub struct Workload {
    /// The node's chat system.
    pub chat: ChatSystem,
}

/// A worker that crashes a few seconds after it starts; its supervisor
/// restarts it.
#[derive(Debug)]
pub struct FlakyWorker;

impl GenServer for FlakyWorker {
    type Args = u64;
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();

    async fn init(seed: u64, ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        let after =
            4_000 + (seed.wrapping_mul(2_654_435_761) ^ clustertop_proto::time::unix_ms()) % 6_000;
        ctx.send_after((), Duration::from_millis(after));
        Ok(FlakyWorker)
    }

    async fn handle_info(&mut self, _: Info<()>, _: &mut ServerContext<Self>) -> Flow {
        panic!("flaky worker lost its connection to the payment service");
    }
}

fn as_behaviour(name: &'static str) -> SpawnOptions {
    SpawnOptions::new().behaviour(name)
}

/// Starts node `index`'s part of the workload; `first` is the first node's
/// name and `slow` the node whose message store is slow.
///
/// # Errors
/// A program's name is taken on this node.
pub async fn start(
    node: &Node,
    index: usize,
    first: &str,
    slow: &str,
) -> Result<Workload, crate::chat::ChatError> {
    let delay = if node.name() == slow {
        Duration::from_millis(20)
    } else {
        Duration::ZERO
    };
    let chat = ChatSystem::start_with_store_delay(node, delay).await?;
    room_member(&chat);
    chat_bot(&chat, index);

    work_distributor::start_link(node, false);
    if node.name() == first {
        distributor(node);
    }

    match counter::start_link(node).await {
        Ok(_) => tracing::info!("this node holds the global counter"),
        Err(e) => tracing::debug!(error = %e, "the global counter runs elsewhere"),
    }
    counter_caller(node);

    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(30))
        .child(ChildSpec::worker::<FlakyWorker>(
            "flaky_worker",
            index as u64,
        ));
    if let Err(e) = sup.start(node).await {
        tracing::error!(error = %e, "cannot start the worker supervisor");
    }
    Ok(Workload { chat })
}

/// A member of the lobby on this node: takes every message.
fn room_member(chat: &ChatSystem) {
    let pid = chat.node.spawn_opts::<NewMessage, _, _>(
        as_behaviour("RoomMember"),
        |mut ctx| async move {
            let mut seen = 0u64;
            while let Received::Msg(new) = ctx.recv().await {
                seen += 1;
                if seen % 1_000 == 0 {
                    tracing::info!(room = %new.room, from = %new.message.sender, "{seen} messages in the room");
                }
            }
        },
    );
    let _ = chat.node.register("room_member", pid.id());
    chat.pubsub.subscribe(&room_topic(ROOM), &pid);
}

/// Joins the lobby (Presence) and posts 50 messages a second.
fn chat_bot(chat: &ChatSystem, index: usize) {
    let node = chat.node.clone();
    let chat = chat.clone();
    let pid = node.spawn_opts::<(), _, _>(as_behaviour("ChatBot"), move |mut ctx| async move {
        let user = format!("bot-{index}");
        let meta = PresenceMeta {
            online_at: clustertop_proto::time::unix_ms(),
            node: ctx.node().name().to_owned(),
            conn: ctx.id().to_string(),
        };
        if let Err(e) = chat
            .presence
            .track(ctx.id(), &presence_topic(ROOM), &user, meta)
        {
            tracing::error!(error = %e, "the chat bot cannot join");
        }
        let mut n = 0u64;
        loop {
            let _ = ctx.recv_timeout(Duration::from_millis(20)).await;
            n += 1;
            chat.add_message(ROOM, &user, &format!("message {n}"));
        }
    });
    let _ = node.register("chat_bot", pid.id());
}

/// Processes a batch of 3 items over the cluster every 300 ms.
fn distributor(node: &Node) {
    let pid = node.spawn_opts::<(), _, _>(as_behaviour("WorkDistributor"), |mut ctx| async move {
        let mut batch = 0u64;
        loop {
            let _ = ctx.recv_timeout(Duration::from_millis(300)).await;
            batch += 1;
            let items = (1..=3).map(|i| format!("batch-{batch}-item-{i}")).collect();
            match work_distributor::process_in_parallel(ctx.node(), items).await {
                Ok(done) if batch % 20 == 0 => {
                    let on: Vec<&str> = done.iter().map(|p| p.node.as_str()).collect();
                    tracing::info!(batch, "processed batch {batch} on {}", on.join(", "));
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(batch, error = %e, "a work item failed"),
            }
        }
    });
    let _ = node.register("work_distributor", pid.id());
}

/// Calls the global counter's `increment` ten times a second.
fn counter_caller(node: &Node) {
    let pid = node.spawn_opts::<(), _, _>(as_behaviour("CounterCaller"), |mut ctx| async move {
        loop {
            let _ = ctx.recv_timeout(Duration::from_millis(100)).await;
            match counter::increment(ctx.node()).await {
                Ok(n) if n % 500 == 0 => tracing::info!(count = n, "global counter reached {n}"),
                Ok(_) => {}
                Err(e) => tracing::debug!(error = %e, "global counter call failed"),
            }
        }
    });
    let _ = node.register("counter_caller", pid.id());
}
