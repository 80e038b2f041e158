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
