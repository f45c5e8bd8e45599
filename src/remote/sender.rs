//! The sending side of a remote transfer (the client of a push, the server
//! of a pull): scan the sources and stream the file list in the walk's order,
//! and answer the receiver's requests with whole files or deltas.
//!
//! The sender plans nothing: the receiver decides what to request (rsync's
//! generator runs on the receiving side).

use super::filesum::Hasher;
use super::proto::{self, Entry as WireEntry, Msg, SigAssembler, WireOp, flag, req};
use super::session::Link;
use crate::delta::{chunk, ops, sig};
use crate::exit;
use crate::flist::{Children, Entry, Kind, Node, ScanError, Scanner};
use crate::options::Options;
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::sync::mpsc::Receiver;
use std::sync::{Arc, Mutex};

/// Estimated payload bytes per `FileBatch` before it is sent (well under
/// the 1 MiB frame limit, and small enough to start the receiver early).
const BATCH_BYTES: usize = 256 << 10;
/// How long a scan may hold finished directories' entries before they are
/// pushed to the receiver (the list is otherwise pushed per full batch).
///
/// Why: pushing every directory on its own made a no-op of the linux tree
/// cost ~5,100 small TLS records and TCP segments (one per directory, ~260
/// bytes each), each a wake-up on both sides; a fast scan fills batches in
/// a few milliseconds, and a slow one still reaches the receiver this soon.
const LIST_FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(5);
/// Literal bytes per `Data` frame.
const DATA_CHUNK: usize = 256 << 10;
/// xattr bytes one entry may carry (with [`BATCH_BYTES`] before it, a batch
/// stays under the 1 MiB frame).
const XATTR_BYTES: usize = 512 << 10;

/// The entries listed so far, by index: regular files (what a request may
/// name) and, for `--remove-source-files`, the other non-directories (what a
/// `Success` may name).
type Files = Arc<Mutex<Vec<Option<Listed>>>>;

/// A listed non-directory: where it is, and what it was when listed.
#[derive(Clone)]
struct Listed {
    path: PathBuf,
    name: PathBuf,
    regular: bool,
    size: u64,
    mtime: i64,
    mtime_nsec: u32,
}

/// Run the sender: the list on its own thread, requests answered here until
/// the receiver's last phase ends. Returns the exit code class of what went
/// wrong on this side (23, 24) or the connection's fatal code.
///
/// With `--remove-source-files` the receiver's `Success`es can follow its
/// last phase (redone files, hard links, attribute fixes): the sender then
/// waits on `control` for the receiver's `Goodbye`, removing sources until
/// then, so that its own exit code counts them. The control messages taken
/// (the receiver's `Stats` and `Goodbye`) are returned for the closing.
pub fn run(
    opts: &Options,
    link: &Arc<Link>,
    requests: Receiver<Msg>,
    control: &Receiver<Msg>,
) -> (i32, Vec<Msg>) {
    let files: Files = Arc::default();
    // A list read by the other side comes first (`FilesFrom`).
    let peer_list = if list_from_peer(opts) {
        match receive_files_from(link, &requests) {
            Some(data) => Some(data),
            None => return (link.failed().unwrap_or(exit::PROTOCOL), Vec::new()),
        }
    } else {
        None
    };
    let lister = {
        let opts = opts.clone();
        let link = Arc::clone(link);
        let files = Arc::clone(&files);
        std::thread::spawn(move || send_list(&opts, &link, &files, peer_list))
    };
    let mut answered = answer(opts, link, &requests, &files);
    let code = lister.join().unwrap_or(exit::IPC);
    let mut taken = Vec::new();
    if opts.remove_source_files && link.failed().is_none() {
        while let Ok(m) = control.recv() {
            let end = matches!(m, Msg::Goodbye { .. });
            taken.push(m);
            if end {
                break;
            }
        }
        // Every `Success` before the `Goodbye` is queued by now.
        while let Ok(m) = requests.try_recv() {
            match m {
                Msg::Success { index } => match success(opts, link, &files, index) {
                    Some(c) => answered = crate::engine::merge_code(answered, c),
                    None => break,
                },
                _ => {
                    link.protocol_error("unexpected message after the last phase");
                    break;
                }
            }
        }
    }
    let code = link
        .failed()
        .unwrap_or(crate::engine::merge_code(code, answered));
    (code, taken)
}

