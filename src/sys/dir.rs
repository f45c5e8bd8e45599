//! Directory listing straight from `getdents64` on a descriptor the caller keeps.
//!
//! Why: the scanner stats every name of a directory relative to the descriptor
//! it listed it with. rustix's `Dir::read_from` would first duplicate that
//! descriptor (`fcntl` + `openat(".")` + `close`: three syscalls per
//! directory), and `std::fs::read_dir` allocates a `DirEntry` per name. Here
//! the names are handed out straight from one reused 32 KiB buffer, so most
//! directories take two `getdents64` calls (the entries, then end of
//! directory).

use std::cell::RefCell;
use std::ffi::CStr;
use std::io;
use std::mem::MaybeUninit;
use std::os::fd::OwnedFd;

use rustix::fs::RawDir;

/// Bytes of `getdents64` output read per call (~800 typical entries).
const BUF_BYTES: usize = 32 * 1024;

thread_local! {
    /// One listing buffer per thread, reused for every directory.
    static BUF: RefCell<Vec<MaybeUninit<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Calls `f` with every name in the open directory `dir` except `.` and `..`,
/// in the order the filesystem returns them (unsorted).
///
/// Why: see the module docs (no descriptor duplication, no allocation per
/// name). Fallback: none needed; a `getdents64` error is returned after `f`
/// has seen the names read before it, as `readdir` callers expect.
pub fn for_each_name(dir: &OwnedFd, mut f: impl FnMut(&CStr)) -> io::Result<()> {
    // Taken out of the thread-local so a nested call (there is none today)
    // would get a fresh buffer instead of a RefCell panic.
    let mut buf = BUF.with(|b| std::mem::take(&mut *b.borrow_mut()));
    if buf.len() < BUF_BYTES {
        buf.resize(BUF_BYTES, MaybeUninit::uninit());
    }
    let mut rd = RawDir::new(dir, &mut buf);
    let mut result = Ok(());
    while let Some(entry) = rd.next() {
        match entry {
            Ok(e) => {
                let name = e.file_name();
                let b = name.to_bytes();
                if b != b"." && b != b".." {
                    f(name);
                }
            }
            Err(e) => {
                result = Err(e.into());
                break;
            }
        }
    }
    BUF.with(|b| *b.borrow_mut() = buf);
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testutil::tempdir_in;
    use std::ffi::{OsStr, OsString};
    use std::os::unix::ffi::OsStrExt;
    use std::path::Path;

    fn names(dir: &Path) -> io::Result<Vec<OsString>> {
        let fd = crate::sys::meta::open_dir(dir)?;
        let mut v = Vec::new();
        for_each_name(&fd, |n| {
            v.push(OsStr::from_bytes(n.to_bytes()).to_os_string())
        })?;
        v.sort();
        Ok(v)
    }

    fn check(dir: &Path) {
        std::fs::write(dir.join("file"), b"x").unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::os::unix::fs::symlink("file", dir.join("link")).unwrap();
        crate::sys::meta::mknod(&dir.join("fifo"), libc::S_IFIFO | 0o600, 0).unwrap();
        let weird = OsStr::from_bytes(b"n\xffame");
        std::fs::write(dir.join(weird), b"").unwrap();
        let mut expect: Vec<OsString> = ["fifo", "file", "link", "sub"].map(OsString::from).into();
        expect.push(weird.to_os_string());
        expect.sort();
        assert_eq!(names(dir).unwrap(), expect);
        assert!(names(&dir.join("sub")).unwrap().is_empty());
        // More names than one buffer holds: every one comes back exactly once.
        let big = dir.join("big");
        std::fs::create_dir(&big).unwrap();
        let mut want: Vec<OsString> = (0..3000)
            .map(|i| OsString::from(format!("{i:0>40}")))
            .collect();
        for n in &want {
            std::fs::write(big.join(n), b"").unwrap();
        }
        want.sort();
        assert_eq!(names(&big).unwrap(), want);
    }

    #[test]
    fn lists_ext4() {
        check(tempfile::tempdir_in("/tmp").unwrap().path());
    }

    #[test]
    fn lists_tmpfs() {
        if let Some(d) = tempdir_in("/dev/shm") {
            check(d.path());
        }
    }
}
