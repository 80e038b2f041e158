//! Servers the suite runs against.
//!
//! A [`Target`] is anything with a loopback address. [`ProcessTarget`]
//! starts a server process (the native `weft` binary, or `weft.wasm` under
//! wasmtime), learns its port from the first stdout line, sends its output
//! to a log file and kills it when dropped. [`AddrTarget`] is a server that
//! someone else runs.

use std::ffi::OsString;
use std::fs::File;
use std::io::{BufRead, BufReader, ErrorKind, Read, Seek, SeekFrom, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

/// The line a weft server prints first: `weft: listening on http://ADDR/`.
pub const LISTEN_PREFIX: &str = "weft: listening on http://";

/// The line `wasmtime serve` prints first, on stderr: `Serving HTTP on http://ADDR/`.
pub const WASMTIME_SERVE_PREFIX: &str = "Serving HTTP on http://";

/// Where a started server tells its address.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListenLine {
    /// The first stdout line is `weft: listening on http://ADDR/`.
    WeftStdout,
    /// The first stderr line is `Serving HTTP on http://ADDR/` (`wasmtime serve`).
    WasmtimeServeStderr,
}

/// A server under test.
pub trait Target: Send {
    /// Short name used in reports (`native`, `wasm`, `addr`).
    fn label(&self) -> &str;
    /// Where to connect.
    fn addr(&self) -> SocketAddr;
    /// Checks the server still runs and accepts a connection. With a
    /// non-zero `linger`, the fresh connection must also stay open that long
    /// (a dying process may still complete a handshake, then reset it).
    fn check_alive(&mut self, connect_timeout: Duration, linger: Duration) -> Result<(), String>;
    /// Starts the server again after it died. Targets the harness did not
    /// start cannot be restarted.
    fn restart(&mut self) -> Result<(), String>;
}

fn connect_check(addr: SocketAddr, timeout: Duration, linger: Duration) -> Result<(), String> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)
        .map_err(|e| format!("a fresh connection to {addr} failed: {e}"))?;
    if linger.is_zero() {
        return Ok(());
    }
    s.set_read_timeout(Some(linger))
        .map_err(|e| format!("set read timeout: {e}"))?;
    let mut byte = [0u8; 1];
    match s.read(&mut byte) {
        Ok(0) => Err(format!("a fresh connection to {addr} was closed at once")),
        Ok(_) => Ok(()),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(()),
        Err(e) => Err(format!("a fresh connection to {addr} failed: {e}")),
    }
}

/// A server already running on loopback.
pub struct AddrTarget {
    addr: SocketAddr,
}

impl AddrTarget {
    /// Resolves `host:port`, refusing anything that is not loopback.
    pub fn new(spec: &str) -> Result<AddrTarget, String> {
        let addrs: Vec<SocketAddr> = spec
            .to_socket_addrs()
            .map_err(|e| {
                format!("cannot resolve target address {spec:?}: {e} (want e.g. 127.0.0.1:8080)")
            })?
            .collect();
        let Some(first) = addrs.first().copied() else {
            return Err(format!("target address {spec:?} resolves to nothing"));
        };
        if let Some(bad) = addrs.iter().find(|a| !a.ip().is_loopback()) {
            return Err(format!(
                "refusing non-loopback target {bad} (from {spec:?}): the conformance suite only \
                 talks to servers on 127.0.0.0/8 or [::1]"
            ));
        }
        Ok(AddrTarget { addr: first })
    }
}

impl Target for AddrTarget {
    fn label(&self) -> &str {
        "addr"
    }
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn check_alive(&mut self, connect_timeout: Duration, linger: Duration) -> Result<(), String> {
        connect_check(self.addr, connect_timeout, linger)
    }
    fn restart(&mut self) -> Result<(), String> {
        Err("the harness did not start this server, so it cannot restart it".into())
    }
}

/// How to start a server process.
#[derive(Clone, Debug)]
pub struct ProcessSpec {
    pub label: String,
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub cwd: PathBuf,
    /// stdout (after the first line) and stderr go here.
    pub log: PathBuf,
    /// How long to wait for the listening line.
    pub startup_timeout: Duration,
    /// Where the listening line comes from.
    pub listen_line: ListenLine,
}

