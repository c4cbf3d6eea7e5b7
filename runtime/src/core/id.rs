//! What names a process and what it may be sent: the untyped
//! [`ProcessId`] and the [`Message`] bound. Plain data at the bottom of the
//! core: every other file may name them, and they name nothing.

use std::fmt;

/// What a message must be: sendable across threads, and `Debug` so an
/// observer can render the head of a mailbox.
pub trait Message: Send + fmt::Debug + 'static {}
impl<T: Send + fmt::Debug + 'static> Message for T {}

/// The identity of a process: node index, serial number and node creation.
///
/// Displayed as OTP displays pids, `<node.serial.creation>`, where node `0`
/// is the local node. The creation changes on every node start, so an id
/// from an earlier incarnation never names a live process.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProcessId {
    pub(crate) node: u32,
    pub(crate) serial: u64,
    pub(crate) creation: u32,
}

impl ProcessId {
    /// "No process": the sender of a message sent from outside any process.
    pub(crate) const NONE: ProcessId = ProcessId {
        node: 0,
        serial: 0,
        creation: 0,
    };

    /// Index of the node in this node's node table; `0` is the local node.
    pub fn node_index(&self) -> u32 {
        self.node
    }

    /// Serial number, unique on its node incarnation.
    pub fn serial(&self) -> u64 {
        self.serial
    }

    /// Creation of the node incarnation the process belongs to.
    pub fn creation(&self) -> u32 {
        self.creation
    }
}

impl fmt::Display for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{}.{}.{}>", self.node, self.serial, self.creation)
    }
}

impl fmt::Debug for ProcessId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The behaviour name a type gives its processes: the last path segment
/// of its name, without generics (`Counter` for
/// `my_app::counter::Counter<u64>`).
pub(crate) fn short_type_name<T: ?Sized>() -> &'static str {
    let full = std::any::type_name::<T>();
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}
