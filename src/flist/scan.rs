//! Source scanning: operands first, then one directory listing at a time.
//!
//! The tree is discovered lazily: a directory node's children are a
//! [`Pending`] listing that rayon tasks fill ahead of the consumer, in the
//! order the walk will need them (a queue: children of what the walk just
//! took go in front), within a budget of listed-but-unconsumed entries and a
//! limit on listings running at once. That keeps the scan parallel and
//! ahead of the walk while memory stays bounded (rsync's incremental recursion
//! has the same aim). Each listing is sorted into rsync's order: non-directories
//! by name bytes, then directories as if their names ended in `/`.

use super::checksum::{self, Checked, Seen};
use super::{DestProbe, Entry, Kind, Meta, Paths, PathsBuf, Span};
use crate::filter::{DirFilters, Filters, Side};
use crate::manifest::format::{EntryRec, Hashed};
use crate::options::Options;
use crate::sys::time::Timestamp;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// A problem met while scanning; the scan goes on (rsync's exit 23 or 24 later).
#[derive(Debug, Clone)]
pub struct ScanError {
    /// The rsync-shaped message, without the `rsync: ` prefix.
    pub message: String,
    /// Exit code class this error maps to (23 partial, 24 vanished).
    pub code: i32,
    /// Printed without the program-name prefix (rsync prints some that way).
    pub bare: bool,
}

impl ScanError {
    /// Print the message to stderr in rsync's shape.
    pub fn print(&self) {
        if self.bare {
            crate::report::message_bare(&self.message);
        } else {
            crate::report::message(&self.message);
        }
    }

    /// rsync's `[sender] WHAT"PATH"AFTER: Error text (errno)` (exit 23).
    fn sender(what: &str, path: &Path, after: &str, e: &std::io::Error) -> Self {
        ScanError::new(
            format!(
                "[sender] {what}\"{}\"{after}: {}",
                crate::report::abs_display(path),
                errno_text(e)
            ),
            crate::exit::PARTIAL,
        )
    }

    fn new(message: String, code: i32) -> Self {
        ScanError {
            message,
            code,
            bare: false,
        }
    }
}

/// One entry and (for directories) its contents.
pub struct Node {
    /// The entry.
    pub entry: Entry,
    /// Its children, once listed.
    pub children: Children,
}

/// The children of a node.
pub enum Children {
    /// Not a directory, or one that is not recursed into.
    None,
    /// Already known (implied `-R` parents, merged roots, full prefetch).
    Ready(Vec<Node>),
    /// A listing that a scan task fills (or the consumer, if it gets there first).
    Pending(Arc<Pending>),
    /// A listing already taken (with its errors still to report).
    Listed(Box<Listing>),
    /// A directory (by list name) whose listing arrives from a [`Feed`]
    /// (the sender is on the other end of a connection).
    Feed(PathBuf),
}

/// Where listings come from when the sender is remote: the file-list
/// batches of the protocol, consumed in the walk's order.
///
/// Why: the walk takes listings depth first, in the order the sender sends
/// them, so the local engine (plan, print, apply, delete) runs unchanged on
/// a list that streams in over the wire.
pub trait Feed: Send + Sync {
    /// The operands' level (the `.` root and the top-level nodes).
    fn top(&self) -> Top;
    /// The listing of directory `dir` (a list name), the next one sent.
    fn listing(&self, dir: &Path) -> Listing;
    /// The list could not be received (the connection failed, or the peer
    /// sent something invalid): nothing must be done with what it gave.
    fn failed(&self) -> bool;
}

/// The result of listing one directory.
#[derive(Default)]
pub struct Listing {
    /// The children, in rsync's order.
    pub nodes: Vec<Node>,
    /// Errors met while listing, reported when the listing is consumed so that
    /// stderr keeps list order whatever the scan threads did.
    pub errors: Vec<ScanError>,
    /// `--debug=filter` lines (`[sender] hiding file X because of pattern P`),
    /// printed to stdout when the listing is consumed.
    pub notes: Vec<String>,
    /// The rescan manifest vouches that the destination directory holds
    /// exactly these names (so `--delete` need not read it).
    pub dest_exact: bool,
    /// Up-to-date non-directories a `--trust-mtime` listing counted instead
    /// of listing (see [`ManifestUse::count_only`]): kinds and total size,
    /// for `--stats`.
    pub counted: (crate::report::TypeCounts, u64),
}

/// What to list.
struct Request {
    /// The directory's list name and source path: the entry's own
    /// [`Paths`] (a reference to its listing's buffer, not two copies).
    paths: Paths,
    is_dot: bool,
    root_dev: u64,
    /// The parent listing's descriptors to open this one relative to (taken
    /// when the listing starts, so they close once every sibling started).
    parent: Mutex<Option<Arc<DirFds>>>,
    /// Filter rules in force in the parent (the directory's own per-directory
    /// merge files are read when it is listed), with its absolute path.
    filt: Option<(DirFilters, PathBuf)>,
    /// The directory's own source metadata and what its parent's listing
    /// found at the destination (the manifest's `--trust-mtime` check).
    src_meta: Meta,
    dest_meta: Option<Meta>,
    /// The same two as the manifest records them (with ctimes), when the
    /// parent's listing had them: saves an `fstat` of each side.
    src_state: Option<crate::manifest::format::DirState>,
    dest_state: Option<crate::manifest::format::DirState>,
}

/// A listed directory's descriptors (source, and destination if it exists),
/// kept open for its subdirectories' listings: opening one name below them
/// instead of walking each whole path again saves a quarter of a rescan's
/// name lookups.
struct DirFds {
    src: std::os::fd::OwnedFd,
    dest: Option<std::os::fd::OwnedFd>,
}

/// How many [`DirFds`] may be open at once (two descriptors each, well under
/// the usual limit of 1024); listings beyond it open by path. The linux tree
/// needs ~170 at the prefetch budget.
const SHARED_DIRS_MAX: usize = 256;

/// [`DirFds`] open now.
static SHARED_DIRS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl DirFds {
    /// Keep `src` and `dest` open for the subdirectories, unless
    /// [`SHARED_DIRS_MAX`] are open already (then they close now).
    fn share(src: std::os::fd::OwnedFd, dest: Option<std::os::fd::OwnedFd>) -> Option<Arc<DirFds>> {
        if SHARED_DIRS.fetch_add(1, Ordering::Relaxed) >= SHARED_DIRS_MAX {
            SHARED_DIRS.fetch_sub(1, Ordering::Relaxed);
            return None;
        }
        Some(Arc::new(DirFds { src, dest }))
    }
}

impl Drop for DirFds {
    fn drop(&mut self) {
        SHARED_DIRS.fetch_sub(1, Ordering::Relaxed);
    }
}

enum State {
    Idle,
    Running,
    Done(Listing),
    Taken,
}

/// A directory listing that may be running on another thread.
pub struct Pending {
    req: Request,
    state: Mutex<State>,
    ready: Condvar,
    /// Handed to rayon already (a listing is queued twice: behind when its
    /// parent is listed, in front when the walk takes the parent).
    spawned: std::sync::atomic::AtomicBool,
}

impl Pending {
    /// Mark an idle listing as running on this thread; false when another
    /// thread has started or taken it already.
    fn claim(&self) -> bool {
        let mut st = self.state.lock().unwrap();
        if matches!(*st, State::Idle) {
            *st = State::Running;
            true
        } else {
            false
        }
    }
}

/// The operands, scanned: the `.` root (for `src/` operands) and the top-level
/// nodes under it, in rsync's order.
pub struct Top {
    /// The root entry when an operand names a directory's contents.
    pub dot: Option<Entry>,
    /// Top-level nodes (the root's children, or the operands themselves).
    pub nodes: Vec<Node>,
    /// Errors about the operands themselves.
    pub errors: Vec<ScanError>,
    /// `--debug=filter` lines about the operands and the root's contents.
    pub notes: Vec<String>,
    /// `--delete-missing-args`: list names of operands that do not exist.
    pub missing: Vec<PathBuf>,
    /// [`Listing::dest_exact`] of the `.` root's listing.
    pub dest_exact: bool,
    /// [`Listing::counted`] of the `.` root's listing.
    pub counted: (crate::report::TypeCounts, u64),
}

