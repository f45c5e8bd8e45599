//! `resync --daemon`: rsync's daemon mode over TLS 1.3 (docs/PROTOCOL.md,
//! "Daemon").
//!
//! One single-threaded accept loop; each connection is served by a forked
//! child (so `use chroot` and `uid`/`gid` apply per module and one bad
//! client never touches the listener), which runs the TLS handshake, the
//! protocol handshake, reads the client's `Start`, and answers with the
//! module list or checks access (hosts, `max connections`, auth, path jail,
//! read/write only, refused options) before it hands the stream to
//! [`super::server::serve_session`] with the module as root.

use super::access;
use super::config::{self, Config, Module, Value};
use super::conn::{FrameReader, FrameWriter, RecvError};
use super::handshake::{self, Side};
use super::proto::{AUTH_LEN, Msg};
use super::tls;
use crate::exit;
use crate::options::Options;
use crate::sys::daemon as sys;
use std::ffi::OsString;
use std::io::Write;
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// resync's TLS daemon port. rsync's plain daemon uses 873 (and rsync-ssl
/// 874); resync speaks another protocol, so it has its own default.
pub const DEFAULT_PORT: u16 = 8873;

/// rsync's default configuration file.
pub const DEFAULT_CONFIG: &str = "/etc/rsyncd.conf";

/// The daemon's log: rsync's `YYYY/MM/DD HH:MM:SS [PID] message` lines, to
/// `log file`, else to stderr with `--no-detach` (resync has no syslog).
struct Log {
    file: Option<std::fs::File>,
    stderr: bool,
}

impl Log {
    fn line(&self, msg: &str) {
        // Names in messages come from the client: no control characters
        // (a forged newline must not make a log line of its own).
        let msg: String = msg
            .chars()
            .map(|c| if c.is_control() { '?' } else { c })
            .collect();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        let l = format!(
            "{} [{}] {msg}\n",
            crate::report::time_string(now),
            std::process::id()
        );
        if let Some(f) = &self.file {
            let _ = (&*f).write_all(l.as_bytes());
        } else if self.stderr {
            let _ = std::io::stderr().write_all(l.as_bytes());
        }
    }
}

/// The daemon's settings, fixed at start.
struct Daemon {
    cfg: Config,
    tls: Option<Arc<rustls::ServerConfig>>,
    plain_ok: bool,
    log: Log,
}

fn gstr(cfg: &Config, name: &str) -> Option<String> {
    match cfg.global_value(name, &config::env_var) {
        Ok(Some(Value::Str(s))) => Some(s),
        _ => None,
    }
}

fn gint(cfg: &Config, name: &str) -> i64 {
    match cfg.global_value(name, &config::env_var) {
        Ok(Some(Value::Int(n))) => n,
        _ => 0,
    }
}

fn mstr(cfg: &Config, m: &Module, name: &str) -> Option<String> {
    match cfg.module_value(m, name, &config::env_var) {
        Ok(Some(Value::Str(s))) if !s.is_empty() => Some(s),
        _ => None,
    }
}

fn mint(cfg: &Config, m: &Module, name: &str) -> i64 {
    match cfg.module_value(m, name, &config::env_var) {
        Ok(Some(Value::Int(n))) => n,
        _ => 0,
    }
}

fn mbool(cfg: &Config, m: &Module, name: &str) -> bool {
    cfg.module_bool(m, name).unwrap_or(false)
}

/// Print a start-up error as rsync's daemon does and return the exit code.
fn fail(code: i32, msg: &str) -> i32 {
    crate::report::message(&format!("[daemon] {msg}"));
    crate::report::exit_message(code, "daemon");
    code
}

