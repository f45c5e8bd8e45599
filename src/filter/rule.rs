//! One filter rule and rsync's rule syntax: `RULE[,MODIFIERS] PATTERN`, the
//! long names (`exclude`, `dir-merge` …), the old `+ `/`- ` prefixes of
//! `--include`/`--exclude`, and what each modifier allows.
//!
//! Hand-written: the grammar is rsync's own (no crate parses it), and the
//! error messages must be rsync's word for word.

use super::wildmatch;

/// Rule flags (rsync's `FILTRULE_*`), kept as bits so a merge rule can pass
/// its defaults to the rules it reads exactly as rsync's template does.
pub mod flag {
    /// `+`: an include (otherwise an exclude).
    pub const INCLUDE: u32 = 1 << 0;
    /// Trailing `/`: matches directories only.
    pub const DIRECTORY: u32 = 1 << 1;
    /// `/` modifier (or an anchored rule in a per-directory file): the pattern
    /// is matched against the absolute path.
    pub const ABS_PATH: u32 = 1 << 2;
    /// `!`: the rule applies when the pattern does *not* match.
    pub const NEGATE: u32 = 1 << 3;
    /// `p`: ignored when deciding whether a directory being deleted is empty.
    pub const PERISHABLE: u32 = 1 << 4;
    /// `s` (or hide/show): applies to the sending side.
    pub const SENDER_SIDE: u32 = 1 << 5;
    /// `r` (or protect/risk): applies to the receiving side.
    pub const RECEIVER_SIDE: u32 = 1 << 6;
    /// `x`: matches xattr names, not files.
    pub const XATTR: u32 = 1 << 7;
    /// The pattern has `*`, `?` or `[`.
    pub const WILD: u32 = 1 << 8;
    /// The pattern has `**`.
    pub const WILD2: u32 = 1 << 9;
    /// The pattern starts with `**`.
    pub const WILD2_PREFIX: u32 = 1 << 10;
    /// The pattern ends with `***` (matches the directory itself too).
    pub const WILD3_SUFFIX: u32 = 1 << 11;
    /// `.` or `:`: a merge-file rule.
    pub const MERGE_FILE: u32 = 1 << 12;
    /// `:`: a per-directory merge file.
    pub const PERDIR_MERGE: u32 = 1 << 13;
    /// `-`/`+` modifier on a merge rule: its lines are bare patterns.
    pub const NO_PREFIXES: u32 = 1 << 14;
    /// `w`: the merge file is split on whitespace.
    pub const WORD_SPLIT: u32 = 1 << 15;
    /// `n`: per-directory rules are not inherited by subdirectories.
    pub const NO_INHERIT: u32 = 1 << 16;
    /// `C`: CVS-ignore semantics (a `-C` rule stands for the global CVS list).
    pub const CVS_IGNORE: u32 = 1 << 17;
    /// `e`: the merge file excludes itself.
    pub const EXCLUDE_SELF: u32 = 1 << 18;
    /// `!` rule: clears the current list.
    pub const CLEAR_LIST: u32 = 1 << 19;

    /// Both side bits.
    pub const SIDES: u32 = SENDER_SIDE | RECEIVER_SIDE;
    /// What a rule read from a merge file inherits from the merge rule.
    pub const FROM_CONTAINER: u32 = ABS_PATH | INCLUDE | DIRECTORY | NEGATE | PERISHABLE;
}

/// A parsed rule: the pattern as matched (trailing `/` removed, prefix added
/// for anchored per-directory rules) and its flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// The pattern; for merge rules, the merge file's name.
    pub pattern: Box<[u8]>,
    /// [`flag`] bits.
    pub flags: u32,
    /// Slashes in the pattern (rsync matches that many trailing path elements
    /// plus one for an unanchored pattern with an inner slash).
    pub slash_cnt: u32,
}

/// A rule-syntax error, with rsync's message (printed without a prefix) and
/// the exit code rsync uses for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleError {
    /// The message line.
    pub message: String,
    /// 1 (syntax) or 11 (a merge file that cannot be read).
    pub code: i32,
    /// Print with the `resync: [client] ` prefix (file errors) or bare (syntax).
    pub prefixed: bool,
}

