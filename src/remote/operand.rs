//! Which operands name a remote side, exactly as rsync decides it
//! (`check_for_hostspec` / `parse_hostspec` and `start_client` in rsync's
//! main.c), so `resync` treats every command line as rsync would.

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// A parsed remote operand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Remote {
    /// User before the last `@`, if any.
    pub user: Option<Vec<u8>>,
    /// Host, IPv6 brackets removed (may be empty: rsync accepts `:path`).
    pub host: Vec<u8>,
    /// How the remote side is reached.
    pub kind: Kind,
    /// The path (for a daemon: `module/path`, possibly empty).
    pub path: Vec<u8>,
}

/// Remote shell or daemon.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// `host:path`: a remote shell running `resync --server`.
    Shell,
    /// `host::module/path`, or a URL without a port.
    Daemon,
    /// `rsync://host:PORT/…` or `resync://host:PORT/…` with an explicit port.
    DaemonPort(u16),
}

/// The two URL schemes: rsync's, and resync's own (TLS daemon).
const URL_PREFIXES: [&[u8]; 2] = [b"rsync://", b"resync://"];

/// rsync's `parse_hostspec`: `(host_with_user, rest)` where `rest` starts
/// at the `:` or `/` after the host; `None` when this is a local path.
/// `url` is set for the part after `rsync://`, where the end of string and a
/// `/` are allowed and a `:PORT` is parsed (returned as the third value).
/// `(host, user, rest, port)` found by [`parse_hostspec`].
type HostSpec<'a> = (Vec<u8>, Option<Vec<u8>>, &'a [u8], u32);

fn parse_hostspec(s: &[u8], url: bool) -> Option<HostSpec<'_>> {
    let mut host_start = 0usize;
    let mut hostlen: Option<usize> = None;
    let mut userlen = 0usize;
    let mut port = 0u32;
    let mut i = 0usize;
    loop {
        if i == s.len() {
            if !url {
                return None;
            }
            if hostlen.is_none() {
                hostlen = Some(i - host_start);
            }
            break;
        }
        let c = s[i];
        if c == b':' || c == b'/' {
            if hostlen.is_none() {
                hostlen = Some(i - host_start);
            }
            i += 1;
            if c == b'/' {
                if !url {
                    return None;
                }
                // rsync leaves the path after the slash.
            } else if url {
                let d = s[i..].iter().take_while(|b| b.is_ascii_digit()).count();
                // atoi: the digits' value (saturating, rsync would overflow).
                port = s[i..i + d].iter().fold(0u32, |p, &b| {
                    p.saturating_mul(10).saturating_add(u32::from(b - b'0'))
                });
                i += d;
                if i < s.len() {
                    if s[i] != b'/' {
                        return None;
                    }
                    i += 1;
                }
            }
            break;
        }
        if c == b'@' {
            userlen = i + 1;
            host_start = i + 1;
        } else if c == b'[' {
            if i != host_start {
                return None;
            }
            host_start += 1;
            while i < s.len() && s[i] != b']' && s[i] != b'/' {
                i += 1;
            }
            let len = i - host_start;
            hostlen = Some(len);
            let next = s.get(i + 1).copied();
            if s.get(i) != Some(&b']')
                || (next.is_some() && next != Some(b'/') && next != Some(b':'))
                || len == 0
            {
                return None;
            }
        }
        i += 1;
    }
    let hl = hostlen.unwrap_or(0);
    let host = s[host_start..host_start + hl].to_vec();
    let user = (userlen > 0).then(|| s[..userlen - 1].to_vec());
    // The path starts where the scan stopped; for non-URLs that is just after
    // the first ':' (the caller checks for a second one).
    Some((host, user, &s[i..], port))
}

/// rsync's `check_for_hostspec`: `Some` when `arg` names a remote side.
pub fn parse(arg: &OsStr) -> Option<Remote> {
    let s = arg.as_bytes();
    for prefix in URL_PREFIXES {
        if s.len() >= prefix.len() && s[..prefix.len()].eq_ignore_ascii_case(prefix) {
            if let Some((host, user, path, port)) = parse_hostspec(&s[prefix.len()..], true) {
                let kind = match port {
                    0 => Kind::Daemon,
                    p => Kind::DaemonPort(u16::try_from(p).unwrap_or(u16::MAX)),
                };
                return Some(Remote {
                    user,
                    host,
                    kind,
                    path: path.to_vec(),
                });
            }
        }
    }
    let (host, user, path, _) = parse_hostspec(s, false)?;
    // parse_hostspec stopped just after the ':'; a second ':' is a daemon.
    let (kind, path) = match path.first() {
        Some(b':') => (Kind::Daemon, &path[1..]),
        _ => (Kind::Shell, path),
    };
    Some(Remote {
        user,
        host,
        kind,
        path: path.to_vec(),
    })
}

