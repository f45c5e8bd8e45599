//! The handshake (`docs/PROTOCOL.md`, "Handshake"): both sides send magic +
//! `Hello` at once, read the peer's, agree on a version and capabilities, and
//! switch the zstd layer on when both want it.

use super::conn::{FrameReader, FrameWriter, RecvError};
use super::proto::{Hello, Msg, cap};
use super::zchunk::Mode;
use crate::exit;
use std::fmt;

/// Oldest protocol version this build speaks.
pub const MIN_VERSION: u16 = 1;
/// Newest protocol version this build speaks.
pub const MAX_VERSION: u16 = 1;
/// Capabilities this build supports.
pub const CAPS: u64 = cap::ZSTD
    | cap::DELTA_RSIG1
    | cap::XATTRS
    | cap::ACLS
    | cap::HARD_LINKS
    | cap::CHECKSUMS
    | cap::ATIMES
    | cap::SUCCESS
    | cap::MISSING_ARGS
    | cap::PROGRESS
    | cap::FILES_FROM
    | cap::XXH3_SUMS
    | cap::RELATIVE;

/// Which end of the connection we are; messages name it as rsync does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The process the user started.
    Client,
    /// `resync --server` (or a daemon connection).
    Server,
}

impl Side {
    /// "Client" / "Server", as rsync's compat messages spell them.
    pub fn name(self) -> &'static str {
        match self {
            Side::Client => "Client",
            Side::Server => "Server",
        }
    }
}

/// What both sides agreed on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Agreed {
    /// Protocol version in use.
    pub version: u16,
    /// Capabilities both support.
    pub caps: u64,
    /// zstd level in use (0 = off).
    pub compress_level: i8,
    /// Adaptive compression in use (`cap::ADAPTIVE` agreed, no level asked).
    pub adaptive: bool,
    /// The peer's program string, for messages.
    pub peer_program: String,
}

/// A failed handshake, with rsync's exit code for it.
#[derive(Debug)]
pub enum HandshakeError {
    /// The peer's stream did not start with the magic (a shell banner, not resync).
    NotResync,
    /// No common version.
    Incompatible {
        /// Our side.
        side: Side,
        /// Our range.
        ours: (u16, u16),
        /// The peer's range.
        theirs: (u16, u16),
    },
    /// The stream ended before the peer's `Hello`.
    Closed(u64),
    /// The peer sent something other than a valid `Hello`.
    Protocol(String),
    /// The transport failed.
    Io(std::io::Error),
}

impl HandshakeError {
    /// rsync's exit code for this failure.
    pub fn code(&self) -> i32 {
        match self {
            HandshakeError::NotResync | HandshakeError::Incompatible { .. } => exit::PROTOCOL,
            HandshakeError::Closed(_) | HandshakeError::Protocol(_) => exit::STREAM_IO,
            HandshakeError::Io(_) => exit::SOCKET_IO,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::NotResync => write!(
                f,
                "protocol version mismatch -- is your shell clean?\n\
                 (see the rsync manpage for an explanation)"
            ),
            HandshakeError::Incompatible { side, ours, theirs } => {
                let (c, s) = match side {
                    Side::Client => (ours, theirs),
                    Side::Server => (theirs, ours),
                };
                write!(
                    f,
                    "protocol version mismatch: the Client speaks protocol {} to {}, the Server {} to {}",
                    c.0, c.1, s.0, s.1
                )
            }
            HandshakeError::Closed(n) => {
                write!(
                    f,
                    "connection unexpectedly closed ({n} bytes received so far)"
                )
            }
            HandshakeError::Protocol(m) => write!(f, "protocol error: {m}"),
            HandshakeError::Io(e) => write!(f, "error in socket IO: {e}"),
        }
    }
}

/// Our `Hello`. `compress_level` is what the client asks for (0 = off).
pub fn our_hello(compress_level: i8) -> Hello {
    Hello {
        min_version: MIN_VERSION,
        max_version: MAX_VERSION,
        caps: CAPS,
        compress_level,
        program: format!("resync {}", env!("CARGO_PKG_VERSION")),
    }
}

