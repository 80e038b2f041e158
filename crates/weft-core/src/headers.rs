//! A validated header (or trailer) section and iteration over its fields, borrowed from the
//! caller's buffer.

use crate::syntax::{position_of, short_position_of, trim_field_value};

/// One header field, borrowed from the read buffer. The value has its surrounding whitespace
/// trimmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    /// The field name as sent (a token; compare it case-insensitively).
    pub name: &'a str,
    /// The field value, without surrounding whitespace.
    pub value: &'a [u8],
}

/// A validated header (or trailer) section, borrowed from the caller's buffer: its fields in
/// order, iterated and looked up (case-insensitively) without allocating.
//
// Kept as the raw bytes of its lines and, for the first `INDEXED_FIELDS` fields, where each
// line ends and how long its name is; fields beyond the index are found by re-splitting.
#[derive(Clone, Copy, Default)]
pub struct Headers<'a> {
    raw: &'a [u8],
    count: usize,
    index: FieldIndex,
}

/// Two sections are equal when their bytes are (the index is derived from them).
impl PartialEq for Headers<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.raw == other.raw && self.count == other.count
    }
}

impl Eq for Headers<'_> {}

impl std::fmt::Debug for Headers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Headers")
            .field("raw", &self.raw)
            .field("count", &self.count)
            .finish()
    }
}

/// How many fields of a section [`FieldIndex`] records. Requests rarely carry more.
const INDEXED_FIELDS: usize = 32;

/// Where the lines of the first fields of a request's header section end, recorded while the
/// section is validated, so that iterating and lookups need not look for the line ends again.
#[derive(Clone, Copy)]
pub(crate) struct FieldIndex {
    /// Per field, the offset in the section just past its line's CRLF, truncated to 16 bits.
    /// The last slot takes every field past the others and is never read.
    line_ends: [u16; INDEXED_FIELDS + 1],
    /// Per field, the length of its name, or 0 when it does not fit (no name is empty).
    name_lens: [u8; INDEXED_FIELDS + 1],
    /// Whether the section was indexed at all (trailer sections are not).
    filled: bool,
}

impl Default for FieldIndex {
    fn default() -> FieldIndex {
        FieldIndex {
            line_ends: [0; INDEXED_FIELDS + 1],
            name_lens: [0; INDEXED_FIELDS + 1],
            filled: false,
        }
    }
}

impl FieldIndex {
    /// An empty index for a section about to be validated (and indexed) field by field.
    pub(crate) fn filled() -> FieldIndex {
        FieldIndex {
            filled: true,
            ..FieldIndex::default()
        }
    }

    /// Records where field number `field` (from 0) ends and how long its name is. Kept to two
    /// stores and no branch: it runs for every field of every request.
    #[inline]
    pub(crate) fn record(&mut self, field: usize, line_end: usize, name_len: usize) {
        let slot = field.min(INDEXED_FIELDS);
        if let Some(end) = self.line_ends.get_mut(slot) {
            // Truncation is harmless: the index of a section longer than u16::MAX is not read.
            *end = line_end as u16;
        }
        if let Some(len) = self.name_lens.get_mut(slot) {
            *len = u8::try_from(name_len).unwrap_or(0);
        }
    }

    /// Where field `i`'s line ends in `section` (of `count` fields) and how long its name is
    /// (0 for a name too long to record), if the field is recorded.
    #[inline]
    fn get(&self, section: &[u8], count: usize, i: usize) -> Option<(usize, usize)> {
        let usable = self.filled && section.len() <= usize::from(u16::MAX);
        if !usable || i >= count.min(INDEXED_FIELDS) {
            return None;
        }
        let end = self.line_ends.get(i)?;
        let name_len = self.name_lens.get(i)?;
        Some((usize::from(*end), usize::from(*name_len)))
    }
}

