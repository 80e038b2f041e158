//! The opening handshake (RFC 6455 section 4.2) and the negotiation of permessage-deflate
//! (RFC 7692 section 7.1).

use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::head::{Framing, Method, RequestHead, Version};
use crate::syntax::{list_contains, list_items};

use super::extension;

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
    /// The accepted offer as the response states it.
    accepted_deflate: Option<extension::Accepted>,
}

impl Handshake {
    /// Header fields for the 101 response: `Upgrade: websocket`, `Connection: Upgrade`,
    /// `Sec-WebSocket-Accept`, and when negotiated `Sec-WebSocket-Protocol` and
    /// `Sec-WebSocket-Extensions` (the response parameters).
    pub fn response_headers(&self) -> Vec<(&'static str, Vec<u8>)> {
        let mut fields = vec![
            ("Upgrade", b"websocket".to_vec()),
            ("Connection", b"Upgrade".to_vec()),
            ("Sec-WebSocket-Accept", self.accept.as_bytes().to_vec()),
        ];
        if let Some(protocol) = &self.protocol {
            fields.push(("Sec-WebSocket-Protocol", protocol.as_bytes().to_vec()));
        }
        if let Some(accepted) = &self.accepted_deflate {
            fields.push((
                "Sec-WebSocket-Extensions",
                extension::response_value(accepted).into_bytes(),
            ));
        }
        fields
    }
}

/// Why a handshake request was refused. [`HandshakeError::status`] and
/// [`HandshakeError::headers`] give the response to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HandshakeError {
    /// No `Upgrade` field naming `websocket`: a plain request to a WebSocket resource (426).
    NotUpgrade,
    /// A method other than GET (405).
    Method,
    /// An HTTP/1.0 request (400): the handshake needs HTTP/1.1.
    Version,
    /// `Upgrade: websocket` without `upgrade` in `Connection` (400).
    MissingConnectionUpgrade,
    /// A request with a body (400).
    Body,
    /// No `Sec-WebSocket-Key`, more than one, or not the base64 of exactly 16 bytes (400).
    BadKey,
    /// No `Sec-WebSocket-Version` (426).
    MissingVersion,
    /// A `Sec-WebSocket-Version` other than 13 (426).
    UnsupportedVersion,
}

/// The fields of a 426 to a request that did not ask for an upgrade.
const UPGRADE_REQUIRED_FIELDS: &[(&str, &[u8])] =
    &[("Upgrade", b"websocket"), ("Sec-WebSocket-Version", b"13")];
/// The fields of a 426 to a handshake without a supported version.
const VERSION_FIELDS: &[(&str, &[u8])] = &[("Sec-WebSocket-Version", b"13")];
/// The fields of a 405.
const ALLOW_FIELDS: &[(&str, &[u8])] = &[("Allow", b"GET")];

impl HandshakeError {
    /// 400 for a malformed handshake; 426 for a missing/unsupported `Sec-WebSocket-Version`
    /// (and for a plain request without `Upgrade: websocket`); 405 for a non-GET method.
    pub fn status(&self) -> u16 {
        match self {
            HandshakeError::NotUpgrade
            | HandshakeError::MissingVersion
            | HandshakeError::UnsupportedVersion => 426,
            HandshakeError::Method => 405,
            HandshakeError::Version
            | HandshakeError::MissingConnectionUpgrade
            | HandshakeError::Body
            | HandshakeError::BadKey => 400,
        }
    }

    /// Extra response fields: 426 -> `Sec-WebSocket-Version: 13` (and `Upgrade: websocket`
    /// when not an upgrade); 405 -> `Allow: GET`.
    pub fn headers(&self) -> &'static [(&'static str, &'static [u8])] {
        match self {
            HandshakeError::NotUpgrade => UPGRADE_REQUIRED_FIELDS,
            HandshakeError::MissingVersion | HandshakeError::UnsupportedVersion => VERSION_FIELDS,
            HandshakeError::Method => ALLOW_FIELDS,
            HandshakeError::Version
            | HandshakeError::MissingConnectionUpgrade
            | HandshakeError::Body
            | HandshakeError::BadKey => &[],
        }
    }

    /// A short human-readable description, for the response body.
    pub fn reason(&self) -> &'static str {
        match self {
            HandshakeError::NotUpgrade => "this resource needs a WebSocket upgrade",
            HandshakeError::Method => "a WebSocket handshake uses GET",
            HandshakeError::Version => "a WebSocket handshake needs HTTP/1.1",
            HandshakeError::MissingConnectionUpgrade => "Connection does not name upgrade",
            HandshakeError::Body => "a WebSocket handshake has no body",
            HandshakeError::BadKey => "missing, repeated or malformed Sec-WebSocket-Key",
            HandshakeError::MissingVersion => "missing Sec-WebSocket-Version",
            HandshakeError::UnsupportedVersion => "unsupported Sec-WebSocket-Version",
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.reason())
    }
}

