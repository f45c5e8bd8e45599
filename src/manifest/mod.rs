//! The rescan manifest: what the last run saw of a (source, destination)
//! pair, so the next run can skip work that cannot be needed.
//!
//! One file per pair, kept outside the destination (`$XDG_CACHE_HOME/resync`,
//! `~/.cache/resync`, or `--manifest-dir`). It holds, per listed directory,
//! the source and destination directory states (mtime, ctime, inode) and
//! every listed name with its source and destination metadata (and a
//! whole-file BLAKE3 slot for `-c`). Only directories a run saw and left
//! unchanged are recorded ("clean"), except that a changed one holding `-c`
//! hashes is kept marked stale, for those hashes only; a run writes the
//! manifest only when it ended with exit 0, and not at all with `--dry-run`
//! or `--list-only`.
//!
//! The whole-file BLAKE3 slot is for `-c`: a listing that found both sides
//! equal records the hash with both sides' ctimes ([`format::Hashed`]) on
//! the record it passes to [`DirRecording::entry`]; the next run takes it
//! for each side whose inode, size, mtime and ctime are still as recorded
//! (`flist::checksum::answers`), and reads only the sides it does not
//! answer.
//!
//! How runs use it (docs/ARCHITECTURE.md has the reasoning and the limits):
//! - safe (default): the source is listed and every destination name is
//!   stat'ed as without a manifest (that catches a file rewritten in place);
//!   with `--delete`, a destination directory whose mtime, ctime and inode
//!   are unchanged and that held exactly the listed names is not read again;
//! - `--trust-mtime`: a source directory whose mtime and inode are
//!   unchanged is not listed and its files are not stat'ed on either side:
//!   the recorded metadata stands in for them.

pub mod format;

use crate::flist::Meta;
use crate::options::Options;
use format::{DirHead, DirState, EntryRec, Header, Reject};
use std::ffi::OsString;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// A loaded, validated manifest.
pub struct Manifest {
    /// The file, mapped (it is only ever replaced by a rename, never
    /// rewritten in place, so the mapping stays whole); the payload starts
    /// at `start`.
    bytes: crate::sys::mmap::FileBytes,
    start: usize,
    /// Directory headers in the payload's order (sorted by name, which the
    /// decoder checks).
    dirs: Vec<DirHead>,
    /// Open-addressing table over `dirs` by a hash of the name (see
    /// [`DirIndex`]): a lookup touches one or two mapped names instead of
    /// the ~13 a binary search over the linux tree's 5k records compares
    /// (those were cache misses all over the 8 MB map: ~5% of a
    /// `--trust-mtime` no-op).
    index: DirIndex,
    /// The whole-payload sum, when only the lean sum was checked at load
    /// ([`format::lean_sum`]): plain runs are then not decoded, and records
    /// are copied into a new manifest only once this sum is checked too.
    unchecked: Option<[u8; 32]>,
}

/// Slots of directory indexes (`u32::MAX`: empty), a power of two at least
/// twice the number of records, probed linearly from the name's FNV-1a
/// hash. Built once per load from the names the decoder already checked.
struct DirIndex {
    slots: Vec<u32>,
}

impl DirIndex {
    /// FNV-1a 64: a few nanoseconds per short name, no dependency; collisions
    /// only cost a probe (every candidate's name is compared).
    fn hash(name: &[u8]) -> u64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for &b in name {
            h = (h ^ b as u64).wrapping_mul(0x0100_0000_01b3);
        }
        h
    }

    fn build(payload: &[u8], dirs: &[DirHead]) -> DirIndex {
        let size = (dirs.len() * 2).next_power_of_two().max(2);
        let mut slots = vec![u32::MAX; size];
        let mask = size - 1;
        for (i, d) in dirs.iter().enumerate() {
            let mut at = Self::hash(&payload[d.name.clone()]) as usize & mask;
            while slots[at] != u32::MAX {
                at = (at + 1) & mask;
            }
            slots[at] = i as u32;
        }
        DirIndex { slots }
    }

    /// The index of the record named `name` (names are unique: the decoder
    /// checks they are strictly sorted).
    fn find(&self, payload: &[u8], dirs: &[DirHead], name: &[u8]) -> Option<usize> {
        let mask = self.slots.len() - 1;
        let mut at = Self::hash(name) as usize & mask;
        loop {
            let i = *self.slots.get(at)?;
            if i == u32::MAX {
                return None;
            }
            let d = dirs.get(i as usize)?;
            if payload.get(d.name.clone())? == name {
                return Some(i as usize);
            }
            at = (at + 1) & mask;
        }
    }
}

