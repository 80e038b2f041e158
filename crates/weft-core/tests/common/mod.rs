//! A test driver for [`Connection`]: it does exactly what a real driver does (a `Vec<u8>` read
//! buffer, `next_event` until `NeedData`/`Paused`, consumed bytes removed after each event,
//! responses through the sending family, `transmit`/`advance_transmit`), with a simulated clock
//! and a fixed `Date`.
//!
//! Every codec test goes through [`check`], which feeds the input whole, byte by byte, and whole
//! followed by a pipelined second request, and asserts that all three give the same events and
//! the same output.
#![allow(dead_code)]

use std::time::{Duration, Instant, UNIX_EPOCH};

use weft_core::{
    Connection, Error, Event, Framing, HttpDate, Limits, Method, Now, RequestHead, SendError,
    Version,
};

/// The `Date` every test response carries.
pub const DATE: &str = "Sun, 06 Nov 1994 08:49:37 GMT";

/// The pipelined request appended by the trailing-data feeding mode.
pub const TRAILER: &[u8] = b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n";

pub fn http_date() -> HttpDate {
    HttpDate::from_system_time(UNIX_EPOCH + Duration::from_secs(784_111_777))
}

/// Replaces `{D}` by [`DATE`]: expected output is written as literals.
pub fn lit(s: &str) -> Vec<u8> {
    s.replace("{D}", DATE).into_bytes()
}

/// An owned copy of a request head.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Req {
    pub method: String,
    pub known_method: bool,
    pub target: String,
    pub version: Version,
    pub headers: Vec<(String, Vec<u8>)>,
    pub framing: Framing,
    pub keep_alive: bool,
    pub expect_continue: bool,
    pub upgrade: Option<Vec<u8>>,
    pub host: Vec<u8>,
}

impl Req {
    pub fn from_head(h: &RequestHead<'_>) -> Req {
        Req {
            method: h.method.as_str().to_string(),
            known_method: !matches!(h.method, Method::Other(_)),
            target: h.target.to_string(),
            version: h.version,
            headers: h
                .headers
                .iter()
                .map(|f| (f.name.to_string(), f.value.to_vec()))
                .collect(),
            framing: h.framing,
            keep_alive: h.keep_alive,
            expect_continue: h.expect_continue,
            upgrade: h.upgrade.map(<[u8]>::to_vec),
            host: h.host.to_vec(),
        }
    }

    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// An owned event. Consecutive `Data` events are merged (their boundaries depend on how the
/// input was split); `NeedData` is not recorded; repeated terminal events are recorded once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Request(Req),
    Data(Vec<u8>),
    End(Vec<(String, Vec<u8>)>),
    Paused,
    Upgraded,
    Closed,
    Error(Error),
}

impl Ev {
    pub fn req(&self) -> &Req {
        match self {
            Ev::Request(r) => r,
            other => panic!("not a request: {other:?}"),
        }
    }
}

/// How the simulated application answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    /// After `End`: `200` with body `"<method> <target>\n"` followed by the request body.
    Echo,
    /// Right after `Request`, before reading the body, with the same echo body (request body
    /// left out).
    Early,
    /// Never: the test answers by hand.
    Manual,
}

pub struct Harness {
    pub conn: Connection,
    pub buf: Vec<u8>,
    pub start: Instant,
    pub elapsed: Duration,
    pub out: Vec<u8>,
    pub events: Vec<Ev>,
    pub answer: Answer,
    /// Take every transmitted byte at once (a peer that always reads).
    pub auto_transmit: bool,
    pub send_errors: Vec<SendError>,
    pub current: Option<Req>,
    pub body: Vec<u8>,
}

impl Harness {
    pub fn new(limits: Limits, answer: Answer) -> Harness {
        let start = Instant::now();
        Harness {
            conn: Connection::new(limits, start),
            buf: Vec::new(),
            start,
            elapsed: Duration::ZERO,
            out: Vec::new(),
            events: Vec::new(),
            answer,
            auto_transmit: true,
            send_errors: Vec::new(),
            current: None,
            body: Vec::new(),
        }
    }

    pub fn echo() -> Harness {
        Harness::new(Limits::default(), Answer::Echo)
    }

    pub fn manual() -> Harness {
        Harness::new(Limits::default(), Answer::Manual)
    }

    pub fn now(&self) -> Now {
        Now {
            instant: self.start + self.elapsed,
            date: http_date(),
        }
    }

