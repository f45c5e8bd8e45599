//! One local transfer from start to finish: operands → walk (plan, print,
//! apply as the scan streams in) → finish → stats.

mod delete;
mod dest;
mod walk;

use crate::exit;
use crate::flist::{self, Node, Scanner};
use crate::options::Options;
use crate::plan;
use crate::report::{self, Stats};
use dest::DestMode;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// Entries listed ahead of the walk at most (bounds memory; the scan tasks
/// stay this far ahead of the sequential planner). Measured on the linux tree:
/// 8k costs ~25% on a no-op rescan, 32k gains nothing over 16k but memory.
pub(crate) const PREFETCH_BUDGET: usize = 16 * 1024;

/// Print a destination error the way rsync's receiver does and give back its
/// exit code.
fn fail_receiver(msg: &str, code: i32) -> i32 {
    report::message(msg);
    report::exit_message(code, "Receiver");
    code
}

/// A usage error found after parsing (conflicting options, bad values).
fn usage(msg: &str) -> i32 {
    report::message(msg);
    report::exit_message(exit::SYNTAX, "client");
    exit::SYNTAX
}

/// rsync's option conflicts that only show once values are known.
fn conflicts(opts: &Options) -> Option<String> {
    let writes_in_place = if opts.append != crate::options::Append::No {
        Some("--append")
    } else if opts.inplace {
        Some("--inplace")
    } else {
        None
    };
    if let Some(w) = writes_in_place {
        if opts.delay_updates {
            return Some(format!("{w} cannot be used with --delay-updates"));
        }
        if opts.partial_dir.is_some() {
            return Some(format!("{w} cannot be used with --partial-dir"));
        }
    }
    None
}

/// The format used for per-item stdout lines, if any (`-i`, `-v`, `--out-format`).
fn stdout_format(opts: &Options) -> Option<String> {
    if let Some(f) = &opts.out_format {
        return Some(f.clone());
    }
    if opts.itemize > 0 {
        return Some("%i %n%L".into());
    }
    if opts.name_level() > 0 {
        return Some("%n%L".into());
    }
    None
}

/// The receiving side of a remote transfer: where the listings and the file
/// data come from, and where stdout lines go.
///
/// Why: the receiver of a push (the server) or a pull (the client) runs the
/// same walk, planner, applier and deleter as a local transfer; only the
/// sources of listings and data and the output differ.
pub(crate) struct RemoteRecv {
    /// The sender's file list, as it streams in.
    pub feed: std::sync::Arc<dyn flist::Feed>,
    /// Makes the fetcher of the sender's file data (requested as files are
    /// planned), given the applier's writer for received files.
    pub fetch: MakeFetch,
    /// Where stdout lines go (a server sends them to the client), shared
    /// with the fetcher's data thread for `--progress`.
    pub screen: std::sync::Arc<report::Screen>,
    /// A push: transfers are itemized as sent (`<`), as rsync's client shows them.
    pub push: bool,
}

/// Builds a [`crate::apply::Fetch`] around the applier's [`crate::apply::Receive`].
pub(crate) type MakeFetch =
    Box<dyn FnOnce(crate::apply::Receive) -> Box<dyn crate::apply::Fetch> + Send>;

/// Run one local transfer; returns rsync's exit code.
pub fn run(opts: Options) -> i32 {
    match transfer(opts, None) {
        Ok((code, _)) | Err(code) => code,
    }
}

/// Run the receiving side of a remote transfer: plan, apply and delete as
/// `r`'s listings arrive. Returns the exit code and the receiver's counters
/// (the caller adds the byte counts and prints the summary); `Err` when the
/// run stopped early with an error already reported.
pub(crate) fn receive(opts: Options, r: RemoteRecv) -> Result<(i32, Stats), i32> {
    transfer(opts, Some(r))
}

