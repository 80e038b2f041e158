//! The request head: request line and header section (RFC 9112 sections 2-5), parsed strictly
//! and without copying. Header names and values stay borrowed from the caller's buffer.

use crate::error::Error;
use crate::limits::Limits;
use crate::syntax::{
    eq_lower, field_value_len, find_lf, is_tchar, is_token, list_contains, list_items,
    parse_decimal, position_of, short_position_of, split_host_port, token_len, trim_field_value,
    trim_ows, visible_ascii_len,
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
    /// The method named by a token (`None` only if `token` is not UTF-8, which a token always
    /// is).
    fn from_token(token: &'a [u8]) -> Option<Method<'a>> {
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

/// A validated header (or trailer) section, kept as the raw bytes of its lines and, for the
/// first [`INDEXED_FIELDS`] fields, where each line ends and how long its name is. Iterating and
/// lookups read that index; fields beyond it are found by re-splitting the lines. Nothing is
/// allocated.
#[derive(Clone, Copy, Default)]
pub struct Headers<'a> {
    raw: &'a [u8],
    count: usize,
    index: FieldIndex,
}

/// Two sections are equal when their bytes are (the index is derived from them).
impl PartialEq for Headers<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw && self.count == other.count
    }
}

impl Eq for Headers<'_> {}

impl std::fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Headers")
            .field("raw", &self.raw)
            .field("count", &self.count)
            .finish()
    }
}

/// How many fields of a section [`FieldIndex`] records. Requests rarely carry more.
const INDEXED_FIELDS: usize = 32;

/// Where the lines of the first fields of a request's header section end, recorded while the
/// section is validated, so that iterating and lookups need not look for the line ends again.
#[derive(Clone, Copy)]
struct FieldIndex {
    /// Per field, the offset in the section just past its line's CRLF, truncated to 16 bits.
    /// The last slot takes every field past the others and is never read.
    line_ends: [u16; INDEXED_FIELDS + 1],
    /// Per field, the length of its name, or 0 when it does not fit (no name is empty).
    name_lens: [u8; INDEXED_FIELDS + 1],
    /// Whether the section was indexed at all (trailer sections are not).
    filled: bool,
}

impl Default for FieldIndex {
    fn default() -> FieldIndex {
        FieldIndex {
            line_ends: [0; INDEXED_FIELDS + 1],
            name_lens: [0; INDEXED_FIELDS + 1],
            filled: false,
        }
    }
}

impl FieldIndex {
    /// Records where field number `field` (from 0) ends and how long its name is. Kept to two
    /// stores and no branch: it runs for every field of every request.
    #[inline]
    fn record(&mut self, field: usize, line_end: usize, name_len: usize) {
        let slot = field.min(INDEXED_FIELDS);
        if let Some(end) = self.line_ends.get_mut(slot) {
            // Truncation is harmless: the index of a section longer than u16::MAX is not read.
            *end = line_end as u16;
        }
        if let Some(len) = self.name_lens.get_mut(slot) {
            *len = u8::try_from(name_len).unwrap_or(0);
        }
    }

    /// Where field `i`'s line ends in `section` (of `count` fields) and how long its name is
    /// (0 for a name too long to record), if the field is recorded.
    #[inline]
    fn get(&self, section: &[u8], count: usize, i: usize) -> Option<(usize, usize)> {
        let usable = self.filled && section.len() <= usize::from(u16::MAX);
        if !usable || i >= count.min(INDEXED_FIELDS) {
            return None;
        }
        let end = self.line_ends.get(i)?;
        let name_len = self.name_lens.get(i)?;
        Some((usize::from(*end), usize::from(*name_len)))
    }
}

impl<'a> Headers<'a> {
    /// A section whose lines were already validated by this crate.
    pub(crate) fn from_validated(raw: &'a [u8], count: usize) -> Headers<'a> {
        Headers {
            raw,
            count,
            index: FieldIndex::default(),
        }
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
        // One UTF-8 check over the whole section (word at a time over ASCII) is much cheaper
        // than one per name; a value with non-UTF-8 obs-text only cuts the prefix short.
        let text = match std::str::from_utf8(self.raw) {
            Ok(text) => text,
            Err(err) => self
                .raw
                .get(..err.valid_up_to())
                .and_then(|valid| std::str::from_utf8(valid).ok())
                .unwrap_or(""),
        };
        HeaderIter {
            fields: self.fields(),
            text,
        }
    }

    /// The first field named `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| value)
    }

