//! Log records and subscription filters.

use crate::processes::PidRef;
use serde::{Deserialize, Serialize};

/// A log level, from the least to the most severe.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum LogLevel {
    /// `trace`.
    Trace,
    /// `debug`.
    Debug,
    /// `info`.
    Info,
    /// `warn`.
    Warn,
    /// `error`.
    Error,
}

/// One structured log record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogRecord {
    /// When logged, in microseconds since the Unix epoch.
    pub at_unix_us: u64,
    /// The node that logged it.
    pub node: String,
    /// Its level.
    pub level: LogLevel,
    /// The module path or target.
    pub target: String,
    /// The process it was logged from, if any.
    pub pid: Option<PidRef>,
    /// That process's registered name or behaviour.
    pub process: Option<String>,
    /// The message.
    pub message: String,
    /// Structured fields, as rendered text.
    pub fields: Vec<(String, String)>,
    /// The trace it belongs to, as 32 lowercase hex digits.
    pub trace_id: Option<String>,
}

/// Which records a subscription receives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogFilter {
    /// At least this level.
    pub min_level: LogLevel,
    /// Only targets starting with this.
    pub target_prefix: Option<String>,
    /// Only this node.
    pub node: Option<String>,
    /// Only this process.
    pub pid: Option<PidRef>,
    /// Only messages containing this text.
    pub text: Option<String>,
}

impl Default for LogFilter {
    fn default() -> Self {
        LogFilter {
            min_level: LogLevel::Info,
            target_prefix: None,
            node: None,
            pid: None,
            text: None,
        }
    }
}

impl LogFilter {
    /// Whether `record` passes the filter.
    pub fn matches(&self, record: &LogRecord) -> bool {
        record.level >= self.min_level
            && self
                .target_prefix
                .as_ref()
                .is_none_or(|p| record.target.starts_with(p.as_str()))
            && self.node.as_ref().is_none_or(|n| *n == record.node)
            && self
                .pid
                .as_ref()
                .is_none_or(|p| record.pid.as_ref() == Some(p))
            && self
                .text
                .as_ref()
                .is_none_or(|t| record.message.contains(t.as_str()))
    }
}
