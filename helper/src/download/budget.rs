//! The global connection budget shared by every download of a phase: a
//! connection token is taken before each piece and given back after it, and
//! a waiting download of a smaller artifact is served first. So the smallest
//! model gets the connections it can use, and larger ones use the rest and
//! carry on when it is done.

use std::sync::{Condvar, Mutex};
use std::time::Duration;

#[derive(Debug)]
pub struct Budget {
    st: Mutex<(usize, Vec<u64>)>,
    cv: Condvar,
}

pub struct Token<'a>(&'a Budget);

impl Drop for Token<'_> {
    fn drop(&mut self) {
        let mut g = self.0.st.lock().unwrap_or_else(|p| p.into_inner());
        g.0 += 1;
        self.0.cv.notify_all();
    }
}

impl Budget {
    pub fn new(n: usize) -> Budget {
        Budget {
            st: Mutex::new((n.max(1), Vec::new())),
            cv: Condvar::new(),
        }
    }

    /// Wait for a connection; `prio` smaller is served first. `None` once
    /// `cancelled` says so.
    pub fn acquire(&self, prio: u64, cancelled: impl Fn() -> bool) -> Option<Token<'_>> {
        let mut g = self.st.lock().unwrap_or_else(|p| p.into_inner());
        g.1.push(prio);
        loop {
            let first = g.1.iter().copied().min() == Some(prio);
            if g.0 > 0 && first {
                g.0 -= 1;
                if let Some(i) = g.1.iter().position(|p| *p == prio) {
                    g.1.swap_remove(i);
                }
                return Some(Token(self));
            }
            if cancelled() {
                if let Some(i) = g.1.iter().position(|p| *p == prio) {
                    g.1.swap_remove(i);
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
}
