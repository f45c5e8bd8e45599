//! popt-compatible argv parser driven by [`super::table::TABLE`].
//!
//! This is hand-written rather than built on clap because rsync's popt rules do not
//! fit clap's model: a value-taking letter inside a bundle swallows the rest of the
//! bundle or the next argv (`-ave ssh`, `-f'- *.o'`, `-e=ssh`), long values may
//! start with a dash (`--rsh -v` takes `-v` as the command), there is no prefix
//! abbreviation (`--verb` is unknown in rsync 3.5), `-h` means `--help` only when
//! it is the sole argument, and error messages must match rsync's wording.
//! Everything works on bytes so that non-UTF-8 operands survive untouched.

use std::ffi::{OsStr, OsString};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;

use super::Options;
use super::table::{self, Act, ArgKind, Opt, TABLE};

/// What the caller should do after parsing argv.
#[derive(Debug)]
pub enum ParseOutcome {
    /// Run a transfer with these options.
    Run(Box<Options>),
    /// Exit right away with this code (after `--help`, `--version` or a usage error,
    /// whose message the parser has already printed to stderr/stdout).
    Exit(i32),
}

/// Parse state the option actions work on: the [`Options`] being built plus the
/// bits of rsync's parser state that only matter while parsing.
pub(crate) struct State {
    /// The options being built.
    pub(crate) o: Options,
    /// rsync's `human_readable` level: 1 by default, +1 per `-h`, 0 after `--no-h`.
    pub(crate) human: u8,
    /// Number of `-U` seen (`-UU` also means `--open-noatime`).
    pub(crate) atimes_count: u8,
    /// `--version` was given (printed after all options parsed, as rsync does).
    pub(crate) version: bool,
    /// `-F` count (the first adds the dir-merge rule, the second the exclude).
    pub(crate) f_count: u8,
    /// `--delete-WHEN` flags seen: before, during (1 = during, 2 = delay), after.
    pub(crate) del_before: bool,
    pub(crate) del_during: u8,
    pub(crate) del_after: bool,
    /// `--delete` or `--delete-excluded` without a WHEN.
    pub(crate) del_mode: bool,
    /// `-r`/`--no-r`, `-R`/`--no-R`, `-d`/`--no-d` given explicitly
    /// (`--files-from` changes only the defaults).
    pub(crate) r_set: Option<bool>,
    pub(crate) rel_set: Option<bool>,
    pub(crate) dirs_set: Option<bool>,
}

/// Why an option action stopped the parse.
#[derive(Debug)]
pub(crate) enum Stop {
    /// `--help`: print help to stdout and exit 0.
    Help,
    /// Exit at once with this code; output already written.
    Exit(i32),
    /// A usage error: print this line, then rsync's "syntax or usage error" line.
    Usage(String),
    /// An option resync recognises but does not implement (its long name).
    Unsupported(String),
}

impl Stop {
    /// A `resync: MSG` usage error.
    pub(crate) fn usage(msg: impl std::fmt::Display) -> Stop {
        Stop::Usage(format!("resync: {msg}"))
    }

    /// `NAME is not supported yet`.
    pub(crate) fn unsupported(name: &str) -> Stop {
        Stop::Unsupported(name.to_string())
    }
}

/// An option's value together with the argv element it came from (popt names
/// that element in "invalid numeric value" errors).
pub(crate) struct Val<'a> {
    /// The value itself (may be non-UTF-8).
    pub(crate) value: &'a OsStr,
    /// The argv element containing the value (`--modify-window=x`, `-@3x` or `x`).
    pub(crate) written: &'a OsStr,
}

impl Val<'_> {
    /// The value as a `String` for fields typed `String`; invalid UTF-8 is
    /// replaced rather than rejected so that parsing never panics.
    pub(crate) fn string(&self) -> String {
        self.value.to_string_lossy().into_owned()
    }
}

/// resync's version, shown where rsync shows `client=3.5.0`.
const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The trailing line rsync prints after every usage error.
fn usage_error_line() -> String {
    format!("resync error: syntax or usage error (code 1) [client={VERSION}]")
}