impl ProcessSpec {
    /// `weft serve SITE --listen 127.0.0.1:0 --workers 1` plus the timeouts and the CORS origin
    /// of `serve_args`.
    pub fn native(
        weft: &Path,
        site: &Path,
        root: &Path,
        startup_timeout: Duration,
    ) -> Result<ProcessSpec, String> {
        if !weft.is_file() {
            return Err(format!(
                "native target: weft binary not found at {} (build it with `cargo build --release -p weft-server`, or pass --weft PATH)",
                weft.display()
            ));
        }
        check_site(site)?;
        Ok(ProcessSpec {
            label: "native".into(),
            program: weft.to_path_buf(),
            args: serve_args(site.as_os_str().to_owned()),
            cwd: root.to_path_buf(),
            log: root.join("target").join("conformance-native.log"),
            startup_timeout,
            listen_line: ListenLine::WeftStdout,
        })
    }

    /// `wasmtime run -S inherit-network --dir SITE::/site weft.wasm serve /site --listen 127.0.0.1:0 --workers 1`
    /// plus the timeouts and the CORS origin of `serve_args`.
    pub fn wasm(
        wasmtime: Option<&Path>,
        wasm: &Path,
        site: &Path,
        root: &Path,
        startup_timeout: Duration,
    ) -> Result<ProcessSpec, String> {
        let wasmtime = find_wasmtime(wasmtime, "wasm")?;
        if !wasm.is_file() {
            return Err(format!(
                "wasm target: component not found at {} (build it with `cargo build --release --target wasm32-wasip2 -p weft-server`, or pass --wasm PATH)",
                wasm.display()
            ));
        }
        check_site(site)?;
        let mut dir = site.as_os_str().to_owned();
        dir.push("::/site");
        let mut args: Vec<OsString> = vec![
            "run".into(),
            "-S".into(),
            "inherit-network".into(),
            "--dir".into(),
            dir,
            wasm.as_os_str().to_owned(),
        ];
        args.extend(serve_args("/site".into()));
        Ok(ProcessSpec {
            label: "wasm".into(),
            program: wasmtime,
            args,
            cwd: root.to_path_buf(),
            log: root.join("target").join("conformance-wasm.log"),
            startup_timeout,
            listen_line: ListenLine::WeftStdout,
        })
    }

    /// `weft-host --root SITE --listen 127.0.0.1:0` plus the timeouts and the WebSocket
    /// settings of `serve_args`: weft's protocol engine as a component under the Rust host
    /// (crates/weft-host), compared with the rule of `run::ENGINE_HOST_DROPPED`.
    pub fn engine_host(
        host: &Path,
        site: &Path,
        root: &Path,
        startup_timeout: Duration,
    ) -> Result<ProcessSpec, String> {
        if !host.is_file() {
            return Err(format!(
                "engine-host target: weft-host not found at {} (build it with `cargo build --release -p weft-host`, or pass --engine-host PATH)",
                host.display()
            ));
        }
        check_site(site)?;
        let mut args: Vec<OsString> = vec![
            "--engine".into(),
            root.join("target")
                .join("weft-engine.wasm")
                .into_os_string(),
        ];
        args.extend(engine_host_args(site));
        Ok(ProcessSpec {
            label: "engine-host".into(),
            program: host.to_path_buf(),
            args,
            cwd: root.to_path_buf(),
            log: root.join("target").join("conformance-engine-host.log"),
            startup_timeout,
            listen_line: ListenLine::WeftStdout,
        })
    }

    /// `node js/weft-engine/bin/weft-node.js` with the arguments of `engine_host`: the same
    /// engine component transpiled by jco (`scripts/build-engine --js`) under the Node host,
    /// compared by the same rule.
    pub fn node_host(
        node: Option<&Path>,
        site: &Path,
        root: &Path,
        startup_timeout: Duration,
    ) -> Result<ProcessSpec, String> {
        let node = match node {
            Some(p) if p.is_file() => p.to_path_buf(),
            Some(p) => {
                return Err(format!(
                    "node-host target: node not found at {}",
                    p.display()
                ))
            }
            None => find_in_path("node").ok_or(
                "node-host target: `node` is not on PATH (Node 18 or later; or pass --node PATH)",
            )?,
        };
        let script = root.join("js/weft-engine/bin/weft-node.js");
        if !root.join("js/weft-engine/engine/weft-engine.js").is_file() {
            return Err(
                "node-host target: the engine's JavaScript bindings are not built (run `scripts/build-engine --js`)"
                    .into(),
            );
        }
        check_site(site)?;
        let mut args: Vec<OsString> = vec![script.into_os_string()];
        args.extend(engine_host_args(site));
        Ok(ProcessSpec {
            label: "node-host".into(),
            program: node,
            args,
            cwd: root.to_path_buf(),
            log: root.join("target").join("conformance-node-host.log"),
            startup_timeout,
            listen_line: ListenLine::WeftStdout,
        })
    }

