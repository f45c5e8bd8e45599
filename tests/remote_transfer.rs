//! Push and pull over a real OpenSSH server (`common::sshd`), each run beside
//! `rsync -e ssh` on the same tree with the same flags: trees (contents,
//! modes, ns mtimes, symlinks), stdout (byte figures blanked) and exit codes
//! must match. Also the delta path, a missing source and interrupted runs.
//! Needs root and OpenSSH (skipped with a note otherwise) and rsync.

mod common;

use common::sshd::Sshd;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_resync");
const USER: &str = "root@127.0.0.1";

fn have_rsync() -> bool {
    if Command::new("rsync").arg("--version").output().is_ok() {
        return true;
    }
    eprintln!("skipping: rsync not installed");
    false
}

/// Files, directories, symlinks, modes, nanosecond mtimes, an empty file
/// and a 10 MiB file.
fn make_tree(root: &Path) {
    let w = |p: &str, data: &[u8], mode: u32, mtime: (i64, u32)| {
        let path = root.join(p);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, data).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        set_mtime(&path, mtime);
    };
    fs::create_dir_all(root).unwrap();
    w("a.txt", b"alpha\n", 0o644, (1_600_000_000, 123_456_789));
    w("empty", b"", 0o600, (1_600_000_001, 1));
    w(
        "run.sh",
        b"#!/bin/sh\necho hi\n",
        0o755,
        (1_600_000_002, 999_999_999),
    );
    w("sub/b.log", b"log line\n", 0o640, (1_600_000_003, 5));
    w(
        "sub/deep/c",
        &common::bytes(5000, 3),
        0o644,
        (1_600_000_004, 42),
    );
    w(
        "big",
        &common::bytes(10 << 20, 7),
        0o644,
        (1_600_000_005, 500),
    );
    fs::create_dir_all(root.join("emptydir")).unwrap();
    symlink("a.txt", root.join("link")).unwrap();
    symlink("../nowhere", root.join("sub/dangling")).unwrap();
    fs::set_permissions(root.join("sub/deep"), fs::Permissions::from_mode(0o750)).unwrap();
    for d in ["sub/deep", "sub", "emptydir"] {
        set_mtime(&root.join(d), (1_500_000_000, 77));
    }
}

fn set_mtime(p: &Path, (s, ns): (i64, u32)) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(s as u64, ns);
    let f = fs::File::options()
        .write(true)
        .open(p)
        .or_else(|_| fs::File::open(p));
    f.unwrap()
        .set_times(fs::FileTimes::new().set_modified(t))
        .unwrap();
}

/// Every entry below `root`: name, type and mode, size, mtime (ns, not for
/// symlinks), content hash or link target. The root's own line is left out
/// (its mtime differs with how it was created).
fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) {
        let mut names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for n in names {
            let p = dir.join(&n);
            let m = fs::symlink_metadata(&p).unwrap();
            let rel = p.strip_prefix(root).unwrap().display().to_string();
            let body = if m.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&p).unwrap().display())
            } else if m.is_file() {
                format!(
                    "{} {}.{:09} {}",
                    m.len(),
                    m.mtime(),
                    m.mtime_nsec(),
                    blake3::hash(&fs::read(&p).unwrap()).to_hex()
                )
            } else {
                format!("{}.{:09}", m.mtime(), m.mtime_nsec())
            };
            out.push(format!(
                "{rel} {:o} {}:{} {body}",
                m.mode(),
                m.uid(),
                m.gid()
            ));
            if m.is_dir() {
                walk(root, &p, out);
            }
        }
    }
    walk(root, root, &mut out);
    out
}