/// The receiver's `Success` for `index`: remove that source. None (after a
/// protocol error) when the index names no listed non-directory.
fn success(opts: &Options, link: &Link, files: &Files, index: u64) -> Option<i32> {
    let listed = files
        .lock()
        .unwrap()
        .get(usize::try_from(index).unwrap_or(usize::MAX))
        .cloned()
        .flatten();
    let Some(l) = listed.filter(|_| opts.remove_source_files) else {
        link.protocol_error("Success for an index that is not a listed file");
        return None;
    };
    Some(remove_source(opts, link, &l))
}

/// Whether this sender's `--files-from` list is read by the other side: a
/// server's `-` (rsync's word for "from the connection"), or a pushing
/// client's `:PATH`.
fn list_from_peer(opts: &Options) -> bool {
    opts.files_from.as_deref().is_some_and(|f| {
        if opts.server {
            f == "-"
        } else {
            super::args::remote_files_from(f.as_bytes()).is_some()
        }
    })
}

/// The `FilesFrom` pieces up to the last one, within [`proto::MAX_FILES_FROM`];
/// None after a protocol error or a closed connection.
fn receive_files_from(link: &Link, requests: &Receiver<Msg>) -> Option<Vec<u8>> {
    let mut data = Vec::new();
    loop {
        match requests.recv() {
            Ok(Msg::FilesFrom { last, piece }) => {
                if data.len() + piece.len() > proto::MAX_FILES_FROM {
                    link.protocol_error("--files-from list over its bound");
                    return None;
                }
                data.extend_from_slice(&piece);
                if last {
                    return Some(data);
                }
            }
            Ok(_) => {
                link.protocol_error("expected FilesFrom before the file list");
                return None;
            }
            Err(_) => return None,
        }
    }
}

/// Scan and send the whole file list in the order the receiver's walk takes
/// listings: the operands' level, then each directory's listing depth first.
/// `peer_list`: the `--files-from` list's bytes, when the other side read it.
fn send_list(opts: &Options, link: &Link, files: &Files, peer_list: Option<Vec<u8>>) -> i32 {
    // --list-only lists one level of a directory operand when not recursing.
    // A pull's receiver (the client) drops unsafe symlinks itself and
    // says so on its stdout: the server sends them all.
    let mut own;
    let opts =
        if (opts.list_only && !opts.recursive && !opts.dirs) || (opts.server && opts.safe_links) {
            own = opts.clone();
            own.dirs |= opts.list_only && !opts.recursive;
            own.safe_links &= !opts.server;
            &own
        } else {
            opts
        };
    // --files-from: the names in the list, read here (the sender's side).
    let own_ff;
    let listed = match (&peer_list, &opts.files_from) {
        (Some(data), _) => Some(Ok(crate::engine::files_from_data(opts, data, false))),
        (None, Some(ff)) => Some(crate::engine::files_from(opts, ff)),
        (None, None) => None,
    };
    let opts = if let Some(listed) = listed {
        match listed {
            Ok(srcs) => {
                let mut o = opts.clone();
                o.sources = srcs;
                own_ff = o;
                &own_ff
            }
            Err(c) => {
                // Reported here; the peer exits with the code.
                link.set_code(c);
                link.send(&Msg::Error {
                    code: c as u8,
                    message: String::new(),
                });
                link.flush();
                return c;
            }
        }
    } else {
        opts
    };
    let filters = match crate::engine::build_filters(opts) {
        Ok(f) => f,
        Err(c) => {
            link.set_code(c);
            return c;
        }
    };
    let scanner = Scanner::new(
        opts,
        None,
        crate::engine::PREFETCH_BUDGET,
        filters,
        Default::default(),
    );
    let mut top = scanner.operands();
    let mut out = ListOut {
        opts,
        links: HashMap::new(),
        link,
        files,
        next: 0,
        batch: Vec::new(),
        first: 0,
        bytes: 0,
        code: 0,
        top: opts.relative,
        pushed: std::time::Instant::now(),
    };
    out.errors(&top.errors);
    out.notes(std::mem::take(&mut top.notes));
    if let Some(d) = &top.dot {
        out.entry(d, false, None);
    }
    let sums = out.sums(&top.nodes);
    for (n, sum) in top.nodes.iter().zip(sums) {
        out.entry(&n.entry, no_content(n), sum);
    }
    for name in std::mem::take(&mut top.missing) {
        out.missing(&name);
    }
    out.flush();
    out.top = false;
    out.tree(&scanner, std::mem::take(&mut top.nodes));
    out.flush();
    link.send(&Msg::FileListEnd { total: out.next });
    link.flush();
    out.code
}

