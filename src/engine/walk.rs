//! The walk: the sequential heart of a transfer.
//!
//! It takes directory listings from the [`Scanner`] in rsync's list order (a
//! directory, its non-directories, then each subdirectory in turn), plans each
//! entry, prints its line, and hands the work to the [`Applier`], whose tasks
//! run in parallel behind it. Listings are dropped once walked, so memory
//! follows the prefetch budget, not the size of the tree.

use super::delete::Deleter;
use super::dest::DestMode;
use crate::apply::{Applier, DirId, Outcome};
use crate::filter::{DirFilters, Filters, Side};
use crate::flist::{self, DestProbe, Entry, Kind, Meta, Node, Scanner, Top};
use crate::options::Options;
use crate::plan::{Action, Item, Planner};
use crate::report::{Printer, Stats};
use std::path::{Path, PathBuf};
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
    /// `--progress` / `--info=progress2` (not quiet): the whole list first.
    progress: bool,
    /// The directory just emitted exists as a non-directory at the
    /// destination and was left alone.
    blocked_dir: bool,
    /// Entries numbered so far: rsync numbers each directory's listing as a
    /// block when it is sent, so `to-chk=` follows that, not the print order.
    numbered: usize,
    stats: Stats,
    code: i32,
    /// `--delete` (and `--force` for directories in the way).
    deleter: Option<Deleter>,
    /// The receiver's rules at the destination root, when deleting with rules.
    recv: Option<DirFilters>,
    /// The destination root, absolute (receiver rules match against it).
    dest_abs: PathBuf,
    /// The receiver's rules for the directory being walked.
    cur_rf: Option<DirFilters>,
    /// The sender reported an I/O error (deletions stop, as in rsync).
    io_error: bool,
    /// `-m`: the receiver's rules (which pin directories they exclude).
    prune_filters: Option<DirFilters>,
    /// The list has a `.` root (a `src/` operand).
    has_dot: bool,
    /// rsync's non-incremental header, printed by the walk when filter
    /// debugging can interleave with it (`building file list ... ` / `done`).
    header: Option<&'static str>,
    after_count: Vec<String>,
    /// What the rescan manifest needs to know of this walk.
    track: Track,
    /// The sender is remote: it reports unreadable files itself.
    remote: bool,
}

