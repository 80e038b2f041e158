//! The header section: field syntax, limits, Host, Content-Length, Transfer-Encoding, Expect,
//! Connection.

mod common;

use common::*;
use weft_core::{Error, Framing, Limits, Version};

/// A GET with `fields` (each a full line without CRLF) after a valid Host.
fn with_fields(fields: &[&[u8]]) -> Vec<u8> {
    let mut input = b"GET / HTTP/1.1\r\nHost: h\r\n".to_vec();
    for f in fields {
        input.extend_from_slice(f);
        input.extend_from_slice(b"\r\n");
    }
    input.extend_from_slice(b"\r\n");
    input
}

/// A POST with body `body` and the given framing fields.
fn post(fields: &[&str], body: &[u8]) -> Vec<u8> {
    let mut input = b"POST /p HTTP/1.1\r\nHost: h\r\n".to_vec();
    for f in fields {
        input.extend_from_slice(f.as_bytes());
        input.extend_from_slice(b"\r\n");
    }
    input.extend_from_slice(b"\r\n");
    input.extend_from_slice(body);
    input
}

#[test]
fn fields_are_delivered_in_order_with_ows_trimmed() {
    let r = assert_accepted(&with_fields(&[
        b"X-A: 1",
        b"x-b:2",
        b"X-C: \t spaced  value \t ",
        b"X-Empty:",
        b"X-Blank:   ",
        b"X-Colon: a:b::",
        b"X-Obs-Text: caf\xc3\xa9 \xff",
        b"X-A: again",
        b"!#$%&'*+-.^_`|~09azAZ: token chars",
    ]));
    let want: Vec<(String, Vec<u8>)> = [
        ("Host", &b"h"[..]),
        ("X-A", b"1"),
        ("x-b", b"2"),
        ("X-C", b"spaced  value"),
        ("X-Empty", b""),
        ("X-Blank", b""),
        ("X-Colon", b"a:b::"),
        ("X-Obs-Text", b"caf\xc3\xa9 \xff"),
        ("X-A", b"again"),
        ("!#$%&'*+-.^_`|~09azAZ", b"token chars"),
    ]
    .iter()
    .map(|(n, v)| (n.to_string(), v.to_vec()))
    .collect();
    assert_eq!(r.headers, want);
}

#[test]
fn whitespace_before_colon_is_refused() {
    for f in [
        &b"X-A : 1"[..],
        b"X-A\t: 1",
        b"Host : h",
        b"Content-Length : 5",
    ] {
        assert_rejected(&with_fields(&[f]), Error::BadHeader);
    }
}

#[test]
fn obs_fold_is_refused() {
    assert_rejected(&with_fields(&[b"X-A: 1", b" continued"]), Error::BadHeader);
    assert_rejected(
        &with_fields(&[b"X-A: 1", b"\tcontinued: x"]),
        Error::BadHeader,
    );
    // Whitespace before the first field line.
    assert_rejected(b"GET / HTTP/1.1\r\n Host: h\r\n\r\n", Error::BadHeader);
    assert_rejected(
        b"GET / HTTP/1.1\r\n\tHost: h\r\nHost: h\r\n\r\n",
        Error::BadHeader,
    );
}

#[test]
fn bad_names_are_refused() {
    for f in [
        &b": v"[..],
        b"X A: v",
        b"X(A): v",
        b"X/A: v",
        b"X\"A: v",
        b"X@A: v",
        b"X\x00A: v",
        b"X\x7fA: v",
        b"X\xc3\xa9: v",
        b"no colon at all",
        b"[x]: v",
    ] {
        assert_rejected(&with_fields(&[f]), Error::BadHeader);
    }
}

#[test]
fn control_characters_in_values_are_refused() {
    for b in (0u8..0x20)
        .filter(|&b| b != b'\t' && b != b'\n')
        .chain([0x7f])
    {
        let mut f = b"X-A: a".to_vec();
        f.push(b);
        f.extend_from_slice(b"b");
        assert_rejected(&with_fields(&[&f]), Error::BadHeader);
        // At the edges too (where whitespace trimming happens).
        let mut f = b"X-A:".to_vec();
        f.push(b);
        assert_rejected(&with_fields(&[&f]), Error::BadHeader);
    }
}

