//! Ownership, permissions, special files, full `lstat`, `O_NOATIME` opens and
//! user/group name lookups.
//!
//! These back rsync's `-o -g -p -D`, the scanner's metadata read, and owner
//! mapping by name (rsync maps uid/gid through names unless `--numeric-ids`).

use std::ffi::{CStr, CString, OsStr, OsString};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;

use rustix::fs::{AtFlags, CWD, FileType, Gid, Mode, StatxFlags, Uid};
use rustix::io::Errno;

use super::time::Timestamp;

fn uid(u: Option<u32>) -> Option<Uid> {
    u.map(Uid::from_raw_unchecked)
}

fn gid(g: Option<u32>) -> Option<Gid> {
    g.map(Gid::from_raw_unchecked)
}

/// Changes owner and/or group of `path` without following a final symlink
/// (`None` leaves that id unchanged).
///
/// Why: `-o`/`-g` on every entry type, including symlinks themselves.
pub fn lchown(path: &Path, uid_: Option<u32>, gid_: Option<u32>) -> io::Result<()> {
    rustix::fs::chownat(CWD, path, uid(uid_), gid(gid_), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(())
}

/// Changes owner and/or group of an open file (`None` leaves that id unchanged).
///
/// Why: the apply path chowns the temp file before renaming it, race-free.
/// Note chown clears setuid/setgid bits, so set the mode afterwards.
pub fn fchown(file: &File, uid_: Option<u32>, gid_: Option<u32>) -> io::Result<()> {
    rustix::fs::fchown(file, uid(uid_), gid(gid_))?;
    Ok(())
}

/// Creates a special file at `path`: `mode` carries the type (`S_IFCHR`,
/// `S_IFBLK`, `S_IFIFO`, `S_IFSOCK`, or `S_IFREG`) plus permission bits;
/// `rdev` is the device number for char/block devices.
///
/// Why: `-D` (`--devices --specials`). FIFOs use the `mkfifo` equivalent;
/// sockets fall back to binding a Unix socket (as rsync does) when `mknod`
/// refuses `S_IFSOCK`. The umask applies: `chmod` afterwards for exact bits.
pub fn mknod(path: &Path, mode: u32, rdev: u64) -> io::Result<()> {
    let perm = Mode::from_raw_mode(mode & 0o7777);
    let ftype = FileType::from_raw_mode(mode);
    let r = match ftype {
        FileType::Fifo => rustix::fs::mkfifoat(CWD, path, perm),
        FileType::CharacterDevice | FileType::BlockDevice => {
            rustix::fs::mknodat(CWD, path, ftype, perm, rdev)
        }
        FileType::Socket | FileType::RegularFile => rustix::fs::mknodat(CWD, path, ftype, perm, 0),
        _ => return Err(io::Error::from_raw_os_error(libc::EINVAL)),
    };
    match r {
        Ok(()) => Ok(()),
        Err(Errno::PERM | Errno::INVAL | Errno::OPNOTSUPP) if ftype == FileType::Socket => {
            drop(std::os::unix::net::UnixListener::bind(path)?);
            chmod(path, mode)
        }
        Err(e) => Err(e.into()),
    }
}

/// Sets the permission bits (`mode & 0o7777`) of `path`, following symlinks.
///
/// Why: `-p` for entries not written via a temp file. Linux cannot change a
/// symlink's own mode (it is always 0777), so callers skip symlinks.
pub fn chmod(path: &Path, mode: u32) -> io::Result<()> {
    rustix::fs::chmod(path, Mode::from_raw_mode(mode & 0o7777))?;
    Ok(())
}

/// Creates one directory with `mode` (the umask applies, as for rsync's
/// `mkdir_defmode`).
///
/// Why: the backup tree below `--backup-dir` is created level by level, so
/// each level can take the attributes of the destination directory it mirrors.
pub fn mkdir(path: &Path, mode: u32) -> io::Result<()> {
    rustix::fs::mkdir(path, Mode::from_raw_mode(mode & 0o7777))?;
    Ok(())
}

/// Sets the permission bits (`mode & 0o7777`) of an open file.
///
/// Why: `-p` on the temp file, after [`fchown`] (which clears set-id bits).
pub fn fchmod(file: &File, mode: u32) -> io::Result<()> {
    file.set_permissions(std::fs::Permissions::from_mode(mode & 0o7777))
}

/// The metadata rsync compares and transfers, in plain integers.
///
/// Why: one small `Copy` struct for the file list instead of `std::fs::Metadata`
/// (which hides `blocks`/`rdev` behind traits and is larger).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stat {
    /// Device of the filesystem holding the entry (for `-x` and hard links).
    pub dev: u64,
    /// Inode number (hard-link detection, inode-order apply).
    pub ino: u64,
    /// File type and permission bits (`st_mode`).
    pub mode: u32,
    /// Link count (hard-link detection only looks at entries with > 1).
    pub nlink: u64,
    /// Owner user id.
    pub uid: u32,
    /// Owner group id.
    pub gid: u32,
    /// Device number for char/block devices.
    pub rdev: u64,
    /// Size in bytes.
    pub size: u64,
    /// Allocated 512-byte blocks (sparse detection).
    pub blocks: u64,
    /// Last access time.
    pub atime: Timestamp,
    /// Last modification time.
    pub mtime: Timestamp,
    /// Last status change time.
    pub ctime: Timestamp,
}

