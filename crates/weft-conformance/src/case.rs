//! The `.case` transcript format: parser and data model.
//!
//! The full format is documented in `conformance/README.md`; this module is
//! its reference implementation. In short: one directive per line, `#`
//! comment lines, payload directives (`send:`, `expect:`, `expect-body:`)
//! with escapes and `+` continuation lines.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::escape::unescape;

/// How the bytes of each `send:` step are handed to the socket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Mode {
    /// Each send step in one write.
    Whole,
    /// Every byte in its own write (TCP_NODELAY set).
    Bytes,
    /// Seeded pseudo-random chunks of 1..=32 bytes, each its own write.
    Split(u64),
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Mode::Whole => f.write_str("whole"),
            Mode::Bytes => f.write_str("bytes"),
            Mode::Split(seed) => write!(f, "split:{seed}"),
        }
    }
}

impl Mode {
    /// Parses `whole`, `bytes` or `split:SEED`.
    pub fn parse(s: &str) -> Result<Mode, String> {
        match s {
            "whole" => Ok(Mode::Whole),
            "bytes" => Ok(Mode::Bytes),
            _ => match s.strip_prefix("split:") {
                Some(seed) => seed
                    .parse::<u64>()
                    .map(Mode::Split)
                    .map_err(|_| format!("bad split seed {seed:?} (want an unsigned integer)")),
                None => Err(format!(
                    "unknown mode {s:?} (known: whole, bytes, split:SEED)"
                )),
            },
        }
    }
}

/// The modes a case runs in when it has no `modes:` line.
pub const DEFAULT_MODES: [Mode; 3] = [Mode::Whole, Mode::Bytes, Mode::Split(1)];

/// One step of the client side of a conversation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Write these bytes (delivered according to the mode).
    Send(Vec<u8>),
    /// Sleep before the next step.
    Wait(Duration),
    /// Half-close: shut down our write side (TCP FIN).
    Shutdown,
    /// Abortive close: SO_LINGER 0 and close, so the kernel sends RST. Always
    /// the last step; nothing is read after it.
    Reset,
}

/// What the server must do with the connection at the end.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnExpect {
    /// Not checked.
    Any,
    /// The server must close (EOF or reset) within the case timeout.
    Close,
    /// The server must not close within the quiet period after the answer.
    Open,
}

/// A three-character status pattern such as `200`, `4xx` or `30x`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusPattern(pub [u8; 3]);

impl StatusPattern {
    pub fn parse(s: &str) -> Result<StatusPattern, String> {
        let b = s.as_bytes();
        if b.len() == 3
            && b[0].is_ascii_digit()
            && b.iter()
                .all(|c| c.is_ascii_digit() || *c == b'x' || *c == b'X')
        {
            Ok(StatusPattern([
                b[0],
                b[1].to_ascii_lowercase(),
                b[2].to_ascii_lowercase(),
            ]))
        } else {
            Err(format!(
                "bad status {s:?} (want three digits, 'x' as a wildcard: 200, 4xx)"
            ))
        }
    }

    pub fn matches(&self, status: u16) -> bool {
        let digits = format!("{status:03}");
        digits.len() == 3 && digits.bytes().zip(self.0).all(|(d, p)| p == b'x' || p == d)
    }
}

impl fmt::Display for StatusPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(std::str::from_utf8(&self.0).unwrap_or("???"))
    }
}

/// One assertion about a parsed response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    Status(StatusPattern),
    /// Header present; with `Some`, one of its values must equal this.
    Header {
        name: String,
        value: Option<Vec<u8>>,
    },
    /// Header absent.
    NoHeader(String),
    /// Decoded body (de-chunked) equals these bytes.
    Body(Vec<u8>),
    /// Decoded body has this length.
    BodyLength(usize),
    /// The body after removing the content coding (`Content-Encoding`) equals these bytes.
    DecodedBody(Vec<u8>),
    /// The body after removing the content coding has this length.
    DecodedBodyLength(usize),
    /// A chunked body whose chunks, decoded one after the other, each end at a line end.
    FlushedLines,
}

/// An assertion bound to a response number (1-based, interim 1xx responses
/// count) and to the case-file line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assertion {
    pub response: usize,
    pub check: Check,
    pub line: usize,
}