#[test]
fn bare_cr_and_bare_lf_are_refused() {
    assert_rejected(b"GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n", Error::BadHeader);
    assert_rejected(b"GET / HTTP/1.1\r\nHost: h\nX: y\r\n\r\n", Error::BadHeader);
    assert_rejected(b"GET / HTTP/1.1\r\nHost: h\r\n\n", Error::BadHeader);
    assert_rejected(b"GET / HTTP/1.1\r\nHost: h\n\r\n", Error::BadHeader);
    assert_rejected(b"GET / HTTP/1.1\r\nHost: h\n\n", Error::BadHeader);
    // A CR that is not followed by LF at the end of the section.
    assert_rejected(
        b"GET / HTTP/1.1\r\nHost: h\r\n\rX\r\n\r\n",
        Error::BadHeader,
    );
}

#[test]
fn header_count_limit_is_431() {
    let limits = Limits {
        max_headers: 5,
        ..Limits::default()
    };
    let fields: Vec<Vec<u8>> = (0..4).map(|i| format!("X-{i}: v").into_bytes()).collect();
    let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
    // Host plus four: exactly the limit.
    let o = check_with(&with_fields(&refs), &limits, Answer::Echo);
    assert_eq!(o.req().headers.len(), 5);
    let fields: Vec<Vec<u8>> = (0..5).map(|i| format!("X-{i}: v").into_bytes()).collect();
    let refs: Vec<&[u8]> = fields.iter().map(Vec::as_slice).collect();
    assert_rejected_with(&with_fields(&refs), &limits, Error::TooManyHeaders);
    assert_eq!(Error::TooManyHeaders.status(), 431);
}

#[test]
fn head_size_limit_is_431() {
    let limits = Limits {
        max_head: 100,
        ..Limits::default()
    };
    let base = b"GET / HTTP/1.1\r\nHost: h\r\nX: \r\n\r\n".len();
    let fill = |n: usize| {
        let mut input = b"GET / HTTP/1.1\r\nHost: h\r\nX: ".to_vec();
        input.extend_from_slice(&b"v".repeat(n));
        input.extend_from_slice(b"\r\n\r\n");
        input
    };
    let exact = fill(100 - base);
    assert_eq!(exact.len(), 100);
    let o = check_with(&exact, &limits, Answer::Echo);
    assert!(o.error.is_none(), "{:?}", o.events);
    assert_rejected_with(&fill(101 - base), &limits, Error::HeadTooLarge);
    assert_rejected_with(&fill(5000), &limits, Error::HeadTooLarge);
    // A head that never ends is refused once it passes the limit.
    let endless = b"GET / HTTP/1.1\r\nHost: h\r\nX: "
        .iter()
        .chain(&[b'v'; 200]);
    let endless: Vec<u8> = endless.copied().collect();
    let o = check_with(&endless, &limits, Answer::Echo);
    assert_eq!(o.events, vec![Ev::Error(Error::HeadTooLarge)]);
    let many_lines: Vec<u8> = b"GET / HTTP/1.1\r\n"
        .iter()
        .chain(&b"A: b\r\n".repeat(40))
        .copied()
        .collect();
    let o = check_with(&many_lines, &limits, Answer::Echo);
    assert_eq!(o.events, vec![Ev::Error(Error::HeadTooLarge)]);
}

#[test]
fn host_rules() {
    // HTTP/1.1 needs exactly one.
    assert_rejected(b"GET / HTTP/1.1\r\n\r\n", Error::BadHost);
    assert_rejected(
        b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
        Error::BadHost,
    );
    assert_rejected(
        b"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
        Error::BadHost,
    );
    // HTTP/1.0 may omit it, but not repeat it.
    assert_eq!(assert_accepted(b"GET / HTTP/1.0\r\n\r\n").host, b"");
    assert_rejected(
        b"GET / HTTP/1.0\r\nHost: a\r\nHost: a\r\n\r\n",
        Error::BadHost,
    );
    for ok in [
        &b"example.com"[..],
        b"example.com:8080",
        b"EXAMPLE.com",
        b"127.0.0.1:80",
        b"[::1]:8080",
        b"[v1.fe80::a+en1]",
        b"xn--bcher-kva.example",
        b"a_b~c!$&'()*+,;=%20",
    ] {
        let mut input = b"GET / HTTP/1.1\r\nHost: ".to_vec();
        input.extend_from_slice(ok);
        input.extend_from_slice(b"\r\n\r\n");
        assert_eq!(assert_accepted(&input).host, ok);
    }
    for bad in [
        &b"a b"[..],
        b"a/b",
        b"user@host",
        b"a\"b",
        b"a<b>",
        b"caf\xc3\xa9",
        b"a\\b",
        b"a?b",
        b"a#b",
        b"a\tb",
    ] {
        let mut input = b"GET / HTTP/1.1\r\nHost: ".to_vec();
        input.extend_from_slice(bad);
        input.extend_from_slice(b"\r\n\r\n");
        assert_rejected(&input, Error::BadHost);
        input[13] = b'0';
        assert_rejected(&input, Error::BadHost);
    }
}