impl Stat {
    /// The `S_IFMT` type bits of `mode`.
    ///
    /// Why: callers dispatch on entry type constantly.
    pub fn file_type(&self) -> u32 {
        self.mode & libc::S_IFMT
    }
}

fn stat_from_statx(x: &rustix::fs::Statx) -> Stat {
    let ts = |t: rustix::fs::StatxTimestamp| Timestamp::new(t.tv_sec, t.tv_nsec);
    Stat {
        dev: rustix::fs::makedev(x.stx_dev_major, x.stx_dev_minor),
        ino: x.stx_ino,
        mode: u32::from(x.stx_mode),
        nlink: u64::from(x.stx_nlink),
        uid: x.stx_uid,
        gid: x.stx_gid,
        rdev: rustix::fs::makedev(x.stx_rdev_major, x.stx_rdev_minor),
        size: x.stx_size,
        blocks: x.stx_blocks,
        atime: ts(x.stx_atime),
        mtime: ts(x.stx_mtime),
        ctime: ts(x.stx_ctime),
    }
}

fn stat_from_md(md: &std::fs::Metadata) -> Stat {
    use std::os::unix::fs::MetadataExt;
    Stat {
        dev: md.dev(),
        ino: md.ino(),
        mode: md.mode(),
        nlink: md.nlink(),
        uid: md.uid(),
        gid: md.gid(),
        rdev: md.rdev(),
        size: md.size(),
        blocks: md.blocks(),
        atime: Timestamp::new(md.atime(), md.atime_nsec() as u32),
        mtime: Timestamp::new(md.mtime(), md.mtime_nsec() as u32),
        ctime: Timestamp::new(md.ctime(), md.ctime_nsec() as u32),
    }
}

/// `statx` with the basic-stats mask; falls back to `(l)stat` (via std) when
/// `statx` is missing (`ENOSYS`) or blocked by an old seccomp policy (`EPERM`).
fn statx_or_stat(path: &Path, follow: bool) -> io::Result<Stat> {
    let flags = if follow {
        AtFlags::empty()
    } else {
        AtFlags::SYMLINK_NOFOLLOW
    };
    match rustix::fs::statx(CWD, path, flags, StatxFlags::BASIC_STATS) {
        Ok(x) => Ok(stat_from_statx(&x)),
        Err(Errno::NOSYS | Errno::PERM) => {
            let md = if follow {
                std::fs::metadata(path)?
            } else {
                std::fs::symlink_metadata(path)?
            };
            Ok(stat_from_md(&md))
        }
        Err(e) => Err(e.into()),
    }
}

/// Full metadata of `path` itself (a symlink is not followed).
///
/// Why: the scanner's one metadata call per entry; `statx` asks only for the
/// basic fields, which is what rsync compares.
pub fn lstat_full(path: &Path) -> io::Result<Stat> {
    statx_or_stat(path, false)
}

/// Full metadata of `path`, following symlinks.
///
/// Why: `-L`/`--copy-links`, `-k`/`--copy-dirlinks` and top-level arguments.
pub fn stat_full(path: &Path) -> io::Result<Stat> {
    statx_or_stat(path, true)
}

