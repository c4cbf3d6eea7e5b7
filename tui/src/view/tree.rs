//! The supervision tree of one node, with expand and collapse.

use super::{block, waiting};
use crate::format;
use crate::state::State;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{List, ListItem, ListState};

pub(crate) fn render(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let node = state.tree_node().unwrap_or_default();
    let title = format!(" Supervision tree of {node} — n next node, Enter expand/collapse ");
    let Some(tree) = &state.tree.data else {
        frame.render_widget(waiting("the tree").block(block(title)), area);
        return;
    };
    let rows = state.tree.rows();
    if rows.is_empty() {
        frame.render_widget(
            ratatui::widgets::Paragraph::new("no processes on this node").block(block(title)),
            area,
        );
        return;
    }
    let now = state
        .overview
        .as_ref()
        .and_then(|o| o.nodes.first())
        .map_or(0, |n| n.sampled_at_unix_ms);
    let supervised = state.tree.rows_supervised();
    let mut items: Vec<ListItem<'static>> = Vec::with_capacity(rows.len() + 1);
    for (i, (depth, n)) in rows.iter().enumerate() {
        if i == supervised {
            items.push(
                ListItem::new(format!(
                    "not supervised: {} process{}{}",
                    format::count(tree.unsupervised_total),
                    if tree.unsupervised_total == 1 {
                        ""
                    } else {
                        "es"
                    },
                    if tree.unsupervised_total > tree.unsupervised.len() as u64 {
                        format!(" (the first {} by serial)", tree.unsupervised.len())
                    } else {
                        String::new()
                    }
                ))
                .style(Style::new().add_modifier(Modifier::BOLD)),
            );
        }
        let collapsed = state
            .tree
            .collapsed
            .contains(&(tree.node.clone(), n.pid.serial));
        let marker = match (n.children.is_empty(), collapsed) {
            (true, _) => "  ",
            (false, true) => "▸ ",
            (false, false) => "▾ ",
        };
        // The name when it has one (a child's id in its supervisor
        // otherwise), then the behaviour.
        let name = n.name.as_deref().or(n.child_id.as_deref());
        let mut spans = vec![Span::raw(format!(
            "{}{marker}{} {}{}",
            "  ".repeat(*depth),
            format::pid(&n.pid),
            name.map(|n| format!("{}  ", format::printable(n)))
                .unwrap_or_default(),
            n.behaviour,
        ))];
        if let Some(strategy) = &n.strategy {
            spans.push(Span::raw(format!("  {strategy}")));
        }
        if let Some(r) = &n.restarts {
            let near = r.max > 0 && r.recent * 3 >= r.max * 2;
            spans.push(Span::styled(
                format!(
                    "  restarts {}/{} in {}, {} since start",
                    r.recent,
                    r.max,
                    format::duration_ms(r.period_ms),
                    format::count(r.total)
                ),
                if near {
                    Style::new().fg(Color::Red)
                } else {
                    Style::new()
                },
            ));
        }
        if let Some(e) = &n.last_exit {
            spans.push(Span::styled(
                format!(
                    "  last exit {} ago: {}",
                    format::duration_ms(now.saturating_sub(e.at_unix_ms)),
                    format::printable(&e.reason)
                ),
                Style::new().fg(if e.crashed {
                    Color::Red
                } else {
                    Color::DarkGray
                }),
            ));
        }
        if collapsed {
            spans.push(Span::raw(match n.children.len() {
                1 => "  (1 child)".to_owned(),
                k => format!("  ({k} children)"),
            }));
        }
        let style = if n.supervisor {
            Style::new().fg(Color::Cyan)
        } else {
            Style::new()
        };
        items.push(ListItem::new(Line::from(spans)).style(style));
    }
    let list = List::new(items)
        .block(block(title))
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    // The header line before the processes outside the trees is not a row.
    let selected = state.tree.selected + usize::from(state.tree.selected >= supervised);
    let mut ls = ListState::default().with_selected(Some(selected));
    frame.render_stateful_widget(list, area, &mut ls);
}
