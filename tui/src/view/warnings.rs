//! Warnings: the full list, and the one-line bar that is always shown.

use super::block;
use crate::format;
use crate::state::State;
use clustertop_proto::{Warning, WarningKind};
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

/// How severe a warning is, most severe first: a node down, then a
/// restart storm, then the rest.
fn severity(kind: &WarningKind) -> u8 {
    match kind {
        WarningKind::NodeDown => 0,
        WarningKind::RestartStorm { .. } => 1,
        _ => 2,
    }
}

/// The warnings bar: one entry per process (or node) warned about, with
/// every reason it is warned for, most severe first, as many as fit.
pub(crate) fn bar(state: &State) -> Line<'static> {
    let Some(o) = &state.overview else {
        return Line::from("");
    };
    if o.warnings.is_empty() {
        return Line::from(Span::styled(" no warnings", Style::new().fg(Color::Green)));
    }
    // Grouped by subject, in the order each subject first appears.
    let mut groups: Vec<(String, Vec<&Warning>)> = Vec::new();
    for w in &o.warnings {
        let subject = format::warning_subject(w);
        match groups.iter_mut().find(|(s, _)| *s == subject) {
            Some((_, ws)) => ws.push(w),
            None => groups.push((subject, vec![w])),
        }
    }
    for (_, ws) in &mut groups {
        ws.sort_by_key(|w| severity(&w.kind));
        // A saturated process's reason already says how its mailbox grows.
        if ws
            .iter()
            .any(|w| matches!(w.kind, WarningKind::Saturated { .. }))
        {
            ws.retain(|w| !matches!(w.kind, WarningKind::MailboxGrowing { .. }));
        }
    }
    groups.sort_by_key(|(_, ws)| severity(&ws[0].kind));
    let mut spans = vec![Span::raw(" ")];
    for (subject, ws) in groups {
        let (m, color) = mark(&ws[0].kind);
        let reasons: Vec<String> = ws.iter().map(|w| format::warning_reason(w)).collect();
        spans.push(Span::styled(
            format!("{m} {subject}: {}   ", reasons.join("; ")),
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
