//! The comparator's own tests: identical generations compare equal, and every kind of
//! difference the harness is meant to catch is reported.

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::run::{self, Dest, Norm, Scenario};
use crate::snapshot::{self, Mask, Window};
use crate::tree::{self, Tree};

/// Two independent generations of `t` (same seed), stamped: (tempdir, work A, work B).
fn two(t: Tree) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("A"), tmp.path().join("B"));
    for w in [&a, &b] {
        tree::mkdir(w);
        tree::generate(t, w, "src", 7);
        tree::stamp(w, 7);
    }
    (tmp, a, b)
}

fn diff(a: &Path, b: &Path) -> Vec<String> {
    snapshot::diff(
        &snapshot::take(a),
        &snapshot::take(b),
        None,
        None,
        &Mask::default(),
    )
}

/// Apply `change` to B, expect exactly one reported difference containing `needle`.
fn expect_one(t: Tree, needle: &str, change: impl FnOnce(&Path)) {
    let (_tmp, a, b) = two(t);
    assert_eq!(
        diff(&a, &b),
        Vec::<String>::new(),
        "generations differ before the change"
    );
    change(&b.join("src"));
    let d = diff(&a, &b);
    assert!(
        d.iter().any(|l| l.contains(needle)),
        "expected a difference mentioning {needle:?}, got {d:#?}"
    );
}

#[test]
fn identical_generations_compare_equal() {
    for t in [Tree::Full, Tree::Large] {
        let (_tmp, a, b) = two(t);
        assert_eq!(diff(&a, &b), Vec::<String>::new());
    }
}

#[test]
fn prepopulated_generations_compare_equal() {
    let tmp = tempfile::tempdir().unwrap();
    let sc = Scenario::new("x", Tree::Full, Dest::Prepopulated, &[]);
    let (a, b) = (tmp.path().join("A"), tmp.path().join("B"));
    tree::mkdir(&a);
    tree::mkdir(&b);
    let (wa, wb) = (run::prepare(&sc, &a), run::prepare(&sc, &b));
    assert_eq!(diff(&wa, &wb), Vec::<String>::new());
    // ... and the destination really differs from the source.
    let d = diff(&wa.join("src"), &wa.join("dst"));
    for needle in [
        "same_size/s1.txt: content",
        "file2.txt: size",
        "dir1/sub/c.txt: missing",
        "extra.txt: extra",
        "dir2: type",
        "mode_file: mode",
        "file1.txt: uid",
        "dir1/ns.txt: mtime",
    ] {
        assert!(
            d.iter().any(|l| l.contains(needle)),
            "prepopulated dst lacks {needle:?}: {d:#?}"
        );
    }
}

#[test]
fn catches_content_same_size_same_mtime() {
    expect_one(Tree::Basic, "file1.txt: content", |s| {
        let p = s.join("file1.txt");
        let md = fs::symlink_metadata(&p).unwrap();
        let mut c = fs::read(&p).unwrap();
        c[50] ^= 1;
        fs::write(&p, c).unwrap();
        use std::os::unix::fs::MetadataExt;
        tree::set_mtime(&p, md.mtime(), md.mtime_nsec());
    });
}

#[test]
fn catches_mode() {
    expect_one(Tree::Basic, "mode_file: mode 0640 (oracle) vs 0644", |s| {
        fs::set_permissions(s.join("mode_file"), fs::Permissions::from_mode(0o644)).unwrap();
    });
}

#[test]
fn catches_mtime_nanoseconds() {
    expect_one(Tree::Basic, "file2.txt: mtime", |s| {
        use std::os::unix::fs::MetadataExt;
        let p = s.join("file2.txt");
        let md = fs::symlink_metadata(&p).unwrap();
        tree::set_mtime(&p, md.mtime(), (md.mtime_nsec() + 1) % 1_000_000_000);
    });
}

#[test]
fn catches_dir_and_symlink_mtime() {
    expect_one(Tree::Basic, "dir1: mtime", |s| {
        tree::set_mtime(&s.join("dir1"), 1, 0)
    });
    expect_one(Tree::Basic, "link_rel: mtime", |s| {
        tree::set_mtime(&s.join("link_rel"), 1, 0)
    });
}

#[test]
fn catches_owner() {
    expect_one(Tree::Basic, "tiny: uid 0 (oracle) vs 4242", |s| {
        tree::lchown(&s.join("tiny"), 4242, 0)
    });
    expect_one(Tree::Basic, "tiny: gid 0 (oracle) vs 1000", |s| {
        tree::lchown(&s.join("tiny"), 0, 1000)
    });
}

#[test]
fn catches_symlink_target() {
    expect_one(Tree::Links, "sl/rel: symlink target", |s| {
        let p = s.join("sl/rel");
        let md = fs::symlink_metadata(&p).unwrap();
        fs::remove_file(&p).unwrap();
        tree::ln_s("../file2.txt", &p); // same length as the original target
        use std::os::unix::fs::MetadataExt;
        tree::set_mtime(&p, md.mtime(), md.mtime_nsec());
    });
}