impl std::error::Error for HandshakeError {}

/// Does any of the comma-separated `fields` contain `token` (ASCII case-insensitive)?
fn any_list_contains<'a>(mut fields: impl Iterator<Item = &'a [u8]>, token: &[u8]) -> bool {
    fields.any(|value| list_contains(value, token))
}

/// Validates a handshake request (RFC 6455 section 4.2.1: GET, HTTP/1.1, an `Upgrade` token
/// list containing `websocket`, a `Connection` token list containing `upgrade`, exactly one
/// `Sec-WebSocket-Key` that is the base64 of 16 bytes, `Sec-WebSocket-Version: 13`) and
/// negotiates the subprotocol (the first of `options.protocols` the client offers) and
/// permessage-deflate (the first acceptable offer, when `options.deflate`).
///
/// The checks run in this order: method, `Upgrade`, HTTP version, `Connection`, body, version,
/// key; so a client speaking an older WebSocket version learns the supported one (426).
pub fn check_handshake(
    head: &RequestHead<'_>,
    options: &HandshakeOptions<'_>,
) -> Result<Handshake, HandshakeError> {
    let headers = &head.headers;
    if head.method != Method::Get {
        return Err(HandshakeError::Method);
    }
    if !any_list_contains(headers.get_all("upgrade"), b"websocket") {
        return Err(HandshakeError::NotUpgrade);
    }
    if head.version != Version::Http11 {
        return Err(HandshakeError::Version);
    }
    if !any_list_contains(headers.get_all("connection"), b"upgrade") {
        return Err(HandshakeError::MissingConnectionUpgrade);
    }
    if head.framing != Framing::None {
        return Err(HandshakeError::Body);
    }
    let mut versions = headers.get_all("sec-websocket-version");
    match (versions.next(), versions.next()) {
        (None, _) => return Err(HandshakeError::MissingVersion),
        (Some(b"13"), None) => {}
        _ => return Err(HandshakeError::UnsupportedVersion),
    }
    let mut keys = headers.get_all("sec-websocket-key");
    let key = match (keys.next(), keys.next()) {
        (Some(key), None) if is_valid_key(key) => key,
        _ => return Err(HandshakeError::BadKey),
    };
    let offered = || {
        headers
            .get_all("sec-websocket-protocol")
            .flat_map(list_items)
    };
    let protocol = options
        .protocols
        .iter()
        .find(|ours| offered().any(|theirs| theirs == ours.as_bytes()))
        .map(|ours| (*ours).to_owned());
    let accepted_deflate = if options.deflate {
        extension::negotiate_deflate(headers.get_all("sec-websocket-extensions"))
    } else {
        None
    };
    Ok(Handshake {
        accept: accept_key(key),
        protocol,
        deflate: accepted_deflate.map(|a| a.config),
        accepted_deflate,
    })
}

/// Is `key` the base64 (with padding) of exactly 16 bytes?
fn is_valid_key(key: &[u8]) -> bool {
    let mut decoded = [0u8; 18];
    key.len() == 24 && matches!(STANDARD.decode_slice(key, &mut decoded), Ok(16))
}

/// The GUID appended to the key (RFC 6455 section 1.3).
const GUID: &[u8] = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// The `Sec-WebSocket-Accept` value for a `Sec-WebSocket-Key`: base64 of the SHA-1 of the key
/// followed by the RFC 6455 GUID.
pub fn accept_key(key: &[u8]) -> String {
    let mut sha = sha1_smol::Sha1::new();
    sha.update(key);
    sha.update(GUID);
    STANDARD.encode(sha.digest().bytes())
}
