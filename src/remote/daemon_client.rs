//! The client side of a daemon connection (`host::module/path`,
//! `rsync://…`, `resync://…`): TCP connect within `--contimeout`, TLS 1.3
//! with `--ca-file` or first-use pinning (`known_hosts`), the handshake,
//! `Start`, then the module list, the auth challenge, or the transfer
//! (docs/PROTOCOL.md, "Daemon").

use super::access::auth_response;
use super::conn::{FrameReader, FrameWriter, RecvError};
use super::daemon::DEFAULT_PORT;
use super::handshake::{self, Side};
use super::operand::{Kind, Remote};
use super::proto::{AUTH_LEN, Msg};
use super::tls::{self, Pin, Trust};
use crate::exit;
use crate::options::Options;
use crate::report;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Where pinned daemon certificates are kept:
/// `$XDG_CONFIG_HOME/resync/known_hosts`, else `~/.config/resync/known_hosts`.
pub fn known_hosts_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("resync").join("known_hosts"))
}

/// The pinned fingerprint of `key` (`host:port`) and its line number.
fn lookup_pin(path: &Path, key: &str) -> Option<(String, usize)> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().enumerate().find_map(|(i, l)| {
        let mut w = l.split_whitespace();
        (w.next() == Some(key))
            .then(|| w.next().map(|f| (f.to_string(), i + 1)))
            .flatten()
    })
}

fn add_pin(path: &Path, key: &str, fp: &str) -> std::io::Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    writeln!(f, "{key} {fp}")
}

fn fail(code: i32, msg: &str, role: &str) -> i32 {
    report::message(msg);
    report::exit_message(code, role);
    code
}

