//! The request head: request line and header section (RFC 9112 sections 2-5), parsed strictly
//! and without copying. Header names and values stay borrowed from the caller's buffer.

use crate::error::Error;
use crate::limits::Limits;
use crate::syntax::{
    find_lf, is_field_value_byte, is_token, list_contains, list_items, parse_decimal, trim_ows,
};

/// Most empty lines ignored before a request line (RFC 9112 section 2.2 asks for at least one).
const MAX_LEADING_EMPTY_LINES: usize = 8;

/// The request method. Unknown tokens are carried as [`Method::Other`] for the application to
/// answer (405 or 501).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method<'a> {
    Get,
    Head,
    Post,
    Put,
    Patch,
    Delete,
    Options,
    Connect,
    Trace,
    Other(&'a str),
}

impl<'a> Method<'a> {
    fn from_token(token: &'a str) -> Method<'a> {
        match token {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            "POST" => Method::Post,
            "PUT" => Method::Put,
            "PATCH" => Method::Patch,
            "DELETE" => Method::Delete,
            "OPTIONS" => Method::Options,
            "CONNECT" => Method::Connect,
            "TRACE" => Method::Trace,
            other => Method::Other(other),
        }
    }

    /// The method as it appeared on the wire.
    pub fn as_str(&self) -> &'a str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
            Method::Options => "OPTIONS",
            Method::Connect => "CONNECT",
            Method::Trace => "TRACE",
            Method::Other(s) => s,
        }
    }
}

/// HTTP/1.0 or HTTP/1.1; other versions are refused with 505.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    Http10,
    Http11,
}

impl Version {
    pub fn as_str(self) -> &'static str {
        match self {
            Version::Http10 => "HTTP/1.0",
            Version::Http11 => "HTTP/1.1",
        }
    }
}

/// How the request body is delimited (RFC 9112 section 6.3). Requests are never
/// close-delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// Exactly this many bytes (never zero: a zero length is [`Framing::None`]).
    Length(u64),
    /// The chunked transfer coding.
    Chunked,
}

/// One header field, borrowed from the read buffer. The value has its surrounding whitespace
/// trimmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub name: &'a str,
    pub value: &'a [u8],
}

/// A validated header (or trailer) section, kept as the raw bytes of its lines. Iterating
/// re-splits the lines, which is cheap and allocates nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Headers<'a> {
    raw: &'a [u8],
    count: usize,
}

impl<'a> Headers<'a> {
    /// A section whose lines were already validated by this crate.
    pub(crate) fn from_validated(raw: &'a [u8], count: usize) -> Headers<'a> {
        Headers { raw, count }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.count
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The fields in order of arrival.
    pub fn iter(&self) -> HeaderIter<'a> {
        HeaderIter { rest: self.raw }
    }

    /// The first field named `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }

    /// Every field named `name`, in order.
    pub fn get_all<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        self.iter()
            .filter(move |h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = Header<'a>;
    type IntoIter = HeaderIter<'a>;
    fn into_iter(self) -> HeaderIter<'a> {
        self.iter()
    }
}

/// Iterator over a validated [`Headers`] section.
#[derive(Clone, Debug)]
pub struct HeaderIter<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = Header<'a>;
    fn next(&mut self) -> Option<Header<'a>> {
        loop {
            let lf = find_lf(self.rest)?;
            let line = self.rest.get(..lf)?;
            self.rest = self.rest.get(lf + 1..).unwrap_or(&[]);
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (Some(name), Some(value)) = (line.get(..colon), line.get(colon + 1..)) else {
                continue;
            };
            let Ok(name) = std::str::from_utf8(name) else {
                continue;
            };
            return Some(Header {
                name,
                value: trim_ows(value),
            });
        }
    }
}

/// A parsed request head. Everything borrows from the buffer it was parsed from.
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    pub method: Method<'a>,
    /// The request target exactly as sent (origin-form, absolute-form, authority-form for
    /// CONNECT, or `*` for OPTIONS).
    pub target: &'a str,
    pub version: Version,
    pub headers: Headers<'a>,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the client allows the connection to persist after this exchange (HTTP/1.1
    /// default, HTTP/1.0 `Connection: keep-alive`, neither with `Connection: close`).
    pub keep_alive: bool,
    /// `Expect: 100-continue` on an HTTP/1.1 request.
    pub expect_continue: bool,
    /// The `Upgrade` field value when the request asks for an upgrade (`Connection: upgrade`;
    /// HTTP/1.1 only).
    pub upgrade: Option<&'a [u8]>,
    /// The Host field value (empty when absent).
    pub host: &'a [u8],
}

