//! Process detail: everything the agent knows about one process.

use super::{block, waiting};
use crate::format;
use crate::state::{DetailExit, Series, State, TRACE_LINES};
use clustertop_proto::{
    Activity, MailboxPeek, PidRef, ProcessDetail, ProcessRegistry, ProcessTraces,
};
use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, RenderDirection, Sparkline, Wrap};

pub(crate) fn render(frame: &mut Frame<'_>, area: Rect, state: &State) {
    let Some(pid) = &state.detail.pid else {
        return;
    };
    let now = state
        .overview
        .as_ref()
        .and_then(|o| o.nodes.first())
        .map(|n| n.sampled_at_unix_ms);
    let exit_line = state.detail.exit.as_ref().map(|e| exit_line(e, now));
    let Some(d) = &state.detail.data else {
        let title = format!(" {}  — Esc back ", format::pid(pid));
        match exit_line {
            Some(line) => frame.render_widget(
                Paragraph::new(line)
                    .wrap(Wrap { trim: false })
                    .block(block(title)),
                area,
            ),
            None => frame.render_widget(waiting("the process").block(block(title)), area),
        }
        return;
    };
    let r = &d.row;
    let title = format!(
        " {}  {}{}  on {}  — Esc back, r related, PgDn/PgUp scroll ",
        format::pid(&r.pid),
        r.name
            .as_deref()
            .map(|n| format!("{}  ", format::printable(n)))
            .unwrap_or_default(),
        r.behaviour,
        r.pid.node
    );
    let outer = block(title);
    let inner = outer.inner(area);
    frame.render_widget(outer, area);
    let [text_area, spark_label, spark] = Layout::vertical([
        Constraint::Min(6),
        Constraint::Length(1),
        Constraint::Length(3),
    ])
    .areas(inner);
    let now = now.unwrap_or(d.spawned_at_unix_ms);
    let mut lines: Vec<Line<'_>> = exit_line.into_iter().collect();
    let refs = Refs {
        names: &d.names,
        picked: state.detail.picked(),
    };
    match &d.beam {
        Some(b) => lines.extend(beam_lines(d, b, &refs)),
        None => lines.extend(our_lines(d, state.detail.exit.is_some(), now, &refs)),
    }
    if let Some(reg) = &state.detail.registry {
        lines.extend(registry_lines(reg));
    }
    if let Some(t) = state
        .detail
        .traces
        .as_ref()
        .filter(|t| !t.traces.is_empty())
    {
        lines.extend(trace_lines(t, state.detail.trace_selected, now));
    }
    lines.extend(mailbox_head(d, state.detail.peek.as_ref()));
    // PgDn and PgUp scroll; never past the last line.
    let scroll = state
        .detail
        .scroll
        .min((lines.len() as u16).saturating_sub(text_area.height));
    frame.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .scroll((scroll, 0)),
        text_area,
    );
    mailbox_chart(frame, [spark_label, spark], &state.detail.mailbox);
}

fn bold(s: &str) -> Span<'static> {
    Span::styled(s.to_owned(), Style::new().add_modifier(Modifier::BOLD))
}

/// Pids, comma-separated, or `none`.
/// How the detail names the processes it refers to: by pid and, where
/// known, name; the one picked with `r` shown reversed.
struct Refs<'a> {
    names: &'a [(PidRef, String)],
    picked: Option<PidRef>,
}

impl Refs<'_> {
    /// `ps`, comma-separated (`none` when empty), each with what `tail`
    /// adds after it.
    fn spans(&self, ps: &[PidRef], tail: impl Fn(usize) -> String) -> Vec<Span<'static>> {
        if ps.is_empty() {
            return vec![Span::raw("none")];
        }
        let mut out = Vec::new();
        for (i, p) in ps.iter().enumerate() {
            if i > 0 {
                out.push(Span::raw(", "));
            }
            let name = self
                .names
                .iter()
                .find(|(q, _)| q == p)
                .map(|(_, n)| format!(" {}", format::printable(n)))
                .unwrap_or_default();
            let text = format!("{}{name}{}", format::pid(p), tail(i));
            out.push(if self.picked.as_ref() == Some(p) {
                Span::styled(text, Style::new().add_modifier(Modifier::REVERSED))
            } else {
                Span::raw(text)
            });
        }
        out
    }
}

