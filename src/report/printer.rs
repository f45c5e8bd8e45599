//! Per-entry stdout lines in rsync's order: itemize / `-v` names, `skipping`
//! notices, `-vv` "is uptodate", and `--progress` / `--info=progress2` lines.

use super::{LineCtx, escape_name, format_line};
use crate::flist::{Entry, Kind};
use crate::options::Options;
use crate::plan::{Action, Plan};
use std::io::Write;
use std::time::Instant;

/// Prints the lines of one transfer, either all at once ([`Printer::print_all`])
/// or entry by entry while phase 2 runs (as [`crate::apply::Serial`]).
pub struct Printer<'a> {
    fmt: Option<String>,
    entries: &'a [Entry],
    plan: &'a Plan,
    opts: &'a Options,
    human: u8,
    skip_printed: Vec<bool>,
    out: std::io::StdoutLock<'static>,
    started: Instant,
    file_start: Instant,
    xfers: u64,
    bytes: u64,
    total_size: u64,
}

impl<'a> Printer<'a> {
    /// A printer for `plan`; `fmt` is the item format (`%i %n%L`, `%n%L`, …).
    pub fn new(
        fmt: Option<String>,
        entries: &'a [Entry],
        plan: &'a Plan,
        opts: &'a Options,
        human: u8,
    ) -> Self {
        let total_size = entries
            .iter()
            .filter(|e| matches!(e.meta.kind, Kind::File | Kind::Symlink))
            .map(|e| e.meta.size)
            .sum();
        Printer {
            fmt,
            entries,
            plan,
            opts,
            human,
            skip_printed: vec![false; entries.len()],
            out: std::io::stdout().lock(),
            started: Instant::now(),
            file_start: Instant::now(),
            xfers: 0,
            bytes: 0,
            total_size,
        }
    }

    /// Print every line now (no progress interleaving).
    pub fn print_all(&mut self) {
        for &i in &self.plan.print_order {
            self.line(i);
        }
        let _ = self.out.flush();
    }

    /// Finish the `--info=progress2` line.
    pub fn finish(&mut self) {
        if self.opts.progress2 && self.xfers > 0 {
            let _ = writeln!(self.out);
        }
        let _ = self.out.flush();
    }

    fn skip_line(&mut self, j: usize) {
        let e = &self.entries[j];
        let _ = writeln!(
            self.out,
            "skipping non-regular file \"{}\"",
            escape_name(&e.name, self.opts.eight_bit_output)
        );
        self.skip_printed[j] = true;
    }

    /// The line(s) for entry `i`.
    fn line(&mut self, i: usize) {
        let (e, it) = (&self.entries[i], &self.plan.items[i]);
        // rsync's generator reports skipped entries of a directory before the
        // directory's own line reaches the output.
        if e.meta.kind == Kind::Dir {
            let skips: Vec<usize> = self.entries[i + 1..]
                .iter()
                .take_while(|c| c.meta.kind != Kind::Dir)
                .enumerate()
                .filter(|(_, c)| c.skip)
                .map(|(k, _)| i + 1 + k)
                .collect();
            for j in skips {
                self.skip_line(j);
            }
        }
        if e.skip {
            if !self.skip_printed[i] {
                self.skip_line(i);
            }
            return;
        }
        let Some(fmt) = &self.fmt else { return };
        if !it.log {
            let vv = self.opts.verbose > 1 && self.opts.itemize == 0 && self.opts.out_format.is_none();
            if vv && e.meta.kind == Kind::File && it.action == Action::Nothing {
                let _ = writeln!(
                    self.out,
                    "{} is uptodate",
                    escape_name(&e.name, self.opts.eight_bit_output)
                );
            }
            return;
        }
        let leader = match it.action {
            Action::HardLink { leader } => Some(&self.entries[leader]),
            _ => None,
        };
        let line = format_line(
            fmt,
            &LineCtx {
                entry: e,
                item: it,
                link_leader: leader,
                times: self.opts.times,
                eight_bit: self.opts.eight_bit_output,
                human: self.human,
            },
        );
        let _ = writeln!(self.out, "{line}");
    }

    /// rsync's `rprint_progress` line body: `%15s %3d%% %7.2f%s %s`.
    fn progress_body(&self, ofs: u64, size: u64, secs: f64) -> String {
        let pct = if size == 0 || ofs >= size {
            if ofs > size || size == 0 { 100 } else { 100 }
        } else {
            (ofs * 100 / size) as u32
        };
        let pct = if self.opts.progress2 && ofs < size {
            (ofs * 100 / size.max(1)) as u32
        } else {
            pct
        };
        let mut rate = if secs > 0.0 { ofs as f64 / secs / 1024.0 } else { 0.0 };
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

impl crate::apply::Serial for Printer<'_> {
    fn before(&mut self, i: usize) {
        self.line(i);
        self.file_start = Instant::now();
        let _ = self.out.flush();
    }

    fn after(&mut self, i: usize, written: Option<u64>) {
        let it = &self.plan.items[i];
        if it.action != Action::Transfer || written.is_none() {
            return;
        }
        self.xfers += 1;
        let size = self.entries[i].meta.size;
        self.bytes += size;
        let n = self.entries.len();
        let eol = format!(" (xfr#{}, to-chk={}/{})", self.xfers, n - i - 1, n);
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
}
