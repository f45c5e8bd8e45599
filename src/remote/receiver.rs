//! The receiving side of a remote transfer (the server of a push, the client
//! of a pull): the local engine's walk, planner, applier and deleter, fed by
//! the sender's file list ([`ListFeed`]) and file data ([`WireFetch`]).
//!
//! Everything from the peer is checked before it touches the destination:
//! names by the decoder (`proto::check_name`: relative, no `..`), then here
//! each entry must be a direct child of the directory whose listing is
//! expected (so `a/x` is only ever written inside a directory `a` that the
//! sender listed as a directory and the walk created or found as one, never
//! through a symlink `a`), names are unique within a listing, indexes are
//! contiguous, and every listed entry must be consumed by the end.

use super::filesum::{self, Hasher};
use super::pipe::{PipeReceiver, PipeSender, Try};
use super::proto::{self, Msg, WireOp, flag, req};
use super::session::Link;
use crate::apply::{Fetch, Filled, Receive};
use crate::exit;
use crate::flist::{self, Children, DestProbe, Entry, Feed, Kind, Listing, Meta, Node, Paths};
use crate::options::{Append, Options};
use crate::plan::Item;
use std::collections::{HashMap, HashSet, VecDeque};
use std::ffi::OsStr;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

/// Files requested and not yet received at most: bounds the receiver's queue
/// and the sender's backlog (`docs/PROTOCOL.md`, "Pipelining").
const MAX_OUTSTANDING: usize = 4096;
/// Bytes per `Signature` piece.
const SIG_PIECE: usize = 512 << 10;

/// The sender's file list as the walk consumes it.
pub struct ListFeed {
    st: Mutex<ListState>,
    link: Arc<Link>,
    /// `--remove-source-files`: each non-directory's index by name, for the
    /// `Success` that tells the sender it is done.
    names: Option<Mutex<HashMap<Vec<u8>, u64>>>,
}

struct ListState {
    rx: Receiver<Msg>,
    opts: Options,
    /// Entries received and not yet handed to the walk, with their index.
    pending: VecDeque<(u64, proto::Entry)>,
    /// Listing errors that came before the pending entries.
    errors: Vec<flist::ScanError>,
    next_index: u64,
    ended: bool,
    /// The list is unusable (protocol error): everything after is empty.
    broken: bool,
    /// `-H`: the kind of each hard-link group's first entry, by its index.
    leaders: HashMap<u64, Kind>,
    /// `--delete-missing-args`: the missing operands of the top level.
    missing: Vec<std::path::PathBuf>,
}

impl ListFeed {
    /// A feed reading file-list messages from `rx`.
    pub fn new(opts: &Options, rx: Receiver<Msg>, link: Arc<Link>) -> Arc<ListFeed> {
        Arc::new(ListFeed {
            st: Mutex::new(ListState {
                rx,
                opts: opts.clone(),
                pending: VecDeque::new(),
                errors: Vec::new(),
                next_index: 0,
                ended: false,
                broken: false,
                leaders: HashMap::new(),
                missing: Vec::new(),
            }),
            link,
            names: opts.remove_source_files.then(Mutex::default),
        })
    }

    /// The index of the listed non-directory `name` (`--remove-source-files`).
    pub fn index_of(&self, name: &[u8]) -> Option<u64> {
        self.names.as_ref()?.lock().unwrap().get(name).copied()
    }

    /// Whether every listed entry was consumed (checked at the end: leftover
    /// entries were never inside a listed directory).
    pub fn check_consumed(&self) {
        let mut st = self.st.lock().unwrap();
        if st.broken {
            return;
        }
        while !st.ended && self.pull(&mut st) {}
        if !st.pending.is_empty() {
            st.broken = true;
            self.link
                .protocol_error("file-list entry outside the directories listed");
        }
    }

    /// Receive the next file-list message into the state; false at the end.
    fn pull(&self, st: &mut ListState) -> bool {
        if st.ended || st.broken {
            return false;
        }
        let m = match st.rx.recv() {
            Ok(m) => m,
            Err(_) => {
                // The connection failed (reported by the reader thread), or
                // the peer ended it before the end of the list.
                st.broken = true;
                if self.link.set_code(exit::STREAM_IO) {
                    let (_, got) = self.link.bytes();
                    crate::report::message(&format!(
                        "connection unexpectedly closed ({got} bytes received so far) [{}]",
                        self.link.role
                    ));
                }
                return false;
            }
        };
        match m {
            Msg::FileBatch {
                first_index,
                entries,
            } => {
                if first_index != st.next_index {
                    return self.broken(st, "FileBatch index out of sequence");
                }
                for e in entries {
                    if let Some(n) = &self.names {
                        if e.mode & libc::S_IFMT != libc::S_IFDIR {
                            n.lock().unwrap().insert(e.name.clone(), st.next_index);
                        }
                    }
                    st.pending.push_back((st.next_index, e));
                    st.next_index += 1;
                }
                if st.next_index > proto::MAX_FILES {
                    return self.broken(st, "too many files");
                }
            }
            Msg::FileListEnd { total } => {
                if total != st.next_index {
                    return self.broken(st, "FileListEnd total");
                }
                st.ended = true;
            }
            // Names are not mapped yet: ids are taken as they are.
            Msg::IdNames { .. } => {}
            Msg::Log { level, text } => {
                let code = if (level - 3) & 1 == 1 {
                    exit::VANISHED
                } else {
                    exit::PARTIAL
                };
                st.errors.push(flist::ScanError {
                    message: String::from_utf8_lossy(&text).into_owned(),
                    code,
                    bare: level >= 5,
                });
            }
            _ => return self.broken(st, "unexpected file-list message"),
        }
        true
    }

