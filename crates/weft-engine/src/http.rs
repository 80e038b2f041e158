//! `weft:engine/http`: one `server-connection` resource per TCP connection, wrapping
//! weft-core's `Connection`.

use std::cell::RefCell;

use weft_core::{
    BodyKind, Connection, Error, Event, Framing, Limits, RequestHead, Response, SendError,
};

use crate::convert::{borrow_fields, fields, method, version};
use crate::input::Input;
use crate::time::{duration, duration_nanos, instant, nanos, now, size, size_out};
use crate::wit_http as wit;
use crate::wit_types::{self, FeedError};
use crate::Engine;

impl wit::Guest for Engine {
    type ServerConnection = ServerConnection;

    fn default_limits() -> wit::Limits {
        limits_out(&Limits::default())
    }
}

/// The state behind one `server-connection` handle. The component model calls methods with a
/// shared borrow; the state lives in a `RefCell`, which no call can find borrowed (the
/// component imports nothing, so no export runs inside another).
pub struct ServerConnection {
    state: RefCell<State>,
}

struct State {
    conn: Connection,
    input: Input,
}

fn limits_out(l: &Limits) -> wit::Limits {
    wit::Limits {
        max_request_line: size_out(l.max_request_line),
        max_head: size_out(l.max_head),
        max_headers: size_out(l.max_headers),
        max_body: l.max_body,
        max_chunk_line: size_out(l.max_chunk_line),
        max_chunk_ext_total: size_out(l.max_chunk_ext_total),
        max_trailers: size_out(l.max_trailers),
        max_drain: l.max_drain,
        max_buffered: size_out(l.max_buffered),
        header_timeout: duration_nanos(l.header_timeout),
        idle_timeout: duration_nanos(l.idle_timeout),
        body_timeout: duration_nanos(l.body_timeout),
        send_timeout: duration_nanos(l.send_timeout),
    }
}

fn limits_in(l: &wit::Limits) -> Limits {
    Limits {
        max_request_line: size(l.max_request_line),
        max_head: size(l.max_head),
        max_headers: size(l.max_headers),
        max_body: l.max_body,
        max_chunk_line: size(l.max_chunk_line),
        max_chunk_ext_total: size(l.max_chunk_ext_total),
        max_trailers: size(l.max_trailers),
        max_drain: l.max_drain,
        max_buffered: size(l.max_buffered),
        header_timeout: duration(l.header_timeout),
        idle_timeout: duration(l.idle_timeout),
        body_timeout: duration(l.body_timeout),
        send_timeout: duration(l.send_timeout),
    }
}

fn error_code(e: Error) -> wit::ErrorCode {
    use wit::ErrorCode as C;
    match e {
        Error::BadRequestLine => C::BadRequestLine,
        Error::UriTooLong => C::UriTooLong,
        Error::RequestLineTooLong => C::RequestLineTooLong,
        Error::VersionNotSupported => C::VersionNotSupported,
        Error::BadHeader => C::BadHeader,
        Error::HeadTooLarge => C::HeadTooLarge,
        Error::TooManyHeaders => C::TooManyHeaders,
        Error::BadHost => C::BadHost,
        Error::BadContentLength => C::BadContentLength,
        Error::BadTransferEncoding => C::BadTransferEncoding,
        Error::UnsupportedTransferEncoding => C::UnsupportedTransferEncoding,
        Error::ContentLengthWithTransferEncoding => C::ContentLengthWithTransferEncoding,
        Error::UnsupportedExpectation => C::UnsupportedExpectation,
        Error::BodyTooLarge => C::BodyTooLarge,
        Error::BadChunk => C::BadChunk,
        Error::BadTrailer => C::BadTrailer,
        Error::TrailersTooLarge => C::TrailersTooLarge,
        Error::UnexpectedEof => C::UnexpectedEof,
        Error::HeadTimeout => C::HeadTimeout,
        Error::BodyTimeout => C::BodyTimeout,
        Error::ServerBusy => C::ServerBusy,
    }
}

