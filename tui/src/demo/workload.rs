//! The demo cluster's workload, from the article *Building Distributed
//! Systems with Elixir*: a global counter, a work distributor spreading
//! tasks over the nodes, chat rooms broadcasting to every node, a
//! supervised worker that crashes now and then, and one slow consumer
//! whose mailbox keeps growing.
//!
//! Every node runs the same program; roles go by the node's index (1 is
//! the first node started).

use clustertop_runtime::gen_server::ServerMsg;
use clustertop_runtime::supervisor::{ChildSpec, Strategy, Supervisor};
use clustertop_runtime::{
    CallResult, ExitReason, Flow, GenServer, Info, Node, Received, ServerContext, ServerOptions,
    ServerPid, SpawnOptions, gen_server,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// The chat room every node's member joins.
pub(crate) const ROOM: &str = "chat:lobby";
/// The slow consumer's registered name.
pub(crate) const SLOW: &str = "chat_store";

/// The global counter (the article's `GlobalCounter`).
#[derive(Debug)]
pub(crate) struct Counter {
    count: u64,
}

/// What the counter serves.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) enum CounterCall {
    Get,
}

impl GenServer for Counter {
    type Args = ();
    type Call = CounterCall;
    type Reply = u64;
    type Cast = u64;
    type Info = ();

    async fn init(_: (), ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        ctx.enable_remote();
        Ok(Counter { count: 0 })
    }

    async fn handle_call(
        &mut self,
        _: CounterCall,
        _: &mut ServerContext<Self>,
    ) -> CallResult<u64> {
        CallResult::Reply(self.count)
    }

    async fn handle_cast(&mut self, by: u64, _: &mut ServerContext<Self>) -> Flow {
        self.count += by;
        if self.count % 500 == 0 {
            tracing::info!(count = self.count, "global counter reached {}", self.count);
        }
        Flow::Continue
    }
}

/// A chat message.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct ChatMessage {
    room: String,
    from: String,
    text: String,
}

/// The slow consumer: stores chat messages, 20 ms each, while every node
/// sends it 50 a second.
#[derive(Debug)]
pub(crate) struct ChatStore {
    stored: u64,
}

impl GenServer for ChatStore {
    type Args = ();
    type Call = ();
    type Reply = u64;
    type Cast = ChatMessage;
    type Info = ();

    async fn init(_: (), ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        ctx.enable_remote();
        Ok(ChatStore { stored: 0 })
    }

    async fn handle_cast(&mut self, msg: ChatMessage, _: &mut ServerContext<Self>) -> Flow {
        tokio::time::sleep(Duration::from_millis(20)).await;
        self.stored += 1;
        if self.stored % 250 == 0 {
            tracing::warn!(
                stored = self.stored,
                room = %msg.room,
                "chat store is falling behind"
            );
        }
        Flow::Continue
    }
}

/// A worker that crashes a few seconds after it starts; its supervisor
/// restarts it.
#[derive(Debug)]
pub(crate) struct FlakyWorker;

impl GenServer for FlakyWorker {
    type Args = u64;
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();