/// Print a usage error the way rsync does: the message, then the code-1 line.
fn eprint_usage_error(msg: &str) {
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{msg}");
    let _ = writeln!(e, "{}", usage_error_line());
}

/// The table row for a long name (`--perms`); exact match only, as rsync 3.5.
fn find_long(name: &[u8]) -> Option<&'static Opt> {
    TABLE.iter().find(|o| {
        o.names
            .iter()
            .any(|n| n.starts_with("--") && n.as_bytes() == name)
    })
}

/// The table row for a short letter.
fn find_short(c: u8) -> Option<&'static Opt> {
    TABLE.iter().find(|o| {
        o.names
            .iter()
            .any(|n| n.len() == 2 && !n.starts_with("--") && n.as_bytes()[1] == c)
    })
}

/// Run an option's action; `typed` is how the user spelled it (for messages).
fn apply(st: &mut State, opt: &Opt, typed: &str, val: Option<Val>) -> Result<(), Stop> {
    match (opt.act, val) {
        (Act::Unsupported | Act::Doc, _) => {
            let name = if typed.starts_with("--") {
                typed
            } else {
                opt.long_name()
            };
            Err(Stop::unsupported(name))
        }
        (Act::Set(f), _) => {
            f(st);
            Ok(())
        }
        (Act::Flag(f), _) => f(st),
        (Act::Value(f), Some(v)) => f(st, &v),
        // An optional-value option given without a value: nothing to apply.
        (Act::Value(_), None) => Ok(()),
    }
}