impl Manifest {
    /// Validate `payload` (see [`format::decode_payload`]).
    pub fn from_payload(payload: Vec<u8>) -> Result<Manifest, format::Error> {
        Manifest::from_file(crate::sys::mmap::FileBytes::Owned(payload), 0)
    }

    /// Validate the payload that starts at `start` of `bytes` (kept as read:
    /// the linux tree's manifest is 8 MB, not worth a copy).
    fn from_file(
        bytes: crate::sys::mmap::FileBytes,
        start: usize,
    ) -> Result<Manifest, format::Error> {
        let dirs = format::decode_payload(&bytes[start..])?;
        let index = DirIndex::build(&bytes[start..], &dirs);
        Ok(Manifest {
            bytes,
            start,
            dirs,
            index,
            unchecked: None,
        })
    }

    fn payload_bytes(&self) -> &[u8] {
        &self.bytes[self.start..]
    }

    /// The record of list directory `name` (`.` for the root).
    pub fn dir(&self, name: &[u8]) -> Option<&DirHead> {
        let i = self.index.find(self.payload_bytes(), &self.dirs, name)?;
        Some(&self.dirs[i])
    }

    /// The list name of a directory record.
    pub fn dir_name(&self, d: &DirHead) -> &[u8] {
        &self.payload_bytes()[d.name.clone()]
    }

    /// The entries of a directory record, in list order, each checked as
    /// it is decoded (a caller gives up on the directory at an error).
    pub fn entries<'a>(&'a self, d: &DirHead) -> format::Entries<'a> {
        if self.unchecked.is_some() && d.plain.len > 0 {
            // Not covered by the sum that was checked: an error, so the
            // caller lists the directory for real.
            return format::Entries::unchecked();
        }
        format::Entries::new(&self.payload_bytes()[d.entries.clone()], d.count)
    }

    /// The entries of a directory record after its [`format::Plain`] run
    /// (a caller that only counts those takes the summary instead).
    pub fn entries_after_plain<'a>(&'a self, d: &DirHead) -> format::Entries<'a> {
        let r = d.entries.start + d.plain.len as usize..d.entries.end;
        let left = d.count - d.plain.count() as u32;
        format::Entries::new(&self.payload_bytes()[r], left)
    }

    /// The encoded bytes of a directory record (copied forward when a run
    /// trusts it).
    pub fn record_bytes(&self, d: &DirHead) -> &[u8] {
        &self.payload_bytes()[d.record.clone()]
    }

    /// The content hash recorded for `dir`/`name`, if any.
    ///
    /// Why: `-c` can skip hashing a file whose metadata and ctime still
    /// match the manifest (the scan reads a whole directory's at once; this
    /// is the one-name lookup).
    pub fn hash(&self, dir: &[u8], name: &[u8]) -> Option<format::Hashed> {
        let d = self.dir(dir)?;
        self.entries(d)
            .map_while(Result::ok)
            .find(|e| e.name == name)?
            .hash
    }

    /// Number of directory records.
    pub fn len(&self) -> usize {
        self.dirs.len()
    }

    /// Whether no directory is recorded.
    pub fn is_empty(&self) -> bool {
        self.dirs.is_empty()
    }

    /// The payload as loaded (a run that recorded the same bytes does not
    /// write the file again).
    pub fn payload(&self) -> &[u8] {
        self.payload_bytes()
    }

    /// Whether every byte of the payload is checked (by the whole-payload
    /// sum, now if it was not at load): only then are its records copied
    /// into a new manifest, which would otherwise seal unchecked bytes
    /// under fresh sums.
    pub fn checked(&self) -> bool {
        self.unchecked
            .is_none_or(|s| *crate::delta::hash::hash_bytes(self.payload_bytes()).as_bytes() == s)
    }
}

