//! The compressing writer: the outgoing stream cut into chunks, each chunk
//! one independent zstd frame, compressed on worker threads beside the
//! work that produces the frames, and written to the transport in order.
//!
//! Why independent frames rather than one streaming context: a streaming
//! encoder is one thread's work, and on two cores that thread (zstd's
//! "extDict" path, ~100–200 MB/s here) is slower than a 1 Gbit/s link, so
//! `-z` made transfers slower. Independent chunks compress in parallel, and
//! each can go out compressed or raw (a zstd frame of raw blocks), which is
//! what adaptive compression needs. The reading side is unchanged: a zstd
//! decoder reads concatenated frames as one stream (`docs/PROTOCOL.md`,
//! "Compression").

use std::io::{self, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, channel, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Bytes gathered before they go to a worker as one chunk (one zstd frame).
const CHUNK: usize = 512 << 10;
/// Chunks queued or being compressed at once (bounds memory to a few MiB).
const IN_FLIGHT: usize = 6;
/// Compressing workers: both cores of the target machine.
const WORKERS: usize = 2;
/// zstd's largest block; a raw frame is cut into blocks of at most this.
const BLOCK_MAX: usize = 128 << 10;
/// The level adaptive mode compresses at: zstd's fastest positive level.
const ADAPTIVE_LEVEL: i32 = 1;
/// A flushed chunk at most this large, with nothing in flight, is
/// compressed and written by the caller itself.
///
/// Why: a receiver's requests and a sender's small files are flushed many
/// times a second in a few hundred bytes each; handing each to a worker and
/// then to the ordered writer cost two thread wake-ups per flush, which was
/// most of the context switching of a daemon transfer of the linux tree
/// (~150k switches on the receiving side).
const INLINE_MAX: usize = 32 << 10;

/// When chunks are compressed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `-z`: every chunk, at this zstd level (raw when it does not shrink).
    Always(i32),
    /// No `-z`: at level 1 while the workers keep up; a chunk that finds
    /// them behind (their queue full: compression, not the transport, is
    /// what holds the stream back) goes out raw instead.
    Adaptive,
}

impl Mode {
    /// The zstd level chunks are compressed at when they are compressed.
    fn level(self) -> i32 {
        match self {
            Mode::Always(l) => l,
            Mode::Adaptive => ADAPTIVE_LEVEL,
        }
    }
}

/// One chunk's result, in stream order.
enum Out {
    Zstd(Vec<u8>, Vec<u8>),
    Raw(Vec<u8>),
}

/// One chunk's place in the output order: where its result comes from,
/// whether the transport is flushed after it, and who waits for that.
struct Slot {
    result: Receiver<Out>,
    flush: bool,
    ack: Option<SyncSender<()>>,
}

struct Job {
    data: Vec<u8>,
    compress: Option<i32>,
    reply: SyncSender<Out>,
}

/// The transport, shared by the ordered writer and inline writes, and how
/// many queued chunks are not written yet: an inline write goes out only
/// when that is zero, so the order holds. The count is apart from the lock
/// so that queuing a chunk never waits for the writer's socket write.
struct Sink {
    out: Mutex<Box<dyn Write + Send>>,
    in_flight: AtomicUsize,
}

impl Sink {
    fn lock(&self) -> std::sync::MutexGuard<'_, Box<dyn Write + Send>> {
        self.out.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A writer whose bytes reach `sink` as zstd frames.
pub struct ChunkWriter {
    buf: Vec<u8>,
    sink: Arc<Sink>,
    /// The caller's own compressor, for inline chunks.
    ctx: Option<(i32, zstd::bulk::Compressor<'static>)>,
    /// Bytes were written since the last flush request.
    dirty: bool,
    mode: Mode,
    jobs: Option<SyncSender<Job>>,
    order: Option<SyncSender<Slot>>,
    spare: Receiver<Vec<u8>>,
    workers: Vec<JoinHandle<()>>,
    writer: Option<JoinHandle<io::Result<()>>>,
}

impl ChunkWriter {
    /// Start the workers and the ordered writer over `sink`.
    pub fn new<W: Write + Send + 'static>(sink: W, mode: Mode) -> io::Result<ChunkWriter> {
        let (jobs, job_rx) = sync_channel::<Job>(IN_FLIGHT);
        let job_rx = Arc::new(Mutex::new(job_rx));
        let mut workers = Vec::new();
        for i in 0..WORKERS {
            let rx = Arc::clone(&job_rx);
            workers.push(
                std::thread::Builder::new()
                    .name(format!("zstd-{i}"))
                    .spawn(move || work(&rx))?,
            );
        }
        let (order, order_rx) = sync_channel::<Slot>(IN_FLIGHT);
        let (give, spare) = channel();
        let sink = Arc::new(Sink {
            out: Mutex::new(Box::new(sink)),
            in_flight: AtomicUsize::new(0),
        });
        let out = Arc::clone(&sink);
        let writer = std::thread::Builder::new()
            .name("zstd-out".into())
            .spawn(move || write_out(&out, &order_rx, &give))?;
        Ok(ChunkWriter {
            buf: Vec::with_capacity(CHUNK),
            sink,
            ctx: None,
            dirty: false,
            mode,
            jobs: Some(jobs),
            order: Some(order),
            spare,
            workers,
            writer: Some(writer),
        })
    }

