//! Everything the views show, and how keys and data change it. Pure: no
//! terminal, no network; every derivation (rates, sorting, the filter)
//! is unit-tested here and every view renders from a `State` in tests.

pub(crate) mod filter;
mod rates;
pub(crate) mod registry;
mod sort;
pub(crate) mod telemetry;

pub(crate) use filter::Filter;
pub(crate) use rates::{NodeRates, Series};
use sort::beam_sorts;
pub(crate) use sort::{SORTS, sort_label};

use crate::keymap::Action;
use clustertop_proto::{
    ClusterOverview, LogLevel, LogRecord, MailboxPeek, MetricsSnapshot, PidRef, ProcessDetail,
    ProcessFilter, ProcessPage, ProcessQuery, ProcessRegistry, ProcessTraces, SortKey,
    SupervisionTree, TreeNode,
};
use registry::RegistryState;
use std::collections::{HashSet, VecDeque};
use telemetry::TelemetryState;

/// The views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tab {
    Nodes,
    Processes,
    Tree,
    Metrics,
    Logs,
    Warnings,
    Registry,
}

impl Tab {
    pub(crate) const ALL: [Tab; 7] = [
        Tab::Nodes,
        Tab::Processes,
        Tab::Tree,
        Tab::Metrics,
        Tab::Logs,
        Tab::Warnings,
        Tab::Registry,
    ];

    pub(crate) fn title(self) -> &'static str {
        match self {
            Tab::Nodes => "Nodes",
            Tab::Processes => "Processes",
            Tab::Tree => "Tree",
            Tab::Metrics => "Metrics",
            Tab::Logs => "Logs",
            Tab::Warnings => "Warnings",
            Tab::Registry => "Registry",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// How a detailed process exited, as its node remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DetailExit {
    pub(crate) reason: String,
    pub(crate) crashed: bool,
    pub(crate) at_unix_ms: u64,
}

/// The help over the view: closed, the keys, or what each column means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Help {
    Closed,
    Keys,
    Columns,
}

/// Jaeger's UI when neither `--jaeger-ui` nor `CLUSTERTOP_JAEGER_UI` says.
pub(crate) const DEFAULT_JAEGER_UI: &str = "http://localhost:16686";

/// Records kept in the logs view.
pub(crate) const LOG_LINES: usize = 5_000;
/// The last records a new chunk is merged into by time.
const LOG_REORDER: usize = 512;
/// Samples kept for the charts: ten minutes at the default 1 s, more than
/// the widest panel draws (each draws its newest samples, the newest at
/// its right edge).
pub(crate) const HISTORY: usize = 600;
/// Traces listed in a process's detail (and so selectable there).
pub(crate) const TRACE_LINES: usize = 5;