/// What the response stream must look like.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expectation {
    /// Only the connection state (`expect-close` / `expect-open`) is checked.
    None,
    /// The whole response stream, byte for byte after Date normalisation.
    Exact(Vec<u8>),
    /// Assertions over parsed responses; `count` is the exact number of
    /// responses required.
    Assert {
        count: usize,
        assertions: Vec<Assertion>,
    },
}

/// A parsed case file.
#[derive(Clone, Debug)]
pub struct Case {
    /// Path relative to the cases directory, without `.case`, `/`-separated.
    pub name: String,
    pub path: PathBuf,
    pub desc: Option<String>,
    pub skip: Option<String>,
    pub modes: Vec<Mode>,
    pub steps: Vec<Step>,
    pub expect: Expectation,
    pub conn: ConnExpect,
    pub timeout: Option<Duration>,
    pub quiet: Option<Duration>,
    /// Explicit request methods (`methods:`); otherwise inferred.
    pub methods: Option<Vec<String>>,
    /// 0-based inclusive line range of the `expect:` directive and its
    /// continuation lines (used by `--bless`).
    pub expect_lines: Option<(usize, usize)>,
    /// `compare: decoded REASON`: when two targets are compared, compare the
    /// decoded responses (status, headers, de-chunked body, trailers) instead
    /// of the raw bytes, because the chunk boundaries legitimately follow TCP
    /// read boundaries (a streamed echo). `None`: compare raw bytes.
    pub compare_decoded: Option<String>,
    /// `expect-alive`: the only expectation is that the target survives the
    /// case (checked after every case anyway); for fault cases.
    pub expect_alive: bool,
}

impl Case {
    /// True when the client resets the connection (a `reset` step).
    pub fn has_reset(&self) -> bool {
        self.steps.contains(&Step::Reset)
    }

    /// All bytes the client sends, concatenated.
    pub fn sent_bytes(&self) -> Vec<u8> {
        let mut all = Vec::new();
        for step in &self.steps {
            if let Step::Send(b) = step {
                all.extend_from_slice(b);
            }
        }
        all
    }

    /// The methods of the requests in the order they are sent: the
    /// `methods:` line when present, else inferred from the sent bytes.
    pub fn request_methods(&self) -> Vec<String> {
        match &self.methods {
            Some(m) => m.clone(),
            None => infer_methods(&self.sent_bytes()),
        }
    }
}

/// Infers request methods from the bytes a client sends: every line (at the
/// start or after a `\n`) of the form `TOKEN SP target SP HTTP/` counts as a
/// request line, with TOKEN made of upper-case ASCII letters.
pub fn infer_methods(sent: &[u8]) -> Vec<String> {
    let mut methods = Vec::new();
    let mut start = 0;
    loop {
        let line_end = sent[start..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| start + p);
        let line = &sent[start..line_end.unwrap_or(sent.len())];
        if let Some(m) = request_line_method(line) {
            methods.push(m);
        }
        match line_end {
            Some(e) => start = e + 1,
            None => break,
        }
    }
    methods
}

fn request_line_method(line: &[u8]) -> Option<String> {
    let sp = line.iter().position(|&b| b == b' ')?;
    let method = &line[..sp];
    if method.is_empty() || !method.iter().all(|b| b.is_ascii_uppercase()) {
        return None;
    }
    let rest = &line[sp + 1..];
    let sp2 = rest.iter().position(|&b| b == b' ')?;
    if sp2 == 0 || !rest[sp2 + 1..].starts_with(b"HTTP/") {
        return None;
    }
    Some(String::from_utf8_lossy(method).into_owned())
}

/// A parse error, tied to a line of a case file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub path: PathBuf,
    /// 1-based line number (0 when the error concerns the whole file).
    pub line: usize,
    pub msg: String,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            write!(f, "{}: {}", self.path.display(), self.msg)
        } else {
            write!(f, "{}:{}: {}", self.path.display(), self.line, self.msg)
        }
    }
}

/// Parses a duration such as `50ms`, `3s` or `1.5s`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let bad = || format!("bad duration {s:?} (write e.g. 50ms, 3s, 1.5s)");
    if let Some(ms) = s.strip_suffix("ms") {
        return ms
            .parse::<u64>()
            .map(Duration::from_millis)
            .map_err(|_| bad());
    }
    if let Some(secs) = s.strip_suffix('s') {
        let v: f64 = secs.parse().map_err(|_| bad())?;
        if !v.is_finite() || !(0.0..=3600.0).contains(&v) || secs.starts_with(['+', '-']) {
            return Err(bad());
        }
        return Ok(Duration::from_secs_f64(v));
    }
    Err(bad())
}

