//! The sending side of a WebSocket session, lent out with each received event so that a
//! handler can answer while it holds the message (which the receiving side owns).

use crate::clock::Instant;

use super::deflate::{Compressor, MIN_COMPRESSED_LEN};
use super::error::{CloseCode, WsSendError};
use super::frame::{OpCode, MAX_CONTROL_PAYLOAD};
use super::handshake::DeflateConfig;
use super::link::Link;

/// The sending side of a [`WebSocket`](super::WebSocket): messages, pings and the Close go
/// out through it, into the session's transmit buffer. Get it from
/// [`WebSocket::sender`](super::WebSocket::sender), or with a received event from
/// [`WebSocket::next_event_and_sender`](super::WebSocket::next_event_and_sender), which lets
/// an echo send the message it was handed without copying it first.
pub struct WsSender {
    /// The transmit buffer, the closing state, the error and the timers.
    pub(crate) link: Link,
    /// The compressor of sent messages.
    pub(crate) compressor: Compressor,
    /// The negotiated permessage-deflate parameters, if any.
    deflate: Option<DeflateConfig>,
    /// Bytes of one message sent (the session's `max_message`).
    max_message: usize,
}

impl std::fmt::Debug for WsSender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WsSender")
            .field("queued", &self.transmit().len())
            .field("close_sent", &self.link.close_sent)
            .field("closed", &self.link.closed)
            .field("error", &self.link.error)
            .finish()
    }
}

impl WsSender {
    pub(crate) fn new(link: Link, deflate: Option<DeflateConfig>, max_message: usize) -> WsSender {
        WsSender {
            link,
            compressor: Compressor::default(),
            deflate,
            max_message,
        }
    }

    /// Queues a text message (one frame; compressed when permessage-deflate was negotiated).
    pub fn send_text(&mut self, text: &str, now: Instant) -> Result<(), WsSendError> {
        self.link.now = now;
        self.send_message(OpCode::Text, text.as_bytes())
    }

    /// Queues a binary message (one frame; compressed when permessage-deflate was negotiated).
    pub fn send_binary(&mut self, data: &[u8], now: Instant) -> Result<(), WsSendError> {
        self.link.now = now;
        self.send_message(OpCode::Binary, data)
    }

    fn send_message(&mut self, opcode: OpCode, payload: &[u8]) -> Result<(), WsSendError> {
        if self.link.close_sent || self.link.closed {
            return Err(WsSendError::Closed);
        }
        if payload.len() > self.max_message {
            return Err(WsSendError::TooLarge);
        }
        let compressed = match &self.deflate {
            Some(deflate) if payload.len() >= MIN_COMPRESSED_LEN => {
                self.compressor.compress(payload, deflate)
            }
            _ => None,
        };
        match compressed {
            Some(compressed) => {
                self.link.write_frame(opcode, true, compressed);
                self.compressor.trim();
            }
            None => self.link.write_frame(opcode, false, payload),
        }
        Ok(())
    }

    /// Queues a Ping (at most 125 bytes, else [`WsSendError::TooLarge`]).
    pub fn send_ping(&mut self, data: &[u8], now: Instant) -> Result<(), WsSendError> {
        self.link.now = now;
        if self.link.close_sent || self.link.closed {
            return Err(WsSendError::Closed);
        }
        if data.len() > MAX_CONTROL_PAYLOAD {
            return Err(WsSendError::TooLarge);
        }
        self.link.write_frame(OpCode::Ping, false, data);
        Ok(())
    }

    /// Starts the closing handshake: queues a Close and waits up to `close_timeout` for the
    /// peer's. The reason is cut to 123 bytes at a character boundary; a code that may not be
    /// sent (outside 1000-1003, 1007-1011, 3000-4999) is sent as 1011. Nothing happens when a
    /// Close was already sent or the session is over.
    pub fn close(&mut self, code: impl Into<CloseCode>, reason: &str, now: Instant) {
        if self.link.close_sent || self.link.closed {
            return;
        }
        self.link.now = now;
        let code = code.into();
        let code = if code.is_allowed() {
            code
        } else {
            CloseCode::INTERNAL_ERROR
        };
        self.link.start_close(code, reason);
    }

    /// Bytes waiting to be written to the peer.
    #[must_use = "queued bytes must be written to the peer"]
    pub fn transmit(&self) -> &[u8] {
        self.link.out.get(self.link.sent..).unwrap_or(&[])
    }

    /// A Close frame has been sent (no more messages may be sent).
    pub fn is_closing(&self) -> bool {
        self.link.close_sent
    }

    /// Nothing more will be read or sent (see [`WebSocket::is_closed`](super::WebSocket::is_closed)).
    pub fn is_closed(&self) -> bool {
        self.link.closed
    }

    /// Bytes held by the transmit and compression buffers.
    pub(crate) fn buffered(&self) -> usize {
        self.link
            .out
            .capacity()
            .saturating_add(self.compressor.capacity())
    }
}
