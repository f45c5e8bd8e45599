//! rsync's `--chmod` language: `[DF][ugoa][-+=][rwxXst]` terms or octal modes,
//! comma separated, applied in order to the source permissions.
//!
//! Hand-written because no crate implements rsync's dialect (the `D`/`F` prefixes
//! and octal terms differ from chmod(1) crates).

/// One parsed `--chmod` term.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// Applies to directories.
    dirs: bool,
    /// Applies to files.
    files: bool,
    /// What the term does.
    op: Op,
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Octal(u32),
    Sym {
        who: u32,
        how: u8,
        what: u32,
        cap_x: bool,
    },
}

/// Parse every `--chmod` value; `Err(value)` names the offending one.
pub fn parse_all(values: &[String]) -> Result<Vec<Rule>, String> {
    let mut out = Vec::new();
    for v in values {
        for term in v.split(',') {
            out.push(parse_term(term).ok_or_else(|| v.clone())?);
        }
    }
    Ok(out)
}

fn parse_term(t: &str) -> Option<Rule> {
    let mut s = t.as_bytes();
    let (mut dirs, mut files) = (true, true);
    match s.first() {
        Some(b'D') => {
            files = false;
            s = &s[1..];
        }
        Some(b'F') => {
            dirs = false;
            s = &s[1..];
        }
        _ => {}
    }
    if s.is_empty() {
        return None;
    }
    if s.iter().all(|c| (b'0'..=b'7').contains(c)) {
        let v = u32::from_str_radix(std::str::from_utf8(s).ok()?, 8).ok()?;
        if v > 0o7777 {
            return None;
        }
        return Some(Rule {
            dirs,
            files,
            op: Op::Octal(v),
        });
    }
    let mut who = 0u32;
    let mut i = 0;
    while i < s.len() {
        match s[i] {
            b'u' => who |= 0o4700,
            b'g' => who |= 0o2070,
            b'o' => who |= 0o1007,
            b'a' => who |= 0o7777,
            _ => break,
        }
        i += 1;
    }
    let how = *s.get(i)?;
    if !matches!(how, b'+' | b'-' | b'=') {
        return None;
    }
    i += 1;
    let mut what = 0u32;
    let mut cap_x = false;
    for &c in &s[i..] {
        match c {
            b'r' => what |= 0o444,
            b'w' => what |= 0o222,
            b'x' => what |= 0o111,
            b'X' => cap_x = true,
            b's' => what |= 0o6000,
            b't' => what |= 0o1000,
            _ => return None,
        }
    }
    Some(Rule {
        dirs,
        files,
        op: Op::Sym {
            who,
            how,
            what,
            cap_x,
        },
    })
}

/// Apply the rules to `mode` (permission bits) of a file or directory.
pub fn apply(rules: &[Rule], mode: u32, is_dir: bool) -> u32 {
    let mut m = mode & 0o7777;
    for r in rules {
        if (is_dir && !r.dirs) || (!is_dir && !r.files) {
            continue;
        }
        match &r.op {
            Op::Octal(v) => m = *v,
            Op::Sym {
                who,
                how,
                what,
                cap_x,
            } => {
                // No "who" means "a" filtered by the umask in chmod(1); rsync uses
                // all bits (it does not apply the umask here).
                let who = if *who == 0 { 0o7777 } else { *who };
                let mut bits = *what;
                if *cap_x && (is_dir || m & 0o111 != 0) {
                    bits |= 0o111;
                }
                let bits = bits & who;
                match how {
                    b'+' => m |= bits,
                    b'-' => m &= !bits,
                    // rsync's `=` replaces the rwx bits of `who` and keeps the
                    // set-id and sticky bits unless they are named.
                    _ => m = (m & !(who & 0o777)) | bits,
                }
            }
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(spec: &str, mode: u32, dir: bool) -> u32 {
        apply(&parse_all(&[spec.to_string()]).unwrap(), mode, dir)
    }

    #[test]
    fn symbolic_and_octal() {
        assert_eq!(run("u+x", 0o644, false), 0o744);
        assert_eq!(run("go-rwx", 0o755, false), 0o700);
        assert_eq!(run("Dg+s,Fo-r", 0o755, true), 0o2755);
        assert_eq!(run("Dg+s,Fo-r", 0o644, false), 0o640);
        assert_eq!(run("D755,F644", 0o700, true), 0o755);
        assert_eq!(run("a+X", 0o644, false), 0o644);
        assert_eq!(run("a+X", 0o744, false), 0o755);
        assert_eq!(run("u=rw", 0o755, false), 0o655);
        assert_eq!(run("ugo=rwX", 0o2755, false), 0o2777);
        assert_eq!(run("ugo=rwX", 0o1644, false), 0o1666);
    }

    #[test]
    fn rejects_garbage() {
        assert!(parse_all(&["bad".to_string()]).is_err());
        assert!(parse_all(&["u+q".to_string()]).is_err());
        assert!(parse_all(&["F".to_string()]).is_err());
    }
}
