//! Exchanges: keep-alive, pipelining, 100-continue, draining, upgrade, and the sending side.

mod common;

use common::*;
use weft_core::{BodyKind, Connection, Event, Limits, Response, SendError};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";

fn gets(targets: &[&str]) -> Vec<u8> {
    targets
        .iter()
        .flat_map(|t| format!("GET {t} HTTP/1.1\r\nHost: h\r\n\r\n").into_bytes())
        .collect()
}

/// A connection that has read one request head (and its empty body when it has none).
fn answering(input: &[u8]) -> Harness {
    let mut h = Harness::manual();
    h.feed(input);
    assert!(h.conn.awaits_response(), "{:?}", h.events);
    h
}

fn response(
    status: u16,
    headers: &'static [(&'static str, &'static [u8])],
    body: BodyKind,
) -> Response<'static> {
    Response {
        status,
        headers,
        body,
    }
}

// Keep-alive.

#[test]
fn http11_keeps_alive_by_default() {
    let o = check(&gets(&["/a", "/b", "/c"]));
    assert_eq!(o.requests().len(), 3);
    let mut want = echo_response("GET /a\n", None);
    want.extend_from_slice(&echo_response("GET /b\n", None));
    want.extend_from_slice(&echo_response("GET /c\n", None));
    assert_eq!(o.out_str(), String::from_utf8(want).unwrap());
    assert!(!o.closed);
}

#[test]
fn http10_closes_by_default() {
    let mut input = b"GET /a HTTP/1.0\r\n\r\n".to_vec();
    input.extend_from_slice(GET);
    let o = check(&input);
    assert_eq!(o.events.len(), 3, "{:?}", o.events);
    assert_eq!(o.events[2], Ev::Closed);
    assert_eq!(o.out, echo_response("GET /a\n", Some("close")));
    assert_eq!(
        o.leftover, GET,
        "nothing after the closing exchange is read"
    );
    assert!(o.closed);
}

#[test]
fn http10_keep_alive() {
    let input = b"GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\nGET /b HTTP/1.0\r\n\r\n";
    let o = check(input);
    assert_eq!(o.requests().len(), 2);
    let mut want = echo_response("GET /a\n", Some("keep-alive"));
    want.extend_from_slice(&echo_response("GET /b\n", Some("close")));
    assert_eq!(o.out_str(), String::from_utf8(want).unwrap());
    assert!(o.closed);
}

#[test]
fn client_connection_close() {
    let mut input = b"GET /a HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".to_vec();
    input.extend_from_slice(GET);
    let o = check(&input);
    assert_eq!(o.requests().len(), 1);
    assert_eq!(o.events.last(), Some(&Ev::Closed));
    assert_eq!(o.out, echo_response("GET /a\n", Some("close")));
    assert_eq!(o.leftover, GET);
}

#[test]
fn server_connection_close() {
    let mut h = answering(&gets(&["/a", "/b"]));
    h.send_full(200, &[("Connection", b"close"), ("X", b"1")], b"bye");
    assert_eq!(
        h.out,
        lit("HTTP/1.1 200 OK\r\nDate: {D}\r\nX: 1\r\nContent-Length: 3\r\nConnection: close\r\n\r\nbye")
    );
    assert_eq!(h.events.last(), Some(&Ev::Closed));
    assert_eq!(h.requests(), 1);
    assert!(h.conn.is_closed());
}

#[test]
fn application_connection_header_is_replaced() {
    // Other Connection options are the core's business: not written.
    let mut h = answering(GET);
    h.send_full(200, &[("Connection", b"keep-alive, foo")], b"");
    assert_eq!(
        h.out,
        lit("HTTP/1.1 200 OK\r\nDate: {D}\r\nContent-Length: 0\r\n\r\n")
    );
    assert!(!h.conn.is_closed());
}

// Pipelining.

