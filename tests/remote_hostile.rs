//! A hostile peer driving `resync --server` with crafted frames: as the
//! sender of a push (the server receives) and as the receiver of a pull
//! (the server sends). Nothing may be written outside the destination (no
//! write through a symlink the sender made or the destination had, rsync's
//! CVE-2024-12087 class), a malformed or out-of-order stream ends with exit
//! 12, a silent one with `--timeout`'s exit 30, never a panic or a hang
//! (each run has a watchdog that kills a server that hangs, failing the
//! test), and the destination keeps its old files.

use resync::remote::conn::{FrameReader, FrameWriter};
use resync::remote::filesum;
use resync::remote::handshake::{self, Side};
use resync::remote::proto::{Entry, Msg, WireOp};
use std::fs;
use std::io::Write;
use std::os::fd::OwnedFd;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_resync");
/// A server still running after this long is hung: killed, test failed.
const WATCHDOG: Duration = Duration::from_secs(60);
fn dir(name: &str) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        mode: 0o040755,
        mtime_sec: 1_600_000_000,
        ..Entry::default()
    }
}

fn file(name: &str, size: u64) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        mode: 0o100644,
        size,
        mtime_sec: 1_600_000_000,
        ..Entry::default()
    }
}

fn link(name: &str, target: &Path) -> Entry {
    let t = target.as_os_str().as_encoded_bytes().to_vec();
    Entry {
        name: name.as_bytes().to_vec(),
        mode: 0o120777,
        size: t.len() as u64,
        mtime_sec: 1_600_000_000,
        link: Some(t),
        ..Entry::default()
    }
}

/// A `resync --server` process and our end of its pipes, after the
/// handshake. Messages are written as raw frames, so a test can also send
/// bytes no encoder would produce.
struct Peer {
    child: Child,
    r: Option<FrameReader>,
    w: Option<fs::File>,
    hung: Arc<AtomicBool>,
    cancel: Option<std::sync::mpsc::Sender<()>>,
}

impl Peer {
    /// Start `resync ARGS` in `work` and do the handshake.
    fn start(work: &Path, args: &[&str]) -> Peer {
        Peer::start_with(work, args, handshake::our_hello(0))
    }

    /// [`Peer::start`] with our `Hello` as given.
    fn start_with(work: &Path, args: &[&str], hello: resync::remote::proto::Hello) -> Peer {
        let mut c = Command::new(BIN)
            .args(args)
            .current_dir(work)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let hung = Arc::new(AtomicBool::new(false));
        let (cancel, wait) = std::sync::mpsc::channel::<()>();
        let pid = c.id().to_string();
        let h = Arc::clone(&hung);
        std::thread::spawn(move || {
            if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = wait.recv_timeout(WATCHDOG) {
                h.store(true, Ordering::SeqCst);
                let _ = Command::new("kill").args(["-9", &pid]).status();
            }
        });
        let mut r = FrameReader::new(c.stdout.take().unwrap());
        let raw = fs::File::from(OwnedFd::from(c.stdin.take().unwrap()));
        let mut w = FrameWriter::new(raw.try_clone().unwrap());
        handshake::handshake(Side::Client, &mut r, &mut w, &hello).unwrap();
        w.finish().unwrap();
        Peer {
            child: c,
            r: Some(r),
            w: Some(raw),
            hung,
            cancel: Some(cancel),
        }
    }

    /// Write raw bytes; false once the server stopped reading.
    fn raw(&mut self, b: &[u8]) -> bool {
        self.w.as_mut().is_some_and(|w| w.write_all(b).is_ok())
    }

    /// Write one message as a frame.
    fn send(&mut self, m: &Msg) -> bool {
        let f = m.encode_frame().unwrap();
        self.raw(&f)
    }

    fn recv(&mut self) -> Option<Msg> {
        self.r.as_mut()?.recv().ok()
    }

    /// Close our writing direction (the server sees end of stream).
    fn close(&mut self) {
        self.w = None;
    }