impl RuleError {
    fn syntax(message: String) -> Self {
        RuleError {
            message,
            code: crate::exit::SYNTAX,
            prefixed: false,
        }
    }
}

impl Rule {
    /// Whether the rule is for the sending side only.
    pub fn sender_only(&self) -> bool {
        self.flags & flag::SIDES == flag::SENDER_SIDE
    }

    /// Whether the rule is for the receiving side only.
    pub fn receiver_only(&self) -> bool {
        self.flags & flag::SIDES == flag::RECEIVER_SIDE
    }

    /// Does this rule decide `name`? (`name` is the path relative to the
    /// transfer root, `abs_root` the root's absolute path without its leading
    /// `/`, used by absolute-path rules.) Returns `true` when the rule applies.
    pub fn matches(&self, name: &[u8], is_dir: bool, abs_root: &[u8]) -> bool {
        let negate = self.flags & flag::NEGATE != 0;
        let name = name.strip_prefix(b"/").unwrap_or(name);
        if name.is_empty() || self.flags & flag::XATTR != 0 {
            return false;
        }
        let wild2 = self.flags & flag::WILD2 != 0;
        // The text matched: the last component, or the path with a prefix.
        let mut text: Vec<u8>;
        let only_base = self.slash_cnt == 0 && !wild2;
        if only_base {
            let base = match name.iter().rposition(|&c| c == b'/') {
                Some(i) => &name[i + 1..],
                None => name,
            };
            text = base.to_vec();
        } else if self.flags & flag::ABS_PATH != 0 && !abs_root.is_empty() {
            text = Vec::with_capacity(abs_root.len() + 1 + name.len() + 1);
            text.extend_from_slice(abs_root);
            text.push(b'/');
            text.extend_from_slice(name);
        } else if self.flags & flag::WILD2_PREFIX != 0 {
            text = Vec::with_capacity(name.len() + 2);
            text.push(b'/');
            text.extend_from_slice(name);
        } else {
            text = name.to_vec();
        }
        let pieces_joined = !only_base && text.len() != name.len();
        if is_dir {
            if self.flags & flag::WILD3_SUFFIX != 0 {
                text.push(b'/');
            }
        } else if self.flags & flag::DIRECTORY != 0 {
            return negate;
        }
        let mut pattern: &[u8] = &self.pattern;
        let anchored = pattern.first() == Some(&b'/');
        if anchored {
            pattern = &pattern[1..];
        }
        let slash_handling: i32 = if !anchored && self.slash_cnt > 0 && !wild2 {
            self.slash_cnt as i32 + 1
        } else if !anchored && self.flags & flag::WILD2_PREFIX == 0 && wild2 {
            -1
        } else {
            0
        };
        let several = pieces_joined || (is_dir && self.flags & flag::WILD3_SUFFIX != 0);
        let hit = if self.flags & flag::WILD != 0 {
            wildmatch::wildmatch_array(pattern, &text, slash_handling)
        } else if several {
            literal_array(pattern, &text, slash_handling)
        } else if anchored {
            text == pattern
        } else {
            // The pattern must equal a whole trailing run of components.
            text.ends_with(pattern)
                && (text.len() == pattern.len() || text[text.len() - pattern.len() - 1] == b'/')
        };
        hit != negate
    }
}

/// rsync's `litmatch_array`: a literal comparison against the text, or its
/// last `where_` components.
fn literal_array(pattern: &[u8], text: &[u8], where_: i32) -> bool {
    let t = if where_ > 0 {
        match wildmatch::trailing_elements(text, where_ as usize) {
            Some(t) => t,
            None => return false,
        }
    } else {
        text
    };
    t == pattern
}

/// Where the rules of a parse come from, which decides which prefixes are
/// understood (rsync's `XFLG_OLD_PREFIXES` and the template rule).
#[derive(Clone, Copy, Debug)]
pub struct Template {
    /// Flags every parsed rule starts from (only [`flag::FROM_CONTAINER`] bits
    /// are inherited, plus the sides).
    pub flags: u32,
    /// `--include`/`--exclude` syntax: only `+ `, `- ` and `!` prefixes.
    pub old_prefixes: bool,
}

