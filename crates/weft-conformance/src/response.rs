//! A small, strict HTTP/1.1 response-stream reader for assertion mode, and
//! the `Date:` normalisation applied to every response stream.

/// How a response's body was delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body: 1xx, 204, 304 or an answer to HEAD.
    NoBody,
    /// `Content-Length: n`.
    Length(usize),
    /// `Transfer-Encoding: ..., chunked`.
    Chunked,
    /// Delimited by the server closing the connection.
    Close,
    /// `101 Switching Protocols`: what follows is not HTTP.
    Upgrade,
}

/// One parsed response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: Vec<u8>,
    /// Header fields in order, names as sent, values without surrounding OWS.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body after removing the transfer coding.
    pub body: Vec<u8>,
    /// Chunked trailer fields.
    pub trailers: Vec<(String, Vec<u8>)>,
    /// The sizes of the data chunks of a chunked body, in order (empty otherwise).
    pub chunks: Vec<usize>,
    pub framing: Framing,
    /// Byte range of the whole response in the stream.
    pub start: usize,
    pub end: usize,
}

impl Response {
    /// Values of every header with this name (case-insensitive), in order.
    pub fn header_values(&self, name: &str) -> Vec<&[u8]> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
            .collect()
    }
}

/// How the stream ended after the last complete response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tail {
    /// Every byte belongs to a complete response.
    Complete,
    /// A response starts at `at` but is not complete yet.
    Incomplete { at: usize, what: String },
    /// Bytes at `at` are not a valid response.
    Error { at: usize, msg: String },
    /// A 101 response ended HTTP; `at` is where the other protocol starts.
    Upgraded { at: usize },
}

/// The responses found in a stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Parsed {
    pub responses: Vec<Response>,
    pub tail: Tail,
}

/// Parses a response stream. `methods` are the methods of the requests in
/// order (each final, non-1xx response consumes one; missing ones count as
/// GET); a response to HEAD has no body. `eof` tells whether the server has
/// closed the connection, which completes a close-delimited body.
pub fn parse_responses(data: &[u8], methods: &[String], eof: bool) -> Parsed {
    let mut responses = Vec::new();
    let mut pos = 0;
    let mut finals = 0usize;
    while pos < data.len() {
        let method = methods.get(finals).map_or("GET", String::as_str);
        match parse_one(data, pos, method, eof) {
            Step::Done(resp) => {
                if resp.status >= 200 {
                    finals += 1;
                }
                pos = resp.end;
                let upgrade = resp.framing == Framing::Upgrade;
                responses.push(resp);
                if upgrade {
                    return Parsed {
                        responses,
                        tail: Tail::Upgraded { at: pos },
                    };
                }
            }
            Step::Incomplete(what) => {
                return Parsed {
                    responses,
                    tail: Tail::Incomplete { at: pos, what },
                }
            }
            Step::Error(at, msg) => {
                return Parsed {
                    responses,
                    tail: Tail::Error { at, msg },
                }
            }
        }
    }
    Parsed {
        responses,
        tail: Tail::Complete,
    }
}

/// Parses the one response that starts at `data[start]`, as an answer to
/// `method` (`eof`: the server has closed the connection). `Ok(resp)`, or
/// the tail that stops it (`Incomplete` or `Error`).
pub fn parse_response_at(
    data: &[u8],
    start: usize,
    method: &str,
    eof: bool,
) -> Result<Response, Tail> {
    match parse_one(data, start, method, eof) {
        Step::Done(resp) => Ok(resp),
        Step::Incomplete(what) => Err(Tail::Incomplete { at: start, what }),
        Step::Error(at, msg) => Err(Tail::Error { at, msg }),
    }
}

enum Step {
    Done(Response),
    Incomplete(String),
    Error(usize, String),
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

pub(crate) fn trim_ows(b: &[u8]) -> &[u8] {
    let start = b
        .iter()
        .position(|c| *c != b' ' && *c != b'\t')
        .unwrap_or(b.len());
    let end = b
        .iter()
        .rposition(|c| *c != b' ' && *c != b'\t')
        .map_or(start, |p| p + 1);
    &b[start..end]
}

type Fields = Vec<(String, Vec<u8>)>;

/// Parses `name: value` field lines (each without its CRLF).
fn parse_fields(lines: &[u8], base: usize) -> Result<Fields, (usize, String)> {
    let mut fields = Vec::new();
    let mut off = 0;
    for line in lines.split(|&b| b == b'\n') {
        let at = base + off;
        off += line.len() + 1;
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        if line.contains(&b'\r') {
            return Err((at, "bare CR in header section".into()));
        }
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err((at, "header line without ':'".into()));
        };
        let name = &line[..colon];
        if name.is_empty() || !name.iter().all(|b| is_tchar(*b)) {
            let why = if line[0] == b' ' || line[0] == b'\t' {
                "obsolete line folding"
            } else {
                "bad header name"
            };
            return Err((at, why.into()));
        }
        fields.push((
            String::from_utf8_lossy(name).into_owned(),
            trim_ows(&line[colon + 1..]).to_vec(),
        ));
    }
    Ok(fields)
}