/// stdout with the parts that count each program's own protocol blanked:
/// the summary's byte figures and rate, `--stats` byte and time lines, and
/// with `delta` the literal/matched split (each program's own algorithm).
/// The per-file lines are sorted, as the compat harness does: rsync prints
/// them from two processes (generator and receiver), whose order varies.
fn norm(o: &Output, work: &Path, delta: bool) -> String {
    let text = String::from_utf8_lossy(&o.stdout)
        .replace(&work.display().to_string(), "<W>")
        .lines()
        .map(|l| {
            if l.starts_with("sent ") {
                "sent N".to_string()
            } else if l.starts_with("total size is ") {
                l.split("  speedup").next().unwrap().to_string()
            } else if (delta && (l.starts_with("Literal data") || l.starts_with("Matched data")))
                || l.starts_with("Total bytes ")
                || l.starts_with("File list generation time")
                || l.starts_with("File list transfer time")
                || l.starts_with("File list size")
            {
                l.split(':').next().unwrap().to_string()
            } else {
                l.to_string()
            }
        })
        .collect::<Vec<_>>();
    let mut lines = text;
    let start = usize::from(
        lines
            .first()
            .is_some_and(|l| l.ends_with("file list") || l.ends_with("... done")),
    );
    let body = lines[start..]
        .iter()
        .position(|l| l.is_empty())
        .map_or(lines.len(), |i| i + start);
    lines[start..body].sort();
    lines.join("\n")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn run(prog: &str, cwd: &Path, args: &[&str]) -> Output {
    let mut c = Command::new(prog);
    if prog == BIN {
        c.args(["--rsync-path", BIN]);
    }
    c.args(args)
        .current_dir(cwd)
        .env_remove("RSYNC_RSH")
        .output()
        .unwrap()
}

/// One scenario both ways: `prep` makes the destination's starting state in
/// each of two fresh directories; rsync writes one, resync the other.
struct Env {
    sshd: Sshd,
    work: tempfile::TempDir,
}

impl Env {
    fn new() -> Option<Env> {
        if !have_rsync() {
            return None;
        }
        let sshd = Sshd::start()?;
        let work = tempfile::tempdir().unwrap();
        make_tree(&work.path().join("src"));
        Some(Env { sshd, work })
    }

    fn w(&self) -> &Path {
        self.work.path()
    }

    fn rsh(&self) -> String {
        self.sshd.rsh("user_key")
    }

    /// Run `flags` with rsync into `r/dst` and resync into `s/dst`, pushing
    /// (`pull` false) or pulling; compare. Returns resync's output.
    fn both(&self, pull: bool, flags: &[&str], prep: &dyn Fn(&Path)) -> Output {
        self.both_as(pull, flags, prep, false)
    }

    /// Run resync again on what the last [`Env::both`] left in `s/dst`.
    fn rerun(&self, pull: bool, flags: &[&str]) -> Output {
        let base = self.w().join("s");
        let src_abs = format!("{}/", self.w().join("src").display());
        let (src, dst) = if pull {
            (format!("{USER}:{src_abs}"), "dst/".to_string())
        } else {
            (src_abs, format!("{USER}:{}/", base.join("dst").display()))
        };
        let rsh = self.rsh();
        let mut args: Vec<&str> = vec!["-e", &rsh];
        args.extend_from_slice(flags);
        args.push(&src);
        args.push(&dst);
        let o = run(BIN, &base, &args);
        assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
        o
    }

    /// [`Env::both`]; `delta`: the literal/matched split may differ.
    fn both_as(&self, pull: bool, flags: &[&str], prep: &dyn Fn(&Path), delta: bool) -> Output {
        let mut outs = Vec::new();
        for (prog, side) in [("rsync", "r"), (BIN, "s")] {
            let base = self.w().join(side);
            let _ = fs::remove_dir_all(&base);
            fs::create_dir_all(&base).unwrap();
            prep(&base.join("dst"));
            let src_abs = format!("{}/", self.w().join("src").display());
            let (src, dst) = if pull {
                (format!("{USER}:{src_abs}"), "dst/".to_string())
            } else {
                (src_abs, format!("{USER}:{}/", base.join("dst").display()))
            };
            let rsh = self.rsh();
            let mut args: Vec<&str> = vec!["-e", &rsh];
            args.extend_from_slice(flags);
            args.push(&src);
            args.push(&dst);
            let o = run(prog, &base, &args);
            outs.push((o, base));
        }
        let (r, rb) = &outs[0];
        let (s, sb) = &outs[1];
        let what = format!("pull={pull} {flags:?}");
        assert_eq!(s.status.code(), r.status.code(), "{what}: {}", stderr(s));
        assert_eq!(norm(s, sb, delta), norm(r, rb, delta), "{what}: stdout");
        if rb.join("dst").exists() {
            assert_eq!(tree(&sb.join("dst")), tree(&rb.join("dst")), "{what}: tree");
        }
        outs.pop().unwrap().0
    }
}

fn nothing(_: &Path) {}

/// A destination with strays, an older copy of some files and a file where
/// the source has a directory.
fn stale(d: &Path) {
    fs::create_dir_all(d.join("sub")).unwrap();
    fs::write(d.join("a.txt"), b"old alpha\n").unwrap();
    fs::write(d.join("stray"), b"x").unwrap();
    fs::create_dir_all(d.join("straydir/in")).unwrap();
    fs::write(d.join("straydir/in/f"), b"y").unwrap();
    fs::write(d.join("sub/b.log"), b"log line\n").unwrap();
    fs::write(d.join("emptydir"), b"not a dir").unwrap();
    for p in [
        "a.txt",
        "stray",
        "straydir/in/f",
        "sub/b.log",
        "emptydir",
        "straydir/in",
        "straydir",
        "sub",
    ] {
        set_mtime(&d.join(p), (1_400_000_000, 0));
    }
}

#[test]
fn push_matches_rsync() {
    let Some(env) = Env::new() else { return };
    env.both(false, &["-a"], &nothing);
    env.both(false, &["-av"], &nothing);
    env.both(false, &["-ai"], &nothing);
    env.both(false, &["-ai", "--delete"], &stale);
    env.both(false, &["-av", "--delete", "--exclude=*.log"], &stale);
    env.both(
        false,
        &["-ai", "--exclude=deep/", "--exclude", "big"],
        &nothing,
    );
    env.both(false, &["-ain", "--delete"], &stale);
    // (Not with the file where the source has a directory: rsync 3.5 gives
    // that file the directory's mtime, locally too; resync leaves it.)
    env.both(false, &["-ai", "--ignore-existing"], &|d: &Path| {
        stale(d);
        fs::remove_file(d.join("emptydir")).unwrap();
    });
    env.both(false, &["-ai", "--existing"], &stale);
    env.both(false, &["-rlpt", "-v", "--stats"], &nothing);
    env.both(false, &["-azi", "--delete"], &stale);
    env.both(false, &["-a", "--compress-level=19", "-v"], &nothing);
    // A re-run is a no-op: nothing printed with -i.
    env.both(false, &["-ai", "--delete"], &stale);
    let o = env.rerun(false, &["-ai", "--delete"]);
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

#[test]
fn pull_matches_rsync() {
    let Some(env) = Env::new() else { return };
    env.both(true, &["-a"], &nothing);
    env.both(true, &["-av"], &nothing);
    env.both(true, &["-ai"], &nothing);
    env.both(true, &["-ai", "--delete"], &stale);
    env.both(true, &["-av", "--delete-after", "--exclude=*.log"], &stale);
    env.both(true, &["-ai", "-f", "- deep/"], &nothing);
    env.both(true, &["-ain"], &stale);
    env.both(true, &["-ai", "-u"], &stale);
    env.both(true, &["-a", "--stats"], &nothing);
    env.both(true, &["-azv", "--delete"], &stale);
    env.both(true, &["-ai", "--delete"], &stale);
    let o = env.rerun(true, &["-ai", "--delete"]);
    assert!(
        o.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&o.stdout)
    );
}

/// The figure after `key` in `--stats` output.
fn figure(o: &Output, key: &str) -> u64 {
    common::stat_figure(&String::from_utf8_lossy(&o.stdout), key)
}

#[test]
fn a_changed_big_file_goes_as_a_delta_both_ways() {
    let Some(env) = Env::new() else { return };
    // The destination has the old version; the source changed 100 bytes in
    // the middle and grew at the end.
    let old = fs::read(env.w().join("src/big")).unwrap();
    let mut new = old.clone();
    new[5_000_000..5_000_100].fill(0xAB);
    new.extend_from_slice(b"tail");
    let prep = |d: &Path| {
        make_tree(d);
        fs::write(d.join("big"), &old).unwrap();
    };
    fs::write(env.w().join("src/big"), &new).unwrap();
    for pull in [false, true] {
        let o = env.both_as(pull, &["-a", "--stats"], &prep, true);
        let literal = figure(&o, "Literal data:");
        let matched = figure(&o, "Matched data:");
        assert!(literal < 256 << 10, "pull={pull}: literal {literal}");
        assert_eq!(literal + matched, new.len() as u64, "pull={pull}");
        let got = fs::read(env.w().join("s/dst/big")).unwrap();
        assert!(got == new, "pull={pull}: content");
        // -W sends the whole file.
        let o = env.both(pull, &["-a", "-W", "--stats"], &prep);
        assert_eq!(figure(&o, "Literal data:"), new.len() as u64);
        assert_eq!(figure(&o, "Matched data:"), 0);
    }
}

#[test]
fn a_missing_source_is_exit_23_like_rsync() {
    let Some(env) = Env::new() else { return };
    let rsh = env.rsh();
    let missing = format!("{USER}:{}/nonexist", env.w().display());
    let r = run("rsync", env.w(), &["-a", "-e", &rsh, &missing, "r"]);
    let s = run(BIN, env.w(), &["-a", "-e", &rsh, &missing, "s"]);
    assert_eq!(r.status.code(), Some(23));
    assert_eq!(s.status.code(), Some(23), "{}", stderr(&s));
    let e = stderr(&s);
    assert!(
        e.contains(&format!(
            "resync: [sender] link_stat \"{}/nonexist\" failed: No such file or directory (2)\n",
            env.w().display()
        )),
        "{e}"
    );
    assert!(
        e.ends_with(
            "resync error: some files/attrs were not transferred (see previous errors) \
             (code 23) [Receiver=0.1.0]\n"
        ),
        "{e}"
    );
    // A push of a missing local source.
    let dst = format!("{USER}:{}/p/", env.w().display());
    let s = run(BIN, env.w(), &["-a", "-e", &rsh, "nonexist", &dst]);
    assert_eq!(s.status.code(), Some(23), "{}", stderr(&s));
    assert!(
        stderr(&s).ends_with("(code 23) [sender=0.1.0]\n"),
        "{}",
        stderr(&s)
    );
}

/// Temp files (`.NAME.XXXXXX`) anywhere below `root`.
fn temp_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in walk_all(root) {
        let n = e.file_name().unwrap().to_string_lossy().into_owned();
        if n.starts_with('.') && n.len() > 8 && n.as_bytes()[n.len() - 7] == b'.' {
            out.push(e);
        }
    }
    out
}