/// Bytes for a message; invalid UTF-8 is replaced, never a panic.
fn lossy(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Parse `args` (without argv\[0\]) into [`Options`].
pub fn parse(args: &[OsString]) -> ParseOutcome {
    match parse_inner(args) {
        Ok(o) => ParseOutcome::Run(Box::new(o)),
        Err(Stop::Help) => {
            print!("{}", table::help_text());
            ParseOutcome::Exit(0)
        }
        Err(Stop::Exit(code)) => ParseOutcome::Exit(code),
        Err(Stop::Usage(msg)) => {
            eprint_usage_error(&msg);
            ParseOutcome::Exit(1)
        }
        Err(Stop::Unsupported(name)) => {
            eprintln!("resync: {name} is not supported yet");
            ParseOutcome::Exit(1)
        }
    }
}

/// Parse a client's argument list on the daemon side: like [`parse`], but
/// a failure is returned as its message instead of printed (the daemon
/// sends it to the client).
pub fn parse_quiet(args: &[OsString]) -> Result<Options, String> {
    match parse_inner(args) {
        Ok(o) => Ok(o),
        Err(Stop::Usage(m)) => Err(m),
        Err(Stop::Unsupported(n)) => Err(format!("{n} is not supported yet")),
        Err(Stop::Help) | Err(Stop::Exit(_)) => Err("unexpected help or version request".into()),
    }
}

/// The parse proper; every early exit is a [`Stop`] that [`parse`] reports.
fn parse_inner(args: &[OsString]) -> Result<Options, Stop> {
    let mut st = State {
        o: Options::new(),
        human: 1,
        atimes_count: 0,
        version: false,
        f_count: 0,
        del_before: false,
        del_during: 0,
        del_after: false,
        del_mode: false,
        r_set: None,
        rel_set: None,
        dirs_set: None,
    };
    let mut operands: Vec<OsString> = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = args[i].as_bytes();
        i += 1;
        if arg == b"--" {
            operands.extend(args[i..].iter().cloned());
            break;
        }
        if let Some(long) = arg.strip_prefix(b"--") {
            let (name, inline) = match long.iter().position(|&b| b == b'=') {
                Some(p) => (&arg[..p + 2], Some(&long[p + 1..])),
                None => (arg, None),
            };
            let Some(opt) = find_long(name) else {
                return Err(Stop::usage(format!("{}: unknown option", lossy(arg))));
            };
            let typed = lossy(name);
            let val = match (opt.arg, inline) {
                (ArgKind::None, Some(_)) => {
                    return Err(Stop::usage(format!(
                        "{}: option does not take an argument",
                        lossy(arg)
                    )));
                }
                (ArgKind::None, None) | (ArgKind::Optional, None) => None,
                (_, Some(v)) => Some(Val {
                    value: OsStr::from_bytes(v),
                    written: OsStr::from_bytes(arg),
                }),
                (ArgKind::Required, None) => match args.get(i) {
                    Some(next) => {
                        i += 1;
                        Some(Val {
                            value: next,
                            written: next,
                        })
                    }
                    None => return Err(Stop::usage(format!("{typed}: missing argument"))),
                },
            };
            apply(&mut st, opt, &typed, val)?;
        } else if arg.len() > 1 && arg[0] == b'-' {
            let mut j = 1;
            while j < arg.len() {
                let c = arg[j];
                j += 1;
                let Some(opt) = find_short(c) else {
                    return Err(Stop::usage(format!("{}: unknown option", lossy(arg))));
                };
                let typed = format!("-{}", c as char);
                if opt.arg == ArgKind::None {
                    apply(&mut st, opt, &typed, None)?;
                    if arg.get(j) == Some(&b'=') {
                        return Err(Stop::usage(format!(
                            "{}: option does not take an argument",
                            lossy(arg)
                        )));
                    }
                    continue;
                }
                // A value-taking letter consumes the rest of the bundle (minus a
                // leading '=') or else the next argv.
                let rest = &arg[j..];
                let rest = rest.strip_prefix(b"=").unwrap_or(rest);
                let val = if !rest.is_empty() {
                    Some(Val {
                        value: OsStr::from_bytes(rest),
                        written: OsStr::from_bytes(arg),
                    })
                } else if opt.arg == ArgKind::Optional {
                    None
                } else if let Some(next) = args.get(i) {
                    i += 1;
                    Some(Val {
                        value: next,
                        written: next,
                    })
                } else {
                    return Err(Stop::usage(format!("{}: missing argument", lossy(arg))));
                };
                apply(&mut st, opt, &typed, val)?;
                break;
            }
        } else {
            operands.push(args[i - 1].clone());
        }
    }

    if st.o.files_from.is_some() {
        // --files-from implies -R and -d, and -a's -r does not apply.
        st.o.recursive = st.r_set == Some(true);
        st.o.relative = st.rel_set.unwrap_or(true);
        st.o.dirs = st.dirs_set.unwrap_or(true);
    }
    if st.del_before as u8 + (st.del_during > 0) as u8 + st.del_after as u8 > 1 {
        return Err(Stop::usage(
            "You may not combine multiple --delete-WHEN options.",
        ));
    }
    st.o.delete = if st.del_before {
        crate::options::Delete::Before
    } else if st.del_during == 1 {
        crate::options::Delete::During
    } else if st.del_during == 2 {
        crate::options::Delete::Delay
    } else if st.del_after {
        crate::options::Delete::After
    } else if st.del_mode || st.o.delete_excluded {
        crate::options::Delete::During
    } else {
        crate::options::Delete::Off
    };
    if st.o.delete != crate::options::Delete::Off && !st.o.recursive && !st.o.dirs {
        return Err(Stop::usage(
            "--delete does not work without --recursive (-r) or --dirs (-d).",
        ));
    }
    if st.o.old_args > 0 && st.o.protect_args == Some(true) {
        return Err(Stop::usage("--secluded-args conflicts with --old-args."));
    }
    backup_rules(&mut st.o)?;
    if st.version {
        print!("{}", table::version_text());
        return Err(Stop::Exit(0));
    }
    // rsync keeps the old meaning of a lone `-h` (also `-hv`, `-hh`): help.
    if st.human > 1 && args.len() == 1 {
        return Err(Stop::Help);
    }
    st.o.human_readable = st.human.saturating_sub(1);
    st.o.plain_numbers = st.human == 0;

    if st.o.daemon.daemon && operands.is_empty() && !st.o.server {
        // `resync --daemon [--config FILE] …`: no operands.
        return Ok(st.o);
    }
    match operands.len() {
        0 => {
            // rsync prints its whole help text to stderr, then the usage error.
            eprint!("{}", table::help_text());
            eprintln!("{}", usage_error_line());
            return Err(Stop::Exit(1));
        }
        1 => {
            st.o.list_only = true;
            st.o.dest = None;
        }
        _ => st.o.dest = operands.pop(),
    }
    st.o.sources = operands;
    Ok(st.o)
}