/// The whole state of the interactive view.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) tab: Tab,
    pub(crate) help: Help,
    /// The process shown in detail (over the current tab).
    pub(crate) detail: Option<PidRef>,
    pub(crate) detail_data: Option<ProcessDetail>,
    /// How the detailed process exited, once it has.
    pub(crate) detail_exit: Option<DetailExit>,
    /// The detailed process's subscriptions, names and groups.
    pub(crate) detail_registry: Option<ProcessRegistry>,
    /// The detailed process's last traced handlings, and the one selected.
    pub(crate) detail_traces: Option<ProcessTraces>,
    /// The detailed process's mailbox head, read when asked (`m`).
    pub(crate) detail_peek: Option<MailboxPeek>,
    /// Asks to read a mailbox head so far (the connection reads one per
    /// ask).
    pub(crate) peek_asked: u64,
    /// Why the cluster has no log tail (a BEAM cluster's), when it has
    /// none.
    pub(crate) logs_unavailable: Option<String>,
    pub(crate) trace_selected: usize,
    /// Where Jaeger's UI is, for trace links.
    pub(crate) jaeger_ui: String,
    /// Text to put on the terminal's clipboard (OSC 52) at the next draw.
    pub(crate) clipboard: Option<String>,
    /// Mailbox length of the detailed process, one value per refresh.
    pub(crate) detail_mailbox: Series,
    /// The entry node's address and whether we are attached.
    pub(crate) entry: String,
    /// The entry the view attached to before it fell over to `entry`.
    pub(crate) fell_over_from: Option<String>,
    /// The wall clock at the last draw, ms since the Unix epoch (set by
    /// the app, for the age of data shown while no node answers).
    pub(crate) now_ms: u64,
    pub(crate) connected: bool,
    pub(crate) status: Option<String>,
    pub(crate) paused: bool,
    pub(crate) interval_ms: u64,
    pub(crate) overview: Option<ClusterOverview>,
    pub(crate) rates: NodeRates,
    pub(crate) processes: Option<ProcessPage>,
    pub(crate) selected: usize,
    /// First row of the page asked for.
    pub(crate) offset: u64,
    /// Rows the process table shows (set by the view).
    pub(crate) page_rows: u32,
    pub(crate) sort: SortKey,
    pub(crate) descending: bool,
    pub(crate) filter: Filter,
    /// The filter being typed, with its parse error.
    pub(crate) filter_input: Option<String>,
    pub(crate) filter_error: Option<String>,
    /// The node picked with `n` (index into the overview's nodes).
    pub(crate) node_pick: Option<usize>,
    pub(crate) tree: Option<SupervisionTree>,
    pub(crate) tree_selected: usize,
    /// The selected row of the Nodes and Warnings views.
    pub(crate) node_selected: usize,
    pub(crate) warning_selected: usize,
    pub(crate) collapsed: HashSet<(String, u64)>,
    pub(crate) metrics: Option<MetricsSnapshot>,
    pub(crate) registry: RegistryState,
    /// Each node's endpoints, user series and events.
    pub(crate) telemetry: TelemetryState,
    /// Lines for the Nodes view: where `demo --stack`'s programs are.
    pub(crate) notes: Vec<String>,
    pub(crate) logs: VecDeque<LogRecord>,
    pub(crate) logs_dropped: u64,
    /// The log record opened with Enter, shown whole.
    pub(crate) log_open: Option<LogRecord>,
    pub(crate) log_level: LogLevel,
    /// Lines scrolled up from the end of the log; 0 follows the tail.
    pub(crate) log_scroll: usize,
    pub(crate) quit: bool,
}

impl State {
    pub(crate) fn new(entry: &str, interval_ms: u64) -> State {
        State {
            tab: Tab::Processes,
            help: Help::Closed,
            detail: None,
            detail_data: None,
            detail_exit: None,
            detail_registry: None,
            detail_traces: None,
            detail_peek: None,
            peek_asked: 0,
            logs_unavailable: None,
            trace_selected: 0,
            jaeger_ui: DEFAULT_JAEGER_UI.to_owned(),
            clipboard: None,
            detail_mailbox: Series::default(),
            entry: entry.to_owned(),
            fell_over_from: None,
            now_ms: 0,
            connected: false,
            status: Some(format!("attaching to {entry}…")),
            paused: false,
            interval_ms,
            overview: None,
            rates: NodeRates::default(),
            processes: None,
            selected: 0,
            offset: 0,
            page_rows: 30,
            sort: SortKey::Default,
            descending: true,
            filter: Filter::default(),
            filter_input: None,
            filter_error: None,
            node_pick: None,
            tree: None,
            tree_selected: 0,
            node_selected: 0,
            warning_selected: 0,
            collapsed: HashSet::new(),
            metrics: None,
            registry: RegistryState::default(),
            telemetry: TelemetryState::default(),
            notes: Vec::new(),
            logs: VecDeque::new(),
            logs_dropped: 0,
            log_open: None,
            log_level: LogLevel::Info,
            log_scroll: 0,
            quit: false,
        }
    }

    /// Names of the nodes in the last overview.
    pub(crate) fn node_names(&self) -> Vec<String> {
        self.overview
            .as_ref()
            .map(|o| o.nodes.iter().map(|n| n.name.clone()).collect())
            .unwrap_or_default()
    }

    /// Whether the cluster is a BEAM cluster (its nodes carry BEAM
    /// figures): the views then show the BEAM's columns.
    pub(crate) fn is_beam(&self) -> bool {
        self.overview
            .as_ref()
            .is_some_and(|o| o.nodes.iter().any(|n| n.beam.is_some()))
            || self
                .processes
                .as_ref()
                .is_some_and(|p| p.rows.iter().any(|r| r.beam.is_some()))
    }

