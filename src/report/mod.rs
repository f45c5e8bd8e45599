//! rsync's exact output formats, kept in one place: itemize strings, `-v` names,
//! `--list-only` lines, `--stats`, number formatting, escaping of odd names, and the
//! `rsync: ...` / `rsync error: ...` message shapes (with our program name).

mod format;
mod itemize;
mod printer;
mod progress;
mod stats;

pub use format::{LineCtx, format_line};
pub use itemize::{ItemFlags, itemize_string};
pub use printer::{Notes, Printer};
pub use progress::{Screen, ScreenWriter, Shown};
pub use stats::{Stats, TypeCounts, stats_lines, summary_lines};

use crate::flist::{Entry, Kind};
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

/// Program name printed in messages, in place of rsync's.
pub const PROGRAM: &str = "resync";

/// Version printed in `[sender=…]` suffixes.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

static OUT: Mutex<()> = Mutex::new(());

/// Takes an error line (without newline) to the client; false when it could
/// not, and the line goes to stderr after all.
pub type Relay = Box<dyn Fn(&str) -> bool + Send + Sync>;

/// Where error lines go instead of stderr while a daemon serves a session:
/// the daemon's stderr is not its client's (over ssh it is), and rsync's
/// daemon sends its errors to the client too.
static RELAY: std::sync::RwLock<Option<Relay>> = std::sync::RwLock::new(None);

thread_local! {
    /// Set while this thread is in the relay, so a message printed from
    /// inside it goes to stderr instead of locking the link again.
    static RELAYING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Set for good by [`stop_relay`].
static RELAY_OFF: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Send error lines through `relay` from now on (`None`: back to stderr).
pub fn set_relay(relay: Option<Relay>) {
    *RELAY.write().unwrap_or_else(|e| e.into_inner()) = relay;
}

/// Error lines go to stderr from now on, without waiting for a relay that
/// may be stuck on a stalled connection (the timeout watchdog's last words).
pub fn stop_relay() {
    RELAY_OFF.store(true, std::sync::atomic::Ordering::SeqCst);
}

/// Write one error line: through the relay when one is set, else stderr.
fn error_line(line: &str) {
    if !RELAYING.get() && !RELAY_OFF.load(std::sync::atomic::Ordering::SeqCst) {
        if let Ok(g) = RELAY.try_read() {
            if let Some(r) = g.as_ref() {
                RELAYING.set(true);
                let sent = r(line);
                RELAYING.set(false);
                if sent {
                    return;
                }
            }
        }
    }
    let _g = OUT.lock();
    let mut e = std::io::stderr().lock();
    let _ = writeln!(e, "{line}");
}

/// Print an rsync-style error/warning line to stderr: `resync: MSG`.
pub fn message(msg: &str) {
    error_line(&format!("{PROGRAM}: {msg}"));
}

/// Print an error line to stderr exactly as given (rsync prints a few messages,
/// like `symlink has no referent`, without its program-name prefix).
pub fn message_bare(msg: &str) {
    error_line(msg);
}

/// Print an informational line to stdout without prefix (rsync's FINFO/FCLIENT).
pub fn message_stdout(msg: &str) {
    let _g = OUT.lock();
    let mut o = std::io::stdout().lock();
    let _ = writeln!(o, "{msg}");
}

/// The final `rsync error: ... (code N)` line rsync prints for a non-zero exit.
/// `role` is the rsync process that would report it (`client`, `sender`,
/// `Receiver`, `receiver`, `generator`): rsync prints it as `[role=VERSION]`.
pub fn exit_message(code: i32, role: &str) {
    error_line(&exit_line(code, role));
}

/// The text of [`exit_message`]'s line, for a daemon that sends it to its
/// client as rsync's daemon does (the client prints it as its last line).
pub fn exit_line(code: i32, role: &str) -> String {
    let what = match code {
        1 => "syntax or usage error",
        2 => "protocol incompatibility",
        3 => "errors selecting input/output files, dirs",
        4 => "requested action not supported",
        5 => "error starting client-server protocol",
        10 => "error in socket IO",
        11 => "error in file IO",
        12 => "error in rsync protocol data stream",
        13 => "errors with program diagnostics",
        14 => "error in IPC code",
        20 => "received SIGUSR1",
        22 => "error allocating core memory buffers",
        23 => "some files/attrs were not transferred (see previous errors)",
        24 => "some files vanished before they could be transferred",
        25 => "the --max-delete limit stopped deletions",
        30 => "timeout in data send/receive",
        35 => "timeout waiting for daemon connection",
        _ => "unexplained error",
    };
    if code == 24 {
        format!("{PROGRAM} warning: {what} (code {code}) [{role}={VERSION}]")
    } else {
        format!("{PROGRAM} error: {what} (code {code}) [{role}={VERSION}]")
    }
}

/// The absolute form of a path for messages, as rsync prints them (cwd joined,
/// not normalised).
pub fn abs_display(p: &Path) -> String {
    let full = if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()
            .map(|c| c.join(p))
            .unwrap_or_else(|_| p.to_path_buf())
    };
    escape_bytes(full.as_os_str().as_encoded_bytes(), false)
}

