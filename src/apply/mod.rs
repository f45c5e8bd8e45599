//! Phase 2: carry out the plan.
//!
//! Directories are created first, in list order (parents before children). Files,
//! symlinks and device nodes are then written in parallel on rayon, sorted by
//! source inode so reads walk the source disk in order. Every file is written to a
//! temp file in its destination directory, given its metadata, and renamed over
//! the old one, so a destination file is always the old or the new version (unless
//! `--inplace`/`--append`). Hard links follow their leaders; directory metadata is
//! set last, bottom-up, so that writing into a directory cannot disturb its mtime.

pub mod backup;
mod file;
mod meta;

pub use file::Filled;

use crate::flist::Entry;
use crate::options::Options;
use crate::plan::{Action, Item};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};

/// What phase 2 reports back for `--stats` and the exit code.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Bytes of file data written.
    pub literal: u64,
    /// Bytes of file data written from a remote sender's data (the kept
    /// prefix of an appended file not included): with [`Outcome::matched`],
    /// the remote `--stats` literal data.
    pub fetched: u64,
    /// Bytes that delta transfers (`--no-W`) took from the basis file instead
    /// of the source: rsync's "Matched data".
    pub matched: u64,
    /// Highest-priority exit code class met (0, 11, 23, 24).
    pub code: i32,
    /// Items sent a second time, for their redo-phase lines.
    pub redone: Vec<(Entry, Item)>,
}

/// Shared state of one apply run (shared with the worker tasks).
pub(crate) struct Ctx {
    pub opts: Options,
    literal: AtomicU64,
    /// Bytes delta transfers took from their basis ([`Outcome::matched`]).
    matched: AtomicU64,
    /// Bytes of files written from a remote sender ([`Outcome::fetched`]).
    fetched: AtomicU64,
    code: Mutex<i32>,
    fatal: AtomicBool,
    /// `--temp-dir`, resolved against the destination root when relative.
    pub temp_dir: Option<PathBuf>,
    /// The process umask (new files are created with their final mode when it
    /// does not interfere).
    pub umask: u32,
    /// `--delay-updates`: finished files parked in `.~tmp~`, renamed at the end.
    delayed: Mutex<Vec<(PathBuf, PathBuf)>>,
    /// Copy methods that failed per (source device, destination device or 0
    /// for new files), so they are not retried for every file.
    hints:
        std::sync::RwLock<std::collections::HashMap<(u64, u64), Arc<crate::sys::copy::CopyHints>>>,
    /// Files sent a second time (rsync's redo phase), printed after the rest.
    redone: Mutex<Vec<(Entry, Item)>>,
    /// `-b`: where replaced entries are kept.
    pub backups: Option<backup::Backups>,
    /// stdout lines from the workers, printed by the walk's printer.
    pub notes: crate::report::Notes,
    /// Work items handed to tasks and not finished yet.
    in_flight: Mutex<usize>,
    drained: Condvar,
    /// `--no-W`: where a file the destination lacks finds a basis elsewhere
    /// in the destination (see [`crate::delta::reuse`]).
    pub reuse: Option<Arc<crate::delta::reuse::Reuse>>,
    /// `--remove-source-files` with a remote sender: tell it an item is
    /// done (it removes the source) instead of removing it here.
    source_done: std::sync::OnceLock<SourceDone>,
}

/// Called for each item whose source a remote sender may now remove.
pub type SourceDone = Box<dyn Fn(&Entry) + Send + Sync>;

impl Ctx {
    /// Report a non-fatal error (exit 23 at the end, like rsync).
    pub fn error(&self, msg: String) {
        crate::report::message(&msg);
        self.raise(crate::exit::PARTIAL);
    }

    /// Raise the exit code to at least `code` (23 < 11 in priority: file I/O is fatal).
    pub fn raise(&self, code: i32) {
        let mut c = self.code.lock().unwrap();
        if *c == 0 || code == crate::exit::FILE_IO {
            *c = code;
        }
    }

    /// Stop the run (disk full and the like): rsync exits 11 right away.
    pub fn fatal(&self, msg: String) {
        crate::report::message(&msg);
        self.stop();
    }