impl<'a> RequestHead<'a> {
    /// The path part of the target (before `?`), for origin-form targets and for `http`/`https`
    /// absolute-form targets (RFC 9112 3.2.2: `http://host/p?q` has the path `/p`, and an empty
    /// path is `/`); `*` and other forms are returned whole.
    pub fn path(&self) -> &'a str {
        let target = absolute_form_rest(self.target).unwrap_or(self.target);
        match target.split_once('?') {
            Some(("", _)) => "/",
            Some((path, _)) => path,
            None if target.is_empty() => "/",
            None => target,
        }
    }

    /// The query part of the target (after `?`), if any.
    pub fn query(&self) -> Option<&'a str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
}

/// For an `http`/`https` absolute-form target, what follows the authority (path and query,
/// possibly empty); `None` for every other target.
fn absolute_form_rest(target: &str) -> Option<&str> {
    let (scheme, rest) = target.split_once("://")?;
    if !(scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https")) {
        return None;
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    rest.get(end..)
}

/// Splits off the next line from `buf[pos..]`: the line as received (without its LF, with its
/// CR if any) and the position after it; `None` when the line is incomplete. Callers check the
/// line's length before its ending, as they do for an incomplete line, so that the first error
/// does not depend on how the input was split.
fn raw_line(buf: &[u8], pos: usize) -> Option<(&[u8], usize)> {
    let rest = buf.get(pos..).unwrap_or(&[]);
    let lf = find_lf(rest)?;
    Some((rest.get(..lf).unwrap_or(&[]), pos + lf + 1))
}

/// Removes the CR of a line's CRLF; a bare LF is an error of kind `bare_lf`.
fn strip_cr(line: &[u8], bare_lf: Error) -> Result<&[u8], Error> {
    line.strip_suffix(b"\r").ok_or(bare_lf)
}

/// Classifies an over-long request line: 414 when a method and the start of a target are
/// within the limit (the target is what is long), 400 otherwise. Only the first `limit` bytes
/// are looked at, so the answer does not depend on how much of the line has arrived.
fn overlong_request_line(line: &[u8], limit: usize) -> Error {
    let partial = line.get(..limit).unwrap_or(line);
    match partial.iter().position(|&b| b == b' ') {
        Some(sp) if sp > 0 && partial.get(..sp).is_some_and(is_token) => Error::UriTooLong,
        _ => Error::RequestLineTooLong,
    }
}

fn parse_version(v: &[u8]) -> Result<Version, Error> {
    match v {
        b"HTTP/1.1" => Ok(Version::Http11),
        b"HTTP/1.0" => Ok(Version::Http10),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(Error::VersionNotSupported)
        }
        _ => Err(Error::BadRequestLine),
    }
}

/// Is `target` allowed with `method` (RFC 9112 section 3.2)?
fn valid_target(method: Method<'_>, target: &[u8]) -> bool {
    if target.is_empty() || !target.iter().all(|&b| (0x21..=0x7e).contains(&b)) {
        return false;
    }
    match method {
        Method::Connect => {
            // authority-form: host ":" port, nothing else.
            !target.starts_with(b"/") && !target.contains(&b'/') && target.contains(&b':')
        }
        _ if target == b"*" => method == Method::Options,
        _ if target.starts_with(b"/") => true,
        _ => {
            // absolute-form: scheme ":" hier-part, scheme = ALPHA *( ALPHA / DIGIT / + - . )
            let Some(colon) = target.iter().position(|&b| b == b':') else {
                return false;
            };
            let scheme = target.get(..colon).unwrap_or(&[]);
            matches!(scheme.first(), Some(b) if b.is_ascii_alphabetic())
                && scheme
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'))
        }
    }
}

/// Characters allowed in a Host value: uri-host (reg-name, IPv4, IP-literal) and port.
fn valid_host(value: &[u8]) -> bool {
    value.iter().all(|&b| {
        b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'!'
                    | b'$'
                    | b'&'
                    | b'\''
                    | b'('
                    | b')'
                    | b'*'
                    | b'+'
                    | b','
                    | b';'
                    | b'='
                    | b':'
                    | b'['
                    | b']'
                    | b'%'
            )
    })
}