/// A server's `Hello`: ours, offering adaptive compression (which the
/// client's `Hello` asks for by setting `cap::ADAPTIVE` too).
pub fn server_hello() -> Hello {
    let mut h = our_hello(0);
    h.caps |= cap::ADAPTIVE | cap::UTF8_NAMES;
    h
}

/// Agree on version, capabilities and compression from both `Hello`s.
pub fn agree(side: Side, ours: &Hello, theirs: &Hello) -> Result<Agreed, HandshakeError> {
    let version = ours.max_version.min(theirs.max_version);
    if version < ours.min_version.max(theirs.min_version) {
        return Err(HandshakeError::Incompatible {
            side,
            ours: (ours.min_version, ours.max_version),
            theirs: (theirs.min_version, theirs.max_version),
        });
    }
    let caps = ours.caps & theirs.caps;
    let asked = match side {
        Side::Client => ours.compress_level,
        Side::Server => theirs.compress_level,
    };
    let compress_level = if caps & cap::ZSTD != 0 { asked } else { 0 };
    let adaptive =
        compress_level == 0 && caps & (cap::ZSTD | cap::ADAPTIVE) == cap::ZSTD | cap::ADAPTIVE;
    Ok(Agreed {
        version,
        caps,
        compress_level,
        adaptive,
        peer_program: theirs.program.clone(),
    })
}