/// Whether the process's `LC_CTYPE` is a UTF-8 locale (decides how high-bit bytes
/// in names are shown, as rsync's `isprint()` in the user's locale would).
pub fn utf8_locale() -> bool {
    use std::sync::atomic::Ordering;
    match UTF8.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let utf8 = ["LC_ALL", "LC_CTYPE", "LANG"]
                .iter()
                .find_map(|var| std::env::var(var).ok().filter(|v| !v.is_empty()))
                .map(|v| {
                    let v = v.to_ascii_lowercase();
                    v.contains("utf-8") || v.contains("utf8")
                })
                .unwrap_or(false);
            set_utf8_locale(utf8);
            utf8
        }
    }
}

/// 0: not looked up yet; 1: not UTF-8; 2: UTF-8.
static UTF8: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);

/// Escape names for a UTF-8 locale or not, whatever ours is: a server's
/// lines are printed in its client's locale.
pub fn set_utf8_locale(utf8: bool) {
    UTF8.store(1 + u8::from(utf8), std::sync::atomic::Ordering::Relaxed);
}

/// Escape a name as rsync's output does: unprintable bytes become `\#ooo`
/// (octal). High-bit bytes are kept when they form valid UTF-8 in a UTF-8 locale,
/// or always with `--8-bit-output`.
pub fn escape_bytes(b: &[u8], eight_bit: bool) -> String {
    let mut out = String::with_capacity(b.len());
    let utf8 = utf8_locale();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if c < 0x80 {
            // rsync leaves TAB as is and escapes the other control bytes.
            if (c < 0x20 && c != b'\t') || c == 0x7f {
                out.push_str(&format!("\\#{c:03o}"));
            } else if c == b'\\' && b.get(i + 1) == Some(&b'#') {
                out.push_str("\\#134");
            } else {
                out.push(c as char);
            }
            i += 1;
            continue;
        }
        if eight_bit || utf8 {
            // Take a whole UTF-8 sequence when valid.
            let len = match c {
                0xc2..=0xdf => 2,
                0xe0..=0xef => 3,
                0xf0..=0xf4 => 4,
                _ => 0,
            };
            if len > 0 && i + len <= b.len() {
                if let Ok(s) = std::str::from_utf8(&b[i..i + len]) {
                    if s.chars().all(|ch| !ch.is_control()) {
                        out.push_str(s);
                        i += len;
                        continue;
                    }
                }
            }
            if eight_bit {
                // rsync passes raw bytes through. A String cannot hold an
                // invalid byte, so it travels as a private-use char that
                // `raw_bytes` turns back into the byte when printed.
                out.push(char::from_u32(RAW_BYTE_BASE + c as u32).expect("valid char"));
                i += 1;
                continue;
            }
        }
        out.push_str(&format!("\\#{c:03o}"));
        i += 1;
    }
    out
}

/// Private-use code points standing for raw bytes in `--8-bit-output` names.
const RAW_BYTE_BASE: u32 = 0xF700;

/// A formatted line as bytes, with the raw-byte stand-ins of `escape_bytes`
/// turned back into the bytes they stand for.
pub fn raw_bytes(line: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(line.len());
    for ch in line.chars() {
        let c = ch as u32;
        if (RAW_BYTE_BASE + 0x80..=RAW_BYTE_BASE + 0xff).contains(&c) {
            out.push((c - RAW_BYTE_BASE) as u8);
        } else {
            let mut b = [0u8; 4];
            out.extend_from_slice(ch.encode_utf8(&mut b).as_bytes());
        }
    }
    out
}

/// Escape a path for output.
pub fn escape_name(p: &Path, eight_bit: bool) -> String {
    escape_bytes(p.as_os_str().as_encoded_bytes(), eight_bit)
}

/// The name as `-v` prints it: directories get a trailing `/`.
pub fn display_name(e: &Entry, eight_bit: bool) -> String {
    let mut s = escape_name(e.name(), eight_bit);
    if e.meta.kind == Kind::Dir && !s.ends_with('/') {
        s.push('/');
    }
    s
}

/// rsync's `do_big_num`: commas at level 1, K/M/G units (1000 or 1024) at 2/3.
pub fn big_num(n: i64, human: u8) -> String {
    if human > 1 {
        let mult = if human == 2 { 1000.0 } else { 1024.0 };
        if (n as f64).abs() >= mult {
            let units = [' ', 'K', 'M', 'G', 'T', 'P', 'E'];
            let mut d = n as f64 / mult;
            let mut powi = 1;
            while d.abs() >= mult && powi + 1 < units.len() {
                d /= mult;
                powi += 1;
            }
            return format!("{:.2}{}", d, units[powi]);
        }
    }
    if human == 0 {
        return n.to_string();
    }
    commas(&n.unsigned_abs().to_string(), n < 0)
}

