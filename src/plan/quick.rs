//! rsync's quick check: is a destination file already up to date?

use crate::flist::Meta;
use crate::options::Options;
use std::io::Read;
use std::path::Path;

/// rsync's `same_time`: with `--modify-window=N` (N ≥ 0, default 0) times within N
/// whole seconds are equal (nanoseconds ignored); a negative window compares
/// nanoseconds exactly.
pub fn same_time(s1: i64, ns1: u32, s2: i64, ns2: u32, opts: &Options) -> bool {
    if opts.modify_window < 0 {
        return s1 == s2 && ns1 == ns2;
    }
    (s1 - s2).abs() <= opts.modify_window
}

/// rsync's `cmp_time`: -1, 0 or 1, honouring the modify window.
pub fn cmp_time(s1: i64, ns1: u32, s2: i64, ns2: u32, opts: &Options) -> i32 {
    if same_time(s1, ns1, s2, ns2, opts) {
        return 0;
    }
    if (s1, ns1) > (s2, ns2) { 1 } else { -1 }
}

/// True when the destination file can be left alone (data-wise).
pub fn unchanged(src: &Meta, dst: &Meta, src_path: &Path, dst_path: &Path, opts: &Options) -> bool {
    // --size-only wins over --ignore-times, as in rsync.
    if opts.ignore_times && !opts.size_only {
        return false;
    }
    if src.size != dst.size {
        return false;
    }
    if opts.checksum {
        return same_content(src_path, dst_path).unwrap_or(false);
    }
    if opts.size_only {
        return true;
    }
    same_time(src.mtime, src.mtime_nsec, dst.mtime, dst.mtime_nsec, opts)
}

/// Compare two files' bytes (the `-c` check for a local transfer, where reading
/// both sides once is cheaper than hashing both).
fn same_content(a: &Path, b: &Path) -> std::io::Result<bool> {
    let mut fa = std::fs::File::open(a)?;
    let mut fb = std::fs::File::open(b)?;
    let mut ba = vec![0u8; 256 * 1024];
    let mut bb = vec![0u8; 256 * 1024];
    loop {
        let na = read_full(&mut fa, &mut ba)?;
        let nb = read_full(&mut fb, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut std::fs::File, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let r = f.read(&mut buf[n..])?;
        if r == 0 {
            break;
        }
        n += r;
    }
    Ok(n)
}
