//! The response side of the bridge: [`HostResponse`] is the [`ResponseSink`] the
//! application writes to. It checks a response the way the protocol core does (one response
//! per request, valid status and fields, no framing fields from the application, a body only
//! where one is allowed and exactly as long as declared) and keeps what the host must be told:
//! the head, once, and the body bytes until the host's stream takes them.
//!
//! Framing is the host's: a body of known length is announced with `Content-Length` (the
//! host enforces it), a streamed one without (the host frames it); `Date` is the host's too.
//! The response to a `HEAD` request keeps its `Content-Length` and sends no body bytes.

use std::time::Instant;

use weft_app::ResponseSink;
use weft_core::{check_response_field, BodyKind, Now, Response, SendError};

/// A response head for the host: status and fields (the framing field included).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostHead {
    pub status: u16,
    pub fields: Vec<(String, Vec<u8>)>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// No response yet.
    Awaiting,
    /// Body bytes may follow; `remaining` is what a declared length still expects.
    Body { remaining: Option<u64> },
    /// The response is complete.
    Ended,
    /// The exchange was aborted: the host must see an incomplete response.
    Aborted,
}

/// Fields dropped from the application's response: the host manages its connection
/// (`Connection: close` from the application has no meaning behind a host).
const HOST_CONNECTION: &[&str] = &["connection", "keep-alive", "proxy-connection", "upgrade"];

/// The response of one exchange behind a host.
#[derive(Debug)]
pub struct HostResponse {
    head_request: bool,
    state: State,
    head: Option<HostHead>,
    /// Body bytes for the host; the first `sent` of them are taken already.
    queue: Vec<u8>,
    sent: usize,
}

impl HostResponse {
    /// The response to a request (`head_request`: the method was `HEAD`, so no body bytes).
    pub fn new(head_request: bool) -> HostResponse {
        HostResponse {
            head_request,
            state: State::Awaiting,
            head: None,
            queue: Vec::new(),
            sent: 0,
        }
    }

    /// The head, once, when the application has sent one.
    pub fn take_head(&mut self) -> Option<HostHead> {
        self.head.take()
    }

    /// Body bytes waiting for the host.
    pub fn pending(&self) -> &[u8] {
        self.queue.get(self.sent..).unwrap_or_default()
    }

    /// The host took `n` of the pending bytes. The taken front is dropped once it is at least
    /// half the queue (not on every write: each drop moves what is left).
    pub fn consume(&mut self, n: usize) {
        self.sent = (self.sent + n).min(self.queue.len());
        if self.sent == self.queue.len() {
            self.queue.clear();
            self.sent = 0;
        } else if self.sent * 2 >= self.queue.len() {
            self.queue.drain(..self.sent);
            self.sent = 0;
        }
    }

    /// Whether the response is complete (every byte may not have been taken yet).
    pub fn ended(&self) -> bool {
        self.state == State::Ended
    }

    /// Whether the exchange was aborted.
    pub fn aborted(&self) -> bool {
        self.state == State::Aborted
    }

    /// Whether a body is being sent (a head went out and its end has not).
    pub fn sending_body(&self) -> bool {
        matches!(self.state, State::Body { .. })
    }

    fn start(&mut self, response: &Response<'_>) -> Result<(), SendError> {
        match self.state {
            State::Awaiting => {}
            State::Aborted => return Err(SendError::Closed),
            State::Body { .. } | State::Ended => return Err(SendError::NoRequestToAnswer),
        }
        let status = response.status;
        // 1xx (101 included: nothing can be upgraded here) is the host's business.
        if !(200..=599).contains(&status) {
            return Err(SendError::InvalidStatus);
        }
        let no_body = status == 204 || status == 304;
        if status == 204 && response.body != BodyKind::Length(0) {
            return Err(SendError::BodyNotAllowed);
        }
        let mut fields = Vec::with_capacity(response.headers.len() + 1);
        for &(name, value) in response.headers {
            check_response_field(name, value)?;
            if HOST_CONNECTION.iter().any(|n| name.eq_ignore_ascii_case(n)) {
                continue;
            }
            fields.push((name.to_string(), value.to_vec()));
        }
        let remaining = match response.body {
            _ if no_body => Some(0),
            BodyKind::Length(n) => {
                fields.push(("content-length".to_string(), n.to_string().into_bytes()));
                Some(if self.head_request { 0 } else { n })
            }
            BodyKind::Stream if self.head_request => Some(0),
            BodyKind::Stream => None,
        };
        self.head = Some(HostHead { status, fields });
        self.state = State::Body { remaining };
        Ok(())
    }

    fn body(&mut self, data: &[u8]) -> Result<(), SendError> {
        let State::Body { remaining } = &mut self.state else {
            return Err(match self.state {
                State::Aborted => SendError::Closed,
                _ => SendError::NotSendingBody,
            });
        };
        if self.head_request {
            // Counted against nothing: a HEAD response never carries the bytes.
            return Ok(());
        }
        if let Some(left) = remaining {
            let len = data.len() as u64;
            if len > *left {
                return Err(SendError::BodyTooLong);
            }
            *left -= len;
        }
        self.queue.extend_from_slice(data);
        Ok(())
    }

    fn end(&mut self) -> Result<(), SendError> {
        match self.state {
            State::Body { remaining } if remaining.unwrap_or(0) == 0 => {
                self.state = State::Ended;
                Ok(())
            }
            State::Body { .. } => {
                // The host would refuse to finish a body shorter than its Content-Length: the
                // exchange cannot end honestly.
                self.state = State::Aborted;
                Err(SendError::BodyTooShort)
            }
            State::Aborted => Err(SendError::Closed),
            State::Awaiting | State::Ended => Err(SendError::NotSendingBody),
        }
    }
}