/// Strips `[ \t]` from both ends.
fn trim_blank(b: &[u8]) -> &[u8] {
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

/// Strips a trailing `# comment` (a `#` at the start or after a blank).
fn strip_comment(b: &[u8]) -> &[u8] {
    for i in 0..b.len() {
        if b[i] == b'#' && (i == 0 || b[i - 1] == b' ' || b[i - 1] == b'\t') {
            return &b[..i];
        }
    }
    b
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum PayloadTarget {
    Send,
    Expect,
    Body,
}

/// Parses the text of a case file. `name` and `path` are only recorded.
pub fn parse_case(name: &str, path: &Path, text: &[u8]) -> Result<Case, ParseError> {
    let err = |line: usize, msg: String| ParseError {
        path: path.to_path_buf(),
        line,
        msg,
    };

    let mut desc = None;
    let mut skip = None;
    let mut modes: Option<Vec<Mode>> = None;
    let mut steps = Vec::new();
    let mut exact: Option<Vec<u8>> = None;
    let mut expect_lines = None;
    let mut assertions: Vec<Assertion> = Vec::new();
    let mut expect_responses: Option<usize> = None;
    let mut current_response = 1usize;
    let mut conn: Option<(ConnExpect, usize)> = None;
    let mut timeout = None;
    let mut quiet = None;
    let mut methods = None;
    let mut compare_decoded: Option<String> = None;
    let mut expect_alive = 0usize;
    // Line of the `reset` step: no step may follow it.
    let mut reset_line = 0usize;
    // The payload a '+' line would extend, if the previous line allows it.
    let mut open_payload: Option<PayloadTarget> = None;
    let mut saw_assertion_line = 0usize;
    let mut saw_exact_line = 0usize;

    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }

    for (idx, raw) in lines.iter().enumerate() {
        let lineno = idx + 1;
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = {
            let start = raw
                .iter()
                .position(|c| *c != b' ' && *c != b'\t')
                .unwrap_or(raw.len());
            &raw[start..]
        };
        if line.is_empty() || line[0] == b'#' {
            open_payload = None;
            continue;
        }

        if line[0] == b'+' {
            let Some(target) = open_payload else {
                return Err(err(
                    lineno,
                    "'+' continuation must directly follow a send:, expect: or expect-body: line \
                     or another '+' line"
                        .into(),
                ));
            };
            let bytes = unescape(trim_blank(&line[1..])).map_err(|(_, m)| err(lineno, m))?;
            match target {
                PayloadTarget::Send => match steps.last_mut() {
                    Some(Step::Send(b)) => b.extend_from_slice(&bytes),
                    _ => unreachable!("open send payload without a send step"),
                },
                PayloadTarget::Expect => {
                    exact
                        .as_mut()
                        .expect("open expect payload")
                        .extend_from_slice(&bytes);
                    if let Some((_, end)) = expect_lines.as_mut() {
                        *end = idx;
                    }
                }
                PayloadTarget::Body => match assertions.last_mut() {
                    Some(Assertion {
                        check: Check::Body(b) | Check::DecodedBody(b),
                        ..
                    }) => b.extend_from_slice(&bytes),
                    _ => unreachable!("open body payload without a body assertion"),
                },
            }
            continue;
        }
        open_payload = None;

        let name_end = line
            .iter()
            .position(|c| *c == b':' || *c == b' ' || *c == b'\t')
            .unwrap_or(line.len());
        let name = String::from_utf8_lossy(&line[..name_end]).into_owned();
        let rest = &line[name_end..];
        let (has_colon, value_raw) = match rest.first() {
            Some(b':') => (true, &rest[1..]),
            _ => (false, rest),
        };
        // Value for directives that take one: trimmed, no comment stripping.
        let text_value = trim_blank(value_raw);
        // Value for directives that allow a trailing comment.
        let plain_value = trim_blank(strip_comment(value_raw));
        let plain_str = || -> Result<String, ParseError> {
            std::str::from_utf8(plain_value)
                .map(str::to_owned)
                .map_err(|_| err(lineno, format!("{name}: value is not UTF-8")))
        };
        let need_colon = |has: bool| -> Result<(), ParseError> {
            if has {
                Ok(())
            } else {
                Err(err(
                    lineno,
                    format!("'{name}' needs a value: write '{name}: ...'"),
                ))
            }
        };
        let no_value = |what: &str| -> Result<(), ParseError> {
            if plain_value.is_empty() {
                Ok(())
            } else {
                Err(err(lineno, format!("'{what}' takes no value")))
            }
        };
        let once = |already: bool| -> Result<(), ParseError> {
            if already {
                Err(err(lineno, format!("'{name}' given twice")))
            } else {
                Ok(())
            }
        };

        if reset_line != 0 && matches!(name.as_str(), "send" | "wait" | "shutdown" | "reset") {
            return Err(err(
                lineno,
                format!(
                    "'{name}' after the reset step on line {reset_line}: reset must be the last \
                     step (the connection is gone)"
                ),
            ));
        }

        match name.as_str() {
            "desc" => {
                need_colon(has_colon)?;
                once(desc.is_some())?;
                desc = Some(String::from_utf8_lossy(text_value).into_owned());
            }
            "skip" => {
                need_colon(has_colon)?;
                once(skip.is_some())?;
                let reason = String::from_utf8_lossy(text_value).into_owned();
                skip = Some(if reason.is_empty() {
                    "skipped".into()
                } else {
                    reason
                });
            }
            "modes" => {
                need_colon(has_colon)?;
                once(modes.is_some())?;
                let mut list = Vec::new();
                for tok in plain_str()?.split_whitespace() {
                    let m = Mode::parse(tok).map_err(|e| err(lineno, e))?;
                    if list.contains(&m) {
                        return Err(err(lineno, format!("mode {m} listed twice")));
                    }
                    list.push(m);
                }
                if list.is_empty() {
                    return Err(err(lineno, "modes: lists no mode".into()));
                }
                modes = Some(list);
            }
            "send" => {
                need_colon(has_colon)?;
                let bytes = unescape(text_value).map_err(|(_, m)| err(lineno, m))?;
                steps.push(Step::Send(bytes));
                open_payload = Some(PayloadTarget::Send);
            }
            "wait" => {
                need_colon(has_colon)?;
                let d = parse_duration(&plain_str()?).map_err(|e| err(lineno, e))?;
                steps.push(Step::Wait(d));
            }
            "shutdown" => {
                no_value("shutdown")?;
                steps.push(Step::Shutdown);
            }
            "reset" => {
                no_value("reset")?;
                steps.push(Step::Reset);
                reset_line = lineno;
            }
            "expect-alive" => {
                no_value("expect-alive")?;
                once(expect_alive != 0)?;
                expect_alive = lineno;
            }
            "expect" => {
                need_colon(has_colon)?;
                once(exact.is_some())?;
                exact = Some(unescape(text_value).map_err(|(_, m)| err(lineno, m))?);
                expect_lines = Some((idx, idx));
                saw_exact_line = lineno;
                open_payload = Some(PayloadTarget::Expect);
            }
            "expect-close" | "expect-open" => {
                no_value(&name)?;
                let want = if name == "expect-close" {
                    ConnExpect::Close
                } else {
                    ConnExpect::Open
                };
                if let Some((prev, prev_line)) = conn {
                    let msg = if prev == want {
                        format!("'{name}' given twice")
                    } else {
                        format!("'{name}' contradicts line {prev_line}")
                    };
                    return Err(err(lineno, msg));
                }
                conn = Some((want, lineno));
            }
            "timeout" => {
                need_colon(has_colon)?;
                once(timeout.is_some())?;
                timeout = Some(parse_duration(&plain_str()?).map_err(|e| err(lineno, e))?);
            }
            "quiet" => {
                need_colon(has_colon)?;
                once(quiet.is_some())?;
                quiet = Some(parse_duration(&plain_str()?).map_err(|e| err(lineno, e))?);
            }
            "compare" => {
                need_colon(has_colon)?;
                once(compare_decoded.is_some())?;
                let text = String::from_utf8_lossy(text_value).into_owned();
                let Some(reason) = text.strip_prefix("decoded") else {
                    return Err(err(
                        lineno,
                        "compare: takes 'decoded REASON' (bytes are compared by default)".into(),
                    ));
                };
                let reason = reason.trim();
                if reason.is_empty() {
                    return Err(err(lineno, "compare: decoded needs a reason".into()));
                }
                compare_decoded = Some(reason.to_owned());
            }
            "methods" => {
                need_colon(has_colon)?;
                once(methods.is_some())?;
                let list: Vec<String> =
                    plain_str()?.split_whitespace().map(str::to_owned).collect();
                if list.is_empty() {
                    return Err(err(lineno, "methods: lists no method".into()));
                }
                methods = Some(list);
            }
            "response" => {
                need_colon(has_colon)?;
                let s = plain_str()?;
                let n = s.parse::<usize>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                    err(
                        lineno,
                        format!("bad response number {s:?} (want 1, 2, ...)"),
                    )
                })?;
                current_response = n;
                saw_assertion_line = lineno;
            }
            "expect-responses" => {
                need_colon(has_colon)?;
                once(expect_responses.is_some())?;
                let s = plain_str()?;
                let n = s
                    .parse::<usize>()
                    .map_err(|_| err(lineno, format!("bad response count {s:?}")))?;
                expect_responses = Some(n);
                saw_assertion_line = lineno;
            }
            "expect-flushed-lines" => {
                if has_colon {
                    return Err(err(lineno, "expect-flushed-lines takes no value".into()));
                }
                assertions.push(Assertion {
                    response: current_response,
                    check: Check::FlushedLines,
                    line: lineno,
                });
                saw_assertion_line = lineno;
            }
            "expect-status"
            | "expect-header"
            | "expect-no-header"
            | "expect-body"
            | "expect-body-length"
            | "expect-decoded-body"
            | "expect-decoded-body-length" => {
                need_colon(has_colon)?;
                let check = match name.as_str() {
                    "expect-status" => Check::Status(
                        StatusPattern::parse(&plain_str()?).map_err(|e| err(lineno, e))?,
                    ),
                    "expect-header" => {
                        parse_header_check(text_value).map_err(|e| err(lineno, e))?
                    }
                    "expect-no-header" => {
                        let n = header_name(text_value).map_err(|e| err(lineno, e))?;
                        Check::NoHeader(n)
                    }
                    "expect-body" => {
                        open_payload = Some(PayloadTarget::Body);
                        Check::Body(unescape(text_value).map_err(|(_, m)| err(lineno, m))?)
                    }
                    "expect-decoded-body" => {
                        open_payload = Some(PayloadTarget::Body);
                        Check::DecodedBody(unescape(text_value).map_err(|(_, m)| err(lineno, m))?)
                    }
                    "expect-decoded-body-length" => {
                        let s = plain_str()?;
                        Check::DecodedBodyLength(
                            s.parse::<usize>()
                                .map_err(|_| err(lineno, format!("bad body length {s:?}")))?,
                        )
                    }
                    _ => {
                        let s = plain_str()?;
                        Check::BodyLength(
                            s.parse::<usize>()
                                .map_err(|_| err(lineno, format!("bad body length {s:?}")))?,
                        )
                    }
                };
                assertions.push(Assertion {
                    response: current_response,
                    check,
                    line: lineno,
                });
                saw_assertion_line = lineno;
            }
            _ => {
                return Err(err(
                    lineno,
                    format!("unknown directive {name:?} (see conformance/README.md)"),
                ))
            }
        }
    }

    if saw_exact_line != 0 && saw_assertion_line != 0 {
        return Err(err(
            saw_assertion_line.max(saw_exact_line),
            format!(
                "a case is either exact (expect: on line {saw_exact_line}) or assertion-based \
                 (line {saw_assertion_line}), not both"
            ),
        ));
    }
    let expect = if let Some(bytes) = exact {
        Expectation::Exact(bytes)
    } else if saw_assertion_line != 0 {
        let highest = assertions.iter().map(|a| a.response).max().unwrap_or(0);
        let count = match expect_responses {
            Some(n) => {
                if n < highest {
                    let line = assertions
                        .iter()
                        .find(|a| a.response > n)
                        .map_or(0, |a| a.line);
                    return Err(err(
                        line,
                        format!("assertion on response {highest} but expect-responses: {n}"),
                    ));
                }
                n
            }
            None => highest,
        };
        Expectation::Assert { count, assertions }
    } else {
        Expectation::None
    };
    if expect_alive != 0 {
        let other = [
            saw_exact_line,
            saw_assertion_line,
            conn.map_or(0, |(_, l)| l),
        ]
        .into_iter()
        .find(|l| *l != 0);
        if let Some(other) = other {
            return Err(err(
                expect_alive.max(other),
                format!(
                    "expect-alive (line {expect_alive}) is the only expectation of a case: it \
                     cannot be combined with the expectation on line {other}"
                ),
            ));
        }
    }
    if reset_line != 0 {
        if let Some((c, line)) = conn {
            let what = if c == ConnExpect::Close {
                "expect-close"
            } else {
                "expect-open"
            };
            return Err(err(
                line,
                format!(
                    "{what} cannot be checked after the reset step on line {reset_line}: the \
                     client has closed the connection"
                ),
            ));
        }
    }
    let conn = conn.map_or(ConnExpect::Any, |(c, _)| c);
    if expect == Expectation::None && conn == ConnExpect::Any && expect_alive == 0 && skip.is_none()
    {
        return Err(err(
            0,
            "case expects nothing: add expect:, expect-status: (or another expect-* assertion), \
             expect-close, expect-open or expect-alive"
                .into(),
        ));
    }

    Ok(Case {
        name: name.to_owned(),
        path: path.to_path_buf(),
        desc,
        skip,
        modes: modes.unwrap_or_else(|| DEFAULT_MODES.to_vec()),
        steps,
        expect,
        conn,
        timeout,
        quiet,
        methods,
        expect_lines,
        compare_decoded,
        expect_alive: expect_alive != 0,
    })
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

