//! Processes: rows, pages, detail and supervision trees.

use serde::{Deserialize, Serialize};

/// A process anywhere in the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct PidRef {
    /// The node it lives on.
    pub node: String,
    /// Its serial on that node.
    pub serial: u64,
    /// The node incarnation it belongs to.
    pub creation: u32,
}

/// What a process is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProcessStatus {
    /// Waiting for a message, a timer or a reply.
    Waiting,
    /// Being run.
    Running,
    /// Exiting.
    Exiting,
}

/// One process at one sampling instant: every figure comes from the same
/// sample of the agent, so a row is consistent with itself and with the
/// page it is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessRow {
    /// The process.
    pub pid: PidRef,
    /// Its registered name.
    pub name: Option<String>,
    /// Behaviour or type name.
    pub behaviour: String,
    /// A system process (the agent's own, for example).
    pub system: bool,
    /// Running, waiting or exiting.
    pub status: ProcessStatus,
    /// Its figures over the agent's last sampling interval (on the wire
    /// and in JSON, in line with the fields above).
    pub figures: ProcessFigures,
    /// A BEAM process's own figures (`None` for ours).
    pub beam: Option<crate::BeamProcess>,
}

/// A process's figures at one sample: what the process list shows and a
/// [`SortKey`] ranks by. Part of every [`ProcessRow`] (its fields follow
/// the row's own on the wire and in JSON), and built once from an agent's
/// compact sample row, which it ranks without building the whole row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessFigures {
    /// Messages queued (gauge).
    pub mailbox_len: u64,
    /// Mailbox growth over the agent's last sampling interval, in messages
    /// per second (negative when draining).
    pub mailbox_growth_per_s: i64,
    /// How long the oldest queued message has waited, in microseconds.
    pub oldest_message_age_us: Option<u64>,
    /// Messages handled per second over the agent's last sampling interval
    /// (the rate processes are ranked by).
    pub handled_per_s: u64,
    /// Utilisation: the share of the agent's last sampling interval the
    /// process spent running or suspended inside a handler (from taking a
    /// message until it next found its mailbox empty), awaits included, in
    /// per mille (0–1000). Near 1000 it cannot keep up.
    pub util_permille: u16,
    /// The share of the interval it spent on a scheduler thread running
    /// its code (poll time), in per mille of one thread (0–1000).
    pub cpu_permille: u16,
    /// Polls per second over the interval: turns on a scheduler thread,
    /// the runtime's measure of work done (the BEAM's reductions play this
    /// part there).
    pub polls_per_s: u64,
    /// Bytes the runtime holds for it at the sample: its record, its
    /// body's state and its queued messages at their in-memory size, plus
    /// the heap the queued messages own where the process declares it (a
    /// message sizer); heap data its state points to is not counted.
    pub memory_bytes: u64,
    /// Number of active warnings about it.
    pub warnings: u32,
    /// Whether the rates and shares above (growth, handled, utilisation,
    /// CPU, polls) were measured between two readings of the process.
    /// `false` for a process first seen at this sample: they are 0 and mean
    /// "not known yet", and a view shows nothing for them.
    pub rates_known: bool,
}

/// How to order a process list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SortKey {
    /// Warnings first, then mailbox growth (the default view).
    Default,
    /// Queued messages.
    MailboxLen,
    /// Mailbox growth per second.
    MailboxGrowth,
    /// Oldest message age.
    OldestMessage,
    /// Messages handled per second over the last interval.
    MessageRate,
    /// Utilisation over the last interval.
    Utilisation,
    /// Poll-time (CPU) share over the last interval.
    Cpu,
    /// Polls per second over the last interval (for a BEAM process, its
    /// reductions per second).
    Work,
    /// Memory held.
    Memory,
    /// Pid.
    Pid,
}

/// What a [`SortKey`] orders processes by: their figures, and their node
/// and serial for ties. Agents order their compact samples and merged
/// [`ProcessRow`]s through it, so every list is ranked by one rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortFields<'a> {
    /// The figures (for a BEAM process, `polls_per_s` holds its
    /// reductions per second, its measure of work).
    pub figures: ProcessFigures,
    /// The node the process lives on.
    pub node: &'a str,
    /// Its serial there.
    pub serial: u64,
}

