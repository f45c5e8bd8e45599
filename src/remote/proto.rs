//! Frames and messages of the resync wire protocol (`docs/PROTOCOL.md`).
//!
//! Hand-written rather than serde + postcard: the byte layout is specified in
//! the protocol document independently of Rust type shapes (a field reorder
//! must not silently change the wire), and every length and count needs a
//! bound checked *before* allocating, against both its own limit and what the
//! rest of the payload can hold. Doing that in a serde `Deserialize` for each
//! type would be more code than the decoder itself. Malformed input is always
//! a [`ProtoError`], never a panic.

use std::fmt;

/// First bytes of each direction of a stream; anything else means the peer
/// is not resync (or a shell printed a banner).
pub const MAGIC: &[u8; 8] = b"resync\0\n";
/// Largest frame payload, checked before allocating.
pub const MAX_FRAME: usize = 1 << 20;
/// Frame header: type byte and little-endian u32 length.
pub const HEADER_LEN: usize = 5;
/// Longest message text (`Error`, `Log`, `NoSend`).
pub const MAX_TEXT: usize = 8 << 10;
/// `Log` level of text printed on the client's stdout exactly as sent (no
/// newline added): a receiving server's progress output.
pub const LOG_RAW: u8 = 8;
/// Longest name or symlink target (`PATH_MAX`).
pub const MAX_NAME: usize = 4096;
/// Most arguments in a `Start` message.
pub const MAX_ARGS: usize = 1024;
/// Longest argument in a `Start` message.
pub const MAX_ARG: usize = 4096;
/// Most entries in one `FileBatch`.
pub const MAX_BATCH: usize = 65_536;
/// File indexes are below this.
pub const MAX_FILES: u64 = (1 << 31) - 1;
/// Most ids in one `IdNames` message.
pub const MAX_IDS: usize = 65_536;
/// Longest user or group name.
pub const MAX_ID_NAME: usize = 255;
/// Most ops in one `Data` message.
pub const MAX_OPS: usize = 65_536;
/// Largest assembled signature (sum of `Signature` pieces of one file).
pub const MAX_SIG: usize = 512 << 20;
/// Most xattrs of one entry.
pub const MAX_XATTRS: usize = 1024;
/// Longest xattr name.
pub const MAX_XATTR_NAME: usize = 255;
/// Largest xattr value (Linux's own limit).
pub const MAX_XATTR_VALUE: usize = 64 << 10;
/// Largest `--files-from` list sent to the sender (sum of `FilesFrom`
/// pieces).
pub const MAX_FILES_FROM: usize = 256 << 20;
/// Most counters in a `Stats` message.
pub const MAX_STATS: usize = 32;
/// Longest `program` string of a `Hello`.
pub const MAX_PROGRAM: usize = 64;
/// Longest module or user name in the daemon's auth messages.
pub const MAX_AUTH_NAME: usize = 255;
/// Length of a daemon auth challenge and of its response.
pub const AUTH_LEN: usize = 32;

/// Capability bits of `Hello` (the used set is the intersection).
pub mod cap {
    /// Streaming zstd compression of the whole stream.
    pub const ZSTD: u64 = 1 << 0;
    /// Delta transfer with `RSIG` v1 signatures and copy/literal ops.
    pub const DELTA_RSIG1: u64 = 1 << 1;
    /// Extended attributes in file entries.
    pub const XATTRS: u64 = 1 << 2;
    /// POSIX ACLs in file entries.
    pub const ACLS: u64 = 1 << 3;
    /// Hard-link leaders in file entries.
    pub const HARD_LINKS: u64 = 1 << 4;
    /// `-c` sums (`SUM`) in file entries.
    pub const CHECKSUMS: u64 = 1 << 5;
    /// `Success` messages for `--remove-source-files`.
    pub const SUCCESS: u64 = 1 << 6;
    /// Access times (`ATIME`) in file entries, for `--atimes`.
    pub const ATIMES: u64 = 1 << 7;
    /// `-R`: implied directories (`IMPLIED`) and multi-component operand
    /// names (`TOP_DIR`) in file entries.
    pub const RELATIVE: u64 = 1 << 8;
    /// Adaptive compression: each side's writer compresses a chunk only
    /// while its compressing workers keep up. A server always offers it; a
    /// client sets it only to ask for it (no `-z`, no `--no-compress`), so
    /// it is agreed exactly when asked for and understood.
    pub const ADAPTIVE: u64 = 1 << 9;
    /// Missing operands (`MISSING` entries) for `--delete-missing-args`.
    pub const MISSING_ARGS: u64 = 1 << 10;
    /// `--progress` / `--info=progress2` on a receiving server: its data
    /// thread sends each file's item and progress lines as `Log`s of level
    /// [`super::LOG_RAW`].
    pub const PROGRESS: u64 = 1 << 11;
    /// The client's locale is UTF-8: the server escapes names in the lines
    /// it sends as the client's output would (rsync's client escapes what
    /// it prints, in its own locale). A server always offers it; a client
    /// sets it only when its locale is UTF-8.
    pub const UTF8_NAMES: u64 = 1 << 12;
    /// `FilesFrom`: a `--files-from` list read by the receiving side (a
    /// pull's local list, a push's `:PATH`) travels to the sender.
    pub const FILES_FROM: u64 = 1 << 13;
    /// `FileEnd` carries XXH3-128 (big-endian, then 16 zero bytes) instead
    /// of BLAKE3 (`super::super::filesum`).
    pub const XXH3_SUMS: u64 = 1 << 14;
}

/// `Request` flag bits.
///
/// Why: the receiver decides how a file is written (temp file, in place,
/// appended), and the sender must shape its data for it: copies that never
/// read basis bytes already overwritten, or only the bytes past the
/// receiver's length.
pub mod req {
    /// A `Signature` of the basis follows.
    pub const SIG: u8 = 1 << 0;
    /// `--inplace`: the receiver writes the basis file itself, so no copy may
    /// read basis bytes before the output position (offset ≥ position).
    pub const IN_PLACE: u8 = 1 << 1;
    /// `--append`: send the bytes from `offset` on (none if the file is not
    /// longer); `FileEnd` hashes only the bytes sent, unless [`VERIFY`].
    pub const APPEND: u8 = 1 << 2;
    /// `--append-verify`: `FileEnd` hashes the whole file, the kept prefix too.
    pub const VERIFY: u8 = 1 << 3;

    /// Whether `flags` is a combination this version defines: `IN_PLACE`
    /// only with `SIG`, `VERIFY` only with `APPEND`, `APPEND` alone.
    pub fn valid(flags: u8) -> bool {
        if flags & !(SIG | IN_PLACE | APPEND | VERIFY) != 0 {
            return false;
        }
        let append = flags & APPEND != 0;
        !(flags & IN_PLACE != 0 && flags & SIG == 0
            || flags & VERIFY != 0 && !append
            || append && flags & (SIG | IN_PLACE) != 0)
    }
}

