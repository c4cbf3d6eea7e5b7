//! What is read when asked, not every round: one process in depth, a
//! node's supervision trees, the names and groups.
//!
//! # Bounds on the target
//! - A process's detail is one `process_info/2` call; its queued messages
//!   are not read then.
//! - Its queued messages are read only when asked ([`peek_mailbox`]):
//!   `process_info(P, messages)` copies the whole queue inside the node.
//!   Where the node has `erl_eval` loaded, one expression keeps the first
//!   N there and only they cross the wire; elsewhere the whole queue is
//!   sent, and only for a queue of at most [`MAX_QUEUE_SENT`] messages.
//! - A tree asks each supervisor of the node for its children through
//!   `gen:call(Sup, '$gen_call', which_children, 1000)`: bounded by that
//!   timeout, unlike `supervisor:which_children/1`, whose call has none,
//!   so a stuck supervisor cannot hold the process `rex` started. At most
//!   [`MAX_SUPERVISORS`] supervisors are asked per tree.

use crate::BeamError;
use crate::cluster::Cluster;
use crate::pids::{erlang_pid, pid_of, pid_ref, serial_of};
use crate::sample::ok;
use crate::term::{
    Term, as_atom, as_text, as_tuple, as_u64, atom, int, into_list, list, mfa, prop, show, tuple,
};
use clustertop_proto::time::unix_ms;
use clustertop_proto::{
    BeamProcessDetail, MailboxPeek, NameRow, NameScope, NodeRegistry, PeekMailbox, PidRef,
    ProcessDetail, ProcessRegistry, ProcessRow, ProcessTotals, ProtoError, Registry,
    SupervisionTree, TreeNode,
};
use eetf::Pid;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

/// A supervisor's children: `(child id, pid, is a supervisor)`.
type Children = Vec<(String, Option<Pid>, bool)>;

/// The longest queue sent whole to read its head (where the node has no
/// `erl_eval` to cut it there).
pub const MAX_QUEUE_SENT: u64 = 10_000;

/// Supervisors asked for their children in one tree.
pub const MAX_SUPERVISORS: usize = 500;

/// The limit of one `which_children` call.
const WHICH_CHILDREN_MS: i64 = 1_000;

/// Unsupervised processes listed in a tree, as our agents list.
const MAX_UNSUPERVISED: usize = 1_000;

/// Groups read per node.
const MAX_GROUPS: usize = 200;

const DETAIL_ITEMS: [&str; 17] = [
    "registered_name",
    "status",
    "message_queue_len",
    "links",
    "monitors",
    "monitored_by",
    "trap_exit",
    "heap_size",
    "total_heap_size",
    "stack_size",
    "reductions",
    "memory",
    "current_function",
    "current_stacktrace",
    "initial_call",
    "dictionary",
    "group_leader",
];

fn protocol(e: BeamError) -> ProtoError {
    match e {
        BeamError::Timeout { node, .. } => ProtoError::NodeTimeout(node),
        BeamError::Disconnected(node) => ProtoError::NoSuchNode(node),
        other => ProtoError::Other(other.to_string()),
    }
}

fn conn_of(shared: &Cluster, node: &str) -> Result<crate::Conn, ProtoError> {
    shared
        .conn(node)
        .ok_or_else(|| ProtoError::NoSuchNode(node.to_owned()))
}

fn pids_in(t: Option<&Term>) -> Vec<PidRef> {
    t.and_then(|t| into_list(t.clone()))
        .unwrap_or_default()
        .iter()
        .filter_map(|e| match e {
            Term::Pid(p) => Some(pid_ref(p)),
            // `monitors`: `{process, Pid}`, or `{process, {Name, Node}}`.
            Term::Tuple(t) => match t.elements.as_slice() {
                [_, Term::Pid(p)] => Some(pid_ref(p)),
                _ => None,
            },
            _ => None,
        })
        .collect()
}