    /// Read what the server still sends, wait for it to exit; its exit
    /// code, every message and its stderr. Fails if the watchdog fired.
    /// Like a real peer, we close our side once the server sent `Error`.
    fn finish(mut self, mut got: Vec<Msg>) -> (Option<i32>, Vec<Msg>, String) {
        if error_of(&got).is_some() {
            self.close();
        }
        while let Some(m) = self.recv() {
            let fatal = matches!(m, Msg::Error { .. });
            got.push(m);
            if fatal {
                self.close();
            }
        }
        self.close();
        let o = self.child.wait_with_output().unwrap();
        drop(self.cancel.take());
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        assert!(
            !self.hung.load(Ordering::SeqCst),
            "the server hung and was killed after {WATCHDOG:?}: {err}"
        );
        (o.status.code(), got, err)
    }
}

/// Run `resync --server -rlpt . dst/` in `work`, send `batches` as the file
/// list and answer its requests with `answer(index, has_signature)`, as a
/// sender does. Returns the exit code, the server's messages and its stderr.
fn drive(
    work: &Path,
    batches: Vec<Vec<Entry>>,
    answer: &dyn Fn(u64, bool) -> Vec<Msg>,
) -> (Option<i32>, Vec<Msg>, String) {
    drive_with(work, handshake::our_hello(0), batches, answer)
}

/// [`drive`] with our `Hello` as given.
fn drive_with(
    work: &Path,
    hello: resync::remote::proto::Hello,
    batches: Vec<Vec<Entry>>,
    answer: &dyn Fn(u64, bool) -> Vec<Msg>,
) -> (Option<i32>, Vec<Msg>, String) {
    let mut p = Peer::start_with(work, &["--server", "-rlpt", ".", "dst/"], hello);
    let mut next = 0;
    for b in batches {
        let n = b.len() as u64;
        p.send(&Msg::FileBatch {
            first_index: next,
            entries: b,
        });
        next += n;
    }
    p.send(&Msg::FileListEnd { total: next });
    let mut got = Vec::new();
    let mut pending_sig = None;
    while let Some(m) = p.recv() {
        got.push(m.clone());
        let replies = match m {
            Msg::Request { index, flags, .. } if flags & 1 != 0 => {
                pending_sig = Some(index);
                Vec::new()
            }
            Msg::Request { index, .. } => answer(index, false),
            Msg::Signature { index, last, .. } if last && pending_sig == Some(index) => {
                answer(index, true)
            }
            Msg::Done { phase } => vec![Msg::Done { phase }],
            // Our Goodbye, then (like a client) wait for the server to
            // close its stream: that is its end of the conversation.
            Msg::Goodbye { .. } => vec![Msg::Goodbye { code: 0 }],
            Msg::Error { .. } => break,
            _ => Vec::new(),
        };
        for m in replies {
            if !p.send(&m) {
                break;
            }
        }
    }
    p.finish(got)
}

fn error_of(got: &[Msg]) -> Option<(u8, String)> {
    got.iter().find_map(|m| match m {
        Msg::Error { code, message } => Some((*code, message.clone())),
        _ => None,
    })
}

fn no_data(_: u64, _: bool) -> Vec<Msg> {
    Vec::new()
}

#[test]
fn a_file_below_a_sender_symlink_is_never_written() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let (code, got, err) = drive(
        t.path(),
        vec![vec![dir("."), link("a", &outside)], vec![file("a/x", 3)]],
        &no_data,
    );
    assert_eq!(code, Some(12), "{err}");
    let (c, msg) = error_of(&got).expect("an Error frame");
    assert_eq!(c, 12);
    assert!(msg.contains("outside the directories listed"), "{msg}");
    assert!(!outside.join("x").exists());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    assert!(!got.iter().any(|m| matches!(m, Msg::Request { .. })));
}

