//! Character classes of RFC 9110 section 5.6 and small byte helpers.

// Character classes checked a byte at a time are 256-entry tables: one load per byte is
// cheaper than a chain of range tests.

/// `tchar` of RFC 9110 section 5.6.2: the characters of a token.
static TCHAR: [bool; 256] = alphanumeric_and(b"!#$%&'*+-.^_`|~");

/// The bytes of a reg-name other than its pct-encoded octets (RFC 3986 section 3.2.2):
/// unreserved and sub-delims. With `:`, also what an IPvFuture address holds after its `.`.
static REG_NAME_CHAR: [bool; 256] = alphanumeric_and(b"-._~!$&'()*+,;=");

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

fn is_reg_name_char(b: u8) -> bool {
    REG_NAME_CHAR.get(usize::from(b)).copied().unwrap_or(false)
}

/// Splits `uri-host [":" port]` (RFC 9110 section 7.2: a Host value, or an http URI's
/// authority without userinfo) into the host and the port (the digits after the colon, maybe
/// none). `None` unless the host is a non-empty RFC 3986 host (reg-name, which covers IPv4
/// addresses, or IP-literal) and the port is `*DIGIT`.
pub(crate) fn split_host_port(s: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let host_len = match s.first() {
        Some(b'[') => s.iter().position(|&b| b == b']')? + 1,
        _ => s.iter().position(|&b| b == b':').unwrap_or(s.len()),
    };
    let (host, rest) = s.split_at_checked(host_len)?;
    if !is_uri_host(host) {
        return None;
    }
    match rest {
        [] => Some((host, None)),
        [b':', port @ ..] if port.iter().all(u8::is_ascii_digit) => Some((host, Some(port))),
        _ => None,
    }
}

/// Is `host` a non-empty RFC 3986 host: an IP-literal or a reg-name?
fn is_uri_host(host: &[u8]) -> bool {
    match host {
        [] => false,
        [b'[', inner @ .., b']'] => is_ipv6_address(inner) || is_ipv_future(inner),
        _ => is_reg_name(host),
    }
}

/// `reg-name = *( unreserved / pct-encoded / sub-delims )`.
fn is_reg_name(s: &[u8]) -> bool {
    let mut rest = s;
    loop {
        let run = rest.iter().position(|&b| !is_reg_name_char(b));
        match run.and_then(|at| rest.get(at..)) {
            None => return true,
            Some([b'%', hi, lo, tail @ ..]) if hi.is_ascii_hexdigit() && lo.is_ascii_hexdigit() => {
                rest = tail;
            }
            Some(_) => return false,
        }
    }
}

/// `IPv6address` of RFC 3986 section 3.2.2 (the text forms of RFC 4291 section 2.2, without a
/// zone), as the standard library parses it.
fn is_ipv6_address(s: &[u8]) -> bool {
    std::str::from_utf8(s)
        .ok()
        .and_then(|s| s.parse::<std::net::Ipv6Addr>().ok())
        .is_some()
}

/// `IPvFuture = "v" 1*HEXDIG "." 1*( unreserved / sub-delims / ":" )`.
fn is_ipv_future(s: &[u8]) -> bool {
    let [b'v' | b'V', rest @ ..] = s else {
        return false;
    };
    let version = rest.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    match rest.get(version..) {
        Some([b'.', address @ ..]) if version > 0 && !address.is_empty() => {
            address.iter().all(|&b| b == b':' || is_reg_name_char(b))
        }
        _ => false,
    }
}

/// A non-empty token.
pub fn is_token(s: &[u8]) -> bool {
    !s.is_empty() && token_len(s) == s.len()
}

/// Length of the run of tchars at the start of `s`.
pub(crate) fn token_len(s: &[u8]) -> usize {
    // Header names and methods are mostly letters and `-`: whole words of those are skipped
    // at once, and the table takes over at the first other byte, unless it is the `:` or SP
    // that normally ends the token.
    let common = marked_prefix_len(s, bytes_not_letter_or_dash, |b| {
        !(b.is_ascii_alphabetic() || b == b'-')
    });
    if let Some(b':' | b' ') | None = s.get(common) {
        return common;
    }
    let rest = s.get(common..).unwrap_or(&[]);
    common
        + rest
            .iter()
            .position(|&b| !is_tchar(b))
            .unwrap_or(rest.len())
}

/// `field-vchar` plus SP and HTAB: what may appear inside a field value (RFC 9110 section 5.5).
/// Excludes every CTL (including NUL, CR, LF, VT) and DEL; allows obs-text. The reference the
/// word-at-a-time [`field_value_len`] is tested against.
#[cfg(test)]
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

