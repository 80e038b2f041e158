//! The WASI 0.2 backend: raw TCP through `wasi:sockets`, readiness through `wasi:io/poll`.
//! Written against the host facts in docs/WASI.md:
//! - drop order: pollables before their streams, streams before their socket (the field order
//!   of [`WasiConn`] and [`WasiBackend`] is the drop order);
//! - `poll` traps on an empty list and reports indices in no particular order;
//! - a write never exceeds `check_write`'s permit, nor 64 KiB;
//! - wasmtime 48 livelocks when one `poll` covers about 128 ready pollables: readiness is swept
//!   in batches of at most 32 pollables, each with a zero-duration clock so the call never
//!   blocks, and only a sweep that found nothing falls back to one blocking poll over all;
//! - no TCP_NODELAY: the event loop already writes each response (or pipelined batch) in one
//!   write;
//! - each `poll` costs the host time per pollable: idle and slow connections are kept on a
//!   cold list swept at a bounded rate;
//! - dropping an output stream waits until it can take a write: a connection whose stream is
//!   not ready is parked, not dropped.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

use wasi::clocks::monotonic_clock::{now as clock_now, subscribe_duration};
use wasi::io::poll::{poll, Pollable};
use wasi::io::streams::{InputStream, OutputStream, StreamError};
use wasi::sockets::instance_network::instance_network;
use wasi::sockets::network::{
    ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress, Network,
};
use wasi::sockets::tcp::{ShutdownType, TcpSocket};
use wasi::sockets::tcp_create_socket::create_tcp_socket;

use crate::backend::{Backend, ReadOutcome, Readiness, Token};

/// Most pollables in one non-blocking `poll` call (the wasmtime 48 livelock workaround).
const POLL_BATCH: usize = 32;
/// Largest single read or write.
const IO_CAP: usize = 64 * 1024;
/// A connection that did no work for this long is cold: it leaves the per-wait sweep (every
/// `poll` costs the host time in proportion to its pollables, so 10,000 idle connections
/// swept on every wait starve the active ones) and is swept at a bounded rate instead. Work
/// is a write (an answer), or a read of at least [`ACTIVE_READ`] bytes (an upload): a client
/// trickling a few bytes (slow-loris) stays cold, an idle keep-alive connection turns cold,
/// and one that asks again is answered from the cold sweep and is hot again.
const COLD_AFTER_NS: u64 = 1_000_000_000;
/// How often parked connections are checked for a stream that can be dropped.
const PARKED_CHECK_NS: u64 = 100_000_000;
/// The smallest read that counts as work.
const ACTIVE_READ: usize = 1024;
/// Every cold connection is polled at least once per this period while the loop is busy
/// (spread over the waits); an idle loop waits on all of them at once.
const COLD_PERIOD_NS: u64 = 100_000_000;
/// A wait that finds nothing ready blocks on the hot connections alone for up to this long
/// before it blocks on every connection (one host call over all of them).
const HOT_WAIT_NS: u64 = 2_000_000;

fn sock_err(e: ErrorCode) -> io::Error {
    io::Error::other(format!("wasi:sockets: {e:?}"))
}

fn stream_err(e: StreamError) -> io::Error {
    match e {
        StreamError::Closed => io::Error::new(io::ErrorKind::BrokenPipe, "stream closed"),
        StreamError::LastOperationFailed(err) => {
            io::Error::new(io::ErrorKind::ConnectionReset, err.to_debug_string())
        }
    }
}

fn to_wasi_addr(addr: SocketAddr) -> IpSocketAddress {
    match addr {
        SocketAddr::V4(a) => {
            let [x, y, z, w] = a.ip().octets();
            IpSocketAddress::Ipv4(Ipv4SocketAddress {
                port: a.port(),
                address: (x, y, z, w),
            })
        }
        SocketAddr::V6(a) => {
            let [s0, s1, s2, s3, s4, s5, s6, s7] = a.ip().segments();
            IpSocketAddress::Ipv6(Ipv6SocketAddress {
                port: a.port(),
                flow_info: a.flowinfo(),
                address: (s0, s1, s2, s3, s4, s5, s6, s7),
                scope_id: a.scope_id(),
            })
        }
    }
}

fn from_wasi_addr(addr: IpSocketAddress) -> SocketAddr {
    match addr {
        IpSocketAddress::Ipv4(a) => {
            let (x, y, z, w) = a.address;
            SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::new(x, y, z, w), a.port))
        }
        IpSocketAddress::Ipv6(a) => {
            let (s0, s1, s2, s3, s4, s5, s6, s7) = a.address;
            SocketAddr::V6(SocketAddrV6::new(
                Ipv6Addr::new(s0, s1, s2, s3, s4, s5, s6, s7),
                a.port,
                a.flow_info,
                a.scope_id,
            ))
        }
    }
}

