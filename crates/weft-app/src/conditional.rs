//! Conditional requests (RFC 9110 section 13): `If-Match`, `If-Unmodified-Since`,
//! `If-None-Match`, `If-Modified-Since` evaluated in the order of section 13.2.2, and
//! `If-Range` for range requests.
//!
//! Decisions:
//! - An `If-Match` or `If-None-Match` value that is not a valid list (`*` or entity tags) is a
//!   list that matches nothing: `If-Match` then fails (412), `If-None-Match` passes.
//! - A date field that is not one valid HTTP-date (or appears more than once) is ignored, as is
//!   a date condition on a representation without `Last-Modified`.
//! - `If-Range` holds for a strong entity tag that strongly matches, or for a date that equals
//!   `Last-Modified` exactly when that is a strong validator (at least one second before the
//!   response's `Date`, RFC 9110 section 8.8.2.2); anything else (weak tag, other date,
//!   garbage, several fields) means "send the whole representation".

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use weft_core::{is_ows, trim_ows, Headers, Method};

/// The validators of the selected representation.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Validators {
    /// The strong entity tag with its quotes (`"abc"`), if there is one.
    pub etag: Option<Arc<str>>,
    /// `Last-Modified` as seconds since the Unix epoch, if there is one.
    pub last_modified: Option<u64>,
}

/// What the preconditions decide.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Precondition {
    /// Go on with the request.
    Proceed,
    /// 304 Not Modified (GET and HEAD only).
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// A parsed `If-Match` / `If-None-Match` value.
#[derive(Debug, PartialEq, Eq)]
enum TagList<'a> {
    Any,
    /// (weak, opaque-tag with its quotes)
    Tags(Vec<(bool, &'a [u8])>),
}

fn is_etagc(b: u8) -> bool {
    b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80
}

/// Parses one entity tag at the start of `s`: (weak, opaque tag with quotes, rest).
fn entity_tag(s: &[u8]) -> Option<(bool, &[u8], &[u8])> {
    let (weak, s) = match s {
        [b'W', b'/', rest @ ..] => (true, rest),
        _ => (false, s),
    };
    let [b'"', inner @ ..] = s else {
        return None;
    };
    let close = inner.iter().position(|&b| b == b'"')?;
    if !inner.iter().take(close).all(|&b| is_etagc(b)) {
        return None;
    }
    let (tag, rest) = s.split_at(close + 2);
    Some((weak, tag, rest))
}

/// The list formed by every field line of `name` (RFC 9110 section 5.3); `None` when there is
/// no such field, `Some(None)` when the list is not valid.
fn tag_list<'a>(headers: &Headers<'a>, name: &str) -> Option<Option<TagList<'a>>> {
    let mut seen = false;
    let mut star = false;
    let mut tags = Vec::new();
    let mut valid = true;
    for value in headers.get_all(name) {
        seen = true;
        let mut s = value;
        loop {
            while let [b, rest @ ..] = s {
                if is_ows(*b) || *b == b',' {
                    s = rest;
                } else {
                    break;
                }
            }
            if s.is_empty() {
                break;
            }
            if let [b'*', rest @ ..] = s {
                star = true;
                s = rest;
            } else if let Some((weak, tag, rest)) = entity_tag(s) {
                tags.push((weak, tag));
                s = rest;
            } else {
                valid = false;
                break;
            }
            // After an element: OWS, then a comma or the end.
            while let [b, rest @ ..] = s {
                if is_ows(*b) {
                    s = rest;
                } else {
                    break;
                }
            }
            match s {
                [] => break,
                [b',', ..] => {}
                _ => {
                    valid = false;
                    break;
                }
            }
        }
    }
    if !seen {
        return None;
    }
    if !valid || (star && !tags.is_empty()) || (!star && tags.is_empty()) {
        return Some(None);
    }
    Some(Some(if star {
        TagList::Any
    } else {
        TagList::Tags(tags)
    }))
}

/// The only value of a field that must appear once, trimmed; `None` when absent, `Some(None)`
/// when repeated.
fn single<'a>(headers: &Headers<'a>, name: &str) -> Option<Option<&'a [u8]>> {
    let mut values = headers.get_all(name);
    let first = values.next()?;
    if values.next().is_some() {
        return Some(None);
    }
    Some(Some(trim_ows(first)))
}

/// An HTTP-date (any of the three formats) as seconds since the epoch.
pub fn parse_date(value: &[u8]) -> Option<u64> {
    let text = std::str::from_utf8(trim_ows(value)).ok()?;
    let t = httpdate::parse_http_date(text).ok()?;
    Some(unix_seconds(t))
}

