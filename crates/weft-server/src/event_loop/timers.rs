//! The loop's timers: one min-heap of (deadline, connection) entries, so a turn finds the
//! connections whose deadline passed without looking at the others (100,000 idle connections
//! each with an idle deadline must not make every expiry walk them all).
//!
//! Entries are filed lazily: a connection is filed again only when its deadline comes before
//! the one it is filed under (`Conn::scheduled`); an entry that comes due for a connection
//! whose deadline moved later is filed again at the new time, and entries of closed
//! connections are dropped when they come up.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::backend::Token;

#[derive(Default)]
pub(super) struct Timers {
    heap: BinaryHeap<Reverse<(Instant, Token)>>,
}

impl Timers {
    /// The earliest entry.
    pub(super) fn next(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((t, _))| *t)
    }

    /// Files `token` under `deadline` unless it is already filed at that time or earlier.
    pub(super) fn schedule(
        &mut self,
        token: Token,
        scheduled: &mut Option<Instant>,
        deadline: Option<Instant>,
    ) {
        let Some(deadline) = deadline else {
            return;
        };
        if scheduled.is_none_or(|s| deadline < s) {
            self.heap.push(Reverse((deadline, token)));
            *scheduled = Some(deadline);
        }
    }

    /// Takes an entry due by `now`: its time and connection. The caller clears the
    /// connection's `scheduled` when it is this time, then serves the connection or files it
    /// again.
    pub(super) fn pop_due(&mut self, now: Instant) -> Option<(Instant, Token)> {
        match self.heap.peek() {
            Some(Reverse((t, _))) if *t <= now => self.heap.pop().map(|Reverse(entry)| entry),
            _ => None,
        }
    }
}
