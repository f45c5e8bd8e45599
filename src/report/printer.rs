//! Per-entry stdout lines in rsync's order: itemize / `-v` names, `skipping`
//! notices, `-vv` "is uptodate", and `--progress` / `--info=progress2` lines.

use super::{LineCtx, escape_name, format_line};
use crate::flist::{Entry, Kind};
use crate::options::Options;
use crate::plan::{Action, Item};
use std::io::Write;
use std::time::Instant;

/// Prints the lines of one transfer as the walk produces them.
pub struct Printer<'a> {
    fmt: Option<String>,
    opts: &'a Options,
    human: u8,
    out: std::io::StdoutLock<'static>,
    started: Instant,
    file_start: Instant,
    xfers: u64,
    bytes: u64,
    /// Entries in the whole list and their total size (known up front only
    /// when progress is on, which makes the walk list everything first).
    total: usize,
    total_size: u64,
}

impl<'a> Printer<'a> {
    /// A printer; `fmt` is the item format (`%i %n%L`, `%n%L`, …) if any.
    pub fn new(fmt: Option<String>, opts: &'a Options, human: u8) -> Self {
        Printer {
            fmt,
            opts,
            human,
            out: std::io::stdout().lock(),
            started: Instant::now(),
            file_start: Instant::now(),
            xfers: 0,
            bytes: 0,
            total: 0,
            total_size: 0,
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
        if !self.opts.quiet {
            let _ = writeln!(self.out, "{line}");
        }
    }

    /// Flush, and end the `--info=progress2` line.
    pub fn finish(&mut self) {
        if self.opts.progress2 && self.xfers > 0 {
            let _ = writeln!(self.out);
        }
        let _ = self.out.flush();
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
        let Some(fmt) = &self.fmt else { return };
        if !it.log {
            let vv =
                self.opts.verbose > 1 && self.opts.itemize == 0 && self.opts.out_format.is_none();
            if vv && e.meta.kind == Kind::File && it.action == Action::Nothing {
                let _ = writeln!(
                    self.out,
                    "{} is uptodate",
                    escape_name(e.name(), self.opts.eight_bit_output)
                );
            }
            return;
        }
        let line = format_line(
            fmt,
            &LineCtx {
                entry: e,
                item: it,
                times: self.opts.times,
                eight_bit: self.opts.eight_bit_output,
                human: self.human,
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
        self.xfers += 1;
        let size = e.meta.size;
        self.bytes += size;
        let n = self.total.max(seq + 1);
        let eol = format!(" (xfr#{}, to-chk={}/{})", self.xfers, n - seq - 1, n);
        if self.opts.progress2 {
            let body = self.progress_body(
                self.bytes,
                self.total_size,
                self.started.elapsed().as_secs_f64(),
            );
            let _ = write!(self.out, "\r{body}{eol}");
        } else {
            let body = self.progress_body(size, size, self.file_start.elapsed().as_secs_f64());
            let _ = writeln!(self.out, "\r{body}{eol}");
        }
        let _ = self.out.flush();
    }

    /// rsync's `rprint_progress` line body: `%15s %3d%% %7.2f%s %s`.
    fn progress_body(&self, ofs: u64, size: u64, secs: f64) -> String {
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
            super::big_num(ofs as i64, self.human),
            pct,
            rate,
            units,
            t / 3600,
            (t / 60) % 60,
            t % 60
        )
    }
}
