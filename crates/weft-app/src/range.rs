//! Byte ranges (RFC 9110 section 14): parsing a `Range` field value and resolving it against
//! the length of a representation.
//!
//! Decisions (documented in docs/STATIC.md):
//! - A value that is not `bytes=` followed by a valid range set (unknown unit, bad syntax,
//!   `last < first`, no range at all) is ignored: the whole representation is sent (200).
//! - More than [`MAX_RANGES`] range specs is ignored too (200), a defence against range
//!   amplification: a full answer is always a correct answer to a range request.
//! - Satisfiable ranges are answered in the order requested unless two of them overlap or
//!   touch: then the set is sorted and merged, so no byte is sent twice and the parts are
//!   disjoint (their total never exceeds the length).
//! - Nothing satisfiable: 416 (`Content-Range: bytes */LEN`).
//! - An empty representation is always sent whole: it has no byte to send a range of.

use weft_core::{is_token, trim_ows};

/// Most range specs accepted in one `Range` field; more are ignored (200).
pub const MAX_RANGES: usize = 16;

/// One range spec as written in the request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// `first-last` (`last` absent for `first-`); numbers too large for u64 saturate.
    FromTo { first: u64, last: Option<u64> },
    /// `-n`: the last n bytes.
    Suffix(u64),
}

/// A satisfiable byte range, both ends included (`start <= end < len`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// Number of bytes in the range (at least 1).
    pub fn len(&self) -> u64 {
        self.end - self.start + 1
    }

    /// Always false: a satisfiable range holds at least one byte.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// What to answer a request whose `Range` field (if any) was evaluated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RangeOutcome {
    /// Send the whole representation (no Range, or one that is ignored).
    Full,
    /// 206 with these disjoint ranges: one is a single part, more are `multipart/byteranges`
    /// parts in this order.
    Partial(Vec<ByteRange>),
    /// 416 Range Not Satisfiable.
    Unsatisfiable,
}

/// `1*DIGIT`, saturating at u64::MAX; `None` for an empty or non-digit string.
fn digits(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    let mut n: u64 = 0;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        n = n.saturating_mul(10).saturating_add(u64::from(b - b'0'));
    }
    Some(n)
}

/// Parses a `Range` field value. `None` when it must be ignored: not the `bytes` unit, invalid
/// syntax, no range spec, or more than [`MAX_RANGES`] specs.
pub fn parse(value: &[u8]) -> Option<Vec<RangeSpec>> {
    let value = trim_ows(value);
    let eq = value.iter().position(|&b| b == b'=')?;
    let (unit, rest) = value.split_at(eq);
    if !is_token(unit) {
        return None;
    }
    if !unit.eq_ignore_ascii_case(b"bytes") {
        return None;
    }
    let set = rest.get(1..)?;
    let mut specs = Vec::new();
    for element in set.split(|&b| b == b',') {
        let element = trim_ows(element);
        if element.is_empty() {
            // Empty list elements are allowed and ignored (RFC 9110 section 5.6.1.2).
            continue;
        }
        if specs.len() == MAX_RANGES {
            return None;
        }
        let dash = element.iter().position(|&b| b == b'-')?;
        let (first, last) = element.split_at(dash);
        let last = last.get(1..)?;
        let spec = if first.is_empty() {
            RangeSpec::Suffix(digits(last)?)
        } else {
            let first = digits(first)?;
            let last = if last.is_empty() {
                None
            } else {
                let last = digits(last)?;
                if last < first {
                    return None;
                }
                Some(last)
            };
            RangeSpec::FromTo { first, last }
        };
        specs.push(spec);
    }
    if specs.is_empty() {
        return None;
    }
    Some(specs)
}

/// The range a spec selects from a representation of `len` bytes, `None` when unsatisfiable.
fn resolve(spec: RangeSpec, len: u64) -> Option<ByteRange> {
    let last_byte = len.checked_sub(1)?;
    match spec {
        RangeSpec::FromTo { first, last } => {
            if first > last_byte {
                return None;
            }
            let end = last.map_or(last_byte, |l| l.min(last_byte));
            Some(ByteRange { start: first, end })
        }
        RangeSpec::Suffix(0) => None,
        RangeSpec::Suffix(n) => Some(ByteRange {
            start: len.saturating_sub(n),
            end: last_byte,
        }),
    }
}

