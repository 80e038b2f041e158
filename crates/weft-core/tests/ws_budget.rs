//! The message budget a driver shares among sessions (`set_message_budget`): a message that
//! does not fit fails with 1013 (Try Again Later), judged from the frame header for plain
//! frames and as inflated bytes come out for compressed ones; `buffered` reports what a
//! session holds, announced frame bytes included. Every input is fed whole, byte by byte and
//! followed by a pipelined frame.

mod ws_support;

use std::time::Instant;

use miniz_oxide::deflate::core::{
    compress_to_output, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush,
};
use weft_core::ws::{DeflateConfig, WebSocket, WsConfig, WsEvent};
use ws_support::*;

/// Feeds `input` in pieces of `step` bytes (0: whole) to a session limited to `budget`;
/// returns the close code the session failed with, or `None`, and the messages delivered.
fn run_budget(config: &WsConfig, budget: usize, input: &[u8], step: usize) -> (Option<u16>, usize) {
    let now = Instant::now();
    let mut ws = WebSocket::new(config.clone(), now);
    ws.set_message_budget(budget);
    let mut buf = Vec::new();
    let mut messages = 0;
    let pieces: Vec<&[u8]> = if step == 0 {
        vec![input]
    } else {
        input.chunks(step).collect()
    };
    for piece in pieces {
        buf.extend_from_slice(piece);
        loop {
            match ws.next_event(&buf, now) {
                Err(err) => {
                    assert!(ws.is_closed());
                    let frames = server_frames(ws.transmit());
                    let close = frames.last().expect("a Close");
                    assert_eq!(close.opcode, 0x8);
                    assert_eq!(close.payload[..2], err.close_code().as_u16().to_be_bytes());
                    return (Some(err.close_code().as_u16()), messages);
                }
                Ok((event, n)) => {
                    let done = matches!(event, WsEvent::NeedData | WsEvent::Closed);
                    if matches!(event, WsEvent::Text(_) | WsEvent::Binary(_)) {
                        messages += 1;
                    }
                    buf.drain(..n);
                    if done {
                        break;
                    }
                }
            }
        }
    }
    (None, messages)
}

/// The same outcome whole, byte by byte, and with a pipelined frame after the input.
fn check(config: &WsConfig, budget: usize, input: &[u8], expected: (Option<u16>, usize)) {
    assert_eq!(run_budget(config, budget, input, 0), expected, "whole");
    assert_eq!(
        run_budget(config, budget, input, 1),
        expected,
        "byte by byte"
    );
    let mut pipelined = input.to_vec();
    pipelined.extend_from_slice(&text_frame("next"));
    let (code, messages) = run_budget(config, budget, &pipelined, 0);
    let expected_pipelined = match expected.0 {
        Some(code) => (Some(code), expected.1),
        None => (None, expected.1 + 1),
    };
    assert_eq!((code, messages), expected_pipelined, "pipelined");
}

#[test]
fn a_message_within_the_budget_passes() {
    check(
        &WsConfig::default(),
        1000,
        &frame(0x82, &[1; 1000]),
        (None, 1),
    );
}

#[test]
fn a_frame_announcing_more_than_the_budget_is_1013_from_its_header() {
    let input = frame(0x82, &[1; 1001]);
    check(&WsConfig::default(), 1000, &input, (Some(1013), 0));
    // From the header: before any payload byte arrives.
    assert_eq!(
        run_budget(&WsConfig::default(), 1000, &input[..14], 0),
        (Some(1013), 0)
    );
}

#[test]
fn fragments_count_together() {
    let mut input = frame(0x02, &[1; 600]);
    input.extend_from_slice(&frame(0x80, &[2; 600]));
    check(&WsConfig::default(), 1000, &input, (Some(1013), 0));
    check(&WsConfig::default(), 1200, &input, (None, 1));
}

#[test]
fn max_message_still_answers_1009() {
    let config = WsConfig {
        max_message: 500,
        ..WsConfig::default()
    };
    check(&config, 1000, &frame(0x82, &[1; 600]), (Some(1009), 0));
}

#[test]
fn inflated_bytes_count_against_the_budget() {
    let config = WsConfig {
        deflate: Some(DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }),
        ..WsConfig::default()
    };
    // 100 KiB of zeros compress to a few hundred bytes: the frame header cannot tell.
    let mut compressor = Box::new(CompressorOxide::new(create_comp_flags_from_zip_params(
        6, -15, 0,
    )));
    let mut payload = Vec::new();
    compress_to_output(&mut compressor, &[0; 100 << 10], TDEFLFlush::Sync, |c| {
        payload.extend_from_slice(c);
        true
    });
    payload.truncate(payload.len() - 4);
    let input = frame(0xC2, &payload);
    check(&config, 64 << 10, &input, (Some(1013), 0));
    check(&config, 200 << 10, &input, (None, 1));
}

#[test]
fn buffered_counts_the_announced_frame() {
    let now = Instant::now();
    let mut ws = WebSocket::new(WsConfig::default(), now);
    let input = frame(0x82, &[1; 100_000]);
    // Header and ten payload bytes: the whole frame is claimed.
    let (_, n) = ws.next_event(&input[..24], now).unwrap();
    assert_eq!(n, 24);
    assert!(ws.buffered() >= 100_000, "{}", ws.buffered());
    let (_, _) = ws.next_event(&input[24..], now).unwrap();
    // Delivered: the next call releases the large buffer.
    let _ = ws.next_event(&[], now).unwrap();
    assert!(ws.buffered() < 10_000, "{}", ws.buffered());
}