/// Run a daemon transfer (or module listing); returns the exit code.
pub fn run(
    opts: &Options,
    remote: &Remote,
    paths: Vec<Vec<u8>>,
    role: &'static str,
    pull: bool,
) -> i32 {
    let d = &opts.daemon;
    let bind = match d.address.as_deref().map(str::parse::<std::net::IpAddr>) {
        None => None,
        Some(Ok(ip)) => Some(ip),
        Some(Err(_)) => {
            return fail(
                exit::SYNTAX,
                &format!("invalid --address {}", d.address.as_deref().unwrap_or("")),
                role,
            );
        }
    };
    let port = match remote.kind {
        Kind::DaemonPort(p) => p,
        _ => d.port.unwrap_or(DEFAULT_PORT),
    };
    let host = String::from_utf8_lossy(&remote.host).into_owned();
    let deadline = (d.contimeout > 0).then(|| Instant::now() + Duration::from_secs(d.contimeout));
    let mut sock = match connect(&host, port, bind, deadline, role) {
        Ok(s) => s,
        Err(code) => return code,
    };
    let _ = sock.set_nodelay(true);
    let mut exporter = [0u8; AUTH_LEN];
    let stream: Box<dyn ReadWrite> = if d.plain_tcp {
        Box::new(sock)
    } else {
        let pin_path = known_hosts_path();
        let key = format!("{host}:{port}");
        let (trust, pin) = match &d.ca_file {
            Some(ca) => (Trust::Ca(PathBuf::from(ca)), None),
            None => {
                let known = pin_path.as_deref().and_then(|p| lookup_pin(p, &key));
                let pin = Arc::new(Pin::new(key.clone(), known.as_ref().map(|k| k.0.clone())));
                (Trust::Pin(pin.clone()), Some((pin, known.map(|k| k.1))))
            }
        };
        let client_cert = match (&d.tls_cert, &d.tls_key) {
            (Some(c), Some(k)) => Some((Path::new(c), Path::new(k))),
            (None, None) => None,
            _ => {
                return fail(exit::SYNTAX, "--tls-cert and --tls-key go together", role);
            }
        };
        let cfg = match tls::client_config(&trust, client_cert) {
            Ok(c) => c,
            Err(e) => return fail(exit::SYNTAX, &e, role),
        };
        let name = match rustls::pki_types::ServerName::try_from(host.clone()) {
            Ok(n) => n,
            Err(_) => return fail(exit::SYNTAX, &format!("invalid host name {host}"), role),
        };
        let conn = match rustls::ClientConnection::new(cfg, name) {
            Ok(c) => c,
            Err(e) => return fail(exit::START_CLIENT, &format!("TLS setup failed: {e}"), role),
        };
        let mut conn = rustls::Connection::Client(conn);
        if let Some(dl) = deadline {
            let _ = sock.set_read_timeout(Some(
                dl.saturating_duration_since(Instant::now())
                    .max(Duration::from_millis(1)),
            ));
        }
        let done = tls::complete_handshake(&mut conn, &mut sock)
            .and_then(|_| tls::await_first_data(&mut conn, &mut sock));
        if let Err(e) = done {
            if let Some((pin, line)) = &pin {
                let st = pin.state.lock().unwrap_or_else(|e| e.into_inner());
                if let (Some(old), Some(new)) = (&st.mismatch, &st.seen) {
                    changed_warning(&pin.key, old, new, pin_path.as_deref(), *line);
                    report::message_bare(&format!(
                        "@ERROR: the TLS certificate of {} has changed; not connecting",
                        pin.key
                    ));
                    report::exit_message(exit::START_CLIENT, role);
                    return exit::START_CLIENT;
                }
            }
            if is_timeout(&e) && deadline.is_some() {
                return fail(
                    exit::CONTIMEOUT,
                    &format!("[{role}] timed out waiting for the daemon's TLS handshake"),
                    role,
                );
            }
            return fail(
                exit::START_CLIENT,
                &format!("[{role}] TLS handshake with {host} failed: {e}"),
                role,
            );
        }
        if let Some((pin, _)) = &pin {
            let st = pin.state.lock().unwrap_or_else(|e| e.into_inner());
            if pin.known.is_none() {
                if let (Some(fp), Some(p)) = (&st.seen, &pin_path) {
                    match add_pin(p, &pin.key, fp) {
                        Ok(()) => report::message_bare(&format!(
                            "Warning: Permanently added '{}' ({fp}) to the list of known hosts.",
                            pin.key
                        )),
                        Err(e) => report::message(&format!(
                            "cannot record {} in {}: {e}",
                            pin.key,
                            p.display()
                        )),
                    }
                }
            }
        }
        if let rustls::Connection::Client(c) = &conn {
            if c.export_keying_material(&mut exporter, tls::EXPORTER_LABEL, None)
                .is_err()
            {
                return fail(exit::START_CLIENT, "TLS exporter failed", role);
            }
        }
        match tls::TlsStream::new(conn, sock, tls::idle_limit(None)) {
            Ok(s) => Box::new(s),
            Err(e) => return fail(exit::IPC, &format!("cannot start TLS: {e}"), role),
        }
    };
    let (rd, wr) = match stream.halves() {
        Ok(h) => h,
        Err(e) => return fail(exit::IPC, &format!("cannot split the stream: {e}"), role),
    };
    drop(stream);
    let r = FrameReader::new(rd);
    let w = FrameWriter::new(wr);
    let _watch = super::timeout::watch(opts.timeout, role, r.activity(), w.activity());
    let mut args = match super::args::server_args(opts, pull) {
        Ok(a) => a,
        Err(msg) => return fail(exit::SYNTAX, &msg, role),
    };
    args.push(b".".to_vec());
    args.extend(paths);
    let user = remote
        .user
        .as_ref()
        .map(|u| String::from_utf8_lossy(u).into_owned())
        .or_else(|| std::env::var("USER").ok())
        .or_else(|| std::env::var("LOGNAME").ok())
        .unwrap_or_else(|| "nobody".into());
    converse(opts, r, w, args, (&user, &exporter), role, pull)
}

/// A stream that can be split into read and write halves.
trait ReadWrite {
    fn halves(&self) -> std::io::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)>;
}

impl ReadWrite for TcpStream {
    fn halves(&self) -> std::io::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)> {
        Ok((
            Box::new(self.try_clone()?),
            Box::new(super::conn::SocketWriter(self.try_clone()?)),
        ))
    }
}

