//! TEMPORARY: the case parser as it was before the refactor into
//! `case/parse.rs`, kept only so `differential_tests` can check that the new
//! parser gives identical results (and identical errors). Removed once the
//! refactor is done.
#![allow(clippy::too_many_lines)]

use std::path::Path;

use super::*;
use crate::escape::unescape;

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
pub(super) fn parse_case(name: &str, path: &Path, text: &[u8]) -> Result<Case, ParseError> {
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
