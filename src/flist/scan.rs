//! Parallel source scan (one rayon task per directory) and rsync's list order.

use super::{DestProbe, Entry, FileList, Kind, Meta};
use crate::options::Options;
use rayon::prelude::*;
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A problem met while scanning; the scan goes on (rsync's exit 23 or 24 later).
#[derive(Debug, Clone)]
pub struct ScanError {
    /// The rsync-shaped message, without the `rsync: ` prefix.
    pub message: String,
    /// Exit code class this error maps to (23 partial, 24 vanished).
    pub code: i32,
    /// Printed without the program-name prefix (rsync prints some that way).
    pub bare: bool,
}

impl ScanError {
    /// Print the message to stderr in rsync's shape.
    pub fn print(&self) {
        if self.bare {
            crate::report::message_bare(&self.message);
        } else {
            crate::report::message(&self.message);
        }
    }
}

struct Node {
    entry: Entry,
    children: Vec<Node>,
}

/// Shared, read-only facts for one scan.
struct Ctx<'a> {
    opts: &'a Options,
    /// Existing destination directory to probe while scanning (local transfers).
    probe: Option<&'a Path>,
    errors: Mutex<Vec<ScanError>>,
    /// Device of the current source root (for `-x`).
    root_dev: u64,
}

impl Ctx<'_> {
    fn error(&self, message: String, code: i32) {
        self.errors.lock().unwrap().push(ScanError {
            message,
            code,
            bare: false,
        });
    }

    fn bare_error(&self, message: String, code: i32) {
        self.errors.lock().unwrap().push(ScanError {
            message,
            code,
            bare: true,
        });
    }
}

/// Format an io error as rsync does: `Message (errno)`.
pub(crate) fn errno_text(e: &std::io::Error) -> String {
    let code = e.raw_os_error().unwrap_or(0);
    let msg = e.to_string();
    // std appends " (os error N)"; rsync prints "Message (N)".
    let base = match msg.find(" (os error") {
        Some(i) => &msg[..i],
        None => &msg[..],
    };
    format!("{base} ({code})")
}

/// Scan every source operand and return the merged list in rsync's order.
///
/// Errors (missing sources, unreadable directories) are returned beside the list;
/// the caller reports them and keeps going, as rsync does.
pub fn scan(opts: &Options, probe: Option<&Path>) -> (FileList, Vec<ScanError>) {
    let mut top: Vec<Node> = Vec::new();
    let mut dot: Option<Node> = None;
    let mut errors = Vec::new();
    for src in &opts.sources {
        let (node, is_dot, mut errs) = scan_operand(src, opts, probe);
        errors.append(&mut errs);
        let Some(node) = node else { continue };
        if is_dot {
            match &mut dot {
                None => dot = Some(node),
                Some(d) => merge_children(&mut d.children, node.children),
            }
        } else {
            merge_children(&mut top, vec![node]);
        }
    }
    let mut entries = Vec::new();
    match dot {
        Some(mut d) => {
            merge_children(&mut d.children, top);
            flatten(d, &mut entries, None);
        }
        None => flatten_children(top, &mut entries, None),
    }
    (FileList { entries }, errors)
}

/// Merge `more` into `into`, keeping the first of duplicate names (dirs merge).
fn merge_children(into: &mut Vec<Node>, more: Vec<Node>) {
    for n in more {
        match into.iter_mut().find(|x| x.entry.name == n.entry.name) {
            Some(existing) => {
                if existing.entry.meta.kind == Kind::Dir && n.entry.meta.kind == Kind::Dir {
                    merge_children(&mut existing.children, n.children);
                }
            }
            None => into.push(n),
        }
    }
}

fn flatten(node: Node, out: &mut Vec<Entry>, parent: Option<usize>) {
    let children = node.children;
    let mut e = node.entry;
    e.parent = parent;
    let me = out.len();
    out.push(e);
    flatten_children(children, out, Some(me));
}

fn flatten_children(children: Vec<Node>, out: &mut Vec<Entry>, parent: Option<usize>) {
    let (mut dirs, mut files): (Vec<Node>, Vec<Node>) = children
        .into_iter()
        .partition(|n| n.entry.meta.kind == Kind::Dir);
    files.sort_by(|a, b| base(&a.entry.name).cmp(base(&b.entry.name)));
    dirs.sort_by(|a, b| {
        let (x, y) = (base(&a.entry.name), base(&b.entry.name));
        x.iter()
            .chain(b"/".iter())
            .cmp(y.iter().chain(b"/".iter()))
    });
    for f in files {
        let mut e = f.entry;
        e.parent = parent;
        out.push(e);
    }
    for d in dirs {
        flatten(d, out, parent);
    }
}

fn base(p: &Path) -> &[u8] {
    p.file_name().unwrap_or(p.as_os_str()).as_bytes()
}

