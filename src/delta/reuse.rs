//! Content reuse across files: a delta basis for a file the destination
//! lacks under its own name.
//!
//! After a rename or a move the destination still holds the content, under
//! the old name (possibly about to be deleted by `--delete`). rsync's
//! `--fuzzy` only looks for similar names in the same directory; here, with
//! `--no-whole-file`, a file to be created (or one replacing a non-file) of
//! at least [`REUSE_MIN`] bytes looks for a basis anywhere in the
//! destination:
//!
//! 1. **Candidates, cheaply.** Two sources: the regular files `--delete`
//!    removed during this run (the deleter opens each one of at least
//!    [`REUSE_MIN`] bytes just before unlinking it and keeps the descriptor,
//!    at most [`MAX_KEPT`] of them, so the inode outlives its name until the
//!    transfer ends; nothing in the tree changes), and an index of the
//!    destination's regular files of at least [`REUSE_MIN`] bytes (path,
//!    size), built by one walk of the destination the first time a transfer
//!    asks (so once per run, and only in runs that need it). Ranked: same
//!    name and size, same size, same name, then sizes within 1/8 of the
//!    file's, nearest first; at most [`MAX_CANDIDATES`] are looked at.
//! 2. **Confirm by chunk hashes.** The first [`PROBE_LEN`] bytes of the
//!    source and of each candidate are chunked (FastCDC with the parameters
//!    the delta would use) and hashed; the candidate sharing the most bytes
//!    of chunks wins; none sharing any means no basis (a whole-file copy).
//! 3. **Delta against it** with [`super::sync_file`], which verifies the
//!    result against the source's whole-file BLAKE3 and copies the whole file
//!    on a mismatch, so a candidate that changes under us (or a wrong choice)
//!    still ends in the source's exact bytes.
//!
//! Bounds per file: at most [`MAX_CANDIDATES`] opens and probes of
//! [`PROBE_LEN`] bytes each side; per run: one walk of the destination and
//! at most [`MAX_KEPT`] open descriptors of deleted files.

use super::chunk::ChunkParams;
use super::sig::{DEFAULT_HASH_LEN, Signature};
use crate::sys::mmap::{Access, map_read};
use std::collections::HashSet;
use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

/// Files below this size are copied whole: a search would cost more than
/// the bytes it could save.
pub const REUSE_MIN: u64 = 64 * 1024;

/// Candidates probed per file at most.
pub const MAX_CANDIDATES: usize = 8;

/// Deleted files kept open as candidates at most (their space is only freed
/// when the transfer ends).
pub const MAX_KEPT: usize = 64;

/// Bytes of each side chunked and hashed to confirm a candidate.
pub const PROBE_LEN: u64 = 1 << 20;

/// A destination file `--delete` removed, still open.
struct Kept {
    name: OsString,
    size: u64,
    id: (u64, u64),
    file: Arc<File>,
}

/// A destination file seen by the index walk.
struct Known {
    name: OsString,
    size: u64,
    path: PathBuf,
}

/// The candidates of one destination (see the module documentation).
pub struct Reuse {
    root: PathBuf,
    kept: Mutex<Vec<Kept>>,
    /// Sorted by size.
    index: OnceLock<Vec<Known>>,
}

/// A basis found for a file: the open file and its device (for copy hints).
pub struct Found {
    /// The candidate, open for reading.
    pub file: Arc<File>,
    /// Its device.
    pub dev: u64,
    /// Where it was found (for tests and debugging).
    pub path: Option<PathBuf>,
}

impl Reuse {
    /// Candidates below destination directory `root`.
    pub fn new(root: &Path) -> Reuse {
        Reuse {
            root: root.to_path_buf(),
            kept: Mutex::new(Vec::new()),
            index: OnceLock::new(),
        }
    }

    /// `--delete` is about to unlink the regular file at `path`: keep it open
    /// as a candidate (if it is large enough and there is room).
    pub fn keep_deleted(&self, path: &Path, size: u64) {
        if size < REUSE_MIN {
            return;
        }
        let mut kept = self.kept.lock().unwrap();
        if kept.len() >= MAX_KEPT {
            return;
        }
        let Ok(f) = crate::sys::meta::open_file(path, false) else {
            return;
        };
        let Ok(m) = f.metadata() else { return };
        kept.push(Kept {
            name: path.file_name().unwrap_or_default().to_os_string(),
            size: m.len(),
            id: (m.dev(), m.ino()),
            file: Arc::new(f),
        });
    }

    fn index(&self) -> &[Known] {
        self.index.get_or_init(|| {
            let mut v = Vec::new();
            walk(&self.root, &mut v);
            v.sort_by_key(|k| k.size);
            v
        })
    }