/// A directory whose listing will not follow (`-d`, `-x` mount points, or
/// not recursing).
fn no_content(n: &Node) -> bool {
    n.entry.meta.kind == Kind::Dir && matches!(n.children, Children::None)
}

/// File-list output: entries batched into frames, errors before the listing
/// they belong to.
struct ListOut<'a> {
    opts: &'a Options,
    /// `-H`: the index of the first entry of each (device, inode) listed.
    links: HashMap<(u64, u64), u64>,
    link: &'a Link,
    files: &'a Files,
    next: u64,
    batch: Vec<WireEntry>,
    first: u64,
    bytes: usize,
    code: i32,
    /// `-R`: the operands' level is being sent (its entries are flagged
    /// `TOP_DIR`; with `--no-implied-dirs` their names may have several
    /// components).
    top: bool,
    /// When the list was last pushed to the receiver ([`ListOut::flush`]).
    pushed: std::time::Instant,
}

impl ListOut<'_> {
    /// Send each directory's listing, then its subdirectories' (the walk's order).
    fn tree(&mut self, scanner: &Arc<Scanner>, nodes: Vec<Node>) {
        for n in nodes {
            if n.entry.meta.kind != Kind::Dir || matches!(n.children, Children::None) {
                continue;
            }
            if self.link.failed().is_some() {
                return;
            }
            let mut l = scanner.take(n.children);
            self.errors(&l.errors);
            self.notes(std::mem::take(&mut l.notes));
            let sums = self.sums(&l.nodes);
            for (c, sum) in l.nodes.iter().zip(sums) {
                self.entry(&c.entry, no_content(c), sum);
            }
            if self.pushed.elapsed() >= LIST_FLUSH_EVERY {
                self.flush();
            }
            self.tree(scanner, l.nodes);
        }
    }

    /// `--debug=filter` lines (`[sender] hiding file …`): printed by a
    /// client, sent to the client by a server (as `Log`s after the entries
    /// listed before them, as rsync's server sender prints them at `-vv`).
    fn notes(&mut self, notes: Vec<String>) {
        if notes.is_empty() {
            return;
        }
        if self.opts.server {
            self.flush();
        }
        for n in notes {
            say(self.opts, self.link, 0, n);
        }
    }

    /// Listing errors travel as `Log` levels 3–6 ahead of the entries that
    /// follow, so the receiver reports them where rsync would (and stops
    /// deleting after a sender I/O error).
    fn errors(&mut self, errors: &[ScanError]) {
        if errors.is_empty() {
            return;
        }
        self.flush();
        for e in errors {
            self.code = crate::engine::merge_code(self.code, e.code);
            let level = 3 + u8::from(e.code == exit::VANISHED) + 2 * u8::from(e.bare);
            let mut text = e.message.as_bytes().to_vec();
            text.truncate(proto::MAX_TEXT);
            self.link.send(&Msg::Log { level, text });
        }
    }

    /// `-c`: the BLAKE3 of each regular file of a listing over its listed
    /// size, hashed in parallel (as the local scan does); None for other
    /// entries and files that cannot be read (rsync's all-zero sum).
    fn sums(&self, nodes: &[Node]) -> Vec<Option<[u8; 32]>> {
        use rayon::prelude::*;
        if !self.opts.checksum {
            return vec![None; nodes.len()];
        }
        nodes
            .par_iter()
            .map(|n| {
                let e = &n.entry;
                if e.meta.kind != Kind::File || e.skip {
                    return None;
                }
                // The source is a regular file or a symlink followed to one.
                let f = crate::sys::meta::open_file(e.src(), true).ok()?;
                let h = crate::delta::hash::hash_listed(&f, e.meta.size).ok()?;
                Some(*h.as_bytes())
            })
            .collect()
    }

    /// `-H`: the group's first index for an entry that has other links
    /// (its own index for the first of them), as the local planner groups.
    fn leader(&mut self, e: &Entry, index: u64) -> Option<u64> {
        let linked =
            self.opts.hard_links && e.meta.kind != Kind::Dir && e.meta.nlink > 1 && !e.skip;
        linked.then(|| *self.links.entry((e.meta.dev, e.meta.ino)).or_insert(index))
    }

    /// `-X`/`-A`: the entry's xattrs (ACLs are `system.posix_acl_*` ones),
    /// within what one file-list frame can carry; the rest is reported.
    fn xattrs(&mut self, e: &Entry) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
        if !(self.opts.xattrs || self.opts.acls) {
            return None;
        }
        let mut out = Vec::new();
        let mut bytes = 0usize;
        for (n, v) in e.xattrs.iter().flatten() {
            let n = n.as_bytes();
            bytes += n.len() + v.len() + 8;
            if n.len() > proto::MAX_XATTR_NAME
                || v.len() > proto::MAX_XATTR_VALUE
                || out.len() >= proto::MAX_XATTRS
                || bytes > XATTR_BYTES
            {
                self.errors(&[ScanError {
                    message: format!(
                        "rsync_xal_get: xattr {} of {} is too large to send",
                        String::from_utf8_lossy(n),
                        crate::report::escape_name(e.name(), false)
                    ),
                    code: exit::PARTIAL,
                    bare: false,
                }]);
                continue;
            }
            out.push((n.to_vec(), v.clone()));
        }
        Some(out)
    }

    fn entry(&mut self, e: &Entry, no_content: bool, sum: Option<[u8; 32]>) {
        let index = self.next;
        self.next += 1;
        let hlink = self.leader(e, index);
        let xattrs = self.xattrs(e);
        let atime = self
            .opts
            .atimes
            .then_some((e.meta.atime, e.meta.atime_nsec));
        {
            let mut f = self.files.lock().unwrap();
            let keep = e.meta.kind == Kind::File
                || (self.opts.remove_source_files && e.meta.kind != Kind::Dir);
            f.push(keep.then(|| Listed {
                path: e.src().to_path_buf(),
                name: e.name().to_path_buf(),
                regular: e.meta.kind == Kind::File,
                size: e.meta.size,
                mtime: e.meta.mtime,
                mtime_nsec: e.meta.mtime_nsec,
            }));
        }
        let name = e.name().as_os_str().as_bytes().to_vec();
        let w = WireEntry {
            flags: if no_content { flag::NO_CONTENT } else { 0 }
                | if self.top { flag::TOP_DIR } else { 0 }
                | if e.implied { flag::IMPLIED } else { 0 },
            mode: e.meta.mode,
            size: e.meta.size,
            mtime_sec: e.meta.mtime,
            mtime_nsec: e.meta.mtime_nsec,
            uid: e.meta.uid,
            gid: e.meta.gid,
            link: e.link_target.as_ref().map(|t| t.as_bytes().to_vec()),
            rdev: matches!(e.meta.kind, Kind::Device).then_some(e.meta.rdev),
            hlink,
            xattrs,
            sum,
            atime,
            name,
        };
        self.bytes += 96
            + w.name.len()
            + w.link.as_ref().map_or(0, Vec::len)
            + w.xattrs
                .iter()
                .flatten()
                .map(|(n, v)| n.len() + v.len() + 8)
                .sum::<usize>();
        if self.batch.is_empty() {
            self.first = index;
        }
        self.batch.push(w);
        if self.bytes >= BATCH_BYTES || self.batch.len() >= proto::MAX_BATCH {
            self.flush();
        }
    }

    /// `--delete-missing-args`: an operand that does not exist, for the
    /// receiver to delete (an index of its own, nothing to request).
    fn missing(&mut self, name: &std::path::Path) {
        let index = self.next;
        self.next += 1;
        self.files.lock().unwrap().push(None);
        if self.batch.is_empty() {
            self.first = index;
        }
        self.bytes += 96 + name.as_os_str().len();
        self.batch.push(WireEntry {
            flags: flag::MISSING,
            mode: 0,
            size: 0,
            mtime_sec: 0,
            mtime_nsec: 0,
            uid: 0,
            gid: 0,
            link: None,
            rdev: None,
            hlink: None,
            xattrs: None,
            sum: None,
            atime: None,
            name: name.as_os_str().as_bytes().to_vec(),
        });
        if self.bytes >= BATCH_BYTES || self.batch.len() >= proto::MAX_BATCH {
            self.flush();
        }
    }

    /// Send the batch so far.
    fn flush(&mut self) {
        if !self.batch.is_empty() {
            let entries = std::mem::take(&mut self.batch);
            self.link.send(&Msg::FileBatch {
                first_index: self.first,
                entries,
            });
            self.bytes = 0;
        }
        self.link.flush_soon();
        self.pushed = std::time::Instant::now();
    }
}

