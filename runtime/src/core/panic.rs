//! A panic hook that reports process panics as log events.
//!
//! Panics are how a process crashes ("let it crash"), and the runtime turns
//! each into the process's exit reason. The standard hook would also print
//! every one of them (with a backtrace when `RUST_BACKTRACE` is set) to
//! stderr. [`install_panic_hook`] replaces that, for panics inside a
//! process only, with one `error` event carrying the pid, behaviour,
//! location and message; panics outside processes go to the previous hook.

use crate::process;
use std::sync::Once;

/// Installs the hook; later calls do nothing.
pub fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let reported = process::with_current(|core| {
                let message = crate::exit_reason::panic_message(info.payload());
                let location = info
                    .location()
                    .map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()))
                    .unwrap_or_default();
                tracing::error!(
                    pid = %core.id(),
                    behaviour = core.behaviour(),
                    location,
                    "process panicked: {message}"
                );
            });
            if reported.is_none() {
                previous(info);
            }
        }));
    });
}
