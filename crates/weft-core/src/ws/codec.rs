//! The WebSocket codec: frames in, events out; messages in, frames out.

use std::fmt;
use std::time::{Duration, Instant};

use miniz_oxide::deflate::core::{
    compress_to_output, create_comp_flags_from_zip_params, CompressionStrategy, CompressorOxide,
    TDEFLFlush, TDEFLStatus,
};
use miniz_oxide::inflate::stream::{inflate, InflateState, ZeroReset};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

use super::frame::{
    is_control, masking_key, payload_length, unmask, write_header, FIN, MASKED,
    MAX_CONTROL_PAYLOAD, OP_BINARY, OP_CLOSE, OP_CONTINUATION, OP_PING, OP_PONG, OP_TEXT, RSV1,
    RSV2_RSV3,
};
use super::handshake::DeflateConfig;
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
    Close { code: Option<u16>, reason: &'a str },
    /// All input consumed (or the rest is an incomplete frame header): feed more.
    NeedData,
    /// The session is over: close the TCP connection once `transmit()` is empty.
    Closed,
}

/// A protocol violation by the peer. Sticky; the Close frame with `code` is already queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WsError {
    /// The close code sent to the peer.
    pub code: u16,
    /// The close reason sent to the peer.
    pub reason: &'static str,
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "websocket error {}: {}", self.code, self.reason)
    }
}

impl std::error::Error for WsError {}

/// Why a message could not be sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsSendError {
    /// A Close was already sent.
    Closed,
    /// Over `max_message` (or over 125 bytes for a ping).
    TooLarge,
}

impl fmt::Display for WsSendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WsSendError::Closed => "the websocket is closing",
            WsSendError::TooLarge => "message too large",
        })
    }
}

impl std::error::Error for WsSendError {}

impl WsError {
    const fn new(code: u16, reason: &'static str) -> WsError {
        WsError { code, reason }
    }
}

const RESERVED_OPCODE: WsError = WsError::new(1002, "reserved opcode");
const RESERVED_BITS: WsError = WsError::new(1002, "reserved bits set");
const FRAGMENTED_CONTROL: WsError = WsError::new(1002, "fragmented control frame");
const UNEXPECTED_CONTINUATION: WsError = WsError::new(1002, "continuation without a message");
const UNFINISHED_MESSAGE: WsError = WsError::new(1002, "new message before the last one ended");
const UNMASKED: WsError = WsError::new(1002, "unmasked client frame");
const CONTROL_TOO_LONG: WsError = WsError::new(1002, "control frame over 125 bytes");
const LENGTH_HIGH_BIT: WsError = WsError::new(1002, "frame length with the high bit set");
const FRAME_TOO_LARGE: WsError = WsError::new(1009, "frame too large");
const MESSAGE_TOO_LARGE: WsError = WsError::new(1009, "message too large");
const INVALID_UTF8: WsError = WsError::new(1007, "invalid UTF-8 in a text message");
const BAD_COMPRESSED_DATA: WsError = WsError::new(1007, "invalid compressed data");
const ONE_BYTE_CLOSE: WsError = WsError::new(1002, "close payload of one byte");
const INVALID_CLOSE_CODE: WsError = WsError::new(1002, "invalid close code");
const CLOSE_REASON_NOT_UTF8: WsError = WsError::new(1007, "close reason not UTF-8");
const OVER_BUDGET: WsError = WsError::new(1013, "server memory budget exhausted, try again later");

