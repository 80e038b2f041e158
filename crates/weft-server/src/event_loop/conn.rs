//! One connection's state in the loop: the protocol core, the WebSocket session after a
//! `101`, the input buffer, what the socket reported, the exchange with the application, and
//! how the connection is closing.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use weft_app::{Exchange, Responder, WRITE_HIGH_WATER};
use weft_core::{Connection, Limits, Now};

use super::websocket::WsSession;
use crate::backend::{Backend, ReadOutcome, Token};
use crate::buffer::ReadBuf;

/// Bytes a connection's first read asks for, and the floor the size returns to after small
/// reads. Small: a request head is a few hundred bytes, and the WASI host allocates and
/// zeroes a buffer of the asked size on every read.
pub(super) const FIRST_READ: usize = 4 * 1024;
/// The most a read asks for after full reads (large WebSocket messages, uploads).
const MAX_READ: usize = 64 * 1024;

/// The one read-size policy of both backends: start at [`FIRST_READ`], double after a read
/// that filled what it asked (up to [`MAX_READ`]), halve back towards [`FIRST_READ`] when a
/// burst (the bytes read until the socket was empty) was small.
#[derive(Debug)]
pub(super) struct ReadSize {
    size: usize,
    burst: usize,
}

impl Default for ReadSize {
    fn default() -> ReadSize {
        ReadSize {
            size: FIRST_READ,
            burst: 0,
        }
    }
}

impl ReadSize {
    /// Bytes the next read asks for; an idle input buffer larger than this is freed.
    pub(super) fn next(&self) -> usize {
        self.size
    }

    /// A read returned `n` of the `asked` bytes; true when it was short (the socket is
    /// drained).
    pub(super) fn read(&mut self, n: usize, asked: usize) -> bool {
        self.burst += n;
        if n < asked {
            if self.burst < self.size / 4 {
                self.size = (self.size / 2).max(FIRST_READ);
            }
            self.burst = 0;
            true
        } else {
            self.size = (self.size * 2).min(MAX_READ);
            false
        }
    }

    /// A read found the socket empty.
    pub(super) fn drained(&mut self) {
        self.burst = 0;
    }
}

/// What the backend reported about the socket, and how reads are sized.
#[derive(Debug, Default)]
pub(super) struct SocketState {
    pub(super) readable: bool,
    pub(super) writable: bool,
    /// The backend saw the peer's FIN: reads continue past short ones until EOF is read.
    pub(super) read_closed: bool,
    /// EOF was read.
    pub(super) eof: bool,
    pub(super) read_size: ReadSize,
}

/// The HTTP side of a connection: the protocol core and the exchange with the application.
/// Boxed apart from the connection, so that a WebSocket session frees it once the `101` is
/// written (an idle session then costs its codec, not the HTTP state as well).
pub(super) struct HttpState {
    pub(super) proto: Connection,
    pub(super) responder: Option<Box<dyn Responder>>,
    /// A responder timer.
    pub(super) wake_at: Option<Instant>,
    /// The responder waits for request body bytes.
    pub(super) waiting_body: bool,
    /// A request (or a refusal by the core) is being answered.
    pub(super) in_exchange: bool,
    /// Statistics, extra response fields and request line of the current exchange.
    pub(super) exchange: Exchange,
}

pub(super) struct Conn {
    /// The HTTP side; `None` once a WebSocket session took over and the `101` was written.
    pub(super) http: Option<Box<HttpState>>,
    /// After a `101`: the WebSocket session that owns the connection.
    pub(super) ws: Option<Box<WsSession>>,
    pub(super) inbuf: ReadBuf,
    pub(super) peer: SocketAddr,
    pub(super) io: SocketState,
    /// FIN sent; discarding input until the peer closes or the linger time ends.
    pub(super) linger_until: Option<Instant>,
    /// Its output was dropped by a send timeout: close without lingering.
    pub(super) abandoned: bool,
    /// Accepted over `max_connections`: answered `503` and closed.
    pub(super) refused: bool,
    /// Bytes charged to the memory budget for this connection's WebSocket buffers.
    pub(super) charged: usize,
    /// The earliest time this connection is filed under in the loop's timers.
    pub(super) scheduled: Option<Instant>,
}

impl Conn {
    /// A connection accepted at `now`; `refused` ones are answered `503` at once.
    pub(super) fn new(limits: Limits, peer: SocketAddr, now: Now, refused: bool) -> Conn {
        let mut proto = Connection::new(limits, now.instant);
        if refused {
            proto.refuse(now);
        }
        Conn {
            http: Some(Box::new(HttpState {
                proto,
                responder: None,
                wake_at: None,
                waiting_body: false,
                in_exchange: false,
                exchange: Exchange::new(now.instant),
            })),
            ws: None,
            inbuf: ReadBuf::new(),
            peer,
            io: SocketState {
                readable: true,
                writable: true,
                ..SocketState::default()
            },
            linger_until: None,
            abandoned: false,
            refused,
            charged: 0,
            scheduled: None,
        }
    }
}

/// Read buffers of the connections that wait (between requests, or idle): a waiting
/// connection holds none, and a busy one gets memory that was in use a moment ago.
#[derive(Default)]
pub(super) struct BufferPool(Vec<Vec<u8>>);

/// Buffers a pool keeps; more are freed.
const POOLED: usize = 64;

impl BufferPool {
    /// Gives a read buffer without memory a pooled buffer, if there is one.
    fn lend(&mut self, buf: &mut ReadBuf) {
        if !buf.has_storage() {
            if let Some(storage) = self.0.pop() {
                buf.give_storage(storage);
            }
        }
    }

