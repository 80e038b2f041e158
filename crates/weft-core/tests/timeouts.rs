//! Deadlines on a simulated clock, end of stream, and sticky errors.

mod common;

use std::time::Duration;

use common::*;
use weft_core::{BodyKind, Connection, Error, Event, Limits, Response, SendError};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: h\r\n\r\n";
const SEC: Duration = Duration::from_secs(1);

fn limits() -> Limits {
    Limits {
        header_timeout: Duration::from_secs(10),
        idle_timeout: Duration::from_secs(30),
        body_timeout: Duration::from_secs(20),
        send_timeout: Duration::from_secs(40),
        ..Limits::default()
    }
}

fn harness() -> Harness {
    Harness::new(limits(), Answer::Echo)
}

#[test]
fn new_connection_without_a_request_closes_silently() {
    let mut h = harness();
    assert_eq!(h.conn.poll_timeout(), Some(h.start + 10 * SEC));
    h.advance(9 * SEC);
    assert!(!h.conn.is_closed());
    h.advance(SEC);
    assert!(h.conn.is_closed());
    assert_eq!(h.events, vec![Ev::Closed]);
    assert!(h.out.is_empty(), "an idle close is silent");
    assert_eq!(h.conn.error(), None);
    assert_eq!(h.conn.poll_timeout(), None);
}

#[test]
fn idle_keep_alive_connection_closes_silently() {
    let mut h = harness();
    h.advance(5 * SEC);
    h.feed(GET);
    let answered = h.take_out();
    assert_eq!(answered, echo_response("GET /\n", None));
    assert_eq!(h.conn.poll_timeout(), Some(h.start + 35 * SEC));
    h.advance(29 * SEC);
    assert!(!h.conn.is_closed());
    h.advance(SEC);
    assert!(h.conn.is_closed());
    assert!(h.out.is_empty());
    assert_eq!(h.events.last(), Some(&Ev::Closed));
}

#[test]
fn partial_head_times_out_with_408() {
    let mut h = harness();
    h.advance(3 * SEC);
    h.feed(b"GET / HT");
    // The header timeout starts at the first byte.
    assert_eq!(h.conn.poll_timeout(), Some(h.start + 13 * SEC));
    h.advance(9 * SEC);
    assert!(h.out.is_empty());
    h.advance(SEC);
    assert_eq!(h.events, vec![Ev::Error(Error::HeadTimeout)]);
    assert_eq!(h.out, error_response(Error::HeadTimeout));
    assert!(h.out.starts_with(b"HTTP/1.1 408 Request Timeout\r\n"));
    assert!(h.conn.is_closed());
}

#[test]
fn slow_head_is_not_refreshed_by_trickling_bytes() {
    // Slow loris: a byte a second does not extend the header timeout.
    let mut h = harness();
    for &b in b"GET / HTTP/1.1\r\nHost: h\r\n" {
        h.feed(&[b]);
        h.advance(SEC);
    }
    assert_eq!(h.conn.error(), Some(Error::HeadTimeout));
    assert_eq!(h.out, error_response(Error::HeadTimeout));
}

#[test]
fn header_timeout_restarts_for_each_request() {
    let mut h = harness();
    h.feed(GET);
    h.advance(8 * SEC);
    h.feed(b"GET / HTTP/1.1\r\n");
    h.advance(8 * SEC);
    assert!(
        !h.conn.is_closed(),
        "ten seconds from the second request's first byte"
    );
    h.advance(2 * SEC);
    assert_eq!(h.conn.error(), Some(Error::HeadTimeout));
}

#[test]
fn stalled_body_times_out_with_408() {
    let mut h = harness();
    h.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    assert_eq!(h.conn.poll_timeout(), Some(h.start + 20 * SEC));
    // Each arrival restarts the body timeout.
    h.advance(15 * SEC);
    h.feed(b"def");
    assert_eq!(h.conn.poll_timeout(), Some(h.start + 35 * SEC));
    h.advance(19 * SEC);
    assert!(h.conn.error().is_none());
    h.advance(SEC);
    assert_eq!(h.conn.error(), Some(Error::BodyTimeout));
    assert_eq!(h.out, error_response(Error::BodyTimeout));
    assert_eq!(h.events.last(), Some(&Ev::Error(Error::BodyTimeout)));
}

