//! `canned`: the ceiling a parsing HTTP server can approach under a WASI 0.2 host.
//!
//! A raw `wasi:sockets` server that does no HTTP at all: it reads whatever arrives and, for each
//! `\r\n\r\n` it sees (counted across reads, so pipelined requests each get their answer), queues
//! one fixed `HTTP/1.1 200 OK` response with a 13-byte body; everything owed after one read goes
//! out in one write. Connections stay open until the client closes them.
//!
//! ```text
//! cargo build --release --target wasm32-wasip2 -p weft-bench-guests
//! wasmtime run -S inherit-network target/wasm32-wasip2/release/canned.wasm --listen 127.0.0.1:PORT
//! ```
//!
//! It prints `listening on 127.0.0.1:PORT` once it accepts connections. It follows every rule of
//! docs/WASI.md, like weft's WASI backend, so the two differ only in the HTTP work:
//! - drop order: pollables before their streams, streams before their socket (field order);
//! - `poll` gets at most 32 pollables plus a zero-duration clock per call, each batch's reads
//!   and writes are done right away, and only a sweep that found nothing blocks (one poll over
//!   everything); poll results are sorted before use;
//! - the zero-duration clock is a fresh `subscribe_duration(0)` for every `poll` call: the
//!   first poll of such a clock makes wasmtime-wasi yield to tokio once (its `Deadline::Past`
//!   hack), and that yield is what lets the host pick up socket readiness and refill tokio's
//!   coop budget. One clock reused for the server's life never yields again: under wasmtime 48
//!   it livelocks from about 128 connections (0 req/s, 100% CPU). `--zero-clock` picks the
//!   policy so this can be measured: `per-poll` (the default), `per-sweep`, `once`;
//! - a write never exceeds `check_write`'s permit nor 64 KiB, and the responses of one read are
//!   one write (no TCP_NODELAY under WASI: Nagle is on);
//! - one read per readiness report, of at most 4 KiB (see `READ_SIZE`): reading again until
//!   the stream is empty costs a host call and clears the host's cached readiness.
//!
//! On targets other than WASI it only prints how to build and run it.

use std::process::ExitCode;

#[cfg(not(target_os = "wasi"))]
fn main() -> ExitCode {
    eprintln!(
        "canned: a wasm32-wasip2 guest; build it with\n  \
         cargo build --release --target wasm32-wasip2 -p weft-bench-guests\n\
         and run it with\n  \
         wasmtime run -S inherit-network target/wasm32-wasip2/release/canned.wasm --listen ADDR"
    );
    ExitCode::from(2)
}

#[cfg(target_os = "wasi")]
fn main() -> ExitCode {
    guest::main()
}

/// Counts `\r\n\r\n` (the end of a request head) in a byte stream fed in pieces: a terminator
/// split across two reads is counted once, when it completes. No other HTTP is looked at.
#[derive(Default)]
#[cfg_attr(not(any(target_os = "wasi", test)), allow(dead_code))]
struct HeadCounter {
    /// How much of `\r\n\r\n` the bytes seen so far end with (0..=3).
    matched: usize,
}

#[cfg_attr(not(any(target_os = "wasi", test)), allow(dead_code))]
impl HeadCounter {
    const END: &'static [u8; 4] = b"\r\n\r\n";

    /// The number of terminators that complete within `data`.
    fn count(&mut self, data: &[u8]) -> usize {
        let mut heads = 0;
        let mut m = self.matched;
        for &b in data {
            if Self::END.get(m) == Some(&b) {
                m += 1;
                if m == Self::END.len() {
                    heads += 1;
                    m = 0;
                }
            } else {
                m = usize::from(b == b'\r');
            }
        }
        self.matched = m;
        heads
    }
}

#[cfg(test)]
mod tests {
    use super::HeadCounter;

    #[test]
    fn counts_pipelined_heads_in_one_piece() {
        let req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let mut c = HeadCounter::default();
        assert_eq!(c.count(&req.repeat(16)), 16);
        assert_eq!(c.count(b""), 0);
    }