/// Check and decode a manifest file: its whole-payload sum, or with `lean`
/// only the sum over what a counting `--trust-mtime` run reads (the
/// directory headers and the entries after their plain runs: ~1 MB of the
/// linux tree's 8.5 MB, so a seventh of the hashing and of the pages
/// touched).
pub fn open_file(
    bytes: crate::sys::mmap::FileBytes,
    want: &Header,
    lean: bool,
) -> Result<Manifest, Reject> {
    if !lean {
        let start = bytes.len() - format::open(&bytes, want)?.len();
        return Manifest::from_file(bytes, start).map_err(Reject::Corrupt);
    }
    let parts = format::split(&bytes)?;
    let (start, sum, lean_sum) = (bytes.len() - parts.payload.len(), parts.sum, parts.lean);
    let dirs = format::decode_payload(parts.payload).map_err(Reject::Corrupt)?;
    if format::lean_sum(parts.payload, &dirs) != lean_sum {
        return Err(Reject::Corrupt(format::Error("checksum mismatch")));
    }
    parts.key(want)?;
    let index = DirIndex::build(&bytes[start..], &dirs);
    Ok(Manifest {
        bytes,
        start,
        dirs,
        index,
        unchecked: Some(sum),
    })
}

/// Where a pair's manifest lives and how it is keyed.
#[derive(Clone, Debug)]
pub struct Place {
    /// The manifest file.
    pub path: PathBuf,
    /// What its header must say.
    pub header: Header,
}

/// The cache directory: `--manifest-dir`, else `$XDG_CACHE_HOME/resync`,
/// else `$HOME/.cache/resync`.
pub fn cache_dir(opts: &Options) -> Option<PathBuf> {
    if let Some(d) = &opts.manifest_dir {
        return Some(PathBuf::from(d));
    }
    if let Some(x) = std::env::var_os("XDG_CACHE_HOME").filter(|x| Path::new(x).is_absolute()) {
        return Some(PathBuf::from(x).join("resync"));
    }
    let home = std::env::var_os("HOME").filter(|h| !h.is_empty())?;
    Some(PathBuf::from(home).join(".cache/resync"))
}

/// A hash of every option that can change what a run lists, compares or
/// leaves behind: the whole option set minus what only changes output and
/// the manifest options themselves. Broad on purpose: a needless rescan
/// costs time, a stale manifest taken as valid costs correctness.
pub fn options_hash(opts: &Options) -> [u8; 32] {
    let mut o = opts.clone();
    o.verbose = 0;
    o.quiet = false;
    o.itemize = 0;
    o.human_readable = 0;
    o.stats = false;
    o.out_format = None;
    o.progress = false;
    o.progress2 = false;
    o.eight_bit_output = false;
    o.plain_numbers = false;
    o.info.clear();
    o.debug.clear();
    o.dry_run = false;
    o.manifest_dir = None;
    o.no_manifest = false;
    o.trust_mtime = false;
    o.sources.clear();
    o.dest = None;
    let mut h = blake3::Hasher::new();
    h.update(b"resync manifest options v1\0");
    h.update(format!("{o:?}").as_bytes());
    *h.finalize().as_bytes()
}

/// The manifest of transferring the contents of `src` into `dest`, when a
/// run can have one: a single `SRC/` operand copied recursively into an
/// existing directory (other shapes always scan fully).
pub fn place(opts: &Options, src: &Path, dest: &Path) -> Option<Place> {
    let dir = cache_dir(opts)?;
    let s = std::fs::canonicalize(src).ok()?;
    let d = std::fs::canonicalize(dest).ok()?;
    let mut k = blake3::Hasher::new();
    k.update(b"resync manifest pair v1\0");
    k.update(s.as_os_str().as_bytes());
    k.update(b"\0");
    k.update(d.as_os_str().as_bytes());
    let pair = *k.finalize().as_bytes();
    let name: String = pair[..16].iter().map(|b| format!("{b:02x}")).collect();
    Some(Place {
        path: dir.join(format!("{name}.manifest")),
        header: Header {
            pair,
            opts: options_hash(opts),
        },
    })
}

/// Load the manifest at `place`; `None` when there is none or it cannot be
/// used. A corrupt, truncated, foreign or other-version file is reported
/// with a warning (the run then scans fully and rewrites it); one written
/// with other options is ignored silently.
pub fn load(place: &Place, lean: bool) -> Option<Manifest> {
    let read = std::fs::File::open(&place.path).and_then(|f| {
        let len = f.metadata()?.len();
        crate::sys::mmap::map_read(&f, len, crate::sys::mmap::Access::Sequential)
    });
    let bytes = match read {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        // Another user's cache (or a sandboxed one): no manifest, quietly.
        Err(e) if matches!(e.raw_os_error(), Some(libc::EACCES | libc::EPERM)) => return None,
        Err(e) => {
            warn(place, &crate::flist::errno_text(&e));
            return None;
        }
    };
    match open_file(bytes, &place.header, lean) {
        Ok(m) => Some(m),
        Err(Reject::OtherOptions) => None,
        Err(Reject::OtherPair) => {
            warn(place, "written for another source and destination");
            None
        }
        Err(Reject::Version(v)) => {
            warn(
                place,
                &format!("format version {v}, not {}", format::VERSION),
            );
            None
        }
        Err(Reject::Corrupt(e)) => {
            warn(place, &e.to_string());
            None
        }
    }
}