/// `resync --daemon`: load the config, listen, detach, serve forever.
pub fn run(opts: &Options) -> i32 {
    let d = &opts.daemon;
    let path = d
        .config
        .clone()
        .unwrap_or_else(|| OsString::from(DEFAULT_CONFIG));
    let text = match std::fs::read(&path) {
        Ok(t) => String::from_utf8_lossy(&t).into_owned(),
        Err(_) => {
            // rsync's words, alone on stderr.
            crate::report::message_bare(&format!(
                "Failed to parse config file: {}",
                Path::new(&path).display()
            ));
            return exit::SYNTAX;
        }
    };
    let cfg = match Config::parse(&text) {
        Ok(c) => c,
        Err(e) => {
            return fail(
                exit::SYNTAX,
                &format!("{}: {e}", Path::new(&path).display()),
            );
        }
    };
    for w in &cfg.warnings {
        crate::report::message(w);
    }
    let plain_ok = matches!(
        cfg.global_value("plain tcp", &config::env_var),
        Ok(Some(Value::Bool(true)))
    );
    let tls = match (gstr(&cfg, "tls cert"), gstr(&cfg, "tls key")) {
        (Some(c), Some(k)) => {
            let ca = gstr(&cfg, "tls client ca");
            match tls::server_config(Path::new(&c), Path::new(&k), ca.as_deref().map(Path::new)) {
                Ok(t) => Some(t),
                Err(e) => return fail(exit::SYNTAX, &e),
            }
        }
        (None, None) if plain_ok => None,
        _ => {
            return fail(
                exit::SYNTAX,
                "the daemon needs \"tls cert\" and \"tls key\" (or \"plain tcp = yes\" for \
                 plain TCP only)",
            );
        }
    };
    let port = d.port.unwrap_or_else(|| {
        u16::try_from(gint(&cfg, "port"))
            .ok()
            .filter(|&p| p != 0)
            .unwrap_or(DEFAULT_PORT)
    });
    let addr = d.address.clone().or_else(|| gstr(&cfg, "address"));
    let ip: IpAddr = match addr.as_deref() {
        None => IpAddr::from([0u8; 16]),
        Some(a) => match a.parse() {
            Ok(ip) => ip,
            Err(_) => return fail(exit::SYNTAX, &format!("invalid address {a}")),
        },
    };
    let listener = match bind(SocketAddr::new(ip, port), addr.is_none()) {
        Ok(l) => l,
        Err(e) => {
            return fail(
                exit::SOCKET_IO,
                &format!("bind() failed: {}", crate::flist::errno_text(&e)),
            );
        }
    };
    if !d.no_detach {
        if let Err(e) = sys::become_daemon() {
            return fail(exit::IPC, &format!("cannot detach: {e}"));
        }
    }
    let log_file = gstr(&cfg, "log file").and_then(|p| {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(p)
            .ok()
    });
    let log = Log {
        file: log_file,
        stderr: d.no_detach,
    };
    if let Some(pid) = gstr(&cfg, "pid file") {
        if let Err(e) = std::fs::write(&pid, format!("{}\n", std::process::id())) {
            log.line(&format!("failed to create pid file {pid}: {e}"));
            return exit::FILE_IO;
        }
    }
    sys::ignore_sigpipe();
    log.line(&format!(
        "resyncd version {} starting, listening on port {port}",
        env!("CARGO_PKG_VERSION")
    ));
    let daemon = Daemon {
        cfg,
        tls,
        plain_ok,
        log,
    };
    accept_loop(&daemon, &listener)
}

/// Listen on `addr`; the unspecified address listens on IPv6 and IPv4.
fn bind(addr: SocketAddr, any: bool) -> std::io::Result<TcpListener> {
    match TcpListener::bind(addr) {
        Ok(l) => Ok(l),
        Err(e) if any => {
            // No IPv6 on this host: IPv4 only.
            let v4 = SocketAddr::new(IpAddr::from([0u8; 4]), addr.port());
            TcpListener::bind(v4).map_err(|_| e)
        }
        Err(e) => Err(e),
    }
}

/// Accept forever; one forked child per connection, reaped as they exit.
fn accept_loop(d: &Daemon, l: &TcpListener) -> i32 {
    loop {
        sys::reap_children();
        let (stream, peer) = match l.accept() {
            Ok(c) => c,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                d.log.line(&format!("accept failed: {e}"));
                std::thread::sleep(Duration::from_millis(100));
                continue;
            }
        };
        match sys::fork() {
            Ok(sys::Fork::Child) => {
                sys::close_listener(l);
                let code = connection(d, stream, peer.ip());
                // The child never returns into the accept loop.
                std::process::exit(code);
            }
            Ok(sys::Fork::Parent(_)) => drop(stream),
            Err(e) => d.log.line(&format!("fork failed: {e}")),
        }
    }
}

/// The peer as rsync names it in messages: `host (ip)`.
struct Peer {
    ip: IpAddr,
    host: String,
}

impl Peer {
    fn name(&self) -> String {
        format!("{} ({})", self.host, self.ip)
    }
}

