//! The cluster-wide log tail: follow or scroll back, by level, node and
//! text.

use super::block;
use crate::format;
use crate::state::State;
use clustertop_proto::LogLevel;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

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
    let records = state.visible_logs();
    let title = format!(
        " Logs ── {} ── level ≥ {} ── node: {} ── grep: {} ── {} dropped ",
        if state.paused {
            "paused"
        } else if state.log_scroll > 0 {
            "scrolled"
        } else {
            "follow"
        },
        format::level(state.log_level).to_lowercase(),
        state.node_scope().unwrap_or_else(|| "all".to_owned()),
        state.filter.name.as_deref().unwrap_or("none"),
        state.logs_dropped
    );
    let height = area.height.saturating_sub(2) as usize;
    let end = records.len().saturating_sub(state.log_scroll);
    let start = end.saturating_sub(height);
    let lines: Vec<Line<'_>> = records[start..end]
        .iter()
        .map(|r| {
            let mut rest = format!(
                " {} {} {}  {}",
                r.node,
                r.pid
                    .as_ref()
                    .map(format::pid)
                    .unwrap_or_else(|| "-".into()),
                r.process.as_deref().unwrap_or("-"),
                r.message
            );
            for (k, v) in &r.fields {
                rest.push_str(&format!(" {k}={v}"));
            }
            Line::from(vec![
                Span::raw(format!("{} ", format::clock(r.at_unix_us))),
                Span::styled(
                    format!("{:<5}", format::level(r.level)),
                    Style::new().fg(color(r.level)),
                ),
                Span::raw(rest),
            ])
        })
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block(title)), area);
}
