//! `-c/--checksum` end to end (the compat scenarios compare it with rsync
//! on small trees): many same-sized pairs hashed in parallel give the right
//! per-file verdicts, large files are compared by content, and files that
//! shrink or change while they are hashed never crash the run.

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, UNIX_EPOCH};

fn bytes(n: usize, seed: u64) -> Vec<u8> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut v = vec![0u8; n];
    rng.fill(&mut v);
    v
}

fn run(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_resync"))
        .args(args)
        .arg("src/")
        .arg("dst/")
        .current_dir(dir)
        .output()
        .unwrap()
}

fn write_at(p: &Path, data: &[u8], mtime: u64) {
    fs::create_dir_all(p.parent().unwrap()).unwrap();
    fs::write(p, data).unwrap();
    fs::File::options()
        .write(true)
        .open(p)
        .unwrap()
        .set_modified(UNIX_EPOCH + Duration::from_secs(mtime))
        .unwrap();
}

#[test]
fn verdicts_over_many_directories_and_a_large_file() {
    let d = tempfile::tempdir_in("/tmp").unwrap();
    let (src, dst) = (d.path().join("src"), d.path().join("dst"));
    let mut want = Vec::new();
    // 40 directories × 25 files, same size and mtime on both sides; every
    // 7th differs in one byte, every 5th only in its mtime.
    for dir in 0..40 {
        for f in 0..25 {
            let n = dir * 25 + f;
            let data = bytes(100 + n * 37, n as u64);
            let rel = format!("d{dir:02}/f{f:02}");
            write_at(&src.join(&rel), &data, 1_600_000_000);
            let mut other = data.clone();
            let mut mtime = 1_600_000_000;
            if n % 7 == 0 {
                other[n % data.len()] ^= 1;
                want.push(format!(">fc........ {rel}"));
            } else if n % 5 == 0 {
                mtime += 100;
                want.push(format!(".f..t...... {rel}"));
            }
            write_at(&dst.join(&rel), &other, mtime);
        }
    }
    // A 40 MiB file (hashed in blocks on rayon) with one byte changed near
    // its end, and an identical one.
    let big = bytes(40 << 20, 99);
    let mut big2 = big.clone();
    big2[(40 << 20) - 3] ^= 0x80;
    write_at(&src.join("big/changed"), &big, 1_600_000_000);
    write_at(&dst.join("big/changed"), &big2, 1_600_000_000);
    write_at(&src.join("big/same"), &big, 1_600_000_000);
    write_at(&dst.join("big/same"), &big, 1_600_000_000);
    want.push(">fc........ big/changed".to_string());
    want.sort();

    let out = run(d.path(), &["-aci"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut got: Vec<String> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with(".d"))
        .map(String::from)
        .collect();
    got.sort();
    assert_eq!(got, want);
    assert!(fs::read(dst.join("big/changed")).unwrap() == big);
    // A second run finds everything equal.
    let out = run(d.path(), &["-aci"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), "");
}

#[test]
fn files_shrinking_while_hashed_do_not_crash() {
    let d = tempfile::tempdir_in("/tmp").unwrap();
    let (src, dst) = (d.path().join("src"), d.path().join("dst"));
    let data = bytes(64 << 20, 7);
    for side in [&src, &dst] {
        for i in 0..4 {
            write_at(&side.join(format!("f{i}")), &data, 1_600_000_000);
        }
    }
    // Another process truncates and restores the files on both sides
    // while resync hashes them (a mapping would fault with SIGBUS here).
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let s2 = stop.clone();
    let (a, b) = (src.clone(), dst.clone());
    let half = data[..32 << 20].to_vec();
    let t = std::thread::spawn(move || {
        let mut n = 0u32;
        while !s2.load(std::sync::atomic::Ordering::Relaxed) {
            for side in [&a, &b] {
                let p = side.join(format!("f{}", n % 4));
                let f = fs::File::options().write(true).open(&p).unwrap();
                f.set_len(1 << 20).unwrap();
                f.set_len(0).unwrap();
                use std::io::Write;
                (&f).write_all(&half).unwrap();
            }
            n += 1;
        }
        n
    });
    for _ in 0..3 {
        let out = run(d.path(), &["-ac"]);
        // Killed by a signal would leave no exit code at all.
        let code = out.status.code();
        assert!(
            matches!(code, Some(0 | 23 | 24)),
            "exit {code:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(t.join().unwrap() > 0);
}
