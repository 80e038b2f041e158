//! `weft-host`: serves weft's demo routes through the engine component.

#![forbid(unsafe_code)]

use std::path::PathBuf;
use std::time::Duration;

use weft_host::server::{HostConfig, Server};

const USAGE: &str = "\
usage: weft-host [--listen ADDR] [--engine PATH] [--root DIR] [--header-timeout SECS]
                 [--idle-timeout SECS] [--body-timeout SECS] [--send-timeout SECS]
                 [--ws-ping-interval SECS] [--ws-ping-timeout SECS] [--ws-origin ORIGIN]...
                 [--conns-per-instance N] [--call-limit-ms MS]

Serves /hello, /echo, /sheep, /api/users/:id and /ws/echo (and files below --root) with weft's
protocol engine, a WebAssembly component run by wasmtime. Prints
`weft: listening on http://ADDR/` once bound.

  --listen ADDR            default 127.0.0.1:8080 (port 0: any free port)
  --engine PATH            the engine component (default: target/weft-engine.wasm, as
                           scripts/build-engine writes it)
  --conns-per-instance N   connections sharing one engine instance: what a trap costs (256)
  --call-limit-ms MS       a turn of calls into the engine running longer traps (1000)";

fn secs(v: &str) -> Result<Duration, String> {
    v.parse::<f64>()
        .ok()
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .ok_or_else(|| format!("bad duration {v:?} (seconds)"))
}

/// `target/weft-engine.wasm` (where scripts/build-engine writes it) seen from the binary in
/// `target/release/`, else from the current directory.
fn default_engine() -> PathBuf {
    let built = std::env::current_exe().ok().and_then(|p| {
        p.parent()
            .and_then(|d| d.parent())
            .map(|t| t.join("weft-engine.wasm"))
    });
    match built {
        Some(p) if p.is_file() => p,
        _ => PathBuf::from("target/weft-engine.wasm"),
    }
}

fn parse(args: Vec<String>) -> Result<Option<HostConfig>, String> {
    let mut c = HostConfig {
        engine: default_engine(),
        ..HostConfig::default()
    };
    let mut it = args.into_iter();
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "-h" | "--help" => return Ok(None),
            "--listen" => {
                let v = value()?;
                c.listen = v.parse().map_err(|_| format!("bad address {v:?}"))?;
            }
            "--engine" => c.engine = value()?.into(),
            "--root" => c.app.root = Some(value()?.into()),
            "--header-timeout" => c.header_timeout = Some(secs(&value()?)?),
            "--idle-timeout" => c.idle_timeout = Some(secs(&value()?)?),
            "--body-timeout" => c.body_timeout = Some(secs(&value()?)?),
            "--send-timeout" => c.send_timeout = Some(secs(&value()?)?),
            "--ws-ping-interval" => c.ws_ping_interval = Some(secs(&value()?)?),
            "--ws-ping-timeout" => c.ws_ping_timeout = Some(secs(&value()?)?),
            "--ws-origin" => c.app.ws_origins.push(value()?),
            "--conns-per-instance" => {
                let v = value()?;
                c.conns_per_instance = v
                    .parse()
                    .ok()
                    .filter(|n| *n >= 1)
                    .ok_or_else(|| format!("bad count {v:?}"))?;
            }
            "--call-limit-ms" => {
                let v = value()?;
                let ms: u64 = v.parse().map_err(|_| format!("bad count {v:?}"))?;
                c.call_limit = Duration::from_millis(ms.max(1));
            }
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    Ok(Some(c))
}

fn main() {
    let config = match parse(std::env::args().skip(1).collect()) {
        Ok(Some(c)) => c,
        Ok(None) => {
            println!("{USAGE}");
            return;
        }
        Err(e) => {
            eprintln!("weft-host: {e}\n\n{USAGE}");
            std::process::exit(2);
        }
    };
    let mut server = match Server::bind(config) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("weft-host: {e:#}");
            std::process::exit(1);
        }
    };
    match server.local_addr() {
        Ok(addr) => println!("weft: listening on http://{addr}/"),
        Err(e) => {
            eprintln!("weft-host: {e}");
            std::process::exit(1);
        }
    }
    if let Err(e) = server.run() {
        eprintln!("weft-host: {e:#}");
        std::process::exit(1);
    }
}