fn warn(place: &Place, why: &str) {
    crate::report::message_bare(&format!(
        "resync: warning: ignoring manifest {}: {why}; doing a full scan",
        place.path.display()
    ));
}

/// A recorded directory: list name, encoded record, offset of its flags,
/// whether it holds a `-c` hash.
type Recorded = (Box<[u8]>, Vec<u8>, usize, bool);

/// Collects the directory records of one run (listings run on many
/// threads; the walk then says which directories it changed).

#[derive(Default)]
pub struct Recorder {
    dirs: Mutex<Vec<Recorded>>,
    /// Records kept as they were in the last manifest (trusted or equal):
    /// their index in it ([`DirHead::index`]), complete flag as recorded.
    carried: Mutex<Vec<(u32, bool)>>,
}

/// One directory being recorded by a listing.
pub struct DirRecording {
    name: Box<[u8]>,
    buf: Vec<u8>,
    flags_at: usize,
    count_at: usize,
    count: u32,
    /// The leading non-directory, non-skipped entries so far, and whether
    /// that run still goes on.
    plain: format::Plain,
    in_plain: bool,
    /// Some entry carries a `-c` hash (kept even if the directory is dirty).
    hashes: bool,
}

impl DirRecording {
    /// Start recording list directory `name` with its directory states.
    pub fn new(name: &[u8], src: &DirState, dest: Option<&DirState>, entries: usize) -> Self {
        let mut buf = Vec::with_capacity(64 + name.len() + entries * 128);
        let (flags_at, count_at) = format::begin_dir(&mut buf, name, 0, src, dest);
        DirRecording {
            name: name.into(),
            buf,
            flags_at,
            count_at,
            count: 0,
            plain: format::Plain::default(),
            in_plain: true,
            hashes: false,
        }
    }

    /// Record one listed name.
    pub fn entry(&mut self, e: &EntryRec<'_>) {
        let before = self.buf.len();
        format::put_entry(&mut self.buf, e);
        self.count += 1;
        self.hashes |= e.hash.is_some() && e.dest.is_some();
        self.in_plain &= format::Plain::takes(e.src.kind, e.flags);
        if self.in_plain {
            self.plain
                .add(e.src.kind, e.src.size, self.buf.len() - before);
        }
    }
}

impl Recorder {
    /// Keep a finished directory recording. One that equals `old`'s record
    /// of the directory (the usual case on a rescan) is kept as a reference
    /// to it instead: no copy to hold, and nothing to write at the end.
    pub fn add(&self, mut d: DirRecording, old: Option<&Manifest>) {
        format::end_dir(&mut d.buf, d.count_at, d.count, &d.plain);
        if let Some((m, h)) = old.and_then(|m| m.dir(&d.name).map(|h| (m, h))) {
            let was = m.record_bytes(h);
            let at = d.flags_at;
            let flags = |b: &[u8]| b[at] & !format::D_COMPLETE;
            if was.len() == d.buf.len()
                && h.flags_at - h.record.start == at
                && flags(was) == flags(&d.buf)
                && was[..at] == d.buf[..at]
                && was[at + 1..] == d.buf[at + 1..]
            {
                self.carry(h);
                return;
            }
        }
        let flags_at = d.flags_at;
        self.dirs
            .lock()
            .unwrap()
            .push((d.name, d.buf, flags_at, d.hashes));
    }

    /// Keep a record from the previous manifest as it was (a trusted
    /// directory).
    pub fn carry(&self, d: &DirHead) {
        let complete = d.flags & format::D_COMPLETE != 0;
        self.carried.lock().unwrap().push((d.index, complete));
    }

