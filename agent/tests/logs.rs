//! Log subscriptions across the cluster: a client attached to one node
//! receives the records of every node, filtered at the source, and
//! stops receiving them when it unsubscribes.

mod support;

use clustertop_client::{Client, ClientConfig, LogStream};
use clustertop_proto::{LogFilter, LogLevel, LogRecord};
use clustertop_runtime::Received;
use std::collections::BTreeSet;
use std::time::Duration;
use support::{cluster, fast_config};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_on_one_node_receives_records_from_every_node() {
    tracing_subscriber::registry()
        .with(clustertop_agent::log_layer(LogLevel::Info))
        .init();
    let names = ["a@localhost", "b@localhost", "c@localhost"];
    let (nodes, agents) = cluster(&names, fast_config()).await;
    let client =
        Client::connect(ClientConfig::new(support::addr(&nodes[0])).cookie(support::COOKIE))
            .await
            .unwrap();
    let filter = LogFilter {
        min_level: LogLevel::Warn,
        text: Some("order".into()),
        ..LogFilter::default()
    };
    let mut stream = client.subscribe_logs(filter.clone(), 64).await.unwrap();
    let mut other = client.subscribe_logs(filter, 64).await.unwrap();
    for agent in &agents {
        assert_eq!(agent.log_subscriptions(), 2);
    }

    // Every node logs from inside a process: one record that matches and
    // two that do not (wrong level, wrong text).
    for node in &nodes {
        let logger = node.spawn::<u32, _, _>(|mut ctx| async move {
            while let Received::Msg(n) = ctx.recv().await {
                tracing::warn!(n, "order {n} is late");
                tracing::info!(n, "order {n} is fine");
                tracing::warn!("unrelated");
            }
        });
        node.register("logger", logger.id()).unwrap();
        logger.send(7);
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let seen = nodes_seen(&mut stream, names.len(), deadline, |r| {
        assert_eq!(r.level, LogLevel::Warn, "{r:?}");
        assert!(r.message.contains("order 7 is late"), "{r:?}");
        assert_eq!(r.process.as_deref(), Some("logger"));
        let pid = r.pid.as_ref().expect("logged inside a process");
        assert_eq!(pid.node, r.node);
        assert!(r.fields.iter().any(|(k, v)| k == "n" && v == "7"), "{r:?}");
        true
    })
    .await;
    assert_eq!(seen.into_iter().collect::<Vec<_>>(), names);

    // After unsubscribing, every node stops pushing for it; the other
    // subscription goes on.
    stream.close().await.unwrap();
    for agent in &agents {
        assert_eq!(agent.log_subscriptions(), 1);
    }
    for node in &nodes {
        node.send_named("logger", 8u32).unwrap();
    }
    nodes_seen(&mut other, names.len(), deadline, |r| {
        r.message.contains("order 8")
    })
    .await;
}

/// Reads `stream` until records that `pick` accepts have come from `n`
/// nodes; returns those nodes. Asserts nothing was dropped.
async fn nodes_seen(
    stream: &mut LogStream,
    n: usize,
    deadline: tokio::time::Instant,
    mut pick: impl FnMut(&LogRecord) -> bool,
) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    while seen.len() < n {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("records from every node in time")
            .expect("the stream is open");
        assert_eq!(chunk.dropped_total, 0);
        for r in chunk.records {
            if pick(&r) {
                seen.insert(r.node);
            }
        }
    }
    seen
}