/// `{M, F, Arity | Args, Location}` as `m:f/a (file:line)`.
fn frame(t: &Term) -> Option<String> {
    let [m, f, a, loc] = as_tuple(t)? else {
        return None;
    };
    let arity = as_u64(a).unwrap_or_else(|| into_list(a.clone()).map_or(0, |l| l.len() as u64));
    let head = format!("{}:{}/{arity}", as_atom(m)?, as_atom(f)?);
    let file = prop(loc, "file").and_then(as_text);
    let line = prop(loc, "line").and_then(as_u64);
    Some(match (file, line) {
        (Some(file), Some(line)) => format!("{head} ({file}:{line})"),
        _ => head,
    })
}

/// One process in depth.
pub(crate) async fn process(
    shared: &Arc<Cluster>,
    pid: &PidRef,
) -> Result<ProcessDetail, ProtoError> {
    let conn = conn_of(shared, &pid.node)?;
    let timeout = shared.cfg.attach.timeout;
    let erl_pid = pid_of(pid);
    let items = list(DETAIL_ITEMS.iter().map(|i| atom(i)).collect());
    let (info, wordsize) = tokio::join!(
        conn.call(
            "erlang",
            "process_info",
            vec![Term::Pid(erl_pid.clone()), items],
            timeout
        ),
        conn.call("erlang", "system_info", vec![atom("wordsize")], timeout)
    );
    let info = info.map_err(protocol)?;
    if as_atom(&info) == Some("undefined") {
        return Err(ProtoError::NoSuchProcess);
    }
    let word = wordsize.ok().as_ref().and_then(as_u64).unwrap_or(8);
    let words = |k: &str| prop(&info, k).and_then(as_u64).unwrap_or(0) * word;
    let dict = prop(&info, "dictionary");
    let from_dict = |k: &str| dict.and_then(|d| prop(d, k));
    let rows = shared.rows_of(&pid.node);
    let by_name: HashMap<&str, &ProcessRow> = rows
        .iter()
        .filter_map(|r| r.name.as_deref().map(|n| (n, r)))
        .collect();
    // `$ancestors`: pids, or registered names, nearest first.
    let supervisor_path = from_dict("$ancestors")
        .and_then(|a| into_list(a.clone()))
        .unwrap_or_default()
        .iter()
        .filter_map(|a| match a {
            Term::Pid(p) => Some(pid_ref(p)),
            Term::Atom(name) => by_name.get(name.name.as_str()).map(|r| r.pid.clone()),
            _ => None,
        })
        .collect();
    let row = shared.row(pid).unwrap_or_else(|| row_from_info(pid, &info));
    let initial_call = from_dict("$initial_call")
        .and_then(mfa)
        .or_else(|| prop(&info, "initial_call").and_then(mfa));
    Ok(ProcessDetail {
        row,
        totals: ProcessTotals::default(),
        links: pids_in(prop(&info, "links")),
        monitored_by: pids_in(prop(&info, "monitored_by")),
        monitoring: pids_in(prop(&info, "monitors")),
        supervisor_path,
        mailbox_head: Vec::new(),
        top_senders: Vec::new(),
        handling_time: None,
        spawned_at_unix_ms: 0,
        trap_exit: prop(&info, "trap_exit").and_then(as_atom) == Some("true"),
        activity: None,
        names: Vec::new(),
        beam: Some(BeamProcessDetail {
            pid: erlang_pid(&erl_pid),
            status: prop(&info, "status")
                .and_then(as_atom)
                .unwrap_or("unknown")
                .to_owned(),
            initial_call,
            label: from_dict("$label").map(|l| show(l, 120)),
            heap_bytes: words("heap_size"),
            total_heap_bytes: words("total_heap_size"),
            stack_bytes: words("stack_size"),
            stacktrace: prop(&info, "current_stacktrace")
                .and_then(|s| into_list(s.clone()))
                .unwrap_or_default()
                .iter()
                .filter_map(frame)
                .collect(),
            group_leader: match prop(&info, "group_leader") {
                Some(Term::Pid(p)) => Some(erlang_pid(p)),
                _ => None,
            },
        }),
    })
}