/// Normalise an IPv4-mapped IPv6 address to IPv4, as the peer really is.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// One connection, in the forked child; returns the child's exit code.
fn connection(d: &Daemon, mut sock: TcpStream, ip: IpAddr) -> i32 {
    let ip = canonical(ip);
    let reverse = !matches!(
        d.cfg.global_value("reverse lookup", &config::env_var),
        Ok(Some(Value::Bool(false)))
    );
    let host = if reverse {
        sys::reverse_lookup(ip).unwrap_or_else(|| "UNKNOWN".into())
    } else {
        "UNDETERMINED".into()
    };
    let peer = Peer { ip, host };
    d.log.line(&format!("connect from {}", peer.name()));
    // Until a module says otherwise, the global `timeout` bounds each wait
    // (a client that connects and says nothing is dropped).
    let idle = u64::try_from(gint(&d.cfg, "timeout"))
        .ok()
        .filter(|&t| t > 0)
        .map(Duration::from_secs);
    let _ = sock.set_read_timeout(idle);
    let _ = sock.set_nodelay(true);
    let first = match sys::peek_byte(sock.as_fd()) {
        Ok(Some(b)) => b,
        Ok(None) => return exit::OK,
        Err(e) => {
            d.log
                .line(&format!("read from {} failed: {e}", peer.name()));
            return exit::SOCKET_IO;
        }
    };
    let mut exporter = [0u8; AUTH_LEN];
    let limit = tls::idle_limit(idle);
    let plain_sock = sock.try_clone().ok();
    let (stream, tls_conn) = if first == 0x16 {
        let Some(cfg) = d.tls.clone() else {
            d.log.line(&format!(
                "TLS connection from {} refused: this daemon has no \"tls cert\"",
                peer.name()
            ));
            return exit::START_CLIENT;
        };
        let mut conn = match rustls::ServerConnection::new(cfg) {
            Ok(c) => rustls::Connection::Server(c),
            Err(e) => {
                d.log.line(&format!("TLS setup failed: {e}"));
                return exit::START_CLIENT;
            }
        };
        if let Err(e) = tls::complete_handshake(&mut conn, &mut sock) {
            d.log
                .line(&format!("TLS handshake with {} failed: {e}", peer.name()));
            return exit::START_CLIENT;
        }
        if let rustls::Connection::Server(s) = &conn {
            if s.export_keying_material(&mut exporter, tls::EXPORTER_LABEL, None)
                .is_err()
            {
                return exit::START_CLIENT;
            }
        }
        match tls::TlsStream::new(conn, sock, limit.clone()) {
            Ok(s) => (Box::new(s.clone()) as Box<dyn Stream>, Some(s)),
            Err(e) => {
                d.log.line(&format!("cannot start TLS: {e}"));
                return exit::IPC;
            }
        }
    } else if first == super::proto::MAGIC[0] {
        if !d.plain_ok {
            // Answer in the clear so the client can say why.
            d.log.line(&format!(
                "plain TCP connection from {} refused (plain tcp = no)",
                peer.name()
            ));
            let Ok(rd) = sock.try_clone() else {
                return exit::IPC;
            };
            let mut r = FrameReader::new(rd);
            let Ok(wr) = sock.try_clone() else {
                return exit::IPC;
            };
            let mut w = FrameWriter::new(wr);
            if handshake::handshake(Side::Server, &mut r, &mut w, &handshake::server_hello())
                .is_err()
            {
                return exit::START_CLIENT;
            }
            // Read the client's Start, so closing does not reset the
            // connection before the client has read the reason.
            let _ = r.recv();
            let _ = w.send(&Msg::Error {
                code: exit::START_CLIENT as u8,
                message: "@ERROR: this daemon only accepts TLS connections \
                          (plain TCP needs --plain-tcp and \"plain tcp = yes\")"
                    .into(),
            });
            let _ = w.flush();
            let _ = sock.shutdown(std::net::Shutdown::Write);
            return exit::START_CLIENT;
        }
        (Box::new(sock) as Box<dyn Stream>, None)
    } else {
        d.log.line(&format!(
            "garbage from {} (first byte 0x{first:02x}): not a resync client",
            peer.name()
        ));
        return exit::STREAM_IO;
    };
    let code = match stream.halves() {
        Ok((rd, wr)) => {
            let r = FrameReader::new(rd);
            let w = FrameWriter::new(wr);
            // A module's own `timeout` replaces the global one.
            let set_idle = |t: Option<Duration>| {
                limit.store(
                    t.map_or(0, |t| t.as_millis() as u64),
                    std::sync::atomic::Ordering::Relaxed,
                );
                if tls_conn.is_none() {
                    if let Some(s) = &plain_sock {
                        let _ = s.set_read_timeout(t);
                    }
                }
            };
            converse(d, &peer, &exporter, &set_idle, r, w)
        }
        Err(e) => {
            d.log.line(&format!("cannot split the stream: {e}"));
            exit::IPC
        }
    };
    drop(stream);
    if let Some(t) = tls_conn {
        t.linger();
        if t.timed_out() {
            d.log
                .line(&format!("timeout: {} idle, dropped", peer.name()));
            return exit::TIMEOUT;
        }
    }
    code
}

/// A byte stream that can be split into a reading and a writing half.
trait Stream {
    /// Two owned handles of the same stream.
    fn halves(&self) -> std::io::Result<(Box<dyn ReadSend>, Box<dyn WriteSend>)>;
}

/// `Read + Send + 'static`, boxed.
trait ReadSend: std::io::Read + Send {}
impl<T: std::io::Read + Send> ReadSend for T {}
/// `Write + Send + 'static`, boxed.
trait WriteSend: std::io::Write + Send {}
impl<T: std::io::Write + Send> WriteSend for T {}

impl Stream for TcpStream {
    fn halves(&self) -> std::io::Result<(Box<dyn ReadSend>, Box<dyn WriteSend>)> {
        Ok((
            Box::new(self.try_clone()?),
            Box::new(super::conn::SocketWriter(self.try_clone()?)),
        ))
    }
}

impl Stream for tls::TlsStream {
    fn halves(&self) -> std::io::Result<(Box<dyn ReadSend>, Box<dyn WriteSend>)> {
        Ok((Box::new(self.reader()), Box::new(self.writer())))
    }
}

/// Send a fatal `Error` the client prints as is (rsync's `@ERROR: …`).
fn refuse(w: &mut FrameWriter, code: i32, message: String) -> i32 {
    let _ = w.send(&Msg::Error {
        code: code as u8,
        message,
    });
    let _ = w.flush();
    code
}

/// The client's `Start` arguments split as the client builds them:
/// `--server [--sender] OPTIONS… . PATH…`.
pub struct StartArgs {
    /// Everything before the `.` separator.
    pub options: Vec<OsString>,
    /// The requested paths (`module[/path]`).
    pub paths: Vec<Vec<u8>>,
    /// The client asked for `-z` in its `Hello` (compression is agreed in
    /// the handshake, so `--compress` is not among the options): checked
    /// against `refuse options` as if it were.
    pub compress: bool,
}