/// What the Transfer-Encoding fields of a message say, accumulated over every field.
#[derive(Default)]
struct TransferCodings {
    present: bool,
    malformed: bool,
    chunked: usize,
    other: bool,
    last_is_chunked: bool,
}

impl TransferCodings {
    fn add_field(&mut self, value: &[u8]) {
        self.present = true;
        let mut any = false;
        for item in list_items(value) {
            any = true;
            let (name, has_params) = match item.iter().position(|&b| b == b';') {
                Some(semi) => (trim_ows(item.get(..semi).unwrap_or(&[])), true),
                None => (item, false),
            };
            if !is_token(name) {
                self.malformed = true;
            } else if name.eq_ignore_ascii_case(b"chunked") {
                if has_params {
                    // chunked takes no parameters.
                    self.malformed = true;
                }
                self.chunked += 1;
                self.last_is_chunked = true;
                continue;
            } else {
                self.other = true;
            }
            self.last_is_chunked = false;
        }
        if !any {
            self.malformed = true;
        }
    }

    /// The framing these codings give, or the error they earn.
    fn framing(&self) -> Result<bool, Error> {
        if !self.present {
            return Ok(false);
        }
        // RFC 9112 section 6.3: chunked not last means the length cannot be determined: 400.
        if self.malformed || !self.last_is_chunked || self.chunked != 1 {
            return Err(Error::BadTransferEncoding);
        }
        // chunked last, after a coding this server does not decode (gzip, chunked): 501.
        if self.other {
            return Err(Error::UnsupportedTransferEncoding);
        }
        Ok(true)
    }
}

/// Validates one header field line and splits it into name and trimmed value.
pub(crate) fn parse_field_line(line: &[u8], err: Error) -> Result<(&str, &[u8]), Error> {
    // obs-fold, or whitespace before the first field: both rejected.
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(err);
    };
    let name = line.get(..colon).unwrap_or(&[]);
    let value = line.get(colon + 1..).unwrap_or(&[]);
    if !is_token(name) || !value.iter().all(|&b| is_field_value_byte(b)) {
        return Err(err);
    }
    let name = std::str::from_utf8(name).map_err(|_| err)?;
    Ok((name, trim_ows(value)))
}

