//! Content-coding decoders for assertion mode: `gzip` (RFC 1952, header flags, CRC-32 and
//! length checked), `deflate` (the zlib format, Adler-32 checked) and `identity`, on
//! `miniz_oxide`'s inflater. Incremental, so a case can check that a streamed body is
//! decodable chunk by chunk as it arrives (`expect-flushed-lines`).

use miniz_oxide::inflate::stream::{inflate, InflateState};
use miniz_oxide::{DataFormat, MZError, MZFlush, MZStatus};

/// A content coding the harness decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coding {
    Identity,
    Gzip,
    Deflate,
}

impl Coding {
    /// The coding named by a response's `Content-Encoding` values (none: identity). More than
    /// one coding, or an unknown one, is an error.
    pub fn from_field(values: &[&[u8]]) -> Result<Coding, String> {
        let codings: Vec<String> = values
            .iter()
            .flat_map(|v| v.split(|&b| b == b','))
            .map(|c| String::from_utf8_lossy(c).trim().to_ascii_lowercase())
            .filter(|c| !c.is_empty())
            .collect();
        match codings.as_slice() {
            [] => Ok(Coding::Identity),
            [one] => match one.as_str() {
                "identity" => Ok(Coding::Identity),
                "gzip" | "x-gzip" => Ok(Coding::Gzip),
                "deflate" => Ok(Coding::Deflate),
                other => Err(format!("unknown Content-Encoding {other:?}")),
            },
            _ => Err(format!("several content codings: {}", codings.join(", "))),
        }
    }
}

/// An incremental decoder of one body.
pub struct Decoder {
    coding: Coding,
    state: Box<InflateState>,
    /// Gzip: bytes of the header not yet complete; after the deflate stream: the trailer.
    pending: Vec<u8>,
    header_done: bool,
    inflated: bool,
    out: Vec<u8>,
}

const BUF: usize = 64 * 1024;

impl Decoder {
    pub fn new(coding: Coding) -> Decoder {
        let format = match coding {
            Coding::Deflate => DataFormat::Zlib,
            _ => DataFormat::Raw,
        };
        Decoder {
            coding,
            state: InflateState::new_boxed(format),
            pending: Vec::new(),
            header_done: coding != Coding::Gzip,
            inflated: false,
            out: Vec::new(),
        }
    }

    /// Everything decoded so far.
    pub fn output(&self) -> &[u8] {
        &self.out
    }

    /// Feeds the next bytes of the body.
    pub fn feed(&mut self, input: &[u8]) -> Result<(), String> {
        if self.coding == Coding::Identity {
            self.out.extend_from_slice(input);
            return Ok(());
        }
        if !self.header_done {
            self.pending.extend_from_slice(input);
            return match gzip_header_len(&self.pending)? {
                None => Ok(()),
                Some(n) => {
                    self.header_done = true;
                    let rest = self.pending.split_off(n);
                    self.pending.clear();
                    self.inflate(&rest)
                }
            };
        }
        self.inflate(input)
    }

    fn inflate(&mut self, mut input: &[u8]) -> Result<(), String> {
        if self.inflated {
            self.pending.extend_from_slice(input);
            return Ok(());
        }
        let mut buf = vec![0u8; BUF];
        loop {
            let r = inflate(&mut self.state, input, &mut buf, MZFlush::None);
            self.out.extend_from_slice(&buf[..r.bytes_written]);
            input = &input[r.bytes_consumed..];
            match r.status {
                Ok(MZStatus::StreamEnd) => {
                    self.inflated = true;
                    self.pending.extend_from_slice(input);
                    return Ok(());
                }
                Ok(_) => {
                    if input.is_empty() && r.bytes_written < BUF {
                        return Ok(());
                    }
                }
                Err(MZError::Buf) => return Ok(()),
                Err(e) => return Err(format!("{:?} stream is corrupt: {e:?}", self.coding)),
            }
        }
    }

