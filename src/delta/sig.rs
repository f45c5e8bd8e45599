//! Chunk signatures and their compact, versioned binary format.
//!
//! A signature lists a file's chunks (length and truncated BLAKE3 hash, in
//! order; offsets are the running sum of lengths). The receiver computes it
//! for its basis file and the sender looks its own chunks up in it.
//!
//! ## Format, version 1
//!
//! ```text
//! "RSIG"  u8 version (1)  u8 hash_len (16..=32)
//! varint min  varint avg  varint max          chunk parameters
//! varint file_len  varint count
//! count × (varint len, hash_len bytes)
//! ```
//!
//! Varints are unsigned LEB128 (at most 10 bytes). About 18 bytes per chunk
//! with the default 16-byte hashes. The format will travel over the wire, so
//! [`Signature::decode`] trusts nothing: every length and count is bounded
//! (parameters within fastcdc's limits, `count` ≤ [`MAX_CHUNKS`] and no more
//! than the remaining bytes can hold, each chunk `1..=max` bytes, the lengths
//! summing to `file_len`, no trailing bytes) and malformed input is an error,
//! never a panic or a large allocation.

use super::chunk::{ChunkParams, chunk_ends};
use rayon::prelude::*;
use std::fmt;

/// The first bytes of an encoded signature.
pub const MAGIC: &[u8; 4] = b"RSIG";
/// The format version written by [`Signature::encode`].
pub const VERSION: u8 = 1;
/// Hash bytes kept per chunk by default: 128 bits make an accidental
/// collision negligible, and a wrong match would still be caught by the
/// whole-file verification after apply.
pub const DEFAULT_HASH_LEN: u8 = 16;
/// Shortest hash accepted (the collision bound above).
pub const MIN_HASH_LEN: u8 = 16;
/// Longest hash: a whole BLAKE3 output.
pub const MAX_HASH_LEN: u8 = 32;
/// Most chunks a signature may list (2^28: a 4 TiB file at the smallest
/// average chunk size the scaling picks for it has far fewer).
pub const MAX_CHUNKS: u64 = 1 << 28;

/// The chunk list of one file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Signature {
    /// The chunking parameters used (the other side must chunk alike).
    pub params: ChunkParams,
    /// The file's length (the sum of the chunk lengths).
    pub file_len: u64,
    hash_len: u8,
    lens: Vec<u32>,
    /// `lens.len() * hash_len` bytes: the truncated hashes, back to back.
    hashes: Vec<u8>,
}

/// Why an encoded signature was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SigError {
    /// The input ended inside a field.
    Truncated,
    /// Not a signature (wrong magic).
    BadMagic,
    /// A format version this build does not read.
    Version(u8),
    /// A field's value is out of its bounds.
    Invalid(&'static str),
    /// Bytes left after the last chunk.
    TrailingBytes,
}

impl fmt::Display for SigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SigError::Truncated => write!(f, "signature truncated"),
            SigError::BadMagic => write!(f, "not a signature"),
            SigError::Version(v) => write!(f, "unsupported signature version {v}"),
            SigError::Invalid(what) => write!(f, "invalid signature: {what}"),
            SigError::TrailingBytes => write!(f, "trailing bytes after signature"),
        }
    }
}

impl std::error::Error for SigError {}

/// Chunks hashed per rayon task at least, so tasks are ~1 MiB of work.
fn batch(params: ChunkParams) -> usize {
    ((1 << 20) / params.avg as usize).max(1)
}

impl Signature {
    /// Chunk `data` with `params` and hash the chunks in parallel batches.
    ///
    /// Panics if `params` is invalid or `hash_len` is outside
    /// [`MIN_HASH_LEN`]`..=`[`MAX_HASH_LEN`] (programming errors: decoded
    /// signatures are checked before they get here).
    pub fn compute(data: &[u8], params: ChunkParams, hash_len: u8) -> Signature {
        assert!((MIN_HASH_LEN..=MAX_HASH_LEN).contains(&hash_len));
        let ends = chunk_ends(data, params);
        let hl = hash_len as usize;
        let mut hashes = vec![0u8; ends.len() * hl];
        hashes
            .par_chunks_mut(hl)
            .enumerate()
            .with_min_len(batch(params))
            .for_each(|(i, out)| {
                let start = if i == 0 { 0 } else { ends[i - 1] as usize };
                let h = blake3::hash(&data[start..ends[i] as usize]);
                out.copy_from_slice(&h.as_bytes()[..hl]);
            });
        let mut prev = 0;
        let lens = ends
            .iter()
            .map(|&e| {
                let l = (e - prev) as u32;
                prev = e;
                l
            })
            .collect();
        Signature {
            params,
            file_len: data.len() as u64,
            hash_len,
            lens,
            hashes,
        }
    }

