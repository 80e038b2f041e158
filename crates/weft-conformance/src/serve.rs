//! The application's cases against a `wasi:http` host (`--target serve`): weft's
//! `weft-http-fs.wasm` under `wasmtime serve`, compared with the native build.
//!
//! Behind such a host, weft decides what the application decides (routing, middleware,
//! files, conditional requests, ranges, compression, the echo and the sheep) and the host's
//! HTTP stack decides the rest (parsing, framing, persistence, pipelining, timeouts,
//! upgrades). So:
//! - only the cases of [`APPLICATION_GROUPS`] run; the other groups are reported as not
//!   applicable, with their counts; so are, in those groups, the cases that send an HTTP/1.0
//!   request or half-close the connection (the version's framing and persistence rules are
//!   the host's: `wasmtime serve` refuses an HTTP/1.0 request without `Host` before the
//!   component sees it, and ends an exchange when the client half-closes), and, at run time,
//!   the cases the native build answered from its protocol core rather than its application
//!   (every application response carries the middleware's `Server` field; the core's own
//!   error responses do not): there the host answers from its own parser;
//! - each case runs against both targets and their answers are compared through
//!   [`application_view`]: per response, the status, the header fields except
//!   [`HOST_OWNED_FIELDS`] (names compared case-insensitively, fields in the order of their
//!   names, values of one name in the order sent), and the body with its transfer coding
//!   removed. The reason phrase, the field-name case, the framing and the connection's fate
//!   are the host's: where the host closed the connection after some responses, those must
//!   be the first of native's, and the rest is not compared.

use std::collections::BTreeMap;

use crate::case::{Case, Expectation, Step};
use crate::response::parse_responses;
use crate::run::Transcript;
use crate::suite::CaseResult;

/// The case groups (directories of `conformance/cases`) about what the application decides.
pub const APPLICATION_GROUPS: &[&str] = &[
    "basics",
    "bodies",
    "compression",
    "files",
    "methods",
    "middleware",
    "routing",
    "static",
    "streaming",
];

/// Header fields a host's HTTP stack writes itself: left out of the comparison.
pub const HOST_OWNED_FIELDS: &[&str] = &[
    "date",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
];

/// Whether the case is about what the application decides (see the module's rule).
pub fn applicable(case: &Case) -> bool {
    APPLICATION_GROUPS.contains(&case.group()) && host_rule(case).is_none()
}

/// Why a case of an application group is still the host's, if it is.
fn host_rule(case: &Case) -> Option<&'static str> {
    if case.steps.contains(&Step::Shutdown) {
        return Some("half-close");
    }
    let sent = case.sent_bytes();
    if sent.windows(11).any(|w| w == b" HTTP/1.0\r\n") {
        return Some("HTTP/1.0");
    }
    None
}