#[test]
fn pipelined_requests_are_answered_in_order() {
    let targets: Vec<String> = (0..50).map(|i| format!("/{i}")).collect();
    let refs: Vec<&str> = targets.iter().map(String::as_str).collect();
    let o = check(&gets(&refs));
    let got: Vec<_> = o.requests().iter().map(|r| r.target.clone()).collect();
    assert_eq!(got, targets);
    let want: Vec<u8> = targets
        .iter()
        .flat_map(|t| echo_response(&format!("GET {t}\n"), None))
        .collect();
    assert_eq!(o.out, want);
}

#[test]
fn next_request_is_paused_until_the_response_completes() {
    let input = gets(&["/a", "/b"]);
    let mut h = answering(&input);
    let first = input.len() / 2;
    assert_eq!(h.events.last(), Some(&Ev::Paused));
    assert_eq!(
        h.buf,
        &input[first..],
        "the second request stays unconsumed"
    );
    // Pumping again changes nothing.
    h.pump();
    h.feed(b"");
    assert_eq!(h.requests(), 1);

    // A streamed response: still paused until its end.
    let now = h.now();
    h.conn
        .send_response(&response(200, &[], BodyKind::Stream), now)
        .unwrap();
    h.conn.send_data(b"part", now.instant).unwrap();
    h.pump();
    assert_eq!(h.requests(), 1);
    assert!(h.conn.is_sending_body());
    h.conn.send_end(&[], now.instant).unwrap();
    h.pump();
    assert_eq!(h.requests(), 2);
    assert_eq!(h.events.last(), Some(&Ev::Paused));
    assert!(h.buf.is_empty());
    h.send_full(200, &[], b"2");
    assert_eq!(
        h.out,
        lit("HTTP/1.1 200 OK\r\nDate: {D}\r\nTransfer-Encoding: chunked\r\n\r\n4\r\npart\r\n0\r\n\r\n\
             HTTP/1.1 200 OK\r\nDate: {D}\r\nContent-Length: 1\r\n\r\n2")
    );
    assert!(!h.conn.is_closed());
}

#[test]
fn response_may_start_before_the_body_is_read() {
    // The application answers while the body is still coming (an echo that streams).
    let mut h = Harness::manual();
    h.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 6\r\n\r\nabc");
    let now = h.now();
    h.conn
        .send_response(&response(200, &[], BodyKind::Stream), now)
        .unwrap();
    h.conn.send_data(&h.body.clone(), now.instant).unwrap();
    h.feed(b"def");
    h.conn.send_data(b"def", now.instant).unwrap();
    h.conn.send_end(&[], now.instant).unwrap();
    h.feed(GET);
    assert_eq!(h.requests(), 2);
    assert_eq!(
        h.events[1..3],
        [Ev::Data(b"abcdef".to_vec()), Ev::End(vec![])]
    );
    h.flush();
    assert_eq!(
        h.out,
        lit("HTTP/1.1 200 OK\r\nDate: {D}\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n")
    );
}

// Draining an unread body.

#[test]
fn unread_body_within_max_drain_is_discarded() {
    let limits = Limits {
        max_drain: 16,
        ..Limits::default()
    };
    // The budget counts raw bytes, framing included.
    for body in [
        &b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 16\r\n\r\n0123456789abcdef"[..],
        b"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n0\r\n\r\n",
    ] {
        let mut input = body.to_vec();
        input.extend_from_slice(GET);
        let o = check_with(&input, &limits, Answer::Early);
        let targets: Vec<_> = o.requests().iter().map(|r| r.target.clone()).collect();
        assert_eq!(targets, ["/p", "/"]);
        assert!(!o.events.iter().any(|e| matches!(e, Ev::Data(_))));
        let mut want = echo_response("POST /p\n", None);
        want.extend_from_slice(&echo_response("GET /\n", None));
        assert_eq!(o.out, want);
        assert!(!o.closed);
    }
}

