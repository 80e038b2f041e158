//! The WebSocket codec: framing, masking, fragmentation, control frames, UTF-8, limits and
//! the closing handshake (RFC 6455 sections 5-7). Every input is fed whole, byte by byte and
//! with a pipelined frame after it.

mod ws_support;

use std::time::Instant;

use weft_core::ws::{CloseCode, WebSocket, WsConfig, WsError, WsEvent, WsSendError};
use ws_support::*;

fn binary(b: &[u8]) -> Ev {
    Ev::Binary(b.to_vec())
}

#[test]
fn short_text_frame() {
    // RFC 6455 section 5.7: a single-frame masked text message.
    let input = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    check(&input, &[text("Hello")], b"");
}

#[test]
fn each_length_form() {
    for len in [0, 1, 125, 126, 127, 1000, 65535, 65536, 70000] {
        let payload: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        check(&frame(0x82, &payload), &[binary(&payload)], b"");
    }
}

#[test]
fn non_minimal_lengths_are_accepted() {
    for form in [LenForm::Bits16, LenForm::Bits64] {
        let input = frame_with(0x82, b"abc", form, Some(KEY));
        check(&input, &[binary(b"abc")], b"");
        let input = frame_with(0x81, b"", form, Some(KEY));
        check(&input, &[text("")], b"");
    }
}

#[test]
fn masking_with_every_key_offset() {
    // Payload lengths around the 8-byte unmasking words, with a key of distinct bytes.
    for key in [[0, 0, 0, 0], [1, 2, 3, 4], [0xff, 0x80, 0x7f, 0x01]] {
        for len in 0..40 {
            let payload: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            let input = frame_with(0x82, &payload, LenForm::Minimal, Some(key));
            check(&input, &[binary(&payload)], b"");
        }
    }
}

#[test]
fn unmasked_frame_is_refused() {
    let input = frame_with(0x81, b"hi", LenForm::Minimal, None);
    check_error(&WsConfig::default(), &input, &[], 1002);
    // Detected from the second header byte on, before the payload.
    check_error(&WsConfig::default(), &[0x81, 0x02], &[], 1002);
}

#[test]
fn several_messages_in_one_read() {
    let mut input = text_frame("one");
    input.extend(frame(0x82, b"two"));
    input.extend(text_frame("three"));
    check(&input, &[text("one"), binary(b"two"), text("three")], b"");
}

#[test]
fn fragmented_message_with_control_frames_between() {
    let mut input = frame(0x01, b"Hel");
    input.extend(frame(0x89, b"ping!"));
    input.extend(frame(0x00, b"lo, "));
    input.extend(frame(0x8A, b"pong"));
    input.extend(frame(0x00, b""));
    input.extend(frame(0x80, b"world"));
    check(
        &input,
        &[
            Ev::Ping(b"ping!".to_vec()),
            Ev::Pong(b"pong".to_vec()),
            text("Hello, world"),
        ],
        &server_frame(0xA, b"ping!"),
    );
}

#[test]
fn fragmented_binary_message() {
    let mut input = frame(0x02, &[1, 2]);
    input.extend(frame(0x00, &[3]));
    input.extend(frame(0x80, &[4, 5, 6]));
    check(&input, &[binary(&[1, 2, 3, 4, 5, 6])], b"");
}

#[test]
fn continuation_without_a_message() {
    check_error(&WsConfig::default(), &frame(0x80, b"x"), &[], 1002);
    check_error(&WsConfig::default(), &frame(0x00, b"x"), &[], 1002);
    // After a complete message, too.
    let mut input = text_frame("a");
    input.extend(frame(0x80, b"x"));
    check_error(&WsConfig::default(), &input, &[text("a")], 1002);
}

#[test]
fn new_message_while_one_is_in_progress() {
    let mut input = frame(0x01, b"a");
    input.extend(frame(0x81, b"b"));
    check_error(&WsConfig::default(), &input, &[], 1002);
    let mut input = frame(0x02, b"a");
    input.extend(frame(0x02, b"b"));
    check_error(&WsConfig::default(), &input, &[], 1002);
}

