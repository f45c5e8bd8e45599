//! The delta engine: send only the chunks the destination lacks.
//!
//! Pieces, in the order a transfer uses them:
//!
//! - [`chunk`]: FastCDC (2020) content-defined chunking, sizes scaled to the
//!   basis file's size;
//! - [`sig`]: chunk signatures (length + truncated BLAKE3 per chunk, hashed in
//!   parallel batches on rayon over an `mmap` of the file) and their compact,
//!   versioned, defensively decoded binary format;
//! - [`ops`]: delta operations (copy a basis range, insert literal bytes) and
//!   the encoder that looks the sender's chunks up in the basis signature;
//! - [`apply`]: rebuilding the file into a fresh temp file (clone + patch on
//!   reflink filesystems, `copy_file_range` + writes elsewhere);
//! - [`hash`]: whole-file BLAKE3, used to verify the result and by
//!   `-c/--checksum`;
//! - [`fuzzy`]: rsync's `--fuzzy` choice of a similarly named basis (the
//!   remote receiver's, which cannot probe the source);
//! - [`reuse`]: a basis from elsewhere in the destination for a file it
//!   lacks (renamed or moved content).
//!
//! [`sync_file`] strings them together for a local `--no-whole-file`
//! transfer, where one process plays both sides.

pub mod apply;
pub mod chunk;
pub mod fuzzy;
pub mod hash;
pub mod ops;
pub mod reuse;
pub mod sig;

use crate::sys::copy::{CopyHints, CopyOptions, copy_file_data_hinted};
use crate::sys::mmap::{Access, map_read};
use std::fs::File;
use std::io;

/// What a delta transfer of one file did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Outcome {
    /// Bytes written from the source (rsync's "Literal data").
    pub literal: u64,
    /// Bytes taken from the basis (rsync's "Matched data").
    pub matched: u64,
    /// How the file was built (for the tests and benchmarks).
    pub method: apply::ApplyMethod,
    /// The first build did not match the source's hash and the file was
    /// copied whole instead (a basis or source changed under us).
    pub retried: bool,
}

/// Local delta transfer: rebuild the first `len` bytes of `src` into `out`
/// (a fresh, empty temp file opened read-write) using `basis` (the old
/// destination file) for every chunk it already has.
///
/// Both signatures are computed at once on rayon (basis chunked with
/// parameters scaled to its size, source with the same parameters, both
/// with full 32-byte chunk hashes), the delta applied, and the result
/// checked chunk by chunk against the source's chunk hashes; on a mismatch
/// `out` is emptied and filled with a whole-file copy.
pub fn sync_file(
    src: &File,
    len: u64,
    basis: &File,
    out: &File,
    hints: &CopyHints,
) -> io::Result<Outcome> {
    sync_file_with(src, len, basis, out, hints, |_| Ok(()))
}

/// [`sync_file`] with a hook run between apply and verification (tests use
/// it to damage the output and exercise the whole-file retry).
fn sync_file_with(
    src: &File,
    len: u64,
    basis: &File,
    out: &File,
    hints: &CopyHints,
    after_apply: impl FnOnce(&File) -> io::Result<()>,
) -> io::Result<Outcome> {
    let basis_len = basis.metadata()?.len();
    let params = chunk::ChunkParams::for_size(basis_len);
    let source = map_read(src, len, Access::Sequential)?;
    // Full-length (32-byte) chunk hashes on both sides: the source's then
    // also verify the result, so the source is read (and hashed) once.
    let (bsig, ssig) = rayon::join(
        || -> io::Result<sig::Signature> {
            let b = map_read(basis, basis_len, Access::Sequential)?;
            Ok(sig::Signature::compute(&b, params, sig::MAX_HASH_LEN))
        },
        || sig::Signature::compute(&source, params, sig::MAX_HASH_LEN),
    );
    let delta = ops::encode(&bsig?, &ssig);
    let method = apply::apply(basis, basis_len, &delta, &source, out, hints)?;
    after_apply(out)?;
    if out.metadata()?.len() == len && matches_chunks(out, &ssig)? {
        return Ok(Outcome {
            literal: delta.literal_bytes(),
            matched: delta.matched_bytes(),
            method,
            retried: false,
        });
    }
    out.set_len(0)?;
    copy_file_data_hinted(src, out, len, &CopyOptions::default(), hints)?;
    Ok(Outcome {
        literal: len,
        matched: 0,
        method,
        retried: true,
    })
}

/// Whether `out` holds, chunk by chunk, the bytes `sig` (full 32-byte
/// hashes) was computed from; the chunks are hashed in parallel batches.
///
/// Why not a whole-file hash: the source's chunk hashes are computed anyway,
/// and with full-length hashes each chunk is as well checked as by a
/// whole-file BLAKE3, so the source needs no second hashing pass.
fn matches_chunks(out: &File, sig: &sig::Signature) -> io::Result<bool> {
    use rayon::prelude::*;
    debug_assert_eq!(sig.hash_len(), sig::MAX_HASH_LEN);
    let bytes = map_read(out, sig.file_len, Access::Sequential)?;
    let offsets = sig.offsets();
    let per_task = ((1usize << 20) / sig.params.avg as usize).max(1);
    Ok((0..sig.len())
        .into_par_iter()
        .with_min_len(per_task)
        .all(|i| {
            let start = offsets[i] as usize;
            let end = start + sig.chunk_len(i) as usize;
            blake3::hash(&bytes[start..end]).as_bytes()[..] == *sig.chunk_hash(i)
        }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testutil::{create_rw as rw, pattern};
    use std::os::unix::fs::FileExt;

    #[test]
    fn local_sync_and_retry() {
        let d = tempfile::tempdir_in("/tmp").unwrap();
        let old = pattern(3 << 20, 1);
        let mut new = old.clone();
        new[1_000_000..1_000_100].fill(7);
        new.splice(0..0, *b"prepended");
        std::fs::write(d.path().join("old"), &old).unwrap();
        std::fs::write(d.path().join("new"), &new).unwrap();
        let src = File::open(d.path().join("new")).unwrap();
        let basis = File::open(d.path().join("old")).unwrap();
        let h = CopyHints::default();

        let out = rw(&d.path().join("out1"));
        let o = sync_file(&src, new.len() as u64, &basis, &out, &h).unwrap();
        assert!(std::fs::read(d.path().join("out1")).unwrap() == new);
        assert!(!o.retried);
        assert_eq!(o.literal + o.matched, new.len() as u64);
        assert!(o.literal < 40_000, "{o:?}");

        // A damaged build is detected and replaced by a whole-file copy.
        let out = rw(&d.path().join("out2"));
        let o = sync_file_with(&src, new.len() as u64, &basis, &out, &h, |f| {
            f.write_all_at(b"X", 5)
        })
        .unwrap();
        assert!(o.retried);
        assert_eq!((o.literal, o.matched), (new.len() as u64, 0));
        assert!(std::fs::read(d.path().join("out2")).unwrap() == new);

        // Only a prefix of a grown source is sent.
        let out = rw(&d.path().join("out3"));
        sync_file(&src, 1000, &basis, &out, &h).unwrap();
        assert_eq!(std::fs::read(d.path().join("out3")).unwrap(), &new[..1000]);
        // A source shorter than the listed size is an error, not a fault.
        let out = rw(&d.path().join("out4"));
        let e = sync_file(&src, new.len() as u64 + 1, &basis, &out, &h).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
    }
}