#[test]
fn stalled_body_after_the_response_started() {
    // No second response can be written: the connection just fails and closes.
    let mut h = Harness::new(limits(), Answer::Manual);
    h.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    let now = h.now();
    h.conn
        .send_response(
            &Response {
                status: 200,
                headers: &[],
                body: BodyKind::Stream,
            },
            now,
        )
        .unwrap();
    h.flush();
    let head = h.take_out();
    h.advance(20 * SEC);
    assert_eq!(h.conn.error(), Some(Error::BodyTimeout));
    assert!(h.out.is_empty());
    assert!(head.starts_with(b"HTTP/1.1 200 OK\r\n"));
    assert_eq!(
        h.conn.send_data(b"x", h.instant()),
        Err(SendError::NotSendingBody)
    );
}

#[test]
fn no_read_deadline_while_the_application_works() {
    let mut h = Harness::new(limits(), Answer::Manual);
    h.feed(GET);
    assert!(h.conn.awaits_response());
    assert_eq!(h.conn.poll_timeout(), None);
    h.advance(3600 * SEC);
    assert!(!h.conn.is_closed());
    h.send_full(200, &[], b"late");
    assert_eq!(
        h.out,
        lit("HTTP/1.1 200 OK\r\nDate: {D}\r\nContent-Length: 4\r\n\r\nlate")
    );
}

