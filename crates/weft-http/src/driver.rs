//! The exchange loop of the bridge: one request, one response, driven through the same
//! [`App`] interface the event loop uses. The host is a [`Host`]: it gives the request body as
//! the application pulls it, takes the response head once and the body as its stream accepts
//! it, and blocks until one of those can make progress or a timer is due.
//!
//! Backpressure is the event loop's: the request body is read only while the responder wants
//! it and fewer than [`WRITE_HIGH_WATER`] response bytes wait for the host; the responder
//! produces only below that mark; a file or an echo of any size stays in bounded memory.

use std::time::Instant;

use weft_app::{
    App, AppError, Completed, Exchange, Output, Produce, Responder, ResponseSink, WRITE_HIGH_WATER,
};
use weft_core::Now;

use crate::request::{bridge_limits, head_bytes, parse_head, RequestParts};
use crate::sink::{HostHead, HostResponse};

/// Largest piece of request body read at once.
pub const BODY_READ: usize = 64 * 1024;

/// A piece of the request body.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyRead {
    /// Bytes (possibly none yet: the host has nothing ready).
    Data(Vec<u8>),
    /// The body ended.
    End,
    /// The body cannot be read (the client went away, or it broke the framing).
    Failed,
}

/// What the bridge needs of a host: the request body, the response, the clock and a way to
/// wait.
pub trait Host {
    /// The current time.
    fn now(&mut self) -> Now;
    /// At most `max` bytes of request body, without blocking.
    fn read_body(&mut self, max: usize) -> BodyRead;
    /// Hands the response head to the host (once per exchange). `false`: the host refused it
    /// (the exchange is over).
    fn send_head(&mut self, head: HostHead) -> bool;
    /// Writes a prefix of `data` without blocking; returns how much was taken, `None` when
    /// the response stream is gone (the client went away). What is taken goes on towards
    /// the client at once (a streamed line reaches it as it is produced).
    fn write_body(&mut self, data: &[u8]) -> Option<usize>;
    /// Completes the response body (`true`) or leaves it incomplete, so the client sees a
    /// broken response (`false`).
    fn finish(&mut self, complete: bool);
    /// Blocks until the response stream can take bytes (`writable`), request body arrived
    /// (`readable`), or `until` passed.
    fn wait(&mut self, writable: bool, readable: bool, until: Option<Instant>);
    /// Writes log lines (the access log and error lines).
    fn log(&mut self, lines: &[u8]);
}

/// One exchange in progress: the application's side of it and where it stands.
struct Exchanging<'a, A: App> {
    app: &'a A,
    sink: HostResponse,
    exchange: Exchange,
    log: Vec<u8>,
    responder: Option<Box<dyn Responder>>,
    /// The request body ended (or was never read).
    body_done: bool,
    /// The responder waits for more request body.
    waiting_body: bool,
    /// The responder waits for this time.
    wake_at: Option<Instant>,
}

/// Serves one request: `parts` from the host, the application `app`.
pub fn serve<A: App, H: Host>(app: &A, host: &mut H, parts: &RequestParts) {
    let now = host.now();
    let mut x = Exchanging {
        app,
        sink: HostResponse::new(parts.method == "HEAD"),
        exchange: Exchange::new(now.instant),
        log: Vec::new(),
        responder: None,
        body_done: false,
        waiting_body: false,
        wake_at: None,
    };
    x.start(&head_bytes(parts), now);
    let complete = x.run(host);
    host.finish(complete);
    let now = host.now();
    let done = Completed {
        peer: None,
        exchange: &x.exchange,
        duration: now.instant.saturating_duration_since(x.exchange.started),
    };
    app.complete(&done, &mut x.log);
    if !x.log.is_empty() {
        host.log(&x.log);
    }
}