    /// Every field named `name`, in order.
    pub fn get_all<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        self.fields()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| value)
    }

    /// The fields as bytes: lookups by name need no `&str`.
    fn fields(&self) -> RawFields<'a> {
        RawFields {
            raw: self.raw,
            count: self.count,
            pos: 0,
            field: 0,
            index: self.index,
        }
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
    fields: RawFields<'a>,
    /// The longest UTF-8 prefix of the section: names are sliced from it.
    text: &'a str,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = Header<'a>;
    #[inline]
    fn next(&mut self) -> Option<Header<'a>> {
        loop {
            // A name is the start of its line.
            let start = self.fields.pos;
            let (name, value) = self.fields.next()?;
            let name = match self.text.get(start..start + name.len()) {
                Some(name) => name,
                // After a value that is not UTF-8 (names are tokens: this always succeeds).
                None => match std::str::from_utf8(name) {
                    Ok(name) => name,
                    Err(_) => continue,
                },
            };
            return Some(Header { name, value });
        }
    }
}

/// The fields of a validated section as `(name, value)` bytes.
#[derive(Clone)]
struct RawFields<'a> {
    raw: &'a [u8],
    count: usize,
    /// Where the next line starts.
    pos: usize,
    /// The number of the next field.
    field: usize,
    index: FieldIndex,
}

impl std::fmt::Debug for RawFields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawFields")
            .field("rest", &self.raw.get(self.pos..))
            .finish()
    }
}

impl<'a> Iterator for RawFields<'a> {
    type Item = (&'a [u8], &'a [u8]);
    #[inline]
    fn next(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        let (name, value, end) = match self.index.get(self.raw, self.count, self.field) {
            Some((end, name_len)) => {
                // `name ":" value CRLF`; a token holds no `:`.
                let line = self.raw.get(self.pos..end.checked_sub(2)?)?;
                let colon = match name_len {
                    0 => short_position_of(line, b':')?,
                    known => known,
                };
                let name = line.get(..colon)?;
                (name, trim_field_value(line.get(colon + 1..)?), end)
            }
            None => {
                let (name, value, len) = split_field_line(self.raw.get(self.pos..)?)?;
                (name, value, self.pos + len)
            }
        };
        self.pos = end;
        self.field += 1;
        Some((name, value))
    }
}

