//! The interface between a driver and the application: an [`App`] answers a request head,
//! either at once through [`Output`] or by returning a [`Responder`] that streams the response
//! and/or consumes the request body as the driver allows (backpressure).
//!
//! Two drivers feed one application: the event loop, whose responses go to the protocol
//! core's [`Connection`], and the `wasi:http` bridge (crate `weft-http`), whose responses go
//! to the host's response. Both are a [`ResponseSink`]; [`Output`] is the application's view
//! of one.
//!
//! Per exchange the driver keeps an [`Exchange`]: the statistics of the response
//! ([`ExchangeStats`]), the extra response header fields middleware asked for
//! ([`ExtraHeaders`], appended by [`Output::head`] and [`Output::full`] to every head of the
//! exchange, immediate or streamed) and, when something observes finished exchanges, the
//! request line.

use std::fmt;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use weft_core::ws::WsSendError;
use weft_core::{is_token, BodyKind, Connection, Now, RequestHead, Response, SendError};

use crate::deflate_encoder::CompressError;
use crate::websocket::PendingUpgrade;

/// A failure in the application layer, with its cause. Inside a handler: before the response
/// started it becomes a 500; after, the connection is closed (its framing cannot be completed
/// honestly). Building an app from an invalid configuration is [`AppError::Config`].
///
/// The `Display` text is what the error log shows (`io: ...`, `send: ...`, a handler's own
/// message); [`std::error::Error::source`] gives the underlying error where there is one.
#[derive(Debug)]
pub enum AppError {
    /// A file (or other I/O) operation failed.
    Io(std::io::Error),
    /// Queueing the response on the connection failed.
    Send(SendError),
    /// Queueing a WebSocket message failed.
    WebSocket(WsSendError),
    /// The content-coding encoder failed.
    Compress(CompressError),
    /// A file changed while it was being served (what was seen).
    FileChanged(&'static str),
    /// A broken internal invariant (what it was).
    Internal(&'static str),
    /// A handler failed on its own terms (its message).
    Handler(String),
    /// An invalid configuration (which value, and why).
    Config(String),
}

impl AppError {
    /// A handler's own failure.
    pub fn handler(message: impl Into<String>) -> AppError {
        AppError::Handler(message.into())
    }
}

impl fmt::Display for AppError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AppError::Io(e) => write!(f, "io: {e}"),
            AppError::Send(e) => write!(f, "send: {e}"),
            AppError::WebSocket(e) => write!(f, "websocket send: {e}"),
            AppError::Compress(e) => write!(f, "{e}"),
            AppError::FileChanged(what) | AppError::Internal(what) => f.write_str(what),
            AppError::Handler(message) | AppError::Config(message) => f.write_str(message),
        }
    }
}

impl std::error::Error for AppError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            AppError::Io(e) => Some(e),
            AppError::Send(e) => Some(e),
            AppError::WebSocket(e) => Some(e),
            AppError::Compress(e) => Some(e),
            AppError::FileChanged(_)
            | AppError::Internal(_)
            | AppError::Handler(_)
            | AppError::Config(_) => None,
        }
    }
}

impl From<SendError> for AppError {
    fn from(e: SendError) -> AppError {
        AppError::Send(e)
    }
}

impl From<std::io::Error> for AppError {
    fn from(e: std::io::Error) -> AppError {
        AppError::Io(e)
    }
}

impl From<WsSendError> for AppError {
    fn from(e: WsSendError) -> AppError {
        AppError::WebSocket(e)
    }
}

impl From<CompressError> for AppError {
    fn from(e: CompressError) -> AppError {
        AppError::Compress(e)
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

/// Whether `value` is a field value weft sends: visible ASCII, spaces and tabs inside, no
/// blank at either end (a stricter form of RFC 9110 5.5, so the core never refuses it).
pub fn is_safe_field_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| b == b'\t' || (b' '..=b'~').contains(&b))
        && !value.first().is_some_and(|b| b.is_ascii_whitespace())
        && !value.last().is_some_and(|b| b.is_ascii_whitespace())
}

