//! The walk: the sequential heart of a transfer.
//!
//! It takes directory listings from the [`Scanner`] in rsync's list order (a
//! directory, its non-directories, then each subdirectory in turn), plans each
//! entry, prints its line, and hands the work to the [`Applier`], whose tasks
//! run in parallel behind it. Listings are dropped once walked, so memory
//! follows the prefetch budget, not the size of the tree.

use super::dest::DestMode;
use crate::apply::{Applier, DirId, Outcome};
use crate::flist::{self, DestProbe, Entry, Kind, Meta, Node, Scanner, Top};
use crate::options::Options;
use crate::plan::{Action, Item, Planner};
use crate::report::{Printer, Stats};
use std::path::PathBuf;
use std::sync::Arc;

/// State of one walk.
pub(super) struct Walk<'a> {
    opts: &'a Options,
    scanner: Arc<Scanner>,
    mode: DestMode,
    printer: Printer<'a>,
    planner: Planner<'a>,
    applier: Applier,
    chown: (Option<u32>, Option<u32>),
    created_root: bool,
    /// Apply each item right away (for `--progress`) instead of in batches.
    serial: bool,
    /// The directory just emitted exists as a non-directory at the
    /// destination and was left alone.
    blocked_dir: bool,
    /// Entries numbered so far: rsync numbers each directory's listing as a
    /// block when it is sent, so `to-chk=` follows that, not the print order.
    numbered: usize,
    stats: Stats,
    code: i32,
}

impl<'a> Walk<'a> {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn new(
        opts: &'a Options,
        scanner: Arc<Scanner>,
        mode: DestMode,
        printer: Printer<'a>,
        temp_dir: Option<PathBuf>,
        chown: (Option<u32>, Option<u32>),
        created_root: bool,
        umask: u32,
    ) -> Self {
        Walk {
            opts,
            scanner,
            mode,
            printer,
            planner: Planner::new(opts, umask),
            applier: Applier::new(opts, temp_dir, umask),
            chown,
            created_root,
            serial: (opts.progress || opts.progress2) && !opts.quiet,
            blocked_dir: false,
            numbered: 0,
            stats: Stats::default(),
            code: 0,
        }
    }

    /// Walk everything below the operands.
    pub(super) fn run(&mut self, mut top: Top) {
        // -H needs every group's size, progress the list's length: both list
        // the whole tree before the first line, as rsync does for them.
        if self.opts.hard_links || self.serial {
            let mut errors = Vec::new();
            self.scanner.complete(&mut top.nodes, &mut errors);
            for e in &errors {
                e.print();
                self.code = super::merge_code(self.code, e.code);
            }
            let mut total = top.dot.is_some() as usize;
            let mut size = 0;
            count(&top.nodes, &mut |e| {
                total += 1;
                if matches!(e.meta.kind, Kind::File | Kind::Symlink) {
                    size += e.meta.size;
                }
                self.planner.count_link(e);
            });
            if let Some(d) = &top.dot {
                self.planner.count_link(d);
            }
            self.printer.set_totals(total, size);
        }
        match top.dot.take() {
            Some(dot) => {
                self.skip_lines(&top.nodes);
                self.numbered = 1;
                let mut dot = dot;
                let id = self.entry(&mut dot, 0, None, true);
                self.walk(top.nodes, id, true);
            }
            None => self.walk(top.nodes, None, false),
        }
        for (mut e, it) in self.planner.finish() {
            let it = self.with_dest(&e, it);
            self.emit(&mut e, it, 0, None, false);
        }
    }

    /// Wait for the workers and finish phase 2.
    pub(super) fn finish(mut self) -> (Stats, Outcome, i32) {
        let mut outcome = self.applier.finish();
        for (e, it) in std::mem::take(&mut outcome.redone) {
            self.printer.item(&e, &it);
        }
        self.printer.finish();
        (self.stats, outcome, self.code)
    }

    /// rsync's generator reports a directory's skipped entries before the
    /// directory's own line reaches the output.
    fn skip_lines(&mut self, nodes: &[Node]) {
        for n in nodes {
            if n.entry.skip {
                self.printer.skip(&n.entry);
            }
        }
    }

