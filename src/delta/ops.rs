//! Delta operations and the encoder that finds the sender's chunks in the
//! basis signature.

use super::sig::Signature;
use std::collections::HashMap;

/// One step of rebuilding the target file, in target order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `len` bytes found in the basis file at `offset`.
    Copy {
        /// Offset in the basis file.
        offset: u64,
        /// Bytes to copy.
        len: u64,
    },
    /// `len` bytes that the sender supplies (the target's own bytes at the
    /// current target offset).
    Literal {
        /// Bytes to insert.
        len: u64,
    },
}

/// How to rebuild one target file from a basis file plus literal data.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Delta {
    /// The steps, in target order; adjacent copies of contiguous basis ranges
    /// and adjacent literals are merged.
    pub ops: Vec<Op>,
    /// The target's length (the sum of the ops' lengths).
    pub len: u64,
}

impl Delta {
    /// Bytes the sender must supply: rsync's "Literal data".
    pub fn literal_bytes(&self) -> u64 {
        self.ops
            .iter()
            .map(|o| match o {
                Op::Literal { len } => *len,
                Op::Copy { .. } => 0,
            })
            .sum()
    }

    /// Bytes taken from the basis: rsync's "Matched data".
    pub fn matched_bytes(&self) -> u64 {
        self.len - self.literal_bytes()
    }

    /// Append an op, merging it into the previous one when they continue
    /// each other.
    fn push(&mut self, op: Op) {
        match (self.ops.last_mut(), op) {
            (Some(Op::Literal { len }), Op::Literal { len: n }) => *len += n,
            (Some(Op::Copy { offset, len }), Op::Copy { offset: o, len: n })
                if *offset + *len == o =>
            {
                *len += n
            }
            _ => self.ops.push(op),
        }
        self.len += match op {
            Op::Copy { len, .. } | Op::Literal { len } => len,
        };
    }
}

/// Key of a chunk in the lookup table: its first 8 hash bytes (the full hash
/// and the length are compared on a hit).
fn key(h: &[u8]) -> u64 {
    u64::from_le_bytes(h[..8].try_into().expect("hashes are ≥ 16 bytes"))
}

/// The delta that rebuilds the file `target` describes from the basis
/// `basis` describes: each target chunk whose length and hash appear in the
/// basis becomes a copy, the rest literal.
///
/// Both signatures must use the same chunk parameters and hash length (the
/// sender chunks with the parameters from the receiver's signature); if they
/// differ nothing can match and the whole target is literal.
///
/// When the chunk that follows the previous match in the basis also matches,
/// it is preferred over other copies of the same content, so unchanged runs
/// stay one contiguous copy (one `copy_file_range`, shared extents).
pub fn encode(basis: &Signature, target: &Signature) -> Delta {
    let mut d = Delta::default();
    if basis.params != target.params || basis.hash_len() != target.hash_len() {
        if target.file_len > 0 {
            d.push(Op::Literal {
                len: target.file_len,
            });
        }
        return d;
    }
    let offsets = basis.offsets();
    let mut index: HashMap<u64, u32> = HashMap::with_capacity(basis.len());
    for i in (0..basis.len()).rev() {
        // Reverse, so the first chunk with a given hash wins.
        index.insert(key(basis.chunk_hash(i)), i as u32);
    }
    let same = |j: usize, i: usize| {
        basis.chunk_len(j) == target.chunk_len(i) && basis.chunk_hash(j) == target.chunk_hash(i)
    };
    let mut next: Option<usize> = None;
    for i in 0..target.len() {
        let len = target.chunk_len(i) as u64;
        let hit = next.filter(|&j| j < basis.len() && same(j, i)).or_else(|| {
            index
                .get(&key(target.chunk_hash(i)))
                .map(|&j| j as usize)
                .filter(|&j| same(j, i))
        });
        match hit {
            Some(j) => {
                d.push(Op::Copy {
                    offset: offsets[j],
                    len,
                });
                next = Some(j + 1);
            }
            None => {
                d.push(Op::Literal { len });
                next = None;
            }
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delta::chunk::ChunkParams;
    use crate::sys::testutil::pattern;

    #[test]
    fn identical_is_one_copy_and_disjoint_is_one_literal() {
        let a = pattern(300_000, 1);
        let p = ChunkParams::for_size(a.len() as u64);
        let sa = Signature::compute(&a, p, 16);
        let d = encode(&sa, &sa);
        assert_eq!(
            d.ops,
            vec![Op::Copy {
                offset: 0,
                len: 300_000
            }]
        );
        let b = pattern(300_000, 2);
        let d = encode(&sa, &Signature::compute(&b, p, 16));
        assert_eq!(d.ops, vec![Op::Literal { len: 300_000 }]);
        assert_eq!((d.literal_bytes(), d.matched_bytes()), (300_000, 0));
        // Different parameters: nothing can match.
        let other = ChunkParams::for_size(1 << 30);
        let d = encode(&sa, &Signature::compute(&a, other, 16));
        assert_eq!(d.ops, vec![Op::Literal { len: 300_000 }]);
        // Empty target.
        let d = encode(&sa, &Signature::compute(&[], p, 16));
        assert!(d.ops.is_empty() && d.len == 0);
    }

    #[test]
    fn repeated_content_stays_contiguous() {
        // The same 64 KiB block four times: a plain first-hit lookup would
        // copy every repetition from the first one.
        let block = pattern(65_536, 5);
        let a: Vec<u8> = block.iter().cycle().take(4 * 65_536).copied().collect();
        let p = ChunkParams::for_size(a.len() as u64);
        let sa = Signature::compute(&a, p, 16);
        let mut b = b"x".to_vec();
        b.extend_from_slice(&a);
        let d = encode(&sa, &Signature::compute(&b, p, 16));
        let copies = d
            .ops
            .iter()
            .filter(|o| matches!(o, Op::Copy { .. }))
            .count();
        assert!(copies <= 2, "{:?}", d.ops);
        assert!(d.literal_bytes() < 20_000, "{:?}", d.ops);
    }
}