#[test]
fn a_name_listed_twice_is_a_protocol_error() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    let (code, got, err) = drive(
        t.path(),
        vec![
            vec![dir("."), link("a", &outside), dir("a")],
            vec![file("a/x", 3)],
        ],
        &no_data,
    );
    assert_eq!(code, Some(12), "{err}");
    assert!(error_of(&got).unwrap().1.contains("duplicate name"));
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
}

#[test]
fn a_destination_symlink_where_the_sender_has_a_directory_is_replaced() {
    let t = tempfile::tempdir().unwrap();
    let outside = t.path().join("outside");
    fs::create_dir(&outside).unwrap();
    fs::create_dir(t.path().join("dst")).unwrap();
    symlink(&outside, t.path().join("dst/a")).unwrap();
    let answer = |index: u64, _sig: bool| {
        vec![
            Msg::Data {
                index,
                ops: vec![WireOp::Literal(b"abc".to_vec())],
            },
            Msg::FileEnd {
                index,
                // The whole-file sum of the kind our Hello offers.
                hash: {
                    let kind = filesum::Kind::from_caps(handshake::our_hello(0).caps);
                    let mut h = filesum::Hasher::new(kind);
                    h.update(b"abc");
                    h.finish()
                },
            },
        ]
    };
    let (code, got, err) = drive(
        t.path(),
        vec![vec![dir("."), dir("a")], vec![file("a/x", 3)]],
        &answer,
    );
    assert_eq!(code, Some(0), "{err}");
    assert!(error_of(&got).is_none());
    assert_eq!(fs::read_dir(&outside).unwrap().count(), 0);
    let a = fs::symlink_metadata(t.path().join("dst/a")).unwrap();
    assert!(a.is_dir());
    assert_eq!(fs::read(t.path().join("dst/a/x")).unwrap(), b"abc");
}

#[test]
fn bad_data_keeps_the_old_file_and_is_exit_12() {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir(t.path().join("dst")).unwrap();
    fs::write(t.path().join("dst/f"), b"old content of the basis").unwrap();
    // A copy beyond the basis the signature announced.
    let copy = |index: u64, sig: bool| {
        assert!(sig, "an existing file is sent as a delta");
        vec![Msg::Data {
            index,
            ops: vec![WireOp::Copy {
                offset: 5,
                len: 1000,
            }],
        }]
    };
    let (code, got, err) = drive(t.path(), vec![vec![dir("."), file("f", 1005)]], &copy);
    assert_eq!(code, Some(12), "{err}");
    assert!(error_of(&got).unwrap().1.contains("Copy outside the basis"));
    // Data for another index than requested.
    let other = |_: u64, _: bool| {
        vec![Msg::Data {
            index: 7,
            ops: vec![WireOp::Literal(b"zz".to_vec())],
        }]
    };
    let (code, got, err) = drive(t.path(), vec![vec![dir("."), file("f", 2)]], &other);
    assert_eq!(code, Some(12), "{err}");
    assert!(error_of(&got).unwrap().1.contains("another file"));
    // A wrong whole-file hash: the redo fails too; the old file stays.
    let wrong = |index: u64, _: bool| {
        vec![
            Msg::Data {
                index,
                ops: vec![WireOp::Literal(b"new".to_vec())],
            },
            Msg::FileEnd {
                index,
                hash: [0; 32],
            },
        ]
    };
    let (code, _, err) = drive(t.path(), vec![vec![dir("."), file("f", 3)]], &wrong);
    assert_eq!(code, Some(23), "{err}");
    assert!(
        err.contains("failed verification -- update discarded"),
        "{err}"
    );
    assert_eq!(
        fs::read(t.path().join("dst/f")).unwrap(),
        b"old content of the basis"
    );
    let names: Vec<_> = fs::read_dir(t.path().join("dst"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["f"], "temp files left");
}

/// Unsigned LEB128, the protocol's `var`.
fn leb(mut v: u64) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let b = (v & 0x7f) as u8;
        v >>= 7;
        if v == 0 {
            out.push(b);
            return out;
        }
        out.push(b | 0x80);
    }
}

