//! rsync's backups (`-b`, `--backup-dir`, `--suffix`).
//!
//! Whatever rsync would replace or delete on the receiver is first kept
//! under a backup name: `NAME~` beside it, or `DIR/NAME` (plus `--suffix`)
//! in a tree below `--backup-dir`, whose missing directories are created
//! with the modes and owners of the destination directories they mirror.
//! rsync's `make_backup` is followed: a hard link (or, when the caller
//! prefers it, a rename of a symlink or device), then a copy when linking is
//! not possible; an older backup of the same name is replaced.
//!
//! The same [`Backups`] serves replacements (the transfer code calls
//! [`Backups::make_backup`] just before it renames a new version into place,
//! so the destination name always holds the old or the new version) and
//! deletions ([`Backups::delete_file`], for the `--delete` family).

use crate::options::Options;
use crate::report::Notes;
use std::ffi::OsString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What [`Backups::make_backup`] did with the original.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kept {
    /// There was nothing at the path (nothing to keep; not an error).
    Absent,
    /// The original was moved to the backup name; the path is free now.
    Moved,
    /// The backup is a hard link or copy; the original is still in place
    /// (a caller that deletes must still remove it).
    Duplicated,
}

/// A backup that could not be made. rsync stops a transfer on it (exit 11)
/// and refuses a deletion; the messages rsync prints, if any, are printed.
#[derive(Debug)]
pub struct BackupFailed;

/// The backup settings of one transfer, shared by the worker tasks.
pub struct Backups {
    /// The destination directory: names are backed up relative to it.
    root: PathBuf,
    /// `root` made absolute.
    root_abs: PathBuf,
    /// `--backup-dir` resolved against `root`, with its display prefix
    /// (the option's value with a trailing `/`, as rsync prints it).
    dir: Option<(PathBuf, Vec<u8>)>,
    suffix: OsString,
    /// Print `backed up X to Y` (`--info=backup`, `-vv`).
    info: bool,
    eight_bit: bool,
    /// Preserve owner (`-o`, as root) / group (`-g`) / mtime (`-t`) on
    /// directories created in the backup tree.
    owner: bool,
    group: bool,
    times: bool,
    notes: Notes,
    /// The attributes the walk gave destination directories (mode, owner,
    /// group as preserved), by path: rsync's generator has set them by the
    /// time its receiver mirrors a directory into the backup tree, while ours
    /// are only applied at the end.
    planned: std::sync::Mutex<std::collections::HashMap<PathBuf, PlannedDir>>,
}

/// A destination directory's attributes as the transfer will leave them.
#[derive(Clone, Copy)]
struct PlannedDir {
    mode: u32,
    uid: Option<u32>,
    gid: Option<u32>,
}

/// rsync's `--info=backup` level: explicit, else on from `-vv`.
pub fn backup_info(opts: &Options) -> bool {
    !opts.quiet
        && opts
            .info_level("BACKUP")
            .unwrap_or(if opts.verbose > 1 { 1 } else { 0 })
            > 0
}

impl Backups {
    /// The backups of a transfer into destination directory `root`, or None
    /// without `-b`. `notes` receives the `backed up` lines.
    pub fn new(opts: &Options, root: &Path, notes: Notes) -> Option<Backups> {
        if !opts.backup {
            return None;
        }
        let dir = opts.backup_dir.as_ref().map(|d| {
            let p = Path::new(d);
            let resolved = if p.is_absolute() {
                p.to_path_buf()
            } else {
                root.join(p)
            };
            let mut shown = d.as_bytes().to_vec();
            if shown.last() != Some(&b'/') {
                shown.push(b'/');
            }
            (resolved, shown)
        });
        Some(Backups {
            root: root.to_path_buf(),
            root_abs: std::path::absolute(root).unwrap_or_else(|_| root.to_path_buf()),
            dir,
            suffix: opts.backup_suffix(),
            info: backup_info(opts),
            eight_bit: opts.eight_bit_output,
            owner: opts.owner && opts.am_root,
            group: opts.group,
            times: opts.times,
            notes,
            planned: Default::default(),
        })
    }

    /// Record the attributes destination directory `dest` is getting, for
    /// directories made in the backup tree in its image (only needed with
    /// `--backup-dir`).
    pub fn plan_dir(&self, dest: &Path, mode: u32, uid: Option<u32>, gid: Option<u32>) {
        if self.dir.is_some() {
            let p = PlannedDir { mode, uid, gid };
            self.planned.lock().unwrap().insert(dest.to_path_buf(), p);
        }
    }