/// Splits the first line of a section validated by this crate, `token ":" field-value CRLF`:
/// the name ends at the first `:` (a token holds none) and the value at the first CR (a value
/// holds none), so no byte is checked again. Returns the name, the trimmed value and the
/// line's length including its CRLF.
fn split_field_line(s: &[u8]) -> Option<(&[u8], &[u8], usize)> {
    // The line end first, so that the next line's scan does not wait for the name's.
    let cr = position_of(s, b'\r')?;
    let line = s.get(..cr)?;
    let colon = short_position_of(line, b':')?;
    let name = line.get(..colon)?;
    let value = trim_field_value(line.get(colon + 1..)?);
    Some((name, value, cr + 2))
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

/// The version of a request line. A higher minor version of HTTP/1 is read as HTTP/1.1, the
/// highest this server implements (RFC 9110 section 2.5); other majors are refused with 505.
fn parse_version(v: &[u8]) -> Result<Version, Error> {
    match v {
        b"HTTP/1.1" => Ok(Version::Http11),
        b"HTTP/1.0" => Ok(Version::Http10),
        [b'H', b'T', b'T', b'P', b'/', b'1', b'.', b'2'..=b'9'] => Ok(Version::Http11),
        [b'H', b'T', b'T', b'P', b'/', major, b'.', minor]
            if major.is_ascii_digit() && minor.is_ascii_digit() =>
        {
            Err(Error::VersionNotSupported)
        }
        _ => Err(Error::BadRequestLine),
    }
}

/// Is `target`, known to be visible ASCII, of a form allowed with `method`?
fn valid_target_form(method: Method<'_>, target: &[u8]) -> bool {
    if target.is_empty() {
        return false;
    }
    match method {
        // authority-form: uri-host ":" port, nothing else (RFC 9112 section 3.2.3).
        Method::Connect => matches!(split_host_port(target), Some((_, Some(_)))),
        _ if target == b"*" => method == Method::Options,
        _ if target.starts_with(b"/") => true,
        _ => {
            // absolute-form: scheme ":" hier-part, scheme = ALPHA *( ALPHA / DIGIT / + - . )
            let Some(colon) = target.iter().position(|&b| b == b':') else {
                return false;
            };
            let scheme = target.get(..colon).unwrap_or(&[]);
            let rest = target.get(colon + 1..).unwrap_or(&[]);
            let scheme_ok = matches!(scheme.first(), Some(b) if b.is_ascii_alphabetic())
                && scheme
                    .iter()
                    .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
            scheme_ok && (!is_http_scheme(scheme) || valid_http_hier_part(rest))
        }
    }
}

/// Is `scheme` `http` or `https` (case-insensitive, RFC 3986 section 3.1)?
fn is_http_scheme(scheme: &[u8]) -> bool {
    scheme.eq_ignore_ascii_case(b"http") || scheme.eq_ignore_ascii_case(b"https")
}

/// Does `rest`, what follows `http:` or `https:`, start with `//` and an authority that is a
/// non-empty uri-host and an optional port (RFC 9110 section 4.2.1)? Userinfo is refused
/// (section 4.2.4): its `@` is no host or port byte.
fn valid_http_hier_part(rest: &[u8]) -> bool {
    let Some(after) = rest.strip_prefix(b"//") else {
        return false;
    };
    let end = after
        .iter()
        .position(|&b| matches!(b, b'/' | b'?' | b'#'))
        .unwrap_or(after.len());
    after.get(..end).and_then(split_host_port).is_some()
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

/// A request line, taken apart.
struct RequestLine<'a> {
    method: Method<'a>,
    target: &'a str,
    version: Version,
    /// Where the line starts in the buffer (after the empty lines before it).
    start: usize,
    /// Where the line ends in the buffer (after its line end).
    end: usize,
}

/// The fast path for a request line of the usual shape, `method SP target SP HTTP/1.x CRLF`
/// within the length limit, at `buf[start..]`: one pass over each part. `None` for any other
/// line (including an incomplete one), which then goes through [`request_line`], the general
/// path, and gets its answer there.
///
/// Not inlined: inside [`parse_request_head`] it leaves the header loop fewer registers, which
/// measurably slows that loop down.
#[inline(never)]
fn simple_request_line<'a>(
    buf: &'a [u8],
    start: usize,
    limits: &Limits,
) -> Option<RequestLine<'a>> {
    let s = buf.get(start..)?;
    let method_len = token_len(s);
    let (method, rest) = s.split_at_checked(method_len)?;
    let rest = rest.strip_prefix(b" ")?;
    let target_len = visible_ascii_len(rest);
    let (target, rest) = rest.split_at_checked(target_len)?;
    let version = match rest.get(..11)? {
        b" HTTP/1.1\r\n" => Version::Http11,
        b" HTTP/1.0\r\n" => Version::Http10,
        _ => return None,
    };
    let len = method_len + 1 + target_len + 11;
    if method_len == 0 || len > limits.max_request_line {
        return None;
    }
    let method = Method::from_token(method)?;
    if !valid_target_form(method, target) {
        return None;
    }
    Some(RequestLine {
        method,
        target: std::str::from_utf8(target).ok()?,
        version,
        start,
        end: start + len,
    })
}

/// Where [`RequestLineScan`] is in the bytes that start a request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Lex {
    /// At the start of a line before the request line: an empty line or the method.
    #[default]
    LineStart,
    /// After the CR of an empty line.
    EmptyLineCr,
    /// In the method (at least one tchar read).
    Method,
    /// After the SP that ends the method.
    TargetStart,
    /// In the target (at least one byte read).
    Target,
    /// After the SP that ends the target, with this many bytes of `HTTP/d.d` read.
    Version(u8),
    /// After the CR that ends the request line.
    LineCr,
}

impl Lex {
    /// Whether the request line has started (its length counts).
    fn in_line(self) -> bool {
        !matches!(self, Lex::LineStart | Lex::EmptyLineCr)
    }
}

/// What [`RequestLineScan::scan`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LineScan {
    /// Every byte so far may still start a request: more input is needed.
    Pending,
    /// A request line of the right shape at `buf[start..end]` (`end` is after its LF).
    Line { start: usize, end: usize },
    /// The first byte that no request can hold (or the request line's length) fails with this.
    Failed(Error),
}

/// The bytes that start a request, judged one at a time in order (RFC 9112 sections 2.2 and
/// 3): at most [`MAX_LEADING_EMPTY_LINES`] CRLFs, then `1*tchar SP 1*VCHAR SP "HTTP/" DIGIT
/// "." DIGIT CRLF` within `max_request_line` bytes. The first byte that cannot continue that
/// shape is reported at once, whatever follows it, so garbage (a TLS ClientHello, a bare CR)
/// is refused without waiting for a line end or the header timeout. Resumable: the
/// connection keeps one across reads of the same buffer, so each byte is examined once.
/// Which version is supported and whether the target's form suits the method are judged once
/// the line is complete ([`request_line`]).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RequestLineScan {
    /// The next byte to examine.
    pos: usize,
    /// Where the request line starts (after the empty lines before it).
    start: usize,
    empty_lines: usize,
    state: Lex,
}

