//! The WebSocket codec: frames in, events out; messages in, frames out.

use std::fmt;
use std::time::{Duration, Instant};

use super::handshake::DeflateConfig;

/// Limits, extensions and timers of one WebSocket session.
#[derive(Clone, Debug)]
pub struct WsConfig {
    /// Payload bytes of one frame; a frame announcing more is refused with 1009.
    pub max_frame: usize,
    /// Bytes of one (decompressed) message; a message growing past it is refused with 1009.
    pub max_message: usize,
    /// The negotiated permessage-deflate parameters, if any.
    pub deflate: Option<DeflateConfig>,
    /// Idle time (nothing received) before the server pings.
    pub ping_interval: Option<Duration>,
    /// After a ping, this long without any input closes the session with 1001.
    pub ping_timeout: Duration,
    /// After sending Close, how long to wait for the peer's Close.
    pub close_timeout: Duration,
}

impl Default for WsConfig {
    fn default() -> WsConfig {
        WsConfig {
            max_frame: 16 << 20,
            max_message: 16 << 20,
            deflate: None,
            ping_interval: Some(Duration::from_secs(30)),
            ping_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
        }
    }
}

/// What [`WebSocket::next_event`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsEvent<'a> {
    /// A complete, UTF-8-valid text message.
    Text(&'a str),
    /// A complete binary message.
    Binary(&'a [u8]),
    /// A Ping was received; the Pong is already queued.
    Ping(&'a [u8]),
    /// A Pong was received.
    Pong(&'a [u8]),
    /// The peer's Close; the answering Close is already queued (if we had not sent one).
    Close { code: Option<u16>, reason: &'a str },
    /// All input consumed (or the rest is an incomplete frame header): feed more.
    NeedData,
    /// The session is over: close the TCP connection once `transmit()` is empty.
    Closed,
}

/// A protocol violation by the peer. Sticky; the Close frame with `code` is already queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsError {
    /// The close code sent to the peer.
    pub code: u16,
    /// The close reason sent to the peer.
    pub reason: &'static str,
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "websocket error {}: {}", self.code, self.reason)
    }
}

impl std::error::Error for WsError {}

/// Why a message could not be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsSendError {
    /// A Close was already sent.
    Closed,
    /// Over `max_message` (or over 125 bytes for a ping).
    TooLarge,
}

impl fmt::Display for WsSendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WsSendError::Closed => "the websocket is closing",
            WsSendError::TooLarge => "message too large",
        })
    }
}

impl std::error::Error for WsSendError {}

/// One WebSocket session (server side).
#[derive(Debug)]
pub struct WebSocket {
    config: WsConfig,
    out: Vec<u8>,
    closed: bool,
}

impl WebSocket {
    /// A session that starts at `now` (right after the 101 response).
    pub fn new(config: WsConfig, _now: Instant) -> WebSocket {
        WebSocket {
            config,
            out: Vec::new(),
            closed: false,
        }
    }

    /// Consumes input incrementally and returns the next event and how many bytes of `input`
    /// were consumed.
    pub fn next_event(
        &mut self,
        _input: &[u8],
        _now: Instant,
    ) -> Result<(WsEvent<'_>, usize), WsError> {
        let _ = &self.config;
        Err(WsError {
            code: 1011,
            reason: "not implemented",
        })
    }

    /// The peer closed TCP (EOF).
    pub fn receive_eof(&mut self) {
        self.closed = true;
    }

    /// Queues a text message.
    pub fn send_text(&mut self, _text: &str, _now: Instant) -> Result<(), WsSendError> {
        Err(WsSendError::Closed)
    }

    /// Queues a binary message.
    pub fn send_binary(&mut self, _data: &[u8], _now: Instant) -> Result<(), WsSendError> {
        Err(WsSendError::Closed)
    }

    /// Queues a Ping (at most 125 bytes).
    pub fn send_ping(&mut self, _data: &[u8], _now: Instant) -> Result<(), WsSendError> {
        Err(WsSendError::Closed)
    }

    /// Starts the closing handshake.
    pub fn close(&mut self, _code: u16, _reason: &str, _now: Instant) {}

    /// Bytes waiting to be written.
    pub fn transmit(&self) -> &[u8] {
        &self.out
    }

    /// `n` bytes of [`WebSocket::transmit`] were written.
    pub fn advance_transmit(&mut self, n: usize) {
        self.out.drain(..n.min(self.out.len()));
    }

    /// The earliest deadline.
    pub fn poll_timeout(&self) -> Option<Instant> {
        None
    }

    /// Handles expired deadlines.
    pub fn handle_timeout(&mut self, _now: Instant) {}

    /// Nothing more will be read or sent.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// A Close frame has been sent.
    pub fn is_closing(&self) -> bool {
        self.closed
    }
}
