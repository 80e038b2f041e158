//! permessage-deflate (RFC 7692): receiving compressed messages (with and without context
//! takeover, fragmented, stored blocks, bombs) and sending them.

mod ws_support;

use std::time::Instant;

use miniz_oxide::deflate::core::{
    compress_to_output, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush,
};
use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZFlush};
use weft_core::ws::{DeflateConfig, WebSocket, WsConfig};
use ws_support::*;

fn deflate_config(server_nct: bool, client_nct: bool, server_bits: u8) -> WsConfig {
    WsConfig {
        deflate: Some(DeflateConfig {
            server_no_context_takeover: server_nct,
            client_no_context_takeover: client_nct,
            server_max_window_bits: server_bits,
            client_max_window_bits: 15,
        }),
        ..WsConfig::default()
    }
}

fn takeover() -> WsConfig {
    deflate_config(false, false, 15)
}

/// A client's compressor: sync flush per message, the empty stored block removed.
struct ClientDeflater(Box<CompressorOxide>);

impl ClientDeflater {
    fn new() -> ClientDeflater {
        ClientDeflater(Box::new(CompressorOxide::new(
            create_comp_flags_from_zip_params(6, -15, 0),
        )))
    }

    fn compress(&mut self, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        let (_, consumed) = compress_to_output(&mut self.0, data, TDEFLFlush::Sync, |chunk| {
            out.extend_from_slice(chunk);
            true
        });
        assert_eq!(consumed, data.len());
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        out
    }
}

/// A client's inflater for the server's messages.
fn client_inflate(state: &mut InflateState, data: &[u8]) -> Vec<u8> {
    let mut input = data.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = vec![0; 1 << 20];
    let result = inflate(state, &input, &mut out, MZFlush::Sync);
    assert!(result.status.is_ok(), "{:?}", result.status);
    assert_eq!(result.bytes_consumed, input.len());
    assert!(result.bytes_written < out.len());
    out.truncate(result.bytes_written);
    out
}

