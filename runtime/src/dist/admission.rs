//! What a peer that has not proved the cookie can make a node hold, and
//! why it cannot shut anyone out.
//!
//! Before authentication a connection is a stranger's. A node takes at
//! most `max_handshakes` of them at once, and `max_handshakes_per_ip` from
//! one address. A handshake frame may be at most [`PREAUTH_MAX_FRAME`]
//! bytes (a `Hello` with the longest valid name and a listen address fits
//! several times over); each handshake message must arrive within
//! `handshake_step_timeout` of the last, and the whole handshake end within
//! `handshake_timeout`.
//!
//! # Full slots: the stalest goes, not the newcomer
//! A legitimate handshake completes in milliseconds; a stranger's can only
//! stall. So when the slots are full (node-wide, or for the newcomer's
//! address) the newcomer is admitted and the connection that has made the
//! least progress, the oldest among those, is closed: one that has sent
//! nothing goes before one that has sent its `Hello`. However many
//! strangers hold slots, from however many addresses, a handshake with
//! the cookie is then only ever displaced by `max_handshakes` (or, from
//! its own address, `max_handshakes_per_ip`) newer connections opened
//! within its few milliseconds.
//!
//! # Worst case
//! Per handshake: its task, the socket and a read buffer that never grows
//! past one pre-auth frame — about 12 KiB. With the defaults (64
//! handshakes) a stranger can make a node hold well under 1 MiB and no
//! file descriptors beyond 64, each for at most the step timeout (2 s)
//! while it sends nothing.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::time::Instant;
use tokio::sync::Notify;

/// The largest frame read before the peer has proved the cookie.
pub(crate) const PREAUTH_MAX_FRAME: usize = 1024;

/// Handshakes in progress, in all and per remote address.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    open: Mutex<Open>,
}

#[derive(Debug, Default)]
struct Open {
    next_id: u64,
    slots: HashMap<u64, Held>,
    per_ip: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct Held {
    ip: IpAddr,
    since: Instant,
    signals: Arc<Signals>,
}

/// What a slot and its handshake share: how far the peer got, and the
/// order to give the slot up.
#[derive(Debug, Default)]
struct Signals {
    progress: AtomicU8,
    evicted: Notify,
}

impl Open {
    fn remove(&mut self, id: u64) -> Option<Held> {
        let held = self.slots.remove(&id)?;
        if let Some(n) = self.per_ip.get_mut(&held.ip) {
            *n -= 1;
            if *n == 0 {
                self.per_ip.remove(&held.ip);
            }
        }
        Some(held)
    }

    /// The slot to give up for a newcomer from `ip`: the least progressed,
    /// oldest one, from `ip` when only `ip` is at its limit.
    fn stalest(&self, ip: Option<IpAddr>) -> Option<u64> {
        self.slots
            .iter()
            .filter(|(_, h)| ip.is_none_or(|ip| h.ip == ip))
            .min_by_key(|(_, h)| (h.signals.progress.load(Relaxed), h.since))
            .map(|(id, _)| *id)
    }
}

impl Admission {
    /// A slot for a handshake with `ip`. When the node is at `max`, or
    /// `ip` at `max_per_ip`, the stalest handshake (see the module docs)
    /// is told to close and gives its slot up; the second value says
    /// whether one was.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        max: usize,
        max_per_ip: usize,
    ) -> (HandshakeSlot, bool) {
        let mut open = self.open.lock();
        let mine = open.per_ip.get(&ip).copied().unwrap_or(0);
        let victim = if mine >= max_per_ip {
            open.stalest(Some(ip))
        } else if open.slots.len() >= max {
            open.stalest(None)
        } else {
            None
        };
        let evicted = victim.and_then(|id| open.remove(id)).is_some_and(|held| {
            held.signals.evicted.notify_one();
            true
        });
        let id = open.next_id;
        open.next_id += 1;
        let signals = Arc::new(Signals::default());
        open.slots.insert(
            id,
            Held {
                ip,
                since: Instant::now(),
                signals: signals.clone(),
            },
        );
        *open.per_ip.entry(ip).or_default() += 1;
        let slot = HandshakeSlot {
            admission: self.clone(),
            id,
            signals,
        };
        (slot, evicted)
    }

    /// Handshakes in progress now.
    pub(crate) fn in_progress(&self) -> usize {
        self.open.lock().slots.len()
    }
}

/// A handshake's place; given back when dropped (the handshake ended,
/// however it ended), or taken by a newcomer (see [`HandshakeSlot::evicted`]).
#[derive(Debug)]
pub(crate) struct HandshakeSlot {
    admission: Arc<Admission>,
    id: u64,
    signals: Arc<Signals>,
}

impl HandshakeSlot {
    /// The peer sent a valid handshake message: it is closed after those
    /// that sent fewer when the slots are full.
    pub(crate) fn progressed(&self) {
        self.signals.progress.fetch_add(1, Relaxed);
    }

    /// Resolves when a newcomer took this slot: the handshake must end.
    pub(crate) async fn evicted(&self) {
        self.signals.evicted.notified().await;
    }
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        self.admission.open.lock().remove(self.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_slots_give_way_to_a_newcomer_the_stalest_first() {
        let a = Arc::new(Admission::default());
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let two: IpAddr = "10.0.0.2".parse().unwrap();
        let (s1, _) = a.admit(one, 3, 2);
        let (s2, _) = a.admit(one, 3, 2);
        s1.progressed();
        // `one` at its limit: its stalest (s2, which sent nothing) goes.
        let (s3, evicted) = a.admit(one, 3, 2);
        assert!(evicted);
        assert_eq!(a.in_progress(), 2);
        let (_s4, evicted) = a.admit(two, 3, 2);
        assert!(!evicted, "room in all and for `two`");
        // Full in all: the stalest anywhere (s3, nothing sent) goes.
        let (_s5, evicted) = a.admit(two, 3, 2);
        assert!(evicted);
        assert_eq!(a.in_progress(), 3);
        // An evicted slot's drop gives nothing back twice.
        drop(s2);
        drop(s3);
        assert_eq!(a.in_progress(), 3);
        drop(s1);
        assert_eq!(a.in_progress(), 2);
    }

    #[tokio::test]
    async fn an_evicted_handshake_learns_it_even_before_it_waits() {
        let a = Arc::new(Admission::default());
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let (old, _) = a.admit(ip, 1, 1);
        let (_new, evicted) = a.admit(ip, 1, 1);
        assert!(evicted);
        tokio::time::timeout(std::time::Duration::from_secs(1), old.evicted())
            .await
            .expect("told");
    }
}
