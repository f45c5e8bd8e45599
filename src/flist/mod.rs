//! The file list: what the sender offers, discovered in rsync's order.
//!
//! Directories are listed on rayon tasks ahead of the walk (see [`Scanner`]);
//! the engine walks the tree depth-first so that every itemize/verbose line
//! comes out in the order rsync prints it: a directory, then its
//! non-directory children sorted by name bytes, then each child directory
//! (sorted as if its name ended in `/`) recursively.

pub mod checksum;
mod scan;

pub use scan::{
    Children, Feed, Listing, ManifestUse, Node, Pending, ScanError, Scanner, Top, cmp_as_dirs,
    read_xattrs, unsafe_symlink, xattr_wanted,
};
pub(crate) use scan::{errno_text, skipped};

use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Arc, LazyLock};

/// The kind of a file-system entry, as rsync distinguishes them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// A regular file.
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A character or block device (`-D` / `--devices`).
    Device,
    /// A fifo or socket (`-D` / `--specials`).
    Special,
}

impl Kind {
    /// Classify a `st_mode`.
    pub fn from_mode(mode: u32) -> Kind {
        match mode & libc::S_IFMT {
            libc::S_IFREG => Kind::File,
            libc::S_IFDIR => Kind::Dir,
            libc::S_IFLNK => Kind::Symlink,
            libc::S_IFCHR | libc::S_IFBLK => Kind::Device,
            _ => Kind::Special,
        }
    }

    /// The type letter rsync's itemize output uses (`f`, `d`, `L`, `D`, `S`).
    pub fn itemize_char(self) -> char {
        match self {
            Kind::File => 'f',
            Kind::Dir => 'd',
            Kind::Symlink => 'L',
            Kind::Device => 'D',
            Kind::Special => 'S',
        }
    }
}

/// The subset of `lstat` that a transfer needs, with nanosecond times.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Meta {
    /// Entry kind derived from `mode`.
    pub kind: Kind,
    /// Full `st_mode` (type and permission bits).
    pub mode: u32,
    /// Size in bytes (for symlinks: length of the target).
    pub size: u64,
    /// Modification time, seconds.
    pub mtime: i64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u32,
    /// Access time, seconds (used by `-U`).
    pub atime: i64,
    /// Access time, nanoseconds.
    pub atime_nsec: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Device number for device nodes.
    pub rdev: u64,
    /// Inode (phase 2 sorts by it; `-H` groups by it).
    pub ino: u64,
    /// Device the entry lives on (`-x`, `-H`).
    pub dev: u64,
    /// Link count (`-H` only looks at entries with more than one).
    pub nlink: u64,
}

impl Meta {
    /// Build from a std `Metadata` (from `symlink_metadata` or `metadata`).
    pub fn from_std(m: &std::fs::Metadata) -> Meta {
        Meta {
            kind: Kind::from_mode(m.mode()),
            mode: m.mode(),
            size: m.size(),
            mtime: m.mtime(),
            mtime_nsec: m.mtime_nsec() as u32,
            atime: m.atime(),
            atime_nsec: m.atime_nsec() as u32,
            uid: m.uid(),
            gid: m.gid(),
            rdev: m.rdev(),
            ino: m.ino(),
            dev: m.dev(),
            nlink: m.nlink(),
        }
    }

    /// Build from the `sys` layer's stat record.
    pub fn from_sys(st: &crate::sys::meta::Stat) -> Meta {
        Meta {
            kind: Kind::from_mode(st.mode),
            mode: st.mode,
            size: st.size,
            mtime: st.mtime.sec,
            mtime_nsec: st.mtime.nsec,
            atime: st.atime.sec,
            atime_nsec: st.atime.nsec,
            uid: st.uid,
            gid: st.gid,
            rdev: st.rdev,
            ino: st.ino,
            dev: st.dev,
            nlink: st.nlink,
        }
    }

    /// Permission bits including setuid/setgid/sticky.
    pub fn perms(&self) -> u32 {
        self.mode & 0o7777
    }
}

/// What the scan learnt about an entry's destination, if it looked.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DestProbe {
    /// Not looked up (top-level operands, remote or missing destinations).
    #[default]
    Unknown,
    /// Nothing at the destination path.
    Missing,
    /// The destination's metadata (not following symlinks).
    Found(Meta),
}

/// One entry of the file list.
#[derive(Clone, Debug)]
pub struct Entry {
    /// The list name and the source path (see [`Entry::name`], [`Entry::src`]).
    pub paths: Paths,
    /// Source metadata.
    pub meta: Meta,
    /// Symlink target (only for `Kind::Symlink`).
    pub link_target: Option<OsString>,
    /// Extended attributes read from the source with `-X`/`-A`, sorted by name.
    pub xattrs: Option<Vec<(OsString, Vec<u8>)>>,
    /// True for directories whose contents were not scanned (`-d`, or the mount
    /// points that `-x` stops at); their itemize lines are the same.
    pub no_recurse: bool,
    /// True for directories rsync only adds to create a path (`-R` implied dirs).
    pub implied: bool,
    /// The destination's `lstat`, when the scan could look it up on the way
    /// (a local transfer into an existing directory): saves a second walk.
    pub dest: DestProbe,
    /// Listed but not transferred: rsync's `skipping non-regular file` (a symlink
    /// without `-l`, a device without `--devices`, a special without `--specials`).
    pub skip: bool,
    /// `-c`: both sides' sums, when the scan hashed them (regular files of
    /// the same size on both sides); boxed so entries without stay small.
    pub sums: Option<Box<checksum::Checked>>,
}