/// Scans the source: operands synchronously, directories on rayon tasks.
pub struct Scanner {
    opts: Options,
    /// Existing destination directory to probe while scanning (local
    /// transfers), opened once; subdirectories are opened beneath it without
    /// following symlinks (a symlink where the source has a directory is
    /// replaced, so what it points to must not be mistaken for the contents).
    probe: Option<std::os::fd::OwnedFd>,
    /// `--trust-mtime`: the source root (the single `SRC/` operand), opened
    /// once; trusted subdirectories are stat'ed by list name below it, a
    /// lookup of their own components only.
    src_root: Option<std::os::fd::OwnedFd>,
    /// Entries listed but not yet taken by the consumer.
    in_flight: AtomicIsize,
    /// Listings waiting to be started, the ones the walk needs soonest first.
    queue: Mutex<std::collections::VecDeque<Arc<Pending>>>,
    /// Listings running on tasks now, and the most allowed at once.
    running: AtomicIsize,
    max_running: isize,
    /// Prefetch stops starting new listings above this many entries in flight.
    budget: isize,
    /// The sender's filter rules, if any were given.
    filters: Option<Arc<Filters>>,
    /// `--debug=filter`: say which rule hid or showed an entry.
    debug_filter: bool,
    /// `-c`: the listing tasks hash same-sized pairs (see [`Scanner::hash_pairs`]).
    checksum: bool,
    /// The rescan manifest: the last run's records and this run's.
    manifest: ManifestUse,
    /// A remote sender's listings, in place of scanning (see [`Feed`]).
    feed: Option<Arc<dyn Feed>>,
}

/// How a scan uses the rescan manifest (see `crate::manifest`).
#[derive(Default, Clone)]
pub struct ManifestUse {
    /// The last run's manifest, if one was valid.
    pub old: Option<Arc<crate::manifest::Manifest>>,
    /// Where this run's listings are recorded (None: no manifest is written).
    pub rec: Option<Arc<crate::manifest::Recorder>>,
    /// `--trust-mtime` in a run where it can apply.
    pub trust: bool,
    /// With `trust`: the non-directories of a trusted directory are only
    /// counted, not listed (nothing would be printed or done for them:
    /// the last run left them up to date and this one believes they are).
    pub count_only: bool,
}

/// Format an io error as rsync does: `Message (errno)`.
pub(crate) fn errno_text(e: &std::io::Error) -> String {
    let code = e.raw_os_error().unwrap_or(0);
    let msg = e.to_string();
    // std appends " (os error N)"; rsync prints "Message (N)".
    let base = match msg.find(" (os error") {
        Some(i) => &msg[..i],
        None => &msg[..],
    };
    format!("{base} ({code})")
}

impl Scanner {
    /// A scanner for `opts`; `probe` is the destination directory to stat
    /// entries in while listing; `budget` bounds the prefetch (entries).
    pub fn new(
        opts: &Options,
        probe: Option<PathBuf>,
        budget: usize,
        filters: Option<Arc<Filters>>,
        manifest: ManifestUse,
    ) -> Arc<Scanner> {
        Arc::new(Scanner {
            opts: opts.clone(),
            probe: probe.and_then(|p| crate::sys::meta::open_dir(&p).ok()),
            src_root: match &opts.sources[..] {
                [one] if manifest.trust => crate::sys::meta::open_dir(Path::new(one)).ok(),
                _ => None,
            },
            in_flight: AtomicIsize::new(0),
            queue: Mutex::new(std::collections::VecDeque::new()),
            running: AtomicIsize::new(0),
            // Listings are small (a few dozen entries); many may be queued on
            // the pool so that the walk rarely waits for the next one.
            max_running: 32 * rayon::current_num_threads() as isize,
            budget: budget.min(isize::MAX as usize) as isize,
            filters: filters.filter(|f| !f.is_empty()),
            debug_filter: opts.debug_level("FILTER") > 0,
            checksum: checksum_in_scan(opts),
            manifest,
            feed: None,
        })
    }

    /// Take listings from `feed` instead of scanning (a remote sender), before
    /// the scan starts.
    ///
    /// Why: the receiver of a remote transfer runs the same walk as a local
    /// one; only where the listings come from differs.
    pub fn with_feed(mut self: Arc<Self>, feed: Arc<dyn Feed>) -> Arc<Self> {
        Arc::get_mut(&mut self)
            .expect("the feed is set before the scan starts")
            .feed = Some(feed);
        self
    }

    /// Stat the destination of every entry of a listing received from a
    /// remote sender (`dir` is its list name, `""` for the top level), by name
    /// relative to the destination directory opened once.
    ///
    /// Why: otherwise the walk looks each entry up by its whole path, and
    /// those path walks were the largest cost of a remote no-op (every
    /// component of every name resolved again). The directory is opened as a
    /// local scan opens it (no symlinks passed unless `-K`); where that fails
    /// for another reason than the directory not being there, the entries
    /// stay [`DestProbe::Unknown`] and the walk looks them up by path as
    /// before. Names not directly inside `dir` (`-R`'s multi-component top
    /// level) stay unknown too.
    fn probe_fed(&self, dir: &Path, nodes: &mut [Node]) {
        let Some(root) = &self.probe else { return };
        if nodes.is_empty() {
            return;
        }
        let fd = if dir.as_os_str().is_empty() {
            root.try_clone()
        } else {
            crate::sys::meta::open_dir_beneath(root, dir, self.opts.keep_dirlinks)
        };
        let fd = match fd {
            Ok(fd) => Some(fd),
            Err(e) if matches!(e.raw_os_error(), Some(libc::ENOENT | libc::ENOTDIR)) => None,
            Err(_) => return,
        };
        for n in nodes.iter_mut() {
            let e = &mut n.entry;
            let name = e.name();
            if e.dest != DestProbe::Unknown || name.parent() != Some(dir) {
                continue;
            }
            let Some(base) = name.file_name() else {
                continue;
            };
            e.dest = match &fd {
                None => DestProbe::Missing,
                Some(fd) => match crate::sys::meta::lstat_at(fd, base) {
                    Ok(st) => DestProbe::Found(Meta::from_sys(&st)),
                    Err(e) if e.raw_os_error() == Some(libc::ENOENT) => DestProbe::Missing,
                    Err(_) => continue,
                },
            };
        }
    }

