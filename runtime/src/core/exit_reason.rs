//! Why a process ended.

use std::fmt;
use std::sync::Arc;

/// The reason a process exited, as carried by exit signals, `DOWN` messages
/// and call errors. Cheap to clone.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum ExitReason {
    /// The process finished its work. Links do not propagate it.
    Normal,
    /// An orderly shutdown, usually asked for by a supervisor.
    Shutdown,
    /// The untrappable kill signal, sent with [`Node::exit`](crate::Node::exit).
    /// A process killed this way exits with [`ExitReason::Killed`].
    Kill,
    /// The process was killed; linked processes see this (trappable) reason.
    Killed,
    /// The process panicked; holds the panic message.
    Panic(Arc<str>),
    /// The process did not exist when it was linked or monitored.
    NoProc,
    /// The connection to the process's node was lost.
    NoConnection,
    /// A supervisor could not start one of its children (boxed to keep
    /// every exit reason at 24 bytes).
    FailedToStartChild(Box<ChildStartFailure>),
    /// Any other reason, as text.
    Custom(Arc<str>),
}

/// Which child a supervisor failed to start, and why.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ChildStartFailure {
    /// The child's id in its supervisor.
    pub child: String,
    /// Why it failed.
    pub reason: ExitReason,
}

impl ExitReason {
    /// A custom reason from any displayable value.
    pub fn custom(reason: impl fmt::Display) -> Self {
        ExitReason::Custom(reason.to_string().into())
    }

    /// `true` for the reasons a supervisor treats as a clean stop
    /// (`normal` and `shutdown`); everything else is a crash.
    pub fn is_normal(&self) -> bool {
        matches!(self, ExitReason::Normal | ExitReason::Shutdown)
    }
}

impl fmt::Display for ExitReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExitReason::Normal => f.write_str("normal"),
            ExitReason::Shutdown => f.write_str("shutdown"),
            ExitReason::Kill => f.write_str("kill"),
            ExitReason::Killed => f.write_str("killed"),
            ExitReason::Panic(msg) => write!(f, "panic: {msg}"),
            ExitReason::NoProc => f.write_str("noproc"),
            ExitReason::NoConnection => f.write_str("noconnection"),
            ExitReason::FailedToStartChild(failure) => write!(
                f,
                "failed to start child {:?}: {}",
                failure.child, failure.reason
            ),
            ExitReason::Custom(msg) => f.write_str(msg),
        }
    }
}

/// What a process body may return: its exit reason.
///
/// `()` means [`ExitReason::Normal`]; `Err(e)` becomes [`ExitReason::Custom`]
/// with `e`'s text.
pub trait IntoExitReason {
    /// Converts into the exit reason.
    fn into_exit_reason(self) -> ExitReason;
}

impl IntoExitReason for () {
    fn into_exit_reason(self) -> ExitReason {
        ExitReason::Normal
    }
}

impl IntoExitReason for ExitReason {
    fn into_exit_reason(self) -> ExitReason {
        self
    }
}

impl<E: fmt::Display> IntoExitReason for Result<(), E> {
    fn into_exit_reason(self) -> ExitReason {
        match self {
            Ok(()) => ExitReason::Normal,
            Err(e) => ExitReason::custom(e),
        }
    }
}

pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> Arc<str> {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        (*s).into()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.as_str().into()
    } else {
        "non-string panic payload".into()
    }
}

/// Names the never type `!` on stable Rust, so a body that loops forever
/// (whose future's output is `!` in edition 2024) is a valid process body.
#[doc(hidden)]
#[allow(unreachable_pub, missing_docs)]
pub mod never {
    pub trait HasOutput {
        type Output;
    }
    impl<O> HasOutput for fn() -> O {
        type Output = O;
    }
    pub type Never = <fn() -> ! as HasOutput>::Output;
}

impl IntoExitReason for never::Never {
    fn into_exit_reason(self) -> ExitReason {
        self
    }
}