/// Answer requests in the order received until the receiver's `Done(1)`.
/// Returns the exit code class of files that could not be sent.
fn answer(opts: &Options, link: &Link, requests: &Receiver<Msg>, files: &Files) -> i32 {
    let noatime = opts.open_noatime;
    let mut code = 0;
    let mut sigs = SigAssembler::default();
    // A request whose signature is still arriving (and whether the
    // receiver writes that file in place).
    let mut waiting: Option<(u64, bool)> = None;
    loop {
        let m = match requests.try_recv() {
            Ok(m) => m,
            Err(_) => {
                // Nothing queued: let the receiver have what was written.
                link.flush_soon();
                match requests.recv() {
                    Ok(m) => m,
                    Err(_) => return code,
                }
            }
        };
        match m {
            Msg::Request {
                index,
                flags,
                offset,
            } => {
                if waiting.is_some() {
                    link.protocol_error("Request while a Signature is pending");
                    return code;
                }
                let Some(path) = lookup(files, index) else {
                    link.protocol_error("Request for an index that is not a regular file");
                    return code;
                };
                if flags & req::SIG != 0 {
                    waiting = Some((index, flags & req::IN_PLACE != 0));
                } else {
                    let how = if flags & req::APPEND != 0 {
                        How::Append {
                            offset,
                            verify: flags & req::VERIFY != 0,
                        }
                    } else {
                        How::Whole
                    };
                    code = crate::engine::merge_code(
                        code,
                        send_file(link, index, &path, how, noatime),
                    );
                }
            }
            Msg::Signature { index, last, piece } => {
                let Some((_, in_place)) = waiting.filter(|w| w.0 == index) else {
                    link.protocol_error("Signature without its Request");
                    return code;
                };
                match sigs.push(index, last, &piece) {
                    Ok(None) => {}
                    Ok(Some(bytes)) => {
                        waiting = None;
                        let s = match sig::Signature::decode(&bytes) {
                            Ok(s) => s,
                            Err(e) => {
                                link.protocol_error(&format!("bad signature: {e:?}"));
                                return code;
                            }
                        };
                        let Some(path) = lookup(files, index) else {
                            link.protocol_error("Signature for an unknown index");
                            return code;
                        };
                        let how = How::Delta { basis: s, in_place };
                        code = crate::engine::merge_code(
                            code,
                            send_file(link, index, &path, how, noatime),
                        );
                    }
                    Err(e) => {
                        link.protocol_error(&e.to_string());
                        return code;
                    }
                }
            }
            Msg::Success { index } => match success(opts, link, files, index) {
                Some(c) => code = crate::engine::merge_code(code, c),
                None => return code,
            },
            Msg::Done { phase } => {
                if waiting.is_some() || phase > 1 {
                    link.protocol_error("Done in the middle of a request");
                    return code;
                }
                link.send(&Msg::Done { phase });
                link.flush();
                if phase == 1 {
                    return code;
                }
            }
            _ => {
                link.protocol_error("unexpected message from the receiver");
                return code;
            }
        }
        if link.failed().is_some() {
            return code;
        }
    }
}