/// One accepted connection. Field order is drop order: pollables, then streams, then socket.
struct WasiConn {
    read_ready: Pollable,
    write_ready: Pollable,
    input: InputStream,
    output: OutputStream,
    socket: TcpSocket,
    want_read: bool,
    want_write: bool,
    /// The last read returned less than asked: the stream is drained until a poll reports it
    /// readable again (pollables are level-triggered, and EOF counts as readable), so the next
    /// read answers `WouldBlock` without a host call that would only find nothing.
    drained: bool,
    /// When this connection last did work (see [`COLD_AFTER_NS`]), or was accepted.
    last_io: u64,
    /// On the hot list.
    hot: bool,
}

#[derive(Clone, Copy)]
enum Interest {
    Accept,
    Read(Token),
    Write(Token),
}

/// Field order is drop order: connections, then the listener's pollable, the listener, and
/// the network last.
pub struct WasiBackend {
    conns: Vec<Option<WasiConn>>,
    /// Closed connections whose output stream cannot be dropped yet (see
    /// [`Backend::close`]), with the clock of the last check.
    parked: Vec<WasiConn>,
    parked_checked: u64,
    free: Vec<usize>,
    listener_ready: Option<Pollable>,
    listener: Option<TcpSocket>,
    local: SocketAddr,
    /// What the hot connections (and the listener) wait for; rebuilt every wait.
    interest: Vec<Interest>,
    /// The hot connections (each with `hot` set); every other one is cold.
    hot: Vec<Token>,
    /// Where the next sweep starts, so every batch gets its turn.
    sweep_from: usize,
    /// Where the cold sweep goes on (a connection slot).
    cold_from: usize,
    /// The cold batch being polled (reused).
    cold_batch: Vec<Interest>,
    /// Nanoseconds of cold sweeping owed (time passed since the last cold batches, in units
    /// that make the whole cold list last `COLD_PERIOD_NS`).
    cold_credit: u64,
    /// The clock at the last wait: the time of this loop turn (what `last_io` records, with no
    /// host call per read or write).
    last_wait: u64,
    _network: Network,
}

impl WasiBackend {
    /// Binds and listens on `addr`.
    pub fn bind(addr: SocketAddr) -> io::Result<WasiBackend> {
        let network = instance_network();
        let family = match addr {
            SocketAddr::V4(_) => IpAddressFamily::Ipv4,
            SocketAddr::V6(_) => IpAddressFamily::Ipv6,
        };
        let socket = create_tcp_socket(family).map_err(sock_err)?;
        {
            let ready = socket.subscribe();
            socket
                .start_bind(&network, to_wasi_addr(addr))
                .map_err(sock_err)?;
            loop {
                match socket.finish_bind() {
                    Ok(()) => break,
                    Err(ErrorCode::WouldBlock) => ready.block(),
                    Err(e) => return Err(sock_err(e)),
                }
            }
            // The host may clamp or refuse the backlog size; the default is then used.
            let _ = socket.set_listen_backlog_size(1024);
            socket.start_listen().map_err(sock_err)?;
            loop {
                match socket.finish_listen() {
                    Ok(()) => break,
                    Err(ErrorCode::WouldBlock) => ready.block(),
                    Err(e) => return Err(sock_err(e)),
                }
            }
        }
        let local = from_wasi_addr(socket.local_address().map_err(sock_err)?);
        Ok(WasiBackend {
            conns: Vec::new(),
            parked: Vec::new(),
            parked_checked: 0,
            free: Vec::new(),
            listener_ready: Some(socket.subscribe()),
            listener: Some(socket),
            local,
            interest: Vec::new(),
            hot: Vec::new(),
            sweep_from: 0,
            cold_from: 0,
            cold_batch: Vec::new(),
            cold_credit: 0,
            last_wait: clock_now(),
            _network: network,
        })
    }

    /// The address actually bound (the port chosen when 0 was asked for).
    pub fn local_addr(&self) -> SocketAddr {
        self.local
    }

    fn conn(&self, token: Token) -> io::Result<&WasiConn> {
        self.conns
            .get(token)
            .and_then(Option::as_ref)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such connection"))
    }