/// A raw frame: type, little-endian length, payload.
fn frame(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = vec![kind];
    f.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    f.extend_from_slice(payload);
    f
}

/// A push server fed `bytes` after the handshake; our side stays open
/// until the server's `Error` (an early end would hide what it found).
fn push_raw(work: &Path, bytes: &[u8]) -> (Option<i32>, Vec<Msg>, String) {
    let mut p = Peer::start(work, &["--server", "-rlpt", ".", "dst/"]);
    p.raw(bytes);
    p.finish(Vec::new())
}

/// Exit 12 with an `Error(12)` frame whose message contains `what`.
fn assert_protocol_error(r: &(Option<i32>, Vec<Msg>, String), what: &str) {
    let (code, got, err) = r;
    assert_eq!(*code, Some(12), "{err}");
    let (c, msg) = error_of(got).unwrap_or_else(|| panic!("no Error frame: {err}"));
    assert_eq!(c, 12);
    assert!(msg.contains(what), "{msg:?} lacks {what:?}");
    assert!(err.contains("protocol error: "), "{err}");
    assert!(err.contains(what), "{err}");
}

/// Only `dst` (and what the test made) exists in `work`.
fn nothing_outside(work: &Path, expected: &[&str]) {
    let mut names: Vec<String> = fs::read_dir(work)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names, want);
}

#[test]
fn absolute_dotdot_and_empty_component_names_are_refused() {
    for name in [
        "/tmp/evil",
        "../evil",
        "a/../../evil",
        "a//b",
        "./evil",
        "a/.",
    ] {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir(t.path().join("dst")).unwrap();
        let r = drive(
            t.path(),
            vec![vec![dir("."), dir("a")], vec![file(name, 3)]],
            &no_data,
        );
        assert_protocol_error(&r, "invalid entry name");
        assert!(!r.1.iter().any(|m| matches!(m, Msg::Request { .. })));
        nothing_outside(t.path(), &["dst"]);
        assert!(!Path::new("/tmp/evil").exists());
    }
}

#[test]
fn over_long_names_and_link_targets_are_refused() {
    let t = tempfile::tempdir().unwrap();
    let long = "n".repeat(5000);
    let r = drive(t.path(), vec![vec![dir("."), file(&long, 1)]], &no_data);
    assert_protocol_error(&r, "entry name 5000 exceeds limit 4096");
    let mut l = link("l", Path::new("x"));
    l.link = Some(vec![b'x'; 4097]);
    let r = drive(t.path(), vec![vec![dir("."), l]], &no_data);
    assert_protocol_error(&r, "symlink target 4097 exceeds limit 4096");
    // A name built from a prefix longer than the previous name.
    let mut p = leb(0);
    p.extend(leb(2));
    for (prefix, suffix) in [(0u64, &b"ab"[..]), (3, b"c")] {
        p.extend_from_slice(&0u16.to_le_bytes());
        p.extend(leb(prefix));
        p.extend(leb(suffix.len() as u64));
        p.extend_from_slice(suffix);
        p.extend(leb(0o100644));
        p.extend([0, 0, 0, 0, 0]);
    }
    let r = push_raw(t.path(), &frame(0x10, &p));
    assert_protocol_error(&r, "invalid entry name prefix");
    nothing_outside(t.path(), &[]);
}