    pub fn instant(&self) -> Instant {
        self.start + self.elapsed
    }

    fn record(&mut self, ev: Ev) {
        match (self.events.last_mut(), ev) {
            (Some(Ev::Data(prev)), Ev::Data(more)) => prev.extend_from_slice(&more),
            (Some(last), ev @ (Ev::Paused | Ev::Closed | Ev::Upgraded | Ev::Error(_)))
                if *last == ev => {}
            (_, ev) => self.events.push(ev),
        }
    }

    /// Calls `next_event` until `NeedData`, `Paused` or a terminal event, as a driver does.
    pub fn pump(&mut self) {
        for _ in 0..1_000_000 {
            let now = self.now();
            let (ev, n) = match self.conn.next_event(&self.buf, now) {
                Err(err) => {
                    assert!(
                        self.conn.is_closed(),
                        "an error leaves the connection closed"
                    );
                    assert_eq!(self.conn.error(), Some(err), "the error is recorded");
                    self.record(Ev::Error(err));
                    break;
                }
                Ok((event, n)) => {
                    assert!(n <= self.buf.len(), "consumed more than the input");
                    let ev = match event {
                        Event::Request(head) => Some(Ev::Request(Req::from_head(&head))),
                        Event::Data(data) => {
                            assert!(!data.is_empty(), "empty Data event");
                            Some(Ev::Data(data.to_vec()))
                        }
                        Event::End(trailers) => Some(Ev::End(
                            trailers
                                .iter()
                                .map(|f| (f.name.to_string(), f.value.to_vec()))
                                .collect(),
                        )),
                        Event::NeedData => None,
                        Event::Paused => Some(Ev::Paused),
                        Event::Upgraded => Some(Ev::Upgraded),
                        Event::Closed => Some(Ev::Closed),
                    };
                    (ev, n)
                }
            };
            self.buf.drain(..n);
            let Some(ev) = ev else {
                break;
            };
            let stop = matches!(ev, Ev::Paused | Ev::Upgraded | Ev::Closed);
            if matches!(ev, Ev::Paused | Ev::Upgraded) {
                assert_eq!(n, 0, "{ev:?} consumes nothing");
            }
            self.record(ev.clone());
            match ev {
                Ev::Request(req) => {
                    self.current = Some(req);
                    self.body.clear();
                    if self.answer == Answer::Early {
                        self.respond_echo();
                    }
                }
                Ev::Data(data) => self.body.extend_from_slice(&data),
                Ev::End(_) if self.answer == Answer::Echo => self.respond_echo(),
                _ => {}
            }
            if stop {
                break;
            }
        }
        self.flush();
    }

    fn respond_echo(&mut self) {
        let Some(req) = self.current.clone() else {
            return;
        };
        let mut body = format!("{} {}\n", req.method, req.target).into_bytes();
        if self.answer == Answer::Echo {
            body.extend_from_slice(&self.body);
        }
        let now = self.now();
        if let Err(e) = self.conn.send_full(200, &[], &body, now) {
            self.send_errors.push(e);
        }
    }

    /// Writes what the core queued (when the simulated peer reads).
    pub fn flush(&mut self) {
        if self.auto_transmit {
            let n = self.conn.transmit().len();
            self.out.extend_from_slice(self.conn.transmit());
            let now = self.instant();
            self.conn.advance_transmit(n, now);
        }
    }

    /// Takes the transmitted bytes so far.
    pub fn take_out(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn take_events(&mut self) -> Vec<Ev> {
        std::mem::take(&mut self.events)
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.pump();
    }

    pub fn feed_bytewise(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.buf.push(b);
            self.pump();
        }
        if bytes.is_empty() {
            self.pump();
        }
    }

    pub fn eof(&mut self) {
        self.conn.receive_eof();
        self.pump();
    }

    /// Moves the simulated clock and applies deadlines, as a driver's timer does.
    pub fn advance(&mut self, d: Duration) {
        self.elapsed += d;
        let now = self.now();
        self.conn.handle_timeout(now);
        self.pump();
    }

    /// Moves the clock to the connection's next deadline (which must exist).
    pub fn advance_to_deadline(&mut self) {
        let deadline = self.conn.poll_timeout().expect("a deadline");
        let d = deadline.saturating_duration_since(self.instant());
        self.advance(d);
    }

