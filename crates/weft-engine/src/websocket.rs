//! `weft:engine/websocket`: the handshake check and one `session` resource per upgraded
//! connection, wrapping weft-core's `ws` module.

use std::cell::RefCell;

use weft_core::ws::{
    check_handshake, CloseCode, DeflateConfig, HandshakeError, HandshakeOptions, WebSocket,
    WsConfig, WsError, WsEvent, WsSendError,
};
use weft_core::{is_token, parse_request_head, Limits};

use crate::convert::{method_token, static_fields};
use crate::http::front;
use crate::input::Input;
use crate::time::{duration, duration_nanos, instant, nanos, size, size_out};
use crate::wit_types::{self, FeedError};
use crate::wit_ws as wit;
use crate::Engine;

impl wit::Guest for Engine {
    type Session = Session;

    fn check_handshake(
        method: wit_types::Method,
        version: wit_types::Version,
        fields: Vec<wit_types::Field>,
        options: wit::HandshakeOptions,
    ) -> Result<wit::Handshake, wit::HandshakeRefusal> {
        handshake(&method, version, &fields, &options)
    }

    fn default_session_config() -> wit::SessionConfig {
        config_out(&WsConfig::default())
    }
}

/// The request head the fields describe, serialised for the core's parser: the handshake is
/// judged on a `RequestHead` exactly as the native server judges it.
fn request_bytes(
    method: &wit_types::Method,
    version: wit_types::Version,
    fields: &[wit_types::Field],
) -> Option<Vec<u8>> {
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(method_token(method).as_bytes());
    head.extend_from_slice(match version {
        wit_types::Version::Http10 => b" / HTTP/1.0\r\n",
        wit_types::Version::Http11 => b" / HTTP/1.1\r\n",
    });
    for (name, value) in fields {
        // A name or value that could not have come out of the parser (one that would change
        // the lines of the serialised head) is refused rather than reinterpreted.
        if !is_token(name.as_bytes()) || value.iter().any(|&b| b == b'\r' || b == b'\n') {
            return None;
        }
        head.extend_from_slice(name.as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value);
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
    Some(head)
}

fn malformed() -> wit::HandshakeRefusal {
    wit::HandshakeRefusal {
        code: wit::HandshakeErrorCode::MalformedRequest,
        status: 400,
        fields: Vec::new(),
        reason: "the method and fields are not a valid request head".to_owned(),
    }
}

fn refusal(e: HandshakeError) -> wit::HandshakeRefusal {
    use wit::HandshakeErrorCode as C;
    let code = match e {
        HandshakeError::NotUpgrade => C::NotUpgrade,
        HandshakeError::Method => C::Method,
        HandshakeError::Version => C::Version,
        HandshakeError::MissingConnectionUpgrade => C::MissingConnectionUpgrade,
        HandshakeError::Body => C::Body,
        HandshakeError::BadKey => C::BadKey,
        HandshakeError::MissingVersion => C::MissingVersion,
        HandshakeError::UnsupportedVersion => C::UnsupportedVersion,
    };
    wit::HandshakeRefusal {
        code,
        status: e.status(),
        fields: static_fields(e.headers()),
        reason: e.reason().to_owned(),
    }
}

fn deflate_out(d: &DeflateConfig) -> wit::DeflateParams {
    wit::DeflateParams {
        server_no_context_takeover: d.server_no_context_takeover,
        client_no_context_takeover: d.client_no_context_takeover,
        server_max_window_bits: d.server_max_window_bits,
        client_max_window_bits: d.client_max_window_bits,
    }
}

fn deflate_in(d: &wit::DeflateParams) -> DeflateConfig {
    DeflateConfig {
        server_no_context_takeover: d.server_no_context_takeover,
        client_no_context_takeover: d.client_no_context_takeover,
        server_max_window_bits: d.server_max_window_bits.clamp(8, 15),
        client_max_window_bits: d.client_max_window_bits.clamp(8, 15),
    }
}

fn handshake(
    method: &wit_types::Method,
    version: wit_types::Version,
    fields: &[wit_types::Field],
    options: &wit::HandshakeOptions,
) -> Result<wit::Handshake, wit::HandshakeRefusal> {
    let bytes = request_bytes(method, version, fields).ok_or_else(malformed)?;
    let limits = Limits {
        max_request_line: usize::MAX,
        max_head: usize::MAX,
        max_headers: usize::MAX,
        ..Limits::default()
    };
    let head = match parse_request_head(&bytes, &limits) {
        Ok(Some((head, _))) => head,
        Ok(None) | Err(_) => return Err(malformed()),
    };
    let protocols: Vec<&str> = options.protocols.iter().map(String::as_str).collect();
    let options = HandshakeOptions {
        protocols: &protocols,
        deflate: options.deflate,
    };
    let accepted = check_handshake(&head, &options).map_err(refusal)?;
    Ok(wit::Handshake {
        accept: accepted.accept.clone(),
        protocol: accepted.protocol.clone(),
        deflate: accepted.deflate.as_ref().map(deflate_out),
        response_fields: accepted
            .response_headers()
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect(),
    })
}

fn config_out(c: &WsConfig) -> wit::SessionConfig {
    wit::SessionConfig {
        max_frame: size_out(c.max_frame),
        max_message: size_out(c.max_message),
        deflate: c.deflate.as_ref().map(deflate_out),
        ping_interval: c.ping_interval.map(duration_nanos),
        ping_timeout: duration_nanos(c.ping_timeout),
        close_timeout: duration_nanos(c.close_timeout),
        send_timeout: duration_nanos(c.send_timeout),
        // Input a session holds unconsumed before `feed` refuses more: the HTTP default,
        // which the native server applies to WebSocket input too.
        max_buffered: size_out(Limits::default().max_buffered),
    }
}

fn config_in(c: &wit::SessionConfig) -> WsConfig {
    WsConfig {
        max_frame: size(c.max_frame),
        max_message: size(c.max_message),
        deflate: c.deflate.as_ref().map(deflate_in),
        ping_interval: c.ping_interval.map(duration),
        ping_timeout: duration(c.ping_timeout),
        close_timeout: duration(c.close_timeout),
        send_timeout: duration(c.send_timeout),
    }
}

fn ws_error(e: WsError) -> wit::WsError {
    use wit::WsErrorCode as C;
    let code = match e {
        WsError::ReservedOpcode => C::ReservedOpcode,
        WsError::ReservedBits => C::ReservedBits,
        WsError::FragmentedControl => C::FragmentedControl,
        WsError::UnexpectedContinuation => C::UnexpectedContinuation,
        WsError::UnfinishedMessage => C::UnfinishedMessage,
        WsError::Unmasked => C::Unmasked,
        WsError::ControlTooLong => C::ControlTooLong,
        WsError::LengthHighBit => C::LengthHighBit,
        WsError::FrameTooLarge => C::FrameTooLarge,
        WsError::MessageTooLarge => C::MessageTooLarge,
        WsError::InvalidUtf8 => C::InvalidUtf8,
        WsError::InvalidCompressedData => C::InvalidCompressedData,
        WsError::OneByteClose => C::OneByteClose,
        WsError::InvalidCloseCode => C::InvalidCloseCode,
        WsError::CloseReasonNotUtf8 => C::CloseReasonNotUtf8,
        WsError::OverBudget => C::OverBudget,
    };
    wit::WsError {
        code,
        close_code: e.close_code().as_u16(),
        reason: e.reason().to_owned(),
    }
}

fn send_error(e: WsSendError) -> wit::WsSendError {
    match e {
        WsSendError::Closed => wit::WsSendError::Closed,
        WsSendError::TooLarge => wit::WsSendError::TooLarge,
    }
}

/// The state behind one `session` handle (a `RefCell` for the reason given on
/// `http::ServerConnection`).
pub struct Session {
    state: RefCell<State>,
}

struct State {
    ws: WebSocket,
    input: Input,
    max_buffered: usize,
}

impl Session {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.borrow_mut())
    }
}

