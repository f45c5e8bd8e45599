//! The manifest's byte format: encoder and a bounds-checked decoder.
//!
//! ```text
//! file    = "RSMF" version:u32 pair:[32] opts:[32] len:u64 sum:[32] lean:[32] payload
//! payload = ndirs:u32 dir*
//! dir     = namelen:u32 name flags:u8 src:state [dest:state] nent:u32 elen:u32 plain entry*
//! plain   = len:u32 files:u32 links:u32 devices:u32 specials:u32 size:u64     (28 bytes)
//! state   = mtime:i64 mtime_ns:u32 ctime:i64 ctime_ns:u32 ino:u64      (32 bytes)
//! entry   = namelen:u16 flags:u8 name src:meta [dest] [linklen:u16 link] [hashed]
//! hashed  = hash:[32] src_ctime:i64 src_ctime_ns:u32 dest_ctime:i64 dest_ctime_ns:u32
//! meta    = mode:u32 size:u64 mtime:i64 ns:u32 uid:u32 gid:u32 rdev:u64
//!           ino:u64 dev:u64 nlink:u32                                 (60 bytes)
//! dest    = ino:u64 dev:u64 nlink:u32 (flag SAME: the rest as src) | meta
//! ```
//!
//! Directory flag STALE marks the record of a directory the recording run
//! changed, kept only for its `-c` hashes.
//! `plain` sums up the leading entries that are neither directories nor
//! skipped (see [`Plain`]); `elen` counts the entry bytes after it.
//! `hashed` (flag HASH, only with a destination) says that both sides held
//! content with this BLAKE3 when they had the recorded metadata and these
//! ctimes (see [`Hashed`]); version 2 added the ctimes.
//!
//! All numbers little-endian; `sum` is BLAKE3 of the payload, `lean` BLAKE3
//! of the payload without its `plain` runs (see [`lean_sum`]). The decoder
//! trusts nothing (the file lives in a user-writable cache and may be
//! truncated, flipped or forged): every length is bounded, every count must
//! fit in the bytes that remain, and errors are returned, never panics.
//! Directory headers are checked when the file is opened (a directory's
//! entries are skipped by their byte length `elen`); entries are checked
//! when a directory is read ([`Entries`]), and a directory whose entries do
//! not decode is listed for real instead.

use crate::flist::{Kind, Meta};

/// File magic.
pub const MAGIC: &[u8; 4] = b"RSMF";
/// Format version; a different one is "foreign" and ignored (2: `-c`
/// hashes carry both sides' ctimes; 3: the `lean` sum).
pub const VERSION: u32 = 3;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 4 + 4 + 32 + 32 + 8 + 32 + 32;

/// Longest directory list name accepted (Linux `PATH_MAX`).
const MAX_DIR_NAME: usize = 4096;
/// Longest entry name (Linux `NAME_MAX`).
const MAX_NAME: usize = 255;
/// Longest symlink target (`PATH_MAX`).
const MAX_LINK: usize = 4096;
/// Bytes of an encoded [`Meta`].
const META_LEN: usize = 60;
/// Bytes of a directory state.
const STATE_LEN: usize = 32;
/// Smallest encoded entry: name length, flags, one name byte, source meta.
const MIN_ENTRY: usize = 2 + 1 + 1 + META_LEN;
/// Bytes of a directory's [`Plain`] summary.
const PLAIN_LEN: usize = 4 * 5 + 8;
/// Smallest encoded directory.
const MIN_DIR: usize = 4 + 1 + 1 + STATE_LEN + 4 + 4 + PLAIN_LEN;

/// Directory flag: the destination directory existed when listed.
pub const D_DEST: u8 = 1;
/// Directory flag: the destination directory held exactly the listed names
/// (seen by `--delete`), so an unchanged one needs no reading to delete.
pub const D_COMPLETE: u8 = 2;

/// Directory flag: the run that recorded it changed something in the
/// directory, so the record says nothing about the directory's state; it is
/// kept only for `-c`'s hashes, each checked against its own file's stat
/// (see `flist::checksum::answers`).
pub const D_STALE: u8 = 4;