#[test]
fn unread_body_beyond_max_drain_closes() {
    let limits = Limits {
        max_drain: 16,
        ..Limits::default()
    };
    for body in [
        &b"POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 17\r\n\r\n0123456789abcdefg"[..],
        b"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n01234\r\n5\r\n56789\r\n0\r\n\r\n",
        // A broken chunked body being drained just closes.
        b"POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ] {
        let mut input = body.to_vec();
        input.extend_from_slice(GET);
        let o = check_with(&input, &limits, Answer::Early);
        assert_eq!(o.requests().len(), 1);
        assert_eq!(o.events.last(), Some(&Ev::Closed));
        assert_eq!(o.out, echo_response("POST /p\n", None));
        assert!(o.error.is_none(), "no error response after a complete one");
    }
}

#[test]
fn unread_body_of_a_closing_exchange_is_not_drained() {
    let input = b"POST /p HTTP/1.1\r\nHost: h\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc";
    let o = check_with(input, &Limits::default(), Answer::Early);
    assert_eq!(o.events.last(), Some(&Ev::Closed));
    assert_eq!(o.out, echo_response("POST /p\n", Some("close")));
}

#[test]
fn answering_before_reading_end_of_an_empty_body() {
    // The application may answer right after the head; the next request follows without End.
    let o = check_with(&gets(&["/a", "/b"]), &Limits::default(), Answer::Early);
    assert_eq!(o.events.len(), 2, "{:?}", o.events);
    assert_eq!(o.requests().len(), 2);
}

// Expect: 100-continue, driven by hand to watch when the 100 goes out.

const EXPECT: &[u8] =
    b"POST /up HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n";

fn first_event(conn: &mut Connection, input: &[u8], h: &Harness) -> usize {
    match conn.next_event(input, h.now()).unwrap() {
        (Event::Request(head), n) => {
            assert!(head.expect_continue);
            n
        }
        (other, _) => panic!("{other:?}"),
    }
}

#[test]
fn continue_is_sent_when_the_body_is_first_read() {
    let h = Harness::manual();
    let mut conn = Connection::new(Limits::default(), h.instant());
    let n = first_event(&mut conn, EXPECT, &h);
    assert_eq!(n, EXPECT.len());
    assert!(
        conn.transmit().is_empty(),
        "nothing before the application reads"
    );
    assert!(conn.is_reading_body());
    // Reading the body: the client may now send it.
    let (ev, n) = conn.next_event(&[], h.now()).unwrap();
    assert!(matches!(ev, Event::NeedData) && n == 0);
    assert_eq!(conn.transmit(), b"HTTP/1.1 100 Continue\r\n\r\n");
    // Only once.
    let (ev, _) = conn.next_event(b"hel", h.now()).unwrap();
    assert!(matches!(ev, Event::Data(b"hel")));
    let (ev, _) = conn.next_event(b"lo", h.now()).unwrap();
    assert!(matches!(ev, Event::Data(b"lo")));
    let (ev, _) = conn.next_event(b"", h.now()).unwrap();
    assert!(matches!(ev, Event::End(_)));
    conn.send_full(200, &[], b"ok", h.now()).unwrap();
    assert_eq!(
        conn.transmit(),
        lit("HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nDate: {D}\r\nContent-Length: 2\r\n\r\nok")
    );
    assert!(!conn.is_closed());
}

#[test]
fn continue_through_the_harness_in_all_feeding_modes() {
    let mut input = EXPECT.to_vec();
    input.extend_from_slice(b"hello");
    let o = check(&input);
    assert_eq!(o.body(), b"hello");
    let mut want = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
    want.extend_from_slice(&echo_response("POST /up\nhello", None));
    assert_eq!(o.out, want);
}

#[test]
fn no_continue_when_the_application_answers_first() {
    let h = Harness::manual();
    let mut conn = Connection::new(Limits::default(), h.instant());
    first_event(&mut conn, EXPECT, &h);
    conn.send_full(417, &[], b"no", h.now()).unwrap();
    // The body will not come (the client was not told to send it): the response says the
    // connection closes, and it does.
    assert_eq!(
        conn.transmit(),
        lit("HTTP/1.1 417 Expectation Failed\r\nDate: {D}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno")
    );
    let (ev, n) = conn.next_event(b"hello", h.now()).unwrap();
    assert!(matches!(ev, Event::Closed) && n == 0, "{ev:?}");
    assert!(conn.is_closed());
    assert!(conn.error().is_none());
}