/// A row for a process the last round did not see (spawned since).
fn row_from_info(pid: &PidRef, info: &Term) -> ProcessRow {
    ProcessRow {
        pid: pid.clone(),
        name: prop(info, "registered_name")
            .and_then(as_atom)
            .map(str::to_owned),
        behaviour: prop(info, "initial_call").and_then(mfa).unwrap_or_default(),
        system: false,
        status: clustertop_proto::ProcessStatus::Waiting,
        figures: clustertop_proto::ProcessFigures {
            mailbox_len: prop(info, "message_queue_len")
                .and_then(as_u64)
                .unwrap_or(0),
            memory_bytes: prop(info, "memory").and_then(as_u64).unwrap_or(0),
            // No rates before a second read; no counterpart for the rest.
            ..Default::default()
        },
        beam: Some(clustertop_proto::BeamProcess {
            reductions_per_s: 0,
            reductions_total: prop(info, "reductions").and_then(as_u64).unwrap_or(0),
            current_function: prop(info, "current_function").and_then(mfa),
        }),
    }
}

/// A supervisor's children: `(id, pid, is supervisor)`; `None` when it
/// did not answer within the limit.
async fn which_children(conn: &crate::Conn, sup: &Pid, timeout: Duration) -> Option<Children> {
    let answer = conn
        .call(
            "gen",
            "call",
            vec![
                Term::Pid(sup.clone()),
                atom("$gen_call"),
                atom("which_children"),
                int(WHICH_CHILDREN_MS),
            ],
            timeout,
        )
        .await
        .ok()?;
    let children = into_list(ok(&answer)?.clone())?;
    // `which_children` lists the newest child first.
    Some(
        children
            .iter()
            .rev()
            .filter_map(|c| {
                let [id, child, kind, _mods] = as_tuple(c)? else {
                    return None;
                };
                let pid = match child {
                    Term::Pid(p) => Some(p.clone()),
                    _ => None,
                };
                Some((show(id, 60), pid, as_atom(kind) == Some("supervisor")))
            })
            .collect(),
    )
}

/// The registered processes of the node that are supervisors (their
/// `$initial_call` is `supervisor:*`): `erlang:registered/0`, then
/// `erlang:whereis/1` and their dictionaries in one call each.
async fn registered_supervisors(
    conn: &crate::Conn,
    node: &str,
    timeout: Duration,
) -> Vec<(PidRef, String)> {
    let Ok(names) = conn.call("erlang", "registered", vec![], timeout).await else {
        return Vec::new();
    };
    let name_list = into_list(names.clone()).unwrap_or_default();
    let Ok(pids) = conn
        .call(
            "lists",
            "map",
            vec![
                Term::ExternalFun(Box::new(eetf::ExternalFun {
                    module: "erlang".into(),
                    function: "whereis".into(),
                    arity: 1,
                })),
                names,
            ],
            timeout,
        )
        .await
    else {
        return Vec::new();
    };
    let (pids, by_pid): (Vec<Pid>, HashMap<(u32, u32), String>) = into_list(pids)
        .unwrap_or_default()
        .into_iter()
        .zip(&name_list)
        .filter_map(|(p, name)| match p {
            Term::Pid(p) => Some((p.clone(), ((p.id, p.serial), show(name, 80)))),
            _ => None,
        })
        .unzip();
    let Ok(named) = crate::sample::dict_names(conn, &pids, timeout).await else {
        return Vec::new();
    };
    named
        .into_iter()
        .filter(|(_, d)| {
            d.initial_call
                .as_deref()
                .is_some_and(|c| c.starts_with("supervisor:"))
        })
        .map(|(p, _)| {
            let name = by_pid.get(&(p.id, p.serial)).cloned().unwrap_or_default();
            let pid = PidRef {
                node: node.to_owned(),
                serial: serial_of(&p),
                creation: p.creation,
            };
            (pid, name)
        })
        .collect()
}

/// Names the tree's processes that the rows did not, from `names`.
fn name_from(node: &mut TreeNode, names: &HashMap<u64, String>) {
    if node.name.is_none() {
        node.name = names.get(&node.pid.serial).cloned();
    }
    for child in &mut node.children {
        name_from(child, names);
    }
}

