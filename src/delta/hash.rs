//! Whole-file BLAKE3, parallel for large files.
//!
//! Why here: the delta path verifies every rebuilt file against the sender's
//! whole-file hash, and `-c/--checksum` will compare files with the same
//! function (both sides hash, so it must be fast: BLAKE3 runs several GB/s per
//! core with SIMD, and `update_rayon` spreads one large file over all cores).

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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testutil::pattern;

    #[test]
    fn matches_reference_at_every_size_class() {
        let d = tempfile::tempdir().unwrap();
        for len in [0usize, 1, 1023, 65_536, RAYON_MIN - 1, RAYON_MIN, 9 << 20] {
            let data = pattern(len, 3);
            let p = d.path().join("f");
            std::fs::write(&p, &data).unwrap();
            let want = blake3::hash(&data);
            assert_eq!(hash_bytes(&data), want, "len {len}");
            let f = File::open(&p).unwrap();
            assert_eq!(hash_file(&f).unwrap(), want, "len {len}");
            if len > 0 {
                assert_eq!(
                    hash_file_prefix(&f, len as u64 - 1).unwrap(),
                    blake3::hash(&data[..len - 1])
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
