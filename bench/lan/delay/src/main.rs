//! `nfq-delay`: hold every packet of an iptables NFQUEUE for a fixed time,
//! then accept it.
//!
//! Why: the benchmark machine's kernel has no `netem`, so the LAN and WAN
//! profiles of `bench/lan/` add their one-way delay here instead. One
//! instance runs in each network namespace on the INPUT chain (the receiving
//! side), so a 0.25 ms delay per side gives a 0.5 ms round trip.
//!
//! Packets are queued with their metadata only (copy range 0: the payload
//! never crosses into user space) and GSO packets are taken whole, so a
//! 1 Gbit/s stream costs a few thousand verdicts per second, not 80k.
//! The delay is constant, so the packets are due in arrival order and one
//! FIFO suffices; the loop sleeps in `ppoll` until the next packet is due or
//! a new one arrives.
//!
//! Usage: `nfq-delay QUEUE DELAY_US` (runs until SIGTERM/SIGINT, then prints
//! the number of packets it delayed).

use nfq::{Queue, Verdict};
use std::collections::VecDeque;
use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::Relaxed);
}

/// The netlink socket that `Queue::open` made (the crate does not expose its
/// descriptor, and we need it for `ppoll`): the one socket this process has.
fn socket_fd() -> io::Result<i32> {
    for e in std::fs::read_dir("/proc/self/fd")? {
        let e = e?;
        let target = std::fs::read_link(e.path()).unwrap_or_default();
        if target.to_string_lossy().starts_with("socket:")
            && let Some(fd) = e.file_name().to_str().and_then(|n| n.parse().ok())
        {
            return Ok(fd);
        }
    }
    Err(io::Error::other("no netlink socket among the open descriptors"))
}

fn main() -> io::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: nfq-delay QUEUE DELAY_US");
        std::process::exit(1);
    }
    let num: u16 = args[1].parse().expect("queue number");
    let delay = Duration::from_micros(args[2].parse().expect("delay in microseconds"));

    let mut queue = Queue::open()?;
    let fd = socket_fd()?;
    queue.bind(num)?;
    queue.set_copy_range(num, 0)?;
    queue.set_recv_gso(num, true)?;
    queue.set_queue_max_len(num, 1 << 16)?;
    queue.set_fail_open(num, true)?;
    queue.set_nonblocking(true);
    // Wake up on time: no timer slack (the default 50 us is a fifth of the
    // LAN delay). bench/lan/netns.sh also runs us with a real-time priority,
    // so compiler or benchmark load cannot hold packets longer.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1 as libc::c_ulong) };
    // A deep socket buffer so bursts are not lost while we sleep.
    let size: libc::c_int = 64 << 20;
    unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_RCVBUFFORCE,
            &size as *const _ as *const libc::c_void,
            std::mem::size_of_val(&size) as libc::socklen_t,
        );
        libc::signal(libc::SIGTERM, on_signal as *const () as libc::sighandler_t);
        libc::signal(libc::SIGINT, on_signal as *const () as libc::sighandler_t);
    }

    let mut held: VecDeque<(Instant, nfq::Message)> = VecDeque::new();
    let mut count: u64 = 0;
    while !STOP.load(Ordering::Relaxed) {
        let now = Instant::now();
        while held.front().is_some_and(|(due, _)| *due <= now) {
            let (_, mut msg) = held.pop_front().unwrap();
            msg.set_verdict(Verdict::Accept);
            queue.verdict(msg)?;
            count += 1;
        }
        let timeout = held.front().map(|(due, _)| due.saturating_duration_since(now));
        let ts = timeout.map(|t| libc::timespec {
            tv_sec: t.as_secs() as libc::time_t,
            tv_nsec: t.subsec_nanos() as libc::c_long,
        });
        let mut pfd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let tsp = ts.as_ref().map_or(std::ptr::null(), |t| t as *const _);
        let r = unsafe { libc::ppoll(&mut pfd, 1, tsp, std::ptr::null()) };
        if r < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        if r > 0 {
            let arrived = Instant::now();
            loop {
                match queue.recv() {
                    Ok(msg) => held.push_back((arrived + delay, msg)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                    Err(e) if e.raw_os_error() == Some(libc::ENOBUFS) => break,
                    Err(e) => return Err(e),
                }
            }
        }
    }
    for (_, mut msg) in held {
        msg.set_verdict(Verdict::Accept);
        let _ = queue.verdict(msg);
    }
    eprintln!("nfq-delay: queue {num}: {count} packets delayed by {delay:?}");
    Ok(())
}