impl SortKey {
    /// Ascending order of `a` and `b` by this key; ties (and
    /// [`SortKey::Pid`]) go by node, then serial, so pages are stable.
    pub fn compare(self, x: &SortFields<'_>, y: &SortFields<'_>) -> std::cmp::Ordering {
        let (a, b) = (&x.figures, &y.figures);
        let by = match self {
            SortKey::Default => a
                .warnings
                .cmp(&b.warnings)
                .then(a.mailbox_growth_per_s.cmp(&b.mailbox_growth_per_s))
                .then(a.mailbox_len.cmp(&b.mailbox_len)),
            SortKey::MailboxLen => a.mailbox_len.cmp(&b.mailbox_len),
            SortKey::MailboxGrowth => a.mailbox_growth_per_s.cmp(&b.mailbox_growth_per_s),
            SortKey::OldestMessage => a.oldest_message_age_us.cmp(&b.oldest_message_age_us),
            SortKey::MessageRate => a.handled_per_s.cmp(&b.handled_per_s),
            SortKey::Utilisation => a.util_permille.cmp(&b.util_permille),
            SortKey::Cpu => a.cpu_permille.cmp(&b.cpu_permille),
            SortKey::Work => a.polls_per_s.cmp(&b.polls_per_s),
            SortKey::Memory => a.memory_bytes.cmp(&b.memory_bytes),
            SortKey::Pid => std::cmp::Ordering::Equal,
        };
        by.then_with(|| (x.node, x.serial).cmp(&(y.node, y.serial)))
    }

    /// [`SortKey::compare`], reversed when `descending`.
    pub fn compare_dir(
        self,
        descending: bool,
        a: &SortFields<'_>,
        b: &SortFields<'_>,
    ) -> std::cmp::Ordering {
        let o = self.compare(a, b);
        if descending { o.reverse() } else { o }
    }
}

impl ProcessRow {
    /// What a [`SortKey`] looks at in this row.
    pub fn sort_fields(&self) -> SortFields<'_> {
        let mut figures = self.figures;
        // The BEAM's measure of work is its reductions.
        if let Some(b) = &self.beam {
            figures.polls_per_s = b.reductions_per_s;
        }
        SortFields {
            figures,
            node: &self.pid.node,
            serial: self.pid.serial,
        }
    }
}

/// Which processes a list includes.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessFilter {
    /// Only processes of this node.
    pub node: Option<String>,
    /// Only names or behaviours containing this text.
    pub name_contains: Option<String>,
    /// Only processes with at least this many queued messages.
    pub min_mailbox_len: Option<u64>,
    /// Only processes whose mailbox grew faster than this, in messages per
    /// second over the last sampling interval.
    pub min_growth_per_s: Option<i64>,
    /// Include system processes.
    pub include_system: bool,
}

impl ProcessFilter {
    /// Whether `row` passes this filter (its node filter included): the
    /// rule every source applies to full rows.
    pub fn admits(&self, row: &ProcessRow) -> bool {
        let needle = self.name_contains.as_deref().map(str::to_lowercase);
        self.node.as_deref().is_none_or(|n| row.pid.node == n)
            && (self.include_system || !row.system)
            && self
                .min_mailbox_len
                .is_none_or(|m| row.figures.mailbox_len >= m)
            && self
                .min_growth_per_s
                .is_none_or(|g| row.figures.mailbox_growth_per_s > g)
            && needle.is_none_or(|n| {
                row.behaviour.to_lowercase().contains(&n)
                    || row
                        .name
                        .as_deref()
                        .is_some_and(|name| name.to_lowercase().contains(&n))
            })
    }
}

/// A request for a page of processes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessQuery {
    /// Which processes.
    pub filter: ProcessFilter,
    /// Their order.
    pub sort: SortKey,
    /// Largest first (for [`SortKey::Pid`]: highest serial first). The
    /// default ranking wants `true`.
    pub descending: bool,
    /// Rows to skip.
    pub offset: u64,
    /// At most this many rows.
    pub limit: u32,
}

/// A page of processes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessPage {
    /// The rows.
    pub rows: Vec<ProcessRow>,
    /// How many processes match the filter in all (for the scroll bar).
    pub total_matching: u64,
    /// When the rows were sampled, in milliseconds since the Unix epoch.
    pub sampled_at_unix_ms: u64,
}

/// A process's lifetime counters, read when its detail was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ProcessTotals {
    /// Messages received since spawn (counter).
    pub received_total: u64,
    /// Messages handled since spawn (counter).
    pub handled_total: u64,
    /// Messages sent since spawn (counter).
    pub sent_total: u64,
    /// Time spent on a scheduler thread since spawn, in microseconds
    /// (counter); [`ProcessRow::cpu_permille`] is its rate.
    pub cpu_us_total: u64,
    /// Time spent running or suspended inside a handler since spawn, in
    /// microseconds (counter); [`ProcessRow::util_permille`] is its rate.
    pub util_us_total: u64,
    /// Polls since spawn (counter).
    pub polls_total: u64,
}

