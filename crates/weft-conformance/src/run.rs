//! Running one case in one delivery mode over a fresh TCP connection, and
//! judging the result.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use crate::case::{Case, Check, ConnExpect, Expectation, Mode, Step, When};
use crate::decode::{check_flushed_lines, decode, Coding};
use crate::diff;
use crate::escape::escape_bytes;
use crate::response::{normalize, parse_responses, trim_ows, Response, Tail};

/// Harness-wide timing settings; cases may override timeout and quiet.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    /// How long to wait for the answer after the last send step.
    pub timeout: Duration,
    /// Silence that ends reading once the expectation is met.
    pub quiet: Duration,
    pub connect: Duration,
    /// Header fields left out of exact comparisons, in what the target sent and in the
    /// cases' `expect:` alike (empty for weft's own builds; see `ENGINE_HOST_DROPPED`).
    pub dropped_fields: &'static [&'static str],
}

/// The one comparison rule for the engine host (`--target engine-host`): it runs weft's
/// protocol engine under its own, smaller application, so the fields weft's application
/// layer adds itself (the security-header and CORS middleware, the static file service's
/// validators and caching fields) are not compared. Everything the engine writes (status
/// line, `Date`, framing, `Connection`, the WebSocket handshake fields, error responses) and
/// the route's own fields (`Content-Type`, `Allow`, `Location`) are.
pub const ENGINE_HOST_DROPPED: &[&str] = &[
    "Server",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Vary",
    "Last-Modified",
    "ETag",
    "Cache-Control",
    "Accept-Ranges",
    "Access-Control-Allow-Origin",
];

impl Default for Timing {
    fn default() -> Self {
        Timing {
            timeout: Duration::from_secs(3),
            quiet: Duration::from_millis(100),
            connect: Duration::from_secs(2),
            dropped_fields: &[],
        }
    }
}

/// Why reading stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum End {
    /// The server closed the connection (read returned 0).
    Eof,
    /// The connection was reset (or another read error).
    Reset,
    /// The expectation was met and the quiet period passed.
    Quiet,
    /// The case timeout passed.
    Timeout,
    /// The client reset the connection (a `reset` step); nothing is read
    /// after that.
    Aborted,
}

impl End {
    /// The server closed or reset the connection.
    pub fn closed(self) -> bool {
        matches!(self, End::Eof | End::Reset)
    }
}

/// Sets SO_LINGER with a zero timeout, so that closing the socket's last
/// descriptor sends RST instead of FIN (std's `TcpStream::set_linger` is
/// unstable).
pub fn set_linger_zero(stream: &TcpStream) -> std::io::Result<()> {
    socket2::SockRef::from(stream).set_linger(Some(Duration::ZERO))
}

/// How often a blocked reader thread wakes to see whether the connection is
/// being aborted (a safety net: `shutdown(Read)` normally wakes it at once).
pub const READER_POLL: Duration = Duration::from_millis(200);

/// Resets a connection whose other descriptor belongs to a reader thread:
/// marks the abort, sets SO_LINGER 0, wakes the reader with
/// `shutdown(Read)`, waits for it to drop its descriptor, then closes ours,
/// which sends RST.
pub fn abort_connection<T>(
    stream: TcpStream,
    aborting: &AtomicBool,
    reader: thread::JoinHandle<T>,
) -> (std::io::Result<()>, Option<T>) {
    aborting.store(true, Ordering::SeqCst);
    let linger = set_linger_zero(&stream);
    let _ = stream.shutdown(Shutdown::Read);
    let out = reader.join().ok();
    drop(stream);
    (linger, out)
}

/// What happened on one connection.
#[derive(Clone, Debug)]
pub struct Transcript {
    pub raw: Vec<u8>,
    pub normalized: Vec<u8>,
    pub end: End,
    /// Error from a write or shutdown step; later steps were not run.
    pub write_error: Option<String>,
    /// From connect to the end of reading.
    pub elapsed: Duration,
}