#[test]
fn catches_hard_link_grouping() {
    expect_one(
        Tree::Links,
        "src/hl/a2: hard links linked with src/hl/a1 (oracle) vs not hard-linked",
        |s| {
            let p = s.join("hl/a2");
            let c = fs::read(&p).unwrap();
            fs::remove_file(&p).unwrap();
            fs::write(&p, c).unwrap();
            // Restore what a copy loses, so that only the grouping differs.
            let md = fs::symlink_metadata(s.join("hl/a1")).unwrap();
            use std::os::unix::fs::MetadataExt;
            tree::chmod(&p, md.mode() & 0o7777);
            tree::set_mtime(&p, md.mtime(), md.mtime_nsec());
        },
    );
}

#[test]
fn catches_xattr() {
    expect_one(Tree::Meta, "xattr/f1: xattrs", |s| {
        tree::setxattr(&s.join("xattr/f1"), "user.alpha", b"2")
    });
    expect_one(Tree::Meta, "xattr/plain: xattrs", |s| {
        tree::setxattr(&s.join("xattr/plain"), "user.new", b"")
    });
}

#[test]
fn catches_acl() {
    expect_one(Tree::Meta, "acl/f: access ACL", |s| {
        tree::setfacl(&["-m", "u:1000:r"], &s.join("acl/f"))
    });
    expect_one(Tree::Meta, "acl/dir: default ACL", |s| {
        tree::setfacl(&["-k"], &s.join("acl/dir"))
    });
}

#[test]
fn catches_device_numbers_and_type() {
    expect_one(Tree::Meta, "dev/char_1_3: rdev", |s| {
        let p = s.join("dev/char_1_3");
        fs::remove_file(&p).unwrap();
        tree::mknod(&p, libc::S_IFCHR, 0o644, 1, 5);
    });
    expect_one(Tree::Meta, "dev/fifo: type fifo (oracle) vs file", |s| {
        let p = s.join("dev/fifo");
        fs::remove_file(&p).unwrap();
        fs::write(&p, b"").unwrap();
    });
}

#[test]
fn catches_missing_and_extra_entries() {
    expect_one(Tree::Basic, "dir1/sub/c.txt: missing in candidate", |s| {
        fs::remove_file(s.join("dir1/sub/c.txt")).unwrap();
    });
    expect_one(Tree::Basic, "new.txt: extra in candidate", |s| {
        fs::write(s.join("new.txt"), b"").unwrap()
    });
}

#[test]
fn catches_sparseness_unless_masked() {
    let (_tmp, a, b) = two(Tree::Large);
    let p = b.join("src/large/sparse.bin");
    let c = fs::read(&p).unwrap();
    fs::write(&p, c).unwrap(); // same bytes, now fully allocated
    tree::stamp(&b, 7);
    let (sa, sb) = (snapshot::take(&a), snapshot::take(&b));
    let d = snapshot::diff(&sa, &sb, None, None, &Mask::default());
    assert_eq!(d.len(), 1, "{d:#?}");
    assert!(d[0].contains("sparse"));
    let masked = Mask {
        sparse: true,
        ..Mask::default()
    };
    assert!(snapshot::diff(&sa, &sb, None, None, &masked).is_empty());
}

#[test]
fn run_windows_make_current_times_equal() {
    let (_tmp, a, b) = two(Tree::Basic);
    tree::set_mtime(&a.join("src/tiny"), 2_000_000_000, 5);
    tree::set_mtime(&b.join("src/tiny"), 2_000_000_100, 7);
    let (sa, sb) = (snapshot::take(&a), snapshot::take(&b));
    let wa = Window {
        start: 2_000_000_000 * 1_000_000_000,
        end: 2_000_000_001 * 1_000_000_000,
    };
    let wb = Window {
        start: 2_000_000_100 * 1_000_000_000,
        end: 2_000_000_101 * 1_000_000_000,
    };
    assert!(snapshot::diff(&sa, &sb, Some(wa), Some(wb), &Mask::default()).is_empty());
    // Outside the windows the difference is reported.
    assert_eq!(
        snapshot::diff(&sa, &sb, Some(wa), Some(wa), &Mask::default()).len(),
        1
    );
}

