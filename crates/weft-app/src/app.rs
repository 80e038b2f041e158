//! The interface between the event loop and the application: an [`App`] answers a request
//! head, either at once through [`Output`] or by returning a [`Responder`] that streams the
//! response and/or consumes the request body as the loop allows (backpressure).

use std::fmt;
use std::time::Instant;

use weft_core::{BodyKind, Connection, Now, RequestHead, Response, SendError};

/// A failure inside a handler. Before the response started it becomes a 500; after, the
/// connection is closed (its framing cannot be completed honestly).
#[derive(Debug)]
pub struct AppError(pub String);

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<SendError> for AppError {
    fn from(e: SendError) -> AppError {
        AppError(format!("send: {e}"))
    }
}

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> AppError {
        AppError(format!("io: {e}"))
    }
}

/// What a responder wants next after [`Responder::produce`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Produce {
    /// It produced data and has more: call again when the socket can take it.
    More,
    /// Nothing until this time (a timer).
    WaitUntil(Instant),
    /// Nothing until more request body arrives.
    WaitForBody,
    /// The response is complete ([`Output::end`] was called).
    Done,
}

/// The per-exchange statistics the access log reports.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExchangeStats {
    pub status: u16,
    pub body_bytes: u64,
}

/// Above this many queued output bytes a connection stops reading and producing: the
/// driver's and the responders' shared notion of "the socket is behind".
pub const WRITE_HIGH_WATER: usize = 64 * 1024;

/// The sending half of a connection as the application sees it.
pub struct Output<'c> {
    conn: &'c mut Connection,
    now: Now,
    stats: &'c mut ExchangeStats,
}

impl<'c> Output<'c> {
    /// Wraps a connection for one step of the application (the driver builds these).
    pub fn new(conn: &'c mut Connection, now: Now, stats: &'c mut ExchangeStats) -> Output<'c> {
        Output { conn, now, stats }
    }

    /// The connection underneath (for the driver's error handling).
    pub fn connection(&mut self) -> &mut Connection {
        self.conn
    }

    /// The statistics of the exchange (status and body bytes sent so far).
    pub fn stats(&mut self) -> &mut ExchangeStats {
        self.stats
    }

    /// The current time.
    pub fn now(&self) -> Now {
        self.now
    }

    /// Sends a complete response held in memory.
    pub fn full(
        &mut self,
        status: u16,
        headers: &[(&str, &[u8])],
        body: &[u8],
    ) -> Result<(), AppError> {
        self.stats.status = status;
        self.stats.body_bytes = body.len() as u64;
        self.conn.send_full(status, headers, body, self.now)?;
        Ok(())
    }

    /// Starts a response whose body follows through [`Output::data`] and [`Output::end`].
    pub fn head(
        &mut self,
        status: u16,
        headers: &[(&str, &[u8])],
        body: BodyKind,
    ) -> Result<(), AppError> {
        self.stats.status = status;
        self.conn.send_response(
            &Response {
                status,
                headers,
                body,
            },
            self.now,
        )?;
        Ok(())
    }

    pub fn data(&mut self, data: &[u8]) -> Result<(), AppError> {
        self.stats.body_bytes += data.len() as u64;
        self.conn.send_data(data, self.now.instant)?;
        Ok(())
    }

    pub fn end(&mut self) -> Result<(), AppError> {
        self.conn.send_end(&[], self.now.instant)?;
        Ok(())
    }

    /// Bytes the transmit buffer may still take before the producer should pause.
    pub fn room(&self) -> usize {
        WRITE_HIGH_WATER.saturating_sub(self.conn.transmit().len())
    }
}

/// A response in progress: consumes the request body and/or produces the response body.
pub trait Responder {
    /// Whether the responder consumes the request body (the loop reads it only then, so a
    /// slow consumer holds the client back through TCP flow control).
    fn wants_body(&self) -> bool {
        false
    }

    /// Request body bytes.
    fn body_data(&mut self, _data: &[u8], _out: &mut Output<'_>) -> Result<(), AppError> {
        Ok(())
    }

    /// The request body ended.
    fn body_end(&mut self, _out: &mut Output<'_>) -> Result<(), AppError> {
        Ok(())
    }

    /// Produces more of the response body; called while the socket can take more.
    fn produce(&mut self, out: &mut Output<'_>) -> Result<Produce, AppError>;
}

/// The application: answers each request head.
pub trait App {
    /// Answers `head`: either completely through `out` (returning `None`) or by starting a
    /// [`Responder`] that finishes the exchange.
    fn start(
        &self,
        head: &RequestHead<'_>,
        out: &mut Output<'_>,
    ) -> Result<Option<Box<dyn Responder>>, AppError>;
}