/// rsync's `do_big_dnum` for rates like bytes/sec (two decimals).
pub fn big_dnum(d: f64, human: u8) -> String {
    if human > 1 {
        let mult = if human == 2 { 1000.0 } else { 1024.0 };
        if d.abs() >= mult {
            let units = [' ', 'K', 'M', 'G', 'T', 'P', 'E'];
            let mut x = d / mult;
            let mut powi = 1;
            while x.abs() >= mult && powi + 1 < units.len() {
                x /= mult;
                powi += 1;
            }
            return format!("{:.2}{}", x, units[powi]);
        }
    }
    let s = format!("{:.2}", d.abs());
    if human == 0 {
        return if d < 0.0 { format!("-{s}") } else { s };
    }
    let (int, frac) = s.split_once('.').unwrap_or((&s, "00"));
    format!("{}.{}", commas(int, d < 0.0), frac)
}

fn commas(digits: &str, neg: bool) -> String {
    let mut out = String::new();
    if neg {
        out.push('-');
    }
    let n = digits.len();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (n - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// `ls -l` style permission string as rsync's `permstring()` builds it.
pub fn perm_string(mode: u32) -> String {
    let t = match mode & libc::S_IFMT {
        libc::S_IFDIR => 'd',
        libc::S_IFLNK => 'l',
        libc::S_IFCHR => 'c',
        libc::S_IFBLK => 'b',
        libc::S_IFIFO => 'p',
        libc::S_IFSOCK => 's',
        _ => '-',
    };
    let mut s = String::with_capacity(10);
    s.push(t);
    let bit = |m: u32, c: char| if mode & m != 0 { c } else { '-' };
    s.push(bit(0o400, 'r'));
    s.push(bit(0o200, 'w'));
    s.push(match (mode & 0o100 != 0, mode & 0o4000 != 0) {
        (true, true) => 's',
        (false, true) => 'S',
        (true, false) => 'x',
        _ => '-',
    });
    s.push(bit(0o040, 'r'));
    s.push(bit(0o020, 'w'));
    s.push(match (mode & 0o010 != 0, mode & 0o2000 != 0) {
        (true, true) => 's',
        (false, true) => 'S',
        (true, false) => 'x',
        _ => '-',
    });
    s.push(bit(0o004, 'r'));
    s.push(bit(0o002, 'w'));
    s.push(match (mode & 0o001 != 0, mode & 0o1000 != 0) {
        (true, true) => 't',
        (false, true) => 'T',
        (true, false) => 'x',
        _ => '-',
    });
    s
}

/// Local time as `YYYY/MM/DD HH:MM:SS` (rsync's `timestring`).
pub fn time_string(secs: i64) -> String {
    let t = secs as libc::time_t;
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    // SAFETY: localtime_r writes into our tm and reads t; both are valid.
    let ok = unsafe { !libc::localtime_r(&t, &mut tm).is_null() };
    if !ok {
        return String::from("????/??/?? ??:??:??");
    }
    format!(
        "{:04}/{:02}/{:02} {:02}:{:02}:{:02}",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec
    )
}

/// One `--list-only` line.
/// Symlink targets are shown only with `links` (rsync does not send them
/// otherwise).
pub fn list_line(e: &Entry, human: u8, eight_bit: bool, links: bool) -> String {
    // rsync 3.5 lists devices and specials with size 0.
    let size = match e.meta.kind {
        Kind::Device | Kind::Special => big_num(0, human),
        _ => big_num(e.meta.size as i64, human),
    };
    let mut line = format!(
        "{} {:>14} {} {}",
        perm_string(e.meta.mode),
        size,
        time_string(e.meta.mtime),
        escape_name(e.name(), eight_bit)
    );
    if let Some(t) = e.link_target.as_ref().filter(|_| links) {
        line.push_str(" -> ");
        line.push_str(&escape_bytes(t.as_encoded_bytes(), eight_bit));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn big_num_matches_rsync() {
        assert_eq!(big_num(3_145_742, 1), "3,145,742");
        assert_eq!(big_num(3_145_742, 2), "3.15M");
        assert_eq!(big_num(14, 2), "14");
        assert_eq!(big_num(999, 1), "999");
        assert_eq!(big_num(1000, 1), "1,000");
        assert_eq!(big_num(1000, 0), "1000");
        assert_eq!(big_dnum(1334.0, 1), "1,334.00");
        assert_eq!(big_dnum(1960.0, 2), "1.96K");
    }

    #[test]
    fn perm_strings() {
        assert_eq!(perm_string(0o100644), "-rw-r--r--");
        assert_eq!(perm_string(0o40755), "drwxr-xr-x");
        assert_eq!(perm_string(0o106755), "-rwsr-sr-x");
        assert_eq!(perm_string(0o41777), "drwxrwxrwt");
        assert_eq!(perm_string(0o101644), "-rw-r--r-T");
    }

    #[test]
    fn escapes_newline() {
        assert_eq!(escape_bytes(b"new\nline", false), "new\\#012line");
    }
}
