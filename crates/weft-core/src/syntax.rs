//! Character classes of RFC 9110 section 5.6 and small byte helpers.

// Character classes checked a byte at a time are 256-entry tables: one load per byte is
// cheaper than a chain of range tests.

/// `tchar` of RFC 9110 section 5.6.2: the characters of a token.
static TCHAR: [bool; 256] = alphanumeric_and(b"!#$%&'*+-.^_`|~");

/// What a Host value may hold: uri-host (reg-name, IPv4address, IP-literal) and `:` port, RFC
/// 3986 section 3.2.2 (unreserved, pct-encoded, sub-delims, and `:[]` for IP literals).
static HOST_CHAR: [bool; 256] = alphanumeric_and(b"-._~!$&'()*+,;=:[]%");

/// A table marking ASCII letters, digits and `extra`.
// Runs at compile time only: an index out of range would fail the build, not panic.
#[allow(clippy::indexing_slicing)]
const fn alphanumeric_and(extra: &[u8]) -> [bool; 256] {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = (b as u8).is_ascii_alphanumeric();
        b += 1;
    }
    let mut i = 0;
    while i < extra.len() {
        table[extra[i] as usize] = true;
        i += 1;
    }
    table
}

/// `tchar` of RFC 9110 section 5.6.2: the characters of a token.
pub(crate) fn is_tchar(b: u8) -> bool {
    TCHAR.get(usize::from(b)).copied().unwrap_or(false)
}

/// Is every byte of `value` allowed in a Host value (see [`HOST_CHAR`])?
pub(crate) fn is_host_chars(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| HOST_CHAR.get(usize::from(b)).copied().unwrap_or(false))
}

/// A non-empty token.
pub(crate) fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && token_len(s) == s.len()
}

/// Length of the run of tchars at the start of `s`.
pub(crate) fn token_len(s: &[u8]) -> usize {
    // Header names and methods are mostly letters and `-`: whole words of those are
    // skipped at once, and the table takes over at the first other byte (normally the `:` or
    // SP that ends the token).
    let common = marked_prefix_len(s, bytes_not_letter_or_dash, |b| {
        !(b.is_ascii_alphabetic() || b == b'-')
    });
    let rest = s.get(common..).unwrap_or(&[]);
    common + rest.iter().position(|&b| !is_tchar(b)).unwrap_or(rest.len())
}

/// `field-vchar` plus SP and HTAB: what may appear inside a field value (RFC 9110 section 5.5).
/// Excludes every CTL (including NUL, CR, LF, VT) and DEL; allows obs-text.
pub(crate) fn is_field_value_byte(b: u8) -> bool {
    b == b'\t' || (b >= 0x20 && b != 0x7f)
}

// Word-at-a-time scanning (SWAR): eight bytes are loaded as one little-endian u64 and every
// byte of a class is marked at once with a few integer operations. The first byte of the word
// is its lowest byte, so the lowest mark is the first such byte in the input.

/// 0x01 in every byte.
const ONES: u64 = u64::from_le_bytes([0x01; 8]);
/// 0x80 in every byte.
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

/// Sets the high bit of every byte of `word` that is below `n` (`n <= 0x80`). A byte above a
/// marked one may be marked too (the subtraction borrows across bytes), so only the lowest mark
/// is exact: which is all [`marked_prefix_len`] uses.
const fn bytes_below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(ONES * n as u64) & !word & HIGHS
}

/// Sets the high bit of every byte of `word` equal to `b` (only the lowest mark is exact).
const fn bytes_equal(word: u64, b: u8) -> u64 {
    bytes_below(word ^ (ONES * b as u64), 1)
}

/// Sets the high bit of every byte of `word` that is not an ASCII letter or `-`, the bytes
/// most header names and methods are made of. Every mark is exact: the sums below stay within
/// their byte (each operand byte is below 0x80).
const fn bytes_not_letter_or_dash(word: u64) -> u64 {
    let ascii = word & !HIGHS;
    // Setting bit 0x20 lowercases a letter; 0x1f + b has its high bit set for b >= b'a', and
    // 0x05 + b for b > b'z'.
    let lower = ascii | (ONES * 0x20);
    let letter = (lower + ONES * 0x1f) & !(lower + ONES * 0x05);
    // 0x7f + b has its high bit set unless b is zero.
    let dash = !((ascii ^ (ONES * b'-' as u64)) + ONES * 0x7f);
    // Bytes from 0x80 up, whose low seven bits could pass the tests, are marked by `word`.
    (!(letter | dash) | word) & HIGHS
}

