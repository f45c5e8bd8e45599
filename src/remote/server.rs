//! `resync --server`: the remote end started by the client over a remote
//! shell, speaking the protocol on its stdin/stdout.

use super::conn::{FrameReader, FrameWriter};
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
    // A `--files-from=:PATH` is the server's to read (a pull's sender uses
    // it, a push's receiver sends it to the client's sender); rsync's server
    // opens it before the protocol starts, so a missing one ends the
    // connection there (the client reports the closed stream, exit 12).
    if let Some(Err(c)) = opts
        .files_from
        .as_deref()
        .map(|ff| crate::engine::check_files_from(ff, "server"))
    {
        return c;
    }
    // Stray stdout lines must not land in the frames.
    let _ = crate::sys::stdio::stdout_to_stderr();
    let r = FrameReader::new(i);
    let w = FrameWriter::new(o);
    serve(opts, r, w)
}

/// The server's conversation after the streams are set up: the handshake,
/// then the sending side of a pull (`--sender`) or the receiving side of a
/// push. Usable over any byte stream (a remote shell's pipes, a daemon's
/// connection).
pub fn serve(opts: &Options, mut r: FrameReader, mut w: FrameWriter) -> i32 {
    let _watch = super::timeout::watch(opts.timeout, role(opts), r.activity(), w.activity());
    let agreed =
        match handshake::handshake(Side::Server, &mut r, &mut w, &handshake::server_hello()) {
            Ok(a) => a,
            Err(e) => return fail_handshake(&e, role(opts)),
        };
    let _ = agreed;
    if !secluded(opts) {
        return session(opts, r, w);
    }
    let opts = match read_start(&mut r, &mut w) {
        Ok(o) => o,
        Err(c) => return c,
    };
    // What `run` checks before the handshake for a plain command line.
    if let Some(Err(c)) = opts
        .files_from
        .as_deref()
        .map(|ff| crate::engine::check_files_from(ff, "server"))
    {
        return c;
    }
    session(&opts, r, w)
}

/// `resync --server -s .` (nothing else): the client sends the real
/// command line in a `Start` message after the handshake
/// (`-s`/`--secluded-args`).
fn secluded(opts: &Options) -> bool {
    opts.protect_args == Some(true) && opts.dest.is_none() && opts.sources == ["."]
}

/// `-s`: read the client's `Start` and parse it as the command line of
/// `resync --server`; a bad one is an error to the client (exit 1, as a bad
/// command line), a missing one a protocol error (exit 12).
fn read_start(r: &mut FrameReader, w: &mut FrameWriter) -> Result<Options, i32> {
    let refuse = |w: &mut FrameWriter, code: i32, message: String| {
        let _ = w.send(&Msg::Error {
            code: code as u8,
            message,
        });
        let _ = w.flush();
        code
    };
    let args = match r.recv() {
        Ok(Msg::Start { args }) => args,
        Ok(m) => {
            let msg = format!(
                "resync: [server] protocol error: expected Start, got message 0x{:02x}",
                m.kind()
            );
            return Err(refuse(w, exit::STREAM_IO, msg));
        }
        Err(_) => return Err(exit::STREAM_IO),
    };
    let start = super::daemon::split_start(&args).map_err(|e| {
        refuse(
            w,
            exit::STREAM_IO,
            format!("resync: [server] protocol error: {e}"),
        )
    })?;
    let mut argv = start.options;
    argv.push(".".into());
    // No shell expanded the paths' wildcards: the server does, as rsync's.
    for p in start.paths.iter().flat_map(|p| crate::sys::glob::expand(p)) {
        // A path that looks like an option stays a path (as the daemon's).
        let p = if p.starts_with(b"-") {
            [&b"./"[..], &p].concat()
        } else {
            p
        };
        argv.push(std::os::unix::ffi::OsStringExt::from_vec(p));
    }
    match crate::options::parse_quiet(&argv) {
        Ok(o) if o.server && !secluded(&o) => Ok(o),
        Ok(_) => Err(refuse(
            w,
            exit::SYNTAX,
            "resync: [server] Start is not a server command line".into(),
        )),
        Err(e) => Err(refuse(w, exit::SYNTAX, format!("resync: [server] {e}"))),
    }
}

/// The server side of a daemon connection, once the daemon has done the
/// handshake and checked access: `root` is the module's directory (`/`
/// after a chroot), the process's working directory is in it, every path in
/// `opts` is relative to it and has passed the daemon's jail, and `opts`
/// carries the client's options plus the module's filters and `incoming
/// chmod`. The same engine as [`serve`] after its handshake.
pub fn serve_session(
    opts: &Options,
    root: &std::path::Path,
    r: FrameReader,
    w: FrameWriter,
) -> i32 {
    let _ = root;
    let _watch = super::timeout::watch(opts.timeout, role(opts), r.activity(), w.activity());
    session(opts, r, w)
}

/// After the handshake: send (a pull) or receive (a push) the paths of a
/// `--server [--sender] OPTIONS . PATH...` command line.
fn session(opts: &Options, r: FrameReader, mut w: FrameWriter) -> i32 {
    // `--server [--sender] OPTIONS . PATH...`: the paths follow the `.`.
    let mut paths: Vec<std::ffi::OsString> = opts.sources.clone();
    paths.extend(opts.dest.clone());
    if paths.first().is_some_and(|p| p == ".") {
        paths.remove(0);
    }
    let mut o = opts.clone();
    if opts.sender {
        o.sources = paths;
        o.dest = None;
        super::transfer::serve_sender(&o, r, w, role(opts))
    } else {
        if paths.len() != 1 {
            let msg =
                "resync: [receiver] the server needs exactly one destination path".to_string();
            let _ = w.send(&Msg::Error {
                code: exit::SYNTAX as u8,
                message: msg,
            });
            let _ = w.flush();
            return exit::SYNTAX;
        }
        o.sources = Vec::new();
        o.dest = paths.pop();
        super::transfer::serve_receiver(&o, r, w, role(opts))
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
