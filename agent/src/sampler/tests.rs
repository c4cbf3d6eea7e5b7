use super::*;
use clustertop_proto::SortKey;

fn sample(rows: Vec<Row>) -> Sample {
    Sample {
        rows,
        behaviours: vec!["Worker"],
        ..Sample::default()
    }
}

fn query(sort: SortKey, descending: bool, offset: u64, limit: u32) -> ProcessQuery {
    ProcessQuery {
        filter: ProcessFilter::default(),
        sort,
        descending,
        offset,
        limit,
    }
}

struct Ctx {
    names: HashMap<u64, String>,
    warnings: HashMap<u64, u32>,
}

impl Ctx {
    fn new() -> Self {
        Ctx {
            names: HashMap::new(),
            warnings: HashMap::new(),
        }
    }

    fn get(&self) -> RowContext<'_> {
        RowContext {
            node: "a@host",
            creation: 7,
            names: &self.names,
            warnings: &self.warnings,
        }
    }
}

fn serials(rows: &[ProcessRow]) -> Vec<u64> {
    rows.iter().map(|r| r.pid.serial).collect()
}

#[test]
fn pages_follow_the_sort_and_count_every_match() {
    let s = sample(
        (1..=100)
            .map(|i| test_row(i, (i * 7 % 101) as u32, 0, 0))
            .collect(),
    );
    let ctx = Ctx::new();
    let (page, total) = s.query(&query(SortKey::MailboxLen, true, 0, 5), &ctx.get());
    assert_eq!(total, 100);
    let boxes: Vec<u64> = page.iter().map(|r| r.figures.mailbox_len).collect();
    assert_eq!(boxes, [100, 99, 98, 97, 96]);
    let (page2, _) = s.query(&query(SortKey::MailboxLen, true, 5, 5), &ctx.get());
    assert_eq!(page2[0].figures.mailbox_len, 95);
    let (by_pid, _) = s.query(&query(SortKey::Pid, false, 10, 3), &ctx.get());
    assert_eq!(serials(&by_pid), [11, 12, 13]);
}

#[test]
fn the_default_order_puts_warnings_first_then_growth() {
    let s = sample(vec![
        test_row(1, 10, 50, 0),
        test_row(2, 5, 1, 0),
        test_row(3, 0, 900, 0),
    ]);
    let mut ctx = Ctx::new();
    ctx.warnings.insert(2, 1);
    let (page, _) = s.query(&query(SortKey::Default, true, 0, 3), &ctx.get());
    assert_eq!(serials(&page), [2, 3, 1]);
    assert_eq!(page[0].figures.warnings, 1);
}

#[test]
fn the_order_agrees_with_the_order_of_merged_wire_rows() {
    // An agent orders its sample; the entry node re-orders the wire rows of
    // every node with the same rule, and must get the same order.
    let rows: Vec<Row> = (1..=50)
        .map(|i| {
            test_row(
                i,
                (i * 13 % 17) as u32,
                (i % 5) as i32 - 2,
                (i * 3 % 7) as u32,
            )
        })
        .collect();
    let s = sample(rows);
    let ctx = Ctx::new();
    for key in [
        SortKey::Default,
        SortKey::MailboxLen,
        SortKey::MailboxGrowth,
        SortKey::MessageRate,
        SortKey::Pid,
    ] {
        for descending in [false, true] {
            let (page, _) = s.query(&query(key, descending, 0, 50), &ctx.get());
            let mut merged = page.clone();
            merged.reverse();
            merged.sort_by(|a, b| key.compare_dir(descending, &a.sort_fields(), &b.sort_fields()));
            assert_eq!(serials(&merged), serials(&page), "{key:?} {descending}");
        }
    }
}

#[test]
fn filters_by_name_mailbox_growth_and_system() {
    let mut rows = vec![
        test_row(1, 10, 0, 0),
        test_row(2, 500, 8, 0),
        test_row(3, 600, 0, 0),
    ];
    rows[2].tag |= SYSTEM;
    let s = sample(rows);
    let mut ctx = Ctx::new();
    ctx.names.insert(1, "chat_room".to_owned());
    let mut q = query(SortKey::Pid, false, 0, 10);
    q.filter.name_contains = Some("CHAT".into());
    assert_eq!(s.query(&q, &ctx.get()).1, 1);
    q.filter.name_contains = None;
    q.filter.min_mailbox_len = Some(100);
    assert_eq!(s.query(&q, &ctx.get()).1, 1);
    q.filter.include_system = true;
    assert_eq!(s.query(&q, &ctx.get()).1, 2);
    q.filter.min_mailbox_len = None;
    q.filter.min_growth_per_s = Some(5);
    let (page, total) = s.query(&q, &ctx.get());
    assert_eq!(
        total, 1,
        "the footer counts only what the growth filter keeps"
    );
    assert_eq!(serials(&page), [2]);
}

#[test]
fn a_wire_row_carries_the_sample_and_nothing_else() {
    let mut r = test_row(9, 40, -3, 12);
    r.tag |= status_bits(clustertop_runtime::ProcessStatus::Running) | RATED;
    r.cpu = 62; // 248 per mille
    r.oldest_ms = 1_500;
    r.util = 248; // 992 per mille
    r.polls_per_s = 31;
    r.memory = 4_096 / 16;
    let s = sample(vec![r]);
    let mut ctx = Ctx::new();
    ctx.names.insert(9, "store".to_owned());
    let row = s.process_row(&s.rows[0], &ctx.get());
    assert_eq!(
        row,
        ProcessRow {
            pid: PidRef {
                node: "a@host".into(),
                serial: 9,
                creation: 7,
            },
            name: Some("store".into()),
            behaviour: "Worker".into(),
            system: false,
            status: ProcessStatus::Running,
            figures: ProcessFigures {
                mailbox_len: 40,
                mailbox_growth_per_s: -3,
                oldest_message_age_us: Some(1_500_000),
                handled_per_s: 12,
                util_permille: 992,
                cpu_permille: 248,
                polls_per_s: 31,
                memory_bytes: 4_096,
                warnings: 0,
                rates_known: true,
            },
            beam: None,
        }
    );
}

