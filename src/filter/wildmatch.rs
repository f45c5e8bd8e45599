//! rsync's `wildmatch`: shell-style patterns as rsync's filter rules use them.
//!
//! `*` matches any run of characters except `/`, `**` any run including `/`,
//! `?` one character except `/`, `[...]` one character from a class (ranges,
//! `!`/`^` negation, `]` first is literal, backslash escapes, POSIX `[:name:]`
//! classes; a class may match `/`), and `\x` the character `x`. A malformed
//! class (unterminated, unknown `[:name:]`) makes the whole pattern fail.
//!
//! Hand-written because rsync's semantics differ from every crate at hand:
//! globset/glob treat `**` as whole path components, `**/x` there also
//! matches `x`, and classes never match `/`. The table of test vectors below
//! is the spec (rsync's own test list: behaviour observed with rsync).

/// Outcome of matching a pattern tail against a text tail. The two abort
/// values let a `*` stop trying further positions once success is impossible,
/// which keeps matching linear-ish instead of exponential.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum M {
    Match,
    NoMatch,
    /// The text ran out: no later starting point can match either.
    AbortAll,
    /// A single `*` hit a `/`: only an enclosing `**` may try further.
    AbortToStarStar,
}

/// Does `text` match `pattern` as rsync's wildmatch would?
pub fn wildmatch(pattern: &[u8], text: &[u8]) -> bool {
    dowild(pattern, text) == M::Match
}

fn dowild(p: &[u8], t: &[u8]) -> M {
    let (mut pi, mut ti) = (0usize, 0usize);
    while pi < p.len() {
        let pc = p[pi];
        let tc = t.get(ti).copied();
        if tc.is_none() && pc != b'*' {
            return M::AbortAll;
        }
        match pc {
            b'\\' => {
                // An escaped character matches itself; a pattern ending in a
                // lone `\` matches nothing.
                pi += 1;
                let Some(&lit) = p.get(pi) else {
                    return M::AbortAll;
                };
                if tc != Some(lit) {
                    return M::NoMatch;
                }
            }
            b'?' => {
                if tc == Some(b'/') {
                    return M::NoMatch;
                }
            }
            b'*' => {
                let mut q = pi + 1;
                let double = p.get(q) == Some(&b'*');
                while p.get(q) == Some(&b'*') {
                    q += 1;
                }
                let rest = &p[q..];
                if rest.is_empty() {
                    // Trailing `**` takes everything; `*` only a last component.
                    return if double || !t[ti..].contains(&b'/') {
                        M::Match
                    } else {
                        M::NoMatch
                    };
                }
                let mut k = ti;
                loop {
                    let r = dowild(rest, &t[k..]);
                    if r != M::NoMatch {
                        if !double || r != M::AbortToStarStar {
                            return r;
                        }
                    } else if !double && t.get(k) == Some(&b'/') {
                        return M::AbortToStarStar;
                    }
                    if k >= t.len() {
                        return M::AbortAll;
                    }
                    k += 1;
                }
            }
            b'[' => {
                let c = tc.expect("checked above");
                match class(p, pi + 1, c) {
                    Some((true, end)) => pi = end,
                    Some((false, _)) => return M::NoMatch,
                    None => return M::AbortAll,
                }
            }
            _ => {
                if tc != Some(pc) {
                    return M::NoMatch;
                }
            }
        }
        pi += 1;
        ti += 1;
    }
    if ti == t.len() { M::Match } else { M::NoMatch }
}

/// Match `c` against the class starting at `p[i]` (just after `[`). Returns
/// whether it matched and the index of the closing `]`, or None when the class
/// is malformed.
fn class(p: &[u8], mut i: usize, c: u8) -> Option<(bool, usize)> {
    let negated = matches!(p.get(i), Some(b'!') | Some(b'^'));
    if negated {
        i += 1;
    }
    let mut matched = false;
    let mut prev: Option<u8> = None;
    let mut first = true;
    loop {
        let pc = *p.get(i)?;
        if pc == b']' && !first {
            break;
        }
        first = false;
        if pc == b'\\' {
            i += 1;
            let e = *p.get(i)?;
            if c == e {
                matched = true;
            }
            prev = Some(e);
        } else if pc == b'-' && prev.is_some() && p.get(i + 1).is_some_and(|&n| n != b']') {
            i += 1;
            let mut hi = *p.get(i)?;
            if hi == b'\\' {
                i += 1;
                hi = *p.get(i)?;
            }
            let lo = prev.expect("checked");
            if lo <= c && c <= hi {
                matched = true;
            }
            prev = None;
        } else if pc == b'[' && p.get(i + 1) == Some(&b':') {
            // A POSIX class, if a `:]` closes it before the next `]`.
            let start = i + 2;
            let close = p[start..]
                .iter()
                .position(|&b| b == b']')
                .map(|k| start + k)?;
            if close == start || p[close - 1] != b':' {
                // No `:]`: the `[` is an ordinary member.
                if c == b'[' {
                    matched = true;
                }
                prev = Some(b'[');
            } else {
                let name = &p[start..close - 1];
                if posix_class(name, c)? {
                    matched = true;
                }
                i = close;
                prev = None;
            }
        } else {
            if c == pc {
                matched = true;
            }
            prev = Some(pc);
        }
        i += 1;
    }
    Some((matched != negated, i))
}