fn transfer(opts: Options, remote: Option<RemoteRecv>) -> Result<(i32, Stats), i32> {
    let start = Instant::now();
    if let Err(v) = plan::chmod::parse_all(&opts.chmod) {
        return Err(usage(&format!("Invalid argument passed to --chmod ({v})")));
    }
    if let Some(msg) = conflicts(&opts) {
        return Err(usage(&msg));
    }
    let filters = build_filters(&opts)?;
    let mut opts = opts;
    // (A remote receiver's list is the sender's to read.)
    if let (Some(ff), None) = (opts.files_from.clone(), &remote) {
        match files_from(&opts, &ff) {
            Ok(srcs) => opts.sources = srcs,
            Err(c) => return Err(c),
        }
    }
    if remote.is_none() && (opts.dest.is_none() || opts.list_only) {
        return Err(list_only(opts, filters));
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
    let dest_arg = opts.dest.clone().unwrap_or_default();
    let probe = probe_root(&opts);
    // -H and progress list the whole tree before the walk (see walk.rs).
    let whole_list = opts.hard_links || ((opts.progress || opts.progress2) && !opts.quiet);
    let budget = if whole_list {
        usize::MAX
    } else {
        PREFETCH_BUDGET
    };
    let (mf_use, mf_place) = if remote.is_some() {
        Default::default()
    } else {
        manifest_use(&opts, probe.as_deref())
    };
    let mf_old = mf_use.old.clone();
    let mf_rec = mf_use.rec.clone();
    let mut scanner = Scanner::new(&opts, probe, budget, filters.clone(), mf_use);
    let (fetch, screen, push, feed) = match remote {
        Some(r) => {
            scanner = scanner.with_feed(r.feed.clone());
            (Some(r.fetch), Some(r.screen), r.push, Some(r.feed))
        }
        None => (None, None, false, None),
    };
    let is_remote = fetch.is_some();
    let mut top = scanner.operands();
    if feed.as_ref().is_some_and(|f| f.failed()) {
        // No usable list: touch nothing (the failure is reported already).
        return Err(exit::STREAM_IO);
    }
    let mut code = 0;
    for e in &top.errors {
        e.print();
        code = merge_code(code, e.code);
    }
    let (single, single_dir) = single_entry(&scanner, &mut top);
    let mode = dest::dest_mode(&opts, &dest_arg, single, single_dir)?;
    let fmt = if opts.quiet {
        None
    } else {
        stdout_format(&opts)
    };
    let mut printer = report::Printer::new(fmt.clone(), &opts, human);
    if let Some(s) = screen {
        printer = printer.with_screen(s, push);
    }
    let mut header = None;
    // A remote transfer's header is the client's (see remote::client).
    if (opts.verbose > 0 || opts.progress) && !opts.quiet && !is_remote {
        if opts.inc_recurse() {
            printer.raw("sending incremental file list");
        } else if opts.counts_list() {
            // The count's line follows once the list is complete (walk).
            printer.text("building file list ... \n 0 files...\r");
        } else if opts.debug_level("FILTER") == 0 || filters.is_none() {
            printer.raw("building file list ... done");
        } else {
            // Filter debugging lines come while the list is built.
            header = Some("building file list ... done");
        }
    }
    let mut created_root = false;
    let mut after_count = Vec::new();
    if let DestMode::Dir(d) = &mode {
        let mut buf = Vec::new();
        let announce = fmt.is_some() && dest::announces_created(&opts);
        let r = dest::ensure_dest_dir(&opts, d, &dest_arg, announce, &mut buf);
        if !buf.is_empty() {
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches('\n')
                .to_string();
            if opts.counts_list() {
                // rsync makes the directory once the list is counted.
                after_count.push(line);
            } else {
                printer.raw(&line);
            }
        }
        match r {
            Ok(created) => created_root = created,
            Err(c) => return Err(c),
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
            printer.finish();
            report::message_bare(&format!("The temp-dir does not exist: {given}"));
            report::exit_message(exit::SYNTAX, "Receiver");
            return Err(exit::SYNTAX);
        }
    }
    let root = mode.root();
    if let Some(dir) = &opts.backup_dir {
        if let Err(c) = check_backup_dir(&opts, &root, dir, &mut printer) {
            printer.finish();
            return Err(c);
        }
    }
    let basis = basis_dirs(&opts, &root);
    if opts.verbose > 1 && !opts.quiet && !is_remote {
        printer.raw(if opts.whole_file == Some(false) {
            "delta-transmission enabled"
        } else {
            "delta-transmission disabled for local transfer or --whole-file"
        });
    }
    let flist_time = start.elapsed().as_secs_f64();
    let chown = resolve_chown(&opts);
    let dest_root = match &mode {
        DestMode::Dir(d) => Some(d.clone()),
        DestMode::File(_) => None,
    };
    let w = walk::Walk::new(
        &opts,
        scanner,
        mode,
        printer,
        temp_dir,
        chown,
        created_root,
        current_umask(),
        basis,
    );
    let w = match header {
        Some(h) => w.with_header(h),
        None => w,
    }
    .after_count(after_count);
    let w = match fetch {
        Some(f) => w.with_fetch(f),
        None => w,
    };
    let mut w = match &dest_root {
        Some(d) => w.with_delete(filters.as_ref(), d),
        None => w,
    };
    w.run(top);
    let track = w.take_track();
    let (stats_core, outcome, walk_code) = w.finish();
    code = merge_code(code, walk_code);
    code = merge_code(code, outcome.code);
    // The manifest is written after a run that ended with exit 0 (and, with
    // deletions after the transfer, deleted nothing: they are not traced to
    // their directories), without the directories this run changed.
    let deferred = matches!(
        opts.delete,
        crate::options::Delete::After | crate::options::Delete::Delay
    );
    if let (Some(rec), Some(place)) = (&mf_rec, &mf_place) {
        if code == 0 && !(deferred && stats_core.deleted.total() > 0) {
            if let Some(p) = rec.payload(mf_old.as_deref(), &track.dirty, &track.complete) {
                crate::manifest::save(place, &p);
            }
        }
    }
    let mut stats = Stats {
        flist_time,
        ..stats_core
    };
    if is_remote {
        // What came over the connection: an appended file's kept prefix is
        // neither literal nor matched data (rsync's sender skips it).
        stats.matched = if opts.dry_run { 0 } else { outcome.matched };
        stats.literal = if opts.dry_run {
            0
        } else {
            outcome.fetched.saturating_sub(stats.matched)
        };
        return Ok((code, stats));
    }
    // --no-W: what delta transfers took from their basis files is matched
    // data, the rest of the transferred files literal.
    stats.matched = if opts.dry_run { 0 } else { outcome.matched };
    stats.literal = if opts.dry_run {
        0
    } else {
        stats.transferred_size.saturating_sub(stats.matched)
    };
    // A model of the protocol bytes rsync would count for the same work.
    stats.bytes_sent = stats.literal + 40 * stats.files.total() + 60;
    stats.bytes_received = 20 + 8 * stats.transferred_files;
    stats.elapsed = start.elapsed().as_secs_f64().max(0.001);
    let mut out = std::io::stdout().lock();
    if opts.verbose > 1 && !opts.quiet {
        let _ = writeln!(
            out,
            "total: matches=0  hash_hits=0  false_alarms=0 data={}",
            stats.literal
        );
    }
    if opts.stats_level() > 1 && !opts.quiet {
        let _ = writeln!(out);
        for l in report::stats_lines(&stats, human) {
            let _ = writeln!(out, "{l}");
        }
    }
    if opts.stats_level() > 0 && !opts.quiet {
        let [a, mut b] = report::summary_lines(&stats, human);
        if opts.dry_run {
            b.push_str(" (DRY RUN)");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{a}");
        let _ = writeln!(out, "{b}");
    }
    let _ = out.flush();
    Ok((closing(code), stats))
}

/// rsync's receiver checks `--backup-dir` before the transfer: it must be a
/// directory if it exists (exit 1 otherwise, or 11 when it cannot be
/// looked at); `--info=backup` (or `-vv`) says whether it is new.
fn check_backup_dir(
    opts: &Options,
    root: &Path,
    dir: &OsStr,
    printer: &mut report::Printer,
) -> Result<(), i32> {
    use std::os::unix::ffi::OsStrExt;
    let mut shown = dir.as_bytes();
    if shown.len() > 1 && shown.ends_with(b"/") {
        shown = &shown[..shown.len() - 1];
    }
    let shown = report::escape_bytes(shown, opts.eight_bit_output);
    let path = root.join(dir);
    let new = match std::fs::metadata(&path) {
        Ok(m) if m.is_dir() => false,
        Ok(_) => {
            printer.finish();
            report::message_bare(&format!("The backup-dir is not a directory: {shown}"));
            report::exit_message(exit::SYNTAX, "Receiver");
            return Err(exit::SYNTAX);
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => {
            printer.finish();
            let text = crate::flist::errno_text(&e);
            let text = text.rsplit_once(" (").map_or(text.as_str(), |(t, _)| t);
            report::message_bare(&format!("Failed to stat {shown}: {text}"));
            report::exit_message(exit::FILE_IO, "Receiver");
            return Err(exit::FILE_IO);
        }
    };
    if crate::apply::backup::backup_info(opts) {
        let prefix = if new { "(new) " } else { "" };
        printer.raw(&format!("{prefix}backup_dir is {shown}"));
    }
    Ok(())
}

/// The reference directories resolved against the destination directory,
/// with rsync's warnings for those that do not exist or are no directories
/// (the transfer goes on without them). When a dry run could not create the
/// destination, a leading `../` is resolved against the path, as rsync does.
fn basis_dirs(opts: &Options, root: &Path) -> Vec<PathBuf> {
    use std::os::unix::ffi::OsStrExt;
    let Some(alt) = opts.alt_dest else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for b in &opts.basis_dirs {
        let mut bytes = b.as_bytes();
        if bytes.len() > 1 && bytes.ends_with(b"/") {
            bytes = &bytes[..bytes.len() - 1];
        }
        let rel = Path::new(OsStr::from_bytes(bytes));
        let path = if rel.is_absolute() {
            rel.to_path_buf()
        } else if !root.exists() && bytes.starts_with(b"../") {
            root.parent()
                .unwrap_or(Path::new(""))
                .join(OsStr::from_bytes(&bytes[3..]))
        } else {
            root.join(rel)
        };
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => report::message_bare(&format!(
                "{} arg is not a dir: {}",
                alt.option_name(),
                report::abs_display(&path)
            )),
            Err(_) => report::message_bare(&format!(
                "{} arg does not exist: {}",
                alt.option_name(),
                report::abs_display(&path)
            )),
        }
        out.push(path);
    }
    out
}

/// Whether the whole list is one entry (rsync then writes it to the
/// destination name itself) and whether that entry is a directory. A lone
/// directory operand counts as one only when it has nothing inside to send.
fn single_entry(scanner: &std::sync::Arc<Scanner>, top: &mut flist::Top) -> (bool, bool) {
    if let Some(d) = &top.dot {
        return (top.nodes.is_empty(), d.meta.kind == flist::Kind::Dir);
    }
    if top.nodes.len() != 1 {
        return (false, false);
    }
    let node = &mut top.nodes[0];
    let is_dir = node.entry.meta.kind == flist::Kind::Dir;
    if is_dir {
        let children = std::mem::replace(&mut node.children, flist::Children::None);
        let listing = scanner.take(children);
        let empty = listing.nodes.is_empty() && listing.errors.is_empty();
        if !listing.nodes.is_empty() || !listing.errors.is_empty() {
            // Keep what was listed; its errors are reported by the walk.
            node.children = flist::Children::Listed(Box::new(listing));
        }
        return (empty, true);
    }
    (true, false)
}

/// `--chown=USER:GROUP`: the ids every entry gets on the receiver. Names are
/// resolved there (numbers are taken as ids); an unknown name is reported and
/// ignored, as rsync's usermap does.
fn resolve_chown(opts: &Options) -> (Option<u32>, Option<u32>) {
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
    (uid, gid)
}

/// The destination directory the scan may stat entries in as it goes: only
/// when the destination already is a directory and entries land inside it.
/// Whether this run reads and writes a rescan manifest, and where: a single
/// `SRC/` (contents) operand copied recursively into an existing local
/// directory. Anything else scans fully, as without a manifest.
fn manifest_use(
    opts: &Options,
    probe: Option<&Path>,
) -> (flist::ManifestUse, Option<crate::manifest::Place>) {
    use std::os::unix::ffi::OsStrExt;
    let none = (flist::ManifestUse::default(), None);
    let Some(dest) = probe else {
        return none;
    };
    if opts.no_manifest
        || opts.list_only
        || !opts.recursive
        || opts.relative
        || opts.files_from.is_some()
        || opts.sources.len() != 1
    {
        return none;
    }
    let src = &opts.sources[0];
    let b = src.as_bytes();
    let contents = b.ends_with(b"/") || b == b"." || b.ends_with(b"/.");
    if !contents || !std::fs::metadata(src).is_ok_and(|m| m.is_dir()) {
        return none;
    }
    let Some(place) = crate::manifest::place(opts, Path::new(src), dest) else {
        return none;
    };
    // --trust-mtime stands the recorded metadata in for what the listing
    // would read; options that need more than it holds (xattrs, ACLs,
    // content, atimes, link counts, followed links) keep the safe path.
    let trust = opts.trust_mtime
        && !(opts.xattrs
            || opts.acls
            || opts.checksum
            || opts.atimes
            || opts.hard_links
            || opts.copy_links
            || opts.copy_dirlinks
            || opts.copy_unsafe_links
            || opts.keep_dirlinks
            || opts.alt_dest.is_some()
            || opts.remove_source_files);
    // Up-to-date files need no node when nothing is printed for them and
    // no pass over the whole list needs them.
    let count_only = trust
        && opts.itemize <= 1
        && opts.name_level() <= 1
        && !opts.progress
        && !opts.progress2
        && !opts.prune_empty_dirs
        && opts.delete == crate::options::Delete::Off
        && !opts.force;
    // A counting run reads no plain run: only the sum over the rest is
    // checked (see `manifest::open_file`).
    let old = crate::manifest::load(&place, count_only).map(std::sync::Arc::new);
    let rec = (!opts.dry_run).then(|| std::sync::Arc::new(crate::manifest::Recorder::default()));
    (
        flist::ManifestUse {
            old,
            rec,
            trust,
            count_only,
        },
        Some(place),
    )
}

fn probe_root(opts: &Options) -> Option<PathBuf> {
    let dest = PathBuf::from(opts.dest.as_ref()?);
    if opts.relative && !opts.implied_dirs {
        return None;
    }
    std::fs::metadata(&dest)
        .ok()
        .filter(|m| m.is_dir())
        .map(|_| dest)
}

/// Print rsync's closing error line for a non-zero exit code and return it.
fn closing(code: i32) -> i32 {
    if code != 0 {
        let role = if code == exit::FILE_IO {
            "receiver"
        } else {
            "sender"
        };
        report::exit_message(code, role);
    }
    code
}

/// Combine exit codes the way rsync reports them: file I/O (11) wins, then
/// 23, then 24, then 25 (the `--max-delete` limit).
pub(crate) fn merge_code(a: i32, b: i32) -> i32 {
    let rank = |c: i32| match c {
        0 => 0,
        exit::DEL_LIMIT => 1,
        exit::VANISHED => 2,
        exit::PARTIAL => 3,
        _ => 4,
    };
    if rank(b) > rank(a) { b } else { a }
}

/// rsync's message for a `--files-from` list that cannot be read.
pub(crate) fn files_from_error(file: &OsStr, e: &std::io::Error) -> String {
    let text = flist::errno_text(e);
    let text = text.rsplit_once(" (").map_or(text.as_str(), |(t, _)| t);
    format!(
        "failed to open files-from file {}: {text}",
        file.to_string_lossy()
    )
}

/// `--files-from`: the names in the file, each made relative to the source
/// directory (leading `/` dropped, `..` resolved so nothing climbs above it)
/// and turned into a `SRC/./NAME` operand for `-R`.
pub(crate) fn files_from(opts: &Options, file: &OsStr) -> Result<Vec<std::ffi::OsString>, i32> {
    match read_files_from(file) {
        Ok(d) => Ok(files_from_data(opts, &d, true)),
        Err(e) => Err(usage(&files_from_error(file, &e))),
    }
}

/// The bytes of the `--files-from` list `file` (`-`: stdin).
pub(crate) fn read_files_from(file: &OsStr) -> std::io::Result<Vec<u8>> {
    if file == "-" {
        let mut v = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut v).map(|_| v)
    } else {
        std::fs::read(file)
    }
}

/// A `--files-from` list that must be readable before the transfer starts,
/// as rsync opens it: rsync's message and closing line for `role`, and exit
/// 1, when it cannot be opened (`-`, stdin, is not checked).
pub(crate) fn check_files_from(file: &OsStr, role: &str) -> Result<(), i32> {
    if file == "-" {
        return Ok(());
    }
    std::fs::File::open(file).map(drop).map_err(|e| {
        report::message(&files_from_error(file, &e));
        report::exit_message(exit::SYNTAX, role);
        exit::SYNTAX
    })
}

/// The operands of a `--files-from` list's bytes (see [`files_from`]): also
/// for a list that came over the connection, whose `#`/`;` lines are names
/// (`comments` false), as rsync's sender reads a list it did not open.
pub(crate) fn files_from_data(
    opts: &Options,
    data: &[u8],
    comments: bool,
) -> Vec<std::ffi::OsString> {
    use std::os::unix::ffi::{OsStrExt, OsStringExt};
    let Some(base) = opts.sources.first() else {
        return Vec::new();
    };
    let base = base.as_bytes();
    let base = match base.iter().rposition(|&c| c != b'/') {
        Some(i) => &base[..=i],
        None => &base[..base.len().min(1)],
    };
    let mut out = Vec::new();
    let sep = |c: &u8| {
        if opts.from0 {
            *c == 0
        } else {
            *c == b'\n' || *c == b'\r'
        }
    };
    for line in data.split(sep) {
        if line.is_empty() || (comments && (line[0] == b'#' || line[0] == b';')) {
            continue;
        }
        let trailing = line.ends_with(b"/");
        // A `/./` in the line marks where the path kept at the destination
        // starts, as in a -R operand.
        let (prefix, rel) = match line.windows(3).rposition(|w| w == b"/./") {
            Some(i) => (&line[..i], &line[i + 3..]),
            None => (&b""[..], line),
        };
        let clean = |p: &[u8]| {
            let mut parts: Vec<&[u8]> = Vec::new();
            for c in p.split(|&c| c == b'/') {
                match c {
                    b"" | b"." => {}
                    b".." => {
                        parts.pop();
                    }
                    _ => parts.push(c),
                }
            }
            parts.join(&b'/')
        };
        let (prefix, rel) = (clean(prefix), clean(rel));
        let mut v = base.to_vec();
        if !prefix.is_empty() {
            v.push(b'/');
            v.extend_from_slice(&prefix);
        }
        v.extend_from_slice(b"/./");
        v.extend_from_slice(&rel);
        if trailing && !rel.is_empty() {
            v.push(b'/');
        }
        out.push(std::ffi::OsString::from_vec(v));
    }
    out
}

/// Parse the filter rules (before anything is touched, as rsync parses them
/// with the options); a bad rule or unreadable rule file ends the run.
pub(crate) fn build_filters(
    opts: &Options,
) -> Result<Option<std::sync::Arc<crate::filter::Filters>>, i32> {
    let mut args = opts.filters.clone();
    if opts.backup
        && opts.backup_dir.is_none()
        && opts.delete != crate::options::Delete::Off
        && !opts.delete_excluded
    {
        // rsync protects earlier backups from --delete with `P *SUFFIX`.
        let mut rule = std::ffi::OsString::from("P *");
        rule.push(opts.backup_suffix());
        args.push(crate::filter::FilterArg::Rule(rule));
    }
    if let Some(pd) = opts.partial_dir.as_deref().filter(|d| !d.starts_with('/')) {
        // rsync adds `-p DIR/` after the other rules for a relative
        // --partial-dir: partial files are neither sent nor deleted.
        let dir = pd.trim_end_matches('/');
        args.push(crate::filter::FilterArg::Rule(format!("-p {dir}/").into()));
    }
    if args.is_empty() && !opts.cvs_exclude && !opts.gitignore {
        return Ok(None);
    }
    let settings = crate::filter::Settings {
        delete_excluded: opts.delete_excluded,
        from0: opts.from0,
        cvs_exclude: opts.cvs_exclude,
        gitignore: opts.gitignore,
    };
    match crate::filter::build(&args, settings) {
        Ok(f) => Ok(Some(f)),
        Err(e) => {
            if e.prefixed {
                report::message(&e.message);
            } else {
                report::message_bare(&e.message);
            }
            report::exit_message(e.code, "client");
            Err(e.code)
        }
    }
}

fn list_only(opts: Options, filters: Option<std::sync::Arc<crate::filter::Filters>>) -> i32 {
    let mut opts = opts;
    // rsync lists one level of a directory operand when not recursing.
    if !opts.recursive {
        opts.dirs = true;
    }
    let scanner = Scanner::new(
        &opts,
        None,
        PREFETCH_BUDGET,
        filters.clone(),
        Default::default(),
    );
    let mut out = std::io::stdout().lock();
    let (code, _) = list_tree(&opts, &scanner, filters.as_ref(), &mut out);
    closing(code)
}

/// `--list-only` (and a pull without destination) on the receiving side of
/// a remote transfer: the sender's list printed as rsync's `ls -l`-like
/// lines to `out` (a push's server sends them to the client); the exit code
/// of the listing errors and the counters of the summary.
pub(crate) fn list_remote(
    opts: &Options,
    feed: std::sync::Arc<dyn flist::Feed>,
    out: &mut dyn Write,
) -> (i32, Stats) {
    let start = Instant::now();
    let scanner =
        Scanner::new(opts, None, PREFETCH_BUDGET, None, Default::default()).with_feed(feed);
    let (code, (files, total_size)) = list_tree(opts, &scanner, None, out);
    let stats = Stats {
        files,
        total_size,
        flist_time: start.elapsed().as_secs_f64(),
        ..Stats::default()
    };
    (code, stats)
}

/// Print every entry of the list in rsync's `--list-only` order; the exit
/// code of the listing errors and the kinds and total size listed.
fn list_tree(
    opts: &Options,
    scanner: &std::sync::Arc<Scanner>,
    filters: Option<&std::sync::Arc<crate::filter::Filters>>,
    out: &mut dyn Write,
) -> (i32, (report::TypeCounts, u64)) {
    let human = human_level(opts);
    let mut top = scanner.operands();
    let mut code = 0;
    for e in &top.errors {
        e.print();
        code = merge_code(code, e.code);
    }
    for n in std::mem::take(&mut top.notes) {
        let _ = writeln!(out, "{n}");
    }
    if opts.prune_empty_dirs {
        let mut errors = Vec::new();
        let mut notes = Vec::new();
        scanner.complete(&mut top.nodes, &mut errors, &mut notes);
        for n in notes {
            let _ = writeln!(out, "{n}");
        }
        for e in &errors {
            e.print();
            code = merge_code(code, e.code);
        }
        let recv = filters.filter(|f| !f.is_empty()).map(|f| {
            let cwd = std::env::current_dir().unwrap_or_default();
            f.root(crate::filter::Side::Receiver, &cwd)
        });
        walk::prune(&mut top.nodes, recv.as_ref());
    }
    let mut counted = (report::TypeCounts::default(), 0u64);
    let mut line = |e: &flist::Entry, out: &mut dyn Write| {
        counted.0.add(e.meta.kind);
        if matches!(e.meta.kind, flist::Kind::File | flist::Kind::Symlink) {
            counted.1 += e.meta.size;
        }
        let _ = writeln!(
            out,
            "{}",
            report::list_line(e, human, opts.eight_bit_output, opts.links)
        );
    };
    if let Some(d) = &top.dot {
        line(d, out);
    }
    // rsync's order: a directory's line, then its files, then each subdirectory.
    fn walk(
        scanner: &std::sync::Arc<Scanner>,
        nodes: Vec<Node>,
        out: &mut dyn Write,
        line: &mut dyn FnMut(&flist::Entry, &mut dyn Write),
        code: &mut i32,
    ) {
        let (dirs, files): (Vec<Node>, Vec<Node>) = nodes
            .into_iter()
            .partition(|n| n.entry.meta.kind == flist::Kind::Dir);
        for n in files {
            line(&n.entry, out);
        }
        for n in dirs {
            line(&n.entry, out);
            let l = scanner.take(n.children);
            for note in &l.notes {
                let _ = writeln!(out, "{note}");
            }
            for e in &l.errors {
                e.print();
                *code = merge_code(*code, e.code);
            }
            walk(scanner, l.nodes, out, line, code);
        }
    }
    walk(scanner, top.nodes, out, &mut line, &mut code);
    let _ = out.flush();
    (code, counted)
}

fn current_umask() -> u32 {
    // SAFETY: umask has no memory effects; we restore the value right away.
    unsafe {
        let m = libc::umask(0o022);
        libc::umask(m);
        m as u32
    }
}

/// rsync's internal `human_readable` level: 0 with `--no-h`, else 1 + the `-h` count.
pub(crate) fn human_level(opts: &Options) -> u8 {
    if opts.plain_numbers {
        0
    } else {
        opts.human_readable.saturating_add(1)
    }
}
