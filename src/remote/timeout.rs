//! `--timeout=SECONDS` (rsync's I/O timeout): a watchdog that ends the
//! process with rsync's `[ROLE] io timeout after N seconds -- exiting` and
//! exit 30 when the peer has made no progress for that long.
//!
//! Why a watchdog thread and not read timeouts: the transport may be a
//! remote shell's pipes (no `SO_RCVTIMEO`), and the threads that wait on it
//! are blocked in `read`/`write` calls nothing else can interrupt. The
//! transport wrappers of [`super::conn`] record, in an [`Activity`], when a
//! call started waiting and when bytes last moved; the watchdog looks at
//! those. The timeout fires when a read has waited `N` seconds (the peer
//! sent nothing, not even a `Keepalive`), or a write has been blocked for
//! `N` seconds while nothing was received either (the peer stopped reading
//! and talking). A peer that is alive but busy (a receiver scanning a big
//! tree, a slow disk) sends `Keepalive` when it has nothing else to say
//! ([`super::session::Link::start_keepalive`]), so it never trips it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// When one direction of a transport last moved bytes, and whether a call
/// on it is waiting right now.
#[derive(Debug)]
pub struct Activity {
    epoch: Instant,
    /// Milliseconds since `epoch` + 1 when the pending call started; 0 when
    /// no call is pending.
    waiting_since: AtomicU64,
    /// Milliseconds since `epoch` + 1 when a call last moved bytes (or the
    /// activity was created).
    last_moved: AtomicU64,
}

impl Activity {
    /// A fresh record: no call pending, last progress now.
    pub fn new() -> Arc<Activity> {
        Arc::new(Activity {
            epoch: Instant::now(),
            waiting_since: AtomicU64::new(0),
            last_moved: AtomicU64::new(1),
        })
    }

    fn now(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64 + 1
    }

    /// A read or write call starts.
    pub fn enter(&self) {
        self.waiting_since.store(self.now(), Ordering::Relaxed);
    }

    /// The call returned; `moved` when it transferred bytes.
    pub fn leave(&self, moved: bool) {
        if moved {
            self.last_moved.store(self.now(), Ordering::Relaxed);
        }
        self.waiting_since.store(0, Ordering::Relaxed);
    }

    /// How long the pending call has waited (None: no call pending).
    pub fn blocked_for(&self) -> Option<Duration> {
        let since = self.waiting_since.load(Ordering::Relaxed);
        (since != 0).then(|| Duration::from_millis(self.now().saturating_sub(since)))
    }

    /// Time since bytes last moved in this direction.
    pub fn idle_for(&self) -> Duration {
        let last = self.last_moved.load(Ordering::Relaxed);
        Duration::from_millis(self.now().saturating_sub(last))
    }
}

/// Whether a connection whose reading side is `r` and writing side `w` has
/// seen no progress from the peer for `limit` (the watchdog's test, kept
/// apart so it is unit-tested without waiting).
pub fn expired(r: &Activity, w: &Activity, limit: Duration) -> bool {
    let read_stuck = r.blocked_for().is_some_and(|d| d >= limit);
    let write_stuck = w.blocked_for().is_some_and(|d| d >= limit) && r.idle_for() >= limit;
    read_stuck || write_stuck
}

/// The role named in the timeout message; the receiving side becomes
/// rsync's `generator` once its transfer runs (the process that times out
/// in rsync).
static ROLE: Mutex<&str> = Mutex::new("");

/// Name this process's side for the timeout message from now on.
pub fn set_role(role: &'static str) {
    *ROLE.lock().unwrap_or_else(|e| e.into_inner()) = role;
}

/// A running watchdog; dropping it stops the watch.
pub struct Watch {
    stop: Arc<AtomicBool>,
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Watch a connection for `secs` seconds without progress from the peer
/// (None when `secs` is 0: no timeout). On expiry the process prints
/// rsync's two lines and exits 30, as rsync's `check_timeout` does: the
/// threads blocked on the dead peer cannot be woken otherwise.
pub fn watch(secs: u64, role: &'static str, r: Arc<Activity>, w: Arc<Activity>) -> Option<Watch> {
    if secs == 0 {
        return None;
    }
    set_role(role);
    let stop = Arc::new(AtomicBool::new(false));
    let s = Arc::clone(&stop);
    let limit = Duration::from_secs(secs);
    let tick = (limit / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    std::thread::spawn(move || {
        while !s.load(Ordering::Relaxed) {
            std::thread::sleep(tick);
            if s.load(Ordering::Relaxed) {
                return;
            }
            if expired(&r, &w, limit) {
                let role = *ROLE.lock().unwrap_or_else(|e| e.into_inner());
                // The link may be what is stuck: not through a daemon's relay.
                crate::report::stop_relay();
                crate::report::message_bare(&format!(
                    "[{role}] io timeout after {secs} seconds -- exiting"
                ));
                crate::report::exit_message(crate::exit::TIMEOUT, role);
                std::process::exit(crate::exit::TIMEOUT);
            }
        }
    });
    Some(Watch { stop })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(a: &Activity, waiting_ms_ago: Option<u64>, moved_ms_ago: u64) {
        let now = a.now();
        a.waiting_since.store(
            waiting_ms_ago.map_or(0, |d| now.saturating_sub(d).max(1)),
            Ordering::Relaxed,
        );
        a.last_moved
            .store(now.saturating_sub(moved_ms_ago).max(1), Ordering::Relaxed);
    }

    #[test]
    fn a_read_waiting_the_whole_limit_expires() {
        let (r, w) = (Activity::new(), Activity::new());
        std::thread::sleep(Duration::from_millis(30));
        let limit = Duration::from_millis(20);
        at(&r, Some(5), 5);
        assert!(!expired(&r, &w, limit), "a short wait is fine");
        at(&r, Some(25), 25);
        assert!(expired(&r, &w, limit));
        // Not inside a read (busy delivering what came): no timeout.
        at(&r, None, 25);
        assert!(!expired(&r, &w, limit));
    }

    #[test]
    fn a_blocked_write_expires_only_when_nothing_arrives_either() {
        let (r, w) = (Activity::new(), Activity::new());
        std::thread::sleep(Duration::from_millis(30));
        let limit = Duration::from_millis(20);
        at(&w, Some(25), 25);
        at(&r, None, 5);
        assert!(!expired(&r, &w, limit), "keepalives still arrive");
        at(&r, None, 25);
        assert!(expired(&r, &w, limit));
    }

    #[test]
    fn enter_and_leave_track_the_pending_call() {
        let a = Activity::new();
        assert!(a.blocked_for().is_none());
        a.enter();
        assert!(a.blocked_for().is_some());
        a.leave(true);
        assert!(a.blocked_for().is_none());
        assert!(a.idle_for() < Duration::from_secs(1));
        assert!(watch(0, "sender", Activity::new(), Activity::new()).is_none());
    }
}
