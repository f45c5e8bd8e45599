//! The remote-shell command line, built as rsync's `do_cmd` builds it: the
//! `-e`/`RSYNC_RSH`/`ssh` command split into words, `-l USER`, the host,
//! `--rsync-path`, the server arguments and the remote paths escaped for the
//! remote shell (rsync's `safe_arg`).

use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};

/// Characters the remote shell would interpret in a file name (rsync's
/// `SHELL_CHARS`).
const SHELL_CHARS: &[u8] = b"!#$&;|<>(){}\"'` \t\\";
/// Wildcards: escaped in option values, left live in file names.
const WILD_CHARS: &[u8] = b"*?[]";

/// Why a remote-shell command is unusable (exit 1, rsync's message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RshError(pub String);

/// Split an `-e` value into words as rsync does: at spaces only; `'…'` and
/// `"…"` quote; inside quotes the quote character doubled is a literal one;
/// no backslash processing.
pub fn split_command(cmd: &[u8]) -> Result<Vec<Vec<u8>>, RshError> {
    let mut words = Vec::new();
    let mut i = 0;
    let mut in_quote: Option<u8> = None;
    while i < cmd.len() {
        if cmd[i] == b' ' {
            i += 1;
            continue;
        }
        let mut w = Vec::new();
        while i < cmd.len() && (cmd[i] != b' ' || in_quote.is_some()) {
            let c = cmd[i];
            if c == b'\'' || c == b'"' {
                match in_quote {
                    None => {
                        in_quote = Some(c);
                        i += 1;
                        continue;
                    }
                    Some(q) if q == c => {
                        if cmd.get(i + 1) == Some(&q) {
                            w.push(q);
                            i += 2;
                        } else {
                            in_quote = None;
                            i += 1;
                        }
                        continue;
                    }
                    Some(_) => {}
                }
            }
            w.push(c);
            i += 1;
        }
        words.push(w);
    }
    if let Some(q) = in_quote {
        return Err(RshError(format!(
            "Missing trailing-{} in remote-shell command.",
            q as char
        )));
    }
    Ok(words)
}

/// rsync's `safe_arg` for a file-name argument: backslash before each shell
/// character (wildcards stay live, a backslash before a wildcard is kept
/// as the escape it is), `./` before a leading `-`, and a leading `~`
/// escaped when `escape_tilde` (a pulled path without `/`, where rsync does).
pub fn escape_path(arg: &[u8], escape_tilde: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(arg.len() + 4);
    if arg.first() == Some(&b'-') {
        out.extend_from_slice(b"./");
    }
    if escape_tilde && arg.first() == Some(&b'~') {
        out.push(b'\\');
    }
    for (i, &c) in arg.iter().enumerate() {
        if c == b'\\' {
            let next = arg.get(i + 1).copied();
            if !next.is_some_and(|n| WILD_CHARS.contains(&n)) {
                out.push(b'\\');
            }
        } else if SHELL_CHARS.contains(&c) {
            out.push(b'\\');
        }
        out.push(c);
    }
    out
}

/// Everything needed to start the remote side.
/// rsync's `safe_arg` for an option value: every shell character and
/// wildcard backslash-escaped, so the remote shell passes the value through
/// as one word (filter rules such as `- *.o`).
pub fn escape_option(arg: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(arg.len() + 4);
    for &c in arg {
        if SHELL_CHARS.contains(&c) || WILD_CHARS.contains(&c) {
            out.push(b'\\');
        }
        out.push(c);
    }
    out
}

#[derive(Clone, Debug, Default)]
pub struct RshSpec {
    /// `-e`/`--rsh`, if given.
    pub rsh: Option<OsString>,
    /// `RSYNC_RSH` from the environment, if set.
    pub env_rsh: Option<OsString>,
    /// `--rsync-path`, if given (default `resync`).
    pub rsync_path: Option<OsString>,
    /// `-l` user from the operand.
    pub user: Option<Vec<u8>>,
    /// The host.
    pub host: Vec<u8>,
    /// Arguments after `--rsync-path`, before `.` (e.g. `--server`, `--sender`).
    pub server_args: Vec<Vec<u8>>,
    /// The remote paths (unescaped).
    pub paths: Vec<Vec<u8>>,
    /// Whether the client receives (a pull): leading `~` escaping applies.
    pub pull: bool,
    /// `-s`/`--secluded-args`: the command line is only `--server -s .`; the
    /// options and paths travel in the protocol ([`RshSpec::start_args`]),
    /// out of reach of the remote shell's word splitting and globbing.
    pub secluded: bool,
}

impl RshSpec {
    /// `-s`: what a secluded server reads in its `Start` message (the
    /// server arguments, `.`, the paths as given: no shell sees them).
    pub fn start_args(&self) -> Vec<Vec<u8>> {
        let mut a = self.server_args.clone();
        a.push(b".".to_vec());
        a.extend(self.paths.iter().cloned());
        a
    }
}