    /// `-c`: hash the records of one listing whose source and destination
    /// are regular files of the same size, in parallel, and keep both sums
    /// on the record. `names` holds the records' names; `src`/`dest` are the
    /// listed directories.
    ///
    /// Why here: the listing tasks run ahead of the walk on every core, and
    /// both directories are open, so each file costs one `openat` per side;
    /// rayon spreads the files of one directory (and each large file, see
    /// [`crate::delta::hash::hash_listed`]) over the threads.
    fn hash_pairs(
        &self,
        recs: &mut [Rec],
        names: &[u8],
        src: &std::os::fd::OwnedFd,
        dest: &std::os::fd::OwnedFd,
        cached: &[EntryRec<'_>],
    ) {
        use rayon::prelude::*;
        let mut pairs: Vec<(&mut Rec, Meta)> = recs
            .iter_mut()
            .filter_map(|rec| {
                let DestProbe::Found(d) = rec.dest else {
                    return None;
                };
                let m = &rec.r.meta;
                let pair = m.kind == Kind::File && !rec.r.skip && d.kind == Kind::File;
                (pair && d.size == m.size).then_some((rec, d))
            })
            .collect();
        // Files changed after this moment are too young to record.
        let started = checksum::now_ns();
        let one = |(rec, d): &mut (&mut Rec, Meta)| {
            let nb = &names[rec.off as usize..(rec.off + rec.len) as usize];
            let seen = [
                Seen {
                    meta: &rec.r.meta,
                    ctime: rec.ctimes.0,
                },
                Seen {
                    meta: d,
                    ctime: rec.ctimes.1,
                },
            ];
            // What the last run recorded of this name, and which sides it
            // still answers for.
            let old = cached
                .binary_search_by(|e| e.name.cmp(nb))
                .ok()
                .and_then(|i| Some((cached[i].hash?, &cached[i])));
            let (src_known, dest_known) = match old {
                Some((h, e)) => (
                    checksum::answers(&e.src, h.src_ctime, &seen[0]).then_some(h.sum),
                    e.dest
                        .filter(|od| checksum::answers(od, h.dest_ctime, &seen[1]))
                        .map(|_| h.sum),
                ),
                None => (None, None),
            };
            let len = d.size;
            let cname = || std::ffi::CString::new(nb).ok();
            // The source is a regular file or a symlink followed to one
            // (-L, --copy-unsafe-links): read what it points to.
            let s = || match src_known {
                Some(h) => Some(blake3::Hash::from_bytes(h)),
                None => checksum::sum_at(src, &cname()?, len, true),
            };
            let t = || match dest_known {
                Some(h) => Some(blake3::Hash::from_bytes(h)),
                None => checksum::sum_at(dest, &cname()?, len, false),
            };
            let (s, t) = if len < SUM_JOIN_MIN || src_known.is_some() || dest_known.is_some() {
                (s(), t())
            } else {
                rayon::join(s, t)
            };
            // Equal content on both sides, neither side changed just before
            // it was read: the next run may take it for whichever side
            // still has this stat.
            if let (Some(h), true) = (s, s == t) {
                if checksum::recordable(&seen, started) {
                    rec.hashed = Some(Hashed {
                        sum: *h.as_bytes(),
                        src_ctime: rec.ctimes.0.expect("recordable checked it"),
                        dest_ctime: rec.ctimes.1.expect("recordable checked it"),
                    });
                }
            }
            rec.sums = Some(Box::new(Checked {
                src: s,
                dest: t,
                dest_unread: false,
            }));
        };
        // On the walk's own thread (a listing it runs inline) the pairs are
        // hashed here: rayon would queue them behind the prefetch listings
        // and the walk would wait for all of those first.
        if rayon::current_thread_index().is_some() {
            pairs.par_iter_mut().for_each(one);
        } else {
            pairs.iter_mut().for_each(one);
        }
    }

    /// Scan every operand; directories' contents are left pending.
    pub fn operands(self: &Arc<Self>) -> Top {
        if let Some(f) = &self.feed {
            let mut top = f.top();
            self.probe_fed(Path::new(""), &mut top.nodes);
            return top;
        }
        let opts = &self.opts;
        let mut errors = Vec::new();
        let mut dot: Option<Entry> = None;
        let mut dot_children: Vec<Node> = Vec::new();
        let mut top: Vec<Node> = Vec::new();
        let mut missing = Vec::new();
        let mut notes = Vec::new();
        let mut dest_exact = false;
        let mut counted = Default::default();
        for src in &opts.sources {
            let Some((node, is_dot)) = self.operand(src, &mut errors, &mut missing, &mut notes)
            else {
                continue;
            };
            if is_dot {
                // Contents of a directory: its children join the top level.
                let listing = self.take(node.children);
                dest_exact = listing.dest_exact && opts.sources.len() == 1;
                counted = listing.counted;
                errors.extend(listing.errors);
                notes.extend(listing.notes);
                if dot.is_none() {
                    dot = Some(node.entry);
                }
                merge(&mut dot_children, listing.nodes);
            } else {
                merge(&mut top, vec![node]);
            }
        }
        let mut nodes = dot_children;
        merge(&mut nodes, top);
        sort_nodes(&mut nodes);
        self.enqueue(&nodes, true);
        self.pump();
        Top {
            dot,
            nodes,
            errors,
            notes,
            missing,
            dest_exact,
            counted,
        }
    }

    /// Queue the pending listings under `nodes`: in front when the walk needs
    /// them next (children of what it just took), behind otherwise.
    fn enqueue(&self, nodes: &[Node], front: bool) {
        let pend = nodes.iter().filter_map(|n| match &n.children {
            Children::Pending(c) => Some(Arc::clone(c)),
            _ => None,
        });
        let mut q = self.queue.lock().unwrap();
        if front {
            let v: Vec<_> = pend.collect();
            for c in v.into_iter().rev() {
                q.push_front(c);
            }
        } else {
            q.extend(pend);
        }
    }

    /// Start queued listings while the prefetch budget and the task limit allow.
    fn pump(self: &Arc<Self>) {
        loop {
            if self.running.load(Ordering::Relaxed) >= self.max_running
                || self.in_flight.load(Ordering::Relaxed) >= self.budget
            {
                return;
            }
            let Some(p) = self.queue.lock().unwrap().pop_front() else {
                return;
            };
            if p.spawned.swap(true, Ordering::Relaxed)
                || !matches!(*p.state.lock().unwrap(), State::Idle)
            {
                continue;
            }
            self.running.fetch_add(1, Ordering::Relaxed);
            let me = Arc::clone(self);
            // The listing stays Idle until a worker starts it: while it waits
            // in rayon's queue (behind up to `max_running` others), the walk
            // may need it and then lists it itself instead of sleeping until
            // a worker gets there. Profiles of a `--trust-mtime` no-op showed
            // the walk idle for a third of the run that way, then walking
            // the whole backlog alone at the end. FIFO: `rayon::spawn` from a
            // worker runs that worker's newest job first, the reverse of the
            // queue's order of need.
            rayon::spawn_fifo(move || {
                if p.claim() {
                    me.run(&p);
                } else {
                    me.running.fetch_sub(1, Ordering::Relaxed);
                    me.pump();
                }
            });
        }
    }

    /// Run the next queued listing on this thread, if the budget allows;
    /// false when there was nothing to do.
    fn help(self: &Arc<Self>) -> bool {
        if self.in_flight.load(Ordering::Relaxed) >= self.budget {
            return false;
        }
        loop {
            let Some(p) = self.queue.lock().unwrap().pop_front() else {
                return false;
            };
            if !p.claim() {
                continue;
            }
            self.running.fetch_add(1, Ordering::Relaxed);
            self.run(&p);
            return true;
        }
    }

    fn run(self: &Arc<Self>, p: &Arc<Pending>) {
        let listing = self.list(&p.req);
        self.in_flight
            .fetch_add(listing.nodes.len() as isize, Ordering::Relaxed);
        // Deeper levels may be listed ahead too, after what is needed sooner.
        self.enqueue(&listing.nodes, false);
        *p.state.lock().unwrap() = State::Done(listing);
        p.ready.notify_all();
        self.running.fetch_sub(1, Ordering::Relaxed);
        self.pump();
    }

    /// The listing of `children`, waiting for (or doing) the scan; the next
    /// level is then started so it is ready when the walk gets there.
    pub fn take(self: &Arc<Self>, children: Children) -> Listing {
        let listing = match children {
            Children::None => Listing::default(),
            Children::Ready(nodes) => Listing {
                nodes,
                ..Default::default()
            },
            Children::Listed(l) => *l,
            Children::Feed(dir) => match &self.feed {
                Some(f) => {
                    let mut l = f.listing(&dir);
                    self.probe_fed(&dir, &mut l.nodes);
                    l
                }
                None => Listing::default(),
            },
            Children::Pending(p) => loop {
                let mut st = p.state.lock().unwrap();
                match std::mem::replace(&mut *st, State::Taken) {
                    State::Idle => {
                        drop(st);
                        let l = self.list(&p.req);
                        self.in_flight
                            .fetch_add(l.nodes.len() as isize, Ordering::Relaxed);
                        break l;
                    }
                    State::Running => {
                        *st = State::Running;
                        drop(st);
                        // Another thread is on it: list a queued directory
                        // here rather than sleep (that thread may not even
                        // be running on a busy machine).
                        if self.help() {
                            continue;
                        }
                        let mut st = p.state.lock().unwrap();
                        while matches!(*st, State::Running) {
                            st = p.ready.wait(st).unwrap();
                        }
                    }
                    State::Done(l) => break l,
                    State::Taken => break Listing::default(),
                }
            },
        };
        self.in_flight
            .fetch_sub(listing.nodes.len() as isize, Ordering::Relaxed);
        self.enqueue(&listing.nodes, true);
        self.pump();
        listing
    }

    /// Resolve every pending listing below `nodes` (for `-H` and progress, which
    /// need the whole list before the first line). Errors are kept in order.
    pub fn complete(
        self: &Arc<Self>,
        nodes: &mut [Node],
        errors: &mut Vec<ScanError>,
        notes: &mut Vec<String>,
    ) {
        for n in nodes.iter_mut() {
            let children = std::mem::replace(&mut n.children, Children::None);
            n.children = match children {
                Children::None => Children::None,
                other => {
                    let mut l = self.take(other);
                    errors.append(&mut l.errors);
                    notes.append(&mut l.notes);
                    self.complete(&mut l.nodes, errors, notes);
                    Children::Ready(l.nodes)
                }
            };
        }
    }

    /// Whether the sender's rules exclude `name`; with `--debug=filter`, the
    /// rule that decided is noted as rsync prints it.
    fn excluded(&self, f: &DirFilters, name: &Path, is_dir: bool, notes: &mut Vec<String>) -> bool {
        let n = name.as_os_str().as_bytes();
        if !self.debug_filter {
            return f.excluded(n, is_dir);
        }
        let (excluded, why) = f.explain(n, is_dir);
        if let Some(why) = why {
            notes.push(format!(
                "[sender] {} {} {} because of pattern {why}",
                if excluded { "hiding" } else { "showing" },
                if is_dir { "directory" } else { "file" },
                crate::report::escape_bytes(n, self.opts.eight_bit_output)
            ));
        }
        excluded
    }

    /// Scan one operand: its node (children pending) and whether it stands for
    /// a directory's contents (`src/`, root named `.`).
    fn operand(
        self: &Arc<Self>,
        src: &OsStr,
        errors: &mut Vec<ScanError>,
        missing: &mut Vec<PathBuf>,
        notes: &mut Vec<String>,
    ) -> Option<(Node, bool)> {
        let opts = &self.opts;
        let bytes = src.as_bytes();
        let trailing = bytes.ends_with(b"/") || bytes == b"." || bytes.ends_with(b"/.");
        // --files-from names are `BASE/./NAME`; rsync shows them as BASE/NAME.
        let path = match bytes.windows(3).position(|w| w == b"/./") {
            Some(i) if opts.files_from.is_some() => {
                let mut v = bytes[..i + 1].to_vec();
                v.extend_from_slice(&bytes[i + 3..]);
                PathBuf::from(OsString::from_vec(v))
            }
            _ => PathBuf::from(src),
        };
        let md = if opts.copy_links {
            std::fs::metadata(&path)
        } else {
            std::fs::symlink_metadata(&path)
        };
        let md = match md {
            Ok(m) => m,
            Err(e) => {
                if e.kind() == std::io::ErrorKind::NotFound && opts.missing_args > 0 {
                    // --ignore-missing-args: silently; --delete-missing-args:
                    // the receiver deletes the name.
                    if opts.missing_args == 2 {
                        missing.push(missing_name(opts, bytes));
                    }
                    return None;
                }
                errors.push(ScanError::sender("link_stat ", &path, " failed", &e));
                return None;
            }
        };
        let mut meta = Meta::from_std(&md);
        if meta.kind == Kind::Symlink && (opts.copy_dirlinks || opts.copy_unsafe_links) {
            if let Ok(m) = std::fs::metadata(&path) {
                if m.is_dir() || opts.copy_unsafe_links {
                    meta = Meta::from_std(&m);
                }
            }
        }
        let rel = if opts.relative {
            relative_name(bytes)
        } else {
            None
        };
        let is_dot = trailing && meta.kind == Kind::Dir && (!opts.relative || rel.is_none());
        let name: PathBuf = if let Some(r) = &rel {
            r.clone()
        } else if is_dot {
            PathBuf::from(".")
        } else {
            let trimmed = trim_trailing(bytes);
            let b = match trimmed.iter().rposition(|&c| c == b'/') {
                Some(i) => &trimmed[i + 1..],
                None => trimmed,
            };
            PathBuf::from(OsStr::from_bytes(b))
        };
        if meta.kind == Kind::Dir && !opts.recursive && !opts.dirs {
            crate::report::message_stdout(&format!(
                "skipping directory {}",
                crate::report::escape_name(&name, opts.eight_bit_output)
            ));
            return None;
        }
        let root_dev = meta.dev;
        // The rules in force at the transfer root: names are matched
        // relative to it, absolute-path rules against its absolute path.
        let filt = self.filters.as_ref().map(|f| {
            let abs = absolute(&path);
            let depth = if is_dot { 0 } else { name.components().count() };
            let mut root = abs.clone();
            for _ in 0..depth {
                root.pop();
            }
            (f.root(Side::Sender, &root), abs)
        });
        if let Some((f, _)) = &filt {
            if !is_dot && self.excluded(f, &name, meta.kind == Kind::Dir, notes) {
                return None;
            }
        }
        let mut entry = make_entry(opts, errors, name, path, meta)?;
        let mut children = Children::None;
        if entry.meta.kind == Kind::Dir && (opts.recursive || (opts.dirs && (is_dot || trailing))) {
            children = Children::Pending(Arc::new(Pending {
                req: Request {
                    paths: entry.paths.clone(),
                    is_dot,
                    root_dev,
                    parent: Mutex::new(None),
                    filt,
                    src_meta: entry.meta,
                    dest_meta: None,
                    src_state: None,
                    dest_state: None,
                },
                state: Mutex::new(State::Idle),
                ready: Condvar::new(),
                spawned: Default::default(),
            }));
        } else if entry.meta.kind == Kind::Dir {
            entry.no_recurse = true;
        }
        let mut node = Node { entry, children };
        if let Some(r) = &rel {
            node = wrap_implied(opts, bytes, r, node);
        }
        Some((node, is_dot))
    }

    /// List one directory: lstat every entry (relative to the open directory),
    /// probe the destination, and sort into rsync's order.
    ///
    /// Names are read, stat'ed and checked in the directory's own order (so
    /// errors come out in the order rsync's readdir loop meets them) into
    /// compact records; only the sorted index is then turned into nodes, so
    /// each node is written once, at its final place.
    fn list(&self, req: &Request) -> Listing {
        if self.manifest.trust {
            if let Some(l) = self.list_trusted(req) {
                return l;
            }
        }
        let opts = &self.opts;
        let mut errors = Vec::new();
        let dir = req.paths.src();
        let req_name = req.paths.name();
        let parent = req.parent.lock().unwrap().take();
        let base_name = OsStr::from_bytes(base(dir));
        let opened = match &parent {
            Some(p) => crate::sys::meta::open_dir_at(&p.src, base_name, true),
            None => crate::sys::meta::open_dir(dir),
        };
        let fd = match opened {
            Ok(fd) => fd,
            Err(e) => {
                errors.push(ScanError::sender("opendir ", dir, " failed", &e));
                return Listing {
                    errors,
                    ..Default::default()
                };
            }
        };
        // The matching destination directory, opened once to stat its entries.
        let dest_fd = self.probe.as_ref().and_then(|root| {
            if req_name.as_os_str() == "." {
                root.try_clone().ok()
            } else if let Some(p) = &parent {
                // The parent's destination was opened without passing a
                // symlink (unless -K), so one more name with O_NOFOLLOW is
                // as safe as resolving the whole path beneath the root.
                let d = p.dest.as_ref()?;
                crate::sys::meta::open_dir_at(d, base_name, opts.keep_dirlinks).ok()
            } else {
                crate::sys::meta::open_dir_beneath(root, req_name, opts.keep_dirlinks).ok()
            }
        });
        drop(parent);
        let shallow = !opts.recursive;
        let slow = opts.xattrs || opts.acls;
        // The rules for this directory's entries (its own merge files read).
        let filt = req.filt.as_ref().map(|(f, abs)| (f.enter(abs), abs));
        let mut notes_out = Vec::new();
        let list_name = |n: &OsStr| {
            if req.is_dot {
                PathBuf::from(n)
            } else {
                join_exact(req_name, n)
            }
        };
        // Every kept name, back to back; records point into it. The buffers
        // are the thread's, reused from listing to listing (no regrowth).
        let mut scratch = SCRATCH.with(|s| std::mem::take(&mut *s.borrow_mut()));
        let Scratch {
            names,
            recs,
            order,
            spans,
        } = &mut scratch;
        let read = crate::sys::dir::for_each_name(&fd, |cname| {
            let nb = cname.to_bytes();
            let n = OsStr::from_bytes(nb);
            let mut src_state = None;
            let mut src_ctime;
            let meta = match crate::sys::meta::lstat_at_c(&fd, cname) {
                Ok(m) => {
                    src_ctime = Some(m.ctime);
                    if m.mode & libc::S_IFMT == libc::S_IFDIR {
                        src_state = Some(crate::manifest::format::DirState::from_stat(&m));
                    }
                    Meta::from_sys(&m)
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    errors.push(ScanError::new(
                        format!(
                            "[sender] file has vanished: \"{}\"",
                            crate::report::abs_display(&join_exact(dir, n))
                        ),
                        crate::exit::VANISHED,
                    ));
                    return;
                }
                Err(e) => {
                    let path = join_exact(dir, n);
                    errors.push(ScanError::sender("readlink_stat(", &path, ") failed", &e));
                    return;
                }
            };
            if let Some((f, _)) = &filt {
                if self.excluded(f, &list_name(n), meta.kind == Kind::Dir, &mut notes_out) {
                    return;
                }
            }
            // Symlinks and -X/-A need the paths; everything else is decided
            // from the metadata alone.
            let found = if meta.kind == Kind::Symlink || slow {
                resolve(opts, &mut errors, &list_name(n), &join_exact(dir, n), meta)
            } else {
                Some(Resolved::plain(opts, meta))
            };
            let Some(r) = found else { return };
            if let Some((f, _)) = &filt {
                // A followed symlink (-L, -k) is checked again as what it became.
                if r.meta.kind != meta.kind
                    && self.excluded(f, &list_name(n), r.meta.kind == Kind::Dir, &mut notes_out)
                {
                    return;
                }
            }
            let mut dest_state = None;
            let mut dest_ctime = None;
            let dest = match (&self.probe, &dest_fd) {
                (None, _) => DestProbe::Unknown,
                (Some(_), None) => DestProbe::Missing,
                (Some(_), Some(dfd)) => match crate::sys::meta::lstat_at_c(dfd, cname) {
                    Ok(st) => {
                        if st.mode & libc::S_IFMT == libc::S_IFDIR {
                            dest_state = Some(crate::manifest::format::DirState::from_stat(&st));
                        }
                        dest_ctime = Some(st.ctime);
                        DestProbe::Found(Meta::from_sys(&st))
                    }
                    Err(_) => DestProbe::Missing,
                },
            };
            // A followed symlink's directory (or file) is not the one stat'ed.
            if r.meta.kind != meta.kind || r.meta.ino != meta.ino {
                src_state = None;
                src_ctime = None;
            }
            let mut recurse = false;
            if r.meta.kind == Kind::Dir {
                let other_fs = opts.one_file_system > 0 && r.meta.dev != req.root_dev;
                if other_fs && opts.one_file_system > 1 {
                    return;
                }
                recurse = !shallow && !other_fs;
            }
            recs.push(Rec {
                off: names.len() as u32,
                len: nb.len() as u32,
                recurse,
                r,
                dest,
                sums: None,
                states: (src_state, dest_state),
                ctimes: (src_ctime, dest_ctime),
                hashed: None,
            });
            names.extend_from_slice(nb);
        });
        if let (true, Some(dfd)) = (self.checksum, &dest_fd) {
            // The hashes the last run recorded here, by name (a record's
            // files are already in byte order; sorted again so a forged one
            // only misses).
            let mut cached: Vec<EntryRec<'_>> = match &self.manifest.old {
                Some(m) => m
                    .dir(req_name.as_os_str().as_bytes())
                    .map_or_else(Vec::new, |d| {
                        m.entries(d)
                            .map_while(Result::ok)
                            .filter(|e| e.hash.is_some())
                            .collect()
                    }),
                None => Vec::new(),
            };
            cached.sort_unstable_by(|a, b| a.name.cmp(b.name));
            self.hash_pairs(recs, names, &fd, dfd, &cached);
        }
        if let Err(e) = read {
            errors.push(ScanError::new(
                format!(
                    "[sender] readdir(\"{}\"): {}",
                    crate::report::abs_display(dir),
                    errno_text(&e)
                ),
                crate::exit::PARTIAL,
            ));
        }
        let name_of = |r: &Rec| &names[r.off as usize..(r.off + r.len) as usize];
        // The manifest's view of this directory: its states now, for this
        // run's record and to check the last run's.
        let mf = &self.manifest;
        // The states come from the parent's stats, taken before this
        // directory was read (a change after them shows next time); only
        // the root's are an `fstat` of its descriptors.
        let states = if mf.rec.is_some() || mf.old.is_some() {
            let fstat = |fd: &std::os::fd::OwnedFd| {
                crate::sys::meta::fstat_fd(fd)
                    .ok()
                    .map(|s| crate::manifest::format::DirState::from_stat(&s))
            };
            req.src_state.or_else(|| fstat(&fd)).map(|s| {
                let d = dest_fd
                    .as_ref()
                    .and_then(|d| req.dest_state.or_else(|| fstat(d)));
                (s, d)
            })
        } else {
            None
        };
        // Sorted by a key that decides almost every comparison with one
        // integer compare; names equal in their first 8 bytes fall back to
        // comparing the bytes.
        order.extend(recs.iter().enumerate().map(|(i, r)| {
            let dir = r.r.meta.kind == Kind::Dir;
            (dir, sort_prefix(name_of(r), dir), i as u32)
        }));
        order.sort_unstable_by(|a, b| {
            (a.0, a.1).cmp(&(b.0, b.1)).then_with(|| {
                let (x, y) = (name_of(&recs[a.2 as usize]), name_of(&recs[b.2 as usize]));
                if a.0 { cmp_as_dirs(x, y) } else { x.cmp(y) }
            })
        });
        // Both paths of every entry go into one shared buffer, in list order.
        let (dir_b, name_b) = (dir.as_os_str().as_bytes(), req_name.as_os_str().as_bytes());
        let mut pb = PathsBuf::with_capacity(
            2 * names.len() + recs.len() * (dir_b.len() + name_b.len() + 2),
        );
        spans.extend(order.iter().map(|&(_, _, i)| {
            let rec = &recs[i as usize];
            let n = &names[rec.off as usize..(rec.off + rec.len) as usize];
            let name = if req.is_dot {
                pb.push_join(&[n])
            } else {
                pb.push_join(&[name_b, n])
            };
            (name, pb.push_join(&[dir_b, n]))
        }));
        let shared = pb.freeze();
        let dest_exact = match (&mf.old, &states) {
            (Some(m), Some((_, Some(dnow)))) => m.dir(name_b).is_some_and(|d| {
                d.flags & crate::manifest::format::D_COMPLETE != 0
                    && d.flags & crate::manifest::format::D_STALE == 0
                    && d.dest == Some(*dnow)
                    && d.count as usize == order.len()
                    && m.entries(d).zip(order.iter()).all(|(e, &(_, _, i))| {
                        e.is_ok_and(|e| e.name == name_of(&recs[i as usize]))
                    })
            }),
            _ => false,
        };
        let mut recording = match (&mf.rec, &states) {
            (Some(_), Some((s, d))) if !racy(s) && !d.as_ref().is_some_and(racy) => Some(
                crate::manifest::DirRecording::new(name_b, s, d.as_ref(), recs.len()),
            ),
            _ => None,
        };
        // Subdirectories open relative to this listing's descriptors while
        // few enough are kept open.
        let fds = if recs.iter().any(|r| r.recurse) {
            DirFds::share(fd, dest_fd)
        } else {
            None
        };
        let mut nodes = Vec::with_capacity(recs.len());
        for (&(_, _, i), &(name, src)) in order.iter().zip(spans.iter()) {
            let rec = &mut recs[i as usize];
            if let Some(r) = recording.as_mut() {
                let n = &names[rec.off as usize..(rec.off + rec.len) as usize];
                let dest = match &rec.dest {
                    DestProbe::Found(m) => Some(m),
                    _ => None,
                };
                let mut e = crate::manifest::entry_rec(
                    n,
                    rec.recurse,
                    rec.r.skip,
                    &rec.r.meta,
                    dest,
                    rec.r.link_target.as_ref(),
                );
                e.hash = rec.hashed;
                r.entry(&e);
            }
            let entry = Entry {
                paths: shared.get(name, src),
                meta: rec.r.meta,
                link_target: rec.r.link_target.take(),
                xattrs: rec.r.xattrs.take(),
                no_recurse: rec.r.meta.kind == Kind::Dir && !rec.recurse,
                implied: false,
                skip: rec.r.skip,
                dest: rec.dest,
                sums: rec.sums.take(),
            };
            let children = if rec.recurse {
                Children::Pending(Arc::new(Pending {
                    req: Request {
                        paths: entry.paths.clone(),
                        is_dot: false,
                        root_dev: req.root_dev,
                        parent: Mutex::new(fds.clone()),
                        filt: filt.as_ref().map(|(f, abs)| {
                            (f.clone(), abs.join(OsStr::from_bytes(base(entry.src()))))
                        }),
                        src_meta: entry.meta,
                        dest_meta: match entry.dest {
                            DestProbe::Found(m) => Some(m),
                            _ => None,
                        },
                        src_state: rec.states.0,
                        dest_state: rec.states.1,
                    },
                    state: Mutex::new(State::Idle),
                    ready: Condvar::new(),
                    spawned: Default::default(),
                }))
            } else {
                Children::None
            };
            nodes.push(Node { entry, children });
        }
        spans.clear();
        names.clear();
        recs.clear();
        order.clear();
        // A huge directory does not pin its buffers for the rest of the run.
        recs.shrink_to(SCRATCH_KEEP);
        order.shrink_to(SCRATCH_KEEP);
        spans.shrink_to(SCRATCH_KEEP);
        names.shrink_to(SCRATCH_KEEP * 32);
        SCRATCH.with(|s| *s.borrow_mut() = scratch);
        if let (Some(rec), Some(r)) = (&mf.rec, recording) {
            if errors.is_empty() {
                rec.add(r, mf.old.as_deref());
            }
        }
        Listing {
            nodes,
            errors,
            notes: notes_out,
            dest_exact,
            counted: Default::default(),
        }
    }