/// One token parsed from a rule string: the rule (flags, unprocessed pattern)
/// and where the next token starts.
pub struct Token {
    /// The flags of the rule.
    pub flags: u32,
    /// The raw pattern (may be empty for clear and `-C`-style rules).
    pub pattern: Vec<u8>,
}

/// Parse every rule in `s` (one line of a file or one option value), as
/// rsync's `parse_rule_tok` loop does. `delete_excluded` turns unsided plain
/// rules into sender-side ones.
pub fn tokens(s: &[u8], t: Template, delete_excluded: bool) -> Result<Vec<Token>, RuleError> {
    let mut out = Vec::new();
    let mut rest = s;
    let whole = |r: &[u8]| String::from_utf8_lossy(r).into_owned();
    loop {
        if t.flags & flag::WORD_SPLIT != 0 {
            while rest.first().is_some_and(|c| c.is_ascii_whitespace()) {
                rest = &rest[1..];
            }
        }
        if rest.is_empty() {
            return Ok(out);
        }
        let start = rest;
        let mut flags = t.flags & flag::FROM_CONTAINER;
        let mut i = 0usize;
        if t.flags & flag::NO_PREFIXES != 0 {
            if rest[0] == b'!' && t.flags & flag::CVS_IGNORE != 0 {
                flags |= flag::CLEAR_LIST;
            }
        } else if t.old_prefixes {
            if rest.starts_with(b"- ") {
                flags &= !flag::INCLUDE;
                i = 2;
            } else if rest.starts_with(b"+ ") {
                flags |= flag::INCLUDE;
                i = 2;
            } else if rest[0] == b'!' {
                flags |= flag::CLEAR_LIST;
            }
        } else {
            let (ch, mut j) = rule_char(rest);
            let Some(ch) = ch else {
                return Err(RuleError::syntax(format!(
                    "Unknown filter rule: {}",
                    whole(start)
                )));
            };
            let mut side_given = false;
            match ch {
                b':' => flags |= flag::PERDIR_MERGE | flag::MERGE_FILE,
                b'.' => flags |= flag::MERGE_FILE,
                b'+' => flags |= flag::INCLUDE,
                b'-' => {}
                b'S' => {
                    flags |= flag::INCLUDE | flag::SENDER_SIDE;
                    side_given = true;
                }
                b'H' => {
                    flags |= flag::SENDER_SIDE;
                    side_given = true;
                }
                b'R' => {
                    flags |= flag::INCLUDE | flag::RECEIVER_SIDE;
                    side_given = true;
                }
                b'P' => {
                    flags |= flag::RECEIVER_SIDE;
                    side_given = true;
                }
                b'!' => flags |= flag::CLEAR_LIST,
                _ => {
                    return Err(RuleError::syntax(format!(
                        "Unknown filter rule: {}",
                        whole(start)
                    )));
                }
            }
            // Modifiers run from after the rule name to a space or `_`.
            if ch != b'!' {
                loop {
                    j += 1;
                    let Some(&c) = rest.get(j) else { break };
                    if c == b' ' || c == b'_' {
                        break;
                    }
                    if t.flags & flag::WORD_SPLIT != 0 && c.is_ascii_whitespace() {
                        j -= 1;
                        break;
                    }
                    let invalid = || {
                        RuleError::syntax(format!(
                            "invalid modifier '{}' at position {} in filter rule: {}",
                            c as char,
                            j,
                            whole(start)
                        ))
                    };
                    let merge = flags & flag::MERGE_FILE != 0;
                    match c {
                        b'-' | b'+' => {
                            if !merge || flags & flag::NO_PREFIXES != 0 {
                                return Err(invalid());
                            }
                            flags |= flag::NO_PREFIXES;
                            if c == b'+' {
                                flags |= flag::INCLUDE;
                            }
                        }
                        b'/' => flags |= flag::ABS_PATH,
                        b'!' => {
                            if merge {
                                return Err(invalid());
                            }
                            flags |= flag::NEGATE;
                        }
                        b'C' => {
                            if flags & flag::NO_PREFIXES != 0 || side_given {
                                return Err(invalid());
                            }
                            flags |= flag::NO_PREFIXES
                                | flag::WORD_SPLIT
                                | flag::NO_INHERIT
                                | flag::CVS_IGNORE;
                        }
                        b'e' | b'n' | b'w' if !merge => return Err(invalid()),
                        b'e' => flags |= flag::EXCLUDE_SELF,
                        b'n' => flags |= flag::NO_INHERIT,
                        b'w' => flags |= flag::WORD_SPLIT,
                        b'p' => flags |= flag::PERISHABLE,
                        b'r' | b's' if side_given => return Err(invalid()),
                        b'r' => flags |= flag::RECEIVER_SIDE,
                        b's' => flags |= flag::SENDER_SIDE,
                        b'x' => flags |= flag::XATTR,
                        _ => return Err(invalid()),
                    }
                }
            }
            i = (j + 1).min(rest.len());
        }
        if t.flags & flag::SIDES != 0 {
            if flags & flag::SIDES != 0 {
                return Err(RuleError::syntax(format!(
                    "specified-side merge file contains specified-side filter: {}",
                    whole(start)
                )));
            }
            flags |= t.flags & flag::SIDES;
        }
        let body = &rest[i..];
        let len = if t.flags & flag::WORD_SPLIT != 0 {
            body.iter()
                .position(|c| c.is_ascii_whitespace())
                .unwrap_or(body.len())
        } else {
            body.len()
        };
        if flags & flag::CLEAR_LIST != 0 {
            if flags & flag::NO_PREFIXES == 0 && !t.old_prefixes && len > 0 {
                return Err(RuleError::syntax(format!(
                    "'!' rule has trailing characters: {}",
                    whole(start)
                )));
            }
            if len > 1 {
                flags &= !flag::CLEAR_LIST;
            }
        } else if len == 0 && flags & flag::CVS_IGNORE == 0 {
            return Err(RuleError::syntax(format!(
                "unexpected end of filter rule: {}",
                whole(start)
            )));
        }
        if delete_excluded && flags & (flag::SIDES | flag::MERGE_FILE | flag::PERDIR_MERGE) == 0 {
            flags |= flag::SENDER_SIDE;
        }
        out.push(Token {
            flags,
            pattern: body[..len].to_vec(),
        });
        rest = &body[len..];
    }
}

