//! The one in-memory driver of the crate's tests: feeds requests through weft-core's
//! [`Connection`] and drives [`App::start`] and the [`Responder`] the way the event loop does
//! (the request body pulled while the responder wants it, `produce` only while
//! [`Output::room`] allows, [`Produce::WaitUntil`] honoured by moving a simulated clock, the
//! peer reading `drain` bytes per round), then parses what went out: status, header fields and
//! the decoded body of each response.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::net::SocketAddr;
use std::time::{Duration, Instant, SystemTime};

use weft_core::{Connection, Event, HttpDate, Limits, Method, Now, RequestHead};

use crate::{App, AppError, Completed, Exchange, Output, Produce, Responder, WRITE_HIGH_WATER};

/// How the driver behaves.
pub(crate) struct Options {
    /// The response `Date` (fixed for the whole run).
    pub date: SystemTime,
    /// Bytes the peer reads from the transmit buffer per round.
    pub drain: usize,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            date: SystemTime::now(),
            drain: usize::MAX,
        }
    }
}

/// A handler closure as an [`App`] (for services that are not one: the file service, the
/// compression helpers).
pub(crate) struct Handler<F>(pub F);

impl<F> App for Handler<F>
where
    F: Fn(&RequestHead<'_>, &mut Output<'_>) -> Result<Option<Box<dyn Responder>>, AppError>,
{
    fn start(
        &self,
        head: &RequestHead<'_>,
        out: &mut Output<'_>,
    ) -> Result<Option<Box<dyn Responder>>, AppError> {
        (self.0)(head, out)
    }
}

/// One response as it went out.
pub(crate) struct Response {
    pub status: u16,
    /// The status line and the header fields, without the blank line.
    pub head: String,
    pub headers: Vec<(String, String)>,
    /// The body, chunked framing removed.
    pub body: Vec<u8>,
    /// The chunks, when the body was chunked.
    pub chunks: Option<Vec<Vec<u8>>>,
    /// Whether the whole body (as its framing announced) was sent.
    pub complete: bool,
    /// The response's bytes on the wire.
    pub raw: Vec<u8>,
}

impl Response {
    /// The first field called `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// What a run sent and logged.
pub(crate) struct Run {
    /// Everything the connection queued, in order.
    pub wire: Vec<u8>,
    pub responses: Vec<Response>,
    /// The app's log sink.
    pub log: String,
    pub closed: bool,
    /// The largest transmit buffer seen after a produce step.
    pub max_queued: usize,
    /// The `Date` value of the run.
    pub date: String,
}

impl Run {
    /// The wire as text, `Date` values replaced by `<date>`.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.wire).replace(&self.date, "<date>")
    }

    /// The first response.
    pub fn response(self) -> Response {
        self.responses.into_iter().next().expect("no response")
    }
}

/// Runs `input` (one or more requests) through `app` with the default [`Options`].
pub(crate) fn run(app: &dyn App, input: &[u8]) -> Run {
    run_with(app, input, Options::default())
}

/// Runs `input` (one or more requests) through `app`, each exchange to its end.
pub(crate) fn run_with(app: &dyn App, input: &[u8], options: Options) -> Run {
    let mut now = Now {
        instant: Instant::now(),
        date: HttpDate::from_system_time(options.date),
    };
    let peer: SocketAddr = "127.0.0.1:5000".parse().unwrap();
    let mut conn = Connection::new(Limits::default(), now.instant);
    let mut ex = Exchange::new(now.instant);
    let mut run = Run {
        wire: Vec::new(),
        responses: Vec::new(),
        log: String::new(),
        closed: false,
        max_queued: 0,
        date: String::from_utf8(now.date.as_bytes().to_vec()).unwrap(),
    };
    let mut log = Vec::new();
    let mut heads = Vec::new();
    let mut pos = 0;
    while pos < input.len() && !conn.is_closed() {
        let (event, used) = conn.next_event(&input[pos..], now).unwrap();
        pos += used;
        let Event::Request(head) = event else {
            if used == 0 {
                break;
            }
            continue;
        };
        heads.push(head.method == Method::Head);
        ex.begin(now.instant);
        let mut out = Output::for_exchange(&mut conn, now, &mut ex);
        let responder = match app.start(&head, &mut out) {
            Ok(r) => r,
            Err(e) => {
                app.failed(&e, &mut out, &mut log);
                None
            }
        };
        if let Some(r) = responder {
            let step = Step {
                app,
                input,
                conn: &mut conn,
                ex: &mut ex,
                log: &mut log,
                drain: options.drain,
            };
            step.drive(r, &mut pos, &mut now, &mut run);
        }
        let done = Completed {
            peer: Some(peer),
            exchange: &ex,
            duration: Duration::from_micros(1234),
        };
        app.complete(&done, &mut log);
        run.wire.extend_from_slice(conn.transmit());
        let n = conn.transmit().len();
        conn.advance_transmit(n, now.instant);
    }
    run.log = String::from_utf8(log).unwrap();
    run.closed = conn.is_closed();
    run.responses = parse(&run.wire, &heads);
    run
}

/// The state one exchange's responder is driven with.
struct Step<'a> {
    app: &'a dyn App,
    input: &'a [u8],
    conn: &'a mut Connection,
    ex: &'a mut Exchange,
    log: &'a mut Vec<u8>,
    drain: usize,
}