/// A GET with `host` as its Host value, in HTTP/1.1 and HTTP/1.0.
fn with_host(host: &[u8]) -> [Vec<u8>; 2] {
    ["HTTP/1.1", "HTTP/1.0"].map(|version| {
        let mut input = format!("GET / {version}\r\nHost: ").into_bytes();
        input.extend_from_slice(host);
        input.extend_from_slice(b"\r\n\r\n");
        input
    })
}

#[test]
fn host_is_uri_host_and_optional_port() {
    // RFC 9110 7.2: Host = uri-host [ ":" port ], port = *DIGIT; uri-host is RFC 3986's host:
    // a reg-name (unreserved, pct-encoded, sub-delims), an IPv4 address (which is a reg-name
    // too) or an IP-literal (IPv6address or IPvFuture in brackets).
    for ok in [
        &b"example.com:"[..],
        b"example.com:0123456789",
        b"ex%41mple.com",
        b"%7E",
        b"1.2.3.999",
        b"[::1]",
        b"[::1]:",
        b"[::]",
        b"[2001:DB8::1]:443",
        b"[1:2:3:4:5:6:7:8]",
        b"[1:2:3:4:5:6:7::]",
        b"[::2:3:4:5:6:7:8]",
        b"[1:2:3:4:5:6:1.2.3.4]",
        b"[::ffff:192.0.2.1]:80",
        b"[v1.x]",
        b"[V7.a:b]",
        b"[vF.!$&'()*+,;=:-._~]",
    ] {
        for input in with_host(ok) {
            assert_eq!(assert_accepted(&input).host, ok);
        }
    }
    for bad in [
        // Ports: digits only, one colon.
        &b"a:b:c"[..],
        b"example.com:8o",
        b"example.com:-1",
        b"example.com:+80",
        b"example.com:80:",
        b"example.com::80",
        // An IPv6 address needs its brackets.
        b"4714::abcd:8001",
        b"::1",
        // Malformed IP-literals.
        b"[::1",
        b"[zz::1]",
        b"[::1]x",
        b"[::1]:x",
        b"[::1]::80",
        b"[]",
        b"[1::2::3]",
        b"[1:2:3:4:5:6:7:8:9]",
        b"[1:2:3:4::5:6:7:8]",
        b"[12345::]",
        b"[1.2.3.4]",
        b"[::1.2.3.04]",
        b"[::1%25eth0]",
        b"[fe80::1%eth0]",
        b"[v1.]",
        b"[v.x]",
        b"[vg.x]",
        b"[v1x]",
        b"[v1.x/]",
        b"[v1.x",
        b"x[::1]",
        b"a]",
        b"a[",
        // Percent-encoding needs two hex digits.
        b"ex%4",
        b"ex%zzample",
        b"%",
        b"a%2",
        // No host before the port.
        b":80",
        b":",
    ] {
        for input in with_host(bad) {
            assert_rejected(&input, Error::BadHost);
        }
    }
}

#[test]
fn empty_host_is_400() {
    // An http URI has a non-empty host (RFC 9110 4.2.1), and a Host field with none names no
    // origin this server could be (RFC 9110 7.2).
    for input in with_host(b"") {
        assert_rejected(&input, Error::BadHost);
    }
    assert_rejected(b"GET / HTTP/1.1\r\nHost:   \r\n\r\n", Error::BadHost);
    assert_rejected(b"GET http://h/ HTTP/1.1\r\nHost:\r\n\r\n", Error::BadHost);
}

