//! One local transfer from start to finish: scan → plan → report → apply → stats.

use crate::apply;
use crate::exit;
use crate::flist::{self, Entry, Kind, Meta};
use crate::options::Options;
use crate::plan::{self, Action, Plan, PlanInput};
use crate::report::{self, Stats};
use rayon::prelude::*;
use std::ffi::OsStr;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Where entries land: under a directory, or (single file) at an exact path.
enum DestMode {
    Dir(PathBuf),
    File(PathBuf),
}

/// Print an error the way rsync does and give back its exit code.
fn fail(msg: &str, code: i32) -> i32 {
    report::message(msg);
    report::exit_message(code);
    code
}

/// The format used for per-item stdout lines, if any (`-i`, `-v`, `--out-format`).
fn stdout_format(opts: &Options) -> Option<String> {
    if let Some(f) = &opts.out_format {
        return Some(f.clone());
    }
    if opts.itemize > 0 {
        return Some("%i %n%L".into());
    }
    if opts.verbose > 0 || opts.progress {
        return Some("%n%L".into());
    }
    None
}

/// Run one local transfer; returns rsync's exit code.
pub fn run(opts: Options) -> i32 {
    let start = Instant::now();
    if let Err(v) = plan::chmod::parse_all(&opts.chmod) {
        report::message(&format!("Invalid argument passed to --chmod ({v})"));
        report::exit_message(exit::SYNTAX);
        return exit::SYNTAX;
    }
    let mut opts = opts;
    if opts.dest.is_none() || opts.list_only {
        return list_only(opts);
    }
    // rsync's implied settings.
    if opts.partial_dir.is_some() {
        opts.partial = true;
    }
    if opts.append != crate::options::Append::No {
        opts.inplace = true;
    }
    if opts.quiet {
        opts.verbose = 0;
    }
    let human = human_level(&opts);
    let probe = probe_root(&opts);
    let (mut flist, scan_errors) = flist::scan(&opts, probe.as_deref());
    apply_chown(&opts, &mut flist.entries);
    let flist_time = start.elapsed().as_secs_f64();
    let timing = std::env::var_os("RESYNC_TIMING").is_some();
    let phase = |what: &str| {
        if timing {
            eprintln!("[timing] {what}: {:.3}s", start.elapsed().as_secs_f64());
        }
    };
    phase("scan");
    let mut code = 0;
    for e in &scan_errors {
        e.print();
        code = merge_code(code, e.code);
    }
    let dest_arg = opts.dest.clone().unwrap_or_default();
    let mode = match dest_mode(&opts, &flist.entries, &dest_arg) {
        Ok(m) => m,
        Err(c) => return c,
    };
    let mut out = std::io::stdout().lock();
    if (opts.verbose > 0 || opts.progress) && !opts.quiet {
        let _ = writeln!(out, "sending incremental file list");
    }
    let fmt = if opts.quiet { None } else { stdout_format(&opts) };
    let mut created_root = false;
    if let DestMode::Dir(d) = &mode {
        match ensure_dest_dir(&opts, d, &dest_arg, fmt.is_some(), &mut out) {
            Ok(created) => created_root = created,
            Err(c) => return c,
        }
    }
    // --temp-dir is relative to the destination directory, and must exist.
    let temp_dir = match (&opts.temp_dir, &mode) {
        (Some(t), DestMode::Dir(d)) if !Path::new(t).is_absolute() => Some(d.join(t)),
        (Some(t), DestMode::File(f)) if !Path::new(t).is_absolute() => {
            Some(f.parent().unwrap_or(Path::new(".")).join(t))
        }
        (Some(t), _) => Some(PathBuf::from(t)),
        (None, _) => None,
    };
    if let (Some(t), Some(given)) = (&temp_dir, &opts.temp_dir) {
        if !opts.dry_run && !t.is_dir() {
            let _ = out.flush();
            report::message_bare(&format!("The temp-dir does not exist: {given}"));
            report::exit_message(exit::SYNTAX);
            return exit::SYNTAX;
        }
    }
    if opts.verbose > 1 && !opts.quiet {
        let _ = writeln!(
            out,
            "delta-transmission disabled for local transfer or --whole-file"
        );
    }
    let dests: Vec<PathBuf> = flist
        .entries
        .iter()
        .map(|e| match &mode {
            DestMode::File(p) => p.clone(),
            DestMode::Dir(d) => {
                if e.name.as_os_str() == "." {
                    d.clone()
                } else {
                    d.join(&e.name)
                }
            }
        })
        .collect();
    phase("dests");
    let (mut dest_metas, dest_xattrs) = stat_dests(&opts, &flist.entries, &dests);
    phase("stat dests");
    if created_root {
        // The root was made just now: report it as new, as rsync does.
        for (e, m) in flist.entries.iter().zip(dest_metas.iter_mut()) {
            if e.name.as_os_str() == "." {
                *m = None;
            }
        }
    }
    let umask = current_umask();
    let plan = plan::plan(
        PlanInput {
            flist: &flist,
            dests,
            dest_metas,
            dest_xattrs,
            umask,
        },
        &opts,
    );
    phase("plan");
    let _ = out.flush();
    drop(out);
    let mut printer = report::Printer::new(fmt, &flist.entries, &plan, &opts, human);
    let serial = (opts.progress || opts.progress2) && !opts.quiet;
    let outcome = if opts.dry_run {
        printer.print_all();
        apply::Outcome::default()
    } else if serial {
        apply::apply(&flist, &plan, &opts, temp_dir.as_deref(), Some(&mut printer))
    } else {
        printer.print_all();
        apply::apply(&flist, &plan, &opts, temp_dir.as_deref(), None)
    };
    printer.finish();
    drop(printer);
    phase("apply");
    code = merge_code(code, outcome.code);
    let stats = build_stats(&flist.entries, &plan, flist_time, start, &opts);
    let mut out = std::io::stdout().lock();
    if opts.stats && !opts.quiet {
        let _ = writeln!(out);
        for l in report::stats_lines(&stats, human) {
            let _ = writeln!(out, "{l}");
        }
    }
    if opts.verbose > 1 && !opts.quiet {
        let _ = writeln!(
            out,
            "total: matches=0  hash_hits=0  false_alarms=0 data={}",
            stats.literal
        );
    }
    if (opts.verbose > 0 || opts.stats) && !opts.quiet {
        let [a, mut b] = report::summary_lines(&stats, human);
        if opts.dry_run {
            b.push_str(" (DRY RUN)");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{a}");
        let _ = writeln!(out, "{b}");
    }
    let _ = out.flush();
    if code != 0 {
        report::exit_message(code);
    }
    code
}

/// `--chown=USER:GROUP`: every entry is owned by USER/GROUP on the receiver.
/// Names are resolved there (numbers are taken as ids); an unknown name is
/// reported and ignored, as rsync's usermap does.
fn apply_chown(opts: &Options, entries: &mut [Entry]) {
    let resolve = |v: &str, user: bool| -> Option<u32> {
        if let Ok(n) = v.parse::<u32>() {
            return Some(n);
        }
        let id = if user {
            crate::sys::meta::uid_by_name(OsStr::new(v))
        } else {
            crate::sys::meta::gid_by_name(OsStr::new(v))
        };
        if id.is_none() {
            let which = if user { "usermap" } else { "groupmap" };
            report::message_bare(&format!("Unknown --{which} name on receiver: {v}"));
        }
        id
    };
    let uid = opts.chown_user.as_deref().and_then(|u| resolve(u, true));
    let gid = opts.chown_group.as_deref().and_then(|g| resolve(g, false));
    if uid.is_none() && gid.is_none() {
        return;
    }
    for e in entries {
        if let Some(u) = uid {
            e.meta.uid = u;
        }
        if let Some(g) = gid {
            e.meta.gid = g;
        }
    }
}

/// The destination directory the scan may stat entries in as it goes: only
/// when the destination already is a directory and entries land inside it.
fn probe_root(opts: &Options) -> Option<PathBuf> {
    let dest = PathBuf::from(opts.dest.as_ref()?);
    if opts.relative && !opts.implied_dirs {
        return None;
    }
    std::fs::metadata(&dest).ok().filter(|m| m.is_dir()).map(|_| dest)
}

/// Combine exit codes the way rsync reports them: file I/O (11) wins, then 23, then 24.
fn merge_code(a: i32, b: i32) -> i32 {
    let rank = |c: i32| match c {
        0 => 0,
        exit::VANISHED => 1,
        exit::PARTIAL => 2,
        _ => 3,
    };
    if rank(b) > rank(a) { b } else { a }
}

fn list_only(opts: Options) -> i32 {
    let mut opts = opts;
    // rsync lists one level of a directory operand when not recursing.
    if !opts.recursive {
        opts.dirs = true;
    }
    let human = human_level(&opts);
    let (flist, errors) = flist::scan(&opts, None);
    let mut code = 0;
    for e in &errors {
        e.print();
        code = merge_code(code, e.code);
    }
    let mut out = std::io::stdout().lock();
    for e in &flist.entries {
        let _ = writeln!(out, "{}", report::list_line(e, human, opts.eight_bit_output));
    }
    let _ = out.flush();
    if code != 0 {
        report::exit_message(code);
    }
    code
}

/// Decide whether the destination operand is a directory or the target file name.
fn dest_mode(opts: &Options, entries: &[Entry], dest: &OsStr) -> Result<DestMode, i32> {
    let path = PathBuf::from(dest);
    let trailing = dest.as_bytes().ends_with(b"/");
    let single_file = opts.sources.len() == 1
        && entries.len() == 1
        && entries[0].meta.kind != Kind::Dir
        && entries[0].name.as_os_str() != ".";
    match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => Ok(DestMode::Dir(path)),
        Ok(_) => {
            if single_file && !trailing {
                Ok(DestMode::File(path))
            } else if trailing {
                Err(fail(
                    &format!(
                        "[Receiver] ERROR: cannot stat destination \"{}\": Not a directory (20)",
                        report::abs_display(&path)
                    ),
                    exit::FILE_SELECT,
                ))
            } else {
                eprintln!("ERROR: destination must be a directory when copying more than 1 file");
                report::exit_message(exit::FILE_SELECT);
                Err(exit::FILE_SELECT)
            }
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTDIR) => Err(fail(
            &format!(
                "[Receiver] ERROR: cannot stat destination \"{}\": {}",
                report::abs_display(&path),
                flist::errno_text(&e)
            ),
            exit::FILE_SELECT,
        )),
        Err(_) => {
            if single_file && !trailing {
                let parent = path
                    .parent()
                    .filter(|p| !p.as_os_str().is_empty())
                    .unwrap_or(Path::new("."));
                if !parent.is_dir() {
                    if opts.mkpath {
                        if let Err(e) = std::fs::create_dir_all(parent) {
                            return Err(fail(
                                &format!(
                                    "[Receiver] mkdir \"{}\" failed: {}",
                                    report::abs_display(parent),
                                    flist::errno_text(&e)
                                ),
                                exit::FILE_IO,
                            ));
                        }
                    } else {
                        let e = std::fs::metadata(parent).err().unwrap_or_else(|| {
                            std::io::Error::from_raw_os_error(libc::ENOTDIR)
                        });
                        return Err(fail(
                            &format!(
                                "[Receiver] change_dir#3 \"{}\" failed: {}",
                                report::abs_display(parent),
                                flist::errno_text(&e)
                            ),
                            exit::FILE_SELECT,
                        ));
                    }
                }
                Ok(DestMode::File(path))
            } else {
                Ok(DestMode::Dir(path))
            }
        }
    }
}

