//! `clustertop --beam` against a real 3-node Erlang cluster: the snapshot
//! lists every node with the slow `gen_server` first and warned, the flag
//! works before or after the subcommand, and a wrong cookie is one line
//! and exit status 1.

use clustertop_beam::{Conn, Term};
use clustertop_testkit::erlang::{self, COOKIE, ErlNode, short_host, unique};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_clustertop");

fn clustertop(args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .args(args)
        .env_remove("ERLANG_COOKIE")
        .env("HOME", std::env::temp_dir())
        .output()
        .expect("clustertop runs")
}

/// Waits until the slow server's mailbox is past the default warning
/// threshold (1,000).
async fn wait_for_backlog(node: &str) {
    let me = format!("{}@{}", unique("wait"), short_host());
    let conn = Conn::connect(node, &me, COOKIE, Duration::from_secs(10))
        .await
        .unwrap();
    let start = Instant::now();
    loop {
        let pid = conn
            .call(
                "erlang",
                "whereis",
                vec![Term::Atom("slow_server".into())],
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        let len = conn
            .call(
                "erlang",
                "process_info",
                vec![pid, Term::Atom("message_queue_len".into())],
                Duration::from_secs(5),
            )
            .await
            .unwrap();
        let n: u64 = len
            .to_string()
            .trim_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .unwrap_or(0);
        if n > 1_200 {
            return;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "backlog {n}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn snapshot_json_of_a_beam_cluster_lists_every_node_and_the_slow_server_first() {
    if erlang::erlang("beam snapshot").is_none() {
        return;
    }
    let a = ErlNode::start(&unique("sa"), "slow_server:start()");
    let ping = format!("pong = net_adm:ping('{}')", a.name);
    let b = ErlNode::start(&unique("sb"), &ping);
    let c = ErlNode::start(&unique("sc"), &ping);
    wait_for_backlog(&a.name).await;

    let out = clustertop(&["snapshot", "--json", "--beam", &a.name, "--cookie", COOKIE]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    let nodes: Vec<&str> = v["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n["name"].as_str().unwrap())
        .collect();
    assert_eq!(nodes.len(), 3, "{nodes:?}");
    for n in [&a.name, &b.name, &c.name] {
        assert!(nodes.contains(&n.as_str()), "{n} in {nodes:?}");
    }
    assert!(v["nodes"][0]["beam"]["otp_release"].is_string());
    let top = &v["top_processes"][0];
    assert_eq!(top["name"], "slow_server", "{top}");
    assert_eq!(top["node"].as_str(), Some(a.name.as_str()));
    assert!(top["mailbox_len"].as_u64().unwrap() > 1_000);
    assert!(top["beam"]["current_function"].is_string());
    let warned = v["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|w| w["name"] == "slow_server")
        .unwrap_or_else(|| panic!("no warning about slow_server: {}", v["warnings"]));
    assert_eq!(warned["kind"], "mailbox_growing");

    // The flag before the subcommand, and the text form.
    let out = clustertop(&["--beam", &a.name, "--cookie", COOKIE, "snapshot"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("slow_server"), "{text}");
}

#[tokio::test]
async fn a_wrong_cookie_is_one_line_and_exit_status_1() {
    if erlang::erlang("beam cookie").is_none() {
        return;
    }
    let a = ErlNode::start(&unique("wc"), "ok");
    let out = clustertop(&["snapshot", "--beam", &a.name, "--cookie", "wrong"]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.contains("refused the cookie"), "{err}");
    // No cookie at all (none given, none in the environment or the home).
    let out = clustertop(&["snapshot", "--beam", &a.name]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no Erlang cookie"), "{err}");
    // `logs` says why there are none.
    let out = clustertop(&["logs", "--beam", &a.name, "--cookie", COOKIE]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("loads no code"));
}