#[test]
fn forged_huge_counts_and_lengths_are_refused_before_allocating() {
    let t = tempfile::tempdir().unwrap();
    // A frame header announcing 4 GiB.
    let mut h = vec![0x22];
    h.extend_from_slice(&u32::MAX.to_le_bytes());
    let r = push_raw(t.path(), &h);
    assert_protocol_error(&r, "frame length 4294967295 exceeds limit 1048576");
    // A FileBatch claiming 2^40 entries, then one claiming 60 000 in 3 bytes.
    let mut p = leb(0);
    p.extend(leb(1 << 40));
    let r = push_raw(t.path(), &frame(0x10, &p));
    assert_protocol_error(&r, "exceeds limit 65536");
    let mut p = leb(0);
    p.extend(leb(60_000));
    p.push(0);
    let r = push_raw(t.path(), &frame(0x10, &p));
    assert_protocol_error(&r, "truncated");
    // A Log whose text claims 1 GiB; Data claiming 2^60 ops.
    let mut p = vec![3];
    p.extend(leb(1 << 30));
    p.extend_from_slice(b"short");
    let r = push_raw(t.path(), &frame(0x04, &p));
    assert_protocol_error(&r, "exceeds limit 8192");
    let mut p = leb(0);
    p.extend(leb(1 << 60));
    let r = push_raw(t.path(), &frame(0x22, &p));
    assert_protocol_error(&r, "exceeds limit 65536");
    // A FileListEnd whose total is not what was sent.
    let r = push_raw(t.path(), &frame(0x11, &leb(7)));
    assert_protocol_error(&r, "FileListEnd total");
    nothing_outside(t.path(), &[]);
}

#[test]
fn a_peer_that_stops_mid_frame_is_an_early_end_or_a_timeout() {
    let t = tempfile::tempdir().unwrap();
    // Closed mid-frame: the header says 100 bytes, 10 come.
    let mut f = vec![0x10];
    f.extend_from_slice(&100u32.to_le_bytes());
    f.extend_from_slice(&[0; 10]);
    let mut p = Peer::start(t.path(), &["--server", "-rlpt", ".", "dst/"]);
    p.raw(&f);
    p.close();
    let (code, got, err) = p.finish(Vec::new());
    assert_eq!(code, Some(12), "{err}");
    assert!(error_of(&got).is_none());
    assert!(err.contains("connection unexpectedly closed ("), "{err}");
    assert!(err.contains(" bytes received so far) [receiver]"), "{err}");
    // Stopped mid-frame but the pipe stays open: --timeout ends it.
    let mut p = Peer::start(t.path(), &["--server", "-rlpt", "--timeout=2", ".", "dst/"]);
    p.raw(&f);
    let (code, _, err) = p.finish(Vec::new());
    assert_eq!(code, Some(30), "{err}");
    assert!(
        err.contains("[generator] io timeout after 2 seconds -- exiting\n"),
        "{err}"
    );
    assert!(
        err.contains("error: timeout in data send/receive (code 30)"),
        "{err}"
    );
    nothing_outside(t.path(), &[]);
}

#[test]
fn frames_out_of_order_are_protocol_errors() {
    let t = tempfile::tempdir().unwrap();
    let list = Msg::FileBatch {
        first_index: 0,
        entries: vec![dir(".")],
    }
    .encode_frame()
    .unwrap();
    let end = Msg::FileListEnd { total: 1 }.encode_frame().unwrap();
    let cat = |parts: &[&[u8]]| parts.concat();
    // A Request (the receiver's message) sent to the receiver.
    let req = Msg::Request {
        index: 0,
        flags: 0,
        offset: 0,
    }
    .encode_frame()
    .unwrap();
    assert_protocol_error(&push_raw(t.path(), &req), "unexpected message 0x20");
    // A second Hello after the handshake.
    let hello = Msg::Hello(handshake::our_hello(0)).encode_frame().unwrap();
    assert_protocol_error(&push_raw(t.path(), &hello), "unexpected message 0x01");
    // A batch that skips indexes.
    let skip = Msg::FileBatch {
        first_index: 5,
        entries: vec![dir(".")],
    }
    .encode_frame()
    .unwrap();
    assert_protocol_error(
        &push_raw(t.path(), &skip),
        "FileBatch index out of sequence",
    );
    // More of the list after its end.
    let more = Msg::FileBatch {
        first_index: 1,
        entries: vec![file("late", 1)],
    }
    .encode_frame()
    .unwrap();
    assert_protocol_error(
        &push_raw(t.path(), &cat(&[&list, &end, &more])),
        "file-list message after FileListEnd",
    );
    // Anything after Goodbye.
    let bye = Msg::Goodbye { code: 0 }.encode_frame().unwrap();
    let ka = Msg::Keepalive.encode_frame().unwrap();
    assert_protocol_error(
        &push_raw(t.path(), &cat(&[&bye, &ka])),
        "message after Goodbye",
    );
    // The end of a phase where the requested file's data should be.
    fs::create_dir_all(t.path().join("dst")).unwrap();
    let early = |_: u64, _: bool| vec![Msg::Done { phase: 0 }];
    let r = drive(t.path(), vec![vec![dir("."), file("f", 2)]], &early);
    assert_protocol_error(&r, "file data for another file than requested");
    assert_eq!(
        fs::read_dir(t.path().join("dst")).unwrap().count(),
        0,
        "temp file left"
    );
    nothing_outside(t.path(), &["dst"]);
}

