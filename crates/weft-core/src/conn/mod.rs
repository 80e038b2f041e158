//! The server side of one HTTP/1.1 connection: a state machine with no I/O.
//!
//! Input family: [`Connection::next_event`] (bytes), [`Connection::receive_eof`],
//! [`Connection::handle_timeout`]. Sending family: [`Connection::send_response`],
//! [`Connection::send_data`], [`Connection::send_end`] (in `send.rs`). Output family:
//! [`Connection::transmit`] / [`Connection::advance_transmit`], [`Connection::poll_timeout`].
//!
//! Request side states: `Head` -> `Body` -> `Ended` (paused until the response is complete) ->
//! `Head` of the next request (keep-alive) or `Closed`. A response that completes while its
//! request body is still unread moves the request side to `Draining`, which discards up to
//! [`Limits::max_drain`] bytes before the next request, or closes.
//!
//! All state changes live in one place: the named transitions in the second `impl Connection`
//! block (`close_read`, `close_write`, `start_exchange`, `end_request`, `await_next_request`,
//! `start_draining`, `upgrade`, `start_response_body`, `next_exchange`, `finish_exchange`, and
//! for deadlines `run_read_timer`, `output_starts`, `restart_send_timer`, `output_taken`,
//! `drop_output`) are the only code that assigns the request side, the response side or a
//! deadline. Every deadline is a named `Timer` in one `TimerTable`;
//! [`Connection::poll_timeout`] is the earliest.
//!
//! Time parameters: methods that may write a response head (and so a `Date`) take [`Now`];
//! the others take the monotonic [`Instant`] only.

mod send;

use crate::clock::Instant;

use crate::body::{ChunkedDecoder, Decoded};
use crate::date::Now;
use crate::error::Error;
use crate::head::{
    parse_request_head, Framing, LineScan, Method, RequestHead, RequestLineScan, Version,
};
use crate::headers::Headers;
use crate::limits::Limits;
use crate::response::{push_decimal, push_header, push_status_line};
use crate::syntax::position_of;
use crate::timer::{TimerName, TimerTable};

