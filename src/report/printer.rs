//! Per-entry stdout lines in rsync's order: itemize / `-v` names, `skipping`
//! notices, `-vv` "is uptodate", and `--progress` / `--info=progress2` lines.

use super::progress::{Screen, ScreenWriter, Shown};
use super::{LineCtx, escape_name, format_line};
use crate::flist::{Entry, Kind};
use crate::options::Options;
use crate::plan::{Action, Item};
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

/// stdout lines produced by worker tasks (`backed up X to Y`, `sender
/// removed X`). Workers cannot write to stdout themselves while the walk's
/// [`Printer`] holds it, so they queue lines here and the printer writes them
/// before its next line (they belong to the unordered per-file section, as
/// rsync's own lines from its other processes).
#[derive(Clone, Default)]
pub struct Notes(std::sync::Arc<std::sync::Mutex<Vec<String>>>);

impl Notes {
    /// Queue one line (without its newline).
    pub fn push(&self, line: String) {
        self.0.lock().unwrap().push(line);
    }

    fn take(&self) -> Vec<String> {
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// Prints the lines of one transfer as the walk produces them.
pub struct Printer<'a> {
    fmt: Option<String>,
    opts: &'a Options,
    human: u8,
    /// Writes to [`Printer::screen`].
    out: ScreenWriter,
    screen: Arc<Screen>,
    /// `%i` shows `<` (sent) for transfers: the lines of a push, which rsync's
    /// sending client prints.
    sent: bool,
    file_start: Instant,
    /// Entries in the whole list and their total size (known up front only
    /// when progress is on, which makes the walk list everything first).
    total: usize,
    total_size: u64,
    notes: Notes,
}

impl<'a> Printer<'a> {
    /// A printer; `fmt` is the item format (`%i %n%L`, `%n%L`, …) if any.
    pub fn new(fmt: Option<String>, opts: &'a Options, human: u8) -> Self {
        // Not locked for the whole walk: a remote receiver's data thread
        // prints progress lines too.
        let screen = Screen::new(Box::new(std::io::stdout()), human, opts.progress2);
        Printer {
            fmt,
            opts,
            human,
            out: ScreenWriter(Arc::clone(&screen)),
            screen,
            sent: false,
            file_start: Instant::now(),
            total: 0,
            total_size: 0,
            notes: Notes::default(),
        }
    }

    /// Write the lines to `out` instead of stdout (a server sends them to the
    /// client); `sent`: transfers are itemized as sent (`<`), as in a push.
    pub fn with_out(self, out: Box<dyn Write + Send>, sent: bool) -> Self {
        let screen = Screen::new(out, self.human, self.opts.progress2);
        self.with_screen(screen, sent)
    }

    /// Write the lines to `screen`, shared with a remote receiver's data
    /// thread (which prints transfers' lines with their progress).
    pub fn with_screen(mut self, screen: Arc<Screen>, sent: bool) -> Self {
        self.out = ScreenWriter(Arc::clone(&screen));
        self.screen = screen;
        self.sent = sent;
        self
    }

    /// The queue workers write their stdout lines to.
    pub fn notes(&self) -> Notes {
        self.notes.clone()
    }

    /// Write the lines workers queued so far.
    pub fn flush_notes(&mut self) {
        for l in self.notes.take() {
            let mut bytes = super::raw_bytes(&l);
            bytes.push(b'\n');
            let _ = self.out.write_all(&bytes);
        }
    }

    /// Tell the printer the size of the whole list (for `to-chk=` and
    /// `--info=progress2` percentages).
    pub fn set_totals(&mut self, total: usize, total_size: u64) {
        self.total = total;
        self.total_size = total_size;
    }

    /// Write a line as is (headers like `sending incremental file list`);
    /// nothing with `-q`.
    pub fn raw(&mut self, line: &str) {
        self.flush_notes();
        if !self.opts.quiet {
            let _ = writeln!(self.out, "{line}");
        }
    }

    /// Write text as is, without a newline (`--progress`'s list count).
    pub fn text(&mut self, text: &str) {
        self.flush_notes();
        let _ = self.out.write_all(text.as_bytes());
    }

    /// Write text that the next line starts below (see [`Screen::partial`]).
    pub fn partial(&mut self, text: &str) {
        self.flush_notes();
        self.screen.partial(text.as_bytes());
    }

    /// Flush, and end the `--info=progress2` line.
    pub fn finish(&mut self) {
        self.flush_notes();
        self.screen.finish();
    }

    /// rsync's notice for an entry it lists but does not transfer.
    pub fn skip(&mut self, e: &Entry) {
        let _ = writeln!(
            self.out,
            "skipping non-regular file \"{}\"",
            escape_name(e.name(), self.opts.eight_bit_output)
        );
    }