#[derive(Clone, Copy, Debug)]
enum Value {
    Static(&'static [u8]),
    /// A range of [`ExtraHeaders::buf`].
    Owned(usize, usize),
}

impl Value {
    fn bytes(self, buf: &[u8]) -> &[u8] {
        match self {
            Value::Static(v) => v,
            Value::Owned(a, b) => buf.get(a..b).unwrap_or(&[]),
        }
    }
}

/// Response header fields added to every response head of one exchange (by middleware: the
/// `Server` field, security headers, CORS). Names are `'static` (middleware defines them);
/// values are static or copied into a buffer that is reused from exchange to exchange, so
/// steady-state requests do not allocate here.
///
/// When the handler sends a field of the same name itself, the handler's field wins and the
/// extra one is left out, except for `Vary`, a list that both contribute to (two `Vary` fields
/// mean the same as one with both values, RFC 9110 5.3).
#[derive(Debug, Default)]
pub struct ExtraHeaders {
    entries: Vec<(&'static str, Value)>,
    buf: Vec<u8>,
    /// Memory for the merged list handed to the core (kept empty between uses).
    scratch: Vec<(&'static str, &'static [u8])>,
}

impl ExtraHeaders {
    pub fn new() -> ExtraHeaders {
        ExtraHeaders::default()
    }

    /// Forgets every field (keeps the memory).
    pub fn clear(&mut self) {
        self.entries.clear();
        self.buf.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a field with a static value. Returns false (and adds nothing) when the name is not
    /// a token or the value is not [`is_safe_field_value`].
    pub fn push_static(&mut self, name: &'static str, value: &'static [u8]) -> bool {
        if !is_token(name.as_bytes()) || !is_safe_field_value(value) {
            return false;
        }
        self.entries.push((name, Value::Static(value)));
        true
    }

    /// Adds every field of a list checked beforehand (no per-request checking).
    pub fn push_fields(&mut self, fields: &StaticFields) {
        self.entries.extend(
            fields
                .0
                .iter()
                .map(|&(name, value)| (name, Value::Static(value))),
        );
    }

    /// Adds a field the caller has already checked (constants; values derived from checked
    /// configuration).
    pub(crate) fn push_trusted(&mut self, name: &'static str, value: &[u8]) {
        debug_assert!(is_token(name.as_bytes()) && is_safe_field_value(value));
        let start = self.buf.len();
        self.buf.extend_from_slice(value);
        self.entries
            .push((name, Value::Owned(start, self.buf.len())));
    }

    /// Adds a constant field the caller has already checked.
    pub(crate) fn push_static_trusted(&mut self, name: &'static str, value: &'static [u8]) {
        debug_assert!(is_token(name.as_bytes()) && is_safe_field_value(value));
        self.entries.push((name, Value::Static(value)));
    }

    /// Adds a field whose value is copied. Same checks as [`ExtraHeaders::push_static`].
    pub fn push(&mut self, name: &'static str, value: &[u8]) -> bool {
        if !is_token(name.as_bytes()) || !is_safe_field_value(value) {
            return false;
        }
        let start = self.buf.len();
        self.buf.extend_from_slice(value);
        self.entries
            .push((name, Value::Owned(start, self.buf.len())));
        true
    }

    /// The fields in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &[u8])> + '_ {
        self.entries
            .iter()
            .map(|&(name, value)| (name, value.bytes(&self.buf)))
    }

    /// The value of the first field called `name` (case-insensitive).
    pub fn get(&self, name: &str) -> Option<&[u8]> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    }
}

/// Header fields with static names and values, checked once when the list is made (with
/// [`weft_core::is_token`] and [`is_safe_field_value`]), so adding them to an exchange costs no check.
#[derive(Clone, Debug, Default)]
pub struct StaticFields(Vec<(&'static str, &'static [u8])>);

impl StaticFields {
    /// `Err` ([`AppError::Config`]) names the first field whose name or value would be
    /// refused.
    pub fn new(fields: Vec<(&'static str, &'static [u8])>) -> Result<StaticFields, AppError> {
        for &(name, value) in &fields {
            if !is_token(name.as_bytes()) || !is_safe_field_value(value) {
                return Err(AppError::Config(format!(
                    "not a valid header field: {name:?}: {:?}",
                    String::from_utf8_lossy(value)
                )));
            }
        }
        Ok(StaticFields(fields))
    }

    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &'static [u8])> + '_ {
        self.0.iter().copied()
    }
}

/// The request line of an exchange, copied at its start for observers that outlive the
/// request head (the access log): the head borrows from the read buffer, which moves on.
#[derive(Debug, Default)]
pub struct RequestLine {
    text: String,
    method_end: usize,
    target_end: usize,
    recorded: bool,
}

impl RequestLine {
    pub fn clear(&mut self) {
        self.text.clear();
        self.recorded = false;
    }

