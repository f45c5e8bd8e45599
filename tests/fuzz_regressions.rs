//! Every input kept from fuzzing (`fuzz/seeds/TARGET`, the seed corpora,
//! and `fuzz/regressions/TARGET`, inputs that once crashed or hung a
//! target) runs through the fuzz target's own checks on every `cargo test`:
//! `decode` (the wire decoder) and `daemon_start` (a daemon's handling of a
//! client's `Start` and `AuthResponse`).

use std::path::Path;

fn run_dir(dir: &Path) -> usize {
    run_dir_with(dir, resync::remote::fuzzing::decode_input)
}

fn run_dir_with(dir: &Path, target: fn(&[u8])) -> usize {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return 0;
    };
    let mut n = 0;
    for e in rd {
        let p = e.unwrap().path();
        let data = std::fs::read(&p).unwrap();
        let r = std::panic::catch_unwind(|| target(&data));
        assert!(r.is_ok(), "fuzz target panicked on {}", p.display());
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
    assert_eq!(checked, 13);
}

/// The hand-written seeds hold every message type of `docs/PROTOCOL.md`,
/// the daemon's included, so the fuzzer starts from each one.
#[test]
fn the_seeds_cover_every_message_type() {
    use resync::remote::proto::kind;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds/decode");
    let mut seen = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if !p.file_name().unwrap().to_string_lossy().ends_with('0') {
            continue;
        }
        let data = std::fs::read(&p).unwrap();
        for m in resync::remote::proto::decode_stream(&data[1..]).unwrap() {
            seen.insert(m.kind());
        }
    }
    let all = [
        kind::HELLO,
        kind::ERROR,
        kind::GOODBYE,
        kind::LOG,
        kind::START,
        kind::KEEPALIVE,
        kind::FILE_BATCH,
        kind::FILE_LIST_END,
        kind::ID_NAMES,
        kind::REQUEST,
        kind::SIGNATURE,
        kind::DATA,
        kind::FILE_END,
        kind::NO_SEND,
        kind::DONE,
        kind::SUCCESS,
        kind::STATS,
        kind::FILES_FROM,
        kind::AUTH_CHALLENGE,
        kind::AUTH_RESPONSE,
        kind::READY,
    ];
    let missing: Vec<_> = all.iter().filter(|k| !seen.contains(k)).collect();
    assert!(missing.is_empty(), "no seed for {missing:02x?}");
}

#[test]
fn kept_daemon_start_inputs_pass_the_daemons_checks() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let t = resync::remote::fuzzing::daemon_start;
    let seeds = run_dir_with(&root.join("seeds/daemon_start"), t);
    assert!(seeds >= 4, "seed corpus missing ({seeds} files)");
    run_dir_with(&root.join("regressions/daemon_start"), t);
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
