//! The daemon's access rules, kept apart from its I/O so each can be tested
//! alone: `hosts allow`/`hosts deny`, the secrets file, the auth response,
//! the path jail, `refuse options`, and daemon-side filters.

use super::config::{self, Config, Module, Value};
use super::proto::AUTH_LEN;
use crate::filter::FilterArg;
use crate::filter::wildmatch::wildmatch;
use std::ffi::OsString;
use std::net::IpAddr;
use std::os::fd::BorrowedFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// rsync's `allow_access`: a match in `hosts allow` always allows; with an
/// allow list and no deny list, anything else is denied; a match in
/// `hosts deny` denies; everything else is allowed.
pub fn allowed(allow: Option<&str>, deny: Option<&str>, ip: IpAddr, host: &str) -> bool {
    let allow = allow.filter(|a| !a.trim().is_empty());
    let deny = deny.filter(|a| !a.trim().is_empty());
    if let Some(a) = allow {
        if list_matches(a, ip, host) {
            return true;
        }
        if deny.is_none() {
            return false;
        }
    }
    if let Some(d) = deny {
        if list_matches(d, ip, host) {
            return false;
        }
    }
    true
}

fn list_matches(list: &str, ip: IpAddr, host: &str) -> bool {
    config::words(list)
        .iter()
        .any(|p| entry_matches(p, ip, host))
}

/// One `hosts allow` entry: an address, `addr/bits`, `addr/mask`, or a
/// host-name pattern (wildcards, compared without case to the reverse name).
fn entry_matches(pat: &str, ip: IpAddr, host: &str) -> bool {
    if let Some((a, m)) = pat.split_once('/') {
        let Ok(net) = a.parse::<IpAddr>() else {
            return false;
        };
        let bits = match m.parse::<u32>() {
            Ok(b) => b,
            Err(_) => match m.parse::<IpAddr>() {
                Ok(mask) => mask_bits(mask),
                Err(_) => return false,
            },
        };
        return in_net(ip, net, bits);
    }
    if let Ok(a) = pat.parse::<IpAddr>() {
        return a == ip;
    }
    wildmatch(
        pat.to_ascii_lowercase().as_bytes(),
        host.to_ascii_lowercase().as_bytes(),
    )
}

fn mask_bits(mask: IpAddr) -> u32 {
    match mask {
        IpAddr::V4(m) => u32::from(m).leading_ones(),
        IpAddr::V6(m) => u128::from(m).leading_ones(),
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u32) -> bool {
    match (ip, net) {
        (IpAddr::V4(i), IpAddr::V4(n)) if bits <= 32 => {
            let m = if bits == 0 {
                0
            } else {
                u32::MAX << (32 - bits)
            };
            u32::from(i) & m == u32::from(n) & m
        }
        (IpAddr::V6(i), IpAddr::V6(n)) if bits <= 128 => {
            let m = if bits == 0 {
                0
            } else {
                u128::MAX << (128 - bits)
            };
            u128::from(i) & m == u128::from(n) & m
        }
        _ => false,
    }
}

/// What an `auth users` rule says about a user (rsync 3.2's
/// `NAME[:deny|:ro|:rw]`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthRule {
    /// A plain name: the module's `read only` applies.
    Default,
    /// `:deny`: refused even with the right password.
    Deny,
    /// `:ro`: read only for this user.
    ReadOnly,
    /// `:rw`: writable for this user.
    ReadWrite,
}

/// The first `auth users` rule whose name pattern matches `user`; `None`
/// when none does. `@group` rules are not supported and never match.
pub fn auth_rule(users: &str, user: &str) -> Option<AuthRule> {
    for w in config::words(users) {
        let (name, suffix) = match w.rsplit_once(':') {
            Some((n, s)) => (n, Some(s)),
            None => (w, None),
        };
        if name.starts_with('@') || !wildmatch(name.as_bytes(), user.as_bytes()) {
            continue;
        }
        return Some(match suffix.map(str::to_ascii_lowercase).as_deref() {
            Some("deny") => AuthRule::Deny,
            Some("ro") => AuthRule::ReadOnly,
            Some("rw") => AuthRule::ReadWrite,
            _ => AuthRule::Default,
        });
    }
    None
}

/// The password of `user` in a secrets file (`user:password` lines, `#`
/// comments). With `strict`, the file must not be other-accessible and,
/// when the daemon runs as root, must be owned by root (rsync's checks).
pub fn secret_for(path: &Path, user: &str, strict: bool) -> Result<Option<String>, String> {
    let f = std::fs::File::open(path).map_err(|e| {
        format!(
            "cannot open secrets file {}: {}",
            path.display(),
            crate::flist::errno_text(&e)
        )
    })?;
    let md = f.metadata().map_err(|e| e.to_string())?;
    if strict {
        if md.mode() & 0o007 != 0 {
            return Err(
                "secrets file must not be other-accessible (see strict modes option)".into(),
            );
        }
        if crate::sys::daemon::is_root() && md.uid() != 0 {
            return Err("secrets file must be owned by root when running as root".into());
        }
    }
    let text = std::io::read_to_string(f).map_err(|e| e.to_string())?;
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        if let Some((u, p)) = line.split_once(':') {
            if u == user {
                return Ok(Some(p.to_string()));
            }
        }
    }
    Ok(None)
}

