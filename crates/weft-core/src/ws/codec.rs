//! The WebSocket codec: frames in, events out; messages in, frames out.

use std::fmt;
use std::time::Duration;

use crate::clock::Instant;

use super::deflate::{InflateLimit, Inflater, DEFLATE_TAIL};
use super::error::{CloseCode, WsError, WsSendError};
use super::frame::{
    masking_key, payload_length, unmask, OpCode, FIN, MASKED, MAX_CONTROL_PAYLOAD, RSV1, RSV2_RSV3,
};
use super::handshake::DeflateConfig;
use super::link::{Link, Timeouts, Timer, IDLE_KEEP};
use super::sender::WsSender;
use super::utf8::Utf8Validator;

/// Limits, extensions and timers of one WebSocket session.
#[derive(Clone, Debug)]
pub struct WsConfig {
    /// Payload bytes of one frame; a frame announcing more is refused with 1009.
    pub max_frame: usize,
    /// Bytes of one (decompressed) message; a message growing past it is refused with 1009.
    pub max_message: usize,
    /// The negotiated permessage-deflate parameters, if any.
    pub deflate: Option<DeflateConfig>,
    /// Idle time (nothing received) before the server pings.
    pub ping_interval: Option<Duration>,
    /// After a ping, this long without any input closes the session with 1001.
    pub ping_timeout: Duration,
    /// After sending Close, how long to wait for the peer's Close.
    pub close_timeout: Duration,
    /// How long queued output may wait for the peer to take any of it. A peer that stops
    /// reading for longer loses the session: its output is dropped and the session is over
    /// (no Close can reach it).
    pub send_timeout: Duration,
}

impl Default for WsConfig {
    fn default() -> WsConfig {
        WsConfig {
            max_frame: 16 << 20,
            max_message: 16 << 20,
            deflate: None,
            ping_interval: Some(Duration::from_secs(30)),
            ping_timeout: Duration::from_secs(10),
            close_timeout: Duration::from_secs(5),
            send_timeout: Duration::from_secs(30),
        }
    }
}

