//! Every input kept from fuzzing the wire decoder (`fuzz/seeds/decode`, the
//! seed corpus, and `fuzz/regressions/decode`, inputs that once crashed or
//! hung it) runs through the fuzz target's own checks on every `cargo test`.

use std::path::Path;

fn run_dir(dir: &Path) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in rd {
        let p = e.unwrap().path();
        let data = std::fs::read(&p).unwrap();
        let r = std::panic::catch_unwind(|| resync::remote::fuzzing::decode_input(&data));
        assert!(r.is_ok(), "decoder panicked on {}", p.display());
        n += 1;
    }
    n
}

#[test]
fn kept_fuzz_inputs_decode_without_panic() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let seeds = run_dir(&root.join("seeds/decode"));
    assert!(seeds >= 10, "seed corpus missing ({seeds} files)");
    run_dir(&root.join("regressions/decode"));
}

/// The plain seeds (`NAME0`) were written from `docs/PROTOCOL.md` by a
/// separate script, not by the Rust encoder: each must decode completely,
/// which checks the codec against the document.
#[test]
fn seeds_written_from_the_protocol_document_decode() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/decode");
    let mut checked = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if !p.file_name().unwrap().to_string_lossy().ends_with('0') {
            continue;
        }
        let data = std::fs::read(&p).unwrap();
        let msgs = resync::remote::proto::decode_stream(&data[1..])
            .unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        assert!(!msgs.is_empty());
        checked += 1;
    }
    assert_eq!(checked, 7);
}

/// The compressed seeds (`z_*`, made with the `zstd` command-line tool)
/// decode through the reader's zstd layer: the stream format is plain zstd.
#[test]
fn zstd_seeds_made_by_the_zstd_tool_decode() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/decode");
    let mut checked = 0;
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if !p.file_name().unwrap().to_string_lossy().starts_with("z_") {
            continue;
        }
        let data = std::fs::read(&p).unwrap();
        assert_eq!(data[0], 3);
        let mut r =
            resync::remote::conn::FrameReader::new(std::io::Cursor::new(data[1..].to_vec()));
        r.start_zstd().unwrap();
        let m = r
            .recv()
            .unwrap_or_else(|e| panic!("{}: {e:?}", p.display()));
        assert!(m.kind() != 0);
        checked += 1;
    }
    assert_eq!(checked, 5);
}
