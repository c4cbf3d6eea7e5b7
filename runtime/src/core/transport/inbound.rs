//! What the distribution layer hands a local process: the signals of
//! processes on other nodes, applied here by the core's own rules of links,
//! monitors and global names. The layer decodes a frame, finds the local
//! process, and calls one of these; it never edits a process's relations
//! or delivers an exit itself.
//!
//! # Cost
//! Each takes the process's relations lock once (never two processes'
//! locks at once), and a lost node's relations are split off in one pass.

use crate::exit_reason::ExitReason;
use crate::id::ProcessId;
use crate::process::{ProcessCore, ProcessDyn, Relation, deliver_exit};
use crate::signal::{Down, MonitorRef, SystemMsg};
use std::sync::atomic::Ordering::Relaxed;

/// `remote` links to `p`. Returns `false` if `p` is exiting (the caller
/// answers with a `noproc` exit).
pub(crate) fn link(p: &dyn ProcessDyn, remote: ProcessId) -> bool {
    let mut rel = p.core().rel.lock();
    if p.core().closed.load(Relaxed) {
        return false;
    }
    if !rel.has_link(remote) {
        rel.push(Relation::Link(remote));
    }
    true
}

/// `remote` unlinked from `p`.
pub(crate) fn unlink(p: &dyn ProcessDyn, remote: ProcessId) {
    p.core().rel.lock().remove_link(remote);
}

/// An exit signal from `remote`; through a link (`link`), void if `p` has
/// unlinked meanwhile.
pub(crate) fn exit(p: &dyn ProcessDyn, remote: ProcessId, reason: ExitReason, link: bool) {
    if link {
        let mut rel = p.core().rel.lock();
        if !rel.has_link(remote) {
            return;
        }
        rel.remove_link(remote);
    }
    deliver_exit(p, remote, reason);
}

/// `watcher` monitors `p` as `mref`. Returns `false` if `p` is exiting
/// (the caller answers with a `noproc` `DOWN`).
pub(crate) fn monitor(p: &dyn ProcessDyn, mref: MonitorRef, watcher: ProcessId) -> bool {
    let mut rel = p.core().rel.lock();
    if p.core().closed.load(Relaxed) {
        return false;
    }
    rel.push(Relation::MonitoredBy(mref, watcher));
    true
}

/// `watcher` dropped its monitor `mref` of `p`.
pub(crate) fn demonitor(p: &dyn ProcessDyn, mref: MonitorRef, watcher: ProcessId) {
    p.core().rel.lock().remove_monitored_by(mref, watcher);
}

/// A `DOWN` from `dead`'s node for the monitor `mref` that `p` holds:
/// delivered if `p` still monitors it (a demonitor meanwhile voids it).
pub(crate) fn down(p: &dyn ProcessDyn, mref: MonitorRef, dead: ProcessId, reason: ExitReason) {
    let was_monitoring = {
        let mut rel = p.core().rel.lock();
        let before = rel.items.len();
        rel.items
            .retain(|r| !matches!(r, Relation::Monitoring(m, t) if *m == mref && *t == dead));
        rel.items.len() != before
    };
    if was_monitoring {
        p.push_system(SystemMsg::Down(Box::new(Down {
            monitor: mref,
            pid: dead,
            reason,
        })));
    }
}

/// The node with index `node_index` is gone: each of `p`'s links with its
/// processes fires an exit and each monitor of them a `DOWN`, both with
/// reason `noconnection`; monitors by them are dropped.
pub(crate) fn node_lost(p: &dyn ProcessDyn, node_index: u32) {
    let lost: thin_vec::ThinVec<Relation> = {
        let mut rel = p.core().rel.lock();
        let (lost, kept) = std::mem::take(&mut rel.items)
            .into_iter()
            .partition(|r| relation_node(r) == Some(node_index));
        rel.items = kept;
        lost
    };
    for r in lost {
        match r {
            Relation::Link(remote) => deliver_exit(p, remote, ExitReason::NoConnection),
            Relation::Monitoring(mref, remote) => {
                p.push_system(SystemMsg::Down(Box::new(Down {
                    monitor: mref,
                    pid: remote,
                    reason: ExitReason::NoConnection,
                })));
            }
            _ => {}
        }
    }
}

fn relation_node(r: &Relation) -> Option<u32> {
    match r {
        Relation::Link(p) | Relation::MonitoredBy(_, p) | Relation::Monitoring(_, p) => {
            (p.node != 0).then_some(p.node)
        }
        _ => None,
    }
}

/// `core`'s process takes the global `name` (held until it exits, when
/// the core releases it). Returns `false` if the process is exiting.
/// `commit` runs under the process's relations lock, so the name is
/// recorded cluster-wide before an exit could release it.
pub(crate) fn hold_global(core: &ProcessCore, name: &str, commit: impl FnOnce()) -> bool {
    let mut rel = core.rel.lock();
    if core.closed.load(Relaxed) {
        return false;
    }
    commit();
    rel.push(Relation::Global(name.into()));
    true
}

/// `p` no longer holds the global `name` (unregistered).
pub(crate) fn drop_global(p: &dyn ProcessDyn, name: &str) {
    p.core()
        .rel
        .lock()
        .items
        .retain(|r| !matches!(r, Relation::Global(n) if **n == *name));
}

/// `p` lost the global `name` to another holder after a partition healed:
/// it no longer holds it, and it exits with `reason`.
pub(crate) fn lost_global(p: &dyn ProcessDyn, name: &str, reason: ExitReason) {
    drop_global(p, name);
    deliver_exit(p, ProcessId::NONE, reason);
}