    /// Stop the run with exit 11 without a message of our own (a failed
    /// backup: rsync's receiver exits with nothing more than its exit line).
    pub fn stop(&self) {
        self.raise(crate::exit::FILE_IO);
        self.fatal.store(true, Ordering::SeqCst);
    }

    /// `--remove-source-files`: the sender removes a source non-directory once
    /// its item is done, unless it changed since it was listed; messages and
    /// exit code as rsync's sender.
    pub fn remove_source(&self, e: &Entry) {
        if let Some(done) = self.source_done.get() {
            return done(e);
        }
        let name = crate::report::escape_name(e.name(), self.opts.eight_bit_output);
        match std::fs::symlink_metadata(e.src()) {
            Ok(m) => {
                use std::os::unix::fs::MetadataExt;
                if m.size() != e.meta.size
                    || m.mtime() != e.meta.mtime
                    || m.mtime_nsec() as u32 != e.meta.mtime_nsec
                {
                    crate::report::message_bare(&format!(
                        "ERROR: Skipping sender remove for changed file: {name}"
                    ));
                    self.raise(crate::exit::PARTIAL);
                    return;
                }
            }
            Err(err) => return self.source_remove_failed(&name, "re-lstat", &err),
        }
        match std::fs::remove_file(e.src()) {
            Ok(()) => {
                if remove_info(&self.opts) {
                    self.notes.push(format!("sender removed {name}"));
                }
            }
            Err(err) => self.source_remove_failed(&name, "remove", &err),
        }
    }

    fn source_remove_failed(&self, name: &str, op: &str, err: &std::io::Error) {
        if err.kind() == std::io::ErrorKind::NotFound {
            self.notes
                .push(format!("sender file already removed: {name}"));
        } else {
            self.error(format!(
                "[sender] sender failed to {op} {name}: {}",
                err_text(err)
            ));
        }
    }

    /// Keep what is at `dest` before a new version is renamed over it (`-b`).
    /// False when the backup failed and the new version must not go in;
    /// `fatal` stops the whole run then (exit 11), as rsync's receiver does.
    pub fn backup_before_replace(&self, dest: &Path, fatal: bool) -> bool {
        let Some(b) = &self.backups else {
            return true;
        };
        match b.make_backup(dest, false) {
            Ok(_) => true,
            Err(backup::BackupFailed) => {
                if fatal {
                    self.stop();
                }
                false
            }
        }
    }

    fn stopped(&self) -> bool {
        self.fatal.load(Ordering::Relaxed)
    }

    /// Record a file that is sent again; rsync itemizes it once more in its
    /// redo phase as a plain transfer (`>f.........`).
    pub fn redo(&self, e: &Entry, it: &Item) {
        let mut again = it.clone();
        again.flags = crate::report::ItemFlags {
            transfer: true,
            ..Default::default()
        };
        again.log = true;
        self.redone.lock().unwrap().push((e.clone(), again));
    }

    /// The copy hints for a pair of devices.
    pub fn hints(&self, key: (u64, u64)) -> Arc<crate::sys::copy::CopyHints> {
        if let Some(h) = self.hints.read().unwrap().get(&key) {
            return Arc::clone(h);
        }
        Arc::clone(self.hints.write().unwrap().entry(key).or_default())
    }
}

/// rsync's `--info=remove` level: explicit, else on from `-vv`.
pub(crate) fn remove_info(opts: &Options) -> bool {
    !opts.quiet
        && opts
            .info_level("REMOVE")
            .unwrap_or(if opts.verbose > 1 { 1 } else { 0 })
            > 0
}

/// Format an io error the way rsync does: `Text (errno)`.
pub(crate) fn err_text(e: &std::io::Error) -> String {
    crate::flist::errno_text(e)
}

/// A directory whose metadata is set at the end, bottom-up.
struct DirRec {
    entry: Entry,
    item: Item,
    /// Something inside it changed, so its mtime must be set again.
    dirty: bool,
    failed: bool,
}

/// Handle for a directory recorded with [`Applier::dir`], used to mark it
/// dirty when something inside it changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirId(usize);

/// Largest number of work items queued or running at once; bounds memory.
const MAX_IN_FLIGHT: usize = 2048;
/// Items per task at most (a batch also ends where the directory changes).
const BATCH_ITEMS: usize = 256;
/// Bytes per task before it is sent off early.
const BATCH_BYTES: u64 = 8 << 20;

