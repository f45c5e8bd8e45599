//! The file list: what the sender offers, discovered in rsync's order.
//!
//! Directories are listed on rayon tasks ahead of the walk (see [`Scanner`]);
//! the engine walks the tree depth-first so that every itemize/verbose line
//! comes out in the order rsync prints it: a directory, then its
//! non-directory children sorted by name bytes, then each child directory
//! (sorted as if its name ended in `/`) recursively.

mod scan;

pub(crate) use scan::errno_text;
pub use scan::{
    Children, Listing, Node, Pending, ScanError, Scanner, Top, read_xattrs, unsafe_symlink,
    xattr_wanted,
};

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

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
    /// Path relative to the destination root, as rsync names it in output
    /// (`.` for the root of a `src/` transfer).
    pub name: PathBuf,
    /// Where to read it on the source side.
    pub src: PathBuf,
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
}

impl Entry {
    /// Move the entry out, leaving an empty placeholder (no allocation).
    ///
    /// Why: the walk plans entries where they lie in their listing and only
    /// moves the few that a worker needs; most of a rescan moves nothing.
    pub fn take(&mut self) -> Entry {
        let placeholder = Entry {
            name: PathBuf::new(),
            src: PathBuf::new(),
            meta: self.meta,
            link_target: None,
            xattrs: None,
            no_recurse: false,
            implied: false,
            dest: DestProbe::Unknown,
            skip: false,
        };
        std::mem::replace(self, placeholder)
    }
}