/// The auth response (docs/PROTOCOL.md, "Daemon authentication"):
/// BLAKE3 keyed with `derive_key("resync daemon auth v1", password)` over
/// `challenge ‖ tls_exporter ‖ module ‖ 0 ‖ user`. The TLS exporter binds
/// the answer to this TLS session, so a daemon that is not the one asked
/// cannot relay it elsewhere.
pub fn auth_response(
    password: &str,
    challenge: &[u8; AUTH_LEN],
    exporter: &[u8; AUTH_LEN],
    module: &str,
    user: &str,
) -> [u8; AUTH_LEN] {
    let key = blake3::derive_key("resync daemon auth v1", password.as_bytes());
    let mut h = blake3::Hasher::new_keyed(&key);
    h.update(challenge);
    h.update(exporter);
    h.update(module.as_bytes());
    h.update(&[0]);
    h.update(user.as_bytes());
    *h.finalize().as_bytes()
}

/// A requested path inside a module: relative, no `..` component, no NUL.
/// rsync's daemon rewrites such paths (`sanitize_path`); resync refuses
/// them, so nothing outside the module is ever named.
pub fn check_rel(p: &[u8]) -> Result<(), String> {
    let show = String::from_utf8_lossy(p);
    if p.starts_with(b"/") {
        return Err(format!("absolute path refused in a module: {show}"));
    }
    if p.contains(&0) {
        return Err("NUL in path".into());
    }
    if p.split(|&b| b == b'/').any(|c| c == b"..") {
        return Err(format!("path outside the module refused: {show}"));
    }
    Ok(())
}

/// Whether `rel`, taken relative to the module path `base` (itself
/// relative), stays inside the module when `..` components are applied
/// lexically: `stays_inside(b"d", b"../prev")` yes, `(b"d", b"../../x")`
/// no; absolute paths and NULs never do. (Symlinks on the way are the
/// engine's to resolve beneath the root.)
pub fn stays_inside(base: &[u8], rel: &[u8]) -> bool {
    if rel.starts_with(b"/") || rel.contains(&0) || base.starts_with(b"/") {
        return false;
    }
    let mut depth: usize = 0;
    for c in base.split(|&b| b == b'/').chain(rel.split(|&b| b == b'/')) {
        match c {
            b"" | b"." => {}
            b".." => match depth.checked_sub(1) {
                Some(d) => depth = d,
                None => return false,
            },
            _ => depth += 1,
        }
    }
    true
}

/// The longest existing prefix of `rel` must resolve beneath the module
/// root (`openat2(RESOLVE_BENEATH)`), so a symlink leading out of the
/// module is refused before the transfer starts. A missing tail is fine
/// (a push creates it).
pub fn jail_check(root: BorrowedFd<'_>, rel: &[u8]) -> Result<(), String> {
    use std::os::unix::ffi::OsStrExt;
    let comps: Vec<&[u8]> = rel
        .split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect();
    let mut prefix = Vec::new();
    for c in comps {
        if !prefix.is_empty() {
            prefix.push(b'/');
        }
        prefix.extend_from_slice(c);
        match crate::sys::daemon::open_beneath(
            root,
            Path::new(std::ffi::OsStr::from_bytes(&prefix)),
        ) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EXDEV) => {
                return Err(format!(
                    "path leads outside the module: {}",
                    String::from_utf8_lossy(&prefix)
                ));
            }
            Err(e) => {
                return Err(format!(
                    "{}: {}",
                    String::from_utf8_lossy(&prefix),
                    crate::flist::errno_text(&e)
                ));
            }
        }
    }
    Ok(())
}

/// Options a wildcard in `refuse options` never matches (rsync: they
/// must be named exactly).
const VITAL: &[&str] = &["server", "sender", "dry-run", "no-iconv", "secluded-args"];

/// Whether `refuse options` refuses the option with these names (long names
/// without dashes, and the short letter): terms apply in order, a later one
/// overriding an earlier one, `!term` accepts (rsync 3.2+).
fn is_refused(pats: &[&str], names: &[&str]) -> bool {
    let mut refused = false;
    for p in pats {
        let (neg, p) = match p.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, *p),
        };
        let wild = p.contains(['*', '?', '[']);
        let hit = names.iter().any(|n| {
            if wild && VITAL.contains(n) {
                return false;
            }
            wildmatch(p.as_bytes(), n.as_bytes())
        });
        if hit {
            refused = !neg;
        }
    }
    refused
}