/// Phase 2, fed item by item in list order by the walk.
///
/// Directories are created at once (their children come next). Files,
/// symlinks, device nodes and attribute fixes are batched, each batch sorted
/// by source inode and run on a rayon task. Hard links wait for the end,
/// after their leaders; directory metadata is set last, bottom-up.
pub struct Applier {
    ctx: Arc<Ctx>,
    batch: Vec<(Entry, Item)>,
    batch_bytes: u64,
    links: Vec<(Entry, Item)>,
    dirs: Vec<DirRec>,
    /// Directory descriptors for serial (`--progress`) applies.
    cache: DirCache,
    /// A remote sender: file data comes from the connection (see [`Fetch`]).
    fetch: Option<Box<dyn Fetch>>,
}

/// Where the data of transferred files comes from when the sender is remote.
///
/// Why: over the protocol a file's data is requested when it is planned and
/// arrives later, in request order; everything else (directories, symlinks,
/// attributes, hard links, directory metadata) is applied as for a local copy.
pub trait Fetch: Send {
    /// Ask for the data of a planned transfer (in list order, on the walk's
    /// thread); the fetcher writes it later through a [`Receive`].
    /// `shown`: with `--progress`, the item line to print with the file's
    /// progress line once it is in place.
    fn request(&mut self, e: Entry, it: Item, shown: Option<crate::report::Shown>);
    /// Wait until every requested file is in place or has failed (before
    /// hard links and directory metadata are done).
    fn finish(&mut self);
    /// `--remove-source-files`: how to tell the sender an item is done.
    fn source_done(&mut self) -> Option<SourceDone> {
        None
    }
}

/// Writes files whose data arrives from a remote sender, with the temp file,
/// metadata, backup and rename handling of a local transfer.
pub struct Receive {
    ctx: Arc<Ctx>,
    cache: DirCache,
}

impl Receive {
    /// Write `e` to `it.dest`: `fill` writes the content into the temp file
    /// (it gets the destination directory's descriptor when the work is
    /// relative to it); then metadata and rename as for a local file.
    /// Returns the bytes of the file, or None when it failed or was dropped.
    pub fn file(
        &mut self,
        e: &Entry,
        it: &Item,
        fill: &mut dyn FnMut(
            &std::fs::File,
            Option<&std::os::fd::OwnedFd>,
        ) -> std::io::Result<Filled>,
    ) -> Option<u64> {
        ensure_parent(&self.ctx, &it.dest);
        let n = file::into_place(&self.ctx, e, it, Some(&mut self.cache), fill)?;
        self.ctx.literal.fetch_add(n, Ordering::Relaxed);
        self.ctx.fetched.fetch_add(n, Ordering::Relaxed);
        Some(n)
    }

    /// `--inplace`/`--append` for a file from a remote sender: `fill`
    /// writes into the existing destination file itself (also its basis);
    /// `start` is where new data begins (the kept length for `--append`).
    /// Then metadata as for a local in-place update. Returns the bytes
    /// written, or None when it failed or was dropped.
    pub fn in_place(
        &mut self,
        e: &Entry,
        it: &Item,
        start: u64,
        fill: &mut dyn FnMut(
            &std::fs::File,
            Option<&std::os::fd::OwnedFd>,
        ) -> std::io::Result<Filled>,
    ) -> Option<u64> {
        let n = file::update_in_place(&self.ctx, e, it, fill)?.saturating_sub(start);
        self.ctx.literal.fetch_add(n, Ordering::Relaxed);
        self.ctx.fetched.fetch_add(n, Ordering::Relaxed);
        Some(n)
    }

    /// A received file is in place and verified: `--remove-source-files`
    /// may remove its source.
    pub fn placed(&self, e: &Entry, it: &Item) {
        if self.ctx.opts.remove_source_files && it.removable {
            self.ctx.remove_source(e);
        }
    }

    /// Count bytes a delta took from its basis (`--stats` "Matched data").
    pub fn matched(&self, n: u64) {
        self.ctx.matched.fetch_add(n, Ordering::Relaxed);
    }

    /// Report a non-fatal error (exit 23 at the end).
    pub fn error(&self, msg: String) {
        self.ctx.error(msg);
    }

