//! The fuzz pass against toy servers on loopback: a healthy one, and one
//! that dies on a NUL byte (which the pass must find, name and save).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use weft_conformance::fuzz::{generate, run_fuzz, Entry, FuzzSettings};
use weft_conformance::target::Target;

/// What a NUL byte in the input does to a toy server.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Nul {
    Harmless,
    /// It dies: stops accepting and closes its listener.
    Kills,
    /// It hangs: still accepts, never answers again.
    Hangs,
}

/// A toy HTTP server: answers every request head with an empty 200.
struct Toy {
    addr: SocketAddr,
    dead: Arc<AtomicBool>,
    fragile: Nul,
    starts: usize,
}

impl Toy {
    fn start(fragile: Nul) -> Toy {
        let mut t = Toy {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            dead: Arc::new(AtomicBool::new(false)),
            fragile,
            starts: 0,
        };
        t.spawn();
        t
    }

    fn spawn(&mut self) {
        self.starts += 1;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        self.addr = listener.local_addr().unwrap();
        let dead = Arc::new(AtomicBool::new(false));
        self.dead = dead.clone();
        let fragile = self.fragile;
        thread::spawn(move || {
            while fragile == Nul::Hangs || !dead.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => {
                        let dead = dead.clone();
                        thread::spawn(move || conn(s, &dead, fragile));
                    }
                    Err(_) => thread::sleep(Duration::from_millis(1)),
                }
            }
            // Dropping the listener refuses new connections.
        });
    }
}

fn conn(mut s: TcpStream, dead: &AtomicBool, fragile: Nul) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        if dead.load(Ordering::SeqCst) {
            if fragile == Nul::Hangs {
                // Hold the connection without answering.
                thread::sleep(Duration::from_secs(1));
            }
            return;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
        if fragile != Nul::Harmless && buf.contains(&0) {
            dead.store(true, Ordering::SeqCst);
            return;
        }
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            if s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")
                .is_err()
            {
                return;
            }
        }
    }
}

impl Target for Toy {
    fn label(&self) -> &str {
        "toy"
    }
    fn addr(&self) -> SocketAddr {
        self.addr
    }
    fn check_alive(&mut self, connect_timeout: Duration, linger: Duration) -> Result<(), String> {
        // Like a real probe connection that must stay open a moment: a
        // dying server has that long to die.
        thread::sleep(linger);
        if self.fragile == Nul::Kills && self.dead.load(Ordering::SeqCst) {
            return Err("toy server died".into());
        }
        TcpStream::connect_timeout(&self.addr, connect_timeout)
            .map(drop)
            .map_err(|e| e.to_string())
    }
    fn restart(&mut self) -> Result<(), String> {
        self.spawn();
        Ok(())
    }
}

fn corpus() -> Vec<Entry> {
    vec![
        (
            "a".into(),
            b"GET /hello.txt HTTP/1.1\r\nHost: localhost\r\n\r\n".to_vec(),
        ),
        (
            "b".into(),
            b"GET /x HTTP/1.1\r\nHost: localhost\r\n\r\nGET /y HTTP/1.1\r\n\r\n".to_vec(),
        ),
    ]
}

fn settings(count: usize, seed: u64, dir: &std::path::Path) -> FuzzSettings {
    let mut s = FuzzSettings::new(count, seed, dir.to_path_buf());
    s.read_timeout = Duration::from_millis(50);
    s
}

fn temp_dir(name: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("weft-fuzz-test-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

#[test]
fn healthy_target_passes() {
    let dir = temp_dir("healthy");
    let mut t = Toy::start(Nul::Harmless);
    let rep = run_fuzz(&mut t, &corpus(), &settings(120, 3, &dir), "toy");
    assert_eq!(rep.inputs, 120);
    assert_eq!(rep.deaths, 0, "{rep:?}");
    assert!(rep.passed(), "{rep:?}");
    assert_eq!(t.starts, 1);
    assert!(rep
        .summary("toy", 3)
        .starts_with("fuzz toy: 120 inputs, 0 deaths, 0 bad responses (seed 3,"));
}

#[test]
fn a_killing_input_is_found_and_saved() {
    let dir = temp_dir("fragile");
    let c = corpus();
    let mut t = Toy::start(Nul::Kills);
    let rep = run_fuzz(&mut t, &c, &settings(50, 11, &dir), "toy");
    assert!(rep.deaths >= 1, "{rep:?}");
    assert!(!rep.passed());
    assert!(t.starts >= 2, "the target was restarted");
    // Each culprit found by the one-at-a-time replay is saved with its
    // delivery, and is the input the generator makes for that index.
    let mut found = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let Some(k) = name
            .strip_prefix("fuzz-crash-")
            .and_then(|n| n.strip_suffix(".bin"))
            .and_then(|n| n.parse::<usize>().ok())
        else {
            continue;
        };
        found += 1;
        let bytes = std::fs::read(dir.join(&name)).unwrap();
        assert!(bytes.contains(&0), "{name}");
        let input = generate(&c, 11, k);
        let all: Vec<u8> = input.conns.iter().flat_map(|x| x.bytes.clone()).collect();
        assert_eq!(bytes, all);
        let desc = std::fs::read_to_string(dir.join(format!("fuzz-crash-{k}.txt"))).unwrap();
        assert!(
            desc.starts_with(&format!("fuzz input {k} of seed 11: ")),
            "{desc}"
        );
    }
    assert!(found >= 1, "no fuzz-crash-K.bin in {}", dir.display());
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_hanging_target_counts_as_dead() {
    let dir = temp_dir("hang");
    let mut t = Toy::start(Nul::Hangs);
    let mut s = settings(50, 11, &dir);
    s.probe_timeout = Duration::from_millis(100);
    let rep = run_fuzz(&mut t, &corpus(), &s, "toy");
    assert!(rep.deaths >= 1, "{rep:?}");
    assert!(t.starts >= 2, "the hung target was restarted");
    let _ = std::fs::remove_dir_all(&dir);
}