    /// Walk one listing: non-directories first, then each directory with its
    /// contents. `skips_done` tells whether the skip notices were printed.
    ///
    /// Entries are planned where they lie in the listing (an entry is only
    /// moved out when a worker needs it), and the non-directories are dropped
    /// before descending, so only directory nodes wait on the recursion.
    fn walk(&mut self, mut nodes: Vec<Node>, parent: Option<DirId>, skips_done: bool) {
        let base = self.numbered;
        self.numbered += nodes.len();
        let mut dirs = 0;
        for (k, n) in nodes.iter_mut().enumerate() {
            if n.entry.meta.kind == Kind::Dir {
                dirs += 1;
            } else {
                self.entry(&mut n.entry, base + k, parent, skips_done);
            }
        }
        if dirs == 0 {
            return;
        }
        let mut seq = base;
        let mut seqs = Vec::with_capacity(dirs);
        nodes.retain(|n| {
            seq += 1;
            let keep = n.entry.meta.kind == Kind::Dir;
            if keep {
                seqs.push(seq - 1);
            }
            keep
        });
        for (n, seq) in nodes.iter_mut().zip(seqs) {
            if self.applier.stopped() {
                return;
            }
            let children = std::mem::replace(&mut n.children, flist::Children::None);
            let listing = self.scanner.take(children);
            for e in &listing.errors {
                e.print();
                self.code = super::merge_code(self.code, e.code);
            }
            self.skip_lines(&listing.nodes);
            let id = self.entry(&mut n.entry, seq, parent, skips_done);
            if id.is_some_and(|d| self.applier.failed(d)) {
                continue;
            }
            if self.blocked_dir {
                // The destination is not a directory (and was left alone, as
                // with --ignore-existing): rsync fails on each child.
                self.blocked_dir = false;
                let dest = self.mode.path_of(n.entry.name());
                for c in &listing.nodes {
                    crate::report::message(&format!(
                        "[generator] recv_generator: failed to stat \"{}\": Not a directory (20)",
                        crate::report::abs_display(
                            &dest.join(c.entry.name().file_name().unwrap_or_default())
                        )
                    ));
                    self.code = super::merge_code(self.code, crate::exit::PARTIAL);
                }
                continue;
            }
            self.walk(listing.nodes, id, true);
        }
    }

    /// Plan one entry and pass it (and any hard links it releases) on.
    fn entry(
        &mut self,
        e: &mut Entry,
        seq: usize,
        parent: Option<DirId>,
        skips_done: bool,
    ) -> Option<DirId> {
        if let Some(u) = self.chown.0 {
            e.meta.uid = u;
        }
        if let Some(g) = self.chown.1 {
            e.meta.gid = g;
        }
        self.stats.files.add(e.meta.kind);
        if matches!(e.meta.kind, Kind::File | Kind::Symlink) {
            self.stats.total_size += e.meta.size;
        }
        // The destination path costs an allocation and a join; an unchanged
        // regular file (most of a rescan) never needs it, so it is only built
        // up front where planning reads it, and later for items with work.
        let o = self.opts;
        let eager = e.meta.kind != Kind::File
            || o.checksum
            || o.xattrs
            || o.acls
            || o.keep_dirlinks
            || (o.hard_links && e.meta.nlink > 1)
            || e.dest == DestProbe::Unknown;
        let dest = if eager {
            self.mode.path_of(e.name())
        } else {
            PathBuf::new()
        };
        let d = self.dest_meta(e, &dest);
        let dx = if (o.xattrs || o.acls) && d.is_some() {
            Some(flist::read_xattrs(&dest, o))
        } else {
            None
        };
        let planned = self.planner.plan(e, dest, d, dx);
        let mut id = None;
        if let Some(it) = planned.own {
            let it = self.with_dest(e, it);
            id = self.emit(e, it, seq, parent, skips_done);
        }
        for (mut o, it) in planned.released {
            let it = self.with_dest(&o, it);
            self.emit(&mut o, it, seq, parent, skips_done);
        }
        id
    }

    /// Fill in the destination path of an item with work that was planned
    /// without it.
    fn with_dest(&self, e: &Entry, mut it: Item) -> Item {
        if it.dest.as_os_str().is_empty() && it.action != Action::Nothing {
            it.dest = self.mode.path_of(e.name());
        }
        it
    }

    /// The destination's state as the planner sees it.
    fn dest_meta(&self, e: &Entry, dest: &std::path::Path) -> Option<Meta> {
        if self.created_root && e.name().as_os_str() == "." {
            // The root was made just now: report it as new, as rsync does.
            return None;
        }
        let mut m = match e.dest {
            DestProbe::Found(m) => Some(m),
            DestProbe::Missing => None,
            // Under a destination created by this run nothing exists yet.
            DestProbe::Unknown if self.created_root => None,
            DestProbe::Unknown => std::fs::symlink_metadata(dest)
                .ok()
                .map(|m| Meta::from_std(&m)),
        };
        if self.opts.keep_dirlinks
            && e.meta.kind == Kind::Dir
            && m.is_some_and(|m| m.kind == Kind::Symlink)
        {
            if let Ok(t) = std::fs::metadata(dest) {
                if t.is_dir() {
                    m = Some(Meta::from_std(&t));
                }
            }
        }
        m
    }

