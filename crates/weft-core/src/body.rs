//! Request body decoding: the chunked transfer coding (RFC 9112 section 7.1), strictly.

use crate::error::Error;
use crate::head::parse_field_line;
use crate::headers::Headers;
use crate::limits::Limits;
use crate::syntax::{find_lf, is_tchar, parse_hex};

/// What one step of [`ChunkedDecoder::decode`] produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decoded<'a> {
    /// Body bytes, borrowed from the input.
    Data(&'a [u8]),
    /// The last chunk and the trailer section arrived: the body is complete.
    End(Headers<'a>),
    /// More input is needed.
    NeedData,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ChunkState {
    /// Expecting a chunk-size line.
    Size,
    /// Inside chunk data, this many bytes to go.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// Inside the trailer section; this many bytes of complete, valid trailer lines are
    /// buffered (so a slow trailer is not rescanned from its start).
    Trailers {
        scanned: usize,
        fields: usize,
    },
    Done,
}

/// An incremental decoder for a chunked body. It never copies: data and trailers are borrowed
/// from the input, and input that does not complete a step is left unconsumed for the next
/// call (the caller keeps it in its buffer).
#[derive(Clone, Debug)]
pub struct ChunkedDecoder {
    state: ChunkState,
    body_len: u64,
    ext_total: usize,
}

impl Default for ChunkedDecoder {
    fn default() -> Self {
        ChunkedDecoder::new()
    }
}

/// Checks `chunk-ext = *( BWS ";" BWS ext-name [ BWS "=" BWS ext-val ] )` where ext-val is a
/// token or a quoted-string.
fn valid_extensions(mut s: &[u8]) -> bool {
    fn skip_ws(s: &mut &[u8]) -> bool {
        let before = s.len();
        while let [b' ' | b'\t', rest @ ..] = *s {
            *s = rest;
        }
        s.len() != before
    }
    fn take_token(s: &mut &[u8]) -> bool {
        let n = s.iter().take_while(|&&b| is_tchar(b)).count();
        *s = s.get(n..).unwrap_or(&[]);
        n > 0
    }
    fn take_quoted(s: &mut &[u8]) -> bool {
        let [b'"', rest @ ..] = *s else {
            return false;
        };
        let mut rest = rest;
        loop {
            match rest {
                [b'"', tail @ ..] => {
                    *s = tail;
                    return true;
                }
                [b'\\', q, tail @ ..] if *q == b'\t' || (*q >= 0x20 && *q != 0x7f) => rest = tail,
                [b, tail @ ..]
                    if *b == b'\t' || (*b >= 0x20 && *b != 0x7f && *b != b'"' && *b != b'\\') =>
                {
                    rest = tail
                }
                _ => return false,
            }
        }
    }
    loop {
        let had_ws = skip_ws(&mut s);
        let [b';', rest @ ..] = s else {
            // Only the end may follow, and not after whitespace.
            return s.is_empty() && !had_ws;
        };
        s = rest;
        skip_ws(&mut s);
        if !take_token(&mut s) {
            return false;
        }
        let mut probe = s;
        skip_ws(&mut probe);
        if let [b'=', rest @ ..] = probe {
            s = rest;
            skip_ws(&mut s);
            if !(take_token(&mut s) || take_quoted(&mut s)) {
                return false;
            }
        }
    }
}

impl ChunkedDecoder {
    /// A decoder at the start of a chunked body.
    pub fn new() -> ChunkedDecoder {
        ChunkedDecoder {
            state: ChunkState::Size,
            body_len: 0,
            ext_total: 0,
        }
    }

    /// Has the whole body (including trailers) been decoded?
    pub fn is_done(&self) -> bool {
        self.state == ChunkState::Done
    }

    /// Decodes one step from the start of `input`, returning what it produced and how many
    /// bytes of `input` it consumed.
    pub fn decode<'a>(
        &mut self,
        input: &'a [u8],
        limits: &Limits,
    ) -> Result<(Decoded<'a>, usize), Error> {
        let mut consumed = 0;
        loop {
            let rest = input.get(consumed..).unwrap_or(&[]);
            match self.state {
                ChunkState::Size => match self.size_line(rest, limits)? {
                    Some(n) => consumed += n,
                    None => return Ok((Decoded::NeedData, consumed)),
                },
                ChunkState::Data(remaining) => {
                    if rest.is_empty() {
                        return Ok((Decoded::NeedData, consumed));
                    }
                    let n = usize::try_from(remaining)
                        .unwrap_or(usize::MAX)
                        .min(rest.len());
                    let data = rest.get(..n).unwrap_or(&[]);
                    let left = remaining - n as u64;
                    self.state = if left == 0 {
                        ChunkState::DataEnd
                    } else {
                        ChunkState::Data(left)
                    };
                    return Ok((Decoded::Data(data), consumed + n));
                }
                ChunkState::DataEnd => match rest {
                    [b'\r', b'\n', ..] => {
                        consumed += 2;
                        self.state = ChunkState::Size;
                    }
                    [] | [b'\r'] => return Ok((Decoded::NeedData, consumed)),
                    _ => return Err(Error::BadChunk),
                },
                ChunkState::Trailers { scanned, fields } => {
                    return Ok(match self.trailers(rest, scanned, fields, limits)? {
                        Some((trailers, n)) => (Decoded::End(trailers), consumed + n),
                        None => (Decoded::NeedData, consumed),
                    });
                }
                ChunkState::Done => return Ok((Decoded::End(Headers::default()), consumed)),
            }
        }
    }

    /// Reads a chunk-size line (RFC 9112 section 7.1): the bytes it took, `None` while it is
    /// incomplete.
    fn size_line(&mut self, rest: &[u8], limits: &Limits) -> Result<Option<usize>, Error> {
        let Some(lf) = find_lf(rest) else {
            if rest.len() > limits.max_chunk_line {
                return Err(Error::BadChunk);
            }
            return Ok(None);
        };
        if lf + 1 > limits.max_chunk_line {
            return Err(Error::BadChunk);
        }
        let line = rest.get(..lf).unwrap_or(&[]);
        let line = line.strip_suffix(b"\r").ok_or(Error::BadChunk)?;
        let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
        let (size, ext) = line.split_at_checked(digits).ok_or(Error::BadChunk)?;
        let size = parse_hex(size).ok_or(Error::BadChunk)?;
        if !valid_extensions(ext) {
            return Err(Error::BadChunk);
        }
        self.ext_total += ext.len();
        if self.ext_total > limits.max_chunk_ext_total {
            return Err(Error::BadChunk);
        }
        self.body_len = self.body_len.checked_add(size).ok_or(Error::BodyTooLarge)?;
        if self.body_len > limits.max_body {
            return Err(Error::BodyTooLarge);
        }
        self.state = if size == 0 {
            ChunkState::Trailers {
                scanned: 0,
                fields: 0,
            }
        } else {
            ChunkState::Data(size)
        };
        Ok(Some(lf + 1))
    }

    /// Reads the trailer section (RFC 9112 section 7.1.2) from `scanned` bytes on (`fields`
    /// fields so far): the trailers and the bytes they took, `None` while incomplete.
    fn trailers<'a>(
        &mut self,
        rest: &'a [u8],
        mut scanned: usize,
        mut fields: usize,
        limits: &Limits,
    ) -> Result<Option<(Headers<'a>, usize)>, Error> {
        loop {
            let tail = rest.get(scanned..).unwrap_or(&[]);
            let Some(lf) = find_lf(tail) else {
                // Refused only once no line end can keep the section within the limit
                // (the check below), so the answer does not depend on how the input
                // was split.
                if rest.len() > limits.max_trailers.saturating_add(1) {
                    return Err(Error::TrailersTooLarge);
                }
                self.state = ChunkState::Trailers { scanned, fields };
                return Ok(None);
            };
            if scanned + lf + 1 > limits.max_trailers.saturating_add(2) {
                return Err(Error::TrailersTooLarge);
            }
            let line = tail.get(..lf).unwrap_or(&[]);
            let line = line.strip_suffix(b"\r").ok_or(Error::BadTrailer)?;
            if line.is_empty() {
                let raw = rest.get(..scanned).unwrap_or(&[]);
                self.state = ChunkState::Done;
                let trailers = Headers::from_validated(raw, fields);
                return Ok(Some((trailers, scanned + lf + 1)));
            }
            parse_field_line(line, Error::BadTrailer)?;
            fields += 1;
            scanned += lf + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extensions_grammar() {
        for ok in [
            &b""[..],
            b";a",
            b";a=b",
            b" ; a = b",
            b";a=\"x y\\\"z\"",
            b";a;b=1",
        ] {
            assert!(valid_extensions(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for bad in [
            &b" "[..],
            b";",
            b";a=",
            b";a ",
            b"x",
            b";a=\"open",
            b";a=b c",
            b";\x0ba",
        ] {
            assert!(!valid_extensions(bad), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