/// Membership in a POSIX character class (C locale); None for an unknown name.
fn posix_class(name: &[u8], c: u8) -> Option<bool> {
    Some(match name {
        b"alnum" => c.is_ascii_alphanumeric(),
        b"alpha" => c.is_ascii_alphabetic(),
        b"blank" => c == b' ' || c == b'\t',
        b"cntrl" => c.is_ascii_control(),
        b"digit" => c.is_ascii_digit(),
        b"graph" => c.is_ascii_graphic(),
        b"lower" => c.is_ascii_lowercase(),
        b"print" => c.is_ascii_graphic() || c == b' ',
        b"punct" => c.is_ascii_punctuation(),
        b"space" => matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c),
        b"upper" => c.is_ascii_uppercase(),
        b"xdigit" => c.is_ascii_hexdigit(),
        _ => return None,
    })
}

/// rsync's `wildmatch_array` over the already-joined text: `where_` 0 matches
/// the whole text, `N > 0` only its last `N` components, `-1` the whole text
/// or any suffix starting after a `/` (for unanchored patterns with `**`).
pub fn wildmatch_array(pattern: &[u8], text: &[u8], where_: i32) -> bool {
    let text = if where_ > 0 {
        match trailing_elements(text, where_ as usize) {
            Some(t) => t,
            None => return false,
        }
    } else {
        text
    };
    let mut r = dowild(pattern, text);
    if r != M::Match && where_ < 0 && r != M::AbortAll {
        for i in 0..text.len() {
            if text[i] == b'/' {
                r = dowild(pattern, &text[i + 1..]);
                if r != M::NoMatch && r != M::AbortToStarStar {
                    break;
                }
            }
        }
    }
    r == M::Match
}

/// The last `count` `/`-separated components of `text`, or None when it has
/// fewer (rsync's `trailing_N_elements`).
pub fn trailing_elements(text: &[u8], count: usize) -> Option<&[u8]> {
    let mut count = count;
    for i in (0..text.len()).rev() {
        if text[i] == b'/' {
            count -= 1;
            if count == 0 {
                return Some(&text[i + 1..]);
            }
        }
    }
    (count == 1).then_some(text)
}

#[cfg(test)]
mod tests {
    use super::wildmatch;

