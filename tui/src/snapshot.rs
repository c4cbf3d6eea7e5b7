//! `clustertop snapshot`: one overview of the cluster, as text for people
//! or as JSON for scripts.
//!
//! # The JSON form (schema version 1)
//! The attach protocol's overview, reshaped for `jq`:
//! - `schema_version`: 1; bumped when a field changes meaning or goes.
//! - every pid is a string `<node.serial.creation>`
//!   (`<demo-2@localhost.41.1>`); a process row also has its `node`, and
//!   its figures (`mailbox_len`, `util_permille`, …) sit beside its pid;
//! - every enum is a lowercase string, and a variant's fields sit beside
//!   it: a warning is `{"kind": "mailbox_growing", "len": …,
//!   "growth_per_s": …, "node": …, "pid": …, "name": …, "behaviour": …}`,
//!   a node `{"status": "down", "last_seen_unix_ms": …}`, a series value
//!   `{"kind": "counter", "total": …, "per_s": …}`;
//! - series labels are an object;
//! - nodes carry their rates beside their counters (`messages_in_per_s`,
//!   `cpu_permille` of all cores, over the agent's last interval);
//! - `links` lists the entry node's links to the cluster's nodes only (not
//!   the snapshot's own connection).

use crate::format;
use clustertop_proto::{ClusterOverview, NodeStatus, Telemetry};
use serde_json::{Map, Value};

/// The version of the JSON form's shape.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// The JSON form: the overview, `telemetry` and the top processes'
/// traces (`process_traces`, already as JSON) when there are.
pub(crate) fn json(
    o: &ClusterOverview,
    telemetry: Option<&Telemetry>,
    process_traces: Option<Vec<Value>>,
) -> Result<Value, serde_json::Error> {
    let names: Vec<&str> = o.nodes.iter().map(|n| n.name.as_str()).collect();
    let mut overview = o.clone();
    overview.links.retain(|l| names.contains(&l.peer.as_str()));
    let mut value = serde_json::to_value(&overview)?;
    if let Some(rows) = value.get_mut("top_processes").and_then(Value::as_array_mut) {
        for row in rows {
            let node = row["pid"]["node"].clone();
            if let Some(r) = row.as_object_mut() {
                r.insert("node".into(), node);
            }
        }
    }
    let map = value.as_object_mut().expect("an overview is an object");
    if let Some(t) = telemetry {
        map.insert("telemetry".into(), serde_json::to_value(t)?);
    }
    if let Some(traces) = process_traces {
        map.insert("process_traces".into(), traces.into());
    }
    let mut out = Map::new();
    out.insert("schema_version".into(), SCHEMA_VERSION.into());
    out.extend(std::mem::take(map));
    let mut out = Value::Object(out);
    reshape(&mut out);
    Ok(out)
}

/// Applies the JSON form's rules (see the module docs) to `v` and all
/// that it holds.
fn reshape(v: &mut Value) {
    match v {
        Value::Array(items) => items.iter_mut().for_each(reshape),
        Value::Object(map) => {
            if is_pid(map) {
                *v = Value::String(pid(map));
                return;
            }
            let keys: Vec<String> = map.keys().cloned().collect();
            for key in keys {
                let Some(mut field) = map.remove(&key) else {
                    continue;
                };
                reshape(&mut field);
                if key == "labels" {
                    // User text: its keys are never variants.
                    map.insert(key, labels(field));
                    continue;
                }
                if let ("figures", Value::Object(figures)) = (key.as_str(), &mut field) {
                    // A process row's figures sit beside its pid and name.
                    map.append(figures);
                    continue;
                }
                let tag = key == "status" || key == "kind";
                match variant(&field, tag) {
                    // `status` and `kind` name the variant; its fields
                    // join the object that holds it.
                    Some((name, inner)) if key == "status" || key == "kind" => {
                        map.insert(key, Value::String(name));
                        map.extend(inner);
                    }
                    Some((name, inner)) => {
                        let mut tagged = Map::new();
                        tagged.insert("kind".into(), Value::String(name));
                        tagged.extend(inner);
                        map.insert(key, Value::Object(tagged));
                    }
                    None => {
                        map.insert(key, field);
                    }
                }
            }
        }
        _ => {}
    }
}

