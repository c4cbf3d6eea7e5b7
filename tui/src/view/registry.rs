//! Registry: the application layer across the cluster. PubSub topics
//! (subscribers per node, broadcasts and deliveries per second), Presence
//! topics (present processes and keys, per node), names with their
//! holders, and process groups with members per node.

use super::{block, fit_columns, waiting};
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
    let inner = |r: Rect| r.width.saturating_sub(2);
    frame.render_widget(topics(reg, inner(topics_area)), topics_area);
    frame.render_widget(presence(reg, inner(presence_area)), presence_area);
    frame.render_widget(
        names(reg, inner(names_area), state.filter.system),
        names_area,
    );
    frame.render_widget(groups(reg, inner(groups_area)), groups_area);
}

/// A table of `rows` under `header` in `width` columns, its columns sized
/// by content (see [`fit_columns`]).
fn table(
    title: String,
    header: &[&'static str],
    rows: Vec<Vec<String>>,
    width: u16,
    keep: usize,
    shrink: &[usize],
) -> Table<'static> {
    let (n, widths) = fit_columns(header, &rows, width, keep, shrink);
    let rows = rows.into_iter().map(|mut r| {
        r.truncate(n);
        Row::new(r.into_iter().map(Cell::from).collect::<Vec<_>>())
    });
    Table::new(rows, widths)
        .header(bold_row(header[..n].to_vec()))
        .block(block(title))
}

/// PubSub topics: subscribers, broadcasts and deliveries per second.
fn topics(reg: &RegistryState, width: u16) -> Table<'static> {
    let missing = reg.missing();
    let note = if missing.is_empty() {
        String::new()
    } else {
        format!(" — no answer from {}", missing.join(", "))
    };
    let topics = reg.topics();
    let rows = topics
        .iter()
        .map(|t| {
            vec![
                format::printable(&t.topic).into_owned(),
                format::count(t.subscribers),
                rate(t.published_per_s),
                rate(t.delivered_per_s),
                per_node(&t.per_node),
                format::printable(&t.instance).into_owned(),
            ]
        })
        .collect();
    table(
        format!(" PubSub topics ({}){note} ", topics.len()),
        &["TOPIC", "SUBS", "PUB/S", "DELIV/S", "PER NODE", "PUBSUB"],
        rows,
        width,
        5,
        &[0],
    )
}

/// Presence topics: processes and keys tracked, per node.
fn presence(reg: &RegistryState, width: u16) -> Table<'static> {
    let presences = reg.presences();
    let rows = presences
        .iter()
        .map(|p| {
            vec![
                format::printable(&p.topic).into_owned(),
                format::count(p.tracked),
                format::count(p.keys),
                per_node(&p.per_node),
                format::printable(&p.instance).into_owned(),
            ]
        })
        .collect();
    table(
        format!(" Presence ({}) ", presences.len()),
        &["TOPIC", "TRACKED", "KEYS", "PER NODE", "PRESENCE"],
        rows,
        width,
        4,
        &[0],
    )
}

/// Registered names, local and global, with their holders (system
/// processes' too when `system`).
fn names(reg: &RegistryState, width: u16, system: bool) -> Table<'static> {
    let names = reg.names(system);
    let rows = names
        .iter()
        .map(|n| {
            vec![
                format::printable(&n.name).into_owned(),
                match n.scope {
                    NameScope::Global => "global",
                    NameScope::Local => "local",
                }
                .to_owned(),
                format::pid(&n.pid),
                format::printable(n.behaviour.as_deref().unwrap_or_default()).into_owned(),
                n.pid.node.clone(),
            ]
        })
        .collect();
    // Narrow: the name, scope and pid stay whole; the behaviour gives way.
    table(
        format!(" Names ({}) ", names.len()),
        &["NAME", "SCOPE", "PID", "BEHAVIOUR", "NODE"],
        rows,
        width,
        3,
        &[3, 0],
    )
}

/// Process groups: members, per node.
fn groups(reg: &RegistryState, width: u16) -> Table<'static> {
    let groups = reg.groups();
    let rows = groups
        .iter()
        .map(|g| {
            vec![
                format::printable(&g.group).into_owned(),
                format::count(g.members),
                per_node(&g.per_node),
            ]
        })
        .collect();
    table(
        format!(" Groups ({}) ", groups.len()),
        &["GROUP", "MEMBERS", "PER NODE"],
        rows,
        width,
        3,
        &[0],
    )
}