    fn broken(&self, st: &mut ListState, what: &str) -> bool {
        st.broken = true;
        st.pending.clear();
        self.link.protocol_error(what);
        false
    }

    /// Take the run of entries whose parent is `dir` (`""` for the top level).
    fn run_of(&self, dir: &[u8], top: bool) -> Listing {
        let mut st = self.st.lock().unwrap();
        let mut l = Listing::default();
        let mut seen = HashSet::new();
        let mut first = true;
        loop {
            if st.pending.is_empty() && !self.pull(&mut st) {
                break;
            }
            if st.pending.is_empty() {
                continue;
            }
            // Errors sent ahead of this listing's entries belong to it.
            if first {
                l.errors.append(&mut st.errors);
            }
            let (_, e) = st.pending.front().expect("not empty");
            let name = e.name.as_slice();
            let ok = if top && first && name == b"." {
                true
            } else if top && st.opts.relative && e.flags & flag::MISSING != 0 {
                // -R --delete-missing-args: a missing operand keeps its
                // whole path (`tmp/gone`), sent after the operands' level
                // and checked as a missing-operand entry below.
                true
            } else if top && st.opts.relative && !st.opts.implied_dirs {
                // -R --no-implied-dirs: an operand's path without its
                // parents' entries (`a/b` at the top level), flagged as one
                // of the operands' level so the listings that follow are not
                // taken for it. Its missing parents are made as rsync makes
                // them (default attributes, existing ones followed).
                e.flags & flag::TOP_DIR != 0 && name != b"."
            } else {
                parent_of(name) == Some(dir) && name != b"."
            };
            if !ok {
                break;
            }
            first = false;
            let (index, e) = st.pending.pop_front().expect("not empty");
            if !seen.insert(e.name.clone()) {
                self.broken(&mut st, "duplicate name in a file-list directory");
                return Listing::default();
            }
            let st = &mut *st;
            if e.flags & flag::MISSING != 0 {
                if !top || e.mode != 0 || st.opts.missing_args != 2 || e.name == b"." {
                    self.broken(st, "a missing-operand entry out of place");
                    return Listing::default();
                }
                st.missing
                    .push(Path::new(OsStr::from_bytes(&e.name)).to_path_buf());
                continue;
            }
            match node(&st.opts, &mut st.leaders, index, e) {
                Ok(Some(n)) => l.nodes.push(n),
                Ok(None) => {}
                Err(what) => {
                    self.broken(st, what);
                    return Listing::default();
                }
            }
        }
        if first {
            // An empty listing (or the end of the list): its errors.
            l.errors.append(&mut st.errors);
        }
        l
    }
}

/// The parent of a list name (`""` for a top-level name), or None for `.`.
fn parent_of(name: &[u8]) -> Option<&[u8]> {
    if name == b"." {
        return None;
    }
    Some(match name.iter().rposition(|&c| c == b'/') {
        Some(i) => &name[..i],
        None => b"",
    })
}

