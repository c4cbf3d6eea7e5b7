//! The interactive view: one loop over terminal input and data updates,
//! which changes the [`State`] and draws it. The connection runs as its own
//! task: it fetches what the current view needs at every refresh (and at
//! once when the view changes), follows the cluster's logs, and reattaches
//! on its own when the entry node goes away and comes back.
//!
//! The terminal is restored on every way out: a normal quit, an error, and
//! a panic (ratatui's hook restores it before the panic is printed).

use crate::error::CliError;
use crate::state::{State, Tab};
use crate::target::Target;
use crate::view;
use clustertop_client::{Client, ClientError};
use clustertop_proto::{
    ClusterOverview, GetProcessRegistry, GetProcessTraces, GetRegistry, GetTelemetry, LogFilter,
    LogLevel, LogRecord, MailboxPeek, MetricsSnapshot, PeekMailbox, PidRef, ProcessDetail,
    ProcessPage, ProcessQuery, ProcessRegistry, ProcessTraces, ProtoError, Registry,
    SupervisionTree, Telemetry,
};
use crossterm::event::{Event, EventStream, KeyEventKind};
use futures_util::StreamExt;
use std::time::Duration;
use tokio::signal::unix::{Signal, SignalKind, signal};
use tokio::sync::{mpsc, watch};

/// What the connection task should fetch.
#[derive(Debug, Clone, PartialEq)]
struct Want {
    tab: Tab,
    query: ProcessQuery,
    detail: Option<PidRef>,
    tree_node: Option<String>,
    paused: bool,
    /// Bumped by each ask to read the detailed process's mailbox head.
    peek: u64,
}

impl Want {
    fn of(s: &State) -> Want {
        Want {
            tab: s.tab,
            query: s.process_query(),
            detail: s.detail.pid.clone(),
            tree_node: s.tree_node(),
            paused: s.paused,
            peek: s.detail.peek_asked,
        }
    }
}

/// What the connection task reports.
#[derive(Debug)]
enum Update {
    Overview(ClusterOverview),
    Processes(ProcessPage),
    Detail(Box<ProcessDetail>),
    Exited(PidRef, crate::state::DetailExit),
    Tree(SupervisionTree),
    Metrics(MetricsSnapshot),
    Registry(Registry),
    RegistryUnavailable(String),
    Telemetry(Telemetry),
    TelemetryUnavailable(String),
    ProcessRegistry(PidRef, ProcessRegistry),
    ProcessTraces(PidRef, ProcessTraces),
    Mailbox(PidRef, MailboxPeek),
    LogsUnavailable(String),
    Logs(Vec<LogRecord>, u64),
    Status(String),
    Disconnected(String),
    /// Attached again, at `addr` (node `node`), after `lost` stopped
    /// answering.
    Attached {
        addr: String,
        node: String,
        lost: String,
    },
}

/// Attaches, then runs the view until the user quits.
///
/// # Errors
/// The first attach failing (no node, wrong cookie, version), or the
/// terminal failing.
/// What the view shows besides the cluster's answers.
#[derive(Debug, Clone, Default)]
pub(crate) struct Extras {
    /// Lines for the Nodes view (where the demo's stack is).
    pub(crate) notes: Vec<String>,
    /// Jaeger's UI, for trace links.
    pub(crate) jaeger_ui: String,
}

pub(crate) async fn run(
    config: Target,
    more: &[String],
    interval: Duration,
    extras: Extras,
) -> Result<(), CliError> {
    // Attach before touching the terminal, so an error is a plain line.
    let (client, config) = config.connect_first(more).await?;
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            ratatui::restore();
            return Err(CliError::NoTerminal(e));
        }
    };
    let result = event_loop(&mut terminal, client, config, interval, extras).await;
    ratatui::restore();
    result
}