    /// `wasmtime serve -Scli --addr 127.0.0.1:0 --dir SITE::/site --env WEFT_ROOT=/site
    /// --env WEFT_CORS_ORIGIN=http://allowed.example weft_http_fs.wasm`: the application
    /// with the options of `serve_args` that reach it.
    pub fn serve(
        wasmtime: Option<&Path>,
        component: &Path,
        site: &Path,
        root: &Path,
        startup_timeout: Duration,
    ) -> Result<ProcessSpec, String> {
        let wasmtime = find_wasmtime(wasmtime, "serve")?;
        if !component.is_file() {
            return Err(format!(
                "serve target: component not found at {} (build it with `cargo build --release --target wasm32-wasip2 -p weft-http-fs`, or pass --http-wasm PATH)",
                component.display()
            ));
        }
        check_site(site)?;
        let mut dir = site.as_os_str().to_owned();
        dir.push("::/site");
        let args: Vec<OsString> = vec![
            "serve".into(),
            "-Scli".into(),
            "--addr".into(),
            "127.0.0.1:0".into(),
            "--dir".into(),
            dir,
            "--env".into(),
            "WEFT_ROOT=/site".into(),
            "--env".into(),
            "WEFT_CORS_ORIGIN=http://allowed.example".into(),
            component.as_os_str().to_owned(),
        ];
        Ok(ProcessSpec {
            label: "serve".into(),
            program: wasmtime,
            args,
            cwd: root.to_path_buf(),
            log: root.join("target").join("conformance-serve.log"),
            startup_timeout,
            listen_line: ListenLine::WasmtimeServeStderr,
        })
    }
}

/// The wasmtime executable: `given`, else the one on PATH.
fn find_wasmtime(given: Option<&Path>, target: &str) -> Result<PathBuf, String> {
    match given {
        Some(p) if p.is_file() => Ok(p.to_path_buf()),
        Some(p) => Err(format!("{target} target: wasmtime not found at {}", p.display())),
        None => find_in_path("wasmtime").ok_or_else(|| {
            format!("{target} target: `wasmtime` is not on PATH (install wasmtime, e.g. `cargo install wasmtime-cli`, or pass --wasmtime PATH)")
        }),
    }
}

/// `--root SITE` and the flags every server under test shares (`common_args`): the engine
/// hosts are one thread (no `--workers`) and have no CORS middleware (no `--cors-origin`).
fn engine_host_args(site: &Path) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["--root".into(), site.as_os_str().to_owned()];
    args.extend(common_args());
    args
}

fn serve_args(site: OsString) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["serve".into(), site];
    args.extend(common_args());
    args.extend([
        "--workers".into(),
        "1".into(),
        // The one origin the CORS cases (conformance/cases/middleware/) treat as allowed;
        // documented in conformance/README.md.
        "--cors-origin".into(),
        "http://allowed.example".into(),
    ]);
    args
}

/// `--listen`, the timeouts and the WebSocket settings: the flags of every server under test.
fn common_args() -> Vec<OsString> {
    vec![
        "--listen".into(),
        "127.0.0.1:0".into(),
        // Short timeouts so the timeout cases (conformance/cases/timeouts/) run in seconds;
        // documented in conformance/README.md.
        "--header-timeout".into(),
        "2".into(),
        "--idle-timeout".into(),
        "4".into(),
        "--body-timeout".into(),
        "2".into(),
        // WebSocket idle pings after 2 s, an unanswered one ends the session after 1 s more
        // (conformance/cases/websocket/idle-*).
        "--ws-ping-interval".into(),
        "2".into(),
        "--ws-ping-timeout".into(),
        "1".into(),
        // The one origin the WebSocket origin cases accept (websocket/origin-*).
        "--ws-origin".into(),
        "http://allowed.example".into(),
    ]
}

fn check_site(site: &Path) -> Result<(), String> {
    if site.is_dir() {
        pin_times(site)
            .map_err(|e| format!("setting the fixture times under {}: {e}", site.display()))
    } else {
        Err(format!("fixture site not found at {}", site.display()))
    }
}