/// The supervision trees of `node`: every supervisor (a process whose
/// initial call is `supervisor:*`) is asked for its children, and the
/// supervisors among those in turn; the roots are those no other
/// supervisor lists.
pub(crate) async fn tree(shared: &Arc<Cluster>, node: &str) -> Result<SupervisionTree, ProtoError> {
    let conn = conn_of(shared, node)?;
    let timeout = shared.cfg.attach.timeout;
    let rows = shared.rows_of(node);
    let by_serial: HashMap<u64, &ProcessRow> = rows.iter().map(|r| (r.pid.serial, r)).collect();
    // The supervisors to start from: those among the rows, and where the
    // rows are only the top of a large node, the registered ones; the
    // supervisors their children name are asked in turn.
    let mut start: Vec<PidRef> = rows
        .iter()
        .filter(|r| r.behaviour.starts_with("supervisor:"))
        .map(|r| r.pid.clone())
        .collect();
    let mut names: HashMap<u64, String> = HashMap::new();
    if !shared.table_is_whole(node) {
        for (pid, name) in registered_supervisors(&conn, node, timeout).await {
            names.insert(pid.serial, name);
            start.push(pid);
        }
    }
    let mut children: BTreeMap<u64, Children> = BTreeMap::new();
    let mut queue: std::collections::VecDeque<PidRef> = start.iter().cloned().collect();
    let mut asked = HashSet::new();
    while let Some(sup) = queue.pop_front() {
        if asked.len() >= MAX_SUPERVISORS || !asked.insert(sup.serial) {
            continue;
        }
        let Some(kids) = which_children(&conn, &pid_of(&sup), timeout).await else {
            continue;
        };
        for (_, child, is_sup) in &kids {
            if let (Some(child), true) = (child, is_sup) {
                queue.push_back(pid_ref(child));
            }
        }
        children.insert(sup.serial, kids);
    }
    let listed: HashSet<u64> = children
        .values()
        .flatten()
        .filter_map(|(_, p, _)| p.as_ref().map(serial_of))
        .collect();
    let mut placed = HashSet::new();
    let mut roots = Vec::new();
    let mut seen_roots = HashSet::new();
    for sup in &start {
        if listed.contains(&sup.serial) || !seen_roots.insert(sup.serial) {
            continue;
        }
        let mut root = build(sup, None, true, &children, &by_serial, &mut placed);
        name_from(&mut root, &names);
        roots.push(root);
    }
    let mut unsupervised: Vec<&ProcessRow> = rows
        .iter()
        .filter(|r| !r.system && !placed.contains(&r.pid.serial))
        .collect();
    unsupervised.sort_by_key(|r| r.pid.serial);
    let unsupervised_total = unsupervised.len() as u64;
    Ok(SupervisionTree {
        node: node.to_owned(),
        roots,
        unsupervised: unsupervised
            .into_iter()
            .take(MAX_UNSUPERVISED)
            .map(|r| leaf(r, None))
            .collect(),
        unsupervised_total,
    })
}

fn leaf(r: &ProcessRow, child_id: Option<String>) -> TreeNode {
    TreeNode {
        pid: r.pid.clone(),
        name: r.name.clone(),
        behaviour: r.behaviour.clone(),
        supervisor: false,
        strategy: None,
        restarts: None,
        child_id,
        last_exit: None,
        children: Vec::new(),
    }
}

fn build(
    pid: &PidRef,
    child_id: Option<String>,
    supervisor: bool,
    children: &BTreeMap<u64, Children>,
    rows: &HashMap<u64, &ProcessRow>,
    placed: &mut HashSet<u64>,
) -> TreeNode {
    placed.insert(pid.serial);
    let mut node = match rows.get(&pid.serial) {
        Some(r) => leaf(r, child_id),
        None => TreeNode {
            pid: pid.clone(),
            name: None,
            behaviour: String::new(),
            supervisor,
            strategy: None,
            restarts: None,
            child_id,
            last_exit: None,
            children: Vec::new(),
        },
    };
    node.supervisor = supervisor;
    // A cycle cannot form (a process has one supervisor), but a child
    // already placed is not placed twice.
    for (id, child, is_sup) in children.get(&pid.serial).into_iter().flatten() {
        let Some(child) = child else { continue };
        let child_ref = PidRef {
            node: pid.node.clone(),
            serial: serial_of(child),
            creation: child.creation,
        };
        if placed.contains(&child_ref.serial) {
            continue;
        }
        node.children.push(build(
            &child_ref,
            Some(id.clone()),
            *is_sup,
            children,
            rows,
            placed,
        ));
    }
    node
}

