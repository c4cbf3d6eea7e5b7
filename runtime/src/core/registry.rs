//! Local names and process groups.
//!
//! A name maps to at most one live process and a process has at most one
//! name; the name is released when the process exits. Groups are sets of
//! processes under a name; a process leaves all its groups when it exits.
//! The maps themselves are in [`store`]; this module applies the rules,
//! holding a name or a group on the process's own record too, so that its
//! exit path releases them.

pub(crate) mod store;

use crate::error::{LookupError, RegistryError};
use crate::node::{Node, downcast};
use crate::pid::{Message, Pid, ProcessId};
use crate::process::{ProcessDyn, Relation};
use std::sync::Arc;

impl Node {
    /// Registers `pid` under `name` on this node.
    ///
    /// # Errors
    /// [`RegistryError::Taken`] if another process holds the name,
    /// [`RegistryError::AlreadyNamed`] if `pid` has a name already,
    /// [`RegistryError::NoProcess`] if `pid` is not alive.
    pub fn register(&self, name: &str, pid: ProcessId) -> Result<(), RegistryError> {
        let p = self.lookup(pid).ok_or(RegistryError::NoProcess)?;
        let mut rel = p.core().rel.lock();
        if p.core().closed.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(RegistryError::NoProcess);
        }
        if let Some(existing) = &rel.name {
            return Err(RegistryError::AlreadyNamed(existing.to_string()));
        }
        let mut names = self.registry().names.write();
        if let Some(holder) = names.get(name) {
            return Err(RegistryError::Taken {
                name: name.to_owned(),
                holder: holder.id,
            });
        }
        let name: Arc<str> = name.into();
        names.insert(
            name.clone(),
            store::Holder {
                id: pid,
                process: p.clone(),
            },
        );
        rel.name = Some(name);
        Ok(())
    }

    /// Removes the name.
    ///
    /// # Errors
    /// [`RegistryError::NotRegistered`] if no process holds it.
    pub fn unregister(&self, name: &str) -> Result<(), RegistryError> {
        let p = self
            .registry()
            .names
            .write()
            .remove(name)
            .ok_or_else(|| RegistryError::NotRegistered(name.to_owned()))?;
        let mut rel = p.process.core().rel.lock();
        if rel.name.as_deref() == Some(name) {
            rel.name = None;
        }
        Ok(())
    }

    pub(crate) fn registered_process(&self, name: &str) -> Option<Arc<dyn ProcessDyn>> {
        self.registry().holder(name).map(|h| h.process)
    }

    /// The process registered under `name`.
    pub fn whereis(&self, name: &str) -> Option<ProcessId> {
        self.registry().holder(name).map(|h| h.id)
    }

    /// A typed handle to the process registered under `name`.
    ///
    /// # Errors
    /// [`LookupError::NotRegistered`] or [`LookupError::WrongType`].
    pub fn whereis_pid<M: Message>(&self, name: &str) -> Result<Pid<M>, LookupError> {
        let p = self
            .registry()
            .holder(name)
            .ok_or_else(|| LookupError::NotRegistered(name.to_owned()))?;
        downcast(p.process)
    }

    /// Sends `msg` to the process registered under `name`.
    ///
    /// # Errors
    /// [`LookupError::NotRegistered`] if the name is free (the message is
    /// dropped), [`LookupError::WrongType`] if the process takes another type.
    pub fn send_named<M: Message>(&self, name: &str, msg: M) -> Result<(), LookupError> {
        self.whereis_pid::<M>(name)?.send(msg);
        Ok(())
    }

    fn announce_group(&self, group: &str, pid: ProcessId, joined: bool) {
        if let Some(t) = self.transport() {
            t.announce_group(group, pid, joined);
        }
    }
    /// Every (group, member) pair of this node's own processes.
    pub(crate) fn local_memberships(&self) -> Vec<(String, ProcessId)> {
        self.registry()
            .groups
            .read()
            .iter()
            .flat_map(|(g, members)| members.iter().map(move |p| (g.to_string(), *p)))
            .collect()
    }
    /// A local member left `group` (called by the exit path).
    pub(crate) fn member_exited(&self, group: &str, pid: ProcessId) {
        self.registry().leave_group(group, pid);
        self.announce_group(group, pid, false);
    }
}

impl Node {
    /// Process groups across the cluster (Erlang's `:pg`): a process joins
    /// a group by name, and every node sees the members of every node.
    pub fn groups(&self) -> Groups<'_> {
        Groups { node: self }
    }
}

/// Process groups across the cluster: Erlang's `:pg` (`join`, `leave`,
/// `get_members`, `get_local_members`), from [`Node::groups`]. A member
/// leaves its groups when it exits; a node's members leave with the node.
#[derive(Debug, Clone, Copy)]
pub struct Groups<'a> {
    pub(crate) node: &'a Node,
}

impl Groups<'_> {
    /// Adds `pid` to `group`. Joining twice is a no-op.
    ///
    /// # Errors
    /// [`RegistryError::NoProcess`] if `pid` is not alive.
    pub fn join(&self, group: &str, pid: ProcessId) -> Result<(), RegistryError> {
        let p = self.node.lookup(pid).ok_or(RegistryError::NoProcess)?;
        let mut rel = p.core().rel.lock();
        if p.core().closed.load(std::sync::atomic::Ordering::Relaxed) {
            return Err(RegistryError::NoProcess);
        }
        if rel
            .items
            .iter()
            .any(|r| matches!(r, Relation::Group(g) if &**g == group))
        {
            return Ok(());
        }
        let group: Arc<str> = group.into();
        rel.push(Relation::Group(group.clone()));
        drop(rel);
        self.node
            .registry()
            .groups
            .write()
            .entry(group.clone())
            .or_default()
            .push(pid);
        self.node.announce_group(&group, pid, true);
        Ok(())
    }

    /// Removes `pid` from `group`; a no-op if it is not a member.
    pub fn leave(&self, group: &str, pid: ProcessId) {
        if let Some(p) = self.node.lookup(pid) {
            p.core()
                .rel
                .lock()
                .items
                .retain(|r| !matches!(r, Relation::Group(g) if &**g == group));
        }
        if pid.node_index() == 0 {
            self.node.member_exited(group, pid);
        }
    }

    /// The members of `group` on every connected node: this node's first,
    /// in join order, then other nodes'.
    pub fn members(&self, group: &str) -> Vec<ProcessId> {
        let mut all = self.local_members(group);
        if let Some(t) = self.node.transport() {
            all.extend(t.remote_group_members(group));
        }
        all
    }

    /// The members of `group` on this node only.
    pub fn local_members(&self, group: &str) -> Vec<ProcessId> {
        self.node
            .registry()
            .groups
            .read()
            .get(group)
            .cloned()
            .unwrap_or_default()
    }

    /// The groups that have members on any connected node, sorted
    /// (`:pg.which_groups`).
    pub fn names(&self) -> Vec<String> {
        let mut all: Vec<String> = self
            .node
            .registry()
            .groups
            .read()
            .keys()
            .map(|g| g.to_string())
            .collect();
        if let Some(t) = self.node.transport() {
            all.extend(t.remote_groups());
        }
        all.sort();
        all.dedup();
        all
    }
}
