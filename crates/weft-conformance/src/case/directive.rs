//! One line of a case file, split into a directive name and its value, and
//! the value parsers the directives share. Every parser returns a
//! [`ParseError`] that already names the file and line.

use std::fmt;
use std::path::Path;
use std::time::Duration;

use super::{parse_duration, Check, ParseError};
use crate::escape::unescape;

/// A place in a case file, for errors.
#[derive(Clone, Copy)]
pub(super) struct Loc<'a> {
    pub path: &'a Path,
    /// 1-based line number; 0 for the file as a whole.
    pub line: usize,
}

impl Loc<'_> {
    pub fn err(&self, msg: impl Into<String>) -> ParseError {
        ParseError {
            path: self.path.to_path_buf(),
            line: self.line,
            msg: msg.into(),
        }
    }
}

/// What one line of a case file is.
pub(super) enum Line<'a> {
    /// A blank line or a `#` comment line.
    Blank,
    /// A `+` continuation line: the bytes after the `+`, blanks trimmed,
    /// escapes not yet decoded.
    Continuation {
        loc: Loc<'a>,
        idx: usize,
        bytes: &'a [u8],
    },
    Directive(Directive<'a>),
}

/// The lines of a case file: split at `\n`, without the empty piece after a
/// final `\n`. A `\r` before the `\n` is removed by [`Line::classify`].
pub(super) fn lines(text: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = text.split(|&b| b == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

impl<'a> Line<'a> {
    /// Classifies line `idx` (0-based) of the file at `path`.
    pub fn classify(path: &'a Path, idx: usize, raw: &'a [u8]) -> Line<'a> {
        let loc = Loc {
            path,
            line: idx + 1,
        };
        let raw = raw.strip_suffix(b"\r").unwrap_or(raw);
        let line = trim_blank_start(raw);
        match line.first() {
            None | Some(b'#') => Line::Blank,
            Some(b'+') => Line::Continuation {
                loc,
                idx,
                bytes: trim_blank(&line[1..]),
            },
            Some(_) => Line::Directive(Directive::split(loc, idx, line)),
        }
    }
}

/// A directive line: `name`, `name: value` or `name value`.
pub(super) struct Directive<'a> {
    pub loc: Loc<'a>,
    /// 0-based line index (`Case::expect_lines` counts from 0).
    pub idx: usize,
    pub name: String,
    /// Whether a `:` directly follows the name.
    has_colon: bool,
    /// The value, blanks trimmed, `#` kept: for payloads and free text.
    text: &'a [u8],
    /// The value, blanks trimmed, a trailing `# comment` removed.
    plain: &'a [u8],
}