async fn event_loop(
    terminal: &mut ratatui::DefaultTerminal,
    client: Client,
    config: Target,
    interval: Duration,
    extras: Extras,
) -> Result<(), CliError> {
    let mut state = State::new(config.label(), interval.as_millis() as u64);
    state.notes = extras.notes;
    if !extras.jaeger_ui.is_empty() {
        state.jaeger_ui = extras.jaeger_ui;
    }
    let size = terminal.size().map_err(CliError::Terminal)?;
    state.processes.page_rows = view::process_rows(size.height);
    let (want_tx, want_rx) = watch::channel(Want::of(&state));
    let (tx, mut updates) = mpsc::channel(256);
    let conn = tokio::spawn(connection(client, config, interval, want_rx, tx));
    let mut events = EventStream::new();
    let mut stop = StopSignals::new()?;
    loop {
        state.now_ms = clustertop_proto::time::unix_ms();
        terminal
            .draw(|f| view::render(f, &state))
            .map_err(CliError::Terminal)?;
        if let Some(text) = state.clipboard.take() {
            copy_to_clipboard(&text);
        }
        tokio::select! {
            // SIGTERM, SIGHUP and SIGINT end the view as `q` does, so the
            // terminal is restored however the program is stopped.
            () = stop.recv() => break,
            event = events.next() => match event {
                Some(Ok(Event::Key(key))) if key.kind != KeyEventKind::Release => {
                    if state.filter_input.is_some() {
                        state.filter_key(key.code);
                    } else if let Some(action) = crate::keymap::action_for(&key) {
                        state.apply(action);
                    }
                }
                Some(Ok(Event::Resize(_, height))) => {
                    state.processes.page_rows = view::process_rows(height);
                }
                Some(Ok(_)) => {}
                Some(Err(e)) => return Err(CliError::Terminal(e)),
                None => break,
            },
            update = updates.recv() => match update {
                Some(u) => {
                    // Paused, the view keeps its data; logs still gather
                    // (below what is on screen).
                    if !state.paused
                        || matches!(
                            u,
                            Update::Disconnected(_)
                                | Update::Attached { .. }
                                | Update::Status(_)
                                | Update::Logs(..)
                                | Update::Mailbox(..)
                                | Update::LogsUnavailable(_)
                        )
                    {
                        apply(&mut state, u);
                    }
                }
                None => break,
            },
        }
        if state.quit {
            break;
        }
        want_tx.send_if_modified(|w| {
            let now = Want::of(&state);
            let changed = *w != now;
            *w = now;
            changed
        });
    }
    conn.abort();
    Ok(())
}

/// The signals that stop the view: SIGTERM (`kill`), SIGHUP (the
/// terminal closed) and SIGINT (`kill -INT`; Ctrl-C in the view is a key).
struct StopSignals {
    term: Signal,
    hup: Signal,
    int: Signal,
}

impl StopSignals {
    fn new() -> Result<Self, CliError> {
        let on = |kind| signal(kind).map_err(CliError::Signals);
        Ok(StopSignals {
            term: on(SignalKind::terminate())?,
            hup: on(SignalKind::hangup())?,
            int: on(SignalKind::interrupt())?,
        })
    }

    /// Resolves when one of them arrives.
    async fn recv(&mut self) {
        tokio::select! {
            _ = self.term.recv() => {}
            _ = self.hup.recv() => {}
            _ = self.int.recv() => {}
        }
    }
}

/// Puts `text` on the terminal's clipboard with the OSC 52 escape (most
/// terminals, and tmux with `set-clipboard on`, honour it); the status
/// line shows the text too, for a terminal that does not.
fn copy_to_clipboard(text: &str) {
    use base64::Engine;
    use std::io::Write;
    let encoded = base64::engine::general_purpose::STANDARD.encode(text);
    let mut out = std::io::stdout();
    let _ = write!(out, "\x1b]52;c;{encoded}\x07").and_then(|()| out.flush());
}