impl Step<'_> {
    /// Drives `r` as the loop does until the exchange is over (the response complete, or
    /// the connection closed): the request body is read only while the responder wants it
    /// and the output is below the high-water mark; `produce` runs only while a body is being
    /// sent, the responder is not waiting for the request body and there is room.
    fn drive(self, mut r: Box<dyn Responder>, pos: &mut usize, now: &mut Now, run: &mut Run) {
        let mut waiting_body = false;
        for _ in 0..1_000_000 {
            if self.conn.is_closed()
                || !(self.conn.awaits_response() || self.conn.is_sending_body())
            {
                return;
            }
            let mut result = Ok(Produce::More);
            let below = self.conn.transmit().len() < WRITE_HIGH_WATER;
            if self.conn.is_reading_body() && r.wants_body() && below {
                let (event, used) = self.conn.next_event(&self.input[*pos..], *now).unwrap();
                *pos += used;
                let mut out = Output::for_exchange(self.conn, *now, self.ex);
                waiting_body = false;
                result = match event {
                    Event::Data(data) => r.body_data(data, &mut out).map(|()| Produce::More),
                    Event::End(_) => r.body_end(&mut out).map(|()| Produce::More),
                    _ => panic!("the request body ended early"),
                };
            }
            let sending = self.conn.is_sending_body();
            let mut out = Output::for_exchange(self.conn, *now, self.ex);
            if result.is_ok() && sending && !waiting_body && out.room() > 0 {
                result = r.produce(&mut out);
            }
            run.max_queued = run.max_queued.max(self.conn.transmit().len());
            let n = self.conn.transmit().len().min(self.drain);
            run.wire.extend_from_slice(&self.conn.transmit()[..n]);
            self.conn.advance_transmit(n, now.instant);
            match result {
                Ok(Produce::More | Produce::Done) => {}
                Ok(Produce::WaitForBody) => waiting_body = true,
                Ok(Produce::WaitUntil(t)) => now.instant = now.instant.max(t),
                Err(e) => {
                    let mut out = Output::for_exchange(self.conn, *now, self.ex);
                    self.app.failed(&e, &mut out, self.log);
                    return;
                }
            }
        }
        panic!("the responder never finished");
    }
}

/// Splits the wire into responses; `heads[i]` says whether request `i` was a HEAD.
fn parse(mut wire: &[u8], heads: &[bool]) -> Vec<Response> {
    let mut responses = Vec::new();
    let mut request = 0;
    while let Some(end) = wire.windows(4).position(|w| w == b"\r\n\r\n") {
        let head = String::from_utf8(wire[..end].to_vec()).unwrap();
        let mut lines = head.split("\r\n");
        let status: u16 = lines.next().unwrap()[9..12].parse().unwrap();
        let headers: Vec<(String, String)> = lines
            .map(|l| {
                let (n, v) = l.split_once(':').unwrap();
                (n.to_string(), v.trim().to_string())
            })
            .collect();
        let rest = &wire[end + 4..];
        let mut response = Response {
            status,
            head,
            headers,
            body: Vec::new(),
            chunks: None,
            complete: true,
            raw: Vec::new(),
        };
        let interim = (100..200).contains(&status) && status != 101;
        let bodiless = interim || heads.get(request).copied().unwrap_or(false);
        let used = if bodiless || status == 204 || status == 304 || status == 101 {
            0
        } else if response
            .header("transfer-encoding")
            .is_some_and(|te| te.eq_ignore_ascii_case("chunked"))
        {
            let (chunks, used, complete) = dechunk(rest);
            response.body = chunks.concat();
            response.chunks = Some(chunks);
            response.complete = complete;
            used
        } else {
            let len = response
                .header("content-length")
                .map_or(rest.len(), |l| l.parse().unwrap());
            response.complete = rest.len() >= len;
            response.body = rest[..len.min(rest.len())].to_vec();
            response.body.len()
        };
        response.raw = wire[..end + 4 + used].to_vec();
        wire = &wire[end + 4 + used..];
        responses.push(response);
        if status == 101 {
            break;
        }
        if !interim {
            request += 1;
        }
    }
    responses
}

/// The chunks of a chunked body, the bytes they took and whether the last chunk came.
fn dechunk(mut body: &[u8]) -> (Vec<Vec<u8>>, usize, bool) {
    let total = body.len();
    let mut chunks = Vec::new();
    while let Some(line) = body.windows(2).position(|w| w == b"\r\n") {
        let size = std::str::from_utf8(&body[..line]).unwrap();
        let size = size.split(';').next().unwrap_or("").trim();
        let n = usize::from_str_radix(size, 16).unwrap();
        if n == 0 {
            // No trailers are sent: the last chunk is followed by the blank line.
            let used = total - body.len() + line + 4;
            return (chunks, used.min(total), true);
        }
        if body.len() < line + 2 + n + 2 {
            chunks.push(body[line + 2..body.len().min(line + 2 + n)].to_vec());
            return (chunks, total, false);
        }
        chunks.push(body[line + 2..line + 2 + n].to_vec());
        body = &body[line + 2 + n + 2..];
    }
    (chunks, total, false)
}