/// A walk node for a wire entry; the protocol error for an entry that
/// cannot be (an impossible type, a field the options did not ask for, a
/// hard link to a group that does not exist or has another type).
fn node(
    opts: &Options,
    leaders: &mut HashMap<u64, Kind>,
    index: u64,
    e: proto::Entry,
) -> Result<Option<Node>, &'static str> {
    let kind = Kind::from_mode(e.mode);
    let fmt = e.mode & libc::S_IFMT;
    let known = matches!(
        fmt,
        libc::S_IFREG
            | libc::S_IFDIR
            | libc::S_IFLNK
            | libc::S_IFCHR
            | libc::S_IFBLK
            | libc::S_IFIFO
            | libc::S_IFSOCK
    );
    if !known || (kind == Kind::Symlink) != e.link.is_some() {
        return Err("file-list entry of an impossible type");
    }
    if e.xattrs.is_some() && !(opts.xattrs || opts.acls) {
        return Err("xattrs in a file-list entry without -X/-A");
    }
    if e.sum.is_some() && !(opts.checksum && kind == Kind::File) {
        return Err("a sum in a file-list entry that takes none");
    }
    if e.atime.is_some() && !opts.atimes {
        return Err("an atime in a file-list entry without --atimes");
    }
    // -H: members of a group share the first member's index as their inode
    // (the planner groups by it), and any of them may be requested: the
    // sender answers with the first one's data, the same inode's.
    let (ino, nlink) = match e.hlink {
        None => (index + 1, 1),
        Some(_) if !opts.hard_links || kind == Kind::Dir => {
            return Err("hard-link entry without -H, or for a directory");
        }
        Some(h) if h == index => {
            leaders.insert(index, kind);
            (index + 1, 2)
        }
        Some(h) => {
            if leaders.get(&h) != Some(&kind) {
                return Err("hard link to an unknown group, or of another type");
            }
            (h + 1, 2)
        }
    };
    let xattrs = e.xattrs.map(|x| {
        let mut v: Vec<(std::ffi::OsString, Vec<u8>)> = x
            .into_iter()
            .filter(|(n, _)| flist::xattr_wanted(n, opts))
            .map(|(n, v)| (std::ffi::OsString::from_vec(n), v))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    });
    // -c: the sender's sum; the destination's is read when the planner asks.
    let sums = (opts.checksum && kind == Kind::File).then(|| {
        Box::new(flist::checksum::Checked {
            src: e.sum.map(blake3::Hash::from_bytes),
            dest: None,
            dest_unread: true,
        })
    });
    let (atime, atime_nsec) = e.atime.unwrap_or((e.mtime_sec, e.mtime_nsec));
    let name = Path::new(OsStr::from_bytes(&e.name));
    // --safe-links of a pull: the server sent every symlink, the receiver
    // drops the unsafe ones as rsync's generator does (a push's sender, on
    // the client, dropped them itself).
    if let (Some(t), true) = (&e.link, opts.safe_links && opts.links && !opts.server) {
        if flist::unsafe_symlink(t, name) {
            if opts.verbose > 0 {
                crate::report::message_stdout(&format!(
                    "ignoring unsafe symlink \"{}\" -> \"{}\"",
                    crate::report::escape_name(name, false),
                    String::from_utf8_lossy(t)
                ));
            }
            return Ok(None);
        }
    }
    let no_content = e.flags & flag::NO_CONTENT != 0;
    let implied = e.flags & flag::IMPLIED != 0;
    if implied && !(opts.relative && kind == Kind::Dir && !no_content) {
        return Err("an implied directory without -R, or not a listed directory");
    }
    if e.flags & flag::TOP_DIR != 0 && !opts.relative {
        return Err("an operand-level flag without -R");
    }
    let meta = Meta {
        kind,
        mode: e.mode,
        // (A directory's size only shows in --list-only's lines.)
        size: if kind == Kind::Dir && !opts.list_only {
            0
        } else {
            e.size
        },
        mtime: e.mtime_sec,
        mtime_nsec: e.mtime_nsec,
        atime,
        atime_nsec,
        uid: e.uid,
        gid: e.gid,
        rdev: e.rdev.unwrap_or(0),
        // Unique per entry but for -H groups: the applier sorts its batches
        // by inode, requests name the index it gives.
        ino,
        dev: 0,
        nlink,
    };
    let entry = Entry {
        paths: Paths::new(name, name),
        meta,
        link_target: e.link.map(std::ffi::OsString::from_vec),
        xattrs,
        // An implied directory's listing is walked, never deleted in.
        no_recurse: kind == Kind::Dir && (no_content || implied),
        implied,
        dest: DestProbe::Unknown,
        skip: flist::skipped(opts, kind),
        sums,
    };
    let children = if kind == Kind::Dir && !no_content && e.name != b"." {
        Children::Feed(name.to_path_buf())
    } else {
        Children::None
    };
    Ok(Some(Node { entry, children }))
}

impl Feed for ListFeed {
    fn top(&self) -> flist::Top {
        let mut l = self.run_of(b"", true);
        let dot = match l.nodes.first() {
            Some(n) if n.entry.name() == Path::new(".") => Some(l.nodes.remove(0).entry),
            _ => None,
        };
        flist::Top {
            dot,
            nodes: l.nodes,
            errors: l.errors,
            notes: Vec::new(),
            missing: std::mem::take(&mut self.st.lock().unwrap().missing),
            dest_exact: false,
            counted: Default::default(),
        }
    }

    fn listing(&self, dir: &Path) -> Listing {
        self.run_of(dir.as_os_str().as_bytes(), false)
    }

    fn failed(&self) -> bool {
        self.st.lock().unwrap().broken || self.link.failed().is_some()
    }
}

/// How a requested file is written.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Target {
    /// A temp file renamed over the destination.
    Temp,
    /// `--inplace`: the destination file itself, which is also the basis.
    InPlace,
    /// `--append`/`--append-verify`: the sender's bytes past `have` are
    /// added to the destination file.
    Append { have: u64, verify: bool },
}

/// One requested file, waiting for its data.
struct Wanted {
    index: u64,
    entry: Entry,
    item: Item,
    /// The basis length the signature announced (copies must stay inside).
    basis_len: Option<u64>,
    /// `--fuzzy`: the other file the signature was taken from (None: the
    /// destination file itself).
    basis: Option<PathBuf>,
    target: Target,
    /// `--progress`: the item line and list position for its progress line.
    shown: Option<crate::report::Shown>,
}

/// The receiver's write settings, for the data thread.
#[derive(Clone, Copy)]
struct Writing {
    /// `-S`, `--preallocate`.
    sparse: bool,
    preallocate: bool,
    /// rsync's `--info=name` level (verification warnings need 1).
    names: u8,
    /// `--partial`, `--partial-dir` (the words of a failed verification).
    partial: bool,
    partial_dir: bool,
}

