//! The fuzz pass (`--fuzz N[:SEED]`): seeded pseudo-random inputs, each on
//! fresh connections, that must never kill or hang the target, and whose
//! answers must parse as HTTP/1.1 responses.
//!
//! Input K of seed S is a pure function of (S, K, the corpus), so a failing
//! input can be replayed. Most inputs are mutations of the bytes the loaded
//! cases send (the corpus); some are pure random bytes; every
//! [`BURST_EVERY`]th input is a burst of [`BURST_CONNS`] connections that
//! each send a request and reset. Each connection delivers its bytes in a
//! random split of writes, then half-closes or resets (after a random short
//! read) at random. The format and the report are documented in
//! `conformance/README.md`.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use crate::case::Case;
use crate::escape::escape_bytes;
use crate::response::{parse_response_at, Framing, Tail};
use crate::run::{abort_connection, Rng, READER_POLL};
use crate::target::Target;

/// Every `BURST_EVERY`th input (indices 49, 99, ...) is a burst.
pub const BURST_EVERY: usize = 50;
/// Connections in a burst.
pub const BURST_CONNS: usize = 20;
/// Longest input (bytes per connection); mutations are cut to it.
pub const MAX_INPUT: usize = 256 * 1024;
/// Response bytes kept per connection; beyond it the stream is not checked.
const MAX_RESPONSE: usize = 8 * 1024 * 1024;
/// Most writes per connection (smaller splits of long inputs are coarsened).
const MAX_WRITES: usize = 4096;
/// Bad responses printed in full (all are counted).
const MAX_REPORTED: usize = 10;

/// Settings of one fuzz run against one target.
#[derive(Clone, Debug)]
pub struct FuzzSettings {
    /// Number of inputs.
    pub count: usize,
    pub seed: u64,
    /// Inputs run at the same time (each on its own connections).
    pub parallel: usize,
    /// How long to read after a half-close (ends early on EOF or reset).
    pub read_timeout: Duration,
    /// Health check after every this many inputs (and at the end).
    pub check_every: usize,
    pub connect_timeout: Duration,
    /// How long the health check waits for the answer to its GET (2 s).
    pub probe_timeout: Duration,
    /// Where failing inputs are saved (`fuzz-crash-K.bin`, `fuzz-bad-K.bin`).
    pub out_dir: PathBuf,
}

impl FuzzSettings {
    pub fn new(count: usize, seed: u64, out_dir: PathBuf) -> FuzzSettings {
        FuzzSettings {
            count,
            seed,
            parallel: 8,
            read_timeout: Duration::from_millis(200),
            check_every: BURST_EVERY,
            connect_timeout: Duration::from_secs(2),
            probe_timeout: Duration::from_secs(2),
            out_dir,
        }
    }
}

/// How a connection ends after its bytes are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finish {
    /// Shut down our write side, read until the server closes (or the
    /// read timeout), then close.
    HalfClose,
    /// Read for this long (or until the server closes), then reset.
    Reset(Duration),
}

/// One connection of an input.
#[derive(Clone, Debug)]
pub struct Conn {
    pub bytes: Vec<u8>,
    /// Sizes of the writes; they sum to `bytes.len()`.
    pub cuts: Vec<usize>,
    /// Sleep this long after write number `.0` (0-based).
    pub pause: Option<(usize, Duration)>,
    pub finish: Finish,
}

/// One fuzz input: one connection, or a burst of them.
#[derive(Clone, Debug)]
pub struct Input {
    pub index: usize,
    /// How it was made (for reports).
    pub what: String,
    pub conns: Vec<Conn>,
}

/// One entry of the corpus: a case name and the bytes it sends.
pub type Entry = (String, Vec<u8>);

/// The corpus: the bytes every case sends (skipped cases too), without
/// empty or duplicate entries.
pub fn corpus(cases: &[Case]) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    for c in cases {
        let b = c.sent_bytes();
        if !b.is_empty() && !out.iter().any(|(_, o)| *o == b) {
            out.push((c.name.clone(), b));
        }
    }
    out
}

struct R(Rng);

impl R {
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.0.next_u64() % n as u64) as usize
        }
    }
    /// In `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
    fn pct(&mut self, p: usize) -> bool {
        self.below(100) < p
    }
    fn byte(&mut self) -> u8 {
        self.0.next_u64() as u8
    }
    fn pick<'a, T>(&mut self, list: &'a [T]) -> &'a T {
        &list[self.below(list.len())]
    }
}

/// The generator of input `index`: independent of every other input.
fn input_rng(seed: u64, index: usize) -> R {
    let base = Rng::new(seed).next_u64();
    R(Rng::new(base.wrapping_add(index as u64)))
}

