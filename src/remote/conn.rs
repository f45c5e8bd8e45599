//! A protocol connection over any byte stream: frames in and out, with the
//! streaming zstd layer switched on after the handshake (`docs/PROTOCOL.md`,
//! "Compression").
//!
//! Reading and writing are separate halves ([`FrameReader`], [`FrameWriter`])
//! so the engine can read on one thread while it writes on another, as the
//! protocol's pipelining requires.

use super::bwlimit::BwLimit;
use super::proto::{self, HEADER_LEN, Msg, ProtoError};
use super::timeout::Activity;
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};
use std::sync::{Arc, Mutex};

/// Largest zstd window a peer may make us allocate (2^27 = 128 MiB).
pub const ZSTD_WINDOW_LOG_MAX: u32 = 27;

/// Why reading a message failed.
#[derive(Debug)]
pub enum RecvError {
    /// The stream ended; `clean` when exactly at a frame boundary.
    Eof {
        /// Whether the end fell between two frames.
        clean: bool,
    },
    /// The transport failed.
    Io(io::Error),
    /// The bytes are not a valid frame or message (or corrupt zstd data).
    Proto(ProtoError),
}

impl From<ProtoError> for RecvError {
    fn from(e: ProtoError) -> Self {
        RecvError::Proto(e)
    }
}

/// The reading half: frames from a buffered stream, optionally through zstd.
pub struct FrameReader {
    inner: Box<dyn BufRead + Send>,
    /// Bytes taken from the transport so far, before decompression
    /// (for "N bytes received so far").
    counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
    activity: Arc<Activity>,
    compressed: bool,
}

/// Counts the raw bytes read from the transport and records when a read
/// waits (for `--timeout`).
struct Counting<R> {
    inner: R,
    counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
    activity: Arc<Activity>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.activity.enter();
        let r = self.inner.read(buf);
        self.activity.leave(matches!(r, Ok(n) if n > 0));
        let n = r?;
        self.counter
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }
}

