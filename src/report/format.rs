//! `--out-format` / `-i` / `-v` line formatting (rsync's `log_formatted`).

use super::{escape_name, itemize_string, perm_string};
use crate::flist::{Entry, Kind};
use crate::plan::{Action, Item};

/// Everything a format escape may refer to for one entry.
pub struct LineCtx<'a> {
    /// The file-list entry.
    pub entry: &'a Entry,
    /// Its plan item.
    pub item: &'a Item,
    /// `-t` in effect (`t` vs `T`).
    pub times: bool,
    /// `--8-bit-output`.
    pub eight_bit: bool,
    /// `-h` level for numbers.
    pub human: u8,
    /// The line reports a deletion (`%i` is `*deleting`, `%o` is `del.`).
    pub deleted: bool,
    /// Transfers show `<` (sent, a push) instead of `>` (received).
    pub sent: bool,
}

/// Expand `fmt` for one entry, as rsync's `log_formatted` does.
pub fn format_line(fmt: &str, c: &LineCtx) -> String {
    let e = c.entry;
    let mut out = String::new();
    let b = fmt.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'%' {
            let start = i;
            while i < b.len() && b[i] != b'%' {
                i += 1;
            }
            out.push_str(&fmt[start..i]);
            continue;
        }
        i += 1;
        // Flags and width: %'-10n etc.
        let mut left = false;
        let mut width = String::new();
        let mut human = false;
        while i < b.len() && (b[i] == b'-' || b[i] == b'\'' || b[i].is_ascii_digit()) {
            match b[i] {
                b'-' => left = true,
                b'\'' => human = true,
                d => width.push(d as char),
            }
            i += 1;
        }
        let Some(&code) = b.get(i) else {
            out.push('%');
            break;
        };
        i += 1;
        let num = |n: u64| {
            if human {
                super::big_num(n as i64, c.human.max(1))
            } else {
                n.to_string()
            }
        };
        let val: String = match code {
            b'%' => "%".into(),
            b'n' => {
                let mut s = escape_name(e.name(), c.eight_bit);
                if e.meta.kind == Kind::Dir && !s.ends_with('/') {
                    s.push('/');
                }
                s
            }
            b'f' if e.name().as_os_str() == "." => {
                let s = e.src().as_os_str().as_encoded_bytes();
                let mut end = s.len();
                while end > 1 && s[end - 1] == b'/' {
                    end -= 1;
                }
                let mut v = s[..end].to_vec();
                v.extend_from_slice(b"/.");
                super::escape_bytes(&v, c.eight_bit)
            }
            b'f' => {
                let s = e.src().as_os_str().as_encoded_bytes();
                let s = if s.ends_with(b"/") && s.len() > 1 {
                    &s[..s.len() - 1]
                } else {
                    s
                };
                super::escape_bytes(s, c.eight_bit)
            }
            b'L' if c.deleted => String::new(),
            b'L' => match (&e.link_target, &c.item.link) {
                (_, Some(l)) if c.item.action == Action::HardLink => {
                    format!(" => {}", escape_name(&l.name, c.eight_bit))
                }
                (Some(t), _) => format!(
                    " -> {}",
                    super::escape_bytes(t.as_encoded_bytes(), c.eight_bit)
                ),
                _ => String::new(),
            },
            b'i' if c.deleted => "*deleting  ".into(),
            b'i' => {
                let s = itemize_string(e.meta.kind, &c.item.flags, c.times);
                match s.strip_prefix('>') {
                    Some(rest) if c.sent => format!("<{rest}"),
                    _ => s,
                }
            }
            b'l' => num(e.meta.size),
            b'b' | b'c' => num(if c.item.flags.transfer {
                wire_bytes(e.meta.size)
            } else {
                0
            }),
            b'o' if c.deleted => "del.".into(),
            b'o' => "send".into(),
            b'B' => perm_string(e.meta.mode)[1..].to_string(),
            b'U' => e.meta.uid.to_string(),
            b'G' => e.meta.gid.to_string(),
            b'M' => {
                let t = super::time_string(e.meta.mtime);
                t.replace(' ', "-")
            }
            b't' => super::time_string(now_secs()),
            b'p' => std::process::id().to_string(),
            b'C' => String::new(),
            b'h' | b'a' | b'm' | b'P' | b'u' => String::new(),
            other => {
                let mut s = String::from("%");
                s.push(other as char);
                s
            }
        };
        match width.parse::<usize>() {
            Ok(w) if left => out.push_str(&format!("{val:<w$}")),
            Ok(w) => out.push_str(&format!("{val:>w$}")),
            Err(_) => out.push_str(&val),
        }
    }
    out
}

/// The bytes rsync's protocol would carry for a whole-file send of `size`
/// bytes (what its `%b` shows): 39 bytes of header and checksum, plus a
/// 4-byte token per 32 KiB chunk of data.
pub fn wire_bytes(size: u64) -> u64 {
    size + 39 + 4 * size.div_ceil(32 * 1024)
}

fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
