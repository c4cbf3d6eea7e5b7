//! Everything the views show, and how keys and data change it. Pure: no
//! terminal, no network; every derivation (rates, sorting, the filter)
//! is unit-tested here and every view renders from a `State` in tests.

pub(crate) mod detail;
pub(crate) mod filter;
pub(crate) mod logs;
pub(crate) mod processes;
mod rates;
pub(crate) mod registry;
mod sort;
pub(crate) mod telemetry;
pub(crate) mod tree;

pub(crate) use detail::{DetailExit, DetailState};
pub(crate) use filter::Filter;
pub(crate) use logs::{LogScope, LogsState};
pub(crate) use processes::ProcessesState;
pub(crate) use rates::{NodeRates, Series};
pub(crate) use sort::sort_label;
pub(crate) use tree::TreeState;

use crate::keymap::Action;
use clustertop_proto::{
    ClusterOverview, LogRecord, MailboxPeek, MetricsSnapshot, PidRef, ProcessDetail, ProcessPage,
    ProcessQuery, ProcessRegistry, ProcessTraces, SupervisionTree,
};
use registry::RegistryState;
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

/// The help over the view: closed, or open at a page (the keys, then what
/// each column means, in as many pages as the terminal needs; the view
/// takes the page number modulo their count).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Help {
    Closed,
    Page(usize),
}

/// Jaeger's UI when neither `--jaeger-ui` nor `CLUSTERTOP_JAEGER_UI` says.
pub(crate) const DEFAULT_JAEGER_UI: &str = "http://localhost:16686";

/// Samples kept for the charts: ten minutes at the default 1 s, more than
/// the widest panel draws (each draws its newest samples, the newest at
/// its right edge).
pub(crate) const HISTORY: usize = 600;
/// Traces listed in a process's detail (and so selectable there).
pub(crate) const TRACE_LINES: usize = 5;

/// The whole state of the interactive view: what the app shares between
/// the views (the connection, the cluster overview and node rates, the
/// filter and the node picked), and each view's own state, which the
/// view renders from and [`State::apply`] routes keys to.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) tab: Tab,
    pub(crate) help: Help,
    /// The entry node's address and whether we are attached.
    pub(crate) entry: String,
    /// The entry the view attached to before it fell over to `entry`.
    pub(crate) fell_over_from: Option<String>,
    /// The wall clock at the last draw, ms since the Unix epoch (set by
    /// the app, for the age of data shown while no node answers).
    pub(crate) now_ms: u64,
    pub(crate) connected: bool,
    pub(crate) status: Option<String>,
    /// Overviews the status outlives (a confirmation to be read).
    status_hold: u8,
    pub(crate) paused: bool,
    pub(crate) interval_ms: u64,
    pub(crate) overview: Option<ClusterOverview>,
    pub(crate) rates: NodeRates,
    pub(crate) metrics: Option<MetricsSnapshot>,
    pub(crate) filter: Filter,
    /// The filter being typed, with its parse error.
    pub(crate) filter_input: Option<String>,
    pub(crate) filter_error: Option<String>,
    /// The node picked with `n` (index into the overview's nodes).
    pub(crate) node_pick: Option<usize>,
    /// The process detail, over any view.
    pub(crate) detail: DetailState,
    pub(crate) processes: ProcessesState,
    pub(crate) tree: TreeState,
    pub(crate) logs: LogsState,
    /// The selected row of the Nodes and Warnings views.
    pub(crate) node_selected: usize,
    pub(crate) warning_selected: usize,
    pub(crate) registry: RegistryState,
    /// Each node's endpoints, user series and events.
    pub(crate) telemetry: TelemetryState,
    /// Where Jaeger's UI is, for trace links.
    pub(crate) jaeger_ui: String,
    /// Text to put on the terminal's clipboard (OSC 52) at the next draw.
    pub(crate) clipboard: Option<String>,
    /// Lines for the Nodes view: where `demo --stack`'s programs are.
    pub(crate) notes: Vec<String>,
    pub(crate) quit: bool,
}

