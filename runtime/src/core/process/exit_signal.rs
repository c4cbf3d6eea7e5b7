//! The exit path of a process and the delivery of exit signals.

use super::{ProcessDyn, Relation, STATUS_EXITING, kill};
use crate::exit_reason::ExitReason;
use crate::pid::ProcessId;
use crate::signal::{Down, Exit, SystemMsg};
use crate::transport::RemoteSignal;
use std::sync::Arc;
use std::sync::atomic::Ordering::Relaxed;

/// Delivers an exit signal from `from` to `target`, following OTP's rules:
/// `kill` cannot be trapped; a trapping process gets an `EXIT` message; a
/// non-trapping one ignores `normal` and exits with any other reason.
pub(crate) fn deliver_exit(target: &dyn ProcessDyn, from: ProcessId, reason: ExitReason) {
    let core = target.core();
    if reason == ExitReason::Kill {
        kill(core, ExitReason::Killed);
    } else if core.trap_exit.load(Relaxed) {
        target.push_system(SystemMsg::Exit(Box::new(Exit { from, reason })));
    } else if reason != ExitReason::Normal {
        kill(core, reason);
    }
}

/// Tells another node about one relation of an exiting process. Returns
/// `false` if the relation is local.
fn notify_remote(node: &crate::Node, id: ProcessId, item: &Relation, reason: &ExitReason) -> bool {
    let signal = match item {
        Relation::Link(other) if other.node != 0 => RemoteSignal::Exit {
            from: id.serial,
            to: *other,
            reason: reason.clone(),
            link: true,
        },
        Relation::MonitoredBy(mref, watcher) if watcher.node != 0 => RemoteSignal::Down {
            from: id.serial,
            to: *watcher,
            mref: *mref,
            reason: reason.clone(),
        },
        Relation::Monitoring(mref, target) if target.node != 0 => RemoteSignal::Demonitor {
            from: id.serial,
            to: *target,
            mref: *mref,
        },
        _ => return false,
    };
    if let Some(t) = node.transport() {
        let _ = t.signal(signal);
    }
    true
}

/// Runs once when a process's body has ended with `reason`.
pub(crate) fn finish(process: Arc<dyn ProcessDyn>, reason: ExitReason) {
    let core = process.core();
    let node = &core.node;
    let id = core.id();
    core.counts.status.store(STATUS_EXITING, Relaxed);
    let (items, name) = {
        let mut rel = core.rel.lock();
        core.closed
            .store(true, std::sync::atomic::Ordering::Relaxed);
        rel.reason = Some(reason.clone());
        rel.waker = None;
        (std::mem::take(&mut rel.items), rel.name.take())
    };
    process.close_mailbox();
    node.table().remove(id.serial);
    // Out of the table, out of observers' scans.
    core.counts.retire();
    if let Some(name) = &name {
        node.registry().release_name(name, id);
    }
    node.record_exit(crate::exit_log::ProcessExit {
        id,
        name,
        behaviour: core.behaviour(),
        reason: reason.clone(),
        at: std::time::Duration::from_nanos(node.clock().now_ns()),
    });
    for item in items {
        if notify_remote(node, id, &item, &reason) {
            continue;
        }
        match item {
            Relation::Link(other) => {
                if let Some(p) = node.lookup(other) {
                    p.core().rel.lock().remove_link(id);
                    deliver_exit(&*p, id, reason.clone());
                }
            }
            Relation::MonitoredBy(mref, watcher) => {
                if let Some(w) = node.lookup(watcher) {
                    w.core().rel.lock().remove_monitoring(mref);
                    w.push_system(SystemMsg::Down(Box::new(Down {
                        monitor: mref,
                        pid: id,
                        reason: reason.clone(),
                    })));
                }
            }
            Relation::Monitoring(mref, target) => {
                if let Some(t) = node.lookup(target) {
                    t.core().rel.lock().remove_monitored_by(mref, id);
                }
            }
            Relation::Group(group) => node.member_exited(&group, id),
            Relation::Global(name) => {
                if let Some(t) = node.transport() {
                    t.release_global(&name, id);
                }
            }
            Relation::Waiter(tx) => {
                let _ = tx.send(reason.clone());
            }
        }
    }
    node.count_exit(&reason);
    match &reason {
        ExitReason::Normal | ExitReason::Shutdown => {
            tracing::trace!(pid = %id, behaviour = core.behaviour(), %reason, "process exited")
        }
        _ => tracing::warn!(pid = %id, behaviour = core.behaviour(), %reason, "process exited"),
    }
}