/// Length of the prefix of `s` before the first byte that `marks` flags (a word at a time) or
/// that `ends` accepts (one byte at a time, for the last few bytes that fill no word). The two
/// must describe the same class of bytes.
#[inline(always)]
fn marked_prefix_len(s: &[u8], marks: impl Fn(u64) -> u64, ends: impl Fn(u8) -> bool) -> usize {
    let mut words = s.chunks_exact(8);
    let mut len = 0;
    for word in words.by_ref() {
        let Ok(word) = <[u8; 8]>::try_from(word) else {
            break;
        };
        let mask = marks(u64::from_le_bytes(word));
        if mask != 0 {
            return len + (mask.trailing_zeros() / 8) as usize;
        }
        len += 8;
    }
    let tail = words.remainder();
    len + tail.iter().position(|&b| ends(b)).unwrap_or(tail.len())
}

/// Length of the run of field-value bytes at the start of `s` (see [`is_field_value_byte`]):
/// it ends at the first CTL other than HTAB (normally the CR of the line's CRLF) or DEL.
pub(crate) fn field_value_len(s: &[u8]) -> usize {
    let mut len = 0;
    loop {
        // Stops at every CTL and DEL; HTAB is rare enough in values to be stepped over here.
        let rest = s.get(len..).unwrap_or(&[]);
        len += marked_prefix_len(
            rest,
            |w| bytes_below(w, 0x20) | bytes_equal(w, 0x7f),
            |b| b < 0x20 || b == 0x7f,
        );
        match s.get(len) {
            Some(b'\t') => len += 1,
            _ => return len,
        }
    }
}

/// Length of the run of visible ASCII (0x21-0x7E, what a request target is made of) at the
/// start of `s`.
pub(crate) fn visible_ascii_len(s: &[u8]) -> usize {
    marked_prefix_len(
        s,
        |w| bytes_below(w, 0x21) | bytes_equal(w, 0x7f) | (w & HIGHS),
        |b| !(0x21..=0x7e).contains(&b),
    )
}

/// Is `b` optional whitespace (SP / HTAB)?
pub(crate) fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// Trims optional whitespace (SP / HTAB) at both ends.
pub(crate) fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ows(b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| !is_ows(b))
        .map_or(start, |last| last + 1);
    s.get(start..end).unwrap_or(&[])
}

/// Does the token `name` equal `lower`, ignoring ASCII case? `lower` must be lowercase letters
/// and `-` (a header name this crate acts on): setting bit 0x20 of a tchar lowercases a letter
/// and turns no other tchar into a letter or `-`, so one OR per byte compares exactly.
pub(crate) fn token_eq_lower(name: &[u8], lower: &[u8]) -> bool {
    name.len() == lower.len() && name.iter().zip(lower).all(|(&n, &l)| n | 0x20 == l)
}

/// Position of the first `\n` in `s`.
pub(crate) fn find_lf(s: &[u8]) -> Option<usize> {
    s.iter().position(|&b| b == b'\n')
}

/// Iterates over the elements of a comma-separated list (RFC 9110 section 5.6.1), trimmed,
/// skipping empty elements.
pub(crate) fn list_items(value: &[u8]) -> impl Iterator<Item = &[u8]> {
    value
        .split(|&b| b == b',')
        .map(trim_ows)
        .filter(|item| !item.is_empty())
}

/// Does the comma-separated `value` contain `token` (ASCII case-insensitive)?
pub(crate) fn list_contains(value: &[u8], token: &[u8]) -> bool {
    list_items(value).any(|item| item.eq_ignore_ascii_case(token))
}

/// Parses `1*DIGIT` into a u64 without overflow. Signs, spaces and empty input are rejected.
pub(crate) fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
    }
    Some(n)
}

