//! End-to-end runs of the harness against tiny servers on loopback.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::thread;
use std::time::Duration;

use weft_conformance::case::{parse_case, Case, Mode};
use weft_conformance::run::{evaluate, run_mode, End, Timing};

/// Serves `connections` connections. For each: reads requests (up to an
/// empty line) and answers each with `hello`; after a request with
/// `close` in it, or on EOF from the client, closes.
fn serve(connections: usize) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        for _ in 0..connections {
            let (mut s, _) = listener.accept().unwrap();
            thread::spawn(move || {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                loop {
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let req: Vec<u8> = buf.drain(..end + 4).collect();
                        let close = req.windows(5).any(|w| w == b"close");
                        let head = req.starts_with(b"HEAD");
                        let mut out = b"HTTP/1.1 200 OK\r\nDate: Tue, 01 Jan 2030 00:00:00 GMT\r\nContent-Length: 5\r\n\r\n".to_vec();
                        if !head {
                            out.extend_from_slice(b"hello");
                        }
                        s.write_all(&out).unwrap();
                        if close {
                            return;
                        }
                    }
                    match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
            });
        }
    });
    addr
}

fn case(text: &str) -> Case {
    parse_case("t", Path::new("t.case"), text.as_bytes()).unwrap()
}

fn timing() -> Timing {
    Timing {
        timeout: Duration::from_millis(800),
        quiet: Duration::from_millis(50),
        connect: Duration::from_secs(1),
        dropped_fields: &[],
    }
}

#[test]
fn exact_pipelined_pair_in_every_mode() {
    let c = case(
        "modes: whole bytes split:3\n\
         send: GET /a HTTP/1.1\\r\\n\\r\\nHEAD /b HTTP/1.1\\r\\n\\r\\n\n\
         expect: HTTP/1.1 200 OK\\r\\nDate: <date>\\r\\nContent-Length: 5\\r\\n\\r\\nhello\n\
         + HTTP/1.1 200 OK\\r\\nDate: <date>\\r\\nContent-Length: 5\\r\\n\\r\\n\n\
         expect-open\n",
    );
    let addr = serve(3);
    for mode in [Mode::Whole, Mode::Bytes, Mode::Split(3)] {
        let t = run_mode(addr, &c, mode, &timing()).unwrap();
        assert_eq!(t.end, End::Quiet, "{mode}");
        assert_eq!(evaluate(&c, &t, &timing()), Vec::<String>::new(), "{mode}");
    }
}

#[test]
fn assertions_and_close() {
    let c = case(
        "send: HEAD / HTTP/1.1\\r\\n\\r\\nGET / HTTP/1.1\\r\\nConnection: close\\r\\n\\r\\n\n\
         expect-status: 200\n\
         expect-header: date: <date>\n\
         expect-body-length: 0\n\
         response: 2\n\
         expect-body: hello\n\
         expect-close\n",
    );
    let addr = serve(1);
    let t = run_mode(addr, &c, Mode::Whole, &timing()).unwrap();
    assert_eq!(t.end, End::Eof);
    assert_eq!(evaluate(&c, &t, &timing()), Vec::<String>::new());
}

#[test]
fn failures_are_reported() {
    let addr = serve(3);
    // Wrong bytes.
    let c = case("send: GET / HTTP/1.1\\r\\n\\r\\n\nexpect: HTTP/1.1 404 Not Found\\r\\n\n");
    let t = run_mode(addr, &c, Mode::Whole, &timing()).unwrap();
    let f = evaluate(&c, &t, &timing());
    assert!(
        f[0].starts_with("response bytes differ\n    first difference at byte 9"),
        "{f:?}"
    );
    // The server keeps the connection open.
    let c = case(
        "timeout: 300ms\nsend: GET / HTTP/1.1\\r\\n\\r\\n\nexpect-status: 200\nexpect-close\n",
    );
    let t = run_mode(addr, &c, Mode::Whole, &timing()).unwrap();
    assert_eq!(t.end, End::Timeout);
    let f = evaluate(&c, &t, &timing());
    assert!(f[0].contains("expected the server to close"), "{f:?}");
    // Half-closing makes this server close: expect-open fails.
    let c = case("send: GET / HTTP/1.1\\r\\n\\r\\n\nshutdown\nexpect-status: 200\nexpect-open\n");
    let t = run_mode(addr, &c, Mode::Bytes, &timing()).unwrap();
    assert_eq!(t.end, End::Eof);
    let f = evaluate(&c, &t, &timing());
    assert!(f.iter().any(|m| m.contains("stay open")), "{f:?}");
}

