//! `--delete`: removing destination entries the source does not have, as
//! rsync's generator does (`delete_in_dir`, `delete_item`,
//! `delete_dir_contents`).
//!
//! For each directory of the transfer, the destination's entries that are
//! not in the source listing and not excluded by the receiver's rules
//! (protect, plain excludes unless `--delete-excluded`) are removed, last
//! name first; a directory's contents go first, and an entry excluded by a
//! non-perishable rule keeps its directory ("cannot delete non-empty
//! directory"). `--max-delete` stops deletions (exit 25); a sender I/O error
//! stops them unless `--ignore-errors`.

use crate::filter::DirFilters;
use crate::flist::{Kind, Meta};
use crate::options::{Delete, Options};
use crate::report::{Printer, Stats};
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// Where deletions report to: the printer, the stats, and the backups to
/// make of deleted files (`-b`).
pub(super) struct Out<'a, 'p> {
    /// Lines (`deleting X`, notices).
    pub out: &'a mut Printer<'p>,
    /// Deletion counts.
    pub stats: &'a mut Stats,
    /// `-b`: deleted files are backed up first.
    pub backups: Option<&'a crate::apply::backup::Backups>,
}

/// How deleting one item ended (rsync's `enum delret`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Ret {
    Success,
    Failure,
    AtLimit,
    NotEmpty,
}

/// A directory whose deletions wait for the end (`--delete-after`,
/// `--delete-delay`).
struct Later {
    /// The destination directory.
    abs: PathBuf,
    /// Its name relative to the destination root.
    rel: PathBuf,
    /// Names the source has there.
    keep: Vec<Box<[u8]>>,
    /// The receiver's rules for its contents.
    filt: Option<DirFilters>,
    /// A top directory of the transfer (rsync's `FLAG_TOP_DIR`).
    top: bool,
    /// The matching source directory (for `.gitignore`).
    src: PathBuf,
}

/// Deletion state for one transfer.
pub(super) struct Deleter {
    when: Delete,
    dry_run: bool,
    ignore_errors: bool,
    force: bool,
    /// `--debug=filter`: name the rule that protects (or risks) an entry.
    debug_filter: bool,
    /// `--debug=del` (`-vv`): a deletion pass names each top directory.
    info_del2: bool,
    /// `--max-delete`: None is unlimited.
    max: Option<u64>,
    /// Deletions refused by the limit.
    skipped: u64,
    /// The "IO error encountered" notice was printed.
    warned: bool,
    later: Vec<Later>,
    /// Exit code class of failures (23).
    pub(super) code: i32,
    /// `--no-W`: regular files deleted are kept open as delta bases for
    /// files moved away from them (see [`crate::delta::reuse`]).
    pub(super) reuse: Option<std::sync::Arc<crate::delta::reuse::Reuse>>,
}

impl Deleter {
    /// The deleter for `opts`, or None without `--delete`.
    pub(super) fn new(opts: &Options) -> Option<Deleter> {
        if opts.delete == Delete::Off && !opts.force && opts.missing_args != 2 {
            return None;
        }
        Some(Deleter {
            when: opts.delete,
            dry_run: opts.dry_run,
            ignore_errors: opts.ignore_errors,
            force: opts.force,
            debug_filter: opts.debug_level("FILTER") > 0,
            info_del2: !opts.quiet && opts.debug_level("DEL") > 0,
            max: opts.max_delete.map(|m| m.max(0) as u64),
            skipped: 0,
            warned: false,
            later: Vec::new(),
            code: 0,
            reuse: None,
        })
    }

    /// Only `--force` (directories in the way), no `--delete`.
    pub(super) fn when_is_off(&self) -> bool {
        self.when == Delete::Off
    }

    /// Whether the walk finds the deletions (all but `--delete-before`).
    pub(super) fn during_walk(&self) -> bool {
        matches!(self.when, Delete::During | Delete::After | Delete::Delay)
    }

    /// Whether deletions wait for the end of the transfer.
    pub(super) fn deferred(&self) -> bool {
        matches!(self.when, Delete::After | Delete::Delay)
    }