/// Split `Start` arguments at the first lone `.`.
pub fn split_start(args: &[Vec<u8>]) -> Result<StartArgs, String> {
    use std::os::unix::ffi::OsStringExt;
    let dot = args
        .iter()
        .position(|a| a == b".")
        .ok_or("Start without the \".\" separator")?;
    if args.first().map(Vec::as_slice) != Some(b"--server") {
        return Err("Start must begin with --server".into());
    }
    Ok(StartArgs {
        options: args[..dot]
            .iter()
            .map(|a| OsString::from_vec(a.clone()))
            .collect(),
        paths: args[dot + 1..].to_vec(),
        compress: false,
    })
}

/// The conversation after the streams are up.
fn converse(
    d: &Daemon,
    peer: &Peer,
    exporter: &[u8; AUTH_LEN],
    set_idle: &dyn Fn(Option<Duration>),
    mut r: FrameReader,
    mut w: FrameWriter,
) -> i32 {
    let agreed =
        match handshake::handshake(Side::Server, &mut r, &mut w, &handshake::server_hello()) {
            Ok(a) => a,
            Err(e) => {
                d.log
                    .line(&format!("handshake with {} failed: {e}", peer.name()));
                return e.code();
            }
        };
    let args = match r.recv() {
        Ok(Msg::Start { args }) => args,
        Ok(m) => {
            let msg = format!(
                "protocol error: expected Start, got message 0x{:02x}",
                m.kind()
            );
            d.log.line(&format!("{msg} from {}", peer.name()));
            return refuse(&mut w, exit::STREAM_IO, msg);
        }
        Err(RecvError::Proto(p)) => {
            d.log
                .line(&format!("protocol error from {}: {p}", peer.name()));
            return refuse(&mut w, exit::STREAM_IO, format!("protocol error: {p}"));
        }
        Err(e) => {
            d.log.line(&format!("no Start from {}: {e:?}", peer.name()));
            return exit::STREAM_IO;
        }
    };
    let start = match split_start(&args) {
        Ok(s) => StartArgs {
            compress: agreed.compress_level != 0,
            ..s
        },
        Err(e) => return refuse(&mut w, exit::STREAM_IO, format!("protocol error: {e}")),
    };
    // The message of the day comes first, as rsync sends it before anything.
    if let Some(motd) = gstr(&d.cfg, "motd file") {
        if let Ok(text) = std::fs::read(&motd) {
            for line in text.split(|&b| b == b'\n') {
                let _ = w.send(&Msg::Log {
                    level: 7,
                    text: line.to_vec(),
                });
            }
        }
    }
    let module_name = start
        .paths
        .first()
        .map(|p| {
            let end = p.iter().position(|&b| b == b'/').unwrap_or(p.len());
            String::from_utf8_lossy(&p[..end]).into_owned()
        })
        .unwrap_or_default();
    if module_name.is_empty() {
        d.log
            .line(&format!("module-list request from {}", peer.name()));
        return list_modules(d, peer, &mut w);
    }
    let Some(module) = d.cfg.module(&module_name) else {
        d.log.line(&format!(
            "unknown module '{module_name}' tried from {}",
            peer.name()
        ));
        return refuse(
            &mut w,
            exit::START_CLIENT,
            format!("@ERROR: Unknown module '{module_name}'"),
        );
    };
    let allow = mstr(&d.cfg, module, "hosts allow");
    let deny = mstr(&d.cfg, module, "hosts deny");
    if !access::allowed(allow.as_deref(), deny.as_deref(), peer.ip, &peer.host) {
        d.log.line(&format!(
            "resync denied on module {module_name} from {}",
            peer.name()
        ));
        return refuse(
            &mut w,
            exit::START_CLIENT,
            format!(
                "@ERROR: access denied to {module_name} from {}",
                peer.name()
            ),
        );
    }
    d.log.line(&format!(
        "resync allowed access on module {module_name} from {}",
        peer.name()
    ));
    let t = mint(&d.cfg, module, "timeout");
    set_idle((t > 0).then(|| Duration::from_secs(t as u64)));
    let max = mint(&d.cfg, module, "max connections");
    if max < 0 {
        // rsync: a negative value disables the module.
        return refuse(
            &mut w,
            exit::START_CLIENT,
            format!("@ERROR: max connections ({max}) reached -- try again later"),
        );
    }
    if max > 0 {
        let lock = mstr(&d.cfg, module, "lock file").unwrap_or_default();
        match sys::claim_slot(Path::new(&lock), max as u32) {
            Ok(true) => {}
            Ok(false) => {
                d.log.line(&format!(
                    "max connections ({max}) reached on module {module_name}"
                ));
                return refuse(
                    &mut w,
                    exit::START_CLIENT,
                    format!("@ERROR: max connections ({max}) reached -- try again later"),
                );
            }
            Err(e) => {
                d.log.line(&format!("failed to open lock file {lock}: {e}"));
                return refuse(
                    &mut w,
                    exit::START_CLIENT,
                    "@ERROR: failed to open lock file".into(),
                );
            }
        }
    }
    let mut user = None;
    let mut rule = access::AuthRule::Default;
    if let Some(users) = mstr(&d.cfg, module, "auth users") {
        match authenticate(d, module, &users, exporter, &mut r, &mut w) {
            Ok((u, rl)) => {
                user = Some(u);
                rule = rl;
            }
            Err(why) => {
                d.log.line(&format!(
                    "auth failed on module {module_name} from {}{why}",
                    peer.name()
                ));
                return refuse(
                    &mut w,
                    exit::START_CLIENT,
                    format!("@ERROR: auth failed on module {module_name}"),
                );
            }
        }
    }
    match open_module(d, module, &module_name, &start, user.as_deref(), rule, peer) {
        Ok(session) => {
            let _ = w.send(&Msg::Ready);
            let _ = w.flush();
            super::server::serve_session(&session.opts, &session.root, r, w)
        }
        Err((code, msg)) => {
            d.log.line(&msg);
            // Past the module's access checks the error is the server
            // side's own, ended with its own exit line in its role (rsync
            // relays its daemon process's messages the same way).
            let role = if start.options.iter().any(|o| o == "--sender") {
                "sender"
            } else {
                "Receiver"
            };
            let line = crate::report::exit_line(code, role);
            refuse(&mut w, code, format!("{msg}\n{line}"))
        }
    }
}