    /// Raise the exit code class (23, 24) without a message.
    pub fn raise(&self, code: i32) {
        self.ctx.raise(code);
    }

    /// A file is sent a second time (rsync's redo phase): its line is printed
    /// again at the end.
    pub fn redo(&self, e: &Entry, it: &Item) {
        self.ctx.redo(e, it);
    }

    /// True once a fatal error stopped the transfer.
    pub fn stopped(&self) -> bool {
        self.ctx.stopped()
    }
}

impl Applier {
    /// An applier for `opts`; `temp_dir` is the resolved `--temp-dir`,
    /// `backups` the `-b` settings, `notes` where workers queue stdout lines.
    pub fn new(
        opts: &Options,
        temp_dir: Option<PathBuf>,
        umask: u32,
        backups: Option<backup::Backups>,
        notes: crate::report::Notes,
    ) -> Applier {
        Applier {
            ctx: Arc::new(Ctx {
                opts: opts.clone(),
                literal: AtomicU64::new(0),
                matched: AtomicU64::new(0),
                fetched: AtomicU64::new(0),
                code: Mutex::new(0),
                fatal: AtomicBool::new(false),
                temp_dir,
                umask,
                delayed: Mutex::new(Vec::new()),
                in_flight: Mutex::new(0),
                drained: Condvar::new(),
                hints: Default::default(),
                redone: Mutex::new(Vec::new()),
                backups,
                notes,
                reuse: None,
                source_done: std::sync::OnceLock::new(),
            }),
            batch: Vec::new(),
            batch_bytes: 0,
            links: Vec::new(),
            dirs: Vec::new(),
            cache: DirCache::default(),
            fetch: None,
        }
    }

    /// Take transferred files' data from `fetch` (a remote sender).
    pub fn set_fetch(&mut self, mut fetch: Box<dyn Fetch>) {
        if let Some(done) = fetch.source_done() {
            let _ = self.ctx.source_done.set(done);
        }
        self.fetch = Some(fetch);
    }

    /// A writer for files received from a remote sender.
    pub fn receive(&self) -> Receive {
        Receive {
            ctx: Arc::clone(&self.ctx),
            cache: DirCache::default(),
        }
    }

    /// Look for delta bases across the destination below `root` (content
    /// reuse) when this run sends deltas (`--no-W` without `-S`,
    /// `--inplace` or `--append`, not a dry run).
    pub fn with_reuse(mut self, root: Option<&Path>) -> Applier {
        let Some(root) = root else { return self };
        let o = &self.ctx.opts;
        let on = o.whole_file == Some(false)
            && !o.sparse
            && !o.inplace
            && o.append == crate::options::Append::No
            && !o.dry_run;
        if on {
            let reuse = Arc::new(crate::delta::reuse::Reuse::new(root));
            Arc::get_mut(&mut self.ctx)
                .expect("set before any work is queued")
                .reuse = Some(reuse);
        }
        self
    }

    /// The content-reuse candidates (for the deleter, which adds the files
    /// it removes).
    pub fn reuse(&self) -> Option<Arc<crate::delta::reuse::Reuse>> {
        self.ctx.reuse.clone()
    }

    /// True once a fatal error (disk full) stopped the transfer.
    pub fn stopped(&self) -> bool {
        self.ctx.stopped()
    }

    /// A directory entry: created now when needed; its metadata is set at the
    /// end. Returns its handle for [`Applier::touch`].
    pub fn dir(&mut self, e: &Entry, it: &Item) -> DirId {
        let failed = it.action == Action::MkDir && !make_dir(&self.ctx, e, it);
        if let Some(b) = &self.ctx.backups {
            let (uid, gid) = meta::wanted_owner(&self.ctx, e);
            b.plan_dir(&it.dest, it.mode, uid, gid);
        }
        self.dirs.push(DirRec {
            entry: e.clone(),
            item: it.clone(),
            dirty: false,
            failed,
        });
        DirId(self.dirs.len() - 1)
    }

    /// The `-b` settings, if backups are on.
    pub fn backups(&self) -> Option<&backup::Backups> {
        self.ctx.backups.as_ref()
    }

