//! Fault injection for partition tests, compiled only with the `testing`
//! feature.
//!
//! With the feature, `Node::set_partitioned` blocks a node name: new
//! connections with it are refused, and an existing one is cut (nothing
//! is read or written, so heartbeats lapse and both sides see it go down).
//! Without it, these types are empty and their checks are constant
//! `false`, so a production build carries no flag on the read and write
//! paths.

#[cfg(feature = "testing")]
use std::sync::atomic::{AtomicBool, Ordering::Relaxed};

/// The node names this node refuses to talk to.
#[derive(Debug, Default)]
pub(crate) struct Blocked {
    #[cfg(feature = "testing")]
    names: parking_lot::Mutex<std::collections::HashSet<String>>,
}

impl Blocked {
    /// Whether `name` is blocked.
    #[inline(always)]
    pub(crate) fn contains(&self, _name: &str) -> bool {
        #[cfg(feature = "testing")]
        return self.names.lock().contains(_name);
        #[cfg(not(feature = "testing"))]
        false
    }

    /// Blocks or unblocks `name`.
    #[cfg(feature = "testing")]
    pub(crate) fn set(&self, name: &str, blocked: bool) {
        if blocked {
            self.names.lock().insert(name.to_owned());
        } else {
            self.names.lock().remove(name);
        }
    }
}

/// Whether one connection is cut.
#[derive(Debug, Default)]
pub(crate) struct Cut {
    #[cfg(feature = "testing")]
    on: AtomicBool,
}

impl Cut {
    /// Whether the connection carries nothing now.
    #[inline(always)]
    pub(crate) fn is_set(&self) -> bool {
        #[cfg(feature = "testing")]
        return self.on.load(Relaxed);
        #[cfg(not(feature = "testing"))]
        false
    }

    /// Cuts or restores the connection.
    #[cfg(feature = "testing")]
    pub(crate) fn set(&self, on: bool) {
        self.on.store(on, Relaxed);
    }
}
