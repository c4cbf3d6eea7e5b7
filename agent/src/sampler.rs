//! The sampler: reads the node's process table at an interval and turns
//! the runtime's monotonic counters into rates and rankings.
//!
//! # Cost
//! One pass over the process table (relaxed loads per process, a mailbox
//! head peek only for non-empty mailboxes) into a compact row of 40 bytes
//! per process, a sort by serial, and a merge with the previous sample to
//! take differences. Names (a lock per process) are read only for the rows
//! a request returns. At one million processes that is 40 MB for a sample
//! (80 MB for the moment the new one is built beside the old); see
//! bench/README.md for the measured time.
//!
//! Node-wide message totals are the sums of per-process differences, so
//! they only grow; what a process receives after the last sample before it
//! exits is not counted.

use clustertop_proto::{PidRef, ProcessFilter, ProcessQuery, ProcessStatus, SortKey};
use clustertop_runtime::{Node, ProcessId};
use std::collections::HashMap;
use std::time::Duration;

/// `bits` layout of a [`Row`]: busy per mille in the low 10 bits.
const BUSY_MASK: u16 = 0x3ff;
const SYSTEM: u16 = 1 << 10;
const NO_OLDEST: u32 = u32::MAX;

/// One process in one sample.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Row {
    pub(crate) serial: u64,
    recv_lo: u32,
    sent_lo: u32,
    busy_us_lo: u32,
    pub(crate) mailbox: u32,
    /// Messages per second, negative when draining.
    pub(crate) growth: i32,
    /// Messages handled per second.
    pub(crate) rate: u32,
    oldest_ms: u32,
    pub(crate) behaviour: u16,
    bits: u16,
}

const _: () = assert!(std::mem::size_of::<Row>() == 40);

impl Row {
    pub(crate) fn busy_permille(&self) -> u16 {
        self.bits & BUSY_MASK
    }
    pub(crate) fn system(&self) -> bool {
        self.bits & SYSTEM != 0
    }
    pub(crate) fn oldest_ms(&self) -> Option<u32> {
        (self.oldest_ms != NO_OLDEST).then_some(self.oldest_ms)
    }
}

/// A process whose handler has been running for a while (a candidate for
/// the long-handler warning).
#[derive(Debug, Clone, Copy)]
pub(crate) struct LongHandler {
    pub(crate) serial: u64,
    pub(crate) running: Duration,
}

/// One reading of the process table.
#[derive(Debug, Default)]
pub(crate) struct Sample {
    /// Sorted by serial.
    pub(crate) rows: Vec<Row>,
    /// Behaviour names, indexed by `Row::behaviour`.
    pub(crate) behaviours: Vec<&'static str>,
    /// Handlers running longer than the configured limit.
    pub(crate) long_handlers: Vec<LongHandler>,
    /// Messages received by the node's processes (monotonic).
    pub(crate) messages_in_total: u64,
    /// Messages sent by the node's processes (monotonic).
    pub(crate) messages_out_total: u64,
    /// When taken, ms since the Unix epoch.
    pub(crate) at_unix_ms: u64,
}