impl ResponseSink for HostResponse {
    fn send_full(
        &mut self,
        status: u16,
        headers: &[(&str, &[u8])],
        body: &[u8],
        _now: Now,
    ) -> Result<(), SendError> {
        let no_body = status == 204 || status == 304;
        let length = if no_body { 0 } else { body.len() as u64 };
        self.start(&Response {
            status,
            headers,
            body: BodyKind::Length(length),
        })?;
        if !no_body {
            self.body(body)?;
        }
        self.end()
    }

    fn send_head(&mut self, response: &Response<'_>, _now: Now) -> Result<(), SendError> {
        self.start(response)
    }

    fn send_data(&mut self, data: &[u8], _now: Instant) -> Result<(), SendError> {
        self.body(data)
    }

    fn send_end(&mut self, _now: Instant) -> Result<(), SendError> {
        self.end()
    }

    fn abort(&mut self) {
        self.state = State::Aborted;
    }

    fn awaits_response(&self) -> bool {
        self.state == State::Awaiting
    }

    fn queued(&self) -> usize {
        self.queue.len() - self.sent
    }

    fn upgrades(&self) -> bool {
        false
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use weft_core::HttpDate;

    fn now() -> Now {
        Now {
            instant: Instant::now(),
            date: HttpDate::from_system_time(std::time::SystemTime::UNIX_EPOCH),
        }
    }

    fn field(head: &HostHead, name: &str) -> Option<String> {
        head.fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
    }

    #[test]
    fn a_full_response_has_its_length_and_body() {
        let mut r = HostResponse::new(false);
        assert!(r.awaits_response());
        r.send_full(
            200,
            &[("Content-Type", b"text/plain"), ("Connection", b"close")],
            b"hi",
            now(),
        )
        .unwrap();
        let head = r.take_head().unwrap();
        assert_eq!(head.status, 200);
        assert_eq!(field(&head, "content-length").as_deref(), Some("2"));
        assert_eq!(field(&head, "connection"), None);
        assert_eq!(r.pending(), b"hi");
        assert!(r.ended());
        assert!(r.take_head().is_none());
        assert_eq!(
            r.send_full(200, &[], b"", now()),
            Err(SendError::NoRequestToAnswer)
        );
    }

    #[test]
    fn a_head_request_keeps_the_length_and_drops_the_bytes() {
        let mut r = HostResponse::new(true);
        r.send_full(200, &[], b"hello", now()).unwrap();
        assert_eq!(
            field(&r.take_head().unwrap(), "content-length").as_deref(),
            Some("5")
        );
        assert!(r.pending().is_empty());
        assert!(r.ended());
        let mut r = HostResponse::new(true);
        r.send_head(
            &Response {
                status: 200,
                headers: &[],
                body: BodyKind::Stream,
            },
            now(),
        )
        .unwrap();
        r.send_data(b"x", Instant::now()).unwrap();
        r.send_end(Instant::now()).unwrap();
        assert!(r.pending().is_empty() && r.ended());
    }

    #[test]
    fn streamed_bodies_have_no_length_and_declared_ones_are_exact() {
        let mut r = HostResponse::new(false);
        r.send_head(
            &Response {
                status: 200,
                headers: &[],
                body: BodyKind::Stream,
            },
            now(),
        )
        .unwrap();
        assert_eq!(field(&r.take_head().unwrap(), "content-length"), None);
        r.send_data(b"abc", Instant::now()).unwrap();
        r.consume(2);
        assert_eq!(r.pending(), b"c");
        r.send_end(Instant::now()).unwrap();
        let mut r = HostResponse::new(false);
        r.send_head(
            &Response {
                status: 200,
                headers: &[],
                body: BodyKind::Length(3),
            },
            now(),
        )
        .unwrap();
        assert_eq!(
            r.send_data(b"abcd", Instant::now()),
            Err(SendError::BodyTooLong)
        );
        r.send_data(b"ab", Instant::now()).unwrap();
        assert_eq!(r.send_end(Instant::now()), Err(SendError::BodyTooShort));
        assert!(r.aborted());
    }

    #[test]
    fn what_the_core_refuses_is_refused() {
        let mut r = HostResponse::new(false);
        assert_eq!(
            r.send_full(101, &[], b"", now()),
            Err(SendError::InvalidStatus)
        );
        assert_eq!(
            r.send_full(600, &[], b"", now()),
            Err(SendError::InvalidStatus)
        );
        assert_eq!(
            r.send_full(200, &[("Content-Length", b"1")], b"x", now()),
            Err(SendError::FramingHeader)
        );
        assert_eq!(
            r.send_full(200, &[("X-A", b"a\r\nb")], b"x", now()),
            Err(SendError::InvalidHeader)
        );
        assert_eq!(
            r.send_data(b"x", Instant::now()),
            Err(SendError::NotSendingBody)
        );
        assert!(r.awaits_response());
        r.send_full(304, &[("ETag", b"\"x\"")], b"", now()).unwrap();
        assert_eq!(field(&r.take_head().unwrap(), "content-length"), None);
        let mut r = HostResponse::new(false);
        r.abort();
        assert_eq!(r.send_full(200, &[], b"", now()), Err(SendError::Closed));
    }
}
