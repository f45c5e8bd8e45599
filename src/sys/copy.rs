//! Whole-file data copy with the fastest method the kernel and filesystems allow.
//!
//! Strategy ladder (each rung falls back to the next on "not supported here"
//! errors, never on real I/O errors):
//!
//! 1. `FICLONE` (reflink): O(1), shares extents (xfs with reflink, btrfs, bcachefs).
//!    Skipped with `sparse` because a clone already preserves holes and rsync's
//!    `-S` semantics are about *creating* holes, which we do explicitly.
//! 2. `copy_file_range` loop: in-kernel copy, server-side copy on NFS, and
//!    extent-sharing on some filesystems. Fails with `EXDEV` across filesystems
//!    on modern kernels (≥ 5.19 for different fs types).
//! 3. `pread`/`pwrite` loop with a 256 KiB buffer: works everywhere.
//!
//! With `sparse`, we walk the source's data extents with `lseek(SEEK_DATA/
//! SEEK_HOLE)` and copy only those (rungs 2–3 per range), then `ftruncate` to
//! the full length so trailing holes exist. If the filesystem does not report
//! holes, we fall back to rsync `-S` behaviour: read blocks and seek over
//! all-zero ones.
//!
//! Positional I/O is used throughout so the file offsets of `src`/`dst` are
//! never relied upon nor disturbed.

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

use rustix::fs::{FallocateFlags, SeekFrom};
use rustix::io::Errno;

/// Options for [`copy_file_data`]; mirror rsync's `--sparse` and `--preallocate`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyOptions {
    /// Create holes in the destination where the source has holes (or, if the
    /// source filesystem cannot tell us, where the data is all zeros), like
    /// rsync `-S`.
    pub sparse: bool,
    /// Reserve the destination's space up front with `fallocate`, like rsync
    /// `--preallocate` (less fragmentation, early ENOSPC).
    pub preallocate: bool,
}

/// Which strategy [`copy_file_data`] ended up using; reported so the caller
/// can log it and tests can check the fallback ladder.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CopyMethod {
    /// `ioctl(FICLONE)`: extents shared with the source, no data moved.
    Reflink,
    /// In-kernel `copy_file_range` loop.
    CopyFileRange,
    /// Sparse-aware copy: only data ranges were copied, holes recreated.
    Sparse,
    /// Userspace `pread`/`pwrite` loop.
    ReadWrite,
}

/// Buffer size for the userspace copy loop: large enough to amortise syscalls,
/// small enough to stay in L2 and to be cheap per rayon worker.
pub const RW_BUF_SIZE: usize = 256 * 1024;

/// Non-sparse copies of at least this many bytes get a `FALLOC_FL_KEEP_SIZE`
/// preallocation even without `--preallocate`.
///
/// Why: for large files it lets the filesystem pick one contiguous extent
/// instead of growing the file chunk by chunk (less fragmentation, early
/// ENOSPC), at the cost of one cheap syscall. `KEEP_SIZE` means the visible
/// size still grows only as data is written, so a source that shrinks during
/// the copy is detected rather than masked by a zero tail. Small files are not
/// worth the extra syscall. Failures (e.g. `EOPNOTSUPP`) are ignored.
pub const AUTO_PREALLOCATE_MIN: u64 = 1024 * 1024;

/// Granularity of the all-zero block test in the fallback sparse path; one
/// typical filesystem block, so skipped blocks really become holes.
const SPARSE_BLOCK: usize = 4096;

/// Upper bound on one `copy_file_range` request (the kernel caps a single call
/// near 2 GiB anyway).
const CFR_CHUNK: u64 = 1 << 30;

/// What earlier copies between the same pair of filesystems learnt: which
/// methods the kernel refused there, so later copies skip the failing syscall.
///
/// Why: on ext4 or tmpfs every file would otherwise pay one failing `FICLONE`
/// ioctl, and across filesystems one failing `copy_file_range`.
#[derive(Debug, Default)]
pub struct CopyHints {
    /// `FICLONE` is not supported here.
    pub no_reflink: std::sync::atomic::AtomicBool,
    /// `copy_file_range` is not usable here (EXDEV and friends).
    pub no_copy_range: std::sync::atomic::AtomicBool,
}