    /// `--trust-mtime`: the listing of a directory whose source mtime and
    /// inode (and its destination's) are what the manifest recorded, built
    /// from the manifest without reading or stat'ing its files. Its
    /// subdirectories are stat'ed for real on both sides (their own check
    /// comes when they are listed). None: list it for real.
    /// `--trust-mtime`: the listing of subdirectory `req` at once, when its
    /// record holds no subdirectory (so listing it needs no syscall: its own
    /// states come from the stats just made) and it is trusted; None: it
    /// gets a pending listing as usual.
    ///
    /// Why: most directories of a source tree are leaves (linux: 4.0k of
    /// 5.1k); a pending listing costs an allocation, a rayon task, a claim
    /// and a wake-up, more than checking the leaf's record does.
    fn trusted_leaf(&self, m: &crate::manifest::Manifest, req: &Request) -> Option<Listing> {
        let d = m.dir(req.paths.name().as_os_str().as_bytes())?;
        if d.count as u64 != d.plain.count() {
            return None;
        }
        self.list_trusted(req)
    }

    fn list_trusted(&self, req: &Request) -> Option<Listing> {
        use crate::manifest::format;
        let m = self.manifest.old.as_ref()?;
        let probe = self.probe.as_ref()?;
        let name_b = req.paths.name().as_os_str().as_bytes();
        let d = m.dir(name_b)?;
        // A directory the recording run changed: its record is only for -c.
        if d.flags & format::D_STALE != 0 {
            return None;
        }
        let dd = d.dest?;
        if !d.src.same_mtime_ino(&req.src_meta) {
            return None;
        }
        let dest_now = if name_b == b"." {
            Meta::from_sys(&crate::sys::meta::fstat_fd(probe).ok()?)
        } else {
            req.dest_meta?
        };
        if dest_now.kind != Kind::Dir || !dd.same_mtime_ino(&dest_now) {
            return None;
        }
        let (dir_b, n_b) = (req.paths.src().as_os_str().as_bytes(), name_b);
        // Sized for what is listed: all entries, or those after the counted
        // run (mostly the subdirectories).
        let listed = if self.manifest.count_only {
            d.count as usize - d.plain.count() as usize
        } else {
            d.count as usize
        };
        let mut pb = PathsBuf::with_capacity(listed * (dir_b.len() + n_b.len() + 32));
        let mut spans = Vec::with_capacity(listed);
        let mut counted: (crate::report::TypeCounts, u64) = Default::default();
        // Up-to-date non-directories are only counted: the leading run of
        // them from the record's summary, without decoding them.
        let entries = if self.manifest.count_only {
            let p = &d.plain;
            for (kind, n) in [Kind::File, Kind::Symlink, Kind::Device, Kind::Special]
                .into_iter()
                .zip(p.kinds)
            {
                counted.0.add_n(kind, n as u64);
            }
            counted.1 = p.size;
            m.entries_after_plain(d)
        } else {
            m.entries(d)
        };
        for e in entries {
            // An entry that does not decode: list the directory for real.
            let e = e.ok()?;
            if self.manifest.count_only && e.src.kind != Kind::Dir && e.flags & format::E_SKIP == 0
            {
                counted.0.add(e.src.kind);
                if matches!(e.src.kind, Kind::File | Kind::Symlink) {
                    counted.1 += e.src.size;
                }
                continue;
            }
            let name = if req.is_dot {
                pb.push_join(&[e.name])
            } else {
                pb.push_join(&[n_b, e.name])
            };
            spans.push((name, pb.push_join(&[dir_b, e.name]), e));
        }
        let shared = pb.freeze();
        let filt = req.filt.as_ref().map(|(f, abs)| (f.enter(abs), abs));
        let mut nodes = Vec::with_capacity(spans.len());
        for (name, src, e) in spans {
            let paths = shared.get(name, src);
            let mut states = (None, None);
            let (meta, dest) = if e.src.kind == Kind::Dir {
                let s = match &self.src_root {
                    Some(r) => crate::sys::meta::lstat_at(r, paths.name().as_os_str()),
                    None => crate::sys::meta::lstat_full(paths.src()),
                }
                .ok()?;
                let sm = Meta::from_sys(&s);
                if sm.kind != Kind::Dir {
                    return None;
                }
                states.0 = Some(format::DirState::from_stat(&s));
                let dm = match crate::sys::meta::lstat_at(probe, paths.name().as_os_str()) {
                    Ok(st) => {
                        states.1 = Some(format::DirState::from_stat(&st));
                        DestProbe::Found(Meta::from_sys(&st))
                    }
                    Err(_) => DestProbe::Missing,
                };
                (sm, dm)
            } else {
                (e.src, e.dest.map_or(DestProbe::Missing, DestProbe::Found))
            };
            let recurse = e.flags & format::E_RECURSE != 0;
            let entry = Entry {
                paths,
                meta,
                link_target: e.link.map(crate::manifest::link_target),
                xattrs: None,
                no_recurse: meta.kind == Kind::Dir && !recurse,
                implied: false,
                skip: e.flags & format::E_SKIP != 0,
                dest,
                // --trust-mtime (the only user of this path) is off with -c
                // (engine::manifest_use), so there are no sums to carry.
                sums: None,
            };
            let children = if recurse {
                let sub = Request {
                    paths: entry.paths.clone(),
                    is_dot: false,
                    root_dev: req.root_dev,
                    parent: Mutex::new(None),
                    filt: filt.as_ref().map(|(f, abs)| {
                        (f.clone(), abs.join(OsStr::from_bytes(base(entry.src()))))
                    }),
                    src_meta: meta,
                    dest_meta: match dest {
                        DestProbe::Found(m) => Some(m),
                        _ => None,
                    },
                    src_state: states.0,
                    dest_state: states.1,
                };
                match self.trusted_leaf(m, &sub) {
                    Some(l) => {
                        self.in_flight
                            .fetch_add(l.nodes.len() as isize, Ordering::Relaxed);
                        Children::Listed(Box::new(l))
                    }
                    None => Children::Pending(Arc::new(Pending {
                        req: sub,
                        state: Mutex::new(State::Idle),
                        ready: Condvar::new(),
                        spawned: Default::default(),
                    })),
                }
            } else {
                Children::None
            };
            nodes.push(Node { entry, children });
        }
        if let Some(rec) = &self.manifest.rec {
            rec.carry(d);
        }
        Some(Listing {
            nodes,
            errors: Vec::new(),
            notes: Vec::new(),
            dest_exact: d.flags & format::D_COMPLETE != 0,
            counted,
        })
    }
}

