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
//! The rescan manifest records the hash of a pair found equal with both
//! sides' metadata and ctimes; the next run takes it for a side whose stat
//! is still what was recorded ([`answers`]) and reads only the sides it
//! does not answer. Hashes of files changed just before they were read are
//! not recorded ([`recordable`]).

use super::{Kind, Meta};
use crate::sys::time::Timestamp;
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
    /// The source's sum came from a remote sender and the destination's is
    /// not read yet: the planner reads it if it asks (a remote receiver's
    /// entries are not paired with the destination by a scan).
    pub dest_unread: bool,
}

impl Checked {
    /// rsync's `-c` verdict: the sums are equal (two unreadable files too).
    pub fn same(&self) -> bool {
        self.src == self.dest
    }
}

/// One side of a pair as the listing saw it: its `lstat` and its ctime.
///
/// Why the ctime: it is what a cached hash is checked against besides the
/// metadata (see [`answers`]); [`Meta`] does not carry it.
#[derive(Clone, Copy, Debug)]
pub struct Seen<'a> {
    /// The side's metadata.
    pub meta: &'a Meta,
    /// Its ctime (`None`: not known, e.g. a followed symlink's referent).
    pub ctime: Option<Timestamp>,
}

/// Whether a side recorded as `rec` (metadata) with ctime `rec_ctime` is,
/// by its stat now, still the file that was hashed: a regular file with the
/// same device, inode, size, mtime (ns) and ctime (ns).
///
/// Why ctime: a rewrite can put the size and mtime back (`touch -d`), but
/// every write, truncate, rename or `utimensat` moves the ctime to "now",
/// and nothing lets a user set it back; an inode change (a file replaced
/// by another) shows in the inode.
pub fn answers(rec: &Meta, rec_ctime: Timestamp, now: &Seen<'_>) -> bool {
    let m = now.meta;
    now.ctime == Some(rec_ctime)
        && rec.kind == Kind::File
        && m.kind == Kind::File
        && rec.ino == m.ino
        && rec.dev == m.dev
        && rec.size == m.size
        && rec.mtime == m.mtime
        && rec.mtime_nsec == m.mtime_nsec
}

/// How much older than the start of its hashing a side's ctime and mtime
/// must be for its hash to be recorded.
///
/// Why (git's "racy index" rule): file times come from a clock that ticks
/// every few milliseconds (a second on some filesystems), so a write right
/// after the hash was read could leave both times as they were: the next
/// run would see the recorded stat and take a stale hash. A file changed
/// within the margin is hashed again next time instead.
pub const RACY_MARGIN_NS: i128 = 1_000_000_000;

/// [`RACY_MARGIN_NS`] for a file whose ctime and mtime both have zero
/// nanoseconds: most likely a filesystem with whole-second (or FAT's
/// two-second) timestamps.
const RACY_MARGIN_COARSE_NS: i128 = 3_000_000_000;

/// Whether a hash of sides `seen`, whose reading started at `started`
/// (ns since the epoch), may be recorded (see [`RACY_MARGIN_NS`]).
pub fn recordable(seen: &[Seen<'_>], started: i128) -> bool {
    seen.iter().all(|s| {
        let Some(c) = s.ctime else {
            return false;
        };
        let ns = |sec: i64, nsec: u32| sec as i128 * 1_000_000_000 + nsec as i128;
        let margin = if c.nsec == 0 && s.meta.mtime_nsec == 0 {
            RACY_MARGIN_COARSE_NS
        } else {
            RACY_MARGIN_NS
        };
        ns(c.sec, c.nsec).max(ns(s.meta.mtime, s.meta.mtime_nsec)) + margin <= started
    })
}

/// Now, in nanoseconds since the epoch (for [`recordable`]).
pub fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as i128)
        .unwrap_or(0)
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::CString;

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
                dest: None,
                dest_unread: false,
            }
            .same()
        );
        assert!(
            !Checked {
                src: a,
                dest: None,
                dest_unread: false
            }
            .same()
        );
        // A directory is not a file.
        std::fs::create_dir(d.path().join("sub")).unwrap();
        assert_eq!(sum_at(&dir, &c("sub"), 0, true), None);
    }

    #[test]
    fn a_cached_hash_answers_only_the_same_stat_and_ctime() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("a"), b"hello").unwrap();
        let st = crate::sys::meta::lstat_full(&d.path().join("a")).unwrap();
        let m = Meta::from_sys(&st);
        let now = Seen {
            meta: &m,
            ctime: Some(st.ctime),
        };
        assert!(answers(&m, st.ctime, &now));
        // Another ctime (a rewrite with the mtime put back) or inode, size,
        // mtime: not answered.
        let later = Timestamp::new(st.ctime.sec, (st.ctime.nsec + 1) % 1_000_000_000);
        assert!(!answers(&m, later, &now));
        for change in [
            |m: &mut Meta| m.ino += 1,
            |m: &mut Meta| m.size += 1,
            |m: &mut Meta| m.mtime_nsec ^= 1,
            |m: &mut Meta| m.dev += 1,
        ] {
            let mut r = m;
            change(&mut r);
            assert!(!answers(&r, st.ctime, &now));
        }
        assert!(!answers(&m, st.ctime, &Seen { ctime: None, ..now }));
        // Just written: too young to record; a second ago or more: fine.
        let t = now_ns();
        assert!(!recordable(&[now], t));
        assert!(recordable(&[now], t + RACY_MARGIN_NS + 10_000_000));
        assert!(!recordable(
            &[now, Seen { ctime: None, ..now }],
            t + 2 * RACY_MARGIN_NS
        ));
    }
}