    /// Copies method, target and version of `head` (reusing the memory).
    pub fn record(&mut self, head: &RequestHead<'_>) {
        self.text.clear();
        self.text.push_str(head.method.as_str());
        self.method_end = self.text.len();
        self.text.push(' ');
        self.text.push_str(head.target);
        self.target_end = self.text.len();
        self.text.push(' ');
        self.text.push_str(head.version.as_str());
        self.recorded = true;
    }

    /// `METHOD TARGET VERSION`, when recorded (`None`: not asked for, or the request was
    /// refused before its head was complete).
    pub fn as_str(&self) -> Option<&str> {
        self.recorded.then_some(self.text.as_str())
    }

    pub fn method(&self) -> Option<&str> {
        self.as_str().and_then(|t| t.get(..self.method_end))
    }

    pub fn target(&self) -> Option<&str> {
        self.as_str()
            .and_then(|t| t.get(self.method_end + 1..self.target_end))
    }
}

/// Everything the driver keeps about the exchange in progress on a connection.
#[derive(Debug)]
pub struct Exchange {
    pub stats: ExchangeStats,
    /// When the request head was complete (or the request was refused).
    pub started: Instant,
    /// Added to every response head of this exchange.
    pub headers: ExtraHeaders,
    /// Recorded by the application when it observes finished exchanges.
    pub request: RequestLine,
    /// The WebSocket session a `101` answer accepted, for the driver to run.
    pub upgrade: Option<Box<PendingUpgrade>>,
}

impl Exchange {
    pub fn new(now: Instant) -> Exchange {
        Exchange {
            stats: ExchangeStats::default(),
            started: now,
            headers: ExtraHeaders::new(),
            request: RequestLine::default(),
            upgrade: None,
        }
    }

    /// Frees the memory kept for the next exchange (the connection waits: an idle
    /// connection holds no buffer).
    pub fn release_memory(&mut self) {
        self.headers = ExtraHeaders::new();
        self.request = RequestLine::default();
    }

    /// Resets everything for a new exchange starting `now` (memory is kept).
    pub fn begin(&mut self, now: Instant) {
        self.stats = ExchangeStats::default();
        self.started = now;
        self.headers.clear();
        self.request.clear();
        self.upgrade = None;
    }
}

/// A finished exchange, as [`App::complete`] sees it.
#[derive(Clone, Copy, Debug)]
pub struct Completed<'a> {
    /// The client's address, where the driver knows it (a `wasi:http` host does not tell).
    pub peer: Option<SocketAddr>,
    pub exchange: &'a Exchange,
    /// From the complete request head (or the refusal) to the last response byte queued.
    pub duration: Duration,
}

/// Above this many queued output bytes a connection stops reading and producing: the
/// driver's and the responders' shared notion of "the socket is behind".
pub const WRITE_HIGH_WATER: usize = 64 * 1024;

