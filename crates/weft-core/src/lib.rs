//! weft-core: the sans-IO HTTP/1.1 server protocol core.
//!
//! No sockets, files, clocks, threads or randomness live here. The caller (a driver such as
//! `weft-server`'s event loop) owns the read buffer and feeds it in together with the current
//! time; the core answers with events and queues bytes to transmit.
//!
//! # Driving a [`Connection`]
//!
//! After any input (new bytes, end of stream, a timeout, a response call), a driver:
//!
//! 1. calls [`Connection::next_event`] with its unconsumed input until it returns
//!    [`Event::NeedData`] or [`Event::Paused`] (or the driver stops pulling body data because its
//!    own output is behind: that is how backpressure reaches the request body), removing the
//!    reported number of consumed bytes from its buffer after each event;
//! 2. writes [`Connection::transmit`] to the socket and reports progress with
//!    [`Connection::advance_transmit`];
//! 3. arms a timer for [`Connection::poll_timeout`] and calls [`Connection::handle_timeout`] when
//!    it expires;
//! 4. closes the socket once [`Connection::is_closed`] is true and the transmit buffer is empty.
//!
//! Errors are typed ([`Error`]), carry the status to answer with, and are sticky.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![deny(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic
)]

mod body;
mod clock;
mod conn;
mod date;
mod error;
mod head;
mod headers;
mod limits;
mod request_line;
mod response;
mod syntax;
mod timer;
pub mod ws;

pub use body::{ChunkedDecoder, Decoded};
pub use clock::{Instant, NanoInstant};
pub use conn::{Connection, Event};
pub use date::{DateCache, HttpDate, Now};
pub use error::{Error, SendError};
pub use head::{parse_request_head, Framing, Method, RequestHead, Version};
pub use headers::{Header, HeaderIter, Headers};
pub use limits::Limits;
pub use response::{check_response_field, reason_phrase, BodyKind, Response};
/// RFC 9110 section 5.6 grammar helpers, shared with the application layer.
pub use syntax::{is_ows, is_token, trim_ows};
