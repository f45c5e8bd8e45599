//! Rebuilding a file from a basis and a delta, into a fresh file.
//!
//! On filesystems with reflinks (xfs, btrfs) the output starts as a clone of
//! the basis (`FICLONE`: no data moved, extents shared) and only what changed
//! is written: copies whose basis offset equals their target offset are left
//! as cloned, other copies go through `copy_file_range` (which the kernel
//! turns into a block-aligned remap where it can, so shifted data still shares
//! extents) and literals are written. Elsewhere the output is built from
//! scratch: `copy_file_range` for copies (in-kernel, no user-space buffer) and
//! `pwrite` for literals, with `pread`/`pwrite` as the last resort.
//!
//! The caller verifies the result (whole-file BLAKE3) and renames it into
//! place, so the destination is always the old or the new file.

use super::ops::{Delta, Op};
use crate::sys::copy::{CopyHints, copy_file_range_at, copy_read_write, preallocate, try_reflink};
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::atomic::Ordering::Relaxed;

/// The block size assumed for extent sharing (remaps need offsets aligned to
/// the filesystem block, 4 KiB on common xfs and btrfs setups).
const REMAP_BLOCK: u64 = 4096;

/// How the output file was built.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ApplyMethod {
    /// Cloned from the basis, changed ranges patched.
    Reflink,
    /// Built with `copy_file_range` for copies and writes for literals.
    CopyRange,
    /// Built with `pread`/`pwrite` only.
    ReadWrite,
}

/// Build the target described by `delta` into `out` (fresh and empty,
/// opened for writing).
///
/// `basis` is the basis file (its first `basis_len` bytes are what the
/// delta's copies refer to); `literal` holds the target's bytes for the
/// literal ranges, indexed by target offset (locally: the whole source file).
/// `hints` remembers which methods the filesystem refused.
///
/// A copy outside `basis_len`, or literal data shorter than the target, is an
/// `InvalidData` error (deltas will come from the wire).
pub fn apply(
    basis: &File,
    basis_len: u64,
    delta: &Delta,
    literal: &[u8],
    out: &File,
    hints: &CopyHints,
) -> io::Result<ApplyMethod> {
    check(basis_len, delta, literal)?;
    let cloned = !hints.no_reflink.load(Relaxed)
        && basis_len > 0
        && match try_reflink(basis, out, basis_len) {
            Ok(true) => true,
            Ok(false) => {
                hints.no_reflink.store(true, Relaxed);
                false
            }
            Err(e) => return Err(e),
        };
    if !cloned && delta.len >= crate::sys::copy::AUTO_PREALLOCATE_MIN {
        preallocate(out, 0, delta.len, true)?;
    }
    let mut in_kernel = !hints.no_copy_range.load(Relaxed);
    let mut pos = 0u64;
    for op in &delta.ops {
        match *op {
            Op::Copy { offset, len } => {
                if !(cloned && offset == pos) {
                    // The kernel remaps (shares) only block-aligned ranges:
                    // when source and target are equally misaligned (data
                    // shifted by whole blocks), copy the head first so the
                    // rest starts aligned on both sides.
                    let head = if (pos - offset) % REMAP_BLOCK == 0 {
                        ((REMAP_BLOCK - pos % REMAP_BLOCK) % REMAP_BLOCK).min(len)
                    } else {
                        0
                    };
                    for (o, p, n) in [(offset, pos, head), (offset + head, pos + head, len - head)]
                    {
                        if n == 0 {
                            continue;
                        }
                        if in_kernel && copy_file_range_at(basis, o, out, p, n)?.is_none() {
                            hints.no_copy_range.store(true, Relaxed);
                            in_kernel = false;
                        }
                        if !in_kernel {
                            copy_read_write(basis, o, out, p, n)?;
                        }
                    }
                }
                pos += len;
            }
            Op::Literal { len } => {
                out.write_all_at(&literal[pos as usize..(pos + len) as usize], pos)?;
                pos += len;
            }
        }
    }
    // A clone of a longer basis keeps its tail until cut here.
    out.set_len(delta.len)?;
    Ok(if cloned {
        ApplyMethod::Reflink
    } else if in_kernel {
        ApplyMethod::CopyRange
    } else {
        ApplyMethod::ReadWrite
    })
}

