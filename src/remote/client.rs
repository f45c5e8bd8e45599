//! The client side of a remote transfer: decide from the operands whether a
//! transfer is remote (rsync's rules, [`super::operand`]), start the remote
//! shell with `resync --server`, and run the handshake over its pipes.
//!
//! After the handshake the client is the sender of a push or the receiver of
//! a pull ([`super::transfer`]).

use super::conn::{FrameReader, FrameWriter};
use super::handshake::{self, HandshakeError, Side};
use super::operand::{self, Kind, Transfer};
use super::proto::Msg;
use super::rsh::{self, RshSpec};
use crate::exit;
use crate::options::Options;
use crate::report;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::process::{Child, Command, Stdio};

/// If the operands name a remote side, handle the transfer and return its
/// exit code; `None` for a local transfer (the engine runs it).
pub fn route(opts: &Options) -> Option<i32> {
    let t = match operand::classify(&opts.sources, opts.dest.as_ref()) {
        Ok(t) => t,
        Err(e) => {
            // rsync names the side it would have been.
            let role = if opts
                .sources
                .first()
                .and_then(|s| operand::parse(s))
                .is_some()
            {
                "Receiver"
            } else {
                "sender"
            };
            report::message_bare(&e.0);
            report::exit_message(exit::SYNTAX, role);
            return Some(exit::SYNTAX);
        }
    };
    let (remote, paths, role, pull) = match t {
        Transfer::Local if opts.bwlimit > 0 => {
            // rsync paces its local pipe; resync's local copy has none yet.
            report::message("--bwlimit is not supported for local transfers yet");
            report::exit_message(exit::UNSUPPORTED, "client");
            return Some(exit::UNSUPPORTED);
        }
        Transfer::Local => return None,
        Transfer::Push { remote } => {
            let p = vec![remote.path.clone()];
            (remote, p, "sender", false)
        }
        Transfer::Pull { remote, paths, .. } => (remote, paths, "Receiver", true),
    };
    if remote.kind != Kind::Shell {
        return Some(super::daemon_client::run(opts, &remote, paths, role, pull));
    }
    if let Some(name) = super::args::unsupported(opts) {
        report::message(&format!("{name} is not supported for remote transfers yet"));
        report::exit_message(exit::UNSUPPORTED, role);
        return Some(exit::UNSUPPORTED);
    }
    // A local list is read by this side (for a pull, sent to the remote
    // sender): an unreadable one ends the run before connecting, as in rsync.
    let local_list = opts
        .files_from
        .as_deref()
        .filter(|f| super::args::remote_files_from(f.as_bytes()).is_none());
    if let Some(Err(c)) = local_list.map(|ff| crate::engine::check_files_from(ff, "client")) {
        return Some(c);
    }
    let server_args = match super::args::server_args(opts, pull) {
        Ok(a) => a,
        Err(msg) => {
            report::message(&msg);
            report::exit_message(exit::SYNTAX, "client");
            return Some(exit::SYNTAX);
        }
    };
    let spec = RshSpec {
        rsh: opts.rsh.clone(),
        env_rsh: std::env::var_os("RSYNC_RSH"),
        rsync_path: opts.rsync_path.clone(),
        user: remote.user.clone(),
        host: remote.host.clone(),
        server_args,
        paths,
        pull,
        secluded: opts.protect_args == Some(true),
    };
    Some(run_shell(opts, &spec, role))
}

/// Spawn the remote shell and run the client conversation over its pipes.
fn run_shell(opts: &Options, spec: &RshSpec, role: &'static str) -> i32 {
    let argv = match rsh::command(spec) {
        Ok(a) => a,
        Err(e) => {
            report::message_bare(&e.0);
            report::exit_message(exit::SYNTAX, role);
            return exit::SYNTAX;
        }
    };
    let mut child = match spawn(&argv) {
        Ok(c) => c,
        Err(e) => {
            // rsync's forked child reports the exec failure (code 14), then the
            // parent sees the pipe close (code 12, its exit code).
            report::message(&format!(
                "[{role}] Failed to exec {}: {}",
                argv[0].to_string_lossy(),
                crate::flist::errno_text(&e)
            ));
            report::exit_message(exit::IPC, role);
            report::message(&format!(
                "connection unexpectedly closed (0 bytes received so far) [{role}]"
            ));
            report::exit_message(exit::STREAM_IO, role);
            return exit::STREAM_IO;
        }
    };
    let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return exit::IPC;
    };
    let r = FrameReader::new(stdout);
    let w = FrameWriter::new(stdin);
    let start = spec.secluded.then(|| spec.start_args());
    let code = converse(opts, r, w, spec.pull, start, role);
    let status = child.wait();
    finish(code, status, role)
}

fn spawn(argv: &[OsString]) -> std::io::Result<Child> {
    Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
}

/// What the conversation ended with.
enum Talk {
    /// The transfer ran; its exit code (reported already).
    Done(i32),
    /// A failure already reported, with its exit code.
    Failed(i32),
    /// The stream closed early: the remote shell's own exit code decides.
    Closed(u64),
}

