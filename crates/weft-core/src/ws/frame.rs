//! Frame headers (RFC 6455 section 5.2) and masking (section 5.3).

/// Opcodes (RFC 6455 section 5.2).
pub(crate) const OP_CONTINUATION: u8 = 0x0;
pub(crate) const OP_TEXT: u8 = 0x1;
pub(crate) const OP_BINARY: u8 = 0x2;
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PING: u8 = 0x9;
pub(crate) const OP_PONG: u8 = 0xA;

/// The first header byte's flag bits.
pub(crate) const FIN: u8 = 0x80;
pub(crate) const RSV1: u8 = 0x40;
pub(crate) const RSV2_RSV3: u8 = 0x30;
/// The second header byte's mask bit.
pub(crate) const MASKED: u8 = 0x80;

/// Largest payload of a control frame.
pub(crate) const MAX_CONTROL_PAYLOAD: usize = 125;

/// Is `opcode` a control opcode (Close, Ping, Pong and the reserved 0xB-0xF)?
pub(crate) fn is_control(opcode: u8) -> bool {
    opcode & 0x8 != 0
}

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
pub(crate) fn write_header(out: &mut Vec<u8>, opcode: u8, rsv1: bool, len: usize) {
    let first = FIN | if rsv1 { RSV1 } else { 0 } | opcode;
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