/// Where an exchange's response goes: what [`Output`] needs of a driver.
///
/// The rules are the protocol core's ([`Connection`], which implements this trait): one
/// response per request; `Date` and the framing fields (`Content-Length`,
/// `Transfer-Encoding`) are the sink's, computed from [`BodyKind`]; a body only between a
/// head and its end; invalid fields are refused, never sent.
pub trait ResponseSink {
    /// Sends a complete response held in memory.
    fn send_full(
        &mut self,
        status: u16,
        headers: &[(&str, &[u8])],
        body: &[u8],
        now: Now,
    ) -> Result<(), SendError>;
    /// Starts a response whose body follows through [`ResponseSink::send_data`].
    fn send_head(&mut self, response: &Response<'_>, now: Now) -> Result<(), SendError>;
    /// Body bytes of the response in progress.
    fn send_data(&mut self, data: &[u8], now: Instant) -> Result<(), SendError>;
    /// The end of the response in progress.
    fn send_end(&mut self, now: Instant) -> Result<(), SendError>;
    /// Ends the exchange for good after a failure that leaves the response unfinishable: the
    /// client must see an incomplete response, never a complete-looking wrong one.
    fn abort(&mut self);
    /// Whether no response has been started for the current request yet.
    fn awaits_response(&self) -> bool;
    /// Response bytes queued but not yet taken by the transport.
    fn queued(&self) -> usize;
    /// Whether a `101 Switching Protocols` can hand the connection to a WebSocket session
    /// (not behind a host that owns the HTTP connection, such as a `wasi:http` host).
    fn upgrades(&self) -> bool;
}

impl ResponseSink for Connection {
    fn send_full(
        &mut self,
        status: u16,
        headers: &[(&str, &[u8])],
        body: &[u8],
        now: Now,
    ) -> Result<(), SendError> {
        Connection::send_full(self, status, headers, body, now)
    }

    fn send_head(&mut self, response: &Response<'_>, now: Now) -> Result<(), SendError> {
        self.send_response(response, now)
    }

    fn send_data(&mut self, data: &[u8], now: Instant) -> Result<(), SendError> {
        Connection::send_data(self, data, now)
    }

    fn send_end(&mut self, now: Instant) -> Result<(), SendError> {
        Connection::send_end(self, &[], now)
    }

    fn abort(&mut self) {
        Connection::abort(self);
    }

    fn awaits_response(&self) -> bool {
        Connection::awaits_response(self)
    }

    fn queued(&self) -> usize {
        self.transmit().len()
    }

    fn upgrades(&self) -> bool {
        true
    }
}

/// The sending half of an exchange as the application sees it.
pub struct Output<'c> {
    sink: &'c mut dyn ResponseSink,
    now: Now,
    stats: &'c mut ExchangeStats,
    extra: &'c mut ExtraHeaders,
    request: &'c mut RequestLine,
    upgrade: &'c mut Option<Box<PendingUpgrade>>,
}

impl<'c> Output<'c> {
    /// Wraps a sink for one step of the exchange `exchange` (what a driver uses): the extra
    /// header fields of the exchange go out with every response head.
    pub fn for_exchange(
        sink: &'c mut dyn ResponseSink,
        now: Now,
        exchange: &'c mut Exchange,
    ) -> Output<'c> {
        let Exchange {
            stats,
            headers,
            request,
            upgrade,
            ..
        } = exchange;
        Output {
            sink,
            now,
            stats,
            extra: headers,
            request,
            upgrade,
        }
    }

    /// Ends the exchange for good (see [`ResponseSink::abort`]).
    pub fn abort(&mut self) {
        self.sink.abort();
    }

    /// Whether this driver can hand the connection to a WebSocket session.
    pub fn upgrades(&self) -> bool {
        self.sink.upgrades()
    }

    /// The statistics of the exchange (status and body bytes sent so far).
    pub fn stats(&mut self) -> &mut ExchangeStats {
        self.stats
    }

    /// The extra header fields of this exchange.
    pub fn extra_headers(&mut self) -> &mut ExtraHeaders {
        self.extra
    }

    /// Copies the request line for observers of the finished exchange.
    pub fn record_request(&mut self, head: &RequestHead<'_>) {
        self.request.record(head);
    }

    /// Parks an accepted WebSocket session in the exchange, for the driver to run.
    pub(crate) fn set_upgrade(&mut self, pending: PendingUpgrade) {
        *self.upgrade = Some(Box::new(pending));
    }

    /// The current time.
    pub fn now(&self) -> Now {
        self.now
    }

    /// Whether no response has been started for the current request yet.
    pub fn awaits_response(&self) -> bool {
        self.sink.awaits_response()
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
        let now = self.now;
        let extra = &mut *self.extra;
        with_merged(extra, headers, |all| {
            self.sink.send_full(status, all, body, now)
        })?;
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
        let now = self.now;
        let extra = &mut *self.extra;
        with_merged(extra, headers, |all| {
            self.sink.send_head(
                &Response {
                    status,
                    headers: all,
                    body,
                },
                now,
            )
        })?;
        Ok(())
    }

    pub fn data(&mut self, data: &[u8]) -> Result<(), AppError> {
        self.stats.body_bytes += data.len() as u64;
        self.sink.send_data(data, self.now.instant)?;
        Ok(())
    }

    pub fn end(&mut self) -> Result<(), AppError> {
        self.sink.send_end(self.now.instant)?;
        Ok(())
    }

    /// Bytes the transmit buffer may still take before the producer should pause.
    pub fn room(&self) -> usize {
        WRITE_HIGH_WATER.saturating_sub(self.sink.queued())
    }
}

