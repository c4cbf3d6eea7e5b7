//! Warnings: the full list, and the one-line bar that is always shown.

use super::block;
use crate::format;
use crate::state::State;
use clustertop_proto::WarningKind;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState};

fn mark(kind: &WarningKind) -> (&'static str, Color) {
    match kind {
        WarningKind::NodeDown => ("✖", Color::Red),
        WarningKind::RestartStorm { .. } => ("↻", Color::Red),
        _ => ("▲", Color::Yellow),
    }
}

/// The warnings bar: as many warnings as fit, most severe first.
pub(crate) fn bar(state: &State) -> Line<'static> {
    let Some(o) = &state.overview else {
        return Line::from("");
    };
    if o.warnings.is_empty() {
        return Line::from(Span::styled(" no warnings", Style::new().fg(Color::Green)));
    }
    let mut ws: Vec<_> = o.warnings.iter().collect();
    ws.sort_by_key(|w| !matches!(w.kind, WarningKind::NodeDown));
    let mut spans = vec![Span::raw(" ")];
    for w in ws {
        let (m, color) = mark(&w.kind);
        spans.push(Span::styled(
            format!("{m} {}   ", format::warning(w)),
            Style::new().fg(color),
        ));
    }
    Line::from(spans)
}

pub(crate) fn render(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let warnings = state
        .overview
        .as_ref()
        .map(|o| o.warnings.as_slice())
        .unwrap_or_default();
    let now = state
        .overview
        .as_ref()
        .and_then(|o| o.nodes.first())
        .map_or(0, |n| n.sampled_at_unix_ms);
    let items = warnings.iter().map(|w| {
        let (m, color) = mark(&w.kind);
        ListItem::new(format!(
            "{m} {}   (for {})",
            format::warning(w),
            format::duration_ms(now.saturating_sub(w.since_unix_ms))
        ))
        .style(Style::new().fg(color))
    });
    let list = List::new(items)
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED))
        .block(
            block(format!(" Warnings ({}) ", warnings.len()))
                .title_bottom(" Enter: the process (or node) it is about "),
        );
    let mut selected = ListState::default()
        .with_selected((!warnings.is_empty()).then_some(state.warning_selected));
    frame.render_stateful_widget(list, area, &mut selected);
}