#[test]
fn normalises_only_legitimate_figures() {
    let w = Path::new("/tmp/w");
    let n = |s: &str, cand: bool| run::normalise(s.as_bytes(), w, Norm::default(), false, cand);
    assert_eq!(
        n(
            "sent 156 bytes  received 72 bytes  456.00 bytes/sec\ntotal size is 3  speedup is 0.01\n",
            false
        ),
        n(
            "sent 1 bytes  received 2 bytes  3.00 bytes/sec\ntotal size is 3  speedup is 9.99\n",
            true
        )
    );
    // Total size is kept.
    assert_ne!(
        n("total size is 3  speedup is 0.01", false),
        n("total size is 4  speedup is 0.01", true)
    );
    // Program name and source location.
    assert_eq!(
        n(
            "rsync error: some files/attrs were not transferred (see previous errors) (code 23) at main.c(1394) [sender=3.5.0]",
            false
        ),
        n(
            "resync error: some files/attrs were not transferred (see previous errors) (code 23) at src/main.rs(12) [sender=0.1.0]",
            true
        )
    );
    // Work dir paths.
    assert_eq!(
        n("link_stat \"/tmp/w/nosuch\" failed", false),
        n("link_stat \"/tmp/w/nosuch\" failed", true)
    );
    assert_eq!(
        n("link_stat \"/tmp/w/nosuch\" failed", false)[0],
        "link_stat \"<WORK>/nosuch\" failed"
    );
    // Progress: rate and time dropped, the rest kept.
    assert_eq!(
        n(
            "\r              3 100%    0.00kB/s    0:00:00  \r              3 100%    2.93kB/s    0:00:00 (xfr#1, to-chk=0/3)",
            false
        ),
        vec!["3 100% RATE TIME (xfr#1, to-chk=0/3)".to_string()]
    );
    assert_ne!(
        n("  3 100%    2.93kB/s    0:00:00 (xfr#1, to-chk=0/3)", false),
        n("  3 100%    2.93kB/s    0:00:00 (xfr#2, to-chk=0/3)", true)
    );
    // Literal/Matched data are kept unless the scenario says otherwise.
    assert_ne!(
        n("Literal data: 3 bytes", false),
        n("Literal data: 4 bytes", true)
    );
    let lm = Norm {
        literal_matched: true,
        ..Norm::default()
    };
    assert_eq!(
        run::normalise(b"Literal data: 3 bytes", w, lm, false, false),
        run::normalise(b"Literal data: 4 bytes", w, lm, false, true)
    );
    // Random mkstemp suffixes of temporary files.
    assert_eq!(
        n("mkstemp \"/tmp/w/dst/.file1.txt.qEPcyv\" failed", false),
        n("mkstemp \"/tmp/w/dst/.file1.txt.3bjQTH\" failed", true)
    );
    assert_ne!(
        n("mkstemp \".file1.txt.qEPcyv\"", false),
        n("mkstemp \".file2.txt.qEPcyv\"", true)
    );
    // Any other line must match byte for byte.
    assert_ne!(n("file1.txt", false), n("file1.txt ", true));
    // Unordered: only the per-file section is sorted.
    let u = |s: &str| run::normalise(s.as_bytes(), w, Norm::default(), true, false);
    assert_eq!(u("b\na\n\nx\ny\n"), u("a\nb\n\nx\ny\n"));
    assert_ne!(u("b\na\n\nx\ny\n"), u("a\nb\n\ny\nx\n"));
}

/// A fake candidate: a shell script that runs rsync and then misbehaves.
fn fake(dir: &Path, name: &str, body: &str) -> OsString {
    let p = dir.join(name);
    fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
    tree::chmod(&p, 0o755);
    p.into_os_string()
}

#[test]
fn end_to_end_catches_misbehaving_candidates() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let sc = Scenario::new("t/av", Tree::Basic, Dest::Absent, &["-av", "src/", "dst/"]);
    let rsync = run::oracle();
    assert_eq!(run::run_scenario_with(&sc, &rsync, &rsync), Ok(()));
    for (name, body, needle) in [
        (
            "exit",
            "rsync \"$@\"; exit 5",
            "exit code: Some(0) (oracle) vs Some(5)",
        ),
        ("stdout", "rsync \"$@\" | sed s/file2/FILE2/", "- file2.txt"),
        ("stderr", "rsync \"$@\"; echo oops >&2", "stderr differs"),
        (
            "content",
            "rsync \"$@\"; echo x >> dst/tiny",
            "dst/tiny: content",
        ),
        (
            "mtime",
            "rsync \"$@\"; touch -h -d @1000000000.5 dst/link_rel",
            "dst/link_rel: mtime",
        ),
        (
            "mode",
            "rsync \"$@\"; chmod 600 dst/file1.txt",
            "dst/file1.txt: mode",
        ),
        (
            "missing",
            "rsync \"$@\"; rm dst/empty",
            "dst/empty: missing in candidate",
        ),
        (
            "extra",
            "rsync \"$@\"; mkdir dst/more",
            "dst/more: extra in candidate",
        ),
        (
            "source",
            "rsync \"$@\"; chmod 600 src/tiny",
            "candidate changed the source",
        ),
    ] {
        let r = run::run_scenario_with(&sc, &rsync, &fake(d, name, body));
        let err = r.expect_err(name);
        assert!(
            err.contains(needle),
            "{name}: expected {needle:?} in:\n{err}"
        );
    }
}
