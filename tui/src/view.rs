//! Drawing: one file per screen, each `render(frame, area, &State)`. This
//! module lays the screen out: header, tabs, the current view, the
//! warnings bar (always there), and the key line (or the filter being
//! typed), with the help and the process detail drawn over the view.

mod detail;
mod logs;
mod metrics;
mod nodes;
mod processes;
mod registry;
mod tree;
mod warnings;

use crate::format;
use crate::keymap::{self, KEYMAP};
use crate::state::{Help, State, Tab};
use clustertop_proto::NodeStatus;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph};

/// Rows of the process table for a terminal `height` lines tall (header,
/// tabs, borders, column titles, warnings bar and key line taken away).
pub(crate) fn process_rows(height: u16) -> u32 {
    u32::from(height.saturating_sub(7)).max(1)
}

/// Draws the whole screen.
pub(crate) fn render(frame: &mut Frame<'_>, state: &State) {
    let status = status_lines(state, frame.area().width);
    let [header, status_area, tabs, body, bar, keys] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(status.len() as u16),
        Constraint::Length(1),
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    frame.render_widget(header_line(state), header);
    frame.render_widget(Paragraph::new(status), status_area);
    frame.render_widget(tab_line(state, frame.area().width), tabs);
    if state.detail.is_open() {
        detail::render(frame, body, state);
    } else {
        match state.tab {
            Tab::Nodes => nodes::render(frame, body, state),
            Tab::Processes => processes::render(frame, body, state),
            Tab::Tree => tree::render(frame, body, state),
            Tab::Metrics => metrics::render(frame, body, state),
            Tab::Logs => logs::render(frame, body, state),
            Tab::Warnings => warnings::render(frame, body, state),
            Tab::Registry => registry::render(frame, body, state),
        }
    }
    if !state.connected && state.overview.is_some() {
        // No node answers: what is on screen is the last we heard.
        frame
            .buffer_mut()
            .set_style(body, Style::new().add_modifier(Modifier::DIM));
    }
    frame.render_widget(warnings::bar(state), bar);
    frame.render_widget(key_line(state), keys);
    if let Help::Page(page) = state.help {
        help(frame, body, page);
    }
}

fn header_line(state: &State) -> Line<'static> {
    let mut spans = vec![
        Span::styled(" clustertop ", Style::new().add_modifier(Modifier::BOLD)),
        Span::raw(" ? help "),
        Span::raw(format!(" {} ", state.entry)),
    ];
    if let Some(from) = &state.fell_over_from {
        spans.push(Span::styled(
            format!("(fell over from {from}) "),
            Style::new().fg(Color::Yellow),
        ));
    }
    match &state.overview {
        Some(o) => {
            let down = o
                .nodes
                .iter()
                .filter(|n| !matches!(n.status, NodeStatus::Up))
                .count();
            let procs: u64 = o.nodes.iter().map(|n| n.processes).sum();
            let nodes = if down > 0 {
                Span::styled(
                    format!(" {} nodes ({down} down) ", o.nodes.len()),
                    Style::new().fg(Color::Red),
                )
            } else {
                Span::raw(format!(" {} nodes ", o.nodes.len()))
            };
            spans.push(nodes);
            spans.push(Span::raw(format!(" {} procs ", format::count(procs))));
            if state.is_beam() {
                // A BEAM node counts reductions, not messages.
                let reds: u64 = o
                    .nodes
                    .iter()
                    .filter_map(|n| n.beam.as_ref())
                    .map(|b| b.reductions_per_s)
                    .sum();
                spans.push(Span::raw(format!(" {} reds/s ", format::rate(reds as f64))));
            } else if let Some(rate) = state.rates.cluster.last() {
                spans.push(Span::raw(format!(" {} msg/s ", format::rate(rate))));
            }
        }
        None => spans.push(Span::raw(" – ")),
    }
    spans.push(Span::raw(format!(
        " every {} ",
        format::duration_ms(state.interval_ms)
    )));
    if state.paused {
        spans.push(Span::styled(" PAUSED ", Style::new().fg(Color::Yellow)));
    }
    Line::from(spans)
}

/// The status under the header, whole: wrapped to the width rather than
/// cut. While no node answers it says how old the data on screen is.
fn status_lines(state: &State, width: u16) -> Vec<Line<'static>> {
    let mut text = match &state.status {
        Some(s) => format::printable(s).into_owned(),
        None => return Vec::new(),
    };
    if let Some(age) = state.stale_for_ms() {
        text = format!(
            "data from {} ago (dimmed); {text}",
            format::duration_ms(age)
        );
    }
    let style = Style::new().fg(if state.connected {
        Color::Yellow
    } else {
        Color::Red
    });
    wrap(&text, usize::from(width.saturating_sub(2)).max(10))
        .into_iter()
        .map(|l| Line::from(Span::styled(format!(" {l}"), style)))
        .collect()
}

