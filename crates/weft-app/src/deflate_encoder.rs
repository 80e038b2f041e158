//! The content-coding encoders: gzip (RFC 1952) and deflate in the zlib format (RFC 1950, as
//! HTTP's `deflate` coding is defined in RFC 9110 section 8.4.1.2), built on the deflate
//! compressor of `miniz_oxide`.
//!
//! An [`Encoder`] is incremental: [`Encoder::write`] takes a piece of the body and appends
//! whatever compressed bytes are ready, with [`Flush::Sync`] everything written so far
//! (a sync flush: the decoder can produce every input byte from what was output, and the
//! stream goes on); [`Encoder::finish`] ends the stream. The gzip header carries mtime 0, no
//! name, XFL 0 and OS 255 (unknown), so the output is a function of the input, the level
//! and the flush points only: byte-identical on every target.

use miniz_oxide::deflate::core::{
    compress, create_comp_flags_from_zip_params, CompressorOxide, TDEFLFlush, TDEFLStatus,
};

/// A content coding weft can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Coding {
    Gzip,
    /// The zlib format (RFC 1950), which is what HTTP calls `deflate`.
    Deflate,
}

impl Coding {
    /// The token in `Content-Encoding`.
    pub fn name(self) -> &'static str {
        match self {
            Coding::Gzip => "gzip",
            Coding::Deflate => "deflate",
        }
    }

    /// The index of this coding in per-coding tables.
    pub(crate) fn index(self) -> usize {
        match self {
            Coding::Gzip => 0,
            Coding::Deflate => 1,
        }
    }
}

/// How much of the input [`Encoder::write`] must make decodable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flush {
    /// Output whatever the compressor has ready (it may hold input back).
    None,
    /// Everything written so far becomes decodable (an empty stored block ends the output).
    Sync,
}

/// The encoder failed: a misuse (writing after the end) or an internal error of the
/// compressor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompressError(pub &'static str);

impl std::fmt::Display for CompressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "compress: {}", self.0)
    }
}

impl std::error::Error for CompressError {}

/// The gzip member header: magic, CM=8 (deflate), no flags, MTIME 0, XFL 0, OS 255 (unknown).
pub const GZIP_HEADER: [u8; 10] = [0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];

/// The highest level `miniz_oxide` knows (10 is its "uber" level; 9 is zlib's best).
pub const MAX_LEVEL: u8 = 10;

/// An incremental gzip or zlib encoder.
pub struct Encoder {
    coding: Coding,
    deflater: Box<CompressorOxide>,
    crc: u32,
    /// The input length modulo 2^32 (gzip's ISIZE).
    size: u32,
    started: bool,
    finished: bool,
}

impl std::fmt::Debug for Encoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Encoder")
            .field("coding", &self.coding)
            .field("finished", &self.finished)
            .finish()
    }
}

impl Encoder {
    /// A new stream at `level` (1 fastest .. 9 best; 0 stores; higher values are clamped).
    pub fn new(coding: Coding, level: u8) -> Encoder {
        // Positive window bits: the zlib wrapper; negative: raw deflate (gzip wraps it here).
        let window_bits = match coding {
            Coding::Gzip => -15,
            Coding::Deflate => 15,
        };
        let flags =
            create_comp_flags_from_zip_params(i32::from(level.min(MAX_LEVEL)), window_bits, 0);
        Encoder {
            coding,
            deflater: Box::new(CompressorOxide::new(flags)),
            crc: 0,
            size: 0,
            started: false,
            finished: false,
        }
    }

    pub fn coding(&self) -> Coding {
        self.coding
    }

    /// Compresses `input`, appending the output that is ready to `out`.
    pub fn write(
        &mut self,
        input: &[u8],
        flush: Flush,
        out: &mut Vec<u8>,
    ) -> Result<(), CompressError> {
        let flush = match flush {
            Flush::None => TDEFLFlush::None,
            Flush::Sync => TDEFLFlush::Sync,
        };
        self.run(input, flush, out)
    }