/// Whether the target has vector registers that the compiler uses for [`long_prefix_len`]
/// (x86-64 and AArch64 always do; wasm32 only with the `simd128` feature). Without them a
/// block check costs more than the word scan it would save.
const VECTOR_BLOCKS: bool = cfg!(any(
    target_feature = "sse2",
    target_feature = "neon",
    target_feature = "simd128"
));

/// [`marked_prefix_len`] for runs that may be long: whole 16-byte blocks are checked first, with
/// a fold (no early exit) that the compiler turns into a few vector compares where the target
/// has vector registers. In the block that holds the end of the run, the two words are marked
/// at once and the lower mark is picked without a branch.
#[inline(always)]
fn long_prefix_len(s: &[u8], marks: impl Fn(u64) -> u64, ends: impl Fn(u8) -> bool) -> usize {
    if !VECTOR_BLOCKS {
        return marked_prefix_len(s, marks, ends);
    }
    let mut blocks = s.chunks_exact(16);
    let mut len = 0;
    for block in blocks.by_ref() {
        let Ok(block) = <[u8; 16]>::try_from(block) else {
            break;
        };
        if block.iter().fold(false, |any, &b| any | ends(b)) {
            let word = u128::from_le_bytes(block);
            let low = marks(word as u64);
            let high = marks((word >> 64) as u64);
            // `marks` flags the first byte `ends` accepts: if not in the low word, in the high.
            let bit = if low != 0 {
                low.trailing_zeros()
            } else {
                64 + high.trailing_zeros()
            };
            return len + (bit / 8) as usize;
        }
        len += 16;
    }
    len + marked_prefix_len(blocks.remainder(), marks, ends)
}

/// Length of the run of field-value bytes (HTAB, SP, VCHAR, obs-text) at the start of `s`:
/// it ends at the first CTL other than HTAB (normally the CR of the line's CRLF) or DEL.
#[inline(always)]
pub(crate) fn field_value_len(s: &[u8]) -> usize {
    let mut len = ctl_free_len(s);
    // The scan stops at HTAB too; tabs in values are rare enough to be stepped over here.
    while let Some(b'\t') = s.get(len) {
        len += 1;
        len += ctl_free_len(s.get(len..).unwrap_or(&[]));
    }
    len
}