/// Calls `send` with the extra fields (minus those the handler sets itself, `Vary` excepted)
/// followed by the handler's fields, gathered in a list whose memory the exchange keeps.
fn with_merged<'a, R>(
    extra: &'a mut ExtraHeaders,
    headers: &'a [(&'a str, &'a [u8])],
    send: impl FnOnce(&[(&'a str, &'a [u8])]) -> R,
) -> R {
    if extra.is_empty() {
        return send(headers);
    }
    let ExtraHeaders {
        entries,
        buf,
        scratch,
    } = extra;
    let buf: &'a Vec<u8> = buf;
    let mut merged = recycle(std::mem::take(scratch));
    merged.reserve(entries.len() + headers.len());
    // Names of different lengths never clash: a mask of the handler's name lengths spares
    // most comparisons.
    let lengths = headers
        .iter()
        .fold(0u64, |mask, (name, _)| mask | 1 << (name.len() % 64));
    for &(name, value) in entries.iter() {
        if lengths & 1 << (name.len() % 64) == 0 || kept(name, headers) {
            merged.push((name, value.bytes(buf)));
        }
    }
    merged.extend_from_slice(headers);
    let result = send(&merged);
    *scratch = recycle(merged);
    result
}

/// An empty list with the memory of `list`, for borrows of another lifetime (the list is
/// emptied first, so no borrow outlives its data; collecting in place keeps the allocation).
fn recycle<'x, 'y>(mut list: Vec<(&'x str, &'x [u8])>) -> Vec<(&'y str, &'y [u8])> {
    list.clear();
    list.into_iter().map(|_| ("", &[][..])).collect()
}

/// Whether an extra field goes out next to the handler's `headers`.
#[inline]
fn kept(name: &str, headers: &[(&str, &[u8])]) -> bool {
    if name.len() == 4 && name.eq_ignore_ascii_case("vary") {
        return true;
    }
    !headers
        .iter()
        .any(|(n, _)| n.len() == name.len() && n.eq_ignore_ascii_case(name))
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

    /// A handler or responder of the current exchange failed. The default (and the
    /// middleware chain's) policy: [`crate::middleware::answer_failure`], a short 500 when no
    /// response has started, else the connection is aborted. `log` is the driver's log sink.
    fn failed(&self, err: &AppError, out: &mut Output<'_>, log: &mut Vec<u8>) {
        crate::middleware::answer_failure(err, out, log);
    }

    /// The exchange is over: its response is complete, or the connection failed. `log` is the
    /// driver's log sink, written out once per loop turn.
    fn complete(&self, _done: &Completed<'_>, _log: &mut Vec<u8>) {}
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::AppError;
    use std::error::Error;

    #[test]
    fn errors_keep_their_text_and_cause() {
        let io = AppError::from(std::io::Error::other("disk on fire"));
        assert_eq!(io.to_string(), "io: disk on fire");
        assert_eq!(io.source().unwrap().to_string(), "disk on fire");
        let compress = AppError::from(crate::deflate_encoder::CompressError("stuck"));
        assert_eq!(compress.to_string(), "compress: stuck");
        assert!(compress.source().is_some());
        let handler = AppError::handler("GET /api/fail fails on purpose");
        assert_eq!(handler.to_string(), "GET /api/fail fails on purpose");
        assert!(handler.source().is_none());
    }
}
