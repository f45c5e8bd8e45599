//! Deterministic tree generators.
//!
//! Every generator writes a tree below `work/<name>` from a seed; calling it twice with
//! the same seed yields two trees whose snapshots (see `snapshot.rs`) are identical,
//! including nanosecond mtimes, owners, xattrs and ACLs. Timestamps are *not* set by the
//! generators: the harness stamps the whole work dir at the end of the setup (see
//! [`stamp`]), because creating entries changes directory mtimes.

use std::ffi::{CString, OsStr, OsString};
use std::fs;
use std::io::{Seek, SeekFrom, Write};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Which fixtures a tree contains. Every kind contains the "core" entries (see
/// [`core`]) so that pre-populated destinations and path-based setup hooks work on all.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tree {
    /// Core entries only: a few files, dirs, an empty dir, an empty file, a symlink.
    Basic,
    /// Core + relative/absolute/dangling/unsafe symlinks + hard-link groups of 2 and 3.
    Links,
    /// Core + odd modes, owners, user xattrs, POSIX ACLs, devices, fifo, socket.
    Meta,
    /// Core + odd names, deep nesting (30 levels) and a path longer than 255 bytes.
    Names,
    /// Core + a 3 MiB file, sparse files, a file of zeros.
    Large,
    /// Everything except `Large` (plus one small sparse file).
    Full,
}

/// splitmix64: small, deterministic, good enough for file contents.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed ^ 0x9E37_79B9_7F4A_7C15)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn bytes(&mut self, n: usize) -> Vec<u8> {
        let mut v = Vec::with_capacity(n + 8);
        while v.len() < n {
            v.extend_from_slice(&self.next_u64().to_le_bytes());
        }
        v.truncate(n);
        v
    }
    /// Printable text, newline-terminated lines.
    pub fn text(&mut self, n: usize) -> Vec<u8> {
        let mut v: Vec<u8> = self
            .bytes(n)
            .into_iter()
            .map(|b| b"abcdefghijklmnopqrstuvwxyz0123456789 "[b as usize % 37])
            .collect();
        for i in (63..n).step_by(64) {
            v[i] = b'\n';
        }
        v
    }
}