/// Full metadata of an open file.
///
/// Why: re-checking a source after opening it, race-free.
pub fn fstat_full(file: &File) -> io::Result<Stat> {
    Ok(stat_from_md(&file.metadata()?))
}

/// Opens `path` read-only with `O_NOATIME`, falling back to a plain open when
/// the kernel refuses (`EPERM`: we do not own the file and lack CAP_FOWNER;
/// `EINVAL`: filesystem does not accept the flag).
///
/// Why: reading sources for a backup should not dirty their atimes (rsync
/// `--open-noatime`), and it avoids an inode write per file.
pub fn open_noatime(path: &Path) -> io::Result<File> {
    match OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(path)
    {
        Err(e) if matches!(e.raw_os_error(), Some(libc::EPERM | libc::EINVAL)) => File::open(path),
        r => r,
    }
}

/// Opens `name` in the open directory `dir` read-only for hashing: `O_NOATIME`
/// (dropped when the kernel refuses it, as in [`open_noatime`]), `O_NONBLOCK`
/// so a name swapped for a fifo cannot hang the open, `O_NOFOLLOW` unless
/// `follow`; anything but a regular file is refused (`EINVAL`).
///
/// Why: `-c` hashes every same-sized pair from the scanner's listing tasks,
/// which already hold both directories open; opening one name below them
/// skips a whole-path walk per file, and the destination side never follows a
/// symlink put there since the listing. `dir` may be [`CWD`] for a path.
pub fn open_file_at<P: rustix::path::Arg + Copy>(
    dir: std::os::fd::BorrowedFd<'_>,
    name: P,
    follow: bool,
) -> io::Result<File> {
    use rustix::fs::OFlags;
    let mut flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NONBLOCK | OFlags::NOATIME;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    let fd = match rustix::fs::openat(dir, name, flags, Mode::empty()) {
        Err(e) if e == rustix::io::Errno::PERM || e == rustix::io::Errno::INVAL => {
            rustix::fs::openat(dir, name, flags - OFlags::NOATIME, Mode::empty())?
        }
        r => r?,
    };
    let f = File::from(fd);
    if !f.metadata()?.is_file() {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    Ok(f)
}

/// [`open_file_at`] for a path (relative to the working directory).
///
/// Why: entries the scan could not hash (operands, reference directories)
/// are hashed by path, with the same flags and checks.
pub fn open_file(path: &Path, follow: bool) -> io::Result<File> {
    open_file_at(CWD, path, follow)
}

/// Runs a `get*_r` style lookup, growing the buffer on `ERANGE`.
/// `call` returns the errno-style result and whether an entry was found.
fn with_growing_buf<T>(mut call: impl FnMut(&mut [u8]) -> (i32, Option<T>)) -> Option<T> {
    // SAFETY: sysconf has no preconditions.
    let hint = unsafe { libc::sysconf(libc::_SC_GETPW_R_SIZE_MAX) };
    let mut size = if hint > 0 { hint as usize } else { 1024 }.max(1024);
    loop {
        let mut buf = vec![0u8; size];
        match call(&mut buf) {
            (libc::ERANGE, _) if size < (1 << 20) => size *= 4,
            (libc::EINTR, _) => {}
            (0, found) => return found,
            _ => return None,
        }
    }
}

fn cstr_to_os(p: *const libc::c_char) -> OsString {
    // SAFETY: callers pass a NUL-terminated string from a filled passwd/group
    // record whose buffer is still alive.
    OsString::from_vec(unsafe { CStr::from_ptr(p) }.to_bytes().to_vec())
}

/// Name of user `uid`, or `None` if there is no such user.
///
/// Why: rsync transfers owner names and maps them back on the receiver
/// (unless `--numeric-ids`). Uses thread-safe `getpwuid_r`.
pub fn user_name(uid: u32) -> Option<OsString> {
    with_growing_buf(|buf| {
        // SAFETY: passwd is plain data; zeroed is a valid initial state.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the call; buf outlives pw's use.
        let rc =
            unsafe { libc::getpwuid_r(uid, &mut pw, buf.as_mut_ptr().cast(), buf.len(), &mut res) };
        (rc, (!res.is_null()).then(|| cstr_to_os(pw.pw_name)))
    })
}

/// Name of group `gid`, or `None` if there is no such group.
///
/// Why: see [`user_name`]; uses thread-safe `getgrgid_r`.
pub fn group_name(gid: u32) -> Option<OsString> {
    with_growing_buf(|buf| {
        // SAFETY: group is plain data; zeroed is a valid initial state.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::group = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the call; buf outlives gr's use.
        let rc =
            unsafe { libc::getgrgid_r(gid, &mut gr, buf.as_mut_ptr().cast(), buf.len(), &mut res) };
        (rc, (!res.is_null()).then(|| cstr_to_os(gr.gr_name)))
    })
}

/// Uid of the user called `name`, or `None` if unknown (or `name` holds a NUL).
///
/// Why: receiver-side owner mapping by name; uses thread-safe `getpwnam_r`.
pub fn uid_by_name(name: &OsStr) -> Option<u32> {
    let c = CString::new(name.as_bytes()).ok()?;
    with_growing_buf(|buf| {
        // SAFETY: passwd is plain data; zeroed is a valid initial state.
        let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::passwd = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the call.
        let rc = unsafe {
            libc::getpwnam_r(
                c.as_ptr(),
                &mut pw,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut res,
            )
        };
        (rc, (!res.is_null()).then_some(pw.pw_uid))
    })
}

/// Gid of the group called `name`, or `None` if unknown (or `name` holds a NUL).
///
/// Why: see [`uid_by_name`]; uses thread-safe `getgrnam_r`.
pub fn gid_by_name(name: &OsStr) -> Option<u32> {
    let c = CString::new(name.as_bytes()).ok()?;
    with_growing_buf(|buf| {
        // SAFETY: group is plain data; zeroed is a valid initial state.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut res: *mut libc::group = std::ptr::null_mut();
        // SAFETY: all pointers are valid for the call.
        let rc = unsafe {
            libc::getgrnam_r(
                c.as_ptr(),
                &mut gr,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut res,
            )
        };
        (rc, (!res.is_null()).then_some(gr.gr_gid))
    })
}

fn stat_from_libc(st: &rustix::fs::Stat) -> Stat {
    Stat {
        dev: st.st_dev,
        ino: st.st_ino,
        mode: st.st_mode,
        nlink: st.st_nlink,
        uid: st.st_uid,
        gid: st.st_gid,
        rdev: st.st_rdev,
        size: st.st_size as u64,
        blocks: st.st_blocks as u64,
        atime: Timestamp::new(st.st_atime, st.st_atime_nsec as u32),
        mtime: Timestamp::new(st.st_mtime, st.st_mtime_nsec as u32),
        ctime: Timestamp::new(st.st_ctime, st.st_ctime_nsec as u32),
    }
}

/// Metadata of `name` inside the open directory `dir` (not following symlinks).
///
/// Why: the scanner stats every entry of a directory it already has open;
/// `fstatat` relative to that descriptor skips re-walking the whole path, which
/// profiling showed to be the largest cost of a no-op rescan.
/// Fallback: none needed (`fstatat` is universal); errors are returned as is.
pub fn lstat_at(dir: &std::os::fd::OwnedFd, name: &OsStr) -> io::Result<Stat> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(stat_from_libc(&st))
}