#[test]
fn reserved_opcodes() {
    for opcode in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        check_error(&WsConfig::default(), &frame(0x80 | opcode, b""), &[], 1002);
        // Detected from the first byte.
        check_error(&WsConfig::default(), &[0x80 | opcode], &[], 1002);
    }
}

#[test]
fn reserved_bits_without_an_extension() {
    for rsv in [0x40u8, 0x20, 0x10, 0x70] {
        check_error(&WsConfig::default(), &frame(0x81 | rsv, b"x"), &[], 1002);
        check_error(&WsConfig::default(), &frame(0x89 | rsv, b"x"), &[], 1002);
    }
}

#[test]
fn control_frame_rules() {
    // Fragmented control frames.
    check_error(&WsConfig::default(), &frame(0x09, b""), &[], 1002);
    check_error(&WsConfig::default(), &frame(0x08, b""), &[], 1002);
    // Payload over 125 bytes, however the length is written.
    check_error(&WsConfig::default(), &frame(0x89, &[b'a'; 126]), &[], 1002);
    let input = frame_with(0x89, &[b'a'; 3], LenForm::Bits16, Some(KEY));
    check_error(&WsConfig::default(), &input, &[], 1002);
    // Exactly 125 is fine.
    let payload = [b'p'; 125];
    check(
        &frame(0x89, &payload),
        &[Ev::Ping(payload.to_vec())],
        &server_frame(0xA, &payload),
    );
}

#[test]
fn length_with_the_high_bit_set() {
    let mut input = vec![0x82, 0xFF];
    input.extend_from_slice(&(1u64 << 63).to_be_bytes());
    input.extend_from_slice(&KEY);
    check_error(&WsConfig::default(), &input, &[], 1002);
}

#[test]
fn ping_is_answered_with_the_same_payload() {
    check(
        &frame(0x89, b"are you there"),
        &[Ev::Ping(b"are you there".to_vec())],
        &server_frame(0xA, b"are you there"),
    );
    check(
        &frame(0x89, b""),
        &[Ev::Ping(vec![])],
        &server_frame(0xA, b""),
    );
    // A pong is reported, never answered.
    check(&frame(0x8A, b"x"), &[Ev::Pong(b"x".to_vec())], b"");
}

#[test]
fn oversized_frame_is_refused_from_its_header() {
    let config = WsConfig {
        max_frame: 100,
        ..WsConfig::default()
    };
    check_with(&config, &config_frame(100), &[binary(&[7; 100])], b"");
    // The header alone is enough: no payload needed.
    let header = &frame(0x82, &[7; 101])[..8];
    check_error(&config, header, &[], 1009);
    let header = &frame(0x82, &[7; 70000])[..14];
    check_error(&config, header, &[], 1009);
}

fn config_frame(len: usize) -> Vec<u8> {
    frame(0x82, &vec![7; len])
}

#[test]
fn oversized_message_is_refused_when_a_fragment_would_pass_the_limit() {
    let config = WsConfig {
        max_message: 10,
        ..WsConfig::default()
    };
    let mut ok = frame(0x02, &[1; 4]);
    ok.extend(frame(0x80, &[2; 6]));
    check_with(
        &config,
        &ok,
        &[binary(&[1, 1, 1, 1, 2, 2, 2, 2, 2, 2])],
        b"",
    );
    let mut input = frame(0x02, &[1; 4]);
    input.extend(frame(0x00, &[2; 4]));
    input.extend(&frame(0x80, &[3; 3])[..2]);
    check_error(&config, &input, &[], 1009);
    // A single frame over the message limit.
    check_error(&config, &frame(0x81, b"hello world"), &[], 1009);
}