/// The program and arguments to spawn (program = first word).
pub fn command(spec: &RshSpec) -> Result<Vec<OsString>, RshError> {
    let cmd = spec
        .rsh
        .as_ref()
        .or(spec.env_rsh.as_ref())
        .map(|c| c.as_bytes().to_vec())
        .unwrap_or_else(|| b"ssh".to_vec());
    let mut args = split_command(&cmd)?;
    if args.is_empty() {
        args.push(b"ssh".to_vec());
    }
    // rsync adds `-l USER` even when the command has its own `-l` (the
    // later one wins in ssh); only a daemon-over-rsh connection checks for
    // one (`!(daemon_connection && dash_l_set)` in rsync's do_cmd).
    if let Some(u) = &spec.user {
        args.push(b"-l".to_vec());
        args.push(u.clone());
    }
    args.push(spec.host.clone());
    args.push(
        spec.rsync_path
            .as_ref()
            .map(|p| p.as_bytes().to_vec())
            .unwrap_or_else(|| b"resync".to_vec()),
    );
    if spec.secluded {
        args.push(b"--server".to_vec());
        args.push(b"-s".to_vec());
        args.push(b".".to_vec());
        return Ok(args.into_iter().map(OsString::from_vec).collect());
    }
    args.extend(spec.server_args.iter().cloned());
    args.push(b".".to_vec());
    for p in &spec.paths {
        let tilde = spec.pull && !p.contains(&b'/');
        args.push(escape_path(p, tilde));
    }
    Ok(args.into_iter().map(OsString::from_vec).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Result<Vec<String>, RshError> {
        split_command(s.as_bytes()).map(|v| {
            v.into_iter()
                .map(|w| String::from_utf8(w).unwrap())
                .collect()
        })
    }

    #[test]
    fn splitting_follows_rsync() {
        assert_eq!(words("ssh").unwrap(), ["ssh"]);
        assert_eq!(words("  ssh   -p 22 ").unwrap(), ["ssh", "-p", "22"]);
        assert_eq!(
            words(r#"./args.sh -p 22 "a b" c\\d"#).unwrap(),
            ["./args.sh", "-p", "22", "a b", r"c\\d"]
        );
        assert_eq!(
            words("ssh -o 'Opt=a b'x").unwrap(),
            ["ssh", "-o", "Opt=a bx"]
        );
        assert_eq!(
            words(r#"a "it""s" 'x''y'"#).unwrap(),
            ["a", r#"it"s"#, "x'y"]
        );
        assert_eq!(words(r#"a "x'y""#).unwrap(), ["a", "x'y"]);
        // Tabs are not separators in rsync's splitter.
        assert_eq!(words("a\tb").unwrap(), ["a\tb"]);
        assert_eq!(
            words("ssh 'oops"),
            Err(RshError(
                "Missing trailing-' in remote-shell command.".into()
            ))
        );
        assert_eq!(
            words("ssh \"oops"),
            Err(RshError(
                "Missing trailing-\" in remote-shell command.".into()
            ))
        );
    }

    #[test]
    fn path_escaping_follows_safe_arg() {
        let e = |s: &str, t| String::from_utf8(escape_path(s.as_bytes(), t)).unwrap();
        assert_eq!(e("d s t/", false), r"d\ s\ t/");
        assert_eq!(e("a$b*c", false), r"a\$b*c");
        assert_eq!(e("-dash", false), "./-dash");
        assert_eq!(e("~/x", false), "~/x");
        assert_eq!(e("~x", true), r"\~x");
        assert_eq!(e("it's", false), r"it\'s");
        assert_eq!(e(r"a\*b", false), r"a\*b");
        assert_eq!(e(r"a\b", false), r"a\\b");
        assert_eq!(e("x;rm -rf /", false), r"x\;rm\ -rf\ /");
    }

    fn cmd(spec: RshSpec) -> Vec<String> {
        command(&spec)
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    /// The argument vectors rsync 3.5 gives its `-e` program (observed with a
    /// script printing its arguments), with resync's server words.
    #[test]
    fn command_lines_match_rsync_shape() {
        let base = RshSpec {
            host: b"host".to_vec(),
            server_args: vec![b"--server".to_vec()],
            paths: vec![b"dst/".to_vec()],
            ..RshSpec::default()
        };
        assert_eq!(
            cmd(base.clone()),
            ["ssh", "host", "resync", "--server", ".", "dst/"]
        );
        // -s: the shell sees only `--server -s`; the rest is sent later.
        let mut sec = base.clone();
        sec.secluded = true;
        sec.paths = vec![b"a dir/*".to_vec()];
        assert_eq!(
            cmd(sec.clone()),
            ["ssh", "host", "resync", "--server", "-s", "."]
        );
        assert_eq!(
            sec.start_args(),
            [b"--server".to_vec(), b".".to_vec(), b"a dir/*".to_vec()]
        );
        let mut s = base.clone();
        s.user = Some(b"user".to_vec());
        assert_eq!(
            cmd(s.clone()),
            [
                "ssh", "-l", "user", "host", "resync", "--server", ".", "dst/"
            ]
        );
        // -l in -e too: rsync still adds the operand's user after it.
        s.rsh = Some("ssh -l other".into());
        assert_eq!(
            cmd(s.clone()),
            [
                "ssh", "-l", "other", "-l", "user", "host", "resync", "--server", ".", "dst/"
            ]
        );
        // -e wins over RSYNC_RSH, which wins over ssh.
        let mut s = base.clone();
        s.env_rsh = Some("rsh -x".into());
        assert_eq!(cmd(s.clone())[..2], ["rsh", "-x"]);
        s.rsh = Some("myssh".into());
        assert_eq!(cmd(s.clone())[0], "myssh");
        // --rsync-path stays one word; the remote shell splits it.
        let mut s = base.clone();
        s.rsync_path = Some("foo bar".into());
        s.paths = vec![b"d s t/".to_vec()];
        assert_eq!(
            cmd(s),
            ["ssh", "host", "foo bar", "--server", ".", r"d\ s\ t/"]
        );
        // Pull: --sender, several paths, tilde escaping.
        let mut s = base;
        s.server_args.push(b"--sender".to_vec());
        s.paths = vec![b"a b".to_vec(), b"~x".to_vec(), b"~/y".to_vec()];
        s.pull = true;
        assert_eq!(
            cmd(s),
            [
                "ssh", "host", "resync", "--server", "--sender", ".", r"a\ b", r"\~x", "~/y"
            ]
        );
    }
}
