//! The attach service end to end: a hidden client attached to one node of
//! a three-node cluster (real TCP on loopback) sees every node, the
//! processes falling behind, warnings, details, trees and histograms.

mod support;

use clustertop_client::{Client, ClientConfig, ClientError};
use clustertop_proto::{
    Activity, HistogramKey, NodeStatus, ProcessFilter, ProcessQuery, ProtoError, SortKey,
    WarningKind,
};
use clustertop_runtime::supervisor::{ChildSpec, Strategy, Supervisor};
use clustertop_runtime::{
    CallResult, ExitReason, Flow, GenServer, Node, Received, ServerContext, ServerOptions,
    gen_server,
};
use std::time::Duration;
use support::{cluster, eventually, fast_config};

const LIMIT: Duration = Duration::from_secs(20);

async fn attach(entry: &Node) -> Client {
    Client::connect(ClientConfig::new(support::addr(entry)).cookie(support::COOKIE))
        .await
        .expect("client attaches")
}

/// A consumer that handles one message per 20 ms, fed 1,000 per second by
/// a producer on the same node: its mailbox grows by ~950 per second.
fn slow_consumer(node: &Node) -> clustertop_runtime::Pid<u64> {
    let consumer = node.spawn::<u64, _, _>(|mut ctx| async move {
        loop {
            if let Received::Msg(_) = ctx.recv().await {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    node.register("slow_consumer", consumer.id()).unwrap();
    let target = consumer.clone();
    let producer = node.spawn::<(), _, _>(move |_ctx| async move {
        let mut tick = tokio::time::interval(Duration::from_millis(10));
        for i in 0.. {
            tick.tick().await;
            for j in 0..10 {
                target.send(i * 10 + j);
            }
        }
    });
    node.register("producer", producer.id()).unwrap();
    consumer
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_overview_shows_every_node_and_the_process_falling_behind() {
    let (nodes, _agents) = cluster(
        &["a@localhost", "b@localhost", "c@localhost"],
        fast_config(),
    )
    .await;
    let consumer = slow_consumer(&nodes[1]);
    let client = attach(&nodes[0]).await;
    assert_eq!(client.entry(), "a@localhost");
    assert_eq!(client.hello().version, clustertop_proto::VERSION);

    // Busy all the time while its mailbox grows: saturated, and named.
    let saturated = eventually("the slow consumer to be saturated", LIMIT, || async {
        let w = client.warnings().await.expect("warnings");
        w.into_iter()
            .find(|w| matches!(w.kind, WarningKind::Saturated { .. }))
    })
    .await;
    assert_eq!(
        saturated.pid.as_ref().map(|p| (p.node.as_str(), p.serial)),
        Some(("b@localhost", consumer.id().serial()))
    );
    assert_eq!(saturated.name.as_deref(), Some("slow_consumer"));
    assert_eq!(saturated.behaviour.as_deref(), Some("u64"));
    match saturated.kind {
        WarningKind::Saturated {
            util_permille,
            growth_per_s,
            ..
        } => assert!(util_permille >= 900 && growth_per_s > 0, "{saturated:?}"),
        _ => unreachable!(),
    }

    let overview = eventually("the slow consumer to be flagged", LIMIT, || async {
        let o = client.overview().await.expect("overview");
        let flagged = o.warnings.iter().any(|w| {
            w.node == "b@localhost"
                && w.pid
                    .as_ref()
                    .is_some_and(|p| p.serial == consumer.id().serial())
                && matches!(w.kind, WarningKind::MailboxGrowing { .. })
        });
        flagged.then_some(o)
    })
    .await;
    let names: Vec<&str> = overview.nodes.iter().map(|n| n.name.as_str()).collect();
    assert_eq!(names, ["a@localhost", "b@localhost", "c@localhost"]);
    for n in &overview.nodes {
        assert_eq!(n.status, NodeStatus::Up, "{n:?}");
        assert!(
            n.processes > 0 && n.uptime_ms > 0 && n.rss_bytes > 0,
            "{n:?}"
        );
    }
    let top = &overview.top_processes[0];
    assert_eq!(
        top.name.as_deref(),
        Some("slow_consumer"),
        "{:?}",
        overview.top_processes
    );
    assert_eq!(top.pid.node, "b@localhost");
    assert!(
        top.figures.warnings >= 1 && top.figures.mailbox_growth_per_s > 0,
        "{top:?}"
    );
    // In a handler (asleep in it) nearly all the time, on a thread hardly
    // at all; and it holds its queue.
    assert!(top.figures.util_permille >= 900, "{top:?}");
    assert!(
        top.figures.cpu_permille < top.figures.util_permille / 2,
        "{top:?}"
    );
    assert!(top.figures.polls_per_s > 0, "{top:?}");
    assert!(
        top.figures.memory_bytes >= top.figures.mailbox_len * 8,
        "{top:?}"
    );
    assert!(overview.top_processes.iter().all(|r| !r.system));
    assert!(
        overview.links.iter().any(|l| l.peer == "b@localhost"),
        "{:?}",
        overview.links
    );
    // Totals only grow; the producer's sends count on b.
    let b = &overview.nodes[1];
    assert!(b.messages_out_total > 0 && b.messages_in_total > 0, "{b:?}");
    // Rates beside the counters: the producer sends about 1,000 a second.
    assert!(
        (200..5_000).contains(&b.messages_in_per_s) && b.messages_out_per_s > 0,
        "{b:?}"
    );
    assert!(b.cpu_permille <= 1000, "{b:?}");

    // The cluster-wide list, by mailbox length.
    let page = client
        .processes(ProcessQuery {
            filter: ProcessFilter::default(),
            sort: SortKey::MailboxLen,
            descending: true,
            offset: 0,
            limit: 3,
        })
        .await
        .unwrap();
    // Only the consumer and the producer are not system processes.
    assert_eq!(page.total_matching, 2, "{page:?}");
    assert_eq!(page.rows.len(), 2);
    assert_eq!(page.rows[0].name.as_deref(), Some("slow_consumer"));
    assert_eq!(page.rows[1].name.as_deref(), Some("producer"));
    assert!(
        page.rows
            .windows(2)
            .all(|w| w[0].figures.mailbox_len >= w[1].figures.mailbox_len)
    );

    // Filtering to one node and to system processes.
    let only_c = client
        .processes(ProcessQuery {
            filter: ProcessFilter {
                node: Some("c@localhost".into()),
                include_system: true,
                ..ProcessFilter::default()
            },
            sort: SortKey::Pid,
            descending: false,
            offset: 0,
            limit: 100,
        })
        .await
        .unwrap();
    assert!(only_c.rows.iter().all(|r| r.pid.node == "c@localhost"));
    assert!(
        only_c.rows.iter().any(|r| r.system),
        "the agent's own processes are listed"
    );

    // The detail of the slow consumer: its queue and who fills it.
    let detail = client.process(top.pid.clone()).await.unwrap();
    assert!(!detail.mailbox_head.is_empty());
    let producer = nodes[1].whereis("producer").unwrap();
    assert_eq!(
        detail.top_senders[0].0.serial,
        producer.serial(),
        "{:?}",
        detail.top_senders
    );
    assert!(detail.top_senders[0].1 >= 99);
    // Named where the node knows the name.
    assert!(
        detail
            .names
            .iter()
            .any(|(p, n)| p.serial == producer.serial() && n == "producer"),
        "{:?}",
        detail.names
    );
    // Never out of its handler (its mailbox never empties), and sleeping
    // inside it nearly all the time: not "waiting".
    match detail.activity {
        Some(Activity::Awaiting { .. } | Activity::Running { .. }) => {}
        other => panic!("the saturated consumer is {other:?}"),
    }
    // The producer sleeps between ticks, outside any handler.
    let producer_row = page.rows[1].pid.clone();
    let detail = client.process(producer_row).await.unwrap();
    assert!(
        matches!(detail.activity, Some(Activity::Idle { .. })),
        "{:?}",
        detail.activity
    );

    // A pid that does not exist is a typed error.
    let mut gone = top.pid.clone();
    gone.serial = 999_999;
    match client.process(gone).await {
        Err(ClientError::Agent(ProtoError::NoSuchProcess)) => {}
        other => panic!("{other:?}"),
    }
    match client.node_detail("nobody@localhost").await {
        Err(ClientError::Agent(ProtoError::NoSuchNode(n))) => assert_eq!(n, "nobody@localhost"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unsupported_protocol_version_gets_a_clear_error() {
    let (nodes, _agents) = cluster(&["v@localhost"], fast_config()).await;
    let mut config = ClientConfig::new(support::addr(&nodes[0])).cookie(support::COOKIE);
    // Older than any version the agent speaks.
    config.version = 1;
    match Client::connect(config).await {
        Err(e @ ClientError::Agent(ProtoError::UnsupportedVersion { client: 1, .. })) => {
            assert!(e.to_string().contains("version 1 is not supported"), "{e}");
        }
        other => panic!("{other:?}"),
    }
    let wrong = ClientConfig::new(support::addr(&nodes[0])).cookie("not-the-cookie");
    match Client::connect(wrong).await {
        Err(e @ ClientError::BadCookie(_)) => assert!(e.to_string().contains("cookie"), "{e}"),
        other => panic!("{other:?}"),
    }
    match Client::connect(ClientConfig::new("127.0.0.1:1").cookie(support::COOKIE)).await {
        Err(ClientError::NoNode { addr, .. }) => assert_eq!(addr, "127.0.0.1:1"),
        other => panic!("{other:?}"),
    }
}

/// A server whose casts take `ms` milliseconds.
#[derive(Debug)]
struct Worker;

impl GenServer for Worker {
    type Args = ();
    type Call = u64;
    type Reply = u64;
    type Cast = u64;
    type Info = ();

    async fn init(_: (), _ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        Ok(Worker)
    }

    async fn handle_call(&mut self, n: u64, _ctx: &mut ServerContext<Self>) -> CallResult<u64> {
        CallResult::Reply(n + 1)
    }

    async fn handle_cast(&mut self, ms: u64, _ctx: &mut ServerContext<Self>) -> Flow {
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Flow::Continue
    }
}

/// A child that crashes 600 ms after it starts.
#[derive(Debug)]
struct Crasher;

impl GenServer for Crasher {
    type Args = ();
    type Call = ();
    type Reply = ();
    type Cast = ();
    type Info = ();

    async fn init(_: (), ctx: &mut ServerContext<Self>) -> Result<Self, ExitReason> {
        ctx.send_after((), Duration::from_millis(600));
        Ok(Crasher)
    }

    async fn handle_info(
        &mut self,
        _: clustertop_runtime::Info<()>,
        _ctx: &mut ServerContext<Self>,
    ) -> Flow {
        Flow::Stop(ExitReason::custom("crash on purpose"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn details_trees_histograms_and_warnings_of_a_remote_node() {
    let (nodes, _agents) = cluster(&["a@localhost", "b@localhost"], fast_config()).await;
    let b = &nodes[1];
    let worker = gen_server::start::<Worker>(b, (), ServerOptions::new().name("worker"))
        .await
        .unwrap();
    for i in 0..200 {
        assert_eq!(worker.call(i, Duration::from_secs(5)).await, Ok(i + 1));
    }
    worker.cast(2_000);
    // A crash every 600 ms against an intensity of 6 in 3 s: near the
    // limit, never past it.
    Supervisor::new(Strategy::OneForOne)
        .intensity(6, Duration::from_secs(3))
        .child(ChildSpec::worker::<Crasher>("crasher", ()))
        .start(b)
        .await
        .unwrap();
    let client = attach(&nodes[0]).await;

    let long = eventually("a long-handler warning", LIMIT, || async {
        let w = client.warnings().await.unwrap();
        w.into_iter()
            .find(|w| matches!(w.kind, WarningKind::LongHandler { .. }))
    })
    .await;
    assert_eq!(long.node, "b@localhost");
    assert_eq!(long.pid.as_ref().unwrap().serial, worker.id().serial());
    let storm = eventually("a restart-storm warning", LIMIT, || async {
        let w = client.warnings().await.unwrap();
        w.into_iter()
            .find(|w| matches!(w.kind, WarningKind::RestartStorm { .. }))
    })
    .await;
    match storm.kind {
        WarningKind::RestartStorm {
            restarts,
            max_restarts,
        } => {
            assert_eq!(max_restarts, 6);
            // Raised at 4 of 6; it holds until the count falls to 2.
            assert!((3..=7).contains(&restarts), "{restarts}");
        }
        other => panic!("{other:?}"),
    }

    let metrics = client.metrics(Some("b@localhost")).await.unwrap();
    let handling = metrics
        .histograms
        .iter()
        .find(|h| matches!(&h.key, HistogramKey::HandlingTime { behaviour, node } if behaviour == "Worker" && node == "b@localhost"))
        .unwrap_or_else(|| panic!("{:?}", metrics.histograms.iter().map(|h| &h.key).collect::<Vec<_>>()));
    assert!(handling.last_60s.count >= 200, "{handling:?}");
    assert!(handling.last_60s.p50_us <= handling.last_60s.p99_us);
    assert!(metrics.histograms.iter().any(
        |h| matches!(&h.key, HistogramKey::QueueWait { behaviour, .. } if behaviour == "Worker")
    ));

    let tree = client.tree("b@localhost").await.unwrap();
    assert_eq!(tree.node, "b@localhost");
    let sup = tree
        .roots
        .iter()
        .find(|r| r.children.iter().any(|c| c.behaviour == "Crasher"));
    assert!(sup.is_some_and(|s| s.supervisor), "{tree:?}");
    let s = sup.unwrap();
    assert_eq!(s.strategy.as_deref(), Some("one_for_one"));
    assert_eq!(s.restarts.map(|r| (r.max, r.period_ms)), Some((6, 3_000)));
    assert_eq!(s.children[0].child_id.as_deref(), Some("crasher"));
    // The worker was started by no supervisor: it is listed beside the
    // trees.
    assert!(
        tree.unsupervised
            .iter()
            .any(|n| n.name.as_deref() == Some("worker")),
        "{tree:?}"
    );
    assert_eq!(tree.unsupervised_total as usize, tree.unsupervised.len());
    // Once the crasher has been restarted, its place says why.
    let restarted = eventually("a restarted crasher", LIMIT, || async {
        let t = client.tree("b@localhost").await.unwrap();
        t.roots
            .iter()
            .flat_map(|r| &r.children)
            .find(|c| c.behaviour == "Crasher" && c.last_exit.is_some())
            .cloned()
    })
    .await;
    let last = restarted.last_exit.unwrap();
    assert!(
        last.crashed && last.reason.contains("crash on purpose"),
        "{last:?}"
    );

    // A child that crashed: its detail says why and when.
    let crasher = sup
        .unwrap()
        .children
        .iter()
        .find(|c| c.behaviour == "Crasher")
        .unwrap()
        .pid
        .clone();
    let exited = eventually("the crasher's exit", LIMIT, || async {
        match client.process(crasher.clone()).await {
            Err(ClientError::Agent(e @ ProtoError::Exited { .. })) => Some(e),
            Ok(_) => None,
            Err(other) => panic!("{other:?}"),
        }
    })
    .await;
    match &exited {
        ProtoError::Exited {
            reason,
            crashed,
            at_unix_ms,
        } => {
            assert!(reason.contains("crash on purpose"), "{exited:?}");
            assert!(*crashed);
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_millis() as u64;
            assert!(
                *at_unix_ms <= now && now - *at_unix_ms < 20_000,
                "{exited:?}"
            );
        }
        _ => unreachable!(),
    }

    let detail = client.node_detail("b@localhost").await.unwrap();
    assert_eq!(detail.summary.name, "b@localhost");
    assert!(detail.links.iter().any(|l| l.peer == "a@localhost"));
    assert!(detail.scheduler_threads >= 1);
    // Each scheduler thread has its process driver.
    assert!(
        detail.runtime_tasks >= u64::from(detail.scheduler_threads),
        "{detail:?}"
    );
    assert!(detail.summary.crashes_total >= 1);

    // The long handler clears once it returns (after its hold time).
    eventually("the long-handler warning to clear", LIMIT, || async {
        let w = client.warnings().await.unwrap();
        (!w.iter()
            .any(|w| matches!(w.kind, WarningKind::LongHandler { .. })))
        .then_some(())
    })
    .await;
}