impl RequestLineScan {
    /// Examines the bytes of `buf` after those examined by earlier calls (`buf` must start with
    /// the bytes those calls saw).
    pub(crate) fn scan(&mut self, buf: &[u8], limits: &Limits) -> LineScan {
        let limit = limits.max_request_line;
        loop {
            let Some(&b) = buf.get(self.pos) else {
                return LineScan::Pending;
            };
            // A byte of the request line past its limit fails for its position, whatever it is.
            let in_line = self.state.in_line() || (self.state == Lex::LineStart && is_tchar(b));
            let line_start = if self.state.in_line() {
                self.start
            } else {
                self.pos
            };
            if in_line && self.pos - line_start >= limit {
                let line = buf.get(line_start..).unwrap_or(&[]);
                return LineScan::Failed(overlong_request_line(line, limit));
            }
            let next = match (self.state, b) {
                (Lex::LineStart, b'\r') if self.empty_lines < MAX_LEADING_EMPTY_LINES => {
                    Lex::EmptyLineCr
                }
                (Lex::EmptyLineCr, b'\n') => {
                    self.empty_lines += 1;
                    Lex::LineStart
                }
                (Lex::LineStart, b) if is_tchar(b) => {
                    self.start = self.pos;
                    Lex::Method
                }
                (Lex::Method, b) if is_tchar(b) => Lex::Method,
                (Lex::Method, b' ') => Lex::TargetStart,
                (Lex::TargetStart | Lex::Target, 0x21..=0x7e) => Lex::Target,
                (Lex::Target, b' ') => Lex::Version(0),
                (Lex::Version(8), b'\r') => Lex::LineCr,
                (Lex::Version(n), b) if version_byte_fits(n, b) => Lex::Version(n + 1),
                (Lex::LineCr, b'\n') => {
                    self.pos += 1;
                    return LineScan::Line {
                        start: self.start,
                        end: self.pos,
                    };
                }
                _ => return LineScan::Failed(Error::BadRequestLine),
            };
            self.state = next;
            self.pos += 1;
            // Runs of method and target bytes are skipped a word at a time (within the limit).
            let run_end = buf.len().min(self.start + limit);
            let run = buf.get(self.pos..run_end).unwrap_or(&[]);
            self.pos += match next {
                Lex::Method => token_len(run),
                Lex::Target => visible_ascii_len(run),
                _ => 0,
            };
        }
    }
}

/// Can `b` be byte number `n` (from 0) of `HTTP/d.d`?
fn version_byte_fits(n: u8, b: u8) -> bool {
    match n {
        0..=4 => b"HTTP/".get(usize::from(n)) == Some(&b),
        5 | 7 => b.is_ascii_digit(),
        6 => b == b'.',
        _ => false,
    }
}

/// The general path for the request line at the start of `buf` (after the empty lines that
/// may precede it): [`RequestLineScan`] judges every byte in order, then the complete line's
/// version (505 before the target, so that an HTTP/2 preface is told its version is not
/// spoken) and the target's form. `None` while the line is incomplete and may still be valid.
fn request_line<'a>(buf: &'a [u8], limits: &Limits) -> Result<Option<RequestLine<'a>>, Error> {
    let (start, end) = match RequestLineScan::default().scan(buf, limits) {
        LineScan::Pending => return Ok(None),
        LineScan::Failed(err) => return Err(err),
        LineScan::Line { start, end } => (start, end),
    };
    // `method SP target SP version CRLF`, each part of the shape the scan checked.
    let line = buf.get(start..end.saturating_sub(2)).unwrap_or(&[]);
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(Error::BadRequestLine);
    };
    let method = Method::from_token(method).ok_or(Error::BadRequestLine)?;
    let version = parse_version(version)?;
    if !valid_target_form(method, target) {
        return Err(Error::BadRequestLine);
    }
    let target = std::str::from_utf8(target).map_err(|_| Error::BadRequestLine)?;
    Ok(Some(RequestLine {
        method,
        target,
        version,
        start,
        end,
    }))
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
        end: mut pos,
    } = line;

    // Header section.
    let fields_start = pos;
    let mut count = 0usize;
    let mut fields = RequestFields::default();
    let mut index = FieldIndex {
        filled: true,
        ..FieldIndex::default()
    };
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
    let consumed = pos + 2;

    // Message framing (RFC 9112 section 6.3) and the remaining request rules.
    let RequestFields {
        hosts,
        host,
        bad_host,
        content_length,
        bad_content_length,
        codings,
        conn_close,
        conn_keep_alive,
        conn_upgrade,
        upgrade,
        expect_continue,
        bad_expect,
    } = fields;
    if (version == Version::Http11 && hosts != 1) || hosts > 1 || bad_host {
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
            index,
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
