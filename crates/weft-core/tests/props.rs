//! Property tests: split invariance of valid pipelined streams (checked against a model of what
//! was sent), robustness on arbitrary and mutated input, request round trips, and response
//! serialisation read back by an independent parser.

mod common;

use std::time::Duration;

use common::*;
use proptest::prelude::*;
use proptest::sample::Index;
use weft_core::{
    parse_request_head, BodyKind, ChunkedDecoder, Decoded, Error, Framing, Limits, Response,
    SendError, Version,
};

/// `n` cases, or `WEFT_PROPTEST_CASES` for a deeper run (e.g. 100000 with `--release`).
fn cases(n: u32) -> ProptestConfig {
    let n = std::env::var("WEFT_PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(n);
    ProptestConfig::with_cases(n)
}

// A model of valid requests.

#[derive(Clone, Debug)]
enum Body {
    None,
    Length(Vec<u8>),
    Chunked {
        chunks: Vec<(Vec<u8>, String)>,
        last_ext: String,
        trailers: Vec<(String, Vec<u8>, String)>,
    },
}

#[derive(Clone, Debug)]
struct Spec {
    leading: usize,
    method: String,
    target: String,
    /// The Host value.
    host: String,
    /// Name, value, whitespace around the value.
    headers: Vec<(String, Vec<u8>, String)>,
    body: Body,
    expect: bool,
    close: bool,
    /// Spell the framing header names in lower case.
    lower: bool,
}

const KNOWN: [&str; 9] = [
    "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "CONNECT", "TRACE",
];

fn method() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => prop::sample::select(&["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS", "PATCH"][..])
            .prop_map(str::to_string),
        1 => "[A-Z][A-Z_-]{0,7}".prop_filter("not CONNECT", |m| m != "CONNECT"),
    ]
}

fn target() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "/[a-zA-Z0-9._~%!$&'()*+,;=:@/-]{0,16}(\\?[a-zA-Z0-9=&%/?]{0,12})?",
        1 => "http://example\\.com(:[0-9]{1,4})?/[a-z]{0,6}",
        1 => Just("*".to_string()),
    ]
}

/// A valid Host value (RFC 9110 7.2: uri-host [":" port]): a reg-name (with pct-encoded
/// octets and sub-delims), an IPv4 address, an IPv6 or IPvFuture literal, with or without a
/// port, which may be empty.
fn host() -> impl Strategy<Value = String> {
    let h16 = || "[0-9a-fA-F]{1,4}";
    let uri_host = prop_oneof![
        4 => "[a-zA-Z0-9._~!$&'()*+,;=-]{1,12}",
        1 => "([a-z0-9]{0,3}%[0-9a-fA-F]{2}){1,3}",
        1 => "(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])(\\.(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])){3}",
        1 => prop::collection::vec(h16(), 8).prop_map(|g| format!("[{}]", g.join(":"))),
        1 => (prop::collection::vec(h16(), 0..4), prop::collection::vec(h16(), 0..4))
            .prop_map(|(a, b)| format!("[{}::{}]", a.join(":"), b.join(":"))),
        1 => Just("[::ffff:192.0.2.1]".to_string()),
        1 => "\\[[vV][0-9a-fA-F]{1,2}\\.[a-zA-Z0-9._~!$&'()*+,;=:-]{1,8}\\]",
    ];
    (uri_host, prop::option::of("[0-9]{0,5}")).prop_map(|(h, port)| match port {
        Some(port) => format!("{h}:{port}"),
        None => h,
    })
}

fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9!#$%&'*+.^_`|~-]{1,10}"
}

/// A visible ASCII field value without surrounding whitespace.
fn ascii_value() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), "[!-~]([ -~\t]{0,15}[!-~])?"]
}

/// A field value without surrounding whitespace, with obs-text (bytes 0x80-0xFF) at times.
fn value() -> impl Strategy<Value = Vec<u8>> {
    let inner = prop_oneof![
        6 => 0x20u8..0x7f,
        1 => Just(b'\t'),
        2 => 0x80u8..=0xff,
    ];
    let edge = prop_oneof![3 => 0x21u8..0x7f, 1 => 0x80u8..=0xff];
    prop_oneof![
        1 => Just(Vec::new()),
        1 => edge.clone().prop_map(|b| vec![b]),
        4 => (edge.clone(), prop::collection::vec(inner, 0..24), edge).prop_map(|(a, mid, z)| {
            let mut v = vec![a];
            v.extend(mid);
            v.push(z);
            v
        }),
    ]
}

fn ows() -> impl Strategy<Value = String> {
    "[ \t]{0,2}"
}

fn field() -> impl Strategy<Value = (String, Vec<u8>, String)> {
    ("X-[A-Za-z0-9-]{1,8}", value(), ows())
}

fn trailer() -> impl Strategy<Value = (String, Vec<u8>, String)> {
    (token(), value(), ows())
}

