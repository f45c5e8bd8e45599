//! Phase 1: compare every file-list entry with the destination and decide what to do.
//!
//! This runs sequentially in file-list order (cheap: the stats of the destination
//! were gathered in parallel beforehand), so that itemize and `-v` lines come out
//! in exactly rsync's order. The decisions follow rsync's generator: the quick
//! check (size + mtime), `-c`, `--size-only`, `-I`, `-u`, `--modify-window`,
//! `--existing`, `--ignore-existing`, `--max-size`, `--min-size`.

pub mod chmod;
pub mod quick;

use crate::flist::{Entry, FileList, Kind, Meta};
use crate::options::Options;
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
    /// Hard-link to the destination of entry `leader` (`-H`).
    HardLink {
        /// Index of the group leader in the file list.
        leader: usize,
    },
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
}

/// The plan for a whole transfer, index-aligned with the file list.
#[derive(Debug, Default)]
pub struct Plan {
    /// One item per file-list entry.
    pub items: Vec<Item>,
    /// Indexes in the order their lines are printed: file-list order, except
    /// that hard links waiting on a transfer come out at the end, as in rsync.
    pub print_order: Vec<usize>,
}

/// `-H` bookkeeping for one group of hard-linked source files, mirroring
/// rsync's generator: the first member that is found done becomes the leader;
/// a member being transferred makes later ones wait for it; missing members
/// other than the last wait for a later one to be transferred.
#[derive(Default)]
struct LinkGroup {
    seen: usize,
    size: usize,
    leader: Option<usize>,
    sent: Option<usize>,
    queued: Vec<usize>,
    deferred: Vec<usize>,
}

/// Inputs to the planner besides the options.
pub struct PlanInput<'a> {
    /// The file list.
    pub flist: &'a FileList,
    /// Destination path for each entry.
    pub dests: Vec<PathBuf>,
    /// `lstat` of each destination path (None = missing).
    pub dest_metas: Vec<Option<Meta>>,
    /// Destination xattrs for entries whose dest exists (only with -X/-A).
    pub dest_xattrs: Vec<Option<Vec<(std::ffi::OsString, Vec<u8>)>>>,
    /// The process umask (for new files without `-p`).
    pub umask: u32,
}

