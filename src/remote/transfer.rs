//! The four halves of a remote transfer once the handshake is done: the
//! client pushing (sender) or pulling (receiver), the server receiving a
//! push or sending a pull. Each starts the reader thread, runs its side
//! ([`super::sender`] or the engine through [`super::receiver`]), then the
//! closing exchange: the receiver's `Stats`, both sides' `Goodbye`.

use super::conn::{FrameReader, FrameWriter};
use super::pipe::PipeReceiver;
use super::proto::Msg;
use super::receiver::{ListFeed, WireFetch};
use super::session::{self, Link, LogLines};
use crate::exit;
use crate::options::Options;
use crate::report::{self, Stats, TypeCounts};
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Instant;

/// How a client's side of the transfer ended.
pub enum End {
    /// Finished; the exit code (not yet reported).
    Done(i32),
    /// A failure already reported.
    Failed(i32),
    /// The connection closed before the end (N bytes received).
    Closed(u64),
}

/// The client of a push: send the list and the data, then print the
/// receiver's counters.
pub fn push(
    opts: &Options,
    r: FrameReader,
    w: FrameWriter,
    role: &'static str,
    start: Instant,
) -> End {
    let (inbox, requests, control) = session::sender_inbox();
    let link = Link::new(w, &r, role);
    link.configure(opts.timeout, opts.bwlimit);
    let reader = session::spawn_reader(r, Arc::clone(&link), inbox);
    let (code, taken) = super::sender::run(opts, &link, requests, &control);
    let (stats, peer) = closing(&link, &control, code, taken);
    let _ = reader.join();
    end(opts, &link, code, peer, stats, start)
}

/// The client of a pull: run the engine on the sender's list and data.
pub fn pull(
    opts: &Options,
    r: FrameReader,
    w: FrameWriter,
    role: &'static str,
    start: Instant,
) -> End {
    let (inbox, ch) = session::receiver_inbox();
    let link = Link::new(w, &r, role);
    link.configure(opts.timeout, opts.bwlimit);
    let reader = session::spawn_reader(r, Arc::clone(&link), inbox);
    // A local --files-from list is the remote sender's to use.
    let sent = match opts.files_from.as_deref() {
        Some(ff) if super::args::remote_files_from(ff.as_bytes()).is_none() => {
            send_files_from(&link, ff)
        }
        _ => Ok(()),
    };
    let (code, stats) = match sent {
        Ok(()) => receive(opts, &link, ch.list, ch.data, None),
        Err(c) => (c, None),
    };
    let (_, peer) = closing(&link, &ch.control, code, Vec::new());
    let _ = reader.join();
    end(opts, &link, code, peer, stats, start)
}

/// `resync --server` receiving a push: the engine writes the destination,
/// its stdout lines go to the client as `Log` frames.
pub fn serve_receiver(opts: &Options, r: FrameReader, w: FrameWriter, role: &'static str) -> i32 {
    let (inbox, ch) = session::receiver_inbox();
    let link = Link::new(w, &r, role);
    link.configure(opts.timeout, opts.bwlimit);
    let reader = session::spawn_reader(r, Arc::clone(&link), inbox);
    relay_errors(opts, &link);
    let out = LogLines::new(Arc::clone(&link));
    // A push's --files-from=:PATH is read here, for the client's sender.
    let sent = match opts.files_from.as_deref() {
        Some(ff) => send_files_from(&link, ff),
        None => Ok(()),
    };
    let (code, stats) = match sent {
        Ok(()) => receive(opts, &link, ch.list, ch.data, Some(Box::new(out))),
        Err(c) => (c, None),
    };
    if let Some(s) = &stats {
        link.send(&Msg::Stats { values: to_wire(s) });
    }
    report::set_relay(None);
    let _ = closing(&link, &ch.control, code, Vec::new());
    let _ = reader.join();
    server_code(&link, code)
}

/// `resync --server --sender` for a pull: scan and send.
pub fn serve_sender(opts: &Options, r: FrameReader, w: FrameWriter, role: &'static str) -> i32 {
    let (inbox, requests, control) = session::sender_inbox();
    let link = Link::new(w, &r, role);
    link.configure(opts.timeout, opts.bwlimit);
    let reader = session::spawn_reader(r, Arc::clone(&link), inbox);
    relay_errors(opts, &link);
    let (code, taken) = super::sender::run(opts, &link, requests, &control);
    report::set_relay(None);
    let _ = closing(&link, &control, code, taken);
    let _ = reader.join();
    server_code(&link, code)
}