#[test]
fn valid_utf8_split_across_fragments() {
    let text_value = "κόσμε €𝄞 done";
    let bytes = text_value.as_bytes();
    // Every split point, including inside characters.
    for cut in 0..=bytes.len() {
        let mut input = frame(0x01, &bytes[..cut]);
        input.extend(frame(0x80, &bytes[cut..]));
        check(&input, &[text(text_value)], b"");
    }
    // One byte per fragment.
    let mut input = frame(0x01, &bytes[..1]);
    for b in &bytes[1..] {
        input.extend(frame(0x00, &[*b]));
    }
    input.extend(frame(0x80, b""));
    check(&input, &[text(text_value)], b"");
}

#[test]
fn invalid_utf8_is_refused() {
    let cases: &[&[u8]] = &[
        b"\xff",
        b"\xc0\xaf",
        b"\xe0\x80\xaf",
        b"\xed\xa0\x80",
        b"\xf4\x90\x80\x80",
        b"\xf8\x88\x80\x80\x80",
        b"ok\x80",
        // Truncated at the end of the message.
        b"abc\xce",
        b"\xf0\x9d\x84",
    ];
    for case in cases {
        check_error(&WsConfig::default(), &frame(0x81, case), &[], 1007);
        // Split mid-character across fragments.
        let (a, b) = case.split_at(case.len() / 2 + 1);
        let mut input = frame(0x01, a);
        input.extend(frame(0x80, b));
        check_error(&WsConfig::default(), &input, &[], 1007);
    }
}

#[test]
fn invalid_utf8_split_mid_character_across_fragments() {
    // "κ" is CE BA; CE followed by a non-continuation byte in the next fragment.
    let mut input = frame(0x01, b"\xce");
    input.extend(frame(0x80, b"A"));
    check_error(&WsConfig::default(), &input, &[], 1007);
}

#[test]
fn invalid_utf8_fails_fast() {
    // The invalid byte is early in a long frame of which only a prefix arrives: the session
    // fails before the frame is complete (Autobahn 6.4.x).
    let mut payload = b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80".to_vec();
    payload.extend_from_slice(b"edited-hello-world-padding");
    let input = frame(0x81, &payload);
    let prefix = &input[..6 + 13];
    let mut h = WsHarness::new(WsConfig::default());
    h.feed(prefix);
    assert!(
        matches!(h.events.as_slice(), [e] if error(1007)(e)),
        "{:?}",
        h.events
    );
    // In a fragment that is not the last, too.
    let mut input = frame(0x01, b"hello");
    input.extend(&frame(0x00, b"\xed\xa0\x80 and more that never comes")[..9]);
    check_error(&WsConfig::default(), &input, &[], 1007);
    // And across fragments, on the first byte that cannot continue the sequence.
    let mut input = frame(0x01, b"\xf0");
    input.extend(&frame(0x00, b"\x7f and more")[..7]);
    check_error(&WsConfig::default(), &input, &[], 1007);
}

#[test]
fn close_with_code_and_reason_is_echoed() {
    let input = close_frame(1000, b"bye");
    check(
        &input,
        &[Ev::Close(Some(1000), "bye".into()), Ev::Closed],
        &server_close(1000, ""),
    );
    let input = close_frame(4000, "ünïcode".as_bytes());
    check(
        &input,
        &[Ev::Close(Some(4000), "ünïcode".into()), Ev::Closed],
        &server_close(4000, ""),
    );
}

#[test]
fn close_without_payload_is_answered_with_1000() {
    check(
        &frame(0x88, b""),
        &[Ev::Close(None, String::new()), Ev::Closed],
        &server_close(1000, ""),
    );
}

#[test]
fn close_payload_of_one_byte() {
    check_error(&WsConfig::default(), &frame(0x88, b"\x03"), &[], 1002);
}