/// An enum as serde writes it: a unit variant (`"NodeDown"`; a string is
/// one only under `status` and `kind`, `tag`) or a one-key object whose
/// key is a variant's name (`{"Down": {…}}`, `{"Gauge": 2.0}`). Returns
/// its snake-case name and its fields.
fn variant(v: &Value, tag: bool) -> Option<(String, Map<String, Value>)> {
    match v {
        Value::String(s) if tag && s.starts_with(|c: char| c.is_ascii_uppercase()) => {
            Some((snake(s), Map::new()))
        }
        Value::Object(m) if m.len() == 1 => {
            let (name, inner) = m.iter().next()?;
            if !name.starts_with(|c: char| c.is_ascii_uppercase()) {
                return None;
            }
            let fields = match inner {
                Value::Object(fields) => fields.clone(),
                other => Map::from_iter([("value".to_owned(), other.clone())]),
            };
            Some((snake(name), fields))
        }
        _ => None,
    }
}

/// Series labels, `[["room", "lobby"]]` as serde writes the pairs, as an
/// object: `{"room": "lobby"}`.
fn labels(v: Value) -> Value {
    match v {
        Value::Array(pairs) => Value::Object(
            pairs
                .into_iter()
                .filter_map(|p| match p {
                    Value::Array(kv) if kv.len() == 2 => {
                        let mut kv = kv.into_iter();
                        let k = kv.next()?.as_str()?.to_owned();
                        Some((k, kv.next()?))
                    }
                    _ => None,
                })
                .collect(),
        ),
        other => other,
    }
}

fn is_pid(m: &Map<String, Value>) -> bool {
    m.len() == 3 && m.contains_key("node") && m.contains_key("serial") && m.contains_key("creation")
}

fn pid(m: &Map<String, Value>) -> String {
    format!(
        "<{}.{}.{}>",
        m["node"].as_str().unwrap_or("?"),
        m["serial"],
        m["creation"]
    )
}