    /// Ends the stream (the final block, and the gzip trailer), appending to `out`.
    pub fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), CompressError> {
        self.run(&[], TDEFLFlush::Finish, out)?;
        if !self.finished {
            return Err(CompressError("the stream did not end"));
        }
        if self.coding == Coding::Gzip {
            out.extend_from_slice(&self.crc.to_le_bytes());
            out.extend_from_slice(&self.size.to_le_bytes());
        }
        Ok(())
    }

    fn run(
        &mut self,
        input: &[u8],
        flush: TDEFLFlush,
        out: &mut Vec<u8>,
    ) -> Result<(), CompressError> {
        if self.finished {
            return Err(CompressError("write after the end of the stream"));
        }
        if !self.started {
            self.started = true;
            if self.coding == Coding::Gzip {
                out.extend_from_slice(&GZIP_HEADER);
            }
        }
        if self.coding == Coding::Gzip {
            self.crc = crc32_update(self.crc, input);
            // ISIZE is the length modulo 2^32 (RFC 1952 section 2.3.1).
            self.size = self.size.wrapping_add(input.len() as u32);
        }
        let mut pos = 0;
        let mut idle = 0;
        loop {
            let rest = input.get(pos..).unwrap_or(&[]);
            // Room for the worst case of the rest (stored blocks) in one call, so a flush is
            // complete after one call and never repeated.
            let spare = rest.len() + rest.len() / 8 + 1024;
            let start = out.len();
            out.resize(start + spare, 0);
            let (status, used, written) = match out.get_mut(start..) {
                Some(buf) => compress(&mut self.deflater, rest, buf, flush),
                None => (TDEFLStatus::BadParam, 0, 0),
            };
            out.truncate(start + written.min(spare));
            pos += used;
            match status {
                TDEFLStatus::Done => {
                    self.finished = true;
                    return Ok(());
                }
                TDEFLStatus::Okay => {
                    if pos >= input.len() && written < spare && flush != TDEFLFlush::Finish {
                        return Ok(());
                    }
                    if used == 0 && written == 0 {
                        idle += 1;
                        if idle > 2 {
                            return Err(CompressError("the compressor made no progress"));
                        }
                    }
                }
                TDEFLStatus::BadParam | TDEFLStatus::PutBufFailed => {
                    self.finished = true;
                    return Err(CompressError("the compressor failed"));
                }
            }
        }
    }
}

/// Compresses all of `input` into one stream.
pub fn compress_all(coding: Coding, level: u8, input: &[u8]) -> Result<Vec<u8>, CompressError> {
    let mut out = Vec::with_capacity(input.len() / 3 + 64);
    let mut encoder = Encoder::new(coding, level);
    encoder.write(input, Flush::None, &mut out)?;
    encoder.finish(&mut out)?;
    Ok(out)
}

/// The CRC-32 of gzip (ISO 3309, reflected polynomial 0xEDB88320), eight bytes at a time
/// ("slicing by 8": table k gives the CRC of a byte followed by k zero bytes).
const CRC_TABLES: [[u32; 256]; 8] = crc_tables();

#[allow(clippy::indexing_slicing)] // evaluated at compile time, every index < 256
const fn crc_tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

/// Entry `byte` of table `k` (the lookups cannot miss: `byte` < 256).
#[inline(always)]
fn crc_at(k: usize, byte: u32) -> u32 {
    CRC_TABLES
        .get(k)
        .and_then(|t| t.get((byte & 0xff) as usize))
        .copied()
        .unwrap_or(0)
}

/// Continues the CRC-32 `crc` (0 to start) over `bytes`.
pub fn crc32_update(crc: u32, bytes: &[u8]) -> u32 {
    let mut c = !crc;
    let mut blocks = bytes.chunks_exact(8);
    for block in &mut blocks {
        let [b0, b1, b2, b3, b4, b5, b6, b7] = <[u8; 8]>::try_from(block).unwrap_or([0; 8]);
        let lo = u32::from_le_bytes([b0, b1, b2, b3]) ^ c;
        let hi = u32::from_le_bytes([b4, b5, b6, b7]);
        c = crc_at(7, lo)
            ^ crc_at(6, lo >> 8)
            ^ crc_at(5, lo >> 16)
            ^ crc_at(4, lo >> 24)
            ^ crc_at(3, hi)
            ^ crc_at(2, hi >> 8)
            ^ crc_at(1, hi >> 16)
            ^ crc_at(0, hi >> 24);
    }
    for &b in blocks.remainder() {
        c = crc_at(0, c ^ u32::from(b)) ^ (c >> 8);
    }
    !c
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]
pub(crate) mod tests {
    use super::*;
    use miniz_oxide::inflate::{decompress_to_vec, decompress_to_vec_zlib};

    /// Our own reference decoder for the unit tests (the round trip through an independent
    /// decoder, Python's, is crates/weft-server/tests/compress_roundtrip.rs).
    pub(crate) fn decode(coding: Coding, data: &[u8]) -> Vec<u8> {
        match coding {
            Coding::Deflate => decompress_to_vec_zlib(data).expect("zlib stream"),
            Coding::Gzip => {
                assert_eq!(&data[..10], &GZIP_HEADER, "gzip header");
                let body = &data[10..data.len() - 8];
                let out = decompress_to_vec(body).expect("deflate stream");
                let trailer = &data[data.len() - 8..];
                assert_eq!(
                    u32::from_le_bytes(trailer[..4].try_into().unwrap()),
                    crc32_update(0, &out),
                    "crc"
                );
                assert_eq!(
                    u32::from_le_bytes(trailer[4..].try_into().unwrap()),
                    out.len() as u32,
                    "isize"
                );
                out
            }
        }
    }