    /// Takes the storage of an empty read buffer back.
    pub(super) fn reclaim(&mut self, buf: &mut ReadBuf) {
        if let Some(storage) = buf.take_storage() {
            if self.0.len() < POOLED && storage.len() <= MAX_READ {
                self.0.push(storage);
            }
        }
    }
}

pub(super) fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Conn {
    /// The earliest deadline of the connection: the core's, the responder's timer, the
    /// codec's, the end of the lingering close.
    pub(super) fn deadline(&self) -> Option<Instant> {
        let d = self
            .http
            .as_ref()
            .and_then(|h| earliest(h.proto.poll_timeout(), h.wake_at));
        let d = earliest(d, self.ws.as_ref().and_then(|s| s.codec.poll_timeout()));
        earliest(d, self.linger_until)
    }

    /// Applies the deadlines of the protocol core and the WebSocket codec that passed by `now`.
    pub(super) fn expire(&mut self, now: Now) {
        if let Some(http) = self.http.as_mut() {
            if http.proto.poll_timeout().is_some_and(|t| now.instant >= t) {
                http.proto.handle_timeout(now);
            }
        }
        if let Some(session) = self.ws.as_mut() {
            if session
                .codec
                .poll_timeout()
                .is_some_and(|t| now.instant >= t)
            {
                session.codec.handle_timeout(now.instant);
            }
        }
    }

    pub(super) fn wants_read(&self, limits: &Limits) -> bool {
        if self.io.eof {
            return false;
        }
        if self.linger_until.is_some() {
            return true;
        }
        !self.is_closed()
            && self.inbuf.len() < limits.max_buffered
            && self.transmit().len() < WRITE_HIGH_WATER
    }

    /// Nothing more will be read or produced: close once the output is written.
    pub(super) fn is_closed(&self) -> bool {
        match (self.ws.as_ref(), self.http.as_ref()) {
            (Some(session), _) => session.failed || session.codec.is_closed(),
            (None, Some(http)) => http.proto.is_closed(),
            (None, None) => true,
        }
    }

    /// The bytes to write next: the HTTP side's (ending with the `101`), then the session's.
    pub(super) fn transmit(&self) -> &[u8] {
        match (self.http.as_ref(), self.ws.as_ref()) {
            (Some(http), _) if !http.proto.transmit().is_empty() => http.proto.transmit(),
            (_, Some(session)) => session.codec.transmit(),
            (Some(http), None) => http.proto.transmit(),
            (None, None) => &[],
        }
    }

    pub(super) fn advance_transmit(&mut self, n: usize, now: Instant) {
        match (self.http.as_mut(), self.ws.as_mut()) {
            (Some(http), _) if !http.proto.transmit().is_empty() => {
                http.proto.advance_transmit(n, now)
            }
            (_, Some(session)) => session.codec.advance_transmit(n, now),
            (Some(http), None) => http.proto.advance_transmit(n, now),
            (None, None) => {}
        }
    }

    /// A WebSocket session runs and the HTTP side's output (the `101`) is written: the HTTP
    /// side is freed.
    pub(super) fn drop_finished_http(&mut self) {
        if self.ws.is_some()
            && self
                .http
                .as_ref()
                .is_some_and(|h| h.proto.transmit().is_empty())
        {
            self.http = None;
        }
    }

    /// Writes what the transmit buffer holds, once. `Err` when the connection failed.
    pub(super) fn write_step<B: Backend>(
        &mut self,
        backend: &mut B,
        token: Token,
        now: Instant,
    ) -> Result<bool, ()> {
        if !self.io.writable || self.transmit().is_empty() {
            return Ok(false);
        }
        match backend.write(token, self.transmit()) {
            Ok(0) => self.io.writable = false,
            Ok(n) => {
                self.advance_transmit(n, now);
                return Ok(true);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.io.writable = false,
            Err(_) => return Err(()),
        }
        Ok(false)
    }

    /// Reads once into the input buffer when the connection wants input. `Err` when the
    /// connection failed.
    pub(super) fn read_step<B: Backend>(
        &mut self,
        backend: &mut B,
        token: Token,
        limits: &Limits,
        pool: &mut BufferPool,
    ) -> Result<bool, ()> {
        if !self.io.readable || !self.wants_read(limits) {
            return Ok(false);
        }
        pool.lend(&mut self.inbuf);
        let size = self.io.read_size.next();
        let spare = self.inbuf.spare(size);
        let asked = spare.len().min(size);
        match backend.read(token, spare.get_mut(..asked).unwrap_or_default()) {
            Ok(ReadOutcome::Data(n)) => {
                self.inbuf.filled(n);
                if self.io.read_size.read(n, asked) {
                    // A short read emptied the socket's receive queue: both backends report
                    // the next arrival (epoll's edge, a WASI poll), so the read that would only
                    // say WouldBlock is skipped. Not when the FIN is already queued: its edge
                    // has been reported and will not come again, so the next read must find
                    // it.
                    self.io.readable = self.io.read_closed;
                }
                if self.linger_until.is_some() {
                    let len = self.inbuf.len();
                    self.inbuf.consume(len);
                }
                Ok(true)
            }
            Ok(ReadOutcome::Eof) => {
                self.io.eof = true;
                if let Some(http) = self.http.as_mut() {
                    http.proto.receive_eof();
                }
                if let Some(session) = self.ws.as_mut() {
                    session.codec.receive_eof();
                }
                Ok(true)
            }
            Ok(ReadOutcome::WouldBlock) => {
                self.io.readable = false;
                self.io.read_size.drained();
                Ok(false)
            }
            Err(_) => Err(()),
        }
    }
}