#[test]
fn close_code_table() {
    // Autobahn 7.7.x: codes a peer may send.
    for code in [
        1000u16, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999,
    ] {
        check(
            &close_frame(code, b""),
            &[Ev::Close(Some(code), String::new()), Ev::Closed],
            &server_close(code, ""),
        );
    }
    // Autobahn 7.9.x: codes that must be refused.
    for code in [
        0u16, 999, 1004, 1005, 1006, 1012, 1013, 1014, 1015, 1016, 1100, 2000, 2999, 5000, 65535,
    ] {
        check_error(&WsConfig::default(), &close_frame(code, b""), &[], 1002);
    }
}

#[test]
fn close_reason_must_be_utf8() {
    check_error(
        &WsConfig::default(),
        &close_frame(1000, b"\xce\xba\xff"),
        &[],
        1007,
    );
}

#[test]
fn nothing_is_read_after_the_peers_close() {
    let mut input = close_frame(1000, b"");
    input.extend(text_frame("late"));
    check(
        &input,
        &[Ev::Close(Some(1000), String::new()), Ev::Closed],
        &server_close(1000, ""),
    );
}

#[test]
fn close_mid_fragmented_message() {
    let mut input = frame(0x01, b"part");
    input.extend(close_frame(1001, b""));
    check(
        &input,
        &[Ev::Close(Some(1001), String::new()), Ev::Closed],
        &server_close(1001, ""),
    );
}

#[test]
fn server_initiated_close_waits_for_the_peer() {
    let mut h = WsHarness::new(WsConfig::default());
    let now = h.now();
    h.ws.close(1000, "done", now);
    assert!(h.ws.is_closing());
    assert!(!h.ws.is_closed());
    assert_eq!(h.ws.send_text("x", now), Err(WsSendError::Closed));
    assert_eq!(h.ws.send_ping(b"x", now), Err(WsSendError::Closed));
    h.flush();
    assert_eq!(h.take_out(), server_close(1000, "done"));
    // Messages still arrive; a ping is not answered after our Close.
    h.feed(&text_frame("still here"));
    h.feed(&frame(0x89, b"p"));
    h.feed(&close_frame(1000, b""));
    assert_eq!(
        h.take_events(),
        [
            text("still here"),
            Ev::Ping(b"p".to_vec()),
            Ev::Close(Some(1000), String::new()),
            Ev::Closed
        ]
    );
    assert!(h.take_out().is_empty(), "no second Close, no Pong");
    assert!(h.ws.is_closed());
    // A second close() does nothing.
    h.ws.close(1000, "again", now);
    assert!(h.ws.transmit().is_empty());
}

#[test]
fn close_reason_is_cut_at_a_character_boundary() {
    let mut ws = WebSocket::new(WsConfig::default(), Instant::now());
    let reason = "é".repeat(70); // 140 bytes
    ws.close(1000, &reason, Instant::now());
    let frames = server_frames(ws.transmit());
    assert_eq!(frames.len(), 1);
    let payload = &frames[0].payload;
    assert!(payload.len() <= 125);
    assert_eq!(payload.len(), 2 + 122);
    assert_eq!(std::str::from_utf8(&payload[2..]).unwrap(), "é".repeat(61));
}

#[test]
fn unsendable_close_code_is_sent_as_1011() {
    let mut ws = WebSocket::new(WsConfig::default(), Instant::now());
    ws.close(1005, "", Instant::now());
    assert_eq!(ws.transmit(), server_close(1011, ""));
}

#[test]
fn sending_messages() {
    let now = Instant::now();
    let mut ws = WebSocket::new(WsConfig::default(), now);
    ws.send_text("hi", now).unwrap();
    ws.send_binary(&[0; 200], now).unwrap();
    ws.send_binary(&vec![1; 70000], now).unwrap();
    ws.send_ping(b"p", now).unwrap();
    let frames = server_frames(ws.transmit());
    let expect = |opcode: u8, payload: &[u8]| ServerFrame {
        fin: true,
        rsv1: false,
        opcode,
        payload: payload.to_vec(),
    };
    assert_eq!(
        frames,
        [
            expect(1, b"hi"),
            expect(2, &[0; 200]),
            expect(2, &vec![1; 70000]),
            expect(9, b"p"),
        ]
    );
    assert_eq!(ws.send_ping(&[0; 126], now), Err(WsSendError::TooLarge));
    // Partial writes.
    let total = ws.transmit().len();
    ws.advance_transmit(3, now);
    assert_eq!(ws.transmit().len(), total - 3);
    ws.advance_transmit(total, now);
    assert!(ws.transmit().is_empty());
}