/// [`lstat_at`] for a name straight from a directory read (no conversion).
///
/// Why: the scanner stats every name it reads; this skips building a path.
pub fn lstat_at_c(dir: &std::os::fd::OwnedFd, name: &std::ffi::CStr) -> io::Result<Stat> {
    let st = rustix::fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(stat_from_libc(&st))
}

/// Open directory `rel` beneath the open directory `root`, refusing to pass
/// through symlinks (unless `follow`) or to leave `root`.
///
/// Why: the destination side must never be reached through a symlink that
/// points elsewhere (rsync's symlink-race CVEs); `openat2` checks every
/// component in one call. Fallback: a component-by-component walk with
/// `O_NOFOLLOW` where `openat2` is missing (`ENOSYS`).
pub fn open_dir_beneath(
    root: &std::os::fd::OwnedFd,
    rel: &Path,
    follow: bool,
) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{OFlags, ResolveFlags};
    let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    let resolve = if follow {
        ResolveFlags::empty()
    } else {
        ResolveFlags::NO_SYMLINKS | ResolveFlags::BENEATH
    };
    match rustix::fs::openat2(root, rel, flags, rustix::fs::Mode::empty(), resolve) {
        Ok(fd) => Ok(fd),
        Err(Errno::NOSYS) => {
            let mut cur = root.try_clone()?;
            for comp in rel.components() {
                let extra = if follow {
                    OFlags::empty()
                } else {
                    OFlags::NOFOLLOW
                };
                cur = rustix::fs::openat(
                    &cur,
                    comp.as_os_str(),
                    flags | extra,
                    rustix::fs::Mode::empty(),
                )?;
            }
            Ok(cur)
        }
        Err(e) => Err(e.into()),
    }
}

