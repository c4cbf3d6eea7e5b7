//! A real 3-node Erlang cluster read through the attach protocol: every
//! node, the slow `gen_server` at the top of the process list with a
//! mailbox warning, its detail and its place in the supervision tree, a
//! killed node shown as down, and no module loaded into the target.

use clustertop_testkit::erlang as support;

use clustertop_beam::{BeamConfig, BeamSource, Conn};
use clustertop_client::Client;
use clustertop_client::ClientConfig;
use clustertop_proto::{NodeStatus, ProcessQuery, ProcessRow, SortKey, WarningKind};
use std::time::{Duration, Instant};
use support::{COOKIE, ErlNode, short_host, unique};

const LIMIT: Duration = Duration::from_secs(30);

async fn eventually<T, F: std::future::Future<Output = Option<T>>>(
    what: &str,
    mut f: impl FnMut() -> F,
) -> T {
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(start.elapsed() < LIMIT, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The module names `code:all_loaded()` lists on the node.
async fn loaded(conn: &Conn) -> Vec<String> {
    let t = conn
        .call("code", "all_loaded", vec![], Duration::from_secs(10))
        .await
        .unwrap();
    let clustertop_beam::Term::List(l) = t else {
        panic!("all_loaded: {t}")
    };
    let mut names: Vec<String> = l
        .elements
        .iter()
        .map(|e| match e {
            clustertop_beam::Term::Tuple(t) => t.elements[0].to_string(),
            other => other.to_string(),
        })
        .collect();
    names.sort();
    names
}

fn config(entry: &str) -> BeamConfig {
    let mut cfg = BeamConfig::new(ClientConfig::new(entry).cookie(COOKIE))
        .interval(Duration::from_millis(500));
    cfg.warnings.mailbox_on = 50;
    cfg.warnings.mailbox_off = 25;
    cfg.warnings.hold = Duration::from_secs(1);
    cfg
}

fn first(rows: &[ProcessRow]) -> &ProcessRow {
    rows.first().expect("a process")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_node_cluster_shows_the_slow_server_first_and_a_killed_node_as_down() {
    if support::erlang("attach").is_none() {
        return;
    }
    let host = short_host();
    let a = ErlNode::start(&unique("a"), "slow_server:start()");
    let ping = format!("pong = net_adm:ping('{}')", a.name);
    let b = ErlNode::start(&unique("b"), &ping);
    let mut c = ErlNode::start(&unique("c"), &ping);
    wait_for_name(&a.name, "slow_server").await;
    let me = format!("{}@{host}", unique("check"));
    let check = Conn::connect(&a.name, &me, COOKIE, LIMIT).await.unwrap();
    let before = loaded(&check).await;

    let source = BeamSource::connect(config(&a.name)).await.unwrap();
    let client: Client = source.client().await.unwrap();
    assert!(client.hello().agent_version.contains("OTP"));

    // Every node, the entry node first; the slow server on top, warned.
    let overview = eventually("3 nodes up and the slow server warned", || async {
        let o = client.overview().await.ok()?;
        let up = o
            .nodes
            .iter()
            .filter(|n| n.status == NodeStatus::Up)
            .count();
        let top = o.top_processes.first()?;
        (up == 3 && top.name.as_deref() == Some("slow_server") && top.figures.warnings > 0)
            .then_some(o)
    })
    .await;
    assert_eq!(overview.nodes[0].name, a.name);
    let names: Vec<&str> = overview.nodes.iter().map(|n| n.name.as_str()).collect();
    for n in [&a.name, &b.name, &c.name] {
        assert!(names.contains(&n.as_str()), "{n} in {names:?}");
    }
    let entry = &overview.nodes[0];
    let beam = entry.beam.as_ref().expect("BEAM figures");
    assert!(!beam.otp_release.is_empty());
    assert!(beam.process_limit >= entry.processes && entry.processes > 20);
    assert!(beam.memory.total >= beam.memory.processes && beam.memory.processes > 0);
    assert!(beam.whole_table && beam.rows > 20, "{beam:?}");
    // Three quiet nodes: no distribution link is busy.
    assert!(beam.dist_busy.is_empty(), "{:?}", beam.dist_busy);
    let top = first(&overview.top_processes);
    assert!(top.figures.mailbox_len >= 50, "{top:?}");
    assert!(top.figures.mailbox_growth_per_s > 0, "{top:?}");
    assert_eq!(top.behaviour, "slow_server:init/1");
    let work = top.beam.as_ref().unwrap();
    assert!(work.reductions_total > 0);
    let warned = overview
        .warnings
        .iter()
        .find(|w| w.name.as_deref() == Some("slow_server"))
        .expect("a warning about the slow server");
    assert!(matches!(warned.kind, WarningKind::MailboxGrowing { .. }));

    // The process list, cluster-wide, in the same order.
    let page = client
        .processes(ProcessQuery {
            filter: Default::default(),
            sort: SortKey::Default,
            descending: true,
            offset: 0,
            limit: 50,
        })
        .await
        .unwrap();
    assert_eq!(first(&page.rows).name.as_deref(), Some("slow_server"));
    assert!(page.total_matching > 20);
    let on_nodes: std::collections::HashSet<&str> =
        page.rows.iter().map(|r| r.pid.node.as_str()).collect();
    assert!(on_nodes.len() >= 2, "{on_nodes:?}");

    // Its detail: the supervisor above it, where it is now.
    let detail = client.process(top.pid.clone()).await.unwrap();
    let d = detail.beam.as_ref().expect("BEAM detail");
    assert!(d.pid.starts_with("<0."), "{}", d.pid);
    assert_eq!(d.initial_call.as_deref(), Some("slow_server:init/1"));
    assert!(!d.stacktrace.is_empty());
    assert!(d.total_heap_bytes >= d.heap_bytes && d.heap_bytes > 0);
    let sup = detail.supervisor_path.first().expect("a supervisor");
    let sup_row = page
        .rows
        .iter()
        .chain(&overview.top_processes)
        .find(|r| r.pid == *sup);
    if let Some(r) = sup_row {
        assert_eq!(r.name.as_deref(), Some("slow_sup"));
    }
    assert!(detail.links.contains(sup), "linked to its supervisor");

    // Its queue is read only when asked: the first 5, cut on the node
    // (its `-eval` loaded erl_eval).
    let peek = client
        .ask(clustertop_proto::PeekMailbox {
            pid: top.pid.clone(),
            limit: 5,
        })
        .await
        .unwrap();
    assert_eq!(peek.messages, ["{'$gen_cast',work}"; 5]);
    assert!(peek.queued >= 50);
    assert!(peek.note.as_deref().unwrap().contains("sent only these"));

    // The tree: slow_sup at a root, with its two children.
    let tree = client.tree(&a.name).await.unwrap();
    let slow_sup = tree
        .roots
        .iter()
        .find(|r| r.name.as_deref() == Some("slow_sup"))
        .expect("slow_sup is a root");
    assert!(slow_sup.supervisor);
    let ids: Vec<&str> = slow_sup
        .children
        .iter()
        .filter_map(|c| c.child_id.as_deref())
        .collect();
    assert_eq!(ids, ["slow_server", "feeder"]);
    assert!(
        tree.roots
            .iter()
            .any(|r| r.name.as_deref() == Some("kernel_sup"))
    );

    // The names: the slow server's local name; `pg` groups only where
    // `pg` runs (it is not loaded here, and is not loaded by asking).
    let registry = client.ask(clustertop_proto::GetRegistry).await.unwrap();
    let on_a = registry.nodes.iter().find(|n| n.node == a.name).unwrap();
    assert!(on_a.names.iter().any(|n| n.name == "slow_server"));
    assert!(on_a.groups.is_empty());

    // Logs are refused with the reason, not faked.
    let err = client
        .subscribe_logs(Default::default(), 8)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("loads no code"), "{err}");

    // Nothing was loaded into the entry node. (Checked before the kill
    // below: a node down makes the other nodes log, and formatting a log
    // event loads modules of their own.)
    assert_eq!(loaded(&check).await, before);

    // A killed node is down, with a warning.
    let c_name = c.name.clone();
    c.kill();
    eventually("the killed node down", || async {
        let o = client.overview().await.ok()?;
        let down = o
            .nodes
            .iter()
            .any(|n| n.name == c_name && matches!(n.status, NodeStatus::Down { .. }));
        let warned = o
            .warnings
            .iter()
            .any(|w| w.node == c_name && w.kind == WarningKind::NodeDown);
        (down && warned).then_some(())
    })
    .await;
    drop(b);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_without_erl_eval_has_its_short_queues_read_whole_and_nothing_loaded() {
    if support::erlang("attach").is_none() {
        return;
    }
    // The test's own node unloads erl_eval (its -eval is done with it).
    let a = ErlNode::start(
        &unique("s"),
        "slow_server:start(), true = code:delete(erl_eval)",
    );
    let source = BeamSource::connect(config(&a.name)).await.unwrap();
    let client: Client = source.client().await.unwrap();
    let top = eventually("the slow server", || async {
        let o = client.overview().await.ok()?;
        o.top_processes
            .into_iter()
            .find(|p| p.name.as_deref() == Some("slow_server") && p.figures.mailbox_len > 3)
    })
    .await;
    let peek = client
        .ask(clustertop_proto::PeekMailbox {
            pid: top.pid.clone(),
            limit: 3,
        })
        .await
        .unwrap();
    assert_eq!(peek.messages.len(), 3);
    let note = peek.note.unwrap();
    assert!(note.contains("erl_eval is not loaded"), "{note}");
    assert!(client.is_connected());
    // Asking did not load it.
    let me = format!("{}@{}", unique("check"), short_host());
    let check = Conn::connect(&a.name, &me, COOKIE, LIMIT).await.unwrap();
    let loaded = check
        .call(
            "erlang",
            "module_loaded",
            vec![clustertop_beam::Term::Atom("erl_eval".into())],
            LIMIT,
        )
        .await
        .unwrap();
    assert_eq!(loaded, clustertop_beam::Term::Atom("false".into()));

    // The entry node gone, requests fail as disconnected (the view then
    // attaches to another node), not with the last figures.
    let mut a = a;
    a.kill();
    eventually("the entry node's loss", || async {
        matches!(
            client.overview().await,
            Err(clustertop_client::ClientError::Disconnected(_))
        )
        .then_some(())
    })
    .await;
    assert!(!client.is_connected());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ranked_on_the_node_only_the_top_processes_cross_and_the_slow_server_leads() {
    if support::erlang("attach").is_none() {
        return;
    }
    let a = ErlNode::start(
        &unique("k"),
        "slow_server:start(), [spawn(fun() -> receive stop -> ok end end) || _ <- lists:seq(1, 2000)]",
    );
    let mut cfg = config(&a.name);
    cfg.table = clustertop_beam::TableMode::Top;
    let source = BeamSource::connect(cfg).await.unwrap();
    let client: Client = source.client().await.unwrap();
    let overview = eventually("the slow server first, warned", || async {
        let o = client.overview().await.ok()?;
        let top = o.top_processes.first()?;
        (top.name.as_deref() == Some("slow_server") && top.figures.warnings > 0).then_some(o)
    })
    .await;
    // The node holds over 2,000 processes; three rankings of 200, and
    // last round's rows (again at most 600), were sent.
    assert!(overview.nodes[0].processes > 2_000);
    let beam = overview.nodes[0].beam.as_ref().unwrap();
    assert!(!beam.whole_table && beam.rows <= 1_200, "{beam:?}");
    let page = client
        .processes(ProcessQuery {
            filter: clustertop_proto::ProcessFilter {
                include_system: true,
                ..Default::default()
            },
            sort: SortKey::Default,
            descending: true,
            offset: 0,
            limit: 5_000,
        })
        .await
        .unwrap();
    assert!(
        page.total_matching <= 2 * 3 * 200 && page.total_matching >= 200,
        "{} rows",
        page.total_matching
    );
    assert!(first(&page.rows).figures.mailbox_growth_per_s > 0);
    // The tree does not depend on which rows were sent: it starts from
    // the registered supervisors too, and walks down their children.
    let tree = client.tree(&a.name).await.unwrap();
    let roots: Vec<&str> = tree
        .roots
        .iter()
        .filter_map(|r| r.name.as_deref())
        .collect();
    assert!(roots.contains(&"kernel_sup"), "{roots:?}");
    let slow_sup = tree
        .roots
        .iter()
        .find(|r| r.name.as_deref() == Some("slow_sup"))
        .unwrap_or_else(|| panic!("slow_sup among {roots:?}"));
    assert_eq!(slow_sup.children.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_process_table_is_read_again_only_after_its_pace() {
    if support::erlang("attach").is_none() {
        return;
    }
    let a = ErlNode::start(&unique("p"), "slow_server:start()");
    wait_for_name(&a.name, "slow_server").await;
    // Rounds every 200 ms; the table read again only after 100,000 times
    // its last read took (minutes): the node's figures move, the rows stay.
    let mut cfg = config(&a.name).interval(Duration::from_millis(200));
    cfg.pace = 100_000;
    let source = BeamSource::connect(cfg).await.unwrap();
    source.wait_rounds(1).await;
    let client: Client = source.client().await.unwrap();
    let first = client.overview().await.unwrap();
    let len = |o: &clustertop_proto::ClusterOverview| {
        o.top_processes
            .iter()
            .find(|p| p.name.as_deref() == Some("slow_server"))
            .map(|p| p.figures.mailbox_len)
    };
    // A second of rounds later (the node's own figures tell).
    let later = eventually("a second of rounds", || async {
        let o = client.overview().await.ok()?;
        (o.nodes[0].uptime_ms >= first.nodes[0].uptime_ms + 1_000).then_some(o)
    })
    .await;
    assert_eq!(len(&later), len(&first), "the rows are the first read's");
    assert!(len(&first).is_some());
}

/// Waits until `name` is registered on `node` (its `-eval` has run).
async fn wait_for_name(node: &str, name: &str) {
    let me = format!("{}@{}", unique("wait"), short_host());
    let conn = Conn::connect(node, &me, COOKIE, LIMIT).await.unwrap();
    eventually("the name registered", || async {
        let pid = conn
            .call(
                "erlang",
                "whereis",
                vec![clustertop_beam::Term::Atom(name.into())],
                LIMIT,
            )
            .await
            .ok()?;
        matches!(pid, clustertop_beam::Term::Pid(_)).then_some(())
    })
    .await;
    conn.close();
}
