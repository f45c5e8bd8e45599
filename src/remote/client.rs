//! The client side of a remote transfer: decide from the operands whether a
//! transfer is remote (rsync's rules, [`super::operand`]), start the remote
//! shell with `resync --server`, and run the handshake over its pipes.
//!
//! Until the engine runs over the protocol, a remote transfer stops right
//! after a successful handshake with "remote transfers are not supported yet"
//! (exit 4): nothing is listed, sent or written on either side.

use super::conn::{FrameReader, FrameWriter, RecvError};
use super::handshake::{self, Agreed, HandshakeError, Side};
use super::operand::{self, Kind, Transfer};
use super::proto::Msg;
use super::rsh::{self, RshSpec};
use crate::exit;
use crate::options::Options;
use crate::report;
use std::ffi::OsString;
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
    let mut server_args = vec![b"--server".to_vec()];
    if pull {
        server_args.push(b"--sender".to_vec());
    }
    let spec = RshSpec {
        rsh: opts.rsh.clone(),
        env_rsh: std::env::var_os("RSYNC_RSH"),
        rsync_path: opts.rsync_path.clone(),
        user: remote.user.clone(),
        host: remote.host.clone(),
        server_args,
        paths,
        pull,
    };
    Some(run_shell(&spec, role))
}

/// Spawn the remote shell and run the client conversation over its pipes.
fn run_shell(spec: &RshSpec, role: &str) -> i32 {
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
    let mut r = FrameReader::new(stdout);
    let mut w = FrameWriter::new(stdin);
    let code = converse(&mut r, &mut w, role);
    drop(w);
    drop(r);
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

/// What the conversation ended with: `Ok` with the handshake result, or the
/// exit code of a failure already reported.
enum Talk {
    Done(Agreed),
    Failed(i32),
    /// The stream closed early: the remote shell's own exit code decides.
    Closed(u64),
}

fn converse(r: &mut FrameReader, w: &mut FrameWriter, role: &str) -> Talk {
    let agreed = match handshake::handshake(Side::Client, r, w, &handshake::our_hello(0)) {
        Ok(a) => a,
        Err(HandshakeError::Closed(n)) => return Talk::Closed(n),
        Err(e) => return Talk::Failed(super::server::fail_handshake(&e, role)),
    };
    // Nothing is transferred yet: say goodbye and wait for the server's.
    let sent = w
        .send(&Msg::Goodbye {
            code: exit::UNSUPPORTED as u8,
        })
        .and_then(|_| w.flush());
    if let Err(e) = sent {
        report::message(&format!("error in socket IO: {e} [{role}]"));
        report::exit_message(exit::SOCKET_IO, role);
        return Talk::Failed(exit::SOCKET_IO);
    }
    loop {
        match r.recv() {
            Ok(Msg::Goodbye { .. }) => return Talk::Done(agreed),
            Ok(Msg::Keepalive) => continue,
            Ok(Msg::Error { code, message }) => {
                report::message_bare(&message);
                report::exit_message(i32::from(code), role);
                return Talk::Failed(i32::from(code));
            }
            Ok(Msg::Log { text, .. }) => report::message(&String::from_utf8_lossy(&text)),
            Ok(m) => {
                report::message(&format!(
                    "protocol error: unexpected message 0x{:02x} [{role}]",
                    m.kind()
                ));
                report::exit_message(exit::STREAM_IO, role);
                return Talk::Failed(exit::STREAM_IO);
            }
            Err(RecvError::Eof { .. }) => return Talk::Closed(r.bytes_received()),
            Err(RecvError::Proto(p)) => {
                report::message(&format!("protocol error: {p} [{role}]"));
                report::exit_message(exit::STREAM_IO, role);
                return Talk::Failed(exit::STREAM_IO);
            }
            Err(RecvError::Io(e)) => {
                report::message(&format!("error in socket IO: {e} [{role}]"));
                report::exit_message(exit::SOCKET_IO, role);
                return Talk::Failed(exit::SOCKET_IO);
            }
        }
    }
}

/// The exit code once the remote shell has exited.
fn finish(talk: Talk, status: std::io::Result<std::process::ExitStatus>, role: &str) -> i32 {
    match talk {
        Talk::Failed(c) => c,
        Talk::Done(a) => {
            report::message(&format!(
                "remote transfers are not supported yet (handshake with {} completed: \
                 protocol {}, compression {}; nothing was transferred)",
                a.peer_program,
                a.version,
                if a.compress_level != 0 { "zstd" } else { "off" }
            ));
            report::exit_message(exit::UNSUPPORTED, role);
            exit::UNSUPPORTED
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