/// Entry flag: a directory whose contents were listed.
pub const E_RECURSE: u8 = 1;
/// Entry flag: listed but skipped (rsync's "skipping non-regular file").
pub const E_SKIP: u8 = 2;
/// Entry flag: the destination had something at this name.
pub const E_DEST: u8 = 4;
/// Entry flag: the destination's mode, size, mtime, owner and rdev equal
/// the source's (only inode, device and link count are stored).
pub const E_SAME: u8 = 8;
/// Entry flag: a symlink target follows.
pub const E_LINK: u8 = 16;
/// Entry flag: a [`Hashed`] record follows (both sides' content hash).
pub const E_HASH: u8 = 32;
const E_KNOWN: u8 = E_RECURSE | E_SKIP | E_DEST | E_SAME | E_LINK | E_HASH;

/// A directory's identity as the manifest compares it: mtime, ctime, inode.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DirState {
    /// Modification time, seconds.
    pub mtime: i64,
    /// Modification time, nanoseconds.
    pub mtime_nsec: u32,
    /// Status change time, seconds (0 when not known: the `--trust-mtime`
    /// path compares mtime and inode only).
    pub ctime: i64,
    /// Status change time, nanoseconds.
    pub ctime_nsec: u32,
    /// Inode number.
    pub ino: u64,
}

impl DirState {
    /// From a `sys` stat record.
    pub fn from_stat(st: &crate::sys::meta::Stat) -> DirState {
        DirState {
            mtime: st.mtime.sec,
            mtime_nsec: st.mtime.nsec,
            ctime: st.ctime.sec,
            ctime_nsec: st.ctime.nsec,
            ino: st.ino,
        }
    }

    /// Same mtime and inode (what `--trust-mtime` checks).
    pub fn same_mtime_ino(&self, m: &Meta) -> bool {
        self.mtime == m.mtime && self.mtime_nsec == m.mtime_nsec && self.ino == m.ino
    }
}

/// One listed name, as recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EntryRec<'a> {
    /// The name (one component).
    pub name: &'a [u8],
    /// [`E_RECURSE`], [`E_SKIP`] … bits.
    pub flags: u8,
    /// Source metadata as listed (atime is not kept: reads 0).
    pub src: Meta,
    /// Destination metadata as listed, if something was there.
    pub dest: Option<Meta>,
    /// Symlink target.
    pub link: Option<&'a [u8]>,
    /// The content hash both sides had when listed, when known.
    pub hash: Option<Hashed>,
}

/// A whole-file BLAKE3 that both sides of an entry had, with the ctimes the
/// sides had when it was computed.
///
/// Why the ctimes: `-c` takes the hash instead of reading a side again only
/// while that side's inode, size, mtime *and* ctime are as recorded; a
/// rewrite can restore the mtime (`touch -d`), never the ctime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Hashed {
    /// BLAKE3 of the listed size of both files.
    pub sum: [u8; 32],
    /// The source file's ctime when it was hashed.
    pub src_ctime: crate::sys::time::Timestamp,
    /// The destination file's ctime when it was hashed.
    pub dest_ctime: crate::sys::time::Timestamp,
}

/// The leading run of a directory record's entries that are neither
/// directories nor skipped (rsync's order puts non-directories first):
/// their encoded length, how many of each kind, and the total size of the
/// files and symlinks among them.
///
/// Why: a `--trust-mtime` no-op only counts those entries for `--stats`
/// ([`crate::flist::ManifestUse::count_only`]); with the sums it jumps over
/// their bytes instead of decoding every one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Plain {
    /// Encoded bytes of the run.
    pub len: u32,
    /// Regular files, symlinks, devices, specials in it.
    pub kinds: [u32; 4],
    /// Total size of its files and symlinks.
    pub size: u64,
}