/// A directory state this recent may share its timestamps with a change
/// made right after it was read (timestamps come from a clock that ticks
/// every few milliseconds), so it is not recorded: the next run lists the
/// directory in full and records it then.
fn racy(s: &crate::manifest::format::DirState) -> bool {
    const RACY_NS: i128 = 100_000_000;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0);
    let c = s.ctime as i128 * 1_000_000_000 + s.ctime_nsec as i128;
    let m = s.mtime as i128 * 1_000_000_000 + s.mtime_nsec as i128;
    now - c.max(m) < RACY_NS
}

/// The list name a missing operand would have had.
fn missing_name(opts: &Options, bytes: &[u8]) -> PathBuf {
    if opts.relative {
        if let Some(r) = relative_name(bytes) {
            return r;
        }
    }
    let t = trim_trailing(bytes);
    let b = match t.iter().rposition(|&c| c == b'/') {
        Some(i) => &t[i + 1..],
        None => t,
    };
    PathBuf::from(OsStr::from_bytes(b))
}

/// `p` made absolute and lexically clean (rsync matches absolute-path rules
/// against its working directory, which is absolute).
fn absolute(p: &Path) -> PathBuf {
    crate::filter::clean(&std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf()))
}

/// Pairs from this size up hash their two sides on two rayon tasks; below
/// it, splitting costs more than it gains (the files of a directory are
/// spread over the threads anyway).
const SUM_JOIN_MIN: u64 = 256 * 1024;

