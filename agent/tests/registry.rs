//! The application layer seen through the attach protocol: PubSub topics
//! with subscribers per node and delivery counters, Presence topics,
//! global and local names with their holders, groups, and one process's
//! share of them; and the version rules around these version-3 requests.

mod support;

use clustertop_client::{Client, ClientConfig, ClientError};
use clustertop_proto::{
    GetProcessRegistry, GetRegistry, MIN_VERSION, NameScope, NodeRegistry, ProtoError, Registry,
    VERSION,
};
use clustertop_runtime::app::presence::{Presence, PresenceConfig};
use clustertop_runtime::app::pubsub::PubSub;
use clustertop_runtime::{Node, Pid};
use std::time::Duration;
use support::{cluster, eventually, fast_config};

const LIMIT: Duration = Duration::from_secs(20);

fn idle(node: &Node) -> Pid<String> {
    node.spawn::<String, _, _>(
        |mut ctx| async move { while ctx.recv().await.into_msg().is_some() {} },
    )
}

fn part<'a>(registry: &'a Registry, node: &str) -> &'a NodeRegistry {
    registry
        .nodes
        .iter()
        .find(|n| n.node == node)
        .unwrap_or_else(|| panic!("no part for {node} in {registry:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_shows_topics_presences_names_and_groups_per_node() {
    let (nodes, _agents) = cluster(&["r1@localhost", "r2@localhost"], fast_config()).await;
    let (a, b) = (&nodes[0], &nodes[1]);
    let ps_a = PubSub::start(a, "chat.pubsub").unwrap();
    let ps_b = PubSub::start(b, "chat.pubsub").unwrap();
    let presence_b: Presence<String> =
        Presence::start(b, "chat.presence", &ps_b, PresenceConfig::default()).unwrap();
    let _presence_a: Presence<String> =
        Presence::start(a, "chat.presence", &ps_a, PresenceConfig::default()).unwrap();

    let member_a = idle(a);
    let member_b1 = idle(b);
    let member_b2 = idle(b);
    ps_a.subscribe("room:lobby", &member_a);
    ps_b.subscribe("room:lobby", &member_b1);
    ps_b.subscribe("room:lobby", &member_b2);
    ps_b.subscribe("room:other", &member_b2);
    presence_b
        .track(member_b1.id(), "room:lobby", "ann", "web".into())
        .unwrap();
    a.register("chat_store", member_a.id()).unwrap();
    b.global().register("counter", &member_b2).await.unwrap();
    b.groups().join("workers", member_b1.id()).unwrap();
    b.groups().join("workers", member_b2.id()).unwrap();
    for i in 0..5 {
        ps_a.broadcast("room:lobby", format!("hello {i}")).unwrap();
    }

    let client = Client::connect(ClientConfig::new(support::addr(a)).cookie(support::COOKIE))
        .await
        .unwrap();
    assert_eq!(client.hello().version, clustertop_proto::VERSION);
    let registry = eventually("every part of the registry", LIMIT, || async {
        let r = client.ask(GetRegistry).await.ok()?;
        let on_b = r.nodes.iter().find(|n| n.node == "r2@localhost")?;
        let lobby = on_b.topics.iter().find(|t| t.topic == "room:lobby")?;
        // Node A's replica learns of B's `track` and announces the join
        // as a local broadcast on the same topic: one more publish on A
        // (delivered to no one: the members take `String`s, not diffs).
        // Wait for it too, or A's count is 5 or 6 by timing.
        let on_a = r.nodes.iter().find(|n| n.node == "r1@localhost")?;
        let lobby_a = on_a.topics.iter().find(|t| t.topic == "room:lobby")?;
        let seen = lobby.delivered_total == 10
            && on_b.presences.iter().any(|p| p.topic == "room:lobby")
            && on_a.presences.iter().any(|p| p.topic == "room:lobby")
            && lobby_a.published_total == 6;
        seen.then_some(r)
    })
    .await;
    assert!(registry.missing.is_empty());

    let on_a = part(&registry, "r1@localhost");
    let lobby_a = on_a
        .topics
        .iter()
        .find(|t| t.topic == "room:lobby")
        .unwrap();
    assert_eq!(
        (
            lobby_a.subscribers,
            lobby_a.published_total,
            lobby_a.delivered_total
        ),
        (1, 6, 5),
        "5 broadcasts and the presence join diff; only the broadcasts reach the member"
    );
    assert_eq!(lobby_a.instance, "chat.pubsub");
    let on_b = part(&registry, "r2@localhost");
    let lobby_b = on_b
        .topics
        .iter()
        .find(|t| t.topic == "room:lobby")
        .unwrap();
    assert_eq!((lobby_b.subscribers, lobby_b.delivered_total), (2, 10));
    assert!(
        on_b.topics
            .iter()
            .any(|t| t.topic == "room:other" && t.subscribers == 1)
    );

    let presence = on_b
        .presences
        .iter()
        .find(|p| p.topic == "room:lobby")
        .unwrap();
    assert_eq!((presence.tracked, presence.keys, presence.local), (1, 1, 1));

    let store = on_a.names.iter().find(|n| n.name == "chat_store").unwrap();
    assert_eq!(store.scope, NameScope::Local);
    assert_eq!(store.pid.serial, member_a.id().serial());
    let counter = on_b.names.iter().find(|n| n.name == "counter").unwrap();
    assert_eq!(counter.scope, NameScope::Global);
    assert_eq!(counter.pid.node, "r2@localhost");
    assert!(
        !on_a.names.iter().any(|n| n.name == "counter"),
        "listed once, by its holder's node"
    );
    let workers = on_b.groups.iter().find(|g| g.group == "workers").unwrap();
    assert_eq!(workers.members, 2);

    // One process's share, asked through the entry node.
    let pid = counter.pid.clone();
    let mine = client.ask(GetProcessRegistry { pid }).await.unwrap();
    assert_eq!(mine.global_names, ["counter"]);
    assert_eq!(mine.groups, ["workers"]);
    assert_eq!(
        mine.subscriptions,
        [
            ("chat.pubsub".to_owned(), "room:lobby".to_owned()),
            ("chat.pubsub".to_owned(), "room:other".to_owned())
        ]
    );
    let mut ann = on_b.names[0].pid.clone();
    ann.serial = member_b1.id().serial();
    let tracked = client.ask(GetProcessRegistry { pid: ann }).await.unwrap();
    assert_eq!(
        tracked.presences,
        [(
            "chat.presence".to_owned(),
            "room:lobby".to_owned(),
            "ann".to_owned()
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_of_a_version_whose_rows_changed_shape_is_refused_clearly() {
    // Version 5 changed the shape of process rows and warnings, so it is
    // also the oldest version spoken: a version-4 client is told so.
    let (nodes, _agents) = cluster(&["new@localhost"], fast_config()).await;
    let mut config = ClientConfig::new(support::addr(&nodes[0])).cookie(support::COOKIE);
    config.version = 4;
    match Client::connect(config).await {
        Err(e @ ClientError::Agent(ProtoError::UnsupportedVersion { client: 4, .. })) => {
            let text = e.to_string();
            assert!(
                text.contains("version 4 is not supported")
                    && text.contains(&format!("speaks {MIN_VERSION} to {VERSION}")),
                "{text}"
            );
        }
        other => panic!("{other:?}"),
    }
}
