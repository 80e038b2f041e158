//! The price of the component boundary, without sockets: one keep-alive `GET /hello` exchange
//! driven through weft-core natively and through the engine component under wasmtime, with
//! the calls weft-host makes (feed, poll-event, send-full, poll-event, transmit,
//! advance-transmit, poll-timeout), and the same with 16 pipelined requests per input.
//!
//!     scripts/build-engine && cargo run --release -p weft-host --example boundary
//!
//! Prints nanoseconds per request for each, and the cost of the cheapest call
//! (`pending-transmit`: no arguments to lower, a u64 to lift).

use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime};

use weft_core::{Connection, DateCache, Event, Limits, Now};
use weft_host::engine::http::{self, Event as EEvent};
use weft_host::engine::types::Now as ENow;
use weft_host::engine::Runtime;

const REQ: &[u8] = b"GET /hello HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n";
const TEXT: &[u8] = b"text/plain; charset=utf-8";
const ROUNDS: usize = 200_000;

fn native(depth: usize) -> f64 {
    let input = REQ.repeat(depth);
    let mut dates = DateCache::new();
    let start = Instant::now();
    let mut conn = Connection::new(Limits::default(), start);
    let t = Instant::now();
    for _ in 0..ROUNDS / depth {
        let now = Now {
            instant: Instant::now(),
            date: dates.get(SystemTime::now()),
        };
        let mut at = 0;
        loop {
            let (event, used) = conn.next_event(&input[at..], now).unwrap();
            let request = matches!(event, Event::Request(_));
            at += used;
            if request {
                conn.send_full(200, &[("Content-Type", TEXT)], b"Hello, world!", now)
                    .unwrap();
            } else {
                break;
            }
        }
        let n = conn.transmit().len();
        conn.advance_transmit(n, now.instant);
        std::hint::black_box(conn.poll_timeout());
    }
    t.elapsed().as_nanos() as f64 / ROUNDS as f64
}

fn engine(rt: &Runtime, depth: usize) -> (f64, f64) {
    let mut inst = rt.instantiate(1).unwrap();
    let origin = Instant::now();
    let clock = || ENow {
        instant: origin.elapsed().as_nanos() as u64,
        unix_seconds: 1_800_000_000,
    };
    let limits = inst
        .bindings
        .weft_engine_http()
        .call_default_limits(&mut inst.store)
        .unwrap();
    let c = inst
        .bindings
        .weft_engine_http()
        .server_connection()
        .call_constructor(&mut inst.store, limits, 0)
        .unwrap();
    let input = REQ.repeat(depth);
    let fields = vec![("Content-Type".to_string(), TEXT.to_vec())];
    let mut split = [Duration::ZERO; 2];
    let t = Instant::now();
    for i in 0..ROUNDS / depth {
        if i % 1000 == 0 {
            inst.start_turn();
        }
        let h = inst.bindings.weft_engine_http().server_connection();
        let now = clock();
        h.call_feed(&mut inst.store, c, &input).unwrap().unwrap();
        loop {
            let t0 = Instant::now();
            let event = h.call_poll_event(&mut inst.store, c, now).unwrap().unwrap();
            let t1 = Instant::now();
            split[0] += t1 - t0;
            match event {
                EEvent::Request(_) => {
                    h.call_send_full(&mut inst.store, c, 200, &fields, b"Hello, world!", now)
                        .unwrap()
                        .unwrap();
                    split[1] += t1.elapsed();
                }
                _ => break,
            }
        }
        let out = h.call_transmit(&mut inst.store, c, 64 * 1024).unwrap();
        h.call_advance_transmit(&mut inst.store, c, out.len() as u64, now.instant)
            .unwrap();
        std::hint::black_box(h.call_poll_timeout(&mut inst.store, c).unwrap());
    }
    let per_request = t.elapsed().as_nanos() as f64 / ROUNDS as f64;
    if depth > 1 {
        println!(
            "  (16 pipelined: poll-event {:.0} ns, send-full {:.0} ns per request, timers included)",
            split[0].as_nanos() as f64 / ROUNDS as f64,
            split[1].as_nanos() as f64 / ROUNDS as f64
        );
    }
    let h = inst.bindings.weft_engine_http().server_connection();
    let t = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(h.call_pending_transmit(&mut inst.store, c).unwrap());
    }
    let per_call = t.elapsed().as_nanos() as f64 / ROUNDS as f64;
    let _: http::Limits = limits;
    (per_request, per_call)
}

fn main() {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/weft-engine.wasm"
    ));
    let rt = Runtime::load(&path, Duration::from_secs(10)).unwrap();
    for round in 1..=3 {
        let n1 = native(1);
        let n16 = native(16);
        let (e1, call) = engine(&rt, 1);
        let (e16, _) = engine(&rt, 16);
        println!(
            "round {round}: one request per input: native {n1:.0} ns, engine {e1:.0} ns \
             (+{:.0} ns); 16 pipelined: native {n16:.0} ns, engine {e16:.0} ns (+{:.0} ns) per \
             request; cheapest call {call:.0} ns",
            e1 - n1,
            e16 - n16
        );
    }
}
