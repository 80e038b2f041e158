//! Payload escapes used by the transcript format and by diagnostics.
//!
//! Recognised escapes: `\r`, `\n`, `\t`, `\\` and `\xNN` (exactly two hex
//! digits, either case). Every other byte stands for itself.

/// Decodes the escapes of one payload fragment.
///
/// On error returns the byte column (0-based, within `text`) of the bad
/// escape and a message.
pub fn unescape(text: &[u8]) -> Result<Vec<u8>, (usize, String)> {
    let mut out = Vec::with_capacity(text.len());
    let mut i = 0;
    while i < text.len() {
        let b = text[i];
        if b != b'\\' {
            out.push(b);
            i += 1;
            continue;
        }
        let Some(&next) = text.get(i + 1) else {
            return Err((
                i,
                "lone '\\' at end of payload (write '\\\\' for a backslash)".into(),
            ));
        };
        match next {
            b'r' => out.push(b'\r'),
            b'n' => out.push(b'\n'),
            b't' => out.push(b'\t'),
            b'\\' => out.push(b'\\'),
            b'x' => {
                let hi = text.get(i + 2).copied().and_then(hex_val);
                let lo = text.get(i + 3).copied().and_then(hex_val);
                match (hi, lo) {
                    (Some(h), Some(l)) => {
                        out.push(h << 4 | l);
                        i += 4;
                        continue;
                    }
                    _ => {
                        return Err((i, "'\\x' must be followed by exactly two hex digits".into()))
                    }
                }
            }
            other => {
                return Err((
                    i,
                    format!(
                        "unknown escape '\\{}' (known: \\r \\n \\t \\\\ \\xNN)",
                        escape_bytes(&[other])
                    ),
                ))
            }
        }
        i += 2;
    }
    Ok(out)
}

fn hex_val(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Escapes one byte the way [`escape_bytes`] does, appending to `out`.
pub fn escape_byte_into(b: u8, out: &mut String) {
    match b {
        b'\r' => out.push_str("\\r"),
        b'\n' => out.push_str("\\n"),
        b'\t' => out.push_str("\\t"),
        b'\\' => out.push_str("\\\\"),
        0x20..=0x7e => out.push(b as char),
        _ => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\x");
            out.push(HEX[(b >> 4) as usize] as char);
            out.push(HEX[(b & 15) as usize] as char);
        }
    }
}

/// Escapes bytes for display or for writing back into a case file: printable
/// ASCII stays literal, `\r \n \t \\` get their short escapes and every other
/// byte becomes `\xNN`. The result round-trips through [`unescape`].
pub fn escape_bytes(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() + bytes.len() / 8);
    for &b in bytes {
        escape_byte_into(b, &mut out);
    }
    out
}

/// Escapes one fragment for a payload line of a case file. Like
/// [`escape_bytes`], but a space at either end is written `\x20` (and a
/// tab is `\t` anyway) because the parser strips unescaped blanks at the
/// start and end of each payload line.
pub fn escape_for_line(bytes: &[u8]) -> String {
    let mut out = escape_bytes(bytes);
    if out.starts_with(' ') {
        out.replace_range(0..1, "\\x20");
    }
    if out.ends_with(' ') {
        let n = out.len();
        out.replace_range(n - 1..n, "\\x20");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unescape_known_escapes() {
        assert_eq!(
            unescape(br"GET / HTTP/1.1\r\nX: a\tb\\c\x00\xFf").unwrap(),
            b"GET / HTTP/1.1\r\nX: a\tb\\c\x00\xff".to_vec()
        );
    }

    #[test]
    fn unescape_literal_bytes_pass_through() {
        assert_eq!(
            unescape("é # x".as_bytes()).unwrap(),
            "é # x".as_bytes().to_vec()
        );
    }

    #[test]
    fn unescape_errors() {
        assert_eq!(unescape(br"ab\").unwrap_err().0, 2);
        assert_eq!(unescape(br"ab\q").unwrap_err().0, 2);
        assert!(unescape(br"\x4").is_err());
        assert!(unescape(br"\xg0").is_err());
    }

    #[test]
    fn escape_round_trips_every_byte() {
        let all: Vec<u8> = (0..=255u8).collect();
        let esc = escape_bytes(&all);
        assert!(esc.is_ascii());
        assert_eq!(unescape(esc.as_bytes()).unwrap(), all);
    }

    #[test]
    fn escape_for_line_protects_edge_spaces() {
        assert_eq!(escape_for_line(b" a b "), "\\x20a b\\x20");
        assert_eq!(escape_for_line(b" "), "\\x20");
        assert_eq!(escape_for_line(b"x\r\n"), "x\\r\\n");
    }
}
