//! The built component never traps: seeded random call sequences on every export, with random
//! bytes, plausible protocol fragments, random limits and clocks, on several connections and
//! sessions at once, through wasmtime (the same version the weft-host crate embeds). A trap is
//! an `Err` from wasmtime; the test fails on the first one and prints the seed and step.
//!
//! Needs `target/weft-engine.wasm` (`scripts/build-engine`): skipped when it is missing unless
//! `WEFT_REQUIRE_WASM` is set (as `scripts/test` does). `WEFT_NO_TRAP_STEPS` sets the number of
//! calls per seed (default 4000), `WEFT_NO_TRAP_SEEDS` the number of seeds (default 8).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

use std::path::PathBuf;

use wasmtime::component::{Component, Linker, ResourceAny};
use wasmtime::{Config, Engine as Wasmtime, Store};

wasmtime::component::bindgen!({
    world: "engine",
    path: "../../wit/engine.wit",
});

use exports::weft::engine::http;
use exports::weft::engine::types::{Method, Now, Version};
use exports::weft::engine::websocket as ws;

/// xorshift64*: a deterministic generator, so a failing seed reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
    /// A size that is usually small, sometimes zero, sometimes huge.
    fn size(&mut self) -> u64 {
        match self.below(10) {
            0 => 0,
            1 => u64::MAX,
            2 => self.below(1 << 40),
            3 => 1,
            _ => self.below(70_000),
        }
    }
    fn nanos(&mut self) -> u64 {
        match self.below(8) {
            0 => 0,
            1 => u64::MAX,
            _ => self.below(60_000_000_000),
        }
    }
}

/// Pieces requests and frames are made of, so random sequences reach deep states.
const HTTP_PIECES: &[&[u8]] = &[
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
      Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
    b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"5\r\nhello\r\n",
    b"0\r\nX-T: 1\r\n\r\n",
    b"PUT /x HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    b"HEAD / HTTP/1.0\r\n\r\n",
    b"GET / HTTP/2.0\r\n\r\n",
    b"\r\n",
    b"Host: b\r\n",
    b"\x16\x03\x01",
    b"GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    b"Content-Length: 99999999999999999999\r\n",
];

/// Client frames: masked text, binary, ping, close, a continuation, a deflated piece.
const WS_PIECES: &[&[u8]] = &[
    b"\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58",
    b"\x82\x82\x00\x00\x00\x00\x01\x02",
    b"\x89\x80\x01\x02\x03\x04",
    b"\x88\x82\x00\x00\x00\x00\x03\xe8",
    b"\x88\x80\x00\x00\x00\x00",
    b"\x01\x81\x00\x00\x00\x00a",
    b"\x80\x81\x00\x00\x00\x00b",
    b"\xc1\x87\x00\x00\x00\x00\xf2\x48\xcd\xc9\xc9\x07\x00",
    b"\x81\xff\x7f\xff\xff\xff\xff\xff\xff\xff",
    b"\x81\x7e\x01\x00",
    b"\x8a\x80\x00\x00\x00\x00",
];

const FIELD_NAMES: &[&str] = &[
    "Host",
    "Upgrade",
    "Connection",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Extensions",
    "Sec-WebSocket-Protocol",
    "Content-Length",
    "Transfer-Encoding",
    "X-Test",
    "bad name",
    "",
    "Date",
];

const FIELD_VALUES: &[&[u8]] = &[
    b"a",
    b"websocket",
    b"Upgrade",
    b"dGhlIHNhbXBsZSBub25jZQ==",
    b"13",
    b"permessage-deflate; client_max_window_bits",
    b"permessage-deflate; server_max_window_bits=9; server_no_context_takeover",
    b"chat, superchat",
    b"5",
    b"chunked",
    b"close",
    b"x\r\ny",
    b"\x00\x7f\xff",
    b"",
];

fn bytes(rng: &mut Rng, pieces: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for _ in 0..=rng.below(4) {
        match rng.below(24) {
            0 => {
                let n = rng.below(300);
                out.extend((0..n).map(|_| rng.next() as u8));
            }
            1 => out.extend(std::iter::repeat_n(
                rng.next() as u8,
                rng.below(20_000) as usize,
            )),
            _ => {
                let piece: &[u8] = pieces[rng.below(pieces.len() as u64) as usize];
                out.extend_from_slice(piece);
            }
        }
    }
    if rng.chance(10) && !out.is_empty() {
        // Cut at a random point: pieces arrive split.
        let cut = rng.below(out.len() as u64) as usize;
        out.truncate(cut);
    }
    out
}