    /// The name of `dest` relative to the destination directory (how rsync
    /// names it in messages and below `--backup-dir`).
    fn rel<'p>(&self, dest: &'p Path) -> &'p Path {
        // Callers give paths under the root as given or made absolute
        // (the deletion code works with absolute paths).
        dest.strip_prefix(&self.root)
            .or_else(|_| dest.strip_prefix(&self.root_abs))
            .unwrap_or(dest)
    }

    /// Where the backup of destination path `dest` goes.
    pub fn backup_path(&self, dest: &Path) -> PathBuf {
        let mut name = match &self.dir {
            Some((d, _)) => d.join(self.rel(dest)).into_os_string(),
            None => dest.as_os_str().to_os_string(),
        };
        name.push(&self.suffix);
        PathBuf::from(name)
    }

    /// The backup name as rsync prints it (`d/x~`, `../bak/d/x`).
    fn shown(&self, dest: &Path) -> Vec<u8> {
        let mut s = match &self.dir {
            Some((_, shown)) => shown.clone(),
            None => Vec::new(),
        };
        s.extend_from_slice(self.rel(dest).as_os_str().as_bytes());
        s.extend_from_slice(self.suffix.as_bytes());
        s
    }

    /// Whether `name` is itself a backup rsync would not back up again when
    /// deleting it: without `--backup-dir`, a name ending in the suffix.
    pub fn is_backup_file(&self, name: &Path) -> bool {
        self.dir.is_none()
            && name
                .as_os_str()
                .as_bytes()
                .ends_with(self.suffix.as_bytes())
    }

    /// rsync's `make_backup(fname, prefer_rename)`: keep what is at `dest`
    /// under its backup name. A regular file is hard-linked (copied when that
    /// fails), so the original stays in place for an atomic replacement; with
    /// `prefer_rename` symlinks, devices and special files are moved instead.
    /// Directories are moved. Prints `backed up X to Y` with `--info=backup`.
    pub fn make_backup(&self, dest: &Path, prefer_rename: bool) -> Result<Kept, BackupFailed> {
        let Ok(st) = std::fs::symlink_metadata(dest) else {
            return Ok(Kept::Absent);
        };
        let bak = self.backup_path(dest);
        if bak == dest {
            // Never back a file up onto itself (an empty suffix with a
            // backup directory the file is already in).
            return Err(BackupFailed);
        }
        let mut r = link_or_rename(dest, &bak, prefer_rename, &st);
        if let Err(e) = &r {
            if e.kind() == io::ErrorKind::AlreadyExists {
                // An older backup of the same name makes way.
                let gone = match std::fs::symlink_metadata(&bak) {
                    Ok(m) if m.is_dir() => std::fs::remove_dir_all(&bak),
                    Ok(_) => std::fs::remove_file(&bak),
                    Err(_) => Ok(()),
                };
                if gone.is_err() {
                    return Err(BackupFailed);
                }
                r = link_or_rename(dest, &bak, prefer_rename, &st);
            } else if e.kind() == io::ErrorKind::NotFound && self.dir.is_some() {
                if self.make_bak_dir(&bak).is_err() {
                    return Err(BackupFailed);
                }
                r = link_or_rename(dest, &bak, prefer_rename, &st);
            }
        }
        let kept = match r {
            Ok(k) => k,
            Err(_) => self.copy_backup(dest, &bak, &st)?,
        };
        self.note(dest);
        Ok(kept)
    }

    /// What rsync's `delete_item` does to a non-directory it deletes with
    /// `-b`: back it up (unless it is itself a backup file, see
    /// [`Backups::is_backup_file`]) and make sure it is gone. `Ok(true)` when
    /// it was removed; `Err` when the backup failed (the file is kept).
    pub fn delete_file(&self, dest: &Path) -> Result<bool, BackupFailed> {
        if !self.is_backup_file(dest) {
            match self.make_backup(dest, true)? {
                Kept::Moved => return Ok(true),
                Kept::Absent => return Ok(false),
                Kept::Duplicated => {}
            }
        }
        match std::fs::remove_file(dest) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
            Err(_) => Err(BackupFailed),
        }
    }

    /// `--inplace`: the file is about to be rewritten in place, so the
    /// backup must be a copy (rsync's `copy_file` to the backup name). False
    /// when the copy could not be made (rsync then leaves the file alone).
    pub fn copy_before_inplace(&self, dest: &Path) -> bool {
        let Ok(st) = std::fs::symlink_metadata(dest) else {
            return false;
        };
        let bak = self.backup_path(dest);
        let _ = std::fs::remove_file(&bak);
        if self.copy_backup(dest, &bak, &st).is_err() {
            return false;
        }
        self.note(dest);
        true
    }

    /// The `backed up` line of a backup a dry run only pretends to make.
    pub fn note_dry_run(&self, dest: &Path) {
        self.note(dest);
    }

    fn note(&self, dest: &Path) {
        if self.info {
            let line = format!(
                "backed up {} to {}",
                crate::report::escape_bytes(self.rel(dest).as_os_str().as_bytes(), self.eight_bit),
                crate::report::escape_bytes(&self.shown(dest), self.eight_bit)
            );
            self.notes.push(line);
        }
    }

    /// Copy what is at `dest` to `bak` when it cannot be linked or moved
    /// (another file system, a file system without hard links), with its
    /// owner, mode and times.
    fn copy_backup(
        &self,
        dest: &Path,
        bak: &Path,
        st: &std::fs::Metadata,
    ) -> Result<Kept, BackupFailed> {
        let ft = st.file_type();
        let made = if ft.is_symlink() {
            std::fs::read_link(dest).and_then(|t| std::os::unix::fs::symlink(t, bak))
        } else if ft.is_file() {
            std::fs::copy(dest, bak).map(|_| ())
        } else if ft.is_dir() {
            return Err(BackupFailed);
        } else {
            crate::sys::meta::mknod(bak, st.mode(), st.rdev())
        };
        let made = match made {
            Err(e)
                if e.kind() == io::ErrorKind::NotFound
                    && self.dir.is_some()
                    && bak.parent().is_some_and(|p| !p.exists()) =>
            {
                return if self.make_bak_dir(bak).is_ok() && bak.parent().is_some_and(Path::exists) {
                    self.copy_backup(dest, bak, st)
                } else {
                    Err(BackupFailed)
                };
            }
            other => other,
        };
        if let Err(e) = made {
            crate::report::message(&format!(
                "keep_backup failed: {} -> \"{}\": {}",
                crate::report::abs_display(dest),
                bak.display(),
                super::err_text(&e)
            ));
            return Err(BackupFailed);
        }
        let _ = crate::sys::meta::lchown(bak, Some(st.uid()), Some(st.gid()));
        if !ft.is_symlink() {
            let _ = crate::sys::meta::chmod(bak, st.mode() & 0o7777);
        }
        let _ = crate::sys::time::set_times(
            bak,
            None,
            Some(crate::sys::time::Timestamp::new(
                st.mtime(),
                st.mtime_nsec() as u32,
            )),
            false,
        );
        Ok(Kept::Duplicated)
    }

    /// rsync's `make_bak_dir`: create the missing directories leading to
    /// backup path `bak`, deepest existing one first; those that mirror a
    /// destination directory get its mode and (as preserved) owner and time.
    fn make_bak_dir(&self, bak: &Path) -> io::Result<()> {
        let Some((base, _)) = &self.dir else {
            return Ok(());
        };
        // Find the deepest directory that can be made, then make the rest
        // downwards (rsync's order: each gets its attributes when made).
        let mut stack = Vec::new();
        let mut cur = bak.parent();
        while let Some(d) = cur.filter(|d| !d.as_os_str().is_empty()) {
            match crate::sys::meta::mkdir(d, 0o777) {
                Ok(()) => {
                    self.mirror_dir_attrs(base, d);
                    break;
                }
                // Made by another worker meanwhile.
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => break,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    stack.push(d.to_path_buf());
                    cur = d.parent();
                }
                Err(e) => return Err(e),
            }
        }
        while let Some(d) = stack.pop() {
            match crate::sys::meta::mkdir(&d, 0o777) {
                Ok(()) => self.mirror_dir_attrs(base, &d),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Give a directory made in the backup tree below `base` the attributes
    /// of the destination directory it mirrors (the backup root itself and
    /// directories above it keep the default mode).
    fn mirror_dir_attrs(&self, base: &Path, made: &Path) {
        let Some(rel) = made
            .strip_prefix(base)
            .ok()
            .filter(|r| !r.as_os_str().is_empty())
        else {
            return;
        };
        let like = self.root.join(rel);
        let Ok(st) = std::fs::metadata(&like) else {
            return;
        };
        let planned = self.planned.lock().unwrap().get(&like).copied();
        let mut mode = st.mode() & 0o7777;
        let (mut uid, mut gid) = (st.uid(), st.gid());
        if let Some(p) = planned {
            mode = p.mode;
            uid = p.uid.unwrap_or(uid);
            gid = p.gid.unwrap_or(gid);
        }
        let uid = self.owner.then_some(uid);
        let gid = self.group.then_some(gid);
        if uid.is_some() || gid.is_some() {
            let _ = crate::sys::meta::lchown(made, uid, gid);
        }
        let _ = crate::sys::meta::chmod(made, mode);
        if self.times {
            let _ = crate::sys::time::set_times(
                made,
                None,
                Some(crate::sys::time::Timestamp::new(
                    st.mtime(),
                    st.mtime_nsec() as u32,
                )),
                false,
            );
        }
    }
}

/// rsync's `link_or_rename` on Linux (which can hard-link symlinks and
/// devices): rename when preferred for those and for directories, else link.
fn link_or_rename(
    from: &Path,
    to: &Path,
    prefer_rename: bool,
    st: &std::fs::Metadata,
) -> io::Result<Kept> {
    let ft = st.file_type();
    let node = !ft.is_file() && !ft.is_dir();
    if ft.is_dir() || (node && prefer_rename) {
        std::fs::rename(from, to)?;
        return Ok(Kept::Moved);
    }
    std::fs::hard_link(from, to)?;
    Ok(Kept::Duplicated)
}
