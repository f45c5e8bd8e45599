//! A bounded queue between two threads that wakes a blocked producer only
//! once the queue has drained to half, not for every item taken.
//!
//! Why not `std::sync::mpsc::sync_channel` (or crossbeam's): with the queue
//! full, every `recv` wakes the blocked sender, which adds one item and
//! blocks again. On two cores the woken thread preempts the one that woke
//! it, so the two ping-pong once per item: on a daemon transfer of the linux
//! tree the receiver's data and request queues cost ~140k context switches
//! (a sixth of the receiving side's CPU time). Neither channel has a low
//! watermark, hence these few lines.

use std::collections::VecDeque;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

struct State<T> {
    q: VecDeque<T>,
    /// The sending half is gone: `recv` drains, then fails.
    closed: bool,
    /// The receiving half is gone: `send` fails.
    dropped: bool,
    /// The producer waits for room.
    producer_waits: bool,
}

struct Shared<T> {
    state: Mutex<State<T>>,
    not_empty: Condvar,
    room: Condvar,
    cap: usize,
}

impl<T> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The sending half of a [`pipe`].
pub struct PipeSender<T>(Arc<Shared<T>>);

/// The receiving half of a [`pipe`].
pub struct PipeReceiver<T>(Arc<Shared<T>>);

/// Why `recv` returned nothing: the sender is gone and the queue is empty.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed;

/// What `try_recv` / `try_send` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Try<T> {
    /// Nothing to take / no room (the item comes back).
    Wait(T),
    /// The other half is gone (the item comes back).
    Gone(T),
}

/// A queue of at most `cap` items (at least 2).
pub fn pipe<T>(cap: usize) -> (PipeSender<T>, PipeReceiver<T>) {
    let s = Arc::new(Shared {
        state: Mutex::new(State {
            q: VecDeque::with_capacity(cap.min(1024)),
            closed: false,
            dropped: false,
            producer_waits: false,
        }),
        not_empty: Condvar::new(),
        room: Condvar::new(),
        cap: cap.max(2),
    });
    (PipeSender(Arc::clone(&s)), PipeReceiver(s))
}

impl<T> PipeSender<T> {
    /// Add `v`, waiting while the queue is full; `Err(v)` when the
    /// receiver is gone.
    pub fn send(&self, v: T) -> Result<(), T> {
        let mut st = self.0.lock();
        while st.q.len() >= self.0.cap && !st.dropped {
            st.producer_waits = true;
            st = self.0.room.wait(st).unwrap_or_else(|e| e.into_inner());
        }
        self.push(st, v)
    }

    /// Add `v` if there is room now.
    pub fn try_send(&self, v: T) -> Result<(), Try<T>> {
        let st = self.0.lock();
        if st.dropped {
            return Err(Try::Gone(v));
        }
        if st.q.len() >= self.0.cap {
            return Err(Try::Wait(v));
        }
        self.push(st, v).map_err(Try::Gone)
    }

    fn push(&self, mut st: MutexGuard<'_, State<T>>, v: T) -> Result<(), T> {
        if st.dropped {
            return Err(v);
        }
        st.q.push_back(v);
        let was_empty = st.q.len() == 1;
        drop(st);
        if was_empty {
            self.0.not_empty.notify_one();
        }
        Ok(())
    }
}

impl<T> Drop for PipeSender<T> {
    fn drop(&mut self) {
        self.0.lock().closed = true;
        self.0.not_empty.notify_one();
    }
}

impl<T> PipeReceiver<T> {
    /// The next item, waiting for one; `Err` once the sender is gone and
    /// everything it sent has been taken.
    pub fn recv(&self) -> Result<T, Closed> {
        let mut st = self.0.lock();
        loop {
            if let Some(v) = st.q.pop_front() {
                self.taken(st);
                return Ok(v);
            }
            if st.closed {
                return Err(Closed);
            }
            st = self.0.not_empty.wait(st).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// The next item if there is one now.
    pub fn try_recv(&self) -> Result<T, Try<()>> {
        let mut st = self.0.lock();
        match st.q.pop_front() {
            Some(v) => {
                self.taken(st);
                Ok(v)
            }
            None if st.closed => Err(Try::Gone(())),
            None => Err(Try::Wait(())),
        }
    }

    /// Wake a waiting producer once the queue is down to half.
    fn taken(&self, mut st: MutexGuard<'_, State<T>>) {
        if st.producer_waits && st.q.len() <= self.0.cap / 2 {
            st.producer_waits = false;
            drop(st);
            self.0.room.notify_one();
        }
    }
}

impl<T> Drop for PipeReceiver<T> {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.dropped = true;
        st.q.clear();
        drop(st);
        self.0.room.notify_one();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn items_arrive_in_order_and_end_after_the_sender_goes() {
        let (tx, rx) = pipe(4);
        let t = std::thread::spawn(move || {
            for i in 0..1000u32 {
                tx.send(i).unwrap();
            }
        });
        let got: Vec<u32> = std::iter::from_fn(|| rx.recv().ok()).collect();
        t.join().unwrap();
        assert_eq!(got, (0..1000).collect::<Vec<_>>());
        assert_eq!(rx.recv(), Err(Closed));
        assert_eq!(rx.try_recv(), Err(Try::Gone(())));
    }

    #[test]
    fn a_full_pipe_holds_the_producer_until_it_drains_to_half() {
        let (tx, rx) = pipe(8);
        for i in 0..8 {
            tx.send(i).unwrap();
        }
        assert_eq!(tx.try_send(99), Err(Try::Wait(99)));
        let (done_t, done_r) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            tx.send(8).unwrap();
            done_t.send(()).unwrap();
            tx
        });
        while !rx.0.lock().producer_waits {
            std::thread::sleep(Duration::from_millis(1));
        }
        // Taking 1..3 items leaves more than half: the producer still waits.
        for want in 0..3 {
            assert_eq!(rx.recv(), Ok(want));
        }
        assert!(done_r.recv_timeout(Duration::from_millis(100)).is_err());
        // The 4th take leaves 4 = half: it goes on.
        assert_eq!(rx.recv(), Ok(3));
        done_r.recv_timeout(Duration::from_secs(5)).unwrap();
        let tx = t.join().unwrap();
        let rest: Vec<i32> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
        assert_eq!(rest, vec![4, 5, 6, 7, 8]);
        drop(tx);
        assert_eq!(rx.recv(), Err(Closed));
    }

    #[test]
    fn a_gone_receiver_fails_the_sender_even_a_waiting_one() {
        let (tx, rx) = pipe(2);
        tx.send(1).unwrap();
        tx.send(2).unwrap();
        let t = std::thread::spawn(move || tx.send(3));
        std::thread::sleep(Duration::from_millis(50));
        drop(rx);
        assert_eq!(t.join().unwrap(), Err(3));
    }

    #[test]
    fn an_empty_pipe_wakes_a_waiting_consumer() {
        let (tx, rx) = pipe::<u8>(16);
        let t = std::thread::spawn(move || rx.recv());
        std::thread::sleep(Duration::from_millis(50));
        tx.send(7).unwrap();
        assert_eq!(t.join().unwrap(), Ok(7));
    }
}
