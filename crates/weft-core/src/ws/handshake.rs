//! The opening handshake (RFC 6455 section 4.2) and the negotiation of permessage-deflate
//! (RFC 7692 section 7.1).

use std::fmt;

use crate::head::RequestHead;

/// What the server is willing to negotiate.
#[derive(Clone, Copy, Debug, Default)]
pub struct HandshakeOptions<'p> {
    /// Subprotocols the server speaks, in preference order (the first the server lists that the
    /// client offers wins).
    pub protocols: &'p [&'p str],
    /// Accept a permessage-deflate offer.
    pub deflate: bool,
}

/// The parameters of a negotiated permessage-deflate extension (RFC 7692 section 7.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeflateConfig {
    /// The server resets its compressor after every message.
    pub server_no_context_takeover: bool,
    /// The client resets its compressor after every message (so the server's inflater is reset
    /// too).
    pub client_no_context_takeover: bool,
    /// The LZ77 window of the server's compressor, 8..=15.
    pub server_max_window_bits: u8,
    /// The LZ77 window of the client's compressor, 8..=15.
    pub client_max_window_bits: u8,
}

/// An accepted handshake.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Handshake {
    /// The `Sec-WebSocket-Accept` value.
    pub accept: String,
    /// The chosen subprotocol.
    pub protocol: Option<String>,
    /// The negotiated permessage-deflate parameters.
    pub deflate: Option<DeflateConfig>,
}

impl Handshake {
    /// Header fields for the 101 response: `Upgrade: websocket`, `Connection: Upgrade`,
    /// `Sec-WebSocket-Accept`, and when negotiated `Sec-WebSocket-Protocol` and
    /// `Sec-WebSocket-Extensions` (the response parameters).
    pub fn response_headers(&self) -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("Upgrade", b"websocket".to_vec()),
            ("Connection", b"Upgrade".to_vec()),
            ("Sec-WebSocket-Accept", self.accept.as_bytes().to_vec()),
        ]
    }
}

/// Why a handshake request was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// No `Upgrade: websocket` (426).
    NotUpgrade,
}

impl HandshakeError {
    /// 400 for a malformed handshake; 426 for a missing/unsupported `Sec-WebSocket-Version`
    /// (and for a plain request without `Upgrade: websocket`); 405 for a non-GET method.
    pub fn status(&self) -> u16 {
        426
    }

    /// Extra response fields: 426 -> `Sec-WebSocket-Version: 13` (and `Upgrade: websocket`
    /// when not an upgrade); 405 -> `Allow: GET`.
    pub fn headers(&self) -> &'static [(&'static str, &'static [u8])] {
        &[]
    }

    /// A short human-readable description, for the response body.
    pub fn reason(&self) -> &'static str {
        "not a websocket upgrade"
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for HandshakeError {}

/// Validates a handshake request and negotiates subprotocol and permessage-deflate.
pub fn check_handshake(
    _head: &RequestHead<'_>,
    _options: &HandshakeOptions<'_>,
) -> Result<Handshake, HandshakeError> {
    Err(HandshakeError::NotUpgrade)
}

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`: base64 of the SHA-1 of the key
/// followed by the RFC 6455 GUID.
pub fn accept_key(_key: &[u8]) -> String {
    String::new()
}
