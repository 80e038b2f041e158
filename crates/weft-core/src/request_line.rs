//! The request line (RFC 9112 section 3) and the empty lines that may precede it: a fast path
//! for the usual shape, a byte-at-a-time scanner that defines the errors, and the checks of a
//! complete line (version, target form).

use crate::error::Error;
use crate::limits::Limits;
use crate::syntax::{
    is_tchar, is_token, position_of, split_host_port, token_len, visible_ascii_len,
};

use crate::head::{Method, Version};

/// Most empty lines ignored before a request line (RFC 9112 section 2.2 asks for at least one).
pub(crate) const MAX_LEADING_EMPTY_LINES: usize = 8;

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
    // No form has a fragment: origin-form is absolute-path ["?" query], absolute-form an
    // absolute-URI (RFC 9112 section 3.2).
    if target.is_empty() || position_of(target, b'#').is_some() {
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

/// A request line, taken apart.
pub(crate) struct RequestLine<'a> {
    pub(crate) method: Method<'a>,
    pub(crate) target: &'a str,
    pub(crate) version: Version,
    /// Where the line starts in the buffer (after the empty lines before it).
    pub(crate) start: usize,
    /// Where the line ends in the buffer (after its line end).
    pub(crate) end: usize,
}

/// The fast path for a request line of the usual shape, `method SP target SP HTTP/1.x CRLF`
/// within the length limit, at `buf[start..]`: one pass over each part. `None` for any other
/// line (including an incomplete one), which then goes through [`request_line`], the general
/// path, and gets its answer there.
///
/// Not inlined: inside [`parse_request_head`] it leaves the header loop fewer registers, which
/// measurably slows that loop down.
#[inline(never)]
pub(crate) fn simple_request_line<'a>(
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
pub(crate) fn request_line<'a>(
    buf: &'a [u8],
    limits: &Limits,
) -> Result<Option<RequestLine<'a>>, Error> {
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
