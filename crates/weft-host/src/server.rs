//! The host's TCP loop: one thread, mio (edge-triggered), every connection driven through an
//! engine resource in the drain order of `wit/engine.wit`.
//!
//! A connection's turn: run the protocol (poll events, answer requests, produce bodies), write
//! what the engine transmits, read and feed; repeat while anything moved. Backpressure: input
//! is read only while the output is under [`HIGH_WATER`] and the engine takes it (`feed`
//! refuses past `max-buffered`); a request body is pulled only by a route that wants it and
//! while the output has room; a streamed body is produced only while the output has room.
//! Deadlines come from the engine (`poll-timeout`), the routes' timers (`/sheep`) and the
//! linger after a close.
//!
//! Any error from wasmtime is a trap of the instance: the host logs it, closes every
//! connection of that instance, drops the instance and goes on serving.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::fs::File;
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::rc::Rc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use wasmtime::component::ResourceAny;
use wasmtime::Result;

use crate::engine::http::{self, BodyKind, Event, Limits, Response};
use crate::engine::types::{BodyFraming, Method, Now};
use crate::engine::websocket::{HandshakeOptions, SessionConfig, WsEvent};
use crate::engine::{Instance, Runtime};
use crate::routes::{self, Answer, AppConfig, Body, Head, Sheep};

/// The connection resource's functions of an instance (borrowing only its bindings, so the
/// store can be borrowed mutably next to it).
macro_rules! http {
    ($inst:expr) => {
        $inst.bindings.weft_engine_http().server_connection()
    };
}
/// The session resource's functions of an instance.
macro_rules! ws {
    ($inst:expr) => {
        $inst.bindings.weft_engine_websocket().session()
    };
}

/// Output above this stops reading and producing (as weft's own loop).
pub const HIGH_WATER: u64 = 64 * 1024;
/// Bytes taken from the engine per `transmit` call and read from a socket at once.
const CHUNK: usize = 64 * 1024;
/// A file body is read this much at a time.
const FILE_CHUNK: usize = 16 * 1024;
/// How long a closed connection keeps discarding input after its FIN.
const LINGER: Duration = Duration::from_secs(2);
const LISTENER: Token = Token(usize::MAX);
const WAKER: Token = Token(usize::MAX - 1);

/// Everything the host is told at start.
#[derive(Clone, Debug)]
pub struct HostConfig {
    pub listen: SocketAddr,
    pub engine: std::path::PathBuf,
    pub app: AppConfig,
    /// Connections per engine instance: what one trap may cost.
    pub conns_per_instance: usize,
    /// Longest turn of calls into an instance before the watchdog interrupts it.
    pub call_limit: Duration,
    pub header_timeout: Option<Duration>,
    pub idle_timeout: Option<Duration>,
    pub body_timeout: Option<Duration>,
    pub send_timeout: Option<Duration>,
    pub ws_ping_interval: Option<Duration>,
    pub ws_ping_timeout: Option<Duration>,
}