    /// The node the views are narrowed to: picked with `n`, else named by
    /// the filter.
    pub(crate) fn node_scope(&self) -> Option<String> {
        let names = self.node_names();
        if let Some(i) = self.node_pick {
            return names.get(i).cloned();
        }
        self.filter
            .node_in(&names)
            .ok()
            .flatten()
            .map(str::to_owned)
    }

    /// The page of processes to ask for.
    pub(crate) fn process_query(&self) -> ProcessQuery {
        ProcessQuery {
            filter: ProcessFilter {
                node: self.node_scope(),
                name_contains: self.filter.name.clone(),
                min_mailbox_len: self.filter.min_mailbox,
                min_growth_per_s: self.filter.min_growth,
                include_system: self.filter.system,
            },
            sort: self.sort,
            descending: self.descending,
            offset: self.offset,
            limit: self.page_rows.max(1),
        }
    }

    /// The rows shown: the page (the agents apply the whole filter).
    pub(crate) fn visible_rows(&self) -> Vec<&clustertop_proto::ProcessRow> {
        self.processes
            .as_ref()
            .map_or_else(Vec::new, |page| page.rows.iter().collect())
    }

    /// The node whose supervision tree is shown.
    pub(crate) fn tree_node(&self) -> Option<String> {
        self.node_scope()
            .or_else(|| self.node_names().into_iter().next())
    }

    /// The tree's rows as shown: (depth, node), collapsed subtrees left out.
    pub(crate) fn tree_rows(&self) -> Vec<(usize, &TreeNode)> {
        fn walk<'a>(
            s: &State,
            node: &str,
            n: &'a TreeNode,
            depth: usize,
            out: &mut Vec<(usize, &'a TreeNode)>,
        ) {
            out.push((depth, n));
            if !s.collapsed.contains(&(node.to_owned(), n.pid.serial)) {
                for c in &n.children {
                    walk(s, node, c, depth + 1, out);
                }
            }
        }
        let mut out = Vec::new();
        if let Some(t) = &self.tree {
            for r in &t.roots {
                walk(self, &t.node, r, 0, &mut out);
            }
            // Then what no supervisor started, so nothing is missing.
            out.extend(t.unsupervised.iter().map(|n| (1, n)));
        }
        out
    }

    /// How many of [`State::tree_rows`] belong to the supervision trees
    /// (the rest are the processes outside them).
    pub(crate) fn tree_rows_supervised(&self) -> usize {
        let unsupervised = self.tree.as_ref().map_or(0, |t| t.unsupervised.len());
        self.tree_rows().len() - unsupervised
    }

    /// The log record at the cursor: the bottom line of the logs view (the
    /// newest while following; `j`/`k` scroll it).
    pub(crate) fn log_cursor(&self) -> Option<&LogRecord> {
        let shown = self.visible_logs();
        let at = shown.len().checked_sub(1 + self.log_scroll)?;
        shown.get(at).copied()
    }

    /// The log records shown, filtered by level, node scope and text.
    pub(crate) fn visible_logs(&self) -> Vec<&LogRecord> {
        let node = self.node_scope();
        self.logs
            .iter()
            .filter(|r| self.shows_log(r, node.as_deref()))
            .collect()
    }

    /// Whether the logs view shows `r` (narrowed to `node`, if any).
    fn shows_log(&self, r: &LogRecord, node: Option<&str>) -> bool {
        r.level >= self.log_level
            && node.is_none_or(|n| n == r.node)
            && self
                .filter
                .name
                .as_ref()
                .is_none_or(|t| r.message.contains(t.as_str()))
    }

