//! The request head: request line and header section (RFC 9112 sections 2-5), parsed strictly
//! and without copying. Header names and values stay borrowed from the caller's buffer.

use crate::error::Error;
use crate::headers::{FieldIndex, Headers};
use crate::limits::Limits;
use crate::request_line::{
    request_line, simple_request_line, RequestLine, MAX_LEADING_EMPTY_LINES,
};
pub(crate) use crate::request_line::{LineScan, RequestLineScan};
use crate::syntax::{
    eq_lower, field_value_len, find_lf, is_token, list_contains, list_items, parse_decimal,
    split_host_port, token_len, trim_field_value, trim_ows,
};

/// The request method. Unknown tokens are carried as [`Method::Other`] for the application to
/// answer (405 or 501).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method<'a> {
    /// `GET`.
    Get,
    /// `HEAD`.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `PATCH`.
    Patch,
    /// `DELETE`.
    Delete,
    /// `OPTIONS`.
    Options,
    /// `CONNECT`.
    Connect,
    /// `TRACE`.
    Trace,
    /// Any other method token, as sent (case-sensitive).
    Other(&'a str),
}

impl<'a> Method<'a> {
    /// The method named by a token (`None` only if `token` is not UTF-8, which a token always
    /// is).
    pub(crate) fn from_token(token: &'a [u8]) -> Option<Method<'a>> {
        Some(match token {
            b"GET" => Method::Get,
            b"HEAD" => Method::Head,
            b"POST" => Method::Post,
            b"PUT" => Method::Put,
            b"PATCH" => Method::Patch,
            b"DELETE" => Method::Delete,
            b"OPTIONS" => Method::Options,
            b"CONNECT" => Method::Connect,
            b"TRACE" => Method::Trace,
            other => Method::Other(std::str::from_utf8(other).ok()?),
        })
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

/// HTTP/1.0 or HTTP/1.1 (which a request of a higher HTTP/1 minor version is read as); other
/// versions are refused with 505.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// `HTTP/1.0`.
    Http10,
    /// `HTTP/1.1` (or a higher HTTP/1 minor version).
    Http11,
}

impl Version {
    /// The version as written in a status line (`HTTP/1.0`, `HTTP/1.1`).
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

/// A parsed request head. Everything borrows from the buffer it was parsed from.
#[derive(Clone, Copy, Debug)]
pub struct RequestHead<'a> {
    /// The request method.
    pub method: Method<'a>,
    /// The request target exactly as sent (origin-form, absolute-form, authority-form for
    /// CONNECT, or `*` for OPTIONS).
    pub target: &'a str,
    /// The protocol version.
    pub version: Version,
    /// The header section.
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

/// What the fields that decide how a request is read say, gathered over its header section.
#[derive(Default)]
struct RequestFields<'a> {
    hosts: usize,
    /// The last Host value.
    host: &'a [u8],
    /// Some Host value is not `uri-host [":" port]` with a non-empty host.
    bad_host: bool,
    content_length: Option<u64>,
    bad_content_length: bool,
    codings: TransferCodings,
    conn_close: bool,
    conn_keep_alive: bool,
    conn_upgrade: bool,
    upgrade: Option<&'a [u8]>,
    expect_continue: bool,
    bad_expect: bool,
}

impl<'a> RequestFields<'a> {
    /// Takes in one field. The names acted on are told apart by length first, which leaves
    /// at most one comparison per field.
    fn add(&mut self, name: &[u8], value: &'a [u8]) {
        match name.len() {
            4 if eq_lower(name, b"host") => {
                self.hosts += 1;
                self.host = value;
                self.bad_host |= split_host_port(value).is_none();
            }
            14 if eq_lower(name, b"content-length") => {
                add_content_length(
                    value,
                    &mut self.content_length,
                    &mut self.bad_content_length,
                );
            }
            17 if eq_lower(name, b"transfer-encoding") => self.codings.add_field(value),
            10 if eq_lower(name, b"connection") => self.add_connection(value),
            7 if eq_lower(name, b"upgrade") => self.upgrade = Some(value),
            6 if eq_lower(name, b"expect") => {
                if eq_lower(value, b"100-continue") {
                    self.expect_continue = true;
                } else {
                    self.bad_expect = true;
                }
            }
            _ => {}
        }
    }

    /// Takes in the options of a Connection field.
    fn add_connection(&mut self, value: &[u8]) {
        // Usually a single option: the list walk below is for the rest.
        let single = match value.len() {
            5 if eq_lower(value, b"close") => Some(&mut self.conn_close),
            10 if eq_lower(value, b"keep-alive") => Some(&mut self.conn_keep_alive),
            7 if eq_lower(value, b"upgrade") => Some(&mut self.conn_upgrade),
            _ => None,
        };
        if let Some(option) = single {
            *option = true;
            return;
        }
        for token in list_items(value) {
            if token.eq_ignore_ascii_case(b"close") {
                self.conn_close = true;
            } else if token.eq_ignore_ascii_case(b"keep-alive") {
                self.conn_keep_alive = true;
            } else if token.eq_ignore_ascii_case(b"upgrade") {
                self.conn_upgrade = true;
            }
        }
    }
}

/// Folds one Content-Length field into what the earlier ones said: each member of each field
/// must be the same decimal number, anything else makes the length bad.
fn add_content_length(value: &[u8], length: &mut Option<u64>, bad: &mut bool) {
    let mut add = |item: &[u8]| match parse_decimal(item) {
        Some(n) if length.is_none_or(|prev| prev == n) => *length = Some(n),
        _ => *bad = true,
    };
    // Usually a single number: without a comma the list is the value itself (already trimmed).
    if !value.contains(&b',') {
        return add(value);
    }
    let mut any = false;
    for item in value.split(|&b| b == b',').map(trim_ows) {
        any = true;
        add(item);
    }
    *bad |= !any;
}

/// Validates one header field line and splits it into name and trimmed value.
pub(crate) fn parse_field_line(line: &[u8], err: Error) -> Result<(&str, &[u8]), Error> {
    // obs-fold, or whitespace before the first field: both rejected.
    let Some(colon) = line.iter().position(|&b| b == b':') else {
        return Err(err);
    };
    let name = line.get(..colon).unwrap_or(&[]);
    let value = line.get(colon + 1..).unwrap_or(&[]);
    if !is_token(name) || field_value_len(value) != value.len() {
        return Err(err);
    }
    let name = std::str::from_utf8(name).map_err(|_| err)?;
    Ok((name, trim_ows(value)))
}

/// One line of a header section, classified in the order the rules apply to it.
#[derive(Clone, Copy)]
enum SectionLine<'a> {
    /// The empty line that ends the section.
    End,
    /// A valid field line: name and value with its whitespace trimmed.
    Field(&'a [u8], &'a [u8]),
    /// A line ended by a bare LF.
    BareLf,
    /// A CRLF-ended line that is not a valid field line.
    Malformed,
}

/// The fast path for the usual line of a section, a valid `token ":" field-value CRLF`: one
/// pass that validates while it looks for the line end. It returns the name, the trimmed value
/// and the line's length including its CRLF, or `None` for any other line (including the empty
/// line that ends the section, and one that has not fully arrived). `None` sends the line to
/// [`section_line`], the general path, so whatever this accepts the general path would have
/// accepted in the same way.
#[inline(always)]
fn simple_field_line(s: &[u8]) -> Option<(&[u8], &[u8], usize)> {
    // The line end is looked for first, from the start of the line (a name's bytes are all
    // field-value bytes too): where the next line starts then depends on this scan alone, and
    // the name checks below run alongside the next line's scan instead of before it.
    let end = field_value_len(s);
    if s.get(end..)?.get(..2)? != b"\r\n" {
        return None;
    }
    let line = s.get(..end)?;
    let name_len = token_len(line);
    if name_len == 0 || line.get(name_len) != Some(&b':') {
        return None;
    }
    let name = line.get(..name_len)?;
    let value = line.get(name_len + 1..)?;
    Some((name, trim_field_value(value), end + 2))
}

/// Splits off and classifies the line at the start of `s`: the line and its length including
/// its LF, or `None` while no LF has arrived.
fn section_line(s: &[u8]) -> Option<(SectionLine<'_>, usize)> {
    // Find the LF first, then judge the line.
    let lf = find_lf(s)?;
    let raw = s.get(..lf).unwrap_or(&[]);
    let line = match raw.strip_suffix(b"\r") {
        None => SectionLine::BareLf,
        Some([]) => SectionLine::End,
        Some(line) => match parse_field_line(line, Error::BadHeader) {
            Ok((name, value)) => SectionLine::Field(name.as_bytes(), value),
            Err(_) => SectionLine::Malformed,
        },
    };
    Some((line, lf + 1))
}

/// A request's header section, validated.
struct FieldSection<'a> {
    fields: RequestFields<'a>,
    index: FieldIndex,
    /// The number of field lines.
    count: usize,
    /// Where the empty line that ends the section starts.
    end: usize,
}

