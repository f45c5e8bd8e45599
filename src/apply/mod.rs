//! Phase 2: carry out the plan.
//!
//! Directories are created first, in list order (parents before children). Files,
//! symlinks and device nodes are then written in parallel on rayon, sorted by
//! source inode so reads walk the source disk in order. Every file is written to a
//! temp file in its destination directory, given its metadata, and renamed over
//! the old one, so a destination file is always the old or the new version (unless
//! `--inplace`/`--append`). Hard links follow their leaders; directory metadata is
//! set last, bottom-up, so that writing into a directory cannot disturb its mtime.

mod file;
mod meta;

use crate::flist::{Entry, FileList, Kind};
use crate::options::Options;
use crate::plan::{Action, Item, Plan};
use rayon::prelude::*;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What phase 2 reports back for `--stats` and the exit code.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Bytes of file data written.
    pub literal: u64,
    /// Highest-priority exit code class met (0, 11, 23, 24).
    pub code: i32,
}

/// Shared state of one apply run.
pub(crate) struct Ctx<'a> {
    pub opts: &'a Options,
    literal: AtomicU64,
    code: Mutex<i32>,
    fatal: AtomicBool,
    /// `--temp-dir`, resolved against the destination root when relative.
    pub temp_dir: Option<PathBuf>,
    /// `--delay-updates`: finished files parked in `.~tmp~`, renamed at the end.
    delayed: Mutex<Vec<(PathBuf, PathBuf)>>,
}

impl Ctx<'_> {
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
        self.raise(crate::exit::FILE_IO);
        self.fatal.store(true, Ordering::SeqCst);
    }

    fn stopped(&self) -> bool {
        self.fatal.load(Ordering::Relaxed)
    }
}

/// Format an io error the way rsync does: `Text (errno)`.
pub(crate) fn err_text(e: &std::io::Error) -> String {
    crate::flist::errno_text(e)
}

/// Called around each entry when phase 2 runs serially (`--progress`): `before`
/// prints the entry's line, `after` its progress line with the bytes written.
pub trait Serial {
    /// Before entry `i` is applied.
    fn before(&mut self, i: usize);
    /// After entry `i` was applied; `written` is None when it failed.
    fn after(&mut self, i: usize, written: Option<u64>);
}

/// Execute `plan` for `flist`. With `serial`, entries are applied one at a time
/// in print order so per-file output can interleave with the work.
pub fn apply(
    flist: &FileList,
    plan: &Plan,
    opts: &Options,
    temp_dir: Option<&Path>,
    serial: Option<&mut dyn Serial>,
) -> Outcome {
    let ctx = Ctx {
        opts,
        literal: AtomicU64::new(0),
        code: Mutex::new(0),
        fatal: AtomicBool::new(false),
        delayed: Mutex::new(Vec::new()),
        temp_dir: temp_dir.map(Path::to_path_buf),
    };
    let entries = &flist.entries;
    let items = &plan.items;

    // Directories whose contents change and whose times must be set again.
    let mut dirty: HashSet<&Path> = HashSet::new();
    for it in items.iter() {
        if it.action != Action::Nothing {
            if let Some(p) = it.dest.parent() {
                dirty.insert(p);
            }
        }
    }

    let done: Vec<AtomicBool> = (0..entries.len()).map(|_| AtomicBool::new(false)).collect();
    let mut failed_dirs: HashSet<usize> = HashSet::new();
    if let Some(serial) = serial {
        for &i in &plan.print_order {
            if ctx.stopped() {
                break;
            }
            let (e, it) = (&entries[i], &items[i]);
            serial.before(i);
            let before = ctx.literal.load(Ordering::Relaxed);
            let ok = match it.action {
                Action::MkDir => make_dir(&ctx, e, it),
                Action::HardLink { leader } => file::hard_link(&ctx, &items[leader].dest, e, it),
                _ if e.meta.kind == Kind::Dir => true,
                _ => apply_one(&ctx, e, it),
            };
            if !ok && e.meta.kind == Kind::Dir {
                failed_dirs.insert(i);
            }
            done[i].store(ok, Ordering::Relaxed);
            let written = ctx.literal.load(Ordering::Relaxed) - before;
            serial.after(i, ok.then_some(written));
        }
        finish_delayed(&ctx);
        finish_dirs(&ctx, entries, items, &dirty, &failed_dirs);
        return outcome(&ctx);
    }

    // 1. Directories, in order.
    for (i, (e, it)) in entries.iter().zip(items).enumerate() {
        if it.action == Action::MkDir && !make_dir(&ctx, e, it) {
            failed_dirs.insert(i);
        }
        if ctx.stopped() {
            break;
        }
    }

    // 2. Files, symlinks, nodes and attribute fixes, in parallel by source inode.
    let mut work: Vec<usize> = (0..entries.len())
        .filter(|&i| {
            entries[i].meta.kind != Kind::Dir
                && !matches!(items[i].action, Action::Nothing | Action::HardLink { .. })
        })
        .collect();
    work.sort_by_key(|&i| entries[i].meta.ino);
    work.par_iter().for_each(|&i| {
        if ctx.stopped() {
            return;
        }
        let ok = apply_one(&ctx, &entries[i], &items[i]);
        done[i].store(ok, Ordering::Relaxed);
    });

    // 3. Hard links, after their leaders.
    for (i, it) in items.iter().enumerate() {
        if let Action::HardLink { leader } = it.action {
            if ctx.stopped() {
                break;
            }
            let leader_ok = items[leader].action == Action::Nothing
                || done[leader].load(Ordering::Relaxed);
            if leader_ok {
                file::hard_link(&ctx, &items[leader].dest, &entries[i], it);
            }
        }
    }

    finish_delayed(&ctx);
    finish_dirs(&ctx, entries, items, &dirty, &failed_dirs);
    outcome(&ctx)
}

