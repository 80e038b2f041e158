//! The case-file parser: a [`CaseBuilder`] fed one line at a time.
//!
//! # Adding a directive
//!
//! 1. Write a method `fn my_directive(&mut self, d: &Directive<'_>) ->
//!    Result<(), ParseError>` on [`CaseBuilder`], next to its family. Use the
//!    shared checks and value parsers on [`Directive`]: `need_value` (written
//!    `name: ...`), `no_value` (a flag), `once` (at most once per case),
//!    `plain_str`, `payload`, `duration`, `number`, `words`. Store what it
//!    says in a (new) field of the builder.
//! 2. Add a row to [`DIRECTIVES`]: its name, its [`Kind`] and the method.
//! 3. If it changes the parsed [`Case`], carry the field over in
//!    [`CaseBuilder::finish`]; cross-directive checks go there too.
//! 4. Document it in `conformance/README.md` and add a unit test in
//!    `case.rs`; if a case file uses it, regenerate
//!    `tests/case_snapshot.txt` (see `tests/case_snapshot.rs`).

use std::path::Path;
use std::time::Duration;

use super::directive::{
    header_name, lines, parse_header_check, trim_blank_start, unescape_continuation, Directive,
    Line, Loc,
};
use super::{
    Assertion, Case, Check, ConnExpect, Expectation, FileSpan, Mode, ParseError, Requirement,
    StatusPattern, Step, When, WsExpect, DEFAULT_MODES,
};
use crate::ws;

/// Parses the text of a case file. `name` and `path` are only recorded (and
/// `path` names the file in errors).
pub fn parse_case(name: &str, path: &Path, text: &[u8]) -> Result<Case, ParseError> {
    let mut b = CaseBuilder::new();
    for (idx, raw) in lines(text).into_iter().enumerate() {
        match Line::classify(path, idx, raw) {
            Line::Blank => b.open_payload = None,
            Line::Continuation { loc, idx, bytes } => b.continue_payload(loc, idx, bytes)?,
            Line::Directive(d) => {
                b.open_payload = None;
                b.directive(&d)?;
            }
        }
    }
    b.finish(name, path)
}

/// What a directive is about; only [`Kind::Step`] changes how it is parsed
/// (no step may follow a `reset`).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A client step, run in file order.
    Step,
    /// A setting of the case as a whole.
    Setting,
    /// What the server must answer or do.
    Expectation,
}