/// The payload of the pings sent when the peer is idle.
const IDLE_PING_PAYLOAD: &[u8] = b"weft";
/// The reason of the Close sent when an idle ping is not answered.
const PING_TIMEOUT_REASON: &str = "ping timeout";
/// Messages shorter than this are sent uncompressed even with permessage-deflate (RFC 7692
/// section 6.1 allows it): deflate would not make them shorter.
const MIN_COMPRESSED_LEN: usize = 16;
/// What a sync flush ends with; stripped from sent messages and appended to received ones
/// (RFC 7692 section 7.2).
const DEFLATE_TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
/// The longest close reason that fits a control frame after the code.
const MAX_CLOSE_REASON: usize = MAX_CONTROL_PAYLOAD - 2;
/// The compression buffer is released once it has grown past this.
const KEEP_CAPACITY: usize = 1 << 20;
/// A message or output buffer larger than this is released once it is empty. An idle session
/// then holds little memory, and the next large message gets a buffer the allocator handed
/// back recently (still in cache) instead of writing into this session's cold one: measured
/// on 50 sessions echoing 16 KiB, server CPU per round trip fell from about 16 to 11 us.
const IDLE_KEEP: usize = 4096;
/// Consumed transmit bytes are removed from the front once there are this many (and they are
/// at least half the buffer), so removal stays amortised.
const COMPACT_AFTER: usize = 64 << 10;

/// May a peer send this close code (RFC 6455 section 7.4, as the Autobahn test suite reads it)?
fn is_valid_close_code(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1011 | 3000..=4999)
}

/// A frame whose header has been read and whose payload is being read.
#[derive(Clone, Copy, Debug)]
struct Frame {
    opcode: u8,
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

/// What [`WebSocket::read`] found, before the event borrows the buffers.
#[derive(Clone, Copy, Debug)]
enum Ready {
    Text,
    Binary,
    Ping,
    Pong,
    Close(Option<u16>),
    NeedData,
}

/// The sending side and the session's life: the transmit buffer, whether a Close went out,
/// whether the session is over and why. Kept apart from the receive buffers so that an event
/// borrowing a message can be returned while a failure is recorded here.
#[derive(Debug)]
struct Link {
    /// Queued bytes; those before `sent` were already transmitted.
    out: Vec<u8>,
    sent: usize,
    close_sent: bool,
    /// When a Close we sent stops waiting for the peer's.
    close_deadline: Option<Instant>,
    closed: bool,
    error: Option<WsError>,
    /// The time of the call in progress (every public method that can queue output sets it).
    now: Instant,
    /// Since when the output has waited for the peer without it taking any byte; `None`
    /// while nothing is queued.
    stalled_since: Option<Instant>,
}

impl Link {
    /// Call before queueing output: output that was empty starts its send timeout now.
    fn output_starts(&mut self) {
        if self.sent == self.out.len() {
            self.stalled_since = Some(self.now);
        }
    }

    fn write_frame(&mut self, opcode: u8, rsv1: bool, payload: &[u8]) {
        self.output_starts();
        self.out.reserve(payload.len() + 10);
        write_header(&mut self.out, opcode, rsv1, payload.len());
        self.out.extend_from_slice(payload);
    }

    /// Queues a Close frame (the reason cut to fit, at a character boundary).
    fn write_close(&mut self, code: u16, reason: &str) {
        let mut end = reason.len().min(MAX_CLOSE_REASON);
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        let reason = reason.get(..end).unwrap_or("");
        self.output_starts();
        let [high, low] = code.to_be_bytes();
        write_header(&mut self.out, OP_CLOSE, false, 2 + reason.len());
        self.out.extend_from_slice(&[high, low]);
        self.out.extend_from_slice(reason.as_bytes());
        self.close_sent = true;
    }

