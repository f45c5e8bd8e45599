//! Phase 1: compare every file-list entry with the destination and decide what to do.
//!
//! This runs sequentially in file-list order (cheap: the stats of the destination
//! were gathered by the scan tasks), so that itemize and `-v` lines come out in
//! exactly rsync's order. The decisions follow rsync's generator: the quick
//! check (size + mtime), `-c`, `--size-only`, `-I`, `-u`, `--modify-window`,
//! `--existing`, `--ignore-existing`, `--max-size`, `--min-size`.

pub mod chmod;
pub mod quick;

use crate::flist::{Entry, Kind, Meta};
use crate::options::{AltDest, Options};
use crate::report::ItemFlags;
use std::collections::HashMap;
use std::path::PathBuf;

/// What phase 2 must do for one entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing at all.
    Nothing,
    /// Create a directory (after removing whatever non-directory is in the way).
    MkDir,
    /// Only fix attributes (perms, owner, group, times, xattrs) in place.
    Attrs,
    /// Write the file's data (to a temp file + rename unless `--inplace`/`--append`).
    Transfer,
    /// Create (or recreate) a symlink.
    Symlink,
    /// Create (or recreate) a device node, fifo or socket.
    Mknod,
    /// Hard-link to the group leader's destination (`-H`; see [`Item::link`]).
    HardLink,
    /// Hard-link the unchanged file found in a `--link-dest` directory
    /// ([`Item::basis`]) into place.
    LinkBasis,
    /// Copy the file found in a reference directory ([`Item::basis`]) into
    /// place locally, then give it the source's attributes.
    CopyBasis,
    /// Remove the destination file: `--compare-dest` found it unchanged in a
    /// reference directory, which makes the copy in the destination redundant.
    Unlink,
}

/// The leader a hard link points at: where it is and how `%L` names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkTo {
    /// The leader's destination path.
    pub dest: PathBuf,
    /// The leader's name in the file list.
    pub name: PathBuf,
}

/// The plan for one entry.
#[derive(Clone, Debug)]
pub struct Item {
    /// What to do.
    pub action: Action,
    /// The change flags (for itemize output and `--stats`).
    pub flags: ItemFlags,
    /// Destination path.
    pub dest: PathBuf,
    /// Destination metadata before the transfer, if something was there.
    pub dest_meta: Option<Meta>,
    /// The destination entry has another type and must be removed first.
    pub replace: bool,
    /// The final permission bits to set (after `-p`/`-E`/`--chmod` rules).
    pub mode: u32,
    /// Print this item's line (decided by rsync's `maybe_log_item` rules).
    pub log: bool,
    /// For `Action::HardLink`: the leader.
    pub link: Option<Box<LinkTo>>,
    /// Set the exact mtime even though it counts as unchanged (rsync's
    /// `ATTRS_ACCURATE_TIME` with `-c`: nanoseconds are fixed silently).
    pub exact_time: bool,
    /// The matching entry in a `--link-dest`/`--compare-dest`/`--copy-dest`
    /// directory, for [`Action::LinkBasis`] and [`Action::CopyBasis`].
    pub basis: Option<PathBuf>,
    /// A reference directory held an unchanged copy: `-vv` says
    /// `NAME is uptodate` although the destination had nothing.
    pub uptodate: bool,
    /// `--remove-source-files` may remove the source once this item is done
    /// (rsync's "success" for transferred and up-to-date non-directories;
    /// never for skipped entries).
    pub removable: bool,
}

/// The result of planning one entry: its own item (None while it waits as a
/// hard link) and the hard links it releases, to be handled right after it.
#[derive(Debug, Default)]
pub struct Planned {
    /// The entry's own item.
    pub own: Option<Item>,
    /// Earlier entries (hard links) whose items are now decided.
    pub released: Vec<(Entry, Item)>,
}

impl Planned {
    fn one(item: Item) -> Planned {
        Planned {
            own: Some(item),
            released: Vec::new(),
        }
    }
}

/// The best entry found in the reference directories for one source entry,
/// with rsync's match level: 1 same type, 2 same data (quick check), 3 same
/// data and attributes.
struct Found {
    path: PathBuf,
    meta: Meta,
    level: u8,
    dx: Option<XattrList>,
}

/// A group leader as later members see it.
#[derive(Clone, Debug)]
struct Leader {
    seq: u64,
    to: LinkTo,
    dest_meta: Option<Meta>,
    action: Action,
    /// The reference file a `--link-dest` leader is linked to.
    basis_id: Option<(u64, u64)>,
    /// `--compare-dest` found the leader unchanged and created nothing: the
    /// other members are planned on their own, as rsync does.
    not_made: bool,
}

