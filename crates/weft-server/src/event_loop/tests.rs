//! The event loop on an in-memory backend: connections, readiness, partial reads and writes,
//! EOF, resets and time are all the test's, so each rule of the loop is checked without
//! sockets and without waiting (the clock jumps when a wait would sleep).

use std::cell::RefCell;
use std::collections::VecDeque;
use std::io;
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use weft_app::demo::{DemoApp, DemoConfig};
use weft_core::Limits;

use super::conn::Conn;
use super::{EventLoop, LoopConfig};
use crate::backend::{Backend, ReadOutcome, Readiness, Token};
use crate::budget::MemoryBudget;

/// One connection as the peer and the kernel see it.
#[derive(Default)]
struct Peer {
    /// Bytes sent by the peer, not yet read by the server.
    input: VecDeque<u8>,
    /// The peer sent FIN after `input`.
    fin: bool,
    /// The connection was reset: every operation fails.
    reset: bool,
    /// Bytes the server wrote.
    output: Vec<u8>,
    /// How many more bytes the peer's window takes (`usize::MAX`: unlimited).
    room: usize,
    /// An edge to report: input arrived / room appeared since the last wait.
    readable_edge: bool,
    writable_edge: bool,
    /// The server sent FIN / released the connection.
    shut_write: bool,
    /// When the FIN was sent (simulated time).
    shut_at: Option<Duration>,
    closed: bool,
    /// Read calls the server made.
    reads: usize,
}

#[derive(Default)]
struct World {
    peers: Vec<Peer>,
    /// Connections waiting to be accepted (tokens into `peers`).
    queue: VecDeque<Token>,
    /// Errors the next accepts return, in order.
    accept_errors: VecDeque<io::ErrorKind>,
    accept_calls: usize,
    now: Option<Instant>,
    elapsed: Duration,
}

impl World {
    fn now(&self) -> Instant {
        self.now.unwrap_or_else(Instant::now) + self.elapsed
    }

    fn peer(&mut self, token: Token) -> io::Result<&mut Peer> {
        let peer = self
            .peers
            .get_mut(token)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such connection"))?;
        if peer.reset {
            return Err(io::Error::new(io::ErrorKind::ConnectionReset, "reset"));
        }
        Ok(peer)
    }
}

/// The backend the loop gets: a view of the shared world, edge-triggered like epoll.
struct Fake(Rc<RefCell<World>>);

impl Backend for Fake {
    fn now(&self) -> Instant {
        self.0.borrow().now()
    }