/// What [`WebSocket::next_event`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsEvent<'a> {
    /// A complete, UTF-8-valid text message.
    Text(&'a str),
    /// A complete binary message.
    Binary(&'a [u8]),
    /// A Ping was received; the Pong is already queued.
    Ping(&'a [u8]),
    /// A Pong was received.
    Pong(&'a [u8]),
    /// The peer's Close; the answering Close is already queued (if we had not sent one).
    Close {
        /// The peer's close code; `None` when its Close had no payload.
        code: Option<CloseCode>,
        /// The peer's close reason (UTF-8, possibly empty).
        reason: &'a str,
    },
    /// All input consumed (or the rest is an incomplete frame header): feed more.
    NeedData,
    /// The session is over: close the TCP connection once `transmit()` is empty.
    Closed,
}

/// The reason of the Close sent when an idle ping is not answered.
const PING_TIMEOUT_REASON: &str = "ping timeout";
/// A frame whose header has been read and whose payload is being read.
#[derive(Clone, Copy, Debug)]
struct Frame {
    opcode: OpCode,
    fin: bool,
    /// Payload bytes still to read.
    remaining: u64,
    key: [u8; 4],
    /// Payload bytes already read (where in the masking key the next byte is).
    offset: usize,
}

/// The kind of the data message in progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum MessageKind {
    Text,
    Binary,
}

/// What [`Receiver::read`] found, before the event borrows the buffers.
#[derive(Clone, Copy, Debug)]
enum Ready {
    Text,
    Binary,
    Ping,
    Pong,
    Close(Option<CloseCode>),
    NeedData,
}

/// One WebSocket session (server side), from right after the `101` response.
///
/// Input is consumed incrementally: a frame's payload is unmasked (and inflated) into the
/// session's own message buffer as it arrives, so the caller's read buffer never has to hold
/// a whole frame. Pings are answered and Close frames echoed by the session itself. See the
/// [module documentation](super) for the driving order.
///
/// The session has two sides: the receiving side owns the message buffer a received event
/// borrows, the sending side ([`WsSender`]) the transmit buffer. They are separate values, so
/// [`WebSocket::next_event_and_sender`] can hand out an event and the sender together: a
/// handler answers (an echo sends the message back) while it holds the borrowed message, with
/// no copy of it in between.
pub struct WebSocket {
    receiver: Receiver,
    sender: WsSender,
}

/// The receiving side: frames in, events out. Its methods that must queue output (a Pong, the
/// answering Close) or record the session's end take the sender's [`Link`].
struct Receiver {
    /// `WsConfig::max_frame`.
    max_frame: usize,
    /// `WsConfig::max_message`.
    max_message: usize,
    /// The negotiated permessage-deflate parameters, if any.
    deflate: Option<DeflateConfig>,
    /// The frame whose payload is being read; `None` between frames.
    frame: Option<Frame>,
    /// The data message in progress.
    message_kind: Option<MessageKind>,
    /// Whether the message in progress is compressed (RSV1 on its first frame).
    message_compressed: bool,
    /// The message's (decompressed) bytes so far.
    message: Vec<u8>,
    /// `message` holds a message already delivered: cleared before the next read.
    message_delivered: bool,
    /// Validates the text message in progress piece by piece.
    utf8: Utf8Validator,
    /// The payload of the control frame being read (at most 125 bytes).
    control: Vec<u8>,
    /// A compressed payload piece, unmasked before it is inflated.
    scratch: Vec<u8>,
    /// The inflater of received messages.
    inflater: Inflater,
    /// Input bytes the caller kept after the last call (an incomplete frame header): input
    /// longer than this is new.
    held: usize,
    /// The most bytes the message in progress may take now (the driver's share of a
    /// server-wide budget); see [`WebSocket::set_message_budget`].
    message_budget: usize,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rx = &self.receiver;
        let link = &self.sender.link;
        f.debug_struct("WebSocket")
            .field("max_frame", &rx.max_frame)
            .field("max_message", &rx.max_message)
            .field("deflate", &rx.deflate)
            .field("frame", &rx.frame)
            .field("message_kind", &rx.message_kind)
            .field("message_len", &rx.message.len())
            .field("close_sent", &link.close_sent)
            .field("closed", &link.closed)
            .field("error", &link.error)
            .finish()
    }
}

impl WebSocket {
    /// A session that starts at `now` (right after the 101 response).
    pub fn new(config: WsConfig, now: Instant) -> WebSocket {
        let timeouts = Timeouts {
            ping_interval: config.ping_interval,
            ping_timeout: config.ping_timeout,
            close_timeout: config.close_timeout,
            send_timeout: config.send_timeout,
        };
        let mut link = Link::new(now, timeouts);
        link.input_arrived();
        let sender = WsSender::new(link, config.deflate, config.max_message);
        WebSocket {
            receiver: Receiver {
                max_frame: config.max_frame,
                max_message: config.max_message,
                deflate: config.deflate,
                frame: None,
                message_kind: None,
                message_compressed: false,
                message: Vec::new(),
                message_delivered: false,
                utf8: Utf8Validator::default(),
                control: Vec::new(),
                scratch: Vec::new(),
                inflater: Inflater::default(),
                held: 0,
                message_budget: usize::MAX,
            },
            sender,
        }
    }

    /// Limits the message in progress to `bytes` (whole frames are judged from their header,
    /// inflated bytes as they come out) on top of `max_message`: a driver sharing one memory
    /// budget among many sessions passes what is left of it before each
    /// [`WebSocket::next_event`]. A message that does not fit fails the session with 1013 (Try
    /// Again Later) instead of 1009: the limit was the server's load, not the message. Starts
    /// unlimited.
    pub fn set_message_budget(&mut self, bytes: usize) {
        self.receiver.message_budget = bytes;
    }

    /// Bytes this session holds in buffers that grow with traffic: the message in progress
    /// (counting the rest of an uncompressed frame whose header announced it, so a budget is
    /// charged before the bytes arrive), the transmit buffer and the compression buffers.
    pub fn buffered(&self) -> usize {
        self.receiver
            .buffered()
            .saturating_add(self.sender.buffered())
    }

    /// Frees the buffers the session holds between messages: the last message delivered, the
    /// control and scratch buffers, and the transmit buffer when it is empty. A driver calls it
    /// when the session waits (no input left unconsumed, nothing to write), so an idle session
    /// holds no buffer; a message in progress and queued output are kept. The permessage-deflate
    /// contexts are kept: the peer's next message may refer to the last one's bytes.
    pub fn release_memory(&mut self) {
        self.receiver.release_memory();
        self.sender.link.release_memory();
    }

    /// Consumes input incrementally (a frame's payload may arrive in many pieces and is
    /// unmasked into the codec's own message buffer as it comes, so the caller's buffer never
    /// has to hold a whole frame). Returns the event and how many bytes of `input` were
    /// consumed; the caller removes them and calls again until [`WsEvent::NeedData`] or
    /// [`WsEvent::Closed`]. After an error every later call returns the same error (the Close
    /// frame carrying its code is already queued, and the session is closed).
    #[must_use = "the event must be handled and the consumed bytes removed from the input"]
    pub fn next_event(
        &mut self,
        input: &[u8],
        now: Instant,
    ) -> Result<(WsEvent<'_>, usize), WsError> {
        self.receiver.next_event(input, &mut self.sender.link, now)
    }

    /// [`WebSocket::next_event`], and the session's sending side with the event: a handler can
    /// send while it holds the message the event borrows (an echo sends it back as it is,
    /// without copying it out of the codec first).
    #[must_use = "the event must be handled and the consumed bytes removed from the input"]
    pub fn next_event_and_sender(
        &mut self,
        input: &[u8],
        now: Instant,
    ) -> Result<(WsEvent<'_>, usize, &mut WsSender), WsError> {
        let WebSocket { receiver, sender } = self;
        let (event, consumed) = receiver.next_event(input, &mut sender.link, now)?;
        Ok((event, consumed, sender))
    }

    /// The sending side (messages, pings, the Close).
    pub fn sender(&mut self) -> &mut WsSender {
        &mut self.sender
    }

    /// The peer closed TCP (EOF): later [`WebSocket::next_event`] returns [`WsEvent::Closed`]
    /// (an abnormal closure, 1006: nothing is sent).
    pub fn receive_eof(&mut self) {
        self.sender.link.end();
    }

    /// Queues a text message (see [`WsSender::send_text`]).
    pub fn send_text(&mut self, text: &str, now: Instant) -> Result<(), WsSendError> {
        self.sender.send_text(text, now)
    }

    /// Queues a binary message (see [`WsSender::send_binary`]).
    pub fn send_binary(&mut self, data: &[u8], now: Instant) -> Result<(), WsSendError> {
        self.sender.send_binary(data, now)
    }

    /// Queues a Ping (see [`WsSender::send_ping`]).
    pub fn send_ping(&mut self, data: &[u8], now: Instant) -> Result<(), WsSendError> {
        self.sender.send_ping(data, now)
    }

    /// Starts the closing handshake (see [`WsSender::close`]).
    pub fn close(&mut self, code: impl Into<CloseCode>, reason: &str, now: Instant) {
        self.sender.close(code, reason, now);
    }

    /// Bytes waiting to be written to the peer.
    #[must_use = "queued bytes must be written to the peer"]
    pub fn transmit(&self) -> &[u8] {
        self.sender.transmit()
    }

    /// `n` bytes of [`WebSocket::transmit`] were written at `now` (the peer took them: the
    /// send timeout starts again).
    pub fn advance_transmit(&mut self, n: usize, now: Instant) {
        if n == 0 {
            return;
        }
        self.sender.link.output_taken(n, now);
    }

    /// The earliest deadline: the idle ping, the ping's answer, the peer's Close, or the peer
    /// taking queued output (the send timeout). `None` once the session is over and its
    /// output is written or dropped.
    #[must_use = "the deadline must be armed as a timer"]
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.sender.link.timers.next()
    }

    /// Acts on expired deadlines: pings an idle peer, closes with 1001 when the ping got no
    /// answer in time, and ends the session when the peer's Close did not come in time.
    pub fn handle_timeout(&mut self, now: Instant) {
        let link = &mut self.sender.link;
        link.now = now;
        if link.timers.expired(Timer::Send, now) || link.timers.expired(Timer::Close, now) {
            // The peer stopped reading (it will never take this output, nor a Close), or its
            // Close did not come in time (what it has not read by now is moot).
            link.drop_output();
            link.end();
        } else if link.timers.expired(Timer::PingAnswer, now) {
            self.sender
                .close(CloseCode::GOING_AWAY, PING_TIMEOUT_REASON, now);
        } else if link.timers.expired(Timer::IdlePing, now) {
            link.send_idle_ping();
        }
    }

    /// Nothing more will be read or sent: close TCP once [`WebSocket::transmit`] is empty (the
    /// server closes TCP first, RFC 6455 section 7.1.1).
    pub fn is_closed(&self) -> bool {
        self.sender.is_closed()
    }

    /// A Close frame has been sent (no more messages may be sent).
    pub fn is_closing(&self) -> bool {
        self.sender.is_closing()
    }
}