/// `-H` bookkeeping for one group of hard-linked source files, mirroring
/// rsync's generator: the first member that is found done becomes the leader;
/// a member being transferred makes later ones wait for it; missing members
/// other than the last wait for a later one to be transferred.
#[derive(Default)]
struct LinkGroup {
    seen: usize,
    size: usize,
    leader: Option<Leader>,
    sent: Option<Leader>,
    queued: Vec<(Entry, Item, Option<XattrList>)>,
    deferred: Vec<(Entry, Item, Option<XattrList>)>,
}

type XattrList = Vec<(std::ffi::OsString, Vec<u8>)>;

/// Decides, entry by entry in list order, what phase 2 must do.
///
/// Everything is local to the entry except two pieces of state that follow
/// rsync's sequential generator: hard-link groups (`-H`) and destination
/// inodes with several names whose attributes an earlier item fixes.
pub struct Planner<'a> {
    opts: &'a Options,
    chmod: Vec<chmod::Rule>,
    umask: u32,
    groups: HashMap<(u64, u64), LinkGroup>,
    fixed: HashMap<(u64, u64), Meta>,
    /// Entries planned so far (orders the groups in `finish`).
    seq: u64,
    /// The reference directories, resolved against the destination.
    basis: Vec<PathBuf>,
}

impl<'a> Planner<'a> {
    /// A planner; `umask` is applied to new files without `-p`; `basis`
    /// are the `--link-dest`/`--compare-dest`/`--copy-dest` directories.
    pub fn new(opts: &'a Options, umask: u32, basis: Vec<PathBuf>) -> Self {
        Planner {
            opts,
            chmod: chmod::parse_all(&opts.chmod).unwrap_or_default(),
            umask,
            groups: HashMap::new(),
            fixed: HashMap::new(),
            seq: 0,
            basis,
        }
    }

    /// rsync's `try_dests_reg`/`try_dests_non` search: the reference
    /// directories in order, keeping the first entry of the best level and
    /// stopping at the first exact match (level 3). `exact_only`: only a
    /// level-3 match counts (the destination file exists).
    fn find_basis(&self, e: &Entry, mode: u32, exact_only: bool) -> Option<Found> {
        let opts = self.opts;
        let mut best: Option<Found> = None;
        let src_sum = std::cell::OnceCell::new();
        for dir in &self.basis {
            let path = if e.name().as_os_str() == "." {
                dir.clone()
            } else {
                dir.join(e.name())
            };
            let Ok(m) = std::fs::symlink_metadata(&path) else {
                continue;
            };
            let m = Meta::from_std(&m);
            let same_type = match e.meta.kind {
                Kind::Special | Kind::Device => {
                    matches!(m.kind, Kind::Special | Kind::Device)
                        && (m.kind == Kind::Special) == (e.meta.kind == Kind::Special)
                }
                k => m.kind == k,
            };
            if !same_type {
                continue;
            }
            let level = best.as_ref().map_or(0, |b| b.level);
            let mut found = Found {
                path,
                meta: m,
                level: 1,
                dx: None,
            };
            let same_data = match e.meta.kind {
                Kind::File => quick::unchanged(&e.meta, &m, opts, || {
                    quick::same_as_other(e, &src_sum, &found.path)
                }),
                Kind::Dir => true,
                Kind::Symlink => {
                    std::fs::read_link(&found.path)
                        .ok()
                        .map(|p| p.into_os_string())
                        .as_ref()
                        == e.link_target.as_ref()
                }
                Kind::Special => m.mode & libc::S_IFMT == e.meta.mode & libc::S_IFMT,
                Kind::Device => m.rdev == e.meta.rdev,
            };
            if !same_data {
                if level == 0 {
                    best = Some(found);
                }
                continue;
            }
            found.level = 2;
            if opts.xattrs || opts.acls {
                found.dx = Some(crate::flist::read_xattrs(&found.path, opts));
            }
            if unchanged_attrs(e, &m, mode, opts, found.dx.as_deref()) {
                found.level = 3;
                return Some(found);
            }
            if level < 2 {
                best = Some(found);
            }
        }
        best.filter(|b| !exact_only || b.level == 3)
    }

