//! Open files: a listening node raises its soft `RLIMIT_NOFILE` to the
//! hard limit once per OS process (as most servers do) and logs the
//! figure, and its accept loop keeps one descriptor in reserve, so that a
//! node out of descriptors still accepts and closes a connection at once
//! rather than leave it waiting in the backlog.

use std::sync::Once;

/// Raises the soft open-files limit to the hard one, once per process.
pub(crate) fn raise_open_files_limit() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[cfg(unix)]
        {
            use rustix::process::{Resource, getrlimit, setrlimit};
            let limit = getrlimit(Resource::Nofile);
            let (soft, hard) = (limit.current, limit.maximum);
            // `None` is no limit.
            let below = match (soft, hard) {
                (Some(s), Some(h)) => s < h,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if below {
                let mut raised = limit;
                raised.current = hard;
                match setrlimit(Resource::Nofile, raised) {
                    Ok(()) => tracing::debug!(
                        from = ?soft,
                        to = ?hard,
                        "open files limit raised to the hard limit"
                    ),
                    Err(e) => tracing::warn!(limit = ?soft, error = %e, "cannot raise the open files limit"),
                }
            } else {
                tracing::debug!(limit = ?soft, "open files limit (at the hard limit)");
            }
        }
    });
}

/// One descriptor held back for the moment the process has none left.
#[derive(Debug)]
pub(crate) struct Reserve(Option<std::fs::File>);

impl Reserve {
    pub(crate) fn new() -> Self {
        Reserve(std::fs::File::open("/dev/null").ok())
    }

    /// Frees the reserved descriptor for one use; it is taken back with
    /// [`Reserve::refill`].
    pub(crate) fn release(&mut self) -> bool {
        self.0.take().is_some()
    }

    pub(crate) fn refill(&mut self) {
        if self.0.is_none() {
            self.0 = std::fs::File::open("/dev/null").ok();
        }
    }
}

/// Whether an accept failed for want of a descriptor.
pub(crate) fn out_of_descriptors(e: &std::io::Error) -> bool {
    // EMFILE (the process) or ENFILE (the system).
    matches!(e.raw_os_error(), Some(24) | Some(23))
}