/// `secluded`: `-s`, the server's arguments, sent after the handshake.
fn converse(
    opts: &Options,
    mut r: FrameReader,
    mut w: FrameWriter,
    pull: bool,
    secluded: Option<Vec<Vec<u8>>>,
    role: &'static str,
) -> Talk {
    let start = std::time::Instant::now();
    let _watch = super::timeout::watch(opts.timeout, role, r.activity(), w.activity());
    let agreed = match handshake::handshake(Side::Client, &mut r, &mut w, &client_hello(opts)) {
        Ok(a) => a,
        Err(HandshakeError::Closed(n)) => return Talk::Closed(n),
        Err(e) => return Talk::Failed(super::server::fail_handshake(&e, role)),
    };
    if let Some(c) = refuse_missing_caps(opts, agreed.caps, &mut w, role) {
        return Talk::Failed(c);
    }
    if let Some(args) = secluded {
        if w.send(&Msg::Start { args })
            .and_then(|_| w.flush())
            .is_err()
        {
            // The server went away: reading tells how.
            return Talk::Closed(r.bytes_received());
        }
    }
    header(opts, pull);
    let code = if pull {
        super::transfer::pull(opts, r, w, role, start)
    } else {
        super::transfer::push(opts, r, w, role, start)
    };
    match code {
        super::transfer::End::Done(c) => Talk::Done(c),
        super::transfer::End::Closed(n) => Talk::Closed(n),
        super::transfer::End::Failed(c) => Talk::Failed(c),
    }
}

/// Stop (exit 4, the peer told to stop quietly) when an option needs wire
/// support the remote resync does not have.
pub(crate) fn refuse_missing_caps(
    opts: &Options,
    caps: u64,
    w: &mut FrameWriter,
    role: &str,
) -> Option<i32> {
    let name = super::args::missing_cap(opts, caps)?;
    report::message(&format!("the remote resync does not support {name}"));
    let _ = w.send(&Msg::Error {
        code: exit::UNSUPPORTED as u8,
        message: String::new(),
    });
    let _ = w.flush();
    report::exit_message(exit::UNSUPPORTED, role);
    Some(exit::UNSUPPORTED)
}

/// The client's `Hello`: the `-z` level, `cap::ADAPTIVE` only when asking
/// for adaptive compression (neither `-z`, `--compress-level` nor
/// `--no-compress` given), `cap::UTF8_NAMES` when its locale is UTF-8.
pub(crate) fn client_hello(opts: &Options) -> super::proto::Hello {
    let mut h = handshake::our_hello(compress_level(opts));
    if !(opts.compress || opts.compress_level.is_some() || opts.no_compress) {
        h.caps |= super::proto::cap::ADAPTIVE;
    }
    if crate::report::utf8_locale() {
        h.caps |= super::proto::cap::UTF8_NAMES;
    }
    h
}

/// `-z`'s zstd level for the client's `Hello` (0: off): `--compress-level`
/// clamped to zstd's range, else 1: zstd's fastest positive level keeps a
/// 1 Gbit/s link busy on two cores, where its default 3 is CPU-bound.
fn compress_level(opts: &Options) -> i8 {
    match (opts.compress, opts.compress_level) {
        (_, Some(l)) if l != 0 => l.clamp(-7, 22) as i8,
        (_, Some(_)) | (false, None) => 0,
        (true, None) => 1,
    }
}

/// rsync's client header with `-v` or `--progress`: `sending`/`receiving
/// incremental file list`, or the whole-list form when incremental recursion
/// is off.
pub(crate) fn header(opts: &Options, pull: bool) {
    if (opts.verbose == 0 && !opts.progress) || opts.quiet {
        return;
    }
    // With --progress the receiver's walk ends the line with the count.
    let line = match (pull, opts.inc_recurse(), opts.counts_list()) {
        (false, true, _) => "sending incremental file list\n",
        (false, false, false) => "building file list ... done\n",
        (false, false, true) => "building file list ... \n 0 files...\r",
        (true, true, _) => "receiving incremental file list\n",
        (true, false, false) => "receiving file list ... done\n",
        (true, false, true) => "receiving file list ... ",
    };
    use std::io::Write;
    let mut o = std::io::stdout().lock();
    let _ = o.write_all(line.as_bytes());
    let _ = o.flush();
}

/// The exit code once the remote shell has exited.
fn finish(talk: Talk, status: std::io::Result<std::process::ExitStatus>, role: &str) -> i32 {
    match talk {
        Talk::Failed(c) => c,
        Talk::Done(c) => {
            if c != 0 {
                report::exit_message(c, role);
            }
            c
        }
        Talk::Closed(n) => {
            report::message(&format!(
                "connection unexpectedly closed ({n} bytes received so far) [{role}]"
            ));
            // ssh exits 255 on its own failures; rsync passes that on.
            let code = match status.ok().and_then(|s| s.code()) {
                Some(255) => 255,
                _ => exit::STREAM_IO,
            };
            report::exit_message(code, role);
            code
        }
    }
}
