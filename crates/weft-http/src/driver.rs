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
    App, Completed, Exchange, Output, Produce, Responder, ResponseSink, WRITE_HIGH_WATER,
};
use weft_core::{Method, Now};

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

/// Where the exchange stands between steps.
struct Step {
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
    let bytes = head_bytes(parts);
    let head_request = parts.method == "HEAD";
    let mut sink = HostResponse::new(head_request);
    let mut exchange = Exchange::new(now.instant);
    let mut log = Vec::new();
    let mut step = Step {
        responder: None,
        body_done: false,
        waiting_body: false,
        wake_at: None,
    };
    match parse_head(&bytes, &bridge_limits()) {
        Ok(head) => {
            debug_assert_eq!(head.method == Method::Head, head_request);
            let mut out = Output::for_exchange(&mut sink, now, &mut exchange);
            match app.start(&head, &mut out) {
                Ok(responder) => step.responder = responder,
                Err(err) => app.failed(&err, &mut out, &mut log),
            }
        }
        Err(err) => {
            // What the host let through and the core refuses: the core's status.
            exchange.stats.status = err.status();
            let body = format!("{err}\n");
            let mut out = Output::for_exchange(&mut sink, now, &mut exchange);
            let headers: [(&str, &[u8]); 1] = [("Content-Type", b"text/plain; charset=utf-8")];
            if out.full(err.status(), &headers, body.as_bytes()).is_err() {
                out.abort();
            }
        }
    }
    let complete = run(app, host, &mut sink, &mut exchange, &mut step, &mut log);
    host.finish(complete);
    let now = host.now();
    let done = Completed {
        peer: None,
        exchange: &exchange,
        duration: now.instant.saturating_duration_since(exchange.started),
    };
    app.complete(&done, &mut log);
    if !log.is_empty() {
        host.log(&log);
    }
}

/// Moves the exchange on until the response is complete and taken (`true`), or it cannot be
/// (`false`).
fn run<A: App, H: Host>(
    app: &A,
    host: &mut H,
    sink: &mut HostResponse,
    exchange: &mut Exchange,
    step: &mut Step,
    log: &mut Vec<u8>,
) -> bool {
    let mut head_sent = false;
    loop {
        if let Some(head) = sink.take_head() {
            if !host.send_head(head) {
                return false;
            }
            head_sent = true;
        }
        while !sink.pending().is_empty() {
            match host.write_body(sink.pending()) {
                None => return false,
                Some(0) => break,
                Some(n) => sink.consume(n),
            }
        }
        if sink.aborted() {
            return false;
        }
        if sink.ended() && sink.pending().is_empty() {
            return head_sent;
        }
        let now = host.now();
        if step.responder.is_none() && !sink.sending_body() && sink.awaits_response() {
            // Nothing will answer: the application broke its contract.
            let mut out = Output::for_exchange(sink, now, exchange);
            app.failed(
                &weft_app::AppError::Internal("the application left the request unanswered"),
                &mut out,
                log,
            );
            continue;
        }
        let room = sink.pending().len() < WRITE_HIGH_WATER;
        let wants_body =
            !step.body_done && room && step.responder.as_ref().is_some_and(|r| r.wants_body());
        let pulled = wants_body && pull_body(app, host, sink, exchange, step, log, now);
        let produced = room && sink.sending_body() && produce(app, sink, exchange, step, log, now);
        if pulled || produced {
            continue;
        }
        let readable = wants_body;
        let writable = !sink.pending().is_empty();
        let until = if room && !step.waiting_body {
            step.wake_at
        } else {
            None
        };
        if !readable && !writable && until.is_none() {
            // Nothing can move: a responder waiting for nothing that can come. End it as a
            // failure (the client sees a 500, or an incomplete response).
            if step.responder.take().is_some() && !sink.ended() {
                let mut out = Output::for_exchange(sink, now, exchange);
                app.failed(
                    &weft_app::AppError::Internal("the responder stalled"),
                    &mut out,
                    log,
                );
                continue;
            }
            return head_sent && sink.ended();
        }
        host.wait(writable, readable, until);
    }
}

/// Reads request body for the responder; returns whether anything happened.
fn pull_body<A: App, H: Host>(
    app: &A,
    host: &mut H,
    sink: &mut HostResponse,
    exchange: &mut Exchange,
    step: &mut Step,
    log: &mut Vec<u8>,
    now: Now,
) -> bool {
    let Some(r) = step.responder.as_mut() else {
        return false;
    };
    let mut out = Output::for_exchange(sink, now, exchange);
    let result = match host.read_body(BODY_READ) {
        BodyRead::Data(data) if data.is_empty() => return false,
        BodyRead::Data(data) => {
            step.waiting_body = false;
            r.body_data(&data, &mut out)
        }
        BodyRead::End => {
            step.body_done = true;
            step.waiting_body = false;
            r.body_end(&mut out)
        }
        BodyRead::Failed => {
            step.body_done = true;
            out.abort();
            return true;
        }
    };
    if let Err(err) = result {
        app.failed(&err, &mut out, log);
    }
    true
}

/// Runs the responder's producer once; returns whether anything happened.
fn produce<A: App>(
    app: &A,
    sink: &mut HostResponse,
    exchange: &mut Exchange,
    step: &mut Step,
    log: &mut Vec<u8>,
    now: Now,
) -> bool {
    let Some(r) = step.responder.as_mut() else {
        return false;
    };
    if step.waiting_body || step.wake_at.is_some_and(|t| now.instant < t) {
        return false;
    }
    step.wake_at = None;
    let mut out = Output::for_exchange(sink, now, exchange);
    match r.produce(&mut out) {
        Ok(Produce::More | Produce::Done) => {}
        Ok(Produce::WaitUntil(t)) => step.wake_at = Some(t),
        Ok(Produce::WaitForBody) => step.waiting_body = true,
        Err(err) => app.failed(&err, &mut out, log),
    }
    true
}
