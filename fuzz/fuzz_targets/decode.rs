//! Fuzz the wire decoder: arbitrary bytes as a captured stream of frames, or
//! as what a `FrameReader` reads (plain or through zstd); see
//! `resync::remote::fuzzing::decode_input`. Nothing may panic, hang or
//! allocate more than the bounds allow, and every decoded message must
//! round-trip.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    resync::remote::fuzzing::decode_input(data);
});
