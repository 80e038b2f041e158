//! A small table of named deadlines, one table per state machine (quinn-proto's `TimerTable`
//! shape): every deadline a state machine keeps is one named timer here, its next timeout is
//! the earliest one, and all arithmetic is checked (a duration too large to add to the clock
//! means "never", not a panic).

use std::marker::PhantomData;
use std::time::Duration;

use crate::clock::Instant;

/// A named timer of one state machine: an enum whose variants index a [`TimerTable`].
pub(crate) trait TimerName: Copy {
    /// The timer's slot in the table (below the table's size).
    fn index(self) -> usize;
}

/// The deadlines of `N` named timers `T`; `None` is a stopped timer (or one that never fires).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TimerTable<T, const N: usize> {
    deadlines: [Option<Instant>; N],
    names: PhantomData<T>,
}

impl<T: TimerName, const N: usize> Default for TimerTable<T, N> {
    fn default() -> Self {
        TimerTable {
            deadlines: [None; N],
            names: PhantomData,
        }
    }
}

impl<T: TimerName, const N: usize> TimerTable<T, N> {
    /// Starts (or restarts) `timer` to fire `after` from `now`; never, when that overflows.
    pub(crate) fn start(&mut self, timer: T, now: Instant, after: Duration) {
        self.set(timer, now.checked_add(after));
    }

    /// Sets `timer` to fire at `deadline` (`None`: stopped).
    pub(crate) fn set(&mut self, timer: T, deadline: Option<Instant>) {
        if let Some(slot) = self.deadlines.get_mut(timer.index()) {
            *slot = deadline;
        }
    }

    /// Stops `timer`.
    pub(crate) fn stop(&mut self, timer: T) {
        self.set(timer, None);
    }

    /// When `timer` fires, if it runs.
    pub(crate) fn get(&self, timer: T) -> Option<Instant> {
        self.deadlines.get(timer.index()).copied().flatten()
    }

    /// Has `timer` fired by `now`?
    pub(crate) fn expired(&self, timer: T, now: Instant) -> bool {
        self.get(timer).is_some_and(|deadline| now >= deadline)
    }

    /// The earliest deadline of all timers.
    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }
}