/// What [`Connection::next_event`] found.
#[derive(Debug)]
pub enum Event<'a> {
    /// A request head. Its body (if any) follows as [`Event::Data`], then [`Event::End`].
    Request(RequestHead<'a>),
    /// Request body bytes, borrowed from the input.
    Data(&'a [u8]),
    /// The request message is complete; carries the trailer fields (empty unless chunked).
    End(Headers<'a>),
    /// More input is needed.
    NeedData,
    /// The current request is complete; the next one is held back until the response to
    /// this one has been sent in full.
    Paused,
    /// A `101 Switching Protocols` was sent: from here on the connection belongs to the new
    /// protocol, and every unconsumed input byte is the new protocol's.
    Upgraded,
    /// No further requests will be read (the peer closed, the exchange ended with
    /// `Connection: close`, or an error was answered). Close once the transmit buffer drains.
    Closed,
}

#[derive(Clone, Debug)]
enum BodyReader {
    Length(u64),
    Chunked(ChunkedDecoder),
}

#[derive(Clone, Debug)]
enum ReadState {
    Head,
    Body(BodyReader),
    Ended,
    Draining(BodyReader, u64),
    Upgraded,
    Closed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Encoder {
    Length(u64),
    Chunked,
    UntilClose,
    /// HEAD, 304: framing headers are sent but body bytes are not.
    Discard,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum WriteState {
    /// No request to answer yet.
    Idle,
    /// A request head arrived; its response has not started.
    Ready,
    Body(Encoder),
    Done,
}

/// The deadlines of a connection. At most one of the read timers runs at a time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timer {
    /// A request head must be complete (from the first byte, or from the accept).
    Header,
    /// A keep-alive connection waits for its next request.
    Idle,
    /// The request body is wanted and must keep coming.
    Body,
    /// The unread body of an answered request is being discarded.
    Drain,
    /// Queued output must be taken by the peer (restarts with each write).
    Send,
}

const READ_TIMERS: [Timer; 4] = [Timer::Header, Timer::Idle, Timer::Body, Timer::Drain];

impl TimerName for Timer {
    fn index(self) -> usize {
        self as usize
    }
}

/// One HTTP/1.1 server connection. See the crate documentation for the drain order.
#[derive(Debug)]
pub struct Connection {
    limits: Limits,
    read: ReadState,
    write: WriteState,
    error: Option<Error>,
    peer_eof: bool,
    /// The exchange may be followed by another one (both sides agree so far).
    keep_alive: bool,
    version: Version,
    head_request: bool,
    upgrade_requested: bool,
    body_framing: Framing,
    /// `Expect: 100-continue` seen and `100 Continue` not yet sent.
    continue_pending: bool,
    /// Bytes of the current partial head already searched for its end.
    head_scanned: usize,
    /// The partial head's request line has been checked.
    line_checked: bool,
    /// The bytes before and of the request line, judged as they arrive.
    line_scan: RequestLineScan,
    timers: TimerTable<Timer, 5>,
    out: Vec<u8>,
    out_pos: usize,
}

/// Capacity the output buffer gets when the first bytes of a response go into an empty one.
const FIRST_OUTPUT: usize = 1024;

impl Connection {
    /// A new connection accepted at `now`.
    pub fn new(limits: Limits, now: Instant) -> Connection {
        let mut conn = Connection {
            limits,
            read: ReadState::Head,
            write: WriteState::Idle,
            error: None,
            peer_eof: false,
            keep_alive: true,
            version: Version::Http11,
            head_request: false,
            upgrade_requested: false,
            body_framing: Framing::None,
            continue_pending: false,
            head_scanned: 0,
            line_checked: false,
            line_scan: RequestLineScan::default(),
            timers: TimerTable::default(),
            out: Vec::new(),
            out_pos: 0,
        };
        conn.run_read_timer(Timer::Header, now);
        conn
    }

    /// The limits this connection enforces.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// The sticky error, if the connection failed.
    pub fn error(&self) -> Option<Error> {
        self.error
    }

    /// True while the request body is being read (the driver decides when to pull it).
    pub fn is_reading_body(&self) -> bool {
        matches!(self.read, ReadState::Body(_))
    }

    /// True when no further input will be read: close after the transmit buffer drains.
    pub fn is_closed(&self) -> bool {
        matches!(self.read, ReadState::Closed)
    }

    /// True once a `101 Switching Protocols` was queued: the connection belongs to the new
    /// protocol (and `next_event` returns [`Event::Upgraded`]).
    pub fn is_upgraded(&self) -> bool {
        matches!(self.read, ReadState::Upgraded)
    }

    /// True when a response head has been sent and its body is not finished.
    pub fn is_sending_body(&self) -> bool {
        matches!(self.write, WriteState::Body(_))
    }

    /// True between a request head and the start of its response.
    pub fn awaits_response(&self) -> bool {
        self.write == WriteState::Ready
    }

    /// Bytes waiting to be written to the peer.
    #[must_use = "queued bytes must be written to the peer"]
    pub fn transmit(&self) -> &[u8] {
        self.out.get(self.out_pos..).unwrap_or(&[])
    }

    /// Records that the first `n` bytes of [`Connection::transmit`] were written.
    pub fn advance_transmit(&mut self, n: usize, now: Instant) {
        if n == 0 {
            return;
        }
        self.out_pos = self.out_pos.saturating_add(n).min(self.out.len());
        self.output_taken(now);
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos >= 16 * 1024 && self.out_pos * 2 >= self.out.len() {
            // Amortised front removal: move the tail only when it is at most half the buffer.
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
    }

    /// Frees the output buffer's memory when nothing is queued (a driver calls it when the
    /// connection waits for its next request, so an idle connection holds no buffer).
    pub fn release_memory(&mut self) {
        if self.out_pos == self.out.len() {
            self.out = Vec::new();
            self.out_pos = 0;
        }
    }

    /// The peer will send nothing more (TCP FIN).
    pub fn receive_eof(&mut self) {
        self.peer_eof = true;
    }

    /// The next deadline, if any: call [`Connection::handle_timeout`] when it passes.
    #[must_use = "the deadline must be armed as a timer"]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Applies every deadline that passed by `now`.
    pub fn handle_timeout(&mut self, now: Now) {
        if self.timers.expired(Timer::Send, now.instant) {
            // The peer stopped reading: drop what it will never take and end the response
            // for good, so nothing produced later can follow the dropped bytes (the peer
            // sees an exact prefix, then the close).
            self.drop_output();
            self.abort();
            return;
        }
        let expired = READ_TIMERS
            .into_iter()
            .find(|&timer| self.timers.expired(timer, now.instant));
        match expired {
            Some(Timer::Header) if self.head_scanned > 0 => {
                self.fail(Error::HeadTimeout, now);
            }
            Some(Timer::Body) => {
                self.fail(Error::BodyTimeout, now);
            }
            // Nothing of a request arrived, or only the rest of an answered one: a quiet close.
            Some(Timer::Header | Timer::Idle | Timer::Drain) => self.close_read(),
            Some(Timer::Send) | None => {}
        }
    }

    /// Processes input: `input` is every unconsumed byte the driver holds (it must not skip
    /// any). Returns the next event and how many bytes of `input` it consumed; the driver
    /// removes those from its buffer after handling the event.
    #[must_use = "the event must be handled and the consumed bytes removed from the input"]
    pub fn next_event<'a>(
        &mut self,
        input: &'a [u8],
        now: Now,
    ) -> Result<(Event<'a>, usize), Error> {
        if let Some(err) = self.error {
            return Err(err);
        }
        let mut consumed = 0;
        loop {
            let rest = input.get(consumed..).unwrap_or(&[]);
            match self.read {
                ReadState::Closed => return Ok((Event::Closed, consumed)),
                ReadState::Upgraded => return Ok((Event::Upgraded, consumed)),
                ReadState::Ended => return Ok((Event::Paused, consumed)),
                ReadState::Head => {
                    return match self.read_head(rest, now)? {
                        Some((head, n)) => Ok((Event::Request(head), consumed + n)),
                        None if self.is_closed() => continue,
                        None => Ok((Event::NeedData, consumed)),
                    };
                }
                ReadState::Body(_) => {
                    let (event, n) = self.read_body(rest, now)?;
                    return Ok((event, consumed + n));
                }
                ReadState::Draining(..) => {
                    let (n, finished) = self.drain(rest, now.instant);
                    consumed += n;
                    if finished {
                        continue;
                    }
                    if self.peer_eof {
                        self.close_read();
                        continue;
                    }
                    return Ok((Event::NeedData, consumed));
                }
            }
        }
    }

    fn read_head<'a>(
        &mut self,
        rest: &'a [u8],
        now: Now,
    ) -> Result<Option<(RequestHead<'a>, usize)>, Error> {
        if rest.is_empty() {
            if self.peer_eof {
                self.close_read();
            }
            return Ok(None);
        }
        if self.head_scanned == 0 {
            // The first byte of a request: the header timeout starts.
            self.run_read_timer(Timer::Header, now.instant);
        }
        // At end of stream, what arrived is judged whole (as if it had come in one read).
        let parsed = if self.head_may_be_complete(rest) || self.peer_eof {
            parse_request_head(rest, &self.limits)
        } else {
            Ok(None)
        };
        match parsed {
            Err(err) => Err(self.fail(err, now)),
            Ok(None) if self.peer_eof && rest.chunks(2).all(|pair| pair == b"\r\n") => {
                // Only the empty lines that may precede a request: a clean close.
                self.close_read();
                Ok(None)
            }
            Ok(None) if self.peer_eof => Err(self.fail(Error::UnexpectedEof, now)),
            Ok(None) => Ok(None),
            Ok(Some((head, n))) => {
                self.start_exchange(&head);
                Ok(Some((head, n)))
            }
        }
    }

    fn read_body<'a>(&mut self, rest: &'a [u8], now: Now) -> Result<(Event<'a>, usize), Error> {
        if self.continue_pending && self.write == WriteState::Ready {
            // The application started reading the body: now the client may send it.
            self.continue_pending = false;
            self.output_starts(now.instant);
            self.out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            // The client waited for this; its body is due from now on.
            self.run_read_timer(Timer::Body, now.instant);
        }
        let ReadState::Body(reader) = &mut self.read else {
            return Ok((Event::NeedData, 0));
        };
        let step = match reader {
            BodyReader::Length(0) => Ok((Decoded::End(Headers::default()), 0)),
            BodyReader::Length(remaining) => {
                let n = usize::try_from(*remaining)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                *remaining -= n as u64;
                if n == 0 {
                    Ok((Decoded::NeedData, 0))
                } else {
                    Ok((Decoded::Data(rest.get(..n).unwrap_or(&[])), n))
                }
            }
            BodyReader::Chunked(decoder) => decoder.decode(rest, &self.limits),
        };
        match step {
            Err(err) => Err(self.fail(err, now)),
            Ok((Decoded::NeedData, n)) => {
                if self.peer_eof {
                    return Err(self.fail(Error::UnexpectedEof, now));
                }
                if self.timers.get(Timer::Body).is_none() {
                    // The body is wanted and not there: from now on the client is late.
                    self.run_read_timer(Timer::Body, now.instant);
                }
                Ok((Event::NeedData, n))
            }
            Ok((Decoded::Data(data), n)) => {
                self.run_read_timer(Timer::Body, now.instant);
                Ok((Event::Data(data), n))
            }
            Ok((Decoded::End(trailers), n)) => {
                self.end_request();
                if self.write == WriteState::Done {
                    self.next_exchange(now.instant);
                }
                Ok((Event::End(trailers), n))
            }
        }
    }

    /// Discards the unread body of an answered request. Returns the bytes consumed and whether
    /// the request side moved on (next exchange or closed).
    fn drain(&mut self, rest: &[u8], now: Instant) -> (usize, bool) {
        let ReadState::Draining(reader, budget) = &mut self.read else {
            return (0, true);
        };
        let mut consumed = 0usize;
        let mut broken = false;
        let finished = match reader {
            BodyReader::Length(remaining) => {
                let n = usize::try_from(*remaining)
                    .unwrap_or(usize::MAX)
                    .min(rest.len());
                *remaining -= n as u64;
                consumed = n;
                *remaining == 0
            }
            BodyReader::Chunked(decoder) => loop {
                let tail = rest.get(consumed..).unwrap_or(&[]);
                match decoder.decode(tail, &self.limits) {
                    Err(_) => {
                        broken = true;
                        break false;
                    }
                    Ok((Decoded::NeedData, n)) => {
                        consumed += n;
                        break false;
                    }
                    Ok((Decoded::Data(_), n)) => consumed += n,
                    Ok((Decoded::End(_), n)) => {
                        consumed += n;
                        break true;
                    }
                }
            },
        };
        let over_budget = consumed as u64 > *budget;
        *budget = budget.saturating_sub(consumed as u64);
        if broken || over_budget {
            // The exchange is over; an unusable or too long remainder just closes.
            self.close_read();
            return (consumed, true);
        }
        if consumed > 0 {
            self.run_read_timer(Timer::Drain, now);
        }
        if finished {
            self.next_exchange(now);
        }
        (consumed, finished)
    }

    /// Could `rest` hold a whole request head (or enough to reject it)? Scans each byte once
    /// across calls: the request line byte by byte (so a byte no request can hold is refused at
    /// once, and a complete line is checked as soon as it ends), then the header section for
    /// its end and the size limit.
    fn head_may_be_complete(&mut self, rest: &[u8]) -> bool {
        if !self.line_checked {
            self.head_scanned = rest.len().max(1);
            return match self.line_scan.scan(rest, &self.limits) {
                LineScan::Pending => rest.len() > self.limits.max_head,
                // The parser finds the same error (it scans the same bytes the same way).
                LineScan::Failed(_) => true,
                LineScan::Line { .. } => {
                    // Parsed now: whatever follows the line in `rest` is examined by the
                    // parser, and later calls look for the end from the last two bytes on.
                    self.line_checked = true;
                    true
                }
            };
        }
        // Re-examine the last two bytes: a line end there may now be followed by an empty line.
        let from = self.head_scanned.saturating_sub(2);
        let window = rest.get(from..).unwrap_or(&[]);
        self.head_scanned = rest.len().max(1);
        let mut i = 0;
        // Jump from line end to line end with the word-at-a-time search.
        while let Some(found) = window.get(i..).and_then(|tail| position_of(tail, b'\n')) {
            let at = from + i + found;
            i += found + 1;
            let after = rest.get(at + 1..).unwrap_or(&[]);
            if matches!(after, [b'\n', ..] | [b'\r', b'\n', ..]) {
                return true;
            }
        }
        rest.len() > self.limits.max_head
    }

    /// Records a protocol error: answers it when no response has started, and closes.
    fn fail(&mut self, err: Error, now: Now) -> Error {
        self.error = Some(err);
        if matches!(self.write, WriteState::Idle | WriteState::Ready) {
            let status = err.status();
            let message = err.message();
            self.output_starts(now.instant);
            push_status_line(&mut self.out, status);
            push_header(&mut self.out, "Date", now.date.as_bytes());
            push_header(&mut self.out, "Content-Type", b"text/plain; charset=utf-8");
            self.out.extend_from_slice(b"Content-Length: ");
            push_decimal(&mut self.out, message.len() as u64 + 1);
            self.out.extend_from_slice(b"\r\nConnection: close\r\n\r\n");
            self.out.extend_from_slice(message.as_bytes());
            self.out.push(b'\n');
        }
        self.close_write();
        self.close_read();
        err
    }

    /// Ends the connection after the current exchange (graceful shutdown): no further request
    /// is read. An idle connection closes at once.
    pub fn close_after_exchange(&mut self) {
        self.keep_alive = false;
        if matches!(self.read, ReadState::Head) && self.head_scanned == 0 {
            self.close_read();
        }
    }

    /// Refuses the connection before any request (the driver is at capacity): `503` with
    /// `Connection: close` is queued, nothing will be read, and the connection closes once it
    /// is written. Does nothing once a request has been read.
    pub fn refuse(&mut self, now: Now) {
        if self.error.is_none() && self.write == WriteState::Idle && self.head_scanned == 0 {
            self.fail(Error::ServerBusy, now);
        }
    }

    /// Gives up on the exchange in progress (the application failed after its response
    /// started): nothing more is read or framed; what is queued is still transmitted, then the
    /// connection closes so the peer sees an incomplete message.
    pub fn abort(&mut self) {
        self.keep_alive = false;
        self.close_write();
        self.close_read();
    }
}

/// Transitions: the only code that assigns the request side (`read`), the response side
/// (`write`) or a timer.
impl Connection {
    /// No further input will be read.
    fn close_read(&mut self) {
        self.read = ReadState::Closed;
        self.stop_read_timers();
    }

    /// The response side is finished (complete, failed or aborted).
    fn close_write(&mut self) {
        self.write = WriteState::Done;
    }

    /// A request head arrived: its body (possibly empty) is read next, its response awaited.
    fn start_exchange(&mut self, head: &RequestHead<'_>) {
        self.version = head.version;
        self.keep_alive = head.keep_alive;
        self.head_request = head.method == Method::Head;
        self.upgrade_requested = head.upgrade.is_some();
        self.body_framing = head.framing;
        self.continue_pending = head.expect_continue && head.framing != Framing::None;
        self.head_scanned = 0;
        self.line_checked = false;
        self.line_scan = RequestLineScan::default();
        self.write = WriteState::Ready;
        self.read = ReadState::Body(match head.framing {
            Framing::None => BodyReader::Length(0),
            Framing::Length(n) => BodyReader::Length(n),
            Framing::Chunked => BodyReader::Chunked(ChunkedDecoder::new()),
        });
        // The body timeout starts when the body is first waited for (`read_body`), not here:
        // a request whose body is never pulled (or that has none) must not time out while its
        // response is still being produced.
        self.stop_read_timers();
    }

    /// The request message is complete: the request side pauses until the response is.
    fn end_request(&mut self) {
        self.read = ReadState::Ended;
        self.stop_read_timers();
    }

    /// Keep-alive: the next request head is awaited (for up to `idle_timeout`).
    fn await_next_request(&mut self, now: Instant) {
        self.read = ReadState::Head;
        self.write = WriteState::Idle;
        self.run_read_timer(Timer::Idle, now);
    }

    /// The response ended before the request body was read: discard it (up to `max_drain`).
    fn start_draining(&mut self, now: Instant) {
        if let ReadState::Body(reader) = std::mem::replace(&mut self.read, ReadState::Closed) {
            self.read = ReadState::Draining(reader, self.limits.max_drain);
            self.run_read_timer(Timer::Drain, now);
        } else {
            self.stop_read_timers();
        }
    }

    /// A `101` was queued: the connection belongs to the new protocol.
    fn upgrade(&mut self) {
        self.write = WriteState::Done;
        self.read = ReadState::Upgraded;
        self.stop_read_timers();
    }

    /// The response head was queued: its body follows, framed by `encoder`.
    fn start_response_body(&mut self, encoder: Encoder) {
        self.write = WriteState::Body(encoder);
    }

    /// Both sides of the exchange are complete: start the next one or close.
    fn next_exchange(&mut self, now: Instant) {
        if self.keep_alive {
            self.await_next_request(now);
        } else {
            self.close_read();
        }
    }

    /// The response is complete: settle the request side.
    fn finish_exchange(&mut self, now: Instant) {
        self.close_write();
        match self.read {
            ReadState::Ended => self.next_exchange(now),
            ReadState::Body(_) if !self.keep_alive || self.continue_pending => {
                // The client may still be waiting for 100 Continue or the body is unwanted
                // with the connection closing anyway: do not wait for it.
                self.close_read();
            }
            ReadState::Body(_) => self.start_draining(now),
            ReadState::Head | ReadState::Draining(..) | ReadState::Upgraded | ReadState::Closed => {
            }
        }
    }

    /// Runs the read timer `timer` from `now`; the other read timers stop.
    fn run_read_timer(&mut self, timer: Timer, now: Instant) {
        self.stop_read_timers();
        let after = match timer {
            Timer::Header => self.limits.header_timeout,
            Timer::Idle => self.limits.idle_timeout,
            Timer::Body | Timer::Drain => self.limits.body_timeout,
            Timer::Send => self.limits.send_timeout,
        };
        self.timers.start(timer, now, after);
    }

    fn stop_read_timers(&mut self) {
        for timer in READ_TIMERS {
            self.timers.stop(timer);
        }
    }

    /// Call before appending output: output that was empty starts its send timeout now.
    fn output_starts(&mut self, now: Instant) {
        if self.out_pos == self.out.len() {
            self.restart_send_timer(now);
            if self.out.capacity() == 0 {
                // After `release_memory`: room for a head and a small body at once, rather
                // than growing through several reallocations per response.
                self.out.reserve(FIRST_OUTPUT);
            }
        }
    }

    /// Output is pending since `now` (or the peer just took some).
    fn restart_send_timer(&mut self, now: Instant) {
        self.timers
            .start(Timer::Send, now, self.limits.send_timeout);
    }

    /// The peer will never take the queued output: it is dropped.
    fn drop_output(&mut self) {
        self.out.clear();
        self.out_pos = 0;
        self.timers.stop(Timer::Send);
    }

    /// The peer took output: the send timeout restarts, or stops when nothing is left.
    fn output_taken(&mut self, now: Instant) {
        if self.out_pos == self.out.len() {
            self.timers.stop(Timer::Send);
        } else {
            self.restart_send_timer(now);
        }
    }
}