/// File entry flag bits.
pub mod flag {
    /// A symlink target follows.
    pub const LINK: u16 = 1 << 0;
    /// A device number follows.
    pub const RDEV: u16 = 1 << 1;
    /// A hard-link leader index follows.
    pub const HLINK: u16 = 1 << 2;
    /// Extended attributes follow.
    pub const XATTR: u16 = 1 << 3;
    /// An operand's top directory (rsync's `FLAG_TOP_DIR`).
    pub const TOP_DIR: u16 = 1 << 4;
    /// A directory whose contents were not sent (`-d`).
    pub const NO_CONTENT: u16 = 1 << 5;
    /// A regular file's `-c` sum (BLAKE3, 32 bytes) follows.
    pub const SUM: u16 = 1 << 6;
    /// The access time follows (`--atimes`).
    pub const ATIME: u16 = 1 << 7;
    /// A source operand that does not exist (`--delete-missing-args`): mode
    /// 0, the receiver deletes the name.
    pub const MISSING: u16 = 1 << 8;
    /// `-R`: a directory sent only as a parent of an operand (rsync's
    /// `FLAG_IMPLIED_DIR`): its listing follows, but nothing in it is
    /// deleted.
    pub const IMPLIED: u16 = 1 << 9;
    /// Every bit this version knows.
    pub const ALL: u16 =
        LINK | RDEV | HLINK | XATTR | TOP_DIR | NO_CONTENT | SUM | ATIME | MISSING | IMPLIED;
}

/// Message type bytes.
pub mod kind {
    #![allow(missing_docs)]
    pub const HELLO: u8 = 0x01;
    pub const ERROR: u8 = 0x02;
    pub const GOODBYE: u8 = 0x03;
    pub const LOG: u8 = 0x04;
    pub const START: u8 = 0x05;
    pub const KEEPALIVE: u8 = 0x06;
    pub const FILE_BATCH: u8 = 0x10;
    pub const FILE_LIST_END: u8 = 0x11;
    pub const ID_NAMES: u8 = 0x12;
    pub const REQUEST: u8 = 0x20;
    pub const SIGNATURE: u8 = 0x21;
    pub const DATA: u8 = 0x22;
    pub const FILE_END: u8 = 0x23;
    pub const NO_SEND: u8 = 0x24;
    pub const DONE: u8 = 0x25;
    pub const SUCCESS: u8 = 0x26;
    pub const STATS: u8 = 0x27;
    pub const FILES_FROM: u8 = 0x28;
    pub const AUTH_CHALLENGE: u8 = 0x30;
    pub const AUTH_RESPONSE: u8 = 0x31;
    pub const READY: u8 = 0x32;
}

/// Why a frame or message was rejected; always a protocol error (exit 12).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProtoError {
    /// The payload ended inside a field.
    Truncated(&'static str),
    /// A length or count is over its bound.
    TooLong(&'static str, u64, u64),
    /// A field has a value the protocol does not allow.
    Invalid(&'static str),
    /// Bytes were left after the last field.
    Trailing(u8, usize),
    /// The type byte names no message.
    UnknownType(u8),
    /// A frame header announced more than [`MAX_FRAME`].
    FrameTooLong(u32),
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtoError::Truncated(what) => write!(f, "truncated {what}"),
            ProtoError::TooLong(what, n, max) => write!(f, "{what} {n} exceeds limit {max}"),
            ProtoError::Invalid(what) => write!(f, "invalid {what}"),
            ProtoError::Trailing(t, n) => {
                write!(f, "{n} trailing bytes after message 0x{t:02x}")
            }
            ProtoError::UnknownType(t) => write!(f, "unknown message type 0x{t:02x}"),
            ProtoError::FrameTooLong(n) => {
                write!(f, "frame length {n} exceeds limit {MAX_FRAME}")
            }
        }
    }
}

impl std::error::Error for ProtoError {}

/// The first message of each direction; layout frozen across versions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// Oldest protocol version this side speaks.
    pub min_version: u16,
    /// Newest protocol version this side speaks.
    pub max_version: u16,
    /// [`cap`] bits this side supports.
    pub caps: u64,
    /// zstd level the client asks for (0 = off); ignored from a server.
    pub compress_level: i8,
    /// Program and version, for messages.
    pub program: String,
}

/// One file-list entry (see the protocol document's "File entry").
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Entry {
    /// [`flag`] bits other than those implied by the optional fields.
    pub flags: u16,
    /// Relative, `/`-separated name.
    pub name: Vec<u8>,
    /// `st_mode`.
    pub mode: u32,
    /// Size in bytes.
    pub size: u64,
    /// Modification time, seconds.
    pub mtime_sec: i64,
    /// Modification time, nanoseconds (< 10^9).
    pub mtime_nsec: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Symlink target.
    pub link: Option<Vec<u8>>,
    /// Device number.
    pub rdev: Option<u64>,
    /// Index of the hard-link group's first member (its own for the first).
    pub hlink: Option<u64>,
    /// Extended attributes (name, value), POSIX ACLs among them.
    pub xattrs: Option<Vec<(Vec<u8>, Vec<u8>)>>,
    /// `-c`: BLAKE3 of the regular file's listed size (None: no sum sent).
    pub sum: Option<[u8; 32]>,
    /// `--atimes`: access time (seconds, nanoseconds < 10^9).
    pub atime: Option<(i64, u32)>,
}

/// One delta op of a `Data` message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WireOp {
    /// `len` bytes of the basis at `offset`.
    Copy {
        /// Offset in the basis.
        offset: u64,
        /// Length (≥ 1).
        len: u64,
    },
    /// These bytes.
    Literal(Vec<u8>),
}

/// Every message of protocol version 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Msg {
    /// Handshake.
    Hello(Hello),
    /// Fatal error: the peer prints `message` and exits with `code`.
    Error {
        /// rsync exit code.
        code: u8,
        /// Message as the peer should print it.
        message: String,
    },
    /// The sender of this is done and exits with `code`.
    Goodbye {
        /// rsync exit code.
        code: u8,
    },
    /// An output line from the remote side.
    Log {
        /// 0 info (stdout), 1 error, 2 warning (stderr).
        level: u8,
        /// The line, without newline.
        text: Vec<u8>,
    },
    /// Daemon argument list.
    Start {
        /// Arguments.
        args: Vec<Vec<u8>>,
    },
    /// Idle keepalive.
    Keepalive,
    /// File-list entries `first_index..first_index + entries.len()`.
    FileBatch {
        /// Index of the first entry.
        first_index: u64,
        /// The entries.
        entries: Vec<Entry>,
    },
    /// End of the file list.
    FileListEnd {
        /// Entries sent in all.
        total: u64,
    },
    /// uid/gid names.
    IdNames {
        /// 0 users, 1 groups.
        kind: u8,
        /// (id, name) pairs.
        ids: Vec<(u32, String)>,
    },
    /// Receiver asks for a file.
    Request {
        /// File index.
        index: u64,
        /// [`req`] bits: a signature follows, in-place, append, verify.
        flags: u8,
        /// With [`req::APPEND`]: the receiver's length, where the data starts
        /// (0 otherwise).
        offset: u64,
    },
    /// A piece of the `--files-from` list, from the side that read it to
    /// the sender, before the sender lists anything.
    FilesFrom {
        /// Whether this is the last piece.
        last: bool,
        /// The list's bytes, as in the file.
        piece: Vec<u8>,
    },
    /// A piece of a basis signature.
    Signature {
        /// File index.
        index: u64,
        /// Whether this is the last piece.
        last: bool,
        /// Signature bytes.
        piece: Vec<u8>,
    },
    /// The next ops of a file.
    Data {
        /// File index.
        index: u64,
        /// Ops in order.
        ops: Vec<WireOp>,
    },
    /// A file is complete.
    FileEnd {
        /// File index.
        index: u64,
        /// BLAKE3 of the whole new content.
        hash: [u8; 32],
    },
    /// The sender could not send a file.
    NoSend {
        /// File index.
        index: u64,
        /// 23 or 24.
        code: u8,
        /// Reason, for messages.
        why: Vec<u8>,
    },
    /// End of a phase.
    Done {
        /// 0 requests, 1 redo.
        phase: u8,
    },
    /// A file is in place.
    Success {
        /// File index.
        index: u64,
    },
    /// Transfer totals.
    Stats {
        /// Counters in the documented order.
        values: Vec<u64>,
    },
    /// Daemon → client: the module needs a user and password; prove it by
    /// answering this random challenge (docs/PROTOCOL.md, "Daemon").
    AuthChallenge {
        /// The module asked for (what the response is bound to).
        module: String,
        /// Random bytes, fresh per connection.
        challenge: [u8; AUTH_LEN],
    },
    /// Client → daemon: the user name and the keyed hash of the challenge.
    AuthResponse {
        /// The user name (`user@` of the operand, else `$USER`).
        user: String,
        /// `daemon_client::auth_response` of the challenge.
        response: [u8; AUTH_LEN],
    },
    /// Daemon → client: access granted; the server side of the transfer
    /// starts on this stream.
    Ready,
}

