//! Starts the real `weft` binary on the conformance fixture site and runs
//! `compress_roundtrip.py`, which decodes weft's gzip and deflate responses with Python's
//! gzip/zlib modules (independent decoders) and curl --compressed when installed, and checks
//! that a streamed /sheep arrives decodable line by line as it is produced.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn gzip_and_deflate_decode_with_python() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let site = root.join("conformance/fixtures/site");
    let script = root.join("crates/weft-server/tests/compress_roundtrip.py");
    if Command::new("python3").arg("--version").output().is_err() {
        assert!(
            std::env::var_os("WEFT_SKIP_PYTHON").is_some(),
            "python3 is needed for the independent decoder round trip (set WEFT_SKIP_PYTHON=1 to skip)"
        );
        return;
    }
    let mut child = Command::new(env!("CARGO_BIN_EXE_weft"))
        .args(["serve"])
        .arg(&site)
        .args(["--listen", "127.0.0.1:0", "--workers", "1", "--quiet"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start weft");
    let stdout = child.stdout.take().expect("stdout");
    let server = Server(child);
    let mut line = String::new();
    BufReader::new(stdout)
        .read_line(&mut line)
        .expect("listening line");
    let port = line
        .trim()
        .trim_end_matches('/')
        .rsplit(':')
        .next()
        .expect("port")
        .to_string();
    let out = Command::new("python3")
        .arg(&script)
        .arg(&port)
        .arg(&site)
        .output()
        .expect("run python3");
    print!("{}", String::from_utf8_lossy(&out.stdout));
    eprint!("{}", String::from_utf8_lossy(&out.stderr));
    drop(server);
    assert!(out.status.success(), "round trip failed");
}
