//! The native backend: non-blocking sockets on epoll (through mio), edge-triggered, one
//! SO_REUSEPORT listener per worker thread.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::Duration;

use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token as MioToken};
use socket2::{Domain, Protocol, Socket, Type};

use crate::backend::{Backend, ReadOutcome, Readiness, Token};

const LISTENER: MioToken = MioToken(usize::MAX);
/// The token of the waker other threads use to interrupt a wait.
const WAKER: MioToken = MioToken(usize::MAX - 1);

/// Binds a listening socket with SO_REUSEADDR and SO_REUSEPORT, so each worker can have its
/// own listener on the same address and the kernel spreads connections among them.
pub fn bind_listener(addr: SocketAddr) -> io::Result<std::net::TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

pub struct NativeBackend {
    poll: Poll,
    waker: std::sync::Arc<mio::Waker>,
    events: Events,
    listener: Option<TcpListener>,
    streams: Vec<Option<TcpStream>>,
    free: Vec<usize>,
}

impl NativeBackend {
    pub fn new(listener: std::net::TcpListener) -> io::Result<NativeBackend> {
        let poll = Poll::new()?;
        let mut listener = TcpListener::from_std(listener);
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)?;
        let waker = std::sync::Arc::new(mio::Waker::new(poll.registry(), WAKER)?);
        Ok(NativeBackend {
            poll,
            waker,
            events: Events::with_capacity(1024),
            listener: Some(listener),
            streams: Vec::new(),
            free: Vec::new(),
        })
    }

    fn stream(&mut self, token: Token) -> io::Result<&mut TcpStream> {
        self.streams
            .get_mut(token)
            .and_then(Option::as_mut)
            .ok_or_else(|| io::Error::new(io::ErrorKind::NotFound, "no such connection"))
    }
}

impl Backend for NativeBackend {
    fn wait(
        &mut self,
        timeout: Option<Duration>,
        accept: bool,
        ready: &mut Vec<Readiness>,
    ) -> io::Result<bool> {
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(false),
            Err(e) => return Err(e),
        }
        let mut acceptable = false;
        for event in self.events.iter() {
            if event.token() == LISTENER {
                // Edge-triggered: an edge seen while not accepting is not repeated, so the
                // loop retries accept by itself when it may accept again.
                acceptable = accept;
                continue;
            }
            if event.token() == WAKER {
                // The loop reads its wake list after every wait.
                continue;
            }
            ready.push(Readiness {
                token: event.token().0,
                readable: event.is_readable() || event.is_read_closed() || event.is_error(),
                writable: event.is_writable() || event.is_write_closed() || event.is_error(),
                read_closed: event.is_read_closed() || event.is_error(),
            });
        }
        Ok(acceptable)
    }

    fn accept(&mut self) -> io::Result<Option<(Token, SocketAddr)>> {
        let Some(listener) = self.listener.as_ref() else {
            return Ok(None);
        };
        let (mut stream, peer) = match listener.accept() {
            Ok(pair) => pair,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
            Err(e) => return Err(e),
        };
        // weft coalesces its own writes (one per response or pipelined batch), so Nagle's
        // delay would only add latency.
        stream.set_nodelay(true)?;
        let token = match self.free.pop() {
            Some(t) => t,
            None => {
                self.streams.push(None);
                self.streams.len() - 1
            }
        };
        self.poll.registry().register(
            &mut stream,
            MioToken(token),
            Interest::READABLE | Interest::WRITABLE,
        )?;
        if let Some(slot) = self.streams.get_mut(token) {
            *slot = Some(stream);
        }
        Ok(Some((token, peer)))
    }

    fn read(&mut self, token: Token, buf: &mut [u8]) -> io::Result<ReadOutcome> {
        let stream = self.stream(token)?;
        loop {
            return match stream.read(buf) {
                Ok(0) => Ok(ReadOutcome::Eof),
                Ok(n) => Ok(ReadOutcome::Data(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(ReadOutcome::WouldBlock),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    fn write(&mut self, token: Token, data: &[u8]) -> io::Result<usize> {
        let stream = self.stream(token)?;
        loop {
            return match stream.write(data) {
                Ok(n) => Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => Err(e),
            };
        }
    }

    fn set_interest(&mut self, _token: Token, _read: bool, _write: bool) {
        // Edge-triggered: registered once for both directions.
    }

    fn shutdown_write(&mut self, token: Token) {
        if let Ok(stream) = self.stream(token) {
            let _ = stream.shutdown(Shutdown::Write);
        }
    }

    fn close(&mut self, token: Token) {
        if let Some(mut stream) = self.streams.get_mut(token).and_then(Option::take) {
            let _ = self.poll.registry().deregister(&mut stream);
            self.free.push(token);
        }
    }

    fn stop_listening(&mut self) {
        if let Some(mut listener) = self.listener.take() {
            let _ = self.poll.registry().deregister(&mut listener);
        }
    }

    fn waker(&self) -> Option<crate::backend::WakeFn> {
        let waker = std::sync::Arc::clone(&self.waker);
        Some(Box::new(move || {
            let _ = waker.wake();
        }))
    }
}
