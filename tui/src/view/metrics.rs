//! Metrics: cluster throughput, per-node throughput, handling-time p50 and
//! p99 over time, the latency histograms, and the `metrics` series and
//! telemetry events the nodes' own code records (narrowed by the filter's
//! `node=` and `name~` terms).

use super::{block, waiting};
use crate::format;
use crate::state::State;
use clustertop_proto::{Histogram, HistogramKey, MetricsSnapshot};
use ratatui::Frame;
use ratatui::layout::{Constraint, Direction, Layout, Rect};
use ratatui::style::Modifier;
use ratatui::style::{Color, Style};
use ratatui::symbols;
use ratatui::text::Line;
use ratatui::widgets::{
    Axis, Bar, BarChart, BarGroup, Cell, Chart, Dataset, GraphType, Paragraph, RenderDirection,
    Row, Sparkline, Table, Wrap,
};

pub(crate) fn render(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let [top, middle, bottom] = Layout::vertical([
        Constraint::Length(5),
        Constraint::Percentage(45),
        Constraint::Min(6),
    ])
    .areas(area);
    cluster_throughput(frame, top, state);
    let [per_node, latency] =
        Layout::horizontal([Constraint::Percentage(50), Constraint::Percentage(50)]).areas(middle);
    node_throughput(frame, per_node, state);
    latency_chart(frame, latency, state);
    let [bottom, series] =
        Layout::horizontal([Constraint::Percentage(40), Constraint::Percentage(60)]).areas(bottom);
    render_series(frame, series, state);
    histogram(frame, bottom, state);
}

/// Cluster throughput: the newest sample at the right edge.
fn cluster_throughput(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let shown = usize::from(area.width.saturating_sub(2));
    let cluster = state.rates.cluster.recent(shown);
    frame.render_widget(
        Sparkline::default()
            .block(block(format!(
                " Cluster msgs/s: {} (max {} over the last {} samples) ",
                state.rates.cluster.last().map_or("–".into(), format::rate),
                format::rate(state.rates.cluster.recent_max(shown)),
                cluster.len()
            )))
            .data(&cluster)
            .direction(RenderDirection::RightToLeft)
            .style(Style::new().fg(Color::Cyan)),
        area,
    );
}

/// Per-node throughput, one sparkline each.
fn node_throughput(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let mut names: Vec<&String> = state.rates.nodes.keys().collect();
    names.sort();
    let outer = block(" Per node msgs/s ".into());
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let rows = Layout::vertical(vec![Constraint::Length(2); names.len().max(1)]).split(inner);
    for (name, row) in names.iter().zip(rows.iter()) {
        let rate = &state.rates.nodes[*name];
        let [label, spark] =
            Layout::horizontal([Constraint::Length(24), Constraint::Min(4)]).areas(*row);
        frame.render_widget(
            Line::from(format!(
                "{} {}",
                format::short_node(name),
                format::rate(rate.in_per_s)
            )),
            label,
        );
        let data = rate.in_series.recent(usize::from(spark.width));
        frame.render_widget(
            Sparkline::default()
                .data(&data)
                .direction(RenderDirection::RightToLeft),
            spark,
        );
    }
}

/// Handling time p50 / p99 over time.
fn latency_chart(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let p50 = state.rates.p50.points();
    let p99 = state.rates.p99.points();
    let ymax = state.rates.p99.max().max(1.0);
    let xmax = (p99.len().max(2) - 1) as f64;
    let chart = Chart::new(vec![
        Dataset::default()
            .name("p50")
            .marker(symbols::Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Green))
            .data(&p50),
        Dataset::default()
            .name("p99")
            .marker(symbols::Marker::Braille)
            .graph_type(GraphType::Line)
            .style(Style::new().fg(Color::Red))
            .data(&p99),
    ])
    .block(block(
        " Handling p50 (weighted mean) / p99 (worst), 10 s ".into(),
    ))
    .x_axis(Axis::default().bounds([0.0, xmax]))
    .y_axis(Axis::default().bounds([0.0, ymax]).labels(vec![
        Line::from("0"),
        Line::from(format::micros(ymax as u64)),
    ]));
    frame.render_widget(chart, area);
}

/// The handling-time histogram of the behaviour that spent the most time
/// handling messages over the last minute, on any node: the busy one, not
/// the one that handled the most (a saturated server handles few, slowly).
/// Time is the sum over the distribution's buckets of count × upper bound,
/// the same overestimate for every candidate.
pub(crate) fn busiest(m: &MetricsSnapshot) -> Option<&Histogram> {
    let busy_us = |h: &Histogram| -> u128 {
        h.buckets
            .iter()
            .map(|(upper, n)| u128::from(*upper) * u128::from(*n))
            .sum()
    };
    m.histograms
        .iter()
        .filter(|h| matches!(h.key, HistogramKey::HandlingTime { .. }))
        .max_by_key(|h| (busy_us(h), h.last_60s.count))
}