/// How and when the process exited, red for a crash.
fn exit_line(e: &DetailExit, now: Option<u64>) -> Line<'static> {
    let when = match (e.at_unix_ms, now) {
        (0, _) => String::new(),
        (at, Some(now)) => format!(
            " {} ago, at {}",
            format::duration_ms(now.saturating_sub(at)),
            format::clock(at * 1000)
        ),
        (at, None) => format!(" at {}", format::clock(at * 1000)),
    };
    Line::from(Span::styled(
        format!("exited{when}: {}", format::printable(&e.reason)),
        Style::new()
            .fg(if e.crashed { Color::Red } else { Color::Yellow })
            .add_modifier(Modifier::BOLD),
    ))
}

/// What a process is doing, as the detail's status says it.
fn activity(a: Activity) -> String {
    let us = |us: u64| format::duration_ms(us / 1_000);
    match a {
        Activity::Idle { for_us } => format!("idle for {}", us(for_us)),
        Activity::Running {
            handling_for_us: Some(h),
        } => format!("running a handler for {}", us(h)),
        Activity::Running {
            handling_for_us: None,
        } => "running".to_owned(),
        Activity::Awaiting {
            handling_for_us: Some(h),
        } => format!("awaiting in a handler for {}", us(h)),
        Activity::Awaiting {
            handling_for_us: None,
        } => "awaiting in a handler".to_owned(),
        Activity::Exiting => "exiting".to_owned(),
    }
}

/// One of our processes' figures: status, mailbox, totals, handling
/// time, relations, top senders.
fn our_lines(d: &ProcessDetail, exited: bool, now: u64, refs: &Refs<'_>) -> Vec<Line<'static>> {
    let r = &d.row;
    let mut supervisors = vec![bold("   supervisors ")];
    supervisors.extend(refs.spans(&d.supervisor_path, |_| String::new()));
    let mut senders = vec![bold("top senders ")];
    let senders_pids: Vec<PidRef> = d.top_senders.iter().map(|(p, _)| p.clone()).collect();
    senders.extend(refs.spans(&senders_pids, |i| format!(" {}%", d.top_senders[i].1)));
    let mut first = vec![
        bold("status "),
        Span::raw(if exited {
            "exited (the figures below are its last)".to_owned()
        } else {
            d.activity
                .map_or_else(|| format!("{:?}", r.status).to_lowercase(), activity)
        }),
        bold("   spawned "),
        Span::raw(format!(
            "{} ago",
            format::duration_ms(now.saturating_sub(d.spawned_at_unix_ms))
        )),
    ];
    first.extend(supervisors);
    first.extend([
        bold("   traps exits "),
        Span::raw(if d.trap_exit { "yes" } else { "no" }),
    ]);
    vec![
        Line::from(first),
        Line::from(vec![
            bold("mailbox "),
            mailbox_span(r),
            bold("   oldest "),
            Span::raw(
                r.figures
                    .oldest_message_age_us
                    .map_or("–".to_owned(), |us| format::duration_ms(us / 1000)),
            ),
            bold("   growth "),
            Span::raw(format::measured(&r.figures, || {
                format::growth(r.figures.mailbox_growth_per_s)
            })),
            bold("   util "),
            Span::raw(format::measured(&r.figures, || {
                format::permille(r.figures.util_permille)
            })),
            bold("   cpu "),
            Span::raw(format::measured(&r.figures, || {
                format::permille(r.figures.cpu_permille)
            })),
            bold("   memory "),
            Span::raw(format::bytes(r.figures.memory_bytes)),
        ]),
        Line::from(vec![
            bold("handled "),
            Span::raw(format::count(d.totals.handled_total)),
            bold("   received "),
            Span::raw(format::count(d.totals.received_total)),
            bold("   sent "),
            Span::raw(format::count(d.totals.sent_total)),
            bold("   msgs/s "),
            Span::raw(format::measured(&r.figures, || {
                format::rate(r.figures.handled_per_s as f64)
            })),
        ]),
        Line::from(vec![
            bold("in handlers "),
            Span::raw(format::duration_ms(d.totals.util_us_total / 1000)),
            bold("   on cpu "),
            Span::raw(format::duration_ms(d.totals.cpu_us_total / 1000)),
            bold("   polls "),
            Span::raw(format::count(d.totals.polls_total)),
            bold("   polls/s "),
            Span::raw(format::measured(&r.figures, || {
                format::rate(r.figures.polls_per_s as f64)
            })),
        ]),
        Line::from(vec![
            bold("handling time "),
            Span::raw(d.handling_time.map_or("–".to_owned(), |p| {
                format!(
                    "p50 {}  p90 {}  p99 {}  max {}  ({} in 60 s)",
                    format::micros(p.p50_us),
                    format::micros(p.p90_us),
                    format::micros(p.p99_us),
                    format::micros(p.max_us),
                    format::count(p.count)
                )
            })),
        ]),
        links_line(d, refs),
        Line::from(senders),
    ]
}

/// Its names, groups, subscriptions and presences.
fn registry_lines(reg: &ProcessRegistry) -> Vec<Line<'static>> {
    let list = |items: Vec<String>| {
        if items.is_empty() {
            "none".to_owned()
        } else {
            items.join(", ")
        }
    };
    let mut names: Vec<String> = reg.name.iter().cloned().collect();
    names.extend(reg.global_names.iter().map(|n| format!("{n} (global)")));
    vec![
        Line::from(vec![
            bold("names "),
            Span::raw(list(names)),
            bold("   groups "),
            Span::raw(list(reg.groups.clone())),
        ]),
        Line::from(vec![
            bold("subscribed to "),
            Span::raw(list(
                reg.subscriptions
                    .iter()
                    .map(|(_, topic)| topic.clone())
                    .collect(),
            )),
            bold("   present in "),
            Span::raw(list(
                reg.presences
                    .iter()
                    .map(|(_, topic, key)| format!("{topic} as {key}"))
                    .collect(),
            )),
        ]),
    ]
}