/// Records [`Scanner::list`] keeps per thread between listings.
const SCRATCH_KEEP: usize = 4096;

/// Per-thread buffers of [`Scanner::list`].
#[derive(Default)]
struct Scratch {
    names: Vec<u8>,
    recs: Vec<Rec>,
    /// (is a directory, [`sort_prefix`], record index).
    order: Vec<(bool, u64, u32)>,
    spans: Vec<(Span, Span)>,
}

thread_local! {
    static SCRATCH: std::cell::RefCell<Scratch> = std::cell::RefCell::new(Scratch::default());
}

/// One listed name before it becomes a node (see [`Scanner::list`]).
struct Rec {
    /// The name's bytes in the listing's name buffer.
    off: u32,
    len: u32,
    /// A directory whose contents are listed too.
    recurse: bool,
    r: Resolved,
    dest: DestProbe,
    /// `-c`: both sides' sums (see [`Scanner::hash_pairs`]).
    sums: Option<Box<Checked>>,
    /// A directory's states as the manifest records them (source, dest).
    states: (
        Option<crate::manifest::format::DirState>,
        Option<crate::manifest::format::DirState>,
    ),
    /// Both sides' ctimes as stat'ed (source: `None` for a followed
    /// symlink), for `-c`'s cached hashes.
    ctimes: (Option<Timestamp>, Option<Timestamp>),
    /// `-c`: the hash to record for this entry (see [`Scanner::hash_pairs`]).
    hashed: Option<Hashed>,
}