    fn pollable(&self, interest: Interest) -> Option<&Pollable> {
        match interest {
            Interest::Accept => self.listener_ready.as_ref(),
            Interest::Read(t) => self.conns.get(t)?.as_ref().map(|c| &c.read_ready),
            Interest::Write(t) => self.conns.get(t)?.as_ref().map(|c| &c.write_ready),
        }
    }

    /// One non-blocking `poll` over `batch` (plus a zero-duration clock): records its hits and
    /// returns (any hit, the listener was ready). `None` when a pollable is gone.
    fn poll_batch(
        &mut self,
        batch: &[Interest],
        ready: &mut Vec<Readiness>,
    ) -> Option<(bool, bool)> {
        let zero = subscribe_duration(0);
        let mut list: Vec<&Pollable> = batch.iter().filter_map(|&i| self.pollable(i)).collect();
        if list.len() != batch.len() {
            return None;
        }
        list.push(&zero);
        let mut hits = poll(&list);
        drop(list);
        let first_new = ready.len();
        let found = Self::record(batch, &mut hits, ready);
        self.undrain(ready.get(first_new..).unwrap_or(&[]));
        Some(found)
    }

    /// One blocking `poll` over `interest` and a clock of `limit` (none: no limit).
    fn block_on(
        &mut self,
        interest: &[Interest],
        limit: Option<u64>,
        ready: &mut Vec<Readiness>,
    ) -> io::Result<(bool, bool)> {
        let clock = limit.map(subscribe_duration);
        let mut list: Vec<&Pollable> = interest.iter().filter_map(|&i| self.pollable(i)).collect();
        if list.len() != interest.len() {
            return Err(io::Error::other(
                "pollable list out of step with the interest list",
            ));
        }
        if let Some(clock) = clock.as_ref() {
            list.push(clock);
        }
        // `poll` traps on an empty list.
        let mut hits = if list.is_empty() {
            Vec::new()
        } else {
            poll(&list)
        };
        drop(list);
        let first_new = ready.len();
        let found = Self::record(interest, &mut hits, ready);
        self.undrain(ready.get(first_new..).unwrap_or(&[]));
        Ok(found)
    }

    /// Up to [`POLL_BATCH`] cold connections waiting for input, from the sweep's position on.
    fn next_cold_batch(&mut self, batch: &mut Vec<Interest>) {
        batch.clear();
        let slots = self.conns.len();
        for _ in 0..slots {
            if batch.len() == POLL_BATCH {
                break;
            }
            let token = self.cold_from % slots;
            self.cold_from = token + 1;
            if let Some(Some(conn)) = self.conns.get(token) {
                if !conn.hot && conn.want_read {
                    batch.push(Interest::Read(token));
                }
            }
        }
    }

    /// Every cold connection waiting for input.
    fn all_cold(&self, into: &mut Vec<Interest>) {
        for (token, conn) in self.conns.iter().enumerate() {
            if let Some(conn) = conn {
                if !conn.hot && conn.want_read {
                    into.push(Interest::Read(token));
                }
            }
        }
    }

    /// Puts a connection on the hot list.
    fn heat(&mut self, token: Token) {
        if let Some(Some(conn)) = self.conns.get_mut(token) {
            if !conn.hot {
                conn.hot = true;
                self.hot.push(token);
            }
        }
    }