    /// Number of chunks.
    pub fn len(&self) -> usize {
        self.lens.len()
    }

    /// True for the signature of an empty file.
    pub fn is_empty(&self) -> bool {
        self.lens.is_empty()
    }

    /// Hash bytes per chunk.
    pub fn hash_len(&self) -> u8 {
        self.hash_len
    }

    /// Length of chunk `i`.
    pub fn chunk_len(&self, i: usize) -> u32 {
        self.lens[i]
    }

    /// Truncated hash of chunk `i`.
    pub fn chunk_hash(&self, i: usize) -> &[u8] {
        let hl = self.hash_len as usize;
        &self.hashes[i * hl..(i + 1) * hl]
    }

    /// Chunk start offsets (running sums of the lengths).
    pub fn offsets(&self) -> Vec<u64> {
        let mut off = 0u64;
        self.lens
            .iter()
            .map(|&l| {
                let o = off;
                off += l as u64;
                o
            })
            .collect()
    }

    /// The version-1 encoding (see the module docs).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(32 + self.lens.len() * (3 + self.hash_len as usize));
        out.extend_from_slice(MAGIC);
        out.push(VERSION);
        out.push(self.hash_len);
        for v in [
            self.params.min as u64,
            self.params.avg as u64,
            self.params.max as u64,
            self.file_len,
            self.lens.len() as u64,
        ] {
            put_varint(&mut out, v);
        }
        for i in 0..self.lens.len() {
            put_varint(&mut out, self.lens[i] as u64);
            out.extend_from_slice(self.chunk_hash(i));
        }
        out
    }

    /// Parse and check an encoded signature (see the module docs for the
    /// bounds enforced). Never panics; allocates at most in proportion to
    /// the input's length.
    pub fn decode(buf: &[u8]) -> Result<Signature, SigError> {
        let mut r = Reader { buf, pos: 0 };
        if r.bytes(4)? != MAGIC {
            return Err(SigError::BadMagic);
        }
        let version = r.byte()?;
        if version != VERSION {
            return Err(SigError::Version(version));
        }
        let hash_len = r.byte()?;
        if !(MIN_HASH_LEN..=MAX_HASH_LEN).contains(&hash_len) {
            return Err(SigError::Invalid("hash length"));
        }
        let mut param = || -> Result<u32, SigError> {
            u32::try_from(r.varint()?).map_err(|_| SigError::Invalid("chunk size"))
        };
        let params = ChunkParams {
            min: param()?,
            avg: param()?,
            max: param()?,
        };
        if !params.is_valid() {
            return Err(SigError::Invalid("chunk sizes"));
        }
        let file_len = r.varint()?;
        let count = r.varint()?;
        let per_chunk = 1 + hash_len as u64;
        if count > MAX_CHUNKS || count > (r.remaining() as u64) / per_chunk {
            return Err(SigError::Invalid("chunk count"));
        }
        // Every chunk holds at least one byte and at most `max`.
        if file_len < count || file_len > count.saturating_mul(params.max as u64) {
            return Err(SigError::Invalid("file length"));
        }
        let hl = hash_len as usize;
        let mut lens = Vec::with_capacity(count as usize);
        let mut hashes = Vec::with_capacity(count as usize * hl);
        let mut sum = 0u64;
        for _ in 0..count {
            let l = r.varint()?;
            if l == 0 || l > params.max as u64 {
                return Err(SigError::Invalid("chunk length"));
            }
            sum += l; // ≤ count · 16 MiB: no overflow
            lens.push(l as u32);
            hashes.extend_from_slice(r.bytes(hl)?);
        }
        if sum != file_len {
            return Err(SigError::Invalid("chunk lengths do not add up"));
        }
        if r.remaining() != 0 {
            return Err(SigError::TrailingBytes);
        }
        Ok(Signature {
            params,
            file_len,
            hash_len,
            lens,
            hashes,
        })
    }
}