/// In a daemon's session, this side's error lines (rsync's `FERROR`/
/// `FWARNING`) go to the client as `Log` frames: over ssh the server's
/// stderr is the client's, through the daemon it is not.
fn relay_errors(opts: &Options, link: &Arc<Link>) {
    if opts.daemon.relay_errors {
        let l = Arc::clone(link);
        report::set_relay(Some(Box::new(move |line| l.relay_error(line))));
    }
}

/// Read the `--files-from` list `file` (`-`: stdin) and send it to the
/// sender as `FilesFrom` pieces. An unreadable list is reported here and
/// ends the transfer with rsync's code (the peer is told to stop quietly).
fn send_files_from(link: &Link, file: &std::ffi::OsStr) -> Result<(), i32> {
    let data = match crate::engine::read_files_from(file) {
        Ok(d) if d.len() <= super::proto::MAX_FILES_FROM => d,
        Ok(_) => {
            let e = std::io::Error::from_raw_os_error(libc::EFBIG);
            return Err(list_failed(link, file, &e));
        }
        Err(e) => return Err(list_failed(link, file, &e)),
    };
    const PIECE: usize = 64 << 10;
    let mut pieces = data.chunks(PIECE).peekable();
    if pieces.peek().is_none() {
        link.send(&Msg::FilesFrom {
            last: true,
            piece: Vec::new(),
        });
    }
    while let Some(p) = pieces.next() {
        link.send(&Msg::FilesFrom {
            last: pieces.peek().is_none(),
            piece: p.to_vec(),
        });
    }
    link.flush();
    Ok(())
}

/// rsync's message for an unreadable `--files-from` list; the peer stops
/// with the code.
fn list_failed(link: &Link, file: &std::ffi::OsStr, e: &std::io::Error) -> i32 {
    report::message(&crate::engine::files_from_error(file, e));
    let c = exit::SYNTAX;
    if link.set_code(c) {
        link.send(&Msg::Error {
            code: c as u8,
            message: String::new(),
        });
        link.flush();
    }
    c
}

/// A server's exit code; a fatal one gets rsync's closing line on the
/// server's stderr (the client reports the transfer's own result).
fn server_code(link: &Link, code: i32) -> i32 {
    match link.failed() {
        Some(c) => {
            report::exit_message(c, link.role);
            c
        }
        None => code,
    }
}

/// Run the engine as the receiver; the exit code and its counters (None
/// when it stopped before the transfer, e.g. an unusable destination).
fn receive(
    opts: &Options,
    link: &Arc<Link>,
    list: Receiver<Msg>,
    data: PipeReceiver<Msg>,
    out: Option<Box<dyn Write + Send>>,
) -> (i32, Option<Stats>) {
    let push = out.is_some();
    // rsync's receiving side times out in its generator process.
    super::timeout::set_role("generator");
    let feed = ListFeed::new(opts, list, Arc::clone(link));
    if opts.list_only {
        return list_only(opts, link, feed, &data, out);
    }
    let progress = (opts.progress || opts.progress2) && !opts.quiet;
    let sink: Box<dyn Write + Send> = match out {
        // A server's progress output reaches the client as it is written.
        Some(_) if progress => Box::new(super::session::RawLog::new(Arc::clone(link))),
        Some(o) => o,
        None => Box::new(std::io::stdout()),
    };
    let screen = crate::report::Screen::new(sink, crate::engine::human_level(opts), opts.progress2);
    let fscreen = progress.then(|| Arc::clone(&screen));
    let fopts = opts.clone();
    let flink = Arc::clone(link);
    let ffeed = Arc::clone(&feed);
    let recv = crate::engine::RemoteRecv {
        feed: feed.clone(),
        fetch: Box::new(move |rx| {
            let f = WireFetch::new(&fopts, flink, data, rx, fscreen);
            Box::new(if fopts.remove_source_files {
                f.with_success(ffeed)
            } else {
                f
            })
        }),
        screen,
        push,
    };
    match crate::engine::receive(opts.clone(), recv) {
        Ok((code, stats)) => {
            feed.check_consumed();
            (code, Some(stats))
        }
        Err(code) => {
            // Reported here already; the peer stops without a message.
            if link.set_code(code) {
                link.send(&Msg::Error {
                    code: code as u8,
                    message: String::new(),
                });
                link.flush();
            }
            (code, None)
        }
    }
}

/// `--list-only` (a pull without destination too): print the sender's list
/// instead of transferring, then end both request phases with nothing
/// requested.
fn list_only(
    opts: &Options,
    link: &Arc<Link>,
    feed: Arc<ListFeed>,
    data: &PipeReceiver<Msg>,
    out: Option<Box<dyn Write + Send>>,
) -> (i32, Option<Stats>) {
    let mut out: Box<dyn Write + Send> = out.unwrap_or_else(|| Box::new(std::io::stdout()));
    let (code, stats) = crate::engine::list_remote(opts, feed.clone(), &mut out);
    drop(out);
    feed.check_consumed();
    for phase in [0, 1] {
        if link.failed().is_some() {
            break;
        }
        link.send(&Msg::Done { phase });
        link.flush();
        match data.recv() {
            Ok(Msg::Done { phase: p }) if p == phase => {}
            Ok(_) => link.protocol_error("file data without a request"),
            Err(_) => break,
        }
    }
    match link.failed() {
        Some(c) => (c, None),
        None => (code, Some(stats)),
    }
}