/// Requests files as the walk plans them and writes their data as it
/// arrives, on a thread of its own, in request order.
pub struct WireFetch {
    link: Arc<Link>,
    delta: bool,
    inplace: bool,
    append: Append,
    queue: Option<PipeSender<Wanted>>,
    worker: Option<std::thread::JoinHandle<()>>,
    /// `--remove-source-files`: sends the sender each item's `Success`.
    source_done: Option<crate::apply::SourceDone>,
    /// `-y/--fuzzy`: the basis search of the directory being planned.
    fuzzy: Option<Fuzzy>,
}

/// `-y/--fuzzy` on the receiving side: the candidate lists of the
/// destination directory being planned (and with `-yy` of the same
/// directory under each reference directory), read the first time a file
/// there lacks a basis, as rsync's generator reads them.
struct Fuzzy {
    /// `-yy`: the `--compare-dest`/`--copy-dest`/`--link-dest` arguments.
    basis_dirs: Vec<PathBuf>,
    /// The destination directory the lists belong to.
    dir: Option<PathBuf>,
    /// The directories searched, once read: the destination directory's
    /// first; `lists` holds their candidates in the same order.
    dirs: Vec<PathBuf>,
    /// The candidate lists (None: not read yet for `dir`).
    lists: Option<Vec<Vec<crate::delta::fuzzy::Candidate>>>,
    /// Names in `dir` already requested over an existing file: they change,
    /// so they are no basis for later files (rsync's `FLAG_FILE_SENT`).
    changing: HashSet<std::ffi::OsString>,
}

impl Fuzzy {
    fn new(opts: &Options) -> Option<Fuzzy> {
        (opts.fuzzy > 0).then(|| Fuzzy {
            basis_dirs: if opts.fuzzy > 1 && opts.alt_dest.is_some() {
                opts.basis_dirs.iter().map(PathBuf::from).collect()
            } else {
                Vec::new()
            },
            dir: None,
            dirs: Vec::new(),
            lists: None,
            changing: HashSet::new(),
        })
    }

    /// Follow the planner into the directory of `dest`.
    fn enter(&mut self, dest: &Path) {
        let dir = dest.parent().unwrap_or(Path::new(""));
        if self.dir.as_deref() != Some(dir) {
            self.dir = Some(dir.to_path_buf());
            self.lists = None;
            self.changing.clear();
        }
    }

    /// `dest` (an existing file) is about to change.
    fn changing(&mut self, dest: &Path) {
        self.enter(dest);
        let Some(name) = dest.file_name() else { return };
        if let Some(c) = self
            .lists
            .as_mut()
            .and_then(|l| l.first_mut())
            .and_then(|l| l.iter_mut().find(|c| c.name == name))
        {
            c.taken = true;
        }
        self.changing.insert(name.to_os_string());
    }

    /// The basis for `e`, which the destination lacks: its path, or None.
    fn basis(&mut self, e: &Entry, dest: &Path) -> Option<PathBuf> {
        use crate::delta::fuzzy;
        self.enter(dest);
        if self.lists.is_none() {
            let dir = self.dir.clone().unwrap_or_default();
            self.dirs.clear();
            self.dirs.push(dir);
            // The entry's directory under each reference directory (these
            // are resolved against the destination root, as rsync does).
            let rel = e.name().parent().unwrap_or(Path::new(""));
            let depth = e.name().components().count();
            let root = dest.ancestors().nth(depth).unwrap_or(Path::new(""));
            for b in &self.basis_dirs {
                self.dirs.push(root.join(b).join(rel));
            }
            let mut lists: Vec<_> = self.dirs.iter().map(|d| fuzzy::list(d)).collect();
            for c in &mut lists[0] {
                c.taken = self.changing.contains(&c.name);
            }
            self.lists = Some(lists);
        }
        let lists = self.lists.as_ref()?;
        let name = e.name().file_name()?.as_bytes();
        let (i, j) = fuzzy::choose(lists, name, e.meta.size, e.meta.mtime)?;
        Some(self.dirs[i].join(&lists[i][j].name))
    }
}

impl WireFetch {
    /// A fetcher sending requests on `link` and reading file data from `data`;
    /// `rx` writes the files.
    /// `progress`: the screen a transfer's item and progress lines go to
    /// once it is in place (`--progress`).
    pub fn new(
        opts: &Options,
        link: Arc<Link>,
        data: PipeReceiver<Msg>,
        rx: Receive,
        progress: Option<Arc<crate::report::Screen>>,
    ) -> WireFetch {
        let (qt, qr) = super::pipe::pipe(MAX_OUTSTANDING);
        let l = Arc::clone(&link);
        let how = Writing {
            sparse: opts.sparse,
            preallocate: opts.preallocate,
            names: opts.name_level(),
            partial: opts.partial || opts.partial_dir.is_some(),
            partial_dir: opts.partial_dir.is_some(),
        };
        let worker = std::thread::spawn(move || receive_files(&l, &qr, &data, rx, how, progress));
        WireFetch {
            link,
            // rsync sends deltas by default for remote transfers; -W turns
            // them off, and a dry run requests nothing.
            delta: opts.whole_file != Some(true) && !opts.sparse,
            inplace: opts.inplace || opts.append != Append::No,
            append: opts.append,
            queue: Some(qt),
            worker: Some(worker),
            source_done: None,
            fuzzy: Fuzzy::new(opts),
        }
    }

