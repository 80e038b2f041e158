//! Response bodies read in bounded pieces as the socket takes them: [`Stream`] (a file or
//! bytes in memory, whole, a range, or multipart parts) and [`Compressing`] (a large file
//! compressed while it is sent).

use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};

use super::representation::{Body, Memory};
use super::FILE_CHUNK;
use crate::deflate_encoder::{Encoder, Flush};
use crate::{AppError, Output, Produce, Responder};

/// A part of a response body.
pub(super) enum Piece {
    /// Bytes made here (multipart headers, a listing page).
    Bytes(Vec<u8>),
    /// `len` bytes of the representation from `offset`.
    Range(u64, u64),
}

impl Piece {
    pub fn len(&self) -> u64 {
        match self {
            Piece::Bytes(b) => b.len() as u64,
            Piece::Range(_, len) => *len,
        }
    }
}

/// Where [`Piece::Range`] bytes are read from.
enum Source {
    File {
        file: File,
        /// Where the file's cursor is (to seek only when needed).
        pos: u64,
    },
    Memory(Memory),
}

impl Source {
    /// Up to `want` bytes from `at` into `buf` (replacing what it held); 0 at the end.
    fn read_at(&mut self, at: u64, want: usize, buf: &mut Vec<u8>) -> io::Result<usize> {
        match self {
            Source::File { file, pos } => {
                if *pos != at {
                    file.seek(SeekFrom::Start(at))?;
                    *pos = at;
                }
                buf.resize(want, 0);
                let n = file.read(buf)?;
                *pos += n as u64;
                buf.truncate(n);
                Ok(n)
            }
            Source::Memory(memory) => Ok(copy_from(memory.as_slice(), at, want, buf)),
        }
    }
}

/// Up to `want` bytes of `bytes` from `at` into `buf` (replacing what it held).
fn copy_from(bytes: &[u8], at: u64, want: usize, buf: &mut Vec<u8>) -> usize {
    let from = usize::try_from(at).unwrap_or(usize::MAX);
    let chunk = bytes.get(from..from.saturating_add(want)).unwrap_or(&[]);
    buf.clear();
    buf.extend_from_slice(chunk);
    chunk.len()
}

/// A response body produced piece by piece in bounded chunks as the socket takes them. The
/// file handle is closed when this is dropped: on completion, on error and when the client
/// goes away.
pub(super) struct Stream {
    source: Source,
    pieces: Vec<Piece>,
    /// The current piece and how much of it was sent.
    index: usize,
    done: u64,
    buf: Vec<u8>,
}

impl Stream {
    /// The `pieces` of a body whose ranges come from `body`.
    pub fn new(body: Body, pieces: Vec<Piece>) -> Stream {
        let source = match body {
            Body::File(file) => Source::File { file, pos: 0 },
            Body::Memory(memory) => Source::Memory(memory),
        };
        Stream {
            source,
            pieces,
            index: 0,
            done: 0,
            buf: Vec::new(),
        }
    }

    /// The next chunk of at most `max` bytes into `self.buf`, or `None` at the end.
    pub fn next_chunk(&mut self, max: usize) -> Result<Option<&[u8]>, AppError> {
        loop {
            let Some(piece) = self.pieces.get(self.index) else {
                return Ok(None);
            };
            let remaining = piece.len().saturating_sub(self.done);
            if remaining == 0 {
                self.index += 1;
                self.done = 0;
                continue;
            }
            let want = usize::try_from(remaining).unwrap_or(usize::MAX).min(max);
            let n = match piece {
                Piece::Bytes(b) => copy_from(b, self.done, want, &mut self.buf),
                Piece::Range(offset, _) => {
                    let at = offset.saturating_add(self.done);
                    self.source.read_at(at, want, &mut self.buf)?
                }
            };
            if n == 0 {
                return Err(AppError::FileChanged("file shrank while being sent"));
            }
            self.done += n as u64;
            return Ok(Some(&self.buf));
        }
    }

    /// Everything that is left, which must be `len` bytes (for small bodies).
    pub fn read_all(&mut self, len: u64) -> Result<Vec<u8>, AppError> {
        let mut body = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
        while let Some(chunk) = self.next_chunk(FILE_CHUNK)? {
            body.extend_from_slice(chunk);
        }
        if body.len() as u64 != len {
            return Err(AppError::FileChanged("file shrank while being read"));
        }
        Ok(body)
    }

    /// Whether the last piece has been sent completely.
    fn at_end(&self) -> bool {
        self.index + 1 >= self.pieces.len()
            && self
                .pieces
                .get(self.index)
                .is_some_and(|p| self.done >= p.len())
    }
}

impl Responder for Stream {
    fn produce(&mut self, out: &mut Output<'_>) -> Result<Produce, AppError> {
        let max = FILE_CHUNK.min(out.room().max(4096));
        match self.next_chunk(max)? {
            Some(chunk) => {
                out.data(chunk)?;
                if self.at_end() {
                    out.end()?;
                    return Ok(Produce::Done);
                }
                Ok(Produce::More)
            }
            None => {
                out.end()?;
                Ok(Produce::Done)
            }
        }
    }
}

/// A large file compressed while it is sent: one bounded read per step, only while the
/// socket keeps up, so at most one chunk and the compressor's window are held.
pub(super) struct Compressing {
    pub stream: Stream,
    pub encoder: Encoder,
    pub buf: Vec<u8>,
}

impl Responder for Compressing {
    fn produce(&mut self, out: &mut Output<'_>) -> Result<Produce, AppError> {
        let max = FILE_CHUNK.min(out.room().max(4096));
        self.buf.clear();
        match self.stream.next_chunk(max)? {
            Some(chunk) => {
                self.encoder.write(chunk, Flush::None, &mut self.buf)?;
                if !self.buf.is_empty() {
                    out.data(&self.buf)?;
                }
                Ok(Produce::More)
            }
            None => {
                self.encoder.finish(&mut self.buf)?;
                out.data(&self.buf)?;
                out.end()?;
                Ok(Produce::Done)
            }
        }
    }
}