/// Parses `1*HEXDIG` into a u64 without overflow. `0x`, signs and spaces are rejected.
pub(crate) fn parse_hex(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        let d = match b {
            b'0'..=b'9' => b - b'0',
            b'a'..=b'f' => b - b'a' + 10,
            b'A'..=b'F' => b - b'A' + 10,
            _ => return None,
        };
        n = n.checked_mul(16)?.checked_add(u64::from(d))?;
    }
    Some(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_is_strict() {
        assert_eq!(parse_decimal(b"0"), Some(0));
        assert_eq!(parse_decimal(b"0042"), Some(42));
        assert_eq!(parse_decimal(b"18446744073709551615"), Some(u64::MAX));
        assert_eq!(parse_decimal(b"18446744073709551616"), None);
        for bad in [&b""[..], b"+1", b"-1", b" 1", b"1 ", b"1a", b"0x1"] {
            assert_eq!(parse_decimal(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn hex_is_strict() {
        assert_eq!(parse_hex(b"fF"), Some(255));
        assert_eq!(parse_hex(b"ffffffffffffffff"), Some(u64::MAX));
        assert_eq!(parse_hex(b"10000000000000000"), None);
        for bad in [&b""[..], b"0x1", b"+1", b"-1", b" 1", b"1 ", b"g"] {
            assert_eq!(parse_hex(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn tables_match_the_rules() {
        for b in 0..=255u8 {
            let tchar = matches!(b,
                b'!' | b'#' | b'$' | b'%' | b'&' | b'\'' | b'*' | b'+' | b'-' | b'.' | b'^' | b'_'
                | b'`' | b'|' | b'~' | b'0'..=b'9' | b'a'..=b'z' | b'A'..=b'Z');
            assert_eq!(is_tchar(b), tchar, "{b:#x}");
            let host = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]%".contains(&b);
            assert_eq!(is_host_chars(&[b]), host, "{b:#x}");
        }
    }

    #[test]
    fn word_scans_match_byte_scans() {
        // Every class boundary at every position of a word and of the tail, and runs of tabs.
        let specials = [
            0x00, 0x09, 0x0a, 0x0d, 0x1f, 0x20, 0x21, 0x7e, 0x7f, 0x80, 0xff,
        ];
        for len in 0..20 {
            for at in 0..len {
                for &special in &specials {
                    for fill in [b'a', b'\t', 0x80] {
                        let mut s = vec![fill; len];
                        s[at] = special;
                        let value = s.iter().position(|&b| !is_field_value_byte(b));
                        assert_eq!(field_value_len(&s), value.unwrap_or(len), "{s:?}");
                        let visible = s.iter().position(|&b| !(0x21..=0x7e).contains(&b));
                        assert_eq!(visible_ascii_len(&s), visible.unwrap_or(len), "{s:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn word_token_scan_matches_the_table() {
        for len in 0..20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    for fill in [b'a', b'Z', b'0', b'-', b'_'] {
                        let mut s = vec![fill; len];
                        s[at] = b;
                        let want = s.iter().position(|&c| !is_tchar(c)).unwrap_or(len);
                        assert_eq!(token_len(&s), want, "{s:?}");
                    }
                }
            }
        }
        for b in 0..=255u8 {
            let word = u64::from_le_bytes([b; 8]);
            let common = b.is_ascii_alphabetic() || b == b'-';
            assert_eq!(bytes_not_letter_or_dash(word) == 0, common, "{b:#x}");
        }
    }

    #[test]
    fn token_comparison() {
        assert!(token_eq_lower(b"Content-Length", b"content-length"));
        assert!(token_eq_lower(b"HOST", b"host"));
        assert!(!token_eq_lower(b"hosts", b"host"));
        assert!(!token_eq_lower(b"h0st", b"host"));
        for b in 0..=255u8 {
            let name = [b];
            for lower in [&b"a"[..], b"z", b"-"] {
                let want = is_tchar(b) && name.eq_ignore_ascii_case(lower);
                assert_eq!(is_tchar(b) && token_eq_lower(&name, lower), want, "{b:#x}");
            }
        }
    }

    #[test]
    fn ows_trimming() {
        assert_eq!(trim_ows(b" \t a b \t"), b"a b");
        assert_eq!(trim_ows(b" \t "), b"");
        assert_eq!(trim_ows(b""), b"");
        assert_eq!(trim_ows(b"x"), b"x");
    }

    #[test]
    fn lists() {
        assert!(list_contains(b"keep-alive, Close", b"close"));
        assert!(!list_contains(b"closed", b"close"));
        assert_eq!(
            list_items(b" a ,, b\t").collect::<Vec<_>>(),
            vec![&b"a"[..], b"b"]
        );
    }
}