impl<'a> Directive<'a> {
    /// Splits a line that starts with neither a blank, `#` nor `+`.
    fn split(loc: Loc<'a>, idx: usize, line: &'a [u8]) -> Directive<'a> {
        let name_end = line
            .iter()
            .position(|c| *c == b':' || *c == b' ' || *c == b'\t')
            .unwrap_or(line.len());
        let rest = &line[name_end..];
        let (has_colon, value) = match rest.first() {
            Some(b':') => (true, &rest[1..]),
            _ => (false, rest),
        };
        Directive {
            loc,
            idx,
            name: String::from_utf8_lossy(&line[..name_end]).into_owned(),
            has_colon,
            text: trim_blank(value),
            plain: trim_blank(strip_comment(value)),
        }
    }

    /// Whether a `:` follows the name.
    pub fn has_colon(&self) -> bool {
        self.has_colon
    }

    /// 1-based line number.
    pub fn line(&self) -> usize {
        self.loc.line
    }

    pub fn err(&self, msg: impl Into<String>) -> ParseError {
        self.loc.err(msg)
    }

    /// An error about the value: the message is prefixed with the
    /// directive's name (`wait: bad duration ...`).
    pub fn value_err(&self, msg: impl fmt::Display) -> ParseError {
        self.err(format!("{}: {msg}", self.name))
    }

    /// Turns a value parser's message into an error at this line, naming
    /// the directive.
    pub fn at<T>(&self, r: Result<T, String>) -> Result<T, ParseError> {
        r.map_err(|m| self.value_err(m))
    }

    /// The directive must be written `name: ...`.
    pub fn need_value(&self) -> Result<(), ParseError> {
        if self.has_colon {
            Ok(())
        } else {
            let name = &self.name;
            Err(self.err(format!("'{name}' needs a value: write '{name}: ...'")))
        }
    }

    /// A flag directive: nothing but a comment may follow the name.
    pub fn no_value(&self) -> Result<(), ParseError> {
        if self.plain.is_empty() {
            Ok(())
        } else {
            Err(self.err(format!("'{}' takes no value", self.name)))
        }
    }

    /// Fails when `already` (the directive may appear once per case).
    pub fn once(&self, already: bool) -> Result<(), ParseError> {
        if already {
            Err(self.err(format!("'{}' given twice", self.name)))
        } else {
            Ok(())
        }
    }

    /// The value with comments kept, as raw bytes.
    pub fn text(&self) -> &'a [u8] {
        self.text
    }

    /// The value with comments kept, as (lossy) text.
    pub fn text_lossy(&self) -> String {
        String::from_utf8_lossy(self.text).into_owned()
    }

    /// The value without a trailing comment; it must be UTF-8.
    pub fn plain_str(&self) -> Result<String, ParseError> {
        std::str::from_utf8(self.plain)
            .map(str::to_owned)
            .map_err(|_| self.err(format!("{}: value is not UTF-8", self.name)))
    }

    /// The value as a payload: comments kept, escapes decoded.
    pub fn payload(&self) -> Result<Vec<u8>, ParseError> {
        self.at(unescape(self.text).map_err(|(_, m)| m))
    }

    /// The value as a duration (`50ms`, `1.5s`).
    pub fn duration(&self) -> Result<Duration, ParseError> {
        self.at(parse_duration(&self.plain_str()?))
    }

    /// The value as an unsigned integer; `what` names it in the error
    /// (`bad WHAT "VALUE"`).
    pub fn number(&self, what: &str) -> Result<usize, ParseError> {
        let s = self.plain_str()?;
        s.parse::<usize>()
            .map_err(|_| self.value_err(format!("bad {what} {s:?}")))
    }

    /// The whitespace-separated words of the value.
    pub fn words(&self) -> Result<Vec<String>, ParseError> {
        Ok(self
            .plain_str()?
            .split_whitespace()
            .map(str::to_owned)
            .collect())
    }
}

/// Decodes the escapes of a `+` line; errors are reported at `loc`.
pub(super) fn unescape_continuation(loc: Loc<'_>, bytes: &[u8]) -> Result<Vec<u8>, ParseError> {
    unescape(bytes).map_err(|(_, m)| loc.err(format!("'+' line: {m}")))
}

fn is_blank(c: &u8) -> bool {
    *c == b' ' || *c == b'\t'
}

pub(super) fn trim_blank_start(b: &[u8]) -> &[u8] {
    let start = b.iter().position(|c| !is_blank(c)).unwrap_or(b.len());
    &b[start..]
}

/// Strips `[ \t]` from both ends.
fn trim_blank(b: &[u8]) -> &[u8] {
    let b = trim_blank_start(b);
    let end = b.iter().rposition(|c| !is_blank(c)).map_or(0, |p| p + 1);
    &b[..end]
}

/// Strips a trailing `# comment` (a `#` at the start or after a blank).
fn strip_comment(b: &[u8]) -> &[u8] {
    for i in 0..b.len() {
        if b[i] == b'#' && (i == 0 || is_blank(&b[i - 1])) {
            return &b[..i];
        }
    }
    b
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// A field name (an HTTP token).
pub(super) fn header_name(b: &[u8]) -> Result<String, String> {
    if b.is_empty() || !b.iter().all(|c| is_tchar(*c)) {
        return Err(format!("bad header name {:?}", String::from_utf8_lossy(b)));
    }
    Ok(String::from_utf8_lossy(b).into_owned())
}

/// `Name` or `Name: value` (value blanks trimmed, escapes decoded).
pub(super) fn parse_header_check(v: &[u8]) -> Result<Check, String> {
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
