//! The rescan manifest against stale caches: whatever another program did to
//! the destination (or to the manifest) since the manifest was written, a
//! run with it ends in the tree, the stdout and the exit code that the real
//! rsync (the oracle) gives on an identical copy. Every test keeps its
//! manifests in its own temp directory (`--manifest-dir` or
//! `XDG_CACHE_HOME`), never in the real `~/.cache`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// One run's exit code, stdout and stderr.
#[derive(Debug)]
struct Out {
    code: i32,
    stdout: String,
    stderr: String,
}

fn run(prog: &str, args: &[&str], cwd: &Path, cache: &Path) -> Out {
    let o = Command::new(prog)
        .args(args)
        .current_dir(cwd)
        .env("XDG_CACHE_HOME", cache)
        .env("LC_ALL", "C")
        .output()
        .unwrap();
    Out {
        code: o.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
    }
}

fn have_rsync() -> bool {
    Command::new("rsync")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// A test's directories: `w/src`, `w/dst`, the rsync copy `w/ref`, the
/// cache `w/cache` (as `$XDG_CACHE_HOME`; manifests in `cache/resync`).
struct T {
    _tmp: tempfile::TempDir,
    w: PathBuf,
}

impl T {
    fn new() -> T {
        let tmp = tempfile::tempdir().unwrap();
        let w = tmp.path().to_path_buf();
        fs::create_dir_all(w.join("cache")).unwrap();
        make_src(&w.join("src"));
        T { _tmp: tmp, w }
    }

    fn p(&self, rel: &str) -> PathBuf {
        self.w.join(rel)
    }

    fn resync(&self, args: &[&str]) -> Out {
        run(
            env!("CARGO_BIN_EXE_resync"),
            args,
            &self.w,
            &self.p("cache"),
        )
    }

    fn rsync(&self, args: &[&str]) -> Out {
        run("rsync", args, &self.w, &self.p("cache"))
    }

    /// The manifest files in the cache.
    fn manifests(&self) -> Vec<PathBuf> {
        let d = self.p("cache/resync");
        let mut v: Vec<PathBuf> = fs::read_dir(&d)
            .map(|r| r.flatten().map(|e| e.path()).collect())
            .unwrap_or_default();
        v.sort();
        v
    }

    /// Copy `src/` into `dst/`, then run again so the manifest is written
    /// (a run into a directory it just created records nothing).
    fn synced(&self, flags: &[&str]) {
        let mut a = flags.to_vec();
        a.extend(["src/", "dst/"]);
        assert_eq!(self.resync(&a).code, 0);
        settle();
        let r = self.resync(&a);
        assert_eq!((r.code, r.stderr.as_str()), (0, ""));
        if !flags.iter().any(|f| f.contains('v')) {
            assert_eq!(r.stdout, "");
        }
        assert!(
            !self.manifests().is_empty(),
            "the second run writes a manifest"
        );
    }

    /// Copy the destination for the oracle (metadata kept, ns times too)
    /// and for a full scan (`--no-manifest`).
    fn copy_for_rsync(&self) {
        for copy in ["ref", "nom"] {
            let _ = fs::remove_dir_all(self.p(copy));
            let st = Command::new("cp")
                .args(["-a", "dst", copy])
                .current_dir(&self.w)
                .status()
                .unwrap();
            assert!(st.success());
        }
    }

    /// Run resync (with its manifest) on `dst`, resync `--no-manifest` on
    /// the copy `nom` and rsync on the copy `ref`, with the same flags:
    /// exit codes equal, stdout equal to the full scan's exactly and to
    /// rsync's line for line, trees equal to both.
    fn same_as_rsync(&self, flags: &[&str]) -> Out {
        self.same_as_rsync_tree(flags, true)
    }

    /// [`T::same_as_rsync`]; `rsync_tree`: also compare the tree with
    /// rsync's.
    fn same_as_rsync_tree(&self, flags: &[&str], rsync_tree: bool) -> Out {
        self.same_as_rsync_opens(flags, rsync_tree, &[]).0
    }

    /// [`T::same_as_rsync_tree`], with the files opened below `watch`
    /// during resync's run with the manifest (see [`Opens`]).
    fn same_as_rsync_opens(
        &self,
        flags: &[&str],
        rsync_tree: bool,
        watch: &[&str],
    ) -> (Out, Vec<PathBuf>) {
        self.copy_for_rsync();
        let with = |dst: &'static str, extra: &[&'static str]| -> Vec<&str> {
            let mut a = flags.to_vec();
            a.extend(extra);
            a.extend(["src/", dst]);
            a
        };
        let roots: Vec<PathBuf> = watch.iter().map(|w| self.p(w)).collect();
        let opens = Opens::watch(&roots);
        let ours = self.resync(&with("dst/", &[]));
        let opened = opens.files();
        let full = self.resync(&with("nom/", &["--no-manifest"]));
        // resync's own options are not rsync's.
        let b: Vec<&str> = with("ref/", &[])
            .into_iter()
            .filter(|f| *f != "--trust-mtime")
            .collect();
        let theirs = self.rsync(&b);
        assert_eq!(ours.code, theirs.code, "{ours:?} vs {theirs:?}");
        assert_eq!(ours.code, full.code, "{ours:?} vs {full:?}");
        assert_eq!(
            norm(&ours.stdout),
            norm(&full.stdout),
            "stdout differs from a full scan"
        );
        // rsync prints the deletions in a directory before the directory's
        // own line, resync after it (a difference without a manifest too):
        // compared line for line, in any order.
        let sorted = |s: &str| {
            let mut v: Vec<String> = norm(s).lines().map(str::to_owned).collect();
            v.sort();
            v
        };
        assert_eq!(
            sorted(&ours.stdout),
            sorted(&theirs.stdout),
            "stdout differs from rsync's"
        );
        same_trees(&self.p("dst"), &self.p("nom"));
        if rsync_tree {
            same_trees(&self.p("dst"), &self.p("ref"));
        }
        (ours, opened)
    }
}