    /// `--remove-source-files`: each finished item's `Success` goes to the
    /// sender (its index from `feed`), which removes the source.
    pub fn with_success(mut self, feed: Arc<ListFeed>) -> WireFetch {
        let link = Arc::clone(&self.link);
        self.source_done = Some(Box::new(move |e: &Entry| {
            if let Some(index) = feed.index_of(e.name().as_os_str().as_bytes()) {
                link.send(&Msg::Success { index });
            }
        }));
        self
    }

    /// The basis's signature, when a delta is worth it: the destination
    /// file's, else (`--fuzzy`, for a file the destination lacks) that of a
    /// similar file, whose path comes second.
    fn signature(&mut self, e: &Entry, it: &Item) -> Option<(u64, Vec<u8>, Option<PathBuf>)> {
        if !self.delta {
            return None;
        }
        match it.dest_meta {
            Some(d) if d.kind == Kind::File => {
                if let Some(f) = self.fuzzy.as_mut() {
                    f.changing(&it.dest);
                }
                if d.size == 0 {
                    return None;
                }
                signature_of(&it.dest).map(|(l, s)| (l, s, None))
            }
            _ => {
                let basis = self.fuzzy.as_mut()?.basis(e, &it.dest)?;
                signature_of(&basis).map(|(l, s)| (l, s, Some(basis)))
            }
        }
    }
}

/// The delta signature of the file at `path` (None: unreadable or empty).
fn signature_of(path: &Path) -> Option<(u64, Vec<u8>)> {
    use std::os::unix::fs::OpenOptionsExt;
    // Not through a symlink that replaced the file since it was listed: its
    // target's chunk hashes would go to the peer.
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .ok()?;
    let len = f.metadata().ok()?.len();
    if len == 0 {
        return None;
    }
    let data = crate::sys::mmap::map_read(&f, len, crate::sys::mmap::Access::Sequential).ok()?;
    let params = crate::delta::chunk::ChunkParams::for_size(len);
    let s =
        crate::delta::sig::Signature::compute(&data, params, crate::delta::sig::DEFAULT_HASH_LEN);
    Some((len, s.encode()))
}

impl Fetch for WireFetch {
    fn request(&mut self, e: Entry, it: Item, shown: Option<crate::report::Shown>) {
        if self.link.failed().is_some() {
            return;
        }
        let index = e.meta.ino - 1;
        let exists = it.dest_meta.filter(|d| d.kind == Kind::File);
        let target = match exists {
            Some(d) if self.append != Append::No => Target::Append {
                have: d.size,
                verify: self.append == Append::Verify,
            },
            Some(_) if self.inplace => Target::InPlace,
            _ => Target::Temp,
        };
        let sig = match target {
            Target::Append { .. } => None,
            _ => self.signature(&e, &it),
        };
        let (mut flags, mut offset) = (0, 0);
        if sig.is_some() {
            flags |= req::SIG;
            if target == Target::InPlace {
                flags |= req::IN_PLACE;
            }
        }
        if let Target::Append { have, verify } = target {
            flags |= req::APPEND;
            if verify {
                flags |= req::VERIFY;
            }
            offset = have;
        }
        self.link.send(&Msg::Request {
            index,
            flags,
            offset,
        });
        let basis_len = sig.as_ref().map(|s| s.0);
        let basis = sig.as_ref().and_then(|s| s.2.clone());
        if let Some((_, bytes, _)) = sig {
            let mut pieces = bytes.chunks(SIG_PIECE).peekable();
            while let Some(p) = pieces.next() {
                self.link.send(&Msg::Signature {
                    index,
                    last: pieces.peek().is_none(),
                    piece: p.to_vec(),
                });
            }
        }
        if let Some(q) = &self.queue {
            let w = Wanted {
                index,
                entry: e,
                item: it,
                basis_len,
                basis,
                target,
                shown,
            };
            // A full queue waits for the data thread, but only after the
            // requests queued in the writer are on their way: the data
            // thread waits for the sender's answers to them (without this
            // flush a tree of more than MAX_OUTSTANDING files deadlocks). A
            // gone queue means the connection failed.
            match q.try_send(w) {
                Ok(()) => {}
                Err(Try::Wait(w)) => {
                    self.link.flush_soon();
                    let _ = q.send(w);
                }
                Err(Try::Gone(_)) => {}
            }
        }
    }

    fn source_done(&mut self) -> Option<crate::apply::SourceDone> {
        self.source_done.take()
    }

    fn finish(&mut self) {
        self.link.send(&Msg::Done { phase: 0 });
        self.link.flush();
        self.queue = None;
        if let Some(w) = self.worker.take() {
            let _ = w.join();
        }
    }
}