    fn wall_clock(&self) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000)
    }

    fn wait(
        &mut self,
        timeout: Option<Duration>,
        accept: bool,
        ready: &mut Vec<Readiness>,
    ) -> io::Result<bool> {
        let mut w = self.0.borrow_mut();
        let acceptable = accept && (!w.queue.is_empty() || !w.accept_errors.is_empty());
        for (token, peer) in w.peers.iter_mut().enumerate() {
            if peer.closed || !(peer.readable_edge || peer.writable_edge) {
                continue;
            }
            ready.push(Readiness {
                token,
                readable: peer.readable_edge,
                writable: peer.writable_edge,
                read_closed: peer.fin && peer.readable_edge,
            });
            peer.readable_edge = false;
            peer.writable_edge = false;
        }
        if ready.is_empty() && !acceptable {
            // Nothing to report: the wait sleeps out its timeout.
            w.elapsed += timeout.unwrap_or(Duration::from_secs(1));
        }
        Ok(acceptable)
    }

    fn accept(&mut self) -> io::Result<Option<(Token, SocketAddr)>> {
        let mut w = self.0.borrow_mut();
        w.accept_calls += 1;
        if let Some(kind) = w.accept_errors.pop_front() {
            return Err(io::Error::new(kind, "simulated accept failure"));
        }
        Ok(w.queue.pop_front().map(|token| {
            (
                token,
                SocketAddr::from(([127, 0, 0, 1], 40000 + token as u16)),
            )
        }))
    }

    fn read(&mut self, token: Token, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        let mut w = self.0.borrow_mut();
        let peer = w.peer(token)?;
        peer.reads += 1;
        if peer.input.is_empty() {
            return Ok(if peer.fin {
                ReadOutcome::Eof
            } else {
                ReadOutcome::WouldBlock
            });
        }
        let n = buf.len().min(peer.input.len());
        for (dst, src) in buf.iter_mut().zip(peer.input.drain(..n)) {
            *dst = src;
        }
        Ok(ReadOutcome::Data(n))
    }

    fn write(&mut self, token: Token, data: &[u8]) -> io::Result<usize> {
        let mut w = self.0.borrow_mut();
        let peer = w.peer(token)?;
        assert!(!peer.shut_write, "a write after FIN");
        let n = data.len().min(peer.room);
        peer.output.extend_from_slice(&data[..n]);
        if peer.room != usize::MAX {
            peer.room -= n;
        }
        Ok(n)
    }

    fn set_interest(&mut self, _token: Token, _read: bool, _write: bool) {}

    fn shutdown_write(&mut self, token: Token) {
        let mut w = self.0.borrow_mut();
        let elapsed = w.elapsed;
        if let Ok(peer) = w.peer(token) {
            peer.shut_write = true;
            peer.shut_at.get_or_insert(elapsed);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(peer) = self.0.borrow_mut().peers.get_mut(token) {
            peer.closed = true;
        }
    }

    fn stop_listening(&mut self) {}
}

/// A loop over the demo application, its world, and the shutdown flag `turn` needs.
struct Harness {
    lp: EventLoop<Fake, DemoApp>,
    world: Rc<RefCell<World>>,
    stop: AtomicBool,
}

impl Harness {
    fn new(config: LoopConfig) -> Harness {
        let world = Rc::new(RefCell::new(World {
            now: Some(Instant::now()),
            ..World::default()
        }));
        let app = DemoApp::new(DemoConfig {
            access_log: false,
            ..DemoConfig::default()
        })
        .unwrap();
        Harness {
            lp: EventLoop::new(Fake(Rc::clone(&world)), app, config),
            world,
            stop: AtomicBool::new(false),
        }
    }

    fn with_limits(limits: Limits) -> Harness {
        Harness::new(LoopConfig {
            limits,
            ..LoopConfig::default()
        })
    }

    /// A new peer in the accept queue, with an unlimited window.
    fn connect(&mut self) -> Token {
        let mut w = self.world.borrow_mut();
        w.peers.push(Peer {
            room: usize::MAX,
            ..Peer::default()
        });
        let token = w.peers.len() - 1;
        w.queue.push_back(token);
        token
    }

    fn send(&mut self, token: Token, bytes: &[u8]) {
        let mut w = self.world.borrow_mut();
        let peer = &mut w.peers[token];
        peer.input.extend(bytes);
        peer.readable_edge = true;
    }

    fn fin(&mut self, token: Token) {
        let mut w = self.world.borrow_mut();
        let peer = &mut w.peers[token];
        peer.fin = true;
        peer.readable_edge = true;
    }

    /// Sets the peer's window; growing it reports a writable edge.
    fn room(&mut self, token: Token, room: usize) {
        let mut w = self.world.borrow_mut();
        let peer = &mut w.peers[token];
        peer.writable_edge |= room > 0;
        peer.room = room;
    }

    fn turns(&mut self, n: usize) {
        for _ in 0..n {
            self.lp.turn(&self.stop).unwrap();
        }
    }

    /// Turns until `done` holds (at most 10,000 turns).
    fn until(&mut self, what: &str, done: impl Fn(&World) -> bool) {
        for _ in 0..10_000 {
            if done(&self.world.borrow()) {
                return;
            }
            self.lp.turn(&self.stop).unwrap();
        }
        panic!("never happened: {what}");
    }