/// The views, numbered: whole names when they fit in `width`, else the
/// other views' names cut to four letters, else their numbers only; the
/// view shown keeps its name.
fn tab_line(state: &State, width: u16) -> Line<'static> {
    [usize::MAX, 4]
        .into_iter()
        .map(|cut| tab_line_cut(state, cut))
        .find(|line| line.width() <= usize::from(width))
        .unwrap_or_else(|| tab_line_cut(state, 0))
}

fn tab_line_cut(state: &State, cut: usize) -> Line<'static> {
    let mut spans = vec![Span::raw(" ")];
    // The node picked with `n` narrows every view: say so first, on
    // every view, where no width cuts it off.
    if let Some(node) = state.node_scope() {
        spans.push(Span::styled(
            format!(" node {} ", format::short_node(&node)),
            Style::new().fg(Color::Black).bg(Color::Yellow),
        ));
        spans.push(Span::raw(" "));
    }
    for (i, tab) in Tab::ALL.iter().enumerate() {
        let text = match (cut, *tab == state.tab) {
            (_, true) | (usize::MAX, _) => format!("{} {}", i + 1, tab.title()),
            (0, false) => (i + 1).to_string(),
            (n, false) => format!(
                "{} {}",
                i + 1,
                tab.title().chars().take(n).collect::<String>()
            ),
        };
        if *tab == state.tab {
            spans.push(Span::styled(
                format!("[{text}]"),
                Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
            ));
        } else {
            spans.push(Span::raw(format!(" {text} ")));
        }
        if i + 1 < Tab::ALL.len() {
            spans.push(Span::raw(" "));
        }
    }
    Line::from(spans)
}

fn key_line(state: &State) -> Line<'static> {
    match (&state.filter_input, &state.filter_error) {
        (Some(input), error) => {
            let mut spans = vec![
                Span::styled(" filter: ", Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(format!("{input}▏")),
            ];
            if let Some(e) = error {
                spans.push(Span::styled(
                    format!("  ✖ {e}"),
                    Style::new().fg(Color::Red),
                ));
            } else {
                spans.push(Span::raw("  Enter apply  Esc cancel"));
            }
            Line::from(spans)
        }
        (None, _) => Line::from(format!(" {}", keymap::key_line())),
    }
}

/// The help: the keys, then what each column means, every entry wrapped
/// to the box (never cut at its border), in pages of the box's height;
/// `?` turns to the next page (`page`, modulo their count).
fn help(frame: &mut Frame<'_>, body: Rect, page: usize) {
    let width = body.width.min(100);
    let inner = usize::from(width.saturating_sub(2));
    let label = 11;
    let text = inner.saturating_sub(label).max(10);
    let entry = |name: &str, what: &str| -> Vec<Line<'static>> {
        wrap(what, text)
            .into_iter()
            .enumerate()
            .map(|(i, part)| {
                Line::from(vec![
                    Span::styled(
                        format!("{:<label$}", if i == 0 { name } else { "" }),
                        Style::new().add_modifier(Modifier::BOLD),
                    ),
                    Span::raw(part),
                ])
            })
            .collect()
    };
    let heading = |t: &str| {
        Line::from(Span::styled(
            t.to_owned(),
            Style::new().add_modifier(Modifier::REVERSED),
        ))
    };
    let mut lines = vec![heading("Keys")];
    lines.extend(KEYMAP.iter().flat_map(|b| entry(b.label, b.help)));
    lines.push(Line::from(""));
    lines.push(heading("Columns and figures"));
    lines.extend(COLUMNS.iter().flat_map(|(name, what)| entry(name, what)));
    let rows = usize::from(body.height.saturating_sub(2)).max(1);
    let pages = lines.len().div_ceil(rows);
    let page = page % pages;
    let shown: Vec<Line<'static>> = lines.into_iter().skip(page * rows).take(rows).collect();
    let height = body.height.min(shown.len() as u16 + 2);
    let area = Rect {
        x: body.x + (body.width - width) / 2,
        y: body.y + (body.height - height) / 2,
        width,
        height,
    };
    let title = if pages > 1 {
        format!(
            " Help {}/{pages} — ? next page, any other key closes ",
            page + 1
        )
    } else {
        " Help — any other key closes ".to_owned()
    };
    frame.render_widget(Clear, area);
    frame.render_widget(
        Paragraph::new(shown).block(Block::bordered().title(title)),
        area,
    );
}