impl Plain {
    /// Whether an entry of `kind` with entry flags `flags` extends the run.
    pub fn takes(kind: Kind, flags: u8) -> bool {
        kind != Kind::Dir && flags & E_SKIP == 0
    }

    /// Count one entry of `kind`, `size` bytes, `bytes` encoded.
    pub fn add(&mut self, kind: Kind, size: u64, bytes: usize) {
        self.len += bytes as u32;
        let i = match kind {
            Kind::File => 0,
            Kind::Symlink => 1,
            Kind::Device => 2,
            _ => 3,
        };
        self.kinds[i] += 1;
        if matches!(kind, Kind::File | Kind::Symlink) {
            self.size += size;
        }
    }

    /// Entries in the run.
    pub fn count(&self) -> u64 {
        self.kinds.iter().map(|&k| k as u64).sum()
    }
}

/// A decoding failure (the manifest is then ignored with a warning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error(pub &'static str);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

/// Bounds-checked reader over untrusted bytes.
pub struct Cursor<'a> {
    b: &'a [u8],
    pos: usize,
}

impl<'a> Cursor<'a> {
    /// Read `b` from its start.
    pub fn new(b: &'a [u8]) -> Self {
        Cursor { b, pos: 0 }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.b.len() - self.pos
    }

    /// Where the next read starts.
    pub fn pos(&self) -> usize {
        self.pos
    }

    /// The next `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], Error> {
        if n > self.remaining() {
            return Err(Error("truncated"));
        }
        let s = &self.b[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    fn arr<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        Ok(self.take(N)?.try_into().expect("length checked"))
    }

    /// A byte.
    pub fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.take(1)?[0])
    }
    /// A little-endian u16.
    pub fn u16(&mut self) -> Result<u16, Error> {
        Ok(u16::from_le_bytes(self.arr()?))
    }
    /// A little-endian u32.
    pub fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.arr()?))
    }
    /// A little-endian u64.
    pub fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.arr()?))
    }
    /// A little-endian i64.
    pub fn i64(&mut self) -> Result<i64, Error> {
        Ok(i64::from_le_bytes(self.arr()?))
    }
    /// 32 raw bytes.
    pub fn hash(&mut self) -> Result<[u8; 32], Error> {
        self.arr()
    }

    fn nsec(&mut self) -> Result<u32, Error> {
        let n = self.u32()?;
        if n >= 1_000_000_000 {
            return Err(Error("nanoseconds out of range"));
        }
        Ok(n)
    }

    /// A timestamp (seconds, nanoseconds).
    fn time(&mut self) -> Result<crate::sys::time::Timestamp, Error> {
        Ok(crate::sys::time::Timestamp::new(self.i64()?, self.nsec()?))
    }

    /// A directory state.
    pub fn state(&mut self) -> Result<DirState, Error> {
        Ok(DirState {
            mtime: self.i64()?,
            mtime_nsec: self.nsec()?,
            ctime: self.i64()?,
            ctime_nsec: self.nsec()?,
            ino: self.u64()?,
        })
    }

    fn meta(&mut self) -> Result<Meta, Error> {
        // One bounds check for the fixed-size record.
        let b: &[u8; META_LEN] = self.take(META_LEN)?.try_into().expect("length checked");
        let u32_at = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        let u64_at = |i: usize| u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        let mode = u32_at(0);
        let mtime_nsec = u32_at(20);
        if mtime_nsec >= 1_000_000_000 {
            return Err(Error("nanoseconds out of range"));
        }
        Ok(Meta {
            kind: Kind::from_mode(mode),
            mode,
            size: u64_at(4),
            mtime: u64_at(12) as i64,
            mtime_nsec,
            atime: 0,
            atime_nsec: 0,
            uid: u32_at(24),
            gid: u32_at(28),
            rdev: u64_at(32),
            ino: u64_at(40),
            dev: u64_at(48),
            nlink: u32_at(56) as u64,
        })
    }

    /// One entry (see the module's grammar).
    pub fn entry(&mut self) -> Result<EntryRec<'a>, Error> {
        let len = self.u16()? as usize;
        let flags = self.u8()?;
        if len == 0 || len > MAX_NAME {
            return Err(Error("bad entry name length"));
        }
        if flags & !E_KNOWN != 0 || (flags & (E_SAME | E_HASH) != 0 && flags & E_DEST == 0) {
            return Err(Error("bad entry flags"));
        }
        let name = self.take(len)?;
        if name.iter().any(|&c| c == b'/' || c == 0) || name == b"." || name == b".." {
            return Err(Error("bad entry name"));
        }
        let src = self.meta()?;
        let dest = if flags & E_SAME != 0 {
            Some(Meta {
                ino: self.u64()?,
                dev: self.u64()?,
                nlink: self.u32()? as u64,
                ..src
            })
        } else if flags & E_DEST != 0 {
            Some(self.meta()?)
        } else {
            None
        };
        let link = if flags & E_LINK != 0 {
            let n = self.u16()? as usize;
            if n > MAX_LINK {
                return Err(Error("bad link length"));
            }
            Some(self.take(n)?)
        } else {
            None
        };
        let hash = if flags & E_HASH != 0 {
            Some(Hashed {
                sum: self.hash()?,
                src_ctime: self.time()?,
                dest_ctime: self.time()?,
            })
        } else {
            None
        };
        Ok(EntryRec {
            name,
            flags,
            src,
            dest,
            link,
            hash,
        })
    }
}