    /// `--remove-source-files` for an item that needs no work: remove the
    /// source now (items with work remove theirs when done).
    pub fn source_done(&self, e: &Entry, it: &Item) {
        if self.ctx.opts.remove_source_files && it.removable && it.action == Action::Nothing {
            self.ctx.remove_source(e);
        }
    }

    /// Whether creating directory `d` failed (its contents are then skipped).
    pub fn failed(&self, d: DirId) -> bool {
        self.dirs[d.0].failed
    }

    /// Something inside directory `d` changes: its times must be set again.
    pub fn touch(&mut self, d: DirId) {
        self.dirs[d.0].dirty = true;
    }

    /// Queue a non-directory item for the worker tasks.
    pub fn push(&mut self, e: Entry, it: Item) {
        match it.action {
            Action::Nothing | Action::MkDir => {}
            Action::HardLink => self.links.push((e, it)),
            Action::Transfer if self.fetch.is_some() => {
                if let Some(f) = self.fetch.as_mut() {
                    f.request(e, it, None);
                }
            }
            _ => {
                // One batch per destination directory: two workers creating
                // names in the same directory serialise on its lock (and on
                // ext4 its journal), so batches end where the directory changes.
                let new_dir = self
                    .batch
                    .last()
                    .is_some_and(|(_, last)| last.dest.parent() != it.dest.parent());
                if new_dir {
                    self.dispatch();
                }
                if it.action == Action::Transfer {
                    self.batch_bytes += e.meta.size;
                }
                self.batch.push((e, it));
                if self.batch.len() >= BATCH_ITEMS || self.batch_bytes >= BATCH_BYTES {
                    self.dispatch();
                }
            }
        }
    }

    /// Queue a remote transfer whose item line is printed with its progress
    /// line when the data is in (see [`crate::report::Printer::deferred`]).
    pub fn push_shown(&mut self, e: Entry, it: Item, shown: crate::report::Shown) {
        match self.fetch.as_mut() {
            Some(f) if it.action == Action::Transfer => f.request(e, it, Some(shown)),
            _ => self.push(e, it),
        }
    }

    /// Apply one non-directory item right now (for `--progress`); returns the
    /// bytes written, or None when it failed.
    pub fn now(&mut self, e: &Entry, it: &Item) -> Option<u64> {
        let before = self.ctx.literal.load(Ordering::Relaxed);
        let ok = match it.action {
            Action::HardLink => {
                let to = it.link.as_ref().expect("hard link has a leader");
                let ok = file::hard_link(&self.ctx, &to.dest, e, it);
                if ok && self.ctx.opts.remove_source_files && it.removable {
                    self.ctx.remove_source(e);
                }
                ok
            }
            _ => apply_one(&self.ctx, e, it, &mut self.cache),
        };
        ok.then(|| self.ctx.literal.load(Ordering::Relaxed) - before)
    }

    fn dispatch(&mut self) {
        if self.batch.is_empty() {
            return;
        }
        let mut batch = std::mem::take(&mut self.batch);
        self.batch_bytes = 0;
        batch.sort_by_key(|(e, _)| e.meta.ino);
        let n = batch.len();
        {
            let mut f = self.ctx.in_flight.lock().unwrap();
            while *f + n > MAX_IN_FLIGHT && *f > 0 {
                f = self.ctx.drained.wait(f).unwrap();
            }
            *f += n;
        }
        let ctx = Arc::clone(&self.ctx);
        rayon::spawn(move || {
            let mut cache = DirCache::default();
            for (e, it) in &batch {
                if !ctx.stopped() {
                    apply_one(&ctx, e, it, &mut cache);
                }
            }
            drop(batch);
            let mut f = ctx.in_flight.lock().unwrap();
            *f -= n;
            ctx.drained.notify_all();
        });
    }

    fn drain(&mut self) {
        self.dispatch();
        let mut f = self.ctx.in_flight.lock().unwrap();
        while *f > 0 {
            f = self.ctx.drained.wait(f).unwrap();
        }
    }