impl wit::GuestSession for Session {
    fn new(config: wit::SessionConfig, now: wit_types::Instant) -> Session {
        Session {
            state: RefCell::new(State {
                ws: WebSocket::new(config_in(&config), instant(now)),
                input: Input::default(),
                max_buffered: size(config.max_buffered),
            }),
        }
    }

    fn feed(&self, data: Vec<u8>) -> Result<(), FeedError> {
        self.with(|s| s.input.feed(&data, s.max_buffered))
    }

    fn receive_eof(&self) {
        self.with(|s| s.ws.receive_eof());
    }

    fn poll_event(&self, now: wit_types::Instant) -> Result<wit::WsEvent, wit::WsError> {
        self.with(|s| {
            let (event, consumed) =
                s.ws.next_event(s.input.bytes(), instant(now))
                    .map_err(ws_error)?;
            let event = match event {
                WsEvent::Text(text) => wit::WsEvent::Text(text.to_owned()),
                WsEvent::Binary(data) => wit::WsEvent::Binary(data.to_vec()),
                WsEvent::Ping(data) => wit::WsEvent::Ping(data.to_vec()),
                WsEvent::Pong(data) => wit::WsEvent::Pong(data.to_vec()),
                WsEvent::Close { code, reason } => wit::WsEvent::Close(wit::CloseFrame {
                    code: code.map(CloseCode::as_u16),
                    reason: reason.to_owned(),
                }),
                WsEvent::NeedData => wit::WsEvent::NeedData,
                WsEvent::Closed => wit::WsEvent::Closed,
            };
            s.input.consume(consumed);
            Ok(event)
        })
    }

