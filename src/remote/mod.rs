//! Remote transfers: the wire protocol of `docs/PROTOCOL.md` (frames and
//! messages, handshake, streaming zstd), remote operands and the remote-shell
//! command, the `resync --server` entry, and the rsyncd.conf parser for the
//! coming daemon.
//!
//! The engine does not run over the protocol yet: a remote transfer connects,
//! completes the handshake and stops with "remote transfers are not supported
//! yet" (exit 4) before anything is listed or written.

pub mod access;
pub mod client;
pub mod config;
pub mod conn;
pub mod daemon;
pub mod daemon_client;
#[doc(hidden)]
pub mod fuzzing;
pub mod handshake;
pub mod operand;
pub mod proto;
pub mod rsh;
pub mod server;
pub mod tls;
