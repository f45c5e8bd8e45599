//! Extended attributes (`-X`): list/get/set/remove by path and by open file.
//!
//! Path variants use the `l*xattr` calls when `follow == false`, so a symlink's
//! own attributes are handled (Linux allows only `trusted.*`/`security.*` there;
//! `user.*` on a symlink fails with `EPERM`, which we pass up for the caller to
//! report). Reading is size-query then fetch, retried on `ERANGE` because the
//! value can grow between the two calls.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::buffer::spare_capacity;
use rustix::fs::XattrFlags;
use rustix::io::Errno;

/// How many times to retry when an attribute grows between size query and fetch.
const RETRIES: usize = 8;

/// Runs `query` for a size, then `fetch` into a buffer of that size, retrying
/// on `ERANGE`.
fn fetch_sized(
    query: impl Fn() -> rustix::io::Result<usize>,
    fetch: impl Fn(&mut Vec<u8>) -> rustix::io::Result<usize>,
) -> rustix::io::Result<Vec<u8>> {
    let mut last = Errno::RANGE;
    for _ in 0..RETRIES {
        let size = query()?;
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = Vec::with_capacity(size);
        match fetch(&mut buf) {
            Ok(_) => return Ok(buf),
            Err(Errno::RANGE) => last = Errno::RANGE,
            Err(e) => return Err(e),
        }
    }
    Err(last)
}

/// Splits a NUL-separated name list.
fn split_names(buf: &[u8]) -> Vec<OsString> {
    buf.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| OsStr::from_bytes(s).to_os_string())
        .collect()
}

/// `list` result where "no xattr support" means "no xattrs".
fn names_or_empty(r: rustix::io::Result<Vec<u8>>) -> io::Result<Vec<OsString>> {
    match r {
        Ok(buf) => Ok(split_names(&buf)),
        Err(Errno::NOTSUP) => Ok(Vec::new()),
        Err(e) => Err(e.into()),
    }
}

/// Names of all extended attributes of `path` (of the symlink itself when
/// `!follow`); `Ok(empty)` on filesystems without xattr support.
///
/// Why: the scan side of `-X`; unsupported filesystems are simply attribute-free.
pub fn list(path: &Path, follow: bool) -> io::Result<Vec<OsString>> {
    names_or_empty(if follow {
        fetch_sized(
            || rustix::fs::listxattr_query(path),
            |b| rustix::fs::listxattr(path, spare_capacity(b)),
        )
    } else {
        fetch_sized(
            || rustix::fs::llistxattr_query(path),
            |b| rustix::fs::llistxattr(path, spare_capacity(b)),
        )
    })
}

/// Value of attribute `name` of `path` (of the symlink itself when `!follow`).
///
/// Why: the scan side of `-X`, after [`list`].
pub fn get(path: &Path, name: &OsStr, follow: bool) -> io::Result<Vec<u8>> {
    let r = if follow {
        fetch_sized(
            || rustix::fs::getxattr_query(path, name),
            |b| rustix::fs::getxattr(path, name, spare_capacity(b)),
        )
    } else {
        fetch_sized(
            || rustix::fs::lgetxattr_query(path, name),
            |b| rustix::fs::lgetxattr(path, name, spare_capacity(b)),
        )
    };
    Ok(r?)
}

/// Creates or replaces attribute `name` of `path` (of the symlink itself when
/// `!follow`).
///
/// Why: applying `-X` to entries that are not written through a temp file
/// (directories, symlinks, devices, unchanged files).
pub fn set(path: &Path, name: &OsStr, value: &[u8], follow: bool) -> io::Result<()> {
    if follow {
        rustix::fs::setxattr(path, name, value, XattrFlags::empty())?;
    } else {
        rustix::fs::lsetxattr(path, name, value, XattrFlags::empty())?;
    }
    Ok(())
}

/// Removes attribute `name` from `path` (from the symlink itself when `!follow`).
///
/// Why: rsync `-X` deletes destination attributes the source does not have.
pub fn remove(path: &Path, name: &OsStr, follow: bool) -> io::Result<()> {
    if follow {
        rustix::fs::removexattr(path, name)?;
    } else {
        rustix::fs::lremovexattr(path, name)?;
    }
    Ok(())
}

