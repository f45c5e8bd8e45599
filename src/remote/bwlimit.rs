//! `--bwlimit=RATE`: rsync's write throttle (`io.c`'s `sleep_for_bwlimit`)
//! on the bytes one side writes to the transport.
//!
//! Why rsync's arithmetic and not a token bucket: the same rate gives the
//! same pacing as rsync (sleep only once at least 1/10 s of data is owed,
//! credit the time spent between writes, writes of at most 1/8 s of data).
//! The clock is a trait so the arithmetic is unit-tested without sleeping.

use std::time::{Duration, Instant};

/// Microseconds per second.
const ONE_SEC: i64 = 1_000_000;

/// Time for the limiter: now, and a way to wait.
pub trait Clock: Send {
    /// Time since an arbitrary fixed point.
    fn now(&self) -> Duration;
    /// Wait `d`.
    fn sleep(&mut self, d: Duration);
}

/// The real clock.
pub struct SystemClock(Instant);

impl Default for SystemClock {
    fn default() -> Self {
        SystemClock(Instant::now())
    }
}

impl Clock for SystemClock {
    fn now(&self) -> Duration {
        self.0.elapsed()
    }
    fn sleep(&mut self, d: Duration) {
        std::thread::sleep(d);
    }
}

/// A rate limit in KiB/s (rsync's unit for `bwlimit`) and what has been
/// written but not yet paid for in time.
pub struct BwLimit<C: Clock = SystemClock> {
    kib: i64,
    clock: C,
    /// Bytes written ahead of the rate.
    owed: i64,
    /// When the last accounting ended (None before the first write).
    prior: Option<Duration>,
}

impl BwLimit<SystemClock> {
    /// A limiter at `kib` KiB/s on the real clock (`kib` > 0).
    pub fn new(kib: u64) -> Self {
        BwLimit::with_clock(kib, SystemClock::default())
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

impl<C: Clock> BwLimit<C> {
    /// A limiter at `kib` KiB/s on `clock`.
    pub fn with_clock(kib: u64, clock: C) -> Self {
        BwLimit {
            kib: i64::try_from(kib.max(1)).unwrap_or(i64::MAX),
            clock,
            owed: 0,
            prior: None,
        }
    }

    /// The largest single write (rsync's `bwlimit_writemax`: 1/8 s of data,
    /// at least 512 bytes), so the pacing stays smooth.
    pub fn write_max(&self) -> usize {
        usize::try_from(self.kib.saturating_mul(128))
            .unwrap_or(usize::MAX)
            .max(512)
    }

    /// `n` bytes were just written: sleep as long as the rate requires.
    pub fn wrote(&mut self, n: usize) {
        let per_kib = ONE_SEC / 1024;
        self.owed = self
            .owed
            .saturating_add(i64::try_from(n).unwrap_or(i64::MAX));
        let start = self.clock.now();
        if let Some(p) = self.prior {
            let elapsed = micros(start.saturating_sub(p));
            self.owed = self
                .owed
                .saturating_sub(elapsed.saturating_mul(self.kib) / per_kib)
                .max(0);
        }
        let sleep = self.owed.saturating_mul(per_kib) / self.kib;
        if sleep < ONE_SEC / 10 {
            self.prior = Some(start);
            return;
        }
        self.clock.sleep(Duration::from_micros(sleep as u64));
        let end = self.clock.now();
        self.prior = Some(end);
        let slept = micros(end.saturating_sub(start));
        // Slept too long: the extra time is credit; too short: still owed.
        self.owed = (sleep - slept).saturating_mul(self.kib) / per_kib;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// A clock that only moves when told: by sleeping, or by `pass`.
    #[derive(Clone, Default)]
    struct Fake(Arc<Mutex<(Duration, Vec<Duration>)>>);

    impl Fake {
        fn pass(&self, d: Duration) {
            self.0.lock().unwrap().0 += d;
        }
        fn slept(&self) -> Vec<Duration> {
            self.0.lock().unwrap().1.clone()
        }
    }

    impl Clock for Fake {
        fn now(&self) -> Duration {
            self.0.lock().unwrap().0
        }
        fn sleep(&mut self, d: Duration) {
            let mut g = self.0.lock().unwrap();
            g.0 += d;
            g.1.push(d);
        }
    }

    #[test]
    fn writes_under_a_tenth_of_a_second_do_not_sleep() {
        let f = Fake::default();
        let mut l = BwLimit::with_clock(100, f.clone());
        // 100 KiB/s: 10 KiB is 0.1 s; 9 KiB is under it.
        l.wrote(9 * 1024);
        assert!(f.slept().is_empty());
        // The next KiB and a bit reach 0.1 s owed: one short sleep.
        l.wrote(1100);
        assert_eq!(f.slept().len(), 1);
    }

    #[test]
    fn the_total_sleep_matches_the_rate() {
        let f = Fake::default();
        let mut l = BwLimit::with_clock(100, f.clone());
        assert_eq!(l.write_max(), 12_800);
        let mut left = 1 << 20;
        while left > 0 {
            let n = left.min(12_800);
            l.wrote(n);
            left -= n;
        }
        let slept = f.slept();
        let total: Duration = slept.iter().sum();
        // 1 MiB at 100 KiB/s is 10.24 s; the last < 0.1 s may stay owed.
        let secs = total.as_secs_f64();
        assert!((10.0..=10.25).contains(&secs), "{total:?}");
        // Each sleep pays for about 0.1 s of data, never a burst of seconds.
        assert!(slept.iter().all(|d| *d < Duration::from_millis(250)));
    }

    #[test]
    fn time_spent_between_writes_is_credited() {
        let f = Fake::default();
        let mut l = BwLimit::with_clock(10, f.clone());
        l.wrote(512);
        // 10 KiB/s; 2 s pass doing other things: 20 KiB are paid for.
        f.pass(Duration::from_secs(2));
        l.wrote(10 * 1024);
        assert!(f.slept().is_empty(), "{:?}", f.slept());
        // Without the pause the same bytes cost about a second.
        let g = Fake::default();
        let mut m = BwLimit::with_clock(10, g.clone());
        m.wrote(512);
        m.wrote(10 * 1024);
        let s: f64 = g.slept().iter().map(Duration::as_secs_f64).sum();
        assert!((1.0..=1.1).contains(&s), "{s}");
    }

    #[test]
    fn a_burst_is_paid_for_in_one_sleep() {
        let f = Fake::default();
        let mut l = BwLimit::with_clock(1024, f.clone());
        // 1 MiB/s, 512 KiB at once: half a second.
        l.wrote(512 << 10);
        let slept = f.slept();
        assert_eq!(slept.len(), 1);
        let s = slept[0].as_secs_f64();
        assert!((0.49..=0.51).contains(&s), "{s}");
    }

    #[test]
    fn the_largest_write_is_an_eighth_of_a_second_but_512_bytes_at_least() {
        assert_eq!(BwLimit::with_clock(1, Fake::default()).write_max(), 512);
        assert_eq!(BwLimit::with_clock(4, Fake::default()).write_max(), 512);
        assert_eq!(BwLimit::with_clock(8, Fake::default()).write_max(), 1024);
        assert_eq!(
            BwLimit::with_clock(1024, Fake::default()).write_max(),
            131_072
        );
    }
}
