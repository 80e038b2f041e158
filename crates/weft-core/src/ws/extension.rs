//! `Sec-WebSocket-Extensions` parsing (RFC 6455 section 9.1) and the permessage-deflate offer
//! negotiation (RFC 7692 section 7.1).
//!
//! ```text
//! extension-list  = 1#extension
//! extension       = extension-token *( ";" extension-param )
//! extension-param = token [ "=" ( token / quoted-string ) ]
//! ```

use crate::syntax::{is_token, trim_ows};

use super::handshake::DeflateConfig;

/// The extension token of permessage-deflate.
const PERMESSAGE_DEFLATE: &[u8] = b"permessage-deflate";

/// Splits `value` at every `separator` outside a quoted-string (a backslash escapes the next
/// byte inside one). Pieces are trimmed of optional whitespace.
fn split_outside_quotes(value: &[u8], separator: u8) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(value);
    std::iter::from_fn(move || {
        let current = rest?;
        let mut quoted = false;
        let mut escaped = false;
        for (i, &b) in current.iter().enumerate() {
            if escaped {
                escaped = false;
            } else if quoted && b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                quoted = !quoted;
            } else if b == separator && !quoted {
                rest = current.get(i + 1..);
                return Some(trim_ows(current.get(..i).unwrap_or(&[])));
            }
        }
        rest = None;
        Some(trim_ows(current))
    })
}

/// A parameter value: a token, or a quoted-string whose content (unescaped) is returned. `None`
/// when it is neither. The values this module acts on are a few digits long; longer ones are
/// refused as malformed.
fn param_value(raw: &[u8]) -> Option<([u8; 8], usize)> {
    let mut value = [0u8; 8];
    let mut len = 0;
    let mut push = |b: u8| -> Option<()> {
        *value.get_mut(len)? = b;
        len += 1;
        Some(())
    };
    match raw {
        [b'"', inner @ .., b'"'] => {
            let mut escaped = false;
            for &b in inner {
                if escaped {
                    escaped = false;
                    push(b)?;
                } else if b == b'\\' {
                    escaped = true;
                } else if b == b'"' {
                    return None;
                } else {
                    push(b)?;
                }
            }
            if escaped {
                return None;
            }
        }
        token if is_token(token) => {
            for &b in token {
                push(b)?;
            }
        }
        _ => return None,
    }
    Some((value, len))
}

/// A window size parameter value: 8..=15 without leading zeros (RFC 7692 section 7.1.2).
fn window_bits(value: &[u8]) -> Option<u8> {
    match value {
        [d @ b'8'..=b'9'] => Some(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Some(10 + d - b'0'),
        _ => None,
    }
}

/// An accepted permessage-deflate offer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Accepted {
    pub(crate) config: DeflateConfig,
    /// The offer named `server_max_window_bits`: accepting it means naming it in the response
    /// (RFC 7692 section 7.1.2.1), even at 15.
    pub(crate) server_window_offered: bool,
}

/// Accepts one permessage-deflate offer (its parameters, after the extension token), or `None`
/// when a parameter is unknown, repeated or has an invalid value.
fn accept_offer<'a>(params: impl Iterator<Item = &'a [u8]>) -> Option<Accepted> {
    let mut server_no_context_takeover = false;
    let mut client_no_context_takeover = false;
    let mut server_max_window_bits = None;
    let mut client_max_window_bits = None;
    for param in params {
        let (name, value) = match param.iter().position(|&b| b == b'=') {
            Some(eq) => {
                let name = trim_ows(param.get(..eq)?);
                let (value, len) = param_value(trim_ows(param.get(eq + 1..)?))?;
                (name, Some((value, len)))
            }
            None => (param, None),
        };
        let value = value.as_ref().map(|(v, len)| v.get(..*len).unwrap_or(&[]));
        let name = name.to_ascii_lowercase();
        match (name.as_slice(), value) {
            (b"server_no_context_takeover", None) if !server_no_context_takeover => {
                server_no_context_takeover = true;
            }
            (b"client_no_context_takeover", None) if !client_no_context_takeover => {
                client_no_context_takeover = true;
            }
            (b"server_max_window_bits", Some(value)) if server_max_window_bits.is_none() => {
                server_max_window_bits = Some(window_bits(value)?);
            }
            (b"client_max_window_bits", value) if client_max_window_bits.is_none() => {
                // Without a value: the client can limit its window if asked; we do not ask.
                client_max_window_bits = Some(match value {
                    Some(value) => window_bits(value)?,
                    None => 15,
                });
            }
            _ => return None,
        }
    }
    Some(Accepted {
        config: DeflateConfig {
            server_no_context_takeover,
            client_no_context_takeover,
            server_max_window_bits: server_max_window_bits.unwrap_or(15),
            client_max_window_bits: client_max_window_bits.unwrap_or(15),
        },
        server_window_offered: server_max_window_bits.is_some(),
    })
}

/// The first acceptable permessage-deflate offer among the `Sec-WebSocket-Extensions` field
/// values, in order. Other extensions, and offers with unknown, repeated or invalid
/// parameters, are skipped.
pub(crate) fn negotiate_deflate<'a>(fields: impl Iterator<Item = &'a [u8]>) -> Option<Accepted> {
    fields
        .flat_map(|value| split_outside_quotes(value, b','))
        .filter(|extension| !extension.is_empty())
        .find_map(|extension| {
            let mut parts = split_outside_quotes(extension, b';');
            let name = parts.next()?;
            if !name.eq_ignore_ascii_case(PERMESSAGE_DEFLATE) {
                return None;
            }
            accept_offer(parts)
        })
}

/// The `Sec-WebSocket-Extensions` response value for an accepted offer. A window size is named
/// when below 15 (15 is what its absence means), and the server's also when the offer named it.
pub(crate) fn response_value(accepted: &Accepted) -> String {
    let config = &accepted.config;
    let mut value = String::from("permessage-deflate");
    if config.server_no_context_takeover {
        value.push_str("; server_no_context_takeover");
    }
    if config.client_no_context_takeover {
        value.push_str("; client_no_context_takeover");
    }
    if config.server_max_window_bits < 15 || accepted.server_window_offered {
        value.push_str("; server_max_window_bits=");
        value.push_str(&config.server_max_window_bits.to_string());
    }
    if config.client_max_window_bits < 15 {
        value.push_str("; client_max_window_bits=");
        value.push_str(&config.client_max_window_bits.to_string());
    }
    value
}
