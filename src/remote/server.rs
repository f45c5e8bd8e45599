//! `resync --server`: the remote end started by the client over a remote
//! shell, speaking the protocol on its stdin/stdout.

use super::conn::{FrameReader, FrameWriter, RecvError};
use super::handshake::{self, HandshakeError, Side};
use super::proto::Msg;
use crate::exit;
use crate::options::Options;
use crate::report;

/// The role name in messages, as rsync's `[server]`/`[sender]` tags.
fn role(opts: &Options) -> &'static str {
    if opts.sender { "sender" } else { "receiver" }
}

/// Run the server side of one connection on stdin/stdout; returns the exit code.
pub fn run(opts: &Options) -> i32 {
    let (i, o) = match crate::sys::stdio::stdin_stdout() {
        Ok(p) => p,
        Err(e) => {
            report::message(&format!("[server] cannot use stdin/stdout: {e}"));
            return exit::IPC;
        }
    };
    let mut r = FrameReader::new(i);
    let mut w = FrameWriter::new(o);
    serve(opts, &mut r, &mut w)
}

/// The server's conversation after the streams are set up: the handshake,
/// then (until the engine runs over the protocol) the client's `Goodbye`.
/// Anything that would start a transfer is refused with `Error(4)`.
pub fn serve(opts: &Options, r: &mut FrameReader, w: &mut FrameWriter) -> i32 {
    if let Err(e) = handshake::handshake(Side::Server, r, w, &handshake::our_hello(0)) {
        return fail_handshake(&e, role(opts));
    }
    session(opts, r, w)
}

/// The server side of a daemon connection, once the daemon has done the
/// handshake and checked access: `root` is the module's directory (`/`
/// after a chroot; the process is in it), every path in `opts` is relative
/// to it and has passed the daemon's jail, and `opts` carries the client's
/// options plus the module's filters and `incoming chmod`. The same seam as
/// [`serve`] after its handshake, so the transfer engine plugs in once for
/// both.
pub fn serve_session(
    opts: &Options,
    root: &std::path::Path,
    r: &mut FrameReader,
    w: &mut FrameWriter,
) -> i32 {
    let _ = root;
    session(opts, r, w)
}

/// After the handshake: until the engine runs over the protocol, wait for
/// the client's `Goodbye` and refuse anything else with `Error(4)`.
fn session(opts: &Options, r: &mut FrameReader, w: &mut FrameWriter) -> i32 {
    loop {
        match r.recv() {
            Ok(Msg::Keepalive) => continue,
            Ok(Msg::Goodbye { .. }) => {
                let _ = w.send(&Msg::Goodbye { code: 0 });
                let _ = w.flush();
                return exit::OK;
            }
            // The client has printed its own reason.
            Ok(Msg::Error { code, .. }) => return i32::from(code),
            Ok(m) => {
                let msg = format!(
                    "resync: [server] remote transfers are not supported yet (got message 0x{:02x})",
                    m.kind()
                );
                let _ = w.send(&Msg::Error {
                    code: exit::UNSUPPORTED as u8,
                    message: msg,
                });
                let _ = w.flush();
                return exit::UNSUPPORTED;
            }
            Err(RecvError::Eof { .. }) => {
                report::message(&format!(
                    "connection unexpectedly closed ({} bytes received so far) [{}]",
                    r.bytes_received(),
                    role(opts)
                ));
                report::exit_message(exit::STREAM_IO, role(opts));
                return exit::STREAM_IO;
            }
            Err(RecvError::Proto(p)) => {
                let msg = format!("protocol error: {p}");
                let _ = w.send(&Msg::Error {
                    code: exit::STREAM_IO as u8,
                    message: msg.clone(),
                });
                let _ = w.flush();
                report::message(&format!("{msg} [{}]", role(opts)));
                report::exit_message(exit::STREAM_IO, role(opts));
                return exit::STREAM_IO;
            }
            Err(RecvError::Io(e)) => {
                report::message(&format!("error in socket IO: {e} [{}]", role(opts)));
                report::exit_message(exit::SOCKET_IO, role(opts));
                return exit::SOCKET_IO;
            }
        }
    }
}

/// Print a failed handshake as rsync prints its compat errors, with the
/// closing `resync error:` line; returns the exit code.
pub(crate) fn fail_handshake(e: &HandshakeError, role: &str) -> i32 {
    match e {
        HandshakeError::NotResync | HandshakeError::Incompatible { .. } => {
            report::message_bare(&e.to_string())
        }
        _ => report::message(&format!("{e} [{role}]")),
    }
    report::exit_message(e.code(), role);
    e.code()
}
