//! Processes: one table for the whole cluster, sorted and filtered.

use super::{block, waiting};
use crate::format;
use crate::state::{State, sort_label};
use clustertop_proto::{ProcessRow, SortKey};
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Text;
use ratatui::widgets::{Cell, Row, Table, TableState};

fn right(s: String) -> Cell<'static> {
    Cell::from(Text::from(s).alignment(Alignment::Right))
}

/// A column of the table. Which ones are shown depends on the width: the
/// first seven always, then the others in this order as they fit, and the
/// one the table is sorted by in any case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Mark,
    Pid,
    Node,
    Name,
    Mailbox,
    Growth,
    Util,
    Rate,
    Oldest,
    Memory,
    Cpu,
    Work,
    /// A BEAM process's current function.
    Current,
}

/// The columns shown at every width.
const ALWAYS: [Col; 7] = [
    Col::Mark,
    Col::Pid,
    Col::Node,
    Col::Name,
    Col::Mailbox,
    Col::Growth,
    Col::Util,
];
/// The others, most wanted first.
const OPTIONAL: [Col; 5] = [Col::Rate, Col::Oldest, Col::Memory, Col::Cpu, Col::Work];
/// A BEAM cluster's columns: its figures (reductions, the current
/// function) instead of ours it has no counterpart for (handled
/// messages, time in handlers, poll time, the oldest message's age).
const ALWAYS_BEAM: [Col; 7] = [
    Col::Mark,
    Col::Pid,
    Col::Node,
    Col::Name,
    Col::Mailbox,
    Col::Growth,
    Col::Work,
];
const OPTIONAL_BEAM: [Col; 2] = [Col::Memory, Col::Current];
const ORDER_BEAM: [Col; 9] = [
    Col::Mark,
    Col::Pid,
    Col::Node,
    Col::Name,
    Col::Current,
    Col::Mailbox,
    Col::Growth,
    Col::Work,
    Col::Memory,
];
/// The place of every column, left to right.
const ORDER: [Col; 12] = [
    Col::Mark,
    Col::Pid,
    Col::Node,
    Col::Name,
    Col::Mailbox,
    Col::Growth,
    Col::Oldest,
    Col::Rate,
    Col::Util,
    Col::Cpu,
    Col::Work,
    Col::Memory,
];

/// The widths that follow the rows shown: the longest pid and node name
/// on the page (within bounds), so that the name column gets the rest.
#[derive(Debug, Clone, Copy)]
struct Fit {
    pid: u16,
    node: u16,
}

impl Fit {
    fn of(rows: &[&ProcessRow]) -> Fit {
        let longest =
            |f: &dyn Fn(&ProcessRow) -> usize| rows.iter().map(|r| f(r)).max().unwrap_or(0);
        let pid = longest(&|r| format::pid(&r.pid).chars().count());
        let node = longest(&|r| format::short_node(&r.pid.node).chars().count());
        Fit {
            pid: (pid as u16).clamp(3, 30),
            node: (node as u16).clamp(4, 24),
        }
    }
}

impl Col {
    /// Its width (the name's is its least); columns are one apart.
    fn len(self, fit: Fit) -> u16 {
        match self {
            Col::Mark => 1,
            Col::Pid => fit.pid,
            Col::Node => fit.node,
            Col::Name => 16,
            Col::Mailbox => 9,
            Col::Growth => 10,
            Col::Oldest => 7,
            Col::Rate => 7,
            Col::Util => 5,
            Col::Cpu => 5,
            Col::Work => 7,
            Col::Memory => 8,
            Col::Current => 26,
        }
    }

    fn width(self, fit: Fit) -> Constraint {
        match self {
            Col::Name => Constraint::Min(self.len(fit)),
            _ => Constraint::Length(self.len(fit)),
        }
    }