/// Reads the process table. `interval` is the time since `prev` was taken
/// (for rates); `long_handler` the threshold for [`LongHandler`]s.
pub(crate) fn take(
    node: &Node,
    prev: &Sample,
    interval: Duration,
    long_handler: Duration,
    at_unix_ms: u64,
) -> Sample {
    let mut behaviours: Vec<&'static str> = prev.behaviours.clone();
    let mut index: HashMap<usize, u16> = behaviours
        .iter()
        .enumerate()
        .map(|(i, b)| (b.as_ptr() as usize, i as u16))
        .collect();
    let mut rows = Vec::with_capacity(node.process_count() + node.process_count() / 16 + 16);
    let mut long_handlers = Vec::new();
    node.for_each_process(|p| {
        let name = p.behaviour();
        let behaviour = *index.entry(name.as_ptr() as usize).or_insert_with(|| {
            behaviours.push(name);
            (behaviours.len() - 1).min(u16::MAX as usize) as u16
        });
        if let Some(running) = p.handling_for() {
            if running >= long_handler {
                long_handlers.push(LongHandler {
                    serial: p.id().serial(),
                    running,
                });
            }
        }
        rows.push(Row {
            serial: p.id().serial(),
            recv_lo: p.received() as u32,
            sent_lo: p.sent() as u32,
            busy_us_lo: p.busy().as_micros() as u32,
            mailbox: p.mailbox_len().min(u64::from(u32::MAX)) as u32,
            growth: 0,
            rate: 0,
            oldest_ms: p.oldest_message_age().map_or(NO_OLDEST, |a| {
                a.as_millis().min(u128::from(NO_OLDEST - 1)) as u32
            }),
            behaviour,
            bits: if p.is_system() { SYSTEM } else { 0 },
        });
    });
    rows.sort_unstable_by_key(|r| r.serial);
    let secs = interval.as_secs_f64().max(1e-3);
    let (mut msgs_in, mut msgs_out) = (prev.messages_in_total, prev.messages_out_total);
    let mut old = prev.rows.iter().peekable();
    for row in &mut rows {
        while old.next_if(|o| o.serial < row.serial).is_some() {}
        let before = old.next_if(|o| o.serial == row.serial);
        let (recv, sent, busy_us, mailbox) = match before {
            Some(o) => (
                row.recv_lo.wrapping_sub(o.recv_lo),
                row.sent_lo.wrapping_sub(o.sent_lo),
                row.busy_us_lo.wrapping_sub(o.busy_us_lo),
                i64::from(o.mailbox),
            ),
            // New since the last sample: everything it did counts.
            None => (row.recv_lo, row.sent_lo, 0, 0),
        };
        msgs_in += u64::from(recv);
        msgs_out += u64::from(sent);
        let growth = i64::from(row.mailbox) - mailbox;
        let handled = (i64::from(recv) - growth).max(0);
        row.growth = (growth as f64 / secs).round() as i32;
        row.rate = (handled as f64 / secs).round() as u32;
        let busy = ((f64::from(busy_us) / 1e6 / secs) * 1000.0).round() as u16;
        row.bits |= busy.min(1000);
    }
    Sample {
        rows,
        behaviours,
        long_handlers,
        messages_in_total: msgs_in,
        messages_out_total: msgs_out,
        at_unix_ms,
    }
}

impl Sample {
    /// The row of `serial`, if it was alive at the sample.
    pub(crate) fn row(&self, serial: u64) -> Option<&Row> {
        self.rows
            .binary_search_by_key(&serial, |r| r.serial)
            .ok()
            .map(|i| &self.rows[i])
    }

    /// A page of rows for `query` (its node filter already applied by the
    /// caller), with `warnings(serial)` giving each row's warning count,
    /// and the number of rows matching in all.
    pub(crate) fn query(
        &self,
        query: &ProcessQuery,
        names: &HashMap<u64, String>,
        warnings: &dyn Fn(u64) -> u32,
    ) -> (Vec<Row>, u64) {
        let f = &query.filter;
        let needle = f.name_contains.as_deref().map(str::to_lowercase);
        let behaviour_hits: Vec<bool> = self
            .behaviours
            .iter()
            .map(|b| {
                needle
                    .as_deref()
                    .is_none_or(|n| b.to_lowercase().contains(n))
            })
            .collect();
        let mut hits: Vec<&Row> = self
            .rows
            .iter()
            .filter(|r| matches(r, f, &behaviour_hits, needle.as_deref(), names))
            .collect();
        let total = hits.len() as u64;
        let want = (query.offset.saturating_add(u64::from(query.limit))).min(total) as usize;
        let cmp = |a: &&Row, b: &&Row| {
            let ord = order(a, b, query.sort, warnings);
            if query.descending { ord.reverse() } else { ord }
        };
        if want == 0 {
            return (Vec::new(), total);
        }
        if want < hits.len() {
            hits.select_nth_unstable_by(want - 1, cmp);
            hits.truncate(want);
        }
        hits.sort_unstable_by(cmp);
        let page = hits
            .into_iter()
            .skip(query.offset as usize)
            .copied()
            .collect();
        (page, total)
    }
}

fn matches(
    r: &Row,
    f: &ProcessFilter,
    behaviour_hits: &[bool],
    needle: Option<&str>,
    names: &HashMap<u64, String>,
) -> bool {
    (f.include_system || !r.system())
        && f.min_mailbox_len.is_none_or(|m| u64::from(r.mailbox) >= m)
        && (behaviour_hits[r.behaviour as usize]
            || needle.is_some_and(|n| {
                names
                    .get(&r.serial)
                    .is_some_and(|name| name.to_lowercase().contains(n))
            }))
}

