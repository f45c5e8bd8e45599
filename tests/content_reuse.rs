//! Content reuse across files (`--no-W`): a file moved or renamed in the
//! source is rebuilt from its old copy elsewhere in the destination, even
//! when `--delete` removes that copy during the same run, and a candidate
//! that changes while it is used still ends in the source's exact bytes.

use std::fs;
use std::os::unix::fs::FileExt;
use std::path::Path;

mod common;
use common::{bytes, resync, stat_figure};

fn write(p: &Path, data: &[u8]) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

/// Every file below `a` has the same bytes at the same place below `b`, and
/// `b` holds nothing else.
fn same_tree(a: &Path, b: &Path) {
    fn list(root: &Path, p: &Path, out: &mut Vec<String>) {
        for e in fs::read_dir(p).unwrap() {
            let e = e.unwrap();
            let rel = e.path().strip_prefix(root).unwrap().display().to_string();
            out.push(rel);
            if e.file_type().unwrap().is_dir() {
                list(root, &e.path(), out);
            }
        }
    }
    let (mut x, mut y) = (Vec::new(), Vec::new());
    list(a, a, &mut x);
    list(b, b, &mut y);
    x.sort();
    y.sort();
    assert_eq!(x, y);
    for n in &x {
        let (pa, pb) = (a.join(n), b.join(n));
        if pa.is_file() {
            assert!(
                fs::read(&pa).unwrap() == fs::read(&pb).unwrap(),
                "{n} differs"
            );
        }
    }
}

#[test]
fn moved_and_renamed_files_are_rebuilt_from_their_old_copies() {
    let d = tempfile::tempdir_in("/tmp").unwrap();
    let (src, dst) = (d.path().join("src"), d.path().join("dst"));
    let big = bytes(24 << 20, 1);
    let other = bytes(8 << 20, 2);
    let third = bytes(6 << 20, 3);
    // Renamed in the same directory (the old name is deleted before the
    // directory's files are sent), moved to another directory with an edit
    // and a prepend, and moved out of a directory that disappears.
    write(&dst.join("same/old-name.bin"), &big);
    write(&src.join("same/new-name.bin"), &big);
    write(&dst.join("zz/orig.bin"), &other);
    let mut edited = b"a prepended header\n".to_vec();
    edited.extend_from_slice(&other);
    edited[4_000_000..4_000_100].fill(7);
    write(&src.join("aa/moved.bin"), &edited);
    fs::create_dir_all(src.join("zz")).unwrap();
    write(&src.join("zz/keep.txt"), b"still here\n");
    write(&dst.join("gone/deep/x.bin"), &third);
    write(&src.join("x-now-here.bin"), &third);

    let out = resync(d.path(), &["-a", "--no-W", "--delete", "--stats", "-v"]);
    let total = (big.len() + edited.len() + third.len()) as u64;
    let literal = stat_figure(&out, "Literal data:");
    let matched = stat_figure(&out, "Matched data:");
    assert_eq!(literal + matched, total + 11, "{out}");
    assert!(
        literal < total / 100,
        "literal {literal} of {total}:\n{out}"
    );
    for gone in ["same/old-name.bin", "zz/orig.bin", "gone/deep/x.bin"] {
        assert!(out.contains(&format!("deleting {gone}\n")), "{out}");
        assert!(!dst.join(gone).exists(), "{gone} still there");
    }
    // Exactly the source's names and bytes (no temp files left behind).
    same_tree(&src, &dst);

    // Without --no-W (a local copy is whole-file, as rsync's) nothing is reused.
    fs::rename(src.join("aa/moved.bin"), src.join("aa/again.bin")).unwrap();
    let out = resync(d.path(), &["-a", "--delete", "--stats"]);
    assert_eq!(stat_figure(&out, "Matched data:"), 0, "{out}");
    same_tree(&src, &dst);
}

#[test]
fn a_candidate_changing_while_used_still_ends_correct() {
    let d = tempfile::tempdir_in("/tmp").unwrap();
    let (src, dst) = (d.path().join("src"), d.path().join("dst"));
    let data = bytes(32 << 20, 4);
    // The old copy stays in the destination (no --delete) while another
    // process keeps rewriting it in place during the run.
    write(&dst.join("extra/old.bin"), &data);
    write(&src.join("new.bin"), &data);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let cand = dst.join("extra/old.bin");
    let s2 = stop.clone();
    let scribbler = std::thread::spawn(move || {
        let f = fs::File::options().write(true).open(&cand).unwrap();
        let junk = bytes(1 << 20, 5);
        let mut i = 0u64;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            let at = (i * 7_777_777) % (31 << 20);
            f.write_all_at(&junk, at).unwrap();
            i += 1;
        }
        i
    });
    for _ in 0..3 {
        let _ = fs::remove_file(dst.join("new.bin"));
        resync(d.path(), &["-a", "--no-W", "--stats"]);
        assert!(fs::read(dst.join("new.bin")).unwrap() == data);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(scribbler.join().unwrap() > 0);
}