    /// rsync's `hard_link_check` for a new hard link whose own name has a
    /// match in a reference directory: it is itemized against that entry
    /// (not as new); with `--link-dest` the match must be the very file the
    /// leader was linked to, and the line is only shown with `-ii`.
    fn hard_link_basis(&self, item: &mut Item, e: &Entry, leader: &Leader) {
        let opts = self.opts;
        let Some(alt) = opts.alt_dest else {
            return;
        };
        if item.action != Action::HardLink || item.dest_meta.is_some() {
            return;
        }
        let src_sum = std::cell::OnceCell::new();
        for dir in &self.basis {
            let p = dir.join(e.name());
            let Ok(m) = std::fs::symlink_metadata(&p) else {
                continue;
            };
            let m = Meta::from_std(&m);
            let exact = if alt == AltDest::Link {
                if leader.basis_id != Some((m.dev, m.ino)) {
                    continue;
                }
                true
            } else {
                let same = || quick::same_as_other(e, &src_sum, &p);
                if m.kind != Kind::File || !quick::unchanged(&e.meta, &m, opts, same) {
                    continue;
                }
                unchanged_attrs(e, &m, item.mode, opts, None)
            };
            let mut f = ItemFlags {
                local_change: true,
                hard_link: true,
                ..Default::default()
            };
            attr_flags(&mut f, e, &m, item.mode, opts, None);
            item.flags = f;
            if alt == AltDest::Link {
                let has_i = opts.itemize > 0
                    || opts.out_format.as_deref().is_some_and(|s| s.contains("%i"));
                item.log = has_i && (opts.itemize > 1 || opts.name_level() > 1);
                item.uptodate = true;
            }
            if exact {
                break;
            }
        }
    }

    /// Plan a source entry against the reference directories when rsync
    /// would look there (see [`Planner::find_basis`]). True when the item is
    /// decided; false to plan it against the destination as usual.
    fn plan_basis(&self, item: &mut Item, e: &Entry) -> bool {
        let opts = self.opts;
        let Some(alt) = opts.alt_dest else {
            return false;
        };
        if self.basis.is_empty() {
            return false;
        }
        let d = item.dest_meta;
        // What the destination holds for rsync's decision: a regular file
        // replaced by a file of another type counts as missing.
        let dest_file = d.is_some_and(|d| d.kind == Kind::File);
        let missing = match e.meta.kind {
            Kind::File => d.is_none_or(|d| d.kind != Kind::File),
            Kind::Dir => d.is_none_or(|d| d.kind != Kind::Dir),
            _ => d.is_none(),
        };
        let exact_only = e.meta.kind == Kind::File && dest_file;
        let looks = missing || (exact_only && alt != AltDest::Copy);
        if !looks {
            return false;
        }
        if e.meta.kind == Kind::File {
            if opts.ignore_existing && d.is_some() {
                return false;
            }
            if opts.existing && d.is_none() {
                return false;
            }
            if opts.update
                && d.is_some_and(|d| {
                    d.kind == Kind::File
                        && quick::cmp_time(
                            d.mtime,
                            d.mtime_nsec,
                            e.meta.mtime,
                            e.meta.mtime_nsec,
                            opts,
                        ) > 0
                })
            {
                return false;
            }
        } else if (opts.existing && d.is_none() && e.name().as_os_str() != ".")
            || (opts.ignore_existing && d.is_some())
        {
            return false;
        }
        let Some(found) = self.find_basis(e, item.mode, exact_only) else {
            return false;
        };
        if exact_only
            && alt == AltDest::Link
            && d.is_some_and(|d| d.dev == found.meta.dev && d.ino == found.meta.ino)
        {
            // Already the reference file: plan against the destination.
            return false;
        }
        let mut f = ItemFlags::default();
        item.replace = d.is_some();
        item.basis = Some(found.path);
        let link = alt == AltDest::Link && e.meta.kind != Kind::Dir;
        match (e.meta.kind, found.level) {
            (Kind::File, 3) if alt != AltDest::Copy => {
                item.uptodate = true;
                if link {
                    f.local_change = true;
                    f.hard_link = true;
                    item.action = Action::LinkBasis;
                } else if d.is_some() {
                    item.action = Action::Unlink;
                } else {
                    item.action = Action::Nothing;
                }
            }
            (Kind::File, 2 | 3) => {
                item.uptodate = found.level == 3;
                f.local_change = true;
                item.action = Action::CopyBasis;
            }
            (Kind::File, _) => {
                f.transfer = true;
                if opts.checksum {
                    f.change = true;
                }
                item.action = Action::Transfer;
                item.basis = None;
            }
            (Kind::Dir, level) => {
                // Created as usual; only the itemized state comes from the
                // reference directory (an exact match itemizes as unchanged).
                item.uptodate = level == 3;
                f.local_change = true;
                item.action = Action::MkDir;
                item.basis = None;
            }
            (_, 3) => {
                item.uptodate = true;
                if link {
                    f.local_change = true;
                    f.hard_link = true;
                    item.action = Action::LinkBasis;
                } else {
                    if alt == AltDest::Copy {
                        f.local_change = true;
                    }
                    item.action = if alt == AltDest::Compare {
                        Action::Nothing
                    } else if e.meta.kind == Kind::Symlink {
                        Action::Symlink
                    } else {
                        Action::Mknod
                    };
                    item.basis = None;
                }
            }
            (kind, _) => {
                f.local_change = true;
                f.change = true;
                item.action = if kind == Kind::Symlink {
                    Action::Symlink
                } else {
                    Action::Mknod
                };
                item.basis = None;
            }
        }
        // Attributes are itemized against the reference entry. An exact
        // match (rsync's ITEM_MATCHED or empty hard-link name) never shows
        // an unpreserved time as changed (`T`).
        attr_flags(&mut f, e, &found.meta, item.mode, opts, found.dx.as_deref());
        let matched = found.level == 3 && item.action != Action::CopyBasis;
        if matched && !keep_time(e.meta.kind, opts) {
            f.time = false;
        }
        item.flags = f;
        item.log = should_log(e.meta.kind, &item.flags, opts);
        // rsync reports success (and so removes the source) except for a
        // symlink or node that a reference directory made unnecessary.
        item.removable = e.meta.kind == Kind::File
            || (e.meta.kind != Kind::Dir && (found.level < 3 || alt == AltDest::Copy));
        true
    }