    /// Wait for the workers, make the hard links and move delayed updates
    /// into place: everything but directory metadata, so that a late
    /// deletion pass (`--delete-after`) still runs before directory times are
    /// set, as in rsync.
    pub fn settle(&mut self) {
        self.drain();
        if let Some(f) = self.fetch.as_mut() {
            f.finish();
        }
        let ctx = Arc::clone(&self.ctx);
        for (e, it) in std::mem::take(&mut self.links) {
            if ctx.stopped() {
                break;
            }
            if let Some(to) = &it.link {
                if file::hard_link(&ctx, &to.dest, &e, &it)
                    && ctx.opts.remove_source_files
                    && it.removable
                {
                    ctx.remove_source(&e);
                }
            }
        }
        finish_delayed(&ctx);
    }

    /// [`Applier::settle`], then set directory metadata bottom-up.
    pub fn finish(mut self) -> Outcome {
        self.settle();
        let ctx = Arc::clone(&self.ctx);
        // Runs even after a fatal error so that created directories get their
        // final permissions and times, as rsync leaves them.
        for d in self.dirs.iter().rev() {
            if d.failed {
                continue;
            }
            meta::set_dir_meta(&ctx, &d.entry, &d.item, d.dirty);
        }
        let code = *ctx.code.lock().unwrap();
        Outcome {
            literal: ctx.literal.load(Ordering::Relaxed),
            fetched: ctx.fetched.load(Ordering::Relaxed),
            matched: ctx.matched.load(Ordering::Relaxed),
            code,
            redone: std::mem::take(&mut *ctx.redone.lock().unwrap()),
        }
    }
}

/// `--delay-updates`: move every parked file into place, then drop the
/// `.~tmp~` directories.
fn finish_delayed(ctx: &Ctx) {
    let delayed = std::mem::take(&mut *ctx.delayed.lock().unwrap());
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (parked, dest) in delayed {
        if !ctx.backup_before_replace(&dest, true) {
            break;
        }
        if let Err(err) = std::fs::rename(&parked, &dest) {
            ctx.error(format!(
                "[receiver] rename \"{}\" -> \"{}\": {}",
                crate::report::abs_display(&parked),
                crate::report::abs_display(&dest),
                err_text(&err)
            ));
        }
        if let Some(p) = parked.parent() {
            if !dirs.iter().any(|d| d == p) {
                dirs.push(p.to_path_buf());
            }
        }
    }
    for d in dirs {
        let _ = std::fs::remove_dir(d);
    }
}

/// With `-R --no-implied-dirs` a parent may be missing: rsync creates it with
/// default attributes.
fn ensure_parent(ctx: &Ctx, dest: &Path) {
    if ctx.opts.relative && !ctx.opts.implied_dirs {
        if let Some(p) = dest.parent() {
            if !p.as_os_str().is_empty() && !p.exists() {
                let _ = std::fs::create_dir_all(p);
            }
        }
    }
}

fn make_dir(ctx: &Ctx, e: &Entry, it: &Item) -> bool {
    ensure_parent(ctx, &it.dest);
    if it.replace {
        if let (Some(b), Some(d)) = (&ctx.backups, it.dest_meta) {
            if d.kind != crate::flist::Kind::Dir && b.delete_file(&it.dest).is_err() {
                // rsync's delete_item for a non-directory in the way, with -b.
                crate::report::message_bare(
                    "*** Skipping any contents from this failed directory ***",
                );
                ctx.raise(crate::exit::PARTIAL);
                return false;
            }
        }
        if let Err(err) = remove_non_dir_or_empty(&it.dest) {
            ctx.error(format!(
                "cannot delete non-empty directory: {}: {}",
                crate::report::escape_name(e.name(), ctx.opts.eight_bit_output),
                err_text(&err)
            ));
            return false;
        }
    }
    // Writable for us while we fill it; final perms are set bottom-up later.
    use std::os::unix::fs::DirBuilderExt;
    match std::fs::DirBuilder::new().mode(0o700).create(&it.dest) {
        Ok(()) => true,
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && it.dest.is_dir() => true,
        Err(err) => {
            ctx.error(format!(
                "[generator] recv_generator: mkdir \"{}\" failed: {}",
                crate::report::abs_display(&it.dest),
                err_text(&err)
            ));
            crate::report::message_bare("*** Skipping any contents from this failed directory ***");
            false
        }
    }
}