/// Counts of the cases that do not apply, per group (or per rule, inside an application
/// group).
pub fn not_applicable(cases: &[Case]) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for case in cases.iter().filter(|c| !applicable(c)) {
        let key = match host_rule(case) {
            Some(rule) if APPLICATION_GROUPS.contains(&case.group()) => {
                format!("{} ({rule})", case.group())
            }
            _ => case.group().to_string(),
        };
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// Prepares an applicable case for a run whose transcripts are compared, not checked: its
/// reading ends once as many responses came as it sends requests (and the quiet period
/// passed), since the host's bytes can never meet an exact expectation.
pub fn compare_only(case: &mut Case) {
    if case.expect != Expectation::None {
        case.expect = Expectation::Assert {
            count: case.request_methods().len().max(1),
            assertions: Vec::new(),
        };
    }
}

/// Whether the native build answered the case from its protocol core only: it answered, and
/// no response carries the application's `Server` field.
pub fn answered_by_core(case: &Case, native: &CaseResult) -> bool {
    let methods = case.request_methods();
    native.modes.iter().all(|m| {
        m.transcript.as_ref().is_some_and(|t| {
            let parsed = parse_responses(&t.normalized, &methods, t.end.closed());
            !parsed.responses.is_empty()
                && parsed.responses.iter().all(|r| {
                    !r.headers
                        .iter()
                        .any(|(n, _)| n.eq_ignore_ascii_case("server"))
                })
        })
    })
}

/// What the application answered, under the rule in the module's documentation.
pub fn application_view(case: &Case, t: &Transcript) -> String {
    let methods = case.request_methods();
    let parsed = parse_responses(&t.normalized, &methods, t.end.closed());
    let mut view = String::new();
    for r in &parsed.responses {
        view.push_str(&format!("status {}\n", r.status));
        let mut fields: Vec<(String, &[u8])> = r
            .headers
            .iter()
            .map(|(n, v)| (n.to_ascii_lowercase(), v.as_slice()))
            .filter(|(n, _)| !HOST_OWNED_FIELDS.contains(&n.as_str()))
            .collect();
        // Stable: the values of one name keep their order.
        fields.sort_by(|a, b| a.0.cmp(&b.0));
        for (name, value) in fields {
            view.push_str(&format!("{name}: {}\n", String::from_utf8_lossy(value)));
        }
        view.push_str(&format!("body {:?}\n", String::from_utf8_lossy(&r.body)));
    }
    view
}

/// How each applicable case compared.
#[derive(Debug, Default)]
pub struct Comparison {
    /// One message per case (index into the cases) whose application views differ, or that
    /// did not run on both targets.
    pub failures: BTreeMap<usize, String>,
    /// Cases the native build answered from its core ([`answered_by_core`]): not compared.
    pub core_answers: Vec<usize>,
}

/// Whether the host closed the connection after answering a prefix of native's responses
/// (at least one): persistence is the host's (a host may close rather than drain a body the
/// application did not read, for one), so the requests it never read are not compared.
fn closed_after_a_prefix(native: &str, host: &str, host_transcript: &Transcript) -> bool {
    host_transcript.end.closed() && host.contains("status ") && native.starts_with(host)
}

/// Compares each applicable case's answers mode by mode; `a` is the native build.
pub fn compare_application(
    cases: &[Case],
    (la, a): (&str, &[CaseResult]),
    (lb, b): (&str, &[CaseResult]),
) -> Comparison {
    let mut result = Comparison::default();
    let out = &mut result.failures;
    for (i, case) in cases.iter().enumerate() {
        if case.skip.is_some() {
            continue;
        }
        if answered_by_core(case, &a[i]) {
            result.core_answers.push(i);
            continue;
        }
        let mut msg = String::new();
        for (ma, mb) in a[i].modes.iter().zip(&b[i].modes) {
            let (Some(ta), Some(tb)) = (&ma.transcript, &mb.transcript) else {
                msg.push_str(&format!(
                    "FAIL {} [{}]: no transcript from {}\n",
                    case.name,
                    ma.mode,
                    if ma.transcript.is_none() { la } else { lb }
                ));
                continue;
            };
            let (va, vb) = (application_view(case, ta), application_view(case, tb));
            if va == vb || closed_after_a_prefix(&va, &vb, tb) {
                continue;
            }
            if msg.is_empty() {
                msg = format!(
                    "FAIL {} [{}]: the application answered differently on {la} and {lb}\n",
                    case.name, ma.mode
                );
                msg.push_str(&crate::diff::render_labeled(
                    (la, lb),
                    va.as_bytes(),
                    vb.as_bytes(),
                ));
            } else {
                msg.push_str(&format!("    also differs in mode {}\n", ma.mode));
            }
        }
        if a[i].modes.len() != b[i].modes.len() || !a[i].notes.is_empty() || !b[i].notes.is_empty()
        {
            for note in a[i].notes.iter().chain(&b[i].notes) {
                msg.push_str(&format!("FAIL {}: {note}\n", case.name));
            }
        }
        if !msg.is_empty() {
            out.insert(i, msg);
        }
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::End;
    use std::time::Duration;

    fn transcript(bytes: &[u8]) -> Transcript {
        Transcript {
            raw: bytes.to_vec(),
            normalized: bytes.to_vec(),
            end: End::Quiet,
            write_error: None,
            elapsed: Duration::ZERO,
        }
    }

    fn case() -> Case {
        let text = "send: GET /x HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n\nexpect-status: 200\n";
        crate::case::parse_case("static/x", std::path::Path::new("x.case"), text.as_bytes())
            .expect("a valid case")
    }

    #[test]
    fn host_owned_fields_and_name_case_are_not_compared() {
        let native = transcript(
            b"HTTP/1.1 200 OK\r\nDate: <date>\r\nServer: weft\r\nVary: Origin\r\nContent-Type: text/plain\r\nVary: Accept-Encoding\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n",
        );
        let host = transcript(
            b"HTTP/1.1 200 Fine\r\nserver: weft\r\nvary: Origin\r\nvary: Accept-Encoding\r\ncontent-type: text/plain\r\ncontent-length: 2\r\ndate: <date>\r\n\r\nhi",
        );
        let c = case();
        assert_eq!(application_view(&c, &native), application_view(&c, &host));
    }

    #[test]
    fn what_the_application_decides_is_compared() {
        let c = case();
        let a = transcript(b"HTTP/1.1 200 OK\r\nETag: \"a\"\r\nContent-Length: 2\r\n\r\nhi");
        let other_value =
            transcript(b"HTTP/1.1 200 OK\r\nETag: \"b\"\r\nContent-Length: 2\r\n\r\nhi");
        let other_body =
            transcript(b"HTTP/1.1 200 OK\r\nETag: \"a\"\r\nContent-Length: 2\r\n\r\nho");
        let other_status =
            transcript(b"HTTP/1.1 201 OK\r\nETag: \"a\"\r\nContent-Length: 2\r\n\r\nhi");
        let view = application_view(&c, &a);
        assert_ne!(view, application_view(&c, &other_value));
        assert_ne!(view, application_view(&c, &other_body));
        assert_ne!(view, application_view(&c, &other_status));
    }
}
