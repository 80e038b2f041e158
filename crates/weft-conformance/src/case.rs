//! The `.case` transcript format: parser and data model.
//!
//! The full format is documented in `conformance/README.md`; this module is
//! its reference implementation. In short: one directive per line, `#`
//! comment lines, payload directives (`send:`, `expect:`, `expect-body:`)
//! with escapes and `+` continuation lines.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

mod directive;
mod parse;

pub use parse::parse_case;

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
    /// `expect-persist`: the server must keep the connection open unless
    /// its last response carried the `close` connection option.
    Persist,
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
    /// `expect-status:` with several patterns or `!` negations: the status
    /// matches one of `any` (when not empty) and none of `none`.
    StatusSet {
        any: Vec<StatusPattern>,
        none: Vec<StatusPattern>,
    },
    /// `expect-header-token: Name token`: one of the field's comma-separated
    /// elements equals `token` (case-insensitive).
    HeaderToken {
        name: String,
        token: String,
    },
    /// `expect-header-if: STATUS Name`: when the status matches, the field is present.
    HeaderIfStatus {
        status: StatusPattern,
        name: String,
    },
    /// `expect-same-header: Name N`: the field has the same values as in response N.
    SameHeader {
        name: String,
        other: usize,
    },
    /// `expect-body-file: SPAN`: the body is this span of the profile's
    /// fixture file; replaced by [`Check::Body`] when the file is known.
    FileBody(FileSpan),
    /// `expect-decoded-body-file: SPAN`: the body without its content
    /// coding is this span of the fixture file (see [`Check::FileBody`]).
    FileDecodedBody(FileSpan),
}

/// A span of the fixture file named by `--file-bytes`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileSpan {
    /// The whole file (`all`).
    All,
    /// Bytes `from..=to` (`A-B`; `to` clamped to the file).
    Range(usize, usize),
    /// Bytes from `from` to the end (`A-`).
    From(usize),
    /// The last N bytes (`-N`).
    Suffix(usize),
}

impl FileSpan {
    pub fn parse(s: &str) -> Result<FileSpan, String> {
        let bad = || format!("bad file span {s:?} (want all, A-B, A- or -N)");
        if s == "all" {
            return Ok(FileSpan::All);
        }
        let (a, b) = s.split_once('-').ok_or_else(bad)?;
        let num = |x: &str| x.parse::<usize>().map_err(|_| bad());
        match (a.is_empty(), b.is_empty()) {
            (true, false) => Ok(FileSpan::Suffix(num(b)?)),
            (false, true) => Ok(FileSpan::From(num(a)?)),
            (false, false) if num(a)? <= num(b)? => Ok(FileSpan::Range(num(a)?, num(b)?)),
            _ => Err(bad()),
        }
    }

    /// The bytes of this span of `file`.
    pub fn slice<'a>(&self, file: &'a [u8]) -> &'a [u8] {
        let len = file.len();
        match *self {
            FileSpan::All => file,
            FileSpan::Range(a, b) => &file[a.min(len)..(b.saturating_add(1)).min(len)],
            FileSpan::From(a) => &file[a.min(len)..],
            FileSpan::Suffix(n) => &file[len - n.min(len)..],
        }
    }
}

/// A requirement level of RFC 2119 as used by the RFCs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Level {
    Must,
    Should,
    May,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Must => "MUST",
            Level::Should => "SHOULD",
            Level::May => "MAY",
        })
    }
}

/// `rfc: SPEC SECTION LEVEL`: the requirement a portable case checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Requirement {
    /// The RFC number: 9110, 9112, 6455 or 7692.
    pub spec: u16,
    /// The section, e.g. `6.1` or `5.5`.
    pub section: String,
    pub level: Level,
}

impl Requirement {
    pub fn parse(s: &str) -> Result<Requirement, String> {
        let bad = || {
            format!(
                "bad requirement {s:?} (want 'SPEC SECTION LEVEL', e.g. '9112 6.1 MUST'; SPEC \
                 is 9110, 9112, 6455 or 7692, LEVEL MUST, SHOULD or MAY)"
            )
        };
        let words: Vec<&str> = s.split_whitespace().collect();
        let [spec, section, level] = words[..] else {
            return Err(bad());
        };
        let spec: u16 = spec.parse().map_err(|_| bad())?;
        if ![9110, 9112, 6455, 7692].contains(&spec)
            || !section.split('.').enumerate().all(|(i, p)| {
                // An appendix starts with a letter: `C.2.2`.
                (i == 0 && p.len() == 1 && p.as_bytes()[0].is_ascii_uppercase())
                    || (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
            })
        {
            return Err(bad());
        }
        let level = match level {
            "MUST" => Level::Must,
            "SHOULD" => Level::Should,
            "MAY" => Level::May,
            _ => return Err(bad()),
        };
        Ok(Requirement {
            spec,
            section: section.to_owned(),
            level,
        })
    }
}

impl fmt::Display for Requirement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RFC {} \u{a7}{}", self.spec, self.section)
    }
}

