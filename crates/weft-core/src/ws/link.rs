//! The sending side and the life of a WebSocket session: its transmit buffer, closing state,
//! error and timers, with the transitions that change them.

use std::time::Duration;

use crate::clock::Instant;

use super::error::{CloseCode, WsError};
use super::frame::{write_header, OpCode, MAX_CONTROL_PAYLOAD};
use crate::timer::{TimerName, TimerTable};

/// The payload of the pings sent when the peer is idle.
const IDLE_PING_PAYLOAD: &[u8] = b"weft";
/// The longest close reason that fits a control frame after the code.
const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;
/// A message or output buffer larger than this is released once it is empty. An idle session
/// then holds little memory, and the next large message gets a buffer the allocator handed
/// back recently (still in cache) instead of writing into this session's cold one: measured
/// on 50 sessions echoing 16 KiB, server CPU per round trip fell from about 16 to 11 us.
pub(crate) const IDLE_KEEP: usize = 4096;
/// Consumed transmit bytes are removed from the front once there are this many (and they are
/// at least half the buffer), so removal stays amortised.
const COMPACT_AFTER: usize = 64 << 10;

/// The deadlines of a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Timer {
    /// No input for `ping_interval`: the session pings.
    IdlePing,
    /// The idle ping must be followed by input within `ping_timeout`, else Close 1001.
    PingAnswer,
    /// After our Close, the peer's must come within `close_timeout`.
    Close,
    /// Queued output must be taken by the peer within `send_timeout` (restarts with each write).
    Send,
}

impl TimerName for Timer {
    fn index(self) -> usize {
        self as usize
    }
}

/// The durations of the session's timers (from [`WsConfig`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeouts {
    pub(crate) ping_interval: Option<Duration>,
    pub(crate) ping_timeout: Duration,
    pub(crate) close_timeout: Duration,
    pub(crate) send_timeout: Duration,
}

/// The sending side and the session's life: the transmit buffer, whether a Close went out,
/// whether the session is over and why, and the timers. Kept apart from the receive buffers so
/// that an event borrowing a message can be returned while a failure is recorded here.
///
/// Its methods are the session's transitions: the only code that assigns `close_sent`,
/// `closed`, `error` or a timer.
#[derive(Debug)]
pub(crate) struct Link {
    /// Queued bytes; those before `sent` were already transmitted.
    pub(crate) out: Vec<u8>,
    pub(crate) sent: usize,
    pub(crate) close_sent: bool,
    pub(crate) closed: bool,
    pub(crate) error: Option<WsError>,
    /// The time of the call in progress (every public method that can queue output sets it).
    pub(crate) now: Instant,
    pub(crate) timeouts: Timeouts,
    pub(crate) timers: TimerTable<Timer, 4>,
}

impl Link {
    /// The link of a session that starts at `now`.
    pub(crate) fn new(now: Instant, timeouts: Timeouts) -> Link {
        Link {
            out: Vec::new(),
            sent: 0,
            close_sent: false,
            closed: false,
            error: None,
            now,
            timeouts,
            timers: TimerTable::default(),
        }
    }

    /// Call before queueing output: output that was empty starts its send timeout now.
    pub(crate) fn output_starts(&mut self) {
        if self.sent == self.out.len() {
            self.timers
                .start(Timer::Send, self.now, self.timeouts.send_timeout);
        }
    }

    /// `n` queued bytes were written at `now`: the send timeout restarts, or stops when
    /// nothing is left.
    pub(crate) fn output_taken(&mut self, n: usize, now: Instant) {
        self.sent = self.sent.saturating_add(n).min(self.out.len());
        if self.sent == self.out.len() {
            self.timers.stop(Timer::Send);
            self.out.clear();
            self.sent = 0;
            if self.out.capacity() > IDLE_KEEP {
                self.out = Vec::new();
            }
        } else {
            self.timers
                .start(Timer::Send, now, self.timeouts.send_timeout);
            if self.sent >= COMPACT_AFTER && self.sent * 2 >= self.out.len() {
                self.out.drain(..self.sent);
                self.sent = 0;
            }
        }
    }

    /// The queued output will never be taken: it is dropped.
    pub(crate) fn drop_output(&mut self) {
        self.out = Vec::new();
        self.sent = 0;
        self.timers.stop(Timer::Send);
    }

    /// Frees the transmit buffer's memory when nothing is queued in it (taken output already
    /// empties it: see `output_taken`).
    pub(crate) fn release_memory(&mut self) {
        if self.out.is_empty() {
            self.out = Vec::new();
        }
    }

    /// Input arrived: the peer is alive, the idle ping waits again.
    pub(crate) fn input_arrived(&mut self) {
        if !self.close_sent {
            self.timers.stop(Timer::PingAnswer);
            let idle = self.timeouts.ping_interval;
            self.timers.set(
                Timer::IdlePing,
                idle.and_then(|idle| self.now.checked_add(idle)),
            );
        }
    }

    /// Pings an idle peer and waits for any input in answer.
    pub(crate) fn send_idle_ping(&mut self) {
        self.write_frame(OpCode::Ping, false, IDLE_PING_PAYLOAD);
        self.timers.stop(Timer::IdlePing);
        self.timers
            .start(Timer::PingAnswer, self.now, self.timeouts.ping_timeout);
    }

    /// Starts the closing handshake: a Close, then up to `close_timeout` for the peer's.
    pub(crate) fn start_close(&mut self, code: CloseCode, reason: &str) {
        self.write_close(code, reason);
        self.timers
            .start(Timer::Close, self.now, self.timeouts.close_timeout);
    }

    /// The session is over: nothing more is read or sent (queued output still goes out,
    /// within the send timeout).
    pub(crate) fn end(&mut self) {
        self.closed = true;
        self.timers.stop(Timer::IdlePing);
        self.timers.stop(Timer::PingAnswer);
        self.timers.stop(Timer::Close);
    }

    pub(crate) fn write_frame(&mut self, opcode: OpCode, rsv1: bool, payload: &[u8]) {
        self.output_starts();
        self.out.reserve(payload.len() + 10);
        write_header(&mut self.out, opcode, rsv1, payload.len());
        self.out.extend_from_slice(payload);
    }

    /// Queues a Close frame (the reason cut to fit, at a character boundary).
    pub(crate) fn write_close(&mut self, code: CloseCode, reason: &str) {
        let mut end = reason.len().min(MAX_CLOSE_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let reason = reason.get(..end).unwrap_or("");
        self.output_starts();
        let [high, low] = code.as_u16().to_be_bytes();
        write_header(&mut self.out, OpCode::Close, false, 2 + reason.len());
        self.out.extend_from_slice(&[high, low]);
        self.out.extend_from_slice(reason.as_bytes());
        self.close_sent = true;
        self.timers.stop(Timer::IdlePing);
        self.timers.stop(Timer::PingAnswer);
    }

    /// Fails the connection (RFC 6455 section 7.1.7): a Close with the error's code, unless one
    /// was sent already, and the session is over.
    pub(crate) fn fail(&mut self, error: WsError) {
        if !self.close_sent {
            self.write_close(error.close_code(), error.reason());
        }
        self.error = Some(error);
        self.end();
    }
}