#[test]
fn content_length_body() {
    let o = check(&post(&["Content-Length: 5"], b"hello"));
    let r = o.req();
    assert_eq!(r.framing, Framing::Length(5));
    assert_eq!(
        o.events,
        vec![
            Ev::Request(r.clone()),
            Ev::Data(b"hello".to_vec()),
            Ev::End(vec![])
        ]
    );
    assert_eq!(o.out, echo_response("POST /p\nhello", None));
    // Leading zeros and surrounding whitespace are fine.
    assert_eq!(
        check(&post(&["Content-Length:  005 "], b"hello"))
            .req()
            .framing,
        Framing::Length(5)
    );
    // Zero is no body.
    let o = check(&post(&["Content-Length: 0"], b""));
    assert_eq!(o.req().framing, Framing::None);
    assert_eq!(o.events.len(), 2);
}

#[test]
fn content_length_must_be_digits() {
    for v in [
        "+5",
        "-5",
        "5 5",
        "5a",
        "0x5",
        "",
        "1e3",
        "5.0",
        "five",
        "\u{0665}",
        "18446744073709551616",
        "99999999999999999999999",
        "5,",
        ",5",
        "5,,5",
        "5, 6",
        "5;5",
    ] {
        let field = format!("Content-Length: {v}");
        assert_rejected(&post(&[&field], b"hello"), Error::BadContentLength);
    }
}

#[test]
fn content_length_duplicates() {
    // Equal values, as separate fields or as a list, are one length.
    for fields in [
        &["Content-Length: 5", "Content-Length: 5"][..],
        &["Content-Length: 5, 5"],
        &["Content-Length: 5,5,5"],
        &["Content-Length: 5", "Content-Length: 05"],
    ] {
        let o = check(&post(fields, b"hello"));
        assert_eq!(o.req().framing, Framing::Length(5), "{fields:?}");
        assert_eq!(o.body(), b"hello");
    }
    for fields in [
        &["Content-Length: 5", "Content-Length: 6"][..],
        &["Content-Length: 5, 6"],
        &["Content-Length: 5", "Content-Length: 5, 6"],
        &["Content-Length: 5", "Content-Length: "],
    ] {
        assert_rejected(&post(fields, b"hello"), Error::BadContentLength);
    }
}

#[test]
fn content_length_over_the_body_limit_is_413() {
    let limits = Limits {
        max_body: 10,
        ..Limits::default()
    };
    let o = check_with(
        &post(&["Content-Length: 10"], b"0123456789"),
        &limits,
        Answer::Echo,
    );
    assert_eq!(o.body(), b"0123456789");
    assert_rejected_with(
        &post(&["Content-Length: 11"], b""),
        &limits,
        Error::BodyTooLarge,
    );
    assert_rejected(
        &post(&["Content-Length: 18446744073709551615"], b""),
        Error::BodyTooLarge,
    );
    assert_eq!(Error::BodyTooLarge.status(), 413);
}

#[test]
fn transfer_encoding_chunked_forms() {
    for v in [
        "chunked",
        "Chunked",
        "CHUNKED",
        " chunked\t",
        "chunked,",
        ", chunked",
    ] {
        let field = format!("Transfer-Encoding: {v}");
        let o = check(&post(&[&field], b"5\r\nhello\r\n0\r\n\r\n"));
        assert_eq!(o.req().framing, Framing::Chunked, "{v:?}");
        assert_eq!(o.body(), b"hello");
    }
}

