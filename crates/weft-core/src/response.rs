//! Response heads: validated and serialised; framing chosen by the core.

use crate::error::SendError;
use crate::syntax::{field_value_len, is_token};

/// How the response body is delimited, as the application declares it. The core turns it into
/// `Content-Length`, chunked or close-delimited framing as the request's version and method
/// allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyKind {
    /// A body of exactly this many bytes (zero for none).
    Length(u64),
    /// A body of unknown length, produced as it goes: chunked for HTTP/1.1, close-delimited
    /// for HTTP/1.0.
    Stream,
}

/// A response head as the application hands it to the core. `Date`, `Content-Length`,
/// `Transfer-Encoding` and `Connection` are written by the core; a `Connection: close` given
/// here is honoured.
#[derive(Clone, Copy, Debug)]
pub struct Response<'a> {
    /// The status code (101 or 200-599).
    pub status: u16,
    /// The application's fields, written in order after `Date`.
    pub headers: &'a [(&'a str, &'a [u8])],
    /// How the body is sent; the core writes the framing fields from it.
    pub body: BodyKind,
}

/// The reason phrase of a status code (empty for codes without a registered one).
pub fn reason_phrase(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        101 => "Switching Protocols",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        203 => "Non-Authoritative Information",
        204 => "No Content",
        205 => "Reset Content",
        206 => "Partial Content",
        300 => "Multiple Choices",
        301 => "Moved Permanently",
        302 => "Found",
        303 => "See Other",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        406 => "Not Acceptable",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        411 => "Length Required",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        414 => "URI Too Long",
        415 => "Unsupported Media Type",
        416 => "Range Not Satisfiable",
        417 => "Expectation Failed",
        421 => "Misdirected Request",
        422 => "Unprocessable Content",
        426 => "Upgrade Required",
        428 => "Precondition Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

/// Appends `status` as three ASCII digits (callers guarantee 100..=999).
pub(crate) fn push_status_line(out: &mut Vec<u8>, status: u16) {
    out.extend_from_slice(b"HTTP/1.1 ");
    push_decimal(out, u64::from(status));
    out.push(b' ');
    out.extend_from_slice(reason_phrase(status).as_bytes());
    out.extend_from_slice(b"\r\n");
}

/// Appends `n` in decimal.
pub(crate) fn push_decimal(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            *d = b'0' + (n % 10) as u8;
        }
        n /= 10;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or(&[]));
}

/// Appends `n` in lowercase hex.
pub(crate) fn push_hex(out: &mut Vec<u8>, n: u64) {
    let mut digits = [0u8; 16];
    let mut i = digits.len();
    let mut n = n;
    loop {
        i -= 1;
        if let Some(d) = digits.get_mut(i) {
            let nibble = (n & 15) as u8;
            *d = if nibble < 10 {
                b'0' + nibble
            } else {
                b'a' + nibble - 10
            };
        }
        n >>= 4;
        if n == 0 || i == 0 {
            break;
        }
    }
    out.extend_from_slice(digits.get(i..).unwrap_or(&[]));
}

/// Is this header line safe to emit? Token name; value free of CR, LF, NUL and other CTLs.
pub(crate) fn valid_header(name: &str, value: &[u8]) -> bool {
    is_token(name.as_bytes()) && field_value_len(value) == value.len()
}

/// A response field as an application may give it: valid (`InvalidHeader` otherwise) and not
/// a framing field (`Content-Length`, `Transfer-Encoding`: the sender's, `FramingHeader`).
pub fn check_response_field(name: &str, value: &[u8]) -> Result<(), SendError> {
    if !valid_header(name, value) {
        return Err(SendError::InvalidHeader);
    }
    if name.eq_ignore_ascii_case("content-length") || name.eq_ignore_ascii_case("transfer-encoding")
    {
        return Err(SendError::FramingHeader);
    }
    Ok(())
}

/// Appends `name: value\r\n`.
pub(crate) fn push_header(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        for (n, dec, hex) in [
            (0u64, "0", "0"),
            (9, "9", "9"),
            (255, "255", "ff"),
            (u64::MAX, "18446744073709551615", "ffffffffffffffff"),
        ] {
            let mut out = Vec::new();
            push_decimal(&mut out, n);
            assert_eq!(out, dec.as_bytes());
            out.clear();
            push_hex(&mut out, n);
            assert_eq!(out, hex.as_bytes());
        }
    }

    #[test]
    fn header_validation() {
        assert!(valid_header("X-Ok", b"a b\tc \xff"));
        assert!(!valid_header("X Bad", b"v"));
        assert!(!valid_header("", b"v"));
        assert!(!valid_header("X", b"a\r\nSet-Cookie: x"));
        assert!(!valid_header("X", b"a\nb"));
        assert!(!valid_header("X", b"a\0b"));
    }
}
