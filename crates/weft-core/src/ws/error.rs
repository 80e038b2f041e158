//! Close codes and the typed errors of a WebSocket session.

use std::fmt;

/// A close code (RFC 6455 section 7.4): the first two bytes of a Close frame's payload.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CloseCode(u16);

impl CloseCode {
    /// 1000: the purpose of the connection was fulfilled.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, unanswered ping).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: the peer broke the protocol.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a kind of data the endpoint does not accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1007: data inconsistent with the message's type (invalid UTF-8 text, bad compression).
    pub const INVALID_PAYLOAD: CloseCode = CloseCode(1007);
    /// 1008: a message that violates the endpoint's policy.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: a frame or message too large to process.
    pub const MESSAGE_TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: an unexpected condition on the server.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1013: Try Again Later (a temporary condition: the server's memory budget).
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);

    /// The code `code`.
    pub const fn new(code: u16) -> CloseCode {
        CloseCode(code)
    }

    /// The code's number.
    pub const fn as_u16(self) -> u16 {
        self.0
    }

    /// May a peer send this code (RFC 6455 section 7.4, as the Autobahn test suite reads it:
    /// 1000-1003, 1007-1011, 3000-4999)? [`WebSocket::close`](super::WebSocket::close) sends
    /// any other code as 1011.
    pub const fn is_allowed(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1011 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(code: u16) -> CloseCode {
        CloseCode(code)
    }
}

impl From<CloseCode> for u16 {
    fn from(code: CloseCode) -> u16 {
        code.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// A protocol violation by the peer. Sticky; the Close frame with [`WsError::close_code`] and
/// [`WsError::reason`] is already queued.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WsError {
    /// A frame with a reserved opcode (1002).
    ReservedOpcode,
    /// RSV bits set that no negotiated extension defines (1002).
    ReservedBits,
    /// A control frame without FIN (1002).
    FragmentedControl,
    /// A continuation frame with no message in progress (1002).
    UnexpectedContinuation,
    /// A new data message before the previous one ended (1002).
    UnfinishedMessage,
    /// A client frame without a mask (1002).
    Unmasked,
    /// A control frame with more than 125 payload bytes (1002).
    ControlTooLong,
    /// A 64-bit payload length with its high bit set (1002).
    LengthHighBit,
    /// A frame announcing more than `max_frame` bytes (1009).
    FrameTooLarge,
    /// A message growing past `max_message` bytes (1009).
    MessageTooLarge,
    /// A text message that is not UTF-8 (1007).
    InvalidUtf8,
    /// A compressed message that does not inflate (1007).
    InvalidCompressedData,
    /// A Close payload of one byte (1002).
    OneByteClose,
    /// A Close with a code a peer may not send (1002).
    InvalidCloseCode,
    /// A Close reason that is not UTF-8 (1007).
    CloseReasonNotUtf8,
    /// A message that does not fit the server's memory budget (1013, Try Again Later).
    OverBudget,
}

impl WsError {
    /// The close code sent to the peer.
    pub const fn close_code(self) -> CloseCode {
        match self {
            WsError::ReservedOpcode
            | WsError::ReservedBits
            | WsError::FragmentedControl
            | WsError::UnexpectedContinuation
            | WsError::UnfinishedMessage
            | WsError::Unmasked
            | WsError::ControlTooLong
            | WsError::LengthHighBit
            | WsError::OneByteClose
            | WsError::InvalidCloseCode => CloseCode::PROTOCOL_ERROR,
            WsError::FrameTooLarge | WsError::MessageTooLarge => CloseCode::MESSAGE_TOO_BIG,
            WsError::InvalidUtf8 | WsError::InvalidCompressedData | WsError::CloseReasonNotUtf8 => {
                CloseCode::INVALID_PAYLOAD
            }
            WsError::OverBudget => CloseCode::TRY_AGAIN_LATER,
        }
    }

    /// The close reason sent to the peer.
    pub const fn reason(self) -> &'static str {
        match self {
            WsError::ReservedOpcode => "reserved opcode",
            WsError::ReservedBits => "reserved bits set",
            WsError::FragmentedControl => "fragmented control frame",
            WsError::UnexpectedContinuation => "continuation without a message",
            WsError::UnfinishedMessage => "new message before the last one ended",
            WsError::Unmasked => "unmasked client frame",
            WsError::ControlTooLong => "control frame over 125 bytes",
            WsError::LengthHighBit => "frame length with the high bit set",
            WsError::FrameTooLarge => "frame too large",
            WsError::MessageTooLarge => "message too large",
            WsError::InvalidUtf8 => "invalid UTF-8 in a text message",
            WsError::InvalidCompressedData => "invalid compressed data",
            WsError::OneByteClose => "close payload of one byte",
            WsError::InvalidCloseCode => "invalid close code",
            WsError::CloseReasonNotUtf8 => "close reason not UTF-8",
            WsError::OverBudget => "server memory budget exhausted, try again later",
        }
    }
}

impl fmt::Display for WsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "websocket error {}: {}",
            self.close_code(),
            self.reason()
        )
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