/// Seeded xorshift64* generator for `split:SEED` (seed mixed by splitmix64
/// so that small seeds, 0 included, give unrelated sequences).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        Rng(if z == 0 { 1 } else { z })
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
}

/// Largest chunk written by `split:SEED`.
pub const SPLIT_MAX: usize = 32;

/// Cuts one send payload into the writes a mode performs. `rng` carries
/// over between the send steps of one connection.
pub fn chunks<'a>(payload: &'a [u8], mode: Mode, rng: &mut Rng) -> Vec<&'a [u8]> {
    match mode {
        Mode::Whole => vec![payload],
        Mode::Bytes => payload.chunks(1).collect(),
        Mode::Split(_) => {
            let mut out = Vec::new();
            let mut rest = payload;
            while !rest.is_empty() {
                let n = (1 + (rng.next_u64() % SPLIT_MAX as u64) as usize).min(rest.len());
                out.push(&rest[..n]);
                rest = &rest[n..];
            }
            out
        }
    }
}

enum Event {
    Data(Vec<u8>, Instant),
    Eof,
    Reset,
}

/// Starts a thread that reads `reader` until EOF or an error and reports
/// what it reads on `tx`. Once `aborting` is set, the end of the stream is
/// our own doing and is not reported.
fn spawn_reader(
    mut reader: TcpStream,
    tx: mpsc::Sender<Event>,
    aborting: Arc<AtomicBool>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let _ = reader.set_read_timeout(Some(READER_POLL));
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let r = reader.read(&mut buf);
            if aborting.load(Ordering::SeqCst) {
                // The bytes of this last read still count; then stop at once
                // (queued data would otherwise delay the reset).
                if let Ok(n @ 1..) = r {
                    let _ = tx.send(Event::Data(buf[..n].to_vec(), Instant::now()));
                }
                return;
            }
            match r {
                Ok(0) => {
                    let _ = tx.send(Event::Eof);
                    return;
                }
                Ok(n) => {
                    if tx
                        .send(Event::Data(buf[..n].to_vec(), Instant::now()))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Interrupted | ErrorKind::WouldBlock | ErrorKind::TimedOut
                    ) =>
                {
                    continue
                }
                Err(_) => {
                    let _ = tx.send(Event::Reset);
                    return;
                }
            }
        }
    })
}

fn effective(case: &Case, timing: &Timing) -> (Duration, Duration) {
    (
        case.timeout.unwrap_or(timing.timeout),
        case.quiet.unwrap_or(timing.quiet),
    )
}

/// True once the bytes read so far are enough to judge the expectation.
fn settled(
    expect: &Expectation,
    normalized_expected: &[u8],
    raw: &[u8],
    methods: &[String],
    dropped: &[&str],
) -> bool {
    match expect {
        Expectation::None => true,
        Expectation::Exact(_) => {
            let got = normalize(raw, dropped);
            !(got.len() < normalized_expected.len() && normalized_expected.starts_with(&got))
        }
        Expectation::Assert { count, .. } => {
            let p = parse_responses(raw, methods, false);
            p.responses.len() >= *count
                || matches!(p.tail, Tail::Error { .. } | Tail::Upgraded { .. })
        }
    }
}