    fn handle_timeout(&self, now: wit_types::Instant) {
        self.with(|s| s.ws.handle_timeout(instant(now)));
    }

    fn send_text(&self, text: String, now: wit_types::Instant) -> Result<(), wit::WsSendError> {
        self.with(|s| s.ws.send_text(&text, instant(now)))
            .map_err(send_error)
    }

    fn send_binary(&self, data: Vec<u8>, now: wit_types::Instant) -> Result<(), wit::WsSendError> {
        self.with(|s| s.ws.send_binary(&data, instant(now)))
            .map_err(send_error)
    }

    fn send_ping(&self, data: Vec<u8>, now: wit_types::Instant) -> Result<(), wit::WsSendError> {
        self.with(|s| s.ws.send_ping(&data, instant(now)))
            .map_err(send_error)
    }

    fn close(&self, code: u16, reason: String, now: wit_types::Instant) {
        self.with(|s| s.ws.close(CloseCode::new(code), &reason, instant(now)));
    }

    fn transmit(&self, max: u32) -> Vec<u8> {
        self.with(|s| front(s.ws.transmit(), max))
    }

    fn pending_transmit(&self) -> u64 {
        self.with(|s| size_out(s.ws.transmit().len()))
    }

    fn advance_transmit(&self, n: u64, now: wit_types::Instant) {
        self.with(|s| s.ws.advance_transmit(size(n), instant(now)));
    }

    fn poll_timeout(&self) -> Option<wit_types::Instant> {
        self.with(|s| s.ws.poll_timeout().map(nanos))
    }

    fn set_message_budget(&self, bytes: u64) {
        self.with(|s| s.ws.set_message_budget(size(bytes)));
    }

    fn buffered(&self) -> u64 {
        self.with(|s| size_out(s.ws.buffered().saturating_add(s.input.len())))
    }

    fn is_closing(&self) -> bool {
        self.with(|s| s.ws.is_closing())
    }

    fn is_closed(&self) -> bool {
        self.with(|s| s.ws.is_closed())
    }

    fn take_transmit(&self, max: u32, now: wit_types::Instant) -> Vec<u8> {
        self.with(|s| {
            let taken = front(s.ws.transmit(), max);
            s.ws.advance_transmit(taken.len(), instant(now));
            taken
        })
    }

    fn status(&self) -> wit::SessionStatus {
        self.with(|s| wit::SessionStatus {
            pending_transmit: size_out(s.ws.transmit().len()),
            deadline: s.ws.poll_timeout().map(nanos),
            buffered: size_out(s.ws.buffered().saturating_add(s.input.len())),
            closing: s.ws.is_closing(),
            closed: s.ws.is_closed(),
        })
    }
}
