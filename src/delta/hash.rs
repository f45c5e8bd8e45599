//! Whole-file BLAKE3, parallel for large files.
//!
//! Why here: the delta path verifies every rebuilt file against the sender's
//! whole-file hash, and `-c/--checksum` compares files with the same
//! function ([`hash_listed`]: both sides hash, so it must be fast: BLAKE3 runs
//! several GB/s per core with SIMD, and `update_rayon` spreads one large file
//! over all cores).

use crate::sys::mmap::{Access, map_read};
use std::fs::File;
use std::io;

/// Inputs at least this long are hashed with rayon; below it the cost of
/// splitting the work is larger than the gain.
pub const RAYON_MIN: usize = 1 << 20;

/// BLAKE3 of `data`, on all rayon threads when it is large.
pub fn hash_bytes(data: &[u8]) -> blake3::Hash {
    if data.len() >= RAYON_MIN {
        blake3::Hasher::new().update_rayon(data).finalize()
    } else {
        blake3::hash(data)
    }
}

/// BLAKE3 of the first `len` bytes of `file` (mapped with sequential
/// read-ahead; small files are read). A file shorter than `len` is an
/// `UnexpectedEof` error.
pub fn hash_file_prefix(file: &File, len: u64) -> io::Result<blake3::Hash> {
    let bytes = map_read(file, len, Access::Sequential)?;
    Ok(hash_bytes(&bytes))
}

/// BLAKE3 of the whole of `file` as it is now: what `-c/--checksum` will use
/// to compare a source file with its destination.
pub fn hash_file(file: &File) -> io::Result<blake3::Hash> {
    hash_file_prefix(file, file.metadata()?.len())
}

/// Blocks of a large file read (and hashed on rayon) at a time by
/// [`hash_listed`]: big enough that `update_rayon` spreads each one over all
/// cores.
const READ_BLOCK: usize = 8 << 20;

/// Files from this size up are hashed in [`READ_BLOCK`]s on rayon; smaller
/// ones stream through a [`STREAM_BLOCK`] buffer on one thread (the files
/// of a tree are hashed in parallel anyway).
const RAYON_LISTED_MIN: u64 = 16 << 20;

/// [`hash_listed`]'s read size for files below [`RAYON_LISTED_MIN`]: the
/// buffer stays in the core's L2 cache between the kernel's copy and the
/// hashing (a 1 MiB buffer made the copy ~3× dearer per byte).
const STREAM_BLOCK: usize = 128 << 10;

thread_local! {
    /// [`hash_listed`]'s [`STREAM_BLOCK`] buffer, reused from file to file
    /// (the linux tree hashes 84k files of 14 KiB on average).
    static STREAM: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    /// The [`READ_BLOCK`] buffer for large files, taken while in use (a
    /// rayon task stolen meanwhile finds it empty and makes its own), so it
    /// is not allocated (and zeroed) again for each file.
    static BLOCK: std::cell::Cell<Vec<u8>> = const { std::cell::Cell::new(Vec::new()) };
}

/// BLAKE3 of the first `len` bytes of `file`, read with `pread`; when the
/// file ends before `len` the rest counts as zero bytes.
///
/// Why: this is `-c/--checksum`'s hash. rsync hashes exactly the size it
/// listed, and a file that shrinks under its reader reads as zeros there; a
/// mapping would raise `SIGBUS` instead, so `-c` reads. Files from
/// [`RAYON_LISTED_MIN`] up are hashed block by block with `update_rayon`.
pub fn hash_listed(file: &File, len: u64) -> io::Result<blake3::Hash> {
    if len >= RAYON_LISTED_MIN {
        let mut buf = BLOCK.with(|b| b.take());
        buf.resize(READ_BLOCK, 0);
        let r = hash_blocks(file, len, &mut buf, true);
        BLOCK.with(|b| b.set(buf));
        return r;
    }
    STREAM.with(|b| {
        let mut buf = b.borrow_mut();
        if buf.len() < STREAM_BLOCK {
            buf.resize(STREAM_BLOCK, 0);
        }
        if len <= STREAM_BLOCK as u64 {
            let buf = &mut buf[..len as usize];
            let got = read_at_most(file, buf, 0)?;
            buf[got..].fill(0);
            return Ok(blake3::hash(buf));
        }
        hash_blocks(file, len, &mut buf, false)
    })
}

/// Hash `len` bytes of `file` read through `buf` (zeros past its end), each
/// block with `update_rayon` when `rayon`.
fn hash_blocks(file: &File, len: u64, buf: &mut [u8], rayon: bool) -> io::Result<blake3::Hash> {
    let mut h = blake3::Hasher::new();
    let mut off = 0u64;
    let mut eof = false;
    while off < len {
        let want = (len - off).min(buf.len() as u64) as usize;
        let b = &mut buf[..want];
        let got = if eof { 0 } else { read_at_most(file, b, off)? };
        if got < want {
            eof = true;
            b[got..].fill(0);
        }
        if rayon {
            h.update_rayon(b);
        } else {
            h.update(b);
        }
        off += want as u64;
    }
    Ok(h.finalize())
}

/// `pread` into `buf` from `off` until it is full or the file ends; the
/// number of bytes read.
fn read_at_most(file: &File, buf: &mut [u8], off: u64) -> io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut n = 0;
    while n < buf.len() {
        match file.read_at(&mut buf[n..], off + n as u64) {
            Ok(0) => break,
            Ok(r) => n += r,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testutil::pattern;

    #[test]
    fn matches_reference_at_every_size_class() {
        let d = tempfile::tempdir().unwrap();
        for len in [
            0usize,
            1,
            1023,
            65_536,
            STREAM_BLOCK + 1,
            RAYON_MIN - 1,
            RAYON_MIN,
            9 << 20,
            RAYON_LISTED_MIN as usize + 3,
        ] {
            let data = pattern(len, 3);
            let p = d.path().join("f");
            std::fs::write(&p, &data).unwrap();
            let want = blake3::hash(&data);
            assert_eq!(hash_bytes(&data), want, "len {len}");
            let f = File::open(&p).unwrap();
            assert_eq!(hash_file(&f).unwrap(), want, "len {len}");
            assert_eq!(hash_listed(&f, len as u64).unwrap(), want, "len {len}");
            if len > 0 {
                assert_eq!(
                    hash_file_prefix(&f, len as u64 - 1).unwrap(),
                    blake3::hash(&data[..len - 1])
                );
                assert_eq!(
                    hash_listed(&f, len as u64 - 1).unwrap(),
                    blake3::hash(&data[..len - 1])
                );
            }
            // Past the end of the file, zeros are hashed (rsync's reading
            // of a file that shrank since it was listed).
            for extra in [1usize, READ_BLOCK + 5] {
                let mut padded = data.clone();
                padded.resize(len + extra, 0);
                assert_eq!(
                    hash_listed(&f, (len + extra) as u64).unwrap(),
                    blake3::hash(&padded),
                    "len {len} + {extra}"
                );
            }
        }
        // The empty input has BLAKE3's published hash.
        assert_eq!(
            hash_bytes(&[]).to_hex().as_str(),
            "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"
        );
    }
}