impl State {
    pub(crate) fn new(entry: &str, interval_ms: u64) -> State {
        State {
            tab: Tab::Processes,
            help: Help::Closed,
            entry: entry.to_owned(),
            fell_over_from: None,
            now_ms: 0,
            connected: false,
            status: Some(format!("attaching to {entry}…")),
            status_hold: 0,
            paused: false,
            interval_ms,
            overview: None,
            rates: NodeRates::default(),
            metrics: None,
            filter: Filter::default(),
            filter_input: None,
            filter_error: None,
            node_pick: None,
            detail: DetailState::default(),
            processes: ProcessesState::default(),
            tree: TreeState::default(),
            logs: LogsState::default(),
            node_selected: 0,
            warning_selected: 0,
            registry: RegistryState::default(),
            telemetry: TelemetryState::default(),
            jaeger_ui: DEFAULT_JAEGER_UI.to_owned(),
            clipboard: None,
            notes: Vec::new(),
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
                .page
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
        self.processes.query(self.node_scope(), &self.filter)
    }

    /// The node whose supervision tree is shown.
    pub(crate) fn tree_node(&self) -> Option<String> {
        self.node_scope()
            .or_else(|| self.node_names().into_iter().next())
    }

    /// The log records shown, filtered by level, node scope and text.
    pub(crate) fn visible_logs(&self) -> Vec<&LogRecord> {
        let node = self.node_scope();
        self.logs.visible(LogScope {
            node: node.as_deref(),
            text: self.filter.name.as_deref(),
        })
    }

    /// Applies a key's action: the app's own keys here, a view's keys to
    /// the view's state (the detail's while it is open).
    pub(crate) fn apply(&mut self, action: Action) {
        if self.help != Help::Closed {
            // `?` turns the page; any other key closes the help, and
            // quitting still quits.
            self.help = match (self.help, action) {
                (Help::Page(n), Action::Help) => Help::Page(n + 1),
                _ => Help::Closed,
            };
            if action == Action::Quit {
                self.quit = true;
            }
            return;
        }
        let step = self.processes.page_step();
        match action {
            Action::Quit => self.quit = true,
            Action::Help => self.help = Help::Page(0),
            Action::Pause => {
                self.paused = !self.paused;
                if !self.paused {
                    self.logs.scroll = 0;
                }
            }
            Action::NextView => self.switch((self.tab.index() + 1) % Tab::ALL.len()),
            Action::PrevView => {
                self.switch((self.tab.index() + Tab::ALL.len() - 1) % Tab::ALL.len());
            }
            Action::View(n) => self.switch(usize::from(n).saturating_sub(1)),
            Action::Up => self.move_by(-1),
            Action::Down => self.move_by(1),
            // In the detail, pages scroll its text (the mailbox head read
            // with `m` may be longer than the screen).
            Action::PageUp if self.detail.is_open() => self.detail.scroll_by(-10),
            Action::PageDown if self.detail.is_open() => self.detail.scroll_by(10),
            Action::PageUp => self.move_by(-step),
            Action::PageDown => self.move_by(step),
            Action::Top => self.move_by(i64::MIN / 2),
            Action::Bottom => self.move_by(i64::MAX / 2),
            Action::Enter => self.enter(),
            Action::CopyTrace => self.copy_trace(),
            Action::Related => self.detail.next_related(),
            Action::PeekMailbox => {
                if self.detail.is_open() {
                    self.detail.peek_asked += 1;
                    self.status = Some("reading the mailbox head…".into());
                }
            }
            Action::Back => self.back(),
            // A BEAM cluster has no figure for some keys: skipped.
            Action::SortNext => self.processes.next_sort(self.is_beam()),
            Action::SortReverse => self.processes.reverse(),
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
                self.tree.clear();
                self.processes.reset_page();
            }
            Action::ToggleSystem => {
                self.filter.system = !self.filter.system;
                self.processes.reset_page();
            }
            Action::LevelNext => self.logs.next_level(),
        }
    }

    /// Esc: closes what is open (a log record, the detail), else clears
    /// the filter and the node picked.
    fn back(&mut self) {
        if self.logs.open.is_some() {
            self.logs.open = None;
        } else if self.detail.is_open() {
            self.detail.close();
        } else if self.filter != Filter::default() || self.node_pick.is_some() {
            self.filter = Filter::default();
            self.node_pick = None;
            self.processes.reset_page();
        }
    }

