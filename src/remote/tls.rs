//! TLS 1.3 for daemon connections (rustls with the `ring` provider only):
//! the daemon's server config (`tls cert`, `tls key`, optional
//! `tls client ca`), the client's verification (`--ca-file`, else first-use
//! pinning of the server certificate's SHA-256 in `known_hosts`), and
//! [`TlsStream`], one TLS connection shared by a reading and a writing half.
//!
//! Why two halves over one lock rather than a thread that owns the
//! connection: the protocol reads on one thread while it writes on another
//! (docs/PROTOCOL.md, "Pipelining"). rustls' state is held only while
//! encrypting or decrypting, never across a socket call, so each half does
//! its own socket I/O on its own thread; an earlier design moved every byte
//! through a pump thread and a Unix socket pair, which cost two extra
//! copies and about 50k thread switches on a copy of the linux tree.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The TLS exporter label whose output binds a daemon auth response to
/// its TLS session (RFC 8446 §7.5).
pub const EXPORTER_LABEL: &[u8] = b"EXPORTER-resync-daemon-auth";

/// The only crypto provider resync uses (no aws-lc-rs anywhere).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let v: Vec<_> = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read certificate file {}: {e}", path.display()))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
    if v.is_empty() {
        return Err(format!("no certificate in {}", path.display()));
    }
    Ok(v)
}

fn key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path)
        .map_err(|e| format!("cannot read private key {}: {e}", path.display()))
}

fn roots(path: &Path) -> Result<RootCertStore, String> {
    let mut store = RootCertStore::empty();
    for c in certs(path)? {
        store
            .add(c)
            .map_err(|e| format!("bad CA certificate in {}: {e}", path.display()))?;
    }
    Ok(store)
}

/// The daemon's TLS config: TLS 1.3 only; with `client_ca`, every client
/// must present a certificate signed by it.
pub fn server_config(
    cert: &Path,
    key_file: &Path,
    client_ca: Option<&Path>,
) -> Result<Arc<ServerConfig>, String> {
    let b = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?;
    let b = match client_ca {
        Some(ca) => {
            let v = rustls::server::WebPkiClientVerifier::builder_with_provider(
                Arc::new(roots(ca)?),
                provider(),
            )
            .build()
            .map_err(|e| format!("tls client ca {}: {e}", ca.display()))?;
            b.with_client_cert_verifier(v)
        }
        None => b.with_no_client_auth(),
    };
    let cfg = b
        .with_single_cert(certs(cert)?, key(key_file)?)
        .map_err(|e| format!("tls cert/key: {e}"))?;
    Ok(Arc::new(cfg))
}

/// How the client checks the daemon's certificate.
pub enum Trust {
    /// `--ca-file`: the chain must lead to one of these CAs and name the host.
    Ca(PathBuf),
    /// First-use pinning against a `known_hosts` file.
    Pin(Arc<Pin>),
}

/// What the pinning verifier saw; read after the handshake.
#[derive(Debug, Default)]
pub struct PinState {
    /// Fingerprint of the certificate the server presented.
    pub seen: Option<String>,
    /// The pinned fingerprint, when the server's differs from it.
    pub mismatch: Option<String>,
}

/// First-use pinning (ssh's model): the first certificate a `host:port`
/// shows is recorded; later ones must have the same SHA-256 fingerprint.
#[derive(Debug)]
pub struct Pin {
    /// `host:port` as recorded.
    pub key: String,
    /// The pinned fingerprint, if the host is known.
    pub known: Option<String>,
    /// Filled in by the verifier.
    pub state: Mutex<PinState>,
    algs: WebPkiSupportedAlgorithms,
}

impl Pin {
    /// A pin for `key` (`host:port`) with what `known_hosts` says about it.
    pub fn new(key: String, known: Option<String>) -> Pin {
        Pin {
            key,
            known,
            state: Mutex::new(PinState::default()),
            algs: provider().signature_verification_algorithms,
        }
    }
}

/// `SHA256:` and the hex SHA-256 of a certificate (DER), as recorded.
pub fn fingerprint(der: &[u8]) -> String {
    let d = ring::digest::digest(&ring::digest::SHA256, der);
    let mut s = String::from("SHA256:");
    for b in d.as_ref() {
        s.push_str(&format!("{b:02x}"));
    }
    s
}

