//! Criterion micro-benchmarks of the delta engine (`cargo bench --bench delta`):
//! chunking, hashing, delta computation and apply, as bytes per second of
//! input. "1 thread" rows run in a one-thread rayon pool (per-core figures,
//! the targets); "all threads" rows use every core.
//! Figures and the machine they came from: `bench/RESULTS.md`.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use resync::delta::apply::apply;
use resync::delta::chunk::{ChunkParams, chunk_ends};
use resync::delta::hash::hash_bytes;
use resync::delta::ops::encode;
use resync::delta::sig::{DEFAULT_HASH_LEN, Signature};
use resync::sys::copy::CopyHints;
use std::fs::File;
use std::hint::black_box;
use std::time::Duration;

const LEN: usize = 64 << 20;

fn data(seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut v = vec![0u8; LEN];
    rng.fill(&mut v);
    v
}

/// The basis with 1% of its bytes rewritten in 64 runs and 4 KiB prepended.
fn edited(old: &[u8]) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(9);
    let mut new = old.to_vec();
    let run = LEN / 100 / 64;
    for _ in 0..64 {
        let at = rng.usize(..LEN - run);
        new[at..at + run].fill(rng.u8(..));
    }
    let mut pre = vec![0u8; 4096];
    rng.fill(&mut pre);
    pre.extend_from_slice(&new);
    pre
}

fn one_thread() -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap()
}

fn group<'a>(
    c: &'a mut Criterion,
    name: &str,
) -> criterion::BenchmarkGroup<'a, criterion::measurement::WallTime> {
    let mut g = c.benchmark_group(name);
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .throughput(Throughput::Bytes(LEN as u64));
    g
}

fn benches(c: &mut Criterion) {
    let old = data(1);
    let new = edited(&old);
    let pool = one_thread();
    // 64 MiB input with the chunk sizes a 1 GiB file gets (16 KiB average)
    // and those of small files (2 KiB).
    let big = ChunkParams::for_size(1 << 30);
    let small = ChunkParams::for_size(1 << 20);

    let mut g = group(c, "chunk");
    for (name, p) in [("16KiB", big), ("2KiB", small)] {
        g.bench_function(format!("fastcdc {name} 1 thread"), |b| {
            b.iter(|| pool.install(|| black_box(chunk_ends(&old, p))))
        });
        g.bench_function(format!("fastcdc {name} all threads"), |b| {
            b.iter(|| black_box(chunk_ends(&old, p)))
        });
    }
    g.finish();

    let mut g = group(c, "hash");
    g.bench_function("blake3 whole file 1 thread", |b| {
        b.iter(|| black_box(blake3::hash(&old)))
    });
    g.bench_function("blake3 whole file all threads", |b| {
        b.iter(|| black_box(hash_bytes(&old)))
    });
    for (name, p) in [("16KiB", big), ("2KiB", small)] {
        g.bench_function(format!("signature {name} 1 thread"), |b| {
            b.iter(|| pool.install(|| black_box(Signature::compute(&old, p, DEFAULT_HASH_LEN))))
        });
        g.bench_function(format!("signature {name} all threads"), |b| {
            b.iter(|| black_box(Signature::compute(&old, p, DEFAULT_HASH_LEN)))
        });
    }
    g.finish();

    let bsig = Signature::compute(&old, big, DEFAULT_HASH_LEN);
    let tsig = Signature::compute(&new, big, DEFAULT_HASH_LEN);
    let mut g = group(c, "delta");
    g.bench_function("encode (lookup only)", |b| {
        b.iter(|| black_box(encode(&bsig, &tsig)))
    });
    g.bench_function("target signature + encode, all threads", |b| {
        b.iter(|| {
            let t = Signature::compute(&new, big, DEFAULT_HASH_LEN);
            black_box(encode(&bsig, &t))
        })
    });
    g.finish();

    let delta = encode(&bsig, &tsig);
    let mut g = group(c, "apply");
    for base in ["/dev/shm", "/tmp"] {
        let Ok(dir) = tempfile::tempdir_in(base) else {
            continue;
        };
        std::fs::write(dir.path().join("basis"), &old).unwrap();
        let basis = File::open(dir.path().join("basis")).unwrap();
        let hints = CopyHints::default();
        let out_path = dir.path().join("out");
        g.bench_function(format!("apply 1% edits + prepend, {base}"), |b| {
            b.iter(|| {
                let _ = std::fs::remove_file(&out_path);
                let out = File::create(&out_path).unwrap();
                black_box(apply(&basis, LEN as u64, &delta, &new, &out, &hints).unwrap())
            })
        });
    }
    g.finish();
}

criterion_group!(delta, benches);
criterion_main!(delta);