/// Mostly valid response fields, now and then an invalid or a framing one.
fn fields(rng: &mut Rng) -> Vec<(String, Vec<u8>)> {
    if rng.chance(70) {
        return vec![("Content-Type".into(), b"text/plain".to_vec())];
    }
    (0..rng.below(8))
        .map(|_| {
            (
                rng.pick(FIELD_NAMES).to_string(),
                rng.pick(FIELD_VALUES).to_vec(),
            )
        })
        .collect()
}

fn text(rng: &mut Rng) -> String {
    let n = rng.below(200);
    (0..n)
        .map(|_| char::from_u32(rng.below(0x11_0000) as u32).unwrap_or('x'))
        .collect()
}

fn method(rng: &mut Rng) -> Method {
    match rng.below(6) {
        0 => Method::Post,
        1 => Method::Other("BREW".into()),
        2 => Method::Other("not a token".into()),
        3 => Method::Head,
        _ => Method::Get,
    }
}

struct Clock {
    instant: u64,
}

impl Clock {
    fn tick(&mut self, rng: &mut Rng) -> u64 {
        self.instant = match rng.below(20) {
            0 => rng.nanos(),
            1 => self.instant.saturating_add(rng.below(120_000_000_000)),
            _ => self.instant.saturating_add(rng.below(5_000_000)),
        };
        self.instant
    }
    fn now(&mut self, rng: &mut Rng) -> Now {
        let instant = self.tick(rng);
        let unix_seconds = match rng.below(10) {
            0 => u64::MAX,
            1 => rng.next(),
            _ => 1_700_000_000 + rng.below(100_000),
        };
        Now {
            instant,
            unix_seconds,
        }
    }
}

fn component_path() -> Option<PathBuf> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/weft-engine.wasm");
    if path.exists() {
        return Some(path);
    }
    assert!(
        std::env::var_os("WEFT_REQUIRE_WASM").is_none(),
        "{} is missing: run scripts/build-engine",
        path.display()
    );
    eprintln!("skipped: {} not built", path.display());
    None
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How deep the random calls went: counts of the events and errors they produced, so the
/// test fails if the sequences stop reaching the interesting states.
#[derive(Debug, Default)]
struct Reached {
    requests: u64,
    body_data: u64,
    ends: u64,
    upgrades: u64,
    protocol_errors: u64,
    responses_sent: u64,
    handshakes: u64,
    messages: u64,
    peer_closes: u64,
    ws_errors: u64,
}