fn put_meta(out: &mut Vec<u8>, m: &Meta) {
    out.extend_from_slice(&m.mode.to_le_bytes());
    out.extend_from_slice(&m.size.to_le_bytes());
    out.extend_from_slice(&m.mtime.to_le_bytes());
    out.extend_from_slice(&m.mtime_nsec.to_le_bytes());
    out.extend_from_slice(&m.uid.to_le_bytes());
    out.extend_from_slice(&m.gid.to_le_bytes());
    out.extend_from_slice(&m.rdev.to_le_bytes());
    out.extend_from_slice(&m.ino.to_le_bytes());
    out.extend_from_slice(&m.dev.to_le_bytes());
    out.extend_from_slice(&(m.nlink.min(u32::MAX as u64) as u32).to_le_bytes());
}

/// Append a directory state.
pub fn put_state(out: &mut Vec<u8>, s: &DirState) {
    out.extend_from_slice(&s.mtime.to_le_bytes());
    out.extend_from_slice(&s.mtime_nsec.to_le_bytes());
    out.extend_from_slice(&s.ctime.to_le_bytes());
    out.extend_from_slice(&s.ctime_nsec.to_le_bytes());
    out.extend_from_slice(&s.ino.to_le_bytes());
}

/// Append one entry. Names longer than a Linux name, or links longer than a
/// path, cannot come from a listing; they are clipped so the encoder never
/// writes what the decoder refuses.
pub fn put_entry(out: &mut Vec<u8>, e: &EntryRec<'_>) {
    let name = &e.name[..e.name.len().min(MAX_NAME)];
    let mut flags = e.flags & (E_RECURSE | E_SKIP);
    let same = e.dest.is_some_and(|d| {
        d.mode == e.src.mode
            && d.size == e.src.size
            && d.mtime == e.src.mtime
            && d.mtime_nsec == e.src.mtime_nsec
            && d.uid == e.src.uid
            && d.gid == e.src.gid
            && d.rdev == e.src.rdev
    });
    if e.dest.is_some() {
        flags |= E_DEST;
    }
    if same {
        flags |= E_SAME;
    }
    if e.link.is_some() {
        flags |= E_LINK;
    }
    // A hash says both sides held it: without a destination it is dropped.
    let hash = e.hash.filter(|_| e.dest.is_some());
    if hash.is_some() {
        flags |= E_HASH;
    }
    out.extend_from_slice(&(name.len() as u16).to_le_bytes());
    out.push(flags);
    out.extend_from_slice(name);
    put_meta(out, &e.src);
    if let Some(d) = &e.dest {
        if same {
            out.extend_from_slice(&d.ino.to_le_bytes());
            out.extend_from_slice(&d.dev.to_le_bytes());
            out.extend_from_slice(&(d.nlink.min(u32::MAX as u64) as u32).to_le_bytes());
        } else {
            put_meta(out, d);
        }
    }
    if let Some(l) = e.link {
        let l = &l[..l.len().min(MAX_LINK)];
        out.extend_from_slice(&(l.len() as u16).to_le_bytes());
        out.extend_from_slice(l);
    }
    if let Some(h) = &hash {
        out.extend_from_slice(&h.sum);
        for t in [h.src_ctime, h.dest_ctime] {
            out.extend_from_slice(&t.sec.to_le_bytes());
            out.extend_from_slice(&t.nsec.to_le_bytes());
        }
    }
}

