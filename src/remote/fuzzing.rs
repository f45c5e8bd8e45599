//! The bodies of the fuzz targets (`fuzz/fuzz_targets/`): `decode` (the
//! wire decoder) and `daemon_start` (what a daemon makes of a client's
//! `Start` and `AuthResponse`), kept here so the regression tests
//! (`tests/fuzz_regressions.rs`) run exactly the checks the fuzzer ran on
//! every input it kept.

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

/// The module the `daemon_start` target runs against: every option-path
/// check and a `refuse options` list in play.
const DAEMON_CONF: &str = "[m]\npath = /nonexistent/module\nread only = no\n\
                           refuse options = delete* checksum\ntimeout = 7\n";

/// Feed `data` to the daemon's handling of peer input: NUL-separated words
/// as a `Start` message's arguments (re-encoded and decoded as the wire
/// carries them), split at the `.`, the requested paths checked as module
/// paths, the options parsed and confined as for a session, and the last
/// word matched as an `AuthResponse` user against `auth users`. Panics
/// only on a bug: a checked path that could leave the module, a refused
/// option that got through, an option path outside the module.
pub fn daemon_start(data: &[u8]) {
    use super::access;
    use super::daemon;
    use std::os::unix::ffi::OsStrExt;
    let args: Vec<Vec<u8>> = data
        .split(|&b| b == 0)
        .take(proto::MAX_ARGS)
        .map(|a| a[..a.len().min(proto::MAX_ARG)].to_vec())
        .collect();
    let start = Msg::Start { args };
    round_trip(&start);
    let Msg::Start { args } = start else {
        unreachable!()
    };
    if let Some(user) = args.last() {
        let user = String::from_utf8_lossy(user);
        let rule = access::auth_rule("alice:rw bob:deny carol* @staff", &user);
        if user == "bob" {
            assert_eq!(rule, Some(access::AuthRule::Deny));
        }
    }
    let Ok(start) = daemon::split_start(&args) else {
        return;
    };
    let mut rel = Vec::new();
    for p in &start.paths {
        let rest = p.strip_prefix(b"m").unwrap_or(p);
        let rest = rest.strip_prefix(b"/").unwrap_or(rest);
        if access::check_rel(rest).is_ok() {
            assert!(!rest.starts_with(b"/"), "absolute path passed");
            assert!(
                !rest.split(|&b| b == b'/').any(|c| c == b".."),
                "`..` passed"
            );
            rel.push(rest.to_vec());
        }
    }
    let cfg = super::config::Config::parse(DAEMON_CONF).expect("fixed config parses");
    let module = &cfg.modules[0];
    let Ok(opts) = daemon::session_options(
        &cfg,
        module,
        &start,
        &rel,
        Vec::new(),
        access::AuthRule::Default,
    ) else {
        return;
    };
    assert_eq!(
        opts.delete,
        crate::options::Delete::Off,
        "a refused --delete got through"
    );
    assert!(!opts.checksum, "a refused --checksum got through");
    assert!(opts.no_manifest && opts.manifest_dir.is_none());
    assert!(
        (1..=7).contains(&opts.timeout),
        "the module's timeout bounds the client's"
    );
    for p in [opts.temp_dir.as_deref(), opts.partial_dir.as_deref()]
        .into_iter()
        .flatten()
    {
        assert!(!p.starts_with('/'), "option path outside the module: {p}");
    }
    if let Some(p) = &opts.files_from {
        assert!(!p.as_bytes().starts_with(b"/"), "--files-from outside");
    }
}
