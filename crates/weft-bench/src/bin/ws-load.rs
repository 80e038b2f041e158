//! `ws-load`: a WebSocket echo load generator for `scripts/bench`.
//!
//! N connections each do the opening handshake (a random `Sec-WebSocket-Key`; the answer must
//! be `101` with the matching `Sec-WebSocket-Accept`), then, until D seconds have passed, send
//! one masked binary message of S bytes and wait for its whole echo (one or more unmasked
//! binary/continuation frames carrying the same bytes), over and over. Reports the round trips
//! and the round trips per second of all connections together, and the errors.
//!
//! Cheap on purpose (it shares the machine with the server it measures): one thread (a tokio
//! current_thread runtime), the masked frame built once and written as is every time, echoes
//! parsed in place in a per-connection buffer and compared with one `memcmp`.
//!
//! Usage: `ws-load --url ws://HOST:PORT/PATH [-c CONNS] [-s BYTES] [-d SECS] [--timeout SECS]`
//! (defaults: 10 connections, 20 bytes, 5 s, 5 s). `-d 0` makes every connection do exactly one
//! round trip (a readiness/correctness check). Exit status 0 when every connection handshook
//! and no error happened, else 1 (2: bad arguments).
//!
//! Output (stdout):
//! ```text
//! ws-load: ws://127.0.0.1:8082/ws/echo: 100 connections, 20-byte binary messages, 5 s
//! connected: 100/100
//! round trips: 1234567 in 5.00 s
//! round trips/s: 246913
//! errors: 0
//! ```
//! followed by one `error: KIND xN: first message` line per kind of error.

use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// The largest response head accepted in the handshake.
const MAX_HEAD: usize = 8192;

struct Args {
    url: String,
    authority: String,
    path: String,
    conns: usize,
    size: usize,
    secs: u64,
    timeout: Duration,
}

fn usage() -> ExitCode {
    eprintln!(
        "usage: ws-load --url ws://HOST:PORT/PATH [-c CONNS] [-s BYTES] [-d SECS] [--timeout SECS]"
    );
    ExitCode::from(2)
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let mut conns = 10usize;
    let mut size = 20usize;
    let mut secs = 5u64;
    let mut timeout = 5u64;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{what} needs a value"))
        };
        fn number<T: std::str::FromStr>(what: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("bad {what} {v:?}"))
        }
        match name.as_str() {
            "--url" => url = Some(value("--url")?),
            "-c" | "--connections" => conns = number("-c", value("-c")?)?,
            "-s" | "--size" => size = number("-s", value("-s")?)?,
            "-d" | "--duration" => secs = number("-d", value("-d")?)?,
            "--timeout" => timeout = number("--timeout", value("--timeout")?)?,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    let url = url.ok_or("--url is required")?;
    let rest = url
        .strip_prefix("ws://")
        .ok_or(format!("{url:?}: only ws:// URLs are supported"))?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() {
        return Err(format!("{url:?}: no host"));
    }
    if conns == 0 || timeout == 0 {
        return Err("-c and --timeout must be at least 1".into());
    }
    Ok(Args {
        authority: authority.to_owned(),
        path: path.to_owned(),
        url,
        conns,
        size,
        secs,
        timeout: Duration::from_secs(timeout),
    })
}

/// xorshift64*: keys, masks and payload bytes only need to differ, not to be secret.
struct Rng(u64);

