//! GenServer: call, cast, info, timers, deferred replies, errors, names.

mod support;

use clustertop_runtime::gen_server::{self, ServerMsg, ServerOptions};
use clustertop_runtime::timer;
use clustertop_runtime::{
    CallError, CallResult, ExitReason, Flow, GenServer, Info, RegistryError, ReplyTo,
    ServerContext, StartError,
};
use std::time::Duration;

const T: Duration = Duration::from_secs(5);

#[derive(Debug)]
enum Req {
    Get,
    Slow(Duration),
    Defer,
    Crash,
    StopWith(u64),
    Ticks,
    StartTicking,
    StopTicking,
}

#[derive(Debug, Clone)]
enum Tick {
    Tick,
    Release,
}

#[derive(Default)]
struct Counter {
    n: u64,
    ticks: u64,
    deferred: Option<ReplyTo<u64>>,
    ticker: Option<timer::TimerRef>,
}

impl GenServer for Counter {
    type Args = u64;
    type Call = Req;
    type Reply = u64;
    type Cast = u64;
    type Info = Tick;

    async fn init(n: u64, _ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        if n == 666 {
            return Err(ExitReason::custom("bad start value"));
        }
        Ok(Counter {
            n,
            ..Default::default()
        })
    }

    async fn handle_call(&mut self, req: Req, ctx: &mut ServerContext<Self>) -> CallResult<u64> {
        match req {
            Req::Get => CallResult::Reply(self.n),
            Req::Slow(d) => {
                tokio::time::sleep(d).await;
                CallResult::Reply(self.n)
            }
            Req::Defer => {
                self.deferred = ctx.defer_reply();
                CallResult::NoReply
            }
            Req::Crash => panic!("crash in handle_call"),
            Req::StopWith(v) => CallResult::Stop {
                reason: ExitReason::custom("asked to stop"),
                reply: Some(v),
            },
            Req::Ticks => CallResult::Reply(self.ticks),
            Req::StartTicking => {
                self.ticker = Some(ctx.send_interval(Tick::Tick, Duration::from_secs(1)));
                CallResult::Reply(0)
            }
            Req::StopTicking => {
                if let Some(t) = self.ticker.take() {
                    t.cancel();
                }
                CallResult::Reply(0)
            }
        }
    }

    async fn handle_cast(&mut self, by: u64, _ctx: &mut ServerContext<Self>) -> Flow {
        self.n += by;
        Flow::Continue
    }

    async fn handle_info(&mut self, info: Info<Tick>, _ctx: &mut ServerContext<Self>) -> Flow {
        match info {
            Info::Msg(Tick::Tick) => self.ticks += 1,
            Info::Msg(Tick::Release) => {
                if let Some(r) = self.deferred.take() {
                    r.reply(self.n * 100);
                }
            }
            _ => {}
        }
        Flow::Continue
    }
}

#[tokio::test(start_paused = true)]
async fn call_and_cast_are_served_in_order() {
    let node = support::node();
    let c = Counter::start(&node, 40).await.unwrap();
    c.cast(1);
    c.cast(1);
    assert_eq!(c.call(Req::Get, T).await, Ok(42));
    let info = node.introspect().process_info(c.id()).unwrap();
    assert_eq!(info.behaviour, "Counter");
    assert_eq!(info.handled, 3);
}

#[tokio::test(start_paused = true)]
async fn call_times_out() {
    let node = support::node();
    let c = Counter::start(&node, 1).await.unwrap();
    let r = c
        .call(Req::Slow(Duration::from_secs(10)), Duration::from_secs(1))
        .await;
    assert_eq!(r, Err(CallError::Timeout));
    // The server is still alive and serves the next call after the slow one.
    assert_eq!(c.call(Req::Get, Duration::from_secs(20)).await, Ok(1));
}

#[tokio::test(start_paused = true)]
async fn call_to_dead_server_is_noproc() {
    let node = support::node();
    let c = Counter::start(&node, 1).await.unwrap();
    c.stop(ExitReason::Shutdown, T).await.unwrap();
    assert_eq!(c.call(Req::Get, T).await, Err(CallError::NoProcess));
}

#[tokio::test(start_paused = true)]
async fn server_crash_during_call_is_exited_with_reason() {
    let node = support::node();
    let c = Counter::start(&node, 1).await.unwrap();
    let r = c.call(Req::Crash, T).await;
    assert_eq!(
        r,
        Err(CallError::Exited(ExitReason::Panic(
            "crash in handle_call".into()
        )))
    );
}

#[tokio::test(start_paused = true)]
async fn stop_replies_then_exits() {
    let node = support::node();
    let c = Counter::start(&node, 1).await.unwrap();
    assert_eq!(c.call(Req::StopWith(9), T).await, Ok(9));
    assert_eq!(c.exited().await, ExitReason::custom("asked to stop"));
}

#[tokio::test(start_paused = true)]
async fn deferred_reply_arrives_later() {
    let node = support::node();
    let c = Counter::start(&node, 3).await.unwrap();
    let caller = {
        let c = c.clone();
        tokio::spawn(async move { c.call(Req::Defer, T).await })
    };
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert!(!caller.is_finished());
    c.send_info(Tick::Release);
    assert_eq!(caller.await.unwrap(), Ok(300));
}

#[tokio::test(start_paused = true)]
async fn init_failure_is_a_start_error() {
    let node = support::node();
    let r = Counter::start(&node, 666).await;
    assert_eq!(
        r.err(),
        Some(StartError::Init(ExitReason::custom("bad start value")))
    );
}

#[tokio::test(start_paused = true)]
async fn named_server_and_taken_name() {
    let node = support::node();
    let opts = ServerOptions::new().name("counter");
    let c = gen_server::start::<Counter>(&node, 5, opts.clone())
        .await
        .unwrap();
    assert_eq!(node.whereis("counter"), Some(c.id()));
    let again = gen_server::start::<Counter>(&node, 5, opts).await;
    assert_eq!(
        again.err(),
        Some(StartError::Registry(RegistryError::Taken {
            name: "counter".into(),
            holder: c.id()
        }))
    );
    let by_name = node.whereis_pid::<ServerMsg<Counter>>("counter").unwrap();
    assert_eq!(by_name.call(Req::Get, T).await, Ok(5));
}

#[tokio::test(start_paused = true)]
async fn timers_deliver_info_and_cancel() {
    let node = support::node();
    let c = Counter::start(&node, 0).await.unwrap();
    c.call(Req::StartTicking, T).await.unwrap();
    tokio::time::sleep(Duration::from_millis(3_500)).await;
    assert_eq!(c.call(Req::Ticks, T).await, Ok(3));
    c.call(Req::StopTicking, T).await.unwrap();
    let once = timer::send_after(&c, ServerMsg::info(Tick::Tick), Duration::from_secs(2));
    let never = timer::send_after(&c, ServerMsg::info(Tick::Tick), Duration::from_secs(3));
    never.cancel();
    tokio::time::sleep(Duration::from_secs(10)).await;
    assert!(once.is_finished());
    assert_eq!(c.call(Req::Ticks, T).await, Ok(4));
}
