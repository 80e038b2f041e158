//! A test driver for [`WebSocket`]: it does what a real driver does (a `Vec<u8>` read buffer,
//! `next_event` until `NeedData`/`Closed`, consumed bytes removed after each event,
//! `transmit`/`advance_transmit`), with a simulated clock; plus a client-side frame builder
//! and a reader for the server's frames.
//!
//! Every codec test goes through [`check`], which feeds the input whole, byte by byte (also
//! with [`WebSocket::release_memory`] between bytes), and whole followed by a pipelined second
//! frame, and asserts that all of them give the same events and the same output.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use weft_core::ws::{WebSocket, WsConfig, WsError, WsEvent};

/// The masking key of the frames the tests build.
pub const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// An owned event; `NeedData` is not recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ev {
    Text(String),
    Binary(Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<u16>, String),
    Closed,
    Error(WsError),
}

pub fn text(s: &str) -> Ev {
    Ev::Text(s.to_string())
}

pub fn error(code: u16) -> impl Fn(&Ev) -> bool {
    move |ev| matches!(ev, Ev::Error(e) if e.close_code().as_u16() == code)
}

pub struct WsHarness {
    pub ws: WebSocket,
    /// Answers every message through the sender lent with its event
    /// ([`WebSocket::next_event_and_sender`]), while the event still borrows the message.
    pub echo: bool,
    /// Calls [`WebSocket::release_memory`] after every pump, as a driver does when a read
    /// left no input: it must change nothing but memory.
    pub release: bool,
    pub buf: Vec<u8>,
    pub start: Instant,
    pub elapsed: Duration,
    pub out: Vec<u8>,
    pub events: Vec<Ev>,
}

impl WsHarness {
    pub fn new(config: WsConfig) -> WsHarness {
        let start = Instant::now();
        WsHarness {
            ws: WebSocket::new(config, start),
            echo: false,
            release: false,
            buf: Vec::new(),
            start,
            elapsed: Duration::ZERO,
            out: Vec::new(),
            events: Vec::new(),
        }
    }

    pub fn now(&self) -> Instant {
        self.start + self.elapsed
    }

    /// Calls `next_event` until `NeedData` or a terminal event, as a driver does.
    pub fn pump(&mut self) {
        for _ in 0..1_000_000 {
            let now = self.now();
            let echo = self.echo;
            let (ev, n) = match self.ws.next_event_and_sender(&self.buf, now) {
                Err(err) => {
                    assert!(self.ws.is_closed(), "an error closes the session");
                    assert_eq!(
                        self.ws.next_event(b"\x81\x80abcd", now).err(),
                        Some(err),
                        "errors are sticky"
                    );
                    if self.events.last() != Some(&Ev::Error(err)) {
                        self.events.push(Ev::Error(err));
                    }
                    break;
                }
                Ok((event, n, sender)) => {
                    assert!(n <= self.buf.len(), "consumed more than the input");
                    if echo {
                        // The sender is used while `event` borrows the message.
                        let sent = match event {
                            WsEvent::Text(t) => sender.send_text(t, now),
                            WsEvent::Binary(b) => sender.send_binary(b, now),
                            _ => Ok(()),
                        };
                        assert_eq!(sent, Ok(()), "an echo is sent");
                    }
                    let ev = match event {
                        WsEvent::Text(t) => Some(Ev::Text(t.to_string())),
                        WsEvent::Binary(b) => Some(Ev::Binary(b.to_vec())),
                        WsEvent::Ping(p) => Some(Ev::Ping(p.to_vec())),
                        WsEvent::Pong(p) => Some(Ev::Pong(p.to_vec())),
                        WsEvent::Close { code, reason } => {
                            Some(Ev::Close(code.map(u16::from), reason.to_string()))
                        }
                        WsEvent::NeedData => None,
                        WsEvent::Closed => Some(Ev::Closed),
                    };
                    (ev, n)
                }
            };
            self.buf.drain(..n);
            match ev {
                None => break,
                Some(Ev::Closed) => {
                    assert!(self.ws.is_closed());
                    if self.events.last() != Some(&Ev::Closed) {
                        self.events.push(Ev::Closed);
                    }
                    break;
                }
                Some(ev) => self.events.push(ev),
            }
        }
        self.flush();
        if self.release {
            self.ws.release_memory();
        }
    }

    /// Takes everything the session queued (a peer that always reads).
    pub fn flush(&mut self) {
        let n = self.ws.transmit().len();
        self.out.extend_from_slice(self.ws.transmit());
        let now = self.now();
        self.ws.advance_transmit(n, now);
        assert!(self.ws.transmit().is_empty());
    }

    pub fn feed(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
        self.pump();
    }

    pub fn feed_bytewise(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.buf.push(b);
            self.pump();
        }
        if bytes.is_empty() {
            self.pump();
        }
    }

    pub fn eof(&mut self) {
        self.ws.receive_eof();
        self.pump();
    }

    /// Moves the simulated clock and applies deadlines, as a driver's timer does.
    pub fn advance(&mut self, d: Duration) {
        self.elapsed += d;
        let now = self.now();
        self.ws.handle_timeout(now);
        self.pump();
    }

    pub fn take_out(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.out)
    }

    pub fn take_events(&mut self) -> Vec<Ev> {
        std::mem::take(&mut self.events)
    }
}

/// A masked client frame with the minimal length form.
pub fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    frame_with(first, payload, LenForm::Minimal, Some(KEY))
}

/// A final masked text frame.
pub fn text_frame(s: &str) -> Vec<u8> {
    frame(0x81, s.as_bytes())
}

/// How a frame's payload length is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LenForm {
    Minimal,
    Bits16,
    Bits64,
}