/// Runs `case` once in `mode` on a fresh connection to `addr`. Fails only
/// when the connection cannot be made.
pub fn run_mode(
    addr: SocketAddr,
    case: &Case,
    mode: Mode,
    timing: &Timing,
) -> Result<Transcript, String> {
    let (timeout, quiet) = effective(case, timing);
    let started = Instant::now();
    let stream = TcpStream::connect_timeout(&addr, timing.connect)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    stream
        .set_nodelay(true)
        .map_err(|e| format!("set TCP_NODELAY: {e}"))?;
    stream
        .set_write_timeout(Some(timeout.max(Duration::from_millis(100))))
        .map_err(|e| format!("set write timeout: {e}"))?;
    let reader = stream
        .try_clone()
        .map_err(|e| format!("clone socket: {e}"))?;
    let (tx, rx) = mpsc::channel();
    let aborting = Arc::new(AtomicBool::new(false));
    let mut reader_thread = Some(spawn_reader(reader, tx, aborting.clone()));
    let mut stream = Some(stream);

    // Send phase.
    let mut rng = Rng::new(match mode {
        Mode::Split(seed) => seed,
        _ => 0,
    });
    let mut write_error = None;
    let mut aborted = false;
    'steps: for (i, step) in case.steps.iter().enumerate() {
        let Some(s) = stream.as_ref() else { break };
        let mut writer = s;
        match step {
            Step::Send(payload) => {
                for chunk in chunks(payload, mode, &mut rng) {
                    if let Err(e) = writer.write_all(chunk) {
                        write_error = Some(format!("send step {} failed: {e}", i + 1));
                        break 'steps;
                    }
                }
            }
            Step::Wait(d) => thread::sleep(*d),
            Step::Shutdown => {
                if let Err(e) = s.shutdown(Shutdown::Write) {
                    write_error = Some(format!("shutdown step {} failed: {e}", i + 1));
                    break 'steps;
                }
            }
            Step::Reset => {
                let (Some(s), Some(r)) = (stream.take(), reader_thread.take()) else {
                    break;
                };
                if let (Err(e), _) = abort_connection(s, &aborting, r) {
                    write_error = Some(format!("reset step {} failed: {e}", i + 1));
                }
                aborted = true;
            }
        }
    }

    // Read phase.
    let methods = case.request_methods();
    let normalized_expected = match &case.expect {
        Expectation::Exact(b) => normalize(b, timing.dropped_fields),
        _ => Vec::new(),
    };
    let sent_done = Instant::now();
    let deadline = sent_done + timeout;
    let mut raw = Vec::new();
    let mut last_data = sent_done;
    let mut is_settled = settled(
        &case.expect,
        &normalized_expected,
        &raw,
        &methods,
        timing.dropped_fields,
    );
    let end = if aborted {
        // Nothing more to read: keep what arrived before the reset, and
        // whether the server had closed first.
        let mut end = End::Aborted;
        for ev in rx.try_iter() {
            match ev {
                Event::Data(d, _) => raw.extend_from_slice(&d),
                Event::Eof => end = End::Eof,
                Event::Reset => end = End::Reset,
            }
        }
        end
    } else {
        loop {
            let now = Instant::now();
            if now >= deadline {
                break End::Timeout;
            }
            let mut until = deadline;
            if is_settled && case.conn != ConnExpect::Close {
                let quiet_end = last_data.max(sent_done) + quiet;
                if now >= quiet_end {
                    break End::Quiet;
                }
                until = until.min(quiet_end);
            }
            match rx.recv_timeout(until - now) {
                Ok(Event::Data(d, at)) => {
                    raw.extend_from_slice(&d);
                    last_data = at;
                    is_settled = settled(
                        &case.expect,
                        &normalized_expected,
                        &raw,
                        &methods,
                        timing.dropped_fields,
                    );
                }
                Ok(Event::Eof) | Err(mpsc::RecvTimeoutError::Disconnected) => break End::Eof,
                Ok(Event::Reset) => break End::Reset,
                Err(mpsc::RecvTimeoutError::Timeout) => {}
            }
        }
    };
    if let Some(s) = stream {
        aborting.store(true, Ordering::SeqCst);
        let _ = s.shutdown(Shutdown::Both);
    }
    if let Some(r) = reader_thread {
        let _ = r.join();
    }
    let normalized = normalize(&raw, timing.dropped_fields);
    Ok(Transcript {
        raw,
        normalized,
        end,
        write_error,
        elapsed: started.elapsed(),
    })
}

fn show(b: &[u8], max: usize) -> String {
    if b.len() <= max {
        format!("\"{}\"", escape_bytes(b))
    } else {
        format!("\"{}\"... ({} bytes)", escape_bytes(&b[..max]), b.len())
    }
}

