//! Nodes: one row per node with its health and load; below, where each
//! node exports its telemetry (Prometheus endpoint, OTLP collector).

use super::{block, waiting};
use crate::format;
use crate::state::State;
use clustertop_proto::{BeamNode, ClusterOverview, NodeStatus, NodeSummary};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row, Table, TableState};

pub(crate) fn render(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let Some(o) = &state.overview else {
        frame.render_widget(waiting("the cluster").block(block(" Nodes ".into())), area);
        return;
    };
    if state.is_beam() {
        return render_beam(frame, area, state, o);
    }
    let header = Row::new(vec![
        "",
        "NODE",
        "STATUS",
        "UPTIME",
        "PROCS",
        "IN MSG/S",
        "OUT MSG/S",
        "RSS",
        "CPU/ALL",
        "RTT",
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = o.nodes.iter().map(|n| {
        let rate = state.rates.nodes.get(&n.name);
        let rtt = o
            .links
            .iter()
            .find(|l| l.peer == n.name)
            .and_then(|l| l.heartbeat_rtt_us)
            .map(format::micros);
        let (mark, status, style) = status_cells(n);
        let up = n.status == NodeStatus::Up;
        let dash = |s: String| if up { s } else { "–".to_owned() };
        Row::new(vec![
            Cell::from(mark),
            Cell::from(n.name.clone()),
            Cell::from(status),
            Cell::from(dash(format::duration_ms(n.uptime_ms))),
            Cell::from(dash(format::count(n.processes))),
            Cell::from(dash(rate.map_or("…".into(), |r| format::rate(r.in_per_s)))),
            Cell::from(dash(rate.map_or("…".into(), |r| format::rate(r.out_per_s)))),
            Cell::from(dash(format::bytes(n.rss_bytes))),
            Cell::from(dash(
                rate.map_or("…".into(), |r| format!("{:.0}%", r.cpu_pct)),
            )),
            Cell::from(if n.name == o.entry {
                "entry".to_owned()
            } else {
                dash(rtt.unwrap_or_else(|| "–".into()))
            }),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(1),
        Constraint::Min(12),
        Constraint::Length(10),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(8),
        Constraint::Length(9),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Length(8),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(block(format!(" Nodes ({}) ", o.nodes.len())));
    let exports = endpoint_lines(state);
    let [top, bottom] = Layout::vertical([
        Constraint::Min(4),
        Constraint::Length(exports.len() as u16 + 2),
    ])
    .areas(area);
    let mut selected = TableState::default().with_selected(Some(state.node_selected));
    frame.render_stateful_widget(table, top, &mut selected);
    frame.render_widget(
        Paragraph::new(exports).block(block(" Telemetry endpoints ".into())),
        bottom,
    );
}

/// One line per node and endpoint (`a@host  prometheus http://…/metrics`),
/// then the notes (where `demo --stack`'s programs are).
fn endpoint_lines(state: &State) -> Vec<Line<'static>> {
    let text = |s: &str| Line::from(format::printable(s).into_owned());
    let mut lines: Vec<Line<'static>> = match (&state.telemetry.unavailable, &state.telemetry.last)
    {
        (Some(why), _) => vec![text(why)],
        (None, None) => vec![Line::from("waiting for the nodes' telemetry…")],
        (None, Some(t)) => {
            let mut lines = Vec::new();
            for n in &t.nodes {
                let name = format::printable(&n.node).into_owned();
                if n.endpoints.is_empty() {
                    lines.push(Line::from(format!(
                        "{name:<16} none (no Prometheus endpoint, no OTLP)"
                    )));
                }
                for e in &n.endpoints {
                    lines.push(Line::from(format!(
                        "{name:<16} {:<12} {}",
                        format::endpoint_kind(e.kind),
                        format::printable(&e.url)
                    )));
                }
            }
            for m in &t.missing {
                lines.push(Line::from(format!(
                    "{:<16} did not answer",
                    format::printable(m)
                )));
            }
            lines
        }
    };
    lines.extend(state.notes.iter().map(|n| text(n)));
    lines
}

/// The mark, status text and style of a node's row.
fn status_cells(n: &NodeSummary) -> (&'static str, String, Style) {
    match &n.status {
        NodeStatus::Up => ("", "up".to_owned(), Style::new()),
        NodeStatus::Slow => ("⚠", "slow".to_owned(), Style::new().fg(Color::Yellow)),
        NodeStatus::Down { last_seen_unix_ms } => {
            let since = last_seen_unix_ms
                .map(|t| format::duration_ms(n.sampled_at_unix_ms.saturating_sub(t)))
                .unwrap_or_default();
            ("✖", format!("down {since}"), Style::new().fg(Color::Red))
        }
    }
}

/// A BEAM node's column: header, width, cell.
type BeamCol = (&'static str, u16, fn(&NodeSummary, &BeamNode) -> String);

/// A BEAM node's columns after the name and status: the first six at
/// every width, the memory by type and the ports as they fit.
const BEAM_COLS: [BeamCol; 11] = [
    ("OTP", 4, |_, b| {
        format::printable(&b.otp_release).into_owned()
    }),
    ("UPTIME", 7, |n, _| format::duration_ms(n.uptime_ms)),
    ("PROCS", 11, |n, b| {
        format!(
            "{}/{}",
            format::count(n.processes),
            format::compact(b.process_limit)
        )
    }),
    ("RUNQ", 5, |_, b| format::count(b.run_queue)),
    ("REDS/S", 7, |_, b| format::rate(b.reductions_per_s as f64)),
    ("MEMORY", 8, |_, b| format::bytes(b.memory.total)),
    ("PROC MEM", 8, |_, b| format::bytes(b.memory.processes)),
    ("BINARY", 8, |_, b| format::bytes(b.memory.binary)),
    ("ETS", 8, |_, b| format::bytes(b.memory.ets)),
    ("ATOM", 8, |_, b| format::bytes(b.memory.atom)),
    ("PORTS", 9, |_, b| {
        format!(
            "{}/{}",
            format::count(b.ports),
            format::compact(b.port_limit)
        )
    }),
];

/// A BEAM cluster's nodes: what the BEAM reports of itself (release,
/// process count against the limit, run queue, reductions, memory by
/// type, ports, busy distribution links).
fn render_beam(frame: &mut Frame<'_>, area: Rect, state: &State, o: &ClusterOverview) {
    // Mark, the names (10 to 40 wide) and status, then the columns that
    // fit.
    let name_w = o
        .nodes
        .iter()
        .map(|n| n.name.chars().count() as u16)
        .max()
        .unwrap_or(10)
        .clamp(10, 40);
    let mut used = 1 + 1 + name_w + 1 + 10 + 1;
    let cols: Vec<&BeamCol> = BEAM_COLS
        .iter()
        .enumerate()
        .take_while(|(i, c)| {
            used += c.1 + 1;
            *i < 6 || used <= area.width.saturating_sub(2)
        })
        .map(|(_, c)| c)
        .collect();
    let mut header = vec!["", "NODE", "STATUS"];
    header.extend(cols.iter().map(|c| c.0));
    let header = Row::new(header).style(Style::new().add_modifier(Modifier::BOLD));
    let rows = o.nodes.iter().map(|n| {
        let (mark, status, style) = status_cells(n);
        let mut cells = vec![
            Cell::from(mark),
            Cell::from(n.name.clone()),
            Cell::from(status),
        ];
        cells.extend(cols.iter().map(|c| match &n.beam {
            Some(b) => Cell::from((c.2)(n, b)),
            None => Cell::from("–"),
        }));
        Row::new(cells).style(style)
    });
    let mut widths = vec![
        Constraint::Length(1),
        Constraint::Min(name_w),
        Constraint::Length(10),
    ];
    widths.extend(cols.iter().map(|c| Constraint::Length(c.1)));
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(block(format!(" Nodes ({}) — BEAM ", o.nodes.len())));
    let busy: Vec<String> = o
        .nodes
        .iter()
        .filter_map(|n| n.beam.as_ref().map(|b| (n, b)))
        .filter(|(_, b)| !b.dist_busy.is_empty())
        .map(|(n, b)| {
            format!(
                "{}: distribution busy towards {}",
                format::short_node(&n.name),
                b.dist_busy.join(", ")
            )
        })
        .collect();
    let mut notes: Vec<Line<'static>> = vec![Line::from(
        "Read through the nodes' built-in functions, as a hidden node: no code loaded, no \
         process left behind.",
    )];
    notes.extend(busy.into_iter().map(Line::from));
    notes.extend(
        state
            .notes
            .iter()
            .map(|n| Line::from(format::printable(n).into_owned())),
    );
    let [top, bottom] = Layout::vertical([
        Constraint::Min(4),
        Constraint::Length(notes.len() as u16 + 2),
    ])
    .areas(area);
    let mut selected = TableState::default().with_selected(Some(state.node_selected));
    frame.render_stateful_widget(table, top, &mut selected);
    frame.render_widget(Paragraph::new(notes).block(block(" BEAM ".into())), bottom);
}