/// The names an option goes by: every spelling in its table row (without
/// dashes) plus, for a `--delete-*` option, `delete` (they imply it).
fn option_names(typed: &str) -> Vec<String> {
    let row = crate::options::table::TABLE
        .iter()
        .find(|o| o.names.iter().any(|n| n.trim_start_matches('-') == typed));
    let mut v: Vec<String> = match row {
        Some(o) => o
            .names
            .iter()
            .map(|n| n.trim_start_matches('-').to_string())
            .collect(),
        None => vec![typed.to_string()],
    };
    if typed.starts_with("del") {
        v.push("delete".into());
    }
    v
}

/// rsync's `refuse options`: the first client option refused by the
/// patterns (long names without dashes or one-letter names, wildcards,
/// `!` negations), as rsync names it in its message (`--NAME`, and
/// `--NAME (-X)` for an option with a letter).
pub fn refused_option(patterns: &str, args: &[OsString]) -> Option<String> {
    let pats = config::words(patterns);
    let check = |typed: &str| {
        let names = option_names(typed);
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        is_refused(&pats, &refs)
    };
    // rsync names a refused option `--long (-x)` when it has a letter.
    let shown = |long: &str| {
        let names = option_names(long);
        match names.iter().find(|n| n.len() == 1) {
            Some(c) => format!("--{long} (-{c})"),
            None => format!("--{long}"),
        }
    };
    for a in args {
        let a = a.to_string_lossy();
        if let Some(long) = a.strip_prefix("--") {
            let name = long.split('=').next().unwrap_or("");
            if check(name) {
                return Some(shown(name));
            }
        } else if let Some(shorts) = a.strip_prefix('-') {
            for c in shorts.chars() {
                if check(&c.to_string()) {
                    return Some(
                        match option_names(&c.to_string()).iter().find(|n| n.len() > 1) {
                            Some(long) => shown(long),
                            None => format!("-{c}"),
                        },
                    );
                }
            }
        }
    }
    None
}

/// The module's `filter`, `include from`, `include`, `exclude from` and
/// `exclude` as filter arguments (rsync's daemon filter order); the `from`
/// files are read now, before a chroot hides them.
pub fn module_filters(cfg: &Config, m: &Module) -> Result<Vec<FilterArg>, String> {
    let get = |name: &str| match cfg.module_value(m, name, &config::env_var) {
        Ok(Some(Value::Str(s))) if !s.is_empty() => Some(s),
        _ => None,
    };
    let mut out = Vec::new();
    if let Some(f) = get("filter") {
        for rule in split_rules(&f) {
            out.push(FilterArg::Rule(rule.into()));
        }
    }
    let read = |p: &str| {
        std::fs::read_to_string(p)
            .map_err(|e| format!("cannot read {p}: {}", crate::flist::errno_text(&e)))
    };
    if let Some(p) = get("include from") {
        for l in read(&p)?
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with(['#', ';']))
        {
            out.push(FilterArg::Include(l.into()));
        }
    }
    if let Some(i) = get("include") {
        for w in config::words(&i) {
            out.push(FilterArg::Include(w.into()));
        }
    }
    if let Some(p) = get("exclude from") {
        for l in read(&p)?
            .lines()
            .filter(|l| !l.is_empty() && !l.starts_with(['#', ';']))
        {
            out.push(FilterArg::Exclude(l.into()));
        }
    }
    if let Some(e) = get("exclude") {
        for w in config::words(&e) {
            out.push(FilterArg::Exclude(w.into()));
        }
    }
    Ok(out)
}