    fn sorted_by(self, key: SortKey) -> bool {
        matches!(
            (self, key),
            (Col::Mailbox, SortKey::MailboxLen)
                | (Col::Growth, SortKey::MailboxGrowth)
                | (Col::Oldest, SortKey::OldestMessage)
                | (Col::Rate, SortKey::MessageRate)
                | (Col::Util, SortKey::Utilisation)
                | (Col::Cpu, SortKey::Cpu)
                | (Col::Work, SortKey::Work)
                | (Col::Memory, SortKey::Memory)
        )
    }

    fn header(self, beam: bool) -> Cell<'static> {
        let text = match self {
            Col::Work if beam => "REDS/S",
            Col::Current => "CURRENT",
            Col::Mark => "⚠",
            Col::Pid => "PID",
            Col::Node => "NODE",
            Col::Name => "NAME / BEHAVIOUR",
            Col::Mailbox => "MAILBOX",
            Col::Growth => "GROWTH",
            Col::Oldest => "OLDEST",
            Col::Rate => "MSG/S",
            Col::Util => "UTIL",
            Col::Cpu => "CPU",
            Col::Work => "POLLS/S",
            Col::Memory => "MEMORY",
        };
        match self {
            Col::Mark | Col::Pid | Col::Node | Col::Name | Col::Current => Cell::from(text),
            _ => right(text.to_owned()),
        }
    }

    fn cell(self, r: &ProcessRow, name_width: u16) -> Cell<'static> {
        match self {
            Col::Mark => Cell::from(if r.figures.warnings > 0 { "▲" } else { "" }),
            Col::Pid => Cell::from(format::pid(&r.pid)),
            Col::Node => Cell::from(format::short_node(&r.pid.node).to_owned()),
            Col::Name => Cell::from(name_cell(r, usize::from(name_width))),
            Col::Mailbox => right(format::count(r.figures.mailbox_len)),
            Col::Growth => right(format::measured(&r.figures, || {
                format::growth(r.figures.mailbox_growth_per_s)
            })),
            Col::Oldest => right(
                r.figures
                    .oldest_message_age_us
                    .map_or("–".to_owned(), |us| format::duration_ms(us / 1000)),
            ),
            Col::Rate => right(format::measured(&r.figures, || {
                format::rate(r.figures.handled_per_s as f64)
            })),
            Col::Util => right(format::measured(&r.figures, || {
                format::permille(r.figures.util_permille)
            })),
            Col::Cpu => right(format::measured(&r.figures, || {
                format::permille(r.figures.cpu_permille)
            })),
            Col::Work => right(format::measured(&r.figures, || {
                format::rate(
                    r.beam
                        .as_ref()
                        .map_or(r.figures.polls_per_s, |b| b.reductions_per_s)
                        as f64,
                )
            })),
            Col::Memory => right(format::bytes(r.figures.memory_bytes)),
            Col::Current => Cell::from(
                r.beam
                    .as_ref()
                    .and_then(|b| b.current_function.clone())
                    .unwrap_or_default(),
            ),
        }
    }
}

/// A process's name and behaviour in `width` columns, keeping what tells
/// rows apart: the name whole before the behaviour, which is cut (marked
/// `…`) or left out; a name too long for the column is cut the same way.
fn name_cell(r: &ProcessRow, width: usize) -> String {
    let len = |s: &str| s.chars().count();
    let cut = |s: &str, room: usize| -> String {
        let mut c: String = s.chars().take(room.saturating_sub(1)).collect();
        c.push('…');
        c
    };
    let both = format::process_name(r);
    if len(&both) <= width {
        return both;
    }
    let first = r.name.clone().unwrap_or_else(|| r.behaviour.clone());
    match width.checked_sub(len(&first)) {
        // Room for at least a few letters of the behaviour after the name.
        Some(left) if r.name.is_some() && left >= 2 + 5 => {
            format!("{first}  {}", cut(&r.behaviour, left - 2))
        }
        Some(_) => first,
        None => cut(&first, width),
    }
}