    /// Sends a complete response by hand and pumps (the next pipelined request may proceed).
    pub fn send_full(&mut self, status: u16, headers: &[(&str, &[u8])], body: &[u8]) {
        let now = self.now();
        self.conn
            .send_full(status, headers, body, now)
            .expect("send_full");
        self.pump();
    }

    /// How many requests were read.
    pub fn requests(&self) -> usize {
        self.events
            .iter()
            .filter(|e| matches!(e, Ev::Request(_)))
            .count()
    }

    /// The request side is between messages with nothing buffered: a pipelined request could
    /// follow.
    pub fn at_boundary(&self) -> bool {
        self.buf.is_empty()
            && !self.conn.is_closed()
            && !self.conn.is_reading_body()
            && !self.conn.awaits_response()
            && !self.conn.is_sending_body()
            && !matches!(
                self.events.last(),
                Some(Ev::Paused | Ev::Upgraded | Ev::Closed | Ev::Error(_))
            )
    }
}

/// The outcome of feeding one input.
#[derive(Debug)]
pub struct Outcome {
    pub events: Vec<Ev>,
    pub out: Vec<u8>,
    /// Input bytes not consumed.
    pub leftover: Vec<u8>,
    pub closed: bool,
    pub error: Option<Error>,
    pub send_errors: Vec<SendError>,
}

impl Outcome {
    pub fn out_str(&self) -> String {
        String::from_utf8_lossy(&self.out).into_owned()
    }

    pub fn requests(&self) -> Vec<&Req> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Request(r) => Some(r),
                _ => None,
            })
            .collect()
    }

    /// The first request (the test expects one).
    pub fn req(&self) -> &Req {
        self.requests().first().copied().expect("a request")
    }

    /// The error the connection ended with (the test expects one).
    pub fn err(&self) -> Error {
        match self.events.last() {
            Some(Ev::Error(e)) => *e,
            other => panic!("expected an error, got {other:?} in {:?}", self.events),
        }
    }

    /// The request body as the events delivered it.
    pub fn body(&self) -> Vec<u8> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Ev::Data(d) => Some(d.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    Whole,
    Bytewise,
}

/// Feeds `input` to a fresh connection in one of the feeding modes, then (optionally) EOF.
pub fn run(input: &[u8], mode: Mode, limits: &Limits, answer: Answer, eof: bool) -> Harness {
    let mut h = Harness::new(limits.clone(), answer);
    match mode {
        Mode::Whole => h.feed(input),
        Mode::Bytewise => h.feed_bytewise(input),
    }
    if eof {
        h.eof();
    }
    h
}

pub fn outcome(h: Harness) -> Outcome {
    Outcome {
        closed: h.conn.is_closed(),
        error: h.conn.error(),
        events: h.events,
        out: h.out,
        leftover: h.buf,
        send_errors: h.send_errors,
    }
}