/// Its last traced handlings, the `selected` one reversed.
fn trace_lines(t: &ProcessTraces, selected: usize, now: u64) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(vec![
        bold("traces "),
        Span::raw(format!(
            "(last {} handled inside sampled traces; j/k select, y copies the Jaeger link)",
            t.traces.len()
        )),
    ])];
    for (i, row) in t.traces.iter().enumerate().take(TRACE_LINES) {
        let is_selected = i == selected;
        let from = row
            .from
            .as_ref()
            .map_or("outside any process".to_owned(), |p| {
                format!("from {} on {}", format::pid(p), format::short_node(&p.node))
            });
        let text = format!(
            "{} {}  {}  {from}  {} ago",
            if is_selected { "▶" } else { " " },
            format::printable(&row.trace_id),
            format::micros(row.handling_us),
            format::duration_ms(now.saturating_sub(row.at_unix_ms))
        );
        lines.push(if is_selected {
            Line::styled(text, Style::new().add_modifier(Modifier::REVERSED))
        } else {
            Line::from(text)
        });
    }
    lines
}

/// The first queued messages: read on a key (with what it cost), or as
/// the detail came (ours), or not read (a BEAM process's, until asked).
fn mailbox_head(d: &ProcessDetail, peek: Option<&MailboxPeek>) -> Vec<Line<'static>> {
    let mut lines = vec![Line::from(bold("mailbox head"))];
    match peek {
        Some(peek) => {
            if let Some(note) = &peek.note {
                lines.push(Line::from(format!("  ({})", format::printable(note))));
            }
            for m in &peek.messages {
                let m = format::screen_pids(m, &d.row.pid.node);
                lines.push(Line::from(format!("  {}", format::printable(&m))));
            }
        }
        None if d.beam.is_some() => lines.push(Line::from(
            "  not read: m reads the first 20 (the node copies the whole queue to read them)",
        )),
        None => {
            for m in &d.mailbox_head {
                let m = format::screen_pids(m, &d.row.pid.node);
                lines.push(Line::from(format!("  {}", format::printable(&m))));
            }
        }
    }
    lines
}

