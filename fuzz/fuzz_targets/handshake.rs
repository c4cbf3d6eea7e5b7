//! Arbitrary frame sequences into both roles of the handshake state
//! machine: no panic, and never an established connection without the
//! cookie.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    clustertop_runtime::fuzzing::handshake(data);
});
