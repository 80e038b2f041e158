//! WebSocket deadlines: idle pings, the ping timeout, the close timeout; and EOF.

mod ws_support;

use std::time::Duration;

use weft_core::ws::{WsConfig, WsSendError};
use ws_support::*;

fn secs(s: u64) -> Duration {
    Duration::from_secs(s)
}

fn config() -> WsConfig {
    WsConfig {
        ping_interval: Some(secs(30)),
        ping_timeout: secs(10),
        close_timeout: secs(5),
        ..WsConfig::default()
    }
}

#[test]
fn default_config() {
    let c = WsConfig::default();
    assert_eq!(c.max_frame, 16 << 20);
    assert_eq!(c.max_message, 16 << 20);
    assert_eq!(c.deflate, None);
    assert_eq!(c.ping_interval, Some(secs(30)));
    assert_eq!(c.ping_timeout, secs(10));
    assert_eq!(c.close_timeout, secs(5));
    assert_eq!(c.send_timeout, secs(30));
}

#[test]
fn idle_peer_is_pinged_then_closed_then_dropped() {
    let mut h = WsHarness::new(config());
    assert_eq!(h.ws.poll_timeout(), Some(h.start + secs(30)));
    // Nothing happens before the deadline.
    h.advance(secs(29));
    assert!(h.take_out().is_empty());
    h.advance(secs(1));
    assert_eq!(server_frames(&h.take_out())[0].opcode, 0x9, "a ping");
    assert_eq!(h.ws.poll_timeout(), Some(h.start + secs(40)));
    // No answer within the ping timeout: Close 1001.
    h.advance(secs(10));
    assert_eq!(h.take_out(), server_close(1001, "ping timeout"));
    assert!(h.ws.is_closing());
    assert!(!h.ws.is_closed());
    assert_eq!(h.ws.poll_timeout(), Some(h.start + secs(45)));
    // No Close from the peer within the close timeout: the session is over.
    h.advance(secs(5));
    assert!(h.ws.is_closed());
    assert_eq!(h.take_events(), [Ev::Closed]);
    assert_eq!(h.ws.poll_timeout(), None);
    assert!(h.take_out().is_empty());
}

#[test]
fn any_input_answers_the_ping() {
    let mut h = WsHarness::new(config());
    h.advance(secs(30));
    assert_eq!(server_frames(&h.take_out())[0].opcode, 0x9);
    h.advance(secs(9));
    // One byte of a frame header is enough.
    let f = text_frame("hi");
    h.feed(&f[..1]);
    assert_eq!(h.ws.poll_timeout(), Some(h.start + secs(39 + 30)));
    h.advance(secs(1));
    assert!(h.take_out().is_empty(), "no close");
    h.feed(&f[1..]);
    assert_eq!(h.take_events(), [text("hi")]);
    assert_eq!(h.ws.poll_timeout(), Some(h.start + secs(40 + 30)));
}

#[test]
fn stale_input_is_not_activity() {
    // A driver that pumps again after a timeout passes the same incomplete header: that is
    // not new input.
    let mut h = WsHarness::new(config());
    let f = text_frame("hi");
    h.feed(&f[..1]);
    h.advance(secs(30));
    assert_eq!(server_frames(&h.take_out())[0].opcode, 0x9);
    h.advance(secs(10));
    assert_eq!(h.take_out(), server_close(1001, "ping timeout"));
}

#[test]
fn activity_postpones_the_ping() {
    let mut h = WsHarness::new(config());
    h.advance(secs(20));
    h.feed(&text_frame("a"));
    h.advance(secs(20));
    assert!(h.take_out().is_empty());
    assert_eq!(h.ws.poll_timeout(), Some(h.start + secs(50)));
}

#[test]
fn no_idle_pings_without_an_interval() {
    let mut h = WsHarness::new(WsConfig {
        ping_interval: None,
        ..config()
    });
    assert_eq!(h.ws.poll_timeout(), None);
    h.advance(secs(3600));
    assert!(h.take_out().is_empty());
}

#[test]
fn close_timeout_after_our_close() {
    let mut h = WsHarness::new(config());
    h.advance(secs(1));
    let now = h.now();
    h.ws.close(1000, "", now);
    assert_eq!(h.ws.poll_timeout(), Some(h.start + secs(6)));
    h.advance(secs(4));
    assert!(!h.ws.is_closed());
    h.advance(secs(1));
    assert!(h.ws.is_closed());
    assert_eq!(h.take_events(), [Ev::Closed]);
}

