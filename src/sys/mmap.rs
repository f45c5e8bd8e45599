//! Read-only file mappings for hashing and chunking.
//!
//! Why a wrapper: the delta engine reads whole files once, front to back, on
//! several threads. A mapping lets rayon tasks hash disjoint ranges without
//! copies or per-task buffers, and `madvise(MADV_SEQUENTIAL)` makes the kernel
//! read ahead aggressively and drop pages behind us; `MADV_HUGEPAGE` asks for
//! huge pages where the filesystem supports them (tmpfs, or read-only THP for
//! page-cache files), which cuts TLB misses on multi-GiB files. Both hints are
//! advisory: a kernel or filesystem that refuses them changes nothing.
//!
//! Caveat (shared by every mmap reader, and documented for callers): if another
//! process truncates the file while it is mapped, touching the lost pages
//! raises `SIGBUS`. [`map_read`] refuses to map past the current end of file,
//! which covers files that shrank before the call; a truncation during the
//! hashing itself is not guarded against.

use std::fs::File;
use std::io;
use std::ops::Deref;

/// Files smaller than this are read into memory instead of mapped: a mapping
/// costs a few syscalls and page faults that a single `read` beats.
pub const MAP_MIN: u64 = 64 * 1024;

/// The first `len` bytes of a file, mapped (or read, for small files).
///
/// Why an enum: callers want one `&[u8]` whatever the size, including empty
/// files (which cannot be mapped at all).
pub enum FileBytes {
    /// A read-only shared mapping with the access-pattern hints applied.
    Mapped(memmap2::Mmap),
    /// Small files (and empty ones) read with `pread`.
    Owned(Vec<u8>),
}

impl Deref for FileBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            FileBytes::Mapped(m) => m,
            FileBytes::Owned(v) => v,
        }
    }
}

/// Which access pattern a mapping is advised for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read once, front to back (hashing, chunking): `MADV_SEQUENTIAL` +
    /// `MADV_HUGEPAGE`.
    Sequential,
    /// Read at scattered offsets (a delta's basis): `MADV_HUGEPAGE` only, so
    /// read-ahead stays at the kernel's default.
    Random,
}

/// Map (or read) the first `len` bytes of `file` read-only.
///
/// Errors with `UnexpectedEof` when the file is shorter than `len` now, so a
/// file that shrank since it was listed is reported instead of faulting.
pub fn map_read(file: &File, len: u64, access: Access) -> io::Result<FileBytes> {
    let have = file.metadata()?.len();
    if have < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("file shrank: {have} of {len} bytes"),
        ));
    }
    if len < MAP_MIN {
        use std::os::unix::fs::FileExt;
        let mut v = vec![0u8; len as usize];
        file.read_exact_at(&mut v, 0)?;
        return Ok(FileBytes::Owned(v));
    }
    let len = usize::try_from(len).map_err(|_| io::Error::from(io::ErrorKind::OutOfMemory))?;
    // SAFETY: the mapping is read-only and private to this process; the one
    // hazard, another process truncating the file while it is mapped (SIGBUS
    // on access), is documented above and checked for at mapping time.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(file)? };
    if access == Access::Sequential {
        let _ = map.advise(memmap2::Advice::Sequential);
    }
    let _ = map.advise(memmap2::Advice::HugePage);
    Ok(FileBytes::Mapped(map))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testutil::pattern;

    #[test]
    fn small_large_empty_and_short() {
        let d = tempfile::tempdir().unwrap();
        for len in [0usize, 1, MAP_MIN as usize - 1, MAP_MIN as usize, 3 << 20] {
            let p = d.path().join(format!("f{len}"));
            let data = pattern(len, len as u64 + 1);
            std::fs::write(&p, &data).unwrap();
            let f = File::open(&p).unwrap();
            for a in [Access::Sequential, Access::Random] {
                let m = map_read(&f, len as u64, a).unwrap();
                assert!(*m == data[..], "len {len}");
            }
            // A prefix only.
            if len > 0 {
                let m = map_read(&f, len as u64 - 1, Access::Sequential).unwrap();
                assert!(*m == data[..len - 1]);
            }
            let e = map_read(&f, len as u64 + 1, Access::Sequential)
                .err()
                .unwrap();
            assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        }
    }
}