#[tokio::test(start_paused = true)]
async fn a_process_has_rates_only_from_its_second_reading() {
    use clustertop_runtime::{ClockSource, Node, NodeConfig};
    use std::time::Duration;
    let node = Node::start(NodeConfig::new("age@localhost").clock(ClockSource::Tokio)).unwrap();
    // Spawned 1 ms before the sample, one message queued: growth over its
    // age would read 1,000 a second, a guess from one reading.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let p = node.spawn::<u8, _, _>(|mut ctx| async move {
        ctx.recv().await;
        tokio::time::sleep(Duration::from_secs(3600)).await;
    });
    p.send(1);
    p.send(2);
    tokio::time::sleep(Duration::from_millis(1)).await;
    let first = take(
        &node,
        &Sample::default(),
        Duration::from_secs(1),
        Duration::from_secs(60),
        0,
    );
    let row = *first.row(p.id().serial()).expect("sampled");
    assert!(!row.rated(), "{row:?}");
    assert_eq!((row.mailbox, row.growth, row.rate, row.util), (1, 0, 0, 0));
    // Its messages still count in the node's totals.
    assert!(first.messages_in_total >= 2, "{}", first.messages_in_total);

    // A second reading a second later: rates over that second.
    p.send(3);
    p.send(4);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = take(
        &node,
        &first,
        Duration::from_secs(1),
        Duration::from_secs(60),
        0,
    );
    let row = second.row(p.id().serial()).expect("sampled");
    assert!(row.rated(), "{row:?}");
    assert_eq!(row.growth, 2, "{row:?}");
    assert!(row.util_permille() >= 990, "{row:?}");
}

#[tokio::test(start_paused = true)]
async fn a_process_in_a_reused_slot_is_not_compared_with_the_one_before() {
    use clustertop_runtime::{ClockSource, ExitReason, Node, NodeConfig};
    use std::time::Duration;
    let node = Node::start(NodeConfig::new("slots@localhost").clock(ClockSource::Tokio)).unwrap();
    let spawn = |n: u8| {
        let p = node.spawn::<u8, _, _>(|_ctx| std::future::pending::<()>());
        for i in 0..n {
            p.send(i);
        }
        p
    };
    let a = spawn(50);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let first = take(
        &node,
        &Sample::default(),
        Duration::from_secs(1),
        Duration::from_secs(60),
        0,
    );
    assert_eq!(first.row(a.id().serial()).unwrap().mailbox, 50);
    // `a` exits and its record goes: the next process spawned in its
    // shard of the counter slab takes its slot. Spawn until one does.
    let slot = node.introspect().slot_of(a.id()).unwrap();
    let gone = a.id().serial();
    node.exit(a.id(), ExitReason::Kill);
    a.exited().await;
    drop(a);
    let mut b = spawn(0);
    while node.introspect().slot_of(b.id()) != Some(slot) {
        b = spawn(0);
    }
    b.send(1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let second = take(
        &node,
        &first,
        Duration::from_secs(1),
        Duration::from_secs(60),
        0,
    );
    let row = second.row(b.id().serial()).expect("sampled");
    // New, with its own figures: one message queued and no rate yet, not
    // 49 fewer than `a` held.
    assert_eq!(
        (row.mailbox, row.growth, row.rated()),
        (1, 0, false),
        "{row:?}"
    );
    assert!(second.row(gone).is_none(), "the exited process has no row");
}

#[test]
fn a_page_is_the_same_slice_of_the_whole_order_for_any_offset_and_limit() {
    // Few distinct values, so most comparisons are ties broken by serial;
    // some processes have warnings.
    let mut x = 0x9e37_79b9_7f4a_7c15u64;
    let mut next = |m: u64| {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x % m
    };
    let rows: Vec<Row> = (1..=2_000)
        .map(|i| test_row(i, next(4) as u32, next(5) as i32 - 2, next(3) as u32))
        .collect();
    let mut ctx = Ctx::new();
    for i in (1..=2_000).step_by(97) {
        ctx.warnings.insert(i, 1 + (i % 2) as u32);
    }
    let s = sample(rows);
    let c = ctx.get();
    for sort in [
        SortKey::Default,
        SortKey::MailboxLen,
        SortKey::MailboxGrowth,
        SortKey::MessageRate,
        SortKey::Pid,
    ] {
        for descending in [true, false] {
            let mut whole: Vec<&Row> = s.rows.iter().collect();
            whole
                .sort_by(|a, b| sort.compare_dir(descending, &c.sort_fields(a), &c.sort_fields(b)));
            let whole: Vec<u64> = whole.iter().map(|r| r.serial()).collect();
            for offset in [0u64, 7, 100, 1_990, 2_500] {
                for limit in [0u32, 1, 5, 50, 3_000] {
                    let (page, total) = s.query(&query(sort, descending, offset, limit), &c);
                    assert_eq!(total, 2_000);
                    let start = (offset as usize).min(whole.len());
                    let end = (start + limit as usize).min(whole.len());
                    assert_eq!(
                        serials(&page),
                        whole[start..end],
                        "{sort:?} descending={descending} offset={offset} limit={limit}"
                    );
                }
            }
        }
    }
}
