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

//!
//! The parts: [`conn`] (one connection's state, its reads and writes), [`http`] (the exchange
//! with the application), [`websocket`] (a session after `101`), [`accept`] (back-off after a
//! failed accept), [`wake`] (wake-ups from other threads). The loop takes its clock from its
//! backend, so a test backend drives it on simulated time (`tests.rs`).

mod accept;
mod conn;
mod http;
#[cfg(test)]
mod tests;
mod timers;
mod wake;
mod websocket;

use std::io::{self, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use weft_app::App;
use weft_core::{DateCache, Limits, Now};

use crate::backend::{Backend, Readiness, Token};
use crate::budget::MemoryBudget;
use crate::buffer::ReadBuf;
use accept::AcceptState;
use conn::{earliest, BufferPool, Conn};
use timers::Timers;
use wake::WakeList;

/// How long a closing connection keeps discarding input after its FIN (so unread input does
/// not turn the close into a reset that destroys the response in flight).
const LINGER: Duration = Duration::from_secs(2);
/// How long a graceful shutdown waits for in-flight exchanges.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Longest single wait, so a shutdown request is noticed.
const MAX_WAIT: Duration = Duration::from_millis(500);
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

/// One event loop: a backend's connections, the application, and the loop's timers.
pub struct EventLoop<B: Backend, A: App> {
    backend: B,
    app: A,
    config: LoopConfig,
    /// Boxed: an idle connection costs its own size only, not a share of a doubled vector.
    conns: Vec<Option<Box<Conn>>>,
    live: usize,
    dates: DateCache,
    log: Vec<u8>,
    /// Every connection's deadline: `timers::Timers`.
    timers: Timers,
    wake: Arc<WakeList>,
    accept: AcceptState,
    /// Read buffers of waiting connections.
    buffers: BufferPool,
    /// Connections accepted over `max_connections` that are being refused (not counted
    /// against it: they only wait for their `503` to leave).
    refusing: usize,
    /// Set when a graceful shutdown began: in-flight exchanges may finish until then.
    shutdown_deadline: Option<Instant>,
    /// Reused lists of the ready and the woken connections.
    ready: Vec<Readiness>,
    woken: Vec<Token>,
}

impl<B: Backend, A: App> EventLoop<B, A> {
    pub fn new(backend: B, app: A, config: LoopConfig) -> Self {
        let wake = Arc::new(WakeList {
            tokens: Mutex::new(Vec::new()),
            interrupt: backend.waker(),
        });
        EventLoop {
            wake,
            backend,
            app,
            config,
            conns: Vec::new(),
            live: 0,
            dates: DateCache::new(),
            log: Vec::new(),
            timers: Timers::default(),
            accept: AcceptState::default(),
            buffers: BufferPool::default(),
            refusing: 0,
            shutdown_deadline: None,
            ready: Vec::new(),
            woken: Vec::new(),
        }
    }

    /// The time, from the backend's clock.
    fn now(&mut self) -> Now {
        Now {
            instant: self.backend.now(),
            date: self.dates.get(self.backend.wall_clock()),
        }
    }

    /// Runs until `shutdown` is set and the in-flight exchanges are finished.
    pub fn run(&mut self, shutdown: &AtomicBool) -> io::Result<()> {
        while !self.turn(shutdown)? {}
        Ok(())
    }

    /// One turn of the loop: wait (bounded by the next timer), accept, serve what is ready and
    /// what was woken, run the timers that passed, write the log. Returns true once a
    /// shutdown is complete.
    pub fn turn(&mut self, shutdown: &AtomicBool) -> io::Result<bool> {
        if shutdown.load(Ordering::Relaxed) && self.shutdown_deadline.is_none() {
            self.shutdown_deadline = self.backend.now().checked_add(SHUTDOWN_GRACE);
            self.begin_shutdown();
        }
        let stopping = shutdown.load(Ordering::Relaxed);
        if stopping {
            if self.live == 0 {
                return Ok(true);
            }
            if self
                .shutdown_deadline
                .is_none_or(|deadline| self.backend.now() >= deadline)
            {
                for token in 0..self.conns.len() {
                    self.close(token);
                }
                return Ok(true);
            }
        }
        let timeout = if self.wake.is_empty() {
            earliest(self.timers.next(), self.accept.paused_until)
                .map(|t| t.saturating_duration_since(self.backend.now()))
                .map_or(MAX_WAIT, |t| t.min(MAX_WAIT))
        } else {
            Duration::ZERO
        };
        let accepting = !stopping && self.accept.may_accept(self.backend.now());
        self.ready.clear();
        let acceptable = self
            .backend
            .wait(Some(timeout), accepting, &mut self.ready)?;
        let ready = std::mem::take(&mut self.ready);
        let now = self.now();
        if self.accept.paused_until.is_some_and(|t| now.instant >= t) {
            self.accept.paused_until = None;
            self.accept.retry = true;
        }
        if !stopping && (acceptable || self.accept.retry) && self.accept.may_accept(now.instant) {
            self.accept.retry = false;
            self.accept_all(now);
        }
        for r in ready.iter() {
            if let Some(Some(conn)) = self.conns.get_mut(r.token) {
                conn.io.readable |= r.readable;
                conn.io.writable |= r.writable;
                conn.io.read_closed |= r.read_closed;
                self.process(r.token, now);
            }
        }
        self.ready = ready;
        let mut woken = std::mem::take(&mut self.woken);
        self.wake.take(&mut woken);
        for token in woken.drain(..) {
            if let Some(Some(conn)) = self.conns.get_mut(token) {
                if let Some(session) = conn.ws.as_mut() {
                    session.poll_due = true;
                    self.process(token, now);
                }
            }
        }
        self.woken = woken;
        self.run_timers(now);
        self.flush_log();
        Ok(false)
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
                    if refused {
                        self.refusing += 1;
                    }
                    let conn = Conn::new(self.config.limits.clone(), peer, now, refused);
                    if let Some(slot) = self.conns.get_mut(token) {
                        *slot = Some(Box::new(conn));
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
                if let Some(http) = conn.http.as_mut() {
                    http.proto.close_after_exchange();
                }
                if let Some(session) = conn.ws.as_mut() {
                    session
                        .codec
                        .close(1001, "server shutting down", now.instant);
                }
                self.process(token, now);
            }
        }
    }

    /// Serves every connection whose deadline passed by `now`.
    fn run_timers(&mut self, now: Now) {
        while let Some((time, token)) = self.timers.pop_due(now.instant) {
            let Some(Some(conn)) = self.conns.get_mut(token) else {
                continue;
            };
            if conn.scheduled == Some(time) {
                conn.scheduled = None;
            }
            if conn.deadline().is_none_or(|t| now.instant < t) {
                // A stale entry: the connection's deadline moved; file it again.
                let deadline = conn.deadline();
                self.timers.schedule(token, &mut conn.scheduled, deadline);
                continue;
            }
            self.fire(token, now);
        }
    }

    /// Applies the deadlines of one connection that passed by `now`.
    fn fire(&mut self, token: Token, now: Now) {
        let Some(Some(conn)) = self.conns.get_mut(token) else {
            return;
        };
        if conn.linger_until.is_some_and(|t| now.instant >= t) {
            self.close(token);
            return;
        }
        if let Some(http) = conn.http.as_mut() {
            if http.wake_at.is_some_and(|t| now.instant >= t) {
                http.wake_at = None;
            }
        }
        if !conn.transmit().is_empty() {
            // Before a send timeout is judged: the socket may have room although no
            // readiness said so (epoll reports room only past a threshold, so a slow but
            // steady reader can go long without an edge): try to write first.
            conn.io.writable = true;
            self.process(token, now);
        }
        let Some(Some(conn)) = self.conns.get_mut(token) else {
            return;
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
            timers,
            wake,
            buffers,
            ..
        } = self;
        let limits = &config.limits;
        let Some(Some(conn)) = conns.get_mut(token) else {
            return true;
        };
        loop {
            let mut progressed = false;
            if conn.linger_until.is_none() {
                progressed |= run_protocol(app, conn, token, wake, &config.budget, now, log);
            }
            match conn.write_step(backend, token, now.instant) {
                Ok(wrote) => progressed |= wrote,
                Err(()) => return false,
            }
            match conn.read_step(backend, token, limits, buffers) {
                Ok(read) => progressed |= read,
                Err(()) => return false,
            }
            if !progressed {
                break;
            }
        }
        if conn.is_closed() && conn.transmit().is_empty() {
            if conn.io.eof || conn.abandoned || conn.linger_until.is_some_and(|t| now.instant >= t)
            {
                if conn.abandoned {
                    backend.shutdown_write(token);
                }
                return false;
            }
            if conn.linger_until.is_none() {
                backend.shutdown_write(token);
                conn.linger_until = now.instant.checked_add(LINGER);
                if let Some(http) = conn.http.as_mut() {
                    http.responder = None;
                }
                conn.ws = None;
                conn.inbuf = ReadBuf::new();
            }
        } else if conn.http.as_ref().is_none_or(|h| !h.in_exchange) {
            // Waiting for the next request or message: the read buffer goes back to the pool,
            // the other buffers to the allocator (a session's HTTP side altogether, once the
            // `101` is written).
            buffers.reclaim(&mut conn.inbuf);
            conn.drop_finished_http();
            if conn.transmit().is_empty() {
                if let Some(http) = conn.http.as_mut() {
                    http.proto.release_memory();
                    http.exchange.release_memory();
                }
                if let Some(session) = conn.ws.as_mut().filter(|_| conn.inbuf.is_empty()) {
                    // A session between messages: its receive and transmit buffers too.
                    session.codec.release_memory();
                }
            }
        }
        let charge = conn.ws.as_ref().map_or(0, |s| s.codec.buffered());
        config.budget.recharge(conn.charged, charge);
        conn.charged = charge;
        let wants_write = !conn.transmit().is_empty();
        backend.set_interest(token, conn.wants_read(limits), wants_write);
        let deadline = conn.deadline();
        timers.schedule(token, &mut conn.scheduled, deadline);
        true
    }

    fn flush_log(&mut self) {
        if !self.log.is_empty() {
            let _ = io::stderr().write_all(&self.log);
            self.log.clear();
        }
    }
}

/// One protocol step of a connection: the HTTP side (requests to the application, bodies
/// produced) until an upgrade starts the WebSocket session, then the session. Returns whether
/// anything happened.
#[allow(clippy::too_many_arguments)]
fn run_protocol<A: App>(
    app: &A,
    conn: &mut Conn,
    token: Token,
    wake: &Arc<WakeList>,
    budget: &MemoryBudget,
    now: Now,
    log: &mut Vec<u8>,
) -> bool {
    let mut progressed = false;
    if conn.ws.is_none() {
        progressed |= http::pump(app, conn, now, log);
        if conn.ws.is_none() && conn.http.as_ref().is_some_and(|h| h.proto.is_upgraded()) {
            websocket::start_session(conn, token, wake, now, log);
        }
        progressed |= http::produce(app, conn, now, log);
    }
    if let Some(session) = conn.ws.as_mut() {
        session
            .codec
            .set_message_budget(budget.share_of(conn.charged));
        progressed |= websocket::ws_pump(conn, now, log);
        progressed |= websocket::ws_produce(conn, now, log);
    }
    progressed
}
