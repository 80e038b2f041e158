//! The event loop: one shape for every backend. Accept until would-block; read into the
//! protocol core; run the application; write with backpressure; apply deadlines.
//!
//! Backpressure: a connection is read only while its transmit buffer is under
//! [`WRITE_HIGH_WATER`] and its unparsed input under `Limits::max_buffered`; a streamed body
//! is produced only while the transmit buffer has room; a request body is pulled from the
//! core only while the responder wants it and the output is not behind. Everything else waits
//! in the kernel's socket buffers (TCP flow control), never in an unbounded queue.
//!
//! Coalescing: all responses produced from one read (pipelining) are queued in the core's
//! transmit buffer and written with one call.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use weft_core::ws::{WebSocket, WsEvent};
use weft_core::{Connection, DateCache, Event, Limits, Now};

use crate::backend::{Backend, ReadOutcome, Token, WakeFn};
use crate::budget::MemoryBudget;
use crate::buffer::ReadBuf;
use weft_app::{
    App, Completed, Exchange, Message, Notifier, Output, Produce, Responder, Wake,
    WebSocketHandler, WsOutput, WRITE_HIGH_WATER,
};

/// Bytes requested from the socket per read, at first and again after small reads.
const READ_CHUNK: usize = 16 * 1024;
/// The most a read asks for after full reads (large WebSocket messages, uploads).
const MAX_READ_CHUNK: usize = 64 * 1024;
/// How long a closing connection keeps discarding input after its FIN (so unread input does
/// not turn the close into a reset that destroys the response in flight).
const LINGER: Duration = Duration::from_secs(2);
/// How long a graceful shutdown waits for in-flight exchanges.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Longest single wait, so a shutdown request is noticed.
const MAX_WAIT: Duration = Duration::from_millis(500);
/// After a failed accept (out of descriptors, most often), accepting pauses this long: the
/// connections waiting in the listen queue are taken when descriptors come back, without a
/// new arrival to wake the loop and without spinning meanwhile.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);
/// Accept failures are logged at most once per this period, as a count.
const ACCEPT_LOG_PERIOD: Duration = Duration::from_secs(1);
/// Connections over `max_connections` are still accepted, answered `503` and closed, up to
/// this many at a time; past that the loop stops accepting until one closes (the listen queue
/// holds the rest, as nginx does when out of `worker_connections`).
const MAX_REFUSING: usize = 64;

/// Options of one loop. (The access log is the application's: a middleware writing to the
/// loop's log sink, which is flushed to stderr once per loop turn.)
#[derive(Clone, Debug)]
pub struct LoopConfig {
    pub limits: Limits,
    /// Connections this loop serves at once; newcomers past it get `503` and are closed.
    pub max_connections: usize,
    /// The memory budget all loops share (WebSocket message and output buffers).
    pub budget: Arc<MemoryBudget>,
}

impl Default for LoopConfig {
    fn default() -> LoopConfig {
        LoopConfig {
            limits: Limits::default(),
            max_connections: DEFAULT_MAX_CONNECTIONS,
            budget: Arc::default(),
        }
    }
}

/// Connections per loop (per worker) unless `--max-connections` says otherwise.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;

/// A WebSocket session: the core's codec and the application's handler.
struct WsSession {
    codec: WebSocket,
    handler: Box<dyn WebSocketHandler>,
    /// The handler's `poll` is due (a notification came, or it had more than the output
    /// could take).
    poll_due: bool,
    /// The codec failed (its Close is queued): close once it is written.
    failed: bool,
}

/// The connections other threads (or handlers of this loop) asked to wake, and how to
/// interrupt this loop's wait when the first one arrives.
struct WakeList {
    tokens: Mutex<Vec<Token>>,
    interrupt: Option<WakeFn>,
}

impl Wake for WakeList {
    fn wake(&self, token: usize) {
        let first = {
            let mut tokens = self.tokens();
            tokens.push(token);
            tokens.len() == 1
        };
        if first {
            if let Some(interrupt) = self.interrupt.as_ref() {
                interrupt();
            }
        }
    }
}

impl WakeList {
    /// The list, also after a thread panicked holding it (pushing and draining tokens leaves
    /// it consistent at every step).
    fn tokens(&self) -> std::sync::MutexGuard<'_, Vec<Token>> {
        self.tokens.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn take(&self, into: &mut Vec<Token>) {
        into.append(&mut self.tokens());
    }

