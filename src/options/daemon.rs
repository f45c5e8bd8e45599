//! The options of daemon connections and of `resync --daemon`, kept in one
//! struct so the daemon's rows of the option table touch one field of
//! [`super::Options`].

use std::ffi::OsString;

/// `--daemon`, its settings, and the client's daemon-connection options.
#[derive(Clone, Debug, Default)]
pub struct DaemonOpts {
    /// `--daemon`: run as the daemon instead of transferring.
    pub daemon: bool,
    /// `--config=FILE` (default `/etc/rsyncd.conf`).
    pub config: Option<OsString>,
    /// `--port=PORT`: the daemon's listening port, or the client's port for
    /// `host::module` operands (default [`crate::remote::daemon::DEFAULT_PORT`]).
    pub port: Option<u16>,
    /// `--address=ADDRESS`: the daemon's listening address, or the client's
    /// bind address for the outgoing socket.
    pub address: Option<String>,
    /// `--no-detach` (true) / `--detach` (false): stay in the foreground.
    pub no_detach: bool,
    /// `--password-file=FILE`: the daemon-access password (first line).
    pub password_file: Option<OsString>,
    /// `--contimeout=SECONDS` (0 = none): connect + TLS + greeting deadline.
    pub contimeout: u64,
    /// `--ca-file=FILE`: verify the daemon's certificate against these CAs
    /// instead of first-use pinning.
    pub ca_file: Option<OsString>,
    /// `--plain-tcp`: connect without TLS (the daemon must allow it with
    /// `plain tcp = yes`).
    pub plain_tcp: bool,
    /// `--tls-cert=FILE`: client certificate for a daemon with `tls client ca`.
    pub tls_cert: Option<OsString>,
    /// `--tls-key=FILE`: the private key of `--tls-cert`.
    pub tls_key: Option<OsString>,
    /// `--no-motd`: do not print the daemon's message of the day.
    pub no_motd: bool,
    /// Set by the daemon for the sessions it serves (no option): error lines
    /// go to the client as `Log` frames, since the daemon's stderr is not
    /// the client's (rsync's daemon sends them over the socket too).
    pub relay_errors: bool,
}