/// Names (local and global) and `pg` groups of every node that answers.
pub(crate) async fn registry(shared: &Arc<Cluster>) -> Registry {
    let timeout = shared.cfg.attach.timeout;
    let summaries: Vec<(String, bool)> = shared.node_names();
    let mut out = Registry {
        nodes: Vec::new(),
        missing: Vec::new(),
    };
    let globals = global_names(shared).await;
    for (node, up) in summaries {
        let Some(conn) = shared.conn(&node).filter(|_| up) else {
            out.missing.push(node);
            continue;
        };
        let rows = shared.rows_of(&node);
        let mut names: Vec<NameRow> = rows
            .iter()
            .filter_map(|r| {
                Some(NameRow {
                    name: r.name.clone()?,
                    scope: NameScope::Local,
                    pid: r.pid.clone(),
                    behaviour: Some(r.behaviour.clone()),
                    system: r.system,
                })
            })
            .collect();
        let by_serial: HashMap<u64, &ProcessRow> = rows.iter().map(|r| (r.pid.serial, r)).collect();
        for (name, pid) in globals.iter().filter(|(_, p)| p.node == node) {
            let row = by_serial.get(&pid.serial);
            names.push(NameRow {
                name: name.clone(),
                scope: NameScope::Global,
                pid: pid.clone(),
                behaviour: row.map(|r| r.behaviour.clone()),
                system: row.is_some_and(|r| r.system),
            });
        }
        names.sort_by(|a, b| a.name.cmp(&b.name));
        out.nodes.push(NodeRegistry {
            node: node.clone(),
            sampled_at_unix_ms: unix_ms(),
            topics: Vec::new(),
            presences: Vec::new(),
            names,
            groups: groups(&conn, timeout).await,
        });
    }
    out
}

/// `global:registered_names/0` with each name's holder, asked of the
/// entry node.
async fn global_names(shared: &Arc<Cluster>) -> Vec<(String, PidRef)> {
    let timeout = shared.cfg.attach.timeout;
    let conn = &shared.entry;
    let Ok(names) = conn
        .call("global", "registered_names", vec![], timeout)
        .await
    else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for name in into_list(names).unwrap_or_default() {
        if let Ok(Term::Pid(p)) = conn
            .call("global", "whereis_name", vec![name.clone()], timeout)
            .await
        {
            out.push((show(&name, 80), pid_ref(&p)));
        }
    }
    out
}

/// The default `pg` scope's groups with members on the node; none when
/// `pg` does not run there.
async fn groups(conn: &crate::Conn, timeout: Duration) -> Vec<clustertop_proto::GroupRow> {
    let Ok(groups) = conn.call("pg", "which_groups", vec![], timeout).await else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for g in into_list(groups)
        .unwrap_or_default()
        .into_iter()
        .take(MAX_GROUPS)
    {
        let Ok(members) = conn
            .call("pg", "get_local_members", vec![g.clone()], timeout)
            .await
        else {
            continue;
        };
        let members = into_list(members).map_or(0, |m| m.len() as u64);
        if members > 0 {
            out.push(clustertop_proto::GroupRow {
                group: show(&g, 80),
                members,
            });
        }
    }
    out
}

/// One process's names and groups.
pub(crate) async fn process_registry(
    shared: &Arc<Cluster>,
    pid: &PidRef,
) -> Result<ProcessRegistry, ProtoError> {
    let row = shared.row(pid).ok_or(ProtoError::NoSuchProcess)?;
    let global_names = global_names(shared)
        .await
        .into_iter()
        .filter(|(_, p)| p == pid)
        .map(|(n, _)| n)
        .collect();
    Ok(ProcessRegistry {
        name: row.name,
        global_names,
        groups: Vec::new(),
        subscriptions: Vec::new(),
        presences: Vec::new(),
    })
}

