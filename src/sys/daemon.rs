//! The process and socket calls `resync --daemon` needs: fork per
//! connection, reaping, detaching, chroot and dropping privileges, poll,
//! user/group lookup, reverse DNS and the openat2 path jail.
//!
//! They live here so `remote/daemon.rs` holds the daemon's logic only, with
//! no `unsafe` and no errno handling of its own.

use std::ffi::CString;
use std::io;
use std::net::IpAddr;
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::path::Path;
use std::time::Duration;

/// What `fork` returned in this process.
pub enum Fork {
    /// We are the parent; the child's pid.
    Parent(i32),
    /// We are the child.
    Child,
}

/// `fork()`: the daemon forks per connection so each one can chroot and
/// change uid/gid for its module, and a crash or hang of one connection
/// never touches the listener.
pub fn fork() -> io::Result<Fork> {
    // SAFETY: fork has no preconditions; the daemon's accept loop is
    // single-threaded when it forks, so the child inherits no held locks.
    let pid = unsafe { libc::fork() };
    match pid {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(Fork::Child),
        p => Ok(Fork::Parent(p)),
    }
}

/// Reap every exited child without blocking; returns their pids, so the
/// parent can keep its connection count (`max connections`) right.
pub fn reap_children() -> Vec<i32> {
    let mut out = Vec::new();
    loop {
        let mut status = 0;
        // SAFETY: plain waitpid on any child with WNOHANG.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return out;
        }
        out.push(pid);
    }
}