/// stdout without the byte counts of `-v`'s summary (protocol traffic,
/// which a local resync only models).
fn norm(s: &str) -> String {
    s.lines()
        .filter(|l| !l.starts_with("sent ") && !l.starts_with("total size is"))
        .map(|l| format!("{l}\n"))
        .collect()
}

/// Let directory timestamps age past the manifest's race window (a state
/// younger than 100 ms is not recorded).
fn settle() {
    std::thread::sleep(Duration::from_millis(150));
}

fn set_mtime(p: &Path, secs: i64) {
    let f = fs::File::open(p).unwrap();
    f.set_modified(std::time::UNIX_EPOCH + Duration::new(secs as u64, 123_456_789))
        .unwrap();
}

fn write(p: &Path, data: &[u8], mtime: i64) {
    fs::write(p, data).unwrap();
    set_mtime(p, mtime);
}

/// A small tree: files at three levels, a symlink, modes, old ns mtimes.
fn make_src(s: &Path) {
    for d in ["", "a", "a/b", "c", "c/d"] {
        fs::create_dir_all(s.join(d)).unwrap();
    }
    write(&s.join("top.txt"), b"top file\n", 1_600_000_000);
    write(&s.join("a/one"), b"first\n", 1_600_000_100);
    write(&s.join("a/two"), b"second file here\n", 1_600_000_200);
    write(&s.join("a/b/deep"), &vec![7u8; 5000], 1_600_000_300);
    write(&s.join("c/x"), b"x\n", 1_600_000_400);
    write(&s.join("c/d/y"), b"why\n", 1_600_000_500);
    fs::set_permissions(s.join("a/two"), fs::Permissions::from_mode(0o600)).unwrap();
    std::os::unix::fs::symlink("../top.txt", s.join("a/link")).unwrap();
    for d in ["a/b", "a", "c/d", "c", ""] {
        set_mtime(&s.join(d), 1_600_001_000);
    }
}

/// Assert two trees are equal, naming only the entries that differ.
fn same_trees(a: &Path, b: &Path) {
    let (x, y) = (tree(a), tree(b));
    let mut diff = Vec::new();
    for k in x.keys().chain(y.keys()) {
        let (p, q) = (x.get(k), y.get(k));
        if p != q && !diff.iter().any(|(d, _, _)| d == k) {
            let short = |v: Option<&(u32, u64, i128, Vec<u8>)>| {
                v.map(|(m, s, t, d)| format!("{m:o} {s} {t} {:?}", String::from_utf8_lossy(d)))
            };
            diff.push((k.clone(), short(p), short(q)));
        }
    }
    assert!(
        diff.is_empty(),
        "{} vs {}: {diff:#?}",
        a.display(),
        b.display()
    );
}

/// Every entry below `root`: kind and mode, size, mtime in ns, and the
/// content (files) or target (symlinks).
fn tree(root: &Path) -> BTreeMap<PathBuf, (u32, u64, i128, Vec<u8>)> {
    let mut out = BTreeMap::new();
    fn walk(root: &Path, rel: &Path, out: &mut BTreeMap<PathBuf, (u32, u64, i128, Vec<u8>)>) {
        let p = root.join(rel);
        let m = fs::symlink_metadata(&p).unwrap();
        let ns = m.mtime() as i128 * 1_000_000_000 + m.mtime_nsec() as i128;
        let data = if m.file_type().is_symlink() {
            fs::read_link(&p)
                .unwrap()
                .into_os_string()
                .into_encoded_bytes()
        } else if m.is_file() {
            fs::read(&p).unwrap()
        } else {
            Vec::new()
        };
        let size = if m.is_dir() { 0 } else { m.size() };
        out.insert(rel.to_path_buf(), (m.mode(), size, ns, data));
        if m.is_dir() {
            let mut names: Vec<_> = fs::read_dir(&p).unwrap().flatten().collect();
            names.sort_by_key(|e| e.file_name());
            for e in names {
                walk(root, &rel.join(e.file_name()), out);
            }
        }
    }
    walk(root, Path::new(""), &mut out);
    out
}

