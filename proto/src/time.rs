//! Wall-clock time as the protocol states it: milliseconds since the Unix
//! epoch (fields named `*_unix_ms`, `at_ms`). One home for every crate
//! that speaks the protocol; a clock set before 1970 reads as 0.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in milliseconds since the Unix epoch.
pub fn unix_ms() -> u64 {
    unix_ms_of(SystemTime::now())
}

/// `t` in milliseconds since the Unix epoch (0 before it).
pub fn unix_ms_of(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// Now, in microseconds since the Unix epoch (a log record's stamp).
pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn before_the_epoch_is_zero_and_units_agree() {
        assert_eq!(unix_ms_of(UNIX_EPOCH - Duration::from_secs(1)), 0);
        assert_eq!(unix_ms_of(UNIX_EPOCH + Duration::from_millis(1_234)), 1_234);
        let (ms, us) = (unix_ms(), unix_us());
        assert!(us / 1_000 >= ms && us / 1_000 - ms < 1_000);
    }
}