/// Merge `more` into `into`, keeping the first of duplicate names.
fn merge(into: &mut Vec<Node>, more: Vec<Node>) {
    for n in more {
        match into.iter_mut().find(|x| x.entry.name() == n.entry.name()) {
            None => into.push(n),
            Some(x) => {
                // -R: implied parents of several operands merge; a directory
                // that is itself an operand (pending) covers an implied one.
                let taken = std::mem::replace(&mut x.children, Children::None);
                x.children = match (taken, n.children) {
                    (Children::Ready(mut a), Children::Ready(b)) => {
                        merge(&mut a, b);
                        sort_nodes(&mut a);
                        Children::Ready(a)
                    }
                    (Children::Ready(_), p @ Children::Pending(_)) => {
                        x.entry = n.entry;
                        p
                    }
                    (keep, _) => keep,
                };
            }
        }
    }
}

/// rsync's order within a directory: non-directories by name bytes, then
/// directories compared as if their names ended in `/`.
fn sort_nodes(nodes: &mut Vec<Node>) {
    // Sort an index (nodes are large; moving them once is cheaper than
    // letting the sort shuffle them).
    let mut order: Vec<u32> = (0..nodes.len() as u32).collect();
    order.sort_unstable_by(|&i, &j| {
        let (a, b) = (&nodes[i as usize].entry, &nodes[j as usize].entry);
        let (da, db) = (a.meta.kind == Kind::Dir, b.meta.kind == Kind::Dir);
        da.cmp(&db).then_with(|| {
            let (x, y) = (base(a.name()), base(b.name()));
            if da { cmp_as_dirs(x, y) } else { x.cmp(y) }
        })
    });
    if order.iter().enumerate().all(|(k, &i)| k as u32 == i) {
        return;
    }
    let mut slots: Vec<Option<Node>> = nodes.drain(..).map(Some).collect();
    nodes.extend(
        order
            .into_iter()
            .map(|i| slots[i as usize].take().expect("each index once")),
    );
}

/// The first 8 bytes of `name` (followed by `/` for a directory, as rsync
/// compares them), zero-padded, as a big-endian number: ordering these
/// orders the names, except for names that agree in all 8 bytes (names hold
/// no NUL, so a shorter name sorts first as it should).
fn sort_prefix(name: &[u8], dir: bool) -> u64 {
    let mut k = [0u8; 8];
    let n = name.len().min(8);
    k[..n].copy_from_slice(&name[..n]);
    if dir && n < 8 {
        k[n] = b'/';
    }
    u64::from_be_bytes(k)
}

/// Compare two names as if each ended in `/` (rsync sorts directories so).
pub fn cmp_as_dirs(x: &[u8], y: &[u8]) -> std::cmp::Ordering {
    let m = x.len().min(y.len());
    x[..m].cmp(&y[..m]).then_with(|| {
        let cx = x.get(m).copied().unwrap_or(b'/');
        let cy = y.get(m).copied().unwrap_or(b'/');
        cx.cmp(&cy)
    })
}

/// `base/name` allocated once at its final size (`Path::join` grows, which
/// showed up as realloc/memmove in rescan profiles).
fn join_exact(base: &Path, name: &OsStr) -> PathBuf {
    let (b, n) = (base.as_os_str().as_bytes(), name.as_bytes());
    let mut v = Vec::with_capacity(b.len() + 1 + n.len());
    v.extend_from_slice(b);
    if !b.is_empty() && !b.ends_with(b"/") {
        v.push(b'/');
    }
    v.extend_from_slice(n);
    PathBuf::from(OsString::from_vec(v))
}

/// The last component of a list name (names never end in `/`); cheaper than
/// `Path::file_name`, which parses every component, in the sort's hot loop.
fn base(p: &Path) -> &[u8] {
    let b = p.as_os_str().as_bytes();
    match b.iter().rposition(|&c| c == b'/') {
        Some(i) => &b[i + 1..],
        None => b,
    }
}

fn trim_trailing(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 1 && b[end - 1] == b'/' {
        end -= 1;
    }
    &b[..end]
}

/// `-R`: put the operand's node under nodes for its parent directories (the
/// "implied dirs"), which carry their own source metadata, as rsync sends them.
fn wrap_implied(opts: &Options, operand: &[u8], rel: &Path, node: Node) -> Node {
    let comps: Vec<&OsStr> = rel.iter().collect();
    if comps.len() < 2 || !opts.implied_dirs {
        return node;
    }
    // The source path of the relative root: operand minus the relative part.
    let op = trim_trailing(operand);
    let rel_b = rel.as_os_str().as_bytes();
    let base_len = op.len().saturating_sub(rel_b.len());
    let base = PathBuf::from(OsStr::from_bytes(&op[..base_len]));
    let mut node = node;
    for depth in (1..comps.len()).rev() {
        let name: PathBuf = comps[..depth].iter().collect();
        let src = if base.as_os_str().is_empty() {
            name.clone()
        } else {
            base.join(&name)
        };
        let meta = match std::fs::metadata(&src) {
            Ok(m) => Meta::from_std(&m),
            Err(_) => break,
        };
        let xattrs = (opts.xattrs || opts.acls).then(|| read_xattrs(&src, opts));
        node = Node {
            entry: Entry {
                paths: Paths::new(&name, &src),
                meta,
                link_target: None,
                xattrs,
                no_recurse: true,
                implied: true,
                skip: false,
                dest: DestProbe::Unknown,
                sums: None,
            },
            children: Children::Ready(vec![node]),
        };
    }
    node
}

