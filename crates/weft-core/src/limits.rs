use std::time::Duration;

/// Every limit and timeout of a connection, in one place. Each limit names the status that is
/// answered when it is exceeded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Longest request line (method, target, version, CRLF). Over it: 414 when the target is what
    /// makes it long, 400 otherwise.
    pub max_request_line: usize,
    /// Largest request head (request line and header section). Over it: 431.
    pub max_head: usize,
    /// Most header fields in a request. Over it: 431.
    pub max_headers: usize,
    /// Largest request body. Over it: 413.
    pub max_body: u64,
    /// Longest chunk-size line including extensions. Over it: 400.
    pub max_chunk_line: usize,
    /// Most chunk-extension bytes summed over one message. Over it: 400.
    pub max_chunk_ext_total: usize,
    /// Largest trailer section. Over it: 431.
    pub max_trailers: usize,
    /// Most unread request-body bytes discarded after the response, to keep the connection
    /// alive; a longer remainder closes the connection instead.
    pub max_drain: u64,
    /// Most bytes a driver should hold unparsed per connection (pipelined input); the driver
    /// stops reading above it. Bounds pipeline depth by bytes.
    pub max_buffered: usize,
    /// Time allowed to receive a whole request head once its first byte arrived (slow-loris).
    pub header_timeout: Duration,
    /// Time a keep-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
    /// Longest pause while receiving a request body.
    pub body_timeout: Duration,
    /// Longest pause while the peer is not accepting response bytes.
    pub send_timeout: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8 * 1024,
            max_head: 16 * 1024,
            max_headers: 100,
            max_body: 1 << 30,
            max_chunk_line: 1024,
            max_chunk_ext_total: 16 * 1024,
            max_trailers: 8 * 1024,
            max_drain: 256 * 1024,
            max_buffered: 64 * 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(30),
            body_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(30),
        }
    }
}