/// Sorts and merges ranges that overlap or touch, unless none do (then the requested order
/// is kept).
pub fn coalesce(ranges: Vec<ByteRange>) -> Vec<ByteRange> {
    let mut sorted = ranges.clone();
    sorted.sort_by_key(|r| (r.start, r.end));
    let apart = sorted
        .windows(2)
        .all(|w| matches!(w, [a, b] if b.start > a.end.saturating_add(1)));
    if apart {
        return ranges;
    }
    let mut merged: Vec<ByteRange> = Vec::with_capacity(sorted.len());
    for r in sorted {
        match merged.last_mut() {
            Some(prev) if r.start <= prev.end.saturating_add(1) => prev.end = prev.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged
}

/// Evaluates a `Range` field value against a representation of `len` bytes.
pub fn evaluate(value: &[u8], len: u64) -> RangeOutcome {
    let Some(specs) = parse(value) else {
        return RangeOutcome::Full;
    };
    if len == 0 {
        return RangeOutcome::Full;
    }
    let ranges: Vec<ByteRange> = specs.into_iter().filter_map(|s| resolve(s, len)).collect();
    if ranges.is_empty() {
        return RangeOutcome::Unsatisfiable;
    }
    RangeOutcome::Partial(coalesce(ranges))
}

#[cfg(test)]
#[allow(clippy::panic)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn r(start: u64, end: u64) -> ByteRange {
        ByteRange { start, end }
    }

    fn partial(v: &[(u64, u64)]) -> RangeOutcome {
        RangeOutcome::Partial(v.iter().map(|&(s, e)| r(s, e)).collect())
    }

    #[test]
    fn single_forms() {
        assert_eq!(evaluate(b"bytes=0-4", 12), partial(&[(0, 4)]));
        assert_eq!(evaluate(b"bytes=6-", 12), partial(&[(6, 11)]));
        assert_eq!(evaluate(b"bytes=-5", 12), partial(&[(7, 11)]));
        assert_eq!(evaluate(b"bytes=-50", 12), partial(&[(0, 11)]));
        assert_eq!(evaluate(b"bytes=3-1000", 12), partial(&[(3, 11)]));
        assert_eq!(evaluate(b"bytes=11-11", 12), partial(&[(11, 11)]));
        assert_eq!(evaluate(b"bytes=0-0", 1), partial(&[(0, 0)]));
    }

    #[test]
    fn unit_and_whitespace() {
        assert_eq!(evaluate(b"BYTES=0-1", 12), partial(&[(0, 1)]));
        assert_eq!(
            evaluate(b"  bytes=0-1 , 4-5\t", 12),
            partial(&[(0, 1), (4, 5)])
        );
        assert_eq!(evaluate(b"bytes=0-1,,4-5,", 12), partial(&[(0, 1), (4, 5)]));
        assert_eq!(evaluate(b"items=0-1", 12), RangeOutcome::Full);
        assert_eq!(evaluate(b"bytes =0-1", 12), RangeOutcome::Full);
        assert_eq!(evaluate(b"bytes= 0-1", 12), partial(&[(0, 1)]));
    }

    #[test]
    fn invalid_is_ignored() {
        for v in [
            &b""[..],
            b"bytes",
            b"bytes=",
            b"bytes=,",
            b"bytes=-",
            b"bytes=a-b",
            b"bytes=1-0",
            b"bytes=5-3",
            b"bytes=0-1,5-3",
            b"bytes=1",
            b"bytes=--1",
            b"bytes=1--2",
            b"bytes=0x1-2",
            b"bytes=+1-2",
            b"bytes=1-2-3",
            b"bytes=0 - 1",
            b"=0-1",
            b"by tes=0-1",
        ] {
            assert_eq!(
                evaluate(v, 12),
                RangeOutcome::Full,
                "{:?}",
                String::from_utf8_lossy(v)
            );
        }
    }

    #[test]
    fn unsatisfiable() {
        assert_eq!(evaluate(b"bytes=12-", 12), RangeOutcome::Unsatisfiable);
        assert_eq!(evaluate(b"bytes=12-20", 12), RangeOutcome::Unsatisfiable);
        assert_eq!(evaluate(b"bytes=-0", 12), RangeOutcome::Unsatisfiable);
        assert_eq!(evaluate(b"bytes=20-30,-0", 12), RangeOutcome::Unsatisfiable);
        // One satisfiable spec is enough.
        assert_eq!(evaluate(b"bytes=20-30,0-0", 12), partial(&[(0, 0)]));
        // Huge numbers saturate instead of overflowing.
        assert_eq!(
            evaluate(b"bytes=99999999999999999999999-", 12),
            RangeOutcome::Unsatisfiable
        );
        assert_eq!(
            evaluate(b"bytes=0-99999999999999999999999", 12),
            partial(&[(0, 11)])
        );
        assert_eq!(
            evaluate(b"bytes=-99999999999999999999999", 12),
            partial(&[(0, 11)])
        );
    }

    #[test]
    fn empty_representation_is_sent_whole() {
        assert_eq!(evaluate(b"bytes=0-", 0), RangeOutcome::Full);
        assert_eq!(evaluate(b"bytes=-1", 0), RangeOutcome::Full);
    }

    #[test]
    fn order_kept_when_apart() {
        assert_eq!(
            evaluate(b"bytes=8-9,0-1,4-5", 12),
            partial(&[(8, 9), (0, 1), (4, 5)])
        );
    }

    #[test]
    fn overlapping_and_touching_are_merged() {
        assert_eq!(evaluate(b"bytes=0-4,2-6", 12), partial(&[(0, 6)]));
        assert_eq!(evaluate(b"bytes=0-4,5-6", 12), partial(&[(0, 6)]));
        assert_eq!(
            evaluate(b"bytes=8-9,0-4,3-5", 12),
            partial(&[(0, 5), (8, 9)])
        );
        assert_eq!(evaluate(b"bytes=0-,0-,0-", 12), partial(&[(0, 11)]));
        assert_eq!(evaluate(b"bytes=-3,9-", 12), partial(&[(9, 11)]));
    }

    #[test]
    fn too_many_ranges_are_ignored() {
        let sixteen: Vec<String> = (0..16).map(|i| format!("{}-{}", i * 2, i * 2)).collect();
        let v = format!("bytes={}", sixteen.join(","));
        let RangeOutcome::Partial(parts) = evaluate(v.as_bytes(), 100) else {
            panic!("16 ranges are accepted");
        };
        assert_eq!(parts.len(), 16);
        let v = format!("bytes={},40-41", sixteen.join(","));
        assert_eq!(evaluate(v.as_bytes(), 100), RangeOutcome::Full);
        // The classic amplification request: many overlapping whole-file ranges.
        let v = format!("bytes={}", vec!["0-"; 17].join(","));
        assert_eq!(evaluate(v.as_bytes(), 100), RangeOutcome::Full);
    }

    fn check_outcome(value: &[u8], len: u64) {
        match evaluate(value, len) {
            RangeOutcome::Full | RangeOutcome::Unsatisfiable => {}
            RangeOutcome::Partial(parts) => {
                assert!(!parts.is_empty() && parts.len() <= MAX_RANGES);
                let mut total = 0u64;
                for p in &parts {
                    assert!(p.start <= p.end && p.end < len);
                    total += p.len();
                }
                assert!(total <= len);
                // Disjoint and not touching.
                for (i, a) in parts.iter().enumerate() {
                    for b in parts.iter().skip(i + 1) {
                        assert!(
                            b.start > a.end.saturating_add(1) || a.start > b.end.saturating_add(1)
                        );
                    }
                }
            }
        }
    }

    proptest! {
        #[test]
        fn never_panics_on_bytes(value in proptest::collection::vec(any::<u8>(), 0..64), len in any::<u64>()) {
            check_outcome(&value, len);
        }

        #[test]
        fn never_panics_on_range_like(
            value in "[ \t]{0,2}(bytes|BYTES|x)?=?([ \t]{0,2}[0-9]{0,21}-?[0-9]{0,21}[ \t]{0,2},?){0,20}",
            len in prop_oneof![Just(0u64), 0u64..200, Just(u64::MAX)],
        ) {
            check_outcome(value.as_bytes(), len);
        }
    }
}
