//! An incremental UTF-8 validator (RFC 3629): it is fed a text message in arbitrary pieces and
//! reports an invalid sequence at its first invalid byte, so that a text message can be failed
//! before the rest of it (or even the rest of its frame) has arrived.

/// Bytes with the high bit set in any of the 8 lanes of a word.
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// The validator's state between pieces: how many continuation bytes the current sequence
/// still needs and the range the next one must fall in (the narrower first-continuation ranges
/// exclude overlong forms, UTF-16 surrogates and code points above U+10FFFF).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Utf8Validator {
    needed: u8,
    low: u8,
    high: u8,
}

impl Default for Utf8Validator {
    fn default() -> Utf8Validator {
        Utf8Validator {
            needed: 0,
            low: 0x80,
            high: 0xBF,
        }
    }
}

/// Invalid UTF-8 was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct InvalidUtf8;

impl Utf8Validator {
    /// Validates the next piece of the text.
    pub(crate) fn feed(&mut self, piece: &[u8]) -> Result<(), InvalidUtf8> {
        let mut rest = piece;
        loop {
            if self.needed == 0 {
                // Between characters: skip ASCII a word at a time.
                while let Some((word, tail)) = rest.split_first_chunk::<8>() {
                    if u64::from_ne_bytes(*word) & HIGH_BITS != 0 {
                        break;
                    }
                    rest = tail;
                }
            }
            let Some((&byte, tail)) = rest.split_first() else {
                return Ok(());
            };
            rest = tail;
            self.step(byte)?;
        }
    }

    /// One byte.
    #[inline]
    fn step(&mut self, byte: u8) -> Result<(), InvalidUtf8> {
        if self.needed > 0 {
            if byte < self.low || byte > self.high {
                return Err(InvalidUtf8);
            }
            self.needed -= 1;
            self.low = 0x80;
            self.high = 0xBF;
            return Ok(());
        }
        let (needed, low, high) = match byte {
            0x00..=0x7F => return Ok(()),
            // 0xC0 and 0xC1 would only start overlong two-byte forms.
            0xC2..=0xDF => (1, 0x80, 0xBF),
            // Overlong three-byte forms.
            0xE0 => (2, 0xA0, 0xBF),
            // U+D800..U+DFFF are surrogates.
            0xED => (2, 0x80, 0x9F),
            0xE1..=0xEC | 0xEE..=0xEF => (2, 0x80, 0xBF),
            // Overlong four-byte forms.
            0xF0 => (3, 0x90, 0xBF),
            0xF1..=0xF3 => (3, 0x80, 0xBF),
            // Above U+10FFFF.
            0xF4 => (3, 0x80, 0x8F),
            _ => return Err(InvalidUtf8),
        };
        self.needed = needed;
        self.low = low;
        self.high = high;
        Ok(())
    }

    /// Whether the text may end here (no character is cut short). The codec checks a whole
    /// message with the standard library when it ends, so only the tests ask.
    #[cfg(test)]
    pub(crate) fn is_complete(&self) -> bool {
        self.needed == 0
    }

    /// Back to the start of a new text.
    pub(crate) fn reset(&mut self) {
        *self = Utf8Validator::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `bytes` whole and byte by byte; both must agree with the standard library.
    fn agrees(bytes: &[u8]) {
        let expected = std::str::from_utf8(bytes).is_ok();
        let mut whole = Utf8Validator::default();
        let whole_ok = whole.feed(bytes).is_ok() && whole.is_complete();
        assert_eq!(whole_ok, expected, "{bytes:x?}");
        let mut split = Utf8Validator::default();
        let split_ok = bytes.iter().all(|b| split.feed(&[*b]).is_ok()) && split.is_complete();
        assert_eq!(split_ok, expected, "{bytes:x?}");
    }

    #[test]
    fn edge_cases_agree_with_std() {
        let cases: &[&[u8]] = &[
            b"",
            b"hello world, a longer ASCII run",
            "κόσμε".as_bytes(),
            "\u{7f}\u{80}\u{7ff}\u{800}\u{ffff}\u{10000}\u{10ffff}".as_bytes(),
            &[0xC0, 0x80],
            &[0xC1, 0xBF],
            &[0xE0, 0x80, 0x80],
            &[0xE0, 0x9F, 0xBF],
            &[0xED, 0xA0, 0x80],
            &[0xED, 0xBF, 0xBF],
            &[0xF0, 0x80, 0x80, 0x80],
            &[0xF0, 0x8F, 0xBF, 0xBF],
            &[0xF4, 0x90, 0x80, 0x80],
            &[0xF5, 0x80, 0x80, 0x80],
            &[0xFE],
            &[0xFF],
            &[0x80],
            &[0xCE, 0xBA, 0xE1],
            &[0xF0, 0x90, 0x80],
            b"12345678\xCE\xBA12345678",
        ];
        for case in cases {
            agrees(case);
        }
    }

    #[test]
    fn every_two_byte_sequence_agrees_with_std() {
        for a in 0..=255u8 {
            for b in 0..=255u8 {
                agrees(&[a, b]);
                agrees(&[0xE1, a, b]);
                agrees(&[0xF0, a, b, 0x80]);
                agrees(&[0xF4, a, b, 0x80]);
            }
        }
    }
}