    /// Applies a key's action.
    pub(crate) fn apply(&mut self, action: Action) {
        if self.help != Help::Closed {
            // `?` turns the page; any other key closes the help, and
            // quitting still quits.
            self.help = match (self.help, action) {
                (Help::Keys, Action::Help) => Help::Columns,
                (Help::Columns, Action::Help) => Help::Keys,
                _ => Help::Closed,
            };
            if action == Action::Quit {
                self.quit = true;
            }
            return;
        }
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.help = Help::Keys,
            Action::Pause => {
                self.paused = !self.paused;
                if !self.paused {
                    self.log_scroll = 0;
                }
            }
            Action::NextView => self.switch((self.tab.index() + 1) % Tab::ALL.len()),
            Action::PrevView => {
                self.switch((self.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len());
            }
            Action::View(n) => self.switch(usize::from(n).saturating_sub(1)),
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            Action::PageUp => self.move_by(-(i64::from(self.page_rows.max(2)) - 1)),
            Action::PageDown => self.move_by(i64::from(self.page_rows.max(2)) - 1),
            Action::Top => self.move_by(i64::MIN / 2),
            Action::Bottom => self.move_by(i64::MAX / 2),
            Action::Enter => self.enter(),
            Action::CopyTrace => self.copy_trace(),
            Action::PeekMailbox => {
                if self.detail.is_some() {
                    self.peek_asked += 1;
                    self.status = Some("reading the mailbox head…".into());
                }
            }
            Action::Back => {
                if self.log_open.is_some() {
                    self.log_open = None;
                } else if self.detail.is_some() {
                    self.close_detail();
                } else if self.filter != Filter::default() || self.node_pick.is_some() {
                    self.filter = Filter::default();
                    self.node_pick = None;
                    self.reset_page();
                }
            }
            Action::SortNext => {
                // A BEAM cluster has no figure for some keys: skipped.
                let beam = self.is_beam();
                let i = SORTS.iter().position(|s| *s == self.sort).unwrap_or(0);
                self.sort = (1..=SORTS.len())
                    .map(|step| SORTS[(i + step) % SORTS.len()])
                    .find(|k| !beam || beam_sorts(*k))
                    .unwrap_or(SortKey::Default);
                self.descending = self.sort != SortKey::Pid;
                self.reset_page();
            }
            Action::SortReverse => {
                self.descending = !self.descending;
                self.reset_page();
            }
            Action::Filter => {
                // The current query, ready to be extended.
                let mut query = self.filter.to_query();
                if !query.is_empty() {
                    query.push(' ');
                }
                self.filter_input = Some(query);
                self.filter_error = None;
            }
            Action::NodeNext => {
                let n = self.node_names().len();
                self.node_pick = match self.node_pick {
                    _ if n == 0 => None,
                    None => Some(0),
                    Some(i) if i + 1 < n => Some(i + 1),
                    Some(_) => None,
                };
                self.tree = None;
                self.tree_selected = 0;
                self.reset_page();
            }
            Action::ToggleSystem => {
                self.filter.system = !self.filter.system;
                self.reset_page();
            }
            Action::LevelNext => {
                self.log_level = match self.log_level {
                    LogLevel::Trace => LogLevel::Debug,
                    LogLevel::Debug => LogLevel::Info,
                    LogLevel::Info => LogLevel::Warn,
                    LogLevel::Warn => LogLevel::Error,
                    LogLevel::Error => LogLevel::Trace,
                };
            }
        }
    }

    fn switch(&mut self, index: usize) {
        self.tab = Tab::ALL[index.min(Tab::ALL.len() - 1)];
        self.close_detail();
    }

    fn reset_page(&mut self) {
        self.offset = 0;
        self.selected = 0;
    }

    fn move_by(&mut self, by: i64) {
        let clamp = |at: usize, len: usize| -> usize {
            if len == 0 {
                0
            } else {
                (at as i64 + by).clamp(0, len as i64 - 1) as usize
            }
        };
        match self.tab {
            _ if self.detail.is_some() => {
                let len = self
                    .detail_traces
                    .as_ref()
                    .map_or(0, |t| t.traces.len().min(TRACE_LINES));
                self.trace_selected = clamp(self.trace_selected, len);
            }
            Tab::Processes if self.detail.is_none() => {
                // The selection moves within the page; past its edges the
                // page itself moves.
                let total = self.processes.as_ref().map_or(0, |p| p.total_matching) as i64;
                let at = self.offset as i64 + self.selected as i64 + by;
                let at = at.clamp(0, (total - 1).max(0));
                let rows = i64::from(self.page_rows.max(1));
                if at < self.offset as i64 || at >= self.offset as i64 + rows {
                    self.offset = (at - at % rows).max(0) as u64;
                }
                self.selected = (at - self.offset as i64) as usize;
            }
            Tab::Tree => self.tree_selected = clamp(self.tree_selected, self.tree_rows().len()),
            Tab::Nodes => {
                let len = self.overview.as_ref().map_or(0, |o| o.nodes.len());
                self.node_selected = clamp(self.node_selected, len);
            }
            Tab::Warnings => {
                let len = self.overview.as_ref().map_or(0, |o| o.warnings.len());
                self.warning_selected = clamp(self.warning_selected, len);
            }
            Tab::Logs => {
                let len = self.visible_logs().len();
                self.log_scroll = (self.log_scroll as i64 - by).clamp(0, len as i64) as usize;
            }
            _ => {}
        }
    }