/// Length of the run before the first CTL (HTAB included) or DEL in `s`.
#[inline(always)]
fn ctl_free_len(s: &[u8]) -> usize {
    long_prefix_len(
        s,
        |w| bytes_below(w, 0x20) | bytes_equal(w, 0x7f),
        |b| b < 0x20 || b == 0x7f,
    )
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

/// Position of the first `byte` in `s`.
#[inline(always)]
pub(crate) fn position_of(s: &[u8], byte: u8) -> Option<usize> {
    let len = long_prefix_len(s, |w| bytes_equal(w, byte), |b| b == byte);
    (len < s.len()).then_some(len)
}

/// Position of the first `byte` in `s`, for a `byte` that is expected within a few words
/// (no block step).
#[inline(always)]
pub(crate) fn short_position_of(s: &[u8], byte: u8) -> Option<usize> {
    let len = marked_prefix_len(s, |w| bytes_equal(w, byte), |b| b == byte);
    (len < s.len()).then_some(len)
}

/// Is `b` optional whitespace (SP / HTAB)?
pub fn is_ows(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// [`trim_ows`] for a field value as it follows the colon: most have exactly one SP before them
/// and no whitespace after, which is checked for first.
#[inline(always)]
pub(crate) fn trim_field_value(s: &[u8]) -> &[u8] {
    let after_sp = match s {
        [b' ', rest @ ..] => rest,
        _ => s,
    };
    match (after_sp.first(), after_sp.last()) {
        (Some(b' ' | b'\t'), _) | (_, Some(b' ' | b'\t')) => trim_ows(after_sp),
        _ => after_sp,
    }
}

/// Trims optional whitespace (SP / HTAB) at both ends.
#[inline]
pub fn trim_ows(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| !is_ows(b)).unwrap_or(s.len());
    let end = s
        .iter()
        .rposition(|&b| !is_ows(b))
        .map_or(start, |last| last + 1);
    s.get(start..end).unwrap_or(&[])
}

/// Does `s` equal `lower`, ignoring ASCII case? For the names and values this crate acts on:
/// `s` holds no CTL but HTAB (a token or a validated field value) and `lower` is lowercase
/// letters, digits and `-`. Setting bit 0x20 then compares exactly, one OR per byte: it
/// lowercases a letter and leaves digits and `-` alone, and the only other bytes it turns into
/// a digit or `-` are CTLs (0x10-0x19, 0x0D), which `s` does not hold.
pub(crate) fn eq_lower(s: &[u8], lower: &[u8]) -> bool {
    if s.len() != lower.len() {
        return false;
    }
    let word = |bytes: &[u8; 8]| u64::from_le_bytes(*bytes) | (ONES * 0x20);
    match (s.first_chunk(), s.last_chunk()) {
        // 8 to 16 bytes: two (overlapping) words each.
        (Some(first), Some(last)) if s.len() <= 16 => {
            lower.first_chunk().is_some_and(|l| word(first) == word(l))
                && lower.last_chunk().is_some_and(|l| word(last) == word(l))
        }
        _ => s.iter().zip(lower).all(|(&b, &l)| b | 0x20 == l),
    }
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
            let reg_name = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=".contains(&b);
            assert_eq!(is_reg_name_char(b), reg_name, "{b:#x}");
        }
    }

    #[test]
    fn host_and_port_are_split() {
        let split = |s: &'static [u8]| split_host_port(s);
        assert_eq!(split(b"h"), Some((&b"h"[..], None)));
        assert_eq!(split(b"h:"), Some((&b"h"[..], Some(&b""[..]))));
        assert_eq!(split(b"h:80"), Some((&b"h"[..], Some(&b"80"[..]))));
        assert_eq!(split(b"[::1]:80"), Some((&b"[::1]"[..], Some(&b"80"[..]))));
        assert_eq!(split(b"[v1.a:b]"), Some((&b"[v1.a:b]"[..], None)));
        for bad in [
            &b""[..],
            b":80",
            b"h:8o",
            b"a:b:c",
            b"[::1",
            b"[::1]x",
            b"::1",
            b"u@h",
        ] {
            assert_eq!(split_host_port(bad), None, "{bad:?}");
        }
    }

    /// `len` bytes of `fill` with `byte` at `at`.
    fn with_byte_at(len: usize, fill: u8, at: usize, byte: u8) -> Vec<u8> {
        (0..len)
            .map(|i| if i == at { byte } else { fill })
            .collect()
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
                        let s = with_byte_at(len, fill, at, special);
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
    fn long_runs_match_byte_scans() {
        // Blocks and words both, and the word scan alone (what targets without vector
        // registers run), over runs that end at every position of several blocks.
        let value_marks = |w| bytes_below(w, 0x20) | bytes_equal(w, 0x7f);
        let value_ends = |b: u8| b < 0x20 || b == 0x7f;
        for len in [40, 63, 64, 65] {
            for at in 0..len {
                for &special in &[0x00, 0x09, 0x0d, 0x1f, 0x7f] {
                    let s = with_byte_at(len, b'x', at, special);
                    let want = s.iter().position(|&b| value_ends(b)).unwrap_or(len);
                    assert_eq!(ctl_free_len(&s), want, "{s:?}");
                    assert_eq!(
                        marked_prefix_len(&s, value_marks, value_ends),
                        want,
                        "{s:?}"
                    );
                    assert_eq!(position_of(&s, special), Some(at), "{s:?}");
                    assert_eq!(short_position_of(&s, special), Some(at), "{s:?}");
                }
            }
            let clean = vec![b'x'; len];
            assert_eq!(ctl_free_len(&clean), len);
            assert_eq!(position_of(&clean, b'\r'), None);
        }
    }

    #[test]
    fn word_token_scan_matches_the_table() {
        for len in 0..20 {
            for at in 0..len {
                for b in 0..=255u8 {
                    for fill in [b'a', b'Z', b'0', b'-', b'_'] {
                        let s = with_byte_at(len, fill, at, b);
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
    fn lowercase_comparison() {
        assert!(eq_lower(b"Content-Length", b"content-length"));
        assert!(eq_lower(b"CONTENT-LENGTH", b"content-length"));
        assert!(!eq_lower(b"Content-Lengtx", b"content-length"));
        assert!(!eq_lower(b"Dontent-Length", b"content-length"));
        assert!(eq_lower(b"Transfer-Encoding", b"transfer-encoding"));
        assert!(!eq_lower(b"Transfer-Encodinf", b"transfer-encoding"));
        assert!(eq_lower(b"100-Continue", b"100-continue"));
        assert!(eq_lower(b"HOST", b"host"));
        assert!(!eq_lower(b"hosts", b"host"));
        assert!(!eq_lower(b"h0st", b"host"));
        // Every byte a token or a field value may hold, at every position of short and long
        // strings, against letters, digits and `-`.
        let allowed = (0..=255u8).filter(|&b| b == b'\t' || b >= 0x20);
        for b in allowed {
            for lower in [
                &b"a"[..],
                b"z",
                b"-",
                b"0",
                b"9",
                b"keep-alive",
                b"100-continue",
            ] {
                for at in 0..lower.len() {
                    let s: Vec<u8> = (0..lower.len())
                        .map(|i| {
                            if i == at {
                                b
                            } else {
                                lower.get(i).copied().unwrap_or(0)
                            }
                        })
                        .collect();
                    assert_eq!(eq_lower(&s, lower), s.eq_ignore_ascii_case(lower), "{s:?}");
                }
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
