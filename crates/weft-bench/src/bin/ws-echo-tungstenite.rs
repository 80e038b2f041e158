//! `ws-echo-tungstenite`: the WebSocket baseline for `scripts/bench` (and the stand-in server
//! that checks `scripts/autobahn` while weft has no WebSocket of its own).
//!
//! A tokio multi-thread runtime with one worker thread per core the process may run on (under
//! `taskset -c 0` that is one), tokio-tungstenite on every accepted connection, whatever the
//! request path: every text and binary message is sent back as it came; pings are answered
//! by tungstenite; a close is answered and ends the connection. No compression.
//!
//! Usage: `ws-echo-tungstenite [--listen ADDR] [--threads N]` (default `127.0.0.1:8082`;
//! port 0 picks a free one). Prints `ws-echo-tungstenite: listening on http://ADDR/` on stdout
//! once the socket is bound (the shape of weft's own line).

use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::tungstenite::Message;

const DEFAULT_LISTEN: &str = "127.0.0.1:8082";

struct Args {
    listen: SocketAddr,
    threads: usize,
}

fn usage() -> ExitCode {
    eprintln!("usage: ws-echo-tungstenite [--listen ADDR] [--threads N]");
    ExitCode::from(2)
}

fn parse_args() -> Result<Args, String> {
    let mut listen = DEFAULT_LISTEN.to_owned();
    let mut threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_owned(), Some(value.to_owned()))
            }
            _ => (arg.clone(), None),
        };
        let mut value = |what: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or(format!("{what} needs a value"))
        };
        match name.as_str() {
            "--listen" => listen = value("--listen")?,
            "--threads" => {
                let v = value("--threads")?;
                threads = v
                    .parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or(format!("bad --threads {v:?}"))?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    let listen = listen
        .parse()
        .map_err(|e| format!("bad --listen address {listen:?}: {e}"))?;
    Ok(Args { listen, threads })
}

async fn echo(stream: TcpStream) {
    let _ = stream.set_nodelay(true);
    let Ok(mut ws) = tokio_tungstenite::accept_async(stream).await else {
        return;
    };
    while let Some(message) = ws.next().await {
        let Ok(message) = message else { return };
        match message {
            Message::Text(_) | Message::Binary(_) => {
                if ws.send(message).await.is_err() {
                    return;
                }
            }
            // tungstenite queues the pong / the close reply itself; they go out on the next
            // read or flush, and a completed close ends the stream.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            Message::Close(_) => {
                let _ = ws.flush().await;
            }
        }
    }
}

async fn serve(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, _peer)) => {
                tokio::spawn(echo(stream));
            }
            Err(e) => {
                // EMFILE and friends: report and keep serving the connections we have.
                eprintln!("ws-echo-tungstenite: accept: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("ws-echo-tungstenite: {msg}");
            }
            return usage();
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_io()
        .enable_time()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("ws-echo-tungstenite: cannot build runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match TcpListener::bind(args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("ws-echo-tungstenite: cannot listen on {}: {e}", args.listen);
                return ExitCode::FAILURE;
            }
        };
        let local = listener.local_addr().unwrap_or(args.listen);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "ws-echo-tungstenite: listening on http://{local}/");
        let _ = out.flush();
        drop(out);
        serve(listener).await;
        ExitCode::SUCCESS
    })
}