#[test]
fn no_continue_without_a_body() {
    let o = check(b"GET / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\n\r\n");
    assert!(o.req().expect_continue);
    assert_eq!(o.out, echo_response("GET /\n", None));
}

// Upgrade.

const UPGRADE: &[u8] =
    b"GET /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n";

#[test]
fn upgrade_hands_over_the_leftover_bytes() {
    let mut input = UPGRADE.to_vec();
    input.extend_from_slice(b"\x81\x05hello GET / HTTP/1.1\r\n\r\n");
    let mut h = answering(&input);
    assert_eq!(h.events.last(), Some(&Ev::Paused));
    h.send_full(
        101,
        &[("Connection", b"Upgrade"), ("Upgrade", b"websocket")],
        b"",
    );
    assert_eq!(
        h.out,
        lit("HTTP/1.1 101 Switching Protocols\r\nDate: {D}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n")
    );
    assert_eq!(h.events.last(), Some(&Ev::Upgraded));
    assert_eq!(h.buf, b"\x81\x05hello GET / HTTP/1.1\r\n\r\n");
    // It stays upgraded; nothing is consumed or parsed.
    let now = h.now();
    let (ev, n) = h.conn.next_event(&h.buf, now).unwrap();
    assert!(matches!(ev, Event::Upgraded) && n == 0);
    assert!(!h.conn.is_closed());
    assert_eq!(h.conn.poll_timeout(), None);
    assert_eq!(
        h.conn
            .send_response(&response(200, &[], BodyKind::Length(0)), now),
        Err(SendError::NoRequestToAnswer)
    );
}

#[test]
fn upgrade_before_reading_the_end_of_the_request() {
    // An upgrade before the application has read the end of the (empty) body.
    let mut h = Harness::new(Limits::default(), Answer::Manual);
    let now = h.now();
    let n = match h.conn.next_event(UPGRADE, now).unwrap() {
        (Event::Request(head), n) => {
            assert_eq!(head.upgrade, Some(&b"websocket"[..]));
            n
        }
        (other, _) => panic!("{other:?}"),
    };
    assert_eq!(n, UPGRADE.len());
    h.conn
        .send_response(
            &response(101, &[("Upgrade", b"websocket")], BodyKind::Length(0)),
            now,
        )
        .unwrap();
    let (ev, n) = h.conn.next_event(b"frame", now).unwrap();
    assert!(matches!(ev, Event::Upgraded) && n == 0);
}

#[test]
fn switching_protocols_is_refused_when_not_asked_for() {
    let now_of = |h: &Harness| h.now();
    // Not an upgrade request.
    let mut h = answering(GET);
    let now = now_of(&h);
    assert_eq!(
        h.conn
            .send_response(&response(101, &[], BodyKind::Length(0)), now),
        Err(SendError::InvalidStatus)
    );
    assert!(h.conn.transmit().is_empty());
    assert!(h.conn.awaits_response(), "still answerable");
    // An upgrade request with a body.
    let mut h = answering(
        b"POST /chat HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: x\r\nContent-Length: 1\r\n\r\nz",
    );
    let now = now_of(&h);
    assert_eq!(
        h.conn
            .send_response(&response(101, &[], BodyKind::Length(0)), now),
        Err(SendError::InvalidStatus)
    );
    // HTTP/1.0 cannot upgrade.
    let mut h = answering(b"GET /chat HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: x\r\n\r\n");
    let now = now_of(&h);
    assert_eq!(
        h.conn
            .send_response(&response(101, &[], BodyKind::Length(0)), now),
        Err(SendError::InvalidStatus)
    );
    // 101 with a body.
    let mut h = answering(UPGRADE);
    let now = now_of(&h);
    assert_eq!(
        h.conn
            .send_response(&response(101, &[], BodyKind::Length(1)), now),
        Err(SendError::BodyNotAllowed)
    );
    assert_eq!(
        h.conn
            .send_response(&response(101, &[], BodyKind::Stream), now),
        Err(SendError::BodyNotAllowed)
    );
    // The upgrade request may still be answered normally.
    h.send_full(200, &[], b"no");
    assert_eq!(h.requests(), 1);
    assert!(!h.conn.is_closed());
}

