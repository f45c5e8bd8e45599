//! Remote transfers: the wire protocol of `docs/PROTOCOL.md` (frames and
//! messages, handshake, streaming zstd), remote operands and the remote-shell
//! command, the `resync --server` entry, and the rsyncd.conf parser for the
//! coming daemon.
//!
//! A transfer runs the local engine over the protocol: the sender scans and
//! streams the list and the data ([`sender`]), the receiver plans, applies
//! and deletes with the engine fed from the wire ([`receiver`]).

pub mod access;
pub mod args;
pub mod bwlimit;
pub mod client;
pub mod config;
pub mod conn;
pub mod daemon;
pub mod daemon_client;
pub mod filesum;
#[doc(hidden)]
pub mod fuzzing;
pub mod handshake;
pub mod operand;
pub mod pipe;
pub mod proto;
pub mod receiver;
pub mod rsh;
pub mod sender;
pub mod server;
pub mod session;
pub mod timeout;
pub mod tls;
pub mod transfer;
pub mod zchunk;
