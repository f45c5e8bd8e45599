//! Snapshot backups the way rsnapshot makes them: rotate `daily.N`, then
//! `rsync -a --link-dest=../daily.1 src/ daily.0/`. Four runs with changes
//! in between, made once with resync and once with rsync on identical
//! sources. The specification:
//!
//! - every snapshot holds exactly the source as it was at that run
//!   (contents, modes, nanosecond mtimes, symlinks);
//! - a file unchanged since the previous run is the *same inode* as in the
//!   previous snapshot; a changed file (data, mode or mtime) is a new inode;
//! - the snapshots, their sharing of inodes and the `-i` lines are exactly
//!   what rsync produces.
//!
//! Like rsnapshot, every run passes `--delete`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

fn resync() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_resync"))
}

fn have_rsync() -> bool {
    Command::new("rsync")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// rsnapshot's `--delete`: files removed from the source vanish from the
/// new snapshot (and only from it).
fn delete_flag() -> Vec<&'static str> {
    vec!["--delete"]
}

fn set_mtime(p: &Path, secs: i64, nsec: i64) {
    let ts = rustix::fs::Timestamps {
        last_access: rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: nsec as _,
        },
        last_modification: rustix::fs::Timespec {
            tv_sec: secs,
            tv_nsec: nsec as _,
        },
    };
    rustix::fs::utimensat(
        rustix::fs::CWD,
        p,
        &ts,
        rustix::fs::AtFlags::SYMLINK_NOFOLLOW,
    )
    .unwrap();
}

fn write(p: &Path, data: &[u8], mtime: i64) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
    set_mtime(p, mtime, 123_456_789);
}

/// The source as it is before run `step` (1..=4); directory mtimes are
/// fixed too, so both roots see identical trees.
fn prepare_source(src: &Path, step: u32) {
    match step {
        1 => {
            write(&src.join("a.txt"), b"alpha\n", 1_600_000_000);
            write(&src.join("b.txt"), b"bravo\n", 1_600_000_100);
            write(&src.join("dir/c.txt"), b"charlie\n", 1_600_000_200);
            write(&src.join("dir/d.bin"), &vec![7u8; 100_000], 1_600_000_300);
            write(&src.join("dir/deep/e.txt"), b"echo\n", 1_600_000_400);
            std::os::unix::fs::symlink("a.txt", src.join("link")).unwrap();
        }
        2 => {
            // New data, new mtime.
            write(
                &src.join("b.txt"),
                b"bravo, second version\n",
                1_600_100_000,
            );
            // Same data, other mode: not the same file for -a.
            fs::set_permissions(src.join("dir/c.txt"), fs::Permissions::from_mode(0o600)).unwrap();
            // Same data, other mtime.
            set_mtime(&src.join("dir/d.bin"), 1_600_100_300, 5);
            write(&src.join("new.txt"), b"new in step 2\n", 1_600_100_500);
        }
        3 => {
            fs::remove_file(src.join("a.txt")).unwrap();
            fs::remove_file(src.join("link")).unwrap();
            std::os::unix::fs::symlink("b.txt", src.join("link")).unwrap();
            write(&src.join("dir/deep/e.txt"), b"ECHO\n", 1_600_200_400);
        }
        _ => {
            write(&src.join("a.txt"), b"alpha is back\n", 1_600_300_000);
            fs::remove_dir_all(src.join("dir/deep")).unwrap();
        }
    }
    for d in ["dir/deep", "dir", "."] {
        if src.join(d).exists() {
            set_mtime(&src.join(d), 1_650_000_000 + step as i64, 0);
        }
    }
}

/// rsnapshot's rotation: drop the oldest, shift the others up.
fn rotate(root: &Path) {
    let _ = fs::remove_dir_all(root.join("daily.3"));
    for n in (0..3).rev() {
        let from = root.join(format!("daily.{n}"));
        if from.exists() {
            fs::rename(&from, root.join(format!("daily.{}", n + 1))).unwrap();
        }
    }
}

/// Run one snapshot; returns the sorted `-i` lines.
fn snapshot(prog: &Path, root: &Path, delete: &[&str]) -> Vec<String> {
    rotate(root);
    let out = Command::new(prog)
        .current_dir(root)
        .arg("-ai")
        .args(delete)
        .args(["--link-dest=../daily.1", "src/", "daily.0/"])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{} failed: {}",
        prog.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    // rsync's lines come from two processes: compare them as a set.
    let mut lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(String::from)
        .collect();
    lines.sort();
    lines
}