    /// The best basis for a file named `name` (last component) of `len`
    /// bytes whose source is `src`, or None.
    pub fn basis_for(&self, name: &OsStr, src: &File, len: u64) -> Option<Found> {
        if len < REUSE_MIN {
            return None;
        }
        let cands = self.candidates(name, len);
        if cands.is_empty() {
            return None;
        }
        let probe_len = len.min(PROBE_LEN);
        let source = map_read(src, probe_len, Access::Sequential).ok()?;
        let mut best: Option<(u64, Found)> = None;
        let mut src_sig: Option<(ChunkParams, ChunkSet)> = None;
        for c in cands {
            let Ok(m) = c.file.metadata() else { continue };
            let params = ChunkParams::for_size(m.len());
            if src_sig.as_ref().is_none_or(|(p, _)| *p != params) {
                src_sig = Some((params, chunk_set(&source, params)));
            }
            let Some((_, want)) = &src_sig else { continue };
            let Ok(b) = map_read(&c.file, m.len().min(PROBE_LEN), Access::Sequential) else {
                continue;
            };
            let have = chunk_set(&b, params);
            let score: u64 = want
                .iter()
                .filter(|k| have.contains(*k))
                .map(|k| k.0 as u64)
                .sum();
            if score > 0 && best.as_ref().is_none_or(|(s, _)| score > *s) {
                best = Some((
                    score,
                    Found {
                        file: c.file,
                        dev: m.dev(),
                        path: c.path,
                    },
                ));
            }
        }
        best.map(|(_, f)| f)
    }

    /// Up to [`MAX_CANDIDATES`] open candidates, best-ranked first, each inode
    /// once.
    fn candidates(&self, name: &OsStr, len: u64) -> Vec<Cand> {
        // (rank, size distance, source)
        let mut ranked: Vec<(u8, u64, Source)> = Vec::new();
        let rank = |n: &OsStr, size: u64| -> Option<(u8, u64)> {
            let same_name = n == name;
            let dist = size.abs_diff(len);
            match (same_name, dist == 0) {
                (true, true) => Some((0, 0)),
                (false, true) => Some((1, 0)),
                (true, false) => Some((2, dist)),
                _ if dist <= len / 8 => Some((3, dist)),
                _ => None,
            }
        };
        {
            let kept = self.kept.lock().unwrap();
            for (i, k) in kept.iter().enumerate() {
                if let Some((r, d)) = rank(&k.name, k.size) {
                    ranked.push((r, d, Source::Kept(i)));
                }
            }
        }
        let index = self.index();
        // Same names at any size, and sizes in the window (sorted by size).
        let lo = index.partition_point(|k| k.size < len - len / 8);
        let hi = index.partition_point(|k| k.size <= len + len / 8);
        for (i, k) in index[lo..hi].iter().enumerate() {
            if let Some((r, d)) = rank(&k.name, k.size) {
                ranked.push((r, d, Source::Index(lo + i)));
            }
        }
        for (i, k) in index.iter().enumerate() {
            if (i < lo || i >= hi) && k.name == name {
                ranked.push((2, k.size.abs_diff(len), Source::Index(i)));
            }
        }
        ranked.sort_by_key(|&(r, d, _)| (r, d));
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let kept = self.kept.lock().unwrap();
        for (_, _, s) in ranked {
            if out.len() >= MAX_CANDIDATES {
                break;
            }
            let (file, path) = match s {
                Source::Kept(i) => (Arc::clone(&kept[i].file), None),
                Source::Index(i) => match crate::sys::meta::open_file(&index[i].path, false) {
                    Ok(f) => (Arc::new(f), Some(index[i].path.clone())),
                    Err(_) => continue,
                },
            };
            let id = match s {
                Source::Kept(i) => kept[i].id,
                Source::Index(_) => match file.metadata() {
                    Ok(m) => (m.dev(), m.ino()),
                    Err(_) => continue,
                },
            };
            if seen.insert(id) {
                out.push(Cand { file, path });
            }
        }
        out
    }
}

enum Source {
    Kept(usize),
    Index(usize),
}

struct Cand {
    file: Arc<File>,
    path: Option<PathBuf>,
}

/// Chunks as (length, truncated hash).
type ChunkSet = HashSet<(u32, Vec<u8>)>;

/// The (length, hash) of every chunk of `data`.
fn chunk_set(data: &[u8], params: ChunkParams) -> ChunkSet {
    let sig = Signature::compute(data, params, DEFAULT_HASH_LEN);
    (0..sig.len())
        .map(|i| (sig.chunk_len(i), sig.chunk_hash(i).to_vec()))
        .collect()
}

