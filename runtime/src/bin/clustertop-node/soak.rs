//! `--workload`: what a node of the soak test runs, and how it reports its
//! health.
//!
//! - A supervisor (`soak_sup`, one-for-one) of a counter GenServer
//!   (registered as `soak_counter`) and a worker that crashes every few
//!   seconds and is restarted.
//! - Global names: the counter also tries, every half second, to take the
//!   contested name `soak_leader` while nobody holds it.
//! - A caller that, every 100 ms, calls the `soak_counter` of another node
//!   and monitors the process that answered (one monitor per node).
//! - `soak_health`: send it a `Pid<String>` and it answers whether every
//!   child of the supervisor runs, how many processes look stuck (messages
//!   queued and nothing handled for 5 s), and the global names with the
//!   node of their holder, as this node sees them.

use clustertop_runtime::gen_server::ServerMsg;
use clustertop_runtime::supervisor::{ChildSpec, Strategy, Supervisor, SupervisorPid};
use clustertop_runtime::{
    CallResult, ExitReason, Flow, GenServer, Node, Pid, ProcessId, Received, ServerContext,
};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::time::Duration;

/// The counter every node runs under its supervisor.
pub(crate) struct Counter {
    n: u64,
    /// A process linked to the counter, so it lives exactly as long: the
    /// handle callers monitor (a counter's own pid cannot be in its reply
    /// type).
    marker: Pid<()>,
}

/// A call to a [`Counter`].
#[derive(Debug, Serialize, Deserialize)]
pub(crate) enum CounterCall {
    /// Adds one; answers the count and the counter's marker.
    Incr,
}

impl GenServer for Counter {
    type Args = ();
    type Call = CounterCall;
    type Reply = (u64, Pid<()>);
    type Cast = ();
    type Info = ();

    async fn init(_: (), ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        ctx.enable_remote();
        ctx.node()
            .register("soak_counter", ctx.id())
            .map_err(ExitReason::custom)?;
        let marker = ctx.node().spawn::<(), _, _>(|mut ctx| async move {
            while ctx.recv().await.into_msg().is_some() {}
        });
        ctx.link(marker.id())
            .map_err(|_| ExitReason::custom("the marker exited at once"))?;
        Ok(Counter { n: 0, marker })
    }

    async fn handle_call(
        &mut self,
        CounterCall::Incr: CounterCall,
        _ctx: &mut ServerContext<Self>,
    ) -> CallResult<Self::Reply> {
        self.n += 1;
        CallResult::Reply((self.n, self.marker.clone()))
    }
}

/// A worker that crashes every 2–4 s.
pub(crate) struct Crasher;

impl GenServer for Crasher {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();

    async fn init(_: (), ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        let after = Duration::from_millis(2_000 + u64::from(ctx.id().serial() as u32 % 2_000));
        ctx.send_after((), after);
        Ok(Crasher)
    }

    async fn handle_info(
        &mut self,
        _: clustertop_runtime::Info<()>,
        _ctx: &mut ServerContext<Self>,
    ) -> Flow {
        panic!("the soak worker crashes on purpose");
    }
}

/// `soak_health`'s answer for `node`: one line,
/// `children_running=BOOL stuck=N globals=NAME:NODE,NAME:NODE...` (global
/// names sorted). Plain text, so a test that does not link this binary can
/// read it (`Pid<String>` and `String` name the same types on both sides).
async fn health(node: &Node, sup: &SupervisorPid) -> String {
    let children_running = match sup.which_children().await {
        Ok(children) => children
            .iter()
            .all(|c| c.pid.is_some_and(|p| node.is_alive(p))),
        Err(_) => false,
    };
    let stuck = node
        .introspect()
        .processes()
        .iter()
        .filter(|p| p.mailbox_len > 0 && p.handling_for.is_none())
        .filter(|p| p.idle_for > Duration::from_secs(5))
        .count();
    let mut globals: Vec<String> = node
        .global()
        .names()
        .into_iter()
        .filter_map(|name| {
            let holder = node.global().whereis::<ServerMsg<Counter>>(&name)?;
            Some(format!("{name}:{}", holder.node_name()))
        })
        .collect();
    globals.sort();
    format!(
        "children_running={children_running} stuck={stuck} globals={}",
        globals.join(",")
    )
}

/// Starts the workload on `node`; `global` names its counter cluster-wide.
pub(crate) async fn start(node: &Node, global: Option<&str>) -> Result<(), String> {
    let sup = Supervisor::new(Strategy::OneForOne)
        .name("soak_sup")
        .intensity(1_000, Duration::from_secs(10))
        .child(ChildSpec::worker::<Counter>("counter", ()))
        .child(ChildSpec::worker::<Crasher>("crasher", ()))
        .start(node)
        .await
        .map_err(|e| format!("soak supervisor: {e}"))?;
    let health_service = node.spawn::<Pid<String>, _, _>(move |mut ctx| async move {
        while let Received::Msg(reply_to) = ctx.recv().await {
            reply_to.send(health(ctx.node(), &sup).await);
        }
    });
    health_service.enable_remote();
    node.register("soak_health", health_service.id())
        .map_err(|e| format!("soak health: {e}"))?;
    let global = global.map(str::to_owned);
    // Global names: this node's own, and the contested leader.
    node.spawn::<(), _, _>(move |mut ctx| async move {
        loop {
            let node = ctx.node().clone();
            if let Ok(counter) = node.whereis_pid::<ServerMsg<Counter>>("soak_counter") {
                for name in global.iter().map(String::as_str).chain(["soak_leader"]) {
                    if node.global().whereis::<ServerMsg<Counter>>(name).is_none() {
                        let _ = node.global().register(name, &counter).await;
                    }
                }
            }
            let _ = ctx.recv_timeout(Duration::from_millis(500)).await;
        }
    });
    // Remote calls and monitors.
    node.spawn::<(), _, _>(|mut ctx| async move {
        let mut monitors: HashMap<String, (ProcessId, clustertop_runtime::MonitorRef)> =
            HashMap::new();
        let mut turn = 0usize;
        loop {
            let node = ctx.node().clone();
            let others = node.nodes();
            if !others.is_empty() {
                turn += 1;
                let other = &others[turn % others.len()];
                if let Ok(counter) = node
                    .dist()
                    .named_on::<ServerMsg<Counter>>(other, "soak_counter")
                {
                    if let Ok((_, pid)) = counter
                        .call(CounterCall::Incr, Duration::from_secs(1))
                        .await
                    {
                        let id = pid.id();
                        if monitors.get(other).is_none_or(|(p, _)| *p != id) {
                            if let Some((_, old)) = monitors.remove(other) {
                                ctx.demonitor(old);
                            }
                            monitors.insert(other.clone(), (id, ctx.monitor(id)));
                        }
                    }
                }
            }
            // DOWN messages (a monitored counter or its node went away).
            while let Some(msg) = ctx.recv_timeout(Duration::from_millis(100)).await {
                if let Received::Down(down) = msg {
                    monitors.retain(|_, (p, _)| *p != down.pid);
                }
            }
        }
    });
    Ok(())
}