    /// `-H` needs each group's size ("is this the last member?") before the
    /// first member is planned: count one entry of the whole list.
    pub fn count_link(&mut self, e: &Entry) {
        if self.linked(e) {
            self.groups
                .entry((e.meta.dev, e.meta.ino))
                .or_default()
                .size += 1;
        }
    }

    fn linked(&self, e: &Entry) -> bool {
        self.opts.hard_links && e.meta.kind != Kind::Dir && e.meta.nlink > 1 && !e.skip
    }

    /// Plan one entry. Returns the items to print and apply now, in order: the
    /// entry's own (unless it waits as a hard link) and any hard links that
    /// were waiting for it.
    pub fn plan(
        &mut self,
        e: &Entry,
        dest: PathBuf,
        d: Option<Meta>,
        dx: Option<XattrList>,
    ) -> Planned {
        let opts = self.opts;
        self.seq += 1;
        let d = d.map(|d| {
            if d.nlink > 1 {
                self.fixed.get(&(d.dev, d.ino)).copied().unwrap_or(d)
            } else {
                d
            }
        });
        let mode = final_mode(e, d.as_ref(), opts, self.umask, &self.chmod);
        let mut item = Item {
            action: Action::Nothing,
            flags: ItemFlags::default(),
            dest,
            dest_meta: d,
            replace: false,
            mode,
            log: false,
            link: None,
            exact_time: false,
            basis: None,
            uptodate: false,
            removable: false,
        };
        if e.skip {
            return Planned::one(item);
        }
        let dxs = dx.as_deref();
        let from_basis =
            (e.meta.kind != Kind::File || !size_excluded(e, opts)) && self.plan_basis(&mut item, e);
        if !from_basis {
            match e.meta.kind {
                Kind::Dir => plan_dir(&mut item, e, opts, dxs),
                Kind::File => plan_file(&mut item, e, opts, dxs),
                Kind::Symlink => plan_symlink(&mut item, e, opts, dxs),
                Kind::Device | Kind::Special => plan_node(&mut item, e, opts, dxs),
            }
        }
        if let (Action::Attrs, Some(d)) = (&item.action, item.dest_meta) {
            if d.nlink > 1 && d.kind != Kind::Dir {
                self.fixed
                    .insert((d.dev, d.ino), fixed_meta(d, e, item.mode, opts));
            }
        }
        if !self.linked(e) || size_excluded(e, opts) {
            return Planned::one(item);
        }
        let g = self
            .groups
            .entry((e.meta.dev, e.meta.ino))
            .or_insert_with(|| LinkGroup {
                size: 1,
                ..Default::default()
            });
        let pos = g.seen;
        g.seen += 1;
        if pos > 0 {
            if let Some(l) = &g.leader {
                if l.not_made {
                    return Planned::one(item);
                }
                let l = l.clone();
                plan_hard_link(&mut item, &l, e, opts, dxs);
                self.hard_link_basis(&mut item, e, &l);
                return Planned::one(item);
            }
            if g.sent.is_some() {
                g.queued.push((e.clone(), item, dx));
                return Planned::default();
            }
        }
        // A file with a basis in a reference directory counts as present.
        let missing = item.dest_meta.is_none_or(|m| m.kind != e.meta.kind) && item.basis.is_none();
        if item.action == Action::Transfer && missing && pos + 1 < g.size {
            g.deferred.push((e.clone(), item, dx));
            return Planned::default();
        }
        let me = Leader {
            seq: self.seq,
            to: LinkTo {
                dest: item.dest.clone(),
                name: e.name().to_path_buf(),
            },
            dest_meta: item.dest_meta,
            action: item.action.clone(),
            basis_id: None,
            not_made: item.uptodate && item.action == Action::Nothing,
        };
        let mut me = me;
        if item.action == Action::LinkBasis {
            me.basis_id = item
                .basis
                .as_ref()
                .and_then(|b| std::fs::symlink_metadata(b).ok())
                .map(|m| {
                    use std::os::unix::fs::MetadataExt;
                    (m.dev(), m.ino())
                });
        }
        let mut out = Planned::one(item);
        // Without --dry-run a transferred leader is only done later: links
        // to it wait; with it, "done" is immediate.
        if me.action == Action::Transfer && !opts.dry_run {
            g.sent = Some(me);
        } else {
            for (de, mut it, dx) in std::mem::take(&mut g.deferred).into_iter().rev() {
                plan_hard_link(&mut it, &me, &de, opts, dx.as_deref());
                out.released.push((de, it));
            }
            g.leader = Some(me);
        }
        out
    }

