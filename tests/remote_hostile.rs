//! A hostile sender driving `resync --server` (a push receiver) with
//! crafted frames: nothing may be written outside the destination (no
//! write through a symlink the sender made or the destination had, rsync's
//! CVE-2024-12087 class), a malformed stream ends with exit 12, never a
//! panic or a hang, and the destination keeps its old files.

use resync::remote::conn::{FrameReader, FrameWriter};
use resync::remote::handshake::{self, Side};
use resync::remote::proto::{Entry, Msg, WireOp};
use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_resync");

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

/// Run `resync --server . dst/` in `work`, send `batches` as the file list
/// and answer its requests with `answer(index, has_signature)`. Returns the
/// exit code, the server's messages and its stderr.
fn drive(
    work: &Path,
    batches: Vec<Vec<Entry>>,
    answer: &dyn Fn(u64, bool) -> Vec<Msg>,
) -> (Option<i32>, Vec<Msg>, String) {
    let mut c = Command::new(BIN)
        .args(["--server", "-rlpt", ".", "dst/"])
        .current_dir(work)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut r = FrameReader::new(c.stdout.take().unwrap());
    let mut w = FrameWriter::new(c.stdin.take().unwrap());
    handshake::handshake(Side::Client, &mut r, &mut w, &handshake::our_hello(0)).unwrap();
    let mut next = 0;
    for b in batches {
        let n = b.len() as u64;
        w.send(&Msg::FileBatch {
            first_index: next,
            entries: b,
        })
        .unwrap();
        next += n;
    }
    w.send(&Msg::FileListEnd { total: next }).unwrap();
    w.flush().unwrap();
    let mut got = Vec::new();
    let mut pending_sig = None;
    while let Ok(m) = r.recv() {
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
            Msg::Goodbye { .. } => vec![Msg::Goodbye { code: 0 }],
            Msg::Error { .. } => break,
            _ => Vec::new(),
        };
        for m in replies {
            if w.send(&m).is_err() {
                break;
            }
        }
        let _ = w.flush();
    }
    drop(w);
    let o = c.wait_with_output().unwrap();
    (
        o.status.code(),
        got,
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
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
#[ignore = "hangs (harness or receiver end-of-transfer exchange); not diagnosed yet"]
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
                hash: *blake3::hash(b"abc").as_bytes(),
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
#[ignore = "hangs (harness or receiver end-of-transfer exchange); not diagnosed yet"]
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