    fn is_empty(&self) -> bool {
        self.tokens().is_empty()
    }
}

struct Conn {
    proto: Connection,
    /// After a `101`: the WebSocket session that owns the connection.
    ws: Option<WsSession>,
    inbuf: ReadBuf,
    peer: SocketAddr,
    responder: Option<Box<dyn Responder>>,
    /// A responder timer.
    wake_at: Option<Instant>,
    /// The responder waits for request body bytes.
    waiting_body: bool,
    readable: bool,
    writable: bool,
    /// The backend saw the peer's FIN: reads continue past short ones until EOF is read.
    read_closed: bool,
    /// Bytes the next read asks for: doubled after a read that filled it, back towards
    /// `READ_CHUNK` after small ones; an idle buffer larger than this is freed.
    read_chunk: usize,
    /// Bytes read since the socket was last found empty.
    burst: usize,
    eof: bool,
    /// FIN sent; discarding input until the peer closes or the linger time ends.
    linger_until: Option<Instant>,
    in_exchange: bool,
    /// Statistics, extra response fields and request line of the current exchange.
    exchange: Exchange,
    /// Bytes charged to the memory budget for this connection's WebSocket buffers.
    charged: usize,
    /// Accepted over `max_connections`: answered `503` and closed.
    refused: bool,
    /// Its output was dropped by a send timeout: close without lingering.
    abandoned: bool,
}

pub struct EventLoop<B: Backend, A: App> {
    backend: B,
    app: A,
    config: LoopConfig,
    conns: Vec<Option<Conn>>,
    live: usize,
    dates: DateCache,
    log: Vec<u8>,
    next_timer: Option<Instant>,
    wake: Arc<WakeList>,
    /// A WebSocket message copied out of its codec for the handler (reused).
    message: MessageBuf,
    accept: AcceptState,
    /// Connections accepted over `max_connections` that are being refused (not counted
    /// against it: they only wait for their `503` to leave).
    refusing: usize,
}

/// Whether the loop may accept now, and the record of failed accepts.
#[derive(Default)]
struct AcceptState {
    /// Accepting pauses until then after a failure.
    paused_until: Option<Instant>,
    /// Accepting stopped: the loop is full (connections and refusals).
    full: bool,
    /// Accept without waiting for the listener's readiness (an edge may have passed while
    /// the loop was not accepting).
    retry: bool,
    /// Failures since the last log line, and when the next line may be written.
    failures: u32,
    log_after: Option<Instant>,
}

impl AcceptState {
    fn may_accept(&self, now: Instant) -> bool {
        !self.full && self.paused_until.is_none_or(|t| now >= t)
    }

    /// A failed accept: pause, and log a summary at most once per period.
    fn failed(&mut self, err: &io::Error, now: Instant, log: &mut Vec<u8>) {
        self.paused_until = now.checked_add(ACCEPT_BACKOFF);
        self.failures = self.failures.saturating_add(1);
        if self.log_after.is_none_or(|t| now >= t) {
            let _ = writeln!(
                log,
                "weft: accept failed {} time(s) in the last second: {err} (retrying every {} ms)",
                self.failures,
                ACCEPT_BACKOFF.as_millis()
            );
            self.failures = 0;
            self.log_after = now.checked_add(ACCEPT_LOG_PERIOD);
        }
    }
}

/// What one codec event asks of [`ws_pump`].
enum WsStep {
    /// A text message, copied to [`MessageBuf::text`].
    Text,
    /// A binary message, copied to [`MessageBuf::binary`].
    Binary,
    /// A control frame the codec answered itself.
    Control,
    /// No more input to process now, or the session ended.
    Stop,
}

