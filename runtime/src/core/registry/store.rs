//! The registry's own state: names and groups, over the processes'
//! type-erased record `P` (the node's is `dyn ProcessDyn`). It stores and
//! hands out records and never looks inside one, so it stands below the
//! process module; the rules (a process has one name, a name is released
//! when its holder exits) are applied by the registry's API above it.
//!
//! Both maps live behind read-write locks: lookups take a read lock,
//! changes a write lock; neither is on the path of a send to a `Pid`.

use crate::id::ProcessId;
use parking_lot::RwLock;
use std::collections::HashMap;
use std::sync::Arc;

/// A name's holder: its id and its record.
pub(crate) struct Holder<P: ?Sized> {
    pub(crate) id: ProcessId,
    pub(crate) process: Arc<P>,
}

impl<P: ?Sized> Clone for Holder<P> {
    fn clone(&self) -> Self {
        Holder {
            id: self.id,
            process: self.process.clone(),
        }
    }
}

/// Names and groups of one node.
pub(crate) struct Registry<P: ?Sized> {
    pub(crate) names: RwLock<HashMap<Arc<str>, Holder<P>>>,
    pub(crate) groups: RwLock<HashMap<Arc<str>, Vec<ProcessId>>>,
}

impl<P: ?Sized> Default for Registry<P> {
    fn default() -> Self {
        Registry {
            names: RwLock::default(),
            groups: RwLock::default(),
        }
    }
}

impl<P: ?Sized> std::fmt::Debug for Registry<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("names", &self.names.read().len())
            .field("groups", &self.groups.read().len())
            .finish()
    }
}

impl<P: ?Sized> Registry<P> {
    /// Every registered name and its holder.
    pub(crate) fn names(&self) -> Vec<(String, ProcessId)> {
        self.names
            .read()
            .iter()
            .map(|(n, h)| (n.to_string(), h.id))
            .collect()
    }

    /// The record registered under `name`.
    pub(crate) fn holder(&self, name: &str) -> Option<Holder<P>> {
        self.names.read().get(name).cloned()
    }

    /// Frees `name` if `pid` still holds it.
    pub(crate) fn release_name(&self, name: &Arc<str>, pid: ProcessId) {
        let mut names = self.names.write();
        if names.get(name).is_some_and(|h| h.id == pid) {
            names.remove(name);
        }
    }

    /// Removes `pid` from `group`; the group goes with its last member.
    pub(crate) fn leave_group(&self, group: &str, pid: ProcessId) {
        let mut groups = self.groups.write();
        if let Some(members) = groups.get_mut(group) {
            members.retain(|p| *p != pid);
            if members.is_empty() {
                groups.remove(group);
            }
        }
    }
}