    /// Hand the gathered bytes to a worker; `flush` asks the writer to
    /// flush the transport after this chunk, `ack` to say when it did.
    fn hand_over(&mut self, flush: bool, ack: Option<SyncSender<()>>) -> io::Result<()> {
        if flush
            && self.buf.len() <= INLINE_MAX
            && self.writer.is_some()
            && self.sink.in_flight.load(Ordering::SeqCst) == 0
        {
            return self.write_inline(ack);
        }
        self.sink.in_flight.fetch_add(1, Ordering::SeqCst);
        let next = self
            .spare
            .try_recv()
            .unwrap_or_else(|_| Vec::with_capacity(CHUNK));
        let data = std::mem::replace(&mut self.buf, next);
        let (reply, result) = sync_channel(1);
        let queued = match (&self.order, &self.jobs) {
            (Some(o), Some(j)) => {
                o.send(Slot { result, flush, ack }).is_ok() && submit(j, self.mode, data, reply)
            }
            _ => false,
        };
        if queued {
            return Ok(());
        }
        Err(self.failure())
    }

    /// Compress (or store) the gathered bytes and write them to the
    /// transport on this thread: nothing is queued, so order holds.
    fn write_inline(&mut self, ack: Option<SyncSender<()>>) -> io::Result<()> {
        let data = std::mem::take(&mut self.buf);
        let result = compress(&mut self.ctx, self.mode.level(), data);
        let mut out = self.sink.lock();
        let r = put(&mut **out, result).and_then(|spent| {
            self.buf = spent;
            out.flush()
        });
        drop(out);
        self.buf.clear();
        if let Err(e) = r {
            // Nothing more may go out after a lost chunk.
            let _ = self.stop();
            return Err(e);
        }
        if let Some(a) = ack {
            let _ = a.send(());
        }
        Ok(())
    }

    /// The writer stopped: its error says why.
    fn failure(&mut self) -> io::Error {
        self.stop()
            .err()
            .unwrap_or_else(|| io::ErrorKind::BrokenPipe.into())
    }

    fn stop(&mut self) -> io::Result<()> {
        self.order = None;
        self.jobs = None;
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
        match self.writer.take().map(JoinHandle::join) {
            Some(Ok(r)) => r,
            Some(Err(_)) => Err(io::Error::other("compressing writer panicked")),
            None => Err(io::ErrorKind::BrokenPipe.into()),
        }
    }

    /// Send the rest, flush, and wait until the transport has all of it.
    pub fn finish(mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            self.hand_over(true, None)?;
        }
        self.stop()
    }

    /// Like `flush`, without waiting: the transport gets the bytes as soon
    /// as they are compressed, while the caller goes on producing (a
    /// failure shows on a later call). For the engine's flushes in the
    /// middle of a transfer, which `finish` always follows.
    pub fn flush_soon(&mut self) -> io::Result<()> {
        if !self.dirty {
            return Ok(());
        }
        self.dirty = false;
        self.hand_over(true, None)
    }
}

impl Write for ChunkWriter {
    /// Takes at most what fills the current chunk, so no frame is larger
    /// than [`CHUNK`] (and no frame's window larger than the peer accepts).
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.buf.len());
        self.buf.extend_from_slice(&data[..n]);
        self.dirty = true;
        if self.buf.len() >= CHUNK {
            self.hand_over(false, None)?;
        }
        Ok(n)
    }

    /// Returns once everything written so far is on the transport (and it
    /// was flushed), so a caller may then wait for the peer, or exit.
    fn flush(&mut self) -> io::Result<()> {
        self.dirty = false;
        let (ack, done) = sync_channel(1);
        self.hand_over(true, Some(ack))?;
        if done.recv().is_ok() {
            return Ok(());
        }
        Err(self.failure())
    }
}

