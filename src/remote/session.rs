//! One connection after the handshake: a frame writer shared by the threads
//! that send, a reader thread that sorts incoming messages by who consumes
//! them, and the connection's fatal-error state.
//!
//! Why a reader thread: each side writes (file list, requests, data) while
//! the peer writes too; reading on its own thread means neither side can
//! stall the other by leaving a pipe full (`docs/PROTOCOL.md`, "Pipelining").

use super::conn::{FrameReader, FrameWriter, RecvError};
use super::pipe::{PipeReceiver, PipeSender, pipe};
use super::proto::Msg;
use super::timeout::Activity;
use crate::exit;
use crate::report;
use std::io::Write;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender};
use std::sync::{Arc, Mutex};

/// Frames of file data buffered between the reader thread and the receiver's
/// data thread at most (each ≤ 1 MiB): bounds the receiver's memory when the
/// disk is slower than the link.
const DATA_QUEUE: usize = 64;

/// The sending half of a connection and its state, shared by every thread
/// of one side.
pub struct Link {
    w: Mutex<Option<FrameWriter>>,
    /// rsync's role name for messages (`sender`, `Receiver`, `receiver`).
    pub role: &'static str,
    code: Mutex<Option<i32>>,
    sent: Arc<AtomicU64>,
    received: Arc<AtomicU64>,
    /// The transport's writing activity (for `Keepalive`).
    out: Arc<Activity>,
    /// `Goodbye` or `Error` was queued: nothing may follow, not even a
    /// `Keepalive`.
    done_talking: AtomicBool,
    /// The whole-file checksum of this connection's `FileEnd`s.
    pub sum: super::filesum::Kind,
}

impl Link {
    /// A link writing to `w`; `r` is the reader whose byte count it reports.
    pub fn new(w: FrameWriter, r: &FrameReader, role: &'static str) -> Arc<Link> {
        Arc::new(Link {
            sum: super::filesum::Kind::from_caps(w.caps()),
            sent: w.sent_counter(),
            received: r.received_counter(),
            out: w.activity(),
            done_talking: AtomicBool::new(false),
            w: Mutex::new(Some(w)),
            role,
            code: Mutex::new(None),
        })
    }

    /// Queue one message; false when the connection is gone (the reader
    /// thread reports why).
    pub fn send(&self, m: &Msg) -> bool {
        let mut g = self.w.lock().unwrap();
        if matches!(m, Msg::Goodbye { .. } | Msg::Error { .. }) {
            self.done_talking.store(true, Ordering::Relaxed);
        }
        let ok = g.as_mut().is_some_and(|w| w.send(m).is_ok());
        if !ok {
            self.broken();
        }
        ok
    }

    /// Send an error line to the peer as a `Log` of level 1 and flush it,
    /// unless the conversation is over (a `Log` after `Goodbye` would be a
    /// protocol error there): a daemon session's relay of its stderr.
    pub fn relay_error(&self, line: &str) -> bool {
        let mut g = self.w.lock().unwrap();
        if self.done_talking.load(Ordering::Relaxed) {
            return false;
        }
        let mut text = line.as_bytes().to_vec();
        text.truncate(super::proto::MAX_TEXT);
        g.as_mut()
            .is_some_and(|w| w.send(&Msg::Log { level: 1, text }).is_ok() && w.flush_soon().is_ok())
    }

    /// Push queued messages to the transport.
    pub fn flush(&self) -> bool {
        let mut g = self.w.lock().unwrap();
        let ok = g.as_mut().is_some_and(|w| w.flush().is_ok());
        if !ok {
            self.broken();
        }
        ok
    }

    /// [`Link::flush`] without waiting for compression to catch up
    /// ([`FrameWriter::flush_soon`]): for the engine's flushes mid-transfer.
    pub fn flush_soon(&self) -> bool {
        let mut g = self.w.lock().unwrap();
        let ok = g.as_mut().is_some_and(|w| w.flush_soon().is_ok());
        if !ok {
            self.broken();
        }
        ok
    }

    /// `--timeout` and `--bwlimit` for this side: pace the transport's
    /// writes to `bwlimit` KiB/s, and send a `Keepalive` whenever nothing
    /// was written for half of `timeout` seconds, so the peer's timeout
    /// never fires while this side is alive but busy (scanning, planning,
    /// writing to disk). 0 turns each off.
    pub fn configure(self: &Arc<Self>, timeout: u64, bwlimit: u64) {
        if let Some(w) = self.w.lock().unwrap().as_ref() {
            w.set_bwlimit(bwlimit);
        }
        if timeout == 0 {
            return;
        }
        let link = Arc::downgrade(self);
        let half = std::time::Duration::from_millis(timeout.saturating_mul(500));
        let tick = (half / 4).clamp(
            std::time::Duration::from_millis(50),
            std::time::Duration::from_secs(1),
        );
        std::thread::spawn(move || {
            loop {
                std::thread::sleep(tick);
                let Some(l) = link.upgrade() else { return };
                if l.out.idle_for() < half || l.out.blocked_for().is_some() {
                    continue;
                }
                // Under the writer's lock, so no Keepalive follows a Goodbye.
                let mut g = l.w.lock().unwrap();
                if l.done_talking.load(Ordering::Relaxed) {
                    return;
                }
                let Some(w) = g.as_mut() else { return };
                if w.send(&Msg::Keepalive).is_err() || w.flush().is_err() {
                    return;
                }
            }
        });
    }

