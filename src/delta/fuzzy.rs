//! rsync's `-y/--fuzzy` basis choice: for a file the destination lacks, a
//! file of a similar name in the same destination directory (with `-yy`,
//! also in the `--compare-dest`/`--copy-dest`/`--link-dest` directories)
//! becomes the delta basis, so a renamed or re-versioned file
//! (`app-1.2.tar` → `app-1.3.tar`) costs a delta instead of its whole size.
//!
//! Why a port of rsync's rules rather than [`super::reuse`]'s content probe:
//! remotely the receiver chooses the basis alone (the source's bytes are on
//! the other machine), and rsync users expect `-y` to pick what rsync picks:
//! first a regular file of the same size and mtime (seconds), else the name
//! at the smallest weighted Levenshtein distance (rsync's `fuzzy_distance`,
//! with ten times the weight on the suffix, ignoring `.bak`, `.orig`, `~`…),
//! and nothing at a distance above 25 edits. Empty files are never a basis.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// One regular file of a directory, as a candidate basis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// The file's name in its directory.
    pub name: OsString,
    /// Its size (never 0: empty files are left out).
    pub size: u64,
    /// Its mtime, whole seconds (rsync compares seconds here).
    pub mtime: i64,
    /// Being replaced in this run: no longer a basis for later files
    /// (rsync's `FLAG_FILE_SENT`).
    pub taken: bool,
}

/// One edit in rsync's distance; a byte's value is added as a tie-breaker.
const UNIT: u32 = 1 << 16;

/// The non-empty regular files of `dir` (not following symlinks), sorted by
/// name as rsync sorts a directory; an unreadable directory has none.
pub fn list(dir: &Path) -> Vec<Candidate> {
    use std::os::unix::fs::MetadataExt;
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<Candidate> = rd
        .filter_map(|e| {
            let e = e.ok()?;
            let m = e.metadata().ok()?;
            (m.file_type().is_file() && m.len() > 0).then(|| Candidate {
                name: e.file_name(),
                size: m.len(),
                mtime: m.mtime(),
                taken: false,
            })
        })
        .collect();
    out.sort_by(|a, b| a.name.as_bytes().cmp(b.name.as_bytes()));
    out
}

/// The best basis for a file called `name` of `size` bytes and mtime
/// `mtime` (seconds) among `lists` (the destination directory first, then
/// the reference directories): (list, entry), or None.
pub fn choose(
    lists: &[Vec<Candidate>],
    name: &[u8],
    size: u64,
    mtime: i64,
) -> Option<(usize, usize)> {
    for (i, l) in lists.iter().enumerate() {
        let same = |c: &Candidate| !c.taken && c.size == size && c.mtime == mtime;
        if let Some(j) = l.iter().position(same) {
            return Some((i, j));
        }
    }
    let want_suf = suffix(name);
    let mut lowest = 25 * UNIT;
    let mut best = None;
    for (i, l) in lists.iter().enumerate() {
        for (j, c) in l.iter().enumerate().filter(|(_, c)| !c.taken) {
            let n = c.name.as_bytes();
            let mut d = distance(n, name, lowest);
            // Suffix weight, unless the length heuristic already ruled it out.
            if d < 0xFFFF_0000 {
                d = d.wrapping_add(distance(suffix(n), want_suf, 0xFFFF_0000).wrapping_mul(10));
            }
            // `<=`: of equal distances the last in name order wins, as in rsync.
            if d <= lowest {
                lowest = d;
                best = Some((i, j));
            }
        }
    }
    best
}

/// The significant suffix of a name (rsync's `find_filename_suffix`):
/// leading dots are no suffix, a trailing `~` and `.bak`, `.old`, `.orig`,
/// `.~N~` are skipped, and an all-digit suffix (`.1`) gives way to the one
/// before it when there is one.
pub fn suffix(name: &[u8]) -> &[u8] {
    let mut fn_ = name;
    while let [b'.', rest @ ..] = fn_ {
        fn_ = rest;
    }
    let mut len = fn_.len();
    let had_tilde = len > 1 && fn_[len - 1] == b'~';
    if had_tilde {
        len -= 1;
    }
    let mut suf: &[u8] = b"";
    while len > 1 {
        // The last '.' before `len`, not at the start.
        let Some(dot) = fn_[1..len].iter().rposition(|&c| c == b'.').map(|p| p + 1) else {
            break;
        };
        let s_len = len - dot;
        len = dot;
        // rsync compares the rest of the whole name here (strcmp), so
        // "x.bak~" keeps its ".bak~"-less suffix only when it ends there.
        let rest = &fn_[dot + 1..];
        if (s_len == 4 && (rest == b"bak" || rest == b"old"))
            || (s_len == 5 && rest == b"orig")
            || (s_len > 2 && had_tilde && fn_[dot + 1] == b'~' && fn_[dot + 2].is_ascii_digit())
        {
            continue;
        }
        suf = &fn_[dot..dot + s_len];
        if s_len == 1 || !suf[1..].iter().all(u8::is_ascii_digit) {
            break;
        }
        // An all-digit suffix may not be significant: look further left.
    }
    suf
}

