//! The global registry across a real cluster: one holder per name, names
//! released on exit and nodedown, and exactly one holder after a partition
//! heals.

mod support;

use clustertop_runtime::dist::{GlobalError, NAME_CONFLICT};
use clustertop_runtime::{ExitReason, Node, Pid, Received};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(10);

async fn mesh(names: &[&str], tick: Duration) -> Vec<Node> {
    support::mesh(names, "g", tick).await
}

/// A process that forwards every `u64` it gets to the test.
fn listener(node: &Node) -> (Pid<u64>, tokio::sync::mpsc::UnboundedReceiver<u64>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    let pid = node.spawn::<u64, _, _>(move |mut ctx| async move {
        while let Received::Msg(v) = ctx.recv().await {
            tx.send(v).unwrap();
        }
    });
    pid.enable_remote();
    (pid, rx)
}

async fn until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + LIMIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_holder_per_name_across_the_cluster() {
    let nodes = mesh(
        &["a@localhost", "b@localhost", "c@localhost"],
        Duration::from_secs(60),
    )
    .await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (leader, mut got) = listener(a);
    a.global().register("leader", &leader).await.unwrap();
    until("b and c to learn the name", || {
        b.global().names() == ["leader"] && c.global().names() == ["leader"]
    })
    .await;

    let (other, _) = listener(c);
    assert_eq!(
        c.global().register("leader", &other).await,
        Err(GlobalError::Taken("leader".into()))
    );
    c.global().send("leader", 41u64).unwrap();
    assert_eq!(
        tokio::time::timeout(LIMIT, got.recv()).await.unwrap(),
        Some(41)
    );
    let via_b: Pid<u64> = b.global().whereis("leader").unwrap();
    assert_eq!(via_b.node_name(), "a@localhost");
    via_b.send(42);
    assert_eq!(
        tokio::time::timeout(LIMIT, got.recv()).await.unwrap(),
        Some(42)
    );

    // The name is released when its process exits.
    a.exit(leader.id(), ExitReason::Shutdown);
    until("the name to be released everywhere", || {
        a.global().names().is_empty()
            && b.global().names().is_empty()
            && c.global().names().is_empty()
    })
    .await;
    c.global().register("leader", &other).await.unwrap();
    until("a to learn the new holder", || {
        a.global()
            .whereis::<u64>("leader")
            .map(|p| p.node_name().to_owned())
            == Some("c@localhost".into())
    })
    .await;

    // And when its node goes down.
    let mut events = a.dist().node_events().unwrap();
    a.dist().disconnect("c@localhost");
    support::wait_down(&mut events, "c@localhost", LIMIT).await;
    assert!(a.global().names().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_registrations_of_one_name_leave_one_winner() {
    let nodes = mesh(&["a@localhost", "b@localhost"], Duration::from_secs(60)).await;
    for round in 0..20 {
        let name = format!("race-{round}");
        let (pa, _) = listener(&nodes[0]);
        let (pb, _) = listener(&nodes[1]);
        let (ra, rb) = tokio::join!(
            nodes[0].global().register(&name, &pa),
            nodes[1].global().register(&name, &pb)
        );
        let wins = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
        assert_eq!(wins, 1, "round {round}: {ra:?} {rb:?}");
        for r in [ra, rb] {
            if let Err(e) = r {
                assert_eq!(e, GlobalError::Taken(name.clone()));
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healed_partition_keeps_exactly_one_holder() {
    let tick = Duration::from_millis(400);
    let nodes = mesh(&["a@localhost", "b@localhost"], tick).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let mut events = a.dist().node_events().unwrap();
    a.dist().set_partitioned("b@localhost", true);
    b.dist().set_partitioned("a@localhost", true);
    support::wait_down(&mut events, "b@localhost", LIMIT).await;
    until("b to see a down", || b.nodes().is_empty()).await;

    // Each side registers the same name while cut off from the other.
    let (pa, _) = listener(a);
    let (pb, _) = listener(b);
    a.global().register("leader", &pa).await.unwrap();
    b.global().register("leader", &pb).await.unwrap();
    let (exit_a, exit_b) = (pa.exited(), pb.exited());

    a.dist().set_partitioned("b@localhost", false);
    b.dist().set_partitioned("a@localhost", false);
    b.connect(&support::addr(a)).await.unwrap();
    until("both nodes to agree on one holder", || {
        let on_a = a
            .global()
            .whereis::<u64>("leader")
            .map(|p| (p.node_name().to_owned(), p.id().serial()));
        let on_b = b
            .global()
            .whereis::<u64>("leader")
            .map(|p| (p.node_name().to_owned(), p.id().serial()));
        on_a.is_some() && on_a == on_b
    })
    .await;
    // The default resolver keeps the holder on the node whose name sorts first.
    let holder: Pid<u64> = a.global().whereis("leader").unwrap();
    assert_eq!(holder, pa);
    assert_eq!(
        tokio::time::timeout(LIMIT, exit_b).await.unwrap(),
        ExitReason::custom(NAME_CONFLICT)
    );
    assert!(pa.is_alive());
    drop(exit_a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_groups_span_nodes() {
    let nodes = mesh(
        &["a@localhost", "b@localhost", "c@localhost"],
        Duration::from_secs(60),
    )
    .await;
    let (a, b, c) = (&nodes[0], &nodes[1], &nodes[2]);
    let (wa, mut got_a) = listener(a);
    let (wb, mut got_b) = listener(b);
    a.groups().join("workers", wa.id()).unwrap();
    b.groups().join("workers", wb.id()).unwrap();
    until("c to see both members", || {
        c.groups().members("workers").len() == 2
    })
    .await;
    assert_eq!(c.groups().names(), ["workers"]);
    for (i, member) in c.groups().member_pids::<u64>("workers").iter().enumerate() {
        member.send(100 + i as u64);
    }
    let mut seen = vec![
        tokio::time::timeout(LIMIT, got_a.recv())
            .await
            .unwrap()
            .unwrap(),
        tokio::time::timeout(LIMIT, got_b.recv())
            .await
            .unwrap()
            .unwrap(),
    ];
    seen.sort();
    assert_eq!(seen, [100, 101]);

    // A member that exits leaves the group everywhere.
    a.exit(wa.id(), ExitReason::Shutdown);
    until("c to drop the exited member", || {
        c.groups().members("workers").len() == 1
    })
    .await;
    // A node that goes down takes its members along.
    let mut events = c.dist().node_events().unwrap();
    c.dist().disconnect("b@localhost");
    support::wait_down(&mut events, "b@localhost", LIMIT).await;
    assert!(c.groups().members("workers").is_empty());
    assert_eq!(
        a.groups().members("workers").len(),
        1,
        "a still sees b's member"
    );
}

/// The article's `GenServer.start_link(__MODULE__, 0, name: {:global, __MODULE__})`.
#[derive(Debug)]
struct GlobalCounter {
    count: u64,
    remote: bool,
}

impl clustertop_runtime::GenServer for GlobalCounter {
    type Args = bool;
    type Call = ();
    type Reply = u64;
    type Cast = ();
    type Info = ();

    async fn init(
        remote: bool,
        ctx: &mut clustertop_runtime::ServerContext<Self>,
    ) -> Result<Self, ExitReason> {
        if remote {
            ctx.enable_remote();
        }
        Ok(GlobalCounter { count: 0, remote })
    }

    async fn handle_call(
        &mut self,
        _: (),
        _: &mut clustertop_runtime::ServerContext<Self>,
    ) -> clustertop_runtime::CallResult<u64> {
        let _ = self.remote;
        self.count += 1;
        clustertop_runtime::CallResult::Reply(self.count)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_gen_server_started_with_a_global_name_is_called_from_any_node() {
    use clustertop_runtime::gen_server::{self, ServerMsg};
    use clustertop_runtime::{GlobalNameError, ServerOptions, StartError};
    let nodes = mesh(&["a@localhost", "b@localhost"], Duration::from_secs(60)).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    gen_server::start::<GlobalCounter>(a, true, ServerOptions::new().global_name("counter"))
        .await
        .unwrap();
    until("b to learn the name", || b.global().names() == ["counter"]).await;
    let counter = b
        .global()
        .whereis::<ServerMsg<GlobalCounter>>("counter")
        .unwrap();
    assert_eq!(counter.call((), LIMIT).await.unwrap(), 1);
    assert_eq!(counter.call((), LIMIT).await.unwrap(), 2);

    // The same start on another node: the name is taken, as `already_started`.
    let err =
        gen_server::start::<GlobalCounter>(b, true, ServerOptions::new().global_name("counter"))
            .await
            .unwrap_err();
    assert!(
        matches!(&err, StartError::Global { name, reason: GlobalNameError::Taken } if name == "counter"),
        "{err:?}"
    );
    // A server that does not take remote messages cannot hold a global name.
    let err =
        gen_server::start::<GlobalCounter>(b, false, ServerOptions::new().global_name("other"))
            .await
            .unwrap_err();
    assert!(err.to_string().contains("enable_remote"), "{err}");
    // Nor can a server of a node without distribution.
    let local =
        clustertop_runtime::Node::start(clustertop_runtime::NodeConfig::new("solo@localhost"))
            .unwrap();
    let err =
        gen_server::start::<GlobalCounter>(&local, true, ServerOptions::new().global_name("x"))
            .await
            .unwrap_err();
    assert!(
        matches!(
            err,
            StartError::Global {
                reason: GlobalNameError::NotDistributed,
                ..
            }
        ),
        "{err:?}"
    );
}