/// Header lines (and line-like pieces) spliced into inputs.
const LINES: &[&[u8]] = &[
    b"Transfer-Encoding: chunked\r\n",
    b"Transfer-Encoding: gzip, chunked\r\n",
    b"Transfer-Encoding: chunked, identity\r\n",
    b"Transfer-Encoding:\tchunked\r\n",
    b"Transfer-Encoding : chunked\r\n",
    b"Content-Length: 0\r\n",
    b"Content-Length: 5\r\n",
    b"Content-Length: 65536\r\n",
    b"Content-Length: 1, 1\r\n",
    b"Content-Length: -1\r\n",
    b"Content-Length: 99999999999999999999999\r\n",
    b"Connection: close\r\n",
    b"Connection: keep-alive\r\n",
    b"Expect: 100-continue\r\n",
    b"Host: localhost\r\n",
    b"Host: \r\n",
    b"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
    b"Range: bytes=0-1,5-9,-3\r\n",
    b"Range: bytes=99999999999999999999-\r\n",
    b"If-None-Match: *\r\n",
    b"If-Modified-Since: Sun, 06 Nov 1994 08:49:37 GMT\r\n",
    b"Accept-Encoding: gzip, deflate\r\n",
    b" folded continuation\r\n",
    b"X-Nul: a\x00b\r\n",
    b"X-High: \xff\xfe\x80\r\n",
    b"NoColon\r\n",
    b": empty name\r\n",
    b"\r\n",
    b"\n",
    b"\r\r\n",
    b"GET / HTTP/1.1\r\n",
    b"POST /echo HTTP/1.1\r\n",
    b"HEAD /lorem.txt HTTP/1.1\r\n",
    b"GET /sheep?n=3&ms=1 HTTP/1.1\r\n",
    b"GET /lorem.txt HTTP/1.0\r\n",
];

/// Replacement numbers.
const NUMBERS: &[&[u8]] = &[
    b"0",
    b"00000000000000000000000000001",
    b"-1",
    b"+1",
    b"0x10",
    b"1e3",
    b"1 2",
    b"",
    b"2147483648",
    b"4294967296",
    b"9223372036854775808",
    b"18446744073709551615",
    b"18446744073709551616",
    b"99999999999999999999999999999999",
    b"ffffffff",
    b"ffffffffffffffff",
    b"10000000000000000",
    b"fffffffffffffffffffffffffffff",
];

/// Chunks spliced into inputs.
const CHUNKS: &[&[u8]] = &[
    b"0\r\n\r\n",
    b"0\r\nX-Trailer: 1\r\n\r\n",
    b"5\r\nabc\r\n",
    b"3\r\nabcdef\r\n",
    b"1;ext=\"x\"\r\nA\r\n",
    b"ffffffffffffffffff\r\n",
    b"8000000000000000\r\n",
    b"-1\r\n",
    b" 1\r\nA\r\n",
    b"1\nA\n",
    b"\r\n",
];

const BYTES_SPECIAL: &[u8] = b"\r\n\0 \t:;,\"\\/%?#";

/// Byte offsets where a line starts (0 and after every `\n`).
fn line_starts(b: &[u8]) -> Vec<usize> {
    let mut v = vec![0];
    v.extend(
        b.iter()
            .enumerate()
            .filter(|(_, c)| **c == b'\n')
            .map(|(i, _)| i + 1),
    );
    v
}

/// A random whole line (with its `\n`) of `b`.
fn some_line<'a>(r: &mut R, b: &'a [u8]) -> &'a [u8] {
    let starts = line_starts(b);
    let i = r.below(starts.len());
    let end = starts.get(i + 1).copied().unwrap_or(b.len());
    &b[starts[i]..end]
}

fn insert(b: &mut Vec<u8>, at: usize, what: &[u8]) {
    b.splice(at..at, what.iter().copied());
}