// The sending side.

#[test]
fn head_response_has_headers_without_body() {
    let mut h = answering(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
    let now = h.now();
    h.conn
        .send_response(&response(200, &[], BodyKind::Length(10)), now)
        .unwrap();
    h.conn
        .send_data(b"0123456789 and more", now.instant)
        .unwrap();
    h.conn.send_end(&[], now.instant).unwrap();
    h.pump();
    assert_eq!(
        h.out,
        lit("HTTP/1.1 200 OK\r\nDate: {D}\r\nContent-Length: 10\r\n\r\n")
    );
    assert!(!h.conn.is_closed());
    // Streamed: the chunked header is announced but nothing follows.
    let mut h = answering(b"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n");
    let now = h.now();
    h.conn
        .send_response(&response(200, &[], BodyKind::Stream), now)
        .unwrap();
    h.conn.send_data(b"data", now.instant).unwrap();
    h.conn.send_end(&[("X", b"y")], now.instant).unwrap();
    h.pump();
    assert_eq!(
        h.out,
        lit("HTTP/1.1 200 OK\r\nDate: {D}\r\nTransfer-Encoding: chunked\r\n\r\n")
    );
    assert!(!h.conn.is_closed());
}

#[test]
fn no_content_and_not_modified_have_no_body() {
    let mut h = answering(GET);
    h.send_full(204, &[("X", b"1")], b"");
    assert_eq!(
        h.out,
        lit("HTTP/1.1 204 No Content\r\nDate: {D}\r\nX: 1\r\n\r\n")
    );
    let mut h = answering(GET);
    let now = h.now();
    assert_eq!(
        h.conn.send_full(204, &[], b"body", now),
        Err(SendError::BodyNotAllowed)
    );
    assert_eq!(
        h.conn
            .send_response(&response(204, &[], BodyKind::Stream), now),
        Err(SendError::BodyNotAllowed)
    );
    assert!(h.conn.transmit().is_empty());

    let mut h = answering(GET);
    h.send_full(304, &[("ETag", b"\"x\"")], b"");
    assert_eq!(
        h.out,
        lit("HTTP/1.1 304 Not Modified\r\nDate: {D}\r\nETag: \"x\"\r\n\r\n")
    );
    // A 304 may state the length of the representation; no body follows.
    let mut h = answering(GET);
    h.send_full(304, &[], b"ignored");
    assert_eq!(
        h.out,
        lit("HTTP/1.1 304 Not Modified\r\nDate: {D}\r\nContent-Length: 7\r\n\r\n")
    );
    let mut h = answering(GET);
    let now = h.now();
    h.conn
        .send_response(&response(304, &[], BodyKind::Stream), now)
        .unwrap();
    h.conn.send_data(b"x", now.instant).unwrap();
    h.conn.send_end(&[], now.instant).unwrap();
    h.pump();
    assert_eq!(h.out, lit("HTTP/1.1 304 Not Modified\r\nDate: {D}\r\n\r\n"));
    assert!(!h.conn.is_closed());
}

#[test]
fn stream_is_chunked_on_http11() {
    let mut h = answering(GET);
    let now = h.now();
    h.conn
        .send_response(
            &response(200, &[("Content-Type", b"text/plain")], BodyKind::Stream),
            now,
        )
        .unwrap();
    h.conn.send_data(b"hello", now.instant).unwrap();
    h.conn.send_data(b"", now.instant).unwrap();
    h.conn.send_data(&[b'x'; 26], now.instant).unwrap();
    h.conn
        .send_end(&[("X-Checksum", b"abc")], now.instant)
        .unwrap();
    h.pump();
    let mut want = lit(
        "HTTP/1.1 200 OK\r\nDate: {D}\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n1a\r\n",
    );
    want.extend_from_slice(&[b'x'; 26]);
    want.extend_from_slice(b"\r\n0\r\nX-Checksum: abc\r\n\r\n");
    assert_eq!(h.out, want);
    assert!(!h.conn.is_closed());
}

#[test]
fn stream_is_close_delimited_on_http10() {
    let mut h = answering(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let now = h.now();
    h.conn
        .send_response(&response(200, &[], BodyKind::Stream), now)
        .unwrap();
    h.conn.send_data(b"line 1\n", now.instant).unwrap();
    h.conn.send_data(b"line 2\n", now.instant).unwrap();
    h.conn.send_end(&[("Ignored", b"x")], now.instant).unwrap();
    h.pump();
    assert_eq!(
        h.out,
        lit("HTTP/1.1 200 OK\r\nDate: {D}\r\nConnection: close\r\n\r\nline 1\nline 2\n")
    );
    assert!(h.conn.is_closed());
}

#[test]
fn content_length_is_enforced() {
    let mut h = answering(gets(&["/a", "/b"]).as_slice());
    let now = h.now();
    h.conn
        .send_response(&response(200, &[], BodyKind::Length(5)), now)
        .unwrap();
    h.conn.send_data(b"abc", now.instant).unwrap();
    assert_eq!(
        h.conn.send_data(b"def", now.instant),
        Err(SendError::BodyTooLong)
    );
    h.flush();
    let head = lit("HTTP/1.1 200 OK\r\nDate: {D}\r\nContent-Length: 5\r\n\r\nabc");
    assert_eq!(h.out, head, "nothing of the refused data is written");
    h.conn.send_data(b"de", now.instant).unwrap();
    h.conn.send_end(&[], now.instant).unwrap();
    h.pump();
    assert_eq!(h.requests(), 2);

    // Too short: the framing is broken, so the connection closes after it.
    let mut h = answering(gets(&["/a", "/b"]).as_slice());
    let now = h.now();
    h.conn
        .send_response(&response(200, &[], BodyKind::Length(5)), now)
        .unwrap();
    h.conn.send_data(b"abc", now.instant).unwrap();
    assert_eq!(
        h.conn.send_end(&[], now.instant),
        Err(SendError::BodyTooShort)
    );
    h.pump();
    assert!(h.conn.is_closed());
    assert_eq!(h.requests(), 1);
    assert_eq!(h.events.last(), Some(&Ev::Closed));
}

#[test]
fn response_splitting_is_impossible() {
    let bad: [(&str, &[u8]); 9] = [
        ("X", b"a\r\nSet-Cookie: evil"),
        ("X", b"a\nb"),
        ("X", b"a\rb"),
        ("X", b"a\x00b"),
        ("X", b"a\x0bb"),
        ("X", b"a\x7fb"),
        ("X: y\r\nZ", b"v"),
        ("X Y", b"v"),
        ("", b"v"),
    ];
    for (name, value) in bad {
        let mut h = answering(GET);
        let now = h.now();
        let headers = [("Ok", &b"1"[..]), (name, value)];
        let r = Response {
            status: 200,
            headers: &headers,
            body: BodyKind::Length(0),
        };
        assert_eq!(
            h.conn.send_response(&r, now),
            Err(SendError::InvalidHeader),
            "{name:?}: {value:?}"
        );
        assert_eq!(
            h.conn.send_full(200, &headers, b"", now),
            Err(SendError::InvalidHeader)
        );
        assert!(h.conn.transmit().is_empty(), "nothing written");
        assert!(
            h.conn.awaits_response(),
            "the request can still be answered"
        );
        // Trailers are checked the same way.
        h.conn
            .send_response(&response(200, &[], BodyKind::Stream), now)
            .unwrap();
        let before = h.conn.transmit().len();
        assert_eq!(
            h.conn.send_end(&[(name, value)], now.instant),
            Err(SendError::InvalidHeader)
        );
        assert_eq!(h.conn.transmit().len(), before);
        assert!(h.conn.is_sending_body());
    }
}

#[test]
fn framing_headers_are_refused() {
    for name in [
        "Content-Length",
        "content-length",
        "Transfer-Encoding",
        "TRANSFER-ENCODING",
    ] {
        let mut h = answering(GET);
        let now = h.now();
        let headers = [(name, &b"5"[..])];
        assert_eq!(
            h.conn.send_full(200, &headers, b"hello", now),
            Err(SendError::FramingHeader)
        );
        assert!(h.conn.transmit().is_empty());
    }
}

#[test]
fn status_codes() {
    for status in [0, 99, 100, 102, 103, 199, 600, 999, u16::MAX] {
        let mut h = answering(GET);
        let now = h.now();
        assert_eq!(
            h.conn.send_full(status, &[], b"", now),
            Err(SendError::InvalidStatus),
            "{status}"
        );
        assert!(h.conn.transmit().is_empty());
    }
    let mut h = answering(GET);
    h.send_full(299, &[], b"");
    assert_eq!(
        h.out,
        lit("HTTP/1.1 299 \r\nDate: {D}\r\nContent-Length: 0\r\n\r\n")
    );
    let mut h = answering(GET);
    h.send_full(599, &[], b"");
    assert!(h.out.starts_with(b"HTTP/1.1 599 \r\n"));
}

#[test]
fn sending_out_of_order() {
    let mut h = Harness::manual();
    let now = h.now();
    assert_eq!(
        h.conn.send_full(200, &[], b"", now),
        Err(SendError::NoRequestToAnswer)
    );
    assert_eq!(
        h.conn.send_data(b"x", now.instant),
        Err(SendError::NotSendingBody)
    );
    assert_eq!(
        h.conn.send_end(&[], now.instant),
        Err(SendError::NotSendingBody)
    );
    h.feed(GET);
    h.send_full(200, &[], b"");
    let now = h.now();
    assert_eq!(
        h.conn.send_full(200, &[], b"", now),
        Err(SendError::NoRequestToAnswer),
        "one response per request"
    );
    assert_eq!(
        h.conn.send_end(&[], now.instant),
        Err(SendError::NotSendingBody)
    );
}

#[test]
fn partial_transmit_keeps_the_rest() {
    let mut h = answering(GET);
    h.auto_transmit = false;
    h.send_full(200, &[], &[b'z'; 100]);
    let total = h.conn.transmit().to_vec();
    let now = h.instant();
    h.conn.advance_transmit(0, now);
    assert_eq!(h.conn.transmit(), total);
    h.conn.advance_transmit(10, now);
    assert_eq!(h.conn.transmit(), &total[10..]);
    h.conn.advance_transmit(total.len() - 10, now);
    assert!(h.conn.transmit().is_empty());
    h.conn.advance_transmit(5, now);
    assert!(h.conn.transmit().is_empty());
    // A driver reporting more than there was does not break anything.
    let mut h = answering(GET);
    h.auto_transmit = false;
    h.send_full(200, &[], b"x");
    h.conn.advance_transmit(usize::MAX, now);
    assert!(h.conn.transmit().is_empty());
}

#[test]
fn large_output_is_compacted() {
    let mut h = answering(GET);
    h.auto_transmit = false;
    let now = h.now();
    h.conn
        .send_response(&response(200, &[], BodyKind::Stream), now)
        .unwrap();
    let mut written = Vec::new();
    let mut expected = h.conn.transmit().to_vec();
    for i in 0..200u8 {
        let chunk = vec![i; 1000];
        h.conn.send_data(&chunk, now.instant).unwrap();
        expected.extend_from_slice(b"3e8\r\n");
        expected.extend_from_slice(&chunk);
        expected.extend_from_slice(b"\r\n");
        let take = h.conn.transmit().len() * 2 / 3;
        written.extend_from_slice(&h.conn.transmit()[..take]);
        h.conn.advance_transmit(take, now.instant);
    }
    written.extend_from_slice(h.conn.transmit());
    assert_eq!(written, expected);
}