#[test]
fn a_silent_sender_or_receiver_is_dropped_after_the_timeout() {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir(t.path().join("src")).unwrap();
    fs::write(t.path().join("src/f"), b"data").unwrap();
    // A push whose sender says nothing after the handshake.
    let p = Peer::start(t.path(), &["--server", "-rlpt", "--timeout=1", ".", "dst/"]);
    let (code, _, err) = p.finish(Vec::new());
    assert_eq!(code, Some(30), "{err}");
    assert!(
        err.contains("[generator] io timeout after 1 seconds -- exiting"),
        "{err}"
    );
    // A pull whose receiver takes the list and never asks for anything.
    let mut p = Peer::start(
        t.path(),
        &["--server", "--sender", "-r", "--timeout=1", ".", "src/"],
    );
    let mut got = Vec::new();
    while let Some(m) = p.recv() {
        let end = matches!(m, Msg::FileListEnd { .. });
        got.push(m);
        if end {
            break;
        }
    }
    let (code, _, err) = p.finish(got);
    assert_eq!(code, Some(30), "{err}");
    assert!(
        err.contains("[sender] io timeout after 1 seconds -- exiting"),
        "{err}"
    );
}

#[test]
fn an_idle_server_sends_keepalives_and_a_slow_but_alive_peer_is_served() {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir(t.path().join("src")).unwrap();
    fs::write(t.path().join("src/f"), b"data").unwrap();
    let mut p = Peer::start(
        t.path(),
        &["--server", "--sender", "-r", "--timeout=2", ".", "src/"],
    );
    let mut list = Vec::new();
    while let Some(m) = p.recv() {
        let end = matches!(m, Msg::FileListEnd { .. });
        list.push(m);
        if end {
            break;
        }
    }
    // Busy for twice the timeout, but sending Keepalive meanwhile (as a
    // receiver scanning a big tree does): the sender waits, and keeps us
    // informed that it is alive.
    let reader = {
        let mut r = p.r.take().unwrap();
        std::thread::spawn(move || {
            let mut got = Vec::new();
            while let Ok(m) = r.recv() {
                let bye = matches!(m, Msg::Goodbye { .. });
                got.push(m);
                if bye {
                    break;
                }
            }
            (r, got)
        })
    };
    for _ in 0..8 {
        std::thread::sleep(Duration::from_millis(500));
        assert!(p.send(&Msg::Keepalive));
    }
    let index = list
        .iter()
        .find_map(|m| match m {
            Msg::FileBatch {
                first_index,
                entries,
            } => entries
                .iter()
                .position(|e| e.name == b"f")
                .map(|i| first_index + i as u64),
            _ => None,
        })
        .expect("f listed");
    p.send(&Msg::Request {
        index,
        flags: 0,
        offset: 0,
    });
    p.send(&Msg::Done { phase: 0 });
    p.send(&Msg::Done { phase: 1 });
    p.send(&Msg::Goodbye { code: 0 });
    let (r, got) = reader.join().unwrap();
    p.r = Some(r);
    let keepalives = got.iter().filter(|m| **m == Msg::Keepalive).count();
    assert!(keepalives >= 2, "{got:?}");
    let data: Vec<u8> = got
        .iter()
        .filter_map(|m| match m {
            Msg::Data { ops, .. } => Some(ops.clone()),
            _ => None,
        })
        .flatten()
        .flat_map(|op| match op {
            WireOp::Literal(b) => b,
            WireOp::Copy { .. } => panic!("no basis was sent"),
        })
        .collect();
    assert_eq!(data, b"data");
    p.close();
    let (code, got, err) = p.finish(got);
    assert_eq!(code, Some(0), "{err}");
    assert!(error_of(&got).is_none(), "{got:?}");
}

