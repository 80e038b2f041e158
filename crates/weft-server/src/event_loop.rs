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
use std::time::{Duration, Instant, SystemTime};

use weft_core::{Connection, DateCache, Event, Limits, Now};

use crate::backend::{Backend, ReadOutcome, Token};
use crate::buffer::ReadBuf;
use weft_app::{App, Completed, Exchange, Output, Produce, Responder, WRITE_HIGH_WATER};

/// Bytes requested from the socket per read.
const READ_CHUNK: usize = 16 * 1024;
/// How long a closing connection keeps discarding input after its FIN (so unread input does
/// not turn the close into a reset that destroys the response in flight).
const LINGER: Duration = Duration::from_secs(2);
/// How long a graceful shutdown waits for in-flight exchanges.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// Longest single wait, so a shutdown request is noticed.
const MAX_WAIT: Duration = Duration::from_millis(500);

/// Options of one loop. (The access log is the application's: a middleware writing to the
/// loop's log sink, which is flushed to stderr once per loop turn.)
#[derive(Clone, Debug)]
pub struct LoopConfig {
    pub limits: Limits,
}

struct Conn {
    proto: Connection,
    inbuf: ReadBuf,
    peer: SocketAddr,
    responder: Option<Box<dyn Responder>>,
    /// A responder timer.
    wake_at: Option<Instant>,
    /// The responder waits for request body bytes.
    waiting_body: bool,
    readable: bool,
    writable: bool,
    eof: bool,
    /// FIN sent; discarding input until the peer closes or the linger time ends.
    linger_until: Option<Instant>,
    in_exchange: bool,
    /// Statistics, extra response fields and request line of the current exchange.
    exchange: Exchange,
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
        earliest(d, self.linger_until)
    }

    fn wants_read(&self, limits: &Limits) -> bool {
        if self.eof {
            return false;
        }
        if self.linger_until.is_some() {
            return true;
        }
        !self.proto.is_closed()
            && self.inbuf.len() < limits.max_buffered
            && self.proto.transmit().len() < WRITE_HIGH_WATER
    }
}

impl<B: Backend, A: App> EventLoop<B, A> {
    pub fn new(backend: B, app: A, config: LoopConfig) -> Self {
        EventLoop {
            backend,
            app,
            config,
            conns: Vec::new(),
            live: 0,
            dates: DateCache::new(),
            log: Vec::new(),
            next_timer: None,
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
            let timeout = self
                .next_timer
                .map(|t| t.saturating_duration_since(Instant::now()))
                .map_or(MAX_WAIT, |t| t.min(MAX_WAIT));
            ready.clear();
            let acceptable = self.backend.wait(Some(timeout), &mut ready)?;
            let now = self.now();
            if acceptable && shutdown_deadline.is_none() {
                self.accept_all(now);
            }
            for r in ready.iter() {
                if let Some(Some(conn)) = self.conns.get_mut(r.token) {
                    conn.readable |= r.readable;
                    conn.writable |= r.writable;
                    self.process(r.token, now);
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
            match self.backend.accept() {
                Ok(Some((token, peer))) => {
                    if self.conns.len() <= token {
                        self.conns.resize_with(token + 1, || None);
                    }
                    let conn = Conn {
                        proto: Connection::new(self.config.limits.clone(), now.instant),
                        inbuf: ReadBuf::new(),
                        peer,
                        responder: None,
                        wake_at: None,
                        waiting_body: false,
                        readable: true,
                        writable: true,
                        eof: false,
                        linger_until: None,
                        in_exchange: false,
                        exchange: Exchange::new(now.instant),
                    };
                    if let Some(slot) = self.conns.get_mut(token) {
                        *slot = Some(conn);
                        self.live += 1;
                    }
                    self.process(token, now);
                }
                Ok(None) => return,
                Err(e) => {
                    // Out of descriptors or a transient error: try again on the next wake.
                    let _ = writeln!(self.log, "weft: accept failed: {e}");
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
            if conn.proto.poll_timeout().is_some_and(|t| now.instant >= t) {
                conn.proto.handle_timeout(now);
            }
            self.process(token, now);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(slot) = self.conns.get_mut(token) {
            if slot.take().is_some() {
                self.backend.close(token);
                self.live -= 1;
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
            ..
        } = self;
        let limits = &config.limits;
        let Some(Some(conn)) = conns.get_mut(token) else {
            return true;
        };
        loop {
            let mut progressed = false;
            if conn.linger_until.is_none() {
                progressed |= pump(app, conn, now, log);
                progressed |= produce(app, conn, now, log);
            }
            if conn.writable && !conn.proto.transmit().is_empty() {
                match backend.write(token, conn.proto.transmit()) {
                    Ok(0) => conn.writable = false,
                    Ok(n) => {
                        conn.proto.advance_transmit(n, now.instant);
                        progressed = true;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => conn.writable = false,
                    Err(_) => return false,
                }
            }
            if conn.readable && conn.wants_read(limits) {
                let spare = conn.inbuf.spare(READ_CHUNK);
                match backend.read(token, spare) {
                    Ok(ReadOutcome::Data(n)) => {
                        conn.inbuf.filled(n);
                        if conn.linger_until.is_some() {
                            let len = conn.inbuf.len();
                            conn.inbuf.consume(len);
                        }
                        progressed = true;
                    }
                    Ok(ReadOutcome::Eof) => {
                        conn.eof = true;
                        conn.proto.receive_eof();
                        progressed = true;
                    }
                    Ok(ReadOutcome::WouldBlock) => conn.readable = false,
                    Err(_) => return false,
                }
            }
            if !progressed {
                break;
            }
        }
        if conn.proto.is_closed() && conn.proto.transmit().is_empty() {
            if conn.eof || conn.linger_until.is_some_and(|t| now.instant >= t) {
                return false;
            }
            if conn.linger_until.is_none() {
                backend.shutdown_write(token);
                conn.linger_until = Some(now.instant + LINGER);
                conn.responder = None;
                conn.inbuf = ReadBuf::new();
            }
        } else if !conn.in_exchange {
            conn.inbuf.shrink_if_idle(READ_CHUNK);
        }
        let wants_write = !conn.proto.transmit().is_empty();
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
