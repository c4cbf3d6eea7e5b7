//! Links, monitors, group memberships and exit waiters of one process.
//!
//! Each process keeps its relations in one small vector behind its own lock.
//! Operations lock one process at a time (never two at once), so they cannot
//! deadlock. A race with an exiting peer can leave a stale entry behind; the
//! exit path skips entries whose peer is gone, so a stale entry costs only
//! its slot until the owner exits.

use super::{ProcessCore, ProcessDyn};
use crate::error::NoProcess;
use crate::exit_reason::ExitReason;
use crate::node::Node;
use crate::pid::ProcessId;
use crate::signal::{Down, MonitorRef, SystemMsg};
use crate::transport::{RemoteSignal, Unreachable};
use std::sync::Arc;
use std::task::Waker;
use tokio::sync::oneshot;

#[derive(Debug)]
pub(crate) enum Relation {
    Link(ProcessId),
    /// `watcher` monitors this process.
    MonitoredBy(MonitorRef, ProcessId),
    /// This process monitors `target`.
    Monitoring(MonitorRef, ProcessId),
    Group(Arc<str>),
    /// Holds this cluster-wide name.
    Global(Arc<str>),
    /// Someone outside the process model waits for the exit reason.
    Waiter(oneshot::Sender<ExitReason>),
}

#[derive(Debug, Default)]
pub(crate) struct Relations {
    /// A thin vector (one word; most processes have no relations, and
    /// the record's size is a product promise).
    pub(crate) items: thin_vec::ThinVec<Relation>,
    pub(crate) name: Option<Arc<str>>,
    pub(crate) waker: Option<Waker>,
    /// While alive: the reason a pending kill will exit with. Once
    /// `closed`: the exit reason.
    pub(crate) reason: Option<ExitReason>,
}

impl Relations {
    pub(crate) fn push(&mut self, r: Relation) {
        self.items.push(r);
    }

    pub(crate) fn has_link(&self, pid: ProcessId) -> bool {
        self.items
            .iter()
            .any(|r| matches!(r, Relation::Link(p) if *p == pid))
    }

    pub(crate) fn remove_link(&mut self, pid: ProcessId) {
        if let Some(i) = self
            .items
            .iter()
            .position(|r| matches!(r, Relation::Link(p) if *p == pid))
        {
            self.items.swap_remove(i);
        }
    }

    /// Removes this process's monitor `mref` (refs of its own monitors are
    /// unique: they come from its node's counter); returns the target.
    pub(crate) fn remove_monitoring(&mut self, mref: MonitorRef) -> Option<ProcessId> {
        let i = self
            .items
            .iter()
            .position(|r| matches!(r, Relation::Monitoring(m, _) if *m == mref))?;
        match self.items.swap_remove(i) {
            Relation::Monitoring(_, p) => Some(p),
            _ => None,
        }
    }

    /// Removes the monitor `mref` that `watcher` holds on this process
    /// (refs from different nodes may coincide, so the watcher is matched
    /// too).
    pub(crate) fn remove_monitored_by(&mut self, mref: MonitorRef, watcher: ProcessId) {
        if let Some(i) = self
            .items
            .iter()
            .position(|r| matches!(r, Relation::MonitoredBy(m, w) if *m == mref && *w == watcher))
        {
            self.items.swap_remove(i);
        }
    }

    pub(crate) fn count(&self) -> (usize, usize) {
        let mut links = 0;
        let mut monitors = 0;
        for r in &self.items {
            match r {
                Relation::Link(_) => links += 1,
                Relation::MonitoredBy(..) | Relation::Monitoring(..) => monitors += 1,
                _ => {}
            }
        }
        (links, monitors)
    }

    pub(crate) fn links(&self) -> Vec<ProcessId> {
        self.items
            .iter()
            .filter_map(|r| match r {
                Relation::Link(p) => Some(*p),
                _ => None,
            })
            .collect()
    }

    pub(crate) fn monitors(&self) -> (Vec<ProcessId>, Vec<ProcessId>) {
        let mut by = Vec::new();
        let mut of = Vec::new();
        for r in &self.items {
            match r {
                Relation::MonitoredBy(_, p) => by.push(*p),
                Relation::Monitoring(_, p) => of.push(*p),
                _ => {}
            }
        }
        (by, of)
    }
}

