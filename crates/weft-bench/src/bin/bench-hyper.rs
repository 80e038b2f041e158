//! `bench-hyper`: the hyper 1.x baseline for `scripts/bench`.
//!
//! A hello-world server on a tokio current_thread runtime (one core, like `weft --workers 1`),
//! or with `--threads N` (N > 1) a multi-thread runtime of N workers (like `weft --workers N`):
//! HTTP/1.1 only, keep-alive on, pipelined responses flushed together (`pipeline_flush(true)`).
//! Every request gets `200 OK`, `Content-Type: text/plain`, body `Hello, world!`.
//!
//! Usage: `bench-hyper [--listen ADDR] [--threads N]` (default `127.0.0.1:8081`, 1 thread).
//! Prints `listening on ADDR` once the socket is bound.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const BODY: &[u8] = b"Hello, world!";
const DEFAULT_LISTEN: &str = "127.0.0.1:8081";

fn usage() -> ExitCode {
    eprintln!("usage: bench-hyper [--listen ADDR] [--threads N]");
    ExitCode::from(2)
}

fn parse_threads(value: &str) -> Result<usize, String> {
    match value.parse() {
        Ok(n) if n >= 1 => Ok(n),
        _ => Err(format!("bad --threads value {value:?}: a positive number")),
    }
}

fn parse_args() -> Result<(SocketAddr, usize), String> {
    let mut listen = DEFAULT_LISTEN.to_owned();
    let mut threads = 1;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--listen" => {
                listen = args.next().ok_or("--listen needs an address")?;
            }
            "--threads" => {
                threads = parse_threads(&args.next().ok_or("--threads needs a number")?)?;
            }
            "-h" | "--help" => return Err(String::new()),
            other => {
                if let Some(value) = other.strip_prefix("--listen=") {
                    listen = value.to_owned();
                } else if let Some(value) = other.strip_prefix("--threads=") {
                    threads = parse_threads(value)?;
                } else {
                    return Err(format!("unknown argument: {other}"));
                }
            }
        }
    }
    let addr = listen
        .parse()
        .map_err(|e| format!("bad --listen address {listen:?}: {e}"))?;
    Ok((addr, threads))
}

async fn hello(_req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let mut response = Response::new(Full::new(Bytes::from_static(BODY)));
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(response)
}

async fn serve(listener: TcpListener) {
    let mut builder = http1::Builder::new();
    builder.keep_alive(true).pipeline_flush(true);
    loop {
        let (stream, _peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(e) => {
                // EMFILE and friends: report and keep serving the connections we have.
                eprintln!("bench-hyper: accept: {e}");
                tokio::task::yield_now().await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let builder = builder.clone();
        tokio::task::spawn(async move {
            // Client resets and aborted connections are normal at the end of a wrk run.
            let _ = builder
                .serve_connection(TokioIo::new(stream), service_fn(hello))
                .await;
        });
    }
}

fn main() -> ExitCode {
    let (addr, threads) = match parse_args() {
        Ok(parsed) => parsed,
        Err(msg) => {
            if !msg.is_empty() {
                eprintln!("bench-hyper: {msg}");
            }
            return usage();
        }
    };
    let runtime = if threads == 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_io()
            .build()
    };
    let runtime = match runtime {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("bench-hyper: cannot build runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let listener = match TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("bench-hyper: cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let local = listener.local_addr().unwrap_or(addr);
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "listening on {local}");
        let _ = out.flush();
        drop(out);
        serve(listener).await;
        ExitCode::SUCCESS
    })
}