fn parse_status_line(line: &[u8]) -> Option<(String, u16, Vec<u8>)> {
    if line.len() < 12
        || !line.starts_with(b"HTTP/")
        || !line[5].is_ascii_digit()
        || line[6] != b'.'
        || !line[7].is_ascii_digit()
        || line[8] != b' '
        || !line[9..12].iter().all(u8::is_ascii_digit)
    {
        return None;
    }
    let status = std::str::from_utf8(&line[9..12]).ok()?.parse().ok()?;
    let reason = match line.get(12) {
        None => Vec::new(),
        Some(b' ') => line[13..].to_vec(),
        Some(_) => return None,
    };
    Some((
        String::from_utf8_lossy(&line[..8]).into_owned(),
        status,
        reason,
    ))
}

fn parse_one(data: &[u8], start: usize, method: &str, eof: bool) -> Step {
    let rest = &data[start..];
    let Some(head_len) = find(rest, b"\r\n\r\n").map(|p| p + 4) else {
        // Judge the status line early if it is already there.
        if let Some(nl) = find(rest, b"\r\n") {
            if parse_status_line(&rest[..nl]).is_none() {
                return Step::Error(start, "bad status line".into());
            }
        } else if rest.len() >= 12 && parse_status_line(&rest[..12]).is_none() {
            return Step::Error(start, "bad status line".into());
        }
        return Step::Incomplete("header section not finished".into());
    };
    let head = &rest[..head_len - 4];
    let first_nl = find(head, b"\r\n").unwrap_or(head.len());
    let Some((version, status, reason)) = parse_status_line(&head[..first_nl]) else {
        return Step::Error(start, "bad status line".into());
    };
    let field_bytes = if first_nl < head.len() {
        &head[first_nl + 2..]
    } else {
        &[][..]
    };
    let headers = match parse_fields(field_bytes, start + first_nl + 2) {
        Ok(h) => h,
        Err((at, msg)) => return Step::Error(at, msg),
    };
    let body_start = start + head_len;
    let mut resp = Response {
        version,
        status,
        reason,
        headers,
        body: Vec::new(),
        trailers: Vec::new(),
        chunks: Vec::new(),
        framing: Framing::NoBody,
        start,
        end: body_start,
    };
    if status == 101 {
        resp.framing = Framing::Upgrade;
        return Step::Done(resp);
    }
    if status < 200 || status == 204 || status == 304 || method.eq_ignore_ascii_case("HEAD") {
        return Step::Done(resp);
    }

    let te = resp.header_values("transfer-encoding");
    if !te.is_empty() {
        let last = te
            .iter()
            .flat_map(|v| v.split(|&b| b == b','))
            .map(trim_ows)
            .rfind(|c| !c.is_empty())
            .unwrap_or(b"");
        if last.eq_ignore_ascii_case(b"chunked") {
            resp.framing = Framing::Chunked;
            return match dechunk(data, body_start) {
                Ok(Some((body, trailers, end, chunks))) => {
                    resp.body = body;
                    resp.chunks = chunks;
                    resp.trailers = trailers;
                    resp.end = end;
                    Step::Done(resp)
                }
                Ok(None) => Step::Incomplete("chunked body not finished".into()),
                Err((at, msg)) => Step::Error(at, msg),
            };
        }
        return close_delimited(resp, data, eof);
    }

    let cl = resp.header_values("content-length");
    if !cl.is_empty() {
        let mut len: Option<usize> = None;
        for v in cl.iter().flat_map(|v| v.split(|&b| b == b',')) {
            let v = trim_ows(v);
            let parsed = if !v.is_empty() && v.iter().all(u8::is_ascii_digit) {
                std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.parse::<usize>().ok())
            } else {
                None
            };
            match (parsed, len) {
                (None, _) => {
                    return Step::Error(
                        start,
                        format!("bad Content-Length {:?}", String::from_utf8_lossy(v)),
                    )
                }
                (Some(n), Some(prev)) if n != prev => {
                    return Step::Error(start, "conflicting Content-Length values".into())
                }
                (Some(n), _) => len = Some(n),
            }
        }
        let n = len.unwrap_or(0);
        resp.framing = Framing::Length(n);
        if data.len() - body_start < n {
            return Step::Incomplete(format!(
                "body has {} of {n} bytes (Content-Length)",
                data.len() - body_start
            ));
        }
        resp.body = data[body_start..body_start + n].to_vec();
        resp.end = body_start + n;
        return Step::Done(resp);
    }
    close_delimited(resp, data, eof)
}

