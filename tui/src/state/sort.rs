//! The sort columns of the process list, and their names.

use clustertop_proto::SortKey;

/// The sort columns, in the order `s` steps through them.
pub(crate) const SORTS: [SortKey; 10] = [
    SortKey::Default,
    SortKey::MailboxLen,
    SortKey::MailboxGrowth,
    SortKey::OldestMessage,
    SortKey::MessageRate,
    SortKey::Utilisation,
    SortKey::Cpu,
    SortKey::Memory,
    SortKey::Work,
    SortKey::Pid,
];

/// Whether a BEAM cluster's rows have the figure `key` sorts by (they
/// have no handled-message rate, utilisation, poll time or message age).
pub(super) fn beam_sorts(key: SortKey) -> bool {
    !matches!(
        key,
        SortKey::OldestMessage | SortKey::MessageRate | SortKey::Utilisation | SortKey::Cpu
    )
}

/// A sort column's name (`beam`: a BEAM cluster's, where the work is
/// reductions).
pub(crate) fn sort_label(key: SortKey, beam: bool) -> &'static str {
    match key {
        SortKey::Work if beam => "reductions/s",
        other => sort_name(other),
    }
}

/// A sort column's name.
pub(crate) fn sort_name(key: SortKey) -> &'static str {
    match key {
        SortKey::Default => "warnings, mailbox growth",
        SortKey::MailboxLen => "mailbox",
        SortKey::MailboxGrowth => "mailbox growth",
        SortKey::OldestMessage => "oldest message",
        SortKey::MessageRate => "msgs/s",
        SortKey::Utilisation => "utilisation",
        SortKey::Cpu => "cpu",
        SortKey::Memory => "memory",
        SortKey::Work => "polls/s",
        SortKey::Pid => "pid",
    }
}
