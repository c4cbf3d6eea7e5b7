//! The cluster-wide log tail: the records kept (at most [`LOG_LINES`],
//! merged by time as the nodes push them), how far the view is scrolled
//! back, the record opened whole, and the lowest level shown.

use clustertop_proto::{LogLevel, LogRecord};
use std::collections::VecDeque;

/// Records kept in the logs view.
pub(crate) const LOG_LINES: usize = 5_000;
/// The last records a new chunk is merged into by time.
const LOG_REORDER: usize = 512;

/// Which records the view shows besides the level: those of one node, and
/// those whose message holds a text (from the app state's filter).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LogScope<'a> {
    pub(crate) node: Option<&'a str>,
    pub(crate) text: Option<&'a str>,
}

/// The logs view's state.
#[derive(Debug)]
pub(crate) struct LogsState {
    pub(crate) records: VecDeque<LogRecord>,
    /// Records the nodes dropped because the tail fell behind (the
    /// highest total any chunk reported).
    pub(crate) dropped: u64,
    /// The record opened with Enter, shown whole.
    pub(crate) open: Option<LogRecord>,
    pub(crate) level: LogLevel,
    /// Lines scrolled up from the end; 0 follows the tail.
    pub(crate) scroll: usize,
    /// Why the cluster has no log tail (a BEAM cluster's), when it has
    /// none.
    pub(crate) unavailable: Option<String>,
}

impl Default for LogsState {
    fn default() -> Self {
        LogsState {
            records: VecDeque::new(),
            dropped: 0,
            open: None,
            level: LogLevel::Info,
            scroll: 0,
            unavailable: None,
        }
    }
}

impl LogsState {
    /// Whether the view shows `r` in `scope`.
    fn shows(&self, r: &LogRecord, scope: LogScope<'_>) -> bool {
        r.level >= self.level
            && scope.node.is_none_or(|n| n == r.node)
            && scope.text.is_none_or(|t| r.message.contains(t))
    }

    /// The records shown, oldest first.
    pub(crate) fn visible(&self, scope: LogScope<'_>) -> Vec<&LogRecord> {
        self.records
            .iter()
            .filter(|r| self.shows(r, scope))
            .collect()
    }

    /// The record at the cursor: the bottom line of the view (the newest
    /// while following; `j`/`k` scroll it).
    pub(crate) fn cursor(&self, scope: LogScope<'_>) -> Option<&LogRecord> {
        let shown = self.visible(scope);
        let at = shown.len().checked_sub(1 + self.scroll)?;
        shown.get(at).copied()
    }

    /// Scrolls by `by` lines (down is towards the tail).
    pub(crate) fn move_by(&mut self, by: i64, scope: LogScope<'_>) {
        let len = self.visible(scope).len();
        self.scroll = (self.scroll as i64 - by).clamp(0, len as i64) as usize;
    }

    /// Enter: opens the record at the cursor whole, or closes it.
    pub(crate) fn enter(&mut self, scope: LogScope<'_>) {
        self.open = match self.open {
            Some(_) => None,
            None => self.cursor(scope).cloned(),
        };
    }

    /// The next level up (from error, back to trace).
    pub(crate) fn next_level(&mut self) {
        self.level = match self.level {
            LogLevel::Trace => LogLevel::Debug,
            LogLevel::Debug => LogLevel::Info,
            LogLevel::Info => LogLevel::Warn,
            LogLevel::Warn => LogLevel::Error,
            LogLevel::Error => LogLevel::Trace,
        };
    }

    /// New records. While `held` (paused) or scrolled back, the lines on
    /// screen stay where they are: the new ones go below them.
    pub(crate) fn on_logs(
        &mut self,
        records: Vec<LogRecord>,
        dropped_total: u64,
        held: bool,
        scope: LogScope<'_>,
    ) {
        if held || self.scroll > 0 {
            let shown = records.iter().filter(|r| self.shows(r, scope)).count();
            self.scroll += shown;
        }
        let added = records.len();
        self.records.extend(records);
        // Each node pushes its records on its own: merge what came with
        // the last records by time, so nodes interleave as they logged.
        let window = (added + LOG_REORDER).min(self.records.len());
        let from = self.records.len() - window;
        self.records.make_contiguous()[from..].sort_by_key(|r| r.at_unix_us);
        while self.records.len() > LOG_LINES {
            self.records.pop_front();
        }
        self.dropped = self.dropped.max(dropped_total);
    }
}
