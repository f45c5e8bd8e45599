//! rsync's quick check: is a destination file already up to date?

use crate::flist::checksum::{self, Sum};
use crate::flist::{Entry, Meta};
use crate::options::Options;
use std::cell::OnceCell;
use std::path::Path;

/// rsync's `same_time`: with `--modify-window=N` (N ≥ 0, default 0) times within N
/// whole seconds are equal (nanoseconds ignored); a negative window compares
/// nanoseconds exactly.
pub fn same_time(s1: i64, ns1: u32, s2: i64, ns2: u32, opts: &Options) -> bool {
    if opts.modify_window < 0 {
        return s1 == s2 && ns1 == ns2;
    }
    (s1 - s2).abs() <= opts.modify_window
}

/// rsync's `cmp_time`: -1, 0 or 1, honouring the modify window.
pub fn cmp_time(s1: i64, ns1: u32, s2: i64, ns2: u32, opts: &Options) -> i32 {
    if same_time(s1, ns1, s2, ns2, opts) {
        return 0;
    }
    if (s1, ns1) > (s2, ns2) { 1 } else { -1 }
}

/// True when the destination file can be left alone (data-wise);
/// `same_data` is `-c`'s content comparison, only asked for when the sizes
/// match (a size mismatch needs no hash, as in rsync).
pub fn unchanged(src: &Meta, dst: &Meta, opts: &Options, same_data: impl FnOnce() -> bool) -> bool {
    // rsync's quick_check_ok order: size, then -c, then --size-only, and
    // only then --ignore-times (so -c and --size-only both win over -I).
    if src.size != dst.size {
        return false;
    }
    if opts.checksum {
        return same_data();
    }
    if opts.size_only {
        return true;
    }
    if opts.ignore_times {
        return false;
    }
    same_time(src.mtime, src.mtime_nsec, dst.mtime, dst.mtime_nsec, opts)
}

/// `-c` for the pair the scan may have hashed: the entry's own sums when
/// the scan hashed them, else both files read now (`dest` never through a
/// symlink).
pub fn same_as_dest(e: &Entry, dest: &Path) -> bool {
    match &e.sums {
        Some(c) if c.dest_unread => c.src == checksum::sum_path(dest, e.meta.size, false),
        Some(c) => c.same(),
        None => {
            let len = e.meta.size;
            checksum::sum_path(e.src(), len, true) == checksum::sum_path(dest, len, false)
        }
    }
}

/// `-c` against a file other than the destination (a reference directory's):
/// the source's sum is taken from the scan or computed once into `src_sum`.
pub fn same_as_other(e: &Entry, src_sum: &OnceCell<Sum>, other: &Path) -> bool {
    let len = e.meta.size;
    let s = src_sum.get_or_init(|| match &e.sums {
        Some(c) => c.src,
        None => checksum::sum_path(e.src(), len, true),
    });
    *s == checksum::sum_path(other, len, false)
}
