//! The delta path end to end: `resync --no-W` against an existing
//! destination file reports the delta's literal and matched bytes in
//! `--stats` and leaves exactly the source's bytes; on a loop-mounted XFS with
//! reflink the rebuilt file shares the unchanged ranges' extents with the old
//! version (clone + patch); `--inplace --no-W` keeps rewriting in place.

use resync::delta::apply::ApplyMethod;
use resync::sys::copy::CopyHints;
use std::fs::{self, File};
use std::path::Path;
use std::process::Command;

mod common;
use common::{Xfs, bytes, resync, stat_figure};

/// src/f = dst/f with a 4 KiB prepend and 3 rewritten ranges; dst older.
fn setup(dir: &Path, len: usize) -> (Vec<u8>, Vec<u8>) {
    let old = bytes(len, 1);
    let mut new = bytes(4096, 2);
    new.extend_from_slice(&old);
    for at in [len / 4, len / 2, len - 10_000] {
        new[at..at + 5000].fill(0xee);
    }
    fs::create_dir_all(dir.join("src")).unwrap();
    fs::create_dir_all(dir.join("dst")).unwrap();
    fs::write(dir.join("src/f"), &new).unwrap();
    fs::write(dir.join("dst/f"), &old).unwrap();
    let past = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000_000);
    File::options()
        .write(true)
        .open(dir.join("dst/f"))
        .unwrap()
        .set_modified(past)
        .unwrap();
    (old, new)
}

#[test]
fn no_w_stats_report_the_delta() {
    let d = tempfile::tempdir_in("/tmp").unwrap();
    let (_, new) = setup(d.path(), 8 << 20);
    let out = resync(d.path(), &["-a", "--no-W", "--stats", "-i"]);
    assert!(out.contains(">f.st...... f"), "{out}");
    assert!(fs::read(d.path().join("dst/f")).unwrap() == new);
    let (lit, mat) = (
        stat_figure(&out, "Literal data:"),
        stat_figure(&out, "Matched data:"),
    );
    assert_eq!(lit + mat, new.len() as u64);
    // 4 KiB + 3 × 5000 bytes changed, plus at most ~2 chunks (2 KiB avg,
    // 8 KiB max) around each edit.
    assert!(lit >= 4096 + 15_000, "{lit}");
    assert!(lit <= 4096 + 15_000 + 4 * 2 * 8192, "{lit}");
    // Whole-file copies (the local default) report everything as literal.
    let (_, new) = setup(d.path(), 1 << 20);
    let out = resync(d.path(), &["-a", "--stats"]);
    assert_eq!(stat_figure(&out, "Literal data:"), new.len() as u64);
    assert_eq!(stat_figure(&out, "Matched data:"), 0);
    // No temp file left behind.
    let names: Vec<_> = fs::read_dir(d.path().join("dst")).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn inplace_no_w_rewrites_in_place() {
    use std::os::unix::fs::MetadataExt;
    let d = tempfile::tempdir_in("/tmp").unwrap();
    let (_, new) = setup(d.path(), 1 << 20);
    let ino = fs::metadata(d.path().join("dst/f")).unwrap().ino();
    resync(d.path(), &["-a", "--no-W", "--inplace"]);
    assert!(fs::read(d.path().join("dst/f")).unwrap() == new);
    assert_eq!(fs::metadata(d.path().join("dst/f")).unwrap().ino(), ino);
}

/// The file's extents per `filefrag -v`: (first byte, end byte, shared).
fn extents(p: &Path) -> Vec<(u64, u64, bool)> {
    let out = Command::new("filefrag")
        .args(["-v", "-b4096"])
        .arg(p)
        .output()
        .expect("filefrag (e2fsprogs)");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut v = Vec::new();
    for l in text.lines() {
        // "   0:        0..     255:      24..   279:    256:             shared,last,eof"
        let f: Vec<&str> = l.split(':').collect();
        if f.len() < 4 || f[0].trim().parse::<u32>().is_err() {
            continue;
        }
        let mut r = f[1].split("..");
        let a: u64 = r.next().unwrap().trim().parse().unwrap();
        let b: u64 = r.next().unwrap().trim().parse().unwrap();
        v.push((a * 4096, (b + 1) * 4096, l.contains("shared")));
    }
    v
}

/// Whether every block of `[from, to)` lies in a shared extent.
fn all_shared(ext: &[(u64, u64, bool)], from: u64, to: u64) -> bool {
    let mut pos = from;
    while pos < to {
        match ext.iter().find(|(a, b, _)| *a <= pos && pos < *b) {
            Some((_, b, true)) => pos = *b,
            _ => return false,
        }
    }
    true
}

#[test]
fn xfs_clone_and_patch_shares_unchanged_extents() {
    let Some(x) = Xfs::mount() else { return };
    let m = x.path();
    // In-place edits (no shift): the clone keeps every untouched block shared.
    let len = 32usize << 20;
    let old = bytes(len, 5);
    let mut new = old.clone();
    for at in [3 << 20, 17 << 20] {
        new[at..at + 10_000].fill(0x11);
    }
    fs::write(m.join("old"), &old).unwrap();
    fs::write(m.join("new"), &new).unwrap();
    let src = File::open(m.join("new")).unwrap();
    let basis = File::open(m.join("old")).unwrap();
    let out = File::options()
        .read(true)
        .write(true)
        .create_new(true)
        .open(m.join("out"))
        .unwrap();
    let o =
        resync::delta::sync_file(&src, len as u64, &basis, &out, &CopyHints::default()).unwrap();
    drop(out);
    assert_eq!(o.method, ApplyMethod::Reflink);
    assert!(!o.retried);
    assert!(fs::read(m.join("out")).unwrap() == new);
    let ext = extents(&m.join("out"));
    // Well away from the edits (chunks are ≤ 8 KiB here): shared.
    assert!(all_shared(&ext, 0, (3 << 20) - 65_536), "{ext:?}");
    assert!(
        all_shared(&ext, (3 << 20) + 65_536, (17 << 20) - 65_536),
        "{ext:?}"
    );
    assert!(all_shared(&ext, (17 << 20) + 65_536, len as u64), "{ext:?}");
    // The edited blocks were written: not shared.
    assert!(!all_shared(&ext, 3 << 20, (3 << 20) + 8192), "{ext:?}");

    // End to end through resync, with a 4 KiB prepend: the shifted data is
    // block-aligned, so copy_file_range remaps it and it stays shared too.
    let (_, new) = setup(&m, 16 << 20);
    // Keep the old version alive under another name: extents show as shared
    // only while two files use them.
    fs::hard_link(m.join("dst/f"), m.join("old-f")).unwrap();
    let out = resync(&m, &["-a", "--no-W", "--stats"]);
    assert!(fs::read(m.join("dst/f")).unwrap() == new);
    assert!(stat_figure(&out, "Matched data:") > (15 << 20));
    let ext = extents(&m.join("dst/f"));
    let shared: u64 = ext.iter().filter(|e| e.2).map(|e| e.1 - e.0).sum();
    assert!(shared >= 12 << 20, "only {shared} bytes shared: {ext:?}");
}