impl ReadWrite for tls::TlsStream {
    fn halves(&self) -> std::io::Result<(Box<dyn Read + Send>, Box<dyn Write + Send>)> {
        Ok((Box::new(self.reader()), Box::new(self.writer())))
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

/// Connect to the first address of `host` that answers, within the deadline.
fn connect(
    host: &str,
    port: u16,
    bind: Option<std::net::IpAddr>,
    deadline: Option<Instant>,
    role: &str,
) -> Result<TcpStream, i32> {
    let addrs: Vec<SocketAddr> = match (host, port).to_socket_addrs() {
        Ok(a) => a.collect(),
        Err(e) => {
            return Err(fail(
                exit::SOCKET_IO,
                &format!("[{role}] getaddrinfo: {host} {port}: {e}"),
                role,
            ));
        }
    };
    let mut last = None;
    for a in &addrs {
        let left = deadline.map(|dl| dl.saturating_duration_since(Instant::now()));
        let res = match (left, bind) {
            (Some(l), _) if l.is_zero() => Err(std::io::Error::from_raw_os_error(libc::ETIMEDOUT)),
            (_, Some(b)) => crate::sys::daemon::connect_from(b, *a, left),
            (Some(l), None) => TcpStream::connect_timeout(a, l),
            (None, None) => TcpStream::connect(a),
        };
        match res {
            Ok(s) => return Ok(s),
            Err(e) => last = Some((a.ip(), e)),
        }
    }
    let (ip, e) = match last {
        Some(x) => x,
        None => {
            return Err(fail(
                exit::SOCKET_IO,
                &format!("[{role}] no address for {host}"),
                role,
            ));
        }
    };
    let code = if is_timeout(&e) && deadline.is_some() {
        exit::CONTIMEOUT
    } else {
        exit::SOCKET_IO
    };
    Err(fail(
        code,
        &format!(
            "[{role}] failed to connect to {host} ({ip}): {}",
            crate::flist::errno_text(&e)
        ),
        role,
    ))
}

/// ssh's warning for a changed host key, for a changed certificate.
fn changed_warning(key: &str, old: &str, new: &str, file: Option<&Path>, line: Option<usize>) {
    let file = file.map_or_else(|| "known_hosts".into(), |p| p.display().to_string());
    let bar = "@".repeat(59);
    let text = format!(
        "{bar}\n\
         @    WARNING: REMOTE HOST IDENTIFICATION HAS CHANGED!     @\n\
         {bar}\n\
         IT IS POSSIBLE THAT SOMEONE IS DOING SOMETHING NASTY!\n\
         Someone could be eavesdropping on you right now (man-in-the-middle attack)!\n\
         It is also possible that the daemon's TLS certificate has just been changed.\n\
         The fingerprint for the certificate sent by {key} is\n\
         {new}.\n\
         The pinned fingerprint is\n\
         {old}.\n\
         Please contact your system administrator.\n\
         Remove the line of {key} from {file} to accept the new certificate.\n\
         Offending entry in {file}:{}\n\
         TLS certificate for {key} has changed and resync pins certificates on first use.",
        line.unwrap_or(0)
    );
    report::message_bare(&text);
}

/// The client's password: `RSYNC_PASSWORD`, else the first line of
/// `--password-file` (which must not be other-accessible, as rsync checks).
fn password(opts: &Options, role: &str) -> Result<String, i32> {
    if let Some(f) = &opts.daemon.password_file {
        let p = Path::new(f);
        let file = if f == "-" {
            None
        } else {
            Some(std::fs::File::open(p).map_err(|e| {
                fail(
                    exit::SYNTAX,
                    &format!(
                        "[{role}] could not open password file {}: {}",
                        p.display(),
                        crate::flist::errno_text(&e)
                    ),
                    role,
                )
            })?)
        };
        let text = match file {
            Some(f) => {
                if f.metadata().is_ok_and(|m| m.mode() & 0o006 != 0) {
                    report::message_bare("ERROR: password file must not be other-accessible");
                    report::exit_message(exit::SYNTAX, role);
                    return Err(exit::SYNTAX);
                }
                std::io::read_to_string(f).unwrap_or_default()
            }
            None => std::io::read_to_string(std::io::stdin()).unwrap_or_default(),
        };
        return Ok(text.lines().next().unwrap_or("").to_string());
    }
    // rsync would prompt on the terminal; resync sends an empty password
    // (the daemon refuses it) rather than reading one without hiding it.
    Ok(std::env::var("RSYNC_PASSWORD").unwrap_or_default())
}

fn converse(
    opts: &Options,
    mut r: FrameReader,
    mut w: FrameWriter,
    args: Vec<Vec<u8>>,
    (user, exporter): (&str, &[u8; AUTH_LEN]),
    role: &'static str,
    pull: bool,
) -> i32 {
    let hello = super::client::client_hello(opts);
    let agreed = match handshake::handshake(Side::Client, &mut r, &mut w, &hello) {
        Ok(a) => a,
        Err(e) => return super::server::fail_handshake(&e, role),
    };
    if let Some(c) = super::client::refuse_missing_caps(opts, agreed.caps, &mut w, role) {
        return c;
    }
    if let Err(e) = w.send(&Msg::Start { args }).and_then(|_| w.flush()) {
        return fail(
            exit::SOCKET_IO,
            &format!("error in socket IO: {e} [{role}]"),
            role,
        );
    }
    loop {
        match r.recv() {
            Ok(Msg::Log { level: 7, text }) => {
                if !opts.daemon.no_motd {
                    report::message_stdout(&String::from_utf8_lossy(&text));
                }
            }
            Ok(Msg::Log { level: 0, text }) => {
                report::message_stdout(&String::from_utf8_lossy(&text))
            }
            Ok(Msg::Log { text, .. }) => report::message_bare(&String::from_utf8_lossy(&text)),
            Ok(Msg::Keepalive) => {}
            Ok(Msg::AuthChallenge { module, challenge }) => {
                let pw = match password(opts, role) {
                    Ok(p) => p,
                    Err(c) => return c,
                };
                let response = auth_response(&pw, &challenge, exporter, &module, user);
                let sent = w
                    .send(&Msg::AuthResponse {
                        user: user.to_string(),
                        response,
                    })
                    .and_then(|_| w.flush());
                if let Err(e) = sent {
                    return fail(
                        exit::SOCKET_IO,
                        &format!("error in socket IO: {e} [{role}]"),
                        role,
                    );
                }
            }
            Ok(Msg::Ready) => {
                // The module is open (after the daemon's own checks, as
                // rsync orders them): refuse what the protocol does not
                // carry yet, as over a remote shell.
                if let Some(name) = super::args::unsupported(opts) {
                    let _ = w
                        .send(&Msg::Goodbye {
                            code: exit::UNSUPPORTED as u8,
                        })
                        .and_then(|_| w.flush());
                    return fail(
                        exit::UNSUPPORTED,
                        &format!("{name} is not supported for remote transfers yet"),
                        role,
                    );
                }
                // The transfer runs as over a remote shell.
                let start = Instant::now();
                super::client::header(opts, pull);
                let end = if pull {
                    super::transfer::pull(opts, r, w, role, start)
                } else {
                    super::transfer::push(opts, r, w, role, start)
                };
                return match end {
                    super::transfer::End::Failed(c) => c,
                    super::transfer::End::Done(c) => {
                        if c != 0 {
                            report::exit_message(c, role);
                        }
                        c
                    }
                    super::transfer::End::Closed(n) => fail(
                        exit::STREAM_IO,
                        &format!(
                            "connection unexpectedly closed ({n} bytes received so far) [{role}]"
                        ),
                        role,
                    ),
                };
            }
            Ok(Msg::Goodbye { code }) => return i32::from(code),
            Ok(Msg::Error { code, message }) => {
                report::message_bare(&message);
                // The daemon's server side sends its own last line.
                let last = message.lines().last().unwrap_or("");
                if !(last.starts_with("resync error:") || last.starts_with("resync warning:")) {
                    report::exit_message(i32::from(code), role);
                }
                return i32::from(code);
            }
            Ok(m) => {
                return fail(
                    exit::STREAM_IO,
                    &format!(
                        "protocol error: unexpected message 0x{:02x} [{role}]",
                        m.kind()
                    ),
                    role,
                );
            }
            Err(RecvError::Eof { .. }) => {
                return fail(
                    exit::STREAM_IO,
                    &format!(
                        "connection unexpectedly closed ({} bytes received so far) [{role}]",
                        r.bytes_received()
                    ),
                    role,
                );
            }
            Err(RecvError::Proto(p)) => {
                return fail(
                    exit::STREAM_IO,
                    &format!("protocol error: {p} [{role}]"),
                    role,
                );
            }
            Err(RecvError::Io(e)) => {
                return fail(
                    exit::SOCKET_IO,
                    &format!("error in socket IO: {e} [{role}]"),
                    role,
                );
            }
        }
    }
}
