//! The HTTP side of a connection: requests from the core go to the application, request
//! bodies are pulled while the responder wants them, streamed bodies are produced while the
//! transmit buffer has room, and a finished exchange is reported to the application.

use std::net::SocketAddr;

use weft_app::{App, Completed, Output, Produce, WRITE_HIGH_WATER};
use weft_core::{Event, Now};

use super::conn::{Conn, HttpState};

/// Feeds buffered input to the protocol core and dispatches its events. Returns whether
/// anything happened.
pub(super) fn pump<A: App>(app: &A, conn: &mut Conn, now: Now, log: &mut Vec<u8>) -> bool {
    let Some(http) = conn.http.as_deref_mut() else {
        return false;
    };
    let mut progressed = false;
    loop {
        if http.proto.error().is_some() {
            // Already answered (sticky error): nothing more to read.
            return progressed;
        }
        if http.proto.is_reading_body() {
            let wanted = http.responder.as_ref().is_some_and(|r| r.wants_body());
            if !wanted || http.proto.transmit().len() >= WRITE_HIGH_WATER {
                break;
            }
        }
        let result = http.proto.next_event(conn.inbuf.data(), now);
        let (event, consumed) = match result {
            Ok(step) => step,
            Err(err) => {
                if !http.in_exchange {
                    // Rejected before a request head was formed: an exchange without a
                    // request line.
                    http.exchange.begin(now.instant);
                }
                http.exchange.stats.status = err.status();
                http.responder = None;
                http.in_exchange = true;
                complete_exchange(app, http, conn.peer, now, log);
                return true;
            }
        };
        let stop = match event {
            Event::Request(head) => {
                http.in_exchange = true;
                http.waiting_body = false;
                http.wake_at = None;
                // Only the exchange's memory is reused: everything in it starts afresh.
                http.exchange.begin(now.instant);
                let mut out = Output::for_exchange(&mut http.proto, now, &mut http.exchange);
                match app.start(&head, &mut out) {
                    Ok(responder) => http.responder = responder,
                    Err(err) => app.failed(&err, &mut out, log),
                }
                false
            }
            Event::Data(data) => {
                http.waiting_body = false;
                if let Some(r) = http.responder.as_mut() {
                    let mut out = Output::for_exchange(&mut http.proto, now, &mut http.exchange);
                    if let Err(err) = r.body_data(data, &mut out) {
                        app.failed(&err, &mut out, log);
                    }
                }
                false
            }
            Event::End(_) => {
                http.waiting_body = false;
                if let Some(r) = http.responder.as_mut() {
                    let mut out = Output::for_exchange(&mut http.proto, now, &mut http.exchange);
                    if let Err(err) = r.body_end(&mut out) {
                        app.failed(&err, &mut out, log);
                    }
                }
                false
            }
            Event::NeedData | Event::Paused | Event::Closed | Event::Upgraded => true,
        };
        conn.inbuf.consume(consumed);
        if consumed > 0 {
            progressed = true;
        }
        complete_exchange(app, http, conn.peer, now, log);
        if stop {
            return progressed;
        }
        progressed = true;
    }
    progressed
}

/// Runs the responder's producer while the socket can take more.
pub(super) fn produce<A: App>(app: &A, conn: &mut Conn, now: Now, log: &mut Vec<u8>) -> bool {
    let Some(http) = conn.http.as_deref_mut() else {
        return false;
    };
    let mut progressed = false;
    while let Some(r) = http.responder.as_mut() {
        if !http.proto.is_sending_body()
            || http.waiting_body
            || http.wake_at.is_some_and(|t| now.instant < t)
            || http.proto.transmit().len() >= WRITE_HIGH_WATER
        {
            break;
        }
        http.wake_at = None;
        let mut out = Output::for_exchange(&mut http.proto, now, &mut http.exchange);
        match r.produce(&mut out) {
            Ok(Produce::More) => progressed = true,
            Ok(Produce::WaitUntil(t)) => {
                http.wake_at = Some(t);
                break;
            }
            Ok(Produce::WaitForBody) => {
                http.waiting_body = true;
                break;
            }
            Ok(Produce::Done) => progressed = true,
            Err(err) => {
                app.failed(&err, &mut out, log);
                progressed = true;
            }
        }
        complete_exchange(app, http, conn.peer, now, log);
    }
    progressed
}

/// When the response of the current exchange is complete: tell the application (the access
/// log) and drop the responder.
fn complete_exchange<A: App>(
    app: &A,
    http: &mut HttpState,
    peer: SocketAddr,
    now: Now,
    log: &mut Vec<u8>,
) {
    if !http.in_exchange || http.proto.awaits_response() || http.proto.is_sending_body() {
        return;
    }
    http.in_exchange = false;
    http.responder = None;
    http.wake_at = None;
    http.waiting_body = false;
    let done = Completed {
        peer: Some(peer),
        exchange: &http.exchange,
        duration: now.instant.saturating_duration_since(http.exchange.started),
    };
    app.complete(&done, log);
}