/// Open the directory `name` inside the open directory `dir`; a symlink as
/// `name` is followed only if `follow` (then it is the same as opening the
/// joined path, one component instead of the whole path).
///
/// Why: the scanner opens every subdirectory on both sides; resolving one
/// name below its parent's descriptor skips walking every component from the
/// root again (a quarter of a rescan's name lookups). Without `follow` it is
/// as safe as [`open_dir_beneath`] when `dir` was opened that way.
/// Fallback: none needed (`openat` is universal).
pub fn open_dir_at(
    dir: &std::os::fd::OwnedFd,
    name: &OsStr,
    follow: bool,
) -> io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::OFlags;
    let mut flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC;
    if !follow {
        flags |= OFlags::NOFOLLOW;
    }
    Ok(rustix::fs::openat(dir, name, flags, Mode::empty())?)
}

/// Grow this process's descriptor table to hold `n` descriptors now, while
/// only one thread runs.
///
/// Why: the kernel grows the table on demand, and in a process with several
/// threads every growth waits for an RCU grace period (`synchronize_rcu`,
/// milliseconds on a busy VM). The scanner keeps a few hundred directories
/// open from its worker threads; growing the table up front costs one
/// `F_DUPFD` (the lowest free number from `n - 1` up, so nothing open is
/// touched) and `close`. Fallback: below the descriptor limit when `n` is
/// above it; errors are ignored (the table then grows later, as before).
pub fn reserve_fds(n: u32) {
    let limit = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(u64::MAX);
    let top = u64::from(n).min(limit).saturating_sub(2);
    if top < 64 {
        return;
    }
    let _ = rustix::io::fcntl_dupfd_cloexec(std::io::stderr(), top as i32);
}

/// Open a directory for `lstat_at`/reading (no `O_NOFOLLOW`: the operand may be
/// a symlink to a directory, as rsync allows).
///
/// Why: one descriptor per directory, shared by the stats of its entries.
pub fn open_dir(path: &Path) -> io::Result<std::os::fd::OwnedFd> {
    Ok(rustix::fs::open(
        path,
        rustix::fs::OFlags::RDONLY | rustix::fs::OFlags::DIRECTORY | rustix::fs::OFlags::CLOEXEC,
        rustix::fs::Mode::empty(),
    )?)
}