/// The data thread: write each requested file as its `Data` frames arrive;
/// then the redo phase (files whose delta failed verification, requested
/// again whole).
fn receive_files(
    link: &Link,
    queue: &PipeReceiver<Wanted>,
    data: &PipeReceiver<Msg>,
    mut rx: Receive,
    how: Writing,
    progress: Option<Arc<crate::report::Screen>>,
) {
    /// Whatever the walk's lines wait for once this thread is gone.
    struct Close(Option<Arc<crate::report::Screen>>);
    impl Drop for Close {
        fn drop(&mut self) {
            if let Some(s) = &self.0 {
                s.close();
            }
        }
    }
    let _close = Close(progress.clone());
    let mut redo = Vec::new();
    // `--progress`: a file's item line and progress line once it is done
    // (its item line alone when it failed or waits for the redo phase).
    let show = |w: &Wanted, placed: bool, start: std::time::Instant| {
        if let (Some(p), Some(s)) = (progress.as_ref(), w.shown.as_ref()) {
            if placed {
                p.done(s, w.entry.meta.size, start.elapsed().as_secs_f64());
            } else {
                p.failed(s);
            }
        }
    };
    let next = |q: &PipeReceiver<Wanted>| match q.try_recv() {
        Ok(w) => Some(w),
        Err(Try::Wait(())) => {
            link.flush_soon();
            q.recv().ok()
        }
        Err(Try::Gone(())) => None,
    };
    while let Some(w) = next(queue) {
        if link.failed().is_some() || rx.stopped() {
            continue;
        }
        let start = std::time::Instant::now();
        match one_file(link, data, &mut rx, &w, how) {
            Got::Done(placed) => show(&w, placed, start),
            Got::Redo => {
                show(&w, false, start);
                if how.names > 0 {
                    crate::report::message_bare(&format!(
                        "WARNING: {} failed verification -- update {} (will try again).",
                        crate::report::escape_name(w.entry.name(), false),
                        kept(&w, how)
                    ));
                }
                redo.push(w)
            }
            Got::Stop => break,
        }
    }
    // The sender's end of phase 0.
    if link.failed().is_some() || !expect_done(link, data, 0) {
        return;
    }
    for w in &redo {
        link.send(&Msg::Request {
            index: w.index,
            flags: 0,
            offset: 0,
        });
    }
    link.send(&Msg::Done { phase: 1 });
    link.flush();
    for mut w in redo {
        w.basis_len = None;
        // The whole file again; an appended one is rewritten in place.
        if w.target != Target::Temp {
            w.target = Target::InPlace;
        }
        rx.redo(&w.entry, &w.item);
        let start = std::time::Instant::now();
        match one_file(link, data, &mut rx, &w, how) {
            Got::Done(placed) => {
                if let (Some(p), Some(s), true) = (progress.as_ref(), w.shown.as_ref(), placed) {
                    p.redone(s, w.entry.meta.size, start.elapsed().as_secs_f64());
                }
            }
            Got::Redo => {
                rx.error(format!(
                    "ERROR: {} failed verification -- update {}.",
                    crate::report::escape_name(w.entry.name(), false),
                    kept(&w, how)
                ));
            }
            Got::Stop => return,
        }
    }
    expect_done(link, data, 1);
}

/// rsync's word for what a failed verification left at the destination.
fn kept(w: &Wanted, how: Writing) -> &'static str {
    if w.target != Target::Temp {
        "retained"
    } else if how.partial_dir {
        "put into partial-dir"
    } else if how.partial {
        "retained"
    } else {
        "discarded"
    }
}

fn expect_done(link: &Link, data: &PipeReceiver<Msg>, phase: u8) -> bool {
    match data.recv() {
        Ok(Msg::Done { phase: p }) if p == phase => true,
        Ok(_) => {
            link.protocol_error("file data after the end of a phase");
            false
        }
        Err(_) => false,
    }
}

enum Got {
    /// The file's data was received; true when it is in place (false: the
    /// sender could not send it, or writing it failed).
    Done(bool),
    Redo,
    Stop,
}