    /// The body of [`Backend::wait`], over the hot list (`interest`, the listener included)
    /// and `cold` cold connections.
    fn wait_on(
        &mut self,
        interest: &[Interest],
        cold: usize,
        now: u64,
        timeout: Option<Duration>,
        ready: &mut Vec<Readiness>,
    ) -> io::Result<bool> {
        let mut any = false;
        let mut accept = false;

        // The cold batches owed since the last wait (the whole list once per period).
        let cold_batches = cold.div_ceil(POLL_BATCH) as u64;
        let elapsed = now.saturating_sub(self.last_wait);
        self.last_wait = now;
        if let Some(per_batch) = COLD_PERIOD_NS.checked_div(cold_batches) {
            let per_batch = per_batch.max(1);
            self.cold_credit = self.cold_credit.saturating_add(elapsed).min(COLD_PERIOD_NS);
            let due = self.cold_credit / per_batch;
            self.cold_credit -= due * per_batch;
            let mut batch = std::mem::take(&mut self.cold_batch);
            for _ in 0..due {
                self.next_cold_batch(&mut batch);
                if let Some((hit, _)) = self.poll_batch(&batch, ready) {
                    any |= hit;
                }
            }
            self.cold_batch = batch;
        }

        // Non-blocking sweep of the hot list: batches of at most 32 plus a zero-duration
        // clock, starting where the last one stopped; the first batch with hits is served.
        let batches = interest.len().div_ceil(POLL_BATCH);
        if batches > 0 {
            let first = self.sweep_from % batches;
            for b in 0..batches {
                let index = (first + b) % batches;
                let start = index * POLL_BATCH;
                let batch = interest
                    .get(start..(start + POLL_BATCH).min(interest.len()))
                    .unwrap_or(&[]);
                let Some((hit, acc)) = self.poll_batch(batch, ready) else {
                    continue;
                };
                accept |= acc;
                if hit {
                    // Serve this batch now; the next wait resumes after it.
                    self.sweep_from = index + 1;
                    return Ok(accept);
                }
            }
        }
        if any {
            return Ok(accept);
        }

        // Nothing was ready: block, bounded by the timeout. With cold connections, first on
        // the hot ones for a short while (a busy loop's next event is almost always there),
        // then on everything.
        let limit = timeout.map(|t| u64::try_from(t.as_nanos()).unwrap_or(u64::MAX));
        if cold == 0 {
            let (_, acc) = self.block_on(interest, limit, ready)?;
            return Ok(acc);
        }
        let short = limit.map_or(HOT_WAIT_NS, |l| l.min(HOT_WAIT_NS));
        let (hit, acc) = self.block_on(interest, Some(short), ready)?;
        if hit || limit.is_some_and(|l| l <= short) {
            return Ok(acc);
        }
        let mut all = interest.to_vec();
        self.all_cold(&mut all);
        let (_, acc) = self.block_on(&all, limit.map(|l| l - short), ready)?;
        Ok(acc)
    }

    /// A poll reported these streams readable: reads may find data again.
    fn undrain(&mut self, hits: &[Readiness]) {
        for r in hits.iter().filter(|r| r.readable) {
            if let Some(Some(conn)) = self.conns.get_mut(r.token) {
                conn.drained = false;
            }
        }
    }

    /// Records the hits of one poll over `batch` (indices past the batch are clocks).
    fn record(batch: &[Interest], hits: &mut [u32], ready: &mut Vec<Readiness>) -> (bool, bool) {
        let mut any = false;
        let mut accept = false;
        hits.sort_unstable();
        for &i in hits.iter() {
            match batch.get(i as usize) {
                Some(Interest::Accept) => {
                    accept = true;
                    any = true;
                }
                Some(&Interest::Read(token)) => {
                    any = true;
                    ready.push(Readiness {
                        token,
                        readable: true,
                        writable: false,
                        // A stream at its end polls ready again: no hint needed.
                        read_closed: false,
                    });
                }
                Some(&Interest::Write(token)) => {
                    any = true;
                    ready.push(Readiness {
                        token,
                        readable: false,
                        writable: true,
                        read_closed: false,
                    });
                }
                None => {}
            }
        }
        (any, accept)
    }
}

impl Backend for WasiBackend {
    fn wait(
        &mut self,
        timeout: Option<Duration>,
        accept: bool,
        ready: &mut Vec<Readiness>,
    ) -> io::Result<bool> {
        let now = clock_now();
        if !self.parked.is_empty() && now.saturating_sub(self.parked_checked) >= PARKED_CHECK_NS {
            self.parked_checked = now;
            // Dropping a ready stream returns at once.
            self.parked.retain(|conn| !conn.write_ready.ready());
        }
        let mut interest = std::mem::take(&mut self.interest);
        interest.clear();
        // A listener whose queue cannot be taken (out of descriptors) stays ready: polling it
        // then would return at once, forever.
        if accept && self.listener_ready.is_some() {
            interest.push(Interest::Accept);
        }
        // The hot list: connections that went quiet turn cold (those with output pending
        // stay); closed ones were removed by `close`.
        let conns = &mut self.conns;
        self.hot.retain(|&token| match conns.get_mut(token) {
            Some(Some(conn)) => {
                conn.hot = conn.want_write || now.saturating_sub(conn.last_io) < COLD_AFTER_NS;
                conn.hot
            }
            _ => false,
        });
        for &token in &self.hot {
            if let Some(Some(conn)) = self.conns.get(token) {
                if conn.want_read {
                    interest.push(Interest::Read(token));
                }
                if conn.want_write {
                    interest.push(Interest::Write(token));
                }
            }
        }
        let live = self.conns.len() - self.free.len();
        let cold = live.saturating_sub(self.hot.len());
        let result = self.wait_on(&interest, cold, now, timeout, ready);
        self.interest = interest;
        result
    }

