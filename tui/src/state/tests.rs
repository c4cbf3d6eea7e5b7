use super::logs::LOG_LINES;
use super::sort::SORTS;
use super::*;
use crate::fixtures;
use clustertop_proto::{LogLevel, ProcessFilter, SortKey};
use crossterm::event::KeyCode;

fn state() -> State {
    let mut s = State::new("127.0.0.1:4370", 1000);
    s.on_overview(fixtures::overview(0));
    s.on_processes(fixtures::page());
    s
}

#[test]
fn rates_come_from_two_overviews() {
    let mut s = state();
    assert!(s.rates.nodes.is_empty(), "one overview gives no rate");
    s.on_overview(fixtures::overview(2_000));
    let a = &s.rates.nodes["a@host"];
    assert!((a.in_per_s - 600_000.0).abs() < 1.0, "{a:?}");
    // 1.42 s of CPU per second over 2 CPUs.
    assert!((a.cpu_pct - 71.0).abs() < 0.1, "{a:?}");
    assert!(
        !s.rates.nodes.contains_key("c@host"),
        "a down node has no rate"
    );
    assert_eq!(s.rates.cluster.last().map(|v| v.round()), Some(1_200_000.0));
    // A missed refresh loses nothing: the next difference spans both.
    s.on_overview(fixtures::overview(6_000));
    assert!((s.rates.nodes["a@host"].in_per_s - 600_000.0).abs() < 1.0);
}

#[test]
fn the_cluster_rate_never_dips_when_one_node_has_not_sampled_again() {
    let mut s = state();
    // Each refresh, node b's agent has sampled again only every other
    // time: the overview carries its previous sample.
    let mut b_last = fixtures::overview(0).nodes[1].clone();
    let mut points = 0;
    for i in 1..=20u64 {
        let mut o = fixtures::overview(i * 1_000);
        if i % 2 == 1 {
            o.nodes[1] = b_last.clone();
        } else {
            b_last = o.nodes[1].clone();
        }
        let before = s.rates.cluster.len();
        s.on_overview(o);
        if s.rates.cluster.len() > before {
            points += 1;
            // Complete: both nodes at 600k/s, never one of them alone.
            let v = s.rates.cluster.last().unwrap();
            assert!((v - 1_200_000.0).abs() < 1.0, "refresh {i}: {v}");
        }
    }
    assert_eq!(points, 10, "a point each time both nodes sampled again");
}

#[test]
fn a_restarted_node_gives_no_bogus_rate() {
    let mut s = state();
    let mut o = fixtures::overview(1_000);
    o.nodes[0].uptime_ms = 10;
    o.nodes[0].messages_in_total = 5;
    s.on_overview(o);
    assert!(!s.rates.nodes.contains_key("a@host"));
}

#[test]
fn a_node_with_no_sample_yet_is_not_a_reading() {
    let mut s = State::new("127.0.0.1:4370", 1000);
    let mut o = fixtures::overview(0);
    o.nodes[0].sampled_at_unix_ms = 0;
    o.nodes[0].messages_in_total = 0;
    s.on_overview(o);
    s.on_overview(fixtures::overview(1_000));
    // Its first sample is its first reading: still no rate, and no point
    // drawn from a total over the time since 1970.
    assert!(!s.rates.nodes.contains_key("a@host"));
    s.on_overview(fixtures::overview(3_000));
    assert!((s.rates.nodes["a@host"].in_per_s - 600_000.0).abs() < 1.0);
}

#[test]
fn latency_series_weigh_p50_and_keep_the_worst_p99() {
    let mut s = state();
    s.on_metrics(fixtures::metrics());
    // Only handling-time histograms count: the call RTT one is left out.
    assert_eq!(s.rates.p50.last(), Some(20_000.0));
    assert_eq!(s.rates.p99.last(), Some(21_000.0));
}

#[test]
fn sorting_steps_through_the_columns_and_resets_the_page() {
    let mut s = state();
    s.processes.offset = 30;
    s.apply(Action::SortNext);
    assert_eq!(s.processes.sort, SortKey::MailboxLen);
    assert!(s.processes.descending);
    assert_eq!(s.processes.offset, 0);
    s.apply(Action::SortReverse);
    assert!(!s.process_query().descending);
    for _ in 0..8 {
        s.apply(Action::SortNext);
    }
    assert_eq!(s.processes.sort, SortKey::Pid);
    assert!(!s.processes.descending, "pids read lowest first");
    s.apply(Action::SortNext);
    assert_eq!(s.processes.sort, SortKey::Default);
}

