//! Running one scenario: prepare two identical work dirs, run the oracle (rsync) in one
//! and the candidate (resync) in the other, compare exit code, normalised stdout/stderr
//! and snapshots.

use std::ffi::OsString;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::snapshot::{self, Mask, Window};
use crate::tree::{self, Tree};

/// What the destination looks like before the run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dest {
    /// `dst` does not exist.
    Absent,
    /// `dst` is an empty directory.
    Empty,
    /// `dst` is a modified copy of the source (see `tree::prepopulate`).
    Prepopulated,
    /// `dst` is a regular file.
    File,
}

/// Who runs both programs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum User {
    Root,
    /// uid/gid 65534, no supplementary groups; the work dir is chowned to it first.
    Nobody,
}

pub const NOBODY: u32 = 65534;

/// Extra normalisation of stdout a scenario may ask for (documented per scenario).
#[derive(Clone, Copy, Debug, Default)]
pub struct Norm {
    /// Replace the figures of `Literal data:` and `Matched data:` (`--stats`): they
    /// depend on the delta algorithm's choices.
    pub literal_matched: bool,
    /// Compare the per-file section of stdout (everything before the first empty line)
    /// as a multiset of lines. `None`: decided from the arguments, see [`Scenario::unordered`].
    pub unordered: Option<bool>,
    /// Compare stderr in order. By default stderr is compared like an unordered
    /// per-file section, because the sender, generator and receiver all write to it.
    pub stderr_ordered: bool,
}

pub type Hook = fn(&Path);

#[derive(Clone)]
pub struct Scenario {
    /// Stable id, `group/...`; named in `known_failures.txt`.
    pub id: String,
    pub tree: Tree,
    pub seed: u64,
    pub dest: Dest,
    /// Arguments after the program name, operands included (relative to `cwd`).
    pub args: Vec<OsString>,
    pub user: User,
    /// Working directory of both programs, relative to the work dir.
    pub cwd: &'static str,
    /// Extra setup run on each work dir after the trees are generated (and chowned for
    /// `User::Nobody`), before timestamps are stamped.
    pub setup: Option<Hook>,
    /// Extra setup run after the timestamps are stamped (for mtime
    /// differences that stamping would undo, e.g. in a reference directory).
    pub after_stamp: Option<Hook>,
    pub norm: Norm,
    pub mask: Mask,
    /// The run may change `src` (e.g. `--remove-source-files`): skip the
    /// source-unchanged check.
    pub modifies_src: bool,
    /// Extra environment for both programs (after the defaults: `LC_ALL=C`, `TZ=UTC`).
    pub env: Vec<(&'static str, &'static str)>,
}

impl Scenario {
    pub fn new(id: impl Into<String>, tree: Tree, dest: Dest, args: &[&str]) -> Self {
        Scenario {
            id: id.into(),
            tree,
            seed: 42,
            dest,
            args: args.iter().map(OsString::from).collect(),
            user: User::Root,
            cwd: "",
            setup: None,
            after_stamp: None,
            norm: Norm::default(),
            mask: Mask::default(),
            modifies_src: false,
            env: Vec::new(),
        }
    }
    pub fn user(mut self, u: User) -> Self {
        self.user = u;
        self
    }
    pub fn setup(mut self, h: Hook) -> Self {
        self.setup = Some(h);
        self
    }
    pub fn after_stamp(mut self, h: Hook) -> Self {
        self.after_stamp = Some(h);
        self
    }
    pub fn cwd(mut self, c: &'static str) -> Self {
        self.cwd = c;
        self
    }
    pub fn norm(mut self, n: Norm) -> Self {
        self.norm = n;
        self
    }
    /// No scenario needs a mask yet; kept for the ones that will (document why there).
    pub fn mask(mut self, m: Mask) -> Self {
        self.mask = m;
        self
    }
    pub fn env(mut self, k: &'static str, v: &'static str) -> Self {
        self.env.push((k, v));
        self
    }
    pub fn modifies_src(mut self) -> Self {
        self.modifies_src = true;
        self
    }
    /// rsync's local transfer prints per-file lines from two processes that race: the
    /// sender (transferred files, progress) and the generator (directories, deletions,
    /// attribute-only changes, "is uptodate"), so their order is not reproducible even
    /// rsync against rsync. Scenarios whose arguments ask for per-file output compare
    /// that section unordered unless the scenario says otherwise.
    pub fn unordered(&self) -> bool {
        self.norm.unordered.unwrap_or_else(|| {
            self.args.iter().any(|a| {
                let a = a.to_string_lossy();
                let short = a.starts_with('-') && !a.starts_with("--");
                (short && (a.contains('v') || a.contains('i') || a.contains('P')))
                    || a.starts_with("--out-format")
                    || a.starts_with("--itemize")
                    || a.starts_with("--info")
                    || a.starts_with("--progress")
                    || a.starts_with("--verbose")
            })
        })
    }
    pub fn group(&self) -> &str {
        self.id.split('/').next().unwrap()
    }
}

