//! Time: monotonic for the hot path, and the wall clock for records.
//!
//! Every envelope is stamped when it is enqueued and every poll of a process
//! is timed, so reading the clock must be cheap. [`ClockSource::Fast`] reads
//! the CPU's time-stamp counter through `quanta` (about 10 ns here, against
//! about 25 ns for `std::time::Instant::now`). [`ClockSource::Tokio`] reads
//! `tokio::time::Instant`, which follows tokio's paused clock, so tests can
//! move time forward deterministically.
//!
//! Timestamps are nanoseconds since the node started, stored as `u64`.

use std::time::Duration;

/// Where a node reads its monotonic time from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClockSource {
    /// The CPU time-stamp counter (through `quanta`); the default.
    #[default]
    Fast,
    /// `tokio::time::Instant`: follows tokio's paused clock in tests.
    Tokio,
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Clock {
    Fast(quanta::Instant),
    Tokio(tokio::time::Instant),
}

impl Clock {
    pub(crate) fn new(source: ClockSource) -> Self {
        match source {
            ClockSource::Fast => Clock::Fast(quanta::Instant::now()),
            ClockSource::Tokio => Clock::Tokio(tokio::time::Instant::now()),
        }
    }

    /// Nanoseconds since the node's epoch.
    #[inline]
    pub(crate) fn now_ns(&self) -> u64 {
        let elapsed = match self {
            Clock::Fast(base) => quanta::Instant::now().saturating_duration_since(*base),
            Clock::Tokio(base) => tokio::time::Instant::now().saturating_duration_since(*base),
        };
        elapsed.as_nanos() as u64
    }

    /// Time elapsed since `ns` (a value from [`Clock::now_ns`]).
    pub(crate) fn since(&self, ns: u64) -> Duration {
        Duration::from_nanos(self.now_ns().saturating_sub(ns))
    }
}

/// Now, in milliseconds since the Unix epoch (0 for a clock set before it):
/// wall-clock time for records read by people and other nodes, never for
/// measuring.
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Now, in microseconds since the Unix epoch (0 for a clock set before it).
pub fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}