#[test]
fn the_filter_parses_on_enter_and_a_bad_query_stays_open_with_its_error() {
    let mut s = state();
    s.apply(Action::Filter);
    for c in "mq>1000 node=b name~chat".chars() {
        s.filter_key(KeyCode::Char(c));
    }
    s.filter_key(KeyCode::Enter);
    assert_eq!(s.filter_input, None);
    let q = s.process_query();
    assert_eq!(q.filter.node.as_deref(), Some("b@host"));
    assert_eq!(q.filter.min_mailbox_len, Some(1001));
    assert_eq!(q.filter.name_contains.as_deref(), Some("chat"));

    s.apply(Action::Filter);
    for c in " colour=red".chars() {
        s.filter_key(KeyCode::Char(c));
    }
    s.filter_key(KeyCode::Enter);
    assert!(s.filter_input.is_some(), "a bad query stays open");
    assert!(s.filter_error.as_deref().unwrap().contains("colour=red"));
    assert_eq!(
        s.process_query().filter.node.as_deref(),
        Some("b@host"),
        "the old filter holds"
    );
    s.filter_key(KeyCode::Esc);
    assert_eq!(s.filter_input, None);
    // An unknown node is an error too.
    s.apply(Action::Filter);
    s.filter_input = Some("node=zzz".into());
    s.filter_key(KeyCode::Enter);
    assert!(s.filter_error.is_some());
    s.filter_key(KeyCode::Esc);
    // Esc in the view clears the filter.
    s.apply(Action::Back);
    assert_eq!(s.process_query().filter, ProcessFilter::default());
}

#[test]
fn the_node_key_cycles_through_nodes_then_all() {
    let mut s = state();
    s.apply(Action::NodeNext);
    assert_eq!(s.node_scope().as_deref(), Some("a@host"));
    s.apply(Action::NodeNext);
    s.apply(Action::NodeNext);
    assert_eq!(s.node_scope().as_deref(), Some("c@host"));
    s.apply(Action::NodeNext);
    assert_eq!(s.node_scope(), None);
}

#[test]
fn moving_past_the_page_moves_the_page() {
    let mut s = state();
    s.processes.page_rows = 2;
    s.processes.page.as_mut().unwrap().total_matching = 5;
    s.apply(Action::Down);
    assert_eq!((s.processes.offset, s.processes.selected), (0, 1));
    s.apply(Action::Down);
    assert_eq!((s.processes.offset, s.processes.selected), (2, 0));
    s.apply(Action::Bottom);
    assert_eq!((s.processes.offset, s.processes.selected), (4, 0));
    s.apply(Action::Top);
    assert_eq!((s.processes.offset, s.processes.selected), (0, 0));
    s.apply(Action::Up);
    assert_eq!((s.processes.offset, s.processes.selected), (0, 0));
}

#[test]
fn enter_opens_the_detail_and_esc_goes_back() {
    let mut s = state();
    s.apply(Action::Enter);
    assert_eq!(s.detail.pid, Some(fixtures::pid("b@host", 311)));
    s.on_detail(fixtures::detail());
    assert_eq!(s.detail.mailbox.last(), Some(48_211.0));
    s.apply(Action::Back);
    assert_eq!(s.detail.pid, None);
}

#[test]
fn the_tree_collapses_and_leaves_open_a_detail() {
    let mut s = state();
    s.apply(Action::View(3));
    s.on_tree(fixtures::tree());
    // Four in the tree, then the one process outside it.
    assert_eq!(s.tree.rows().len(), 5);
    assert_eq!(s.tree.rows_supervised(), 4);
    s.apply(Action::Enter);
    assert_eq!(s.tree.rows().len(), 2, "the root collapsed");
    s.apply(Action::Enter);
    assert_eq!(s.tree.rows().len(), 5);
    s.apply(Action::Down);
    s.apply(Action::Enter);
    assert_eq!(s.detail.pid, Some(fixtures::pid("a@host", 17)));
    s.apply(Action::Back);
    // The process outside the tree opens its detail too.
    s.apply(Action::Bottom);
    s.apply(Action::Enter);
    assert_eq!(s.detail.pid, Some(fixtures::pid("a@host", 88)));
}

#[test]
fn logs_are_bounded_and_filtered_by_level_and_node() {
    let mut s = state();
    for _ in 0..(LOG_LINES / 4 + 10) {
        s.on_logs(fixtures::logs(), 3);
    }
    assert_eq!(s.logs.records.len(), LOG_LINES);
    assert_eq!(s.logs.dropped, 3);
    s.apply(Action::LevelNext);
    assert!(s.visible_logs().iter().all(|r| r.level >= LogLevel::Warn));
    s.node_pick = Some(1);
    assert!(s.visible_logs().iter().all(|r| r.node == "b@host"));
}

#[test]
fn help_closes_on_any_key_and_turns_its_page_on_help() {
    use crate::state::Help;
    let mut s = state();
    s.apply(Action::Help);
    assert_eq!(s.help, Help::Page(0));
    s.apply(Action::Help);
    assert_eq!(s.help, Help::Page(1));
    s.apply(Action::Down);
    assert_eq!(s.help, Help::Closed);
    s.apply(Action::Help);
    s.apply(Action::Quit);
    assert!(s.quit);
}

