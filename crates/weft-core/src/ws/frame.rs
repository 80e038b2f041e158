//! Frame headers (RFC 6455 section 5.2) and masking (section 5.3).

/// A frame opcode (RFC 6455 section 5.2); the reserved ones are not representable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OpCode {
    Continuation = 0x0,
    Text = 0x1,
    Binary = 0x2,
    Close = 0x8,
    Ping = 0x9,
    Pong = 0xA,
}

impl OpCode {
    /// The opcode in the low four bits of a frame's first byte; `None` when reserved.
    pub(crate) fn from_bits(first: u8) -> Option<OpCode> {
        match first & 0x0F {
            0x0 => Some(OpCode::Continuation),
            0x1 => Some(OpCode::Text),
            0x2 => Some(OpCode::Binary),
            0x8 => Some(OpCode::Close),
            0x9 => Some(OpCode::Ping),
            0xA => Some(OpCode::Pong),
            _ => None,
        }
    }

    /// Close, Ping or Pong.
    pub(crate) fn is_control(self) -> bool {
        (self as u8) & 0x8 != 0
    }

    /// Text or Binary: the first frame of a data message.
    pub(crate) fn starts_message(self) -> bool {
        matches!(self, OpCode::Text | OpCode::Binary)
    }
}

/// The first header byte's flag bits.
pub(crate) const FIN: u8 = 0x80;
pub(crate) const RSV1: u8 = 0x40;
pub(crate) const RSV2_RSV3: u8 = 0x30;
/// The second header byte's mask bit.
pub(crate) const MASKED: u8 = 0x80;

/// Largest payload of a control frame.
pub(crate) const MAX_CONTROL_PAYLOAD: usize = 125;

/// The payload length field of a frame header, once its bytes are there: the length and the
/// header's total size (mask key included), or `None` while bytes are missing. Non-minimal
/// encodings are accepted (RFC 6455 does not forbid them to a receiver).
pub(crate) fn payload_length(header: &[u8]) -> Option<(u64, usize)> {
    let second = *header.get(1)?;
    let mask_len = if second & MASKED != 0 { 4 } else { 0 };
    match second & 0x7F {
        126 => {
            let bytes = header.get(2..4)?;
            let len = u16::from_be_bytes([*bytes.first()?, *bytes.get(1)?]);
            Some((u64::from(len), 4 + mask_len))
        }
        127 => {
            let bytes: [u8; 8] = header.get(2..10)?.try_into().ok()?;
            Some((u64::from_be_bytes(bytes), 10 + mask_len))
        }
        short => Some((u64::from(short), 2 + mask_len)),
    }
}

/// The masking key of a frame header of `header_len` bytes (its last four).
pub(crate) fn masking_key(header: &[u8], header_len: usize) -> Option<[u8; 4]> {
    header
        .get(header_len.checked_sub(4)?..header_len)?
        .try_into()
        .ok()
}

/// XORs `data` with the masking `key`, `offset` bytes into the payload: 8 bytes at a time
/// with the key repeated into a word, then byte by byte.
pub(crate) fn unmask(data: &mut [u8], key: [u8; 4], offset: usize) {
    let mut rotated = key;
    rotated.rotate_left(offset % 4);
    let [a, b, c, d] = rotated;
    // The word's bytes in memory are the key's bytes in order, whatever the byte order.
    let word_key = u64::from_ne_bytes([a, b, c, d, a, b, c, d]);
    let mut chunks = data.chunks_exact_mut(8);
    for chunk in &mut chunks {
        if let Ok(bytes) = <&mut [u8; 8]>::try_from(chunk) {
            *bytes = (u64::from_ne_bytes(*bytes) ^ word_key).to_ne_bytes();
        }
    }
    for (byte, k) in chunks
        .into_remainder()
        .iter_mut()
        .zip(rotated.iter().cycle())
    {
        *byte ^= k;
    }
}

/// Appends an unmasked server frame header (FIN set) for a payload of `len` bytes.
pub(crate) fn write_header(out: &mut Vec<u8>, opcode: OpCode, rsv1: bool, len: usize) {
    let first = FIN | if rsv1 { RSV1 } else { 0 } | opcode as u8;
    if len < 126 {
        out.extend_from_slice(&[first, len as u8]);
    } else if let Ok(short) = u16::try_from(len) {
        let [a, b] = short.to_be_bytes();
        out.extend_from_slice(&[first, 126, a, b]);
    } else {
        out.extend_from_slice(&[first, 127]);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}
