//! Sessions: the clients (hidden nodes' processes) that opened one with
//! `Hello`. A request from anyone else is refused; a client's session ends
//! when its node goes down.
//!
//! # Cost
//! One short lock per request (a set lookup).

use clustertop_runtime::ProcessId;
use parking_lot::Mutex;
use std::collections::HashSet;

/// The clients with an open session.
#[derive(Debug, Default)]
pub(crate) struct Sessions {
    open: Mutex<HashSet<ProcessId>>,
}

impl Sessions {
    /// `client` said Hello.
    pub(crate) fn open(&self, client: ProcessId) {
        self.open.lock().insert(client);
    }

    /// Whether `client` has an open session.
    pub(crate) fn is_open(&self, client: ProcessId) -> bool {
        self.open.lock().contains(&client)
    }

    /// Ends the sessions of every client for which `gone` holds.
    pub(crate) fn close_where(&self, gone: impl Fn(ProcessId) -> bool) {
        self.open.lock().retain(|id| !gone(*id));
    }
}