impl ServerCertVerifier for Pin {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let fp = fingerprint(end_entity);
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.seen = Some(fp.clone());
        match &self.known {
            Some(k) if *k != fp => {
                st.mismatch = Some(k.clone());
                Err(rustls::Error::General(
                    "server certificate fingerprint changed".into(),
                ))
            }
            _ => Ok(ServerCertVerified::assertion()),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algs)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        // The server proves it holds the pinned certificate's key.
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algs)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algs.supported_schemes()
    }
}

/// The client's TLS config: TLS 1.3 only, `trust` for the server, and a
/// client certificate (`--tls-cert`/`--tls-key`) when given.
pub fn client_config(
    trust: &Trust,
    client_cert: Option<(&Path, &Path)>,
) -> Result<Arc<ClientConfig>, String> {
    let b = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| e.to_string())?;
    let b = match trust {
        Trust::Ca(ca) => b.with_root_certificates(roots(ca)?),
        Trust::Pin(p) => b
            .dangerous()
            .with_custom_certificate_verifier(p.clone() as Arc<dyn ServerCertVerifier>),
    };
    let cfg = match client_cert {
        Some((c, k)) => b
            .with_client_auth_cert(certs(c)?, key(k)?)
            .map_err(|e| format!("--tls-cert/--tls-key: {e}"))?,
        None => b.with_no_client_auth(),
    };
    Ok(Arc::new(cfg))
}

/// Run the TLS handshake to its end on `sock` (blocking, bounded by the
/// socket's read timeout if set), so certificate errors are reported before
/// the protocol starts.
pub fn complete_handshake(conn: &mut rustls::Connection, sock: &mut TcpStream) -> io::Result<()> {
    while conn.is_handshaking() {
        conn.complete_io(sock)?;
    }
    // Flush what the handshake left to send (the client's Finished).
    while conn.wants_write() {
        conn.write_tls(sock)?;
    }
    Ok(())
}

/// Client side, after the handshake: wait for the server's first bytes.
/// In TLS 1.3 a server that rejects the client's certificate says so only
/// after the client finished its handshake; reading here turns that alert
/// into a handshake error instead of a closed stream later. The bytes stay
/// buffered in `conn` for [`TlsStream::new`].
pub fn await_first_data(conn: &mut rustls::Connection, sock: &mut TcpStream) -> io::Result<()> {
    loop {
        let st = conn
            .process_new_packets()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        if st.plaintext_bytes_to_read() > 0 || st.peer_has_closed() {
            return Ok(());
        }
        if conn.read_tls(sock)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the daemon closed the connection",
            ));
        }
    }
}

/// How long [`TlsStream::linger`] waits for the peer's close once our side
/// is done.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// The longest a socket call waits before looking at the idle limit again,
/// so a limit switched while it waits takes effect.
const RECHECK: Duration = Duration::from_secs(1);

/// The idle limit in milliseconds (0: none), shared so the daemon can switch
/// from the global `timeout` to the module's once it knows it.
pub type IdleLimit = Arc<AtomicU64>;

/// An [`IdleLimit`] of `d` (`None`: no limit).
pub fn idle_limit(d: Option<Duration>) -> IdleLimit {
    Arc::new(AtomicU64::new(d.map_or(0, |d| d.as_millis() as u64)))
}

/// What the reading and the writing half share.
struct Shared {
    /// The TLS state; held only while encrypting or decrypting, never
    /// across a socket call.
    conn: Mutex<rustls::Connection>,
    /// The socket; read without any lock (one reader), written only under
    /// `out`.
    sock: TcpStream,
    /// The socket-write lock and its ciphertext buffer. Records are taken
    /// out of `conn` only while holding it, so they reach the wire in the
    /// order rustls sealed them.
    out: Mutex<Vec<u8>>,
    /// Set when records were queued by a thread that could not take `out`;
    /// its holder flushes them before it leaves.
    pending: AtomicBool,
    idle: IdleLimit,
    epoch: Instant,
    /// Milliseconds since `epoch` when ciphertext last arrived.
    last_rx: AtomicU64,
    /// The idle limit ended the connection.
    timed_out: AtomicBool,
}

fn tls_err(e: rustls::Error) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, e)
}

