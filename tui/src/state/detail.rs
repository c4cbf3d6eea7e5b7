//! The process detail, drawn over any view: which process, what its node
//! said of it, how it exited, its registry entries, its traced handlings
//! (one selected), its mailbox head when asked, and its mailbox length
//! over time.

use super::{Series, TRACE_LINES, jaeger_url};
use clustertop_proto::{MailboxPeek, PidRef, ProcessDetail, ProcessRegistry, ProcessTraces};

/// How a detailed process exited, as its node remembers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct DetailExit {
    pub(crate) reason: String,
    pub(crate) crashed: bool,
    pub(crate) at_unix_ms: u64,
}

/// The detail's state. Answers about another process than the one shown
/// (a late reply after the detail moved on) are dropped.
#[derive(Debug, Default)]
pub(crate) struct DetailState {
    /// The process shown (`None`: the detail is closed).
    pub(crate) pid: Option<PidRef>,
    pub(crate) data: Option<ProcessDetail>,
    /// How it exited, once it has.
    pub(crate) exit: Option<DetailExit>,
    /// Its subscriptions, names and groups.
    pub(crate) registry: Option<ProcessRegistry>,
    /// Its last traced handlings.
    pub(crate) traces: Option<ProcessTraces>,
    /// The selected trace: its place in the list, and its id, which the
    /// selection follows when the list changes.
    pub(crate) trace_selected: usize,
    trace_id: Option<String>,
    /// Lines the detail's text is scrolled by (PgDn, PgUp).
    pub(crate) scroll: u16,
    /// The related process picked (`r` steps through them; Enter opens
    /// it): an index into [`DetailState::related`].
    pub(crate) related_selected: Option<usize>,
    /// Its mailbox head, read when asked (`m`).
    pub(crate) peek: Option<MailboxPeek>,
    /// Asks to read a mailbox head so far (the connection reads one per
    /// ask); counted across details.
    pub(crate) peek_asked: u64,
    /// Its mailbox length, one value per refresh.
    pub(crate) mailbox: Series,
}

impl DetailState {
    /// Whether a detail is shown.
    pub(crate) fn is_open(&self) -> bool {
        self.pid.is_some()
    }

    /// Shows `pid`'s detail, forgetting the last one's.
    pub(crate) fn open(&mut self, pid: PidRef) {
        self.close();
        self.pid = Some(pid);
    }

    /// Back to the view under the detail.
    pub(crate) fn close(&mut self) {
        *self = DetailState {
            peek_asked: self.peek_asked,
            ..DetailState::default()
        };
    }

    fn shows(&self, pid: &PidRef) -> bool {
        self.pid.as_ref() == Some(pid)
    }

    /// Moves the trace selection by `by`, within the traces listed.
    pub(crate) fn move_by(&mut self, by: i64) {
        let len = self
            .traces
            .as_ref()
            .map_or(0, |t| t.traces.len().min(TRACE_LINES));
        self.trace_selected = if len == 0 {
            0
        } else {
            (self.trace_selected as i64 + by).clamp(0, len as i64 - 1) as usize
        };
        self.trace_id = self
            .traces
            .as_ref()
            .and_then(|t| t.traces.get(self.trace_selected))
            .map(|t| t.trace_id.clone());
    }

    /// Scrolls the detail's text by `by` lines (the view stops it at the
    /// end).
    pub(crate) fn scroll_by(&mut self, by: i64) {
        self.scroll = (i64::from(self.scroll) + by).clamp(0, i64::from(u16::MAX)) as u16;
    }

    /// The processes the detail names, in the order it shows them: its
    /// supervisors, links, monitors (both ways) and top senders.
    pub(crate) fn related(&self) -> Vec<PidRef> {
        let Some(d) = &self.data else {
            return Vec::new();
        };
        let mut all: Vec<PidRef> = Vec::new();
        let senders = d.top_senders.iter().map(|(p, _)| p);
        for p in d
            .supervisor_path
            .iter()
            .chain(&d.links)
            .chain(&d.monitored_by)
            .chain(&d.monitoring)
            .chain(senders)
        {
            if !all.contains(p) {
                all.push(p.clone());
            }
        }
        all
    }

    /// Picks the next related process (after the last, none again).
    pub(crate) fn next_related(&mut self) {
        let n = self.related().len();
        self.related_selected = match self.related_selected {
            _ if n == 0 => None,
            None => Some(0),
            Some(i) if i + 1 < n => Some(i + 1),
            Some(_) => None,
        };
    }

    /// The related process picked, if any.
    pub(crate) fn picked(&self) -> Option<PidRef> {
        self.related().get(self.related_selected?).cloned()
    }

    pub(crate) fn on_detail(&mut self, d: ProcessDetail) {
        if self.shows(&d.row.pid) {
            self.mailbox.push(d.row.figures.mailbox_len as f64);
            self.data = Some(d);
        }
    }

    /// A mailbox head read for `pid`.
    pub(crate) fn on_mailbox(&mut self, pid: &PidRef, m: MailboxPeek) {
        if self.shows(pid) {
            self.peek = Some(m);
        }
    }

    /// The detailed process has exited: why and when.
    pub(crate) fn on_exited(&mut self, pid: &PidRef, exit: DetailExit) {
        if self.shows(pid) {
            self.exit = Some(exit);
        }
    }

    /// New traces: the selection stays on the trace it was on, if it is
    /// still listed.
    pub(crate) fn on_traces(&mut self, pid: &PidRef, t: ProcessTraces) {
        if self.shows(pid) {
            let listed = t.traces.len().min(TRACE_LINES);
            let same = self
                .trace_id
                .as_ref()
                .and_then(|id| t.traces[..listed].iter().position(|r| &r.trace_id == id));
            self.trace_selected = same.unwrap_or(self.trace_selected.min(listed.saturating_sub(1)));
            self.trace_id = t
                .traces
                .get(self.trace_selected)
                .map(|r| r.trace_id.clone());
            self.traces = Some(t);
        }
    }

    pub(crate) fn on_registry(&mut self, pid: &PidRef, r: ProcessRegistry) {
        if self.shows(pid) {
            self.registry = Some(r);
        }
    }

    /// The Jaeger URL (under `jaeger_ui`) of the selected trace.
    pub(crate) fn selected_trace_url(&self, jaeger_ui: &str) -> Option<String> {
        let t = self.traces.as_ref()?.traces.get(self.trace_selected)?;
        Some(jaeger_url(jaeger_ui, &t.trace_id))
    }
}