impl Default for HostConfig {
    fn default() -> HostConfig {
        HostConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            engine: std::path::PathBuf::from("target/weft-engine.wasm"),
            app: AppConfig::default(),
            conns_per_instance: 256,
            call_limit: Duration::from_secs(1),
            header_timeout: None,
            idle_timeout: None,
            body_timeout: None,
            send_timeout: None,
            ws_ping_interval: None,
            ws_ping_timeout: None,
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// What went wrong in a turn.
enum Fault {
    /// wasmtime returned an error: the instance trapped.
    Trap(wasmtime::Error),
    /// The socket failed or the peer is gone: close this connection.
    Close,
}

impl From<wasmtime::Error> for Fault {
    fn from(e: wasmtime::Error) -> Fault {
        Fault::Trap(e)
    }
}

/// The engine side of a connection.
enum Proto {
    Http(ResourceAny),
    Ws(ResourceAny),
}

/// The route answering the current request, while it has more to do.
enum Responder {
    Echo {
        content_type: Vec<u8>,
        body: Body,
        head_sent: bool,
    },
    Sheep(Sheep),
    File {
        file: File,
        remaining: u64,
    },
    /// A `101` was sent; the session starts with this configuration (and joins this chat
    /// room).
    Upgrade(SessionConfig, Option<String>),
}

struct Conn {
    stream: TcpStream,
    /// Slot of its instance.
    inst: usize,
    proto: Option<Proto>,
    responder: Option<Responder>,
    /// A request body may still be arriving.
    body_open: bool,
    /// Input read but refused by `feed` (the engine is full): fed before more is read.
    unfed: Vec<u8>,
    readable: bool,
    writable: bool,
    /// EOF was read (and told to the engine).
    eof: bool,
    /// The engine will read no more: close once its output is written.
    closed: bool,
    /// The engine's output may hold bytes (unknown until asked).
    maybe_pending: bool,
    /// `poll-event` may have something new: cleared by `need-data`/`paused`, set by input,
    /// end of input, a timeout and the end of a response (each call costs: see BENCH).
    poll_ready: bool,
    linger_until: Option<u64>,
    /// A route's timer (the next `/sheep` line).
    wake_at: Option<u64>,
    scheduled: Option<u64>,
    /// A `/ws/chat` session's membership.
    chat: Option<Member>,
    /// Text messages this chat member sent, to broadcast after its turn.
    outbox: Vec<Rc<str>>,
}

/// A chat member: its room and its bounded mailbox (as weft's chat: 256 messages, 1 MiB; a
/// member that cannot keep up is closed with 1008 instead of growing memory).
struct Member {
    room: String,
    joined: bool,
    mailbox: VecDeque<Rc<str>>,
    bytes: usize,
    overflowed: bool,
}

/// The chat's message limit (weft's `CHAT_MAX_MESSAGE`).
const CHAT_MAX_MESSAGE: u64 = 64 * 1024;
const MAILBOX_MESSAGES: usize = 256;
const MAILBOX_BYTES: usize = 1024 * 1024;

/// Hands [`Server::interrupt`] requests to the loop thread.
#[derive(Clone)]
pub struct Handle {
    interrupts: Arc<Mutex<Vec<usize>>>,
    waker: Arc<Waker>,
    traps: Arc<Mutex<Vec<String>>>,
}

impl Handle {
    /// Interrupts the instance in slot `slot`: its next call traps (as the watchdog does to a
    /// call that runs too long). Used to prove that a trap costs only that instance.
    pub fn interrupt(&self, slot: usize) {
        if let Ok(mut list) = self.interrupts.lock() {
            list.push(slot);
        }
        let _ = self.waker.wake();
    }

    /// The traps so far (wasmtime's description of each), oldest first.
    pub fn traps(&self) -> Vec<String> {
        self.traps.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

pub struct Server {
    rt: Runtime,
    config: HostConfig,
    limits: Limits,
    ws_config: SessionConfig,
    poll: Poll,
    listener: TcpListener,
    conns: Vec<Option<Conn>>,
    free: Vec<usize>,
    instances: Vec<Option<Instance>>,
    instance_count: u64,
    timers: BTreeSet<(u64, usize)>,
    origin: std::time::Instant,
    buf: Vec<u8>,
    interrupts: Arc<Mutex<Vec<usize>>>,
    waker: Arc<Waker>,
    traps: Arc<Mutex<Vec<String>>>,
    /// Chat rooms: the members' tokens.
    rooms: HashMap<String, Vec<usize>>,
}

impl Server {
    /// Loads the engine, binds the listener.
    pub fn bind(config: HostConfig) -> Result<Server> {
        let rt = Runtime::load(&config.engine, config.call_limit)?;
        // The engine's defaults, then the host's settings.
        let mut probe = rt.instantiate(0)?;
        let mut limits = probe
            .bindings
            .weft_engine_http()
            .call_default_limits(&mut probe.store)?;
        let mut ws_config = probe
            .bindings
            .weft_engine_websocket()
            .call_default_session_config(&mut probe.store)?;
        drop(probe);
        let set = |field: &mut u64, value: Option<Duration>| {
            if let Some(v) = value {
                *field = nanos(v);
            }
        };
        set(&mut limits.header_timeout, config.header_timeout);
        set(&mut limits.idle_timeout, config.idle_timeout);
        set(&mut limits.body_timeout, config.body_timeout);
        set(&mut limits.send_timeout, config.send_timeout);
        set(&mut ws_config.send_timeout, config.send_timeout);
        set(&mut ws_config.ping_timeout, config.ws_ping_timeout);
        if let Some(p) = config.ws_ping_interval {
            ws_config.ping_interval = Some(nanos(p));
        }
        let poll = Poll::new()?;
        let mut listener = TcpListener::bind(config.listen)?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        Ok(Server {
            rt,
            config,
            limits,
            ws_config,
            poll,
            listener,
            conns: Vec::new(),
            free: Vec::new(),
            instances: Vec::new(),
            instance_count: 0,
            timers: BTreeSet::new(),
            origin: std::time::Instant::now(),
            buf: vec![0; CHUNK],
            interrupts: Arc::default(),
            waker,
            traps: Arc::default(),
            rooms: HashMap::new(),
        })
    }

    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    pub fn handle(&self) -> Handle {
        Handle {
            interrupts: Arc::clone(&self.interrupts),
            waker: Arc::clone(&self.waker),
            traps: Arc::clone(&self.traps),
        }
    }

    fn now(&self) -> Now {
        let unix_seconds = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        Now {
            instant: nanos(self.origin.elapsed()),
            unix_seconds,
        }
    }

    /// Serves forever.
    pub fn run(&mut self) -> Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            let timeout = self.timers.first().map(|&(at, _)| {
                let now = self.now().instant;
                Duration::from_nanos(at.saturating_sub(now))
            });
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == ErrorKind::Interrupted {
                    continue;
                }
                return Err(e.into());
            }
            // Interrupts first, wherever the waker is in the batch: an interrupt asked for
            // before some input arrived applies to that input.
            if events.iter().any(|ev| ev.token() == WAKER) {
                self.take_interrupts();
            }
            for ev in events.iter() {
                match ev.token() {
                    LISTENER => self.accept_all(),
                    WAKER => {}
                    Token(i) => {
                        if let Some(Some(c)) = self.conns.get_mut(i) {
                            c.readable |= ev.is_readable() || ev.is_read_closed() || ev.is_error();
                            c.writable |= ev.is_writable() || ev.is_write_closed();
                        }
                        self.process(i, false);
                    }
                }
            }
            self.run_timers();
        }
    }

    fn take_interrupts(&mut self) {
        let slots: Vec<usize> = match self.interrupts.lock() {
            Ok(mut list) => std::mem::take(&mut *list),
            Err(_) => return,
        };
        for slot in slots {
            if let Some(Some(inst)) = self.instances.get_mut(slot) {
                inst.interrupt();
            }
        }
    }

    fn run_timers(&mut self) {
        let now = self.now().instant;
        while let Some(&(at, token)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, token));
            if let Some(Some(c)) = self.conns.get_mut(token) {
                c.scheduled = None;
            }
            self.process(token, true);
        }
    }

    fn accept_all(&mut self) {
        loop {
            match self.listener.accept() {
                Ok((stream, _)) => {
                    if let Err(e) = self.open(stream) {
                        eprintln!("weft-host: cannot serve a connection: {e:#}");
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => {
                    eprintln!("weft-host: accept failed: {e}");
                    return;
                }
            }
        }
    }

    /// The instance slot a new connection goes to: the first with room, else a new one.
    fn instance_for_new(&mut self) -> Result<usize> {
        let limit = self.config.conns_per_instance.max(1);
        if let Some(slot) = self
            .instances
            .iter()
            .position(|i| i.as_ref().is_some_and(|i| i.conns < limit))
        {
            return Ok(slot);
        }
        self.instance_count += 1;
        let inst = self.rt.instantiate(self.instance_count)?;
        let slot = match self.instances.iter().position(Option::is_none) {
            Some(slot) => slot,
            None => {
                self.instances.push(None);
                self.instances.len() - 1
            }
        };
        if let Some(place) = self.instances.get_mut(slot) {
            *place = Some(inst);
        }
        Ok(slot)
    }

    fn open(&mut self, mut stream: TcpStream) -> Result<()> {
        stream.set_nodelay(true)?;
        let slot = self.instance_for_new()?;
        let now = self.now();
        let token = match self.free.pop() {
            Some(t) => t,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        let Some(Some(inst)) = self.instances.get_mut(slot) else {
            wasmtime::bail!("no instance");
        };
        inst.start_turn();
        let res = match http!(inst).call_constructor(&mut inst.store, self.limits, now.instant) {
            Ok(r) => r,
            Err(e) => {
                self.free.push(token);
                self.trap(slot, e);
                return Ok(());
            }
        };
        inst.conns += 1;
        self.poll.registry().register(
            &mut stream,
            Token(token),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let conn = Conn {
            stream,
            inst: slot,
            proto: Some(Proto::Http(res)),
            responder: None,
            body_open: false,
            unfed: Vec::new(),
            readable: true,
            writable: true,
            eof: false,
            closed: false,
            maybe_pending: false,
            poll_ready: true,
            linger_until: None,
            wake_at: None,
            scheduled: None,
            chat: None,
            outbox: Vec::new(),
        };
        if let Some(place) = self.conns.get_mut(token) {
            *place = Some(conn);
        }
        self.process(token, false);
        Ok(())
    }

    /// Moves one connection as far as it goes, then the chat members its messages reached.
    fn process(&mut self, token: usize, timer: bool) {
        self.process_one(token, timer);
        let mut woken = self.deliver(token);
        while let Some(member) = woken.pop() {
            self.process_one(member, false);
            woken.extend(self.deliver(member));
        }
    }

    /// Joins a new chat member to its room, and broadcasts what a member sent: into every
    /// mailbox of the room. Returns the members to run.
    fn deliver(&mut self, token: usize) -> Vec<usize> {
        let Some(Some(conn)) = self.conns.get_mut(token) else {
            return Vec::new();
        };
        let Some(member) = conn.chat.as_mut() else {
            return Vec::new();
        };
        if !member.joined {
            member.joined = true;
            self.rooms
                .entry(member.room.clone())
                .or_default()
                .push(token);
        }
        if conn.outbox.is_empty() {
            return Vec::new();
        }
        let room = member.room.clone();
        let messages = std::mem::take(&mut conn.outbox);
        let members = self.rooms.get(&room).cloned().unwrap_or_default();
        for &m in &members {
            let Some(Some(Conn {
                chat: Some(box_), ..
            })) = self.conns.get_mut(m)
            else {
                continue;
            };
            for text in &messages {
                if box_.overflowed {
                    break;
                }
                if box_.mailbox.len() >= MAILBOX_MESSAGES || box_.bytes + text.len() > MAILBOX_BYTES
                {
                    box_.overflowed = true;
                    box_.mailbox.clear();
                    box_.bytes = 0;
                } else {
                    box_.bytes += text.len();
                    box_.mailbox.push_back(Rc::clone(text));
                }
            }
        }
        members
    }

    /// Moves one connection as far as it goes; closes it, or its whole instance on a trap.
    fn process_one(&mut self, token: usize, timer: bool) {
        let now = self.now();
        let Some(Some(conn)) = self.conns.get_mut(token) else {
            return;
        };
        let slot = conn.inst;
        let Some(Some(inst)) = self.instances.get_mut(slot) else {
            self.close(token);
            return;
        };
        inst.start_turn();
        let mut turn = Turn {
            inst,
            conn,
            now,
            app: &self.config.app,
            ws_config: &self.ws_config,
            buf: &mut self.buf,
        };
        let outcome = if timer {
            turn.on_timer().and_then(|()| turn.advance())
        } else {
            turn.advance()
        };
        match outcome {
            Ok(true) => {
                let deadline = match turn.deadline() {
                    Ok(d) => d,
                    Err(e) => return self.trap(slot, e),
                };
                self.schedule(token, deadline);
            }
            Ok(false) | Err(Fault::Close) => self.close(token),
            Err(Fault::Trap(e)) => self.trap(slot, e),
        }
    }

    fn schedule(&mut self, token: usize, deadline: Option<u64>) {
        let Some(Some(conn)) = self.conns.get_mut(token) else {
            return;
        };
        if conn.scheduled == deadline {
            return;
        }
        if let Some(old) = conn.scheduled.take() {
            self.timers.remove(&(old, token));
        }
        if let Some(at) = deadline {
            self.timers.insert((at, token));
            conn.scheduled = Some(at);
        }
    }

    /// Takes a connection out of the loop: its slot, its timer, its chat room and its poll
    /// registration. The socket closes when the returned value is dropped.
    fn detach(&mut self, token: usize) -> Option<Conn> {
        let mut conn = self.conns.get_mut(token).and_then(Option::take)?;
        self.free.push(token);
        if let Some(at) = conn.scheduled {
            self.timers.remove(&(at, token));
        }
        self.leave(token, conn.chat.as_ref());
        let _ = self.poll.registry().deregister(&mut conn.stream);
        Some(conn)
    }

    /// Closes a connection and drops its engine resource.
    fn close(&mut self, token: usize) {
        let Some(conn) = self.detach(token) else {
            return;
        };
        let Conn {
            inst: slot,
            proto,
            stream,
            ..
        } = conn;
        drop(stream);
        let Some(Some(inst)) = self.instances.get_mut(slot) else {
            return;
        };
        inst.conns = inst.conns.saturating_sub(1);
        if let Some(Proto::Http(r) | Proto::Ws(r)) = proto {
            inst.start_turn();
            if let Err(e) = r.resource_drop(&mut inst.store) {
                self.trap(slot, e);
            }
        }
    }

    fn leave(&mut self, token: usize, chat: Option<&Member>) {
        let Some(member) = chat.filter(|m| m.joined) else {
            return;
        };
        if let Some(list) = self.rooms.get_mut(&member.room) {
            list.retain(|&t| t != token);
            if list.is_empty() {
                self.rooms.remove(&member.room);
            }
        }
    }

    /// The instance in `slot` trapped: log it, close its connections, drop it. The next
    /// connection gets a fresh instance.
    fn trap(&mut self, slot: usize, err: wasmtime::Error) {
        let Some(inst) = self.instances.get_mut(slot).and_then(Option::take) else {
            return;
        };
        let victims: Vec<usize> = self
            .conns
            .iter()
            .enumerate()
            .filter(|(_, c)| c.as_ref().is_some_and(|c| c.inst == slot))
            .map(|(i, _)| i)
            .collect();
        eprintln!(
            "weft-host: engine instance #{} trapped: {err:?}; closing its {} connection(s) and replacing it",
            inst.id,
            victims.len()
        );
        drop(inst);
        if let Ok(mut traps) = self.traps.lock() {
            traps.push(format!("{err:?}"));
        }
        for token in victims {
            // The instance is gone, and its resources with it: only the sockets close.
            drop(self.detach(token));
        }
    }
}

/// One connection's turn: the borrowed parts it needs.
struct Turn<'a> {
    inst: &'a mut Instance,
    conn: &'a mut Conn,
    now: Now,
    app: &'a AppConfig,
    ws_config: &'a SessionConfig,
    buf: &'a mut Vec<u8>,
}

type Step<T> = std::result::Result<T, Fault>;

impl Turn<'_> {
    /// Runs the connection until nothing moves. `Ok(false)`: close it now.
    fn advance(&mut self) -> Step<bool> {
        loop {
            let mut progressed = false;
            if self.conn.linger_until.is_none() {
                progressed |= self.run_protocol()?;
            }
            progressed |= self.write_step()?;
            progressed |= self.read_step()?;
            if !progressed {
                break;
            }
        }
        if self.conn.linger_until.is_some() {
            if self.conn.eof
                || self
                    .conn
                    .linger_until
                    .is_some_and(|t| self.now.instant >= t)
            {
                return Ok(false);
            }
            return Ok(true);
        }
        if self.conn.closed && !self.pending_at_least(1)? {
            if self.conn.eof {
                return Ok(false);
            }
            // FIN, then discard input a while, so unread input does not turn the close
            // into a reset that destroys the response in flight.
            let _ = self.conn.stream.shutdown(Shutdown::Write);
            self.conn.linger_until = Some(self.now.instant.saturating_add(nanos(LINGER)));
            self.conn.responder = None;
            self.conn.unfed = Vec::new();
            if let Some(Proto::Http(r) | Proto::Ws(r)) = self.conn.proto.take() {
                r.resource_drop(&mut self.inst.store)?;
            }
            // Input may already wait.
            self.read_step()?;
            if self.conn.eof {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// When the connection wants its next turn.
    fn deadline(&mut self) -> wasmtime::Result<Option<u64>> {
        if let Some(t) = self.conn.linger_until {
            return Ok(Some(t));
        }
        let engine = match &self.conn.proto {
            Some(Proto::Http(r)) => http!(self.inst).call_poll_timeout(&mut self.inst.store, *r)?,
            Some(Proto::Ws(r)) => ws!(self.inst).call_poll_timeout(&mut self.inst.store, *r)?,
            None => None,
        };
        Ok(match (engine, self.conn.wake_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        })
    }

    fn on_timer(&mut self) -> Step<()> {
        if self.conn.wake_at.is_some_and(|t| self.now.instant >= t) {
            self.conn.wake_at = None;
        }
        match &self.conn.proto {
            Some(Proto::Http(r)) => {
                http!(self.inst).call_handle_timeout(&mut self.inst.store, *r, self.now)?
            }
            Some(Proto::Ws(r)) => {
                ws!(self.inst).call_handle_timeout(&mut self.inst.store, *r, self.now.instant)?
            }
            None => {}
        }
        self.conn.maybe_pending = true;
        self.conn.poll_ready = true;
        Ok(())
    }

    /// Whether the engine holds at least `n` bytes of output.
    fn pending_at_least(&mut self, n: u64) -> Step<bool> {
        if !self.conn.maybe_pending {
            return Ok(false);
        }
        let pending = match &self.conn.proto {
            Some(Proto::Http(r)) => {
                http!(self.inst).call_pending_transmit(&mut self.inst.store, *r)?
            }
            Some(Proto::Ws(r)) => ws!(self.inst).call_pending_transmit(&mut self.inst.store, *r)?,
            None => 0,
        };
        if pending == 0 {
            self.conn.maybe_pending = false;
        }
        Ok(pending >= n)
    }

    fn run_protocol(&mut self) -> Step<bool> {
        match self.conn.proto {
            Some(Proto::Http(r)) => {
                let mut progressed = self.pump_http(r)?;
                if let Some(Proto::Http(r)) = self.conn.proto {
                    progressed |= self.produce(r)?;
                }
                if let Some(Proto::Ws(r)) = self.conn.proto {
                    progressed |= self.pump_ws(r)?;
                }
                Ok(progressed)
            }
            Some(Proto::Ws(r)) => Ok(self.pump_ws(r)? | self.drain_mailbox(r)?),
            None => Ok(false),
        }
    }

    /// Polls the engine's HTTP events and answers them.
    fn pump_http(&mut self, r: ResourceAny) -> Step<bool> {
        let mut progressed = false;
        while !self.conn.closed && self.conn.poll_ready {
            if self.conn.body_open {
                let wanted = matches!(self.conn.responder, Some(Responder::Echo { .. }));
                if !wanted {
                    // Unwanted: the engine discards it after the response, or closes.
                    if http!(self.inst).call_is_reading_body(&mut self.inst.store, r)? {
                        break;
                    }
                    self.conn.body_open = false;
                } else if self.pending_at_least(HIGH_WATER)? {
                    break;
                }
            }
            let event = http!(self.inst).call_poll_event(&mut self.inst.store, r, self.now)?;
            let event = match event {
                Ok(ev) => ev,
                Err(_) => {
                    // The engine answered the error itself (when it could) and closes.
                    self.conn.closed = true;
                    self.conn.maybe_pending = true;
                    return Ok(true);
                }
            };
            match event {
                Event::Request(head) => {
                    self.conn.body_open = !matches!(head.body, BodyFraming::None);
                    self.start(r, head)?;
                }
                // Nothing new until more input, a timeout or the end of the response.
                Event::NeedData | Event::Paused if !self.conn.body_open => {
                    self.conn.poll_ready = false;
                    break;
                }
                Event::NeedData | Event::Paused => {
                    // Reading a body: the poll may have queued `100 Continue`.
                    self.conn.poll_ready = false;
                    self.conn.maybe_pending = true;
                    break;
                }
                Event::Data(data) => {
                    if let Some(Responder::Echo { .. }) = self.conn.responder {
                        self.echo_head(r)?;
                        let _ = http!(self.inst).call_send_data(
                            &mut self.inst.store,
                            r,
                            &data,
                            self.now.instant,
                        )?;
                    }
                }
                Event::End(_) => {
                    self.conn.body_open = false;
                    if let Some(Responder::Echo { .. }) = self.conn.responder {
                        self.end_echo(r)?;
                    }
                }
                Event::Closed => {
                    self.conn.closed = true;
                    self.conn.maybe_pending = true;
                    break;
                }
                Event::Upgraded(rest) => {
                    self.upgrade(r, &rest)?;
                    return Ok(true);
                }
            }
            self.conn.maybe_pending = true;
            progressed = true;
        }
        Ok(progressed)
    }

    /// The request body has ended: the echo's head if not yet sent, then its end.
    fn end_echo(&mut self, r: ResourceAny) -> Step<()> {
        self.echo_head(r)?;
        let _ = http!(self.inst).call_send_end(&mut self.inst.store, r, &[], self.now.instant)?;
        self.conn.responder = None;
        Ok(())
    }

    fn echo_head(&mut self, r: ResourceAny) -> Step<()> {
        let Some(Responder::Echo {
            content_type,
            body,
            head_sent,
        }) = &mut self.conn.responder
        else {
            return Ok(());
        };
        if *head_sent {
            return Ok(());
        }
        *head_sent = true;
        let response = Response {
            status: 200,
            fields: vec![("Content-Type".into(), std::mem::take(content_type))],
            body: match body {
                Body::Length(n) => BodyKind::Length(*n),
                Body::Stream => BodyKind::Stream,
            },
        };
        let _ =
            http!(self.inst).call_send_response(&mut self.inst.store, r, &response, self.now)?;
        Ok(())
    }

    /// A request head: route it and start the answer.
    fn start(&mut self, r: ResourceAny, head: http::RequestHead) -> Step<()> {
        self.conn.responder = None;
        self.conn.wake_at = None;
        let method = method_name(&head.method);
        let route_head = Head {
            method,
            target: &head.target,
            path: &head.path,
            query: head.query.as_deref(),
            fields: &head.fields,
            body: match head.body {
                BodyFraming::None => None,
                BodyFraming::Length(n) => Some(Some(n)),
                BodyFraming::Chunked => Some(None),
            },
        };
        let is_head = matches!(head.method, Method::Head);
        let http = self.inst.bindings.weft_engine_http().server_connection();
        match routes::answer(self.app, &route_head) {
            Answer::Full {
                status,
                fields,
                body,
            } => {
                let fields = owned_fields(fields);
                let _ =
                    http.call_send_full(&mut self.inst.store, r, status, &fields, &body, self.now)?;
            }
            Answer::Echo { content_type, body } => {
                self.conn.responder = Some(Responder::Echo {
                    content_type,
                    body,
                    head_sent: false,
                });
                if !self.conn.body_open {
                    // No body to wait for: the whole (empty) answer now.
                    self.end_echo(r)?;
                }
            }
            Answer::Sheep(sheep) => {
                let response = Response {
                    status: 200,
                    fields: vec![("Content-Type".into(), b"text/plain; charset=utf-8".to_vec())],
                    body: BodyKind::Stream,
                };
                let _ = http.call_send_response(&mut self.inst.store, r, &response, self.now)?;
                if is_head {
                    let _ = http.call_send_end(&mut self.inst.store, r, &[], self.now.instant)?;
                } else {
                    self.conn.responder = Some(Responder::Sheep(sheep));
                }
            }
            Answer::File {
                content_type,
                file,
                len,
            } => {
                let response = Response {
                    status: 200,
                    fields: vec![("Content-Type".into(), content_type.as_bytes().to_vec())],
                    body: BodyKind::Length(len),
                };
                let _ = http.call_send_response(&mut self.inst.store, r, &response, self.now)?;
                if is_head || len == 0 {
                    let _ = http.call_send_end(&mut self.inst.store, r, &[], self.now.instant)?;
                } else {
                    self.conn.responder = Some(Responder::File {
                        file,
                        remaining: len,
                    });
                }
            }
            Answer::WebSocket { chat } => {
                let options = HandshakeOptions {
                    protocols: Vec::new(),
                    deflate: true,
                };
                let checked = self
                    .inst
                    .bindings
                    .weft_engine_websocket()
                    .call_check_handshake(
                        &mut self.inst.store,
                        &head.method,
                        head.version,
                        &head.fields,
                        &options,
                    )?;
                match checked {
                    Ok(hs) => {
                        let _ = http.call_send_full(
                            &mut self.inst.store,
                            r,
                            101,
                            &hs.response_fields,
                            &[],
                            self.now,
                        )?;
                        let mut config = *self.ws_config;
                        config.deflate = hs.deflate;
                        if chat.is_some() {
                            config.max_message = CHAT_MAX_MESSAGE;
                            config.max_frame = CHAT_MAX_MESSAGE;
                        }
                        self.conn.responder = Some(Responder::Upgrade(config, chat));
                    }
                    Err(refusal) => {
                        let mut fields = refusal.fields;
                        fields.push(("Content-Type".into(), b"text/plain; charset=utf-8".to_vec()));
                        let body = format!("{}\n", refusal.reason);
                        let _ = http.call_send_full(
                            &mut self.inst.store,
                            r,
                            refusal.status,
                            &fields,
                            body.as_bytes(),
                            self.now,
                        )?;
                    }
                }
            }
        }
        Ok(())
    }

    /// The `101` went out: the WebSocket session takes the connection.
    fn upgrade(&mut self, r: ResourceAny, rest: &[u8]) -> Step<()> {
        let Some(Responder::Upgrade(config, chat)) = self.conn.responder.take() else {
            // A 101 without a session: end the connection.
            http!(self.inst).call_abort(&mut self.inst.store, r)?;
            self.conn.closed = true;
            return Ok(());
        };
        // What the HTTP side still has to send (the 101) goes first.
        self.conn.maybe_pending = true;
        while self.pending_at_least(1)? {
            if !self.write_step()? {
                // The socket is full: a 101 is small, this is a client that does not read.
                return Err(Fault::Close);
            }
        }
        let ws = self.inst.bindings.weft_engine_websocket().session();
        let session = ws.call_constructor(&mut self.inst.store, config, self.now.instant)?;
        if !rest.is_empty() {
            let _ = ws.call_feed(&mut self.inst.store, session, rest)?;
        }
        r.resource_drop(&mut self.inst.store)?;
        self.conn.proto = Some(Proto::Ws(session));
        self.conn.poll_ready = true;
        self.conn.body_open = false;
        self.conn.chat = chat.map(|room| Member {
            room,
            joined: false,
            mailbox: VecDeque::new(),
            bytes: 0,
            overflowed: false,
        });
        Ok(())
    }

    /// Produces streamed bodies while the output has room.
    fn produce(&mut self, r: ResourceAny) -> Step<bool> {
        let mut progressed = false;
        loop {
            if self.conn.wake_at.is_some_and(|t| self.now.instant < t) {
                return Ok(progressed);
            }
            match &self.conn.responder {
                Some(Responder::Sheep(_) | Responder::File { .. }) => {}
                _ => return Ok(progressed),
            }
            if self.pending_at_least(HIGH_WATER)? {
                return Ok(progressed);
            }
            let http = self.inst.bindings.weft_engine_http().server_connection();
            let store = &mut self.inst.store;
            let now = self.now;
            let done = match &mut self.conn.responder {
                Some(Responder::Sheep(sheep)) => match sheep.step(now.instant) {
                    Ok(Some(line)) => {
                        let _ =
                            http.call_send_data(&mut *store, r, line.as_bytes(), now.instant)?;
                        false
                    }
                    Ok(None) => true,
                    Err(due) => {
                        self.conn.wake_at = Some(due);
                        return Ok(progressed);
                    }
                },
                Some(Responder::File { file, remaining }) => {
                    let want = usize::try_from(*remaining)
                        .unwrap_or(FILE_CHUNK)
                        .min(FILE_CHUNK);
                    let chunk = self.buf.get_mut(..want).unwrap_or_default();
                    match file.read(chunk) {
                        Ok(0) | Err(_) => {
                            // The file shrank or failed: the body cannot be completed.
                            http.call_abort(&mut *store, r)?;
                            self.conn.responder = None;
                            self.conn.maybe_pending = true;
                            self.conn.poll_ready = true;
                            return Ok(true);
                        }
                        Ok(n) => {
                            let data = chunk.get(..n).unwrap_or_default();
                            let _ = http.call_send_data(&mut *store, r, data, now.instant)?;
                            *remaining -= n as u64;
                            *remaining == 0
                        }
                    }
                }
                _ => return Ok(progressed),
            };
            if done {
                let _ = http.call_send_end(&mut *store, r, &[], now.instant)?;
                self.conn.responder = None;
                // The response is complete: a pipelined request may be next.
                self.conn.poll_ready = true;
            }
            self.conn.maybe_pending = true;
            progressed = true;
        }
    }

    /// Polls the WebSocket session: messages are echoed while the output keeps up.
    fn pump_ws(&mut self, s: ResourceAny) -> Step<bool> {
        let mut progressed = false;
        while !self.conn.closed && self.conn.poll_ready {
            if self.pending_at_least(HIGH_WATER)? {
                break;
            }
            let ws = self.inst.bindings.weft_engine_websocket().session();
            let event = ws.call_poll_event(&mut self.inst.store, s, self.now.instant)?;
            if !matches!(event, Ok(WsEvent::NeedData)) {
                // Polling may queue output (a Pong, a Close).
                self.conn.maybe_pending = true;
            }
            let sent = match event {
                Ok(WsEvent::Text(text)) if self.conn.chat.is_some() => {
                    self.conn.outbox.push(Rc::from(text));
                    false
                }
                Ok(WsEvent::Binary(_)) if self.conn.chat.is_some() => {
                    ws.call_close(
                        &mut self.inst.store,
                        s,
                        1003,
                        "text messages only",
                        self.now.instant,
                    )?;
                    true
                }
                Ok(WsEvent::Text(text)) => {
                    let sent =
                        ws.call_send_text(&mut self.inst.store, s, &text, self.now.instant)?;
                    self.echo_failed(s, sent.is_err())?;
                    true
                }
                Ok(WsEvent::Binary(data)) => {
                    let sent =
                        ws.call_send_binary(&mut self.inst.store, s, &data, self.now.instant)?;
                    self.echo_failed(s, sent.is_err())?;
                    true
                }
                Ok(WsEvent::Ping(_) | WsEvent::Pong(_) | WsEvent::Close(_)) => true,
                Ok(WsEvent::NeedData) => {
                    self.conn.poll_ready = false;
                    break;
                }
                Ok(WsEvent::Closed) | Err(_) => {
                    // Over (or failed: its Close is queued): close once the output is out.
                    self.conn.closed = true;
                    self.conn.maybe_pending = true;
                    return Ok(true);
                }
            };
            if sent {
                self.conn.maybe_pending = true;
            }
            progressed = true;
        }
        Ok(progressed)
    }

    /// Moves a chat member's mailbox to its session while the output has room.
    fn drain_mailbox(&mut self, s: ResourceAny) -> Step<bool> {
        let mut progressed = false;
        loop {
            let Some(member) = self.conn.chat.as_mut() else {
                return Ok(progressed);
            };
            if member.overflowed {
                member.overflowed = false;
                member.mailbox.clear();
                ws!(self.inst).call_close(
                    &mut self.inst.store,
                    s,
                    1008,
                    "too slow",
                    self.now.instant,
                )?;
                self.conn.maybe_pending = true;
                return Ok(true);
            }
            if member.mailbox.is_empty() || self.pending_at_least(HIGH_WATER)? {
                return Ok(progressed);
            }
            let Some(text) = self.conn.chat.as_mut().and_then(|m| {
                let t = m.mailbox.pop_front()?;
                m.bytes -= t.len();
                Some(t)
            }) else {
                return Ok(progressed);
            };
            let ws = self.inst.bindings.weft_engine_websocket().session();
            if ws.call_is_closing(&mut self.inst.store, s)? {
                if let Some(m) = self.conn.chat.as_mut() {
                    m.mailbox.clear();
                    m.bytes = 0;
                }
                return Ok(progressed);
            }
            let sent = ws.call_send_text(&mut self.inst.store, s, &text, self.now.instant)?;
            self.echo_failed(s, sent.is_err())?;
            self.conn.maybe_pending = true;
            progressed = true;
        }
    }

    /// An echo that could not be queued ends the session with 1011, as weft's handler
    /// failures do.
    fn echo_failed(&mut self, s: ResourceAny, failed: bool) -> Step<()> {
        if failed {
            ws!(self.inst).call_close(
                &mut self.inst.store,
                s,
                1011,
                "internal error",
                self.now.instant,
            )?;
        }
        Ok(())
    }

    /// Writes what the engine transmits while the socket takes it.
    fn write_step(&mut self) -> Step<bool> {
        if !self.conn.writable || !self.conn.maybe_pending {
            return Ok(false);
        }
        let mut progressed = false;
        loop {
            let chunk = match &self.conn.proto {
                Some(Proto::Http(r)) => {
                    http!(self.inst).call_transmit(&mut self.inst.store, *r, CHUNK as u32)?
                }
                Some(Proto::Ws(r)) => {
                    ws!(self.inst).call_transmit(&mut self.inst.store, *r, CHUNK as u32)?
                }
                None => Vec::new(),
            };
            if chunk.is_empty() {
                self.conn.maybe_pending = false;
                return Ok(progressed);
            }
            // The whole chunk goes out before the engine is asked for more: after a short
            // write, the rest of this chunk is what comes next, without a second transmit.
            let mut written = 0;
            let mut blocked = false;
            while written < chunk.len() {
                match self
                    .conn
                    .stream
                    .write(chunk.get(written..).unwrap_or_default())
                {
                    Ok(0) => return Err(Fault::Close),
                    Ok(n) => written += n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        self.conn.writable = false;
                        blocked = true;
                        break;
                    }
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => return Err(Fault::Close),
                }
            }
            if written > 0 {
                match &self.conn.proto {
                    Some(Proto::Http(r)) => http!(self.inst).call_advance_transmit(
                        &mut self.inst.store,
                        *r,
                        written as u64,
                        self.now.instant,
                    )?,
                    Some(Proto::Ws(r)) => ws!(self.inst).call_advance_transmit(
                        &mut self.inst.store,
                        *r,
                        written as u64,
                        self.now.instant,
                    )?,
                    None => {}
                }
                progressed = true;
            }
            if blocked {
                return Ok(progressed);
            }
            if chunk.len() < CHUNK {
                self.conn.maybe_pending = false;
                return Ok(true);
            }
        }
    }

    /// Reads one chunk and feeds it to the engine, unless backpressure says wait.
    fn read_step(&mut self) -> Step<bool> {
        if self.conn.eof || !self.conn.readable {
            return Ok(false);
        }
        if self.conn.linger_until.is_some() {
            // Closed: discard.
            return match self.conn.stream.read(self.buf) {
                Ok(0) => {
                    self.conn.eof = true;
                    Ok(true)
                }
                Ok(_) => Ok(true),
                Err(e) if e.kind() == ErrorKind::WouldBlock => {
                    self.conn.readable = false;
                    Ok(false)
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => Ok(true),
                Err(_) => Err(Fault::Close),
            };
        }
        if self.conn.closed {
            return Ok(false);
        }
        if !self.conn.unfed.is_empty() {
            let unfed = std::mem::take(&mut self.conn.unfed);
            if !self.feed(&unfed)? {
                self.conn.unfed = unfed;
                return Ok(false);
            }
            return Ok(true);
        }
        if self.pending_at_least(HIGH_WATER)? {
            return Ok(false);
        }
        match self.conn.stream.read(self.buf) {
            Ok(0) => {
                self.conn.eof = true;
                match &self.conn.proto {
                    Some(Proto::Http(r)) => {
                        http!(self.inst).call_receive_eof(&mut self.inst.store, *r)?
                    }
                    Some(Proto::Ws(r)) => {
                        ws!(self.inst).call_receive_eof(&mut self.inst.store, *r)?
                    }
                    None => {}
                }
                self.conn.poll_ready = true;
                Ok(true)
            }
            Ok(n) => {
                // Fed from the read buffer; copied only when the engine refuses it.
                let buf = std::mem::take(self.buf);
                let data = buf.get(..n).unwrap_or_default();
                let fed = self.feed(data);
                if matches!(fed, Ok(false)) {
                    self.conn.unfed = data.to_vec();
                }
                *self.buf = buf;
                fed?;
                Ok(true)
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                self.conn.readable = false;
                Ok(false)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(true),
            Err(_) => Err(Fault::Close),
        }
    }

    /// Feeds input; false when the engine is full (nothing was taken).
    fn feed(&mut self, data: &[u8]) -> Step<bool> {
        let taken = match &self.conn.proto {
            Some(Proto::Http(r)) => http!(self.inst).call_feed(&mut self.inst.store, *r, data)?,
            Some(Proto::Ws(r)) => ws!(self.inst).call_feed(&mut self.inst.store, *r, data)?,
            None => Ok(()),
        };
        if taken.is_ok() {
            self.conn.poll_ready = true;
        }
        Ok(taken.is_ok())
    }
}

fn method_name(m: &Method) -> &str {
    match m {
        Method::Get => "GET",
        Method::Head => "HEAD",
        Method::Post => "POST",
        Method::Put => "PUT",
        Method::Patch => "PATCH",
        Method::Delete => "DELETE",
        Method::Options => "OPTIONS",
        Method::Connect => "CONNECT",
        Method::Trace => "TRACE",
        Method::Other(s) => s,
    }
}

fn owned_fields(fields: Vec<(&'static str, Vec<u8>)>) -> Vec<(String, Vec<u8>)> {
    fields
        .into_iter()
        .map(|(n, v)| (n.to_string(), v))
        .collect()
}