fn is_wait(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

impl Shared {
    fn lock(&self) -> std::sync::MutexGuard<'_, rustls::Connection> {
        self.conn.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn limit(&self) -> Option<Duration> {
        match self.idle.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        }
    }

    /// The socket timeout to arm for the current limit.
    fn wait(&self) -> Option<Duration> {
        self.limit().map(|d| d.min(RECHECK))
    }

    /// A socket call timed out: end the connection if the peer has been
    /// silent for the limit. The shutdown makes the reader see end of
    /// stream and writers `EPIPE`.
    fn check_idle(&self) {
        let Some(d) = self.limit() else { return };
        let since = self.epoch.elapsed().as_millis() as u64;
        let last = self.last_rx.load(Ordering::Relaxed);
        if Duration::from_millis(since.saturating_sub(last)) >= d {
            self.timed_out.store(true, Ordering::SeqCst);
            let _ = self.sock.shutdown(std::net::Shutdown::Both);
        }
    }

    /// Write `b` to the socket whole, under the socket-write lock (held by
    /// the caller), watching the idle limit while blocked.
    fn send(&self, mut b: &[u8], armed: &mut Option<Option<Duration>>) -> io::Result<()> {
        while !b.is_empty() {
            let want = self.wait();
            if *armed != Some(want) {
                self.sock.set_write_timeout(want)?;
                *armed = Some(want);
            }
            match (&self.sock).write(b) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => b = &b[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if is_wait(&e) => self.check_idle(),
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Send what rustls has queued. `block`: wait for the socket-write lock
    /// (a writer); otherwise leave the records to its holder (the reader,
    /// which must never wait on a writer that waits on the peer, or two
    /// peers each with a blocked writer would stop reading each other).
    fn flush_tls(&self, block: bool, armed: &mut Option<Option<Duration>>) -> io::Result<()> {
        let mut block = block;
        loop {
            let mut out = if block {
                self.out.lock().unwrap_or_else(|e| e.into_inner())
            } else {
                match self.out.try_lock() {
                    Ok(g) => g,
                    Err(std::sync::TryLockError::WouldBlock) => return Ok(()),
                    Err(std::sync::TryLockError::Poisoned(e)) => e.into_inner(),
                }
            };
            self.pending.store(false, Ordering::SeqCst);
            loop {
                out.clear();
                {
                    let mut c = self.lock();
                    while c.wants_write() {
                        c.write_tls(&mut *out)?;
                    }
                }
                if out.is_empty() {
                    break;
                }
                self.send(&out, armed)?;
            }
            drop(out);
            if !self.pending.load(Ordering::SeqCst) {
                return Ok(());
            }
            block = false;
        }
    }
}

/// An established TLS connection used from two threads at once: the
/// protocol reads on one ([`TlsReader`]) while it writes on another
/// ([`TlsWriter`]); a clone of this handle tells how the connection ended.
#[derive(Clone)]
pub struct TlsStream(Arc<Shared>);

impl TlsStream {
    /// Wrap a connection whose handshake is complete. Plaintext rustls has
    /// already decrypted (the client waits for the daemon's first bytes)
    /// stays buffered in `conn` and is read first. `idle`: drop the
    /// connection when the peer has sent nothing for that long.
    pub fn new(
        conn: rustls::Connection,
        sock: TcpStream,
        idle: IdleLimit,
    ) -> io::Result<TlsStream> {
        let mut conn = conn;
        conn.process_new_packets().map_err(tls_err)?;
        sock.set_read_timeout(None)?;
        let s = TlsStream(Arc::new(Shared {
            conn: Mutex::new(conn),
            sock,
            out: Mutex::new(Vec::with_capacity(80 << 10)),
            pending: AtomicBool::new(false),
            idle,
            epoch: Instant::now(),
            last_rx: AtomicU64::new(0),
            timed_out: AtomicBool::new(false),
        }));
        s.0.flush_tls(true, &mut None)?;
        Ok(s)
    }

    /// The reading half (one per connection).
    pub fn reader(&self) -> TlsReader {
        TlsReader {
            s: self.0.clone(),
            buf: vec![0; 64 << 10],
            start: 0,
            end: 0,
            eof: false,
            armed: None,
        }
    }

    /// The writing half (one per connection): dropping it sends
    /// `close_notify` and shuts the socket's sending direction down.
    pub fn writer(&self) -> TlsWriter {
        TlsWriter {
            s: self.0.clone(),
            armed: None,
        }
    }

    /// Whether the idle limit ended the connection (the daemon logs it and
    /// exits with rsync's timeout code).
    pub fn timed_out(&self) -> bool {
        self.0.timed_out.load(Ordering::SeqCst)
    }

    /// Once both halves are gone: wait (at most [`CLOSE_GRACE`]) for the
    /// peer to close its side, discarding what it still sends, so closing
    /// our socket with unread bytes does not reset the connection before the
    /// peer has read our last words.
    pub fn linger(&self) {
        if Arc::strong_count(&self.0) != 1 || self.timed_out() {
            return;
        }
        let until = Instant::now() + CLOSE_GRACE;
        let mut buf = [0u8; 16 << 10];
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() || self.0.sock.set_read_timeout(Some(left)).is_err() {
                return;
            }
            match (&self.0.sock).read(&mut buf) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }
}

/// The reading half of a [`TlsStream`]: reads ciphertext from the socket
/// without holding the TLS lock, then decrypts under it.
pub struct TlsReader {
    s: Arc<Shared>,
    /// Ciphertext read from the socket; `start..end` not yet given to rustls.
    buf: Vec<u8>,
    start: usize,
    end: usize,
    /// The peer closed the socket (or reset it).
    eof: bool,
    /// The read timeout set on the socket (None: not set yet).
    armed: Option<Option<Duration>>,
}

impl TlsReader {
    /// Plaintext into `out` from what rustls holds and what is buffered
    /// here; `None` when more ciphertext is needed.
    fn take(&mut self, out: &mut [u8]) -> io::Result<Option<usize>> {
        let mut queued = false;
        let r = {
            let mut c = self.s.lock();
            loop {
                match c.reader().read(out) {
                    Ok(n) => break Some(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    // TCP end without close_notify: end of stream (the
                    // protocol's own framing tells a cut-off transfer).
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => break Some(0),
                    Err(e) => return Err(e),
                }
                if self.start == self.end {
                    break self.eof.then_some(0);
                }
                let mut rd = &self.buf[self.start..self.end];
                let n = c.read_tls(&mut rd)?;
                self.start += n;
                if n == 0 {
                    // close_notify seen: rustls takes no more.
                    self.start = self.end;
                }
                c.process_new_packets().map_err(tls_err)?;
                // A key update or ticket may need an answer.
                queued |= c.wants_write();
            }
        };
        if queued {
            self.s.pending.store(true, Ordering::SeqCst);
            let mut armed = None;
            self.s.flush_tls(false, &mut armed)?;
        }
        Ok(r)
    }
}

impl Read for TlsReader {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            if let Some(n) = self.take(out)? {
                return Ok(n);
            }
            let want = self.s.wait();
            if self.armed != Some(want) {
                self.s.sock.set_read_timeout(want)?;
                self.armed = Some(want);
            }
            match (&self.s.sock).read(&mut self.buf) {
                Ok(0) => self.eof = true,
                Ok(n) => {
                    (self.start, self.end) = (0, n);
                    let t = self.s.epoch.elapsed().as_millis() as u64;
                    self.s.last_rx.store(t, Ordering::Relaxed);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => self.eof = true,
                Err(e) if is_wait(&e) => self.s.check_idle(),
                Err(e) => return Err(e),
            }
        }
    }
}

/// The writing half of a [`TlsStream`]: encrypts under the TLS lock, writes
/// the records to the socket under the socket-write lock only.
pub struct TlsWriter {
    s: Arc<Shared>,
    /// The write timeout set on the socket (None: not set yet).
    armed: Option<Option<Duration>>,
}

impl Write for TlsWriter {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        if b.is_empty() {
            return Ok(0);
        }
        // rustls takes up to its buffer limit (64 KiB) when its queue is
        // empty, which it is after a flush.
        for _ in 0..2 {
            let n = self.s.lock().writer().write(b)?;
            self.s.flush_tls(true, &mut self.armed)?;
            if n > 0 {
                return Ok(n);
            }
        }
        Err(io::ErrorKind::WriteZero.into())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.s.flush_tls(true, &mut self.armed)
    }
}

impl Drop for TlsWriter {
    fn drop(&mut self) {
        self.s.lock().send_close_notify();
        let _ = self.s.flush_tls(true, &mut self.armed);
        let _ = self.s.sock.shutdown(std::net::Shutdown::Write);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_sha256_hex() {
        assert_eq!(
            fingerprint(b"abc"),
            "SHA256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