    /// (expected, text, pattern): rsync's wildmatch behaviour.
    const VECTORS: &[(bool, &str, &str)] = &[
        // basics
        (true, "foo", "foo"),
        (false, "foo", "bar"),
        (true, "", ""),
        (true, "foo", "???"),
        (false, "foo", "??"),
        (true, "foo", "*"),
        (true, "foo", "f*"),
        (false, "foo", "*f"),
        (true, "foo", "*foo*"),
        (true, "foobar", "*ob*a*r*"),
        (true, "aaaaaaabababab", "*ab"),
        (true, "foo*", "foo\\*"),
        (false, "foobar", "foo\\*bar"),
        (true, "f\\oo", "f\\\\oo"),
        (true, "ball", "*[al]?"),
        (false, "ten", "[ten]"),
        (true, "ten", "**[!te]"),
        (false, "ten", "**[!ten]"),
        (true, "ten", "t[a-g]n"),
        (false, "ten", "t[!a-g]n"),
        (true, "ton", "t[!a-g]n"),
        (true, "ton", "t[^a-g]n"),
        (true, "a]b", "a[]]b"),
        (true, "a-b", "a[]-]b"),
        (true, "a]b", "a[]-]b"),
        (false, "aab", "a[]-]b"),
        (true, "aab", "a[]a-]b"),
        (true, "]", "]"),
        // slashes
        (false, "foo/baz/bar", "foo*bar"),
        (true, "foo/baz/bar", "foo**bar"),
        (false, "foo/bar", "foo?bar"),
        (true, "foo/bar", "foo[/]bar"),
        (false, "foo", "**/foo"),
        (true, "/foo", "**/foo"),
        (true, "bar/baz/foo", "**/foo"),
        (false, "bar/baz/foo", "*/foo"),
        (false, "foo/bar/baz", "**/bar*"),
        (true, "foo/bar/baz", "**/bar**"),
        // assorted
        (false, "acrt", "a[c-c]st"),
        (false, "]", "[!]-]"),
        (true, "a", "[!]-]"),
        (false, "", "\\"),
        (false, "\\", "\\"),
        (true, "@foo", "@foo"),
        (false, "foo", "@foo"),
        (true, "[ab]", "\\[ab]"),
        (true, "?a?b", "\\??\\?b"),
        (true, "abc", "\\a\\b\\c"),
        (false, "foo", ""),
        (true, "foo/bar/baz/to", "**/t[o]"),
        // character classes
        (true, "a1B", "[[:alpha:]][[:digit:]][[:upper:]]"),
        (false, "a", "[[:digit:][:upper:][:space:]]"),
        (true, "A", "[[:digit:][:upper:][:space:]]"),
        (true, "1", "[[:digit:][:upper:][:space:]]"),
        (false, "1", "[[:digit:][:upper:][:spack:]]"),
        (true, " ", "[[:digit:][:upper:][:space:]]"),
        (false, ".", "[[:digit:][:upper:][:space:]]"),
        (true, ".", "[[:digit:][:punct:][:space:]]"),
        (true, "5", "[[:xdigit:]]"),
        (true, "f", "[[:xdigit:]]"),
        (true, "D", "[[:xdigit:]]"),
        // malformed and odd classes
        (true, "]", "[\\\\-^]"),
        (false, "[", "[\\\\-^]"),
        (true, "-", "[\\-_]"),
        (true, "]", "[\\]]"),
        (false, "\\]", "[\\]]"),
        (false, "\\", "[\\]]"),
        (false, "ab", "a[]b"),
        (false, "a[]b", "a[]b"),
        (false, "ab[", "ab["),
        (false, "ab", "[!"),
        (false, "ab", "[-"),
        (true, "-", "[-]"),
        (false, "-", "[a-"),
        (false, "-", "[!a-"),
        (true, "-", "[--A]"),
        (true, "5", "[--A]"),
        (true, " ", "[ --]"),
        (true, "$", "[ --]"),
        (true, "-", "[ --]"),
        (false, "0", "[ --]"),
        (true, "-", "[---]"),
        (true, "-", "[------]"),
        (false, "j", "[a-e-n]"),
        (true, "-", "[a-e-n]"),
        (true, "a", "[!------]"),
        (false, "[", "[]-a]"),
        (true, "^", "[]-a]"),
        (false, "^", "[!]-a]"),
        (true, "[", "[!]-a]"),
        (true, "^", "[a^bc]"),
        (true, "-b]", "[a-]b]"),
        (false, "\\", "[\\]"),
        (true, "\\", "[\\\\]"),
        (false, "\\", "[!\\\\]"),
        (true, "G", "[A-\\\\]"),
        (false, "aaabbb", "b*a"),
        (false, "aabcaa", "*ba*"),
        (true, ",", "[,]"),
        (true, ",", "[\\\\,]"),
        (true, "\\", "[\\\\,]"),
        (true, "-", "[,-.]"),
        (false, "+", "[,-.]"),
        (false, "-.]", "[,-.]"),
        (true, "\\", "[[-\\]]"),
        (false, "-", "[[-\\]]"),
        (false, "/\\", "/\\"),
        // backtracking limits
        (
            true,
            "-adobe-courier-bold-o-normal--12-120-75-75-m-70-iso8859-1",
            "-*-*-*-*-*-*-12-*-*-*-m-*-*-*",
        ),
        (
            false,
            "-adobe-courier-bold-o-normal--12-120-75-75-X-70-iso8859-1",
            "-*-*-*-*-*-*-12-*-*-*-m-*-*-*",
        ),
        (
            false,
            "-adobe-courier-bold-o-normal--12-120-75-75-/-70-iso8859-1",
            "-*-*-*-*-*-*-12-*-*-*-m-*-*-*",
        ),
        (
            true,
            "/adobe/courier/bold/o/normal//12/120/75/75/m/70/iso8859/1",
            "/*/*/*/*/*/*/12/*/*/*/m/*/*/*",
        ),
        (
            false,
            "/adobe/courier/bold/o/normal//12/120/75/75/X/70/iso8859/1",
            "/*/*/*/*/*/*/12/*/*/*/m/*/*/*",
        ),
        (
            true,
            "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txt",
            "**/*a*b*g*n*t",
        ),
        (
            false,
            "abcd/abcdefg/abcdefghijk/abcdefghijklmnop.txtz",
            "**/*a*b*g*n*t",
        ),
    ];

    #[test]
    fn rsync_vectors() {
        let mut bad = Vec::new();
        for &(want, text, pat) in VECTORS {
            if wildmatch(pat.as_bytes(), text.as_bytes()) != want {
                bad.push(format!("{text:?} ~ {pat:?}: expected {want}"));
            }
        }
        assert!(
            bad.is_empty(),
            "{} mismatches:\n{}",
            bad.len(),
            bad.join("\n")
        );
    }
}