/// [`copy_file_data`] that skips the methods `hints` says fail, and records
/// new failures there.
pub fn copy_file_data_hinted(
    src: &File,
    dst: &File,
    len: u64,
    opts: &CopyOptions,
    hints: &CopyHints,
) -> io::Result<CopyMethod> {
    use std::sync::atomic::Ordering::Relaxed;
    if opts.sparse {
        if len > 0 {
            copy_sparse(src, dst, len, opts.preallocate)?;
        }
        return Ok(CopyMethod::Sparse);
    }
    if len == 0 {
        return Ok(CopyMethod::ReadWrite);
    }
    if !hints.no_reflink.load(Relaxed) {
        if try_reflink(src, dst, len)? {
            return Ok(CopyMethod::Reflink);
        }
        hints.no_reflink.store(true, Relaxed);
    }
    if opts.preallocate {
        preallocate(dst, 0, len, false)?;
    } else if len >= AUTO_PREALLOCATE_MIN {
        preallocate(dst, 0, len, true)?;
    }
    if !hints.no_copy_range.load(Relaxed) {
        match copy_file_range_at(src, 0, dst, 0, len)? {
            Some(()) => return Ok(CopyMethod::CopyFileRange),
            None => hints.no_copy_range.store(true, Relaxed),
        }
    }
    copy_read_write(src, 0, dst, 0, len)?;
    Ok(CopyMethod::ReadWrite)
}

/// Copies the first `len` bytes of `src` into `dst` (fresh and empty), using
/// the fastest available method; returns the method used.
///
/// Why: this is the one hot data path of a local transfer, so it tries reflink,
/// then in-kernel copy, then a plain loop, transparently (see module docs).
///
/// * `len == 0` makes no syscalls and reports `ReadWrite` (`Sparse` with
///   `opts.sparse`).
/// * If `src` turns out to be shorter than `len` (it shrank while we copied),
///   the result is an `UnexpectedEof` error; if it is longer, only `len`
///   bytes end up in `dst`.
/// * With `opts.sparse` and `opts.preallocate`, only the data ranges are
///   preallocated, so holes survive.
/// * `dst` must be writable and not opened with `O_APPEND` (positional
///   writes would append on Linux); `src` must be readable.
pub fn copy_file_data(
    src: &File,
    dst: &File,
    len: u64,
    opts: &CopyOptions,
) -> io::Result<CopyMethod> {
    copy_file_data_hinted(src, dst, len, opts, &CopyHints::default())
}

/// Tries `ioctl(dst, FICLONE, src)`; `Ok(false)` means "not possible here,
/// fall back". After a clone, `dst` is cut to `len` if the source grew, and a
/// source shorter than `len` is an `UnexpectedEof` error.
///
/// Why: a reflink costs no I/O and no space, so it is always worth one ioctl.
pub fn try_reflink(src: &File, dst: &File, len: u64) -> io::Result<bool> {
    match rustix::fs::ioctl_ficlone(dst, src) {
        Ok(()) => {}
        Err(e) if is_unsupported(e) || e == Errno::INVAL || e == Errno::NOTTY => {
            return Ok(false);
        }
        Err(e) => return Err(e.into()),
    }
    let got = dst.metadata()?.len();
    if got < len {
        return Err(short_source(got, len));
    }
    if got > len {
        dst.set_len(len)?;
    }
    Ok(true)
}