    /// Flush and close the writing direction (the peer sees end of stream).
    pub fn close(&self) {
        if let Some(w) = self.w.lock().unwrap().take() {
            let _ = w.finish();
        }
    }

    /// A write failed: the peer is gone. The reader thread prints the reason
    /// ("connection unexpectedly closed"); the exit code is rsync's 12.
    fn broken(&self) {
        let mut c = self.code.lock().unwrap();
        if c.is_none() {
            *c = Some(exit::STREAM_IO);
        }
    }

    /// A fatal protocol error found here: print it, tell the peer (best
    /// effort) and stop with exit 12.
    pub fn protocol_error(&self, what: &str) {
        if self.set_code(exit::STREAM_IO) {
            let msg = format!("protocol error: {what}");
            report::message(&format!("{msg} [{}]", self.role));
            self.send(&Msg::Error {
                code: exit::STREAM_IO as u8,
                message: msg,
            });
            self.flush();
        }
    }

    /// Record the fatal exit code (the first one wins); true if it was the first.
    pub fn set_code(&self, code: i32) -> bool {
        let mut c = self.code.lock().unwrap();
        if c.is_none() {
            *c = Some(code);
            true
        } else {
            false
        }
    }

    /// The fatal exit code, once the connection failed.
    pub fn failed(&self) -> Option<i32> {
        *self.code.lock().unwrap()
    }

    /// Raw bytes written and read so far (the summary's `sent`/`received`).
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.sent.load(Ordering::Relaxed),
            self.received.load(Ordering::Relaxed),
        )
    }
}

/// Where the reader thread delivers each kind of message.
pub struct Inbox {
    /// File list (`FileBatch`, `FileListEnd`, `IdNames`, list errors): the receiver.
    pub list: Option<Sender<Msg>>,
    /// File data (`Data`, `FileEnd`, `NoSend`, `Done`): the receiver.
    pub data: Option<PipeSender<Msg>>,
    /// Requests (`Request`, `Signature`, `Done`): the sender.
    pub requests: Option<Sender<Msg>>,
    /// `Stats`, `Goodbye`, `Success`: whoever ends the conversation.
    pub control: Sender<Msg>,
}

/// Channels of a receiving side and the inbox feeding them.
pub struct ReceiverChannels {
    /// File-list messages.
    pub list: Receiver<Msg>,
    /// File-data messages.
    pub data: PipeReceiver<Msg>,
    /// Control messages.
    pub control: Receiver<Msg>,
}

/// The inbox of a receiving side (file list and data) and its channels.
pub fn receiver_inbox() -> (Inbox, ReceiverChannels) {
    let (lt, lr) = std::sync::mpsc::channel();
    let (dt, dr) = pipe(DATA_QUEUE);
    let (ct, cr) = std::sync::mpsc::channel();
    (
        Inbox {
            list: Some(lt),
            data: Some(dt),
            requests: None,
            control: ct,
        },
        ReceiverChannels {
            list: lr,
            data: dr,
            control: cr,
        },
    )
}

/// The inbox of a sending side (requests) and its channels (requests, control).
pub fn sender_inbox() -> (Inbox, Receiver<Msg>, Receiver<Msg>) {
    let (rt, rr) = std::sync::mpsc::channel();
    let (ct, cr) = std::sync::mpsc::channel();
    (
        Inbox {
            list: None,
            data: None,
            requests: Some(rt),
            control: ct,
        },
        rr,
        cr,
    )
}