/// FNV-1a of a byte string; used to derive per-path seeds and timestamps.
pub fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in data {
        h ^= b as u64;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

pub fn cstr(p: &Path) -> CString {
    CString::new(p.as_os_str().as_bytes()).expect("path with NUL")
}

fn check(rc: libc::c_int, what: &str, p: &Path) {
    if rc != 0 {
        panic!(
            "{what} {}: {}",
            p.display(),
            std::io::Error::last_os_error()
        );
    }
}

pub fn write(p: &Path, data: &[u8]) {
    if let Some(parent) = p.parent() {
        fs::create_dir_all(parent).unwrap();
    }
    fs::write(p, data).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
}

pub fn mkdir(p: &Path) {
    fs::create_dir_all(p).unwrap_or_else(|e| panic!("mkdir {}: {e}", p.display()));
}

pub fn chmod(p: &Path, mode: u32) {
    fs::set_permissions(p, fs::Permissions::from_mode(mode)).unwrap();
}

pub fn lchown(p: &Path, uid: u32, gid: u32) {
    let c = cstr(p);
    check(unsafe { libc::lchown(c.as_ptr(), uid, gid) }, "lchown", p);
}

pub fn ln_s(target: &str, p: &Path) {
    symlink(target, p).unwrap_or_else(|e| panic!("symlink {}: {e}", p.display()));
}

pub fn setxattr(p: &Path, name: &str, value: &[u8]) {
    let c = cstr(p);
    let n = CString::new(name).unwrap();
    let rc = unsafe {
        libc::lsetxattr(
            c.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    check(rc, "lsetxattr", p);
}

pub fn setfacl(args: &[&str], p: &Path) {
    let st = Command::new("setfacl")
        .args(args)
        .arg(p)
        .status()
        .expect("setfacl (install the acl package)");
    assert!(st.success(), "setfacl {args:?} {}", p.display());
}

pub fn mknod(p: &Path, kind: u32, perm: u32, major: u32, minor: u32) {
    let c = cstr(p);
    let dev = libc::makedev(major, minor);
    check(
        unsafe { libc::mknod(c.as_ptr(), kind | perm, dev) },
        "mknod",
        p,
    );
}

/// Set atime and mtime (same value) without following symlinks.
pub fn set_mtime(p: &Path, sec: i64, nsec: i64) {
    let c = cstr(p);
    let ts = libc::timespec {
        tv_sec: sec as libc::time_t,
        tv_nsec: nsec as _,
    };
    let times = [ts, ts];
    let rc = unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            c.as_ptr(),
            times.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    };
    check(rc, "utimensat", p);
}

/// Deterministic mtime for a path key: seconds in 2017..2020, nanoseconds nonzero.
pub fn mtime_for(key: &[u8], seed: u64) -> (i64, i64) {
    let h = fnv(key) ^ seed.wrapping_mul(0x2545_F491_4F6C_DD1D);
    let h2 = fnv(&h.to_le_bytes());
    (
        1_500_000_000 + (h % 100_000_000) as i64,
        1 + (h2 % 999_999_998) as i64,
    )
}

/// Stamp every entry below `work` (and `work` itself) with a deterministic mtime, deepest
/// first. The key of an entry is its path with the first component (`src`, `dst`, ...)
/// removed, so a destination prepared as a copy of the source gets the same times.
pub fn stamp(work: &Path, seed: u64) {
    fn rec(root: &Path, p: &Path, seed: u64) {
        let md = fs::symlink_metadata(p).unwrap();
        if md.is_dir() {
            for e in fs::read_dir(p).unwrap() {
                rec(root, &e.unwrap().path(), seed);
            }
        }
        let rel = p.strip_prefix(root).unwrap();
        let mut comps = rel.components();
        comps.next();
        let key = comps.as_path().as_os_str().as_bytes().to_vec();
        let (s, ns) = mtime_for(&key, seed);
        set_mtime(p, s, ns);
    }
    rec(work, work, seed);
}

pub fn osname(bytes: &[u8]) -> OsString {
    OsString::from_vec(bytes.to_vec())
}

/// Core entries, present in every tree kind. Paths here are relied upon by
/// [`prepopulate`] and by scenario setup hooks.
fn core(root: &Path, rng: &mut Rng) {
    mkdir(root);
    write(&root.join("file1.txt"), &rng.text(100));
    write(&root.join("file2.txt"), &rng.text(2000));
    write(&root.join("empty"), b"");
    write(&root.join("tiny"), b"x");
    write(&root.join("dir1/a.txt"), &rng.text(300));
    write(&root.join("dir1/b.txt"), &rng.text(301));
    write(&root.join("dir1/ns.txt"), &rng.text(302));
    write(&root.join("dir1/sub/c.txt"), &rng.text(40_000));
    write(&root.join("dir2/x.txt"), &rng.text(50));
    write(&root.join("same_size/s1.txt"), &rng.text(200));
    write(&root.join("same_size/s2.txt"), &rng.text(200));
    write(&root.join("mode_file"), &rng.text(10));
    chmod(&root.join("mode_file"), 0o640);
    mkdir(&root.join("emptydir"));
    ln_s("file1.txt", &root.join("link_rel"));
}

fn links(work: &Path, root: &Path, rng: &mut Rng) {
    write(&work.join("outside.txt"), b"outside the tree\n");
    mkdir(&work.join("outside_dir"));
    write(&work.join("outside_dir/o.txt"), b"o\n");
    let sl = root.join("sl");
    mkdir(&sl);
    ln_s("../file1.txt", &sl.join("rel"));
    ln_s("../dir1", &sl.join("dirlink"));
    ln_s("/etc/passwd", &sl.join("abs"));
    ln_s("/nonexistent/target", &sl.join("abs_dangling"));
    ln_s("nonexistent", &sl.join("dangling"));
    ln_s("../../outside.txt", &sl.join("unsafe"));
    ln_s("../../outside_dir", &sl.join("unsafe_dir"));
    ln_s("rel", &sl.join("chain"));
    let hl = root.join("hl");
    mkdir(&hl.join("sub"));
    write(&hl.join("a1"), &rng.text(120));
    fs::hard_link(hl.join("a1"), hl.join("a2")).unwrap();
    write(&hl.join("b1"), &rng.text(130));
    fs::hard_link(hl.join("b1"), hl.join("sub/b2")).unwrap();
    fs::hard_link(hl.join("b1"), hl.join("b3")).unwrap();
    write(&hl.join("single"), &rng.text(10));
}

fn meta(root: &Path, rng: &mut Rng) {
    let m = root.join("modes");
    mkdir(&m);
    for (name, mode) in [
        ("setuid", 0o4755),
        ("setgid", 0o2755),
        ("sticky_file", 0o1644),
        ("m0000", 0o000),
        ("m0777", 0o777),
        ("m0600", 0o600),
        ("m0444", 0o444),
    ] {
        write(&m.join(name), &rng.text(20));
        chmod(&m.join(name), mode);
    }
    for (name, mode) in [
        ("sticky_dir", 0o1777),
        ("setgid_dir", 0o2775),
        ("d0700", 0o700),
    ] {
        mkdir(&m.join(name));
        write(&m.join(name).join("inner"), b"inner\n");
        chmod(&m.join(name), mode);
    }
    mkdir(&m.join("d0000"));
    write(&m.join("d0000/hidden"), b"hidden\n");
    chmod(&m.join("d0000"), 0o000);

    let o = root.join("own");
    mkdir(&o.join("dir1000"));
    for (name, uid, gid) in [
        ("u1000", 1000, 1000),
        ("u4242", 4242, 4242),
        ("mixed", 1000, 4242),
    ] {
        write(&o.join(name), &rng.text(15));
        lchown(&o.join(name), uid, gid);
    }
    write(&o.join("dir1000/f"), b"f\n");
    lchown(&o.join("dir1000"), 1000, 1000);
    ln_s("u1000", &o.join("link4242"));
    lchown(&o.join("link4242"), 4242, 4242);

    let x = root.join("xattr");
    mkdir(&x.join("dir"));
    write(&x.join("f1"), b"xattrs\n");
    setxattr(&x.join("f1"), "user.alpha", b"1");
    setxattr(&x.join("f1"), "user.binary", &[0, 1, 2, 255, 254]);
    setxattr(&x.join("f1"), "user.empty", b"");
    setxattr(&x.join("dir"), "user.on_dir", b"dir value");
    write(&x.join("plain"), b"no xattrs\n");

    let a = root.join("acl");
    mkdir(&a.join("dir"));
    write(&a.join("f"), b"acl\n");
    setfacl(&["-m", "u:1000:rw,g:4242:r"], &a.join("f"));
    setfacl(&["-m", "u:1000:rwx"], &a.join("dir"));
    setfacl(&["-d", "-m", "u:1000:rx,g::r"], &a.join("dir"));
    write(&a.join("dir/inside"), b"inside\n");

    let d = root.join("dev");
    mkdir(&d);
    mknod(&d.join("char_1_3"), libc::S_IFCHR, 0o644, 1, 3);
    mknod(&d.join("block_7_200"), libc::S_IFBLK, 0o600, 7, 200);
    mknod(&d.join("fifo"), libc::S_IFIFO, 0o644, 0, 0);
    let sock = d.join("sock");
    drop(std::os::unix::net::UnixListener::bind(&sock).unwrap());
}

fn names(root: &Path, rng: &mut Rng) {
    let n = root.join("names");
    mkdir(&n);
    let list: [&[u8]; 10] = [
        b"with space.txt",
        b"new\nline.txt",
        b"bad\xff\xfe.bin",
        b"-leading-dash",
        b"--rf",
        "ünïcödé-日本.txt".as_bytes(),
        b"tab\there",
        b"back\\slash",
        b"glob*?[x]",
        b"trailing space ",
    ];
    for name in list {
        write(&n.join(osname(name)), &rng.text(7));
    }
    mkdir(&n.join("dir with space"));
    write(&n.join("dir with space/inner file"), b"i\n");
    // 30 levels of nesting.
    let mut p = root.join("deep");
    for i in 0..30 {
        p = p.join(format!("d{i:02}"));
    }
    write(&p.join("leaf.txt"), b"deep leaf\n");
    // A path far longer than 255 bytes, each component <= 255 bytes.
    let mut p = root.join("long");
    for c in [b'a', b'b', b'c'] {
        p = p.join(OsStr::from_bytes(&[c; 200]));
    }
    write(&p.join(OsStr::from_bytes(&[b'f'; 255])), b"long path\n");
}

fn sparse(p: &Path, chunks: &[(u64, &[u8])], len: u64) {
    let mut f = fs::File::create(p).unwrap();
    for (off, data) in chunks {
        f.seek(SeekFrom::Start(*off)).unwrap();
        f.write_all(data).unwrap();
    }
    f.set_len(len).unwrap();
}

fn large(root: &Path, rng: &mut Rng) {
    let l = root.join("large");
    mkdir(&l);
    write(&l.join("big.bin"), &rng.bytes(3 << 20));
    let d = rng.bytes(4096);
    sparse(
        &l.join("sparse.bin"),
        &[(0, &d), (1 << 20, &d), ((2 << 20) - 4096, &d)],
        2 << 20,
    );
    sparse(&l.join("hole_at_end.bin"), &[(0, &d)], 1 << 20);
    write(&l.join("zeros.bin"), &vec![0u8; 1 << 20]);
}

/// Generate `tree` into `work/<name>` from `seed`. Files outside `work/<name>` that
/// symlinks point to (`outside.txt`, `outside_dir/`) are created in `work`.
pub fn generate(tree: Tree, work: &Path, name: &str, seed: u64) -> PathBuf {
    let root = work.join(name);
    let mut rng = Rng::new(seed);
    core(&root, &mut rng);
    match tree {
        Tree::Basic => {}
        Tree::Links => links(work, &root, &mut rng),
        Tree::Meta => meta(&root, &mut rng),
        Tree::Names => names(&root, &mut rng),
        Tree::Large => large(&root, &mut rng),
        Tree::Full => {
            links(work, &root, &mut rng);
            meta(&root, &mut rng);
            names(&root, &mut rng);
            let d = rng.bytes(4096);
            sparse(&root.join("small_sparse.bin"), &[(65536, &d)], 200_000);
        }
    }
    root
}

/// Explicit mtimes to apply after [`stamp`], as (path relative to work, sec, nsec).
pub type MtimeOverrides = Vec<(PathBuf, i64, i64)>;

/// Turn `work/dst` (already generated as a copy of the source tree, same seed) into a
/// destination that differs from the source in the ways quick-check scenarios need.
/// Returns the mtime overrides to apply after stamping.
pub fn prepopulate(work: &Path, seed: u64) -> MtimeOverrides {
    let d = work.join("dst");
    let mut rng = Rng::new(seed ^ 0xdead_beef);
    let mut ov = MtimeOverrides::new();
    let key = |rel: &str| mtime_for(rel.as_bytes(), seed);
    // Same size, same mtime, different content: the quick check skips it.
    write(&d.join("same_size/s1.txt"), &rng.text(200));
    // Same size, content differs, mtime one second later: --modify-window=1 skips it.
    write(&d.join("same_size/s2.txt"), &rng.text(200));
    let (s, ns) = key("same_size/s2.txt");
    ov.push(("dst/same_size/s2.txt".into(), s + 1, ns));
    // Different size, same mtime.
    let mut f2 = fs::read(d.join("file2.txt")).unwrap();
    f2.extend_from_slice(b"appended\n");
    write(&d.join("file2.txt"), &f2);
    // Newer in the destination: -u skips it.
    write(&d.join("dir1/a.txt"), &rng.text(333));
    let (s, ns) = key("dir1/a.txt");
    ov.push(("dst/dir1/a.txt".into(), s + 1000, ns));
    // Older in the destination.
    write(&d.join("dir1/b.txt"), &rng.text(301));
    let (s, ns) = key("dir1/b.txt");
    ov.push(("dst/dir1/b.txt".into(), s - 1000, ns));
    // Same content, mtime differs by nanoseconds only.
    let (s, ns) = key("dir1/ns.txt");
    ov.push(("dst/dir1/ns.txt".into(), s, (ns + 1) % 1_000_000_000));
    // Missing in the destination.
    fs::remove_file(d.join("dir1/sub/c.txt")).unwrap();
    // Extra in the destination.
    write(&d.join("extra.txt"), b"extra\n");
    write(&d.join("dir1/extra_dir/e.txt"), b"extra in dir\n");
    // Source has a directory, destination a file.
    fs::remove_dir_all(d.join("dir2")).unwrap();
    write(&d.join("dir2"), b"I am a file\n");
    // Source has a file, destination a (non-empty) directory.
    fs::remove_file(d.join("tiny")).unwrap();
    write(&d.join("tiny/inner"), b"was a dir\n");
    // A symlink replaced by a file.
    fs::remove_file(d.join("link_rel")).unwrap();
    write(&d.join("link_rel"), b"not a link\n");
    // Mode and owner differences.
    chmod(&d.join("mode_file"), 0o604);
    lchown(&d.join("file1.txt"), 1000, 1000);
    lchown(&d.join("dir1"), 4242, 4242);
    // Large trees: a truncated big file (--append completes it) and a file of zeros with
    // a few changed bytes in the middle and a newer mtime (delta transfer).
    let big = d.join("large/big.bin");
    if big.exists() {
        fs::OpenOptions::new()
            .write(true)
            .open(&big)
            .unwrap()
            .set_len(2 << 20)
            .unwrap();
        let mut z = fs::OpenOptions::new()
            .write(true)
            .open(d.join("large/zeros.bin"))
            .unwrap();
        z.seek(SeekFrom::Start(500_000)).unwrap();
        z.write_all(b"changed in the middle").unwrap();
        let (s, ns) = key("large/zeros.bin");
        ov.push(("dst/large/zeros.bin".into(), s + 5, ns));
    }
    ov
}

/// `chown -hR uid:gid path`.
pub fn chown_r(p: &Path, uid: u32, gid: u32) {
    lchown(p, uid, gid);
    let md = fs::symlink_metadata(p).unwrap();
    if md.is_dir() {
        for e in fs::read_dir(p).unwrap() {
            chown_r(&e.unwrap().path(), uid, gid);
        }
    }
}
