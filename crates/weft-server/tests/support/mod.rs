//! The real `weft` binary for integration tests: started on a free loopback port, killed when
//! dropped.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct Server {
    child: Child,
    pub addr: SocketAddr,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The conformance fixture site.
pub fn fixture_site() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../conformance/fixtures/site")
}

/// Starts `weft serve` with `args` (after `serve`) plus `--listen 127.0.0.1:0 --quiet`, and
/// waits for its listening line.
pub fn start(args: &[&str]) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .arg("serve")
        .args(args)
        .args(["--listen", "127.0.0.1:0", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start weft");
    let stdout = child.stdout.take().expect("stdout");
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line).expect("read");
    let addr = line
        .trim()
        .strip_prefix("weft: listening on http://")
        .and_then(|s| s.strip_suffix('/'))
        .expect("listening line")
        .parse()
        .expect("address");
    Server { child, addr }
}
