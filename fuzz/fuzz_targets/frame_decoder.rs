//! Arbitrary bytes through the length-prefix codec and the frame decoder:
//! no panic, no allocation past the frame limit, and every frame that
//! decodes re-encodes to the same bytes.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    clustertop_runtime::fuzzing::frame_decoder(data);
});