    /// Fails the connection (RFC 6455 section 7.1.7): a Close with the error's code, unless one
    /// was sent already, and the session is over.
    fn fail(&mut self, error: WsError) {
        if !self.close_sent {
            self.write_close(error.code, error.reason);
        }
        self.error = Some(error);
        self.closed = true;
    }
}

/// One WebSocket session (server side), from right after the `101` response.
///
/// Input is consumed incrementally: a frame's payload is unmasked (and inflated) into the
/// session's own message buffer as it arrives, so the caller's read buffer never has to hold
/// a whole frame. Pings are answered and Close frames echoed by the session itself. See the
/// [module documentation](super) for the driving order.
pub struct WebSocket {
    config: WsConfig,
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
    /// The inflater of received messages, created with the first compressed one.
    inflater: Option<Box<InflateState>>,
    /// The inflater saw a final deflate block: it is reset before the next message.
    inflate_ended: bool,
    /// The compressor of sent messages, created with the first compressed one.
    compressor: Option<Box<CompressorOxide>>,
    /// Reusable output of the compressor.
    compressed: Vec<u8>,
    link: Link,
    /// Input bytes the caller kept after the last call (an incomplete frame header): input
    /// longer than this is new.
    held: usize,
    /// When input last arrived.
    last_input: Instant,
    /// When the unanswered idle ping was sent.
    ping_sent: Option<Instant>,
    /// The most bytes the message in progress may take now (the driver's share of a
    /// server-wide budget); see [`WebSocket::set_message_budget`].
    message_budget: usize,
}

impl fmt::Debug for WebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("config", &self.config)
            .field("frame", &self.frame)
            .field("message_kind", &self.message_kind)
            .field("message_len", &self.message.len())
            .field("close_sent", &self.link.close_sent)
            .field("closed", &self.link.closed)
            .field("error", &self.link.error)
            .finish()
    }
}

impl WebSocket {
    /// A session that starts at `now` (right after the 101 response).
    pub fn new(config: WsConfig, now: Instant) -> WebSocket {
        WebSocket {
            config,
            frame: None,
            message_kind: None,
            message_compressed: false,
            message: Vec::new(),
            message_delivered: false,
            utf8: Utf8Validator::default(),
            control: Vec::with_capacity(MAX_CONTROL_PAYLOAD),
            scratch: Vec::new(),
            inflater: None,
            inflate_ended: false,
            compressor: None,
            compressed: Vec::new(),
            link: Link {
                out: Vec::new(),
                sent: 0,
                close_sent: false,
                close_deadline: None,
                closed: false,
                error: None,
                now,
                stalled_since: None,
            },
            held: 0,
            last_input: now,
            ping_sent: None,
            message_budget: usize::MAX,
        }
    }

    /// Limits the message in progress to `bytes` (whole frames are judged from their header,
    /// inflated bytes as they come out) on top of `max_message`: a driver sharing one memory
    /// budget among many sessions passes what is left of it before each
    /// [`WebSocket::next_event`]. A message that does not fit fails the session with 1013 (Try
    /// Again Later) instead of 1009: the limit was the server's load, not the message. Starts
    /// unlimited.
    pub fn set_message_budget(&mut self, bytes: usize) {
        self.message_budget = bytes;
    }

    /// Bytes this session holds in buffers that grow with traffic: the message in progress
    /// (counting the rest of an uncompressed frame whose header announced it, so a budget is
    /// charged before the bytes arrive), the transmit buffer and the compression buffers.
    pub fn buffered(&self) -> usize {
        let announced = match self.frame {
            Some(frame) if !is_control(frame.opcode) && !self.message_compressed => {
                usize::try_from(frame.remaining).unwrap_or(usize::MAX)
            }
            _ => 0,
        };
        let message = self
            .message
            .capacity()
            .max(self.message.len().saturating_add(announced));
        message
            .saturating_add(self.link.out.capacity())
            .saturating_add(self.scratch.capacity())
            .saturating_add(self.compressed.capacity())
            .saturating_add(self.control.capacity())
    }