/// Which way a transfer with remote operands goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// Everything is local.
    Local,
    /// Push: local sources, remote destination.
    Push {
        /// The destination's host.
        remote: Remote,
    },
    /// Pull: remote sources (paths on `remote.host`), local destination
    /// (`None`: list only).
    Pull {
        /// The first source's host; `paths` holds every source path.
        remote: Remote,
        /// All remote source paths, in order.
        paths: Vec<Vec<u8>>,
        /// The local destination.
        dest: Option<OsString>,
    },
}

/// An operand error, printed as rsync prints it; always exit 1.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperandError(pub String);

/// rsync's `start_client` operand rules: the first source decides whether
/// this is a pull; then the destination (or the last operand) a push.
pub fn classify(sources: &[OsString], dest: Option<&OsString>) -> Result<Transfer, OperandError> {
    let Some(first) = sources.first() else {
        return Ok(Transfer::Local);
    };
    if let Some(remote) = parse(first) {
        if let Some(d) = dest {
            // A destination starting with ':' means "no destination" to rsync
            // (argc = 0); anything remote is an error.
            if parse(d).is_some() && !d.as_bytes().starts_with(b":") {
                return Err(OperandError(
                    "The source and destination cannot both be remote.".into(),
                ));
            }
        }
        let mut paths = vec![remote.path.clone()];
        for s in &sources[1..] {
            let b = s.as_bytes();
            match parse(s) {
                Some(r)
                    if r.host == remote.host && r.kind == remote.kind && r.user == remote.user =>
                {
                    paths.push(r.path)
                }
                Some(r) if b.starts_with(b":") && r.host.is_empty() => paths.push(r.path),
                Some(_) => {
                    return Err(OperandError(
                        "All source args must come from the same machine.".into(),
                    ));
                }
                None => {
                    return Err(OperandError(format!(
                        "Unexpected local arg: {}\nIf arg is a remote file/dir, prefix it with a colon (:).",
                        s.to_string_lossy()
                    )));
                }
            }
        }
        if remote.kind == Kind::Shell {
            // An empty path is the remote home directory, ".".
            for p in &mut paths {
                if p.is_empty() {
                    *p = b".".to_vec();
                }
            }
        }
        return Ok(Transfer::Pull {
            remote,
            paths,
            dest: dest.filter(|d| !d.as_bytes().starts_with(b":")).cloned(),
        });
    }
    for s in &sources[1..] {
        if parse(s).is_some() {
            return Err(OperandError(format!(
                "Unexpected remote arg: {}",
                s.to_string_lossy()
            )));
        }
    }
    match dest.and_then(|d| parse(d)) {
        Some(mut remote) => {
            if remote.kind == Kind::Shell && remote.path.is_empty() {
                remote.path = b".".to_vec();
            }
            Ok(Transfer::Push { remote })
        }
        None => Ok(Transfer::Local),
    }
}