fn ext() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => Just(String::new()),
        1 => "(;[a-z]{1,4}(=[a-z0-9]{1,4})?){1,2}",
        1 => Just(" ; q=\"a b;c\"".to_string()),
    ]
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        2 => Just(Body::None),
        2 => prop::collection::vec(any::<u8>(), 1..64).prop_map(Body::Length),
        2 => (
            prop::collection::vec((prop::collection::vec(any::<u8>(), 1..40), ext()), 0..5),
            ext(),
            prop::collection::vec(trailer(), 0..3),
        )
            .prop_map(|(chunks, last_ext, trailers)| Body::Chunked {
                chunks,
                last_ext,
                trailers,
            }),
    ]
}

fn spec() -> impl Strategy<Value = Spec> {
    (
        0..3usize,
        method(),
        target(),
        host(),
        prop::collection::vec(field(), 0..5),
        body(),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.1),
        any::<bool>(),
    )
        .prop_map(
            |(leading, method, target, host, headers, body, expect, close, lower)| {
                let target = if target == "*" && method != "OPTIONS" {
                    "/".to_string()
                } else {
                    target
                };
                Spec {
                    leading,
                    method,
                    target,
                    host,
                    headers,
                    body,
                    expect,
                    close,
                    lower,
                }
            },
        )
}

fn stream() -> impl Strategy<Value = Vec<Spec>> {
    prop::collection::vec(spec(), 1..5)
}

impl Spec {
    fn body_bytes(&self) -> Vec<u8> {
        match &self.body {
            Body::None => Vec::new(),
            Body::Length(b) => b.clone(),
            Body::Chunked { chunks, .. } => chunks.iter().flat_map(|(d, _)| d.clone()).collect(),
        }
    }

    /// The header fields as the parser should report them.
    fn fields(&self) -> Vec<(String, Vec<u8>)> {
        let mut f = vec![("Host".to_string(), self.host.clone().into_bytes())];
        for (n, v, _) in &self.headers {
            f.push((n.clone(), v.clone()));
        }
        if self.expect {
            f.push(("Expect".to_string(), b"100-continue".to_vec()));
        }
        if self.close {
            f.push(("Connection".to_string(), b"close".to_vec()));
        }
        let name = |n: &str| {
            if self.lower {
                n.to_lowercase()
            } else {
                n.to_string()
            }
        };
        match &self.body {
            Body::None => {}
            Body::Length(b) => {
                f.push((name("Content-Length"), b.len().to_string().into_bytes()));
            }
            Body::Chunked { .. } => f.push((name("Transfer-Encoding"), b"chunked".to_vec())),
        }
        f
    }

    fn serialize(&self) -> Vec<u8> {
        let mut out = self.serialize_head();
        self.serialize_body(&mut out);
        out
    }

