//! Thin, safe wrappers over the Linux calls resync relies on, each with its fallback.
//!
//! Modelled on xcp's `libfs`: every system call the engine needs sits behind a
//! small function here that states *why* it exists and *what happens when the
//! kernel or filesystem says no* (EXDEV, EOPNOTSUPP, EPERM, ...). Callers above
//! this layer never see raw errno juggling or `unsafe`; they get `std::io::Result`
//! and, where it matters, a report of which strategy was used.
//!
//! We prefer rustix's safe API and drop to `libc` only where rustix has no
//! binding (the `getpw*_r`/`getgr*_r` name lookups).

pub mod copy;
pub mod daemon;
pub mod dir;
pub mod glob;
pub mod meta;
pub mod mmap;
pub mod stdio;
pub mod time;
pub mod xattr;

/// Test helpers shared by the `sys` unit tests.
#[cfg(test)]
pub(crate) mod testutil {
    use std::path::Path;

    /// Deterministic, cheap pseudo-random bytes (xorshift64*), so content
    /// comparisons catch misplaced blocks instead of comparing zeros to zeros.
    pub fn pattern(len: usize, seed: u64) -> Vec<u8> {
        let mut out = Vec::with_capacity(len + 8);
        let mut x = seed | 1;
        while out.len() < len {
            x ^= x >> 12;
            x ^= x << 25;
            x ^= x >> 27;
            out.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// A temp dir under `base`, or `None` (with a note) if `base` is unusable.
    pub fn tempdir_in(base: &str) -> Option<tempfile::TempDir> {
        if !Path::new(base).is_dir() {
            eprintln!("skipping: {base} not available");
            return None;
        }
        Some(tempfile::tempdir_in(base).expect("tempdir"))
    }

    /// A new file at `p`, open for reading and writing (fails if it exists).
    pub fn create_rw(p: &Path) -> std::fs::File {
        std::fs::File::options()
            .read(true)
            .write(true)
            .create_new(true)
            .open(p)
            .unwrap()
    }
}
