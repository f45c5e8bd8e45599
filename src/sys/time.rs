//! Nanosecond timestamps and setting them (`utimensat`, `futimens`).
//!
//! rsync preserves mtime (`-t`) and optionally atime (`-U`), and with `-l -t`
//! the mtime of symlinks themselves; all need nanosecond precision so a
//! second run sees "unchanged". Both calls exist since Linux 2.6.22, so there
//! is no fallback rung: an error here is a real error.

use std::fs::File;
use std::io;
use std::path::Path;

use rustix::fs::{AtFlags, CWD, Timespec, Timestamps, UTIME_OMIT};

/// A point in time as the kernel stores it: seconds since the epoch (may be
/// negative) plus nanoseconds in `0..1_000_000_000`.
///
/// Why: a plain, `Ord` value type the file list can store and compare without
/// `SystemTime`'s platform abstraction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp {
    /// Whole seconds since 1970-01-01T00:00:00Z.
    pub sec: i64,
    /// Nanoseconds past `sec`, always below one billion.
    pub nsec: u32,
}

impl Timestamp {
    /// Builds a timestamp; `nsec` must be below one billion.
    ///
    /// Why: a const constructor for tests and for values decoded from stat.
    pub const fn new(sec: i64, nsec: u32) -> Timestamp {
        Timestamp { sec, nsec }
    }

    fn to_timespec(self) -> Timespec {
        Timespec {
            tv_sec: self.sec,
            tv_nsec: self.nsec as _,
        }
    }
}

fn to_timestamps(atime: Option<Timestamp>, mtime: Option<Timestamp>) -> Timestamps {
    let omit = Timespec {
        tv_sec: 0,
        tv_nsec: UTIME_OMIT,
    };
    Timestamps {
        last_access: atime.map_or(omit, Timestamp::to_timespec),
        last_modification: mtime.map_or(omit, Timestamp::to_timespec),
    }
}

/// Sets the access and/or modification time of `path` (`None` leaves that
/// time untouched via `UTIME_OMIT`); with `follow == false` a symlink's own
/// times are set (`AT_SYMLINK_NOFOLLOW`).
///
/// Why: the path-based call for entries that are not open (symlinks,
/// directories after their contents are done, devices).
pub fn set_times(
    path: &Path,
    atime: Option<Timestamp>,
    mtime: Option<Timestamp>,
    follow: bool,
) -> io::Result<()> {
    let flags = if follow {
        AtFlags::empty()
    } else {
        AtFlags::SYMLINK_NOFOLLOW
    };
    rustix::fs::utimensat(CWD, path, &to_timestamps(atime, mtime), flags)?;
    Ok(())
}

/// Sets the access and/or modification time of an open file (`futimens`);
/// `None` leaves that time untouched.
///
/// Why: the apply path sets times on the temp file before renaming it into
/// place, with no path lookup and no race.
pub fn set_times_fd(
    file: &File,
    atime: Option<Timestamp>,
    mtime: Option<Timestamp>,
) -> io::Result<()> {
    rustix::fs::futimens(file, &to_timestamps(atime, mtime))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn mtime_of(md: &std::fs::Metadata) -> Timestamp {
        Timestamp::new(md.mtime(), md.mtime_nsec() as u32)
    }

    #[test]
    fn file_nanoseconds() {
        let d = tempfile::tempdir_in("/tmp").unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"x").unwrap();
        let at = Timestamp::new(1_000_000_000, 123_456_789);
        let mt = Timestamp::new(1_234_567_890, 987_654_321);
        set_times(&p, Some(at), Some(mt), true).unwrap();
        let md = std::fs::metadata(&p).unwrap();
        assert_eq!(mtime_of(&md), mt);
        assert_eq!((md.atime(), md.atime_nsec()), (at.sec, at.nsec as i64));
        // None leaves the other time alone.
        let mt2 = Timestamp::new(-1, 5); // before the epoch
        set_times(&p, None, Some(mt2), true).unwrap();
        let md = std::fs::metadata(&p).unwrap();
        assert_eq!(mtime_of(&md), mt2);
        assert_eq!(md.atime(), at.sec);
        // Via the fd.
        let f = File::options().write(true).open(&p).unwrap();
        let mt3 = Timestamp::new(42, 999_999_999);
        set_times_fd(&f, None, Some(mt3)).unwrap();
        assert_eq!(mtime_of(&f.metadata().unwrap()), mt3);
        assert_eq!(f.metadata().unwrap().atime(), at.sec);
    }

    #[test]
    fn symlink_nofollow() {
        let d = tempfile::tempdir_in("/tmp").unwrap();
        let target = d.path().join("target");
        let link = d.path().join("link");
        std::fs::write(&target, b"x").unwrap();
        let tt = Timestamp::new(1_500_000_000, 1);
        set_times(&target, None, Some(tt), true).unwrap();
        std::os::unix::fs::symlink("target", &link).unwrap();
        let lt = Timestamp::new(1_600_000_000, 222_333_444);
        set_times(&link, None, Some(lt), false).unwrap();
        assert_eq!(mtime_of(&std::fs::symlink_metadata(&link).unwrap()), lt);
        assert_eq!(mtime_of(&std::fs::metadata(&target).unwrap()), tt);
        // follow = true changes the target instead.
        set_times(&link, None, Some(tt), true).unwrap();
        assert_eq!(mtime_of(&std::fs::symlink_metadata(&link).unwrap()), lt);
    }
}