    /// Hard links that waited for a transferred leader: queued ones in order,
    /// then the deferred ones from the last back to the first (rsync's chain).
    pub fn finish(&mut self) -> Vec<(Entry, Item)> {
        let opts = self.opts;
        let mut groups: Vec<&mut LinkGroup> = self
            .groups
            .values_mut()
            .filter(|g| g.sent.is_some())
            .collect();
        groups.sort_by_key(|g| g.sent.as_ref().map(|l| l.seq));
        let mut out = Vec::new();
        for g in groups {
            let leader = g.sent.clone().expect("filtered");
            let queued = std::mem::take(&mut g.queued);
            let deferred = std::mem::take(&mut g.deferred);
            for (e, mut it, dx) in queued.into_iter().chain(deferred.into_iter().rev()) {
                plan_hard_link(&mut it, &leader, &e, opts, dx.as_deref());
                out.push((e, it));
            }
        }
        out
    }
}

/// What an attribute fix leaves on the destination inode.
fn fixed_meta(mut d: Meta, e: &Entry, mode: u32, opts: &Options) -> Meta {
    if e.meta.kind != Kind::Symlink {
        d.mode = (d.mode & libc::S_IFMT) | mode;
    }
    if opts.owner && opts.am_root {
        d.uid = e.meta.uid;
    }
    if opts.group {
        d.gid = e.meta.gid;
    }
    if opts.times {
        d.mtime = e.meta.mtime;
        d.mtime_nsec = e.meta.mtime_nsec;
    }
    d
}

/// The permission bits the destination should end up with.
fn final_mode(
    e: &Entry,
    d: Option<&Meta>,
    opts: &Options,
    umask: u32,
    chmod: &[chmod::Rule],
) -> u32 {
    let mut src = e.meta.perms();
    if !chmod.is_empty() {
        src = chmod::apply(chmod, src, e.meta.kind == Kind::Dir);
    }
    let existing = d.filter(|d| d.kind == e.meta.kind).map(|d| d.perms());
    if opts.perms {
        return src;
    }
    match existing {
        Some(m) => {
            if opts.executability && e.meta.kind == Kind::File {
                exec_adjust(m, src)
            } else {
                m
            }
        }
        None => {
            // rsync: new files get the source mode masked by the umask, with the
            // setuid/setgid/sticky bits cleared (dirs keep nothing special either).
            let mut m = src & !umask & 0o777;
            if opts.executability && e.meta.kind == Kind::File {
                m = exec_adjust(m, src);
            }
            m
        }
    }
}