/// Create the destination directory when missing (`created directory DEST`);
/// returns whether it was (or, with `-n`, would be) created.
fn ensure_dest_dir(
    opts: &Options,
    d: &Path,
    shown: &OsStr,
    announce: bool,
    out: &mut impl Write,
) -> Result<bool, i32> {
    if d.is_dir() {
        return Ok(false);
    }
    if opts.dry_run {
        if announce {
            let _ = writeln!(out, "created directory {}", display_operand(shown));
        }
        return Ok(true);
    }
    let r = if opts.mkpath {
        std::fs::create_dir_all(d)
    } else {
        std::fs::create_dir(d)
    };
    match r {
        Ok(()) => {
            if announce {
                let _ = writeln!(out, "created directory {}", display_operand(shown));
            }
            Ok(true)
        }
        Err(e) => Err(fail(
            &format!(
                "[Receiver] mkdir \"{}\" failed: {}",
                report::abs_display(d),
                flist::errno_text(&e)
            ),
            exit::FILE_IO,
        )),
    }
}

/// The destination operand as rsync echoes it (trailing slashes dropped).
fn display_operand(s: &OsStr) -> String {
    let b = s.as_bytes();
    let mut end = b.len();
    while end > 1 && b[end - 1] == b'/' {
        end -= 1;
    }
    report::escape_bytes(&b[..end], false)
}

