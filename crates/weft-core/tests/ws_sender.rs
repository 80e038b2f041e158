//! The codec's two sides: a handler answers through the sender lent with a received event
//! (`WebSocket::next_event_and_sender`) while the event borrows the message, and an idle
//! session gives its buffers back (`WebSocket::release_memory`). Inputs are fed whole, byte by
//! byte and with a pipelined frame after them.

mod ws_support;

use std::time::Duration;

use weft_core::ws::{WsConfig, WsEvent, WsSendError};
use ws_support::*;

/// Feeds `input` to an echoing session whole, byte by byte (with memory released between
/// bytes) and with a pipelined text frame; asserts they agree and returns the events and the
/// server's frames.
fn echo(input: &[u8]) -> (Vec<Ev>, Vec<ServerFrame>) {
    let outcome = |input: &[u8], bytewise: bool, release: bool| {
        let mut h = WsHarness::new(WsConfig::default());
        h.echo = true;
        h.release = release;
        if bytewise {
            h.feed_bytewise(input);
        } else {
            h.feed(input);
        }
        (h.take_events(), server_frames(&h.take_out()))
    };
    let whole = outcome(input, false, false);
    assert_eq!(outcome(input, true, false), whole, "whole vs byte by byte");
    assert_eq!(
        outcome(input, true, true),
        whole,
        "whole vs byte by byte, released"
    );
    let mut pipelined = input.to_vec();
    pipelined.extend_from_slice(&trailer());
    let (events, frames) = outcome(&pipelined, false, false);
    let mut expected = whole.clone();
    expected.0.push(text("next"));
    expected.1.push(ServerFrame {
        fin: true,
        rsv1: false,
        opcode: 0x1,
        payload: b"next".to_vec(),
    });
    assert_eq!((events, frames), expected, "whole vs pipelined");
    whole
}

fn server(opcode: u8, payload: &[u8]) -> ServerFrame {
    ServerFrame {
        fin: true,
        rsv1: false,
        opcode,
        payload: payload.to_vec(),
    }
}

#[test]
fn a_message_is_answered_through_the_lent_sender() {
    let big: Vec<u8> = (0..16 * 1024).map(|i| (i * 13 % 256) as u8).collect();
    let mut input = text_frame("héllo");
    input.extend(frame(0x82, &big));
    let (events, frames) = echo(&input);
    assert_eq!(events, [text("héllo"), Ev::Binary(big.clone())]);
    assert_eq!(frames, [server(0x1, "héllo".as_bytes()), server(0x2, &big)]);
}

#[test]
fn a_fragmented_message_with_a_ping_between_is_answered_after_the_pong() {
    let mut input = frame(0x01, b"frag");
    input.extend(frame(0x89, b"p"));
    input.extend(frame(0x80, b"ment"));
    let (events, frames) = echo(&input);
    assert_eq!(events, [Ev::Ping(b"p".to_vec()), text("fragment")]);
    assert_eq!(frames, [server(0xA, b"p"), server(0x1, b"fragment")]);
}

#[test]
fn the_lent_sender_refuses_after_the_peer_closed() {
    let mut h = WsHarness::new(WsConfig::default());
    let now = h.now();
    let close = close_frame(1000, b"");
    let (event, n, sender) = h.ws.next_event_and_sender(&close, now).unwrap();
    assert_eq!(n, close.len());
    assert!(matches!(event, WsEvent::Close { .. }));
    assert_eq!(sender.send_text("late", now), Err(WsSendError::Closed));
    assert!(sender.is_closing() && sender.is_closed());
    assert_eq!(sender.transmit(), server_close(1000, "").as_slice());
}

#[test]
fn output_queued_through_the_lent_sender_runs_the_session_send_timeout() {
    let config = WsConfig {
        send_timeout: Duration::from_secs(3),
        ping_interval: None,
        ..WsConfig::default()
    };
    let mut h = WsHarness::new(config);
    let now = h.now();
    let input = frame(0x82, b"data");
    let (_, _, sender) = h.ws.next_event_and_sender(&input, now).unwrap();
    sender.send_binary(b"data", now).unwrap();
    assert_eq!(h.ws.poll_timeout(), Some(now + Duration::from_secs(3)));
    // The peer never reads: the session is over and its output dropped.
    h.elapsed += Duration::from_secs(3);
    h.ws.handle_timeout(h.now());
    assert!(h.ws.is_closed());
    assert!(h.ws.transmit().is_empty());
}

#[test]
fn an_idle_session_holds_no_buffer_after_release() {
    let mut h = WsHarness::new(WsConfig::default());
    h.echo = true;
    h.feed(&frame(0x82, &[7; 16 * 1024]));
    h.feed(&frame(0x89, b"ping"));
    h.feed(&text_frame("small"));
    assert_eq!(h.take_events().len(), 3);
    assert!(h.ws.buffered() > 0, "the last message is still held");
    h.ws.release_memory();
    assert_eq!(h.ws.buffered(), 0);
    // And the session goes on as before.
    h.feed(&text_frame("again"));
    assert_eq!(h.take_events(), [text("again")]);
}

#[test]
fn release_keeps_the_message_in_progress_and_its_budget_charge() {
    let mut h = WsHarness::new(WsConfig::default());
    // A first fragment, and half of the second frame.
    let mut input = frame(0x02, &[1; 500]);
    input.extend_from_slice(&frame(0x80, &[1; 500])[..300]);
    h.feed(&input);
    h.ws.release_memory();
    assert!(h.ws.buffered() >= 1000, "{}", h.ws.buffered());
    let rest = frame(0x80, &[1; 500]);
    h.feed(&rest[300..]);
    assert_eq!(h.take_events(), [Ev::Binary(vec![1; 1000])]);
}