type Handler = fn(&mut CaseBuilder, &Directive<'_>) -> Result<(), ParseError>;

/// Every directive: name, kind, and the [`CaseBuilder`] method that parses it.
const DIRECTIVES: &[(&str, Kind, Handler)] = &[
    ("desc", Kind::Setting, CaseBuilder::desc),
    ("skip", Kind::Setting, CaseBuilder::skip),
    ("modes", Kind::Setting, CaseBuilder::modes),
    ("timeout", Kind::Setting, CaseBuilder::timeout),
    ("quiet", Kind::Setting, CaseBuilder::quiet),
    ("compare", Kind::Setting, CaseBuilder::compare),
    ("methods", Kind::Setting, CaseBuilder::methods),
    ("rfc", Kind::Setting, CaseBuilder::rfc),
    ("reason", Kind::Setting, CaseBuilder::reason),
    ("needs", Kind::Setting, CaseBuilder::needs),
    ("send-ws", Kind::Step, CaseBuilder::send_ws),
    ("send-fill", Kind::Step, CaseBuilder::send_fill),
    ("accept-close", Kind::Expectation, CaseBuilder::accept_close),
    (
        "expect-persist",
        Kind::Expectation,
        CaseBuilder::expect_persist,
    ),
    (
        "expect-header-token",
        Kind::Expectation,
        CaseBuilder::expect_header_token,
    ),
    (
        "expect-header-if",
        Kind::Expectation,
        CaseBuilder::expect_header_if,
    ),
    (
        "expect-same-header",
        Kind::Expectation,
        CaseBuilder::expect_same_header,
    ),
    (
        "expect-body-file",
        Kind::Expectation,
        CaseBuilder::expect_body_file,
    ),
    ("expect-ws", Kind::Expectation, CaseBuilder::expect_ws),
    ("when", Kind::Expectation, CaseBuilder::when),
    (
        "expect-decoded-body-file",
        Kind::Expectation,
        CaseBuilder::expect_decoded_body_file,
    ),
    ("send", Kind::Step, CaseBuilder::send),
    ("wait", Kind::Step, CaseBuilder::wait),
    ("shutdown", Kind::Step, CaseBuilder::shutdown),
    ("reset", Kind::Step, CaseBuilder::reset),
    ("expect", Kind::Expectation, CaseBuilder::expect),
    ("expect-close", Kind::Expectation, CaseBuilder::expect_close),
    ("expect-open", Kind::Expectation, CaseBuilder::expect_open),
    ("expect-alive", Kind::Expectation, CaseBuilder::expect_alive),
    ("response", Kind::Expectation, CaseBuilder::response),
    (
        "expect-responses",
        Kind::Expectation,
        CaseBuilder::expect_responses,
    ),
    (
        "expect-status",
        Kind::Expectation,
        CaseBuilder::expect_status,
    ),
    (
        "expect-header",
        Kind::Expectation,
        CaseBuilder::expect_header,
    ),
    (
        "expect-no-header",
        Kind::Expectation,
        CaseBuilder::expect_no_header,
    ),
    ("expect-body", Kind::Expectation, CaseBuilder::expect_body),
    (
        "expect-body-length",
        Kind::Expectation,
        CaseBuilder::expect_body_length,
    ),
    (
        "expect-decoded-body",
        Kind::Expectation,
        CaseBuilder::expect_decoded_body,
    ),
    (
        "expect-decoded-body-length",
        Kind::Expectation,
        CaseBuilder::expect_decoded_body_length,
    ),
    (
        "expect-flushed-lines",
        Kind::Expectation,
        CaseBuilder::expect_flushed_lines,
    ),
];

/// The payload a `+` line would extend.
#[derive(Clone, Copy, PartialEq, Eq)]
enum PayloadTarget {
    /// The last `send:` step.
    Send,
    /// The `expect:` bytes.
    Expect,
    /// The last `expect-body:` / `expect-decoded-body:` assertion.
    Body,
}

/// The state of a case while its lines are read. Line numbers are 1-based;
/// 0 means "not seen".
#[derive(Default)]
struct CaseBuilder {
    // Settings.
    desc: Option<String>,
    skip: Option<String>,
    modes: Option<Vec<Mode>>,
    timeout: Option<Duration>,
    quiet: Option<Duration>,
    methods: Option<Vec<String>>,
    compare_decoded: Option<String>,
    rfc: Option<Requirement>,
    reason: Option<String>,
    needs: Option<Vec<String>>,

    // Client steps.
    steps: Vec<Step>,
    /// Line of the `reset` step: no step may follow it.
    reset_line: usize,

    // Exact expectation (`expect:`).
    exact: Option<Vec<u8>>,
    /// 0-based line range of `expect:` and its continuation lines.
    expect_lines: Option<(usize, usize)>,
    saw_exact_line: usize,

    // Assertions.
    assertions: Vec<Assertion>,
    expect_responses: Option<usize>,
    /// The response the next assertion is about (`response: N`).
    current_response: usize,
    /// The `when:` condition of the next assertions.
    current_when: Option<When>,
    /// Last line of an assertion-mode directive (`response:` included).
    saw_assertion_line: usize,

    // Connection.
    conn: Option<(ConnExpect, usize)>,
    /// Line of `expect-alive`.
    expect_alive: usize,
    accept_close: Option<usize>,
    ws_expect: Vec<(WsExpect, usize)>,
    at_least_responses: bool,
    at_most_responses: bool,

    /// The payload a `+` line would extend, if the previous line allows it.
    open_payload: Option<PayloadTarget>,
}

impl CaseBuilder {
    fn new() -> CaseBuilder {
        CaseBuilder {
            current_response: 1,
            ..CaseBuilder::default()
        }
    }

    /// Dispatches a directive line to its handler in [`DIRECTIVES`].
    fn directive(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        let Some((_, kind, handler)) = DIRECTIVES.iter().find(|(n, _, _)| *n == d.name) else {
            return Err(d.err(format!(
                "unknown directive {:?} (see conformance/README.md)",
                d.name
            )));
        };
        if *kind == Kind::Step && self.reset_line != 0 {
            return Err(d.err(format!(
                "'{}' after the reset step on line {}: reset must be the last step (the \
                 connection is gone)",
                d.name, self.reset_line
            )));
        }
        handler(self, d)
    }

    /// A `+` line: extends the payload of the directive just above.
    fn continue_payload(
        &mut self,
        loc: Loc<'_>,
        idx: usize,
        bytes: &[u8],
    ) -> Result<(), ParseError> {
        let Some(target) = self.open_payload else {
            return Err(loc.err(
                "'+' continuation must directly follow a send:, expect: or expect-body: line or \
                 another '+' line",
            ));
        };
        let bytes = unescape_continuation(loc, bytes)?;
        match target {
            PayloadTarget::Send => match self.steps.last_mut() {
                Some(Step::Send(b)) => b.extend_from_slice(&bytes),
                _ => unreachable!("open send payload without a send step"),
            },
            PayloadTarget::Expect => {
                self.exact
                    .as_mut()
                    .expect("open expect payload")
                    .extend_from_slice(&bytes);
                if let Some((_, end)) = self.expect_lines.as_mut() {
                    *end = idx;
                }
            }
            PayloadTarget::Body => match self.assertions.last_mut() {
                Some(Assertion {
                    check: Check::Body(b) | Check::DecodedBody(b),
                    ..
                }) => b.extend_from_slice(&bytes),
                _ => unreachable!("open body payload without a body assertion"),
            },
        }
        Ok(())
    }

    // ---- Settings -------------------------------------------------------

    fn desc(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        d.once(self.desc.is_some())?;
        self.desc = Some(d.text_lossy());
        Ok(())
    }

    fn skip(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        d.once(self.skip.is_some())?;
        let reason = d.text_lossy();
        self.skip = Some(if reason.is_empty() {
            "skipped".into()
        } else {
            reason
        });
        Ok(())
    }

    fn modes(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        d.once(self.modes.is_some())?;
        let mut list = Vec::new();
        for word in d.words()? {
            let m = d.at(Mode::parse(&word))?;
            if list.contains(&m) {
                return Err(d.value_err(format!("mode {m} listed twice")));
            }
            list.push(m);
        }
        if list.is_empty() {
            return Err(d.err("modes: lists no mode"));
        }
        self.modes = Some(list);
        Ok(())
    }

    fn timeout(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        d.once(self.timeout.is_some())?;
        self.timeout = Some(d.duration()?);
        Ok(())
    }

    fn quiet(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        d.once(self.quiet.is_some())?;
        self.quiet = Some(d.duration()?);
        Ok(())
    }

    fn compare(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        d.once(self.compare_decoded.is_some())?;
        let text = d.text_lossy();
        let Some(reason) = text.strip_prefix("decoded") else {
            return Err(d.err("compare: takes 'decoded REASON' (bytes are compared by default)"));
        };
        let reason = reason.trim();
        if reason.is_empty() {
            return Err(d.err("compare: decoded needs a reason"));
        }
        self.compare_decoded = Some(reason.to_owned());
        Ok(())
    }

    fn methods(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        d.once(self.methods.is_some())?;
        let list = d.words()?;
        if list.is_empty() {
            return Err(d.err("methods: lists no method"));
        }
        self.methods = Some(list);
        Ok(())
    }

    /// `rfc: SPEC SECTION LEVEL`.
    fn rfc(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        d.once(self.rfc.is_some())?;
        self.rfc = Some(d.at(Requirement::parse(&d.plain_str()?))?);
        Ok(())
    }

    /// `reason: TEXT`: the whole rest of the line.
    fn reason(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        d.once(self.reason.is_some())?;
        self.reason = Some(d.text_lossy());
        Ok(())
    }

    /// `needs: file ws`.
    fn needs(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        d.once(self.needs.is_some())?;
        let list = d.words()?;
        if let Some(bad) = list.iter().find(|w| !matches!(w.as_str(), "file" | "ws")) {
            return Err(d.value_err(format!("unknown need {bad:?} (known: file, ws)")));
        }
        self.needs = Some(list);
        Ok(())
    }

    // ---- Client steps (none may follow `reset`, see `directive`) ---------

    /// `send-fill: N PAYLOAD`: PAYLOAD repeated N times, as one send step
    /// (long request lines and fields without a long case file).
    fn send_fill(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        let text = d.text();
        let sp = text.iter().position(|b| *b == b' ').unwrap_or(text.len());
        let n: usize = std::str::from_utf8(&text[..sp])
            .ok()
            .and_then(|n| n.parse().ok())
            .filter(|n| *n >= 1 && *n <= 1 << 24)
            .ok_or_else(|| d.value_err("want 'N PAYLOAD' with 1 <= N <= 16777216"))?;
        let unit =
            d.at(crate::escape::unescape(trim_blank_start(&text[sp..])).map_err(|(_, m)| m))?;
        if unit.is_empty() {
            return Err(d.value_err("empty payload"));
        }
        self.steps.push(Step::Send(unit.repeat(n)));
        Ok(())
    }

    /// `send-ws: OPCODE[+FLAG...] PAYLOAD`: one masked WebSocket frame.
    fn send_ws(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        let frame = d.at(ws::frame_from_spec(d.text()))?;
        self.steps.push(Step::Send(frame));
        Ok(())
    }

    fn send(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        self.steps.push(Step::Send(d.payload()?));
        self.open_payload = Some(PayloadTarget::Send);
        Ok(())
    }

    fn wait(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        self.steps.push(Step::Wait(d.duration()?));
        Ok(())
    }

    fn shutdown(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.no_value()?;
        self.steps.push(Step::Shutdown);
        Ok(())
    }

    fn reset(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.no_value()?;
        self.steps.push(Step::Reset);
        self.reset_line = d.line();
        Ok(())
    }

    // ---- Exact expectation and connection state --------------------------

    fn expect(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        d.once(self.exact.is_some())?;
        self.exact = Some(d.payload()?);
        self.expect_lines = Some((d.idx, d.idx));
        self.saw_exact_line = d.line();
        self.open_payload = Some(PayloadTarget::Expect);
        Ok(())
    }

    fn expect_close(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        self.conn_state(d, ConnExpect::Close)
    }

    fn expect_open(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        self.conn_state(d, ConnExpect::Open)
    }

    /// `expect-close` / `expect-open`: at most one of them, once.
    fn conn_state(&mut self, d: &Directive<'_>, want: ConnExpect) -> Result<(), ParseError> {
        d.no_value()?;
        if let Some((prev, prev_line)) = self.conn {
            return Err(d.err(if prev == want {
                format!("'{}' given twice", d.name)
            } else {
                format!("'{}' contradicts line {prev_line}", d.name)
            }));
        }
        self.conn = Some((want, d.line()));
        Ok(())
    }

    /// `expect-persist`: open, unless the last response said `Connection: close`.
    fn expect_persist(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        self.conn_state(d, ConnExpect::Persist)
    }

    /// `accept-close: N` (default 1): closing instead of responses N.. passes.
    fn accept_close(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.once(self.accept_close.is_some())?;
        let n = if d.has_colon() {
            d.number("response number")?
        } else {
            d.no_value()?;
            1
        };
        if n == 0 {
            return Err(d.value_err("bad response number 0 (want 1, 2, ...)"));
        }
        self.accept_close = Some(n);
        Ok(())
    }

    fn expect_alive(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.no_value()?;
        d.once(self.expect_alive != 0)?;
        self.expect_alive = d.line();
        Ok(())
    }

    // ---- Assertions --------------------------------------------------------

    fn response(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        let s = d.plain_str()?;
        let n = s.parse::<usize>().ok().filter(|n| *n >= 1);
        let n =
            n.ok_or_else(|| d.value_err(format!("bad response number {s:?} (want 1, 2, ...)")))?;
        self.current_response = n;
        self.current_when = None;
        self.saw_assertion_line = d.line();
        Ok(())
    }

    fn expect_responses(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        d.once(self.expect_responses.is_some())?;
        // `N+`: at least N; `<=N`: at most N.
        let plain = d.plain_str()?;
        if let Some(n) = plain.strip_prefix("<=") {
            let n = n
                .parse::<usize>()
                .map_err(|_| d.value_err(format!("bad response count {plain:?}")))?;
            self.expect_responses = Some(n);
            self.at_most_responses = true;
            self.saw_assertion_line = d.line();
            return Ok(());
        }
        if let Some(n) = plain.strip_suffix('+') {
            let n = n
                .parse::<usize>()
                .map_err(|_| d.value_err(format!("bad response count {plain:?}")))?;
            self.expect_responses = Some(n);
            self.at_least_responses = true;
            self.saw_assertion_line = d.line();
            return Ok(());
        }
        self.expect_responses = Some(d.number("response count")?);
        self.saw_assertion_line = d.line();
        Ok(())
    }

    /// Adds a check about the current response.
    fn assert(&mut self, d: &Directive<'_>, check: Check) -> Result<(), ParseError> {
        self.assertions.push(Assertion {
            response: self.current_response,
            check,
            line: d.line(),
            when: self.current_when.clone(),
        });
        self.saw_assertion_line = d.line();
        Ok(())
    }

    /// `expect-status: 200`, or several patterns (any of them) and `!`
    /// negations (none of them): `expect-status: 400 431`, `!2xx !5xx`.
    fn expect_status(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        let words = d.words()?;
        if let [one] = &words[..] {
            if !one.starts_with('!') {
                let pattern = d.at(StatusPattern::parse(one))?;
                return self.assert(d, Check::Status(pattern));
            }
        }
        let (mut any, mut none) = (Vec::new(), Vec::new());
        for w in &words {
            match w.strip_prefix('!') {
                Some(n) => none.push(d.at(StatusPattern::parse(n))?),
                None => any.push(d.at(StatusPattern::parse(w))?),
            }
        }
        self.assert(d, Check::StatusSet { any, none })
    }

    /// `expect-header-token: Name token`.
    fn expect_header_token(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        let words = d.words()?;
        let [name, token] = &words[..] else {
            return Err(d.value_err("want 'Name token'"));
        };
        let name = d.at(header_name(name.as_bytes()))?;
        self.assert(
            d,
            Check::HeaderToken {
                name,
                token: token.clone(),
            },
        )
    }

    /// `expect-header-if: STATUS Name`.
    fn expect_header_if(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        let words = d.words()?;
        let [status, name] = &words[..] else {
            return Err(d.value_err("want 'STATUS Name', e.g. '405 Allow'"));
        };
        let status = d.at(StatusPattern::parse(status))?;
        let name = d.at(header_name(name.as_bytes()))?;
        self.assert(d, Check::HeaderIfStatus { status, name })
    }

    /// `expect-same-header: Name N`.
    fn expect_same_header(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        let words = d.words()?;
        let [name, other] = &words[..] else {
            return Err(d.value_err("want 'Name N', e.g. 'Content-Length 2'"));
        };
        let name = d.at(header_name(name.as_bytes()))?;
        let other = other
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| d.value_err(format!("bad response number {other:?}")))?;
        self.assert(d, Check::SameHeader { name, other })
    }

    /// `when: status P | header Name | always`: a condition on the current
    /// response for the assertions that follow (until `response:` or `when:`).
    fn when(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        let words = d.words()?;
        self.current_when = match &words[..] {
            [w] if w == "always" => None,
            [w, p] if w == "status" => Some(When::Status(d.at(StatusPattern::parse(p))?)),
            [w, n] if w == "header" => Some(When::Header(d.at(header_name(n.as_bytes()))?)),
            _ => return Err(d.value_err("want 'status P', 'header Name' or 'always'")),
        };
        Ok(())
    }

    fn expect_decoded_body_file(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        let span = d.at(FileSpan::parse(&d.plain_str()?))?;
        self.assert(d, Check::FileDecodedBody(span))
    }

    /// `expect-body-file: all | A-B | A- | -N`.
    fn expect_body_file(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        let span = d.at(FileSpan::parse(&d.plain_str()?))?;
        self.assert(d, Check::FileBody(span))
    }

    /// `expect-ws: text PAYLOAD | binary PAYLOAD | pong PAYLOAD | close [CODE...]`.
    fn expect_ws(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        let text = d.text();
        let (kind, rest) = match text.iter().position(|b| *b == b' ') {
            Some(sp) => (&text[..sp], &text[sp + 1..]),
            None => (text, &b""[..]),
        };
        let payload = || d.at(crate::escape::unescape(rest).map_err(|(_, m)| m));
        let e =
            match kind {
                b"text" => WsExpect::Message {
                    text: true,
                    payload: payload()?,
                },
                b"binary" => WsExpect::Message {
                    text: false,
                    payload: payload()?,
                },
                b"pong" => WsExpect::Pong(payload()?),
                b"close" => {
                    let mut codes = Vec::new();
                    for w in String::from_utf8_lossy(rest).split_whitespace() {
                        codes.push(
                            w.parse::<u16>()
                                .map_err(|_| d.value_err(format!("bad close code {w:?}")))?,
                        );
                    }
                    WsExpect::Close(codes)
                }
                _ => return Err(d.value_err(
                    "want 'text PAYLOAD', 'binary PAYLOAD', 'pong PAYLOAD' or 'close [CODE...]'",
                )),
            };
        self.ws_expect.push((e, d.line()));
        self.saw_assertion_line = d.line();
        Ok(())
    }

    fn expect_header(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        let check = d.at(parse_header_check(d.text()))?;
        self.assert(d, check)
    }

    fn expect_no_header(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        let name = d.at(header_name(d.text()))?;
        self.assert(d, Check::NoHeader(name))
    }

    fn expect_body(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        self.assert(d, Check::Body(d.payload()?))?;
        self.open_payload = Some(PayloadTarget::Body);
        Ok(())
    }

    fn expect_decoded_body(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        self.assert(d, Check::DecodedBody(d.payload()?))?;
        self.open_payload = Some(PayloadTarget::Body);
        Ok(())
    }

    fn expect_body_length(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        self.assert(d, Check::BodyLength(d.number("body length")?))
    }

    fn expect_decoded_body_length(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        d.need_value()?;
        self.assert(d, Check::DecodedBodyLength(d.number("body length")?))
    }

    fn expect_flushed_lines(&mut self, d: &Directive<'_>) -> Result<(), ParseError> {
        // Unlike the other flags, only a ':' is refused here (historical).
        if d.has_colon() {
            return Err(d.err("expect-flushed-lines takes no value"));
        }
        self.assert(d, Check::FlushedLines)
    }

    // ---- End of file -------------------------------------------------------

    /// The checks that involve several directives, then the [`Case`].
    fn finish(mut self, name: &str, path: &Path) -> Result<Case, ParseError> {
        let file = |line: usize| Loc { path, line };
        let expect = self.expectation(path)?;
        self.check_expect_alive_alone(path)?;
        self.check_no_conn_after_reset(path)?;
        let conn = self.conn.map_or(ConnExpect::Any, |(c, _)| c);
        if expect == Expectation::None
            && conn == ConnExpect::Any
            && self.expect_alive == 0
            && self.skip.is_none()
        {
            return Err(file(0).err(
                "case expects nothing: add expect:, expect-status: (or another expect-* \
                 assertion), expect-close, expect-open or expect-alive",
            ));
        }
        Ok(Case {
            name: name.to_owned(),
            path: path.to_path_buf(),
            desc: self.desc,
            skip: self.skip,
            modes: self.modes.unwrap_or_else(|| DEFAULT_MODES.to_vec()),
            steps: self.steps,
            expect,
            conn,
            timeout: self.timeout,
            quiet: self.quiet,
            methods: self.methods,
            expect_lines: self.expect_lines,
            compare_decoded: self.compare_decoded,
            expect_alive: self.expect_alive != 0,
            rfc: self.rfc,
            reason: self.reason,
            needs: self.needs.unwrap_or_default(),
            accept_close: self.accept_close,
            ws_expect: self.ws_expect,
            at_least_responses: self.at_least_responses,
            at_most_responses: self.at_most_responses,
        })
    }

    /// Exact, assertion-based (with the response count) or none; not both.
    fn expectation(&mut self, path: &Path) -> Result<Expectation, ParseError> {
        let (exact_line, assert_line) = (self.saw_exact_line, self.saw_assertion_line);
        if exact_line != 0 && assert_line != 0 {
            return Err(Loc {
                path,
                line: assert_line.max(exact_line),
            }
            .err(format!(
                "a case is either exact (expect: on line {exact_line}) or assertion-based \
                 (line {assert_line}), not both"
            )));
        }
        if let Some(bytes) = self.exact.take() {
            return Ok(Expectation::Exact(bytes));
        }
        if assert_line == 0 {
            return Ok(Expectation::None);
        }
        let assertions = std::mem::take(&mut self.assertions);
        let highest = assertions.iter().map(|a| a.response).max().unwrap_or(0);
        let count = match self.expect_responses {
            Some(n) if n < highest => {
                let line = assertions
                    .iter()
                    .find(|a| a.response > n)
                    .map_or(0, |a| a.line);
                return Err(Loc { path, line }.err(format!(
                    "assertion on response {highest} but expect-responses: {n}"
                )));
            }
            Some(n) => n,
            None => highest,
        };
        Ok(Expectation::Assert { count, assertions })
    }

    /// `expect-alive` is the only expectation of a case that has it.
    fn check_expect_alive_alone(&self, path: &Path) -> Result<(), ParseError> {
        let alive = self.expect_alive;
        if alive == 0 {
            return Ok(());
        }
        let conn_line = self.conn.map_or(0, |(_, l)| l);
        let other = [self.saw_exact_line, self.saw_assertion_line, conn_line]
            .into_iter()
            .find(|l| *l != 0);
        match other {
            None => Ok(()),
            Some(other) => Err(Loc {
                path,
                line: alive.max(other),
            }
            .err(format!(
                "expect-alive (line {alive}) is the only expectation of a case: it cannot be \
                 combined with the expectation on line {other}"
            ))),
        }
    }

    /// After a `reset` step the client has no connection left to observe.
    fn check_no_conn_after_reset(&self, path: &Path) -> Result<(), ParseError> {
        let (Some((c, line)), reset) = (self.conn, self.reset_line) else {
            return Ok(());
        };
        if reset == 0 {
            return Ok(());
        }
        let what = if c == ConnExpect::Close {
            "expect-close"
        } else {
            "expect-open"
        };
        Err(Loc { path, line }.err(format!(
            "{what} cannot be checked after the reset step on line {reset}: the client has \
             closed the connection"
        )))
    }
}