/// A client frame: `first` is the first header byte (FIN, RSV, opcode); `key` `None` leaves
/// it unmasked.
pub fn frame_with(first: u8, payload: &[u8], form: LenForm, key: Option<[u8; 4]>) -> Vec<u8> {
    let mask_bit = if key.is_some() { 0x80 } else { 0 };
    let mut out = vec![first];
    let len = payload.len();
    match form {
        LenForm::Minimal if len < 126 => out.push(mask_bit | len as u8),
        LenForm::Minimal if len <= 0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        LenForm::Bits16 => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(len as u16).to_be_bytes());
        }
        _ => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(len as u64).to_be_bytes());
        }
    }
    match key {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A masked Close frame with a code and reason.
pub fn close_frame(code: u16, reason: &[u8]) -> Vec<u8> {
    let mut payload = code.to_be_bytes().to_vec();
    payload.extend_from_slice(reason);
    frame(0x88, &payload)
}

/// A server frame, as a client reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerFrame {
    pub fin: bool,
    pub rsv1: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Splits the server's output into frames; panics on a malformed or masked frame (a server
/// never masks).
pub fn server_frames(mut out: &[u8]) -> Vec<ServerFrame> {
    let mut frames = Vec::new();
    while !out.is_empty() {
        let first = out[0];
        let second = out[1];
        assert_eq!(second & 0x80, 0, "server frames are unmasked");
        assert_eq!(first & 0x30, 0, "RSV2/RSV3 never set");
        let (len, header) = match second & 0x7F {
            126 => (u16::from_be_bytes([out[2], out[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(out[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        // Minimal length forms on output.
        match header {
            4 => assert!(len >= 126),
            10 => assert!(len > 0xFFFF),
            _ => {}
        }
        frames.push(ServerFrame {
            fin: first & 0x80 != 0,
            rsv1: first & 0x40 != 0,
            opcode: first & 0x0F,
            payload: out[header..header + len].to_vec(),
        });
        out = &out[header + len..];
    }
    frames
}

/// The server Close frame bytes for `code` and `reason`.
pub fn server_close(code: u16, reason: &str) -> Vec<u8> {
    let mut out = vec![0x88, (2 + reason.len()) as u8];
    out.extend_from_slice(&code.to_be_bytes());
    out.extend_from_slice(reason.as_bytes());
    out
}

/// An unmasked server frame with FIN.
pub fn server_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let len = payload.len();
    if len < 126 {
        out.push(len as u8);
    } else if len <= 0xFFFF {
        out.push(126);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
    out.extend_from_slice(payload);
    out
}

/// What a session did with some input.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outcome {
    pub events: Vec<Ev>,
    pub out: Vec<u8>,
}

/// The frame appended in the trailing-data mode.
pub fn trailer() -> Vec<u8> {
    text_frame("next")
}

/// Feeds `input` whole, byte by byte, and whole with a pipelined text frame after it; asserts
/// that all three agree (the pipelined frame adds `Text("next")` unless the session ended) and
/// returns the outcome.
pub fn run(config: &WsConfig, input: &[u8]) -> Outcome {
    let mut whole = WsHarness::new(config.clone());
    whole.feed(input);
    let whole = Outcome {
        events: whole.take_events(),
        out: whole.take_out(),
    };

    let mut bytewise = WsHarness::new(config.clone());
    bytewise.feed_bytewise(input);
    let bytewise = Outcome {
        events: bytewise.take_events(),
        out: bytewise.take_out(),
    };
    assert_eq!(whole, bytewise, "whole vs byte by byte");

    let mut released = WsHarness::new(config.clone());
    released.release = true;
    released.feed_bytewise(input);
    let released = Outcome {
        events: released.take_events(),
        out: released.take_out(),
    };
    assert_eq!(
        whole, released,
        "whole vs byte by byte, memory released between bytes"
    );

    let mut trailing = WsHarness::new(config.clone());
    let mut with_trailer = input.to_vec();
    with_trailer.extend_from_slice(&trailer());
    trailing.feed(&with_trailer);
    let trailing = Outcome {
        events: trailing.take_events(),
        out: trailing.take_out(),
    };
    let mut expected = whole.clone();
    let ended = matches!(expected.events.last(), Some(Ev::Closed | Ev::Error(_)))
        || expected.events.iter().any(|e| matches!(e, Ev::Close(..)));
    if !ended {
        expected.events.push(text("next"));
    }
    assert_eq!(trailing, expected, "whole vs whole with a pipelined frame");
    whole
}

/// [`run`] with the default configuration, asserting the events and output.
pub fn check(input: &[u8], events: &[Ev], out: &[u8]) {
    check_with(&WsConfig::default(), input, events, out);
}

pub fn check_with(config: &WsConfig, input: &[u8], events: &[Ev], out: &[u8]) {
    let outcome = run(config, input);
    assert_eq!(outcome.events, events);
    assert_eq!(
        outcome.out,
        out,
        "output: {:x?}",
        server_frames(&outcome.out)
    );
}

/// Asserts that `input` fails the session with `code`, queuing a Close with that code, after
/// the events `before`.
pub fn check_error(config: &WsConfig, input: &[u8], before: &[Ev], code: u16) -> WsError {
    let outcome = run(config, input);
    let (last, rest) = outcome.events.split_last().expect("an event");
    assert_eq!(rest, before);
    let Ev::Error(err) = last else {
        panic!("expected an error, got {:?}", outcome.events);
    };
    assert_eq!(err.close_code().as_u16(), code, "{err}");
    let frames = server_frames(&outcome.out);
    let close = frames.last().expect("a Close frame");
    assert_eq!(close.opcode, 0x8);
    assert_eq!(close.payload[..2], code.to_be_bytes());
    assert_eq!(&close.payload[2..], err.reason().as_bytes());
    *err
}
