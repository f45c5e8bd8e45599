//! Fast directory listing that keeps what `getdents64` already tells us.
//!
//! Why: the scanner wants names, the `d_type` hint and the inode number (to
//! sort the apply phase by inode) without a `stat` per entry. `std::fs::read_dir`
//! hides `DT_UNKNOWN` behind an implicit `lstat`, so we read with rustix's
//! `Dir` and report an unknown type as `None` instead.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use rustix::fs::{Dir, FileType, Mode, OFlags};

/// Entry type as reported by the directory itself (`d_type`).
///
/// Why: lets the scanner skip `lstat` for types whose metadata it does not
/// need, and decide recursion early.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FileTypeHint {
    /// Regular file.
    File,
    /// Directory.
    Dir,
    /// Symbolic link.
    Symlink,
    /// Character device.
    CharDevice,
    /// Block device.
    BlockDevice,
    /// Named pipe.
    Fifo,
    /// Unix socket.
    Socket,
}

impl FileTypeHint {
    fn from_rustix(t: FileType) -> Option<FileTypeHint> {
        Some(match t {
            FileType::RegularFile => FileTypeHint::File,
            FileType::Directory => FileTypeHint::Dir,
            FileType::Symlink => FileTypeHint::Symlink,
            FileType::CharacterDevice => FileTypeHint::CharDevice,
            FileType::BlockDevice => FileTypeHint::BlockDevice,
            FileType::Fifo => FileTypeHint::Fifo,
            FileType::Socket => FileTypeHint::Socket,
            _ => return None,
        })
    }
}

/// Lists `path` (without `.` and `..`, unsorted): each entry's name, its
/// `d_type` hint (`None` when the filesystem says `DT_UNKNOWN`), and inode.
///
/// Why: one `open` + `getdents64` batch per directory; see module docs.
/// Fallback: filesystems without `d_type` yield `None` hints and the caller
/// `lstat`s those entries.
pub fn read_dir_names(path: &Path) -> io::Result<Vec<(OsString, Option<FileTypeHint>, u64)>> {
    let fd = rustix::fs::open(
        path,
        OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
        Mode::empty(),
    )?;
    let mut dir = Dir::new(fd)?;
    let mut out = Vec::new();
    while let Some(entry) = dir.read() {
        let entry = entry?;
        let name = entry.file_name().to_bytes();
        if name == b"." || name == b".." {
            continue;
        }
        out.push((
            OsStr::from_bytes(name).to_os_string(),
            FileTypeHint::from_rustix(entry.file_type()),
            entry.ino(),
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testutil::tempdir_in;
    use std::os::unix::fs::MetadataExt;

    fn check(dir: &Path) {
        std::fs::write(dir.join("file"), b"x").unwrap();
        std::fs::create_dir(dir.join("sub")).unwrap();
        std::os::unix::fs::symlink("file", dir.join("link")).unwrap();
        crate::sys::meta::mknod(&dir.join("fifo"), libc::S_IFIFO | 0o600, 0).unwrap();
        let weird = OsStr::from_bytes(b"n\xffame");
        std::fs::write(dir.join(weird), b"").unwrap();
        let mut v = read_dir_names(dir).unwrap();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        let names: Vec<_> = v.iter().map(|e| e.0.clone()).collect();
        let mut expect: Vec<OsString> = ["fifo", "file", "link", "sub"].map(OsString::from).into();
        expect.push(weird.to_os_string());
        expect.sort();
        assert_eq!(names, expect);
        for (name, hint, ino) in &v {
            let md = std::fs::symlink_metadata(dir.join(name)).unwrap();
            assert_eq!(*ino, md.ino(), "{name:?}");
            if let Some(h) = hint {
                let expect = match name.to_str() {
                    Some("sub") => FileTypeHint::Dir,
                    Some("link") => FileTypeHint::Symlink,
                    Some("fifo") => FileTypeHint::Fifo,
                    _ => FileTypeHint::File,
                };
                assert_eq!(*h, expect, "{name:?}");
            }
        }
        assert!(read_dir_names(&dir.join("file")).is_err());
        assert!(read_dir_names(&dir.join("sub")).unwrap().is_empty());
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