impl Rng {
    fn seeded(salt: u64) -> Rng {
        let t = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Rng(
            (t ^ (u64::from(std::process::id()) << 32) ^ salt.wrapping_mul(0x9e37_79b9_7f4a_7c15))
                | 1,
        )
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i)) as usize & 63]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A client frame: FIN, `opcode`, masked with `mask`.
fn masked_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload.len() + 14);
    frame.push(0x80 | opcode);
    match payload.len() {
        n if n < 126 => frame.push(0x80 | n as u8),
        n if n <= 0xffff => {
            frame.push(0x80 | 126);
            frame.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            frame.push(0x80 | 127);
            frame.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    frame.extend_from_slice(&mask);
    frame.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    frame
}

/// Why a connection stopped early.
struct Failure {
    kind: &'static str,
    message: String,
}

fn fail(kind: &'static str, message: impl Into<String>) -> Failure {
    Failure {
        kind,
        message: message.into(),
    }
}

/// A connection after its handshake, with the bytes read past the response head.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Conn {
    /// Makes at least `n` unread bytes available in `buf[start..]`.
    async fn fill(&mut self, n: usize) -> Result<(), Failure> {
        if self.end - self.start >= n {
            return Ok(());
        }
        if self.start + n > self.buf.len() {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            if n > self.buf.len() {
                self.buf.resize(n.max(self.buf.len() * 2), 0);
            }
        }
        while self.end - self.start < n {
            let got = self
                .stream
                .read(&mut self.buf[self.end..])
                .await
                .map_err(|e| fail("io", format!("read: {e}")))?;
            if got == 0 {
                return Err(fail("closed", "the server closed the connection"));
            }
            self.end += got;
        }
        Ok(())
    }

    /// Reads one whole echo and checks that it carries `expected`.
    async fn read_echo(&mut self, expected: &[u8]) -> Result<(), Failure> {
        let mut got = 0usize;
        let mut first = true;
        loop {
            self.fill(2).await?;
            let b0 = self.buf[self.start];
            let b1 = self.buf[self.start + 1];
            if b1 & 0x80 != 0 {
                return Err(fail("protocol", "the server sent a masked frame"));
            }
            let (header, len) = match b1 & 0x7f {
                126 => {
                    self.fill(4).await?;
                    let s = self.start;
                    (
                        4,
                        usize::from(u16::from_be_bytes([self.buf[s + 2], self.buf[s + 3]])),
                    )
                }
                127 => {
                    self.fill(10).await?;
                    let s = self.start;
                    let mut be = [0u8; 8];
                    be.copy_from_slice(&self.buf[s + 2..s + 10]);
                    (10, u64::from_be_bytes(be) as usize)
                }
                n => (2, usize::from(n)),
            };
            let opcode = b0 & 0x0f;
            match opcode {
                2 if first => {}
                0 if !first => {}
                9 | 10 if len <= 125 => {
                    // A ping or pong between echo frames: skipped (this client never pings).
                    self.fill(header + len).await?;
                    self.start += header + len;
                    continue;
                }
                8 => return Err(fail("closed", "the server sent a close frame")),
                _ => {
                    return Err(fail(
                        "bad echo",
                        format!("unexpected frame (opcode {opcode}) in the echo"),
                    ))
                }
            }
            if got + len > expected.len() {
                return Err(fail("bad echo", "the echo is longer than the message"));
            }
            self.fill(header + len).await?;
            let payload = &self.buf[self.start + header..self.start + header + len];
            if payload != &expected[got..got + len] {
                return Err(fail("bad echo", "the echo differs from the message"));
            }
            got += len;
            self.start += header + len;
            if self.start == self.end {
                self.start = 0;
                self.end = 0;
            }
            first = false;
            if b0 & 0x80 != 0 {
                if got != expected.len() {
                    return Err(fail("bad echo", "the echo is shorter than the message"));
                }
                return Ok(());
            }
        }
    }
}

async fn handshake(args: &Args, key: String) -> Result<Conn, Failure> {
    let mut stream = TcpStream::connect(&args.authority)
        .await
        .map_err(|e| fail("connect", format!("{}: {e}", args.authority)))?;
    let _ = stream.set_nodelay(true);
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        args.path, args.authority
    );
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| fail("handshake", format!("write: {e}")))?;
    let mut buf = vec![0u8; (args.size + 64).max(MAX_HEAD)];
    let mut end = 0;
    let head_end = loop {
        if let Some(i) = buf[..end].windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if end == MAX_HEAD {
            return Err(fail("handshake", "response head too long"));
        }
        let got = stream
            .read(&mut buf[end..MAX_HEAD])
            .await
            .map_err(|e| fail("handshake", format!("read: {e}")))?;
        if got == 0 {
            return Err(fail(
                "handshake",
                "connection closed before a response head",
            ));
        }
        end += got;
    };
    let head = String::from_utf8_lossy(&buf[..head_end]);
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or_default();
    if !status.starts_with("HTTP/1.1 101") {
        return Err(fail("handshake", format!("status {status:?} (want 101)")));
    }
    let want = derive_accept_key(key.as_bytes());
    let accept = lines.find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-accept")
            .then(|| value.trim().to_owned())
    });
    match accept {
        Some(a) if a == want => {}
        Some(a) => {
            return Err(fail(
                "handshake",
                format!("Sec-WebSocket-Accept {a:?}, want {want:?}"),
            ))
        }
        None => return Err(fail("handshake", "no Sec-WebSocket-Accept")),
    }
    Ok(Conn {
        stream,
        buf,
        start: head_end,
        end,
    })
}

/// What one connection did: round trips, the time of its last one, and why it stopped early.
struct Outcome {
    round_trips: u64,
    last: Option<Instant>,
    failure: Option<Failure>,
}