fn walk_all(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = fs::read_dir(root) {
        for e in rd {
            let p = e.unwrap().path();
            if p.is_dir() && !p.is_symlink() {
                out.extend(walk_all(&p));
            }
            out.push(p);
        }
    }
    out
}

#[test]
fn an_interrupted_transfer_leaves_old_or_new_files_and_a_rerun_completes() {
    let Some(env) = Env::new() else { return };
    let rsh = env.rsh();
    let src = env.w().join("src");
    // Pull: the server is killed once 3 MiB of its output (inside the
    // 10 MiB file) went out.
    let cut = env.w().join("cut.sh");
    fs::write(
        &cut,
        format!(
            "#!/bin/sh\nd=$(mktemp -d)\nmkfifo $d/f\n{BIN} \"$@\" > $d/f & pid=$!\n\
             stdbuf -o0 head -c 3000000 < $d/f\nkill -9 $pid\nrm -r $d\n"
        ),
    )
    .unwrap();
    fs::set_permissions(&cut, fs::Permissions::from_mode(0o755)).unwrap();
    let dst = env.w().join("pulled");
    fs::create_dir(&dst).unwrap();
    fs::write(dst.join("big"), b"old big").unwrap();
    let from = format!("{USER}:{}/", src.display());
    let cut_s = cut.display().to_string();
    let o = Command::new(BIN)
        .args(["-a", "-e", &rsh, "--rsync-path", &cut_s, &from, "pulled"])
        .current_dir(env.w())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(12), "{}", stderr(&o));
    assert!(
        stderr(&o).contains("connection unexpectedly closed"),
        "{}",
        stderr(&o)
    );
    // The big file is still the old one, no temp file is left.
    assert_eq!(fs::read(dst.join("big")).unwrap(), b"old big");
    assert!(temp_files(&dst).is_empty(), "{:?}", temp_files(&dst));
    let o = run(BIN, env.w(), &["-a", "-e", &rsh, &from, "pulled"]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(tree(&dst), tree(&src));

    // Push: the server's input is cut after 2 MiB; it dies mid-file.
    let cut_in = env.w().join("cut_in.sh");
    fs::write(
        &cut_in,
        format!("#!/bin/sh\nstdbuf -o0 head -c 2000000 | {BIN} \"$@\"\n"),
    )
    .unwrap();
    fs::set_permissions(&cut_in, fs::Permissions::from_mode(0o755)).unwrap();
    let rdst = env.w().join("pushed");
    fs::create_dir(&rdst).unwrap();
    fs::write(rdst.join("big"), b"old big").unwrap();
    let to = format!("{USER}:{}/", rdst.display());
    let cut_in_s = cut_in.display().to_string();
    let o = Command::new(BIN)
        .args(["-a", "-e", &rsh, "--rsync-path", &cut_in_s, "src/", &to])
        .current_dir(env.w())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(12), "{}", stderr(&o));
    assert_eq!(fs::read(rdst.join("big")).unwrap(), b"old big");
    assert!(temp_files(&rdst).is_empty(), "{:?}", temp_files(&rdst));
    let o = run(BIN, env.w(), &["-a", "-e", &rsh, "src/", &to]);
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
    assert_eq!(tree(&rdst), tree(&src));
}
