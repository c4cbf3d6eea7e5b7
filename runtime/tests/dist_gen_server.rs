//! GenServer calls and casts across nodes, with the local API and typed
//! errors.

mod support;

use clustertop_runtime::gen_server::{self, ServerMsg, ServerOptions};
use clustertop_runtime::{
    CallError, CallResult, ExitReason, Flow, GenServer, Info, Node, Pid, Received, ReplyTo,
    ServerContext,
};
use serde::{Deserialize, Serialize};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(10);
const T: Duration = Duration::from_secs(5);
const TICK: Duration = Duration::from_secs(60);

#[derive(Default)]
struct Counter {
    n: u64,
    deferred: Option<ReplyTo<u64>>,
}

#[derive(Debug, Serialize, Deserialize)]
enum Req {
    Get,
    Crash,
    Sleep(u64),
    Defer,
    /// 1 while a deferred call waits for its reply.
    Deferred,
}

#[derive(Debug, Serialize, Deserialize)]
enum Note {
    Release,
}

impl GenServer for Counter {
    type Args = ();
    type Call = Req;
    type Reply = u64;
    type Cast = u64;
    type Info = Note;

    async fn init(_: (), ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        ctx.enable_remote();
        Ok(Counter::default())
    }

    async fn handle_call(&mut self, req: Req, ctx: &mut ServerContext<Self>) -> CallResult<u64> {
        match req {
            Req::Get => CallResult::Reply(self.n),
            Req::Crash => panic!("counter crashed"),
            Req::Sleep(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                CallResult::Reply(self.n)
            }
            Req::Defer => {
                self.deferred = ctx.defer_reply();
                CallResult::NoReply
            }
            Req::Deferred => CallResult::Reply(u64::from(self.deferred.is_some())),
        }
    }

    async fn handle_cast(&mut self, by: u64, _ctx: &mut ServerContext<Self>) -> Flow {
        self.n += by;
        Flow::Continue
    }

    async fn handle_info(&mut self, info: Info<Note>, _ctx: &mut ServerContext<Self>) -> Flow {
        if let (Info::Msg(Note::Release), Some(r)) = (info, self.deferred.take()) {
            r.reply(self.n + 1000);
        }
        Flow::Continue
    }
}

async fn cluster() -> (Node, Node) {
    let a = support::dist_node("a@localhost", "c", TICK);
    let b = support::dist_node("b@localhost", "c", TICK);
    b.connect(&support::addr(&a)).await.unwrap();
    support::wait_nodes(&a, &["b@localhost"], LIMIT).await;
    gen_server::start::<Counter>(&a, (), ServerOptions::new().name("counter"))
        .await
        .unwrap();
    (a, b)
}