/// rsync's checks of the backup options once all are known; `--backup-dir`
/// implies `--backup`, `--backup` without it implies `--omit-dir-times`.
fn backup_rules(o: &mut Options) -> Result<(), Stop> {
    let suffix = o.backup_suffix();
    if suffix.as_bytes().contains(&b'/') {
        return Err(Stop::usage(format!(
            "--suffix cannot contain slashes: {}",
            suffix.to_string_lossy()
        )));
    }
    if o.backup_dir.is_some() {
        o.backup = true;
    } else if suffix.is_empty() {
        return Err(Stop::usage(
            "--suffix cannot be empty without a --backup-dir",
        ));
    } else if o.backup {
        // Backups beside the files would change every directory's mtime
        // again, so rsync implies --omit-dir-times.
        o.omit_dir_times = true;
    }
    Ok(())
}

/// `--link-dest`, `--compare-dest`, `--copy-dest`: one kind per run, at most
/// [`MAX_BASIS_DIRS`](super::MAX_BASIS_DIRS) directories.
pub(crate) fn alt_dest(st: &mut State, v: &Val, kind: super::AltDest) -> Result<(), Stop> {
    if let Some(old) = st.o.alt_dest.filter(|&o| o != kind) {
        return Err(Stop::usage(format!(
            "ERROR: the {} option conflicts with the {} option",
            kind.option_name(),
            old.option_name()
        )));
    }
    st.o.alt_dest = Some(kind);
    if st.o.basis_dirs.len() >= super::MAX_BASIS_DIRS {
        return Err(Stop::usage(format!(
            "ERROR: at most {} {} args may be specified",
            super::MAX_BASIS_DIRS,
            kind.option_name()
        )));
    }
    st.o.basis_dirs.push(v.value.to_os_string());
    Ok(())
}

// ---- value parsers used by the table's actions ---------------------------------

/// Why rsync's `parse_size_arg` rejected a size.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum SizeError {
    /// Not a size at all (`x`, `1KBx`, `1K+2`).
    Invalid,
    /// Negative or beyond 2^63-1 (`-1`, `0-1`, `8192P`).
    TooLarge,
}

/// C `atof` on the `digits[.digits]` prefix rsync has already checked.
fn atof(num: &[u8]) -> f64 {
    std::str::from_utf8(num)
        .ok()
        .and_then(|s| s.parse::<f64>().ok())
        .unwrap_or(0.0)
}

/// rsync's size syntax: `NUM[.FRAC][SUFFIX][+1|-1]` where SUFFIX is one of
/// `B K M G T P` (any case), optionally followed by `B` (powers of 1000) or `iB`
/// (powers of 1024, the default); without a suffix the unit is `def_suf`.
/// Fractions are truncated after scaling (`1.5` is 1, `1.5K` is 1536).
pub(crate) fn parse_size(arg: &[u8], def_suf: u8) -> Result<u64, SizeError> {
    if arg.len() >= 2 && arg[0] == b'-' && arg[1].is_ascii_digit() {
        return Err(SizeError::TooLarge);
    }
    let digits = |mut i: usize| {
        while i < arg.len() && arg[i].is_ascii_digit() {
            i += 1;
        }
        i
    };
    let mut i = digits(0);
    if arg.get(i) == Some(&b'.') {
        i = digits(i + 1);
    }
    let num_end = i;
    let suffix = match arg.get(i) {
        Some(&c) if c != b'+' && c != b'-' => {
            i += 1;
            c
        }
        _ => def_suf,
    };
    let reps = match suffix.to_ascii_lowercase() {
        b'b' => 0,
        b'k' => 1,
        b'm' => 2,
        b'g' => 3,
        b't' => 4,
        b'p' => 5,
        _ => return Err(SizeError::Invalid),
    };
    let mult: f64 = match arg.get(i) {
        Some(b'b' | b'B') => {
            i += 1;
            1000.0
        }
        None | Some(b'+' | b'-') => 1024.0,
        Some(_) if arg[i..].len() >= 2 && arg[i..i + 2].eq_ignore_ascii_case(b"ib") => {
            i += 2;
            1024.0
        }
        Some(_) => return Err(SizeError::Invalid),
    };
    let scaled = mult.powi(reps) * atof(&arg[..num_end]);
    if scaled >= 9_223_372_036_854_775_807.0 {
        return Err(SizeError::TooLarge);
    }
    // C's double-to-integer conversion truncates toward zero.
    let mut size = scaled.trunc() as i128;
    if i > 0 && matches!(arg.get(i), Some(b'+' | b'-')) && arg.get(i + 1) == Some(&b'1') {
        size += if arg[i] == b'+' { 1 } else { -1 };
        i += 2;
    }
    if i < arg.len() {
        return Err(SizeError::Invalid);
    }
    u64::try_from(size)
        .ok()
        .filter(|&s| s <= i64::MAX as u64)
        .ok_or(SizeError::TooLarge)
}