/// Applies one random mutation; returns its name.
fn mutate(r: &mut R, b: &mut Vec<u8>, corpus: &[Entry]) -> &'static str {
    let len = b.len();
    match r.below(13) {
        0 if len > 0 => {
            let i = r.below(len);
            b[i] ^= 1 << r.below(8);
            "bit-flip"
        }
        1 => {
            let v = r.byte();
            insert(b, r.range(0, len), &[v]);
            "insert-byte"
        }
        2 if len > 0 => {
            let at = r.below(len);
            let n = r.range(1, 16).min(len - at);
            b.drain(at..at + n);
            "delete"
        }
        3 => {
            let n = r.range(1, 4);
            let bytes: Vec<u8> = (0..n)
                .map(|_| match r.below(4) {
                    0 => *r.pick(b"\r\n\0"),
                    1 => 0x80 | r.byte(),
                    _ => *r.pick(BYTES_SPECIAL),
                })
                .collect();
            insert(b, r.range(0, len), &bytes);
            "insert-special"
        }
        4 if len > 0 => {
            b.truncate(r.below(len));
            "truncate"
        }
        5 => {
            // Replace a run of (hex) digits: Content-Length values, chunk
            // sizes, query numbers, versions.
            let from = r.range(0, len);
            let start = (from..len).chain(0..from).find(|&i| b[i].is_ascii_digit());
            let num: Vec<u8> = if r.pct(25) {
                (0..r.range(20, 40))
                    .map(|i| b"0123456789"[(r.below(10) + usize::from(i == 0)).min(9)])
                    .collect()
            } else {
                r.pick(NUMBERS).to_vec()
            };
            match start {
                Some(mut s) => {
                    while s > 0 && b[s - 1].is_ascii_hexdigit() {
                        s -= 1;
                    }
                    let mut e = s;
                    while e < len && b[e].is_ascii_hexdigit() {
                        e += 1;
                    }
                    b.splice(s..e, num);
                }
                None => insert(b, r.range(0, len), &num),
            }
            "huge-number"
        }
        6 => {
            // A header line from the list or from another corpus entry, at a
            // line boundary.
            let line: Vec<u8> = if r.pct(50) || corpus.is_empty() {
                r.pick(LINES).to_vec()
            } else {
                let entry = r.pick_entry(corpus);
                some_line(r, &entry.1).to_vec()
            };
            let starts = line_starts(b);
            let at = *r.pick(&starts);
            insert(b, at, &line);
            "header-splice"
        }
        7 => {
            // Repeat one line 2..=50 times (repeated headers).
            let starts = line_starts(b);
            let i = r.below(starts.len());
            let end = starts.get(i + 1).copied().unwrap_or(len);
            let line = b[starts[i]..end].to_vec();
            let times = if r.pct(80) {
                r.range(1, 4)
            } else {
                r.range(5, 50)
            };
            for _ in 0..times {
                insert(b, end, &line);
            }
            "repeat-line"
        }
        8 => {
            let starts = line_starts(b);
            let at = *r.pick(&starts);
            let chunk = r.pick(CHUNKS).to_vec();
            insert(b, at, &chunk);
            "chunk-splice"
        }
        9 if !corpus.is_empty() => {
            let other = &r.pick_entry(corpus).1;
            let cut_a = r.range(0, len);
            let cut_b = r.range(0, other.len());
            b.truncate(cut_a);
            b.extend_from_slice(&other[cut_b..]);
            "crossover"
        }
        10 if len > 0 => {
            let s = r.below(len);
            let e = r.range(s + 1, len);
            let piece = b[s..e].to_vec();
            insert(b, r.range(0, len), &piece);
            "duplicate-range"
        }
        11 => {
            let n = *r.pick(&[256, 1024, 4096, 8192, 9000, 16384, 70000]);
            let c = *r.pick(b"a /0\t:%");
            let at = r.range(0, len);
            b.splice(at..at, std::iter::repeat_n(c, n));
            "long-run"
        }
        _ => {
            // Swap the case of one ASCII letter (methods, header names,
            // `chunked`, `HTTP`).
            if let Some(i) = (0..len.min(64))
                .map(|_| r.below(len))
                .find(|&i| b[i].is_ascii_alphabetic())
            {
                b[i] ^= 0x20;
            }
            "case-flip"
        }
    }
}

impl R {
    fn pick_entry<'a>(&mut self, corpus: &'a [Entry]) -> &'a Entry {
        self.pick(corpus)
    }
}

/// Random write sizes for `len` bytes.
fn split(r: &mut R, len: usize) -> Vec<usize> {
    if len == 0 {
        return Vec::new();
    }
    let max = match r.below(100) {
        0..40 => return vec![len],
        40..70 => 64,
        70..85 => 8,
        _ => 1024,
    };
    // Long inputs get bigger writes, so that there are at most MAX_WRITES.
    let min = len.div_ceil(MAX_WRITES);
    let max = max.max(min);
    let mut cuts = Vec::new();
    let mut left = len;
    while left > 0 {
        let n = r.range(min, max).min(left);
        cuts.push(n);
        left -= n;
    }
    cuts
}

fn finish(r: &mut R) -> Finish {
    if r.pct(50) {
        Finish::HalfClose
    } else {
        Finish::Reset(Duration::from_millis(match r.below(100) {
            0..40 => 0,
            40..80 => r.range(1, 5),
            _ => r.range(10, 30),
        } as u64))
    }
}

fn conn(r: &mut R, bytes: Vec<u8>) -> Conn {
    let cuts = split(r, bytes.len());
    let pause = (cuts.len() > 1 && r.pct(10)).then(|| {
        (
            r.below(cuts.len() - 1),
            Duration::from_millis(r.range(1, 5) as u64),
        )
    });
    let finish = finish(r);
    Conn {
        bytes,
        cuts,
        pause,
        finish,
    }
}

