use super::*;
use crate::fixtures;
use serde_json::json;

fn snapshot() -> Value {
    let mut o = fixtures::overview(0);
    // The snapshot's own connection, as the entry node lists it.
    let mut own = o.links[0].clone();
    own.peer = "clustertop-4242-1@localhost".into();
    o.links.push(own);
    json(&o, Some(&fixtures::telemetry()), None).unwrap()
}

#[test]
fn the_json_form_is_versioned_and_shaped_for_jq() {
    let v = snapshot();
    assert_eq!(v["schema_version"], 1);
    // A process row: its figures beside its pid, not in an object of
    // their own.
    let top = &v["top_processes"][0];
    assert_eq!(top["pid"], "<b@host.311.7>", "{top}");
    assert_eq!(top["mailbox_len"], 48_211, "{top}");
    assert_eq!(top["util_permille"], 1000, "{top}");
    assert!(top.get("figures").is_none(), "{top}");
    // Nodes: a status string, a variant's fields beside it, rates beside
    // the counters.
    assert_eq!(v["nodes"][0]["status"], "up");
    assert_eq!(v["nodes"][0]["messages_in_per_s"], 600_000);
    assert_eq!(v["nodes"][0]["cpu_permille"], 710);
    assert_eq!(v["nodes"][2]["status"], "down");
    assert_eq!(
        v["nodes"][2]["last_seen_unix_ms"],
        fixtures::T0 - 12_000,
        "{}",
        v["nodes"][2]
    );
    // Warnings: the kind and its fields at the top, the process named.
    assert_eq!(
        v["warnings"][0],
        json!({
            "kind": "mailbox_growing",
            "len": 48_211,
            "growth_per_s": 1_200,
            "node": "b@host",
            "pid": "<b@host.311.7>",
            "name": "ChatSystem.MessageStore",
            "behaviour": "MessageStore",
            "since_unix_ms": fixtures::T0 - 40_000,
        })
    );
    assert_eq!(v["warnings"][1]["kind"], "node_down");
    // Process rows: the pid as a string, and the node beside it.
    let top = &v["top_processes"][0];
    assert_eq!(top["pid"], "<b@host.311.7>");
    assert_eq!(top["node"], "b@host");
    assert_eq!(top["status"], "running");
    assert_eq!(
        top["behaviour"], "MessageStore",
        "a behaviour is not a variant"
    );
    // Only links to the cluster's nodes.
    let peers: Vec<&str> = v["links"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["peer"].as_str().unwrap())
        .collect();
    assert_eq!(peers, ["b@host"]);
    // Telemetry: tagged values, labels as an object.
    let series = &v["telemetry"]["nodes"][0]["series"];
    let counter = series
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "chat_messages_total")
        .unwrap();
    assert_eq!(counter["labels"], json!({"room": "lobby"}));
    assert_eq!(counter["value"]["kind"], "counter");
    assert_eq!(counter["value"]["total"], 90_000);
    assert_eq!(
        v["telemetry"]["nodes"][0]["endpoints"][0]["kind"],
        "prometheus"
    );
}

#[test]
fn the_text_form_aligns_long_names_and_counts_in_words() {
    let mut o = fixtures::overview(0);
    o.nodes.truncate(1);
    o.nodes[0].name = "a-node-with-a-very-long-name@host.example.com".into();
    o.top_processes[0].name = Some("ChatSystem.MessageStore.with.a.long.name".into());
    let text = text(&o);
    assert!(
        text.starts_with("cluster via a@host: 1 node (0 not up)"),
        "{text}"
    );
    // Every row of a table starts its columns where the header does.
    let column = |line: &str, at: usize| line.chars().nth(at);
    let lines: Vec<&str> = text.lines().collect();
    let header = lines.iter().position(|l| l.starts_with("PID")).unwrap();
    let mailbox = lines[header].find("MAILBOX").unwrap();
    let width = "MAILBOX".len();
    for row in &lines[header + 1..] {
        // Right-aligned: the figure ends where the header does.
        assert_ne!(column(row, mailbox + width - 1), Some(' '), "{text}");
        assert_eq!(column(row, mailbox + width), Some(' '), "{text}");
    }
    let node_header = lines.iter().position(|l| l.starts_with("NODE")).unwrap();
    let status = lines[node_header].find("STATUS").unwrap();
    assert_eq!(&lines[node_header + 1][status..status + 2], "up", "{text}");
}
