//! Processes: one table for the whole cluster, sorted and filtered.

use super::{block, waiting};
use crate::format;
use crate::state::{State, sort_name};
use ratatui::Frame;
use ratatui::layout::{Alignment, Constraint, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::Text;
use ratatui::widgets::{Cell, Row, Table, TableState};

fn right(s: String) -> Cell<'static> {
    Cell::from(Text::from(s).alignment(Alignment::Right))
}

pub(crate) fn render(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let title = format!(
        " Processes ── sort: {} {} ── filter: {} ── {} ── {} ",
        sort_name(state.sort),
        if state.descending { "▼" } else { "▲" },
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
    let Some(page) = &state.processes else {
        frame.render_widget(waiting("processes").block(block(title)), area);
        return;
    };
    let header = Row::new(vec![
        Cell::from("⚠"),
        Cell::from("PID"),
        Cell::from("NODE"),
        Cell::from("NAME / BEHAVIOUR"),
        right("MAILBOX".into()),
        right("GROWTH".into()),
        right("OLDEST".into()),
        right("MSG/S".into()),
        right("BUSY".into()),
    ])
    .style(Style::new().add_modifier(Modifier::BOLD));
    let rows = state.visible_rows().into_iter().map(|r| {
        let style = if r.warnings > 0 {
            Style::new().fg(Color::Yellow)
        } else if r.system {
            Style::new().fg(Color::DarkGray)
        } else {
            Style::new()
        };
        Row::new(vec![
            Cell::from(if r.warnings > 0 { "▲" } else { "" }),
            Cell::from(format::pid(&r.pid)),
            Cell::from(format::short_node(&r.pid.node).to_owned()),
            Cell::from(format::process_name(r)),
            right(format::count(r.mailbox_len)),
            right(format::growth(r.mailbox_growth_per_s)),
            right(
                r.oldest_message_age_us
                    .map_or("–".to_owned(), |us| format::duration_ms(us / 1000)),
            ),
            right(format::rate(r.handled_per_s as f64)),
            right(format::permille(r.busy_permille)),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(1),
        Constraint::Length(12),
        Constraint::Length(8),
        Constraint::Min(16),
        Constraint::Length(9),
        Constraint::Length(10),
        Constraint::Length(7),
        Constraint::Length(7),
        Constraint::Length(5),
    ];
    let shown_to = page.rows.len() as u64 + state.offset;
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(block(title).title_bottom(format!(
            " {}–{} of {} ",
            (state.offset + 1).min(shown_to),
            shown_to,
            format::count(page.total_matching)
        )));
    let mut ts = TableState::default().with_selected(Some(state.selected));
    frame.render_stateful_widget(table, area, &mut ts);
}
