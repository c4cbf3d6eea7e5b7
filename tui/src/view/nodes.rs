//! Nodes: one row per node with its health and load; below, where each
//! node exports its telemetry (Prometheus endpoint, OTLP collector).

use super::{block, waiting};
use crate::format;
use crate::state::State;
use clustertop_proto::NodeStatus;
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
        let (mark, status, style) = match &n.status {
            NodeStatus::Up => ("", "up".to_owned(), Style::new()),
            NodeStatus::Slow => ("⚠", "slow".to_owned(), Style::new().fg(Color::Yellow)),
            NodeStatus::Down { last_seen_unix_ms } => {
                let since = last_seen_unix_ms
                    .map(|t| format::duration_ms(n.sampled_at_unix_ms.saturating_sub(t)))
                    .unwrap_or_default();
                ("✖", format!("down {since}"), Style::new().fg(Color::Red))
            }
        };
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
