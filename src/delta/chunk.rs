//! Content-defined chunking (FastCDC, 2020 variant) with sizes scaled to the file.
//!
//! Why content-defined: a chunk boundary depends only on the bytes just before
//! it, so inserting or deleting bytes moves the boundaries along with the data
//! and every chunk after the edit is found again in the basis. rsync's fixed
//! blocks need a rolling checksum probed at every byte offset for the same
//! effect.
//!
//! ## Size scaling
//!
//! The average chunk size is the power of two nearest to `sqrt(len) / 2`,
//! clamped to [`AVG_MIN`] (2 KiB) ..= [`AVG_MAX`] (1 MiB); the minimum is a
//! quarter of it and the maximum four times it. So the signature grows with
//! `sqrt(len)` (≈ 64 Ki chunks, 1.4 MiB of signature for a 1 GiB file) and so
//! does the literal data an isolated edit costs (about one average chunk on
//! top of the edited bytes) — the same trade-off as rsync's `sqrt(len)` block
//! size. Examples: ≤ 16 MiB → 2 KiB, 100 MiB → 4 KiB, 1 GiB → 16 KiB,
//! 64 GiB → 128 KiB, ≥ 4 TiB → 1 MiB.
//!
//! The chunker runs on several threads for large inputs and still produces
//! exactly the sequential chunking (see [`chunk_ends`]).

use fastcdc::v2020::{FastCDC, Normalization};
use rayon::prelude::*;

/// Smallest average chunk size: below it the per-chunk signature bytes (≈ 17)
/// outweigh the finer matching.
pub const AVG_MIN: u32 = 2 * 1024;
/// Largest average chunk size: keeps the literal cost of one edit bounded.
pub const AVG_MAX: u32 = 1024 * 1024;

/// Chunk size limits for one file; both sides of a delta must use the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkParams {
    /// No chunk is shorter, except the last one of a file.
    pub min: u32,
    /// The target average chunk size (a power of two).
    pub avg: u32,
    /// No chunk is longer.
    pub max: u32,
}

impl ChunkParams {
    /// The parameters for a basis file of `len` bytes (see the module docs).
    pub fn for_size(len: u64) -> ChunkParams {
        let target = ((len as f64).sqrt() / 2.0).max(1.0);
        let avg = 2f64.powf(target.log2().round()) as u64;
        let avg = avg.clamp(AVG_MIN as u64, AVG_MAX as u64) as u32;
        ChunkParams {
            min: avg / 4,
            avg,
            max: avg * 4,
        }
    }

    /// Whether fastcdc accepts these sizes (they may come from the wire).
    pub fn is_valid(&self) -> bool {
        use fastcdc::v2020::*;
        let (min, avg, max) = (self.min as usize, self.avg as usize, self.max as usize);
        (MINIMUM_MIN..=MINIMUM_MAX).contains(&min)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&avg)
            && (MAXIMUM_MIN..=MAXIMUM_MAX).contains(&max)
            && min <= avg
            && avg <= max
            && min % 2 == 0
            && avg % 2 == 0
            && max % 2 == 0
    }
}

/// Inputs at least this long are chunked on several threads.
const PARALLEL_MIN: usize = 8 << 20;

/// The end offsets of the chunks of `data`, in order (empty for empty data).
///
/// Large inputs are cut into segments chunked in parallel, each from its own
/// start; the segments are then stitched: the chain of cuts coming from the
/// previous segment is continued one chunk at a time until it lands on a cut
/// the next segment also found, after which both chains are identical (a cut
/// depends only on where the chunk started). The result is therefore exactly
/// the sequential chunking, usually after re-cutting one or two chunks per
/// segment.
///
/// Panics if `params` is not [`ChunkParams::is_valid`] (callers check
/// parameters that come from outside).
pub fn chunk_ends(data: &[u8], params: ChunkParams) -> Vec<u64> {
    assert!(params.is_valid(), "invalid chunk parameters {params:?}");
    let cdc = FastCDC::with_level(
        data,
        params.min as usize,
        params.avg as usize,
        params.max as usize,
        Normalization::Level1,
    );
    let seg = (PARALLEL_MIN / 2).max(64 * params.max as usize);
    if data.len() < PARALLEL_MIN || rayon::current_num_threads() < 2 {
        return chain(&cdc, data.len(), 0, data.len());
    }
    let starts: Vec<usize> = (0..data.len()).step_by(seg).collect();
    let chains: Vec<Vec<u64>> = starts
        .par_iter()
        .map(|&s| chain(&cdc, data.len(), s, (s + seg).min(data.len())))
        .collect();
    let mut out = Vec::with_capacity(data.len() / params.avg as usize + 16);
    let mut pos = 0u64;
    for (&start, c) in starts.iter().zip(&chains) {
        let Some(&last) = c.last() else { continue };
        if pos == start as u64 {
            out.extend_from_slice(c);
            pos = last;
            continue;
        }
        while pos < last {
            if let Ok(j) = c.binary_search(&pos) {
                out.extend_from_slice(&c[j + 1..]);
                pos = last;
                break;
            }
            let (_, end) = cdc.cut(pos as usize, data.len() - pos as usize);
            out.push(end as u64);
            pos = end as u64;
        }
    }
    out
}

/// Cuts from `start` until the first cut at or past `stop` (or the end).
fn chain(cdc: &FastCDC, len: usize, start: usize, stop: usize) -> Vec<u64> {
    let mut out = Vec::new();
    let mut pos = start;
    while pos < len {
        let (_, end) = cdc.cut(pos, len - pos);
        out.push(end as u64);
        pos = end;
        if pos >= stop {
            break;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::testutil::pattern;

    #[test]
    fn scaling_table() {
        let avg = |len: u64| ChunkParams::for_size(len).avg;
        assert_eq!(avg(0), AVG_MIN);
        assert_eq!(avg(16 << 20), AVG_MIN);
        assert_eq!(avg(100 << 20), 4096);
        assert_eq!(avg(1 << 30), 16384);
        assert_eq!(avg(64 << 30), 128 << 10);
        assert_eq!(avg(u64::MAX), AVG_MAX);
        for len in [0u64, 1, 1 << 20, 1 << 30, 1 << 40, u64::MAX] {
            let p = ChunkParams::for_size(len);
            assert!(p.is_valid(), "{p:?}");
            assert_eq!((p.min * 4, p.max), (p.avg, p.avg * 4));
        }
    }

    #[test]
    fn parallel_equals_sequential() {
        let p = ChunkParams::for_size(1 << 30); // 16 KiB chunks: several segments
        let data = pattern(40 << 20, 77);
        let par = chunk_ends(&data, p);
        let cdc = FastCDC::with_level(&data, 4096, 16384, 65536, Normalization::Level1);
        let seq = chain(&cdc, data.len(), 0, data.len());
        assert_eq!(par, seq);
        assert_eq!(*par.last().unwrap(), data.len() as u64);
        // Bounds hold (the last chunk may be short).
        let mut prev = 0;
        for (i, &e) in par.iter().enumerate() {
            let l = e - prev;
            assert!(l <= p.max as u64);
            assert!(l >= p.min as u64 || i == par.len() - 1);
            prev = e;
        }
    }

    #[test]
    fn tiny_inputs() {
        let p = ChunkParams::for_size(0);
        assert!(chunk_ends(&[], p).is_empty());
        assert_eq!(chunk_ends(&[7], p), vec![1]);
        assert_eq!(chunk_ends(&[0; 100], p), vec![100]);
    }
}