    /// The line for one planned entry, if rsync would print one.
    pub fn item(&mut self, e: &Entry, it: &Item) {
        self.flush_notes();
        if self.fmt.is_none() {
            return;
        }
        let vv = self.opts.verbose > 1 && self.opts.itemize == 0 && self.opts.out_format.is_none();
        // An unchanged file says so with -vv; so does an exact match in a
        // reference directory (rsync's generator prints that line even when
        // the local copy it then makes is itemized too).
        let plain_uptodate = !it.log
            && it.action == Action::Nothing
            && (e.meta.kind == Kind::File || (e.meta.kind != Kind::Dir && it.removable));
        if vv && (plain_uptodate || it.uptodate) {
            let slash = if e.meta.kind == Kind::Dir { "/" } else { "" };
            let _ = writeln!(
                self.out,
                "{}{slash} is uptodate",
                escape_name(e.name(), self.opts.eight_bit_output)
            );
        }
        if vv && !it.log && it.exact_time {
            // -c found the data equal and only the nanoseconds of the mtime
            // are set: rsync's set_file_attrs reports the file as updated.
            let _ = writeln!(
                self.out,
                "{}",
                escape_name(e.name(), self.opts.eight_bit_output)
            );
        }
        if let Some(bytes) = self.item_line(e, it) {
            let _ = self.out.write_all(&bytes);
        }
    }

    /// An item's own line (itemize / `-v` name / `--out-format`) with its
    /// newline, if it has one.
    fn item_line(&self, e: &Entry, it: &Item) -> Option<Vec<u8>> {
        let fmt = self.fmt.as_ref().filter(|_| it.log)?;
        let line = format_line(
            fmt,
            &LineCtx {
                entry: e,
                item: it,
                times: self.opts.times,
                eight_bit: self.opts.eight_bit_output,
                human: self.human,
                deleted: false,
                sent: self.sent,
            },
        );
        let mut bytes = super::raw_bytes(&line);
        bytes.push(b'\n');
        Some(bytes)
    }

    /// A remote transfer's item: its line is printed with its progress line
    /// by the data thread once the file is in place (as rsync's receiver
    /// prints a file's name when it receives it), not now.
    pub fn deferred(&mut self, seq: usize, e: &Entry, it: &Item) -> Shown {
        self.flush_notes();
        self.screen.defer();
        Shown {
            line: self.item_line(e, it),
            seq,
            total: self.total,
            total_size: self.total_size,
        }
    }

    /// The line for a deleted destination entry (`name` relative to the
    /// destination root), as rsync's `log_delete` prints it: the item format
    /// when it has `%i` or `%o`, else `deleting NAME`; only with `-v`,
    /// `--info=del` or an item format.
    pub fn deleted(&mut self, name: &std::path::Path, meta: &crate::flist::Meta) {
        let info = self
            .opts
            .info_level("DEL")
            .unwrap_or((self.opts.verbose > 0) as u8);
        if self.opts.quiet || (self.fmt.is_none() && info == 0) {
            return;
        }
        let fmt = match &self.fmt {
            Some(f) if f.contains("%i") || f.contains("%o") => f.as_str(),
            _ => "deleting %n",
        };
        let entry = Entry {
            paths: crate::flist::Paths::new(name, name),
            meta: crate::flist::Meta { size: 0, ..*meta },
            link_target: None,
            xattrs: None,
            no_recurse: false,
            implied: false,
            skip: false,
            dest: crate::flist::DestProbe::Unknown,
            sums: None,
        };
        let item = Item {
            action: Action::Nothing,
            flags: Default::default(),
            dest: std::path::PathBuf::new(),
            dest_meta: None,
            replace: false,
            mode: 0,
            log: true,
            link: None,
            exact_time: false,
            basis: None,
            uptodate: false,
            removable: false,
        };
        let line = format_line(
            fmt,
            &LineCtx {
                entry: &entry,
                item: &item,
                times: self.opts.times,
                eight_bit: self.opts.eight_bit_output,
                human: self.human,
                deleted: true,
                sent: self.sent,
            },
        );
        let mut bytes = super::raw_bytes(&line);
        bytes.push(b'\n');
        let _ = self.out.write_all(&bytes);
    }

    /// Mark the start of a file's transfer (for its progress rate).
    pub fn begin(&mut self) {
        let _ = self.out.flush();
        self.file_start = Instant::now();
    }

    /// The progress line after a transfer; `seq` is the entry's position in the
    /// list (for `to-chk=`).
    pub fn progress(&mut self, seq: usize, e: &Entry) {
        let secs = self.file_start.elapsed().as_secs_f64();
        self.screen
            .progress(seq, self.total, self.total_size, e.meta.size, secs);
    }
}