#[test]
fn rfc7692_hello_example() {
    // RFC 7692 section 7.2.3.1.
    let compressed = [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    check_with(
        &takeover(),
        &frame(0xc1, &compressed),
        &[text("Hello")],
        b"",
    );
    // Without the extension, RSV1 is a protocol error.
    check_error(&WsConfig::default(), &frame(0xc1, &compressed), &[], 1002);
}

#[test]
fn rfc7692_sharing_the_window() {
    // Section 7.2.3.2: the second "Hello" refers to the first.
    let mut input = frame(0xc1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    input.extend(frame(0xc1, &[0xf2, 0x00, 0x11, 0x00, 0x00]));
    check_with(&takeover(), &input, &[text("Hello"), text("Hello")], b"");
}

#[test]
fn rfc7692_stored_block_and_fragments() {
    // Section 7.2.3.3: a stored block.
    let stored = [
        0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ];
    check_with(&takeover(), &frame(0xc1, &stored), &[text("Hello")], b"");
    // Section 7.2.3.4: a compressed message in two fragments.
    let mut input = frame(0x41, &[0xf2, 0x48, 0xcd]);
    input.extend(frame(0x80, &[0xc9, 0xc9, 0x07, 0x00]));
    check_with(&takeover(), &input, &[text("Hello")], b"");
    // Section 7.2.3.6: a final block (BFINAL) in the message.
    check_with(
        &takeover(),
        &frame(0xc1, &[0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]),
        &[text("Hello")],
        b"",
    );
}

#[test]
fn uncompressed_messages_mix_with_compressed_ones() {
    let mut input = text_frame("plain");
    input.extend(frame(0xc1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]));
    input.extend(frame(0x82, b"raw"));
    check_with(
        &takeover(),
        &input,
        &[text("plain"), text("Hello"), Ev::Binary(b"raw".to_vec())],
        b"",
    );
}

#[test]
fn rsv1_only_on_the_first_frame_of_a_data_message() {
    let mut input = frame(0x41, &[0xf2, 0x48, 0xcd]);
    input.extend(frame(0xc0, &[0xc9, 0xc9, 0x07, 0x00]));
    check_error(&takeover(), &input, &[], 1002);
    check_error(&takeover(), &frame(0xc9, b""), &[], 1002);
    check_error(&takeover(), &frame(0xc8, b""), &[], 1002);
}

fn messages() -> Vec<Vec<u8>> {
    vec![
        b"Hello, compressed world! Hello, compressed world!".to_vec(),
        b"Hello, compressed world! again and again and again".to_vec(),
        (0..5000u32).map(|i| (i % 13) as u8 + b'a').collect(),
        "κόσμε κόσμε κόσμε κόσμε κόσμε".as_bytes().to_vec(),
        Vec::new(),
        (0..100_000u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8 & 0x7f)
            .collect(),
    ]
}

fn receive_round_trip(client_nct: bool) {
    let config = deflate_config(false, client_nct, 15);
    let mut client = ClientDeflater::new();
    let mut input = Vec::new();
    let mut expected = Vec::new();
    for m in messages() {
        if client_nct {
            client = ClientDeflater::new();
        }
        let compressed = client.compress(&m);
        // Split each message into up to three fragments.
        let thirds = [
            0,
            compressed.len() / 3,
            2 * compressed.len() / 3,
            compressed.len(),
        ];
        for (i, w) in thirds.windows(2).enumerate() {
            let first = match (i, i == 2) {
                (0, _) => 0x41,
                (_, true) => 0x80,
                _ => 0x00,
            };
            input.extend(frame(first, &compressed[w[0]..w[1]]));
        }
        expected.push(text(std::str::from_utf8(&m).unwrap()));
    }
    check_with(&config, &input, &expected, b"");
}

#[test]
fn receive_with_context_takeover() {
    receive_round_trip(false);
}

#[test]
fn receive_without_context_takeover() {
    receive_round_trip(true);
}

#[test]
fn context_takeover_matters() {
    // A message that refers to the previous one fails when the client promised not to.
    let mut input = frame(0xc1, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
    input.extend(frame(0xc1, &[0xf2, 0x00, 0x11, 0x00, 0x00]));
    let outcome = run(&deflate_config(false, true, 15), &input);
    assert_eq!(outcome.events[0], text("Hello"));
    assert_ne!(outcome.events.get(1), Some(&text("Hello")));
}

fn send_round_trip(server_nct: bool, server_bits: u8) {
    let now = Instant::now();
    let mut ws = WebSocket::new(deflate_config(server_nct, false, server_bits), now);
    let mut inflater = InflateState::new_boxed(DataFormat::Raw);
    for m in messages() {
        ws.send_binary(&m, now).unwrap();
        let frames = server_frames(ws.transmit());
        ws.advance_transmit(ws.transmit().len(), now);
        assert_eq!(frames.len(), 1);
        let f = &frames[0];
        assert!(f.fin);
        assert_eq!(f.opcode, 2);
        if f.rsv1 {
            if server_nct {
                inflater = InflateState::new_boxed(DataFormat::Raw);
            }
            assert!(
                client_inflate(&mut inflater, &f.payload) == m,
                "round trip of {} bytes",
                m.len()
            );
        } else {
            assert!(m.len() < 16, "small messages only go uncompressed");
            assert_eq!(f.payload, m);
        }
    }
}

#[test]
fn send_with_context_takeover() {
    send_round_trip(false, 15);
}

#[test]
fn send_without_context_takeover() {
    send_round_trip(true, 15);
}

#[test]
fn send_with_a_small_window() {
    send_round_trip(false, 9);
    send_round_trip(true, 8);
}

#[test]
fn small_window_output_has_no_distant_matches() {
    // A random block repeated at a distance of 1000 bytes: a 32 KiB-window compressor finds
    // the repeat; with server_max_window_bits=9 (512 bytes) the RLE strategy must not.
    let block: Vec<u8> = (0..1000u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let message = [block.clone(), block].concat();
    let size = |bits: u8| {
        let now = Instant::now();
        let mut ws = WebSocket::new(deflate_config(false, false, bits), now);
        ws.send_binary(&message, now).unwrap();
        let frames = server_frames(ws.transmit());
        let mut inflater = InflateState::new_boxed(DataFormat::Raw);
        assert_eq!(client_inflate(&mut inflater, &frames[0].payload), message);
        frames[0].payload.len()
    };
    assert!(size(15) < 1300, "the full window finds the repeat");
    assert!(size(9) > 1800, "the small window does not");
}

#[test]
fn sent_messages_share_the_window_only_with_takeover() {
    let now = Instant::now();
    let message = b"a message that repeats itself across messages".to_vec();
    let sizes = |nct: bool| {
        let mut ws = WebSocket::new(deflate_config(nct, false, 15), now);
        ws.send_text(std::str::from_utf8(&message).unwrap(), now)
            .unwrap();
        let first = ws.transmit().len();
        ws.advance_transmit(first, now);
        ws.send_text(std::str::from_utf8(&message).unwrap(), now)
            .unwrap();
        (first, ws.transmit().len())
    };
    let (first, second) = sizes(false);
    assert!(second < first, "the second refers to the first");
    let (first, second) = sizes(true);
    assert_eq!(second, first, "each message stands alone");
}

#[test]
fn decompression_bomb_is_refused() {
    let config = WsConfig {
        max_message: 64 << 10,
        ..takeover()
    };
    let bomb = ClientDeflater::new().compress(&vec![0; 10 << 20]);
    assert!(bomb.len() < 20_000);
    check_error(&config, &frame(0xc2, &bomb), &[], 1009);
    // Exactly at the limit is fine.
    let fits = ClientDeflater::new().compress(&vec![0; 64 << 10]);
    check_with(
        &config,
        &frame(0xc2, &fits),
        &[Ev::Binary(vec![0; 64 << 10])],
        b"",
    );
}

#[test]
fn bomb_across_fragments_fails_before_the_message_ends() {
    let config = WsConfig {
        max_message: 64 << 10,
        ..takeover()
    };
    let bomb = ClientDeflater::new().compress(&vec![0; 10 << 20]);
    let mut input = frame(0x42, &bomb);
    input.extend(&frame(0x80, b"never")[..4]);
    check_error(&config, &input, &[], 1009);
}

#[test]
fn invalid_compressed_data() {
    check_error(
        &takeover(),
        &frame(0xc2, &[0xff, 0xff, 0xff, 0xff]),
        &[],
        1007,
    );
}

#[test]
fn compressed_invalid_utf8() {
    let compressed = ClientDeflater::new().compress(b"valid then \xed\xa0\x80 not");
    check_error(&takeover(), &frame(0xc1, &compressed), &[], 1007);
    // Detected before the message ends.
    let mut input = frame(0x41, &compressed);
    input.extend(&frame(0x80, b"xx")[..3]);
    check_error(&takeover(), &input, &[], 1007);
}

mod props {
    use super::*;
    use proptest::prelude::*;

    fn run_split(config: &WsConfig, input: &[u8], cuts: &[usize]) -> Vec<Ev> {
        let mut h = WsHarness::new(config.clone());
        let mut start = 0;
        for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
            let cut = cut.clamp(start, input.len());
            h.feed(&input[start..cut]);
            start = cut;
        }
        h.take_events()
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Compressed messages, fragmented anywhere and delivered in any pieces, inflate to
        /// what the client compressed, with and without context takeover.
        #[test]
        fn compressed_messages_any_split(
            messages in prop::collection::vec(
                prop_oneof!["[a-c]{0,300}", "[a-zκ€ ]{0,60}"].prop_map(String::into_bytes),
                1..6,
            ),
            fragment_cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..3),
            read_cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..12),
            client_nct in any::<bool>(),
        ) {
            let config = deflate_config(false, client_nct, 15);
            let mut client = ClientDeflater::new();
            let mut input = Vec::new();
            for m in &messages {
                if client_nct {
                    client = ClientDeflater::new();
                }
                let compressed = client.compress(m);
                let mut bounds: Vec<usize> =
                    fragment_cuts.iter().map(|i| i.index(compressed.len() + 1)).collect();
                bounds.push(0);
                bounds.push(compressed.len());
                bounds.sort_unstable();
                let pieces = bounds.len() - 1;
                for i in 0..pieces {
                    let first = if i == 0 { 0x41 } else { 0x00 } | if i + 1 == pieces { 0x80 } else { 0 };
                    input.extend(frame(first, &compressed[bounds[i]..bounds[i + 1]]));
                }
            }
            let mut cuts: Vec<usize> = read_cuts.iter().map(|i| i.index(input.len() + 1)).collect();
            cuts.sort_unstable();
            let expected: Vec<Ev> =
                messages.iter().map(|m| Ev::Text(String::from_utf8(m.clone()).unwrap())).collect();
            prop_assert_eq!(run_split(&config, &input, &cuts), expected);
        }
    }
}
