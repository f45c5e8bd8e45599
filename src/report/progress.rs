//! `--progress` / `--info=progress2` lines: rsync's `rprint_progress` body and
//! its `(xfr#N, to-chk=R/T)` tail, for the walk's own printer (local
//! transfers) and for a remote receiver's data thread, which is the one that
//! learns when a file is done.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// Counts transfers and bytes for the progress tails and totals.
struct Counter {
    human: u8,
    /// `--info=progress2`: one line for the whole transfer, rewritten with
    /// `\r` (no newline until the end).
    whole: bool,
    xfers: u64,
    bytes: u64,
    started: Instant,
}

/// Where a transferred entry stands in the list, and the item line to print
/// before its progress line: what a remote receiver's walk hands its data
/// thread, so that the two lines come out together when the file is done.
#[derive(Debug, Clone)]
pub struct Shown {
    /// The item line with its newline (None when the entry has none).
    pub line: Option<Vec<u8>>,
    /// The entry's position in the whole list (for `to-chk=`).
    pub seq: usize,
    /// Entries in the whole list, and their total size (`progress2`).
    pub total: usize,
    pub total_size: u64,
}

impl Counter {
    /// A counter starting now.
    fn new(human: u8, whole: bool) -> Counter {
        Counter {
            human,
            whole,
            xfers: 0,
            bytes: 0,
            started: Instant::now(),
        }
    }

    /// The progress text after a transfer of `size` bytes that took `secs`:
    /// `\r` and the line, with its newline unless `progress2`.
    fn after(&mut self, seq: usize, total: usize, total_size: u64, size: u64, secs: f64) -> String {
        self.xfers += 1;
        self.bytes += size;
        let n = total.max(seq + 1);
        let eol = format!(" (xfr#{}, to-chk={}/{})", self.xfers, n - seq - 1, n);
        if self.whole {
            let secs = self.started.elapsed().as_secs_f64();
            format!("\r{}{eol}", body(self.bytes, total_size, secs, self.human))
        } else {
            format!("\r{}{eol}\n", body(size, size, secs, self.human))
        }
    }
}

/// rsync's `rprint_progress` line body: `%15s %3d%% %7.2f%s %s`.
fn body(ofs: u64, size: u64, secs: f64, human: u8) -> String {
    let pct = if size == 0 || ofs >= size {
        100
    } else {
        (ofs * 100 / size) as u32
    };
    let mut rate = if secs > 0.0 {
        ofs as f64 / secs / 1024.0
    } else {
        0.0
    };
    let mut units = "kB/s";
    if rate > 1024.0 {
        rate /= 1024.0;
        units = "MB/s";
        if rate > 1024.0 {
            rate /= 1024.0;
            units = "GB/s";
        }
    }
    let t = secs as u64;
    format!(
        "{:>15} {:>3}% {:>7.2}{} {:>4}:{:02}:{:02}",
        super::big_num(ofs as i64, human),
        pct,
        rate,
        units,
        t / 3600,
        (t / 60) % 60,
        t % 60
    )
}

/// stdout of one transfer, shared by the walk and (remote) the receiver's
/// data thread: keeps rsync's line order and its `progress2` newline.
///
/// Why: a remote receiver learns that a file is in place on its data thread,
/// after the walk has gone on to later entries. rsync prints a file's name
/// and progress when it receives it, in list order, so the walk's lines for
/// later entries (directories, links, deletions) are held here until the
/// files deferred before them are shown. And as rsync's `rwrite`, a line
/// after a `progress2` line (which has no newline) starts on a new line.
pub struct Screen {
    state: Mutex<State>,
}

struct State {
    out: Box<dyn Write + Send>,
    count: Counter,
    /// A `progress2` line is on screen without its newline.
    active: bool,
    /// Files deferred by the walk, and those shown since.
    sent: usize,
    done: usize,
    /// The walk's text waiting for the first `.0` deferred files.
    held: VecDeque<(usize, Vec<u8>)>,
    /// The data thread is gone: nothing waits any more.
    closed: bool,
}

