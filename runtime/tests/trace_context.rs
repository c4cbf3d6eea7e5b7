//! The trace-context hook: the sender's context rides in the envelope and
//! becomes the parent of the handling span. In its own test binary: the
//! propagator is process-wide, and tracing's callsite interest must not race
//! other tests' subscribers.

mod support;

use clustertop_runtime::trace::{TraceContext, TracePropagator, set_trace_propagator};
use clustertop_runtime::{CallResult, ExitReason, GenServer, ServerContext};
use parking_lot::Mutex;
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;

struct Echo;

impl GenServer for Echo {
    type Args = ();
    type Call = u32;
    type Reply = Option<TraceContext>;
    type Cast = ();
    type Info = ();

    async fn init(_: (), _ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        Ok(Echo)
    }

    async fn handle_call(
        &mut self,
        _: u32,
        _ctx: &mut ServerContext<Self>,
    ) -> CallResult<Option<TraceContext>> {
        CallResult::Reply(current_test_context())
    }
}

thread_local! {
    /// The test's stand-in for "the caller's current span".
    static CURRENT: Cell<Option<TraceContext>> = const { Cell::new(None) };
}

fn current_test_context() -> Option<TraceContext> {
    CURRENT.with(Cell::get)
}

/// Records which parents handling spans were given.
struct TestPropagator {
    parents: Arc<Mutex<Vec<TraceContext>>>,
}

thread_local! {
    /// What the test propagator answers to `trace_root` on this thread.
    static START_TRACES: Cell<bool> = const { Cell::new(true) };
}

impl TracePropagator for TestPropagator {
    fn current(&self) -> Option<TraceContext> {
        current_test_context()
    }
    fn trace_root(&self) -> bool {
        START_TRACES.with(Cell::get)
    }
    fn set_parent(&self, _span: &tracing::Span, parent: &TraceContext) {
        self.parents.lock().push(*parent);
    }
}

/// Installs the test propagator once for this binary; returns the parents
/// it records.
fn install() -> Arc<Mutex<Vec<TraceContext>>> {
    static PARENTS: std::sync::OnceLock<Arc<Mutex<Vec<TraceContext>>>> = std::sync::OnceLock::new();
    PARENTS
        .get_or_init(|| {
            let parents = Arc::new(Mutex::new(Vec::new()));
            assert!(
                set_trace_propagator(Box::new(TestPropagator {
                    parents: parents.clone()
                }))
                .is_ok()
            );
            parents
        })
        .clone()
}