/// Reject a delta that refers outside its inputs.
fn check(basis_len: u64, delta: &Delta, literal: &[u8]) -> io::Result<()> {
    let bad = |what: &str| Err(io::Error::new(io::ErrorKind::InvalidData, what.to_string()));
    let mut total = 0u64;
    for op in &delta.ops {
        let len = match *op {
            Op::Copy { offset, len } => {
                if offset.checked_add(len).is_none_or(|end| end > basis_len) {
                    return bad("delta copies past the end of the basis");
                }
                len
            }
            Op::Literal { len } => len,
        };
        total = match total.checked_add(len) {
            Some(t) => t,
            None => return bad("delta length overflows"),
        };
    }
    if total != delta.len {
        return bad("delta ops do not add up to its length");
    }
    let has_literal = delta.ops.iter().any(|o| matches!(o, Op::Literal { .. }));
    if has_literal && (literal.len() as u64) < delta.len {
        return bad("literal data shorter than the target");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testutil::pattern;

    #[test]
    fn rejects_out_of_range_deltas() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b"), [1u8; 10]).unwrap();
        let b = File::open(d.path().join("b")).unwrap();
        let o = File::create(d.path().join("o")).unwrap();
        let h = CopyHints::default();
        let past = Delta {
            ops: vec![Op::Copy { offset: 5, len: 6 }],
            len: 6,
        };
        assert_eq!(
            apply(&b, 10, &past, &[], &o, &h).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
        let overflow = Delta {
            ops: vec![Op::Copy {
                offset: u64::MAX,
                len: 2,
            }],
            len: 2,
        };
        assert!(apply(&b, 10, &overflow, &[], &o, &h).is_err());
        let short_lit = Delta {
            ops: vec![Op::Literal { len: 4 }],
            len: 4,
        };
        assert!(apply(&b, 10, &short_lit, &[0; 3], &o, &h).is_err());
        let wrong_len = Delta {
            ops: vec![Op::Literal { len: 4 }],
            len: 5,
        };
        assert!(apply(&b, 10, &wrong_len, &[0; 9], &o, &h).is_err());
    }

    #[test]
    fn builds_bytes_without_reflink() {
        let d = tempfile::tempdir_in("/tmp").unwrap();
        let basis = pattern(100_000, 1);
        let target = pattern(50_000, 2);
        std::fs::write(d.path().join("b"), &basis).unwrap();
        let b = File::open(d.path().join("b")).unwrap();
        let delta = Delta {
            ops: vec![
                Op::Literal { len: 10 },
                Op::Copy {
                    offset: 90_000,
                    len: 10_000,
                },
                Op::Literal { len: 40_000 },
            ],
            len: 50_010,
        };
        let mut lit = target.clone();
        lit.extend_from_slice(&[0; 10]);
        let mut want = lit[..10].to_vec();
        want.extend_from_slice(&basis[90_000..]);
        want.extend_from_slice(&lit[10_010..50_010]);
        for hints in [
            CopyHints::default(),
            CopyHints {
                no_reflink: true.into(),
                no_copy_range: true.into(),
            },
        ] {
            let p = d.path().join("o");
            let o = File::create(&p).unwrap();
            let m = apply(&b, 100_000, &delta, &lit, &o, &hints).unwrap();
            assert_ne!(m, ApplyMethod::Reflink, "ext4 /tmp has no reflink");
            assert!(std::fs::read(&p).unwrap() == want, "{m:?}");
            std::fs::remove_file(&p).unwrap();
        }
    }
}
