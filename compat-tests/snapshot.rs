//! Snapshots of a directory tree (lstat-based) and their comparison.

use std::collections::{BTreeMap, HashMap};
use std::ffi::CString;
use std::fs;
use std::hash::Hasher;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::tree::cstr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    File,
    Dir,
    Symlink,
    Fifo,
    Char,
    Block,
    Socket,
}

/// Everything recorded about one entry. Paths are relative to the snapshot root, as bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    pub kind: Kind,
    /// `st_mode & 0o7777` (the type is in `kind`).
    pub perm: u32,
    pub uid: u32,
    pub gid: u32,
    pub mtime: (i64, i64),
    /// Compared only with `Mask::atimes`.
    pub atime: (i64, i64),
    /// Size for regular files and symlinks, 0 otherwise (directory sizes are FS noise).
    pub size: u64,
    /// Hash of the contents of a regular file.
    pub hash: u64,
    /// First bytes of a regular file, for readable diffs.
    pub head: Vec<u8>,
    /// Regular file with fewer allocated bytes than its size (has holes).
    pub sparse: bool,
    pub target: Option<Vec<u8>>,
    /// (major, minor) of char/block devices.
    pub rdev: Option<(u32, u32)>,
    /// For a non-directory whose inode appears more than once in the tree: the first path (in
    /// sorted order) with that inode. Lets two trees compare by grouping, not by number.
    pub link_group: Option<Vec<u8>>,
    /// All xattrs except the ACL ones, name -> value.
    pub xattrs: BTreeMap<Vec<u8>, Vec<u8>>,
    /// Raw `system.posix_acl_access` value.
    pub acl_access: Option<Vec<u8>>,
    /// Raw `system.posix_acl_default` value.
    pub acl_default: Option<Vec<u8>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Snapshot {
    pub entries: BTreeMap<Vec<u8>, Entry>,
}

const HEAD: usize = 48;

fn content(p: &Path) -> (u64, Vec<u8>) {
    use std::os::unix::fs::OpenOptionsExt;
    // O_NOATIME: taking a snapshot must not change what a later snapshot records.
    let f = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOATIME)
        .open(p);
    let mut f = match f.or_else(|_| fs::File::open(p)) {
        Ok(f) => f,
        Err(e) => return (0, format!("<unreadable: {e}>").into_bytes()),
    };
    let mut h = std::hash::DefaultHasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut head = Vec::new();
    loop {
        let n = f.read(&mut buf).unwrap();
        if n == 0 {
            break;
        }
        if head.len() < HEAD {
            let k = (HEAD - head.len()).min(n);
            head.extend_from_slice(&buf[..k]);
        }
        h.write(&buf[..n]);
    }
    (h.finish(), head)
}