/// Split a `filter` parameter into rules at blanks: a lone rule prefix
/// (`-`, `+`, `P`, `merge` …) takes the next word as its pattern.
fn split_rules(s: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut words = s.split_whitespace();
    while let Some(w) = words.next() {
        let is_prefix = w.len() <= 2 && !w.contains('/')
            || matches!(
                w.split(',').next(),
                Some(
                    "include"
                        | "exclude"
                        | "protect"
                        | "risk"
                        | "hide"
                        | "show"
                        | "merge"
                        | "dir-merge"
                        | "clear"
                )
            );
        if is_prefix && w != "!" {
            match words.next() {
                Some(p) => out.push(format!("{w} {p}")),
                None => out.push(w.to_string()),
            }
        } else {
            out.push(w.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn hosts_allow_and_deny_follow_rsync() {
        let l = ip("127.0.0.1");
        assert!(allowed(None, None, l, "localhost"));
        assert!(allowed(Some("127.0.0.1"), None, l, "x"));
        assert!(!allowed(Some("10.0.0.0/8"), None, l, "x"));
        assert!(allowed(Some("127.0.0.0/8"), None, l, "x"));
        assert!(allowed(Some("127.0.0.0/255.0.0.0"), None, l, "x"));
        assert!(!allowed(None, Some("127.0.0.1"), l, "x"));
        assert!(!allowed(None, Some("*.example.com"), l, "a.EXAMPLE.com"));
        assert!(allowed(None, Some("*.example.com"), l, "localhost"));
        // An allow match wins over a deny match.
        assert!(allowed(Some("localhost"), Some("*"), l, "localhost"));
        // With both lists, a host in neither is allowed.
        assert!(allowed(Some("10.1.1.1"), Some("10.2.2.2"), l, "x"));
        assert!(allowed(Some("::1/128"), None, ip("::1"), "x"));
        assert!(!allowed(Some("::1/128"), None, l, "x"));
    }

    #[test]
    fn auth_users_rules_first_match_wins() {
        let u = "bob:deny admin:rw guest*:ro alice @staff:rw";
        assert_eq!(auth_rule(u, "bob"), Some(AuthRule::Deny));
        assert_eq!(auth_rule(u, "admin"), Some(AuthRule::ReadWrite));
        assert_eq!(auth_rule(u, "guest7"), Some(AuthRule::ReadOnly));
        assert_eq!(auth_rule(u, "alice"), Some(AuthRule::Default));
        assert_eq!(auth_rule(u, "carol"), None);
        assert_eq!(auth_rule("*:deny alice", "alice"), Some(AuthRule::Deny));
    }

    #[test]
    fn stays_inside_applies_dotdot_lexically() {
        assert!(stays_inside(b"d", b"../prev"));
        assert!(stays_inside(b"a/b", b"../../x"));
        assert!(!stays_inside(b"d", b"../../x"));
        assert!(!stays_inside(b"", b".."));
        assert!(!stays_inside(b"d", b"/etc"));
        assert!(stays_inside(b"", b"x/./y/.."));
        assert!(!stays_inside(b"d/..", b".."));
    }

    #[test]
    fn relative_paths_only() {
        assert!(check_rel(b"").is_ok());
        assert!(check_rel(b"a/b/c").is_ok());
        assert!(check_rel(b"a/..b").is_ok());
        assert!(check_rel(b"/etc").is_err());
        assert!(check_rel(b"a/../../etc").is_err());
        assert!(check_rel(b"..").is_err());
    }

    #[test]
    fn auth_response_depends_on_every_input() {
        let c = [1u8; AUTH_LEN];
        let x = [2u8; AUTH_LEN];
        let base = auth_response("pw", &c, &x, "mod", "alice");
        assert_eq!(base, auth_response("pw", &c, &x, "mod", "alice"));
        assert_ne!(base, auth_response("pw2", &c, &x, "mod", "alice"));
        assert_ne!(
            base,
            auth_response("pw", &[3; AUTH_LEN], &x, "mod", "alice")
        );
        assert_ne!(
            base,
            auth_response("pw", &c, &[3; AUTH_LEN], "mod", "alice")
        );
        assert_ne!(base, auth_response("pw", &c, &x, "mo", "dalice"));
        assert_ne!(base, auth_response("pw", &c, &x, "mod", "bob"));
    }

    #[test]
    fn refuse_options_by_long_and_short_name() {
        let a = |v: &[&str]| v.iter().map(OsString::from).collect::<Vec<_>>();
        assert_eq!(
            refused_option("delete", &a(&["--server", "-r", "--delete-after"])),
            Some("--delete-after".into())
        );
        assert_eq!(
            refused_option("checksum", &a(&["--server", "-rc"])),
            Some("--checksum (-c)".into())
        );
        assert_eq!(refused_option("checksum", &a(&["--server", "-r"])), None);
        assert_eq!(
            refused_option("comp*", &a(&["--compress-level=3"])),
            Some("--compress-level".into())
        );
        // Later terms override earlier ones; wildcards skip vital options.
        assert_eq!(
            refused_option(
                "delete-* !delete-during",
                &a(&["--server", "--delete-during"])
            ),
            None
        );
        assert_eq!(
            refused_option("* !r", &a(&["--server", "--sender", "-r"])),
            None
        );
        assert_eq!(
            refused_option("* !r", &a(&["--server", "-rt"])),
            Some("--times (-t)".into())
        );
        assert_eq!(
            refused_option("c", &a(&["--server", "--checksum"])),
            Some("--checksum (-c)".into())
        );
    }

    #[test]
    fn filter_parameter_splits_into_rules() {
        assert_eq!(
            split_rules("- *.tmp + keep/ -! x"),
            vec!["- *.tmp", "+ keep/", "-! x"]
        );
        assert_eq!(split_rules("exclude foo"), vec!["exclude foo"]);
    }
}
