//! One sample of one BEAM node, read with built-in functions only.
//!
//! # What a sample calls on the node
//! - `erlang:memory/0`, `erlang:statistics/1` (reductions, the run
//!   queues, wall clock), `erlang:system_info/1` (process and port counts
//!   and limits, schedulers online, the distribution's ports and busy
//!   limit), `erlang:port_info/2` (each distribution port's queue), each
//!   a call of its own; the release and version once per connection.
//! - `erlang:processes/0`, then `lists:zipwith/3` applying
//!   `erlang:process_info/2` to every pid with the items of a row. The
//!   pids travel back to the node, so a process costs about 40 bytes out,
//!   150 in (the item list, repeated) and 150 back. Then the current
//!   function of the processes that rank (the top 200 by queue, memory and
//!   reductions, and those shown last round).
//! - On a node of more than [`FULL_TABLE_MAX`] processes (where
//!   `erl_eval` is loaded), the node ranks its own processes instead and
//!   sends only the top ones ([`TableMode`]).
//! - For a process spawned through `proc_lib` (every `gen_server`,
//!   `supervisor`, `gen_statem`, `Task`...) its dictionary, once, for its
//!   `$initial_call` and `$label`; the names are kept until it exits.

use crate::BeamError;
use crate::conn::Conn;
use crate::term::{
    self, Term, as_atom, as_tuple, as_u64, atom, into_list, list, mfa, prop, tagged,
};
use eetf::{ExternalFun, Pid};
use std::collections::HashMap;
use std::time::Duration;

/// How a node's process table is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TableMode {
    /// The whole table up to [`FULL_TABLE_MAX`] processes, the top ones
    /// above (where the node has `erl_eval` loaded; else the whole table).
    #[default]
    Auto,
    /// Every process, read with built-in functions: exact rates for all,
    /// about 370 bytes per process over the wire each refresh.
    Full,
    /// The top [`TOP_K`] processes by queue, by memory and by reductions
    /// (and those shown last round), ranked on the node by one `erl_eval`
    /// expression: a few hundred rows over the wire whatever the node's
    /// size; other processes are not listed.
    Top,
}

/// The most processes [`TableMode::Auto`] reads whole.
pub const FULL_TABLE_MAX: u64 = 20_000;

/// Processes [`TableMode::Top`] keeps per ranking.
pub const TOP_K: usize = 200;

/// What each row asks `process_info/2` for. Not `current_function`:
/// reading it (like `memory`) is a signal the process itself must handle,
/// about 2.3 µs of the node's time per process where the items here cost
/// about 0.3 µs each, so it is read only for the processes that rank
/// ([`current_functions`]).
const ROW_ITEMS: [&str; 6] = [
    "registered_name",
    "initial_call",
    "message_queue_len",
    "reductions",
    "memory",
    "status",
];

/// Processes per ranking whose current function is read.
pub const RANKED: usize = 200;

/// Reads the current function of the processes of `procs` that rank in
/// the top [`RANKED`] by queue, by memory or by reductions, or are in
/// `watch` (shown last round), in one call.
async fn current_functions(
    conn: &Conn,
    procs: &mut [ProcFigures],
    watch: &[Pid],
    timeout: Duration,
) -> Result<(), BeamError> {
    let mut pick: std::collections::HashSet<(u32, u32)> =
        watch.iter().map(|p| (p.id, p.serial)).collect();
    let mut order: Vec<usize> = (0..procs.len()).collect();
    for key in [
        (|p: &ProcFigures| p.queue) as fn(&ProcFigures) -> u64,
        |p| p.memory,
        |p| p.reductions,
    ] {
        let n = RANKED.min(order.len());
        if n == 0 {
            break;
        }
        order.select_nth_unstable_by_key(n - 1, |&i| std::cmp::Reverse(key(&procs[i])));
        pick.extend(
            order[..n]
                .iter()
                .map(|&i| (procs[i].pid.id, procs[i].pid.serial)),
        );
    }
    let chosen: Vec<usize> = (0..procs.len())
        .filter(|&i| pick.contains(&(procs[i].pid.id, procs[i].pid.serial)))
        .collect();
    let pids = chosen
        .iter()
        .map(|&i| Term::Pid(procs[i].pid.clone()))
        .collect();
    let infos = process_info_all(conn, pids, &["current_function"], timeout).await?;
    for (i, info) in chosen.into_iter().zip(infos) {
        procs[i].current_function = prop(&info, "current_function").and_then(mfa);
    }
    Ok(())
}