// ---- encoding --------------------------------------------------------------

fn put_var(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn put_ivar(out: &mut Vec<u8>, v: i64) {
    put_var(out, ((v << 1) ^ (v >> 63)) as u64);
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    put_var(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn put_entry(out: &mut Vec<u8>, e: &Entry, prev: &[u8]) {
    let mut flags = e.flags & (flag::TOP_DIR | flag::NO_CONTENT | flag::MISSING | flag::IMPLIED);
    if e.link.is_some() {
        flags |= flag::LINK;
    }
    if e.rdev.is_some() {
        flags |= flag::RDEV;
    }
    if e.hlink.is_some() {
        flags |= flag::HLINK;
    }
    if e.xattrs.is_some() {
        flags |= flag::XATTR;
    }
    if e.sum.is_some() {
        flags |= flag::SUM;
    }
    if e.atime.is_some() {
        flags |= flag::ATIME;
    }
    out.extend_from_slice(&flags.to_le_bytes());
    let prefix = prev.iter().zip(&e.name).take_while(|(a, b)| a == b).count();
    put_var(out, prefix as u64);
    put_bytes(out, &e.name[prefix..]);
    put_var(out, u64::from(e.mode));
    put_var(out, e.size);
    put_ivar(out, e.mtime_sec);
    put_var(out, u64::from(e.mtime_nsec));
    put_var(out, u64::from(e.uid));
    put_var(out, u64::from(e.gid));
    if let Some(l) = &e.link {
        put_bytes(out, l);
    }
    if let Some(r) = e.rdev {
        put_var(out, r);
    }
    if let Some(h) = e.hlink {
        put_var(out, h);
    }
    if let Some(x) = &e.xattrs {
        put_var(out, x.len() as u64);
        for (n, v) in x {
            put_bytes(out, n);
            put_bytes(out, v);
        }
    }
    if let Some(h) = &e.sum {
        out.extend_from_slice(h);
    }
    if let Some((sec, nsec)) = e.atime {
        put_ivar(out, sec);
        put_var(out, u64::from(nsec));
    }
}

impl Msg {
    /// The type byte of this message.
    pub fn kind(&self) -> u8 {
        match self {
            Msg::Hello(_) => kind::HELLO,
            Msg::Error { .. } => kind::ERROR,
            Msg::Goodbye { .. } => kind::GOODBYE,
            Msg::Log { .. } => kind::LOG,
            Msg::Start { .. } => kind::START,
            Msg::Keepalive => kind::KEEPALIVE,
            Msg::FileBatch { .. } => kind::FILE_BATCH,
            Msg::FileListEnd { .. } => kind::FILE_LIST_END,
            Msg::IdNames { .. } => kind::ID_NAMES,
            Msg::Request { .. } => kind::REQUEST,
            Msg::Signature { .. } => kind::SIGNATURE,
            Msg::FilesFrom { .. } => kind::FILES_FROM,
            Msg::Data { .. } => kind::DATA,
            Msg::FileEnd { .. } => kind::FILE_END,
            Msg::NoSend { .. } => kind::NO_SEND,
            Msg::Done { .. } => kind::DONE,
            Msg::Success { .. } => kind::SUCCESS,
            Msg::Stats { .. } => kind::STATS,
            Msg::AuthChallenge { .. } => kind::AUTH_CHALLENGE,
            Msg::AuthResponse { .. } => kind::AUTH_RESPONSE,
            Msg::Ready => kind::READY,
        }
    }

    /// The payload bytes (without frame header). The caller keeps messages
    /// within the bounds (a payload over [`MAX_FRAME`] is refused by
    /// [`Msg::encode_frame`]); the decoder checks them all.
    pub fn payload(&self) -> Vec<u8> {
        let mut o = Vec::new();
        match self {
            Msg::Hello(h) => {
                o.extend_from_slice(&h.min_version.to_le_bytes());
                o.extend_from_slice(&h.max_version.to_le_bytes());
                o.extend_from_slice(&h.caps.to_le_bytes());
                o.push(h.compress_level as u8);
                put_bytes(&mut o, h.program.as_bytes());
            }
            Msg::Error { code, message } => {
                o.push(*code);
                put_bytes(&mut o, message.as_bytes());
            }
            Msg::Goodbye { code } => o.push(*code),
            Msg::Log { level, text } => {
                o.push(*level);
                put_bytes(&mut o, text);
            }
            Msg::Start { args } => {
                put_var(&mut o, args.len() as u64);
                for a in args {
                    put_bytes(&mut o, a);
                }
            }
            Msg::Keepalive => {}
            Msg::FileBatch {
                first_index,
                entries,
            } => {
                put_var(&mut o, *first_index);
                put_var(&mut o, entries.len() as u64);
                let mut prev: &[u8] = &[];
                for e in entries {
                    put_entry(&mut o, e, prev);
                    prev = &e.name;
                }
            }
            Msg::FileListEnd { total } => put_var(&mut o, *total),
            Msg::IdNames { kind, ids } => {
                o.push(*kind);
                put_var(&mut o, ids.len() as u64);
                for (id, name) in ids {
                    put_var(&mut o, u64::from(*id));
                    put_bytes(&mut o, name.as_bytes());
                }
            }
            Msg::Request {
                index,
                flags,
                offset,
            } => {
                put_var(&mut o, *index);
                o.push(*flags);
                if flags & req::APPEND != 0 {
                    put_var(&mut o, *offset);
                }
            }
            Msg::Signature { index, last, piece } => {
                put_var(&mut o, *index);
                o.push(u8::from(*last));
                put_bytes(&mut o, piece);
            }
            Msg::FilesFrom { last, piece } => {
                o.push(u8::from(*last));
                put_bytes(&mut o, piece);
            }
            Msg::Data { index, ops } => {
                put_var(&mut o, *index);
                put_var(&mut o, ops.len() as u64);
                for op in ops {
                    match op {
                        WireOp::Copy { offset, len } => {
                            o.push(0);
                            put_var(&mut o, *offset);
                            put_var(&mut o, *len);
                        }
                        WireOp::Literal(d) => {
                            o.push(1);
                            put_bytes(&mut o, d);
                        }
                    }
                }
            }
            Msg::FileEnd { index, hash } => {
                put_var(&mut o, *index);
                o.extend_from_slice(hash);
            }
            Msg::NoSend { index, code, why } => {
                put_var(&mut o, *index);
                o.push(*code);
                put_bytes(&mut o, why);
            }
            Msg::Done { phase } => o.push(*phase),
            Msg::Success { index } => put_var(&mut o, *index),
            Msg::Stats { values } => {
                put_var(&mut o, values.len() as u64);
                for v in values {
                    put_var(&mut o, *v);
                }
            }
            Msg::AuthChallenge { module, challenge } => {
                put_bytes(&mut o, module.as_bytes());
                o.extend_from_slice(challenge);
            }
            Msg::AuthResponse { user, response } => {
                put_bytes(&mut o, user.as_bytes());
                o.extend_from_slice(response);
            }
            Msg::Ready => {}
        }
        o
    }

    /// The whole frame (header + payload), or an error if the payload is over
    /// [`MAX_FRAME`] (the caller must split such data into several messages).
    pub fn encode_frame(&self) -> Result<Vec<u8>, ProtoError> {
        let (head, p) = self.encode_parts()?;
        let mut f = Vec::with_capacity(HEADER_LEN + p.len());
        f.extend_from_slice(&head);
        f.extend_from_slice(&p);
        Ok(f)
    }

    /// The frame as its header and its payload, for writers that write
    /// them apart rather than copy the payload behind the header.
    pub fn encode_parts(&self) -> Result<([u8; HEADER_LEN], Vec<u8>), ProtoError> {
        let p = self.payload();
        if p.len() > MAX_FRAME {
            return Err(ProtoError::TooLong(
                "frame length",
                p.len() as u64,
                MAX_FRAME as u64,
            ));
        }
        let mut head = [0u8; HEADER_LEN];
        head[0] = self.kind();
        head[1..].copy_from_slice(&(p.len() as u32).to_le_bytes());
        Ok((head, p))
    }

    /// Decode one message from its type byte and payload.
    pub fn decode(kind: u8, payload: &[u8]) -> Result<Msg, ProtoError> {
        if payload.len() > MAX_FRAME {
            return Err(ProtoError::FrameTooLong(
                u32::try_from(payload.len()).unwrap_or(u32::MAX),
            ));
        }
        let mut r = Reader { buf: payload };
        let m = match kind {
            kind::HELLO => {
                let min_version = r.u16("Hello version")?;
                let max_version = r.u16("Hello version")?;
                if min_version > max_version {
                    return Err(ProtoError::Invalid("Hello version range"));
                }
                let caps = r.u64("Hello capabilities")?;
                let compress_level = r.u8("Hello compress level")? as i8;
                if !(-7..=22).contains(&compress_level) {
                    return Err(ProtoError::Invalid("Hello compress level"));
                }
                let program = r.str(MAX_PROGRAM, "Hello program")?;
                Msg::Hello(Hello {
                    min_version,
                    max_version,
                    caps,
                    compress_level,
                    program,
                })
            }
            kind::ERROR => Msg::Error {
                code: r.u8("Error code")?,
                message: r.str(MAX_TEXT, "Error message")?,
            },
            kind::GOODBYE => Msg::Goodbye {
                code: r.u8("Goodbye code")?,
            },
            kind::LOG => {
                let level = r.u8("Log level")?;
                // 3–6: the sender's listing errors; 7: a daemon's message of
                // the day (`--no-motd` hides it); 8: raw stdout text.
                if level > LOG_RAW {
                    return Err(ProtoError::Invalid("Log level"));
                }
                Msg::Log {
                    level,
                    text: r.bytes(MAX_TEXT, "Log text")?.to_vec(),
                }
            }
            kind::START => {
                let n = r.count(MAX_ARGS, 1, "Start argument count")?;
                let mut args = Vec::with_capacity(n);
                for _ in 0..n {
                    args.push(r.bytes(MAX_ARG, "Start argument")?.to_vec());
                }
                Msg::Start { args }
            }
            kind::KEEPALIVE => Msg::Keepalive,
            kind::FILE_BATCH => {
                let first_index = r.index("FileBatch first index")?;
                // An entry is at least 2 (flags) + 7 one-byte varints.
                let n = r.count(MAX_BATCH, 9, "FileBatch entry count")?;
                if first_index + n as u64 > MAX_FILES {
                    return Err(ProtoError::TooLong(
                        "file index",
                        first_index + n as u64,
                        MAX_FILES,
                    ));
                }
                let mut entries: Vec<Entry> = Vec::with_capacity(n);
                for i in 0..n {
                    let prev = entries.last().map(|e| e.name.as_slice()).unwrap_or(&[]);
                    let e = r.entry(prev, first_index + i as u64)?;
                    entries.push(e);
                }
                Msg::FileBatch {
                    first_index,
                    entries,
                }
            }
            kind::FILE_LIST_END => Msg::FileListEnd {
                total: r.index("FileListEnd total")?,
            },
            kind::ID_NAMES => {
                let kind = r.u8("IdNames kind")?;
                if kind > 1 {
                    return Err(ProtoError::Invalid("IdNames kind"));
                }
                let n = r.count(MAX_IDS, 2, "IdNames count")?;
                let mut ids = Vec::with_capacity(n);
                for _ in 0..n {
                    let id = r.u32var("IdNames id")?;
                    let name = r.str(MAX_ID_NAME, "IdNames name")?;
                    ids.push((id, name));
                }
                Msg::IdNames { kind, ids }
            }
            kind::REQUEST => {
                let index = r.index("Request index")?;
                let flags = r.u8("Request flags")?;
                if !req::valid(flags) {
                    return Err(ProtoError::Invalid("Request flags"));
                }
                let offset = if flags & req::APPEND != 0 {
                    r.var("Request offset")?
                } else {
                    0
                };
                Msg::Request {
                    index,
                    flags,
                    offset,
                }
            }
            kind::SIGNATURE => Msg::Signature {
                index: r.index("Signature index")?,
                last: r.bool("Signature last")?,
                piece: r.bytes(MAX_FRAME, "Signature piece")?.to_vec(),
            },
            kind::FILES_FROM => Msg::FilesFrom {
                last: r.bool("FilesFrom last")?,
                piece: r.bytes(MAX_FRAME, "FilesFrom piece")?.to_vec(),
            },
            kind::DATA => {
                let index = r.index("Data index")?;
                let n = r.count(MAX_OPS, 2, "Data op count")?;
                let mut ops = Vec::with_capacity(n);
                for _ in 0..n {
                    ops.push(match r.u8("Data op")? {
                        0 => {
                            let offset = r.var("Copy offset")?;
                            let len = r.var("Copy length")?;
                            if len == 0 || offset.checked_add(len).is_none() {
                                return Err(ProtoError::Invalid("Copy range"));
                            }
                            WireOp::Copy { offset, len }
                        }
                        1 => WireOp::Literal(r.bytes(MAX_FRAME, "Literal")?.to_vec()),
                        _ => return Err(ProtoError::Invalid("Data op")),
                    });
                }
                Msg::Data { index, ops }
            }
            kind::FILE_END => {
                let index = r.index("FileEnd index")?;
                let h = r.take(32, "FileEnd hash")?;
                let mut hash = [0u8; 32];
                hash.copy_from_slice(h);
                Msg::FileEnd { index, hash }
            }
            kind::NO_SEND => {
                let index = r.index("NoSend index")?;
                let code = r.u8("NoSend code")?;
                if code != 23 && code != 24 {
                    return Err(ProtoError::Invalid("NoSend code"));
                }
                Msg::NoSend {
                    index,
                    code,
                    why: r.bytes(MAX_TEXT, "NoSend reason")?.to_vec(),
                }
            }
            kind::DONE => {
                let phase = r.u8("Done phase")?;
                if phase > 1 {
                    return Err(ProtoError::Invalid("Done phase"));
                }
                Msg::Done { phase }
            }
            kind::SUCCESS => Msg::Success {
                index: r.index("Success index")?,
            },
            kind::STATS => {
                let n = r.count(MAX_STATS, 1, "Stats count")?;
                let mut values = Vec::with_capacity(n);
                for _ in 0..n {
                    values.push(r.var("Stats value")?);
                }
                Msg::Stats { values }
            }
            kind::AUTH_CHALLENGE => {
                let module = r.str(MAX_AUTH_NAME, "AuthChallenge module")?;
                let mut challenge = [0u8; AUTH_LEN];
                challenge.copy_from_slice(r.take(AUTH_LEN, "AuthChallenge challenge")?);
                Msg::AuthChallenge { module, challenge }
            }
            kind::AUTH_RESPONSE => {
                let user = r.str(MAX_AUTH_NAME, "AuthResponse user")?;
                let mut response = [0u8; AUTH_LEN];
                response.copy_from_slice(r.take(AUTH_LEN, "AuthResponse response")?);
                Msg::AuthResponse { user, response }
            }
            kind::READY => Msg::Ready,
            t => return Err(ProtoError::UnknownType(t)),
        };
        if !r.buf.is_empty() {
            return Err(ProtoError::Trailing(kind, r.buf.len()));
        }
        Ok(m)
    }
}

/// Parse a frame header; the length is checked against [`MAX_FRAME`] here,
/// before the caller allocates anything for the payload.
pub fn parse_header(h: &[u8; HEADER_LEN]) -> Result<(u8, usize), ProtoError> {
    let len = u32::from_le_bytes([h[1], h[2], h[3], h[4]]);
    if len as usize > MAX_FRAME {
        return Err(ProtoError::FrameTooLong(len));
    }
    Ok((h[0], len as usize))
}

/// Decode every frame in `buf` (a whole captured stream after the magic);
/// used by the fuzz target and tests. Stops at the first error.
pub fn decode_stream(mut buf: &[u8]) -> Result<Vec<Msg>, ProtoError> {
    let mut out = Vec::new();
    while !buf.is_empty() {
        let Some(h) = buf.first_chunk::<HEADER_LEN>() else {
            return Err(ProtoError::Truncated("frame header"));
        };
        let (k, len) = parse_header(h)?;
        let rest = &buf[HEADER_LEN..];
        if rest.len() < len {
            return Err(ProtoError::Truncated("frame payload"));
        }
        out.push(Msg::decode(k, &rest[..len])?);
        buf = &rest[len..];
    }
    Ok(out)
}

/// A cursor over a payload; every read is bounds-checked.
struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], ProtoError> {
        if self.buf.len() < n {
            return Err(ProtoError::Truncated(what));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, ProtoError> {
        Ok(self.take(1, what)?[0])
    }

    fn bool(&mut self, what: &'static str) -> Result<bool, ProtoError> {
        match self.u8(what)? {
            0 => Ok(false),
            1 => Ok(true),
            _ => Err(ProtoError::Invalid(what)),
        }
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, ProtoError> {
        let b = self.take(2, what)?;
        Ok(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u64(&mut self, what: &'static str) -> Result<u64, ProtoError> {
        let b = self.take(8, what)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(u64::from_le_bytes(a))
    }

    /// Unsigned LEB128, shortest form, at most 10 bytes, no overflow.
    fn var(&mut self, what: &'static str) -> Result<u64, ProtoError> {
        let mut v: u64 = 0;
        for i in 0..10 {
            let b = self.u8(what)?;
            let low = u64::from(b & 0x7f);
            if i == 9 && low > 1 {
                return Err(ProtoError::Invalid(what));
            }
            v |= low << (7 * i);
            if b & 0x80 == 0 {
                if i > 0 && b == 0 {
                    return Err(ProtoError::Invalid(what));
                }
                return Ok(v);
            }
        }
        Err(ProtoError::Invalid(what))
    }

    fn ivar(&mut self, what: &'static str) -> Result<i64, ProtoError> {
        let u = self.var(what)?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    fn u32var(&mut self, what: &'static str) -> Result<u32, ProtoError> {
        let v = self.var(what)?;
        u32::try_from(v).map_err(|_| ProtoError::TooLong(what, v, u64::from(u32::MAX)))
    }

    fn index(&mut self, what: &'static str) -> Result<u64, ProtoError> {
        let v = self.var(what)?;
        if v > MAX_FILES {
            return Err(ProtoError::TooLong(what, v, MAX_FILES));
        }
        Ok(v)
    }

    /// A count bounded by `max` and by what the rest can hold at `min_size`
    /// bytes per element.
    fn count(
        &mut self,
        max: usize,
        min_size: usize,
        what: &'static str,
    ) -> Result<usize, ProtoError> {
        let v = self.var(what)?;
        if v > max as u64 {
            return Err(ProtoError::TooLong(what, v, max as u64));
        }
        if v > (self.buf.len() / min_size) as u64 {
            return Err(ProtoError::Truncated(what));
        }
        Ok(v as usize)
    }

    fn bytes(&mut self, max: usize, what: &'static str) -> Result<&'a [u8], ProtoError> {
        let n = self.var(what)?;
        if n > max as u64 {
            return Err(ProtoError::TooLong(what, n, max as u64));
        }
        self.take(n as usize, what)
    }

    fn str(&mut self, max: usize, what: &'static str) -> Result<String, ProtoError> {
        let b = self.bytes(max, what)?;
        String::from_utf8(b.to_vec()).map_err(|_| ProtoError::Invalid(what))
    }

    fn entry(&mut self, prev: &[u8], index: u64) -> Result<Entry, ProtoError> {
        let flags = self.u16("entry flags")?;
        if flags & !flag::ALL != 0 {
            return Err(ProtoError::Invalid("entry flags"));
        }
        let prefix = self.var("entry name prefix")?;
        if prefix > prev.len() as u64 {
            return Err(ProtoError::Invalid("entry name prefix"));
        }
        let suffix = self.bytes(MAX_NAME, "entry name")?;
        let total = prefix as usize + suffix.len();
        if total > MAX_NAME {
            return Err(ProtoError::TooLong(
                "entry name",
                total as u64,
                MAX_NAME as u64,
            ));
        }
        let mut name = Vec::with_capacity(total);
        name.extend_from_slice(&prev[..prefix as usize]);
        name.extend_from_slice(suffix);
        check_name(&name)?;
        let mode = self.u32var("entry mode")?;
        let size = self.var("entry size")?;
        let mtime_sec = self.ivar("entry mtime")?;
        let mtime_nsec = self.u32var("entry mtime nsec")?;
        if mtime_nsec >= 1_000_000_000 {
            return Err(ProtoError::Invalid("entry mtime nsec"));
        }
        let uid = self.u32var("entry uid")?;
        let gid = self.u32var("entry gid")?;
        let link = if flags & flag::LINK != 0 {
            let l = self.bytes(MAX_NAME, "symlink target")?;
            if l.is_empty() || l.contains(&0) {
                return Err(ProtoError::Invalid("symlink target"));
            }
            Some(l.to_vec())
        } else {
            None
        };
        let rdev = if flags & flag::RDEV != 0 {
            Some(self.var("entry rdev")?)
        } else {
            None
        };
        let hlink = if flags & flag::HLINK != 0 {
            let h = self.var("hard-link leader")?;
            if h > index {
                return Err(ProtoError::Invalid("hard-link leader"));
            }
            Some(h)
        } else {
            None
        };
        let xattrs = if flags & flag::XATTR != 0 {
            let n = self.count(MAX_XATTRS, 2, "xattr count")?;
            let mut v = Vec::with_capacity(n);
            for _ in 0..n {
                let k = self.bytes(MAX_XATTR_NAME, "xattr name")?;
                if k.is_empty() || k.contains(&0) {
                    return Err(ProtoError::Invalid("xattr name"));
                }
                let val = self.bytes(MAX_XATTR_VALUE, "xattr value")?;
                v.push((k.to_vec(), val.to_vec()));
            }
            Some(v)
        } else {
            None
        };
        let sum = if flags & flag::SUM != 0 {
            let b = self.take(32, "entry sum")?;
            Some(b.try_into().expect("32 bytes"))
        } else {
            None
        };
        let atime = if flags & flag::ATIME != 0 {
            let sec = self.ivar("entry atime")?;
            let nsec = self.u32var("entry atime nsec")?;
            if nsec >= 1_000_000_000 {
                return Err(ProtoError::Invalid("entry atime nsec"));
            }
            Some((sec, nsec))
        } else {
            None
        };
        Ok(Entry {
            flags: flags & (flag::TOP_DIR | flag::NO_CONTENT | flag::MISSING | flag::IMPLIED),
            name,
            mode,
            size,
            mtime_sec,
            mtime_nsec,
            uid,
            gid,
            link,
            rdev,
            hlink,
            xattrs,
            sum,
            atime,
        })
    }
}

/// Joins the `Signature` pieces of one file, enforcing [`MAX_SIG`] and that
/// the pieces of one file are not interleaved with another's.
#[derive(Debug)]
pub struct SigAssembler {
    index: Option<u64>,
    buf: Vec<u8>,
    max: usize,
}

impl Default for SigAssembler {
    fn default() -> Self {
        SigAssembler::with_limit(MAX_SIG)
    }
}

impl SigAssembler {
    /// An assembler refusing signatures over `max` bytes (tests use a small one).
    pub fn with_limit(max: usize) -> Self {
        SigAssembler {
            index: None,
            buf: Vec::new(),
            max,
        }
    }

    /// Add one piece; returns the whole signature after the `last` piece.
    pub fn push(
        &mut self,
        index: u64,
        last: bool,
        piece: &[u8],
    ) -> Result<Option<Vec<u8>>, ProtoError> {
        match self.index {
            Some(i) if i != index => return Err(ProtoError::Invalid("Signature index")),
            _ => self.index = Some(index),
        }
        let total = self.buf.len() + piece.len();
        if total > self.max {
            return Err(ProtoError::TooLong(
                "signature length",
                total as u64,
                self.max as u64,
            ));
        }
        self.buf.extend_from_slice(piece);
        if !last {
            return Ok(None);
        }
        self.index = None;
        Ok(Some(std::mem::take(&mut self.buf)))
    }

    /// Whether a signature is half received (an error at a phase end).
    pub fn is_partial(&self) -> bool {
        self.index.is_some()
    }
}

/// A file-list name from the peer must stay inside the transfer: relative,
/// no empty, `.` (except the whole name `.`) or `..` component, no NUL.
pub fn check_name(name: &[u8]) -> Result<(), ProtoError> {
    if name == b"." {
        return Ok(());
    }
    if name.is_empty() || name[0] == b'/' || name.contains(&0) {
        return Err(ProtoError::Invalid("entry name"));
    }
    for c in name.split(|&b| b == b'/') {
        if c.is_empty() || c == b"." || c == b".." {
            return Err(ProtoError::Invalid("entry name"));
        }
    }
    Ok(())
}

#[cfg(test)]
fn entry(name: &str) -> Entry {
    Entry {
        name: name.as_bytes().to_vec(),
        mode: 0o100644,
        size: 12345,
        mtime_sec: -5,
        mtime_nsec: 999_999_999,
        uid: 1000,
        gid: u32::MAX,
        ..Entry::default()
    }
}

/// One message of every type, with the optional fields used (tests of this
/// module, of `conn` and the fuzz regression tests share it).
#[cfg(test)]
pub(crate) fn tests_samples() -> Vec<Msg> {
    {
        let mut rich = entry("dir/sub/file");
        rich.flags = flag::TOP_DIR;
        rich.link = Some(b"../target".to_vec());
        rich.rdev = Some(0x0801);
        rich.hlink = Some(1);
        rich.xattrs = Some(vec![
            (b"user.a".to_vec(), vec![0, 1, 2]),
            (b"user.b".to_vec(), vec![]),
        ]);
        rich.sum = Some([0x5a; 32]);
        rich.atime = Some((-3, 999_999_999));
        let mut leader = entry("dir/sub/first");
        leader.hlink = Some(9);
        vec![
            Msg::Hello(Hello {
                min_version: 1,
                max_version: 3,
                caps: cap::ZSTD | cap::DELTA_RSIG1 | (1 << 63),
                compress_level: -7,
                program: "resync 0.1.0".into(),
            }),
            Msg::Error {
                code: 12,
                message: "protocol error: x".into(),
            },
            Msg::Goodbye { code: 0 },
            Msg::Log {
                level: 2,
                text: b">f+++++++++ a\xff".to_vec(),
            },
            Msg::Start {
                args: vec![b"--server".to_vec(), vec![], b"mod/path".to_vec()],
            },
            Msg::Keepalive,
            Msg::AuthChallenge {
                module: "pub".into(),
                challenge: [7; AUTH_LEN],
            },
            Msg::AuthResponse {
                user: "alice".into(),
                response: [0xee; AUTH_LEN],
            },
            Msg::Ready,
            Msg::FileBatch {
                first_index: 7,
                entries: vec![entry("."), entry("dir"), entry("dir/sub"), leader, rich],
            },
            Msg::FileBatch {
                first_index: 0,
                entries: vec![],
            },
            Msg::FileListEnd { total: 11 },
            Msg::IdNames {
                kind: 1,
                ids: vec![(0, "root".into()), (u32::MAX, "nobody".into())],
            },
            Msg::Request {
                index: 3,
                flags: 1,
                offset: 0,
            },
            Msg::Request {
                index: 4,
                flags: req::APPEND | req::VERIFY,
                offset: 1 << 40,
            },
            Msg::Signature {
                index: MAX_FILES,
                last: true,
                piece: b"RSIG\x01".to_vec(),
            },
            Msg::FilesFrom {
                last: false,
                piece: b"a.txt\n# not a comment\n".to_vec(),
            },
            Msg::Data {
                index: 4,
                ops: vec![
                    WireOp::Copy {
                        offset: u64::MAX - 1,
                        len: 1,
                    },
                    WireOp::Literal(vec![9; 300]),
                    WireOp::Literal(vec![]),
                ],
            },
            Msg::FileEnd {
                index: 4,
                hash: [0xab; 32],
            },
            Msg::NoSend {
                index: 5,
                code: 24,
                why: b"vanished".to_vec(),
            },
            Msg::Done { phase: 1 },
            Msg::Success { index: 0 },
            Msg::Stats {
                values: vec![0, 1, u64::MAX],
            },
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn samples() -> Vec<Msg> {
        tests_samples()
    }

    #[test]
    fn every_message_round_trips() {
        let all = samples();
        let mut stream = Vec::new();
        for m in &all {
            let f = m.encode_frame().unwrap();
            assert_eq!(f[0], m.kind());
            let (k, len) = parse_header(f[..HEADER_LEN].try_into().unwrap()).unwrap();
            assert_eq!(len, f.len() - HEADER_LEN);
            assert_eq!(&Msg::decode(k, &f[HEADER_LEN..]).unwrap(), m);
            stream.extend_from_slice(&f);
        }
        assert_eq!(decode_stream(&stream).unwrap(), all);
        // All 21 message types are covered.
        let mut kinds: Vec<u8> = all.iter().map(Msg::kind).collect();
        kinds.dedup();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(kinds.len(), 21);
    }

    #[test]
    fn names_are_prefix_compressed() {
        let m = Msg::FileBatch {
            first_index: 0,
            entries: vec![
                entry("a/long/directory/name/x"),
                entry("a/long/directory/name/y"),
            ],
        };
        let p = m.payload();
        // The second name costs one prefix byte, one length byte and "y".
        assert_eq!(
            p.windows(22)
                .filter(|w| w == b"a/long/directory/name/")
                .count(),
            1
        );
        assert_eq!(Msg::decode(kind::FILE_BATCH, &p).unwrap(), m);
    }

    #[test]
    fn every_truncation_is_an_error() {
        for m in samples() {
            let p = m.payload();
            for cut in 0..p.len() {
                let r = Msg::decode(m.kind(), &p[..cut]);
                assert!(r.is_err(), "{m:?} cut at {cut} decoded as {r:?}");
            }
            // Truncated streams too: header cut, payload cut.
            let f = m.encode_frame().unwrap();
            for cut in 1..f.len() {
                assert!(
                    decode_stream(&f[..cut]).is_err(),
                    "{m:?} frame cut at {cut}"
                );
            }
        }
    }

    #[test]
    fn trailing_bytes_and_unknown_types_are_errors() {
        for m in samples() {
            let mut p = m.payload();
            p.push(0);
            assert_eq!(
                Msg::decode(m.kind(), &p),
                Err(ProtoError::Trailing(m.kind(), 1))
            );
        }
        for t in [0u8, 0x07, 0x0f, 0x13, 0x29, 0xff] {
            assert_eq!(Msg::decode(t, &[]), Err(ProtoError::UnknownType(t)));
        }
    }

    #[test]
    fn frame_length_bound_is_checked_before_allocation() {
        let mut h = [kind::DATA, 0, 0, 0, 0];
        h[1..].copy_from_slice(&((MAX_FRAME as u32) + 1).to_le_bytes());
        assert_eq!(
            parse_header(&h),
            Err(ProtoError::FrameTooLong(MAX_FRAME as u32 + 1))
        );
        h[1..].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(parse_header(&h).is_err());
        h[1..].copy_from_slice(&(MAX_FRAME as u32).to_le_bytes());
        assert_eq!(parse_header(&h), Ok((kind::DATA, MAX_FRAME)));
        // And the encoder refuses to build one.
        let big = Msg::Log {
            level: 0,
            text: vec![b'x'; MAX_FRAME],
        };
        assert!(big.encode_frame().is_err());
    }

    fn var(v: u64) -> Vec<u8> {
        let mut o = Vec::new();
        put_var(&mut o, v);
        o
    }

    #[test]
    fn varints_are_shortest_form_and_bounded() {
        for v in [0, 1, 127, 128, 16383, 16384, u64::MAX / 3, u64::MAX] {
            let b = var(v);
            let mut r = Reader { buf: &b };
            assert_eq!(r.var("v"), Ok(v));
            assert!(r.buf.is_empty());
        }
        for bad in [
            &[0x80, 0x00][..],                                             // redundant
            &[0xff; 11][..],                                               // too long
            &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02], // overflow
        ] {
            assert!(Reader { buf: bad }.var("v").is_err(), "{bad:?}");
        }
        let mut r = Reader {
            buf: &var(u64::from(u32::MAX) + 1),
        };
        assert!(r.u32var("v").is_err());
    }

    /// The entry fields of `-H`, `-c` and `--atimes`: a leader is an earlier
    /// index or the entry's own, a sum is 32 bytes, nanoseconds < 10^9.
    #[test]
    fn hard_link_sum_and_atime_fields_are_checked() {
        let batch = |e: Entry, first: u64| Msg::FileBatch {
            first_index: first,
            entries: vec![e],
        };
        let mut e = entry("f");
        e.hlink = Some(4);
        e.sum = Some([1; 32]);
        e.atime = Some((1_700_000_000, 5));
        for first in [4, 5, 1 << 20] {
            let m = batch(e.clone(), first);
            assert_eq!(Msg::decode(kind::FILE_BATCH, &m.payload()).unwrap(), m);
        }
        // A leader after the entry itself.
        let p = batch(e.clone(), 3).payload();
        assert_eq!(
            Msg::decode(kind::FILE_BATCH, &p),
            Err(ProtoError::Invalid("hard-link leader"))
        );
        // Nanoseconds of the atime out of range.
        let mut bad = e.clone();
        bad.atime = Some((0, 1_000_000_000));
        let p = batch(bad, 4).payload();
        assert_eq!(
            Msg::decode(kind::FILE_BATCH, &p),
            Err(ProtoError::Invalid("entry atime nsec"))
        );
        // A sum cut short (the frame ends inside it).
        let mut only_sum = entry("f");
        only_sum.sum = Some([2; 32]);
        let p = batch(only_sum, 0).payload();
        assert!(Msg::decode(kind::FILE_BATCH, &p[..p.len() - 1]).is_err());
        // A flag bit this version does not know.
        // (The flags follow first_index and count, one byte each here.)
        let mut p = batch(entry("f"), 0).payload();
        p[2..4].copy_from_slice(&(1u16 << 10).to_le_bytes());
        assert_eq!(
            Msg::decode(kind::FILE_BATCH, &p),
            Err(ProtoError::Invalid("entry flags"))
        );
    }

    /// Build a payload by hand: every bound of the protocol is rejected.
    #[test]
    fn every_bound_is_rejected() {
        let cases: Vec<(u8, Vec<u8>, &str)> = vec![
            // Text over MAX_TEXT.
            (
                kind::ERROR,
                [vec![12], var(MAX_TEXT as u64 + 1)].concat(),
                "Error",
            ),
            (
                kind::LOG,
                [vec![0], var(MAX_TEXT as u64 + 1)].concat(),
                "Log",
            ),
            (kind::LOG, [vec![9], var(0)].concat(), "Log level"),
            (
                kind::ERROR,
                [vec![12], var(1), vec![0xff]].concat(),
                "utf-8",
            ),
            // Hello fields.
            (
                kind::HELLO,
                [vec![2, 0, 1, 0], vec![0; 8], vec![0], var(0)].concat(),
                "range",
            ),
            (
                kind::HELLO,
                [vec![1, 0, 1, 0], vec![0; 8], vec![23], var(0)].concat(),
                "level",
            ),
            (
                kind::HELLO,
                [
                    vec![1, 0, 1, 0],
                    vec![0; 8],
                    vec![0],
                    var(MAX_PROGRAM as u64 + 1),
                ]
                .concat(),
                "program",
            ),
            // Counts over their bound, and over what the payload can hold.
            (kind::START, var(MAX_ARGS as u64 + 1), "args"),
            (kind::START, var(5), "args vs bytes"),
            (
                kind::AUTH_CHALLENGE,
                var(MAX_AUTH_NAME as u64 + 1),
                "auth module",
            ),
            (
                kind::AUTH_RESPONSE,
                [var(1), b"a".to_vec()].concat(),
                "short response",
            ),
            (
                kind::START,
                [var(1), var(MAX_ARG as u64 + 1)].concat(),
                "arg",
            ),
            (
                kind::FILE_BATCH,
                [var(0), var(MAX_BATCH as u64 + 1)].concat(),
                "batch",
            ),
            (
                kind::FILE_BATCH,
                [var(0), var(1000)].concat(),
                "batch vs bytes",
            ),
            (
                kind::FILE_BATCH,
                [var(MAX_FILES), var(1), vec![0; 9]].concat(),
                "index",
            ),
            (kind::FILE_LIST_END, var(MAX_FILES + 1), "total"),
            (
                kind::ID_NAMES,
                [vec![0], var(MAX_IDS as u64 + 1)].concat(),
                "ids",
            ),
            (kind::ID_NAMES, [vec![2], var(0)].concat(), "id kind"),
            (
                kind::ID_NAMES,
                [vec![0], var(1), var(1 << 32), var(0)].concat(),
                "id",
            ),
            (
                kind::ID_NAMES,
                [vec![0], var(1), var(0), var(MAX_ID_NAME as u64 + 1)].concat(),
                "id name",
            ),
            (
                kind::REQUEST,
                [var(MAX_FILES + 1), vec![0]].concat(),
                "request index",
            ),
            (kind::REQUEST, [var(0), vec![2]].concat(), "request flags"),
            (
                kind::REQUEST,
                [var(0), vec![0x10]].concat(),
                "request flags",
            ),
            (
                kind::REQUEST,
                [var(0), vec![0x08]].concat(),
                "request flags",
            ),
            (
                kind::REQUEST,
                [var(0), vec![0x05]].concat(),
                "request flags",
            ),
            (kind::SIGNATURE, [var(0), vec![2], var(0)].concat(), "last"),
            (
                kind::SIGNATURE,
                [var(0), vec![1], var(MAX_FRAME as u64 + 1)].concat(),
                "piece",
            ),
            (
                kind::DATA,
                [var(0), var(MAX_OPS as u64 + 1)].concat(),
                "ops",
            ),
            (kind::DATA, [var(0), var(1), vec![2]].concat(), "op type"),
            (
                kind::DATA,
                [var(0), var(1), vec![0], var(0), var(0)].concat(),
                "copy len 0",
            ),
            (
                kind::DATA,
                [var(0), var(1), vec![0], var(u64::MAX), var(1)].concat(),
                "copy overflow",
            ),
            (
                kind::DATA,
                [var(0), var(1), vec![1], var(MAX_FRAME as u64 + 1)].concat(),
                "literal",
            ),
            (
                kind::NO_SEND,
                [var(0), vec![11], var(0)].concat(),
                "nosend code",
            ),
            (kind::DONE, vec![2], "phase"),
            (kind::STATS, var(MAX_STATS as u64 + 1), "stats"),
        ];
        for (k, p, what) in cases {
            assert!(Msg::decode(k, &p).is_err(), "{what}: accepted");
        }
    }

    #[test]
    fn signature_pieces_are_joined_and_bounded() {
        let mut a = SigAssembler::default();
        assert_eq!(a.push(3, false, b"RS"), Ok(None));
        assert!(a.is_partial());
        assert_eq!(
            a.push(4, true, b"x"),
            Err(ProtoError::Invalid("Signature index"))
        );
        assert_eq!(a.push(3, true, b"IG"), Ok(Some(b"RSIG".to_vec())));
        assert!(!a.is_partial());
        assert_eq!(a.push(4, true, b""), Ok(Some(vec![])));
        // The total bound (MAX_SIG by default, a small one here).
        assert_eq!(SigAssembler::default().max, MAX_SIG);
        let mut a = SigAssembler::with_limit(4);
        assert_eq!(a.push(1, false, b"abc"), Ok(None));
        assert_eq!(a.push(1, false, b"d"), Ok(None));
        assert_eq!(
            a.push(1, true, b"e"),
            Err(ProtoError::TooLong("signature length", 5, 4))
        );
    }

    fn batch_of(e: &[u8]) -> Vec<u8> {
        [var(0), var(1), e.to_vec()].concat()
    }

    fn entry_bytes(flags: u16, name: &[u8], tail: &[u8]) -> Vec<u8> {
        [
            flags.to_le_bytes().to_vec(),
            var(0),
            var(name.len() as u64),
            name.to_vec(),
            vec![0, 0, 0, 0, 0, 0], // mode size mtime nsec uid gid
            tail.to_vec(),
        ]
        .concat()
    }

    #[test]
    fn entry_fields_are_checked() {
        let ok = entry_bytes(0, b"a", &[]);
        assert!(Msg::decode(kind::FILE_BATCH, &batch_of(&ok)).is_ok());
        // The first of a hard-link group names itself.
        let first = entry_bytes(flag::HLINK, b"a", &var(0));
        assert!(Msg::decode(kind::FILE_BATCH, &batch_of(&first)).is_ok());
        let bad: Vec<(Vec<u8>, &str)> = vec![
            (entry_bytes(1 << 10, b"a", &[]), "unknown flag"),
            (entry_bytes(0, b"/etc/passwd", &[]), "absolute"),
            (entry_bytes(0, b"a/../../x", &[]), "dotdot"),
            (entry_bytes(0, b"..", &[]), "dotdot alone"),
            (entry_bytes(0, b"a//b", &[]), "empty component"),
            (entry_bytes(0, b"a/./b", &[]), "dot component"),
            (entry_bytes(0, b"", &[]), "empty"),
            (entry_bytes(0, b"a\0b", &[]), "nul"),
            (entry_bytes(flag::LINK, b"a", &var(0)), "empty link"),
            (
                entry_bytes(flag::LINK, b"a", &var(MAX_NAME as u64 + 1)),
                "long link",
            ),
            (
                entry_bytes(flag::HLINK, b"a", &var(1)),
                "leader after the entry",
            ),
            (entry_bytes(flag::SUM, b"a", &[7; 31]), "short sum"),
            (
                entry_bytes(flag::ATIME, b"a", &[var(0), var(1_000_000_000)].concat()),
                "atime nsec",
            ),
            (
                entry_bytes(flag::XATTR, b"a", &var(MAX_XATTRS as u64 + 1)),
                "xattr count",
            ),
            (
                entry_bytes(flag::XATTR, b"a", &[var(1), var(0), var(0)].concat()),
                "empty xattr name",
            ),
            (
                entry_bytes(
                    flag::XATTR,
                    b"a",
                    &[
                        var(1),
                        var(1),
                        b"x".to_vec(),
                        var(MAX_XATTR_VALUE as u64 + 1),
                    ]
                    .concat(),
                ),
                "xattr value",
            ),
        ];
        for (e, what) in bad {
            assert!(
                Msg::decode(kind::FILE_BATCH, &batch_of(&e)).is_err(),
                "{what}: accepted"
            );
        }
        // Long name over MAX_NAME through prefix + suffix.
        let long = vec![b'x'; MAX_NAME];
        let first = entry_bytes(0, &long, &[]);
        let mut second = 0u16.to_le_bytes().to_vec();
        second.extend(var(MAX_NAME as u64));
        second.extend(var(1));
        second.push(b'y');
        second.extend([0, 0, 0, 0, 0, 0]);
        let p = [var(0), var(2), first, second].concat();
        assert!(Msg::decode(kind::FILE_BATCH, &p).is_err());
        // Prefix longer than the previous name.
        let mut e = 0u16.to_le_bytes().to_vec();
        e.extend(var(1));
        e.extend(var(1));
        e.push(b'a');
        e.extend([0, 0, 0, 0, 0, 0]);
        assert!(Msg::decode(kind::FILE_BATCH, &batch_of(&e)).is_err());
        // Nanoseconds out of range.
        let mut e = entry_bytes(0, b"a", &[]);
        let n = e.len();
        e.truncate(n - 3);
        e.extend(var(1_000_000_000));
        e.extend([0, 0]);
        assert!(Msg::decode(kind::FILE_BATCH, &batch_of(&e)).is_err());
    }
}