/// `-E`: make the destination executable where the source is (and vice versa),
/// as rsync does: x bits follow the r bits when turning on.
fn exec_adjust(dest: u32, src: u32) -> u32 {
    let src_x = src & 0o111 != 0;
    let dst_x = dest & 0o111 != 0;
    if src_x && !dst_x {
        dest | ((dest & 0o444) >> 2)
    } else if !src_x && dst_x {
        dest & !0o111
    } else {
        dest
    }
}

/// Whether `-t` applies to entries of this kind (`-O`, `-J` exclude some).
fn keep_time(kind: Kind, opts: &Options) -> bool {
    opts.times
        && match kind {
            Kind::Dir => !opts.omit_dir_times,
            Kind::Symlink => !opts.omit_link_times,
            _ => true,
        }
}

/// Compare attributes of an existing destination entry with the source.
fn attr_flags(
    f: &mut ItemFlags,
    e: &Entry,
    d: &Meta,
    mode: u32,
    opts: &Options,
    dx: Option<&[(std::ffi::OsString, Vec<u8>)]>,
) {
    let keep_time = keep_time(e.meta.kind, opts);
    if e.meta.kind == Kind::File && e.meta.size != d.size {
        f.size = true;
    }
    if keep_time {
        if !quick::same_time(e.meta.mtime, e.meta.mtime_nsec, d.mtime, d.mtime_nsec, opts) {
            f.time = true;
        }
    } else if f.transfer || f.local_change {
        f.time = true;
    }
    if opts.atimes
        && e.meta.kind != Kind::Dir
        && !quick::same_time(e.meta.atime, e.meta.atime_nsec, d.atime, d.atime_nsec, opts)
    {
        f.atime = true;
    }
    if e.meta.kind != Kind::Symlink && perms_differ(d.perms(), mode, opts) {
        f.perms = true;
    }
    if opts.owner && opts.am_root && e.meta.uid != d.uid {
        f.owner = true;
    }
    if opts.group && e.meta.gid != d.gid {
        f.group = true;
    }
    if let (Some(sx), Some(dx)) = (&e.xattrs, dx) {
        let acl = |n: &std::ffi::OsString| n.as_encoded_bytes().starts_with(b"system.posix_acl_");
        let norm = |x: &[(std::ffi::OsString, Vec<u8>)]| -> Vec<(std::ffi::OsString, Vec<u8>)> {
            x.iter()
                .filter(|(n, _)| acl(n))
                .map(|(n, v)| (n.clone(), acl_without_mode_bits(n, v)))
                .filter(|(_, v)| !v.is_empty())
                .collect()
        };
        if opts.acls && norm(sx) != norm(dx) {
            f.acl = true;
        }
        let s_x: Vec<_> = sx.iter().filter(|(n, _)| !acl(n)).collect();
        let d_x: Vec<_> = dx.iter().filter(|(n, _)| !acl(n)).collect();
        if opts.xattrs && s_x != d_x {
            f.xattr = true;
        }
    }
}