    /// The payload of the new manifest: every recorded directory except
    /// `dirty` ones (changed by this run), sorted by name, with
    /// [`format::D_COMPLETE`] set exactly for `complete` ones; `None` when
    /// it would be the same as `old`'s (nothing to write).
    pub fn payload(
        &self,
        old: Option<&Manifest>,
        dirty: &std::collections::HashSet<Vec<u8>>,
        complete: &std::collections::HashSet<Vec<u8>>,
    ) -> Option<Vec<u8>> {
        let carried = std::mem::take(&mut *self.carried.lock().unwrap());
        let mut dirs = std::mem::take(&mut *self.dirs.lock().unwrap());
        if let Some(m) = old {
            // Every directory carried over unchanged, none dirty, and the
            // same ones complete: the old file stands.
            if dirs.is_empty()
                && carried.len() == m.len()
                && carried.iter().all(|&(i, c)| {
                    let n = m.dirs.get(i as usize).map_or(&[][..], |d| m.dir_name(d));
                    !dirty.contains(n) && c == complete.contains(n)
                })
            {
                return None;
            }
        }
        // Records of a manifest only lean-checked are copied once the rest
        // is checked too; if it fails they are left out (rescanned later).
        let old_ok = old.filter(|m| carried.is_empty() || m.checked());
        for (i, _) in carried {
            if let Some((m, d)) = old_ok.and_then(|m| m.dirs.get(i as usize).map(|d| (m, d))) {
                let at = d.flags_at - d.record.start;
                dirs.push((m.dir_name(d).into(), m.record_bytes(d).to_vec(), at, false));
            }
        }
        // A dirty directory is left out, unless it holds `-c` hashes: those
        // are kept in a record marked stale (each is checked against its
        // file's own stat, whatever happened to the directory).
        dirs.retain(|(n, _, _, h)| *h || !dirty.contains(n.as_ref()));
        dirs.sort_by(|a, b| a.0.cmp(&b.0));
        dirs.dedup_by(|a, b| a.0 == b.0);
        let total: usize = dirs.iter().map(|d| d.1.len()).sum();
        let mut out = Vec::with_capacity(4 + total);
        out.extend_from_slice(&(dirs.len() as u32).to_le_bytes());
        for (n, mut b, at, _) in dirs {
            b[at] &= !(format::D_COMPLETE | format::D_STALE);
            if dirty.contains(n.as_ref()) {
                b[at] |= format::D_STALE;
            } else if complete.contains(n.as_ref()) {
                b[at] |= format::D_COMPLETE;
            }
            out.extend_from_slice(&b);
        }
        if old.is_some_and(|m| m.payload() == out.as_slice()) {
            return None;
        }
        Some(out)
    }
}

/// Write the manifest atomically: a temp file in the cache directory, then
/// a rename over the old one. Failures are warnings (the transfer is done),
/// except a cache without write permission, which is silently skipped.
pub fn save(place: &Place, payload: &[u8]) {
    use std::io::Write;
    let Some(dir) = place.path.parent() else {
        return;
    };
    let r = (|| -> std::io::Result<()> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let mut name = place.path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".{}.tmp", std::process::id()));
        let tmp = dir.join(name);
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let r = f
            .write_all(&format::seal(&place.header, payload))
            .and_then(|_| std::fs::rename(&tmp, &place.path));
        if r.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        r
    })();
    if let Err(e) = r {
        // A cache the user may not write (another user's HOME, a read-only
        // or sandboxed one) just means no manifest, as rsync has none.
        if matches!(
            e.raw_os_error(),
            Some(libc::EACCES | libc::EPERM | libc::EROFS)
        ) {
            return;
        }
        crate::report::message_bare(&format!(
            "resync: warning: cannot write manifest {}: {}",
            place.path.display(),
            crate::flist::errno_text(&e)
        ));
    }
}

use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

/// The record of one listed entry, for [`DirRecording::entry`].
pub fn entry_rec<'a>(
    name: &'a [u8],
    recurse: bool,
    skip: bool,
    src: &Meta,
    dest: Option<&Meta>,
    link: Option<&'a OsString>,
) -> EntryRec<'a> {
    EntryRec {
        name,
        flags: if recurse { format::E_RECURSE } else { 0 } | if skip { format::E_SKIP } else { 0 },
        src: *src,
        dest: dest.copied(),
        link: link.map(|l| l.as_bytes()),
        hash: None,
    }
}

/// A symlink target from a record.
pub fn link_target(b: &[u8]) -> OsString {
    OsString::from_vec(b.to_vec())
}

#[cfg(test)]
mod tests;