/// Scan one operand. Returns the root node, whether it is a "contents of" (`src/`)
/// operand whose root is named `.`, and errors.
fn scan_operand(
    src: &OsStr,
    opts: &Options,
    probe: Option<&Path>,
) -> (Option<Node>, bool, Vec<ScanError>) {
    let bytes = src.as_bytes();
    let trailing = bytes.ends_with(b"/") || bytes == b"." || bytes.ends_with(b"/.");
    let path = PathBuf::from(src);
    let ctx = Ctx {
        opts,
        probe,
        errors: Mutex::new(Vec::new()),
        root_dev: 0,
    };
    let md = if opts.copy_links {
        std::fs::metadata(&path)
    } else {
        std::fs::symlink_metadata(&path)
    };
    let md = match md {
        Ok(m) => m,
        Err(e) => {
            ctx.error(
                format!(
                    "[sender] link_stat \"{}\" failed: {}",
                    crate::report::abs_display(&path),
                    errno_text(&e)
                ),
                crate::exit::PARTIAL,
            );
            return (None, false, ctx.errors.into_inner().unwrap());
        }
    };
    let mut meta = Meta::from_std(&md);
    if meta.kind == Kind::Symlink && (opts.copy_dirlinks || opts.copy_unsafe_links) {
        if let Ok(m) = std::fs::metadata(&path) {
            if m.is_dir() || opts.copy_unsafe_links {
                meta = Meta::from_std(&m);
            }
        }
    }
    let ctx = Ctx {
        root_dev: meta.dev,
        ..ctx
    };
    let rel = if opts.relative {
        relative_name(bytes)
    } else {
        None
    };
    let is_dot = trailing && meta.kind == Kind::Dir && (!opts.relative || rel.is_none());
    let name: PathBuf = if let Some(r) = &rel {
        r.clone()
    } else if is_dot {
        PathBuf::from(".")
    } else {
        let trimmed = trim_trailing(bytes);
        let b = match trimmed.iter().rposition(|&c| c == b'/') {
            Some(i) => &trimmed[i + 1..],
            None => trimmed,
        };
        PathBuf::from(OsStr::from_bytes(b))
    };
    if meta.kind == Kind::Dir && !opts.recursive && !opts.dirs {
        eprintln_msg(&format!(
            "skipping directory {}",
            crate::report::escape_name(&name, opts.eight_bit_output)
        ));
        return (None, false, ctx.errors.into_inner().unwrap());
    }
    let entry = match make_entry(&ctx, name, path, meta, true) {
        Some(e) => e,
        None => return (None, false, ctx.errors.into_inner().unwrap()),
    };
    let mut node = Node {
        entry,
        children: Vec::new(),
    };
    if node.entry.meta.kind == Kind::Dir && (opts.recursive || (opts.dirs && is_dot)) {
        let depth_limit = !opts.recursive;
        node.children = scan_dir(&ctx, &node.entry.src, &node.entry.name, is_dot, depth_limit);
    } else if node.entry.meta.kind == Kind::Dir {
        node.entry.no_recurse = true;
    }
    if let Some(r) = &rel {
        node = wrap_implied(&ctx, bytes, r, node);
    }
    (Some(node), is_dot, ctx.errors.into_inner().unwrap())
}