/// The columns that fit in `width`, the sorted one always among them;
/// a BEAM cluster's set when `beam`.
fn columns(width: u16, sort: SortKey, beam: bool, fit: Fit) -> Vec<Col> {
    let (always, optional, order): (&[Col], &[Col], &[Col]) = if beam {
        (&ALWAYS_BEAM, &OPTIONAL_BEAM, &ORDER_BEAM)
    } else {
        (&ALWAYS, &OPTIONAL, &ORDER)
    };
    let used = |cols: &[Col]| cols.iter().map(|c| c.len(fit) + 1).sum::<u16>();
    let mut shown: Vec<Col> = always.to_vec();
    if let Some(sorted) = optional.iter().find(|c| c.sorted_by(sort)) {
        shown.push(*sorted);
    }
    for &c in optional {
        if !shown.contains(&c) && used(&shown) + c.len(fit) < width {
            shown.push(c);
        }
    }
    order
        .iter()
        .copied()
        .filter(|c| shown.contains(c))
        .collect()
}

pub(crate) fn render(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let title = format!(
        " Processes ── sort: {} {} ── filter: {} ── {} ── {} ",
        sort_label(state.processes.sort, state.is_beam()),
        if state.processes.descending {
            "▼"
        } else {
            "▲"
        },
        match state.filter.to_query() {
            q if q.is_empty() => "none".to_owned(),
            q => q,
        },
        state
            .node_scope()
            .map_or("all nodes".to_owned(), |n| format!("node {n}")),
        if state.filter.system {
            "system shown"
        } else {
            "system hidden"
        },
    );
    // Said first: at any width, which nodes list only their top rows.
    let title = match top_only(state) {
        Some(note) => title.replacen(" Processes ", &format!(" Processes ── {note} "), 1),
        None => title,
    };
    let Some(page) = &state.processes.page else {
        frame.render_widget(waiting("processes").block(block(title)), area);
        return;
    };
    let beam = state.is_beam();
    let shown = state.processes.rows();
    let fit = Fit::of(&shown);
    let inner = area.width.saturating_sub(2);
    let cols = columns(inner, state.processes.sort, beam, fit);
    let widths: Vec<Constraint> = cols.iter().map(|c| c.width(fit)).collect();
    // What the name column gets, laid out as the table lays it out.
    let name_width = {
        let inner = Rect {
            width: inner,
            ..Rect::default()
        };
        let split = ratatui::layout::Layout::horizontal(widths.clone())
            .spacing(1)
            .split(inner);
        cols.iter()
            .position(|c| *c == Col::Name)
            .map_or(0, |i| split[i].width)
    };
    let header = Row::new(cols.iter().map(|c| c.header(beam)).collect::<Vec<_>>())
        .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = shown.into_iter().map(|r| {
        let style = if r.figures.warnings > 0 {
            Style::new().fg(Color::Yellow)
        } else if r.system {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        };
        Row::new(
            cols.iter()
                .map(|c| c.cell(r, name_width))
                .collect::<Vec<_>>(),
        )
        .style(style)
    });
    let shown_to = page.rows.len() as u64 + state.processes.offset;
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(block(title).title_bottom(format!(
            " {}–{} of {} ",
            (state.processes.offset + 1).min(shown_to),
            shown_to,
            format::count(page.total_matching)
        )));
    let mut ts = TableState::default().with_selected(Some(state.processes.selected));
    frame.render_stateful_widget(table, area, &mut ts);
}

/// For a BEAM cluster with nodes read in top mode (too many processes to
/// read whole): which, and how many of their processes are listed.
fn top_only(state: &State) -> Option<String> {
    let o = state.overview.as_ref()?;
    let parts: Vec<String> = o
        .nodes
        .iter()
        .filter_map(|n| {
            let b = n.beam.as_ref().filter(|b| !b.whole_table)?;
            Some(format!(
                "{}: top {} of {}",
                format::short_node(&n.name),
                format::count(b.rows),
                format::compact(n.processes)
            ))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}