impl Receiver {
    /// See [`WebSocket::buffered`]: the receiving side's part.
    fn buffered(&self) -> usize {
        let announced = match self.frame {
            Some(frame) if !frame.opcode.is_control() && !self.message_compressed => {
                usize::try_from(frame.remaining).unwrap_or(usize::MAX)
            }
            _ => 0,
        };
        let message = self
            .message
            .capacity()
            .max(self.message.len().saturating_add(announced));
        message
            .saturating_add(self.scratch.capacity())
            .saturating_add(self.control.capacity())
    }

    /// See [`WebSocket::release_memory`]: the receiving side's part.
    fn release_memory(&mut self) {
        if self.message_kind.is_none() {
            // No message in progress: the buffer is empty or holds one already delivered.
            self.message = Vec::new();
            self.message_delivered = false;
        }
        if self.frame.is_none_or(|frame| !frame.opcode.is_control()) {
            self.control = Vec::new();
        }
        self.scratch = Vec::new();
    }

    fn next_event(
        &mut self,
        input: &[u8],
        link: &mut Link,
        now: Instant,
    ) -> Result<(WsEvent<'_>, usize), WsError> {
        if let Some(error) = link.error {
            return Err(error);
        }
        if link.closed {
            return Ok((WsEvent::Closed, 0));
        }
        link.now = now;
        if input.len() > self.held {
            link.input_arrived();
        }
        if self.message_delivered {
            self.message_delivered = false;
            self.message.clear();
            if self.message.capacity() > IDLE_KEEP {
                self.message = Vec::new();
            }
        }
        let (ready, consumed) = match self.read(input, link) {
            Ok(found) => found,
            Err(error) => {
                link.fail(error);
                return Err(error);
            }
        };
        self.held = input.len().saturating_sub(consumed);
        let event = match ready {
            // The pieces that did not end the message were validated as they came; this one
            // pass over the whole message covers the rest and gives the `&str`.
            Ready::Text => match std::str::from_utf8(&self.message) {
                Ok(text) => WsEvent::Text(text),
                Err(_) => {
                    link.fail(WsError::InvalidUtf8);
                    return Err(WsError::InvalidUtf8);
                }
            },
            Ready::Binary => WsEvent::Binary(&self.message),
            Ready::Ping => WsEvent::Ping(&self.control),
            Ready::Pong => WsEvent::Pong(&self.control),
            Ready::Close(code) => WsEvent::Close {
                code,
                reason: std::str::from_utf8(self.control.get(2..).unwrap_or(&[])).unwrap_or(""),
            },
            Ready::NeedData => WsEvent::NeedData,
        };
        Ok((event, consumed))
    }

