//! `--stats` counters and the closing `sent … received …` summary.

use super::big_num;
use crate::flist::Kind;

/// Per-kind counts as `--stats` prints them: `(reg: 5, dir: 5, link: 1)`.
#[derive(Clone, Copy, Debug, Default)]
pub struct TypeCounts {
    /// Regular files.
    pub reg: u64,
    /// Directories.
    pub dir: u64,
    /// Symlinks.
    pub link: u64,
    /// Devices.
    pub dev: u64,
    /// Fifos and sockets.
    pub special: u64,
}

impl TypeCounts {
    /// Count one entry of `kind`.
    pub fn add(&mut self, kind: Kind) {
        match kind {
            Kind::File => self.reg += 1,
            Kind::Dir => self.dir += 1,
            Kind::Symlink => self.link += 1,
            Kind::Device => self.dev += 1,
            Kind::Special => self.special += 1,
        }
    }

    /// Count `n` entries of `kind`.
    ///
    /// Why: a `--trust-mtime` listing counts a directory's up-to-date files
    /// from the manifest's per-kind sums.
    pub fn add_n(&mut self, kind: Kind, n: u64) {
        match kind {
            Kind::File => self.reg += n,
            Kind::Dir => self.dir += n,
            Kind::Symlink => self.link += n,
            Kind::Device => self.dev += n,
            Kind::Special => self.special += n,
        }
    }

    /// Total over all kinds.
    pub fn total(&self) -> u64 {
        self.reg + self.dir + self.link + self.dev + self.special
    }

    /// `N (reg: a, dir: b, ...)` with zero kinds left out, as rsync prints it.
    pub fn describe(&self, human: u8) -> String {
        let total = self.total();
        let mut parts = Vec::new();
        for (label, n) in [
            ("reg", self.reg),
            ("dir", self.dir),
            ("link", self.link),
            ("dev", self.dev),
            ("special", self.special),
        ] {
            if n > 0 {
                parts.push(format!("{label}: {}", big_num(n as i64, human)));
            }
        }
        if parts.is_empty() {
            big_num(total as i64, human)
        } else {
            format!("{} ({})", big_num(total as i64, human), parts.join(", "))
        }
    }
}

/// Everything `--stats` and the summary lines report.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Entries in the file list, by kind.
    pub files: TypeCounts,
    /// Entries created on the receiver, by kind.
    pub created: TypeCounts,
    /// Entries deleted on the receiver, by kind.
    pub deleted: TypeCounts,
    /// Regular files whose data was sent.
    pub transferred_files: u64,
    /// Sum of sizes of regular files and symlinks in the list.
    pub total_size: u64,
    /// Sum of sizes of the transferred files.
    pub transferred_size: u64,
    /// Bytes sent as literal data.
    pub literal: u64,
    /// Bytes matched from a basis file.
    pub matched: u64,
    /// Seconds spent building the file list.
    pub flist_time: f64,
    /// Protocol bytes "sent" (for a local copy: a model of what rsync would send).
    pub bytes_sent: u64,
    /// Protocol bytes "received".
    pub bytes_received: u64,
    /// Wall time of the whole run in seconds.
    pub elapsed: f64,
}

/// The `--stats` block (without the trailing summary), as rsync prints it.
pub fn stats_lines(s: &Stats, human: u8) -> Vec<String> {
    let deleted = s.deleted.describe(human);
    vec![
        format!("Number of files: {}", s.files.describe(human)),
        format!("Number of created files: {}", s.created.describe(human)),
        format!("Number of deleted files: {deleted}"),
        format!(
            "Number of regular files transferred: {}",
            big_num(s.transferred_files as i64, human)
        ),
        format!(
            "Total file size: {} bytes",
            big_num(s.total_size as i64, human)
        ),
        format!(
            "Total transferred file size: {} bytes",
            big_num(s.transferred_size as i64, human)
        ),
        format!("Literal data: {} bytes", big_num(s.literal as i64, human)),
        format!("Matched data: {} bytes", big_num(s.matched as i64, human)),
        "File list size: 0".to_string(),
        format!("File list generation time: {:.3} seconds", s.flist_time),
        "File list transfer time: 0.000 seconds".to_string(),
        format!("Total bytes sent: {}", big_num(s.bytes_sent as i64, human)),
        format!(
            "Total bytes received: {}",
            big_num(s.bytes_received as i64, human)
        ),
    ]
}

/// The two closing lines printed with `-v` or `--stats`.
pub fn summary_lines(s: &Stats, human: u8) -> [String; 2] {
    let total = (s.bytes_sent + s.bytes_received) as f64;
    let rate = if s.elapsed > 0.0 {
        total / s.elapsed
    } else {
        total
    };
    let speedup = if total > 0.0 {
        s.total_size as f64 / total
    } else {
        0.0
    };
    [
        format!(
            "sent {} bytes  received {} bytes  {} bytes/sec",
            big_num(s.bytes_sent as i64, human),
            big_num(s.bytes_received as i64, human),
            super::big_dnum(rate, human)
        ),
        format!(
            "total size is {}  speedup is {}",
            big_num(s.total_size as i64, human),
            super::big_dnum(speedup, human.min(1))
        ),
    ]
}
