//! A trap in the engine costs only the connections of its instance: the host drops the
//! instance and goes on serving. The trap is real: the instance's next call is interrupted by
//! wasmtime (epoch interruption, what the host's watchdog does to a call that runs too long),
//! so the engine's own code stops with a trap.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use weft_host::server::{Handle, HostConfig, Server};

fn engine() -> Option<PathBuf> {
    let path = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../target/weft-engine.wasm"
    ));
    if path.is_file() {
        return Some(path);
    }
    assert!(
        std::env::var_os("WEFT_REQUIRE_WASM").is_none(),
        "{} is missing (scripts/build-engine)",
        path.display()
    );
    eprintln!(
        "skipped: {} is missing (scripts/build-engine)",
        path.display()
    );
    None
}

fn start(engine: PathBuf, conns_per_instance: usize) -> (SocketAddr, Handle) {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let config = HostConfig {
            listen: "127.0.0.1:0".parse().unwrap(),
            engine,
            conns_per_instance,
            ..HostConfig::default()
        };
        let mut server = Server::bind(config).unwrap();
        tx.send((server.local_addr().unwrap(), server.handle()))
            .unwrap();
        server.run().unwrap();
    });
    rx.recv_timeout(Duration::from_secs(60)).unwrap()
}

const HELLO: &[u8] = b"GET /hello HTTP/1.1\r\nHost: a\r\n\r\n";
const ANSWER_END: &[u8] = b"Hello, world!";

/// Sends a `GET /hello` and reads its answer.
fn hello(s: &mut TcpStream) {
    s.write_all(HELLO).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 1024];
    while !got.ends_with(ANSWER_END) {
        let n = s.read(&mut buf).unwrap();
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 200 OK\r\n"));
}

fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    s
}

/// The server closed the connection: EOF or a reset, no bytes.
fn assert_closed(s: &mut TcpStream) {
    let mut buf = [0u8; 64];
    match s.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("got {n} bytes instead of a close"),
        Err(e) => assert!(
            matches!(
                e.kind(),
                ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
            ),
            "{e}"
        ),
    }
}

#[test]
fn a_trap_costs_only_its_instance() {
    let Some(engine) = engine() else { return };
    let (addr, handle) = start(engine, 2);
    // Two connections fill the first instance (slot 0), the third gets a second one.
    let mut a1 = connect(addr);
    hello(&mut a1);
    let mut a2 = connect(addr);
    hello(&mut a2);
    let mut b1 = connect(addr);
    hello(&mut b1);

    handle.interrupt(0);
    // The next call into instance 0 (a1's request) traps.
    let _ = a1.write_all(HELLO);
    assert_closed(&mut a1);
    assert_closed(&mut a2);
    let traps = handle.traps();
    assert_eq!(traps.len(), 1, "{traps:?}");
    assert!(traps[0].contains("interrupt"), "{traps:?}");
    eprintln!("the trap: {}", traps[0]);

    // The other instance's connection lives on, and new connections are served.
    hello(&mut b1);
    for _ in 0..3 {
        let mut c = connect(addr);
        hello(&mut c);
        hello(&mut c);
    }
    hello(&mut b1);
    assert_eq!(handle.traps().len(), 1);
}
