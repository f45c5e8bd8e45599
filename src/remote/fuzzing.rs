//! The body of the `decode` fuzz target (`fuzz/fuzz_targets/decode.rs`),
//! kept here so the regression tests (`tests/fuzz_regressions.rs`) run
//! exactly the checks the fuzzer ran on every input it kept.

use super::conn::FrameReader;
use super::proto::{self, HEADER_LEN, Msg};

fn round_trip(m: &Msg) {
    let f = m
        .encode_frame()
        .expect("a decoded message re-encodes within bounds");
    let back = Msg::decode(f[0], &f[HEADER_LEN..]).expect("re-encoded message decodes");
    assert_eq!(&back, m, "message changed in a round trip");
}

/// Feed `data` to the decoder. The first byte selects the path: even = a
/// captured stream of frames for [`proto::decode_stream`]; odd = the bytes a
/// [`FrameReader`] reads, through zstd when bit 1 is also set. Every message
/// decoded must re-encode and decode to itself. Panics only on a bug.
pub fn decode_input(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    if mode & 1 == 0 {
        if let Ok(msgs) = proto::decode_stream(rest) {
            msgs.iter().for_each(round_trip);
        }
        return;
    }
    let mut r = FrameReader::new(std::io::Cursor::new(rest.to_vec()));
    if mode & 2 != 0 && r.start_zstd().is_err() {
        return;
    }
    // No more messages than the input could hold uncompressed; zstd can
    // expand, so allow for that too but stay finite.
    for _ in 0..=rest.len().saturating_mul(64) / HEADER_LEN {
        match r.recv() {
            Ok(m) => round_trip(&m),
            Err(_) => break,
        }
    }
}