/// The modification time every fixture file and directory gets before a server starts:
/// 2024-01-01 00:00:00.123456789 UTC. Validators (`ETag`, `Last-Modified`) and listing dates
/// derive from it, so they are the same on every checkout, every run and both builds, and
/// the `static/` cases can spell them out (documented in conformance/README.md).
pub const FIXTURE_MTIME: Duration = Duration::new(1_704_067_200, 123_456_789);

/// Sets the modification time of everything under `dir` (and `dir`) to [`FIXTURE_MTIME`].
pub fn pin_times(dir: &Path) -> std::io::Result<()> {
    let when = std::time::UNIX_EPOCH + FIXTURE_MTIME;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            pin_times(&path)?;
        } else if kind.is_file() {
            std::fs::File::options()
                .write(true)
                .open(&path)?
                .set_modified(when)?;
        }
    }
    // A directory opened for reading can have its times set (futimens on its descriptor).
    std::fs::File::open(dir)?.set_modified(when)
}

fn find_in_path(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

/// Parses `weft: listening on http://127.0.0.1:PORT/`.
pub fn parse_listen_line(line: &str) -> Result<SocketAddr, String> {
    parse_address_line(line, LISTEN_PREFIX)
}

/// Parses `PREFIX127.0.0.1:PORT/`.
fn parse_address_line(line: &str, prefix: &str) -> Result<SocketAddr, String> {
    let bad = || format!("unexpected first line {line:?} (want \"{prefix}127.0.0.1:PORT/\")");
    let rest = line
        .trim_end_matches(['\r', '\n'])
        .strip_prefix(prefix)
        .ok_or_else(bad)?;
    let hostport = rest.strip_suffix('/').ok_or_else(bad)?;
    let addr: SocketAddr = hostport.parse().map_err(|_| bad())?;
    if !addr.ip().is_loopback() {
        return Err(format!(
            "server listens on non-loopback {addr}; refusing to test it"
        ));
    }
    Ok(addr)
}

/// A server process started (and owned) by the harness.
pub struct ProcessTarget {
    spec: ProcessSpec,
    child: Option<Child>,
    addr: SocketAddr,
    starts: usize,
}

impl ProcessTarget {
    /// Starts the process and waits for its listening line.
    pub fn start(spec: ProcessSpec) -> Result<ProcessTarget, String> {
        let mut t = ProcessTarget {
            spec,
            child: None,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            starts: 0,
        };
        t.spawn()?;
        Ok(t)
    }

    pub fn log_path(&self) -> &Path {
        &self.spec.log
    }

    fn spawn(&mut self) -> Result<(), String> {
        let log_err =
            |e: std::io::Error| format!("cannot open log {}: {e}", self.spec.log.display());
        if let Some(dir) = self.spec.log.parent() {
            std::fs::create_dir_all(dir).map_err(log_err)?;
        }
        let mut log = if self.starts == 0 {
            File::create(&self.spec.log).map_err(log_err)?
        } else {
            File::options()
                .append(true)
                .open(&self.spec.log)
                .map_err(log_err)?
        };
        self.starts += 1;
        let _ = writeln!(
            log,
            "--- weft-conformance: start #{} of {} ---",
            self.starts, self.spec.label
        );
        let other = log.try_clone().map_err(log_err)?;
        let (stdout, stderr) = match self.spec.listen_line {
            ListenLine::WeftStdout => (Stdio::piped(), Stdio::from(other)),
            ListenLine::WasmtimeServeStderr => (Stdio::from(other), Stdio::piped()),
        };
        let mut child = Command::new(&self.spec.program)
            .args(&self.spec.args)
            .current_dir(&self.spec.cwd)
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .map_err(|e| {
                format!(
                    "{}: cannot start {}: {e}",
                    self.spec.label,
                    self.spec.program.display()
                )
            })?;
        let piped: Box<dyn Read + Send> = match self.spec.listen_line {
            ListenLine::WeftStdout => Box::new(child.stdout.take().expect("piped stdout")),
            ListenLine::WasmtimeServeStderr => Box::new(child.stderr.take().expect("piped stderr")),
        };
        let prefix = match self.spec.listen_line {
            ListenLine::WeftStdout => LISTEN_PREFIX,
            ListenLine::WasmtimeServeStderr => WASMTIME_SERVE_PREFIX,
        };
        let (tx, rx) = mpsc::channel();
        // Reads the listening line, then keeps draining stdout into the log so
        // the server never blocks on a full pipe.
        thread::spawn(move || {
            let mut reader = BufReader::new(piped);
            let mut first = String::new();
            match reader.read_line(&mut first) {
                Ok(0) => {
                    let _ = tx.send(Err(
                        "exited (or closed stdout) before printing its listening line".to_string(),
                    ));
                    return;
                }
                Ok(_) => {
                    let _ = tx.send(Ok(first.clone()));
                    let _ = log.write_all(first.as_bytes());
                }
                Err(e) => {
                    let _ = tx.send(Err(format!("reading its stdout failed: {e}")));
                    return;
                }
            }
            let mut buf = [0u8; 8192];
            while let Ok(n) = reader.read(&mut buf) {
                if n == 0 || log.write_all(&buf[..n]).is_err() {
                    break;
                }
            }
        });
        self.child = Some(child);
        let outcome = match rx.recv_timeout(self.spec.startup_timeout) {
            Ok(Ok(line)) => parse_address_line(&line, prefix),
            Ok(Err(e)) => Err(e),
            Err(_) => Err(format!(
                "printed no listening line within {} s",
                self.spec.startup_timeout.as_secs_f64()
            )),
        };
        match outcome {
            Ok(addr) => {
                self.addr = addr;
                Ok(())
            }
            Err(e) => {
                let status = self.kill();
                Err(format!(
                    "{} server {}{}; command: {}\n{}",
                    self.spec.label,
                    e,
                    status.map(|s| format!(" ({s})")).unwrap_or_default(),
                    self.command_line(),
                    self.log_tail()
                ))
            }
        }
    }

    fn command_line(&self) -> String {
        let mut s = self.spec.program.display().to_string();
        for a in &self.spec.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }

    /// The last lines of the log, indented, for error messages.
    pub fn log_tail(&self) -> String {
        let Ok(mut f) = File::open(&self.spec.log) else {
            return String::new();
        };
        let len = f.metadata().map(|m| m.len()).unwrap_or(0);
        let _ = f.seek(SeekFrom::Start(len.saturating_sub(2000)));
        let mut buf = Vec::new();
        let _ = f.read_to_end(&mut buf);
        let text = String::from_utf8_lossy(&buf);
        let lines: Vec<&str> = text.lines().collect();
        let tail = &lines[lines.len().saturating_sub(15)..];
        let mut out = format!("    last lines of {}:\n", self.spec.log.display());
        for l in tail {
            out.push_str("    | ");
            out.push_str(l);
            out.push('\n');
        }
        out
    }

    /// Kills the process (if running) and returns how it ended.
    fn kill(&mut self) -> Option<String> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(format!("exit status: {status}"));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }
}