    async fn init(seed: u64, ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        let after = 4_000 + (seed.wrapping_mul(2_654_435_761) ^ now_ms()) % 6_000;
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

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Starts node `index`'s part of the workload; `first` is the first
/// node's name and `slow` the node that hosts the slow consumer.
pub(crate) async fn start(node: &Node, index: usize, first: &str, slow: &str) {
    node.register_task("square", |n: u64| async move {
        tokio::time::sleep(Duration::from_millis(5)).await;
        n * n
    });
    if index == 1 {
        match gen_server::start::<Counter>(node, (), ServerOptions::new().name("counter")).await {
            Ok(pid) => {
                if let Err(e) = node.global().register("counter", &pid).await {
                    tracing::error!(error = %e, "cannot register the global counter");
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot start the counter"),
        }
        distributor(node);
    }
    if node.name() == slow {
        if let Err(e) =
            gen_server::start::<ChatStore>(node, (), ServerOptions::new().name(SLOW)).await
        {
            tracing::error!(error = %e, "cannot start the chat store");
        }
    }
    let sup = Supervisor::new(Strategy::OneForOne)
        .intensity(10, Duration::from_secs(30))
        .child(ChildSpec::worker::<FlakyWorker>(
            "flaky_worker",
            index as u64,
        ));
    if let Err(e) = sup.start(node).await {
        tracing::error!(error = %e, "cannot start the worker supervisor");
    }
    room_member(node);
    poster(node, slow.to_owned());
    ticker(node, first.to_owned());
}

/// Spreads `square` tasks over every node, round robin, and logs results.
fn distributor(node: &Node) {
    let pid = node.spawn_opts::<(), _, _>(as_behaviour("Distributor"), |mut ctx| async move {
        let mut i = 0u64;
        loop {
            let _ = ctx.recv_timeout(Duration::from_millis(100)).await;
            let mut nodes = ctx.node().nodes();
            nodes.push(ctx.node().name().to_owned());
            nodes.sort();
            let target = &nodes[(i as usize) % nodes.len()];
            match ctx
                .node()
                .task_on::<u64, u64>(target, "square", &i, Duration::from_secs(2))
                .await
            {
                Ok(r) if i % 20 == 0 => {
                    tracing::info!(item = i, on = %target, result = r, "processed item {i}");
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(item = i, on = %target, error = %e, "task failed"),
            }
            i += 1;
        }
    });
    let _ = node.register("work_distributor", pid.id());
}

/// The node's member of the chat room: receives every broadcast.
fn room_member(node: &Node) {
    let pid = node.spawn_opts::<ChatMessage, _, _>(as_behaviour("ChatRoom"), |mut ctx| async move {
        let mut seen = 0u64;
        while let Received::Msg(msg) = ctx.recv().await {
            seen += 1;
            if seen % 200 == 0 {
                tracing::info!(room = %msg.room, from = %msg.from, "{seen} messages in the room");
            }
        }
    });
    pid.enable_remote();
    let _ = node.register("room:lobby", pid.id());
    let _ = node.groups().join(ROOM, pid.id());
}

/// Posts to the room (every member, on every node) and to the chat store.
fn poster(node: &Node, slow: String) {
    let pid = node.spawn_opts::<(), _, _>(as_behaviour("ChatPoster"), move |mut ctx| async move {
        let me = ctx.node().name().to_owned();
        let mut n = 0u64;
        loop {
            let _ = ctx.recv_timeout(Duration::from_millis(20)).await;
            n += 1;
            let msg = ChatMessage {
                room: ROOM.to_owned(),
                from: me.clone(),
                text: format!("message {n}"),
            };
            if n % 5 == 0 {
                for member in ctx.node().groups().member_pids::<ChatMessage>(ROOM) {
                    member.send(msg.clone());
                }
            }
            if let Some(store) = server_on::<ChatStore>(ctx.node(), &slow, SLOW) {
                store.cast(msg);
            }
        }
    });
    let _ = node.register("chat_poster", pid.id());
}

/// The server registered as `name` on `target` (this node or another).
fn server_on<S: GenServer>(node: &Node, target: &str, name: &str) -> Option<ServerPid<S>>
where
    ServerMsg<S>: clustertop_runtime::dist::RemoteMessage,
{
    if target == node.name() {
        node.whereis_pid(name).ok()
    } else {
        node.named_on(target, name).ok()
    }
}

/// Adds to the global counter ten times a second.
fn ticker(node: &Node, first: String) {
    let pid =
        node.spawn_opts::<(), _, _>(as_behaviour("CounterTicker"), move |mut ctx| async move {
            loop {
                let _ = ctx.recv_timeout(Duration::from_millis(100)).await;
                if let Some(counter) = server_on::<Counter>(ctx.node(), &first, "counter") {
                    counter.cast(1);
                }
            }
        });
    let _ = node.register("counter_ticker", pid.id());
}
