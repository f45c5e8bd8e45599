//! `-c/--checksum`: whole-file BLAKE3 of both sides, computed by the scan.
//!
//! rsync's sender hashes every regular file while it builds the file list and
//! its generator hashes each destination file whose size matches, one file
//! at a time. Here the scanner's listing tasks, which run ahead of the walk
//! on all cores and already hold the source and destination directories
//! open, hash the pairs that need it (both regular files of the same size)
//! in parallel and attach the result to the entry ([`Checked`]); the walk's
//! quick check then only compares two hashes. Entries the scan could not
//! pair (operands, reference directories of `--link-dest` and friends) are
//! hashed by path when the planner asks ([`sum_path`]).
//!
//! What a sum is follows rsync's `file_checksum`: the first *listed size*
//! bytes of the file (a file that shrank reads as zeros past its end, see
//! [`crate::delta::hash::hash_listed`]); a file that cannot be opened has no
//! sum, and two files without one compare equal (rsync's all-zero sums).
//!
//! The destination's hash goes through [`dest_sum`], where a cache that
//! already knows it (the rescan manifest: "hash when known") can answer
//! without reading the file ([`KnownSums`]).

use super::Meta;
use std::ffi::CStr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

/// A file's `-c` sum: its BLAKE3, or `None` when it could not be read.
pub type Sum = Option<blake3::Hash>;

/// Both sums of an entry whose source and destination are regular files of
/// the same size.
///
/// Why kept on the entry (not just the verdict): the planner reuses the
/// source's sum against reference directories, and a destination cache can
/// record the hash the destination file has once the item is done.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checked {
    /// The source file's sum.
    pub src: Sum,
    /// The destination file's sum.
    pub dest: Sum,
}

impl Checked {
    /// rsync's `-c` verdict: the sums are equal (two unreadable files too).
    pub fn same(&self) -> bool {
        self.src == self.dest
    }
}

/// Destination hashes known without reading the files.
///
/// Why: the seam for a per-destination cache (the manifest) that records a
/// whole-file hash per entry: when the entry's size, mtime and inode are as
/// recorded, its hash is too, and `-c` need not read the file again.
pub trait KnownSums: Send + Sync {
    /// The BLAKE3 of destination file `name` (list name, relative to the
    /// destination root) whose `lstat` is `meta`, if known.
    fn dest(&self, name: &Path, meta: &Meta) -> Option<blake3::Hash>;
}

/// The sum of `name` in directory `dir` over `len` bytes, following a
/// symlink only when `follow`.
pub fn sum_at(dir: &OwnedFd, name: &CStr, len: u64, follow: bool) -> Sum {
    let f = crate::sys::meta::open_file_at(dir.as_fd(), name, follow).ok()?;
    crate::delta::hash::hash_listed(&f, len).ok()
}

/// The sum of the file at `path` over `len` bytes (see [`sum_at`]).
pub fn sum_path(path: &Path, len: u64, follow: bool) -> Sum {
    let f = crate::sys::meta::open_file(path, follow).ok()?;
    crate::delta::hash::hash_listed(&f, len).ok()
}

/// The destination's sum: from `known` when it has it, else read from
/// `name` in `dir` (never through a symlink). `list_name` builds the entry's
/// list name (only asked for when there is a cache to ask).
pub fn dest_sum(
    known: Option<&dyn KnownSums>,
    dir: &OwnedFd,
    name: &CStr,
    list_name: impl FnOnce() -> std::path::PathBuf,
    meta: &Meta,
) -> Sum {
    if let Some(k) = known {
        if let Some(h) = k.dest(&list_name(), meta) {
            return Some(h);
        }
    }
    sum_at(dir, name, meta.size, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

    struct Fixed(blake3::Hash);
    impl KnownSums for Fixed {
        fn dest(&self, name: &Path, _: &Meta) -> Option<blake3::Hash> {
            (name == Path::new("d/known")).then_some(self.0)
        }
    }

    #[test]
    fn sums_follow_rsync_rules() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), b"hello").unwrap();
        std::fs::write(d.path().join("b"), b"hellp").unwrap();
        std::os::unix::fs::symlink("a", d.path().join("l")).unwrap();
        let dir = crate::sys::meta::open_dir(d.path()).unwrap();
        let c = |s: &str| CString::new(s).unwrap();
        let a = sum_at(&dir, &c("a"), 5, false);
        assert_eq!(a, Some(blake3::hash(b"hello")));
        assert_eq!(sum_path(&d.path().join("a"), 5, false), a);
        assert_ne!(sum_at(&dir, &c("b"), 5, false), a);
        // Only the listed size counts; a shorter file reads as zeros.
        assert_eq!(sum_at(&dir, &c("a"), 4, false), Some(blake3::hash(b"hell")));
        assert_eq!(
            sum_at(&dir, &c("a"), 7, false),
            Some(blake3::hash(b"hello\0\0"))
        );
        // A symlink is only read when following; a missing file has no sum,
        // and two files without sums are the same to -c.
        assert_eq!(sum_at(&dir, &c("l"), 5, false), None);
        assert_eq!(sum_at(&dir, &c("l"), 5, true), a);
        assert_eq!(sum_at(&dir, &c("nope"), 5, false), None);
        assert!(
            Checked {
                src: None,
                dest: None
            }
            .same()
        );
        assert!(!Checked { src: a, dest: None }.same());
        // A directory is not a file.
        std::fs::create_dir(d.path().join("sub")).unwrap();
        assert_eq!(sum_at(&dir, &c("sub"), 0, true), None);
        // A known destination hash is taken without reading the file.
        let meta = Meta::from_std(&std::fs::metadata(d.path().join("a")).unwrap());
        let k = Fixed(blake3::hash(b"cached"));
        let got = dest_sum(Some(&k), &dir, &c("a"), || "d/known".into(), &meta);
        assert_eq!(got, Some(blake3::hash(b"cached")));
        let got = dest_sum(Some(&k), &dir, &c("a"), || "d/other".into(), &meta);
        assert_eq!(got, a);
        assert_eq!(dest_sum(None, &dir, &c("a"), || unreachable!(), &meta), a);
    }
}
