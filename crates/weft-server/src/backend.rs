//! The small interface an event-loop backend implements: readiness-based non-blocking TCP.
//! The native backend uses epoll (through mio); the WASI backend uses `wasi:sockets` and
//! `wasi:io/poll`. The loop above it ([`crate::event_loop`]) is the same for both.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

/// Interrupts a backend's wait from any thread.
pub type WakeFn = Box<dyn Fn() + Send + Sync>;

/// Identifies one accepted connection inside a backend.
pub type Token = usize;

/// What a wait reported about one connection. Readiness is a hint: the loop tries the
/// operation and a `WouldBlock` clears it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Readiness {
    pub token: Token,
    pub readable: bool,
    pub writable: bool,
    /// The peer's FIN (or an error) is already queued behind any data: reads must go on until
    /// one reports it, even after a short read.
    pub read_closed: bool,
}

/// The result of a non-blocking read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadOutcome {
    Data(usize),
    WouldBlock,
    Eof,
}

pub trait Backend {
    /// The monotonic clock the loop's deadlines use (a test backend simulates it).
    fn now(&self) -> Instant {
        Instant::now()
    }

    /// The wall clock, for the `Date` field.
    fn wall_clock(&self) -> SystemTime {
        SystemTime::now()
    }

    /// Waits for readiness or until `timeout`. Fills `ready` with the connections that became
    /// ready and returns whether the listener has connections to accept. With `accept` false
    /// the listener is not watched (the loop is backing off or full): a pending connection
    /// must not end the wait, or the loop would spin.
    fn wait(
        &mut self,
        timeout: Option<Duration>,
        accept: bool,
        ready: &mut Vec<Readiness>,
    ) -> io::Result<bool>;

    /// Accepts one connection; `Ok(None)` when none is pending.
    fn accept(&mut self) -> io::Result<Option<(Token, SocketAddr)>>;

    fn read(&mut self, token: Token, buf: &mut [u8]) -> io::Result<ReadOutcome>;

    /// Writes a prefix of `data`; `Ok(0)` means the socket cannot take more now.
    fn write(&mut self, token: Token, data: &[u8]) -> io::Result<usize>;

    /// Tells the backend what the loop waits for on this connection (poll-based backends only
    /// subscribe to what is wanted; edge-triggered ones may ignore it).
    fn set_interest(&mut self, token: Token, read: bool, write: bool);

    /// Sends FIN after everything written so far.
    fn shutdown_write(&mut self, token: Token);

    /// Releases the connection.
    fn close(&mut self, token: Token);

    /// Connections closed by the loop that the backend still holds (their resources cannot be
    /// released yet); they count against the loop's connection limit.
    fn parked(&self) -> usize {
        0
    }

    /// Stops accepting new connections (graceful shutdown).
    fn stop_listening(&mut self);

    /// A function that makes a `wait` in progress (or the next one) return early, callable
    /// from other threads; `None` for a single-threaded backend, whose loop checks for
    /// wake-ups before it waits.
    fn waker(&self) -> Option<WakeFn> {
        None
    }
}