    /// Reads frames from `input` until one completes an event or the input runs out.
    fn read(&mut self, input: &[u8], link: &mut Link) -> Result<(Ready, usize), WsError> {
        let mut pos = 0;
        loop {
            let Some(mut frame) = self.frame else {
                match self.read_header(input.get(pos..).unwrap_or(&[]))? {
                    Some((frame, len)) => {
                        pos += len;
                        self.frame = Some(frame);
                        continue;
                    }
                    None => return Ok((Ready::NeedData, pos)),
                }
            };
            let available = input.len().saturating_sub(pos);
            let take = usize::try_from(frame.remaining).map_or(available, |r| r.min(available));
            let piece = input.get(pos..pos + take).unwrap_or(&[]);
            let ends_frame = take as u64 == frame.remaining;
            self.read_payload(&frame, piece, ends_frame)?;
            pos += take;
            frame.remaining -= take as u64;
            frame.offset = frame.offset.wrapping_add(take);
            if !ends_frame {
                self.frame = Some(frame);
                return Ok((Ready::NeedData, pos));
            }
            self.frame = None;
            if let Some(ready) = self.end_frame(&frame, link)? {
                return Ok((ready, pos));
            }
        }
    }

    /// Parses and checks a frame header at the start of `input`: `None` while it is incomplete.
    /// Each rule is checked as soon as the bytes it needs are there.
    fn read_header(&mut self, input: &[u8]) -> Result<Option<(Frame, usize)>, WsError> {
        let Some(&first) = input.first() else {
            return Ok(None);
        };
        let Some(opcode) = OpCode::from_bits(first) else {
            return Err(WsError::ReservedOpcode);
        };
        let fin = first & FIN != 0;
        let rsv1 = first & RSV1 != 0;
        let data = opcode.starts_message();
        if first & RSV2_RSV3 != 0 || (rsv1 && !(data && self.deflate.is_some())) {
            return Err(WsError::ReservedBits);
        }
        let control = opcode.is_control();
        if control && !fin {
            return Err(WsError::FragmentedControl);
        }
        if opcode == OpCode::Continuation && self.message_kind.is_none() {
            return Err(WsError::UnexpectedContinuation);
        }
        if data && self.message_kind.is_some() {
            return Err(WsError::UnfinishedMessage);
        }
        let Some(&second) = input.get(1) else {
            return Ok(None);
        };
        if second & MASKED == 0 {
            return Err(WsError::Unmasked);
        }
        if control && usize::from(second & 0x7F) > MAX_CONTROL_PAYLOAD {
            return Err(WsError::ControlTooLong);
        }
        let Some((len, header_len)) = payload_length(input) else {
            return Ok(None);
        };
        let compressed = if opcode == OpCode::Continuation {
            self.message_compressed
        } else {
            rsv1
        };
        // A plain data frame's bytes go straight into the message: its limits apply now.
        let plain = !control && !compressed;
        self.check_length(len, plain)?;
        let Some(key) = masking_key(input, header_len) else {
            return Ok(None);
        };
        self.start_frame(opcode, rsv1, len, plain);
        let frame = Frame {
            opcode,
            fin,
            remaining: len,
            key,
            offset: 0,
        };
        Ok(Some((frame, header_len)))
    }