    fn enter(&mut self) {
        match self.tab {
            Tab::Processes => {
                if let Some(pid) = self
                    .visible_rows()
                    .get(self.selected)
                    .map(|r| r.pid.clone())
                {
                    self.open_detail(pid);
                }
            }
            Tab::Tree => {
                let rows = self.tree_rows();
                if let (Some((_, n)), Some(t)) = (rows.get(self.tree_selected), &self.tree) {
                    let key = (t.node.clone(), n.pid.serial);
                    if n.children.is_empty() {
                        let pid = n.pid.clone();
                        self.open_detail(pid);
                    } else if !self.collapsed.remove(&key) {
                        self.collapsed.insert(key);
                    }
                }
            }
            Tab::Logs => {
                self.log_open = match self.log_open {
                    Some(_) => None,
                    None => self.log_cursor().cloned(),
                };
            }
            Tab::Warnings => {
                let Some(w) = self
                    .overview
                    .as_ref()
                    .and_then(|o| o.warnings.get(self.warning_selected))
                    .cloned()
                else {
                    return;
                };
                match w.pid {
                    // A process's warning: its detail.
                    Some(pid) => self.open_detail(pid),
                    // A node's: the Nodes view, on that node.
                    None => {
                        let at = self
                            .overview
                            .as_ref()
                            .and_then(|o| o.nodes.iter().position(|n| n.name == w.node));
                        self.switch(Tab::Nodes.index());
                        self.node_selected = at.unwrap_or(0);
                    }
                }
            }
            _ => {}
        }
    }

    /// Shows `pid`'s detail over the current view.
    fn open_detail(&mut self, pid: PidRef) {
        self.close_detail();
        self.detail = Some(pid);
    }

    /// Back to the view under the detail.
    fn close_detail(&mut self) {
        self.detail = None;
        self.detail_data = None;
        self.detail_exit = None;
        self.detail_registry = None;
        self.detail_traces = None;
        self.detail_peek = None;
        self.trace_selected = 0;
        self.detail_mailbox = Series::default();
    }

    /// A mailbox head read for `pid`.
    pub(crate) fn on_mailbox(&mut self, pid: &PidRef, m: MailboxPeek) {
        if self.detail.as_ref() == Some(pid) {
            self.detail_peek = Some(m);
        }
    }

    /// The detailed process has exited: why and when.
    pub(crate) fn on_exited(&mut self, pid: &PidRef, exit: DetailExit) {
        if self.detail.as_ref() == Some(pid) {
            self.detail_exit = Some(exit);
        }
    }

    /// A key typed while the filter is open. Enter applies the query if it
    /// parses (else shows the error and keeps the input); Esc cancels.
    pub(crate) fn filter_key(&mut self, code: crossterm::event::KeyCode) {
        use crossterm::event::KeyCode;
        let Some(input) = &mut self.filter_input else {
            return;
        };
        match code {
            KeyCode::Esc => {
                self.filter_input = None;
                self.filter_error = None;
            }
            KeyCode::Enter => {
                let parsed = Filter::parse(input).and_then(|f| {
                    f.node_in(&self.node_names())?;
                    Ok(f)
                });
                match parsed {
                    Ok(f) => {
                        self.filter = f;
                        self.node_pick = None;
                        self.filter_input = None;
                        self.filter_error = None;
                        self.tree = None;
                        self.reset_page();
                    }
                    Err(e) => self.filter_error = Some(e.to_string()),
                }
            }
            KeyCode::Backspace => {
                input.pop();
                self.filter_error = None;
            }
            KeyCode::Char(c) => {
                input.push(c);
                self.filter_error = None;
            }
            _ => {}
        }
    }

    /// A new overview: node rates are derived from it and the previous one.
    pub(crate) fn on_overview(&mut self, o: ClusterOverview) {
        self.rates.update(&o);
        self.overview = Some(o);
        self.connected = true;
        self.status = None;
    }