#[test]
fn transfer_encoding_refusals() {
    let body = b"5\r\nhello\r\n0\r\n\r\n";
    // chunked more than once, not last (the length cannot be determined, RFC 9112 section
    // 6.3), with parameters, or malformed: 400.
    for fields in [
        &["Transfer-Encoding: chunked, chunked"][..],
        &["Transfer-Encoding: chunked", "Transfer-Encoding: chunked"],
        &["Transfer-Encoding: chunked;x=1"],
        &["Transfer-Encoding: chunked ;x=1"],
        &["Transfer-Encoding: "],
        &["Transfer-Encoding: ,"],
        &["Transfer-Encoding: chunked x"],
        &["Transfer-Encoding: \"chunked\""],
        &["Transfer-Encoding: chunked", "Transfer-Encoding: "],
        &["Transfer-Encoding: xchunked"],
        &["Transfer-Encoding: chunkedx"],
        &["Transfer-Encoding: identity"],
        &["Transfer-Encoding: gzip"],
        &["Transfer-Encoding: chunked, gzip"],
        &["Transfer-Encoding: chunked", "Transfer-Encoding: gzip"],
    ] {
        assert_rejected(&post(fields, body), Error::BadTransferEncoding);
    }
    // chunked last after a well-formed coding this server does not decode: 501.
    for fields in [
        &["Transfer-Encoding: gzip, chunked"][..],
        &["Transfer-Encoding: gzip", "Transfer-Encoding: chunked"],
        &["Transfer-Encoding: gzip;q=1, chunked"],
        &["Transfer-Encoding: identity, chunked"],
    ] {
        assert_rejected(&post(fields, body), Error::UnsupportedTransferEncoding);
    }
    assert_eq!(Error::UnsupportedTransferEncoding.status(), 501);
}

#[test]
fn transfer_encoding_in_http10_is_400() {
    assert_rejected(
        b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        Error::BadTransferEncoding,
    );
}

#[test]
fn transfer_encoding_with_content_length_is_400() {
    let body = b"5\r\nhello\r\n0\r\n\r\n";
    for fields in [
        &["Transfer-Encoding: chunked", "Content-Length: 15"][..],
        &["Content-Length: 15", "Transfer-Encoding: chunked"],
        &["Content-Length: 0", "Transfer-Encoding: chunked"],
        &["Content-Length: x", "Transfer-Encoding: chunked"],
        &["Content-Length: 3", "Transfer-Encoding: gzip, chunked"],
    ] {
        assert_rejected(
            &post(fields, body),
            Error::ContentLengthWithTransferEncoding,
        );
    }
}

#[test]
fn expect_100_continue_is_recognised() {
    for v in ["100-continue", "100-Continue", " 100-CONTINUE "] {
        let field = format!("Expect: {v}");
        let o = check(&post(&[&field, "Content-Length: 2"], b"hi"));
        assert!(o.req().expect_continue, "{v:?}");
    }
    // Ignored in HTTP/1.0.
    let o = check(b"POST / HTTP/1.0\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi");
    assert!(!o.req().expect_continue);
    assert!(!o.out_str().contains("100 Continue"));
}

#[test]
fn unknown_expectation_is_417() {
    for v in ["100-continue, foo", "foo", "", "100-continued", "100"] {
        let field = format!("Expect: {v}");
        assert_rejected(
            &post(&[&field, "Content-Length: 2"], b"hi"),
            Error::UnsupportedExpectation,
        );
    }
    let o = check(b"GET / HTTP/1.1\r\nHost: h\r\nExpect: x\r\n\r\n");
    assert_eq!(o.events, vec![Ev::Error(Error::UnsupportedExpectation)]);
    assert!(o
        .out_str()
        .starts_with("HTTP/1.1 417 Expectation Failed\r\n"));
}

#[test]
fn connection_options() {
    let r = assert_accepted(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Close\r\n\r\n");
    assert!(!r.keep_alive);
    let r = assert_accepted(b"GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n");
    assert!(r.keep_alive);
    let r = assert_accepted(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
    assert!(r.keep_alive);
    assert_eq!(r.version, Version::Http10);
    let r =
        assert_accepted(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\nConnection: close\r\n\r\n");
    assert!(!r.keep_alive);
}

#[test]
fn upgrade_is_reported_only_with_connection_upgrade() {
    let r = assert_accepted(
        b"GET /ws HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    assert_eq!(r.upgrade.as_deref(), Some(&b"websocket"[..]));
    let r = assert_accepted(b"GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\n\r\n");
    assert_eq!(r.upgrade, None);
    // HTTP/1.0 has no upgrade (RFC 9110 section 7.8: the field is ignored).
    let r =
        assert_accepted(b"GET /ws HTTP/1.0\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n");
    assert_eq!(r.upgrade, None);
}

#[test]
fn first_violation_wins_and_no_request_is_reported() {
    // A bad field line after a bad Host: the field line is what is refused (in byte order).
    assert_rejected(
        b"GET / HTTP/1.1\r\nHost: a b\r\nX : y\r\n\r\n",
        Error::BadHeader,
    );
}