/// `MailboxGrowing` → `mailbox_growing`.
fn snake(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, c) in name.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// `1 node`, `3 nodes`.
fn plural(n: usize, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// The text form: nodes, warnings, top processes, each table as wide as
/// its longest entry.
pub(crate) fn text(o: &ClusterOverview) -> String {
    let mut out = String::new();
    let down = o
        .nodes
        .iter()
        .filter(|n| !matches!(n.status, NodeStatus::Up))
        .count();
    out.push_str(&format!(
        "cluster via {}: {} ({} not up)\n\n",
        format::printable(&o.entry),
        plural(o.nodes.len(), "node", "nodes"),
        down
    ));
    if o.nodes.iter().any(|n| n.beam.is_some()) {
        beam_text(o, &mut out);
        return out;
    }
    let rows: Vec<[String; 7]> = o
        .nodes
        .iter()
        .map(|n| {
            [
                format::printable(&n.name).into_owned(),
                format::status(&n.status).to_owned(),
                format::duration_ms(n.uptime_ms),
                format::count(n.processes),
                format::rate(n.messages_in_per_s as f64),
                format::permille(n.cpu_permille),
                format::bytes(n.rss_bytes),
            ]
        })
        .collect();
    table(
        &mut out,
        [
            "NODE", "STATUS", "UPTIME", "PROCS", "MSG/S IN", "CPU/ALL", "RSS",
        ],
        &rows,
        2,
    );
    warnings_text(o, &mut out);
    let rows: Vec<[String; 8]> = o
        .top_processes
        .iter()
        .map(|p| {
            [
                format::printable(&format::pid(&p.pid)).into_owned(),
                format::printable(&p.pid.node).into_owned(),
                format::printable(&format::process_name(p)).into_owned(),
                format::count(p.figures.mailbox_len),
                format::measured(&p.figures, || {
                    format::growth(p.figures.mailbox_growth_per_s)
                }),
                format::measured(&p.figures, || format::count(p.figures.handled_per_s)),
                format::measured(&p.figures, || format::permille(p.figures.util_permille)),
                format::bytes(p.figures.memory_bytes),
            ]
        })
        .collect();
    table(
        &mut out,
        [
            "PID", "NODE", "NAME", "MAILBOX", "GROWTH", "MSG/S", "UTIL", "MEMORY",
        ],
        &rows,
        3,
    );
    out
}

/// The warnings block of the text overview.
fn warnings_text(o: &ClusterOverview, out: &mut String) {
    out.push_str(&format!("\nWARNINGS ({})\n", o.warnings.len()));
    for w in &o.warnings {
        out.push_str(&format!("  {}\n", format::printable(&format::warning(w))));
    }
    out.push('\n');
}

/// A BEAM cluster's overview: its own figures in place of ours.
fn beam_text(o: &ClusterOverview, out: &mut String) {
    let rows: Vec<[String; 9]> = o
        .nodes
        .iter()
        .map(|n| {
            let b = n.beam.clone().unwrap_or_default();
            let up = n.beam.is_some();
            let dash = |s: String| if up { s } else { "–".to_owned() };
            [
                format::printable(&n.name).into_owned(),
                format::status(&n.status).to_owned(),
                dash(format::printable(&b.otp_release).into_owned()),
                dash(format::duration_ms(n.uptime_ms)),
                dash(format!(
                    "{}/{}",
                    format::count(n.processes),
                    format::count(b.process_limit)
                )),
                dash(format::count(b.run_queue)),
                dash(format::rate(b.reductions_per_s as f64)),
                dash(format::bytes(b.memory.total)),
                dash(format::bytes(b.memory.binary)),
            ]
        })
        .collect();
    table(
        out,
        [
            "NODE", "STATUS", "OTP", "UPTIME", "PROCS", "RUNQ", "REDS/S", "MEMORY", "BINARY",
        ],
        &rows,
        3,
    );
    warnings_text(o, out);
    let rows: Vec<[String; 8]> = o
        .top_processes
        .iter()
        .map(|p| {
            let b = p.beam.clone().unwrap_or_default();
            [
                format::printable(&format::pid(&p.pid)).into_owned(),
                format::printable(&p.pid.node).into_owned(),
                format::printable(&format::process_name(p)).into_owned(),
                format::printable(b.current_function.as_deref().unwrap_or("")).into_owned(),
                format::count(p.figures.mailbox_len),
                format::measured(&p.figures, || {
                    format::growth(p.figures.mailbox_growth_per_s)
                }),
                format::measured(&p.figures, || format::rate(b.reductions_per_s as f64)),
                format::bytes(p.figures.memory_bytes),
            ]
        })
        .collect();
    table(
        out,
        [
            "PID", "NODE", "NAME", "CURRENT", "MAILBOX", "GROWTH", "REDS/S", "MEMORY",
        ],
        &rows,
        4,
    );
}

/// Columns as wide as their widest cell; the first `left` left-aligned,
/// the rest (figures) right-aligned.
fn table<const N: usize>(out: &mut String, header: [&str; N], rows: &[[String; N]], left: usize) {
    let mut widths = header.map(|h| h.chars().count());
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: &mut dyn Iterator<Item = &str>| {
        let parts: Vec<String> = cells
            .enumerate()
            .map(|(i, c)| {
                if i < left {
                    format!("{c:<w$}", w = widths[i])
                } else {
                    format!("{c:>w$}", w = widths[i])
                }
            })
            .collect();
        format!("{}\n", parts.join("  ").trim_end())
    };
    out.push_str(&line(&mut header.iter().copied()));
    for row in rows {
        out.push_str(&line(&mut row.iter().map(String::as_str)));
    }
}

/// Where each node exports (the text form's last table).
pub(crate) fn endpoints_text(t: &Telemetry) -> String {
    let rows: Vec<[String; 3]> = t
        .nodes
        .iter()
        .flat_map(|n| {
            n.endpoints.iter().map(move |e| {
                [
                    format::printable(&n.node).into_owned(),
                    format::endpoint_kind(e.kind).to_owned(),
                    format::printable(&e.url).into_owned(),
                ]
            })
        })
        .collect();
    let mut out = String::from("\n");
    table(&mut out, ["NODE", "EXPORTS", "URL"], &rows, 3);
    out
}

#[cfg(test)]
mod tests;