/// Queue a chunk for the workers. In adaptive mode a chunk that finds the
/// queue full goes raw: the workers are behind, so compressing it would
/// slow the stream down more than its bytes on the link do.
fn submit(jobs: &SyncSender<Job>, mode: Mode, data: Vec<u8>, reply: SyncSender<Out>) -> bool {
    let job = Job {
        data,
        compress: Some(mode.level()),
        reply,
    };
    match jobs.try_send(job) {
        Ok(()) => true,
        Err(TrySendError::Full(mut job)) => {
            if mode == Mode::Adaptive {
                job.compress = None;
            }
            jobs.send(job).is_ok()
        }
        Err(TrySendError::Disconnected(_)) => false,
    }
}

fn work(jobs: &Mutex<Receiver<Job>>) {
    let mut ctx: Option<(i32, zstd::bulk::Compressor<'static>)> = None;
    loop {
        let job = match jobs.lock().unwrap_or_else(|e| e.into_inner()).recv() {
            Ok(j) => j,
            Err(_) => return,
        };
        let out = match job.compress {
            Some(level) => compress(&mut ctx, level, job.data),
            None => Out::Raw(job.data),
        };
        let _ = job.reply.send(out);
    }
}

fn compress(
    ctx: &mut Option<(i32, zstd::bulk::Compressor<'static>)>,
    level: i32,
    data: Vec<u8>,
) -> Out {
    if ctx.as_ref().is_none_or(|(l, _)| *l != level) {
        *ctx = zstd::bulk::Compressor::new(level).ok().map(|c| (level, c));
    }
    let Some((_, c)) = ctx.as_mut() else {
        return Out::Raw(data);
    };
    match c.compress(&data) {
        // Only worth it when it shrinks: incompressible data goes raw.
        Ok(z) if z.len() < data.len() - data.len() / 32 => Out::Zstd(z, data),
        _ => Out::Raw(data),
    }
}

/// The ordered writer: each chunk's result as it comes, to the transport.
fn write_out(
    sink: &Sink,
    order: &Receiver<Slot>,
    give: &std::sync::mpsc::Sender<Vec<u8>>,
) -> io::Result<()> {
    for slot in order {
        let Ok(out) = slot.result.recv() else {
            return Err(io::Error::other("compressing worker stopped"));
        };
        let mut s = sink.lock();
        let spent = put(&mut **s, out)?;
        if slot.flush {
            s.flush()?;
        }
        drop(s);
        sink.in_flight.fetch_sub(1, Ordering::SeqCst);
        if let Some(a) = slot.ack {
            let _ = a.send(());
        }
        let mut spent = spent;
        spent.clear();
        let _ = give.send(spent);
    }
    sink.lock().flush()
}

/// Write one chunk's result to the transport; returns the chunk's buffer
/// for reuse.
fn put(out: &mut dyn Write, result: Out) -> io::Result<Vec<u8>> {
    match result {
        Out::Zstd(z, data) => out.write_all(&z).map(|()| data),
        Out::Raw(data) => write_raw_frame(out, &data).map(|()| data),
    }
}

/// One zstd frame holding `data` as raw blocks (RFC 8878 §3.1.1): a 4-byte
/// magic, a single-segment header with a 4-byte content size, then blocks
/// of at most 128 KiB with 3-byte headers. Written by hand because the zstd
/// library has no "store" level and this costs no copy.
pub fn write_raw_frame<W: Write + ?Sized>(w: &mut W, data: &[u8]) -> io::Result<()> {
    if data.is_empty() {
        return Ok(());
    }
    let size = u32::try_from(data.len()).map_err(|_| io::Error::other("chunk too large"))?;
    let mut head = [0u8; 9];
    head[..4].copy_from_slice(&0xFD2F_B528u32.to_le_bytes());
    // Frame_Content_Size_flag 2 (4 bytes), Single_Segment_flag set.
    head[4] = 0b1010_0000;
    head[5..].copy_from_slice(&size.to_le_bytes());
    w.write_all(&head)?;
    let mut blocks = data.chunks(BLOCK_MAX).peekable();
    while let Some(b) = blocks.next() {
        let last = u32::from(blocks.peek().is_none());
        // Block_Type 0 (raw) in bits 1–2, the size in bits 3–23.
        let h = last | ((b.len() as u32) << 3);
        w.write_all(&h.to_le_bytes()[..3])?;
        w.write_all(b)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// A sink the test can read after the writer is done.
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

    fn roundtrip(mode: Mode, pieces: &[Vec<u8>]) -> (Vec<u8>, usize) {
        let sink = Shared::default();
        let mut w = ChunkWriter::new(sink.clone(), mode).unwrap();
        for (i, p) in pieces.iter().enumerate() {
            w.write_all(p).unwrap();
            match i % 5 {
                0 => w.flush().unwrap(),
                1 | 3 => w.flush_soon().unwrap(),
                _ => {}
            }
        }
        w.finish().unwrap();
        let wire = sink.0.lock().unwrap().clone();
        let mut out = Vec::new();
        zstd::stream::read::Decoder::new(&wire[..])
            .unwrap()
            .read_to_end(&mut out)
            .unwrap();
        (out, wire.len())
    }

    fn pieces() -> Vec<Vec<u8>> {
        let mut v = Vec::new();
        let mut x = 1u64;
        for i in 0..200usize {
            // Text-like pieces (compressible) and random ones, some large.
            let n = (i * 7919) % 300_000 + 1;
            if i % 2 == 0 {
                v.push(
                    format!("line {i} of the log\n")
                        .repeat(n / 20 + 1)
                        .into_bytes(),
                );
            } else {
                v.push(
                    (0..n)
                        .map(|_| {
                            x ^= x << 13;
                            x ^= x >> 7;
                            x ^= x << 17;
                            x as u8
                        })
                        .collect(),
                );
            }
        }
        v
    }

    #[test]
    fn every_mode_reproduces_the_stream_in_order() {
        let p = pieces();
        let want: Vec<u8> = p.concat();
        for mode in [Mode::Always(1), Mode::Always(3), Mode::Adaptive] {
            let (got, _) = roundtrip(mode, &p);
            assert_eq!(got.len(), want.len(), "{mode:?}");
            assert!(got == want, "{mode:?}: stream differs");
        }
    }

    #[test]
    fn small_flushes_between_queued_chunks_keep_the_order() {
        // Tiny flushed pieces (written inline when nothing is queued)
        // right behind large ones (queued to the workers): every byte must
        // still come out in order, in every mode.
        let big = pieces();
        let mut want = Vec::new();
        for mode in [Mode::Always(1), Mode::Adaptive] {
            let sink = Shared::default();
            let mut w = ChunkWriter::new(sink.clone(), mode).unwrap();
            want.clear();
            for (i, b) in big.iter().enumerate().take(60) {
                for k in 0..(i % 4) {
                    let small = format!("request {i}.{k};").into_bytes();
                    w.write_all(&small).unwrap();
                    want.extend_from_slice(&small);
                    w.flush_soon().unwrap();
                }
                w.write_all(b).unwrap();
                want.extend_from_slice(b);
                if i % 3 == 0 {
                    w.flush_soon().unwrap();
                }
            }
            w.finish().unwrap();
            let wire = sink.0.lock().unwrap().clone();
            let got = zstd::stream::decode_all(&wire[..]).unwrap();
            assert_eq!(got.len(), want.len(), "{mode:?}");
            assert!(got == want, "{mode:?}: stream differs");
        }
    }

    #[test]
    fn always_compresses_text_and_stores_noise() {
        let text = vec![b"GET /index.html HTTP/1.1 200 512\n".repeat(100_000)];
        let (got, wire) = roundtrip(Mode::Always(1), &text);
        assert_eq!(got, text[0]);
        assert!(wire * 20 < text[0].len(), "text: {wire} bytes on the wire");
        let noise = vec![pieces()[1].clone(), pieces()[3].clone()];
        let (got, wire) = roundtrip(Mode::Always(1), &noise);
        assert_eq!(got, noise.concat());
        // Raw frames: 9 header bytes per chunk and 3 per 128 KiB block.
        let n = noise.concat().len();
        assert!(wire <= n + 64, "noise: {wire} bytes for {n}");
    }

    #[test]
    fn raw_frame_decodes_at_block_edges() {
        for n in [1, BLOCK_MAX - 1, BLOCK_MAX, BLOCK_MAX + 1, 3 * BLOCK_MAX] {
            let data: Vec<u8> = (0..n).map(|i| (i % 251) as u8).collect();
            let mut wire = Vec::new();
            write_raw_frame(&mut wire, &data).unwrap();
            let got = zstd::stream::decode_all(&wire[..]).unwrap();
            assert_eq!(got, data, "{n} bytes");
        }
    }
}
