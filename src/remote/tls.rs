//! TLS 1.3 for daemon connections (rustls with the `ring` provider only):
//! the daemon's server config (`tls cert`, `tls key`, optional
//! `tls client ca`), the client's verification (`--ca-file`, else first-use
//! pinning of the server certificate's SHA-256 in `known_hosts`), and the
//! pump that turns one TLS connection into a plain byte stream.
//!
//! Why a pump: a sync rustls connection has one owner, but the protocol code
//! reads on one thread while it writes on another (docs/PROTOCOL.md,
//! "Pipelining"). The pump thread owns the TLS connection and the socket and
//! moves bytes between them and one end of a Unix socket pair; the protocol
//! gets the other end, a full-duplex stream just like the remote shell's
//! pipes.

use crate::sys::daemon::poll;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::os::fd::AsFd;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
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
/// buffered in `conn` for the pump.
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

/// How long a pump whose own side has finished waits for the peer's close.
const CLOSE_GRACE: Duration = Duration::from_secs(5);

/// Why a pump stopped.
#[derive(Debug)]
pub enum PumpEnd {
    /// Both directions finished normally.
    Closed,
    /// Nothing arrived from the peer for the idle limit (`timeout`).
    Idle,
    /// The socket or TLS failed.
    Failed(io::Error),
}

/// The pump's idle limit in milliseconds (0: none), shared so the daemon
/// can switch from the global `timeout` to the module's once it knows it.
pub type IdleLimit = Arc<std::sync::atomic::AtomicU64>;

/// An [`IdleLimit`] of `d` (`None`: no limit).
pub fn idle_limit(d: Option<Duration>) -> IdleLimit {
    Arc::new(std::sync::atomic::AtomicU64::new(
        d.map_or(0, |d| d.as_millis() as u64),
    ))
}

/// Start the pump for an established connection: returns the local end of
/// the stream and the thread, which ends when both directions are closed
/// (or the peer was silent for the idle limit).
pub fn start_pump(
    conn: rustls::Connection,
    sock: TcpStream,
    idle: IdleLimit,
) -> io::Result<(UnixStream, std::thread::JoinHandle<PumpEnd>)> {
    let (ours, theirs) = UnixStream::pair()?;
    let h = std::thread::Builder::new()
        .name("tls-pump".into())
        .spawn(move || match pump(conn, sock, theirs, idle) {
            Ok(e) => e,
            Err(e) => PumpEnd::Failed(e),
        })?;
    Ok((ours, h))
}

fn pump(
    mut conn: rustls::Connection,
    mut sock: TcpStream,
    mut local: UnixStream,
    idle_ms: IdleLimit,
) -> io::Result<PumpEnd> {
    sock.set_nonblocking(true)?;
    local.set_nonblocking(true)?;
    let mut to_local: Vec<u8> = Vec::new();
    let mut buf = vec![0u8; 64 << 10];
    let mut peer_eof = false; // no more plaintext from the peer
    let mut local_eof = false; // the protocol side closed its writing half
    let mut local_shut = false;
    let mut last = Instant::now();
    let mut closed_at: Option<Instant> = None;
    // Plaintext already decrypted before the pump started.
    let n = conn
        .process_new_packets()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?
        .plaintext_bytes_to_read();
    if n > 0 {
        to_local.resize(n, 0);
        conn.reader().read_exact(&mut to_local)?;
    }
    loop {
        if peer_eof && to_local.is_empty() && !local_shut {
            let _ = local.shutdown(std::net::Shutdown::Write);
            local_shut = true;
        }
        if local_shut && local_eof && !conn.wants_write() {
            return Ok(PumpEnd::Closed);
        }
        // Our side is done and its close_notify is out: give the peer a
        // moment to close too, but do not wait on it for ever.
        if local_eof && !conn.wants_write() {
            let t = *closed_at.get_or_insert_with(Instant::now);
            if t.elapsed() >= CLOSE_GRACE {
                return Ok(PumpEnd::Closed);
            }
        }
        let want_sock_read = !peer_eof && to_local.len() < (1 << 20);
        let want_local_read = !local_eof && !conn.wants_write();
        let idle = match idle_ms.load(std::sync::atomic::Ordering::Relaxed) {
            0 => None,
            ms => Some(Duration::from_millis(ms)),
        };
        // Wake at least once a second so a changed limit takes effect.
        let timeout = match idle.map(|d| d.saturating_sub(last.elapsed())) {
            Some(t) => Some(t.min(Duration::from_secs(1))),
            None if local_eof => Some(Duration::from_secs(1)),
            None => None,
        };
        let r = poll(
            &[
                (sock.as_fd(), want_sock_read, conn.wants_write()),
                (local.as_fd(), want_local_read, !to_local.is_empty()),
            ],
            timeout,
        )?;
        let active = r.iter().any(|x| x.read || x.write);
        if !active {
            if let Some(d) = idle {
                if last.elapsed() >= d {
                    return Ok(PumpEnd::Idle);
                }
            }
            continue;
        }
        if r[0].write && conn.wants_write() {
            match conn.write_tls(&mut sock) {
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if local_eof && peer_eof => {
                    let _ = e;
                    return Ok(PumpEnd::Closed);
                }
                Err(e) => return Err(e),
            }
        }
        if r[0].read && want_sock_read {
            match conn.read_tls(&mut sock) {
                Ok(0) => peer_eof = true,
                Ok(_) => {
                    last = Instant::now();
                    let st = conn
                        .process_new_packets()
                        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    let n = st.plaintext_bytes_to_read();
                    if n > 0 {
                        let start = to_local.len();
                        to_local.resize(start + n, 0);
                        conn.reader().read_exact(&mut to_local[start..])?;
                    }
                    if st.peer_has_closed() {
                        peer_eof = true;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionReset => peer_eof = true,
                Err(e) => return Err(e),
            }
        }
        if r[1].write && !to_local.is_empty() {
            match local.write(&to_local) {
                Ok(n) => {
                    to_local.drain(..n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The protocol side is gone: drop what it will not read.
                Err(_) => {
                    to_local.clear();
                    peer_eof = true;
                }
            }
        }
        if r[1].read && want_local_read {
            match local.read(&mut buf) {
                Ok(0) => {
                    local_eof = true;
                    conn.send_close_notify();
                }
                Ok(n) => conn.writer().write_all(&buf[..n])?,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    local_eof = true;
                    conn.send_close_notify();
                }
            }
        }
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