fn lookup(files: &Files, index: u64) -> Option<PathBuf> {
    let f = files.lock().unwrap();
    let l = f.get(usize::try_from(index).ok()?)?.as_ref()?;
    l.regular.then(|| l.path.clone())
}

/// `--remove-source-files`: the receiver has `l` in place; remove it unless
/// it changed since it was listed, with the messages and exit code of the
/// local sender (`crate::apply`), rsync's. Returns 23 for a file kept.
fn remove_source(opts: &Options, link: &Link, l: &Listed) -> i32 {
    use std::os::unix::fs::MetadataExt;
    let name = crate::report::escape_name(&l.name, opts.eight_bit_output);
    let failed = |op: &str, err: &std::io::Error| {
        if err.kind() == std::io::ErrorKind::NotFound {
            say(
                opts,
                link,
                0,
                format!("sender file already removed: {name}"),
            );
            0
        } else {
            let why = crate::apply::err_text(err);
            let msg = format!("[sender] sender failed to {op} {name}: {why}");
            say(opts, link, 1, format!("{}: {msg}", crate::report::PROGRAM));
            exit::PARTIAL
        }
    };
    match std::fs::symlink_metadata(&l.path) {
        Ok(m) => {
            if m.size() != l.size || m.mtime() != l.mtime || m.mtime_nsec() as u32 != l.mtime_nsec {
                let msg = format!("ERROR: Skipping sender remove for changed file: {name}");
                say(opts, link, 1, msg);
                return exit::PARTIAL;
            }
        }
        Err(err) => return failed("re-lstat", &err),
    }
    match std::fs::remove_file(&l.path) {
        Ok(()) => {
            if crate::apply::remove_info(opts) {
                say(opts, link, 0, format!("sender removed {name}"));
            }
            0
        }
        Err(err) => failed("remove", &err),
    }
}