/// Detach from the terminal as rsync's `become_daemon`: fork (the parent
/// exits 0), `setsid`, `chdir /`, stdin/stdout/stderr on `/dev/null`.
pub fn become_daemon() -> io::Result<()> {
    match fork()? {
        Fork::Parent(_) => std::process::exit(0),
        Fork::Child => {}
    }
    // SAFETY: setsid has no preconditions.
    if unsafe { libc::setsid() } == -1 {
        return Err(io::Error::last_os_error());
    }
    std::env::set_current_dir("/")?;
    let null = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/null")?;
    for fd in 0..3 {
        // SAFETY: dup2 onto the standard descriptors of this process.
        if unsafe { libc::dup2(null.as_raw_fd(), fd) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Ignore `SIGPIPE` (a client that vanishes mid-write must give `EPIPE`,
/// not kill the connection's process before it logs).
pub fn ignore_sigpipe() {
    // SAFETY: setting a signal to SIG_IGN is always sound.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
}

/// `chroot(dir)` then `chdir("/")`: `use chroot = yes`.
pub fn chroot(dir: &Path) -> io::Result<()> {
    rustix::process::chroot(dir)?;
    std::env::set_current_dir("/")?;
    Ok(())
}

/// Drop to `gid`/`uid` (group first, supplementary groups cleared), as
/// rsync does for a module's `uid`/`gid`; a no-op for what is unset.
pub fn set_ids(uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
    if let Some(g) = gid {
        // SAFETY: setgroups/setgid with valid arguments.
        unsafe {
            if libc::geteuid() == 0 && libc::setgroups(1, &g) == -1 {
                return Err(io::Error::last_os_error());
            }
            if libc::setgid(g) == -1 {
                return Err(io::Error::last_os_error());
            }
        }
    }
    if let Some(u) = uid {
        // SAFETY: setuid with a valid argument.
        if unsafe { libc::setuid(u) } == -1 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

/// Whether this process runs as root (the daemon's defaults depend on it).
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// A user name or number to a uid (`uid = nobody` or `uid = 65534`).
pub fn lookup_uid(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    let c = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 << 10];
    // SAFETY: getpwnam_r with a correctly sized buffer and out pointers.
    unsafe {
        let mut pw: libc::passwd = std::mem::zeroed();
        let mut res = std::ptr::null_mut();
        let r = libc::getpwnam_r(
            c.as_ptr(),
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut res,
        );
        (r == 0 && !res.is_null()).then_some(pw.pw_uid)
    }
}

/// A group name or number to a gid.
pub fn lookup_gid(name: &str) -> Option<u32> {
    if let Ok(n) = name.parse() {
        return Some(n);
    }
    let c = CString::new(name).ok()?;
    let mut buf = vec![0u8; 16 << 10];
    // SAFETY: getgrnam_r with a correctly sized buffer and out pointers.
    unsafe {
        let mut gr: libc::group = std::mem::zeroed();
        let mut res = std::ptr::null_mut();
        let r = libc::getgrnam_r(
            c.as_ptr(),
            &mut gr,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut res,
        );
        (r == 0 && !res.is_null()).then_some(gr.gr_gid)
    }
}

/// The host name of an address (`getnameinfo` with `NI_NAMEREQD`), for
/// `hosts allow` name patterns and log lines; `None` when there is none.
pub fn reverse_lookup(ip: IpAddr) -> Option<String> {
    let sa = std::net::SocketAddr::new(ip, 0);
    let (storage, len) = sockaddr(&sa);
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: storage holds a valid sockaddr of `len` bytes; host is writable.
    let r = unsafe {
        libc::getnameinfo(
            (&raw const storage).cast(),
            len,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if r != 0 {
        return None;
    }
    // SAFETY: getnameinfo NUL-terminates on success.
    let s = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) };
    Some(s.to_string_lossy().into_owned())
}

fn sockaddr(sa: &std::net::SocketAddr) -> (libc::sockaddr_storage, libc::socklen_t) {
    // SAFETY: an all-zero sockaddr_storage is valid.
    let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let len = match sa {
        std::net::SocketAddr::V4(a) => {
            let sin = libc::sockaddr_in {
                sin_family: libc::AF_INET as libc::sa_family_t,
                sin_port: a.port().to_be(),
                sin_addr: libc::in_addr {
                    s_addr: u32::from_ne_bytes(a.ip().octets()),
                },
                sin_zero: [0; 8],
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in.
            unsafe { std::ptr::write((&raw mut st).cast(), sin) };
            std::mem::size_of::<libc::sockaddr_in>()
        }
        std::net::SocketAddr::V6(a) => {
            let sin6 = libc::sockaddr_in6 {
                sin6_family: libc::AF_INET6 as libc::sa_family_t,
                sin6_port: a.port().to_be(),
                sin6_flowinfo: 0,
                sin6_addr: libc::in6_addr {
                    s6_addr: a.ip().octets(),
                },
                sin6_scope_id: a.scope_id(),
            };
            // SAFETY: sockaddr_storage is larger than sockaddr_in6.
            unsafe { std::ptr::write((&raw mut st).cast(), sin6) };
            std::mem::size_of::<libc::sockaddr_in6>()
        }
    };
    (st, len as libc::socklen_t)
}

/// Readiness of one descriptor after [`poll`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Ready {
    /// Readable (or hung up / in error: a read will tell).
    pub read: bool,
    /// Writable.
    pub write: bool,
}

/// `poll(2)` on descriptors with (want read, want write); `None` timeout
/// waits forever. Returns the readiness of each, all false on timeout.
pub fn poll(
    fds: &[(BorrowedFd<'_>, bool, bool)],
    timeout: Option<Duration>,
) -> io::Result<Vec<Ready>> {
    let mut p: Vec<libc::pollfd> = fds
        .iter()
        .map(|(fd, r, w)| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: if *r { libc::POLLIN } else { 0 } | if *w { libc::POLLOUT } else { 0 },
            revents: 0,
        })
        .collect();
    let ms = timeout.map_or(-1, |t| t.as_millis().min(i32::MAX as u128) as i32);
    loop {
        // SAFETY: p is a valid array of pollfd of the given length.
        let n = unsafe { libc::poll(p.as_mut_ptr(), p.len() as libc::nfds_t, ms) };
        if n >= 0 {
            break;
        }
        let e = io::Error::last_os_error();
        if e.kind() != io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
    let bad = libc::POLLHUP | libc::POLLERR | libc::POLLNVAL;
    Ok(p.iter()
        .map(|q| Ready {
            read: q.revents & (libc::POLLIN | bad) != 0,
            write: q.revents & (libc::POLLOUT | bad) != 0,
        })
        .collect())
}

/// The first byte waiting on a socket, without consuming it (`MSG_PEEK`):
/// the daemon tells a TLS ClientHello (0x16) from resync's plain magic.
/// `None` when the peer closed without sending anything.
pub fn peek_byte(fd: BorrowedFd<'_>) -> io::Result<Option<u8>> {
    let mut b = [0u8; 1];
    loop {
        // SAFETY: recv into a 1-byte buffer.
        let n = unsafe { libc::recv(fd.as_raw_fd(), b.as_mut_ptr().cast(), 1, libc::MSG_PEEK) };
        match n {
            1 => return Ok(Some(b[0])),
            0 => return Ok(None),
            _ => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }
}

/// Open `rel` (relative, already checked for `..` and `/`) below `root`
/// with `openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`: a symlink
/// anywhere on the way that leads out of the module fails with `EXDEV`.
/// This is the daemon's path jail when it does not chroot.
pub fn open_beneath(root: BorrowedFd<'_>, rel: &Path) -> io::Result<OwnedFd> {
    use rustix::fs::{Mode, OFlags, ResolveFlags};
    let fd = rustix::fs::openat2(
        root,
        rel,
        OFlags::PATH | OFlags::CLOEXEC,
        Mode::empty(),
        ResolveFlags::BENEATH | ResolveFlags::NO_MAGICLINKS,
    )?;
    Ok(fd)
}

/// Claim one of `max` connection slots of a module in its `lock file`, as
/// rsync's `claim_connection`: slot `i` is a write lock on bytes
/// `4i..4i+4`; the kernel drops it when this process exits, so a crashed
/// connection never leaks a slot. `false` when every slot is taken.
pub fn claim_slot(lock: &Path, max: u32) -> io::Result<bool> {
    let f = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(lock)?;
    for i in 0..max {
        // SAFETY: an all-zero flock is valid; fcntl gets a valid pointer.
        let mut fl: libc::flock = unsafe { std::mem::zeroed() };
        fl.l_type = libc::F_WRLCK as libc::c_short;
        fl.l_whence = libc::SEEK_SET as libc::c_short;
        fl.l_start = i64::from(i) * 4;
        fl.l_len = 4;
        // SAFETY: F_SETLK with a valid flock on an open descriptor.
        if unsafe { libc::fcntl(f.as_raw_fd(), libc::F_SETLK, &fl) } == 0 {
            // Keep the descriptor (and so the lock) until the process exits.
            std::mem::forget(f);
            return Ok(true);
        }
    }
    Ok(false)
}

/// Close the listening socket in a connection's child: the child must not
/// keep the daemon's port open after the daemon itself is gone (a restarted
/// daemon could not bind it, and clients would queue on a dead listener).
/// The child never drops the listener (it exits), so there is no double close.
pub fn close_listener(l: &std::net::TcpListener) {
    // SAFETY: closes a descriptor this process owns and will not use again.
    unsafe {
        libc::close(l.as_raw_fd());
    }
}

/// Connect to `to` from the local address `from` (`--address`), within
/// `timeout` if given: std's `TcpStream` cannot bind before connecting.
pub fn connect_from(
    from: IpAddr,
    to: std::net::SocketAddr,
    timeout: Option<Duration>,
) -> io::Result<std::net::TcpStream> {
    use std::os::fd::FromRawFd;
    let family = if to.is_ipv4() {
        libc::AF_INET
    } else {
        libc::AF_INET6
    };
    if from.is_ipv4() != to.is_ipv4() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "--address and the daemon's address are of different families",
        ));
    }
    // SAFETY: socket(2) with constant arguments.
    let fd = unsafe { libc::socket(family, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fd is a new socket this function owns from here on.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    let (local, llen) = sockaddr(&std::net::SocketAddr::new(from, 0));
    // SAFETY: local holds a valid sockaddr of llen bytes.
    if unsafe { libc::bind(fd, (&raw const local).cast(), llen) } < 0 {
        return Err(io::Error::last_os_error());
    }
    let stream = std::net::TcpStream::from(owned);
    stream.set_nonblocking(timeout.is_some())?;
    let (remote, rlen) = sockaddr(&to);
    // SAFETY: remote holds a valid sockaddr of rlen bytes.
    if unsafe { libc::connect(fd, (&raw const remote).cast(), rlen) } < 0 {
        let e = io::Error::last_os_error();
        if e.raw_os_error() != Some(libc::EINPROGRESS) {
            return Err(e);
        }
        let r = poll(&[(stream.as_fd(), false, true)], timeout)?;
        if !r[0].write {
            return Err(io::Error::from_raw_os_error(libc::ETIMEDOUT));
        }
        if let Some(e) = stream.take_error()? {
            return Err(e);
        }
    }
    stream.set_nonblocking(false)?;
    Ok(stream)
}
