//! Readable differences between an expected and an actual byte stream.

use crate::escape::{escape_byte_into, escape_bytes};

const BEFORE: usize = 32;
const AFTER: usize = 48;
const MAX_DIFF_LINES: usize = 40;
const MAX_LCS_CELLS: usize = 4_000_000;
const END: &str = "<<end>>";

/// Offset of the first byte where the two differ (the shorter length when
/// one is a prefix of the other), or `None` when equal.
pub fn first_difference(a: &[u8], b: &[u8]) -> Option<usize> {
    if a == b {
        return None;
    }
    Some(
        a.iter()
            .zip(b)
            .position(|(x, y)| x != y)
            .unwrap_or(a.len().min(b.len())),
    )
}

/// 1-based line and column (in bytes) of `offset`.
fn line_col(data: &[u8], offset: usize) -> (usize, usize) {
    let before = &data[..offset.min(data.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let col = offset
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |p| p + 1)
        + 1;
    (line, col)
}

fn window(data: &[u8], from: usize, at: usize) -> (String, String) {
    let prefix = if from > 0 { "..." } else { "" };
    let mut head = String::from(prefix);
    head.push_str(&escape_bytes(&data[from..at.min(data.len())]));
    let mut tail = String::new();
    if at >= data.len() {
        tail.push_str(END);
    } else {
        let stop = (at + AFTER).min(data.len());
        for &b in &data[at..stop] {
            escape_byte_into(b, &mut tail);
        }
        if stop < data.len() {
            tail.push_str("...");
        } else {
            tail.push_str(END);
        }
    }
    (head, tail)
}

/// Renders the difference as indented lines (each starting with four
/// spaces and ending with `\n`): sizes, the first differing offset with a
/// caret under it, then a line-by-line diff of the escaped streams.
pub fn render(expected: &[u8], actual: &[u8]) -> String {
    render_labeled(("expected", "actual"), expected, actual)
}

/// [`render`] with other names than "expected" and "actual" (for example
/// two targets).
pub fn render_labeled((la, lb): (&str, &str), a: &[u8], b: &[u8]) -> String {
    let Some(at) = first_difference(a, b) else {
        return "    (no difference)\n".into();
    };
    let (line, col) = line_col(a, at);
    let mut out = format!(
        "    first difference at byte {at} (line {line}, column {col}); {la} has {} bytes, {lb} {}\n",
        a.len(),
        b.len()
    );
    let from = at.saturating_sub(BEFORE);
    // Both windows start at the same byte and share the bytes up to `at`,
    // so one caret column fits both lines.
    let (a_head, a_tail) = window(a, from, at);
    let (_, b_tail) = window(b, from, at);
    let width = la.len().max(lb.len()) + 2;
    out.push_str(&format!(
        "    {:<width$}{a_head}{a_tail}\n",
        format!("{la}:")
    ));
    out.push_str(&format!(
        "    {:<width$}{a_head}{b_tail}\n",
        format!("{lb}:")
    ));
    out.push_str(&format!(
        "    {}^\n",
        " ".repeat(width + a_head.chars().count())
    ));
    out.push_str(&line_diff((la, lb), a, b));
    out
}

fn split_lines(data: &[u8]) -> Vec<&[u8]> {
    let mut lines = Vec::new();
    let mut start = 0;
    for (i, &b) in data.iter().enumerate() {
        if b == b'\n' {
            lines.push(&data[start..=i]);
            start = i + 1;
        }
    }
    if start < data.len() {
        lines.push(&data[start..]);
    }
    lines
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Op {
    Same,
    Del,
    Add,
}

/// Line diff (`-` first, `+` second) with one line of context; empty when
/// the inputs are too large for the quadratic algorithm.
fn line_diff((la, lb): (&str, &str), expected: &[u8], actual: &[u8]) -> String {
    let a = split_lines(expected);
    let b = split_lines(actual);
    if a.len().saturating_mul(b.len()) > MAX_LCS_CELLS || (a.len() <= 1 && b.len() <= 1) {
        return String::new();
    }
    // lcs[i][j] = LCS length of a[i..], b[j..].
    let w = b.len() + 1;
    let mut lcs = vec![0u32; (a.len() + 1) * w];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i * w + j] = if a[i] == b[j] {
                lcs[(i + 1) * w + j + 1] + 1
            } else {
                lcs[(i + 1) * w + j].max(lcs[i * w + j + 1])
            };
        }
    }
    let mut ops: Vec<(Op, &[u8])> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((Op::Same, a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[(i + 1) * w + j] >= lcs[i * w + j + 1]) {
            ops.push((Op::Del, a[i]));
            i += 1;
        } else {
            ops.push((Op::Add, b[j]));
            j += 1;
        }
    }
    let near_change = |k: usize| {
        let lo = k.saturating_sub(1);
        let hi = (k + 1).min(ops.len() - 1);
        (lo..=hi).any(|x| ops[x].0 != Op::Same)
    };
    let mut out = format!("    line diff (- {la}, + {lb}):\n");
    let mut shown = 0;
    let mut skipped = false;
    for (k, (op, text)) in ops.iter().enumerate() {
        if !near_change(k) {
            skipped = true;
            continue;
        }
        if shown == MAX_DIFF_LINES {
            out.push_str("      ... (diff truncated)\n");
            break;
        }
        if skipped {
            out.push_str("      ...\n");
            skipped = false;
        }
        let mark = match op {
            Op::Same => ' ',
            Op::Del => '-',
            Op::Add => '+',
        };
        out.push_str(&format!("      {mark} {}\n", escape_bytes(text)));
        shown += 1;
    }
    if skipped {
        out.push_str("      ...\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_difference_cases() {
        assert_eq!(first_difference(b"abc", b"abc"), None);
        assert_eq!(first_difference(b"abc", b"abd"), Some(2));
        assert_eq!(first_difference(b"abc", b"ab"), Some(2));
        assert_eq!(first_difference(b"", b"x"), Some(0));
    }

    #[test]
    fn caret_points_at_first_difference() {
        let e = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\n";
        let a = b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\n";
        let r = render(e, a);
        let lines: Vec<&str> = r.lines().collect();
        assert!(lines[0].contains("byte 17 (line 2, column 1)"), "{r}");
        assert!(lines[0].contains("expected has 45 bytes, actual 45"), "{r}");
        let exp = lines[1].strip_prefix("    expected: ").unwrap();
        let act = lines[2].strip_prefix("    actual:   ").unwrap();
        let caret = lines[3].find('^').unwrap() - "              ".len();
        assert_eq!(&exp[caret..caret + 1], "C");
        assert_eq!(&act[caret..caret + 1], "c");
        assert_eq!(&exp[..caret], &act[..caret]);
        assert!(exp.starts_with("HTTP/1.1 200 OK\\r\\n"));
        assert!(
            r.contains("      - Content-Type: text/plain\\r\\n\n"),
            "{r}"
        );
        assert!(
            r.contains("      + content-type: text/plain\\r\\n\n"),
            "{r}"
        );
    }

    #[test]
    fn long_prefix_is_elided_and_end_marked() {
        let e: Vec<u8> = [vec![b'a'; 100], b"XYZ".to_vec()].concat();
        let a = vec![b'a'; 100];
        let r = render(&e, &a);
        let lines: Vec<&str> = r.lines().collect();
        assert!(lines[1].starts_with("    expected: ..."), "{r}");
        assert!(lines[1].ends_with("XYZ<<end>>"), "{r}");
        assert!(
            lines[2].ends_with(&format!("{}<<end>>", "a".repeat(32))),
            "{r}"
        );
        let caret = lines[3].find('^').unwrap();
        assert_eq!(caret, "    expected: ".len() + 3 + 32);
    }

    #[test]
    fn line_diff_shows_context_and_elides() {
        let mut e = Vec::new();
        for i in 0..20 {
            e.extend_from_slice(format!("line {i}\n").as_bytes());
        }
        let a = String::from_utf8(e.clone())
            .unwrap()
            .replace("line 10\n", "line ten\n");
        let r = render(&e, a.as_bytes());
        assert!(
            r.contains("      - line 10\\n\n      + line ten\\n\n"),
            "{r}"
        );
        assert!(r.contains("        line 9\\n\n"), "{r}");
        assert!(!r.contains("line 3\\n"), "{r}");
        assert!(r.contains("      ...\n"), "{r}");
    }

    #[test]
    fn escapes_in_window() {
        let r = render(b"a\x00b", b"a\x01b");
        assert!(r.contains("expected: a\\x00b<<end>>"), "{r}");
        assert!(r.contains("actual:   a\\x01b<<end>>"), "{r}");
        let r = render_labeled(("native", "wasm"), b"ab", b"ac");
        assert!(
            r.contains("    native: ab<<end>>\n    wasm:   ac<<end>>\n             ^\n"),
            "{r}"
        );
    }
}