    /// Checks a frame's announced payload length: against `max_frame`, and for a plain (not
    /// compressed) data frame, the message it makes against `max_message` and the budget.
    fn check_length(&self, len: u64, plain: bool) -> Result<(), WsError> {
        if len >> 63 != 0 {
            return Err(WsError::LengthHighBit);
        }
        if len > self.max_frame as u64 {
            return Err(WsError::FrameTooLarge);
        }
        let message = self.message.len() as u64 + len;
        if plain && message > self.max_message as u64 {
            return Err(WsError::MessageTooLarge);
        }
        if plain && message > self.message_budget as u64 {
            return Err(WsError::OverBudget);
        }
        Ok(())
    }

    /// A frame header was accepted: prepares the buffers for its payload.
    fn start_frame(&mut self, opcode: OpCode, rsv1: bool, len: u64, plain: bool) {
        if plain && self.message.is_empty() {
            // A message's first frame: room for exactly what it announces (checked against
            // both limits), rather than doubling up to twice that as it arrives. Reserving
            // touches no page, so an announced length costs nothing until sent.
            self.message
                .reserve_exact(usize::try_from(len).unwrap_or(0));
        }
        if opcode.is_control() {
            self.control.clear();
        } else if opcode.starts_message() {
            self.message_kind = Some(if opcode == OpCode::Text {
                MessageKind::Text
            } else {
                MessageKind::Binary
            });
            self.message_compressed = rsv1;
            self.utf8.reset();
        }
    }