/// A node's figures at one instant.
#[derive(Debug, Clone, Default)]
pub(crate) struct NodeFigures {
    pub(crate) uptime_ms: u64,
    pub(crate) reductions_total: u64,
    pub(crate) run_queue: u64,
    pub(crate) process_count: u64,
    pub(crate) process_limit: u64,
    pub(crate) port_count: u64,
    pub(crate) port_limit: u64,
    pub(crate) schedulers: u32,
    pub(crate) memory: clustertop_proto::BeamMemory,
    /// The peers whose distribution port queues at least
    /// `dist_buf_busy_limit` bytes: sends to them block their senders.
    pub(crate) dist_busy: Vec<String>,
}

/// One process at one instant.
#[derive(Debug, Clone)]
pub(crate) struct ProcFigures {
    pub(crate) pid: Pid,
    pub(crate) name: Option<String>,
    pub(crate) initial_call: Option<String>,
    pub(crate) current_function: Option<String>,
    pub(crate) queue: u64,
    pub(crate) reductions: u64,
    pub(crate) memory: u64,
    pub(crate) status: String,
}

/// Names a `proc_lib` process carries in its dictionary.
#[derive(Debug, Clone, Default)]
pub(crate) struct DictNames {
    pub(crate) initial_call: Option<String>,
    pub(crate) label: Option<String>,
}

/// Reads one node's figures.
pub(crate) async fn node_figures(conn: &Conn, timeout: Duration) -> Result<NodeFigures, BeamError> {
    let call = |m: &'static str, f: &'static str, args: Vec<Term>| conn.call(m, f, args, timeout);
    let info = |item: &'static str| call("erlang", "system_info", vec![atom(item)]);
    let stat = |item: &'static str| call("erlang", "statistics", vec![atom(item)]);
    // The run queues first and alone: the calls below run at once, each
    // in a process of its own, and would be counted in them.
    let run_queue = stat("total_run_queue_lengths_all").await;
    let (memory, reductions, wall, procs, proc_limit, ports, port_limit, scheds) = tokio::join!(
        call("erlang", "memory", vec![]),
        stat("reductions"),
        stat("wall_clock"),
        info("process_count"),
        info("process_limit"),
        info("port_count"),
        info("port_limit"),
        info("schedulers_online"),
    );
    let memory = memory?;
    let mem = |k: &str| prop(&memory, k).and_then(as_u64).unwrap_or(0);
    let first = |t: &Term| as_tuple(t).and_then(|t| t.first()).and_then(as_u64);
    Ok(NodeFigures {
        uptime_ms: first(&wall?).unwrap_or(0),
        reductions_total: first(&reductions?).unwrap_or(0),
        run_queue: as_u64(&run_queue?).unwrap_or(0),
        process_count: as_u64(&procs?).unwrap_or(0),
        process_limit: as_u64(&proc_limit?).unwrap_or(0),
        port_count: as_u64(&ports?).unwrap_or(0),
        port_limit: as_u64(&port_limit?).unwrap_or(0),
        schedulers: as_u64(&scheds?).map_or(0, |n| n as u32),
        dist_busy: dist_busy(conn, timeout).await?,
        memory: clustertop_proto::BeamMemory {
            total: mem("total"),
            processes: mem("processes"),
            binary: mem("binary"),
            ets: mem("ets"),
            atom: mem("atom"),
            code: mem("code"),
        },
    })
}