/// Everything about one process.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessDetail {
    /// The summary row, from the agent's last sample.
    pub row: ProcessRow,
    /// Lifetime counters, read at the request (newer than the row).
    pub totals: ProcessTotals,
    /// Processes it is linked to.
    pub links: Vec<PidRef>,
    /// Processes monitoring it.
    pub monitored_by: Vec<PidRef>,
    /// Processes it monitors.
    pub monitoring: Vec<PidRef>,
    /// Its supervisors, nearest first (names where registered).
    pub supervisor_path: Vec<PidRef>,
    /// The first queued messages rendered with `Debug`, oldest first.
    pub mailbox_head: Vec<String>,
    /// The processes that sent most of its recent messages, with their
    /// share in percent, when the agent tracks them.
    pub top_senders: Vec<(PidRef, u8)>,
    /// Handling time percentiles of its behaviour on its node.
    pub handling_time: Option<crate::metrics::Percentiles>,
    /// When it was spawned, in milliseconds since the Unix epoch.
    pub spawned_at_unix_ms: u64,
    /// Whether it traps exits.
    pub trap_exit: bool,
    /// What it is doing, read at the request (`None` for a BEAM process,
    /// whose own status is in `beam`).
    pub activity: Option<Activity>,
    /// The registered (or global) names of the processes named above
    /// (supervisors, links, monitors, senders), where the answering node
    /// knows them.
    pub names: Vec<(PidRef, String)>,
    /// A BEAM process's own figures (`None` for ours).
    pub beam: Option<crate::BeamProcessDetail>,
}

/// What a process is doing at one instant. A process is *in a handler*
/// from taking a message out of its mailbox until it next asks for one and
/// finds none (the time its utilisation counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activity {
    /// Waiting for a message, with none to handle; `for_us` since it last
    /// ran.
    Idle {
        /// Microseconds since it last ran.
        for_us: u64,
    },
    /// On a scheduler thread now.
    Running {
        /// Microseconds since its current callback began, for a GenServer
        /// inside one.
        handling_for_us: Option<u64>,
    },
    /// Inside a handler, suspended on an await inside it (a call, a
    /// timer, I/O).
    Awaiting {
        /// Microseconds since its current callback began, for a GenServer
        /// (`None` for a process that takes its own messages).
        handling_for_us: Option<u64>,
    },
    /// Its exit path is running.
    Exiting,
}

/// One node of a supervision tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeNode {
    /// The process.
    pub pid: PidRef,
    /// Its registered name.
    pub name: Option<String>,
    /// Behaviour or type name.
    pub behaviour: String,
    /// Whether it is a supervisor.
    pub supervisor: bool,
    /// A supervisor's strategy: `one_for_one`, `one_for_all` or
    /// `rest_for_one`.
    pub strategy: Option<String>,
    /// A supervisor's restarts within its period, against its limit.
    pub restarts: Option<RestartIntensity>,
    /// A child's id in its supervisor.
    pub child_id: Option<String>,
    /// How the previous child in this child's place exited (what made its
    /// supervisor start this one).
    pub last_exit: Option<ExitSummary>,
    /// Its children, in start order.
    pub children: Vec<TreeNode>,
}

/// A supervisor's restarts against its intensity: `restarts 3/5 in 5s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestartIntensity {
    /// Restarts within the last period.
    pub recent: u32,
    /// At most this many within the period, or the supervisor gives up.
    pub max: u32,
    /// The period, in milliseconds.
    pub period_ms: u64,
    /// Restarts since the supervisor started (counter).
    pub total: u64,
}

/// How a process exited.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExitSummary {
    /// Its exit reason, as the runtime prints it.
    pub reason: String,
    /// Whether that is a crash (not `normal` or `shutdown`).
    pub crashed: bool,
    /// When, in milliseconds since the Unix epoch.
    pub at_unix_ms: u64,
}

/// The supervision trees of one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisionTree {
    /// The node.
    pub node: String,
    /// Its top-level supervisors.
    pub roots: Vec<TreeNode>,
    /// Processes outside every tree (not supervised, not system), the
    /// first ones by serial (at most 1,000)...
    pub unsupervised: Vec<TreeNode>,
    /// ...of this many.
    pub unsupervised_total: u64,
}

/// The first queued messages of one process, read only when asked:
/// reading a BEAM process's queue copies the whole queue on its node, so
/// a view asks for it on a key, never on every refresh. Answered with
/// [`MailboxPeek`]. Since version 6.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeekMailbox {
    /// The process.
    pub pid: PidRef,
    /// At most this many messages (capped at [`PeekMailbox::MAX`]).
    pub limit: u32,
}

impl PeekMailbox {
    /// The most messages one peek returns.
    pub const MAX: u32 = 100;
}

/// The head of a process's mailbox.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct MailboxPeek {
    /// The first queued messages, oldest first, printed (each cut to a
    /// few hundred characters).
    pub messages: Vec<String>,
    /// Messages queued when they were read.
    pub queued: u64,
    /// What reading them cost, or why fewer (or none) were read.
    pub note: Option<String>,
}