/// `--delay-updates`: move every parked file into place, then drop the
/// `.~tmp~` directories.
fn finish_delayed(ctx: &Ctx) {
    let delayed = std::mem::take(&mut *ctx.delayed.lock().unwrap());
    let mut dirs: Vec<PathBuf> = Vec::new();
    for (parked, dest) in delayed {
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

fn outcome(ctx: &Ctx) -> Outcome {
    let code = *ctx.code.lock().unwrap();
    Outcome {
        literal: ctx.literal.load(Ordering::Relaxed),
        code,
    }
}

/// Step 4: directory metadata, bottom-up, once their contents are in place.
fn finish_dirs(
    ctx: &Ctx,
    entries: &[Entry],
    items: &[Item],
    dirty: &HashSet<&Path>,
    failed_dirs: &HashSet<usize>,
) {
    // Runs even after a fatal error so that created directories get their
    // final permissions and times, as rsync leaves them.
    {
        for (i, (e, it)) in entries.iter().zip(items).enumerate().rev() {
            if e.meta.kind != Kind::Dir || failed_dirs.contains(&i) {
                continue;
            }
            let is_dirty = dirty.contains(it.dest.as_path());
            if it.action != Action::Nothing || is_dirty {
                meta::set_dir_meta(ctx, e, it, it.action != Action::Nothing);
            }
        }
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
        if let Err(err) = remove_non_dir_or_empty(&it.dest) {
            ctx.error(format!(
                "cannot delete non-empty directory: {}: {}",
                crate::report::escape_name(&e.name, ctx.opts.eight_bit_output),
                err_text(&err)
            ));
            return false;
        }
    }
    match std::fs::create_dir(&it.dest) {
        Ok(()) => {
            // Writable for us while we fill it; final perms are set bottom-up later.
            let _ = crate::sys::meta::chmod(&it.dest, 0o700);
            true
        }
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists && it.dest.is_dir() => true,
        Err(err) => {
            ctx.error(format!(
                "[receiver] mkdir \"{}\" failed: {}",
                crate::report::abs_display(&it.dest),
                err_text(&err)
            ));
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

fn apply_one(ctx: &Ctx, e: &Entry, it: &Item) -> bool {
    ensure_parent(ctx, &it.dest);
    match it.action {
        Action::Transfer => match file::transfer(ctx, e, it) {
            Some(n) => {
                ctx.literal.fetch_add(n, Ordering::Relaxed);
                true
            }
            None => false,
        },
        Action::Symlink => file::make_symlink(ctx, e, it),
        Action::Mknod => file::make_node(ctx, e, it),
        Action::Attrs => meta::fix_attrs(ctx, e, it),
        Action::Nothing | Action::MkDir | Action::HardLink { .. } => true,
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
    let mut x = (seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ (pid << 20) ^ attempt as u64) & 0x3f_ffff_ffff;
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