/// The directories a walk changed (left out of the next manifest) and those
/// `--delete` found to hold exactly their listing.
#[derive(Default)]
pub(super) struct Track {
    /// List names of directories with any work done in them.
    pub dirty: std::collections::HashSet<Vec<u8>>,
    /// List names of directories whose destination held exactly the listed
    /// names.
    pub complete: std::collections::HashSet<Vec<u8>>,
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
        basis: Vec<PathBuf>,
    ) -> Self {
        let root = mode.root();
        let to_dir = matches!(mode, DestMode::Dir(_));
        let backups = crate::apply::backup::Backups::new(opts, &root, printer.notes());
        let notes = printer.notes();
        Walk {
            opts,
            scanner,
            mode,
            printer,
            planner: Planner::new(opts, umask, basis),
            // Content reuse searches a destination directory (not the
            // directory a single destination file happens to be in).
            applier: Applier::new(opts, temp_dir, umask, backups, notes)
                .with_reuse(to_dir.then_some(root.as_path())),
            chown,
            created_root,
            serial: (opts.progress || opts.progress2) && !opts.quiet,
            progress: (opts.progress || opts.progress2) && !opts.quiet,
            blocked_dir: false,
            numbered: 0,
            stats: Stats::default(),
            code: 0,
            deleter: None,
            recv: None,
            dest_abs: PathBuf::new(),
            cur_rf: None,
            io_error: false,
            prune_filters: None,
            has_dot: false,
            header: None,
            after_count: Vec::new(),
            track: Track::default(),
            remote: false,
        }
    }

    /// Count what a `--trust-mtime` listing only counted (`--stats`).
    fn add_counted(&mut self, c: &(crate::report::TypeCounts, u64)) {
        let f = &mut self.stats.files;
        f.reg += c.0.reg;
        f.link += c.0.link;
        f.dev += c.0.dev;
        f.special += c.0.special;
        self.stats.total_size += c.1;
    }

    /// What the manifest needs of the walk (after [`Walk::run`]).
    pub(super) fn take_track(&mut self) -> Track {
        std::mem::take(&mut self.track)
    }

    /// Note that entry `e` had work done: its directory changed (and, for a
    /// directory, itself).
    fn mark_dirty(&mut self, e: &Entry) {
        let b = e.name().as_os_str().as_encoded_bytes();
        let parent = match b.iter().rposition(|&c| c == b'/') {
            Some(i) => &b[..i],
            None if self.has_dot => b".",
            None => b"",
        };
        self.track.dirty.insert(parent.to_vec());
        if e.meta.kind == Kind::Dir || b == b"." {
            self.track.dirty.insert(b.to_vec());
        }
    }

    /// Take transferred files' data from a remote sender.
    pub(super) fn with_fetch(mut self, make: super::MakeFetch) -> Self {
        let fetch = make(self.applier.receive());
        self.applier.set_fetch(fetch);
        self.remote = true;
        // Requests stay pipelined; the data thread prints progress.
        self.serial = false;
        self
    }

    /// Print rsync's `building file list ... done` from the walk, once the
    /// list is built (filter debugging lines go in between).
    /// Lines to print after `--progress`'s `N files to consider` (rsync's
    /// `created directory` comes once the list is counted).
    pub(super) fn after_count(mut self, lines: Vec<String>) -> Self {
        self.after_count = lines;
        self
    }

    pub(super) fn with_header(mut self, header: &'static str) -> Self {
        self.header = Some(header);
        self
    }

    /// Turn on deletion (`--delete*`, `--force`) with the receiver's view of
    /// the filter rules; `dest_root` is the destination directory.
    pub(super) fn with_delete(mut self, filters: Option<&Arc<Filters>>, dest_root: &Path) -> Self {
        self.deleter = Deleter::new(self.opts);
        if let Some(d) = self.deleter.as_mut() {
            d.reuse = self.applier.reuse();
        }
        if self.opts.prune_empty_dirs {
            let abs = std::path::absolute(dest_root).unwrap_or_else(|_| dest_root.to_path_buf());
            self.prune_filters = filters
                .filter(|f| !f.is_empty())
                .map(|f| f.root(Side::Receiver, &abs));
        }
        if self.deleter.is_some() {
            let abs = std::path::absolute(dest_root).unwrap_or_else(|_| dest_root.to_path_buf());
            self.recv = filters
                .filter(|f| !f.is_empty())
                .map(|f| f.root(Side::Receiver, &abs));
            self.dest_abs = abs;
        }
        self
    }

    /// Whether `name` is a top directory of the transfer (the `.` of a
    /// `src/` operand, or a directory operand itself).
    fn is_top(&self, name: &Path) -> bool {
        let b = name.as_os_str().as_encoded_bytes();
        b == b"." || (!self.has_dot && !b.contains(&b'/'))
    }

    /// Report a listing's errors; a sender error (not a vanished file)
    /// stops later deletions.
    fn listing_errors(&mut self, errors: &[flist::ScanError]) {
        for e in errors {
            e.print();
            self.code = super::merge_code(self.code, e.code);
            if e.code != crate::exit::VANISHED {
                self.io_error = true;
            }
        }
    }

    /// Delete what directory `name` holds at the destination but `nodes`
    /// (its source listing) does not; returns the receiver's rules for its
    /// contents.
    fn delete_in(
        &mut self,
        name: &Path,
        src: &Path,
        nodes: &[Node],
        rf: Option<&DirFilters>,
        dest_exact: bool,
    ) -> Option<DirFilters> {
        let del = self.deleter.as_ref()?;
        if del.when_is_off() {
            return None;
        }
        let abs = self.dest_dir(name);
        let inner = rf.map(|f| f.enter_from(&abs, &src_abs(src)));
        if !del.during_walk() {
            return inner;
        }
        // The manifest vouches that the destination holds exactly the listed
        // names: nothing to delete, no need to read the directory (unless
        // --debug=filter wants every name judged, or deletions are deferred).
        if dest_exact && !del.deferred() && !del.debugs_filter() && !self.io_error {
            self.track
                .complete
                .insert(name.as_os_str().as_encoded_bytes().to_vec());
            return inner;
        }
        self.delete_listed(&abs, name, src, nodes, inner.as_ref());
        inner
    }

    /// The destination directory of list directory `name`, absolute.
    fn dest_dir(&self, name: &Path) -> PathBuf {
        if name.as_os_str() == "." {
            self.dest_abs.clone()
        } else {
            self.dest_abs.join(name)
        }
    }

    /// Hand directory `name` (at `abs`, source `src`) to the deleter with the
    /// names its source listing `nodes` has; `inner`: the receiver's rules
    /// for its contents.
    fn delete_listed(
        &mut self,
        abs: &Path,
        name: &Path,
        src: &Path,
        nodes: &[Node],
        inner: Option<&DirFilters>,
    ) {
        let mut keep: Vec<Box<[u8]>> = nodes
            .iter()
            .map(|n| base_bytes(n.entry.name()).into())
            .collect();
        keep.sort();
        let io = self.io_error;
        let top = self.is_top(name);
        let deleted = self.stats.deleted.total();
        let mut exact = None;
        if let Some(d) = self.deleter.as_mut() {
            exact = d.in_dir(
                abs,
                name,
                keep,
                inner,
                io,
                top,
                &src_abs(src),
                &mut super::delete::Out {
                    out: &mut self.printer,
                    stats: &mut self.stats,
                    backups: self.applier.backups(),
                },
            );
        }
        let key = name.as_os_str().as_encoded_bytes().to_vec();
        if self.stats.deleted.total() != deleted {
            self.track.dirty.insert(key);
        } else if exact == Some(true) {
            self.track.complete.insert(key);
        }
    }

    /// Walk everything below the operands.
    pub(super) fn run(&mut self, mut top: Top) {
        // -H needs every group's size, progress the list's length: both list
        // the whole tree before the first line, as rsync does for them.
        let before = self.opts.delete == crate::options::Delete::Before;
        self.has_dot = top.dot.is_some();
        let mut notes = std::mem::take(&mut top.notes);
        let header = self.header.take();
        if header.is_none() {
            for n in notes.drain(..) {
                self.printer.raw(&n);
            }
        }
        if self.opts.hard_links
            || self.progress
            || before
            || self.opts.prune_empty_dirs
            || header.is_some()
        {
            let mut errors = Vec::new();
            self.scanner
                .complete(&mut top.nodes, &mut errors, &mut notes);
            self.listing_errors(&errors);
            match header {
                Some(h) if !notes.is_empty() => {
                    self.printer.raw(h.trim_end_matches("done"));
                    for n in notes.drain(..) {
                        self.printer.raw(&n);
                    }
                    self.printer.raw("done");
                }
                Some(h) => self.printer.raw(h),
                None => {
                    for n in notes.drain(..) {
                        self.printer.raw(&n);
                    }
                }
            }
            if self.opts.prune_empty_dirs {
                let recv = self.prune_filters.take();
                prune(&mut top.nodes, recv.as_ref());
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
            // A remote receiver's count ends its client's header line.
            if self.opts.counts_list() {
                let s = if total == 1 { " " } else { "s " };
                self.printer.raw(&format!("{total} file{s}to consider"));
            }
            for l in std::mem::take(&mut self.after_count) {
                self.printer.raw(&l);
            }
        }
        if before && self.deleter.is_some() {
            let pass = self.delete_pass_start();
            self.delete_before(&mut top);
            self.delete_pass_end(pass);
        }
        for name in std::mem::take(&mut top.missing) {
            let abs = self.mode.path_of(&name);
            if let Some(d) = self.deleter.as_mut() {
                d.delete_path(
                    &abs,
                    &name,
                    &mut super::delete::Out {
                        out: &mut self.printer,
                        stats: &mut self.stats,
                        backups: self.applier.backups(),
                    },
                );
            }
        }
        let root_rf = self.recv.clone();
        let counted = top.counted;
        self.add_counted(&counted);
        match top.dot.take() {
            Some(dot) => {
                self.skip_lines(&top.nodes);
                self.numbered = 1;
                let mut dot = dot;
                let dot_name = dot.name().to_path_buf();
                let dot_src = dot.src().to_path_buf();
                let id = self.entry(&mut dot, 0, None, true);
                let rf = if self.blocked_dir {
                    None
                } else {
                    let rf = self.delete_in(
                        &dot_name,
                        &dot_src,
                        &top.nodes,
                        root_rf.as_ref(),
                        top.dest_exact,
                    );
                    if let (Some(p), Some(_)) = (id, &self.deleter) {
                        if !self.opts.dry_run {
                            self.applier.touch(p);
                        }
                    }
                    rf
                };
                self.walk(top.nodes, id, true, rf);
            }
            None => self.walk(top.nodes, None, false, root_rf),
        }
        for (mut e, it) in self.planner.finish() {
            let it = self.with_dest(&e, it);
            self.emit(&mut e, it, 0, None, false);
        }
    }

    /// Wait for the workers and finish phase 2.
    pub(super) fn finish(mut self) -> (Stats, Outcome, i32) {
        if let Some(d) = self.deleter.as_mut() {
            if d.deferred() {
                self.applier.settle();
                let after = self.opts.delete == crate::options::Delete::After;
                let pass = after && self.delete_pass_start();
                let d = self.deleter.as_mut().expect("checked above");
                d.finish(
                    self.recv.as_ref(),
                    &mut super::delete::Out {
                        out: &mut self.printer,
                        stats: &mut self.stats,
                        backups: self.applier.backups(),
                    },
                );
                if after {
                    self.delete_pass_end(pass);
                }
            }
        }
        let mut outcome = self.applier.finish();
        if let Some(d) = &self.deleter {
            self.code = super::merge_code(self.code, d.code);
            self.code = super::merge_code(self.code, d.summary());
        }
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
    fn walk(
        &mut self,
        mut nodes: Vec<Node>,
        parent: Option<DirId>,
        skips_done: bool,
        rf: Option<DirFilters>,
    ) {
        let base = self.numbered;
        self.numbered += nodes.len();
        let mut dirs = 0;
        self.cur_rf = rf.clone();
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
            self.add_counted(&listing.counted);
            self.listing_errors(&listing.errors);
            for note in &listing.notes {
                self.printer.raw(note);
            }
            self.skip_lines(&listing.nodes);
            // The entry's paths, shared with its listing (no copies: the
            // entry is lent to the planner below).
            let paths = n.entry.paths.clone();
            let (name, src) = (paths.name(), paths.src());
            let recurse = !n.entry.no_recurse;
            self.cur_rf = rf.clone();
            let id = self.entry(&mut n.entry, seq, parent, skips_done);
            if id.is_some_and(|d| self.applier.failed(d)) {
                continue;
            }
            if self.blocked_dir {
                // The destination is not a directory (and was left alone, as
                // with --ignore-existing): rsync fails on each child, and
                // deleting in it fails to open it (which stops deletions).
                self.blocked_dir = false;
                let dest = self.mode.path_of(name);
                if self.deleter.as_ref().is_some_and(|d| d.during_walk()) && recurse {
                    crate::report::message(&format!(
                        "[generator] opendir \"{}\" failed: Not a directory (20)",
                        crate::report::abs_display(&dest)
                    ));
                    self.code = super::merge_code(self.code, crate::exit::PARTIAL);
                    self.io_error = true;
                }
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
            let inner = if recurse {
                let r = self.delete_in(name, src, &listing.nodes, rf.as_ref(), listing.dest_exact);
                if let (Some(p), Some(_)) = (id, &self.deleter) {
                    if !self.opts.dry_run {
                        self.applier.touch(p);
                    }
                }
                r
            } else {
                None
            };
            self.walk(listing.nodes, id, true, inner);
        }
    }

    /// `--delete-before`: one deletion pass over the whole (listed) tree
    /// before anything is transferred.
    /// What rsync's `do_delete_pass` (`--delete-before`/`--delete-after`)
    /// shows on a pulling client's screen with `--progress`: the
    /// ` 0 files...` of listing a non-empty destination directory, on a line
    /// of its own once something follows. (A local or server receiver shows
    /// nothing: rsync's is a server there.) The counts of directories of 100
    /// entries and more are not shown. Returns whether the pass is shown.
    fn delete_pass_start(&mut self) -> bool {
        if !self.opts.counts_list() || !self.remote || self.opts.server {
            return false;
        }
        if self.opts.dry_run && self.created_root {
            return false;
        }
        if std::fs::read_dir(&self.dest_abs).is_ok_and(|mut d| d.next().is_some()) {
            self.printer.partial(" 0 files...\r");
        }
        true
    }

    /// The end of a shown deletion pass: rsync blanks the line.
    fn delete_pass_end(&mut self, shown: bool) {
        if shown {
            self.printer.text("                    \r");
        }
    }

    fn delete_before(&mut self, top: &mut flist::Top) {
        let rf = self.recv.clone();
        if let Some(dot) = &mut top.dot {
            let inner = self.before_dir(dot.name(), dot.src(), &top.nodes, rf.as_ref());
            restat(&mut dot.dest, &self.dest_abs);
            self.before_walk(&mut top.nodes, inner.as_ref());
        } else {
            self.before_walk(&mut top.nodes, rf.as_ref());
        }
    }

    fn before_walk(&mut self, nodes: &mut [Node], rf: Option<&DirFilters>) {
        for n in nodes {
            if n.entry.meta.kind != Kind::Dir || n.entry.no_recurse {
                continue;
            }
            let name = n.entry.name().to_path_buf();
            let src = n.entry.src().to_path_buf();
            let mut empty = Vec::new();
            let children = match &mut n.children {
                flist::Children::Ready(c) => c,
                _ => &mut empty,
            };
            let inner = self.before_dir(&name, &src, children, rf);
            // Deleting changed the directory's times: plan it as it is now.
            restat(&mut n.entry.dest, &self.dest_abs.join(&name));
            self.before_walk(children, inner.as_ref());
        }
    }

    fn before_dir(
        &mut self,
        name: &Path,
        src: &Path,
        nodes: &[Node],
        rf: Option<&DirFilters>,
    ) -> Option<DirFilters> {
        let abs = self.dest_dir(name);
        let inner = rf.map(|f| f.enter_from(&abs, &src_abs(src)));
        if self.is_top(name) {
            if let Some(d) = self.deleter.as_ref() {
                d.pass_notice(
                    name,
                    &mut super::delete::Out {
                        out: &mut self.printer,
                        stats: &mut self.stats,
                        backups: self.applier.backups(),
                    },
                );
            }
        }
        if !std::fs::symlink_metadata(&abs).is_ok_and(|m| m.is_dir()) {
            return inner;
        }
        self.delete_listed(&abs, name, src, nodes, inner.as_ref());
        inner
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
            || (o.checksum && e.sums.as_ref().is_none_or(|s| s.dest_unread))
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
        if it.action != Action::Nothing {
            self.mark_dirty(e);
        }
        let defer =
            self.remote && self.progress && !self.opts.dry_run && it.action == Action::Transfer;
        let shown = if defer {
            Some(self.printer.deferred(seq, e, &it))
        } else {
            self.printer.item(e, &it);
            None
        };
        if e.meta.kind == Kind::Dir {
            self.blocked_dir =
                it.action == Action::Nothing && it.dest_meta.is_some_and(|d| d.kind != Kind::Dir);
        }
        if self.opts.dry_run {
            self.dry_run_backup(&it);
            return None;
        }
        if e.meta.kind == Kind::Dir {
            return Some(self.applier.dir(e, &it));
        }
        self.applier.source_done(e, &it);
        if self.serial {
            self.printer.begin();
            let r = self.applier.now(e, &it);
            if it.action == Action::Transfer && r.is_some() {
                self.printer.progress(seq, e);
            }
        } else if let Some(s) = shown {
            self.applier.push_shown(e.take(), it, s);
        } else if it.action != Action::Nothing {
            self.applier.push(e.take(), it);
        }
        None
    }
}

impl Walk<'_> {
    /// `-n -b`: rsync's generator "makes" the backups of what it replaces
    /// itself (its link and rename calls succeed without doing anything in a
    /// dry run), so their `backed up` lines appear; file transfers, whose
    /// backups the receiver makes, show none.
    fn dry_run_backup(&self, it: &Item) {
        let Some(b) = self.applier.backups() else {
            return;
        };
        let Some(d) = it.dest_meta.filter(|d| d.kind != Kind::Dir) else {
            return;
        };
        let by_generator = match it.action {
            Action::MkDir | Action::Symlink | Action::Mknod | Action::HardLink => true,
            Action::Transfer | Action::CopyBasis | Action::LinkBasis | Action::Unlink => {
                d.kind != Kind::File
            }
            _ => false,
        };
        // What rsync deletes to make room (delete_item) skips backup files.
        let via_delete = matches!(
            it.action,
            Action::MkDir
                | Action::Transfer
                | Action::CopyBasis
                | Action::LinkBasis
                | Action::Unlink
        );
        if by_generator && !(via_delete && b.is_backup_file(&it.dest)) {
            b.note_dry_run(&it.dest);
        }
    }

    /// rsync's sender fails to open an unreadable file before anything about
    /// it is printed; predict that from the mode bits (only when not root).
    fn readable(&mut self, e: &Entry, it: &Item) -> bool {
        if it.action != Action::Transfer || self.opts.am_root || self.opts.dry_run || self.remote {
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
        let in_way = it.dest_meta.is_some_and(|d| d.kind == Kind::Dir);
        if let (Some(d), true) = (self.deleter.as_mut(), in_way) {
            // --delete and --force remove the directory with its contents.
            let rf = self.cur_rf.clone();
            let abs = std::path::absolute(&it.dest).unwrap_or_else(|_| it.dest.clone());
            if d.make_room(
                &abs,
                e.name(),
                rf.as_ref(),
                &mut super::delete::Out {
                    out: &mut self.printer,
                    stats: &mut self.stats,
                    backups: self.applier.backups(),
                },
            ) {
                return true;
            }
            let name = crate::report::escape_name(e.name(), self.opts.eight_bit_output);
            crate::report::message_bare(&format!(
                "could not make way for new {}: {name}",
                kind_word(e.meta.kind)
            ));
            self.code = super::merge_code(self.code, crate::exit::PARTIAL);
            return false;
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
                crate::report::message_bare(&format!(
                    "could not make way for new {}: {name}",
                    kind_word(e.meta.kind)
                ));
                self.code = super::merge_code(self.code, crate::exit::PARTIAL);
                false
            }
        }
    }
}