/// `name<TAB>comment` for every `list = yes` module, padded as rsync's
/// `%-15s`, then the end.
fn list_modules(d: &Daemon, _peer: &Peer, w: &mut FrameWriter) -> i32 {
    for m in &d.cfg.modules {
        if !mbool(&d.cfg, m, "list") {
            continue;
        }
        let comment = mstr(&d.cfg, m, "comment").unwrap_or_default();
        let _ = w.send(&Msg::Log {
            level: 0,
            text: format!("{:<15}\t{comment}", m.name).into_bytes(),
        });
    }
    let _ = w.send(&Msg::Goodbye { code: 0 });
    let _ = w.flush();
    exit::OK
}

/// Challenge–response against `secrets file` for a module with
/// `auth users`; the authenticated user, or why not (for the log).
fn authenticate(
    d: &Daemon,
    module: &Module,
    users: &str,
    exporter: &[u8; AUTH_LEN],
    r: &mut FrameReader,
    w: &mut FrameWriter,
) -> Result<(String, access::AuthRule), String> {
    let mut challenge = [0u8; AUTH_LEN];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut challenge)
        .map_err(|_| ": no randomness".to_string())?;
    let _ = w.send(&Msg::AuthChallenge {
        module: module.name.clone(),
        challenge,
    });
    let _ = w.flush();
    let (user, response) = match r.recv() {
        Ok(Msg::AuthResponse { user, response }) => (user, response),
        Ok(_) => return Err(": unexpected message".into()),
        Err(e) => return Err(format!(": no response ({e:?})")),
    };
    let Some(rule) = access::auth_rule(users, &user) else {
        return Err(format!(" for {user}: no matching rule"));
    };
    if rule == access::AuthRule::Deny {
        return Err(format!(" for {user}: denied by rule"));
    }
    let Some(secrets) = mstr(&d.cfg, module, "secrets file") else {
        return Err(format!(" for {user}: no secrets file"));
    };
    let strict = mbool(&d.cfg, module, "strict modes");
    let password = access::secret_for(Path::new(&secrets), &user, strict)
        .map_err(|e| format!(" for {user}: {e}"))?;
    let Some(password) = password else {
        return Err(format!(" for {user}: no secret"));
    };
    let want = access::auth_response(&password, &challenge, exporter, &module.name, &user);
    // blake3::Hash's equality is constant time.
    if blake3::Hash::from(want) == blake3::Hash::from(response) {
        Ok((user, rule))
    } else {
        Err(format!(" for {user}: invalid challenge response"))
    }
}

/// What the server side of a daemon connection gets.
struct SessionSetup {
    opts: Options,
    root: PathBuf,
}