    #[test]
    fn counts_a_terminator_split_at_every_point() {
        let req = b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /x HTTP/1.1\r\n\r\n";
        for cut in 0..=req.len() {
            let mut c = HeadCounter::default();
            let (a, b) = req.split_at(cut);
            assert_eq!(c.count(a) + c.count(b), 2, "cut at {cut}");
        }
        let mut c = HeadCounter::default();
        assert_eq!(req.iter().map(|&b| c.count(&[b])).sum::<usize>(), 2);
    }

    #[test]
    fn ignores_lone_line_ends() {
        let mut c = HeadCounter::default();
        assert_eq!(c.count(b"\r\n\r\r\n\n\r\r\n\r"), 0);
        assert_eq!(c.count(b"\n"), 1);
    }
}

#[cfg(target_os = "wasi")]
mod guest {
    use std::io::Write;
    use std::net::SocketAddr;
    use std::process::ExitCode;

    use wasi::clocks::monotonic_clock::subscribe_duration;
    use wasi::io::poll::{poll, Pollable};
    use wasi::io::streams::{InputStream, OutputStream};
    use wasi::sockets::instance_network::instance_network;
    use wasi::sockets::network::{
        ErrorCode, IpAddressFamily, IpSocketAddress, Ipv4SocketAddress, Ipv6SocketAddress, Network,
    };
    use wasi::sockets::tcp::{ShutdownType, TcpSocket};
    use wasi::sockets::tcp_create_socket::create_tcp_socket;

    use super::HeadCounter;

    const RESPONSE: &[u8] =
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!";
    /// Most pollables in one `poll` call, not counting the zero-duration clock.
    const POLL_BATCH: usize = 32;
    /// Largest single write.
    const IO_CAP: usize = 64 * 1024;
    /// Bytes asked for per read. wasmtime-wasi zeroes a host buffer of the asked size on every
    /// read (`BytesMut::zeroed`), so asking for 64 KiB costs a few µs per request whatever
    /// arrives; a request head is far smaller, and a larger burst is simply read in pieces.
    const READ_SIZE: usize = 4 * 1024;
    const USAGE: &str = "usage: canned [--listen ADDR] [--zero-clock per-poll|per-sweep|once]
  --listen ADDR   where to listen (default 127.0.0.1:8080)
  --zero-clock    when the zero-duration clock pollable is created (default per-poll)";

    /// When a fresh zero-duration clock is subscribed.
    #[derive(Clone, Copy, PartialEq, Eq)]
    enum ZeroClock {
        /// For every `poll` call (the rule; see the module notes).
        PerPoll,
        /// Once per sweep over all connections.
        PerSweep,
        /// Once for the life of the server (livelocks under wasmtime 48; for measurement).
        Once,
    }

    impl ZeroClock {
        fn parse(text: &str) -> Option<ZeroClock> {
            match text {
                "per-poll" => Some(ZeroClock::PerPoll),
                "per-sweep" => Some(ZeroClock::PerSweep),
                "once" => Some(ZeroClock::Once),
                _ => None,
            }
        }
    }

