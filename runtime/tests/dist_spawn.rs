//! Remote spawn of registered behaviours and remote tasks, including the
//! article's round-robin work distributor over three nodes.

mod support;

use clustertop_runtime::dist::RemoteSpawnError;
use clustertop_runtime::{ExitReason, Node, Pid, Received};
use std::time::Duration;

const LIMIT: Duration = Duration::from_secs(10);
const T: Duration = Duration::from_secs(5);

type Greet = (Pid<String>, String);

async fn cluster(names: &[&str]) -> Vec<Node> {
    let nodes = support::mesh(names, "s", Duration::from_secs(60)).await;
    for n in &nodes {
        n.dist().register_spawnable::<String, Greet, _, _>(
            "greeter",
            |mut ctx, greeting| async move {
                while let Received::Msg((reply_to, name)) = ctx.recv().await {
                    reply_to.send(format!("{greeting} {name} from {}", ctx.node().name()));
                }
            },
        );
        // The article's worker: processes an item and says where.
        n.dist().register_task("process_item", {
            let here = n.name().to_owned();
            move |item: u64| {
                let here = here.clone();
                async move { format!("item {item} processed on {here}") }
            }
        });
        n.dist().register_task("fail", |_: ()| async move {
            if true {
                panic!("task failed on purpose");
            }
        });
        n.dist().register_task("slow", |ms: u64| async move {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        });
    }
    nodes
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spawn_a_registered_behaviour_on_another_node() {
    let nodes = cluster(&["a@localhost", "b@localhost"]).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let greeter: Pid<Greet> = a
        .dist()
        .spawn_on("b@localhost", "greeter", &"hello".to_string(), T)
        .await
        .unwrap();
    assert_eq!(greeter.node_name(), "b@localhost");
    assert_eq!(b.introspect().process_count(), 1);
    let (tx, rx) = tokio::sync::oneshot::channel();
    a.spawn::<String, _, _>(move |mut ctx| async move {
        greeter.send((ctx.pid(), "ana".into()));
        tx.send(ctx.recv().await.into_msg()).unwrap();
    });
    assert_eq!(
        tokio::time::timeout(LIMIT, rx)
            .await
            .unwrap()
            .unwrap()
            .as_deref(),
        Some("hello ana from b@localhost")
    );

    assert_eq!(
        a.dist()
            .spawn_on::<_, Greet>("b@localhost", "nobody", &(), T)
            .await
            .err(),
        Some(RemoteSpawnError::UnknownName("nobody".into()))
    );
    assert!(matches!(
        a.dist()
            .spawn_on::<_, u64>("b@localhost", "greeter", &"hi".to_string(), T)
            .await,
        Err(RemoteSpawnError::TypeMismatch(_))
    ));
    assert_eq!(
        a.dist()
            .spawn_on::<_, Greet>("z@localhost", "greeter", &"hi".to_string(), T)
            .await
            .err(),
        Some(RemoteSpawnError::NodeDown("z@localhost".into()))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn round_robin_work_distributor_over_three_nodes() {
    let nodes = cluster(&["a@localhost", "b@localhost", "c@localhost"]).await;
    let a = &nodes[0];
    // As in the article: spread items over Node.list() ++ [node()].
    let mut targets = a.nodes();
    targets.push(a.name().to_owned());
    targets.sort();
    let mut results = Vec::new();
    for item in 0..9u64 {
        let node = &targets[item as usize % targets.len()];
        let r: String = a
            .dist()
            .task_on(node, "process_item", &item, T)
            .await
            .unwrap();
        results.push(r);
    }
    for (item, r) in results.iter().enumerate() {
        let node = &targets[item % targets.len()];
        assert_eq!(*r, format!("item {item} processed on {node}"));
    }
    let mut used: Vec<&str> = results
        .iter()
        .map(|r| r.rsplit(' ').next().unwrap())
        .collect();
    used.sort();
    used.dedup();
    assert_eq!(used, ["a@localhost", "b@localhost", "c@localhost"]);
    // Each node ran its tasks under its task supervisor.
    for n in &nodes {
        assert!(
            n.whereis(clustertop_runtime::dist::TASK_SUPERVISOR)
                .is_some()
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_task_failures_are_typed() {
    let nodes = cluster(&["a@localhost", "b@localhost"]).await;
    let a = &nodes[0];
    assert_eq!(
        a.dist()
            .task_on::<_, ()>("b@localhost", "fail", &(), T)
            .await,
        Err(RemoteSpawnError::Exited(ExitReason::Panic(
            "task failed on purpose".into()
        )))
    );
    assert_eq!(
        a.dist()
            .task_on::<_, ()>("b@localhost", "slow", &5_000u64, Duration::from_millis(100))
            .await,
        Err(RemoteSpawnError::Timeout)
    );
    assert_eq!(
        a.dist()
            .task_on::<_, ()>("b@localhost", "unknown", &(), T)
            .await,
        Err(RemoteSpawnError::UnknownName("unknown".into()))
    );
    assert_eq!(a.dist().stats().pending_calls, 0);
}