fn close_delimited(mut resp: Response, data: &[u8], eof: bool) -> Step {
    resp.framing = Framing::Close;
    if !eof {
        return Step::Incomplete("close-delimited body (connection still open)".into());
    }
    resp.body = data[resp.end..].to_vec();
    resp.end = data.len();
    Step::Done(resp)
}

type Dechunked = (Vec<u8>, Vec<(String, Vec<u8>)>, usize, Vec<usize>);

/// Decodes a chunked body starting at `pos`. `Ok(None)` means more bytes
/// are needed.
fn dechunk(data: &[u8], mut pos: usize) -> Result<Option<Dechunked>, (usize, String)> {
    let mut body = Vec::new();
    let mut chunks = Vec::new();
    loop {
        let Some(nl) = find(&data[pos..], b"\r\n") else {
            return Ok(None);
        };
        let line = &data[pos..pos + nl];
        let size_part = line.split(|&b| b == b';').next().unwrap_or(b"");
        let size_part = trim_ows(size_part);
        if size_part.is_empty()
            || size_part.len() > 15
            || !size_part.iter().all(u8::is_ascii_hexdigit)
        {
            return Err((
                pos,
                format!("bad chunk size line {:?}", String::from_utf8_lossy(line)),
            ));
        }
        let size = usize::from_str_radix(std::str::from_utf8(size_part).unwrap_or("0"), 16)
            .map_err(|_| (pos, "chunk size overflow".to_string()))?;
        pos += nl + 2;
        if size == 0 {
            // Trailer section: field lines up to an empty line.
            if data[pos..].starts_with(b"\r\n") {
                return Ok(Some((body, Vec::new(), pos + 2, chunks)));
            }
            let Some(end) = find(&data[pos..], b"\r\n\r\n") else {
                return Ok(None);
            };
            let trailers = parse_fields(&data[pos..pos + end], pos)?;
            return Ok(Some((body, trailers, pos + end + 4, chunks)));
        }
        if data.len() < pos + size + 2 {
            return Ok(None);
        }
        body.extend_from_slice(&data[pos..pos + size]);
        chunks.push(size);
        if &data[pos + size..pos + size + 2] != b"\r\n" {
            return Err((pos + size, "chunk data not followed by CRLF".into()));
        }
        pos += size + 2;
    }
}

/// True when `b` starts with a status line prefix `HTTP/d.d ddd`.
fn status_line_at(b: &[u8]) -> bool {
    b.len() >= 12
        && b.starts_with(b"HTTP/")
        && b[5].is_ascii_digit()
        && b[6] == b'.'
        && b[7].is_ascii_digit()
        && b[8] == b' '
        && b[9..12].iter().all(u8::is_ascii_digit)
}

/// Replaces the value of every `Date:` header field (name matched without
/// regard to case) with `<date>`.
///
/// Header sections are found without framing knowledge: wherever the bytes
/// `HTTP/d.d ddd` appear, the lines that follow up to the first empty line
/// are a header section. The field name, colon and the blanks after it are
/// kept as sent; the rest of the line up to its `\r\n` (or `\n`) becomes
/// `<date>`. An unfinished last line is left alone.
pub fn normalize_dates(data: &[u8]) -> Vec<u8> {
    normalize(data, &[])
}

