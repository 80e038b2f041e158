//! The unconsumed input a resource holds for the core.

use crate::wit_types::FeedError;

/// Bytes fed by the host and not yet consumed by the core, with amortised front removal.
#[derive(Debug, Default)]
pub struct Input {
    buf: Vec<u8>,
    start: usize,
}

/// Above this many consumed bytes at the front, the rest is moved down when it is at most
/// as long as what was consumed.
const COMPACT_AFTER: usize = 16 * 1024;

impl Input {
    /// The unconsumed bytes.
    pub fn bytes(&self) -> &[u8] {
        self.buf.get(self.start..).unwrap_or(&[])
    }

    /// How many bytes are held.
    pub fn len(&self) -> usize {
        self.buf.len().saturating_sub(self.start)
    }

    /// Appends `data`, unless `limit` or more bytes are already held.
    pub fn feed(&mut self, data: &[u8], limit: usize) -> Result<(), FeedError> {
        if self.len() >= limit {
            return Err(FeedError::Full);
        }
        if self.start > 0 && self.start >= self.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// The core consumed the first `n` held bytes.
    pub fn consume(&mut self, n: usize) {
        self.start = self.start.saturating_add(n).min(self.buf.len());
        if self.start == self.buf.len() {
            self.buf.clear();
            self.start = 0;
            if self.buf.capacity() > 64 * 1024 {
                self.buf = Vec::new();
            }
        } else if self.start >= COMPACT_AFTER && self.start >= self.len() {
            self.buf.drain(..self.start);
            self.start = 0;
        }
    }

    /// Takes every held byte (an upgrade hands them to the new protocol).
    pub fn take(&mut self) -> Vec<u8> {
        let rest = self.bytes().to_vec();
        self.buf = Vec::new();
        self.start = 0;
        rest
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)]
mod tests {
    use super::*;

    #[test]
    fn feeds_consumes_and_refuses_when_full() {
        let mut input = Input::default();
        assert_eq!(input.feed(b"abcdef", 4), Ok(()));
        assert_eq!(input.feed(b"gh", 4), Err(FeedError::Full));
        input.consume(3);
        assert_eq!(input.bytes(), b"def");
        assert_eq!(input.feed(b"gh", 4), Ok(()));
        assert_eq!(input.bytes(), b"defgh");
        input.consume(100);
        assert_eq!(input.len(), 0);
        assert_eq!(input.feed(b"x", 4), Ok(()));
        assert_eq!(input.take(), b"x");
        assert_eq!(input.len(), 0);
    }

    #[test]
    fn compacts_a_long_consumed_front() {
        let mut input = Input::default();
        let data = vec![7u8; 40 * 1024];
        assert_eq!(input.feed(&data, usize::MAX), Ok(()));
        input.consume(30 * 1024);
        assert_eq!(input.len(), 10 * 1024);
        assert_eq!(input.bytes(), &data[..10 * 1024]);
    }
}