fn protocol_error(e: Error) -> wit::ProtocolError {
    wit::ProtocolError {
        code: error_code(e),
        status: e.status(),
        message: e.message().to_owned(),
    }
}

fn send_error(e: SendError) -> wit::SendError {
    use wit::SendError as W;
    match e {
        SendError::NoRequestToAnswer => W::NoRequestToAnswer,
        SendError::NotSendingBody => W::NotSendingBody,
        SendError::InvalidStatus => W::InvalidStatus,
        SendError::InvalidHeader => W::InvalidHeader,
        SendError::FramingHeader => W::FramingHeader,
        SendError::BodyNotAllowed => W::BodyNotAllowed,
        SendError::BodyTooLong => W::BodyTooLong,
        SendError::BodyTooShort => W::BodyTooShort,
        SendError::Closed => W::Closed,
    }
}

fn request_head(head: &RequestHead<'_>) -> wit::RequestHead {
    wit::RequestHead {
        method: method(head.method),
        target: head.target.to_owned(),
        path: head.path().to_owned(),
        query: head.query().map(str::to_owned),
        version: version(head.version),
        fields: fields(&head.headers),
        body: match head.framing {
            Framing::None => wit_types::BodyFraming::None,
            Framing::Length(n) => wit_types::BodyFraming::Length(n),
            Framing::Chunked => wit_types::BodyFraming::Chunked,
        },
        keep_alive: head.keep_alive,
        expect_continue: head.expect_continue,
        upgrade: head.upgrade.map(<[u8]>::to_vec),
        host: head.host.to_vec(),
    }
}

fn body_kind(body: wit::BodyKind) -> BodyKind {
    match body {
        wit::BodyKind::Length(n) => BodyKind::Length(n),
        wit::BodyKind::Stream => BodyKind::Stream,
    }
}

/// Up to `max` bytes from the front of `pending`.
pub fn front(pending: &[u8], max: u32) -> Vec<u8> {
    let n = pending.len().min(size(u64::from(max)));
    pending.get(..n).unwrap_or(&[]).to_vec()
}

impl ServerConnection {
    fn with<R>(&self, f: impl FnOnce(&mut State) -> R) -> R {
        f(&mut self.state.borrow_mut())
    }
}

impl wit::GuestServerConnection for ServerConnection {
    fn new(limits: wit::Limits, now: wit_types::Instant) -> ServerConnection {
        ServerConnection {
            state: RefCell::new(State {
                conn: Connection::new(limits_in(&limits), instant(now)),
                input: Input::default(),
            }),
        }
    }

    fn feed(&self, data: Vec<u8>) -> Result<(), FeedError> {
        self.with(|s| {
            let limit = s.conn.limits().max_buffered;
            s.input.feed(&data, limit)
        })
    }

    fn receive_eof(&self) {
        self.with(|s| s.conn.receive_eof());
    }

    fn poll_event(&self, now_: wit_types::Now) -> Result<wit::Event, wit::ProtocolError> {
        let now = now(now_);
        self.with(|s| {
            let (event, consumed) = s
                .conn
                .next_event(s.input.bytes(), now)
                .map_err(protocol_error)?;
            let event = match event {
                Event::Request(head) => wit::Event::Request(request_head(&head)),
                Event::Data(data) => wit::Event::Data(data.to_vec()),
                Event::End(trailers) => wit::Event::End(fields(&trailers)),
                Event::NeedData => wit::Event::NeedData,
                Event::Paused => wit::Event::Paused,
                Event::Upgraded => wit::Event::Upgraded(Vec::new()),
                Event::Closed => wit::Event::Closed,
            };
            s.input.consume(consumed);
            Ok(match event {
                wit::Event::Upgraded(_) => wit::Event::Upgraded(s.input.take()),
                other => other,
            })
        })
    }

    fn handle_timeout(&self, now_: wit_types::Now) {
        let now = now(now_);
        self.with(|s| s.conn.handle_timeout(now));
    }