/// Links `me` and `target` both ways.
pub(crate) fn link(node: &Node, me: &dyn ProcessDyn, target: ProcessId) -> Result<(), NoProcess> {
    let my_id = me.core().id();
    if target == my_id {
        return Ok(());
    }
    if target.node != 0 {
        return link_remote(node, me, target);
    }
    let other = node.lookup(target).ok_or(NoProcess)?;
    {
        let mut rel = other.core().rel.lock();
        if other
            .core()
            .closed
            .load(std::sync::atomic::Ordering::Relaxed)
        {
            return Err(NoProcess);
        }
        if !rel.has_link(my_id) {
            rel.push(Relation::Link(my_id));
        }
    }
    let mut rel = me.core().rel.lock();
    if !rel.has_link(target) {
        rel.push(Relation::Link(target));
    }
    Ok(())
}

/// Links with a process on another node: this half now, the other half
/// by a `Link` frame. An unreachable node makes the link fire at once with
/// `noconnection`, as on the BEAM.
fn link_remote(node: &Node, me: &dyn ProcessDyn, target: ProcessId) -> Result<(), NoProcess> {
    let my_id = me.core().id();
    {
        let mut rel = me.core().rel.lock();
        if !rel.has_link(target) {
            rel.push(Relation::Link(target));
        }
    }
    let sent = match node.transport() {
        Some(t) => t.signal(RemoteSignal::Link {
            from: my_id.serial,
            to: target,
        }),
        None => Err(Unreachable::NoConnection),
    };
    if let Err(why) = sent {
        me.core().rel.lock().remove_link(target);
        super::deliver_exit(me, target, why.reason());
    }
    Ok(())
}

/// Removes the link between `me` and `target`, if any.
pub(crate) fn unlink(node: &Node, me: &ProcessCore, target: ProcessId) {
    me.rel.lock().remove_link(target);
    if target.node != 0 {
        if let Some(t) = node.transport() {
            let _ = t.signal(RemoteSignal::Unlink {
                from: me.id().serial,
                to: target,
            });
        }
        return;
    }
    if let Some(other) = node.lookup(target) {
        other.core().rel.lock().remove_link(me.id());
    }
}

/// `me` starts monitoring `target`. A dead target fires `DOWN` with
/// `noproc` at once.
pub(crate) fn monitor(node: &Node, me: &dyn ProcessDyn, target: ProcessId) -> MonitorRef {
    let mref = node.next_ref();
    let my_id = me.core().id();
    if target.node != 0 {
        me.core()
            .rel
            .lock()
            .push(Relation::Monitoring(mref, target));
        let sent = match node.transport() {
            Some(t) => t.signal(RemoteSignal::Monitor {
                from: my_id.serial,
                to: target,
                mref,
            }),
            None => Err(Unreachable::NoConnection),
        };
        if let Err(why) = sent {
            me.core().rel.lock().remove_monitoring(mref);
            me.push_system(SystemMsg::Down(Box::new(Down {
                monitor: mref,
                pid: target,
                reason: why.reason(),
            })));
        }
        return mref;
    }
    let added = node.lookup(target).is_some_and(|t| {
        let mut rel = t.core().rel.lock();
        if t.core().closed.load(std::sync::atomic::Ordering::Relaxed) {
            return false;
        }
        rel.push(Relation::MonitoredBy(mref, my_id));
        true
    });
    if added {
        me.core()
            .rel
            .lock()
            .push(Relation::Monitoring(mref, target));
    } else {
        me.push_system(SystemMsg::Down(Box::new(Down {
            monitor: mref,
            pid: target,
            reason: ExitReason::NoProc,
        })));
    }
    mref
}

/// Removes a monitor `me` holds. Returns whether it was active.
pub(crate) fn demonitor(node: &Node, me: &ProcessCore, mref: MonitorRef) -> bool {
    let Some(target) = me.rel.lock().remove_monitoring(mref) else {
        return false;
    };
    if target.node != 0 {
        if let Some(t) = node.transport() {
            let _ = t.signal(RemoteSignal::Demonitor {
                from: me.id().serial,
                to: target,
                mref,
            });
        }
        return true;
    }
    if let Some(t) = node.lookup(target) {
        t.core().rel.lock().remove_monitored_by(mref, me.id());
    }
    true
}

/// A receiver that yields the exit reason of `p` (at once if it has exited).
pub(crate) fn exit_waiter(p: &ProcessCore) -> oneshot::Receiver<ExitReason> {
    let (tx, rx) = oneshot::channel();
    let mut rel = p.rel.lock();
    if p.closed.load(std::sync::atomic::Ordering::Relaxed) {
        let reason = rel.reason.clone().unwrap_or(ExitReason::NoProc);
        drop(rel);
        let _ = tx.send(reason);
    } else {
        rel.push(Relation::Waiter(tx));
    }
    rx
}