/// One expected WebSocket frame (after a `101` response), `expect-ws:`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WsExpect {
    /// A whole text or binary message (fragments reassembled) with this payload.
    Message { text: bool, payload: Vec<u8> },
    /// A pong with this payload.
    Pong(Vec<u8>),
    /// A close frame; with codes, its status code is one of them.
    Close(Vec<u16>),
}

/// An assertion bound to a response number (1-based, interim 1xx responses
/// count) and to the case-file line it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assertion {
    pub response: usize,
    pub check: Check,
    pub line: usize,
    /// `when:` the check applies only to a response meeting this condition.
    pub when: Option<When>,
}

/// The condition of a `when:` line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum When {
    /// `when: status 206`: the status matches.
    Status(StatusPattern),
    /// `when: header Name`: the field is present.
    Header(String),
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
    /// `rfc:`: the requirement a portable (profile) case checks.
    pub rfc: Option<Requirement>,
    /// `reason:`: why the requirement says so, in one line.
    pub reason: Option<String>,
    /// `needs:`: what the server must offer for the case to run (`file`, `ws`).
    pub needs: Vec<String>,
    /// `accept-close: N`: the server may close the connection instead of
    /// sending responses N and later.
    pub accept_close: Option<usize>,
    /// `expect-ws:` lines: the frames that must follow the `101` response, in order.
    pub ws_expect: Vec<(WsExpect, usize)>,
    /// `expect-responses: N+`: at least N responses (more are fine).
    pub at_least_responses: bool,
    /// `expect-responses: <=N`: at most N responses (fewer are fine, and the
    /// connection may stay open: a server may wait for a huge body).
    pub at_most_responses: bool,
}

impl Case {
    /// The case's group: its directory below the cases directory (`request-line`, ...), which
    /// the RFC profile calls its category.
    pub fn group(&self) -> &str {
        self.name.split('/').next().unwrap_or("")
    }

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

#[cfg(test)]
mod tests {
    use std::path::Path;

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