/// Input `index` of the run with `seed`.
pub fn generate(corpus: &[Entry], seed: u64, index: usize) -> Input {
    let mut r = input_rng(seed, index);
    if index % BURST_EVERY == BURST_EVERY - 1 && !corpus.is_empty() {
        let mut conns = Vec::new();
        let mut names = Vec::new();
        for _ in 0..BURST_CONNS {
            let (name, bytes) = r.pick_entry(corpus);
            names.push(name.as_str());
            let mut bytes = bytes.clone();
            if r.pct(30) {
                mutate(&mut r, &mut bytes, corpus);
                bytes.truncate(MAX_INPUT);
            }
            let delay = Duration::from_millis(r.range(0, 10) as u64);
            conns.push(Conn {
                cuts: if bytes.is_empty() {
                    vec![]
                } else {
                    vec![bytes.len()]
                },
                bytes,
                pause: None,
                finish: Finish::Reset(delay),
            });
        }
        names.sort_unstable();
        names.dedup();
        return Input {
            index,
            what: format!(
                "burst of {BURST_CONNS} connections at once, each sends a corpus entry (some \
                 mutated) and resets; from {}",
                names.join(", ")
            ),
            conns,
        };
    }
    let (what, bytes) = if r.pct(10) || corpus.is_empty() {
        let n = r.range(0, 600);
        if r.pct(50) {
            let bytes = (0..n).map(|_| r.byte()).collect();
            ("random bytes".to_string(), bytes)
        } else {
            const ALPHABET: &[u8] = b"GETPOSHADhtp/1.0 \r\n\r\n:;,=-chunkedContent-LengthTransfer-Encoding0123456789abcdef\t\0\x80\xff";
            let bytes = (0..n).map(|_| *r.pick(ALPHABET)).collect();
            ("random HTTP-ish bytes".to_string(), bytes)
        }
    } else {
        let (name, base) = r.pick_entry(corpus);
        let mut bytes = base.clone();
        let n = if r.pct(90) {
            r.range(1, 4)
        } else {
            r.range(5, 12)
        };
        let mut ops = Vec::new();
        for _ in 0..n {
            ops.push(mutate(&mut r, &mut bytes, corpus));
            bytes.truncate(MAX_INPUT);
        }
        (format!("{name} mutated by {}", ops.join(", ")), bytes)
    };
    let c = conn(&mut r, bytes);
    Input {
        index,
        what,
        conns: vec![c],
    }
}

/// How the server ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerEnd {
    /// Still open when we stopped reading.
    Open,
    Eof,
    Reset,
}

/// What one connection got back.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub raw: Vec<u8>,
    pub end: ServerEnd,
    /// More than [`MAX_RESPONSE`] bytes came back (only the start is kept).
    pub overflow: bool,
    pub connect_error: Option<String>,
}