/// Ascending order by `key` (ties broken by serial, so pages are stable).
pub(crate) fn order(
    a: &Row,
    b: &Row,
    key: SortKey,
    warnings: &dyn Fn(u64) -> u32,
) -> std::cmp::Ordering {
    let by = match key {
        SortKey::Default => warnings(a.serial)
            .cmp(&warnings(b.serial))
            .then(a.growth.cmp(&b.growth))
            .then(a.mailbox.cmp(&b.mailbox)),
        SortKey::MailboxLen => a.mailbox.cmp(&b.mailbox),
        SortKey::MailboxGrowth => a.growth.cmp(&b.growth),
        SortKey::OldestMessage => a.oldest_ms().cmp(&b.oldest_ms()),
        SortKey::MessageRate => a.rate.cmp(&b.rate),
        SortKey::Busy => a.busy_permille().cmp(&b.busy_permille()),
        SortKey::Pid => std::cmp::Ordering::Equal,
    };
    // Ties: lower serial first in ascending order.
    by.then(b.serial.cmp(&a.serial).reverse())
}

/// The wire form of a process id of `node`.
pub(crate) fn pid_ref(node: &Node, id: ProcessId) -> PidRef {
    PidRef {
        node: node.node_of(id).unwrap_or_else(|| node.name().to_owned()),
        serial: id.serial(),
        creation: id.creation(),
    }
}

/// The wire form of a process status.
pub(crate) fn status(s: clustertop_runtime::ProcessStatus) -> ProcessStatus {
    match s {
        clustertop_runtime::ProcessStatus::Running => ProcessStatus::Running,
        clustertop_runtime::ProcessStatus::Exiting => ProcessStatus::Exiting,
        _ => ProcessStatus::Waiting,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(serial: u64, mailbox: u32, growth: i32, rate: u32) -> Row {
        Row {
            serial,
            recv_lo: 0,
            sent_lo: 0,
            busy_us_lo: 0,
            mailbox,
            growth,
            rate,
            oldest_ms: NO_OLDEST,
            behaviour: 0,
            bits: 0,
        }
    }

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

    #[test]
    fn pages_follow_the_sort_and_count_every_match() {
        let s = sample(
            (1..=100)
                .map(|i| row(i, (i * 7 % 101) as u32, 0, 0))
                .collect(),
        );
        let none = |_| 0;
        let (page, total) = s.query(
            &query(SortKey::MailboxLen, true, 0, 5),
            &HashMap::new(),
            &none,
        );
        assert_eq!(total, 100);
        let boxes: Vec<u32> = page.iter().map(|r| r.mailbox).collect();
        assert_eq!(boxes, [100, 99, 98, 97, 96]);
        let (page2, _) = s.query(
            &query(SortKey::MailboxLen, true, 5, 5),
            &HashMap::new(),
            &none,
        );
        assert_eq!(page2[0].mailbox, 95);
        let (by_pid, _) = s.query(&query(SortKey::Pid, false, 10, 3), &HashMap::new(), &none);
        let serials: Vec<u64> = by_pid.iter().map(|r| r.serial).collect();
        assert_eq!(serials, [11, 12, 13]);
    }

    #[test]
    fn the_default_order_puts_warnings_first_then_growth() {
        let s = sample(vec![row(1, 10, 50, 0), row(2, 5, 1, 0), row(3, 0, 900, 0)]);
        let warned = |serial| u32::from(serial == 2);
        let (page, _) = s.query(
            &query(SortKey::Default, true, 0, 3),
            &HashMap::new(),
            &warned,
        );
        let serials: Vec<u64> = page.iter().map(|r| r.serial).collect();
        assert_eq!(serials, [2, 3, 1]);
    }

    #[test]
    fn filters_by_name_mailbox_and_system() {
        let mut rows = vec![row(1, 10, 0, 0), row(2, 500, 0, 0), row(3, 600, 0, 0)];
        rows[2].bits |= SYSTEM;
        let s = sample(rows);
        let names = HashMap::from([(1, "chat_room".to_owned())]);
        let mut q = query(SortKey::Pid, false, 0, 10);
        q.filter.name_contains = Some("CHAT".into());
        assert_eq!(s.query(&q, &names, &|_| 0).1, 1);
        q.filter.name_contains = None;
        q.filter.min_mailbox_len = Some(100);
        assert_eq!(s.query(&q, &names, &|_| 0).1, 1);
        q.filter.include_system = true;
        assert_eq!(s.query(&q, &names, &|_| 0).1, 2);
    }
}