impl FrameReader {
    /// Read frames from `r` (uncompressed until [`FrameReader::start_zstd`]).
    pub fn new<R: Read + Send + 'static>(r: R) -> FrameReader {
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let activity = Activity::new();
        FrameReader {
            inner: Box::new(BufReader::with_capacity(
                64 << 10,
                Counting {
                    inner: r,
                    counter: counter.clone(),
                    activity: Arc::clone(&activity),
                },
            )),
            counter,
            activity,
            compressed: false,
        }
    }

    /// When the transport last delivered bytes and whether a read waits on
    /// it now (the `--timeout` watchdog's input).
    pub fn activity(&self) -> Arc<Activity> {
        Arc::clone(&self.activity)
    }

    /// Raw bytes received from the transport so far.
    pub fn bytes_received(&self) -> u64 {
        self.counter.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A shared counter of [`FrameReader::bytes_received`], readable after
    /// the reader has moved to its own thread.
    pub fn received_counter(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.counter.clone()
    }

    /// From now on the stream is zstd-compressed. Bytes already buffered stay
    /// in the buffer and are decompressed too, so nothing is lost at the switch.
    pub fn start_zstd(&mut self) -> io::Result<()> {
        if self.compressed {
            return Ok(());
        }
        let old = std::mem::replace(&mut self.inner, Box::new(io::empty()));
        let mut d = zstd::stream::read::Decoder::with_buffer(old)?;
        d.window_log_max(ZSTD_WINDOW_LOG_MAX)?;
        self.inner = Box::new(BufReader::with_capacity(64 << 10, d));
        self.compressed = true;
        Ok(())
    }

    /// Fill `buf` completely; `Ok(false)` when the stream ended before the
    /// first byte, an error when it ended inside.
    fn fill(&mut self, buf: &mut [u8]) -> Result<bool, RecvError> {
        let mut got = 0;
        while got < buf.len() {
            match self.inner.read(&mut buf[got..]) {
                Ok(0) => {
                    return if got == 0 {
                        Ok(false)
                    } else {
                        Err(RecvError::Eof { clean: false })
                    };
                }
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.classify(e)),
            }
        }
        Ok(true)
    }

    /// A read error from inside the zstd decoder is corrupt data (exit 12)
    /// or a stream cut inside a zstd frame, not a socket failure.
    fn classify(&self, e: io::Error) -> RecvError {
        if self.compressed {
            match e.kind() {
                io::ErrorKind::UnexpectedEof => return RecvError::Eof { clean: false },
                io::ErrorKind::Other | io::ErrorKind::InvalidData | io::ErrorKind::InvalidInput => {
                    return RecvError::Proto(ProtoError::Invalid("zstd stream"));
                }
                _ => {}
            }
        }
        RecvError::Io(e)
    }

    /// Read the 8-byte magic; `Ok(false)` as soon as a byte differs, so a
    /// short banner from a shell that then waits for input cannot hang us.
    pub fn read_magic(&mut self) -> Result<bool, RecvError> {
        for &want in proto::MAGIC {
            let mut b = [0u8; 1];
            if !self.fill(&mut b)? {
                return Err(RecvError::Eof { clean: false });
            }
            if b[0] != want {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// The next message. The frame length is checked against the bound
    /// before the payload buffer is allocated.
    pub fn recv(&mut self) -> Result<Msg, RecvError> {
        let mut h = [0u8; HEADER_LEN];
        if !self.fill(&mut h)? {
            return Err(RecvError::Eof { clean: true });
        }
        let (kind, len) = proto::parse_header(&h)?;
        // Read without zeroing the buffer first (the length is bounded above).
        let mut payload = Vec::with_capacity(len);
        let got = (&mut self.inner)
            .take(len as u64)
            .read_to_end(&mut payload)
            .map_err(|e| self.classify(e))?;
        if got < len {
            return Err(RecvError::Eof { clean: false });
        }
        Ok(Msg::decode(kind, &payload)?)
    }
}

/// The writing half: frames to a buffered stream, optionally through zstd.
pub struct FrameWriter {
    inner: Sink,
    /// Bytes handed to the transport so far, after compression (the summary's
    /// "sent N bytes").
    counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
    activity: Arc<Activity>,
    limit: Arc<Mutex<Option<BwLimit>>>,
    /// The capabilities agreed in the handshake (0 before it): the writer
    /// carries them to the [`super::session::Link`] built on it.
    caps: u64,
}

/// Counts the raw bytes written to the transport, records when a write is
/// blocked (for `--timeout`) and paces writes for `--bwlimit`.
struct CountingW<W> {
    inner: W,
    counter: std::sync::Arc<std::sync::atomic::AtomicU64>,
    activity: Arc<Activity>,
    limit: Arc<Mutex<Option<BwLimit>>>,
}

impl<W: Write> Write for CountingW<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut limit = self.limit.lock().unwrap_or_else(|e| e.into_inner());
        let buf = match limit.as_ref() {
            Some(l) => &buf[..buf.len().min(l.write_max())],
            None => buf,
        };
        self.activity.enter();
        let r = self.inner.write(buf);
        self.activity.leave(matches!(r, Ok(n) if n > 0));
        let n = r?;
        if let Some(l) = limit.as_mut() {
            l.wrote(n);
        }
        self.counter
            .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

enum Sink {
    Plain(BufWriter<Box<dyn Write + Send>>),
    Zstd(super::zchunk::ChunkWriter),
    /// Only while switching.
    Gone,
}

impl FrameWriter {
    /// Write frames to `w` (uncompressed until [`FrameWriter::start_zstd`]).
    pub fn new<W: Write + Send + 'static>(w: W) -> FrameWriter {
        let counter = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let activity = Activity::new();
        let limit = Arc::new(Mutex::new(None));
        let w = CountingW {
            inner: w,
            counter: counter.clone(),
            activity: Arc::clone(&activity),
            limit: Arc::clone(&limit),
        };
        FrameWriter {
            inner: Sink::Plain(BufWriter::with_capacity(64 << 10, Box::new(w))),
            counter,
            activity,
            limit,
            caps: 0,
        }
    }

    /// Record the capabilities the handshake agreed on.
    pub fn set_caps(&mut self, caps: u64) {
        self.caps = caps;
    }

    /// The capabilities the handshake agreed on (0 before it).
    pub fn caps(&self) -> u64 {
        self.caps
    }

    /// When the transport last took bytes and whether a write is blocked on
    /// it now (the `--timeout` watchdog's and the keepalive's input).
    pub fn activity(&self) -> Arc<Activity> {
        Arc::clone(&self.activity)
    }

    /// `--bwlimit`: from now on, pace what reaches the transport to `kib`
    /// KiB/s (0: unlimited), after compression, as rsync limits its socket.
    pub fn set_bwlimit(&self, kib: u64) {
        *self.limit.lock().unwrap_or_else(|e| e.into_inner()) =
            (kib > 0).then(|| BwLimit::new(kib));
    }

    /// Raw bytes written to the transport so far.
    pub fn bytes_sent(&self) -> u64 {
        self.counter.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// A shared counter of [`FrameWriter::bytes_sent`], readable after the
    /// writer has moved to another thread.
    pub fn sent_counter(&self) -> std::sync::Arc<std::sync::atomic::AtomicU64> {
        self.counter.clone()
    }

    fn out(&mut self) -> &mut dyn Write {
        match &mut self.inner {
            Sink::Plain(w) => w,
            Sink::Zstd(e) => e,
            Sink::Gone => unreachable!("FrameWriter used while switching"),
        }
    }

    /// Write the 8-byte magic that starts each direction.
    pub fn write_magic(&mut self) -> io::Result<()> {
        self.out().write_all(proto::MAGIC)
    }

    /// Queue one message (written at the latest by [`FrameWriter::flush`]).
    pub fn send(&mut self, m: &Msg) -> io::Result<()> {
        // The header and the payload written apart: a Data frame's payload
        // is up to a MiB, and building the frame first would copy it again.
        let (head, payload) = m
            .encode_parts()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let out = self.out();
        out.write_all(&head)?;
        out.write_all(&payload)
    }

    /// Push everything queued to the transport; with zstd, end the current
    /// block so the peer can decode all of it now.
    pub fn flush(&mut self) -> io::Result<()> {
        self.out().flush()
    }

    /// Like [`FrameWriter::flush`], but with compression on it does not wait
    /// for the compressing writer: for flushes in the middle of a transfer
    /// (before waiting on the peer), where [`FrameWriter::finish`] follows.
    pub fn flush_soon(&mut self) -> io::Result<()> {
        match &mut self.inner {
            Sink::Zstd(c) => c.flush_soon(),
            _ => self.flush(),
        }
    }

    /// From now on everything written goes out as zstd frames, compressed
    /// as `mode` says ([`super::zchunk`]). What was queued before is flushed
    /// uncompressed first.
    pub fn start_zstd(&mut self, mode: super::zchunk::Mode) -> io::Result<()> {
        match std::mem::replace(&mut self.inner, Sink::Gone) {
            Sink::Plain(mut w) => {
                w.flush()?;
                self.inner = Sink::Zstd(super::zchunk::ChunkWriter::new(w, mode)?);
            }
            s => self.inner = s,
        }
        Ok(())
    }

    /// End the stream: finish the zstd frame (if any) and flush.
    pub fn finish(mut self) -> io::Result<()> {
        match std::mem::replace(&mut self.inner, Sink::Gone) {
            Sink::Plain(mut w) => w.flush(),
            Sink::Zstd(c) => c.finish(),
            Sink::Gone => Ok(()),
        }
    }
}

/// The writing half of a plain TCP connection that shuts the socket's
/// sending direction down when dropped (a TLS connection's writer,
/// [`super::tls::TlsWriter`], does the same after its `close_notify`).
///
/// Why: the reading half is a clone of the same socket, so closing the
/// writer's descriptor alone does not end the peer's stream; each side
/// waits for the other's end of stream after `Goodbye`, as over the two
/// pipes of a remote shell.
pub struct SocketWriter<S: SocketShutdown>(pub S);

/// A socket whose sending direction can be shut down.
pub trait SocketShutdown: Write {
    /// `shutdown(SHUT_WR)`.
    fn shutdown_write(&self) -> io::Result<()>;
}

impl SocketShutdown for std::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(std::net::Shutdown::Write)
    }
}