fn header_name(b: &[u8]) -> Result<String, String> {
    if b.is_empty() || !b.iter().all(|c| is_tchar(*c)) {
        return Err(format!("bad header name {:?}", String::from_utf8_lossy(b)));
    }
    Ok(String::from_utf8_lossy(b).into_owned())
}

fn parse_header_check(v: &[u8]) -> Result<Check, String> {
    match v.iter().position(|c| *c == b':') {
        None => Ok(Check::Header {
            name: header_name(trim_blank(v))?,
            value: None,
        }),
        Some(colon) => {
            let name = header_name(trim_blank(&v[..colon]))?;
            let value = unescape(trim_blank(&v[colon + 1..])).map_err(|(_, m)| m)?;
            Ok(Check::Header {
                name,
                value: Some(value),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Case, ParseError> {
        parse_case("t/x", Path::new("t/x.case"), text.as_bytes())
    }

    fn err_line(text: &str) -> (usize, String) {
        let e = parse(text).unwrap_err();
        (e.line, e.msg)
    }

    #[test]
    fn full_exact_case() {
        let c = parse(
            "# comment\n\
             desc: pipelined GET pair\n\
             modes: whole bytes split:7   # trailing comment\n\
             send: GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n\n\
             send: GET /b HTTP/1.1\\r\\n\n\
             +  Host: a\\r\\n\\r\\n\n\
             wait: 50ms\n\
             shutdown\n\
             expect: HTTP/1.1 200 OK\\r\\n\n\
             +Date: <date>\\r\\n\n\
             expect-close\n\
             timeout: 2s\n",
        )
        .unwrap();
        assert_eq!(c.desc.as_deref(), Some("pipelined GET pair"));
        assert_eq!(c.modes, vec![Mode::Whole, Mode::Bytes, Mode::Split(7)]);
        assert_eq!(
            c.steps,
            vec![
                Step::Send(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
                Step::Send(b"GET /b HTTP/1.1\r\nHost: a\r\n\r\n".to_vec()),
                Step::Wait(Duration::from_millis(50)),
                Step::Shutdown,
            ]
        );
        assert_eq!(
            c.expect,
            Expectation::Exact(b"HTTP/1.1 200 OK\r\nDate: <date>\r\n".to_vec())
        );
        assert_eq!(c.expect_lines, Some((8, 9)));
        assert_eq!(c.conn, ConnExpect::Close);
        assert_eq!(c.timeout, Some(Duration::from_secs(2)));
        assert_eq!(c.request_methods(), vec!["GET", "GET"]);
    }

    #[test]
    fn default_modes_and_crlf_file() {
        let c = parse("send: A\r\nexpect: B\\r\\n\r\n").unwrap();
        assert_eq!(c.modes, DEFAULT_MODES.to_vec());
        assert_eq!(c.steps, vec![Step::Send(b"A".to_vec())]);
        assert_eq!(c.expect, Expectation::Exact(b"B\r\n".to_vec()));
    }

    #[test]
    fn payload_blanks_and_hash_rules() {
        let c = parse("send:   GET /a#b HTTP/1.1 \t\n+ \\x20x \\x20\nexpect:\n").unwrap();
        assert_eq!(c.steps, vec![Step::Send(b"GET /a#b HTTP/1.1 x  ".to_vec())]);
        // An empty expect: means "no bytes at all".
        assert_eq!(c.expect, Expectation::Exact(Vec::new()));
    }

    #[test]
    fn decoded_body_directives() {
        let c = parse(
            "send: GET / HTTP/1.1\\r\\n\\r\\n\n\
             expect-decoded-body: 1 sheep\\n\n\
             + 2 sheep\\n\n\
             expect-decoded-body-length: 16\n\
             expect-flushed-lines\n",
        )
        .unwrap();
        let Expectation::Assert { assertions, .. } = &c.expect else {
            panic!()
        };
        assert_eq!(
            assertions[0].check,
            Check::DecodedBody(b"1 sheep\n2 sheep\n".to_vec())
        );
        assert_eq!(assertions[1].check, Check::DecodedBodyLength(16));
        assert_eq!(assertions[2].check, Check::FlushedLines);
        assert!(parse("send: x\nexpect-flushed-lines: yes\n").is_err());
        assert!(parse("send: x\nexpect-decoded-body-length: many\n").is_err());
    }

    #[test]
    fn assertion_blocks() {
        let c = parse(
            "send: GET / HTTP/1.1\\r\\n\\r\\nHEAD / HTTP/1.1\\r\\n\\r\\n\n\
             expect-status: 200\n\
             expect-header: Content-Type: text/plain; charset=utf-8\n\
             expect-body: hello\n\
             + world\\n\n\
             response: 2\n\
             expect-status: 2xx\n\
             expect-header: content-length\n\
             expect-no-header: transfer-encoding\n\
             expect-body-length: 0\n\
             expect-open\n",
        )
        .unwrap();
        let Expectation::Assert { count, assertions } = &c.expect else {
            panic!()
        };
        assert_eq!(*count, 2);
        assert_eq!(assertions.len(), 7);
        assert_eq!(assertions[0].check, Check::Status(StatusPattern(*b"200")));
        assert_eq!(
            assertions[1].check,
            Check::Header {
                name: "Content-Type".into(),
                value: Some(b"text/plain; charset=utf-8".to_vec())
            }
        );
        assert_eq!(assertions[2].check, Check::Body(b"helloworld\n".to_vec()));
        assert_eq!(assertions[2].response, 1);
        assert_eq!(assertions[3].response, 2);
        assert_eq!(assertions[3].line, 7);
        assert_eq!(
            assertions[4].check,
            Check::Header {
                name: "content-length".into(),
                value: None
            }
        );
        assert_eq!(
            assertions[5].check,
            Check::NoHeader("transfer-encoding".into())
        );
        assert_eq!(assertions[6].check, Check::BodyLength(0));
        assert_eq!(c.conn, ConnExpect::Open);
        assert_eq!(c.request_methods(), vec!["GET", "HEAD"]);
    }

    #[test]
    fn expect_responses_overrides_count() {
        let c = parse("send: x\nexpect-responses: 3\nexpect-status: 100\n").unwrap();
        assert!(matches!(c.expect, Expectation::Assert { count: 3, .. }));
        let (line, msg) =
            err_line("send: x\nexpect-responses: 1\nresponse: 2\nexpect-status: 200\n");
        assert_eq!(line, 4);
        assert!(msg.contains("expect-responses"), "{msg}");
    }

    #[test]
    fn errors_carry_line_numbers() {
        assert_eq!(err_line("send: a\n\n+b\nexpect-close\n").0, 3);
        assert_eq!(err_line("# c\n+b\n").0, 2);
        assert_eq!(err_line("send: a\nbogus: 1\n").0, 2);
        assert_eq!(err_line("send: a\\q\nexpect-close\n").0, 1);
        assert_eq!(err_line("send: a\n+ \\x1\nexpect-close\n").0, 2);
        assert_eq!(err_line("modes: whole split:x\n").0, 1);
        assert_eq!(err_line("modes: whole whole\n").0, 1);
        assert_eq!(err_line("send: a\nwait: 5 parsecs\n").0, 2);
        assert_eq!(err_line("send: a\nexpect-close\nexpect-open\n").0, 3);
        assert_eq!(err_line("send: a\nexpect: x\nexpect-status: 200\n").0, 3);
        assert_eq!(err_line("send: a\nexpect-status: 2000\n").0, 2);
        assert_eq!(err_line("send: a\nresponse: 0\n").0, 2);
        assert_eq!(err_line("send: a\nexpect-header: bad name: x\n").0, 2);
        assert_eq!(err_line("send: a\nexpect-close: yes\n").0, 2);
        assert_eq!(err_line("send\n").0, 1);
        assert_eq!(err_line("desc: a\ndesc: b\n").0, 2);
        let (line, msg) = err_line("send: a\n");
        assert_eq!(line, 0);
        assert!(msg.contains("expects nothing"));
        let e = parse("send: a\nbogus\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "t/x.case:2: unknown directive \"bogus\" (see conformance/README.md)"
        );
    }

    #[test]
    fn flag_directives_allow_trailing_comments() {
        let c = parse("send: a\nshutdown   # half-close\nexpect-close # must close\n").unwrap();
        assert_eq!(c.steps, vec![Step::Send(b"a".to_vec()), Step::Shutdown]);
        assert_eq!(c.conn, ConnExpect::Close);
    }

    #[test]
    fn reset_and_expect_alive() {
        let c =
            parse("send: GET / HTTP/1.1\\r\\n\nwait: 5ms\nreset  # abort\nexpect-alive\n").unwrap();
        assert_eq!(c.steps.last(), Some(&Step::Reset));
        assert!(c.has_reset() && c.expect_alive);
        assert_eq!(c.expect, Expectation::None);
        assert_eq!(c.conn, ConnExpect::Any);
        // A reset case may still assert on what arrived before the reset.
        let c = parse("send: x\nreset\nexpect-status: 200\n").unwrap();
        assert!(c.has_reset() && !c.expect_alive);
        // expect-alive alone (no reset) is fine too.
        assert!(
            parse("send: x\nshutdown\nexpect-alive\n")
                .unwrap()
                .expect_alive
        );

        let (line, msg) = err_line("send: a\nreset\nsend: b\nexpect-alive\n");
        assert_eq!(line, 3);
        assert!(msg.contains("last step"), "{msg}");
        assert_eq!(err_line("reset\nreset\nexpect-alive\n").0, 2);
        assert_eq!(err_line("reset\nwait: 1ms\nexpect-alive\n").0, 2);
        assert_eq!(err_line("reset: now\nexpect-alive\n").0, 1);
        let (line, msg) = err_line("send: a\nreset\nexpect-close\n");
        assert_eq!(line, 3);
        assert!(msg.contains("after the reset"), "{msg}");
        assert_eq!(err_line("send: a\nreset\nexpect-open\n").0, 3);
        assert_eq!(err_line("send: a\nexpect-alive\nexpect-alive\n").0, 3);
        let (line, msg) = err_line("send: a\nexpect-alive\nexpect-status: 200\n");
        assert_eq!(line, 3);
        assert!(msg.contains("only expectation"), "{msg}");
        assert_eq!(err_line("send: a\nexpect: x\nexpect-alive\n").0, 3);
        assert_eq!(err_line("send: a\nexpect-close\nexpect-alive\n").0, 3);
        assert!(err_line("send: a\nreset\n").1.contains("expects nothing"));
    }

    #[test]
    fn status_patterns() {
        let p = StatusPattern::parse("4xX").unwrap();
        assert!(p.matches(400) && p.matches(431) && !p.matches(500));
        assert!(StatusPattern::parse("200").unwrap().matches(200));
        assert!(StatusPattern::parse("x00").is_err());
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("50ms").unwrap(), Duration::from_millis(50));
        assert_eq!(parse_duration("3s").unwrap(), Duration::from_secs(3));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert!(parse_duration("3").is_err());
        assert!(parse_duration("-1s").is_err());
    }

    #[test]
    fn method_inference() {
        let sent = b"POST /x HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloHEAD / HTTP/1.1\r\n\r\n\
                     GET /y HTTP/1.0\r\n\r\nnot a request line\r\nget / HTTP/1.1\r\n";
        // "helloHEAD" is not at a line start, so it is not inferred.
        assert_eq!(infer_methods(sent), vec!["POST", "GET"]);
        let c = parse("methods: POST HEAD\nsend: x\nexpect-close\n").unwrap();
        assert_eq!(c.request_methods(), vec!["POST", "HEAD"]);
    }
}