#[test]
fn paused_logs_gather_below_the_lines_on_screen() {
    let mut s = state();
    s.on_logs(fixtures::logs(), 0);
    s.apply(Action::Pause);
    let first_visible = s.visible_logs().len() - s.logs.scroll;
    s.on_logs(fixtures::logs(), 0);
    assert_eq!(s.logs.records.len(), 8, "records still gather while paused");
    assert_eq!(
        s.visible_logs().len() - s.logs.scroll,
        first_visible,
        "the screen stays put"
    );
    s.apply(Action::Pause);
    assert_eq!(s.logs.scroll, 0, "resuming follows the tail again");
}

#[test]
fn enter_on_a_warning_opens_its_process_or_its_node() {
    let mut s = state();
    s.apply(Action::View(6));
    assert_eq!(s.tab, Tab::Warnings);
    s.apply(Action::Enter);
    assert_eq!(s.detail.pid.as_ref().map(|p| p.serial), Some(311));
    s.apply(Action::Back);
    assert!(s.detail.pid.is_none());
    // The second warning is about a node: the Nodes view, on that node.
    s.apply(Action::Down);
    s.apply(Action::Enter);
    assert!(s.detail.pid.is_none());
    assert_eq!(s.tab, Tab::Nodes);
    let o = s.overview.as_ref().unwrap();
    assert_eq!(o.nodes[s.node_selected].name, "c@host");
}

#[test]
fn records_of_different_nodes_are_merged_by_time() {
    let mut s = state();
    let record = |node: &str, at| LogRecord {
        node: node.into(),
        at_unix_us: at,
        ..fixtures::logs()[0].clone()
    };
    // Node a pushes first, node b's earlier records come with its own push.
    s.on_logs(vec![record("a@host", 10), record("a@host", 30)], 0);
    s.on_logs(vec![record("b@host", 20), record("b@host", 40)], 0);
    let order: Vec<u64> = s.logs.records.iter().map(|r| r.at_unix_us).collect();
    assert_eq!(order, [10, 20, 30, 40]);
}

#[test]
fn a_beam_clusters_sort_keys_are_those_its_rows_have() {
    let mut s = State::new("a@host", 1000);
    s.on_overview(crate::fixtures::beam_overview(0));
    let mut seen = Vec::new();
    for _ in 0..SORTS.len() {
        s.apply(Action::SortNext);
        seen.push(s.processes.sort);
    }
    assert_eq!(
        seen[..6],
        [
            SortKey::MailboxLen,
            SortKey::MailboxGrowth,
            SortKey::Memory,
            SortKey::Work,
            SortKey::Pid,
            SortKey::Default
        ]
    );
    assert_eq!(super::sort_label(SortKey::Work, true), "reductions/s");
}

fn in_detail() -> State {
    let mut s = state();
    s.tab = Tab::Processes;
    s.apply(Action::Enter);
    s.on_detail(fixtures::detail());
    s
}

#[test]
fn the_trace_selection_stays_on_its_trace_when_the_list_changes() {
    let mut s = in_detail();
    let pid = s.detail.pid.clone().unwrap();
    s.on_process_traces(&pid, fixtures::process_traces());
    s.apply(Action::Down);
    let picked = s.selected_trace_url().unwrap();
    // A newer handling comes first: the rows move down one.
    let mut newer = fixtures::process_traces();
    let mut first = newer.traces[0].clone();
    first.trace_id = "ffffffffffffffffffffffffffffffff".into();
    newer.traces.insert(0, first);
    s.on_process_traces(&pid, newer);
    assert_eq!(s.selected_trace_url().unwrap(), picked);
    assert_eq!(s.detail.trace_selected, 2);
}

#[test]
fn a_related_process_is_picked_with_r_and_opened_with_enter() {
    let mut s = in_detail();
    let related = s.detail.related();
    assert!(related.len() >= 3, "{related:?}");
    s.apply(Action::Related);
    s.apply(Action::Related);
    assert_eq!(s.detail.picked(), Some(related[1].clone()));
    s.apply(Action::Enter);
    assert_eq!(s.detail.pid, Some(related[1].clone()));
    assert_eq!(
        s.detail.picked(),
        None,
        "a new detail starts with none picked"
    );
}

#[test]
fn pages_scroll_the_detail_and_a_copy_is_said_long_enough_to_read() {
    let mut s = in_detail();
    s.apply(Action::PageDown);
    assert_eq!(s.detail.scroll, 10);
    s.apply(Action::PageUp);
    s.apply(Action::PageUp);
    assert_eq!(s.detail.scroll, 0);
    let pid = s.detail.pid.clone().unwrap();
    s.on_process_traces(&pid, fixtures::process_traces());
    s.apply(Action::CopyTrace);
    // Kept over three refreshes (about three seconds), then gone.
    for refresh in 1..=3 {
        s.on_overview(fixtures::overview(refresh * 1_000));
        assert!(
            s.status
                .as_deref()
                .is_some_and(|t| t.starts_with("copied ")),
            "refresh {refresh}"
        );
    }
    s.on_overview(fixtures::overview(4_000));
    assert_eq!(s.status, None);
}