    /// The whole decoded body; checks that the stream ended, the gzip trailer, and that no
    /// bytes follow.
    pub fn finish(self) -> Result<Vec<u8>, String> {
        if self.coding == Coding::Identity {
            return Ok(self.out);
        }
        if !self.inflated {
            return Err(format!("{:?} stream does not end", self.coding));
        }
        let extra = match self.coding {
            Coding::Gzip => {
                if self.pending.len() < 8 {
                    return Err("gzip trailer missing".into());
                }
                let crc = u32::from_le_bytes([
                    self.pending[0],
                    self.pending[1],
                    self.pending[2],
                    self.pending[3],
                ]);
                let size = u32::from_le_bytes([
                    self.pending[4],
                    self.pending[5],
                    self.pending[6],
                    self.pending[7],
                ]);
                if crc != crc32(&self.out) {
                    return Err("gzip CRC-32 does not match".into());
                }
                if size != self.out.len() as u32 {
                    return Err("gzip ISIZE does not match".into());
                }
                self.pending.len() - 8
            }
            _ => self.pending.len(),
        };
        if extra > 0 {
            return Err(format!(
                "{extra} bytes after the end of the {:?} stream",
                self.coding
            ));
        }
        Ok(self.out)
    }
}

/// Decodes a whole body.
pub fn decode(coding: Coding, body: &[u8]) -> Result<Vec<u8>, String> {
    let mut d = Decoder::new(coding);
    d.feed(body)?;
    d.finish()
}

/// Checks that a streamed body was flushed line by line: fed chunk by chunk, the decoded
/// output after every chunk ends at a line end, every chunk but the last adds at least one
/// line, and the last adds no partial line.
pub fn check_flushed_lines(coding: Coding, chunks: &[&[u8]]) -> Result<(), String> {
    let mut d = Decoder::new(coding);
    let mut seen = 0;
    for (i, chunk) in chunks.iter().enumerate() {
        d.feed(chunk)?;
        let out = d.output();
        let last = i + 1 == chunks.len();
        if !last && out.len() == seen {
            return Err(format!("chunk {} decodes to nothing", i + 1));
        }
        if !out.is_empty() && out.last() != Some(&b'\n') {
            return Err(format!(
                "after chunk {} the decoded body ends inside a line: {:?}",
                i + 1,
                String::from_utf8_lossy(&out[seen..])
            ));
        }
        seen = out.len();
    }
    d.finish().map(|_| ())
}

/// The length of a complete gzip member header, `None` when more bytes are needed.
fn gzip_header_len(b: &[u8]) -> Result<Option<usize>, String> {
    if b.len() < 10 {
        return Ok(None);
    }
    if b[0] != 0x1f || b[1] != 0x8b || b[2] != 8 {
        return Err("not a gzip header".into());
    }
    let flags = b[3];
    if flags & 0xe0 != 0 {
        return Err("gzip header has reserved flags".into());
    }
    let mut pos = 10;
    if flags & 4 != 0 {
        if b.len() < pos + 2 {
            return Ok(None);
        }
        pos += 2 + usize::from(u16::from_le_bytes([b[pos], b[pos + 1]]));
    }
    for flag in [8u8, 16] {
        if flags & flag != 0 {
            match b.get(pos..).and_then(|r| r.iter().position(|&x| x == 0)) {
                Some(z) => pos += z + 1,
                None => return Ok(None),
            }
        }
    }
    if flags & 2 != 0 {
        pos += 2;
    }
    Ok((b.len() >= pos).then_some(pos))
}

/// CRC-32 (ISO 3309, as gzip uses it), bit by bit: slow and obviously right.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut c: u32 = !0;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                (c >> 1) ^ 0xEDB8_8320
            } else {
                c >> 1
            };
        }
    }
    !c
}

#[cfg(test)]
mod tests {
    use super::*;