/// `--max-size`/`--min-size`: bytes, with rsync's error message on failure.
pub(crate) fn size(v: &Val, opt_name: &str) -> Result<u64, Stop> {
    parse_size(v.value.as_bytes(), b'b').map_err(|e| {
        let what = match e {
            SizeError::Invalid => "invalid",
            SizeError::TooLarge => "too large",
        };
        Stop::usage(format!(
            "--{opt_name}={} is {what}",
            v.value.to_string_lossy()
        ))
    })
}

/// Why popt rejected an integer.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum IntError {
    /// "invalid numeric value".
    Bad,
    /// "number too large or too small".
    Overflow,
}

/// popt's `POPT_ARG_INT`: C `strtol(s, &end, 0)` (leading blanks, sign, `0x` hex,
/// `0` octal), the whole string must be used, and the result must fit an `int`.
pub(crate) fn parse_int(s: &[u8]) -> Result<i64, IntError> {
    let mut i = 0;
    while i < s.len() && matches!(s[i], b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c) {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut radix = 10;
    if s.get(i) == Some(&b'0') {
        if matches!(s.get(i + 1), Some(b'x' | b'X'))
            && s.get(i + 2).is_some_and(|c| c.is_ascii_hexdigit())
        {
            radix = 16;
            i += 2;
        } else {
            radix = 8;
        }
    }
    let start = i;
    let mut n: i128 = 0;
    while let Some(d) = s.get(i).and_then(|&c| (c as char).to_digit(radix)) {
        n = (n * i128::from(radix) + i128::from(d)).min(i128::from(u64::MAX));
        i += 1;
    }
    if i == start {
        // No digits: strtol leaves `end` at the start, so only "" is accepted.
        return if s.is_empty() {
            Ok(0)
        } else {
            Err(IntError::Bad)
        };
    }
    if i < s.len() {
        return Err(IntError::Bad);
    }
    let n = if neg { -n } else { n };
    if n > i128::from(i32::MAX) || n < i128::from(i32::MIN) {
        return Err(IntError::Overflow);
    }
    Ok(n as i64)
}

/// `--bwlimit=RATE` as rsync reads it: a size in KiB unless suffixed, at
/// least 512 bytes/s or 0 for unlimited, kept in KiB/s rounded to nearest
/// (rsync's `(size + 512) / 1024`).
pub(crate) fn bwlimit(v: &Val) -> Result<u64, Stop> {
    let shown = v.value.to_string_lossy();
    let bytes = parse_size(v.value.as_bytes(), b'K').map_err(|e| {
        let what = match e {
            SizeError::Invalid => "invalid",
            SizeError::TooLarge => "too large",
        };
        Stop::usage(format!("--bwlimit={shown} is {what}"))
    })?;
    if bytes != 0 && bytes < 512 {
        return Err(Stop::usage(format!(
            "--bwlimit={shown} is too small (min: 512 or 0 for unlimited)"
        )));
    }
    Ok(bytes.saturating_add(512) / 1024)
}

/// An integer option value, with popt's error messages.
pub(crate) fn int(v: &Val) -> Result<i64, Stop> {
    parse_int(v.value.as_bytes()).map_err(|e| {
        let what = match e {
            IntError::Bad => "invalid numeric value",
            IntError::Overflow => "number too large or too small",
        };
        Stop::usage(format!("{}: {what}", v.written.to_string_lossy()))
    })
}

/// `--info` words and what they mean, as `rsync --info=help` lists them.
const INFO_WORDS: &[(&str, &str)] = &[
    ("BACKUP", "Mention files backed up"),
    ("COPY", "Mention files copied locally on the receiving side"),
    ("DEL", "Mention deletions on the receiving side"),
    ("FLIST", "Mention file-list receiving/sending (levels 1-2)"),
    ("MISC", "Mention miscellaneous information (levels 1-2)"),
    ("MOUNT", "Mention mounts that were found or skipped"),
    (
        "NAME",
        "Mention 1) updated file/dir names, 2) unchanged names",
    ),
    (
        "NONREG",
        "Mention skipped non-regular files (default 1, 0 disables)",
    ),
    (
        "PROGRESS",
        "Mention 1) per-file progress or 2) total transfer progress",
    ),
    ("REMOVE", "Mention files removed on the sending side"),
    (
        "SKIP",
        "Mention files skipped due to transfer overrides (levels 1-2)",
    ),
    ("STATS", "Mention statistics at end of run (levels 1-3)"),
    ("SYMSAFE", "Mention symlinks that are unsafe"),
];

/// What each `-v` level turns on, for `--info=help`.
const INFO_LEVELS: &[&str] = &[
    "0) NONREG",
    "1) COPY,DEL,FLIST,MISC,NAME,STATS,SYMSAFE",
    "2) BACKUP,MISC2,MOUNT,NAME2,REMOVE,SKIP",
];

/// `--debug` words, as `rsync --debug=help` lists them.
const DEBUG_WORDS: &[(&str, &str)] = &[
    ("ACL", "Debug extra ACL info"),
    ("BACKUP", "Debug backup actions (levels 1-2)"),
    ("BIND", "Debug socket bind actions"),
    ("CHDIR", "Debug when the current directory changes"),
    ("CONNECT", "Debug connection events (levels 1-2)"),
    ("CMD", "Debug commands+options that are issued (levels 1-2)"),
    ("DEL", "Debug delete actions (levels 1-3)"),
    ("DELTASUM", "Debug delta-transfer checksumming (levels 1-4)"),
    ("DUP", "Debug weeding of duplicate names"),
    ("EXIT", "Debug exit events (levels 1-3)"),
    ("FILTER", "Debug filter actions (levels 1-3)"),
    ("FLIST", "Debug file-list operations (levels 1-4)"),
    ("FUZZY", "Debug fuzzy scoring (levels 1-2)"),
    ("GENR", "Debug generator functions"),
    ("HASH", "Debug hashtable code"),
    ("HLINK", "Debug hard-link actions (levels 1-3)"),
    ("ICONV", "Debug iconv character conversions (levels 1-2)"),
    ("IO", "Debug I/O routines (levels 1-4)"),
    ("NSTR", "Debug negotiation strings"),
    (
        "OWN",
        "Debug ownership changes in users & groups (levels 1-2)",
    ),
    ("PROTO", "Debug protocol information"),
    ("RECV", "Debug receiver functions"),
    ("SEND", "Debug sender functions"),
    ("TIME", "Debug setting of modified times (levels 1-2)"),
];

/// What each `-v` level turns on, for `--debug=help`.
const DEBUG_LEVELS: &[&str] = &[
    "2) BIND,CONNECT,CMD,DEL,DELTASUM,DUP,FILTER,FLIST,ICONV",
    "3) ACL,BACKUP,CONNECT2,DEL2,DELTASUM2,EXIT,FILTER2,FLIST2,FUZZY,GENR,OWN,RECV,SEND,TIME",
    "4) CMD2,DEL3,DELTASUM3,EXIT2,FLIST3,ICONV2,OWN2,PROTO,TIME2",
    "5) CHDIR,DELTASUM4,FLIST4,FUZZY2,HASH,HLINK",
];

/// The text of `--info=help` / `--debug=help`.
fn output_word_help(kind: &str, words: &[(&str, &str)], levels: &[&str]) -> String {
    let mut s = String::from(
        "Use OPT or OPT1 for level 1 output, OPT2 for level 2, etc.; OPT0 silences.\n\n",
    );
    for (w, h) in words {
        s.push_str(&format!("{w:<10} {h}\n"));
    }
    s.push('\n');
    s.push_str(&format!(
        "{:<10} Set all {kind} options (e.g. all4)\n",
        "ALL"
    ));
    s.push_str(&format!(
        "{:<10} Silence all {kind} options (same as all0)\n",
        "NONE"
    ));
    s.push_str(&format!("{:<10} Output this help message\n", "HELP"));
    s.push_str("\nOptions added at each level of verbosity:\n");
    for l in levels {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// One parsed `--info`/`--debug` word: upper-cased name (`ALL` for all/none)
/// and level 0..=4.
fn output_words(
    value: &[u8],
    kind: &str,
    words: &[(&str, &str)],
    levels: &[&str],
) -> Result<Vec<(String, u8)>, Stop> {
    let mut out = Vec::new();
    for word in value.split(|&b| b == b',').filter(|w| !w.is_empty()) {
        let mut len = word.len();
        if !word[0].is_ascii_digit() {
            while len > 0 && word[len - 1].is_ascii_digit() {
                len -= 1;
            }
        }
        let lev = if len < word.len() {
            // atoi, capped at rsync's MAX_OUT_LEVEL.
            word[len..]
                .iter()
                .try_fold(0u32, |n, &d| {
                    n.checked_mul(10)?.checked_add(u32::from(d - b'0'))
                })
                .map_or(4, |n| n.min(4) as u8)
        } else {
            1
        };
        let name = &word[..len];
        if name.eq_ignore_ascii_case(b"help") {
            print!("{}", output_word_help(kind, words, levels));
            return Err(Stop::Exit(0));
        }
        if name.eq_ignore_ascii_case(b"none") {
            out.push(("ALL".to_string(), 0));
        } else if name.eq_ignore_ascii_case(b"all") {
            out.push(("ALL".to_string(), lev));
        } else if let Some((w, _)) = words
            .iter()
            .find(|(w, _)| w.as_bytes().eq_ignore_ascii_case(name))
        {
            out.push((w.to_string(), lev));
        } else {
            return Err(Stop::Usage(format!(
                "Unknown {kind} item: \"{}\"",
                lossy(name)
            )));
        }
    }
    Ok(out)
}

/// `--info=FLAGS`: `progress2` selects whole-transfer progress, `progress`/
/// `progress1` per-file progress, `progress0` none; every word is also kept in
/// [`Options::info`] for the parts of the engine that honour other flags.
pub(crate) fn info(st: &mut State, v: &Val) -> Result<(), Stop> {
    for (name, lev) in output_words(v.value.as_bytes(), "--info", INFO_WORDS, INFO_LEVELS)? {
        if name == "PROGRESS" || name == "ALL" {
            st.o.progress = lev == 1;
            st.o.progress2 = lev >= 2;
        }
        st.o.info.push((name, lev));
    }
    Ok(())
}

/// `--debug=FLAGS`: validated like rsync does and recorded (resync prints
/// the `filter` messages; the other words have no output yet).
pub(crate) fn debug(st: &mut State, v: &Val) -> Result<(), Stop> {
    let words = output_words(v.value.as_bytes(), "--debug", DEBUG_WORDS, DEBUG_LEVELS)?;
    st.o.debug.extend(words);
    Ok(())
}

/// `--chown=USER:GROUP`: like rsync, a non-empty USER turns on `-o` and a
/// non-empty GROUP turns on `-g`; each half may be given only once.
pub(crate) fn chown(st: &mut State, v: &Val) -> Result<(), Stop> {
    let raw = v.string();
    let (user, group) = match raw.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (raw.as_str(), None),
    };
    if !user.is_empty() {
        if st.o.chown_user.is_some() {
            return Err(Stop::usage(
                "You can only specify a user-affecting --chown once.",
            ));
        }
        st.o.chown_user = Some(user.to_string());
        st.o.owner = true;
    }
    if let Some(g) = group.filter(|g| !g.is_empty()) {
        if st.o.chown_group.is_some() {
            return Err(Stop::usage(
                "You can only specify a group-affecting --chown once.",
            ));
        }
        st.o.chown_group = Some(g.to_string());
        st.o.group = true;
    }
    let mut whole = st.o.chown_user.clone().unwrap_or_default();
    if let Some(g) = &st.o.chown_group {
        whole.push(':');
        whole.push_str(g);
    }
    st.o.chown = Some(whole);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn size_units_are_powers_of_1024_unless_b_follows() {
        assert_eq!(parse_size(b"1K", b'b'), Ok(1024));
        assert_eq!(parse_size(b"1KB", b'b'), Ok(1000));
        assert_eq!(parse_size(b"1KiB", b'b'), Ok(1024));
        assert_eq!(parse_size(b"2g", b'b'), Ok(2 << 30));
        assert_eq!(parse_size(b"1.5K", b'b'), Ok(1536));
        assert_eq!(
            parse_size(b"1.5", b'b'),
            Ok(1),
            "fractions truncate after scaling"
        );
    }

    #[test]
    fn size_may_end_in_plus_or_minus_one() {
        assert_eq!(parse_size(b"1K+1", b'b'), Ok(1025));
        assert_eq!(parse_size(b"1K-1", b'b'), Ok(1023));
        assert_eq!(parse_size(b"1K+2", b'b'), Err(SizeError::Invalid));
        assert_eq!(parse_size(b"+1", b'b'), Err(SizeError::Invalid));
        assert_eq!(parse_size(b"0-1", b'b'), Err(SizeError::TooLarge));
    }

    #[test]
    fn default_suffix_applies_without_one() {
        // --bwlimit uses K as its default unit.
        assert_eq!(parse_size(b"2", b'K'), Ok(2048));
        assert_eq!(parse_size(b"2", b'b'), Ok(2));
    }

    #[test]
    fn size_rejects() {
        for bad in [&b"x"[..], b"1KBx", b"1.5.5", b"1e3", b" 1", b"1 ", b"1Kx"] {
            assert_eq!(parse_size(bad, b'b'), Err(SizeError::Invalid), "{bad:?}");
        }
        for big in [&b"-1"[..], b"-1x", b"8192P", b"99999P"] {
            assert_eq!(parse_size(big, b'b'), Err(SizeError::TooLarge), "{big:?}");
        }
    }

    #[test]
    fn ints_follow_strtol_base_0() {
        assert_eq!(parse_int(b"42"), Ok(42));
        assert_eq!(parse_int(b"-7"), Ok(-7));
        assert_eq!(parse_int(b"+7"), Ok(7));
        assert_eq!(parse_int(b"  7"), Ok(7));
        assert_eq!(parse_int(b"0x1f"), Ok(31));
        assert_eq!(parse_int(b"017"), Ok(15));
        assert_eq!(parse_int(b"0"), Ok(0));
        assert_eq!(parse_int(b""), Ok(0));
        assert_eq!(parse_int(b"08"), Err(IntError::Bad));
        assert_eq!(parse_int(b"0x"), Err(IntError::Bad));
        assert_eq!(parse_int(b"7 "), Err(IntError::Bad));
        assert_eq!(parse_int(b" "), Err(IntError::Bad));
        assert_eq!(parse_int(b"-"), Err(IntError::Bad));
        assert_eq!(parse_int(b"2147483647"), Ok(2_147_483_647));
        assert_eq!(parse_int(b"-2147483648"), Ok(-2_147_483_648));
        assert_eq!(parse_int(b"2147483648"), Err(IntError::Overflow));
        assert_eq!(
            parse_int(b"99999999999999999999999999"),
            Err(IntError::Overflow)
        );
    }

    #[test]
    fn output_words_strip_level_digits() {
        let w = output_words(
            b"name2,PROGRESS,flist0,all3,none",
            "--info",
            INFO_WORDS,
            INFO_LEVELS,
        );
        let w = w.map_err(|_| ()).expect("valid words");
        assert_eq!(
            w,
            vec![
                ("NAME".to_string(), 2),
                ("PROGRESS".to_string(), 1),
                ("FLIST".to_string(), 0),
                ("ALL".to_string(), 3),
                ("ALL".to_string(), 0),
            ]
        );
    }
}