impl<'a> Headers<'a> {
    /// A request's header section, validated and indexed by the parser.
    pub(crate) fn indexed(raw: &'a [u8], count: usize, index: FieldIndex) -> Headers<'a> {
        Headers { raw, count, index }
    }

    /// A section whose lines were already validated by this crate.
    pub(crate) fn from_validated(raw: &'a [u8], count: usize) -> Headers<'a> {
        Headers {
            raw,
            count,
            index: FieldIndex::default(),
        }
    }

    /// Number of fields.
    pub fn len(&self) -> usize {
        self.count
    }

    /// True when the section has no fields.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The fields in order of arrival.
    pub fn iter(&self) -> HeaderIter<'a> {
        // One UTF-8 check over the whole section (word at a time over ASCII) is much cheaper
        // than one per name; a value with non-UTF-8 obs-text only cuts the prefix short.
        let text = match std::str::from_utf8(self.raw) {
            Ok(text) => text,
            Err(err) => self
                .raw
                .get(..err.valid_up_to())
                .and_then(|valid| std::str::from_utf8(valid).ok())
                .unwrap_or(""),
        };
        HeaderIter {
            fields: self.fields(),
            text,
        }
    }

    /// The first field named `name` (ASCII case-insensitive).
    pub fn get(&self, name: &str) -> Option<&'a [u8]> {
        self.fields()
            .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| value)
    }

    /// Every field named `name`, in order.
    pub fn get_all<'n>(&self, name: &'n str) -> impl Iterator<Item = &'a [u8]> + 'n
    where
        'a: 'n,
    {
        self.fields()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
            .map(|(_, value)| value)
    }

    /// The fields as bytes: lookups by name need no `&str`.
    fn fields(&self) -> RawFields<'a> {
        RawFields {
            raw: self.raw,
            count: self.count,
            pos: 0,
            field: 0,
            index: self.index,
        }
    }
}

impl<'a> IntoIterator for Headers<'a> {
    type Item = Header<'a>;
    type IntoIter = HeaderIter<'a>;
    fn into_iter(self) -> HeaderIter<'a> {
        self.iter()
    }
}

/// Iterator over a validated [`Headers`] section.
#[derive(Clone, Debug)]
pub struct HeaderIter<'a> {
    fields: RawFields<'a>,
    /// The longest UTF-8 prefix of the section: names are sliced from it.
    text: &'a str,
}

impl<'a> Iterator for HeaderIter<'a> {
    type Item = Header<'a>;
    #[inline]
    fn next(&mut self) -> Option<Header<'a>> {
        loop {
            // A name is the start of its line.
            let start = self.fields.pos;
            let (name, value) = self.fields.next()?;
            let name = match self.text.get(start..start + name.len()) {
                Some(name) => name,
                // After a value that is not UTF-8 (names are tokens: this always succeeds).
                None => match std::str::from_utf8(name) {
                    Ok(name) => name,
                    Err(_) => continue,
                },
            };
            return Some(Header { name, value });
        }
    }
}

/// The fields of a validated section as `(name, value)` bytes.
#[derive(Clone)]
struct RawFields<'a> {
    raw: &'a [u8],
    count: usize,
    /// Where the next line starts.
    pos: usize,
    /// The number of the next field.
    field: usize,
    index: FieldIndex,
}

impl std::fmt::Debug for RawFields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RawFields")
            .field("rest", &self.raw.get(self.pos..))
            .finish()
    }
}

impl<'a> Iterator for RawFields<'a> {
    type Item = (&'a [u8], &'a [u8]);
    #[inline]
    fn next(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        let (name, value, end) = match self.index.get(self.raw, self.count, self.field) {
            Some((end, name_len)) => {
                // `name ":" value CRLF`; a token holds no `:`.
                let line = self.raw.get(self.pos..end.checked_sub(2)?)?;
                let colon = match name_len {
                    0 => short_position_of(line, b':')?,
                    known => known,
                };
                let name = line.get(..colon)?;
                (name, trim_field_value(line.get(colon + 1..)?), end)
            }
            None => {
                let (name, value, len) = split_field_line(self.raw.get(self.pos..)?)?;
                (name, value, self.pos + len)
            }
        };
        self.pos = end;
        self.field += 1;
        Some((name, value))
    }
}

/// Splits the first line of a section validated by this crate, `token ":" field-value CRLF`:
/// the name ends at the first `:` (a token holds none) and the value at the first CR (a value
/// holds none), so no byte is checked again. Returns the name, the trimmed value and the
/// line's length including its CRLF.
fn split_field_line(s: &[u8]) -> Option<(&[u8], &[u8], usize)> {
    // The line end first, so that the next line's scan does not wait for the name's.
    let cr = position_of(s, b'\r')?;
    let line = s.get(..cr)?;
    let colon = short_position_of(line, b':')?;
    let name = line.get(..colon)?;
    let value = trim_field_value(line.get(colon + 1..)?);
    Some((name, value, cr + 2))
}