/// Runs `steps` random calls from `seed`; `Err` describes the first trap.
fn run(
    wasmtime: &Wasmtime,
    component: &Component,
    seed: u64,
    steps: u64,
    reached: &mut Reached,
) -> Result<(), String> {
    let linker = Linker::new(wasmtime);
    let mut store = Store::new(wasmtime, ());
    let bindings = Engine::instantiate(&mut store, component, &linker)
        .map_err(|e| format!("instantiate: {e:?}"))?;
    let h = bindings.weft_engine_http();
    let w = bindings.weft_engine_websocket();
    let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1);
    let mut clock = Clock { instant: 0 };
    let mut conns: Vec<ResourceAny> = Vec::new();
    let mut sessions: Vec<ResourceAny> = Vec::new();
    let defaults = h
        .call_default_limits(&mut store)
        .map_err(|e| format!("default-limits: {e:?}"))?;
    let ws_defaults = w
        .call_default_session_config(&mut store)
        .map_err(|e| format!("default-session-config: {e:?}"))?;

    for step in 0..steps {
        let trap =
            |what: &str, e: wasmtime::Error| format!("seed {seed} step {step} {what}: {e:?}");
        if conns.len() < 2 || rng.chance(2) {
            let mut limits = defaults;
            if rng.chance(15) {
                limits.max_request_line = rng.size();
                limits.max_head = rng.size();
                limits.max_headers = rng.size();
                limits.max_body = rng.size();
                limits.max_chunk_line = rng.size();
                limits.max_chunk_ext_total = rng.size();
                limits.max_trailers = rng.size();
                limits.max_drain = rng.size();
                limits.max_buffered = rng.size();
                limits.header_timeout = rng.nanos();
                limits.idle_timeout = rng.nanos();
                limits.body_timeout = rng.nanos();
                limits.send_timeout = rng.nanos();
            }
            let now = clock.tick(&mut rng);
            let conn = h
                .server_connection()
                .call_constructor(&mut store, limits, now)
                .map_err(|e| trap("constructor", e))?;
            conns.push(conn);
        }
        if sessions.len() < 2 || rng.chance(2) {
            let mut config = ws_defaults;
            if rng.chance(15) {
                config.max_frame = rng.size();
                config.max_message = rng.size();
                config.max_buffered = rng.size();
                config.ping_interval = rng.chance(50).then(|| rng.nanos());
                config.ping_timeout = rng.nanos();
                config.close_timeout = rng.nanos();
                config.send_timeout = rng.nanos();
            }
            if rng.chance(50) {
                config.deflate = Some(ws::DeflateParams {
                    server_no_context_takeover: rng.chance(50),
                    client_no_context_takeover: rng.chance(50),
                    server_max_window_bits: rng.next() as u8,
                    client_max_window_bits: rng.next() as u8,
                });
            }
            let now = clock.tick(&mut rng);
            let session = w
                .session()
                .call_constructor(&mut store, config, now)
                .map_err(|e| trap("session constructor", e))?;
            sessions.push(session);
        }
        let ci = rng.below(conns.len() as u64) as usize;
        let si = rng.below(sessions.len() as u64) as usize;
        let (c, s) = (conns[ci], sessions[si]);
        // A failed resource is usually replaced (errors are sticky: it has nothing new to
        // show), now and then kept to be called again.
        let mut conn_failed = false;
        let mut session_failed = false;
        let sc = h.server_connection();
        let ss = w.session();
        let result: wasmtime::Result<()> = match rng.below(40) {
            0..=3 => {
                let data = bytes(&mut rng, HTTP_PIECES);
                sc.call_feed(&mut store, c, &data).map(drop)
            }
            4 | 5 => {
                // A well-behaved exchange on whatever state the connection is in: a request
                // (an upgrade one half the time), the answer the request asks for, a poll.
                let piece = HTTP_PIECES[usize::from(rng.chance(50))];
                let now = clock.now(&mut rng);
                (|| {
                    let _ = sc.call_feed(&mut store, c, piece)?;
                    if let Ok(http::Event::Request(head)) =
                        sc.call_poll_event(&mut store, c, now)?
                    {
                        reached.requests += 1;
                        let status = if head.upgrade.is_some() { 101 } else { 200 };
                        let sent = sc.call_send_full(&mut store, c, status, &[], b"", now)?;
                        reached.responses_sent += u64::from(sent.is_ok());
                        if let Ok(http::Event::Upgraded(_)) =
                            sc.call_poll_event(&mut store, c, now)?
                        {
                            reached.upgrades += 1;
                        }
                    }
                    Ok(())
                })()
            }
            6..=11 => {
                let now = clock.now(&mut rng);
                sc.call_poll_event(&mut store, c, now)
                    .map(|event| match event {
                        Ok(http::Event::Request(_)) => reached.requests += 1,
                        Ok(http::Event::Data(_)) => reached.body_data += 1,
                        Ok(http::Event::End(_)) => reached.ends += 1,
                        Ok(http::Event::Upgraded(_)) => reached.upgrades += 1,
                        Ok(_) => {}
                        Err(_) => {
                            reached.protocol_errors += 1;
                            conn_failed = true;
                        }
                    })
            }
            12 => sc.call_receive_eof(&mut store, c),
            13 => {
                let now = clock.now(&mut rng);
                sc.call_handle_timeout(&mut store, c, now)
            }
            14 => {
                let now = clock.now(&mut rng);
                let status = if rng.chance(60) {
                    *rng.pick(&[101u16, 200])
                } else {
                    *rng.pick(&[200u16, 101, 204, 304, 404, 99, 600, 0, u16::MAX])
                };
                let body = match rng.below(4) {
                    0 => http::BodyKind::Stream,
                    1 => http::BodyKind::Length(rng.size()),
                    _ => http::BodyKind::Length(0),
                };
                let response = http::Response {
                    status,
                    fields: fields(&mut rng),
                    body,
                };
                sc.call_send_response(&mut store, c, &response, now)
                    .map(drop)
            }
            15 => {
                let data = bytes(&mut rng, &[b"body"]);
                let now = clock.tick(&mut rng);
                sc.call_send_data(&mut store, c, &data, now).map(drop)
            }
            16 => {
                let trailers = fields(&mut rng);
                let now = clock.tick(&mut rng);
                sc.call_send_end(&mut store, c, &trailers, now).map(drop)
            }
            17 => {
                let now = clock.now(&mut rng);
                let status = *rng.pick(&[200u16, 101, 204, 304, 500, 1000]);
                let f = fields(&mut rng);
                let body = bytes(&mut rng, &[b"hello"]);
                sc.call_send_full(&mut store, c, status, &f, &body, now)
                    .map(|sent| reached.responses_sent += u64::from(sent.is_ok()))
            }
            18 => sc.call_close_after_exchange(&mut store, c),
            19 => {
                let now = clock.now(&mut rng);
                sc.call_refuse(&mut store, c, now)
            }
            20 => sc.call_abort(&mut store, c),
            21 if rng.chance(50) => {
                let max = rng.next() as u32;
                let now = clock.tick(&mut rng);
                sc.call_take_transmit(&mut store, c, max, now).map(drop)
            }
            21 => {
                let max = rng.next() as u32;
                let pending = sc.call_pending_transmit(&mut store, c);
                sc.call_transmit(&mut store, c, max).and(pending).map(drop)
            }
            22 => {
                let n = if rng.chance(20) {
                    rng.next()
                } else {
                    rng.below(100_000)
                };
                let now = clock.tick(&mut rng);
                sc.call_advance_transmit(&mut store, c, n, now)
            }
            23 => {
                let getters = [
                    sc.call_poll_timeout(&mut store, c).map(drop),
                    sc.call_release_memory(&mut store, c),
                    sc.call_buffered(&mut store, c).map(drop),
                    sc.call_is_reading_body(&mut store, c).map(drop),
                    sc.call_awaits_response(&mut store, c).map(drop),
                    sc.call_is_sending_body(&mut store, c).map(drop),
                    sc.call_is_upgraded(&mut store, c).map(drop),
                    sc.call_is_closed(&mut store, c).map(drop),
                    sc.call_error(&mut store, c).map(drop),
                    sc.call_status(&mut store, c).map(drop),
                ];
                getters.into_iter().collect()
            }
            24 => {
                let mut f = fields(&mut rng);
                if rng.chance(70) {
                    // A valid handshake, with the random fields after it.
                    let valid: [(&str, &[u8]); 5] = [
                        ("Host", b"a"),
                        ("Upgrade", b"websocket"),
                        ("Connection", b"Upgrade"),
                        ("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
                        ("Sec-WebSocket-Version", b"13"),
                    ];
                    let extra = std::mem::take(&mut f);
                    f = valid
                        .iter()
                        .map(|(n, v)| (n.to_string(), v.to_vec()))
                        .collect();
                    f.extend(
                        extra
                            .into_iter()
                            .filter(|(n, _)| n == "Sec-WebSocket-Extensions"),
                    );
                }
                let version = if rng.chance(80) {
                    Version::Http11
                } else {
                    Version::Http10
                };
                let options = ws::HandshakeOptions {
                    protocols: vec!["chat".into(), text(&mut rng)],
                    deflate: rng.chance(50),
                };
                let m = if rng.chance(70) {
                    Method::Get
                } else {
                    method(&mut rng)
                };
                w.call_check_handshake(&mut store, &m, version, &f, &options)
                    .map(|answer| reached.handshakes += u64::from(answer.is_ok()))
            }
            25..=28 => {
                let data = bytes(&mut rng, WS_PIECES);
                ss.call_feed(&mut store, s, &data).map(drop)
            }
            29..=32 => {
                let now = clock.tick(&mut rng);
                ss.call_poll_event(&mut store, s, now)
                    .map(|event| match event {
                        Ok(ws::WsEvent::Text(_) | ws::WsEvent::Binary(_)) => reached.messages += 1,
                        Ok(ws::WsEvent::Close(_)) => reached.peer_closes += 1,
                        Ok(_) => {}
                        Err(_) => {
                            reached.ws_errors += 1;
                            session_failed = true;
                        }
                    })
            }
            33 => ss.call_receive_eof(&mut store, s),
            34 => {
                let now = clock.tick(&mut rng);
                ss.call_handle_timeout(&mut store, s, now)
            }
            35 => {
                let now = clock.tick(&mut rng);
                match rng.below(3) {
                    0 => ss
                        .call_send_text(&mut store, s, &text(&mut rng), now)
                        .map(drop),
                    1 => {
                        let data = bytes(&mut rng, WS_PIECES);
                        ss.call_send_binary(&mut store, s, &data, now).map(drop)
                    }
                    _ => {
                        let data = bytes(&mut rng, WS_PIECES);
                        ss.call_send_ping(&mut store, s, &data, now).map(drop)
                    }
                }
            }
            36 => {
                let now = clock.tick(&mut rng);
                let code = rng.next() as u16;
                ss.call_close(&mut store, s, code, &text(&mut rng), now)
            }
            37 => {
                let max = rng.next() as u32;
                let n = if rng.chance(20) {
                    rng.next()
                } else {
                    rng.below(100_000)
                };
                let now = clock.tick(&mut rng);
                let results = [
                    ss.call_transmit(&mut store, s, max).map(drop),
                    ss.call_pending_transmit(&mut store, s).map(drop),
                    ss.call_advance_transmit(&mut store, s, n, now),
                    ss.call_take_transmit(&mut store, s, max, now).map(drop),
                    ss.call_status(&mut store, s).map(drop),
                ];
                results.into_iter().collect()
            }
            38 => {
                let budget = rng.size();
                let results = [
                    ss.call_set_message_budget(&mut store, s, budget),
                    ss.call_poll_timeout(&mut store, s).map(drop),
                    ss.call_buffered(&mut store, s).map(drop),
                    ss.call_is_closing(&mut store, s).map(drop),
                    ss.call_is_closed(&mut store, s).map(drop),
                ];
                results.into_iter().collect()
            }
            _ => {
                // Drop a resource now and then (the host's handle goes; the guest's state too).
                if rng.chance(50) && conns.len() > 1 {
                    let i = rng.below(conns.len() as u64) as usize;
                    conns.swap_remove(i).resource_drop(&mut store)
                } else if sessions.len() > 1 {
                    let i = rng.below(sessions.len() as u64) as usize;
                    sessions.swap_remove(i).resource_drop(&mut store)
                } else {
                    Ok(())
                }
            }
        };
        result.map_err(|e| trap("call", e))?;
        if conn_failed && rng.chance(80) {
            conns
                .swap_remove(ci)
                .resource_drop(&mut store)
                .map_err(|e| trap("drop", e))?;
        }
        if session_failed && rng.chance(80) {
            sessions
                .swap_remove(si)
                .resource_drop(&mut store)
                .map_err(|e| trap("drop", e))?;
        }
        // Keep the live set small so states advance.
        if conns.len() > 6 {
            conns
                .swap_remove(0)
                .resource_drop(&mut store)
                .map_err(|e| trap("drop", e))?;
        }
        if sessions.len() > 6 {
            sessions
                .swap_remove(0)
                .resource_drop(&mut store)
                .map_err(|e| trap("drop", e))?;
        }
    }
    Ok(())
}

#[test]
fn random_calls_never_trap() {
    let Some(path) = component_path() else { return };
    let mut config = Config::new();
    config.wasm_component_model(true);
    let wasmtime = Wasmtime::new(&config).unwrap();
    let component = Component::from_file(&wasmtime, &path).unwrap();
    let seeds = env_number("WEFT_NO_TRAP_SEEDS", 8);
    let steps = env_number("WEFT_NO_TRAP_STEPS", 4000);
    let mut reached = Reached::default();
    for seed in 0..seeds {
        if let Err(trap) = run(&wasmtime, &component, seed, steps, &mut reached) {
            panic!("the engine trapped: {trap}");
        }
    }
    eprintln!("reached: {reached:?}");
    if seeds * steps >= 8 * 4000 {
        let r = &reached;
        let counts = [
            r.requests,
            r.body_data,
            r.ends,
            r.upgrades,
            r.protocol_errors,
            r.responses_sent,
            r.handshakes,
            r.messages,
            r.peer_closes,
            r.ws_errors,
        ];
        assert!(counts.iter().all(|&n| n > 0), "shallow run: {reached:?}");
    }
}
