//! The HTTP side of a connection: requests from the core go to the application, request
//! bodies are pulled while the responder wants them, streamed bodies are produced while the
//! transmit buffer has room, and a finished exchange is reported to the application.

use weft_app::{App, Completed, Output, Produce, WRITE_HIGH_WATER};
use weft_core::{Event, Now};

use super::conn::Conn;

/// Feeds buffered input to the protocol core and dispatches its events. Returns whether
/// anything happened.
pub(super) fn pump<A: App>(app: &A, conn: &mut Conn, now: Now, log: &mut Vec<u8>) -> bool {
    let mut progressed = false;
    loop {
        if conn.proto.error().is_some() {
            // Already answered (sticky error): nothing more to read.
            return progressed;
        }
        if conn.proto.is_reading_body() {
            let wanted = conn.http.responder.as_ref().is_some_and(|r| r.wants_body());
            if !wanted || conn.proto.transmit().len() >= WRITE_HIGH_WATER {
                break;
            }
        }
        let result = conn.proto.next_event(conn.inbuf.data(), now);
        let (event, consumed) = match result {
            Ok(step) => step,
            Err(err) => {
                if !conn.http.in_exchange {
                    // Rejected before a request head was formed: an exchange without a
                    // request line.
                    conn.http.exchange.begin(now.instant);
                }
                conn.http.exchange.stats.status = err.status();
                conn.http.responder = None;
                conn.http.in_exchange = true;
                complete_exchange(app, conn, now, log);
                return true;
            }
        };
        let stop = match event {
            Event::Request(head) => {
                conn.http.in_exchange = true;
                conn.http.waiting_body = false;
                conn.http.wake_at = None;
                // Only the exchange's memory is reused: everything in it starts afresh.
                conn.http.exchange.begin(now.instant);
                let mut out = Output::for_exchange(&mut conn.proto, now, &mut conn.http.exchange);
                match app.start(&head, &mut out) {
                    Ok(responder) => conn.http.responder = responder,
                    Err(err) => app.failed(&err, &mut out, log),
                }
                false
            }
            Event::Data(data) => {
                conn.http.waiting_body = false;
                if let Some(r) = conn.http.responder.as_mut() {
                    let mut out =
                        Output::for_exchange(&mut conn.proto, now, &mut conn.http.exchange);
                    if let Err(err) = r.body_data(data, &mut out) {
                        app.failed(&err, &mut out, log);
                    }
                }
                false
            }
            Event::End(_) => {
                conn.http.waiting_body = false;
                if let Some(r) = conn.http.responder.as_mut() {
                    let mut out =
                        Output::for_exchange(&mut conn.proto, now, &mut conn.http.exchange);
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
        complete_exchange(app, conn, now, log);
        if stop {
            return progressed;
        }
        progressed = true;
    }
    progressed
}

/// Runs the responder's producer while the socket can take more.
pub(super) fn produce<A: App>(app: &A, conn: &mut Conn, now: Now, log: &mut Vec<u8>) -> bool {
    let mut progressed = false;
    while let Some(r) = conn.http.responder.as_mut() {
        if !conn.proto.is_sending_body()
            || conn.http.waiting_body
            || conn.http.wake_at.is_some_and(|t| now.instant < t)
            || conn.proto.transmit().len() >= WRITE_HIGH_WATER
        {
            break;
        }
        conn.http.wake_at = None;
        let mut out = Output::for_exchange(&mut conn.proto, now, &mut conn.http.exchange);
        match r.produce(&mut out) {
            Ok(Produce::More) => progressed = true,
            Ok(Produce::WaitUntil(t)) => {
                conn.http.wake_at = Some(t);
                break;
            }
            Ok(Produce::WaitForBody) => {
                conn.http.waiting_body = true;
                break;
            }
            Ok(Produce::Done) => progressed = true,
            Err(err) => {
                app.failed(&err, &mut out, log);
                progressed = true;
            }
        }
        complete_exchange(app, conn, now, log);
    }
    progressed
}

/// When the response of the current exchange is complete: tell the application (the access
/// log) and drop the responder.
fn complete_exchange<A: App>(app: &A, conn: &mut Conn, now: Now, log: &mut Vec<u8>) {
    if !conn.http.in_exchange || conn.proto.awaits_response() || conn.proto.is_sending_body() {
        return;
    }
    conn.http.in_exchange = false;
    conn.http.responder = None;
    conn.http.wake_at = None;
    conn.http.waiting_body = false;
    let done = Completed {
        peer: Some(conn.peer),
        exchange: &conn.http.exchange,
        duration: now
            .instant
            .saturating_duration_since(conn.http.exchange.started),
    };
    app.complete(&done, log);
}
