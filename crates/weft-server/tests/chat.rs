//! The chat room through the real binary: members on different workers see each other, and a
//! member that stops reading is closed (1008) instead of holding the room or growing memory.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use support::Server;

fn start(workers: &str) -> Server {
    support::start(&["--workers", workers])
}

/// A masked client frame.
fn frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mask = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![0x80 | opcode];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n < 65536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&mask);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
    out
}

struct Client {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Client {
    fn connect(addr: SocketAddr, room: &str) -> Client {
        let mut stream = TcpStream::connect(addr).expect("connect");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        write!(
            stream,
            "GET /ws/chat?room={room} HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        )
        .expect("handshake");
        let mut client = Client {
            stream,
            buf: Vec::new(),
        };
        let end = loop {
            if let Some(i) = client.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            client.fill();
        };
        let head = String::from_utf8_lossy(&client.buf[..end]).to_string();
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        client.buf.drain(..end);
        client
    }

    fn fill(&mut self) {
        let mut chunk = [0u8; 65536];
        let n = self.stream.read(&mut chunk).expect("read");
        assert!(n > 0, "connection closed");
        self.buf.extend_from_slice(&chunk[..n]);
    }

    fn send_text(&mut self, text: &str) {
        self.stream
            .write_all(&frame(1, text.as_bytes()))
            .expect("send");
    }

    /// The next server frame: (opcode, payload). Server frames are unmasked.
    fn next_frame(&mut self) -> (u8, Vec<u8>) {
        loop {
            if self.buf.len() >= 2 {
                let (len, start) = match self.buf[1] & 0x7f {
                    126 if self.buf.len() >= 4 => {
                        (u16::from_be_bytes([self.buf[2], self.buf[3]]) as usize, 4)
                    }
                    127 if self.buf.len() >= 10 => {
                        let mut b = [0u8; 8];
                        b.copy_from_slice(&self.buf[2..10]);
                        (u64::from_be_bytes(b) as usize, 10)
                    }
                    n if n < 126 => (n as usize, 2),
                    _ => (usize::MAX, 0),
                };
                if len != usize::MAX && self.buf.len() >= start + len {
                    let opcode = self.buf[0] & 0x0f;
                    let payload = self.buf[start..start + len].to_vec();
                    self.buf.drain(..start + len);
                    return (opcode, payload);
                }
            }
            self.fill();
        }
    }
}

#[test]
fn members_on_different_workers_share_the_room() {
    let server = start("2");
    // Enough members that both workers (SO_REUSEPORT spreads connections) hold some.
    let mut members: Vec<Client> = (0..8)
        .map(|_| Client::connect(server.addr, "shared"))
        .collect();
    let mut other = Client::connect(server.addr, "elsewhere");
    members[3].send_text("hello from 3");
    for member in members.iter_mut() {
        assert_eq!(member.next_frame(), (1, b"hello from 3".to_vec()));
    }
    // Another room hears nothing: its next frame is its own message.
    other.send_text("mine");
    assert_eq!(other.next_frame(), (1, b"mine".to_vec()));
}

#[test]
fn a_member_that_stops_reading_is_closed_with_1008() {
    let server = start("1");
    let mut slow = Client::connect(server.addr, "slow");
    slow.stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let mut fast = Client::connect(server.addr, "slow");
    // 4 KiB messages: the slow member's socket buffers and 64 KiB of output fill, then its
    // mailbox (256 messages / 1 MiB) overflows.
    let text = "x".repeat(4096);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut sent = 0;
    while sent < 2000 && Instant::now() < deadline {
        fast.send_text(&text);
        // The fast member keeps up: it reads its own copy of each message.
        assert_eq!(fast.next_frame().0, 1);
        sent += 1;
    }
    assert_eq!(sent, 2000, "the room stalled behind the slow member");
    // The slow member now reads: messages, then Close 1008, then the end of the stream.
    let mut texts = 0;
    loop {
        let (opcode, payload) = slow.next_frame();
        if opcode == 8 {
            assert_eq!(payload.get(..2), Some(&[0x03, 0xf0][..]), "close 1008");
            break;
        }
        assert_eq!(opcode, 1);
        texts += 1;
    }
    assert!(
        texts < 2000,
        "the slow member got everything: nothing was bounded"
    );
}