/// A line of the sender's: the client prints it (level 0 on stdout, else
/// stderr), a server sends it to the client as a `Log`.
fn say(opts: &Options, link: &Link, level: u8, text: String) {
    if opts.server {
        link.send(&Msg::Log {
            level,
            text: text.into_bytes(),
        });
    } else if level == 0 {
        crate::report::message_stdout(&text);
    } else {
        crate::report::message_bare(&text);
    }
}

/// What a request asks for.
enum How {
    /// The whole file.
    Whole,
    /// A delta against the receiver's basis; `in_place`: the receiver
    /// writes the basis itself.
    Delta {
        basis: sig::Signature,
        in_place: bool,
    },
    /// `--append`: the bytes from `offset` on.
    Append { offset: u64, verify: bool },
}

/// Send one file: `Data` frames (a delta when the receiver sent the basis's
/// signature, the tail for `--append`), then `FileEnd` with the BLAKE3 of
/// the content (of the bytes sent for a plain append); `NoSend` when it
/// cannot be read. Returns 23/24 for a file not sent.
fn send_file(link: &Link, index: u64, path: &std::path::Path, how: How, noatime: bool) -> i32 {
    let opened = if noatime {
        crate::sys::meta::open_noatime(path)
    } else {
        std::fs::File::open(path)
    };
    let mut f = match opened {
        Ok(f) => f,
        Err(e) => return no_send(link, index, path, &e),
    };
    let mut hasher = Hasher::new(super::filesum::Kind::for_file(
        link.sum,
        matches!(how, How::Delta { .. }),
    ));
    let sent = match how {
        How::Delta { basis, in_place } if basis.params.is_valid() => {
            send_delta(link, index, &f, &basis, in_place, &mut hasher)
        }
        How::Append { offset, verify } => {
            send_tail(link, index, &mut f, offset, verify, &mut hasher)
        }
        _ => send_whole(link, index, &mut f, &mut hasher),
    };
    if let Err(e) = sent {
        // Read failures after the start: the receiver drops the file.
        return no_send(link, index, path, &e);
    }
    link.send(&Msg::FileEnd {
        index,
        hash: hasher.finish(),
    });
    0
}

/// `--append`: the bytes past `offset` (the prefix is hashed, not sent,
/// with `--append-verify`).
fn send_tail(
    link: &Link,
    index: u64,
    f: &mut std::fs::File,
    offset: u64,
    verify: bool,
    hasher: &mut Hasher,
) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    if verify {
        // The receiver kept `offset` bytes; a source now shorter than that
        // hashes what it has (the receiver's check then fails: a redo).
        let have = offset.min(f.metadata()?.len());
        super::filesum::update_from_file(hasher, f, have)?;
    }
    f.seek(SeekFrom::Start(offset))?;
    send_whole(link, index, f, hasher)
}

fn no_send(link: &Link, index: u64, path: &std::path::Path, e: &std::io::Error) -> i32 {
    let shown = crate::report::abs_display(path);
    let (code, why) = if e.kind() == std::io::ErrorKind::NotFound {
        (exit::VANISHED, format!("file has vanished: \"{shown}\""))
    } else {
        (
            exit::PARTIAL,
            format!(
                "send_files failed to open \"{shown}\": {}",
                crate::flist::errno_text(e)
            ),
        )
    };
    let mut why = format!("[sender] {why}").into_bytes();
    why.truncate(proto::MAX_TEXT);
    link.send(&Msg::NoSend {
        index,
        code: code as u8,
        why,
    });
    code
}

