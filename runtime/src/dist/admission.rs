//! What a peer that has not proved the cookie can make a node hold.
//!
//! Before authentication a connection is a stranger's. A node takes at
//! most `max_handshakes` of them at once, and `max_handshakes_per_ip` from
//! one address; a connection past either is closed as soon as it is
//! accepted, before a byte of it is read. A handshake frame may be at most
//! [`PREAUTH_MAX_FRAME`] bytes (a `Hello` with the longest valid name and a
//! listen address fits several times over), and a handshake ends within
//! `handshake_timeout`.
//!
//! # Worst case
//! Per handshake: its task, the socket and a read buffer that never grows
//! past one pre-auth frame — about 12 KiB. With the defaults (64
//! handshakes) a stranger can make a node hold well under 1 MiB, for at
//! most the handshake timeout (10 s), and no file descriptors beyond 64.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

/// The largest frame read before the peer has proved the cookie.
pub(crate) const PREAUTH_MAX_FRAME: usize = 1024;

/// Handshakes in progress, in all and per remote address.
#[derive(Debug, Default)]
pub(crate) struct Admission {
    open: Mutex<(usize, HashMap<IpAddr, usize>)>,
}

impl Admission {
    /// A slot for a handshake with `ip`, or `None` when the node is at its
    /// limit or `ip` at its own.
    pub(crate) fn admit(
        self: &Arc<Self>,
        ip: IpAddr,
        max: usize,
        max_per_ip: usize,
    ) -> Option<HandshakeSlot> {
        let mut open = self.open.lock();
        let (total, per_ip) = &mut *open;
        let mine = per_ip.get(&ip).copied().unwrap_or(0);
        if *total >= max || mine >= max_per_ip {
            return None;
        }
        *total += 1;
        per_ip.insert(ip, mine + 1);
        Some(HandshakeSlot {
            admission: self.clone(),
            ip,
        })
    }

    /// Handshakes in progress now.
    pub(crate) fn in_progress(&self) -> usize {
        self.open.lock().0
    }
}

/// A handshake's place; given back when dropped (the handshake ended,
/// however it ended).
#[derive(Debug)]
pub(crate) struct HandshakeSlot {
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Drop for HandshakeSlot {
    fn drop(&mut self) {
        let mut open = self.admission.open.lock();
        let (total, per_ip) = &mut *open;
        *total -= 1;
        if let Some(n) = per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_are_limited_in_all_and_per_address_and_given_back() {
        let a = Arc::new(Admission::default());
        let one: IpAddr = "10.0.0.1".parse().unwrap();
        let two: IpAddr = "10.0.0.2".parse().unwrap();
        let s1 = a.admit(one, 3, 2).unwrap();
        let _s2 = a.admit(one, 3, 2).unwrap();
        assert!(a.admit(one, 3, 2).is_none(), "per address");
        let _s3 = a.admit(two, 3, 2).unwrap();
        assert!(a.admit(two, 3, 2).is_none(), "in all");
        drop(s1);
        assert_eq!(a.in_progress(), 2);
        assert!(a.admit(one, 3, 2).is_some());
    }
}