/// Parses the header section starting at `pos` of a head starting at `start`: `None` while it
/// is incomplete (and within the limits).
fn field_section<'a>(
    buf: &'a [u8],
    start: usize,
    mut pos: usize,
    limits: &Limits,
) -> Result<Option<FieldSection<'a>>, Error> {
    let fields_start = pos;
    let mut count = 0usize;
    let mut fields = RequestFields::default();
    let mut index = FieldIndex::filled();
    loop {
        let rest = buf.get(pos..).unwrap_or(&[]);
        if rest.starts_with(b"\r\n") {
            // The empty line that ends the section (the general path would say the same).
            if pos + 2 - start > limits.max_head {
                return Err(Error::HeadTooLarge);
            }
            break;
        }
        let (field, len) = match simple_field_line(rest) {
            Some((name, value, len)) => (Some((name, value)), len),
            None => {
                let Some((line, len)) = section_line(rest) else {
                    if buf.len() - start > limits.max_head {
                        return Err(Error::HeadTooLarge);
                    }
                    return Ok(None);
                };
                // The rules in the order they apply to a line: its length, its ending, whether
                // it ends the section, the field count (below), then its syntax.
                if pos + len - start > limits.max_head {
                    return Err(Error::HeadTooLarge);
                }
                match line {
                    SectionLine::BareLf => return Err(Error::BadHeader),
                    SectionLine::End => break,
                    SectionLine::Field(name, value) => (Some((name, value)), len),
                    SectionLine::Malformed => (None, len),
                }
            }
        };
        let next = pos + len;
        if next - start > limits.max_head {
            return Err(Error::HeadTooLarge);
        }
        pos = next;
        count += 1;
        if count > limits.max_headers {
            return Err(Error::TooManyHeaders);
        }
        let Some((name, value)) = field else {
            return Err(Error::BadHeader);
        };
        index.record(count - 1, next - fields_start, name.len());
        fields.add(name, value);
    }
    Ok(Some(FieldSection {
        fields,
        index,
        count,
        end: pos,
    }))
}