    fn send_response(
        &self,
        response: wit::Response,
        now_: wit_types::Now,
    ) -> Result<(), wit::SendError> {
        let now = now(now_);
        let headers = borrow_fields(&response.fields);
        let response = Response {
            status: response.status,
            headers: &headers,
            body: body_kind(response.body),
        };
        self.with(|s| s.conn.send_response(&response, now))
            .map_err(send_error)
    }

    fn send_data(&self, data: Vec<u8>, now: wit_types::Instant) -> Result<(), wit::SendError> {
        self.with(|s| s.conn.send_data(&data, instant(now)))
            .map_err(send_error)
    }

    fn send_end(
        &self,
        trailers: Vec<wit_types::Field>,
        now: wit_types::Instant,
    ) -> Result<(), wit::SendError> {
        let trailers = borrow_fields(&trailers);
        self.with(|s| s.conn.send_end(&trailers, instant(now)))
            .map_err(send_error)
    }

    fn send_full(
        &self,
        status: u16,
        fields: Vec<wit_types::Field>,
        body: Vec<u8>,
        now_: wit_types::Now,
    ) -> Result<(), wit::SendError> {
        let now = now(now_);
        let headers = borrow_fields(&fields);
        self.with(|s| s.conn.send_full(status, &headers, &body, now))
            .map_err(send_error)
    }

    fn close_after_exchange(&self) {
        self.with(|s| s.conn.close_after_exchange());
    }

    fn refuse(&self, now_: wit_types::Now) {
        let now = now(now_);
        self.with(|s| s.conn.refuse(now));
    }

    fn abort(&self) {
        self.with(|s| s.conn.abort());
    }

    fn transmit(&self, max: u32) -> Vec<u8> {
        self.with(|s| front(s.conn.transmit(), max))
    }

    fn pending_transmit(&self) -> u64 {
        self.with(|s| size_out(s.conn.transmit().len()))
    }

    fn advance_transmit(&self, n: u64, now: wit_types::Instant) {
        self.with(|s| s.conn.advance_transmit(size(n), instant(now)));
    }

    fn poll_timeout(&self) -> Option<wit_types::Instant> {
        self.with(|s| s.conn.poll_timeout().map(nanos))
    }

    fn release_memory(&self) {
        self.with(|s| s.conn.release_memory());
    }

    fn buffered(&self) -> u64 {
        self.with(|s| size_out(s.input.len()))
    }

    fn is_reading_body(&self) -> bool {
        self.with(|s| s.conn.is_reading_body())
    }

    fn awaits_response(&self) -> bool {
        self.with(|s| s.conn.awaits_response())
    }

    fn is_sending_body(&self) -> bool {
        self.with(|s| s.conn.is_sending_body())
    }

    fn is_upgraded(&self) -> bool {
        self.with(|s| s.conn.is_upgraded())
    }

    fn is_closed(&self) -> bool {
        self.with(|s| s.conn.is_closed())
    }

    fn error(&self) -> Option<wit::ProtocolError> {
        self.with(|s| s.conn.error().map(protocol_error))
    }

    fn take_transmit(&self, max: u32, now: wit_types::Instant) -> Vec<u8> {
        self.with(|s| {
            let taken = front(s.conn.transmit(), max);
            s.conn.advance_transmit(taken.len(), instant(now));
            taken
        })
    }

    fn status(&self) -> wit::ConnectionStatus {
        self.with(|s| wit::ConnectionStatus {
            pending_transmit: size_out(s.conn.transmit().len()),
            deadline: s.conn.poll_timeout().map(nanos),
            buffered: size_out(s.input.len()),
            reading_body: s.conn.is_reading_body(),
            awaits_response: s.conn.awaits_response(),
            sending_body: s.conn.is_sending_body(),
            upgraded: s.conn.is_upgraded(),
            closed: s.conn.is_closed(),
        })
    }
}