/// `erlang:F(Args...)` in the abstract format `erl_eval` evaluates.
fn remote_call(m: &str, f: &str, args: Vec<Term>) -> Term {
    let line = || int(1);
    tuple(vec![
        atom("call"),
        line(),
        tuple(vec![
            atom("remote"),
            line(),
            tuple(vec![atom("atom"), line(), atom(m)]),
            tuple(vec![atom("atom"), line(), atom(f)]),
        ]),
        list(args),
    ])
}

/// The first queued messages of a process. See the module's bounds.
pub(crate) async fn peek_mailbox(
    shared: &Arc<Cluster>,
    p: &PeekMailbox,
) -> Result<MailboxPeek, ProtoError> {
    let conn = conn_of(shared, &p.pid.node)?;
    let timeout = shared.cfg.attach.timeout;
    let pid = Term::Pid(pid_of(&p.pid));
    let limit = u64::from(p.limit.min(PeekMailbox::MAX));
    let queued = conn
        .call(
            "erlang",
            "process_info",
            vec![pid.clone(), atom("message_queue_len")],
            timeout,
        )
        .await
        .map_err(protocol)?;
    let Some(queued) = as_tuple(&queued).and_then(|t| t.get(1)).and_then(as_u64) else {
        return Err(ProtoError::NoSuchProcess);
    };
    let line = || int(1);
    // lists:sublist(element(2, erlang:process_info(P, messages)), N)
    let expr = remote_call(
        "lists",
        "sublist",
        vec![
            remote_call(
                "erlang",
                "element",
                vec![
                    tuple(vec![atom("integer"), line(), int(2)]),
                    remote_call(
                        "erlang",
                        "process_info",
                        vec![
                            tuple(vec![atom("var"), line(), atom("P")]),
                            tuple(vec![atom("atom"), line(), atom("messages")]),
                        ],
                    ),
                ],
            ),
            tuple(vec![atom("integer"), line(), int(limit as i64)]),
        ],
    );
    let bindings = list(vec![tuple(vec![atom("P"), pid.clone()])]);
    let shown = |msgs: Vec<Term>| -> Vec<String> {
        msgs.iter()
            .take(limit as usize)
            .map(|m| show(m, 300))
            .collect()
    };
    match conn
        .call(
            "erl_eval",
            "exprs",
            vec![list(vec![expr]), bindings],
            timeout,
        )
        .await
    {
        Ok(value) => {
            let msgs = match as_tuple(&value) {
                Some([_, v, _]) => into_list(v.clone()).unwrap_or_default(),
                _ => Vec::new(),
            };
            let messages = shown(msgs);
            return Ok(MailboxPeek {
                note: Some(format!(
                    "the first {} of {queued}; the node copied its whole queue to read them, \
                     and sent only these",
                    messages.len()
                )),
                messages,
                queued,
            });
        }
        Err(BeamError::NotLoaded { .. }) => {}
        Err(e) => return Err(protocol(e)),
    }
    if queued > MAX_QUEUE_SENT {
        return Ok(MailboxPeek {
            messages: Vec::new(),
            queued,
            note: Some(format!(
                "not read: {queued} messages queued, and without erl_eval loaded on the node \
                 the whole queue would be copied and sent (done up to {MAX_QUEUE_SENT})"
            )),
        });
    }
    let all = conn
        .call(
            "erlang",
            "process_info",
            vec![pid, atom("messages")],
            timeout,
        )
        .await
        .map_err(protocol)?;
    let msgs = as_tuple(&all)
        .and_then(|t| t.get(1))
        .and_then(|l| into_list(l.clone()))
        .unwrap_or_default();
    let messages = shown(msgs);
    Ok(MailboxPeek {
        note: Some(format!(
            "the first {} of {queued}; the whole queue was copied and sent (erl_eval is not \
             loaded on the node)",
            messages.len()
        )),
        messages,
        queued,
    })
}
