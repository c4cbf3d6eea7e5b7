//! Registry: the application layer across the cluster. PubSub topics
//! (subscribers per node, broadcasts and deliveries per second), Presence
//! topics (present processes and keys, per node), names with their
//! holders, and process groups with members per node.

use super::{block, waiting};
use crate::format;
use crate::state::State;
use crate::state::registry::RegistryState;
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
    let cols = Columns {
        wide: area.width >= 110,
    };
    frame.render_widget(topics(reg, cols), topics_area);
    frame.render_widget(presence(reg, cols), presence_area);
    frame.render_widget(names(reg, cols, state.filter.system), names_area);
    frame.render_widget(groups(reg), groups_area);
}

/// Which columns a table keeps: all when the terminal is wide, else its
/// first ones.
#[derive(Debug, Clone, Copy)]
struct Columns {
    wide: bool,
}

impl Columns {
    fn keep<T>(self, mut items: Vec<T>, n: usize) -> Vec<T> {
        if !self.wide {
            items.truncate(n);
        }
        items
    }

    fn header(self, titles: Vec<&'static str>, n: usize) -> Row<'static> {
        bold_row(self.keep(titles, n))
    }
}

/// PubSub topics: subscribers, broadcasts and deliveries per second.
fn topics(reg: &RegistryState, cols: Columns) -> Table<'static> {
    let missing = reg.missing();
    let note = if missing.is_empty() {
        String::new()
    } else {
        format!(" — no answer from {}", missing.join(", "))
    };
    let topics = reg.topics();
    let rows: Vec<Row<'static>> = topics
        .iter()
        .map(|t| {
            Row::new(cols.keep(
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
        })
        .collect();
    let widths = vec![
        Constraint::Min(12),
        Constraint::Length(5),
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Min(8),
        Constraint::Length(12),
    ];
    let header = vec!["TOPIC", "SUBS", "PUB/S", "DELIV/S", "PER NODE", "PUBSUB"];
    Table::new(rows, cols.keep(widths, 5))
        .header(cols.header(header, 5))
        .block(block(format!(" PubSub topics ({}){note} ", topics.len())))
}

/// Presence topics: processes and keys tracked, per node.
fn presence(reg: &RegistryState, cols: Columns) -> Table<'static> {
    let presences = reg.presences();
    let rows: Vec<Row<'static>> = presences
        .iter()
        .map(|p| {
            Row::new(cols.keep(
                vec![
                    Cell::from(p.topic.clone()),
                    Cell::from(format::count(p.tracked)),
                    Cell::from(format::count(p.keys)),
                    Cell::from(per_node(&p.per_node)),
                    Cell::from(p.instance.clone()),
                ],
                4,
            ))
        })
        .collect();
    let widths = vec![
        Constraint::Min(12),
        Constraint::Length(7),
        Constraint::Length(5),
        Constraint::Min(8),
        Constraint::Length(14),
    ];
    let header = vec!["TOPIC", "TRACKED", "KEYS", "PER NODE", "PRESENCE"];
    Table::new(rows, cols.keep(widths, 4))
        .header(cols.header(header, 4))
        .block(block(format!(" Presence ({}) ", presences.len())))
}

/// Registered names, local and global, with their holders (system
/// processes' too when `system`).
fn names(reg: &RegistryState, cols: Columns, system: bool) -> Table<'static> {
    let names = reg.names(system);
    let rows: Vec<Row<'static>> = names
        .iter()
        .map(|n| {
            Row::new(cols.keep(
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
        })
        .collect();
    let widths = vec![
        Constraint::Min(10),
        Constraint::Length(6),
        Constraint::Length(12),
        Constraint::Min(8),
        Constraint::Min(10),
    ];
    let header = vec!["NAME", "SCOPE", "PID", "BEHAVIOUR", "NODE"];
    Table::new(rows, cols.keep(widths, 3))
        .header(cols.header(header, 3))
        .block(block(format!(" Names ({}) ", names.len())))
}

/// Process groups: members, per node.
fn groups(reg: &RegistryState) -> Table<'static> {
    let groups = reg.groups();
    let rows: Vec<Row<'static>> = groups
        .iter()
        .map(|g| {
            Row::new(vec![
                Cell::from(g.group.clone()),
                Cell::from(format::count(g.members)),
                Cell::from(per_node(&g.per_node)),
            ])
        })
        .collect();
    Table::new(
        rows,
        [
            Constraint::Min(12),
            Constraint::Length(7),
            Constraint::Min(10),
        ],
    )
    .header(bold_row(vec!["GROUP", "MEMBERS", "PER NODE"]))
    .block(block(format!(" Groups ({}) ", groups.len())))
}
