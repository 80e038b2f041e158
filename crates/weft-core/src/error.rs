use std::fmt;

/// A protocol error in the request stream. Each variant carries the status the server answers
/// with ([`Error::status`]); after any of them the connection answers (when it still can) and
/// closes. Errors are sticky: a connection that failed returns the same error from then on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// The request line is malformed (400).
    BadRequestLine,
    /// The request target is longer than the request-line limit allows (414).
    UriTooLong,
    /// The request line is over the limit for a reason other than its target (400).
    RequestLineTooLong,
    /// An HTTP version whose major is not 1 (505); HTTP/1.2 to 1.9 are read as HTTP/1.1.
    VersionNotSupported,
    /// A malformed header field line: bad name, whitespace before the colon, obs-fold, bare CR or
    /// LF, a control character in the value (400).
    BadHeader,
    /// The request head is larger than the limit (431).
    HeadTooLarge,
    /// More header fields than the limit (431).
    TooManyHeaders,
    /// HTTP/1.1 without exactly one valid Host field (400).
    BadHost,
    /// A malformed, overflowing or conflicting Content-Length (400).
    BadContentLength,
    /// Transfer-Encoding that is malformed, does not end in a single `chunked`, or appears in an
    /// HTTP/1.0 request (400).
    BadTransferEncoding,
    /// A well-formed transfer coding this server does not implement (501).
    UnsupportedTransferEncoding,
    /// Both Transfer-Encoding and Content-Length (400).
    ContentLengthWithTransferEncoding,
    /// An expectation other than `100-continue` (417).
    UnsupportedExpectation,
    /// The body is larger than the limit (413).
    BodyTooLarge,
    /// A malformed chunk-size line, chunk terminator or extension (400).
    BadChunk,
    /// A malformed trailer field (400).
    BadTrailer,
    /// The trailer section is larger than the limit (431).
    TrailersTooLarge,
    /// The peer closed the connection in the middle of a message (no answer possible).
    UnexpectedEof,
    /// The request head did not arrive in time (408).
    HeadTimeout,
    /// The request body stalled (408).
    BodyTimeout,
    /// The driver refused the connection: the server is at capacity (503).
    ServerBusy,
}

impl Error {
    /// The status code to answer with.
    pub fn status(self) -> u16 {
        match self {
            Error::BadRequestLine
            | Error::RequestLineTooLong
            | Error::BadHeader
            | Error::BadHost
            | Error::BadContentLength
            | Error::BadTransferEncoding
            | Error::ContentLengthWithTransferEncoding
            | Error::BadChunk
            | Error::BadTrailer
            | Error::UnexpectedEof => 400,
            Error::UriTooLong => 414,
            Error::VersionNotSupported => 505,
            Error::HeadTooLarge | Error::TooManyHeaders | Error::TrailersTooLarge => 431,
            Error::UnsupportedTransferEncoding => 501,
            Error::UnsupportedExpectation => 417,
            Error::BodyTooLarge => 413,
            Error::HeadTimeout | Error::BodyTimeout => 408,
            Error::ServerBusy => 503,
        }
    }

    /// A short human-readable description, also used as the body of error responses.
    pub fn message(self) -> &'static str {
        match self {
            Error::BadRequestLine => "malformed request line",
            Error::UriTooLong => "request target too long",
            Error::RequestLineTooLong => "request line too long",
            Error::VersionNotSupported => "HTTP version not supported",
            Error::BadHeader => "malformed header field",
            Error::HeadTooLarge => "request header section too large",
            Error::TooManyHeaders => "too many header fields",
            Error::BadHost => "missing, duplicate or invalid Host",
            Error::BadContentLength => "invalid Content-Length",
            Error::BadTransferEncoding => "invalid Transfer-Encoding",
            Error::UnsupportedTransferEncoding => "unsupported transfer coding",
            Error::ContentLengthWithTransferEncoding => "both Content-Length and Transfer-Encoding",
            Error::UnsupportedExpectation => "unsupported expectation",
            Error::BodyTooLarge => "request body too large",
            Error::BadChunk => "malformed chunked encoding",
            Error::BadTrailer => "malformed trailer field",
            Error::TrailersTooLarge => "trailer section too large",
            Error::UnexpectedEof => "connection closed mid-message",
            Error::HeadTimeout => "request head timed out",
            Error::BodyTimeout => "request body timed out",
            Error::ServerBusy => "server at capacity, try again later",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.message(), self.status())
    }
}

impl std::error::Error for Error {}

/// A misuse of the sending side by the application. Nothing is written when one is returned,
/// except where noted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SendError {
    /// A response was sent with no request to answer, or twice for one request.
    NoRequestToAnswer,
    /// Body data or end of message without a response head, or after the end.
    NotSendingBody,
    /// The status code is outside 100..=599, is an interim status other than 101, or is 101
    /// for a request that did not ask for an upgrade.
    InvalidStatus,
    /// A header name that is not a token, or a value with CR, LF, NUL or another control
    /// character: response splitting is impossible by construction.
    InvalidHeader,
    /// The application set a framing header (Content-Length, Transfer-Encoding); the core
    /// computes those from [`crate::BodyKind`].
    FramingHeader,
    /// A body was declared for a status that cannot have one (1xx, 204).
    BodyNotAllowed,
    /// More body bytes than the declared Content-Length.
    BodyTooLong,
    /// The message ended before the declared Content-Length was sent; the connection will close
    /// because the framing is broken (the end is still recorded).
    BodyTooShort,
    /// The connection is closed or failed.
    Closed,
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            SendError::NoRequestToAnswer => "no request to answer",
            SendError::NotSendingBody => "no response body in progress",
            SendError::InvalidStatus => "invalid status code",
            SendError::InvalidHeader => "invalid header name or value",
            SendError::FramingHeader => "framing headers are set by the core",
            SendError::BodyNotAllowed => "this status cannot have a body",
            SendError::BodyTooLong => "body longer than its Content-Length",
            SendError::BodyTooShort => "body shorter than its Content-Length",
            SendError::Closed => "connection closed",
        };
        f.write_str(text)
    }
}

impl std::error::Error for SendError {}