#[test]
fn a_hostile_receiver_cannot_make_the_sender_read_other_files() {
    let t = tempfile::tempdir().unwrap();
    fs::create_dir_all(t.path().join("src/d")).unwrap();
    fs::write(t.path().join("src/f"), b"data").unwrap();
    // Start a pull server and read its list; the indexes of `d` and `f`.
    let start = |t: &Path| {
        let mut p = Peer::start(t, &["--server", "--sender", "-r", ".", "src/"]);
        let (mut d, mut f) = (None, None);
        while let Some(m) = p.recv() {
            match m {
                Msg::FileBatch {
                    first_index,
                    entries,
                } => {
                    for (i, e) in entries.iter().enumerate() {
                        let at = Some(first_index + i as u64);
                        match e.name.as_slice() {
                            b"d" => d = at,
                            b"f" => f = at,
                            _ => {}
                        }
                    }
                }
                Msg::FileListEnd { .. } => break,
                _ => {}
            }
        }
        (p, d.expect("d listed"), f.expect("f listed"))
    };
    let (mut p, d, f) = start(t.path());
    p.close();
    drop(p.finish(Vec::new()));
    let cases: Vec<(Vec<Msg>, &str)> = vec![
        // `d` is a directory; 2^30 names nothing; 2^40 is over the bound.
        (
            vec![Msg::Request {
                index: d,
                flags: 0,
                offset: 0,
            }],
            "Request for an index that is not a regular file",
        ),
        (
            vec![Msg::Request {
                index: 1 << 30,
                flags: 0,
                offset: 0,
            }],
            "Request for an index that is not a regular file",
        ),
        (
            vec![Msg::Request {
                index: 1 << 40,
                flags: 0,
                offset: 0,
            }],
            "Request index 1099511627776 exceeds limit 2147483647",
        ),
        (
            vec![Msg::Signature {
                index: f,
                last: true,
                piece: vec![1, 2, 3],
            }],
            "Signature without its Request",
        ),
        (
            vec![
                Msg::Request {
                    index: f,
                    flags: 1,
                    offset: 0,
                },
                Msg::Signature {
                    index: f,
                    last: true,
                    piece: b"not an RSIG signature".to_vec(),
                },
            ],
            "bad signature",
        ),
        (
            vec![Msg::Data {
                index: f,
                ops: vec![WireOp::Literal(b"x".to_vec())],
            }],
            "unexpected message 0x22",
        ),
    ];
    for (msgs, what) in cases {
        let (mut p, _, _) = start(t.path());
        for m in &msgs {
            p.send(m);
        }
        let r = p.finish(Vec::new());
        assert_protocol_error(&r, what);
    }
    nothing_outside(t.path(), &["src"]);
}