    /// Consumes input incrementally (a frame's payload may arrive in many pieces and is
    /// unmasked into the codec's own message buffer as it comes, so the caller's buffer never
    /// has to hold a whole frame). Returns the event and how many bytes of `input` were
    /// consumed; the caller removes them and calls again until [`WsEvent::NeedData`] or
    /// [`WsEvent::Closed`]. After an error every later call returns the same error (the Close
    /// frame carrying its code is already queued, and the session is closed).
    pub fn next_event(
        &mut self,
        input: &[u8],
        now: Instant,
    ) -> Result<(WsEvent<'_>, usize), WsError> {
        if let Some(error) = self.link.error {
            return Err(error);
        }
        if self.link.closed {
            return Ok((WsEvent::Closed, 0));
        }
        self.link.now = now;
        if input.len() > self.held {
            self.last_input = now;
            self.ping_sent = None;
        }
        if self.message_delivered {
            self.message_delivered = false;
            self.message.clear();
            if self.message.capacity() > IDLE_KEEP {
                self.message = Vec::new();
            }
        }
        let (ready, consumed) = match self.read(input) {
            Ok(found) => found,
            Err(error) => {
                self.link.fail(error);
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
                    self.link.fail(INVALID_UTF8);
                    return Err(INVALID_UTF8);
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
    fn read(&mut self, input: &[u8]) -> Result<(Ready, usize), WsError> {
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
            if let Some(ready) = self.end_frame(&frame)? {
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
        let opcode = first & 0x0F;
        let fin = first & FIN != 0;
        let rsv1 = first & RSV1 != 0;
        let data = matches!(opcode, OP_TEXT | OP_BINARY);
        if !matches!(
            opcode,
            OP_CONTINUATION | OP_TEXT | OP_BINARY | OP_CLOSE | OP_PING | OP_PONG
        ) {
            return Err(RESERVED_OPCODE);
        }
        if first & RSV2_RSV3 != 0 || (rsv1 && !(data && self.config.deflate.is_some())) {
            return Err(RESERVED_BITS);
        }
        let control = is_control(opcode);
        if control && !fin {
            return Err(FRAGMENTED_CONTROL);
        }
        if opcode == OP_CONTINUATION && self.message_kind.is_none() {
            return Err(UNEXPECTED_CONTINUATION);
        }
        if data && self.message_kind.is_some() {
            return Err(UNFINISHED_MESSAGE);
        }
        let Some(&second) = input.get(1) else {
            return Ok(None);
        };
        if second & MASKED == 0 {
            return Err(UNMASKED);
        }
        if control && usize::from(second & 0x7F) > MAX_CONTROL_PAYLOAD {
            return Err(CONTROL_TOO_LONG);
        }
        let Some((len, header_len)) = payload_length(input) else {
            return Ok(None);
        };
        if len >> 63 != 0 {
            return Err(LENGTH_HIGH_BIT);
        }
        if len > self.config.max_frame as u64 {
            return Err(FRAME_TOO_LARGE);
        }
        let compressed = if opcode == OP_CONTINUATION {
            self.message_compressed
        } else {
            rsv1
        };
        if !control
            && !compressed
            && self.message.len() as u64 + len > self.config.max_message as u64
        {
            return Err(MESSAGE_TOO_LARGE);
        }
        if !control && !compressed && self.message.len() as u64 + len > self.message_budget as u64 {
            return Err(OVER_BUDGET);
        }
        let Some(key) = masking_key(input, header_len) else {
            return Ok(None);
        };
        if !control && !compressed && self.message.is_empty() {
            // A message's first frame: room for exactly what it announces (checked against
            // both limits above), rather than doubling up to twice that as it arrives.
            // Reserving touches no page, so an announced length costs nothing until sent.
            self.message
                .reserve_exact(usize::try_from(len).unwrap_or(0));
        }
        if control {
            self.control.clear();
        } else if data {
            self.message_kind = Some(if opcode == OP_TEXT {
                MessageKind::Text
            } else {
                MessageKind::Binary
            });
            self.message_compressed = rsv1;
            self.utf8.reset();
        }
        let frame = Frame {
            opcode,
            fin,
            remaining: len,
            key,
            offset: 0,
        };
        Ok(Some((frame, header_len)))
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
        if is_control(frame.opcode) {
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
                return Err(INVALID_UTF8);
            }
        }
        Ok(())
    }

    /// Inflates compressed bytes onto the message, never letting it grow past `max_message`
    /// (plus one byte, to notice): a small input that inflates to a huge message fails as soon
    /// as it passes the limit, with no more memory than the limit.
    ///
    /// Inflated text is validated as it comes out, every piece, the last one included: the
    /// inflated bytes within the limit are judged before the limit and the stream's
    /// integrity, so the error a bad message reports does not depend on how its input was cut.
    fn inflate(&mut self, mut input: &[u8]) -> Result<(), WsError> {
        let max_message = self.config.max_message;
        let limit = max_message.min(self.message_budget);
        let is_text = self.message_kind == Some(MessageKind::Text);
        let inflater = self
            .inflater
            .get_or_insert_with(|| InflateState::new_boxed(DataFormat::Raw));
        loop {
            let start = self.message.len();
            let room = limit.saturating_add(1).saturating_sub(start);
            let spare = room.min(input.len().saturating_mul(4).max(4096));
            self.message.resize(start + spare, 0);
            let output = self.message.get_mut(start..).unwrap_or_default();
            let result = inflate(inflater, input, output, MZFlush::None);
            self.message.truncate(start + result.bytes_written);
            input = input.get(result.bytes_consumed..).unwrap_or(&[]);
            if is_text {
                let within = self.message.len().min(limit);
                if let Some(new) = self.message.get(start..within) {
                    if self.utf8.feed(new).is_err() {
                        return Err(INVALID_UTF8);
                    }
                }
            }
            if self.message.len() > limit {
                return Err(if limit == max_message {
                    MESSAGE_TOO_LARGE
                } else {
                    OVER_BUDGET
                });
            }
            match result.status {
                Ok(MZStatus::StreamEnd) => {
                    self.inflate_ended = true;
                    return Ok(());
                }
                Ok(_) => {}
                // No progress possible without more input.
                Err(MZError::Buf) => return Ok(()),
                Err(_) => return Err(BAD_COMPRESSED_DATA),
            }
            let output_full = result.bytes_written == spare;
            let stalled = result.bytes_consumed == 0 && result.bytes_written == 0;
            if (input.is_empty() && !output_full) || stalled {
                return Ok(());
            }
        }
    }

    /// A frame's payload is complete: the event it makes, if any.
    fn end_frame(&mut self, frame: &Frame) -> Result<Option<Ready>, WsError> {
        match frame.opcode {
            OP_PING => {
                if !self.link.close_sent {
                    self.link.write_frame(OP_PONG, false, &self.control);
                }
                Ok(Some(Ready::Ping))
            }
            OP_PONG => Ok(Some(Ready::Pong)),
            OP_CLOSE => self.receive_close().map(Some),
            _ if !frame.fin => Ok(None),
            _ => {
                if self.message_compressed {
                    self.inflate(&DEFLATE_TAIL)?;
                    let no_takeover = self
                        .config
                        .deflate
                        .is_some_and(|d| d.client_no_context_takeover);
                    if no_takeover || self.inflate_ended {
                        if let Some(inflater) = self.inflater.as_mut() {
                            inflater.reset_as(ZeroReset);
                        }
                        self.inflate_ended = false;
                    }
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
    fn receive_close(&mut self) -> Result<Ready, WsError> {
        let code = match self.control.as_slice() {
            [] => None,
            [_] => return Err(ONE_BYTE_CLOSE),
            [high, low, reason @ ..] => {
                let code = u16::from_be_bytes([*high, *low]);
                if !is_valid_close_code(code) {
                    return Err(INVALID_CLOSE_CODE);
                }
                if std::str::from_utf8(reason).is_err() {
                    return Err(CLOSE_REASON_NOT_UTF8);
                }
                Some(code)
            }
        };
        if !self.link.close_sent {
            self.link.write_close(code.unwrap_or(1000), "");
        }
        self.link.closed = true;
        Ok(Ready::Close(code))
    }

    /// The peer closed TCP (EOF): later [`WebSocket::next_event`] returns [`WsEvent::Closed`]
    /// (an abnormal closure, 1006: nothing is sent).
    pub fn receive_eof(&mut self) {
        self.link.closed = true;
    }

    /// Queues a text message (one frame; compressed when permessage-deflate was negotiated).
    pub fn send_text(&mut self, text: &str, now: Instant) -> Result<(), WsSendError> {
        self.link.now = now;
        self.send_message(OP_TEXT, text.as_bytes())
    }

    /// Queues a binary message (one frame; compressed when permessage-deflate was negotiated).
    pub fn send_binary(&mut self, data: &[u8], now: Instant) -> Result<(), WsSendError> {
        self.link.now = now;
        self.send_message(OP_BINARY, data)
    }

    fn send_message(&mut self, opcode: u8, payload: &[u8]) -> Result<(), WsSendError> {
        if self.link.close_sent || self.link.closed {
            return Err(WsSendError::Closed);
        }
        if payload.len() > self.config.max_message {
            return Err(WsSendError::TooLarge);
        }
        let deflate = self.config.deflate;
        match deflate {
            Some(deflate)
                if payload.len() >= MIN_COMPRESSED_LEN && self.compress(payload, &deflate) =>
            {
                self.link.write_frame(opcode, true, &self.compressed);
                if self.compressed.capacity() > KEEP_CAPACITY {
                    self.compressed = Vec::new();
                }
            }
            _ => self.link.write_frame(opcode, false, payload),
        }
        Ok(())
    }

    /// Compresses a message into `self.compressed` (RFC 7692 section 7.2.1: a sync flush, its
    /// empty stored block removed). `false` when the compressor failed: it is reset (so later
    /// messages cannot refer to this one) and the message goes out uncompressed.
    ///
    /// miniz_oxide always compresses with a 32 KiB window. When the client limited the server's
    /// window (`server_max_window_bits` below 15), the RLE strategy is used: its matches are at
    /// distance 1, valid in any window, so the client can inflate with the window it asked for.
    fn compress(&mut self, payload: &[u8], deflate: &DeflateConfig) -> bool {
        let compressor = self.compressor.get_or_insert_with(|| {
            let flags = if deflate.server_max_window_bits < 15 {
                // Level 2, not 1: level 1 takes a fast path that ignores the RLE flag.
                create_comp_flags_from_zip_params(2, -15, CompressionStrategy::RLE as i32)
            } else {
                create_comp_flags_from_zip_params(1, -15, CompressionStrategy::Default as i32)
            };
            Box::new(CompressorOxide::new(flags))
        });
        let compressed = &mut self.compressed;
        compressed.clear();
        let (status, consumed) =
            compress_to_output(compressor, payload, TDEFLFlush::Sync, |chunk| {
                compressed.extend_from_slice(chunk);
                true
            });
        let ok = status == TDEFLStatus::Okay
            && consumed == payload.len()
            && compressed.ends_with(&DEFLATE_TAIL);
        if ok {
            compressed.truncate(compressed.len() - DEFLATE_TAIL.len());
        }
        if !ok || deflate.server_no_context_takeover {
            compressor.reset();
        }
        ok
    }

    /// Queues a Ping (at most 125 bytes, else [`WsSendError::TooLarge`]).
    pub fn send_ping(&mut self, data: &[u8], now: Instant) -> Result<(), WsSendError> {
        self.link.now = now;
        if self.link.close_sent || self.link.closed {
            return Err(WsSendError::Closed);
        }
        if data.len() > MAX_CONTROL_PAYLOAD {
            return Err(WsSendError::TooLarge);
        }
        self.link.write_frame(OP_PING, false, data);
        Ok(())
    }

    /// Starts the closing handshake: queues a Close and waits up to `close_timeout` for the
    /// peer's. The reason is cut to 123 bytes at a character boundary; a code that may not be
    /// sent (outside 1000-1003, 1007-1011, 3000-4999) is sent as 1011. Nothing happens when a
    /// Close was already sent or the session is over.
    pub fn close(&mut self, code: u16, reason: &str, now: Instant) {
        if self.link.close_sent || self.link.closed {
            return;
        }
        self.link.now = now;
        let code = if is_valid_close_code(code) {
            code
        } else {
            1011
        };
        self.link.write_close(code, reason);
        self.link.close_deadline = now.checked_add(self.config.close_timeout);
    }

    /// Bytes waiting to be written to the peer.
    pub fn transmit(&self) -> &[u8] {
        self.link.out.get(self.link.sent..).unwrap_or(&[])
    }

    /// `n` bytes of [`WebSocket::transmit`] were written at `now` (the peer took them: the
    /// send timeout starts again).
    pub fn advance_transmit(&mut self, n: usize, now: Instant) {
        if n == 0 {
            return;
        }
        let link = &mut self.link;
        link.sent = link.sent.saturating_add(n).min(link.out.len());
        link.stalled_since = Some(now);
        if link.sent == link.out.len() {
            link.stalled_since = None;
            link.out.clear();
            link.sent = 0;
            if link.out.capacity() > IDLE_KEEP {
                link.out = Vec::new();
            }
        } else if link.sent >= COMPACT_AFTER && link.sent * 2 >= link.out.len() {
            link.out.drain(..link.sent);
            link.sent = 0;
        }
    }

    /// The earliest deadline: the idle ping, the ping's answer, the peer's Close, or the peer
    /// taking queued output (the send timeout). `None` once the session is over and its
    /// output is written or dropped.
    pub fn poll_timeout(&self) -> Option<Instant> {
        let send = self.send_deadline();
        if self.link.closed {
            return send;
        }
        let session = if self.link.close_sent {
            self.link.close_deadline
        } else {
            match self.ping_sent {
                Some(sent) => sent.checked_add(self.config.ping_timeout),
                None => self
                    .config
                    .ping_interval
                    .and_then(|idle| self.last_input.checked_add(idle)),
            }
        };
        match (session, send) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When queued output that the peer is not taking will be dropped.
    fn send_deadline(&self) -> Option<Instant> {
        self.link
            .stalled_since
            .and_then(|since| since.checked_add(self.config.send_timeout))
    }

    /// Acts on expired deadlines: pings an idle peer, closes with 1001 when the ping got no
    /// answer in time, and ends the session when the peer's Close did not come in time.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.link.now = now;
        if self.send_deadline().is_some_and(|deadline| now >= deadline) {
            // The peer stopped reading: it will never take this output, nor a Close.
            self.drop_output();
            self.link.closed = true;
            return;
        }
        if self.link.closed {
            return;
        }
        if self.link.close_sent {
            if self
                .link
                .close_deadline
                .is_some_and(|deadline| now >= deadline)
            {
                // The peer's Close did not come: what it has not read by now is moot.
                self.drop_output();
                self.link.closed = true;
            }
            return;
        }
        let passed = |deadline: Option<Instant>| deadline.is_some_and(|d| now >= d);
        match self.ping_sent {
            Some(sent) if passed(sent.checked_add(self.config.ping_timeout)) => {
                self.close(1001, PING_TIMEOUT_REASON, now);
            }
            Some(_) => {}
            None => {
                let idle = self.config.ping_interval;
                if passed(idle.and_then(|idle| self.last_input.checked_add(idle))) {
                    self.link.write_frame(OP_PING, false, IDLE_PING_PAYLOAD);
                    self.ping_sent = Some(now);
                }
            }
        }
    }

    fn drop_output(&mut self) {
        self.link.out = Vec::new();
        self.link.sent = 0;
        self.link.stalled_since = None;
    }

    /// Nothing more will be read or sent: close TCP once [`WebSocket::transmit`] is empty (the
    /// server closes TCP first, RFC 6455 section 7.1.1).
    pub fn is_closed(&self) -> bool {
        self.link.closed
    }

    /// A Close frame has been sent (no more messages may be sent).
    pub fn is_closing(&self) -> bool {
        self.link.close_sent
    }
}
