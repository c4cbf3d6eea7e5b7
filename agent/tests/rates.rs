//! A node's totals travel with the time they were read: a viewer polling
//! faster than the agent samples (as `clustertop` and `snapshot --json`
//! may) turns two summaries into a rate by dividing the change of a total
//! by the change of `sampled_at_unix_ms`, and gets the real rate every
//! time, never a zero between two samples nor a spike after one.

mod support;

use clustertop_agent::AgentConfig;
use clustertop_client::{Client, ClientConfig};
use clustertop_runtime::Received;
use std::time::Duration;
use support::{addr, cluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rates_from_a_poller_faster_than_the_sample_are_steady() {
    let config = AgentConfig {
        interval: Duration::from_secs(1),
        ..support::fast_config()
    };
    let (nodes, _agents) = cluster(&["a@localhost", "b@localhost"], config).await;
    // About 2,000 messages a second into a sink on b, in small steady steps.
    let sink = nodes[1].spawn::<u64, _, _>(|mut ctx| async move {
        while let Received::Msg(_) = ctx.recv().await {}
    });
    nodes[1].spawn::<(), _, _>(move |_ctx| async move {
        let mut tick = tokio::time::interval(Duration::from_millis(5));
        for i in 0.. {
            tick.tick().await;
            for j in 0..10 {
                sink.send(i * 10 + j);
            }
        }
    });
    let client = Client::connect(ClientConfig::new(addr(&nodes[0])).cookie(support::COOKIE))
        .await
        .expect("client attaches");

    // Poll every 300 ms for 6 s: three or four polls per agent sample.
    let mut readings = Vec::new();
    for _ in 0..20 {
        let o = client.overview().await.expect("overview");
        let b = o
            .nodes
            .iter()
            .find(|n| n.name == "b@localhost")
            .expect("b in the overview");
        readings.push((b.sampled_at_unix_ms, b.messages_in_total));
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let mut rates = Vec::new();
    for pair in readings.windows(2) {
        let ((t0, n0), (t1, n1)) = (pair[0], pair[1]);
        assert!(
            t1 >= t0 && n1 >= n0,
            "time and total go forward together: {readings:?}"
        );
        if t1 > t0 {
            rates.push(n1.saturating_sub(n0) as f64 * 1000.0 / (t1 - t0) as f64);
        } else {
            assert_eq!(n1, n0, "a total changed with its time: {readings:?}");
        }
    }
    // The first rate may cover the sink's start; the rest are steady.
    let steady = &rates[1..];
    assert!(steady.len() >= 3, "too few samples: {readings:?}");
    let mut sorted = steady.to_vec();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    assert!(median > 500.0, "the sink receives: {rates:?}");
    for r in steady {
        assert!(
            (median * 0.6..=median * 1.4).contains(r),
            "a rate {r:.0}/s against a median of {median:.0}/s: {rates:?} from {readings:?}"
        );
    }
}