/// `-R`: the path that is recreated under the destination: everything after a
/// `/./` marker, else the whole operand without leading `/` and `./`.
/// None when nothing is left (the operand is `.` or `/`).
fn relative_name(b: &[u8]) -> Option<PathBuf> {
    let start = b
        .windows(3)
        .rposition(|w| w == b"/./")
        .map(|i| i + 3)
        .unwrap_or(0);
    let mut r = trim_trailing(&b[start..]);
    loop {
        if let Some(rest) = r.strip_prefix(b"/") {
            r = rest;
        } else if let Some(rest) = r.strip_prefix(b"./") {
            r = rest;
        } else {
            break;
        }
    }
    let r: Vec<u8> = r
        .split(|&c| c == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .collect::<Vec<_>>()
        .join(&b'/');
    if r.is_empty() {
        None
    } else {
        Some(PathBuf::from(OsStr::from_bytes(&r)))
    }
}

/// `-R`: put the operand's node under nodes for its parent directories (the
/// "implied dirs"), which carry their own source metadata, as rsync sends them.
fn wrap_implied(ctx: &Ctx, operand: &[u8], rel: &Path, node: Node) -> Node {
    let comps: Vec<&OsStr> = rel.iter().collect();
    if comps.len() < 2 {
        return node;
    }
    // The source path of the relative root: operand minus the relative part.
    let op = trim_trailing(operand);
    let rel_b = rel.as_os_str().as_bytes();
    let base_len = op.len().saturating_sub(rel_b.len());
    let base = PathBuf::from(OsStr::from_bytes(&op[..base_len]));
    let mut node = node;
    for depth in (1..comps.len()).rev() {
        let name: PathBuf = comps[..depth].iter().collect();
        let src = if base.as_os_str().is_empty() {
            name.clone()
        } else {
            base.join(&name)
        };
        let meta = match std::fs::metadata(&src) {
            Ok(m) => Meta::from_std(&m),
            Err(_) => break,
        };
        let xattrs = (ctx.opts.xattrs || ctx.opts.acls).then(|| read_xattrs(&src, ctx.opts));
        node = Node {
            entry: Entry {
                name,
                src,
                meta,
                link_target: None,
                xattrs,
                no_recurse: true,
                implied: true,
                parent: None,
                skip: false,
                dest: DestProbe::Unknown,
            },
            children: vec![node],
        };
    }
    if !ctx.opts.implied_dirs {
        // Drop the implied entries but keep the operand itself.
        let mut n = node;
        while n.entry.implied && n.children.len() == 1 {
            n = n.children.pop().expect("one child");
        }
        return n;
    }
    node
}

fn trim_trailing(b: &[u8]) -> &[u8] {
    let mut end = b.len();
    while end > 1 && b[end - 1] == b'/' {
        end -= 1;
    }
    &b[..end]
}

/// Print a non-fatal message the way rsync prints its `rsync: ...` lines.
fn eprintln_msg(msg: &str) {
    crate::report::message(msg);
}

fn child_name(parent: &Path, is_dot: bool, name: &OsStr) -> PathBuf {
    if is_dot {
        PathBuf::from(name)
    } else {
        parent.join(name)
    }
}

/// Read one directory and its subtree. `shallow` (from `-d`) stops after one level.
fn scan_dir(ctx: &Ctx, dir: &Path, name: &Path, is_dot: bool, shallow: bool) -> Vec<Node> {
    let opened = crate::sys::meta::open_dir(dir).and_then(|fd| {
        let names = crate::sys::dir::read_names_fd(&fd)?;
        Ok((fd, names))
    });
    let (fd, names) = match opened {
        Ok(x) => x,
        Err(e) => {
            ctx.error(
                format!(
                    "[sender] opendir \"{}\" failed: {}",
                    crate::report::abs_display(dir),
                    errno_text(&e)
                ),
                crate::exit::PARTIAL,
            );
            return Vec::new();
        }
    };
    let opts = ctx.opts;
    // The matching destination directory, opened once to stat its entries.
    let dest_fd = ctx.probe.and_then(|root| {
        let d = if name.as_os_str() == "." {
            root.to_path_buf()
        } else {
            root.join(name)
        };
        crate::sys::meta::open_dir(&d).ok()
    });
    let mut nodes: Vec<Node> = names
        .into_iter()
        .filter_map(|n| {
            let path = dir.join(&n);
            let md = crate::sys::meta::lstat_at(&fd, &n);
            let md = match md {
                Ok(m) => m,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    ctx.error(
                        format!(
                            "[sender] file has vanished: \"{}\"",
                            crate::report::abs_display(&path)
                        ),
                        crate::exit::VANISHED,
                    );
                    return None;
                }
                Err(e) => {
                    ctx.error(
                        format!(
                            "[sender] readlink_stat(\"{}\") failed: {}",
                            crate::report::abs_display(&path),
                            errno_text(&e)
                        ),
                        crate::exit::PARTIAL,
                    );
                    return None;
                }
            };
            let meta = Meta::from_sys(&md);
            let mut entry = make_entry(ctx, child_name(name, is_dot, &n), path, meta, false)?;
            if ctx.probe.is_some() {
                entry.dest = match &dest_fd {
                    Some(fd) => match crate::sys::meta::lstat_at(fd, &n) {
                        Ok(st) => DestProbe::Found(Meta::from_sys(&st)),
                        Err(_) => DestProbe::Missing,
                    },
                    None => DestProbe::Missing,
                };
            }
            Some(Node {
                entry,
                children: Vec::new(),
            })
        })
        .collect();
    nodes.par_iter_mut().for_each(|node| {
        if node.entry.meta.kind != Kind::Dir {
            return;
        }
        if shallow {
            node.entry.no_recurse = true;
            return;
        }
        if opts.one_file_system > 0 && node.entry.meta.dev != ctx.root_dev {
            node.entry.no_recurse = true;
            return;
        }
        let src = node.entry.src.clone();
        let nm = node.entry.name.clone();
        node.children = scan_dir(ctx, &src, &nm, false, false);
    });
    if opts.one_file_system > 1 {
        nodes.retain(|n| n.entry.meta.kind != Kind::Dir || n.entry.meta.dev == ctx.root_dev);
    }
    nodes
}

