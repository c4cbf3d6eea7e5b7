//! A tour of the runtime: processes and messages, a GenServer call, a
//! supervisor restarting a crashed child, and the process table.
//!
//! ```text
//! cargo run -p clustertop-runtime --example tour
//! ```

use clustertop_runtime::gen_server::ServerMsg;
use clustertop_runtime::supervisor::{ChildSpec, Strategy, Supervisor};
use clustertop_runtime::{
    CallResult, ExitReason, Flow, GenServer, Node, NodeConfig, Received, ServerContext,
};
use std::time::Duration;

/// The article's counter: `increment` is a cast, `get` a call.
struct Counter(u64);

#[derive(Debug)]
enum CounterCast {
    Increment,
}

impl GenServer for Counter {
    type Args = u64;
    type Call = ();
    type Reply = u64;
    type Cast = CounterCast;
    type Info = ();

    async fn init(start: u64, _ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        Ok(Counter(start))
    }

    async fn handle_call(&mut self, _: (), _ctx: &mut ServerContext<Self>) -> CallResult<u64> {
        CallResult::Reply(self.0)
    }

    async fn handle_cast(
        &mut self,
        CounterCast::Increment: CounterCast,
        _ctx: &mut ServerContext<Self>,
    ) -> Flow {
        self.0 += 1;
        Flow::Continue
    }
}

/// A worker that crashes when told to.
struct Flaky;

#[derive(Debug)]
struct Crash;

impl GenServer for Flaky {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = Crash;
    type Info = ();

    async fn init(_: (), _ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        Ok(Flaky)
    }

    async fn handle_cast(&mut self, _: Crash, _ctx: &mut ServerContext<Self>) -> Flow {
        panic!("flaky worker hit a bug");
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .init();
    clustertop_runtime::install_panic_hook();
    let node = Node::start(NodeConfig::new("tour@localhost"))?;
    println!("node {} started", node.name());

    // 1. Plain processes and messages.
    let (tx, rx) = tokio::sync::oneshot::channel();
    let echo = node.spawn::<String, _, _>(move |mut ctx| async move {
        if let Received::Msg(text) = ctx.recv().await {
            tx.send(format!("{} got {text:?}", ctx.id())).ok();
        }
    });
    echo.send("hello".to_string());
    println!("1. {}", rx.await?);

    // 2. A supervision tree: a counter and a flaky worker, one-for-one.
    let sup = Supervisor::new(Strategy::OneForOne)
        .name("app_sup")
        .child(ChildSpec::worker::<Counter>("counter", 0))
        .child(ChildSpec::worker::<Flaky>("flaky", ()))
        .start(&node)
        .await?;
    let children = sup.which_children().await?;
    let counter = node.pid::<ServerMsg<Counter>>(children[0].pid.expect("running"))?;
    for _ in 0..3 {
        counter.cast(CounterCast::Increment);
    }
    let n = counter.call((), Duration::from_secs(1)).await?;
    println!("2. counter {} answered get -> {n}", counter.id());

    // 3. Let it crash: the supervisor restarts the flaky worker.
    let flaky = node.pid::<ServerMsg<Flaky>>(children[1].pid.expect("running"))?;
    let exited = flaky.exited();
    flaky.cast(Crash);
    println!("3. flaky worker {} exited: {}", flaky.id(), exited.await);
    let restarted = loop {
        let now = sup.which_children().await?;
        match now[1].pid {
            Some(pid) if pid != flaky.id() => break pid,
            _ => tokio::time::sleep(Duration::from_millis(1)).await,
        }
    };
    println!(
        "   supervisor restarted it as {restarted}; counter is still {}",
        counter.id()
    );

    // 4. The process table, as the agent and clustertop read it.
    println!("4. {} processes:", node.introspect().process_count());
    println!(
        "   {:<12} {:<12} {:<10} {:>7} {:>8}",
        "PID", "NAME", "BEHAVIOUR", "MAILBOX", "HANDLED"
    );
    for p in node.introspect().processes() {
        println!(
            "   {:<12} {:<12} {:<10} {:>7} {:>8}",
            p.id.to_string(),
            p.name.unwrap_or_default(),
            p.behaviour,
            p.mailbox_len,
            p.handled
        );
    }
    sup.stop(ExitReason::Shutdown, Duration::from_secs(5))
        .await?;
    println!(
        "supervisor stopped; {} processes left",
        node.introspect().process_count()
    );
    Ok(())
}