    /// Delete (or, for `--delete-after`/`--delete-delay`, remember) the
    /// entries of destination directory `abs` (named `rel`) that are not in
    /// `keep` (sorted). `io_error`: the sender has reported an I/O error.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn in_dir(
        &mut self,
        abs: &Path,
        rel: &Path,
        keep: Vec<Box<[u8]>>,
        filt: Option<&DirFilters>,
        io_error: bool,
        top: bool,
        src: &Path,
        o: &mut Out,
    ) -> Option<bool> {
        if io_error && !self.ignore_errors {
            if !self.warned {
                o.out.raw("IO error encountered -- skipping file deletion");
                self.warned = true;
            }
            return None;
        }
        if matches!(self.when, Delete::After | Delete::Delay) {
            self.later.push(Later {
                abs: abs.to_path_buf(),
                rel: rel.to_path_buf(),
                keep,
                filt: filt.cloned(),
                top,
                src: src.to_path_buf(),
            });
            return None;
        }
        Some(self.dir_now(abs, rel, &keep, filt, o))
    }

    /// Whether `--debug=filter` lines are wanted (every name is judged).
    pub(super) fn debugs_filter(&self) -> bool {
        self.debug_filter
    }

    /// The remembered deletions (`--delete-after`, `--delete-delay`).
    /// `root` is the receiver's rules at the destination root: with
    /// `--delete-after` each directory's rules are read again, since the
    /// transfer may have brought new per-directory merge files.
    pub(super) fn finish(&mut self, root: Option<&DirFilters>, o: &mut Out) {
        let mut fresh: std::collections::HashMap<PathBuf, DirFilters> =
            std::collections::HashMap::new();
        for l in std::mem::take(&mut self.later) {
            if l.top && self.when == Delete::After {
                self.pass_notice(&l.rel, o);
            }
            let filt = match (self.when, root, l.filt) {
                (Delete::After, Some(root), Some(_)) => {
                    let parent = l
                        .rel
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .and_then(|p| fresh.get(p))
                        .unwrap_or(root);
                    let f = parent.enter_from(&l.abs, &l.src);
                    fresh.insert(l.rel.clone(), f.clone());
                    Some(f)
                }
                (_, _, f) => f,
            };
            self.dir_now(&l.abs, &l.rel, &l.keep, filt.as_ref(), o);
        }
    }

    /// `deleting in DIR`: rsync's `-vv` line as a deletion pass reaches a top
    /// directory.
    pub(super) fn pass_notice(&self, rel: &Path, o: &mut Out) {
        if self.info_del2 {
            o.out.raw(&format!(
                "deleting in {}",
                crate::report::escape_name(rel, false)
            ));
        }
    }

    /// rsync's closing warning when `--max-delete` stopped deletions, and
    /// the exit code it implies (25).
    pub(super) fn summary(&self) -> i32 {
        if self.skipped > 0 {
            crate::report::message_bare(&format!(
                "Deletions stopped due to --max-delete limit ({} skipped)",
                self.skipped
            ));
            return crate::exit::DEL_LIMIT;
        }
        0
    }

    fn dir_now(
        &mut self,
        abs: &Path,
        rel: &Path,
        keep: &[Box<[u8]>],
        filt: Option<&DirFilters>,
        o: &mut Out,
    ) -> bool {
        let mut notes = Vec::new();
        let mut kept = false;
        let extra = listing_with(
            abs,
            rel,
            filt,
            false,
            &|n| keep.binary_search_by(|k| k.as_ref().cmp(n)).is_ok(),
            &mut kept,
            self.debug_filter.then_some(&mut notes),
        );
        for n in notes {
            o.out.raw(&n);
        }
        // The destination held exactly the listed names (what the rescan
        // manifest records as complete).
        let exact = extra.is_empty() && !kept;
        for (name, meta) in extra.into_iter().rev() {
            let a = abs.join(&name);
            let r = child(rel, &name);
            self.item(&a, &r, &meta, filt, false, o);
        }
        exact
    }

    /// `--delete-missing-args`: delete `abs` (named `rel`), whatever it is.
    pub(super) fn delete_path(&mut self, abs: &Path, rel: &Path, o: &mut Out) {
        if let Ok(md) = std::fs::symlink_metadata(abs) {
            let meta = Meta::from_std(&md);
            // Without --delete or --force a directory goes only when empty.
            let recurse = self.when != Delete::Off || self.force;
            if meta.kind == Kind::Dir
                && !recurse
                && std::fs::read_dir(abs).is_ok_and(|mut r| r.next().is_some())
            {
                o.out.raw(&format!(
                    "cannot delete non-empty directory: {}",
                    crate::report::escape_name(rel, false)
                ));
                return;
            }
            self.item(abs, rel, &meta, None, false, o);
        }
    }

    /// Remove the directory `abs` (named `rel`) where a non-directory must go,
    /// as rsync's `delete_item(DEL_MAKE_ROOM)`: its contents are deleted
    /// (and reported), the directory itself silently. False when something
    /// (an excluded entry) keeps it.
    pub(super) fn make_room(
        &mut self,
        abs: &Path,
        rel: &Path,
        filt: Option<&DirFilters>,
        o: &mut Out,
    ) -> bool {
        let inner = filt.map(|f| f.enter(abs));
        if self.contents(abs, rel, inner.as_ref(), o) != Ret::Success {
            return false;
        }
        if self.dry_run {
            return true;
        }
        match std::fs::remove_dir(abs) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                o.out.raw(&format!(
                    "cannot delete non-empty directory: {}",
                    crate::report::escape_name(rel, false)
                ));
                false
            }
            Err(e) => {
                crate::report::message(&format!(
                    "delete_file: rmdir({}) failed: {}",
                    crate::report::escape_name(rel, false),
                    crate::flist::errno_text(&e)
                ));
                false
            }
        }
    }

    /// rsync's `delete_item`; `in_empty`: called from `delete_dir_contents`
    /// (the contents were handled already).
    #[allow(clippy::too_many_arguments)]
    fn item(
        &mut self,
        abs: &Path,
        rel: &Path,
        meta: &Meta,
        filt: Option<&DirFilters>,
        in_empty: bool,
        o: &mut Out,
    ) -> Ret {
        if meta.kind == Kind::Dir && !in_empty {
            let inner = filt.map(|f| f.enter(abs));
            let r = self.contents(abs, rel, inner.as_ref(), o);
            if r == Ret::NotEmpty || r == Ret::AtLimit {
                return r;
            }
        }
        if let Some(m) = self.max {
            if o.stats.deleted.total() >= m {
                self.skipped += 1;
                return Ret::AtLimit;
            }
        }
        let (what, res) = if self.dry_run {
            ("unlink", Ok(()))
        } else if meta.kind == Kind::Dir {
            ("rmdir", std::fs::remove_dir(abs))
        } else if let Some(b) = o.backups {
            // -b: rsync backs the file up instead (the backup code prints
            // its own failures).
            match b.delete_file(abs) {
                Ok(_) => ("make_backup", Ok(())),
                Err(_) => return Ret::Failure,
            }
        } else {
            if let (Some(r), Kind::File) = (&self.reuse, meta.kind) {
                r.keep_deleted(abs, meta.size);
            }
            ("unlink", std::fs::remove_file(abs))
        };
        match res {
            Ok(()) => {
                o.out.deleted(rel, meta);
                o.stats.deleted.add(meta.kind);
                Ret::Success
            }
            Err(e) if meta.kind == Kind::Dir && e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                o.out.raw(&format!(
                    "cannot delete non-empty directory: {}",
                    crate::report::escape_name(rel, false)
                ));
                Ret::NotEmpty
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ret::Success,
            Err(e) => {
                crate::report::message(&format!(
                    "delete_file: {what}({}) failed: {}",
                    crate::report::escape_name(rel, false),
                    crate::flist::errno_text(&e)
                ));
                self.code = crate::exit::PARTIAL;
                Ret::Failure
            }
        }
    }

    /// rsync's `delete_dir_contents`: everything inside `abs` that no
    /// non-perishable rule excludes, deepest first.
    fn contents(&mut self, abs: &Path, rel: &Path, filt: Option<&DirFilters>, o: &mut Out) -> Ret {
        let mut kept = false;
        let mut notes = Vec::new();
        let entries = listing_with(
            abs,
            rel,
            filt,
            true,
            &|_| false,
            &mut kept,
            self.debug_filter.then_some(&mut notes),
        );
        for n in notes {
            o.out.raw(&n);
        }
        let mut ret = if kept { Ret::NotEmpty } else { Ret::Success };
        for (name, meta) in entries.into_iter().rev() {
            let a = abs.join(&name);
            let r = child(rel, &name);
            if meta.kind == Kind::Dir {
                let inner = filt.map(|f| f.enter(&a));
                if self.contents(&a, &r, inner.as_ref(), o) != Ret::Success {
                    ret = Ret::NotEmpty;
                }
            }
            if self.item(&a, &r, &meta, filt, true, o) != Ret::Success {
                ret = Ret::NotEmpty;
            }
        }
        if ret == Ret::NotEmpty {
            o.out.raw(&format!(
                "cannot delete non-empty directory: {}",
                crate::report::escape_name(rel, false)
            ));
        }
        ret
    }
}

