//! Accepting: the back-off after a failed accept and its rate-limited log line.

use std::io::{self, Write};
use std::time::{Duration, Instant};

/// After a failed accept (out of descriptors, most often), accepting pauses this long: the
/// connections waiting in the listen queue are taken when descriptors come back, without a
/// new arrival to wake the loop and without spinning meanwhile.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Accept failures are logged at most once per this period, as a count.
const ACCEPT_LOG_PERIOD: Duration = Duration::from_secs(1);

/// Whether the loop may accept now, and the record of failed accepts.
#[derive(Default)]
pub(super) struct AcceptState {
    /// Accepting pauses until then after a failure.
    pub(super) paused_until: Option<Instant>,
    /// Accepting stopped: the loop is full (connections and refusals).
    pub(super) full: bool,
    /// Accept without waiting for the listener's readiness (an edge may have passed while
    /// the loop was not accepting).
    pub(super) retry: bool,
    /// Failures since the last log line, and when the next line may be written.
    pub(super) failures: u32,
    pub(super) log_after: Option<Instant>,
}

impl AcceptState {
    pub(super) fn may_accept(&self, now: Instant) -> bool {
        !self.full && self.paused_until.is_none_or(|t| now >= t)
    }

    /// A failed accept: pause, and log a summary at most once per period.
    pub(super) fn failed(&mut self, err: &io::Error, now: Instant, log: &mut Vec<u8>) {
        self.paused_until = now.checked_add(ACCEPT_BACKOFF);
        self.failures = self.failures.saturating_add(1);
        if self.log_after.is_none_or(|t| now >= t) {
            let _ = writeln!(
                log,
                "weft: accept failed {} time(s) in the last second: {err} (retrying every {} ms)",
                self.failures,
                ACCEPT_BACKOFF.as_millis()
            );
            self.failures = 0;
            self.log_after = now.checked_add(ACCEPT_LOG_PERIOD);
        }
    }
}
