//! Writing entries: regular files (temp + rename, `--inplace`, `--append`),
//! symlinks, device nodes and hard links.

use super::meta::{set_file_meta_fd, set_path_meta};
use super::{Ctx, DirCache, err_text, temp_path};
use crate::flist::Entry;
use crate::options::Append;
use crate::plan::Item;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

/// Create a fresh temp file beside `dest` (or in `--temp-dir`).
fn create_temp(ctx: &Ctx, dest: &Path, mode: u32) -> io::Result<(File, PathBuf)> {
    let dir = match &ctx.temp_dir {
        Some(t) => t.clone(),
        None => dest.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let name = dest.file_name().unwrap_or_default();
    let mut attempt = 0;
    loop {
        let p = temp_path(&dir, name, attempt);
        // Read-write: the delta path reads the file back to verify it.
        match OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&p)
        {
            Ok(f) => return Ok((f, p)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

/// [`create_temp`] relative to the open destination directory `dir`.
fn create_temp_at(
    dir: &std::os::fd::OwnedFd,
    dest: &Path,
    mode: u32,
) -> io::Result<(File, PathBuf)> {
    use rustix::fs::{Mode, OFlags};
    let parent = dest.parent().unwrap_or(Path::new(""));
    let name = dest.file_name().unwrap_or_default();
    let mut attempt = 0;
    loop {
        let p = temp_path(parent, name, attempt);
        let tmp_name = p.file_name().unwrap_or_default();
        match rustix::fs::openat(
            dir,
            tmp_name,
            OFlags::RDWR | OFlags::CREATE | OFlags::EXCL | OFlags::CLOEXEC,
            Mode::from_raw_mode(mode),
        ) {
            Ok(fd) => return Ok((File::from(fd), p)),
            Err(rustix::io::Errno::EXIST) if attempt < 100 => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Report a failed write: disk full stops the transfer (exit 11), anything
/// else fails this file only (exit 23).
fn write_failed(ctx: &Ctx, dest: &Path, err: &io::Error) {
    // A remote sender that went away: the connection's own message says so.
    if err.kind() == io::ErrorKind::ConnectionAborted {
        return;
    }
    let msg = format!(
        "[receiver] write failed on \"{}\": {}",
        crate::report::abs_display(dest),
        err_text(err)
    );
    if is_fatal(err) {
        ctx.fatal(msg);
    } else {
        ctx.error(msg);
    }
}

/// Open an existing destination file for writing in place.
fn open_existing(ctx: &Ctx, dest: &Path) -> Option<File> {
    match OpenOptions::new().write(true).open(dest) {
        Ok(f) => Some(f),
        Err(err) => {
            ctx.error(format!(
                "[receiver] open \"{}\" failed: {}",
                crate::report::abs_display(dest),
                err_text(&err)
            ));
            None
        }
    }
}

fn is_fatal(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}

/// Transfer one regular file; returns the bytes written, or None on error.
pub(crate) fn transfer(ctx: &Ctx, e: &Entry, it: &Item, cache: &mut DirCache) -> Option<u64> {
    let opts = &ctx.opts;
    let opened = open_source(opts.open_noatime, e.src(), cache);
    let src = match opened {
        Ok(f) => f,
        Err(err) if err.kind() == io::ErrorKind::NotFound => {
            crate::report::message(&format!(
                "[sender] file has vanished: \"{}\"",
                crate::report::abs_display(e.src())
            ));
            ctx.raise(crate::exit::VANISHED);
            return None;
        }
        Err(err) => {
            ctx.error(format!(
                "[sender] send_files failed to open \"{}\": {}",
                crate::report::abs_display(e.src()),
                err_text(&err)
            ));
            return None;
        }
    };
    // The size from the scan, as rsync sends it; a file that shrank since is an
    // error of that file, one that grew is copied up to the scanned size.
    let len = e.meta.size;
    let exists = it
        .dest_meta
        .is_some_and(|d| d.kind == crate::flist::Kind::File);
    if opts.append != Append::No && exists {
        return append(ctx, e, it, &src, len);
    }
    if opts.inplace && exists {
        return inplace(ctx, e, it, &src, len);
    }
    // --no-W: the old destination file is the delta basis; a file the
    // destination lacks (or that replaces a non-file) looks for its content
    // elsewhere in the destination. With -S the whole-file path keeps making
    // holes of zero runs, as it always did.
    let delta = if opts.whole_file != Some(false) || opts.sparse {
        Delta::No
    } else if exists {
        Delta::Dest
    } else if ctx.reuse.is_some() {
        Delta::Reuse
    } else {
        Delta::No
    };
    whole_or_delta(ctx, e, it, &src, len, Some(cache), delta)
}

/// Open a source file for reading, relative to its cached directory when
/// possible (`O_NOATIME` with `--open-noatime`, dropped where not permitted).
fn open_source(noatime: bool, path: &Path, cache: &mut DirCache) -> io::Result<File> {
    use rustix::fs::{Mode, OFlags};
    if let (Some(dir), Some(name)) = (cache.src_of(path), path.file_name()) {
        let flags = OFlags::RDONLY | OFlags::CLOEXEC;
        if noatime {
            match rustix::fs::openat(dir, name, flags | OFlags::NOATIME, Mode::empty()) {
                Ok(fd) => return Ok(File::from(fd)),
                Err(rustix::io::Errno::PERM) => {}
                Err(e) => return Err(e.into()),
            }
        }
        return Ok(File::from(rustix::fs::openat(
            dir,
            name,
            flags,
            Mode::empty(),
        )?));
    }
    if noatime {
        crate::sys::meta::open_noatime(path)
    } else {
        File::open(path)
    }
}

/// Write the whole file to a temp file and rename it over the destination.
fn whole(
    ctx: &Ctx,
    e: &Entry,
    it: &Item,
    src: &File,
    len: u64,
    cache: Option<&mut DirCache>,
) -> Option<u64> {
    whole_or_delta(ctx, e, it, src, len, cache, Delta::No)
}

/// Where a transfer finds its delta basis, if it sends a delta.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Delta {
    /// A whole-file copy.
    No,
    /// The destination file it replaces (`--no-W`).
    Dest,
    /// Content found elsewhere in the destination ([`crate::delta::reuse`]).
    Reuse,
}

/// Fill the temp file `tmp` by a delta transfer against the destination file
/// or, for [`Delta::Reuse`], the best candidate found elsewhere (`--no-W`);
/// returns the bytes matched from it. A basis that cannot be
/// opened means a whole-file copy, as rsync sends the whole file when it has
/// no basis.
#[allow(clippy::too_many_arguments)]
fn fill_by_delta(
    ctx: &Ctx,
    it: &Item,
    src: &File,
    tmp: &File,
    len: u64,
    dfd: Option<&std::os::fd::OwnedFd>,
    copy_opts: &crate::sys::copy::CopyOptions,
    delta: Delta,
) -> io::Result<u64> {
    use rustix::fs::{Mode, OFlags};
    use std::os::unix::fs::MetadataExt;
    if delta == Delta::Reuse {
        let name = it.dest.file_name().unwrap_or_default();
        let found = ctx.reuse.as_ref().and_then(|r| r.basis_for(name, src, len));
        let hints = ctx.hints((found.as_ref().map_or(0, |f| f.dev), tmp.metadata()?.dev()));
        return match found {
            Some(f) => Ok(crate::delta::sync_file(src, len, &f.file, tmp, &hints)?.matched),
            None => {
                crate::sys::copy::copy_file_data_hinted(src, tmp, len, copy_opts, &hints)?;
                Ok(0)
            }
        };
    }
    let opened = match (dfd, it.dest.file_name()) {
        (Some(d), Some(name)) => {
            rustix::fs::openat(d, name, OFlags::RDONLY | OFlags::CLOEXEC, Mode::empty())
                .map(File::from)
                .map_err(io::Error::from)
        }
        _ => File::open(&it.dest),
    };
    // Hints per (basis device, temp file device): --temp-dir may put the temp
    // file on another filesystem, where no clone is possible.
    let basis_dev = it.dest_meta.map_or(0, |d| d.dev);
    let hints = ctx.hints((basis_dev, tmp.metadata()?.dev()));
    match opened {
        Ok(basis) => Ok(crate::delta::sync_file(src, len, &basis, tmp, &hints)?.matched),
        Err(_) => {
            crate::sys::copy::copy_file_data_hinted(src, tmp, len, copy_opts, &hints)?;
            Ok(0)
        }
    }
}

/// [`whole`], or with `delta` a delta transfer (against the destination file
/// or reused content), into the same temp file, renamed into place the same
/// way.
fn whole_or_delta(
    ctx: &Ctx,
    e: &Entry,
    it: &Item,
    src: &File,
    len: u64,
    cache: Option<&mut DirCache>,
    delta: Delta,
) -> Option<u64> {
    let opts = &ctx.opts;
    let copy_opts = crate::sys::copy::CopyOptions {
        sparse: opts.sparse,
        preallocate: opts.preallocate,
    };
    let mut fill = |tmp: &File, dfd: Option<&std::os::fd::OwnedFd>| -> io::Result<Filled> {
        if delta != Delta::No {
            let matched = fill_by_delta(ctx, it, src, tmp, len, dfd, &copy_opts, delta)?;
            ctx.matched
                .fetch_add(matched, std::sync::atomic::Ordering::Relaxed);
        } else {
            let hints = ctx.hints((e.meta.dev, it.dest_meta.map_or(0, |d| d.dev)));
            crate::sys::copy::copy_file_data_hinted(src, tmp, len, &copy_opts, &hints)?;
        }
        Ok(Filled::Done)
    };
    into_place(ctx, e, it, cache, &mut fill)
}

/// What filling a temp file came to (see [`into_place`]).
pub enum Filled {
    /// The temp file holds the new content: give it its metadata and rename it.
    Done,
    /// The content is not right (a remote delta that failed verification, or a
    /// file the sender could not send): drop the temp file, keep the old one.
    Dropped,
}

/// Create the temp file for `it.dest`, let `fill` write the content, then
/// give it its metadata and rename it over the destination (or keep the old
/// version when anything fails). `fill` gets the temp file and the
/// destination directory's descriptor, when the work is relative to it.
pub(crate) fn into_place(
    ctx: &Ctx,
    e: &Entry,
    it: &Item,
    cache: Option<&mut DirCache>,
    fill: &mut dyn FnMut(&File, Option<&std::os::fd::OwnedFd>) -> io::Result<Filled>,
) -> Option<u64> {
    let opts = &ctx.opts;
    let len = e.meta.size;
    // Beside the destination, with plain renames: work relative to the
    // destination directory's descriptor.
    let plain = ctx.temp_dir.is_none() && !opts.delay_updates;
    let dfd = match cache {
        Some(c) if plain => c.dst_of(&it.dest),
        _ => None,
    };
    // Created with its final mode when the umask leaves it intact (saves a
    // chmod); set-id bits always go through fchmod after the chown.
    let direct = it.mode & 0o7000 == 0 && it.mode & ctx.umask == 0 && it.mode & 0o600 == 0o600;
    let create_mode = if direct { it.mode } else { 0o600 };
    let created = match dfd {
        Some(d) => create_temp_at(d, &it.dest, create_mode),
        None => create_temp(ctx, &it.dest, create_mode),
    };
    let (tmp, tmp_path) = match created {
        Ok(x) => x,
        Err(err) => {
            let msg = format!(
                "[receiver] mkstemp \"{}\" failed: {}",
                crate::report::abs_display(&temp_path(
                    it.dest.parent().unwrap_or(Path::new("")),
                    it.dest.file_name().unwrap_or_default(),
                    0
                )),
                err_text(&err)
            );
            if is_fatal(&err) {
                ctx.fatal(msg);
            } else {
                ctx.error(msg);
            }
            return None;
        }
    };
    match fill(&tmp, dfd) {
        Ok(Filled::Done) => {}
        Ok(Filled::Dropped) => {
            let _ = std::fs::remove_file(&tmp_path);
            return None;
        }
        Err(err) => {
            keep_partial(ctx, &tmp_path, &it.dest);
            write_failed(ctx, &it.dest, &err);
            return None;
        }
    }
    set_file_meta_fd(ctx, e, it, &tmp, &it.dest, !direct);
    if opts.fsync {
        if let Err(err) = tmp.sync_all() {
            let _ = std::fs::remove_file(&tmp_path);
            ctx.fatal(format!(
                "[receiver] fsync failed on \"{}\": {}",
                crate::report::abs_display(&it.dest),
                err_text(&err)
            ));
            return None;
        }
    }
    drop(tmp);
    // -b: keep the old version (a hard link, so the name never goes missing).
    let replaced = it.dest_meta.filter(|d| d.kind != crate::flist::Kind::Dir);
    // A non-file in the way is deleted the way rsync's delete_item does it,
    // which does not back up backup files.
    let is_backup_file = |b: &super::backup::Backups| b.is_backup_file(&it.dest);
    let skip = replaced.is_some_and(|d| d.kind != crate::flist::Kind::File)
        && ctx.backups.as_ref().is_some_and(is_backup_file);
    if replaced.is_some() && ctx.backups.is_some() && !opts.delay_updates && !skip {
        let fatal = replaced.is_some_and(|d| d.kind == crate::flist::Kind::File);
        if !ctx.backup_before_replace(&it.dest, fatal) {
            let _ = std::fs::remove_file(&tmp_path);
            return None;
        }
    }
    if opts.delay_updates {
        return park_delayed(ctx, e, &tmp_path, &it.dest).then_some(len);
    }
    let renamed = match (dfd, tmp_path.file_name(), it.dest.file_name()) {
        (Some(d), Some(from), Some(to)) => {
            rustix::fs::renameat(d, from, d, to).map_err(io::Error::from)
        }
        _ => rename_into_place(&tmp_path, &it.dest),
    };
    if let Err(err) = renamed {
        let _ = std::fs::remove_file(&tmp_path);
        ctx.error(format!(
            "[receiver] rename \"{}\" -> \"{}\": {}",
            crate::report::abs_display(&tmp_path),
            crate::report::escape_name(e.name(), opts.eight_bit_output),
            err_text(&err)
        ));
        return None;
    }
    drop_partial(ctx, &it.dest);
    Some(len)
}

/// The `--partial-dir` file for `dest` (a relative partial dir lives in the
/// destination file's own directory, as in rsync).
fn partial_path(ctx: &Ctx, dest: &Path) -> Option<PathBuf> {
    let pd = ctx.opts.partial_dir.as_ref()?;
    let dir = dest.parent().unwrap_or(Path::new("."));
    Some(dir.join(pd).join(dest.file_name()?))
}

/// After a failed copy: with `--partial` the partial data replaces the
/// destination (or goes to `--partial-dir`), as the user asked; otherwise the
/// temp file is removed and the destination keeps its old version.
fn keep_partial(ctx: &Ctx, tmp: &Path, dest: &Path) {
    if ctx.opts.partial && !ctx.opts.inplace {
        let target = partial_path(ctx, dest).unwrap_or_else(|| dest.to_path_buf());
        if let Some(p) = target.parent() {
            let _ = std::fs::create_dir_all(p);
        }
        if std::fs::rename(tmp, &target).is_ok() {
            return;
        }
    }
    let _ = std::fs::remove_file(tmp);
}

/// A successful transfer makes a leftover `--partial-dir` file obsolete.
fn drop_partial(ctx: &Ctx, dest: &Path) {
    if let Some(p) = partial_path(ctx, dest) {
        if std::fs::remove_file(&p).is_ok() {
            if let Some(d) = p.parent() {
                let _ = std::fs::remove_dir(d);
            }
        }
    }
}

/// `--delay-updates`: park the finished file in `DIR/.~tmp~/NAME` until the end.
fn park_delayed(ctx: &Ctx, e: &Entry, tmp: &Path, dest: &Path) -> bool {
    let dir = dest.parent().unwrap_or(Path::new(".")).join(".~tmp~");
    let _ = std::fs::create_dir(&dir);
    let parked = dir.join(dest.file_name().unwrap_or_default());
    if !finish_rename(ctx, e, tmp, &parked) {
        return false;
    }
    ctx.delayed
        .lock()
        .unwrap()
        .push((parked, dest.to_path_buf()));
    true
}

/// Rename a finished temp file over the destination; across file systems (with
/// `--temp-dir` elsewhere) copy into a sibling temp first so the swap stays atomic.
fn rename_into_place(tmp: &Path, dest: &Path) -> io::Result<()> {
    match std::fs::rename(tmp, dest) {
        Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
            let dir = dest.parent().unwrap_or(Path::new("."));
            let sib = temp_path(dir, dest.file_name().unwrap_or_default(), 7);
            std::fs::copy(tmp, &sib)?;
            let m = std::fs::metadata(tmp)?;
            let f = File::options().write(true).open(&sib)?;
            use std::os::unix::fs::MetadataExt;
            let _ = crate::sys::meta::fchown(&f, Some(m.uid()), Some(m.gid()));
            crate::sys::meta::fchmod(&f, m.mode() & 0o7777)?;
            crate::sys::time::set_times_fd(
                &f,
                None,
                Some(crate::sys::time::Timestamp::new(
                    m.mtime(),
                    m.mtime_nsec() as u32,
                )),
            )?;
            drop(f);
            std::fs::remove_file(tmp)?;
            std::fs::rename(&sib, dest)
        }
        other => other,
    }
}

/// `--inplace`: rewrite the destination file directly, then truncate.
fn inplace(ctx: &Ctx, e: &Entry, it: &Item, src: &File, len: u64) -> Option<u64> {
    // -b: the file is rewritten where it is, so its backup must be a copy;
    // rsync leaves the file alone when that copy cannot be made.
    if ctx
        .backups
        .as_ref()
        .is_some_and(|b| !b.copy_before_inplace(&it.dest))
    {
        return None;
    }
    let f = open_existing(ctx, &it.dest)?;
    let r = if ctx.opts.sparse {
        crate::sys::copy::copy_sparse_inplace(src, &f, len)
    } else {
        crate::sys::copy::copy_read_write(src, 0, &f, 0, len).and_then(|_| f.set_len(len))
    };
    if let Err(err) = r {
        write_failed(ctx, &it.dest, &err);
        return None;
    }
    set_file_meta_fd(ctx, e, it, &f, &it.dest, true);
    if ctx.opts.fsync {
        let _ = f.sync_all();
    }
    Some(len)
}

/// `--inplace`/`--append` with the data from a remote sender: back up a copy
/// of the old version (`-b`, as rsync's generator does before an in-place
/// update), open the file itself read-write (never through a symlink), let
/// `fill` write it, then set its metadata. Returns the file's length.
pub(crate) fn update_in_place(
    ctx: &Ctx,
    e: &Entry,
    it: &Item,
    fill: &mut dyn FnMut(&File, Option<&std::os::fd::OwnedFd>) -> io::Result<Filled>,
) -> Option<u64> {
    if ctx
        .backups
        .as_ref()
        .is_some_and(|b| !b.copy_before_inplace(&it.dest))
    {
        return None;
    }
    let f = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(&it.dest)
    {
        Ok(f) => f,
        Err(err) => {
            ctx.error(format!(
                "[receiver] open \"{}\" failed: {}",
                crate::report::abs_display(&it.dest),
                err_text(&err)
            ));
            return None;
        }
    };
    match fill(&f, None) {
        Ok(Filled::Done) => {}
        Ok(Filled::Dropped) => return None,
        Err(err) => {
            write_failed(ctx, &it.dest, &err);
            return None;
        }
    }
    set_file_meta_fd(ctx, e, it, &f, &it.dest, true);
    if ctx.opts.fsync {
        if let Err(err) = f.sync_all() {
            ctx.fatal(format!(
                "[receiver] fsync failed on \"{}\": {}",
                crate::report::abs_display(&it.dest),
                err_text(&err)
            ));
            return None;
        }
    }
    Some(e.meta.size)
}

/// `--append`: add the missing tail to a shorter destination file.
fn append(ctx: &Ctx, e: &Entry, it: &Item, src: &File, len: u64) -> Option<u64> {
    let have = it.dest_meta.map(|d| d.size).unwrap_or(0);
    if have >= len {
        // rsync skips files that are not shorter on the receiver.
        return Some(0);
    }
    let f = open_existing(ctx, &it.dest)?;
    if let Err(err) = crate::sys::copy::copy_read_write(src, have, &f, have, len - have) {
        write_failed(ctx, &it.dest, &err);
        return None;
    }
    set_file_meta_fd(ctx, e, it, &f, &it.dest, true);
    drop(f);
    // --append-verify: the kept prefix must match; if not, rsync discards the
    // update and sends the whole file again.
    if ctx.opts.append == Append::Verify && !same_bytes(src, &it.dest, len) {
        crate::report::message_bare(&format!(
            "WARNING: {} failed verification -- update retained (will try again).",
            crate::report::escape_name(e.name(), ctx.opts.eight_bit_output)
        ));
        ctx.redo(e, it);
        return whole(ctx, e, it, src, len, None);
    }
    Some(len - have)
}

/// Whether `path` holds exactly the first `len` bytes of `src` (and no more).
fn same_bytes(src: &File, path: &Path, len: u64) -> bool {
    use std::os::unix::fs::FileExt;
    let Ok(d) = File::open(path) else {
        return false;
    };
    if d.metadata().map(|m| m.len()).unwrap_or(u64::MAX) != len {
        return false;
    }
    let (mut a, mut b) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    let mut off = 0u64;
    while off < len {
        let n = ((len - off) as usize).min(a.len());
        if src.read_exact_at(&mut a[..n], off).is_err()
            || d.read_exact_at(&mut b[..n], off).is_err()
        {
            return false;
        }
        if a[..n] != b[..n] {
            return false;
        }
        off += n as u64;
    }
    true
}

/// Create or replace a symlink atomically (temp link + rename).
pub(crate) fn make_symlink(ctx: &Ctx, e: &Entry, it: &Item) -> bool {
    let Some(target) = &e.link_target else {
        return false;
    };
    if it.replace && !clear_dir(ctx, e, it) {
        return false;
    }
    let dir = it.dest.parent().unwrap_or(Path::new("."));
    let name = it.dest.file_name().unwrap_or_default();
    let mut attempt = 0;
    let tmp = loop {
        let p = temp_path(dir, name, attempt);
        match std::os::unix::fs::symlink(target, &p) {
            Ok(()) => break p,
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(err) => {
                ctx.error(format!(
                    "[generator] symlink \"{}\" -> \"{}\" failed: {}",
                    crate::report::abs_display(&it.dest),
                    target.to_string_lossy(),
                    err_text(&err)
                ));
                return false;
            }
        }
    };
    finish_new(ctx, e, it, &tmp)
}

/// Create or replace a device node, fifo or socket (temp node + rename).
pub(crate) fn make_node(ctx: &Ctx, e: &Entry, it: &Item) -> bool {
    if it.replace && !clear_dir(ctx, e, it) {
        return false;
    }
    let dir = it.dest.parent().unwrap_or(Path::new("."));
    let tmp = temp_path(dir, it.dest.file_name().unwrap_or_default(), 0);
    let mode = (e.meta.mode & libc::S_IFMT) | (it.mode & 0o7777);
    if let Err(err) = crate::sys::meta::mknod(&tmp, mode, e.meta.rdev) {
        ctx.error(format!(
            "[generator] mknod \"{}\" failed: {}",
            crate::report::abs_display(&it.dest),
            err_text(&err)
        ));
        return false;
    }
    finish_new(ctx, e, it, &tmp)
}

/// Give a freshly created temp entry its metadata and rename it into place.
fn finish_new(ctx: &Ctx, e: &Entry, it: &Item, tmp: &Path) -> bool {
    if !backup_replaced(ctx, it, tmp) {
        return false;
    }
    set_path_meta(
        ctx,
        e,
        it,
        tmp,
        super::meta::Want {
            fresh: true,
            times: true,
        },
    );
    finish_rename(ctx, e, tmp, &it.dest)
}

/// A directory in the way of a non-directory must go first (rename cannot
/// replace a directory with a file).
fn clear_dir(ctx: &Ctx, e: &Entry, it: &Item) -> bool {
    if it
        .dest_meta
        .is_some_and(|d| d.kind == crate::flist::Kind::Dir)
    {
        if let Err(err) = super::remove_non_dir_or_empty(&it.dest) {
            ctx.error(format!(
                "cannot delete non-empty directory: {}: {}",
                crate::report::escape_name(e.name(), ctx.opts.eight_bit_output),
                err_text(&err)
            ));
            return false;
        }
    }
    true
}

fn finish_rename(ctx: &Ctx, e: &Entry, tmp: &Path, dest: &Path) -> bool {
    if let Err(err) = std::fs::rename(tmp, dest) {
        let _ = std::fs::remove_file(tmp);
        ctx.error(format!(
            "[receiver] rename \"{}\" -> \"{}\": {}",
            crate::report::abs_display(tmp),
            crate::report::escape_name(e.name(), ctx.opts.eight_bit_output),
            err_text(&err)
        ));
        return false;
    }
    true
}

/// `--link-dest`: make `it.dest` another name of the unchanged entry found in
/// a reference directory (linked under a temp name and renamed into place).
/// A regular file that cannot be linked is copied instead, as rsync does.
pub(crate) fn link_basis(ctx: &Ctx, e: &Entry, it: &Item, cache: &mut DirCache) -> bool {
    let Some(basis) = &it.basis else {
        return false;
    };
    if it.replace && !clear_dir(ctx, e, it) {
        return false;
    }
    let dir = it.dest.parent().unwrap_or(Path::new("."));
    let tmp = temp_path(dir, it.dest.file_name().unwrap_or_default(), 0);
    if let Err(err) = std::fs::hard_link(basis, &tmp) {
        if e.meta.kind == crate::flist::Kind::File {
            return copy_basis(ctx, e, it, cache);
        }
        ctx.error(format!(
            "failed to hard-link {} with {}: {}",
            basis.display(),
            it.dest.display(),
            err_text(&err)
        ));
        return false;
    }
    // rsync backs up what it deletes to make room, but not the destination
    // file an exact reference match replaces.
    let replaced_file = it
        .dest_meta
        .is_some_and(|d| d.kind == crate::flist::Kind::File);
    if !replaced_file && !backup_replaced(ctx, it, &tmp) {
        return false;
    }
    finish_rename(ctx, e, &tmp, &it.dest)
}

/// `--copy-dest` (and any reference match whose attributes differ): copy the
/// reference file into place locally and give it the source's attributes.
pub(crate) fn copy_basis(ctx: &Ctx, e: &Entry, it: &Item, cache: &mut DirCache) -> bool {
    let Some(basis) = &it.basis else {
        return false;
    };
    let src = match File::open(basis) {
        Ok(f) => f,
        Err(err) => {
            ctx.error(format!(
                "copy_file {} => {}: {}",
                crate::report::abs_display(basis),
                it.dest.display(),
                err_text(&err)
            ));
            return false;
        }
    };
    if it.replace && !clear_dir(ctx, e, it) {
        return false;
    }
    whole(ctx, e, it, &src, e.meta.size, Some(cache)).is_some()
}

/// `-H`: make `it.dest` another name of `leader_dest`.
pub(crate) fn hard_link(ctx: &Ctx, leader_dest: &Path, e: &Entry, it: &Item) -> bool {
    if it.replace && !clear_dir(ctx, e, it) {
        return false;
    }
    let dir = it.dest.parent().unwrap_or(Path::new("."));
    let tmp = temp_path(dir, it.dest.file_name().unwrap_or_default(), 0);
    // rename() between two names of one inode does nothing and would leave
    // the temp name behind: nothing to do when already linked.
    if let (Ok(a), Ok(b)) = (
        std::fs::symlink_metadata(leader_dest),
        std::fs::symlink_metadata(&it.dest),
    ) {
        use std::os::unix::fs::MetadataExt;
        if a.ino() == b.ino() && a.dev() == b.dev() {
            return true;
        }
    }
    if let Err(err) = std::fs::hard_link(leader_dest, &tmp) {
        ctx.error(format!(
            "[receiver] link \"{}\" => \"{}\" failed: {}",
            crate::report::abs_display(&it.dest),
            crate::report::abs_display(leader_dest),
            err_text(&err)
        ));
        return false;
    }
    if !backup_replaced(ctx, it, &tmp) {
        return false;
    }
    finish_rename(ctx, e, &tmp, &it.dest)
}

/// `-b` for an entry made under a temp name: keep the non-directory it is
/// about to replace; on failure the temp entry is dropped (rsync's
/// `atomic_create` gives up on the item without a message).
fn backup_replaced(ctx: &Ctx, it: &Item, tmp: &Path) -> bool {
    let replaces = it
        .dest_meta
        .is_some_and(|d| d.kind != crate::flist::Kind::Dir);
    if replaces && !ctx.backup_before_replace(&it.dest, false) {
        let _ = std::fs::remove_file(tmp);
        return false;
    }
    true
}
