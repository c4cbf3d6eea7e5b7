//! The supervision tree of one node, with expand and collapse.

use super::{block, waiting};
use crate::format;
use crate::state::State;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::widgets::{List, ListItem, ListState};

pub(crate) fn render(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let node = state.tree_node().unwrap_or_default();
    let title = format!(" Supervision tree of {node} — n next node, Enter expand/collapse ");
    let Some(tree) = &state.tree else {
        frame.render_widget(waiting("the tree").block(block(title)), area);
        return;
    };
    let rows = state.tree_rows();
    if rows.is_empty() {
        frame.render_widget(
            ratatui::widgets::Paragraph::new("no supervisors on this node").block(block(title)),
            area,
        );
        return;
    }
    let items = rows.iter().map(|(depth, n)| {
        let collapsed = state.collapsed.contains(&(tree.node.clone(), n.pid.serial));
        let marker = match (n.children.is_empty(), collapsed) {
            (true, _) => "  ",
            (false, true) => "▸ ",
            (false, false) => "▾ ",
        };
        let text = format!(
            "{}{marker}{} {}  {}{}",
            "  ".repeat(*depth),
            format::pid(&n.pid),
            n.name.as_deref().unwrap_or("-"),
            n.behaviour,
            if collapsed {
                format!("  ({} children)", n.children.len())
            } else {
                String::new()
            }
        );
        let style = if n.supervisor {
            Style::new().fg(Color::Cyan)
        } else {
            Style::new()
        };
        ListItem::new(text).style(style)
    });
    let list = List::new(items)
        .block(block(title))
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    let mut ls = ListState::default().with_selected(Some(state.tree_selected));
    frame.render_stateful_widget(list, area, &mut ls);
}
