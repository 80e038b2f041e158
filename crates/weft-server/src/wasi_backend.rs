//! The WASI 0.2 backend: raw TCP through `wasi:sockets`, readiness through `wasi:io/poll`.
//! Written against the traps listed in shared/docs/wasi-notes.md:
//! - drop order: pollables before their streams, streams before their socket (the field order
//!   of [`WasiConn`] and [`WasiBackend`] is the drop order);
//! - `poll` traps on an empty list and reports indices in no particular order;
//! - a write never exceeds `check_write`'s permit, nor 64 KiB;
//! - wasmtime 48 livelocks when one `poll` covers about 128 ready pollables: readiness is swept
//!   in batches of at most 32 pollables, each with a zero-duration clock so the call never
//!   blocks, and only a sweep that found nothing falls back to one blocking poll over all;
//! - no TCP_NODELAY: the event loop already writes each response (or pipelined batch) in one
//!   write.

use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::time::Duration;

use wasi::clocks::monotonic_clock::subscribe_duration;
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
/// First read size of a connection. The host allocates and zeroes a buffer of the asked size
/// on every read before it knows how much arrived, so small requests get small reads; a read
/// that fills the request doubles the size (up to [`IO_CAP`]) so uploads still get large ones.
const FIRST_READ: usize = 4 * 1024;

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
    read_size: usize,
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
    free: Vec<usize>,
    listener_ready: Option<Pollable>,
    listener: Option<TcpSocket>,
    local: SocketAddr,
    interest: Vec<Interest>,
    /// Where the next sweep starts, so every batch gets its turn.
    sweep_from: usize,
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
            free: Vec::new(),
            listener_ready: Some(socket.subscribe()),
            listener: Some(socket),
            local,
            interest: Vec::new(),
            sweep_from: 0,
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
        let mut interest = std::mem::take(&mut self.interest);
        interest.clear();
        // A listener whose queue cannot be taken (out of descriptors) stays ready: polling it
        // then would return at once, forever.
        if accept && self.listener_ready.is_some() {
            interest.push(Interest::Accept);
        }
        for (token, conn) in self.conns.iter().enumerate() {
            if let Some(conn) = conn {
                if conn.want_read {
                    interest.push(Interest::Read(token));
                }
                if conn.want_write {
                    interest.push(Interest::Write(token));
                }
            }
        }

        let mut accept = false;
        let batches = interest.len().div_ceil(POLL_BATCH);
        if batches > 0 {
            // Non-blocking sweep: batches of at most 32 plus a zero-duration clock.
            let zero = subscribe_duration(0);
            let first = self.sweep_from % batches;
            for b in 0..batches {
                let index = (first + b) % batches;
                let start = index * POLL_BATCH;
                let batch = interest
                    .get(start..(start + POLL_BATCH).min(interest.len()))
                    .unwrap_or(&[]);
                let mut list: Vec<&Pollable> =
                    batch.iter().filter_map(|&i| self.pollable(i)).collect();
                if list.len() != batch.len() {
                    continue;
                }
                list.push(&zero);
                let mut hits = poll(&list);
                let first_new = ready.len();
                let (any, acc) = Self::record(batch, &mut hits, ready);
                self.undrain(ready.get(first_new..).unwrap_or(&[]));
                accept |= acc;
                if any {
                    // Serve this batch now; the next wait resumes after it.
                    self.sweep_from = index + 1;
                    self.interest = interest;
                    return Ok(accept);
                }
            }
        }

        // Nothing was ready: one blocking poll over everything, bounded by the timeout.
        let clock =
            timeout.map(|t| subscribe_duration(u64::try_from(t.as_nanos()).unwrap_or(u64::MAX)));
        let mut list: Vec<&Pollable> = interest.iter().filter_map(|&i| self.pollable(i)).collect();
        if list.len() != interest.len() {
            self.interest = interest;
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
        let (_, acc) = Self::record(&interest, &mut hits, ready);
        self.undrain(ready.get(first_new..).unwrap_or(&[]));
        accept |= acc;
        self.interest = interest;
        Ok(accept)
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
            read_size: FIRST_READ,
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
        let len = buf.len().min(conn.read_size);
        match conn.input.read(len as u64) {
            Ok(bytes) if bytes.is_empty() => {
                conn.drained = true;
                Ok(ReadOutcome::WouldBlock)
            }
            Ok(bytes) => {
                let n = bytes.len().min(buf.len());
                if let (Some(dst), Some(src)) = (buf.get_mut(..n), bytes.get(..n)) {
                    dst.copy_from_slice(src);
                }
                if n < len {
                    conn.drained = true;
                } else {
                    conn.read_size = (conn.read_size * 2).min(IO_CAP);
                }
                Ok(ReadOutcome::Data(n))
            }
            Err(StreamError::Closed) => Ok(ReadOutcome::Eof),
            Err(e) => Err(stream_err(e)),
        }
    }

    fn write(&mut self, token: Token, data: &[u8]) -> io::Result<usize> {
        let conn = self.conn(token)?;
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
        Ok(n)
    }

    fn set_interest(&mut self, token: Token, read: bool, write: bool) {
        if let Some(Some(conn)) = self.conns.get_mut(token) {
            conn.want_read = read;
            conn.want_write = write;
        }
    }

    fn shutdown_write(&mut self, token: Token) {
        if let Ok(conn) = self.conn(token) {
            let _ = conn.socket.shutdown(ShutdownType::Send);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(slot) = self.conns.get_mut(token) {
            if slot.take().is_some() {
                self.free.push(token);
            }
        }
    }

    fn stop_listening(&mut self) {
        self.listener_ready = None;
        self.listener = None;
    }
}