#[test]
fn continue_restarts_the_body_timeout() {
    // The client waits for 100 Continue; its body timeout starts when it is told to send.
    let mut h = Harness::new(limits(), Answer::Manual);
    let now = h.now();
    let head = b"POST / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n";
    let (ev, n) = h.conn.next_event(head, now).unwrap();
    assert!(matches!(ev, Event::Request(_)) && n == head.len());
    h.elapsed += 15 * SEC;
    let (ev, _) = h.conn.next_event(b"", h.now()).unwrap();
    assert!(matches!(ev, Event::NeedData));
    assert_eq!(h.conn.transmit(), b"HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(h.conn.poll_timeout().map(|t| t - h.start), Some(35 * SEC));
}

#[test]
fn draining_times_out_silently() {
    let mut h = Harness::new(limits(), Answer::Early);
    h.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    let answered = h.take_out();
    assert_eq!(answered, echo_response("POST /\n", None));
    h.advance(20 * SEC);
    assert!(h.conn.is_closed());
    assert!(h.out.is_empty());
    assert_eq!(h.conn.error(), None);
}

#[test]
fn send_timeout_drops_output_and_closes() {
    let mut h = Harness::new(limits(), Answer::Echo);
    h.auto_transmit = false;
    h.feed(GET);
    let pending = h.conn.transmit().len();
    assert!(pending > 0);
    // The read side waits for the next request (idle 30 s); the write side for the peer (40 s).
    assert_eq!(h.conn.poll_timeout(), Some(h.start + 30 * SEC));
    h.elapsed += 20 * SEC;
    let now = h.instant();
    h.conn.advance_transmit(10, now);
    // Progress restarts the send timeout.
    assert_eq!(h.conn.poll_timeout(), Some(h.start + 30 * SEC));
    h.advance(10 * SEC);
    assert!(h.conn.is_closed(), "idle: the read side closes");
    assert_eq!(
        h.conn.transmit().len(),
        pending - 10,
        "the response still drains"
    );
    assert_eq!(h.conn.poll_timeout(), Some(h.start + 60 * SEC));
    h.advance(30 * SEC);
    assert!(h.conn.transmit().is_empty(), "the stuck output is dropped");
    assert_eq!(h.conn.poll_timeout(), None);
}

/// A GET answered with a `200` head of `body` kind, to a peer that reads nothing.
fn responding(body: BodyKind) -> Harness {
    let mut h = Harness::new(limits(), Answer::Manual);
    h.auto_transmit = false;
    h.feed(GET);
    let now = h.now();
    h.conn
        .send_response(
            &Response {
                status: 200,
                headers: &[],
                body,
            },
            now,
        )
        .unwrap();
    h
}

#[test]
fn send_timeout_while_streaming() {
    let mut h = responding(BodyKind::Stream);
    assert_eq!(h.conn.poll_timeout(), Some(h.start + 40 * SEC));
    h.advance(40 * SEC);
    assert!(h.conn.is_closed());
    assert!(h.conn.transmit().is_empty());
}

/// A send timeout ends the response: nothing queued after it may reach the peer, or the
/// peer would receive a body with a hole (the bytes dropped at the timeout) and then more.
#[test]
fn send_timeout_ends_the_response_for_good() {
    let mut h = responding(BodyKind::Length(1 << 20));
    let now = h.now();
    h.conn.send_data(&[b'a'; 4096], now.instant).unwrap();
    assert!(h.conn.is_sending_body());
    h.advance(40 * SEC);
    assert!(h.conn.is_closed());
    assert!(h.conn.transmit().is_empty());
    assert!(!h.conn.is_sending_body(), "the response is over");
    let now = h.now();
    assert_eq!(
        h.conn.send_data(&[b'b'; 4096], now.instant),
        Err(SendError::NotSendingBody)
    );
    assert_eq!(
        h.conn.send_end(&[], now.instant),
        Err(SendError::NotSendingBody)
    );
    assert!(h.conn.transmit().is_empty(), "no byte after the timeout");
    assert_eq!(h.conn.poll_timeout(), None);
}

#[test]
fn unbounded_timeouts_do_not_overflow() {
    let limits = Limits {
        header_timeout: Duration::MAX,
        idle_timeout: Duration::MAX,
        body_timeout: Duration::MAX,
        send_timeout: Duration::MAX,
        ..Limits::default()
    };
    let mut h = Harness::new(limits, Answer::Echo);
    assert_eq!(h.conn.poll_timeout(), None);
    h.auto_transmit = false;
    h.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\n\r\nab");
    h.feed(b"GET / HT");
    h.advance(1_000_000 * SEC);
    assert!(!h.conn.is_closed());
    assert_eq!(h.conn.poll_timeout(), None);
}

// End of stream.

#[test]
fn eof_between_requests_is_clean() {
    let o = check_eof(GET);
    assert_eq!(o.events.last(), Some(&Ev::Closed));
    assert_eq!(o.out, echo_response("GET /\n", None));
    assert!(o.error.is_none());
    let o = check_eof(b"");
    assert_eq!(o.events, vec![Ev::Closed]);
    assert!(o.out.is_empty());
    // The empty lines a request may be preceded by are not a request.
    for input in [&b"\r\n"[..], b"\r\n\r\n"] {
        let o = check_eof(input);
        assert_eq!(o.events, vec![Ev::Closed]);
        assert!(o.out.is_empty());
    }
    let mut input = GET.to_vec();
    input.extend_from_slice(b"\r\n");
    let o = check_eof(&input);
    assert_eq!(o.events.last(), Some(&Ev::Closed));
    assert!(o.error.is_none());
}

#[test]
fn eof_mid_head_is_400() {
    for input in [
        &b"G"[..],
        b"GET / HTTP/1.1",
        b"GET / HTTP/1.1\r\nHost: h\r\n",
        b"GET / HTTP/1.1\r\nHost: h\r\n\r",
        b"\r",
        b"\r\n\r",
        b"\r\nGET",
    ] {
        let o = check_eof(input);
        assert_eq!(o.events, vec![Ev::Error(Error::UnexpectedEof)], "{input:?}");
        assert_eq!(o.out, error_response(Error::UnexpectedEof));
    }
    // After a complete exchange, an unfinished second request.
    let mut input = GET.to_vec();
    input.extend_from_slice(b"GET /2");
    let o = check_eof(&input);
    assert_eq!(o.requests().len(), 1);
    assert_eq!(o.err(), Error::UnexpectedEof);
    let mut want = echo_response("GET /\n", None);
    want.extend_from_slice(&error_response(Error::UnexpectedEof));
    assert_eq!(o.out, want);
}

#[test]
fn eof_mid_head_reports_a_malformed_head_as_such() {
    // The parts that arrived are judged: a broken field line is a 400 for that reason.
    let o = check_eof(b"GET / HTTP/1.1\r\nBad Field: x\r\n");
    assert_eq!(o.events, vec![Ev::Error(Error::BadHeader)]);
}

#[test]
fn eof_mid_body_is_400() {
    for input in [
        &b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nabc",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nabcde\r\n",
        b"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: y\r\n",
    ] {
        let o = check_eof(input);
        assert_eq!(o.err(), Error::UnexpectedEof);
        assert_eq!(o.out, error_response(Error::UnexpectedEof));
        assert!(o.closed);
    }
}

#[test]
fn eof_after_a_complete_request_still_gets_the_answer() {
    let mut h = Harness::new(Limits::default(), Answer::Manual);
    h.feed(GET);
    h.eof();
    assert_eq!(h.events.last(), Some(&Ev::Paused));
    h.send_full(200, &[], b"ok");
    assert_eq!(h.events.last(), Some(&Ev::Closed));
    assert!(h.conn.error().is_none());
    assert_eq!(
        h.out,
        lit("HTTP/1.1 200 OK\r\nDate: {D}\r\nContent-Length: 2\r\n\r\nok")
    );
}

#[test]
fn eof_while_draining_closes() {
    let mut h = Harness::new(Limits::default(), Answer::Early);
    h.feed(b"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 10\r\n\r\nabc");
    h.eof();
    assert_eq!(h.events.last(), Some(&Ev::Closed));
    assert!(h.conn.error().is_none());
}

// Sticky errors.

#[test]
fn errors_are_sticky() {
    let h = Harness::manual();
    let start = h.start;
    let mut conn = Connection::new(Limits::default(), start);
    let err = conn
        .next_event(b"GET / HTTP/1.1\r\nX : y\r\n\r\n", h.now())
        .unwrap_err();
    assert_eq!(err, Error::BadHeader);
    let answer = conn.transmit().to_vec();
    assert_eq!(answer, error_response(Error::BadHeader));
    for input in [&b""[..], GET, b"garbage"] {
        assert_eq!(
            conn.next_event(input, h.now()).unwrap_err(),
            Error::BadHeader
        );
    }
    conn.receive_eof();
    conn.handle_timeout(h.now());
    assert_eq!(conn.next_event(GET, h.now()).unwrap_err(), Error::BadHeader);
    assert_eq!(conn.error(), Some(Error::BadHeader));
    assert!(conn.is_closed());
    assert_eq!(
        conn.send_full(200, &[], b"", h.now()),
        Err(SendError::Closed)
    );
    assert_eq!(conn.transmit(), answer, "nothing more is queued");
    assert_eq!(
        conn.poll_timeout().map(|t| t - start),
        Some(Limits::default().send_timeout)
    );
}

#[test]
fn error_display() {
    assert_eq!(
        Error::UriTooLong.to_string(),
        "request target too long (414)"
    );
    assert_eq!(
        SendError::InvalidHeader.to_string(),
        "invalid header name or value"
    );
}

// Refusal by the driver.

#[test]
fn a_refused_connection_gets_503_and_closes() {
    let mut h = harness();
    let now = h.now();
    h.conn.refuse(now);
    assert_eq!(h.conn.error(), Some(Error::ServerBusy));
    assert!(h.conn.is_closed());
    let out = String::from_utf8(h.conn.transmit().to_vec()).unwrap();
    assert!(out.starts_with("HTTP/1.1 503 "), "{out}");
    assert!(out.contains("Connection: close\r\n"), "{out}");
    // Whatever the client had sent is not read.
    h.feed(GET);
    assert_eq!(h.conn.error(), Some(Error::ServerBusy));
}

#[test]
fn refuse_after_a_request_started_does_nothing() {
    let mut h = Harness::new(limits(), Answer::Manual);
    h.auto_transmit = false;
    h.feed(b"GET / HT");
    let now = h.now();
    h.conn.refuse(now);
    assert_eq!(h.conn.error(), None);
    assert!(h.conn.transmit().is_empty());
}