/// Memory for one incoming WebSocket message while its handler runs.
#[derive(Default)]
struct MessageBuf {
    text: String,
    binary: Vec<u8>,
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Conn {
    fn deadline(&self) -> Option<Instant> {
        let d = earliest(self.proto.poll_timeout(), self.wake_at);
        let d = earliest(d, self.ws.as_ref().and_then(|s| s.codec.poll_timeout()));
        earliest(d, self.linger_until)
    }

    /// Applies the deadlines of the protocol core and the WebSocket codec that passed by `now`.
    fn expire(&mut self, now: Now) {
        if self.proto.poll_timeout().is_some_and(|t| now.instant >= t) {
            self.proto.handle_timeout(now);
        }
        if let Some(session) = self.ws.as_mut() {
            if session
                .codec
                .poll_timeout()
                .is_some_and(|t| now.instant >= t)
            {
                session.codec.handle_timeout(now.instant);
            }
        }
    }

    fn wants_read(&self, limits: &Limits) -> bool {
        if self.eof {
            return false;
        }
        if self.linger_until.is_some() {
            return true;
        }
        !self.is_closed()
            && self.inbuf.len() < limits.max_buffered
            && self.transmit().len() < WRITE_HIGH_WATER
    }

    /// Nothing more will be read or produced: close once the output is written.
    fn is_closed(&self) -> bool {
        match self.ws.as_ref() {
            Some(session) => session.failed || session.codec.is_closed(),
            None => self.proto.is_closed(),
        }
    }

    /// The bytes to write next: the HTTP side's (ending with the `101`), then the session's.
    fn transmit(&self) -> &[u8] {
        match self.ws.as_ref() {
            Some(session) if self.proto.transmit().is_empty() => session.codec.transmit(),
            _ => self.proto.transmit(),
        }
    }

    fn advance_transmit(&mut self, n: usize, now: Instant) {
        match self.ws.as_mut() {
            Some(session) if self.proto.transmit().is_empty() => {
                session.codec.advance_transmit(n, now)
            }
            _ => self.proto.advance_transmit(n, now),
        }
    }
}

impl<B: Backend, A: App> EventLoop<B, A> {
    pub fn new(backend: B, app: A, config: LoopConfig) -> Self {
        let wake = Arc::new(WakeList {
            tokens: Mutex::new(Vec::new()),
            interrupt: backend.waker(),
        });
        EventLoop {
            wake,
            message: MessageBuf::default(),
            backend,
            app,
            config,
            conns: Vec::new(),
            live: 0,
            dates: DateCache::new(),
            log: Vec::new(),
            next_timer: None,
            accept: AcceptState::default(),
            refusing: 0,
        }
    }

    fn now(&mut self) -> Now {
        Now {
            instant: Instant::now(),
            date: self.dates.get(SystemTime::now()),
        }
    }

    /// Runs until `shutdown` is set and the in-flight exchanges are finished.
    pub fn run(&mut self, shutdown: &AtomicBool) -> io::Result<()> {
        let mut ready = Vec::new();
        let mut woken = Vec::new();
        let mut shutdown_deadline: Option<Instant> = None;
        loop {
            if shutdown.load(Ordering::Relaxed) && shutdown_deadline.is_none() {
                shutdown_deadline = Some(Instant::now() + SHUTDOWN_GRACE);
                self.begin_shutdown();
            }
            if let Some(deadline) = shutdown_deadline {
                if self.live == 0 {
                    return Ok(());
                }
                if Instant::now() >= deadline {
                    for token in 0..self.conns.len() {
                        self.close(token);
                    }
                    return Ok(());
                }
            }
            let timeout = if self.wake.is_empty() {
                earliest(self.next_timer, self.accept.paused_until)
                    .map(|t| t.saturating_duration_since(Instant::now()))
                    .map_or(MAX_WAIT, |t| t.min(MAX_WAIT))
            } else {
                Duration::ZERO
            };
            let accepting = shutdown_deadline.is_none() && self.accept.may_accept(Instant::now());
            ready.clear();
            let acceptable = self.backend.wait(Some(timeout), accepting, &mut ready)?;
            let now = self.now();
            if self.accept.paused_until.is_some_and(|t| now.instant >= t) {
                self.accept.paused_until = None;
                self.accept.retry = true;
            }
            if shutdown_deadline.is_none()
                && (acceptable || self.accept.retry)
                && self.accept.may_accept(now.instant)
            {
                self.accept.retry = false;
                self.accept_all(now);
            }
            for r in ready.iter() {
                if let Some(Some(conn)) = self.conns.get_mut(r.token) {
                    conn.readable |= r.readable;
                    conn.writable |= r.writable;
                    conn.read_closed |= r.read_closed;
                    self.process(r.token, now);
                }
            }
            self.wake.take(&mut woken);
            for token in woken.drain(..) {
                if let Some(Some(conn)) = self.conns.get_mut(token) {
                    if let Some(session) = conn.ws.as_mut() {
                        session.poll_due = true;
                        self.process(token, now);
                    }
                }
            }
            if self.next_timer.is_some_and(|t| now.instant >= t) {
                self.run_timers(now);
            }
            self.flush_log();
        }
    }