impl State {
    fn put(&mut self, b: &[u8]) {
        if self.active && !b.is_empty() {
            self.active = false;
            let _ = self.out.write_all(b"\n");
        }
        let _ = self.out.write_all(b);
        let _ = self.out.flush();
    }

    /// A progress line: over the `progress2` line on screen, if any.
    fn progress(&mut self, text: &str) {
        self.active = false;
        self.put(text.as_bytes());
        self.active = self.count.whole;
    }

    fn walk_text(&mut self, b: &[u8], partial: bool) {
        if self.held.is_empty() && (self.closed || self.done >= self.sent) {
            self.put(b);
            self.active |= partial;
        } else {
            self.held.push_back((self.sent, b.to_vec()));
        }
    }

    /// A deferred file's item line and progress line.
    fn shown(&mut self, s: &Shown, size: u64, secs: f64) {
        if let Some(l) = &s.line {
            self.put(l);
        }
        let text = self.count.after(s.seq, s.total, s.total_size, size, secs);
        self.progress(&text);
    }

    fn release(&mut self) {
        while let Some((after, _)) = self.held.front() {
            if *after > self.done && !self.closed {
                break;
            }
            if let Some((_, b)) = self.held.pop_front() {
                self.put(&b);
            }
        }
    }
}

impl Screen {
    /// A screen writing to `out` (stdout, or a server's link to its client).
    pub fn new(out: Box<dyn Write + Send>, human: u8, whole: bool) -> Arc<Screen> {
        Arc::new(Screen {
            state: Mutex::new(State {
                out,
                count: Counter::new(human, whole),
                active: false,
                sent: 0,
                done: 0,
                held: VecDeque::new(),
                closed: false,
            }),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The walk's text: now, or after the files it deferred so far.
    pub fn text(&self, b: &[u8]) {
        self.lock().walk_text(b, false);
    }

    /// The walk's text that the next line must not continue (rsync's
    /// `output_needs_newline`: ` N files...\r` of a listing): that line
    /// starts with a newline. (Held behind deferred files, it is plain text.)
    pub fn partial(&self, b: &[u8]) {
        self.lock().walk_text(b, true);
    }

    /// The walk deferred one file to the data thread (which will call
    /// [`Screen::done`] or [`Screen::failed`] for it).
    pub fn defer(&self) {
        self.lock().sent += 1;
    }

    /// A file the walk itself transferred (local): its progress line.
    pub fn progress(&self, seq: usize, total: usize, total_size: u64, size: u64, secs: f64) {
        let mut st = self.lock();
        let text = st.count.after(seq, total, total_size, size, secs);
        st.progress(&text);
    }

    /// A deferred file of `size` bytes is in place after `secs`: its item
    /// line and progress line, then the walk's text that waited for it.
    pub fn done(&self, s: &Shown, size: u64, secs: f64) {
        let mut st = self.lock();
        st.shown(s, size, secs);
        st.done += 1;
        st.release();
    }

    /// A deferred file that failed (or waits for the redo phase): its item
    /// line only, as without progress.
    pub fn failed(&self, s: &Shown) {
        let mut st = self.lock();
        if let Some(l) = &s.line {
            st.put(l);
        }
        st.done += 1;
        st.release();
    }

    /// A file redone after a failed verification is in place (it was
    /// counted by [`Screen::failed`] in the first phase).
    pub fn redone(&self, s: &Shown, size: u64, secs: f64) {
        self.lock().shown(s, size, secs);
    }

    /// The data thread is gone: write whatever still waits.
    pub fn close(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.release();
    }

    /// The end of the transfer: the `progress2` line's newline.
    pub fn finish(&self) {
        let mut st = self.lock();
        st.closed = true;
        st.release();
        if st.active {
            st.active = false;
            let _ = st.out.write_all(b"\n");
        }
        let _ = st.out.flush();
    }
}

/// The walk's handle on a [`Screen`] as a `Write` (each write is text).
#[derive(Clone)]
pub struct ScreenWriter(pub Arc<Screen>);

impl Write for ScreenWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.text(b);
        Ok(b.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_file_lines_count_transfers_and_what_is_left() {
        let mut c = Counter::new(1, false);
        let a = c.after(1, 5, 0, 3, 0.0);
        assert_eq!(
            a,
            "\r              3 100%    0.00kB/s    0:00:00 (xfr#1, to-chk=3/5)\n"
        );
        let b = c.after(4, 5, 0, 3_000_000, 2.0);
        assert_eq!(
            b,
            "\r      3,000,000 100%    1.43MB/s    0:00:02 (xfr#2, to-chk=0/5)\n"
        );
    }

    #[test]
    fn whole_transfer_lines_have_no_newline() {
        let mut c = Counter::new(0, true);
        let a = c.after(0, 2, 200, 100, 0.0);
        assert!(a.starts_with("\r            100  50%"), "{a:?}");
        assert!(a.ends_with(" (xfr#1, to-chk=1/2)"), "{a:?}");
    }

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);
    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    impl Buf {
        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    fn shown(line: &str, seq: usize, total: usize) -> Shown {
        Shown {
            line: Some(line.as_bytes().to_vec()),
            seq,
            total,
            total_size: 0,
        }
    }

    #[test]
    fn the_walks_lines_wait_for_the_files_deferred_before_them() {
        let buf = Buf::default();
        let sc = Screen::new(Box::new(buf.clone()), 0, false);
        let mut w = ScreenWriter(Arc::clone(&sc));
        w.write_all(b"./\n").unwrap();
        sc.defer();
        w.write_all(b"d/\n").unwrap();
        sc.defer();
        w.write_all(b"d/link -> x\n").unwrap();
        assert_eq!(buf.text(), "./\n");
        sc.done(&shown("a\n", 1, 5), 6, 0.0);
        assert_eq!(
            buf.text(),
            "./\na\n\r              6 100%    0.00kB/s    0:00:00 (xfr#1, to-chk=3/5)\nd/\n"
        );
        sc.failed(&shown("d/b\n", 3, 5));
        assert!(
            buf.text().ends_with("d/\nd/b\nd/link -> x\n"),
            "{}",
            buf.text()
        );
        w.write_all(b"tail\n").unwrap();
        assert!(buf.text().ends_with("d/link -> x\ntail\n"));
    }

    #[test]
    fn a_closed_screen_holds_nothing_back() {
        let buf = Buf::default();
        let sc = Screen::new(Box::new(buf.clone()), 0, false);
        sc.defer();
        sc.text(b"later\n");
        assert_eq!(buf.text(), "");
        sc.close();
        assert_eq!(buf.text(), "later\n");
        sc.defer();
        sc.text(b"more\n");
        assert_eq!(buf.text(), "later\nmore\n");
    }

    #[test]
    fn a_line_after_a_progress2_line_starts_on_a_new_line() {
        let buf = Buf::default();
        let sc = Screen::new(Box::new(buf.clone()), 0, true);
        sc.progress(0, 2, 20, 10, 0.0);
        sc.text(b"next\n");
        sc.progress(1, 2, 20, 10, 0.0);
        sc.finish();
        // (The rates are the whole transfer's so far: not fixed here.)
        let t = buf.text();
        let parts: Vec<&str> = t.split('\r').collect();
        assert_eq!(parts.len(), 3, "{t:?}");
        assert_eq!(parts[0], "");
        assert!(parts[1].starts_with("             10  50% "), "{t:?}");
        assert!(parts[1].ends_with(" (xfr#1, to-chk=1/2)\nnext\n"), "{t:?}");
        assert!(parts[2].starts_with("             20 100% "), "{t:?}");
        assert!(parts[2].ends_with(" (xfr#2, to-chk=0/2)\n"), "{t:?}");
    }
}