/// Start the reader thread: it reads frames until the peer's `Goodbye` and
/// the end of the stream, or a failure (reported here, with the exit code
/// recorded on `link`). Channels close when it ends.
pub fn spawn_reader(
    mut r: FrameReader,
    link: Arc<Link>,
    inbox: Inbox,
) -> std::thread::JoinHandle<()> {
    std::thread::spawn(move || {
        let mut said_goodbye = false;
        let mut list_ended = false;
        loop {
            let m = match r.recv() {
                Ok(m) => m,
                Err(RecvError::Eof { .. }) if said_goodbye => return,
                Err(RecvError::Eof { .. }) => {
                    if link.failed().is_none() || link.failed() == Some(exit::STREAM_IO) {
                        link.set_code(exit::STREAM_IO);
                        report::message(&format!(
                            "connection unexpectedly closed ({} bytes received so far) [{}]",
                            r.bytes_received(),
                            link.role
                        ));
                    }
                    return;
                }
                Err(RecvError::Proto(p)) => {
                    link.protocol_error(&p.to_string());
                    return;
                }
                Err(RecvError::Io(e)) => {
                    if link.set_code(exit::SOCKET_IO) {
                        report::message(&format!("error in socket IO: {e} [{}]", link.role));
                    }
                    return;
                }
            };
            if said_goodbye {
                link.protocol_error("message after Goodbye");
                return;
            }
            let kind = m.kind();
            let delivered = match m {
                Msg::Keepalive => true,
                Msg::Log { level, text } if level <= 2 || level == super::proto::LOG_RAW => {
                    print_log(level, &text);
                    true
                }
                Msg::Error { code, message } => {
                    // The peer's own words, and its exit code.
                    // (An empty message: the peer reported it on its side.)
                    if link.set_code(i32::from(code)) && !message.is_empty() {
                        report::message_bare(&message);
                    }
                    return;
                }
                m @ (Msg::Goodbye { .. } | Msg::Stats { .. }) => {
                    said_goodbye = matches!(m, Msg::Goodbye { .. });
                    let _ = inbox.control.send(m);
                    true
                }
                m @ (Msg::FileBatch { .. }
                | Msg::FileListEnd { .. }
                | Msg::IdNames { .. }
                | Msg::Log { .. }) => {
                    // The list ends once: nothing of it may follow its end.
                    if list_ended {
                        link.protocol_error("file-list message after FileListEnd");
                        return;
                    }
                    list_ended = matches!(m, Msg::FileListEnd { .. });
                    inbox
                        .list
                        .as_ref()
                        .map(|t| {
                            let _ = t.send(m);
                        })
                        .is_some()
                }
                m @ (Msg::Data { .. } | Msg::FileEnd { .. } | Msg::NoSend { .. }) => inbox
                    .data
                    .as_ref()
                    .map(|t| {
                        let _ = t.send(m);
                    })
                    .is_some(),
                m @ (Msg::Request { .. }
                | Msg::Signature { .. }
                | Msg::Success { .. }
                | Msg::FilesFrom { .. }) => inbox
                    .requests
                    .as_ref()
                    .map(|t| {
                        let _ = t.send(m);
                    })
                    .is_some(),
                m @ Msg::Done { .. } => {
                    if let Some(t) = &inbox.data {
                        let _ = t.send(m);
                        true
                    } else if let Some(t) = &inbox.requests {
                        let _ = t.send(m);
                        true
                    } else {
                        false
                    }
                }
                Msg::Hello(_)
                | Msg::Start { .. }
                | Msg::AuthChallenge { .. }
                | Msg::AuthResponse { .. }
                | Msg::Ready => false,
            };
            if !delivered {
                link.protocol_error(&format!("unexpected message 0x{kind:02x}"));
                return;
            }
        }
    })
}

/// A remote output line: level 0 to stdout, others to stderr, as the remote
/// side would have printed it.
fn print_log(level: u8, text: &[u8]) {
    let mut line = text.to_vec();
    if level == super::proto::LOG_RAW {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(&line);
        let _ = o.flush();
        return;
    }
    line.push(b'\n');
    if level == 0 {
        let mut o = std::io::stdout().lock();
        let _ = o.write_all(&line);
        let _ = o.flush();
    } else {
        let _ = std::io::stderr().lock().write_all(&line);
    }
}

/// A `Write` that sends each complete line as a `Log` frame (level 0): a
/// server's stdout lines (itemize, `-v` names) reach the client this way.
pub struct LogLines {
    link: Arc<Link>,
    buf: Vec<u8>,
}

impl LogLines {
    /// Lines go to `link`'s peer.
    pub fn new(link: Arc<Link>) -> LogLines {
        LogLines {
            link,
            buf: Vec::new(),
        }
    }
}

impl Write for LogLines {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(b);
        while let Some(i) = self.buf.iter().position(|&c| c == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=i).collect();
            line.pop();
            line.truncate(super::proto::MAX_TEXT);
            self.link.send(&Msg::Log {
                level: 0,
                text: line,
            });
        }
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A `Write` whose every write reaches the client as one `Log` of level
/// [`super::proto::LOG_RAW`], printed there as it is: a server's progress
/// output (a file's item line and its `\r` progress line in one piece, a
/// `progress2` line without newline).
pub struct RawLog {
    link: Arc<Link>,
}

impl RawLog {
    /// Output goes to `link`'s peer.
    pub fn new(link: Arc<Link>) -> RawLog {
        RawLog { link }
    }
}

impl Write for RawLog {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        let n = b.len().min(super::proto::MAX_TEXT);
        self.link.send(&Msg::Log {
            level: super::proto::LOG_RAW,
            text: b[..n].to_vec(),
        });
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LogLines {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            let _ = self.write(b"\n");
        }
    }
}