/// What each figure means. Rates and shares are over the agents' last
/// sampling interval (1 s by default).
pub(crate) const COLUMNS: &[(&str, &str)] = &[
    ("⚠", "active warnings (the Warnings view says which)"),
    (
        "PID",
        "<node.serial>, the node's short name: every pid on screen, in logs and \
         messages too (BEAM: <node.N> for the node's own <0.N.0>); JSON has the \
         full <node@host.serial.creation>",
    ),
    (
        "–",
        "not known: a rate or share needs two samples of the process, so a \
         process first seen at the last sample has none yet",
    ),
    ("MAILBOX", "messages queued now"),
    ("GROWTH", "mailbox growth per second"),
    ("OLDEST", "age of the oldest queued message"),
    ("MSG/S", "messages handled per second"),
    (
        "UTIL",
        "time in handlers, awaits included (from taking a message until the mailbox \
         is empty): near 100% it cannot keep up",
    ),
    (
        "CPU",
        "time running on a scheduler thread (poll time), of one core",
    ),
    (
        "POLLS/S",
        "turns on a scheduler thread per second: work done, like reductions",
    ),
    (
        "MEMORY",
        "record, task state and queued messages (with their heap data where the \
         process declares its size); not the heap its state holds (BEAM: \
         process_info memory: heap, stack, queue and the process's own record)",
    ),
    (
        "REDS/S",
        "(BEAM) reductions per second: the BEAM's measure of work done",
    ),
    ("CURRENT", "(BEAM) the function the process is in now"),
    (
        "p50 / p99",
        "(Metrics) 10 s windows: behaviours' p50s averaged by count; worst p99",
    ),
    (
        "status",
        "(detail) idle (waiting for a message), running, or awaiting in a handler \
         (it took a message and is suspended before asking for the next: a call, \
         a timer); for a GenServer, for how long its callback has run",
    ),
    (
        "Busiest",
        "(Metrics) the behaviour and node that spent the most time handling \
         messages over the last 60 s, and its handling-time distribution",
    ),
    (
        "CPU/ALL",
        "(Nodes) share of all cores: 100% is every core busy",
    ),
];

/// `text` in lines of at most `width` characters, broken at spaces (and
/// inside a word longer than a line).
pub(crate) fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut out = Vec::new();
    let mut line = String::new();
    let pieces = text.split_whitespace().flat_map(|word| {
        let chars: Vec<char> = word.chars().collect();
        chars
            .chunks(width)
            .map(|c| c.iter().collect::<String>())
            .collect::<Vec<_>>()
    });
    for word in pieces {
        let word = word.as_str();
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            out.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push(line);
    }
    out
}

/// A bordered block titled with `title`.
pub(crate) fn block(title: String) -> Block<'static> {
    Block::bordered().title(title)
}

/// Column widths for a table of `rows` under `header`, in `width` columns
/// with cells one apart, by content: each column asks for its longest cell
/// (its header at least). When they do not fit, the columns past `keep`
/// are left out first, last first; then the columns in `shrink` give up
/// room in turn, each down to its header's width (or 4). Returns how many
/// columns are shown and their widths; the last one takes any room left.
pub(crate) fn fit_columns(
    header: &[&str],
    rows: &[Vec<String>],
    width: u16,
    keep: usize,
    shrink: &[usize],
) -> (usize, Vec<Constraint>) {
    let len = |s: &str| s.chars().count() as u16;
    let mut want: Vec<u16> = header
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| len(c))
                .max()
                .unwrap_or(0)
                .max(len(h))
        })
        .collect();
    let used = |want: &[u16], n: usize| want[..n].iter().sum::<u16>() + n.saturating_sub(1) as u16;
    let mut n = header.len();
    while n > keep.max(1) && used(&want, n) > width {
        n -= 1;
    }
    for &i in shrink.iter().filter(|i| **i < n) {
        let excess = used(&want, n).saturating_sub(width);
        if excess == 0 {
            break;
        }
        let floor = len(header[i]).max(4).min(want[i]);
        want[i] -= excess.min(want[i] - floor);
    }
    let mut widths: Vec<Constraint> = want[..n].iter().map(|w| Constraint::Length(*w)).collect();
    if let Some(last) = widths.last_mut() {
        *last = Constraint::Min(want[n - 1]);
    }
    (n, widths)
}

/// A paragraph saying there is nothing to show yet.
pub(crate) fn waiting(what: &str) -> Paragraph<'static> {
    Paragraph::new(format!("waiting for {what}…"))
}

#[cfg(test)]
mod tests;