    pub fn main() -> ExitCode {
        let mut listen = String::from("127.0.0.1:8080");
        let mut zero_clock = ZeroClock::PerPoll;
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            if arg == "--listen" {
                match args.next() {
                    Some(v) => listen = v,
                    None => return usage("--listen needs an address"),
                }
            } else if let Some(v) = arg.strip_prefix("--listen=") {
                listen = v.to_string();
            } else if arg == "--zero-clock" {
                match args.next().as_deref().and_then(ZeroClock::parse) {
                    Some(z) => zero_clock = z,
                    None => return usage("--zero-clock needs per-poll, per-sweep or once"),
                }
            } else if arg == "-h" || arg == "--help" {
                println!("{USAGE}");
                return ExitCode::SUCCESS;
            } else {
                return usage(&format!("unknown argument: {arg}"));
            }
        }
        let Ok(addr) = listen.parse::<SocketAddr>() else {
            return usage(&format!("not an address: {listen}"));
        };
        let mut server = match Server::bind(addr) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("canned: cannot listen on {addr}: {e:?}");
                return ExitCode::FAILURE;
            }
        };
        let mut stdout = std::io::stdout();
        let _ = writeln!(stdout, "listening on {}", server.local);
        let _ = stdout.flush();
        server.run(zero_clock);
        ExitCode::SUCCESS
    }

    fn usage(msg: &str) -> ExitCode {
        eprintln!("canned: {msg}\n{USAGE}");
        ExitCode::from(2)
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
                SocketAddr::from(([x, y, z, w], a.port))
            }
            IpSocketAddress::Ipv6(a) => {
                let (s0, s1, s2, s3, s4, s5, s6, s7) = a.address;
                SocketAddr::from(([s0, s1, s2, s3, s4, s5, s6, s7], a.port))
            }
        }
    }

    /// One connection. Field order is drop order: pollables, then streams, then the socket.
    struct Conn {
        read_ready: Pollable,
        write_ready: Pollable,
        input: InputStream,
        output: OutputStream,
        socket: TcpSocket,
        /// Finds the ends of request heads across reads.
        heads: HeadCounter,
        /// Response bytes owed and not yet accepted by the output stream.
        out: Vec<u8>,
    }

    enum Step {
        Keep,
        Close,
    }

    impl Conn {
        /// The one pollable this connection waits on: writable while responses are owed (no
        /// reading then: that is the backpressure), readable otherwise.
        fn pollable(&self) -> &Pollable {
            if self.out.is_empty() {
                &self.read_ready
            } else {
                &self.write_ready
            }
        }

        /// Called when the pollable fired.
        fn ready(&mut self) -> Step {
            if !self.out.is_empty() {
                return self.write_out();
            }
            match self.input.read(READ_SIZE as u64) {
                Ok(data) if data.is_empty() => Step::Keep,
                Ok(data) => {
                    let heads = self.heads.count(&data);
                    if heads == 0 {
                        return Step::Keep;
                    }
                    self.out.reserve(heads * RESPONSE.len());
                    for _ in 0..heads {
                        self.out.extend_from_slice(RESPONSE);
                    }
                    self.write_out()
                }
                // Closed (EOF) or failed: the client is gone or going.
                Err(_) => Step::Close,
            }
        }

        /// One write of as much of `out` as the stream takes now (permit and 64 KiB caps).
        fn write_out(&mut self) -> Step {
            let permit = match self.output.check_write() {
                Ok(p) => usize::try_from(p).unwrap_or(usize::MAX),
                Err(_) => return Step::Close,
            };
            let n = permit.min(IO_CAP).min(self.out.len());
            if n == 0 {
                return Step::Keep;
            }
            let chunk = self.out.get(..n).unwrap_or(&[]);
            if self.output.write(chunk).is_err() || self.output.flush().is_err() {
                return Step::Close;
            }
            self.out.drain(..n);
            Step::Keep
        }
    }

    #[derive(Clone, Copy)]
    enum Slot {
        Accept,
        Conn(usize),
    }

    /// Field order is drop order: connections, the listener's pollable, the listener, the
    /// network.
    struct Server {
        conns: Vec<Option<Conn>>,
        free: Vec<usize>,
        listener_ready: Pollable,
        listener: TcpSocket,
        local: SocketAddr,
        _network: Network,
    }

    impl Server {
        fn bind(addr: SocketAddr) -> Result<Server, ErrorCode> {
            let network = instance_network();
            let family = match addr {
                SocketAddr::V4(_) => IpAddressFamily::Ipv4,
                SocketAddr::V6(_) => IpAddressFamily::Ipv6,
            };
            let listener = create_tcp_socket(family)?;
            {
                let ready = listener.subscribe();
                listener.start_bind(&network, to_wasi_addr(addr))?;
                loop {
                    match listener.finish_bind() {
                        Ok(()) => break,
                        Err(ErrorCode::WouldBlock) => ready.block(),
                        Err(e) => return Err(e),
                    }
                }
                let _ = listener.set_listen_backlog_size(1024);
                listener.start_listen()?;
                loop {
                    match listener.finish_listen() {
                        Ok(()) => break,
                        Err(ErrorCode::WouldBlock) => ready.block(),
                        Err(e) => return Err(e),
                    }
                }
            }
            let local = from_wasi_addr(listener.local_address()?);
            Ok(Server {
                conns: Vec::new(),
                free: Vec::new(),
                listener_ready: listener.subscribe(),
                listener,
                local,
                _network: network,
            })
        }

        fn pollable(&self, slot: Slot) -> Option<&Pollable> {
            match slot {
                Slot::Accept => Some(&self.listener_ready),
                Slot::Conn(t) => self.conns.get(t)?.as_ref().map(Conn::pollable),
            }
        }

        fn run(&mut self, zero_clock: ZeroClock) {
            let mut slots: Vec<Slot> = Vec::new();
            let mut batch: Vec<Slot> = Vec::with_capacity(POLL_BATCH);
            // A zero-duration clock is ready from its creation on (after one yield to the
            // host's runtime on its first poll), so a poll that includes it never blocks.
            let mut zero = subscribe_duration(0);
            loop {
                slots.clear();
                slots.push(Slot::Accept);
                slots.extend(
                    self.conns
                        .iter()
                        .enumerate()
                        .filter(|(_, c)| c.is_some())
                        .map(|(t, _)| Slot::Conn(t)),
                );

                // Non-blocking sweep: batches of at most 32 plus the zero clock, each batch
                // served as soon as it is polled.
                let mut found = false;
                if zero_clock == ZeroClock::PerSweep {
                    zero = subscribe_duration(0);
                }
                for chunk in slots.chunks(POLL_BATCH) {
                    batch.clear();
                    if zero_clock == ZeroClock::PerPoll {
                        zero = subscribe_duration(0);
                    }
                    let mut hits = {
                        let mut list: Vec<&Pollable> = Vec::with_capacity(chunk.len() + 1);
                        for &slot in chunk {
                            // A connection closed earlier in this sweep has no pollable.
                            if let Some(p) = self.pollable(slot) {
                                list.push(p);
                                batch.push(slot);
                            }
                        }
                        list.push(&zero);
                        poll(&list)
                    };
                    hits.sort_unstable();
                    for &i in &hits {
                        if let Some(&slot) = batch.get(i as usize) {
                            found = true;
                            self.serve(slot);
                        }
                    }
                }

                if !found {
                    // Nothing ready anywhere: block on everything (the list is never empty:
                    // the listener is always in it).
                    let mut hits = {
                        let list: Vec<&Pollable> =
                            slots.iter().filter_map(|&s| self.pollable(s)).collect();
                        poll(&list)
                    };
                    hits.sort_unstable();
                    for &i in &hits {
                        if let Some(&slot) = slots.get(i as usize) {
                            self.serve(slot);
                        }
                    }
                }
            }
        }

        fn serve(&mut self, slot: Slot) {
            match slot {
                Slot::Accept => self.accept_all(),
                Slot::Conn(t) => {
                    let step = match self.conns.get_mut(t) {
                        Some(Some(conn)) => conn.ready(),
                        _ => return,
                    };
                    if let Step::Close = step {
                        self.close(t);
                    }
                }
            }
        }

        fn accept_all(&mut self) {
            loop {
                let (socket, input, output) = match self.listener.accept() {
                    Ok(triple) => triple,
                    // WouldBlock, or out of handles: try again on the next wake.
                    Err(_) => return,
                };
                let conn = Conn {
                    read_ready: input.subscribe(),
                    write_ready: output.subscribe(),
                    input,
                    output,
                    socket,
                    heads: HeadCounter::default(),
                    out: Vec::new(),
                };
                match self.free.pop() {
                    Some(t) => {
                        if let Some(slot) = self.conns.get_mut(t) {
                            *slot = Some(conn);
                        }
                    }
                    None => self.conns.push(Some(conn)),
                }
            }
        }

        fn close(&mut self, t: usize) {
            if let Some(slot) = self.conns.get_mut(t) {
                if let Some(conn) = slot.take() {
                    let _ = conn.socket.shutdown(ShutdownType::Both);
                    // Dropped field by field in declaration order: pollables, streams, socket.
                    drop(conn);
                    self.free.push(t);
                }
            }
        }
    }
}