/// The peers whose distribution port's queue is at the busy limit:
/// `system_info(dist_ctrl)` names each connection's port (a connection
/// carried by a process instead is left out), `port_info(Port,
/// queue_size)` its queue, `system_info(dist_buf_busy_limit)` the limit.
async fn dist_busy(conn: &Conn, timeout: Duration) -> Result<Vec<String>, BeamError> {
    let info = |item: &'static str| conn.call("erlang", "system_info", vec![atom(item)], timeout);
    let (ctrl, limit) = tokio::join!(info("dist_ctrl"), info("dist_buf_busy_limit"));
    let limit = as_u64(&limit?).unwrap_or(u64::MAX);
    let mut busy = Vec::new();
    for link in into_list(ctrl?).unwrap_or_default() {
        let Some([peer, port @ Term::Port(_)]) = as_tuple(&link) else {
            continue;
        };
        let queue = conn
            .call(
                "erlang",
                "port_info",
                vec![port.clone(), atom("queue_size")],
                timeout,
            )
            .await?;
        let queued = as_tuple(&queue).and_then(|t| t.get(1)).and_then(as_u64);
        if queued.is_some_and(|q| q >= limit) {
            busy.extend(as_atom(peer).map(str::to_owned));
        }
    }
    Ok(busy)
}

/// The node's release and emulator version.
pub(crate) async fn release(conn: &Conn, timeout: Duration) -> Result<(String, String), BeamError> {
    let otp = conn
        .call("erlang", "system_info", vec![atom("otp_release")], timeout)
        .await?;
    let erts = conn
        .call("erlang", "system_info", vec![atom("version")], timeout)
        .await?;
    Ok((
        term::as_text(&otp).unwrap_or_default(),
        term::as_text(&erts)
            .map(|v| format!("erts-{v}"))
            .unwrap_or_default(),
    ))
}

/// The names of the visible nodes the node is connected to.
pub(crate) async fn nodes(conn: &Conn, timeout: Duration) -> Result<Vec<String>, BeamError> {
    let t = conn.call("erlang", "nodes", vec![], timeout).await?;
    Ok(into_list(t)
        .unwrap_or_default()
        .iter()
        .filter_map(|n| as_atom(n).map(str::to_owned))
        .collect())
}

/// `fun M:F/A`.
fn export_fun(m: &str, f: &str, arity: u8) -> Term {
    Term::ExternalFun(Box::new(ExternalFun {
        module: m.into(),
        function: f.into(),
        arity,
    }))
}

/// `process_info(Pid, Items)` for every pid of `pids`, in one call:
/// `undefined` for a process that exited meanwhile.
async fn process_info_all(
    conn: &Conn,
    pids: Vec<Term>,
    items: &[&str],
    timeout: Duration,
) -> Result<Vec<Term>, BeamError> {
    let n = pids.len();
    if n == 0 {
        return Ok(Vec::new());
    }
    let items = list(items.iter().map(|i| atom(i)).collect());
    let answer = conn
        .call(
            "lists",
            "zipwith",
            vec![
                export_fun("erlang", "process_info", 2),
                list(pids),
                list(vec![items; n]),
            ],
            timeout,
        )
        .await?;
    into_list(answer).ok_or_else(|| BeamError::Protocol {
        node: conn.peer().to_owned(),
        reason: "process_info over the process list did not answer a list".into(),
    })
}

/// Every process of the node, with the current function of those that
/// rank.
pub(crate) async fn whole_table(
    conn: &Conn,
    watch: &[Pid],
    timeout: Duration,
) -> Result<Vec<ProcFigures>, BeamError> {
    let mut procs = processes(conn, timeout).await?;
    current_functions(conn, &mut procs, watch, timeout).await?;
    Ok(procs)
}

/// Every process of the node, with the figures of a row.
pub(crate) async fn processes(
    conn: &Conn,
    timeout: Duration,
) -> Result<Vec<ProcFigures>, BeamError> {
    let pids = conn.call("erlang", "processes", vec![], timeout).await?;
    let pids = into_list(pids).unwrap_or_default();
    let infos = process_info_all(conn, pids.clone(), &ROW_ITEMS, timeout).await?;
    Ok(pids
        .into_iter()
        .zip(infos)
        .filter_map(|(pid, info)| {
            let Term::Pid(pid) = pid else { return None };
            row(pid, &info)
        })
        .collect())
}

fn row(pid: Pid, info: &Term) -> Option<ProcFigures> {
    // `undefined`: it exited between the two calls.
    as_atom(info).is_none().then_some(())?;
    let name = prop(info, "registered_name")
        .and_then(as_atom)
        .map(str::to_owned);
    Some(ProcFigures {
        pid,
        // `process_info(P, registered_name)` answers `[]` for none.
        name,
        initial_call: prop(info, "initial_call").and_then(mfa),
        current_function: prop(info, "current_function").and_then(mfa),
        queue: prop(info, "message_queue_len")
            .and_then(as_u64)
            .unwrap_or(0),
        reductions: prop(info, "reductions").and_then(as_u64).unwrap_or(0),
        memory: prop(info, "memory").and_then(as_u64).unwrap_or(0),
        status: prop(info, "status")
            .and_then(as_atom)
            .unwrap_or("unknown")
            .to_owned(),
    })
}