/// The host as it must go on the remote-shell command line.
pub fn host_arg(r: &Remote) -> OsString {
    OsString::from_vec(r.host.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    type Parsed = Option<(Option<String>, String, Kind, String)>;

    fn p(s: &str) -> Parsed {
        parse(OsStr::new(s)).map(|r| {
            (
                r.user.map(|u| String::from_utf8(u).unwrap()),
                String::from_utf8(r.host).unwrap(),
                r.kind,
                String::from_utf8(r.path).unwrap(),
            )
        })
    }

    /// rsync 3.5's decisions, checked by running it with a fake `-e` that
    /// prints its arguments (see the session notes in CHANGELOG).
    #[test]
    fn rsync_operand_table() {
        use Kind::*;
        let s = |x: &str| x.to_string();
        let cases: Vec<(&str, Parsed)> = vec![
            ("host:path", Some((None, s("host"), Shell, s("path")))),
            (
                "user@host:dst/",
                Some((Some(s("user")), s("host"), Shell, s("dst/"))),
            ),
            ("a@b@c:d", Some((Some(s("a@b")), s("c"), Shell, s("d")))),
            ("host:", Some((None, s("host"), Shell, s("")))),
            ("h:/abs", Some((None, s("h"), Shell, s("/abs")))),
            (":x", Some((None, s(""), Shell, s("x")))),
            ("host:a:b", Some((None, s("host"), Shell, s("a:b")))),
            ("[::1]:dst", Some((None, s("::1"), Shell, s("dst")))),
            (
                "user@[fe80::1]:dst",
                Some((Some(s("user")), s("fe80::1"), Shell, s("dst"))),
            ),
            ("[h]x:d", None),
            ("[]:d", None),
            ("x[h]:d", None),
            ("a/b:c", None),
            ("./host:x", None),
            ("/abs:x", None),
            ("plain", None),
            ("", None),
            ("host::mod/p", Some((None, s("host"), Daemon, s("mod/p")))),
            ("u@h::mod", Some((Some(s("u")), s("h"), Daemon, s("mod")))),
            ("host::", Some((None, s("host"), Daemon, s("")))),
            ("rsync://h/mod/p", Some((None, s("h"), Daemon, s("mod/p")))),
            ("RSYNC://h/mod", Some((None, s("h"), Daemon, s("mod")))),
            (
                "rsync://u@h/mod/p",
                Some((Some(s("u")), s("h"), Daemon, s("mod/p"))),
            ),
            (
                "rsync://h:99/mod/p",
                Some((None, s("h"), DaemonPort(99), s("mod/p"))),
            ),
            ("rsync://h:99", Some((None, s("h"), DaemonPort(99), s("")))),
            ("rsync://h", Some((None, s("h"), Daemon, s("")))),
            (
                "rsync://[::1]:8873/m",
                Some((None, s("::1"), DaemonPort(8873), s("m"))),
            ),
            // A non-numeric port is no URL: rsync falls back to host "rsync".
            (
                "rsync://h:x/m",
                Some((None, s("rsync"), Shell, s("//h:x/m"))),
            ),
            ("resync://h/mod/p", Some((None, s("h"), Daemon, s("mod/p")))),
            (
                "resync://u@h:8730/m",
                Some((Some(s("u")), s("h"), DaemonPort(8730), s("m"))),
            ),
        ];
        for (arg, want) in cases {
            assert_eq!(p(arg), want, "{arg}");
        }
    }

    fn os(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn push_pull_and_rsync_operand_errors() {
        let c =
            |srcs: &[&str], d: Option<&str>| classify(&os(srcs), d.map(OsString::from).as_ref());
        assert_eq!(c(&["src/"], Some("dst/")), Ok(Transfer::Local));
        assert_eq!(c(&["src/"], Some("a/b:c")), Ok(Transfer::Local));
        match c(&["src/"], Some("host:")).unwrap() {
            Transfer::Push { remote } => assert_eq!(remote.path, b"."),
            t => panic!("{t:?}"),
        }
        match c(&["host:a", ":b", "host:c"], Some("dst")).unwrap() {
            Transfer::Pull { paths, dest, .. } => {
                assert_eq!(paths, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
                assert_eq!(dest, Some(OsString::from("dst")));
            }
            t => panic!("{t:?}"),
        }
        match c(&["host:"], None).unwrap() {
            Transfer::Pull { paths, dest, .. } => {
                assert_eq!(paths, vec![b".".to_vec()]);
                assert_eq!(dest, None);
            }
            t => panic!("{t:?}"),
        }
        assert_eq!(
            c(&["host:a", "b"], Some("dst")),
            Err(OperandError(
                "Unexpected local arg: b\nIf arg is a remote file/dir, prefix it with a colon (:)."
                    .into()
            ))
        );
        assert_eq!(
            c(&["host:a", "other:b"], Some("dst")),
            Err(OperandError(
                "All source args must come from the same machine.".into()
            ))
        );
        assert_eq!(
            c(&["src", "host:a"], Some("host:b")),
            Err(OperandError("Unexpected remote arg: host:a".into()))
        );
        assert_eq!(
            c(&["host:a"], Some("other:b")),
            Err(OperandError(
                "The source and destination cannot both be remote.".into()
            ))
        );
    }
}