fn list_xattrs(p: &Path) -> Vec<Vec<u8>> {
    let c = cstr(p);
    let mut buf = vec![0u8; 65536];
    let n = unsafe { libc::llistxattr(c.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if n <= 0 {
        return Vec::new();
    }
    buf.truncate(n as usize);
    buf.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| s.to_vec())
        .collect()
}

fn get_xattr(p: &Path, name: &[u8]) -> Option<Vec<u8>> {
    let c = cstr(p);
    let n = CString::new(name.to_vec()).unwrap();
    let mut buf = vec![0u8; 65536];
    let r = unsafe { libc::lgetxattr(c.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
    if r < 0 {
        return None;
    }
    buf.truncate(r as usize);
    Some(buf)
}

const ACL_ACCESS: &[u8] = b"system.posix_acl_access";
const ACL_DEFAULT: &[u8] = b"system.posix_acl_default";

/// Snapshot `root` (which may be anything, or absent: then the snapshot is empty). The
/// root itself is recorded under the empty path.
pub fn take(root: &Path) -> Snapshot {
    let mut snap = Snapshot::default();
    let mut inodes: HashMap<(u64, u64), Vec<Vec<u8>>> = HashMap::new();
    if fs::symlink_metadata(root).is_err() {
        return snap;
    }
    walk(root, Vec::new(), &mut snap, &mut inodes);
    for (_, mut paths) in inodes {
        if paths.len() > 1 {
            paths.sort();
            let first = paths[0].clone();
            for p in paths {
                snap.entries.get_mut(&p).unwrap().link_group = Some(first.clone());
            }
        }
    }
    snap
}

fn walk(
    p: &Path,
    rel: Vec<u8>,
    snap: &mut Snapshot,
    inodes: &mut HashMap<(u64, u64), Vec<Vec<u8>>>,
) {
    let md = fs::symlink_metadata(p).unwrap();
    let ft = md.mode() & libc::S_IFMT;
    let kind = match ft {
        libc::S_IFREG => Kind::File,
        libc::S_IFDIR => Kind::Dir,
        libc::S_IFLNK => Kind::Symlink,
        libc::S_IFIFO => Kind::Fifo,
        libc::S_IFCHR => Kind::Char,
        libc::S_IFBLK => Kind::Block,
        _ => Kind::Socket,
    };
    let (hash, head) = if kind == Kind::File {
        content(p)
    } else {
        (0, Vec::new())
    };
    let mut xattrs = BTreeMap::new();
    let (mut acl_access, mut acl_default) = (None, None);
    for name in list_xattrs(p) {
        let v = get_xattr(p, &name);
        if name == ACL_ACCESS {
            acl_access = v;
        } else if name == ACL_DEFAULT {
            acl_default = v;
        } else if let Some(v) = v {
            xattrs.insert(name, v);
        }
    }
    if kind != Kind::Dir && md.nlink() > 1 {
        inodes
            .entry((md.dev(), md.ino()))
            .or_default()
            .push(rel.clone());
    }
    let rdev = matches!(kind, Kind::Char | Kind::Block)
        .then(|| (libc::major(md.rdev()), libc::minor(md.rdev())));
    let e = Entry {
        kind,
        perm: md.mode() & 0o7777,
        uid: md.uid(),
        gid: md.gid(),
        mtime: (md.mtime(), md.mtime_nsec()),
        atime: (md.atime(), md.atime_nsec()),
        size: if matches!(kind, Kind::File | Kind::Symlink) {
            md.size()
        } else {
            0
        },
        hash,
        head,
        sparse: kind == Kind::File && md.size() > 0 && md.blocks() * 512 < md.size(),
        target: (kind == Kind::Symlink)
            .then(|| fs::read_link(p).unwrap().as_os_str().as_bytes().to_vec()),
        rdev,
        link_group: None,
        xattrs,
        acl_access,
        acl_default,
    };
    snap.entries.insert(rel.clone(), e);
    if kind == Kind::Dir {
        let mut names: Vec<_> = fs::read_dir(p)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        names.sort();
        for n in names {
            let mut r = rel.clone();
            if !r.is_empty() {
                r.push(b'/');
            }
            r.extend_from_slice(n.as_bytes());
            walk(&p.join(&n), r, snap, inodes);
        }
    }
}

/// Things a scenario may choose not to compare; each use must be documented at the
/// scenario. Everything is compared by default.
#[derive(Clone, Debug, Default)]
pub struct Mask {
    /// Ignore mtimes of directories.
    pub dir_mtimes: bool,
    /// Ignore whether files are sparse.
    pub sparse: bool,
    /// Also compare atimes of regular files below `dst/` (scenarios with `-U`). Other
    /// atimes change whenever something reads a file or lists a directory.
    pub atimes: bool,
    /// Ignore entries whose path starts with one of these prefixes.
    pub paths: Vec<&'static str>,
}

/// A time window in nanoseconds since the epoch during which a program ran. An mtime
/// inside the window means "set to the current time by the run", which can't be
/// reproduced exactly, so two such mtimes compare equal.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub start: i128,
    pub end: i128,
}

impl Window {
    fn contains(&self, t: (i64, i64)) -> bool {
        let ns = t.0 as i128 * 1_000_000_000 + t.1 as i128;
        // The kernel stamps files with a coarse clock: allow a little slack.
        ns >= self.start - 1_000_000_000 && ns <= self.end + 1_000_000_000
    }
}

pub fn show_path(p: &[u8]) -> String {
    if p.is_empty() {
        return ".".into();
    }
    p.escape_ascii().to_string()
}

fn show_time(t: (i64, i64)) -> String {
    format!("{}.{:09}", t.0, t.1)
}

fn show_bytes(b: &[u8]) -> String {
    format!("\"{}\"", b.escape_ascii())
}

fn kind_str(k: Kind) -> &'static str {
    match k {
        Kind::File => "file",
        Kind::Dir => "dir",
        Kind::Symlink => "symlink",
        Kind::Fifo => "fifo",
        Kind::Char => "char-device",
        Kind::Block => "block-device",
        Kind::Socket => "socket",
    }
}

/// Compare two snapshots. `a` is the oracle (expected), `b` the candidate. Returns one
/// readable line per difference; empty means equal. Windows, when given, are the run
/// windows of the respective programs (see [`Window`]).
pub fn diff(
    a: &Snapshot,
    b: &Snapshot,
    wa: Option<Window>,
    wb: Option<Window>,
    mask: &Mask,
) -> Vec<String> {
    let mut out = Vec::new();
    let masked = |p: &[u8]| mask.paths.iter().any(|m| p.starts_with(m.as_bytes()));
    let mut keys: Vec<&Vec<u8>> = a.entries.keys().chain(b.entries.keys()).collect();
    keys.sort();
    keys.dedup();
    for k in keys {
        if masked(k) {
            continue;
        }
        let name = show_path(k);
        let (ea, eb) = match (a.entries.get(k), b.entries.get(k)) {
            (Some(ea), Some(eb)) => (ea, eb),
            (Some(ea), None) => {
                out.push(format!(
                    "{name}: missing in candidate (oracle has a {})",
                    kind_str(ea.kind)
                ));
                continue;
            }
            (None, Some(eb)) => {
                out.push(format!(
                    "{name}: extra in candidate (a {})",
                    kind_str(eb.kind)
                ));
                continue;
            }
            (None, None) => unreachable!(),
        };
        if ea.kind != eb.kind {
            out.push(format!(
                "{name}: type {} (oracle) vs {} (candidate)",
                kind_str(ea.kind),
                kind_str(eb.kind)
            ));
            continue;
        }
        let mut d = |what: &str, x: String, y: String| {
            out.push(format!("{name}: {what} {x} (oracle) vs {y} (candidate)"));
        };
        if ea.perm != eb.perm {
            d(
                "mode",
                format!("{:04o}", ea.perm),
                format!("{:04o}", eb.perm),
            );
        }
        if ea.uid != eb.uid {
            d("uid", ea.uid.to_string(), eb.uid.to_string());
        }
        if ea.gid != eb.gid {
            d("gid", ea.gid.to_string(), eb.gid.to_string());
        }
        let time_ok = ea.mtime == eb.mtime
            || (ea.kind == Kind::Dir && mask.dir_mtimes)
            || matches!((wa, wb), (Some(x), Some(y)) if x.contains(ea.mtime) && y.contains(eb.mtime));
        if !time_ok {
            d("mtime", show_time(ea.mtime), show_time(eb.mtime));
        }
        let atime_ok = !mask.atimes
            || !k.starts_with(b"dst/")
            || ea.kind != Kind::File
            || ea.atime == eb.atime
            || matches!((wa, wb), (Some(x), Some(y)) if x.contains(ea.atime) && y.contains(eb.atime));
        if !atime_ok {
            d("atime", show_time(ea.atime), show_time(eb.atime));
        }
        if ea.size != eb.size {
            d("size", ea.size.to_string(), eb.size.to_string());
        }
        if ea.hash != eb.hash || ea.head != eb.head {
            d("content", show_bytes(&ea.head), show_bytes(&eb.head));
        }
        if ea.sparse != eb.sparse && !mask.sparse {
            d("sparse", ea.sparse.to_string(), eb.sparse.to_string());
        }
        if ea.target != eb.target {
            let t = |t: &Option<Vec<u8>>| t.as_deref().map(show_bytes).unwrap_or_default();
            d("symlink target", t(&ea.target), t(&eb.target));
        }
        if ea.rdev != eb.rdev {
            d("rdev", format!("{:?}", ea.rdev), format!("{:?}", eb.rdev));
        }
        if ea.link_group != eb.link_group {
            let g = |g: &Option<Vec<u8>>| match g {
                Some(p) => format!("linked with {}", show_path(p)),
                None => "not hard-linked".into(),
            };
            d("hard links", g(&ea.link_group), g(&eb.link_group));
        }
        if ea.xattrs != eb.xattrs {
            let x = |m: &BTreeMap<Vec<u8>, Vec<u8>>| {
                let v: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{}={}", show_path(k), show_bytes(v)))
                    .collect();
                format!("{{{}}}", v.join(", "))
            };
            d("xattrs", x(&ea.xattrs), x(&eb.xattrs));
        }
        let acl = |v: &Option<Vec<u8>>| v.as_deref().map(acl_text).unwrap_or("none".into());
        if ea.acl_access != eb.acl_access {
            d("access ACL", acl(&ea.acl_access), acl(&eb.acl_access));
        }
        if ea.acl_default != eb.acl_default {
            d("default ACL", acl(&ea.acl_default), acl(&eb.acl_default));
        }
    }
    out
}

/// Render a raw POSIX ACL xattr value (version 2 header, then 8-byte entries).
pub fn acl_text(raw: &[u8]) -> String {
    if raw.len() < 4 {
        return show_bytes(raw);
    }
    let mut parts = Vec::new();
    for e in raw[4..].chunks(8) {
        if e.len() < 8 {
            return show_bytes(raw);
        }
        let tag = u16::from_le_bytes([e[0], e[1]]);
        let perm = u16::from_le_bytes([e[2], e[3]]);
        let id = u32::from_le_bytes([e[4], e[5], e[6], e[7]]);
        let p = format!(
            "{}{}{}",
            if perm & 4 != 0 { 'r' } else { '-' },
            if perm & 2 != 0 { 'w' } else { '-' },
            if perm & 1 != 0 { 'x' } else { '-' }
        );
        parts.push(match tag {
            0x01 => format!("u::{p}"),
            0x02 => format!("u:{id}:{p}"),
            0x04 => format!("g::{p}"),
            0x08 => format!("g:{id}:{p}"),
            0x10 => format!("m::{p}"),
            0x20 => format!("o::{p}"),
            t => format!("?{t:x}:{id}:{p}"),
        });
    }
    parts.join(",")
}