fn show(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Feeds `input` whole, byte by byte and whole with a pipelined request after it; asserts that
/// the three agree; returns the outcome of the whole feed.
pub fn check_with(input: &[u8], limits: &Limits, answer: Answer) -> Outcome {
    check_full(input, limits, answer, false)
}

pub fn check_full(input: &[u8], limits: &Limits, answer: Answer, eof: bool) -> Outcome {
    let whole = run(input, Mode::Whole, limits, answer, eof);
    let at_boundary = whole.at_boundary();
    let whole = outcome(whole);
    let bytes = outcome(run(input, Mode::Bytewise, limits, answer, eof));
    let ctx = || format!("input {:?}", show(input));
    assert_eq!(
        whole.events,
        bytes.events,
        "whole vs bytewise events, {}",
        ctx()
    );
    assert_eq!(
        show(&whole.out),
        show(&bytes.out),
        "whole vs bytewise output, {}",
        ctx()
    );
    if !whole.closed {
        // (Once closed, how much input was consumed does not matter.)
        assert_eq!(whole.leftover, bytes.leftover, "leftover, {}", ctx());
    }
    assert_eq!(whole.closed, bytes.closed, "closed, {}", ctx());
    assert_eq!(whole.error, bytes.error, "error, {}", ctx());
    assert_eq!(
        whole.send_errors,
        bytes.send_errors,
        "send errors, {}",
        ctx()
    );

    if !eof {
        let mut piped = input.to_vec();
        piped.extend_from_slice(TRAILER);
        let trailing = outcome(run(&piped, Mode::Whole, limits, answer, false));
        if at_boundary {
            // The pipelined request is read exactly as on a fresh connection.
            let next = outcome(run(TRAILER, Mode::Whole, limits, answer, false));
            let mut events = whole.events.clone();
            events.extend(next.events.iter().cloned());
            let mut out = whole.out.clone();
            out.extend_from_slice(&next.out);
            assert_eq!(trailing.events, events, "trailing events, {}", ctx());
            assert_eq!(
                show(&trailing.out),
                show(&out),
                "trailing output, {}",
                ctx()
            );
            assert_eq!(trailing.error, next.error, "trailing error, {}", ctx());
        } else if whole.closed || matches!(whole.events.last(), Some(Ev::Upgraded | Ev::Paused)) {
            // Nothing more is read: the pipelined bytes change nothing but the leftover.
            assert_eq!(trailing.events, whole.events, "trailing events, {}", ctx());
            assert_eq!(
                show(&trailing.out),
                show(&whole.out),
                "trailing output, {}",
                ctx()
            );
            assert_eq!(trailing.error, whole.error, "trailing error, {}", ctx());
            if !whole.closed {
                let mut leftover = whole.leftover.clone();
                leftover.extend_from_slice(TRAILER);
                assert_eq!(trailing.leftover, leftover, "trailing leftover, {}", ctx());
            }
        }
    }
    whole
}

/// [`check_with`] under the default limits with the echo application.
pub fn check(input: &[u8]) -> Outcome {
    check_with(input, &Limits::default(), Answer::Echo)
}

/// Like [`check`], then the peer closes.
pub fn check_eof(input: &[u8]) -> Outcome {
    check_full(input, &Limits::default(), Answer::Echo, true)
}

/// The expected answer of a failed request: `{status}` and message, then close.
pub fn error_response(err: Error) -> Vec<u8> {
    let reason = weft_core::reason_phrase(err.status());
    let body = format!("{}\n", err.message());
    format!(
        "HTTP/1.1 {} {reason}\r\nDate: {DATE}\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        err.status(),
        body.len()
    )
    .into_bytes()
}

/// The echo application's answer to `"<method> <target>\n<body>"` on an HTTP/1.1 keep-alive
/// connection; `connection` adds the core's `Connection` header.
pub fn echo_response(text: &str, connection: Option<&str>) -> Vec<u8> {
    let conn = connection
        .map(|c| format!("Connection: {c}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 200 OK\r\nDate: {DATE}\r\nContent-Length: {}\r\n{conn}\r\n{text}",
        text.len()
    )
    .into_bytes()
}

/// Asserts that `input` is refused with `err`: the matching error response is written, the
/// connection is closed, and no request event came out.
pub fn assert_rejected(input: &[u8], err: Error) {
    assert_rejected_with(input, &Limits::default(), err);
}

pub fn assert_rejected_with(input: &[u8], limits: &Limits, err: Error) {
    let o = check_with(input, limits, Answer::Echo);
    assert_eq!(o.events, vec![Ev::Error(err)], "input {:?}", show(input));
    assert_eq!(
        show(&o.out),
        show(&error_response(err)),
        "input {:?}",
        show(input)
    );
    assert!(o.closed);
}

/// Asserts that `input` is accepted as one request (answered by the echo application) and
/// returns it.
pub fn assert_accepted(input: &[u8]) -> Req {
    let o = check(input);
    assert!(
        matches!(o.events.first(), Some(Ev::Request(_))),
        "input {:?} gave {:?}",
        show(input),
        o.events
    );
    assert!(
        o.error.is_none(),
        "input {:?} gave {:?}",
        show(input),
        o.events
    );
    o.req().clone()
}

/// Asserts that `input` ends in `err` after its request head was accepted: the error response
/// is the whole output when no response had started, and the connection is closed.
pub fn assert_failed(input: &[u8], err: Error) -> Outcome {
    assert_failed_with(input, &Limits::default(), err)
}

pub fn assert_failed_with(input: &[u8], limits: &Limits, err: Error) -> Outcome {
    let o = check_with(input, limits, Answer::Echo);
    assert!(
        matches!(o.events.first(), Some(Ev::Request(_))),
        "input {:?} gave {:?}",
        show(input),
        o.events
    );
    assert_eq!(
        o.events.last(),
        Some(&Ev::Error(err)),
        "input {:?}",
        show(input)
    );
    assert_eq!(
        show(&o.out),
        show(&error_response(err)),
        "input {:?}",
        show(input)
    );
    assert!(o.closed);
    o
}
