//! rsync's exit codes, one name each, so that call sites say what happened.

/// Success.
pub const OK: i32 = 0;
/// Syntax or usage error.
pub const SYNTAX: i32 = 1;
/// Protocol incompatibility.
pub const PROTOCOL: i32 = 2;
/// Errors selecting input/output files or dirs.
pub const FILE_SELECT: i32 = 3;
/// Requested action not supported.
pub const UNSUPPORTED: i32 = 4;
/// Error starting client-server protocol.
pub const START_CLIENT: i32 = 5;
/// Error in socket I/O.
pub const SOCKET_IO: i32 = 10;
/// Error in file I/O.
pub const FILE_IO: i32 = 11;
/// Error in rsync protocol data stream.
pub const STREAM_IO: i32 = 12;
/// Errors with program diagnostics.
pub const MESSAGE_IO: i32 = 13;
/// Error in IPC code.
pub const IPC: i32 = 14;
/// Received SIGUSR1 or SIGINT.
pub const SIGNAL: i32 = 20;
/// Error allocating core memory buffers.
pub const MALLOC: i32 = 22;
/// Partial transfer due to error.
pub const PARTIAL: i32 = 23;
/// Partial transfer due to vanished source files.
pub const VANISHED: i32 = 24;
/// `--max-delete` limit stopped deletions.
pub const DEL_LIMIT: i32 = 25;
/// Timeout in data send/receive.
pub const TIMEOUT: i32 = 30;
/// Timeout waiting for daemon connection.
pub const CONTIMEOUT: i32 = 35;