/// The `$initial_call` and `$label` of each of `pids`, read from their
/// dictionaries in one call.
pub(crate) async fn dict_names(
    conn: &Conn,
    pids: &[Pid],
    timeout: Duration,
) -> Result<Vec<(Pid, DictNames)>, BeamError> {
    let terms = pids.iter().map(|p| Term::Pid(p.clone())).collect();
    let infos = process_info_all(conn, terms, &["dictionary"], timeout).await?;
    Ok(pids
        .iter()
        .cloned()
        .zip(infos)
        .map(|(pid, info)| {
            let dict = prop(&info, "dictionary");
            let names = DictNames {
                initial_call: dict.and_then(|d| prop(d, "$initial_call")).and_then(mfa),
                label: dict
                    .and_then(|d| prop(d, "$label"))
                    .map(|l| term::show(l, 80)),
            };
            (pid, names)
        })
        .collect())
}

/// The expression a node evaluates (`erl_eval`) to rank its own processes
/// and send only the top ones: the `K` processes with the longest queues,
/// the `K` with the largest heaps and the `K` with most reductions, and
/// the processes in `Watch` (those shown last round, so their rates go
/// on), each with a ranked row's items. The heap ranks in place of the
/// memory: `heap_size` is read without a signal to each process, `memory`
/// is not (about 2.3 s of the node's time per million processes). The ranking runs in compiled code
/// (`lists:zipwith/3` of `process_info/2`, `lists:keysort/2`); only the few
/// expressions around it are interpreted.
///
/// The body is one fun applied at once, so its variables (the whole pid
/// list among them) stay inside it and do not come back with the value.
const TOP_SOURCE: &str = "(fun() -> Ps = erlang:processes(), N = length(Ps), \
    Top = fun(I) -> L = lists:zip(Ps, lists:zipwith(fun erlang:process_info/2, Ps, \
        lists:duplicate(N, I))), lists:sublist(lists:reverse(lists:keysort(2, L)), K) end, \
    Pick = lists:usort([P || {P, _} <- Top(message_queue_len) ++ Top(heap_size) ++ \
        Top(reductions)] ++ Watch), \
    {N, lists:zip(Pick, lists:zipwith(fun erlang:process_info/2, Pick, \
        lists:duplicate(length(Pick), Items)))} end)().";

/// The top processes of the node, ranked on the node itself (see
/// [`TOP_SOURCE`]): `(process count, rows)`. The expression is parsed on
/// the node (`erl_scan`, `erl_parse`) and evaluated by `erl_eval`: all
/// three must be loaded there ([`BeamError::NotLoaded`] otherwise).
pub(crate) async fn processes_top(
    conn: &Conn,
    k: usize,
    watch: &[Pid],
    timeout: Duration,
) -> Result<(u64, Vec<ProcFigures>), BeamError> {
    let bad = |what: &str| BeamError::Protocol {
        node: conn.peer().to_owned(),
        reason: format!("ranking the processes on the node: {what}"),
    };
    // Parsed once per connection: the abstract form is plain data.
    let exprs = match conn.memo(TOP_SOURCE) {
        Some(e) => e,
        None => {
            let source = Term::ByteList(eetf::ByteList::from(TOP_SOURCE.as_bytes().to_vec()));
            let scanned = conn
                .call("erl_scan", "string", vec![source], timeout)
                .await?;
            let tokens = match as_tuple(&scanned) {
                Some([ok, tokens, _]) if as_atom(ok) == Some("ok") => tokens.clone(),
                _ => return Err(bad("the expression did not scan")),
            };
            let parsed = conn
                .call("erl_parse", "parse_exprs", vec![tokens], timeout)
                .await?;
            let exprs = ok(&parsed)
                .ok_or_else(|| bad("the expression did not parse"))?
                .clone();
            conn.set_memo(TOP_SOURCE, exprs.clone());
            exprs
        }
    };
    // A ranked row's items: a row's and the current function.
    let items = list(
        ROW_ITEMS
            .iter()
            .chain(&["current_function"])
            .map(|i| atom(i))
            .collect(),
    );
    let watch = list(watch.iter().cloned().map(Term::Pid).collect());
    let bindings = list(vec![
        term::tuple(vec![atom("K"), term::int(k as i64)]),
        term::tuple(vec![atom("Items"), items]),
        term::tuple(vec![atom("Watch"), watch]),
    ]);
    let value = conn
        .call("erl_eval", "exprs", vec![exprs, bindings], timeout)
        .await?;
    let Some([_, result, _]) = as_tuple(&value) else {
        return Err(bad("erl_eval answered no value"));
    };
    let Some([total, rows]) = as_tuple(result) else {
        return Err(bad("the expression's value is not {N, Rows}"));
    };
    let rows = into_list(rows.clone()).unwrap_or_default();
    Ok((
        as_u64(total).unwrap_or(0),
        rows.iter()
            .filter_map(|r| match as_tuple(r) {
                Some([Term::Pid(pid), info]) => row(pid.clone(), info),
                _ => None,
            })
            .collect(),
    ))
}