fn send_whole(
    link: &Link,
    index: u64,
    f: &mut std::fs::File,
    hasher: &mut Hasher,
) -> std::io::Result<()> {
    // Each piece is read straight into the Vec it travels in: no zeroed
    // buffer per file and no copy out of it (most files are one small read).
    let mut left = f.metadata().map_or(DATA_CHUNK as u64, |m| m.len());
    loop {
        // Room for what is left (+1 to see the end without a regrowth).
        let mut piece = Vec::with_capacity((left as usize).min(DATA_CHUNK) + 1);
        let n = f.by_ref().take(DATA_CHUNK as u64).read_to_end(&mut piece)?;
        if n == 0 {
            return Ok(());
        }
        left = left.saturating_sub(n as u64);
        hasher.update(&piece);
        if !link.send(&Msg::Data {
            index,
            ops: vec![WireOp::Literal(piece)],
        }) {
            return Ok(());
        }
    }
}

/// Chunk the file with the basis's parameters and send copies of the chunks
/// the basis has, literal bytes for the rest.
fn send_delta(
    link: &Link,
    index: u64,
    f: &std::fs::File,
    basis: &sig::Signature,
    in_place: bool,
    hasher: &mut Hasher,
) -> std::io::Result<()> {
    let len = f.metadata()?.len();
    let data = crate::sys::mmap::map_read(f, len, crate::sys::mmap::Access::Sequential)?;
    let data: &[u8] = &data;
    let params: chunk::ChunkParams = basis.params;
    let ours = sig::Signature::compute(data, params, basis.hash_len());
    let mut delta = ops::encode(basis, &ours);
    if in_place {
        delta.ops = forward_only(&delta.ops);
    }
    let mut pos = 0usize;
    let mut pending: Vec<WireOp> = Vec::new();
    let mut pending_bytes = 0usize;
    for op in &delta.ops {
        match *op {
            ops::Op::Copy { offset, len } => {
                pending.push(WireOp::Copy { offset, len });
                pending_bytes += 24;
                pos += len as usize;
            }
            ops::Op::Literal { len } => {
                let mut left = len as usize;
                while left > 0 {
                    let n = left.min(DATA_CHUNK);
                    pending.push(WireOp::Literal(data[pos..pos + n].to_vec()));
                    pending_bytes += n + 8;
                    pos += n;
                    left -= n;
                    if pending_bytes >= DATA_CHUNK {
                        flush_ops(link, index, &mut pending);
                        pending_bytes = 0;
                    }
                }
            }
        }
        if pending.len() >= 4096 {
            flush_ops(link, index, &mut pending);
            pending_bytes = 0;
        }
    }
    flush_ops(link, index, &mut pending);
    // The whole-file hash goes last: the receiver applies the ops while it
    // is computed (it is only needed for `FileEnd`).
    hasher.update(data);
    Ok(())
}

fn flush_ops(link: &Link, index: u64, ops: &mut Vec<WireOp>) {
    if !ops.is_empty() {
        link.send(&Msg::Data {
            index,
            ops: std::mem::take(ops),
        });
    }
}

/// `--inplace`: the receiver overwrites its basis as it writes, so a copy
/// that reads basis bytes before the output position would read bytes
/// already replaced. Such copies become literals (rsync's generator drops
/// those matches for `--inplace` the same way); a copy from the output
/// position itself costs the receiver no write at all.
fn forward_only(delta: &[ops::Op]) -> Vec<ops::Op> {
    let mut out: Vec<ops::Op> = Vec::with_capacity(delta.len());
    let mut pos = 0u64;
    for op in delta {
        let (copy, len) = match *op {
            ops::Op::Copy { offset, len } => (offset >= pos, len),
            ops::Op::Literal { len } => (false, len),
        };
        if copy {
            out.push(*op);
        } else if let Some(ops::Op::Literal { len: l }) = out.last_mut() {
            *l += len;
        } else {
            out.push(ops::Op::Literal { len });
        }
        pos += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_place_copies_never_read_behind_the_output() {
        use ops::Op::{Copy, Literal};
        let d = [
            Copy { offset: 0, len: 10 },
            Copy { offset: 5, len: 4 },
            Literal { len: 3 },
            Copy {
                offset: 100,
                len: 8,
            },
            Copy { offset: 20, len: 2 },
        ];
        let f = forward_only(&d);
        assert_eq!(
            f,
            vec![
                Copy { offset: 0, len: 10 },
                Literal { len: 7 },
                Copy {
                    offset: 100,
                    len: 8
                },
                Literal { len: 2 },
            ]
        );
    }
}
