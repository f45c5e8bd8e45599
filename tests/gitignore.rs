//! `--gitignore`: resync copies exactly the files git does not ignore.
//!
//! Each test builds a git repository with `.gitignore` files at several
//! levels (negations, anchored and directory patterns, a nested ignore file,
//! `.git/info/exclude`), syncs a directory of it with `--gitignore`, and
//! compares the copied files with `git ls-files --cached --others
//! --exclude-standard` (what git considers not ignored). Needs `git`.

use std::collections::BTreeSet;
use std::fs;
use std::path::Path;
use std::process::Command;

fn write(p: &Path, data: &str) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
}

fn git(repo: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(args)
        .current_dir(repo)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", repo)
        .output()
        .expect("git is required (the test command installs it)");
    assert!(out.status.success(), "git {args:?}: {:?}", out);
    String::from_utf8(out.stdout).unwrap()
}

/// Files (not directories) under `root`, relative, excluding `.git/`.
fn files(root: &Path) -> BTreeSet<String> {
    fn rec(root: &Path, d: &Path, out: &mut BTreeSet<String>) {
        for e in fs::read_dir(d).unwrap() {
            let e = e.unwrap();
            let p = e.path();
            let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
            if rel == ".git" {
                continue;
            }
            if e.file_type().unwrap().is_dir() {
                rec(root, &p, out);
            } else {
                out.insert(rel);
            }
        }
    }
    let mut out = BTreeSet::new();
    rec(root, root, &mut out);
    out
}

/// A repository under `w/repo` with ignore rules at every level.
fn repo(w: &Path) -> std::path::PathBuf {
    let r = w.join("repo");
    fs::create_dir_all(&r).unwrap();
    git(&r, &["init", "-q"]);
    write(
        &r.join(".gitignore"),
        "*.log\n!important.log\n/build/\ntmp*\n*.o\n!/lib/keep.o\n",
    );
    write(&r.join(".git/info/exclude"), "secret.txt\n");
    for f in [
        "main.c",
        "a.log",
        "important.log",
        "build/out.bin",
        "src/build/kept.c",
        "src/x.o",
        "src/tmpfile",
        "src/util.c",
        "src/sub/.gitignore",
        "src/sub/deep.c",
        "src/sub/deep.gen",
        "src/sub/ignored_dir/z.c",
        "lib/keep.o",
        "lib/drop.o",
        "secret.txt",
        "docs/readme.md",
        "docs/tmp/draft.md",
    ] {
        write(&r.join(f), f);
    }
    write(
        &r.join("src/sub/.gitignore"),
        "*.gen\nignored_dir/\n!deep.gen.keep\n",
    );
    r
}

fn resync(args: &[&str], cwd: &Path) {
    let out = Command::new(env!("CARGO_BIN_EXE_resync"))
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap();
    assert!(out.status.success(), "{args:?}: {out:?}");
}

#[test]
fn copies_what_git_does_not_ignore() {
    let t = tempfile::tempdir().unwrap();
    let r = repo(t.path());
    let want: BTreeSet<String> = git(
        &r,
        &["ls-files", "--cached", "--others", "--exclude-standard"],
    )
    .lines()
    .map(str::to_string)
    .collect();
    resync(
        &["-a", "--gitignore", "--exclude=/.git/", "repo/", "dst/"],
        t.path(),
    );
    assert_eq!(files(&t.path().join("dst")), want);
    assert!(!want.contains("a.log") && want.contains("important.log"));
    assert!(!want.contains("src/sub/deep.gen") && want.contains("src/sub/deep.c"));
}

#[test]
fn a_subdirectory_still_sees_the_repositorys_ignore_files() {
    let t = tempfile::tempdir().unwrap();
    let r = repo(t.path());
    let want: BTreeSet<String> = git(
        &r.join("src"),
        &[
            "ls-files",
            "--cached",
            "--others",
            "--exclude-standard",
            ".",
        ],
    )
    .lines()
    .map(str::to_string)
    .collect();
    resync(&["-a", "--gitignore", "repo/src/", "dst/"], t.path());
    assert_eq!(files(&t.path().join("dst")), want);
    assert!(!want.contains("x.o") && !want.contains("tmpfile"));
}

#[test]
fn filter_rules_decide_before_gitignore() {
    let t = tempfile::tempdir().unwrap();
    repo(t.path());
    // An include rule brings back an ignored file; an exclude removes a kept one.
    resync(
        &[
            "-a",
            "--include=a.log",
            "--exclude=main.c",
            "--gitignore",
            "--exclude=/.git/",
            "repo/",
            "dst/",
        ],
        t.path(),
    );
    let got = files(&t.path().join("dst"));
    assert!(got.contains("a.log"));
    assert!(!got.contains("main.c"));
    assert!(!got.contains("lib/drop.o"));
}

#[test]
fn delete_keeps_ignored_files_unless_delete_excluded() {
    let t = tempfile::tempdir().unwrap();
    repo(t.path());
    write(&t.path().join("dst/old.log"), "ignored in dst");
    write(&t.path().join("dst/gone.c"), "not in the source");
    resync(
        &[
            "-a",
            "--delete",
            "--gitignore",
            "--exclude=/.git/",
            "repo/",
            "dst/",
        ],
        t.path(),
    );
    assert!(t.path().join("dst/old.log").exists());
    assert!(!t.path().join("dst/gone.c").exists());
    resync(
        &[
            "-a",
            "--delete-excluded",
            "--gitignore",
            "--exclude=/.git/",
            "repo/",
            "dst/",
        ],
        t.path(),
    );
    assert!(!t.path().join("dst/old.log").exists());
}