/// The busiest behaviour's distribution over the last minute.
fn histogram(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let Some(h) = state.metrics.as_ref().and_then(busiest) else {
        frame.render_widget(
            ratatui::widgets::Paragraph::new("no handling times yet")
                .block(block(" Latency histogram ".into())),
            area,
        );
        return;
    };
    let (node, behaviour) = match &h.key {
        HistogramKey::HandlingTime { node, behaviour }
        | HistogramKey::QueueWait { node, behaviour }
        | HistogramKey::CallRtt { node, behaviour } => (node, behaviour),
    };
    // Which behaviour on which node first, so a narrow panel keeps them;
    // its figures on the bottom border.
    let outer = block(format!(" Busiest: {behaviour} on {node} ")).title_bottom(format!(
        " handling, 60 s: p50 {} p99 {} max {} ",
        format::micros(h.last_60s.p50_us),
        format::micros(h.last_60s.p99_us),
        format::micros(h.last_60s.max_us)
    ));
    let rows = usize::from(outer.inner(area).height).max(1);
    let bins = fit_bins(&h.buckets, rows);
    let total: u64 = bins.iter().map(|b| b.1).sum::<u64>().max(1);
    let bars: Vec<Bar<'_>> = bins
        .iter()
        .map(|(upper, n)| {
            Bar::default()
                .value(*n)
                .label(Line::from(format!("≤{:>7}", format::micros(*upper))))
                .text_value(format!("{} ({}%)", format::count(*n), n * 100 / total))
        })
        .collect();
    frame.render_widget(
        BarChart::default()
            .block(outer)
            .direction(Direction::Horizontal)
            .data(BarGroup::default().bars(&bars))
            .bar_width(1)
            .bar_gap(0),
        area,
    );
}

/// `bins` (ascending upper bounds and counts) in at most `rows` rows:
/// neighbours are merged in pairs until they fit, each merged row keeping
/// the upper bound of its last range.
pub(crate) fn fit_bins(bins: &[(u64, u64)], rows: usize) -> Vec<(u64, u64)> {
    let mut out = bins.to_vec();
    while out.len() > rows.max(1) {
        out = out
            .chunks(2)
            .map(|pair| (pair[pair.len() - 1].0, pair.iter().map(|b| b.1).sum()))
            .collect();
    }
    out
}

/// The nodes' own series and events, cluster-wide or of the picked node.
fn render_series(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let node = state.node_scope();
    let name = state.filter.name.as_deref();
    let scope = node.as_deref().map_or("cluster", format::short_node);
    let narrowed = name.map_or(String::new(), |n| format!(" name~{n}"));
    if let Some(why) = &state.telemetry.unavailable {
        frame.render_widget(
            Paragraph::new(format::printable(why))
                .wrap(Wrap { trim: true })
                .block(block(" Series ".into())),
            area,
        );
        return;
    }
    if state.telemetry.last.is_none() {
        frame.render_widget(waiting("the series").block(block(" Series ".into())), area);
        return;
    }
    let lines = state.telemetry.lines(node.as_deref(), name);
    let dropped = state.telemetry.dropped(node.as_deref());
    let title = format!(
        " Series ({scope}{narrowed}): {}{} ",
        lines.len(),
        if dropped > 0 {
            format!(", {dropped} not held")
        } else {
            String::new()
        }
    );
    let header = ["SERIES", "VALUE", "NODES"];
    let cells: Vec<Vec<String>> = lines
        .iter()
        .map(|l| {
            vec![
                format::printable(&l.name).into_owned(),
                l.value.clone(),
                l.nodes.to_string(),
            ]
        })
        .collect();
    let inner = area.width.saturating_sub(2);
    let (_, widths) = super::fit_columns(&header, &cells, inner, 3, &[0]);
    let series_width = match widths[0] {
        Constraint::Length(w) | Constraint::Min(w) => usize::from(w),
        _ => usize::from(inner),
    };
    let rows = cells.into_iter().map(|mut c| {
        c[0] = series_cell(&c[0], series_width);
        Row::new(c.into_iter().map(Cell::from).collect::<Vec<_>>())
    });
    frame.render_widget(
        Table::new(rows, widths)
            .header(Row::new(header.to_vec()).style(Style::new().add_modifier(Modifier::BOLD)))
            .block(block(title)),
        area,
    );
}

/// A series' name and labels in `width` columns, keeping what tells rows
/// apart: the labels go whole before the metric's name, which is cut in
/// the middle (`clustertop_c…_seconds{node="demo-1",behaviour="Store"}`).
pub(crate) fn series_cell(text: &str, width: usize) -> String {
    let len = |s: &str| s.chars().count();
    if len(text) <= width {
        return text.to_owned();
    }
    let (name, labels) = text.split_at(text.find('{').unwrap_or(text.len()));
    let room = width.saturating_sub(len(labels));
    if room >= 5 {
        let keep = room - 1;
        let head: String = name.chars().take(keep / 2).collect();
        let tail: String = name.chars().skip(len(name) - (keep - keep / 2)).collect();
        return format!("{head}…{tail}{labels}");
    }
    let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
    cut.push('…');
    cut
}