/// `rel/name`, or `name` at the root.
fn child(rel: &Path, name: &OsStr) -> PathBuf {
    if rel.as_os_str() == "." || rel.as_os_str().is_empty() {
        PathBuf::from(name)
    } else {
        rel.join(name)
    }
}

/// The entries of `abs` (not in `keep`, not excluded), in rsync's list
/// order (files by name, then directories).
/// The entries of `abs` (not in `keep`, not excluded), in rsync's list
/// order (files by name, then directories). `kept`: something was excluded;
/// `notes`: `--debug=filter` lines, when given.
fn listing_with(
    abs: &Path,
    rel: &Path,
    filt: Option<&DirFilters>,
    skip_perishable: bool,
    keep: &dyn Fn(&[u8]) -> bool,
    kept: &mut bool,
    notes: Option<&mut Vec<String>>,
) -> Vec<(std::ffi::OsString, Meta)> {
    let mut notes = notes;
    let Ok(rd) = std::fs::read_dir(abs) else {
        return Vec::new();
    };
    let mut v = Vec::new();
    for de in rd.flatten() {
        let name = de.file_name();
        // With --debug=filter every entry is judged (rsync's generator lists
        // the whole directory through its rules); otherwise only extras.
        let kept_by_source = keep(name.as_bytes());
        if kept_by_source && notes.is_none() {
            continue;
        }
        let Ok(md) = std::fs::symlink_metadata(de.path()) else {
            continue;
        };
        let meta = Meta::from_std(&md);
        if let Some(f) = filt {
            let r = child(rel, &name);
            let n = r.as_os_str().as_bytes();
            let is_dir = meta.kind == Kind::Dir;
            let excluded = match notes.as_deref_mut() {
                Some(notes) => {
                    let (excluded, why) = f.explain_with(n, is_dir, skip_perishable);
                    if let Some(why) = why {
                        notes.push(format!(
                            "[generator] {} {} {} because of pattern {why}",
                            if excluded { "protecting" } else { "risking" },
                            if is_dir { "directory" } else { "file" },
                            crate::report::escape_bytes(n, false)
                        ));
                    }
                    excluded
                }
                None if skip_perishable => f.excluded_nonperishable(n, is_dir),
                None => f.excluded(n, is_dir),
            };
            if excluded {
                *kept = true;
                continue;
            }
        }
        if kept_by_source {
            continue;
        }
        v.push((name, meta));
    }
    v.sort_by(|a, b| {
        let (da, db) = (a.1.kind == Kind::Dir, b.1.kind == Kind::Dir);
        da.cmp(&db).then_with(|| {
            if da {
                crate::flist::cmp_as_dirs(a.0.as_bytes(), b.0.as_bytes())
            } else {
                a.0.as_bytes().cmp(b.0.as_bytes())
            }
        })
    });
    v
}