/// The framing of a request (RFC 9112 section 6.3) after the rules on its Host, Content-Length,
/// Transfer-Encoding and Expect fields, checked in this order.
fn request_framing(
    version: Version,
    fields: &RequestFields<'_>,
    limits: &Limits,
) -> Result<Framing, Error> {
    let codings = &fields.codings;
    if (version == Version::Http11 && fields.hosts != 1) || fields.hosts > 1 || fields.bad_host {
        return Err(Error::BadHost);
    }
    let chunked = codings.framing();
    if codings.present && version == Version::Http10 {
        return Err(Error::BadTransferEncoding);
    }
    if codings.present && (fields.content_length.is_some() || fields.bad_content_length) {
        return Err(Error::ContentLengthWithTransferEncoding);
    }
    if fields.bad_content_length {
        return Err(Error::BadContentLength);
    }
    let framing = if chunked? {
        Framing::Chunked
    } else {
        match fields.content_length {
            Some(0) | None => Framing::None,
            Some(n) if n > limits.max_body => return Err(Error::BodyTooLarge),
            Some(n) => Framing::Length(n),
        }
    };
    if fields.bad_expect {
        return Err(Error::UnsupportedExpectation);
    }
    Ok(framing)
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
    // Request line: after the empty lines that may precede it, the fast path for the usual
    // shape, else the general path, which judges every byte in order.
    let mut empty = 0;
    while empty < 2 * MAX_LEADING_EMPTY_LINES && buf.get(empty..empty + 2) == Some(b"\r\n") {
        empty += 2;
    }
    let line = match simple_request_line(buf, empty, limits) {
        Some(line) => line,
        None => match request_line(buf, limits)? {
            Some(line) => line,
            None => return Ok(None),
        },
    };
    let RequestLine {
        method,
        target,
        version,
        start,
        end: fields_start,
    } = line;

    // Header section.
    let Some(FieldSection {
        fields,
        index,
        count,
        end,
    }) = field_section(buf, start, fields_start, limits)?
    else {
        return Ok(None);
    };
    let consumed = end + 2;

    // Message framing (RFC 9112 section 6.3) and the remaining request rules.
    let framing = request_framing(version, &fields, limits)?;
    let RequestFields {
        host,
        conn_close,
        conn_keep_alive,
        conn_upgrade,
        upgrade,
        expect_continue,
        ..
    } = fields;
    let keep_alive = match version {
        Version::Http11 => !conn_close,
        Version::Http10 => conn_keep_alive && !conn_close,
    };
    let head = RequestHead {
        method,
        target,
        version,
        headers: Headers::indexed(buf.get(fields_start..end).unwrap_or(&[]), count, index),
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
