//! Every view rendered from fixture state at 120×40 and 80×24, compared
//! with the snapshots in `snapshots/`.

use crate::fixtures;
use crate::keymap::Action;
use crate::state::{State, Tab};
use ratatui::Terminal;
use ratatui::backend::TestBackend;

fn state() -> State {
    let mut s = State::new("127.0.0.1:4370", 1000);
    s.on_overview(fixtures::overview(0));
    s.on_overview(fixtures::overview(2_000));
    s.on_processes(fixtures::page());
    s.on_metrics(fixtures::metrics());
    s.on_metrics(fixtures::metrics());
    s.on_tree(fixtures::tree());
    s.on_logs(fixtures::logs(), 0);
    s.telemetry.update(fixtures::telemetry());
    s
}

fn render(state: &State, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).unwrap();
    terminal.draw(|f| super::render(f, state)).unwrap();
    let buffer = terminal.backend().buffer();
    let mut out = String::new();
    for y in 0..buffer.area.height {
        let mut line = String::new();
        for x in 0..buffer.area.width {
            line.push_str(buffer[(x, y)].symbol());
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

fn check(name: &str, state: &State) {
    for (w, h) in [(120, 40), (80, 24)] {
        insta::assert_snapshot!(format!("{name}_{w}x{h}"), render(state, w, h));
    }
}

fn on(tab: Tab) -> State {
    let mut s = state();
    s.tab = tab;
    s
}

#[test]
fn nodes() {
    check("nodes", &on(Tab::Nodes));
}

#[test]
fn processes() {
    check("processes", &on(Tab::Processes));
}

#[test]
fn processes_with_a_bad_filter_being_typed() {
    let mut s = on(Tab::Processes);
    s.apply(Action::Filter);
    for c in "mq>lots".chars() {
        s.filter_key(crossterm::event::KeyCode::Char(c));
    }
    s.filter_key(crossterm::event::KeyCode::Enter);
    check("processes_filter_error", &s);
}

#[test]
fn process_detail() {
    let mut s = on(Tab::Processes);
    s.apply(Action::Enter);
    s.on_detail(fixtures::detail());
    s.on_detail(fixtures::detail());
    check("detail", &s);
}

#[test]
fn process_detail_of_a_process_that_exited() {
    let exit = crate::state::DetailExit {
        reason: "panic: index out of bounds: the len is 3 but the index is 7".into(),
        crashed: true,
        at_unix_ms: fixtures::T0 - 4_000,
    };
    // Watched while it ran, then gone: the last figures, under its exit.
    let mut s = on(Tab::Processes);
    s.apply(Action::Enter);
    s.on_detail(fixtures::detail());
    let pid = s.detail.pid.clone().unwrap();
    s.on_exited(&pid, exit.clone());
    check("detail_exited", &s);
    // Opened after it exited: its exit, not a wait that never ends.
    let mut s = on(Tab::Processes);
    s.apply(Action::Enter);
    s.on_exited(&pid, exit);
    check("detail_exited_before_seen", &s);
}

#[test]
fn process_detail_with_its_registry() {
    let mut s = on(Tab::Processes);
    s.apply(Action::Enter);
    s.on_detail(fixtures::detail());
    let pid = s.detail.pid.clone().unwrap();
    s.on_process_registry(&pid, fixtures::process_registry());
    check("detail_registry", &s);
}

#[test]
fn process_detail_with_its_traces() {
    let mut s = on(Tab::Processes);
    s.apply(Action::Enter);
    s.on_detail(fixtures::detail());
    let pid = s.detail.pid.clone().unwrap();
    s.on_process_traces(&pid, fixtures::process_traces());
    s.apply(Action::Down);
    check("detail_traces", &s);
    // `y` puts the selected trace's Jaeger link on the clipboard.
    s.jaeger_ui = "http://jaeger.example:16686/".into();
    s.apply(Action::CopyTrace);
    assert_eq!(
        s.clipboard.as_deref(),
        Some("http://jaeger.example:16686/trace/4bf92f3577b34da6a3ce929d0e0e4702")
    );
}

#[test]
fn registry() {
    let mut s = on(Tab::Registry);
    s.registry.update(fixtures::registry(0));
    s.registry.update(fixtures::registry(2_000));
    check("registry", &s);
}

#[test]
fn registry_from_an_older_agent() {
    let mut s = on(Tab::Registry);
    s.registry.unavailable = Some(
        "the agent of a@host speaks attach protocol 2; Registry needs 3 (upgrade the node's clustertop-agent)".into(),
    );
    check("registry_unavailable", &s);
}

#[test]
fn tree() {
    check("tree", &on(Tab::Tree));
}

#[test]
fn metrics() {
    check("metrics", &on(Tab::Metrics));
}

#[test]
fn metrics_narrowed_to_one_series_name() {
    let mut s = on(Tab::Metrics);
    s.apply(Action::Filter);
    for c in "name~chat_messages".chars() {
        s.filter_key(crossterm::event::KeyCode::Char(c));
    }
    s.filter_key(crossterm::event::KeyCode::Enter);
    check("metrics_series_filter", &s);
}

#[test]
fn metrics_from_an_older_agent() {
    let mut s = on(Tab::Metrics);
    s.telemetry.unavailable = Some(
        "the agent of a@host speaks attach protocol 3; Telemetry needs 4 (upgrade the node's clustertop-agent)".into(),
    );
    check("metrics_unavailable", &s);
}

#[test]
fn logs() {
    check("logs", &on(Tab::Logs));
}

#[test]
fn a_log_record_opened_whole() {
    let mut s = on(Tab::Logs);
    let mut crash = fixtures::logs()[1].clone();
    crash.at_unix_us += 1_000_000;
    crash.level = clustertop_proto::LogLevel::Warn;
    crash.message = "child exited; restarting".into();
    crash.fields = vec![
        ("supervisor".into(), "<0.7.25731>".into()),
        (
            "reason".into(),
            "panic: called `Result::unwrap()` on an `Err` value: Io(Custom { kind: \
             ConnectionReset, error: \"the peer at 10.0.0.7:4370 closed the connection while \
             a reply was pending\" }) at examples/src/chat/store.rs:120:41"
                .into(),
        ),
    ];
    s.on_logs(vec![crash], 0);
    s.apply(Action::Enter);
    assert!(s.logs.open.is_some());
    check("logs_record", &s);
    s.apply(Action::Back);
    assert!(s.logs.open.is_none());
}

#[test]
fn the_picked_node_shows_on_every_view() {
    let mut s = on(Tab::Metrics);
    s.apply(Action::NodeNext);
    check("node_picked", &s);
}

#[test]
fn warnings() {
    check("warnings", &on(Tab::Warnings));
}

#[test]
fn help() {
    let mut s = on(Tab::Processes);
    s.apply(Action::Help);
    check("help", &s);
    // `?` again: the next page.
    s.apply(Action::Help);
    check("help_columns", &s);
    s.apply(Action::Down);
    assert_eq!(s.help, crate::state::Help::Closed);
}

#[test]
fn processes_sorted_by_memory_show_the_memory_column_when_narrow() {
    let mut s = on(Tab::Processes);
    for _ in 0..7 {
        s.apply(Action::SortNext);
    }
    assert_eq!(s.processes.sort, clustertop_proto::SortKey::Memory);
    check("processes_by_memory", &s);
}

#[test]
fn disconnected() {
    let mut s = on(Tab::Nodes);
    s.now_ms = fixtures::T0 + 4_200;
    s.on_disconnected(
        "no node answers (tried 127.0.0.1:4371, 127.0.0.1:4370): no clustertop node at \
         127.0.0.1:4370 (connection refused); trying again every second"
            .into(),
    );
    check("disconnected", &s);
}

#[test]
fn fell_over_to_another_node() {
    let mut s = on(Tab::Nodes);
    s.on_disconnected("a@host (127.0.0.1:4370) stopped answering".into());
    s.on_attached("127.0.0.1:4371", "b@host", "127.0.0.1:4370");
    check("fell_over", &s);
}

/// A BEAM cluster: the Nodes, Processes and Detail views show the BEAM's
/// figures in place of ours.
fn beam_state(tab: Tab) -> State {
    let mut s = State::new("a@host", 1000);
    s.on_overview(fixtures::beam_overview(0));
    s.on_overview(fixtures::beam_overview(2_000));
    s.on_processes(clustertop_proto::ProcessPage {
        rows: fixtures::beam_rows(),
        total_matching: 3,
        sampled_at_unix_ms: fixtures::T0,
    });
    s.tab = tab;
    s
}

#[test]
fn beam_nodes() {
    check("beam_nodes", &beam_state(Tab::Nodes));
}

#[test]
fn beam_processes() {
    check("beam_processes", &beam_state(Tab::Processes));
}

#[test]
fn beam_process_detail() {
    let mut s = beam_state(Tab::Processes);
    s.apply(Action::Enter);
    s.on_detail(fixtures::beam_detail());
    check("beam_detail", &s);
}

#[test]
fn beam_processes_of_a_node_read_in_top_mode() {
    let mut s = beam_state(Tab::Processes);
    let mut o = fixtures::beam_overview(4_000);
    o.nodes[1].processes = 1_000_000;
    if let Some(b) = o.nodes[1].beam.as_mut() {
        b.whole_table = false;
        b.rows = 612;
    }
    s.on_overview(o);
    check("beam_processes_top", &s);
}

#[test]
fn the_latency_panel_shows_the_busy_behaviour_not_the_one_that_handled_most() {
    use clustertop_proto::{Histogram, HistogramKey, Percentiles};
    let p = |count, p50_us| Percentiles {
        count,
        p50_us,
        p90_us: p50_us,
        p99_us: p50_us,
        max_us: p50_us,
    };
    let store = |node: &str, last_60s, buckets| Histogram {
        key: HistogramKey::HandlingTime {
            node: node.into(),
            behaviour: "MessageStore".into(),
        },
        last_10s: last_60s,
        last_60s,
        buckets,
    };
    let mut m = fixtures::metrics();
    // A healthy store on c: 23,000 handlings of ~100 µs (2.3 s of work);
    // the saturated one on b: 600 of ~100 ms (60 s of work).
    m.histograms = vec![
        store("c@host", p(23_000, 100), vec![(128, 23_000)]),
        store("b@host", p(600, 100_000), vec![(131_072, 600)]),
    ];
    let busiest = super::metrics::busiest(&m).expect("a handling histogram");
    assert!(
        matches!(&busiest.key, HistogramKey::HandlingTime { node, .. } if node == "b@host"),
        "{busiest:?}"
    );
}

#[test]
fn a_process_seen_once_shows_no_rates() {
    let mut s = on(Tab::Processes);
    let mut page = fixtures::page();
    let mut fresh = fixtures::row("a@host", 500, Some("presence"), "Presence");
    fresh.figures.mailbox_len = 1;
    fresh.figures.rates_known = false;
    page.rows.push(fresh);
    s.on_processes(page);
    let screen = render(&s, 120, 40);
    let line = screen
        .lines()
        .find(|l| l.contains("presence"))
        .unwrap_or_else(|| panic!("no presence row in:\n{screen}"));
    // Growth, msg/s, util, cpu and polls/s: nothing yet, not a guess (the
    // sixth is OLDEST, which this fixture leaves unknown).
    assert_eq!(line.matches('–').count(), 6, "{line}");
}

#[test]
fn the_warnings_bar_has_one_entry_per_process_with_every_reason() {
    use clustertop_proto::{Warning, WarningKind};
    let mut s = on(Tab::Processes);
    let mut o = fixtures::overview(2_000);
    // The store is saturated too: one entry for it, both reasons in it.
    let growing = o.warnings[0].clone();
    o.warnings.insert(
        0,
        Warning {
            kind: WarningKind::Saturated {
                util_permille: 1000,
                len: 48_211,
                growth_per_s: 1_200,
            },
            ..growing
        },
    );
    // And it restarts in a storm: a second reason on the same entry.
    let storm = o.warnings[0].clone();
    o.warnings.push(Warning {
        kind: WarningKind::RestartStorm {
            restarts: 4,
            max_restarts: 5,
        },
        ..storm
    });
    s.on_overview(o);
    let bar = super::warnings::bar(&s).to_string();
    assert_eq!(bar.matches("<b.311>").count(), 1, "{bar}");
    assert!(bar.contains("4 restarts of at most 5; saturated"), "{bar}");
    // Saturation says how the mailbox grows: not said twice.
    assert_eq!(bar.matches("growing").count(), 1, "{bar}");
    // The node down comes first.
    assert!(
        bar.find("node down").unwrap() < bar.find("<b.311>").unwrap(),
        "{bar}"
    );
}

/// The README's pictures (under "What it looks like") are these views as
/// they render now, from these fixtures: a change to a view that leaves
/// them behind fails here, printing what they should be.
#[test]
fn the_readme_shows_the_views_as_they_render() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("the README");
    let section = readme
        .split("### What it looks like")
        .nth(1)
        .and_then(|s| s.split("\n## ").next())
        .expect("the README's pictures");
    let shown: Vec<&str> = section
        .split("```text\n")
        .skip(1)
        .filter_map(|b| b.split("\n```").next())
        .collect();
    let processes = on(Tab::Processes);
    let nodes = on(Tab::Nodes);
    let mut detail = on(Tab::Processes);
    detail.apply(Action::Enter);
    detail.on_detail(fixtures::detail());
    detail.on_detail(fixtures::detail());
    let want = [
        render(&processes, 120, 12),
        render(&nodes, 120, 18),
        render(&detail, 120, 24),
    ];
    for (i, want) in want.iter().enumerate() {
        let want = want.trim_end_matches('\n');
        assert_eq!(
            shown.get(i).copied(),
            Some(want),
            "README picture {} should be:\n{want}",
            i + 1
        );
    }
}

#[test]
fn at_60_by_20_every_view_is_reachable_and_pids_are_whole() {
    for tab in [
        Tab::Nodes,
        Tab::Processes,
        Tab::Tree,
        Tab::Metrics,
        Tab::Logs,
        Tab::Warnings,
        Tab::Registry,
    ] {
        let screen = render(&on(tab), 60, 20);
        let tabs = screen.lines().nth(1).unwrap_or_default();
        for n in 1..=7 {
            assert!(
                tabs.contains(&n.to_string()),
                "{tab:?}: view {n} is not on the tab line:\n{screen}"
            );
        }
        if tab == Tab::Processes {
            for pid in ["<b.311>", "<a.88>", "<a.17>", "<b.40>"] {
                assert!(screen.contains(pid), "{pid} is cut:\n{screen}");
            }
        }
    }
    // The help's lines are whole: wrapped, never cut at the border.
    let mut s = on(Tab::Processes);
    s.apply(Action::Help);
    // Every page, at both sizes: each entry's text whole, wrapped inside
    // the box, never cut at its border.
    for (w, h) in [(60, 20), (160, 45)] {
        let mut s = on(Tab::Processes);
        s.apply(Action::Help);
        let mut seen = String::new();
        for _ in 0..12 {
            let screen = render(&s, w, h);
            let lines: Vec<Vec<char>> = screen.lines().map(|l| l.chars().collect()).collect();
            let top = lines
                .iter()
                .position(|l| l.iter().collect::<String>().contains("┌ Help"))
                .expect("the help box");
            let left = lines[top].iter().position(|c| *c == '┌').unwrap();
            let right = left + lines[top][left..].iter().position(|c| *c == '┐').unwrap();
            for line in &lines[top + 1..] {
                if line.get(left) != Some(&'│') {
                    break;
                }
                let inside: String = line[left + 1..right.min(line.len())].iter().collect();
                seen.push_str(inside.trim());
                seen.push(' ');
            }
            s.apply(Action::Help);
        }
        let seen = seen.split_whitespace().collect::<Vec<_>>().join(" ");
        for b in crate::keymap::KEYMAP {
            let words = b.help.split_whitespace().collect::<Vec<_>>().join(" ");
            // Wrapped text reads the same once its lines are joined.
            let first = words.split(' ').take(4).collect::<Vec<_>>().join(" ");
            let last = words.rsplit(' ').take(3).collect::<Vec<_>>();
            assert!(seen.contains(&first), "{w}x{h}: {:?} is missing", b.help);
            assert!(
                last.iter().all(|word| seen.contains(word)),
                "{w}x{h}: the end of {:?} is cut",
                b.help
            );
        }
    }
}

/// The README's commands run `clustertop` by name: it says how the binary
/// gets on the PATH, with the package that builds it.
#[test]
fn the_readme_says_how_to_get_the_binary() {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../README.md"))
        .expect("the README");
    let manifest = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"))
        .expect("the manifest");
    assert!(manifest.contains("name = \"clustertop\""), "{manifest}");
    let install = readme
        .find("cargo install --path tui")
        .expect("the install line");
    let first_use = readme
        .find("\nclustertop [--node")
        .expect("the first command");
    assert!(
        install < first_use,
        "the install line comes before the commands"
    );
}