/// Parses a request head from the start of `buf`.
///
/// Returns `Ok(None)` while the head is incomplete (and within the limits), or the head and the
/// number of bytes it occupies (including up to eight ignored empty lines before it). Every
/// rule of RFC 9110 section 5 and RFC 9112 sections 2-6 that decides whether and how a request
/// is read is checked here; the first violation in the order of the bytes is returned.
pub fn parse_request_head<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<(RequestHead<'a>, usize)>, Error> {
    // Empty lines before the request line.
    let mut start = 0;
    for _ in 0..MAX_LEADING_EMPTY_LINES {
        match buf.get(start..) {
            Some([b'\r', b'\n', ..]) => start += 2,
            Some([b'\r']) | Some([]) => return Ok(None),
            Some([b'\n', ..]) => return Err(Error::BadRequestLine),
            _ => break,
        }
    }
    if matches!(buf.get(start..), Some([b'\r', b'\n', ..])) {
        return Err(Error::BadRequestLine);
    }

    // Request line.
    let Some((raw, mut pos)) = raw_line(buf, start) else {
        let partial = buf.get(start..).unwrap_or(&[]);
        if partial.len() > limits.max_request_line {
            return Err(overlong_request_line(partial, limits.max_request_line));
        }
        return Ok(None);
    };
    if raw.len() > limits.max_request_line {
        return Err(overlong_request_line(raw, limits.max_request_line));
    }
    let line = strip_cr(raw, Error::BadRequestLine)?;
    if line.len() + 2 > limits.max_request_line {
        return Err(overlong_request_line(line, limits.max_request_line));
    }
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::BadRequestLine);
    };
    if !is_token(method) {
        return Err(Error::BadRequestLine);
    }
    let method =
        Method::from_token(std::str::from_utf8(method).map_err(|_| Error::BadRequestLine)?);
    let version = parse_version(version)?;
    if !valid_target(method, target) {
        return Err(Error::BadRequestLine);
    }
    let target = std::str::from_utf8(target).map_err(|_| Error::BadRequestLine)?;

    // Header section.
    let fields_start = pos;
    let mut count = 0usize;
    let mut hosts = 0usize;
    let mut host: &[u8] = &[];
    let mut host_valid = true;
    let mut content_length: Option<u64> = None;
    let mut bad_content_length = false;
    let mut codings = TransferCodings::default();
    let mut conn_close = false;
    let mut conn_keep_alive = false;
    let mut conn_upgrade = false;
    let mut upgrade: Option<&[u8]> = None;
    let mut expect_continue = false;
    let mut bad_expect = false;
    loop {
        let Some((raw, next)) = raw_line(buf, pos) else {
            if buf.len() - start > limits.max_head {
                return Err(Error::HeadTooLarge);
            }
            return Ok(None);
        };
        if next - start > limits.max_head {
            return Err(Error::HeadTooLarge);
        }
        let line = strip_cr(raw, Error::BadHeader)?;
        if line.is_empty() {
            break;
        }
        pos = next;
        count += 1;
        if count > limits.max_headers {
            return Err(Error::TooManyHeaders);
        }
        let (name, value) = parse_field_line(line, Error::BadHeader)?;
        match name.len() {
            4 if name.eq_ignore_ascii_case("host") => {
                hosts += 1;
                host = value;
                host_valid &= valid_host(value);
            }
            14 if name.eq_ignore_ascii_case("content-length") => {
                let mut any = false;
                for item in value.split(|&b| b == b',').map(trim_ows) {
                    any = true;
                    match parse_decimal(item) {
                        Some(n) if content_length.is_none_or(|prev| prev == n) => {
                            content_length = Some(n)
                        }
                        _ => bad_content_length = true,
                    }
                }
                bad_content_length |= !any;
            }
            17 if name.eq_ignore_ascii_case("transfer-encoding") => codings.add_field(value),
            10 if name.eq_ignore_ascii_case("connection") => {
                for token in list_items(value) {
                    if token.eq_ignore_ascii_case(b"close") {
                        conn_close = true;
                    } else if token.eq_ignore_ascii_case(b"keep-alive") {
                        conn_keep_alive = true;
                    } else if token.eq_ignore_ascii_case(b"upgrade") {
                        conn_upgrade = true;
                    }
                }
            }
            7 if name.eq_ignore_ascii_case("upgrade") => upgrade = Some(value),
            6 if name.eq_ignore_ascii_case("expect") => {
                if value.eq_ignore_ascii_case(b"100-continue") {
                    expect_continue = true;
                } else {
                    bad_expect = true;
                }
            }
            _ => {}
        }
    }
    let consumed = pos + 2;

    // Message framing (RFC 9112 section 6.3) and the remaining request rules.
    if (version == Version::Http11 && hosts != 1) || hosts > 1 || !host_valid {
        return Err(Error::BadHost);
    }
    let chunked = codings.framing();
    if codings.present && version == Version::Http10 {
        return Err(Error::BadTransferEncoding);
    }
    if codings.present && (content_length.is_some() || bad_content_length) {
        return Err(Error::ContentLengthWithTransferEncoding);
    }
    if bad_content_length {
        return Err(Error::BadContentLength);
    }
    let framing = if chunked? {
        Framing::Chunked
    } else {
        match content_length {
            Some(0) | None => Framing::None,
            Some(n) if n > limits.max_body => return Err(Error::BodyTooLarge),
            Some(n) => Framing::Length(n),
        }
    };
    if bad_expect {
        return Err(Error::UnsupportedExpectation);
    }
    let keep_alive = match version {
        Version::Http11 => !conn_close,
        Version::Http10 => conn_keep_alive && !conn_close,
    };
    let head = RequestHead {
        method,
        target,
        version,
        headers: Headers {
            raw: buf.get(fields_start..pos).unwrap_or(&[]),
            count,
        },
        framing,
        keep_alive,
        expect_continue: expect_continue && version == Version::Http11,
        // HTTP/1.0 has no upgrade: the field is ignored (RFC 9110 section 7.8).
        upgrade: if conn_upgrade && version == Version::Http11 {
            upgrade
        } else {
            None
        },
        host,
    };
    Ok(Some((head, consumed)))
}

/// Does `value` (a Connection field) contain the `close` option?
pub(crate) fn connection_has_close(value: &[u8]) -> bool {
    list_contains(value, b"close")
}