/// The program under test: `$COMPAT_CANDIDATE`, or the resync binary built by cargo.
pub fn candidate() -> OsString {
    std::env::var_os("COMPAT_CANDIDATE").unwrap_or_else(|| env!("CARGO_BIN_EXE_resync").into())
}

/// The oracle: `$COMPAT_ORACLE` or `rsync` from `PATH`.
pub fn oracle() -> OsString {
    std::env::var_os("COMPAT_ORACLE").unwrap_or_else(|| "rsync".into())
}

pub struct RunResult {
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    pub window: Window,
}

fn now_ns() -> i128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i128
}

/// Per-program time limit: `$COMPAT_TIMEOUT` seconds, default 60. A program that
/// exceeds it is killed and reported with exit code `None`.
fn timeout() -> Duration {
    let secs = std::env::var("COMPAT_TIMEOUT")
        .ok()
        .and_then(|s| s.parse().ok());
    Duration::from_secs(secs.unwrap_or(60))
}

fn run_program(prog: &OsString, sc: &Scenario, work: &Path, outdir: &Path) -> RunResult {
    let out_path = outdir.join("stdout");
    let err_path = outdir.join("stderr");
    let mut cmd = Command::new(prog);
    cmd.args(&sc.args)
        .current_dir(work.join(sc.cwd))
        .env_clear()
        .env(
            "PATH",
            "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        )
        .env("LC_ALL", "C")
        .env("TZ", "UTC")
        .env("HOME", work)
        // resync's rescan manifests go to a cache outside the compared work
        // dir, fresh for every run: each comparison is of a full scan.
        .env("XDG_CACHE_HOME", outdir.join("xdg-cache"))
        .envs(sc.env.iter().copied())
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(fs::File::create(&out_path).unwrap())
        .stderr(fs::File::create(&err_path).unwrap());
    let nobody = sc.user == User::Nobody;
    // SAFETY: only async-signal-safe syscalls between fork and exec.
    unsafe {
        cmd.pre_exec(move || {
            libc::umask(0o022);
            if nobody
                && (libc::setgroups(0, std::ptr::null()) != 0
                    || libc::setgid(NOBODY) != 0
                    || libc::setuid(NOBODY) != 0)
            {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let start = now_ns();
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", prog.to_string_lossy()));
    let t0 = Instant::now();
    let limit = timeout();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break Some(st);
        }
        if t0.elapsed() > limit {
            // The program runs in its own process group: kill it with its children.
            unsafe { libc::kill(-(child.id() as libc::pid_t), libc::SIGKILL) };
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let end = now_ns();
    RunResult {
        code: status.and_then(|s| s.code()),
        stdout: fs::read(&out_path).unwrap(),
        stderr: fs::read(&err_path).unwrap(),
        window: Window { start, end },
    }
}

/// Build the work dir `base/work` for a scenario; returns it.
pub fn prepare(sc: &Scenario, base: &Path) -> PathBuf {
    let work = base.join("work");
    tree::mkdir(&work);
    tree::generate(sc.tree, &work, "src", sc.seed);
    let mut overrides = Vec::new();
    match sc.dest {
        Dest::Absent => {}
        Dest::Empty => tree::mkdir(&work.join("dst")),
        Dest::File => tree::write(&work.join("dst"), b"destination is a file\n"),
        Dest::Prepopulated => {
            tree::generate(sc.tree, &work, "dst", sc.seed);
            overrides = tree::prepopulate(&work, sc.seed);
        }
    }
    if sc.user == User::Nobody {
        // The temp dir itself is 0700 root: let nobody in.
        tree::chmod(base, 0o755);
        tree::chmod(base.parent().unwrap(), 0o755);
        tree::chown_r(&work, NOBODY, NOBODY);
    }
    if let Some(h) = sc.setup {
        h(&work);
    }
    tree::stamp(&work, sc.seed);
    for (p, s, ns) in overrides {
        tree::set_mtime(&work.join(p), s, ns);
    }
    if let Some(h) = sc.after_stamp {
        h(&work);
    }
    work
}

/// Normalise program output for comparison. See README.md ("What is normalised").
pub fn normalise(
    out: &[u8],
    work: &Path,
    norm: Norm,
    unordered: bool,
    is_candidate: bool,
) -> Vec<String> {
    let text = String::from_utf8_lossy(out).into_owned();
    let work_s = work.to_string_lossy().into_owned();
    let text = text.replace(&work_s, "<WORK>");
    let mut lines = Vec::new();
    for raw in text.split('\n') {
        // Progress output redraws a line with '\r': keep the final state only.
        let line = raw.rsplit('\r').next().unwrap_or("");
        lines.push(normalise_line(line, norm, is_candidate));
    }
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    if unordered {
        let body = lines
            .iter()
            .position(|l| l.is_empty())
            .unwrap_or(lines.len());
        lines[..body].sort();
    }
    lines
}

fn replace_word_prefix(line: &str) -> String {
    // The candidate calls itself resync; the oracle rsync.
    let mut l = line.to_string();
    for (from, to) in [
        ("resync:", "rsync:"),
        ("resync error:", "rsync error:"),
        ("resync warning:", "rsync warning:"),
    ] {
        if l.starts_with(from) {
            l = format!("{to}{}", &l[from.len()..]);
        }
    }
    l
}

/// `... at main.c(1394) [sender=3.5.0]` -> `... [sender]`.
fn strip_source_location(line: &str) -> String {
    let mut l = line.to_string();
    if let Some(open) = l.rfind(" [")
        && l.ends_with(']')
    {
        let tag = &l[open + 2..l.len() - 1];
        if let Some(eq) = tag.find('=') {
            let role = tag[..eq].to_string();
            l = format!("{} [{role}]", &l[..open]);
        }
        if let Some(at) = l.rfind(" at ") {
            let rest = &l[at + 4..];
            if let Some(paren) = rest.find('(')
                && rest[..paren].ends_with(".c") | rest[..paren].ends_with(".rs")
                && let Some(close) = rest.find(") [")
            {
                l = format!("{}{}", &l[..at], &rest[close + 1..]);
            }
        }
    }
    l
}

/// rsync's temporary files are `.NAME.XXXXXX` (mkstemp): replace the random suffix.
fn mask_temp_names(line: &str) -> String {
    let b = line.as_bytes();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    while i < b.len() {
        let at_start = i == 0 || matches!(b[i - 1], b'/' | b'"' | b' ');
        if at_start && b[i] == b'.' {
            let end = b[i..]
                .iter()
                .position(|c| matches!(c, b'/' | b'"' | b' '))
                .map_or(b.len(), |p| i + p);
            let comp = &line[i..end];
            if comp.len() > 8
                && comp.as_bytes()[comp.len() - 7] == b'.'
                && comp[comp.len() - 6..]
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric())
            {
                out.push_str(&comp[..comp.len() - 6]);
                out.push_str("XXXXXX");
                i = end;
                continue;
            }
        }
        let ch = line[i..].chars().next().unwrap();
        out.push(ch);
        i += ch.len_utf8();
    }
    out
}

fn normalise_line(line: &str, norm: Norm, is_candidate: bool) -> String {
    let mut l = if is_candidate {
        replace_word_prefix(line)
    } else {
        line.to_string()
    };
    l = strip_source_location(&l);
    l = mask_temp_names(&l);
    let t = l.trim_start();
    if t.starts_with("sent ") && t.contains(" bytes  received ") && t.ends_with("bytes/sec") {
        return "sent N bytes  received N bytes  N bytes/sec".into();
    }
    if let Some(rest) = t.strip_prefix("total size is ")
        && let Some(pos) = rest.find("  speedup is ")
    {
        let tail = if rest.ends_with("(DRY RUN)") {
            " (DRY RUN)"
        } else {
            ""
        };
        return format!("total size is {}  speedup is N{tail}", &rest[..pos]);
    }
    for key in [
        "Total bytes sent:",
        "Total bytes received:",
        "File list size:",
        "File list generation time:",
        "File list transfer time:",
    ] {
        if t.starts_with(key) {
            return format!("{key} N");
        }
    }
    if norm.literal_matched {
        for key in ["Literal data:", "Matched data:"] {
            if t.starts_with(key) {
                return format!("{key} N");
            }
        }
    }
    // --progress: "      1,234 100%   12.34MB/s    0:00:00 (xfr#1, to-chk=0/3)"
    if let Some(pct) = l.find('%')
        && l[..pct].split_whitespace().count() == 2
        && (l.contains("B/s") || l.contains("bytes/sec"))
    {
        let fields: Vec<&str> = l.split_whitespace().collect();
        if fields.len() >= 4 {
            let rest = if fields.len() > 4 {
                fields[4..].join(" ")
            } else {
                String::new()
            };
            return format!("{} {} RATE TIME {rest}", fields[0], fields[1])
                .trim_end()
                .into();
        }
    }
    l
}

/// Line diff (LCS) for readable reports: `-` oracle only, `+` candidate only.
pub fn line_diff(a: &[String], b: &[String]) -> String {
    let (n, m) = (a.len(), b.len());
    let mut lcs = vec![vec![0u32; m + 1]; n + 1];
    for i in (0..n).rev() {
        for j in (0..m).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut out = String::new();
    let (mut i, mut j) = (0, 0);
    while i < n || j < m {
        if i < n && j < m && a[i] == b[j] {
            out += &format!("      {}\n", a[i].escape_debug());
            i += 1;
            j += 1;
        } else if j < m && (i == n || lcs[i][j + 1] >= lcs[i + 1][j]) {
            out += &format!("    + {}\n", b[j].escape_debug());
            j += 1;
        } else {
            out += &format!("    - {}\n", a[i].escape_debug());
            i += 1;
        }
    }
    out
}

/// Run one scenario. `Ok(())` when the candidate behaves like the oracle, otherwise a
/// readable report of every difference.
pub fn run_scenario(sc: &Scenario) -> Result<(), String> {
    run_scenario_with(sc, &oracle(), &candidate())
}

/// [`run_scenario`] with explicit programs (the comparator's own tests use fake
/// candidates).
pub fn run_scenario_with(
    sc: &Scenario,
    oracle: &OsString,
    candidate: &OsString,
) -> Result<(), String> {
    let tmp = tempfile::Builder::new()
        .prefix("compat-")
        .tempdir()
        .unwrap();
    let (base_a, base_b) = (tmp.path().join("A"), tmp.path().join("B"));
    tree::mkdir(&base_a);
    tree::mkdir(&base_b);
    let work_a = prepare(sc, &base_a);
    let work_b = prepare(sc, &base_b);
    let pre_a = snapshot::take(&work_a);
    let pre_b = snapshot::take(&work_b);
    let setup_diff = snapshot::diff(&pre_a, &pre_b, None, None, &Mask::default());
    if !setup_diff.is_empty() {
        return Err(format!(
            "HARNESS ERROR: the two prepared work dirs differ:\n  {}",
            setup_diff.join("\n  ")
        ));
    }
    let src_b = snapshot::take(&work_b.join("src"));
    let ra = run_program(oracle, sc, &work_a, &base_a);
    let rb = run_program(candidate, sc, &work_b, &base_b);
    if std::env::var_os("COMPAT_SHOW").is_some() {
        eprintln!(
            "--- {} {:?}\n  oracle exit {:?}\n  stdout:\n{}  stderr:\n{}",
            sc.id,
            sc.args,
            ra.code,
            indent(&String::from_utf8_lossy(&ra.stdout)),
            indent(&String::from_utf8_lossy(&ra.stderr))
        );
    }
    let mut report = Vec::new();
    if ra.code != rb.code {
        report.push(format!(
            "exit code: {:?} (oracle) vs {:?} (candidate)",
            ra.code, rb.code
        ));
    }
    // stderr: messages come from the sender, the generator and the receiver: unordered.
    let unordered = sc.unordered();
    for (what, oa, ob, unord) in [
        ("stdout", &ra.stdout, &rb.stdout, unordered),
        ("stderr", &ra.stderr, &rb.stderr, !sc.norm.stderr_ordered),
    ] {
        let la = normalise(oa, &work_a, sc.norm, unord, false);
        let lb = normalise(ob, &work_b, sc.norm, unord, true);
        if la != lb {
            let how = if unord {
                ", per-file section sorted"
            } else {
                ""
            };
            report.push(format!(
                "{what} differs (- oracle, + candidate{how}):\n{}",
                line_diff(&la, &lb)
            ));
        }
    }
    let post_a = snapshot::take(&work_a);
    let post_b = snapshot::take(&work_b);
    let d = snapshot::diff(&post_a, &post_b, Some(ra.window), Some(rb.window), &sc.mask);
    if !d.is_empty() {
        report.push(format!(
            "work dir differs after the run:\n  {}",
            d.join("\n  ")
        ));
    }
    if !sc.modifies_src {
        let d = snapshot::diff(
            &src_b,
            &snapshot::take(&work_b.join("src")),
            None,
            None,
            &Mask::default(),
        );
        if !d.is_empty() {
            report.push(format!(
                "candidate changed the source (- before):\n  {}",
                d.join("\n  ")
            ));
        }
    }
    // Make the temp dir removable even after chmod 000 setups.
    let _ = Command::new("chmod")
        .arg("-R")
        .arg("u+rwx")
        .arg(tmp.path())
        .status();
    if report.is_empty() {
        Ok(())
    } else {
        Err(report.join("\n"))
    }
}

fn indent(s: &str) -> String {
    s.lines().map(|l| format!("    {l}\n")).collect()
}