/// Runs one connection of an input against `addr`.
pub fn run_conn(addr: SocketAddr, c: &Conn, s: &FuzzSettings) -> Outcome {
    let mut out = Outcome {
        raw: Vec::new(),
        end: ServerEnd::Open,
        overflow: false,
        connect_error: None,
    };
    let stream = match TcpStream::connect_timeout(&addr, s.connect_timeout) {
        Ok(st) => st,
        Err(e) => {
            out.connect_error = Some(format!("cannot connect to {addr}: {e}"));
            return out;
        }
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(Duration::from_secs(1)));
    let Ok(mut reader) = stream.try_clone() else {
        out.connect_error = Some("cannot clone the socket".into());
        return out;
    };
    let aborting = Arc::new(AtomicBool::new(false));
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let ab = aborting.clone();
    let handle = thread::spawn(move || {
        let _ = reader.set_read_timeout(Some(READER_POLL));
        let mut raw = Vec::new();
        let mut overflow = false;
        let mut buf = vec![0u8; 64 * 1024];
        let mut keep = |raw: &mut Vec<u8>, d: &[u8]| {
            if raw.len() + d.len() > MAX_RESPONSE {
                overflow = true;
            } else {
                raw.extend_from_slice(d);
            }
        };
        let end = loop {
            let r = reader.read(&mut buf);
            if ab.load(Ordering::SeqCst) {
                if let Ok(n @ 1..) = r {
                    keep(&mut raw, &buf[..n]);
                }
                break ServerEnd::Open;
            }
            match r {
                Ok(0) => break ServerEnd::Eof,
                Ok(n) => keep(&mut raw, &buf[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut
                    ) => {}
                Err(_) => break ServerEnd::Reset,
            }
        };
        let _ = done_tx.send(());
        (raw, end, overflow)
    });

    let mut w = &stream;
    let mut off = 0;
    for (i, n) in c.cuts.iter().enumerate() {
        if w.write_all(&c.bytes[off..off + n]).is_err() {
            break;
        }
        off += n;
        if let Some((at, d)) = c.pause {
            if at == i {
                thread::sleep(d);
            }
        }
    }
    let result = match c.finish {
        Finish::HalfClose => {
            let _ = stream.shutdown(Shutdown::Write);
            let _ = done_rx.recv_timeout(s.read_timeout);
            aborting.store(true, Ordering::SeqCst);
            let _ = stream.shutdown(Shutdown::Read);
            let r = handle.join().ok();
            drop(stream);
            r
        }
        Finish::Reset(d) => {
            if !d.is_zero() {
                let _ = done_rx.recv_timeout(d);
            }
            abort_connection(stream, &aborting, handle).1
        }
    };
    if let Some((raw, end, overflow)) = result {
        out.raw = raw;
        out.end = end;
        out.overflow = overflow;
    }
    out
}

/// Checks that `raw` is a sequence of HTTP/1.1 responses. The last one may
/// be cut short when the client stopped reading (reset, read timeout) or
/// the server reset the connection. When the server closed cleanly, the
/// last response may be cut only inside a chunked body (an honest abort of
/// a streamed response: no last chunk) or, when the input talks to `/echo`,
/// inside a Content-Length body too (the echo sends its head before the
/// request body turns out bad or ends early); a response cut anywhere else
/// fails.
///
/// Which requests were HEAD (whose answers have no body) cannot be told
/// reliably from mangled input, so every final response that declares a
/// body is tried both with and without it (depth first, a bounded number of
/// steps); the stream passes if one reading works.
pub fn check_stream(raw: &[u8], sent: &[u8], end: ServerEnd) -> Result<(), String> {
    if raw.is_empty() {
        return Ok(());
    }
    let eof = end == ServerEnd::Eof;
    let echo = sent.windows(5).any(|w| w == b"/echo");
    // May the response starting at `at` be cut by the server's close?
    let cut_ok = |at: usize| {
        if !eof {
            return true;
        }
        let rest = &raw[at..];
        let Some(head_end) = rest.windows(4).position(|w| w == b"\r\n\r\n") else {
            return false;
        };
        let head = String::from_utf8_lossy(&rest[..head_end]).to_ascii_lowercase();
        echo || head
            .lines()
            .any(|l| l.starts_with("transfer-encoding:") && l.trim_end().ends_with("chunked"))
    };
    let mut budget = 10_000usize;
    let mut first_bad: Option<String> = None;
    // Depth-first over readings: (where a response starts, next reading to
    // try there: 0 with a body, 1 without, 2 none left).
    let mut stack: Vec<(usize, u8)> = vec![(0, 0)];
    while let Some(top) = stack.last_mut() {
        let (pos, alt) = *top;
        if pos >= raw.len() {
            return Ok(());
        }
        if alt >= 2 {
            stack.pop();
            continue;
        }
        top.1 += 1;
        if budget == 0 {
            return Ok(());
        }
        budget -= 1;
        let method = if alt == 0 { "GET" } else { "HEAD" };
        match parse_response_at(raw, pos, method, eof) {
            Ok(resp) => {
                if resp.version != "HTTP/1.1" {
                    first_bad.get_or_insert(format!(
                        "response at byte {pos} has version {}, not HTTP/1.1",
                        resp.version
                    ));
                    top.1 = 2;
                    continue;
                }
                if resp.framing == Framing::Upgrade {
                    return Ok(());
                }
                if resp.framing == Framing::NoBody || resp.status < 200 {
                    // Read as HEAD it would be the same.
                    top.1 = 2;
                }
                stack.push((resp.end, 0));
            }
            Err(Tail::Incomplete { at, .. }) if cut_ok(at) => return Ok(()),
            Err(Tail::Incomplete { at, what }) => {
                first_bad.get_or_insert(format!(
                    "the server closed the connection inside the response at byte {at}: {what}"
                ));
            }
            Err(Tail::Error { at, msg }) => {
                first_bad.get_or_insert(format!(
                    "malformed response stream at byte {at}: {msg}; bytes there: \"{}\"",
                    escape_bytes(&raw[at.min(raw.len())..][..raw.len().saturating_sub(at).min(80)])
                ));
            }
            Err(_) => return Ok(()),
        }
    }
    Err(first_bad.unwrap_or_else(|| "unparseable response stream".into()))
}

/// Problems found with one input (not deaths).
#[derive(Clone, Debug)]
struct Finding {
    index: usize,
    msg: String,
}

/// Runs input `input` and checks each connection's answer.
fn run_input(addr: SocketAddr, input: &Input, s: &FuzzSettings) -> (Vec<String>, usize) {
    let outcomes: Vec<Outcome> = if input.conns.len() == 1 {
        vec![run_conn(addr, &input.conns[0], s)]
    } else {
        thread::scope(|sc| {
            let hs: Vec<_> = input
                .conns
                .iter()
                .map(|c| sc.spawn(move || run_conn(addr, c, s)))
                .collect();
            hs.into_iter()
                .map(|h| {
                    h.join().unwrap_or(Outcome {
                        raw: Vec::new(),
                        end: ServerEnd::Open,
                        overflow: false,
                        connect_error: Some("client thread panicked".into()),
                    })
                })
                .collect()
        })
    };
    let mut problems = Vec::new();
    let mut connect_errors = 0;
    for (i, (o, c)) in outcomes.iter().zip(&input.conns).enumerate() {
        if o.connect_error.is_some() {
            connect_errors += 1;
            continue;
        }
        if o.overflow {
            continue;
        }
        if let Err(e) = check_stream(&o.raw, &c.bytes, o.end) {
            let conn = if input.conns.len() > 1 {
                format!("connection {}: ", i + 1)
            } else {
                String::new()
            };
            problems.push(format!("{conn}{e}"));
        }
    }
    (problems, connect_errors)
}

/// The request the health check sends.
const PROBE: &[u8] = b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
/// How long the liveness probe connection must stay open.
const PROBE_LINGER: Duration = Duration::from_millis(50);

/// The target is alive (process running, accepts connections) and not hung
/// (answers a GET with an HTTP/1.1 status line within `s.probe_timeout`).
pub fn health(target: &mut dyn Target, s: &FuzzSettings) -> Result<(), String> {
    let (connect_timeout, probe_timeout) = (s.connect_timeout, s.probe_timeout);
    target.check_alive(connect_timeout, PROBE_LINGER)?;
    let addr = target.addr();
    let hung = |e: String| format!("{e} (hung?)");
    let mut sock = TcpStream::connect_timeout(&addr, connect_timeout)
        .map_err(|e| format!("a fresh connection to {addr} failed: {e}"))?;
    let _ = sock.set_read_timeout(Some(probe_timeout));
    let _ = sock.set_write_timeout(Some(probe_timeout));
    sock.write_all(PROBE)
        .map_err(|e| hung(format!("sending a GET failed: {e}")))?;
    let started = Instant::now();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let mut closed = false;
    while got.len() < 12 && started.elapsed() < probe_timeout {
        match sock.read(&mut buf) {
            Ok(0) => {
                closed = true;
                break;
            }
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => return Err(format!("a GET got {e} instead of an answer")),
        }
    }
    if got.starts_with(b"HTTP/1.1 ") && got.len() >= 12 {
        Ok(())
    } else if got.is_empty() && closed {
        Err("a GET was answered by a close, without a response".into())
    } else if got.is_empty() {
        Err(hung(format!(
            "a GET got no answer within {} s",
            probe_timeout.as_secs_f64()
        )))
    } else {
        Err(format!(
            "a GET got \"{}\" instead of a status line",
            escape_bytes(&got[..got.len().min(40)])
        ))
    }
}

/// Writes input bytes (and a description) for later replay.
fn save(dir: &Path, stem: &str, input: &Input, seed: u64) -> String {
    let bin = dir.join(format!("{stem}.bin"));
    let txt = dir.join(format!("{stem}.txt"));
    let bytes: Vec<u8> = input.conns.iter().flat_map(|c| c.bytes.clone()).collect();
    let mut desc = format!(
        "fuzz input {} of seed {seed}: {}\n{} connection(s); the .bin file holds their bytes one \
         after the other\n",
        input.index,
        input.what,
        input.conns.len()
    );
    for (i, c) in input.conns.iter().enumerate() {
        desc.push_str(&format!(
            "connection {}: {} bytes, {} write(s) {:?}, pause {:?}, then {:?}\n",
            i + 1,
            c.bytes.len(),
            c.cuts.len(),
            c.cuts,
            c.pause,
            c.finish
        ));
    }
    let ok = std::fs::create_dir_all(dir).is_ok()
        && std::fs::write(&bin, bytes).is_ok()
        && std::fs::write(&txt, desc).is_ok();
    if ok {
        format!(
            "input saved to {} (delivery in {})",
            bin.display(),
            txt.display()
        )
    } else {
        format!("could not save the input to {}", bin.display())
    }
}

fn restart(target: &mut dyn Target, label: &str) -> Result<(), String> {
    target
        .restart()
        .map_err(|e| format!("cannot restart the {label} target: {}", e.trim_end()))
}

/// Runs one input, then the health check; `Some(why)` when the target died
/// (it is then restarted).
fn kills(
    target: &mut dyn Target,
    input: &Input,
    s: &FuzzSettings,
    label: &str,
) -> Result<Option<String>, String> {
    let _ = run_input(target.addr(), input, s);
    match health(target, s) {
        Ok(()) => Ok(None),
        Err(why) => {
            restart(target, label)?;
            Ok(Some(why))
        }
    }
}

/// Replays `range` one input at a time to name the input that kills the
/// target. A death after input K is confirmed by running K alone on a fresh
/// target, then K-1 alone (a server may die a moment after the input that
/// hurt it). Returns the number of deaths seen.
fn replay(
    target: &mut dyn Target,
    corpus: &[Entry],
    s: &FuzzSettings,
    label: &str,
    range: std::ops::Range<usize>,
) -> Result<usize, String> {
    let seed = s.seed;
    let mut deaths = 0;
    for k in range.clone() {
        let input = generate(corpus, seed, k);
        let Some(first_why) = kills(target, &input, s, label)? else {
            continue;
        };
        deaths += 1;
        let mut confirmed = None;
        for c in [k, k.wrapping_sub(1)] {
            if !range.contains(&c) {
                continue;
            }
            let candidate = generate(corpus, seed, c);
            if let Some(why) = kills(target, &candidate, s, label)? {
                confirmed = Some((candidate, why));
                break;
            }
        }
        match confirmed {
            Some((culprit, why)) => {
                let c = culprit.index;
                let saved = save(&s.out_dir, &format!("fuzz-crash-{c}"), &culprit, seed);
                loud(&format!(
                    "TARGET DIED during fuzz input {c} (seed {seed}) [{label}]: {why}\n\
                     input: {}\n{saved}",
                    culprit.what
                ));
            }
            None => {
                let saved = save(&s.out_dir, &format!("fuzz-crash-{k}"), &input, seed);
                loud(&format!(
                    "TARGET DIED after fuzz input {k} (seed {seed}) [{label}]: {first_why}\n\
                     but neither it nor the input before it killed a fresh target alone\n\
                     input: {}\n{saved}",
                    input.what
                ));
            }
        }
    }
    Ok(deaths)
}

/// The outcome of one fuzz run against one target.
#[derive(Clone, Debug, Default)]
pub struct FuzzReport {
    pub inputs: usize,
    pub deaths: usize,
    pub bad: usize,
    pub connect_errors: usize,
    pub elapsed: Duration,
    /// The run stopped early (dead target that cannot be restarted).
    pub stopped: Option<String>,
}

impl FuzzReport {
    pub fn passed(&self) -> bool {
        self.deaths == 0 && self.bad == 0 && self.stopped.is_none()
    }
}

fn loud(line: &str) {
    let text = format!("!!! {}", line.trim_end().replace('\n', "\n!!! "));
    println!("{text}");
    eprintln!("{text}");
}

/// Runs the fuzz pass against `target`. Prints failures as they happen
/// (deaths loudly, on stdout and stderr) and returns the totals; the caller
/// prints the summary line ([`FuzzReport::summary`]).
pub fn run_fuzz(
    target: &mut dyn Target,
    corpus: &[Entry],
    s: &FuzzSettings,
    label: &str,
) -> FuzzReport {
    let started = Instant::now();
    let mut rep = FuzzReport::default();
    let seed = s.seed;
    let mut printed = 0usize;
    let mut start = 0;
    while start < s.count {
        let end = (start + s.check_every.max(1)).min(s.count);
        let addr = target.addr();
        let next = AtomicUsize::new(start);
        let findings: Mutex<Vec<Finding>> = Mutex::new(Vec::new());
        let connect_errors = AtomicUsize::new(0);
        thread::scope(|sc| {
            for _ in 0..s.parallel.max(1) {
                sc.spawn(|| loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    if k >= end {
                        return;
                    }
                    let input = generate(corpus, seed, k);
                    let (problems, ce) = run_input(addr, &input, s);
                    connect_errors.fetch_add(ce, Ordering::SeqCst);
                    if !problems.is_empty() {
                        findings
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .push(Finding {
                                index: k,
                                msg: problems.join("\n"),
                            });
                    }
                });
            }
        });
        rep.inputs = end;
        rep.connect_errors += connect_errors.into_inner();
        let mut findings = findings.into_inner().unwrap_or_else(|p| p.into_inner());
        findings.sort_by_key(|f| f.index);

        let died = health(target, s).err();
        if died.is_none() {
            for f in findings {
                rep.bad += 1;
                if printed < MAX_REPORTED {
                    printed += 1;
                    let input = generate(corpus, seed, f.index);
                    let saved = save(&s.out_dir, &format!("fuzz-bad-{}", f.index), &input, seed);
                    print!(
                        "FAIL fuzz {label} input {} (seed {seed}): {}\n    input: {}\n    {saved}\n",
                        f.index,
                        f.msg.replace('\n', "\n    "),
                        input.what
                    );
                }
            }
        }
        if let Some(why) = died {
            rep.deaths += 1;
            loud(&format!(
                "TARGET DIED during fuzz inputs {start}..{} (seed {seed}) [{label}]: {why}\n\
                 replaying them one at a time to find the culprit",
                end - 1
            ));
            if let Err(e) = restart(target, label) {
                rep.stopped = Some(format!("{e}; fuzzing stopped after {end} inputs"));
                loud(rep.stopped.as_deref().unwrap_or_default());
                break;
            }
            match replay(target, corpus, s, label, start..end) {
                Ok(0) => {
                    let dir = s.out_dir.join(format!("fuzz-crash-{start}-{}", end - 1));
                    for k in start..end {
                        let input = generate(corpus, seed, k);
                        save(&dir, &k.to_string(), &input, seed);
                    }
                    loud(&format!(
                        "the inputs {start}..{} did not kill the {label} target when replayed one \
                         at a time (timing, or several together); all saved under {}",
                        end - 1,
                        dir.display()
                    ));
                }
                // The batch's death is counted already; count further ones.
                Ok(n) => rep.deaths += n - 1,
                Err(e) => {
                    rep.stopped = Some(e);
                    loud(rep.stopped.as_deref().unwrap_or_default());
                    break;
                }
            }
        }
        start = end;
    }
    rep.elapsed = started.elapsed();
    rep
}