/// Collect the regular files of at least [`REUSE_MIN`] bytes below `dir`
/// (not following symlinks; our own temp files, `.NAME.XXXXXX`, skipped).
fn walk(dir: &Path, out: &mut Vec<Known>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let Ok(ft) = e.file_type() else { continue };
        let name = e.file_name();
        if ft.is_dir() {
            walk(&e.path(), out);
        } else if ft.is_file() && !is_temp_name(&name) {
            let Ok(m) = e.metadata() else { continue };
            if m.len() >= REUSE_MIN {
                out.push(Known {
                    name,
                    size: m.len(),
                    path: e.path(),
                });
            }
        }
    }
}

/// Whether `name` looks like a transfer's temp file (`.NAME.XXXXXX`).
fn is_temp_name(name: &OsStr) -> bool {
    let b = name.as_bytes();
    b.len() > 8 && b[0] == b'.' && b[b.len() - 7] == b'.'
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sys::copy::CopyHints;
    use crate::sys::testutil::{create_rw as rw, pattern};
    use std::os::unix::fs::FileExt;

    #[test]
    fn finds_moved_and_deleted_content_and_survives_changes() {
        let d = tempfile::tempdir_in("/tmp").unwrap();
        let dst = d.path().join("dst");
        std::fs::create_dir_all(dst.join("a/b")).unwrap();
        let data = pattern(3 << 20, 9);
        let mut edited = data.clone();
        edited.splice(0..0, *b"a prepended line\n");
        edited[2_000_000..2_000_050].fill(1);
        // The old copy sits elsewhere under another name; decoys of the same
        // size and name share no content.
        std::fs::write(dst.join("a/b/old.bin"), &data).unwrap();
        std::fs::write(dst.join("new.bin"), pattern(edited.len(), 77)).unwrap();
        std::fs::write(dst.join("a/.new.bin.Ab12Cd"), &data).unwrap();
        std::fs::write(dst.join("small"), b"tiny").unwrap();
        let srcp = d.path().join("src.bin");
        std::fs::write(&srcp, &edited).unwrap();
        let src = File::open(&srcp).unwrap();

        let r = Reuse::new(&dst);
        let len = edited.len() as u64;
        let f = r.basis_for(OsStr::new("new.bin"), &src, len).unwrap();
        assert_eq!(f.path.as_deref(), Some(dst.join("a/b/old.bin").as_path()));
        let out = rw(&d.path().join("out1"));
        let o = super::super::sync_file(&src, len, &f.file, &out, &CopyHints::default()).unwrap();
        assert!(!o.retried);
        assert!(o.literal < 100_000, "{o:?}");
        assert!(std::fs::read(d.path().join("out1")).unwrap() == edited);

        // The candidate changes after it was chosen: still the source's bytes.
        let f = r.basis_for(OsStr::new("new.bin"), &src, len).unwrap();
        f.file.metadata().unwrap();
        File::options()
            .write(true)
            .open(dst.join("a/b/old.bin"))
            .unwrap()
            .write_all_at(&pattern(1 << 20, 5), 1 << 20)
            .unwrap();
        let out = rw(&d.path().join("out2"));
        super::super::sync_file(&src, len, &f.file, &out, &CopyHints::default()).unwrap();
        assert!(std::fs::read(d.path().join("out2")).unwrap() == edited);
        // ... or while it is used (the build is damaged): a whole-file retry.
        let out = rw(&d.path().join("out3"));
        let h = CopyHints::default();
        let o =
            super::super::sync_file_with(&src, len, &f.file, &out, &h, |o| o.write_all_at(b"X", 7))
                .unwrap();
        assert!(o.retried);
        assert!(std::fs::read(d.path().join("out3")).unwrap() == edited);

        // A file deleted by --delete is kept open and found by its name.
        let r = Reuse::new(&dst);
        let gone = dst.join("a/b/old.bin");
        std::fs::write(&gone, &data).unwrap();
        r.keep_deleted(&gone, data.len() as u64);
        std::fs::remove_file(&gone).unwrap();
        let f = r.basis_for(OsStr::new("old.bin"), &src, len).unwrap();
        assert_eq!(f.path, None);
        let out = rw(&d.path().join("out4"));
        let o = super::super::sync_file(&src, len, &f.file, &out, &h).unwrap();
        assert!(o.literal < 100_000, "{o:?}");
        assert!(std::fs::read(d.path().join("out4")).unwrap() == edited);

        // Nothing similar: no basis; small files never look.
        let other = d.path().join("other.bin");
        std::fs::write(&other, pattern(3 << 20, 123)).unwrap();
        let o = File::open(&other).unwrap();
        assert!(r.basis_for(OsStr::new("x"), &o, 3 << 20).is_none());
        assert!(r.basis_for(OsStr::new("x"), &src, 1000).is_none());
    }
}
