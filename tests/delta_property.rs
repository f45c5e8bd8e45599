//! Property tests of the delta engine: for random files and random edits
//! (inserts, deletes, replacements at random places and of random sizes,
//! including empty files and files smaller than one chunk), applying the delta
//! to the basis rebuilds the edited file byte for byte, on ext4 (`/tmp`) and
//! tmpfs (`/dev/shm`) with `copy_file_range`, and with the read/write
//! fallback. Also: after a prepend to a 100 MiB file ≥ 95% of chunks are
//! reused.
//!
//! Seeds are random per run and printed; `DELTA_SEED=N` replays one.

use resync::delta::apply::{ApplyMethod, apply};
use resync::delta::chunk::ChunkParams;
use resync::delta::ops::{Op, encode};
use resync::delta::sig::{DEFAULT_HASH_LEN, Signature};
use resync::sys::copy::CopyHints;
use std::collections::HashSet;
use std::fs::File;
use std::path::Path;

fn seed() -> u64 {
    let s = std::env::var("DELTA_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| fastrand::u64(..));
    eprintln!("DELTA_SEED={s}");
    s
}

fn random_bytes(rng: &mut fastrand::Rng, n: usize) -> Vec<u8> {
    let mut v = vec![0u8; n];
    rng.fill(&mut v);
    v
}

/// Random content with some structure: random runs, zero runs (degenerate
/// for chunking: they cut at the maximum size) and a repeated block.
fn random_file(rng: &mut fastrand::Rng) -> Vec<u8> {
    let len = match rng.u8(..10) {
        0 => 0,
        1..=3 => rng.usize(1..2048), // smaller than one chunk
        4..=7 => rng.usize(2048..300_000),
        _ => rng.usize(300_000..3_000_000),
    };
    let mut v = Vec::with_capacity(len);
    let block = random_bytes(rng, 5000);
    while v.len() < len {
        let n = rng.usize(1..100_000).min(len - v.len());
        match rng.u8(..6) {
            0 => v.extend(std::iter::repeat_n(0u8, n)),
            1 => v.extend(block.iter().cycle().take(n)),
            _ => v.extend(random_bytes(rng, n)),
        }
    }
    v
}

/// Up to 8 random edits: insert, delete or replace (with a different length).
fn random_edit(rng: &mut fastrand::Rng, old: &[u8]) -> Vec<u8> {
    let mut v = old.to_vec();
    for _ in 0..rng.usize(0..=8) {
        let size = match rng.u8(..4) {
            0 => rng.usize(0..16),
            1 => rng.usize(0..4096),
            2 => rng.usize(0..100_000),
            _ => rng.usize(0..(v.len() + 1)),
        };
        let at = rng.usize(0..=v.len());
        let end = (at + size).min(v.len());
        match rng.u8(..3) {
            0 => {
                let ins = random_bytes(rng, size);
                v.splice(at..at, ins);
            }
            1 => {
                v.drain(at..end);
            }
            _ => {
                let n = rng.usize(0..=size + 10);
                let ins = random_bytes(rng, n);
                v.splice(at..end, ins);
            }
        }
    }
    v
}

/// Rebuild `new` from `old` through signatures, a delta and `apply` into a
/// file in `dir`; returns the bytes produced, the method, and the delta's
/// literal byte count.
fn roundtrip(dir: &Path, old: &[u8], new: &[u8], hints: &CopyHints) -> (Vec<u8>, ApplyMethod, u64) {
    let params = ChunkParams::for_size(old.len() as u64);
    let bsig = Signature::compute(old, params, DEFAULT_HASH_LEN);
    // The basis signature goes over the wire later: it must survive the format.
    let bsig = Signature::decode(&bsig.encode()).expect("own encoding decodes");
    let tsig = Signature::compute(new, params, DEFAULT_HASH_LEN);
    let delta = encode(&bsig, &tsig);
    assert_eq!(delta.len, new.len() as u64);
    let bp = dir.join("basis");
    let op = dir.join("out");
    std::fs::write(&bp, old).unwrap();
    let basis = File::open(&bp).unwrap();
    let out = File::create(&op).unwrap();
    let m = apply(&basis, old.len() as u64, &delta, new, &out, hints).unwrap();
    drop(out);
    let got = std::fs::read(&op).unwrap();
    std::fs::remove_file(&op).unwrap();
    (got, m, delta.literal_bytes())
}

fn check_many(dir: &Path, cases: usize, forced_rw: bool) {
    let mut rng = fastrand::Rng::with_seed(seed());
    let hints = CopyHints::default();
    for case in 0..cases {
        let old = random_file(&mut rng);
        let new = if rng.u8(..10) == 0 {
            random_file(&mut rng) // unrelated content
        } else {
            random_edit(&mut rng, &old)
        };
        let h;
        let hints = if forced_rw {
            h = CopyHints {
                no_reflink: true.into(),
                no_copy_range: true.into(),
            };
            &h
        } else {
            &hints
        };
        let (got, m, literal) = roundtrip(dir, &old, &new, hints);
        assert!(
            got == new,
            "case {case}: rebuilt file differs (old {} new {} bytes)",
            old.len(),
            new.len()
        );
        assert!(literal <= new.len() as u64);
        if forced_rw {
            assert_eq!(m, ApplyMethod::ReadWrite);
        } else {
            // ext4 and tmpfs cannot clone; copies stay in the kernel.
            assert_eq!(m, ApplyMethod::CopyRange, "case {case}");
        }
    }
}

#[test]
fn random_edits_rebuild_exactly_on_ext4() {
    let d = tempfile::tempdir_in("/tmp").unwrap();
    check_many(d.path(), 150, false);
}

#[test]
fn random_edits_rebuild_exactly_on_tmpfs() {
    if !Path::new("/dev/shm").is_dir() {
        eprintln!("skipping: no /dev/shm");
        return;
    }
    let d = tempfile::tempdir_in("/dev/shm").unwrap();
    check_many(d.path(), 100, false);
}

#[test]
fn random_edits_rebuild_exactly_with_read_write() {
    let d = tempfile::tempdir_in("/tmp").unwrap();
    check_many(d.path(), 60, true);
}

/// Edge cases spelled out: empty to empty, empty to something, something to
/// empty, one byte, sub-chunk files.
#[test]
fn edge_cases() {
    let d = tempfile::tempdir_in("/tmp").unwrap();
    let mut rng = fastrand::Rng::with_seed(1);
    let some = random_bytes(&mut rng, 100_000);
    let cases: Vec<(Vec<u8>, Vec<u8>)> = vec![
        (vec![], vec![]),
        (vec![], some.clone()),
        (some.clone(), vec![]),
        (vec![1], vec![2]),
        (some[..100].to_vec(), some[..99].to_vec()),
        (some[..100].to_vec(), some.clone()),
        (some.clone(), some[50_000..50_100].to_vec()),
    ];
    for (old, new) in cases {
        let (got, _, _) = roundtrip(d.path(), &old, &new, &CopyHints::default());
        assert!(got == new, "{} -> {} bytes", old.len(), new.len());
    }
}

/// Inserting bytes at the start of a 100 MiB file: content-defined chunks
/// re-align right after the insertion, so nearly every chunk is reused.
#[test]
fn prepend_to_100mib_reuses_95_percent_of_chunks() {
    let mut rng = fastrand::Rng::with_seed(seed());
    let old = random_bytes(&mut rng, 100 << 20);
    let n = rng.usize(1..10_000);
    let mut new = random_bytes(&mut rng, n);
    new.extend_from_slice(&old);
    let params = ChunkParams::for_size(old.len() as u64);
    let bsig = Signature::compute(&old, params, DEFAULT_HASH_LEN);
    let tsig = Signature::compute(&new, params, DEFAULT_HASH_LEN);
    let have: HashSet<(u32, &[u8])> = (0..bsig.len())
        .map(|i| (bsig.chunk_len(i), bsig.chunk_hash(i)))
        .collect();
    let reused = (0..tsig.len())
        .filter(|&i| have.contains(&(tsig.chunk_len(i), tsig.chunk_hash(i))))
        .count();
    let share = reused as f64 / tsig.len() as f64;
    eprintln!(
        "{} of {} chunks reused ({:.3}%)",
        reused,
        tsig.len(),
        share * 100.0
    );
    assert!(share >= 0.95, "only {:.2}% of chunks reused", share * 100.0);
    let delta = encode(&bsig, &tsig);
    // The copies are one contiguous run of the old file after the prefix.
    let copies = delta
        .ops
        .iter()
        .filter(|o| matches!(o, Op::Copy { .. }))
        .count();
    assert!(copies <= 2, "{copies} copy ops");
    assert!(delta.literal_bytes() < 200_000, "{}", delta.literal_bytes());
    // And applying it rebuilds the file.
    let d = tempfile::tempdir_in("/tmp").unwrap();
    let (got, _, _) = roundtrip(d.path(), &old, &new, &CopyHints::default());
    assert!(got == new);
}