fn apply(state: &mut State, update: Update) {
    match update {
        Update::Overview(o) => state.on_overview(o),
        Update::Processes(p) => state.on_processes(p),
        Update::Detail(d) => state.on_detail(*d),
        Update::Exited(pid, exit) => state.on_exited(&pid, exit),
        Update::Tree(t) => state.on_tree(t),
        Update::Metrics(m) => state.on_metrics(m),
        Update::Registry(r) => state.registry.update(r),
        Update::RegistryUnavailable(why) => state.registry.unavailable = Some(why),
        Update::Telemetry(t) => state.telemetry.update(t),
        Update::TelemetryUnavailable(why) => state.telemetry.unavailable = Some(why),
        Update::ProcessRegistry(pid, r) => state.on_process_registry(&pid, r),
        Update::ProcessTraces(pid, t) => state.on_process_traces(&pid, t),
        Update::Mailbox(pid, m) => state.on_mailbox(&pid, m),
        Update::LogsUnavailable(why) => state.logs.unavailable = Some(why),
        Update::Logs(r, dropped) => state.on_logs(r, dropped),
        Update::Status(s) => state.status = Some(s),
        Update::Disconnected(why) => state.on_disconnected(why),
        Update::Attached { addr, node, lost } => state.on_attached(&addr, &node, &lost),
    }
}

use crate::target::ATTACH_TRY;

