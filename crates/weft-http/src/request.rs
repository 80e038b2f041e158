//! The request as the application sees it: the host hands over a method, a target, an
//! authority and the header fields it received; they are written back into an HTTP/1.1 head
//! and parsed by the protocol core, so the application gets the same [`RequestHead`] it gets
//! from the event loop (and the same validation).
//!
//! The rule for fields the host owns (the framing and connection management of its own HTTP
//! stack): `Connection`, `Keep-Alive`, `Proxy-Connection`, `TE`, `Upgrade` and
//! `Transfer-Encoding` are left out; a request the host received with `Transfer-Encoding`
//! is written as `Transfer-Encoding: chunked` (its body has no known length, which is what
//! that means to the application); `Content-Length` is kept. `Host` is taken from the
//! fields, else from the authority. Hosts do not pass `Transfer-Encoding` on (wasmtime
//! removes it with the other hop-by-hop fields): a driver that finds a body without a
//! `Content-Length` adds the field itself ([`RequestParts::mark_streamed_body`]).

use weft_core::{parse_request_head, Error, Limits, RequestHead};

/// Hop-by-hop fields: the host's HTTP stack consumed them; they say nothing to the
/// application behind it.
const HOST_OWNED: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "upgrade",
    "transfer-encoding",
];

/// What a host tells of a request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RequestParts {
    /// The method token.
    pub method: String,
    /// The path and query (origin-form); `None` is `/`.
    pub path_with_query: Option<String>,
    /// The authority (`host[:port]`), if the host knows one.
    pub authority: Option<String>,
    /// The header fields in the order received.
    pub fields: Vec<(String, Vec<u8>)>,
}

impl RequestParts {
    /// Whether the request says how long its body is.
    pub fn has_content_length(&self) -> bool {
        self.fields
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("content-length"))
    }

    /// The request has a body of unknown length: the application sees it chunked.
    pub fn mark_streamed_body(&mut self) {
        if !self
            .fields
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
        {
            self.fields
                .push(("transfer-encoding".to_string(), b"chunked".to_vec()));
        }
    }
}

/// The request head the parts describe, as HTTP/1.1 bytes.
pub fn head_bytes(parts: &RequestParts) -> Vec<u8> {
    // CONNECT names its authority, not a path (authority-form, RFC 9112 3.2.3).
    let target = match parts.path_with_query.as_deref() {
        _ if parts.method == "CONNECT" => parts.authority.as_deref().unwrap_or(""),
        Some(path) => path,
        None => "/",
    };
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(parts.method.as_bytes());
    head.push(b' ');
    head.extend_from_slice(target.as_bytes());
    head.extend_from_slice(b" HTTP/1.1\r\n");
    let mut has_host = false;
    let mut chunked = false;
    for (name, value) in &parts.fields {
        if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked = true;
        }
        if HOST_OWNED.iter().any(|n| name.eq_ignore_ascii_case(n)) {
            continue;
        }
        has_host |= name.eq_ignore_ascii_case("host");
        push_field(&mut head, name, value);
    }
    if !has_host {
        let authority = parts.authority.as_deref().unwrap_or("");
        push_field(&mut head, "host", authority.as_bytes());
    }
    if chunked {
        push_field(&mut head, "transfer-encoding", b"chunked");
    }
    head.extend_from_slice(b"\r\n");
    head
}

fn push_field(head: &mut Vec<u8>, name: &str, value: &[u8]) {
    head.extend_from_slice(name.as_bytes());
    head.extend_from_slice(b": ");
    head.extend_from_slice(value);
    head.extend_from_slice(b"\r\n");
}

/// The limits a head written by [`head_bytes`] is parsed with: the host has applied its own
/// limits to what it received, so these only bound what the core will index.
pub fn bridge_limits() -> Limits {
    Limits {
        max_request_line: 64 * 1024,
        max_head: 1024 * 1024,
        max_headers: 1024,
        ..Limits::default()
    }
}

/// Parses a head written by [`head_bytes`]. `Err` is the status the application's answer
/// would have been refused with (for example `400` for a field value the core refuses).
pub fn parse_head<'a>(head: &'a [u8], limits: &Limits) -> Result<RequestHead<'a>, Error> {
    match parse_request_head(head, limits)? {
        Some((head, _)) => Ok(head),
        // A written head always ends with its blank line: incomplete cannot happen, and is
        // answered as a malformed request if it does.
        None => Err(Error::BadRequestLine),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use weft_core::{Framing, Method};

    fn parts(method: &str, target: &str, fields: &[(&str, &str)]) -> RequestParts {
        RequestParts {
            method: method.into(),
            path_with_query: Some(target.into()),
            authority: Some("example.com:8080".into()),
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn writes_a_head_the_core_parses() {
        let p = parts(
            "POST",
            "/echo?x=1",
            &[
                ("host", "a.example"),
                ("content-length", "5"),
                ("connection", "keep-alive"),
                ("content-type", "text/plain"),
            ],
        );
        let bytes = head_bytes(&p);
        assert_eq!(
            bytes,
            b"POST /echo?x=1 HTTP/1.1\r\nhost: a.example\r\ncontent-length: 5\r\ncontent-type: text/plain\r\n\r\n"
        );
        let head = parse_head(&bytes, &bridge_limits()).unwrap();
        assert_eq!(head.method, Method::Post);
        assert_eq!(head.path(), "/echo");
        assert_eq!(head.framing, Framing::Length(5));
        assert_eq!(head.host, b"a.example");
        assert!(head.upgrade.is_none());
    }

    #[test]
    fn host_owned_fields_are_left_out() {
        let p = parts(
            "GET",
            "/ws/echo",
            &[
                ("Connection", "Upgrade"),
                ("Upgrade", "websocket"),
                ("Transfer-Encoding", "gzip, chunked"),
                ("TE", "trailers"),
            ],
        );
        let bytes = head_bytes(&p);
        assert_eq!(
            bytes,
            b"GET /ws/echo HTTP/1.1\r\nhost: example.com:8080\r\ntransfer-encoding: chunked\r\n\r\n"
        );
        let head = parse_head(&bytes, &bridge_limits()).unwrap();
        assert_eq!(head.framing, Framing::Chunked);
        assert!(head.upgrade.is_none());
    }

    #[test]
    fn connect_names_its_authority_and_streamed_bodies_are_chunked() {
        let mut p = parts("CONNECT", "", &[]);
        p.path_with_query = None;
        let bytes = head_bytes(&p);
        assert!(bytes.starts_with(b"CONNECT example.com:8080 HTTP/1.1\r\n"));
        let mut p = parts("POST", "/echo", &[]);
        assert!(!p.has_content_length());
        p.mark_streamed_body();
        p.mark_streamed_body();
        let bytes = head_bytes(&p);
        let head = parse_head(&bytes, &bridge_limits()).unwrap();
        assert_eq!(head.framing, Framing::Chunked);
    }

    #[test]
    fn what_the_core_refuses_is_an_error() {
        let mut p = parts("GET", "/", &[]);
        p.fields.push(("x-bad".into(), b"a\x01b".to_vec()));
        assert!(parse_head(&head_bytes(&p), &bridge_limits()).is_err());
        let p = parts("GET", "no-slash", &[]);
        assert!(parse_head(&head_bytes(&p), &bridge_limits()).is_err());
        let p = parts("G T", "/", &[]);
        assert!(parse_head(&head_bytes(&p), &bridge_limits()).is_err());
    }
}