    fn accept_all(&mut self, now: Now) {
        loop {
            if self.refusing >= MAX_REFUSING {
                self.accept.full = true;
                return;
            }
            match self.backend.accept() {
                Ok(Some((token, peer))) => {
                    if self.conns.len() <= token {
                        self.conns.resize_with(token + 1, || None);
                    }
                    let serving = self.live - self.refusing + self.backend.parked();
                    let refused = serving >= self.config.max_connections;
                    let mut proto = Connection::new(self.config.limits.clone(), now.instant);
                    if refused {
                        proto.refuse(now);
                        self.refusing += 1;
                    }
                    let conn = Conn {
                        proto,
                        ws: None,
                        inbuf: ReadBuf::new(),
                        peer,
                        responder: None,
                        wake_at: None,
                        waiting_body: false,
                        readable: true,
                        writable: true,
                        read_closed: false,
                        read_chunk: READ_CHUNK,
                        burst: 0,
                        eof: false,
                        linger_until: None,
                        in_exchange: false,
                        exchange: Exchange::new(now.instant),
                        charged: 0,
                        refused,
                        abandoned: false,
                    };
                    if let Some(slot) = self.conns.get_mut(token) {
                        *slot = Some(conn);
                        self.live += 1;
                    }
                    self.process(token, now);
                }
                Ok(None) => return,
                // The peer gave up while queued: nothing to back off from.
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    // Out of descriptors (EMFILE/ENFILE) or memory: the queued connections
                    // stay queued; try again after a pause.
                    self.accept.failed(&e, now.instant, &mut self.log);
                    return;
                }
            }
        }
    }

    fn begin_shutdown(&mut self) {
        self.backend.stop_listening();
        let now = self.now();
        for token in 0..self.conns.len() {
            if let Some(Some(conn)) = self.conns.get_mut(token) {
                conn.proto.close_after_exchange();
                if let Some(session) = conn.ws.as_mut() {
                    session
                        .codec
                        .close(1001, "server shutting down", now.instant);
                }
                self.process(token, now);
            }
        }
    }

