//! The memory budget every worker shares: bytes held by WebSocket sessions in buffers that
//! grow with traffic (a message being received, frames waiting to be sent). Each session's
//! charge is brought up to date after every step, and a session is allowed to grow only into
//! what the others leave, so the sum stays bounded however many sessions there are: a message
//! that does not fit fails its session with 1013 (Try Again Later) instead of exhausting the
//! process (a wasm component that cannot allocate traps, taking every connection with it).
//! HTTP connections need no charge: their buffers are bounded per connection
//! (`Limits::max_buffered`, the loop's high-water mark), and their number by
//! `--max-connections`.

use std::sync::atomic::{AtomicUsize, Ordering};

/// The server's default budget: 128 MiB (room for eight messages of the default 16 MiB limit
/// in flight, well inside a small container).
pub const DEFAULT_MEMORY_BUDGET: usize = 128 << 20;

#[derive(Debug)]
pub struct MemoryBudget {
    limit: usize,
    used: AtomicUsize,
}

impl Default for MemoryBudget {
    fn default() -> MemoryBudget {
        MemoryBudget::new(DEFAULT_MEMORY_BUDGET)
    }
}

impl MemoryBudget {
    pub fn new(limit: usize) -> MemoryBudget {
        MemoryBudget {
            limit,
            used: AtomicUsize::new(0),
        }
    }

    /// Bytes charged now, all holders together.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Replaces a holder's charge `old` by `new`.
    pub fn recharge(&self, old: usize, new: usize) {
        if new > old {
            self.used.fetch_add(new - old, Ordering::Relaxed);
        } else if old > new {
            // A holder never gives back more than it was charged, so this cannot wrap; the
            // saturating update keeps it so even if a caller got that wrong.
            let _ = self
                .used
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |used| {
                    Some(used.saturating_sub(old - new))
                });
        }
    }

    /// What a holder already charged with `own` may hold in all: the limit less what the
    /// others hold.
    pub fn share_of(&self, own: usize) -> usize {
        self.limit.saturating_sub(self.used().saturating_sub(own))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_add_up_and_shares_shrink() {
        let budget = MemoryBudget::new(1000);
        assert_eq!(budget.share_of(0), 1000);
        budget.recharge(0, 300);
        budget.recharge(0, 500);
        assert_eq!(budget.used(), 800);
        assert_eq!(
            budget.share_of(300),
            500,
            "the first holder may grow into 200 more"
        );
        assert_eq!(budget.share_of(0), 200, "a newcomer gets what is left");
        budget.recharge(500, 100);
        assert_eq!(budget.used(), 400);
        budget.recharge(300, 0);
        budget.recharge(100, 0);
        assert_eq!(budget.used(), 0);
        budget.recharge(10, 0);
        assert_eq!(budget.used(), 0, "never wraps");
    }
}
