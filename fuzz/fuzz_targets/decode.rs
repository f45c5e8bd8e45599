//! Fuzz the wire decoder: arbitrary bytes as a captured stream of frames
//! (first byte even), or as the bytes a `FrameReader` reads, through zstd
//! when the first byte's bit 1 is set (first byte odd). Every decoded
//! message must re-encode and decode to itself. Nothing may panic, hang or
//! allocate more than the bounds allow.
#![no_main]

use libfuzzer_sys::fuzz_target;
use resync::remote::conn::FrameReader;
use resync::remote::proto::{self, HEADER_LEN, Msg};

fn round_trip(m: &Msg) {
    let f = m.encode_frame().expect("a decoded message re-encodes within bounds");
    let back = Msg::decode(f[0], &f[HEADER_LEN..]).expect("re-encoded message decodes");
    assert_eq!(&back, m);
}

fuzz_target!(|data: &[u8]| {
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
    // At most as many messages as the input could hold (5-byte headers).
    for _ in 0..=rest.len() / HEADER_LEN {
        match r.recv() {
            Ok(m) => round_trip(&m),
            Err(_) => break,
        }
    }
});
