//! The cluster-wide log tail: follow or scroll back, by level, node and
//! text.

use super::block;
use crate::format;
use crate::state::State;
use clustertop_proto::{LogLevel, LogRecord};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Clear, Paragraph, Wrap};

fn color(level: LogLevel) -> Color {
    match level {
        LogLevel::Error => Color::Red,
        LogLevel::Warn => Color::Yellow,
        LogLevel::Info => Color::Green,
        LogLevel::Debug => Color::Blue,
        LogLevel::Trace => Color::DarkGray,
    }
}

pub(crate) fn render(frame: &mut Frame<'_>, area: Rect, state: &State) {
    if let Some(why) = &state.logs.unavailable {
        frame.render_widget(
            Paragraph::new(format!("No log tail: {}", format::printable(why)))
                .wrap(Wrap { trim: false })
                .block(block(" Logs ".into())),
            area,
        );
        return;
    }
    let records = state.visible_logs();
    let title = format!(
        " Logs ── {} ── level ≥ {} ── node: {} ── grep: {} ── {} dropped ",
        if state.paused {
            "paused"
        } else if state.logs.scroll > 0 {
            "scrolled"
        } else {
            "follow"
        },
        format::level(state.logs.level).to_lowercase(),
        state.node_scope().unwrap_or_else(|| "all".to_owned()),
        state.filter.name.as_deref().unwrap_or("none"),
        state.logs.dropped
    );
    let height = area.height.saturating_sub(2) as usize;
    let end = records.len().saturating_sub(state.logs.scroll);
    let start = end.saturating_sub(height);
    let cursor = end.checked_sub(1);
    let lines: Vec<Line<'_>> = records[start..end]
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let at_cursor = Some(start + i) == cursor;
            Line::from(vec![
                Span::raw(format!("{} ", format::clock(r.at_unix_us))),
                Span::styled(
                    format!("{:<5}", format::level(r.level)),
                    Style::new().fg(color(r.level)),
                ),
                Span::raw(format!(" {}", format::log_rest(r))),
            ])
            .style(if at_cursor && state.logs.scroll > 0 {
                Style::new().add_modifier(Modifier::REVERSED)
            } else {
                Style::new()
            })
        })
        .collect();
    frame.render_widget(
        Paragraph::new(lines)
            .block(block(title).title_bottom(" Enter: the bottom record in full  j/k: scroll ")),
        area,
    );
    if let Some(r) = &state.logs.open {
        record(frame, area, r);
    }
}

/// One record in full, over the view: every field on its line, long text
/// wrapped, nothing cut.
fn record(frame: &mut Frame<'_>, area: Rect, r: &LogRecord) {
    let width = area.width.saturating_sub(4).max(20);
    let inner = usize::from(width.saturating_sub(2));
    let bold = |s: &str| Span::styled(s.to_owned(), Style::new().add_modifier(Modifier::BOLD));
    let mut lines = vec![
        Line::from(vec![
            Span::raw(format!("{} ", format::clock(r.at_unix_us))),
            Span::styled(format::level(r.level), Style::new().fg(color(r.level))),
            Span::raw(format!(
                "  {}  {}  {}",
                format::printable(&r.node),
                r.pid
                    .as_ref()
                    .map(format::pid)
                    .unwrap_or_else(|| "-".into()),
                format::printable(r.process.as_deref().unwrap_or("-"))
            )),
        ]),
        Line::from(vec![
            bold("target "),
            Span::raw(format::printable(&r.target).into_owned()),
        ]),
    ];
    if let Some(t) = &r.trace_id {
        lines.push(Line::from(vec![bold("trace "), Span::raw(t.clone())]));
    }
    let message = format::screen_pids(&r.message, &r.node);
    for part in super::wrap(&format::printable(&message), inner) {
        lines.push(Line::from(part));
    }
    for (k, v) in &r.fields {
        let value = format::screen_pids(v, &r.node);
        let text = format!("{k} = {}", format::printable(&value));
        for (i, part) in super::wrap(&text, inner).into_iter().enumerate() {
            lines.push(Line::from(if i == 0 {
                part
            } else {
                format!("    {part}")
            }));
        }
    }
    let height = (lines.len() as u16 + 2).min(area.height);
    let popup = Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    };
    frame.render_widget(Clear, popup);
    frame.render_widget(
        Paragraph::new(lines).block(block(" Log record — Esc or Enter closes ".into())),
        popup,
    );
}