    fn accept(&mut self) -> io::Result<Option<(Token, SocketAddr)>> {
        let Some(listener) = self.listener.as_ref() else {
            return Ok(None);
        };
        let (socket, input, output) = match listener.accept() {
            Ok(triple) => triple,
            Err(ErrorCode::WouldBlock) => return Ok(None),
            Err(e) => return Err(sock_err(e)),
        };
        let peer = socket
            .remote_address()
            .map(from_wasi_addr)
            .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
        let conn = WasiConn {
            read_ready: input.subscribe(),
            write_ready: output.subscribe(),
            input,
            output,
            socket,
            want_read: true,
            want_write: false,
            drained: false,
            last_io: self.last_wait,
            hot: false,
        };
        let token = match self.free.pop() {
            Some(t) => t,
            None => {
                self.conns.push(None);
                self.conns.len() - 1
            }
        };
        if let Some(slot) = self.conns.get_mut(token) {
            *slot = Some(conn);
        }
        self.heat(token);
        Ok(Some((token, peer)))
    }

    fn read(&mut self, token: Token, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        let conn = self
            .conns
            .get_mut(token)
            .and_then(Option::as_mut)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such connection"))?;
        if conn.drained {
            return Ok(ReadOutcome::WouldBlock);
        }
        // The loop sizes reads (small first: the host allocates and zeroes a buffer of the
        // asked size on every read before it knows how much arrived).
        let len = buf.len().min(IO_CAP);
        match conn.input.read(len as u64) {
            Ok(bytes) if bytes.is_empty() => {
                conn.drained = true;
                Ok(ReadOutcome::WouldBlock)
            }
            Ok(bytes) => {
                let active = bytes.len() >= ACTIVE_READ;
                if active {
                    conn.last_io = self.last_wait;
                }
                let n = bytes.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), bytes.get(..n)) {
                    dst.copy_from_slice(src);
                }
                if n < len {
                    conn.drained = true;
                }
                if active {
                    self.heat(token);
                }
                Ok(ReadOutcome::Data(n))
            }
            Err(StreamError::Closed) => Ok(ReadOutcome::Eof),
            Err(e) => Err(stream_err(e)),
        }
    }

    fn write(&mut self, token: Token, data: &[u8]) -> io::Result<usize> {
        let conn = self
            .conns
            .get_mut(token)
            .and_then(Option::as_mut)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such connection"))?;
        let permit = conn.output.check_write().map_err(stream_err)?;
        let n = usize::try_from(permit)
            .unwrap_or(usize::MAX)
            .min(IO_CAP)
            .min(data.len());
        if n == 0 {
            return Ok(0);
        }
        conn.output
            .write(data.get(..n).unwrap_or(&[]))
            .map_err(stream_err)?;
        conn.output.flush().map_err(stream_err)?;
        conn.last_io = self.last_wait;
        self.heat(token);
        Ok(n)
    }

    fn set_interest(&mut self, token: Token, read: bool, write: bool) {
        if let Some(Some(conn)) = self.conns.get_mut(token) {
            conn.want_read = read;
            conn.want_write = write;
        }
        if write {
            // Output pending: its readiness must be polled on every wait.
            self.heat(token);
        }
    }

    fn shutdown_write(&mut self, token: Token) {
        if let Ok(conn) = self.conn(token) {
            let _ = conn.socket.shutdown(ShutdownType::Send);
        }
    }

    /// Releases the connection. wasmtime's drop of an output stream waits until the stream
    /// could take a write: for a peer that stopped reading, forever, and the whole component
    /// with it (every connection stalls). So a stream that is not ready is parked, with its
    /// socket, until it is (checked at most every [`PARKED_CHECK_NS`]); the peer still sees
    /// the close once it reads what is queued. What the host does with a peer that never reads
    /// again is its own: it holds the socket meanwhile.
    fn close(&mut self, token: Token) {
        if let Some(slot) = self.conns.get_mut(token) {
            if let Some(conn) = slot.take() {
                self.free.push(token);
                if conn.hot {
                    self.hot.retain(|&t| t != token);
                }
                if !conn.write_ready.ready() {
                    let _ = conn.socket.shutdown(ShutdownType::Both);
                    self.parked.push(conn);
                }
            }
        }
    }

    fn parked(&self) -> usize {
        self.parked.len()
    }

    fn stop_listening(&mut self) {
        self.listener_ready = None;
        self.listener = None;
    }
}