/// Metadata of an open descriptor (a listed directory).
///
/// Why: the rescan manifest compares a directory's mtime, ctime and inode on
/// the descriptor its listing already holds, without a second path lookup.
pub fn fstat_fd(fd: &std::os::fd::OwnedFd) -> io::Result<Stat> {
    let st = rustix::fs::fstat(fd)?;
    Ok(stat_from_libc(&st))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn lstat_full_fields() {
        let d = tempfile::tempdir_in("/tmp").unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, vec![7u8; 5000]).unwrap();
        std::fs::hard_link(&p, d.path().join("h")).unwrap();
        let mt = Timestamp::new(1_111_111_111, 123_456_789);
        crate::sys::time::set_times(&p, Some(mt), Some(mt), true).unwrap();
        let s = lstat_full(&p).unwrap();
        let md = std::fs::symlink_metadata(&p).unwrap();
        assert_eq!(s, stat_from_md(&md));
        assert_eq!(s.size, 5000);
        assert_eq!(s.nlink, 2);
        assert_eq!(s.file_type(), libc::S_IFREG);
        assert_eq!(s.mtime, mt);
        assert_eq!(s.atime, mt);
        assert!(s.blocks >= 8);
        assert_eq!(
            (s.dev, s.ino, s.uid, s.gid),
            (md.dev(), md.ino(), md.uid(), md.gid())
        );
        assert_eq!(fstat_full(&File::open(&p).unwrap()).unwrap().ino, s.ino);

        let l = d.path().join("l");
        std::os::unix::fs::symlink("f", &l).unwrap();
        let ls = lstat_full(&l).unwrap();
        assert_eq!(ls.file_type(), libc::S_IFLNK);
        assert_eq!(ls.size, 1);
        assert_eq!(stat_full(&l).unwrap().ino, s.ino);
        assert!(lstat_full(&d.path().join("missing")).is_err());
    }

    #[test]
    fn mknod_fifo_socket_and_device() {
        let d = tempfile::tempdir_in("/tmp").unwrap();
        let f = d.path().join("fifo");
        mknod(&f, libc::S_IFIFO | 0o640, 0).unwrap();
        chmod(&f, 0o640).unwrap();
        let s = lstat_full(&f).unwrap();
        assert_eq!(s.file_type(), libc::S_IFIFO);
        assert_eq!(s.mode & 0o7777, 0o640);

        let so = d.path().join("sock");
        mknod(&so, libc::S_IFSOCK | 0o600, 0).unwrap();
        assert_eq!(lstat_full(&so).unwrap().file_type(), libc::S_IFSOCK);

        assert!(mknod(&d.path().join("dir"), libc::S_IFDIR | 0o755, 0).is_err());

        if rustix::process::geteuid().is_root() {
            let c = d.path().join("null");
            let rdev = rustix::fs::makedev(1, 3);
            match mknod(&c, libc::S_IFCHR | 0o666, rdev) {
                Ok(()) => {
                    let s = lstat_full(&c).unwrap();
                    assert_eq!(s.file_type(), libc::S_IFCHR);
                    assert_eq!(s.rdev, rdev);
                }
                // Containers may deny device creation even to root.
                Err(e) => eprintln!("char device not creatable here: {e}"),
            }
        }
    }

    #[test]
    fn chown_chmod_noatime() {
        let d = tempfile::tempdir_in("/tmp").unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        let s = lstat_full(&p).unwrap();
        // Setting to current ids always works, root or not.
        lchown(&p, Some(s.uid), Some(s.gid)).unwrap();
        lchown(&p, None, None).unwrap();
        let f = open_noatime(&p).unwrap();
        fchown(&f, Some(s.uid), None).unwrap();
        fchmod(&f, 0o4751).unwrap();
        assert_eq!(lstat_full(&p).unwrap().mode & 0o7777, 0o4751);
        chmod(&p, 0o600).unwrap();
        assert_eq!(lstat_full(&p).unwrap().mode & 0o7777, 0o600);
        if rustix::process::geteuid().is_root() {
            let l = d.path().join("l");
            std::os::unix::fs::symlink("f", &l).unwrap();
            lchown(&l, Some(1234), Some(5678)).unwrap();
            let ls = lstat_full(&l).unwrap();
            assert_eq!((ls.uid, ls.gid), (1234, 5678));
            assert_eq!(lstat_full(&p).unwrap().uid, s.uid, "target untouched");
        }
        let mut buf = String::new();
        use std::io::Read;
        open_noatime(&p).unwrap().read_to_string(&mut buf).unwrap();
        assert_eq!(buf, "abc");
    }

    #[test]
    fn reserve_fds_touches_no_open_descriptor() {
        use std::os::fd::AsRawFd;
        let f = File::open("/dev/null").unwrap();
        reserve_fds(256);
        reserve_fds(1 << 30); // above any limit: clamped, no error
        assert!(fstat_full(&f).is_ok());
        let g = File::open("/dev/null").unwrap();
        assert!(g.as_raw_fd() < 254, "the lowest free number is still used");
    }

    #[test]
    fn names() {
        assert_eq!(user_name(0).as_deref(), Some(OsStr::new("root")));
        assert_eq!(group_name(0).as_deref(), Some(OsStr::new("root")));
        assert_eq!(uid_by_name(OsStr::new("root")), Some(0));
        assert_eq!(gid_by_name(OsStr::new("root")), Some(0));
        assert_eq!(uid_by_name(OsStr::new("no-such-user-resync")), None);
        assert_eq!(gid_by_name(OsStr::new("no\0nul")), None);
        assert_eq!(user_name(3_999_999_999), None);
    }
}