#[test]
fn peers_close_in_time_ends_the_session_at_once() {
    let mut h = WsHarness::new(config());
    let now = h.now();
    h.ws.close(1000, "", now);
    h.advance(secs(2));
    h.feed(&close_frame(1000, b""));
    assert!(h.ws.is_closed());
    assert_eq!(h.ws.poll_timeout(), None);
    assert_eq!(
        h.take_events(),
        [Ev::Close(Some(1000), String::new()), Ev::Closed]
    );
}

#[test]
fn eof_mid_frame() {
    let mut h = WsHarness::new(config());
    h.feed(&text_frame("hello")[..4]);
    h.eof();
    assert_eq!(h.take_events(), [Ev::Closed]);
    assert!(h.take_out().is_empty(), "no Close after EOF (1006)");
    assert_eq!(h.ws.poll_timeout(), None);
    h.advance(secs(100));
    assert!(h.take_out().is_empty());
}

#[test]
fn timeouts_after_an_error_do_nothing() {
    let mut h = WsHarness::new(config());
    h.feed(&[0x83]);
    assert!(matches!(h.take_events().as_slice(), [e] if error(1002)(e)));
    h.take_out();
    assert_eq!(h.ws.poll_timeout(), None);
    h.advance(secs(100));
    assert!(h.take_out().is_empty());
}

/// A peer that stops reading: its output waits at most `send_timeout`, then the session is
/// over and the output dropped, whatever the ping and close timers say (a ping or a Close
/// queued behind output the peer does not take can never reach it).
#[test]
fn send_timeout_ends_a_session_whose_peer_stops_reading() {
    let start = std::time::Instant::now();
    let mut ws = weft_core::ws::WebSocket::new(
        WsConfig {
            send_timeout: secs(7),
            ..config()
        },
        start,
    );
    ws.send_binary(&[7; 100_000], start).unwrap();
    assert_eq!(ws.poll_timeout(), Some(start + secs(7)));
    // The peer takes a little: the send timeout starts again.
    ws.advance_transmit(10, start + secs(5));
    assert_eq!(ws.poll_timeout(), Some(start + secs(12)));
    ws.handle_timeout(start + secs(11));
    assert!(!ws.is_closed());
    ws.handle_timeout(start + secs(12));
    assert!(ws.is_closed(), "the session is over");
    assert!(ws.transmit().is_empty(), "the stuck output is dropped");
    assert_eq!(ws.poll_timeout(), None);
    assert_eq!(
        ws.send_text("late", start + secs(13)),
        Err(WsSendError::Closed)
    );
}

/// Output the peer takes in time never expires, however long the session lives.
#[test]
fn output_taken_in_time_keeps_the_session() {
    let mut h = WsHarness::new(WsConfig {
        send_timeout: secs(7),
        ping_interval: None,
        ..config()
    });
    for _ in 0..10 {
        let now = h.now();
        h.ws.send_text("tick", now).unwrap();
        h.flush();
        assert_eq!(
            h.ws.poll_timeout(),
            None,
            "nothing pending: no send deadline"
        );
        h.advance(secs(6));
    }
    assert!(!h.ws.is_closed());
}

/// The close timeout ends the session even when the peer also stopped reading our Close.
#[test]
fn close_timeout_drops_unread_output() {
    let start = std::time::Instant::now();
    let mut ws = weft_core::ws::WebSocket::new(config(), start);
    ws.send_binary(&[1; 1000], start).unwrap();
    ws.close(1000, "", start);
    ws.handle_timeout(start + secs(5));
    assert!(ws.is_closed());
    assert!(ws.transmit().is_empty());
}

#[test]
fn unbounded_timeouts_mean_never() {
    use std::time::Instant;
    use weft_core::ws::{CloseCode, WebSocket};
    let config = WsConfig {
        ping_interval: Some(Duration::MAX),
        ping_timeout: Duration::MAX,
        close_timeout: Duration::MAX,
        send_timeout: Duration::MAX,
        ..WsConfig::default()
    };
    let start = Instant::now();
    let mut ws = WebSocket::new(config, start);
    assert_eq!(ws.poll_timeout(), None);
    ws.send_text("queued and never taken", start).unwrap();
    ws.close(CloseCode::NORMAL, "bye", start);
    assert_eq!(ws.poll_timeout(), None);
    ws.handle_timeout(start + secs(1_000_000));
    assert!(!ws.is_closed());
    assert!(ws.is_closing());
    assert!(!ws.transmit().is_empty());
}