/// Every entry below `root`, with type, mode, size, ns mtime, data or link
/// target, and the other snapshot paths sharing its inode.
fn describe(root: &Path) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(PathBuf, fs::Metadata)>) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        names.sort();
        for p in names {
            let m = fs::symlink_metadata(&p).unwrap();
            out.push((p.strip_prefix(base).unwrap().to_path_buf(), m.clone()));
            if m.is_dir() {
                walk(base, &p, out);
            }
        }
    }
    let mut all = Vec::new();
    walk(root, root, &mut all);
    let mut by_inode: BTreeMap<u64, Vec<String>> = BTreeMap::new();
    for (p, m) in &all {
        if m.is_file() {
            by_inode
                .entry(m.ino())
                .or_default()
                .push(p.display().to_string());
        }
    }
    all.iter()
        .filter(|(p, _)| !p.starts_with("src"))
        .map(|(p, m)| {
            let full = root.join(p);
            let what = if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&full).unwrap().display())
            } else if m.is_file() {
                let data = fs::read(&full).unwrap();
                let shared = &by_inode[&m.ino()];
                format!("{:?} shared={shared:?}", &data[..data.len().min(24)])
            } else {
                String::new()
            };
            // Directory mtimes of a snapshot are part of it too.
            let mtime = if m.file_type().is_symlink() {
                String::new()
            } else {
                format!("{}.{:09}", m.mtime(), m.mtime_nsec())
            };
            format!(
                "{} {:o} {} {mtime} {what}",
                p.display(),
                m.mode(),
                if m.is_file() { m.len() } else { 0 }
            )
        })
        .collect()
}

fn ino(p: &Path) -> u64 {
    fs::symlink_metadata(p).unwrap().ino()
}

/// Whether `rel` is the same file (data, mode, mtime) in both snapshots.
fn unchanged(prev: &Path, cur: &Path, rel: &str) -> bool {
    let (Ok(a), Ok(b)) = (
        fs::symlink_metadata(prev.join(rel)),
        fs::symlink_metadata(cur.join(rel)),
    ) else {
        return false;
    };
    a.mode() == b.mode()
        && a.mtime() == b.mtime()
        && a.mtime_nsec() == b.mtime_nsec()
        && fs::read(prev.join(rel)).unwrap() == fs::read(cur.join(rel)).unwrap()
}

#[test]
fn four_step_link_dest_rotation_shares_unchanged_files_and_matches_rsync() {
    if !have_rsync() {
        eprintln!("skipping: rsync (the oracle) is not installed");
        return;
    }
    let delete = delete_flag();
    let ours = tempfile::tempdir().unwrap();
    let theirs = tempfile::tempdir().unwrap();
    let files = [
        "a.txt",
        "b.txt",
        "new.txt",
        "dir/c.txt",
        "dir/d.bin",
        "dir/deep/e.txt",
    ];
    for step in 1..=4 {
        for root in [ours.path(), theirs.path()] {
            prepare_source(&root.join("src"), step);
        }
        let our_lines = snapshot(&resync(), ours.path(), &delete);
        let their_lines = snapshot(Path::new("rsync"), theirs.path(), &delete);
        assert_eq!(our_lines, their_lines, "-i output of run {step}");

        let cur = ours.path().join("daily.0");
        let prev = ours.path().join("daily.1");
        let src = ours.path().join("src");
        // The snapshot is the source, to the nanosecond.
        for f in files {
            let s = src.join(f);
            if !s.exists() {
                assert!(!cur.join(f).exists(), "run {step}: {f} should not be there");
                continue;
            }
            let (sm, dm) = (
                fs::metadata(&s).unwrap(),
                fs::metadata(cur.join(f)).unwrap(),
            );
            assert_eq!(fs::read(&s).unwrap(), fs::read(cur.join(f)).unwrap(), "{f}");
            assert_eq!(sm.mode(), dm.mode(), "run {step}: mode of {f}");
            assert_eq!(
                (sm.mtime(), sm.mtime_nsec()),
                (dm.mtime(), dm.mtime_nsec()),
                "run {step}: mtime of {f}"
            );
            // Unchanged since the last run: the same inode; else a new one.
            if step > 1 && prev.join(f).exists() {
                let same = ino(&prev.join(f)) == ino(&cur.join(f));
                assert_eq!(
                    same,
                    unchanged(&prev, &cur, f),
                    "run {step}: {f} shared with daily.1 = {same}"
                );
            }
        }
        assert_eq!(
            fs::read_link(cur.join("link")).unwrap(),
            fs::read_link(src.join("link")).unwrap()
        );
        assert_eq!(
            describe(ours.path()),
            describe(theirs.path()),
            "snapshots after run {step}"
        );
    }
    // The expected sharing, spelled out for the last runs.
    let root = ours.path();
    assert_eq!(
        ino(&root.join("daily.0/new.txt")),
        ino(&root.join("daily.2/new.txt")),
        "new.txt unchanged since run 2: one inode in three snapshots"
    );
    assert_eq!(
        fs::metadata(root.join("daily.0/new.txt")).unwrap().nlink(),
        3
    );
    assert_ne!(
        ino(&root.join("daily.0/a.txt")),
        ino(&root.join("daily.3/a.txt")),
        "a.txt came back with new data: a new inode"
    );
}