/// Seconds since the epoch (0 before it).
pub fn unix_seconds(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// A date condition's date: `None` when the field is absent, repeated or not a date.
fn date_field(headers: &Headers<'_>, name: &str) -> Option<u64> {
    parse_date(single(headers, name)??)
}

fn strong_match(ours: Option<&str>, theirs: &[(bool, &[u8])]) -> bool {
    let Some(ours) = ours else {
        return false;
    };
    theirs
        .iter()
        .any(|&(weak, tag)| !weak && tag == ours.as_bytes())
}

fn weak_match(ours: Option<&str>, theirs: &[(bool, &[u8])]) -> bool {
    let Some(ours) = ours else {
        return false;
    };
    // Our tags are strong: W/"x" weakly matches "x".
    theirs.iter().any(|&(_, tag)| tag == ours.as_bytes())
}

/// Evaluates the preconditions of a request on an existing representation (RFC 9110
/// section 13.2.2, steps 1 to 4).
pub fn evaluate(headers: &Headers<'_>, method: Method<'_>, v: &Validators) -> Precondition {
    let etag = v.etag.as_deref();
    let get_or_head = matches!(method, Method::Get | Method::Head);
    // 1. If-Match.
    match tag_list(headers, "if-match") {
        Some(Some(TagList::Any)) => {}
        Some(Some(TagList::Tags(tags))) => {
            if !strong_match(etag, &tags) {
                return Precondition::Failed;
            }
        }
        Some(None) => return Precondition::Failed,
        // 2. If-Unmodified-Since, only without If-Match.
        None => {
            if let (Some(since), Some(modified)) =
                (date_field(headers, "if-unmodified-since"), v.last_modified)
            {
                if modified > since {
                    return Precondition::Failed;
                }
            }
        }
    }
    // 3. If-None-Match.
    let not_modified = if get_or_head {
        Precondition::NotModified
    } else {
        Precondition::Failed
    };
    match tag_list(headers, "if-none-match") {
        Some(Some(TagList::Any)) => return not_modified,
        Some(Some(TagList::Tags(tags))) => {
            if weak_match(etag, &tags) {
                return not_modified;
            }
        }
        Some(None) => {}
        // 4. If-Modified-Since, only without If-None-Match, only for GET and HEAD.
        None => {
            if get_or_head {
                if let (Some(since), Some(modified)) =
                    (date_field(headers, "if-modified-since"), v.last_modified)
                {
                    if modified <= since {
                        return Precondition::NotModified;
                    }
                }
            }
        }
    }
    Precondition::Proceed
}

/// Whether a range request may be answered with ranges (RFC 9110 section 13.1.5): true when
/// there is no `If-Range`, or when it names the current representation. `now` is the
/// response's `Date` in seconds.
pub fn if_range_holds(headers: &Headers<'_>, v: &Validators, now: u64) -> bool {
    let Some(value) = single(headers, "if-range") else {
        return true;
    };
    let Some(value) = value else {
        return false;
    };
    if value.first() == Some(&b'"') || value.starts_with(b"W/") {
        return match entity_tag(value) {
            Some((false, tag, [])) => v.etag.as_deref().map(str::as_bytes) == Some(tag),
            _ => false,
        };
    }
    match (parse_date(value), v.last_modified) {
        (Some(date), Some(modified)) => date == modified && modified.saturating_add(1) <= now,
        _ => false,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use weft_core::{parse_request_head, Limits, RequestHead};

    const ETAG: &str = "\"c-65920080-0\"";
    // Mon, 01 Jan 2024 00:00:00 GMT
    const LM: u64 = 1_704_067_200;
    const LM_TEXT: &str = "Mon, 01 Jan 2024 00:00:00 GMT";
    const NOW: u64 = LM + 1000;

    fn validators() -> Validators {
        Validators {
            etag: Some(ETAG.into()),
            last_modified: Some(LM),
        }
    }

    /// Parses a whole request (method line plus the given field lines).
    fn with_head<R>(method: &str, fields: &[&str], f: impl FnOnce(&RequestHead<'_>) -> R) -> R {
        let mut text = format!("{method} /hello.txt HTTP/1.1\r\nHost: localhost\r\n");
        for field in fields {
            text.push_str(field);
            text.push_str("\r\n");
        }
        text.push_str("\r\n");
        let (head, _) = parse_request_head(text.as_bytes(), &Limits::default())
            .expect("valid request")
            .expect("complete head");
        f(&head)
    }

    fn eval(method: &str, fields: &[&str]) -> Precondition {
        with_head(method, fields, |h| {
            evaluate(&h.headers, h.method, &validators())
        })
    }

    fn if_range(fields: &[&str]) -> bool {
        with_head("GET", fields, |h| {
            if_range_holds(&h.headers, &validators(), NOW)
        })
    }

    use Precondition::*;

    #[test]
    fn no_conditions() {
        assert_eq!(eval("GET", &[]), Proceed);
    }

    #[test]
    fn if_match() {
        assert_eq!(eval("GET", &[&format!("If-Match: {ETAG}")]), Proceed);
        assert_eq!(eval("GET", &["If-Match: *"]), Proceed);
        assert_eq!(eval("GET", &[&format!("If-Match: \"x\", {ETAG}")]), Proceed);
        assert_eq!(
            eval("GET", &["If-Match: \"x\"", &format!("If-Match: {ETAG}")]),
            Proceed
        );
        assert_eq!(eval("GET", &["If-Match: \"x\""]), Failed);
        // Strong comparison: a weak tag never matches.
        assert_eq!(eval("GET", &[&format!("If-Match: W/{ETAG}")]), Failed);
        // Invalid lists match nothing.
        assert_eq!(eval("GET", &["If-Match: c-65920080-0"]), Failed);
        assert_eq!(eval("GET", &[&format!("If-Match: *, {ETAG}")]), Failed);
        assert_eq!(eval("GET", &["If-Match: \"unterminated"]), Failed);
        assert_eq!(eval("GET", &["If-Match:"]), Failed);
    }

    #[test]
    fn if_match_without_etag() {
        let v = Validators::default();
        with_head("GET", &["If-Match: *"], |h| {
            assert_eq!(evaluate(&h.headers, h.method, &v), Proceed)
        });
        with_head("GET", &[&format!("If-Match: {ETAG}")], |h| {
            assert_eq!(evaluate(&h.headers, h.method, &v), Failed)
        });
    }

    #[test]
    fn tags_may_hold_commas() {
        let v = Validators {
            etag: Some("\"a,b\"".into()),
            last_modified: None,
        };
        with_head("GET", &["If-None-Match: \"x\", \"a,b\""], |h| {
            assert_eq!(evaluate(&h.headers, h.method, &v), NotModified)
        });
    }

    #[test]
    fn if_unmodified_since() {
        assert_eq!(
            eval("GET", &[&format!("If-Unmodified-Since: {LM_TEXT}")]),
            Proceed
        );
        assert_eq!(
            eval(
                "GET",
                &["If-Unmodified-Since: Sun, 31 Dec 2023 23:59:59 GMT"]
            ),
            Failed
        );
        // Other date formats.
        assert_eq!(
            eval(
                "GET",
                &["If-Unmodified-Since: Sunday, 31-Dec-23 23:59:59 GMT"]
            ),
            Failed
        );
        assert_eq!(
            eval("GET", &["If-Unmodified-Since: Sun Dec 31 23:59:59 2023"]),
            Failed
        );
        // Not a date, or twice: ignored.
        assert_eq!(eval("GET", &["If-Unmodified-Since: yesterday"]), Proceed);
        assert_eq!(
            eval(
                "GET",
                &[
                    "If-Unmodified-Since: Sun, 31 Dec 2023 23:59:59 GMT",
                    "If-Unmodified-Since: Sun, 31 Dec 2023 23:59:59 GMT"
                ]
            ),
            Proceed
        );
    }

    #[test]
    fn if_match_takes_precedence_over_if_unmodified_since() {
        // A matching If-Match makes a failing If-Unmodified-Since irrelevant.
        assert_eq!(
            eval(
                "GET",
                &[
                    &format!("If-Match: {ETAG}"),
                    "If-Unmodified-Since: Sun, 31 Dec 2023 23:59:59 GMT"
                ]
            ),
            Proceed
        );
        assert_eq!(
            eval(
                "GET",
                &[
                    "If-Match: \"x\"",
                    &format!("If-Unmodified-Since: {LM_TEXT}")
                ]
            ),
            Failed
        );
    }

    #[test]
    fn if_none_match() {
        assert_eq!(
            eval("GET", &[&format!("If-None-Match: {ETAG}")]),
            NotModified
        );
        assert_eq!(
            eval("HEAD", &[&format!("If-None-Match: {ETAG}")]),
            NotModified
        );
        // Weak comparison.
        assert_eq!(
            eval("GET", &[&format!("If-None-Match: W/{ETAG}")]),
            NotModified
        );
        assert_eq!(
            eval("GET", &[&format!("If-None-Match: \"a\" ,W/\"b\", {ETAG}")]),
            NotModified
        );
        assert_eq!(eval("GET", &["If-None-Match: *"]), NotModified);
        assert_eq!(eval("GET", &["If-None-Match: \"other\""]), Proceed);
        // Other methods: 412.
        assert_eq!(eval("POST", &[&format!("If-None-Match: {ETAG}")]), Failed);
        assert_eq!(eval("DELETE", &["If-None-Match: *"]), Failed);
        // Invalid: no match.
        assert_eq!(eval("GET", &["If-None-Match: abc"]), Proceed);
    }

    #[test]
    fn if_modified_since() {
        assert_eq!(
            eval("GET", &[&format!("If-Modified-Since: {LM_TEXT}")]),
            NotModified
        );
        assert_eq!(
            eval("GET", &["If-Modified-Since: Tue, 02 Jan 2024 00:00:00 GMT"]),
            NotModified
        );
        assert_eq!(
            eval("GET", &["If-Modified-Since: Sun, 31 Dec 2023 23:59:59 GMT"]),
            Proceed
        );
        assert_eq!(eval("GET", &["If-Modified-Since: garbage"]), Proceed);
        // Only GET and HEAD.
        assert_eq!(
            eval("POST", &[&format!("If-Modified-Since: {LM_TEXT}")]),
            Proceed
        );
    }

    #[test]
    fn if_none_match_takes_precedence_over_if_modified_since() {
        // A non-matching If-None-Match means modified, whatever the date says.
        assert_eq!(
            eval(
                "GET",
                &[
                    "If-None-Match: \"other\"",
                    &format!("If-Modified-Since: {LM_TEXT}")
                ]
            ),
            Proceed
        );
        assert_eq!(
            eval(
                "GET",
                &[
                    &format!("If-None-Match: {ETAG}"),
                    "If-Modified-Since: Sun, 31 Dec 2023 23:59:59 GMT"
                ]
            ),
            NotModified
        );
    }

    #[test]
    fn failed_if_match_beats_if_none_match() {
        assert_eq!(
            eval(
                "GET",
                &["If-Match: \"x\"", &format!("If-None-Match: {ETAG}")]
            ),
            Failed
        );
    }

    #[test]
    fn if_unmodified_since_beats_if_none_match() {
        assert_eq!(
            eval(
                "GET",
                &[
                    "If-Unmodified-Since: Sun, 31 Dec 2023 23:59:59 GMT",
                    &format!("If-None-Match: {ETAG}")
                ]
            ),
            Failed
        );
    }

    #[test]
    fn date_conditions_need_last_modified() {
        let v = Validators {
            etag: Some(ETAG.into()),
            last_modified: None,
        };
        with_head("GET", &[&format!("If-Modified-Since: {LM_TEXT}")], |h| {
            assert_eq!(evaluate(&h.headers, h.method, &v), Proceed)
        });
        with_head(
            "GET",
            &["If-Unmodified-Since: Sun, 31 Dec 2023 23:59:59 GMT"],
            |h| assert_eq!(evaluate(&h.headers, h.method, &v), Proceed),
        );
    }

    #[test]
    fn if_range_cases() {
        assert!(if_range(&[]));
        assert!(if_range(&[&format!("If-Range: {ETAG}")]));
        assert!(!if_range(&["If-Range: \"other\""]));
        assert!(!if_range(&[&format!("If-Range: W/{ETAG}")]));
        assert!(!if_range(&[&format!("If-Range: {ETAG}, {ETAG}")]));
        assert!(if_range(&[&format!("If-Range: {LM_TEXT}")]));
        assert!(!if_range(&["If-Range: Tue, 02 Jan 2024 00:00:00 GMT"]));
        assert!(!if_range(&["If-Range: Sun, 31 Dec 2023 23:59:59 GMT"]));
        assert!(!if_range(&["If-Range: garbage"]));
        assert!(!if_range(&[
            &format!("If-Range: {ETAG}"),
            &format!("If-Range: {ETAG}")
        ]));
    }

    #[test]
    fn if_range_date_must_be_strong() {
        // Last-Modified within the second of the Date is a weak validator.
        with_head("GET", &[&format!("If-Range: {LM_TEXT}")], |h| {
            assert!(!if_range_holds(&h.headers, &validators(), LM));
            assert!(if_range_holds(&h.headers, &validators(), LM + 1));
        });
    }
}