/// Decide the action for every entry.
pub fn plan(input: PlanInput, opts: &Options) -> Plan {
    let PlanInput {
        flist,
        dests,
        dest_metas,
        dest_xattrs,
        umask,
    } = input;
    let chmod = chmod::parse_all(&opts.chmod).unwrap_or_default();
    let mut items: Vec<Item> = Vec::with_capacity(flist.entries.len());
    let mut print_order = Vec::with_capacity(flist.entries.len());
    let mut late = Vec::new();
    let mut groups: HashMap<(u64, u64), LinkGroup> = HashMap::new();
    let linked = |e: &Entry| opts.hard_links && e.meta.kind != Kind::Dir && e.meta.nlink > 1;
    if opts.hard_links {
        for e in flist.entries.iter().filter(|e| linked(e)) {
            groups.entry((e.meta.dev, e.meta.ino)).or_default().size += 1;
        }
    }
    // Destination inodes with several names whose attributes an earlier item
    // fixes: later names see the fixed state, as rsync's sequential stat does.
    let mut fixed: HashMap<(u64, u64), Meta> = HashMap::new();
    for (i, e) in flist.entries.iter().enumerate() {
        let d = dest_metas[i].map(|d| {
            if d.nlink > 1 {
                fixed.get(&(d.dev, d.ino)).copied().unwrap_or(d)
            } else {
                d
            }
        });
        let dest = dests[i].clone();
        let mode = final_mode(e, d.as_ref(), opts, umask, &chmod);
        let mut item = Item {
            action: Action::Nothing,
            flags: ItemFlags::default(),
            dest,
            dest_meta: d,
            replace: false,
            mode,
            log: false,
        };
        let dx = dest_xattrs[i].as_deref();
        if e.skip {
            items.push(item);
            print_order.push(i);
            continue;
        }
        match e.meta.kind {
            Kind::Dir => plan_dir(&mut item, e, opts, dx),
            Kind::File => plan_file(&mut item, e, opts, dx),
            Kind::Symlink => plan_symlink(&mut item, e, opts, dx),
            Kind::Device | Kind::Special => plan_node(&mut item, e, opts, dx),
        }
        if let (Action::Attrs, Some(d)) = (&item.action, item.dest_meta) {
            if d.nlink > 1 && d.kind != Kind::Dir {
                fixed.insert((d.dev, d.ino), fixed_meta(d, e, item.mode, opts));
            }
        }
        if !linked(e) || size_excluded(e, opts) {
            items.push(item);
            print_order.push(i);
            continue;
        }
        let g = groups.get_mut(&(e.meta.dev, e.meta.ino)).expect("counted");
        let pos = g.seen;
        g.seen += 1;
        if pos > 0 {
            if let Some(l) = g.leader {
                plan_hard_link(&mut item, l, &items, e, opts, dx);
                items.push(item);
                print_order.push(i);
                continue;
            }
            if g.sent.is_some() {
                g.queued.push(i);
                items.push(item);
                continue;
            }
        }
        let missing = item.dest_meta.is_none_or(|m| m.kind != e.meta.kind);
        if item.action == Action::Transfer && missing && pos + 1 < g.size {
            g.deferred.push(i);
            items.push(item);
            continue;
        }
        items.push(item);
        print_order.push(i);
        if items[i].action == Action::Transfer {
            g.sent = Some(i);
        } else {
            g.leader = Some(i);
            for j in std::mem::take(&mut g.deferred).into_iter().rev() {
                let mut it = items[j].clone();
                plan_hard_link(&mut it, i, &items, &flist.entries[j], opts, dest_xattrs[j].as_deref());
                items[j] = it;
                print_order.push(j);
            }
        }
    }
    // Links waiting on a transferred leader: queued ones in order, then the
    // deferred ones from the last back to the first (rsync's chain walk).
    let mut sent: Vec<&LinkGroup> = groups.values().filter(|g| g.sent.is_some()).collect();
    sent.sort_by_key(|g| g.sent);
    // With --dry-run nothing is transferred, so the links follow at once.
    let mut order_with_links: Vec<usize> = Vec::new();
    for g in sent {
        let s = g.sent.expect("filtered");
        for &j in g.queued.iter().chain(g.deferred.iter().rev()) {
            let mut it = items[j].clone();
            plan_hard_link(&mut it, s, &items, &flist.entries[j], opts, dest_xattrs[j].as_deref());
            items[j] = it;
            late.push((s, j));
        }
    }
    if opts.dry_run {
        for &i in &print_order {
            order_with_links.push(i);
            order_with_links.extend(late.iter().filter(|(s, _)| *s == i).map(|(_, j)| *j));
        }
        print_order = order_with_links;
    } else {
        print_order.extend(late.into_iter().map(|(_, j)| j));
    }
    Plan { items, print_order }
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

/// Compare attributes of an existing destination entry with the source.
fn attr_flags(
    f: &mut ItemFlags,
    e: &Entry,
    d: &Meta,
    mode: u32,
    opts: &Options,
    dx: Option<&[(std::ffi::OsString, Vec<u8>)]>,
) {
    let keep_time = opts.times
        && match e.meta.kind {
            Kind::Dir => !opts.omit_dir_times,
            Kind::Symlink => !opts.omit_link_times,
            _ => true,
        };
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
    if e.meta.kind != Kind::Symlink && (opts.perms || opts.executability) && d.perms() != mode {
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
        let mode_bits = tag == USER_OBJ || tag == OTHER || tag == MASK || (tag == GROUP_OBJ && !has_mask);
        if mode_bits {
            continue;
        }
        out.extend_from_slice(&tag.to_le_bytes());
        out.extend_from_slice(&perm.to_le_bytes());
        out.extend_from_slice(&id.to_le_bytes());
    }
    out
}

fn attrs_differ(f: &ItemFlags) -> bool {
    f.time || f.perms || f.owner || f.group || f.atime || f.acl || f.xattr
}

/// rsync's `maybe_log_item` / receiver logging rules for whether a line is printed.
fn should_log(kind: Kind, f: &ItemFlags, opts: &Options) -> bool {
    let itemizing = opts.itemize > 0
        || opts
            .out_format
            .as_deref()
            .is_some_and(|s| s.contains("%i"));
    let significant = f.significant();
    if f.transfer {
        return true;
    }
    let see_item = itemizing && (significant || opts.itemize > 1 || opts.verbose > 1);
    let local_change = f.local_change && significant;
    see_item || local_change || (kind == Kind::Dir && significant)
}

fn size_excluded(e: &Entry, opts: &Options) -> bool {
    if e.meta.kind != Kind::File {
        return false;
    }
    opts.max_size.is_some_and(|m| e.meta.size > m) || opts.min_size.is_some_and(|m| e.meta.size < m)
}

fn plan_dir(item: &mut Item, e: &Entry, opts: &Options, dx: Option<&[(std::ffi::OsString, Vec<u8>)]>) {
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
            if (opts.existing && other.is_none() && e.name.as_os_str() != ".")
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

fn plan_file(item: &mut Item, e: &Entry, opts: &Options, dx: Option<&[(std::ffi::OsString, Vec<u8>)]>) {
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
            let unchanged = quick::unchanged(&e.meta, &d, &e.src, &item.dest, opts);
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
    item.log = should_log(Kind::File, &item.flags, opts);
}

fn plan_symlink(item: &mut Item, e: &Entry, opts: &Options, dx: Option<&[(std::ffi::OsString, Vec<u8>)]>) {
    match item.dest_meta {
        Some(d) if d.kind == Kind::Symlink => {
            if opts.ignore_existing {
                return;
            }
            let cur = std::fs::read_link(&item.dest).ok().map(|p| p.into_os_string());
            let mut f = ItemFlags::default();
            if cur.as_ref() != e.link_target.as_ref() {
                f.change = true;
                f.local_change = true;
                item.action = Action::Symlink;
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
            item.action = Action::Symlink;
            item.flags = ItemFlags {
                local_change: true,
                is_new: true,
                ..Default::default()
            };
        }
    }
    item.log = should_log(Kind::Symlink, &item.flags, opts);
}

fn plan_node(item: &mut Item, e: &Entry, opts: &Options, dx: Option<&[(std::ffi::OsString, Vec<u8>)]>) {
    let same_type = |d: &Meta| d.mode & libc::S_IFMT == e.meta.mode & libc::S_IFMT;
    match item.dest_meta {
        Some(d) if same_type(&d) => {
            if opts.ignore_existing {
                return;
            }
            let mut f = ItemFlags::default();
            if e.meta.kind == Kind::Device && d.rdev != e.meta.rdev {
                f.change = true;
                f.local_change = true;
                item.action = Action::Mknod;
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
            item.action = Action::Mknod;
            item.flags = ItemFlags {
                local_change: true,
                is_new: true,
                ..Default::default()
            };
        }
    }
    item.log = should_log(e.meta.kind, &item.flags, opts);
}

fn plan_hard_link(
    item: &mut Item,
    leader: usize,
    items: &[Item],
    e: &Entry,
    opts: &Options,
    dx: Option<&[(std::ffi::OsString, Vec<u8>)]>,
) {
    let leader_item = &items[leader];
    item.action = Action::Nothing;
    item.replace = false;
    item.flags = ItemFlags {
        local_change: true,
        hard_link: true,
        ..Default::default()
    };
    // Already another name of the leader's destination inode (which the leader
    // keeps unless it is being replaced by a transfer)?
    if let (Some(d), Some(ld)) = (item.dest_meta, leader_item.dest_meta) {
        let leader_keeps_inode = leader_item.action != Action::Transfer;
        if d.ino == ld.ino && d.dev == ld.dev && leader_keeps_inode {
            let mode = item.mode;
            attr_flags(&mut item.flags, e, &d, mode, opts, dx);
            item.log = item.flags.significant() || opts.itemize > 1 || opts.verbose > 1;
            return;
        }
    }
    if opts.existing && item.dest_meta.is_none() {
        item.log = false;
        return;
    }
    item.replace = item.dest_meta.is_some();
    item.action = Action::HardLink { leader };
    match item.dest_meta {
        None => item.flags.is_new = true,
        Some(d) => {
            let mode = item.mode;
            attr_flags(&mut item.flags, e, &d, mode, opts, None);
        }
    }
    item.log = true;
}