/// [`normalize_dates`], and in the same header sections every field line whose name (any
/// case) is in `dropped` is removed: the comparison rule of a target whose application adds
/// other fields than weft's (`Timing::dropped_fields`, documented in conformance/README.md).
pub fn normalize(data: &[u8], dropped: &[&str]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len());
    let mut i = 0;
    while i < data.len() {
        if !status_line_at(&data[i..]) {
            out.push(data[i]);
            i += 1;
            continue;
        }
        let mut first = true;
        loop {
            let Some(nl) = data[i..].iter().position(|&b| b == b'\n') else {
                out.extend_from_slice(&data[i..]);
                return out;
            };
            let line = &data[i..i + nl + 1];
            i += nl + 1;
            let content_len = if line.ends_with(b"\r\n") {
                line.len() - 2
            } else {
                line.len() - 1
            };
            let content = &line[..content_len];
            if !first && content.is_empty() {
                out.extend_from_slice(line);
                break;
            }
            let name_end = content.iter().position(|&b| b == b':');
            let is_dropped = !first
                && name_end.is_some_and(|end| {
                    dropped
                        .iter()
                        .any(|d| d.as_bytes().eq_ignore_ascii_case(&content[..end]))
                });
            if is_dropped {
                // Left out, line end included.
            } else if !first && content.len() >= 5 && content[..5].eq_ignore_ascii_case(b"date:") {
                let blanks = content[5..]
                    .iter()
                    .take_while(|c| **c == b' ' || **c == b'\t')
                    .count();
                out.extend_from_slice(&content[..5 + blanks]);
                out.extend_from_slice(b"<date>");
                out.extend_from_slice(&line[content_len..]);
            } else {
                out.extend_from_slice(line);
            }
            first = false;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn content_length_pair() {
        let s = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  b \r\n\r\nhelloHTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n";
        let p = parse_responses(s, &[], false);
        assert_eq!(p.tail, Tail::Complete);
        assert_eq!(p.responses.len(), 2);
        let r = &p.responses[0];
        assert_eq!(
            (r.version.as_str(), r.status, r.reason.as_slice()),
            ("HTTP/1.1", 200, &b"OK"[..])
        );
        assert_eq!(r.body, b"hello");
        assert_eq!(r.header_values("x-a"), vec![&b"b"[..]]);
        assert_eq!(r.framing, Framing::Length(5));
        assert_eq!(p.responses[1].status, 404);
        assert_eq!(p.responses[1].start, r.end);
        assert_eq!(p.responses[1].end, s.len());
    }

    #[test]
    fn content_length_incomplete_and_bad() {
        let p = parse_responses(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhel",
            &[],
            false,
        );
        assert!(p.responses.is_empty());
        assert!(matches!(p.tail, Tail::Incomplete { at: 0, .. }));
        let p = parse_responses(b"HTTP/1.1 200 OK\r\nContent-Length: 5x\r\n\r\n", &[], false);
        assert!(matches!(p.tail, Tail::Error { .. }));
        let p = parse_responses(
            b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            &[],
            true,
        );
        assert!(matches!(p.tail, Tail::Error { .. }));
    }

    #[test]
    fn chunked_with_extensions_and_trailers() {
        let s = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n1\r\n!\r\n0\r\nX-T: 1\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n";
        let p = parse_responses(s, &[], false);
        assert_eq!(p.tail, Tail::Complete);
        assert_eq!(p.responses[0].body, b"hello!");
        assert_eq!(p.responses[0].framing, Framing::Chunked);
        assert_eq!(
            p.responses[0].trailers,
            vec![("X-T".to_string(), b"1".to_vec())]
        );
        assert_eq!(p.responses[1].status, 204);
        // Chunked takes precedence over Content-Length.
        let s =
            b"HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
        assert_eq!(parse_responses(s, &[], false).tail, Tail::Complete);
    }

    #[test]
    fn chunked_incomplete_and_errors() {
        let base = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for tail in [
            &b"5\r\nhel"[..],
            b"5\r\nhello\r\n",
            b"0\r\n",
            b"0\r\nX: 1\r\n",
        ] {
            let mut s = base.clone();
            s.extend_from_slice(tail);
            let p = parse_responses(&s, &[], false);
            assert!(matches!(p.tail, Tail::Incomplete { .. }), "{tail:?}: {p:?}");
        }
        for tail in [&b"zz\r\n"[..], b"5\r\nhelloXX0\r\n\r\n"] {
            let mut s = base.clone();
            s.extend_from_slice(tail);
            assert!(
                matches!(parse_responses(&s, &[], false).tail, Tail::Error { .. }),
                "{tail:?}"
            );
        }
    }

    #[test]
    fn close_delimited() {
        let s = b"HTTP/1.0 200 OK\r\nServer: x\r\n\r\nsome body";
        let p = parse_responses(s, &[], false);
        assert!(matches!(p.tail, Tail::Incomplete { .. }));
        let p = parse_responses(s, &[], true);
        assert_eq!(p.tail, Tail::Complete);
        assert_eq!(p.responses[0].body, b"some body");
        assert_eq!(p.responses[0].framing, Framing::Close);
    }

    #[test]
    fn interim_responses_are_separate_and_consume_no_request() {
        let s = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n";
        // Request 1 is POST, request 2 is HEAD: the third response has no body.
        let p = parse_responses(s, &m(&["POST", "HEAD"]), false);
        assert_eq!(p.tail, Tail::Complete);
        let st: Vec<u16> = p.responses.iter().map(|r| r.status).collect();
        assert_eq!(st, vec![100, 200, 200]);
        assert_eq!(p.responses[1].body, b"ok");
        assert_eq!(p.responses[2].framing, Framing::NoBody);
    }

    #[test]
    fn head_responses_have_no_body() {
        let s = b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        let p = parse_responses(s, &m(&["HEAD", "GET"]), false);
        assert_eq!(p.tail, Tail::Complete);
        assert_eq!(p.responses.len(), 2);
        assert!(p.responses[0].body.is_empty());
        assert_eq!(p.responses[1].body, b"hi");
        // The same bytes read as two GETs leave the second response broken.
        let p = parse_responses(s, &m(&["GET", "GET"]), false);
        assert_eq!(p.responses.len(), 1);
        assert!(matches!(
            p.tail,
            Tail::Error { .. } | Tail::Incomplete { .. }
        ));
    }

    #[test]
    fn upgrade_stops_parsing() {
        let s = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi";
        let p = parse_responses(s, &[], false);
        assert_eq!(p.responses.len(), 1);
        assert_eq!(p.tail, Tail::Upgraded { at: s.len() - 4 });
    }

    #[test]
    fn malformed_streams() {
        for s in [
            &b"garbage\r\n\r\n"[..],
            b"HTTP/1.1 2000 OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nNoColon\r\n\r\n",
            b"HTTP/1.1 200 OK\r\n folded\r\n\r\n",
            b"hello world, this is not http",
        ] {
            assert!(
                matches!(parse_responses(s, &[], true).tail, Tail::Error { .. }),
                "{s:?}"
            );
        }
        assert!(matches!(
            parse_responses(b"HTTP/1.1 2", &[], false).tail,
            Tail::Incomplete { .. }
        ));
        assert_eq!(
            parse_responses(b"HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n", &[], false).tail,
            Tail::Complete
        );
    }

    #[test]
    fn date_normalisation() {
        let s = b"HTTP/1.1 200 OK\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\ncontent-length: 26\r\n\r\nDate: in the body is kept\nHTTP/1.1 200 OK\r\nDATE:\tTue, 1 Jan 2030\r\nX: date: no\r\n\r\n";
        let n = normalize_dates(s);
        assert_eq!(
            n,
            b"HTTP/1.1 200 OK\r\nDate: <date>\r\ncontent-length: 26\r\n\r\nDate: in the body is kept\nHTTP/1.1 200 OK\r\nDATE:\t<date>\r\nX: date: no\r\n\r\n".to_vec()
        );
        // Idempotent, and unfinished lines are left alone.
        assert_eq!(normalize_dates(&n), n);
        assert_eq!(
            normalize_dates(b"HTTP/1.1 200 OK\r\nDate: Sun, 06"),
            b"HTTP/1.1 200 OK\r\nDate: Sun, 06".to_vec()
        );
        // Dropped fields go, line end included, only inside header sections.
        let s = b"HTTP/1.1 200 OK\r\nServer: weft\r\nDate: x\r\nvary: Origin\r\nContent-Length: 13\r\n\r\nServer: body\r\n";
        assert_eq!(
            normalize(s, &["Server", "Vary"]),
            b"HTTP/1.1 200 OK\r\nDate: <date>\r\nContent-Length: 13\r\n\r\nServer: body\r\n"
                .to_vec()
        );
        // A status line right after a body without a newline is still found.
        let s = b"{}HTTP/1.1 200 OK\r\ndate: x\r\n\r\n";
        assert_eq!(
            normalize_dates(s),
            b"{}HTTP/1.1 200 OK\r\ndate: <date>\r\n\r\n".to_vec()
        );
    }
}
