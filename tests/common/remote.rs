//! The differential harness of the remote-transfer tests: a tree, a real
//! sshd, and [`Env::both`], which runs rsync and resync with the same flags
//! (push or pull) from the same starting destination and compares trees,
//! stdout (byte figures blanked) and exit codes.

use super::sshd::Sshd;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const BIN: &str = env!("CARGO_BIN_EXE_resync");
pub const USER: &str = "root@127.0.0.1";

pub fn have_rsync() -> bool {
    if Command::new("rsync").arg("--version").output().is_ok() {
        return true;
    }
    eprintln!("skipping: rsync not installed");
    false
}

/// Files, directories, symlinks, modes, nanosecond mtimes, an empty file
/// and a 10 MiB file.
pub fn make_tree(root: &Path) {
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
        &super::bytes(5000, 3),
        0o644,
        (1_600_000_004, 42),
    );
    w(
        "big",
        &super::bytes(10 << 20, 7),
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

/// Give the tree's symlinks and its root fixed mtimes (after [`make_tree`]
/// or a change of the root's names), so that whole-second comparisons do not
/// depend on when the test ran.
pub fn fix_times(root: &Path) {
    for l in ["link", "sub/dangling"] {
        let p = root.join(l);
        if fs::symlink_metadata(&p).is_ok() {
            let st = Command::new("touch")
                .args(["-h", "-d", "@1550000000"])
                .arg(&p)
                .status()
                .unwrap();
            assert!(st.success());
        }
    }
    set_mtime(root, (1_550_000_000, 0));
}

pub fn set_mtime(p: &Path, (s, ns): (i64, u32)) {
    let t = std::time::UNIX_EPOCH + std::time::Duration::new(s as u64, ns);
    let f = fs::File::options()
        .write(true)
        .open(p)
        .or_else(|_| fs::File::open(p));
    f.unwrap()
        .set_times(fs::FileTimes::new().set_modified(t))
        .unwrap();
}

/// Every entry below `root`: name, type and mode, owner, size, mtime (ns,
/// not for symlinks), link count and content hash, or link target. The root's own line is left out
/// (its mtime differs with how it was created).
pub fn tree(root: &Path) -> Vec<String> {
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
                    "{} {} n{} {}",
                    m.len(),
                    when(&m),
                    m.nlink(),
                    blake3::hash(&fs::read(&p).unwrap()).to_hex()
                )
            } else {
                when(&m)
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

/// An mtime; one set by the run itself (after the fixtures' times, all
/// before 2023) shows as `now`: both programs leave some directories so.
fn when(m: &fs::Metadata) -> String {
    if m.mtime() >= 1_700_000_000 {
        "now".into()
    } else {
        format!("{}.{:09}", m.mtime(), m.mtime_nsec())
    }
}

/// stdout with the parts that count each program's own protocol blanked:
/// the summary's byte figures and rate, `--stats` byte and time lines, and
/// with `delta` the literal/matched split (each program's own algorithm).
/// The per-file lines are sorted, as the compat harness does: rsync prints
/// them from two processes (generator and receiver), whose order varies.
pub fn norm(o: &Output, work: &Path, delta: bool) -> String {
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

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub fn run(prog: &str, cwd: &Path, args: &[&str]) -> Output {
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
pub struct Env {
    sshd: Sshd,
    work: tempfile::TempDir,
}

impl Env {
    pub fn new() -> Option<Env> {
        if !have_rsync() {
            return None;
        }
        let sshd = Sshd::start()?;
        let work = tempfile::tempdir().unwrap();
        make_tree(&work.path().join("src"));
        fix_times(&work.path().join("src"));
        Some(Env { sshd, work })
    }

    pub fn w(&self) -> &Path {
        self.work.path()
    }

    pub fn rsh(&self) -> String {
        self.sshd.rsh("user_key")
    }

    /// Run `flags` with rsync into `r/dst` and resync into `s/dst`, pushing
    /// (`pull` false) or pulling; compare. Returns resync's output.
    pub fn both(&self, pull: bool, flags: &[&str], prep: &dyn Fn(&Path)) -> Output {
        self.both_as(pull, flags, prep, false)
    }

    /// Run resync again on what the last [`Env::both`] left in `s/dst`.
    pub fn rerun(&self, pull: bool, flags: &[&str]) -> Output {
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
    pub fn both_as(&self, pull: bool, flags: &[&str], prep: &dyn Fn(&Path), delta: bool) -> Output {
        self.check(
            pull,
            flags,
            prep,
            &Check {
                delta,
                ..Check::default()
            },
        )
        .1
    }

    /// [`Env::both`] with the comparisons of `c`; `{B}` in a flag stands for
    /// each run's own base directory (`r/` or `s/`, which holds `dst/`).
    /// Returns rsync's output and resync's.
    pub fn check(
        &self,
        pull: bool,
        flags: &[&str],
        prep: &dyn Fn(&Path),
        c: &Check,
    ) -> (Output, Output) {
        let mut outs = Vec::new();
        for (prog, side) in [("rsync", "r"), (BIN, "s")] {
            let base = self.w().join(side);
            let _ = fs::remove_dir_all(&base);
            fs::create_dir_all(&base).unwrap();
            prep(&base.join("dst"));
            // The destination root's time must not depend on when prep ran.
            let root = base.join("dst");
            if fs::symlink_metadata(&root).is_ok_and(|m| m.is_dir()) {
                set_mtime(&root, (1_300_000_000, 0));
            }
            let src_abs = format!("{}/", self.w().join("src").display());
            let to = c.dst.unwrap_or("dst/");
            let (src, dst) = if pull {
                (format!("{USER}:{src_abs}"), to.to_string())
            } else {
                (src_abs, format!("{USER}:{}/{to}", base.display()))
            };
            let rsh = self.rsh();
            let b = base.display().to_string();
            let flags: Vec<String> = flags.iter().map(|f| f.replace("{B}", &b)).collect();
            let mut args: Vec<&str> = vec!["-e", &rsh];
            args.extend(flags.iter().map(String::as_str));
            args.push(&src);
            args.push(&dst);
            let o = run(prog, &base, &args);
            outs.push((o, base));
        }
        let (r, rb) = &outs[0];
        let (s, sb) = &outs[1];
        let what = format!("pull={pull} {flags:?}");
        assert_eq!(s.status.code(), r.status.code(), "{what}: {}", stderr(s));
        assert_eq!(norm(s, sb, c.delta), norm(r, rb, c.delta), "{what}: stdout");
        for d in std::iter::once("dst").chain(c.also.iter().copied()) {
            if rb.join(d).exists() {
                assert_eq!(tree(&sb.join(d)), tree(&rb.join(d)), "{what}: tree {d}");
            } else {
                assert!(!sb.join(d).exists(), "{what}: {d} made by resync only");
            }
        }
        let (s, _) = outs.pop().unwrap();
        let (r, _) = outs.pop().unwrap();
        (r, s)
    }
}

/// What [`Env::check`] compares beyond the destination tree, stdout and the
/// exit code.
#[derive(Default)]
pub struct Check {
    /// The literal/matched split may differ (each program's own delta).
    pub delta: bool,
    /// More directories of the base to compare (backup or reference dirs).
    pub also: &'static [&'static str],
    /// The destination operand relative to the base, instead of `dst/`.
    pub dst: Option<&'static str>,
}

pub fn nothing(_: &Path) {}

/// A destination with strays, an older copy of some files and a file where
/// the source has a directory.
pub fn stale(d: &Path) {
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

/// Temp files (`.NAME.XXXXXX`) anywhere below `root`.
pub fn temp_files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in walk_all(root) {
        let n = e.file_name().unwrap().to_string_lossy().into_owned();
        if n.starts_with('.') && n.len() > 8 && n.as_bytes()[n.len() - 7] == b'.' {
            out.push(e);
        }
    }
    out
}

pub fn walk_all(root: &Path) -> Vec<PathBuf> {
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