    /// Malformed case text: the rendered error names the file, the line and
    /// the directive.
    #[test]
    fn malformed_case_errors_name_file_line_and_directive() {
        let msg = |text: &str| parse(text).unwrap_err().to_string();
        assert_eq!(
            msg("send: a\nexpect-close\nexpect-stauts: 200\n"),
            "t/x.case:3: unknown directive \"expect-stauts\" (see conformance/README.md)"
        );
        assert_eq!(
            msg("send: a\nwait: 5 parsecs\nexpect-close\n"),
            "t/x.case:2: wait: bad duration \"5 parsecs\" (write e.g. 50ms, 3s, 1.5s)"
        );
        assert_eq!(
            msg("send: a\nexpect-close\ntimeout: -1s\n"),
            "t/x.case:3: timeout: bad duration \"-1s\" (write e.g. 50ms, 3s, 1.5s)"
        );
        // `expect` without its payload.
        assert_eq!(
            msg("send: a\nexpect\n"),
            "t/x.case:2: 'expect' needs a value: write 'expect: ...'"
        );
        // No expectation at all: the whole file is at fault, so no line.
        assert_eq!(
            msg("send: a\n# nothing expected\n"),
            "t/x.case: case expects nothing: add expect:, expect-status: (or another expect-* \
             assertion), expect-close, expect-open or expect-alive"
        );
        assert!(msg("send: a\\q\nexpect-close\n").starts_with("t/x.case:1: send: "));
        assert!(msg("send: a\n+ \\q\nexpect-close\n").starts_with("t/x.case:2: '+' line: "));
        assert!(msg("send: a\nexpect-status: 2000\n")
            .starts_with("t/x.case:2: expect-status: bad status"));
        assert!(msg("send: a\nexpect-body-length: many\n")
            .starts_with("t/x.case:2: expect-body-length: bad body length"));
        assert!(msg("modes: whole whole\nsend: a\nexpect-close\n")
            .starts_with("t/x.case:1: modes: mode whole listed twice"));
        assert!(
            msg("send: a\nresponse: 0\n").starts_with("t/x.case:2: response: bad response number")
        );
        assert!(msg("send: a\nexpect-no-header: a b\n")
            .starts_with("t/x.case:2: expect-no-header: bad header name"));
        assert_eq!(
            msg("send: a\nexpect-close\ndesc: a\ndesc: b\n"),
            "t/x.case:4: 'desc' given twice"
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
    fn profile_directives() {
        let c = parse(
            "rfc: 9112 6.1 MUST\n\
             reason: TE with CL: close after\n\
             needs: file ws\n\
             send: GET / HTTP/1.1\\r\\n\\r\\n\n\
             send-fill: 3 ab\n\
             send-ws: text+nofin hi\n\
             expect-status: 400 !5xx 2xx\n\
             expect-header-token: Connection close\n\
             expect-header-if: 405 Allow\n\
             when: status 206\n\
             expect-body-file: 0-4\n\
             expect-decoded-body-file: -10\n\
             response: 2\n\
             expect-same-header: ETag 1\n\
             expect-ws: close 1000 1002\n\
             expect-responses: 2+\n\
             accept-close: 2\n\
             expect-persist\n",
        )
        .unwrap();
        let q = c.rfc.as_ref().unwrap();
        assert_eq!(
            (q.spec, q.section.as_str(), q.level),
            (9112, "6.1", Level::Must)
        );
        assert_eq!(q.to_string(), "RFC 9112 \u{a7}6.1");
        assert_eq!(c.reason.as_deref(), Some("TE with CL: close after"));
        assert_eq!(c.needs, vec!["file", "ws"]);
        assert_eq!(c.steps[1], Step::Send(b"ababab".to_vec()));
        assert_eq!(
            c.steps[2],
            Step::Send(crate::ws::frame_from_spec(b"text+nofin hi").unwrap())
        );
        let Expectation::Assert { count, assertions } = &c.expect else {
            panic!()
        };
        assert_eq!(*count, 2);
        assert!(c.at_least_responses && !c.at_most_responses);
        assert_eq!(
            assertions[0].check,
            Check::StatusSet {
                any: vec![StatusPattern(*b"400"), StatusPattern(*b"2xx")],
                none: vec![StatusPattern(*b"5xx")],
            }
        );
        assert_eq!(
            assertions[3].when,
            Some(When::Status(StatusPattern(*b"206")))
        );
        assert_eq!(assertions[3].check, Check::FileBody(FileSpan::Range(0, 4)));
        assert_eq!(
            assertions[4].check,
            Check::FileDecodedBody(FileSpan::Suffix(10))
        );
        // `response:` ends the `when:` block.
        assert_eq!(assertions[5].when, None);
        assert_eq!(assertions[5].response, 2);
        assert_eq!(c.ws_expect[0].0, WsExpect::Close(vec![1000, 1002]));
        assert_eq!(c.accept_close, Some(2));
        assert_eq!(c.conn, ConnExpect::Persist);
        assert!(parse("send: x\nrfc: 9112 6.1 MAYBE\nexpect-close\n").is_err());
        assert!(parse("send: x\nrfc: 2616 6.1 MUST\nexpect-close\n").is_err());
        assert!(parse("send: x\nneeds: coffee\nexpect-close\n").is_err());
        assert!(parse("send: x\nwhen: sometimes\nexpect-close\n").is_err());
        assert!(parse("send-ws: text+sideways x\nexpect-close\n").is_err());
        assert!(parse("send-fill: 0 a\nexpect-close\n").is_err());
        assert_eq!(
            parse("send: x\nrfc: 9112 C.2.2 MAY\nexpect-close\n")
                .unwrap()
                .rfc
                .unwrap()
                .section,
            "C.2.2"
        );
        let c = parse("send: x\nexpect-responses: <=1\n").unwrap();
        assert!(c.at_most_responses);
    }

    #[test]
    fn file_spans() {
        let f: Vec<u8> = (0..10u8).collect();
        assert_eq!(FileSpan::parse("all").unwrap().slice(&f), &f[..]);
        assert_eq!(FileSpan::parse("2-4").unwrap().slice(&f), &[2, 3, 4]);
        assert_eq!(FileSpan::parse("8-99").unwrap().slice(&f), &[8, 9]);
        assert_eq!(FileSpan::parse("7-").unwrap().slice(&f), &[7, 8, 9]);
        assert_eq!(FileSpan::parse("-2").unwrap().slice(&f), &[8, 9]);
        assert_eq!(FileSpan::parse("-20").unwrap().slice(&f), &f[..]);
        assert!(FileSpan::parse("4-2").is_err());
        assert!(FileSpan::parse("x").is_err());
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