    /// Print one item's line and hand its work to the applier (which takes
    /// the entry out of its listing only when a worker has something to do).
    fn emit(
        &mut self,
        e: &mut Entry,
        it: Item,
        seq: usize,
        parent: Option<DirId>,
        skips_done: bool,
    ) -> Option<DirId> {
        if e.skip {
            if !skips_done {
                self.printer.skip(e);
            }
            return None;
        }
        if !self.make_way(e, &it) || !self.readable(e, &it) {
            return None;
        }
        if it.flags.is_new {
            self.stats.created.add(e.meta.kind);
        }
        if it.action == Action::Transfer {
            self.stats.transferred_files += 1;
            self.stats.transferred_size += e.meta.size;
        }
        if it.action != Action::Nothing {
            if let Some(p) = parent {
                if !self.opts.dry_run {
                    self.applier.touch(p);
                }
            }
        }
        self.printer.item(e, &it);
        if e.meta.kind == Kind::Dir {
            self.blocked_dir =
                it.action == Action::Nothing && it.dest_meta.is_some_and(|d| d.kind != Kind::Dir);
        }
        if self.opts.dry_run {
            return None;
        }
        if e.meta.kind == Kind::Dir {
            return Some(self.applier.dir(e, &it));
        }
        if self.serial {
            self.printer.begin();
            let r = self.applier.now(e, &it);
            if it.action == Action::Transfer && r.is_some() {
                self.printer.progress(seq, e);
            }
        } else if it.action != Action::Nothing {
            self.applier.push(e.take(), it);
        }
        None
    }
}

impl Walk<'_> {
    /// rsync's sender fails to open an unreadable file before anything about
    /// it is printed; predict that from the mode bits (only when not root).
    fn readable(&mut self, e: &Entry, it: &Item) -> bool {
        if it.action != Action::Transfer || self.opts.am_root || self.opts.dry_run {
            return true;
        }
        let m = e.meta.mode;
        let uid = rustix::process::geteuid().as_raw();
        let ok = if e.meta.uid == uid {
            m & 0o400 != 0
        } else if in_group(e.meta.gid) {
            m & 0o040 != 0
        } else {
            m & 0o004 != 0
        };
        if !ok {
            crate::report::message(&format!(
                "[sender] send_files failed to open \"{}\": Permission denied (13)",
                crate::report::abs_display(e.src())
            ));
            self.code = super::merge_code(self.code, crate::exit::PARTIAL);
        }
        ok
    }

    /// A directory where a non-directory must go is removed first (rsync's
    /// generator does this before the item's line); a non-empty one stays,
    /// with rsync's two messages, and the entry is not transferred.
    fn make_way(&mut self, e: &Entry, it: &Item) -> bool {
        let blocked = e.meta.kind != Kind::Dir
            && it.replace
            && !self.opts.dry_run
            && it.dest_meta.is_some_and(|d| d.kind == Kind::Dir);
        let dry_blocked = e.meta.kind != Kind::Dir
            && it.replace
            && self.opts.dry_run
            && it.dest_meta.is_some_and(|d| d.kind == Kind::Dir)
            && std::fs::read_dir(&it.dest).is_ok_and(|mut r| r.next().is_some());
        if !blocked && !dry_blocked {
            return true;
        }
        let removed = if dry_blocked {
            Err(std::io::Error::from_raw_os_error(libc::ENOTEMPTY))
        } else {
            std::fs::remove_dir(&it.dest)
        };
        match removed {
            Ok(()) => true,
            Err(_) => {
                let name = crate::report::escape_name(e.name(), self.opts.eight_bit_output);
                self.printer
                    .raw(&format!("cannot delete non-empty directory: {name}"));
                let what = match e.meta.kind {
                    Kind::File => "regular file",
                    Kind::Symlink => "symlink",
                    Kind::Device => "device file",
                    _ => "special file",
                };
                crate::report::message_bare(&format!("could not make way for new {what}: {name}"));
                self.code = super::merge_code(self.code, crate::exit::PARTIAL);
                false
            }
        }
    }
}

/// Whether the process is a member of group `gid`.
fn in_group(gid: u32) -> bool {
    if rustix::process::getegid().as_raw() == gid {
        return true;
    }
    let mut buf = vec![0 as libc::gid_t; 256];
    // SAFETY: getgroups writes at most buf.len() entries into buf.
    let n = unsafe { libc::getgroups(buf.len() as libc::c_int, buf.as_mut_ptr()) };
    n > 0 && buf[..n as usize].contains(&gid)
}

/// Visit every entry below `nodes` (all listings are complete).
fn count(nodes: &[Node], f: &mut impl FnMut(&Entry)) {
    for n in nodes {
        f(&n.entry);
        if let flist::Children::Ready(c) = &n.children {
            count(c, f);
        }
    }
}