    fn switch(&mut self, index: usize) {
        self.tab = Tab::ALL[index.min(Tab::ALL.len() - 1)];
        self.detail.close();
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
            _ if self.detail.is_open() => self.detail.move_by(by),
            Tab::Processes => self.processes.move_by(by),
            Tab::Tree => self.tree.move_by(by),
            Tab::Nodes => {
                let len = self.overview.as_ref().map_or(0, |o| o.nodes.len());
                self.node_selected = clamp(self.node_selected, len);
            }
            Tab::Warnings => {
                let len = self.overview.as_ref().map_or(0, |o| o.warnings.len());
                self.warning_selected = clamp(self.warning_selected, len);
            }
            Tab::Logs => {
                let node = self.node_scope();
                let scope = LogScope {
                    node: node.as_deref(),
                    text: self.filter.name.as_deref(),
                };
                self.logs.move_by(by, scope);
            }
            _ => {}
        }
    }

    fn enter(&mut self) {
        // In a detail, with a related process picked: that one's detail.
        if let Some(pid) = self.detail.picked() {
            self.detail.open(pid);
            return;
        }
        match self.tab {
            Tab::Processes => {
                if let Some(pid) = self.processes.selected_pid() {
                    self.detail.open(pid);
                }
            }
            Tab::Tree => {
                if let Some(pid) = self.tree.enter() {
                    self.detail.open(pid);
                }
            }
            Tab::Logs => {
                let node = self.node_scope();
                let scope = LogScope {
                    node: node.as_deref(),
                    text: self.filter.name.as_deref(),
                };
                self.logs.enter(scope);
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
                    Some(pid) => self.detail.open(pid),
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

    /// A mailbox head read for `pid`.
    pub(crate) fn on_mailbox(&mut self, pid: &PidRef, m: MailboxPeek) {
        self.detail.on_mailbox(pid, m);
    }

    /// The detailed process has exited: why and when.
    pub(crate) fn on_exited(&mut self, pid: &PidRef, exit: DetailExit) {
        self.detail.on_exited(pid, exit);
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
                        self.tree.data = None;
                        self.processes.reset_page();
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
        match self.status_hold {
            0 => self.status = None,
            n => self.status_hold = n - 1,
        }
    }

    pub(crate) fn on_processes(&mut self, page: ProcessPage) {
        self.processes.on_page(page);
    }

    pub(crate) fn on_detail(&mut self, d: ProcessDetail) {
        self.detail.on_detail(d);
    }

    pub(crate) fn on_tree(&mut self, t: SupervisionTree) {
        self.tree.on_tree(t);
    }

    /// New log records. While paused (or scrolled back) the lines on
    /// screen stay where they are: the new ones go below them.
    pub(crate) fn on_logs(&mut self, records: Vec<LogRecord>, dropped_total: u64) {
        let node = self.node_scope();
        let scope = LogScope {
            node: node.as_deref(),
            text: self.filter.name.as_deref(),
        };
        let held = self.paused;
        self.logs.on_logs(records, dropped_total, held, scope);
    }

    pub(crate) fn on_process_traces(&mut self, pid: &PidRef, t: ProcessTraces) {
        self.detail.on_traces(pid, t);
    }

    /// The Jaeger URL of the selected trace of the detailed process.
    pub(crate) fn selected_trace_url(&self) -> Option<String> {
        self.detail.selected_trace_url(&self.jaeger_ui)
    }

    fn copy_trace(&mut self) {
        match self.selected_trace_url() {
            Some(url) => {
                self.status = Some(format!("copied {url}"));
                // Kept over the next refreshes, long enough to be read.
                self.status_hold = 3;
                self.clipboard = Some(url);
            }
            None => {
                self.status =
                    Some("no trace selected (open a process that handled traced messages)".into())
            }
        }
    }

    pub(crate) fn on_process_registry(&mut self, pid: &PidRef, r: ProcessRegistry) {
        self.detail.on_registry(pid, r);
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