#[test]
fn sending_over_max_message() {
    let now = Instant::now();
    let config = WsConfig {
        max_message: 4,
        ..WsConfig::default()
    };
    let mut ws = WebSocket::new(config, now);
    assert_eq!(ws.send_text("12345", now), Err(WsSendError::TooLarge));
    assert_eq!(ws.send_text("1234", now), Ok(()));
}

#[test]
fn eof_ends_the_session_without_a_close() {
    let mut h = WsHarness::new(WsConfig::default());
    h.feed(&frame(0x01, b"partial"));
    h.eof();
    assert_eq!(h.take_events(), [Ev::Closed]);
    assert!(h.take_out().is_empty());
    assert!(h.ws.is_closed());
    assert!(!h.ws.is_closing());
    assert_eq!(h.ws.send_text("x", h.now()), Err(WsSendError::Closed));
    assert_eq!(h.ws.poll_timeout(), None);
}

#[test]
fn incomplete_header_is_left_unconsumed() {
    let mut ws = WebSocket::new(WsConfig::default(), Instant::now());
    let input = &frame(0x82, &[1; 300])[..3];
    let (event, n) = ws.next_event(input, Instant::now()).unwrap();
    assert_eq!(event, WsEvent::NeedData);
    assert_eq!(n, 0);
    // A payload is consumed as it comes.
    let input = &frame(0x82, &[1; 300])[..20];
    let (event, n) = ws.next_event(input, Instant::now()).unwrap();
    assert_eq!(event, WsEvent::NeedData);
    assert_eq!(n, 20);
}

#[test]
fn errors_are_sticky_and_displayed() {
    let mut ws = WebSocket::new(WsConfig::default(), Instant::now());
    let err = ws.next_event(&[0x83], Instant::now()).unwrap_err();
    assert_eq!(err, WsError::ReservedOpcode);
    assert_eq!(err.close_code(), CloseCode::PROTOCOL_ERROR);
    assert_eq!(err.reason(), "reserved opcode");
    assert_eq!(ws.next_event(&text_frame("x"), Instant::now()), Err(err));
    assert!(ws.is_closed());
    assert!(ws.is_closing());
    assert!(err.to_string().contains("1002"));
    assert!(!WsSendError::Closed.to_string().is_empty());
}

#[test]
fn errors_are_typed_with_their_close_codes() {
    let cases = [
        (WsError::Unmasked, 1002),
        (WsError::FrameTooLarge, 1009),
        (WsError::MessageTooLarge, 1009),
        (WsError::InvalidUtf8, 1007),
        (WsError::InvalidCompressedData, 1007),
        (WsError::OverBudget, 1013),
    ];
    for (err, code) in cases {
        assert_eq!(u16::from(err.close_code()), code, "{err}");
        assert!(!err.reason().is_empty());
        assert_eq!(
            err.to_string(),
            format!("websocket error {code}: {}", err.reason())
        );
    }
    let mut ws = WebSocket::new(WsConfig::default(), Instant::now());
    // An unmasked text frame.
    let err = ws.next_event(&[0x81, 0x00], Instant::now()).unwrap_err();
    assert!(matches!(err, WsError::Unmasked));
    assert!(CloseCode::NORMAL.is_allowed() && !CloseCode::new(1005).is_allowed());
    assert_eq!(CloseCode::from(4000).as_u16(), 4000);
}