/// rsync's `fuzzy_distance`: Levenshtein distance in [`UNIT`]s, plus the
/// byte values involved as a minor term; more than `upper` by the length
/// difference alone gives `0xFFFF * UNIT + 1`.
pub fn distance(s1: &[u8], s2: &[u8], upper: u32) -> u32 {
    let (len1, len2) = (s1.len() as u32, s2.len() as u32);
    if len1.abs_diff(len2).wrapping_mul(UNIT) > upper {
        return 0xFFFF * UNIT + 1;
    }
    if s1.is_empty() || s2.is_empty() {
        let s = if s1.is_empty() { s2 } else { s1 };
        // rsync sums `char`s, which are signed on Linux/x86.
        let cost: i32 = s.iter().map(|&b| i32::from(b as i8)).sum();
        return (s.len() as i32)
            .wrapping_mul(UNIT as i32)
            .wrapping_add(cost) as u32;
    }
    let mut a: Vec<u32> = (1..=len2).map(|i| i * UNIT).collect();
    for (i1, &c1) in s1.iter().enumerate() {
        let mut diag = i1 as u32 * UNIT;
        let mut above = (i1 as u32 + 1) * UNIT;
        for (i2, &c2) in s2.iter().enumerate() {
            let left = a[i2];
            let cost = match i32::from(c1) - i32::from(c2) {
                0 => 0,
                d if d < 0 => UNIT as i32 - d,
                d => UNIT as i32 + d,
            } as u32;
            let diag_inc = diag.wrapping_add(cost);
            let left_inc = left.wrapping_add(UNIT + u32::from(c1));
            let above_inc = above.wrapping_add(UNIT + u32::from(c2));
            above = if left < above {
                left_inc.min(diag_inc)
            } else {
                above_inc.min(diag_inc)
            };
            a[i2] = above;
            diag = left;
        }
    }
    a[len2 as usize - 1]
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStringExt;

    fn candidate(name: &str, size: u64, mtime: i64) -> Candidate {
        Candidate {
            name: OsString::from_vec(name.as_bytes().to_vec()),
            size,
            mtime,
            taken: false,
        }
    }

    #[test]
    fn suffixes_follow_rsync() {
        for (name, want) in [
            ("foo.c", ".c"),
            ("foo.tar.gz", ".gz"),
            ("foo.c.bak", ".c"),
            ("foo.c.orig", ".c"),
            ("foo.c~", ".c"),
            ("foo.c.~1~", ".c"),
            (".bashrc", ""),
            ("..x", ""),
            ("noext", ""),
            ("lib.so.1", ".so"),
            ("v.1", ".1"),
            ("a.b.12", ".b"),
            ("x.", "."),
        ] {
            assert_eq!(
                String::from_utf8_lossy(suffix(name.as_bytes())),
                want,
                "suffix of {name}"
            );
        }
    }

    #[test]
    fn distances_count_edits_and_weigh_bytes() {
        assert_eq!(distance(b"abc", b"abc", u32::MAX), 0);
        // One substitution: a unit plus the byte difference.
        assert_eq!(distance(b"abc", b"abd", u32::MAX), UNIT + 1);
        assert_eq!(distance(b"abd", b"abc", u32::MAX), UNIT + 1);
        // One insertion: a unit plus the inserted byte.
        assert_eq!(distance(b"abc", b"abcd", u32::MAX), UNIT + u32::from(b'd'));
        // Against nothing: every byte is an edit.
        assert_eq!(distance(b"", b"ab", u32::MAX), 2 * UNIT + 97 + 98);
        // Ruled out by the length difference alone.
        assert_eq!(distance(b"a", b"abcdef", 2 * UNIT), 0xFFFF * UNIT + 1);
    }

    #[test]
    fn same_size_and_mtime_wins_over_names() {
        let l = vec![
            candidate("data-1.2.tar", 100, 5),
            candidate("other.bin", 4096, 7),
        ];
        assert_eq!(
            choose(std::slice::from_ref(&l), b"data-1.3.tar", 4096, 7),
            Some((0, 1))
        );
        assert_eq!(choose(&[l], b"data-1.3.tar", 4000, 7), Some((0, 0)));
    }

    #[test]
    fn taken_files_and_far_names_are_no_basis() {
        let mut l = vec![
            candidate("report-2025.pdf", 10, 1),
            candidate("zzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzzz", 10, 1),
        ];
        assert_eq!(
            choose(&[l.clone()], b"report-2026.pdf", 20, 2),
            Some((0, 0))
        );
        l[0].taken = true;
        // The other name is more than 25 edits away.
        assert_eq!(choose(&[l.clone()], b"report-2026.pdf", 20, 2), None);
        // A taken file is no size/mtime match either.
        assert_eq!(choose(&[l], b"x", 10, 1), Some((0, 1)));
    }

    #[test]
    fn the_suffix_weighs_ten_times() {
        // "a.txt" is nearer by name to "a.tx" but "b.txt" keeps the suffix.
        let l = vec![candidate("a.tx", 1, 0), candidate("b.txt", 1, 0)];
        assert_eq!(choose(&[l], b"a.txt", 9, 9), Some((0, 1)));
    }

    #[test]
    fn listing_keeps_non_empty_regular_files_sorted() {
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join("b"), b"x").unwrap();
        std::fs::write(d.path().join("a"), b"yy").unwrap();
        std::fs::write(d.path().join("empty"), b"").unwrap();
        std::fs::create_dir(d.path().join("dir")).unwrap();
        std::os::unix::fs::symlink("a", d.path().join("link")).unwrap();
        let l = list(d.path());
        let names: Vec<_> = l.iter().map(|c| c.name.to_str().unwrap()).collect();
        assert_eq!(names, ["a", "b"]);
        assert_eq!(l[0].size, 2);
    }
}