/// Names of all extended attributes of an open file; `Ok(empty)` without
/// xattr support.
///
/// Why: the apply path works on the open temp file, avoiding path races.
pub fn fd_list(file: &File) -> io::Result<Vec<OsString>> {
    names_or_empty(fetch_sized(
        || rustix::fs::flistxattr_query(file),
        |b| rustix::fs::flistxattr(file, spare_capacity(b)),
    ))
}

/// Value of attribute `name` of an open file.
///
/// Why: see [`fd_list`].
pub fn fd_get(file: &File, name: &OsStr) -> io::Result<Vec<u8>> {
    Ok(fetch_sized(
        || rustix::fs::fgetxattr_query(file, name),
        |b| rustix::fs::fgetxattr(file, name, spare_capacity(b)),
    )?)
}

/// Creates or replaces attribute `name` of an open file.
///
/// Why: see [`fd_list`]; set on the temp file before the rename.
pub fn fd_set(file: &File, name: &OsStr, value: &[u8]) -> io::Result<()> {
    rustix::fs::fsetxattr(file, name, value, XattrFlags::empty())?;
    Ok(())
}

/// Removes attribute `name` from an open file.
///
/// Why: see [`fd_list`]; e.g. when updating a file in place (`--inplace`).
pub fn fd_remove(file: &File, name: &OsStr) -> io::Result<()> {
    rustix::fs::fremovexattr(file, name)?;
    Ok(())
}

/// True if `err` means "this filesystem or file type does not take xattrs"
/// (`ENOTSUP`, or `EPERM` for `user.*` on symlinks and special files).
///
/// Why: rsync reports but does not abort on these; callers need one test.
pub fn is_unsupported(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(e) if e == libc::ENOTSUP || e == libc::EPERM
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testutil::tempdir_in;

    fn roundtrip(dir: &Path) {
        let p = dir.join("f");
        std::fs::write(&p, b"x").unwrap();
        let name = OsStr::new("user.resync.test");
        let big = vec![0xabu8; 3000];
        set(&p, name, b"hello\0world", true).unwrap();
        set(&p, OsStr::new("user.big"), &big, false).unwrap();
        set(&p, OsStr::new("user.empty"), b"", true).unwrap();
        let mut names = list(&p, true).unwrap();
        names.retain(|n| n.as_bytes().starts_with(b"user."));
        names.sort();
        assert_eq!(names, ["user.big", "user.empty", "user.resync.test"]);
        assert_eq!(get(&p, name, true).unwrap(), b"hello\0world");
        assert_eq!(get(&p, OsStr::new("user.big"), false).unwrap(), big);
        assert_eq!(get(&p, OsStr::new("user.empty"), true).unwrap(), b"");
        remove(&p, OsStr::new("user.empty"), true).unwrap();
        let e = get(&p, OsStr::new("user.empty"), true).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENODATA));

        // fd variants
        let f = File::options().read(true).write(true).open(&p).unwrap();
        fd_set(&f, OsStr::new("user.fd"), b"v").unwrap();
        assert_eq!(fd_get(&f, OsStr::new("user.fd")).unwrap(), b"v");
        assert!(fd_list(&f).unwrap().iter().any(|n| n == "user.fd"));
        fd_remove(&f, OsStr::new("user.fd")).unwrap();
        assert!(!list(&p, true).unwrap().iter().any(|n| n == "user.fd"));

        // Symlinks: user.* is refused on the link itself, listing works.
        let l = dir.join("l");
        std::os::unix::fs::symlink("f", &l).unwrap();
        let e = set(&l, OsStr::new("user.x"), b"1", false).unwrap_err();
        assert!(is_unsupported(&e), "{e}");
        assert!(list(&l, false).unwrap().iter().all(|n| n != "user.big"));
        assert!(list(&l, true).unwrap().iter().any(|n| n == "user.big"));
    }

    #[test]
    fn roundtrip_ext4() {
        roundtrip(tempfile::tempdir_in("/tmp").unwrap().path());
    }

    #[test]
    fn roundtrip_tmpfs() {
        if let Some(d) = tempdir_in("/dev/shm") {
            roundtrip(d.path());
        }
    }

    #[test]
    fn split() {
        assert_eq!(split_names(b"a\0bb\0"), ["a", "bb"]);
        assert!(split_names(b"").is_empty());
    }
}