    fn run_timers(&mut self, now: Now) {
        self.next_timer = None;
        for token in 0..self.conns.len() {
            let Some(Some(conn)) = self.conns.get_mut(token) else {
                continue;
            };
            if conn.linger_until.is_some_and(|t| now.instant >= t) {
                self.close(token);
                continue;
            }
            if conn.wake_at.is_some_and(|t| now.instant >= t) {
                conn.wake_at = None;
            }
            if !conn.transmit().is_empty() && conn.deadline().is_some_and(|t| now.instant >= t) {
                // Before a send timeout is judged: the socket may have room although no
                // readiness said so (epoll reports room only past a threshold, so a slow but
                // steady reader can go long without an edge): try to write first.
                conn.writable = true;
                self.process(token, now);
            }
            let Some(Some(conn)) = self.conns.get_mut(token) else {
                continue;
            };
            let pending = !conn.transmit().is_empty();
            conn.expire(now);
            if pending && conn.transmit().is_empty() && conn.is_closed() {
                // A send timeout dropped the output: the peer is not reading, so there is
                // nothing to linger for (the kernel still delivers what it holds, then FIN).
                conn.abandoned = true;
            }
            self.process(token, now);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(slot) = self.conns.get_mut(token) {
            if let Some(conn) = slot.take() {
                self.backend.close(token);
                self.live -= 1;
                self.config.budget.recharge(conn.charged, 0);
                if conn.refused {
                    self.refusing -= 1;
                }
                if self.accept.full {
                    // Room again: the listen queue may hold connections whose readiness
                    // was reported while the loop was full.
                    self.accept.full = false;
                    self.accept.retry = true;
                }
            }
        }
    }

    /// Moves one connection forward as far as it can go without blocking.
    fn process(&mut self, token: Token, now: Now) {
        if !self.advance(token, now) {
            self.close(token);
        }
    }

    /// The body of [`EventLoop::process`]; returns false when the connection must be closed.
    fn advance(&mut self, token: Token, now: Now) -> bool {
        let EventLoop {
            backend,
            app,
            config,
            conns,
            log,
            next_timer,
            wake,
            message,
            ..
        } = self;
        let limits = &config.limits;
        let Some(Some(conn)) = conns.get_mut(token) else {
            return true;
        };
        loop {
            let mut progressed = false;
            if conn.linger_until.is_none() {
                if conn.ws.is_none() {
                    progressed |= pump(app, conn, now, log);
                    if conn.ws.is_none() && conn.proto.is_upgraded() {
                        start_session(conn, token, wake, now, log);
                    }
                    progressed |= produce(app, conn, now, log);
                }
                if let Some(session) = conn.ws.as_mut() {
                    session
                        .codec
                        .set_message_budget(config.budget.share_of(conn.charged));
                    progressed |= ws_pump(conn, now, message, log);
                    progressed |= ws_produce(conn, now, log);
                }
            }
            if conn.writable && !conn.transmit().is_empty() {
                match backend.write(token, conn.transmit()) {
                    Ok(0) => conn.writable = false,
                    Ok(n) => {
                        conn.advance_transmit(n, now.instant);
                        progressed = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.writable = false,
                    Err(_) => return false,
                }
            }
            if conn.readable && conn.wants_read(limits) {
                let spare = conn.inbuf.spare(conn.read_chunk);
                let asked = spare.len();
                match backend.read(token, spare) {
                    Ok(ReadOutcome::Data(n)) => {
                        conn.inbuf.filled(n);
                        conn.burst += n;
                        if n < asked {
                            // A short read emptied the socket's receive queue: both backends
                            // report the next arrival (epoll's edge, a WASI poll), so the read
                            // that would only say WouldBlock is skipped. Not when the FIN is
                            // already queued: its edge has been reported and will not come
                            // again, so the next read must find it.
                            conn.readable = conn.read_closed;
                            if conn.burst < conn.read_chunk / 4 {
                                conn.read_chunk = (conn.read_chunk / 2).max(READ_CHUNK);
                            }
                            conn.burst = 0;
                        } else {
                            conn.read_chunk = (conn.read_chunk * 2).min(MAX_READ_CHUNK);
                        }
                        if conn.linger_until.is_some() {
                            let len = conn.inbuf.len();
                            conn.inbuf.consume(len);
                        }
                        progressed = true;
                    }
                    Ok(ReadOutcome::Eof) => {
                        conn.eof = true;
                        conn.proto.receive_eof();
                        if let Some(session) = conn.ws.as_mut() {
                            session.codec.receive_eof();
                        }
                        progressed = true;
                    }
                    Ok(ReadOutcome::WouldBlock) => {
                        conn.readable = false;
                        conn.burst = 0;
                    }
                    Err(_) => return false,
                }
            }
            if !progressed {
                break;
            }
        }
        if conn.is_closed() && conn.transmit().is_empty() {
            if conn.eof || conn.abandoned || conn.linger_until.is_some_and(|t| now.instant >= t) {
                if conn.abandoned {
                    backend.shutdown_write(token);
                }
                return false;
            }
            if conn.linger_until.is_none() {
                backend.shutdown_write(token);
                conn.linger_until = Some(now.instant + LINGER);
                conn.responder = None;
                conn.ws = None;
                conn.inbuf = ReadBuf::new();
            }
        } else if !conn.in_exchange {
            conn.inbuf.shrink_if_idle(conn.read_chunk);
        }
        let charge = conn.ws.as_ref().map_or(0, |s| s.codec.buffered());
        config.budget.recharge(conn.charged, charge);
        conn.charged = charge;
        let wants_write = !conn.transmit().is_empty();
        backend.set_interest(token, conn.wants_read(limits), wants_write);
        *next_timer = earliest(*next_timer, conn.deadline());
        true
    }

    fn flush_log(&mut self) {
        if !self.log.is_empty() {
            let _ = io::stderr().write_all(&self.log);
            self.log.clear();
        }
    }
}

/// Feeds buffered input to the protocol core and dispatches its events. Returns whether
/// anything happened.
fn pump<A: App>(app: &A, conn: &mut Conn, now: Now, log: &mut Vec<u8>) -> bool {
    let mut progressed = false;
    loop {
        if conn.proto.error().is_some() {
            // Already answered (sticky error): nothing more to read.
            return progressed;
        }
        if conn.proto.is_reading_body() {
            let wanted = conn.responder.as_ref().is_some_and(|r| r.wants_body());
            if !wanted || conn.proto.transmit().len() >= WRITE_HIGH_WATER {
                break;
            }
        }
        let result = conn.proto.next_event(conn.inbuf.data(), now);
        let (event, consumed) = match result {
            Ok(step) => step,
            Err(err) => {
                if !conn.in_exchange {
                    // Rejected before a request head was formed: an exchange without a
                    // request line.
                    conn.exchange.begin(now.instant);
                }
                conn.exchange.stats.status = err.status();
                conn.responder = None;
                conn.in_exchange = true;
                finish_exchange(app, conn, now, log);
                return true;
            }
        };
        let stop = match event {
            Event::Request(head) => {
                conn.in_exchange = true;
                conn.waiting_body = false;
                conn.wake_at = None;
                // Only the exchange's memory is reused: everything in it starts afresh.
                conn.exchange.begin(now.instant);
                let mut out = Output::for_exchange(&mut conn.proto, now, &mut conn.exchange);
                match app.start(&head, &mut out) {
                    Ok(responder) => conn.responder = responder,
                    Err(err) => app.failed(&err, &mut out, log),
                }
                false
            }
            Event::Data(data) => {
                conn.waiting_body = false;
                if let Some(r) = conn.responder.as_mut() {
                    let mut out = Output::for_exchange(&mut conn.proto, now, &mut conn.exchange);
                    if let Err(err) = r.body_data(data, &mut out) {
                        app.failed(&err, &mut out, log);
                    }
                }
                false
            }
            Event::End(_) => {
                conn.waiting_body = false;
                if let Some(r) = conn.responder.as_mut() {
                    let mut out = Output::for_exchange(&mut conn.proto, now, &mut conn.exchange);
                    if let Err(err) = r.body_end(&mut out) {
                        app.failed(&err, &mut out, log);
                    }
                }
                false
            }
            Event::NeedData | Event::Paused | Event::Closed | Event::Upgraded => true,
        };
        conn.inbuf.consume(consumed);
        if consumed > 0 {
            progressed = true;
        }
        finish_exchange(app, conn, now, log);
        if stop {
            return progressed;
        }
        progressed = true;
    }
    progressed
}

/// After the core reported the upgrade: starts the WebSocket session the exchange accepted,
/// or ends the connection when there is none (a `101` sent without a session to run).
fn start_session(conn: &mut Conn, token: Token, wake: &Arc<WakeList>, now: Now, log: &mut Vec<u8>) {
    let Some(pending) = conn.exchange.upgrade.take() else {
        conn.proto.abort();
        return;
    };
    let mut session = WsSession {
        codec: WebSocket::new(pending.config, now.instant),
        handler: pending.handler,
        poll_due: false,
        failed: false,
    };
    let wake: Arc<dyn Wake> = Arc::clone(wake) as Arc<dyn Wake>;
    let notify = Notifier::new(wake, token);
    let mut out = WsOutput::new(&mut session.codec, now.instant);
    if let Err(err) = session.handler.open(notify, &mut out) {
        handler_failed(&mut session, &err, now, log);
    }
    conn.ws = Some(session);
}

/// A WebSocket handler failed: the session ends with 1011 (internal error).
fn handler_failed(session: &mut WsSession, err: &weft_app::AppError, now: Now, log: &mut Vec<u8>) {
    let _ = writeln!(log, "weft: websocket handler failed: {err}");
    session.codec.close(1011, "internal error", now.instant);
}

/// Feeds buffered input to the WebSocket codec and hands complete messages to the handler,
/// while the output keeps up (an echo's answers cannot pile up).
fn ws_pump(conn: &mut Conn, now: Now, message: &mut MessageBuf, log: &mut Vec<u8>) -> bool {
    let Some(session) = conn.ws.as_mut() else {
        return false;
    };
    let mut progressed = false;
    loop {
        if session.failed || session.codec.transmit().len() >= WRITE_HIGH_WATER {
            return progressed;
        }
        let (step, consumed) = match session.codec.next_event(conn.inbuf.data(), now.instant) {
            Ok((event, consumed)) => {
                let step = match event {
                    WsEvent::Text(text) => {
                        message.text.clear();
                        message.text.push_str(text);
                        WsStep::Text
                    }
                    WsEvent::Binary(data) => {
                        message.binary.clear();
                        message.binary.extend_from_slice(data);
                        WsStep::Binary
                    }
                    // Answered by the codec itself.
                    WsEvent::Ping(_) | WsEvent::Pong(_) | WsEvent::Close { .. } => WsStep::Control,
                    WsEvent::NeedData | WsEvent::Closed => WsStep::Stop,
                };
                (step, consumed)
            }
            Err(_) => {
                // The codec queued its Close with the error's code.
                session.failed = true;
                return true;
            }
        };
        conn.inbuf.consume(consumed);
        progressed |= consumed > 0;
        let msg = match step {
            WsStep::Stop => return progressed,
            WsStep::Control => {
                progressed = true;
                continue;
            }
            WsStep::Text => Message::Text(&message.text),
            WsStep::Binary => Message::Binary(&message.binary),
        };
        progressed = true;
        let mut out = WsOutput::new(&mut session.codec, now.instant);
        if let Err(err) = session.handler.message(msg, &mut out) {
            handler_failed(session, &err, now, log);
        }
        if message.binary.capacity() > 1 << 20 {
            message.binary = Vec::new();
        }
        if message.text.capacity() > 1 << 20 {
            message.text = String::new();
        }
    }
}

/// Runs the handler's `poll` when it is due and the output has room.
fn ws_produce(conn: &mut Conn, now: Now, log: &mut Vec<u8>) -> bool {
    let Some(session) = conn.ws.as_mut() else {
        return false;
    };
    if !session.poll_due
        || session.failed
        || session.codec.is_closing()
        || session.codec.transmit().len() >= WRITE_HIGH_WATER
    {
        return false;
    }
    session.poll_due = false;
    let before = session.codec.transmit().len();
    let mut out = WsOutput::new(&mut session.codec, now.instant);
    match session.handler.poll(&mut out) {
        Ok(more) => session.poll_due = more,
        Err(err) => handler_failed(session, &err, now, log),
    }
    session.codec.transmit().len() != before || session.codec.is_closing()
}

/// Runs the responder's producer while the socket can take more.
fn produce<A: App>(app: &A, conn: &mut Conn, now: Now, log: &mut Vec<u8>) -> bool {
    let mut progressed = false;
    while let Some(r) = conn.responder.as_mut() {
        if !conn.proto.is_sending_body()
            || conn.waiting_body
            || conn.wake_at.is_some_and(|t| now.instant < t)
            || conn.proto.transmit().len() >= WRITE_HIGH_WATER
        {
            break;
        }
        conn.wake_at = None;
        let mut out = Output::for_exchange(&mut conn.proto, now, &mut conn.exchange);
        match r.produce(&mut out) {
            Ok(Produce::More) => progressed = true,
            Ok(Produce::WaitUntil(t)) => {
                conn.wake_at = Some(t);
                break;
            }
            Ok(Produce::WaitForBody) => {
                conn.waiting_body = true;
                break;
            }
            Ok(Produce::Done) => progressed = true,
            Err(err) => {
                app.failed(&err, &mut out, log);
                progressed = true;
            }
        }
        finish_exchange(app, conn, now, log);
    }
    progressed
}

/// When the response of the current exchange is complete: tell the application (the access
/// log) and drop the responder.
fn finish_exchange<A: App>(app: &A, conn: &mut Conn, now: Now, log: &mut Vec<u8>) {
    if !conn.in_exchange || conn.proto.awaits_response() || conn.proto.is_sending_body() {
        return;
    }
    conn.in_exchange = false;
    conn.responder = None;
    conn.wake_at = None;
    conn.waiting_body = false;
    let done = Completed {
        peer: conn.peer,
        exchange: &conn.exchange,
        duration: now.instant.saturating_duration_since(conn.exchange.started),
    };
    app.complete(&done, log);
}