#[tokio::test(start_paused = true)]
async fn trace_context_travels_in_the_envelope_to_the_handling_span() {
    let parents = install();
    // Handling spans exist only when a subscriber wants them.
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(std::io::sink)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let node = support::node();
    let server = Echo::start(&node, ()).await.unwrap();
    let ctx = TraceContext {
        trace_id: [7; 16],
        span_id: [3; 8],
        flags: 1,
    };
    CURRENT.with(|c| c.set(Some(ctx)));
    server.call(1, Duration::from_secs(1)).await.unwrap();
    CURRENT.with(|c| c.set(None));
    server.call(2, Duration::from_secs(1)).await.unwrap();
    // Other tests of this binary record parents of their own traces: count
    // this one's. A second call that wrongly kept the first call's context
    // would show here as a second parent.
    let ours: Vec<TraceContext> = parents
        .lock()
        .iter()
        .filter(|p| p.trace_id == ctx.trace_id)
        .copied()
        .collect();
    assert_eq!(ours, vec![ctx], "only the traced call has a parent");
    // The server keeps the traced handling (and only that one): its trace,
    // its time in the handler; sent from outside any process, so no sender.
    let kept = node.introspect().traced_handlings(server.id(), 8);
    assert_eq!(kept.len(), 1, "{kept:?}");
    assert_eq!(kept[0].pid, server.id());
    assert_eq!(kept[0].context.trace_id, ctx.trace_id);
    assert_eq!(kept[0].from, None);
    assert!(kept[0].at_unix_ms > 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_task_runs_under_its_callers_trace() {
    let parents = install();
    let tick = Duration::from_secs(60);
    let a = support::dist_node("ta@localhost", "c", tick);
    let b = support::dist_node("tb@localhost", "c", tick);
    b.connect(&support::addr(&a)).await.unwrap();
    a.dist()
        .register_task("double", |x: u32| async move { x * 2 });
    let ctx = TraceContext {
        trace_id: [11; 16],
        span_id: [12; 8],
        flags: 1,
    };
    let (tx, rx) = tokio::sync::oneshot::channel();
    b.spawn::<(), _, _>(move |c| async move {
        CURRENT.with(|cur| cur.set(Some(ctx)));
        let r: Result<u32, _> = c
            .node()
            .dist()
            .task_on("ta@localhost", "double", &21u32, Duration::from_secs(5))
            .await;
        CURRENT.with(|cur| cur.set(None));
        tx.send(r).unwrap();
    });
    let answer = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.unwrap(), 42);
    // The task's span on `ta` was given the caller's context as parent.
    let ours = parents
        .lock()
        .iter()
        .filter(|p| p.trace_id == ctx.trace_id)
        .count();
    assert_eq!(ours, 1, "the remote task's span joins the caller's trace");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_context_crosses_the_wire() {
    install();
    let tick = Duration::from_secs(60);
    let a = support::dist_node("a@localhost", "c", tick);
    let b = support::dist_node("b@localhost", "c", tick);
    b.connect(&support::addr(&a)).await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    let sink = a.spawn::<u32, _, _>(move |mut ctx| async move {
        ctx.recv().await;
        tx.send(ctx.trace_context()).unwrap();
    });
    sink.enable_remote();
    a.register("sink", sink.id()).unwrap();
    let ctx = TraceContext {
        trace_id: [5; 16],
        span_id: [6; 8],
        flags: 1,
    };
    b.spawn::<(), _, _>(move |c| async move {
        CURRENT.with(|cur| cur.set(Some(ctx)));
        c.node()
            .dist()
            .send_named_on("a@localhost", "sink", 1u32)
            .unwrap();
        CURRENT.with(|cur| cur.set(None));
    });
    let got = tokio::time::timeout(Duration::from_secs(10), rx)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got, Some(ctx));
}

const PUBSUB_TRACE: [u8; 16] = [8; 16];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broadcast_is_relayed_under_the_publishers_trace() {
    use clustertop_runtime::app::pubsub::PubSub;
    let parents = install();
    let tick = Duration::from_secs(60);
    let a = support::dist_node("a@localhost", "ps", tick);
    let b = support::dist_node("b@localhost", "ps", tick);
    b.connect(&support::addr(&a)).await.unwrap();
    let on_a = PubSub::start(&a, "traced").unwrap();
    let on_b = PubSub::start(&b, "traced").unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let sub = a.spawn::<u32, _, _>(move |mut ctx| async move {
        while ctx.recv().await.into_msg().is_some() {
            tx.send(()).unwrap();
        }
    });
    on_a.subscribe("t", &sub);
    let ctx = TraceContext {
        trace_id: PUBSUB_TRACE,
        span_id: [9; 8],
        flags: 1,
    };
    b.spawn::<(), _, _>(move |_| async move {
        CURRENT.with(|cur| cur.set(Some(ctx)));
        on_b.broadcast("t", 1u32).unwrap();
        CURRENT.with(|cur| cur.set(None));
    });
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        parents.lock().contains(&ctx),
        "a's relay span has the publisher's context as its parent"
    );
}

/// Counts the spans created, by name.
#[derive(Clone, Default)]
struct SpanCount(Arc<Mutex<Vec<&'static str>>>);

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for SpanCount {
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        _id: &tracing::span::Id,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        self.0.lock().push(attrs.metadata().name());
    }
}

#[tokio::test(start_paused = true)]
async fn work_outside_a_sampled_trace_creates_no_spans() {
    use tracing_subscriber::layer::SubscriberExt;
    install();
    let count = SpanCount::default();
    let subscriber = tracing_subscriber::registry()
        .with(count.clone())
        .with(tracing_subscriber::filter::LevelFilter::DEBUG);
    let _guard = tracing::subscriber::set_default(subscriber);
    let node = support::node();
    let server = Echo::start(&node, ()).await.unwrap();
    let call = |n| server.call(n, Duration::from_secs(1));

    // No trace, and the propagator starts none: no span at all.
    START_TRACES.with(|s| s.set(false));
    call(1).await.unwrap();
    // Inside a trace that is not sampled: none either.
    let in_trace = |flags| {
        CURRENT.with(|c| {
            c.set(Some(TraceContext {
                trace_id: [1; 16],
                span_id: [2; 8],
                flags,
            }))
        })
    };
    in_trace(0);
    call(2).await.unwrap();
    assert!(count.0.lock().is_empty(), "{:?}", count.0.lock());

    // Inside a sampled trace: the call and its handling.
    in_trace(1);
    call(3).await.unwrap();
    assert_eq!(*count.0.lock(), ["call", "handle_call"]);

    // No trace, and the propagator starts one: both again.
    CURRENT.with(|c| c.set(None));
    START_TRACES.with(|s| s.set(true));
    call(4).await.unwrap();
    assert_eq!(count.0.lock().len(), 4);
}
