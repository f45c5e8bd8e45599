//! `glob(3)`: the wildcard expansion a secluded (`-s`) server does itself,
//! since no remote shell sees its arguments (rsync's `glob_expand`).
//!
//! Why libc's glob rather than the `glob` crate: names are bytes, not
//! UTF-8, and libc's matches the shell's rules that rsync follows (sorted,
//! dot files only for a pattern starting with a dot).

use std::ffi::CString;

/// The names `pattern` matches, sorted; the pattern itself when it has no
/// wildcard, matches nothing or cannot be expanded (as the shell and rsync
/// keep an unmatched word).
pub fn expand(pattern: &[u8]) -> Vec<Vec<u8>> {
    let literal = || vec![pattern.to_vec()];
    if !pattern.iter().any(|c| matches!(c, b'*' | b'?' | b'[')) {
        return literal();
    }
    let Ok(c) = CString::new(pattern) else {
        return literal();
    };
    // SAFETY: `g` is zeroed as glob(3) expects for a fresh result, `c` is
    // a NUL-terminated pattern that outlives the call, and `g` is freed
    // with globfree once its strings are copied out.
    unsafe {
        let mut g: libc::glob_t = std::mem::zeroed();
        let rc = libc::glob(c.as_ptr(), libc::GLOB_NOCHECK, None, &mut g);
        let mut out = Vec::new();
        if rc == 0 {
            for i in 0..g.gl_pathc {
                let p = *g.gl_pathv.add(i);
                if !p.is_null() {
                    out.push(std::ffi::CStr::from_ptr(p).to_bytes().to_vec());
                }
            }
        }
        libc::globfree(&mut g);
        if out.is_empty() { literal() } else { out }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_expand_sorted_and_unmatched_words_stay() {
        let d = tempfile::tempdir().unwrap();
        for n in ["b.txt", "a.txt", ".hidden.txt", "c.log", "sp ace.txt"] {
            std::fs::write(d.path().join(n), b"x").unwrap();
        }
        let base = d.path().to_str().unwrap();
        let got = expand(format!("{base}/*.txt").as_bytes());
        let want: Vec<Vec<u8>> = ["a.txt", "b.txt", "sp ace.txt"]
            .iter()
            .map(|n| format!("{base}/{n}").into_bytes())
            .collect();
        assert_eq!(got, want);
        let none = format!("{base}/*.none");
        assert_eq!(expand(none.as_bytes()), vec![none.into_bytes()]);
        let plain = format!("{base}/sp ace.txt");
        assert_eq!(expand(plain.as_bytes()), vec![plain.into_bytes()]);
        assert_eq!(
            expand(format!("{base}/.h*").as_bytes()),
            vec![format!("{base}/.hidden.txt").into_bytes()]
        );
    }
}