    fn sample() -> Vec<u8> {
        let mut v = Vec::new();
        for i in 0..3000u32 {
            v.extend_from_slice(format!("line {i} of some text, {}\n", i * 7 % 13).as_bytes());
        }
        v
    }

    #[test]
    fn crc32_known_values() {
        assert_eq!(crc32_update(0, b""), 0);
        assert_eq!(crc32_update(0, b"123456789"), 0xCBF4_3926);
        let whole = crc32_update(0, b"hello world");
        let parts = crc32_update(crc32_update(0, b"hello "), b"world");
        assert_eq!(whole, parts);
        // Against a bit-at-a-time reference, at every length around the 8-byte blocks, whole
        // and fed byte by byte.
        let bitwise = |bytes: &[u8]| {
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
        };
        let data: Vec<u8> = (0..100u32).map(|i| (i * 37 + 11) as u8).collect();
        for n in 0..data.len() {
            assert_eq!(
                crc32_update(0, &data[..n]),
                bitwise(&data[..n]),
                "length {n}"
            );
            let stepwise = data[..n]
                .iter()
                .fold(0, |c, b| crc32_update(c, std::slice::from_ref(b)));
            assert_eq!(stepwise, bitwise(&data[..n]));
        }
    }

    #[test]
    fn whole_round_trips_at_every_level() {
        let input = sample();
        for coding in [Coding::Gzip, Coding::Deflate] {
            for level in 0..=MAX_LEVEL {
                let out = compress_all(coding, level, &input).unwrap();
                assert_eq!(decode(coding, &out), input, "{coding:?} level {level}");
                if level > 0 {
                    assert!(out.len() < input.len() / 3, "level {level} compresses");
                }
            }
            let empty = compress_all(coding, 6, b"").unwrap();
            assert_eq!(decode(coding, &empty), b"");
        }
    }

    #[test]
    fn deterministic_gzip_header() {
        let out = compress_all(Coding::Gzip, 6, b"hello world\n").unwrap();
        assert_eq!(&out[..10], &GZIP_HEADER);
        assert_eq!(
            out,
            compress_all(Coding::Gzip, 6, b"hello world\n").unwrap()
        );
        let z = compress_all(Coding::Deflate, 6, b"hello world\n").unwrap();
        // zlib header: CM 8, 32 KiB window, check bits.
        assert_eq!(z[0], 0x78);
        assert_eq!((u16::from(z[0]) << 8 | u16::from(z[1])) % 31, 0);
    }

    #[test]
    fn byte_by_byte_input_with_sync_flush_decodes_at_each_step() {
        let input = sample();
        let input = &input[..4000];
        for coding in [Coding::Gzip, Coding::Deflate] {
            let mut enc = Encoder::new(coding, 6);
            let mut out = Vec::new();
            for (i, b) in input.iter().enumerate() {
                enc.write(std::slice::from_ref(b), Flush::Sync, &mut out)
                    .unwrap();
                if i % 997 == 0 {
                    // Everything so far is decodable from what was output so far.
                    let skip = if coding == Coding::Gzip { 10 } else { 2 };
                    let mut st = miniz_oxide::inflate::stream::InflateState::new(
                        miniz_oxide::DataFormat::Raw,
                    );
                    let mut dec = vec![0u8; i + 64];
                    let r = miniz_oxide::inflate::stream::inflate(
                        &mut st,
                        &out[skip..],
                        &mut dec,
                        miniz_oxide::MZFlush::None,
                    );
                    assert_eq!(&dec[..r.bytes_written], &input[..=i]);
                }
            }
            enc.finish(&mut out).unwrap();
            assert_eq!(decode(coding, &out), input);
        }
    }

    #[test]
    fn pieces_without_flush_equal_the_input() {
        let input = sample();
        for coding in [Coding::Gzip, Coding::Deflate] {
            let mut enc = Encoder::new(coding, 6);
            let mut out = Vec::new();
            for piece in input.chunks(777) {
                enc.write(piece, Flush::None, &mut out).unwrap();
            }
            enc.finish(&mut out).unwrap();
            assert_eq!(decode(coding, &out), input);
        }
    }

    #[test]
    fn trailing_data_after_the_end_is_refused() {
        let mut enc = Encoder::new(Coding::Gzip, 6);
        let mut out = Vec::new();
        enc.write(b"abc", Flush::Sync, &mut out).unwrap();
        enc.finish(&mut out).unwrap();
        assert!(enc.write(b"more", Flush::None, &mut out).is_err());
        assert!(enc.finish(&mut out).is_err());
        assert_eq!(decode(Coding::Gzip, &out), b"abc");
    }

    #[test]
    fn incompressible_input_round_trips() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        let input: Vec<u8> = (0..200_000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect();
        for coding in [Coding::Gzip, Coding::Deflate] {
            let out = compress_all(coding, 9, &input).unwrap();
            assert_eq!(decode(coding, &out), input);
            assert!(out.len() < input.len() + input.len() / 100 + 64);
        }
    }
}