/// Whether a row's process was spawned through `proc_lib` (its real
/// initial call is in its dictionary).
pub(crate) fn spawned_by_proc_lib(p: &ProcFigures) -> bool {
    p.initial_call.as_deref() == Some("proc_lib:init_p/5")
}

/// The processes of OTP's own runtime and kernel, by registered name:
/// left out of the default process list, as our agents' own are.
pub(crate) fn system_name(name: &str) -> bool {
    const SYSTEM: &[&str] = &[
        "init",
        "erts_code_purger",
        "erl_prim_loader",
        "erl_signal_server",
        "code_server",
        "application_controller",
        "kernel_sup",
        "kernel_safe_sup",
        "kernel_refc",
        "rex",
        "global_name_server",
        "global_group",
        "global_group_check",
        "inet_db",
        "net_kernel",
        "net_sup",
        "erl_epmd",
        "auth",
        "user",
        "user_drv",
        "standard_error",
        "standard_error_sup",
        "logger",
        "logger_sup",
        "logger_handler_watcher",
        "logger_proxy",
        "logger_std_h_default",
        "file_server_2",
        "socket_registry",
        "erl_distribution",
        "pg",
        "timer_server",
        "literal_area_collector",
    ];
    SYSTEM.contains(&name)
}

/// Whether a process is one of OTP's own without a name: the runtime's
/// helpers, and the processes `rex` starts for calls (this source's
/// among them).
pub(crate) fn system_process(p: &ProcFigures) -> bool {
    if let Some(name) = &p.name {
        return system_name(name);
    }
    let in_module = |f: &Option<String>, m: &str| {
        f.as_deref()
            .is_some_and(|f| f.starts_with(m) && f[m.len()..].starts_with(':'))
    };
    [
        "erts_dirty_process_signal_handler",
        "erts_literal_area_collector",
        "application_master",
        "rpc",
        "erpc",
    ]
    .iter()
    .any(|m| in_module(&p.initial_call, m) || in_module(&p.current_function, m))
}

/// `{ok, X}` → X.
pub(crate) fn ok(t: &Term) -> Option<&Term> {
    match tagged(t, "ok") {
        Some([x]) => Some(x),
        _ => None,
    }
}

/// The dictionaries read so far, by pid: a process's names never change.
#[derive(Debug, Default)]
pub(crate) struct NameCache(HashMap<(u32, u32), DictNames>);

impl NameCache {
    pub(crate) fn get(&self, pid: &Pid) -> Option<&DictNames> {
        self.0.get(&(pid.id, pid.serial))
    }

    pub(crate) fn insert(&mut self, pid: &Pid, names: DictNames) {
        self.0.insert((pid.id, pid.serial), names);
    }

    /// Forgets the processes not in `live`.
    pub(crate) fn retain_live(&mut self, live: &[ProcFigures]) {
        let live: std::collections::HashSet<(u32, u32)> =
            live.iter().map(|p| (p.pid.id, p.pid.serial)).collect();
        self.0.retain(|k, _| live.contains(k));
    }
}