/// Receive one file's data into its temp file and put it in place, or
/// into the destination file itself (`--inplace`, `--append`).
fn one_file(
    link: &Link,
    data: &PipeReceiver<Msg>,
    rx: &mut Receive,
    w: &Wanted,
    how: Writing,
) -> Got {
    use crate::sys::copy::{PieceWrite, preallocate, write_at};
    let mut outcome = Got::Done(true);
    let mut matched_total = 0u64;
    let mut raise = 0;
    let in_place = w.target != Target::Temp;
    let piece = PieceWrite {
        sparse: how.sparse,
        punch: in_place,
        preallocate: how.preallocate && how.sparse,
    };
    // Whether this file's data was read to its end (`FileEnd` or
    // `NoSend`): when the temp file cannot be made, or a write fails
    // halfway (a full disk), the rest must still be read off the wire.
    let mut read_all = false;
    let mut fill = |f: &std::fs::File, dfd: Option<&std::os::fd::OwnedFd>| {
        // Writing in place, the file is its own basis.
        let own = match (w.target, w.basis_len, &w.basis) {
            // A --fuzzy basis in the same directory opens through its fd.
            (Target::Temp, Some(_), Some(b)) => {
                let here = b.parent() == w.item.dest.parent();
                open_basis(b, dfd.filter(|_| here))
            }
            (Target::Temp, Some(_), None) => open_basis(&w.item.dest, dfd),
            _ => None,
        };
        // The basis went away since its signature was taken (deleted or
        // replaced by another program): the sender's copies cannot be
        // made, so the data is read through and the file redone whole.
        let lost = w.target == Target::Temp && w.basis_len.is_some() && own.is_none();
        let basis = if in_place { Some(f) } else { own.as_ref() };
        // A fresh temp file built from a basis (the common delta case):
        // copies go through `copy_file_range` (in-kernel, no user-space
        // pass over the matched bytes) and the result is hashed once at the
        // end, from the file, on all cores. Profiled on a 1 GiB delta, the
        // inline read + hash + write of every matched byte on this one
        // thread was half of the transfer's wall time.
        let mut deferred = Deferred::new(w.target == Target::Temp && own.is_some() && !how.sparse);
        let kind = filesum::Kind::for_file(link.sum, w.basis_len.is_some());
        let mut hasher = Hasher::new(kind);
        let mut pos = 0u64;
        if let Target::Append { have, verify } = w.target {
            pos = have;
            if verify {
                filesum::update_from_file(&mut hasher, f, have)?;
            }
        }
        if how.preallocate && !how.sparse && w.entry.meta.size > pos {
            preallocate(f, pos, w.entry.meta.size - pos, false)?;
        }
        let mut matched = 0u64;
        let mut buf = Vec::new();
        loop {
            let m = match data.recv() {
                Ok(m) => m,
                Err(_) => {
                    outcome = Got::Stop;
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::ConnectionAborted,
                        "connection closed",
                    ));
                }
            };
            match m {
                Msg::Data { index, ops } if index == w.index => {
                    for op in ops {
                        match op {
                            WireOp::Literal(b) => {
                                if !deferred.on {
                                    hasher.update(&b);
                                }
                                write_at(f, &b, pos, piece)?;
                                pos += b.len() as u64;
                            }
                            WireOp::Copy { offset, len } => {
                                let inside = w.basis_len.is_some_and(|bl| {
                                    offset.checked_add(len).is_some_and(|e| e <= bl)
                                });
                                // In place, bytes behind the output position
                                // are already overwritten.
                                let forward = w.target != Target::InPlace || offset >= pos;
                                if lost && inside {
                                    pos += len;
                                    continue;
                                }
                                let Some(b) = basis.filter(|_| inside && forward) else {
                                    outcome = Got::Stop;
                                    link.protocol_error(if inside {
                                        "Copy behind the output of an in-place file"
                                    } else {
                                        "Copy outside the basis"
                                    });
                                    return Err(std::io::Error::other("bad copy"));
                                };
                                matched += len;
                                if deferred.on {
                                    deferred.copy(b, offset, f, pos, len)?;
                                    pos += len;
                                    continue;
                                }
                                let mut left = len;
                                let mut at = offset;
                                while left > 0 {
                                    let n = left.min(1 << 20) as usize;
                                    buf.resize(n, 0);
                                    // A basis that shrank reads short: the
                                    // whole-file hash catches it (redo).
                                    let got = b.read_at(&mut buf[..n], at)?;
                                    if got == 0 {
                                        break;
                                    }
                                    hasher.update(&buf[..got]);
                                    // A copy onto itself leaves the bytes be.
                                    if !(in_place && at == pos) {
                                        write_at(f, &buf[..got], pos, piece)?;
                                    }
                                    at += got as u64;
                                    pos += got as u64;
                                    left -= got as u64;
                                }
                            }
                        }
                    }
                }
                Msg::FileEnd { index, hash } if index == w.index => {
                    read_all = true;
                    // Trailing holes (-S) and the cut of a file rewritten in place.
                    if in_place || how.sparse {
                        f.set_len(pos)?;
                    }
                    let ours = if let (true, Some(b)) = (deferred.on, own.as_ref()) {
                        deferred.finish(b, f, pos, kind)?
                    } else {
                        Some(hasher.finish())
                    };
                    if lost || ours.is_none_or(|h| hash != h) {
                        outcome = Got::Redo;
                        // An appended file that fails --append-verify keeps
                        // its new data and metadata until the redo (rsync's
                        // "update retained").
                        return Ok(match w.target {
                            Target::Append { .. } => Filled::Done,
                            _ => Filled::Dropped,
                        });
                    }
                    matched_total = matched;
                    return Ok(Filled::Done);
                }
                Msg::NoSend { index, code, why } if index == w.index => {
                    read_all = true;
                    crate::report::message(&String::from_utf8_lossy(&why));
                    raise = if i32::from(code) == exit::VANISHED {
                        exit::VANISHED
                    } else {
                        exit::PARTIAL
                    };
                    return Ok(Filled::Dropped);
                }
                _ => {
                    outcome = Got::Stop;
                    link.protocol_error("file data for another file than requested");
                    return Err(std::io::Error::other("out of order"));
                }
            }
        }
    };
    let start = match w.target {
        Target::Append { have, .. } => have,
        _ => 0,
    };
    let done = if in_place {
        rx.in_place(&w.entry, &w.item, start, &mut fill)
    } else {
        rx.file(&w.entry, &w.item, &mut fill)
    };
    if !read_all && !matches!(outcome, Got::Stop) && !discard_rest(link, data, w.index) {
        outcome = Got::Stop;
    }
    if done.is_some() {
        rx.matched(matched_total);
        if matches!(outcome, Got::Done(_)) {
            rx.placed(&w.entry, &w.item);
        }
    } else if matches!(outcome, Got::Done(_)) {
        outcome = Got::Done(false);
    }
    if raise != 0 {
        rx.raise(raise);
    }
    outcome
}