/// Start a directory record: everything up to the entries, whose count and
/// byte length are patched by [`end_dir`]. Returns the offset of the flags
/// byte and of the count.
pub fn begin_dir(
    out: &mut Vec<u8>,
    name: &[u8],
    flags: u8,
    src: &DirState,
    dest: Option<&DirState>,
) -> (usize, usize) {
    let name = &name[..name.len().min(MAX_DIR_NAME)];
    out.extend_from_slice(&(name.len() as u32).to_le_bytes());
    out.extend_from_slice(name);
    let flags_at = out.len();
    out.push((flags & D_COMPLETE) | if dest.is_some() { D_DEST } else { 0 });
    put_state(out, src);
    if let Some(d) = dest {
        put_state(out, d);
    }
    let count_at = out.len();
    out.extend_from_slice(&[0; 8 + PLAIN_LEN]);
    (flags_at, count_at)
}

/// Patch the entry count, byte length and [`Plain`] summary of a directory
/// record begun at `count_at` (its entries are everything after them in
/// `out`).
pub fn end_dir(out: &mut [u8], count_at: usize, count: u32, plain: &Plain) {
    let len = (out.len() - count_at - 8 - PLAIN_LEN) as u32;
    out[count_at..count_at + 4].copy_from_slice(&count.to_le_bytes());
    out[count_at + 4..count_at + 8].copy_from_slice(&len.to_le_bytes());
    let mut p = count_at + 8;
    for v in std::iter::once(plain.len).chain(plain.kinds) {
        out[p..p + 4].copy_from_slice(&v.to_le_bytes());
        p += 4;
    }
    out[p..p + 8].copy_from_slice(&plain.size.to_le_bytes());
}

/// The entries of one directory, decoded (and checked) as they are read.
pub struct Entries<'a> {
    c: Cursor<'a>,
    left: u32,
    failed: bool,
}

impl<'a> Entries<'a> {
    /// `count` entries encoded in `b`.
    pub fn new(b: &'a [u8], count: u32) -> Self {
        Entries {
            c: Cursor::new(b),
            left: count,
            failed: false,
        }
    }
}

impl Entries<'_> {
    /// Entries that cannot be read: not covered by the sum checked at load
    /// (see `Manifest::entries`); yields one error.
    pub fn unchecked() -> Self {
        Entries {
            c: Cursor::new(&[]),
            left: 1,
            failed: false,
        }
    }
}

impl<'a> Iterator for Entries<'a> {
    type Item = Result<EntryRec<'a>, Error>;

    /// The next entry; after the last one, an error if bytes are left over;
    /// nothing after an error.
    fn next(&mut self) -> Option<Self::Item> {
        if self.failed {
            return None;
        }
        if self.left == 0 {
            if self.c.remaining() != 0 {
                self.failed = true;
                return Some(Err(Error("entry bytes left over")));
            }
            return None;
        }
        self.left -= 1;
        let r = self.c.entry();
        self.failed = r.is_err();
        Some(r)
    }
}

