//! A connection after its `101`: the core's WebSocket codec and the application's handler.
//! Input goes to the codec while the output keeps up; complete messages go to the handler;
//! the handler's `poll` runs when a notification made it due and the output has room.

use std::io::Write;
use std::sync::Arc;

use weft_app::{Message, Notifier, Wake, WebSocketHandler, WsOutput, WRITE_HIGH_WATER};
use weft_core::ws::{WebSocket, WsEvent};
use weft_core::Now;

use super::conn::Conn;
use super::wake::WakeList;
use crate::backend::Token;

/// A WebSocket session: the core's codec and the application's handler.
pub(super) struct WsSession {
    pub(super) codec: WebSocket,
    pub(super) handler: Box<dyn WebSocketHandler>,
    /// The handler's `poll` is due (a notification came, or it had more than the output
    /// could take).
    pub(super) poll_due: bool,
    /// The codec failed (its Close is queued): close once it is written.
    pub(super) failed: bool,
}

/// After the core reported the upgrade: starts the WebSocket session the exchange accepted,
/// or ends the connection when there is none (a `101` sent without a session to run).
pub(super) fn start_session(
    conn: &mut Conn,
    token: Token,
    wake: &Arc<WakeList>,
    now: Now,
    log: &mut Vec<u8>,
) {
    let Some(http) = conn.http.as_mut() else {
        return;
    };
    let Some(pending) = http.exchange.upgrade.take() else {
        http.proto.abort();
        return;
    };
    let mut session = WsSession {
        codec: WebSocket::new(pending.config, now.instant),
        handler: pending.handler,
        poll_due: false,
        failed: false,
    };
    let wake: Arc<dyn Wake> = Arc::clone(wake) as Arc<dyn Wake>;
    let notify = Notifier::new(wake, token);
    let mut out = WsOutput::new(session.codec.sender(), now.instant);
    if let Err(err) = session.handler.open(notify, &mut out) {
        handler_failed(&mut session, &err, now, log);
    }
    conn.ws = Some(Box::new(session));
}

/// A WebSocket handler failed: the session ends with 1011 (internal error).
fn handler_failed(session: &mut WsSession, err: &weft_app::AppError, now: Now, log: &mut Vec<u8>) {
    let _ = writeln!(log, "weft: websocket handler failed: {err}");
    session.codec.close(1011, "internal error", now.instant);
}

/// Feeds buffered input to the WebSocket codec and hands complete messages to the handler,
/// while the output keeps up (an echo's answers cannot pile up). The handler gets the message
/// as the codec holds it, with the codec's sending side to answer through: nothing is copied.
pub(super) fn ws_pump(conn: &mut Conn, now: Now, log: &mut Vec<u8>) -> bool {
    let Some(session) = conn.ws.as_mut() else {
        return false;
    };
    let mut progressed = false;
    loop {
        if session.failed || session.codec.transmit().len() >= WRITE_HIGH_WATER {
            return progressed;
        }
        let (event, consumed, sender) = match session
            .codec
            .next_event_and_sender(conn.inbuf.data(), now.instant)
        {
            Ok(found) => found,
            Err(_) => {
                // The codec queued its Close with the error's code.
                session.failed = true;
                return true;
            }
        };
        conn.inbuf.consume(consumed);
        progressed |= consumed > 0;
        let msg = match event {
            WsEvent::Text(text) => Message::Text(text),
            WsEvent::Binary(data) => Message::Binary(data),
            // Answered by the codec itself.
            WsEvent::Ping(_) | WsEvent::Pong(_) | WsEvent::Close { .. } => {
                progressed = true;
                continue;
            }
            WsEvent::NeedData | WsEvent::Closed => return progressed,
        };
        progressed = true;
        let mut out = WsOutput::new(sender, now.instant);
        if let Err(err) = session.handler.message(msg, &mut out) {
            handler_failed(session, &err, now, log);
        }
    }
}

/// Runs the handler's `poll` when it is due and the output has room.
pub(super) fn ws_produce(conn: &mut Conn, now: Now, log: &mut Vec<u8>) -> bool {
    let Some(session) = conn.ws.as_mut() else {
        return false;
    };
    if !session.poll_due
        || session.failed
        || session.codec.is_closing()
        || session.codec.transmit().len() >= WRITE_HIGH_WATER
    {
        return false;
    }
    session.poll_due = false;
    let before = session.codec.transmit().len();
    let mut out = WsOutput::new(session.codec.sender(), now.instant);
    match session.handler.poll(&mut out) {
        Ok(more) => session.poll_due = more,
        Err(err) => handler_failed(session, &err, now, log),
    }
    session.codec.transmit().len() != before || session.codec.is_closing()
}