impl FuzzReport {
    /// `fuzz LABEL: N inputs, D deaths, B bad responses (seed S, T s)`.
    pub fn summary(&self, label: &str, seed: u64) -> String {
        let mut s = format!(
            "fuzz {label}: {} inputs, {} deaths, {} bad responses (seed {seed}, {:.1} s",
            self.inputs,
            self.deaths,
            self.bad,
            self.elapsed.as_secs_f64()
        );
        if self.connect_errors > 0 {
            s.push_str(&format!(
                ", {} connections refused or timed out",
                self.connect_errors
            ));
        }
        s.push(')');
        if let Some(why) = &self.stopped {
            s.push_str(&format!("; stopped: {why}"));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> Vec<Entry> {
        vec![
            (
                "a".into(),
                b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
            ),
            (
                "b".into(),
                b"POST /echo HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
                    .to_vec(),
            ),
        ]
    }

    #[test]
    fn inputs_are_deterministic_and_varied() {
        let c = corpus();
        for k in 0..300 {
            let a = generate(&c, 7, k);
            let b = generate(&c, 7, k);
            assert_eq!(a.what, b.what);
            assert_eq!(a.conns.len(), b.conns.len());
            for (x, y) in a.conns.iter().zip(&b.conns) {
                assert_eq!(x.bytes, y.bytes);
                assert_eq!(x.cuts, y.cuts);
                assert_eq!(x.finish, y.finish);
                assert_eq!(x.cuts.iter().sum::<usize>(), x.bytes.len());
                assert!(x.cuts.iter().all(|n| *n > 0));
                assert!(x.bytes.len() <= MAX_INPUT);
            }
            if k % BURST_EVERY == BURST_EVERY - 1 {
                assert_eq!(a.conns.len(), BURST_CONNS);
                assert!(a.conns.iter().all(|c| matches!(c.finish, Finish::Reset(_))));
            } else {
                assert_eq!(a.conns.len(), 1);
            }
        }
        let other = generate(&c, 8, 3);
        let same = generate(&c, 7, 3);
        assert!(other.conns[0].bytes != same.conns[0].bytes || other.what != same.what);
        let kinds: Vec<String> = (0..300).map(|k| generate(&c, 1, k).what).collect();
        for want in [
            "random",
            "huge-number",
            "header-splice",
            "chunk-splice",
            "repeat-line",
            "truncate",
            "insert-special",
            "bit-flip",
            "burst",
        ] {
            assert!(kinds.iter().any(|w| w.contains(want)), "no {want} input");
        }
        let finishes: Vec<Finish> = (0..100)
            .map(|k| generate(&c, 1, k).conns[0].finish)
            .collect();
        assert!(finishes.contains(&Finish::HalfClose));
        assert!(finishes.iter().any(|f| matches!(f, Finish::Reset(_))));
    }

    #[test]
    fn stream_check() {
        let get = b"GET / HTTP/1.1\r\n\r\n";
        let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi";
        assert!(check_stream(b"", get, ServerEnd::Eof).is_ok());
        assert!(check_stream(ok, get, ServerEnd::Eof).is_ok());
        // Cut short by our reset or timeout: fine; by the server's close: not.
        assert!(check_stream(&ok[..30], get, ServerEnd::Open).is_ok());
        assert!(check_stream(&ok[..30], get, ServerEnd::Reset).is_ok());
        assert!(check_stream(&ok[..30], get, ServerEnd::Eof).is_err());
        // A chunked response ended by the server's close: an honest abort.
        let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1\r\nx\r\n";
        assert!(check_stream(cut, get, ServerEnd::Eof).is_ok());
        assert!(check_stream(&cut[..20], get, ServerEnd::Eof).is_err());
        // A Content-Length echo cut short: fine only for /echo.
        let echo = b"POST /echo HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc";
        let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
        assert!(check_stream(cut, echo, ServerEnd::Eof).is_ok());
        assert!(check_stream(cut, get, ServerEnd::Eof).is_err());
        assert!(check_stream(b"garbage\r\n\r\n", get, ServerEnd::Eof).is_err());
        assert!(check_stream(b"HTTP/1.0 200 OK\r\n\r\n", get, ServerEnd::Eof).is_err());
        // A HEAD the inference missed (hidden behind a mangled line) is retried.
        let head_answer = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n";
        let sent = b"XHEAD / HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n\r\n";
        assert!(check_stream(head_answer, sent, ServerEnd::Eof).is_ok());
    }

    #[test]
    fn splits_cover_the_input() {
        let mut r = input_rng(1, 1);
        for len in [0, 1, 5, 100, 70_000, MAX_INPUT] {
            for _ in 0..20 {
                let cuts = split(&mut r, len);
                assert_eq!(cuts.iter().sum::<usize>(), len);
                assert!(cuts.len() <= MAX_WRITES + 1);
            }
        }
    }
}