fn remote_counter(b: &Node) -> Pid<ServerMsg<Counter>> {
    b.dist()
        .named_on::<ServerMsg<Counter>>("a@localhost", "counter")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn call_and_cast_by_name_on_another_node() {
    let (_a, b) = cluster().await;
    let counter = remote_counter(&b);
    assert!(!counter.is_local());
    assert_eq!(counter.call(Req::Get, T).await, Ok(0));
    counter.cast(5);
    counter.cast(6);
    assert_eq!(counter.call(Req::Get, T).await, Ok(11));
    assert_eq!(b.dist().stats().pending_calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deferred_replies_and_info_cross_nodes() {
    let (_a, b) = cluster().await;
    let counter = remote_counter(&b);
    let caller = {
        let c = counter.clone();
        tokio::spawn(async move { c.call(Req::Defer, T).await })
    };
    // The call and the info come from different senders, so nothing orders
    // them: release only once the server holds the deferred call.
    support::wait_for_async("the deferred call", LIMIT, || {
        let c = counter.clone();
        async move { c.call(Req::Deferred, T).await == Ok(1) }
    })
    .await;
    counter.send_info(Note::Release);
    assert_eq!(caller.await.unwrap(), Ok(1000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_crash_during_a_remote_call_is_exited_with_the_reason() {
    let (_a, b) = cluster().await;
    let counter = remote_counter(&b);
    assert_eq!(
        counter.call(Req::Crash, T).await,
        Err(CallError::Exited(ExitReason::Panic(
            "counter crashed".into()
        )))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_call_times_out_and_forgets_its_reply() {
    let (_a, b) = cluster().await;
    let counter = remote_counter(&b);
    assert_eq!(
        counter
            .call(Req::Sleep(2_000), Duration::from_millis(200))
            .await,
        Err(CallError::Timeout)
    );
    assert_eq!(b.dist().stats().pending_calls, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn losing_the_node_fails_the_call_with_node_down() {
    let (a, b) = cluster().await;
    let counter = remote_counter(&b);
    let call = {
        let c = counter.clone();
        tokio::spawn(async move { c.call(Req::Sleep(30_000), Duration::from_secs(60)).await })
    };
    // Disconnect once the call is in flight (its reply parked on b).
    support::wait_for("the call in flight", LIMIT, || {
        b.dist().stats().pending_calls == 1
    })
    .await;
    a.dist().disconnect("b@localhost");
    let result = tokio::time::timeout(LIMIT, call).await.unwrap().unwrap();
    assert_eq!(result, Err(CallError::NodeDown("a@localhost".into())));
    // Calling a node that is not connected fails at once.
    assert_eq!(
        counter.call(Req::Get, T).await,
        Err(CallError::NodeDown("a@localhost".into()))
    );
}

#[derive(Debug, Serialize, Deserialize)]
struct Introduce(Pid<ServerMsg<Counter>>);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_pid_sent_in_a_message_is_callable() {
    let (a, b) = cluster().await;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let receiver = b.spawn::<Introduce, _, _>(move |mut ctx| async move {
        if let Received::Msg(Introduce(server)) = ctx.recv().await {
            server.cast(2);
            tx.send(server.call(Req::Get, T).await).unwrap();
        }
    });
    receiver.enable_remote();
    b.register("receiver", receiver.id()).unwrap();
    let local = a.whereis_pid::<ServerMsg<Counter>>("counter").unwrap();
    a.dist()
        .send_named_on("b@localhost", "receiver", Introduce(local))
        .unwrap();
    assert_eq!(
        tokio::time::timeout(LIMIT, rx).await.unwrap().unwrap(),
        Ok(2)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_remote_call_forgets_its_reply() {
    let (_a, b) = cluster().await;
    let counter = remote_counter(&b);
    // The caller gives up by dropping the call, not through its timeout.
    let r = tokio::time::timeout(
        Duration::from_millis(100),
        counter.call(Req::Sleep(2_000), Duration::from_secs(60)),
    )
    .await;
    assert!(r.is_err());
    assert_eq!(b.dist().stats().pending_calls, 0);
}

/// A call to a name no process holds on another node is answered at once
/// with `NoProcess` (Erlang's `noproc`), as is one to a pid that has
/// exited there: the caller is not left to its timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_to_a_process_another_node_lacks_fails_at_once() {
    let (a, b) = support::pair(TICK).await;
    let nobody = a
        .dist()
        .named_on::<ServerMsg<Counter>>("b@localhost", "nobody")
        .unwrap();
    let answer = tokio::time::timeout(LIMIT, nobody.call(Req::Get, Duration::from_secs(600)))
        .await
        .expect("an answer before the call's own timeout");
    assert!(matches!(answer, Err(CallError::NoProcess)), "{answer:?}");
    // A pid that has exited.
    let server = gen_server::start::<Counter>(&b, (), ServerOptions::new().name("gone"))
        .await
        .unwrap();
    let remote = a
        .dist()
        .named_on::<ServerMsg<Counter>>("b@localhost", "gone")
        .unwrap();
    assert_eq!(remote.call(Req::Get, T).await.unwrap(), 0);
    b.exit(server.id(), ExitReason::Kill);
    support::wait_dead(&b, server.id()).await;
    let answer = tokio::time::timeout(LIMIT, remote.call(Req::Get, Duration::from_secs(600)))
        .await
        .expect("an answer before the call's own timeout");
    assert!(matches!(answer, Err(CallError::NoProcess)), "{answer:?}");
}
