//! The differential harness of the remote-transfer tests: a tree, an sshd
//! (`super::sshd`), and runs of `rsync -e ssh` and resync side by side on
//! the same flags ([`Env::check`], [`Env::both_with`]), comparing trees (contents, modes, ns mtimes, owners,
//! symlinks, hard-link groups, xattrs, with `-A` ACLs by `getfacl`), stdout
//! (byte figures blanked) and exit codes.

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
/// not for symlinks), content hash or link target, the link count and the
/// first name of the same inode (hard-link groups), and the xattrs (not
/// following symlinks; `system.posix_acl_*` among them, so ACLs too). The
/// root's own line is left out (its mtime differs with how it was created).
pub fn tree(root: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut inodes = std::collections::HashMap::new();
    fn walk(
        root: &Path,
        dir: &Path,
        out: &mut Vec<String>,
        inodes: &mut std::collections::HashMap<u64, String>,
    ) {
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
                    "{} {} {}",
                    m.len(),
                    when(&m),
                    blake3::hash(&read_noatime(&p)).to_hex()
                )
            } else {
                when(&m)
            };
            let links = if m.is_dir() {
                String::new()
            } else {
                let first = inodes.entry(m.ino()).or_insert_with(|| rel.clone());
                format!(" n{} ={first}", m.nlink())
            };
            out.push(format!(
                "{rel} {:o} {}:{} {body}{links}{}",
                m.mode(),
                m.uid(),
                m.gid(),
                xattrs(&p)
            ));
            if m.is_dir() {
                walk(root, &p, out, inodes);
            }
        }
    }
    walk(root, root, &mut out, &mut inodes);
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

/// The content of `p`, read without moving its atime (the `--atimes`
/// tests compare atimes after the trees).
pub fn read_noatime(p: &Path) -> Vec<u8> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = fs::File::options()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(p)
        .unwrap();
    let mut v = Vec::new();
    f.read_to_end(&mut v).unwrap();
    v
}

/// ` [name=hex value, …]` of `p`'s xattrs (not following a symlink), empty
/// without any.
pub fn xattrs(p: &Path) -> String {
    let mut buf = vec![0u8; 65536];
    let Ok(n) = rustix::fs::llistxattr(p, &mut buf) else {
        return String::new();
    };
    let mut names: Vec<Vec<u8>> = buf[..n]
        .split(|&c| c == 0)
        .filter(|n| !n.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    names.sort();
    let mut parts = Vec::new();
    for name in names {
        let cname = {
            use std::os::unix::ffi::OsStrExt;
            std::ffi::OsStr::from_bytes(&name)
        };
        let mut v = vec![0u8; 65536];
        let n = rustix::fs::lgetxattr(p, cname, &mut v).unwrap_or(0);
        let hex: String = v[..n].iter().map(|b| format!("{b:02x}")).collect();
        parts.push(format!("{}={hex}", String::from_utf8_lossy(&name)));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!(" [{}]", parts.join(", "))
    }
}

/// `getfacl`'s view of every entry below `root` (names relative), for the
/// ACL comparisons (rsync's own view of ACLs: effective masks included).
pub fn acls(root: &Path) -> String {
    let o = Command::new("getfacl")
        .args(["-R", "-p", "-s", "--omit-header"])
        .arg(".")
        .current_dir(root)
        .output()
        .expect("getfacl (apt-get install acl)");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let full = Command::new("getfacl")
        .args(["-R", "-p", "-n"])
        .arg(".")
        .current_dir(root)
        .output()
        .unwrap();
    format!(
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&full.stdout)
    )
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
            // --progress: what is left on screen after its `\r` updates.
            let l = l.rsplit('\r').next().unwrap_or(l);
            if let Some(p) = progress_line(l) {
                p
            } else if l.starts_with("sent ") {
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

/// A `--progress` line (`SIZE PCT% RATE TIME [(xfr#N, to-chk=R/T)]`) with
/// its rate and time masked.
pub fn progress_line(l: &str) -> Option<String> {
    let f: Vec<&str> = l.split_whitespace().collect();
    let is = f.len() >= 4
        && f[1].ends_with('%')
        && f[2].ends_with("B/s")
        && f[0].chars().all(|c| c.is_ascii_digit() || c == ',');
    is.then(|| format!("{} {} RATE TIME {}", f[0], f[1], f[4..].join(" ")))
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
    pub sshd: Sshd,
    pub work: tempfile::TempDir,
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

    /// An environment whose `src` is what `make` builds (instead of
    /// [`make_tree`]).
    pub fn with(make: &dyn Fn(&Path)) -> Option<Env> {
        if !have_rsync() {
            return None;
        }
        let sshd = Sshd::start()?;
        let work = tempfile::tempdir().unwrap();
        fs::create_dir_all(work.path().join("src")).unwrap();
        make(&work.path().join("src"));
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
        let src_abs = format!("{}/", self.w().join("src").display());
        let to = c.dst.unwrap_or("dst/");
        let ops = |base: &Path| {
            if pull {
                vec![format!("{USER}:{src_abs}"), to.to_string()]
            } else {
                vec![src_abs.clone(), format!("{USER}:{}/{to}", base.display())]
            }
        };
        self.compare(&format!("pull={pull}"), flags, &ops, prep, c)
    }

    /// Run rsync in `r/` and resync in `s/` with `flags` and the operands
    /// `ops(base)` gives (e.g. a pull without destination, several sources);
    /// compare exit codes, stdout and, when there is one, the `dst` tree
    /// (with `getfacl`'s view too when `flags` ask for ACLs). Returns
    /// resync's output.
    pub fn both_with(
        &self,
        what: &str,
        flags: &[&str],
        ops: &dyn Fn(&Path) -> Vec<String>,
        prep: &dyn Fn(&Path),
        delta: bool,
    ) -> Output {
        let c = Check {
            delta,
            ..Check::default()
        };
        self.compare(what, flags, ops, prep, &c).1
    }

    /// The runs and comparisons of [`Env::check`] and [`Env::both_with`].
    fn compare(
        &self,
        what: &str,
        flags: &[&str],
        ops: &dyn Fn(&Path) -> Vec<String>,
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
            let rsh = self.rsh();
            let b = base.display().to_string();
            let flags: Vec<String> = flags.iter().map(|f| f.replace("{B}", &b)).collect();
            let ops = ops(&base);
            let mut args: Vec<&str> = vec!["-e", &rsh];
            args.extend(flags.iter().map(String::as_str));
            args.extend(ops.iter().map(String::as_str));
            let o = run(prog, &base, &args);
            outs.push((o, base));
        }
        let (r, rb) = &outs[0];
        let (s, sb) = &outs[1];
        let what = format!("{what} {flags:?}");
        assert_eq!(
            s.status.code(),
            r.status.code(),
            "{what}: {} / rsync: {}",
            stderr(s),
            stderr(r)
        );
        assert_eq!(norm(s, sb, c.delta), norm(r, rb, c.delta), "{what}: stdout");
        let acl = flags.iter().any(|f| {
            *f == "--acls" || (f.starts_with('-') && !f.starts_with("--") && f.contains('A'))
        });
        for d in std::iter::once("dst").chain(c.also.iter().copied()) {
            if rb.join(d).exists() {
                assert_eq!(tree(&sb.join(d)), tree(&rb.join(d)), "{what}: tree {d}");
                if acl {
                    assert_eq!(acls(&sb.join(d)), acls(&rb.join(d)), "{what}: ACLs {d}");
                }
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