#[test]
fn connect_failure_is_an_error() {
    // Bind then drop a listener to get a port nobody listens on.
    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let c = case("send: x\nexpect-close\n");
    let e = run_mode(addr, &c, Mode::Whole, &timing()).unwrap_err();
    assert!(e.starts_with("cannot connect to"), "{e}");
}

/// Accepts one connection, answers the first request head with a short
/// response, then reads on and reports how the stream ended: `Ok(bytes)` on
/// EOF, `Err(kind)` on an error.
fn serve_and_report() -> (
    SocketAddr,
    std::sync::mpsc::Receiver<Result<usize, std::io::ErrorKind>>,
) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    thread::spawn(move || {
        let (mut s, _) = listener.accept().unwrap();
        let mut buf = Vec::new();
        let mut chunk = [0u8; 1024];
        let mut answered = false;
        loop {
            if !answered && buf.windows(4).any(|w| w == b"\r\n\r\n") {
                answered = true;
                let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello");
            }
            match s.read(&mut chunk) {
                Ok(0) => {
                    let _ = tx.send(Ok(buf.len()));
                    return;
                }
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
                Err(e) => {
                    let _ = tx.send(Err(e.kind()));
                    return;
                }
            }
        }
    });
    (addr, rx)
}

#[test]
fn reset_step_sends_rst() {
    let c = case(
        "send: GET / HTTP/1.1\\r\\n\\r\\n\n\
         wait: 100ms\n\
         reset\n\
         expect-alive\n",
    );
    let (addr, rx) = serve_and_report();
    let t = run_mode(addr, &c, Mode::Whole, &timing()).unwrap();
    assert_eq!(t.end, End::Aborted);
    // What arrived before the reset is kept.
    assert!(t.raw.ends_with(b"hello"), "{:?}", t.raw);
    assert!(t.elapsed < Duration::from_millis(600), "{:?}", t.elapsed);
    assert_eq!(evaluate(&c, &t, &timing()), Vec::<String>::new());
    let seen = rx.recv_timeout(Duration::from_secs(2)).unwrap();
    assert_eq!(seen, Err(std::io::ErrorKind::ConnectionReset));

    // A plain close (shutdown) is a FIN, not a reset: the control case.
    let c = case("send: GET / HTTP/1.1\\r\\n\\r\\n\nshutdown\nexpect-alive\n");
    let (addr, rx) = serve_and_report();
    let t = run_mode(addr, &c, Mode::Whole, &timing()).unwrap();
    assert_ne!(t.end, End::Aborted);
    assert_eq!(rx.recv_timeout(Duration::from_secs(2)).unwrap(), Ok(18));
}

#[test]
fn reset_case_can_assert_on_bytes_before_the_reset() {
    let c = case(
        "send: GET / HTTP/1.1\\r\\n\\r\\n\n\
         wait: 100ms\n\
         reset\n\
         expect-status: 200\n\
         expect-body: hello\n",
    );
    let (addr, _rx) = serve_and_report();
    let t = run_mode(addr, &c, Mode::Bytes, &timing()).unwrap();
    assert_eq!(t.end, End::Aborted);
    assert_eq!(evaluate(&c, &t, &timing()), Vec::<String>::new());
}
