//! The global connection budget shared by every download of a phase: a
//! connection token is taken before each piece and given back after it, and
//! a waiting download of a smaller artifact is served first. So the smallest
//! model gets the connections it can use, and larger ones use the rest and
//! carry on when it is done. Downloads started together are announced
//! first (`expect`), so the one whose thread happens to ask first does not
//! take a scarce connection from a smaller one that has not asked yet.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// How long an announced download that never asks holds back the others
/// (one that failed before its first piece, or was found in the cache).
const EXPECT_FOR: Duration = Duration::from_secs(2);

#[derive(Debug)]
struct Queue {
    free: usize,
    waiting: Vec<u64>,
    expected: Vec<(u64, Instant)>,
}

#[derive(Debug)]
pub struct Budget {
    st: Mutex<Queue>,
    cv: Condvar,
}

pub struct Token<'a>(&'a Budget);

impl Drop for Token<'_> {
    fn drop(&mut self) {
        let mut g = self.0.st.lock().unwrap_or_else(|p| p.into_inner());
        g.free += 1;
        self.0.cv.notify_all();
    }
}

impl Budget {
    pub fn new(n: usize) -> Budget {
        Budget {
            st: Mutex::new(Queue {
                free: n.max(1),
                waiting: Vec::new(),
                expected: Vec::new(),
            }),
            cv: Condvar::new(),
        }
    }

    /// A download of priority `prio` will ask soon: until it does (or for
    /// `EXPECT_FOR`), a larger one is not served before it.
    pub fn expect(&self, prio: u64) {
        let mut g = self.st.lock().unwrap_or_else(|p| p.into_inner());
        g.expected.push((prio, Instant::now()));
    }

    /// Wait for a connection; `prio` smaller is served first. `None` once
    /// `cancelled` says so.
    pub fn acquire(&self, prio: u64, cancelled: impl Fn() -> bool) -> Option<Token<'_>> {
        let mut g = self.st.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(i) = g.expected.iter().position(|e| e.0 == prio) {
            g.expected.swap_remove(i);
        }
        g.waiting.push(prio);
        loop {
            g.expected.retain(|e| e.1.elapsed() < EXPECT_FOR);
            let smallest = g
                .waiting
                .iter()
                .copied()
                .chain(g.expected.iter().map(|e| e.0))
                .min();
            if g.free > 0 && smallest == Some(prio) {
                g.free -= 1;
                if let Some(i) = g.waiting.iter().position(|p| *p == prio) {
                    g.waiting.swap_remove(i);
                }
                return Some(Token(self));
            }
            if cancelled() {
                if let Some(i) = g.waiting.iter().position(|p| *p == prio) {
                    g.waiting.swap_remove(i);
                }
                self.cv.notify_all();
                return None;
            }
            g = self
                .cv
                .wait_timeout(g, Duration::from_millis(50))
                .map(|r| r.0)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smaller_priority_is_served_first() {
        let b = Budget::new(1);
        let t = b.acquire(5, || false).unwrap();
        let order = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            for p in [30u64, 10, 20] {
                let (b, order) = (&b, &order);
                s.spawn(move || {
                    let _t = b.acquire(p, || false).unwrap();
                    order.lock().unwrap().push(p);
                    std::thread::sleep(Duration::from_millis(20));
                });
            }
            std::thread::sleep(Duration::from_millis(100));
            drop(t);
        });
        assert_eq!(*order.lock().unwrap(), vec![10, 20, 30]);
    }

    #[test]
    fn an_expected_smaller_download_goes_first_though_it_asks_last() {
        let b = Budget::new(1);
        b.expect(10);
        b.expect(30);
        let order = Mutex::new(Vec::new());
        std::thread::scope(|s| {
            s.spawn(|| {
                let _t = b.acquire(30, || false);
                order.lock().unwrap().push(30);
            });
            std::thread::sleep(Duration::from_millis(150));
            s.spawn(|| {
                let _t = b.acquire(10, || false);
                order.lock().unwrap().push(10);
            });
        });
        assert_eq!(*order.lock().unwrap(), vec![10, 30]);
    }

    #[test]
    fn an_expected_download_that_never_asks_holds_nothing_back_for_long() {
        let b = Budget::new(1);
        b.expect(1);
        let t0 = Instant::now();
        assert!(b.acquire(5, || false).is_some());
        assert!(t0.elapsed() >= EXPECT_FOR && t0.elapsed() < EXPECT_FOR * 2);
    }
}