impl<S: SocketShutdown> Write for SocketWriter<S> {
    fn write(&mut self, b: &[u8]) -> io::Result<usize> {
        self.0.write(b)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

impl<S: SocketShutdown> Drop for SocketWriter<S> {
    fn drop(&mut self) {
        let _ = self.0.flush();
        let _ = self.0.shutdown_write();
    }
}

#[cfg(test)]
mod tests {
    use super::super::zchunk::Mode;
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A Write that appends to a shared buffer, so the test can read what was
    /// written while the writer is still alive.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn samples() -> Vec<Msg> {
        super::super::proto::tests_samples()
    }

    #[test]
    fn plain_then_zstd_round_trip_with_switch_mid_buffer() {
        let buf = Shared::default();
        let mut w = FrameWriter::new(buf.clone());
        w.write_magic().unwrap();
        w.send(&Msg::Keepalive).unwrap();
        w.start_zstd(Mode::Always(3)).unwrap();
        for m in samples() {
            w.send(&m).unwrap();
        }
        w.flush().unwrap();
        let flushed = buf.0.lock().unwrap().len();
        // A flush makes everything decodable without finishing the stream.
        let bytes = buf.0.lock().unwrap().clone();
        let mut r = FrameReader::new(io::Cursor::new(bytes));
        assert!(r.read_magic().unwrap());
        assert_eq!(r.recv().unwrap(), Msg::Keepalive);
        // The BufReader already holds compressed bytes here: they must survive.
        r.start_zstd().unwrap();
        for m in samples() {
            assert_eq!(r.recv().unwrap(), m);
        }
        assert!(flushed > 8);
        w.finish().unwrap();
    }

    #[test]
    fn compression_shrinks_repetitive_messages() {
        let plain = Shared::default();
        let packed = Shared::default();
        let mut a = FrameWriter::new(plain.clone());
        let mut b = FrameWriter::new(packed.clone());
        b.start_zstd(Mode::Always(3)).unwrap();
        for i in 0..1000 {
            let m = Msg::Log {
                level: 0,
                text: format!(">f+++++++++ linux/drivers/net/file{i}.c").into_bytes(),
            };
            a.send(&m).unwrap();
            b.send(&m).unwrap();
        }
        a.finish().unwrap();
        b.finish().unwrap();
        let (p, z) = (
            plain.0.lock().unwrap().len(),
            packed.0.lock().unwrap().len(),
        );
        assert!(z * 5 < p, "zstd {z} vs plain {p}");
    }

    #[test]
    fn corrupt_zstd_is_a_protocol_error() {
        // A valid zstd stream with its block bytes flipped.
        let buf = Shared::default();
        let mut w = FrameWriter::new(buf.clone());
        w.start_zstd(Mode::Always(3)).unwrap();
        w.send(&Msg::Log {
            level: 0,
            text: (0..4000u32).map(|i| (i * 7 % 251) as u8).collect(),
        })
        .unwrap();
        w.finish().unwrap();
        let mut bytes = buf.0.lock().unwrap().clone();
        let n = bytes.len();
        for b in &mut bytes[8..n - 4] {
            *b ^= 0x5a;
        }
        let mut r = FrameReader::new(io::Cursor::new(bytes));
        r.start_zstd().unwrap();
        match r.recv() {
            Err(RecvError::Proto(_)) => {}
            other => panic!("{other:?}"),
        }
        // Cut inside a zstd frame: an early end, not corruption.
        let mut r = FrameReader::new(io::Cursor::new(vec![0x28, 0xb5, 0x2f, 0xfd, 0x04]));
        r.start_zstd().unwrap();
        assert!(matches!(r.recv(), Err(RecvError::Eof { clean: false })));
    }

    #[test]
    fn eof_is_clean_only_between_frames() {
        let f = Msg::Goodbye { code: 0 }.encode_frame().unwrap();
        let mut r = FrameReader::new(io::Cursor::new(f.clone()));
        assert_eq!(r.recv().unwrap(), Msg::Goodbye { code: 0 });
        assert!(matches!(r.recv(), Err(RecvError::Eof { clean: true })));
        assert_eq!(r.bytes_received(), f.len() as u64);
        let mut r = FrameReader::new(io::Cursor::new(f[..3].to_vec()));
        assert!(matches!(r.recv(), Err(RecvError::Eof { clean: false })));
        let mut r = FrameReader::new(io::Cursor::new(f[..5].to_vec()));
        assert!(matches!(r.recv(), Err(RecvError::Eof { clean: false })));
    }

    #[test]
    fn oversized_frame_header_is_refused_without_reading_on() {
        let mut h = vec![proto::kind::DATA];
        h.extend_from_slice(&u32::MAX.to_le_bytes());
        let mut r = FrameReader::new(io::Cursor::new(h));
        assert!(matches!(
            r.recv(),
            Err(RecvError::Proto(ProtoError::FrameTooLong(u32::MAX)))
        ));
    }
}