fn describe_end(t: &Transcript) -> String {
    let how = match t.end {
        End::Eof => "server closed the connection (EOF)",
        End::Reset => "connection reset by the server",
        End::Quiet => "quiet period passed, connection open",
        End::Timeout => "timed out, connection open",
        End::Aborted => "client reset the connection (reset step)",
    };
    let mut s = format!(
        "{how} after {} ms, {} bytes read",
        t.elapsed.as_millis(),
        t.raw.len()
    );
    if let Some(e) = &t.write_error {
        s.push_str("; ");
        s.push_str(e);
    }
    s
}

/// The body of `resp` with its content coding removed.
fn decoded(resp: &Response) -> Result<Vec<u8>, String> {
    let coding = Coding::from_field(&resp.header_values("content-encoding"))?;
    decode(coding, &resp.body)
}

fn check_response(n: usize, resp: &Response, check: &Check) -> Option<String> {
    match check {
        Check::StatusSet { any, none } => {
            let ok = (any.is_empty() || any.iter().any(|p| p.matches(resp.status)))
                && !none.iter().any(|p| p.matches(resp.status));
            (!ok).then(|| {
                let mut want: Vec<String> = any.iter().map(|p| p.to_string()).collect();
                want.extend(none.iter().map(|p| format!("not {p}")));
                format!(
                    "response {n}: expected status {}, got {} {}",
                    want.join(" / "),
                    resp.status,
                    String::from_utf8_lossy(&resp.reason)
                )
            })
        }
        Check::HeaderToken { name, token } => {
            let values = resp.header_values(name);
            let found = values.iter().any(|v| {
                // An element is compared without its parameters (`; ...`).
                v.split(|b| *b == b',').any(|e| {
                    let e = e.split(|b| *b == b';').next().unwrap_or(e);
                    trim_ows(e).eq_ignore_ascii_case(token.as_bytes())
                })
            });
            (!found).then(|| {
                format!(
                    "response {n}: header {name} lacks the element {token:?} (values: {})",
                    if values.is_empty() {
                        "none".to_string()
                    } else {
                        values
                            .iter()
                            .map(|v| show(v, 120))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )
            })
        }
        Check::HeaderIfStatus { status, name } => (status.matches(resp.status)
            && resp.header_values(name).is_empty())
        .then(|| format!("response {n}: a {} response without {name}", resp.status)),
        Check::SameHeader { .. } => None,
        Check::FileBody(_) | Check::FileDecodedBody(_) => Some(format!(
            "response {n}: expect-body-file needs the fixture file (--file-bytes)"
        )),
        Check::Status(p) => (!p.matches(resp.status)).then(|| {
            format!(
                "response {n}: expected status {p}, got {} {}",
                resp.status,
                String::from_utf8_lossy(&resp.reason)
            )
        }),
        Check::Header { name, value } => {
            let is_date = name.eq_ignore_ascii_case("date");
            let values: Vec<&[u8]> = resp
                .header_values(name)
                .into_iter()
                .map(|v| if is_date { &b"<date>"[..] } else { v })
                .collect();
            match value {
                None if values.is_empty() => Some(format!("response {n}: header {name} missing")),
                None => None,
                Some(want) if values.iter().any(|v| v == want) => None,
                Some(want) => Some(format!(
                    "response {n}: header {name}: expected {}, got {}",
                    show(want, 200),
                    if values.is_empty() {
                        "no such header".to_string()
                    } else {
                        values
                            .iter()
                            .map(|v| show(v, 200))
                            .collect::<Vec<_>>()
                            .join(", ")
                    }
                )),
            }
        }
        Check::NoHeader(name) => {
            let values = resp.header_values(name);
            (!values.is_empty()).then(|| {
                format!(
                    "response {n}: header {name} should be absent, got {}",
                    show(values[0], 200)
                )
            })
        }
        Check::Body(want) => (resp.body != *want).then(|| {
            format!(
                "response {n}: body differs\n{}",
                diff::render(want, &resp.body).trim_end_matches('\n')
            )
        }),
        Check::BodyLength(len) => (resp.body.len() != *len).then(|| {
            format!(
                "response {n}: expected a body of {len} bytes, got {}",
                resp.body.len()
            )
        }),
        Check::DecodedBody(want) => match decoded(resp) {
            Err(e) => Some(format!("response {n}: {e}")),
            Ok(body) => (body != *want).then(|| {
                format!(
                    "response {n}: decoded body differs\n{}",
                    diff::render(want, &body).trim_end_matches('\n')
                )
            }),
        },
        Check::DecodedBodyLength(len) => match decoded(resp) {
            Err(e) => Some(format!("response {n}: {e}")),
            Ok(body) => (body.len() != *len).then(|| {
                format!(
                    "response {n}: expected a decoded body of {len} bytes, got {}",
                    body.len()
                )
            }),
        },
        Check::FlushedLines => {
            if resp.chunks.is_empty() {
                return Some(format!("response {n}: not a chunked body with data"));
            }
            let coding = match Coding::from_field(&resp.header_values("content-encoding")) {
                Ok(c) => c,
                Err(e) => return Some(format!("response {n}: {e}")),
            };
            let mut chunks = Vec::with_capacity(resp.chunks.len());
            let mut at = 0;
            for &size in &resp.chunks {
                chunks.push(&resp.body[at..at + size]);
                at += size;
            }
            check_flushed_lines(coding, &chunks)
                .err()
                .map(|e| format!("response {n}: not flushed line by line: {e}"))
        }
    }
}

/// Judges one transcript. Returns the failure messages (possibly multi-line,
/// continuation lines indented by four spaces); empty means the mode passed.
pub fn evaluate(case: &Case, t: &Transcript, timing: &Timing) -> Vec<String> {
    let (timeout, _) = effective(case, timing);
    let mut fails = Vec::new();
    match &case.expect {
        Expectation::None => {}
        Expectation::Exact(expected) => {
            let expected = normalize(expected, timing.dropped_fields);
            if t.normalized != expected {
                fails.push(format!(
                    "response bytes differ\n{}",
                    diff::render(&expected, &t.normalized).trim_end_matches('\n')
                ));
            }
        }
        Expectation::Assert { count, assertions } => {
            let parsed = parse_responses(&t.raw, &case.request_methods(), t.end.closed());
            let got = parsed.responses.len();
            match &parsed.tail {
                Tail::Complete | Tail::Upgraded { .. } => {}
                Tail::Incomplete { at, what } => fails.push(format!(
                    "response {} is incomplete (from byte {at}): {what}",
                    got + 1
                )),
                Tail::Error { at, msg } => fails.push(format!(
                    "malformed response stream at byte {at}: {msg}; bytes there: {}",
                    show(&t.raw[(*at).min(t.raw.len())..], 80)
                )),
            }
            // `accept-close: K`: the server may close instead of sending
            // responses K and later.
            let closed_early = case.accept_close.is_some_and(|k| {
                t.end.closed()
                    && got + 1 >= k
                    && got < *count
                    && matches!(parsed.tail, Tail::Complete)
            });
            let count_ok = got == *count
                || (case.at_least_responses && got > *count)
                || (case.at_most_responses && got < *count);
            if !count_ok && !closed_early {
                let statuses: Vec<String> = parsed
                    .responses
                    .iter()
                    .map(|r| r.status.to_string())
                    .collect();
                fails.push(format!(
                    "expected {count} response(s), got {got} complete [{}]",
                    statuses.join(", ")
                ));
            }
            for a in assertions {
                if let Some(resp) = parsed.responses.get(a.response - 1) {
                    let applies = match &a.when {
                        None => true,
                        Some(When::Status(p)) => p.matches(resp.status),
                        Some(When::Header(n)) => !resp.header_values(n).is_empty(),
                    };
                    if !applies {
                        continue;
                    }
                    if let Some(msg) = check_response(a.response, resp, &a.check) {
                        fails.push(format!("line {}: {msg}", a.line));
                    }
                    if let Check::SameHeader { name, other } = &a.check {
                        if let Some(o) = parsed.responses.get(other - 1) {
                            let (mine, theirs) = (resp.header_values(name), o.header_values(name));
                            if mine != theirs {
                                fails.push(format!(
                                    "line {}: response {}: {name} differs from response {other}: \
                                     {:?} vs {:?}",
                                    a.line,
                                    a.response,
                                    mine.iter()
                                        .map(|v| String::from_utf8_lossy(v))
                                        .collect::<Vec<_>>(),
                                    theirs
                                        .iter()
                                        .map(|v| String::from_utf8_lossy(v))
                                        .collect::<Vec<_>>()
                                ));
                            }
                        }
                    }
                }
            }
            if !case.ws_expect.is_empty() {
                match parsed.tail {
                    Tail::Upgraded { at } => {
                        for (line, msg) in crate::ws::check_frames(&t.raw[at..], &case.ws_expect) {
                            fails.push(format!("line {line}: websocket: {msg}"));
                        }
                    }
                    _ => fails.push("websocket: no 101 response, no frames to check".into()),
                }
            }
        }
    }
    let show_stream = !fails.is_empty() && matches!(case.expect, Expectation::Assert { .. });
    match case.conn {
        ConnExpect::Any => {}
        ConnExpect::Persist if t.end.closed() => {
            let parsed = parse_responses(&t.raw, &case.request_methods(), true);
            let announced = parsed.responses.last().is_some_and(|r| {
                r.header_values("connection").iter().any(|v| {
                    v.split(|b| *b == b',')
                        .any(|e| trim_ows(e).eq_ignore_ascii_case(b"close"))
                })
            });
            if !announced {
                fails.push(
                    "the server closed the connection without announcing it (no \
                     `Connection: close` in its last response)"
                        .into(),
                );
            }
        }
        ConnExpect::Close if !t.end.closed() => fails.push(format!(
            "expected the server to close the connection; still open after {} ms",
            timeout.as_millis()
        )),
        ConnExpect::Open if t.end.closed() => fails.push(format!(
            "expected the connection to stay open, but the {}",
            if t.end == End::Eof {
                "server closed it (EOF)"
            } else {
                "connection was reset"
            }
        )),
        _ => {}
    }
    if show_stream {
        fails.push(format!("actual stream: {}", show(&t.normalized, 600)));
    }
    if !fails.is_empty() {
        fails.push(format!("read: {}", describe_end(t)));
    }
    fails
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_seed_sensitive() {
        let a: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let b: Vec<u64> = {
            let mut r = Rng::new(7);
            (0..4).map(|_| r.next_u64()).collect()
        };
        let c: Vec<u64> = {
            let mut r = Rng::new(8);
            (0..4).map(|_| r.next_u64()).collect()
        };
        assert_eq!(a, b);
        assert_ne!(a, c);
        assert_ne!(Rng::new(0).next_u64(), 0);
    }

    #[test]
    fn chunking_covers_the_payload() {
        let payload: Vec<u8> = (0..200u8).collect();
        let mut rng = Rng::new(1);
        for mode in [Mode::Whole, Mode::Bytes, Mode::Split(1), Mode::Split(99)] {
            let parts = chunks(&payload, mode, &mut rng);
            assert_eq!(parts.concat(), payload, "{mode}");
            match mode {
                Mode::Whole => assert_eq!(parts.len(), 1),
                Mode::Bytes => assert_eq!(parts.len(), 200),
                Mode::Split(_) => {
                    assert!(parts.len() > 200 / SPLIT_MAX);
                    assert!(parts.iter().all(|p| !p.is_empty() && p.len() <= SPLIT_MAX));
                }
            }
        }
        assert!(chunks(b"", Mode::Split(3), &mut rng).is_empty());
    }
}