impl Target for ProcessTarget {
    fn label(&self) -> &str {
        &self.spec.label
    }
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn check_alive(&mut self, connect_timeout: Duration, linger: Duration) -> Result<(), String> {
        let probe = connect_check(self.addr, connect_timeout, linger);
        match self.child.as_mut().map(|c| c.try_wait()) {
            None => Err("process is not running".into()),
            Some(Ok(Some(status))) => Err(format!("process exited ({status})")),
            Some(Err(e)) => Err(format!("cannot query process: {e}")),
            Some(Ok(None)) => probe,
        }
    }
    fn restart(&mut self) -> Result<(), String> {
        self.kill();
        self.spawn()
    }
}

impl Drop for ProcessTarget {
    fn drop(&mut self) {
        self.kill();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listen_line() {
        assert_eq!(
            parse_listen_line("weft: listening on http://127.0.0.1:8080/\n").unwrap(),
            "127.0.0.1:8080".parse().unwrap()
        );
        assert!(parse_listen_line("weft: listening on http://127.0.0.1:8080").is_err());
        assert_eq!(
            parse_address_line(
                "Serving HTTP on http://127.0.0.1:42/\n",
                WASMTIME_SERVE_PREFIX
            )
            .unwrap(),
            "127.0.0.1:42".parse().unwrap()
        );
        assert!(parse_listen_line("listening on 8080").is_err());
        assert!(parse_listen_line("weft: listening on http://10.0.0.1:80/").is_err());
        assert_eq!(
            parse_listen_line("weft: listening on http://[::1]:9/").unwrap(),
            "[::1]:9".parse().unwrap()
        );
    }

    #[test]
    fn addr_target_refuses_non_loopback() {
        assert!(AddrTarget::new("127.0.0.1:1").is_ok());
        assert!(AddrTarget::new("[::1]:1").is_ok());
        let e = AddrTarget::new("192.0.2.1:80").err().unwrap();
        assert!(e.contains("non-loopback"), "{e}");
        assert!(AddrTarget::new("127.0.0.1").is_err());
    }
}