/// Remove whatever is at `p` so a new entry of another type can take its place.
/// Directories are only removed when empty (rsync needs `--force` or a delete mode
/// for more).
pub(crate) fn remove_non_dir_or_empty(p: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(p) {
        Ok(m) if m.is_dir() => std::fs::remove_dir(p),
        Ok(_) => std::fs::remove_file(p),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

fn apply_one(ctx: &Ctx, e: &Entry, it: &Item, cache: &mut DirCache) -> bool {
    let ok = apply_item(ctx, e, it, cache);
    if ok && ctx.opts.remove_source_files && it.removable {
        ctx.remove_source(e);
    }
    ok
}

fn apply_item(ctx: &Ctx, e: &Entry, it: &Item, cache: &mut DirCache) -> bool {
    ensure_parent(ctx, &it.dest);
    match it.action {
        Action::Transfer => match file::transfer(ctx, e, it, cache) {
            Some(n) => {
                ctx.literal.fetch_add(n, Ordering::Relaxed);
                true
            }
            None => false,
        },
        Action::Symlink => file::make_symlink(ctx, e, it),
        Action::Mknod => file::make_node(ctx, e, it),
        Action::Attrs => meta::fix_attrs(ctx, e, it),
        Action::LinkBasis => file::link_basis(ctx, e, it, cache),
        Action::CopyBasis => file::copy_basis(ctx, e, it, cache),
        Action::Unlink => {
            // --compare-dest found the file unchanged in a reference
            // directory. A non-file in the way is deleted as rsync deletes to
            // make room (with -b, backed up); a stale copy is just removed.
            let file = it
                .dest_meta
                .is_some_and(|d| d.kind == crate::flist::Kind::File);
            match &ctx.backups {
                Some(b) if !file => b.delete_file(&it.dest).is_ok(),
                _ => {
                    let _ = std::fs::remove_file(&it.dest);
                    true
                }
            }
        }
        Action::Nothing | Action::MkDir | Action::HardLink => true,
    }
}

/// Open directory descriptors of the last source and destination directories
/// used by one worker: files of a batch mostly share them, and opening,
/// creating and renaming relative to a descriptor skips walking the whole
/// path three times per file.
#[derive(Default)]
pub(crate) struct DirCache {
    src: Option<(PathBuf, std::os::fd::OwnedFd)>,
    dst: Option<(PathBuf, std::os::fd::OwnedFd)>,
}

impl DirCache {
    fn get<'a>(
        slot: &'a mut Option<(PathBuf, std::os::fd::OwnedFd)>,
        dir: &Path,
    ) -> Option<&'a std::os::fd::OwnedFd> {
        if slot.as_ref().is_none_or(|(p, _)| p != dir) {
            *slot = crate::sys::meta::open_dir(dir)
                .ok()
                .map(|fd| (dir.to_path_buf(), fd));
        }
        slot.as_ref().map(|(_, fd)| fd)
    }

    /// The directory holding source file `p`.
    pub fn src_of(&mut self, p: &Path) -> Option<&std::os::fd::OwnedFd> {
        Self::get(
            &mut self.src,
            p.parent().filter(|d| !d.as_os_str().is_empty())?,
        )
    }

    /// The directory holding destination file `p`.
    pub fn dst_of(&mut self, p: &Path) -> Option<&std::os::fd::OwnedFd> {
        Self::get(
            &mut self.dst,
            p.parent().filter(|d| !d.as_os_str().is_empty())?,
        )
    }
}

/// A temp name in `dir` for `name`, rsync style: `.NAME.XXXXXX`.
pub(crate) fn temp_path(dir: &Path, name: &std::ffi::OsStr, attempt: u32) -> PathBuf {
    use std::os::unix::ffi::OsStrExt;
    let mut n = name.as_bytes().to_vec();
    // Keep the whole name within NAME_MAX (255) as rsync does.
    if n.len() > 255 - 9 {
        n.truncate(255 - 9);
    }
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let seq = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id() as u64;
    let mut x =
        (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (pid << 20) ^ attempt as u64) & 0x3f_ffff_ffff;
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut suffix = [0u8; 6];
    for s in &mut suffix {
        *s = alphabet[(x % 62) as usize];
        x /= 62;
    }
    let mut out = Vec::with_capacity(n.len() + 8);
    out.push(b'.');
    out.extend_from_slice(&n);
    out.push(b'.');
    out.extend_from_slice(&suffix);
    dir.join(std::ffi::OsStr::from_bytes(&out))
}
