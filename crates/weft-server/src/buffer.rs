//! The per-connection read buffer: reads append at the back, the protocol consumes from the
//! front. Front removal is amortised: live bytes move to the front only when the tail has no
//! room, and the storage is zeroed once when it grows, never per read.

/// A growable byte buffer with a consumed prefix.
#[derive(Debug, Default)]
pub struct ReadBuf {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl ReadBuf {
    pub fn new() -> ReadBuf {
        ReadBuf::default()
    }

    /// The unconsumed bytes.
    pub fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        self.end - self.start
    }

    pub fn is_empty(&self) -> bool {
        self.start == self.end
    }

    /// Removes `n` bytes from the front.
    pub fn consume(&mut self, n: usize) {
        self.start = (self.start + n).min(self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    /// A writable tail of at least `min` bytes for the next read; report what was read into it
    /// with [`ReadBuf::filled`].
    pub fn spare(&mut self, min: usize) -> &mut [u8] {
        if self.buf.len() - self.end < min && self.start > 0 {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.buf.len() - self.end < min {
            let grown = (self.buf.len() * 2).max(self.end + min);
            self.buf.resize(grown, 0);
        }
        self.buf.get_mut(self.end..).unwrap_or(&mut [])
    }

    /// Records that `n` bytes were read into the tail returned by [`ReadBuf::spare`].
    pub fn filled(&mut self, n: usize) {
        self.end = (self.end + n).min(self.buf.len());
    }

    /// Hands the storage of an empty buffer back (for a pool); `None` when bytes are
    /// buffered or there is no storage.
    pub fn take_storage(&mut self) -> Option<Vec<u8>> {
        if !self.is_empty() || self.buf.is_empty() {
            return None;
        }
        Some(std::mem::take(&mut self.buf))
    }

    /// Whether the buffer has memory of its own (else it wants some from a pool).
    pub fn has_storage(&self) -> bool {
        !self.buf.is_empty()
    }

    /// Gives a buffer without storage some (from a pool); ignored when it has its own.
    pub fn give_storage(&mut self, storage: Vec<u8>) {
        if self.buf.is_empty() {
            self.buf = storage;
            self.start = 0;
            self.end = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn append_consume_compact() {
        let mut b = ReadBuf::new();
        b.spare(8)[..5].copy_from_slice(b"hello");
        b.filled(5);
        assert_eq!(b.data(), b"hello");
        b.consume(2);
        assert_eq!(b.data(), b"llo");
        let tail = b.spare(8);
        tail[..2].copy_from_slice(b"!!");
        b.filled(2);
        assert_eq!(b.data(), b"llo!!");
        b.consume(5);
        assert!(b.is_empty());
        assert!(b.take_storage().is_some());
        assert_eq!(b.data(), b"");
        assert!(b.spare(4).len() >= 4);
    }

    #[test]
    fn storage_moves_only_while_empty() {
        let mut b = ReadBuf::new();
        assert!(b.take_storage().is_none(), "no storage yet");
        b.give_storage(vec![0; 64]);
        assert!(b.has_storage());
        b.spare(8)[..3].copy_from_slice(b"abc");
        b.filled(3);
        assert!(b.take_storage().is_none(), "bytes are buffered");
        b.give_storage(vec![0; 4096]);
        assert_eq!(b.data(), b"abc", "its own storage is kept");
        b.consume(3);
        let storage = b.take_storage().unwrap();
        assert_eq!(storage.len(), 64);
        assert_eq!(b.data(), b"");
        assert!(b.spare(16).len() >= 16, "grows again from nothing");
    }
}