type XattrList = Vec<(std::ffi::OsString, Vec<u8>)>;

/// `lstat` every destination path in parallel (and read xattrs with -X/-A).
///
/// Entries are grouped by parent directory; each group opens the parent's
/// destination once and stats its children relative to that descriptor.
fn stat_dests(
    opts: &Options,
    entries: &[Entry],
    dests: &[PathBuf],
) -> (Vec<Option<Meta>>, Vec<Option<XattrList>>) {
    let want_x = opts.xattrs || opts.acls;
    let mut groups: Vec<Vec<usize>> = vec![Vec::new(); entries.len() + 1];
    for (i, e) in entries.iter().enumerate() {
        groups[e.parent.map_or(entries.len(), |p| p)].push(i);
    }
    let mut metas: Vec<Option<Meta>> = entries
        .iter()
        .map(|e| match e.dest {
            flist::DestProbe::Found(m) => Some(m),
            _ => None,
        })
        .collect();
    for g in groups.iter_mut() {
        g.retain(|&i| entries[i].dest == flist::DestProbe::Unknown);
    }
    let results: Vec<(usize, Option<Meta>)> = groups
        .par_iter()
        .enumerate()
        .filter(|(_, g)| !g.is_empty())
        .flat_map_iter(|(p, g)| {
            let fd = (p < entries.len())
                .then(|| crate::sys::meta::open_dir(&dests[p]).ok())
                .flatten();
            g.iter()
                .map(|&i| {
                    let m = match (&fd, dests[i].file_name()) {
                        (Some(fd), Some(name)) => crate::sys::meta::lstat_at(fd, name)
                            .ok()
                            .map(|st| Meta::from_sys(&st)),
                        _ => std::fs::symlink_metadata(&dests[i])
                            .ok()
                            .map(|m| Meta::from_std(&m)),
                    };
                    (i, m)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    for (i, m) in results {
        metas[i] = m;
    }
    if opts.keep_dirlinks {
        for (i, e) in entries.iter().enumerate() {
            if e.meta.kind == Kind::Dir && metas[i].is_some_and(|m| m.kind == Kind::Symlink) {
                if let Ok(t) = std::fs::metadata(&dests[i]) {
                    if t.is_dir() {
                        metas[i] = Some(Meta::from_std(&t));
                    }
                }
            }
        }
    }
    let xattrs = if want_x {
        dests
            .par_iter()
            .zip(metas.par_iter())
            .map(|(p, m)| m.map(|_| flist::read_xattrs(p, opts)))
            .collect()
    } else {
        vec![None; entries.len()]
    };
    (metas, xattrs)
}

fn current_umask() -> u32 {
    // SAFETY: umask has no memory effects; we restore the value right away.
    unsafe {
        let m = libc::umask(0o022);
        libc::umask(m);
        m as u32
    }
}

fn build_stats(entries: &[Entry], plan: &Plan, flist_time: f64, start: Instant, opts: &Options) -> Stats {
    let mut s = Stats {
        flist_time,
        ..Default::default()
    };
    for (e, it) in entries.iter().zip(&plan.items) {
        if e.implied && !opts.implied_dirs {
            continue;
        }
        s.files.add(e.meta.kind);
        if matches!(e.meta.kind, Kind::File | Kind::Symlink) {
            s.total_size += e.meta.size;
        }
        if it.flags.is_new {
            s.created.add(e.meta.kind);
        }
        if it.action == Action::Transfer {
            s.transferred_files += 1;
            s.transferred_size += e.meta.size;
        }
    }
    s.literal = if opts.dry_run { 0 } else { s.transferred_size };
    // A model of the protocol bytes rsync would count for the same work.
    s.bytes_sent = s.literal + 40 * entries.len() as u64 + 60;
    s.bytes_received = 20 + 8 * s.transferred_files;
    s.elapsed = start.elapsed().as_secs_f64().max(0.001);
    s
}

/// rsync's internal `human_readable` level: 0 with `--no-h`, else 1 + the `-h` count.
fn human_level(opts: &Options) -> u8 {
    if opts.plain_numbers {
        0
    } else {
        opts.human_readable.saturating_add(1)
    }
}
