//! Fuzz what a daemon makes of a client's words: NUL-separated arguments
//! as a `Start` message, split, path-checked, parsed and confined against a
//! module with `refuse options`, and the last word as an `AuthResponse`
//! user; see `resync::remote::fuzzing::daemon_start`. Nothing may panic,
//! and no refused option or outside path may get through.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    resync::remote::fuzzing::daemon_start(data);
});
