//! Property tests of the WebSocket codec: no input makes it panic; whole, byte-by-byte and
//! randomly split delivery give the same events and output; valid fragmented streams decode
//! to their messages.

mod ws_support;

use proptest::prelude::*;
use weft_core::ws::{DeflateConfig, WsConfig};
use ws_support::*;

/// Feeds `input` in the pieces `cuts` makes (sorted offsets), then EOF.
fn run_pieces(config: &WsConfig, input: &[u8], cuts: &[usize]) -> Outcome {
    let mut h = WsHarness::new(config.clone());
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&input.len())) {
        let cut = cut.clamp(start, input.len());
        h.feed(&input[start..cut]);
        start = cut;
    }
    // Deadlines and EOF never panic either.
    h.advance(std::time::Duration::from_secs(3600));
    h.eof();
    assert!(h.ws.is_closed());
    assert_eq!(h.ws.poll_timeout(), None);
    Outcome {
        events: h.take_events(),
        out: h.take_out(),
    }
}

fn small_config(deflate: bool, client_nct: bool) -> WsConfig {
    WsConfig {
        max_frame: 200,
        max_message: 300,
        deflate: deflate.then_some(DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: client_nct,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
        }),
        ..WsConfig::default()
    }
}

/// One client frame, valid or not.
#[derive(Clone, Debug)]
struct FrameSpec {
    first: u8,
    payload: Vec<u8>,
    form: LenForm,
    masked: bool,
}

fn frame_spec() -> impl Strategy<Value = FrameSpec> {
    let first = prop_oneof![
        // Mostly valid opcodes with FIN either way.
        8 => (any::<bool>(), prop::sample::select(vec![0u8, 1, 2, 8, 9, 10]))
            .prop_map(|(fin, op)| if fin { 0x80 | op } else { op }),
        1 => (any::<bool>(), 0u8..16).prop_map(|(rsv1, op)| 0x80 | op | if rsv1 { 0x40 } else { 0 }),
        1 => any::<u8>(),
    ];
    let payload = prop_oneof![
        4 => prop::collection::vec(any::<u8>(), 0..8),
        2 => "[a-zé€😀]{0,12}".prop_map(String::into_bytes),
        1 => prop::collection::vec(any::<u8>(), 0..300),
        // Close payloads.
        1 => (prop::sample::select(vec![1000u16, 1001, 1005, 3000, 999, 4999, 5000]), "[a-z]{0,4}")
            .prop_map(|(code, reason)| [code.to_be_bytes().to_vec(), reason.into_bytes()].concat()),
    ];
    let form = prop::sample::select(vec![
        LenForm::Minimal,
        LenForm::Minimal,
        LenForm::Bits16,
        LenForm::Bits64,
    ]);
    (first, payload, form, prop::bool::weighted(0.95)).prop_map(|(first, payload, form, masked)| {
        FrameSpec {
            first,
            payload,
            form,
            masked,
        }
    })
}

fn serialize(specs: &[FrameSpec]) -> Vec<u8> {
    specs
        .iter()
        .flat_map(|s| frame_with(s.first, &s.payload, s.form, s.masked.then_some(KEY)))
        .collect()
}

fn cuts(len: usize, idx: &[prop::sample::Index]) -> Vec<usize> {
    let mut cuts: Vec<usize> = idx.iter().map(|i| i.index(len + 1)).collect();
    cuts.sort_unstable();
    cuts
}

/// A valid message and how it is cut into fragments, with pings between them.
#[derive(Clone, Debug)]
struct MessageSpec {
    text: bool,
    content: Vec<u8>,
    cuts: Vec<prop::sample::Index>,
    pings: Vec<bool>,
}

fn message_spec() -> impl Strategy<Value = MessageSpec> {
    (
        any::<bool>(),
        "[a-zκόσμε€😀 ]{0,40}".prop_map(String::into_bytes),
        prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        prop::collection::vec(any::<bool>(), 0..5),
    )
        .prop_map(|(text, content, cuts, pings)| MessageSpec {
            text,
            content,
            cuts,
            pings,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Random bytes: no panic, and any split gives the outcome of one read.
    #[test]
    fn random_bytes_never_panic(
        input in prop::collection::vec(any::<u8>(), 0..200),
        idx in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        deflate in any::<bool>(),
    ) {
        let config = small_config(deflate, false);
        let whole = run_pieces(&config, &input, &[]);
        let split = run_pieces(&config, &input, &cuts(input.len(), &idx));
        prop_assert_eq!(&whole, &split);
        let all: Vec<usize> = (0..input.len()).collect();
        prop_assert_eq!(&whole, &run_pieces(&config, &input, &all));
    }

    /// Streams of plausible frames (valid and invalid): whole, byte by byte and randomly split
    /// delivery agree, and nothing panics.
    #[test]
    fn frame_streams_any_split(
        specs in prop::collection::vec(frame_spec(), 0..8),
        idx in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        deflate in any::<bool>(),
        client_nct in any::<bool>(),
    ) {
        let config = small_config(deflate, client_nct);
        let input = serialize(&specs);
        let whole = run_pieces(&config, &input, &[]);
        let split = run_pieces(&config, &input, &cuts(input.len(), &idx));
        prop_assert_eq!(&whole, &split);
        let all: Vec<usize> = (0..input.len()).collect();
        prop_assert_eq!(&whole, &run_pieces(&config, &input, &all));
        // An error is the last event, and its Close is the last frame sent.
        if let Some(pos) = whole.events.iter().position(|e| matches!(e, Ev::Error(_))) {
            prop_assert_eq!(pos + 1, whole.events.len());
        }
    }

    /// Valid fragmented messages with pings between fragments decode to the messages, the
    /// pings are answered in order, whatever the split.
    #[test]
    fn valid_messages_decode(
        messages in prop::collection::vec(message_spec(), 0..6),
        idx in prop::collection::vec(any::<prop::sample::Index>(), 0..10),
    ) {
        let mut input = Vec::new();
        let mut events = Vec::new();
        let mut out = Vec::new();
        for (n, m) in messages.iter().enumerate() {
            let mut bounds = vec![0];
            bounds.extend(cuts(m.content.len(), &m.cuts));
            bounds.push(m.content.len());
            let pieces = bounds.len() - 1;
            for i in 0..pieces {
                let opcode = match (i, m.text) {
                    (0, true) => 1,
                    (0, false) => 2,
                    _ => 0,
                };
                let last = i + 1 == pieces;
                let fin = if last { 0x80 } else { 0 };
                input.extend(frame(fin | opcode, &m.content[bounds[i]..bounds[i + 1]]));
                if last {
                    events.push(if m.text {
                        Ev::Text(String::from_utf8(m.content.clone()).unwrap())
                    } else {
                        Ev::Binary(m.content.clone())
                    });
                }
                if m.pings.get(i).copied().unwrap_or(false) {
                    let payload = format!("ping {n} {i}").into_bytes();
                    input.extend(frame(0x89, &payload));
                    events.push(Ev::Ping(payload.clone()));
                    out.extend(server_frame(0xA, &payload));
                }
            }
        }
        let expected = events;
        let config = WsConfig {
            ping_interval: None,
            ..WsConfig::default()
        };
        let split = run_pieces(&config, &input, &cuts(input.len(), &idx));
        let mut with_end = expected.clone();
        with_end.push(Ev::Closed);
        prop_assert_eq!(&split.events, &with_end);
        prop_assert_eq!(&split.out, &out);
    }
}