/// After auth: chroot, uid/gid, the path jail, the client's options against
/// `refuse options`, `read only`, `write only`; daemon-side filters and
/// `incoming chmod` go into the options.
fn open_module(
    d: &Daemon,
    module: &Module,
    name: &str,
    start: &StartArgs,
    user: Option<&str>,
    rule: access::AuthRule,
    peer: &Peer,
) -> Result<SessionSetup, (i32, String)> {
    let cfg = &d.cfg;
    let bad = |m: String| (exit::START_CLIENT, format!("@ERROR: {m}"));
    let Some(path) = mstr(cfg, module, "path") else {
        return Err(bad(format!("no path setting for module {name}")));
    };
    let path = PathBuf::from(path);
    // Requested paths, relative to the module, checked before any access.
    let mut rel = Vec::new();
    for p in &start.paths {
        let Some(rest) = p.strip_prefix(name.as_bytes()) else {
            return Err((
                exit::SYNTAX,
                format!(
                    "resync: [server] all paths must be in module {name}: {}",
                    String::from_utf8_lossy(p)
                ),
            ));
        };
        if !rest.is_empty() && rest[0] != b'/' {
            return Err(bad(format!(
                "Unknown module '{}'",
                String::from_utf8_lossy(p)
            )));
        }
        let rest = rest.strip_prefix(b"/").unwrap_or(rest);
        access::check_rel(rest)
            .map_err(|e| (exit::FILE_SELECT, format!("resync: [server] {e}")))?;
        rel.push(rest.to_vec());
    }
    // Daemon-side filters, read before a chroot hides their files.
    let filters = access::module_filters(cfg, module).map_err(bad)?;
    let as_root = sys::is_root();
    let uid = mstr(cfg, module, "uid").or_else(|| as_root.then(|| "nobody".into()));
    let gid = mstr(cfg, module, "gid").or_else(|| as_root.then(|| "nogroup".into()));
    let uid = match uid {
        Some(u) => Some(sys::lookup_uid(&u).ok_or_else(|| bad(format!("invalid uid {u}")))?),
        None => None,
    };
    let gid = match gid {
        Some(g) => Some(
            sys::lookup_gid(&g)
                .or_else(|| {
                    (g == "nogroup")
                        .then(|| sys::lookup_gid("nobody"))
                        .flatten()
                })
                .ok_or_else(|| bad(format!("invalid gid {g}")))?,
        ),
        None => None,
    };
    let chroot = mbool(cfg, module, "use chroot");
    let root = if chroot {
        if let Err(e) = sys::chroot(&path) {
            return Err(bad(format!(
                "chroot \"{}\" failed: {}",
                path.display(),
                crate::flist::errno_text(&e)
            )));
        }
        PathBuf::from("/")
    } else {
        if let Err(e) = std::env::set_current_dir(&path) {
            return Err(bad(format!(
                "chdir \"{}\" failed: {}",
                path.display(),
                crate::flist::errno_text(&e)
            )));
        }
        path.clone()
    };
    if let Err(e) = sys::set_ids(uid, gid) {
        return Err(bad(format!("setuid/setgid failed: {e}")));
    }
    // The jail: each requested path's existing part must resolve beneath
    // the module root (a symlink out of it, or any `..`, is refused).
    let root_fd = std::fs::File::open(&root).map_err(|e| {
        bad(format!(
            "cannot open module {name}: {}",
            crate::flist::errno_text(&e)
        ))
    })?;
    for p in &rel {
        access::jail_check(root_fd.as_fd(), p)
            .map_err(|e| (exit::FILE_SELECT, format!("resync: [server] {e}")))?;
    }
    let opts = session_options(cfg, module, start, &rel, filters, rule)?;
    let push = !opts.sender;
    let who = match user {
        Some(u) => format!("{u}@{}", peer.host),
        None => peer.host.clone(),
    };
    let what: Vec<String> = start
        .paths
        .iter()
        .map(|p| String::from_utf8_lossy(p).into_owned())
        .collect();
    d.log.line(&format!(
        "resync {} {} from {who} ({})",
        if push { "to" } else { "on" },
        what.join(" "),
        peer.ip
    ));
    Ok(SessionSetup { opts, root })
}

/// The options the server side of a module runs with: the client's `Start`
/// options (checked against `refuse options`) with the jailed paths, then
/// `read only`/`write only`, the module's filter rules first, and
/// `incoming chmod` for a push. No I/O: the daemon's policy on options.
pub(super) fn session_options(
    cfg: &Config,
    module: &Module,
    start: &StartArgs,
    rel: &[Vec<u8>],
    filters: Vec<crate::filter::FilterArg>,
    rule: access::AuthRule,
) -> Result<Options, (i32, String)> {
    // The client's options, as `resync --server` would parse them.
    let mut argv = start.options.clone();
    argv.push(".".into());
    for p in rel {
        // A path that looks like an option (`pub/-c`, `pub/--delete`) would
        // be parsed as one, past `refuse options`: `./` keeps it a path, as
        // rsync's client writes `-x` as `./-x`.
        let p = if p.is_empty() {
            b".".to_vec()
        } else if p.starts_with(b"-") {
            [&b"./"[..], p].concat()
        } else {
            p.clone()
        };
        argv.push(std::ffi::OsString::from(std::ffi::OsStr::from_bytes(&p)));
    }
    if let Some(refused) = mstr(cfg, module, "refuse options") {
        let mut asked = start.options.clone();
        if start.compress {
            asked.push("--compress".into());
        }
        if let Some(o) = access::refused_option(&refused, &asked) {
            return Err((
                exit::UNSUPPORTED,
                format!("resync: The server is configured to refuse {o}"),
            ));
        }
    }
    let mut opts = match crate::options::parse_quiet(&argv) {
        Ok(o) => o,
        Err(e) => return Err((exit::SYNTAX, format!("resync: [server] {e}"))),
    };
    let push = !opts.sender;
    let read_only = match rule {
        access::AuthRule::ReadOnly => true,
        access::AuthRule::ReadWrite => false,
        _ => mbool(cfg, module, "read only"),
    };
    if push && read_only {
        return Err((exit::SYNTAX, "ERROR: module is read only".into()));
    }
    if !push && mbool(cfg, module, "write only") {
        return Err((exit::SYNTAX, "ERROR: module is write only".into()));
    }
    // rsync's sender refuses to delete from a module it may not write.
    if !push && read_only && opts.remove_source_files {
        return Err((
            exit::SYNTAX,
            "ERROR: --remove-source-files cannot be used with a read-only module".into(),
        ));
    }
    // Daemon rules come first, so the client's own rules cannot undo them.
    let mut f = filters;
    f.append(&mut opts.filters);
    opts.filters = f;
    if push {
        if let Some(c) = mstr(cfg, module, "incoming chmod") {
            opts.chmod.push(c);
        }
    }
    // The module's `timeout` overrides a longer (or no) client timeout, as
    // rsync's `rsync_module` does; a shorter client one stays, so this
    // side's keepalives come often enough for the client's watchdog.
    let t = u64::try_from(mint(cfg, module, "timeout")).unwrap_or(0);
    if t > 0 && (opts.timeout == 0 || t < opts.timeout) {
        opts.timeout = t;
    }
    confine_option_paths(&mut opts)?;
    opts.daemon.relay_errors = true;
    Ok(opts)
}