/// A decoded directory header; its entries are decoded on demand from
/// `entries` (see [`Entries`]).
#[derive(Clone, Debug)]
pub struct DirHead {
    /// Byte range of the directory's list name in the payload.
    pub name: std::ops::Range<usize>,
    /// Its place among the payload's directories (which are sorted by name).
    pub index: u32,
    /// Offset of the flags byte in the payload (for patching).
    pub flags_at: usize,
    /// [`D_DEST`], [`D_COMPLETE`].
    pub flags: u8,
    /// Source directory state.
    pub src: DirState,
    /// Destination directory state, if it existed.
    pub dest: Option<DirState>,
    /// Byte range of the whole record in the payload.
    pub record: std::ops::Range<usize>,
    /// Byte range of the entries in the payload.
    pub entries: std::ops::Range<usize>,
    /// Number of entries.
    pub count: u32,
    /// The leading non-directory, non-skipped entries, summed up.
    pub plain: Plain,
}

/// Decode and validate a whole payload: each directory's name and header,
/// in the payload's order (sorted by name, checked).
pub fn decode_payload(p: &[u8]) -> Result<Vec<DirHead>, Error> {
    let mut c = Cursor::new(p);
    let ndirs = c.u32()? as usize;
    if ndirs > c.remaining() / MIN_DIR {
        return Err(Error("directory count larger than the file"));
    }
    let mut out = Vec::with_capacity(ndirs);
    let mut prev: Option<&[u8]> = None;
    for index in 0..ndirs {
        let start = c.pos();
        let nlen = c.u32()? as usize;
        if nlen == 0 || nlen > MAX_DIR_NAME {
            return Err(Error("bad directory name length"));
        }
        let name_at = c.pos();
        let name = c.take(nlen)?;
        if name.contains(&0) {
            return Err(Error("bad directory name"));
        }
        // Sorted and unique, so lookups are well defined.
        if prev.is_some_and(|q| q >= name) {
            return Err(Error("directories out of order"));
        }
        prev = Some(name);
        let flags_at = c.pos();
        let flags = c.u8()?;
        if flags & !(D_DEST | D_COMPLETE | D_STALE) != 0 {
            return Err(Error("bad directory flags"));
        }
        let src = c.state()?;
        let dest = if flags & D_DEST != 0 {
            Some(c.state()?)
        } else {
            None
        };
        let count = c.u32()?;
        let elen = c.u32()? as usize;
        let plain = Plain {
            len: c.u32()?,
            kinds: [c.u32()?, c.u32()?, c.u32()?, c.u32()?],
            size: c.u64()?,
        };
        if plain.len as usize > elen || plain.count() > count as u64 {
            return Err(Error("bad plain-entry summary"));
        }
        if elen > c.remaining() {
            return Err(Error("entries longer than the file"));
        }
        if count as usize > elen / MIN_ENTRY {
            return Err(Error("entry count larger than its bytes"));
        }
        let es = c.pos();
        c.take(elen)?;
        out.push(DirHead {
            name: name_at..name_at + nlen,
            index: index as u32,
            flags_at,
            flags,
            src,
            dest,
            record: start..c.pos(),
            entries: es..c.pos(),
            count,
            plain,
        });
    }
    if c.remaining() != 0 {
        return Err(Error("trailing bytes"));
    }
    Ok(out)
}

/// The header of a manifest file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    /// Hash of the (source root, destination root) pair.
    pub pair: [u8; 32],
    /// Hash of the options that change what a run lists or compares.
    pub opts: [u8; 32],
}

/// Why a manifest file was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reject {
    /// Truncated, bit-flipped or otherwise malformed: warn, rescan.
    Corrupt(Error),
    /// Another format version: warn, rescan.
    Version(u32),
    /// Written for another (source, destination) pair: warn, rescan.
    OtherPair,
    /// The same pair with other options: rescan silently.
    OtherOptions,
}

/// A manifest file split into its fields, sums not checked yet.
pub struct Parts<'a> {
    /// The payload.
    pub payload: &'a [u8],
    /// BLAKE3 of the whole payload.
    pub sum: [u8; 32],
    /// BLAKE3 of the payload without its plain runs ([`lean_sum`]).
    pub lean: [u8; 32],
    pair: [u8; 32],
    opts: [u8; 32],
}