/// Read the rest of file `index`'s data and drop it, as rsync's
/// `discard_receive_data` after a failed `mkstemp` or write: the error is
/// already reported, and the files after this one still arrive in order.
/// False when the connection ended or the peer broke the order.
fn discard_rest(link: &Link, data: &PipeReceiver<Msg>, index: u64) -> bool {
    loop {
        match data.recv() {
            Ok(Msg::Data { index: i, .. }) if i == index => {}
            Ok(Msg::FileEnd { index: i, .. }) if i == index => return true,
            Ok(Msg::NoSend { index: i, why, .. }) if i == index => {
                crate::report::message(&String::from_utf8_lossy(&why));
                return true;
            }
            Ok(_) => {
                link.protocol_error("file data for another file than requested");
                return false;
            }
            Err(_) => return false,
        }
    }
}

/// The delta fast path of [`one_file`]: matched ranges copied in-kernel
/// (adjacent ones merged into one call), the whole-file hash taken from the
/// finished file on all cores.
///
/// Why: profiled on a 1 GiB delta, the inline `pread` + hash + `pwrite` of
/// every matched byte on this one thread was the longest phase of the
/// transfer while the other core idled. (Copies in parallel do not help:
/// writers of one file serialize on its inode lock.)
struct Deferred {
    /// This file takes the path.
    on: bool,
    /// `copy_file_range` still works for this pair (else `pread`/`pwrite`).
    in_kernel: bool,
    /// A copy ran out of basis (it shrank under us): the file is redone,
    /// as the inline path's hash mismatch would redo it.
    short: bool,
    /// Copies not made yet: (basis offset, output offset, length), adjacent
    /// ones merged.
    pending: Vec<(u64, u64, u64)>,
    pending_bytes: u64,
}

/// Matched bytes gathered before a batch of copies runs.
const COPY_BATCH: u64 = 64 << 20;

impl Deferred {
    fn new(on: bool) -> Deferred {
        Deferred {
            on,
            in_kernel: true,
            short: false,
            pending: Vec::new(),
            pending_bytes: 0,
        }
    }

    /// Queue a copy of `len` basis bytes at `offset` to `pos` of `out`;
    /// runs the batch when it is full.
    fn copy(
        &mut self,
        basis: &std::fs::File,
        offset: u64,
        out: &std::fs::File,
        pos: u64,
        len: u64,
    ) -> std::io::Result<()> {
        match self.pending.last_mut() {
            Some(l) if l.0 + l.2 == offset && l.1 + l.2 == pos => l.2 += len,
            _ => self.pending.push((offset, pos, len)),
        }
        self.pending_bytes += len;
        if self.pending_bytes >= COPY_BATCH {
            self.run(basis, out)?;
        }
        Ok(())
    }

    /// Make the queued copies, in order.
    fn run(&mut self, basis: &std::fs::File, out: &std::fs::File) -> std::io::Result<()> {
        use crate::sys::copy::{copy_file_range_at, copy_read_write};
        self.pending_bytes = 0;
        for (offset, pos, len) in std::mem::take(&mut self.pending) {
            if self.short {
                break;
            }
            let mut r = Ok(None);
            if self.in_kernel {
                r = copy_file_range_at(basis, offset, out, pos, len);
            }
            if let Ok(None) = r {
                self.in_kernel = false;
                r = copy_read_write(basis, offset, out, pos, len).map(Some);
            }
            match r {
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => self.short = true,
                r => {
                    r?;
                }
            }
        }
        Ok(())
    }

    /// Finish the file: the remaining copies, then the `kind` checksum of
    /// its first `len` bytes, read back from the temp file just written
    /// (our own, which nothing else truncates; `None` when the basis ran
    /// short, or the output is short of `len`).
    fn finish(
        &mut self,
        basis: &std::fs::File,
        out: &std::fs::File,
        len: u64,
        kind: filesum::Kind,
    ) -> std::io::Result<Option<[u8; 32]>> {
        self.run(basis, out)?;
        if self.short {
            return Ok(None);
        }
        match filesum::of_file(kind, out, len) {
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => Ok(None),
            r => r.map(Some),
        }
    }
}

/// The destination file a delta was computed against, opened without
/// following a symlink that replaced it since.
fn open_basis(dest: &Path, dfd: Option<&std::os::fd::OwnedFd>) -> Option<std::fs::File> {
    use rustix::fs::{Mode, OFlags};
    let flags = OFlags::RDONLY | OFlags::CLOEXEC | OFlags::NOFOLLOW;
    match (dfd, dest.file_name()) {
        (Some(d), Some(n)) => rustix::fs::openat(d, n, flags, Mode::empty())
            .ok()
            .map(std::fs::File::from),
        _ => {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(dest)
                .ok()
        }
    }
}
