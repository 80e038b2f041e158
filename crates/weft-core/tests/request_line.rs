//! The request line: forms of the target, methods, versions, spacing, length limits.

mod common;

use common::*;
use weft_core::{parse_request_head, Error, Framing, Limits, Version};

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: example.com\r\n\r\n").into_bytes()
}

#[test]
fn simple_get_is_answered_and_kept_alive() {
    let o = check(b"GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n");
    let r = o.req();
    assert_eq!(r.method, "GET");
    assert_eq!(r.target, "/index.html?x=1");
    assert_eq!(r.version, Version::Http11);
    assert_eq!(r.host, b"example.com");
    assert_eq!(r.framing, Framing::None);
    assert!(r.keep_alive);
    assert_eq!(
        o.events,
        vec![Ev::Request(r.clone()), Ev::End(vec![])],
        "no Data for a request without a body"
    );
    assert_eq!(
        o.out_str(),
        String::from_utf8(lit(
            "HTTP/1.1 200 OK\r\nDate: {D}\r\nContent-Length: 20\r\n\r\nGET /index.html?x=1\n"
        ))
        .unwrap()
    );
    assert!(!o.closed);
}

#[test]
fn path_and_query_accessors() {
    let input = get("/a/b?c=d?e");
    let (head, n) = parse_request_head(&input, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(n, input.len());
    assert_eq!(head.path(), "/a/b");
    assert_eq!(head.query(), Some("c=d?e"));
    let input = get("/plain");
    let (head, _) = parse_request_head(&input, &Limits::default())
        .unwrap()
        .unwrap();
    assert_eq!(head.path(), "/plain");
    assert_eq!(head.query(), None);
}

#[test]
fn origin_and_absolute_forms() {
    for target in [
        "/",
        "/a%20b/c;p?q=1&r=%2F",
        "/~user/!$&'()*+,;=:@",
        "http://example.com/x",
        "https://example.com:8443/",
        "svn+ssh://host/path",
        "urn:isbn:0451450523",
    ] {
        assert_eq!(assert_accepted(&get(target)).target, target);
    }
}

#[test]
fn bad_targets() {
    for target in ["", "a/b", "?x", "1http://x/", "://x", "*"] {
        assert_rejected(&get(target), Error::BadRequestLine);
    }
    // A fragment is not part of any request-target form (RFC 9112 section 3.2): origin-form
    // is absolute-path ["?" query], absolute-form an absolute-URI (no fragment).
    for target in ["/a#frag", "/#", "/a?q#f", "http://example.com/x#f"] {
        assert_rejected(&get(target), Error::BadRequestLine);
    }
    // Controls, DEL and non-ASCII bytes in the target.
    for bad in [&b"/a\x01b"[..], b"/a\x7fb", b"/a\xffb", b"/a\tb", b"/a\rb"] {
        let mut input = b"GET ".to_vec();
        input.extend_from_slice(bad);
        input.extend_from_slice(b" HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_rejected(&input, Error::BadRequestLine);
    }
}

#[test]
fn absolute_form_authority_is_checked() {
    // An http(s) target is "http" "://" authority path-abempty [ "?" query ] (RFC 9110 4.2.1),
    // its authority a non-empty uri-host and an optional port, without userinfo (4.2.4).
    for target in [
        "http://h:/",
        "http://h:8080",
        "http://h?x=1",
        "HTTP://H/x",
        "hTTpS://h:443/x",
        "http://[::1]:8080/x",
        "http://[v1.x]/",
        "http://h%41/",
        "http://1.2.3.4/",
        // Other schemes are not http URIs: their authority is theirs.
        "svn+ssh://user@host/path",
        "ftp://a:b:c/",
    ] {
        assert_eq!(assert_accepted(&get(target)).target, target);
    }
    for target in [
        "http://foo@host/",
        "http://user:pw@host/",
        "https://@host/",
        "http://host@/",
        "HTTP://a@b/",
        "http:///x",
        "http://",
        "http://?x",
        "http://:80/",
        "http://a:b:c/",
        "http://h:8o/",
        "http://4714::abcd:8001/",
        "http://[::1/",
        "http://[zz::1]/",
        "http://[::1]x/",
        "http://h%zz/",
        "http://h\\x/",
        "http:/x",
        "http:x",
        "https:",
        // absolute-form is an absolute-URI: no fragment.
        "http://h#f",
    ] {
        assert_rejected(&get(target), Error::BadRequestLine);
    }
}

#[test]
fn connect_authority_is_checked() {
    // authority-form = uri-host ":" port (RFC 9112 3.2.3): no userinfo, a valid host.
    for target in ["h:", "[v1.x]:1", "1.2.3.4:80", "h%41:80"] {
        let input = format!("CONNECT {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_eq!(assert_accepted(input.as_bytes()).target, target);
    }
    for target in [
        "user@h:443",
        "h:44x",
        "[::1:443",
        "[::1]",
        ":443",
        "a:b:443",
        "4714::abcd:8001",
        "h:443?x",
    ] {
        let input = format!("CONNECT {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_rejected(input.as_bytes(), Error::BadRequestLine);
    }
}

#[test]
fn asterisk_form_only_for_options() {
    let r = assert_accepted(b"OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!((r.method.as_str(), r.target.as_str()), ("OPTIONS", "*"));
    for method in ["GET", "HEAD", "POST", "DELETE", "FOO"] {
        let input = format!("{method} * HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_rejected(input.as_bytes(), Error::BadRequestLine);
    }
    // OPTIONS with other forms is fine.
    assert_accepted(b"OPTIONS /x HTTP/1.1\r\nHost: h\r\n\r\n");
}

#[test]
fn connect_takes_authority_form_only() {
    let r = assert_accepted(b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n");
    assert_eq!(r.target, "example.com:443");
    assert_accepted(b"CONNECT [::1]:443 HTTP/1.1\r\nHost: [::1]:443\r\n\r\n");
    for target in ["/", "/x:1", "example.com", "http://example.com:443/", "*"] {
        let input = format!("CONNECT {target} HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_rejected(input.as_bytes(), Error::BadRequestLine);
    }
}

#[test]
fn methods_known_and_unknown() {
    for method in [
        "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE",
    ] {
        let input = format!("{method} / HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = assert_accepted(input.as_bytes());
        assert_eq!(r.method, method);
        assert!(r.known_method, "{method}");
    }
    // Any token is a method; case matters.
    for method in ["get", "Get", "PROPFIND", "M-SEARCH", "X!#$%&'*+-.^_`|~9"] {
        let input = format!("{method} / HTTP/1.1\r\nHost: h\r\n\r\n");
        let r = assert_accepted(input.as_bytes());
        assert_eq!(r.method, method);
        assert!(!r.known_method, "{method}");
    }
    for bad in ["G(T", "G\"T", "GE:T", "GE/T", "G@T", "G\x01T", "G\x7fT"] {
        let input = format!("{bad} / HTTP/1.1\r\nHost: h\r\n\r\n");
        assert_rejected(input.as_bytes(), Error::BadRequestLine);
    }
    assert_rejected(
        b"G\xc3\xa9T / HTTP/1.1\r\nHost: h\r\n\r\n",
        Error::BadRequestLine,
    );
}

#[test]
fn head_request_gets_headers_without_body() {
    let o = check(b"HEAD /x HTTP/1.1\r\nHost: h\r\n\r\n");
    assert_eq!(
        o.out_str(),
        String::from_utf8(lit(
            "HTTP/1.1 200 OK\r\nDate: {D}\r\nContent-Length: 8\r\n\r\n"
        ))
        .unwrap()
    );
    assert!(!o.closed);
}

#[test]
fn versions() {
    let r = assert_accepted(b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(r.version, Version::Http10);
    assert!(!r.keep_alive);
    for v in [
        "HTTP/2.0", "HTTP/3.0", "HTTP/0.9", "HTTP/0.0", "HTTP/9.9", "HTTP/2.1",
    ] {
        let input = format!("GET / {v}\r\nHost: h\r\n\r\n");
        assert_rejected(input.as_bytes(), Error::VersionNotSupported);
    }
    for v in [
        "http/1.1",
        "HTTP/1.1 ",
        "HTTP/1",
        "HTTP/11",
        "HTTP/1.1.1",
        "HTTP/a.b",
        "HTTP /1.1",
        "HTTP/1.10",
        "HTTP/",
        "",
        "HTTPS/1.1",
        "HTTP\\1.1",
        "HTTP/1,1",
    ] {
        let input = format!("GET / {v}\r\nHost: h\r\n\r\n");
        assert_rejected(input.as_bytes(), Error::BadRequestLine);
    }
    // No version at all (an HTTP/0.9 simple request).
    assert_rejected(b"GET /\r\n\r\n", Error::BadRequestLine);
}

#[test]
fn higher_minor_versions_are_read_as_http11() {
    // RFC 9110 2.5: a higher minor version of HTTP/1 is processed as the highest minor version
    // the server implements; the answer says HTTP/1.1.
    for minor in 2..=9 {
        let input = format!("GET /v HTTP/1.{minor}\r\nHost: h\r\n\r\n");
        let o = check(input.as_bytes());
        let r = o.req();
        assert_eq!(r.version, Version::Http11, "1.{minor}");
        assert!(r.keep_alive, "1.{minor}");
        assert_eq!(o.out, echo_response("GET /v\n", None), "1.{minor}");
        assert!(!o.closed);
        // HTTP/1.1 rules apply: a Host is required, Connection: close is honoured.
        let input = format!("GET / HTTP/1.{minor}\r\n\r\n");
        assert_rejected(input.as_bytes(), Error::BadHost);
        let input = format!("GET / HTTP/1.{minor}\r\nHost: h\r\nConnection: close\r\n\r\n");
        assert!(!assert_accepted(input.as_bytes()).keep_alive);
    }
    // The unsupported version is judged before the target's form once the line is complete.
    assert_rejected(b"GET * HTTP/2.0\r\n\r\n", Error::VersionNotSupported);
    assert_rejected(
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        Error::VersionNotSupported,
    );
}

#[test]
fn version_not_supported_response_bytes() {
    let o = check(b"GET / HTTP/2.0\r\n\r\n");
    assert_eq!(
        o.out_str(),
        String::from_utf8(lit(
            "HTTP/1.1 505 HTTP Version Not Supported\r\nDate: {D}\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Length: 27\r\n\
             Connection: close\r\n\r\nHTTP version not supported\n"
        ))
        .unwrap()
    );
}

#[test]
fn single_spaces_only() {
    for line in [
        "GET  / HTTP/1.1",
        "GET /  HTTP/1.1",
        " GET / HTTP/1.1",
        "GET / HTTP/1.1 ",
        "GET\t/ HTTP/1.1",
        "GET /\tHTTP/1.1",
        "GET / HTTP/1.1\t",
        "GET /",
        "GET",
        "GET / x HTTP/1.1",
        "GET\x0b/ HTTP/1.1",
    ] {
        let input = format!("{line}\r\nHost: h\r\n\r\n");
        assert_rejected(input.as_bytes(), Error::BadRequestLine);
    }
}

#[test]
fn request_line_needs_crlf() {
    // Bare LF and bare CR end nothing.
    assert_rejected(b"GET / HTTP/1.1\nHost: h\r\n\r\n", Error::BadRequestLine);
    assert_rejected(b"GET / HTTP/1.1\rHost: h\r\n\r\n", Error::BadRequestLine);
}

#[test]
fn bad_request_line_is_refused_before_the_head_ends() {
    // A broken request line is answered as soon as it ends, without waiting for the headers.
    let o = check(b"G@T / HTTP/1.1\r\n");
    assert_eq!(o.events, vec![Ev::Error(Error::BadRequestLine)]);
    let o = check(b"\r\nG@T / HTTP/1.1\r\n");
    assert_eq!(o.events, vec![Ev::Error(Error::BadRequestLine)]);
}

#[test]
fn bytes_that_cannot_start_a_request_are_refused_at_once() {
    // Nothing more could make these a request: 400 and close as soon as the offending byte is
    // there, not when a line end or the header timeout comes.
    for input in [
        // A TLS ClientHello (handshake record, TLS 1.0 record version, a length).
        &b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03"[..],
        b"\x16",
        b"\x00",
        b"\x80GET",
        b" ",
        b"@",
        b"(",
        b"\t",
        // A bare CR, at the start, after empty lines and inside the line.
        b"\rX",
        b"\r\r",
        b"\r\n\rG",
        b"\r\n\r\n\x16\x03",
        b"GE\rT",
        b"GET\r",
        b"GET /\r",
        b"GET / HTTP/1.1\rX",
        b"GET / HTTP/1.1\r\r",
        // Bytes no method, target or version can hold.
        b"G@T",
        b"GET\t",
        b"GET  ",
        b"GET /\x01",
        b"GET /\x7f",
        b"GET /\xc3\xa9",
        b"GET / \r",
        b"GET / h",
        b"GET / HTTPS",
        b"GET / HTTP/x",
        b"GET / HTTP/1,",
        b"GET / HTTP/1.x",
        b"GET / HTTP/1.1 ",
        b"GET / HTTP/1.10",
        // A ninth empty line.
        b"\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r",
    ] {
        assert_rejected(input, Error::BadRequestLine);
    }
}

#[test]
fn valid_prefixes_wait() {
    // Every prefix of a request (and of one whose version this server does not speak) is
    // waited on: nothing is answered early.
    for full in [
        &b"\r\n\r\nGET /x?y HTTP/1.1\r\nHost: h\r\n\r\n"[..],
        b"X-1!#$%&'*+-.^_`|~ http://h:1/ HTTP/9.9\r\n",
    ] {
        for cut in 0..full.len() {
            let o = check(&full[..cut]);
            assert!(o.events.is_empty(), "{cut}: {:?}", o.events);
            assert!(o.out.is_empty() && !o.closed, "{cut}");
        }
    }
}

#[test]
fn leading_empty_lines_are_ignored_up_to_eight() {
    for n in 1..=8 {
        let mut input = b"\r\n".repeat(n);
        input.extend_from_slice(&get("/"));
        assert_eq!(assert_accepted(&input).target, "/");
    }
    let mut input = b"\r\n".repeat(9);
    input.extend_from_slice(&get("/"));
    assert_rejected(&input, Error::BadRequestLine);
    // A bare LF before the request line is not an empty line.
    assert_rejected(
        b"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        Error::BadRequestLine,
    );
    assert_rejected(
        b"\r\n\nGET / HTTP/1.1\r\nHost: h\r\n\r\n",
        Error::BadRequestLine,
    );
}

#[test]
fn empty_lines_between_pipelined_requests() {
    let mut input = get("/a");
    input.extend_from_slice(b"\r\n\r\n");
    input.extend_from_slice(&get("/b"));
    let o = check(&input);
    let targets: Vec<_> = o.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(targets, ["/a", "/b"]);
}

fn small_line_limits() -> Limits {
    Limits {
        max_request_line: 64,
        ..Limits::default()
    }
}

#[test]
fn overlong_target_is_414() {
    let limits = small_line_limits();
    // The request line (with its CRLF) may be exactly the limit.
    let fits = format!("GET /{} HTTP/1.1", "a".repeat(64 - 2 - 14));
    assert_eq!(fits.len() + 2, 64);
    let input = format!("{fits}\r\nHost: h\r\n\r\n");
    let o = check_with(input.as_bytes(), &limits, Answer::Echo);
    assert!(o.error.is_none(), "{:?}", o.events);

    for extra in [1, 2, 100, 10_000] {
        let line = format!("GET /{} HTTP/1.1", "a".repeat(64 - 2 - 14 + extra));
        let input = format!("{line}\r\nHost: h\r\n\r\n");
        assert_rejected_with(input.as_bytes(), &limits, Error::UriTooLong);
        // Unfinished: refused once it passes the limit, without waiting for its end.
        let o = check_with(&input.as_bytes()[..line.len()], &limits, Answer::Echo);
        if line.len() > 64 {
            assert_eq!(o.events, vec![Ev::Error(Error::UriTooLong)]);
        }
    }
}

#[test]
fn overlong_line_without_a_target_is_400() {
    let limits = small_line_limits();
    // No space within the limit: the method (or garbage) is what is long.
    for line in [format!("{} / HTTP/1.1", "A".repeat(200)), "x".repeat(200)] {
        let input = format!("{line}\r\nHost: h\r\n\r\n");
        assert_rejected_with(input.as_bytes(), &limits, Error::RequestLineTooLong);
        let o = check_with(line.as_bytes(), &limits, Answer::Echo);
        assert_eq!(
            o.events,
            vec![Ev::Error(Error::RequestLineTooLong)],
            "{line}"
        );
    }
}

#[test]
fn first_violation_in_byte_order_beats_the_length_limit() {
    // A byte that cannot be part of a request line is refused where it stands, before the
    // line grows past the limit.
    let limits = small_line_limits();
    for line in [
        format!("G@T /{} HTTP/1.1", "a".repeat(200)),
        format!(" /{} HTTP/1.1", "a".repeat(200)),
        format!("GET /\x01{} HTTP/1.1", "a".repeat(200)),
    ] {
        let input = format!("{line}\r\nHost: h\r\n\r\n");
        assert_rejected_with(input.as_bytes(), &limits, Error::BadRequestLine);
        assert_rejected_with(line.as_bytes(), &limits, Error::BadRequestLine);
    }
}

#[test]
fn overlong_classification_at_the_limit() {
    // The first space is the last byte that fits: classified by the bytes within the limit
    // only, so the answer does not depend on how the line arrived.
    let limits = small_line_limits();
    for method_len in [62, 63, 64, 65] {
        let line = format!("{} /{} HTTP/1.1", "M".repeat(method_len), "a".repeat(50));
        let input = format!("{line}\r\nHost: h\r\n\r\n");
        let want = if method_len < 64 {
            Error::UriTooLong
        } else {
            Error::RequestLineTooLong
        };
        assert_rejected_with(input.as_bytes(), &limits, want);
    }
}

#[test]
fn overlong_line_after_leading_empty_lines() {
    let limits = small_line_limits();
    let mut input = b"\r\n\r\n".to_vec();
    input.extend_from_slice(format!("GET /{}", "a".repeat(100)).as_bytes());
    // Unfinished and over the limit: refused without waiting for more.
    let o = check_with(&input, &limits, Answer::Echo);
    assert_eq!(o.events, vec![Ev::Error(Error::UriTooLong)]);
}

#[test]
fn parse_request_head_reports_incomplete_and_consumed() {
    let limits = Limits::default();
    let full = b"\r\nPOST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\n\r\nabcGET";
    let head_len = full.len() - 6;
    for cut in 0..head_len {
        assert!(
            parse_request_head(&full[..cut], &limits).unwrap().is_none(),
            "cut {cut}"
        );
    }
    let (head, n) = parse_request_head(full, &limits).unwrap().unwrap();
    assert_eq!(n, head_len);
    assert_eq!(head.framing, Framing::Length(3));
    assert_eq!(head.headers.len(), 2);
    assert_eq!(head.headers.get("content-length"), Some(&b"3"[..]));
    assert_eq!(
        head.headers.get_all("HOST").collect::<Vec<_>>(),
        vec![&b"h"[..]]
    );
}
