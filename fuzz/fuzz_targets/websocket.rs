//! Fuzzes the WebSocket codec (`weft_core::ws::WebSocket`) and the handshake check.
//!
//! The first input byte picks the configuration (permessage-deflate on or off, context
//! takeover) and where the rest is split into two reads. Checked: nothing panics; errors are
//! sticky and leave the session closed with a Close queued; the outcome (events, output bytes)
//! is the same as when the input arrives in one read and byte by byte; deadlines never panic
//! and none is left in the past.
#![no_main]

use std::time::{Duration, Instant};

use libfuzzer_sys::fuzz_target;
use weft_core::ws::{
    check_handshake, DeflateConfig, HandshakeOptions, WebSocket, WsConfig, WsError, WsEvent,
};
use weft_core::{parse_request_head, Limits};

#[derive(Debug, PartialEq, Eq)]
enum Ev {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Closed,
    Error(WsError),
}

#[derive(Debug, PartialEq, Eq)]
struct Outcome {
    events: Vec<Ev>,
    out: Vec<u8>,
}

/// Small limits, so that the fuzzer reaches them.
fn config(selector: u8) -> WsConfig {
    WsConfig {
        max_frame: 256,
        max_message: 512,
        deflate: (selector & 1 != 0).then_some(DeflateConfig {
            server_no_context_takeover: selector & 2 != 0,
            client_no_context_takeover: selector & 4 != 0,
            server_max_window_bits: if selector & 8 != 0 { 9 } else { 15 },
            client_max_window_bits: 15,
        }),
        ..WsConfig::default()
    }
}

/// Drives the session as a driver does: `next_event` until `NeedData`/`Closed`/an error,
/// consumed bytes removed; every text and binary message echoed.
fn pump(ws: &mut WebSocket, buf: &mut Vec<u8>, now: Instant, events: &mut Vec<Ev>) {
    for _ in 0..100_000 {
        let mut echo = None;
        let (ev, n) = match ws.next_event(buf, now) {
            Err(err) => {
                assert!(ws.is_closed());
                assert!(ws.is_closing());
                assert_eq!(ws.next_event(b"\x81\x80abcd", now), Err(err));
                if events.last() != Some(&Ev::Error(err)) {
                    events.push(Ev::Error(err));
                }
                return;
            }
            Ok((event, n)) => {
                assert!(n <= buf.len());
                let ev = match event {
                    WsEvent::Text(t) => {
                        echo = Some((true, t.as_bytes().to_vec()));
                        Some(Ev::Text(t.to_owned()))
                    }
                    WsEvent::Binary(b) => {
                        echo = Some((false, b.to_vec()));
                        Some(Ev::Binary(b.to_vec()))
                    }
                    WsEvent::Ping(p) => Some(Ev::Ping(p.to_vec())),
                    WsEvent::Pong(p) => Some(Ev::Pong(p.to_vec())),
                    WsEvent::Close { code, reason } => {
                        Some(Ev::Close(code.map(u16::from), reason.to_owned()))
                    }
                    WsEvent::NeedData => None,
                    WsEvent::Closed => Some(Ev::Closed),
                };
                (ev, n)
            }
        };
        buf.drain(..n);
        if let Some((text, data)) = echo {
            let result = if text {
                ws.send_text(std::str::from_utf8(&data).unwrap_or(""), now)
            } else {
                ws.send_binary(&data, now)
            };
            let _ = result;
        }
        match ev {
            None => return,
            Some(Ev::Closed) => {
                if events.last() != Some(&Ev::Closed) {
                    events.push(Ev::Closed);
                }
                return;
            }
            Some(ev) => events.push(ev),
        }
    }
    panic!("next_event did not settle");
}

fn run(selector: u8, parts: &[&[u8]]) -> Outcome {
    let start = Instant::now();
    let mut ws = WebSocket::new(config(selector), start);
    let mut buf = Vec::new();
    let mut events = Vec::new();
    for part in parts {
        buf.extend_from_slice(part);
        pump(&mut ws, &mut buf, start, &mut events);
    }
    let out = ws.transmit().to_vec();
    ws.advance_transmit(out.len());
    let later = start + Duration::from_secs(3600);
    ws.handle_timeout(later);
    assert!(ws.poll_timeout().is_none_or(|t| t > later));
    ws.receive_eof();
    pump(&mut ws, &mut buf, later, &mut events);
    assert!(ws.is_closed());
    Outcome { events, out }
}

fuzz_target!(|data: &[u8]| {
    let Some((&first, input)) = data.split_first() else {
        return;
    };

    // The handshake check on whatever head the input holds.
    if let Ok(Some((head, _))) = parse_request_head(input, &Limits::default()) {
        let options = HandshakeOptions {
            protocols: &["chat", "v2"],
            deflate: true,
        };
        if let Ok(handshake) = check_handshake(&head, &options) {
            let _ = handshake.response_headers();
        }
    }

    // The codec: two reads, one read, byte by byte.
    let split = usize::from(first) * input.len() / 255;
    let (a, b) = input.split_at(split);
    let whole = run(first, &[input]);
    assert_eq!(run(first, &[a, b]), whole);
    let bytes: Vec<&[u8]> = input.chunks(1).collect();
    assert_eq!(run(first, &bytes), whole);
});