    /// Unmasks (and inflates) one piece of a frame's payload into the message or control
    /// buffer. Text is validated as it comes, except for the piece that ends the message:
    /// the whole message is validated once more when it is delivered.
    fn read_payload(
        &mut self,
        frame: &Frame,
        piece: &[u8],
        ends_frame: bool,
    ) -> Result<(), WsError> {
        if frame.opcode.is_control() {
            let start = self.control.len();
            self.control.extend_from_slice(piece);
            if let Some(new) = self.control.get_mut(start..) {
                unmask(new, frame.key, frame.offset);
            }
            return Ok(());
        }
        if self.message_compressed {
            self.scratch.clear();
            self.scratch.extend_from_slice(piece);
            unmask(&mut self.scratch, frame.key, frame.offset);
            let scratch = std::mem::take(&mut self.scratch);
            let result = self.inflate(&scratch);
            self.scratch = scratch;
            return result;
        }
        // The last piece of a message is validated once, by the check that makes its `&str`.
        let validate = self.message_kind == Some(MessageKind::Text) && !(ends_frame && frame.fin);
        let start = self.message.len();
        self.message.extend_from_slice(piece);
        if let Some(new) = self.message.get_mut(start..) {
            unmask(new, frame.key, frame.offset);
            if validate && self.utf8.feed(new).is_err() {
                return Err(WsError::InvalidUtf8);
            }
        }
        Ok(())
    }

    /// Inflates compressed bytes onto the message (see [`Inflater::inflate`]).
    fn inflate(&mut self, input: &[u8]) -> Result<(), WsError> {
        let limit = InflateLimit {
            max_message: self.max_message,
            budget: self.message_budget,
        };
        let utf8 = (self.message_kind == Some(MessageKind::Text)).then_some(&mut self.utf8);
        self.inflater.inflate(input, &mut self.message, limit, utf8)
    }

    /// A frame's payload is complete: the event it makes, if any.
    fn end_frame(&mut self, frame: &Frame, link: &mut Link) -> Result<Option<Ready>, WsError> {
        match frame.opcode {
            OpCode::Ping => {
                if !link.close_sent {
                    link.write_frame(OpCode::Pong, false, &self.control);
                }
                Ok(Some(Ready::Ping))
            }
            OpCode::Pong => Ok(Some(Ready::Pong)),
            OpCode::Close => self.receive_close(link).map(Some),
            OpCode::Continuation | OpCode::Text | OpCode::Binary if !frame.fin => Ok(None),
            OpCode::Continuation | OpCode::Text | OpCode::Binary => {
                if self.message_compressed {
                    self.inflate(&DEFLATE_TAIL)?;
                    let no_takeover = self.deflate.is_some_and(|d| d.client_no_context_takeover);
                    self.inflater.end_message(no_takeover);
                }
                // A text message is validated whole when it is delivered (a character cut
                // short at its end included).
                self.message_delivered = true;
                Ok(match self.message_kind.take() {
                    Some(MessageKind::Text) => Some(Ready::Text),
                    _ => Some(Ready::Binary),
                })
            }
        }
    }

    /// The peer's Close (RFC 6455 section 5.5.1): checked, answered (echoing its code, 1000
    /// when it has none) unless we closed first, and the session is over.
    fn receive_close(&mut self, link: &mut Link) -> Result<Ready, WsError> {
        let code = match self.control.as_slice() {
            [] => None,
            [_] => return Err(WsError::OneByteClose),
            [high, low, reason @ ..] => {
                let code = CloseCode::new(u16::from_be_bytes([*high, *low]));
                if !code.is_allowed() {
                    return Err(WsError::InvalidCloseCode);
                }
                if std::str::from_utf8(reason).is_err() {
                    return Err(WsError::CloseReasonNotUtf8);
                }
                Some(code)
            }
        };
        if !link.close_sent {
            link.write_close(code.unwrap_or(CloseCode::NORMAL), "");
        }
        link.end();
        Ok(Ready::Close(code))
    }
}