    fn serialize_head(&self) -> Vec<u8> {
        let mut out = b"\r\n".repeat(self.leading);
        out.extend_from_slice(format!("{} {} HTTP/1.1\r\n", self.method, self.target).as_bytes());
        let fields = self.fields();
        let ows: Vec<&str> = std::iter::once("")
            .chain(self.headers.iter().map(|(_, _, w)| w.as_str()))
            .collect();
        for (i, (n, v)) in fields.iter().enumerate() {
            let w = ows.get(i).copied().unwrap_or(" ");
            out.extend_from_slice(n.as_bytes());
            out.push(b':');
            out.extend_from_slice(w.as_bytes());
            out.extend_from_slice(v);
            out.extend_from_slice(w.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    fn serialize_body(&self, out: &mut Vec<u8>) {
        match &self.body {
            Body::None => {}
            Body::Length(b) => out.extend_from_slice(b),
            Body::Chunked {
                chunks,
                last_ext,
                trailers,
            } => {
                for (i, (data, ext)) in chunks.iter().enumerate() {
                    let size = if i % 2 == 0 {
                        format!("{:x}", data.len())
                    } else {
                        format!("{:04X}", data.len())
                    };
                    out.extend_from_slice(format!("{size}{ext}\r\n").as_bytes());
                    out.extend_from_slice(data);
                    out.extend_from_slice(b"\r\n");
                }
                out.extend_from_slice(format!("0{last_ext}\r\n").as_bytes());
                for (n, v, w) in trailers {
                    out.extend_from_slice(format!("{n}:{w}").as_bytes());
                    out.extend_from_slice(v);
                    out.extend_from_slice(format!("{w}\r\n").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
        }
    }

    fn framing(&self) -> Framing {
        match &self.body {
            Body::None => Framing::None,
            Body::Length(b) => Framing::Length(b.len() as u64),
            Body::Chunked { .. } => Framing::Chunked,
        }
    }

    fn req(&self) -> Req {
        Req {
            method: self.method.clone(),
            known_method: KNOWN.contains(&self.method.as_str()),
            target: self.target.clone(),
            version: Version::Http11,
            headers: self.fields(),
            framing: self.framing(),
            keep_alive: !self.close,
            expect_continue: self.expect,
            upgrade: None,
            host: self.host.clone().into_bytes(),
        }
    }

    /// The events and output the echo application must produce for this request.
    fn expect(&self, events: &mut Vec<Ev>, out: &mut Vec<u8>) {
        events.push(Ev::Request(self.req()));
        let body = self.body_bytes();
        if !body.is_empty() {
            events.push(Ev::Data(body.clone()));
        }
        let trailers = match &self.body {
            Body::Chunked { trailers, .. } => trailers
                .iter()
                .map(|(n, v, _)| (n.clone(), v.clone()))
                .collect(),
            _ => Vec::new(),
        };
        events.push(Ev::End(trailers));
        if self.expect && self.framing() != Framing::None {
            out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let mut text = format!("{} {}\n", self.method, self.target).into_bytes();
        text.extend_from_slice(&body);
        out.extend_from_slice(
            format!(
                "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nContent-Length: {}\r\n{}\r\n",
                text.len(),
                if self.close {
                    "Connection: close\r\n"
                } else {
                    ""
                }
            )
            .as_bytes(),
        );
        if self.method != "HEAD" {
            out.extend_from_slice(&text);
        }
    }
}

fn serialize_all(specs: &[Spec]) -> Vec<u8> {
    specs.iter().flat_map(Spec::serialize).collect()
}

/// Cut points from indices.
fn cuts(len: usize, idx: &[Index]) -> Vec<usize> {
    let mut c: Vec<usize> = idx.iter().map(|i| i.index(len + 1)).collect();
    c.sort_unstable();
    c.dedup();
    c
}

fn feed_split(h: &mut Harness, input: &[u8], cuts: &[usize]) {
    let mut from = 0;
    for &c in cuts {
        h.feed(&input[from..c]);
        from = c;
    }
    h.feed(&input[from..]);
}

fn run_split(input: &[u8], cuts: &[usize], limits: &Limits, answer: Answer, eof: bool) -> Outcome {
    let mut h = Harness::new(limits.clone(), answer);
    feed_split(&mut h, input, cuts);
    if eof {
        h.eof();
    }
    outcome(h)
}

fn assert_same(a: &Outcome, b: &Outcome, what: &str) -> Result<(), TestCaseError> {
    prop_assert_eq!(&a.events, &b.events, "events, {}", what);
    prop_assert_eq!(
        String::from_utf8_lossy(&a.out),
        String::from_utf8_lossy(&b.out),
        "output, {}",
        what
    );
    prop_assert_eq!(a.error, b.error, "error, {}", what);
    prop_assert_eq!(a.closed, b.closed, "closed, {}", what);
    if !a.closed {
        prop_assert_eq!(&a.leftover, &b.leftover, "leftover, {}", what);
    }
    Ok(())
}

/// Small limits, so that arbitrary input reaches them.
fn tight() -> Limits {
    Limits {
        max_request_line: 48,
        max_head: 160,
        max_headers: 6,
        max_body: 80,
        max_chunk_line: 16,
        max_chunk_ext_total: 24,
        max_trailers: 24,
        max_drain: 20,
        ..Limits::default()
    }
}

/// Pieces that make arbitrary input look like HTTP often enough to go deep.
fn fragment() -> impl Strategy<Value = Vec<u8>> {
    let pieces: &[&[u8]] = &[
        b"GET / HTTP/1.1\r\n",
        b"POST /p HTTP/1.1\r\n",
        b"HEAD /h HTTP/1.0\r\n",
        b"OPTIONS * HTTP/1.1\r\n",
        b"HTTP/1.1",
        b"Host: h\r\n",
        b"Content-Length: 5\r\n",
        b"Content-Length: ",
        b"Transfer-Encoding: chunked\r\n",
        b"Transfer-Encoding: ",
        b"Expect: 100-continue\r\n",
        b"Connection: close\r\n",
        b"Connection: keep-alive\r\n",
        b"Connection: upgrade\r\nUpgrade: x\r\n",
        b"X: y\r\n",
        b"\r\n",
        b"\r\n\r\n",
        b"\n",
        b"\r",
        b" ",
        b"\t",
        b":",
        b",",
        b";",
        b"0\r\n\r\n",
        b"5\r\nhello\r\n",
        b"0\r\nT: v\r\n\r\n",
        b";ext=1",
        b"hello",
    ];
    prop_oneof![
        4 => prop::sample::select(pieces).prop_map(<[u8]>::to_vec),
        1 => prop::collection::vec(any::<u8>(), 0..8),
        1 => "[ -~]{0,8}".prop_map(String::into_bytes),
        1 => "[0-9a-fA-F]{1,4}".prop_map(String::into_bytes),
    ]
}

/// One of `options`, mostly the first (the well-formed one).
fn pick(options: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        12 => Just(options[0].as_bytes().to_vec()),
        1 => prop::sample::select(options).prop_map(|s| s.as_bytes().to_vec()),
    ]
}

/// Messages assembled from mostly valid parts: they get past the head often, and reach the
/// body, trailer, pipelining and limit paths.
fn message() -> impl Strategy<Value = Vec<u8>> {
    let eol = || pick(&["\r\n", "\n", "\r", "", "\r\r\n"]);
    let line = (
        pick(&["", "\r\n", "\r\n\r\n", "\n"]),
        pick(&[
            "GET", "POST", "HEAD", "OPTIONS", "CONNECT", "PUT", "get", "G T", "", "X-Y",
        ]),
        pick(&[" ", "  ", "\t", ""]),
        pick(&[
            "/",
            "/a?b=c",
            "*",
            "h:80",
            "http://h/x",
            "",
            "/\x01",
            "/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        ]),
        pick(&[" ", "  ", ""]),
        pick(&[
            "HTTP/1.1",
            "HTTP/1.0",
            "HTTP/2.0",
            "http/1.1",
            "HTTP/1.1 ",
            "HTTP/1",
        ]),
        eol(),
    )
        .prop_map(|parts| {
            [
                parts.0, parts.1, parts.2, parts.3, parts.4, parts.5, parts.6,
            ]
            .concat()
        });
    let value = prop_oneof![
        4 => prop::sample::select(&[
            "h", "5", "0", "3", "3, 3", "3, 4", "-1", "99999999999999999999", "chunked",
            "gzip, chunked", "chunked, chunked", "chunked;a=b", "close", "keep-alive",
            "upgrade", "100-continue", "x", "", "a\x00b", "a\x0bb", " h ", "h h",
        ][..])
            .prop_map(|s| s.as_bytes().to_vec()),
        1 => "[ -~]{0,12}".prop_map(String::into_bytes),
    ];
    let field = (
        prop_oneof![
            4 => prop::sample::select(&["Content-Length", "Transfer-Encoding", "Connection",
                "Expect", "Upgrade", "X", "content-length", "Host"][..])
                .prop_map(|s| s.as_bytes().to_vec()),
            1 => pick(&["X", "Bad Name", "", " X", "X\x7f"]),
        ],
        pick(&[": ", ":", " :", ":\t"]),
        value,
        eol(),
    )
        .prop_map(|(n, c, v, e)| [n, c, v, e].concat());
    let host = prop_oneof![
        6 => Just(b"Host: h\r\n".to_vec()),
        2 => Just(Vec::new()),
        1 => pick(&[
            "Host: [::1]:80\r\n",
            "Host: h:\r\n",
            "Host: [v1.x]\r\n",
            "Host: h%41\r\n",
            "Host:\r\n",
            "Host: a:b:c\r\n",
            "Host: h:8o\r\n",
            "Host: 4714::abcd:8001\r\n",
            "Host: [::1\r\n",
            "Host: [zz::1]\r\n",
            "Host: [::1]x\r\n",
            "Host: u@h\r\n",
            "Host: h%4\r\n",
        ]),
    ];
    let body = prop::collection::vec(
        pick(&[
            "hello",
            "5\r\nhello\r\n",
            "0\r\n\r\n",
            "0\r\nT: v\r\n\r\n",
            "3;e=1\r\nabc\r\n",
            "x",
            "\r\n",
            "ff\r\n",
            "0\r\nT: v\r\n",
        ]),
        0..4,
    )
    .prop_map(|v| v.concat());
    (line, host, prop::collection::vec(field, 0..6), eol(), body).prop_map(
        |(line, host, fields, end, body)| [line, host, fields.concat(), end, body].concat(),
    )
}

fn junk() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        1 => prop::collection::vec(fragment(), 0..20).prop_map(|v| v.concat()),
        3 => prop::collection::vec(message(), 1..4).prop_map(|v| v.concat()),
    ]
}

#[derive(Clone, Debug)]
enum Mutation {
    Insert(Index, Vec<u8>),
    Delete(Index, usize),
    Replace(Index, u8),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<Index>(), prop::collection::vec(any::<u8>(), 1..4))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
        (any::<Index>(), 1..4usize).prop_map(|(i, n)| Mutation::Delete(i, n)),
        (
            any::<Index>(),
            prop::sample::select(&[b'\r', b'\n', b' ', b'\t', b':', b'0', b'x', 0, 0x7f, 0xff][..])
        )
            .prop_map(|(i, b)| Mutation::Replace(i, b)),
    ]
}

fn mutate(mut input: Vec<u8>, muts: &[Mutation]) -> Vec<u8> {
    for m in muts {
        match m {
            Mutation::Insert(i, bytes) => {
                let at = i.index(input.len() + 1);
                input.splice(at..at, bytes.iter().copied());
            }
            Mutation::Delete(i, n) if !input.is_empty() => {
                let at = i.index(input.len());
                let end = (at + n).min(input.len());
                input.drain(at..end);
            }
            Mutation::Replace(i, b) if !input.is_empty() => {
                let at = i.index(input.len());
                input[at] = *b;
            }
            _ => {}
        }
    }
    input
}

/// Whatever the input, after EOF: the connection is closed, the outcome does not depend on how
/// the input was split, an error is answered and sticky.
fn check_robust(input: &[u8], idx: &[Index], answer: Answer) -> Result<(), TestCaseError> {
    let limits = tight();
    let whole = run_split(input, &[], &limits, answer, true);
    let split = run_split(input, &cuts(input.len(), idx), &limits, answer, true);
    assert_same(&whole, &split, "whole vs split")?;
    let mut h = Harness::new(limits.clone(), answer);
    h.feed_bytewise(input);
    h.eof();
    let h_closed = h.conn.is_closed();
    let bytes = outcome(h);
    assert_same(&whole, &bytes, "whole vs bytewise")?;
    prop_assert!(h_closed, "after EOF everything ends: {:?}", whole.events);
    prop_assert!(whole.closed);
    prop_assert!(whole.send_errors.is_empty(), "{:?}", whole.send_errors);
    if let Some(err) = whole.error {
        prop_assert_eq!(whole.events.last(), Some(&Ev::Error(err)));
        prop_assert!(
            whole.out.ends_with(&error_response(err)),
            "the error {:?} is answered",
            err
        );
        // Sticky.
        let mut h = Harness::new(limits, answer);
        h.feed(input);
        h.eof();
        let now = h.now();
        prop_assert_eq!(
            h.conn
                .next_event(b"GET / HTTP/1.1\r\nHost: h\r\n\r\n", now)
                .err(),
            Some(err)
        );
        prop_assert_eq!(h.conn.send_full(200, &[], b"", now), Err(SendError::Closed));
        h.conn.handle_timeout(now);
        prop_assert_eq!(h.conn.error(), Some(err));
        prop_assert!(h.conn.is_closed());
    } else {
        prop_assert!(
            !whole.events.iter().any(|e| matches!(e, Ev::Error(_))),
            "{:?}",
            whole.events
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(cases(384))]

    /// (a) Any split of a valid pipelined stream gives the events and output of the model.
    #[test]
    fn valid_stream_any_split(specs in stream(), idx in prop::collection::vec(any::<Index>(), 0..24)) {
        let input = serialize_all(&specs);
        let mut events = Vec::new();
        let mut out = Vec::new();
        let mut closed = false;
        for s in &specs {
            s.expect(&mut events, &mut out);
            if s.close {
                events.push(Ev::Closed);
                closed = true;
                break;
            }
        }
        let limits = Limits::default();
        let whole = run_split(&input, &[], &limits, Answer::Echo, false);
        prop_assert_eq!(&whole.events, &events);
        prop_assert_eq!(String::from_utf8_lossy(&whole.out), String::from_utf8_lossy(&out));
        prop_assert_eq!(whole.closed, closed);
        prop_assert!(whole.error.is_none());
        prop_assert!(whole.send_errors.is_empty());
        if !closed {
            prop_assert!(whole.leftover.is_empty());
        }
        let split = run_split(&input, &cuts(input.len(), &idx), &limits, Answer::Echo, false);
        assert_same(&whole, &split, "whole vs split")?;
        let bytes = outcome(run(&input, Mode::Bytewise, &limits, Answer::Echo, false));
        assert_same(&whole, &bytes, "whole vs bytewise")?;
        // And the peer closing afterwards is clean.
        let ended = run_split(&input, &cuts(input.len(), &idx), &limits, Answer::Echo, true);
        prop_assert!(ended.closed);
        prop_assert!(ended.error.is_none());
    }

    /// (a) The same with an application that answers before reading bodies (they are drained).
    #[test]
    fn valid_stream_any_split_early_answers(specs in stream(), idx in prop::collection::vec(any::<Index>(), 0..24)) {
        let input = serialize_all(&specs);
        let limits = Limits::default();
        let whole = run_split(&input, &[], &limits, Answer::Early, false);
        prop_assert!(whole.error.is_none());
        prop_assert!(!whole.events.iter().any(|e| matches!(e, Ev::Data(_))));
        let split = run_split(&input, &cuts(input.len(), &idx), &limits, Answer::Early, false);
        assert_same(&whole, &split, "whole vs split")?;
        let bytes = outcome(run(&input, Mode::Bytewise, &limits, Answer::Early, false));
        assert_same(&whole, &bytes, "whole vs bytewise")?;
        // Every request up to the first one that closes is read.
        let want: Vec<&str> = specs
            .iter()
            .scan(false, |stop, s| {
                if *stop {
                    return None;
                }
                // Answered before its body was asked for: the connection closes after it.
                *stop = s.close || (s.expect && s.framing() != Framing::None);
                Some(s.target.as_str())
            })
            .collect();
        let got: Vec<&str> = whole.requests().iter().map(|r| r.target.as_str()).collect();
        prop_assert_eq!(got, want);
    }

    /// (b) Arbitrary HTTP-ish input in arbitrary splits.
    #[test]
    fn junk_never_panics(input in junk(), idx in prop::collection::vec(any::<Index>(), 0..16), early in any::<bool>()) {
        check_robust(&input, &idx, if early { Answer::Early } else { Answer::Echo })?;
    }

    /// (b) Raw arbitrary bytes.
    #[test]
    fn bytes_never_panic(input in prop::collection::vec(any::<u8>(), 0..300), idx in prop::collection::vec(any::<Index>(), 0..16)) {
        check_robust(&input, &idx, Answer::Echo)?;
    }

    /// (b) Valid streams with bytes inserted, deleted or replaced.
    #[test]
    fn mutated_streams_never_panic(
        specs in stream(),
        muts in prop::collection::vec(mutation(), 1..4),
        idx in prop::collection::vec(any::<Index>(), 0..16),
        early in any::<bool>(),
    ) {
        let input = mutate(serialize_all(&specs), &muts);
        check_robust(&input, &idx, if early { Answer::Early } else { Answer::Echo })?;
    }

    /// (b) The first violation in byte order wins: once a prefix of the input is refused, every
    /// longer prefix is refused with the same error (so nothing depends on how input arrives).
    #[test]
    fn head_errors_are_fixed_by_their_prefix(input in junk(), tight_limits in any::<bool>()) {
        let limits = if tight_limits { tight() } else { Limits::default() };
        let full = parse_request_head(&input, &limits).err();
        for cut in 0..input.len() {
            if let Err(err) = parse_request_head(&input[..cut], &limits) {
                prop_assert_eq!(Some(err), full, "cut {}", cut);
                break;
            }
        }
    }

    /// (c) Serialise then parse: the head parser gives back what was written, consumes exactly
    /// the head, and reports every strict prefix as incomplete.
    #[test]
    fn request_head_round_trip(s in spec()) {
        let bytes = s.serialize();
        let head_len = s.serialize_head().len();
        let limits = Limits::default();
        let (head, n) = parse_request_head(&bytes, &limits).unwrap().unwrap();
        prop_assert_eq!(n, head_len);
        prop_assert_eq!(Req::from_head(&head), s.req());
        for cut in 0..head_len {
            prop_assert!(parse_request_head(&bytes[..cut], &limits).unwrap().is_none());
        }
    }

    /// (c) The chunked decoder gives back what was encoded, whatever the split.
    #[test]
    fn chunked_round_trip(s in spec(), idx in prop::collection::vec(any::<Index>(), 0..12)) {
        let Body::Chunked { trailers, .. } = &s.body else {
            return Ok(());
        };
        let bytes = s.serialize();
        let start = parse_request_head(&bytes, &Limits::default()).unwrap().unwrap().1;
        let mut encoded = bytes[start..].to_vec();
        encoded.extend_from_slice(b"NEXT");
        let cuts = cuts(encoded.len(), &idx);
        let mut dec = ChunkedDecoder::new();
        let limits = Limits::default();
        let mut data = Vec::new();
        let mut buf: Vec<u8> = Vec::new();
        let mut fed = 0;
        let mut got_trailers = None;
        for &end in cuts.iter().chain([encoded.len()].iter()) {
            buf.extend_from_slice(&encoded[fed..end]);
            fed = end;
            loop {
                let (d, n) = dec.decode(&buf, &limits).unwrap();
                match d {
                    Decoded::Data(b) => data.extend_from_slice(b),
                    Decoded::End(t) => {
                        got_trailers = Some(
                            t.iter()
                                .map(|f| (f.name.to_string(), f.value.to_vec()))
                                .collect::<Vec<_>>(),
                        );
                    }
                    Decoded::NeedData => {}
                }
                let stop = !matches!(d, Decoded::Data(_));
                buf.drain(..n);
                if stop {
                    break;
                }
            }
            if got_trailers.is_some() {
                break;
            }
        }
        prop_assert_eq!(data, s.body_bytes());
        let want: Vec<(String, Vec<u8>)> = trailers
            .iter()
            .map(|(n, v, _)| (n.clone(), v.clone()))
            .collect();
        prop_assert_eq!(got_trailers, Some(want));
        buf.extend_from_slice(&encoded[fed..]);
        prop_assert_eq!(buf, b"NEXT".to_vec());
    }
}

// Responses, read back by a parser written here (independent of the core).

#[derive(Clone, Debug)]
struct RespSpec {
    status: u16,
    headers: Vec<(String, String)>,
    stream: bool,
    chunks: Vec<Vec<u8>>,
    trailers: Vec<(String, String)>,
    head: bool,
    http10: bool,
    close: bool,
}

fn resp_spec() -> impl Strategy<Value = RespSpec> {
    (
        prop_oneof![
            Just(200u16),
            Just(201),
            Just(204),
            Just(304),
            Just(404),
            Just(500),
            200..600u16
        ],
        prop::collection::vec((token(), ascii_value()), 0..5),
        any::<bool>(),
        prop::collection::vec(prop::collection::vec(any::<u8>(), 0..30), 0..4),
        prop::collection::vec((token(), ascii_value()), 0..3),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
        prop::bool::weighted(0.2),
    )
        .prop_map(
            |(status, headers, stream, chunks, trailers, head, http10, close)| {
                let framing = |n: &String| {
                    n.eq_ignore_ascii_case("content-length")
                        || n.eq_ignore_ascii_case("transfer-encoding")
                        || n.eq_ignore_ascii_case("connection")
                };
                RespSpec {
                    status,
                    headers: headers.into_iter().filter(|(n, _)| !framing(n)).collect(),
                    stream: stream && status != 204,
                    chunks: if status == 204 { Vec::new() } else { chunks },
                    trailers,
                    head,
                    http10,
                    close,
                }
            },
        )
}

/// Parses one response from `bytes`: status, fields, body (by its framing) and trailers, and
/// the number of bytes it took (None when close-delimited: it takes the rest).
#[allow(clippy::type_complexity)]
fn parse_response(
    bytes: &[u8],
    head_request: bool,
) -> (
    u16,
    Vec<(String, Vec<u8>)>,
    Vec<u8>,
    Vec<(String, Vec<u8>)>,
    Option<usize>,
) {
    let end = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("head end")
        + 4;
    let head = std::str::from_utf8(&bytes[..end - 4]).expect("ascii head");
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    assert!(status_line.starts_with("HTTP/1.1 "), "{status_line}");
    let status: u16 = status_line[9..12].parse().unwrap();
    assert_eq!(&status_line[12..13], " ");
    let mut fields = Vec::new();
    for line in lines {
        let (n, v) = line.split_once(": ").expect("field line");
        assert!(!n.is_empty() && n.bytes().all(|b| b.is_ascii_graphic() && b != b':'));
        assert!(!v.bytes().any(|b| b.is_ascii_control() && b != b'\t'));
        fields.push((n.to_string(), v.as_bytes().to_vec()));
    }
    let get = |name: &str| {
        fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let rest = &bytes[end..];
    if head_request || status == 204 || status == 304 {
        return (status, fields, Vec::new(), Vec::new(), Some(end));
    }
    if let Some(cl) = get("Content-Length") {
        let n: usize = std::str::from_utf8(&cl).unwrap().parse().unwrap();
        return (
            status,
            fields,
            rest[..n].to_vec(),
            Vec::new(),
            Some(end + n),
        );
    }
    if get("Transfer-Encoding").as_deref() == Some(b"chunked") {
        // An independent, simple chunked reader.
        let mut pos = 0;
        let mut body = Vec::new();
        loop {
            let lf = rest[pos..].iter().position(|&b| b == b'\n').unwrap() + pos;
            let size = usize::from_str_radix(std::str::from_utf8(&rest[pos..lf - 1]).unwrap(), 16)
                .unwrap();
            pos = lf + 1;
            if size == 0 {
                break;
            }
            body.extend_from_slice(&rest[pos..pos + size]);
            assert_eq!(&rest[pos + size..pos + size + 2], b"\r\n");
            pos += size + 2;
        }
        let mut trailers = Vec::new();
        loop {
            let lf = rest[pos..].iter().position(|&b| b == b'\n').unwrap() + pos;
            let line = std::str::from_utf8(&rest[pos..lf - 1]).unwrap();
            pos = lf + 1;
            if line.is_empty() {
                break;
            }
            let (n, v) = line.split_once(": ").unwrap();
            trailers.push((n.to_string(), v.as_bytes().to_vec()));
        }
        return (status, fields, body, trailers, Some(end + pos));
    }
    (status, fields, rest.to_vec(), Vec::new(), None)
}

proptest! {
    #![proptest_config(cases(384))]

    /// What the application sends is what a client reads, framed as the request allows.
    #[test]
    fn responses_read_back(r in resp_spec()) {
        let request = match (r.head, r.http10) {
            (true, true) => "HEAD / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            (true, false) => "HEAD / HTTP/1.1\r\nHost: h\r\n\r\n",
            (false, true) => "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
            (false, false) => "GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        };
        let mut h = Harness::manual();
        h.feed(request.as_bytes());
        let mut headers: Vec<(&str, &[u8])> =
            r.headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
        if r.close {
            headers.push(("Connection", b"close"));
        }
        let body: Vec<u8> = r.chunks.concat();
        let kind = if r.stream { BodyKind::Stream } else { BodyKind::Length(body.len() as u64) };
        let trailers: Vec<(&str, &[u8])> =
            r.trailers.iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
        let now = h.now();
        h.conn.send_response(&Response { status: r.status, headers: &headers, body: kind }, now).unwrap();
        for c in &r.chunks {
            h.conn.send_data(c, now.instant).unwrap();
        }
        h.conn.send_end(&trailers, now.instant).unwrap();
        h.feed(b"");
        let (status, fields, got_body, got_trailers, used) = parse_response(&h.out, r.head);
        prop_assert_eq!(status, r.status);
        // The application's fields come back in order after Date; then the core's framing.
        prop_assert_eq!(&fields[0], &("Date".to_string(), DATE.as_bytes().to_vec()));
        let app: Vec<(String, Vec<u8>)> = r
            .headers
            .iter()
            .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
            .collect();
        prop_assert_eq!(&fields[1..1 + app.len()], &app[..]);
        let no_body = r.head || r.status == 204 || r.status == 304;
        if no_body {
            prop_assert!(got_body.is_empty());
            prop_assert_eq!(used, Some(h.out.len()), "nothing after a body-less response");
        } else {
            prop_assert_eq!(&got_body, &body);
        }
        let chunked = r.stream && !r.http10 && r.status != 204 && r.status != 304;
        if chunked && !r.head {
            let want: Vec<(String, Vec<u8>)> = r
                .trailers
                .iter()
                .map(|(n, v)| (n.clone(), v.clone().into_bytes()))
                .collect();
            prop_assert_eq!(got_trailers, want);
        }
        let close_delimited = r.stream && r.http10 && !no_body;
        let closes = r.close || (r.stream && r.http10);
        prop_assert_eq!(used.is_none(), close_delimited);
        prop_assert_eq!(h.conn.is_closed(), closes, "{:?}", h.events);
        let conn_field = fields.iter().find(|(n, _)| n == "Connection").map(|(_, v)| v.clone());
        let want_conn = if closes {
            Some(b"close".to_vec())
        } else if r.http10 {
            Some(b"keep-alive".to_vec())
        } else {
            None
        };
        prop_assert_eq!(conn_field, want_conn);
    }
}

// Random driver actions, with time.

#[derive(Clone, Debug)]
enum Action {
    Feed(Vec<u8>),
    Advance(u64),
    Eof,
    Transmit(Index),
    Answer(u16, bool),
    Data(Vec<u8>),
    End,
}

fn action() -> impl Strategy<Value = Action> {
    prop_oneof![
        2 => fragment().prop_map(Action::Feed),
        2 => message().prop_map(Action::Feed),
        2 => (0..25u64).prop_map(Action::Advance),
        1 => Just(Action::Eof),
        2 => any::<Index>().prop_map(Action::Transmit),
        2 => (prop::sample::select(&[101u16, 200, 204, 304, 404][..]), any::<bool>())
            .prop_map(|(s, stream)| Action::Answer(s, stream)),
        2 => prop::collection::vec(any::<u8>(), 0..10).prop_map(Action::Data),
        1 => Just(Action::End),
    ]
}

proptest! {
    #![proptest_config(cases(384))]

    /// Any interleaving of input, time, output progress and application calls: no panic, errors
    /// typed and sticky, and no deadline left in the past.
    #[test]
    fn random_driving(actions in prop::collection::vec(action(), 0..40)) {
        let limits = Limits {
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(20),
            body_timeout: Duration::from_secs(15),
            send_timeout: Duration::from_secs(30),
            ..tight()
        };
        let mut h = Harness::new(limits, Answer::Manual);
        h.auto_transmit = false;
        let mut sticky: Option<Error> = None;
        for a in actions {
            let now = h.now();
            match a {
                Action::Feed(b) => h.feed(&b),
                Action::Advance(s) => h.advance(Duration::from_secs(s)),
                Action::Eof => h.eof(),
                Action::Transmit(i) => {
                    let n = i.index(h.conn.transmit().len() + 1);
                    h.conn.advance_transmit(n, now.instant);
                    h.pump();
                }
                Action::Answer(status, stream) => {
                    let kind = if stream && status != 101 && status != 204 {
                        BodyKind::Stream
                    } else {
                        BodyKind::Length(0)
                    };
                    let r = h.conn.send_response(&Response { status, headers: &[], body: kind }, now);
                    if sticky.is_some() {
                        prop_assert_eq!(r, Err(SendError::Closed));
                    }
                    h.pump();
                }
                Action::Data(d) => {
                    let _ = h.conn.send_data(&d, now.instant);
                }
                Action::End => {
                    let _ = h.conn.send_end(&[], now.instant);
                    h.pump();
                }
            }
            let now = h.instant();
            if let Some(t) = h.conn.poll_timeout() {
                if t <= now {
                    // A driver would call handle_timeout now: afterwards nothing may be due.
                    h.advance(Duration::ZERO);
                    prop_assert!(h.conn.poll_timeout().is_none_or(|t| t > now), "deadline in the past");
                }
            }
            match (sticky, h.conn.error()) {
                (Some(e), now_err) => prop_assert_eq!(now_err, Some(e), "errors are sticky"),
                (None, Some(e)) => sticky = Some(e),
                (None, None) => {}
            }
            if sticky.is_some() {
                prop_assert!(h.conn.is_closed());
            }
        }
    }
}
