//! WebSocket (RFC 6455) with permessage-deflate (RFC 7692), sans-IO like the rest of the core.
//!
//! Two halves:
//!
//! - the opening handshake: [`check_handshake`] validates an upgrade request (a
//!   [`RequestHead`](crate::RequestHead)) and negotiates the subprotocol and permessage-deflate;
//!   [`Handshake::response_headers`] gives the fields of the `101` response, and a
//!   [`HandshakeError`] the status and fields of the refusal;
//! - the codec: one [`WebSocket`] per upgraded connection, driven like a
//!   [`Connection`](crate::Connection): [`WebSocket::next_event`] with the unconsumed input until
//!   [`WsEvent::NeedData`] or [`WsEvent::Closed`], then [`WebSocket::transmit`] /
//!   [`WebSocket::advance_transmit`], then [`WebSocket::poll_timeout`] /
//!   [`WebSocket::handle_timeout`]. Close the TCP connection once [`WebSocket::is_closed`] is
//!   true and the transmit buffer is empty.
//!
//! The codec's sending side is its own value, [`WsSender`]: [`WebSocket::next_event_and_sender`]
//! lends it with each event, so a handler answers while it holds the message the event
//! borrows. Between messages [`WebSocket::release_memory`] frees the session's buffers.

mod codec;
mod deflate;
mod error;
mod extension;
mod frame;
mod handshake;
mod link;
mod sender;
mod utf8;

pub use codec::{WebSocket, WsConfig, WsEvent};
pub use error::{CloseCode, WsError, WsSendError};
pub use handshake::{
    accept_key, check_handshake, DeflateConfig, Handshake, HandshakeError, HandshakeOptions,
};
pub use sender::WsSender;