    pub(crate) fn on_processes(&mut self, page: ProcessPage) {
        let len = page.rows.len();
        self.processes = Some(page);
        if self.selected >= len {
            self.selected = len.saturating_sub(1);
        }
    }

    pub(crate) fn on_detail(&mut self, d: ProcessDetail) {
        if self.detail.as_ref() == Some(&d.row.pid) {
            self.detail_mailbox.push(d.row.mailbox_len as f64);
            self.detail_data = Some(d);
        }
    }

    pub(crate) fn on_tree(&mut self, t: SupervisionTree) {
        self.tree = Some(t);
        let len = self.tree_rows().len();
        if self.tree_selected >= len {
            self.tree_selected = len.saturating_sub(1);
        }
    }

    /// New log records. While paused (or scrolled back) the lines on
    /// screen stay where they are: the new ones go below them.
    pub(crate) fn on_logs(&mut self, records: Vec<LogRecord>, dropped_total: u64) {
        if self.paused || self.log_scroll > 0 {
            let node = self.node_scope();
            let shown = records
                .iter()
                .filter(|r| self.shows_log(r, node.as_deref()))
                .count();
            self.log_scroll += shown;
        }
        let added = records.len();
        self.logs.extend(records);
        // Each node pushes its records on its own: merge what came with
        // the last records by time, so nodes interleave as they logged.
        let window = (added + LOG_REORDER).min(self.logs.len());
        let from = self.logs.len() - window;
        self.logs.make_contiguous()[from..].sort_by_key(|r| r.at_unix_us);
        while self.logs.len() > LOG_LINES {
            self.logs.pop_front();
        }
        self.logs_dropped = self.logs_dropped.max(dropped_total);
    }

    pub(crate) fn on_process_traces(&mut self, pid: &PidRef, t: ProcessTraces) {
        if self.detail.as_ref() == Some(pid) {
            self.trace_selected = self.trace_selected.min(t.traces.len().saturating_sub(1));
            self.detail_traces = Some(t);
        }
    }

    /// The Jaeger URL of the selected trace of the detailed process.
    pub(crate) fn selected_trace_url(&self) -> Option<String> {
        let t = self
            .detail_traces
            .as_ref()?
            .traces
            .get(self.trace_selected)?;
        Some(jaeger_url(&self.jaeger_ui, &t.trace_id))
    }

    fn copy_trace(&mut self) {
        match self.selected_trace_url() {
            Some(url) => {
                self.status = Some(format!("copied {url}"));
                self.clipboard = Some(url);
            }
            None => {
                self.status =
                    Some("no trace selected (open a process that handled traced messages)".into())
            }
        }
    }

    pub(crate) fn on_process_registry(&mut self, pid: &PidRef, r: ProcessRegistry) {
        if self.detail.as_ref() == Some(pid) {
            self.detail_registry = Some(r);
        }
    }

    pub(crate) fn on_metrics(&mut self, m: MetricsSnapshot) {
        self.rates.update_latency(&m);
        self.metrics = Some(m);
    }

    pub(crate) fn on_disconnected(&mut self, why: String) {
        self.connected = false;
        self.status = Some(why);
    }

    /// Attached again at `addr` (node `node`) after `lost` stopped
    /// answering: the header says where the view now comes from.
    pub(crate) fn on_attached(&mut self, addr: &str, node: &str, lost: &str) {
        if addr != lost {
            self.fell_over_from = Some(lost.to_owned());
        }
        self.entry = addr.to_owned();
        self.connected = true;
        self.status = Some(format!("attached to {node} at {addr}"));
    }

    /// How old the data on screen is, when no node answers: the time
    /// since the last overview was sampled.
    pub(crate) fn stale_for_ms(&self) -> Option<u64> {
        if self.connected {
            return None;
        }
        let sampled = self
            .overview
            .as_ref()
            .and_then(|o| o.nodes.iter().map(|n| n.sampled_at_unix_ms).max())?;
        Some(self.now_ms.saturating_sub(sampled))
    }
}

/// A trace's page in Jaeger's UI.
pub(crate) fn jaeger_url(base: &str, trace_id: &str) -> String {
    format!("{}/trace/{trace_id}", base.trim_end_matches('/'))
}

#[cfg(test)]
mod tests;