/// Copies `len` bytes from `src` at `src_off` to `dst` at `dst_off` with a
/// `copy_file_range` loop that handles short copies.
///
/// Returns `Ok(None)` if nothing was copied because the call is unusable for
/// this pair (`EXDEV`, `EOPNOTSUPP`, `ENOSYS`, `EINVAL`, `EPERM`, or a 0-byte
/// result on the first call as some pseudo-filesystems give) so the caller can
/// fall back to [`copy_read_write`]. Running out of source data after the
/// first chunk is an `UnexpectedEof` error.
///
/// Why: exposed separately so the delta-transfer path can copy matched
/// blocks from the basis file in-kernel too.
pub fn copy_file_range_at(
    src: &File,
    src_off: u64,
    dst: &File,
    dst_off: u64,
    len: u64,
) -> io::Result<Option<()>> {
    let (mut off_in, mut off_out) = (src_off, dst_off);
    let end = src_off + len;
    let mut first = true;
    while off_in < end {
        let want = (end - off_in).min(CFR_CHUNK) as usize;
        match rustix::fs::copy_file_range(src, Some(&mut off_in), dst, Some(&mut off_out), want) {
            Ok(0) if first => return Ok(None),
            Ok(0) => return Err(short_source(off_in - src_off, len)),
            Ok(_) => first = false,
            Err(Errno::INTR) => {}
            Err(e) if first && (is_unsupported(e) || e == Errno::INVAL || e == Errno::PERM) => {
                return Ok(None);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(Some(()))
}

/// Copies `len` bytes from `src` at `src_off` to `dst` at `dst_off` with
/// `pread`/`pwrite` and a [`RW_BUF_SIZE`] buffer.
///
/// Why: the fallback that works on every file descriptor pair (across
/// filesystems, FUSE, old kernels).
pub fn copy_read_write(
    src: &File,
    src_off: u64,
    dst: &File,
    dst_off: u64,
    len: u64,
) -> io::Result<()> {
    let mut buf = vec![0u8; RW_BUF_SIZE.min(len as usize).max(1)];
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(buf.len() as u64) as usize;
        let n = read_at_retry(src, &mut buf[..want], src_off + done)?;
        if n == 0 {
            return Err(short_source(done, len));
        }
        dst.write_all_at(&buf[..n], dst_off + done)?;
        done += n as u64;
    }
    Ok(())
}

/// Reserves `[offset, offset+len)` in `file` with `fallocate`; `keep_size`
/// selects `FALLOC_FL_KEEP_SIZE`. Filesystems without fallocate support
/// (`EOPNOTSUPP`, `ENOSYS`) are silently accepted.
///
/// Why: rsync `--preallocate`, and our automatic preallocation of big files.
pub fn preallocate(file: &File, offset: u64, len: u64, keep_size: bool) -> io::Result<()> {
    let flags = if keep_size {
        FallocateFlags::KEEP_SIZE
    } else {
        FallocateFlags::empty()
    };
    loop {
        match rustix::fs::fallocate(file, flags, offset, len) {
            Ok(()) => return Ok(()),
            Err(Errno::INTR) => {}
            Err(e) if is_unsupported(e) => return Ok(()),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Data extents `(offset, length)` of `file` within `[0, len)` per
/// `SEEK_DATA`/`SEEK_HOLE`; `Ok(None)` if the filesystem cannot seek by data.
///
/// Why: cheap hole discovery that works on tmpfs too (where FIEMAP fails).
pub fn data_extents(file: &File, len: u64) -> io::Result<Option<Vec<(u64, u64)>>> {
    let mut out = Vec::new();
    let mut pos = 0u64;
    while pos < len {
        let data = match rustix::fs::seek(file, SeekFrom::Data(pos)) {
            Ok(d) => d,
            Err(Errno::NXIO) => break, // only a hole from `pos` to EOF
            Err(e) if is_unsupported(e) || e == Errno::INVAL => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if data >= len {
            break;
        }
        let hole = match rustix::fs::seek(file, SeekFrom::Hole(data)) {
            Ok(h) => h,
            Err(Errno::NXIO) => len, // file shrank under us; copy will notice
            Err(e) => return Err(e.into()),
        };
        let end = hole.min(len);
        if end <= data {
            // Should not happen; avoid looping forever on a confused filesystem.
            return Ok(None);
        }
        out.push((data, end - data));
        pos = end;
    }
    Ok(Some(out))
}

/// Sparse copy: extents if the source reports them, else zero-block scan.
fn copy_sparse(src: &File, dst: &File, len: u64, prealloc: bool) -> io::Result<()> {
    let extents = data_extents(src, len)?;
    // A single extent covering everything while the file has fewer blocks than
    // its length means the filesystem does not report holes (generic
    // SEEK_DATA); scan for zeros instead, like rsync -S.
    let trustworthy = match &extents {
        None => false,
        Some(v) if v.as_slice() == [(0, len)] => {
            use std::os::unix::fs::MetadataExt;
            src.metadata()?.blocks().saturating_mul(512) >= len
        }
        Some(_) => true,
    };
    // Like rsync -S, runs of zero blocks inside the data become holes too:
    // the data ranges are read and scanned rather than copied in the kernel.
    // With --preallocate only the written runs are reserved, so holes stay.
    match extents {
        Some(ranges) if trustworthy => {
            for (off, n) in ranges {
                copy_zero_scan(src, dst, off, n, prealloc)?;
            }
        }
        _ => copy_zero_scan(src, dst, 0, len, prealloc)?,
    }
    dst.set_len(len)
}

/// rsync `-S`: read `len` bytes at `base`, write only blocks that are not all
/// zero, leaving the rest as holes.
fn copy_zero_scan(src: &File, dst: &File, base: u64, len: u64, prealloc: bool) -> io::Result<()> {
    let mut buf = vec![0u8; RW_BUF_SIZE];
    let end = base + len;
    let mut done = base;
    while done < end {
        let want = (end - done).min(RW_BUF_SIZE as u64) as usize;
        fill_at(src, &mut buf[..want], done, end)?;
        // Write maximal runs of non-zero blocks.
        let mut i = 0;
        while i < want {
            let blk_end = (i + SPARSE_BLOCK).min(want);
            if is_zero(&buf[i..blk_end]) {
                i = blk_end;
                continue;
            }
            let start = i;
            i = blk_end;
            while i < want {
                let e = (i + SPARSE_BLOCK).min(want);
                if is_zero(&buf[i..e]) {
                    break;
                }
                i = e;
            }
            let off = done + start as u64;
            if prealloc {
                preallocate(dst, off, (i - start) as u64, false)?;
            }
            dst.write_all_at(&buf[start..i], off)?;
        }
        done += want as u64;
    }
    Ok(())
}

/// `--inplace -S`: rewrite `dst` from `src` for `len` bytes, punching holes
/// where the source has zero blocks (as rsync does), then cut to `len`.
///
/// Why: an in-place update cannot start from an empty file, so zero runs must
/// be deallocated explicitly; without hole punching support they are written.
pub fn copy_sparse_inplace(src: &File, dst: &File, len: u64) -> io::Result<()> {
    let mut buf = vec![0u8; RW_BUF_SIZE];
    let mut done = 0u64;
    while done < len {
        let want = (len - done).min(RW_BUF_SIZE as u64) as usize;
        fill_at(src, &mut buf[..want], done, len)?;
        let mut i = 0;
        while i < want {
            let e = (i + SPARSE_BLOCK).min(want);
            let off = done + i as u64;
            if is_zero(&buf[i..e]) && punch_hole(dst, off, (e - i) as u64).is_ok() {
                i = e;
                continue;
            }
            dst.write_all_at(&buf[i..e], off)?;
            i = e;
        }
        done += want as u64;
    }
    dst.set_len(len)
}

/// How [`write_at`] treats blocks of zeros.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PieceWrite {
    /// `-S`: all-zero blocks are not written (they stay holes in a fresh
    /// file; the caller sets the final length).
    pub sparse: bool,
    /// With `sparse`, the file is rewritten in place: zero blocks are punched
    /// out instead (written when the filesystem cannot punch).
    pub punch: bool,
    /// `--preallocate`: reserve each written run first.
    pub preallocate: bool,
}

/// Write `buf` at `off` in `dst` as `how` says.
///
/// Why: file data from a remote sender arrives in pieces of at most a frame;
/// `-S`, `--inplace -S` and `--preallocate` must treat each piece as the
/// local copy treats the source's blocks.
pub fn write_at(dst: &File, buf: &[u8], off: u64, how: PieceWrite) -> io::Result<()> {
    if !how.sparse {
        if how.preallocate && !buf.is_empty() {
            preallocate(dst, off, buf.len() as u64, false)?;
        }
        return dst.write_all_at(buf, off);
    }
    let mut i = 0;
    while i < buf.len() {
        let e = (i + SPARSE_BLOCK).min(buf.len());
        if is_zero(&buf[i..e]) {
            let at = off + i as u64;
            if !how.punch || punch_hole(dst, at, (e - i) as u64).is_ok() {
                i = e;
                continue;
            }
            dst.write_all_at(&buf[i..e], at)?;
            i = e;
            continue;
        }
        let start = i;
        i = e;
        while i < buf.len() {
            let e = (i + SPARSE_BLOCK).min(buf.len());
            if is_zero(&buf[i..e]) {
                break;
            }
            i = e;
        }
        let at = off + start as u64;
        if how.preallocate {
            preallocate(dst, at, (i - start) as u64, false)?;
        }
        dst.write_all_at(&buf[start..i], at)?;
    }
    Ok(())
}

/// `fallocate(PUNCH_HOLE | KEEP_SIZE)`: deallocate a range, which then reads
/// as zeros.
pub fn punch_hole(file: &File, offset: u64, len: u64) -> io::Result<()> {
    rustix::fs::fallocate(
        file,
        rustix::fs::FallocateFlags::PUNCH_HOLE | rustix::fs::FallocateFlags::KEEP_SIZE,
        offset,
        len,
    )?;
    Ok(())
}

/// Fast all-zero test (OR-folds 16-byte words so it vectorises).
fn is_zero(buf: &[u8]) -> bool {
    let mut chunks = buf.chunks_exact(16);
    let acc = chunks
        .by_ref()
        .fold(0u128, |a, c| a | u128::from_ne_bytes(c.try_into().unwrap()));
    acc == 0 && chunks.remainder().iter().all(|&b| b == 0)
}

/// Fill `buf` from `src` at `off`; a source ending before `end` is a short
/// read error (the file shrank while being copied).
fn fill_at(src: &File, buf: &mut [u8], off: u64, end: u64) -> io::Result<()> {
    let mut filled = 0;
    while filled < buf.len() {
        let n = read_at_retry(src, &mut buf[filled..], off + filled as u64)?;
        if n == 0 {
            return Err(short_source(off + filled as u64, end));
        }
        filled += n;
    }
    Ok(())
}

fn read_at_retry(f: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    loop {
        match f.read_at(buf, off) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            r => return r,
        }
    }
}

/// "This operation does not work for these files/this filesystem".
fn is_unsupported(e: Errno) -> bool {
    e == Errno::OPNOTSUPP || e == Errno::XDEV || e == Errno::NOSYS
}

fn short_source(got: u64, want: u64) -> io::Error {
    io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("source file shrank during copy: got {got} of {want} bytes"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testutil::{pattern, tempdir_in};
    use std::os::unix::fs::MetadataExt;
    use std::path::Path;

    fn write_file(p: &Path, data: &[u8]) -> File {
        std::fs::write(p, data).unwrap();
        File::open(p).unwrap()
    }

    /// Copies `data` from a file in `src_dir` to a file in `dst_dir`.
    fn roundtrip(src_dir: &Path, dst_dir: &Path, data: &[u8], opts: CopyOptions) -> CopyMethod {
        let sp = src_dir.join("src");
        let dp = dst_dir.join("dst");
        let src = write_file(&sp, data);
        let dst = File::create(&dp).unwrap();
        let m = copy_file_data(&src, &dst, data.len() as u64, &opts).unwrap();
        drop(dst);
        let got = std::fs::read(&dp).unwrap();
        assert_eq!(got.len(), data.len(), "length for {m:?}");
        assert!(got == data, "content differs for {m:?}, len {}", data.len());
        std::fs::remove_file(&sp).unwrap();
        std::fs::remove_file(&dp).unwrap();
        m
    }

    #[test]
    fn sizes_same_fs_ext4() {
        let d = tempfile::tempdir_in("/tmp").unwrap();
        let opts = CopyOptions::default();
        assert_eq!(
            roundtrip(d.path(), d.path(), &[], opts),
            CopyMethod::ReadWrite
        );
        for len in [1usize, (1 << 20) + 3] {
            let data = pattern(len, len as u64);
            let m = roundtrip(d.path(), d.path(), &data, opts);
            // ext4 has no reflink; copy_file_range works within one fs.
            assert!(
                matches!(m, CopyMethod::CopyFileRange | CopyMethod::Reflink),
                "{m:?}"
            );
        }
        // Sparse and preallocate paths must produce identical bytes too.
        for o in [
            CopyOptions {
                sparse: true,
                preallocate: false,
            },
            CopyOptions {
                sparse: false,
                preallocate: true,
            },
            CopyOptions {
                sparse: true,
                preallocate: true,
            },
        ] {
            for len in [0usize, 1, (1 << 20) + 3] {
                roundtrip(d.path(), d.path(), &pattern(len, 7), o);
            }
        }
    }

    #[test]
    fn big_64mib() {
        let d = tempfile::tempdir_in("/tmp").unwrap();
        let data = pattern(64 << 20, 42);
        roundtrip(d.path(), d.path(), &data, CopyOptions::default());
    }

    #[test]
    fn cross_fs_falls_back() {
        let src = tempfile::tempdir_in("/tmp").unwrap();
        let Some(dst) = tempdir_in("/dev/shm") else {
            return;
        };
        let same_dev = std::fs::metadata(src.path()).unwrap().dev()
            == std::fs::metadata(dst.path()).unwrap().dev();
        for len in [1usize, (1 << 20) + 3] {
            let m = roundtrip(
                src.path(),
                dst.path(),
                &pattern(len, 3),
                CopyOptions::default(),
            );
            if !same_dev {
                assert_eq!(m, CopyMethod::ReadWrite, "ext4 -> tmpfs must fall back");
            }
        }
    }

    #[test]
    fn same_fs_tmpfs() {
        let Some(d) = tempdir_in("/dev/shm") else {
            return;
        };
        let data = pattern((1 << 20) + 3, 5);
        let m = roundtrip(d.path(), d.path(), &data, CopyOptions::default());
        // tmpfs cannot reflink but copy_file_range works within it.
        assert_eq!(m, CopyMethod::CopyFileRange);
        roundtrip(d.path(), d.path(), &[1], CopyOptions::default());
    }

    #[test]
    fn read_write_and_cfr_helpers_with_offsets() {
        let d = tempfile::tempdir_in("/tmp").unwrap();
        let data = pattern(100_000, 9);
        let src = write_file(&d.path().join("s"), &data);
        let dst = File::create(d.path().join("d")).unwrap();
        copy_read_write(&src, 10, &dst, 0, 1000).unwrap();
        assert!(
            copy_file_range_at(&src, 2000, &dst, 1000, 5000)
                .unwrap()
                .is_some()
        );
        let got = std::fs::read(d.path().join("d")).unwrap();
        assert_eq!(&got[..1000], &data[10..1010]);
        assert_eq!(&got[1000..6000], &data[2000..7000]);
        // Asking for more than the source holds is an error, not silent truncation.
        let dst2 = File::create(d.path().join("d2")).unwrap();
        let e = copy_read_write(&src, 0, &dst2, 0, 200_000).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        let e = copy_file_data(&src, &dst2, 200_000, &CopyOptions::default()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }

    /// 1 MiB data, 10 MiB hole, 1 MiB data, 5 MiB trailing hole.
    fn sparse_case(dir: &Path) {
        const MIB: u64 = 1 << 20;
        let len = 17 * MIB;
        let sp = dir.join("sparse-src");
        let a = pattern(MIB as usize, 1);
        let b = pattern(MIB as usize, 2);
        {
            let f = File::create(&sp).unwrap();
            f.write_all_at(&a, 0).unwrap();
            f.write_all_at(&b, 11 * MIB).unwrap();
            f.set_len(len).unwrap();
        }
        let src = File::open(&sp).unwrap();
        // Holes must be found by SEEK_DATA/SEEK_HOLE, not by the zero scan.
        assert_eq!(
            data_extents(&src, len).unwrap(),
            Some(vec![(0, MIB), (11 * MIB, MIB)])
        );
        for prealloc in [false, true] {
            let dp = dir.join(format!("sparse-dst-{prealloc}"));
            let dst = File::create(&dp).unwrap();
            let opts = CopyOptions {
                sparse: true,
                preallocate: prealloc,
            };
            assert_eq!(
                copy_file_data(&src, &dst, len, &opts).unwrap(),
                CopyMethod::Sparse
            );
            let md = dst.metadata().unwrap();
            assert_eq!(md.len(), len);
            let allocated = md.blocks() * 512;
            assert!(
                allocated <= 3 * MIB,
                "dst not sparse: {allocated} bytes allocated"
            );
            let got = std::fs::read(&dp).unwrap();
            assert!(got[..MIB as usize] == a[..]);
            assert!(got[MIB as usize..11 * MIB as usize].iter().all(|&x| x == 0));
            assert!(got[11 * MIB as usize..12 * MIB as usize] == b[..]);
            assert!(got[12 * MIB as usize..].iter().all(|&x| x == 0));
        }
        // Zero-scan fallback: a fully written file with zero runs becomes sparse.
        let zp = dir.join("zeros-src");
        let mut z = vec![0u8; 4 * MIB as usize];
        z[..4096].copy_from_slice(&a[..4096]);
        let zsrc = write_file(&zp, &z);
        let zd = File::create(dir.join("zeros-dst")).unwrap();
        copy_zero_scan(&zsrc, &zd, 0, z.len() as u64, false).unwrap();
        zd.set_len(z.len() as u64).unwrap();
        assert!(zd.metadata().unwrap().blocks() * 512 <= 64 * 1024);
        assert!(std::fs::read(dir.join("zeros-dst")).unwrap() == z);
    }

    #[test]
    fn sparse_ext4() {
        let d = tempfile::tempdir_in("/tmp").unwrap();
        sparse_case(d.path());
    }

    #[test]
    fn sparse_tmpfs() {
        let Some(d) = tempdir_in("/dev/shm") else {
            return;
        };
        sparse_case(d.path());
    }

    #[test]
    fn zero_test() {
        assert!(is_zero(&[]));
        assert!(is_zero(&[0; 33]));
        let mut v = [0u8; 33];
        v[32] = 1;
        assert!(!is_zero(&v));
        v[32] = 0;
        v[3] = 1;
        assert!(!is_zero(&v));
    }

    /// Loop-mounted XFS with reflink; unmounted (lazily) and detached on drop.
    struct XfsMount {
        dir: tempfile::TempDir,
    }

    impl XfsMount {
        fn new() -> Result<XfsMount, String> {
            use std::process::Command;
            if !rustix::process::geteuid().is_root() {
                return Err("not root".into());
            }
            let dir = tempfile::tempdir_in("/tmp").map_err(|e| e.to_string())?;
            let img = dir.path().join("img");
            let mnt = dir.path().join("mnt");
            std::fs::create_dir(&mnt).map_err(|e| e.to_string())?;
            File::create(&img)
                .and_then(|f| f.set_len(512 << 20))
                .map_err(|e| e.to_string())?;
            let mkfs = Command::new("mkfs.xfs")
                .args(["-q", "-m", "reflink=1"])
                .arg(&img)
                .status()
                .map_err(|e| format!("mkfs.xfs unavailable: {e}"))?;
            if !mkfs.success() {
                return Err(format!("mkfs.xfs failed: {mkfs}"));
            }
            let mount = Command::new("mount")
                .args(["-o", "loop"])
                .arg(&img)
                .arg(&mnt)
                .status()
                .map_err(|e| e.to_string())?;
            if !mount.success() {
                return Err(format!("loop mount failed: {mount}"));
            }
            Ok(XfsMount { dir })
        }

        fn path(&self) -> std::path::PathBuf {
            self.dir.path().join("mnt")
        }
    }

    impl Drop for XfsMount {
        fn drop(&mut self) {
            // Lazy unmount also releases the loop device (autoclear).
            let _ = std::process::Command::new("umount")
                .arg("-l")
                .arg(self.path())
                .status();
        }
    }

    #[test]
    fn reflink_on_xfs_else_fallback() {
        // Always checked: ext4 cannot reflink, so the ladder must step down.
        let d = tempfile::tempdir_in("/tmp").unwrap();
        let data = pattern(300_000, 11);
        let m = roundtrip(d.path(), d.path(), &data, CopyOptions::default());
        assert_ne!(
            m,
            CopyMethod::ReadWrite,
            "same-fs copy should stay in kernel"
        );

        let xfs = match XfsMount::new() {
            Ok(x) => x,
            Err(why) => {
                eprintln!("skipping reflink part: {why}");
                return;
            }
        };
        let mnt = xfs.path();
        assert_eq!(
            roundtrip(&mnt, &mnt, &data, CopyOptions::default()),
            CopyMethod::Reflink
        );
        assert_eq!(
            roundtrip(&mnt, &mnt, &[], CopyOptions::default()),
            CopyMethod::ReadWrite
        );
        // Clone then cut: source longer than `len`.
        let src = write_file(&mnt.join("long"), &data);
        let dst = File::create(mnt.join("cut")).unwrap();
        let m = copy_file_data(&src, &dst, 1000, &CopyOptions::default()).unwrap();
        assert_eq!(m, CopyMethod::Reflink);
        assert_eq!(std::fs::read(mnt.join("cut")).unwrap(), &data[..1000]);
        // Sparse skips reflink on purpose.
        assert_eq!(
            roundtrip(
                &mnt,
                &mnt,
                &data,
                CopyOptions {
                    sparse: true,
                    preallocate: false
                }
            ),
            CopyMethod::Sparse
        );
        // Across filesystems (xfs -> ext4) no clone is possible.
        let m = roundtrip(&mnt, d.path(), &data, CopyOptions::default());
        assert_ne!(m, CopyMethod::Reflink);
    }
}