    // `printf 'hello world\n' | gzip -n` and Python's `zlib.compress(b"hello world\n")`.
    const HELLO_GZ: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xcb, 0x48, 0xcd, 0xc9, 0xc9,
        0x57, 0x28, 0xcf, 0x2f, 0xca, 0x49, 0xe1, 0x02, 0x00, 0x2d, 0x3b, 0x08, 0xaf, 0x0c, 0x00,
        0x00, 0x00,
    ];
    const HELLO_Z: &[u8] = &[
        0x78, 0x9c, 0xcb, 0x48, 0xcd, 0xc9, 0xc9, 0x57, 0x28, 0xcf, 0x2f, 0xca, 0x49, 0xe1, 0x02,
        0x00, 0x1e, 0x72, 0x04, 0x67,
    ];

    #[test]
    fn crc() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn decodes_whole_and_byte_by_byte() {
        for (coding, data) in [(Coding::Gzip, HELLO_GZ), (Coding::Deflate, HELLO_Z)] {
            assert_eq!(decode(coding, data).unwrap(), b"hello world\n");
            let mut d = Decoder::new(coding);
            for b in data {
                d.feed(std::slice::from_ref(b)).unwrap();
            }
            assert_eq!(d.finish().unwrap(), b"hello world\n");
        }
        assert_eq!(decode(Coding::Identity, b"x").unwrap(), b"x");
    }

    #[test]
    fn refuses_damage_and_trailing_data() {
        for (coding, data) in [(Coding::Gzip, HELLO_GZ), (Coding::Deflate, HELLO_Z)] {
            let mut long = data.to_vec();
            long.push(0);
            assert!(decode(coding, &long).is_err(), "trailing byte");
            assert!(decode(coding, &data[..data.len() - 1]).is_err(), "cut");
            let mut bad = data.to_vec();
            let n = bad.len();
            bad[n - 2] ^= 1; // checksum / isize
            assert!(decode(coding, &bad).is_err(), "checksum");
        }
        assert!(decode(Coding::Gzip, b"not gzip at all").is_err());
    }

    #[test]
    fn flushed_lines() {
        // Two sync-flushed lines then the end, as weft streams /sheep (made with Python's
        // zlib: compressobj(6, DEFLATED, 31), flush(Z_SYNC_FLUSH) after each line).
        let one: &[u8] = &[
            0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0x32, 0x54, 0x28, 0xce,
            0x48, 0x4d, 0x2d, 0xe0, 0x02, 0x00, 0x00, 0x00, 0xff, 0xff,
        ];
        let two: &[u8] = &[0x32, 0x82, 0xd2, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff];
        let end: &[u8] = &[0x03, 0x00, 0x1d, 0xa0, 0x4a, 0xaa, 0x10, 0x00, 0x00, 0x00];
        assert!(check_flushed_lines(Coding::Gzip, &[one, two, end]).is_ok());
        let whole = [one, two, end].concat();
        assert_eq!(decode(Coding::Gzip, &whole).unwrap(), b"1 sheep\n2 sheep\n");
        // Cut inside a line's deflate data: a chunk ends mid-line or decodes to nothing.
        assert!(check_flushed_lines(Coding::Gzip, &[&whole[..13], &whole[13..]]).is_err());
        // Without the end of the stream.
        assert!(check_flushed_lines(Coding::Gzip, &[one, two]).is_err());
        assert!(check_flushed_lines(Coding::Identity, &[b"a\n", b"b\n", b""]).is_ok());
        assert!(check_flushed_lines(Coding::Identity, &[b"a\nb", b"\n"]).is_err());
    }

    #[test]
    fn codings_from_fields() {
        assert_eq!(Coding::from_field(&[]).unwrap(), Coding::Identity);
        assert_eq!(Coding::from_field(&[b"GZIP"]).unwrap(), Coding::Gzip);
        assert_eq!(Coding::from_field(&[b"x-gzip"]).unwrap(), Coding::Gzip);
        assert_eq!(Coding::from_field(&[b"deflate"]).unwrap(), Coding::Deflate);
        assert!(Coding::from_field(&[b"br"]).is_err());
        assert!(Coding::from_field(&[b"gzip, deflate"]).is_err());
    }
}