impl<A: App> Exchanging<'_, A> {
    /// The application's view of the exchange at `now`.
    fn output(&mut self, now: Now) -> Output<'_> {
        Output::for_exchange(&mut self.sink, now, &mut self.exchange)
    }

    /// Hands the application the request head (`head`, HTTP/1.1 bytes).
    fn start(&mut self, head: &[u8], now: Now) {
        match parse_head(head, &bridge_limits()) {
            Ok(head) => match self.app.start(&head, &mut self.output(now)) {
                Ok(responder) => self.responder = responder,
                Err(err) => self.failed(&err, now),
            },
            Err(err) => {
                // What the host let through and the core refuses: the core's status.
                let body = format!("{err}\n");
                let headers: [(&str, &[u8]); 1] = [("Content-Type", b"text/plain; charset=utf-8")];
                let mut out = self.output(now);
                if out.full(err.status(), &headers, body.as_bytes()).is_err() {
                    out.abort();
                }
            }
        }
    }

    /// The application failed with `err`: its failure policy answers.
    fn failed(&mut self, err: &AppError, now: Now) {
        let app = self.app;
        let mut log = std::mem::take(&mut self.log);
        app.failed(err, &mut self.output(now), &mut log);
        self.log = log;
    }

    /// Moves the exchange on until the response is complete and taken (`true`), or it cannot
    /// be (`false`).
    fn run<H: Host>(&mut self, host: &mut H) -> bool {
        let mut head_sent = false;
        loop {
            if let Some(head) = self.sink.take_head() {
                if !host.send_head(head) {
                    return false;
                }
                head_sent = true;
            }
            while !self.sink.pending().is_empty() {
                match host.write_body(self.sink.pending()) {
                    None => return false,
                    Some(0) => break,
                    Some(n) => self.sink.consume(n),
                }
            }
            if self.sink.aborted() {
                return false;
            }
            if self.sink.ended() && self.sink.pending().is_empty() {
                return head_sent;
            }
            let now = host.now();
            if self.responder.is_none() && self.sink.awaits_response() {
                // Nothing will answer: the application broke its contract.
                self.failed(
                    &AppError::Internal("the application left the request unanswered"),
                    now,
                );
                continue;
            }
            let room = self.sink.pending().len() < WRITE_HIGH_WATER;
            let wants_body =
                !self.body_done && room && self.responder.as_ref().is_some_and(|r| r.wants_body());
            let pulled = wants_body && self.pull_body(host, now);
            let produced = room && self.sink.sending_body() && self.produce(now);
            if pulled || produced {
                continue;
            }
            let writable = !self.sink.pending().is_empty();
            let until = match room && !self.waiting_body {
                true => self.wake_at,
                false => None,
            };
            if !wants_body && !writable && until.is_none() {
                // Nothing can move: a responder waiting for nothing that can come. End it as
                // a failure (the client sees a 500, or an incomplete response).
                if self.responder.take().is_some() && !self.sink.ended() {
                    self.failed(&AppError::Internal("the responder stalled"), now);
                    continue;
                }
                return head_sent && self.sink.ended();
            }
            host.wait(writable, wants_body, until);
        }
    }

    /// Reads request body for the responder; returns whether anything happened.
    fn pull_body<H: Host>(&mut self, host: &mut H, now: Now) -> bool {
        let Some(mut r) = self.responder.take() else {
            return false;
        };
        let read = host.read_body(BODY_READ);
        let result = match read {
            BodyRead::Data(data) if data.is_empty() => {
                self.responder = Some(r);
                return false;
            }
            BodyRead::Data(data) => {
                self.waiting_body = false;
                r.body_data(&data, &mut self.output(now))
            }
            BodyRead::End => {
                self.body_done = true;
                self.waiting_body = false;
                r.body_end(&mut self.output(now))
            }
            BodyRead::Failed => {
                self.body_done = true;
                self.output(now).abort();
                Ok(())
            }
        };
        self.responder = Some(r);
        if let Err(err) = result {
            self.failed(&err, now);
        }
        true
    }

    /// Runs the responder's producer once; returns whether anything happened.
    fn produce(&mut self, now: Now) -> bool {
        if self.waiting_body || self.wake_at.is_some_and(|t| now.instant < t) {
            return false;
        }
        let Some(mut r) = self.responder.take() else {
            return false;
        };
        self.wake_at = None;
        let result = r.produce(&mut self.output(now));
        self.responder = Some(r);
        match result {
            Ok(Produce::More | Produce::Done) => {}
            Ok(Produce::WaitUntil(t)) => self.wake_at = Some(t),
            Ok(Produce::WaitForBody) => self.waiting_body = true,
            Err(err) => self.failed(&err, now),
        }
        true
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use std::collections::VecDeque;
    use std::time::{Duration, SystemTime};

    use weft_app::demo::{DemoApp, DemoConfig};
    use weft_core::HttpDate;

    use crate::Misconfigured;

    /// A host on a simulated clock: the request body arrives in the given pieces, the
    /// response stream takes at most `room` bytes per write.
    struct FakeHost {
        start: Instant,
        elapsed: Duration,
        body: VecDeque<BodyRead>,
        room: usize,
        head: Option<HostHead>,
        sent: Vec<u8>,
        /// The largest number of bytes offered to one write (what the bridge held).
        most_pending: usize,
        finished: Option<bool>,
        waits: usize,
        gone_after: Option<usize>,
        log: Vec<u8>,
    }

    impl FakeHost {
        fn new(body: Vec<BodyRead>, room: usize) -> FakeHost {
            FakeHost {
                start: Instant::now(),
                elapsed: Duration::ZERO,
                body: body.into(),
                room,
                head: None,
                sent: Vec::new(),
                most_pending: 0,
                finished: None,
                waits: 0,
                gone_after: None,
                log: Vec::new(),
            }
        }

        fn field(&self, name: &str) -> Option<String> {
            self.head.as_ref().and_then(|h| {
                h.fields
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
            })
        }

        fn status(&self) -> u16 {
            self.head.as_ref().map_or(0, |h| h.status)
        }
    }

    impl Host for FakeHost {
        fn now(&mut self) -> Now {
            Now {
                instant: self.start + self.elapsed,
                date: HttpDate::from_system_time(SystemTime::UNIX_EPOCH),
            }
        }

        fn read_body(&mut self, max: usize) -> BodyRead {
            match self.body.pop_front() {
                Some(BodyRead::Data(mut data)) if data.len() > max => {
                    let rest = data.split_off(max);
                    self.body.push_front(BodyRead::Data(rest));
                    BodyRead::Data(data)
                }
                Some(read) => read,
                None => BodyRead::End,
            }
        }

        fn send_head(&mut self, head: HostHead) -> bool {
            assert!(self.head.is_none(), "one head per exchange");
            self.head = Some(head);
            true
        }

        fn write_body(&mut self, data: &[u8]) -> Option<usize> {
            if self.gone_after.is_some_and(|n| self.sent.len() >= n) {
                return None;
            }
            self.most_pending = self.most_pending.max(data.len());
            let n = data.len().min(self.room);
            self.sent.extend_from_slice(&data[..n]);
            Some(n)
        }

        fn finish(&mut self, complete: bool) {
            assert!(self.finished.is_none(), "finished once");
            self.finished = Some(complete);
        }

        fn wait(&mut self, _writable: bool, _readable: bool, until: Option<Instant>) {
            self.waits += 1;
            assert!(self.waits < 100_000, "the bridge spins");
            if let Some(until) = until {
                self.elapsed = self.elapsed.max(until.duration_since(self.start));
            }
        }

        fn log(&mut self, lines: &[u8]) {
            self.log.extend_from_slice(lines);
        }
    }

    fn demo() -> DemoApp {
        DemoApp::new(DemoConfig::default()).unwrap()
    }

    fn request(method: &str, target: &str, fields: &[(&str, &str)]) -> RequestParts {
        RequestParts {
            method: method.into(),
            path_with_query: Some(target.into()),
            authority: Some("localhost".into()),
            fields: fields
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
        }
    }

    #[test]
    fn a_get_is_answered_with_the_applications_fields() {
        let mut host = FakeHost::new(vec![], usize::MAX);
        serve(&demo(), &mut host, &request("GET", "/hello", &[]));
        assert_eq!(host.status(), 200);
        assert_eq!(host.field("content-length").as_deref(), Some("13"));
        assert_eq!(host.field("server").as_deref(), Some("weft"));
        assert_eq!(host.field("date"), None, "Date is the host's");
        assert_eq!(host.sent, b"Hello, world!");
        assert_eq!(host.finished, Some(true));
        let log = String::from_utf8(host.log).unwrap();
        assert!(
            log.starts_with("- \"GET /hello HTTP/1.1\" 200 13 "),
            "{log}"
        );
    }

    #[test]
    fn a_large_echo_stays_in_bounded_memory() {
        let body: Vec<u8> = (0..1_048_576u32).map(|i| (i % 251) as u8).collect();
        let pieces = body
            .chunks(100_000)
            .map(|c| BodyRead::Data(c.to_vec()))
            .chain([BodyRead::Data(Vec::new()), BodyRead::End])
            .collect();
        let mut host = FakeHost::new(pieces, 3000);
        let len = body.len().to_string();
        let parts = request("POST", "/echo", &[("content-length", &len)]);
        serve(&demo(), &mut host, &parts);
        assert_eq!(host.status(), 200);
        assert_eq!(host.field("content-length").as_deref(), Some(len.as_str()));
        assert!(host.sent == body, "the echo is the body");
        assert!(
            host.most_pending <= WRITE_HIGH_WATER + BODY_READ,
            "held {} bytes",
            host.most_pending
        );
        assert_eq!(host.finished, Some(true));
    }

    #[test]
    fn a_streamed_body_without_length_is_echoed_whole() {
        let pieces = vec![
            BodyRead::Data(b"abc".to_vec()),
            BodyRead::Data(Vec::new()),
            BodyRead::Data(b"de".to_vec()),
            BodyRead::End,
        ];
        let mut host = FakeHost::new(pieces, 1);
        let mut parts = request("POST", "/echo", &[]);
        parts.mark_streamed_body();
        serve(&demo(), &mut host, &parts);
        assert_eq!(host.field("content-length"), None);
        assert_eq!(host.sent, b"abcde");
        assert_eq!(host.finished, Some(true));
    }

    #[test]
    fn the_sheep_come_one_by_one_on_time() {
        let mut host = FakeHost::new(vec![], usize::MAX);
        serve(
            &demo(),
            &mut host,
            &request("GET", "/sheep?n=3&ms=250", &[]),
        );
        assert_eq!(host.sent, b"1 sheep\n2 sheep\n3 sheep\n");
        assert_eq!(host.field("content-length"), None);
        assert!(
            host.elapsed >= Duration::from_millis(500),
            "{:?}",
            host.elapsed
        );
        assert_eq!(host.finished, Some(true));
    }

    #[test]
    fn head_keeps_the_length_and_sends_nothing() {
        let mut host = FakeHost::new(vec![], usize::MAX);
        serve(&demo(), &mut host, &request("HEAD", "/hello", &[]));
        assert_eq!(host.field("content-length").as_deref(), Some("13"));
        assert!(host.sent.is_empty());
        assert_eq!(host.finished, Some(true));
    }

    #[test]
    fn a_failure_after_the_head_leaves_the_response_broken() {
        let mut host = FakeHost::new(vec![], usize::MAX);
        serve(&demo(), &mut host, &request("GET", "/api/fail/stream", &[]));
        assert_eq!(host.status(), 200);
        assert_eq!(host.sent, b"partial\n");
        assert_eq!(host.finished, Some(false));
        let log = String::from_utf8(host.log).unwrap();
        assert!(log.contains("handler error"), "{log}");
    }

    #[test]
    fn a_client_that_goes_away_ends_the_exchange() {
        let mut host = FakeHost::new(vec![], 10);
        host.gone_after = Some(20);
        serve(&demo(), &mut host, &request("GET", "/sheep?n=50&ms=0", &[]));
        assert!((20..30).contains(&host.sent.len()), "{}", host.sent.len());
        assert_eq!(host.finished, Some(false));
    }

    #[test]
    fn websocket_routes_say_they_cannot_upgrade() {
        let mut host = FakeHost::new(vec![], usize::MAX);
        let parts = request(
            "GET",
            "/ws/echo",
            &[
                ("connection", "Upgrade"),
                ("upgrade", "websocket"),
                ("sec-websocket-version", "13"),
                ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
            ],
        );
        serve(&demo(), &mut host, &parts);
        assert_eq!(host.status(), 501);
        assert!(String::from_utf8_lossy(&host.sent).contains("wasi:http host"));
    }

    #[test]
    fn what_the_core_refuses_gets_the_cores_status() {
        let mut host = FakeHost::new(vec![], usize::MAX);
        serve(&demo(), &mut host, &request("GET", "/a b", &[]));
        assert_eq!(host.status(), 400);
        assert_eq!(host.finished, Some(true));
    }

    #[test]
    fn a_misconfigured_component_answers_500_with_the_reason() {
        let mut host = FakeHost::new(vec![], usize::MAX);
        let app = Misconfigured("WEFT_COMPRESS_LEVEL (must be between 0 (off) and 9)".into());
        serve(&app, &mut host, &request("GET", "/hello", &[]));
        assert_eq!(host.status(), 500);
        assert!(String::from_utf8_lossy(&host.sent).contains("WEFT_COMPRESS_LEVEL"));
        assert!(String::from_utf8_lossy(&host.log).contains("invalid configuration"));
    }
}