async fn run(
    mut conn: Conn,
    frame: std::sync::Arc<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    deadline: Option<Instant>,
    timeout: Duration,
) -> Outcome {
    let (message, payload, close) = &*frame;
    let mut outcome = Outcome {
        round_trips: 0,
        last: None,
        failure: None,
    };
    loop {
        if let Err(e) = conn.stream.write_all(message).await {
            outcome.failure = Some(fail("io", format!("write: {e}")));
            return outcome;
        }
        match tokio::time::timeout(timeout, conn.read_echo(payload)).await {
            Ok(Ok(())) => {}
            Ok(Err(f)) => {
                outcome.failure = Some(f);
                return outcome;
            }
            Err(_) => {
                outcome.failure = Some(fail("timeout", format!("no echo within {timeout:?}")));
                return outcome;
            }
        }
        let now = Instant::now();
        outcome.round_trips += 1;
        outcome.last = Some(now);
        if deadline.is_none_or(|d| now >= d) {
            break;
        }
    }
    // A polite end: a close frame (1000), the server's answer awaited briefly, then drop.
    if conn.stream.write_all(close).await.is_ok() {
        let mut sink = [0u8; 512];
        let _ = tokio::time::timeout(Duration::from_millis(500), async {
            while matches!(conn.stream.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
    }
    outcome
}

async fn load(args: Args) -> ExitCode {
    let mut rng = Rng::seeded(0);
    let mut payload = vec![0u8; args.size];
    rng.fill(&mut payload);
    let mut mask = [0u8; 4];
    rng.fill(&mut mask);
    let message = masked_frame(2, &payload, mask);
    let close = masked_frame(8, &1000u16.to_be_bytes(), mask);
    let frame = std::sync::Arc::new((message, payload, close));
    let args = std::sync::Arc::new(args);
    println!(
        "ws-load: {}: {} connections, {}-byte binary messages, {} s",
        args.url, args.conns, args.size, args.secs
    );

    // Phase 1: every handshake, concurrently (bounded by the timeout).
    let mut handshakes = JoinSet::new();
    for i in 0..args.conns {
        let mut key = [0u8; 16];
        Rng::seeded(i as u64 + 1).fill(&mut key);
        let key = base64(&key);
        let args = args.clone();
        handshakes.spawn(async move {
            match tokio::time::timeout(args.timeout, handshake(&args, key)).await {
                Ok(r) => r,
                Err(_) => Err(fail("handshake", "timed out")),
            }
        });
    }
    let mut conns = Vec::with_capacity(args.conns);
    let mut errors: BTreeMap<&'static str, (u64, String)> = BTreeMap::new();
    let mut note = |f: Failure| {
        let e = errors.entry(f.kind).or_insert((0, f.message));
        e.0 += 1;
    };
    while let Some(joined) = handshakes.join_next().await {
        match joined {
            Ok(Ok(conn)) => conns.push(conn),
            Ok(Err(f)) => note(f),
            Err(e) => note(fail("task", e.to_string())),
        }
    }
    println!("connected: {}/{}", conns.len(), args.conns);

    // Phase 2: the measured loop.
    let start = Instant::now();
    let deadline = (args.secs > 0).then(|| start + Duration::from_secs(args.secs));
    let mut loops = JoinSet::new();
    for conn in conns {
        loops.spawn(run(conn, frame.clone(), deadline, args.timeout));
    }
    let mut total = 0u64;
    let mut last = start;
    while let Some(joined) = loops.join_next().await {
        match joined {
            Ok(outcome) => {
                total += outcome.round_trips;
                if let Some(t) = outcome.last {
                    last = last.max(t);
                }
                if let Some(f) = outcome.failure {
                    note(f);
                }
            }
            Err(e) => note(fail("task", e.to_string())),
        }
    }
    let elapsed = last.duration_since(start).as_secs_f64();
    let rate = if elapsed > 0.0 {
        total as f64 / elapsed
    } else {
        0.0
    };
    let error_count: u64 = errors.values().map(|e| e.0).sum();
    println!("round trips: {total} in {elapsed:.2} s");
    println!("round trips/s: {rate:.0}");
    println!("errors: {error_count}");
    for (kind, (n, message)) in &errors {
        println!("error: {kind} x{n}: {message}");
    }
    if error_count == 0 && total > 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("ws-load: {msg}");
            }
            return usage();
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ws-load: cannot build runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(load(args))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0u8; 16]).len(), 24);
    }

    #[test]
    fn masked_frame_lengths_and_mask() {
        let mask = [1, 2, 3, 4];
        let f = masked_frame(2, b"abc", mask);
        assert_eq!(&f[..6], &[0x82, 0x83, 1, 2, 3, 4]);
        assert_eq!(&f[6..], &[b'a' ^ 1, b'b' ^ 2, b'c' ^ 3]);
        let f = masked_frame(2, &[0u8; 16384], mask);
        assert_eq!(&f[..4], &[0x82, 0x80 | 126, 0x40, 0x00]);
        assert_eq!(f.len(), 4 + 4 + 16384);
        let f = masked_frame(2, &[0u8; 70000], mask);
        assert_eq!(f[1], 0x80 | 127);
        assert_eq!(f.len(), 10 + 4 + 70000);
    }

    /// A one-connection server for the tests: answers the handshake (with a wrong accept key
    /// when `bad_accept`), then echoes each masked message as two fragments with a ping between.
    async fn fragmenting_server(bad_accept: bool) -> std::net::SocketAddr {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") {
                s.read_exact(&mut byte).await.unwrap();
                head.push(byte[0]);
            }
            let head = String::from_utf8(head).unwrap();
            let key = head
                .lines()
                .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
                .unwrap()
                .trim()
                .to_owned();
            let accept = if bad_accept {
                "nope".to_owned()
            } else {
                derive_accept_key(key.as_bytes())
            };
            let response = format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\
                 Connection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
            );
            s.write_all(response.as_bytes()).await.unwrap();
            loop {
                let mut h = [0u8; 2];
                if s.read_exact(&mut h).await.is_err() {
                    return;
                }
                let len = match h[1] & 0x7f {
                    126 => {
                        let mut l = [0u8; 2];
                        s.read_exact(&mut l).await.unwrap();
                        usize::from(u16::from_be_bytes(l))
                    }
                    127 => unreachable!("the tests send small messages"),
                    n => usize::from(n),
                };
                let mut mask = [0u8; 4];
                s.read_exact(&mut mask).await.unwrap();
                let mut payload = vec![0u8; len];
                s.read_exact(&mut payload).await.unwrap();
                payload
                    .iter_mut()
                    .enumerate()
                    .for_each(|(i, b)| *b ^= mask[i % 4]);
                if h[0] & 0x0f == 8 {
                    let _ = s.write_all(&[0x88, 0x02, 0x03, 0xe8]).await;
                    return;
                }
                let (a, b) = payload.split_at(len / 2);
                let mut out = vec![0x02, a.len() as u8];
                out.extend_from_slice(a);
                out.extend_from_slice(&[0x89, 0x01, b'p']);
                out.extend_from_slice(&[0x80, b.len() as u8]);
                out.extend_from_slice(b);
                s.write_all(&out).await.unwrap();
            }
        });
        addr
    }

    fn test_args(addr: std::net::SocketAddr, size: usize) -> Args {
        Args {
            url: format!("ws://{addr}/ws/echo"),
            authority: addr.to_string(),
            path: "/ws/echo".into(),
            conns: 1,
            size,
            secs: 0,
            timeout: Duration::from_secs(5),
        }
    }

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(f)
    }

    #[test]
    fn fragmented_echo_with_a_ping_between_counts_as_one_round_trip() {
        block_on(async {
            let addr = fragmenting_server(false).await;
            let args = test_args(addr, 100);
            let conn = handshake(&args, base64(b"0123456789abcdef"))
                .await
                .ok()
                .unwrap();
            let payload: Vec<u8> = (0..100u8).collect();
            let mask = [9, 8, 7, 6];
            let frame = std::sync::Arc::new((
                masked_frame(2, &payload, mask),
                payload,
                masked_frame(8, &1000u16.to_be_bytes(), mask),
            ));
            let outcome = run(conn, frame, None, args.timeout).await;
            assert!(outcome.failure.is_none());
            assert_eq!(outcome.round_trips, 1);
        });
    }

    #[test]
    fn a_wrong_accept_key_fails_the_handshake() {
        block_on(async {
            let addr = fragmenting_server(true).await;
            let args = test_args(addr, 20);
            let failure = handshake(&args, base64(b"0123456789abcdef"))
                .await
                .err()
                .unwrap();
            assert_eq!(failure.kind, "handshake");
            assert!(failure.message.contains("Sec-WebSocket-Accept"));
        });
    }

    #[test]
    fn accept_key_of_rfc6455_example() {
        assert_eq!(
            derive_accept_key(b"dGhlIHNhbXBsZSBub25jZQ=="),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }
}