/// The mailbox length over the last refreshes, newest at the right.
fn mailbox_chart(frame: &mut Frame<'_>, [label, chart]: [Rect; 2], mailbox: &Series) {
    let data = mailbox.recent(usize::from(chart.width));
    frame.render_widget(
        Line::from(format!(
            "mailbox over the last {} refreshes (max {})",
            data.len(),
            format::count(data.iter().copied().max().unwrap_or(0))
        )),
        label,
    );
    frame.render_widget(
        Sparkline::default()
            .data(&data)
            .direction(RenderDirection::RightToLeft)
            .style(Style::new().fg(Color::Yellow)),
        chart,
    );
}

/// A BEAM process's figures: what `process_info` says of it.
fn beam_lines(
    d: &ProcessDetail,
    b: &clustertop_proto::BeamProcessDetail,
    refs: &Refs<'_>,
) -> Vec<Line<'static>> {
    let r = &d.row;
    let work = r.beam.clone().unwrap_or_default();
    let text = |s: &str| Span::raw(format::printable(s).into_owned());
    let mut lines = vec![
        Line::from(vec![
            bold("pid "),
            text(&b.pid),
            bold("   status "),
            text(&b.status),
            bold("   initial call "),
            text(b.initial_call.as_deref().unwrap_or("–")),
            bold("   traps exits "),
            Span::raw(if d.trap_exit { "yes" } else { "no" }),
        ]),
        Line::from(
            [bold("supervisors ")]
                .into_iter()
                .chain(refs.spans(&d.supervisor_path, |_| String::new()))
                .chain([
                    bold("   label "),
                    text(b.label.as_deref().unwrap_or("–")),
                    bold("   group leader "),
                    text(b.group_leader.as_deref().unwrap_or("–")),
                ])
                .collect::<Vec<_>>(),
        ),
        Line::from(vec![
            bold("mailbox "),
            mailbox_span(r),
            bold("   growth "),
            Span::raw(format::measured(&r.figures, || {
                format::growth(r.figures.mailbox_growth_per_s)
            })),
            bold("   reductions "),
            Span::raw(format::count(work.reductions_total)),
            bold("   reds/s "),
            Span::raw(format::measured(&r.figures, || {
                format::rate(work.reductions_per_s as f64)
            })),
        ]),
        Line::from(vec![
            bold("memory "),
            Span::raw(format::bytes(r.figures.memory_bytes)),
            bold("   heap "),
            Span::raw(format::bytes(b.heap_bytes)),
            bold("   total heap "),
            Span::raw(format::bytes(b.total_heap_bytes)),
            bold("   stack "),
            Span::raw(format::bytes(b.stack_bytes)),
        ]),
        links_line(d, refs),
        Line::from(bold("stacktrace")),
    ];
    lines.extend(
        b.stacktrace
            .iter()
            .map(|f| Line::from(format!("  {}", format::printable(f)))),
    );
    lines
}

/// A process's queue length, yellow while a warning is about it.
fn mailbox_span(r: &clustertop_proto::ProcessRow) -> Span<'static> {
    Span::styled(
        format::count(r.figures.mailbox_len),
        if r.figures.warnings > 0 {
            Style::new().fg(Color::Yellow)
        } else {
            Style::new()
        },
    )
}

/// A process's links and monitors.
fn links_line(d: &ProcessDetail, refs: &Refs<'_>) -> Line<'static> {
    let none = |_| String::new();
    let mut spans = vec![bold("links ")];
    spans.extend(refs.spans(&d.links, none));
    spans.push(bold("   monitored by "));
    spans.extend(refs.spans(&d.monitored_by, none));
    spans.push(bold("   monitoring "));
    spans.extend(refs.spans(&d.monitoring, none));
    Line::from(spans)
}
