//! A subscription's backlog: each node sends its last N matching records
//! first, in one chunk marked as the backlog (even when it has none), and
//! every later chunk holds only what was logged after the subscription
//! began, so a client can print exactly the last N cluster-wide.

mod support;

use clustertop_client::{Client, ClientConfig};
use clustertop_proto::{LogFilter, LogLevel};
use clustertop_runtime::Received;
use std::collections::HashMap;
use std::time::Duration;
use support::{cluster, fast_config};

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_node_sends_its_backlog_once_and_apart_from_what_follows() {
    tracing_subscriber::registry()
        .with(clustertop_agent::log_layer(LogLevel::Info))
        .init();
    let names = ["a@localhost", "b@localhost", "c@localhost"];
    let (nodes, _agents) = cluster(&names, fast_config()).await;
    // Nodes a and b log five records each before the subscription and keep
    // logging through it; c logs nothing that matches.
    let mut loggers = Vec::new();
    for node in &nodes[..2] {
        let logger = node.spawn::<u32, _, _>(|mut ctx| async move {
            while let Received::Msg(n) = ctx.recv().await {
                tracing::warn!("tailed record {n}");
            }
        });
        for n in 0..5 {
            logger.send(n);
        }
        loggers.push(logger);
    }
    // Until every record before the subscription is in its ring: each
    // logger has handled its five messages.
    for (node, logger) in nodes.iter().zip(&loggers) {
        support::wait_for("the records logged", Duration::from_secs(10), || {
            node.introspect()
                .process_info(logger.id())
                .is_some_and(|i| i.handled >= 5)
        })
        .await;
    }
    let keep_logging = {
        let loggers = loggers.clone();
        tokio::spawn(async move {
            for n in 100.. {
                for l in &loggers {
                    l.send(n);
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let client =
        Client::connect(ClientConfig::new(support::addr(&nodes[0])).cookie(support::COOKIE))
            .await
            .unwrap();
    let filter = LogFilter {
        min_level: LogLevel::Warn,
        text: Some("tailed record".into()),
        ..LogFilter::default()
    };
    let mut stream = client
        .subscribe_logs_with_backlog(filter, 2, 256)
        .await
        .unwrap();

    let mut backlogs: HashMap<String, Vec<String>> = HashMap::new();
    let mut after = 0;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while backlogs.len() < names.len() || after < 20 {
        let chunk = tokio::time::timeout_at(deadline, stream.next())
            .await
            .expect("every node's backlog and then new records")
            .expect("the stream stays open");
        if chunk.backlog {
            let texts = chunk.records.iter().map(|r| r.message.clone()).collect();
            let first = backlogs.insert(chunk.node.clone(), texts);
            assert!(first.is_none(), "{} sent a second backlog", chunk.node);
        } else {
            assert!(
                backlogs.contains_key(&chunk.node),
                "{} sent records before its backlog",
                chunk.node
            );
            for r in &chunk.records {
                assert_eq!(r.node, chunk.node);
                after += 1;
            }
        }
    }
    keep_logging.abort();
    // At most two each: the last ones each node logged before it began
    // (the records logged meanwhile may already be the last two).
    for node in &names[..2] {
        let texts = &backlogs[*node];
        assert_eq!(texts.len(), 2, "{node}: {texts:?}");
        let numbers: Vec<u32> = texts
            .iter()
            .map(|t| t.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(numbers[0] < numbers[1], "{node}: oldest first, {texts:?}");
        assert!(numbers[0] >= 3, "{node}: the last ones, {texts:?}");
    }
    assert_eq!(backlogs["c@localhost"], Vec::<String>::new());
}