#[test]
fn unchanged_tree_rescans_to_nothing_and_keeps_the_manifest() {
    let t = T::new();
    t.synced(&["-a"]);
    let m = t.manifests()[0].clone();
    let before = fs::metadata(&m).unwrap().modified().unwrap();
    settle();
    let r = t.resync(&["-ai", "src/", "dst/"]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
    // Same records: the file is not written again.
    assert_eq!(fs::metadata(&m).unwrap().modified().unwrap(), before);
    same_trees(&t.p("src"), &t.p("dst"));
}

#[test]
fn destination_file_changed_in_place_same_size_and_appended() {
    if !have_rsync() {
        return;
    }
    let t = T::new();
    t.synced(&["-a"]);
    // Same size, new content (an editor's in-place save moves the mtime).
    fs::OpenOptions::new()
        .write(true)
        .open(t.p("dst/a/one"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"FIRST\n"))
        .unwrap();
    // Appended: the directory's own times do not move for either.
    fs::OpenOptions::new()
        .append(true)
        .open(t.p("dst/a/b/deep"))
        .and_then(|mut f| std::io::Write::write_all(&mut f, b"more"))
        .unwrap();
    let r = t.same_as_rsync(&["-ai"]);
    assert!(r.stdout.contains("a/one") && r.stdout.contains("a/b/deep"));
    same_trees(&t.p("src"), &t.p("dst"));
}

#[test]
fn destination_file_deleted_or_directory_removed() {
    if !have_rsync() {
        return;
    }
    let t = T::new();
    t.synced(&["-a"]);
    fs::remove_file(t.p("dst/c/x")).unwrap();
    fs::remove_dir_all(t.p("dst/a/b")).unwrap();
    let r = t.same_as_rsync(&["-ai"]);
    assert!(r.stdout.contains(">f+++++++++ c/x"), "{}", r.stdout);
    assert!(r.stdout.contains("cd+++++++++ a/b/"), "{}", r.stdout);
    same_trees(&t.p("src"), &t.p("dst"));
}

#[test]
fn destination_file_replaced_by_another_program() {
    if !have_rsync() {
        return;
    }
    let t = T::new();
    t.synced(&["-a"]);
    // A new inode with other content and size.
    write(&t.p("dst/tmp.1"), b"replaced, longer\n", 1_600_000_000);
    fs::rename(t.p("dst/tmp.1"), t.p("dst/top.txt")).unwrap();
    // A new inode with the same size and mtime but other content: the quick
    // check (size + mtime) cannot see it; rsync leaves it too.
    write(&t.p("dst/a/tmp.2"), b"y\n", 1_600_000_400);
    fs::rename(t.p("dst/a/tmp.2"), t.p("dst/c/x")).unwrap();
    let r = t.same_as_rsync(&["-ai"]);
    assert!(r.stdout.contains(">f.s....... top.txt"), "{}", r.stdout);
    assert_eq!(fs::read(t.p("dst/top.txt")).unwrap(), b"top file\n");
    // Same as rsync: the same-size, same-mtime replacement stays.
    assert_eq!(fs::read(t.p("dst/c/x")).unwrap(), b"y\n");
    assert!(!r.stdout.contains("c/x"));
}

#[test]
fn new_destination_file_is_deleted_with_delete() {
    if !have_rsync() {
        return;
    }
    let t = T::new();
    t.synced(&["-a", "--delete"]);
    // Strays whose directories get their old mtime back: only their ctime
    // tells (rsync itemizes a directory whose time it sets after the
    // deletions, resync before them: a known difference left out here).
    write(&t.p("dst/a/b/stray"), b"not in the source\n", 1_600_000_000);
    fs::create_dir(t.p("dst/c/d/straydir")).unwrap();
    set_mtime(&t.p("dst/a/b"), 1_600_001_000);
    set_mtime(&t.p("dst/c/d"), 1_600_001_000);
    let r = t.same_as_rsync(&["-ai", "--delete"]);
    assert!(r.stdout.contains("*deleting   a/b/stray"), "{}", r.stdout);
    assert!(
        r.stdout.contains("*deleting   c/d/straydir/"),
        "{}",
        r.stdout
    );
    same_trees(&t.p("src"), &t.p("dst"));
    // And a no-op --delete run with the manifest reads no destination
    // directory, yet still deletes what appears later.
    settle();
    let r = t.resync(&["-ai", "--delete", "src/", "dst/"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    settle();
    write(&t.p("dst/late"), b"late\n", 1_600_000_000);
    set_mtime(&t.p("dst"), 1_600_001_000);
    let r = t.same_as_rsync(&["-ai", "--delete"]);
    assert!(r.stdout.contains("*deleting   late"), "{}", r.stdout);
}

fn corrupt_then_rescan(damage: impl Fn(&Path), want: &str) {
    if !have_rsync() {
        return;
    }
    let t = T::new();
    t.synced(&["-a"]);
    let m = t.manifests()[0].clone();
    damage(&m);
    fs::remove_file(t.p("dst/a/one")).unwrap();
    t.copy_for_rsync();
    let ours = t.resync(&["-ai", "src/", "dst/"]);
    let theirs = t.rsync(&["-ai", "src/", "ref/"]);
    assert_eq!((ours.code, &ours.stdout), (theirs.code, &theirs.stdout));
    assert!(
        ours.stderr.contains("warning: ignoring manifest") && ours.stderr.contains(want),
        "{}",
        ours.stderr
    );
    same_trees(&t.p("dst"), &t.p("ref"));
    // The full scan wrote a good manifest again.
    settle();
    let r = t.resync(&["-ai", "src/", "dst/"]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
}

#[test]
fn truncated_manifest_is_ignored_with_a_warning() {
    corrupt_then_rescan(
        |m| {
            let b = fs::read(m).unwrap();
            fs::write(m, &b[..b.len() / 2]).unwrap();
        },
        "length",
    );
}

#[test]
fn bit_flipped_manifest_is_ignored_with_a_warning() {
    corrupt_then_rescan(
        |m| {
            let mut b = fs::read(m).unwrap();
            let i = b.len() - 40;
            b[i] ^= 0x04;
            fs::write(m, &b).unwrap();
        },
        "checksum",
    );
}

#[test]
fn manifest_of_another_pair_is_ignored_with_a_warning() {
    if !have_rsync() {
        return;
    }
    let t = T::new();
    // A manifest for src/ -> other/ ...
    assert_eq!(t.resync(&["-a", "src/", "other/"]).code, 0);
    settle();
    assert_eq!(t.resync(&["-a", "src/", "other/"]).code, 0);
    let foreign = t.manifests()[0].clone();
    fs::remove_file(t.p("other/top.txt")).unwrap();
    // ... put where the src/ -> dst/ manifest lives.
    t.synced(&["-a"]);
    let ours_file = t.manifests().into_iter().find(|p| *p != foreign).unwrap();
    fs::copy(&foreign, &ours_file).unwrap();
    fs::remove_file(t.p("dst/c/d/y")).unwrap();
    t.copy_for_rsync();
    let ours = t.resync(&["-ai", "src/", "dst/"]);
    let theirs = t.rsync(&["-ai", "src/", "ref/"]);
    assert_eq!((ours.code, &ours.stdout), (theirs.code, &theirs.stdout));
    assert!(
        ours.stderr.contains("another source and destination"),
        "{}",
        ours.stderr
    );
    same_trees(&t.p("dst"), &t.p("ref"));
}

#[test]
fn source_directory_renamed() {
    if !have_rsync() {
        return;
    }
    let t = T::new();
    t.synced(&["-a", "--trust-mtime"]);
    // A subdirectory renamed inside the source: its parent's mtime moves.
    fs::rename(t.p("src/c"), t.p("src/c2")).unwrap();
    // rsync compares directory times in whole seconds when it restores
    // them: a source root changed in this very second would keep the time
    // of rsync's own change. An mtime in another second (but not the
    // recorded one) keeps the comparison exact.
    set_mtime(&t.p("src"), 1_600_005_000);
    let r = t.same_as_rsync(&["-ai", "--trust-mtime"]);
    assert!(r.stdout.contains("cd+++++++++ c2/"), "{}", r.stdout);
    // The whole source root renamed: another pair, so a full scan (and a
    // second manifest).
    fs::rename(t.p("src"), t.p("moved")).unwrap();
    fs::rename(t.p("moved/a/one"), t.p("moved/a/uno")).unwrap();
    t.copy_for_rsync();
    let ours = t.resync(&["-ai", "--trust-mtime", "moved/", "dst/"]);
    let full = t.resync(&["-ai", "--no-manifest", "moved/", "nom/"]);
    assert_eq!((ours.code, &ours.stdout), (full.code, &full.stdout));
    assert!(ours.stdout.contains("a/uno"));
    same_trees(&t.p("dst"), &t.p("nom"));
}

#[test]
fn trust_mtime_on_an_unchanged_tree_counts_everything() {
    let t = T::new();
    t.synced(&["-a", "--trust-mtime"]);
    settle();
    let full = t.resync(&["-a", "--stats", "--no-manifest", "src/", "dst/"]);
    let trusted = t.resync(&["-a", "--stats", "--trust-mtime", "src/", "dst/"]);
    let counts = |s: &str| -> Vec<String> {
        s.lines()
            .filter(|l| l.starts_with("Number of") || l.starts_with("Total file size"))
            .map(str::to_owned)
            .collect()
    };
    assert_eq!(trusted.code, 0);
    assert!(!counts(&full.stdout).is_empty());
    assert_eq!(counts(&trusted.stdout), counts(&full.stdout));
    let ii = t.resync(&["-aii", "--trust-mtime", "src/", "dst/"]);
    let ii_full = t.resync(&["-aii", "--no-manifest", "src/", "dst/"]);
    assert_eq!(ii.stdout, ii_full.stdout);
    same_trees(&t.p("src"), &t.p("dst"));
}

#[test]
fn trust_mtime_sees_new_files_but_misses_documented_in_place_edits() {
    let t = T::new();
    t.synced(&["-a", "--trust-mtime"]);
    settle();
    // A new file changes its directory's mtime: found.
    write(&t.p("src/a/b/new"), b"new file\n", 1_600_000_000);
    let r = t.resync(&["-ai", "--trust-mtime", "src/", "dst/"]);
    assert_eq!(
        (r.code, r.stdout.as_str()),
        (0, ".d..t...... a/b/\n>f+++++++++ a/b/new\n")
    );
    same_trees(&t.p("src"), &t.p("dst"));
    settle();
    let r = t.resync(&["-ai", "--trust-mtime", "src/", "dst/"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    settle();
    // A source file rewritten in place leaves its directory's mtime alone:
    // --trust-mtime misses it (the documented price) ...
    fs::write(t.p("src/c/x"), b"changed in place\n").unwrap();
    let r = t.resync(&["-ai", "--trust-mtime", "src/", "dst/"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    assert_eq!(fs::read(t.p("dst/c/x")).unwrap(), b"x\n");
    // ... the default (safe) mode does not.
    let r = t.resync(&["-ai", "src/", "dst/"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ">f.st...... c/x\n"));
    same_trees(&t.p("src"), &t.p("dst"));
}

#[test]
fn dry_run_and_list_only_write_no_manifest_and_no_manifest_disables() {
    let t = T::new();
    assert_eq!(t.resync(&["-a", "src/", "dst/"]).code, 0);
    settle();
    assert_eq!(t.resync(&["-an", "src/", "dst/"]).code, 0);
    assert_eq!(t.resync(&["-a", "--list-only", "src/", "dst/"]).code, 0);
    assert_eq!(t.resync(&["-a", "--no-manifest", "src/", "dst/"]).code, 0);
    assert!(t.manifests().is_empty());
    // --manifest-dir moves it; XDG_CACHE_HOME is then left alone.
    let r = t.resync(&["-a", "--manifest-dir", "elsewhere", "src/", "dst/"]);
    assert_eq!(r.code, 0);
    assert!(t.manifests().is_empty());
    assert_eq!(fs::read_dir(t.p("elsewhere")).unwrap().count(), 1);
    // Nothing was written into the destination.
    same_trees(&t.p("src"), &t.p("dst"));
}

/// Compat-style: a second run (with the manifest) gives rsync's output for
/// a no-op and for a ~1% update, with `-i`, `-v` and `--stats` counts.
#[test]
fn second_run_matches_rsync_for_noop_and_one_percent_update() {
    if !have_rsync() {
        return;
    }
    let t = T::new();
    // 200 more files, so that 1% is two of them.
    for i in 0..200 {
        let d = t.p(&format!("src/many/{}", i % 10));
        fs::create_dir_all(&d).unwrap();
        write(
            &d.join(format!("f{i}")),
            format!("file {i}\n").as_bytes(),
            1_600_000_000 + i,
        );
    }
    for i in 0..10 {
        set_mtime(&t.p(&format!("src/many/{i}")), 1_600_002_000);
    }
    set_mtime(&t.p("src/many"), 1_600_002_000);
    set_mtime(&t.p("src"), 1_600_002_000);
    for flags in [
        &["-ai"][..],
        &["-av", "--delete"],
        &["-ai", "--trust-mtime"],
    ] {
        let _ = fs::remove_dir_all(t.p("dst"));
        let _ = fs::remove_dir_all(t.p("cache/resync"));
        t.synced(flags);
        settle();
        t.same_as_rsync(flags);
        let mut stats = flags.to_vec();
        stats.push("--stats");
        t.copy_for_rsync();
        let mut a = stats.clone();
        a.extend(["src/", "dst/"]);
        let mut b: Vec<&str> = stats
            .iter()
            .copied()
            .filter(|f| *f != "--trust-mtime")
            .collect();
        b.extend(["src/", "ref/"]);
        let (ours, theirs) = (t.resync(&a), t.rsync(&b));
        let counts = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| l.starts_with("Number of") || l.starts_with("Total file size"))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(counts(&ours.stdout), counts(&theirs.stdout), "{flags:?}");
        // 1%: two files edited (one longer, one same size with a new
        // mtime), one added, one removed.
        // Saved the way editors and most tools do (a new file renamed over
        // the old one), which --trust-mtime sees; in-place writes are in
        // trust_mtime_sees_new_files_but_misses_documented_in_place_edits.
        write(
            &t.p("src/many/3/.f13.new"),
            b"edited, longer\n",
            1_700_000_000,
        );
        fs::rename(t.p("src/many/3/.f13.new"), t.p("src/many/3/f13")).unwrap();
        write(&t.p("src/many/7/.f107.new"), b"FILE 107\n", 1_700_000_001);
        fs::rename(t.p("src/many/7/.f107.new"), t.p("src/many/7/f107")).unwrap();
        set_mtime(&t.p("src/many/3"), 1_700_000_003);
        set_mtime(&t.p("src/many/7"), 1_700_000_007);
        write(&t.p("src/many/5/added"), b"added\n", 1_700_000_002);
        fs::remove_file(t.p("src/many/9/f9")).unwrap();
        // Directory times in another second than now (rsync restores them
        // comparing whole seconds).
        set_mtime(&t.p("src/many/5"), 1_700_000_005);
        set_mtime(&t.p("src/many/9"), 1_700_000_009);
        let r = t.same_as_rsync(flags);
        assert!(r.stdout.contains("many/5/added"), "{flags:?}: {}", r.stdout);
        same_trees(&t.p("dst"), &t.p("ref"));
        // Put the source back for the next flag set.
        fs::remove_dir_all(t.p("src")).unwrap();
        make_src(&t.p("src"));
        for i in 0..200 {
            let d = t.p(&format!("src/many/{}", i % 10));
            fs::create_dir_all(&d).unwrap();
            write(
                &d.join(format!("f{i}")),
                format!("file {i}\n").as_bytes(),
                1_600_000_000 + i,
            );
        }
        for i in 0..10 {
            set_mtime(&t.p(&format!("src/many/{i}")), 1_600_002_000);
        }
        set_mtime(&t.p("src/many"), 1_600_002_000);
        set_mtime(&t.p("src"), 1_600_002_000);
    }
}

/// The files opened below some directories while it was alive: an inotify
/// watch (`IN_OPEN`) on every directory, so a test sees which files a run
/// read without relying on atimes (resync reads with `O_NOATIME`).
struct Opens {
    fd: i32,
    dirs: BTreeMap<i32, PathBuf>,
}

impl Opens {
    fn watch(roots: &[PathBuf]) -> Opens {
        let fd = unsafe { libc::inotify_init1(libc::IN_NONBLOCK | libc::IN_CLOEXEC) };
        assert!(fd >= 0);
        let mut o = Opens {
            fd,
            dirs: BTreeMap::new(),
        };
        fn add(o: &mut Opens, d: &Path) {
            let c = std::ffi::CString::new(d.as_os_str().as_encoded_bytes()).unwrap();
            let wd = unsafe { libc::inotify_add_watch(o.fd, c.as_ptr(), libc::IN_OPEN) };
            assert!(wd >= 0, "watch {}", d.display());
            o.dirs.insert(wd, d.to_path_buf());
            for e in fs::read_dir(d).unwrap().flatten() {
                if e.file_type().unwrap().is_dir() {
                    add(o, &e.path());
                }
            }
        }
        for r in roots {
            add(&mut o, r);
        }
        o
    }

    /// The files (not directories) opened so far, sorted, each once.
    fn files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = unsafe { libc::read(self.fd, buf.as_mut_ptr().cast(), buf.len()) };
            if n <= 0 {
                break;
            }
            let mut i = 0;
            while i < n as usize {
                let ev: libc::inotify_event =
                    unsafe { std::ptr::read_unaligned(buf[i..].as_ptr().cast()) };
                let head = std::mem::size_of::<libc::inotify_event>();
                let name = &buf[i + head..i + head + ev.len as usize];
                let name = &name[..name.iter().position(|&c| c == 0).unwrap_or(name.len())];
                if ev.mask & libc::IN_ISDIR == 0 && !name.is_empty() {
                    let n = <std::ffi::OsStr as std::os::unix::ffi::OsStrExt>::from_bytes(name);
                    out.push(self.dirs[&ev.wd].join(n));
                }
                i += head + ev.len as usize;
            }
        }
        out.sort();
        out.dedup();
        out
    }
}

impl Drop for Opens {
    fn drop(&mut self) {
        unsafe { libc::close(self.fd) };
    }
}

/// Let file ctimes age past `-c`'s racy margin (a hash of a file changed
/// less than a second before it was read is not recorded).
fn age_past_racy_margin() {
    std::thread::sleep(Duration::from_millis(1100));
}

/// `-c`: copy, let the ctimes age, then one `-c` run that hashes both sides
/// and records the hashes. Returns the files that recording run opened.
fn checksum_synced(t: &T) -> Vec<PathBuf> {
    assert_eq!(t.resync(&["-a", "src/", "dst/"]).code, 0);
    age_past_racy_margin();
    let o = Opens::watch(&[t.p("src"), t.p("dst")]);
    let r = t.resync(&["-aci", "src/", "dst/"]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
    assert!(!t.manifests().is_empty());
    o.files()
}

/// The regular files below `root` (both sides of each pair are read when
/// nothing is cached).
fn files_below(root: &Path) -> Vec<PathBuf> {
    tree(root)
        .into_iter()
        .filter(|(_, (mode, ..))| mode & 0o170000 == 0o100000)
        .map(|(k, _)| root.join(k))
        .collect()
}

#[test]
fn checksum_rescan_of_an_unchanged_tree_reads_no_file() {
    if !have_rsync() {
        return;
    }
    let t = T::new();
    let read = checksum_synced(&t);
    // The recording run read every file on both sides (so the watch sees
    // reads) ...
    let mut all = files_below(&t.p("src"));
    all.extend(files_below(&t.p("dst")));
    all.sort();
    assert_eq!(read, all);
    // ... the next one none: every hash comes from the manifest.
    let o = Opens::watch(&[t.p("src"), t.p("dst")]);
    let r = t.resync(&["-aci", "src/", "dst/"]);
    assert_eq!((r.code, r.stdout.as_str(), r.stderr.as_str()), (0, "", ""));
    assert_eq!(o.files(), Vec::<PathBuf>::new());
    // Output, exit code and tree as rsync's and a full scan's.
    t.same_as_rsync(&["-aci"]);
    same_trees(&t.p("src"), &t.p("dst"));
}

/// Rewrite `p` in place with `data` (same size) and put its mtime back:
/// size and mtime as before, only the ctime tells.
fn rewrite_keeping_mtime(p: &Path, data: &[u8]) {
    let before = fs::symlink_metadata(p).unwrap();
    assert_eq!(before.len(), data.len() as u64);
    fs::OpenOptions::new()
        .write(true)
        .open(p)
        .and_then(|mut f| std::io::Write::write_all(&mut f, data))
        .unwrap();
    let f = fs::File::open(p).unwrap();
    f.set_modified(before.modified().unwrap()).unwrap();
    let after = fs::symlink_metadata(p).unwrap();
    assert_eq!(
        (after.ino(), after.len(), after.mtime(), after.mtime_nsec()),
        (
            before.ino(),
            before.len(),
            before.mtime(),
            before.mtime_nsec()
        )
    );
    assert_ne!(
        (after.ctime(), after.ctime_nsec()),
        (before.ctime(), before.ctime_nsec())
    );
}

#[test]
fn checksum_catches_a_destination_rewrite_that_restored_the_mtime() {
    if !have_rsync() {
        return;
    }
    let t = T::new();
    checksum_synced(&t);
    rewrite_keeping_mtime(&t.p("dst/a/one"), b"FIRST\n");
    let (r, mut read) = t.same_as_rsync_opens(&["-aci"], true, &["dst"]);
    assert!(r.stdout.contains(">fc........ a/one"), "{}", r.stdout);
    // Only the changed side was read again (then replaced through a temp
    // file, `.one.XXXXXX`).
    read.retain(|p| !p.file_name().unwrap().as_encoded_bytes().starts_with(b"."));
    assert_eq!(read, vec![t.p("dst/a/one")]);
    same_trees(&t.p("src"), &t.p("dst"));
}

#[test]
fn checksum_catches_a_source_rewrite_that_restored_the_mtime() {
    if !have_rsync() {
        return;
    }
    let t = T::new();
    checksum_synced(&t);
    rewrite_keeping_mtime(&t.p("src/c/x"), b"X\n");
    let r = t.same_as_rsync(&["-aci"]);
    assert!(r.stdout.contains(">fc........ c/x"), "{}", r.stdout);
    assert_eq!(fs::read(t.p("dst/c/x")).unwrap(), b"X\n");
    same_trees(&t.p("src"), &t.p("dst"));
}

#[test]
fn checksum_does_not_trust_a_hash_after_an_inode_change() {
    if !have_rsync() {
        return;
    }
    let t = T::new();
    checksum_synced(&t);
    // Another inode with the same size and mtime and other content, on the
    // destination; on the source, the same content under a new inode.
    write(&t.p("dst/a/tmp"), b"y\n", 1_600_000_400);
    fs::rename(t.p("dst/a/tmp"), t.p("dst/c/x")).unwrap();
    write(&t.p("src/a/tmp"), b"top file\n", 1_600_000_000);
    fs::rename(t.p("src/a/tmp"), t.p("src/top.txt")).unwrap();
    set_mtime(&t.p("src/a"), 1_600_001_000);
    set_mtime(&t.p("dst/a"), 1_600_001_000);
    let (r, read) = t.same_as_rsync_opens(&["-aci"], true, &["src", "dst"]);
    assert!(r.stdout.contains(">fc........ c/x"), "{}", r.stdout);
    assert!(!r.stdout.contains("top.txt"), "{}", r.stdout);
    // Both new inodes were read; the unchanged files elsewhere were not.
    for p in ["src/top.txt", "dst/c/x", "src/c/x"] {
        assert!(read.contains(&t.p(p)), "{p} not read: {read:?}");
    }
    assert!(!read.contains(&t.p("src/a/b/deep")), "{read:?}");
    same_trees(&t.p("src"), &t.p("dst"));
}

#[test]
fn checksum_records_no_hash_of_a_file_changed_within_the_racy_window() {
    if !have_rsync() {
        return;
    }
    let t = T::new();
    checksum_synced(&t);
    // A pair written just now on both sides (same content): its directory
    // ages past its own 100 ms window, the files stay within the second.
    for side in ["src", "dst"] {
        write(
            &t.p(&format!("{side}/c/d/young")),
            b"young\n",
            1_600_000_600,
        );
        set_mtime(&t.p(&format!("{side}/c/d")), 1_600_001_000);
    }
    settle();
    let r = t.resync(&["-aci", "src/", "dst/"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    // Its hash was not recorded, so it is read again (and nothing else is);
    // a rewrite in that window that kept every time would be caught.
    let o = Opens::watch(&[t.p("src"), t.p("dst")]);
    let r = t.resync(&["-aci", "src/", "dst/"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    assert_eq!(o.files(), vec![t.p("dst/c/d/young"), t.p("src/c/d/young")]);
    // Changed in the window, mtime put back: caught.
    rewrite_keeping_mtime(&t.p("dst/c/d/young"), b"YOUNG\n");
    let r = t.same_as_rsync(&["-aci"]);
    assert!(r.stdout.contains(">fc........ c/d/young"), "{}", r.stdout);
    // Once older than the margin, it is recorded like the rest.
    age_past_racy_margin();
    assert_eq!(t.resync(&["-ac", "src/", "dst/"]).code, 0);
    let o = Opens::watch(&[t.p("src"), t.p("dst")]);
    assert_eq!(t.resync(&["-aci", "src/", "dst/"]).stdout, "");
    assert_eq!(o.files(), Vec::<PathBuf>::new());
}

#[test]
fn checksum_and_plain_runs_keep_separate_manifests() {
    if !have_rsync() {
        return;
    }
    let t = T::new();
    // A manifest written by a plain -a run holds no hashes: -c reads every
    // file, and an in-place rewrite with its mtime put back is caught.
    t.synced(&["-a"]);
    age_past_racy_margin();
    rewrite_keeping_mtime(&t.p("dst/a/two"), b"SECOND FILE HERE\n");
    let (r, read) = t.same_as_rsync_opens(&["-aci"], true, &["src"]);
    assert!(r.stdout.contains(">fc........ a/two"), "{}", r.stdout);
    assert_eq!(read, files_below(&t.p("src")));
    // A plain run after a -c run replaces the -c manifest (other options):
    // the next -c run hashes again, and still matches rsync.
    age_past_racy_margin();
    assert_eq!(t.resync(&["-ac", "src/", "dst/"]).code, 0);
    settle();
    assert_eq!(t.resync(&["-a", "src/", "dst/"]).code, 0);
    let (_, read) = t.same_as_rsync_opens(&["-aci"], true, &["src"]);
    assert_eq!(read, files_below(&t.p("src")));
}

#[test]
fn trust_mtime_counts_and_skips_like_a_full_scan_without_links() {
    let t = T::new();
    // Without -l the symlink is listed but skipped (rsync's "skipping
    // non-regular file"), which a trusted listing must still print.
    assert_eq!(t.resync(&["-rt", "src/", "dst/"]).code, 0);
    settle();
    assert_eq!(t.resync(&["-rt", "src/", "dst/"]).code, 0);
    assert!(!t.manifests().is_empty());
    settle();
    for flags in [&["-rt", "--stats"][..], &["-rtv"]] {
        let mut a = flags.to_vec();
        a.extend(["--trust-mtime", "src/", "dst/"]);
        let trusted = t.resync(&a);
        let mut b = flags.to_vec();
        b.extend(["--no-manifest", "src/", "dst/"]);
        let full = t.resync(&b);
        assert_eq!(trusted.code, 0);
        let keep = |s: &str| -> Vec<String> {
            s.lines()
                .filter(|l| !l.contains("File list") && !l.contains("bytes/sec"))
                .filter(|l| !l.starts_with("sent ") && !l.starts_with("Total bytes"))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(keep(&trusted.stdout), keep(&full.stdout), "{flags:?}");
        assert!(
            full.stdout.contains("skipping non-regular file \"a/link\"")
                || flags.contains(&"--stats"),
            "{}",
            full.stdout
        );
    }
}

#[test]
fn checksum_keeps_the_hashes_of_a_directory_it_changed() {
    if !have_rsync() {
        return;
    }
    let t = T::new();
    checksum_synced(&t);
    // One file of a/ changes: the run transfers it, so a/ is dirty ...
    write(&t.p("src/a/one"), b"FIRST\n", 1_600_000_150);
    let r = t.resync(&["-aci", "src/", "dst/"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ">fc.t...... a/one\n"));
    // ... but the hashes of its unchanged files are kept: the next run reads
    // only the new pair (too young to record when it was written).
    let (r, read) = t.same_as_rsync_opens(&["-aci"], true, &["src", "dst"]);
    assert_eq!((r.code, r.stdout.as_str()), (0, ""));
    assert_eq!(read, vec![t.p("dst/a/one"), t.p("src/a/one")]);
    same_trees(&t.p("src"), &t.p("dst"));
}