/// Fetches what the view wants at every refresh. When the entry node stops
/// answering, attaches at once to another node the cluster reported (then
/// to the first entry again), and keeps trying, once a second, until one
/// answers.
async fn connection(
    mut client: Client,
    config: Target,
    interval: Duration,
    mut want: watch::Receiver<Want>,
    tx: mpsc::Sender<Update>,
) {
    let mut addr = config.label().to_owned();
    // Where the other nodes can be attached to, from the last overview.
    let mut others: Vec<String> = Vec::new();
    // The last ask to read a mailbox head that was served.
    let mut peeked = want.borrow().peek;
    loop {
        follow_logs(&client, tx.clone()).await;
        loop {
            let w = want.borrow_and_update().clone();
            if !w.paused {
                if w.peek != peeked {
                    peeked = w.peek;
                    if let Some(pid) = &w.detail {
                        peek(&client, pid, &tx).await;
                    }
                }
                match refresh(&client, &w, &tx).await {
                    Ok(o) => others = config.others(&o, client.entry(), &addr),
                    Err(ClientError::Agent(e)) => {
                        let _ = tx.send(Update::Status(e.to_string())).await;
                    }
                    Err(e) => {
                        let _ = tx
                            .send(Update::Disconnected(format!(
                                "{} ({addr}) stopped answering: {e}",
                                client.entry()
                            )))
                            .await;
                        break;
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(interval) => {}
                changed = want.changed() => if changed.is_err() { return },
            }
        }
        client.close();
        let lost = addr.clone();
        (client, addr) = 'attached: loop {
            let mut tried = Vec::new();
            let mut last_error = String::new();
            let mut candidates = others.clone();
            candidates.extend([config.label().to_owned(), lost.clone()]);
            for candidate in candidates {
                if tried.contains(&candidate) {
                    continue;
                }
                let c = config.at(&candidate);
                match tokio::time::timeout(ATTACH_TRY, c.connect()).await {
                    Ok(Ok(client)) => {
                        let _ = tx
                            .send(Update::Attached {
                                addr: candidate.clone(),
                                node: client.entry().to_owned(),
                                lost: lost.clone(),
                            })
                            .await;
                        break 'attached (client, candidate);
                    }
                    Ok(Err(e)) => last_error = e.to_string(),
                    Err(_) => {
                        last_error = format!("{candidate} did not answer within {ATTACH_TRY:?}")
                    }
                }
                tried.push(candidate);
            }
            let _ = tx
                .send(Update::Disconnected(format!(
                    "no node answers (tried {}): {last_error}; trying again every second",
                    tried.join(", ")
                )))
                .await;
            tokio::time::sleep(Duration::from_secs(1)).await;
        };
    }
}

/// How many queued messages a key reads.
const PEEK: u32 = 20;

/// Reads the head of `pid`'s mailbox, once: on a BEAM node that copies
/// its queue, so never on every refresh.
async fn peek(client: &Client, pid: &PidRef, tx: &mpsc::Sender<Update>) {
    let update = match client
        .ask(PeekMailbox {
            pid: pid.clone(),
            limit: PEEK,
        })
        .await
    {
        Ok(m) => Update::Mailbox(pid.clone(), m),
        Err(e) => Update::Status(format!("mailbox not read: {e}")),
    };
    let _ = tx.send(update).await;
}

/// One refresh of what the view wants; returns the overview.
async fn refresh(
    client: &Client,
    w: &Want,
    tx: &mpsc::Sender<Update>,
) -> Result<ClusterOverview, ClientError> {
    let send = |u| async { tx.send(u).await.is_ok() };
    let overview = client.overview().await?;
    send(Update::Overview(overview.clone())).await;
    if let Some(pid) = &w.detail {
        match client.process(pid.clone()).await {
            Ok(d) => {
                send(Update::Detail(Box::new(d))).await;
            }
            Err(ClientError::Agent(ProtoError::Exited {
                reason,
                crashed,
                at_unix_ms,
            })) => {
                let exit = crate::state::DetailExit {
                    reason,
                    crashed,
                    at_unix_ms,
                };
                send(Update::Exited(pid.clone(), exit)).await;
            }
            Err(ClientError::Agent(ProtoError::NoSuchProcess)) => {
                let exit = crate::state::DetailExit {
                    reason: "unknown: its node no longer remembers it".into(),
                    crashed: false,
                    at_unix_ms: 0,
                };
                send(Update::Exited(pid.clone(), exit)).await;
            }
            Err(e) => return Err(e),
        }
        match client.ask(GetProcessRegistry { pid: pid.clone() }).await {
            Ok(r) => {
                send(Update::ProcessRegistry(pid.clone(), r)).await;
            }
            // An older agent, or the process went: the detail says the rest.
            Err(ClientError::Unsupported { .. } | ClientError::Agent(_)) => {}
            Err(e) => return Err(e),
        }
        match client.ask(GetProcessTraces { pid: pid.clone() }).await {
            Ok(t) => {
                send(Update::ProcessTraces(pid.clone(), t)).await;
            }
            Err(ClientError::Unsupported { .. } | ClientError::Agent(_)) => {}
            Err(e) => return Err(e),
        }
    }
    match w.tab {
        Tab::Processes => {
            send(Update::Processes(client.processes(w.query.clone()).await?)).await;
        }
        Tab::Tree => {
            if let Some(node) = &w.tree_node {
                send(Update::Tree(client.tree(node).await?)).await;
            }
        }
        Tab::Registry => match client.ask(GetRegistry).await {
            Ok(r) => {
                send(Update::Registry(r)).await;
            }
            Err(e @ ClientError::Unsupported { .. }) => {
                send(Update::RegistryUnavailable(e.to_string())).await;
            }
            Err(e) => return Err(e),
        },
        Tab::Nodes | Tab::Metrics => match client.ask(GetTelemetry::default()).await {
            Ok(t) => {
                send(Update::Telemetry(t)).await;
            }
            Err(e @ ClientError::Unsupported { .. }) => {
                send(Update::TelemetryUnavailable(e.to_string())).await;
            }
            Err(e) => return Err(e),
        },
        _ => {}
    }
    // Always: the latency chart keeps its history in every view.
    send(Update::Metrics(client.metrics(None).await?)).await;
    Ok(overview)
}

/// Subscribes to every node's logs and forwards them until the
/// subscription ends.
async fn follow_logs(client: &Client, tx: mpsc::Sender<Update>) {
    let filter = LogFilter {
        min_level: LogLevel::Debug,
        ..LogFilter::default()
    };
    match client.subscribe_logs_with_backlog(filter, 200, 256).await {
        Ok(mut stream) => {
            tokio::spawn(async move {
                while let Some(chunk) = stream.next().await {
                    if tx
                        .send(Update::Logs(chunk.records, chunk.dropped_total))
                        .await
                        .is_err()
                    {
                        return;
                    }
                }
            });
        }
        // A cluster that has none says why (a BEAM cluster: reading its
        // logs would need code loaded into it).
        Err(ClientError::Agent(e)) => {
            let _ = tx.send(Update::LogsUnavailable(e.to_string())).await;
        }
        Err(e) => {
            let _ = tx.send(Update::Status(format!("no log tail: {e}"))).await;
        }
    }
}