/// Is a symlink target "unsafe" in rsync's sense: absolute, or climbing with `..`
/// above the top of the transfer given the link's depth below it.
pub fn unsafe_symlink(target: &[u8], name: &Path) -> bool {
    if target.is_empty() || target.starts_with(b"/") {
        return true;
    }
    // Depth of the directory holding the link, below the transfer root.
    let mut depth: i64 = name
        .as_os_str()
        .as_bytes()
        .split(|&c| c == b'/')
        .filter(|c| !c.is_empty() && *c != b".")
        .count() as i64
        - 1;
    for comp in target.split(|&c| c == b'/') {
        match comp {
            b"" | b"." => {}
            b".." => {
                depth -= 1;
                if depth < 0 {
                    return true;
                }
            }
            _ => depth += 1,
        }
    }
    false
}

/// Build an entry for `path`, applying the symlink options; `None` means skip it.
fn make_entry(ctx: &Ctx, name: PathBuf, path: PathBuf, meta: Meta, top: bool) -> Option<Entry> {
    let opts = ctx.opts;
    let mut meta = meta;
    let mut link_target = None;
    if meta.kind == Kind::Symlink {
        let target = match std::fs::read_link(&path) {
            Ok(t) => t.into_os_string(),
            Err(e) => {
                ctx.error(
                    format!(
                        "[sender] readlink_stat(\"{}\") failed: {}",
                        crate::report::abs_display(&path),
                        errno_text(&e)
                    ),
                    crate::exit::PARTIAL,
                );
                return None;
            }
        };
        let is_unsafe = unsafe_symlink(target.as_bytes(), &name);
        let follow = opts.copy_links
            || (opts.copy_unsafe_links && is_unsafe)
            || (opts.copy_dirlinks && std::fs::metadata(&path).is_ok_and(|m| m.is_dir()));
        if follow {
            match std::fs::metadata(&path) {
                Ok(m) => meta = Meta::from_std(&m),
                Err(_) => {
                    ctx.bare_error(
                        format!(
                            "symlink has no referent: \"{}\"",
                            crate::report::abs_display(&path)
                        ),
                        crate::exit::PARTIAL,
                    );
                    return None;
                }
            }
        } else if opts.safe_links && is_unsafe && opts.links {
            if opts.verbose > 0 {
                crate::report::message_stdout(&format!(
                    "ignoring unsafe symlink \"{}\" -> \"{}\"",
                    crate::report::abs_display(&path),
                    String::from_utf8_lossy(target.as_bytes())
                ));
            }
            return None;
        } else {
            meta.size = target.len() as u64;
            link_target = Some(target);
        }
    }
    let skip_msg = match meta.kind {
        Kind::Symlink if !opts.links => true,
        Kind::Device if !opts.devices => true,
        Kind::Special if !opts.specials => true,
        _ => false,
    };
    let _ = top;
    let xattrs = if opts.xattrs || opts.acls {
        Some(read_xattrs(&path, opts))
    } else {
        None
    };
    Some(Entry {
        name,
        src: path,
        meta,
        link_target,
        xattrs,
        no_recurse: false,
        implied: false,
        parent: None,
        skip: skip_msg,
        dest: DestProbe::Unknown,
    })
}

/// Which xattr names a transfer copies: `-X` takes user.* (and trusted./security.
/// as root), `-A` takes the POSIX ACL xattrs.
pub fn xattr_wanted(name: &[u8], opts: &Options) -> bool {
    if name.starts_with(b"system.posix_acl_") {
        return opts.acls;
    }
    if !opts.xattrs {
        return false;
    }
    if name.starts_with(b"user.") {
        return true;
    }
    opts.am_root && (name.starts_with(b"trusted.") || name.starts_with(b"security."))
}

/// Read the wanted xattrs of `path` (not following symlinks), sorted by name.
pub fn read_xattrs(path: &Path, opts: &Options) -> Vec<(OsString, Vec<u8>)> {
    let mut out = Vec::new();
    let mut buf = vec![0u8; 4096];
    let names = loop {
        match rustix::fs::llistxattr(path, &mut buf) {
            Ok(n) => break buf[..n].to_vec(),
            Err(rustix::io::Errno::RANGE) => buf.resize(buf.len() * 4, 0),
            Err(_) => return out,
        }
    };
    for name in names.split(|&c| c == 0).filter(|n| !n.is_empty()) {
        if !xattr_wanted(name, opts) {
            continue;
        }
        let cname = OsString::from_vec(name.to_vec());
        let mut vbuf = vec![0u8; 4096];
        loop {
            match rustix::fs::lgetxattr(path, cname.as_os_str(), &mut vbuf) {
                Ok(n) => {
                    vbuf.truncate(n);
                    out.push((cname, vbuf));
                    break;
                }
                Err(rustix::io::Errno::RANGE) => vbuf.resize(vbuf.len() * 4, 0),
                Err(_) => break,
            }
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}