/// `-R`: the path that is recreated under the destination: everything after a
/// `/./` marker, else the whole operand without leading `/` and `./`.
/// None when nothing is left (the operand is `.` or `/`).
fn relative_name(b: &[u8]) -> Option<PathBuf> {
    let start = b
        .windows(3)
        .rposition(|w| w == b"/./")
        .map(|i| i + 3)
        .unwrap_or(0);
    let mut r = trim_trailing(&b[start..]);
    loop {
        if let Some(rest) = r.strip_prefix(b"/") {
            r = rest;
        } else if let Some(rest) = r.strip_prefix(b"./") {
            r = rest;
        } else {
            break;
        }
    }
    let r: Vec<u8> = r
        .split(|&c| c == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect::<Vec<_>>()
        .join(&b'/');
    if r.is_empty() {
        None
    } else {
        Some(PathBuf::from(OsStr::from_bytes(&r)))
    }
}

/// Is a symlink target "unsafe" in rsync's sense: absolute, or climbing with `..`
/// above the top of the transfer given the link's depth below it.
pub fn unsafe_symlink(target: &[u8], name: &Path) -> bool {
    if target.is_empty() || target.starts_with(b"/") {
        return true;
    }
    // Depth of the directory holding the link, below the transfer root.
    let mut depth: i64 = name
        .as_os_str()
        .as_bytes()
        .split(|&c| c == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .count() as i64
        - 1;
    for comp in target.split(|&c| c == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// What the symlink and type options make of one scanned name.
struct Resolved {
    /// Its metadata (the referent's, when a symlink is followed).
    meta: Meta,
    /// Symlink target (only for symlinks that stay symlinks).
    link_target: Option<OsString>,
    /// Extended attributes with `-X`/`-A`.
    xattrs: Option<Vec<(OsString, Vec<u8>)>>,
    /// Listed but not transferred (see [`Entry::skip`]).
    skip: bool,
}

impl Resolved {
    /// A name that is not a symlink, without `-X`/`-A`: nothing to read.
    fn plain(opts: &Options, meta: Meta) -> Resolved {
        Resolved {
            meta,
            link_target: None,
            xattrs: None,
            skip: skipped(opts, meta.kind),
        }
    }
}

/// Whether the scan hashes pairs for `-c` (which wins over `-I` and
/// `--size-only`, as in rsync's quick check): not with `--ignore-existing`,
/// which never looks at existing files' data.
fn checksum_in_scan(opts: &Options) -> bool {
    opts.checksum && !opts.ignore_existing
}

/// rsync's `skipping non-regular file`: a symlink without `-l`, a device
/// without `--devices`, a special without `--specials`.
pub(crate) fn skipped(opts: &Options, kind: Kind) -> bool {
    match kind {
        Kind::Symlink => !opts.links,
        Kind::Device => !opts.devices,
        Kind::Special => !opts.specials,
        _ => false,
    }
}

/// Build an entry for `path`, applying the symlink options; `None` means skip it.
fn make_entry(
    opts: &Options,
    errors: &mut Vec<ScanError>,
    name: PathBuf,
    path: PathBuf,
    meta: Meta,
) -> Option<Entry> {
    let r = resolve(opts, errors, &name, &path, meta)?;
    Some(Entry {
        paths: Paths::new(&name, &path),
        meta: r.meta,
        link_target: r.link_target,
        xattrs: r.xattrs,
        no_recurse: false,
        implied: false,
        skip: r.skip,
        dest: DestProbe::Unknown,
        sums: None,
    })
}

/// Apply the symlink options (`-L`, `--copy-unsafe-links`, `--copy-dirlinks`,
/// `--safe-links`) and read xattrs; `None` means the name is left out.
fn resolve(
    opts: &Options,
    errors: &mut Vec<ScanError>,
    name: &Path,
    path: &Path,
    meta: Meta,
) -> Option<Resolved> {
    let mut meta = meta;
    let mut link_target = None;
    if meta.kind == Kind::Symlink {
        let target = match std::fs::read_link(path) {
            Ok(t) => t.into_os_string(),
            Err(e) => {
                errors.push(ScanError::sender("readlink_stat(", path, ") failed", &e));
                return None;
            }
        };
        let is_unsafe = unsafe_symlink(target.as_bytes(), name);
        let follow = opts.copy_links
            || (opts.copy_unsafe_links && is_unsafe)
            || (opts.copy_dirlinks && std::fs::metadata(path).is_ok_and(|m| m.is_dir()));
        if follow {
            match std::fs::metadata(path) {
                Ok(m) => meta = Meta::from_std(&m),
                Err(_) => {
                    errors.push(ScanError {
                        message: format!(
                            "symlink has no referent: \"{}\"",
                            crate::report::abs_display(path)
                        ),
                        code: crate::exit::PARTIAL,
                        bare: true,
                    });
                    return None;
                }
            }
        } else if opts.safe_links && is_unsafe && opts.links {
            if opts.verbose > 0 {
                crate::report::message_stdout(&format!(
                    "ignoring unsafe symlink \"{}\" -> \"{}\"",
                    crate::report::abs_display(path),
                    String::from_utf8_lossy(target.as_bytes())
                ));
            }
            return None;
        } else {
            meta.size = target.len() as u64;
            link_target = Some(target);
        }
    }
    let xattrs = if opts.xattrs || opts.acls {
        Some(read_xattrs(path, opts))
    } else {
        None
    };
    Some(Resolved {
        meta,
        link_target,
        xattrs,
        skip: skipped(opts, meta.kind),
    })
}

/// Which xattr names a transfer copies: `-X` takes user.* (and trusted./security.
/// as root), `-A` takes the POSIX ACL xattrs.
pub fn xattr_wanted(name: &[u8], opts: &Options) -> bool {
    if name.starts_with(b"system.posix_acl_") {
        return opts.acls;
    }
    if !opts.xattrs {
        return false;
    }
    if name.starts_with(b"user.") {
        return true;
    }
    opts.am_root && (name.starts_with(b"trusted.") || name.starts_with(b"security."))
}

/// Read the wanted xattrs of `path` (not following symlinks), sorted by name.
pub fn read_xattrs(path: &Path, opts: &Options) -> Vec<(OsString, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    let names = loop {
        match rustix::fs::llistxattr(path, &mut buf) {
            Ok(n) => break buf[..n].to_vec(),
            Err(rustix::io::Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            Err(_) => return out,
        }
    };
    for name in names.split(|&c| c == 0).filter(|n| !n.is_empty()) {
        if !xattr_wanted(name, opts) {
            continue;
        }
        let cname = OsString::from_vec(name.to_vec());
        let mut vbuf = vec![0u8; 4096];
        loop {
            match rustix::fs::lgetxattr(path, cname.as_os_str(), &mut vbuf) {
                Ok(n) => {
                    vbuf.truncate(n);
                    out.push((cname, vbuf));
                    break;
                }
                Err(rustix::io::Errno::RANGE) => vbuf.resize(vbuf.len() * 4, 0),
                Err(_) => break,
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The keyed sort of `Scanner::list` orders exactly as rsync's comparison.
    #[test]
    fn sort_prefix_orders_as_rsync() {
        let mut names: Vec<(bool, Vec<u8>)> = Vec::new();
        let parts: [&[u8]; 9] = [
            b"a",
            b"a-",
            b"a.",
            b"a0",
            b"abcdefg",
            b"abcdefgh",
            b"x",
            b"\xff",
            b".",
        ];
        let mut seed = 7u64;
        for _ in 0..3000 {
            let mut n = Vec::new();
            for _ in 0..1 + seed % 4 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                n.extend_from_slice(parts[(seed >> 33) as usize % parts.len()]);
            }
            names.push(((seed >> 20) & 1 == 1, n));
        }
        let reference = |a: &(bool, Vec<u8>), b: &(bool, Vec<u8>)| {
            a.0.cmp(&b.0).then_with(|| {
                if a.0 {
                    cmp_as_dirs(&a.1, &b.1)
                } else {
                    a.1.cmp(&b.1)
                }
            })
        };
        let keyed = |a: &(bool, Vec<u8>), b: &(bool, Vec<u8>)| {
            (a.0, sort_prefix(&a.1, a.0))
                .cmp(&(b.0, sort_prefix(&b.1, b.0)))
                .then_with(|| reference(a, b))
        };
        for a in names.iter().take(300) {
            for b in &names {
                assert_eq!(keyed(a, b), reference(a, b), "{a:?} {b:?}");
            }
        }
    }
}