/// Append `v` as unsigned LEB128.
fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A bounds-checked cursor over untrusted input.
struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn bytes(&mut self, n: usize) -> Result<&'a [u8], SigError> {
        if self.remaining() < n {
            return Err(SigError::Truncated);
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn byte(&mut self) -> Result<u8, SigError> {
        Ok(self.bytes(1)?[0])
    }

    /// LEB128 in its shortest form: at most 10 bytes, the 10th holding only
    /// the top bit (so every accepted signature has exactly one encoding).
    fn varint(&mut self) -> Result<u64, SigError> {
        let mut v = 0u64;
        for i in 0..10 {
            let b = self.byte()?;
            if i == 9 && b > 1 {
                return Err(SigError::Invalid("varint overflows 64 bits"));
            }
            v |= ((b & 0x7f) as u64) << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(SigError::Invalid("varint not in shortest form"));
                }
                return Ok(v);
            }
        }
        Err(SigError::Invalid("varint too long"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testutil::pattern;

    fn sig(len: usize, seed: u64) -> Signature {
        let data = pattern(len, seed);
        Signature::compute(&data, ChunkParams::for_size(len as u64), DEFAULT_HASH_LEN)
    }

    #[test]
    fn roundtrip_and_size() {
        for len in [0usize, 1, 5000, 1 << 20] {
            let s = sig(len, 9);
            let enc = s.encode();
            assert_eq!(Signature::decode(&enc).unwrap(), s);
            // Compact: header plus ≤ 3 + 16 bytes per chunk.
            assert!(
                enc.len() <= 32 + s.len() * 19,
                "{} for {}",
                enc.len(),
                s.len()
            );
        }
        let s = sig(1 << 20, 1);
        assert_eq!(s.offsets()[0], 0);
        assert_eq!(
            (0..s.len()).map(|i| s.chunk_len(i) as u64).sum::<u64>(),
            1 << 20
        );
        let data = pattern(1 << 20, 1);
        let (o, l) = (s.offsets()[1] as usize, s.chunk_len(1) as usize);
        assert_eq!(
            s.chunk_hash(1),
            &blake3::hash(&data[o..o + l]).as_bytes()[..16]
        );
    }

    #[test]
    fn rejects_malformed() {
        let good = sig(200_000, 4).encode();
        assert_eq!(Signature::decode(&good[..3]), Err(SigError::Truncated));
        let mut b = good.clone();
        b[0] = b'X';
        assert_eq!(Signature::decode(&b), Err(SigError::BadMagic));
        let mut b = good.clone();
        b[4] = 2;
        assert_eq!(Signature::decode(&b), Err(SigError::Version(2)));
        let mut b = good.clone();
        b[5] = 8;
        assert!(matches!(Signature::decode(&b), Err(SigError::Invalid(_))));
        let mut b = good.clone();
        b.push(0);
        assert_eq!(Signature::decode(&b), Err(SigError::TrailingBytes));
        assert_eq!(
            Signature::decode(&good[..good.len() - 1]),
            Err(SigError::Truncated)
        );
        // A huge count in a short buffer is refused before any allocation.
        let mut b = b"RSIG\x01\x10".to_vec();
        for v in [512u64, 2048, 8192, 1 << 40, u64::MAX >> 1] {
            put_varint(&mut b, v);
        }
        assert!(matches!(Signature::decode(&b), Err(SigError::Invalid(_))));
        // Overlong varint.
        let mut b = b"RSIG\x01\x10".to_vec();
        b.extend_from_slice(&[0xff; 11]);
        assert!(matches!(Signature::decode(&b), Err(SigError::Invalid(_))));
    }

    /// Fuzz-style: random mutations, truncations and random buffers must all
    /// decode to an error or to a signature that re-encodes to the input;
    /// never a panic.
    #[test]
    fn decoder_survives_random_input() {
        let seed = fastrand::u64(..);
        eprintln!("seed {seed}");
        let mut rng = fastrand::Rng::with_seed(seed);
        let bases: Vec<Vec<u8>> = [0usize, 1, 3000, 100_000]
            .iter()
            .map(|&n| sig(n, n as u64).encode())
            .collect();
        let mut accepted = 0;
        for _ in 0..50_000 {
            let mut b = bases[rng.usize(..bases.len())].clone();
            match rng.u8(..4) {
                0 => {
                    for _ in 0..rng.usize(1..4) {
                        if !b.is_empty() {
                            let i = rng.usize(..b.len());
                            b[i] = rng.u8(..);
                        }
                    }
                }
                1 => b.truncate(rng.usize(..=b.len())),
                2 => {
                    let i = rng.usize(..=b.len());
                    let extra: Vec<u8> = (0..rng.usize(1..20)).map(|_| rng.u8(..)).collect();
                    b.splice(i..i, extra);
                }
                _ => {
                    b = (0..rng.usize(..200)).map(|_| rng.u8(..)).collect();
                    if rng.bool() && b.len() >= 6 {
                        b[..6].copy_from_slice(b"RSIG\x01\x10");
                    }
                }
            }
            if let Ok(s) = Signature::decode(&b) {
                accepted += 1;
                assert_eq!(s.encode(), b, "accepted input must be canonical");
            }
        }
        eprintln!("{accepted} mutated inputs still valid");
    }
}