/// The rule character at the start of `s` (long names mapped to their
/// letter) and the index of its last byte; `None` for an unknown word.
fn rule_char(s: &[u8]) -> (Option<u8>, usize) {
    const WORDS: [(&[u8], u8); 9] = [
        (b"clear", b'!'),
        (b"dir-merge", b':'),
        (b"exclude", b'-'),
        (b"hide", b'H'),
        (b"include", b'+'),
        (b"merge", b'.'),
        (b"protect", b'P'),
        (b"risk", b'R'),
        (b"show", b'S'),
    ];
    for (w, c) in WORDS {
        if s[0] != w[0] {
            continue;
        }
        if !s.starts_with(w) {
            return (None, 0);
        }
        return match s.get(w.len()) {
            None | Some(b'_') => (Some(c), w.len() - 1),
            Some(x) if x.is_ascii_whitespace() => (Some(c), w.len() - 1),
            Some(b',') => (Some(c), w.len()),
            Some(_) => (None, 0),
        };
    }
    let j = if s.get(1) == Some(&b',') { 1 } else { 0 };
    (Some(s[0]), j)
}

/// Finish a rule as rsync's `add_rule` does: strip the directory slash,
/// count slashes, prefix anchored per-directory patterns with `dir_prefix`,
/// and note the wildcards.
pub fn finish(flags: u32, pat: &[u8], dir_prefix: Option<&[u8]>) -> Rule {
    let mut flags = flags;
    let mut pat = pat;
    if pat.len() > 1 && pat.ends_with(b"/") {
        pat = &pat[..pat.len() - 1];
        flags |= flag::DIRECTORY;
    }
    let mut pattern = Vec::with_capacity(pat.len());
    if let Some(prefix) = dir_prefix {
        if flags & (flag::ABS_PATH | flag::MERGE_FILE) == 0 && pat.first() == Some(&b'/') {
            flags |= flag::ABS_PATH;
            pattern.extend_from_slice(prefix);
        }
    }
    pattern.extend_from_slice(pat);
    let slash_cnt = pattern.iter().filter(|&&c| c == b'/').count() as u32;
    if pattern.iter().any(|c| matches!(c, b'*' | b'[' | b'?')) {
        flags |= flag::WILD;
        if let Some(i) = pattern.windows(2).position(|w| w == b"**") {
            flags |= flag::WILD2;
            if i == 0 {
                flags |= flag::WILD2_PREFIX;
            }
            if pattern.ends_with(b"***") {
                flags |= flag::WILD3_SUFFIX;
            }
        }
    }
    Rule {
        pattern: pattern.into_boxed_slice(),
        flags,
        slash_cnt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(s: &str) -> Rule {
        let t = tokens(
            s.as_bytes(),
            Template {
                flags: 0,
                old_prefixes: false,
            },
            false,
        )
        .unwrap();
        assert_eq!(t.len(), 1, "{s}");
        finish(t[0].flags, &t[0].pattern, None)
    }

    fn m(rule: &str, name: &str, dir: bool) -> bool {
        one(rule).matches(name.as_bytes(), dir, b"")
    }

    #[test]
    fn rule_names_and_modifiers() {
        assert_eq!(one("- *.o").flags & flag::INCLUDE, 0);
        assert_ne!(one("+ foo").flags & flag::INCLUDE, 0);
        assert_ne!(one("include foo").flags & flag::INCLUDE, 0);
        assert_ne!(one("-! foo").flags & flag::NEGATE, 0);
        assert_ne!(one("-,! foo").flags & flag::NEGATE, 0);
        assert_eq!(one("P foo").flags & flag::SIDES, flag::RECEIVER_SIDE);
        assert_eq!(one("protect foo").flags & flag::SIDES, flag::RECEIVER_SIDE);
        assert_eq!(one("hide,p foo").flags & flag::SIDES, flag::SENDER_SIDE);
        assert_ne!(one("hide,p foo").flags & flag::PERISHABLE, 0);
        assert_eq!(one("-_foo bar").pattern.as_ref(), b"foo bar");
        assert_ne!(one("- dir/").flags & flag::DIRECTORY, 0);
    }

    #[test]
    fn rsync_error_messages() {
        let t = Template {
            flags: 0,
            old_prefixes: false,
        };
        let e = |s: &str| tokens(s.as_bytes(), t, false).err().unwrap().message;
        assert_eq!(e("x foo"), "Unknown filter rule: x foo");
        assert_eq!(
            e("-z foo"),
            "invalid modifier 'z' at position 1 in filter rule: -z foo"
        );
        assert_eq!(e("-"), "unexpected end of filter rule: -");
        assert_eq!(e("! x"), "'!' rule has trailing characters: ! x");
        assert_eq!(
            e("-e foo"),
            "invalid modifier 'e' at position 1 in filter rule: -e foo"
        );
    }

    #[test]
    fn matching_like_rsync() {
        assert!(m("- *.o", "a/b/c.o", false));
        assert!(!m("- *.o", "a/b/c.oo", false));
        assert!(m("- /a", "a", false));
        assert!(!m("- /a", "b/a", false));
        assert!(m("- a/b", "x/a/b", false));
        assert!(!m("- a/b", "xa/b", false));
        assert!(m("- dir/", "x/dir", true));
        assert!(!m("- dir/", "x/dir", false));
        assert!(m("- /a/**", "a/b/c", false));
        assert!(!m("- /a/**", "a", true));
        assert!(m("- /a/***", "a", true));
        assert!(m("- a/***", "x/a", true));
        assert!(m("- **/c", "c", false));
        assert!(m("- **/c", "a/b/c", false));
        assert!(m("- b/**", "a/b/c/d", false));
        assert!(m("- *", "a/b", false));
        assert!(m("- a*/b", "x/ab/b", false));
        assert!(!m("- a*/b", "ab/c/b", false));
        assert!(m("-! *.c", "x.o", false));
        assert!(!m("-! *.c", "x.c", false));
        // Non-directory rule against a file: negated directory rules apply.
        assert!(m("-! d/", "f", false));
        assert!(m("- foo", "a/foo", false));
        assert!(!m("- foo", "a/xfoo", false));
        assert!(m("- [ab]", "b", false));
    }
}