/// The whole-file check (`FileEnd`) of a file sent whole is XXH3-128 when
/// both sides offer `XXH3_SUMS`, BLAKE3 with a peer that does not; a file
/// rebuilt from a delta (its request carried a signature) is always checked
/// with BLAKE3. A sum of the other kind fails verification (exit 23, the
/// old file kept, a new one not made).
#[test]
fn whole_file_sums_follow_the_agreed_kind() {
    use resync::remote::proto::cap;
    let sum = |kind: filesum::Kind, data: &[u8]| {
        let mut h = filesum::Hasher::new(kind);
        h.update(data);
        h.finish()
    };
    // `hash` answers the first request; a redo (sent whole) gets a sum no
    // kind matches, so only the first answer can succeed.
    let with = |hash: [u8; 32]| {
        let answered = std::cell::Cell::new(false);
        move |index: u64, _: bool| {
            let hash = if answered.replace(true) {
                [0; 32]
            } else {
                hash
            };
            vec![
                Msg::Data {
                    index,
                    ops: vec![WireOp::Literal(b"new".to_vec())],
                },
                Msg::FileEnd { index, hash },
            ]
        }
    };
    let mut old_peer = handshake::our_hello(0);
    old_peer.caps &= !cap::XXH3_SUMS;
    let (b3, x3) = (
        sum(filesum::Kind::Blake3, b"new"),
        sum(filesum::Kind::Xxh3, b"new"),
    );
    assert_ne!(b3, x3);
    // (hello, a basis at the destination, the sum that must be accepted)
    for (hello, basis, good, bad) in [
        (handshake::our_hello(0), false, x3, b3),
        (old_peer.clone(), false, b3, x3),
        (handshake::our_hello(0), true, b3, x3),
        (old_peer, true, b3, x3),
    ] {
        for (hash, ok) in [(good, true), (bad, false)] {
            let t = tempfile::tempdir().unwrap();
            fs::create_dir(t.path().join("dst")).unwrap();
            if basis {
                fs::write(t.path().join("dst/f"), b"old").unwrap();
            }
            let (code, _, err) = drive_with(
                t.path(),
                hello.clone(),
                vec![vec![dir("."), file("f", 3)]],
                &with(hash),
            );
            let content = fs::read(t.path().join("dst/f")).ok();
            let what = format!("basis={basis} ok={ok} caps={:#x}", hello.caps);
            if ok {
                assert_eq!(code, Some(0), "{what}: {err}");
                assert_eq!(content.as_deref(), Some(&b"new"[..]), "{what}");
            } else {
                assert_eq!(code, Some(23), "{what}: {err}");
                assert!(err.contains("failed verification"), "{what}: {err}");
                let old = basis.then_some(&b"old"[..]);
                assert_eq!(content.as_deref(), old, "{what}");
            }
        }
    }
}

/// A secluded server (`--server -s .`) takes its command line only from a
/// `Start` that is one: anything else first is a protocol error (12), a
/// `Start` that is not a server command line or does not parse is refused
/// (12, 1), and nothing is written.
#[test]
fn a_secluded_server_takes_only_a_real_start() {
    let cases: Vec<(Msg, i32, &str)> = vec![
        (Msg::Done { phase: 0 }, 12, "expected Start"),
        (
            Msg::Start {
                args: vec![b"-a".to_vec(), b".".to_vec(), b"dst/".to_vec()],
            },
            12,
            "must begin with --server",
        ),
        (
            Msg::Start {
                args: vec![
                    b"--server".to_vec(),
                    b"--no-such-option".to_vec(),
                    b".".to_vec(),
                    b"dst/".to_vec(),
                ],
            },
            1,
            "unknown option",
        ),
        (
            Msg::Start {
                args: vec![b"--server".to_vec(), b"-s".to_vec(), b".".to_vec()],
            },
            1,
            "not a server command line",
        ),
    ];
    for (first, want, text) in cases {
        let t = tempfile::tempdir().unwrap();
        let mut p = Peer::start(t.path(), &["--server", "-s", "."]);
        p.send(&first);
        let (code, got, err) = p.finish(Vec::new());
        assert_eq!(code, Some(want), "{text}: {err}");
        let (c, msg) = error_of(&got).unwrap_or_else(|| panic!("{text}: no Error: {err}"));
        assert_eq!(i32::from(c), want);
        assert!(msg.contains(text), "{text}: {msg}");
        assert!(!t.path().join("dst").exists());
    }
}