    fn output(&self, token: Token) -> Vec<u8> {
        self.world.borrow().peers[token].output.clone()
    }

    fn peer<R>(&self, token: Token, f: impl Fn(&Peer) -> R) -> R {
        f(&self.world.borrow().peers[token])
    }

    fn elapsed(&self) -> Duration {
        self.world.borrow().elapsed
    }
}

const HELLO: &[u8] = b"GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";

fn count(haystack: &[u8], needle: &[u8]) -> usize {
    haystack
        .windows(needle.len())
        .filter(|w| *w == needle)
        .count()
}

#[test]
fn pipelined_requests_are_answered_in_order_in_one_write() {
    let mut h = Harness::new(LoopConfig::default());
    let c = h.connect();
    let mut input = HELLO.to_vec();
    input.extend_from_slice(b"GET /api/users/7 HTTP/1.1\r\nHost: x\r\n\r\n");
    h.send(c, &input);
    h.until("two answers", |w| {
        count(&w.peers[c].output, b"HTTP/1.1 200") == 2
    });
    let out = String::from_utf8(h.output(c)).unwrap();
    let hello = out.find("Hello, world!").unwrap();
    let user = out.find(r#"{"id":7"#).unwrap();
    assert!(hello < user, "in request order: {out}");
    assert!(!h.peer(c, |p| p.shut_write), "keep-alive");
}

#[test]
fn backpressure_stops_reading_while_the_peer_does_not_read() {
    let mut h = Harness::new(LoopConfig::default());
    let c = h.connect();
    h.room(c, 0);
    let requests = 20_000;
    h.send(c, &HELLO.repeat(requests));
    h.turns(50);
    let unread = h.peer(c, |p| p.input.len());
    assert!(
        unread > HELLO.len() * requests / 2,
        "reading stopped while output could not leave ({unread} bytes left unread)"
    );
    assert!(h.output(c).is_empty());
    // The peer reads again: everything is answered, in order, nothing lost.
    h.room(c, usize::MAX);
    h.until("every answer", |w| {
        count(&w.peers[c].output, b"HTTP/1.1 200 OK") == requests
    });
    assert_eq!(count(&h.output(c), b"Hello, world!"), requests);
}

#[test]
fn a_short_read_is_not_followed_by_a_read_that_finds_nothing() {
    let mut h = Harness::new(LoopConfig::default());
    let c = h.connect();
    h.turns(1);
    let before = h.peer(c, |p| p.reads);
    h.send(c, b"GET /hel");
    h.turns(1);
    assert_eq!(h.peer(c, |p| p.reads), before + 1, "one read per arrival");
    h.send(c, b"lo HTTP/1.1\r\nHost: x\r\n\r\n");
    h.until("the answer", |w| count(&w.peers[c].output, b"Hello") == 1);
    assert_eq!(h.peer(c, |p| p.reads), before + 2);
}

#[test]
fn a_fin_already_seen_is_read_past_a_short_read() {
    let mut h = Harness::new(LoopConfig::default());
    let c = h.connect();
    h.turns(1);
    // Data and FIN in one edge: the short read must not stop the loop from reading EOF.
    h.send(c, HELLO);
    h.fin(c);
    h.until("closed", |w| w.peers[c].closed);
    assert_eq!(count(&h.output(c), b"Hello, world!"), 1);
}

#[test]
fn lingering_close_discards_input_then_closes() {
    let mut h = Harness::new(LoopConfig::default());
    let c = h.connect();
    h.send(
        c,
        b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    h.until("FIN sent", |w| w.peers[c].shut_write);
    assert_eq!(count(&h.output(c), b"Hello, world!"), 1);
    assert!(!h.peer(c, |p| p.closed), "lingering: not released yet");
    // Input after the close is read and dropped, so it cannot turn the close into a reset.
    h.send(c, &HELLO.repeat(10));
    h.turns(2);
    assert_eq!(h.peer(c, |p| p.input.len()), 0);
    assert_eq!(count(&h.output(c), b"Hello, world!"), 1, "not answered");
    // The peer never closes: released after the linger time.
    let start = h.elapsed();
    h.until("released", |w| w.peers[c].closed);
    let lingered = h.elapsed() - start;
    assert!(lingered <= Duration::from_secs(3), "{lingered:?}");
}

#[test]
fn eof_while_lingering_closes_at_once() {
    let mut h = Harness::new(LoopConfig::default());
    let c = h.connect();
    h.send(
        c,
        b"GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    h.until("FIN sent", |w| w.peers[c].shut_write);
    let start = h.elapsed();
    h.fin(c);
    h.until("released", |w| w.peers[c].closed);
    assert_eq!(h.elapsed(), start, "no waiting");
}

#[test]
fn a_reset_releases_the_connection() {
    let mut h = Harness::new(LoopConfig::default());
    let c = h.connect();
    h.send(c, b"GET /hel");
    h.turns(1);
    {
        let mut w = h.world.borrow_mut();
        w.peers[c].reset = true;
        w.peers[c].readable_edge = true;
    }
    h.until("released", |w| w.peers[c].closed);
}

/// The stream `/sheep` produces, written to a peer that takes `room` bytes and then nothing.
fn stalled_stream(room: usize) -> (Harness, Token) {
    let mut h = Harness::with_limits(Limits {
        send_timeout: Duration::from_secs(5),
        ..Limits::default()
    });
    let c = h.connect();
    h.room(c, room);
    h.send(c, b"GET /sheep?n=100000&ms=0 HTTP/1.1\r\nHost: x\r\n\r\n");
    (h, c)
}

#[test]
fn a_send_timeout_leaves_an_exact_prefix_and_closes() {
    // The whole response, from a peer that reads everything.
    let (mut full, f) = stalled_stream(usize::MAX);
    full.until("the whole stream", |w| {
        w.peers[f].output.ends_with(b"0\r\n\r\n")
    });
    let whole = full.output(f);
    // A peer that takes 300 KiB, then stops reading.
    let (mut h, c) = stalled_stream(300 << 10);
    h.until("released", |w| w.peers[c].closed);
    let got = h.output(c);
    assert_eq!(got.len(), 300 << 10);
    assert!(whole.starts_with(&got), "an exact prefix, no hole");
    assert!(h.peer(c, |p| p.shut_write), "FIN after the prefix");
    assert!(h.elapsed() >= Duration::from_secs(5));
    assert!(
        h.elapsed() < Duration::from_secs(7),
        "closed at once after the timeout, no linger: {:?}",
        h.elapsed()
    );
    // The peer reads on after the timeout: nothing more arrives.
    h.room(c, usize::MAX);
    h.turns(5);
    assert_eq!(h.output(c).len(), got.len());
}

#[test]
fn a_slow_reader_without_edges_is_not_timed_out() {
    // The peer takes 1 KiB a second but no writable edge is reported (epoll reports room only
    // past a threshold): the loop tries a write before judging the send timeout.
    let (mut h, c) = stalled_stream(64 << 10);
    h.until("stalled", |w| w.peers[c].room == 0);
    for _ in 0..20 {
        h.world.borrow_mut().peers[c].room += 1024;
        let target = h.elapsed() + Duration::from_secs(1);
        h.until("a second passes", |w| w.elapsed >= target);
    }
    assert!(!h.peer(c, |p| p.closed), "a reader that reads is served");
    assert!(h.output(c).len() >= (64 << 10) + 15 * 1024);
}

#[test]
fn accept_retries_by_itself_after_running_out_of_descriptors() {
    let mut h = Harness::new(LoopConfig::default());
    h.world
        .borrow_mut()
        .accept_errors
        .extend([io::ErrorKind::Other, io::ErrorKind::Other]);
    let c = h.connect();
    h.send(c, HELLO);
    // No readiness is reported after the failures (an edge-triggered listener reports a
    // queue once): the loop must come back to it on its own, after a pause, not in a spin.
    h.until("answered", |w| count(&w.peers[c].output, b"Hello") == 1);
    let w = h.world.borrow();
    assert!(w.elapsed >= Duration::from_millis(200), "{:?}", w.elapsed);
    assert!(
        w.accept_calls <= 6,
        "no spinning: {} accepts",
        w.accept_calls
    );
}

#[test]
fn connections_past_the_limit_get_503() {
    let mut h = Harness::new(LoopConfig {
        max_connections: 2,
        ..LoopConfig::default()
    });
    let peers: Vec<Token> = (0..4).map(|_| h.connect()).collect();
    for &p in &peers {
        h.send(p, HELLO);
    }
    h.until("all answered", |w| {
        peers.iter().all(|&p| !w.peers[p].output.is_empty())
    });
    let ok = peers
        .iter()
        .filter(|&&p| h.output(p).starts_with(b"HTTP/1.1 200"))
        .count();
    let busy = peers
        .iter()
        .filter(|&&p| h.output(p).starts_with(b"HTTP/1.1 503"))
        .count();
    assert_eq!((ok, busy), (2, 2));
    // One served client leaves: the next newcomer is served.
    h.fin(peers[0]);
    h.until("released", |w| w.peers[peers[0]].closed);
    let next = h.connect();
    h.send(next, HELLO);
    h.until("answered", |w| !w.peers[next].output.is_empty());
    assert!(h.output(next).starts_with(b"HTTP/1.1 200"));
}

/// A masked client frame (FIN set).
fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let key = [1u8, 2, 3, 4];
    let mut f = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => f.push(0x80 | n as u8),
        n if n <= 0xFFFF => {
            f.push(0x80 | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(0x80 | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    f.extend_from_slice(&key);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    f
}

fn upgrade(h: &mut Harness, path: &str) -> Token {
    let c = h.connect();
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    h.send(c, request.as_bytes());
    h.until("101", |w| w.peers[c].output.ends_with(b"\r\n\r\n"));
    assert!(h.output(c).starts_with(b"HTTP/1.1 101"));
    h.world.borrow_mut().peers[c].output.clear();
    c
}

#[test]
fn chat_messages_reach_other_sessions_through_wake_ups() {
    let mut h = Harness::new(LoopConfig::default());
    let a = upgrade(&mut h, "/ws/chat?room=t");
    let b = upgrade(&mut h, "/ws/chat?room=t");
    h.send(a, &client_frame(0x1, b"hi all"));
    // b's session runs only because a's message woke it.
    h.until("delivered to both", |w| {
        [a, b]
            .iter()
            .all(|&p| count(&w.peers[p].output, b"hi all") == 1)
    });
}

#[test]
fn a_websocket_peer_that_stops_reading_is_cut_off() {
    let mut h = Harness::with_limits(Limits {
        send_timeout: Duration::from_secs(3),
        ..Limits::default()
    });
    let c = upgrade(&mut h, "/ws/echo");
    h.room(c, 0);
    h.send(c, &client_frame(0x2, &vec![7; 200_000]));
    // The echo cannot leave; the session's own send timeout (from WsOptions, 30 s by default)
    // ends it, and the loop stops reading meanwhile.
    h.until("released", |w| w.peers[c].closed);
    assert!(h.elapsed() >= Duration::from_secs(30));
    assert!(h.elapsed() < Duration::from_secs(35), "{:?}", h.elapsed());
}

#[test]
fn websocket_sessions_share_the_memory_budget() {
    let mut h = Harness::new(LoopConfig {
        budget: Arc::new(MemoryBudget::new(1 << 20)),
        ..LoopConfig::default()
    });
    let a = upgrade(&mut h, "/ws/echo");
    let b = upgrade(&mut h, "/ws/echo");
    // a announces 800 KiB and sends part of it: the budget holds it for a.
    let frame = client_frame(0x2, &vec![1; 800 << 10]);
    h.send(a, &frame[..100_000]);
    h.turns(3);
    // b's 400 KiB no longer fit: b is refused with 1013, a is unaffected.
    h.send(b, &client_frame(0x2, &vec![2; 400 << 10]));
    h.until("b closed", |w| w.peers[b].output.starts_with(&[0x88]));
    assert_eq!(&h.output(b)[2..4], &1013u16.to_be_bytes());
    h.send(a, &frame[100_000..]);
    h.until("a echoed", |w| w.peers[a].output.len() > 800 << 10);
    assert_eq!(h.output(a)[0], 0x82);
}

#[test]
fn each_idle_connection_closes_at_its_own_deadline() {
    let mut h = Harness::with_limits(Limits {
        idle_timeout: Duration::from_secs(5),
        ..Limits::default()
    });
    let mut peers = Vec::new();
    for _ in 0..3 {
        let c = h.connect();
        h.send(c, HELLO);
        h.until("answered", |w| !w.peers[c].output.is_empty());
        peers.push((c, h.elapsed()));
        let next = h.elapsed() + Duration::from_secs(2);
        h.until("two seconds", |w| w.elapsed >= next);
    }
    for (c, answered) in peers {
        h.until("FIN", |w| w.peers[c].shut_write);
        let idle = h.peer(c, |p| p.shut_at.unwrap()) - answered;
        assert!(
            idle >= Duration::from_secs(5) && idle < Duration::from_secs(6),
            "connection {c} closed after {idle:?} idle"
        );
    }
}

/// The connection of `token` in the loop.
fn conn(h: &Harness, token: Token) -> &Conn {
    h.lp.conns
        .get(token)
        .and_then(|slot| slot.as_deref())
        .expect("a live connection")
}

#[test]
fn an_idle_websocket_session_holds_no_buffer_and_no_http_side() {
    let mut h = Harness::new(LoopConfig::default());
    let c = upgrade(&mut h, "/ws/echo");
    let payload = vec![9; 16 << 10];
    h.send(c, &client_frame(0x2, &payload));
    h.until("echoed", |w| w.peers[c].output.len() >= payload.len() + 4);
    h.turns(2);
    let idle = conn(&h, c);
    assert!(idle.http.is_none(), "the HTTP side is freed after the 101");
    assert!(
        !idle.inbuf.has_storage(),
        "the read buffer went back to the pool"
    );
    let session = idle.ws.as_ref().expect("a session");
    assert_eq!(session.codec.buffered(), 0, "the codec's buffers are freed");
    assert_eq!(idle.charged, 0);
    // The session goes on as before.
    h.world.borrow_mut().peers[c].output.clear();
    h.send(c, &client_frame(0x1, b"again"));
    h.until("echoed again", |w| w.peers[c].output == b"\x81\x05again");
}

#[test]
fn the_http_side_stays_until_the_101_is_written() {
    let mut h = Harness::new(LoopConfig::default());
    let c = h.connect();
    h.room(c, 0);
    let request = "GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
                   Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
                   Sec-WebSocket-Version: 13\r\n\r\n";
    let mut input = request.as_bytes().to_vec();
    input.extend(client_frame(0x1, b"early"));
    h.send(c, &input);
    h.turns(5);
    assert!(conn(&h, c).ws.is_some(), "the session runs");
    assert!(conn(&h, c).http.is_some(), "the 101 is still queued");
    h.room(c, usize::MAX);
    h.until("101 and echo", |w| {
        w.peers[c].output.ends_with(b"\x81\x05early")
    });
    let out = h.output(c);
    assert!(out.starts_with(b"HTTP/1.1 101"));
    assert_eq!(count(&out, b"\r\n\r\n"), 1);
    h.turns(1);
    assert!(conn(&h, c).http.is_none());
}