/// Run the handshake on a fresh connection: send ours, read theirs, agree,
/// switch compression on in both directions when agreed.
pub fn handshake(
    side: Side,
    r: &mut FrameReader,
    w: &mut FrameWriter,
    hello: &Hello,
) -> Result<Agreed, HandshakeError> {
    let io = HandshakeError::Io;
    let sent = w
        .write_magic()
        .and_then(|_| w.send(&Msg::Hello(hello.clone())))
        .and_then(|_| w.flush());
    match sent {
        // A peer that already went away: reading tells how (its banner, or
        // end of stream), as rsync reports it.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {}
        r => r.map_err(io)?,
    }
    let recv_err = |e: RecvError, r: &FrameReader| match e {
        RecvError::Eof { .. } => HandshakeError::Closed(r.bytes_received()),
        RecvError::Io(e) => HandshakeError::Io(e),
        RecvError::Proto(p) => HandshakeError::Protocol(p.to_string()),
    };
    match r.read_magic() {
        Ok(true) => {}
        Ok(false) => return Err(HandshakeError::NotResync),
        Err(e) => return Err(recv_err(e, r)),
    }
    let theirs = match r.recv() {
        Ok(Msg::Hello(h)) => h,
        Ok(m) => {
            return Err(HandshakeError::Protocol(format!(
                "expected Hello, got message 0x{:02x}",
                m.kind()
            )));
        }
        Err(e) => return Err(recv_err(e, r)),
    };
    let agreed = agree(side, hello, &theirs)?;
    w.set_caps(agreed.caps);
    if side == Side::Server {
        // The lines we send are printed in the client's locale.
        crate::report::set_utf8_locale(agreed.caps & cap::UTF8_NAMES != 0);
    }
    let mode = match agreed.compress_level {
        0 if agreed.adaptive => Some(Mode::Adaptive),
        0 => None,
        l => Some(Mode::Always(i32::from(l))),
    };
    if let Some(mode) = mode {
        w.start_zstd(mode).map_err(io)?;
        r.start_zstd().map_err(io)?;
    }
    Ok(agreed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixStream;

    fn hello(min: u16, max: u16, caps: u64, level: i8) -> Hello {
        Hello {
            min_version: min,
            max_version: max,
            caps,
            compress_level: level,
            program: "test".into(),
        }
    }

    #[test]
    fn agreement_picks_highest_common_version_and_common_caps() {
        let a = agree(
            Side::Client,
            &hello(1, 3, cap::ZSTD | cap::XATTRS, 5),
            &hello(2, 5, cap::ZSTD | 1 << 40, 0),
        )
        .unwrap();
        assert_eq!((a.version, a.caps, a.compress_level), (3, cap::ZSTD, 5));
        // The server uses the client's level; without ZSTD on both, none.
        let s = agree(Side::Server, &hello(1, 1, CAPS, 0), &hello(1, 1, CAPS, 9)).unwrap();
        assert_eq!(s.compress_level, 9);
        let s = agree(Side::Server, &hello(1, 1, 0, 0), &hello(1, 1, CAPS, 9)).unwrap();
        assert_eq!(s.compress_level, 0);
    }

    #[test]
    fn disjoint_versions_are_exit_2_with_both_ranges() {
        let e = agree(Side::Client, &hello(1, 1, 0, 0), &hello(2, 4, 0, 0)).unwrap_err();
        assert_eq!(e.code(), 2);
        assert_eq!(
            e.to_string(),
            "protocol version mismatch: the Client speaks protocol 1 to 1, the Server 2 to 4"
        );
        let e = agree(Side::Server, &hello(3, 3, 0, 0), &hello(1, 2, 0, 0)).unwrap_err();
        assert_eq!(
            e.to_string(),
            "protocol version mismatch: the Client speaks protocol 1 to 2, the Server 3 to 3"
        );
    }

    /// Both sides over a socket pair, with and without compression, then a
    /// message each way after the switch.
    #[test]
    fn handshake_over_a_socket_pair() {
        for level in [0i8, 3, -1] {
            let (a, b) = UnixStream::pair().unwrap();
            let server = std::thread::spawn(move || {
                let mut r = FrameReader::new(b.try_clone().unwrap());
                let mut w = FrameWriter::new(b);
                let ag = handshake(Side::Server, &mut r, &mut w, &our_hello(0)).unwrap();
                let m = r.recv().unwrap();
                w.send(&m).unwrap();
                w.send(&Msg::Goodbye { code: 0 }).unwrap();
                w.finish().unwrap();
                ag
            });
            let mut r = FrameReader::new(a.try_clone().unwrap());
            let mut w = FrameWriter::new(a);
            let ag = handshake(Side::Client, &mut r, &mut w, &our_hello(level)).unwrap();
            assert_eq!(ag.version, 1);
            assert_eq!(ag.compress_level, level);
            let ping = Msg::Log {
                level: 0,
                text: vec![b'z'; 8000],
            };
            w.send(&ping).unwrap();
            w.flush().unwrap();
            assert_eq!(r.recv().unwrap(), ping);
            assert_eq!(r.recv().unwrap(), Msg::Goodbye { code: 0 });
            let sag = server.join().unwrap();
            assert_eq!(sag.compress_level, level);
            if level != 0 {
                // 8000 'z' compress to far less than they take raw.
                assert!(r.bytes_received() < 2000, "{}", r.bytes_received());
            }
        }
    }

    #[test]
    fn banner_is_not_resync_and_early_close_is_12() {
        let mut r = FrameReader::new(std::io::Cursor::new(b"Welcome to host\n".to_vec()));
        let mut w = FrameWriter::new(std::io::sink());
        let e = handshake(Side::Client, &mut r, &mut w, &our_hello(0)).unwrap_err();
        assert_eq!(e.code(), 2);
        assert!(
            e.to_string()
                .starts_with("protocol version mismatch -- is your shell clean?")
        );
        let mut r = FrameReader::new(std::io::Cursor::new(b"resy".to_vec()));
        let e = handshake(Side::Client, &mut r, &mut w, &our_hello(0)).unwrap_err();
        assert_eq!(e.code(), 12);
        assert_eq!(
            e.to_string(),
            "connection unexpectedly closed (4 bytes received so far)"
        );
        let mut bytes = crate::remote::proto::MAGIC.to_vec();
        bytes.extend(Msg::Goodbye { code: 0 }.encode_frame().unwrap());
        let mut r = FrameReader::new(std::io::Cursor::new(bytes));
        let e = handshake(Side::Client, &mut r, &mut w, &our_hello(0)).unwrap_err();
        assert_eq!(e.code(), 12);
    }
}
