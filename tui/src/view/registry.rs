//! Registry: the application layer across the cluster. PubSub topics
//! (subscribers per node, broadcasts and deliveries per second), Presence
//! topics (present processes and keys, per node), names with their
//! holders, and process groups with members per node.

use super::{block, waiting};
use crate::format;
use crate::state::State;
use clustertop_proto::NameScope;
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Cell, Paragraph, Row, Table, Wrap};

/// `a:2 b:1`, node names cut at the `@`.
fn per_node(counts: &[(String, u64)]) -> String {
    counts
        .iter()
        .map(|(node, n)| format!("{}:{n}", node.split('@').next().unwrap_or(node)))
        .collect::<Vec<_>>()
        .join(" ")
}

fn rate(r: Option<f64>) -> String {
    r.map_or("…".to_owned(), format::rate)
}

fn bold_row(cells: Vec<&'static str>) -> Row<'static> {
    Row::new(cells).style(Style::new().add_modifier(Modifier::BOLD))
}

pub(crate) fn render(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let reg = &state.registry;
    if let Some(why) = &reg.unavailable {
        let text = Paragraph::new(why.clone()).wrap(Wrap { trim: true });
        frame.render_widget(text.block(block(" Registry ".into())), area);
        return;
    }
    if reg.last.is_none() {
        frame.render_widget(
            waiting("the registries").block(block(" Registry ".into())),
            area,
        );
        return;
    }
    let [left, right] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(area);
    let [topics_area, presence_area] =
        Layout::vertical([Constraint::Fill(2), Constraint::Fill(1)]).areas(left);
    let [names_area, groups_area] =
        Layout::vertical([Constraint::Fill(2), Constraint::Fill(1)]).areas(right);

    // Narrow terminals leave out the instance columns.
    let wide = area.width >= 110;
    let keep = |mut cells: Vec<Cell<'static>>, n: usize| {
        if !wide {
            cells.truncate(n);
        }
        cells
    };
    let keep_w = |mut w: Vec<Constraint>, n: usize| {
        if !wide {
            w.truncate(n);
        }
        w
    };
    let keep_h = |mut h: Vec<&'static str>, n: usize| {
        if !wide {
            h.truncate(n);
        }
        bold_row(h)
    };
    let missing = reg.missing();
    let note = if missing.is_empty() {
        String::new()
    } else {
        format!(" — no answer from {}", missing.join(", "))
    };

    let topics = reg.topics();
    let rows = topics.iter().map(|t| {
        Row::new(keep(
            vec![
                Cell::from(t.topic.clone()),
                Cell::from(format::count(t.subscribers)),
                Cell::from(rate(t.published_per_s)),
                Cell::from(rate(t.delivered_per_s)),
                Cell::from(per_node(&t.per_node)),
                Cell::from(t.instance.clone()),
            ],
            5,
        ))
    });
    let widths = vec![
        Constraint::Min(12),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Min(8),
        Constraint::Length(12),
    ];
    let header = vec!["TOPIC", "SUBS", "PUB/S", "DELIV/S", "PER NODE", "PUBSUB"];
    let table = Table::new(rows, keep_w(widths, 5))
        .header(keep_h(header, 5))
        .block(block(format!(" PubSub topics ({}){note} ", topics.len())));
    frame.render_widget(table, topics_area);

    let presences = reg.presences();
    let rows = presences.iter().map(|p| {
        Row::new(keep(
            vec![
                Cell::from(p.topic.clone()),
                Cell::from(format::count(p.tracked)),
                Cell::from(format::count(p.keys)),
                Cell::from(per_node(&p.per_node)),
                Cell::from(p.instance.clone()),
            ],
            4,
        ))
    });
    let widths = vec![
        Constraint::Min(12),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Min(8),
        Constraint::Length(14),
    ];
    let header = vec!["TOPIC", "TRACKED", "KEYS", "PER NODE", "PRESENCE"];
    let table = Table::new(rows, keep_w(widths, 4))
        .header(keep_h(header, 4))
        .block(block(format!(" Presence ({}) ", presences.len())));
    frame.render_widget(table, presence_area);

    let names = reg.names(state.filter.system);
    let rows = names.iter().map(|n| {
        Row::new(keep(
            vec![
                Cell::from(n.name.clone()),
                Cell::from(match n.scope {
                    NameScope::Global => "global",
                    NameScope::Local => "local",
                }),
                Cell::from(format::pid(&n.pid)),
                Cell::from(n.behaviour.clone().unwrap_or_default()),
                Cell::from(n.pid.node.clone()),
            ],
            3,
        ))
    });
    let table = Table::new(
        rows,
        keep_w(
            vec![
                Constraint::Min(10),
                Constraint::Length(6),
                Constraint::Length(12),
                Constraint::Min(8),
                Constraint::Min(10),
            ],
            3,
        ),
    )
    .header(keep_h(vec!["NAME", "SCOPE", "PID", "BEHAVIOUR", "NODE"], 3))
    .block(block(format!(" Names ({}) ", names.len())));
    frame.render_widget(table, names_area);

    let groups = reg.groups();
    let rows = groups.iter().map(|g| {
        Row::new(vec![
            Cell::from(g.group.clone()),
            Cell::from(format::count(g.members)),
            Cell::from(per_node(&g.per_node)),
        ])
    });
    let table = Table::new(
        rows,
        [
            Constraint::Min(12),
            Constraint::Length(7),
            Constraint::Min(10),
        ],
    )
    .header(bold_row(vec!["GROUP", "MEMBERS", "PER NODE"]))
    .block(block(format!(" Groups ({}) ", groups.len())));
    frame.render_widget(table, groups_area);
}