impl Parts<'_> {
    /// Whether the file was written for this pair and these options.
    pub fn key(&self, want: &Header) -> Result<(), Reject> {
        if self.pair != want.pair {
            return Err(Reject::OtherPair);
        }
        if self.opts != want.opts {
            return Err(Reject::OtherOptions);
        }
        Ok(())
    }
}

/// Split a manifest file into its fields: magic, version and length are
/// checked, the sums and the key are not (see [`open`], [`Parts::key`]).
pub fn split(file: &[u8]) -> Result<Parts<'_>, Reject> {
    let mut c = Cursor::new(file);
    let magic = c.take(4).map_err(Reject::Corrupt)?;
    if magic != MAGIC {
        return Err(Reject::Corrupt(Error("not a resync manifest")));
    }
    let version = c.u32().map_err(Reject::Corrupt)?;
    if version != VERSION {
        return Err(Reject::Version(version));
    }
    let pair = c.hash().map_err(Reject::Corrupt)?;
    let opts = c.hash().map_err(Reject::Corrupt)?;
    let len = c.u64().map_err(Reject::Corrupt)?;
    let sum = c.hash().map_err(Reject::Corrupt)?;
    let lean = c.hash().map_err(Reject::Corrupt)?;
    if len != c.remaining() as u64 {
        return Err(Reject::Corrupt(Error("length does not match the file")));
    }
    let payload = c.take(len as usize).map_err(Reject::Corrupt)?;
    Ok(Parts {
        payload,
        sum,
        lean,
        pair,
        opts,
    })
}

/// Split a manifest file into its checked payload (the whole-payload sum).
pub fn open<'a>(file: &'a [u8], want: &Header) -> Result<&'a [u8], Reject> {
    let p = split(file)?;
    // Parallel above 1 MiB (the linux tree's manifest is 8 MB).
    if *crate::delta::hash::hash_bytes(p.payload).as_bytes() != p.sum {
        return Err(Reject::Corrupt(Error("checksum mismatch")));
    }
    p.key(want)?;
    Ok(p.payload)
}

/// BLAKE3 of every payload byte outside the directories' plain runs: the
/// directory count, every directory header (with its plain summary) and
/// the entries after the plain run.
///
/// Why: a `--trust-mtime` run that only counts up-to-date files reads
/// nothing else (the linux tree: ~1 MB of the 8.5 MB), so checking this sum
/// instead of the whole payload's covers every byte it uses.
pub fn lean_sum(payload: &[u8], dirs: &[DirHead]) -> [u8; 32] {
    // Gathered into one buffer first: BLAKE3 fed thousands of short pieces
    // compresses block by block; one long input takes its SIMD path over
    // many chunks at once (a quarter of the instructions, `callgrind`). The
    // sum is the same either way.
    let plain: usize = dirs.iter().map(|d| d.plain.len as usize).sum();
    let mut lean = Vec::with_capacity(payload.len().saturating_sub(plain));
    lean.extend_from_slice(payload.get(..4).unwrap_or_default());
    for d in dirs {
        let after_plain = d.entries.start + d.plain.len as usize;
        lean.extend_from_slice(&payload[d.record.start..d.entries.start]);
        lean.extend_from_slice(&payload[after_plain..d.record.end]);
    }
    *crate::delta::hash::hash_bytes(&lean).as_bytes()
}

/// A whole manifest file for `payload`.
pub fn seal(h: &Header, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&h.pair);
    out.extend_from_slice(&h.opts);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(crate::delta::hash::hash_bytes(payload).as_bytes());
    // Our own payloads always decode; anything else gets a lean sum no
    // reader accepts.
    let lean = decode_payload(payload).map_or([0; 32], |d| lean_sum(payload, &d));
    out.extend_from_slice(&lean);
    out.extend_from_slice(payload);
    out
}