/// Send our `Goodbye`, then wait for the peer's (and the receiver's `Stats`
/// before it); close our direction. Returns the stats and the peer's code.
/// `taken`: control messages the sender already read (see
/// [`super::sender::run`]).
fn closing(
    link: &Link,
    control: &Receiver<Msg>,
    code: i32,
    taken: Vec<Msg>,
) -> (Option<Stats>, Option<i32>) {
    if link.failed().is_none() {
        link.send(&Msg::Goodbye { code: code as u8 });
        link.flush();
    }
    let mut stats = None;
    let mut peer = None;
    let ended = taken.iter().any(|m| matches!(m, Msg::Goodbye { .. }));
    let later = std::iter::from_fn(|| if ended { None } else { control.recv().ok() });
    for m in taken.into_iter().chain(later) {
        match m {
            Msg::Stats { values } => stats = from_wire(&values),
            Msg::Goodbye { code } => {
                peer = Some(i32::from(code));
                break;
            }
            _ => {}
        }
    }
    link.close();
    (stats, peer)
}

/// The client's exit code and closing lines (`--stats`, `sent … received …`).
fn end(
    opts: &Options,
    link: &Link,
    code: i32,
    peer: Option<i32>,
    stats: Option<Stats>,
    start: Instant,
) -> End {
    if let Some(c) = link.failed() {
        return End::Failed(report_failed(c, link.role));
    }
    let Some(peer) = peer else {
        return End::Closed(link.bytes().1);
    };
    let code = crate::engine::merge_code(code, peer);
    if let Some(mut s) = stats {
        let (sent, received) = link.bytes();
        s.bytes_sent = sent;
        s.bytes_received = received;
        s.elapsed = start.elapsed().as_secs_f64().max(0.001);
        print_summary(opts, &s);
    }
    End::Done(code)
}

fn report_failed(code: i32, role: &str) -> i32 {
    report::exit_message(code, role);
    code
}

/// `--stats` and the two summary lines, as the local engine prints them.
fn print_summary(opts: &Options, s: &Stats) {
    if opts.quiet {
        return;
    }
    let human = crate::engine::human_level(opts);
    let mut out = std::io::stdout().lock();
    if opts.stats_level() > 1 {
        let _ = writeln!(out);
        for l in report::stats_lines(s, human) {
            let _ = writeln!(out, "{l}");
        }
    }
    if opts.stats_level() > 0 {
        let [a, mut b] = report::summary_lines(s, human);
        if opts.dry_run {
            b.push_str(" (DRY RUN)");
        }
        let _ = writeln!(out);
        let _ = writeln!(out, "{a}");
        let _ = writeln!(out, "{b}");
    }
    let _ = out.flush();
}

fn counts(c: &TypeCounts) -> [u64; 5] {
    [c.reg, c.dir, c.link, c.dev, c.special]
}

fn uncounts(v: &[u64]) -> TypeCounts {
    TypeCounts {
        reg: v[0],
        dir: v[1],
        link: v[2],
        dev: v[3],
        special: v[4],
    }
}

/// The receiver's counters in the `Stats` order of `docs/PROTOCOL.md`:
/// files, created, deleted (5 kinds each: reg, dir, link, dev, special),
/// transferred files, total size, transferred size, literal, matched,
/// file-list time in microseconds.
fn to_wire(s: &Stats) -> Vec<u64> {
    let mut v = Vec::with_capacity(21);
    v.extend(counts(&s.files));
    v.extend(counts(&s.created));
    v.extend(counts(&s.deleted));
    v.extend([
        s.transferred_files,
        s.total_size,
        s.transferred_size,
        s.literal,
        s.matched,
        (s.flist_time * 1e6) as u64,
    ]);
    v
}

fn from_wire(v: &[u64]) -> Option<Stats> {
    if v.len() < 21 {
        return None;
    }
    Some(Stats {
        files: uncounts(&v[0..5]),
        created: uncounts(&v[5..10]),
        deleted: uncounts(&v[10..15]),
        transferred_files: v[15],
        total_size: v[16],
        transferred_size: v[17],
        literal: v[18],
        matched: v[19],
        flist_time: v[20] as f64 / 1e6,
        ..Stats::default()
    })
}