/// rsync's word for a kind of entry in "could not make way" messages.
fn kind_word(k: Kind) -> &'static str {
    match k {
        Kind::File => "regular file",
        Kind::Symlink => "symlink",
        Kind::Device => "device file",
        _ => "special file",
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

/// Probe a destination entry again (after `--delete-before` changed it).
fn restat(probe: &mut DestProbe, path: &Path) {
    if let DestProbe::Found(_) = probe {
        *probe = match std::fs::symlink_metadata(path) {
            Ok(m) => DestProbe::Found(Meta::from_std(&m)),
            Err(_) => DestProbe::Missing,
        };
    }
}

/// A source path made absolute (the receiver reads `.gitignore` files there).
fn src_abs(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// The last component of a list name, as bytes.
fn base_bytes(p: &Path) -> &[u8] {
    let b = p.as_os_str().as_encoded_bytes();
    match b.iter().rposition(|&c| c == b'/') {
        Some(i) => &b[i + 1..],
        None => b,
    }
}

/// `-m`: drop directories that hold no non-directory, however deep (the
/// listings are complete). As in rsync's receiver, a directory its rules
/// exclude (`recv`, e.g. a protect rule) is kept, with its parents.
pub(super) fn prune(nodes: &mut Vec<Node>, recv: Option<&DirFilters>) {
    nodes.retain_mut(|n| {
        if n.entry.meta.kind != Kind::Dir {
            return true;
        }
        let pinned =
            recv.is_some_and(|f| f.excluded(n.entry.name().as_os_str().as_encoded_bytes(), true));
        match &mut n.children {
            flist::Children::Ready(c) => {
                prune(c, recv);
                pinned || !c.is_empty()
            }
            _ => pinned,
        }
    });
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
