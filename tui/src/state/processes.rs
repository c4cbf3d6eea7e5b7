//! The process list: the page shown, the selection within it, and the
//! order asked for. The filter and the node picked narrow it, as they do
//! the other views, from the app state.

use super::filter::Filter;
use super::sort::{SORTS, beam_sorts};
use clustertop_proto::{PidRef, ProcessFilter, ProcessPage, ProcessQuery, ProcessRow, SortKey};

/// The process list's state.
#[derive(Debug)]
pub(crate) struct ProcessesState {
    /// The last page answered.
    pub(crate) page: Option<ProcessPage>,
    /// The selected row, within the page.
    pub(crate) selected: usize,
    /// First row of the page asked for.
    pub(crate) offset: u64,
    /// Rows the table shows (set by the view).
    pub(crate) page_rows: u32,
    pub(crate) sort: SortKey,
    pub(crate) descending: bool,
}

impl Default for ProcessesState {
    fn default() -> Self {
        ProcessesState {
            page: None,
            selected: 0,
            offset: 0,
            page_rows: 30,
            sort: SortKey::Default,
            descending: true,
        }
    }
}

impl ProcessesState {
    /// The page to ask for, narrowed to `node` and by `filter`.
    pub(crate) fn query(&self, node: Option<String>, filter: &Filter) -> ProcessQuery {
        ProcessQuery {
            filter: ProcessFilter {
                node,
                name_contains: filter.name.clone(),
                min_mailbox_len: filter.min_mailbox,
                min_growth_per_s: filter.min_growth,
                include_system: filter.system,
            },
            sort: self.sort,
            descending: self.descending,
            offset: self.offset,
            limit: self.page_rows.max(1),
        }
    }

    /// The rows shown: the page (the agents apply the whole filter).
    pub(crate) fn rows(&self) -> Vec<&ProcessRow> {
        self.page
            .as_ref()
            .map_or_else(Vec::new, |page| page.rows.iter().collect())
    }

    /// The selected row's process.
    pub(crate) fn selected_pid(&self) -> Option<PidRef> {
        self.rows().get(self.selected).map(|r| r.pid.clone())
    }

    /// Back to the first page.
    pub(crate) fn reset_page(&mut self) {
        self.offset = 0;
        self.selected = 0;
    }

    /// A page step: a screenful less one row.
    pub(crate) fn page_step(&self) -> i64 {
        i64::from(self.page_rows.max(2)) - 1
    }

    /// Moves the selection by `by` within the page; past its edges the
    /// page itself moves.
    pub(crate) fn move_by(&mut self, by: i64) {
        let total = self.page.as_ref().map_or(0, |p| p.total_matching) as i64;
        let at = self.offset as i64 + self.selected as i64 + by;
        let at = at.clamp(0, (total - 1).max(0));
        let rows = i64::from(self.page_rows.max(1));
        if at < self.offset as i64 || at >= self.offset as i64 + rows {
            self.offset = (at - at % rows).max(0) as u64;
        }
        self.selected = (at - self.offset as i64) as usize;
    }

    /// The next sort key; on a BEAM cluster (`beam`) only the keys it has
    /// figures for.
    pub(crate) fn next_sort(&mut self, beam: bool) {
        let i = SORTS.iter().position(|s| *s == self.sort).unwrap_or(0);
        self.sort = (1..=SORTS.len())
            .map(|step| SORTS[(i + step) % SORTS.len()])
            .find(|k| !beam || beam_sorts(*k))
            .unwrap_or(SortKey::Default);
        self.descending = self.sort != SortKey::Pid;
        self.reset_page();
    }

    /// Reverses the order.
    pub(crate) fn reverse(&mut self) {
        self.descending = !self.descending;
        self.reset_page();
    }

    pub(crate) fn on_page(&mut self, page: ProcessPage) {
        let len = page.rows.len();
        self.page = Some(page);
        if self.selected >= len {
            self.selected = len.saturating_sub(1);
        }
    }
}