/// Paths inside the client's options are the daemon's paths too
/// (`--temp-dir`, `--partial-dir`, `--backup-dir`, `--link-dest` and its
/// kin, `--files-from`, `--include-from`/`--exclude-from` and merge-file
/// rules): each must stay inside the module, like the operands (rsync's
/// daemon rewrites them with `sanitize_path`; resync refuses). The rescan
/// manifest lives outside any module, so a daemon session never uses one
/// and `--manifest-dir` is refused.
fn confine_option_paths(opts: &mut Options) -> Result<(), (i32, String)> {
    use crate::filter::FilterArg;
    use std::os::unix::ffi::OsStrExt;
    // Directories for the destination are relative to it (rsync), so
    // `--link-dest=../prev` is fine while it stays in the module.
    let dest: Vec<u8> = if opts.sender {
        Vec::new()
    } else {
        opts.dest
            .as_deref()
            .map(|d| d.as_bytes().to_vec())
            .unwrap_or_default()
    };
    let refuse_in = |what: &str, base: &[u8], p: &[u8]| -> Result<(), (i32, String)> {
        if access::stays_inside(base, p) {
            return Ok(());
        }
        Err((
            exit::SYNTAX,
            format!(
                "resync: [server] {what} outside the module refused: {}",
                String::from_utf8_lossy(p)
            ),
        ))
    };
    let refuse = |what: &str, p: &[u8]| refuse_in(what, b"", p);
    if opts.manifest_dir.is_some() {
        return Err((
            exit::SYNTAX,
            "resync: [server] --manifest-dir is refused by a daemon".into(),
        ));
    }
    opts.no_manifest = true;
    for (what, v) in [
        ("--temp-dir", opts.temp_dir.as_deref().map(str::as_bytes)),
        (
            "--partial-dir",
            opts.partial_dir.as_deref().map(str::as_bytes),
        ),
        (
            "--backup-dir",
            opts.backup_dir.as_deref().map(|p| p.as_bytes()),
        ),
    ] {
        if let Some(p) = v {
            refuse_in(what, &dest, p)?;
        }
    }
    if let Some(p) = opts.files_from.as_deref() {
        refuse("--files-from", p.as_bytes())?;
    }
    for b in &opts.basis_dirs {
        refuse_in(
            "--link-dest/--copy-dest/--compare-dest",
            &dest,
            b.as_bytes(),
        )?;
    }
    for f in &opts.filters {
        match f {
            FilterArg::IncludeFrom(p) | FilterArg::ExcludeFrom(p) => {
                refuse("--include-from/--exclude-from", p.as_bytes())?
            }
            FilterArg::Rule(r) => {
                let r = r.as_bytes();
                let merge = r.starts_with(b".")
                    || r.starts_with(b":")
                    || r.starts_with(b"merge")
                    || r.starts_with(b"dir-merge");
                if merge {
                    let file = r.rsplit(|&b| b == b' ' || b == b'_').next().unwrap_or(r);
                    refuse("merge file", file)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::FilterArg;

    fn args(v: &[&str]) -> StartArgs {
        let raw: Vec<Vec<u8>> = v.iter().map(|a| a.as_bytes().to_vec()).collect();
        split_start(&raw).unwrap()
    }

    #[test]
    fn start_is_split_at_the_first_lone_dot() {
        let s = args(&["--server", "-r", "--exclude=.", ".", "mod/a", "mod/."]);
        assert_eq!(s.options, vec!["--server", "-r", "--exclude=."]);
        assert_eq!(s.paths, vec![b"mod/a".to_vec(), b"mod/.".to_vec()]);
        assert!(split_start(&[b"-r".to_vec(), b".".to_vec()]).is_err());
        assert!(split_start(&[b"--server".to_vec()]).is_err());
    }

    #[test]
    fn a_path_that_looks_like_an_option_stays_a_path() {
        let cfg = Config::parse("[m]\npath = /x\nrefuse options = delete checksum\n").unwrap();
        let m = cfg.module("m").unwrap();
        let st = args(&["--server", "--sender", ".", "m/-c", "m/--delete"]);
        let rel = [b"-c".to_vec(), b"--delete".to_vec()];
        let o = session_options(&cfg, m, &st, &rel, vec![], access::AuthRule::Default).unwrap();
        assert!(!o.checksum);
        assert_eq!(o.delete, crate::options::Delete::Off);
        let mut operands = o.sources.clone();
        operands.extend(o.dest.clone());
        assert!(operands.iter().any(|p| p == "./-c"), "{operands:?}");
        assert!(operands.iter().any(|p| p == "./--delete"), "{operands:?}");
    }

    #[test]
    fn a_module_timeout_bounds_the_clients_as_rsyncs_does() {
        let cfg = Config::parse("[m]\npath = /x\ntimeout = 60\n[n]\npath = /x\n").unwrap();
        let (m, n) = (cfg.module("m").unwrap(), cfg.module("n").unwrap());
        let timeout = |module, client: &str| {
            let st = args(&["--server", "--sender", client, ".", "m/"]);
            session_options(
                &cfg,
                module,
                &st,
                &[vec![]],
                vec![],
                access::AuthRule::Default,
            )
            .unwrap()
            .timeout
        };
        assert_eq!(timeout(m, "--timeout=0"), 60);
        assert_eq!(timeout(m, "--timeout=600"), 60);
        assert_eq!(timeout(m, "--timeout=10"), 10);
        assert_eq!(timeout(n, "--timeout=10"), 10);
        assert_eq!(timeout(n, "-r"), 0);
    }

    #[test]
    fn session_options_put_daemon_rules_first_and_apply_incoming_chmod() {
        let cfg = Config::parse(
            "[m]\npath = /x\nread only = no\nexclude = *.secret\nfilter = - core\n\
             incoming chmod = Fo-w\n[ro]\npath = /x\n[wo]\npath = /x\nwrite only = yes\n\
             read only = no\n",
        )
        .unwrap();
        let m = cfg.module("m").unwrap();
        let f = crate::remote::access::module_filters(&cfg, m).unwrap();
        assert_eq!(
            f,
            vec![
                FilterArg::Rule("- core".into()),
                FilterArg::Exclude("*.secret".into())
            ]
        );
        let st = args(&["--server", "-r", "--include=*.secret", ".", "m/d"]);
        let o =
            session_options(&cfg, m, &st, &[b"d".to_vec()], f, access::AuthRule::Default).unwrap();
        assert_eq!(o.filters[0], FilterArg::Rule("- core".into()));
        assert_eq!(o.filters[1], FilterArg::Exclude("*.secret".into()));
        assert_eq!(o.filters[2], FilterArg::Include("*.secret".into()));
        assert_eq!(o.chmod, vec!["Fo-w".to_string()]);
        assert!(o.recursive && !o.sender);
        assert_eq!(o.dest.as_deref(), Some(std::ffi::OsStr::new("d")));
        // A pull gets no incoming chmod; read only / write only by direction.
        let pull = args(&["--server", "--sender", ".", "m/"]);
        let o =
            session_options(&cfg, m, &pull, &[vec![]], vec![], access::AuthRule::Default).unwrap();
        assert!(o.chmod.is_empty() && o.sender);
        let ro = cfg.module("ro").unwrap();
        let push = args(&["--server", ".", "ro/"]);
        let e = session_options(
            &cfg,
            ro,
            &push,
            &[vec![]],
            vec![],
            access::AuthRule::Default,
        )
        .unwrap_err();
        assert_eq!(e, (1, "ERROR: module is read only".to_string()));
        assert!(
            session_options(
                &cfg,
                ro,
                &pull,
                &[vec![]],
                vec![],
                access::AuthRule::Default
            )
            .is_ok()
        );
        // `auth users = alice:rw` makes a read-only module writable for her.
        assert!(
            session_options(
                &cfg,
                ro,
                &push,
                &[vec![]],
                vec![],
                access::AuthRule::ReadWrite
            )
            .is_ok()
        );
        let e = session_options(
            &cfg,
            m,
            &st,
            &[b"d".to_vec()],
            vec![],
            access::AuthRule::ReadOnly,
        );
        assert_eq!(e.unwrap_err().1, "ERROR: module is read only");
        let wo = cfg.module("wo").unwrap();
        let e = session_options(
            &cfg,
            wo,
            &pull,
            &[vec![]],
            vec![],
            access::AuthRule::Default,
        )
        .unwrap_err();
        assert_eq!(e, (1, "ERROR: module is write only".to_string()));
    }

    #[test]
    fn option_paths_must_stay_in_the_module() {
        let cfg = Config::parse("[m]\npath = /x\nread only = no\n").unwrap();
        let m = cfg.module("m").unwrap();
        let run = |extra: &str| {
            let st = args(&["--server", "-r", extra, ".", "m/d"]);
            session_options(
                &cfg,
                m,
                &st,
                &[b"d".to_vec()],
                vec![],
                access::AuthRule::Default,
            )
        };
        for bad in [
            "--temp-dir=/tmp",
            "--partial-dir=../../p",
            "--backup-dir=/etc",
            "--link-dest=../../x",
            "--backup-dir=../../b",
            "--files-from=/etc/passwd",
            "--exclude-from=/etc/shadow",
            "--filter=. /etc/rules",
            "--filter=merge,- ../x",
            "--manifest-dir=/var",
        ] {
            let e = run(bad).unwrap_err();
            assert_eq!(e.0, 1, "{bad}");
        }
        for good in [
            "--temp-dir=tmp",
            "--partial-dir=.p",
            "--filter=. rules",
            "--link-dest=../prev",
            "-v",
        ] {
            let o = run(good).unwrap();
            assert!(o.no_manifest, "{good}");
        }
    }
}