/// An ACL xattr with the entries that only mirror the file mode (owner, other,
/// and mask or group) reduced to their tags, so that a permission difference
/// shows as `p` and not also as `a`, as rsync compares ACLs.
/// Layout: u32 version, then (u16 tag, u16 perm, u32 id) little-endian.
fn acl_without_mode_bits(name: &std::ffi::OsStr, v: &[u8]) -> Vec<u8> {
    const USER_OBJ: u16 = 0x01;
    const GROUP_OBJ: u16 = 0x04;
    const MASK: u16 = 0x10;
    const OTHER: u16 = 0x20;
    if name != "system.posix_acl_access" || v.len() < 4 || (v.len() - 4) % 8 != 0 {
        return v.to_vec();
    }
    let entries: Vec<(u16, u16, u32)> = v[4..]
        .chunks(8)
        .map(|c| {
            (
                u16::from_le_bytes([c[0], c[1]]),
                u16::from_le_bytes([c[2], c[3]]),
                u32::from_le_bytes([c[4], c[5], c[6], c[7]]),
            )
        })
        .collect();
    let has_mask = entries.iter().any(|e| e.0 == MASK);
    let mut out = Vec::new();
    for (tag, perm, id) in entries {
        let mode_bits =
            tag == USER_OBJ || tag == OTHER || tag == MASK || (tag == GROUP_OBJ && !has_mask);
        if mode_bits {
            continue;
        }
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    out
}

/// rsync's `perms_differ`: all permission bits with `-p`, only whether any
/// execute bit is set with `-E`.
fn perms_differ(have: u32, want: u32, opts: &Options) -> bool {
    if opts.perms {
        have != want
    } else if opts.executability {
        (have & 0o111 != 0) != (want & 0o111 != 0)
    } else {
        false
    }
}

/// rsync's `unchanged_attrs`: what makes a reference entry an exact match
/// (mtime with `-t`, permissions, owner, group, ACLs, xattrs as preserved).
fn unchanged_attrs(
    e: &Entry,
    m: &Meta,
    mode: u32,
    opts: &Options,
    dx: Option<&[(std::ffi::OsString, Vec<u8>)]>,
) -> bool {
    let symlink = e.meta.kind == Kind::Symlink;
    if opts.times
        && !(symlink && opts.omit_link_times)
        && !quick::same_time(e.meta.mtime, e.meta.mtime_nsec, m.mtime, m.mtime_nsec, opts)
    {
        return false;
    }
    let mut f = ItemFlags::default();
    attr_flags(&mut f, e, m, mode, opts, dx);
    !(f.perms || f.owner || f.group || f.acl || f.xattr)
}

fn attrs_differ(f: &ItemFlags) -> bool {
    f.time || f.perms || f.owner || f.group || f.atime || f.acl || f.xattr
}

/// rsync's `maybe_log_item` / receiver logging rules for whether a line is printed.
///
/// That is: a transfer; a significant change that is local or to a directory;
/// another significant change when itemizing or at name level 2; an
/// insignificant one when itemizing at `-ii` or name level 2. The cheap tests
/// come first: a rescan asks this for every unchanged entry.
fn should_log(kind: Kind, f: &ItemFlags, opts: &Options) -> bool {
    if f.transfer {
        return true;
    }
    let significant = f.significant();
    if significant && (f.local_change || kind == Kind::Dir) {
        return true;
    }
    let itemizing =
        || opts.itemize > 0 || opts.out_format.as_deref().is_some_and(|s| s.contains("%i"));
    if significant {
        return itemizing() || opts.name_level() > 1;
    }
    itemizing() && (opts.itemize > 1 || opts.name_level() > 1)
}

fn size_excluded(e: &Entry, opts: &Options) -> bool {
    if e.meta.kind != Kind::File {
        return false;
    }
    opts.max_size.is_some_and(|m| e.meta.size > m) || opts.min_size.is_some_and(|m| e.meta.size < m)
}

fn plan_dir(
    item: &mut Item,
    e: &Entry,
    opts: &Options,
    dx: Option<&[(std::ffi::OsString, Vec<u8>)]>,
) {
    match item.dest_meta {
        Some(d) if d.kind == Kind::Dir => {
            let mut f = ItemFlags::default();
            attr_flags(&mut f, e, &d, item.mode, opts, dx);
            if attrs_differ(&f) {
                item.action = Action::Attrs;
            }
            item.flags = f;
        }
        other => {
            // The transfer root is created even with --existing, as rsync does.
            if (opts.existing && other.is_none() && e.name().as_os_str() != ".")
                || (opts.ignore_existing && other.is_some())
            {
                return;
            }
            item.replace = other.is_some();
            item.action = Action::MkDir;
            item.flags = ItemFlags {
                local_change: true,
                is_new: true,
                ..Default::default()
            };
        }
    }
    item.log = should_log(Kind::Dir, &item.flags, opts);
}

fn plan_file(
    item: &mut Item,
    e: &Entry,
    opts: &Options,
    dx: Option<&[(std::ffi::OsString, Vec<u8>)]>,
) {
    if size_excluded(e, opts) {
        return;
    }
    match item.dest_meta {
        Some(_) if opts.ignore_existing => return,
        Some(d) if d.kind == Kind::File => {
            if opts.update
                && quick::cmp_time(d.mtime, d.mtime_nsec, e.meta.mtime, e.meta.mtime_nsec, opts) > 0
            {
                return;
            }
            let mut f = ItemFlags::default();
            let unchanged =
                quick::unchanged(&e.meta, &d, opts, || quick::same_as_dest(e, &item.dest));
            // --append only ever adds to a shorter file; others are left alone.
            if !unchanged && opts.append != crate::options::Append::No && d.size >= e.meta.size {
                return;
            }
            if !unchanged {
                f.transfer = true;
                item.action = Action::Transfer;
                if opts.checksum {
                    f.change = true;
                }
            }
            attr_flags(&mut f, e, &d, item.mode, opts, dx);
            if unchanged && attrs_differ(&f) {
                item.action = Action::Attrs;
            }
            if unchanged
                && opts.checksum
                && opts.times
                && (d.mtime, d.mtime_nsec) != (e.meta.mtime, e.meta.mtime_nsec)
            {
                item.exact_time = true;
                item.action = Action::Attrs;
            }
            item.flags = f;
        }
        other => {
            if opts.existing && other.is_none() {
                return;
            }
            item.replace = other.is_some();
            item.action = Action::Transfer;
            item.flags = ItemFlags {
                transfer: true,
                is_new: true,
                ..Default::default()
            };
        }
    }
    item.removable = true;
    item.log = should_log(Kind::File, &item.flags, opts);
}

fn plan_symlink(
    item: &mut Item,
    e: &Entry,
    opts: &Options,
    dx: Option<&[(std::ffi::OsString, Vec<u8>)]>,
) {
    let dest = item.dest.clone();
    plan_made_in_place(
        item,
        e,
        opts,
        dx,
        Action::Symlink,
        |d| d.kind == Kind::Symlink,
        |_| {
            let cur = std::fs::read_link(&dest).ok().map(|p| p.into_os_string());
            cur.as_ref() != e.link_target.as_ref()
        },
    );
}

fn plan_node(
    item: &mut Item,
    e: &Entry,
    opts: &Options,
    dx: Option<&[(std::ffi::OsString, Vec<u8>)]>,
) {
    plan_made_in_place(
        item,
        e,
        opts,
        dx,
        Action::Mknod,
        |d| d.mode & libc::S_IFMT == e.meta.mode & libc::S_IFMT,
        |d| e.meta.kind == Kind::Device && d.rdev != e.meta.rdev,
    );
}

/// Symlinks and device nodes: kept when the destination has the same type
/// and value (only attributes fixed), otherwise created anew with `action`.
#[allow(clippy::too_many_arguments)]
fn plan_made_in_place(
    item: &mut Item,
    e: &Entry,
    opts: &Options,
    dx: Option<&[(std::ffi::OsString, Vec<u8>)]>,
    action: Action,
    same_type: impl Fn(&Meta) -> bool,
    value_changed: impl Fn(&Meta) -> bool,
) {
    match item.dest_meta {
        Some(d) if same_type(&d) => {
            if opts.ignore_existing {
                return;
            }
            let mut f = ItemFlags::default();
            if value_changed(&d) {
                f.change = true;
                f.local_change = true;
                item.action = action;
            }
            attr_flags(&mut f, e, &d, item.mode, opts, dx);
            if item.action == Action::Nothing && attrs_differ(&f) {
                item.action = Action::Attrs;
            }
            item.flags = f;
        }
        other => {
            if (opts.existing && other.is_none()) || (opts.ignore_existing && other.is_some()) {
                return;
            }
            item.replace = other.is_some();
            item.action = action;
            item.flags = ItemFlags {
                local_change: true,
                is_new: true,
                ..Default::default()
            };
        }
    }
    item.removable = true;
    item.log = should_log(e.meta.kind, &item.flags, opts);
}

fn plan_hard_link(
    item: &mut Item,
    leader: &Leader,
    e: &Entry,
    opts: &Options,
    dx: Option<&[(std::ffi::OsString, Vec<u8>)]>,
) {
    item.action = Action::Nothing;
    item.replace = false;
    item.link = None;
    item.flags = ItemFlags {
        local_change: true,
        hard_link: true,
        ..Default::default()
    };
    // Already another name of the leader's destination inode (which the leader
    // keeps unless it is being replaced by a transfer)?
    if let (Some(d), Some(ld)) = (item.dest_meta, leader.dest_meta) {
        let leader_keeps_inode = leader.action != Action::Transfer;
        if d.ino == ld.ino && d.dev == ld.dev && leader_keeps_inode {
            let mode = item.mode;
            attr_flags(&mut item.flags, e, &d, mode, opts, dx);
            item.log = item.flags.significant() || opts.itemize > 1 || opts.name_level() > 1;
            item.removable = true;
            return;
        }
    }
    if opts.existing && item.dest_meta.is_none() {
        item.log = false;
        return;
    }
    item.replace = item.dest_meta.is_some();
    item.action = Action::HardLink;
    item.link = Some(Box::new(leader.to.clone()));
    item.removable = true;
    match item.dest_meta {
        None => item.flags.is_new = true,
        Some(d) => {
            let mode = item.mode;
            attr_flags(&mut item.flags, e, &d, mode, opts, None);
        }
    }
    item.log = true;
}