impl Entry {
    /// Path relative to the destination root, as rsync names it in output
    /// (`.` for the root of a `src/` transfer).
    pub fn name(&self) -> &Path {
        self.paths.name()
    }

    /// Where to read the entry on the source side.
    pub fn src(&self) -> &Path {
        self.paths.src()
    }

    /// Move the entry out, leaving an empty placeholder (no allocation).
    ///
    /// Why: the walk plans entries where they lie in their listing and only
    /// moves the few that a worker needs; most of a rescan moves nothing.
    pub fn take(&mut self) -> Entry {
        let placeholder = Entry {
            paths: Paths::empty(),
            meta: self.meta,
            link_target: None,
            xattrs: None,
            no_recurse: false,
            implied: false,
            dest: DestProbe::Unknown,
            skip: false,
            sums: None,
        };
        std::mem::replace(self, placeholder)
    }
}

/// An entry's list name and source path, stored in a byte buffer that the
/// entries of one directory listing share.
///
/// Why: two path allocations per entry (and their frees, on another thread
/// than the one that allocated them) were a fifth of a rescan's user time;
/// one buffer per listing replaces them with a reference count.
#[derive(Clone)]
pub struct Paths {
    buf: Arc<[u8]>,
    name: (u32, u32),
    src: (u32, u32),
}

static NO_BYTES: LazyLock<Arc<[u8]>> = LazyLock::new(|| Arc::from(&[][..]));

impl Paths {
    /// Paths with a buffer of their own (operands, implied directories).
    pub fn new(name: &Path, src: &Path) -> Paths {
        let mut b = PathsBuf::default();
        let (n, s) = b.push(name.as_os_str().as_bytes(), src.as_os_str().as_bytes());
        b.freeze().get(n, s)
    }

    /// Two empty paths, without allocating.
    pub fn empty() -> Paths {
        Paths {
            buf: Arc::clone(&NO_BYTES),
            name: (0, 0),
            src: (0, 0),
        }
    }

    /// The list name.
    pub fn name(&self) -> &Path {
        Path::new(OsStr::from_bytes(
            &self.buf[self.name.0 as usize..self.name.1 as usize],
        ))
    }

    /// The source path.
    pub fn src(&self) -> &Path {
        Path::new(OsStr::from_bytes(
            &self.buf[self.src.0 as usize..self.src.1 as usize],
        ))
    }
}

impl std::fmt::Debug for Paths {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paths")
            .field("name", &self.name())
            .field("src", &self.src())
            .finish()
    }
}

/// Collects the paths of one listing before they are shared (see [`Paths`]).
#[derive(Default)]
pub struct PathsBuf {
    bytes: Vec<u8>,
}

/// A byte range in a [`PathsBuf`].
pub type Span = (u32, u32);

impl PathsBuf {
    /// A buffer for about `bytes` bytes of paths.
    pub fn with_capacity(bytes: usize) -> PathsBuf {
        PathsBuf {
            bytes: Vec::with_capacity(bytes),
        }
    }

    /// Append a name and a source path given whole; their spans.
    pub fn push(&mut self, name: &[u8], src: &[u8]) -> (Span, Span) {
        (self.push_join(&[name]), self.push_join(&[src]))
    }

    /// Append `parts` joined with `/` (an empty first part adds no `/`, nor does
    /// one that already ends in `/`); its span.
    pub fn push_join(&mut self, parts: &[&[u8]]) -> Span {
        let start = self.bytes.len() as u32;
        for (i, p) in parts.iter().enumerate() {
            if i > 0 && !self.bytes.ends_with(b"/") && self.bytes.len() as u32 > start {
                self.bytes.push(b'/');
            }
            self.bytes.extend_from_slice(p);
        }
        (start, self.bytes.len() as u32)
    }

    /// Share the buffer.
    pub fn freeze(self) -> SharedPaths {
        SharedPaths {
            buf: Arc::from(self.bytes),
        }
    }
}

/// A frozen [`PathsBuf`], handing out [`Paths`].
pub struct SharedPaths {
    buf: Arc<[u8]>,
}

impl SharedPaths {
    /// The paths at these spans.
    pub fn get(&self, name: Span, src: Span) -> Paths {
        Paths {
            buf: Arc::clone(&self.buf),
            name,
            src,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_share_one_buffer_and_join_like_join_exact() {
        let mut b = PathsBuf::with_capacity(8);
        let a = (
            b.push_join(&[b"dir", b"x"]),
            b.push_join(&[b"/src/dir/", b"x"]),
        );
        let dot = (b.push_join(&[b"y"]), b.push_join(&[b"", b"y"]));
        let whole = b.push(b"n/m", b"/a/n/m");
        let s = b.freeze();
        let (pa, pd, pw) = (
            s.get(a.0, a.1),
            s.get(dot.0, dot.1),
            s.get(whole.0, whole.1),
        );
        assert_eq!(pa.name(), Path::new("dir/x"));
        assert_eq!(pa.src(), Path::new("/src/dir/x"));
        assert_eq!((pd.name(), pd.src()), (Path::new("y"), Path::new("y")));
        assert_eq!(
            (pw.name(), pw.src()),
            (Path::new("n/m"), Path::new("/a/n/m"))
        );
        assert!(Arc::ptr_eq(&pa.buf, &pw.buf));
        let own = Paths::new(Path::new("."), Path::new("src/"));
        assert_eq!((own.name(), own.src()), (Path::new("."), Path::new("src/")));
        let e = Paths::empty();
        assert_eq!((e.name(), e.src()), (Path::new(""), Path::new("")));
    }
}
